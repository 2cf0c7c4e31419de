/* store_query.c: the store's read queries for reports (store_query.h). */
#include "store_query.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sqlite3_stmt *prep(mlc_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(mlc_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

const char *mlc_store_query_error(mlc_store *s)
{
    sqlite3 *db = mlc_store_db(s);
    return sqlite3_errcode(db) == SQLITE_OK ? "" : sqlite3_errmsg(db);
}

int64_t mlc_store_run_count(mlc_store *s, int64_t *newest)
{
    int64_t n = 0;
    *newest = 0;
    sqlite3_stmt *st = prep(s, "SELECT count(*), coalesce(max(id), 0) FROM runs");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
        *newest = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return n;
}

bool mlc_store_run_exists(mlc_store *s, int64_t id)
{
    sqlite3_stmt *st = prep(s, "SELECT 1 FROM runs WHERE id=?1");
    sqlite3_bind_int64(st, 1, id);
    bool ok = st && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return ok;
}

bool mlc_store_run_head(mlc_store *s, int64_t id, mlc_run_head *h)
{
    memset(h, 0, sizeof *h);
    sqlite3_stmt *st = prep(s, "SELECT kind, started, git_sha, label FROM runs WHERE id=?1");
    sqlite3_bind_int64(st, 1, id);
    bool ok = st && sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        snprintf(h->kind, sizeof h->kind, "%s", col(st, 0));
        snprintf(h->started, sizeof h->started, "%s", col(st, 1));
        snprintf(h->git_sha, sizeof h->git_sha, "%s", col(st, 2));
        snprintf(h->label, sizeof h->label, "%s", col(st, 3));
    }
    sqlite3_finalize(st);
    return ok;
}

int mlc_store_last_runs(mlc_store *s, const char *kind, int n, int64_t *ids)
{
    int k = 0;
    sqlite3_stmt *st = prep(s, "SELECT id FROM runs WHERE ?1 IS NULL OR kind = ?1 ORDER BY id DESC LIMIT ?2");
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, n);
    while (st && k < n && sqlite3_step(st) == SQLITE_ROW)
        ids[k++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (int i = 0; i < k / 2; i++) {
        int64_t t = ids[i];
        ids[i] = ids[k - 1 - i];
        ids[k - 1 - i] = t;
    }
    return k;
}

bool mlc_store_default_baseline(mlc_store *s, int64_t *run)
{
    sqlite3_stmt *st = prep(s, "SELECT run_id FROM baselines ORDER BY name = 'main' DESC, name LIMIT 1");
    bool ok = st && sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        *run = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return ok;
}

void mlc_store_run_fields(mlc_store *s, int64_t run, bool fingerprint, mlc_store_field_fn fn, void *ctx)
{
    static const char *const cols[] = {"kind", "label", "status", "started", "finished", "git_sha",
                                       "git_branch", "target", "backend", "device", "endpoint",
                                       "model_path", "model_sha256", "model_arch", "model_quant", "config"};
    static const char *const fcols[] = {"hash", "cpu", "cpus", "gpu", "driver", "os", "compiler", "flags", "build"};
    sqlite3_stmt *st = prep(s, fingerprint
                                   ? "SELECT f.hash, f.cpu, f.cpus, f.gpu, f.driver, f.os, f.compiler, f.flags,"
                                     " f.build FROM runs r JOIN fingerprints f ON f.id = r.fingerprint_id"
                                     " WHERE r.id=?1"
                                   : "SELECT kind, label, status, started, finished, git_sha, git_branch,"
                                     " target, backend, device, endpoint, model_path, model_sha256,"
                                     " model_arch, model_quant, config FROM runs WHERE id=?1");
    sqlite3_bind_int64(st, 1, run);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        int n = fingerprint ? 9 : 16;
        for (int i = 0; i < n; i++)
            if (fingerprint || *col(st, i))
                fn(ctx, fingerprint ? fcols[i] : cols[i], col(st, i));
    }
    sqlite3_finalize(st);
}

double mlc_store_metric(mlc_store *s, int64_t run, const char *name, const char *stat, int *dir)
{
    double v = NAN;
    sqlite3_stmt *st = prep(s, "SELECT value, direction FROM metrics WHERE run_id=?1 AND name=?2 AND stat=?3"
                               " ORDER BY rowid DESC LIMIT 1");
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, stat, -1, SQLITE_TRANSIENT);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_double(st, 0);
        if (dir)
            *dir = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return v;
}

