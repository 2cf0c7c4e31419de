/* vecdot_avx2.c: the AVX2+FMA+F16C kernel set.
 *
 * Quantized weights (Q8_0, Q4_0, Q5_0 against Q8_0 activations; Q4_1, Q5_1 against Q8_1;
 * Q4_K, Q6_K against Q8_K) give
 * results bit-identical to the scalar reference of vecdot.c: the integer sum of each block
 * (or super-block) is exact whatever the order, so SIMD computes it however is fastest, and
 * the float part then repeats the reference's operations in the reference's order, block by
 * block. The activation quantizers are bit-identical too (same IEEE operations, same
 * rounding trick, F16C for the f16 scale, which rounds to nearest even like
 * mlc_fp32_to_fp16). Float weights (F32, F16, BF16) accumulate in SIMD lanes with FMA;
 * their activations are F32 here (rounded to f16/bf16 first, so the values are those of the
 * scalar set), which spares converting the activation rows again for every weight row.
 *
 * The one precondition: the Q8_0, Q4_0, Q5_0 and IQ4_NL dots move the weights' signs onto the
 * activations (maddubs multiplies unsigned by signed bytes), which is exact for activation
 * values in [-127, 127]: all that mlc_cpu_act_q8_0 writes for inputs that are not NaN.
 *
 * dot and dot4 are one body each (the *_rows functions, R = 1 or 4 rows), so dot4 gives
 * exactly the four results of four dots. Everything is compiled with target attributes, so
 * the file builds without -mavx2; vecdot.c calls mlc_cpu_kernels_avx2 only when CPUID says
 * the CPU has AVX2, FMA and F16C. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

/* Float sums must round exactly as vecdot.c's: no a*b+c contracted into one FMA. GCC's
 * -std=c11 already implies -ffp-contract=off; clang contracts by default. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* The small loops over rows (R), registers and blocks must disappear so that the arrays
 * they index live in registers; GCC's -O2 does not fully unroll them by itself. */
#define UNROLL _Pragma("GCC unroll 16")

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

/* An f16 at p as float (F16C: exact, like mlc_fp16_to_fp32). */
INLINE float f16_at(const uint8_t *p)
{
    return _cvtsh_ss(ld16(p));
}

/* Weight rows stream from memory once per token in generation; the hardware prefetchers
 * alone leave a third of the bandwidth unused (bench_vecdot.c: 6 -> 9 GB/s for Q8_0), so
 * each kernel asks for the lines PF_DIST bytes ahead of what it is reading. Prefetches
 * never fault, so running past the end of the matrix is harmless. */
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

INLINE __m128i ld128(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* The f16 scales of cnt (<= 4) blocks stride bytes apart, as floats in lanes 0..cnt-1 (the
 * others 0). Gathered through a 64-bit register: cheaper than inserting words one by one. */
INLINE __m128 f16x4(const uint8_t *p, size_t stride, int cnt)
{
    uint64_t v = 0;
    UNROLL
    for (int i = 0; i < cnt; i++)
        v |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * i);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* Sum of the 8 int32 lanes of v. */
INLINE int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Lane sums of four vectors of 8 int32: [sum v0, sum v1, sum v2, sum v3]. A transposing
 * tree (unpack 32, unpack 64, halves) costs 11 instructions for the four sums, against 4x5
 * for four separate horizontal sums. */
INLINE __m128i hsum4x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    /* per 128-bit lane: [v0 a, v1 a, v0 b, v1 b] and [v2 a, v3 a, v2 b, v3 b] */
    __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
    __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
    /* per 128-bit lane: [v0, v1, v2, v3] */
    __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
    return _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}

/* Truncates 32 int32 (a..d, 8 each, in order) to their low bytes, as a C cast to int8_t
 * does. Masking first makes the unsigned-saturating packs exact; the packs interleave
 * 128-bit lanes, which the final dword permutation undoes. */
INLINE __m256i low_bytes_32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    const __m256i ff = _mm256_set1_epi32(0xFF);
    __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, ff), _mm256_and_si256(b, ff));
    __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, ff), _mm256_and_si256(d, ff));
    __m256i abcd = _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ggml's nearest_int on 8 lanes, as int32: the float bits of v + 1.5*2^23, mantissa minus
 * 2^22. The same IEEE add as the scalar code, so NaN and out-of-range inputs give the same
 * (meaningless) integers too. */
