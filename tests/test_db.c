/* tests/test_db.c: `mlc-bench db` (bench/db.c, bench/store_merge.c) on stores written through
 * the store API: export round-trips (requests exported as JSON lines and read back give the
 * aggregates the store holds), CSV quoting and shape, info, run references, merging
 * (idempotent, ids remapped, UUIDs kept, baselines carried), and the v4 -> v5 migration. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/db.h"
#include "../bench/metrics.h"
#include "../bench/store.h"
#include "../bench/store_merge.h"
#include "util.h"

static const char *tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tu_tmpdir(), name);
    return out;
}

/* A stored run of n requests at one load point "c=4" with deterministic, distinct times and
 * ITL gaps; every 7th fails (kind "http", a message with a comma and a quote). Its aggregates
 * are computed by mlc_db_aggregate. Returns the run id. */
static int64_t make_run(mlc_store *s, int n, double scale, const char *label)
{
    mlc_err err = {0};
    int64_t id = 0;
    mlc_run_info ri = {.kind = "run", .label = label, .target = "endpoint",
                       .config_json = "{\"load\":[\"c=4\"],\"slo\":\"ttft=50\"}"};
    cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK, "%s", err.msg);
    for (int i = 0; i < n; i++) {
        float itl[5];
        for (int k = 0; k < 5; k++)
            itl[k] = (float)(scale * (1 + 0.37 * ((i * 5 + k) % 11)));
        double sent = 0.01 * i + 0.001;
        mlc_request_record r = {.idx = i, .phase = 0, .scheduled = 0.01 * i, .sent = sent,
                                .first_token = sent + scale * 0.001 * (10 + (i * 13) % 17),
                                .ok = i % 7 != 3, .input_tokens = 8, .output_tokens = 6, .itl_ms = itl, .n_itl = 5,
                                .http_status = 200};
        r.done = r.first_token + scale * 0.001 * (5 + (i * 3) % 5);
        if (!r.ok) {
            r.error_kind = "http";
            r.error = "bad, \"quoted\" reason";
            r.http_status = 500;
            r.n_itl = 0;
        }
        cr_assert_eq(mlc_store_add_request(s, id, &r, &err), MLC_OK, "%s", err.msg);
    }
    cr_assert_eq(mlc_db_aggregate(s, id, ri.config_json, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    return id;
}

static double metric(mlc_store *s, int64_t run, const char *name, const char *stat)
{
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(mlc_store_db(s), "SELECT value FROM metrics WHERE run_id = ?1 AND name = ?2"
                                    " AND stat = ?3", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, stat, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "no metric %s %s", name, stat);
    double v = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return v;
}

static int64_t count(mlc_store *s, const char *sql)
{
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(mlc_store_db(s), sql, -1, &q, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static mlc_store *open_ok(const char *path)
{
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(path, &s, &err), MLC_OK, "%s", err.msg);
    return s;
}

/* Reads exported JSON lines back into request records. */
static mlc_req_times *read_jsonl(const char *path, int64_t *n)
{
    char *text = tu_read_file(path, NULL);
    cr_assert_not_null(text, "%s", path);
    mlc_req_times *t = calloc(4096, sizeof *t);
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "not JSON: %s", line);
        mlc_req_times *r = &t[(*n)++];
        r->scheduled = cJSON_GetObjectItem(o, "scheduled")->valuedouble;
        r->sent = cJSON_GetObjectItem(o, "sent")->valuedouble;
        cJSON *ft = cJSON_GetObjectItem(o, "first_token");
        r->first_token = cJSON_IsNumber(ft) ? ft->valuedouble : -1;
        r->done = cJSON_GetObjectItem(o, "done")->valuedouble;
        r->ok = cJSON_GetObjectItem(o, "ok")->valueint == 1;
        cJSON *ek = cJSON_GetObjectItem(o, "error_kind");
        if (cJSON_IsString(ek)) {
            snprintf(r->error, sizeof r->error, "%s", ek->valuestring);
            r->error_kind = r->error;
        }
        r->input_tokens = cJSON_GetObjectItem(o, "input_tokens")->valueint;
        r->output_tokens = cJSON_GetObjectItem(o, "output_tokens")->valueint;
        cJSON *itl = cJSON_GetObjectItem(o, "itl");
        int k = cJSON_IsArray(itl) ? cJSON_GetArraySize(itl) : 0;
        r->itl_ms = calloc((size_t)k + 1, sizeof *r->itl_ms);
        for (int j = 0; j < k; j++)
            r->itl_ms[j] = (float)cJSON_GetArrayItem(itl, j)->valuedouble;
        r->n_itl = k;
        cJSON_Delete(o);
    }
    free(text);
    return t;
}

