/* store.c: the SQLite result store (store.h, DESIGN.md "Store"): opening (the schema and its
 * migrations are store_schema.c's), the fingerprint, and the rows a run writes. */
#include "store.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "store_schema.h"

#define BUSY_TIMEOUT_MS 10000

/* One buffered request: the record, its strings and its ITL blob (little-endian float32)
 * copied into buf, which the entry owns. */
typedef struct pending_req {
    int64_t run_id;
    mlc_request_record r;
    const unsigned char *itl;
    char *buf;
} pending_req;

struct mlc_store {
    sqlite3 *db;
    char *path;
    bool readonly;            /* mlc_store_open_readonly: no statement writes */
    sqlite3_stmt *ins_req, *ins_metric, *ins_sample;
    pending_req *pend;
    size_t n_pend, cap_pend;
};

/* ---- errors ------------------------------------------------------------------------------ */

static mlc_status arg_err(const mlc_store *s, mlc_err *err, const char *fn, const char *why)
{
    return mlc_err_set(err, MLC_ERR_ARG, "%s: %s: %s", s ? s->path : "(no store)", fn, why);
}

/* ---- small helpers ----------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* NaN would be stored as NULL by SQLite anyway; say so explicitly. */
static int bind_real(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- fingerprint ------------------------------------------------------------------------- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    size_t k = strspn(s, " \t");
    memmove(s, s + k, n - k + 1);
}

/* The CPU model from /proc/cpuinfo: "model name" (x86), else the keys other architectures
 * use. */
static void cpu_model(char *out, size_t cap)
{
    static const char *const keys[] = {"model name", "Model", "Hardware", "cpu model", "cpu"};
    char best[256] = "";
    int best_rank = (int)(sizeof keys / sizeof keys[0]);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (best_rank > 0 && fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            *colon = 0;
            trim(line);
            for (int k = 0; k < best_rank; k++) {
                if (!strcmp(line, keys[k])) {
                    copy_str(best, sizeof best, colon + 1);
                    trim(best);
                    best_rank = best[0] ? k : best_rank;
                    break;
                }
            }
        }
        fclose(f);
    }
    copy_str(out, cap, best[0] ? best : "unknown");
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void mlc_fingerprint_this(mlc_fingerprint *fp)
{
    memset(fp, 0, sizeof *fp);
    cpu_model(fp->cpu, sizeof fp->cpu);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    fp->cpus = n > 0 ? (int)n : 1;
    copy_str(fp->gpu, sizeof fp->gpu, "none");
    copy_str(fp->driver, sizeof fp->driver, "none");
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(fp->os, sizeof fp->os, "%s %s %s", u.sysname, u.release, u.machine);
    else
        copy_str(fp->os, sizeof fp->os, "unknown");
#if defined(__clang__)
    snprintf(fp->compiler, sizeof fp->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(fp->compiler, sizeof fp->compiler, "gcc %s", __VERSION__);
#elif defined(__VERSION__)
    snprintf(fp->compiler, sizeof fp->compiler, "cc %s", __VERSION__);
#else
    copy_str(fp->compiler, sizeof fp->compiler, "cc unknown");
#endif
    trim(fp->compiler);
#ifdef MLC_CFLAGS
    copy_str(fp->flags, sizeof fp->flags, MLC_CFLAGS);
#endif
    const char *sha = getenv("MLC_GIT_SHA");
#ifdef MLC_GIT_SHA
    if (!sha || !*sha)
        sha = MLC_GIT_SHA;
#endif
    copy_str(fp->build, sizeof fp->build, sha && *sha ? sha : "unknown");

    /* Fields joined by '\n' so that ("ab", "c") and ("a", "bc") differ. */
    char cpus[16];
    snprintf(cpus, sizeof cpus, "%d", fp->cpus);
    const char *fields[] = {fp->cpu, cpus, fp->gpu, fp->driver, fp->os,
                            fp->compiler, fp->flags, fp->build};
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        h = fnv1a(fnv1a(h, fields[i]), "\n");
    snprintf(fp->hash, sizeof fp->hash, "%016" PRIx64, h);
}

/* ---- open, migrate, close ---------------------------------------------------------------- */

const char *mlc_store_default_path(void)
{
    const char *p = getenv("MLC_BENCH_DB");
    return p && *p ? p : "mlc-bench.db";
}

static mlc_status prepare(mlc_store *s, sqlite3_stmt **st, const char *sql, mlc_err *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "preparing a statement");
    return MLC_OK;
}

