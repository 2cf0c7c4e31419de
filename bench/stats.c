/* stats.c: median, quantiles and the Mann-Whitney U test (see stats.h).
 *
 * The U test follows scipy.stats.mannwhitneyu (SciPy 1.17.1, method='auto',
 * use_continuity=True) step by step, so the gate's verdicts can be reproduced with SciPy:
 *   - U of sample a from one pass over the sorted pooled sample (midranks for ties);
 *   - exact null distribution when there is no tie and min(na, nb) <= 8 (SciPy's
 *     _mwu_choose_method), p = P(U >= observed) including the mass at the observed value;
 *   - otherwise the normal approximation, tie-corrected variance, continuity correction 0.5.
 */
#include "stats.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- order statistics ---------------------------------------------------------------- */

static int cmp_double(const void *pa, const void *pb)
{
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

/* A sorted copy of v (caller frees), or NULL when n == 0, a value is NaN (the comparator
 * would not be a total order) or out of memory. */
static double *sorted_copy(const double *v, size_t n)
{
    if (n == 0 || !v || n > SIZE_MAX / sizeof(double))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            return NULL;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NULL;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return s;
}

double mlc_median(const double *v, size_t n)
{
    double *s = sorted_copy(v, n);
    if (!s)
        return NAN;
    /* Halves added rather than (a+b)/2 so two huge values do not overflow to inf. */
    double m = (n % 2) ? s[n / 2] : 0.5 * s[n / 2 - 1] + 0.5 * s[n / 2];
    free(s);
    return m;
}

/* numpy's _lerp: a + t*(b-a) below t = 0.5 and b - (1-t)*(b-a) above, so the result is
 * exact at both ends and matches numpy.quantile bit for bit in the usual cases. */
static double lerp(double a, double b, double t)
{
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

double mlc_quantile(const double *v, size_t n, double q)
{
    if (!(q >= 0.0 && q <= 1.0)) /* also rejects NaN */
        return NAN;
    double *s = sorted_copy(v, n);
    if (!s)
        return NAN;
    double h = (double)(n - 1) * q; /* position between order statistics, 0-based */
    size_t lo = (size_t)floor(h);
    if (lo > n - 1) /* cannot happen for q <= 1; guards against rounding */
        lo = n - 1;
    size_t hi = lo + 1 < n ? lo + 1 : n - 1;
    double r = lerp(s[lo], s[hi], h - (double)lo);
    free(s);
    return r;
}

/* ---- Mann-Whitney U: statistic and ties -------------------------------------------------- */

typedef struct pooled {
    double v;
    bool from_a;
} pooled;

static int cmp_pooled(const void *pa, const void *pb)
{
    return cmp_double(&((const pooled *)pa)->v, &((const pooled *)pb)->v);
}

/* U of sample a and the tie term sum(t^3 - t) over groups of t equal pooled values.
 * Counting per group (a values above the b values below, half of the pairs within the
 * group) is the midrank formula U = R_a - na(na+1)/2 without summing large ranks: U stays
 * an exact half-integer in a double. Returns -1 on NaN or out of memory. */
static int u_and_ties(const double *a, size_t na, const double *b, size_t nb, double *u,
                      double *tie_term)
{
    size_t n = na + nb;
    if (n < na || n > SIZE_MAX / sizeof(pooled))
        return -1;
    pooled *p = malloc(n * sizeof *p);
    if (!p)
        return -1;
    for (size_t i = 0; i < n; i++) {
        p[i].from_a = i < na;
        p[i].v = i < na ? a[i] : b[i - na];
        if (isnan(p[i].v)) {
            free(p);
            return -1;
        }
    }
    qsort(p, n, sizeof *p, cmp_pooled);
    double b_below = 0, uu = 0, tt = 0;
    for (size_t i = 0, j; i < n; i = j) {
        double ca = 0, cb = 0;
        for (j = i; j < n && p[j].v == p[i].v; j++) {
            if (p[j].from_a)
                ca++;
            else
                cb++;
        }
        uu += ca * b_below + 0.5 * ca * cb;
        tt += (ca + cb) * (ca + cb) * (ca + cb) - (ca + cb);
        b_below += cb;
    }
    free(p);
    *u = uu;
    *tie_term = tt;
    return 0;
}

/* ---- Mann-Whitney U: exact null distribution ---------------------------------------------- */

/* SciPy's size rule: exact only when one sample has at most this many values (and no tie). */
#define MWU_EXACT_MAX_SMALL 8
/* Work cap of the exact path, in inner-loop steps (m * (m*n/2 + 1), see exact_tail): about
 * a millisecond (~1 ns a step; sorting the pooled sample is extra). Beyond it (min <= 8 and
 * the other sample above ~31000 values) the normal approximation is used; at those sizes it
 * is close to the exact p. The cap depends on the sizes only, not on the data, so the same
 * comparison always takes the same path. */
#define MWU_EXACT_MAX_WORK 1000000.0

static bool use_exact(size_t na, size_t nb, bool ties)
{
    double m = (double)(na < nb ? na : nb), n = (double)(na < nb ? nb : na);
    if (ties || m > MWU_EXACT_MAX_SMALL)
        return false;
    return m * (m * n / 2 + 1) <= MWU_EXACT_MAX_WORK;
}

/* P(U <= k) and P(U == k) under H0 for samples of sizes m and n, k <= m*n/2.
 *
 * Under H0 every one of the C(m+n, m) orderings is equally likely, and the number of them
 * with U = k is the coefficient of q^k in the Gaussian binomial
 *     [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i).
 * Built factor by factor on the series truncated after q^k (multiplying by 1 - q^j is
 * f[x] -= f[x-j] downwards, dividing by 1 - q^i is f[x] += f[x-i] upwards), which is
 * O(m * k) instead of the O(m * n * k) table of the textbook recurrence
 * f(m,n,k) = f(m-1,n,k-n) + f(m,n-1,k). The counts are integers, exact in doubles up to
 * 2^53 (every C(m+n, m) with m <= 8 and n up to a few hundred); beyond, they carry the
 * usual 1e-16 relative rounding, and C(m+n, m) stays far from overflow under the cap.
 * Returns -1 when out of memory. */
static int exact_tail(size_t m, size_t n, size_t k, double *cdf, double *pmf)
{
    double *f = calloc(k + 1, sizeof *f);
    if (!f)
        return -1;
    f[0] = 1;
    double total = 1; /* C(m+n, m), built as C(n+i, i) = C(n+i-1, i-1) * (n+i) / i */
    for (size_t i = 1; i <= m; i++) {
        for (size_t x = k, j = n + i; x >= j; x--) /* j >= 1: x never wraps */
            f[x] -= f[x - j];
        for (size_t x = i; x <= k; x++)
            f[x] += f[x - i];
        total = total * (double)(n + i) / (double)i;
    }
    double sum = 0;
    for (size_t x = 0; x <= k; x++)
        sum += f[x];
    *cdf = sum / total;
    *pmf = f[k] / total;
    free(f);
    return 0;
}

/* Exact one-sided p-values: P(U >= u) and P(U <= u). The distribution is symmetric about
 * m*n/2, so only the lower half is built: the tail on the near side of u is its CDF, the
 * far side 1 - CDF + PMF (both tails include the mass at u, as SciPy's sf does). */
static int exact_p(size_t na, size_t nb, double u, mlc_mwu *r)
{
    size_t m = na < nb ? na : nb, n = na < nb ? nb : na;
    double mn = (double)na * (double)nb;
    bool low = u <= mn - u;
    double cdf, pmf;
    if (exact_tail(m, n, (size_t)(low ? u : mn - u), &cdf, &pmf) != 0)
        return -1;
    double near = cdf, far = fmin(1.0, 1.0 - cdf + pmf);
    r->p_less = low ? near : far;
    r->p_greater = low ? far : near;
    r->z = 0;
    r->exact = true;
    return 0;
}

/* ---- Mann-Whitney U: normal approximation ------------------------------------------------ */

/* Upper tail of the standard normal, P(Z > z); erfc keeps full relative precision far out
 * in the tail where 1 - Phi(z) would cancel to 0. */
static double norm_sf(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

static void normal_p(size_t na, size_t nb, double u, double tie_term, mlc_mwu *r)
{
    double n1 = (double)na, n2 = (double)nb, n = n1 + n2;
    double mu = n1 * n2 / 2;
    /* n >= 2 here (na, nb >= 1), so n*(n-1) > 0. */
    double var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)));
    double sigma = var > 0 ? sqrt(var) : 0;
    r->exact = false;
    if (sigma == 0) {
        /* Every value equal: U = mu, nothing to tell the samples apart. SciPy gets the same
         * through -0.5/0 = -inf and sf(-inf) = 1. */
        r->z = 0;
        r->p_greater = r->p_less = 1;
        return;
    }
    r->z = (u - mu) / sigma;
    /* Continuity correction: each side's tail starts half a step before the observed U,
     * so the mass at U itself is counted, as in the exact test. */
    r->p_greater = norm_sf((u - mu - 0.5) / sigma);
    r->p_less = norm_sf((mu - u - 0.5) / sigma);
}

int mlc_mann_whitney(const double *a, size_t na, const double *b, size_t nb, mlc_mwu *out)
{
    if (!a || !b || !out || na == 0 || nb == 0)
        return -1;
    mlc_mwu r = {0};
    double tie_term;
    if (u_and_ties(a, na, b, nb, &r.u, &tie_term) != 0)
        return -1;
    r.ties = tie_term > 0;
    if (use_exact(na, nb, r.ties)) {
        if (exact_p(na, nb, r.u, &r) != 0)
            return -1;
    } else {
        normal_p(na, nb, r.u, tie_term, &r);
    }
    *out = r;
    return 0;
}
