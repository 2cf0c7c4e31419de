/* gemm_avx512.c: the AVX-512 VNNI tile kernels of gemm.h (every quantized weight type:
 * Q8_0, Q4_0, Q5_0, IQ4_NL, Q4_1, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS).
 *
 * A panel holds 16 weight rows, one per 32-bit lane of a 512-bit register: for each group
 * of 4 consecutive values, 64 bytes = 4 bytes of each row. vpdpbusd multiplies those
 * (unsigned) bytes by 4 bytes of one activation row broadcast to every lane, so 8 of them
 * give the 16 rows' integer sums over a 32-value block, with no horizontal reduction.
 * vpdpbusd wants its first operand unsigned, so the signed weights of Q8_0 / Q4_0 / Q5_0 /
 * IQ4_NL (its table's values) are stored plus 128 and the block's activation sum times 128
 * is subtracted (the sum comes from prep, once per activation row); Q4_K's and Q5_K's
 * values (0..15, 0..31) are unsigned already, as are the levels of Q4_1 / Q5_1 and Q2_K
 * (whose min terms come from the activation's sums), and Q6_K's / Q3_K's values are stored
 * as levels plus 32 / 4 with that many times the activation's 16-value sums (Q8_K's bsums)
 * subtracted per sub-block (IQ4_XS: 128 times its 32-value sums). The integer sums are
 * exact, so the float operations that follow, one lane per row, are those of the scalar
 * dot (vecdot.c) in its order: the outputs are bit-identical to it. Each tile takes up to 8 activation rows: the
 * panel's 8 registers of a block are loaded once for the 8 rows. */
#include "gemm.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE \
    static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define UNROLL _Pragma("GCC unroll 16")

#define LANES 16
#define MAX_NT 8

static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static float ldf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

INLINE __m512i bcast(const uint8_t *p)
{
    return _mm512_set1_epi32((int)ld32(p));
}

/* Lane r: the byte offset of its source row (the last real row repeats); gemm.c keeps
 * 16 rows' offsets within int32. */
INLINE __m512i row_offsets(size_t w_row, int rows)
{
    const __m512i r = _mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                       _mm512_set1_epi32(rows - 1));
    return _mm512_mullo_epi32(r, _mm512_set1_epi32((int)w_row));
}

/* The 4 bytes at p + offset of lane r, for the 16 lanes: a 16 x 4-byte transpose. */
INLINE __m512i gather4(const uint8_t *p, __m512i off)
{
    return _mm512_i32gather_epi32(off, (const void *)p, 1);
}

/* The f16 at p + offset of each lane, as f32. */
INLINE __m512 gather_f16(const uint8_t *p, __m512i off)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(gather4(p, off), _mm512_set1_epi32(0xFFFF))));
}

INLINE __mmask16 row_mask(int rows)
{
    return (__mmask16)((1u << rows) - 1u);
}

/* KERNEL(..., NT) with NT the constant nt (1..MAX_NT), so that each count gets its own
 * fully unrolled copy. */
#define NT_SWITCH(nt, KERNEL, ...)                \
    switch (nt) {                                 \
    case 8: KERNEL(__VA_ARGS__, 8); break;        \
    case 7: KERNEL(__VA_ARGS__, 7); break;        \
    case 6: KERNEL(__VA_ARGS__, 6); break;        \
    case 5: KERNEL(__VA_ARGS__, 5); break;        \
    case 4: KERNEL(__VA_ARGS__, 4); break;        \
    case 3: KERNEL(__VA_ARGS__, 3); break;        \
    case 2: KERNEL(__VA_ARGS__, 2); break;        \
    default: KERNEL(__VA_ARGS__, 1); break;       \
    }

/* ggml's kvalues_iq4nl (-127..113) plus 128, in every 128-bit lane (a vpshufb table). */
INLINE __m512i iq4_lut(void)
{
    return _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153,
                                                (char)166, (char)181, (char)197, (char)217, (char)241));
}

/* ---------------------------------------------------------------- Q8_0, Q4_0 */

#define Q8P_BLOCK MLC_GEMM_Q8P_BLOCK

static size_t q8p_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / 32) * Q8P_BLOCK;
}

static TARGET void q8_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), c80 = _mm512_set1_epi8((char)0x80);
    uint8_t *pb = panel;
    for (int64_t b = 0; b < n_in / 32; b++, w += 34, pb += Q8P_BLOCK) {
        UNROLL
        for (int g = 0; g < 8; g++)
            _mm512_store_si512((void *)(pb + 64 * g), _mm512_xor_si512(gather4(w + 2 + 4 * g, off), c80));
        _mm512_store_ps((void *)(pb + 512), gather_f16(w, off));
    }
}

