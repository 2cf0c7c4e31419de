/* sampler.c: top_k -> top_p -> min_p -> temperature -> draw, as llama.cpp's default chain.
 *
 * Data flow for one sample (n = n_vocab, m = candidates still alive):
 *   top_k on (0 < k < n): logits[n] --select_top_k--> cand[k], sorted best first, in one
 *       pass through a size-k min-heap (O(n log k); most tokens cost one comparison with
 *       its root); top_p is then a prefix scan.
 *   top_k off: logits[n] --gather--> cand[m] (drawable tokens, token order); top_p then
 *       moves the nucleus to the front of cand by quickselect on probability mass (expected
 *       O(n)), without sorting it.
 *   min_p compacts the surviving array in place; draw() weighs it and picks one token.
 * Everything lives in scratch allocated by mlc_sampler_new; sampling allocates nothing
 * (libc qsort is avoided on purpose: glibc's may malloc a merge buffer). */
#include "mlc/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* One surviving token: its logit (never NaN or -inf here) and id. */
typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct mlc_sampler {
    mlc_sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4]; /* xoshiro256** state, never all zero */
    cand *cand;      /* [n_vocab] the candidates still alive */
    double *w;       /* [n_vocab] unnormalized probabilities of the final draw */
};

/* ---- generator: splitmix64 expands the seed, xoshiro256** draws -------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
    const uint64_t out = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits (every double of the form j / 2^53). */
static double rng_unit(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

void mlc_sampler_reset(mlc_sampler *s, uint64_t seed)
{
    if (!s)
        return;
    /* splitmix64 is a bijection of its counter, so four outputs are never all zero. */
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&seed);
}

/* ---- parameters ---------------------------------------------------------------------- */

mlc_sampler_params mlc_sampler_default_params(void)
{
    return (mlc_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .seed = MLC_SAMPLER_DEFAULT_SEED,
    };
}

/* Comparisons are written so that NaN fails them and is rejected. */
mlc_status mlc_sampler_params_check(const mlc_sampler_params *p, mlc_err *err)
{
    if (!p)
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: params is NULL");
    if (!(p->temperature >= 0.0f && isfinite(p->temperature)))
        return mlc_err_set(err, MLC_ERR_ARG,
                           "sampler: temperature = %g, expected a finite number >= 0",
                           (double)p->temperature);
    if (p->top_k < 0)
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: top_k = %d, expected >= 0 (0 = off)",
                           (int)p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: top_p = %g, expected in (0, 1]",
                           (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: min_p = %g, expected in [0, 1]",
                           (double)p->min_p);
    return MLC_OK;
}

/* ---- lifetime ------------------------------------------------------------------------ */

mlc_status mlc_sampler_new(const mlc_sampler_params *p, int32_t n_vocab, mlc_sampler **out,
                           mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: out is NULL");
    *out = NULL;
    mlc_status st = mlc_sampler_params_check(p, err);
    if (st != MLC_OK)
        return st;
    if (n_vocab <= 0 || (size_t)n_vocab > SIZE_MAX / sizeof(double))
        return mlc_err_set(err, MLC_ERR_ARG, "sampler: n_vocab = %d, expected > 0",
                           (int)n_vocab);
    mlc_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
        s->w = malloc((size_t)n_vocab * sizeof *s->w);
    }
    if (!s || !s->cand || !s->w) {
        mlc_sampler_free(s);
        return mlc_err_set(err, MLC_ERR_NOMEM,
                           "sampler: cannot allocate scratch for %d candidates", (int)n_vocab);
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    mlc_sampler_reset(s, p->seed);
    *out = s;
    return MLC_OK;
}

void mlc_sampler_free(mlc_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->w);
    free(s);
}

/* ---- greedy -------------------------------------------------------------------------- */

int32_t mlc_argmax(const float *x, int32_t n)
{
    if (!x || n <= 0)
        return -1;
    /* Start from the first number: every comparison with NaN is false, so once best holds
     * a number a later NaN can never replace it. */
    int32_t best = 0;
    while (best < n && isnan(x[best]))
        best++;
    if (best == n)
        return 0;
    float v = x[best]; /* held in a register: no reload through x[best] per element */
    for (int32_t i = best + 1; i < n; i++)
        if (x[i] > v) {
            v = x[i];
            best = i;
        }
    return best;
}

/* ---- candidate order, heap, partition ----------------------------------------------- */

