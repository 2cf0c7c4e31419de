/* backend.h: the backend vtable (internal to libmlc).
 *
 * A backend is a small table of functions, in the spirit of ggml's backend interface: device
 * discovery, memory, and the ops the forward pass needs. The forward pass (model.c) is plain
 * C calling these ops in order; it never touches device memory itself. Every pointer passed
 * to an op is a device pointer obtained from alloc() or weights(); activations are f32,
 * row-major. Ops are issued from one thread, in order; a backend may run them asynchronously
 * and must have finished them when sync() or download() returns.
 *
 * Shapes below use [rows, cols] with cols contiguous. "tokens" is the number of tokens in the
 * batch (n); "slot" is a sequence's KV-cache slot; positions are absolute in the sequence. */
#ifndef MLC_BACKEND_H
#define MLC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/status.h"

/* Geometry of a KV cache layer: [n_slots, n_ctx, kv_dim] elements of type (F16 or F32),
 * separately for K and V. */
typedef struct mlc_kv_geom {
    uint32_t type;   /* MLC_TYPE_F16 or MLC_TYPE_F32 */
    int64_t n_ctx;   /* positions per slot */
    int64_t kv_dim;  /* n_kv_head * head_dim */
} mlc_kv_geom;

/* Attention over the cache for n tokens: token i (in slot[i], at pos[i]) attends to
 * positions 0..pos[i] of its slot, which must already be stored. GQA: query head h reads KV
 * head h / (n_head / n_kv_head). */
typedef struct mlc_attn_args {
    const float *q;     /* [n, n_head * head_dim] */
    const void *k;      /* cache layer, see mlc_kv_geom */
    const void *v;
    const int32_t *slot; /* [n] */
    const int32_t *pos;  /* [n] */
    int64_t n;
    int n_head, n_kv_head, head_dim;
    float scale;         /* 1 / sqrt(head_dim) */
    float *out;          /* [n, n_head * head_dim] */
} mlc_attn_args;

typedef struct mlc_backend_vt {
    const char *name;
    int (*device_count)(void);
    void (*device_describe)(int dev, char *buf, size_t cap);

    mlc_status (*init)(int dev, int n_threads, void **ctx, mlc_err *err);
    void (*destroy)(void *ctx);
    /* One line: device and how this instance runs ("2 threads, avx2"). */
    void (*describe)(void *ctx, char *buf, size_t cap);

    /* Memory. alloc returns NULL when out of memory. weights() makes host tensor bytes
     * available on the device (the CPU returns the host pointer itself: zero copy from the
     * mmap); release_weights undoes it. */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*release)(void *ctx, void *p);
    void *(*weights)(void *ctx, const void *host, size_t bytes);
    void (*release_weights)(void *ctx, void *p);
    void (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    void (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    mlc_status (*sync)(void *ctx, mlc_err *err);

    /* out[i] = row ids[i] of table ([rows, row_len] of type), dequantized: [n, row_len]. */
    void (*get_rows)(void *ctx, uint32_t type, const void *table, int64_t row_len,
                     const int32_t *ids, int64_t n, float *out);
    /* y = x W^T: W [n_out, n_in] of type, x [n, n_in], y [n, n_out]. */
    void (*matmul)(void *ctx, uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                   const float *x, int64_t n, float *y);
    /* y = x / rms(x) * w per row: x, y [n, dim], w [dim]. */
    void (*rms_norm)(void *ctx, const float *x, const float *w, int64_t n, int64_t dim,
                     float eps, float *y);
    /* Rotary embedding in place on x [n, n_head, head_dim], first n_rot dims of each head.
     * neox: pairs (j, j + n_rot/2); otherwise adjacent pairs (2j, 2j+1). */
    void (*rope)(void *ctx, float *x, const int32_t *pos, int64_t n, int n_head, int head_dim,
                 int n_rot, float freq_base, bool neox);
    /* Store k, v [n, kv_dim] at (slot[i], pos[i]) of the cache layer. */
    void (*kv_store)(void *ctx, const mlc_kv_geom *g, const float *k, const float *v,
                     void *k_cache, void *v_cache, const int32_t *slot, const int32_t *pos,
                     int64_t n);
    void (*attention)(void *ctx, const mlc_kv_geom *g, const mlc_attn_args *a);
    /* out = silu(gate) * up, [n] elements. */
    void (*swiglu)(void *ctx, const float *gate, const float *up, int64_t n, float *out);
    /* out = a + b, [n] elements; out may alias a. */
    void (*add)(void *ctx, const float *a, const float *b, int64_t n, float *out);
    /* x[i, :] += bias for each of n rows of dim (QKV biases). */
    void (*add_bias)(void *ctx, float *x, const float *bias, int64_t n, int64_t dim);
    /* Copies row rows[i] of x ([*, dim]) to row i of out ([n, dim]). */
    void (*gather)(void *ctx, const float *x, const int32_t *rows, int64_t n, int64_t dim,
                   float *out);
} mlc_backend_vt;

/* A backend instance: its table and its context. */
typedef struct mlc_backend {
    const mlc_backend_vt *vt;
    void *ctx;
} mlc_backend;

/* Creates an instance of the backend named name on device dev. A backend this build lacks
 * is an error that says so (never a silent fallback to another backend). */
mlc_status mlc_backend_open(const char *name, int dev, int n_threads, mlc_backend *out,
                            mlc_err *err);
void mlc_backend_close(mlc_backend *b);

#ifdef MLC_HAVE_CPU
extern const mlc_backend_vt mlc_backend_cpu;
#endif

#endif
