/* attn.h: the CPU backend's attention, softmax(q K^T * scale) V over a slot's cache rows,
 * causal (and optionally windowed, soft-capped).
 *
 * The queries that read the same cache rows (the heads of one KV head, several tokens of
 * one slot) go through the kernel set's tiles together, so each key and value row is
 * loaded once for all of them; every output is bit for bit what one query at a time
 * through kq, exp_sub and axpy gives (vecdot.h), in every kernel set. */
#ifndef MLC_CPU_ATTN_H
#define MLC_CPU_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "pool.h"
#include "vecdot.h"

typedef struct mlc_cpu_attn {
    uint32_t type;             /* cache type: MLC_TYPE_F32 or MLC_TYPE_F16 */
    const float *q;            /* [n, n_head, hd] */
    const void *kc, *vc;       /* cache layers [n_slots, n_ctx, n_kv_head * hd] */
    const int32_t *slot, *pos; /* [n]: each token sees positions up to pos of its slot */
    float *out;                /* [n, n_head, hd] */
    int64_t n, n_ctx;
    int n_head, n_kv_head, hd; /* n_head a multiple of n_kv_head */
    mlc_attn_params p;
} mlc_cpu_attn;

/* Floats of scratch that each thread of the pool needs. */
size_t mlc_cpu_attn_scratch(const mlc_cpu_attn *a);
/* Runs the attention on the pool's threads; scratch holds mlc_pool_size(pool) times
 * mlc_cpu_attn_scratch(a) floats. The arguments are checked by the caller. */
void mlc_cpu_attn_run(const mlc_cpu_kernels *k, mlc_pool *pool, const mlc_cpu_attn *a, float *scratch);

#endif
