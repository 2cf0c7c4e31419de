/* tests/test_sampler.c: greedy argmax, the seeded sampler's reproducibility, each filter of
 * the top_k -> top_p -> min_p -> temperature chain, and the drawn frequencies against the
 * exact distribution (chi-square at a 1e-6 false-alarm level), special logits (-inf, NaN,
 * +inf), and parameter checking. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/sampler.h"
#include "rng.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------------- */

static mlc_sampler_params params(float temp, int32_t top_k, float top_p, float min_p,
                                 uint64_t seed)
{
    return (mlc_sampler_params){temp, top_k, top_p, min_p, seed};
}

/* Plain softmax sampling: temperature t, no filters. */
static mlc_sampler_params plain(float temp, uint64_t seed)
{
    return params(temp, 0, 1.0f, 0.0f, seed);
}

static mlc_sampler *make(mlc_sampler_params p, int32_t n_vocab)
{
    mlc_sampler *s = NULL;
    mlc_err err = {0};
    const mlc_status st = mlc_sampler_new(&p, n_vocab, &s, &err);
    cr_assert_eq(st, MLC_OK, "mlc_sampler_new: %s", err.msg);
    cr_assert_not_null(s);
    return s;
}

/* counts[n] = how often each token came out of `draws` samples of a fresh sampler. */
static void histogram(mlc_sampler_params p, const float *logits, int n, long draws,
                      long *counts)
{
    mlc_sampler *s = make(p, n);
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (long i = 0; i < draws; i++) {
        const int32_t t = mlc_sampler_sample(s, logits);
        cr_assert(t >= 0 && t < n, "token %d out of [0, %d)", (int)t, n);
        counts[t]++;
    }
    mlc_sampler_free(s);
}

/* The chain's exact distribution, computed the slow, obvious way (full sort), for finite
 * logits: probs[n] over token ids, 0 for filtered tokens. */
typedef struct {
    float l;
    int id;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->l != y->l)
        return x->l > y->l ? -1 : 1;
    return x->id - y->id;
}

static void ref_probs(const float *logits, int n, mlc_sampler_params p, double *probs)
{
    pair *v = malloc((size_t)n * sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < n; i++)
        v[i] = (pair){logits[i], i};
    qsort(v, (size_t)n, sizeof *v, pair_cmp);
    int m = n;
    if (p.top_k > 0 && p.top_k < m)
        m = p.top_k;
    if (p.top_p < 1.0f) {
        double z = 0.0, cum = 0.0;
        for (int i = 0; i < m; i++)
            z += exp((double)v[i].l - v[0].l);
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += exp((double)v[i].l - v[0].l) / z;
            if (cum >= p.top_p) {
                keep = i + 1;
                break;
            }
        }
        m = keep;
    }
    if (p.min_p > 0.0f) {
        int keep = 0;
        while (keep < m && exp((double)v[keep].l - v[0].l) >= p.min_p)
            keep++;
        m = keep;
    }
    double z = 0.0;
    for (int i = 0; i < n; i++)
        probs[i] = 0.0;
    for (int i = 0; i < m; i++)
        z += probs[v[i].id] = exp(((double)v[i].l - v[0].l) / p.temperature);
    for (int i = 0; i < m; i++)
        probs[v[i].id] /= z;
    free(v);
}

/* Upper tail Q(df/2, x/2) of the chi-square distribution with df degrees of freedom, as
 * 1 - P with the series of the lower regularized incomplete gamma function:
 *   P(a, h) = h^a e^-h / Gamma(a+1) * sum_n h^n / ((a+1)(a+2)...(a+n)).
 * Absolute error ~1e-15, ample for comparing with 1e-6. */
static double chi2_sf(double x, int df)
{
    const double a = df / 2.0, h = x / 2.0;
    double term = 1.0, sum = 1.0;
    for (int n = 1; n < 100000 && term > sum * 1e-17; n++) {
        term *= h / (a + n);
        sum += term;
    }
    return 1.0 - sum * exp(a * log(h) - h - lgamma(a + 1.0));
}

