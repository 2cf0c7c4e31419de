/* vecdot_avx512.c: the AVX-512 kernel set (F, BW, VL, DQ; VNNI for the quantized types).
 *
 * Starts from the avx2 set (activation quantizers and the float-weight activation format
 * are shared) and replaces the dots:
 * - F32, F16, BF16: 16 lanes, four accumulators per row, masked loads for the tail.
 * - Q8_0, Q4_0, Q4_K, Q6_K, when the CPU has AVX512-VNNI: 64-byte integer dots with
 *   vpdpbusd / vpdpwssd. Without VNNI the avx2 kernels stay (512-bit maddubs alone gains
 *   little once the per-block reductions are counted).
 * The same rules as vecdot_avx2.c hold: quantized results bit-identical to the scalar
 * reference (exact integer sums, then the reference's float operations in its order), and
 * dot4 == four dots because both are one body. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define INLINE \
    static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TARGET_VNNI \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE_VNNI                                        \
    static inline __attribute__((always_inline, target( \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* ---------------------------------------------------------------- helpers */

INLINE uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

INLINE float ld_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

INLINE float f16_at(const uint8_t *p)
{
    return _cvtsh_ss(ld16(p));
}

INLINE __m256i ld256(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

INLINE __m512i ld512(const uint8_t *p)
{
    return _mm512_loadu_si512((const void *)p);
}

/* f16 scales of cnt (<= 8) blocks stride bytes apart, as floats (lanes >= cnt are 0). */
INLINE __m256 f16x8(const uint8_t *p, size_t stride, int cnt)
{
    uint64_t lo = 0, hi = 0;
    for (int i = 0; i < cnt && i < 4; i++)
        lo |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * i);
    for (int i = 4; i < cnt; i++)
        hi |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * (i - 4));
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

INLINE int32_t hsum256_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* ---------------------------------------------------------------- F32, F16, BF16 */

/* 16 weights from element i as floats (t is a constant after inlining); masked: lanes
 * outside m are 0 and their memory is not read. */
INLINE __m512 ldw16(uint32_t t, const uint8_t *w, int64_t i, __mmask16 m)
{
    if (t == MLC_TYPE_F32)
        return _mm512_maskz_loadu_ps(m, w + 4 * i);
    __m256i h = _mm256_maskz_loadu_epi16(m, w + 2 * i);
    if (t == MLC_TYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* One float weight row against R F32 activation rows: four accumulators of 16 lanes per
 * row over chunks of 64, then the remaining full chunks of 16 into accumulator 0 and a
 * masked partial one into accumulator 1. */
INLINE void fdot_rows(uint32_t t, int64_t n, const uint8_t *w, const uint8_t *a, size_t astride,
                      float *out, int R)
{
    const float *y[4];
    for (int r = 0; r < R; r++)
        y[r] = (const float *)(const void *)(a + (size_t)r * astride);
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < 4; u++)
            acc[r][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 wv[4];
        for (int u = 0; u < 4; u++)
            wv[u] = ldw16(t, w, i + 16 * u, 0xFFFF);
        for (int r = 0; r < R; r++)
            for (int u = 0; u < 4; u++)
                acc[r][u] = _mm512_fmadd_ps(wv[u], _mm512_loadu_ps(y[r] + i + 16 * u), acc[r][u]);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 wv = ldw16(t, w, i, 0xFFFF);
        for (int r = 0; r < R; r++)
            acc[r][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(y[r] + i), acc[r][0]);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 wv = ldw16(t, w, i, m);
        for (int r = 0; r < R; r++)
            acc[r][1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, y[r] + i), acc[r][1]);
    }
    for (int r = 0; r < R; r++) {
        __m512 s = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3]));
        __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        out[r] = _mm_cvtss_f32(q);
    }
}

