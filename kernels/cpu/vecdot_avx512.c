/* vecdot_avx512.c: the AVX-512 kernel set (F, BW, VL; VNNI for the quantized types).
 *
 * Starts from the avx2 set (activation quantizers and the F32 activation format of the
 * float weights are shared) and replaces the dots with EVEX-encoded kernels, 256 or 512 bits
 * wide, whichever measured faster (tests/bench_vecdot.c) on the Sapphire Rapids they were
 * tuned on, where 512-bit FMAs retire at about 0.7 per cycle against 2 for 256-bit ones:
 * - F32: 256 bits; 32 vector registers allow four accumulators per row in dot4 (16 in
 *   all), which hides the FMA latency; masked loads replace the tail copy.
 * - F16, BF16: 512 bits, as one instruction then widens 16 weights.
 * - Q8_0, Q4_0, Q4_K, Q6_K, when the CPU has AVX512-VNNI: 256 bits; vpdpbusd / vpdpwssd
 *   fold the multiply, the pairwise widening and the accumulation into one instruction.
 *   Q8_0/Q4_0 take 8 blocks per step, laid out so that their sums need a short reduction
 *   tree (see q8_group). 512-bit versions were 15-25% slower: a 32-byte block needs an
 *   insert per 64-byte register, and 512-bit instructions leave only two vector ports.
 *   Without VNNI the avx2 kernels stay. Q5_0, Q4_1 and Q5_1 live in vecdot_avx512_q.c,
 *   IQ4_NL there too; Q2_K, Q3_K, Q5_K and IQ4_XS in vecdot_avx512_k.c.
 * Decode (one activation row) goes through dotw4: four weight rows against the activation
 * row, which is loaded (and for Q8_0 sign-flipped) once for the four, each row's arithmetic
 * exactly that of its dot; prefetches run some rows ahead (see prefetch_rows). Prefill of
 * F16/BF16 goes through dot44, a 4 x 4 tile of 16 accumulators (its float sums are ordered
 * differently from dot's, which the float types allow).
 * The same rules as vecdot_avx2.c hold: quantized results bit-identical to the scalar
 * reference (exact integer sums, then the reference's float operations in its order), and
 * dot4 == four dots because both are one body. */
