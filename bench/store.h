/* store.h: the SQLite result store (DESIGN.md, Store).
 *
 * One file (default ./mlc-bench.db, or $MLC_BENCH_DB). WAL mode, foreign keys, schema
 * versioned by PRAGMA user_version with forward migrations. A run row is written first with
 * status 'running'; request records are buffered and committed in small batches (a crash
 * loses at most the last uncommitted batch); the run ends 'complete', 'failed' or
 * 'interrupted'. Every run points at a fingerprint row (cpu, gpu, os, compiler, flags, build)
 * so comparisons never mix machines unless asked. */
#ifndef MLC_BENCH_STORE_H
#define MLC_BENCH_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "mlc/status.h"

typedef struct mlc_store mlc_store;

/* Requests per transaction (a crash loses at most this many). */
#define MLC_STORE_BATCH 64

/* PRAGMA application_id of mlc-bench files ("MLCB"). */
#define MLC_STORE_APP_ID 0x4D4C4342

struct sqlite3;

/* What a run was measured on. Every field is NUL-terminated text (truncated to fit). */
typedef struct mlc_fingerprint {
    char cpu[256];      /* /proc/cpuinfo model name, "unknown" when absent */
    int cpus;           /* logical CPUs online */
    char gpu[256];      /* "none" until GPU backends exist */
    char driver[128];   /* "none" likewise */
    char os[256];       /* uname: sysname release machine */
    char compiler[256]; /* "gcc 12.2.0", "clang 14.0.6" */
    char flags[1024];   /* MLC_CFLAGS macro of the build, "" when not defined */
    char build[128];    /* git sha: $MLC_GIT_SHA, else the MLC_GIT_SHA macro, else "unknown" */
    char hash[17];      /* hex of the 64-bit FNV-1a of all the fields above */
} mlc_fingerprint;

typedef struct mlc_run_info {
    const char *kind;        /* "run", "micro", "ppl", ... */
    const char *label;       /* free text or NULL */
    const char *target;      /* "local" or "endpoint" */
    const char *backend;     /* "cpu", ... or NULL for endpoints */
    const char *device;      /* device description or NULL */
    const char *endpoint;    /* URL or NULL */
    const char *model_path;  /* or the served model name */
    const char *model_sha256;/* hex or NULL */
    const char *model_arch, *model_quant;
    const char *config_json; /* the run's options as JSON */
    const char *run_group;   /* run --run-group, or NULL */
    int shard_index, shard_count; /* run --shard I/N; shard_count 0: not a shard (NULL) */
} mlc_run_info;

/* Per-request times are seconds on the monotonic clock relative to the run's start. */
typedef struct mlc_request_record {
    int64_t idx;             /* request number within the run */
    int64_t phase;           /* index of the load point (concurrency/rate list entry) */
    double scheduled, sent, first_token, done; /* first_token < 0: none */
    bool ok;
    const char *error_kind;  /* NULL when ok: "http", "timeout", "disconnect", ... */
    const char *error;       /* one-line reason or NULL: for an HTTP error the server's
                              * message (OpenAI error.message, else the body's start) */
    int http_status;         /* status an endpoint answered; <= 0: none (stored NULL) */
    const char *url;         /* URL the request went to, or NULL (local engine) */
    int64_t input_tokens, output_tokens;
    bool tokens_approx;      /* counts estimated, not from usage or the tokenizer */
    const float *itl_ms;     /* gaps between token-bearing chunks */
    int32_t n_itl;
} mlc_request_record;

/* Opens (creating when absent) and migrates the store. A file that is not an SQLite
 * database, a database of another application, or a schema newer than this build gives a
 * one-line error naming the file. The store is for one thread at a time. */
mlc_status mlc_store_open(const char *path, mlc_store **out, mlc_err *err);
/* Opens an existing store for reading only: never creates, migrates or writes the file
 * (SQLITE_OPEN_READONLY, then PRAGMA query_only). A missing file, an empty (0-byte) file, a
 * database without an mlc-bench schema, another application's database or a schema newer
 * than this build gives a one-line error naming the file (MLC_ERR_NOT_FOUND for a missing
 * file, else MLC_ERR_FORMAT / MLC_ERR_UNSUPPORTED / MLC_ERR_IO). An older schema is read as
 * it is, the columns added since then reading as NULL. Works on a file or directory the user
 * may not write (then, without a writer's -shm file, the file is read as immutable). The
 * mlc_store_add_* / run_* functions refuse a read-only store with MLC_ERR_ARG. */
mlc_status mlc_store_open_readonly(const char *path, mlc_store **out, mlc_err *err);
/* Whether s was opened with mlc_store_open_readonly. */
bool mlc_store_readonly(const mlc_store *s);
/* Flushes pending requests (a failure is reported on stderr), closes; NULL is a no-op. */
void mlc_store_close(mlc_store *s);
const char *mlc_store_path(const mlc_store *s);
/* $MLC_BENCH_DB when set and not empty, else "mlc-bench.db". */
const char *mlc_store_default_path(void);
/* The schema version this build writes (PRAGMA user_version after open). */
int mlc_store_schema_version(void);
/* The connection, for queries of other modules (compare, export, merge); flush first when
 * requests may be pending. Owned by the store. */
