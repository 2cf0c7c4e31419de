/* conformance.h: op-level conformance of a backend against the float64 reference.
 *
 * A case is one op at one type and shape. Its inputs are drawn from a seed (derived from the
 * run's base seed and the case's description, so a filtered run reproduces any case of a
 * full one); the backend runs it through the backend interface only (buffers and views), and
 * its output is compared with kernels/ref:
 *   - unsupported: the device's supports() declines the op, type and shape (never "passed");
 *   - fail: a NaN or Inf the reference lacks, a write outside the output (guard sentinels
 *     around every output and cache), a backend error, or NMSE above the threshold of
 *     conformance/tolerance.c;
 *   - pass otherwise. */
#ifndef MLC_CONFORMANCE_H
#define MLC_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef enum mlc_conf_level { MLC_CONF_QUICK, MLC_CONF_FULL } mlc_conf_level;

/* One case. shape is what supports() is asked (see MLC_OP_LIST); the other fields say how
 * the case is run. */
typedef struct mlc_conf_case {
    mlc_op op;
    uint32_t type;     /* weight / table / KV cache type; F32 for the type-less ops */
    int64_t shape[4];
    int64_t n;         /* tokens or rows in the batch */
    int32_t window;    /* attention: sliding window (0: none) */
    float softcap;     /* attention: logit soft-cap (0: none) */
    bool neox;         /* rope: NeoX pairs */
    bool bcast;        /* add, mul: b is one row broadcast over a */
} mlc_conf_case;

typedef enum mlc_conf_verdict {
    MLC_CONF_PASS,
    MLC_CONF_FAIL,
    MLC_CONF_UNSUPPORTED,
} mlc_conf_verdict;

/* "pass", "fail", "unsupported". */
const char *mlc_conf_verdict_name(mlc_conf_verdict v);

typedef struct mlc_conf_result {
    mlc_conf_case c;
    char desc[160];        /* "matmul Q4_K n_in=256 n_out=7 n=3" */
    mlc_conf_verdict verdict;
    double nmse;           /* NaN when not measured (unsupported, or failed before) */
    double threshold;
    uint64_t seed;         /* the case's own seed */
    char error[320];       /* why it failed; "" otherwise */
    double seconds;        /* wall time of the backend's part (upload, op, sync, download) */
    double bytes, flops;   /* the op's memory traffic and arithmetic, for GB/s and GFLOP/s */
} mlc_conf_result;

/* The cases of a level, in a fixed order (*out malloc'd; free it). Returns the count, or -1
 * when memory runs out. */
int mlc_conf_cases(mlc_conf_level level, mlc_conf_case **out);

/* "matmul Q4_K n_in=256 n_out=7 n=3". */
void mlc_conf_case_desc(const mlc_conf_case *c, char *buf, size_t cap);

/* The seed of case c in a run of base seed base. */
uint64_t mlc_conf_case_seed(const mlc_conf_case *c, uint64_t base);

/* Runs case c on backend instance b with the given seed and fills r. A verdict is always
 * given; the backend's sticky error is cleared (synced) before returning. */
void mlc_conf_run(const mlc_backend *b, const mlc_conf_case *c, uint64_t seed, mlc_conf_result *r);

#endif