/* Q4_0: byte j of qs holds value j (low nibble) and j + 16 (high), each q - 8: stored
 * as q + 120. */
static TARGET void q4_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F), c120 = _mm512_set1_epi8(120);
    uint8_t *pb = panel;
    for (int64_t b = 0; b < n_in / 32; b++, w += 18, pb += Q8P_BLOCK) {
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m512i q = gather4(w + 2 + 4 * g, off);
            const __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi32(q, 4), lo4);
            _mm512_store_si512((void *)(pb + 64 * g), _mm512_add_epi8(lo, c120));
            _mm512_store_si512((void *)(pb + 64 * (g + 4)), _mm512_add_epi8(hi, c120));
        }
        _mm512_store_ps((void *)(pb + 512), gather_f16(w, off));
    }
}

/* Each lane's dword with its byte c (0..3) in all 4 bytes. */
INLINE __m512i spread_byte(__m512i v, int c)
{
    const __m512i idx = _mm512_add_epi8(_mm512_set1_epi8((char)c),
                                        _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C)));
    return _mm512_shuffle_epi8(v, idx);
}

/* Q5_0 (f16 d, u32 qh, qs[16]): value j's low 4 bits as Q4_0's, its fifth bit bit j of qh;
 * q - 16, stored as q + 112. Group g's 4 fifth bits are a nibble of qh: byte g / 2 (low
 * nibbles) or 2 + g / 2 (high nibbles), half g % 2. */
static TARGET void q5_0_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F), c112 = _mm512_set1_epi8(112);
    const __m512i one = _mm512_set1_epi8(1);
    const __m512i bit[2] = {_mm512_set1_epi32(0x08040201), _mm512_set1_epi32((int)0x80402010u)};
    uint8_t *pb = panel;
    for (int64_t b = 0; b < n_in / 32; b++, w += 22, pb += Q8P_BLOCK) {
        const __m512i qh = gather4(w + 2, off);
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m512i q = gather4(w + 6 + 4 * g, off);
            const __m512i hl = _mm512_and_si512(spread_byte(qh, g / 2), bit[g % 2]);
            const __m512i hh = _mm512_and_si512(spread_byte(qh, 2 + g / 2), bit[g % 2]);
            /* 0 or 1 per byte, then 0 or 16 (no byte carries into the next) */
            const __m512i fl = _mm512_slli_epi32(_mm512_min_epu8(hl, one), 4);
            const __m512i fh = _mm512_slli_epi32(_mm512_min_epu8(hh, one), 4);
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(q, lo4), fl);
            const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(q, 4), lo4), fh);
            _mm512_store_si512((void *)(pb + 64 * g), _mm512_add_epi8(lo, c112));
            _mm512_store_si512((void *)(pb + 64 * (g + 4)), _mm512_add_epi8(hi, c112));
        }
        _mm512_store_ps((void *)(pb + 512), gather_f16(w, off));
    }
}

/* IQ4_NL (f16 d, qs[16] as Q4_0's): value table[nibble], stored plus 128. */
static TARGET void iq4_nl_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F);
    const __m512i lut = iq4_lut();
    uint8_t *pb = panel;
    for (int64_t b = 0; b < n_in / 32; b++, w += 18, pb += Q8P_BLOCK) {
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m512i q = gather4(w + 2 + 4 * g, off);
            const __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi32(q, 4), lo4);
            _mm512_store_si512((void *)(pb + 64 * g), _mm512_shuffle_epi8(lut, lo));
            _mm512_store_si512((void *)(pb + 64 * (g + 4)), _mm512_shuffle_epi8(lut, hi));
        }
        _mm512_store_ps((void *)(pb + 512), gather_f16(w, off));
    }
}

/* s += (float)sumi * (dx * dy) per block, as the scalar dot. */
INLINE void q8p_tile_n(const uint8_t *panel, int64_t nb, const uint8_t *a, size_t a_row, const uint8_t *aux,
                       size_t aux_row, float *y, size_t ldy, __mmask16 m, const int NT)
{
    __m512 s[MAX_NT];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * Q8P_BLOCK;
        __m512i w[8];
        UNROLL
        for (int g = 0; g < 8; g++)
            w[g] = _mm512_load_si512((const void *)(pb + 64 * g));
        const __m512 dx = _mm512_load_ps((const void *)(pb + 512));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + (size_t)b * 34 + 2;
            const uint8_t *ax = aux + (size_t)t * aux_row + (size_t)b * 8;
            __m512i acc = bcast(ax);
            UNROLL
            for (int g = 0; g < 8; g++)
                acc = _mm512_dpbusd_epi32(acc, w[g], bcast(at + 4 * g));
            const __m512 d = _mm512_mul_ps(dx, _mm512_set1_ps(ldf(ax + 4)));
            s[t] = _mm512_add_ps(s[t], _mm512_mul_ps(_mm512_cvtepi32_ps(acc), d));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, s[t]);
}

