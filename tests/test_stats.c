/* tests/test_stats.c: bench/stats.c, the statistics of the regression gate.
 *
 * Median and quantiles against numpy, the Mann-Whitney U test against hand-worked cases and
 * against SciPy. The SciPy and numpy values are hard-coded (no SciPy at run time); they were
 * computed with SciPy 1.17.1 / numpy 2.4.6 by
 *     scipy.stats.mannwhitneyu(a, b, alternative='greater' | 'less', method='auto',
 *                              use_continuity=True)
 *     numpy.median(v), numpy.quantile(v, q)
 * on the same data: the generated samples come from gen_normalish / gen_dice below, written
 * the same way in Python (same LCG, same exact arithmetic), e.g. for the SciPy calls:
 *     class Gen:  # s = s * 6364136223846793005 + 1442695040888963407 mod 2**64
 *         def normalish(s, mean, sd):
 *             t = sum(s.next() >> 40 for _ in range(12)); return mean + sd*(t/16777216.0 - 6.0)
 *         def dice(s, k, off): return float((s.next() >> 33) % k + off)
 * Tolerances: relative 1e-9 on exact p-values, 1e-6 on normal-approximation ones. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../bench/stats.h"

/* ---- helpers ----------------------------------------------------------------------------- */

#define REL_EXACT 1e-9
#define REL_NORMAL 1e-6

static void assert_rel(double got, double want, double rel, const char *what)
{
    double tol = rel * fabs(want);
    cr_assert(fabs(got - want) <= tol, "%s: got %.17g, want %.17g (rel %g)", what, got, want,
              rel);
}

/* Fixed generator (64-bit LCG, Knuth's MMIX constants): the test data must be reproducible
 * bit for bit in Python to get SciPy's answer for it. */
static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s;
}

/* Normal-ish (Irwin-Hall: sum of 12 uniforms minus 6, sd 1) scaled by sd. Every operation
 * is exact (24-bit integers, division by 2^24, sd a power of two, mean an integer), so no
 * rounding or FMA contraction can make C and Python disagree. */
static double *gen_normalish(uint64_t seed, size_t n, double mean, double sd)
{
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++) {
        uint64_t t = 0;
        for (int k = 0; k < 12; k++)
            t += lcg_next(&seed) >> 40;
        v[i] = mean + sd * ((double)t / 16777216.0 - 6.0);
    }
    return v;
}

/* Integer-valued data in [off, off+k): heavy ties, like token counts or ms-rounded times. */
static double *gen_dice(uint64_t seed, size_t n, unsigned k, double off)
{
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (double)((lcg_next(&seed) >> 33) % k) + off;
    return v;
}

/* A SciPy (or hand-worked) reference for one call. */
typedef struct mwu_ref {
    double u, p_greater, p_less;
    bool exact, ties;
} mwu_ref;

static mlc_mwu mwu_check(const double *a, size_t na, const double *b, size_t nb, mwu_ref want)
{
    mlc_mwu r;
    cr_assert_eq(mlc_mann_whitney(a, na, b, nb, &r), 0, "na=%zu nb=%zu", na, nb);
    cr_assert_eq(r.u, want.u, "U: got %.17g, want %.17g", r.u, want.u);
    cr_assert_eq(r.exact, want.exact, "exact: got %d", r.exact);
    cr_assert_eq(r.ties, want.ties, "ties: got %d", r.ties);
    double rel = want.exact ? REL_EXACT : REL_NORMAL;
    assert_rel(r.p_greater, want.p_greater, rel, "p_greater");
    assert_rel(r.p_less, want.p_less, rel, "p_less");
    if (r.exact)
        cr_assert_eq(r.z, 0.0);
    return r;
}

/* Generated normal-ish samples: a ~ (seed_a, na, mean_a), b ~ (seed_b, nb, mean_b), sd 8. */
static void mwu_check_gen(uint64_t seed_a, size_t na, double mean_a, uint64_t seed_b, size_t nb,
                          double mean_b, mwu_ref want)
{
    double *a = gen_normalish(seed_a, na, mean_a, 8);
    double *b = gen_normalish(seed_b, nb, mean_b, 8);
    mwu_check(a, na, b, nb, want);
    free(a);
    free(b);
}

/* ---- median and quantile ----------------------------------------------------------------- */

Test(stats, median_odd_even_one)
{
    const double odd[] = {3, 1, 2}, even[] = {4, 1, 3, 2}, one[] = {7.5};
    cr_assert_eq(mlc_median(odd, 3), 2.0);
    cr_assert_eq(mlc_median(even, 4), 2.5); /* (2 + 3) / 2 */
    cr_assert_eq(mlc_median(one, 1), 7.5);
    /* The input is left as it was (the function sorts a copy). */
    cr_assert(odd[0] == 3 && odd[1] == 1 && odd[2] == 2);
    cr_assert(even[0] == 4 && even[1] == 1 && even[2] == 3 && even[3] == 2);
}

