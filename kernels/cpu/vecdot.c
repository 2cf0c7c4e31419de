/* vecdot.c: scalar reference dot kernels, activation quantizers and ISA selection.
 *
 * The scalar kernels follow ggml's reference arithmetic (integer sums per block, then one
 * float multiply-add per block), so every SIMD set can be tested against them. */
#include "vecdot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* The SIMD sets repeat these float operations exactly: nothing may fuse a*b+c into an FMA
 * here either (GCC's -std=c11 implies -ffp-contract=off; clang contracts by default, which
 * matters as soon as this file is built with -mfma or -march=native). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---------------------------------------------------------------- helpers */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static float rd_f16(const uint8_t *p)
{
    return mlc_fp16_to_fp32(rd16(p));
}

/* ggml's nearest_int: round to nearest even through the float mantissa (|v| < 2^22). */
static int nearest_int(float v)
{
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K block's scales[12]. */
static void q4k_scale_min(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---------------------------------------------------------------- activations */

/* As llama.cpp's x86 SIMD quantize_row_q8_0 (not its scalar reference): the inverse scale
 * is 127/amax rather than 1/d, and rounding is to nearest even. Matching it keeps our Q8_0
 * and Q4_0 logits within rounding of llama.cpp's on the machines it is compared on. */
void mlc_cpu_act_q8_0(const float *x, void *a, int64_t n)
{
    uint8_t *b = a;
    for (int64_t i = 0; i < n; i += MLC_QK8_0, b += 34) {
        float amax = 0;
        for (int j = 0; j < MLC_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[i + j]));
        float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.0f;
        uint16_t h = mlc_fp32_to_fp16(d);
        b[0] = (uint8_t)h;
        b[1] = (uint8_t)(h >> 8);
        for (int j = 0; j < MLC_QK8_0; j++)
            b[2 + j] = (uint8_t)(int8_t)nearest_int(x[i + j] * id);
    }
}

/* Q8_1 (36 B: f16 d, f16 s, i8 qs[32]): Q8_0's values plus s = d * sum qs (d the float
 * scale before rounding to f16), as llama.cpp's x86 quantize_row_q8_1. The weight types with
 * a min (Q4_1, Q5_1) take their min term from s. */
void mlc_cpu_act_q8_1(const float *x, void *a, int64_t n)
{
    uint8_t *b = a;
    for (int64_t i = 0; i < n; i += 32, b += 36, x += 32) {
        uint8_t q8[34];
        mlc_cpu_act_q8_0(x, q8, 32);
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        int sum = 0;
        for (int j = 0; j < 32; j++)
            sum += (int8_t)q8[2 + j];
        const uint16_t s = mlc_fp32_to_fp16((amax / 127.f) * (float)sum);
        memcpy(b, q8, 2);
        b[2] = (uint8_t)s;
        b[3] = (uint8_t)(s >> 8);
        memcpy(b + 4, q8 + 2, 32);
    }
}

void mlc_cpu_act_q8_K(const float *x, void *a, int64_t n)
{
    uint8_t *b = a;
    for (int64_t i = 0; i < n; i += MLC_QK_K, b += MLC_Q8_K_BYTES, x += MLC_QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < MLC_QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        int8_t *qs = (int8_t *)(b + 4);
        int16_t bsums[16];
        float d = 0;
        if (amax == 0) {
            memset(qs, 0, MLC_QK_K);
        } else {
            /* -127/max as ggml (not -128), so that every value fits in [-127, 127]. */
            float iscale = -127.f / max;
            for (int j = 0; j < MLC_QK_K; j++) {
                int v = nearest_int(iscale * x[j]);
                qs[j] = (int8_t)(v > 127 ? 127 : v);
            }
            d = 1 / iscale;
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += qs[g * 16 + j];
            bsums[g] = (int16_t)s;
        }
        memcpy(b, &d, 4);
        memcpy(b + 4 + MLC_QK_K, bsums, sizeof bsums);
    }
}

static void act_f32(const float *x, void *a, int64_t n)
{
    memcpy(a, x, (size_t)n * sizeof(float));
}

static void act_f16(const float *x, void *a, int64_t n)
{
    uint16_t *h = a;
    for (int64_t i = 0; i < n; i++)
        h[i] = mlc_fp32_to_fp16(x[i]);
}

static void act_bf16(const float *x, void *a, int64_t n)
{
    uint16_t *h = a;
    for (int64_t i = 0; i < n; i++)
        h[i] = mlc_fp32_to_bf16(x[i]);
}

/* ---------------------------------------------------------------- scalar dots */

static float dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * y[i];
    return (float)s;
}

