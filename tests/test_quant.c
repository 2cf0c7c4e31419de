/* tests/test_quant.c: ggml type table, half/bfloat16 conversions, and the Q4_0, Q8_0, Q4_K,
 * Q6_K block codecs: hand-built blocks against values worked out by hand, bytes that ggml
 * itself wrote, quantization error bounds on seeded random data, and degenerate blocks. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/quant.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------------- */

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

#define assert_feq(got, want)                                                                 \
    cr_assert((got) == (want), "%s = %.9g, expected %.9g", #got, (double)(got), (double)(want))

static void assert_all_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(isfinite(y[i]), "value %lld is %g", (long long)i, (double)y[i]);
}

/* Quantizes n values of x to type and back into y; returns the block bytes in a malloc'd
 * buffer when keep is set (else NULL). */
static uint8_t *round_trip(mlc_type type, const float *x, float *y, int64_t n, bool keep)
{
    const size_t bytes = mlc_type_row_bytes(type, n);
    cr_assert(bytes > 0);
    uint8_t *q = malloc(bytes);
    cr_assert_not_null(q);
    mlc_quantize_row(type, x, q, n);
    mlc_dequantize_row(type, q, y, n);
    if (keep)
        return q;
    free(q);
    return NULL;
}

static const mlc_type QUANT_TYPES[] = {MLC_TYPE_Q4_0, MLC_TYPE_Q8_0, MLC_TYPE_Q4_K,
                                       MLC_TYPE_Q6_K};
#define N_QUANT_TYPES (sizeof QUANT_TYPES / sizeof QUANT_TYPES[0])

/* ---- type table ------------------------------------------------------------------------ */

typedef struct {
    uint32_t id;
    const char *name;
    int64_t block;
    size_t bytes;
} type_row;

/* ggml's block sizes, written out from the block_* struct fields. */
static const type_row KNOWN[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
};

Test(quant_types, every_known_id)
{
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++) {
        const type_row *t = &KNOWN[i];
        cr_assert_str_eq(mlc_type_name(t->id), t->name);
        cr_assert_eq(mlc_type_block_size(t->id), t->block, "%s", t->name);
        cr_assert_eq(mlc_type_block_bytes(t->id), t->bytes, "%s", t->name);
    }
}

Test(quant_types, retired_and_unknown_ids)
{
    const uint32_t holes[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof holes / sizeof holes[0]; i++) {
        cr_assert_null(mlc_type_name(holes[i]), "id %u", holes[i]);
        cr_assert_eq(mlc_type_block_size(holes[i]), 0);
        cr_assert_eq(mlc_type_block_bytes(holes[i]), 0);
        cr_assert_not(mlc_type_supported(holes[i]));
        cr_assert_eq(mlc_type_row_bytes(holes[i], 256), 0);
    }
    int named = 0;
    for (uint32_t id = 0; id < MLC_TYPE_COUNT; id++)
        named += mlc_type_name(id) != NULL;
    cr_assert_eq(named, (int)(sizeof KNOWN / sizeof KNOWN[0]));
}

Test(quant_types, supported_set)
{
    int count = 0;
    for (uint32_t id = 0; id < MLC_TYPE_COUNT; id++)
        count += mlc_type_supported(id);
    cr_assert_eq(count, 15);
    const uint32_t yes[] = {0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23, 30};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_assert(mlc_type_supported(yes[i]), "id %u", yes[i]);
    cr_assert_not(mlc_type_supported(16)); /* IQ2_XXS: known, sized, not computable */
}

Test(quant_types, from_name)
{
    mlc_type t = MLC_TYPE_F32;
    cr_assert(mlc_type_from_name("q4_k", &t));
    cr_assert_eq(t, MLC_TYPE_Q4_K);
    cr_assert(mlc_type_from_name("Q4_K", &t));
    cr_assert_eq(t, MLC_TYPE_Q4_K);
    cr_assert(mlc_type_from_name("f16", &t));
    cr_assert_eq(t, MLC_TYPE_F16);
    cr_assert(mlc_type_from_name("Bf16", &t));
    cr_assert_eq(t, MLC_TYPE_BF16);
    cr_assert(mlc_type_from_name("q8_0", &t));
    cr_assert_eq(t, MLC_TYPE_Q8_0);
    cr_assert(mlc_type_from_name("Q6_k", &t));
    cr_assert_eq(t, MLC_TYPE_Q6_K);
    cr_assert(mlc_type_from_name("F32", &t));
    cr_assert_eq(t, MLC_TYPE_F32);
    cr_assert(mlc_type_from_name("q4_0", &t));
    cr_assert_eq(t, MLC_TYPE_Q4_0);

    t = MLC_TYPE_Q6_K;
    const char *bad[] = {"iq2_xxs", "Q8_1", "", "q4", "q4_k ", "q4_kk", "fp16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(mlc_type_from_name(bad[i], &t), "'%s'", bad[i]);
    cr_assert_not(mlc_type_from_name(NULL, &t));
    cr_assert_eq(t, MLC_TYPE_Q6_K, "a failed parse leaves *out alone");
}

Test(quant_types, row_bytes)
{
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, 256), 144);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, 4096), 16 * 144);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q6_K, 512), 420);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q8_0, 64), 68);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_0, 4096), 128 * 18);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, 3), 12);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_BF16, 7), 14);
    cr_assert_eq(mlc_type_row_bytes(39, 64), 34); /* MXFP4: sized though unsupported */
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F16, 0), 0);

    /* Not a multiple of the block size, negative, unknown id. */
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, 255), 0);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, 257), 0);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q8_0, 48), 0);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, -1), 0);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, -256), 0);
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, INT64_MIN), 0);
    cr_assert_eq(mlc_type_row_bytes(4, 32), 0);
}

Test(quant_types, row_bytes_overflow)
{
    /* The largest F32 row that fits in size_t, and one more value. */
    const uint64_t fit = (uint64_t)SIZE_MAX / 4;
    if (fit <= (uint64_t)INT64_MAX) {
        cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, (int64_t)fit), (size_t)fit * 4);
        cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, (int64_t)fit + 1), 0);
    }
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_F32, INT64_MAX), 0);
    cr_assert_eq(mlc_type_row_bytes(28 /* F64 */, INT64_MAX), 0);
    /* Block types: the largest row an int64_t can count fits a 64-bit size_t (Q6_K:
     * 2^55 - 1 blocks of 210 bytes, under 2^63) and overflows a 32-bit one. */
    const int64_t k_max = INT64_MAX / 256 * 256;
    const uint64_t k_bytes = (uint64_t)(k_max / 256) * 210;
    cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q6_K, k_max),
                 k_bytes <= SIZE_MAX ? (size_t)k_bytes : 0);
    if (SIZE_MAX == UINT32_MAX) {
        cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q4_K, (int64_t)1 << 32), 0);
        cr_assert_eq(mlc_type_row_bytes(MLC_TYPE_Q8_0, (int64_t)1 << 32), 0);
    }
}

