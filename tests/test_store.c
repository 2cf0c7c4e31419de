/* tests/test_store.c: the SQLite result store (bench/store.c): schema and pragmas, a run of
 * 1000 requests with metrics and samples read back with the sqlite3 API, status transitions,
 * refused files (not a database, another application's, a newer schema), the shared
 * fingerprint row, and a writer SIGKILLed mid-run (only whole batches survive, the database
 * stays intact). */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/store.h"
#include "util.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static const char *tmp_db(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tu_tmpdir(), name);
    return out;
}

static mlc_store *open_ok(const char *path)
{
    mlc_store *s = NULL;
    mlc_err err = {0};
    mlc_status st = mlc_store_open(path, &s, &err);
    cr_assert_eq(st, MLC_OK, "open %s: %s", path, err.msg);
    cr_assert_not_null(s);
    return s;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "%s", path);
    return db;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The text of the first column of the first row (caller frees), NULL for SQL NULL. */
static char *q_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *r = NULL;
    if (t) {
        r = malloc(strlen((const char *)t) + 1);
        strcpy(r, (const char *)t);
    }
    sqlite3_finalize(st);
    return r;
}

static void expect_text(sqlite3 *db, const char *sql, const char *want)
{
    char *got = q_text(db, sql);
    if (!want)
        cr_expect_null(got, "%s: got '%s'", sql, got);
    else
        cr_expect(got && !strcmp(got, want), "%s: got '%s', want '%s'", sql,
                  got ? got : "(null)", want);
    free(got);
}

static void expect_integrity_ok(const char *path)
{
    sqlite3 *db = raw_open(path);
    expect_text(db, "PRAGMA integrity_check", "ok");
    cr_expect_eq(q_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    sqlite3_close(db);
}

static const mlc_run_info RUN_INFO = {
    .kind = "run",
    .label = "test run",
    .target = "local",
    .backend = "cpu",
    .device = "cpu:0",
    .model_path = "/models/tiny.gguf",
    .model_sha256 = "ab12",
    .model_arch = "llama",
    .model_quant = "Q4_K_M",
    .config_json = "{\"concurrency\":[1,4],\"n\":1000}",
};

static int64_t begin_ok(mlc_store *s)
{
    int64_t id = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_run_begin(s, &RUN_INFO, &id, &err), MLC_OK, "%s", err.msg);
    cr_assert_gt(id, 0);
    return id;
}

/* Request i of the synthetic run: every fourth fails, every third has no first token, ITL
 * arrays of 0..12 gaps. */
#define MAX_ITL 12
static void make_request(int64_t i, mlc_request_record *r, float *itl)
{
    memset(r, 0, sizeof *r);
    r->idx = i;
    r->phase = i / 250;
    r->scheduled = 0.01 * (double)i;
    r->sent = r->scheduled + 1e-4;
    r->first_token = i % 3 == 0 ? -1.0 : r->sent + 0.05 + 1e-6 * (double)i;
    r->done = r->sent + 0.5 + 1e-7 * (double)i;
    r->ok = i % 4 != 0;
    r->error_kind = r->ok ? NULL : (i % 8 == 0 ? "http_429" : "timeout");
    r->error = r->ok ? NULL : (i % 8 == 0 ? "HTTP 429: too many requests" : "no byte in 30 s");
    r->input_tokens = 100 + i;
    r->output_tokens = 3 * i;
    r->tokens_approx = i % 5 == 0;
    r->n_itl = (int32_t)(i % (MAX_ITL + 1));
    for (int32_t k = 0; k < r->n_itl; k++)
        itl[k] = 1.25f * (float)k + 0.001f * (float)i - (k == 3 ? 1e30f : 0.0f);
    r->itl_ms = itl;
}

static void add_requests(mlc_store *s, int64_t run_id, int64_t from, int64_t to)
{
    mlc_err err = {0};
    for (int64_t i = from; i < to; i++) {
        mlc_request_record r;
        float itl[MAX_ITL];
        make_request(i, &r, itl);
        cr_assert_eq(mlc_store_add_request(s, run_id, &r, &err), MLC_OK, "request %lld: %s",
                     (long long)i, err.msg);
        /* The store copies: scribbling over the caller's buffers must not matter. */
        memset(itl, 0x7f, sizeof itl);
    }
}

static int64_t count_requests(const char *path, int64_t run_id)
{
    sqlite3 *db = raw_open(path);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE run_id = %lld",
             (long long)run_id);
    int64_t n = q_int(db, sql);
    sqlite3_close(db);
    return n;
}

static char *run_status(const char *path, int64_t run_id)
{
    sqlite3 *db = raw_open(path);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT status FROM runs WHERE id = %lld", (long long)run_id);
    char *st = q_text(db, sql);
    sqlite3_close(db);
    return st;
}

/* ---- schema ------------------------------------------------------------------------------ */

