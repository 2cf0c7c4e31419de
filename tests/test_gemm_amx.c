/* tests/test_gemm_amx.c: the AMX prefill matmul of kernels/cpu/gemm_amx.c.
 *
 * Every output bit-identical to the scalar set's dot of the same weight row and Q8_0
 * activation row (gemm_amx.h promises it), for Q8_0, Q4_0 and Q5_0 weights. Shapes: weight
 * rows not a multiple of the 16-row tile or the 32-row panel (1, 15, 16, 17, 31, 33, 70),
 * activation rows around the 16-row tile and the pair of tiles (1, 15, 16, 17, 33, 40),
 * lengths of 1, 3 and 25 blocks; 1 and 3 threads. Weight blocks' scales span 2^-6 .. 2^6.
 * Skipped where the CPU or the OS gives no AMX int8 tiles (e.g. AMD Zen 4). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/gemm_amx.h"
#include "../kernels/cpu/vecdot.h"
#include "gemm_harness.h"
#include "mlc/quant.h"
#include "util.h"

static void skip_without_amx(void)
{
    if (!mlc_cpu_amx_usable())
        cr_skip_test("no AMX int8 tiles here (the CPU lacks AMX-TILE/AMX-INT8 or AVX-512, the kernel refused "
                     "the tile state, or MLC_CPU_AMX=0)");
}

static void run_case(const mlc_cpu_kernels *ks, mlc_pool *pool, mlc_type t, gh_shape sh, uint64_t seed)
{
    gh_case c;
    gh_case_init(&c, ks, t, sh, GH_UNIFORM_SPREAD, seed);
    cr_assert(mlc_cpu_gemm_amx(pool, t, c.w, c.w_row, sh.n_in, sh.n_out, c.a, c.a_row, sh.n, c.y),
              "%s: the AMX path declined", mlc_type_name(t));
    for (int64_t i = 0; i < sh.n; i++)
        for (int64_t r = 0; r < sh.n_out; r++) {
            const float want = ks->dot[t](sh.n_in, c.w + (size_t)r * c.w_row, c.a + (size_t)i * c.a_row);
            const float got = c.y[i * sh.n_out + r];
            cr_assert_eq(tu_f32_bits(got), tu_f32_bits(want),
                         "%s n_in %lld n_out %lld n %lld: y[%lld][%lld] = %.9g, scalar %.9g", mlc_type_name(t),
                         (long long)sh.n_in, (long long)sh.n_out, (long long)sh.n, (long long)i, (long long)r, got,
                         want);
        }
    gh_case_free(&c);
}

static void check_type(mlc_type t)
{
    skip_without_amx();
    cr_assert(mlc_cpu_gemm_amx_has(t));
    mlc_cpu_kernels ks;
    mlc_err err = {0};
    cr_assert_eq(mlc_cpu_kernels_init(&ks, "scalar", &err), MLC_OK, "%s", err.msg);
    const int64_t lens[] = {32, 96, 800}, outs[] = {1, 15, 16, 17, 31, 33, 70}, toks[] = {1, 15, 16, 17, 33, 40};
    for (int threads = 1; threads <= 3; threads += 2) {
        mlc_pool *pool = mlc_pool_new(threads);
        cr_assert_not_null(pool);
        uint64_t seed = 0xA3C0000ull + (uint64_t)t * 977;
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
            for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++)
                for (size_t ti = 0; ti < sizeof toks / sizeof *toks; ti++)
                    run_case(&ks, pool, t, (gh_shape){lens[li], outs[oi], toks[ti]}, seed++);
        mlc_pool_free(pool);
    }
}

Test(gemm_amx, q8_0) { check_type(MLC_TYPE_Q8_0); }
Test(gemm_amx, q4_0) { check_type(MLC_TYPE_Q4_0); }
Test(gemm_amx, q5_0) { check_type(MLC_TYPE_Q5_0); }

/* Types without an AMX kernel, and lengths that are not whole blocks, are declined. */
Test(gemm_amx, declines_other_types)
{
    mlc_pool *pool = mlc_pool_new(1);
    cr_assert_not_null(pool);
    float y[4] = {0};
    const uint8_t w[4 * 144] = {0}, a[4 * 292] = {0};
    cr_assert_not(mlc_cpu_gemm_amx(pool, MLC_TYPE_F32, w, 16, 4, 1, a, 16, 1, y));
    cr_assert_not(mlc_cpu_gemm_amx(pool, MLC_TYPE_Q4_K, w, 144, 256, 1, a, 292, 1, y));
    cr_assert_not(mlc_cpu_gemm_amx(pool, MLC_TYPE_Q8_0, w, 34, 16, 1, a, 34, 1, y));
    cr_assert_not(mlc_cpu_gemm_amx_has(MLC_TYPE_Q4_K));
    mlc_pool_free(pool);
}

/* MLC_CPU_AMX=0 turns the path off (for measurements against the other paths). */
Test(gemm_amx, env_disables)
{
    skip_without_amx();
    cr_assert_eq(setenv("MLC_CPU_AMX", "0", 1), 0);
    cr_assert_not(mlc_cpu_amx_usable());
    mlc_pool *pool = mlc_pool_new(1);
    cr_assert_not_null(pool);
    float y[1] = {0};
    const uint8_t w[34] = {0}, a[34] = {0};
    cr_assert_not(mlc_cpu_gemm_amx(pool, MLC_TYPE_Q8_0, w, 34, 32, 1, a, 34, 1, y));
    mlc_pool_free(pool);
    cr_assert_eq(unsetenv("MLC_CPU_AMX"), 0);
    cr_assert(mlc_cpu_amx_usable());
}
