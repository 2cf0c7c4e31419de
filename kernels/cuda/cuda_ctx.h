/* cuda_ctx.h: the CUDA (and HIP) backend's instance, shared by its sources: cuda_backend.cu
 * (devices, memory, errors, the table), cuda_matmul.cu (get_rows and matmul over every
 * weight type) and cuda_ops.cu (the other ops). */
#ifndef MLC_CUDA_CTX_H
#define MLC_CUDA_CTX_H

#include <initializer_list>

#include "gpu.h"

/* Codes the kernels write to the error flag {code, position, value} (first failure kept). */
#define MLC_CU_E_GET_ROWS 1
#define MLC_CU_E_GATHER 2
#define MLC_CU_E_KV_SLOT 3
#define MLC_CU_E_KV_POS 4
#define MLC_CU_E_ATT_SLOT 5
#define MLC_CU_E_ATT_POS 6

/* The largest head the attention kernel takes (one query head is kept in shared memory). */
#define MLC_CU_MAX_HD 1024

/* The most blocks a launch puts on grid.y or grid.z (the hardware's limit); kernels loop
 * over the rest. grid.x takes up to 2^31 - 1; argmax caps it here too. */
#define MLC_CU_MAX_GRID 65535

struct mlc_buffer {
    void *ptr;   /* device memory (NULL for an empty buffer) */
    size_t size; /* bytes */
};

namespace MLC_GPU_NS {

/* What the quantized activations in the scratch act were made from: the view of x, its
 * shape, the activation block size, and the epoch of the matmul that made or reused them
 * (0: nothing valid). */
typedef struct cu_act_key {
    uint64_t epoch;
    const mlc_buffer *buf;
    size_t offset;
    int64_t n_in, n;
    int aq;
} cu_act_key;

typedef struct cu_ctx {
    int dev;
    cudaStream_t stream;
    char dev_name[128];
    uint64_t mem_total; /* bytes */
    /* Scratch, grown on demand: attention scores (and split-K partials), the error flag
     * int[3], the int8 matvec's quantized activations. */
    mlc_buffer scores, errflag, act;
    /* Paths turned off by the environment (MLC_CUDA_NO_DP4A=1, MLC_CUDA_NO_MMA=1,
     * MLC_CUDA_NO_FLASH=1, MLC_CUDA_NO_ARGMAX=1, MLC_CUDA_NO_GRAPH=1): the plain kernels (the
     * host's argmax, launches one by one) then run, for comparison and as a fallback. */
    bool no_dp4a, no_mma, no_flash, no_argmax, no_graph;
    /* Step replay (begin_step .. end_step): while capturing, ops are recorded into a graph
     * instead of run; cant_replay says why this step's recording cannot be used (scratch
     * that must grow, staging too small), and the engine then issues the step again. */
    bool capturing;
    const char *cant_replay;
    bool warned;          /* the one-line warning of a failed replay was printed */
    cudaGraphExec_t exec; /* the last step's graph, updated in place while its shape holds */
    /* Pinned host staging of the uploads inside a step [stage_size] bytes: a recorded copy
     * reads its host address when the graph runs, so each upload gets its own range, kept
     * until the step has run. stage_want: the size a step asked for. */
    uint8_t *stage;
    size_t stage_size, stage_used, stage_want;
    /* Counts the ops issued and the uploads (anything that may write device memory). */
    uint64_t epoch;
    cu_act_key act_key;
    mlc_err err; /* the sticky error: the first failure since the last sync */
    /* A device fault that lost the CUDA context (an illegal address...): kept for good, every
     * later call fails with it. */
    mlc_err fatal;
} cu_ctx;

/* Records the first failure (later ones keep it) and returns the sticky status. */
mlc_status fail(cu_ctx *c, mlc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a failed runtime call: out-of-memory becomes MLC_ERR_NOMEM. */
mlc_status fail_code(cu_ctx *c, const char *what, cudaError_t e);
/* After a kernel launch: a launch failure becomes the sticky error. */
mlc_status launched(cu_ctx *c, const char *op);
/* Makes sure scratch b holds at least bytes (new device memory when it grows). */
mlc_status scratch(cu_ctx *c, mlc_buffer *b, size_t bytes, const char *what);

/* The sticky error, or a failure naming the first view outside its buffer. */
mlc_status views_ok(cu_ctx *c, const char *op, std::initializer_list<const mlc_tensor *> t);
/* A failure unless each view has type. */
mlc_status typed(cu_ctx *c, const char *op, uint32_t type, std::initializer_list<const mlc_tensor *> t);

/* Rows of a view: ne[1] * ne[2] * ne[3]. */
static inline int64_t rows_of(const mlc_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

/* The device address a view starts at. */
template <typename T> static inline T *at(const mlc_tensor &t)
{
    return (T *)((uint8_t *)t.buf->ptr + t.offset);
}

/* Blocks on grid.y or grid.z for count items, at most MLC_CU_MAX_GRID: the kernel loops
 * with a stride of gridDim.y (z) over the rest. */
static inline unsigned grid_yz(int64_t count) { return (unsigned)(count < MLC_CU_MAX_GRID ? count : MLC_CU_MAX_GRID); }

/* Blocks of n threads covering count items. */
static inline unsigned blocks_for(int64_t count, int n) { return (unsigned)((count + n - 1) / n); }

/* The ops' table entries. */
bool supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4]);
bool weight_type_ok(uint32_t type);
mlc_status get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out);
mlc_status matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y);
mlc_status rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y);
mlc_status rope(void *ctx, mlc_tensor x, mlc_tensor pos, mlc_tensor ff, int n_rot, float freq_base, bool neox);
mlc_status kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache, mlc_tensor v_cache,
                    mlc_tensor slot, mlc_tensor pos);
mlc_status attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache, mlc_tensor slot,
                     mlc_tensor pos, const mlc_attn_params *p, mlc_tensor out);
mlc_status swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
mlc_status geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
mlc_status add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
mlc_status mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
mlc_status scale(void *ctx, mlc_tensor x, float s, mlc_tensor out);
mlc_status gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out);
mlc_status argmax(void *ctx, mlc_tensor logits, mlc_tensor out);

} // namespace MLC_GPU_NS

#endif