/* ---- fp16 ----------------------------------------------------------------------------- */

/* The value of a half, from its fields, in double arithmetic (independent of the code). */
static double half_value(uint16_t h)
{
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const double mag = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -mag : mag;
}

Test(fp16, exhaustive_round_trip)
{
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = mlc_fp16_to_fp32(h);
        const uint16_t back = mlc_fp32_to_fp16(f);
        const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (nan) {
            cr_assert(isnan(f), "0x%04x -> %g", h, (double)f);
            cr_assert((back & 0x7C00) == 0x7C00 && (back & 0x3FF), "0x%04x -> 0x%04x", h, back);
            cr_assert_eq(back & 0x8000, h & 0x8000, "sign of NaN 0x%04x", h);
            continue;
        }
        if ((h & 0x7FFF) == 0x7C00)
            cr_assert(isinf(f) && (f < 0) == ((h & 0x8000) != 0), "0x%04x", h);
        else
            cr_assert((double)f == half_value(h), "0x%04x -> %.10g, want %.10g", h,
                      (double)f, half_value(h));
        cr_assert_eq(back, h, "0x%04x -> %.10g -> 0x%04x", h, (double)f, back);
    }
}

Test(fp16, known_values)
{
    cr_assert_eq(mlc_fp32_to_fp16(1.0f), 0x3C00);
    cr_assert_eq(mlc_fp32_to_fp16(-2.0f), 0xC000);
    cr_assert_eq(mlc_fp32_to_fp16(0.5f), 0x3800);
    cr_assert_eq(mlc_fp32_to_fp16(65504.0f), 0x7BFF);
    cr_assert_eq(mlc_fp32_to_fp16(0.0f), 0x0000);
    cr_assert_eq(mlc_fp32_to_fp16(-0.0f), 0x8000);
    cr_assert_eq(mlc_fp32_to_fp16(INFINITY), 0x7C00);
    cr_assert_eq(mlc_fp32_to_fp16(-INFINITY), 0xFC00);
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1, -14)), 0x0400); /* smallest normal */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
    cr_assert_eq(mlc_fp32_to_fp16(-ldexpf(1, -24)), 0x8001);
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1023, -24)), 0x03FF); /* largest subnormal */
    cr_assert_eq(mlc_fp32_to_fp16(1e-10f), 0x0000);
    cr_assert_eq(mlc_fp32_to_fp16(1e10f), 0x7C00);

    assert_feq(mlc_fp16_to_fp32(0x3C00), 1.0f);
    assert_feq(mlc_fp16_to_fp32(0xC000), -2.0f);
    assert_feq(mlc_fp16_to_fp32(0x7BFF), 65504.0f);
    assert_feq(mlc_fp16_to_fp32(0x0001), ldexpf(1, -24));
    assert_feq(mlc_fp16_to_fp32(0x03FF), ldexpf(1023, -24));
    assert_feq(mlc_fp16_to_fp32(0x3555), 0.333251953125f);
    cr_assert_eq(tu_f32_bits(mlc_fp16_to_fp32(0x8000)), 0x80000000u);
    cr_assert(isinf(mlc_fp16_to_fp32(0xFC00)) && mlc_fp16_to_fp32(0xFC00) < 0);
    cr_assert(isnan(mlc_fp16_to_fp32(0x7E00)));
    cr_assert(isnan(mlc_fp16_to_fp32(0x7C01))); /* signalling NaN stays NaN */
}

Test(fp16, rounding)
{
    /* 65520 is halfway between 65504 (odd mantissa 0x3FF) and 65536 (inf): even is inf. */
    cr_assert_eq(mlc_fp32_to_fp16(65520.0f), 0x7C00);
    cr_assert_eq(mlc_fp32_to_fp16(float_of(0x477FEFFF)), 0x7BFF); /* just below 65520 */
    cr_assert_eq(mlc_fp32_to_fp16(65519.0f), 0x7BFF);
    /* Ties to even around 1.0, whose half ulp is 2^-11. */
    cr_assert_eq(mlc_fp32_to_fp16(1.0f + ldexpf(1, -11)), 0x3C00);
    cr_assert_eq(mlc_fp32_to_fp16(1.0f + 3 * ldexpf(1, -11)), 0x3C02);
    cr_assert_eq(mlc_fp32_to_fp16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3C01);
    cr_assert_eq(mlc_fp32_to_fp16(1.0f + ldexpf(1, -11) - ldexpf(1, -20)), 0x3C00);
    cr_assert_eq(mlc_fp32_to_fp16(-(1.0f + 3 * ldexpf(1, -11))), 0xBC02);
    /* Carry out of the mantissa into the exponent: 2 - 2^-12 rounds up to 2. */
    cr_assert_eq(mlc_fp32_to_fp16(2.0f - ldexpf(1, -12)), 0x4000);
    /* Subnormal ties, in units of 2^-24. */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1, -25)), 0x0000);     /* 0.5 -> 0 */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1.0000001f, -25)), 0x0001);
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(3, -25)), 0x0002);     /* 1.5 -> 2 */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(5, -25)), 0x0002);     /* 2.5 -> 2 */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(2047, -25)), 0x0400);  /* 1023.5 -> 1024: normal */
    cr_assert_eq(mlc_fp32_to_fp16(ldexpf(1, -26)), 0x0000);
}

Test(fp16, nan_stays_nan)
{
    const uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7F800FFFu, 0xFFFFFFFFu,
                             0x7FBFFFFFu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        const uint16_t h = mlc_fp32_to_fp16(float_of(nans[i]));
        cr_assert((h & 0x7C00) == 0x7C00 && (h & 0x3FF), "0x%08x -> 0x%04x", nans[i], h);
        cr_assert(h & 0x200, "quiet bit set for 0x%08x", nans[i]);
        cr_assert_eq(h >> 15, nans[i] >> 31);
    }
}

/* ---- bf16 ----------------------------------------------------------------------------- */