static float dot_f16(int64_t n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(mlc_fp16_to_fp32(x[i]) * mlc_fp16_to_fp32(y[i]));
    return (float)s;
}

static float dot_bf16(int64_t n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(mlc_bf16_to_fp32(x[i]) * mlc_bf16_to_fp32(y[i]));
    return (float)s;
}

/* Q8_0 weights: 34-byte blocks, values q * d. */
static float dot_q8_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, x += 34, y += 34) {
        int sumi = 0;
        for (int j = 0; j < 32; j++)
            sumi += (int8_t)x[2 + j] * (int8_t)y[2 + j];
        s += (float)sumi * (rd_f16(x) * rd_f16(y));
    }
    return s;
}

/* Q4_0 weights: 18-byte blocks; low nibbles are values 0..15, high nibbles 16..31, q - 8. */
static float dot_q4_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, x += 18, y += 34) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((x[2 + j] & 0xF) - 8) * (int8_t)y[2 + j];
            sumi += ((x[2 + j] >> 4) - 8) * (int8_t)y[2 + 16 + j];
        }
        s += (float)sumi * (rd_f16(x) * rd_f16(y));
    }
    return s;
}

/* The 32 levels of a 4-bit (qh NULL) or 5-bit block: byte j of qs holds value j (low
 * nibble) and j + 16 (high); bit i of the little-endian u32 at qh is value i's fifth bit. */
static void levels32(const uint8_t *qs, const uint8_t *qh, int *q)
{
    uint32_t h = 0;
    if (qh)
        h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xF) | (int)(((h >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
    }
}

/* Q5_0 weights: 22-byte blocks (f16 d, qh[4], qs[16]), q - 16, against Q8_0. */
static float dot_q5_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, x += 22, y += 34) {
        int q[32], sumi = 0;
        levels32(x + 6, x + 2, q);
        for (int j = 0; j < 32; j++)
            sumi += (q[j] - 16) * (int8_t)y[2 + j];
        s += (float)sumi * (rd_f16(x) * rd_f16(y));
    }
    return s;
}

/* Q4_1 / Q5_1 weights (x = d * q + m) against Q8_1: per block
 * (float)sumi * (d * dy) + m * s, s the activation's d * sum qs, as ggml. */
static float dot_affine(int64_t n, const uint8_t *x, const uint8_t *y, int five)
{
    const size_t wb = five ? 24 : 20;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, x += wb, y += 36) {
        int q[32], sumi = 0;
        levels32(x + (five ? 8 : 4), five ? x + 4 : NULL, q);
        for (int j = 0; j < 32; j++)
            sumi += q[j] * (int8_t)y[4 + j];
        const float t1 = (float)sumi * (rd_f16(x) * rd_f16(y));
        const float t2 = rd_f16(x + 2) * rd_f16(y + 2);
        s += t1 + t2;
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *a)
{
    return dot_affine(n, w, a, 0);
}

static float dot_q5_1(int64_t n, const void *w, const void *a)
{
    return dot_affine(n, w, a, 1);
}

/* The IQ4_NL / IQ4_XS value table (ggml's kvalues_iq4nl). */
static const int8_t IQ4_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

/* Integer dot of 32 IQ4 nibbles (16 bytes at qs, as Q4_0's) with 32 int8 values. */
static int iq4_dot32(const uint8_t *qs, const int8_t *q8)
{
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
        sumi += IQ4_VALUES[qs[j] & 0xF] * q8[j];
        sumi += IQ4_VALUES[qs[j] >> 4] * q8[j + 16];
    }
    return sumi;
}

