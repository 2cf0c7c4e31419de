/* tests/test_quant_k.c: the K-quants Q2_K, Q3_K and Q5_K of engine/quant_k.c: blocks packed
 * here by hand from the layout and decoded by hand (the expected values are formulas of the
 * chosen scales and levels), quantized blocks whose stored levels are the nearest ones for
 * their stored scales (read back with this file's own decoders), and round-trip error
 * bounds. Q4_K and Q6_K are tested in test_quant.c. */
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

/* ---- layouts, written out from ggml's block structs ---------------------------------------
 * 2-bit fields (Q2_K, Q3_K): value 128h + 32j + l (h < 2, j < 4, l < 32) is bits 2j, 2j+1 of
 * qs[32h + l]. */

static void put2(uint8_t *qs, int k, int v)
{
    qs[32 * (k / 128) + k % 32] |= (uint8_t)(v << (2 * ((k % 128) / 32)));
}

static int get2(const uint8_t *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* Q3_K: sub-block k's 6-bit scale: low 4 bits in the low (k < 8) or high (k >= 8) nibble
 * of scales[k % 8], high 2 bits at bits 2(k / 4) of scales[8 + k % 4]. */
static void put_q3k_scale(uint8_t *s, int k, int v)
{
    s[k % 8] |= (uint8_t)((v & 0xF) << (k < 8 ? 0 : 4));
    s[8 + k % 4] |= (uint8_t)((v >> 4) << (2 * (k / 4)));
}

static int get_q3k_scale(const uint8_t *s, int k)
{
    return ((s[k % 8] >> (k < 8 ? 0 : 4)) & 0xF) | (((s[8 + k % 4] >> (2 * (k / 4))) & 3) << 4);
}

/* Q5_K (and Q4_K): sub-block j's 6-bit scale and min in scales[12]. */
static void put_k4_scale_min(uint8_t *s, int j, int sc, int m)
{
    if (j < 4) {
        s[j] |= (uint8_t)(sc & 63);
        s[j + 4] |= (uint8_t)(m & 63);
    } else {
        s[j + 4] |= (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((m >> 4) << 6);
    }
}

static void get_k4_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q5_K level k: nibble of qs[32g + l] (low for value 64g + l, high for 64g + 32 + l) and
 * the fifth bit at bit 2g (or 2g + 1) of qh[l]. */
static void put_q5k(uint8_t *qh, uint8_t *qs, int k, int v)
{
    const int g = k / 64, hi = (k % 64) / 32, l = k % 32;
    qs[32 * g + l] |= (uint8_t)((v & 0xF) << (4 * hi));
    qh[l] |= (uint8_t)((v >> 4) << (2 * g + hi));
}

static int get_q5k(const uint8_t *qh, const uint8_t *qs, int k)
{
    const int g = k / 64, hi = (k % 64) / 32, l = k % 32;
    return ((qs[32 * g + l] >> (4 * hi)) & 0xF) | (((qh[l] >> (2 * g + hi)) & 1) << 4);
}

/* ---- hand-built blocks ------------------------------------------------------------------- */

Test(q2_k, hand_built)
{
    /* d = 0.5, dmin = 0.25; sub-block k: scale k % 16 (0..15), min 15 - k; level of value
     * i: (7 i) % 4 (all four levels, every position). Value i = 0.5 * sc * q - 0.25 * m. */
    uint8_t buf[1 + 84] = {0};
    uint8_t *b = buf + 1;
    for (int k = 0; k < 16; k++)
        b[k] = (uint8_t)(k | ((15 - k) << 4));
    for (int i = 0; i < 256; i++)
        put2(b + 16, i, (7 * i) % 4);
    put16(b + 80, 0x3800);
    put16(b + 82, 0x3400);
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q2_K, b, y, 256);
    for (int i = 0; i < 256; i++) {
        const int k = i / 16;
        const float want = 0.5f * (float)k * (float)((7 * i) % 4) - 0.25f * (float)(15 - k);
        cr_assert(y[i] == want, "value %d: %g, want %g", i, (double)y[i], (double)want);
    }
}

Test(q3_k, hand_built)
{
    /* d = 0.25; sub-block k's stored scale 8 + 3k (8..53, value 3k - 24, both signs); level
     * of value i: (5 i) % 8, its third bit in hmask. Value i = 0.25 * (3k - 24) * (q - 4). */
    uint8_t buf[1 + 110] = {0};
    uint8_t *b = buf + 1;
    for (int i = 0; i < 256; i++) {
        const int q = (5 * i) % 8;
        put2(b + 32, i, q & 3);
        b[i % 32] |= (uint8_t)((q >> 2) << (i / 32));
    }
    for (int k = 0; k < 16; k++)
        put_q3k_scale(b + 96, k, 8 + 3 * k);
    put16(b + 108, 0x3400);
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q3_K, b, y, 256);
    for (int i = 0; i < 256; i++) {
        const int k = i / 16;
        const float want = 0.25f * (float)(3 * k - 24) * (float)((5 * i) % 8 - 4);
        cr_assert(y[i] == want, "value %d: %g, want %g", i, (double)y[i], (double)want);
    }
}