/* counts[n] of `draws` draws against probs[n]. Tokens of probability 0 must never appear
 * (exact). Pearson's statistic needs expected counts >= 5, so smaller bins are pooled into
 * one, and that pool, if still under 5, into the largest bin. The test fails when the
 * statistic's p-value is below 1e-6: a correct sampler fails once in a million seeds. */
static void assert_chi2(const long *counts, const double *probs, int n, long draws)
{
    double *obs = malloc((size_t)(n + 1) * sizeof *obs);
    double *ex = malloc((size_t)(n + 1) * sizeof *ex);
    cr_assert(obs && ex);
    double pool_o = 0.0, pool_e = 0.0;
    int bins = 0, big = -1;
    for (int i = 0; i < n; i++) {
        if (probs[i] == 0.0) {
            cr_assert_eq(counts[i], 0, "token %d has probability 0 but came %ld times", i,
                         counts[i]);
            continue;
        }
        const double e = probs[i] * (double)draws;
        if (e < 5.0) {
            pool_o += (double)counts[i];
            pool_e += e;
            continue;
        }
        if (big < 0 || e > ex[big])
            big = bins;
        obs[bins] = (double)counts[i];
        ex[bins++] = e;
    }
    cr_assert(big >= 0, "no bin with 5 expected draws: raise the number of draws");
    if (pool_e >= 5.0) {
        obs[bins] = pool_o;
        ex[bins++] = pool_e;
    } else {
        obs[big] += pool_o;
        ex[big] += pool_e;
    }
    double chi2 = 0.0;
    for (int i = 0; i < bins; i++)
        chi2 += (obs[i] - ex[i]) * (obs[i] - ex[i]) / ex[i];
    free(obs);
    free(ex);
    if (bins == 1)
        return; /* one outcome: the zero-probability check above was the whole test */
    const double pv = chi2_sf(chi2, bins - 1);
    cr_assert(pv > 1e-6, "chi-square %.2f with %d degrees of freedom: p-value %.3g", chi2,
              bins - 1, pv);
}

/* |observed frequency - p| within 5 standard deviations (two-sided 5.7e-7). */
static void assert_freq(long count, long draws, double p)
{
    const double f = (double)count / (double)draws;
    const double sd = sqrt(p * (1.0 - p) / (double)draws);
    cr_assert(fabs(f - p) <= 5.0 * sd, "frequency %.5f, expected %.5f +- %.5f (5 sd)", f, p,
              5.0 * sd);
}

Test(sampler, chi2_tail_matches_tables)
{
    /* textbook values: df 1 at 3.841 -> 0.05; df 7 at 24.322 -> 0.001; df 30 at 50.892
     * -> 0.01 */
    cr_assert_float_eq(chi2_sf(3.841459, 1), 0.05, 1e-6);
    cr_assert_float_eq(chi2_sf(24.321886, 7), 0.001, 1e-8);
    cr_assert_float_eq(chi2_sf(50.892181, 30), 0.01, 1e-7);
}

/* ---- greedy -------------------------------------------------------------------------- */

