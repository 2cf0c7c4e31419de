/* stats.h: order statistics and the Mann-Whitney U test for the regression gate
 * (`mlc-bench compare`, DESIGN.md "Regression gate").
 *
 * The gate compares the raw samples of a noisy metric (latency in ms, throughput in tok/s:
 * the functions are unit-free, the result of the quantiles is in the unit of the samples)
 * of a candidate against a baseline. It needs a robust centre (the median ratio) and a
 * distribution-free one-sided test (Mann-Whitney U), because latencies are skewed and
 * heavy-tailed, so a t-test's normality assumption does not hold.
 *
 * The test matches SciPy's `scipy.stats.mannwhitneyu(a, b, alternative=..., method='auto',
 * use_continuity=True)` (checked against SciPy 1.17.1), so a result can be reproduced
 * outside mlc-bench. No function keeps state: they are safe to call from any thread. */
#ifndef MLC_BENCH_STATS_H
#define MLC_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>

/* Median of v[0..n): the middle order statistic, or the mean of the two middle ones for an
 * even n (numpy.median). v is not modified (the function sorts a copy). Returns NaN for
 * n == 0, when a value is NaN, or when the copy cannot be allocated. */
double mlc_median(const double *v, size_t n);

/* Quantile q in [0,1] of v[0..n) by linear interpolation between the order statistics
 * x[0] <= ... <= x[n-1] at position h = (n-1)*q (numpy.quantile's default 'linear' method,
 * so p99 of 100 samples is x[98] + 0.01*(x[99]-x[98])). v is not modified. Returns NaN for
 * n == 0, q outside [0,1] or NaN, a NaN value, or out of memory. */
double mlc_quantile(const double *v, size_t n, double q);

/* Result of a Mann-Whitney U test of a against b. */
typedef struct mlc_mwu {
    double u;          /* U statistic of sample a: #pairs (a_i > b_j) + 0.5 * #ties, in
                        * [0, na*nb]; na*nb/2 when neither sample tends to be larger */
    double p_greater;  /* one-sided p-value for H1: a is stochastically greater than b */
    double p_less;     /* one-sided p-value for H1: a is stochastically less than b */
    double z;          /* normal-approximation z = (u - na*nb/2) / sigma, without the
                        * continuity correction (the p-values have it); positive when a
                        * tends to be greater. 0 when exact, or when sigma is 0 */
    bool exact;        /* p from the exact distribution of U (small samples, no ties) */
    bool ties;         /* any tie between the pooled values */
} mlc_mwu;

/* Mann-Whitney U test of a[0..na) vs b[0..nb).
 *
 * Method (SciPy's method='auto'): the exact null distribution of U when there is no tie and
 * na <= 8 or nb <= 8 (and the computation is small, see stats.c; larger ones fall back to
 * the normal approximation, which is then accurate); otherwise the normal approximation
 * with the tie-corrected variance and a continuity correction of 0.5. When every pooled
 * value is equal (sigma 0) both p-values are 1: the data carry no evidence either way.
 * Infinite values are ordinary values (larger or smaller than all finite ones).
 *
 * NaN values are an error (they have no rank). Returns 0, or -1 when na or nb is 0, a value
 * is NaN, out is NULL, or out of memory; *out is then left untouched. */
int mlc_mann_whitney(const double *a, size_t na, const double *b, size_t nb, mlc_mwu *out);

#endif
