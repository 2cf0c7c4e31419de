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
 * value types change nothing in the arithmetic.
 * The tiles (kq_tile, pv_tile) do the same operations on the same operands as kq and axpy,
 * several rows at once: a key or value row is loaded and widened once for several queries,
 * and the SIMD sets fold the 16 lanes of several scores together, transposed (the same
 * adds, lower lane first, as the per-row fold). round16 and vmax give the scalar code's
 * results (vmax up to the sign of a zero maximum). */
#include "vecdot.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
/* The tiles' register arrays stay in registers only when their loops unroll completely. */
#define INLINE inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")
#define RNE16 _MM_FROUND_TO_NEAREST_INT /* F16 conversion: to nearest even, not by MXCSR */

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

static void kq_tile_scalar(bool f16, int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                           int64_t np, float *const *out)
{
    for (int g = 0; g < nq; g++)
        for (int64_t p = 0; p < np; p++)
            out[g][p] = kq_scalar(f16, n, q[g], (const uint8_t *)k + (size_t)p * kstride);
}

static void kq_tile_f16(int64_t n, int nq, const float *const *q, const void *k, size_t kstride, int64_t np,
                        float *const *out)
{
    kq_tile_scalar(true, n, nq, q, k, kstride, np, out);
}

static void kq_tile_f32(int64_t n, int nq, const float *const *q, const void *k, size_t kstride, int64_t np,
                        float *const *out)
{
    kq_tile_scalar(false, n, nq, q, k, kstride, np, out);
}

static void pv_tile_scalar(bool f16, int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                           int64_t np, float *const *out)
{
    for (int64_t p = 0; p < np; p++) {
        const void *row = (const uint8_t *)v + (size_t)p * vstride;
        for (int g = 0; g < nq; g++)
            for (int64_t d = 0; d < n; d++)
                out[g][d] += w[g][p] * key_at(f16, row, d);
    }
}

static void pv_tile_f16(int64_t n, int nq, const float *const *w, const void *v, size_t vstride, int64_t np,
                        float *const *out)
{
    pv_tile_scalar(true, n, nq, w, v, vstride, np, out);
}

static void pv_tile_f32(int64_t n, int nq, const float *const *w, const void *v, size_t vstride, int64_t np,
                        float *const *out)
{
    pv_tile_scalar(false, n, nq, w, v, vstride, np, out);
}

static void round16_scalar(int64_t n, const float *x, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = mlc_fp16_to_fp32(mlc_fp32_to_fp16(x[i]));
}

static void scale_scalar(int64_t n, const float *x, float s, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * s;
}