Test(sampler, argmax_picks_max_lowest_index_on_ties)
{
    const float a[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
    cr_assert_eq(mlc_argmax(a, 5), 1);
    const float b[] = {-3.0f, -1.0f, -2.0f};
    cr_assert_eq(mlc_argmax(b, 3), 1);
    const float c[] = {7.0f, 7.0f, 7.0f};
    cr_assert_eq(mlc_argmax(c, 3), 0);
    cr_assert_eq(mlc_argmax(a, 1), 0);
    cr_assert_eq(mlc_argmax(a, 0), -1);
    cr_assert_eq(mlc_argmax(NULL, 3), -1);
}

Test(sampler, argmax_nan_and_inf)
{
    const float a[] = {NAN, 1.0f, NAN, 3.0f, NAN};
    cr_assert_eq(mlc_argmax(a, 5), 3);
    const float b[] = {NAN, -INFINITY, NAN};
    cr_assert_eq(mlc_argmax(b, 3), 1, "-inf is a number: it beats NaN");
    const float c[] = {NAN, NAN};
    cr_assert_eq(mlc_argmax(c, 2), 0);
    const float d[] = {-INFINITY, -INFINITY};
    cr_assert_eq(mlc_argmax(d, 2), 0);
    const float e[] = {1.0f, INFINITY, NAN, INFINITY};
    cr_assert_eq(mlc_argmax(e, 4), 1);
}

Test(sampler, temperature_zero_is_argmax)
{
    uint64_t rng = 1;
    float x[50];
    mlc_sampler *s = make(params(0.0f, 40, 0.95f, 0.05f, 3), 50);
    for (int r = 0; r < 200; r++) {
        tu_fill_gauss(&rng, x, 50, 1.0f);
        for (int i = 0; i < 50; i++) /* coarse values: many ties */
            x[i] = roundf(x[i]);
        cr_assert_eq(mlc_sampler_sample(s, x), mlc_argmax(x, 50));
    }
    mlc_sampler_free(s);
}

/* ---- reproducibility ----------------------------------------------------------------- */

static void sequence(mlc_sampler *s, const float *logits, int32_t *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = mlc_sampler_sample(s, logits);
}

Test(sampler, same_seed_same_sequence_different_seed_differs)
{
    enum { V = 64, N = 1000 };
    uint64_t rng = 2;
    float x[V];
    tu_fill_gauss(&rng, x, V, 1.0f);
    mlc_sampler_params p = mlc_sampler_default_params();
    p.temperature = 1.0f;
    static int32_t a[N], b[N], c[N];
    mlc_sampler *s1 = make(p, V), *s2 = make(p, V);
    p.seed += 1;
    mlc_sampler *s3 = make(p, V);
    sequence(s1, x, a, N);
    sequence(s2, x, b, N);
    sequence(s3, x, c, N);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i], b[i], "draw %d: %d vs %d with the same seed", i, a[i], b[i]);
        differ += a[i] != c[i];
    }
    /* Two independent draws agree with probability sum p_i^2 < 0.25 here: expect ~800. */
    cr_assert_gt(differ, 500, "only %d of %d draws differ between seeds", differ, N);
    mlc_sampler_free(s1);
    mlc_sampler_free(s2);
    mlc_sampler_free(s3);
}

Test(sampler, reset_reproduces)
{
    enum { V = 32, N = 1000 };
    uint64_t rng = 3;
    float x[V];
    tu_fill_gauss(&rng, x, V, 1.5f);
    static int32_t a[N], b[N], c[N];
    mlc_sampler *s = make(plain(1.0f, 11), V);
    sequence(s, x, a, N);
    mlc_sampler_reset(s, 11);
    sequence(s, x, b, N);
    cr_assert_arr_eq(a, b, sizeof a, "reset to the creation seed must replay the sequence");
    mlc_sampler_reset(s, 99);
    sequence(s, x, b, N);
    mlc_sampler *t = make(plain(1.0f, 99), V);
    sequence(t, x, c, N);
    cr_assert_arr_eq(b, c, sizeof b, "reset(99) must match a sampler created with seed 99");
    mlc_sampler_free(s);
    mlc_sampler_free(t);
}

/* ---- filters that reduce to greedy --------------------------------------------------- */

/* For 300 random vectors (coarse, so with ties when `ties`), sampler output == argmax. */
static void assert_greedy(mlc_sampler_params p, bool ties)
{
    enum { V = 100 };
    uint64_t rng = 4;
    float x[V];
    mlc_sampler *s = make(p, V);
    for (int r = 0; r < 300; r++) {
        tu_fill_gauss(&rng, x, V, 2.0f);
        if (ties)
            for (int i = 0; i < V; i++)
                x[i] = roundf(x[i]);
        cr_assert_eq(mlc_sampler_sample(s, x), mlc_argmax(x, V), "vector %d", r);
    }
    mlc_sampler_free(s);
}

Test(sampler, top_k_1_is_greedy)
{
    assert_greedy(params(1.5f, 1, 1.0f, 0.0f, 5), true);
    assert_greedy(params(1.5f, 1, 0.95f, 0.05f, 5), true);
}

Test(sampler, tiny_top_p_is_greedy)
{
    assert_greedy(params(1.5f, 0, 1e-6f, 0.0f, 6), true);
    assert_greedy(params(1.5f, 40, 1e-6f, 0.0f, 6), true);
}

