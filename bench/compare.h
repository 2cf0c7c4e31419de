/* compare.h: the regression gate (DESIGN.md, "Regression gate"): `mlc-bench compare` and
 * the comparison that `mlc-bench ab` reuses.
 *
 * A side (baseline or candidate) is a set of runs of one kind, model, target, config and
 * machine. Per metric, the samples of every run of a side are pooled: the raw samples a run
 * stored (per-request TTFT and E2E, micro's repetitions), the per-request ITL gaps and TPOT
 * derived from its request records, else the metric's single value (so per-run figures such
 * as throughput get one sample per run, and only several runs per side can make them
 * significant). From 5 runs on each side the unit of the test is the run (the median of
 * each run's samples): requests of one run share its conditions, so pooled samples make
 * p-values optimistic when runs differ (a busy neighbour during one of them).
 *
 * Noisy metrics (by direction): a regression needs the one-sided Mann-Whitney U p-value
 * below alpha AND the median moved in the bad direction by more than the threshold AND by
 * more than the noise floor of the metric's unit (an absolute change, e.g. 0.5 ms: below
 * it a change is scheduler jitter however large in percent); anything less is reported as
 * `~`. Client delay measures the load generator, not the system under test: it is reported
 * but not gated unless asked (--gate). Deterministic metrics (perplexity, token counts,
 * failed requests, KL-divergence) use a relative tolerance instead of a test. A metric
 * measured on one side only is reported as missing ("n/a"), never as a regression. */
#ifndef MLC_BENCH_COMPARE_H
#define MLC_BENCH_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

struct sqlite3;

#define MLC_COMPARE_MAX_OVERRIDES 16

/* A per-metric setting: applies when pattern equals the metric's name or its last
 * '/'-separated component ("itl_ms" matches "c=4/itl_ms"). */
typedef struct mlc_metric_override {
    const char *pattern;
    double pct;
} mlc_metric_override;

#define MLC_COMPARE_MAX_FLOORS 16

/* An absolute noise floor: key is a unit ("ms") or a metric name or last component
 * ("itl_ms"); a name is more specific than a unit. v is in the metric's unit. */
typedef struct mlc_noise_floor {
    char key[48];
    double v;
    bool given; /* on the command line (a default need not match a compared metric) */
} mlc_noise_floor;

typedef struct mlc_compare_opts {
    double alpha;         /* one-sided significance level, default 0.01 */
    double threshold_pct; /* noisy metrics: median change that counts, default 5 */
    double tolerance_pct; /* deterministic metrics, default 0.1 */
    mlc_metric_override thresholds[MLC_COMPARE_MAX_OVERRIDES], tolerances[MLC_COMPARE_MAX_OVERRIDES];
    int n_thresholds, n_tolerances;
    mlc_noise_floor floors[MLC_COMPARE_MAX_FLOORS]; /* default: ms=0.5 */
    int n_floors;
    const char *gate[MLC_COMPARE_MAX_OVERRIDES];    /* reported-only metrics gated anyway */
    int n_gate;
    const char *metric;   /* only metrics whose name contains this, or NULL */
    bool force;           /* compare across machines / models / configs */
    bool json;            /* JSON on stdout instead of the table */
    bool markdown;        /* markdown on stdout instead of the table */
    bool quiet;           /* no table at all (the exit status, --junit and the step summary only) */
    const char *junit;    /* JUnit XML file or NULL */
} mlc_compare_opts;

/* Defaults above. */
void mlc_compare_opts_init(mlc_compare_opts *o);

/* Parses "PCT" (the default for every metric) or "NAME=PCT" into o; false with a message. */
bool mlc_compare_parse_pct(const char *flag, const char *val, double *all, mlc_metric_override *ov, int *n);

/* Parses "KEY=V[,KEY=V...]" (--noise-floor) into o->floors: a key given again replaces its
 * value; false with a message. */
bool mlc_compare_parse_floors(const char *flag, const char *val, mlc_compare_opts *o);

/* The gate options (--alpha --threshold --tolerance --noise-floor --gate --metric --force
 * --json --quiet --junit --format) for commands that take them (compare, ab): 1 when argv[*i] was one (its value
 * consumed), 0 when it is not a gate option, -1 on a bad value (message printed). */
int mlc_compare_parse_opt(const char *cmd, int argc, char **argv, int *i, mlc_compare_opts *o);

/* Compares candidate runs against baseline runs (ids in the open store db); base_desc and
 * cand_desc describe the references in the output ("baseline 'nightly' (run 4)"). Prints
 * the result, appends markdown to $GITHUB_STEP_SUMMARY when set, writes --junit. Returns the
 * exit status: 0 no regression, 1 regression, 2 data error (message printed). */
int mlc_compare_runs(struct sqlite3 *db, const int64_t *base, int n_base, const char *base_desc,
                     const int64_t *cand, int n_cand, const char *cand_desc, const mlc_compare_opts *o);

/* mlc_runref_meaning (runref.h): what the reference grammar makes of s ("a run id", ...);
 * NULL when s is read as a baseline name. `baseline set` refuses names with a meaning, which
 * no reference could ever reach. */
const char *mlc_compare_ref_meaning(const char *s);

int mlc_cmd_compare(int argc, char **argv);

#endif