INLINE __m256i nearest_int8(__m256 v)
{
    __m256i b = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007FFFFF)),
                            _mm256_set1_epi32(0x00400000));
}

/* max(|x|, prev) lane by lane, a NaN x leaving prev: maxps returns its second operand when
 * either is NaN, which ignores NaNs as the reference's fmaxf and its strict comparison do
 * (quiet ones: glibc's fmaxf returns NaN for a signaling NaN, which no arithmetic makes). */
INLINE __m256 max_abs(__m256 x, __m256 prev)
{
    return _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), prev);
}

INLINE float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* ---------------------------------------------------------------- activations */

/* Q8_0 blocks (34 B: f16 d, i8 qs[32]) exactly as mlc_cpu_act_q8_0. */
static TARGET void act_q8_0(const float *x, void *a, int64_t n)
{
    uint8_t *b = a;
    for (int64_t i = 0; i < n; i += MLC_QK8_0, b += 34, x += MLC_QK8_0) {
        __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
        __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
        __m256 m = max_abs(x0, _mm256_setzero_ps());
        m = max_abs(x1, m);
        m = max_abs(x2, m);
        m = max_abs(x3, m);
        const float amax = hmax8(m);
        const float d = amax / 127.f, id = amax != 0 ? 127.f / amax : 0.0f;
        const uint16_t h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(b, &h, 2);
        const __m256 vid = _mm256_set1_ps(id);
        /* Only the low byte of nearest_int is stored, and the mantissa trick's low byte is
         * that of the float bits: the subtraction inside nearest_int8 does not change it. */
        __m256i q = low_bytes_32(nearest_int8(_mm256_mul_ps(x0, vid)),
                                 nearest_int8(_mm256_mul_ps(x1, vid)),
                                 nearest_int8(_mm256_mul_ps(x2, vid)),
                                 nearest_int8(_mm256_mul_ps(x3, vid)));
        _mm256_storeu_si256((__m256i *)(b + 2), q);
    }
}

/* Q8_K blocks (292 B: f32 d, i8 qs[256], i16 bsums[16]) exactly as mlc_cpu_act_q8_K. */
static TARGET void act_q8_K(const float *x, void *a, int64_t n)
{
    uint8_t *b = a;
    for (int64_t i = 0; i < n; i += MLC_QK_K, b += MLC_Q8_K_BYTES, x += MLC_QK_K) {
        __m256 m0 = _mm256_setzero_ps(), m1 = m0;
        for (int j = 0; j < MLC_QK_K; j += 16) {
            m0 = max_abs(_mm256_loadu_ps(x + j), m0);
            m1 = max_abs(_mm256_loadu_ps(x + j + 8), m1);
        }
        const float amax = hmax8(_mm256_max_ps(m0, m1));
        int8_t *qs = (int8_t *)(b + 4);
        float d = 0;
        if (amax == 0) {
            memset(qs, 0, MLC_QK_K);
        } else {
            /* The reference keeps the first value of largest magnitude (strict >). */
            const __m256 vamax = _mm256_set1_ps(amax);
            int first = 0;
            for (int j = 0; j < MLC_QK_K; j += 8) {
                __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + j));
                int mask = _mm256_movemask_ps(_mm256_cmp_ps(ax, vamax, _CMP_EQ_OQ));
                if (mask) {
                    first = j + __builtin_ctz((unsigned)mask);
                    break;
                }
            }
            const float iscale = -127.f / x[first];
            const __m256 vis = _mm256_set1_ps(iscale);
            const __m256i lim = _mm256_set1_epi32(127);
            for (int j = 0; j < MLC_QK_K; j += 32) {
                __m256i q[4];
                UNROLL
                for (int k = 0; k < 4; k++) {
                    __m256 v = _mm256_mul_ps(vis, _mm256_loadu_ps(x + j + 8 * k));
                    q[k] = _mm256_min_epi32(nearest_int8(v), lim);
                }
                _mm256_storeu_si256((__m256i *)(qs + j), low_bytes_32(q[0], q[1], q[2], q[3]));
            }
            d = 1 / iscale;
        }
        /* bsums: sums of 16 values. sad against 0 sums 8 bytes as unsigned; biasing the
         * int8 by 128 (xor 0x80) makes that exact, and 16*128 comes off at the end. */
        int16_t bsums[16];
        for (int g = 0; g < 16; g += 2) {
            __m128i v = _mm_xor_si128(ld128((const uint8_t *)qs + 16 * g), _mm_set1_epi8((char)0x80));
            __m128i w = _mm_xor_si128(ld128((const uint8_t *)qs + 16 * g + 16), _mm_set1_epi8((char)0x80));
            __m128i sv = _mm_sad_epu8(v, _mm_setzero_si128()), sw = _mm_sad_epu8(w, _mm_setzero_si128());
            bsums[g] = (int16_t)(_mm_cvtsi128_si32(sv) + _mm_extract_epi16(sv, 4) - 2048);
            bsums[g + 1] = (int16_t)(_mm_cvtsi128_si32(sw) + _mm_extract_epi16(sw, 4) - 2048);
        }
        memcpy(b, &d, 4);
        memcpy(b + 4 + MLC_QK_K, bsums, sizeof bsums);
    }
}

