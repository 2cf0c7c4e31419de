/* gemm_avx2.c: the AVX2 tile kernels of gemm.h (every quantized weight type, as
 * gemm_avx512.c), for CPUs without AVX-512 VNNI. Panels have the layouts of gemm.h (the AVX-512 file's),
 * read as two halves of 8 lanes (one 256-bit register per group).
 *
 * Without vpdpbusd the integer sums go through vpmaddubsw (u8 x i8 pairs, saturating to
 * i16) and vpmaddwd, and every step stays within i16 so the sums stay exact:
 * - Q8_0 / Q4_0 / Q5_0 / IQ4_NL (weights stored + 128): the signed weight's magnitude
 *   against the activation carrying the weight's sign (|pair| <= 2 * 128 * 127), widened
 *   per group.
 * - Q4_K: nibbles (0..15) against the activation: 8 groups add up to at most 30720 in i16,
 *   then vpmaddwd by the sub-block scale (held in both halves of its lane). Q5_K (0..31):
 *   the same over 4 groups at a time (at most 31496).
 * - Q6_K / Q3_K / Q2_K: values 0..63 / 0..7 / 0..3 against the activation, two groups
 *   per i16 sum (<= 32256), the 32 / 4 times (16-value sum) correction times the scale
 *   added in i32 (Q2_K: its mins against the 16-value sums, as Q4_K's).
 * - IQ4_XS: as Q8_0 per group, each group's i16 pairs times the sub-block scale.
 * - Q4_1 / Q5_1: levels (<= 31) against the activation, 4 groups per i16 sum.
 * Then the scalar dot's float operations in its order: bit-identical to it. Up to 4
 * activation rows per pass (16 registers). */
#include "gemm.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 16")

#define NT_MAX 4

INLINE uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

INLINE float ldf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

INLINE __m256i bcast(const uint8_t *p)
{
    return _mm256_set1_epi32((int)ld32(p));
}

INLINE __m256i ld(const uint8_t *p)
{
    return _mm256_load_si256((const __m256i *)(const void *)p);
}

INLINE void st(uint8_t *p, __m256i v)
{
    _mm256_store_si256((__m256i *)(void *)p, v);
}

/* Lanes 8h .. 8h+7: byte offsets of their source rows (the last real row repeats). */
INLINE __m256i row_offsets(size_t w_row, int rows, int h)
{
    const __m256i r = _mm256_min_epi32(_mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8 * h)),
                                       _mm256_set1_epi32(rows - 1));
    return _mm256_mullo_epi32(r, _mm256_set1_epi32((int)w_row));
}

INLINE __m256i gather4(const uint8_t *p, __m256i off)
{
    return _mm256_i32gather_epi32((const int *)(const void *)p, off, 1);
}

INLINE __m256 gather_f16(const uint8_t *p, __m256i off, int shift)
{
    const __m256i v = _mm256_and_si256(_mm256_srli_epi32(gather4(p, off), shift), _mm256_set1_epi32(0xFFFF));
    const __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm256_cvtph_ps(h);
}

/* Stores the first n (0..8) floats of v at y. */
INLINE void store_n(float *y, __m256 v, int n)
{
    if (n >= 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx), v);
}

INLINE int half_rows(int rows, int h)
{
    const int n = rows - 8 * h;
    return n < 0 ? 0 : n > 8 ? 8 : n;
}

/* ---------------------------------------------------------------- Q8_0, Q4_0 */

static size_t q8p_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / 32) * MLC_GEMM_Q8P_BLOCK;
}

static TARGET void q8_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i c80 = _mm256_set1_epi8((char)0x80);
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        const uint8_t *x = w;
        uint8_t *pb = (uint8_t *)panel + 32 * h;
        for (int64_t b = 0; b < n_in / 32; b++, x += 34, pb += MLC_GEMM_Q8P_BLOCK) {
            UNROLL
            for (int g = 0; g < 8; g++)
                st(pb + 64 * g, _mm256_xor_si256(gather4(x + 2 + 4 * g, off), c80));
            _mm256_store_ps((float *)(void *)(pb + 512), gather_f16(x, off, 0));
        }
    }
}

static TARGET void q4_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), c120 = _mm256_set1_epi8(120);
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        const uint8_t *x = w;
        uint8_t *pb = (uint8_t *)panel + 32 * h;
        for (int64_t b = 0; b < n_in / 32; b++, x += 18, pb += MLC_GEMM_Q8P_BLOCK) {
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = gather4(x + 2 + 4 * g, off);
                st(pb + 64 * g, _mm256_add_epi8(_mm256_and_si256(q, lo4), c120));
                st(pb + 64 * (g + 4), _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi32(q, 4), lo4), c120));
            }
            _mm256_store_ps((float *)(void *)(pb + 512), gather_f16(x, off, 0));
        }
    }
}