#include "vecdot.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define INLINE \
    static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define TARGET_VNNI \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE_VNNI                                        \
    static inline __attribute__((always_inline, target( \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

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

/* The weight-row kernels (dotw4, decode) read four consecutive rows at once, so "PF_DIST
 * bytes ahead" would land in the rows being read. They ask instead for the same span of
 * the rows WPF_ROWS further on into L1, and of the rows WPF_FAR further on into L2: the
 * second, deeper stream keeps more misses in flight than the L1 fill buffers allow
 * (make bench, 2 threads, decode: Q8_0 159 -> 225 tok/s with both, ~200 with the first
 * only). */
#ifndef WPF_ROWS
#define WPF_ROWS 4
#endif
#ifndef WPF_FAR
#define WPF_FAR 24
#endif

INLINE void prefetch_rows(const uint8_t *p, size_t ws, size_t bytes)
{
    UNROLL
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + WPF_ROWS * ws + o, _MM_HINT_T0);
    UNROLL
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + WPF_FAR * ws + o, _MM_HINT_T1);
}

INLINE __m256i ld256(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

INLINE __m128i ld128(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* f16 scales of cnt (<= 8) blocks stride bytes apart, as floats (lanes >= cnt are 0),
 * gathered through two 64-bit registers. */
INLINE __m256 f16x8(const uint8_t *p, size_t stride, int cnt)
{
    uint64_t lo = 0, hi = 0;
    UNROLL
    for (int i = 0; i < 4; i++)
        if (i < cnt)
            lo |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * i);
    UNROLL
    for (int i = 4; i < 8; i++)
        if (i < cnt)
            hi |= (uint64_t)ld16(p + (size_t)i * stride) << (16 * (i - 4));
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

INLINE int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* The sums of four vectors at once: [sum v0, sum v1, sum v2, sum v3] (integer adds, so
 * the order does not change them). */
INLINE __m128i hsum4_i32(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* The f16 values at p, p + stride, p + 2 stride, p + 3 stride as four floats. */
INLINE __m128 f16x4(const uint8_t *p, size_t stride)
{
    const uint64_t v = (uint64_t)ld16(p) | (uint64_t)ld16(p + stride) << 16 |
                       (uint64_t)ld16(p + 2 * stride) << 32 | (uint64_t)ld16(p + 3 * stride) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* Both sums at once: [sum a, sum b]. */
INLINE void hsum2_i32(__m256i a, __m256i b, int32_t *sa, int32_t *sb)
{
    __m256i h = _mm256_hadd_epi32(a, b); /* per lane: [a a b b] */
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s = _mm_hadd_epi32(s, s); /* [a b a b] */
    *sa = _mm_cvtsi128_si32(s);
    *sb = _mm_extract_epi32(s, 1);
}

/* ---------------------------------------------------------------- F32, F16, BF16 */

/* One F32 weight row against R F32 activation rows: four accumulators of 8 lanes per row
 * over chunks of 32, the remaining full chunks of 8 into accumulator 0, a masked partial
 * one (lanes outside the mask are 0 and their memory is not read) into accumulator 1;
 * then ((a0 + a1) + (a2 + a3)) and a fixed lane tree. */
INLINE void f32_rows(int64_t n, const uint8_t *w, const uint8_t *a, size_t astride, float *out,
                     int R)
{
    const float *y[4];
    UNROLL
    for (int r = 0; r < R; r++)
        y[r] = (const float *)(const void *)(a + (size_t)r * astride);
    __m256 acc[4][4];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int u = 0; u < 4; u++)
            acc[r][u] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_span(w + 4 * (size_t)i, 128);
        __m256 wv[4];
        UNROLL
        for (int u = 0; u < 4; u++)
            wv[u] = _mm256_loadu_ps((const float *)(const void *)(w + 4 * (i + 8 * u)));
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[r][u] = _mm256_fmadd_ps(wv[u], _mm256_loadu_ps(y[r] + i + 8 * u), acc[r][u]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 wv = _mm256_loadu_ps((const float *)(const void *)(w + 4 * i));
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(y[r] + i), acc[r][0]);
    }
    if (i < n) {
        const __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        __m256 wv = _mm256_maskz_loadu_ps(m, w + 4 * i);
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r][1] = _mm256_fmadd_ps(wv, _mm256_maskz_loadu_ps(m, y[r] + i), acc[r][1]);
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        __m256 s = _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3]));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        out[r] = _mm_cvtss_f32(q);
    }
}

/* 16 F16 or BF16 weights from element i as floats (t is a constant after inlining); lanes
 * outside m are 0 and their memory is not read. */
INLINE __m512 ldw16(uint32_t t, const uint8_t *w, int64_t i, __mmask16 m)
{
    __m256i h = _mm256_maskz_loadu_epi16(m, w + 2 * i);
    if (t == MLC_TYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The same with 16 lanes, for F16 and BF16 weights: one 512-bit conversion instruction
 * widens 16 weights, against two for 256-bit registers, which outweighs the slower 512-bit
 * FMAs (F16 dot4 85 against 79 GFLOP/s, BF16 83 against 65). Chunks of 64, the remaining
 * full chunks of 16 into accumulator 0, a masked partial one into accumulator 1. */
INLINE void h16_rows(uint32_t t, int64_t n, const uint8_t *w, const uint8_t *a, size_t astride,
                     float *out, int R)
{
    const float *y[4];
    UNROLL
    for (int r = 0; r < R; r++)
        y[r] = (const float *)(const void *)(a + (size_t)r * astride);
    __m512 acc[4][4];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int u = 0; u < 4; u++)
            acc[r][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        prefetch_span(w + 2 * (size_t)i, 128);
        __m512 wv[4];
        UNROLL
        for (int u = 0; u < 4; u++)
            wv[u] = ldw16(t, w, i + 16 * u, 0xFFFF);
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[r][u] = _mm512_fmadd_ps(wv[u], _mm512_loadu_ps(y[r] + i + 16 * u), acc[r][u]);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 wv = ldw16(t, w, i, 0xFFFF);
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(y[r] + i), acc[r][0]);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 wv = ldw16(t, w, i, m);
        UNROLL
        for (int r = 0; r < R; r++)
            acc[r][1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, y[r] + i), acc[r][1]);
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        __m512 s = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3]));
        /* the high half through the AVX512F double extract: no DQ needed */
        __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        out[r] = _mm_cvtss_f32(q);
    }
}

