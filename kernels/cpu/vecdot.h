/* vecdot.h: CPU dot-product kernels and the activation formats they consume.
 *
 * As in ggml, a matmul first converts each activation row to the "activation type" of the
 * weight type, then takes dot products of weight rows with activation rows:
 *   weight F32  -> act F32        weight F16 -> act F16      weight BF16 -> act BF16
 *   weight Q8_0 -> act Q8_0       weight Q4_0 -> act Q8_0      weight Q5_0 -> act Q8_0
 *   weight Q4_1 -> act Q8_1       weight Q5_1 -> act Q8_1
 *   weight Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> act Q8_K
 *   weight IQ4_NL -> act Q8_0     weight IQ4_XS -> act Q8_K
 * Integer dot products on 8-bit activations are what make quantized inference fast, and
 * using the same activation formats as llama.cpp keeps our logits within rounding of its.
 *
 * Q8_1 (ggml type id 9), 32 values, 36 B: f16 d; f16 s (= d * sum qs, for the weights' min
 * term); i8 qs[32], the values of Q8_0.
 *
 * Q8_K (ggml type id 15), 256 values, 292 B: f32 d; i8 qs[256]; i16 bsums[16] (sums of each
 * 16 values, used for the Q4_K min term).
 *
 * Kernel sets: "scalar" (portable reference), "avx2" (AVX2+FMA+F16C) and "avx512"
 * (AVX-512F/BW/VL on top of avx2; VNNI, when present, for the quantized types), chosen at
 * run time from CPUID; MLC_CPU_ISA=scalar|avx2|avx512 forces one (tests use it to cover
 * every path this CPU has). Every set gives bit-identical results for the quantized weight
 * types and the Q8_0/Q8_K activations. The SIMD sets keep F16 and BF16 activations as F32
 * holding the f16/bf16-rounded values (same values, no conversion per weight row), so
 * always size activation rows with mlc_cpu_act_row_bytes and k->act_type. */
#ifndef MLC_CPU_VECDOT_H
#define MLC_CPU_VECDOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/quant.h"
#include "mlc/status.h"

#define MLC_TYPE_Q8_1 9u
#define MLC_TYPE_Q8_K 15u
#define MLC_Q8_K_BYTES 292

/* dot of one weight row and one activation row, n values each. */
typedef float (*mlc_dot_fn)(int64_t n, const void *w, const void *a);
/* The same weight row against 4 activation rows a0..a3 (stride astride bytes): out[4]. */
typedef void (*mlc_dot4_fn)(int64_t n, const void *w, const void *a, size_t astride, float *out);
/* 4 weight rows w0..w3 (stride wstride bytes) against one activation row: out[4], each
 * exactly what dot gives for that row (the decode path: the activation row is read once
 * for the four rows, and four weight streams are in flight). */
typedef void (*mlc_dotw4_fn)(int64_t n, const void *w, size_t wstride, const void *a, float *out);
/* 4 weight rows (stride wstride) against 4 activation rows (stride astride): out[4 * t + r]
 * for activation row t and weight row r (the prefill tile). Float types only: the sums may
 * be ordered differently from dot's (within float rounding). Optional, NULL: dot4/dot. */
typedef void (*mlc_dot44_fn)(int64_t n, const void *w, size_t wstride, const void *a,
                             size_t astride, float *out);
/* Converts n floats to one activation row. */
typedef void (*mlc_act_fn)(const float *x, void *a, int64_t n);
/* Attention (vecdot_attn.c; every set gives the same bits): a query row of n floats against
 * a key row of the cache (F32 or F16), the float sum in 16 lanes then a fixed tree; */
typedef float (*mlc_kq_fn)(int64_t n, const float *q, const void *k);
/* out[d] += w * v[d] for a value row of the cache (F32 or F16); */
typedef void (*mlc_axpy_fn)(int64_t n, float w, const void *v, float *out);
/* out[i] = e^(x[i] - sub) by one fixed float recipe (within 2 ulp; 0 below e^-87.3). */
typedef void (*mlc_exp_fn)(int64_t n, const float *x, float sub, float *out);
/* Blocked attention (attn.c), each result bit for bit what the per-row kernels give:
 * scores out[g][p] = kq(n, q[g], row p) for nq query rows against np key rows of the cache
 * (row p at k + p * kstride bytes); */
typedef void (*mlc_kq_tile_fn)(int64_t n, int nq, const float *const *q, const void *k, size_t kstride,
                               int64_t np, float *const *out);
/* for p = 0 .. np - 1 in order, out[g][d] = out[g][d] + w[g][p] * v_p[d] for the nq rows
 * out[g] of n floats (as axpy row after row; v_p at v + p * vstride bytes); */