static float vmax_scalar(int64_t n, const float *x, float init)
{
    for (int64_t i = 0; i < n; i++)
        init = fmaxf(init, x[i]);
    return init;
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

/* r[i] = the kq fold of row i's 16 lanes, for 4 rows whose lanes j + 8 are already folded
 * onto j (s[i], 8 floats): the 128-bit halves added (j + 4), then pairs within them (j + 2,
 * j + 1), two rows per vector, lower lane first as hsum8 does. */
T_AVX2 static void fold4_avx2(const __m256 *s, float *r)
{
    const __m256 t0 = _mm256_add_ps(_mm256_permute2f128_ps(s[0], s[1], 0x20), _mm256_permute2f128_ps(s[0], s[1], 0x31));
    const __m256 t1 = _mm256_add_ps(_mm256_permute2f128_ps(s[2], s[3], 0x20), _mm256_permute2f128_ps(s[2], s[3], 0x31));
    const __m256 u = _mm256_add_ps(_mm256_shuffle_ps(t0, t1, 0x44), _mm256_shuffle_ps(t0, t1, 0xEE));
    const __m256 v = _mm256_add_ps(_mm256_shuffle_ps(u, u, 0x88), _mm256_shuffle_ps(u, u, 0xDD));
    float t[8];
    _mm256_storeu_ps(t, v); /* rows 0, 2 in lanes 0, 1; rows 1, 3 in lanes 4, 5 */
    r[0] = t[0];
    r[1] = t[4];
    r[2] = t[1];
    r[3] = t[5];
}

/* r[g * np + p] = kq(q[g], k[p]) for nq * np == 4: lanes 0..7 in lo, 8..15 in hi as kq_avx2. */
T_AVX2 static INLINE void kq4_avx2(bool f16, int nq, int np, int64_t n, const float *const *q,
                                   const uint8_t *const *k, float *r)
{
    __m256 lo[4], hi[4];
    UNROLL for (int i = 0; i < 4; i++)
        lo[i] = hi[i] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        UNROLL for (int p = 0; p < np; p++) {
            const __m256 k0 = ld8(f16, k[p], c), k1 = ld8(f16, k[p], c + 8);
            UNROLL for (int g = 0; g < nq; g++) {
                lo[g * np + p] = _mm256_add_ps(lo[g * np + p], _mm256_mul_ps(_mm256_loadu_ps(q[g] + c), k0));
                hi[g * np + p] = _mm256_add_ps(hi[g * np + p], _mm256_mul_ps(_mm256_loadu_ps(q[g] + c + 8), k1));
            }
        }
    if (c < n) {
        const int r8 = (int)(n - c);
        UNROLL for (int p = 0; p < np; p++) {
            const __m256 k0 = r8 >= 8 ? ld8(f16, k[p], c) : ld8_part(f16, k[p], c, r8);
            const __m256 k1 = r8 > 8 ? ld8_part(f16, k[p], c + 8, r8 - 8) : _mm256_setzero_ps();
            UNROLL for (int g = 0; g < nq; g++) {
                const __m256 q0 = r8 >= 8 ? _mm256_loadu_ps(q[g] + c) : ld8_part(false, q[g], c, r8);
                const __m256 q1 = r8 > 8 ? ld8_part(false, q[g], c + 8, r8 - 8) : _mm256_setzero_ps();
                lo[g * np + p] = _mm256_add_ps(lo[g * np + p], _mm256_mul_ps(q0, k0));
                hi[g * np + p] = _mm256_add_ps(hi[g * np + p], _mm256_mul_ps(q1, k1));
            }
        }
    }
    UNROLL for (int i = 0; i < 4; i++)
        lo[i] = _mm256_add_ps(lo[i], hi[i]);
    fold4_avx2(lo, r);
}

/* Pairs of queries against pairs of rows (the last row repeated for an odd count), then the
 * queries left one at a time against 4 rows, then single rows. */
T_AVX2 static INLINE void kq_tile_avx2(bool f16, int64_t n, int nq, const float *const *q, const void *k,
                                       size_t kstride, int64_t np, float *const *out)
{
    const uint8_t *kb = k, *rows[4];
    float r[4];
    int g = 0;
    for (; g + 2 <= nq; g += 2)
        for (int64_t p = 0; p < np; p += 2) {
            rows[0] = kb + (size_t)p * kstride;
            rows[1] = kb + (size_t)(p + 1 < np ? p + 1 : p) * kstride;
            kq4_avx2(f16, 2, 2, n, q + g, rows, r);
            out[g][p] = r[0];
            out[g + 1][p] = r[2];
            if (p + 1 < np) {
                out[g][p + 1] = r[1];
                out[g + 1][p + 1] = r[3];
            }
        }
    for (; g < nq; g++) {
        int64_t p = 0;
        for (; p + 4 <= np; p += 4) {
            for (int i = 0; i < 4; i++)
                rows[i] = kb + (size_t)(p + i) * kstride;
            kq4_avx2(f16, 1, 4, n, q + g, rows, out[g] + p);
        }
        for (; p < np; p++)
            out[g][p] = kq_avx2(f16, n, q[g], kb + (size_t)p * kstride);
    }
}

T_AVX2 static void kq_tile_f16_avx2(int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                                    int64_t np, float *const *out)
{
    kq_tile_avx2(true, n, nq, q, k, kstride, np, out);
}

T_AVX2 static void kq_tile_f32_avx2(int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                                    int64_t np, float *const *out)
{
    kq_tile_avx2(false, n, nq, q, k, kstride, np, out);
}

/* Values d0 .. d0 + 8 * nv - 1 of nq outputs, held in registers over all rows. */
T_AVX2 static INLINE void pv8_avx2(bool f16, int nq, int nv, int64_t d0, const float *const *w, const uint8_t *v,
                                   size_t vstride, int64_t np, float *const *out)
{
    __m256 acc[2][4];
    UNROLL for (int g = 0; g < nq; g++)
        UNROLL for (int i = 0; i < nv; i++)
            acc[g][i] = _mm256_loadu_ps(out[g] + d0 + 8 * i);
    for (int64_t p = 0; p < np; p++) {
        const uint8_t *row = v + (size_t)p * vstride;
        __m256 x[4];
        UNROLL for (int i = 0; i < nv; i++)
            x[i] = ld8(f16, row, d0 + 8 * i);
        UNROLL for (int g = 0; g < nq; g++) {
            const __m256 wv = _mm256_set1_ps(w[g][p]);
            UNROLL for (int i = 0; i < nv; i++)
                acc[g][i] = _mm256_add_ps(acc[g][i], _mm256_mul_ps(wv, x[i]));
        }
    }
    UNROLL for (int g = 0; g < nq; g++)
        UNROLL for (int i = 0; i < nv; i++)
            _mm256_storeu_ps(out[g] + d0 + 8 * i, acc[g][i]);
}

T_AVX2 static INLINE void pv_tile_avx2(bool f16, int64_t n, int nq, const float *const *w, const void *v,
                                       size_t vstride, int64_t np, float *const *out)
{
    for (int g = 0; g < nq; g += 2) {
        const bool two = nq - g >= 2;
        int64_t d = 0;
        for (; d + 32 <= n; d += 32)
            two ? pv8_avx2(f16, 2, 4, d, w + g, v, vstride, np, out + g)
                : pv8_avx2(f16, 1, 4, d, w + g, v, vstride, np, out + g);
        for (; d + 8 <= n; d += 8)
            two ? pv8_avx2(f16, 2, 1, d, w + g, v, vstride, np, out + g)
                : pv8_avx2(f16, 1, 1, d, w + g, v, vstride, np, out + g);
        for (; d < n; d++)
            for (int i = 0; i < (two ? 2 : 1); i++) {
                float a = out[g + i][d];
                for (int64_t p = 0; p < np; p++)
                    a += w[g + i][p] * key_at(f16, (const uint8_t *)v + (size_t)p * vstride, d);
                out[g + i][d] = a;
            }
    }
}

T_AVX2 static void pv_tile_f16_avx2(int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                                    int64_t np, float *const *out)
{
    pv_tile_avx2(true, n, nq, w, v, vstride, np, out);
}

T_AVX2 static void pv_tile_f32_avx2(int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                                    int64_t np, float *const *out)
{
    pv_tile_avx2(false, n, nq, w, v, vstride, np, out);
}

T_AVX2 static void round16_avx2(int64_t n, const float *x, float *out)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), RNE16)));
    round16_scalar(n - i, x + i, out + i);
}

