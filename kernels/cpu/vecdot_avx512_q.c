/* vecdot_avx512_q.c: AVX-512 VNNI kernels for the 5-bit, affine and non-linear 32-value
 * block types: Q5_0 and IQ4_NL against Q8_0 activations, Q4_1 and Q5_1 against Q8_1.
 *
 * Same rules as vecdot_avx512.c: 256-bit vpdpbusd for the exact integer block sums, then
 * the scalar reference's float operations in its order, so every result is bit-identical
 * to vecdot.c's; dot, dot4 and dotw4 share one block body.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so the weights go in as their unsigned
 * levels q (0..31) against the activations as they are: for Q4_1/Q5_1 that is the whole
 * integer sum; for Q5_0 (values q - 16) the term 16 * sum a comes off, taken from one more
 * vpdpbusd with 16 in every byte. IQ4_NL's table values v (-127..113) go in as v + 128 and
 * 128 * sum a comes off the same way. Exact for every int8 activation. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET_VNNI \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE                                             \
    static inline __attribute__((always_inline, target( \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

#define UNROLL _Pragma("GCC unroll 16")

/* As vecdot_avx512.c (see there): prefetch distances for one row and for four rows. */
#define PF_DIST 2048
#define WPF_ROWS 4
#define WPF_FAR 24

enum { W_Q5_0, W_Q4_1, W_Q5_1, W_IQ4_NL };

INLINE size_t w_bytes(int kind)
{
    static const size_t B[] = {22, 20, 24, 18};
    return B[kind];
}

/* Activation block bytes: Q8_0 (34: f16 d, i8 qs[32]) or Q8_1 (36: f16 d, f16 s, qs). */
INLINE size_t a_bytes(int kind)
{
    return kind == W_Q5_0 || kind == W_IQ4_NL ? 34 : 36;
}

INLINE uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

INLINE __m256i ld256(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* f16 values of cnt (<= 4) blocks stride bytes apart, as floats (other lanes 0). */
INLINE __m128 f16x4(const uint8_t *p, size_t stride, int cnt)
{
    uint64_t v = 0;
    UNROLL
    for (int i = 0; i < cnt; i++)
        v |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * i);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* [sum v0, sum v1, sum v2, sum v3] of four vectors of 8 int32. */
INLINE __m128i hsum4x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
    __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
    __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
    return _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}

/* The 32 levels of a block as bytes: nibbles of the 16 bytes at qs (low = values 0..15,
 * high = 16..31), plus 16 where bit i of the u32 at qh is set (qh NULL: 4-bit). The bit
 * expansion is one masked byte add: mask bit i is bit i of qh. */
INLINE __m256i levels32(const uint8_t *qs, const uint8_t *qh)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    if (qh) {
        uint32_t h;
        memcpy(&h, qh, 4);
        v = _mm256_mask_add_epi8(v, (__mmask32)h, v, _mm256_set1_epi8(0x10));
    }
    return v;
}

/* A block's unsigned weight bytes: 5-bit and 4-bit levels, or IQ4_NL's table + 128. */
INLINE __m256i w_levels(int kind, const uint8_t *xb)
{
    if (kind == W_IQ4_NL) {
        const __m256i t128 = _mm256_broadcastsi128_si256(_mm_setr_epi8(
            1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181,
            (char)197, (char)217, (char)241));
        return _mm256_shuffle_epi8(t128, levels32(xb + 2, NULL));
    }
    if (kind == W_Q5_0)
        return levels32(xb + 6, xb + 2);
    if (kind == W_Q4_1)
        return levels32(xb + 4, NULL);
    return levels32(xb + 8, xb + 4);
}

/* 8 int32 lanes summing to one block's integer dot: levels lv against 32 activations a. */
INLINE __m256i block_dot(int kind, __m256i lv, __m256i a)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i v = _mm256_dpbusd_epi32(z, lv, a);
    if (kind == W_Q5_0)
        v = _mm256_sub_epi32(v, _mm256_dpbusd_epi32(z, _mm256_set1_epi8(16), a));
    if (kind == W_IQ4_NL)
        v = _mm256_sub_epi32(v, _mm256_dpbusd_epi32(z, _mm256_set1_epi8((char)128), a));
    return v;
}

/* The part of block_dot that depends on the activations only, negated: -16 * sum a for
 * Q5_0, -128 * sum a for IQ4_NL, 0 for the affine kinds; so that block_dot is
 * vpdpbusd(offset_sum, lv, a) (the same integer sum, computed once for four rows). */
INLINE __m256i act_offset(int kind, __m256i a)
{
    const __m256i z = _mm256_setzero_si256();
    if (kind == W_Q5_0)
        return _mm256_sub_epi32(z, _mm256_dpbusd_epi32(z, _mm256_set1_epi8(16), a));
    if (kind == W_IQ4_NL)
        return _mm256_sub_epi32(z, _mm256_dpbusd_epi32(z, _mm256_set1_epi8((char)128), a));
    return z;
}