static void free_pending(mlc_store *s)
{
    for (size_t i = 0; i < s->n_pend; i++)
        free(s->pend[i].buf);
    s->n_pend = 0;
}

static void store_free(mlc_store *s)
{
    if (!s)
        return;
    free_pending(s);
    free(s->pend);
    sqlite3_finalize(s->ins_req);
    sqlite3_finalize(s->ins_metric);
    sqlite3_finalize(s->ins_sample);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

mlc_status mlc_store_open(const char *path, mlc_store **out, mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_store_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_store_open: empty path");
    mlc_status st = MLC_OK;
    int64_t ver = 0;
    char mode[16] = "";
    mlc_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = malloc(strlen(path) + 1))) {
        st = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(s->path, path, strlen(path) + 1);

    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = mlc_store_db_err(path, s->db, err, "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* The first read of the file: a non-database fails here. */
    if (mlc_store_query_int(s->db, "PRAGMA user_version", &ver) != SQLITE_OK) {
        st = mlc_store_db_err(path, s->db, err, "reading the schema version");
        goto fail;
    }
    if ((st = mlc_store_schema_check(s->db, path, ver, err)) != MLC_OK)
        goto fail;

    /* journal_mode answers the mode in force: "wal", or "memory" for :memory:. */
    sqlite3_stmt *jm = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &jm, NULL) == SQLITE_OK &&
        sqlite3_step(jm) == SQLITE_ROW)
        copy_str(mode, sizeof mode, (const char *)sqlite3_column_text(jm, 0));
    sqlite3_finalize(jm);
    if (!mode[0]) {
        st = mlc_store_db_err(path, s->db, err, "setting WAL mode");
        goto fail;
    }
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
        st = mlc_err_set(err, MLC_ERR_IO,
                         "%s: cannot use WAL mode (journal mode is '%s'; is the file system "
                         "local?)", path, mode);
        goto fail;
    }
    if (exec(s->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL") != SQLITE_OK) {
        st = mlc_store_db_err(path, s->db, err, "setting pragmas");
        goto fail;
    }
    if ((st = mlc_store_schema_migrate(s->db, path, err)) != MLC_OK)
        goto fail;

    if ((st = prepare(s, &s->ins_req,
                      "INSERT INTO requests (run_id, idx, phase, scheduled, sent, first_token,"
                      " done, ok, error_kind, error, input_tokens, output_tokens, tokens_approx,"
                      " itl, http_status, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
                      " ?11, ?12, ?13, ?14, ?15, ?16)", err)) != MLC_OK ||
        (st = prepare(s, &s->ins_metric,
                      "INSERT INTO metrics (run_id, name, unit, stat, value, direction)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)", err)) != MLC_OK ||
        (st = prepare(s, &s->ins_sample,
                      "INSERT INTO samples (run_id, metric, rep, value) VALUES (?1, ?2, ?3, ?4)",
                      err)) != MLC_OK)
        goto fail;
    *out = s;
    return MLC_OK;
fail:
    store_free(s);
    return st;
}

/* ---- read-only open ---------------------------------------------------------------------- */

/* "file:PATH?immutable=1" with PATH percent-encoded (a path may hold '?', '#' or '%'). */
static char *immutable_uri(const char *path)
{
    static const char tail[] = "?immutable=1";
    char *u = malloc(5 + 3 * strlen(path) + sizeof tail);
    if (!u)
        return NULL;
    char *w = u + sprintf(u, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || strchr("/._-~", *p))
            *w++ = (char)*p;
        else
            w += sprintf(w, "%%%02X", *p);
    }
    memcpy(w, tail, sizeof tail);
    return u;
}

