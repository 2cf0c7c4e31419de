/* gemm_float.c: the float-weight prefill matmul (see gemm_float.h).
 *
 * Panel: PW weight rows (avx512: 32 = two 16-lane registers; avx2: 16 = two 8-lane ones)
 * over a block of at most KC values of k, stored k-major as f32, [kc][PW], rows past the
 * matrix's end zero. Packing converts a square block (avx512 16 x 16, avx2 8 x 8) row by
 * row (F16C, or a 16-bit shift for BF16) and transposes it in registers: about 0.2 ns
 * per weight on Sapphire Rapids, against the tile's 2 n FMA lanes per weight (n = 128:
 * about 2.3 ns).
 * Activations: packed once per matmul in tiles of NT rows, k-major ([n_in][NT]), so that
 * a tile's broadcasts come from one stream (rows of 1024 or 2048 floats are a multiple of
 * 4 KiB apart and would fall into the same L1 sets).
 * Tile: NT activation rows (avx512 12, avx2 6) against the panel, 2 x NT accumulator
 * registers (24 of 32, 12 of 16), per k two weight loads and NT broadcasts; the classic
 * register-blocked shape, where the FMAs and not the loads set the pace (about 85% of
 * the FMA peak on Sapphire Rapids). 256-bit registers in the avx512 set (32 rows x 6)
 * measured 40% slower there, 2 x 14 and 3 x 8 tiles no faster. vdpbf16ps would not pay
 * for BF16: it runs at half the FMA rate there, the same products per cycle.
 * Each thread takes whole panels from the pool's shared counter, packs each block of a
 * panel once into its own buffer and runs every activation tile past it. */
#include "gemm_float.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/quant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define T_AVX2 "avx2,fma,f16c"
#define T_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512vl"
#define INLINE2 static inline __attribute__((always_inline, target(T_AVX2)))
#define INLINE512 static inline __attribute__((always_inline, target(T_AVX512)))
#define UNROLL _Pragma("GCC unroll 16")

/* Values of k per panel block: a block of 32 rows is 64 KiB, in L2 beside the activation
 * rows streaming past it; the NT activation rows' block (24 KiB) stays in L1. */
#define KC 512

typedef struct fgemm_isa {
    int pw; /* weight rows per panel */
    int nt; /* activation rows per tile */
    int kq; /* the packer's unit of k: the panel has kc rounded up to kq rows */
    /* Rows [0, rows) of w (stride w_row bytes), values [k0, k0 + kc), into panel [.][pw]. */
    void (*pack)(uint32_t type, const uint8_t *w, size_t w_row, int rows, int64_t k0, int64_t kc, int pw,
                 float *panel);
    /* Activation rows [0, cnt) (cnt <= nt; stride a_row bytes, n_in values) into b
     * [n_in][nt]: the value k of row t at b[k * nt + t] (rows past cnt: 0 or unwritten,
     * and never read). */
    void (*prep)(const uint8_t *a, size_t a_row, int cnt, int64_t n_in, float *b);
    /* Activation rows [0, nt) (packed: b [kc][this->nt], row t of k at b[k * this->nt + t])
     * against panel [kc][pw]: y[t * ldy + r] for r < rows, continuing the sums in y when
     * cont. */
    void (*tile)(const float *panel, int64_t kc, const float *b, int nt, float *y, size_t ldy, int rows, bool cont);
} fgemm_isa;

/* ---------------------------------------------------------------- packing */

/* 8 values of type from p, as f32. */
INLINE2 __m256 load8(uint32_t type, const uint8_t *p)
{
    if (type == MLC_TYPE_F32)
        return _mm256_loadu_ps((const float *)(const void *)p);
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (type == MLC_TYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* A block of bn x bn (8 or 16) at the panel's edge, row-major: rows [0, rows) and values
 * [0, cnt) of w from src (mlc_dequantize_row's values, which F16C's are), the rest 0. */
static void edge_block(uint32_t type, const uint8_t *src, size_t w_row, int rows, int cnt, int bn, float *blk)
{
    memset(blk, 0, sizeof(float) * (size_t)(bn * bn));
    for (int i = 0; i < rows && i < bn; i++)
        mlc_dequantize_row((mlc_type)type, src + (size_t)i * w_row, blk + i * bn, cnt);
}

/* r[i] = row i of an 8 x 8 block; becomes column i. */
INLINE2 void transpose8(__m256 r[8])
{
    __m256 t[8], s[8];
    UNROLL
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    UNROLL
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x31);
    }
}

