/* engine/quant.c: ggml type table, half/bfloat16 conversions, and the scalar reference
 * (de)quantizers for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K.
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
    [10] = {"Q2_K", 256, 84, false}, /* u8 scales[16], qs[64]; f16 d, dmin */
    [11] = {"Q3_K", 256, 110, false}, /* u8 hmask[32], qs[64], scales[12]; f16 d */
    [12] = {"Q4_K", 256, 144, true},  /* f16 d, dmin; u8 scales[12], qs[128] */
    [13] = {"Q5_K", 256, 176, false}, /* f16 d, dmin; u8 scales[12], qh[32], qs[128] */
    [14] = {"Q6_K", 256, 210, true},  /* u8 ql[128], qh[64]; i8 scales[16]; f16 d */
    [15] = {"Q8_K", 256, 292, false}, /* f32 d; i8 qs[256]; i16 bsums[16] */
    [16] = {"IQ2_XXS", 256, 66, false}, /* f16 d; u16 qs[32] */
    [17] = {"IQ2_XS", 256, 74, false},  /* f16 d; u16 qs[32]; u8 scales[8] */
    [18] = {"IQ3_XXS", 256, 98, false}, /* f16 d; u8 qs[96] */
    [19] = {"IQ1_S", 256, 50, false},   /* f16 d; u8 qs[32]; u16 qh[8] */
    [20] = {"IQ4_NL", 32, 18, false},   /* f16 d; u8 qs[16] */
    [21] = {"IQ3_S", 256, 110, false},  /* f16 d; u8 qs[64], qh[8], signs[32], scales[4] */
    [22] = {"IQ2_S", 256, 82, false},   /* f16 d; u8 qs[64], qh[8], scales[8] */
    [23] = {"IQ4_XS", 256, 136, false}, /* f16 d; u16 scales_h; u8 scales_l[4], qs[128] */
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

/* ---- byte access and safe rounding ----------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

static float rd_f16(const uint8_t *p)
{
    return mlc_fp16_to_fp32(rd16(p));
}

/* A block scale as f16; saturated and NaN-free so a degenerate block still decodes finite. */
static void wr_scale_f16(uint8_t *p, float v)
{
    if (v != v)
        v = 0.0f;
    else if (fabsf(v) > 65504.0f)
        v = copysignf(65504.0f, v);
    wr16(p, mlc_fp32_to_fp16(v));
}

/* ggml's nearest_int: round half to even via the 1.5 * 2^23 trick, valid for |v| < 2^22.
 * Outside that range (where ggml asserts) the result saturates; NaN gives 0. */
static int nearest_int(float v)
{
    if (!(fabsf(v) <= 4194303.0f))
        return v > 0 ? 4194303 : (v < 0 ? -4194303 : 0);
    uint32_t i = f32_bits(v + 12582912.0f);
    return (int)(i & 0x7FFFFFu) - 0x400000;
}