static TARGET float dot_f32(int64_t n, const void *w, const void *a)
{
    float o;
    f32_rows(n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_f32(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    f32_rows(n, w, a, astride, out, 4);
}

static TARGET float dot_f16(int64_t n, const void *w, const void *a)
{
    float o;
    h16_rows(MLC_TYPE_F16, n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_f16(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    h16_rows(MLC_TYPE_F16, n, w, a, astride, out, 4);
}

static TARGET float dot_bf16(int64_t n, const void *w, const void *a)
{
    float o;
    h16_rows(MLC_TYPE_BF16, n, w, a, 0, &o, 1);
    return o;
}

static TARGET void dot4_bf16(int64_t n, const void *w, const void *a, size_t astride, float *out)
{
    h16_rows(MLC_TYPE_BF16, n, w, a, astride, out, 4);
}

/* Four weight rows (stride ws) against one activation row, each row with exactly the
 * accumulators and order of h16_rows with R = 1 (so dotw4 == four dots): the activation
 * chunk is loaded once for the four rows. */
INLINE void h16_wrows(uint32_t t, int64_t n, const uint8_t *w, size_t ws, const uint8_t *a,
                      float *out)
{
    const float *y = (const float *)(const void *)a;
    __m512 acc[4][4];
    UNROLL
    for (int r = 0; r < 4; r++)
        UNROLL
        for (int u = 0; u < 4; u++)
            acc[r][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 av[4];
        UNROLL
        for (int u = 0; u < 4; u++)
            av[u] = _mm512_loadu_ps(y + i + 16 * u);
        UNROLL
        for (int r = 0; r < 4; r++) {
            const uint8_t *wr = w + (size_t)r * ws;
            prefetch_rows(wr + 2 * (size_t)i, ws, 128);
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[r][u] = _mm512_fmadd_ps(ldw16(t, wr, i + 16 * u, 0xFFFF), av[u], acc[r][u]);
        }
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 av = _mm512_loadu_ps(y + i);
        UNROLL
        for (int r = 0; r < 4; r++)
            acc[r][0] = _mm512_fmadd_ps(ldw16(t, w + (size_t)r * ws, i, 0xFFFF), av, acc[r][0]);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 av = _mm512_maskz_loadu_ps(m, y + i);
        UNROLL
        for (int r = 0; r < 4; r++)
            acc[r][1] = _mm512_fmadd_ps(ldw16(t, w + (size_t)r * ws, i, m), av, acc[r][1]);
    }
    UNROLL
    for (int r = 0; r < 4; r++) {
        __m512 s = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3]));
        __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        out[r] = _mm_cvtss_f32(q);
    }
}

static TARGET void dotw4_f16(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    h16_wrows(MLC_TYPE_F16, n, w, ws, a, out);
}

static TARGET void dotw4_bf16(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    h16_wrows(MLC_TYPE_BF16, n, w, ws, a, out);
}

/* 4 F16/BF16 weight rows against 4 F32 activation rows, one 16-lane accumulator per pair:
 * each chunk of 16 values costs 4 weight conversions and 4 activation loads for 16 FMAs
 * (dot4: 4 conversions, 16 loads, 16 FMAs), so the FMAs, not the loads, set the pace. */
INLINE void h16_tile(uint32_t t, int64_t n, const uint8_t *w, size_t ws, const uint8_t *a,
                     size_t as, float *out)
{
    __m512 acc[4][4];
    UNROLL
    for (int r = 0; r < 4; r++)
        UNROLL
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 av[4];
        UNROLL
        for (int c = 0; c < 4; c++)
            av[c] = _mm512_loadu_ps((const float *)(const void *)(a + (size_t)c * as) + i);
        UNROLL
        for (int r = 0; r < 4; r++) {
            const __m512 wv = ldw16(t, w + (size_t)r * ws, i, 0xFFFF);
            UNROLL
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 av[4];
        UNROLL
        for (int c = 0; c < 4; c++)
            av[c] = _mm512_maskz_loadu_ps(m, (const float *)(const void *)(a + (size_t)c * as) + i);
        UNROLL
        for (int r = 0; r < 4; r++) {
            const __m512 wv = ldw16(t, w + (size_t)r * ws, i, m);
            UNROLL
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    UNROLL
    for (int r = 0; r < 4; r++)
        UNROLL
        for (int c = 0; c < 4; c++)
            out[4 * c + r] = _mm512_reduce_add_ps(acc[r][c]);
}

static TARGET void dot44_f16(int64_t n, const void *w, size_t ws, const void *a, size_t as, float *out)
{
    h16_tile(MLC_TYPE_F16, n, w, ws, a, as, out);
}

static TARGET void dot44_bf16(int64_t n, const void *w, size_t ws, const void *a, size_t as, float *out)
{
    h16_tile(MLC_TYPE_BF16, n, w, ws, a, as, out);
}

/* ---------------------------------------------------------------- Q8_0, Q4_0 x Q8_0 */

/* vpdpbusd multiplies unsigned by signed bytes. Flipping the activations' sign bit makes
 * them a + 128 (unsigned): sum (a+128) w = sum a w + 128 sum w, and the second term depends
 * on the weights only, so it is computed once per weight block (and shared by the four rows
 * of dot4) as the accumulator's starting value -128 sum w. Exact for every int8. */

/* Register layout: a group of 8 blocks is held as 4 pairs (block j, block j+4), each pair
 * in two registers: [j values 0..15 | j+4 values 0..15] and [j 16..31 | j+4 16..31]. Both
 * registers of a pair accumulate into one, so each 32-bit lane sums 8 products of one block
 * and a block occupies one 128-bit lane: the 8 block sums then take two unpack levels
 * (9 instructions) instead of three plus a lane exchange (21). The cost moves into one
 * 128-bit insert per register, which runs on any vector port. */

/* The 8 block sums of v[0..3] (v[j] = [block j: 4 lanes | block j+4: 4 lanes]) in block
 * order: per 128-bit lane, [j0 j1 j0 j1] partials after the first level, [j0 j1 j2 j3]
 * after the second; lane 0 holds blocks 0..3, lane 1 blocks 4..7. */
INLINE __m256i hsum_pairs(const __m256i v[4])
{
    const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
}

/* 16 bytes at p0 (low half) and p1 (high half). */
INLINE __m256i ld2x128(const uint8_t *p0, const uint8_t *p1)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(ld128(p0)), ld128(p1), 1);
}

/* Blocks b .. b+cnt-1 (cnt <= 8) of R rows: p[r] = (float)sumi * (dx * dy) per block, as
 * the reference computes them. A missing block (index >= cnt) is read as block b: its
 * product is computed and never added, which keeps the loads inside the row. */
INLINE_VNNI void q8_group(int q4, const uint8_t *x, const uint8_t *a, size_t astride, int64_t b,
                          int cnt, __m256 *p, int R)
{
    const size_t wb = q4 ? 18 : 34;
    const uint8_t *xb = x + (size_t)b * wb;
    const __m256i c80 = _mm256_set1_epi8((char)0x80);
    __m256i wl[4], wh[4], corr[4];
    UNROLL
    for (int j = 0; j < 4; j++) {
        const int k0 = j < cnt ? j : 0, k1 = j + 4 < cnt ? j + 4 : 0;
        if (q4) {
            /* nibbles: low = values 0..15, high = 16..31; q - 8 signed, and the starting
             * value -128 * sum (q - 8) = 8192 - 128 * sum q per lane of 8 values */
            const __m256i q = ld2x128(xb + k0 * wb + 2, xb + k1 * wb + 2);
            const __m256i lo4 = _mm256_set1_epi8(0x0F), c8 = _mm256_set1_epi8(8);
            const __m256i nl = _mm256_and_si256(q, lo4);
            const __m256i nh = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
            corr[j] = _mm256_dpbusd_epi32(_mm256_set1_epi32(8192), nl, c80);
            corr[j] = _mm256_dpbusd_epi32(corr[j], nh, c80);
            wl[j] = _mm256_sub_epi8(nl, c8);
            wh[j] = _mm256_sub_epi8(nh, c8);
        } else {
            wl[j] = ld2x128(xb + k0 * wb + 2, xb + k1 * wb + 2);
            wh[j] = ld2x128(xb + k0 * wb + 18, xb + k1 * wb + 18);
            const __m256i z = _mm256_setzero_si256();
            const __m256i sum128 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, c80, wl[j]), c80, wh[j]);
            corr[j] = _mm256_sub_epi32(z, sum128);
        }
    }
    const __m256 dx = f16x8(xb, wb, cnt);
    UNROLL
    for (int r = 0; r < R; r++) {
        const uint8_t *yb = a + (size_t)r * astride + (size_t)b * 34;
        __m256i v[4];
        UNROLL
        for (int j = 0; j < 4; j++) {
            const int k0 = j < cnt ? j : 0, k1 = j + 4 < cnt ? j + 4 : 0;
            const __m256i al = _mm256_xor_si256(ld2x128(yb + 34 * k0 + 2, yb + 34 * k1 + 2), c80);
            const __m256i ah = _mm256_xor_si256(ld2x128(yb + 34 * k0 + 18, yb + 34 * k1 + 18), c80);
            v[j] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(corr[j], al, wl[j]), ah, wh[j]);
        }
        const __m256i sumi = hsum_pairs(v);
        p[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dx, f16x8(yb, 34, cnt)));
    }
}

