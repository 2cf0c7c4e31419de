/* tests/test_quant_legacy.c: the 32-value block types Q4_1, Q5_0 and Q5_1 of engine/quant.c
 * (ggml's "legacy" quants next to Q4_0 and Q8_0): hand-decoded blocks, quantized blocks
 * worked out by hand, bytes equal to a transcription of ggml's reference quantizers, and
 * round-trip error bounds. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/quant.h"
#include "util.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void assert_values(const float *y, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        cr_assert(y[i] == want[i], "%s: y[%d] = %g, want %g", what, i, (double)y[i], (double)want[i]);
}

/* ---- Q5_0 ------------------------------------------------------------------------------- */

Test(q5_0, hand_built)
{
    /* Two blocks at an odd address (22 B each: f16 d, u32 qh, qs[16]).
     * Block 0: d = 0.5, qh = 0x0000FFFF, qs[j] = j | (15 - j) << 4. Value j < 16 has low bits
     * j and its fifth bit set: q = 16 + j, (q - 16) * 0.5 = j / 2. Value 16 + j has low bits
     * 15 - j and no fifth bit: q = 15 - j, value (-1 - j) / 2.
     * Block 1: d = -0.25, qh = 0x80000001 (values 0 and 31), qs all 0: those two are
     * q = 16 -> 0; the other 30 are q = 0 -> -16 * -0.25 = 4. */
    uint8_t buf[1 + 2 * 22];
    uint8_t *b = buf + 1;
    put16(b, 0x3800);
    put32(b + 2, 0x0000FFFFu);
    for (int j = 0; j < 16; j++)
        b[6 + j] = (uint8_t)(j | ((15 - j) << 4));
    put16(b + 22, 0xB400);
    put32(b + 24, 0x80000001u);
    memset(b + 28, 0, 16);

    float want[64];
    for (int j = 0; j < 16; j++) {
        want[j] = 0.5f * (float)j;
        want[16 + j] = -0.5f * (float)(1 + j);
    }
    for (int j = 0; j < 32; j++)
        want[32 + j] = (j == 0 || j == 31) ? 0.0f : 4.0f;
    float y[64];
    mlc_dequantize_row(MLC_TYPE_Q5_0, b, y, 64);
    assert_values(y, want, 64, "Q5_0");
}

