/* vecdot_avx2_k.c: AVX2 kernels for the K-quants Q2_K, Q3_K and Q5_K, and IQ4_XS, against
 * Q8_K activations (Q4_K and Q6_K are in vecdot_avx2.c).
 *
 * Same rules as vecdot_avx2.c: the integer sum of each super-block is exact in any order,
 * so SIMD computes it as it likes, then the float part repeats the scalar reference's
 * operations (vecdot.c) in its order: results bit-identical to it, and dot4 == four dots
 * (one body, R = 1 or 4 rows).
 *
 * The weights go into maddubs as unsigned levels (Q2_K 0..3, Q3_K 0..7, Q5_K 0..31) against
 * the signed activations, then one madd by the sub-block scales (16-bit) widens and scales
 * the pairs. Offsets (Q3_K's -4, the mins of Q2_K and Q5_K) come from the activation's
 * bsums (sums of 16 values) through one more madd. IQ4_XS's table values are signed: their
 * signs move onto the activations, as for Q4_0 in vecdot_avx2.c. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 16")

/* As vecdot_avx2.c: prefetch this far ahead in the weight row. */
#define PF_DIST 2048

INLINE void prefetch_span(const uint8_t *p, size_t bytes)
{
    UNROLL
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + PF_DIST + o, _MM_HINT_T0);
}

INLINE __m256i ld256(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

INLINE float ld_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

INLINE float f16_at(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return _cvtsh_ss(v);
}

/* [sum a, sum b] of two vectors of 8 int32. */
INLINE void hsum2(__m256i a, __m256i b, int *sa, int *sb)
{
    __m256i h = _mm256_hadd_epi32(a, b);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s = _mm_hadd_epi32(s, s);
    *sa = _mm_cvtsi128_si32(s);
    *sb = _mm_extract_epi32(s, 1);
}

/* 16 int16 lanes: the scale bytes t and t + 1 of sc_b (16 bytes, in both 128-bit halves),
 * t in lanes 0..7 and t + 1 in lanes 8..15, sign-extended (the shuffle puts the byte in the
 * high half of each lane, index 0xFF zeroing the low half, and the shift brings it down). */
INLINE __m256i scale_pair(__m256i sc_b, int t)
{
    const __m256i sel = _mm256_set_m128i(_mm_set1_epi16((short)(((t + 1) << 8) | 0xFF)),
                                         _mm_set1_epi16((short)((t << 8) | 0xFF)));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(sc_b, sel), 8);
}

/* The 2-bit levels (0..3) of values 128h + 32j + l, l < 32, from the 32 qs bytes q of half h. */
INLINE __m256i levels2(__m256i q, int j)
{
    return _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
}

/* ---------------------------------------------------------------- Q2_K */

/* Layout: scales[16] (scale | min << 4), qs[64], f16 d @80, dmin @82. Quarter j of half h
 * (values 128h + 32j + l) covers sub-blocks 8h + 2j (l < 16) and 8h + 2j + 1: the two
 * 128-bit halves of one register. */