Test(sampler, min_p_1_is_greedy)
{
    /* Gaussian floats: distinct with overwhelming odds (ties would all survive min_p = 1). */
    assert_greedy(params(1.5f, 0, 1.0f, 1.0f, 7), false);
    const float x[] = {1.0f, 3.0f, 0.0f, 3.0f};
    long counts[4];
    histogram(params(1.0f, 0, 1.0f, 1.0f, 7), x, 4, 2000, counts);
    cr_assert(counts[0] == 0 && counts[2] == 0, "only the tied maxima survive min_p = 1");
    cr_assert(counts[1] > 0 && counts[3] > 0);
}

/* ---- distributions ------------------------------------------------------------------- */

Test(sampler, frequencies_match_softmax)
{
    const float x[] = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -2.0f, 1.5f, 0.7f};
    const long N = 200000;
    long counts[8];
    double probs[8];
    histogram(plain(1.0f, 12), x, 8, N, counts);
    ref_probs(x, 8, plain(1.0f, 12), probs);
    double z = 0.0;
    for (int i = 0; i < 8; i++)
        z += exp(x[i]);
    for (int i = 0; i < 8; i++) {
        cr_assert_float_eq(probs[i], exp(x[i]) / z, 1e-12, "reference softmax, token %d", i);
        assert_freq(counts[i], N, probs[i]);
    }
    assert_chi2(counts, probs, 8, N);
}

Test(sampler, temperature_half_sharpens)
{
    const float x[] = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f};
    const long N = 200000;
    long c1[5], c05[5];
    double p05[5];
    /* p(top) = e^(2/T) / sum e^(x_i/T): 0.563 at T = 1, 0.829 at T = 0.5. */
    double z1 = 0.0, z05 = 0.0;
    for (int i = 0; i < 5; i++) {
        z1 += exp(x[i]);
        z05 += exp(x[i] / 0.5);
    }
    const double top1 = exp(2.0) / z1, top05 = exp(4.0) / z05;
    cr_assert(top05 > top1 + 0.25);
    histogram(plain(1.0f, 13), x, 5, N, c1);
    histogram(plain(0.5f, 13), x, 5, N, c05);
    assert_freq(c1[0], N, top1);
    assert_freq(c05[0], N, top05);
    cr_assert_gt(c05[0], c1[0] + N / 5, "T = 0.5 must draw the top token far more often");
    ref_probs(x, 5, plain(0.5f, 13), p05);
    cr_assert_float_eq(p05[0], top05, 1e-12);
    assert_chi2(c05, p05, 5, N);
}

Test(sampler, top_k_2_only_top_two)
{
    const float x[] = {0.1f, 1.0f, -0.3f, 0.9f, 0.8f, 0.0f};
    const long N = 50000;
    long counts[6];
    histogram(params(2.0f, 2, 1.0f, 0.0f, 14), x, 6, N, counts);
    for (int i = 0; i < 6; i++)
        if (i != 1 && i != 3)
            cr_assert_eq(counts[i], 0, "token %d drawn %ld times with top_k = 2", i, counts[i]);
    /* Renormalized at T = 2: p(1) = 1 / (1 + e^((0.9 - 1) / 2)). */
    assert_freq(counts[1], N, 1.0 / (1.0 + exp((0.9 - 1.0) / 2.0)));
}

Test(sampler, top_k_ties_keep_lowest_ids)
{
    const float x[] = {1.0f, 3.0f, 3.0f, 3.0f, 0.0f};
    long counts[5];
    histogram(params(1.0f, 2, 1.0f, 0.0f, 15), x, 5, 20000, counts);
    cr_assert_eq(counts[3], 0, "of three tied tokens, top_k = 2 keeps ids 1 and 2");
    cr_assert(counts[1] > 0 && counts[2] > 0);
    cr_assert(counts[0] == 0 && counts[4] == 0);
}

/* Logits log(0.5, 0.3, 0.15, 0.05): probabilities known exactly at T = 1. */
static void quarter_logits(float *x)
{
    const double p[] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; i++)
        x[i] = (float)log(p[i]);
}