/* numpy 2.4.6: numpy.quantile(v, q) with the default method='linear'. */
Test(stats, quantile_matches_numpy)
{
    static const double qs[] = {0, 0.1, 0.25, 0.5, 0.9, 0.99, 1};
    static const double odd[] = {3, 1, 2};
    static const double odd_q[] = {1.0, 1.2, 1.5, 2.0, 2.8, 2.98, 3.0};
    static const double even[] = {4, 1, 3, 2};
    static const double even_q[] = {1.0, 1.3, 1.75, 2.5, 3.7, 3.9699999999999998, 4.0};
    static const double ten[] = {2.5, -1.0, 10.0, 3.0, 3.0, 0.25, 8.0, -4.5, 6.0, 1.0};
    static const double ten_q[] = {-4.5, -1.3499999999999999, 0.4375, 2.75, 8.2, 9.82, 10.0};
    static const double one[] = {7.5};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "q=%g", qs[i]);
        assert_rel(mlc_quantile(odd, 3, qs[i]), odd_q[i], 1e-12, what);
        assert_rel(mlc_quantile(even, 4, qs[i]), even_q[i], 1e-12, what);
        assert_rel(mlc_quantile(ten, 10, qs[i]), ten_q[i], 1e-12, what);
        cr_assert_eq(mlc_quantile(one, 1, qs[i]), 7.5, "%s", what);
    }
    cr_assert_eq(mlc_median(ten, 10), 2.75); /* numpy.median */
    /* The ends are the order statistics exactly, not interpolated approximations. */
    cr_assert_eq(mlc_quantile(ten, 10, 0.0), -4.5);
    cr_assert_eq(mlc_quantile(ten, 10, 1.0), 10.0);
}

Test(stats, quantile_errors)
{
    const double v[] = {1, 2, 3}, withnan[] = {1, NAN, 3};
    cr_assert(isnan(mlc_median(v, 0)));
    cr_assert(isnan(mlc_quantile(v, 0, 0.5)));
    cr_assert(isnan(mlc_median(withnan, 3)));
    cr_assert(isnan(mlc_quantile(withnan, 3, 0.5)));
    cr_assert(isnan(mlc_quantile(v, 3, -0.01)));
    cr_assert(isnan(mlc_quantile(v, 3, 1.01)));
    cr_assert(isnan(mlc_quantile(v, 3, NAN)));
}

/* ---- Mann-Whitney U: hand-worked ---------------------------------------------------------- */

/* a={1,2}, b={3,4}: no a beats any b, U = 0. Under H0 the C(4,2) = 6 orderings of which two
 * of the four values are a's are equally likely, and only {1,2} gives U = 0: p_less =
 * P(U <= 0) = 1/6, p_greater = P(U >= 0) = 1. */
Test(stats, mwu_hand_2v2)
{
    const double a[] = {1, 2}, b[] = {3, 4};
    mwu_check(a, 2, b, 2, (mwu_ref){0, 1.0, 1.0 / 6, true, false});
    /* Swapped, the same test the other way round: U = 2*2 - 0. */
    mwu_check(b, 2, a, 2, (mwu_ref){4, 1.0 / 6, 1.0, true, false});
}

/* na = 1: a={5}, b={1,2,3}: U = 3 (5 beats all three). With one a value its rank is uniform
 * over 4 places, so U is uniform on {0,1,2,3}: p_greater = P(U >= 3) = 1/4, p_less = 1. */
Test(stats, mwu_hand_na1)
{
    const double a[] = {5}, b[] = {1, 2, 3};
    mwu_check(a, 1, b, 3, (mwu_ref){3, 0.25, 1.0, true, false});
}

/* nb = 1: a={1,3,5}, b={2}: U = 2 (3 and 5 beat 2). U uniform on {0..3}: p_greater =
 * P(U >= 2) = 2/4, p_less = P(U <= 2) = 3/4. */
Test(stats, mwu_hand_nb1)
{
    const double a[] = {1, 3, 5}, b[] = {2};
    mwu_check(a, 3, b, 1, (mwu_ref){2, 0.5, 0.75, true, false});
}

/* With ties: a={1,1}, b={1,2}. Of the four pairs (a_i, b_j), two are (1,1) (ties, 0.5
 * each) and two are (1,2) (0 each): U = 1. Ties force the normal approximation:
 * mu = 2*2/2 = 2, one tie group of t = 3 (the three 1s) gives sum(t^3 - t) = 24, so
 * sigma^2 = 4/12 * ((4+1) - 24/(4*3)) = 1/3 * 3 = 1. With the continuity correction
 * p_greater = P(Z > (1 - 2 - 0.5)/1) = Phi(1.5) and p_less = P(Z > (2 - 1 - 0.5)/1) =
 * 1 - Phi(0.5); z = (1 - 2)/1 = -1. */
