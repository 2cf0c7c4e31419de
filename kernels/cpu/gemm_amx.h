/* gemm_amx.h: the prefill matmul on Intel AMX tiles (TDPBSSD), for the weight types whose
 * activations are Q8_0 (Q8_0, Q4_0, Q5_0).
 *
 * gemm.h's VNNI tiles spend 8 vpdpbusd per 16 outputs and 32-value block; one TDPBSSD makes
 * the integer sums of a block for 16 weight rows x 16 activation rows at once, leaving the
 * vector units only the float part of the scalar dot: per output and block, the block's
 * exact int32 sum converted, times (weight scale * activation scale), added in block order.
 * The outputs are therefore bit-identical to the scalar dot of vecdot.c, as gemm.h's are.
 *
 * Used where the CPU has AMX-TILE and AMX-INT8, the OS grants this process the tile state
 * (Linux: arch_prctl ARCH_REQ_XCOMP_PERM), the CPU has AVX-512 F/BW/VL for the float part,
 * and MLC_CPU_AMX is not "0". */
#ifndef MLC_CPU_GEMM_AMX_H
#define MLC_CPU_GEMM_AMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

/* Whether this process may use the AMX path (see above); asks the OS for the tile state
 * the first time. */
bool mlc_cpu_amx_usable(void);

/* Whether mlc_cpu_gemm_amx takes weights of this type (false when AMX is not usable). */
bool mlc_cpu_gemm_amx_has(uint32_t type);

/* y [n, n_out] f32 = a [n Q8_0 activation rows of a_row bytes] times w [n_out rows of w_row
 * bytes, n_in values each]^T, split over the pool by 32-row weight panels. False (nothing
 * written) when AMX is not usable, type has no AMX kernel, or the scratch could not be
 * allocated: the caller's other paths then run. */
bool mlc_cpu_gemm_amx(mlc_pool *pool, uint32_t type, const uint8_t *w, size_t w_row, int64_t n_in,
                      int64_t n_out, const uint8_t *a, size_t a_row, int64_t n, float *y);

#endif