/* F16 weights: activations rounded to f16 (F16C, nearest even, as mlc_fp32_to_fp16) but
 * kept as F32, so the dot kernels convert only the weights. */
static TARGET void act_f16_as_f32(const float *x, void *a, int64_t n)
{
    float *y = a;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) {
        const float v = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
        memcpy(y + i, &v, 4); /* the row may be unaligned */
    }
}

/* BF16 weights: activations rounded to bf16 as mlc_fp32_to_bf16 (nearest even; NaN kept
 * quiet), kept as F32. */
static TARGET void act_bf16_as_f32(const float *x, void *a, int64_t n)
{
    float *y = a;
    int64_t i = 0;
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u), one = _mm256_set1_epi32(1);
    const __m256i bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x00400000);
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), hi);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
        __m256i qn = _mm256_or_si256(_mm256_and_si256(u, hi), quiet);
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_blendv_epi8(r, qn, nan)));
    }
    for (; i < n; i++) {
        const float v = mlc_bf16_to_fp32(mlc_fp32_to_bf16(x[i]));
        memcpy(y + i, &v, 4);
    }
}

/* ---------------------------------------------------------------- F32, F16, BF16 */

/* 8 weights from element i as floats. t is a constant after inlining. */
INLINE __m256 ldw8(uint32_t t, const uint8_t *w, int64_t i)
{
    if (t == MLC_TYPE_F32)
        return _mm256_loadu_ps((const float *)(const void *)(w + 4 * i));
    __m128i h = ld128(w + 2 * i);
    if (t == MLC_TYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Dots of one float weight row with R F32 activation rows. Two accumulators per row of 8
 * lanes (chunks of 16); a last full chunk of 8 goes to acc 0, a partial one (copied to a
 * zero-padded buffer: no load past the row) to acc 1. Fixed lane assignment and final
 * reduction: dot and dot4 round identically. */
INLINE void fdot_rows(uint32_t t, int64_t n, const uint8_t *w, const uint8_t *a, size_t astride,
                      float *out, int R)
{
    const size_t ws = t == MLC_TYPE_F32 ? 4 : 2;
    const float *y[4];
    UNROLL
    for (int r = 0; r < R; r++)
        y[r] = (const float *)(const void *)(a + (size_t)r * astride);
    __m256 acc[4][2];
    UNROLL
    for (int r = 0; r < R; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        prefetch_span(w + ws * (size_t)i, 16 * ws);
        __m256 w0 = ldw8(t, w, i), w1 = ldw8(t, w, i + 8);
        UNROLL
        for (int r = 0; r < R; r++) {
            acc[r][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y[r] + i), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(y[r] + i + 8), acc[r][1]);
        }
    }
    if (i + 8 <= n) {
        __m256 w0 = ldw8(t, w, i);
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y[r] + i), acc[r][0]);
        i += 8;
    }
    if (i < n) {
        const size_t rem = (size_t)(n - i);
        uint8_t wt[32] = {0};
        float yt[8] = {0};
        memcpy(wt, w + ws * (size_t)i, ws * rem);
        __m256 w0 = ldw8(t, wt, 0);
        UNROLL
        for (int r = 0; r < R; r++) {
            memcpy(yt, y[r] + i, 4 * rem);
            acc[r][1] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(yt), acc[r][1]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        __m256 s = _mm256_add_ps(acc[r][0], acc[r][1]);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[r] = _mm_cvtss_f32(h);
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

/* ------------------------------------------- Q8_0, Q4_0, Q5_0 x Q8_0; Q4_1, Q5_1 x Q8_1 */

/* The 32-value block types, as a constant after inlining. */
enum { W_Q8_0, W_Q4_0, W_Q5_0, W_Q4_1, W_Q5_1, W_IQ4_NL };

/* Bytes of a weight block. */
INLINE size_t w_bytes(int kind)
{
    static const size_t B[] = {34, 18, 22, 20, 24, 18};
    return B[kind];
}

/* Q4_1 and Q5_1 (x = d * q + m) take Q8_1 activations (36 B: f16 d, f16 s, i8 qs[32]);
 * the others Q8_0 (34 B: f16 d, i8 qs[32]). */
INLINE int w_affine(int kind)
{
    return kind == W_Q4_1 || kind == W_Q5_1;
}

/* 0xFF in byte i where bit i of h is set. The 128-bit lanes of the shuffle both see all
 * four bytes of h, so byte i picks byte i / 8 and tests bit i % 8. */
INLINE __m256i bit_bytes(uint32_t h)
{
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), pick);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* The 32 levels of a block as bytes: nibbles of qs (16 bytes at p; low = values 0..15,
 * high = 16..31), plus 16 where bit i of the u32 at qh is set (qh NULL: 4-bit). */
INLINE __m256i levels32(const uint8_t *p, const uint8_t *qh)
{
    const __m128i q = ld128(p);
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    if (qh) {
        uint32_t h;
        memcpy(&h, qh, 4);
        v = _mm256_or_si256(v, _mm256_and_si256(bit_bytes(h), _mm256_set1_epi8(0x10)));
    }
    return v;
}

/* IQ4_NL's 16 values (ggml's kvalues_iq4nl) in both 128-bit lanes, for a byte shuffle. */
INLINE __m256i iq4_table(void)
{
    return _mm256_broadcastsi128_si256(_mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1,
                                                     13, 25, 38, 53, 69, 89, 113));
}