Test(bf16, known_values)
{
    cr_assert_eq(mlc_fp32_to_bf16(1.0f), 0x3F80);
    cr_assert_eq(mlc_fp32_to_bf16(-2.0f), 0xC000);
    cr_assert_eq(mlc_fp32_to_bf16(0.0f), 0x0000);
    cr_assert_eq(mlc_fp32_to_bf16(-0.0f), 0x8000);
    cr_assert_eq(mlc_fp32_to_bf16(INFINITY), 0x7F80);
    cr_assert_eq(mlc_fp32_to_bf16(-INFINITY), 0xFF80);
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x40490FDBu)), 0x4049); /* pi: rounds down */
    assert_feq(mlc_bf16_to_fp32(0x3F80), 1.0f);
    assert_feq(mlc_bf16_to_fp32(0xC000), -2.0f);
    assert_feq(mlc_bf16_to_fp32(0x4049), 3.140625f);
    assert_feq(mlc_bf16_to_fp32(0x0001), ldexpf(1, -133)); /* subnormal, kept */
    cr_assert_eq(mlc_fp32_to_bf16(ldexpf(1, -133)), 0x0001);
}

Test(bf16, rounding)
{
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x3F808000u)), 0x3F80); /* tie, even stays */
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x3F818000u)), 0x3F82); /* tie, odd goes up */
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x3F808001u)), 0x3F81);
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x3F807FFFu)), 0x3F80);
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0xBF818000u)), 0xBF82);
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x3FFF8000u)), 0x4000); /* carry into exponent */
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x7F7FFFFFu)), 0x7F80); /* FLT_MAX -> inf */
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x7F7F7FFFu)), 0x7F7F);
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x00008000u)), 0x0000); /* subnormal tie */
    cr_assert_eq(mlc_fp32_to_bf16(float_of(0x00018000u)), 0x0002);
}

Test(bf16, nan_stays_nan)
{
    /* Plain rounding of 0x7F800001 or 0x7FFFFFFF would give inf or carry into the sign. */
    const uint32_t nans[] = {0x7F800001u, 0x7FFFFFFFu, 0xFF800001u, 0x7FC00000u, 0x7F80FFFFu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        const uint16_t h = mlc_fp32_to_bf16(float_of(nans[i]));
        cr_assert((h & 0x7F80) == 0x7F80 && (h & 0x7F), "0x%08x -> 0x%04x", nans[i], h);
        cr_assert(h & 0x40, "quiet bit for 0x%08x", nans[i]);
        cr_assert_eq(h >> 15, nans[i] >> 31);
        cr_assert(isnan(mlc_bf16_to_fp32(h)));
    }
}

Test(bf16, exhaustive_round_trip)
{
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = mlc_bf16_to_fp32(h);
        cr_assert_eq(tu_f32_bits(f), (uint32_t)h << 16);
        const uint16_t back = mlc_fp32_to_bf16(f);
        if (isnan(f))
            cr_assert_eq(back, h | 0x40, "0x%04x -> 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "0x%04x -> 0x%04x", h, back);
    }
}

/* ---- element rows ------------------------------------------------------------------------- */

Test(quant_rows, f32_f16_bf16)
{
    /* Little-endian bytes at an odd offset: 1.0, -2.0, 65504 as f16; 1.0, -2.0, 3.140625 as
     * bf16. */
    const uint8_t f16b[7] = {0xEE, 0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B};
    const uint8_t bf16b[7] = {0xEE, 0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40};
    float y[3];
    mlc_dequantize_row(MLC_TYPE_F16, f16b + 1, y, 3);
    assert_feq(y[0], 1.0f);
    assert_feq(y[1], -2.0f);
    assert_feq(y[2], 65504.0f);
    mlc_dequantize_row(MLC_TYPE_BF16, bf16b + 1, y, 3);
    assert_feq(y[0], 1.0f);
    assert_feq(y[1], -2.0f);
    assert_feq(y[2], 3.140625f);

    uint8_t out[7] = {0};
    const float x[3] = {1.0f, -2.0f, 65504.0f};
    mlc_quantize_row(MLC_TYPE_F16, x, out + 1, 3);
    cr_assert_arr_eq(out + 1, f16b + 1, 6);
    const float xb[3] = {1.0f, -2.0f, 3.140625f};
    mlc_quantize_row(MLC_TYPE_BF16, xb, out + 1, 3);
    cr_assert_arr_eq(out + 1, bf16b + 1, 6);

    const float xf[4] = {1.5f, -0.0f, INFINITY, 1e-40f};
    float yf[4];
    uint8_t raw[16];
    mlc_quantize_row(MLC_TYPE_F32, xf, raw, 4);
    cr_assert_arr_eq(raw, xf, 16);
    mlc_dequantize_row(MLC_TYPE_F32, raw, yf, 4);
    cr_assert_arr_eq(yf, xf, 16);
}

/* ---- Q4_0 ---------------------------------------------------------------------------------- */

Test(q4_0, hand_built)
{
    /* Two blocks at an odd address. Block 0: d = 0.5, byte j = j | (15 - j) << 4, so value j
     * is (j - 8) / 2 and value 16 + j is (7 - j) / 2. Block 1: d = -0.25, all bytes 0x9F:
     * low nibble 15 -> -0.25 * 7, high nibble 9 -> -0.25 * 1. */
    uint8_t buf[1 + 2 * 18];
    uint8_t *b = buf + 1;
    put16(b, 0x3800);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    put16(b + 18, 0xB400);
    memset(b + 20, 0x9F, 16);

    static const float want[32] = {
        -4.0f, -3.5f, -3.0f, -2.5f, -2.0f, -1.5f, -1.0f, -0.5f,
        0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  2.5f,  3.0f,  3.5f,
        3.5f,  3.0f,  2.5f,  2.0f,  1.5f,  1.0f,  0.5f,  0.0f,
        -0.5f, -1.0f, -1.5f, -2.0f, -2.5f, -3.0f, -3.5f, -4.0f,
    };
    float y[64];
    mlc_dequantize_row(MLC_TYPE_Q4_0, b, y, 64);
    for (int i = 0; i < 32; i++)
        cr_assert(y[i] == want[i], "y[%d] = %g, want %g", i, (double)y[i], (double)want[i]);
    for (int i = 32; i < 48; i++)
        assert_feq(y[i], -1.75f);
    for (int i = 48; i < 64; i++)
        assert_feq(y[i], -0.25f);
}

