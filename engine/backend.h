/* backend.h: the backend interface (internal to libmlc).
 *
 * In the spirit of ggml's backend interface: a registry of backends (backend_list.h), each
 * with devices (mlc_device_info: name, memory, capabilities), each device opened as an
 * instance that allocates buffers and runs ops. The forward pass (model.c) is plain C calling
 * these ops in order; it never touches device memory itself.
 *
 * Ops take tensor views (mlc_tensor: buffer + byte offset + type + shape), never addresses:
 * a buffer may be host memory, a cl_mem or a VkBuffer; only the backend resolves a view.
 * Shapes are ggml-style: ne[0] is the contiguous dimension, then ne[1], ne[2], ne[3]
 * (unused dimensions are 1). Activations are F32; index tensors (ids, positions, slots) I32.
 *
 * Ops are issued from one thread, in order; a backend may run them asynchronously and must
 * have finished them when sync() or download() returns.
 *
 * Errors are sticky: the first failure of an op, upload or download (out of memory, a view
 * outside its buffer, a device fault) is kept with its message; that call returns its status
 * where the backend can tell at once, every later op does nothing and returns it, and sync()
 * returns it with the message, then clears it. A failure never shows up as NaN output. */
#ifndef MLC_BACKEND_H
#define MLC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend_list.h"
#include "mlc/quant.h"
#include "mlc/status.h"

/* ggml's type id for 32-bit integer tensors: token ids, positions, slots, row indices. */
#define MLC_TYPE_I32 26u

/* ---------------------------------------------------------------- ops */

/* X(ID, name). The "type" and "shape" each op is asked about in supports() and measured
 * under in conformance:
 *   get_rows   table type       {row_len, rows}
 *   matmul     weight type      {n_in, n_out}
 *   rms_norm   F32              {dim}              (per head: dim = head_dim)
 *   rope       F32              {head_dim, n_head, n_rot, ff}   (ff 1: with frequency factors)
 *   kv_store   KV cache type    {kv_dim, n_ctx, n_slots}
 *   attention  KV cache type    {head_dim, n_head, n_kv_head, n_ctx}
 *   swiglu, geglu, add, mul, scale   F32   {n}   (elements)
 *   gather     F32              {dim} */
#define MLC_OP_LIST(X)         \
    X(GET_ROWS, get_rows)      \
    X(MATMUL, matmul)          \
    X(RMS_NORM, rms_norm)      \
    X(ROPE, rope)              \
    X(KV_STORE, kv_store)      \
    X(ATTENTION, attention)    \
    X(SWIGLU, swiglu)          \
    X(GEGLU, geglu)            \
    X(ADD, add)                \
    X(MUL, mul)                \
    X(SCALE, scale)            \
    X(GATHER, gather)

typedef enum mlc_op {
#define MLC_OP_ENUM_(id, name) MLC_OP_##id,
    MLC_OP_LIST(MLC_OP_ENUM_)
#undef MLC_OP_ENUM_
    MLC_OP_COUNT
} mlc_op;

/* "matmul"; "?" for a value outside the enum. */
const char *mlc_op_name(mlc_op op);
/* The op named name; false when there is none. */
bool mlc_op_from_name(const char *name, mlc_op *out);

/* ---------------------------------------------------------------- tensors, devices */

/* A device buffer; each backend defines what it holds (host memory, cl_mem, VkBuffer...). */
typedef struct mlc_buffer mlc_buffer;

typedef struct mlc_tensor {
    mlc_buffer *buf;
    size_t offset;  /* bytes from the start of buf */
    uint32_t type;  /* MLC_TYPE_* or MLC_TYPE_I32 */
    int64_t ne[4];  /* elements per dimension, ne[0] contiguous */
} mlc_tensor;

/* rope's ff operand when a model has no frequency factors. */
#define MLC_ROPE_NO_FF ((mlc_tensor){0})

/* A view of ne0 x ne1 x ne2 elements of type at byte offset of b. */
mlc_tensor mlc_tensor_make(mlc_buffer *b, size_t offset, uint32_t type, int64_t ne0, int64_t ne1,
                           int64_t ne2);
