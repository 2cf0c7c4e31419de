/* engine/quant_k.c: the scalar reference (de)quantizers of the K-quants: Q2_K, Q3_K, Q4_K,
 * Q5_K and Q6_K (256 values per super-block). Same rules as quant.c (see there): ggml's
 * quantize_row_*_ref step by step, float operations in its order, no contraction, and
 * defined, finite output where ggml would overflow. */
#include <math.h>
#include <string.h>

#include "mlc/quant.h"
#include "quant_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ggml's threshold below which a group counts as all zero. */
#define GROUP_MAX_EPS 1e-15f

/* ---- affine fits: Q2_K, Q4_K, Q5_K -----------------------------------------------------
 * make_qkx2_quants (ggml): an affine fit x ~ scale * L + min of n values with L in 0..nmax,
 * min <= 0, minimising sum w * err(scale * L + min - x), err the square (or the absolute
 * value, mad). Starts from the max/min fit, then tries nstep + 1 slightly different grid
 * spacings (nmax + rmin + rdelta * is) and keeps the best weighted least-squares refit.
 * Each trial grid is anchored at the best min found so far, not at the data minimum: ggml
 * updates min in place, and matching its bytes depends on doing the same. */

enum { FIT_MAX = 32 };

typedef struct qkx_params {
    int n, nmax;
    float rmin, rdelta;
    int nstep;
    bool mad;
} qkx_params;

typedef struct qkx_fit {
    const qkx_params *p;
    const float *x, *w; /* n values and their weights */
    float sum_w, sum_x; /* sum w, sum w*x */
    float min;          /* data min clamped to <= 0, then the best fit's min */
    float max;          /* data max */
} qkx_fit;

static void qkx_levels(const qkx_fit *f, float iscale, uint8_t *L)
{
    for (int i = 0; i < f->p->n; i++) {
        const int l = nearest_int(iscale * (f->x[i] - f->min));
        L[i] = (uint8_t)clamp_int(l, 0, f->p->nmax);
    }
}

static float qkx_error(const qkx_fit *f, const uint8_t *L, float scale, float min)
{
    float err = 0;
    for (int i = 0; i < f->p->n; i++) {
        float diff = scale * L[i] + min - f->x[i];
        diff = f->p->mad ? fabsf(diff) : diff * diff;
        err += f->w[i] * diff;
    }
    return err;
}

/* One refinement step: quantize on the grid iscale, then refit scale and min to those
 * levels by weighted least squares. Returns false when the normal equations are singular. */