Test(q4_0, quantize_known_block)
{
    /* Largest magnitude -4 gives d = -4 / -8 = 0.5; then q = trunc(x / 0.5 + 8.5). */
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = 0.0f;
    x[0] = -4.0f;
    x[1] = 3.5f;
    x[2] = 0.74f; /* 1.48 + 8.5 = 9.98 -> 9 */
    x[3] = 0.76f; /* 1.52 + 8.5 = 10.02 -> 10 */
    x[16] = -0.25f; /* -0.5 + 8.5 = 8 exactly */
    x[17] = 3.9f; /* 7.8 + 8.5 = 16.3 -> clamped to 15 */
    uint8_t q[18];
    mlc_quantize_row(MLC_TYPE_Q4_0, x, q, 32);
    cr_assert_eq(q[0] | q[1] << 8, 0x3800);
    cr_assert_eq(q[2], 0x00 | 8 << 4);  /* x[0] -> 0, x[16] -> 8 */
    cr_assert_eq(q[3], 15 | 15 << 4);   /* x[1] -> 15, x[17] -> 15 */
    cr_assert_eq(q[4], 9 | 8 << 4);
    cr_assert_eq(q[5], 10 | 8 << 4);
    for (int j = 4; j < 16; j++)
        cr_assert_eq(q[2 + j], 8 | 8 << 4);
}

/* ---- Q8_0 ---------------------------------------------------------------------------------- */

Test(q8_0, hand_built)
{
    /* d = 0.25; quants chosen to cover the int8 extremes and signs. */
    static const int8_t qs[32] = {-128, -127, -1, 0, 1, 127, 5, -7, 64, -64, 100, -100,
                                  2,    3,    4,  8, 16, 32, -2, -3, -4, -8, -16, -32,
                                  10,   20,   30, 40, 50, 60, 70, 80};
    static const float want[32] = {-32.0f, -31.75f, -0.25f, 0.0f, 0.25f, 31.75f, 1.25f,
                                   -1.75f, 16.0f,   -16.0f, 25.0f, -25.0f, 0.5f, 0.75f,
                                   1.0f,   2.0f,    4.0f,   8.0f, -0.5f, -0.75f, -1.0f,
                                   -2.0f,  -4.0f,   -8.0f,  2.5f, 5.0f,  7.5f,  10.0f,
                                   12.5f,  15.0f,   17.5f,  20.0f};
    uint8_t buf[1 + 34];
    uint8_t *b = buf + 1;
    put16(b, 0x3400);
    memcpy(b + 2, qs, 32);
    float y[32];
    mlc_dequantize_row(MLC_TYPE_Q8_0, b, y, 32);
    for (int i = 0; i < 32; i++)
        cr_assert(y[i] == want[i], "y[%d] = %g, want %g", i, (double)y[i], (double)want[i]);
}

Test(q8_0, quantize_known_block)
{
    /* amax 127 gives d = 1 and q = roundf(x), halves away from zero. */
    float x[32] = {127.0f, -127.0f, 2.5f, -2.5f, 0.49f, -0.5f, 3.5f, 1.0f};
    uint8_t q[34];
    mlc_quantize_row(MLC_TYPE_Q8_0, x, q, 32);
    cr_assert_eq(q[0] | q[1] << 8, 0x3C00);
    static const int8_t want[8] = {127, -127, 3, -3, 0, -1, 4, 1};
    for (int i = 0; i < 8; i++)
        cr_assert_eq((int8_t)q[2 + i], want[i], "q[%d]", i);
    for (int i = 8; i < 32; i++)
        cr_assert_eq(q[2 + i], 0);
}

/* ---- Q4_K ---------------------------------------------------------------------------------- */

/* d = 0.5, dmin = 0.25; 6-bit scales sc[] and mins m[] per 32-value sub-block. */
static const int Q4K_SC[8] = {1, 2, 3, 4, 33, 47, 60, 63};
static const int Q4K_M[8] = {5, 6, 7, 8, 17, 34, 51, 62};

/* The block above, packed by hand. Sub-blocks 0-3 keep sc and m whole in the low 6 bits of
 * bytes 0-3 and 4-7; sub-blocks 4-7 put their low 4 bits in bytes 8-11 (sc low nibble, m
 * high nibble) and their top 2 bits in the top 2 bits of bytes 0-3 (sc) and 4-7 (m):
 *   sc4 = 33 = 10'0001  sc5 = 47 = 10'1111  sc6 = 60 = 11'1100  sc7 = 63 = 11'1111
 *   m4  = 17 = 01'0001  m5  = 34 = 10'0010  m6  = 51 = 11'0011  m7  = 62 = 11'1110 */
static const uint8_t Q4K_SCALES[12] = {
    1 | 2 << 6, 2 | 2 << 6, 3 | 3 << 6, 4 | 3 << 6,    /* 0x81 0x82 0xC3 0xC4 */
    5 | 1 << 6, 6 | 2 << 6, 7 | 3 << 6, 8 | 3 << 6,    /* 0x45 0x86 0xC7 0xC8 */
    1 | 1 << 4, 15 | 2 << 4, 12 | 3 << 4, 15 | 14 << 4, /* 0x11 0x2F 0x3C 0xEF */
};

/* Quant of value l (0..31) in sub-block s: even sub-blocks (low nibbles) count up l % 16,
 * odd ones (high nibbles of the same bytes) count down. */
static int q4k_q(int s, int l)
{
    return s % 2 == 0 ? l % 16 : 15 - l % 16;
}

static void q4k_build(uint8_t *b)
{
    put16(b, 0x3800);     /* d = 0.5 */
    put16(b + 2, 0x3400); /* dmin = 0.25 */
    memcpy(b + 4, Q4K_SCALES, 12);
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++)
            b[16 + 32 * g + l] = (uint8_t)(q4k_q(2 * g, l) | q4k_q(2 * g + 1, l) << 4);
}

Test(q4_k, scales_packing_bytes)
{
    static const uint8_t hex[12] = {0x81, 0x82, 0xC3, 0xC4, 0x45, 0x86,
                                    0xC7, 0xC8, 0x11, 0x2F, 0x3C, 0xEF};
    cr_assert_arr_eq(Q4K_SCALES, hex, 12);
}