T_AVX2 static void scale_avx2(int64_t n, const float *x, float s, float *out)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(s)));
    scale_scalar(n - i, x + i, s, out + i);
}

/* max_ps(x, acc) gives acc when x is NaN, as fmaxf skips it; acc is never NaN. */
T_AVX2 static float vmax_avx2(int64_t n, const float *x, float init)
{
    __m256 a = _mm256_set1_ps(init);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        a = _mm256_max_ps(_mm256_loadu_ps(x + i), a);
    float t[8];
    _mm256_storeu_ps(t, a);
    return vmax_scalar(n - i, x + i, vmax_scalar(8, t, init));
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

/* Lane i of the result = the kq fold of a[i]'s 16 lanes: each step adds the upper half of
 * every group onto its lower half for two vectors at once (lane j + 8, + 4, + 2, + 1 onto j,
 * the lower lane first), which leaves the 16 sums in the lane order undone at the end. */
T_AVX512 static INLINE __m512 fold16_avx512(const __m512 *a)
{
    __m512 b[8], c[4], d[2];
    UNROLL for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 8], 0x44), _mm512_shuffle_f32x4(a[i], a[i + 8], 0xEE));
    UNROLL for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[i], b[i + 4], 0x88), _mm512_shuffle_f32x4(b[i], b[i + 4], 0xDD));
    UNROLL for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[i], c[i + 2], 0x44), _mm512_shuffle_ps(c[i], c[i + 2], 0xEE));
    const __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), e);
}