/* IQ4_NL weights: 18-byte blocks (f16 d, qs[16]) against Q8_0. */
static float dot_iq4_nl(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, x += 18, y += 34) {
        const int sumi = iq4_dot32(x + 2, (const int8_t *)(y + 2));
        s += (float)sumi * (rd_f16(x) * rd_f16(y));
    }
    return s;
}

/* IQ4_XS weights (136-byte blocks: f16 d, u16 scales_h, scales_l[4], qs[128]) against Q8_K:
 * sub-block ib's 6-bit scale ls, value d * (ls - 32) * table[nibble]. */
static float dot_iq4_xs(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 136, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int sh = x[2] | (x[3] << 8);
        int sumi = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
            sumi += (ls - 32) * iq4_dot32(x + 8 + 16 * ib, (const int8_t *)(y + 4 + 32 * ib));
        }
        s += rd_f16(x) * yd * (float)sumi;
    }
    return s;
}

/* Q4_K weights (144-byte blocks) against Q8_K activations. Each 64-value group g stores
 * values g*64+l in the low nibble and g*64+32+l in the high nibble of qs[g*32+l]. */
static float dot_q4_K(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 144, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int8_t *q8 = (const int8_t *)(y + 4);
        int16_t bsums[16];
        memcpy(bsums, y + 4 + MLC_QK_K, sizeof bsums);
        const uint8_t *qs = x + 16;
        int sumi = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m, isum = 0;
            q4k_scale_min(j, x + 4, &sc, &m);
            const uint8_t *q = qs + (j / 2) * 32;
            for (int l = 0; l < 32; l++)
                isum += ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) * q8[j * 32 + l];
            sumi += sc * isum;
            summs += m * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        float d = yd * rd_f16(x), dmin = yd * rd_f16(x + 2);
        s += d * (float)sumi - dmin * (float)summs;
    }
    return s;
}

/* Q5_K weights (176-byte blocks: f16 d, dmin; scales[12] as Q4_K; qh[32]; qs[128]) against
 * Q8_K: Q4_K's nibbles plus a fifth bit, bit 2g of qh[l] for value 64g + l and bit 2g + 1
 * for value 64g + 32 + l. */
static float dot_q5_K(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 176, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int8_t *q8 = (const int8_t *)(y + 4);
        int16_t bsums[16];
        memcpy(bsums, y + 4 + MLC_QK_K, sizeof bsums);
        const uint8_t *qh = x + 16, *qs = x + 48;
        int sumi = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m, isum = 0;
            q4k_scale_min(j, x + 4, &sc, &m);
            const uint8_t *q = qs + (j / 2) * 32;
            for (int l = 0; l < 32; l++) {
                const int lo = (j & 1) ? (q[l] >> 4) : (q[l] & 0xF);
                isum += (lo | (((qh[l] >> j) & 1) << 4)) * q8[j * 32 + l];
            }
            sumi += sc * isum;
            summs += m * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        float d = yd * rd_f16(x), dmin = yd * rd_f16(x + 2);
        s += d * (float)sumi - dmin * (float)summs;
    }
    return s;
}

/* The 2-bit level (0..3) of value k of a Q2_K / Q3_K block's qs[64]. */
static int k2_level(const uint8_t *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* Q2_K weights (84-byte blocks: scales[16], qs[64], f16 d, dmin) against Q8_K: sub-block g
 * (16 values) is d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), the min term taken
 * from the activation's bsums. */
static float dot_q2_K(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 84, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int8_t *q8 = (const int8_t *)(y + 4);
        int16_t bsums[16];
        memcpy(bsums, y + 4 + MLC_QK_K, sizeof bsums);
        int sumi = 0, summs = 0;
        for (int g = 0; g < 16; g++) {
            int isum = 0;
            for (int l = 0; l < 16; l++)
                isum += k2_level(x + 16, 16 * g + l) * q8[16 * g + l];
            sumi += (x[g] & 0xF) * isum;
            summs += (x[g] >> 4) * bsums[g];
        }
        float d = yd * rd_f16(x + 80), dmin = yd * rd_f16(x + 82);
        s += d * (float)sumi - dmin * (float)summs;
    }
    return s;
}