Test(stats, mwu_hand_ties)
{
    const double a[] = {1, 1}, b[] = {1, 2};
    double phi_15 = 0.5 * erfc(-1.5 / sqrt(2.0)), sf_05 = 0.5 * erfc(0.5 / sqrt(2.0));
    mlc_mwu r = mwu_check(a, 2, b, 2, (mwu_ref){1, phi_15, sf_05, false, true});
    assert_rel(r.z, -1.0, 1e-12, "z");
    /* SciPy gives the same: 0.9331927987311419, 0.3085375387259869. */
    assert_rel(r.p_greater, 0.9331927987311419, REL_NORMAL, "scipy p_greater");
    assert_rel(r.p_less, 0.3085375387259869, REL_NORMAL, "scipy p_less");
}

/* Every pooled value equal: sigma = 0, U = mu = 5*7/2; no evidence either way, p = 1 (SciPy:
 * 1.0 and 1.0, U = 17.5), never NaN. */
Test(stats, mwu_all_equal)
{
    const double a[] = {3, 3, 3, 3, 3}, b[] = {3, 3, 3, 3, 3, 3, 3};
    mlc_mwu r = mwu_check(a, 5, b, 7, (mwu_ref){17.5, 1.0, 1.0, false, true});
    cr_assert_eq(r.z, 0.0);
    /* The smallest case: one value each, equal. */
    mwu_check(a, 1, b, 1, (mwu_ref){0.5, 1.0, 1.0, false, true});
}

/* ---- Mann-Whitney U: against SciPy 1.17.1 ------------------------------------------------- */

/* Exact, 5 vs 7, no ties. */
Test(stats, mwu_scipy_exact_small)
{
    const double a[] = {1.5, 3.2, 4.1, 7.7, 9.0};
    const double b[] = {2.0, 2.5, 5.5, 6.0, 8.1, 10.2, 11.0};
    mwu_check(a, 5, b, 7, (mwu_ref){13, 0.7840909090909091, 0.2651515151515152, true, false});
}

/* Infinities are ordinary values: a={inf,1,2}, b={-inf,0.5,3,4}, exact. */
Test(stats, mwu_scipy_infinities)
{
    const double a[] = {INFINITY, 1, 2}, b[] = {-INFINITY, 0.5, 3, 4};
    mwu_check(a, 3, b, 4, (mwu_ref){8, 0.3142857142857143, 0.8, true, false});
}

/* SciPy's size rule at its edge: 8 vs 9 is exact (one sample <= 8), 9 vs 9 is normal. */
Test(stats, mwu_scipy_size_rule)
{
    mwu_check_gen(1, 8, 104, 2, 9, 100,
                  (mwu_ref){46, 0.18519127930892637, 0.8393665158371041, true, false});
    mwu_check_gen(18, 9, 104, 19, 9, 100,
                  (mwu_ref){60, 0.0466988372643963, 0.9613056944289967, false, false});
}

/* Exact with a small and a larger sample, both ways round in size. */
Test(stats, mwu_scipy_exact_unbalanced)
{
    mwu_check_gen(3, 3, 100, 4, 20, 104,
                  (mwu_ref){28, 0.5849802371541502, 0.4488989271597967, true, false});
    /* 8 vs 2000: C(2008, 8) ~ 6.5e21 orderings, beyond 2^53, so the counts are no longer
     * exact integers in doubles; the p-values must still agree. */
    mwu_check_gen(5, 8, 101, 6, 2000, 100,
                  (mwu_ref){6569, 0.8056782532704035, 0.1944890317539109, true, false});
}

/* Complete separation: the only ordering with U = 8*50 has p = 1/C(58,8) = 1/1916797311;
 * a tiny p must keep its relative precision. */
Test(stats, mwu_scipy_exact_separated)
{
    double a[8], b[50];
    for (int i = 0; i < 8; i++)
        a[i] = 100 + i;
    for (int i = 0; i < 50; i++)
        b[i] = i;
    mwu_check(a, 8, b, 50, (mwu_ref){400, 5.217035699399518e-10, 1.0, true, false});
    assert_rel(5.217035699399518e-10, 1.0 / 1916797311.0, 1e-12, "hand");
    /* Normal approximation far in the tail (erfc, not 1 - Phi): p ~ 1.3e-34. */
    double c[100], d[100];
    for (int i = 0; i < 100; i++) {
        c[i] = 1000 + i;
        d[i] = i;
    }
    mwu_check(c, 100, d, 100, (mwu_ref){10000, 1.2810718345817004e-34, 1.0, false, false});
}

