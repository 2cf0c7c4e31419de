/* vecdot_attn.c: the attention kernels of every set (scalar, avx2, avx512): a query row
 * against a key row of the cache, a value row added with a weight, and exp over a block of
 * scores. Every set gives bit-identical results, so attention does not depend on the ISA:
 * - kq: 16 lane sums, lane j summing q[d] * k[d] for d = j, j + 16, ... in order (products
 *   rounded, then added: no fused multiply-add), the lanes past the end of a short last
 *   chunk adding +0; then lanes j + 8, j + 4, j + 2, j + 1 folded onto lane j in that order.
 *   512-bit registers hold the 16 lanes, 256-bit ones two halves, the scalar set an array.
 * - axpy: out[d] + w * v[d] per element, the same in any width.
 * - exp: e^(x - sub) by one fixed sequence of float operations (round to nearest by the
 *   1.5 * 2^23 trick, a two-constant reduction by ln 2, a degree-6 polynomial, 2^n from the
 *   exponent bits); within 2 ulp of the correctly rounded value over [-87, 0], 0 below -87.3
 *   (where e^x < 2^-126), NaN for NaN. Vector sets do whole vectors and leave the rest to
 *   the scalar code, which gives the same bits.
 * F16 values widen exactly (F16C or the table-free reference conversion), so the key and
 * value types change nothing in the arithmetic. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

/* exp constants: ln 2 split so that n * LN2_HI is exact for |n| < 2^9 */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO (-2.12194440e-4f)
#define EXP_ROUND 12582912.0f /* 1.5 * 2^23: t + this - this rounds t to an integer */
#define EXP_MIN (-87.33654f)  /* below: e^x < 2^-126, returned as 0 */
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

/* ---------------------------------------------------------------- scalar */

static float key_at(bool f16, const void *k, int64_t i)
{
    return f16 ? mlc_fp16_to_fp32(((const uint16_t *)k)[i]) : ((const float *)k)[i];
}

static float kq_scalar(bool f16, int64_t n, const float *q, const void *k)
{
    float acc[16] = {0};
    for (int64_t c = 0; c < n; c += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += c + j < n ? q[c + j] * key_at(f16, k, c + j) : 0.0f;
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] = acc[j] + acc[j + w];
    return acc[0];
}

static float kq_f16(int64_t n, const float *q, const void *k)
{
    return kq_scalar(true, n, q, k);
}

static float kq_f32(int64_t n, const float *q, const void *k)
{
    return kq_scalar(false, n, q, k);
}

static void axpy_f16(int64_t n, float w, const void *v, float *out)
{
    for (int64_t d = 0; d < n; d++)
        out[d] += w * key_at(true, v, d);
}

static void axpy_f32(int64_t n, float w, const void *v, float *out)
{
    for (int64_t d = 0; d < n; d++)
        out[d] += w * ((const float *)v)[d];
}

static float exp1(float x)
{
    const float m = x * EXP_LOG2E + EXP_ROUND;
    uint32_t mb, sb;
    memcpy(&mb, &m, 4);
    const float n = m - EXP_ROUND;
    float r = x - n * EXP_LN2_HI;
    r = r - n * EXP_LN2_LO;
    float p = EXP_P0;
    p = p * r + EXP_P1;
    p = p * r + EXP_P2;
    p = p * r + EXP_P3;
    p = p * r + EXP_P4;
    p = p * r + EXP_P5;
    p = p * (r * r) + r + 1.0f;
    sb = (mb - 0x4B400000u + 127u) << 23; /* 2^n; n in [-126, 0] where it is used */
    float s;
    memcpy(&s, &sb, 4);
    return x < EXP_MIN ? 0.0f : p * s;
}

static void exp_tail(int64_t i, int64_t n, const float *x, float sub, float *out)
{
    for (; i < n; i++)
        out[i] = exp1(x[i] - sub);
}

static void exp_scalar(int64_t n, const float *x, float sub, float *out)
{
    exp_tail(0, n, x, sub, out);
}

/* ---------------------------------------------------------------- avx2 */