Test(store, schema_and_pragmas)
{
    char path[1024];
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "schema.db"));
    cr_expect_str_eq(mlc_store_path(s), path);
    sqlite3 *db = mlc_store_db(s);
    cr_assert_not_null(db);
    cr_expect_eq(q_int(db, "PRAGMA user_version"), mlc_store_schema_version());
    cr_expect_geq(mlc_store_schema_version(), 1);
    cr_expect_eq(q_int(db, "PRAGMA application_id"), MLC_STORE_APP_ID);
    cr_expect_eq(q_int(db, "PRAGMA foreign_keys"), 1);
    cr_expect_eq(q_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
    cr_expect_gt(q_int(db, "PRAGMA busy_timeout"), 0);
    expect_text(db, "PRAGMA journal_mode", "wal");
    static const char *const tables[] = {"fingerprints", "runs", "requests", "metrics",
                                         "samples", "perplexity", "conformance", "baselines", "slo"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
                 tables[i]);
        cr_expect_eq(q_int(db, sql), 1, "table %s missing", tables[i]);
    }
    static const char *const indexes[] = {"requests_run", "metrics_run_name",
                                          "samples_run_metric", "runs_fingerprint"};
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'",
                 indexes[i]);
        cr_expect_eq(q_int(db, sql), 1, "index %s missing", indexes[i]);
    }
    /* metrics_run_name covers (run_id, name). */
    cr_expect_eq(q_int(db, "SELECT count(*) FROM pragma_index_info('metrics_run_name')"), 2);
    expect_text(db, "SELECT name FROM pragma_index_info('metrics_run_name') WHERE seqno = 0",
                "run_id");
    expect_text(db, "SELECT name FROM pragma_index_info('metrics_run_name') WHERE seqno = 1",
                "name");
    mlc_store_close(s);
    expect_integrity_ok(path);

    /* Reopening an up-to-date store changes nothing. */
    s = open_ok(path);
    cr_expect_eq(q_int(mlc_store_db(s), "PRAGMA user_version"), mlc_store_schema_version());
    cr_expect_eq(q_int(mlc_store_db(s), "SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
                 9);
    mlc_store_close(s);
}

Test(store, default_path)
{
    setenv("MLC_BENCH_DB", "/x/y.db", 1);
    cr_expect_str_eq(mlc_store_default_path(), "/x/y.db");
    setenv("MLC_BENCH_DB", "", 1);
    cr_expect_str_eq(mlc_store_default_path(), "mlc-bench.db");
    unsetenv("MLC_BENCH_DB");
    cr_expect_str_eq(mlc_store_default_path(), "mlc-bench.db");
}

/* ---- round trip -------------------------------------------------------------------------- */

Test(store, run_round_trip)
{
    char path[1024];
    mlc_err err = {0};
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "rt.db"));
    int64_t id = begin_ok(s);
    const int64_t N = 1000;
    add_requests(s, id, 0, N);
    cr_assert_eq(mlc_store_add_metric(s, id, "ttft", "ms", "p50", 12.5, -1, &err), MLC_OK,
                 "%s", err.msg);
    cr_assert_eq(mlc_store_add_metric(s, id, "throughput", "tok/s", "mean", 1234.75, 1, &err),
                 MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_add_metric(s, id, "errors", NULL, NULL, NAN, 0, &err), MLC_OK, "%s",
                 err.msg);
    const double samples[5] = {10.0, 11.5, 9.25, 10.125, 1e-300};
    cr_assert_eq(mlc_store_add_samples(s, id, "tg128", samples, 5, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_add_samples(s, id, "pp512", samples, 0, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    mlc_store_close(s);

    sqlite3 *db = raw_open(path);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE run_id = %lld", (long long)id);
    cr_assert_eq(q_int(db, sql), N);

    /* The run row. */
    snprintf(sql, sizeof sql,
             "SELECT kind, label, target, backend, device, endpoint, model_path, model_sha256,"
             " model_arch, model_quant, config, status, started, finished,"
             " started <= finished, fingerprint_id FROM runs WHERE id = %lld",
             (long long)id);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    const char *want[] = {"run", "test run", "local", "cpu", "cpu:0", NULL,
                          "/models/tiny.gguf", "ab12", "llama", "Q4_K_M",
                          RUN_INFO.config_json, "complete"};
    for (int c = 0; c < 12; c++) {
        const char *got = (const char *)sqlite3_column_text(st, c);
        if (!want[c])
            cr_expect_null(got, "column %d", c);
        else
            cr_expect(got && !strcmp(got, want[c]), "column %d: '%s' != '%s'", c,
                      got ? got : "(null)", want[c]);
    }
    for (int c = 12; c <= 13; c++) { /* 2024-05-01T12:34:56.789Z */
        const char *t = (const char *)sqlite3_column_text(st, c);
        cr_assert_not_null(t, "column %d", c);
        cr_expect_eq(strlen(t), 24, "%s", t);
        cr_expect(t[4] == '-' && t[10] == 'T' && t[13] == ':' && t[23] == 'Z', "%s", t);
    }
    cr_expect_eq(sqlite3_column_int(st, 14), 1);
    cr_expect_gt(sqlite3_column_int64(st, 15), 0);
    sqlite3_finalize(st);

    /* Every request, field by field, ITL blob bit for bit. */
    snprintf(sql, sizeof sql,
             "SELECT idx, phase, scheduled, sent, first_token, done, ok, error_kind, error,"
             " input_tokens, output_tokens, tokens_approx, itl FROM requests WHERE run_id = %lld"
             " ORDER BY idx",
             (long long)id);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t i = 0;
    for (; sqlite3_step(st) == SQLITE_ROW; i++) {
        mlc_request_record r;
        float itl[MAX_ITL];
        make_request(i, &r, itl);
        cr_assert_eq(sqlite3_column_int64(st, 0), i);
        cr_expect_eq(sqlite3_column_int64(st, 1), r.phase, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_double(st, 2), r.scheduled, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_double(st, 3), r.sent, "req %lld", (long long)i);
        if (r.first_token < 0)
            cr_expect_eq(sqlite3_column_type(st, 4), SQLITE_NULL, "req %lld", (long long)i);
        else
            cr_expect_eq(sqlite3_column_double(st, 4), r.first_token, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_double(st, 5), r.done, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_int(st, 6), r.ok, "req %lld", (long long)i);
        for (int c = 7; c <= 8; c++) {
            const char *w = c == 7 ? r.error_kind : r.error;
            const char *g = (const char *)sqlite3_column_text(st, c);
            if (!w)
                cr_expect_null(g, "req %lld col %d", (long long)i, c);
            else
                cr_expect(g && !strcmp(g, w), "req %lld col %d: '%s'", (long long)i, c,
                          g ? g : "(null)");
        }
        cr_expect_eq(sqlite3_column_int64(st, 9), r.input_tokens, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_int64(st, 10), r.output_tokens, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_int(st, 11), r.tokens_approx, "req %lld", (long long)i);
        cr_expect_eq(sqlite3_column_type(st, 12), SQLITE_BLOB, "req %lld", (long long)i);
        const unsigned char *b = sqlite3_column_blob(st, 12);
        int nb = sqlite3_column_bytes(st, 12);
        cr_assert_eq(nb, 4 * r.n_itl, "req %lld: blob of %d bytes", (long long)i, nb);
        for (int32_t k = 0; k < r.n_itl; k++) {
            /* Little-endian float32, whatever the host. */
            uint32_t u = (uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 |
                         (uint32_t)b[4 * k + 2] << 16 | (uint32_t)b[4 * k + 3] << 24;
            uint32_t w;
            memcpy(&w, &itl[k], 4);
            cr_expect_eq(u, w, "req %lld gap %d", (long long)i, k);
        }
    }
    sqlite3_finalize(st);
    cr_expect_eq(i, N);

    /* Metrics and samples. */
    snprintf(sql, sizeof sql,
             "SELECT value, unit, stat, direction FROM metrics WHERE run_id = %lld AND name ="
             " 'throughput'", (long long)id);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_double(st, 0), 1234.75);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 1), "tok/s");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 2), "mean");
    cr_expect_eq(sqlite3_column_int(st, 3), 1);
    sqlite3_finalize(st);
    cr_expect_eq(q_int(db, "SELECT direction FROM metrics WHERE name = 'ttft'"), -1);
    cr_expect_eq(q_int(db, "SELECT value IS NULL AND unit IS NULL FROM metrics"
                           " WHERE name = 'errors'"), 1);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM metrics"), 3);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM samples WHERE metric = 'tg128'"), 5);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM samples WHERE metric = 'pp512'"), 0);
    snprintf(sql, sizeof sql, "SELECT rep, value FROM samples WHERE run_id = %lld ORDER BY rep",
             (long long)id);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    for (int k = 0; k < 5; k++) {
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_expect_eq(sqlite3_column_int(st, 0), k);
        cr_expect_eq(sqlite3_column_double(st, 1), samples[k], "rep %d", k);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    expect_integrity_ok(path);
}