Test(q5_0, quantize_known_block)
{
    /* Largest magnitude -8 gives d = -8 / -16 = 0.5, id = 2; q = trunc(2x + 16.5), at most 31.
     *   x[0] = -8    -> 0.5   -> 0        x[1] = 7.5  -> 31.5 -> 31
     *   x[2] = 7.9   -> 32.3  -> 31 (clamped)
     *   x[3] = 0.24  -> 16.98 -> 16       x[4] = 0.26 -> 17.02 -> 17
     *   x[16] = -0.25 -> 16 exactly       x[17] = -3  -> 10.5 -> 10
     *   every other value 0 -> 16.
     * qs[j] = (q[j] & 15) | (q[j+16] & 15) << 4; qh bit i = q[i] >> 4: all set but bits 0
     * (q 0) and 17 (q 10), 0xFFFDFFFE. */
    float x[32] = {0};
    x[0] = -8.0f;
    x[1] = 7.5f;
    x[2] = 7.9f;
    x[3] = 0.24f;
    x[4] = 0.26f;
    x[16] = -0.25f;
    x[17] = -3.0f;
    uint8_t q[22];
    mlc_quantize_row(MLC_TYPE_Q5_0, x, q, 32);
    static const uint8_t want[22] = {0x00, 0x38, 0xFE, 0xFF, 0xFD, 0xFF, 0x00, 0xAF, 0x0F, 0x00, 0x01,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    cr_assert_arr_eq(q, want, sizeof want);
}

/* ---- Q4_1, Q5_1 ------------------------------------------------------------------------- */

Test(q4_1, hand_built)
{
    /* 20 B: f16 d = 0.5, f16 m = -1, qs[j] = j | (15 - j) << 4: value j is 0.5 j - 1, value
     * 16 + j is 0.5 (15 - j) - 1. */
    uint8_t buf[1 + 20];
    uint8_t *b = buf + 1;
    put16(b, 0x3800);
    put16(b + 2, 0xBC00);
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    float want[32], y[32];
    for (int j = 0; j < 16; j++) {
        want[j] = 0.5f * (float)j - 1.0f;
        want[16 + j] = 0.5f * (float)(15 - j) - 1.0f;
    }
    mlc_dequantize_row(MLC_TYPE_Q4_1, b, y, 32);
    assert_values(y, want, 32, "Q4_1");
}

Test(q4_1, quantize_known_block)
{
    /* min -1, max 6.5: d = 7.5 / 15 = 0.5, id = 2, m = -1; q = trunc(2 (x + 1) + 0.5):
     *   -1 -> 0, 6.5 -> 15, 0.2 -> 2.9 -> 2, 0.3 -> 3.1 -> 3, 0.25 -> 3 exactly (ties go up),
     *   x[16] = 0.75 -> 4, zeros -> 2.5 -> 2. */
    float x[32] = {-1.0f, 6.5f, 0.2f, 0.3f, 0.25f};
    x[16] = 0.75f;
    uint8_t q[20];
    mlc_quantize_row(MLC_TYPE_Q4_1, x, q, 32);
    static const uint8_t want[20] = {0x00, 0x38, 0x00, 0xBC, 0x40, 0x2F, 0x22, 0x23, 0x23, 0x22,
                                     0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};
    cr_assert_arr_eq(q, want, sizeof want);
}

Test(q5_1, hand_built)
{
    /* 24 B: f16 d = 0.25, f16 m = 2, u32 qh = 0xFFFF0000, qs[j] = j | j << 4. Value j < 16 is
     * q = j: 0.25 j + 2; value 16 + j has the fifth bit: q = 16 + j, 0.25 j + 6. */
    uint8_t buf[1 + 24];
    uint8_t *b = buf + 1;
    put16(b, 0x3400);
    put16(b + 2, 0x4000);
    put32(b + 4, 0xFFFF0000u);
    for (int j = 0; j < 16; j++)
        b[8 + j] = (uint8_t)(j | (j << 4));
    float want[32], y[32];
    for (int j = 0; j < 16; j++) {
        want[j] = 0.25f * (float)j + 2.0f;
        want[16 + j] = 0.25f * (float)j + 6.0f;
    }
    mlc_dequantize_row(MLC_TYPE_Q5_1, b, y, 32);
    assert_values(y, want, 32, "Q5_1");
}

Test(q5_1, quantize_known_block)
{
    /* min -1, max 14.5: d = 15.5 / 31 = 0.5, id = 2; q = trunc(2 (x + 1) + 0.5):
     *   -1 -> 0, 14.5 -> 31, 7 -> 16.5 -> 16, 0.25 -> 3, x[16] = 7.25 -> 17, zeros -> 2.
     * qh: bits 1, 2 and 16 (q >= 16) = 0x00010006; qs[0] = 0 | (17 & 15) << 4 = 0x10,
     * qs[1] = 15 | 2 << 4, qs[2] = 0 | 2 << 4, qs[3] = 3 | 2 << 4, then 0x22. */
    float x[32] = {-1.0f, 14.5f, 7.0f, 0.25f};
    x[16] = 7.25f;
    uint8_t q[24];
    mlc_quantize_row(MLC_TYPE_Q5_1, x, q, 32);
    static const uint8_t want[24] = {0x00, 0x38, 0x00, 0xBC, 0x06, 0x00, 0x01, 0x00,
                                     0x10, 0x2F, 0x20, 0x23, 0x22, 0x22, 0x22, 0x22,
                                     0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};
    cr_assert_arr_eq(q, want, sizeof want);
}

/* ---- bytes of ggml's reference algorithm -------------------------------------------------
 * The hashes below are of the bytes gguf-py 0.17's quantizers (a numpy transcription of
 * ggml's quantize_row_{q4_0,q4_1,q5_0,q5_1}_ref, float32 operation by operation) write for
 * the input ref_input() makes, which uses only exact integer-to-float steps and single
 * correctly rounded operations, so it is the same on every platform. Q4_0, checked against
 * ggml itself in test_quant.c, anchors the method. */

static void ref_input(float *x, int n)
{
    for (int i = 0; i < n; i++) {
        float v = (float)((i * 7919) % 2003 - 1001) / 97.0f;
        if (i % 97 == 0)
            v *= 20; /* outliers */
        if ((i / 32) % 5 == 3)
            v = fabsf(v) + 0.25f; /* some all-positive blocks */
        x[i] = v;
    }
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

Test(quant_legacy_bytes, row_hashes)
{
    static const struct {
        mlc_type type;
        uint64_t fnv;
    } want[] = {
        {MLC_TYPE_Q4_0, 0xca335946b7c32b09ull},
        {MLC_TYPE_Q4_1, 0x2dfc7b8c23a6bbefull},
        {MLC_TYPE_Q5_0, 0x0e979d4f03d41f95ull},
        {MLC_TYPE_Q5_1, 0xc836bddb8de3e2f4ull},
    };
    enum { N = 4096 };
    static float x[N];
    ref_input(x, N);
    uint8_t *q = malloc(mlc_type_row_bytes(MLC_TYPE_Q5_1, N));
    cr_assert_not_null(q);
    for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
        mlc_quantize_row(want[t].type, x, q, N);
        cr_assert_eq(fnv1a(q, mlc_type_row_bytes(want[t].type, N)), want[t].fnv, "%s",
                     mlc_type_name(want[t].type));
    }
    free(q);
}

/* ---- round trips ------------------------------------------------------------------------- */

/* Per value: Q5_0 is off by at most d = amax / 16 (the side opposite the extreme reaches
 * 15 steps), Q4_1 / Q5_1 by half a step of (max - min) / 15 or / 31; plus the f16
 * rounding of d and m (2^-11 relative, a few of them). Relative RMSE on N(0,1): measured
 * 0.043 (Q5_0), 0.078 (Q4_1), 0.038 (Q5_1). */
Test(quant_legacy_round_trip, per_value_and_rmse_bounds)
{
    enum { N = 32 * 256 };
    static float x[N], y[N];
    static uint8_t q[N];
    uint64_t s = 17;
    for (int i = 0; i < N; i++)
        x[i] = tu_rng_gauss(&s);
    const struct {
        mlc_type t;
        double rmse;
    } types[] = {{MLC_TYPE_Q5_0, 0.05}, {MLC_TYPE_Q4_1, 0.09}, {MLC_TYPE_Q5_1, 0.042}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const mlc_type t = types[k].t;
        mlc_quantize_row(t, x, q, N);
        mlc_dequantize_row(t, q, y, N);
        double se = 0, ss = 0;
        for (int b = 0; b < N / 32; b++) {
            float mn = x[32 * b], mx = x[32 * b], amax = 0;
            for (int i = 0; i < 32; i++) {
                mn = fminf(mn, x[32 * b + i]);
                mx = fmaxf(mx, x[32 * b + i]);
                amax = fmaxf(amax, fabsf(x[32 * b + i]));
            }
            const float bound = t == MLC_TYPE_Q5_0 ? amax / 16 : (mx - mn) / (t == MLC_TYPE_Q4_1 ? 30 : 62);
            for (int i = 0; i < 32; i++) {
                const float err = fabsf(y[32 * b + i] - x[32 * b + i]);
                cr_assert(err <= bound + 2e-3f * amax, "%s block %d value %d: error %g > %g",
                          mlc_type_name(t), b, i, (double)err, (double)bound);
                se += (double)err * err;
                ss += (double)x[32 * b + i] * x[32 * b + i];
            }
        }
        cr_assert(sqrt(se / ss) < types[k].rmse, "%s: rmse %.4f", mlc_type_name(t), sqrt(se / ss));
        cr_log_info("%s: relative rmse %.4f", mlc_type_name(t), sqrt(se / ss));
    }
}

/* Re-quantizing decoded values gives back the same bytes for Q5_0: the extreme value comes
 * back as exactly -16 d, which gives the same d, and every value sits on its grid. */
Test(quant_legacy_round_trip, q5_0_idempotent)
{
    enum { N = 32 * 64 };
    static float x[N], y[N];
    static uint8_t q[N], q2[N];
    uint64_t s = 3;
    for (int i = 0; i < N; i++)
        x[i] = tu_rng_gauss(&s);
    mlc_quantize_row(MLC_TYPE_Q5_0, x, q, N);
    mlc_dequantize_row(MLC_TYPE_Q5_0, q, y, N);
    mlc_quantize_row(MLC_TYPE_Q5_0, y, q2, N);
    cr_assert_arr_eq(q, q2, mlc_type_row_bytes(MLC_TYPE_Q5_0, N));
}

Test(quant_legacy_edge, zero_constant_and_extreme_blocks)
{
    const mlc_type types[] = {MLC_TYPE_Q5_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_1};
    const float mags[] = {0.0f, 1.0f, -3.5f, 1e30f, 1e-40f, INFINITY, NAN};
    float x[64], y[64];
    uint8_t q[64];
    for (size_t t = 0; t < 3; t++)
        for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
            for (int i = 0; i < 64; i++)
                x[i] = i < 32 ? mags[m] : mags[m] * (i % 2 ? -1.0f : 0.5f);
            mlc_quantize_row(types[t], x, q, 64);
            mlc_dequantize_row(types[t], q, y, 64);
            for (int i = 0; i < 64; i++)
                cr_assert(isfinite(y[i]), "%s mag %g: value %d = %g", mlc_type_name(types[t]),
                          (double)mags[m], i, (double)y[i]);
            if (mags[m] == 0.0f || mags[m] == 1.0f || mags[m] == -3.5f)
                for (int i = 0; i < 32; i++) /* a constant block comes back exactly */
                    cr_assert(y[i] == mags[m], "%s constant %g: %g", mlc_type_name(types[t]),
                              (double)mags[m], (double)y[i]);
        }
}