/* Opens the file read-only (immutable: reading the database file alone, without locks or
 * WAL) and reads its schema version. */
static mlc_status open_ro_as(mlc_store *s, bool immutable, int64_t *ver, int *rc, mlc_err *err)
{
    char *uri = immutable ? immutable_uri(s->path) : NULL;
    if (immutable && !uri)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", s->path);
    int flags = SQLITE_OPEN_READONLY | (immutable ? SQLITE_OPEN_URI : 0);
    *rc = sqlite3_open_v2(immutable ? uri : s->path, &s->db, flags, NULL);
    free(uri);
    if (*rc != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "cannot open");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    *rc = mlc_store_query_int(s->db, "PRAGMA user_version", ver);
    return *rc == SQLITE_OK ? MLC_OK : mlc_store_db_err(s->path, s->db, err, "reading the schema version");
}

/* Reading a WAL file takes its -shm index, which a reader creates when absent and, unable to
 * checkpoint, leaves behind, owned by the reader: a writer without access to it would then
 * fail. So a user who may not write the file, with no writer's -wal present, reads it as
 * immutable (the database file alone, as the last writer's checkpoint left it); so does
 * anyone where the index cannot be made (a read-only directory). */
static mlc_status open_ro_db(mlc_store *s, int64_t *ver, mlc_err *err)
{
    size_t n = strlen(s->path) + 5;
    char *wal = malloc(n);
    if (!wal)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", s->path);
    snprintf(wal, n, "%s-wal", s->path);
    bool quiet_file = access(wal, F_OK) != 0 && access(s->path, W_OK) != 0;
    free(wal);
    int rc = SQLITE_OK;
    mlc_status st = open_ro_as(s, quiet_file, ver, &rc, err);
    if (st == MLC_OK || quiet_file || ((rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN))
        return st;
    sqlite3_close(s->db);
    s->db = NULL;
    return open_ro_as(s, true, ver, &rc, err);
}

mlc_status mlc_store_open_readonly(const char *path, mlc_store **out, mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_store_open_readonly: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_store_open_readonly: empty path");
    /* Checked before SQLite sees the file: it would take a missing or empty file for a new,
     * empty database. */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT
                   ? mlc_err_set(err, MLC_ERR_NOT_FOUND, "%s: no such file (nothing stored there yet)", path)
                   : mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return mlc_err_set(err, MLC_ERR_IO, "%s: not a regular file", path);
    if (sb.st_size == 0)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: empty file, not an mlc-bench database (nothing stored there yet)",
                           path);
    mlc_status st = MLC_OK;
    int64_t ver = 0;
    mlc_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        st = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    s->readonly = true;
    if ((st = open_ro_db(s, &ver, err)) != MLC_OK || (st = mlc_store_schema_check(s->db, path, ver, err)) != MLC_OK)
        goto fail;
    if (ver == 0) {
        st = mlc_err_set(err, MLC_ERR_FORMAT, "%s: an SQLite database without an mlc-bench schema", path);
        goto fail;
    }
    if ((st = mlc_store_schema_shim(s->db, path, ver, err)) != MLC_OK)
        goto fail;
    /* Nothing below this module may write through mlc_store_db() either. */
    if (exec(s->db, "PRAGMA query_only = 1") != SQLITE_OK) {
        st = mlc_store_db_err(path, s->db, err, "setting query_only");
        goto fail;
    }
    *out = s;
    return MLC_OK;
fail:
    store_free(s);
    return st;
}

bool mlc_store_readonly(const mlc_store *s)
{
    return s && s->readonly;
}

void mlc_store_close(mlc_store *s)
{
    if (!s)
        return;
    mlc_err err;
    if (mlc_store_flush(s, &err) != MLC_OK)
        fprintf(stderr, "mlc-bench: warning: %zu request records lost: %s\n", s->n_pend,
                err.msg);
    store_free(s);
}