Test(store, close_flushes_pending)
{
    char path[1024];
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "close.db"));
    int64_t id = begin_ok(s);
    add_requests(s, id, 0, MLC_STORE_BATCH + 10);
    /* One batch is committed, ten are pending: another connection sees only the batch. */
    cr_expect_eq(count_requests(path, id), MLC_STORE_BATCH);
    mlc_err err = {0};
    cr_assert_eq(mlc_store_flush(s, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(count_requests(path, id), MLC_STORE_BATCH + 10);
    add_requests(s, id, MLC_STORE_BATCH + 10, MLC_STORE_BATCH + 17);
    mlc_store_close(s);
    cr_expect_eq(count_requests(path, id), MLC_STORE_BATCH + 17);
    char *st = run_status(path, id);
    cr_expect_str_eq(st, "running"); /* closing does not end the run */
    free(st);
    expect_integrity_ok(path);
}

/* ---- status ------------------------------------------------------------------------------ */

Test(store, status_transitions)
{
    char path[1024];
    mlc_err err = {0};
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "status.db"));
    sqlite3 *db = mlc_store_db(s);

    int64_t a = begin_ok(s);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT status || '/' || (finished IS NULL) FROM runs WHERE id = %lld",
             (long long)a);
    expect_text(db, sql, "running/1");
    cr_assert_eq(mlc_store_run_end(s, a, "complete", &err), MLC_OK, "%s", err.msg);
    expect_text(db, sql, "complete/0");

    /* An ended run cannot end again, nor go back to running. */
    cr_expect_eq(mlc_store_run_end(s, a, "failed", &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "already ended"), "%s", err.msg);
    expect_text(db, sql, "complete/0");
    cr_expect_eq(mlc_store_run_end(s, a, "running", &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_run_end(s, a, "bogus", &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_run_end(s, a, NULL, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_run_end(s, 424242, "complete", &err), MLC_ERR_NOT_FOUND);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "424242"), "%s", err.msg);

    int64_t b = begin_ok(s);
    cr_assert_eq(mlc_store_run_end(s, b, "failed", &err), MLC_OK, "%s", err.msg);
    snprintf(sql, sizeof sql, "SELECT status FROM runs WHERE id = %lld", (long long)b);
    expect_text(db, sql, "failed");

    /* The CHECK constraint holds for writers other than the store too. */
    snprintf(sql, sizeof sql, "UPDATE runs SET status = 'weird' WHERE id = %lld", (long long)b);
    cr_expect_neq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    mlc_store_close(s);
}