/* s[r] += p[r][k] for k < cnt, in order: the reference's sequential float sum. One row:
 * scalar adds. Four rows: transposed to block columns [p0[k] p1[k] p2[k] p3[k]], so one
 * vector add advances the four sums by the same block, each lane doing exactly the scalar
 * add of its row. */
INLINE_VNNI void q8_accumulate(const __m256 *p, int cnt, float *s, __m128 *s4, int R)
{
    if (R == 1) {
        float pf[8];
        _mm256_storeu_ps(pf, p[0]);
        UNROLL
        for (int k = 0; k < cnt; k++)
            s[0] += pf[k];
        return;
    }
    const __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
    const __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
    __m256 c[4]; /* columns k (low 128 bits) and k + 4 (high) */
    c[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    c[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    c[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    c[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    UNROLL
    for (int k = 0; k < cnt; k++)
        *s4 = _mm_add_ps(*s4, k < 4 ? _mm256_castps256_ps128(c[k & 3])
                                    : _mm256_extractf128_ps(c[k & 3], 1));
}

INLINE_VNNI void q8_rows(int q4, int64_t n, const uint8_t *x, const uint8_t *a, size_t astride,
                         float *out, int R)
{
    const int64_t nb = n / 32;
    float s[1] = {0};
    __m128 s4 = _mm_setzero_ps();
    __m256 p[4];
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        prefetch_span(x + (size_t)b * (q4 ? 18 : 34), q4 ? 144 : 272);
        q8_group(q4, x, a, astride, b, 8, p, R);
        q8_accumulate(p, 8, s, &s4, R);
    }
    if (b < nb) {
        q8_group(q4, x, a, astride, b, (int)(nb - b), p, R);
        q8_accumulate(p, (int)(nb - b), s, &s4, R);
    }
    if (R == 1)
        out[0] = s[0];
    else
        _mm_storeu_ps(out, s4);
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

/* Weight-row variant of q8_group: blocks b .. b+cnt-1 of four weight rows (stride ws)
 * against one activation row, whose bytes, offset sums and scales are taken once. Each
 * row's integer sums and float products are those of q8_group. */
INLINE_VNNI void q8_group_w(int q4, const uint8_t *x, size_t ws, const uint8_t *a, int64_t b,
                            int cnt, __m256 *p)
{
    const size_t wb = q4 ? 18 : 34;
    const uint8_t *yb = a + (size_t)b * 34;
    const __m256i z = _mm256_setzero_si256(), c80 = _mm256_set1_epi8((char)0x80);
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    /* The weights go in unsigned (q8 + 128, or the q4 nibble) against the activations as
     * they are, so the offset term (-128 or -8 times sum a) depends on the activations
     * only: it starts each block's sum, computed once for the four rows. */
    const __m256i off = _mm256_set1_epi8((char)(q4 ? 8 : 0x80));
    __m256i al[4], ah[4], start[4];
    UNROLL
    for (int j = 0; j < 4; j++) {
        const int k0 = j < cnt ? j : 0, k1 = j + 4 < cnt ? j + 4 : 0;
        al[j] = ld2x128(yb + 34 * k0 + 2, yb + 34 * k1 + 2);
        ah[j] = ld2x128(yb + 34 * k0 + 18, yb + 34 * k1 + 18);
        start[j] = _mm256_sub_epi32(z, _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, off, al[j]), off, ah[j]));
    }
    const __m256 dy = f16x8(yb, 34, cnt);
    UNROLL
    for (int r = 0; r < 4; r++) {
        const uint8_t *xb = x + (size_t)r * ws + (size_t)b * wb;
        __m256i v[4];
        UNROLL
        for (int j = 0; j < 4; j++) {
            const int k0 = j < cnt ? j : 0, k1 = j + 4 < cnt ? j + 4 : 0;
            __m256i wl, wh;
            if (q4) {
                const __m256i q = ld2x128(xb + k0 * wb + 2, xb + k1 * wb + 2);
                wl = _mm256_and_si256(q, lo4);
                wh = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
            } else {
                wl = _mm256_xor_si256(ld2x128(xb + k0 * wb + 2, xb + k1 * wb + 2), c80);
                wh = _mm256_xor_si256(ld2x128(xb + k0 * wb + 18, xb + k1 * wb + 18), c80);
            }
            v[j] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(start[j], wl, al[j]), wh, ah[j]);
        }
        const __m256i sumi = hsum_pairs(v);
        p[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(f16x8(xb, wb, cnt), dy));
    }
}

INLINE_VNNI void q8_wrows(int q4, int64_t n, const uint8_t *x, size_t ws, const uint8_t *a,
                          float *out)
{
    const int64_t nb = n / 32;
    const size_t wb = q4 ? 18 : 34;
    float s[1] = {0};
    __m128 s4 = _mm_setzero_ps();
    __m256 p[4];
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        UNROLL
        for (int r = 0; r < 4; r++)
            prefetch_rows(x + (size_t)r * ws + (size_t)b * wb, ws, q4 ? 144 : 272);
        q8_group_w(q4, x, ws, a, b, 8, p);
        q8_accumulate(p, 8, s, &s4, 4);
    }
    if (b < nb) {
        /* the rows' last blocks too: rows of 20 blocks (Gemma 3's 640) leave a fifth here */
        UNROLL
        for (int r = 0; r < 4; r++)
            prefetch_rows(x + (size_t)r * ws + (size_t)b * wb, ws, (size_t)(nb - b) * wb);
        q8_group_w(q4, x, ws, a, b, (int)(nb - b), p);
        q8_accumulate(p, (int)(nb - b), s, &s4, 4);
    }
    _mm_storeu_ps(out, s4);
}

