/* mlc/model.h: loading a llama-family GGUF model (llama, qwen2, gemma3) onto a backend, and
 * running it.
 *
 * A model holds weights (on the backend) and the tokenizer. A context holds a KV cache of
 * n_slots independent sequences ("slots") of up to n_ctx positions each, and runs batches:
 * any mix of tokens from any slots (prefill chunks and decode steps) in one forward pass.
 * The scheduler (mlc/sched.h) builds such batches; perplexity and micro-benchmarks drive a
 * context directly. */
#ifndef MLC_MODEL_H
#define MLC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mlc_tokenizer;
struct mlc_backend_vt;

typedef struct mlc_model_params {
    const char *backend; /* "cpu", ... (NULL: cpu) */
    int device;          /* device index within the backend */
    int n_threads;       /* CPU threads; <= 0: all online CPUs */
    const char *isa;     /* CPU kernel set: scalar | avx2 | avx512 (NULL: $MLC_CPU_ISA or the best) */
    /* A backend table to use instead of the one named by backend (libmlc-internal tables,
     * e.g. a test's fault-injecting wrapper); NULL for normal use. */
    const struct mlc_backend_vt *backend_vt;
} mlc_model_params;

typedef struct mlc_model_info {
    const char *path;
    const char *arch;     /* "llama", "qwen2", "gemma3" */
    const char *name;     /* general.name or "" */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
    int n_swa;            /* sliding window of the local layers (positions); 0: none */
    int swa_period;       /* layer il is local when il % swa_period < swa_period - 1 */
    float rope_base_swa;  /* RoPE base of the local layers */
    int64_t n_params;     /* elements of all tensors */
    uint64_t weight_bytes;
    uint64_t matmul_bytes_per_token; /* weights read once per decoded token (all matmuls) */
    const char *type_desc; /* "Q4_K (25), Q6_K (5), F32 (9)" */
    const char *ftype;     /* weight mix as llama.cpp names it: "F16", "Q8_0", "Q4_K - Medium" */
    int n_threads;         /* CPU threads in use (backends that have them) */
    const char *backend_desc; /* "cpu: 2 threads, avx2" */
} mlc_model_info;

typedef struct mlc_model mlc_model;

mlc_status mlc_model_load(const char *path, const mlc_model_params *p, mlc_model **out,
                          mlc_err *err);
void mlc_model_free(mlc_model *m);
const mlc_model_info *mlc_model_get_info(const mlc_model *m);
/* The model's tokenizer (owned by the model). */
const struct mlc_tokenizer *mlc_model_tokenizer(const mlc_model *m);

typedef enum mlc_kv_type { MLC_KV_F16 = 0, MLC_KV_F32 = 1 } mlc_kv_type;

typedef struct mlc_context_params {
    int n_ctx;     /* positions per slot (<= 0: the model's training context) */
    int n_slots;   /* sequences that can be live at once (<= 0: 1) */
    int n_batch;   /* most tokens in one forward pass (<= 0: 512; at most n_ctx x n_slots) */
    mlc_kv_type kv_type;
} mlc_context_params;

typedef struct mlc_context mlc_context;

mlc_status mlc_context_new(mlc_model *m, const mlc_context_params *p, mlc_context **out,
                           mlc_err *err);
void mlc_context_free(mlc_context *c);
int mlc_context_n_ctx(const mlc_context *c);
int mlc_context_n_slots(const mlc_context *c);
int mlc_context_n_batch(const mlc_context *c);
int mlc_context_n_vocab(const mlc_context *c);
mlc_model *mlc_context_model(const mlc_context *c);

/* n tokens; token i goes to slot[i] at position pos[i]. Positions of a slot must be
 * filled in order (a token sees positions 0..pos of its slot). want_logits[i] asks for
 * that token's logits (NULL: only the last token's). */
typedef struct mlc_batch {
    int n;
    const int32_t *tokens;
    const int32_t *pos;
    const int32_t *slot;
    const bool *want_logits;
} mlc_batch;

/* Runs the forward pass. Errors (position past n_ctx, bad slot or token id, batch larger
 * than n_batch) name the token index and leave the cache as it was for other slots. */
mlc_status mlc_context_decode(mlc_context *c, const mlc_batch *b, mlc_err *err);
/* The same for a caller that needs only the greedy token of each wanted row
 * (mlc_context_argmax), not the logits: a backend that can pick it on the device then sends
 * back one int32 per row. mlc_context_logits returns NULL after such a decode. */
mlc_status mlc_context_decode_greedy(mlc_context *c, const mlc_batch *b, mlc_err *err);
/* Logits [n_vocab] of the k-th token that asked for them in the last decode (host memory,
 * valid until the next decode); NULL when k is out of range or the decode was greedy. */
const float *mlc_context_logits(const mlc_context *c, int k);
/* The k-th wanted token's greedy pick (mlc_argmax of its logits) in the last decode if it
 * was mlc_context_decode_greedy; -1 when k is out of range or it was not. */
int32_t mlc_context_argmax(const mlc_context *c, int k);

#ifdef __cplusplus
}
#endif
#endif