Test(store, interrupted_flushes)
{
    char path[1024];
    mlc_err err = {0};
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "interrupted.db"));
    int64_t id = begin_ok(s);
    add_requests(s, id, 0, 100);
    cr_assert_eq(mlc_store_run_end(s, id, "interrupted", &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(count_requests(path, id), 100);
    char *st = run_status(path, id);
    cr_expect_str_eq(st, "interrupted");
    free(st);
    mlc_store_close(s);
    expect_integrity_ok(path);
}

Test(store, bad_arguments)
{
    char path[1024];
    mlc_err err = {0};
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "args.db"));
    int64_t id = 0;
    mlc_run_info ri = RUN_INFO;
    ri.kind = NULL;
    cr_expect_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_ERR_ARG);
    ri = RUN_INFO;
    ri.config_json = "{not json";
    cr_expect_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "JSON"), "%s", err.msg);
    cr_expect_eq(q_int(mlc_store_db(s), "SELECT count(*) FROM runs"), 0);

    id = begin_ok(s);
    cr_expect_eq(mlc_store_add_metric(s, id, "x", "ms", "p50", 1.0, 2, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_add_metric(s, id, NULL, "ms", "p50", 1.0, 0, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_add_metric(s, 999, "x", "ms", "p50", 1.0, 0, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, path), "%s", err.msg); /* foreign key */
    cr_expect_eq(mlc_store_add_samples(s, id, "x", NULL, 3, &err), MLC_ERR_ARG);
    const double v[2] = {1, 2};
    cr_expect_eq(mlc_store_add_samples(s, 999, "x", v, 2, &err), MLC_ERR_ARG);
    cr_expect_eq(q_int(mlc_store_db(s), "SELECT count(*) FROM samples"), 0);

    mlc_request_record r;
    float itl[MAX_ITL];
    make_request(5, &r, itl);
    r.itl_ms = NULL;
    cr_expect_eq(mlc_store_add_request(s, id, &r, &err), MLC_ERR_ARG);
    /* A request of an unknown run fails at commit, naming the file and the request. */
    make_request(7, &r, itl);
    cr_assert_eq(mlc_store_add_request(s, 999, &r, &err), MLC_OK);
    cr_expect_eq(mlc_store_flush(s, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "request 7 of run 999"), "%s", err.msg);
    /* The store stays usable: a new transaction works. */
    cr_expect_eq(mlc_store_add_metric(s, id, "x", "ms", "p50", 1.0, 0, &err), MLC_OK, "%s",
                 err.msg);
    /* run_end flushes first: the bad record keeps the run from 'complete', not from 'failed'
     * (the flush error is still returned); close reports the record and drops it. */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT status FROM runs WHERE id = %lld", (long long)id);
    cr_expect_eq(mlc_store_run_end(s, id, "complete", &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "request 7 of run 999"), "%s", err.msg);
    expect_text(mlc_store_db(s), sql, "running");
    cr_expect_eq(mlc_store_run_end(s, id, "failed", &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "request 7 of run 999"), "%s", err.msg);
    expect_text(mlc_store_db(s), sql, "failed");
    mlc_store_close(s);
    expect_integrity_ok(path);
}

/* ---- refused files ----------------------------------------------------------------------- */

static void expect_refused(const char *path, mlc_status want, const char *what)
{
    mlc_store *s = (mlc_store *)1;
    mlc_err err = {0};
    mlc_status st = mlc_store_open(path, &s, &err);
    cr_expect_eq(st, want, "%s: status %d: %s", path, st, err.msg);
    cr_expect_null(s);
    cr_expect(!strncmp(err.msg, path, strlen(path)), "does not start with the path: %s",
              err.msg);
    cr_expect(strstr(err.msg, what), "no '%s' in: %s", what, err.msg);
    cr_expect_null(strchr(err.msg, '\n'), "not one line: %s", err.msg);
    cr_log_info("%s", err.msg);
}

Test(store, not_a_database)
{
    char path[1024];
    tmp_db(path, sizeof path, "text.db");
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = "this is not a database\n"[i % 23];
    cr_assert_eq(tu_write_file(path, junk, sizeof junk), 0);
    expect_refused(path, MLC_ERR_FORMAT, "not an SQLite database");
    /* The file is left as it was. */
    size_t n = 0;
    char *back = tu_read_file(path, &n);
    cr_expect(back && n == sizeof junk && !memcmp(back, junk, n));
    free(back);

    /* A short file too. */
    tmp_db(path, sizeof path, "short.db");
    cr_assert_eq(tu_write_file(path, "hello", 5), 0);
    expect_refused(path, MLC_ERR_FORMAT, "not an SQLite database");

    /* A directory cannot be opened. */
    tmp_db(path, sizeof path, "");
    expect_refused(path, MLC_ERR_IO, "cannot open");
}

Test(store, future_schema_version)
{
    char path[1024];
    tmp_db(path, sizeof path, "future.db");
    mlc_store_close(open_ok(path));
    sqlite3 *db = raw_open(path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", mlc_store_schema_version() + 1);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(path, MLC_ERR_UNSUPPORTED, "newer");
}

Test(store, other_application_database)
{
    char path[1024];
    tmp_db(path, sizeof path, "other.db");
    sqlite3 *db = raw_open(path);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE runs(x); INSERT INTO runs VALUES (1)", NULL, NULL,
                              NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(path, MLC_ERR_FORMAT, "not an mlc-bench database");

    tmp_db(path, sizeof path, "other-app.db");
    db = raw_open(path);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA application_id = 42", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(path, MLC_ERR_FORMAT, "application_id");

    /* An empty SQLite file (or a zero-byte one) is fine: it becomes a store. */
    tmp_db(path, sizeof path, "empty.db");
    cr_assert_eq(tu_write_file(path, "", 0), 0);
    mlc_store_close(open_ok(path));
    expect_integrity_ok(path);
}

/* ---- fingerprint ------------------------------------------------------------------------- */

Test(store, fingerprint_shared)
{
    char path[1024];
    mlc_err err = {0};
    tmp_db(path, sizeof path, "fp.db");
    mlc_store *s = open_ok(path);
    int64_t a = begin_ok(s);
    int64_t b = begin_ok(s);
    mlc_store_close(s);
    s = open_ok(path); /* another process would do the same */
    int64_t c = begin_ok(s);
    cr_assert_eq(mlc_store_run_end(s, c, "complete", &err), MLC_OK, "%s", err.msg);
    sqlite3 *db = mlc_store_db(s);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM fingerprints"), 1);
    cr_expect_eq(q_int(db, "SELECT count(DISTINCT fingerprint_id) FROM runs"), 1);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM runs"), 3);
    cr_expect_lt(a, b);
    cr_expect_lt(b, c);

    mlc_fingerprint fp;
    mlc_fingerprint_this(&fp);
    cr_expect_eq(strlen(fp.hash), 16);
    cr_expect_gt(fp.cpus, 0);
    cr_expect(fp.cpu[0] && fp.os[0] && fp.compiler[0] && fp.build[0]);
    cr_expect_str_eq(fp.gpu, "none");
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT hash, cpu, cpus, os, compiler, build, created"
                                        " FROM fingerprints", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), fp.hash);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 1), fp.cpu);
    cr_expect_eq(sqlite3_column_int(st, 2), fp.cpus);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 3), fp.os);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 4), fp.compiler);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 5), fp.build);
    cr_expect_not_null(sqlite3_column_text(st, 6));
    sqlite3_finalize(st);

    /* Another build is another fingerprint, and the run records its sha. */
    setenv("MLC_GIT_SHA", "0123456789abcdef", 1);
    mlc_fingerprint fp2;
    mlc_fingerprint_this(&fp2);
    cr_expect_str_eq(fp2.build, "0123456789abcdef");
    cr_expect_str_neq(fp2.hash, fp.hash);
    int64_t d = begin_ok(s);
    unsetenv("MLC_GIT_SHA");
    cr_expect_eq(q_int(db, "SELECT count(*) FROM fingerprints"), 2);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT git_sha FROM runs WHERE id = %lld", (long long)d);
    expect_text(db, sql, "0123456789abcdef");
    setenv("GITHUB_SHA", "feedface", 1);
    setenv("GITHUB_REF_NAME", "main", 1);
    int64_t e = begin_ok(s);
    unsetenv("GITHUB_SHA");
    unsetenv("GITHUB_REF_NAME");
    snprintf(sql, sizeof sql, "SELECT git_sha || ' ' || git_branch FROM runs WHERE id = %lld",
             (long long)e);
    expect_text(db, sql, "feedface main");
    mlc_store_close(s);
    expect_integrity_ok(path);
}