static TARGET void q8p_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                            const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    NT_SWITCH(nt, q8p_tile_n, panel, n_in / 32, a, a_row, aux, aux_row, y, ldy, row_mask(rows))
}

/* ---------------------------------------------------------------- Q4_K */

#define Q4KP_SC MLC_GEMM_Q4KP_SC
#define Q4KP_MN MLC_GEMM_Q4KP_MN
#define Q4KP_D MLC_GEMM_Q4KP_D
#define Q4KP_BLOCK MLC_GEMM_Q4KP_BLOCK

static size_t q4_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * Q4KP_BLOCK;
}

/* Q4_K (144-byte blocks: f16 d, dmin; scales[12]; qs[128]) and Q5_K (176: the same with
 * qh[32] before qs). Dword 8c + g of qs: values 64c + 4g .. + 3 (low nibbles, sub-block
 * 2c) and the same + 32 (high nibbles, sub-block 2c + 1); Q5_K's fifth bit of sub-block j
 * is bit j of qh[4g .. 4g + 3]. */
INLINE void k4_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel, const bool five)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F), b10 = _mm512_set1_epi8(0x10);
    const size_t bytes = five ? 176 : 144, qs = five ? 48 : 16;
    uint8_t *p = panel;
    for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
        uint8_t *pb = p + (size_t)i * Q4KP_BLOCK;
        const uint8_t *x = w + (size_t)i * bytes;
        UNROLL
        for (int g = 0; g < 8; g++) {
            const __m512i qh = five ? gather4(x + 16 + 4 * g, off) : _mm512_setzero_si512();
            UNROLL
            for (int c = 0; c < 4; c++) {
                const __m512i q = gather4(x + qs + 32 * c + 4 * g, off);
                __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi32(q, 4), lo4);
                if (five) {
                    /* bit j of each byte to bit 4 (j = 2c, 2c + 1 <= 7) */
                    const int j = 2 * c;
                    lo = _mm512_or_si512(lo, _mm512_and_si512(j <= 4 ? _mm512_slli_epi32(qh, 4 - j)
                                                                      : _mm512_srli_epi32(qh, j - 4), b10));
                    hi = _mm512_or_si512(hi, _mm512_and_si512(j + 1 <= 4 ? _mm512_slli_epi32(qh, 3 - j)
                                                                          : _mm512_srli_epi32(qh, j - 3), b10));
                }
                _mm512_store_si512((void *)(pb + (2 * c) * 512 + 64 * g), lo);
                _mm512_store_si512((void *)(pb + (2 * c + 1) * 512 + 64 * g), hi);
            }
        }
        _mm512_store_ps((void *)(pb + Q4KP_D), gather_f16(x, off));
        _mm512_store_ps((void *)(pb + Q4KP_D + 64), gather_f16(x + 2, off));
        /* The 12 scale bytes as in vecdot.c's q4k_scale_min: scales and mins of sub-blocks 0..3 in
         * the low 6 bits of bytes 0..3 and 4..7, those of 4..7 split over bytes 8..11
         * (low / high nibble) and the top 2 bits of bytes 0..3 / 4..7. */
        const __m512i w0 = gather4(x + 4, off), w1 = gather4(x + 8, off), w2 = gather4(x + 12, off);
        const __m512i m6 = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30);
        const __m512i sc_lo = _mm512_and_si512(w0, m6), mn_lo = _mm512_and_si512(w1, m6);
        const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(w2, lo4), _mm512_and_si512(_mm512_srli_epi32(w0, 2), m30));
        const __m512i mn_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), lo4),
                                              _mm512_and_si512(_mm512_srli_epi32(w1, 2), m30));
        const __m512i ff = _mm512_set1_epi32(0xFF);
        UNROLL
        for (int j = 0; j < 8; j++) {
            const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(j < 4 ? sc_lo : sc_hi, 8 * (j % 4)), ff);
            const __m512i mn = _mm512_and_si512(_mm512_srli_epi32(j < 4 ? mn_lo : mn_hi, 8 * (j % 4)), ff);
            _mm512_store_si512((void *)(pb + Q4KP_SC + j * 64), sc);
            _mm512_store_si512((void *)(pb + Q4KP_MN + j * 64), _mm512_or_si512(mn, _mm512_slli_epi32(mn, 16)));
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

