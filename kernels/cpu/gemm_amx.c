/* gemm_amx.c: the AMX prefill matmul of gemm_amx.h (Q8_0, Q4_0, Q5_0 weights against Q8_0
 * activations).
 *
 * Tiles: A = 16 weight rows x one 32-value block (int8), B = the same block of 16
 * activation rows in the VNNI layout (8 rows of 64 bytes: 4 consecutive values of each
 * activation row), C = [16 weight rows][16 activation rows] int32, the exact block sums.
 * Each block's C tile is stored and folded into 16 f32 registers (one per weight row, a
 * lane per activation row) by the scalar dot's float operations in its order,
 * s += (float)sumi * (dx * dy) (a product of two floats is the same either way round);
 * after the last block the registers are transposed into y.
 *
 * On the Sapphire Rapids this was measured on, TDPBSSD and the vector fold did not
 * overlap (a loop doing both took the sum of their times alone), so the order that costs
 * the fewest instructions and the least scratch wins: one C tile at a time, 1 KiB of
 * scratch in L1 and the accumulators in registers, was 1.1x faster than 2 x 2 C tiles per
 * block with the accumulators in memory, and 1.25x faster than folding 4 blocks' tiles
 * after issuing the next 4 blocks'.
 *
 * Weights are unpacked to int8 per 32-row panel by the thread that owns it (AMX takes
 * signed bytes on both sides, so the values go in as they are: q for Q8_0, q - 8 for Q4_0,
 * q - 16 for Q5_0); activations are packed into B tiles once per call. */
#if defined(__x86_64__) && defined(__linux__)
#define _DEFAULT_SOURCE /* syscall() */
#endif
#include "gemm_amx.h"

#include <stdlib.h>
#include <string.h>

#include "mlc/quant.h"

#if defined(__x86_64__) && defined(__linux__)

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define ISA "amx-tile,amx-int8,avx2,f16c,avx512f,avx512bw,avx512vl"
#define TARGET __attribute__((target(ISA)))
#define INLINE static inline __attribute__((always_inline, target(ISA)))
#define UNROLL _Pragma("GCC unroll 16")

#define PANEL 32                  /* weight rows per panel: two A tiles */
#define SPAN 4                    /* panels unpacked together */
#define GROUP 16                  /* activation rows per B tile */
#define WBLOCK (PANEL * 32 + 128) /* panel bytes per block: int8 [32 rows][32]; f32 scales [32] */
#define WSCALE (PANEL * 32)
#define ABLOCK (512 + 64)         /* packed bytes per activation group and block: B tile; f32 scales [16] */
#define ASCALE 512

/* Linux's arch_prctl request for a dynamically enabled state component (asm/prctl.h),
 * and the component number of the tile data (XTILEDATA). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* The compiler does not see tileloadd read memory: stores before it must be emitted first. */
#define MEMORY_BARRIER() __asm__ volatile("" ::: "memory")

static bool os_has_tile_state(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return false;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    /* XCR0 bits 17 and 18: XTILECFG and XTILEDATA. */
    return (lo & (3u << 17)) == (3u << 17);
}

bool mlc_cpu_amx_usable(void)
{
    const char *env = getenv("MLC_CPU_AMX");
    if (env && !strcmp(env, "0"))
        return false;
    unsigned a, b, c, d;
    /* CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8. */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return false;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !os_has_tile_state())
        return false;
    /* Granted per process, idempotent; kernels before 5.16 and those that refuse fail it. */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* ---------------------------------------------------------------- weights */

/* Unpacks one weight row's nb blocks: values as int8 to q (block b at q + b * WBLOCK), the
 * f16 scale to dh (likewise). */
typedef void (*unpack_fn)(const uint8_t *x, int64_t nb, uint8_t *q, uint8_t *dh);

static TARGET void unpack_q8_0(const uint8_t *x, int64_t nb, uint8_t *q, uint8_t *dh)
{
    for (int64_t b = 0; b < nb; b++, x += 34, q += WBLOCK, dh += WBLOCK) {
        _mm256_store_si256((__m256i *)(void *)q, _mm256_loadu_si256((const __m256i *)(const void *)(x + 2)));
        memcpy(dh, x, 2);
    }
}

/* Q4_0: byte j of qs holds value j (low nibble) and j + 16 (high), each q - 8. */
static TARGET void unpack_q4_0(const uint8_t *x, int64_t nb, uint8_t *q, uint8_t *dh)
{
    const __m128i lo4 = _mm_set1_epi8(0x0F), c8 = _mm_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++, x += 18, q += WBLOCK, dh += WBLOCK) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(x + 2));
        _mm_store_si128((__m128i *)(void *)q, _mm_sub_epi8(_mm_and_si128(v, lo4), c8));
        _mm_store_si128((__m128i *)(void *)(q + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), c8));
        memcpy(dh, x, 2);
    }
}