/* a[g * np + p] += q[g] * k[p] over the 16 values from c (lanes past m read as 0). */
T_AVX512 static INLINE void kq16_step(bool f16, int nq, int np, int64_t c, __mmask16 m, const float *const *q,
                                      const uint8_t *const *k, __m512 *a)
{
    __m512 qv[4];
    UNROLL for (int g = 0; g < nq; g++)
        qv[g] = _mm512_maskz_loadu_ps(m, q[g] + c);
    UNROLL for (int p = 0; p < np; p++) {
        const __m512 kv = ld16m(f16, k[p], c, m);
        UNROLL for (int g = 0; g < nq; g++)
            a[g * np + p] = _mm512_add_ps(a[g * np + p], _mm512_mul_ps(qv[g], kv));
    }
}

/* r[g * np + p] = kq(q[g], k[p]) for nq * np == 16. */
T_AVX512 static INLINE void kq16_avx512(bool f16, int nq, int np, int64_t n, const float *const *q,
                                        const uint8_t *const *k, float *r)
{
    __m512 a[16];
    UNROLL for (int i = 0; i < 16; i++)
        a[i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        kq16_step(f16, nq, np, c, 0xFFFF, q, k, a);
    if (c < n)
        kq16_step(f16, nq, np, c, (__mmask16)((1u << (n - c)) - 1), q, k, a);
    _mm512_storeu_ps(r, fold16_avx512(a));
}

/* Blocks of 4 queries against 4 rows (the last row repeated to fill a block), then the
 * queries left one at a time against 16 rows, then single rows. */
T_AVX512 static INLINE void kq_tile_avx512(bool f16, int64_t n, int nq, const float *const *q, const void *k,
                                           size_t kstride, int64_t np, float *const *out)
{
    const uint8_t *kb = k, *rows[16];
    float r[16];
    int g = 0;
    for (; g + 4 <= nq; g += 4)
        for (int64_t p = 0; p < np; p += 4) {
            for (int i = 0; i < 4; i++)
                rows[i] = kb + (size_t)(p + i < np ? p + i : np - 1) * kstride;
            kq16_avx512(f16, 4, 4, n, q + g, rows, r);
            for (int gg = 0; gg < 4; gg++)
                for (int i = 0; i < 4 && p + i < np; i++)
                    out[g + gg][p + i] = r[gg * 4 + i];
        }
    for (; g < nq; g++) {
        int64_t p = 0;
        for (; p + 16 <= np; p += 16) {
            for (int i = 0; i < 16; i++)
                rows[i] = kb + (size_t)(p + i) * kstride;
            kq16_avx512(f16, 1, 16, n, q + g, rows, out[g] + p);
        }
        for (; p < np; p++)
            out[g][p] = kq_avx512(f16, n, q[g], kb + (size_t)p * kstride);
    }
}

T_AVX512 static void kq_tile_f16_avx512(int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                                        int64_t np, float *const *out)
{
    kq_tile_avx512(true, n, nq, q, k, kstride, np, out);
}

T_AVX512 static void kq_tile_f32_avx512(int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                                        int64_t np, float *const *out)
{
    kq_tile_avx512(false, n, nq, q, k, kstride, np, out);
}

/* Values d0 .. d0 + 16 * nv - 1 of nq outputs (the last vector's lanes past ml left alone),
 * held in registers over all rows. */
T_AVX512 static INLINE void pv16_avx512(bool f16, int nq, int nv, __mmask16 ml, int64_t d0, const float *const *w,
                                        const uint8_t *v, size_t vstride, int64_t np, float *const *out)
{
    __m512 acc[4][4];
    UNROLL for (int g = 0; g < nq; g++)
        UNROLL for (int i = 0; i < nv; i++)
            acc[g][i] = _mm512_maskz_loadu_ps(i == nv - 1 ? ml : 0xFFFF, out[g] + d0 + 16 * i);
    for (int64_t p = 0; p < np; p++) {
        const uint8_t *row = v + (size_t)p * vstride;
        __m512 x[4];
        UNROLL for (int i = 0; i < nv; i++)
            x[i] = ld16m(f16, row, d0 + 16 * i, i == nv - 1 ? ml : 0xFFFF);
        UNROLL for (int g = 0; g < nq; g++) {
            const __m512 wv = _mm512_set1_ps(w[g][p]);
            UNROLL for (int i = 0; i < nv; i++)
                acc[g][i] = _mm512_add_ps(acc[g][i], _mm512_mul_ps(wv, x[i]));
        }
    }
    UNROLL for (int g = 0; g < nq; g++)
        UNROLL for (int i = 0; i < nv; i++)
            _mm512_mask_storeu_ps(out[g] + d0 + 16 * i, i == nv - 1 ? ml : 0xFFFF, acc[g][i]);
}

#define PV16(M, V) \
    case (M) * 4 + (V): \
        pv16_avx512(f16, M, V, ml, d, w + g, v, vstride, np, out + g); \
        break

/* Up to 4 queries at a time, 64 values at a time. */
T_AVX512 static INLINE void pv_tile_avx512(bool f16, int64_t n, int nq, const float *const *w, const void *v,
                                           size_t vstride, int64_t np, float *const *out)
{
    for (int g = 0; g < nq; g += 4) {
        const int m = nq - g < 4 ? nq - g : 4;
        for (int64_t d = 0; d < n; d += 64) {
            const int nv = n - d >= 64 ? 4 : (int)((n - d + 15) / 16);
            const int64_t last = n - d - 16 * (nv - 1); /* 1 .. 16 */
            const __mmask16 ml = (__mmask16)(last >= 16 ? 0xFFFFu : (1u << last) - 1);
            switch (m * 4 + nv) {
                PV16(1, 1); PV16(1, 2); PV16(1, 3); PV16(1, 4);
                PV16(2, 1); PV16(2, 2); PV16(2, 3); PV16(2, 4);
                PV16(3, 1); PV16(3, 2); PV16(3, 3); PV16(3, 4);
                PV16(4, 1); PV16(4, 2); PV16(4, 3); PV16(4, 4);
            default:
                break;
            }
        }
    }
}

T_AVX512 static void pv_tile_f16_avx512(int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                                        int64_t np, float *const *out)
{
    pv_tile_avx512(true, n, nq, w, v, vstride, np, out);
}

T_AVX512 static void pv_tile_f32_avx512(int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                                        int64_t np, float *const *out)
{
    pv_tile_avx512(false, n, nq, w, v, vstride, np, out);
}

T_AVX512 static void round16_avx512(int64_t n, const float *x, float *out)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), RNE16)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), RNE16)));
    }
}