/* ggml's kvalues_iq4nl plus 128 in both 128-bit lanes (a vpshufb table). */
INLINE __m256i iq4_lut(void)
{
    return _mm256_broadcastsi128_si256(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141,
                                                     (char)153, (char)166, (char)181, (char)197, (char)217, (char)241));
}

/* Each lane's dword with its byte c (0..3) in all 4 bytes. */
INLINE __m256i spread_byte(__m256i v, int c)
{
    const __m256i idx = _mm256_add_epi8(_mm256_set1_epi8((char)c),
                                        _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404,
                                                          0x08080808, 0x0C0C0C0C));
    return _mm256_shuffle_epi8(v, idx);
}

/* See gemm_avx512.c's q5_0_pack: values q + 112, the fifth bits spread from qh. */
static TARGET void q5_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), c112 = _mm256_set1_epi8(112), one = _mm256_set1_epi8(1);
    const __m256i bit[2] = {_mm256_set1_epi32(0x08040201), _mm256_set1_epi32((int)0x80402010u)};
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        const uint8_t *x = w;
        uint8_t *pb = (uint8_t *)panel + 32 * h;
        for (int64_t b = 0; b < n_in / 32; b++, x += 22, pb += MLC_GEMM_Q8P_BLOCK) {
            const __m256i qh = gather4(x + 2, off);
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = gather4(x + 6 + 4 * g, off);
                const __m256i hl = _mm256_and_si256(spread_byte(qh, g / 2), bit[g % 2]);
                const __m256i hh = _mm256_and_si256(spread_byte(qh, 2 + g / 2), bit[g % 2]);
                const __m256i fl = _mm256_slli_epi32(_mm256_min_epu8(hl, one), 4);
                const __m256i fh = _mm256_slli_epi32(_mm256_min_epu8(hh, one), 4);
                const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, lo4), fl);
                const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(q, 4), lo4), fh);
                st(pb + 64 * g, _mm256_add_epi8(lo, c112));
                st(pb + 64 * (g + 4), _mm256_add_epi8(hi, c112));
            }
            _mm256_store_ps((float *)(void *)(pb + 512), gather_f16(x, off, 0));
        }
    }
}

/* IQ4_NL: table values plus 128, as gemm_avx512.c's iq4_nl_pack. */
static TARGET void iq4_nl_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    const __m256i lut = iq4_lut();
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        const uint8_t *x = w;
        uint8_t *pb = (uint8_t *)panel + 32 * h;
        for (int64_t b = 0; b < n_in / 32; b++, x += 18, pb += MLC_GEMM_Q8P_BLOCK) {
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = gather4(x + 2 + 4 * g, off);
                st(pb + 64 * g, _mm256_shuffle_epi8(lut, _mm256_and_si256(q, lo4)));
                st(pb + 64 * (g + 4), _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi32(q, 4), lo4)));
            }
            _mm256_store_ps((float *)(void *)(pb + 512), gather_f16(x, off, 0));
        }
    }
}

INLINE void q8p_half(const uint8_t *panel, int64_t nb, const uint8_t *a, size_t a_row, const uint8_t *aux,
                     size_t aux_row, float *y, size_t ldy, int n, int h, const int NT)
{
    const __m256i c80 = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256 s[NT_MAX];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * MLC_GEMM_Q8P_BLOCK + 32 * h;
        __m256i acc[NT_MAX];
        UNROLL
        for (int t = 0; t < NT; t++)
            acc[t] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 8; g++) {
            const __m256i wq = _mm256_xor_si256(ld(pb + 64 * g), c80);
            const __m256i aw = _mm256_abs_epi8(wq);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const __m256i sa = _mm256_sign_epi8(bcast(a + (size_t)t * a_row + (size_t)b * 34 + 2 + 4 * g), wq);
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), ones));
            }
        }
        const __m256 dx = _mm256_load_ps((const float *)(const void *)(pb + 512));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const __m256 d = _mm256_mul_ps(dx, _mm256_set1_ps(ldf(aux + (size_t)t * aux_row + (size_t)b * 8 + 4)));
            s[t] = _mm256_add_ps(s[t], _mm256_mul_ps(_mm256_cvtepi32_ps(acc[t]), d));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        store_n(y + (size_t)t * ldy + 8 * h, s[t], n);
}