int64_t mlc_tensor_nelem(const mlc_tensor *t);
/* "Q4_K", "I32"; "?" for an id no table knows (never NULL, unlike mlc_type_name). */
const char *mlc_tensor_type_name(uint32_t type);
/* Bytes the view spans (whole rows of its type); 0 when the type or shape is invalid. */
size_t mlc_tensor_nbytes(const mlc_tensor *t);

#define MLC_CAP_HOST_MEMORY 1u /* buffers are host memory: weights() maps the file, no copy */
#define MLC_CAP_ASYNC 2u       /* ops may still run after the call returns (done at sync) */
#define MLC_CAP_THREADS 4u     /* the instance runs n_threads host threads */

typedef struct mlc_device_info {
    char name[64];          /* "cpu" */
    char description[256];  /* "AMD EPYC 7B13, 2 threads, isa: scalar avx2" */
    uint64_t mem_total;     /* bytes; 0 when unknown */
    uint64_t mem_free;      /* bytes; 0 when unknown */
    uint32_t caps;          /* MLC_CAP_* */
} mlc_device_info;

/* How to open a device. Fields left zero take the backend's defaults. */
typedef struct mlc_backend_params {
    int device;
    int n_threads;   /* host threads (CPU); <= 0: every online CPU */
    const char *isa; /* CPU kernel set: scalar | avx2 | avx512; NULL: $MLC_CPU_ISA, else the best */
} mlc_backend_params;

/* Attention options beyond plain causal attention. */
typedef struct mlc_attn_params {
    float scale;    /* applied to q.k (1 / sqrt(head_dim) for llama) */
    int32_t window; /* > 0: a token at pos sees positions pos - window + 1 .. pos only */
    float softcap;  /* > 0: scores become softcap * tanh(scores / softcap), after scale */
} mlc_attn_params;

/* ---------------------------------------------------------------- the table */

