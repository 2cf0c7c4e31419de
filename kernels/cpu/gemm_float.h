/* gemm_float.h: the prefill matmul of the CPU backend for float weights (F32, F16, BF16).
 *
 * The per-row dot products of vecdot.h keep the weights in their stored type and reduce
 * every (weight row, activation row) pair to one sum horizontally; with many activation
 * rows that costs a conversion of each weight vector per tile and a reduction per output.
 * Here a panel of weight rows is converted to f32 once, transposed k-major (for each k, the
 * panel's rows contiguous: one vector register holds 8 or 16 rows' weights of that k), and
 * each k of a tile costs one or two weight loads, one broadcast per activation row and an
 * FMA per (register, activation row); the accumulators are the output tile itself, stored
 * once. n_in is cut into blocks so that a block of the panel stays in L1/L2 while every
 * activation row streams past it; later blocks continue the earlier ones' sums from y.
 *
 * Every output is the sequential f32 FMA chain over k in order, fma(w[k], a[k], s) from
 * s = 0, whatever the panel, tile or block boundaries and the thread count: the float
 * types allow dot's sums to be ordered differently (see mlc_dot44_fn), and this order is
 * the same for every path here, so a logit does not depend on the shape of the work. */
#ifndef MLC_CPU_GEMM_FLOAT_H
#define MLC_CPU_GEMM_FLOAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "vecdot.h"

/* Packing a panel costs about as much as 8 to 16 activation rows' tiles against it; below
 * this many rows the per-row dot44 tiles run instead (measured on Sapphire Rapids). */
#define MLC_CPU_GEMM_FLOAT_MIN_ROWS 16

/* Whether k's ISA has a float tile kernel for weight type type (F32, F16, BF16 in the
 * avx2 and avx512 sets, whose activations for them are F32). */
bool mlc_cpu_gemm_float_has(const mlc_cpu_kernels *k, uint32_t type);

/* y [n, n_out] f32 = a [n rows of a_row bytes, F32] times w [n_out rows of w_row bytes,
 * n_in values of type]^T, split over the pool by panels of weight rows. False (nothing
 * written) when k has no float tile kernel for type or the panels could not be allocated. */
bool mlc_cpu_gemm_float(mlc_pool *pool, const mlc_cpu_kernels *k, uint32_t type, const uint8_t *w,
                        size_t w_row, int64_t n_in, int64_t n_out, const uint8_t *a, size_t a_row, int64_t n,
                        float *y);

#endif