/* ---------------------------------------------------------------- Q4_K */

static size_t q4_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * MLC_GEMM_Q4KP_BLOCK;
}

/* Q4_K and Q5_K: see gemm_avx512.c's k4_pack. */
INLINE void k4_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel, const bool five)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), m6 = _mm256_set1_epi8(0x3F), m30 = _mm256_set1_epi8(0x30);
    const __m256i ff = _mm256_set1_epi32(0xFF), b10 = _mm256_set1_epi8(0x10);
    const size_t bytes = five ? 176 : 144, qs = five ? 48 : 16;
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
            uint8_t *pb = (uint8_t *)panel + (size_t)i * MLC_GEMM_Q4KP_BLOCK + 32 * h;
            const uint8_t *x = w + (size_t)i * bytes;
            UNROLL
            for (int g = 0; g < 8; g++) {
                const __m256i qh = five ? gather4(x + 16 + 4 * g, off) : _mm256_setzero_si256();
                UNROLL
                for (int c = 0; c < 4; c++) {
                    const __m256i q = gather4(x + qs + 32 * c + 4 * g, off);
                    __m256i lo = _mm256_and_si256(q, lo4), hi = _mm256_and_si256(_mm256_srli_epi32(q, 4), lo4);
                    if (five) {
                        const int j = 2 * c;
                        lo = _mm256_or_si256(lo, _mm256_and_si256(j <= 4 ? _mm256_slli_epi32(qh, 4 - j)
                                                                          : _mm256_srli_epi32(qh, j - 4), b10));
                        hi = _mm256_or_si256(hi, _mm256_and_si256(j + 1 <= 4 ? _mm256_slli_epi32(qh, 3 - j)
                                                                              : _mm256_srli_epi32(qh, j - 3), b10));
                    }
                    st(pb + (2 * c) * 512 + 64 * g, lo);
                    st(pb + (2 * c + 1) * 512 + 64 * g, hi);
                }
            }
            const __m256i w0 = gather4(x + 4, off), w1 = gather4(x + 8, off), w2 = gather4(x + 12, off);
            const __m256i sc_lo = _mm256_and_si256(w0, m6), mn_lo = _mm256_and_si256(w1, m6);
            const __m256i sc_hi =
                _mm256_or_si256(_mm256_and_si256(w2, lo4), _mm256_and_si256(_mm256_srli_epi32(w0, 2), m30));
            const __m256i mn_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), lo4),
                                                  _mm256_and_si256(_mm256_srli_epi32(w1, 2), m30));
            UNROLL
            for (int j = 0; j < 8; j++) {
                const __m256i sc = _mm256_and_si256(_mm256_srli_epi32(j < 4 ? sc_lo : sc_hi, 8 * (j % 4)), ff);
                const __m256i mn = _mm256_and_si256(_mm256_srli_epi32(j < 4 ? mn_lo : mn_hi, 8 * (j % 4)), ff);
                st(pb + MLC_GEMM_Q4KP_SC + j * 64, sc);
                st(pb + MLC_GEMM_Q4KP_MN + j * 64, _mm256_or_si256(mn, _mm256_slli_epi32(mn, 16)));
            }
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q4KP_D), gather_f16(x, off, 0));
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q4KP_D + 64), gather_f16(x, off, 16));
        }
    }
}

static TARGET void q4_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    k4_pack(w, w_row, rows, n_in, panel, false);
}

static TARGET void q5_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    k4_pack(w, w_row, rows, n_in, panel, true);
}

/* SPLIT: groups summed in i16 before the scale multiply (8 for Q4_K's nibbles, 4 for
 * Q5_K's values up to 31: 4 * 2 * 31 * 127 < 2^15). */