/* Q5_0 (f16 d, qh[4], qs[16]): Q4_0's nibbles plus bit i of qh as value i's fifth bit, q - 16. */
static TARGET void unpack_q5_0(const uint8_t *x, int64_t nb, uint8_t *q, uint8_t *dh)
{
    const __m128i lo4 = _mm_set1_epi8(0x0F);
    const __m256i c16 = _mm256_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++, x += 22, q += WBLOCK, dh += WBLOCK) {
        uint32_t h;
        memcpy(&h, x + 2, 4);
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(x + 6));
        __m256i t = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
        t = _mm256_mask_add_epi8(t, (__mmask32)h, t, c16);
        _mm256_store_si256((__m256i *)(void *)q, _mm256_sub_epi8(t, c16));
        memcpy(dh, x, 2);
    }
}

static unpack_fn unpack_of(uint32_t type)
{
    switch (type) {
    case MLC_TYPE_Q8_0: return unpack_q8_0;
    case MLC_TYPE_Q4_0: return unpack_q4_0;
    case MLC_TYPE_Q5_0: return unpack_q5_0;
    default: return NULL;
    }
}

/* The panel of weight rows [0, rows) of w (rows 1..32; the rest zero), then each block's
 * 32 f16 scales widened in place to f32. */
static TARGET void unpack_panel(unpack_fn unpack, const uint8_t *w, size_t w_row, int rows, int64_t nb,
                                uint8_t *panel)
{
    for (int r = 0; r < rows; r++)
        unpack(w + (size_t)r * w_row, nb, panel + 32 * r, panel + WSCALE + 2 * r);
    for (int64_t b = 0; b < nb && rows < PANEL; b++) {
        uint8_t *pb = panel + (size_t)b * WBLOCK;
        memset(pb + 32 * rows, 0, (size_t)(32 * (PANEL - rows)));
        memset(pb + WSCALE + 2 * rows, 0, (size_t)(2 * (PANEL - rows)));
    }
    for (int64_t b = 0; b < nb; b++) {
        float *s = (float *)(void *)(panel + (size_t)b * WBLOCK + WSCALE);
        const __m512i h = _mm512_load_si512((const void *)s);
        _mm512_store_ps(s, _mm512_cvtph_ps(_mm512_castsi512_si256(h)));
        _mm512_store_ps(s + 16, _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)));
    }
}

/* ---------------------------------------------------------------- activations */

/* Activation rows [0, valid) (valid 1..16, stride a_row) into nb B tiles and f32 scales;
 * lanes past valid are zero. */
static TARGET void pack_group(const uint8_t *a, size_t a_row, int valid, int64_t nb, uint8_t *dst)
{
    const __m512i off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)a_row));
    const __mmask16 m = (__mmask16)((1u << valid) - 1u);
    const __m512i z = _mm512_setzero_si512();
    for (int64_t b = 0; b < nb; b++, a += 34, dst += ABLOCK) {
        UNROLL
        for (int k = 0; k < 8; k++)
            _mm512_store_si512((void *)(dst + 64 * k), _mm512_mask_i32gather_epi32(z, m, off, a + 2 + 4 * k, 1));
        /* The 4 bytes at the block's start: its f16 scale and 2 values. */
        const __m512i h = _mm512_and_si512(_mm512_mask_i32gather_epi32(z, m, off, a, 1), _mm512_set1_epi32(0xFFFF));
        _mm512_store_ps((void *)(dst + ASCALE), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
    }
}

/* ---------------------------------------------------------------- tiles */

typedef struct tile_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

/* Tiles 0, 1: C, [16][16] int32; 4, 5: A, [16][32] int8; 6, 7: B, [8][64] int8 (2, 3
 * configured as C, unused). */
static TARGET void load_config(void)
{
    tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = t < 6 ? 16 : 8;
        cfg.colsb[t] = t == 4 || t == 5 ? 32 : 64;
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}

/* m[16] rows of 16 floats, transposed in place: each round swaps one bit of the row index
 * with the same bit of the column index. */
INLINE void transpose16(__m512 *m)
{
    const __m512i col = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    UNROLL
    for (int h = 8; h >= 1; h >>= 1) {
        const __mmask16 up = _mm512_test_epi32_mask(col, _mm512_set1_epi32(h));
        const __m512i lo = _mm512_mask_add_epi32(col, up, col, _mm512_set1_epi32(16 - h));
        const __m512i hi = _mm512_mask_add_epi32(_mm512_add_epi32(col, _mm512_set1_epi32(h)), up, col,
                                                 _mm512_set1_epi32(16));
        UNROLL
        for (int i = 0; i < 16; i++)
            if (!(i & h)) {
                const __m512 a = m[i], b = m[i + h];
                m[i] = _mm512_permutex2var_ps(a, lo, b);
                m[i + h] = _mm512_permutex2var_ps(a, hi, b);
            }
    }
}