Test(sampler, top_p_keeps_nucleus)
{
    float x[4];
    quarter_logits(x);
    const long N = 100000;
    long counts[4];
    /* cumulative 0.5, 0.8, 0.95: top_p 0.9 keeps three, renormalized by 0.95 */
    histogram(params(1.0f, 0, 0.9f, 0.0f, 16), x, 4, N, counts);
    cr_assert_eq(counts[3], 0);
    assert_freq(counts[0], N, 0.5 / 0.95);
    assert_freq(counts[1], N, 0.3 / 0.95);
    /* top_p 0.5 is reached by the first token alone */
    histogram(params(1.0f, 0, 0.5f, 0.0f, 16), x, 4, 1000, counts);
    cr_assert_eq(counts[0], 1000);
}

Test(sampler, filters_run_in_llama_cpp_order)
{
    float x[4];
    quarter_logits(x);
    long counts[4];
    /* top_k first: top_p sees 0.5 / 0.8 = 0.625 >= 0.6, so only token 0 survives ... */
    histogram(params(1.0f, 2, 0.6f, 0.0f, 17), x, 4, 2000, counts);
    cr_assert_eq(counts[0], 2000, "top_p must use probabilities renormalized after top_k");
    /* ... while without top_k, 0.5 < 0.6 keeps token 1 too. */
    histogram(params(1.0f, 0, 0.6f, 0.0f, 17), x, 4, 2000, counts);
    cr_assert(counts[1] > 0 && counts[2] == 0 && counts[3] == 0);
    /* min_p before temperature: 0.2 * 0.5 = 0.1 cuts token 3 (0.05), although T = 5
     * would flatten it to 0.05^(1/5) / ... = 0.18 of the mass. */
    const long N = 100000;
    double p[4];
    histogram(params(5.0f, 0, 1.0f, 0.2f, 17), x, 4, N, counts);
    ref_probs(x, 4, params(5.0f, 0, 1.0f, 0.2f, 17), p);
    cr_assert_eq(p[3], 0.0);
    assert_chi2(counts, p, 4, N);
}

/* Random configurations against the full-sort reference: every filter combination. */
Test(sampler, matches_reference_chain)
{
    enum { V = 24 };
    const float temps[] = {0.3f, 0.7f, 1.0f, 1.8f};
    const int32_t ks[] = {0, 3, 10, 40};
    const float tps[] = {1.0f, 0.95f, 0.7f, 0.4f};
    const float mps[] = {0.0f, 0.05f, 0.2f};
    const long N = 60000;
    uint64_t rng = 18;
    float x[V];
    long counts[V];
    double probs[V];
    for (int cfg = 0; cfg < 24; cfg++) {
        tu_fill_gauss(&rng, x, V, 1.5f);
        const uint64_t r = mlc_rng_next(&rng);
        const mlc_sampler_params p = params(temps[r % 4], ks[(r >> 8) % 4], tps[(r >> 16) % 4],
                                            mps[(r >> 24) % 3], r);
        histogram(p, x, V, N, counts);
        ref_probs(x, V, p, probs);
        assert_chi2(counts, probs, V, N);
    }
}

/* top_k off, top_p on, on vocabularies large enough for several quickselect rounds: a
 * nucleus of hundreds of tokens, and coarse logits with many ties at its edge. */
Test(sampler, top_p_without_top_k_matches_reference)
{
    enum { V = 400 };
    const long N = 60000;
    static float x[V];
    static long counts[V];
    static double probs[V];
    uint64_t rng = 23;
    const mlc_sampler_params ps[] = {params(1.0f, 0, 0.9f, 0.0f, 23),
                                     params(0.7f, 0, 0.8f, 0.0f, 24),
                                     params(1.3f, 0, 0.8f, 0.02f, 25)};
    for (int k = 0; k < 3; k++) {
        tu_fill_gauss(&rng, x, V, 2.0f);
        if (k == 1)
            for (int i = 0; i < V; i++)
                x[i] = roundf(x[i]);
        histogram(ps[k], x, V, N, counts);
        ref_probs(x, V, ps[k], probs);
        int kept = 0;
        for (int i = 0; i < V; i++)
            kept += probs[i] > 0.0;
        cr_assert_gt(kept, 20, "config %d: nucleus of %d tokens is too small to test", k, kept);
        assert_chi2(counts, probs, V, N);
    }
}