T_AVX2 static __m256 ld8(bool f16, const void *k, int64_t i)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)k + i)));
    return _mm256_loadu_ps((const float *)k + i);
}

/* the first r of 8 values (r < 8), the rest 0 */
T_AVX2 static __m256 ld8_part(bool f16, const void *k, int64_t i, int r)
{
    float t[8] = {0};
    for (int j = 0; j < r; j++)
        t[j] = key_at(f16, k, i + j);
    return _mm256_loadu_ps(t);
}

T_AVX2 static float hsum8(__m256 s)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

T_AVX2 static float kq_avx2(bool f16, int64_t n, const float *q, const void *k)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(q + c), ld8(f16, k, c)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(q + c + 8), ld8(f16, k, c + 8)));
    }
    if (c < n) {
        const int r = (int)(n - c);
        const __m256 q0 = r >= 8 ? _mm256_loadu_ps(q + c) : ld8_part(false, q, c, r);
        const __m256 k0 = r >= 8 ? ld8(f16, k, c) : ld8_part(f16, k, c, r);
        const __m256 q1 = r > 8 ? ld8_part(false, q, c + 8, r - 8) : _mm256_setzero_ps();
        const __m256 k1 = r > 8 ? ld8_part(f16, k, c + 8, r - 8) : _mm256_setzero_ps();
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(q0, k0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(q1, k1));
    }
    return hsum8(_mm256_add_ps(a0, a1));
}

T_AVX2 static float kq_f16_avx2(int64_t n, const float *q, const void *k)
{
    return kq_avx2(true, n, q, k);
}

T_AVX2 static float kq_f32_avx2(int64_t n, const float *q, const void *k)
{
    return kq_avx2(false, n, q, k);
}

T_AVX2 static void axpy_avx2(bool f16, int64_t n, float w, const void *v, float *out)
{
    const __m256 wv = _mm256_set1_ps(w);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_loadu_ps(out + d), _mm256_mul_ps(wv, ld8(f16, v, d))));
    for (; d < n; d++)
        out[d] += w * key_at(f16, v, d);
}

T_AVX2 static void axpy_f16_avx2(int64_t n, float w, const void *v, float *out)
{
    axpy_avx2(true, n, w, v, out);
}

T_AVX2 static void axpy_f32_avx2(int64_t n, float w, const void *v, float *out)
{
    axpy_avx2(false, n, w, v, out);
}

T_AVX2 static void exp_avx2(int64_t n, const float *x, float sub, float *out)
{
    const __m256 sv = _mm256_set1_ps(sub);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_sub_ps(_mm256_loadu_ps(x + i), sv);
        const __m256 m = _mm256_add_ps(_mm256_mul_ps(xv, _mm256_set1_ps(EXP_LOG2E)), _mm256_set1_ps(EXP_ROUND));
        const __m256 nf = _mm256_sub_ps(m, _mm256_set1_ps(EXP_ROUND));
        __m256 r = _mm256_sub_ps(xv, _mm256_mul_ps(nf, _mm256_set1_ps(EXP_LN2_HI)));
        r = _mm256_sub_ps(r, _mm256_mul_ps(nf, _mm256_set1_ps(EXP_LN2_LO)));
        __m256 p = _mm256_set1_ps(EXP_P0);
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P1));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P2));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P3));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P4));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P5));
        p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
        const __m256i e = _mm256_slli_epi32(
            _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(m), _mm256_set1_epi32(0x4B400000)),
                             _mm256_set1_epi32(127)), 23);
        const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        const __m256 lo = _mm256_cmp_ps(xv, _mm256_set1_ps(EXP_MIN), _CMP_LT_OQ);
        _mm256_storeu_ps(out + i, _mm256_andnot_ps(lo, y));
    }
    exp_tail(i, n, x, sub, out);
}

/* ---------------------------------------------------------------- avx512 */

T_AVX512 static __m512 ld16m(bool f16, const void *k, int64_t i, __mmask16 m)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)k + i));
    return _mm512_maskz_loadu_ps(m, (const float *)k + i);
}