/* s += d * (float)sumi - dmin * (float)summs with d = yd * dx, dmin = yd * dmin_x. */
INLINE void q4k_tile_n(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, float *y,
                       size_t ldy, __mmask16 m, const int NT)
{
    __m512 s[MAX_NT];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * Q4KP_BLOCK;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m512i sumi[MAX_NT];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i w[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                w[g] = _mm512_load_si512((const void *)(pb + j * 512 + 64 * g));
            const __m512i sc = _mm512_load_si512((const void *)(pb + Q4KP_SC + j * 64));
            UNROLL
            for (int t = 0; t < NT; t++) {
                const uint8_t *q8 = a + (size_t)t * a_row + ao + 4 + j * 32;
                __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], bcast(q8));
                UNROLL
                for (int g = 1; g < 8; g++)
                    acc = _mm512_dpbusd_epi32(acc, w[g], bcast(q8 + 4 * g));
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(acc, sc));
            }
        }
        __m512i mn[8];
        UNROLL
        for (int j = 0; j < 8; j++)
            mn[j] = _mm512_load_si512((const void *)(pb + Q4KP_MN + j * 64));
        const __m512 dx = _mm512_load_ps((const void *)(pb + Q4KP_D));
        const __m512 mx = _mm512_load_ps((const void *)(pb + Q4KP_D + 64));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + ao;
            __m512i summs = _mm512_setzero_si512();
            UNROLL
            for (int j = 0; j < 8; j++)
                summs = _mm512_dpwssd_epi32(summs, mn[j], bcast(at + 4 + MLC_QK_K + 4 * j));
            const __m512 yd = _mm512_set1_ps(ldf(at));
            const __m512 d = _mm512_mul_ps(yd, dx), dmin = _mm512_mul_ps(yd, mx);
            const __m512 t1 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t]));
            const __m512 t2 = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summs));
            s[t] = _mm512_add_ps(s[t], _mm512_sub_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, s[t]);
}

static TARGET void q4_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, q4k_tile_n, panel, n_in / MLC_QK_K, a, a_row, y, ldy, row_mask(rows))
}

/* ---------------------------------------------------------------- Q6_K */

#define Q6KP_SC MLC_GEMM_Q6KP_SC
#define Q6KP_D MLC_GEMM_Q6KP_D
#define Q6KP_BLOCK MLC_GEMM_Q6KP_BLOCK

static size_t q6_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * Q6KP_BLOCK;
}

/* Value k = 128 h + 32 q + l of a Q6_K block (ql[128], qh[64], i8 scales[16], f16 d):
 * low 4 bits in ql[64 h + 32 (q & 1) + l] (low nibble for q < 2), high 2 bits at bit 2q
 * of qh[32 h + l]. Stored as 0..63 in sub-block k / 16, group (k % 16) / 4. */
static TARGET void q6_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F), lo2 = _mm512_set1_epi8(3);
    uint8_t *p = panel;
    for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
        uint8_t *pb = p + (size_t)i * Q6KP_BLOCK;
        const uint8_t *x = w + (size_t)i * 210;
        for (int h = 0; h < 2; h++) {
            UNROLL
            for (int l = 0; l < 32; l += 4) {
                const __m512i L0 = gather4(x + 64 * h + l, off), L1 = gather4(x + 64 * h + 32 + l, off);
                const __m512i H = gather4(x + 128 + 32 * h + l, off);
                const __m512i lo[4] = {_mm512_and_si512(L0, lo4), _mm512_and_si512(L1, lo4),
                                       _mm512_and_si512(_mm512_srli_epi32(L0, 4), lo4),
                                       _mm512_and_si512(_mm512_srli_epi32(L1, 4), lo4)};
                UNROLL
                for (int q = 0; q < 4; q++) {
                    const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(H, 2 * q), lo2);
                    const int j = 8 * h + 2 * q + l / 16, g = (l % 16) / 4;
                    _mm512_store_si512((void *)(pb + j * 256 + 64 * g),
                                       _mm512_or_si512(lo[q], _mm512_slli_epi32(hi, 4)));
                }
            }
        }
        /* The 16 i8 scales, sign-extended: byte k of dword q is scale 4q + k. */
        UNROLL
        for (int q = 0; q < 4; q++) {
            const __m512i v = gather4(x + 192 + 4 * q, off);
            UNROLL
            for (int k = 0; k < 4; k++)
                _mm512_store_si512((void *)(pb + Q6KP_SC + (4 * q + k) * 64),
                                   _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * k), 24));
        }
        /* d is the block's last 2 bytes: read the 4 ending there, not past the row. */
        const __m512i d16 = _mm512_srli_epi32(gather4(x + 206, off), 16);
        _mm512_store_ps((void *)(pb + Q6KP_D), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d16)));
    }
}

/* Q3_K (110-byte blocks: hmask[32], qs[64], scales[12], f16 d): value k = 128 h + 32 q + l
 * has its low 2 bits at bit 2q of qs[32 h + l] and its third at bit 4h + q of hmask[l];
 * stored as 0..7 (the level plus 4) in Q6_K's places. Scales as vecdot.c's q3k_scale,
 * minus 32. */
