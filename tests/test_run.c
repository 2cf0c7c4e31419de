/* test_run.c: `mlc-bench run` end to end: the binary against the in-process test server
 * (timings, every failure mode, crash and interrupt safety of the store) and against the
 * local engine (same tokens as `generate`). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testserver.h"
#include "util.h"

static const char *write_dataset(const char *name, const char *const *prompts, int n, int max_tokens)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"prompt\": \"%s\", \"max_tokens\": %d}\n", prompts[i], max_tokens);
    fclose(f);
    return path;
}

static char *db_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* One integer from a query on the database. */
static long long db_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", db);
    /* The run under test may hold a write lock for a moment (WAL set-up, a batch commit). */
    sqlite3_busy_timeout(h, 10000);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* The same without assertions: -1 while the database is not there yet or has no schema. */
static long long db_try_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 1000);
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

static void expect_integrity(const char *db)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static cJSON *read_json(const char *path)
{
    char *s = tu_read_file(path, NULL);
    cr_assert_not_null(s, "%s", path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "no number '%s'", k);
    return v->valuedouble;
}

static const char *const words[] = {"alpha beta", "gamma delta epsilon", "zeta", "eta theta iota kappa"};

Test(run, endpoint_timings_and_json, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 8, .ttft_ms = 30, .itl_ms = 5};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("basic.jsonl", words, 4, 8);
    char cmd[8192], json[1024], *out;
    snprintf(json, sizeof json, "%s/basic.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --concurrency 1,4 "
             "--num-prompts 8 --db %s --json %s --quiet", tu_bin(), ts_port(srv), ds, db_path("basic.db"), json);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    cJSON *j = read_json(json);
    cr_assert_eq(cJSON_GetArraySize(j), 2);
    for (int p = 0; p < 2; p++) {
        const cJSON *ph = cJSON_GetArrayItem(j, p);
        cr_expect_eq(num(ph, "completed"), 8);
        cr_expect_eq(num(ph, "failed"), 0);
        cr_expect_eq(num(ph, "total_output_tokens"), 64, "usage is exact");
        /* Wiring check only (the client tests hold TTFT to 1-2 ms): tests run in parallel. */
        cr_expect(num(ph, "median_ttft_ms") >= 30 && num(ph, "median_ttft_ms") < 36, "ttft %f",
                  num(ph, "median_ttft_ms"));
        cr_expect(fabs(num(ph, "median_itl_ms") - 5) < 1, "itl %f",
                  num(ph, "median_itl_ms"));
        cr_expect_gt(num(ph, "request_throughput"), 0);
    }
    cr_expect_eq(num(cJSON_GetArrayItem(j, 1), "max_concurrency"), 4);
    cJSON_Delete(j);
    const char *db = db_path("basic.db");
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests"), 16);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
    cr_expect_gt(db_int(db, "SELECT count(*) FROM metrics WHERE name = 'c=4/ttft_ms' AND stat = 'p99'"), 0);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM samples WHERE metric = 'c=1/ttft_ms'"), 8);
    expect_integrity(db);
    ts_stop(srv);
}

/* Every failure mode: the failing requests are recorded with their kind, the others
 * complete, the process exits normally and the database is sound. */
static void fault_case(ts_fault fault, const char *extra, const char *kind, const char *name)
{
    ts_config cfg = {.n_tokens = 6, .itl_ms = 1, .fault = fault, .fault_after = 2, .fault_match = "BAD"};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *prompts[] = {"fine one", "BAD two", "fine three", "BAD four"};
    char file[64], dbn[64], cmd[2048], *out;
    snprintf(file, sizeof file, "%s.jsonl", name);
    snprintf(dbn, sizeof dbn, "%s.db", name);
    const char *ds = write_dataset(file, prompts, 4, 6);
    const char *db = db_path(dbn);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --concurrency 2 "
             "--num-prompts 4 --db %s --quiet %s", tu_bin(), ts_port(srv), ds, db, extra);
    int rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 0, "%s: exit %d: %s", name, rc, out);
    free(out);
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM requests WHERE ok = 0 AND error_kind = '%s'", kind);
    cr_expect_eq(db_int(db, q), 2, "%s: failures of kind %s", name, kind);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE ok = 1"), 2, "%s", name);
    expect_integrity(db);
    ts_stop(srv);
}

Test(run, fault_http_429, .timeout = 30) { fault_case(TS_FAULT_HTTP_429, "", "http", "f429"); }
Test(run, fault_http_500, .timeout = 30) { fault_case(TS_FAULT_HTTP_500, "", "http", "f500"); }
Test(run, fault_disconnect, .timeout = 30) { fault_case(TS_FAULT_DISCONNECT, "", "disconnect", "fdis"); }
Test(run, fault_invalid_json, .timeout = 30) { fault_case(TS_FAULT_INVALID_JSON, "", "protocol", "fjson"); }
Test(run, fault_oversized_sse, .timeout = 30) { fault_case(TS_FAULT_OVERSIZED, "", "protocol", "fbig"); }
Test(run, fault_stall_timeout, .timeout = 30) { fault_case(TS_FAULT_STALL, "--timeout 1", "timeout", "fstall"); }