/* Clamps v to [lo, hi] and truncates toward zero; NaN gives 0. */
static int trunc_clamp(float v, int lo, int hi)
{
    if (v != v)
        return 0;
    if (v <= (float)lo)
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
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

/* ---- Q4_K: 256 values, 144 bytes -------------------------------------------------------
 * Bytes: f16 d @0, f16 dmin @2, scales[12] @4, qs[128] @16. Eight sub-blocks of 32 values,
 * value = d * sc[j] * q - dmin * m[j] with q in 0..15 and 6-bit sc, m. scales[12] holds:
 *   sub-block j < 4:  sc = scales[j] & 63,  m = scales[j+4] & 63
 *   sub-block j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4
 *                     m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
 * qs: 64-value group g (sub-blocks 2g, 2g+1) uses qs[32g..32g+31], low then high nibbles. */

enum { Q4K_SUB = 32, Q4K_NSUB = MLC_QK_K / Q4K_SUB, Q4K_NMAX = 15 };

static void q4k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

static void dequant_q4_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    const float min = rd_f16(b + 2);
    const uint8_t *scales = b + 4;
    const uint8_t *q = b + 16;
    for (int j = 0; j < Q4K_NSUB; j += 2, q += 32) {
        uint8_t sc, m;
        q4k_scale_min(j, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        q4k_scale_min(j + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

/* make_qkx2_quants (ggml) for Q4_K: an affine fit x ~ scale * L + min with L in 0..15,
 * min <= 0, minimising sum w * (scale * L + min - x)^2. Starts from the max/min fit, then
 * tries 21 slightly different grid spacings and keeps the best least-squares refit.
 * Each trial grid is anchored at the best min found so far, not at the data minimum: ggml
 * updates min in place, and matching its bytes depends on doing the same. */
typedef struct q4k_fit {
    const float *x, *w; /* Q4K_SUB values and their weights */
    float sum_w, sum_x; /* sum w, sum w*x */
    float min;          /* data min clamped to <= 0, then the best fit's min */
    float max;          /* data max */
} q4k_fit;

static void q4k_levels(const q4k_fit *f, float iscale, uint8_t *L)
{
    for (int i = 0; i < Q4K_SUB; i++) {
        const int l = nearest_int(iscale * (f->x[i] - f->min));
        L[i] = (uint8_t)clamp_int(l, 0, Q4K_NMAX);
    }
}

static float q4k_error(const q4k_fit *f, const uint8_t *L, float scale, float min)
{
    float err = 0;
    for (int i = 0; i < Q4K_SUB; i++) {
        const float diff = scale * L[i] + min - f->x[i];
        err += f->w[i] * (diff * diff);
    }
    return err;
}

/* One refinement step: quantize on the grid iscale, then refit scale and min to those
 * levels by weighted least squares. Returns false when the normal equations are singular. */
static bool q4k_refit(const q4k_fit *f, float iscale, uint8_t *Laux, float *scale, float *min)
{
    q4k_levels(f, iscale, Laux);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < Q4K_SUB; i++) {
        const float l = Laux[i], w = f->w[i];
        sum_l += w * l;
        sum_l2 += w * l * l;
        sum_xl += w * l * f->x[i];
    }
    const float D = f->sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0))
        return false;
    *scale = (f->sum_w * sum_xl - f->sum_x * sum_l) / D;
    *min = (sum_l2 * f->sum_x - sum_l * sum_xl) / D;
    if (*min > 0) {
        *min = 0;
        *scale = sum_xl / sum_l2;
    }
    return true;
}

/* Returns the scale; *neg_min = -min (>= 0); L gets the 32 levels. */
static float q4k_make_quants(const float *x, const float *w, uint8_t *L, float *neg_min)
{
    q4k_fit f = {x, w, w[0], w[0] * x[0], x[0], x[0]};
    for (int i = 1; i < Q4K_SUB; i++) {
        if (x[i] < f.min)
            f.min = x[i];
        if (x[i] > f.max)
            f.max = x[i];
        f.sum_w += w[i];
        f.sum_x += w[i] * x[i];
    }
    if (f.min > 0)
        f.min = 0;
    if (f.max == f.min) {
        memset(L, 0, Q4K_SUB);
        *neg_min = -f.min;
        return 0.f;
    }
    float iscale = Q4K_NMAX / (f.max - f.min);
    float scale = 1 / iscale;
    q4k_levels(&f, iscale, L);
    float best = q4k_error(&f, L, scale, f.min);
    /* ggml's make_qkx2_quants(32, 15, x, w, L, &min, Laux, -1.f, 0.1f, 20, false) */
    const float rmin = -1.f, rdelta = 0.1f;
    for (int is = 0; is <= 20; is++) {
        uint8_t Laux[Q4K_SUB];
        float s, m;
        iscale = (rmin + rdelta * is + Q4K_NMAX) / (f.max - f.min);
        if (!q4k_refit(&f, iscale, Laux, &s, &m))
            continue;
        const float err = q4k_error(&f, Laux, s, m);
        if (err < best) {
            memcpy(L, Laux, Q4K_SUB);
            best = err;
            scale = s;
            f.min = m;
        }
    }
    *neg_min = -f.min;
    return scale;
}

/* Per-sub-block fits for one super-block: weights are rms(x) + |x_i|. */
static void q4k_fit_all(const float *x, uint8_t *L, float *scales, float *mins)
{
    for (int j = 0; j < Q4K_NSUB; j++) {
        const float *xs = x + Q4K_SUB * j;
        float sum_x2 = 0;
        for (int l = 0; l < Q4K_SUB; l++)
            sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / Q4K_SUB);
        float w[Q4K_SUB];
        for (int l = 0; l < Q4K_SUB; l++)
            w[l] = av_x + fabsf(xs[l]);
        scales[j] = q4k_make_quants(xs, w, L + Q4K_SUB * j, &mins[j]);
    }
}