Test(q4_k, hand_built)
{
    uint8_t buf[1 + 144];
    q4k_build(buf + 1);
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q4_K, buf + 1, y, 256);

    /* Worked by hand: y = 0.5 * sc * q - 0.25 * m. */
    assert_feq(y[0], -1.25f);          /* s0 q0:  0 - 1.25 */
    assert_feq(y[5], 1.25f);           /* s0 q5:  2.5 - 1.25 */
    assert_feq(y[32], 13.5f);          /* s1 q15: 15 - 1.5 */
    assert_feq(y[32 + 15], -1.5f);     /* s1 q0 */
    assert_feq(y[64 + 3], 2.75f);      /* s2 q3:  4.5 - 1.75 */
    assert_feq(y[96 + 1], 26.0f);      /* s3 q14: 28 - 2 */
    assert_feq(y[128 + 2], 28.75f);    /* s4 q2:  33 - 4.25 */
    assert_feq(y[160 + 20], 250.0f);   /* s5 q11: 258.5 - 8.5 */
    assert_feq(y[192 + 31], 437.25f);  /* s6 q15: 450 - 12.75 */
    assert_feq(y[224], 457.0f);        /* s7 q15: 472.5 - 15.5 */
    assert_feq(y[224 + 15], -15.5f);   /* s7 q0 */

    for (int s = 0; s < 8; s++)
        for (int l = 0; l < 32; l++) {
            const float want = 0.5f * (float)(Q4K_SC[s] * q4k_q(s, l)) - 0.25f * (float)Q4K_M[s];
            cr_assert(y[32 * s + l] == want, "sub-block %d value %d: %g, want %g", s, l,
                      (double)y[32 * s + l], (double)want);
        }
}

Test(q4_k, two_blocks_unaligned)
{
    uint8_t buf[1 + 288];
    q4k_build(buf + 1);
    memcpy(buf + 1 + 144, buf + 1, 144);
    put16(buf + 1 + 144, 0xB800); /* block 1: d = -0.5, everything else the same */
    float y[512];
    mlc_dequantize_row(MLC_TYPE_Q4_K, buf + 1, y, 512);
    assert_feq(y[256 + 0], -1.25f);
    assert_feq(y[256 + 32], -16.5f);  /* -15 - 1.5 */
    assert_feq(y[256 + 224], -488.0f); /* -472.5 - 15.5 */
}

/* ---- Q6_K ---------------------------------------------------------------------------------- */

static const int8_t Q6K_SCALES[16] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 127, -128};

/* The 6-bit quant (0..63) stored for value i of the hand-built block. */
static int q6k_q(int i)
{
    return (i * 7 + 3) % 64;
}

/* Packs q6k_q per the layout: in each 128-value half, values l, l+32, l+64, l+96 (l < 32)
 * share ql[l] (low nibbles of l and l+64), ql[l+32] (of l+32 and l+96) and qh[l] (top two
 * bits of each, in that order from bit 0). */
static void q6k_build(uint8_t *b, uint16_t d)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int n = 128 * h + l;
            const int a = q6k_q(n), c = q6k_q(n + 32), e = q6k_q(n + 64), g = q6k_q(n + 96);
            b[64 * h + l] = (uint8_t)((a & 15) | (e & 15) << 4);
            b[64 * h + l + 32] = (uint8_t)((c & 15) | (g & 15) << 4);
            b[128 + 32 * h + l] = (uint8_t)(a >> 4 | (c >> 4) << 2 | (e >> 4) << 4 | (g >> 4) << 6);
        }
    memcpy(b + 192, Q6K_SCALES, 16);
    put16(b + 208, d);
}

Test(q6_k, hand_built)
{
    uint8_t buf[1 + 210];
    q6k_build(buf + 1, 0x3800); /* d = 0.5 */
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q6_K, buf + 1, y, 256);

    /* Worked by hand: y = 0.5 * scale * (q - 32). */
    assert_feq(y[0], -14.5f);    /* q 3,  scale 1 */
    assert_feq(y[17], -13.0f);   /* q 58, scale -1 */
    assert_feq(y[100], 62.0f);   /* q 63, scale 4 */
    assert_feq(y[255], -1792.0f); /* q 60, scale -128 */
    assert_feq(y[224], 190.5f);   /* q 35, scale 127 */
    assert_feq(y[39], -12.0f);    /* q 20, scale 2 */

    for (int i = 0; i < 256; i++) {
        const float want = 0.5f * (float)Q6K_SCALES[i / 16] * (float)(q6k_q(i) - 32);
        cr_assert(y[i] == want, "value %d (sub-block %d): %g, want %g", i, i / 16, (double)y[i],
                  (double)want);
    }
}

Test(q6_k, zero_quants_give_scale_times_minus_32)
{
    /* All ql/qh bits zero: q = 0, so every value of sub-block k is d * scale[k] * -32. */
    uint8_t b[210] = {0};
    memcpy(b + 192, Q6K_SCALES, 16);
    put16(b + 208, 0x2C00); /* d = 1/16 */
    float y[256];
    mlc_dequantize_row(MLC_TYPE_Q6_K, b, y, 256);
    for (int i = 0; i < 256; i++)
        assert_feq(y[i], -2.0f * (float)Q6K_SCALES[i / 16]);
}

/* ---- bytes written by ggml itself ------------------------------------------------------
 * The arrays and hashes below were produced by ggml's quantize_row_{q4_0,q8_0,q4_K,q6_K}_ref
 * (ggml 0.25.3 as vendored by llama-cpp-python 0.3.36, built for x86-64) from the input
 * golden_input() makes. The input uses only exact integer-to-float steps and +, *, fabsf,
 * so it is the same on every platform. A mismatch here most likely means a build that fuses
 * multiply-adds (e.g. -std=gnu11 with FMA), which shifts the K-quant fits. */

static void golden_input(float *x, int n)
{
    uint64_t s = 2024;
    for (int i = 0; i < n; i++) {
        const float u = 2 * tu_rng_unit24(&s) - 1;
        float v = 3 * u * u * u;
        if (i % 97 == 0)
            v *= 20; /* outliers */
        if ((i / 32) % 5 == 3)
            v = fabsf(v) + 0.25f; /* some all-positive 32-value groups */
        x[i] = v;
    }
}