static TARGET void q3_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo2 = _mm512_set1_epi8(3), b4 = _mm512_set1_epi8(4);
    const __m512i lo4 = _mm512_set1_epi32(0xF), three = _mm512_set1_epi32(3), c32 = _mm512_set1_epi32(32);
    uint8_t *p = panel;
    for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
        uint8_t *pb = p + (size_t)i * Q6KP_BLOCK;
        const uint8_t *x = w + (size_t)i * 110;
        for (int h = 0; h < 2; h++) {
            UNROLL
            for (int l = 0; l < 32; l += 4) {
                const __m512i L = gather4(x + 32 + 32 * h + l, off), H = gather4(x + l, off);
                UNROLL
                for (int q = 0; q < 4; q++) {
                    const int bit = 4 * h + q, j = 8 * h + 2 * q + l / 16, g = (l % 16) / 4;
                    const __m512i hb = _mm512_and_si512(bit >= 2 ? _mm512_srli_epi32(H, bit - 2)
                                                                 : _mm512_slli_epi32(H, 2 - bit), b4);
                    _mm512_store_si512((void *)(pb + j * 256 + 64 * g),
                                       _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(L, 2 * q), lo2), hb));
                }
            }
        }
        const __m512i s0 = gather4(x + 96, off), s1 = gather4(x + 100, off), s2 = gather4(x + 104, off);
        UNROLL
        for (int g = 0; g < 16; g++) {
            const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(g % 8 < 4 ? s0 : s1, 8 * (g % 4) + (g >= 8 ? 4 : 0)), lo4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(s2, 8 * (g % 4) + 2 * (g / 4)), three);
            _mm512_store_si512((void *)(pb + Q6KP_SC + g * 64),
                               _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), c32));
        }
        const __m512i d16 = _mm512_srli_epi32(gather4(x + 106, off), 16);
        _mm512_store_ps((void *)(pb + Q6KP_D), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d16)));
    }
}

/* ---------------------------------------------------------------- Q2_K */

#define Q2KP_SC MLC_GEMM_Q2KP_SC
#define Q2KP_MN MLC_GEMM_Q2KP_MN
#define Q2KP_D MLC_GEMM_Q2KP_D
#define Q2KP_BLOCK MLC_GEMM_Q2KP_BLOCK
_Static_assert(MLC_GEMM_Q2KP_SC == MLC_GEMM_Q6KP_SC, "the 16-value tile reads both panels' scales at one offset");

static size_t q2_K_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * Q2KP_BLOCK;
}

/* Q2_K (84-byte blocks: scales[16], qs[64], f16 d, dmin): value k = 128 h + 32 q + l is
 * bits 2q of qs[32 h + l] (0..3), in Q6_K's places; sub-block g's scale and min are the low
 * and high nibble of scales[g]. */
static TARGET void q2_K_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo2 = _mm512_set1_epi8(3), lo4 = _mm512_set1_epi32(0xF);
    uint8_t *p = panel;
    for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
        uint8_t *pb = p + (size_t)i * Q2KP_BLOCK;
        const uint8_t *x = w + (size_t)i * 84;
        for (int h = 0; h < 2; h++) {
            UNROLL
            for (int l = 0; l < 32; l += 4) {
                const __m512i L = gather4(x + 16 + 32 * h + l, off);
                UNROLL
                for (int q = 0; q < 4; q++) {
                    const int j = 8 * h + 2 * q + l / 16, g = (l % 16) / 4;
                    _mm512_store_si512((void *)(pb + j * 256 + 64 * g), _mm512_and_si512(_mm512_srli_epi32(L, 2 * q), lo2));
                }
            }
        }
        /* scales[4q + k] is byte k of dword q; the mins of sub-blocks 2p, 2p + 1 go in the
         * two i16 halves of dword p (against bsums[2p], bsums[2p + 1]). */
        UNROLL
        for (int q = 0; q < 4; q++) {
            const __m512i v = gather4(x + 4 * q, off);
            UNROLL
            for (int k = 0; k < 4; k++)
                _mm512_store_si512((void *)(pb + Q2KP_SC + (4 * q + k) * 64),
                                   _mm512_and_si512(_mm512_srli_epi32(v, 8 * k), lo4));
            UNROLL
            for (int k = 0; k < 4; k += 2) {
                const __m512i m0 = _mm512_and_si512(_mm512_srli_epi32(v, 8 * k + 4), lo4);
                const __m512i m1 = _mm512_and_si512(_mm512_srli_epi32(v, 8 * k + 12), lo4);
                _mm512_store_si512((void *)(pb + Q2KP_MN + (2 * q + k / 2) * 64),
                                   _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16)));
            }
        }
        const __m512i dd = gather4(x + 80, off);
        _mm512_store_ps((void *)(pb + Q2KP_D), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
        _mm512_store_ps((void *)(pb + Q2KP_D + 64), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
    }
}