/* Quantizes the 8 scales and mins to 6 bits against their maxima and packs scales[12]
 * (layout above); writes d = max_scale / 63 and dmin = max_min / 63. */
static void q4k_pack_scales(const float *scales, const float *mins, uint8_t *b)
{
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < Q4K_NSUB; j++) {
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *s = b + 4;
    for (int j = 0; j < Q4K_NSUB; j++) {
        /* uint8_t wrap then MIN(63, .) as in ggml */
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls > 63 ? 63 : ls;
        lm = lm > 63 ? 63 : lm;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    wr_scale_f16(b, max_scale / 63.f);
    wr_scale_f16(b + 2, max_min / 63.f);
}

/* Re-quantizes each sub-block against its stored (rounded) scale and min; sub-blocks whose
 * stored scale is 0 keep the levels of the fit. */
static void q4k_requantize(const float *x, const uint8_t *b, uint8_t *L)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    for (int j = 0; j < Q4K_NSUB; j++) {
        uint8_t sc, m;
        q4k_scale_min(j, b + 4, &sc, &m);
        const float dj = d * sc;
        if (dj == 0.0f)
            continue;
        const float dm = dmin * m;
        for (int i = 0; i < Q4K_SUB; i++) {
            const int l = nearest_int((x[Q4K_SUB * j + i] + dm) / dj);
            L[Q4K_SUB * j + i] = (uint8_t)clamp_int(l, 0, Q4K_NMAX);
        }
    }
}

static void quant_q4_k(const float *x, uint8_t *b)
{
    uint8_t L[MLC_QK_K];
    float scales[Q4K_NSUB], mins[Q4K_NSUB];
    q4k_fit_all(x, L, scales, mins);
    q4k_pack_scales(scales, mins, b);
    q4k_requantize(x, b, L);
    uint8_t *q = b + 16;
    for (int j = 0; j < MLC_QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++)
            q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

/* ---- Q6_K: 256 values, 210 bytes -------------------------------------------------------
 * Bytes: ql[128] @0, qh[64] @128, i8 scales[16] @192, f16 d @208. Sixteen sub-blocks of 16
 * values, value = d * scales[k] * (q - 32) with 6-bit q. Each 128-value half h uses
 * ql[64h..64h+63] and qh[32h..32h+31]; for l in 0..31, its values l, l+32, l+64, l+96 take
 * low bits from ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibble and high bits
 * from qh[l] bits 0-1, 2-3, 4-5, 6-7. */

enum { Q6K_SUB = 16, Q6K_NSUB = MLC_QK_K / Q6K_SUB, Q6K_NMAX = 32, Q6K_BYTES = 210 };

/* ggml's threshold below which a group counts as all zero. */
#define GROUP_MAX_EPS 1e-15f

static void dequant_q6_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b + 208);
    const uint8_t *ql = b, *qh = b + 128, *sc = b + 192;
    for (int n = 0; n < MLC_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)(int8_t)sc[is] * (float)q1;
            y[l + 32] = d * (float)(int8_t)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)(int8_t)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)(int8_t)sc[is + 6] * (float)q4;
        }
    }
}

/* Sums for make_qx_quants' weighted least-squares scale with weights x^2 (rmse_type 1):
 * sumlx = sum w*x*l, suml2 = sum w*l*l, l = clamp(nearest_int(iscale * x), -32, 31).
 * L (optional) gets l + 32. */
static void q6k_sums(const float *x, float iscale, int8_t *L, float *sumlx, float *suml2)
{
    *sumlx = *suml2 = 0;
    for (int i = 0; i < Q6K_SUB; i++) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -Q6K_NMAX, Q6K_NMAX - 1);
        if (L)
            L[i] = (int8_t)(l + Q6K_NMAX);
        const float w = x[i] * x[i];
        *sumlx += w * x[i] * (float)l;
        *suml2 += w * (float)l * (float)l;
    }
}

