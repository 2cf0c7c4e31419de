/* conformance.h: `mlc-bench conformance`: op-level conformance of every backend and device
 * against the float64 reference (conformance/), with console, JSON, JUnit and markdown
 * output. */
#ifndef MLC_BENCH_CONFORMANCE_H
#define MLC_BENCH_CONFORMANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "../conformance/conformance.h"
#include "../conformance/model_conformance.h"

/* The results of one device: what a store of conformance results takes. */
typedef struct mlc_conf_device_run {
    char backend[32];
    int device;
    char device_desc[384];   /* device description and how the instance runs */
    const char *level;       /* "quick" or "full" */
    uint64_t seed;           /* the run's base seed (each case's seed derives from it) */
    mlc_conf_result *results;
    int n_results;
    int n_pass, n_fail, n_unsupported;
    double seconds;          /* wall time of the whole device run */
    bool has_model;          /* --model: the model-level comparison ran */
    char model_path[512];
    mlc_conf_model_result model;
} mlc_conf_device_run;

int mlc_cmd_conformance(int argc, char **argv);

#endif