const char *mlc_store_path(const mlc_store *s)
{
    return s ? s->path : NULL;
}

struct sqlite3 *mlc_store_db(mlc_store *s)
{
    return s ? s->db : NULL;
}

/* ---- runs -------------------------------------------------------------------------------- */

/* The id of the row of fingerprint fp, inserted when new. Inside run_begin's transaction. */
static mlc_status fingerprint_id(mlc_store *s, const mlc_fingerprint *fp, int64_t *id,
                                 mlc_err *err)
{
    sqlite3_stmt *st = NULL;
    mlc_status rs = MLC_OK;
    if ((rs = prepare(s, &st,
                      "INSERT INTO fingerprints (hash, cpu, cpus, gpu, driver, os, compiler,"
                      " flags, build) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                      " ON CONFLICT (hash) DO NOTHING", err)) != MLC_OK)
        goto fail;
    bind_text(st, 1, fp->hash);
    bind_text(st, 2, fp->cpu);
    sqlite3_bind_int(st, 3, fp->cpus);
    bind_text(st, 4, fp->gpu);
    bind_text(st, 5, fp->driver);
    bind_text(st, 6, fp->os);
    bind_text(st, 7, fp->compiler);
    bind_text(st, 8, fp->flags);
    bind_text(st, 9, fp->build);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rs = mlc_store_db_err(s->path, s->db, err, "storing the fingerprint");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rs = prepare(s, &st, "SELECT id FROM fingerprints WHERE hash = ?1", err)) != MLC_OK)
        goto fail;
    bind_text(st, 1, fp->hash);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rs = mlc_store_db_err(s->path, s->db, err, "reading the fingerprint");
        goto fail;
    }
    *id = sqlite3_column_int64(st, 0);
fail:
    sqlite3_finalize(st);
    return rs;
}