static TARGET float dot_f32(int64_t n, const void *w, const void *a)
{
    float o;
    fdot_rows(MLC_TYPE_F32, n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_f32(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    fdot_rows(MLC_TYPE_F32, n, w, a, astride, out, 4);
}

static TARGET float dot_f16(int64_t n, const void *w, const void *a)
{
    float o;
    fdot_rows(MLC_TYPE_F16, n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_f16(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    fdot_rows(MLC_TYPE_F16, n, w, a, astride, out, 4);
}

static TARGET float dot_bf16(int64_t n, const void *w, const void *a)
{
    float o;
    fdot_rows(MLC_TYPE_BF16, n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_bf16(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    fdot_rows(MLC_TYPE_BF16, n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- Q8_0, Q4_0 x Q8_0 */

/* Blocks are processed 8 at a time, two per register: register k holds blocks k and k+4 of
 * the group (32 bytes each), which makes the reduction tree below end in block order.
 *
 * vpdpbusd multiplies unsigned by signed bytes. Flipping the activations' sign bit makes
 * them a + 128 (unsigned): sum (a+128) w = sum a w + 128 sum w, and the second term depends
 * on the weights only, so it is computed once per weight register (and shared by the four
 * rows of dot4) as the accumulator's starting value -128 sum w. Exact for every int8. */

/* 32 bytes at p0 (low half) and p1 (high half); a NULL half is zero. */
INLINE __m512i ld_pair(const uint8_t *p0, const uint8_t *p1)
{
    __m256i lo = p0 ? ld256(p0) : _mm256_setzero_si256();
    __m256i hi = p1 ? ld256(p1) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Two Q4_0 blocks' values (qs at p0, p1; NULL: not read, the lanes hold garbage that
 * q8_group never adds) as signed bytes q - 8: per block its 16 bytes twice, shifted by 0
 * and 4 (low nibbles: values 0..15, high: 16..31). */
INLINE __m512i q4_0_pair(const uint8_t *p0, const uint8_t *p1)
{
    __m256i lo = p0 ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p0))
                    : _mm256_setzero_si256();
    __m256i hi = p1 ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p1))
                    : _mm256_setzero_si256();
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __m512i sh = _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                         0x0004000400040004ll, 0x0004000400040004ll);
    __m512i v = _mm512_and_si512(_mm512_srlv_epi16(q, sh), _mm512_set1_epi8(0x0F));
    return _mm512_sub_epi8(v, _mm512_set1_epi8(8));
}

/* Sums of the 8-lane halves of z0..z3 (z_k = [block k | block k+4]) in block order 0..7:
 * two unpack levels leave per 128-bit lane the partial sums of the four registers, the
 * last level adds lane pairs. */
INLINE __m256i hsum_8blocks(__m512i z0, __m512i z1, __m512i z2, __m512i z3)
{
    __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(z0, z1), _mm512_unpackhi_epi32(z0, z1));
    __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(z2, z3), _mm512_unpackhi_epi32(z2, z3));
    /* 128-bit lanes: [b0..b3 first half], [b0..b3 second half], [b4..b7 ..], [b4..b7 ..] */
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    __m512i lo = _mm512_shuffle_i32x4(u, u, 0x08), hi = _mm512_shuffle_i32x4(u, u, 0x0D);
    return _mm256_add_epi32(_mm512_castsi512_si256(lo), _mm512_castsi512_si256(hi));
}

/* Blocks b .. b+cnt-1 (cnt <= 8) of R rows; s[r] += (float)sumi * (dx * dy) per block, in
 * block order, as the reference. */
INLINE_VNNI void q8_group(int q4, const uint8_t *x, const uint8_t *a, size_t astride, int64_t b,
                          int cnt, float *s, int R)
{
    const size_t wb = q4 ? 18 : 34;
    const uint8_t *xb = x + (size_t)b * wb;
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    __m512i wv[4], corr[4];
    for (int k = 0; k < 4; k++) {
        const uint8_t *p0 = k < cnt ? xb + k * wb + 2 : NULL;
        const uint8_t *p1 = k + 4 < cnt ? xb + (k + 4) * wb + 2 : NULL;
        wv[k] = q4 ? q4_0_pair(p0, p1) : ld_pair(p0, p1);
        corr[k] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_dpbusd_epi32(_mm512_setzero_si512(), c80, wv[k]));
    }
    const __m256 dx = f16x8(xb, wb, cnt);
    for (int r = 0; r < R; r++) {
        const uint8_t *yb = a + (size_t)r * astride + (size_t)b * 34;
        __m512i v[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *p0 = k < cnt ? yb + 34 * k + 2 : NULL;
            const uint8_t *p1 = k + 4 < cnt ? yb + 34 * (k + 4) + 2 : NULL;
            v[k] = _mm512_dpbusd_epi32(corr[k], _mm512_xor_si512(ld_pair(p0, p1), c80), wv[k]);
        }
        __m256 sumf = _mm256_cvtepi32_ps(hsum_8blocks(v[0], v[1], v[2], v[3]));
        __m256 p = _mm256_mul_ps(sumf, _mm256_mul_ps(dx, f16x8(yb, 34, cnt)));
        float pf[8];
        _mm256_storeu_ps(pf, p);
        for (int k = 0; k < cnt; k++)
            s[r] += pf[k];
    }
}