/* Rows [0, rows) of w (stride w_row bytes), values [k0, k0 + kc), into panel [kc8][pw]
 * f32 (kc8 = kc rounded up to 8; the extra k and the rows past `rows` are 0). Blocks of
 * 8 rows x 8 values, each transposed in registers; the ragged edges go through a buffer. */
INLINE2 void pack_body(uint32_t type, const uint8_t *w, size_t w_row, int rows, int64_t k0, int64_t kc, int pw,
                       float *panel)
{
    const size_t es = type == MLC_TYPE_F32 ? 4 : 2;
    for (int rb = 0; rb < pw; rb += 8) {
        const uint8_t *src = w + (size_t)rb * w_row + (size_t)k0 * es;
        for (int64_t kb = 0; kb < kc; kb += 8, src += 8 * es) {
            __m256 r[8];
            if (rb + 8 <= rows && kb + 8 <= kc) {
                UNROLL
                for (int i = 0; i < 8; i++)
                    r[i] = load8(type, src + (size_t)i * w_row);
            } else {
                float blk[64];
                edge_block(type, src, w_row, rows - rb, (int)(kc - kb < 8 ? kc - kb : 8), 8, blk);
                UNROLL
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(blk + 8 * i);
            }
            transpose8(r);
            UNROLL
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(panel + (kb + i) * pw + rb, r[i]);
        }
    }
}

static __attribute__((target(T_AVX2))) void pack_avx2(uint32_t type, const uint8_t *w, size_t w_row, int rows,
                                                 int64_t k0, int64_t kc, int pw, float *panel)
{
    if (type == MLC_TYPE_F16)
        pack_body(MLC_TYPE_F16, w, w_row, rows, k0, kc, pw, panel);
    else if (type == MLC_TYPE_BF16)
        pack_body(MLC_TYPE_BF16, w, w_row, rows, k0, kc, pw, panel);
    else
        pack_body(MLC_TYPE_F32, w, w_row, rows, k0, kc, pw, panel);
}