/* make_qx_quants(16, 32, x, L, 1, NULL) (ggml): symmetric scale for 16 values, the value of
 * largest magnitude mapping to -32, refined over 18 nearby grid spacings. L gets q + 32. */
static float q6k_make_quants(const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < Q6K_SUB; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, Q6K_SUB);
        return 0.f;
    }
    float sumlx, suml2;
    q6k_sums(x, (float)-Q6K_NMAX / max, L, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        const float iscale = -(Q6K_NMAX + 0.1f * is) / max;
        q6k_sums(x, iscale, NULL, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            q6k_sums(x, iscale, L, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void q6k_pack(const int8_t *L, uint8_t *b)
{
    uint8_t *ql = b, *qh = b + 128;
    for (int j = 0; j < MLC_QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const uint8_t a = (uint8_t)L[j + l], c = (uint8_t)L[j + l + 32];
            const uint8_t e = (uint8_t)L[j + l + 64], g = (uint8_t)L[j + l + 96];
            ql[l] = (uint8_t)((a & 0xF) | ((e & 0xF) << 4));
            ql[l + 32] = (uint8_t)((c & 0xF) | ((g & 0xF) << 4));
            qh[l] = (uint8_t)((a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((g >> 4) << 6));
        }
    }
}

/* Quantizes the 16 sub-block scales to int8 against the one of largest magnitude (which
 * maps to -128, clamped to 127 on the positive side); returns false for an all-zero block. */
static bool q6k_pack_scales(const float *scales, uint8_t *b)
{
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < Q6K_NSUB; ib++) {
        if (fabsf(scales[ib]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS)
        return false;
    const float iscale = -128.f / max_scale;
    wr_scale_f16(b + 208, 1 / iscale);
    for (int ib = 0; ib < Q6K_NSUB; ib++) {
        const int s = nearest_int(iscale * scales[ib]);
        b[192 + ib] = (uint8_t)(int8_t)clamp_int(s, -128, 127);
    }
    return true;
}

static void quant_q6_k(const float *x, uint8_t *b)
{
    int8_t L[MLC_QK_K];
    float scales[Q6K_NSUB];
    for (int ib = 0; ib < Q6K_NSUB; ib++)
        scales[ib] = q6k_make_quants(x + Q6K_SUB * ib, L + Q6K_SUB * ib);
    if (!q6k_pack_scales(scales, b)) {
        memset(b, 0, Q6K_BYTES);
        return;
    }
    /* Re-quantize against the stored scales; a zero scale keeps the fit's levels. */
    const float d = rd_f16(b + 208);
    for (int j = 0; j < Q6K_NSUB; j++) {
        const float dj = d * (float)(int8_t)b[192 + j];
        if (dj == 0.0f)
            continue;
        for (int i = 0; i < Q6K_SUB; i++) {
            const int l = nearest_int(x[Q6K_SUB * j + i] / dj);
            L[Q6K_SUB * j + i] = (int8_t)(clamp_int(l, -32, 31) + 32);
        }
    }
    q6k_pack(L, b);
}

/* ---- row entry points ---------------------------------------------------------------------- */

typedef void (*dequant_fn)(const uint8_t *block, float *y);
typedef void (*quant_fn)(const float *x, uint8_t *block);

/* Block codec of a quantized type, or false for the element types and unknown ids. */
static bool block_codec(mlc_type type, dequant_fn *dq, quant_fn *q)
{
    switch (type) {
    case MLC_TYPE_Q4_0: *dq = dequant_q4_0; *q = quant_q4_0; return true;
    case MLC_TYPE_Q8_0: *dq = dequant_q8_0; *q = quant_q8_0; return true;
    case MLC_TYPE_Q4_1: *dq = dequant_q4_1; *q = quant_q4_1; return true;
    case MLC_TYPE_Q5_0: *dq = dequant_q5_0; *q = quant_q5_0; return true;
    case MLC_TYPE_Q5_1: *dq = dequant_q5_1; *q = quant_q5_1; return true;
    case MLC_TYPE_Q4_K: *dq = dequant_q4_k; *q = quant_q4_k; return true;
    case MLC_TYPE_Q6_K: *dq = dequant_q6_k; *q = quant_q6_k; return true;
    default: return false;
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