/* Q3_K's 6-bit scale of sub-block g (0..63; the value is sc - 32). */
static int q3k_scale(const uint8_t *sc, int g)
{
    const int lo = g < 8 ? sc[g] & 0xF : sc[g - 8] >> 4;
    return lo | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4);
}

/* Q3_K weights (110-byte blocks: hmask[32], qs[64], scales[12], f16 d) against Q8_K: value
 * k is d * (sc - 32) * (q - 4), q's third bit being bit k / 32 of hmask[k % 32]. */
static float dot_q3_K(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 110, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int8_t *q8 = (const int8_t *)(y + 4);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int isum = 0;
            for (int l = 0; l < 16; l++) {
                const int k = 16 * g + l;
                const int q = k2_level(x + 32, k) | (((x[k % 32] >> (k / 32)) & 1) << 2);
                isum += (q - 4) * q8[k];
            }
            sumi += (q3k_scale(x + 96, g) - 32) * isum;
        }
        s += rd_f16(x + 108) * yd * (float)sumi;
    }
    return s;
}

/* The 6-bit value k (0..255) of a Q6_K block, minus 32. */
static int q6k_value(const uint8_t *ql, const uint8_t *qh, int k)
{
    int half = k / 128, r = k % 128, l = r % 32, quarter = r / 32;
    const uint8_t *L = ql + half * 64, *H = qh + half * 32;
    int lo = (quarter & 1) ? L[l + 32] : L[l];
    lo = quarter < 2 ? (lo & 0xF) : (lo >> 4);
    int hi = (H[l] >> (2 * quarter)) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Q6_K weights (210-byte blocks: ql[128], qh[64], i8 scales[16], f16 d) against Q8_K.
 * Scale s covers values 16s..16s+15. */
static float dot_q6_K(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n; i += MLC_QK_K, x += 210, y += MLC_Q8_K_BYTES) {
        float yd;
        memcpy(&yd, y, 4);
        const int8_t *q8 = (const int8_t *)(y + 4);
        const int8_t *sc = (const int8_t *)(x + 192);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int isum = 0;
            for (int l = 0; l < 16; l++)
                isum += q6k_value(x, x + 128, g * 16 + l) * q8[g * 16 + l];
            sumi += sc[g] * isum;
        }
        s += rd_f16(x + 208) * yd * (float)sumi;
    }
    return s;
}

/* ---------------------------------------------------------------- selection */

