/* tests/test_quant_iq.c: the non-linear 4-bit types IQ4_NL and IQ4_XS of engine/quant.c:
 * hand-packed blocks decoded by hand, quantized blocks worked out by hand (inputs that are
 * exact multiples of the value table), and round-trip error bounds. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mlc/quant.h"

/* ggml's kvalues_iq4nl, written out from the GGUF documentation of IQ4_NL. */
static const int TABLE[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static float f16v(const uint8_t *p)
{
    return mlc_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8)));
}

Test(iq4_nl, hand_built)
{
    /* d = 0.5; byte j = j | (15 - j) << 4: value j is 0.5 * TABLE[j], value 16 + j is
     * 0.5 * TABLE[15 - j]. At an odd address. */
    uint8_t buf[1 + 18];
    uint8_t *b = buf + 1;
    put16(b, 0x3800);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    mlc_dequantize_row(MLC_TYPE_IQ4_NL, b, y, 32);
    for (int j = 0; j < 16; j++) {
        cr_assert(y[j] == 0.5f * (float)TABLE[j], "value %d: %g", j, (double)y[j]);
        cr_assert(y[16 + j] == 0.5f * (float)TABLE[15 - j], "value %d: %g", 16 + j, (double)y[16 + j]);
    }
}

Test(iq4_xs, hand_built)
{
    /* d = 0.25; sub-block ib's 6-bit scale 4 ib + 18 (18..46, value 4 ib - 14: both signs):
     * low 4 bits in scales_l[ib / 2] (low nibble for even ib), high 2 bits at bits 2 ib of
     * scales_h. Nibbles: byte j of sub-block ib = (j + ib) % 16 | (15 - j) << 4. */
    uint8_t b[136] = {0};
    put16(b, 0x3400);
    uint16_t sh = 0;
    for (int ib = 0; ib < 8; ib++) {
        const int ls = 4 * ib + 18;
        b[4 + ib / 2] |= (uint8_t)((ls & 0xF) << (4 * (ib % 2)));
        sh |= (uint16_t)((ls >> 4) << (2 * ib));
        for (int j = 0; j < 16; j++)
            b[8 + 16 * ib + j] = (uint8_t)(((j + ib) % 16) | ((15 - j) << 4));
    }
    put16(b + 2, sh);
    float y[256];
    mlc_dequantize_row(MLC_TYPE_IQ4_XS, b, y, 256);
    for (int ib = 0; ib < 8; ib++) {
        const float dl = 0.25f * (float)(4 * ib - 14);
        for (int j = 0; j < 16; j++) {
            cr_assert(y[32 * ib + j] == dl * (float)TABLE[(j + ib) % 16], "value %d", 32 * ib + j);
            cr_assert(y[32 * ib + 16 + j] == dl * (float)TABLE[15 - j], "value %d", 32 * ib + 16 + j);
        }
    }
}

Test(iq4_nl, quantize_known_block)
{
    /* x = 0.01 * TABLE[i % 16]: the extreme -1.27 gives the first scale -1.27 / -127 = 0.01,
     * every x / 0.01 lands on its table entry, so byte j = j | j << 4 (values j and 16 + j
     * share an index) and the least-squares scale is 0.01 again, stored as f16. */
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = 0.01f * (float)TABLE[i % 16];
    uint8_t q[18];
    mlc_quantize_row(MLC_TYPE_IQ4_NL, x, q, 32);
    cr_assert(fabsf(f16v(q) - 0.01f) < 1e-5f, "d = %g", (double)f16v(q));
    for (int j = 0; j < 16; j++)
        cr_assert_eq(q[2 + j], j | (j << 4), "byte %d = 0x%02x", j, q[2 + j]);
}

Test(iq4_xs, quantize_known_block)
{
    /* Sub-block ib holds c TABLE[i % 16] with c = 0.01 (ib + 1): each sub-block's fit is c
     * (the search's grid 127 / 1.27c hits the table exactly), the largest is 0.08, so
     * d = -0.08 / 32 = -0.0025 and the 6-bit scales are -4 (ib + 1) + 32 = 28 - 4 ib:
     * scales_l = 0x8C 0x04 0x8C 0x04 (28 | 24 << 4 low nibbles, then 20 | 16, 12 | 8, 4 | 0),
     * scales_h = 0x0055 (high bits 1 for 28, 24, 20, 16). */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = 0.01f * (float)(i / 32 + 1) * (float)TABLE[i % 16];
    uint8_t q[136];
    mlc_quantize_row(MLC_TYPE_IQ4_XS, x, q, 256);
    cr_assert(fabsf(f16v(q) + 0.0025f) < 2e-6f, "d = %g", (double)f16v(q));
    cr_assert_eq(q[2] | (q[3] << 8), 0x0055);
    static const uint8_t want_l[4] = {0x8C, 0x04, 0x8C, 0x04};
    cr_assert_arr_eq(q + 4, want_l, 4);
    for (int i = 0; i < 128; i++)
        cr_assert_eq(q[8 + i], (i % 16) | ((i % 16) << 4), "qs[%d] = 0x%02x", i, q[8 + i]);
}

Test(iq4_round_trip, gaussian_error_bounds)
{
    /* Relative RMSE on N(0,1): measured IQ4_NL 0.080, IQ4_XS 0.078 (Q4_0 0.086). */
    enum { N = 256 * 32 };
    static float x[N], y[N];
    static uint8_t q[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const double v = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        x[i] = (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
    }
    const mlc_type types[] = {MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
    for (int t = 0; t < 2; t++) {
        mlc_quantize_row(types[t], x, q, N);
        mlc_dequantize_row(types[t], q, y, N);
        double se = 0, ss = 0;
        for (int i = 0; i < N; i++) {
            cr_assert(isfinite(y[i]));
            se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            ss += (double)x[i] * x[i];
        }
        cr_log_info("%s: relative rmse %.4f", mlc_type_name(types[t]), sqrt(se / ss));
        cr_assert(sqrt(se / ss) < 0.09, "%s: %.4f", mlc_type_name(types[t]), sqrt(se / ss));
    }
}

Test(iq4_edge, zero_and_extreme_blocks)
{
    const mlc_type types[] = {MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
    const float mags[] = {0.0f, 1e30f, 1e-40f, INFINITY, NAN};
    float x[256], y[256];
    uint8_t q[256];
    for (int t = 0; t < 2; t++)
        for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
            for (int i = 0; i < 256; i++)
                x[i] = i % 3 ? mags[m] : 0.5f * (float)(i % 7);
            mlc_quantize_row(types[t], x, q, 256);
            mlc_dequantize_row(types[t], q, y, 256);
            for (int i = 0; i < 256; i++)
                cr_assert(isfinite(y[i]), "%s mag %g: value %d = %g", mlc_type_name(types[t]),
                          (double)mags[m], i, (double)y[i]);
        }
}