Test(db, export_jsonl_round_trips_the_aggregates)
{
    char db[1024], out[1024], cmd[4096];
    mlc_store *s = open_ok(tmp_path(db, sizeof db, "rt.db"));
    int64_t id = make_run(s, 200, 1.0, "rt");
    snprintf(cmd, sizeof cmd, "%s db export --db %s --run %lld --format jsonl -o %s", tu_bin(), db, (long long)id,
             tmp_path(out, sizeof out, "rt.jsonl"));
    char *o = NULL;
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    free(o);
    int64_t n = 0;
    mlc_req_times *t = read_jsonl(out, &n);
    cr_expect_eq(n, 200);
    mlc_phase_metrics m;
    mlc_slo slo = {.ttft_ms = 50};
    mlc_metrics_compute(t, n, &slo, &m);
    /* Same records, same arithmetic: equal to the last bit (JSON keeps 17 digits). */
    cr_expect_eq(m.ttft_ms.p99, metric(s, id, "c=4/ttft_ms", "p99"));
    cr_expect_eq(m.ttft_ms.median, metric(s, id, "c=4/ttft_ms", "median"));
    cr_expect_eq(m.e2el_ms.p90, metric(s, id, "c=4/e2el_ms", "p90"));
    cr_expect_eq(m.itl_ms.p99, metric(s, id, "c=4/itl_ms", "p99"));
    cr_expect_eq(m.tpot_ms.mean, metric(s, id, "c=4/tpot_ms", "mean"));
    cr_expect_eq(m.request_throughput, metric(s, id, "c=4/request_throughput", "value"));
    cr_expect_eq(m.goodput, metric(s, id, "c=4/request_goodput", "value"));
    cr_expect_eq((double)m.failed, metric(s, id, "c=4/failed", "value"));
    cr_expect_eq(m.failed, 29); /* i % 7 == 3 for i < 200 */
    mlc_store_free_times(t, n);
    mlc_store_close(s);
}

Test(db, export_csv_quotes_and_lists)
{
    char db[1024], cmd[4096];
    mlc_store *s = open_ok(tmp_path(db, sizeof db, "csv.db"));
    make_run(s, 10, 1.0, "csv");
    mlc_store_close(s);
    snprintf(cmd, sizeof cmd, "%s db export --db %s --format csv", tu_bin(), db);
    char *o = NULL;
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    static const char head[] = "run_id,run_uuid,idx,phase,scheduled,sent,first_token,done,ok,error_kind,error,";
    cr_expect(!strncmp(o, head, strlen(head)), "%s", o);
    cr_expect(strstr(o, ",http,\"bad, \"\"quoted\"\" reason\","), "%s", o);
    int lines = 0;
    for (const char *p = o; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 11, "header and 10 rows: %s", o);
    /* The first request's five gaps, space-separated. */
    cr_expect(strstr(o, ",1 1.37 1.74000001 2.1099999 2.48000002,"), "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "%s db export --db %s --table samples --format jsonl --run latest", tu_bin(), db);
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    cr_expect(strstr(o, "\"metric\":\"c=4/ttft_ms\""), "%s", o);
    free(o);
}

Test(db, bad_arguments_are_named)
{
    char db[1024], cmd[4096];
    mlc_store *s = open_ok(tmp_path(db, sizeof db, "bad.db"));
    make_run(s, 3, 1.0, "bad");
    mlc_store_close(s);
    const struct {
        const char *args, *says;
        int rc;
    } cases[] = {
        {"export --format xml", "--format: expected jsonl or csv, got xml", 2},
        {"export --table runs", "--table: expected requests, metrics or samples, got runs", 2},
        {"export --run 99", "no run '99'", 1},
        {"export --run nope", "no run 'nope'", 1},
        {"export --run", "missing the value of --run", 2},
        {"info --table x", "unknown option --table", 2},
        {"frob", "unknown subcommand frob", 2},
        {"merge only.db", "expected OUT.db and at least one IN.db", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = NULL;
        const char *rest = strchr(cases[i].args, ' ');
        int sub = rest ? (int)(rest - cases[i].args) : (int)strlen(cases[i].args);
        snprintf(cmd, sizeof cmd, "%s db %.*s --db %s%s", tu_bin(), sub, cases[i].args, db, rest ? rest : "");
        if (!strncmp(cases[i].args, "merge", 5))
            snprintf(cmd, sizeof cmd, "%s db %s", tu_bin(), cases[i].args);
        cr_expect_eq(tu_run(cmd, &o), cases[i].rc, "%s: %s", cmd, o);
        cr_expect(strstr(o, cases[i].says), "%s: %s", cmd, o);
        free(o);
    }
    char *o = NULL;
    snprintf(cmd, sizeof cmd, "%s db info --db %s/missing.db", tu_bin(), tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &o), 1, "%s", o);
    cr_expect(strstr(o, "missing.db: no such file"), "%s", o);
    free(o);
}

Test(db, info_counts_runs)
{
    char db[1024], cmd[4096];
    mlc_store *s = open_ok(tmp_path(db, sizeof db, "info.db"));
    make_run(s, 3, 1.0, "a");
    make_run(s, 3, 1.0, "b");
    mlc_err err = {0};
    int64_t id;
    mlc_run_info ri = {.kind = "micro"};
    cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK);
    mlc_store_close(s);
    snprintf(cmd, sizeof cmd, "%s db info --db %s", tu_bin(), db);
    char *o = NULL;
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    char want[64];
    snprintf(want, sizeof want, "schema version: %d (", mlc_store_schema_version());
    cr_expect(strstr(o, want), "%s", o);
    cr_expect(strstr(o, "  micro        running      1\n"), "%s", o);
    cr_expect(strstr(o, "  run          complete     2\n"), "%s", o);
    cr_expect(strstr(o, "size: "), "%s", o);
    free(o);
}