/* 30 vs 40 normal-ish samples, sd 8, the candidate shifted by half a sd up, then down. */
Test(stats, mwu_scipy_normal_both_directions)
{
    mwu_check_gen(7, 30, 104, 8, 40, 100,
                  (mwu_ref){852, 0.001419023649382677, 0.9986350626516132, false, false});
    mwu_check_gen(9, 30, 96, 10, 40, 100,
                  (mwu_ref){378, 0.9958618997232619, 0.004285327574345489, false, false});
}

/* 200 vs 300 with a small shift (1/16 sd): no evidence. */
Test(stats, mwu_scipy_normal_large)
{
    mwu_check_gen(16, 200, 100, 17, 300, 100.5,
                  (mwu_ref){30996, 0.2646808079789666, 0.7355259740385286, false, false});
}

/* Integer-valued data, heavy ties: 25 values in 1..6 vs 30 in 0..5; and 4 vs 5 in 0..2,
 * small enough for the exact test but tied, hence normal. */
Test(stats, mwu_scipy_heavy_ties)
{
    double *a = gen_dice(11, 25, 6, 1), *b = gen_dice(12, 30, 6, 0);
    cr_assert(a[0] == 5 && a[1] == 2 && a[2] == 6); /* the Python generator's first values */
    mwu_check(a, 25, b, 30, (mwu_ref){418, 0.23260934874916556, 0.7726081317264852, false, true});
    free(a);
    free(b);
    a = gen_dice(13, 4, 3, 0);
    b = gen_dice(14, 5, 3, 0);
    mwu_check(a, 4, b, 5, (mwu_ref){10, 0.5513605193699584, 0.5513605193699584, false, true});
    free(a);
    free(b);
}

/* The same 20 values on both sides: every value tied across the samples, U = mn/2, and the
 * continuity correction puts both p just above 1/2. */
Test(stats, mwu_scipy_identical)
{
    double *a = gen_normalish(15, 20, 100, 8);
    mlc_mwu r = mwu_check(a, 20, a, 20,
                          (mwu_ref){200, 0.5054006159175841, 0.5054006159175841, false, true});
    cr_assert_eq(r.z, 0.0);
    free(a);
}

/* The generator gives the values the Python one does (else the SciPy references are off). */
Test(stats, generator_matches_python)
{
    double *v = gen_normalish(16, 3, 100, 8);
    cr_assert_eq(v[0], 98.18515396118164);
    cr_assert_eq(v[1], 92.2914924621582);
    cr_assert_eq(v[2], 90.9064998626709);
    free(v);
}

/* ---- Mann-Whitney U: properties and errors ------------------------------------------------- */

/* The exact path's work cap: 8 vs 20000 is still exact (SciPy method='auto' agrees), 8 vs
 * 100000 falls back to the normal approximation (compared with SciPy's
 * method='asymptotic'; the exact test there would take SciPy minutes). a = 0.5, 12500.5,
 * ..., 87500.5 and b = 0, 1, 2, ...: no ties. */
Test(stats, mwu_exact_cap)
{
    double a[8], *b = malloc(100000 * sizeof *b);
    cr_assert_not_null(b);
    for (int i = 0; i < 8; i++)
        a[i] = i * 12500 + 0.5;
    for (int i = 0; i < 100000; i++)
        b[i] = i;
    mwu_check(a, 8, b, 20000,
              (mwu_ref){132502, 0.00031775760185750464, 0.9996823347088505, true, false});
    mlc_mwu r = mwu_check(a, 8, b, 100000,
                          (mwu_ref){350008, 0.7298148193279652, 0.27018923145820806, false,
                                    false});
    cr_assert(r.z < 0 && r.z > -1, "z = %g", r.z); /* U below mu = 400000 */
    /* One-sided p-values with a continuity correction overlap by the mass at U: sum > 1. */
    cr_assert(r.p_greater + r.p_less > 1.0);
    free(b);
}

Test(stats, mwu_errors)
{
    const double a[] = {1, 2, 3}, b[] = {4, 5}, withnan[] = {1, NAN};
    mlc_mwu r = {.u = 42};
    cr_assert_eq(mlc_mann_whitney(a, 0, b, 2, &r), -1);
    cr_assert_eq(mlc_mann_whitney(a, 3, b, 0, &r), -1);
    cr_assert_eq(mlc_mann_whitney(withnan, 2, b, 2, &r), -1);
    cr_assert_eq(mlc_mann_whitney(a, 3, withnan, 2, &r), -1);
    cr_assert_eq(mlc_mann_whitney(a, 3, b, 2, NULL), -1);
    cr_assert_eq(r.u, 42, "out untouched on error");
}