INLINE void q2k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    float s[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 84) {
        prefetch_span(x, 84);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        const __m128i raw = _mm_loadu_si128((const __m128i *)x);
        const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
        const __m256i sc_b = _mm256_broadcastsi128_si256(lo);
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int h = 0; h < 2; h++) {
            const __m256i q = ld256(x + 16 + 32 * h);
            UNROLL
            for (int j = 0; j < 4; j++) {
                const __m256i lv = levels2(q, j), scv = scale_pair(sc_b, 8 * h + 2 * j);
                UNROLL
                for (int r = 0; r < R; r++) {
                    const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 128 * h + 32 * j;
                    const __m256i p = _mm256_maddubs_epi16(lv, ld256(q8)); /* pairs <= 2*3*128 */
                    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const float dx = f16_at(x + 80), mx = f16_at(x + 82);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const __m256i mins = _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), mins16);
            int sumi, summs;
            hsum2(acc[r], mins, &sumi, &summs);
            const float yd = ld_f32(y);
            const float d = yd * dx, dmin = yd * mx;
            const float t1 = d * (float)sumi, t2 = dmin * (float)summs;
            s[r] += t1 - t2;
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

/* ---------------------------------------------------------------- Q3_K */

/* The 16 six-bit scales of a Q3_K block (scales[12] at p), minus 32, as int8. */
INLINE __m128i q3k_scales(const uint8_t *p)
{
    int8_t sc[16];
    UNROLL
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? p[g] & 0xF : p[g - 8] >> 4;
        sc[g] = (int8_t)((lo | (((p[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32);
    }
    return _mm_loadu_si128((const __m128i *)sc);
}

/* Layout: hmask[32], qs[64] @32, scales[12] @96, f16 d @108. Value 128h + 32j + l has its
 * third bit at bit 4h + j of hmask[l]: the level q (0..7) goes through maddubs and the -4
 * comes off as -4 * scale * bsum per sub-block. */
INLINE void q3k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    float s[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 110) {
        prefetch_span(x, 110);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        const __m128i sc8 = q3k_scales(x + 96);
        const __m256i sc_b = _mm256_broadcastsi128_si256(sc8);
        const __m256i neg4 = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_cvtepi8_epi16(sc8)), 2);
        const __m256i hm = ld256(x);
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int h = 0; h < 2; h++) {
            const __m256i q = ld256(x + 32 + 32 * h);
            UNROLL
            for (int j = 0; j < 4; j++) {
                const int bit = 4 * h + j; /* moved to bit 2 of each byte, then masked */
                const __m256i hb = bit >= 2 ? _mm256_srli_epi16(hm, bit - 2) : _mm256_slli_epi16(hm, 2 - bit);
                const __m256i lv = _mm256_or_si256(levels2(q, j), _mm256_and_si256(hb, _mm256_set1_epi8(4)));
                const __m256i scv = scale_pair(sc_b, 8 * h + 2 * j);
                UNROLL
                for (int r = 0; r < R; r++) {
                    const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 128 * h + 32 * j;
                    const __m256i p = _mm256_maddubs_epi16(lv, ld256(q8)); /* pairs <= 2*7*128 */
                    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const float dx = f16_at(x + 108);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const __m256i off = _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), neg4);
            int sumi, unused;
            hsum2(_mm256_add_epi32(acc[r], off), _mm256_setzero_si256(), &sumi, &unused);
            const float t = dx * ld_f32(y);
            s[r] += t * (float)sumi;
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

/* ---------------------------------------------------------------- Q5_K */

/* As vecdot_avx2.c's Q4_K: the 8 six-bit scales and mins, one per byte, from scales[12]. */
INLINE void k4_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn)
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

/* [m0, m0, m1, m1, .., m7, m7] as 16 int16, lined up with the 16 bsums. */
INLINE __m256i k4_mins16(uint64_t mn)
{
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
}

/* Layout: f16 d, dmin; scales[12] @4; qh[32] @16; qs[128] @48 in 4 groups of 32 bytes,
 * group g holding values 64g + l (low nibble, fifth bit at bit 2g of qh[l]) and 64g + 32 + l
 * (high nibble, bit 2g + 1). */
INLINE void q5k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    float s[4] = {0, 0, 0, 0};
    const __m256i lo4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 176) {
        prefetch_span(x, 176);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        uint64_t sc, mn;
        k4_scales(x + 4, &sc, &mn);
        const __m256i qh = ld256(x + 16);
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m256i q = ld256(x + 48 + 32 * g);
            /* bit 2g (2g + 1) of each qh byte moved to bit 4 */
            const __m256i h0 = 2 * g <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * g) : _mm256_srli_epi16(qh, 2 * g - 4);
            const __m256i h1 = 2 * g + 1 <= 4 ? _mm256_slli_epi16(qh, 3 - 2 * g) : _mm256_srli_epi16(qh, 2 * g - 3);
            const __m256i ql = _mm256_or_si256(_mm256_and_si256(q, lo4), _mm256_and_si256(h0, b16));
            const __m256i qv = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), lo4), _mm256_and_si256(h1, b16));
            const __m256i s0 = _mm256_set1_epi16((short)((sc >> (16 * g)) & 0xFF));
            const __m256i s1 = _mm256_set1_epi16((short)((sc >> (16 * g + 8)) & 0xFF));
            UNROLL
            for (int r = 0; r < R; r++) {
                const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 64 * g;
                /* 5-bit x int8 pairs <= 2*31*128; times a 6-bit scale fits int32 */
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ql, ld256(q8)), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(qv, ld256(q8 + 32)), s1);
                acc[r] = _mm256_add_epi32(acc[r], _mm256_add_epi32(p0, p1));
            }
        }
        const __m256i m16 = k4_mins16(mn);
        const float dx = f16_at(x), mx = f16_at(x + 2);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const __m256i mins = _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), m16);
            int sumi, summs;
            hsum2(acc[r], mins, &sumi, &summs);
            const float yd = ld_f32(y);
            const float d = yd * dx, dmin = yd * mx;
            const float t1 = d * (float)sumi, t2 = dmin * (float)summs;
            s[r] += t1 - t2;
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