void mlc_store_each_metric(mlc_store *s, int64_t run, mlc_store_metric_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT name, stat, value, unit, direction FROM metrics WHERE run_id=?1"
                               " ORDER BY rowid");
    sqlite3_bind_int64(st, 1, run);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, col(st, 0), col(st, 1), sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2),
           col(st, 3), sqlite3_column_int(st, 4));
    sqlite3_finalize(st);
}

int mlc_store_load_points(mlc_store *s, int64_t run, char (*names)[32], int cap)
{
    int n = 0;
    sqlite3_stmt *st = prep(s, "SELECT lp FROM (SELECT substr(name, 1, instr(name, '/') - 1) AS lp,"
                               " min(rowid) AS first FROM metrics WHERE run_id=?1 AND"
                               " instr(name, '/') > 1 GROUP BY lp) ORDER BY first");
    sqlite3_bind_int64(st, 1, run);
    while (st && n < cap && sqlite3_step(st) == SQLITE_ROW)
        snprintf(names[n++], 32, "%s", col(st, 0));
    sqlite3_finalize(st);
    return n;
}

void mlc_store_failures(mlc_store *s, int64_t run, int phase, mlc_store_count_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT coalesce(error_kind, 'unknown'), count(*) FROM requests"
                               " WHERE run_id=?1 AND phase=?2 AND ok=0 GROUP BY 1 ORDER BY 2 DESC, 1");
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, phase);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, col(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
}

/* Appends x to *v (n used, cap allocated); false when out of memory. */
static bool push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        double *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return true;
}

/* The doubles of column 0 of a bound statement, finalized here. */
static double *column_doubles(sqlite3_stmt *st, size_t *n)
{
    double *v = NULL;
    size_t cap = 0;
    *n = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW)
        if (!push(&v, n, &cap, sqlite3_column_double(st, 0)))
            break;
    sqlite3_finalize(st);
    return v;
}

double *mlc_store_latencies(mlc_store *s, int64_t run, int phase, mlc_latency_kind k, size_t *n)
{
    sqlite3_stmt *st = prep(s, k == MLC_LATENCY_TTFT
                                   ? "SELECT (first_token - sent) * 1000.0 FROM requests WHERE run_id=?1 AND"
                                     " phase=?2 AND ok=1 AND first_token IS NOT NULL AND done IS NOT NULL AND"
                                     " sent IS NOT NULL ORDER BY 1"
                                   : "SELECT (done - sent) * 1000.0 FROM requests WHERE run_id=?1 AND"
                                     " phase=?2 AND ok=1 AND first_token IS NOT NULL AND done IS NOT NULL AND"
                                     " sent IS NOT NULL ORDER BY 1");
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, phase);
    return column_doubles(st, n);
}

double *mlc_store_itl_gaps(mlc_store *s, int64_t run, size_t *n)
{
    sqlite3_stmt *st = prep(s, "SELECT itl FROM requests WHERE run_id=?1 AND ok=1 AND itl IS NOT NULL");
    sqlite3_bind_int64(st, 1, run);
    double *v = NULL;
    size_t cap = 0;
    bool ok = true;
    *n = 0;
    while (ok && st && sqlite3_step(st) == SQLITE_ROW) {
        /* float32 little-endian, one per gap */
        const unsigned char *b = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        for (int i = 0; ok && b && i + 4 <= len; i += 4) {
            uint32_t u = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 |
                         (uint32_t)b[i + 3] << 24;
            float f;
            memcpy(&f, &u, sizeof f);
            if (isfinite(f))
                ok = push(&v, n, &cap, f);
        }
    }
    sqlite3_finalize(st);
    return v;
}

double *mlc_store_samples(mlc_store *s, int64_t run, const char *metric, size_t *n)
{
    sqlite3_stmt *st = prep(s, "SELECT value FROM samples WHERE run_id=?1 AND metric=?2 AND value IS NOT NULL"
                               " ORDER BY rep");
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_TRANSIENT);
    return column_doubles(st, n);
}