/* ---------------------------------------------------------------- 16-value sub-blocks */

/* Q6_K / Q3_K (stored values are the levels plus OFF = 32 / 4, so OFF times the
 * activation's 16-value sums are subtracted): s += (dx * yd) * (float)sumi, sumi = sum
 * over sub-blocks of sc * (sum q*a - OFF * bsum). Q2_K (MINS, OFF 0): s += d * (float)sumi
 * - dmin * (float)summs, d = yd * dx, dmin = yd * dmin_x, summs = sum of min * bsum. */
INLINE void k16_tile_n(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, float *y,
                       size_t ldy, __mmask16 m, const int OFF, const bool MINS, const int NT)
{
    const size_t blk = MINS ? Q2KP_BLOCK : Q6KP_BLOCK, doff = MINS ? Q2KP_D : Q6KP_D;
    __m512 s[MAX_NT];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * blk;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m512i sumi[MAX_NT];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = _mm512_setzero_si512();
        for (int j = 0; j < 16; j += 2) {
            __m512i w[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                w[g] = _mm512_load_si512((const void *)(pb + j * 256 + 64 * g));
            const __m512i sc0 = _mm512_load_si512((const void *)(pb + Q6KP_SC + j * 64));
            const __m512i sc1 = _mm512_load_si512((const void *)(pb + Q6KP_SC + j * 64 + 64));
            UNROLL
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = a + (size_t)t * a_row + ao;
                const uint8_t *q8 = at + 4 + j * 16;
                int16_t bs[2];
                memcpy(bs, at + 4 + MLC_QK_K + 2 * j, sizeof bs);
                __m512i a0 = _mm512_set1_epi32(-OFF * bs[0]), a1 = _mm512_set1_epi32(-OFF * bs[1]);
                UNROLL
                for (int g = 0; g < 4; g++) {
                    a0 = _mm512_dpbusd_epi32(a0, w[g], bcast(q8 + 4 * g));
                    a1 = _mm512_dpbusd_epi32(a1, w[4 + g], bcast(q8 + 16 + 4 * g));
                }
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(a0, sc0));
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(a1, sc1));
            }
        }
        const __m512 dx = _mm512_load_ps((const void *)(pb + doff));
        if (!MINS) {
            UNROLL
            for (int t = 0; t < NT; t++) {
                const __m512 d = _mm512_mul_ps(dx, _mm512_set1_ps(ldf(a + (size_t)t * a_row + ao)));
                s[t] = _mm512_add_ps(s[t], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t])));
            }
            continue;
        }
        __m512i mn[8];
        UNROLL
        for (int p = 0; p < 8; p++)
            mn[p] = _mm512_load_si512((const void *)(pb + Q2KP_MN + p * 64));
        const __m512 mx = _mm512_load_ps((const void *)(pb + doff + 64));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + ao;
            __m512i summs = _mm512_setzero_si512();
            UNROLL
            for (int p = 0; p < 8; p++)
                summs = _mm512_dpwssd_epi32(summs, mn[p], bcast(at + 4 + MLC_QK_K + 4 * p));
            const __m512 yd = _mm512_set1_ps(ldf(at));
            const __m512 d = _mm512_mul_ps(yd, dx), dmin = _mm512_mul_ps(yd, mx);
            const __m512 t1 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t]));
            const __m512 t2 = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summs));
            s[t] = _mm512_add_ps(s[t], _mm512_sub_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, s[t]);
}

static TARGET void q6_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, k16_tile_n, panel, n_in / MLC_QK_K, a, a_row, y, ldy, row_mask(rows), 32, false)
}

static TARGET void q3_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, k16_tile_n, panel, n_in / MLC_QK_K, a, a_row, y, ldy, row_mask(rows), 4, false)
}

static TARGET void q2_K_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, k16_tile_n, panel, n_in / MLC_QK_K, a, a_row, y, ldy, row_mask(rows), 0, true)
}

/* ---------------------------------------------------------------- IQ4_XS */

#define IQ4XSP_SC MLC_GEMM_IQ4XSP_SC
#define IQ4XSP_D MLC_GEMM_IQ4XSP_D
#define IQ4XSP_BLOCK MLC_GEMM_IQ4XSP_BLOCK

static size_t iq4_xs_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / MLC_QK_K) * IQ4XSP_BLOCK;
}

/* IQ4_XS (136-byte blocks: f16 d, u16 scales_h, scales_l[4], qs[128]): sub-block ib's 16
 * bytes of qs as IQ4_NL's block, table values plus 128; its scale is nibble ib of scales_l
 * and bits 2 ib of scales_h above it, minus 32. */
