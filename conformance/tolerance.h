/* tolerance.h: the one table of conformance thresholds: the largest NMSE each op accepts
 * for each type, against the float64 reference of kernels/ref. Used by the conformance suite
 * (conformance.c) and by tests/test_cpu_ops*.c (tests/ops_harness.c). */
#ifndef MLC_CONF_TOLERANCE_H
#define MLC_CONF_TOLERANCE_H

#include <stdint.h>

#include "backend.h"

/* The NMSE threshold of op with type (the weight / table / KV cache type; F32 for the
 * type-less ops); a negative value when the table has no row for them. */
double mlc_conf_threshold(mlc_op op, uint32_t type);

/* Model-level thresholds: a model on a backend against the same model on the reference CPU
 * (scalar kernels), on the same tokens. */
typedef struct mlc_conf_model_tol {
    double logits_nmse; /* largest NMSE of one position's logits */
    double ppl_rel;     /* largest |ppl - ppl_ref| / ppl_ref */
    double top1_agree;  /* smallest share of positions whose argmax matches the reference's */
} mlc_conf_model_tol;

const mlc_conf_model_tol *mlc_conf_model_tolerance(void);

#endif