/* ---- crash ------------------------------------------------------------------------------- */

/* The child: begins a run and adds up to n requests, writing the count to fd after each,
 * then waits to be killed. It never returns and never closes the store. */
static void crash_child(const char *path, int fd, int64_t n, long pause_ns)
{
    mlc_store *s = NULL;
    mlc_err err = {0};
    int64_t id = 0;
    if (mlc_store_open(path, &s, &err) != MLC_OK || mlc_store_run_begin(s, &RUN_INFO, &id, &err))
        _exit(3);
    for (int64_t i = 0; i < n; i++) {
        mlc_request_record r;
        float itl[MAX_ITL];
        make_request(i, &r, itl);
        if (mlc_store_add_request(s, id, &r, &err) != MLC_OK)
            _exit(4);
        int64_t k = i + 1;
        if (write(fd, &k, sizeof k) != (ssize_t)sizeof k)
            _exit(5);
        struct timespec ts = {0, pause_ns};
        if (pause_ns)
            nanosleep(&ts, NULL);
    }
    sleep(30);
    _exit(6);
}

static void crash_once(const char *path, int64_t n, int64_t kill_after, long pause_ns)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(path, fds[1], n, pause_ns);
    }
    close(fds[1]);
    /* Reads in large chunks to keep up with the child; counts are written whole (8 bytes,
     * atomic on a pipe), so a chunk ends on one. */
    int64_t signalled = 0, chunk[512];
    while (signalled <= kill_after) {
        ssize_t got = read(fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < (ssize_t)sizeof chunk[0])
            break;
        signalled = chunk[got / (ssize_t)sizeof chunk[0] - 1];
    }
    kill(pid, SIGKILL);
    int wst = 0;
    cr_assert_eq(waitpid(pid, &wst, 0), pid);
    close(fds[0]);
    cr_assert(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL,
              "child did not run to the kill (exit %d)", WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    cr_assert_gt(signalled, kill_after);

    expect_integrity_ok(path);
    sqlite3 *db = raw_open(path);
    int64_t id = q_int(db, "SELECT max(id) FROM runs");
    char *st = run_status(path, id);
    cr_expect_str_eq(st, "running", "run %lld", (long long)id);
    free(st);
    int64_t stored = count_requests(path, id);
    cr_log_info("%lld adds, kill after %lld: signalled %lld, stored %lld", (long long)n,
                (long long)kill_after, (long long)signalled, (long long)stored);
    /* Whole batches only; every batch committed before the last signalled add is there. */
    int64_t floor_batch = signalled / MLC_STORE_BATCH * MLC_STORE_BATCH;
    cr_expect_eq(stored % MLC_STORE_BATCH, 0, "stored %lld", (long long)stored);
    cr_expect_geq(stored, floor_batch - MLC_STORE_BATCH, "stored %lld, signalled %lld",
                  (long long)stored, (long long)signalled);
    cr_expect_geq(stored, floor_batch, "stored %lld, signalled %lld", (long long)stored,
                  (long long)signalled);
    cr_expect_leq(stored, n / MLC_STORE_BATCH * MLC_STORE_BATCH);
    /* What is there is whole: indexes 0..stored-1, each once. */
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT idx) = count(*) AND min(idx) = 0 AND max(idx) = %lld"
             " FROM requests WHERE run_id = %lld", (long long)stored - 1, (long long)id);
    if (stored > 0)
        cr_expect_eq(q_int(db, sql), 1);
    sqlite3_close(db);

    /* The store opens again and the run can be ended. */
    mlc_store *s = open_ok(path);
    mlc_err err = {0};
    cr_expect_eq(mlc_store_run_end(s, id, "interrupted", &err), MLC_OK, "%s", err.msg);
    mlc_store_close(s);
    expect_integrity_ok(path);
}