/* ---------------------------------------------------------------- driver */

typedef struct amx_job {
    unpack_fn unpack;
    const uint8_t *w;
    size_t w_row;
    int64_t n_out, n, nb, ng; /* ng: groups of 16 activation rows */
    const uint8_t *a;
    size_t a_row;
    uint8_t *act;    /* [ng][nb] blocks of ABLOCK bytes */
    uint8_t *panels_mem; /* [threads][SPAN] panels of nb * WBLOCK bytes */
    float *y;
} amx_job;

/* One block's C tile of the A tile at pw and the B tile at pa into cb [16][16]; two sets of
 * tile registers (A, B, C = 4, 6, 0 or 5, 7, 1) alternate between blocks, so that
 * consecutive blocks share no tile register. */
INLINE void tile_c(const uint8_t *pw, const uint8_t *pa, int32_t *cb, const int SET)
{
    if (SET == 0) {
        _tile_loadd(4, pw, 32);
        _tile_loadd(6, pa, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        _tile_stored(0, cb, 64);
    } else {
        _tile_loadd(5, pw, 32);
        _tile_loadd(7, pa, 64);
        _tile_zero(1);
        _tile_dpbssd(1, 5, 7);
        _tile_stored(1, cb, 64);
    }
}

/* acc[r][t] += (float)cb[r][t] * (dx[r] * dy[t]) for the 16 rows. */
INLINE void fold(const int32_t *cb, const float *dx, const uint8_t *dyp, __m512 *acc)
{
    const __m512 dy = _mm512_load_ps((const void *)dyp);
    UNROLL
    for (int r = 0; r < 16; r++) {
        const __m512 d = _mm512_mul_ps(_mm512_set1_ps(dx[r]), dy);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(cb + 16 * r)));
        acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(v, d));
    }
}

/* Activation group g (rows 16 g ..) against weight rows r0 + 16 i .. of the panel: every
 * block's C tile folded into 16 register accumulators in block order, then transposed
 * into y. */
static TARGET void run_tile(const amx_job *j, const uint8_t *panel, int64_t r0, int rows, int i, int64_t g,
                            int32_t *cb)
{
    const uint8_t *pa = j->act + (size_t)g * (size_t)j->nb * ABLOCK;
    const uint8_t *pw = panel + 512 * i;
    const float *dx = (const float *)(const void *)(panel + WSCALE) + 16 * i;
    __m512 acc[16];
    UNROLL
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < j->nb; b += 2) {
        tile_c(pw + (size_t)b * WBLOCK, pa + (size_t)b * ABLOCK, cb, 0);
        tile_c(pw + (size_t)(b + 1) * WBLOCK, pa + (size_t)(b + 1) * ABLOCK, cb + 256, 1);
        fold(cb, dx + (size_t)b * (WBLOCK / 4), pa + (size_t)b * ABLOCK + ASCALE, acc);
        fold(cb + 256, dx + (size_t)(b + 1) * (WBLOCK / 4), pa + (size_t)(b + 1) * ABLOCK + ASCALE, acc);
    }
    if (b < j->nb) {
        tile_c(pw + (size_t)b * WBLOCK, pa + (size_t)b * ABLOCK, cb, 0);
        fold(cb, dx + (size_t)b * (WBLOCK / 4), pa + (size_t)b * ABLOCK + ASCALE, acc);
    }
    transpose16(acc);
    const int64_t t0 = GROUP * g;
    const int nr = rows - 16 * i < 16 ? rows - 16 * i : 16, nt = j->n - t0 < 16 ? (int)(j->n - t0) : 16;
    const __mmask16 mask = (__mmask16)((1u << nr) - 1u);
    float *y = j->y + (size_t)t0 * (size_t)j->n_out + (size_t)(r0 + 16 * i);
    for (int t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(y + (size_t)t * (size_t)j->n_out, mask, acc[t]);
}

/* Asks for the next panel's weight rows while this one's tiles run (the unpacker reads 32
 * rows at once and would wait for each of their lines in turn). */
static void prefetch_rows(const uint8_t *w, size_t bytes)
{
    for (size_t i = 0; i < bytes; i += 64)
        __builtin_prefetch(w + i, 0, 2);
}