struct sqlite3 *mlc_store_db(mlc_store *s);
/* The fingerprint of this machine and build (what mlc_store_run_begin records). */
void mlc_fingerprint_this(mlc_fingerprint *fp);

/* Creates the run (status 'running') with the fingerprint of this machine and build (the
 * fingerprint row is shared by every run with the same hash). ri->kind is required;
 * git_sha/git_branch come from $GITHUB_SHA / $GITHUB_REF_NAME (git_sha falls back to the
 * fingerprint's build when known). started/finished are ISO-8601 UTC. The run gets a random
 * UUID (32 hex digits) that stays with it when `db merge` copies it to another store. */
mlc_status mlc_store_run_begin(mlc_store *s, const mlc_run_info *ri, int64_t *run_id, mlc_err *err);
/* Buffers one request (copied: the record's strings and ITL array may be reused at once);
 * commits all pending requests in one transaction when MLC_STORE_BATCH are pending. On a
 * failed commit the requests stay pending (a later flush retries) and the error is returned.
 * first_token < 0 is stored as NULL; the ITL gaps as a little-endian float32 blob. */
mlc_status mlc_store_add_request(mlc_store *s, int64_t run_id, const mlc_request_record *r,
                                 mlc_err *err);
/* Commits all pending requests (of every run) in one transaction. */
mlc_status mlc_store_flush(mlc_store *s, mlc_err *err);
/* direction: +1 higher is better, -1 lower is better, 0 neither. NaN values are NULL. */
mlc_status mlc_store_add_metric(mlc_store *s, int64_t run_id, const char *name, const char *unit,
                                const char *stat, double value, int direction, mlc_err *err);
/* v[i] is repetition i of the metric. */
mlc_status mlc_store_add_samples(mlc_store *s, int64_t run_id, const char *metric,
                                 const double *v, int n, mlc_err *err);
/* One perplexity result of a run (the `perplexity` table). */
mlc_status mlc_store_add_perplexity(mlc_store *s, int64_t run_id, int ctx, int chunks, double ppl,
                                    double ppl_err, mlc_err *err);
/* One verdict of a `run --slo` percentile bound (the `slo` table, slo.h): needed <= 0 is
 * stored NULL, a NaN observed_ms too. verdict: "pass", "fail" or "not_enough". */
typedef struct mlc_slo_row {
    const char *load, *name, *metric; /* "c=4", "ttft_p99", "ttft" */
    double percentile, bound_ms, confidence;
    int64_t n, violations, allowed, needed;
    double observed_ms;
    const char *verdict;
} mlc_slo_row;
mlc_status mlc_store_add_slo(mlc_store *s, int64_t run_id, const mlc_slo_row *r, mlc_err *err);
/* One conformance case's result (the `conformance` table); text NULL is stored as NULL, a
 * NaN nmse (not measured) too. */
typedef struct mlc_conformance_row {
    const char *backend, *device; /* "cpu", "cpu:0 AMD EPYC ..." */
    const char *op, *type, *shape;
    const char *case_desc;        /* the suite's name of the case: the key across runs */
    const char *status;           /* "pass", "fail", "unsupported" */
    const char *error;            /* why it failed, or NULL/"" */
    double nmse, threshold, ms;
    uint64_t seed;                /* the case's own seed */
} mlc_conformance_row;
mlc_status mlc_store_add_conformance(mlc_store *s, int64_t run_id, const mlc_conformance_row *r,
                                    mlc_err *err);
/* A conformance case whose status differs between two runs: before/after are "pass", "fail",
 * "unsupported", or NULL where the run lacks the case; nmse, threshold and error are the
 * candidate's (NaN/NULL when absent). Strings live until the callback returns. */
typedef struct mlc_conformance_change {
    const char *device;     /* "cpu:0" */
    const char *case_desc;
    const char *before, *after;
    double nmse, threshold;
    const char *error;
} mlc_conformance_change;
typedef void (*mlc_conformance_change_fn)(void *ctx, const mlc_conformance_change *c);
/* Calls fn for every case (device and name) whose status changed from base_run to cand_run,
 * ordered by device and case. */
mlc_status mlc_store_conformance_changes(mlc_store *s, int64_t base_run, int64_t cand_run,
                                        mlc_conformance_change_fn fn, void *ctx, mlc_err *err);
/* Flushes and sets the final status ("complete", "failed", "interrupted") and finished.
 * Only a 'running' run can end: MLC_ERR_NOT_FOUND for an unknown run, MLC_ERR_ARG for a run
 * already ended or another status. When the flush fails the run is not set 'complete' (the
 * flush error is returned, the run stays 'running'); 'failed' and 'interrupted' are set all
 * the same, and the flush error is returned. */
mlc_status mlc_store_run_end(mlc_store *s, int64_t run_id, const char *status, mlc_err *err);

#endif