mlc_status mlc_store_run_begin(mlc_store *s, const mlc_run_info *ri, int64_t *run_id, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_run_begin", "the store is open read-only");
    if (!s || !ri || !run_id || !ri->kind || !*ri->kind)
        return arg_err(s, err, "mlc_store_run_begin", "missing store, run info, kind or run_id");
    *run_id = 0;
    mlc_fingerprint fp;
    mlc_fingerprint_this(&fp);
    const char *sha = getenv("GITHUB_SHA"), *branch = getenv("GITHUB_REF_NAME");
    if (!sha || !*sha)
        sha = strcmp(fp.build, "unknown") ? fp.build : NULL;
    if (branch && !*branch)
        branch = NULL;

    sqlite3_stmt *st = NULL;
    mlc_status rs = MLC_OK;
    int64_t fid = 0;
    if (exec(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "starting a run");
    if ((rs = fingerprint_id(s, &fp, &fid, err)) != MLC_OK)
        goto fail;
    if ((rs = prepare(s, &st,
                      "INSERT INTO runs (kind, label, git_sha, git_branch, status, target,"
                      " backend, device, endpoint, model_path, model_sha256, model_arch,"
                      " model_quant, config, fingerprint_id, uuid, run_group, shard_index,"
                      " shard_count) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9, ?10,"
                      " ?11, ?12, ?13, ?14, lower(hex(randomblob(16))), ?15, ?16, ?17)", err)) != MLC_OK)
        goto fail;
    bind_text(st, 1, ri->kind);
    bind_text(st, 2, ri->label);
    bind_text(st, 3, sha);
    bind_text(st, 4, branch);
    bind_text(st, 5, ri->target);
    bind_text(st, 6, ri->backend);
    bind_text(st, 7, ri->device);
    bind_text(st, 8, ri->endpoint);
    bind_text(st, 9, ri->model_path);
    bind_text(st, 10, ri->model_sha256);
    bind_text(st, 11, ri->model_arch);
    bind_text(st, 12, ri->model_quant);
    bind_text(st, 13, ri->config_json);
    sqlite3_bind_int64(st, 14, fid);
    bind_text(st, 15, ri->run_group);
    if (ri->shard_count > 0) {
        sqlite3_bind_int(st, 16, ri->shard_index);
        sqlite3_bind_int(st, 17, ri->shard_count);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        rs = mlc_store_db_err(s->path, s->db, err,
                    ri->config_json ? "storing the run (is the config valid JSON?)"
                                    : "storing the run");
        goto fail;
    }
    if (exec(s->db, "COMMIT") != SQLITE_OK) {
        rs = mlc_store_db_err(s->path, s->db, err, "committing the run");
        goto fail;
    }
    *run_id = sqlite3_last_insert_rowid(s->db);
    sqlite3_finalize(st);
    return MLC_OK;
fail:
    sqlite3_finalize(st);
    exec(s->db, "ROLLBACK");
    return rs;
}

mlc_status mlc_store_run_end(mlc_store *s, int64_t run_id, const char *status, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_run_end", "the store is open read-only");
    if (!s || !status ||
        (strcmp(status, "complete") && strcmp(status, "failed") && strcmp(status, "interrupted")))
        return arg_err(s, err, "mlc_store_run_end",
                       "status must be complete, failed or interrupted");
    /* A run whose requests could not all be stored is not 'complete'; it can still be
     * marked 'failed' or 'interrupted', and the flush error is returned. */
    mlc_err flush_err;
    mlc_status flushed = mlc_store_flush(s, &flush_err);
    if (flushed != MLC_OK && !strcmp(status, "complete")) {
        if (err)
            *err = flush_err;
        return flushed;
    }
    mlc_status rs = MLC_OK;
    sqlite3_stmt *st = NULL;
    if ((rs = prepare(s, &st,
                      "UPDATE runs SET status = ?2, finished = " MLC_STORE_UTC_NOW
                      " WHERE id = ?1 AND status = 'running'", err)) != MLC_OK)
        return rs;
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, status);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rs = mlc_store_db_err(s->path, s->db, err, "ending the run");
        goto done;
    }
    if (sqlite3_changes(s->db) == 1)
        goto done;
    /* Nothing updated: say why. */
    sqlite3_finalize(st);
    st = NULL;
    if ((rs = prepare(s, &st, "SELECT status FROM runs WHERE id = ?1", err)) != MLC_OK)
        goto done;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rs = mlc_err_set(err, MLC_ERR_ARG, "%s: run %" PRId64 " has already ended (%s)", s->path,
                         run_id, (const char *)sqlite3_column_text(st, 0));
    else if (rc == SQLITE_DONE)
        rs = mlc_err_set(err, MLC_ERR_NOT_FOUND, "%s: no run %" PRId64, s->path, run_id);
    else
        rs = mlc_store_db_err(s->path, s->db, err, "reading the run");
done:
    sqlite3_finalize(st);
    if (rs == MLC_OK && flushed != MLC_OK) {
        if (err)
            *err = flush_err;
        return flushed;
    }
    return rs;
}

/* ---- requests ---------------------------------------------------------------------------- */