/* FNV-1a, 64-bit. */
static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static const uint8_t GOLDEN_Q4_K[144] = {
    0x9F, 0x28, 0x0E, 0x2A, 0x09, 0x09, 0xCB, 0x2C, 0xE1, 0xFD, 0xFE, 0xC0,
    0xBA, 0xDA, 0x2F, 0xFB, 0x98, 0x70, 0x04, 0xD1, 0x97, 0x95, 0x91, 0x95,
    0xB2, 0x95, 0x55, 0x98, 0x88, 0x95, 0xE2, 0x85, 0x9E, 0x94, 0x47, 0x85,
    0x95, 0x55, 0xF4, 0x75, 0xC6, 0x4A, 0x95, 0xAB, 0xC3, 0x93, 0x85, 0xB4,
    0x17, 0xF7, 0x1A, 0x07, 0x17, 0x17, 0x00, 0x07, 0x06, 0x09, 0x07, 0x27,
    0x17, 0x15, 0x07, 0x0E, 0x2F, 0x07, 0x07, 0x19, 0x28, 0x07, 0x1C, 0x27,
    0x06, 0x16, 0x07, 0x17, 0x15, 0x1C, 0x12, 0x07, 0x8F, 0x5E, 0x89, 0x88,
    0xA9, 0x85, 0x76, 0xA8, 0x8F, 0x08, 0xDA, 0x10, 0x74, 0x52, 0xB7, 0x92,
    0x2C, 0xD1, 0x6C, 0x8C, 0x89, 0x78, 0xF7, 0xE8, 0xA8, 0xA7, 0x8A, 0xC0,
    0xD9, 0x9D, 0x98, 0x8F, 0x01, 0x51, 0x7F, 0x72, 0x41, 0x41, 0x71, 0x72,
    0x41, 0x81, 0x71, 0x80, 0x81, 0x91, 0x81, 0xE1, 0x72, 0x81, 0x61, 0x71,
    0x71, 0x71, 0x71, 0x82, 0xB1, 0xF2, 0x61, 0x81, 0xF1, 0xB1, 0xA1, 0x31,
};

static const uint8_t GOLDEN_Q6_K[210] = {
    0x03, 0xF0, 0xDC, 0x04, 0x02, 0x00, 0x18, 0xE0, 0xBE, 0x70, 0x00, 0xE3,
    0x04, 0x42, 0xEA, 0xC3, 0x00, 0x01, 0x28, 0x90, 0xC0, 0x0F, 0xD3, 0x10,
    0x8C, 0x5D, 0x11, 0x1B, 0xC8, 0xA8, 0x80, 0x03, 0xFF, 0x19, 0xE2, 0x0E,
    0xD2, 0xF0, 0xF0, 0x00, 0x08, 0xF0, 0x03, 0xD0, 0xEE, 0xD0, 0x02, 0x0E,
    0x0E, 0xBE, 0xD5, 0x66, 0x1F, 0xB1, 0xE1, 0x08, 0xA1, 0x04, 0xC0, 0x9B,
    0x14, 0xD0, 0xA2, 0xD8, 0x0D, 0x0B, 0x16, 0xE0, 0x06, 0x05, 0x09, 0xD1,
    0x0E, 0x1F, 0x0A, 0x22, 0x00, 0x0A, 0x0D, 0x07, 0x03, 0x53, 0xD3, 0xE1,
    0x03, 0x21, 0x5E, 0xF0, 0x00, 0x0B, 0xB8, 0x00, 0x06, 0xC6, 0xDF, 0xCC,
    0x10, 0x46, 0x00, 0x0F, 0x38, 0x01, 0xDB, 0xE6, 0x2F, 0x01, 0xE2, 0x36,
    0x1D, 0x56, 0x0A, 0xC4, 0x58, 0xEA, 0x57, 0x00, 0x20, 0x23, 0x01, 0x06,
    0xF9, 0x08, 0x50, 0x01, 0x0A, 0xEA, 0x7A, 0x50, 0x67, 0x14, 0x61, 0xA8,
    0x6B, 0x6A, 0x48, 0x9A, 0x98, 0x6A, 0xA6, 0x5B, 0x67, 0x5A, 0x9C, 0xB6,
    0x04, 0x66, 0x6D, 0x5A, 0x16, 0x6D, 0x02, 0x2A, 0x65, 0x6C, 0x6A, 0x24,
    0x66, 0x0A, 0x3A, 0x66, 0x2B, 0x67, 0x8A, 0x96, 0x6A, 0x69, 0x65, 0x5A,
    0x67, 0xA1, 0x6E, 0xA0, 0xA5, 0xA4, 0xA9, 0xE8, 0x9F, 0x60, 0xAB, 0x9B,
    0xAA, 0xAA, 0xA1, 0x82, 0x26, 0x05, 0x9A, 0xA4, 0x22, 0x17, 0x55, 0xDB,
    0x06, 0xF5, 0x0C, 0xF7, 0x0B, 0xF5, 0x9F, 0xF5, 0x0B, 0x0B, 0x0C, 0xF5,
    0x80, 0xF5, 0x0C, 0xF5, 0x18, 0x20,
};

Test(quant_ggml_bytes, first_super_block)
{
    float x[256];
    golden_input(x, 256);
    uint8_t q[210];
    mlc_quantize_row(MLC_TYPE_Q4_K, x, q, 256);
    cr_assert_arr_eq(q, GOLDEN_Q4_K, sizeof GOLDEN_Q4_K);
    mlc_quantize_row(MLC_TYPE_Q6_K, x, q, 256);
    cr_assert_arr_eq(q, GOLDEN_Q6_K, sizeof GOLDEN_Q6_K);
}

Test(quant_ggml_bytes, row_hashes)
{
    static const struct {
        mlc_type type;
        uint64_t fnv;
    } want[] = {
    {MLC_TYPE_Q4_0, 0x6bd23ca3ffdfc47aull},
    {MLC_TYPE_Q8_0, 0x17d5c39948740460ull},
    {MLC_TYPE_Q4_K, 0xc1ef12c129f28386ull},
    {MLC_TYPE_Q6_K, 0x66ab98cb53f2a218ull},
    };
    enum { N = 4096 };
    float x[N];
    golden_input(x, N);
    uint8_t *q = malloc(mlc_type_row_bytes(MLC_TYPE_Q8_0, N));
    cr_assert_not_null(q);
    for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
        const size_t bytes = mlc_type_row_bytes(want[t].type, N);
        mlc_quantize_row(want[t].type, x, q, N);
        cr_assert_eq(fnv1a(q, bytes), want[t].fnv, "%s", mlc_type_name(want[t].type));
    }
    free(q);
}

/* ---- quantize -> dequantize ---------------------------------------------------------------- */

enum { RT_N = 256 * 64 };

/* Error of a round trip relative to the data: sqrt(sum (y - x)^2 / sum x^2). */
static double rel_rmse(const float *x, const float *y, int64_t n)
{
    double se = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        ss += (double)x[i] * x[i];
    }
    return sqrt(se / ss);
}