/* 16 values of type from p, as f32. */
INLINE512 __m512 load16(uint32_t type, const uint8_t *p)
{
    if (type == MLC_TYPE_F32)
        return _mm512_loadu_ps((const float *)(const void *)p);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    if (type == MLC_TYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* r[i] = row i of a 16 x 16 block; becomes column i. Pairs of rows interleaved, then pairs
 * of pairs (as doubles), then 128-bit lanes gathered across the four groups of 4 rows. */
INLINE512 void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    UNROLL
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c]: 128-bit lane L holds column c + 4L of rows 4g .. 4g + 3 */
    UNROLL
    for (int g = 0; g < 4; g++) {
        const __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d b0 = _mm512_castps_pd(t[4 * g + 2]), b1 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    UNROLL
    for (int c = 0; c < 4; c++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[c + 4] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[c + 8] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

/* pack_body with blocks of 16 rows x 16 values (kc16 rows of the panel written). */
INLINE512 void pack16_body(uint32_t type, const uint8_t *w, size_t w_row, int rows, int64_t k0, int64_t kc, int pw,
                           float *panel)
{
    const size_t es = type == MLC_TYPE_F32 ? 4 : 2;
    for (int rb = 0; rb < pw; rb += 16) {
        const uint8_t *src = w + (size_t)rb * w_row + (size_t)k0 * es;
        for (int64_t kb = 0; kb < kc; kb += 16, src += 16 * es) {
            __m512 r[16];
            if (rb + 16 <= rows && kb + 16 <= kc) {
                UNROLL
                for (int i = 0; i < 16; i++)
                    r[i] = load16(type, src + (size_t)i * w_row);
            } else {
                float blk[256];
                edge_block(type, src, w_row, rows - rb, (int)(kc - kb < 16 ? kc - kb : 16), 16, blk);
                UNROLL
                for (int i = 0; i < 16; i++)
                    r[i] = _mm512_loadu_ps(blk + 16 * i);
            }
            transpose16(r);
            UNROLL
            for (int i = 0; i < 16; i++)
                _mm512_storeu_ps(panel + (kb + i) * pw + rb, r[i]);
        }
    }
}

static __attribute__((target(T_AVX512))) void pack_avx512(uint32_t type, const uint8_t *w, size_t w_row, int rows,
                                                          int64_t k0, int64_t kc, int pw, float *panel)
{
    if (type == MLC_TYPE_F16)
        pack16_body(MLC_TYPE_F16, w, w_row, rows, k0, kc, pw, panel);
    else if (type == MLC_TYPE_BF16)
        pack16_body(MLC_TYPE_BF16, w, w_row, rows, k0, kc, pw, panel);
    else
        pack16_body(MLC_TYPE_F32, w, w_row, rows, k0, kc, pw, panel);
}

/* ---------------------------------------------------------------- activation tiles */

/* The avx2 tile's 6 rows into b, k-major, by 8 x 8 blocks transposed in registers. */
static __attribute__((target(T_AVX2))) void prep_avx2(const uint8_t *a, size_t a_row, int cnt, int64_t n_in, float *b)
{
    enum { NT = 6 };
    int64_t q = 0;
    for (; q + 8 <= n_in; q += 8) {
        __m256 r[8];
        UNROLL
        for (int t = 0; t < 8; t++)
            r[t] = t < cnt ? _mm256_loadu_ps((const float *)(const void *)(a + (size_t)t * a_row) + q)
                           : _mm256_setzero_ps();
        transpose8(r);
        UNROLL
        for (int i = 0; i < 8; i++) { /* lanes 0..5 of column i: k = q + i */
            _mm_storeu_ps(b + (q + i) * NT, _mm256_castps256_ps128(r[i]));
            _mm_storel_pi((__m64 *)(void *)(b + (q + i) * NT + 4), _mm256_extractf128_ps(r[i], 1));
        }
    }
    for (int t = 0; t < cnt; t++)
        for (int64_t k = q; k < n_in; k++)
            b[k * NT + t] = ((const float *)(const void *)(a + (size_t)t * a_row))[k];
}

/* The avx512 tile's 12 rows, by 16 x 16 blocks. */
static __attribute__((target(T_AVX512))) void prep_avx512(const uint8_t *a, size_t a_row, int cnt, int64_t n_in,
                                                          float *b)
{
    enum { NT = 12 };
    int64_t q = 0;
    for (; q + 16 <= n_in; q += 16) {
        __m512 r[16];
        UNROLL
        for (int t = 0; t < 16; t++)
            r[t] = t < cnt ? _mm512_loadu_ps((const float *)(const void *)(a + (size_t)t * a_row) + q)
                           : _mm512_setzero_ps();
        transpose16(r);
        UNROLL
        for (int i = 0; i < 16; i++)
            _mm512_mask_storeu_ps(b + (q + i) * NT, (__mmask16)0x0FFF, r[i]);
    }
    for (int t = 0; t < cnt; t++)
        for (int64_t k = q; k < n_in; k++)
            b[k * NT + t] = ((const float *)(const void *)(a + (size_t)t * a_row))[k];
}

/* ---------------------------------------------------------------- avx2 tile: 16 x 6 */

/* Lanes [8v, 8v + 8) of a panel row that are real rows. */
INLINE2 __m256i rows_mask8(int rows, int v)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - 8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Panel rows of nv 8-lane registers (pw = 8 nv) against nt activation rows, nv x nt
 * accumulators (nv and nt constants after inlining). */
INLINE2 void tile8_body(const float *p, int64_t kc, const float *b, float *y, size_t ldy, int rows, bool cont,
                        const int nv, const int nt, const int ns)
{
    __m256 c[12][4];
    __m256i m[4];
    UNROLL
    for (int v = 0; v < nv; v++)
        m[v] = rows_mask8(rows, v);
    UNROLL
    for (int t = 0; t < nt; t++) {
        UNROLL
        for (int v = 0; v < nv; v++)
            c[t][v] = cont ? _mm256_maskload_ps(y + (size_t)t * ldy + 8 * v, m[v]) : _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++, p += 8 * nv, b += ns) {
        __m256 wv[4];
        UNROLL
        for (int v = 0; v < nv; v++)
            wv[v] = _mm256_loadu_ps(p + 8 * v);
        UNROLL
        for (int t = 0; t < nt; t++) {
            const __m256 bc = _mm256_broadcast_ss(b + t);
            UNROLL
            for (int v = 0; v < nv; v++)
                c[t][v] = _mm256_fmadd_ps(wv[v], bc, c[t][v]);
        }
    }
    UNROLL
    for (int t = 0; t < nt; t++)
        UNROLL
        for (int v = 0; v < nv; v++)
            _mm256_maskstore_ps(y + (size_t)t * ldy + 8 * v, m[v], c[t][v]);
}

static __attribute__((target(T_AVX2))) void tile_avx2(const float *p, int64_t kc, const float *b, int nt, float *y,
                                                      size_t ldy, int rows, bool cont)
{
    switch (nt) {
    case 1: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 1, 6); break;
    case 2: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 2, 6); break;
    case 3: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 3, 6); break;
    case 4: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 4, 6); break;
    case 5: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 5, 6); break;
    default: tile8_body(p, kc, b, y, ldy, rows, cont, 2, 6, 6); break;
    }
}

/* ---------------------------------------------------------------- avx512 tile: 32 x 12 */