T_AVX512 static void scale_avx512(int64_t n, const float *x, float s, float *out)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(s)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_set1_ps(s)));
    }
}

/* as vmax_avx2 */
T_AVX512 static float vmax_avx512(int64_t n, const float *x, float init)
{
    __m512 a = _mm512_set1_ps(init);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        a = _mm512_max_ps(_mm512_loadu_ps(x + i), a);
    return vmax_scalar(n - i, x + i, _mm512_reduce_max_ps(a));
}

/* ---------------------------------------------------------------- sets */

void mlc_cpu_kernels_attn(mlc_cpu_kernels *k, int level)
{
    k->kq[0] = level >= 2 ? kq_f32_avx512 : level == 1 ? kq_f32_avx2 : kq_f32;
    k->kq[1] = level >= 2 ? kq_f16_avx512 : level == 1 ? kq_f16_avx2 : kq_f16;
    k->axpy[0] = level >= 2 ? axpy_f32_avx512 : level == 1 ? axpy_f32_avx2 : axpy_f32;
    k->axpy[1] = level >= 2 ? axpy_f16_avx512 : level == 1 ? axpy_f16_avx2 : axpy_f16;
    k->exp_sub = level >= 2 ? exp_avx512 : level == 1 ? exp_avx2 : exp_scalar;
    k->kq_tile[0] = level >= 2 ? kq_tile_f32_avx512 : level == 1 ? kq_tile_f32_avx2 : kq_tile_f32;
    k->kq_tile[1] = level >= 2 ? kq_tile_f16_avx512 : level == 1 ? kq_tile_f16_avx2 : kq_tile_f16;
    k->pv_tile[0] = level >= 2 ? pv_tile_f32_avx512 : level == 1 ? pv_tile_f32_avx2 : pv_tile_f32;
    k->pv_tile[1] = level >= 2 ? pv_tile_f16_avx512 : level == 1 ? pv_tile_f16_avx2 : pv_tile_f16;
    k->round16 = level >= 2 ? round16_avx512 : level == 1 ? round16_avx2 : round16_scalar;
    k->scale = level >= 2 ? scale_avx512 : level == 1 ? scale_avx2 : scale_scalar;
    k->vmax = level >= 2 ? vmax_avx512 : level == 1 ? vmax_avx2 : vmax_scalar;
}