static TARGET_VNNI void dotw4_q8_0(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    q8_wrows(0, n, w, ws, a, out);
}

static TARGET_VNNI void dotw4_q4_0(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    q8_wrows(1, n, w, ws, a, out);
}

/* ---------------------------------------------------------------- Q4_K x Q8_K */

/* As vecdot_avx2.c: scales and mins of the 8 sub-blocks, one per byte (see there). */
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

/* Layout as in vecdot_avx2.c. maddubs gives nibble x int8 pairs (<= 2*15*128), vpdpwssd
 * multiplies them by the sub-block scale and accumulates; low and high nibbles go to two
 * accumulators, so that a row's dependency chain is 4 instructions per super-block. */
INLINE_VNNI void q4k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                          int R)
{
    float s[4] = {0, 0, 0, 0};
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 144) {
        prefetch_span(x, 144);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        uint64_t sc, mn;
        q4k_scales(x + 4, &sc, &mn);
        __m256i acc0[4], acc1[4];
        UNROLL
        for (int r = 0; r < R; r++)
            acc0[r] = acc1[r] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m256i q = ld256(x + 16 + 32 * g);
            const __m256i ql = _mm256_and_si256(q, lo4);
            const __m256i qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
            const __m256i s0 = _mm256_set1_epi16((short)((sc >> (16 * g)) & 0xFF));
            const __m256i s1 = _mm256_set1_epi16((short)((sc >> (16 * g + 8)) & 0xFF));
            UNROLL
            for (int r = 0; r < R; r++) {
                const uint8_t *q8 = a + (size_t)r * astride + yo + 4 + 64 * g;
                acc0[r] = _mm256_dpwssd_epi32(acc0[r], _mm256_maddubs_epi16(ql, ld256(q8)), s0);
                acc1[r] = _mm256_dpwssd_epi32(acc1[r], _mm256_maddubs_epi16(qh, ld256(q8 + 32)), s1);
            }
        }
        const __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
        const float dx = f16_at(x), mx = f16_at(x + 2);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            int32_t sumi, summs;
            hsum2_i32(_mm256_add_epi32(acc0[r], acc1[r]), _mm256_madd_epi16(ld256(y + 4 + MLC_QK_K), m16),
                      &sumi, &summs);
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