Test(db, merge_is_idempotent_and_remaps_ids)
{
    char a[1024], b[1024], out[1024];
    mlc_store *sa = open_ok(tmp_path(a, sizeof a, "ma.db"));
    mlc_store *sb = open_ok(tmp_path(b, sizeof b, "mb.db"));
    make_run(sa, 20, 1.0, "a1");
    make_run(sa, 20, 2.0, "a2");
    make_run(sb, 30, 3.0, "b1");
    cr_assert_eq(sqlite3_exec(mlc_store_db(sb), "INSERT INTO baselines VALUES ('nightly', 1)", NULL, NULL, NULL),
                 SQLITE_OK);
    mlc_store_close(sa);
    mlc_store_close(sb);
    mlc_store *so = open_ok(tmp_path(out, sizeof out, "mo.db"));
    mlc_err err = {0};
    int64_t added = 0, skipped = 0;
    cr_assert_eq(mlc_store_merge_file(so, a, &added, &skipped, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(added, 2);
    cr_assert_eq(mlc_store_merge_file(so, b, &added, &skipped, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(added, 1);
    const char *q[] = {"SELECT count(*) FROM runs", "SELECT count(*) FROM requests", "SELECT count(*) FROM metrics",
                       "SELECT count(*) FROM samples", "SELECT count(*) FROM fingerprints",
                       "SELECT count(*) FROM baselines", "SELECT total(value) FROM metrics"};
    int64_t before[7];
    for (int i = 0; i < 7; i++)
        before[i] = count(so, q[i]);
    cr_expect_eq(before[0], 3);
    cr_expect_eq(before[1], 70);
    cr_expect_eq(before[5], 1);
    /* b's run 1 became run 3; its baseline followed it. */
    cr_expect_eq(count(so, "SELECT run_id FROM baselines WHERE name = 'nightly'"), 3);
    cr_expect_eq(count(so, "SELECT count(*) FROM requests WHERE run_id = 3"), 30);
    for (int rep = 0; rep < 2; rep++) {
        cr_assert_eq(mlc_store_merge_file(so, b, &added, &skipped, &err), MLC_OK, "%s", err.msg);
        cr_expect_eq(added, 0);
        cr_expect_eq(skipped, 1);
        cr_assert_eq(mlc_store_merge_file(so, a, &added, &skipped, &err), MLC_OK, "%s", err.msg);
        cr_expect_eq(added, 0);
    }
    for (int i = 0; i < 7; i++)
        cr_expect_eq(count(so, q[i]), before[i], "%s", q[i]);
    /* UUIDs kept: the same in the source and in the merged store. */
    sb = open_ok(b);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(mlc_store_db(sb), "SELECT uuid FROM runs WHERE id = 1", -1, &st, NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t rid = 0;
    cr_expect_eq(mlc_store_resolve_run(so, (const char *)sqlite3_column_text(st, 0), &rid, &err), MLC_OK);
    cr_expect_eq(rid, 3);
    cr_expect_eq(strlen((const char *)sqlite3_column_text(st, 0)), 32);
    sqlite3_finalize(st);
    mlc_store_close(sb);
    mlc_store_close(so);
}

Test(db, v4_store_migrates_with_uuids)
{
    char path[1024];
    mlc_store *s = open_ok(tmp_path(path, sizeof path, "v4.db"));
    make_run(s, 3, 1.0, "old");
    make_run(s, 3, 1.0, "old2");
    /* Back to a v4 file: the v5 columns dropped. */
    cr_assert_eq(sqlite3_exec(mlc_store_db(s),
                              "DROP INDEX runs_uuid; DROP INDEX runs_group; ALTER TABLE runs DROP COLUMN uuid;"
                              "ALTER TABLE runs DROP COLUMN run_group; ALTER TABLE runs DROP COLUMN shard_index;"
                              "ALTER TABLE runs DROP COLUMN shard_count; ALTER TABLE runs DROP COLUMN partial;"
                              "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(mlc_store_db(s)));
    mlc_store_close(s);
    /* Read-only: the v5 columns read as NULL. */
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open_readonly(path, &s, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(count(s, "SELECT count(*) FROM runs WHERE uuid IS NULL AND partial IS NULL"), 2);
    mlc_store_close(s);
    s = open_ok(path);
    cr_expect_eq(count(s, "PRAGMA user_version"), mlc_store_schema_version());
    cr_expect_eq(count(s, "SELECT count(DISTINCT uuid) FROM runs WHERE length(uuid) = 32"), 2);
    mlc_store_close(s);
}
