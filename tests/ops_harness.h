/* tests/ops_harness.h: the op suite (test_cpu_ops*.c) runs every op of every backend and
 * device this build has against the float64 reference (kernels/ref), through the backend
 * interface only (buffers and tensor views), on random inputs over awkward shapes (1, 7, 33,
 * non-power-of-two block multiples, batch 1 and > 1). The CPU runs under every kernel set
 * this CPU has (scalar, avx2, avx512) and with 1 and 2 threads; other backends on each of
 * their devices with their defaults.
 *
 * Each case draws its inputs from its own seed, derived from a base seed (MLC_TEST_SEED=<n>
 * sets it; MLC_TEST_SEED=time picks a fresh one); failures print both, so any failure can be
 * replayed. Error is NMSE = sum (out - ref)^2 / sum ref^2, against the thresholds of the one
 * table of conformance/tolerance.c. Any NaN or Inf the reference lacks fails. Outputs live
 * between canary floats (and start out filled with them), so an out-of-bounds write or an
 * element never written is caught. MLC_OPS_REPORT=1 prints the worst NMSE of each op and
 * type. A test holds its backends, seeds and worst errors in one ops_run, from ops_setup to
 * ops_teardown. */
#ifndef MLC_TESTS_OPS_HARNESS_H
#define MLC_TESTS_OPS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "mlc/quant.h"

#define OPS_MAX_CFG 16
#define OPS_CANARY 0x7FA5A5A5u /* a signalling NaN: reading it as data shows up too */
#define OPS_N_BATCHES 3

/* Batch sizes (tokens) every op is run at: 1, a few, more than a SIMD width. */
extern const int64_t OPS_BATCHES[OPS_N_BATCHES];

/* One backend under test. */
typedef struct ops_cfg {
    mlc_backend b;
    char name[64]; /* "cpu:0 isa=avx2 threads=2" */
} ops_cfg;

/* One test's state. */
typedef struct ops_run {
    ops_cfg cfgs[OPS_MAX_CFG];
    int n_cfgs;
    uint64_t base_seed;
    uint64_t case_no;
    const char *test_name;
    double worst[MLC_OP_COUNT][MLC_TYPE_COUNT]; /* worst NMSE seen, for MLC_OPS_REPORT */
} ops_run;

/* Opens every device of every built backend; the CPU for every ISA x {1, 2} threads. */
ops_run *ops_setup(const char *name);
/* Closes the backends, prints the report when asked, frees run. */
void ops_teardown(ops_run *run);
/* The seed of the next case. */
uint64_t ops_next_case_seed(ops_run *run);

double *ops_dalloc(int64_t n);
float *ops_falloc(int64_t n);

/* Device tensors of c: an input [ne0, ne1, ne2] filled from host, weights as the backend
 * takes them, and views between guard canaries (initial: their first bytes, NULL: all
 * canaries, so an element the op never writes stays NaN). Free with ops_d_free (weights with
 * the backend's release_weights). */
mlc_tensor ops_d_in(const ops_cfg *c, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                    int64_t ne2);
mlc_tensor ops_d_weights(const ops_cfg *c, const void *host, uint32_t type, int64_t ne0,
                         int64_t ne1);
mlc_tensor ops_d_guarded(const ops_cfg *c, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                         const void *initial);
/* An F32 output [ne0, ne1, ne2] between guards. */
mlc_tensor ops_d_out(const ops_cfg *c, int64_t ne0, int64_t ne1, int64_t ne2,
                     const float *initial);
void ops_d_free(const ops_cfg *c, mlc_tensor t);
/* Syncs, then downloads the floats d spans into host after checking both guards. */
void ops_d_fetch(const ops_cfg *c, mlc_tensor d, float *host, const char *desc);
/* Floats a view spans (a cache layer of an odd F16 count ends in 2 bytes of padding). */
int64_t ops_span_floats(const mlc_tensor *t);
/* True when c's backend declines op on this type and shape (the CPU must decline nothing). */
bool ops_declines(const ops_cfg *c, mlc_op op, uint32_t type, int64_t ne0, int64_t ne1);

/* Sums of one comparison, possibly pooled over repetitions of a case (see matmul_case in
 * test_cpu_ops_matmul.c). */
typedef struct ops_acc {
    double err, norm;   /* sum (out - ref)^2, sum ref^2 */
    double diff;        /* the largest |out - ref| seen, at: */
    double got, want;
    int64_t at;
    int rep;
} ops_acc;

/* Adds n outputs to a (rep: the repetition, or -1); a non-finite output the reference lacks
 * fails at once. */
void ops_acc_add(ops_acc *a, const char *desc, int rep, const float *out, const double *ref,
                 int64_t n);
/* Fails when a's NMSE is over the threshold of (op, type); records the worst in run. */
void ops_acc_check(ops_run *run, const ops_acc *a, const char *op, uint32_t type,
                   const char *desc);
/* ops_acc_add and ops_acc_check of one output. */
void ops_expect_close(ops_run *run, const char *op, uint32_t type, const char *desc,
                      const float *out, const double *ref, int64_t n);
/* The case's description in buf: fmt, then the backend, the case seed and the base seed. */
void ops_describe(const ops_run *run, char *buf, size_t cap, const ops_cfg *c, uint64_t seed,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