INLINE void q4k_half(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, const int SPLIT, float *y,
                     size_t ldy, int n, int h, const int NT)
{
    __m256 s[NT_MAX];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * MLC_GEMM_Q4KP_BLOCK + 32 * h;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m256i sumi[NT_MAX], summs[NT_MAX];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = summs[t] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i sc = ld(pb + MLC_GEMM_Q4KP_SC + j * 64);
            const __m256i sc2 = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
            const __m256i mn = ld(pb + MLC_GEMM_Q4KP_MN + j * 64);
            __m256i p[NT_MAX];
            UNROLL
            for (int t = 0; t < NT; t++)
                p[t] = _mm256_setzero_si256();
            UNROLL
            for (int g = 0; g < 8; g++) {
                const __m256i wv = ld(pb + j * 512 + 64 * g);
                UNROLL
                for (int t = 0; t < NT; t++)
                    p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(wv, bcast(a + (size_t)t * a_row + ao + 4 + j * 32 + 4 * g)));
                if ((g + 1) % SPLIT)
                    continue;
                UNROLL
                for (int t = 0; t < NT; t++) {
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p[t], sc2));
                    p[t] = _mm256_setzero_si256();
                }
            }
            UNROLL
            for (int t = 0; t < NT; t++)
                summs[t] = _mm256_add_epi32(summs[t], _mm256_madd_epi16(mn, bcast(a + (size_t)t * a_row + ao + 4 + MLC_QK_K + 4 * j)));
        }
        const __m256 dx = _mm256_load_ps((const float *)(const void *)(pb + MLC_GEMM_Q4KP_D));
        const __m256 mx = _mm256_load_ps((const float *)(const void *)(pb + MLC_GEMM_Q4KP_D + 64));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const __m256 yd = _mm256_set1_ps(ldf(a + (size_t)t * a_row + ao));
            const __m256 d = _mm256_mul_ps(yd, dx), dmin = _mm256_mul_ps(yd, mx);
            const __m256 t1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi[t]));
            const __m256 t2 = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summs[t]));
            s[t] = _mm256_add_ps(s[t], _mm256_sub_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        store_n(y + (size_t)t * ldy + 8 * h, s[t], n);
}

/* ---------------------------------------------------------------- Q6_K */

static size_t q6_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * MLC_GEMM_Q6KP_BLOCK;
}

/* See gemm_avx512.c's q6_K_pack for where each value's bits are. */
static TARGET void q6_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3);
    for (int hh = 0; hh < 2; hh++) {
        const __m256i off = row_offsets(w_row, rows, hh);
        for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
            uint8_t *pb = (uint8_t *)panel + (size_t)i * MLC_GEMM_Q6KP_BLOCK + 32 * hh;
            const uint8_t *x = w + (size_t)i * 210;
            for (int h = 0; h < 2; h++) {
                UNROLL
                for (int l = 0; l < 32; l += 4) {
                    const __m256i L0 = gather4(x + 64 * h + l, off), L1 = gather4(x + 64 * h + 32 + l, off);
                    const __m256i H = gather4(x + 128 + 32 * h + l, off);
                    const __m256i lo[4] = {_mm256_and_si256(L0, lo4), _mm256_and_si256(L1, lo4),
                                           _mm256_and_si256(_mm256_srli_epi32(L0, 4), lo4),
                                           _mm256_and_si256(_mm256_srli_epi32(L1, 4), lo4)};
                    UNROLL
                    for (int q = 0; q < 4; q++) {
                        const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(H, 2 * q), lo2);
                        const int j = 8 * h + 2 * q + l / 16, g = (l % 16) / 4;
                        st(pb + j * 256 + 64 * g, _mm256_or_si256(lo[q], _mm256_slli_epi32(hi, 4)));
                    }
                }
            }
            UNROLL
            for (int q = 0; q < 4; q++) {
                const __m256i v = gather4(x + 192 + 4 * q, off);
                UNROLL
                for (int k = 0; k < 4; k++)
                    st(pb + MLC_GEMM_Q6KP_SC + (4 * q + k) * 64, _mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * k), 24));
            }
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q6KP_D), gather_f16(x + 206, off, 16));
        }
    }
}

/* Q3_K: see gemm_avx512.c's q3_K_pack (values 0..7 in Q6_K's places, scales minus 32). */
static TARGET void q3_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo2 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    const __m256i lo4 = _mm256_set1_epi32(0xF), three = _mm256_set1_epi32(3), c32 = _mm256_set1_epi32(32);
    for (int hh = 0; hh < 2; hh++) {
        const __m256i off = row_offsets(w_row, rows, hh);
        for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
            uint8_t *pb = (uint8_t *)panel + (size_t)i * MLC_GEMM_Q6KP_BLOCK + 32 * hh;
            const uint8_t *x = w + (size_t)i * 110;
            for (int h = 0; h < 2; h++) {
                UNROLL
                for (int l = 0; l < 32; l += 4) {
                    const __m256i L = gather4(x + 32 + 32 * h + l, off), H = gather4(x + l, off);
                    UNROLL
                    for (int q = 0; q < 4; q++) {
                        const int bit = 4 * h + q, j = 8 * h + 2 * q + l / 16, g = (l % 16) / 4;
                        const __m256i hb = _mm256_and_si256(bit >= 2 ? _mm256_srli_epi32(H, bit - 2)
                                                                     : _mm256_slli_epi32(H, 2 - bit), b4);
                        st(pb + j * 256 + 64 * g, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(L, 2 * q), lo2), hb));
                    }
                }
            }
            const __m256i s0 = gather4(x + 96, off), s1 = gather4(x + 100, off), s2 = gather4(x + 104, off);
            UNROLL
            for (int g = 0; g < 16; g++) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(g % 8 < 4 ? s0 : s1, 8 * (g % 4) + (g >= 8 ? 4 : 0)), lo4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(s2, 8 * (g % 4) + 2 * (g / 4)), three);
                st(pb + MLC_GEMM_Q6KP_SC + g * 64, _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), c32));
            }
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q6KP_D), gather_f16(x + 106, off, 16));
        }
    }
}

