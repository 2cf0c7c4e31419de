/* tests/gemm_harness.h: the data of one case of the prefill tile suites (test_gemm.c,
 * test_gemm_float.c, test_gemm_amx.c). Weights and activations come from one seeded stream,
 * weights first; the weights are quantized to the type under test, the activations converted
 * by the kernel set under test, and the output starts out NaN so an element never written
 * fails the comparison. */
#ifndef MLC_TESTS_GEMM_HARNESS_H
#define MLC_TESTS_GEMM_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/cpu/vecdot.h"
#include "mlc/quant.h"

/* How values are drawn. The *_SPREAD kinds scale every 3rd block of 32 weights by a power of
 * two in 2^-6 .. 2^6, so that block scales span orders of magnitude; activations are never
 * spread. */
typedef enum gh_dist {
    GH_GAUSS,          /* standard normal (tu_rng_gauss) */
    GH_GAUSS_SPREAD,   /* standard normal, weights spread */
    GH_UNIFORM_SPREAD, /* uniform in [-1, 1) from 53 bits, weights spread */
} gh_dist;

typedef struct gh_shape {
    int64_t n_in, n_out, n; /* row length, weight rows, activation rows */
} gh_shape;

typedef struct gh_case {
    gh_shape sh;
    size_t w_row, a_row; /* bytes of one weight row (the type), one activation row (the set) */
    float *wf;           /* [n_out, n_in] f32: the weights as the quantized rows hold them */
    float *xf;           /* [n, n_in] f32: the activations before conversion */
    uint8_t *w;          /* n_out rows of the type */
    uint8_t *a;          /* n rows in k's activation format for the type */
    float *y;            /* [n, n_out] f32, all NaN */
} gh_case;

/* Draws and prepares a case from seed for weight type t and kernel set k (its act[t]). */
void gh_case_init(gh_case *c, const mlc_cpu_kernels *k, mlc_type t, gh_shape sh, gh_dist dist,
                  uint64_t seed);
void gh_case_free(gh_case *c);

#endif