/* A real vocabulary size through the heap paths: each token must be one the reference
 * chain gives a nonzero probability (top_k on; top_k off with top_p; min_p alone). */
Test(sampler, large_vocab_stays_in_filtered_set)
{
    enum { V = 152064 };
    const mlc_sampler_params ps[] = {
        mlc_sampler_default_params(),
        params(0.8f, 0, 0.95f, 0.0f, 19),
        params(0.8f, 0, 1.0f, 0.05f, 19),
    };
    float *x = malloc(V * sizeof *x);
    double *probs = malloc(V * sizeof *probs);
    cr_assert(x && probs);
    uint64_t rng = 19;
    for (int k = 0; k < 3; k++) {
        mlc_sampler *s = make(ps[k], V);
        for (int r = 0; r < 4; r++) {
            tu_fill_gauss(&rng, x, V, 3.0f);
            ref_probs(x, V, ps[k], probs);
            for (int i = 0; i < 50; i++) {
                const int32_t t = mlc_sampler_sample(s, x);
                cr_assert(t >= 0 && t < V && probs[t] > 0.0, "config %d: token %d filtered",
                          k, (int)t);
            }
        }
        mlc_sampler_free(s);
    }
    free(x);
    free(probs);
}

/* ---- special values ------------------------------------------------------------------ */

Test(sampler, neg_inf_never_chosen)
{
    enum { V = 10 };
    float x[V];
    for (int i = 0; i < V; i++)
        x[i] = -INFINITY;
    x[4] = -50.0f;
    x[7] = -51.0f;
    long counts[V];
    histogram(plain(3.0f, 20), x, V, 20000, counts);
    for (int i = 0; i < V; i++)
        if (i != 4 && i != 7)
            cr_assert_eq(counts[i], 0, "-inf token %d drawn", i);
    cr_assert(counts[4] > 0 && counts[7] > 0);
    for (int i = 0; i < V; i++)
        x[i] = -INFINITY;
    mlc_sampler *s = make(mlc_sampler_default_params(), V);
    cr_assert_eq(mlc_sampler_sample(s, x), 0, "all -inf: argmax's answer");
    mlc_sampler_free(s);
}

Test(sampler, nan_treated_as_neg_inf)
{
    enum { V = 6 };
    const float x[V] = {NAN, 0.5f, NAN, -INFINITY, 0.0f, NAN};
    long counts[V];
    histogram(plain(1.0f, 21), x, V, 20000, counts);
    cr_assert(counts[0] == 0 && counts[2] == 0 && counts[5] == 0 && counts[3] == 0);
    cr_assert(counts[1] > 0 && counts[4] > 0);
    const float all_nan[V] = {NAN, NAN, NAN, NAN, NAN, NAN};
    const float nan_inf[V] = {NAN, NAN, -INFINITY, NAN, -INFINITY, NAN};
    const mlc_sampler_params ps[] = {mlc_sampler_default_params(), plain(0.0f, 1),
                                     params(1.0f, 0, 0.5f, 0.0f, 1)};
    for (int k = 0; k < 3; k++) {
        mlc_sampler *s = make(ps[k], V);
        cr_assert_eq(mlc_sampler_sample(s, all_nan), 0);
        cr_assert_eq(mlc_sampler_sample(s, nan_inf), 2, "-inf beats NaN when nothing else");
        const int32_t t = mlc_sampler_sample(s, x);
        cr_assert(k == 0 ? t == 1 || t == 4 : t == 1, "params %d: token %d", k, (int)t);
        mlc_sampler_free(s);
    }
}

Test(sampler, pos_inf_is_uniform_among_them)
{
    const float x[] = {1.0f, INFINITY, 2.0f, INFINITY};
    const long N = 40000;
    long counts[4];
    histogram(params(1.0f, 40, 0.95f, 0.05f, 22), x, 4, N, counts);
    cr_assert(counts[0] == 0 && counts[2] == 0);
    assert_freq(counts[1], N, 0.5);
}

