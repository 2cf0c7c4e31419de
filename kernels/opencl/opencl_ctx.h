/* opencl_ctx.h: the OpenCL backend's instance, shared by its host modules: opencl_backend.c
 * (devices, the program, memory, errors) and opencl_ops.c (the ops). */
#ifndef MLC_OPENCL_CTX_H
#define MLC_OPENCL_CTX_H

#include <stdbool.h>

#include "backend.h"
#include "cl_api.h"

/* Work-group shapes the program is built with (-D): WG items for the row reductions
 * (matvec, rms_norm, attention), TR x TT (rows x tokens) for the prefill matmul tile. */
#define MLC_CL_WG 64
#define MLC_CL_TR 16
#define MLC_CL_TT 4
#define MLC_CL_MAX_HD 1024 /* attention keeps one query head in local memory */
#define MLC_CL_MV_ROWS 4   /* output rows per matvec work group */

/* Every kernel of the program, by the name it has there. */
#define MLC_CL_KERNELS(X)                                                                   \
    X(get_rows_f32) X(get_rows_f16) X(get_rows_bf16) X(get_rows_q8_0) X(get_rows_q4_0)      \
    X(get_rows_q5_0) X(get_rows_q4_1) X(get_rows_q5_1) X(get_rows_iq4_nl) X(get_rows_q2_k)  \
    X(get_rows_q3_k) X(get_rows_q4_k) X(get_rows_q5_k) X(get_rows_q6_k) X(get_rows_iq4_xs)  \
    X(act_f16) X(act_bf16) X(act_q8_0) X(act_q8_1) X(act_q8_k)                              \
    X(mv_f32) X(mv_f16) X(mv_bf16) X(mv_q8_0) X(mv_q4_0) X(mv_q5_0) X(mv_q4_1) X(mv_q5_1)   \
    X(mv_iq4_nl) X(mv_q2_k) X(mv_q3_k) X(mv_q4_k) X(mv_q5_k) X(mv_q6_k) X(mv_iq4_xs)        \
    X(mm_f32) X(mm_f16) X(mm_bf16) X(mm_q8_0) X(mm_q4_0) X(mm_q5_0) X(mm_q4_1) X(mm_q5_1)   \
    X(mm_iq4_nl) X(mm_q2_k) X(mm_q3_k) X(mm_q4_k) X(mm_q5_k) X(mm_q6_k) X(mm_iq4_xs)        \
    X(rms_norm) X(rope) X(kv_store_f32) X(kv_store_f16) X(attention_f32) X(attention_f16)    \
    X(swiglu) X(geglu) X(binary) X(scale) X(gather)

typedef enum mlc_cl_kernel {
#define MLC_CL_K_ENUM_(k) K_##k,
    MLC_CL_KERNELS(MLC_CL_K_ENUM_)
#undef MLC_CL_K_ENUM_
    K_COUNT
} mlc_cl_kernel;

/* Buffers of up to this many bytes keep a host copy of what was uploaded, so that index
 * operands (token ids, slots, positions, rows: always small, always uploaded) are checked
 * by the op itself; the kernels check them too, for indices a kernel wrote. */
#define MLC_CL_MIRROR_MAX ((size_t)1 << 20)

struct mlc_buffer {
    cl_mem mem;
    size_t size;     /* bytes asked for (the cl_mem may be larger: never 0 bytes) */
    uint8_t *mirror; /* NULL, or size bytes: the uploads, while no kernel has written here */
    bool mirror_ok;
};

typedef struct cl_ctx {
    const mlc_cl_api *cl;
    cl_device_id dev;
    cl_context context; /* shared by every instance on this device (the program cache's) */
    cl_command_queue queue;
    cl_kernel k[K_COUNT];
    char dev_name[128];
    char paths[96]; /* the optional kernel paths chosen: "fp16 off (absent), sub-groups on" */
    uint64_t mem_total, max_alloc, mem_used; /* bytes: device, largest buffer, ours live */
    /* Scratch, grown on demand: converted activations, attention scores, the error flag. */
    mlc_buffer act, scores, errflag;
    mlc_err err; /* the sticky error: the first failure since the last sync */
} cl_ctx;

/* Records the first failure (later ones keep it) and returns the sticky status. */
mlc_status mlc_cl_fail(cl_ctx *c, mlc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a failed OpenCL call: out-of-memory codes become MLC_ERR_NOMEM. */
mlc_status mlc_cl_fail_code(cl_ctx *c, const char *what, cl_int e);
/* Makes sure scratch b holds at least bytes (a new cl_mem when it grows). */
mlc_status mlc_cl_scratch(cl_ctx *c, mlc_buffer *b, size_t bytes, const char *what);

/* One kernel argument: its size and address (clSetKernelArg's pair). */
typedef struct mlc_cl_arg {
    size_t size;
    const void *p;
} mlc_cl_arg;

/* Sets the n arguments of kernel k and enqueues it over global[dims] in groups of
 * local[dims] (NULL: the runtime's choice); global sizes are rounded up to the group. */
mlc_status mlc_cl_launch(cl_ctx *c, mlc_cl_kernel k, int dims, const size_t *global,
                         const size_t *local, int n, const mlc_cl_arg *args);

#define MLC_CL_ARGS(...) (int)(sizeof (mlc_cl_arg[]){__VA_ARGS__} / sizeof(mlc_cl_arg)), (mlc_cl_arg[]){__VA_ARGS__}
#define A_(x) {sizeof(x), &(x)}

/* The ops' table entries (opencl_ops.c). */
bool mlc_cl_supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4]);
mlc_status mlc_cl_get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out);
mlc_status mlc_cl_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y);
mlc_status mlc_cl_rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y);
mlc_status mlc_cl_rope(void *ctx, mlc_tensor x, mlc_tensor pos, mlc_tensor ff, int n_rot,
                       float freq_base, bool neox);
mlc_status mlc_cl_kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache,
                           mlc_tensor v_cache, mlc_tensor slot, mlc_tensor pos);
mlc_status mlc_cl_attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache,
                            mlc_tensor slot, mlc_tensor pos, const mlc_attn_params *p, mlc_tensor out);
mlc_status mlc_cl_swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
mlc_status mlc_cl_geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
mlc_status mlc_cl_add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
mlc_status mlc_cl_mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
mlc_status mlc_cl_scale(void *ctx, mlc_tensor x, float s, mlc_tensor out);
mlc_status mlc_cl_gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out);

#endif
