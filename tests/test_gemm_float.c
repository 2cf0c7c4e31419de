/* tests/test_gemm_float.c: the float-weight prefill tiles of kernels/cpu/gemm_float.c (F32,
 * F16, BF16), for every kernel set (ISA) of this CPU that has them.
 *
 * - Every output bit-identical to the sequential f32 FMA chain over k from 0 (gemm_float.h
 *   promises that order whatever the panel, tile, block and thread split), computed here
 *   with fmaf.
 * - Within float rounding of the set's own per-row dot: |gemm - dot| <= 2 n_in 2^-24
 *   sum |w a| (each is a sum of n_in products in some order; this is twice the classic
 *   bound). Measured worst |gemm - dot| / (2^-24 sum |w a|): 4.0 (Sapphire Rapids).
 * - NMSE against the float64 product of the stored weights and the unrounded activations
 *   within the conformance threshold of matmul for the type. Measured worst pooled NMSE
 *   (Sapphire Rapids, avx2 and avx512): F32 3.0e-13, F16 4.4e-8, BF16 2.6e-6.
 * Shapes: weight rows not a multiple of the 16- or 32-row panel (1, 17, 33, 70), activation
 * rows leaving tile remainders (1, 5, 13, 30: 1 and 6 of 12), lengths not a multiple of the vector
 * width and past one block of k (1, 13, 64, 1031); 1 and 3 threads. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conformance/tolerance.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/gemm_float.h"
#include "gemm_harness.h"
#include "mlc/quant.h"
#include "util.h"

/* Pooled over the cases of one type, ISA and thread count. */
typedef struct stats {
    double err2, ref2; /* squared errors against float64, squared float64 values */
    double worst_ulps; /* max |gemm - dot| / (2^-24 sum |w a|) */
} stats;

static void run_case(const mlc_cpu_kernels *k, mlc_pool *pool, mlc_type t, gh_shape sh, uint64_t seed, stats *st)
{
    gh_case c;
    gh_case_init(&c, k, t, sh, GH_GAUSS, seed);
    cr_assert_eq(c.a_row, sizeof(float) * (size_t)sh.n_in, "activations of %s in %s are F32", mlc_type_name(t),
                 k->isa);
    const float *a = (const float *)c.a;
    cr_assert(mlc_cpu_gemm_float(pool, k, t, c.w, c.w_row, sh.n_in, sh.n_out, c.a, c.a_row, sh.n, c.y),
              "%s %s: the float tile path declined", k->isa, mlc_type_name(t));
    for (int64_t i = 0; i < sh.n; i++)
        for (int64_t r = 0; r < sh.n_out; r++) {
            const float *wr = c.wf + r * sh.n_in, *ar = a + i * sh.n_in;
            const float got = c.y[i * sh.n_out + r];
            float chain = 0;
            double d = 0, mag = 0;
            for (int64_t q = 0; q < sh.n_in; q++) {
                chain = fmaf(wr[q], ar[q], chain);
                d += (double)wr[q] * (double)c.xf[i * sh.n_in + q];
                mag += fabs((double)wr[q] * (double)ar[q]);
            }
            cr_assert_eq(tu_f32_bits(got), tu_f32_bits(chain),
                         "%s %s n_in %lld n_out %lld n %lld: y[%lld][%lld] = %.9g, FMA chain %.9g", k->isa,
                         mlc_type_name(t), (long long)sh.n_in, (long long)sh.n_out, (long long)sh.n, (long long)i,
                         (long long)r, got, chain);
            const float dot = k->dot[t](sh.n_in, c.w + (size_t)r * c.w_row, ar);
            const double ulps = fabs((double)got - (double)dot) / (ldexp(1.0, -24) * mag);
            cr_assert(ulps <= 2.0 * (double)sh.n_in, "%s %s n_in %lld: y[%lld][%lld] = %.9g, dot %.9g (%.3g units)",
                      k->isa, mlc_type_name(t), (long long)sh.n_in, (long long)i, (long long)r, got, dot, ulps);
            st->worst_ulps = ulps > st->worst_ulps ? ulps : st->worst_ulps;
            st->err2 += (got - d) * (got - d);
            st->ref2 += d * d;
        }
    gh_case_free(&c);
}