/* Upper bounds on rel_rmse for N(0,1) data; measured values are about 0.086 (Q4_0),
 * 0.0054 (Q8_0), 0.072 (Q4_K), 0.018 (Q6_K). */
static double rmse_bound(mlc_type t)
{
    switch (t) {
    case MLC_TYPE_Q4_0: return 0.10;
    case MLC_TYPE_Q8_0: return 0.007;
    case MLC_TYPE_Q4_K: return 0.085;
    case MLC_TYPE_Q6_K: return 0.022;
    default: return 0;
    }
}

static void fill_gauss(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = tu_rng_gauss24(&seed);
}

Test(quant_round_trip, gaussian_error_bounds)
{
    float *x = malloc(RT_N * sizeof *x), *y = malloc(RT_N * sizeof *y);
    cr_assert(x && y);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        fill_gauss(x, RT_N, seed);
        double prev = 1.0;
        /* Q4_0, Q4_K, Q6_K, Q8_0: each must beat the one before it. */
        const mlc_type order[] = {MLC_TYPE_Q4_0, MLC_TYPE_Q4_K, MLC_TYPE_Q6_K, MLC_TYPE_Q8_0};
        for (size_t t = 0; t < 4; t++) {
            round_trip(order[t], x, y, RT_N, false);
            assert_all_finite(y, RT_N);
            const double e = rel_rmse(x, y, RT_N);
            cr_assert(e < rmse_bound(order[t]), "%s seed %llu: %.5f >= %.5f",
                      mlc_type_name(order[t]), (unsigned long long)seed, e,
                      rmse_bound(order[t]));
            cr_assert(e < prev, "%s: %.5f not below the previous type's %.5f",
                      mlc_type_name(order[t]), e, prev);
            prev = e;
        }
    }
    free(x);
    free(y);
}

Test(quant_round_trip, uniform_error_bounds)
{
    /* U(-1, 1) is kinder than N(0, 1) (no tails), so the same bounds hold with room. */
    float *x = malloc(RT_N * sizeof *x), *y = malloc(RT_N * sizeof *y);
    cr_assert(x && y);
    uint64_t s = 42;
    for (int i = 0; i < RT_N; i++)
        x[i] = 2 * tu_rng_unit24(&s) - 1;
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        round_trip(QUANT_TYPES[t], x, y, RT_N, false);
        const double e = rel_rmse(x, y, RT_N);
        cr_assert(e < 0.8 * rmse_bound(QUANT_TYPES[t]), "%s: %.5f",
                  mlc_type_name(QUANT_TYPES[t]), e);
    }
    free(x);
    free(y);
}

/* Per-value bounds, plus slack for the f16 rounding of d. Q8_0: rounding to the nearest
 * level leaves at most half a step, d / 2 = amax / 254. Q4_0: levels run -8d..7d with the
 * block's extreme at -8d, so values of the other sign beyond 7d clamp to 7d: up to
 * d = amax / 8 off. */
Test(quant_round_trip, per_value_bounds_q8_0_q4_0)
{
    float x[32 * 64], y[32 * 64];
    fill_gauss(x, 32 * 64, 7);
    round_trip(MLC_TYPE_Q8_0, x, y, 32 * 64, false);
    for (int b = 0; b < 64; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[32 * b + i]));
        for (int i = 0; i < 32; i++) {
            const float err = fabsf(y[32 * b + i] - x[32 * b + i]);
            cr_assert(err <= amax / 127 * 0.5f + amax * 1e-3f, "Q8_0 block %d value %d", b, i);
        }
    }
    round_trip(MLC_TYPE_Q4_0, x, y, 32 * 64, false);
    for (int b = 0; b < 64; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[32 * b + i]));
        for (int i = 0; i < 32; i++) {
            const float err = fabsf(y[32 * b + i] - x[32 * b + i]);
            cr_assert(err <= amax / 8 + amax * 1e-3f, "Q4_0 block %d value %d", b, i);
        }
    }
}

/* quantize(dequantize(quantize(x))) == quantize(x) byte for byte holds for Q8_0 and Q4_0:
 * the value of largest magnitude comes back as exactly d * 127 (or d * -8), which gives
 * back the same d, and every other value sits on that grid. Q4_K and Q6_K refit their
 * scales and do not promise this; for them re-quantizing must at least not move values by
 * more than the original error. */
Test(quant_round_trip, idempotence)
{
    enum { N = 256 * 16 };
    float x[N], y[N], y2[N];
    uint8_t q2[N * 2];
    for (int dist = 0; dist < 2; dist++) {
        uint64_t s = 99 + (uint64_t)dist;
        for (int i = 0; i < N; i++) { /* Gaussian, then heavy-tailed (log-normal scales) */
            const float g = tu_rng_gauss24(&s); /* drawn before the scale: a fixed order */
            x[i] = dist == 0 ? g : g * expf(2 * tu_rng_gauss24(&s));
        }
        for (size_t t = 0; t < N_QUANT_TYPES; t++) {
            const mlc_type type = QUANT_TYPES[t];
            const size_t bytes = mlc_type_row_bytes(type, N);
            uint8_t *q = round_trip(type, x, y, N, true);
            mlc_quantize_row(type, y, q2, N);
            mlc_dequantize_row(type, q2, y2, N);
            if (type == MLC_TYPE_Q8_0 || type == MLC_TYPE_Q4_0)
                cr_assert_arr_eq(q, q2, bytes, "%s dist %d", mlc_type_name(type), dist);
            cr_assert(rel_rmse(y, y2, N) <= rel_rmse(x, y, N), "%s dist %d",
                      mlc_type_name(type), dist);
            free(q);
        }
    }
}

Test(quant_round_trip, unaligned_buffers)
{
    /* Blocks at odd addresses (as inside an mmapped file) give the same bytes and values. */
    float x[512], y[512], y2[512];
    fill_gauss(x, 512, 5);
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        const mlc_type type = QUANT_TYPES[t];
        const size_t bytes = mlc_type_row_bytes(type, 512);
        uint8_t *a = malloc(bytes), *u = malloc(bytes + 1);
        cr_assert(a && u);
        mlc_quantize_row(type, x, a, 512);
        mlc_quantize_row(type, x, u + 1, 512);
        cr_assert_arr_eq(a, u + 1, bytes, "%s", mlc_type_name(type));
        mlc_dequantize_row(type, a, y, 512);
        mlc_dequantize_row(type, u + 1, y2, 512);
        cr_assert_arr_eq(y, y2, sizeof y);
        free(a);
        free(u);
    }
}

