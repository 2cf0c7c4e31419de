/* tests/test_vecdot_gelu.c: the GEGLU kernel of every set (vecdot_gelu.c).
 * - Against the definition with libm: the tanh of every 127th float in [-12, 12] (about 17
 *   million arguments, denormals and both zeros included) rounds to the same float as
 *   (float)tanh((double)y); measured: 0 differences on Sapphire Rapids, every set. The
 *   recipe's ~1e-16 relative error could differ from libm only within that distance of a
 *   float rounding boundary, which no argument of the sweep reaches.
 * - Every set gives the scalar set's bits, over vector remainders (n = 1 .. 19).
 * - NaN, +-inf, +-0, overflowing cubes and saturated tanh give libm's definition's bits. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/vecdot.h"
#include "util.h"

static const char *const isas[] = {"scalar", "avx2", "avx512"};

static bool set_for(const char *isa, mlc_cpu_kernels *k)
{
    mlc_err err = {0};
    return mlc_cpu_kernels_init(k, isa, &err) == MLC_OK;
}

/* The definition, with libm's double tanh. */
static float gelu_ref(float x)
{
    const float y = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    const float t = (float)tanh((double)y);
    return 0.5f * x * (1.0f + t);
}

Test(vecdot_gelu, tanh_rounds_as_libm, .timeout = 300)
{
    enum { CHUNK = 4096 };
    static float x[CHUNK], up[CHUNK], out[CHUNK];
    for (int i = 0; i < CHUNK; i++)
        up[i] = 1.0f;
    mlc_cpu_kernels k;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        int64_t checked = 0, differ = 0;
        for (int sign = 0; sign < 2; sign++) {
            const uint32_t top = tu_f32_bits(12.0f);
            for (uint32_t u = 0; u <= top;) {
                int m = 0;
                for (; m < CHUNK && u <= top; m++, u += 127)
                    x[m] = tu_f32_of_bits(u | (sign ? 0x80000000u : 0));
                k.geglu(m, x, up, out);
                for (int i = 0; i < m; i++, checked++)
                    if (tu_f32_bits(out[i]) != tu_f32_bits(gelu_ref(x[i])) && differ++ < 5)
                        cr_log_info("%s: x %a gives %a, libm %a", isas[s], x[i], out[i], gelu_ref(x[i]));
            }
        }
        cr_expect_eq(differ, 0, "%s: %lld of %lld arguments differ from libm's tanh", isas[s], (long long)differ,
                     (long long)checked);
    }
}

Test(vecdot_gelu, every_set_gives_scalar_bits)
{
    mlc_cpu_kernels ks, k;
    cr_assert(set_for("scalar", &ks));
    float x[19], up[19], a[19], b[19];
    for (int i = 0; i < 19; i++) {
        x[i] = (float)(i - 9) * 0.61f + 0.013f * (float)(i * i);
        up[i] = 1.0f + 0.25f * (float)(i % 5);
    }
    for (size_t s = 1; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int n = 1; n <= 19; n++) {
            ks.geglu(n, x, up, a);
            k.geglu(n, x, up, b);
            for (int i = 0; i < n; i++)
                cr_assert_eq(tu_f32_bits(a[i]), tu_f32_bits(b[i]), "%s n=%d i=%d: %a against scalar %a", isas[s], n, i, b[i], a[i]);
        }
    }
}

Test(vecdot_gelu, special_values)
{
    mlc_cpu_kernels k;
    const float x[9] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, -1e30f, 9.5f, -9.5f};
    float up[9], out[9];
    for (int i = 0; i < 9; i++)
        up[i] = 2.0f;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int rep = 0; rep < 2; rep++) { /* once alone, once inside a full vector */
            float xx[16], uu[16], oo[16];
            const int n = rep ? 16 : 9;
            for (int i = 0; i < n; i++) {
                xx[i] = x[i % 9];
                uu[i] = up[i % 9];
            }
            k.geglu(n, xx, uu, oo);
            memcpy(out, oo, sizeof out);
            for (int i = 0; i < 9; i++) {
                const float want = gelu_ref(x[i]) * up[i];
                cr_expect(isnan(want) ? isnan(out[i]) : tu_f32_bits(out[i]) == tu_f32_bits(want), "%s: x %a gives %a, libm %a",
                          isas[s], x[i], out[i], want);
            }
            cr_expect(isnan(out[0]) && out[1] == INFINITY && out[3] == 0.0f && out[7] == 19.0f,
                      "%s: NaN, inf, 0, 9.5 give %a %a %a %a", isas[s], out[0], out[1], out[3], out[7]);
        }
    }
}
