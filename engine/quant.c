/* engine/quant.c: ggml type table, half/bfloat16 conversions, and the scalar reference
 * (de)quantizers for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS; the
 * K-quants are in
 * quant_k.c, under the same rules.
 *
 * Bit-exactness: the quantizers follow ggml's quantize_row_*_ref step by step, with the float
 * operations in the same order, so for finite inputs in ggml's working range they write the
 * same bytes. That needs strict IEEE single precision without fused multiply-add: GCC in
 * -std=c11 mode does not contract, and the pragma below stops clang from doing so.
 *
 * Where ggml would hit undefined behaviour or write a non-finite scale (NaN or infinite
 * inputs, magnitudes whose f16 scale overflows, denormal block maxima whose reciprocal
 * overflows), these functions stay defined instead: float-to-int conversions saturate (NaN
 * gives 0) and stored f16 scales saturate to +-65504 (NaN gives 0). Those are the only
 * places the output may differ from ggml's.
 *
 * Blocks are read and written as little-endian bytes at fixed offsets, never through struct
 * pointers, so they may sit at any alignment (e.g. inside an mmapped GGUF file). */
#include "mlc/quant.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "quant_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- type table ---------------------------------------------------------------------- */

typedef struct type_info {
    const char *name; /* NULL for retired ids */
    int64_t block;    /* values per block */
    size_t bytes;     /* bytes per block */
    bool supported;
} type_info;

/* Indexed by ggml type id. Sizes are those of ggml's block_* structs (ggml-common.h). */
static const type_info TYPES[MLC_TYPE_COUNT] = {
    [0] = {"F32", 1, 4, true},
    [1] = {"F16", 1, 2, true},
    [2] = {"Q4_0", 32, 18, true},    /* f16 d; u8 qs[16] */
    [3] = {"Q4_1", 32, 20, true},    /* f16 d, m; u8 qs[16] */
    [6] = {"Q5_0", 32, 22, true},    /* f16 d; u8 qh[4]; u8 qs[16] */
    [7] = {"Q5_1", 32, 24, true},    /* f16 d, m; u8 qh[4]; u8 qs[16] */
    [8] = {"Q8_0", 32, 34, true},    /* f16 d; i8 qs[32] */
    [9] = {"Q8_1", 32, 36, false},   /* f16 d, s; i8 qs[32] */
    [10] = {"Q2_K", 256, 84, true},  /* u8 scales[16], qs[64]; f16 d, dmin */
    [11] = {"Q3_K", 256, 110, true},  /* u8 hmask[32], qs[64], scales[12]; f16 d */
    [12] = {"Q4_K", 256, 144, true},  /* f16 d, dmin; u8 scales[12], qs[128] */
    [13] = {"Q5_K", 256, 176, true},  /* f16 d, dmin; u8 scales[12], qh[32], qs[128] */
    [14] = {"Q6_K", 256, 210, true},  /* u8 ql[128], qh[64]; i8 scales[16]; f16 d */
    [15] = {"Q8_K", 256, 292, false}, /* f32 d; i8 qs[256]; i16 bsums[16] */
    [16] = {"IQ2_XXS", 256, 66, false}, /* f16 d; u16 qs[32] */
    [17] = {"IQ2_XS", 256, 74, false},  /* f16 d; u16 qs[32]; u8 scales[8] */
    [18] = {"IQ3_XXS", 256, 98, false}, /* f16 d; u8 qs[96] */
    [19] = {"IQ1_S", 256, 50, false},   /* f16 d; u8 qs[32]; u16 qh[8] */
    [20] = {"IQ4_NL", 32, 18, true},    /* f16 d; u8 qs[16] */
    [21] = {"IQ3_S", 256, 110, false},  /* f16 d; u8 qs[64], qh[8], signs[32], scales[4] */
    [22] = {"IQ2_S", 256, 82, false},   /* f16 d; u8 qs[64], qh[8], scales[8] */
    [23] = {"IQ4_XS", 256, 136, true},  /* f16 d; u16 scales_h; u8 scales_l[4], qs[128] */
    [24] = {"I8", 1, 1, false},
    [25] = {"I16", 1, 2, false},
    [26] = {"I32", 1, 4, false},
    [27] = {"I64", 1, 8, false},
    [28] = {"F64", 1, 8, false},
    [29] = {"IQ1_M", 256, 56, false}, /* u8 qs[32], qh[16], scales[8] */
    [30] = {"BF16", 1, 2, true},
    [34] = {"TQ1_0", 256, 54, false}, /* u8 qs[48], qh[4]; f16 d */
    [35] = {"TQ2_0", 256, 66, false}, /* u8 qs[64]; f16 d */
    [39] = {"MXFP4", 32, 17, false},  /* u8 e (E8M0 scale); u8 qs[16] */
};