mlc_status mlc_store_add_request(mlc_store *s, int64_t run_id, const mlc_request_record *r,
                                 mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_request", "the store is open read-only");
    if (!s || !r || r->n_itl < 0 || (r->n_itl > 0 && !r->itl_ms))
        return arg_err(s, err, "mlc_store_add_request", "missing record or bad ITL array");
    if (s->n_pend == s->cap_pend) {
        size_t cap = s->cap_pend ? s->cap_pend * 2 : MLC_STORE_BATCH;
        pending_req *np = realloc(s->pend, cap * sizeof *np);
        if (!np)
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", s->path);
        s->pend = np;
        s->cap_pend = cap;
    }
    size_t kl = r->error_kind ? strlen(r->error_kind) + 1 : 0;
    size_t el = r->error ? strlen(r->error) + 1 : 0;
    size_t ul = r->url ? strlen(r->url) + 1 : 0;
    size_t il = (size_t)r->n_itl * 4;
    char *buf = malloc(kl + el + ul + il + 1);
    if (!buf)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", s->path);
    pending_req *p = &s->pend[s->n_pend];
    p->run_id = run_id;
    p->r = *r;
    p->buf = buf;
    p->r.itl_ms = NULL;
    p->r.error_kind = kl ? memcpy(buf, r->error_kind, kl) : NULL;
    p->r.error = el ? memcpy(buf + kl, r->error, el) : NULL;
    p->r.url = ul ? memcpy(buf + kl + el, r->url, ul) : NULL;
    unsigned char *itl = (unsigned char *)buf + kl + el + ul;
    for (int32_t i = 0; i < r->n_itl; i++) {
        uint32_t u;
        memcpy(&u, &r->itl_ms[i], 4);
        for (int b = 0; b < 4; b++)
            itl[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
    p->itl = itl;
    s->n_pend++;
    return s->n_pend >= MLC_STORE_BATCH ? mlc_store_flush(s, err) : MLC_OK;
}

static int insert_request(sqlite3_stmt *st, const pending_req *p)
{
    const mlc_request_record *r = &p->r;
    sqlite3_bind_int64(st, 1, p->run_id);
    sqlite3_bind_int64(st, 2, r->idx);
    sqlite3_bind_int64(st, 3, r->phase);
    bind_real(st, 4, r->scheduled);
    bind_real(st, 5, r->sent);
    if (r->first_token < 0)
        sqlite3_bind_null(st, 6);
    else
        bind_real(st, 6, r->first_token);
    bind_real(st, 7, r->done);
    sqlite3_bind_int(st, 8, r->ok ? 1 : 0);
    bind_text(st, 9, r->error_kind);
    bind_text(st, 10, r->error);
    sqlite3_bind_int64(st, 11, r->input_tokens);
    sqlite3_bind_int64(st, 12, r->output_tokens);
    sqlite3_bind_int(st, 13, r->tokens_approx ? 1 : 0);
    if (r->n_itl > 0)
        sqlite3_bind_blob(st, 14, p->itl, r->n_itl * 4, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(st, 14, 0);
    if (r->http_status > 0)
        sqlite3_bind_int(st, 15, r->http_status);
    else
        sqlite3_bind_null(st, 15);
    bind_text(st, 16, r->url);
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

mlc_status mlc_store_flush(mlc_store *s, mlc_err *err)
{
    if (!s)
        return arg_err(s, err, "mlc_store_flush", "no store");
    if (s->n_pend == 0)
        return MLC_OK;
    mlc_status st = MLC_OK;
    if (exec(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "storing requests");
    for (size_t i = 0; i < s->n_pend; i++) {
        int rc = insert_request(s->ins_req, &s->pend[i]);
        if (rc != SQLITE_OK) {
            char what[96];
            snprintf(what, sizeof what, "storing request %" PRId64 " of run %" PRId64,
                     s->pend[i].r.idx, s->pend[i].run_id);
            st = mlc_store_db_err(s->path, s->db, err, what);
            sqlite3_reset(s->ins_req);
            goto fail;
        }
        sqlite3_reset(s->ins_req);
    }
    if (exec(s->db, "COMMIT") != SQLITE_OK) {
        st = mlc_store_db_err(s->path, s->db, err, "committing requests");
        goto fail;
    }
    sqlite3_clear_bindings(s->ins_req);
    free_pending(s);
    return MLC_OK;
fail:
    sqlite3_clear_bindings(s->ins_req);
    exec(s->db, "ROLLBACK");
    return st;
}

/* ---- metrics and samples ----------------------------------------------------------------- */

mlc_status mlc_store_add_metric(mlc_store *s, int64_t run_id, const char *name, const char *unit,
                                const char *stat, double value, int direction, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_metric", "the store is open read-only");
    if (!s || !name || !*name || direction < -1 || direction > 1)
        return arg_err(s, err, "mlc_store_add_metric", "missing name or direction not -1/0/1");
    sqlite3_stmt *st = s->ins_metric;
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, name);
    bind_text(st, 3, unit);
    bind_text(st, 4, stat);
    bind_real(st, 5, value);
    sqlite3_bind_int(st, 6, direction);
    mlc_status rs = MLC_OK;
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[160];
        snprintf(what, sizeof what, "storing metric '%.100s' of run %" PRId64, name, run_id);
        rs = mlc_store_db_err(s->path, s->db, err, what);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rs;
}

mlc_status mlc_store_add_perplexity(mlc_store *s, int64_t run_id, int ctx, int chunks, double ppl,
                                    double ppl_err, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_perplexity", "the store is open read-only");
    if (!s)
        return arg_err(s, err, "mlc_store_add_perplexity", "no store");
    sqlite3_stmt *st = NULL;
    mlc_status rs = MLC_OK;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO perplexity (run_id, ctx, chunks, ppl, ppl_err) VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "preparing the perplexity insert");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, ctx);
    sqlite3_bind_int(st, 3, chunks);
    bind_real(st, 4, ppl);
    bind_real(st, 5, ppl_err);
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "storing the perplexity of run %" PRId64, run_id);
        rs = mlc_store_db_err(s->path, s->db, err, what);
    }
    sqlite3_finalize(st);
    return rs;
}