/* Four weight rows (stride ws) against one activation row: q4k_rows with R = 1 per row,
 * the activation's quants and bsums loaded once per super-block. The four rows' integer
 * sums are reduced together and their float terms computed in the lanes of one vector:
 * lane r does row r's float operations of q4k_rows, in its order, so the results are the
 * same bits. A sub-block scale reaches its 16-bit lanes through a byte shuffle of the
 * eight scales (byte k, then a zero byte). */
INLINE_VNNI void q4k_wrows(int64_t n, const uint8_t *x0, size_t ws, const uint8_t *a, float *out)
{
    __m128 s = _mm_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __m256i pick[8];
    UNROLL
    for (int k = 0; k < 8; k++)
        pick[k] = _mm256_set1_epi16((short)(0x8000 | k)); /* byte k, zero */
    for (int64_t i = 0; i < n / MLC_QK_K; i++) {
        const uint8_t *y = a + (size_t)i * MLC_Q8_K_BYTES;
        __m256i yl[4], yh[4];
        UNROLL
        for (int g = 0; g < 4; g++) {
            yl[g] = ld256(y + 4 + 64 * g);
            yh[g] = ld256(y + 4 + 64 * g + 32);
        }
        const __m256i bs = ld256(y + 4 + MLC_QK_K);
        const uint8_t *xb = x0 + (size_t)i * 144;
        __m256i sums[4], mins[4];
        UNROLL
        for (int r = 0; r < 4; r++) {
            const uint8_t *x = xb + (size_t)r * ws;
            prefetch_rows(x, ws, 144);
            uint64_t sc, mn;
            q4k_scales(x + 4, &sc, &mn);
            const __m256i scb = _mm256_set1_epi64x((long long)sc);
            __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = ld256(x + 16 + 32 * g);
                const __m256i ql = _mm256_and_si256(q, lo4);
                const __m256i qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
                const __m256i s0 = _mm256_shuffle_epi8(scb, pick[2 * g]);
                const __m256i s1 = _mm256_shuffle_epi8(scb, pick[2 * g + 1]);
                acc0 = _mm256_dpwssd_epi32(acc0, _mm256_maddubs_epi16(ql, yl[g]), s0);
                acc1 = _mm256_dpwssd_epi32(acc1, _mm256_maddubs_epi16(qh, yh[g]), s1);
            }
            const __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
            sums[r] = _mm256_add_epi32(acc0, acc1);
            mins[r] = _mm256_madd_epi16(bs, m16);
        }
        const __m128 sumi = _mm_cvtepi32_ps(hsum4_i32(sums[0], sums[1], sums[2], sums[3]));
        const __m128 summs = _mm_cvtepi32_ps(hsum4_i32(mins[0], mins[1], mins[2], mins[3]));
        const __m128 yd = _mm_set1_ps(ld_f32(y));
        const __m128 d = _mm_mul_ps(yd, f16x4(xb, ws)), dmin = _mm_mul_ps(yd, f16x4(xb + 2, ws));
        s = _mm_add_ps(s, _mm_sub_ps(_mm_mul_ps(d, sumi), _mm_mul_ps(dmin, summs)));
    }
    _mm_storeu_ps(out, s);
}