Test(q5_k, hand_built)
{
    /* d = 0.5, dmin = 0.25; sub-block j (32 values): scale SC[j] (6-bit, top bits used from
     * j = 4 on), min 63 - 8 j; level of value i: (i + 3 j) % 32, so the fifth bits differ
     * from group to group. Value i = 0.5 * sc * q - 0.25 * m. */
    static const int SC[8] = {1, 10, 19, 28, 37, 46, 55, 62};
    uint8_t buf[1 + 176] = {0};
    uint8_t *b = buf + 1;
    put16(b, 0x3800);
    put16(b + 2, 0x3400);
    for (int j = 0; j < 8; j++)
        put_k4_scale_min(b + 4, j, SC[j], 63 - 8 * j);
    for (int i = 0; i < 256; i++)
        put_q5k(b + 16, b + 48, i, (i + 3 * (i / 32)) % 32);
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q5_K, b, y, 256);
    for (int i = 0; i < 256; i++) {
        const int j = i / 32;
        const float want = 0.5f * (float)SC[j] * (float)((i + 3 * j) % 32) - 0.25f * (float)(63 - 8 * j);
        cr_assert(y[i] == want, "value %d: %g, want %g", i, (double)y[i], (double)want);
    }
}

/* ---- quantized bytes: stored levels are the nearest for the stored scales ----------------
 * Decoded with this file's layout functions: a packing bug gives levels that are not the
 * nearest (or values far off), whatever the fit chose for the scales. */

static float f16v(const uint8_t *p)
{
    return mlc_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8)));
}

/* Checks that level q of value x is the nearest to x on the grid d * l - m, l in 0..lmax
 * (ties either way), as the re-quantization step promises. */
static void assert_nearest(const char *type, int i, float x, float d, float m, int q, int lmax)
{
    if (d == 0.0f)
        return;
    const float e = fabsf(d * (float)q - m - x);
    for (int l = 0; l <= lmax; l++)
        cr_assert(e <= fabsf(d * (float)l - m - x) * (1 + 1e-5f) + 1e-30f,
                  "%s value %d = %g: level %d (%g) but %d gives %g", type, i, (double)x, q,
                  (double)(d * (float)q - m), l, (double)(d * (float)l - m));
}