T_AVX512 static float kq_avx512(bool f16, int64_t n, const float *q, const void *k)
{
    __m512 a = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(q + c), ld16m(f16, k, c, 0xFFFF)));
    if (c < n) {
        const __mmask16 m = (__mmask16)((1u << (n - c)) - 1);
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, q + c), ld16m(f16, k, c, m)));
    }
    /* lanes j + 8 onto j: the high half through the AVX512F double extract */
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(a),
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
}

T_AVX512 static float kq_f16_avx512(int64_t n, const float *q, const void *k)
{
    return kq_avx512(true, n, q, k);
}

T_AVX512 static float kq_f32_avx512(int64_t n, const float *q, const void *k)
{
    return kq_avx512(false, n, q, k);
}

T_AVX512 static void axpy_avx512(bool f16, int64_t n, float w, const void *v, float *out)
{
    const __m512 wv = _mm512_set1_ps(w);
    int64_t d = 0;
    for (; d + 16 <= n; d += 16)
        _mm512_storeu_ps(out + d, _mm512_add_ps(_mm512_loadu_ps(out + d), _mm512_mul_ps(wv, ld16m(f16, v, d, 0xFFFF))));
    if (d < n) {
        const __mmask16 m = (__mmask16)((1u << (n - d)) - 1);
        _mm512_mask_storeu_ps(out + d, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + d), _mm512_mul_ps(wv, ld16m(f16, v, d, m))));
    }
}

T_AVX512 static void axpy_f16_avx512(int64_t n, float w, const void *v, float *out)
{
    axpy_avx512(true, n, w, v, out);
}

T_AVX512 static void axpy_f32_avx512(int64_t n, float w, const void *v, float *out)
{
    axpy_avx512(false, n, w, v, out);
}

T_AVX512 static void exp_avx512(int64_t n, const float *x, float sub, float *out)
{
    const __m512 sv = _mm512_set1_ps(sub);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 xv = _mm512_sub_ps(_mm512_loadu_ps(x + i), sv);
        const __m512 m = _mm512_add_ps(_mm512_mul_ps(xv, _mm512_set1_ps(EXP_LOG2E)), _mm512_set1_ps(EXP_ROUND));
        const __m512 nf = _mm512_sub_ps(m, _mm512_set1_ps(EXP_ROUND));
        __m512 r = _mm512_sub_ps(xv, _mm512_mul_ps(nf, _mm512_set1_ps(EXP_LN2_HI)));
        r = _mm512_sub_ps(r, _mm512_mul_ps(nf, _mm512_set1_ps(EXP_LN2_LO)));
        __m512 p = _mm512_set1_ps(EXP_P0);
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EXP_P1));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EXP_P2));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EXP_P3));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EXP_P4));
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(EXP_P5));
        p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f));
        const __m512i e = _mm512_slli_epi32(
            _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(m), _mm512_set1_epi32(0x4B400000)),
                             _mm512_set1_epi32(127)), 23);
        const __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
        const __mmask16 lo = _mm512_cmp_ps_mask(xv, _mm512_set1_ps(EXP_MIN), _CMP_LT_OQ);
        _mm512_storeu_ps(out + i, _mm512_maskz_mov_ps((__mmask16)~lo, y));
    }
    exp_tail(i, n, x, sub, out);
}

/* ---------------------------------------------------------------- sets */

void mlc_cpu_kernels_attn(mlc_cpu_kernels *k, int level)
{
    k->kq[0] = level >= 2 ? kq_f32_avx512 : level == 1 ? kq_f32_avx2 : kq_f32;
    k->kq[1] = level >= 2 ? kq_f16_avx512 : level == 1 ? kq_f16_avx2 : kq_f16;
    k->axpy[0] = level >= 2 ? axpy_f32_avx512 : level == 1 ? axpy_f32_avx2 : axpy_f32;
    k->axpy[1] = level >= 2 ? axpy_f16_avx512 : level == 1 ? axpy_f16_avx2 : axpy_f16;
    k->exp_sub = level >= 2 ? exp_avx512 : level == 1 ? exp_avx2 : exp_scalar;
}