/* A block's 32 weight values as bytes: signed for Q8_0, Q4_0 (q - 8), Q5_0 (q - 16) and
 * IQ4_NL (its table looked up per nibble); unsigned levels for Q4_1, Q5_1. */
INLINE __m256i w_values(int kind, const uint8_t *xb)
{
    switch (kind) {
    case W_Q8_0: return ld256(xb + 2);
    case W_Q4_0: return _mm256_sub_epi8(levels32(xb + 2, NULL), _mm256_set1_epi8(8));
    case W_Q5_0: return _mm256_sub_epi8(levels32(xb + 6, xb + 2), _mm256_set1_epi8(16));
    case W_Q4_1: return levels32(xb + 4, NULL);
    case W_IQ4_NL: return _mm256_shuffle_epi8(iq4_table(), levels32(xb + 2, NULL));
    default: return levels32(xb + 8, xb + 4);
    }
}

/* 8 int32 lanes summing to the dot of one block's 32 signed weights w (|w| in wabs) with
 * 32 int8 activations: maddubs multiplies unsigned by signed bytes, so the weights' signs
 * move onto the activations. Exact for activations in [-127, 127], which is all the Q8_0
 * quantizer writes (-128 would flip to itself); pairs stay below 2 * 128 * 127 < 2^15.
 * Unsigned weights (wabs == w, levels <= 31) go straight in: pairs below 2 * 31 * 128. */