void mlc_cpu_kernels_scalar(mlc_cpu_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->isa = "scalar";
    mlc_cpu_kernels_attn(k, 0);
    mlc_cpu_kernels_gelu(k, 0);
    k->dot[MLC_TYPE_F32] = dot_f32;
    k->act[MLC_TYPE_F32] = act_f32;
    k->act_type[MLC_TYPE_F32] = MLC_TYPE_F32;
    k->dot[MLC_TYPE_F16] = dot_f16;
    k->act[MLC_TYPE_F16] = act_f16;
    k->act_type[MLC_TYPE_F16] = MLC_TYPE_F16;
    k->dot[MLC_TYPE_BF16] = dot_bf16;
    k->act[MLC_TYPE_BF16] = act_bf16;
    k->act_type[MLC_TYPE_BF16] = MLC_TYPE_BF16;
    k->dot[MLC_TYPE_Q8_0] = dot_q8_0;
    k->act[MLC_TYPE_Q8_0] = mlc_cpu_act_q8_0;
    k->act_type[MLC_TYPE_Q8_0] = MLC_TYPE_Q8_0;
    k->dot[MLC_TYPE_Q4_0] = dot_q4_0;
    k->act[MLC_TYPE_Q4_0] = mlc_cpu_act_q8_0;
    k->act_type[MLC_TYPE_Q4_0] = MLC_TYPE_Q8_0;
    k->dot[MLC_TYPE_Q5_0] = dot_q5_0;
    k->act[MLC_TYPE_Q5_0] = mlc_cpu_act_q8_0;
    k->act_type[MLC_TYPE_Q5_0] = MLC_TYPE_Q8_0;
    k->dot[MLC_TYPE_Q4_1] = dot_q4_1;
    k->act[MLC_TYPE_Q4_1] = mlc_cpu_act_q8_1;
    k->act_type[MLC_TYPE_Q4_1] = MLC_TYPE_Q8_1;
    k->dot[MLC_TYPE_Q5_1] = dot_q5_1;
    k->act[MLC_TYPE_Q5_1] = mlc_cpu_act_q8_1;
    k->act_type[MLC_TYPE_Q5_1] = MLC_TYPE_Q8_1;
    k->dot[MLC_TYPE_Q4_K] = dot_q4_K;
    k->act[MLC_TYPE_Q4_K] = mlc_cpu_act_q8_K;
    k->act_type[MLC_TYPE_Q4_K] = MLC_TYPE_Q8_K;
    k->dot[MLC_TYPE_Q6_K] = dot_q6_K;
    k->dot[MLC_TYPE_Q2_K] = dot_q2_K;
    k->dot[MLC_TYPE_Q3_K] = dot_q3_K;
    k->dot[MLC_TYPE_Q5_K] = dot_q5_K;
    k->dot[MLC_TYPE_IQ4_NL] = dot_iq4_nl;
    k->act[MLC_TYPE_IQ4_NL] = mlc_cpu_act_q8_0;
    k->act_type[MLC_TYPE_IQ4_NL] = MLC_TYPE_Q8_0;
    k->dot[MLC_TYPE_IQ4_XS] = dot_iq4_xs;
    k->act[MLC_TYPE_IQ4_XS] = mlc_cpu_act_q8_K;
    k->act_type[MLC_TYPE_IQ4_XS] = MLC_TYPE_Q8_K;
    for (int t = MLC_TYPE_Q2_K; t <= MLC_TYPE_Q6_K; t++) {
        k->act[t] = mlc_cpu_act_q8_K;
        k->act_type[t] = MLC_TYPE_Q8_K;
    }
    k->act[MLC_TYPE_Q6_K] = mlc_cpu_act_q8_K;
    k->act_type[MLC_TYPE_Q6_K] = MLC_TYPE_Q8_K;
}

#if defined(__x86_64__) || defined(__i386__)
/* CPUID.1:ECX.F16C. __builtin_cpu_supports("f16c") is GCC-only (clang rejects the name). */
static bool cpu_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static bool cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_f16c();
    if (!strcmp(isa, "avx2"))
        return avx2;
    if (!strcmp(isa, "avx512"))
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
#endif
    return !strcmp(isa, "scalar");
}

const char *mlc_cpu_isas_available(void)
{
    if (cpu_has("avx512"))
        return "scalar avx2 avx512";
    return cpu_has("avx2") ? "scalar avx2" : "scalar";
}

mlc_status mlc_cpu_kernels_init(mlc_cpu_kernels *k, const char *isa, mlc_err *err)
{
    mlc_cpu_kernels_scalar(k);
    if (!isa || !*isa || !strcmp(isa, "auto"))
        isa = cpu_has("avx512") ? "avx512" : cpu_has("avx2") ? "avx2" : "scalar";
    if (strcmp(isa, "scalar") && strcmp(isa, "avx2") && strcmp(isa, "avx512"))
        return mlc_err_set(err, MLC_ERR_ARG, "CPU ISA '%s' (--isa or MLC_CPU_ISA): unknown; choose scalar, avx2 or avx512", isa);
    if (!cpu_has(isa))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "CPU ISA '%s' (--isa or MLC_CPU_ISA): this CPU cannot run it (available: %s)", isa,
                           mlc_cpu_isas_available());
    if (!strcmp(isa, "avx2") || !strcmp(isa, "avx512"))
        mlc_cpu_kernels_avx2(k);
    if (!strcmp(isa, "avx512"))
        mlc_cpu_kernels_avx512(k);
    return MLC_OK;
}

size_t mlc_cpu_act_row_bytes(const mlc_cpu_kernels *k, uint32_t wtype, int64_t n)
{
    uint32_t at = k->act_type[wtype];
    if (at == MLC_TYPE_Q8_K)
        return (size_t)(n / MLC_QK_K) * MLC_Q8_K_BYTES;
    return mlc_type_row_bytes(at, n);
}