Test(store, crash_loses_at_most_one_batch)
{
    /* A 20 us pause after each add makes the kill land right after the signalled count;
     * without one it lands further on, mid-commit included. */
    static const struct {
        int64_t n, kill_after;
        long pause_ns;
    } cases[] = {{1000, 300, 20000}, {1000, 5, 20000},  {1000, 64, 20000},
                 {1000, 640, 20000}, {20000, 300, 0}, {20000, 3000, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024], name[64];
        snprintf(name, sizeof name, "crash-%zu.db", i);
        crash_once(tmp_db(path, sizeof path, name), cases[i].n, cases[i].kill_after,
                   cases[i].pause_ns);
    }
}

/* ---- schema v2: why a request failed ------------------------------------------------------ */

/* A store made by this build, taken back to schema version 1 (before http_status and url),
 * with one request in it. */
/* A file as version 1 wrote it: today's schema without the columns later versions added. */
static void make_v1_file(const char *path)
{
    mlc_store *s = open_ok(path);
    int64_t id = begin_ok(s);
    mlc_store_close(s);
    sqlite3 *db = raw_open(path);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "ALTER TABLE requests DROP COLUMN url; ALTER TABLE requests DROP COLUMN http_status;"
             "ALTER TABLE conformance DROP COLUMN device; ALTER TABLE conformance DROP COLUMN case_desc;"
             "ALTER TABLE conformance DROP COLUMN threshold; ALTER TABLE conformance DROP COLUMN seed;"
             "ALTER TABLE conformance DROP COLUMN error; ALTER TABLE conformance DROP COLUMN ms; DROP TABLE slo;"
             "DROP INDEX runs_uuid; DROP INDEX runs_group; ALTER TABLE runs DROP COLUMN uuid;"
             "ALTER TABLE runs DROP COLUMN run_group; ALTER TABLE runs DROP COLUMN shard_index;"
             "ALTER TABLE runs DROP COLUMN shard_count; ALTER TABLE runs DROP COLUMN partial;"
             "INSERT INTO requests (run_id, idx, phase, ok, error_kind, error, tokens_approx)"
             " VALUES (%lld, 0, 0, 0, 'http', 'HTTP 500', 0); PRAGMA user_version = 1",
             (long long)id);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(store, migrates_v1_to_v2_keeping_requests)
{
    char path[1024];
    make_v1_file(tmp_db(path, sizeof path, "v1.db"));
    mlc_store *s = open_ok(path);
    sqlite3 *db = mlc_store_db(s);
    cr_expect_eq(q_int(db, "PRAGMA user_version"), mlc_store_schema_version());
    cr_expect_geq(mlc_store_schema_version(), 2);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM requests WHERE error = 'HTTP 500' AND http_status IS NULL"
                           " AND url IS NULL"), 1, "the v1 request survives, new columns NULL");
    cr_expect_eq(q_int(db, "SELECT count(*) FROM pragma_table_info('conformance') WHERE name IN"
                           " ('device', 'case_desc', 'threshold', 'seed', 'error', 'ms')"), 6, "v3's columns");
    /* A v2 request keeps its status and URL; a status <= 0 is NULL. */
    int64_t id = begin_ok(s);
    mlc_err err = {0};
    mlc_request_record r = {.idx = 1, .ok = false, .error_kind = "http", .error = "model 'x' not found",
                            .http_status = 404, .url = "http://127.0.0.1:9/v1/completions", .first_token = -1};
    cr_assert_eq(mlc_store_add_request(s, id, &r, &err), MLC_OK, "%s", err.msg);
    r.idx = 2;
    r.http_status = 0;
    r.url = NULL;
    cr_assert_eq(mlc_store_add_request(s, id, &r, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_flush(s, &err), MLC_OK, "%s", err.msg);
    expect_text(db, "SELECT url || ' ' || http_status || ' ' || error FROM requests WHERE idx = 1",
                "http://127.0.0.1:9/v1/completions 404 model 'x' not found");
    cr_expect_eq(q_int(db, "SELECT count(*) FROM requests WHERE idx = 2 AND http_status IS NULL AND url IS NULL"), 1);
    mlc_store_close(s);
    expect_integrity_ok(path);
}