mlc_status mlc_store_add_slo(mlc_store *s, int64_t run_id, const mlc_slo_row *r, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_slo", "the store is open read-only");
    if (!s || !r || !r->load || !r->name || !r->metric || !r->verdict)
        return arg_err(s, err, "mlc_store_add_slo", "missing load, name, metric or verdict");
    sqlite3_stmt *st = NULL;
    mlc_status rs = MLC_OK;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO slo (run_id, load, name, metric, percentile, bound_ms, confidence, n,"
                           " violations, allowed, needed, observed_ms, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                           " ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "preparing the slo insert");
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, r->load);
    bind_text(st, 3, r->name);
    bind_text(st, 4, r->metric);
    bind_real(st, 5, r->percentile);
    bind_real(st, 6, r->bound_ms);
    bind_real(st, 7, r->confidence);
    sqlite3_bind_int64(st, 8, r->n);
    sqlite3_bind_int64(st, 9, r->violations);
    sqlite3_bind_int64(st, 10, r->allowed);
    if (r->needed > 0)
        sqlite3_bind_int64(st, 11, r->needed);
    else
        sqlite3_bind_null(st, 11);
    bind_real(st, 12, r->observed_ms);
    bind_text(st, 13, r->verdict);
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[160];
        snprintf(what, sizeof what, "storing slo '%.60s' of run %" PRId64, r->name, run_id);
        rs = mlc_store_db_err(s->path, s->db, err, what);
    }
    sqlite3_finalize(st);
    return rs;
}

mlc_status mlc_store_add_conformance(mlc_store *s, int64_t run_id, const mlc_conformance_row *r,
                                    mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_conformance", "the store is open read-only");
    if (!s || !r || !r->backend || !r->case_desc || !r->status)
        return arg_err(s, err, "mlc_store_add_conformance", "missing backend, case or status");
    static const char sql[] = "INSERT INTO conformance (run_id, backend, device, op, type, shape, case_desc,"
                              " status, nmse, threshold, seed, error, ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "preparing the conformance insert");
    char seed[24];
    snprintf(seed, sizeof seed, "0x%016" PRIx64, r->seed);
    const char *text[] = {r->backend, r->device, r->op, r->type, r->shape, r->case_desc, r->status};
    sqlite3_bind_int64(st, 1, run_id);
    for (int i = 0; i < 7; i++)
        sqlite3_bind_text(st, 2 + i, text[i], -1, SQLITE_STATIC);
    bind_real(st, 9, r->nmse);
    bind_real(st, 10, r->threshold);
    sqlite3_bind_text(st, 11, seed, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 12, r->error && *r->error ? r->error : NULL, -1, SQLITE_STATIC);
    bind_real(st, 13, r->ms);
    mlc_status rs = MLC_OK;
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "storing a conformance result of run %" PRId64, run_id);
        rs = mlc_store_db_err(s->path, s->db, err, what);
    }
    sqlite3_finalize(st);
    return rs;
}