static bool qkx_refit(const qkx_fit *f, float iscale, uint8_t *Laux, float *scale, float *min)
{
    qkx_levels(f, iscale, Laux);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < f->p->n; i++) {
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

/* Returns the scale; *neg_min = -min (>= 0); L gets the n levels. */
static float qkx_make_quants(const qkx_params *p, const float *x, const float *w, uint8_t *L,
                             float *neg_min)
{
    qkx_fit f = {p, x, w, w[0], w[0] * x[0], x[0], x[0]};
    for (int i = 1; i < p->n; i++) {
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
        memset(L, 0, (size_t)p->n);
        *neg_min = -f.min;
        return 0.f;
    }
    float iscale = p->nmax / (f.max - f.min);
    float scale = 1 / iscale;
    qkx_levels(&f, iscale, L);
    float best = qkx_error(&f, L, scale, f.min);
    for (int is = 0; is <= p->nstep; is++) {
        uint8_t Laux[FIT_MAX];
        float s, m;
        iscale = (p->rmin + p->rdelta * is + p->nmax) / (f.max - f.min);
        if (!qkx_refit(&f, iscale, Laux, &s, &m))
            continue;
        const float err = qkx_error(&f, Laux, s, m);
        if (err < best) {
            memcpy(L, Laux, (size_t)p->n);
            best = err;
            scale = s;
            f.min = m;
        }
    }
    *neg_min = -f.min;
    return scale;
}

/* ---- Q4_K (144 B) and Q5_K (176 B) -----------------------------------------------------
 * Q4_K bytes: f16 d @0, f16 dmin @2, scales[12] @4, qs[128] @16.
 * Q5_K bytes: f16 d @0, f16 dmin @2, scales[12] @4, qh[32] @16, qs[128] @48.
 * Eight sub-blocks of 32 values, value = d * sc[j] * q - dmin * m[j] with q in 0..15 (Q4_K)
 * or 0..31 (Q5_K) and 6-bit sc, m. scales[12] holds:
 *   sub-block j < 4:  sc = scales[j] & 63,  m = scales[j+4] & 63
 *   sub-block j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4
 *                     m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
 * qs: 64-value group g (sub-blocks 2g, 2g+1) uses qs[32g..32g+31], low then high nibbles.
 * Q5_K's fifth bits: value 64g + l (l < 32) has bit 2g of qh[l], value 64g + 32 + l bit
 * 2g + 1. */

enum { KS_SUB = 32, KS_NSUB = MLC_QK_K / KS_SUB };

static void k4_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Q4_K (qh NULL) or Q5_K levels: the 256 values of the block as 0..15 / 0..31. */
static void k4_unpack(const uint8_t *qs, const uint8_t *qh, uint8_t *L)
{
    for (int g = 0; g < 4; g++, qs += 32) {
        for (int l = 0; l < 32; l++) {
            L[64 * g + l] = qs[l] & 0xF;
            L[64 * g + 32 + l] = qs[l] >> 4;
            if (qh) {
                L[64 * g + l] |= (uint8_t)(((qh[l] >> (2 * g)) & 1) << 4);
                L[64 * g + 32 + l] |= (uint8_t)(((qh[l] >> (2 * g + 1)) & 1) << 4);
            }
        }
    }
}

static void k4_pack(const uint8_t *L, uint8_t *qs, uint8_t *qh)
{
    if (qh)
        memset(qh, 0, 32);
    for (int g = 0; g < 4; g++, qs += 32) {
        for (int l = 0; l < 32; l++) {
            const uint8_t a = L[64 * g + l], c = L[64 * g + 32 + l];
            qs[l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
            if (qh)
                qh[l] |= (uint8_t)(((a >> 4) << (2 * g)) | ((c >> 4) << (2 * g + 1)));
        }
    }
}

static void dequant_k4(const uint8_t *b, const uint8_t *qs, const uint8_t *qh, float *y)
{
    const float d = rd_f16(b), min = rd_f16(b + 2);
    uint8_t L[MLC_QK_K];
    k4_unpack(qs, qh, L);
    for (int j = 0; j < KS_NSUB; j++) {
        uint8_t sc, m;
        k4_scale_min(j, b + 4, &sc, &m);
        const float dj = d * sc, mj = min * m;
        for (int l = 0; l < KS_SUB; l++)
            y[KS_SUB * j + l] = dj * (float)L[KS_SUB * j + l] - mj;
    }
}

static void dequant_q4_k(const uint8_t *b, float *y)
{
    dequant_k4(b, b + 16, NULL, y);
}

static void dequant_q5_k(const uint8_t *b, float *y)
{
    dequant_k4(b, b + 48, b + 16, y);
}

/* Per-sub-block fits for one super-block: weights are rms(x) + |x_i|. */
static void k4_fit_all(const qkx_params *p, const float *x, uint8_t *L, float *scales, float *mins)
{
    for (int j = 0; j < KS_NSUB; j++) {
        const float *xs = x + KS_SUB * j;
        float sum_x2 = 0;
        for (int l = 0; l < KS_SUB; l++)
            sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / KS_SUB);
        float w[KS_SUB];
        for (int l = 0; l < KS_SUB; l++)
            w[l] = av_x + fabsf(xs[l]);
        scales[j] = qkx_make_quants(p, xs, w, L + KS_SUB * j, &mins[j]);
    }
}

/* Quantizes the 8 scales and mins to 6 bits against their maxima and packs scales[12]
 * (layout above); writes d = max_scale / 63 and dmin = max_min / 63. */
static void k4_pack_scales(const float *scales, const float *mins, uint8_t *b)
{
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < KS_NSUB; j++) {
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *s = b + 4;
    for (int j = 0; j < KS_NSUB; j++) {
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
static void k4_requantize(const float *x, const uint8_t *b, int nmax, uint8_t *L)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    for (int j = 0; j < KS_NSUB; j++) {
        uint8_t sc, m;
        k4_scale_min(j, b + 4, &sc, &m);
        const float dj = d * sc;
        if (dj == 0.0f)
            continue;
        const float dm = dmin * m;
        for (int i = 0; i < KS_SUB; i++) {
            const int l = nearest_int((x[KS_SUB * j + i] + dm) / dj);
            L[KS_SUB * j + i] = (uint8_t)clamp_int(l, 0, nmax);
        }
    }
}

/* ggml's make_qkx2_quants arguments for Q4_K and Q5_K. */
static const qkx_params Q4K_FIT = {32, 15, -1.f, 0.1f, 20, false};
static const qkx_params Q5K_FIT = {32, 31, -0.5f, 0.1f, 15, false};

static void quant_k4(const qkx_params *p, const float *x, uint8_t *b, uint8_t *qs, uint8_t *qh)
{
    uint8_t L[MLC_QK_K];
    float scales[KS_NSUB], mins[KS_NSUB];
    k4_fit_all(p, x, L, scales, mins);
    k4_pack_scales(scales, mins, b);
    k4_requantize(x, b, p->nmax, L);
    k4_pack(L, qs, qh);
}

static void quant_q4_k(const float *x, uint8_t *b)
{
    quant_k4(&Q4K_FIT, x, b, b + 16, NULL);
}

static void quant_q5_k(const float *x, uint8_t *b)
{
    quant_k4(&Q5K_FIT, x, b, b + 48, b + 16);
}

/* ---- Q6_K: 256 values, 210 bytes -------------------------------------------------------
 * Bytes: ql[128] @0, qh[64] @128, i8 scales[16] @192, f16 d @208. Sixteen sub-blocks of 16
 * values, value = d * scales[k] * (q - 32) with 6-bit q. Each 128-value half h uses
 * ql[64h..64h+63] and qh[32h..32h+31]; for l in 0..31, its values l, l+32, l+64, l+96 take
 * low bits from ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibble and high bits
 * from qh[l] bits 0-1, 2-3, 4-5, 6-7. */

enum { Q6K_SUB = 16, Q6K_NSUB = MLC_QK_K / Q6K_SUB, Q6K_NMAX = 32, Q6K_BYTES = 210 };


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

/* ---- Q2_K (84 B) and Q3_K (110 B) -------------------------------------------------------
 * Sixteen sub-blocks of 16 values; 2-bit levels in qs[64]: value 128h + 32j + l (h < 2,
 * j < 4, l < 32) is bits 2j..2j+1 of qs[32h + l].
 * Q2_K bytes: u8 scales[16] @0, qs[64] @16, f16 d @80, f16 dmin @82. Sub-block k: value
 * = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4), q in 0..3.
 * Q3_K bytes: hmask[32] @0, qs[64] @32, scales[12] @96, f16 d @108. Value k's third bit is
 * bit k / 32 of hmask[k % 32]; value = d * (sc - 32) * (q - 4), q in 0..7 (the bit clear
 * means q - 4 < 0). Sub-block k's 6-bit sc: low 4 bits from scales[k] & 15 (k < 8) or
 * scales[k - 8] >> 4 (k >= 8), high 2 bits from bits 2(k / 4).. of scales[8 + k % 4]. */

enum { KL_SUB = 16, KL_NSUB = MLC_QK_K / KL_SUB };

static void k2_unpack(const uint8_t *qs, uint8_t *L)
{
    for (int k = 0; k < MLC_QK_K; k++)
        L[k] = (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

static void k2_pack(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < MLC_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

static void dequant_q2_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b + 80), min = rd_f16(b + 82);
    uint8_t L[MLC_QK_K];
    k2_unpack(b + 16, L);
    for (int k = 0; k < KL_NSUB; k++) {
        const float dl = d * (float)(b[k] & 0xF), ml = min * (float)(b[k] >> 4);
        for (int l = 0; l < KL_SUB; l++)
            y[KL_SUB * k + l] = dl * (float)L[KL_SUB * k + l] - ml;
    }
}

/* ggml's make_qkx2_quants arguments for Q2_K: weights |x|, absolute error. */
static const qkx_params Q2K_FIT = {16, 3, -0.5f, 0.1f, 15, true};

/* Quantizes the sub-block scales (or mins: shift 4) to 4 bits against their maximum and
 * ors them into scales[16]; returns the f16 super-scale max / 15 (0 when max is 0). */
static float k2_pack_scales(const float *v, uint8_t *scales, int shift)
{
    float max = 0;
    for (int j = 0; j < KL_NSUB; j++)
        if (v[j] > max)
            max = v[j];
    if (!(max > 0))
        return 0.f;
    const float iscale = 15.f / max;
    for (int j = 0; j < KL_NSUB; j++) /* int to uint8_t as ggml (no clamp) */
        scales[j] |= (uint8_t)(nearest_int(iscale * v[j]) << shift);
    return max / 15.f;
}

static void quant_q2_k(const float *x, uint8_t *b)
{
    uint8_t L[MLC_QK_K];
    float scales[KL_NSUB], mins[KL_NSUB];
    for (int j = 0; j < KL_NSUB; j++) {
        float w[KL_SUB];
        for (int l = 0; l < KL_SUB; l++)
            w[l] = fabsf(x[KL_SUB * j + l]);
        scales[j] = qkx_make_quants(&Q2K_FIT, x + KL_SUB * j, w, L + KL_SUB * j, &mins[j]);
    }
    memset(b, 0, 16);
    wr_scale_f16(b + 80, k2_pack_scales(scales, b, 0));
    wr_scale_f16(b + 82, k2_pack_scales(mins, b, 4));
    const float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
    for (int j = 0; j < KL_NSUB; j++) {
        const float dj = d * (float)(b[j] & 0xF);
        if (dj == 0.0f)
            continue;
        const float dm = dmin * (float)(b[j] >> 4);
        for (int i = 0; i < KL_SUB; i++) {
            const int l = nearest_int((x[KL_SUB * j + i] + dm) / dj);
            L[KL_SUB * j + i] = (uint8_t)clamp_int(l, 0, 3);
        }
    }
    k2_pack(L, b + 16);
}

/* Q3_K's 6-bit scale of sub-block k, as stored (0..63; the value is sc - 32). */
static int k3_scale(const uint8_t *s, int k)
{
    const int lo = k < 8 ? s[k] & 0xF : s[k - 8] >> 4;
    return lo | (((s[8 + k % 4] >> (2 * (k / 4))) & 3) << 4);
}

static void dequant_q3_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b + 108);
    uint8_t L[MLC_QK_K];
    k2_unpack(b + 32, L);
    for (int k = 0; k < KL_NSUB; k++) {
        const float dl = d * (float)(k3_scale(b + 96, k) - 32);
        for (int l = 0; l < KL_SUB; l++) {
            const int i = KL_SUB * k + l;
            const int h = (b[i % 32] >> (i / 32)) & 1;
            y[i] = dl * (float)(L[i] - (h ? 0 : 4));
        }
    }
}

/* make_q3_quants(16, 4, x, L, true) (ggml): symmetric levels -4..3 with weights x^2; the
 * value of largest magnitude maps to -4, then up to 5 passes move single levels while that
 * improves sumlx^2 / suml2 (the weighted fit's quality). L gets level + 4; returns the
 * scale sumlx / suml2. */
static float k3_make_quants(const float *x, int8_t *L)
{
    enum { NMAX = 4 };
    float max = 0, amax = 0;
    for (int i = 0; i < KL_SUB; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, KL_SUB);
        return 0.f;
    }
    const float iscale = -NMAX / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < KL_SUB; i++) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -NMAX, NMAX - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < KL_SUB; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0))
                continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int nl = clamp_int(nearest_int(x[i] * sl2 / slx), -NMAX, NMAX - 1);
            if (nl == L[i])
                continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < KL_SUB; i++)
        L[i] = (int8_t)(L[i] + NMAX);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Quantizes the 16 scales to 6 bits against the one of largest magnitude (which maps to
 * -32) and packs scales[12] @96 and d @108. */
