/* store_query.h: the store's read queries for reports (store.h writes; these read). Every
 * function takes an open store; on an SQL error the result is empty (NaN, 0, false) and
 * mlc_store_query_error() says why. Arrays are malloc'd; the caller frees them. */
#ifndef MLC_BENCH_STORE_QUERY_H
#define MLC_BENCH_STORE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The last SQL error of the store's connection ("" when none). */
const char *mlc_store_query_error(mlc_store *s);

/* Number of runs and the newest id (0 when none). */
int64_t mlc_store_run_count(mlc_store *s, int64_t *newest);
bool mlc_store_run_exists(mlc_store *s, int64_t id);

/* A run's kind, start time and git sha ("" when absent); false when there is no such run. */
typedef struct mlc_run_head {
    char kind[32], started[40], git_sha[48], label[128];
} mlc_run_head;
bool mlc_store_run_head(mlc_store *s, int64_t id, mlc_run_head *h);

/* Up to n newest runs of kind (any kind when NULL), oldest first, into ids; the count. */
int mlc_store_last_runs(mlc_store *s, const char *kind, int n, int64_t *ids);

/* The run of the baseline named 'main', else of the first name in order; false when none. */
bool mlc_store_default_baseline(mlc_store *s, int64_t *run);

/* Calls fn(ctx, field, value) for each non-empty column of the run row (kind, label, ...,
 * model_quant, then "config": the options JSON), and then, with fingerprint true, for each
 * field of its fingerprint (hash, cpu, ... build; empty ones too). */
typedef void (*mlc_store_field_fn)(void *ctx, const char *field, const char *value);
void mlc_store_run_fields(mlc_store *s, int64_t run, bool fingerprint, mlc_store_field_fn fn, void *ctx);

/* The value of metric name with stat of a run (the latest row); NaN when absent. dir (may
 * be NULL) gets its direction. */
double mlc_store_metric(mlc_store *s, int64_t run, const char *name, const char *stat, int *dir);

/* Every metric row of a run in storage order (stat "" and unit "" when NULL, value NaN). */
typedef void (*mlc_store_metric_fn)(void *ctx, const char *name, const char *stat, double value,
                                    const char *unit, int direction);
void mlc_store_each_metric(mlc_store *s, int64_t run, mlc_store_metric_fn fn, void *ctx);

/* The load points of a run ("c=1", "r=2.5"): the prefixes before '/' of its metric names,
 * in the order they were stored (= phase order). Up to cap names of size len each. */
int mlc_store_load_points(mlc_store *s, int64_t run, char (*names)[32], int cap);

/* Failed requests of one load point by error kind, most first: fn(ctx, kind, count). */
typedef void (*mlc_store_count_fn)(void *ctx, const char *key, int64_t count);
void mlc_store_failures(mlc_store *s, int64_t run, int phase, mlc_store_count_fn fn, void *ctx);

/* Per-request latency of the successful requests of one load point, in ms, ascending:
 * TTFT (first token - sent) or E2E (done - sent). */
typedef enum { MLC_LATENCY_TTFT, MLC_LATENCY_E2E } mlc_latency_kind;
double *mlc_store_latencies(mlc_store *s, int64_t run, int phase, mlc_latency_kind k, size_t *n);

/* Every finite inter-token gap (ms) of the successful requests of a run, in storage order. */
double *mlc_store_itl_gaps(mlc_store *s, int64_t run, size_t *n);

/* The raw samples of a run's metric in repetition order (NULL values skipped). */
double *mlc_store_samples(mlc_store *s, int64_t run, const char *metric, size_t *n);

#endif