INLINE __m256i block_dot(__m256i wabs, __m256i w, __m256i a, int is_signed)
{
    __m256i p = _mm256_maddubs_epi16(wabs, is_signed ? _mm256_sign_epi8(a, w) : a);
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Blocks b .. b+cnt-1 (cnt <= 4) of R rows: p[r] = each block's (float)sumi * (dx * dy),
 * plus m * s for the affine kinds, as the reference computes it. */
INLINE void q8_group(int kind, const uint8_t *x, const uint8_t *a, size_t astride, int64_t b,
                     int cnt, __m128 *p, int R)
{
    const size_t wb = w_bytes(kind), ab = w_affine(kind) ? 36 : 34;
    const size_t ao = ab - 32; /* offset of the activation values */
    const int sgn = !w_affine(kind);
    const uint8_t *xb = x + (size_t)b * wb;
    __m256i wv[4], wa[4];
    UNROLL
    for (int k = 0; k < 4; k++) {
        if (k < cnt) {
            wv[k] = w_values(kind, xb + k * wb);
            wa[k] = sgn ? _mm256_abs_epi8(wv[k]) : wv[k];
        } else {
            wv[k] = wa[k] = _mm256_setzero_si256();
        }
    }
    const __m128 dx = f16x4(xb, wb, cnt);
    const __m128 mx = w_affine(kind) ? f16x4(xb + 2, wb, cnt) : _mm_setzero_ps();
    UNROLL
    for (int r = 0; r < R; r++) {
        const uint8_t *yb = a + (size_t)r * astride + (size_t)b * ab;
        __m256i v[4];
        UNROLL
        for (int k = 0; k < 4; k++)
            v[k] = k < cnt ? block_dot(wa[k], wv[k], ld256(yb + ab * k + ao), sgn) : _mm256_setzero_si256();
        __m128 sumf = _mm_cvtepi32_ps(hsum4x8(v[0], v[1], v[2], v[3]));
        p[r] = _mm_mul_ps(sumf, _mm_mul_ps(dx, f16x4(yb, ab, cnt)));
        if (w_affine(kind))
            p[r] = _mm_add_ps(p[r], _mm_mul_ps(mx, f16x4(yb + 2, ab, cnt)));
    }
}

/* s[r] += p[r][k] for k < cnt, in order: the reference's sequential float sum. One row:
 * scalar adds. Four rows: transposed to block columns [p0[k] p1[k] p2[k] p3[k]], so that
 * one vector add advances the four sums by one block, each lane doing exactly the scalar
 * add of its row (and a quarter of the instructions). */
INLINE void q8_accumulate(const __m128 *p, int cnt, float *s, __m128 *s4, int R)
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

INLINE void q8_rows(int kind, int64_t n, const uint8_t *x, const uint8_t *a, size_t astride,
                    float *out, int R)
{
    const int64_t nb = n / 32;
    float s[1] = {0};
    __m128 s4 = _mm_setzero_ps(), p[4];
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        prefetch_span(x + (size_t)b * w_bytes(kind), 4 * w_bytes(kind));
        q8_group(kind, x, a, astride, b, 4, p, R);
        q8_accumulate(p, 4, s, &s4, R);
    }
    if (b < nb) {
        q8_group(kind, x, a, astride, b, (int)(nb - b), p, R);
        q8_accumulate(p, (int)(nb - b), s, &s4, R);
    }
    if (R == 1)
        out[0] = s[0];
    else
        _mm_storeu_ps(out, s4);
}

/* dot and dot4 of a 32-value block type. */
#define Q8_DOTS(name, kind)                                                                      \
    static TARGET float dot_##name(int64_t n, const void *w, const void *a)                   \
    {                                                                                          \
        float o;                                                                               \
        q8_rows(kind, n, w, a, 0, &o, 1);                                                      \
        return o;                                                                              \
    }                                                                                          \
    static TARGET void dot4_##name(int64_t n, const void *w, const void *a, size_t astride,   \
                                   float *out)                                                 \
    {                                                                                          \
        q8_rows(kind, n, w, a, astride, out, 4);                                               \
    }

Q8_DOTS(q8_0, W_Q8_0)
Q8_DOTS(q4_0, W_Q4_0)
Q8_DOTS(q5_0, W_Q5_0)
Q8_DOTS(q4_1, W_Q4_1)
Q8_DOTS(q5_1, W_Q5_1)
Q8_DOTS(iq4_nl, W_IQ4_NL)

/* ---------------------------------------------------------------- Q4_K x Q8_K */

/* The 8 six-bit scales and mins of a Q4_K block (scales[12] at p), one per byte, low byte
 * first. Bytes 0..3 hold scales 0..3 (low 6 bits), 4..7 mins 0..3; bytes 8..11 hold the low
 * nibbles of scales 4..7 and (high nibble) mins 4..7, whose top 2 bits are the top 2 bits
 * of bytes 0..3 and 4..7. Done on 32-bit words, four sub-blocks at a time. */
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

/* The min term of a Q4_K block: 16 int16 [m0, m0, m1, m1, .., m7, m7], lined up with the
 * 16 bsums (two per 32-value sub-block) for one madd. */
INLINE __m256i q4k_mins16(uint64_t mn)
{
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
}