static TARGET void iq4_xs_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F);
    const __m512i lut = iq4_lut();
    const __m512i m4 = _mm512_set1_epi32(0xF), three = _mm512_set1_epi32(3), c32 = _mm512_set1_epi32(32);
    uint8_t *p = panel;
    for (int64_t i = 0; i < n_in / MLC_QK_K; i++) {
        uint8_t *pb = p + (size_t)i * IQ4XSP_BLOCK;
        const uint8_t *x = w + (size_t)i * 136;
        UNROLL
        for (int ib = 0; ib < 8; ib++) {
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m512i q = gather4(x + 8 + 16 * ib + 4 * g, off);
                const __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi32(q, 4), lo4);
                _mm512_store_si512((void *)(pb + ib * 512 + 64 * g), _mm512_shuffle_epi8(lut, lo));
                _mm512_store_si512((void *)(pb + ib * 512 + 64 * (g + 4)), _mm512_shuffle_epi8(lut, hi));
            }
        }
        const __m512i hd = gather4(x, off), sl = gather4(x + 4, off);
        UNROLL
        for (int ib = 0; ib < 8; ib++) {
            const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(sl, 4 * ib), m4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(hd, 16 + 2 * ib), three);
            _mm512_store_si512((void *)(pb + IQ4XSP_SC + ib * 64),
                               _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), c32));
        }
        _mm512_store_ps((void *)(pb + IQ4XSP_D), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hd)));
    }
}

/* s += (dx * yd) * (float)sumi, sumi = sum over sub-blocks of sc * (sum q*a - 128 * (the
 * sub-block's two 16-value sums)). */
INLINE void iq4xs_tile_n(const uint8_t *panel, int64_t nsb, const uint8_t *a, size_t a_row, float *y,
                         size_t ldy, __mmask16 m, const int NT)
{
    __m512 s[MAX_NT];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *pb = panel + (size_t)i * IQ4XSP_BLOCK;
        const size_t ao = (size_t)i * MLC_Q8_K_BYTES;
        __m512i sumi[MAX_NT];
        UNROLL
        for (int t = 0; t < NT; t++)
            sumi[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i w[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                w[g] = _mm512_load_si512((const void *)(pb + j * 512 + 64 * g));
            const __m512i sc = _mm512_load_si512((const void *)(pb + IQ4XSP_SC + j * 64));
            UNROLL
            for (int t = 0; t < NT; t++) {
                const uint8_t *at = a + (size_t)t * a_row + ao;
                const uint8_t *q8 = at + 4 + j * 32;
                int16_t bs[2];
                memcpy(bs, at + 4 + MLC_QK_K + 4 * j, sizeof bs);
                __m512i acc = _mm512_set1_epi32(-128 * (bs[0] + bs[1]));
                UNROLL
                for (int g = 0; g < 8; g++)
                    acc = _mm512_dpbusd_epi32(acc, w[g], bcast(q8 + 4 * g));
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(acc, sc));
            }
        }
        const __m512 dx = _mm512_load_ps((const void *)(pb + IQ4XSP_D));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512 d = _mm512_mul_ps(dx, _mm512_set1_ps(ldf(a + (size_t)t * a_row + ao)));
            s[t] = _mm512_add_ps(s[t], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t])));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, s[t]);
}

static TARGET void iq4_xs_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                               const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, iq4xs_tile_n, panel, n_in / MLC_QK_K, a, a_row, y, ldy, row_mask(rows))
}

/* ---------------------------------------------------------------- Q4_1, Q5_1 */

#define Q41P_BLOCK MLC_GEMM_Q41P_BLOCK

static size_t q41p_panel_bytes(int64_t n_in)
{
    return (size_t)(n_in / 32) * Q41P_BLOCK;
}

/* Q4_1 (20-byte blocks: f16 d, m, qs[16]) and Q5_1 (24: f16 d, m, u32 qh, qs[16]): the
 * levels of Q4_0 / Q5_0 without their offset (0..15, 0..31), unsigned already. */
