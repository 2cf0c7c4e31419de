/* tolerance.h: the one table of conformance thresholds: the largest NMSE each op accepts
 * for each type, against the float64 reference of kernels/ref. Used by the conformance suite
 * (conformance.c) and by tests/test_cpu_ops.c. */
#ifndef MLC_CONF_TOLERANCE_H
#define MLC_CONF_TOLERANCE_H

#include <stdint.h>

#include "backend.h"

/* The NMSE threshold of op with type (the weight / table / KV cache type; F32 for the
 * type-less ops); a negative value when the table has no row for them. */
double mlc_conf_threshold(mlc_op op, uint32_t type);

#endif