/* The entry for a known, non-retired id, else NULL. */
static const type_info *type_lookup(uint32_t type)
{
    if (type >= MLC_TYPE_COUNT || !TYPES[type].name)
        return NULL;
    return &TYPES[type];
}

const char *mlc_type_name(uint32_t type)
{
    const type_info *t = type_lookup(type);
    return t ? t->name : NULL;
}

int64_t mlc_type_block_size(uint32_t type)
{
    const type_info *t = type_lookup(type);
    return t ? t->block : 0;
}

size_t mlc_type_block_bytes(uint32_t type)
{
    const type_info *t = type_lookup(type);
    return t ? t->bytes : 0;
}

bool mlc_type_supported(uint32_t type)
{
    const type_info *t = type_lookup(type);
    return t && t->supported;
}

/* ASCII case-insensitive equality (locale-independent). */
static bool name_equal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (toupper((unsigned char)*a) != toupper((unsigned char)*b))
            return false;
    return *a == *b;
}

bool mlc_type_from_name(const char *name, mlc_type *out)
{
    if (!name)
        return false;
    for (uint32_t i = 0; i < MLC_TYPE_COUNT; i++) {
        if (TYPES[i].supported && name_equal(name, TYPES[i].name)) {
            if (out)
                *out = (mlc_type)i;
            return true;
        }
    }
    return false;
}

size_t mlc_type_row_bytes(uint32_t type, int64_t n)
{
    const type_info *t = type_lookup(type);
    if (!t || n < 0 || n % t->block != 0)
        return 0;
    /* uint64_t first: on 32-bit hosts the block count itself may not fit in size_t. */
    uint64_t blocks = (uint64_t)(n / t->block);
    if (blocks > SIZE_MAX / t->bytes)
        return 0;
    return (size_t)blocks * t->bytes;
}

/* ---- half and bfloat16 ----------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float mlc_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) /* inf, or NaN made quiet (bit 22) with its payload kept */
        return f32_from_bits(sign | 0x7F800000u | (man << 13) | (man ? 0x400000u : 0));
    if (exp == 0) {
        if (man == 0)
            return f32_from_bits(sign);
        /* Subnormal man * 2^-24: shift the leading 1 up to bit 10, lowering the exponent. */
        exp = 127 - 14;
        while (!(man & 0x400u)) {
            man <<= 1;
            exp--;
        }
        return f32_from_bits(sign | (exp << 23) | ((man & 0x3FFu) << 13));
    }
    return f32_from_bits(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

/* |f| below 2^-14 as a half subnormal: round(|f| / 2^-24) to nearest even; a carry into
 * 0x400 is exactly the smallest normal, so the encoding stays right. */
static uint16_t fp16_subnormal(uint32_t abs_bits)
{
    uint32_t exp = abs_bits >> 23;
    if (exp < 127 - 25) /* below 2^-25 (and f32 zeros/subnormals): rounds to 0 */
        return 0;
    uint32_t man = (abs_bits & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126 - exp; /* man * 2^(exp-150) in units of 2^-24; 14..24 */
    uint32_t q = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return (uint16_t)q;
}

uint16_t mlc_fp32_to_fp16(float f)
{
    uint32_t w = f32_bits(f);
    uint16_t sign = (uint16_t)((w >> 16) & 0x8000u);
    uint32_t a = w & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet, top 9 payload bits kept (as F16C does) */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x1FFu));
    if (a >= 0x477FF000u) /* >= 65520 = 65504 + half an ulp: ties to even give inf */
        return (uint16_t)(sign | 0x7C00u);
    if (a < 0x38800000u) /* below 2^-14 */
        return (uint16_t)(sign | fp16_subnormal(a));
    uint32_t r = a - ((uint32_t)(127 - 15) << 23);
    r = (r + 0xFFFu + ((r >> 13) & 1)) >> 13;
    return (uint16_t)(sign | r);
}

float mlc_bf16_to_fp32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t mlc_fp32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: truncation could make it inf; quiet it */
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

/* ---- Q4_0: 32 values, 18 bytes ----------------------------------------------------------- */