/* One block group's float terms from its integer sums, as the reference: (float)sumi *
 * (dx * dy), plus m * s for the affine kinds; dy and sy are the activation blocks' f16
 * scale and sum as floats. */
INLINE __m128 group_terms(int kind, const __m256i *v, __m128 dx, __m128 mx, __m128 dy, __m128 sy)
{
    const __m128 sumf = _mm_cvtepi32_ps(hsum4x8(v[0], v[1], v[2], v[3]));
    __m128 p = _mm_mul_ps(sumf, _mm_mul_ps(dx, dy));
    if (kind == W_Q4_1 || kind == W_Q5_1)
        p = _mm_add_ps(p, _mm_mul_ps(mx, sy));
    return p;
}

INLINE __m128 block_terms(int kind, const __m256i *v, __m128 dx, __m128 mx, const uint8_t *yb,
                          int cnt)
{
    const size_t ab = a_bytes(kind);
    const int affine = kind == W_Q4_1 || kind == W_Q5_1;
    return group_terms(kind, v, dx, mx, f16x4(yb, ab, cnt),
                       affine ? f16x4(yb + 2, ab, cnt) : _mm_setzero_ps());
}

/* Blocks b .. b+cnt-1 (cnt <= 4) of one weight row against R activation rows. */
INLINE void q_group(int kind, const uint8_t *x, const uint8_t *a, size_t astride, int64_t b,
                    int cnt, __m128 *p, int R)
{
    const size_t wb = w_bytes(kind), ab = a_bytes(kind), ao = ab - 32;
    const uint8_t *xb = x + (size_t)b * wb;
    __m256i lv[4];
    UNROLL
    for (int k = 0; k < 4; k++)
        lv[k] = k < cnt ? w_levels(kind, xb + k * wb) : _mm256_setzero_si256();
    const __m128 dx = f16x4(xb, wb, cnt);
    const __m128 mx = kind == W_Q4_1 || kind == W_Q5_1 ? f16x4(xb + 2, wb, cnt) : _mm_setzero_ps();
    UNROLL
    for (int r = 0; r < R; r++) {
        const uint8_t *yb = a + (size_t)r * astride + (size_t)b * ab;
        __m256i v[4];
        UNROLL
        for (int k = 0; k < 4; k++)
            v[k] = k < cnt ? block_dot(kind, lv[k], ld256(yb + ab * k + ao)) : _mm256_setzero_si256();
        p[r] = block_terms(kind, v, dx, mx, yb, cnt);
    }
}

/* Blocks b .. b+cnt-1 of four weight rows (stride ws) against one activation row: the
 * activation blocks, their offset sums and scales taken once for the four rows. */
INLINE void q_group_w(int kind, const uint8_t *x, size_t ws, const uint8_t *a, int64_t b,
                      int cnt, __m128 *p)
{
    const size_t wb = w_bytes(kind), ab = a_bytes(kind), ao = ab - 32;
    const int affine = kind == W_Q4_1 || kind == W_Q5_1;
    const uint8_t *yb = a + (size_t)b * ab;
    __m256i av[4], off[4];
    UNROLL
    for (int k = 0; k < 4; k++) {
        av[k] = k < cnt ? ld256(yb + ab * k + ao) : _mm256_setzero_si256();
        off[k] = act_offset(kind, av[k]);
    }
    const __m128 dy = f16x4(yb, ab, cnt);
    const __m128 sy = affine ? f16x4(yb + 2, ab, cnt) : _mm_setzero_ps();
    UNROLL
    for (int r = 0; r < 4; r++) {
        const uint8_t *xb = x + (size_t)r * ws + (size_t)b * wb;
        __m256i v[4];
        UNROLL
        for (int k = 0; k < 4; k++)
            v[k] = k < cnt ? _mm256_dpbusd_epi32(off[k], w_levels(kind, xb + k * wb), av[k])
                           : _mm256_setzero_si256();
        const __m128 dx = f16x4(xb, wb, cnt);
        const __m128 mx = affine ? f16x4(xb + 2, wb, cnt) : _mm_setzero_ps();
        p[r] = group_terms(kind, v, dx, mx, dy, sy);
    }
}

/* s[r] += p[r][k] for k < cnt, in order (the reference's sequential sum); four rows go
 * transposed to block columns, one vector add per block doing each row's scalar add. */
