/* tests/test_vecdot_attn.c: the attention kernels of kernels/cpu/vecdot_attn.c (kq, axpy,
 * exp_sub) in every kernel set this CPU runs.
 * - Every set gives the scalar set's bits (kq and axpy on F16 and F32 rows of odd lengths
 *   1..67 and 256, at odd offsets; exp on blocks of odd lengths), so attention does not
 *   depend on --isa.
 * - kq is within 1e-6 of a double-precision dot, relative to sum |q * k|.
 * - exp_sub is within 2 ulp of the double-precision e^x over [-87, 0], exactly 1 at 0, 0
 *   below -87.4 and for -inf, NaN for NaN; the subtraction of `sub` is part of it. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../kernels/cpu/vecdot.h"
#include "mlc/quant.h"
#include "util.h"

static const char *const isas[] = {"scalar", "avx2", "avx512"};

/* The kernel set named isa, or false when this CPU lacks it. */
static bool set_for(const char *isa, mlc_cpu_kernels *k)
{
    mlc_err err;
    return mlc_cpu_kernels_init(k, isa, &err) == MLC_OK;
}

Test(vecdot_attn, kq_and_axpy_match_scalar_bits)
{
    mlc_cpu_kernels ref, k;
    cr_assert(set_for("scalar", &ref));
    uint64_t seed = 7;
    float q[300], kf[300], out_ref[300], out[300];
    uint16_t kh[300];
    for (int i = 0; i < 300; i++) {
        q[i] = mlc_fp16_to_fp32(mlc_fp32_to_fp16(tu_lcg_pm1(&seed) * 3));
        kf[i] = tu_lcg_pm1(&seed) * 5;
        kh[i] = mlc_fp32_to_fp16(kf[i]);
    }
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int n = 1; n <= 256; n = n < 67 ? n + 1 : 256) {
            for (int f16 = 0; f16 < 2; f16++) {
                const void *row = f16 ? (const void *)(kh + 3) : (const void *)(kf + 3);
                float a = ref.kq[f16](n, q + 1, row), b = k.kq[f16](n, q + 1, row);
                cr_assert_eq(tu_f32_bits(a), tu_f32_bits(b), "%s kq f16=%d n=%d: %a against scalar %a", isas[s], f16, n, b, a);
                double exact = 0, mag = 0;
                for (int d = 0; d < n; d++) {
                    double kv = f16 ? mlc_fp16_to_fp32(kh[3 + d]) : kf[3 + d];
                    exact += (double)q[1 + d] * kv;
                    mag += fabs((double)q[1 + d] * kv);
                }
                cr_assert(fabs(a - exact) <= 1e-6 * mag + 1e-30, "kq n=%d: %g against %g", n, a, exact);
                for (int d = 0; d < n; d++)
                    out_ref[d] = out[d] = tu_lcg_pm1(&seed);
                ref.axpy[f16](n, 0.37f, row, out_ref);
                k.axpy[f16](n, 0.37f, row, out);
                cr_assert_eq(memcmp(out_ref, out, (size_t)n * sizeof(float)), 0, "%s axpy f16=%d n=%d", isas[s], f16, n);
            }
            if (n == 256)
                break;
        }
    }
}

Test(vecdot_attn, exp_matches_scalar_bits_and_is_accurate)
{
    mlc_cpu_kernels ref, k;
    cr_assert(set_for("scalar", &ref));
    enum { N = 20011 };
    static float x[N], a[N], b[N];
    for (int i = 0; i < N; i++)
        x[i] = -87.0f * (float)i / (N - 1) + 1.5f; /* minus sub = 1.5: [-87, 0] */
    ref.exp_sub(N, x, 1.5f, a);
    for (int i = 0; i < N; i++) {
        const double e = exp((double)(x[i] - 1.5f));
        const double ulp = ldexp(1.0, ilogb(e) - 23);
        cr_assert(fabs(a[i] - e) <= 2 * ulp, "exp(%a) = %a, exact %a", (double)(x[i] - 1.5f), (double)a[i], e);
    }
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int n = 1; n < 40; n += 3) {
            float c[40], d[40];
            k.exp_sub(n, x + 5, 1.5f, d);
            ref.exp_sub(n, x + 5, 1.5f, c);
            cr_assert_eq(memcmp(c, d, (size_t)n * sizeof(float)), 0, "%s exp n=%d", isas[s], n);
        }
        k.exp_sub(N, x, 1.5f, b);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "%s exp over [-87, 0]", isas[s]);
        float sp[17] = {0.0f, -INFINITY, NAN, -87.5f, -100.0f, -1e30f, -0.0f, -1e-30f,
                        -87.3f, -1.0f, -2.0f, -0.5f, -10.0f, -20.0f, -40.0f, -80.0f, -86.9f}, o[17];
        k.exp_sub(17, sp, 0.0f, o);
        cr_expect_eq(o[0], 1.0f, "%s: e^0 = %a", isas[s], (double)o[0]);
        cr_expect_eq(o[1], 0.0f, "%s: e^-inf = %a", isas[s], (double)o[1]);
        cr_expect(isnan(o[2]), "%s: e^NaN = %a", isas[s], (double)o[2]);
        cr_expect(o[3] == 0 && o[4] == 0 && o[5] == 0, "%s: below e^-87.4: %a %a %a", isas[s], (double)o[3],
                  (double)o[4], (double)o[5]);
        cr_expect_eq(o[6], 1.0f);
        cr_expect_eq(o[7], 1.0f);
        for (int i = 8; i < 17; i++) {
            const double e = exp((double)sp[i]);
            cr_expect(fabs(o[i] - e) <= 2 * ldexp(1.0, ilogb(e) - 23), "%s: e^%g = %a, exact %a", isas[s],
                      (double)sp[i], (double)o[i], e);
        }
    }
}