static void k3_pack_scales(const float *scales, uint8_t *b)
{
    float max_scale = 0, amax = 0;
    for (int j = 0; j < KL_NSUB; j++) {
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    uint8_t *s = b + 96;
    memset(s, 0, 12);
    if (max_scale == 0.0f) {
        wr_scale_f16(b + 108, 0.f);
        return;
    }
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < KL_NSUB; j++) {
        const int l = clamp_int((int8_t)nearest_int(iscale * scales[j]), -32, 31) + 32;
        if (j < 8)
            s[j] = (uint8_t)(l & 0xF);
        else
            s[j - 8] |= (uint8_t)((l & 0xF) << 4);
        s[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    wr_scale_f16(b + 108, 1 / iscale);
}

static void quant_q3_k(const float *x, uint8_t *b)
{
    int8_t L[MLC_QK_K];
    float scales[KL_NSUB];
    for (int j = 0; j < KL_NSUB; j++)
        scales[j] = k3_make_quants(x + KL_SUB * j, L + KL_SUB * j);
    k3_pack_scales(scales, b);
    /* Re-quantize against the stored scales; a zero scale keeps the fit's levels. */
    const float d = rd_f16(b + 108);
    for (int j = 0; j < KL_NSUB; j++) {
        const float dj = d * (float)(k3_scale(b + 96, j) - 32);
        if (dj == 0.0f)
            continue;
        for (int i = 0; i < KL_SUB; i++) {
            const int l = nearest_int(x[KL_SUB * j + i] / dj);
            L[KL_SUB * j + i] = (int8_t)(clamp_int(l, -4, 3) + 4);
        }
    }
    uint8_t low[MLC_QK_K];
    memset(b, 0, 32);
    for (int k = 0; k < MLC_QK_K; k++) {
        int l = L[k];
        if (l > 3) {
            b[k % 32] |= (uint8_t)(1u << (k / 32));
            l -= 4;
        }
        low[k] = (uint8_t)l;
    }
    k2_pack(low, b + 32);
}

/* ---- codecs -------------------------------------------------------------------------------- */

bool mlc_quant_k_codec(mlc_type type, mlc_dequant_fn *dq, mlc_quant_fn *q)
{
    switch (type) {
    case MLC_TYPE_Q2_K: *dq = dequant_q2_k; *q = quant_q2_k; return true;
    case MLC_TYPE_Q3_K: *dq = dequant_q3_k; *q = quant_q3_k; return true;
    case MLC_TYPE_Q4_K: *dq = dequant_q4_k; *q = quant_q4_k; return true;
    case MLC_TYPE_Q5_K: *dq = dequant_q5_k; *q = quant_q5_k; return true;
    case MLC_TYPE_Q6_K: *dq = dequant_q6_k; *q = quant_q6_k; return true;
    default: return false;
    }
}
