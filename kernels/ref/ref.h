/* ref.h: float64 reference implementations of every backend op (backend.h), for testing
 * backends against (tests/test_cpu_ops*.c, and `mlc-bench conformance` for the GPU backends).
 *
 * Each function takes host pointers holding the same inputs the backend op gets (f32
 * activations; weights, tables and KV caches in their stored type) and writes its result in
 * double, computed as exactly as double allows: no activation quantization, no F16
 * rounding of intermediates, no float accumulation. Quantized weights are expanded with
 * mlc_dequantize_row (the format's definition of its values) and then used in double.
 * The difference between a backend's float output and these is what conformance measures,
 * as NMSE = sum (out - ref)^2 / sum ref^2 (mlc_ref_nmse).
 *
 * Shapes are written [rows, cols] with cols contiguous (backend.h's ne[0] = cols). */
#ifndef MLC_REF_H
#define MLC_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "mlc/quant.h"

/* A host KV cache layer: [n_slots, n_ctx, kv_dim] elements of type (F16 or F32). */
typedef struct mlc_ref_kv_geom {
    uint32_t type;
    int64_t n_ctx;
    int64_t kv_dim;
} mlc_ref_kv_geom;

/* Attention inputs on the host: q [n, n_head * head_dim], the cache layers k, v, and the
 * slot and position of each of the n tokens. */
typedef struct mlc_ref_attn_args {
    const float *q;
    const void *k, *v;
    const int32_t *slot, *pos;
    int64_t n;
    int n_head, n_kv_head, head_dim;
    mlc_attn_params p; /* scale, window, softcap as the backend op gets them */
} mlc_ref_attn_args;

/* out[i, :] = row ids[i] of table ([*, row_len] of type), dequantized: out [n, row_len].
 * Returns false (writing nothing) when the type is unsupported, row_len is not a whole
 * number of blocks, or memory runs out. */
bool mlc_ref_get_rows(uint32_t type, const void *table, int64_t row_len, const int32_t *ids,
                      int64_t n, double *out);

/* y = x W^T: W [n_out, n_in] of any supported type, x [n, n_in] f32, y [n, n_out].
 * n_in must be a multiple of the type's block size. Returns false (writing nothing) when the
 * type is unsupported, n_in is not a whole number of blocks, or memory runs out. */
bool mlc_ref_matmul(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                    int64_t n, double *y);

/* y = x / sqrt(mean(x^2) + eps) * w per row: x, y [n, dim], w [dim]. */
void mlc_ref_rms_norm(const float *x, const float *w, int64_t n, int64_t dim, float eps,
                      double *y);

/* Rotary embedding of x [n, n_head, head_dim] (not in place: the result goes to out, same
 * shape). Dims 0..n_rot-1 of each head rotate by angle pos * freq_base^(-2i/n_rot) / ff[i] for
 * pair i (ff [n_rot/2] frequency factors, or NULL for none); neox pairs (i, i + n_rot/2),
 * otherwise (2i, 2i+1). Dims n_rot.. are copied. */
void mlc_ref_rope(const float *x, const int32_t *pos, const float *ff, int64_t n, int n_head,
                  int head_dim, int n_rot, float freq_base, bool neox, double *out);

/* Llama 3.1's RoPE scaling as frequency factors ff [n_rot/2] (what its GGUFs carry as
 * rope_freqs.weight; rope divides pair i's angle by ff[i]). Pair i has wavelength
 * w = 2 pi freq_base^(2i/n_rot) positions: ff 1 when w < orig_ctx / high, factor when
 * w > orig_ctx / low, else 1 / ((1 - k) / factor + k) with k = (orig_ctx / w - low) /
 * (high - low). Llama 3.1: factor 8, low 1, high 4, orig_ctx 8192. */
void mlc_ref_llama3_rope_factors(int n_rot, float freq_base, float factor, float low, float high,
                                 float orig_ctx, float *ff);

/* Stores k, v [n, kv_dim] at (slot[i], pos[i]) of a cache layer of geometry g, as the
 * backend's kv_store does: F32 caches hold the values, F16 caches the values rounded to
 * half (mlc_fp32_to_fp16). A host-side cache writer for building reference caches. */
void mlc_ref_kv_store(const mlc_ref_kv_geom *g, const float *k, const float *v, void *k_cache,
                      void *v_cache, const int32_t *slot, const int32_t *pos, int64_t n);

/* Causal attention over a host KV cache layer of geometry g (F16 or F32): token i (slot[i],
 * pos[i]) attends to positions 0..pos[i] of its slot (only pos[i] - window + 1 .. pos[i]
 * when a->p.window > 0); query head h reads KV head h / (n_head / n_kv_head);
 * out [n, n_head * head_dim]. Cache values are read exactly (F16 widened), everything else
 * is double: softmax(softcap(q K^T * scale)) V, softcap(s) = c tanh(s / c) when
 * a->p.softcap = c > 0. Returns false (writing nothing) when memory runs out or the cache
 * type is neither F16 nor F32. */
bool mlc_ref_attention(const mlc_ref_kv_geom *g, const mlc_ref_attn_args *a, double *out);

/* out = silu(gate) * up = gate / (1 + exp(-gate)) * up, [n] elements. */
void mlc_ref_swiglu(const float *gate, const float *up, int64_t n, double *out);

/* out = gelu_tanh(gate) * up, gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * [n] elements. */
void mlc_ref_geglu(const float *gate, const float *up, int64_t n, double *out);

/* out = a + b and out = a * b, [n] elements; b holds n elements, or nb < n (a row of nb
 * values applied to each of the n / nb rows of a). */
void mlc_ref_add(const float *a, const float *b, int64_t n, int64_t nb, double *out);
void mlc_ref_mul(const float *a, const float *b, int64_t n, int64_t nb, double *out);

/* out = x * s, [n] elements. */
void mlc_ref_scale(const float *x, float s, int64_t n, double *out);

/* out[i, :] = x[rows[i], :], dim columns: out [n, dim]. */
void mlc_ref_gather(const float *x, const int32_t *rows, int64_t n, int64_t dim, double *out);

/* Row-wise softmax of x [rows, n]: out[r, j] = exp(x[r, j] - max_r) / sum_j exp(...).
 * A row whose maximum is -inf (every logit masked) comes out all zero. */
void mlc_ref_softmax(const float *x, int64_t rows, int64_t n, double *out);

/* Normalized mean squared error sum (out - ref)^2 / sum ref^2 over n values. When the
 * reference is all zero it is 0 if out is all zero too and +inf otherwise. NaN when out (or
 * ref) holds a NaN; check mlc_ref_first_nonfinite first to report those precisely. */
double mlc_ref_nmse(const float *out, const double *ref, int64_t n);

/* Index of the first value where out is NaN or infinite but ref is finite, or where both
 * are non-finite but differ (NaN vs inf, or infinities of opposite sign); -1 when none.
 * Any NaN or Inf the reference lacks is a failure. */
int64_t mlc_ref_first_nonfinite(const float *out, const double *ref, int64_t n);

#endif
