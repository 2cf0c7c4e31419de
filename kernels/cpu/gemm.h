/* gemm.h: the prefill matmul of the CPU backend (many activation rows against one weight
 * matrix), for the weight types and ISAs that have a tile kernel.
 *
 * The per-row dot products of vecdot.h reduce every block to one sum per (weight row,
 * activation row) pair, and the horizontal reductions dominate when the weights are reused
 * across many tokens. Here the weight rows are repacked, 16 at a time, into a panel whose
 * vector lanes are the 16 rows (4 consecutive bytes of one row per 32-bit lane), so that
 * one VNNI instruction against 4 broadcast activation bytes advances the 16 rows at once
 * (AVX2: maddubs and maddwd, 8 rows per register) and no horizontal reduction is left.
 * The panel stays in cache while every activation row streams past it, up to 8 at a time.
 *
 * For the quantized types results are bit-identical to the scalar dot of vecdot.c (exact
 * integer block sums, then the reference's float operations in its order, one lane per
 * weight row), so choosing this path never changes a logit. mlc_cpu_gemm hands F32, F16 and
 * BF16 weights to gemm_float.h, whose sums are ordered differently from dot's (within float
 * rounding, as the float types allow) but the same on every ISA and thread count. */
#ifndef MLC_CPU_GEMM_H
#define MLC_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "vecdot.h"

/* Packing a panel is paid back over the activation rows that use it; below this many rows
 * the per-row dots (and the decode kernels) run instead. Not tuned finely. */
#define MLC_CPU_GEMM_MIN_ROWS 8

/* One ISA's tile kernels for one weight type (gemm_avx512.c, gemm_avx2.c). */
typedef struct mlc_gemm_kernel {
    /* Bytes of the panel of 16 weight rows of n_in values. */
    size_t (*panel_bytes)(int64_t n_in);
    /* Packs rows r (< rows, 1..16) of w (stride w_row bytes) into panel; lanes past rows
     * repeat the last row (their outputs are not stored). */
    void (*pack)(const uint8_t *w, size_t w_row, int rows, int64_t n_in, void *panel);
    /* Optional (NULL: aux_bytes 0): per activation row, aux_bytes(n_in) bytes of values the
     * tile needs for every panel (block sums, scales as f32), computed once by prep. */
    size_t (*aux_bytes)(int64_t n_in);
    void (*prep)(const uint8_t *a, int64_t n_in, uint8_t *aux);
    /* Activation rows [0, nt) (converted, stride a_row bytes; their aux rows stride aux_row;
     * nt 1..8) against the panel: y[t * ldy + r] for r < rows. */
    void (*tile)(const void *panel, int64_t n_in, const uint8_t *a, size_t a_row, const uint8_t *aux,
                 size_t aux_row, int nt, float *y, size_t ldy, int rows);
} mlc_gemm_kernel;

/* Panel layouts, shared by the ISA files (offsets in bytes; "lane" = weight row 0..15,
 * "group" = 4 consecutive values, 64 bytes = 4 bytes of each lane):
 * Q8_0 / Q4_0 / Q5_0 / IQ4_NL, per 32-value block: 8 groups of value + 128 (u8), f32 d [16].
 * Q4_K / Q5_K, per super-block: 8 sub-blocks x 8 groups of 4- or 5-bit values (u8, no
 *   offset); i32 scales [8][16]; mins [8][16] as two equal i16; f32 d [16]; f32 dmin [16].
 * Q6_K / Q3_K, per super-block: 16 sub-blocks x 4 groups of values (Q6_K 0..63, Q3_K
 *   0..7, the level plus 32 / 4); i32 scales [16][16]; f32 d [16].
 * Q2_K, per super-block: 16 sub-blocks x 4 groups of levels (0..3); i32 scales [16][16];
 *   mins of sub-blocks 2p, 2p + 1 as i16 pairs [8][16]; f32 d [16]; f32 dmin [16].
 * IQ4_XS, per super-block: 8 sub-blocks x 8 groups of table value + 128 (u8); i32 scales
 *   (minus 32) [8][16]; f32 d [16].
 * Q4_1 / Q5_1, per 32-value block: 8 groups of levels (u8, 0..15 / 0..31); f32 d [16];
 *   f32 m [16]. */
#define MLC_GEMM_Q8P_BLOCK (8 * 64 + 64)
#define MLC_GEMM_Q4KP_SC 4096
#define MLC_GEMM_Q4KP_MN (MLC_GEMM_Q4KP_SC + 512)
#define MLC_GEMM_Q4KP_D (MLC_GEMM_Q4KP_MN + 512)
#define MLC_GEMM_Q4KP_BLOCK (MLC_GEMM_Q4KP_D + 128)
#define MLC_GEMM_Q6KP_SC 4096
#define MLC_GEMM_Q6KP_D (MLC_GEMM_Q6KP_SC + 1024)
#define MLC_GEMM_Q6KP_BLOCK (MLC_GEMM_Q6KP_D + 64)
#define MLC_GEMM_Q2KP_SC 4096
#define MLC_GEMM_Q2KP_MN (MLC_GEMM_Q2KP_SC + 1024)
#define MLC_GEMM_Q2KP_D (MLC_GEMM_Q2KP_MN + 512)
#define MLC_GEMM_Q2KP_BLOCK (MLC_GEMM_Q2KP_D + 128)
#define MLC_GEMM_IQ4XSP_SC 4096
#define MLC_GEMM_IQ4XSP_D (MLC_GEMM_IQ4XSP_SC + 512)
#define MLC_GEMM_IQ4XSP_BLOCK (MLC_GEMM_IQ4XSP_D + 64)
#define MLC_GEMM_Q41P_BLOCK (8 * 64 + 128)

/* Q8_0 / Q4_0 / Q5_0 / IQ4_NL aux (their activations are Q8_0): per activation row and
 * block, i32 -128 * (sum of its 32 values) and its scale as f32 (8 bytes). */
size_t mlc_gemm_q8_aux_bytes(int64_t n_in);
void mlc_gemm_q8_prep(const uint8_t *a, int64_t n_in, uint8_t *aux);

/* The tile kernel of weight type `type` in the kernel set k (its ISA), or NULL. */
const mlc_gemm_kernel *mlc_cpu_gemm_kernel(const mlc_cpu_kernels *k, uint32_t type);
/* The AVX-512 VNNI kernels (gemm_avx512.c); NULL where the CPU lacks VNNI or the type. */
const mlc_gemm_kernel *mlc_cpu_gemm_avx512(uint32_t type);
/* The AVX2 kernels (gemm_avx2.c: maddubs, 8 lanes per register); NULL for other types. */
const mlc_gemm_kernel *mlc_cpu_gemm_avx2(uint32_t type);

/* y [n, n_out] f32 = a [n rows of a_row bytes, the weight type's activation format] times
 * w [n_out rows of w_row bytes, n_in values each]^T, split over the pool by 16-row panels.
 * False (nothing written) when there is no tile kernel for type in k's ISA or its panels
 * could not be allocated: the caller's per-row path then runs. */
bool mlc_cpu_gemm(mlc_pool *pool, const mlc_cpu_kernels *k, uint32_t type, const uint8_t *w, size_t w_row,
                  int64_t n_in, int64_t n_out, const uint8_t *a, size_t a_row, int64_t n, float *y);

#endif