static void dequant_q4_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < MLC_QK4_0 / 2; j++) {
        const int x0 = (qs[j] & 0x0F) - 8;
        const int x1 = (qs[j] >> 4) - 8;
        y[j] = (float)x0 * d;
        y[j + MLC_QK4_0 / 2] = (float)x1 * d;
    }
}

static void quant_q4_0(const float *x, uint8_t *b)
{
    /* The signed value of largest magnitude maps to -8, so its sign picks d's sign. */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < MLC_QK4_0; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_scale_f16(b, d);
    for (int j = 0; j < MLC_QK4_0 / 2; j++) {
        const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
        const int q1 = trunc_clamp(x[j + MLC_QK4_0 / 2] * id + 8.5f, 0, 15);
        b[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

/* ---- Q4_1, Q5_0, Q5_1: 32 values ---------------------------------------------------------
 * Q4_1 (20 B): f16 d @0, f16 m @2, qs[16] @4; x = d * q + m, q in 0..15.
 * Q5_0 (22 B): f16 d @0, u32 qh @2, qs[16] @6; x = d * (q - 16), q in 0..31.
 * Q5_1 (24 B): f16 d @0, f16 m @2, u32 qh @4, qs[16] @8; x = d * q + m, q in 0..31.
 * As in Q4_0, byte j of qs holds value j in its low nibble and value j + 16 in its high
 * nibble; the fifth bit of value i is bit i of the little-endian qh. */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The 32 level values of a 4-bit (qh NULL) or 5-bit block. */
static void unpack_levels(const uint8_t *qs, const uint8_t *qh, int *q)
{
    const uint32_t h = qh ? rd32(qh) : 0;
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xF) | (int)(((h >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
    }
}

/* Packs 32 levels: low 4 bits into qs, the fifth bits into qh (when not NULL). */
static void pack_levels(const int *q, uint8_t *qs, uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        h |= (uint32_t)((q[j] >> 4) & 1) << j;
        h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    if (qh)
        wr32(qh, h);
}

static void dequant_q5_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    int q[32];
    unpack_levels(b + 6, b + 2, q);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(q[j] - 16) * d;
}

static void quant_q5_0(const float *x, uint8_t *b)
{
    /* As Q4_0: the signed value of largest magnitude maps to level 0 (-16). */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_scale_f16(b, d);
    int q[32];
    for (int j = 0; j < 32; j++)
        q[j] = trunc_clamp(x[j] * id + 16.5f, 0, 31);
    pack_levels(q, b + 6, b + 2);
}

/* Q4_1 (bits 4, qh NULL) and Q5_1 (bits 5): x = d * q + m. */
static void dequant_affine(const uint8_t *b, const uint8_t *qs, const uint8_t *qh, float *y)
{
    const float d = rd_f16(b), m = rd_f16(b + 2);
    int q[32];
    unpack_levels(qs, qh, q);
    for (int j = 0; j < 32; j++)
        y[j] = (float)q[j] * d + m;
}

/* ggml's quantize_row_q4_1_ref / q5_1_ref: the block's range [min, max] in 2^bits - 1
 * steps; levels round half up from (x - min) / d. */
static void quant_affine(const float *x, int nmax, uint8_t *b, uint8_t *qs, uint8_t *qh)
{
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    const float d = (max - min) / (float)nmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_scale_f16(b, d);
    wr_scale_f16(b + 2, min);
    int q[32];
    for (int j = 0; j < 32; j++)
        q[j] = trunc_clamp((x[j] - min) * id + 0.5f, 0, nmax);
    pack_levels(q, qs, qh);
}

static void dequant_q4_1(const uint8_t *b, float *y)
{
    dequant_affine(b, b + 4, NULL, y);
}

static void quant_q4_1(const float *x, uint8_t *b)
{
    quant_affine(x, 15, b, b + 4, NULL);
}

static void dequant_q5_1(const uint8_t *b, float *y)
{
    dequant_affine(b, b + 8, b + 4, y);
}

static void quant_q5_1(const float *x, uint8_t *b)
{
    quant_affine(x, 31, b, b + 8, b + 4);
}

/* ---- Q8_0: 32 values, 34 bytes ----------------------------------------------------------- */

static void dequant_q8_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    for (int j = 0; j < MLC_QK8_0; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

static void quant_q8_0(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < MLC_QK8_0; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_scale_f16(b, d);
    for (int j = 0; j < MLC_QK8_0; j++) {
        /* roundf (half away from zero) is what ggml uses here, not nearest_int. */
        const float r = roundf(x[j] * id);
        b[2 + j] = (uint8_t)(int8_t)trunc_clamp(r, -128, 127);
    }
}

/* ---- IQ4_NL (32 values, 18 B) and IQ4_XS (256 values, 136 B) ------------------------------
 * Non-linear 4-bit: each nibble indexes IQ4_VALUES, value = scale * IQ4_VALUES[nibble].
 * IQ4_NL bytes: f16 d @0, qs[16] @2; nibbles as Q4_0 (byte j: value j low, j + 16 high).
 * IQ4_XS bytes: f16 d @0, u16 scales_h @2, scales_l[4] @4, qs[128] @8. Sub-block ib (32
 * values, qs[16 ib..]) has the 6-bit scale ls = (scales_l[ib / 2] >> 4 (ib % 2)) & 15 |
 * ((scales_h >> 2 ib) & 3) << 4 and the value d * (ls - 32) * IQ4_VALUES[nibble]. */

static const int8_t IQ4_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

static void dequant_iq4_32(const uint8_t *qs, float d, float *y)
{
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)IQ4_VALUES[qs[j] & 0xF];
        y[j + 16] = d * (float)IQ4_VALUES[qs[j] >> 4];
    }
}

static void dequant_iq4_nl(const uint8_t *b, float *y)
{
    dequant_iq4_32(b + 2, rd_f16(b), y);
}

static void dequant_iq4_xs(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    const uint16_t sh = rd16(b + 2);
    for (int ib = 0; ib < 8; ib++) {
        const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
        dequant_iq4_32(b + 8 + 16 * ib, d * (float)(ls - 32), y + 32 * ib);
    }
}

/* ggml's best_index_int8: the index of the table value nearest to x (the upper one on a
 * tie); NaN gives 0. */
static int iq4_index(float x)
{
    if (!(x > IQ4_VALUES[0]))
        return 0;
    if (x >= IQ4_VALUES[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < IQ4_VALUES[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - IQ4_VALUES[hi - 1] < IQ4_VALUES[hi] - x ? hi - 1 : hi;
}

/* sum w q x and sum w q^2 of the 32 values xb on the grid iscale, weights x^2; L (optional)
 * gets the indices. */
static void iq4_sums(const float *xb, float iscale, uint8_t *L, float *sumqx, float *sumq2)
{
    *sumqx = *sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        const int l = iq4_index(iscale * xb[j]);
        if (L)
            L[j] = (uint8_t)l;
        const float q = IQ4_VALUES[l], w = xb[j] * xb[j];
        *sumqx += w * q * xb[j];
        *sumq2 += w * q * q;
    }
}

/* The block scale of 32 values (ggml's quantize_row_iq4_nl_impl for one block, no
 * importance weights): the value of largest magnitude on the table's end, the weighted
 * least-squares scale for those indices, then (ntry > 0) 2 ntry + 1 nearby grids, keeping
 * the best fit. L gets the first grid's indices. Returns 0 for an all-zero block. */
static float iq4_block_scale(const float *xb, int ntry, uint8_t *L)
{
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++) {
        if (fabsf(xb[j]) > amax) {
            amax = fabsf(xb[j]);
            max = xb[j];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, 32);
        return 0;
    }
    float d = ntry > 0 ? -max / IQ4_VALUES[0] : max / IQ4_VALUES[0];
    float sumqx, sumq2;
    iq4_sums(xb, 1 / d, L, &sumqx, &sumq2);
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; itry++) {
        iq4_sums(xb, (itry + IQ4_VALUES[0]) / max, NULL, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void iq4_pack(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

/* quantize_row_iq4_nl_ref: ntry -1 (one fit, no grid search, no re-quantization). */
static void quant_iq4_nl(const float *x, uint8_t *b)
{
    uint8_t L[32];
    wr_scale_f16(b, iq4_block_scale(x, -1, L));
    iq4_pack(L, b + 2);
}

/* quantize_row_iq4_xs_ref: ntry 7 per sub-block; the sub-block scales go to 6 bits against
 * the one of largest magnitude (d = -max / 32), and every value is re-indexed against its
 * stored scale. */
static void quant_iq4_xs(const float *x, uint8_t *b)
{
    float scales[8], max_scale = 0, amax_scale = 0;
    uint8_t L[32];
    for (int ib = 0; ib < 8; ib++) {
        scales[ib] = iq4_block_scale(x + 32 * ib, 7, L);
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    memset(b + 2, 0, 6);
    const float d = -max_scale / 32;
    wr_scale_f16(b, d);
    const float id = d != 0.0f ? 1 / d : 0.f;
    uint16_t sh = 0;
    for (int ib = 0; ib < 8; ib++) {
        int l = clamp_int(nearest_int(id * scales[ib]), -32, 31);
        const float dl = d * (float)l;
        const float idl = dl != 0.0f ? 1 / dl : 0.f;
        for (int j = 0; j < 32; j++)
            L[j] = (uint8_t)iq4_index(idl * x[32 * ib + j]);
        iq4_pack(L, b + 8 + 16 * ib);
        l += 32;
        b[4 + ib / 2] |= (uint8_t)((l & 0xF) << (4 * (ib % 2)));
        sh |= (uint16_t)((l >> 4) << (2 * ib));
    }
    wr16(b + 2, sh);
}

/* ---- row entry points ---------------------------------------------------------------------- */

typedef mlc_dequant_fn dequant_fn;
typedef mlc_quant_fn quant_fn;

/* Block codec of a quantized type, or false for the element types and unknown ids. */
static bool block_codec(mlc_type type, dequant_fn *dq, quant_fn *q)
{
    switch (type) {
    case MLC_TYPE_Q4_0: *dq = dequant_q4_0; *q = quant_q4_0; return true;
    case MLC_TYPE_Q8_0: *dq = dequant_q8_0; *q = quant_q8_0; return true;
    case MLC_TYPE_Q4_1: *dq = dequant_q4_1; *q = quant_q4_1; return true;
    case MLC_TYPE_Q5_0: *dq = dequant_q5_0; *q = quant_q5_0; return true;
    case MLC_TYPE_Q5_1: *dq = dequant_q5_1; *q = quant_q5_1; return true;
    case MLC_TYPE_IQ4_NL: *dq = dequant_iq4_nl; *q = quant_iq4_nl; return true;
    case MLC_TYPE_IQ4_XS: *dq = dequant_iq4_xs; *q = quant_iq4_xs; return true;
    default: return mlc_quant_k_codec(type, dq, q);
    }
}

/* Number of blocks in a row of n values, or -1 when the call violates the preconditions. */
static int64_t row_blocks(mlc_type type, int64_t n)
{
    if (!mlc_type_supported(type) || n < 0)
        return -1;
    const int64_t bs = mlc_type_block_size(type);
    return n % bs == 0 ? n / bs : -1;
}

/* Rows of an unsupported type or with n not a multiple of the block size are left as they
 * are: the header makes those a caller error. */
void mlc_dequantize_row(mlc_type type, const void *src, float *dst, int64_t n)
{
    const int64_t nb = row_blocks(type, n);
    if (nb <= 0)
        return;
    const uint8_t *s = src;
    dequant_fn dq;
    quant_fn q;
    if (block_codec(type, &dq, &q)) {
        const size_t bytes = mlc_type_block_bytes(type), bs = (size_t)mlc_type_block_size(type);
        for (int64_t i = 0; i < nb; i++)
            dq(s + (size_t)i * bytes, dst + (size_t)i * bs);
    } else if (type == MLC_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else {
        const bool bf = type == MLC_TYPE_BF16;
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = rd16(s + 2 * (size_t)i);
            dst[i] = bf ? mlc_bf16_to_fp32(h) : mlc_fp16_to_fp32(h);
        }
    }
}

void mlc_quantize_row(mlc_type type, const float *src, void *dst, int64_t n)
{
    const int64_t nb = row_blocks(type, n);
    if (nb <= 0)
        return;
    uint8_t *d = dst;
    dequant_fn dq;
    quant_fn q;
    if (block_codec(type, &dq, &q)) {
        const size_t bytes = mlc_type_block_bytes(type), bs = (size_t)mlc_type_block_size(type);
        for (int64_t i = 0; i < nb; i++)
            q(src + (size_t)i * bs, d + (size_t)i * bytes);
    } else if (type == MLC_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else {
        const bool bf = type == MLC_TYPE_BF16;
        for (int64_t i = 0; i < n; i++)
            wr16(d + 2 * (size_t)i, bf ? mlc_fp32_to_bf16(src[i]) : mlc_fp32_to_fp16(src[i]));
    }
}