/* ---------------------------------------------------------------- Q2_K */

static size_t q2_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * MLC_GEMM_Q2KP_BLOCK;
}

/* Q2_K: see gemm_avx512.c's q2_K_pack. */
static TARGET void q2_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo2 = _mm256_set1_epi8(3), lo4 = _mm256_set1_epi32(0xF);
    for (int hh = 0; hh < 2; hh++) {
        const __m256i off = row_offsets(w_row, rows, hh);
        for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
            uint8_t *pb = (uint8_t *)panel + (size_t)i * MLC_GEMM_Q2KP_BLOCK + 32 * hh;
            const uint8_t *x = w + (size_t)i * 84;
            for (int h = 0; h < 2; h++) {
                UNROLL
                for (int l = 0; l < 32; l += 4) {
                    const __m256i L = gather4(x + 16 + 32 * h + l, off);
                    UNROLL
                    for (int q = 0; q < 4; q++)
                        st(pb + (8 * h + 2 * q + l / 16) * 256 + 64 * ((l % 16) / 4),
                           _mm256_and_si256(_mm256_srli_epi32(L, 2 * q), lo2));
                }
            }
            UNROLL
            for (int q = 0; q < 4; q++) {
                const __m256i v = gather4(x + 4 * q, off);
                UNROLL
                for (int k = 0; k < 4; k++)
                    st(pb + MLC_GEMM_Q2KP_SC + (4 * q + k) * 64, _mm256_and_si256(_mm256_srli_epi32(v, 8 * k), lo4));
                UNROLL
                for (int k = 0; k < 4; k += 2) {
                    const __m256i m0 = _mm256_and_si256(_mm256_srli_epi32(v, 8 * k + 4), lo4);
                    const __m256i m1 = _mm256_and_si256(_mm256_srli_epi32(v, 8 * k + 12), lo4);
                    st(pb + MLC_GEMM_Q2KP_MN + (2 * q + k / 2) * 64, _mm256_or_si256(m0, _mm256_slli_epi32(m1, 16)));
                }
            }
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q2KP_D), gather_f16(x + 80, off, 0));
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_Q2KP_D + 64), gather_f16(x + 80, off, 16));
        }
    }
}

/* Q6_K / Q3_K / Q2_K: the float steps of gemm_avx512.c's k16_tile_n (OFF, MINS as there). */
INLINE void k16_half(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, const int OFF,
                     const bool MINS, float *y, size_t ldy, int n, int h, const int NT)
{
    const size_t blk = MINS ? MLC_GEMM_Q2KP_BLOCK : MLC_GEMM_Q6KP_BLOCK;
    const size_t doff = MINS ? MLC_GEMM_Q2KP_D : MLC_GEMM_Q6KP_D;
    __m256 s[NT_MAX];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm256_setzero_ps();
    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * blk + 32 * h;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m256i sumi[NT_MAX];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 16; j++) {
            const __m256i sc = ld(pb + MLC_GEMM_Q6KP_SC + j * 64);
            const __m256i sc2 = _mm256_or_si256(_mm256_and_si256(sc, lo16), _mm256_slli_epi32(sc, 16));
            const __m256i w0 = ld(pb + j * 256), w1 = ld(pb + j * 256 + 64);
            const __m256i w2 = ld(pb + j * 256 + 128), w3 = ld(pb + j * 256 + 192);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = a + (size_t)t * a_row + ao;
                const uint8_t *q8 = at + 4 + j * 16;
                const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast(q8)), _mm256_maddubs_epi16(w1, bcast(q8 + 4)));
                const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast(q8 + 8)), _mm256_maddubs_epi16(w3, bcast(q8 + 12)));
                __m256i v = _mm256_add_epi32(_mm256_madd_epi16(p0, sc2), _mm256_madd_epi16(p1, sc2));
                if (OFF) {
                    int16_t bs;
                    memcpy(&bs, at + 4 + MLC_QK_K + 2 * j, 2);
                    v = _mm256_add_epi32(v, _mm256_mullo_epi32(sc, _mm256_set1_epi32(-OFF * bs)));
                }
                sumi[t] = _mm256_add_epi32(sumi[t], v);
            }
        }
        const __m256 dx = _mm256_load_ps((const float *)(const void *)(pb + doff));
        if (!MINS) {
            UNROLL
            for (int t = 0; t < NT; t++) {
                const __m256 d = _mm256_mul_ps(dx, _mm256_set1_ps(ldf(a + (size_t)t * a_row + ao)));
                s[t] = _mm256_add_ps(s[t], _mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi[t])));
            }
            continue;
        }
        const __m256 mx = _mm256_load_ps((const float *)(const void *)(pb + doff + 64));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + ao;
            __m256i summs = _mm256_setzero_si256();
            UNROLL
            for (int p = 0; p < 8; p++)
                summs = _mm256_add_epi32(summs, _mm256_madd_epi16(ld(pb + MLC_GEMM_Q2KP_MN + p * 64),
                                                                  bcast(at + 4 + MLC_QK_K + 4 * p)));
            const __m256 yd = _mm256_set1_ps(ldf(at));
            const __m256 d = _mm256_mul_ps(yd, dx), dmin = _mm256_mul_ps(yd, mx);
            const __m256 t1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi[t]));
            const __m256 t2 = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summs));
            s[t] = _mm256_add_ps(s[t], _mm256_sub_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        store_n(y + (size_t)t * ldy + 8 * h, s[t], n);
}

