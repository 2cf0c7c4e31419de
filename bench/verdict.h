/* verdict.h: the verdict rule of the regression gate (compare.h describes it): the samples
 * of each side pooled per metric, and one verdict per metric. `compare`, `ab` and `report`
 * all judge through mlc_verdict_build, so a change reads the same wherever it is shown. */
#ifndef MLC_BENCH_VERDICT_H
#define MLC_BENCH_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare.h"
#include "stats.h"

struct sqlite3;

typedef struct mlc_dvec {
    double *v;
    size_t n, cap;
    bool oom;
} mlc_dvec;

/* One metric of the comparison: the pooled samples of each side and the verdict. */
typedef struct mlc_verdict_row {
    char name[128], unit[24];
    int direction;       /* +1 higher is better, -1 lower is better, 0 neither */
    bool det;            /* deterministic: tolerance instead of a test */
    mlc_dvec s[2];       /* [0] baseline, [1] candidate samples, pooled over runs */
    mlc_dvec runs[2];    /* the median of each run's samples, per side */
    bool run_level;      /* tested on runs[], not s[] */
    double med[2];       /* medians of s */
    double change;       /* (candidate - baseline) / |baseline|, a fraction */
    double limit;        /* the threshold or tolerance that applied, a fraction */
    double floor;        /* noisy metrics: the absolute noise floor, in the metric's unit (0: none) */
    bool gated;          /* false: reported only (not named by --gate) */
    mlc_mwu mw;
    double p_worse;      /* one-sided p of "candidate worse", NaN when not tested */
    const char *verdict; /* "regression", "improved", "~", "ok", "changed", "n/a", "-" */
    char why[96];
} mlc_verdict_row;

typedef struct mlc_verdict_table {
    mlc_verdict_row *r;
    int n, cap;
    int regressions; /* rows whose verdict is "regression" or "changed" */
} mlc_verdict_table;

/* What must agree between the runs of a comparison. */
typedef struct mlc_run_meta {
    int64_t id;
    char kind[32], status[16], target[32], backend[32], model[1024], arch[64], quant[64];
    char machine[2048]; /* fingerprint without the build: the code under test may differ */
    char config[4096];
} mlc_run_meta;

/* Reads run id's meta; false when there is no such run. */
bool mlc_run_meta_load(struct sqlite3 *db, int64_t id, mlc_run_meta *m);

/* Loads every metric of the runs of both sides (ids in the open store db), refuses pairs
 * that should not be compared (another kind; another model or machine unless o->force),
 * checks the per-metric option names and judges every row. 0 on success, 2 on a data
 * error (one line printed, prefixed "mlc-bench CMD: "). */
int mlc_verdict_build(struct sqlite3 *db, const char *cmd, const int64_t *base, int n_base, const char *base_desc,
                      const int64_t *cand, int n_cand, const char *cand_desc, const mlc_compare_opts *o,
                      mlc_verdict_table *t);
void mlc_verdict_free(mlc_verdict_table *t);

/* True for "regression" and "changed": the verdicts that fail the gate. */
bool mlc_verdict_is_bad(const mlc_verdict_row *r);

/* Why a reported-only metric is not gated ("" when it is gated by default). */
const char *mlc_verdict_reported_why(const char *name);

/* Cells of a row, as every output shows them: the one-sided p ("-" untested), the change
 * ("+1.23%"), a side's median with fmt ("-" when unmeasured), "n (b/c)" sizes. */
void mlc_verdict_fmt_p(const mlc_verdict_row *r, char *buf, size_t cap);
void mlc_verdict_fmt_change(const mlc_verdict_row *r, char *buf, size_t cap);
void mlc_verdict_fmt_med(double v, const char *fmt, char *buf, size_t cap);
void mlc_verdict_fmt_n(const mlc_verdict_row *r, char *buf, size_t cap);

#endif
