/* runref.h: the one grammar of run references, shared by `compare`, `report` and `baseline`:
 *   ID          a run id
 *   NAME        a baseline name (mlc-bench baseline set)
 *   last        the newest complete run; last:N the N newest complete runs alike (same kind,
 *               model, target, config and machine), pooled
 *   label:TEXT  every complete run with that --label
 * A relative reference (last, last:N) is taken relative to the other one of a pair: the
 * baseline's runs precede the candidate's; with both relative the candidate is the newest
 * complete run (of a kind when one is given) and its like. */
#ifndef MLC_BENCH_RUNREF_H
#define MLC_BENCH_RUNREF_H

#include <stdbool.h>
#include <stdint.h>

struct sqlite3;

/* Most runs one reference may pool (last:N). */
#define MLC_RUNREF_MAX_RUNS 256

typedef struct mlc_runref {
    int64_t ids[MLC_RUNREF_MAX_RUNS]; /* newest first */
    int n;
    char desc[256]; /* for output: "run 4", "'nightly' (run 4)", "last:3 (3 runs, 2..4)" */
} mlc_runref;

/* What the grammar makes of s when it is not a baseline name ("a run id", ...); NULL when
 * s is read as a baseline name. */
const char *mlc_runref_meaning(const char *s);

/* Resolves a baseline/candidate pair (kind: the newest run's kind when both are relative,
 * or NULL). False with one line on stderr prefixed "mlc-bench CMD: ". */
bool mlc_runref_resolve(struct sqlite3 *db, const char *cmd, const char *bs, const char *cs, const char *kind,
                        mlc_runref *b, mlc_runref *c);

/* Resolves one reference on its own (what names the option in messages: "baseline"); a
 * relative one is the newest complete run (of kind, when given) and its like. */
bool mlc_runref_resolve_one(struct sqlite3 *db, const char *cmd, const char *s, const char *what, const char *kind,
                            mlc_runref *r);

/* The newest run id of r. */
int64_t mlc_runref_newest(const mlc_runref *r);

#endif