Test(quant_k_bytes, levels_are_nearest_for_stored_scales)
{
    enum { N = 256 * 8 };
    static float x[N];
    uint64_t s = 31;
    for (int i = 0; i < N; i++)
        x[i] = tu_rng_gauss(&s) * ((i / 256) % 2 ? 0.01f : 3.0f) + ((i / 512) == 2 ? 1.0f : 0.0f);
    static uint8_t q[N];
    mlc_quantize_row(MLC_TYPE_Q2_K, x, q, N);
    for (int i = 0; i < N; i++) {
        const uint8_t *b = q + 84 * (i / 256);
        const int k = (i % 256) / 16;
        assert_nearest("Q2_K", i, x[i], f16v(b + 80) * (float)(b[k] & 0xF),
                       f16v(b + 82) * (float)(b[k] >> 4), get2(b + 16, i % 256), 3);
    }
    mlc_quantize_row(MLC_TYPE_Q3_K, x, q, N);
    for (int i = 0; i < N; i++) {
        const uint8_t *b = q + 110 * (i / 256);
        const int r = i % 256;
        const int lv = get2(b + 32, r) | (((b[r % 32] >> (r / 32)) & 1) << 2);
        const float d = f16v(b + 108) * (float)(get_q3k_scale(b + 96, r / 16) - 32);
        /* levels q - 4 of -4..3: grid d * l + 4 d with l = q in 0..7 */
        assert_nearest("Q3_K", i, x[i], d, 4 * d, lv, 7);
    }
    mlc_quantize_row(MLC_TYPE_Q5_K, x, q, N);
    for (int i = 0; i < N; i++) {
        const uint8_t *b = q + 176 * (i / 256);
        int sc, m;
        get_k4_scale_min(b + 4, (i % 256) / 32, &sc, &m);
        assert_nearest("Q5_K", i, x[i], f16v(b) * (float)sc, f16v(b + 2) * (float)m,
                       get_q5k(b + 16, b + 48, i % 256), 31);
    }
}

/* ---- round trips ------------------------------------------------------------------------- */

/* Relative RMSE on N(0,1) data; measured 0.296 (Q2_K: 4 levels), 0.150 (Q3_K), 0.036 (Q5_K). */
Test(quant_k_round_trip, gaussian_error_bounds)
{
    enum { N = 256 * 64 };
    static float x[N], y[N];
    static uint8_t q[N];
    uint64_t s = 5;
    for (int i = 0; i < N; i++)
        x[i] = tu_rng_gauss(&s);
    const struct {
        mlc_type t;
        double bound;
    } types[] = {{MLC_TYPE_Q2_K, 0.34}, {MLC_TYPE_Q3_K, 0.17}, {MLC_TYPE_Q5_K, 0.042}};
    double prev = 1;
    for (size_t k = 0; k < 3; k++) {
        mlc_quantize_row(types[k].t, x, q, N);
        mlc_dequantize_row(types[k].t, q, y, N);
        double se = 0, ss = 0;
        for (int i = 0; i < N; i++) {
            cr_assert(isfinite(y[i]));
            se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            ss += (double)x[i] * x[i];
        }
        const double e = sqrt(se / ss);
        cr_log_info("%s: relative rmse %.4f", mlc_type_name(types[k].t), e);
        cr_assert(e < types[k].bound, "%s: %.4f", mlc_type_name(types[k].t), e);
        cr_assert(e < prev, "%s: more bits, no less error", mlc_type_name(types[k].t));
        prev = e;
    }
}

Test(quant_k_edge, zero_constant_and_extreme_blocks)
{
    const mlc_type types[] = {MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q5_K};
    const float mags[] = {0.0f, 1.0f, -3.5f, 1e30f, 1e-40f, INFINITY, NAN};
    static float x[512], y[512];
    static uint8_t q[512];
    for (size_t t = 0; t < 3; t++)
        for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
            uint64_t s = 9;
            for (int i = 0; i < 512; i++)
                x[i] = i < 256 ? mags[m] : (i == 300 ? mags[m] : tu_rng_gauss(&s));
            mlc_quantize_row(types[t], x, q, 512);
            mlc_dequantize_row(types[t], q, y, 512);
            for (int i = 0; i < 512; i++)
                cr_assert(isfinite(y[i]), "%s mag %g: value %d = %g", mlc_type_name(types[t]),
                          (double)mags[m], i, (double)y[i]);
            if (mags[m] == 0.0f)
                for (int i = 0; i < 256; i++)
                    cr_assert(y[i] == 0.0f, "%s: zero block value %d = %g", mlc_type_name(types[t]), i,
                              (double)y[i]);
        }
}