static void check_type(mlc_type t)
{
    mlc_cpu_kernels k;
    mlc_err err = {0};
    cr_assert_eq(mlc_cpu_kernels_init(&k, "scalar", &err), MLC_OK, "%s", err.msg);
    cr_assert_not(mlc_cpu_gemm_float_has(&k, t), "the scalar set has no float tile");
    char isas[64];
    snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
    int covered = 0;
    double worst = 0, worst_ulps = 0;
    const int64_t lens[] = {1, 13, 64, 1031}, outs[] = {1, 17, 33, 70}, toks[] = {1, 5, 13, 30};
    for (char *save = NULL, *isa = strtok_r(isas, " ", &save); isa; isa = strtok_r(NULL, " ", &save)) {
        cr_assert_eq(mlc_cpu_kernels_init(&k, isa, &err), MLC_OK, "%s: %s", isa, err.msg);
        if (!mlc_cpu_gemm_float_has(&k, t))
            continue;
        covered++;
        for (int threads = 1; threads <= 3; threads += 2) {
            mlc_pool *pool = mlc_pool_new(threads);
            cr_assert_not_null(pool);
            uint64_t seed = 0x666C6F6174ull + (uint64_t)t * 131;
            stats st = {0};
            for (size_t li = 0; li < 4; li++)
                for (size_t oi = 0; oi < 4; oi++)
                    for (size_t ti = 0; ti < 4; ti++)
                        run_case(&k, pool, t, (gh_shape){lens[li], outs[oi], toks[ti]}, seed++, &st);
            const double e = st.err2 / st.ref2;
            worst = e > worst ? e : worst;
            worst_ulps = st.worst_ulps > worst_ulps ? st.worst_ulps : worst_ulps;
            mlc_pool_free(pool);
        }
    }
    if (!covered)
        cr_skip_test("no kernel set of this CPU (%s) has a float tile", mlc_cpu_isas_available());
    const double thr = mlc_conf_threshold(MLC_OP_MATMUL, t);
    fprintf(stderr, "gemm_float: %-4s worst NMSE %.3g (threshold %.3g), worst |gemm - dot| %.3g units, %d sets\n",
            mlc_type_name(t), worst, thr, worst_ulps, covered);
    cr_assert(worst <= thr, "%s: worst NMSE %.3g over threshold %.3g", mlc_type_name(t), worst, thr);
}

Test(gemm_float, f32) { check_type(MLC_TYPE_F32); }
Test(gemm_float, f16) { check_type(MLC_TYPE_F16); }
Test(gemm_float, bf16) { check_type(MLC_TYPE_BF16); }

/* The prefill entry of the backend (gemm.c) sends F32, F16 and BF16 here from
 * MLC_CPU_GEMM_FLOAT_MIN_ROWS rows on: same bits; below, it declines (the per-row dots). */
Test(gemm_float, dispatch)
{
    mlc_cpu_kernels k;
    mlc_err err = {0};
    cr_assert_eq(mlc_cpu_kernels_init(&k, NULL, &err), MLC_OK, "%s", err.msg);
    if (!mlc_cpu_gemm_float_has(&k, MLC_TYPE_F16))
        cr_skip_test("the %s set has no float tile", k.isa);
    mlc_pool *pool = mlc_pool_new(2);
    cr_assert_not_null(pool);
    enum { N_IN = 40, N_OUT = 20, N = MLC_CPU_GEMM_FLOAT_MIN_ROWS + 5 };
    const mlc_type types[] = {MLC_TYPE_F32, MLC_TYPE_F16, MLC_TYPE_BF16};
    for (size_t ti = 0; ti < 3; ti++) {
        const mlc_type t = types[ti];
        const size_t w_row = mlc_type_row_bytes(t, N_IN);
        float wf[N_OUT * N_IN], a[N * N_IN], y0[N * N_OUT], y1[N * N_OUT];
        uint8_t w[N_OUT * N_IN * 4];
        uint64_t s = 7;
        for (int i = 0; i < N_OUT * N_IN; i++)
            wf[i] = tu_rng_gauss(&s);
        mlc_quantize_row(t, wf, w, N_OUT * N_IN);
        for (int i = 0; i < N * N_IN; i++)
            a[i] = (float)(i % 7) - 3.0f;
        cr_assert(mlc_cpu_gemm(pool, &k, t, w, w_row, N_IN, N_OUT, (const uint8_t *)a, 4 * N_IN, N, y0), "%s",
                  mlc_type_name(t));
        cr_assert(mlc_cpu_gemm_float(pool, &k, t, w, w_row, N_IN, N_OUT, (const uint8_t *)a, 4 * N_IN, N, y1));
        cr_assert_eq(memcmp(y0, y1, sizeof y0), 0, "%s: mlc_cpu_gemm differs from mlc_cpu_gemm_float",
                     mlc_type_name(t));
        cr_assert_not(mlc_cpu_gemm(pool, &k, t, w, w_row, N_IN, N_OUT, (const uint8_t *)a, 4 * N_IN,
                                   MLC_CPU_GEMM_FLOAT_MIN_ROWS - 1, y0),
                      "%s: below MLC_CPU_GEMM_FLOAT_MIN_ROWS rows the per-row dots run", mlc_type_name(t));
    }
    mlc_pool_free(pool);
}