/* ---- read-only open ----------------------------------------------------------------------- */

typedef struct file_state {
    struct stat st;
    char *bytes;
    size_t n;
} file_state;

static file_state snap(const char *path)
{
    file_state f = {0};
    cr_assert_eq(stat(path, &f.st), 0, "%s", path);
    f.bytes = tu_read_file(path, &f.n);
    cr_assert_not_null(f.bytes, "%s", path);
    return f;
}

static void expect_unchanged(const char *path, file_state *before)
{
    file_state now = snap(path);
    cr_expect_eq(now.n, before->n, "%s: size changed", path);
    cr_expect(now.n == before->n && !memcmp(now.bytes, before->bytes, now.n), "%s: bytes changed", path);
    cr_expect(now.st.st_mtim.tv_sec == before->st.st_mtim.tv_sec &&
                  now.st.st_mtim.tv_nsec == before->st.st_mtim.tv_nsec, "%s: mtime changed", path);
    free(now.bytes);
    free(before->bytes);
}

static void expect_ro_refused(const char *path, mlc_status want, const char *what)
{
    mlc_store *s = (mlc_store *)1;
    mlc_err err = {0};
    mlc_status st = mlc_store_open_readonly(path, &s, &err);
    cr_expect_eq(st, want, "%s: status %d: %s", path, st, err.msg);
    cr_expect_null(s);
    cr_expect(!strncmp(err.msg, path, strlen(path)), "does not start with the path: %s", err.msg);
    cr_expect(strstr(err.msg, what), "no '%s' in: %s", what, err.msg);
    cr_expect_null(strchr(err.msg, '\n'), "not one line: %s", err.msg);
}

/* Root may write any file whatever its mode, so "nothing was written" is checked on the
 * bytes and mtime of the file, and writes through the store are refused outright. */
Test(store, readonly_reads_and_writes_nothing)
{
    char path[1024];
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "ro.db"));
    int64_t id = begin_ok(s);
    add_requests(s, id, 0, 10);
    mlc_err err = {0};
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    mlc_store_close(s);
    file_state before = snap(path);

    s = NULL;
    cr_assert_eq(mlc_store_open_readonly(path, &s, &err), MLC_OK, "%s", err.msg);
    cr_expect(mlc_store_readonly(s));
    sqlite3 *db = mlc_store_db(s);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM requests"), 10);
    cr_expect_eq(q_int(db, "SELECT count(*) FROM requests WHERE http_status IS NULL"), 10);
    /* Writes are refused, through the store and through the connection. */
    int64_t id2 = 0;
    cr_expect_eq(mlc_store_run_begin(s, &RUN_INFO, &id2, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "read-only"), "%s", err.msg);
    cr_expect_eq(mlc_store_add_metric(s, id, "x", NULL, NULL, 1, 0, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_store_run_end(s, id, "failed", &err), MLC_ERR_ARG);
    cr_expect_neq(sqlite3_exec(db, "DELETE FROM runs", NULL, NULL, NULL), SQLITE_OK);
    mlc_store_close(s);
    expect_unchanged(path, &before);
}

Test(store, readonly_refuses_what_it_cannot_read)
{
    char path[1024];
    /* A missing file is not created. */
    tmp_db(path, sizeof path, "missing.db");
    expect_ro_refused(path, MLC_ERR_NOT_FOUND, "no such file");
    cr_expect_neq(access(path, F_OK), 0, "the missing file was created");

    /* A 0-byte file stays 0 bytes. */
    tmp_db(path, sizeof path, "zero.db");
    cr_assert_eq(tu_write_file(path, "", 0), 0);
    file_state before = snap(path);
    expect_ro_refused(path, MLC_ERR_FORMAT, "empty file");
    expect_unchanged(path, &before);

    /* An SQLite database without our schema, a newer schema, not a database. */
    tmp_db(path, sizeof path, "bare.db");
    sqlite3 *db = raw_open(path);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 0; VACUUM", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_ro_refused(path, MLC_ERR_FORMAT, "without an mlc-bench schema");
    tmp_db(path, sizeof path, "newer.db");
    mlc_store_close(open_ok(path));
    db = raw_open(path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", mlc_store_schema_version() + 1);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_ro_refused(path, MLC_ERR_UNSUPPORTED, "newer");
    tmp_db(path, sizeof path, "text.db");
    cr_assert_eq(tu_write_file(path, "hello, not a database at all, but long enough", 46), 0);
    expect_ro_refused(path, MLC_ERR_FORMAT, "not an SQLite database");
    tmp_db(path, sizeof path, "");
    expect_ro_refused(path, MLC_ERR_IO, "not a regular file");
}

Test(store, readonly_reads_a_v1_file_without_migrating)
{
    char path[1024];
    make_v1_file(tmp_db(path, sizeof path, "v1ro.db"));
    file_state before = snap(path);
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open_readonly(path, &s, &err), MLC_OK, "%s", err.msg);
    sqlite3 *db = mlc_store_db(s);
    cr_expect_eq(q_int(db, "PRAGMA main.user_version"), 1, "not migrated");
    cr_expect_eq(q_int(db, "SELECT count(*) FROM requests WHERE error = 'HTTP 500' AND http_status IS NULL"
                           " AND url IS NULL"), 1);
    mlc_store_close(s);
    expect_unchanged(path, &before);
}

