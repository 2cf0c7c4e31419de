/* tests/test_gemm.c: the prefill tile kernels of kernels/cpu/gemm.c, for every weight type
 * and kernel set (ISA) of this CPU that has one.
 *
 * - Every output bit-identical to the scalar set's dot of the same weight row and
 *   activation row (gemm.h promises it: the tile path never changes a logit).
 * - NMSE against the float64 product of the dequantized weights and the unquantized
 *   activations within the conformance threshold of matmul for the type (so a wrong but
 *   self-consistent reference would still be caught).
 * Shapes: rows of weights not a multiple of the 16-row panel (1, 15, 16, 17, 37), tile
 * remainders of activation rows (1, 7, 8, 9, 19), lengths of one block, a few blocks and
 * many; 1 and 3 threads. Data come from a fixed-seed generator. Measured worst pooled
 * NMSE (Zen 4 and Sapphire Rapids, avx2 and avx512): Q8_0 3.0e-5, Q4_0 2.9e-5, Q5_0 3.0e-5,
 * IQ4_NL 2.8e-5, Q4_1 3.1e-5, Q5_1 3.0e-5, Q2_K 5.0e-5, Q3_K 5.1e-5, Q4_K 4.8e-5,
 * Q5_K 4.8e-5, Q6_K 4.9e-5, IQ4_XS 4.9e-5. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conformance/tolerance.h"
#include "../kernels/cpu/gemm.h"
#include "gemm_harness.h"
#include "mlc/quant.h"
#include "util.h"

/* One case: asserts bit identity; adds the squared errors against the float64 reference
 * and the squared reference values to sums[0], sums[1]. */
static void run_case(const mlc_cpu_kernels *ks, const mlc_cpu_kernels *kv, mlc_pool *pool, mlc_type t,
                     gh_shape sh, uint64_t seed, double *sums)
{
    gh_case c;
    gh_case_init(&c, kv, t, sh, GH_GAUSS_SPREAD, seed);
    cr_assert(mlc_cpu_gemm(pool, kv, t, c.w, c.w_row, sh.n_in, sh.n_out, c.a, c.a_row, sh.n, c.y),
              "%s %s: the tile path declined", kv->isa, mlc_type_name(t));
    for (int64_t i = 0; i < sh.n; i++)
        for (int64_t r = 0; r < sh.n_out; r++) {
            const float want = ks->dot[t](sh.n_in, c.w + (size_t)r * c.w_row, c.a + (size_t)i * c.a_row);
            const float got = c.y[i * sh.n_out + r];
            cr_assert_eq(tu_f32_bits(got), tu_f32_bits(want),
                         "%s %s n_in %lld n_out %lld n %lld: y[%lld][%lld] = %.9g, scalar dot %.9g",
                         kv->isa, mlc_type_name(t), (long long)sh.n_in, (long long)sh.n_out, (long long)sh.n,
                         (long long)i, (long long)r, got, want);
            double d = 0;
            for (int64_t k = 0; k < sh.n_in; k++)
                d += (double)c.wf[r * sh.n_in + k] * (double)c.xf[i * sh.n_in + k];
            sums[0] += (got - d) * (got - d);
            sums[1] += d * d;
        }
    gh_case_free(&c);
}

