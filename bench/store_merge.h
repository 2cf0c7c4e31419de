/* store_merge.h: the store's whole-file operations behind `mlc-bench db` (DESIGN.md, Store,
 * Scale-out): copying the runs of one store into another, the logical run of a shard group,
 * reading requests back, and the file's summary.
 *
 * Runs are matched by their UUID (runs.uuid): a run already present is never copied again,
 * so merging a file twice adds nothing. Ids are remapped; fingerprints are matched by hash,
 * baselines by name (a name already present keeps its run). The logical run of a group has
 * the UUID "group-" + the group id, shard_index NULL, and a copy of every shard's requests. */
#ifndef MLC_BENCH_STORE_MERGE_H
#define MLC_BENCH_STORE_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "store.h"

/* Copies the runs of the store at in_path (opened and migrated first, so an older file
 * gains its UUIDs) that `out` lacks, with their requests, metrics, samples, perplexity,
 * conformance and slo rows, fingerprints and baselines; one transaction. *added and
 * *skipped count runs. The shard groups of added runs are remembered for
 * mlc_store_touched_groups. */
mlc_status mlc_store_merge_file(mlc_store *out, const char *in_path, int64_t *added, int64_t *skipped,
                                mlc_err *err);

/* A shard group whose runs changed in this merge: its id, the shard count its runs give, the
 * distinct shard indexes present and how many of them completed. Strings live until the
 * callback returns. */
typedef struct mlc_shard_group {
    const char *id;
    int shard_count, present, complete;
} mlc_shard_group;
typedef mlc_status (*mlc_shard_group_fn)(void *ctx, const mlc_shard_group *g, mlc_err *err);
/* Calls fn for each group touched by mlc_store_merge_file on this connection. */
mlc_status mlc_store_touched_groups(mlc_store *s, mlc_shard_group_fn fn, void *ctx, mlc_err *err);

/* (Re)creates the logical run of group g: the first shard's run row (kind, target, model,
 * config) with started the earliest, finished the latest, status 'complete' when every shard
 * completed (else 'interrupted' and partial 1), and the union of the shards' requests; its
 * old metrics and samples are removed. *run_id is the logical run; *config (malloc'd, may be
 * NULL) its config JSON. */
mlc_status mlc_store_group_run(mlc_store *s, const mlc_shard_group *g, int64_t *run_id, char **config,
                               mlc_err *err);

/* The requests of run_id's load point `phase`, as the harness records them (times in seconds
 * on the run's clock; error_kind points to static "error"; itl_ms malloc'd). *out is
 * malloc'd; free with mlc_store_free_times. */
mlc_status mlc_store_read_times(mlc_store *s, int64_t run_id, int phase, mlc_req_times **out, int64_t *n,
                                mlc_err *err);
void mlc_store_free_times(mlc_req_times *t, int64_t n);

/* The run a reference names: a number (the id), a UUID, or "latest" (the highest id). */
mlc_status mlc_store_resolve_run(mlc_store *s, const char *ref, int64_t *run_id, mlc_err *err);

/* One line of `db info`: runs of a kind with a status. */
typedef void (*mlc_store_count_fn)(void *ctx, const char *kind, const char *status, int64_t n);
/* Calls fn per (kind, status), ordered by kind and status. */
mlc_status mlc_store_run_counts(mlc_store *s, mlc_store_count_fn fn, void *ctx, mlc_err *err);
/* The file's schema version (PRAGMA user_version) and size (pages times page size). */
void mlc_store_file_info(mlc_store *s, int64_t *version, int64_t *bytes);

/* One value of an exported row. ITL blobs are decoded into floats (ms). */
typedef enum mlc_cell_type { MLC_CELL_NULL, MLC_CELL_INT, MLC_CELL_REAL, MLC_CELL_TEXT, MLC_CELL_FLOATS } mlc_cell_type;
typedef struct mlc_cell {
    const char *name;
    mlc_cell_type type;
    int64_t i;
    double d;
    const char *text;
    const float *f;
    int32_t nf;
} mlc_cell;
typedef mlc_status (*mlc_row_fn)(void *ctx, const mlc_cell *cells, int n, mlc_err *err);
/* Every row of table "requests", "metrics" or "samples" (run_id <= 0: of every run), ordered
 * by run and insertion, with the run's UUID as a column "run_uuid" after run_id. */
mlc_status mlc_store_export_rows(mlc_store *s, const char *table, int64_t run_id, mlc_row_fn fn, void *ctx,
                                 mlc_err *err);

#endif