typedef void (*mlc_pv_tile_fn)(int64_t n, int nq, const float *const *w, const void *v, size_t vstride,
                               int64_t np, float *const *out);
/* out[i] = x[i] rounded to F16 as mlc_fp32_to_fp16 does (nearest even, subnormals, inf,
 * NaN) and widened back; */
typedef void (*mlc_round16_fn)(int64_t n, const float *x, float *out);
/* out[i] = x[i] * s (one rounding, the same in any width); */
typedef void (*mlc_scale_fn)(int64_t n, const float *x, float s, float *out);
/* fmaxf(... fmaxf(init, x[0]) ..., x[n - 1]) for an init that is not NaN: NaNs are skipped;
 * a zero result may differ in sign, which e^(x - max) does not see. */
typedef float (*mlc_vmax_fn)(int64_t n, const float *x, float init);
/* out[i] = gelu_tanh(gate[i]) * up[i] (vecdot_gelu.c; every set gives the same bits). */
typedef void (*mlc_geglu_fn)(int64_t n, const float *gate, const float *up, float *out);

typedef struct mlc_cpu_kernels {
    const char *isa;                  /* "scalar", "avx2", "avx512" */
    mlc_dot_fn dot[MLC_TYPE_COUNT];   /* by weight type; NULL: unsupported */
    mlc_dot4_fn dot4[MLC_TYPE_COUNT]; /* optional, NULL: use dot */
    mlc_dotw4_fn dotw4[MLC_TYPE_COUNT]; /* optional, NULL: use dot */
    mlc_dot44_fn dot44[MLC_TYPE_COUNT]; /* optional, float types only */
    mlc_act_fn act[MLC_TYPE_COUNT];   /* by weight type */
    uint32_t act_type[MLC_TYPE_COUNT];
    mlc_kq_fn kq[2];                  /* [0]: F32 cache rows, [1]: F16 */
    mlc_axpy_fn axpy[2];              /* [0]: F32 cache rows, [1]: F16 */
    mlc_exp_fn exp_sub;
    mlc_kq_tile_fn kq_tile[2];        /* [0]: F32 cache rows, [1]: F16 */
    mlc_pv_tile_fn pv_tile[2];        /* [0]: F32 cache rows, [1]: F16 */
    mlc_round16_fn round16;
    mlc_scale_fn scale;
    mlc_vmax_fn vmax;
    mlc_geglu_fn geglu;
} mlc_cpu_kernels;

/* Fills k with the best kernels for this CPU, or those named by isa ("scalar", "avx2",
 * "avx512"; NULL or "auto" = best). Asking for an ISA this CPU lacks is an error. */
mlc_status mlc_cpu_kernels_init(mlc_cpu_kernels *k, const char *isa, mlc_err *err);
/* The ISAs this CPU can run, best last ("scalar avx2 avx512"). */
const char *mlc_cpu_isas_available(void);
/* Bytes of one activation row of n values for weights of type wtype. */
size_t mlc_cpu_act_row_bytes(const mlc_cpu_kernels *k, uint32_t wtype, int64_t n);

/* Scalar reference kernels (also the fallback of the SIMD sets). */
void mlc_cpu_kernels_scalar(mlc_cpu_kernels *k);
/* SIMD sets: overwrite the entries they accelerate. */
void mlc_cpu_kernels_avx2(mlc_cpu_kernels *k);
/* The Q2_K, Q3_K, Q5_K, IQ4_XS kernels of the avx2 set (vecdot_avx2_k.c); called above. */
void mlc_cpu_kernels_avx2_k(mlc_cpu_kernels *k);
void mlc_cpu_kernels_avx512(mlc_cpu_kernels *k);
/* The VNNI kernels of Q5_0, Q4_1, Q5_1, IQ4_NL (vecdot_avx512_q.c); called by the above. */
void mlc_cpu_kernels_avx512_q(mlc_cpu_kernels *k);
/* The VNNI kernels of Q2_K, Q3_K, Q5_K, IQ4_XS (vecdot_avx512_k.c); called by the above. */
void mlc_cpu_kernels_avx512_k(mlc_cpu_kernels *k);

/* The attention kernels of a set: level 0 scalar, 1 avx2, 2 avx512 (vecdot_attn.c). */
void mlc_cpu_kernels_attn(mlc_cpu_kernels *k, int level);
/* The GEGLU kernel of a set, levels as above (vecdot_gelu.c). */
void mlc_cpu_kernels_gelu(mlc_cpu_kernels *k, int level);

/* Activation quantizers, shared with the SIMD files (scalar reference versions). */
void mlc_cpu_act_q8_0(const float *x, void *a, int64_t n);
void mlc_cpu_act_q8_1(const float *x, void *a, int64_t n);
void mlc_cpu_act_q8_K(const float *x, void *a, int64_t n);

#endif