Test(sampler, vocab_of_one)
{
    const float x[] = {-3.0f};
    mlc_sampler *s = make(mlc_sampler_default_params(), 1);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(mlc_sampler_sample(s, x), 0);
    mlc_sampler_free(s);
}

/* ---- parameters and lifetime --------------------------------------------------------- */

Test(sampler, default_params_are_llama_cpp)
{
    const mlc_sampler_params p = mlc_sampler_default_params();
    cr_assert_eq(p.temperature, 0.8f);
    cr_assert_eq(p.top_k, 40);
    cr_assert_eq(p.top_p, 0.95f);
    cr_assert_eq(p.min_p, 0.05f);
    cr_assert_eq(p.seed, MLC_SAMPLER_DEFAULT_SEED);
    cr_assert_eq(mlc_sampler_params_check(&p, NULL), MLC_OK);
}

static void assert_rejected(mlc_sampler_params p, const char *field)
{
    mlc_err err = {0};
    cr_assert_eq(mlc_sampler_params_check(&p, &err), MLC_ERR_ARG, "%s accepted", field);
    cr_assert_eq(err.status, MLC_ERR_ARG);
    cr_assert(strstr(err.msg, field), "message '%s' does not name %s", err.msg, field);
    cr_assert_null(strchr(err.msg, '\n'), "message '%s' is not one line", err.msg);
    static char sentinel;
    mlc_sampler *s = (mlc_sampler *)(void *)&sentinel; /* must be overwritten with NULL */
    cr_assert_eq(mlc_sampler_new(&p, 10, &s, NULL), MLC_ERR_ARG);
    cr_assert_null(s);
}

Test(sampler, params_check_rejects_bad_fields)
{
    const mlc_sampler_params d = mlc_sampler_default_params();
    mlc_sampler_params p;
    p = d;
    p.temperature = -0.1f;
    assert_rejected(p, "temperature");
    p = d;
    p.temperature = NAN;
    assert_rejected(p, "temperature");
    p = d;
    p.temperature = INFINITY;
    assert_rejected(p, "temperature");
    p = d;
    p.top_k = -1;
    assert_rejected(p, "top_k");
    p = d;
    p.top_p = 0.0f;
    assert_rejected(p, "top_p");
    p = d;
    p.top_p = 1.01f;
    assert_rejected(p, "top_p");
    p = d;
    p.top_p = NAN;
    assert_rejected(p, "top_p");
    p = d;
    p.min_p = -0.01f;
    assert_rejected(p, "min_p");
    p = d;
    p.min_p = 1.5f;
    assert_rejected(p, "min_p");
    p = d;
    p.min_p = NAN;
    assert_rejected(p, "min_p");
    /* boundaries that are allowed */
    p = params(0.0f, 0, 1.0f, 0.0f, 0);
    cr_assert_eq(mlc_sampler_params_check(&p, NULL), MLC_OK);
    p = params(100.0f, 1000000, 1e-9f, 1.0f, 0);
    cr_assert_eq(mlc_sampler_params_check(&p, NULL), MLC_OK);
    mlc_err err = {0};
    cr_assert_eq(mlc_sampler_params_check(NULL, &err), MLC_ERR_ARG);
}

Test(sampler, new_rejects_bad_arguments)
{
    const mlc_sampler_params p = mlc_sampler_default_params();
    mlc_sampler *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_sampler_new(&p, 0, &s, &err), MLC_ERR_ARG);
    cr_assert(strstr(err.msg, "n_vocab"), "%s", err.msg);
    cr_assert_eq(mlc_sampler_new(&p, -5, &s, &err), MLC_ERR_ARG);
    cr_assert_null(s);
    cr_assert_eq(mlc_sampler_new(&p, 10, NULL, &err), MLC_ERR_ARG);
    cr_assert_eq(mlc_sampler_new(NULL, 10, &s, &err), MLC_ERR_ARG);
    mlc_sampler_free(NULL);
    mlc_sampler_reset(NULL, 1);
    const float x[] = {1.0f};
    cr_assert_eq(mlc_sampler_sample(NULL, x), -1);
    s = make(p, 1);
    cr_assert_eq(mlc_sampler_sample(s, NULL), -1);
    mlc_sampler_free(s);
}