/* ---------------------------------------------------------------- IQ4_XS */

/* The 8 six-bit scales of an IQ4_XS block, minus 32: scales_h (u16 @2) and scales_l[4]. */
INLINE void iq4xs_scales(const uint8_t *x, int *ls)
{
    const int sh = x[2] | (x[3] << 8);
    UNROLL
    for (int ib = 0; ib < 8; ib++)
        ls[ib] = (((x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
}

/* The 32 values of an IQ4_XS sub-block (16 nibble bytes at p, as Q4_0's) as signed bytes,
 * looked up in ggml's kvalues_iq4nl table. */
INLINE __m256i iq4_values(const uint8_t *p)
{
    const __m256i table = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    const __m128i q = _mm_loadu_si128((const __m128i *)p);
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    return _mm256_shuffle_epi8(table, nib);
}

/* Layout: f16 d, u16 scales_h, scales_l[4], qs[128] @8 (16 bytes per 32-value sub-block).
 * The signed values go through maddubs with their signs moved onto the activations (exact
 * for the [-127, 127] Q8_K writes; pairs <= 2 * 127 * 127), then one madd by the scale. */
INLINE void iq4xs_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                       int R)
{
    float s[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 136) {
        prefetch_span(x, 136);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        int ls[8];
        iq4xs_scales(x, ls);
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int ib = 0; ib < 8; ib++) {
            const __m256i w = iq4_values(x + 8 + 16 * ib), wa = _mm256_abs_epi8(w);
            const __m256i scv = _mm256_set1_epi16((short)ls[ib]);
            UNROLL
            for (int r = 0; r < R; r++) {
                const __m256i q8 = ld256(a + (size_t)r * astride + yo + 4 + 32 * ib);
                const __m256i p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(q8, w));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, scv));
            }
        }
        const float dx = f16_at(x);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            int sumi, unused;
            hsum2(acc[r], _mm256_setzero_si256(), &sumi, &unused);
            const float t = dx * ld_f32(y);
            s[r] += t * (float)sumi;
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

/* ---------------------------------------------------------------- set */

#define K_DOTS(name, rows)                                                                     \
    static TARGET float dot_##name(int64_t n, const void *w, const void *a)                  \
    {                                                                                         \
        float o;                                                                              \
        rows(n, w, a, 0, &o, 1);                                                              \
        return o;                                                                             \
    }                                                                                         \
    static TARGET void dot4_##name(int64_t n, const void *w, const void *a, size_t astride,  \
                                   float *out)                                                \
    {                                                                                         \
        rows(n, w, a, astride, out, 4);                                                       \
    }

K_DOTS(q2_K, q2k_rows)
K_DOTS(q3_K, q3k_rows)
K_DOTS(q5_K, q5k_rows)
K_DOTS(iq4_xs, iq4xs_rows)

void mlc_cpu_kernels_avx2_k(mlc_cpu_kernels *k)
{
    k->dot[MLC_TYPE_Q2_K] = dot_q2_K;
    k->dot4[MLC_TYPE_Q2_K] = dot4_q2_K;
    k->dot[MLC_TYPE_Q3_K] = dot_q3_K;
    k->dot4[MLC_TYPE_Q3_K] = dot4_q3_K;
    k->dot[MLC_TYPE_Q5_K] = dot_q5_K;
    k->dot4[MLC_TYPE_Q5_K] = dot4_q5_K;
    k->dot[MLC_TYPE_IQ4_XS] = dot_iq4_xs;
    k->dot4[MLC_TYPE_IQ4_XS] = dot4_iq4_xs;
}