/* ---- degenerate blocks ------------------------------------------------------------------ */

Test(quant_edge, all_zero)
{
    float x[512] = {0}, y[512];
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        for (int i = 0; i < 512; i++)
            y[i] = NAN;
        round_trip(QUANT_TYPES[t], x, y, 512, false);
        for (int i = 0; i < 512; i++)
            cr_assert(y[i] == 0.0f, "%s value %d = %g", mlc_type_name(QUANT_TYPES[t]), i,
                      (double)y[i]);
    }
}

Test(quant_edge, constant_blocks)
{
    /* A constant comes back to within the f16 rounding of the block scale(s), about 2^-11
     * relative, except for small constants whose K-quant scale (about c / 945 for Q4_K,
     * c / 4096 for Q6_K) is an f16 subnormal with few significant bits. */
    const struct {
        float c, tol;
    } cs[] = {{1.0f, 1e-3f},  {-1.0f, 1e-3f},   {0.3f, 1e-3f},    {-7.25f, 1e-3f},
              {0.1f, 2e-3f},  {1000.0f, 1e-3f}, {-1000.0f, 1e-3f}, {30000.0f, 1e-3f},
              {1e-3f, 4e-2f}, {-1e-3f, 4e-2f}};
    float x[256], y[256];
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        for (int i = 0; i < 256; i++)
            x[i] = cs[c].c;
        for (size_t t = 0; t < N_QUANT_TYPES; t++) {
            round_trip(QUANT_TYPES[t], x, y, 256, false);
            for (int i = 0; i < 256; i++)
                cr_assert(fabsf(y[i] - cs[c].c) <= cs[c].tol * fabsf(cs[c].c), "%s c=%g: %g",
                          mlc_type_name(QUANT_TYPES[t]), (double)cs[c].c, (double)y[i]);
        }
    }
}

Test(quant_edge, same_sign_blocks)
{
    /* All negative, then all positive: the min of Q4_K and the sign of d elsewhere. */
    float x[256], y[256];
    for (int sign = -1; sign <= 1; sign += 2) {
        uint64_t s = 3;
        for (int i = 0; i < 256; i++)
            x[i] = (float)sign * (0.5f + tu_rng_unit24(&s));
        for (size_t t = 0; t < N_QUANT_TYPES; t++) {
            const mlc_type type = QUANT_TYPES[t];
            round_trip(type, x, y, 256, false);
            assert_all_finite(y, 256);
            cr_assert(rel_rmse(x, y, 256) < rmse_bound(type), "%s sign %d: %.4f",
                      mlc_type_name(type), sign, rel_rmse(x, y, 256));
        }
    }
}

Test(quant_edge, one_large_value)
{
    /* One value 1000x the rest: it sets the scale and must come back to within a few
     * percent; the small ones may collapse to 0 or a level but must stay finite. */
    float x[256], y[256];
    uint64_t s = 11;
    for (int i = 0; i < 256; i++)
        x[i] = tu_rng_gauss24(&s);
    x[77] = -1000.0f;
    x[200] = 800.0f;
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        round_trip(QUANT_TYPES[t], x, y, 256, false);
        assert_all_finite(y, 256);
        cr_assert(fabsf(y[77] + 1000.0f) < 10.0f, "%s: %g", mlc_type_name(QUANT_TYPES[t]),
                  (double)y[77]);
        cr_assert(fabsf(y[200] - 800.0f) < 60.0f, "%s: %g", mlc_type_name(QUANT_TYPES[t]),
                  (double)y[200]);
    }
}

Test(quant_edge, extreme_magnitudes_stay_finite)
{
    /* Beyond f16's range for the block scale (1e30, FLT_MAX), tiny and denormal values,
     * infinities and NaN: nothing may crash, trip UBSan, or decode to NaN or inf. */
    const float mags[] = {1e30f, 3.4e38f, 1e6f, 1e-30f, 1e-40f, 1e-45f, INFINITY, NAN};
    float x[256], y[256];
    for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
        for (int lone = 0; lone < 2; lone++) {
            uint64_t s = 5;
            for (int i = 0; i < 256; i++)
                x[i] = lone ? tu_rng_gauss24(&s) : mags[m] * (i % 2 ? -1.0f : 0.5f);
            if (lone)
                x[13] = mags[m];
            for (size_t t = 0; t < N_QUANT_TYPES; t++) {
                round_trip(QUANT_TYPES[t], x, y, 256, false);
                for (int i = 0; i < 256; i++)
                    cr_assert(isfinite(y[i]), "%s mag %g lone %d: value %d = %g",
                              mlc_type_name(QUANT_TYPES[t]), (double)mags[m], lone, i,
                              (double)y[i]);
            }
        }
    }
}

Test(quant_edge, tiny_values_round_to_zero_scale)
{
    /* Values far below f16's smallest subnormal: the f16 scale is 0, so everything is 0. */
    float x[256], y[256];
    uint64_t s = 8;
    for (int i = 0; i < 256; i++)
        x[i] = 1e-12f * tu_rng_gauss24(&s);
    for (size_t t = 0; t < N_QUANT_TYPES; t++) {
        round_trip(QUANT_TYPES[t], x, y, 256, false);
        for (int i = 0; i < 256; i++)
            cr_assert(y[i] == 0.0f, "%s value %d = %g", mlc_type_name(QUANT_TYPES[t]), i,
                      (double)y[i]);
    }
}

Test(quant_edge, bad_calls_write_nothing)
{
    /* Unsupported type or n not a multiple of the block size: the output is left alone. */
    float x[256] = {1.0f}, y[256];
    uint8_t q[512];
    memset(q, 0xAB, sizeof q);
    mlc_quantize_row(MLC_TYPE_Q4_K, x, q, 100);
    mlc_quantize_row((mlc_type)16, x, q, 256);
    mlc_quantize_row(MLC_TYPE_Q8_0, x, q, -32);
    for (size_t i = 0; i < sizeof q; i++)
        cr_assert_eq(q[i], 0xAB);
    for (int i = 0; i < 256; i++)
        y[i] = 42.0f;
    mlc_dequantize_row(MLC_TYPE_Q6_K, q, y, 255);
    mlc_dequantize_row((mlc_type)9, q, y, 32);
    for (int i = 0; i < 256; i++)
        assert_feq(y[i], 42.0f);
}