/* The total order of the filters: higher logit first, lower id first on ties. Ids are
 * unique, so no two candidates are equal under it. */
static bool better(cand a, cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static void swap_cand(cand *a, cand *b)
{
    const cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap under better(): the worst candidate at the root h[0]. */
static void sift_down(cand *h, int32_t n, int32_t i)
{
    const cand x = h[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(h[c], h[c + 1]))
            c++;
        if (!better(x, h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void sift_up(cand *h, int32_t i)
{
    const cand x = h[i];
    while (i > 0) {
        const int32_t parent = (i - 1) / 2;
        if (!better(h[parent], x))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

/* Heapsort of the min-heap h[0..n): the worst goes to the end each round, leaving h[]
 * best first. */
static void heap_sort_best_first(cand *h, int32_t n)
{
    for (int32_t end = n - 1; end > 0; end--) {
        swap_cand(&h[0], &h[end]);
        sift_down(h, end, 0);
    }
}

static void sort_best_first(cand *c, int32_t n)
{
    for (int32_t i = n / 2 - 1; i >= 0; i--)
        sift_down(c, n, i);
    heap_sort_best_first(c, n);
}

/* Index of the median of c[a], c[b], c[d] under better(). */
static int32_t median3(const cand *c, int32_t a, int32_t b, int32_t d)
{
    if (better(c[a], c[b]))
        return better(c[b], c[d]) ? b : better(c[a], c[d]) ? d : a;
    return better(c[a], c[d]) ? a : better(c[b], c[d]) ? d : b;
}

/* Partitions c[lo..hi) (hi - lo >= 3) around a median-of-three pivot and returns its final
 * index p: c[lo..p) are better than c[p], c(p..hi) worse. */
static int32_t partition(cand *c, int32_t lo, int32_t hi)
{
    swap_cand(&c[median3(c, lo, lo + (hi - lo) / 2, hi - 1)], &c[hi - 1]);
    const cand pivot = c[hi - 1];
    int32_t p = lo;
    for (int32_t i = lo; i < hi - 1; i++)
        if (better(c[i], pivot))
            swap_cand(&c[i], &c[p++]);
    swap_cand(&c[p], &c[hi - 1]);
    return p;
}

/* ---- filters ------------------------------------------------------------------------- */

/* When c[0..m) holds +inf logits, keeps only those (in order), with logit 0, so that the
 * draw is uniform among them; returns the new count. */
static int32_t keep_pos_inf(cand *c, int32_t m)
{
    int32_t k = 0;
    for (int32_t i = 0; i < m; i++)
        if (c[i].logit == INFINITY)
            c[k++] = (cand){0.0f, c[i].id};
    return k;
}

/* logits[n_vocab] -> c[m]: the tokens that can be drawn, in token order; returns m and the
 * largest logit in *max. NaN counts as -inf and -inf is dropped (probability 0). */
static int32_t gather(const float *logits, int32_t n_vocab, cand *c, float *max)
{
    int32_t m = 0;
    float hi = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++) {
        const float x = logits[i];
        if (x > -INFINITY) { /* false for NaN and -inf */
            c[m++] = (cand){x, i};
            hi = x > hi ? x : hi;
        }
    }
    if (hi == INFINITY) {
        m = keep_pos_inf(c, m);
        hi = 0.0f;
    }
    *max = hi;
    return m;
}

/* The k best drawable tokens of logits[n_vocab] into out[0..m), best first, m <= k (less
 * when fewer are drawable); *max = out[0]'s logit. Skips NaN and -inf as gather() does. */
static int32_t select_top_k(const float *logits, int32_t n_vocab, int32_t k, cand *out,
                            float *max)
{
    int32_t h = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const cand c = {logits[i], i};
        if (!(c.logit > -INFINITY))
            continue;
        if (h < k) {
            out[h] = c;
            sift_up(out, h++);
        } else if (better(c, out[0])) {
            out[0] = c;
            sift_down(out, k, 0);
        }
    }
    heap_sort_best_first(out, h);
    if (h > 0 && out[0].logit == INFINITY)
        h = keep_pos_inf(out, h); /* the +inf ones are the prefix, already in id order */
    *max = h > 0 ? out[0].logit : -INFINITY;
    return h;
}

/* exp(logit - max): probability up to the common factor 1/Z, in (0, 1]. */
static double rel_prob(cand c, float max)
{
    return exp((double)c.logit - (double)max);
}

static double total_mass(const cand *c, int32_t n, float max)
{
    double z = 0.0;
    for (int32_t i = 0; i < n; i++)
        z += rel_prob(c[i], max);
    return z;
}

/* Length of the shortest prefix of c[0..n), sorted best first, whose mass reaches need
 * (> 0); n when rounding leaves it just short. */
static int32_t prefix_reaching(const cand *c, int32_t n, double need, float max)
{
    double cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += rel_prob(c[i], max);
        if (cum >= need)
            return i + 1;
    }
    return n;
}

/* The nucleus of c[0..n), sorted best first: the shortest prefix whose share of the total
 * probability reaches top_p (at least 1). */
static int32_t top_p_sorted(const cand *c, int32_t n, double top_p, float max)
{
    return prefix_reaching(c, n, top_p * total_mass(c, n, max), max);
}

/* As top_p_sorted for c[0..n) in any order: moves the nucleus to c[0..m), unordered, and
 * returns m. Quickselect on mass: c[0..lo) is known to be in the nucleus, c[hi..n) out,
 * and need is the mass still missing, to be taken from the best of c[lo..hi). Expected
 * O(n); after 64 rounds (bad pivots) or on a short range it sorts c[lo..hi) instead. */
static int32_t top_p_select(cand *c, int32_t n, double top_p, float max)
{
    double need = top_p * total_mass(c, n, max);
    int32_t lo = 0, hi = n;
    for (int round = 0; hi - lo > 16 && round < 64; round++) {
        const int32_t p = partition(c, lo, hi);
        const double upper = total_mass(c + lo, p - lo, max);
        if (upper >= need) {
            hi = p; /* the nucleus ends before the pivot */
            continue;
        }
        need -= upper + rel_prob(c[p], max);
        if (need <= 0.0)
            return p + 1; /* the pivot completes it */
        lo = p + 1;
    }
    sort_best_first(c + lo, hi - lo);
    return lo + prefix_reaching(c + lo, hi - lo, need, max);
}

/* Keeps, in place and in order, the c[i] with p >= min_p * p_max, that is
 * logit >= max + log(min_p). The best candidate always stays. */
static int32_t min_p_filter(cand *c, int32_t n, double min_p, float max)
{
    const double cut = (double)max + log(min_p);
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if ((double)c[i].logit >= cut)
            c[k++] = c[i];
    return k;
}

/* Draws one of c[0..n) (n >= 1) with probability softmax(logit / temperature). */
static int32_t draw(mlc_sampler *s, const cand *c, int32_t n, float max)
{
    const double t = (double)s->p.temperature;
    double z = 0.0;
    for (int32_t i = 0; i < n; i++) {
        /* (logit - max) / t <= 0: no overflow; underflow gives 0, never drawn below. */
        s->w[i] = exp(((double)c[i].logit - (double)max) / t);
        z += s->w[i];
    }
    const double target = rng_unit(s->rng) * z;
    double cum = 0.0;
    int32_t last = 0;
    for (int32_t i = 0; i < n; i++) {
        if (s->w[i] <= 0.0)
            continue;
        cum += s->w[i];
        last = i;
        if (cum > target)
            return c[i].id;
    }
    return c[last].id; /* target rounded up to z: the last token with weight */
}

/* ---- the chain ----------------------------------------------------------------------- */

int32_t mlc_sampler_sample(mlc_sampler *s, const float *logits)
{
    if (!s || !logits)
        return -1;
    if (!(s->p.temperature > 0.0f))
        return mlc_argmax(logits, s->n_vocab);
    const bool use_top_k = s->p.top_k > 0 && s->p.top_k < s->n_vocab;
    cand *set = s->cand;
    float max;
    int32_t n = use_top_k ? select_top_k(logits, s->n_vocab, s->p.top_k, set, &max)
                          : gather(logits, s->n_vocab, set, &max);
    if (n == 0)
        return mlc_argmax(logits, s->n_vocab); /* all -inf or NaN */
    if (s->p.top_p < 1.0f)
        n = use_top_k ? top_p_sorted(set, n, (double)s->p.top_p, max)
                      : top_p_select(set, n, (double)s->p.top_p, max);
    if (s->p.min_p > 0.0f)
        n = min_p_filter(set, n, (double)s->p.min_p, max);
    return draw(s, set, n, max);
}