INLINE void q_accumulate(const __m128 *p, int cnt, float *s, __m128 *s4, int R)
{
    if (R == 1) {
        float pf[4];
        _mm_storeu_ps(pf, p[0]);
        UNROLL
        for (int k = 0; k < cnt; k++)
            s[0] += pf[k];
        return;
    }
    const __m128 t0 = _mm_unpacklo_ps(p[0], p[1]), t1 = _mm_unpackhi_ps(p[0], p[1]);
    const __m128 t2 = _mm_unpacklo_ps(p[2], p[3]), t3 = _mm_unpackhi_ps(p[2], p[3]);
    __m128 c[4];
    c[0] = _mm_movelh_ps(t0, t2);
    c[1] = _mm_movehl_ps(t2, t0);
    c[2] = _mm_movelh_ps(t1, t3);
    c[3] = _mm_movehl_ps(t3, t1);
    UNROLL
    for (int k = 0; k < cnt; k++)
        *s4 = _mm_add_ps(*s4, c[k]);
}

INLINE void q_rows(int kind, int64_t n, const uint8_t *x, const uint8_t *a, size_t astride,
                   float *out, int R)
{
    const int64_t nb = n / 32;
    const size_t wb = w_bytes(kind);
    float s[1] = {0};
    __m128 s4 = _mm_setzero_ps(), p[4];
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        UNROLL
        for (size_t o = 0; o < 4 * wb; o += 64)
            _mm_prefetch((const char *)x + (size_t)b * wb + PF_DIST + o, _MM_HINT_T0);
        q_group(kind, x, a, astride, b, 4, p, R);
        q_accumulate(p, 4, s, &s4, R);
    }
    if (b < nb) {
        q_group(kind, x, a, astride, b, (int)(nb - b), p, R);
        q_accumulate(p, (int)(nb - b), s, &s4, R);
    }
    if (R == 1)
        out[0] = s[0];
    else
        _mm_storeu_ps(out, s4);
}

INLINE void q_wrows(int kind, int64_t n, const uint8_t *x, size_t ws, const uint8_t *a, float *out)
{
    const int64_t nb = n / 32;
    const size_t wb = w_bytes(kind);
    float s[1] = {0};
    __m128 s4 = _mm_setzero_ps(), p[4];
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        UNROLL
        for (int r = 0; r < 4; r++) {
            const char *xr = (const char *)x + (size_t)r * ws + (size_t)b * wb;
            UNROLL
            for (size_t o = 0; o < 4 * wb; o += 64) {
                _mm_prefetch(xr + WPF_ROWS * ws + o, _MM_HINT_T0);
                _mm_prefetch(xr + WPF_FAR * ws + o, _MM_HINT_T1);
            }
        }
        q_group_w(kind, x, ws, a, b, 4, p);
        q_accumulate(p, 4, s, &s4, 4);
    }
    if (b < nb) {
        q_group_w(kind, x, ws, a, b, (int)(nb - b), p);
        q_accumulate(p, (int)(nb - b), s, &s4, 4);
    }
    _mm_storeu_ps(out, s4);
}

#define Q_DOTS(name, kind)                                                                      \
    static TARGET_VNNI float dot_##name(int64_t n, const void *w, const void *a)               \
    {                                                                                           \
        float o;                                                                                \
        q_rows(kind, n, w, a, 0, &o, 1);                                                        \
        return o;                                                                               \
    }                                                                                           \
    static TARGET_VNNI void dot4_##name(int64_t n, const void *w, const void *a, size_t as,    \
                                        float *out)                                             \
    {                                                                                           \
        q_rows(kind, n, w, a, as, out, 4);                                                      \
    }                                                                                           \
    static TARGET_VNNI void dotw4_##name(int64_t n, const void *w, size_t ws, const void *a,   \
                                         float *out)                                            \
    {                                                                                           \
        q_wrows(kind, n, w, ws, a, out);                                                        \
    }

Q_DOTS(q5_0, W_Q5_0)
Q_DOTS(q4_1, W_Q4_1)
Q_DOTS(q5_1, W_Q5_1)
Q_DOTS(iq4_nl, W_IQ4_NL)

void mlc_cpu_kernels_avx512_q(mlc_cpu_kernels *k)
{
    k->dot[MLC_TYPE_Q5_0] = dot_q5_0;
    k->dot4[MLC_TYPE_Q5_0] = dot4_q5_0;
    k->dotw4[MLC_TYPE_Q5_0] = dotw4_q5_0;
    k->dot[MLC_TYPE_Q4_1] = dot_q4_1;
    k->dot4[MLC_TYPE_Q4_1] = dot4_q4_1;
    k->dotw4[MLC_TYPE_Q4_1] = dotw4_q4_1;
    k->dot[MLC_TYPE_Q5_1] = dot_q5_1;
    k->dot4[MLC_TYPE_Q5_1] = dot4_q5_1;
    k->dotw4[MLC_TYPE_Q5_1] = dotw4_q5_1;
    k->dot[MLC_TYPE_IQ4_NL] = dot_iq4_nl;
    k->dot4[MLC_TYPE_IQ4_NL] = dot4_iq4_nl;
    k->dotw4[MLC_TYPE_IQ4_NL] = dotw4_iq4_nl;
}