/* Super-block layout: f16 d, dmin; scales[12]; qs[128] in 4 groups of 32 bytes, group g
 * holding values 64g+l (low nibble, sub-block 2g) and 64g+32+l (high nibble, 2g+1). */
INLINE void q4k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    float s[4] = {0, 0, 0, 0};
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 144) {
        prefetch_span(x, 144);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        uint64_t sc, mn;
        q4k_scales(x + 4, &sc, &mn);
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 4; g++) {
            __m256i q = ld256(x + 16 + 32 * g);
            __m256i ql = _mm256_and_si256(q, lo4), qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
            __m256i s0 = _mm256_set1_epi16((short)((sc >> (16 * g)) & 0xFF));
            __m256i s1 = _mm256_set1_epi16((short)((sc >> (16 * g + 8)) & 0xFF));
            UNROLL
            for (int r = 0; r < R; r++) {
                const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 64 * g;
                /* nibble x int8 pairs <= 2*15*128; times a 6-bit scale fits int32 easily */
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ql, ld256(q8)), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(qh, ld256(q8 + 32)), s1);
                acc[r] = _mm256_add_epi32(acc[r], _mm256_add_epi32(p0, p1));
            }
        }
        const __m256i m16 = q4k_mins16(mn);
        const float dx = f16_at(x), mx = f16_at(x + 2);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            __m256i mins = _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), m16);
            /* one hadd pass reduces both: [acc.., mins..] */
            __m256i h = _mm256_hadd_epi32(acc[r], mins);
            __m128i h2 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            h2 = _mm_hadd_epi32(h2, h2);
            const int sumi = _mm_cvtsi128_si32(h2), summs = _mm_extract_epi32(h2, 1);
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

static TARGET float dot_q4_K(int64_t n, const void *w, const void *a)
{
    float o;
    q4k_rows(n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_q4_K(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q4k_rows(n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- Q6_K x Q8_K */

/* The scales of quarter t (values 32t..32t+31) as 16 int16 lanes lined up with the maddubs
 * pairs: scale 2t in lanes 0..7, 2t+1 in lanes 8..15. sc_b holds the 16 scale bytes in
 * both 128-bit halves; the shuffle puts the byte in the high half of each lane (index
 * 0xFF selects zero for the low half) and the arithmetic shift sign-extends it. */
INLINE __m256i q6k_scale_pair(__m256i sc_b, int t)
{
    const __m256i sel = _mm256_set_m128i(_mm_set1_epi16((short)(((2 * t + 1) << 8) | 0xFF)),
                                         _mm_set1_epi16((short)(((2 * t) << 8) | 0xFF)));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(sc_b, sel), 8);
}

/* A 6-bit Q6_K value (0..63) per byte from its low nibble (bits 0..3 of lo) and its top
 * two bits (already shifted to bits 4..5 of hi). */
INLINE __m256i q6k_values(__m256i lo, __m256i hi)
{
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi8(0x0F)),
                           _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
}

/* Super-block layout: ql[128], qh[64], i8 scales[16], f16 d. Half h (values 128h..) uses
 * L = ql + 64h and H = qh + 32h; quarter k of the half (values 128h+32k+l, l < 32) has its
 * low nibble in L[l] (k = 0), L[32+l] (1), L[l] >> 4 (2), L[32+l] >> 4 (3) and its top two
 * bits at bit 2k of H[l]. Scale s covers values 16s..16s+15.
 *
 * sum (q - 32) * a = sum q * a - 32 * sum a: q (0..63) is unsigned, as maddubs wants, and
 * the -32 term comes from the bsums, folded into the same accumulator through one madd
 * with the scales times -32. */
INLINE void q6k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    float s[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 210) {
        prefetch_span(x, 210);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        const __m128i sc8 = ld128(x + 192);
        const __m256i sc_b = _mm256_broadcastsi128_si256(sc8);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, 5));
        __m256i acc[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_setzero_si256();
        UNROLL
        for (int h = 0; h < 2; h++) {
            const __m256i L0 = ld256(x + 64 * h), L1 = ld256(x + 64 * h + 32);
            const __m256i H = ld256(x + 128 + 32 * h);
            __m256i q[4];
            q[0] = q6k_values(L0, _mm256_slli_epi16(H, 4));
            q[1] = q6k_values(L1, _mm256_slli_epi16(H, 2));
            q[2] = q6k_values(_mm256_srli_epi16(L0, 4), H);
            q[3] = q6k_values(_mm256_srli_epi16(L1, 4), _mm256_srli_epi16(H, 2));
            UNROLL
            for (int k = 0; k < 4; k++) {
                const __m256i scv = q6k_scale_pair(sc_b, 4 * h + k);
                UNROLL
                for (int r = 0; r < R; r++) {
                    const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 128 * h + 32 * k;
                    /* 6-bit x int8 pairs <= 2*63*128; times an int8 scale fits int32 */
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], ld256(q8)), scv);
                    acc[r] = _mm256_add_epi32(acc[r], p);
                }
            }
        }
        const float dx = f16_at(x + 208);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            __m256i v = _mm256_add_epi32(acc[r], _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), neg32));
            const int sumi = hsum_i32(v);
            const float t = dx * ld_f32(y);
            s[r] += t * (float)sumi;
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        out[r] = s[r];
}