INLINE_VNNI void q8_rows(int q4, int64_t n, const uint8_t *x, const uint8_t *a, size_t astride,
                         float *out, int R)
{
    const int64_t nb = n / 32;
    float s[4] = {0, 0, 0, 0};
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8)
        q8_group(q4, x, a, astride, b, 8, s, R);
    if (b < nb)
        q8_group(q4, x, a, astride, b, (int)(nb - b), s, R);
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

static TARGET_VNNI float dot_q8_0(int64_t n, const void *w, const void *a)
{
    float o;
    q8_rows(0, n, w, a, 0, &o, 1);
    return o;
}

static TARGET_VNNI void dot4_q8_0(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q8_rows(0, n, w, a, astride, out, 4);
}

static TARGET_VNNI float dot_q4_0(int64_t n, const void *w, const void *a)
{
    float o;
    q8_rows(1, n, w, a, 0, &o, 1);
    return o;
}

static TARGET_VNNI void dot4_q4_0(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q8_rows(1, n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- Q4_K x Q8_K */

/* As vecdot_avx2.c: scales and mins of the 8 sub-blocks, one per byte. */
INLINE void q4k_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn)
{
    uint32_t w0, w1, w2;
    memcpy(&w0, p, 4);
    memcpy(&w1, p + 4, 4);
    memcpy(&w2, p + 8, 4);
    const uint32_t sc_lo = w0 & 0x3F3F3F3Fu, m_lo = w1 & 0x3F3F3F3Fu;
    const uint32_t sc_hi = (w2 & 0x0F0F0F0Fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 2) & 0x30303030u);
    *sc = sc_lo | (uint64_t)sc_hi << 32;
    *mn = m_lo | (uint64_t)m_hi << 32;
}

/* Group g of a Q4_K super-block (32 bytes of qs: values 64g+l in the low nibbles, 64g+32+l
 * in the high ones) becomes one 64-byte register in value order, matching one 64-byte load
 * of the activations: the 32 bytes twice, the upper copy shifted right by 4. maddubs gives
 * nibble x int8 pairs, vpdpwssd multiplies them by the sub-block scales (lanes 0..15 scale
 * 2g, 16..31 scale 2g+1) and accumulates. */
INLINE_VNNI void q4k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                          int R)
{
    float s[4] = {0, 0, 0, 0};
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    const __m512i sh = _mm512_setr_epi64(0, 0, 0, 0, 0x0004000400040004ll, 0x0004000400040004ll,
                                         0x0004000400040004ll, 0x0004000400040004ll);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 144) {
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        uint64_t sc, mn;
        q4k_scales(x + 4, &sc, &mn);
        const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m512i acc[4];
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_setzero_si512();
        for (int g = 0; g < 4; g++) {
            __m512i q = _mm512_broadcast_i64x4(ld256(x + 16 + 32 * g));
            __m512i wv = _mm512_and_si512(_mm512_srlv_epi16(q, sh), lo4);
            __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * g))),
                                             _mm256_set1_epi16((short)(2 * g + 1)), 1);
            __m512i scv = _mm512_permutexvar_epi16(idx, sc16);
            for (int r = 0; r < R; r++) {
                const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 64 * g;
                acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_maddubs_epi16(wv, ld512(q8)), scv);
            }
        }
        const __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
        const float dx = f16_at(x), mx = f16_at(x + 2);
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const int sumi = _mm512_reduce_add_epi32(acc[r]);
            const int summs = hsum256_i32(_mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), m16));
            const float yd = ld_f32(y);
            const float d = yd * dx, dmin = yd * mx;
            const float t1 = d * (float)sumi, t2 = dmin * (float)summs;
            s[r] += t1 - t2;
        }
    }
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

static TARGET_VNNI float dot_q4_K(int64_t n, const void *w, const void *a)
{
    float o;
    q4k_rows(n, w, a, 0, &o, 1);
    return o;
}