INLINE void q41_pack(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel, const bool five)
{
    const __m512i off = row_offsets(w_row, rows), lo4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    const __m512i bit[2] = {_mm512_set1_epi32(0x08040201), _mm512_set1_epi32((int)0x80402010u)};
    const size_t bytes = five ? 24 : 20, qs = five ? 8 : 4;
    uint8_t *pb = panel;
    for (int64_t b = 0; b < n_in / 32; b++, w += bytes, pb += Q41P_BLOCK) {
        const __m512i qh = five ? gather4(w + 4, off) : _mm512_setzero_si512();
        UNROLL
        for (int g = 0; g < 4; g++) {
            const __m512i q = gather4(w + qs + 4 * g, off);
            __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi32(q, 4), lo4);
            if (five) {
                const __m512i hl = _mm512_and_si512(spread_byte(qh, g / 2), bit[g % 2]);
                const __m512i hh = _mm512_and_si512(spread_byte(qh, 2 + g / 2), bit[g % 2]);
                lo = _mm512_or_si512(lo, _mm512_slli_epi32(_mm512_min_epu8(hl, one), 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi32(_mm512_min_epu8(hh, one), 4));
            }
            _mm512_store_si512((void *)(pb + 64 * g), lo);
            _mm512_store_si512((void *)(pb + 64 * (g + 4)), hi);
        }
        const __m512i dm = gather4(w, off);
        _mm512_store_ps((void *)(pb + 512), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm)));
        _mm512_store_ps((void *)(pb + 576), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16))));
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

/* Against Q8_1 (36-byte blocks: f16 d, f16 s, qs[32]): s += (float)sumi * (dx * dy) +
 * mx * sy per block, as the scalar dot. */
INLINE void q41_tile_n(const uint8_t *panel, int64_t nb, const uint8_t *a, size_t a_row, float *y, size_t ldy,
                       __mmask16 m, const int NT)
{
    __m512 s[MAX_NT];
    UNROLL
    for (int t = 0; t < NT; t++)
        s[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * Q41P_BLOCK;
        __m512i w[8];
        UNROLL
        for (int g = 0; g < 8; g++)
            w[g] = _mm512_load_si512((const void *)(pb + 64 * g));
        const __m512 dx = _mm512_load_ps((const void *)(pb + 512)), mx = _mm512_load_ps((const void *)(pb + 576));
        UNROLL
        for (int t = 0; t < NT; t++) {
            const uint8_t *at = a + (size_t)t * a_row + (size_t)b * 36;
            __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], bcast(at + 4));
            UNROLL
            for (int g = 1; g < 8; g++)
                acc = _mm512_dpbusd_epi32(acc, w[g], bcast(at + 4 + 4 * g));
            /* [dy, sy] */
            const __m128 ds = _mm_cvtph_ps(_mm_cvtsi32_si128((int)ld32(at)));
            const __m512 dy = _mm512_broadcastss_ps(ds), sy = _mm512_broadcastss_ps(_mm_movehdup_ps(ds));
            const __m512 t1 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dx, dy));
            const __m512 t2 = _mm512_mul_ps(mx, sy);
            s[t] = _mm512_add_ps(s[t], _mm512_add_ps(t1, t2));
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, s[t]);
}

static TARGET void q41p_tile(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row,
                             const uint8_t *aux, size_t aux_row, int nt, float *y, size_t ldy, int rows)
{
    (void)aux;
    (void)aux_row;
    NT_SWITCH(nt, q41_tile_n, panel, n_in / 32, a, a_row, y, ldy, row_mask(rows))
}

/* ---------------------------------------------------------------- selection */

static const mlc_gemm_kernel Q8_0_K = {q8p_panel_bytes, q8_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q4_0_K = {q8p_panel_bytes, q4_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q5_0_K = {q8p_panel_bytes, q5_0_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel IQ4_NL_K = {q8p_panel_bytes, iq4_nl_pack, mlc_gemm_q8_aux_bytes, mlc_gemm_q8_prep, q8p_tile};
static const mlc_gemm_kernel Q4_K_K = {q4_K_panel_bytes, q4_K_pack, NULL, NULL, q4_K_tile};
static const mlc_gemm_kernel Q5_K_K = {q4_K_panel_bytes, q5_K_pack, NULL, NULL, q4_K_tile};
static const mlc_gemm_kernel Q6_K_K = {q6_K_panel_bytes, q6_K_pack, NULL, NULL, q6_K_tile};
static const mlc_gemm_kernel Q3_K_K = {q6_K_panel_bytes, q3_K_pack, NULL, NULL, q3_K_tile};
static const mlc_gemm_kernel Q2_K_K = {q2_K_panel_bytes, q2_K_pack, NULL, NULL, q2_K_tile};
static const mlc_gemm_kernel IQ4_XS_K = {iq4_xs_panel_bytes, iq4_xs_pack, NULL, NULL, iq4_xs_tile};
static const mlc_gemm_kernel Q4_1_K = {q41p_panel_bytes, q4_1_pack, NULL, NULL, q41p_tile};
static const mlc_gemm_kernel Q5_1_K = {q41p_panel_bytes, q5_1_pack, NULL, NULL, q41p_tile};

const mlc_gemm_kernel *mlc_cpu_gemm_avx512(uint32_t type)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw"))
        return NULL;
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
#else
    (void)type;
    return NULL;
#endif
}