/* ---------------------------------------------------------------- IQ4_XS */

static size_t iq4_xs_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * MLC_GEMM_IQ4XSP_BLOCK;
}

/* IQ4_XS: see gemm_avx512.c's iq4_xs_pack. */
static TARGET void iq4_xs_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lut = iq4_lut();
    const __m256i m4 = _mm256_set1_epi32(0xF), three = _mm256_set1_epi32(3), c32 = _mm256_set1_epi32(32);
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
            uint8_t *pb = (uint8_t *)panel + (size_t)i * MLC_GEMM_IQ4XSP_BLOCK + 32 * h;
            const uint8_t *x = w + (size_t)i * 136;
            UNROLL
            for (int ib = 0; ib < 8; ib++) {
                UNROLL
                for (int g = 0; g < 4; g++) {
                    const __m256i q = gather4(x + 8 + 16 * ib + 4 * g, off);
                    st(pb + ib * 512 + 64 * g, _mm256_shuffle_epi8(lut, _mm256_and_si256(q, lo4)));
                    st(pb + ib * 512 + 64 * (g + 4), _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi32(q, 4), lo4)));
                }
            }
            const __m256i hd = gather4(x, off), sl = gather4(x + 4, off);
            UNROLL
            for (int ib = 0; ib < 8; ib++) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(sl, 4 * ib), m4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(hd, 16 + 2 * ib), three);
                st(pb + MLC_GEMM_IQ4XSP_SC + ib * 64, _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), c32));
            }
            _mm256_store_ps((float *)(void *)(pb + MLC_GEMM_IQ4XSP_D), gather_f16(x, off, 0));
        }
    }
}

/* The signed table values against the activation as Q8_0's (|pair| <= 2 * 127 * 127), each
 * group's i16 pairs times the sub-block scale (|sc| <= 32) into i32. */
INLINE void iq4xs_half(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, float *y, size_t ldy,
                       int n, int h, const int NT)
{
    const __m256i c80 = _mm256_set1_epi8((char)0x80), lo16 = _mm256_set1_epi32(0xFFFF);
    __m256 s[NT_MAX];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * MLC_GEMM_IQ4XSP_BLOCK + 32 * h;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m256i sumi[NT_MAX];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i sc = ld(pb + MLC_GEMM_IQ4XSP_SC + j * 64);
            const __m256i sc2 = _mm256_or_si256(_mm256_and_si256(sc, lo16), _mm256_slli_epi32(sc, 16));
            UNROLL
            for (int g = 0; g < 8; g++) {
                const __m256i wq = _mm256_xor_si256(ld(pb + j * 512 + 64 * g), c80);
                const __m256i aw = _mm256_abs_epi8(wq);
                UNROLL
                for (int t = 0; t < NT; t++) {
                    const __m256i sa = _mm256_sign_epi8(bcast(a + (size_t)t * a_row + ao + 4 + j * 32 + 4 * g), wq);
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), sc2));
                }
            }
        }
        const __m256 dx = _mm256_load_ps((const float *)(const void *)(pb + MLC_GEMM_IQ4XSP_D));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const __m256 d = _mm256_mul_ps(dx, _mm256_set1_ps(ldf(a + (size_t)t * a_row + ao)));
            s[t] = _mm256_add_ps(s[t], _mm256_mul_ps(d, _mm256_cvtepi32_ps(sumi[t])));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        store_n(y + (size_t)t * ldy + 8 * h, s[t], n);
}