Test(run, missing_usage_counts_with_tokenizer, .timeout = 30)
{
    ts_config cfg = {.n_tokens = 5, .fault = TS_FAULT_NO_USAGE};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("nousage.jsonl", words, 4, 5);
    char cmd[8192], json[1024], *out;
    snprintf(json, sizeof json, "%s/nousage.json", tu_tmpdir());
    /* Without usage or a tokenizer, counts are marked approximate. */
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --num-prompts 4 "
             "--db %s --json %s --quiet", tu_bin(), ts_port(srv), ds, db_path("nousage.db"), json);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    cJSON *j = read_json(json);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "tokens_approximate")));
    cJSON_Delete(j);
    cr_expect_eq(db_int(db_path("nousage.db"), "SELECT count(*) FROM requests WHERE tokens_approx = 1"), 4);
    ts_stop(srv);
}

Test(run, connection_refused, .timeout = 30)
{
    const char *ds = write_dataset("refused.jsonl", words, 4, 4);
    char cmd[8192], *out;
    const char *db = db_path("refused.db");
    /* Port 1 on loopback: nothing listens there. */
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:1 --dataset %s --num-prompts 4 --db %s --quiet",
             tu_bin(), ds, db);
    cr_expect_eq(tu_run(cmd, &out), 1, "no request can succeed: exit 1: %s", out);
    free(out);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE error_kind = 'connect'"), 4);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'failed'"), 1);
    expect_integrity(db);
}

/* Starts the binary in the background against a slow server; returns its pid. */
static pid_t spawn_run(const char *ds, const char *db, int port)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(tu_bin(), tu_bin(), "run", "--endpoint", url, "--dataset", ds, "--concurrency", "8",
              "--num-prompts", "100000", "--db", db, "--quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void wait_for_requests(const char *db, long long n)
{
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (access(db, R_OK) == 0 && db_try_int(db, "SELECT count(*) FROM requests") >= n)
            return;
    }
    cr_assert_fail("fewer than %lld requests stored after 10 s", n);
}

Test(run, kill9_keeps_committed_batches, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 3, .itl_ms = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("kill.jsonl", words, 4, 3);
    const char *db = db_path("kill.db");
    pid_t pid = spawn_run(ds, db, ts_port(srv));
    wait_for_requests(db, 128);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFSIGNALED(st));
    expect_integrity(db);
    long long n = db_int(db, "SELECT count(*) FROM requests");
    cr_expect_geq(n, 128);
    cr_expect_eq(n % 64, 0, "whole batches only: %lld", n);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    ts_stop(srv);
}

Test(run, sigint_saves_and_marks_interrupted, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 3, .itl_ms = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("int.jsonl", words, 4, 3);
    const char *db = db_path("int.db");
    pid_t pid = spawn_run(ds, db, ts_port(srv));
    wait_for_requests(db, 64);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d", WEXITSTATUS(st));
    expect_integrity(db);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'"), 1);
    /* Everything that finished was saved, not just whole batches. */
    long long n = db_int(db, "SELECT count(*) FROM requests");
    cr_expect_gt(n, 64);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE ok = 1"), n, "interrupted requests are not recorded as failures");
    ts_stop(srv);
}

Test(run, local_greedy_equals_generate, .timeout = 120)
{
    char model[1024];
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    const char *prompts[] = {"The quick brown fox", "Benchmarks measure"};
    const char *ds = write_dataset("local.jsonl", prompts, 2, 8);
    char cmd[8192], outputs[1024], *out;
    snprintf(outputs, sizeof outputs, "%s/local.out.jsonl", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --model %s --dataset %s --concurrency 2 --db %s --outputs %s --quiet",
             tu_bin(), model, ds, db_path("local.db"), outputs);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    char *lines = tu_read_file(outputs, NULL);
    cr_assert_not_null(lines);
    char *save = NULL;
    for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o);
        int idx = (int)num(o, "idx");
        char *ids = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "token_ids"));
        snprintf(cmd, sizeof cmd, "%s generate -m %s -p '%s' -n 8 --ids 2>/dev/null", tu_bin(), model, prompts[idx % 2]);
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        /* generate prints "generated: [a, b, ...]"; the JSON array has no spaces. */
        char want[512] = "", *g = strstr(out, "generated: [");
        cr_assert_not_null(g, "%s", out);
        for (char *s = g + 11, *w = want; *s && *s != '\n'; s++)
            if (*s != ' ')
                *w++ = *s, *w = 0;
        cr_expect(!strcmp(ids, want), "prompt %d: run %s, generate %s", idx, ids, want);
        free(out);
        free(ids);
        cJSON_Delete(o);
    }
    free(lines);
}

Test(run, usage_errors)
{
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s run --concurrency 2", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "either --model"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://x --rate abc", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    free(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.jsonl", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "{\"prompt\": \"ok\"}\n{oops\n", 23), 0);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:1 --dataset %s --db %s", tu_bin(), path,
             db_path("bad.db"));
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "bad.jsonl:2:"), "%s", out);
    free(out);
}