static void check_type(mlc_type t, int64_t blk)
{
    mlc_cpu_kernels ks, kv;
    mlc_err err = {0};
    cr_assert_eq(mlc_cpu_kernels_init(&ks, "scalar", &err), MLC_OK, "%s", err.msg);
    cr_assert_null(mlc_cpu_gemm_kernel(&ks, t), "the scalar set has no tile kernel");
    char isas[64];
    snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
    int covered = 0;
    double worst = 0; /* NMSE pooled over one ISA and thread count's cases */
    const int64_t lens[] = {blk, 3 * blk, blk == 32 ? 25 * blk : 5 * blk};
    const int64_t outs[] = {1, 15, 16, 17, 37}, toks[] = {1, 7, 8, 9, 19};
    for (char *save = NULL, *isa = strtok_r(isas, " ", &save); isa; isa = strtok_r(NULL, " ", &save)) {
        cr_assert_eq(mlc_cpu_kernels_init(&kv, isa, &err), MLC_OK, "%s: %s", isa, err.msg);
        if (!mlc_cpu_gemm_kernel(&kv, t))
            continue;
        covered++;
        for (int threads = 1; threads <= 3; threads += 2) {
            mlc_pool *pool = mlc_pool_new(threads);
            cr_assert_not_null(pool);
            uint64_t seed = 0x6E6D4D0000ull + (uint64_t)t * 131;
            double sums[2] = {0, 0};
            for (size_t li = 0; li < 3; li++)
                for (size_t oi = 0; oi < 5; oi++)
                    for (size_t ti = 0; ti < 5; ti++)
                        run_case(&ks, &kv, pool, t, (gh_shape){lens[li], outs[oi], toks[ti]}, seed++, sums);
            const double e = sums[0] / sums[1];
            worst = e > worst ? e : worst;
            mlc_pool_free(pool);
        }
    }
    if (!covered)
        cr_skip_test("no kernel set of this CPU (%s) has a tile kernel for %s", mlc_cpu_isas_available(),
                     mlc_type_name(t));
    /* The scalar dot gives the same bits, so this bounds the scheme (the activations'
     * 8-bit rounding), as conformance does, pooled over many outputs. */
    const double thr = mlc_conf_threshold(MLC_OP_MATMUL, t);
    fprintf(stderr, "gemm: %-5s worst NMSE %.3g (threshold %.3g), %d kernel sets\n", mlc_type_name(t), worst, thr,
            covered);
    cr_assert(worst <= thr, "%s: worst NMSE %.3g over threshold %.3g", mlc_type_name(t), worst, thr);
}

Test(gemm, q8_0) { check_type(MLC_TYPE_Q8_0, 32); }
Test(gemm, q4_0) { check_type(MLC_TYPE_Q4_0, 32); }
Test(gemm, q5_0) { check_type(MLC_TYPE_Q5_0, 32); }
Test(gemm, iq4_nl) { check_type(MLC_TYPE_IQ4_NL, 32); }
Test(gemm, q4_1) { check_type(MLC_TYPE_Q4_1, 32); }
Test(gemm, q5_1) { check_type(MLC_TYPE_Q5_1, 32); }
Test(gemm, q2_k) { check_type(MLC_TYPE_Q2_K, MLC_QK_K); }
Test(gemm, q3_k) { check_type(MLC_TYPE_Q3_K, MLC_QK_K); }
Test(gemm, q4_k) { check_type(MLC_TYPE_Q4_K, MLC_QK_K); }
Test(gemm, q5_k) { check_type(MLC_TYPE_Q5_K, MLC_QK_K); }
Test(gemm, q6_k) { check_type(MLC_TYPE_Q6_K, MLC_QK_K); }
Test(gemm, iq4_xs) { check_type(MLC_TYPE_IQ4_XS, MLC_QK_K); }

/* Types without a tile kernel (the float ones) are declined: the caller's per-row path runs. */
Test(gemm, declines_other_types)
{
    mlc_cpu_kernels k;
    mlc_err err = {0};
    cr_assert_eq(mlc_cpu_kernels_init(&k, NULL, &err), MLC_OK, "%s", err.msg);
    mlc_pool *pool = mlc_pool_new(1);
    cr_assert_not_null(pool);
    float y[4] = {0};
    const uint8_t w[4 * 4] = {0}, a[4 * 4] = {0};
    cr_assert_not(mlc_cpu_gemm(pool, &k, MLC_TYPE_F32, w, 16, 4, 1, a, 16, 1, y));
    cr_assert_null(mlc_cpu_gemm_kernel(&k, MLC_TYPE_BF16));
    mlc_pool_free(pool);
}