/* ---------------------------------------------------------------- Q4_1, Q5_1 */

static size_t q41p_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / 32) * MLC_GEMM_Q41P_BLOCK;
}

/* Q4_1 / Q5_1: see gemm_avx512.c's q41_pack (levels 0..15 / 0..31, f32 d and m). */
INLINE void q41_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel, const bool five)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i bit[2] = {_mm256_set1_epi32(0x08040201), _mm256_set1_epi32((int)0x80402010u)};
    const size_t bytes = five ? 24 : 20, qs = five ? 8 : 4;
    for (int h = 0; h < 2; h++) {
        const __m256i off = row_offsets(w_row, rows, h);
        const uint8_t *x = w;
        uint8_t *pb = (uint8_t *)panel + 32 * h;
        for (int64_t b = 0; b < n_in / 32; b++, x += bytes, pb += MLC_GEMM_Q41P_BLOCK) {
            const __m256i qh = five ? gather4(x + 4, off) : _mm256_setzero_si256();
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = gather4(x + qs + 4 * g, off);
                __m256i lo = _mm256_and_si256(q, lo4), hi = _mm256_and_si256(_mm256_srli_epi32(q, 4), lo4);
                if (five) {
                    const __m256i hl = _mm256_and_si256(spread_byte(qh, g / 2), bit[g % 2]);
                    const __m256i hh = _mm256_and_si256(spread_byte(qh, 2 + g / 2), bit[g % 2]);
                    lo = _mm256_or_si256(lo, _mm256_slli_epi32(_mm256_min_epu8(hl, one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi32(_mm256_min_epu8(hh, one), 4));
                }
                st(pb + 64 * g, lo);
                st(pb + 64 * (g + 4), hi);
            }
            _mm256_store_ps((float *)(void *)(pb + 512), gather_f16(x, off, 0));
            _mm256_store_ps((float *)(void *)(pb + 576), gather_f16(x, off, 16));
        }
    }
}

static TARGET void q4_1_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    q41_pack(w, w_row, rows, n_in, panel, false);
}

static TARGET void q5_1_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    q41_pack(w, w_row, rows, n_in, panel, true);
}

/* Levels (<= 31) against Q8_1 activations: 4 groups per i16 sum (<= 31496), then the
 * scalar dot's (float)sumi * (dx * dy) + mx * sy. */
INLINE void q41_half(const uint8_t *panel, int64_t nb, const uint8_t *a, size_t a_row, float *y, size_t ldy,
                     int n, int h, const int NT)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 s[NT_MAX];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * MLC_GEMM_Q41P_BLOCK + 32 * h;
        __m256i p0[NT_MAX], p1[NT_MAX];
        UNROLL
        for (int t = 0; t < NT; t++)
            p0[t] = p1[t] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 8; g++) {
            const __m256i wv = ld(pb + 64 * g);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const __m256i pr = _mm256_maddubs_epi16(wv, bcast(a + (size_t)t * a_row + (size_t)b * 36 + 4 + 4 * g));
                if (g < 4)
                    p0[t] = _mm256_add_epi16(p0[t], pr);
                else
                    p1[t] = _mm256_add_epi16(p1[t], pr);
            }
        }
        const __m256 dx = _mm256_load_ps((const float *)(const void *)(pb + 512));
        const __m256 mx = _mm256_load_ps((const float *)(const void *)(pb + 576));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + (size_t)b * 36;
            const __m256i acc = _mm256_add_epi32(_mm256_madd_epi16(p0[t], ones), _mm256_madd_epi16(p1[t], ones));
            const __m128 ds = _mm_cvtph_ps(_mm_cvtsi32_si128((int)ld32(at))); /* [dy, sy] */
            const __m256 dy = _mm256_broadcastss_ps(ds), sy = _mm256_broadcastss_ps(_mm_movehdup_ps(ds));
            const __m256 t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(dx, dy));
            const __m256 t2 = _mm256_mul_ps(mx, sy);
            s[t] = _mm256_add_ps(s[t], _mm256_add_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        store_n(y + (size_t)t * ldy + 8 * h, s[t], n);
}