mlc_status mlc_store_conformance_changes(mlc_store *s, int64_t base_run, int64_t cand_run,
                                        mlc_conformance_change_fn fn, void *ctx, mlc_err *err)
{
    if (!s || !fn)
        return arg_err(s, err, "mlc_store_conformance_changes", "no store or callback");
    /* Cases are keyed by backend:index (the device's description carries the instance's
     * threads and ISA, which may differ between runs) and the suite's name of the case. */
    static const char sql[] =
        "WITH a AS (SELECT substr(device, 1, instr(device || ' ', ' ') - 1) AS k, case_desc, status"
        "           FROM conformance WHERE run_id = ?1),"
        " b AS (SELECT substr(device, 1, instr(device || ' ', ' ') - 1) AS k, case_desc, status, nmse,"
        "           threshold, error FROM conformance WHERE run_id = ?2)"
        " SELECT a.k, a.case_desc, a.status, b.status, b.nmse, b.threshold, b.error FROM a"
        "   LEFT JOIN b ON b.k = a.k AND b.case_desc = a.case_desc"
        "   WHERE b.status IS NULL OR b.status != a.status"
        " UNION ALL"
        " SELECT b.k, b.case_desc, NULL, b.status, b.nmse, b.threshold, b.error FROM b"
        "   WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.k = b.k AND a.case_desc = b.case_desc)"
        " ORDER BY 1, 2";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "preparing the conformance comparison");
    sqlite3_bind_int64(st, 1, base_run);
    sqlite3_bind_int64(st, 2, cand_run);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mlc_conformance_change c = {
            .device = (const char *)sqlite3_column_text(st, 0),
            .case_desc = (const char *)sqlite3_column_text(st, 1),
            .before = (const char *)sqlite3_column_text(st, 2),
            .after = (const char *)sqlite3_column_text(st, 3),
            .nmse = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 4),
            .threshold = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5),
            .error = (const char *)sqlite3_column_text(st, 6),
        };
        fn(ctx, &c);
    }
    mlc_status rs = rc == SQLITE_DONE ? MLC_OK : mlc_store_db_err(s->path, s->db, err, "comparing conformance results");
    sqlite3_finalize(st);
    return rs;
}

mlc_status mlc_store_add_samples(mlc_store *s, int64_t run_id, const char *metric,
                                 const double *v, int n, mlc_err *err)
{
    if (s && s->readonly)
        return arg_err(s, err, "mlc_store_add_samples", "the store is open read-only");
    if (!s || !metric || !*metric || n < 0 || (n > 0 && !v))
        return arg_err(s, err, "mlc_store_add_samples", "missing metric or values");
    if (n == 0)
        return MLC_OK;
    sqlite3_stmt *st = s->ins_sample;
    mlc_status rs = MLC_OK;
    if (exec(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return mlc_store_db_err(s->path, s->db, err, "storing samples");
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, run_id);
        bind_text(st, 2, metric);
        sqlite3_bind_int(st, 3, i);
        bind_real(st, 4, v[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            char what[160];
            snprintf(what, sizeof what, "storing samples of '%.100s' of run %" PRId64, metric,
                     run_id);
            rs = mlc_store_db_err(s->path, s->db, err, what);
            sqlite3_reset(st);
            goto fail;
        }
        sqlite3_reset(st);
    }
    if (exec(s->db, "COMMIT") != SQLITE_OK) {
        rs = mlc_store_db_err(s->path, s->db, err, "committing samples");
        goto fail;
    }
    sqlite3_clear_bindings(st);
    return MLC_OK;
fail:
    sqlite3_clear_bindings(st);
    exec(s->db, "ROLLBACK");
    return rs;
}
