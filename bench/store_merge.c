/* store_merge.c: copying runs between stores, shard groups, export rows (store_merge.h). */
#include "store_merge.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tables whose rows belong to a run (run_id), copied with their run. */
static const char *const run_tables[] = {"requests", "metrics", "samples", "perplexity", "conformance", "slo"};

/* The columns of every run row but id and fingerprint_id, in one order for copies. */
#define RUN_COLS "kind, label, git_sha, git_branch, started, finished, status, target, backend, device," \
                 " endpoint, model_path, model_sha256, model_arch, model_quant, config"

static mlc_status sql_err(mlc_store *s, mlc_err *err, const char *what)
{
    sqlite3 *db = mlc_store_db(s);
    return mlc_err_set(err, MLC_ERR_IO, "%s: %s: %s", mlc_store_path(s), what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Prepares sql, binds the text arguments ?1.. (NULL binds NULL) and runs it to the end. */
static int run_sql(sqlite3 *db, const char *sql, int n, const char *const *args)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    for (int i = 0; rc == SQLITE_OK && i < n; i++)
        rc = args[i] ? sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = SQLITE_OK;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int64_t query_i64(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* "a, b, c": the columns of main.TABLE but run_id, prefixed by pre ("x." or ""). */
static int table_cols(sqlite3 *db, const char *table, const char *pre, char *buf, size_t cap)
{
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA main.table_info(%s)", table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    size_t len = 0;
    buf[0] = 0;
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 1);
        if (!c || !strcmp(c, "run_id"))
            continue;
        int w = snprintf(buf + len, cap - len, "%s%s\"%s\"", len ? ", " : "", pre, c);
        if (w < 0 || (size_t)w >= cap - len)
            rc = SQLITE_TOOBIG;
        else
            len += (size_t)w;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Copies the rows of every run table for the runs in temp.idmap. */
static int copy_children(sqlite3 *db)
{
    for (size_t t = 0; t < sizeof run_tables / sizeof run_tables[0]; t++) {
        char cols[1024], xcols[1100], sql[2600];
        int rc = table_cols(db, run_tables[t], "", cols, sizeof cols);
        if (rc == SQLITE_OK)
            rc = table_cols(db, run_tables[t], "x.", xcols, sizeof xcols);
        if (rc != SQLITE_OK)
            return rc;
        snprintf(sql, sizeof sql,
                 "INSERT INTO main.%s (run_id, %s) SELECT m.dst, %s FROM src.%s x"
                 " JOIN temp.idmap m ON m.src = x.run_id ORDER BY x.rowid",
                 run_tables[t], cols, xcols, run_tables[t]);
        if ((rc = exec(db, sql)) != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int copy_runs(sqlite3 *db, int64_t before)
{
    char sql[1400];
    int rc = exec(db, "INSERT INTO main.fingerprints (hash, cpu, cpus, gpu, driver, os, compiler, flags, build,"
                      " created) SELECT hash, cpu, cpus, gpu, driver, os, compiler, flags, build, created"
                      " FROM src.fingerprints WHERE true ON CONFLICT (hash) DO NOTHING");
    if (rc != SQLITE_OK)
        return rc;
    snprintf(sql, sizeof sql,
             "INSERT INTO main.runs (" RUN_COLS ", fingerprint_id, uuid, run_group, shard_index, shard_count,"
             " partial) SELECT " RUN_COLS ", (SELECT f.id FROM main.fingerprints f WHERE f.hash = ("
             "SELECT hash FROM src.fingerprints sf WHERE sf.id = r.fingerprint_id)), uuid, run_group,"
             " shard_index, shard_count, partial FROM src.runs r"
             " WHERE uuid NOT IN (SELECT uuid FROM main.runs WHERE uuid IS NOT NULL) ORDER BY id");
    if ((rc = exec(db, sql)) != SQLITE_OK)
        return rc;
    snprintf(sql, sizeof sql,
             "DROP TABLE IF EXISTS temp.idmap;"
             "CREATE TEMP TABLE idmap (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);"
             "INSERT INTO temp.idmap SELECT r.id, m.id FROM src.runs r JOIN main.runs m ON m.uuid = r.uuid"
             " WHERE m.id > %" PRId64 ";"
             "INSERT OR IGNORE INTO temp.merge_groups SELECT DISTINCT run_group FROM main.runs"
             " WHERE id > %" PRId64 " AND run_group IS NOT NULL;",
             before, before);
    if ((rc = exec(db, sql)) != SQLITE_OK || (rc = copy_children(db)) != SQLITE_OK)
        return rc;
    return exec(db, "INSERT INTO main.baselines (name, run_id) SELECT b.name, m.dst FROM src.baselines b"
                    " JOIN temp.idmap m ON m.src = b.run_id WHERE true ON CONFLICT (name) DO NOTHING");
}

mlc_status mlc_store_merge_file(mlc_store *out, const char *in_path, int64_t *added, int64_t *skipped,
                                mlc_err *err)
{
    mlc_store *in = NULL;
    mlc_status st = mlc_store_open(in_path, &in, err);
    mlc_store_close(in);
    if (st)
        return st;
    if ((st = mlc_store_flush(out, err)))
        return st;
    sqlite3 *db = mlc_store_db(out);
    const char *args[] = {in_path};
    if (exec(db, "CREATE TEMP TABLE IF NOT EXISTS merge_groups (id TEXT PRIMARY KEY)") != SQLITE_OK ||
        run_sql(db, "ATTACH ?1 AS src", 1, args) != SQLITE_OK)
        return sql_err(out, err, "attaching the input");
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        st = sql_err(out, err, "locking for the merge");
        goto detach;
    }
    int64_t before = query_i64(db, "SELECT coalesce(max(id), 0) FROM main.runs", NULL);
    int64_t total = query_i64(db, "SELECT count(*) FROM src.runs", NULL);
    if (before < 0 || total < 0 || copy_runs(db, before) != SQLITE_OK) {
        st = mlc_err_set(err, MLC_ERR_IO, "%s: merging %s: %s", mlc_store_path(out), in_path, sqlite3_errmsg(db));
        exec(db, "ROLLBACK");
        goto detach;
    }
    *added = query_i64(db, "SELECT count(*) FROM temp.idmap", NULL);
    *skipped = total - *added;
    if (exec(db, "COMMIT") != SQLITE_OK) {
        st = sql_err(out, err, "committing the merge");
        exec(db, "ROLLBACK");
    }
detach:
    exec(db, "DETACH src");
    return st;
}

mlc_status mlc_store_touched_groups(mlc_store *s, mlc_shard_group_fn fn, void *ctx, mlc_err *err)
{
    sqlite3 *db = mlc_store_db(s);
    sqlite3_stmt *q = NULL;
    mlc_shard_group *g = NULL;
    size_t n = 0, cap = 0;
    mlc_status st = MLC_OK;
    /* Collected first: the callback writes runs. */
    if (exec(db, "CREATE TEMP TABLE IF NOT EXISTS merge_groups (id TEXT PRIMARY KEY)") != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT g.id, max(r.shard_count), count(DISTINCT r.shard_index),"
                           " count(DISTINCT CASE WHEN r.status = 'complete' THEN r.shard_index END)"
                           " FROM temp.merge_groups g JOIN main.runs r ON r.run_group = g.id AND"
                           " r.shard_index IS NOT NULL GROUP BY g.id ORDER BY g.id",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_err(s, err, "listing shard groups");
        goto out;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            mlc_shard_group *ng = realloc(g, (cap = cap ? 2 * cap : 8) * sizeof *g);
            if (!ng) {
                st = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
                goto out;
            }
            g = ng;
        }
        g[n] = (mlc_shard_group){.id = strdup((const char *)sqlite3_column_text(q, 0)),
                                 .shard_count = sqlite3_column_int(q, 1), .present = sqlite3_column_int(q, 2),
                                 .complete = sqlite3_column_int(q, 3)};
        if (!g[n++].id) {
            st = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    sqlite3_finalize(q);
    q = NULL;
    for (size_t i = 0; i < n && !st; i++)
        st = fn(ctx, &g[i], err);
    if (!st)
        exec(db, "DELETE FROM temp.merge_groups");
out:
    sqlite3_finalize(q);
    for (size_t i = 0; i < n; i++)
        free((char *)g[i].id);
    free(g);
    return st;
}

/* The shard runs of group ?1 that count: the latest run of each shard index. */
#define SHARD_RUNS "SELECT max(id) FROM main.runs WHERE run_group = ?1 AND shard_index IS NOT NULL GROUP BY shard_index"

static int group_rows(sqlite3 *db, const mlc_shard_group *g, const char *uuid, int64_t *lid)
{
    const char *args[] = {g->id, uuid};
    int rc = SQLITE_OK;
    *lid = query_i64(db, "SELECT id FROM main.runs WHERE uuid = ?1", uuid);
    if (*lid > 0) {
        for (size_t t = 0; t < sizeof run_tables / sizeof run_tables[0] && rc == SQLITE_OK; t++) {
            char sql[96];
            snprintf(sql, sizeof sql, "DELETE FROM main.%s WHERE run_id = %" PRId64, run_tables[t], *lid);
            rc = exec(db, sql);
        }
    } else {
        rc = run_sql(db,
                     "INSERT INTO main.runs (" RUN_COLS ", fingerprint_id, uuid, run_group) SELECT " RUN_COLS
                     ", fingerprint_id, ?2, ?1 FROM main.runs WHERE id IN (" SHARD_RUNS ")"
                     " ORDER BY shard_index LIMIT 1", 2, args);
        *lid = sqlite3_last_insert_rowid(db);
    }
    if (rc != SQLITE_OK)
        return rc;
    char sql[2400], lids[32], ns[16], ps[4];
    snprintf(lids, sizeof lids, "%" PRId64, *lid);
    snprintf(ns, sizeof ns, "%d", g->shard_count);
    bool partial = g->present < g->shard_count || g->complete < g->present;
    snprintf(ps, sizeof ps, "%d", partial);
    const char *uargs[] = {g->id, lids, ns, ps, partial ? "interrupted" : "complete"};
    rc = run_sql(db,
                 "UPDATE main.runs SET shard_index = NULL, shard_count = ?3, partial = ?4, status = ?5,"
                 " started = (SELECT min(started) FROM main.runs WHERE id IN (" SHARD_RUNS ")),"
                 " finished = (SELECT max(finished) FROM main.runs WHERE id IN (" SHARD_RUNS "))"
                 " WHERE id = ?2", 5, uargs);
    char cols[1024];
    if (rc == SQLITE_OK)
        rc = table_cols(db, "requests", "", cols, sizeof cols);
    if (rc != SQLITE_OK)
        return rc;
    snprintf(sql, sizeof sql,
             "INSERT INTO main.requests (run_id, %s) SELECT ?2, %s FROM main.requests WHERE run_id IN ("
             SHARD_RUNS ") ORDER BY idx, run_id", cols, cols);
    return run_sql(db, sql, 2, uargs);
}

mlc_status mlc_store_group_run(mlc_store *s, const mlc_shard_group *g, int64_t *run_id, char **config,
                               mlc_err *err)
{
    sqlite3 *db = mlc_store_db(s);
    char uuid[300];
    snprintf(uuid, sizeof uuid, "group-%s", g->id);
    *config = NULL;
    mlc_status st = mlc_store_flush(s, err);
    if (st)
        return st;
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return sql_err(s, err, "locking for the group run");
    if (group_rows(db, g, uuid, run_id) != SQLITE_OK) {
        st = mlc_err_set(err, MLC_ERR_IO, "%s: group %s: %s", mlc_store_path(s), g->id, sqlite3_errmsg(db));
        exec(db, "ROLLBACK");
        return st;
    }
    if (exec(db, "COMMIT") != SQLITE_OK) {
        st = sql_err(s, err, "committing the group run");
        exec(db, "ROLLBACK");
        return st;
    }
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT config FROM runs WHERE id = ?1", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, *run_id);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
            *config = strdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    return MLC_OK;
}

/* Little-endian float32 gaps of a blob. */
static float *decode_itl(const void *blob, int bytes, int32_t *n)
{
    const unsigned char *b = blob;
    *n = bytes > 0 ? bytes / 4 : 0;
    float *f = malloc(((size_t)*n + 1) * sizeof *f);
    for (int32_t i = 0; f && i < *n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                     (uint32_t)b[4 * i + 3] << 24;
        memcpy(&f[i], &u, sizeof u);
    }
    return f;
}

void mlc_store_free_times(mlc_req_times *t, int64_t n)
{
    for (int64_t i = 0; t && i < n; i++)
        free(t[i].itl_ms);
    free(t);
}

static double col_real(sqlite3_stmt *q, int i, double none)
{
    return sqlite3_column_type(q, i) == SQLITE_NULL ? none : sqlite3_column_double(q, i);
}

mlc_status mlc_store_read_times(mlc_store *s, int64_t run_id, int phase, mlc_req_times **out, int64_t *n,
                                mlc_err *err)
{
    sqlite3 *db = mlc_store_db(s);
    sqlite3_stmt *q = NULL;
    mlc_req_times *t = NULL;
    int64_t len = 0, cap = 0;
    mlc_status st = mlc_store_flush(s, err);
    if (st)
        return st;
    if (sqlite3_prepare_v2(db, "SELECT scheduled, sent, first_token, done, ok, error_kind, input_tokens,"
                               " output_tokens, tokens_approx, itl FROM requests WHERE run_id = ?1 AND phase = ?2"
                               " ORDER BY idx", -1, &q, NULL) != SQLITE_OK)
        return sql_err(s, err, "reading requests");
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_int(q, 2, phase);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (len == cap) {
            mlc_req_times *nt = realloc(t, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *t);
            if (!nt)
                goto nomem;
            t = nt;
        }
        mlc_req_times *r = &t[len];
        memset(r, 0, sizeof *r);
        r->scheduled = col_real(q, 0, 0);
        r->sent = col_real(q, 1, 0);
        r->first_token = col_real(q, 2, -1);
        r->done = col_real(q, 3, 0);
        r->ok = sqlite3_column_int(q, 4) != 0;
        if (sqlite3_column_text(q, 5)) {
            snprintf(r->error, sizeof r->error, "%s", (const char *)sqlite3_column_text(q, 5));
            r->error_kind = r->error;
        }
        r->input_tokens = sqlite3_column_int64(q, 6);
        r->output_tokens = sqlite3_column_int64(q, 7);
        r->tokens_approx = sqlite3_column_int(q, 8) != 0;
        r->itl_ms = decode_itl(sqlite3_column_blob(q, 9), sqlite3_column_bytes(q, 9), &r->n_itl);
        len++;
        if (!r->itl_ms)
            goto nomem;
        r->cap_itl = r->n_itl;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        mlc_store_free_times(t, len);
        return sql_err(s, err, "reading requests");
    }
    /* error_kind points into the element itself: valid now that the array no longer moves. */
    for (int64_t i = 0; i < len; i++)
        if (t[i].error_kind)
            t[i].error_kind = t[i].error;
    *out = t;
    *n = len;
    return MLC_OK;
nomem:
    sqlite3_finalize(q);
    mlc_store_free_times(t, len);
    return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
}

mlc_status mlc_store_resolve_run(mlc_store *s, const char *ref, int64_t *run_id, mlc_err *err)
{
    sqlite3 *db = mlc_store_db(s);
    size_t digits = strspn(ref, "0123456789");
    if (!strcmp(ref, "latest"))
        *run_id = query_i64(db, "SELECT max(id) FROM runs", NULL);
    else if (digits && !ref[digits])
        *run_id = query_i64(db, "SELECT id FROM runs WHERE id = ?1", ref);
    else
        *run_id = query_i64(db, "SELECT id FROM runs WHERE uuid = ?1", ref);
    if (*run_id <= 0)
        return mlc_err_set(err, MLC_ERR_NOT_FOUND, "%s: no run '%s' (an id, a UUID or latest)", mlc_store_path(s),
                           ref);
    return MLC_OK;
}

void mlc_store_file_info(mlc_store *s, int64_t *version, int64_t *bytes)
{
    sqlite3 *db = mlc_store_db(s);
    *version = query_i64(db, "PRAGMA main.user_version", NULL);
    *bytes = query_i64(db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", NULL);
}

mlc_status mlc_store_run_counts(mlc_store *s, mlc_store_count_fn fn, void *ctx, mlc_err *err)
{
    sqlite3 *db = mlc_store_db(s);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT kind, status, count(*) FROM runs GROUP BY kind, status ORDER BY kind, status",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_err(s, err, "counting runs");
    while (sqlite3_step(q) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
           sqlite3_column_int64(q, 2));
    sqlite3_finalize(q);
    return MLC_OK;
}

/* One row's cells; ITL blobs decoded into floats owned by *itl (freed by the caller). */
static void row_cells(sqlite3_stmt *q, mlc_cell *c, int n, float **itl)
{
    for (int i = 0; i < n; i++) {
        c[i] = (mlc_cell){.name = sqlite3_column_name(q, i)};
        switch (sqlite3_column_type(q, i)) {
        case SQLITE_INTEGER: c[i].type = MLC_CELL_INT; c[i].i = sqlite3_column_int64(q, i); break;
        case SQLITE_FLOAT: c[i].type = MLC_CELL_REAL; c[i].d = sqlite3_column_double(q, i); break;
        case SQLITE_TEXT: c[i].type = MLC_CELL_TEXT; c[i].text = (const char *)sqlite3_column_text(q, i); break;
        case SQLITE_BLOB:
            c[i].type = MLC_CELL_FLOATS;
            c[i].f = *itl = decode_itl(sqlite3_column_blob(q, i), sqlite3_column_bytes(q, i), &c[i].nf);
            break;
        default: c[i].type = MLC_CELL_NULL;
        }
    }
}

mlc_status mlc_store_export_rows(mlc_store *s, const char *table, int64_t run_id, mlc_row_fn fn, void *ctx,
                                 mlc_err *err)
{
    if (strcmp(table, "requests") && strcmp(table, "metrics") && strcmp(table, "samples"))
        return mlc_err_set(err, MLC_ERR_ARG, "db export: --table %s: not requests, metrics or samples", table);
    sqlite3 *db = mlc_store_db(s);
    char sql[1400], cols[1024];
    mlc_status st = mlc_store_flush(s, err);
    if (st)
        return st;
    if (table_cols(db, table, "x.", cols, sizeof cols) != SQLITE_OK)
        return sql_err(s, err, "reading the table's columns");
    snprintf(sql, sizeof sql, "SELECT x.run_id, r.uuid AS run_uuid, %s FROM %s x JOIN runs r ON r.id = x.run_id"
             " WHERE ?1 <= 0 OR x.run_id = ?1 ORDER BY x.run_id, x.rowid", cols, table);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return sql_err(s, err, "reading the table");
    sqlite3_bind_int64(q, 1, run_id);
    int n = sqlite3_column_count(q), rc = SQLITE_DONE;
    mlc_cell *c = calloc((size_t)n, sizeof *c);
    if (!c) {
        sqlite3_finalize(q);
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    }
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        float *itl = NULL;
        row_cells(q, c, n, &itl);
        st = fn(ctx, c, n, err);
        free(itl);
    }
    if (!st && rc != SQLITE_DONE)
        st = sql_err(s, err, "reading the table");
    free(c);
    sqlite3_finalize(q);
    return st;
}