static TARGET_VNNI void dotw4_q4_K(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    q4k_wrows(n, w, ws, a, out);
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

/* Layout and method as in vecdot_avx2.c (q unsigned 0..63 through maddubs, the -32 offset
 * through the bsums), with vpdpwssd for the scale multiply-accumulate and for the bsums
 * term; even and odd quarters accumulate separately to halve the dependency chain. */
INLINE_VNNI void q6k_rows(int64_t n, const uint8_t *x, const uint8_t *a, size_t astride, float *out,
                          int R)
{
    float s[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / MLC_QK_K; i++, x += 210) {
        prefetch_span(x, 210);
        const size_t yo = (size_t)i * MLC_Q8_K_BYTES;
        const __m128i sc8 = ld128(x + 192);
        const __m256i sc_b = _mm256_broadcastsi128_si256(sc8);
        const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(),
                                               _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc8), 5));
        __m256i acc0[4], acc1[4];
        UNROLL
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm256_setzero_si256();
            acc1[r] = _mm256_dpwssd_epi32(_mm256_setzero_si256(),
                                          ld256(a + (size_t)r * astride + yo + 4 + MLC_QK_K), neg32);
        }
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
                    const __m256i p = _mm256_maddubs_epi16(q[k], ld256(q8));
                    if (k & 1)
                        acc1[r] = _mm256_dpwssd_epi32(acc1[r], p, scv);
                    else
                        acc0[r] = _mm256_dpwssd_epi32(acc0[r], p, scv);
                }
            }
        }
        const float dx = f16_at(x + 208);
        UNROLL
        for (int r = 0; r < R; r++) {
            const uint8_t *y = a + (size_t)r * astride + yo;
            const int sumi = hsum_i32(_mm256_add_epi32(acc0[r], acc1[r]));
            const float t = dx * ld_f32(y);
            s[r] += t * (float)sumi;
        }
    }
    UNROLL
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

