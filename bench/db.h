/* db.h: `mlc-bench db info|export|merge`: the store as a file (DESIGN.md, Store, Scale-out). */
#ifndef MLC_BENCH_DB_H
#define MLC_BENCH_DB_H

#include "store.h"

int mlc_cmd_db(int argc, char **argv);

/* Computes and stores the aggregates of every load point of run_id from its requests, as
 * `run` does (metrics "LOAD/NAME", TTFT and E2E samples); load names come from the config's
 * "load" list (a point beyond it is named "p=K"), goodput from its "slo". */
mlc_status mlc_db_aggregate(mlc_store *s, int64_t run_id, const char *config, mlc_err *err);

#endif