/* ---------------------------------------------------------------- tiles */

/* Runs half-kernel KERNEL over both halves and the nt rows, NT_MAX at a time. */
#define TILE_BODY(KERNEL, ...)                                                              \
    for (int t0 = 0; t0 < nt; t0 += NT_MAX) {                                               \
        const int m = nt - t0 < NT_MAX ? nt - t0 : NT_MAX;                                  \
        for (int h = 0; h < 2; h++) {                                                       \
            const int hr = half_rows(rows, h);                                              \
            if (!hr)                                                                        \
                continue;                                                                   \
            switch (m) {                                                                    \
            case 4: KERNEL(__VA_ARGS__, y + (size_t)t0 * ldy, ldy, hr, h, 4); break;        \
            case 3: KERNEL(__VA_ARGS__, y + (size_t)t0 * ldy, ldy, hr, h, 3); break;        \
            case 2: KERNEL(__VA_ARGS__, y + (size_t)t0 * ldy, ldy, hr, h, 2); break;        \
            default: KERNEL(__VA_ARGS__, y + (size_t)t0 * ldy, ldy, hr, h, 1); break;       \
            }                                                                               \
        }                                                                                   \
    }

static TARGET void q8p_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                            const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    TILE_BODY(q8p_half, panel, n_in / 32, a + (size_t)t0 * a_row, a_row, aux + (size_t)t0 * aux_row, aux_row)
}

static TARGET void q4_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(q4k_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row, 8)
}

static TARGET void q5_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(q4k_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row, 4)
}

static TARGET void q6_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(k16_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row, 32, false)
}

static TARGET void q3_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(k16_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row, 4, false)
}

static TARGET void q2_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(k16_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row, 0, true)
}

static TARGET void iq4_xs_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                               const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(iq4xs_half, panel, n_in / MLC_QK_K, a + (size_t)t0 * a_row, a_row)
}

static TARGET void q41p_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    TILE_BODY(q41_half, panel, n_in / 32, a + (size_t)t0 * a_row, a_row)
}

static const mlc_gemm_kernel Q8_0_K = {q8p_panel_bytes, q8_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q4_0_K = {q8p_panel_bytes, q4_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q5_0_K = {q8p_panel_bytes, q5_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel IQ4_NL_K = {q8p_panel_bytes, iq4_nl_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q4_K_K = {q4_K_panel_bytes, q4_K_pack, NULL, NULL, q4_K_tile};
static const mlc_gemm_kernel Q5_K_K = {q4_K_panel_bytes, q5_K_pack, NULL, NULL, q5_K_tile};
static const mlc_gemm_kernel Q6_K_K = {q6_K_panel_bytes, q6_K_pack, NULL, NULL, q6_K_tile};
static const mlc_gemm_kernel Q3_K_K = {q6_K_panel_bytes, q3_K_pack, NULL, NULL, q3_K_tile};
static const mlc_gemm_kernel Q2_K_K = {q2_K_panel_bytes, q2_K_pack, NULL, NULL, q2_K_tile};
static const mlc_gemm_kernel IQ4_XS_K = {iq4_xs_panel_bytes, iq4_xs_pack, NULL, NULL, iq4_xs_tile};
static const mlc_gemm_kernel Q4_1_K = {q41p_panel_bytes, q4_1_pack, NULL, NULL, q41p_tile};
static const mlc_gemm_kernel Q5_1_K = {q41p_panel_bytes, q5_1_pack, NULL, NULL, q41p_tile};

const mlc_gemm_kernel *mlc_cpu_gemm_avx2(uint32_t type)
{
    switch (type) {
    case MLC_TYPE_Q8_0: return &Q8_0_K;
    case MLC_TYPE_Q4_0: return &Q4_0_K;
    case MLC_TYPE_Q5_0: return &Q5_0_K;
    case MLC_TYPE_IQ4_NL: return &IQ4_NL_K;
    case MLC_TYPE_Q4_K: return &Q4_K_K;
    case MLC_TYPE_Q5_K: return &Q5_K_K;
    case MLC_TYPE_Q6_K: return &Q6_K_K;
    case MLC_TYPE_Q3_K: return &Q3_K_K;
    case MLC_TYPE_Q2_K: return &Q2_K_K;
    case MLC_TYPE_IQ4_XS: return &IQ4_XS_K;
    case MLC_TYPE_Q4_1: return &Q4_1_K;
    case MLC_TYPE_Q5_1: return &Q5_1_K;
    default: return NULL;
    }
}