/* In a child: the store at path opened read-write (want_rw) or read-only by a user who may
 * not write it: as root, the child becomes nobody, for whom the modes apply. Exit 0 when
 * the open and a query succeed, 1 when the open fails, 3 when the user could not be
 * changed. */
static int open_as_other_user(const char *path, bool rw)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        mlc_store *s = NULL;
        mlc_err err = {0};
        mlc_status st = rw ? mlc_store_open(path, &s, &err) : mlc_store_open_readonly(path, &s, &err);
        if (st != MLC_OK) {
            fprintf(stderr, "%s\n", err.msg);
            _exit(1);
        }
        sqlite3_stmt *q = NULL;
        bool ok = sqlite3_prepare_v2(mlc_store_db(s), "SELECT count(*) FROM runs", -1, &q, NULL) == SQLITE_OK &&
                  sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1;
        sqlite3_finalize(q);
        mlc_store_close(s);
        _exit(ok ? 0 : 2);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(store, readonly_file_in_readonly_directory)
{
    /* A directory everyone may enter (the test's own temporary directory is 0700). */
    char top[] = "/tmp/mlc-store-ro-XXXXXX", dir[1024], path[1100];
    cr_assert_not_null(mkdtemp(top));
    cr_assert_eq(chmod(top, 0755), 0);
    snprintf(dir, sizeof dir, "%s/ro", top);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    mlc_store *s = open_ok(path);
    begin_ok(s);
    mlc_store_close(s); /* the last connection removes -wal and -shm */
    cr_assert_eq(chmod(path, 0444), 0);
    cr_assert_eq(chmod(dir, 0555), 0);
    file_state before = snap(path);

    int rw = open_as_other_user(path, true);
    if (rw == 3) {
        chmod(dir, 0755);
        cr_skip_test("root here cannot become another user, for whom file modes would apply");
    }
    cr_expect_neq(rw, 0, "the setting does not make the store unwritable");
    cr_expect_eq(open_as_other_user(path, false), 0, "read-only open failed in a read-only directory");
    /* The file alone, directory writable. */
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_expect_eq(open_as_other_user(path, false), 0, "read-only open of a 0444 file failed");
    expect_unchanged(path, &before);
    /* No -shm or -wal left behind by the reader: a writer could not use files it owns. */
    char side[1200];
    snprintf(side, sizeof side, "%s-shm", path);
    cr_expect_neq(access(side, F_OK), 0, "%s left behind", side);
    snprintf(side, sizeof side, "%s-wal", path);
    cr_expect_neq(access(side, F_OK), 0, "%s left behind", side);

    chmod(dir, 0755);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------ conformance results */

static void add_case(mlc_store *s, int64_t run, const char *device, const char *desc, const char *status)
{
    mlc_conformance_row r = {"cpu", device, "matmul", "Q4_K", "[256, 7, 3, 1]", desc, status,
                             !strcmp(status, "fail") ? "NMSE 1e-2 > 5e-4" : NULL, 1e-6, 5e-4, 0.1, 0xfeedULL};
    mlc_err err = {0};
    cr_assert_eq(mlc_store_add_conformance(s, run, &r, &err), MLC_OK, "%s", err.msg);
}

typedef struct changes {
    char text[1024];
    int n;
} changes;

static void on_change(void *ctx, const mlc_conformance_change *c)
{
    changes *ch = ctx;
    size_t len = strlen(ch->text);
    snprintf(ch->text + len, sizeof ch->text - len, "%s|%s|%s|%s;", c->device, c->case_desc,
             c->before ? c->before : "-", c->after ? c->after : "-");
    ch->n++;
}

/* Rows keep seed (hex) and threshold; the changes between two runs are keyed by backend:index
 * and the case's name, whatever the instance's description (threads, ISA) says. */
Test(store, conformance_rows_and_changes)
{
    char path[1024];
    mlc_store *s = open_ok(tmp_db(path, sizeof path, "conf.db"));
    int64_t a = begin_ok(s), b = begin_ok(s);
    add_case(s, a, "cpu:0 EPYC, 2 threads, avx2", "same", "pass");
    add_case(s, a, "cpu:0 EPYC, 2 threads, avx2", "broke", "pass");
    add_case(s, a, "cpu:0 EPYC, 2 threads, avx2", "dropped", "pass");
    add_case(s, a, "cpu:0 EPYC, 2 threads, avx2", "fixed", "fail");
    add_case(s, b, "cpu:0 EPYC, 1 threads, avx512", "same", "pass");
    add_case(s, b, "cpu:0 EPYC, 1 threads, avx512", "broke", "fail");
    add_case(s, b, "cpu:0 EPYC, 1 threads, avx512", "fixed", "pass");
    add_case(s, b, "cpu:0 EPYC, 1 threads, avx512", "declined", "unsupported");
    changes ch = {{0}, 0};
    mlc_err err = {0};
    cr_assert_eq(mlc_store_conformance_changes(s, a, b, on_change, &ch, &err), MLC_OK, "%s", err.msg);
    cr_expect_str_eq(ch.text, "cpu:0|broke|pass|fail;cpu:0|declined|-|unsupported;cpu:0|dropped|pass|-;"
                              "cpu:0|fixed|fail|pass;");
    expect_text(mlc_store_db(s), "SELECT seed || ' ' || threshold || ' ' || status FROM conformance WHERE case_desc = 'broke'"
                                 " AND run_id = 2", "0x000000000000feed 0.0005 fail");
    mlc_store_close(s);
}