/* Four weight rows (stride ws) against one activation row: q6k_rows with R = 1 per row,
 * the activation's quants and bsums loaded once per super-block; the four rows' integer
 * sums reduced together and their float terms computed lane by lane, in q6k_rows' order
 * (the same bits). */
INLINE_VNNI void q6k_wrows(int64_t n, const uint8_t *x0, size_t ws, const uint8_t *a, float *out)
{
    __m128 s = _mm_setzero_ps();
    for (int64_t i = 0; i < n / MLC_QK_K; i++) {
        const uint8_t *y = a + (size_t)i * MLC_Q8_K_BYTES;
        __m256i yq[8];
        UNROLL
        for (int k = 0; k < 8; k++)
            yq[k] = ld256(y + 4 + 32 * k);
        const __m256i bs = ld256(y + 4 + MLC_QK_K);
        const uint8_t *xb = x0 + (size_t)i * 210;
        __m256i sums[4];
        UNROLL
        for (int r = 0; r < 4; r++) {
            const uint8_t *x = xb + (size_t)r * ws;
            prefetch_rows(x, ws, 210);
            const __m128i sc8 = ld128(x + 192);
            const __m256i sc_b = _mm256_broadcastsi128_si256(sc8);
            const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(),
                                                   _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc8), 5));
            __m256i acc0 = _mm256_setzero_si256();
            __m256i acc1 = _mm256_dpwssd_epi32(_mm256_setzero_si256(), bs, neg32);
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
                    const __m256i p = _mm256_maddubs_epi16(q[k], yq[4 * h + k]);
                    if (k & 1)
                        acc1 = _mm256_dpwssd_epi32(acc1, p, scv);
                    else
                        acc0 = _mm256_dpwssd_epi32(acc0, p, scv);
                }
            }
            sums[r] = _mm256_add_epi32(acc0, acc1);
        }
        const __m128 sumi = _mm_cvtepi32_ps(hsum4_i32(sums[0], sums[1], sums[2], sums[3]));
        const __m128 t = _mm_mul_ps(f16x4(xb + 208, ws), _mm_set1_ps(ld_f32(y)));
        s = _mm_add_ps(s, _mm_mul_ps(t, sumi));
    }
    _mm_storeu_ps(out, s);
}

static TARGET_VNNI void dotw4_q6_K(int64_t n, const void *w, size_t ws, const void *a, float *out)
{
    q6k_wrows(n, w, ws, a, out);
}

/* ---------------------------------------------------------------- set */

void mlc_cpu_kernels_avx512(mlc_cpu_kernels *k)
{
    mlc_cpu_kernels_avx2(k);
    k->isa = "avx512";
    mlc_cpu_kernels_attn(k, 2);
    mlc_cpu_kernels_gelu(k, 2);
    k->dot[MLC_TYPE_F32] = dot_f32;
    k->dot4[MLC_TYPE_F32] = dot4_f32;
    k->dot[MLC_TYPE_F16] = dot_f16;
    k->dot4[MLC_TYPE_F16] = dot4_f16;
    k->dot[MLC_TYPE_BF16] = dot_bf16;
    k->dot4[MLC_TYPE_BF16] = dot4_bf16;
    k->dotw4[MLC_TYPE_F16] = dotw4_f16;
    k->dotw4[MLC_TYPE_BF16] = dotw4_bf16;
    k->dot44[MLC_TYPE_F16] = dot44_f16;
    k->dot44[MLC_TYPE_BF16] = dot44_bf16;
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
    k->dotw4[MLC_TYPE_Q8_0] = dotw4_q8_0;
    k->dotw4[MLC_TYPE_Q4_0] = dotw4_q4_0;
    k->dotw4[MLC_TYPE_Q4_K] = dotw4_q4_K;
    k->dotw4[MLC_TYPE_Q6_K] = dotw4_q6_K;
    mlc_cpu_kernels_avx512_q(k);
    mlc_cpu_kernels_avx512_k(k);
}