/* Panels [begin, end) of the pool's range, SPAN at a time: each activation group is read
 * from L2 once per SPAN panels and stays in L1 while they use it. */
static TARGET void amx_panels(void *arg, int ith, int64_t begin, int64_t end)
{
    const amx_job *j = arg;
    const size_t panel_bytes = (size_t)j->nb * WBLOCK;
    uint8_t *panels = j->panels_mem + (size_t)ith * SPAN * panel_bytes;
    _Alignas(64) int32_t cb[512]; /* two blocks' C tiles, [2][16][16] */
    load_config();
    for (int64_t p0 = begin; p0 < end; p0 += SPAN) {
        const int np = end - p0 < SPAN ? (int)(end - p0) : SPAN;
        int rows[SPAN];
        for (int k = 0; k < np; k++) {
            const int64_t r0 = (p0 + k) * PANEL;
            rows[k] = j->n_out - r0 < PANEL ? (int)(j->n_out - r0) : PANEL;
            unpack_panel(j->unpack, j->w + (size_t)r0 * j->w_row, j->w_row, rows[k], j->nb,
                         panels + (size_t)k * panel_bytes);
            if (p0 + k + 1 < end)
                prefetch_rows(j->w + (size_t)(r0 + PANEL) * j->w_row,
                              (size_t)(j->n_out - r0 - PANEL < PANEL ? j->n_out - r0 - PANEL : PANEL) * j->w_row);
        }
        MEMORY_BARRIER();
        for (int64_t g = 0; g < j->ng; g++)
            for (int k = 0; k < np; k++)
                for (int i = 0; i < 2 && 16 * i < rows[k]; i++)
                    run_tile(j, panels + (size_t)k * panel_bytes, (p0 + k) * PANEL, rows[k], i, g, cb);
    }
    _tile_release();
}

static void amx_pack(void *arg, int ith, int nth)
{
    const amx_job *j = arg;
    const int64_t per = (j->ng + nth - 1) / nth;
    const int64_t gb = per * ith, ge = gb + per < j->ng ? gb + per : j->ng;
    for (int64_t g = gb; g < ge; g++) {
        const int valid = j->n - GROUP * g < GROUP ? (int)(j->n - GROUP * g) : GROUP;
        pack_group(j->a + (size_t)(GROUP * g) * j->a_row, j->a_row, valid, j->nb,
                   j->act + (size_t)g * (size_t)j->nb * ABLOCK);
    }
}

bool mlc_cpu_gemm_amx_has(uint32_t type)
{
    return unpack_of(type) && mlc_cpu_amx_usable();
}

bool mlc_cpu_gemm_amx(mlc_pool *pool, uint32_t type, const uint8_t *w, size_t w_row, int64_t n_in,
                      int64_t n_out, const uint8_t *a, size_t a_row, int64_t n, float *y)
{
    const unpack_fn unpack = unpack_of(type);
    /* The activation packer gathers 16 rows by int32 byte offsets. */
    if (!unpack || n <= 0 || n_out <= 0 || n_in <= 0 || n_in % 32 || a_row > (size_t)INT32_MAX / GROUP ||
        !mlc_cpu_amx_usable())
        return false;
    const int nth = mlc_pool_size(pool);
    amx_job j = {.unpack = unpack, .w = w, .w_row = w_row, .n_out = n_out, .n = n, .nb = n_in / 32,
                 .ng = (n + GROUP - 1) / GROUP, .a = a, .a_row = a_row, .y = y};
    const size_t act_bytes = (size_t)j.ng * (size_t)j.nb * ABLOCK, panel_bytes = (size_t)j.nb * WBLOCK;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, act_bytes + panel_bytes * SPAN * (size_t)nth) != 0)
        return false;
    j.act = mem;
    j.panels_mem = j.act + act_bytes;
    mlc_pool_run(pool, amx_pack, &j);
    /* Chunks of SPAN panels: a thread slowed by other load hands chunks to the others. */
    mlc_pool_for(pool, (n_out + PANEL - 1) / PANEL, SPAN, amx_panels, &j);
    free(mem);
    return true;
}

#else /* no AMX outside x86-64 Linux */

bool mlc_cpu_amx_usable(void)
{
    return false;
}

bool mlc_cpu_gemm_amx_has(uint32_t type)
{
    (void)type;
    return false;
}

bool mlc_cpu_gemm_amx(mlc_pool *pool, uint32_t type, const uint8_t *w, size_t w_row, int64_t n_in,
                      int64_t n_out, const uint8_t *a, size_t a_row, int64_t n, float *y)
{
    (void)pool, (void)type, (void)w, (void)w_row, (void)n_in, (void)n_out, (void)a, (void)a_row, (void)n, (void)y;
    return false;
}

#endif