typedef struct mlc_backend_vt {
    const char *name;
    int (*device_count)(void);
    void (*device_info)(int dev, mlc_device_info *out);
    /* Optional: while device_count() is 0, one line saying why ("no OpenCL ICD loader"). */
    void (*no_device)(char *buf, size_t cap);

    mlc_status (*init)(const mlc_backend_params *p, void **ctx, mlc_err *err);
    void (*destroy)(void *ctx);
    /* One line: how this instance runs ("2 threads, avx2"). */
    void (*describe)(void *ctx, char *buf, size_t cap);
    /* Whether this instance can run op for this type and shape (see MLC_OP_LIST). Asked at
     * model load: a model needing an op the device declines is refused, naming it. */
    bool (*supports)(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4]);

    /* Memory. Allocation failures are returned (err filled), not sticky. */
    mlc_status (*buffer_alloc)(void *ctx, size_t bytes, mlc_buffer **out, mlc_err *err);
    void (*buffer_free)(void *ctx, mlc_buffer *b); /* NULL: nothing */
    /* Makes a weight matrix [ne0 = n_in, ne1 = n_out] of type, stored on the host as GGUF
     * lays it out, available to matmul and get_rows as *out. The backend may copy or repack
     * it (out->type and layout are then its own); the CPU maps the host bytes as they are.
     * host must outlive the weights. */
    mlc_status (*weights)(void *ctx, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                          mlc_tensor *out, mlc_err *err);
    void (*release_weights)(void *ctx, mlc_tensor *w);
    mlc_status (*upload)(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes);
    mlc_status (*download)(void *ctx, void *dst, mlc_buffer *src, size_t offset, size_t bytes);
    /* Waits for every op issued; returns the sticky error (message in err) and clears it. */
    mlc_status (*sync)(void *ctx, mlc_err *err);

    /* out [row_len, n] = rows ids [n] of table [row_len, rows], dequantized. */
    mlc_status (*get_rows)(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out);
    /* y [n_out, n] = x [n_in, n] W^T, W from weights() ([n_in, n_out]). */
    mlc_status (*matmul)(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y);
    /* y = x / rms(x) * w over each row of ne[0] values: x, y [dim, rows...], w [dim]. Per-head
     * norms pass x as [head_dim, n_head * n]. y may alias x. */
    mlc_status (*rms_norm)(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y);
    /* Rotary embedding in place on x [head_dim, n_head, n], first n_rot dims of each head, at
     * positions pos [n]. neox: pairs (j, j + n_rot/2); otherwise adjacent pairs (2j, 2j+1).
     * Pair j turns by pos * freq_base^(-2j/n_rot) / ff[j], with ff [n_rot/2] F32 the frequency
     * factors (Llama 3.1's rope_freqs), or by pos * freq_base^(-2j/n_rot) when ff.buf is NULL
     * (MLC_ROPE_NO_FF). */
    mlc_status (*rope)(void *ctx, mlc_tensor x, mlc_tensor pos, mlc_tensor ff, int n_rot,
                       float freq_base, bool neox);
    /* Stores k, v [kv_dim, n] at (slot[i], pos[i]) of the cache layers k_cache, v_cache
     * [kv_dim, n_ctx, n_slots] (F16 or F32). */
    mlc_status (*kv_store)(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache,
                           mlc_tensor v_cache, mlc_tensor slot, mlc_tensor pos);
    /* out [head_dim, n_head, n] = softmax(q K^T * scale) V for q [head_dim, n_head, n] over the
     * cache layers [n_kv_head * head_dim, n_ctx, n_slots]: token i (slot[i], pos[i]) attends to
     * positions 0..pos[i] of its slot (within the window, if any), which must be stored. GQA:
     * query head h reads KV head h / (n_head / n_kv_head). */
    mlc_status (*attention)(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache,
                            mlc_tensor slot, mlc_tensor pos, const mlc_attn_params *p,
                            mlc_tensor out);
    /* out = silu(gate) * up, elementwise. */
    mlc_status (*swiglu)(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
    /* out = gelu_tanh(gate) * up, elementwise;
     * gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    mlc_status (*geglu)(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out);
    /* out = a + b and out = a * b: b has a's shape, or is one row [ne0] added to (multiplied
     * into) every row of a. out may alias a. */
    mlc_status (*add)(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
    mlc_status (*mul)(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out);
    /* out = x * s; out may alias x. */
    mlc_status (*scale)(void *ctx, mlc_tensor x, float s, mlc_tensor out);
    /* out [dim, n]: row i is row rows[i] of x [dim, *]. */
    mlc_status (*gather)(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out);

    /* Optional hooks (NULL: not provided; the engine then does without). */

    /* out [n] I32 = the index of the largest value of each row of logits [n_vocab, n] F32,
     * exactly as mlc_argmax (mlc/sampler.h) picks it on the host: NaN never wins, ties go to
     * the lowest index, and a row of NaN only gives 0. The engine asks for it when every row
     * is sampled greedily, so only n int32 cross to the host instead of the logits. */
    mlc_status (*argmax)(void *ctx, mlc_tensor logits, mlc_tensor out);
    /* Brackets the ops of one forward pass (uploads of its inputs included; downloads and
     * sync() come after end_step), so that a backend may record them once and replay them
     * (CUDA graphs). begin_step returning an error means "not this step": the engine issues
     * the ops without end_step. end_step returns MLC_OK once the step's ops have run or are
     * queued; any other status means the backend ran none of them (it could not replay what
     * it recorded), and the engine issues the step's ops again, without the hooks. */
    mlc_status (*begin_step)(void *ctx);
    mlc_status (*end_step)(void *ctx);
} mlc_backend_vt;

/* A backend instance: its table and its context. */
typedef struct mlc_backend {
    const mlc_backend_vt *vt;
    void *ctx;
} mlc_backend;

/* The table of the backend named name, or an error that says why not (unknown, or not
 * built into this binary: never a silent fallback to another backend). */
mlc_status mlc_backend_vt_get(const char *name, const mlc_backend_vt **out, mlc_err *err);
/* Opens device p->device of the backend vt (p NULL: defaults). */
mlc_status mlc_backend_open_vt(const mlc_backend_vt *vt, const mlc_backend_params *p,
                               mlc_backend *out, mlc_err *err);
/* The same, by name. */
mlc_status mlc_backend_open(const char *name, const mlc_backend_params *p, mlc_backend *out,
                            mlc_err *err);
void mlc_backend_close(mlc_backend *b);

#define MLC_BACKEND_DECL_(name) extern const mlc_backend_vt mlc_backend_##name;
/* The tables of the backends this build has (the Makefile defines MLC_BUILT_BACKENDS). */
MLC_BUILT_BACKENDS(MLC_BACKEND_DECL_)
#undef MLC_BACKEND_DECL_

#endif