INLINE512 __mmask16 rows_mask16(int rows, int v)
{
    const int n = rows - 16 * v;
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Panel rows of nv 16-lane registers (pw = 16 nv) against nt activation rows, nv x nt
 * accumulators (nv and nt constants after inlining). */
INLINE512 void tile16_body(const float *p, int64_t kc, const float *b, float *y, size_t ldy, int rows, bool cont,
                           const int nv, const int nt, const int ns)
{
    __m512 c[14][3];
    __mmask16 m[3];
    UNROLL
    for (int v = 0; v < nv; v++)
        m[v] = rows_mask16(rows, v);
    UNROLL
    for (int t = 0; t < nt; t++) {
        UNROLL
        for (int v = 0; v < nv; v++)
            c[t][v] = cont ? _mm512_maskz_loadu_ps(m[v], y + (size_t)t * ldy + 16 * v) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++, p += 16 * nv, b += ns) {
        __m512 wv[3];
        UNROLL
        for (int v = 0; v < nv; v++)
            wv[v] = _mm512_loadu_ps(p + 16 * v);
        UNROLL
        for (int t = 0; t < nt; t++) {
            const __m512 bc = _mm512_set1_ps(b[t]);
            UNROLL
            for (int v = 0; v < nv; v++)
                c[t][v] = _mm512_fmadd_ps(wv[v], bc, c[t][v]);
        }
    }
    UNROLL
    for (int t = 0; t < nt; t++)
        UNROLL
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(y + (size_t)t * ldy + 16 * v, m[v], c[t][v]);
}

#define TILE16_CASE(NV, NT, NS) \
    case NT: tile16_body(p, kc, b, y, ldy, rows, cont, NV, NT, NS); break;

static __attribute__((target(T_AVX512))) void tile_avx512(const float *p, int64_t kc, const float *b, int nt, float *y,
                                                          size_t ldy, int rows, bool cont)
{
    switch (nt < 12 ? nt : 12) {
    TILE16_CASE(2, 1, 12) TILE16_CASE(2, 2, 12) TILE16_CASE(2, 3, 12) TILE16_CASE(2, 4, 12)
    TILE16_CASE(2, 5, 12) TILE16_CASE(2, 6, 12) TILE16_CASE(2, 7, 12) TILE16_CASE(2, 8, 12)
    TILE16_CASE(2, 9, 12) TILE16_CASE(2, 10, 12) TILE16_CASE(2, 11, 12) TILE16_CASE(2, 12, 12)
    }
}

static const fgemm_isa isa_avx2 = {16, 6, 8, pack_avx2, prep_avx2, tile_avx2};
static const fgemm_isa isa_avx512 = {32, 12, 16, pack_avx512, prep_avx512, tile_avx512};


/* ---------------------------------------------------------------- dispatch, threads */

static const fgemm_isa *isa_of(const mlc_cpu_kernels *k, uint32_t type)
{
    if (type != MLC_TYPE_F32 && type != MLC_TYPE_F16 && type != MLC_TYPE_BF16)
        return NULL;
    if (k->act_type[type] != MLC_TYPE_F32)
        return NULL;
    if (!strcmp(k->isa, "avx512"))
        return &isa_avx512;
    if (!strcmp(k->isa, "avx2"))
        return &isa_avx2;
    return NULL;
}

bool mlc_cpu_gemm_float_has(const mlc_cpu_kernels *k, uint32_t type)
{
    return type < MLC_TYPE_COUNT && isa_of(k, type) != NULL;
}

typedef struct fgemm_job {
    const fgemm_isa *isa;
    uint32_t type;
    const uint8_t *w;
    size_t w_row;
    int64_t n_in, n_out, n;
    int64_t kc; /* values of k per block, a multiple of the packer's unit */
    const uint8_t *a;
    size_t a_row;
    float *b;      /* the activations packed: [tiles of nt rows][n_in][nt] */
    float *panels; /* [nth] panels of kc x pw floats */
    float *y;
} fgemm_job;

/* Asks for rows [0, rows) of w, bytes [b0, b0 + len) of each, into L2 while the tiles run
 * on the current block: the packer reads 32 rows at once, and their lines arriving from
 * memory one after the other would stall it. */
static void prefetch_block(const uint8_t *w, size_t w_row, int rows, size_t b0, size_t len)
{
    for (int r = 0; r < rows; r++)
        for (size_t b = 0; b < len; b += 64)
            __builtin_prefetch(w + (size_t)r * w_row + b0 + b, 0, 2);
}

/* [begin, end) of n items for thread ith of nth. */
static void share(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    const int64_t per = (n + nth - 1) / nth;
    *begin = per * ith < n ? per * ith : n;
    *end = *begin + per < n ? *begin + per : n;
}

/* Tiles of activation rows into b, k-major: the tile's broadcasts then come from one
 * stream, whatever a_row (rows 4 KiB apart would share the same L1 sets). */
static void fgemm_prep(void *arg, int ith, int nth)
{
    const fgemm_job *j = arg;
    const int nt = j->isa->nt;
    int64_t tb, te;
    share((j->n + nt - 1) / nt, ith, nth, &tb, &te);
    for (int64_t ti = tb; ti < te; ti++) {
        float *b = j->b + (size_t)(ti * j->n_in * nt);
        const int cnt = (int)(j->n - ti * nt < nt ? j->n - ti * nt : nt);
        j->isa->prep(j->a + (size_t)(ti * nt) * j->a_row, j->a_row, cnt, j->n_in, b);
    }
}

/* Panels [pb, pe): each block of each panel packed once, then every activation tile. */
static void fgemm_run(void *arg, int ith, int64_t pb, int64_t pe)
{
    const fgemm_job *j = arg;
    const int pw = j->isa->pw, nt = j->isa->nt;
    const size_t es = j->type == MLC_TYPE_F32 ? 4 : 2;
    float *panel = j->panels + (size_t)ith * (size_t)(j->kc * pw);
    for (int64_t p = pb; p < pe; p++) {
        const int64_t r0 = p * pw;
        const int rows = (int)(j->n_out - r0 < pw ? j->n_out - r0 : pw);
        for (int64_t k0 = 0; k0 < j->n_in; k0 += j->kc) {
            const int64_t kc = j->n_in - k0 < j->kc ? j->n_in - k0 : j->kc;
            j->isa->pack(j->type, j->w + (size_t)r0 * j->w_row, j->w_row, rows, k0, kc, pw, panel);
            if (k0 + kc < j->n_in) /* the next block of this panel, else the next panel's first */
                prefetch_block(j->w + (size_t)r0 * j->w_row, j->w_row, rows, (size_t)(k0 + kc) * es,
                               (size_t)(j->n_in - k0 - kc < j->kc ? j->n_in - k0 - kc : j->kc) * es);
            else if (p + 1 < pe)
                prefetch_block(j->w + (size_t)(r0 + pw) * j->w_row, j->w_row,
                               (int)(j->n_out - r0 - pw < pw ? j->n_out - r0 - pw : pw), 0,
                               (size_t)(j->n_in < j->kc ? j->n_in : j->kc) * es);
            for (int64_t t = 0; t < j->n; t += nt)
                j->isa->tile(panel, kc, j->b + (size_t)(t * j->n_in + k0 * nt), (int)(j->n - t < nt ? j->n - t : nt),
                             j->y + t * j->n_out + r0, (size_t)j->n_out, rows, k0 > 0);
        }
    }
}

bool mlc_cpu_gemm_float(mlc_pool *pool, const mlc_cpu_kernels *k, uint32_t type, const uint8_t *w,
                        size_t w_row, int64_t n_in, int64_t n_out, const uint8_t *a, size_t a_row, int64_t n,
                        float *y)
{
    const fgemm_isa *isa = type < MLC_TYPE_COUNT ? isa_of(k, type) : NULL;
    if (!isa || n <= 0 || n_out <= 0 || n_in <= 0)
        return false;
    /* Equal blocks of at most KC values, a multiple of the packer's unit. */
    const int64_t nb = (n_in + KC - 1) / KC;
    const int64_t kc = ((n_in + nb - 1) / nb + isa->kq - 1) / isa->kq * isa->kq;
    const int nth = mlc_pool_size(pool);
    fgemm_job j = {.isa = isa, .type = type, .w = w, .w_row = w_row, .n_in = n_in, .n_out = n_out, .n = n,
                   .kc = kc, .a = a, .a_row = a_row, .y = y};
    const size_t panel_floats = (size_t)(kc * isa->pw) * (size_t)nth;
    const size_t b_floats = (size_t)((n + isa->nt - 1) / isa->nt * isa->nt * n_in);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(float) * (panel_floats + b_floats)) != 0)
        return false;
    j.panels = mem;
    j.b = j.panels + panel_floats;
    mlc_pool_run(pool, fgemm_prep, &j);
    /* One panel per chunk: tens to hundreds of microseconds of FMAs each, so a thread that the
     * machine's other load slows takes fewer. */
    mlc_pool_for(pool, (n_out + isa->pw - 1) / isa->pw, 1, fgemm_run, &j);
    free(mem);
    return true;
}