static TARGET_VNNI void dot4_q4_K(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q4k_rows(n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- Q6_K x Q8_K */

/* Layout as in vecdot_avx2.c. Chunk c (values 64c..64c+63) is quarters 0,1 (c even) or 2,3
 * (c odd) of half c/2: the low nibbles are one 64-byte load of ql (shifted by 4 for odd c),
 * the top bits come from the half's 32 qh bytes, broadcast and shifted per 256-bit half so
 * that bits 2k..2k+1 land at bits 4..5. The -32 offset is folded in through the bsums as in
 * the avx2 kernel. */
INLINE_VNNI void q6k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                          int R)
{
    float s[4] = {0, 0, 0, 0};
    const __m512i lo4 = _mm512_set1_epi8(0x0F), b45 = _mm512_set1_epi8(0x30);
    const __m512i shl42 = _mm512_setr_epi64(0x0004000400040004ll, 0x0004000400040004ll,
                                            0x0004000400040004ll, 0x0004000400040004ll,
                                            0x0002000200020002ll, 0x0002000200020002ll,
                                            0x0002000200020002ll, 0x0002000200020002ll);
    const __m512i shr02 = _mm512_setr_epi64(0, 0, 0, 0, 0x0002000200020002ll, 0x0002000200020002ll,
                                            0x0002000200020002ll, 0x0002000200020002ll);
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 210) {
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 192)));
        const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5));
        const __m512i s16z = _mm512_castsi256_si512(s16);
        __m512i acc[4];
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const __m512i L = ld512(x + 64 * h);
            const __m512i H = _mm512_broadcast_i64x4(ld256(x + 128 + 32 * h));
            for (int odd = 0; odd < 2; odd++) {
                const int c = 2 * h + odd;
                __m512i lo, hi;
                if (!odd) {
                    lo = _mm512_and_si512(L, lo4);
                    hi = _mm512_and_si512(_mm512_sllv_epi16(H, shl42), b45);
                } else {
                    lo = _mm512_and_si512(_mm512_srli_epi16(L, 4), lo4);
                    hi = _mm512_and_si512(_mm512_srlv_epi16(H, shr02), b45);
                }
                const __m512i q = _mm512_or_si512(lo, hi);
                /* scale of 16-bit lane i: scales[4c + i/8] */
                const __m512i idx = _mm512_setr_epi64(
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 1)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 1)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 2)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 2)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 3)),
                    (long long)(0x0001000100010001ull * (uint64_t)(4 * c + 3)));
                const __m512i scv = _mm512_permutexvar_epi16(idx, s16z);
                for (int r = 0; r < R; r++) {
                    const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 64 * c;
                    acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_maddubs_epi16(q, ld512(q8)), scv);
                }
            }
        }
        const float dx = f16_at(x + 208);
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const __m256i corr = _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), neg32);
            const int sumi = _mm512_reduce_add_epi32(acc[r]) + hsum256_i32(corr);
            const float t = dx * ld_f32(y);
            s[r] += t * (float)sumi;
        }
    }
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

static TARGET_VNNI float dot_q6_K(int64_t n, const void *w, const void *a)
{
    float o;
    q6k_rows(n, w, a, 0, &o, 1);
    return o;
}

static TARGET_VNNI void dot4_q6_K(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q6k_rows(n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- set */

void mlc_cpu_kernels_avx512(mlc_cpu_kernels *k)
{
    mlc_cpu_kernels_avx2(k);
    k->isa = "avx512";
    k->dot[MLC_TYPE_F32] = dot_f32;
    k->dot4[MLC_TYPE_F32] = dot4_f32;
    k->dot[MLC_TYPE_F16] = dot_f16;
    k->dot4[MLC_TYPE_F16] = dot4_f16;
    k->dot[MLC_TYPE_BF16] = dot_bf16;
    k->dot4[MLC_TYPE_BF16] = dot4_bf16;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni"))
        return;
#endif
    k->dot[MLC_TYPE_Q8_0] = dot_q8_0;
    k->dot4[MLC_TYPE_Q8_0] = dot4_q8_0;
    k->dot[MLC_TYPE_Q4_0] = dot_q4_0;
    k->dot4[MLC_TYPE_Q4_0] = dot4_q4_0;
    k->dot[MLC_TYPE_Q4_K] = dot_q4_K;
    k->dot4[MLC_TYPE_Q4_K] = dot4_q4_K;
    k->dot[MLC_TYPE_Q6_K] = dot_q6_K;
    k->dot4[MLC_TYPE_Q6_K] = dot4_q6_K;
}