static TARGET float dot_q6_K(int64_t n, const void *w, const void *a)
{
    float o;
    q6k_rows(n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_q6_K(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    q6k_rows(n, w, a, astride, out, 4);
}

/* ---------------------------------------------------------------- set */

void mlc_cpu_kernels_avx2(mlc_cpu_kernels *k)
{
    k->isa = "avx2";
    mlc_cpu_kernels_attn(k, 1);
    mlc_cpu_kernels_gelu(k, 1);
    k->dot[MLC_TYPE_F32] = dot_f32;
    k->dot4[MLC_TYPE_F32] = dot4_f32;
    k->dot[MLC_TYPE_F16] = dot_f16;
    k->dot4[MLC_TYPE_F16] = dot4_f16;
    k->act[MLC_TYPE_F16] = act_f16_as_f32;
    k->act_type[MLC_TYPE_F16] = MLC_TYPE_F32;
    k->dot[MLC_TYPE_BF16] = dot_bf16;
    k->dot4[MLC_TYPE_BF16] = dot4_bf16;
    k->act[MLC_TYPE_BF16] = act_bf16_as_f32;
    k->act_type[MLC_TYPE_BF16] = MLC_TYPE_F32;
    k->dot[MLC_TYPE_Q8_0] = dot_q8_0;
    k->dot4[MLC_TYPE_Q8_0] = dot4_q8_0;
    k->act[MLC_TYPE_Q8_0] = act_q8_0;
    k->dot[MLC_TYPE_Q4_0] = dot_q4_0;
    k->dot4[MLC_TYPE_Q4_0] = dot4_q4_0;
    k->act[MLC_TYPE_Q4_0] = act_q8_0;
    k->dot[MLC_TYPE_Q5_0] = dot_q5_0;
    k->dot4[MLC_TYPE_Q5_0] = dot4_q5_0;
    k->act[MLC_TYPE_Q5_0] = act_q8_0;
    k->dot[MLC_TYPE_IQ4_NL] = dot_iq4_nl;
    k->dot4[MLC_TYPE_IQ4_NL] = dot4_iq4_nl;
    k->act[MLC_TYPE_IQ4_NL] = act_q8_0;
    k->act[MLC_TYPE_IQ4_XS] = act_q8_K;
    k->dot[MLC_TYPE_Q4_1] = dot_q4_1;
    k->dot4[MLC_TYPE_Q4_1] = dot4_q4_1;
    k->dot[MLC_TYPE_Q5_1] = dot_q5_1;
    k->dot4[MLC_TYPE_Q5_1] = dot4_q5_1;
    k->dot[MLC_TYPE_Q4_K] = dot_q4_K;
    k->dot4[MLC_TYPE_Q4_K] = dot4_q4_K;
    k->act[MLC_TYPE_Q4_K] = act_q8_K;
    k->dot[MLC_TYPE_Q6_K] = dot_q6_K;
    k->dot4[MLC_TYPE_Q6_K] = dot4_q6_K;
    k->act[MLC_TYPE_Q6_K] = act_q8_K;
    k->act[MLC_TYPE_Q2_K] = act_q8_K;
    k->act[MLC_TYPE_Q3_K] = act_q8_K;
    k->act[MLC_TYPE_Q5_K] = act_q8_K;
    mlc_cpu_kernels_avx2_k(k);
}
