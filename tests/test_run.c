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
    ts_config cfg = {.n_tokens = 8, .ttft_ms = 60, .itl_ms = 20};
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
        /* Wiring check only (the client tests hold TTFT to 1-2 ms): each median is told
         * apart from the others' values (TTFT 60, ITL 20, a whole request 200 ms, 0 for a
         * timestamp taken twice) with 25 ms or more to spare either way: tests run in
         * parallel on a busy machine. */
        cr_expect(num(ph, "median_ttft_ms") >= 35 && num(ph, "median_ttft_ms") < 130, "ttft %f",
                  num(ph, "median_ttft_ms"));
        cr_expect(num(ph, "median_itl_ms") >= 10 && num(ph, "median_itl_ms") < 40, "itl %f",
                  num(ph, "median_itl_ms"));
        cr_expect_gt(num(ph, "request_throughput"), 0);
        /* The harness's own CPU time of the phase, and the per-request and per-token
         * figures derived from it (the client is idle between events: a phase of 8
         * requests can cost far less than its 0.2 s or more of wall time). */
        double cpu = num(ph, "client_cpu_s");
        cr_expect(cpu > 0 && cpu < num(ph, "duration") * 4, "client cpu %f s", cpu);
        cr_expect_float_eq(num(ph, "client_cpu_us_per_request"), cpu * 1e6 / 8, 1e-6 * cpu * 1e6 / 8);
        cr_expect_float_eq(num(ph, "client_cpu_us_per_output_token"), cpu * 1e6 / 64, 1e-6 * cpu * 1e6 / 64);
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

/* The ok and failed counts of the table row of load point `load` and of the summary line,
 * from a run's output; each -1 when absent. */
typedef struct counts {
    long long row_ok, row_failed, sum_ok, sum_failed;
} counts;

static counts parse_counts(const char *out, const char *load)
{
    counts c = {-1, -1, -1, -1};
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char name[32];
        long long a, b;
        if (sscanf(l, "%31s %lld %lld", name, &a, &b) == 3 && !strcmp(name, load))
            c.row_ok = a, c.row_failed = b;
        const char *sum = strstr(l, "requests ok, ");
        if (!strncmp(l, "run ", 4) && sum && sum < strchr(l, '\n')) {
            const char *colon = strchr(l, ':');
            if (colon && sscanf(colon + 1, " %lld requests ok, %lld failed", &a, &b) == 2)
                c.sum_ok = a, c.sum_failed = b;
        }
    }
    return c;
}

/* Every failure mode: the failing requests are recorded with their kind, the others
 * complete, and the table, the summary line, the database and the exit status (1: some
 * requests failed) agree; the run is 'complete' (every load point ran) and sound. */
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
             "--num-prompts 4 --db %s %s", tu_bin(), ts_port(srv), ds, db, extra);
    int rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 1, "%s: exit %d: %s", name, rc, out);
    counts c = parse_counts(out, "c=2");
    cr_expect(c.row_ok == 2 && c.row_failed == 2 && c.sum_ok == 2 && c.sum_failed == 2,
              "%s: table %lld/%lld, summary %lld/%lld: %s", name, c.row_ok, c.row_failed, c.sum_ok,
              c.sum_failed, out);
    /* The reasons under the table: 2 failures of this kind (usually one line, two when
     * their messages differ). */
    long long told = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        long long k;
        char what[32];
        if (sscanf(l, "  c=2: %lld failed: %31[a-z_]", &k, what) == 2 && !strcmp(what, kind))
            told += k;
    }
    cr_expect_eq(told, 2, "%s: reasons of kind %s: %s", name, kind, out);
    free(out);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1, "%s", name);
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
Test(run, fault_wrong_json_shape, .timeout = 30) { fault_case(TS_FAULT_WRONG_SHAPE, "", "no_tokens", "fshape"); }
Test(run, fault_html_page, .timeout = 30) { fault_case(TS_FAULT_HTML_200, "", "not_sse", "fhtml"); }
Test(run, fault_html_page_untyped, .timeout = 30) { fault_case(TS_FAULT_HTML_NO_TYPE, "", "not_sse", "fhtml2"); }

/* A server that answers every request in another JSON shape: nothing succeeded, and every
 * report says so (it said "2 requests ok, 0 failed" and exited 0 while the table said 0/2). */
Test(run, no_request_ok_is_a_failed_run, .timeout = 30)
{
    ts_config cfg = {.n_tokens = 3, .fault = TS_FAULT_WRONG_SHAPE};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("shape.jsonl", words, 2, 3);
    const char *db = db_path("shape.db");
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --db %s", tu_bin(),
             ts_port(srv), ds, db);
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    counts c = parse_counts(out, "c=1");
    cr_expect(c.row_ok == 0 && c.row_failed == 2 && c.sum_ok == 0 && c.sum_failed == 2, "%s", out);
    cr_expect(strstr(out, "none with text in choices[0].text"), "the reason is told: %s", out);
    free(out);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE ok = 0 AND error_kind = 'no_tokens'"), 2);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'failed'"), 1);
    ts_stop(srv);
}

/* An HTTP error is stored and shown with its status, URL and the server's own message
 * (error.message of the OpenAI error body), not only its kind. */
Test(run, failure_reasons_stored_and_shown, .timeout = 30)
{
    ts_config cfg = {.n_tokens = 3, .fault = TS_FAULT_HTTP_429, .fault_match = "BAD"};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *prompts[] = {"BAD one", "fine two", "BAD three", "BAD four"};
    const char *ds = write_dataset("why.jsonl", prompts, 4, 3);
    const char *db = db_path("why.db");
    char cmd[4096], want[256], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --num-prompts 4 --db %s --quiet",
             tu_bin(), ts_port(srv), ds, db);
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    snprintf(want, sizeof want, "c=1: 3 failed: http 429 at http://127.0.0.1:%d/v1/completions: "
             "rate limited (test fault)\n", ts_port(srv));
    cr_expect(strstr(out, want), "no '%s' in: %s", want, out);
    free(out);
    snprintf(cmd, sizeof cmd, "SELECT count(*) FROM requests WHERE ok = 0 AND error_kind = 'http' AND "
             "http_status = 429 AND error = 'rate limited (test fault)' AND url = "
             "'http://127.0.0.1:%d/v1/completions'", ts_port(srv));
    cr_expect_eq(db_int(db, cmd), 3);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE ok = 1 AND http_status = 200"), 1);
    ts_stop(srv);
}

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

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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

/* Polls every 50 ms; the 40 s limit is a hang guard, not an expected speed. */
static void wait_for_requests(const char *db, long long n)
{
    for (int i = 0; i < 800; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (access(db, R_OK) == 0 && db_try_int(db, "SELECT count(*) FROM requests") >= n)
            return;
    }
    cr_assert_fail("fewer than %lld requests stored after 40 s", n);
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
    /* The loop is closed at 8: the server receiving request 64 + 8 + 1 means the client had
     * finished at least 65, one more than the first stored batch, whatever the timing. */
    for (double t0 = mono_s(); ts_request_count(srv) < 64 + 8 + 1;) {
        cr_assert_lt(mono_s() - t0, 40.0, "the run stopped sending requests");
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
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

/* After Ctrl-C, the requests cut short are neither ok nor failed: the table, the summary line
 * and the store count the same requests (the table used to count them as failed). */
Test(run, sigint_table_summary_and_store_agree, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 50, .itl_ms = 5};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("intc.jsonl", words, 4, 50);
    const char *db = db_path("intc.db");
    char log[1024], url[64];
    snprintf(log, sizeof log, "%s/intc.log", tu_tmpdir());
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ts_port(srv));
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen(log, "w", stdout);
        dup2(fileno(stdout), 2);
        execl(tu_bin(), tu_bin(), "run", "--endpoint", url, "--dataset", ds, "--concurrency", "8",
              "--num-prompts", "100000", "--db", db, (char *)NULL);
        _exit(127);
    }
    wait_for_requests(db, 64);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d", WEXITSTATUS(st));
    char *out = tu_read_file(log, NULL);
    cr_assert_not_null(out);
    counts c = parse_counts(out, "c=8");
    cr_expect(c.row_ok > 0 && c.row_ok == c.sum_ok && c.row_failed == 0 && c.sum_failed == 0,
              "table %lld/%lld, summary %lld/%lld: %s", c.row_ok, c.row_failed, c.sum_ok, c.sum_failed, out);
    /* Usually requests were in flight (closed loop at 8) and are said to be cut short; not
     * always: the interrupt may fall between a batch's end and its refill. */
    cr_log_info("%s", strstr(out, "cut short") ? "requests were cut short" : "none in flight at the interrupt");
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests WHERE ok = 1"), c.row_ok);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM requests"), c.row_ok);
    free(out);
    ts_stop(srv);
}

/* Runs `mlc-bench run ARGS` expecting a usage error: exit 2 and one line naming `what`. */
static void expect_usage(const char *args, const char *what)
{
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "timeout 20 %s run --endpoint http://127.0.0.1:1 --db %s %s", tu_bin(),
             db_path("usage.db"), args);
    int rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 2, "%s: exit %d: %s", args, rc, out);
    cr_expect(strstr(out, what), "%s: no '%s' in: %s", args, what, out);
    size_t len = strlen(out);
    cr_expect(len > 0 && out[len - 1] == '\n' && !memchr(out, '\n', len - 1), "%s: not one line: %s", args, out);
    free(out);
}

Test(run, numbers_are_parsed_strictly, .timeout = 120)
{
    static const char *const conc[] = {"2147483648", "1.5", "1,,2", "0", "-1", "nan", "inf", "''",
                                       "abc", "1,", ",1", "' 1'", "65537", "9223372036854775808", "0x10"};
    static const char *const rate[] = {"nan", "-1", "0", "1e-300", "abc", "''", "1,", "1,,2", "INF",
                                       "infinity", "1e300", "2147483648e10", "' 1'"};
    char args[256];
    for (size_t i = 0; i < sizeof conc / sizeof *conc; i++) {
        snprintf(args, sizeof args, "--concurrency %s", conc[i]);
        expect_usage(args, "--concurrency");
    }
    for (size_t i = 0; i < sizeof rate / sizeof *rate; i++) {
        snprintf(args, sizeof args, "--rate %s", rate[i]);
        expect_usage(args, "--rate");
    }
    expect_usage("--slo ttft=nan", "--slo");
    expect_usage("--slo ttft=inf", "--slo");
    expect_usage("--slo ttft=1,,tpot=2", "--slo");
    expect_usage("--timeout nan", "--timeout");
    expect_usage("--progress-interval 0", "--progress-interval");
    expect_usage("--concurrency 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,"
                 "31,32,33", "more than 32");
    /* An unknown option is unknown wherever it stands; a known one lacks its value. */
    expect_usage("--bogus", "unknown option '--bogus'");
    expect_usage("--bogus 1", "unknown option '--bogus'");
    expect_usage("--timeout", "--timeout needs a value");
}

/* Every numeric option of run against the values that wrap or mean nothing. */
Test(run, every_numeric_option_refuses_nonsense, .timeout = 300)
{
    static const char *const opts[] = {"-t", "--ctx", "--parallel", "--timeout", "--input-len", "--output-len",
                                       "--range-ratio", "--num-prompts", "--duration", "--seed", "--temperature",
                                       "--concurrency", "--rate", "--burstiness", "--warmup", "--time-scale",
                                       "--progress-interval", "--sweep"};
    static const char *const vals[] = {"-1", "nan", "inf", "2147483648", "9223372036854775808", "''", "abc", "1,"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
            bool seed = !strcmp(opts[i], "--seed"), sweep = !strcmp(opts[i], "--sweep");
            if ((seed && (k == 3 || k == 4)) || (sweep && k == 0)) /* valid seeds; "-1" is no --sweep value */
                continue;
            if (!strcmp(opts[i], "--rate") && k == 2) /* inf: every request at once */
                continue;
            char args[128];
            snprintf(args, sizeof args, "%s %s", opts[i], vals[k]);
            expect_usage(args, opts[i]);
        }
    }
}

Test(run, help_shows_the_defaults)
{
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "%s run --help", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0);
    static const char *const want[] = {"timeout 600 s", "api completions", "(default 1)", "defaults poisson",
                                       "(default 5)", "inf: every request at once", "Exit: 0 every request ok"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(out, want[i]), "no '%s' in --help", want[i]);
    free(out);
}

/* --rate inf keeps its meaning: every request at once. */
Test(run, rate_inf_sends_all_at_once, .timeout = 30)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("inf.jsonl", words, 4, 2);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --rate inf --db %s --quiet",
             tu_bin(), ts_port(srv), ds, db_path("inf.db"));
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "r=inf"), "%s", out);
    free(out);
    ts_stop(srv);
}

/* A trace whose times cannot be waited for is refused before anything is sent. */
Test(run, trace_times_are_bounded, .timeout = 60)
{
    char path[1024], cmd[4096], *out;
    snprintf(path, sizeof path, "%s/far.jsonl", tu_tmpdir());
    const char far[] = "{\"timestamp\": 0, \"prompt\": \"a\"}\n{\"timestamp\": 1e300, \"prompt\": \"b\"}\n";
    cr_assert_eq(tu_write_file(path, far, sizeof far - 1), 0);
    snprintf(cmd, sizeof cmd, "timeout 20 %s run --endpoint http://127.0.0.1:1 --dataset %s --db %s", tu_bin(), path,
             db_path("far.db"));
    int rc = tu_run(cmd, &out);
    cr_expect(rc == 1 || rc == 2, "exit %d: %s", rc, out);
    cr_expect(strstr(out, "far.jsonl:2:"), "%s", out);
    free(out);
    /* Within the file's limits, but slowed down past any sane wait. */
    snprintf(path, sizeof path, "%s/slow.jsonl", tu_tmpdir());
    const char slow[] = "{\"timestamp\": 0, \"prompt\": \"a\"}\n{\"timestamp\": 1000, \"prompt\": \"b\"}\n";
    cr_assert_eq(tu_write_file(path, slow, sizeof slow - 1), 0);
    snprintf(cmd, sizeof cmd, "timeout 20 %s run --endpoint http://127.0.0.1:1 --dataset %s --time-scale 1e-6 --db %s",
             tu_bin(), path, db_path("slow.db"));
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--time-scale"), "%s", out);
    free(out);
    cr_expect_neq(access(db_path("slow.db"), F_OK), 0, "nothing was stored");
}

/* Progress in a log (stderr not a terminal): a plain line every --progress-interval; none
 * with --quiet. The run lasts about 1.2 s, over ten intervals. */
Test(run, progress_lines_in_a_log, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 6, .itl_ms = 25};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("prog.jsonl", words, 4, 6);
    for (int quiet = 0; quiet < 2; quiet++) {
        char cmd[4096], log[1024];
        snprintf(log, sizeof log, "%s/prog%d.log", tu_tmpdir(), quiet);
        snprintf(cmd, sizeof cmd, "(%s run --endpoint http://127.0.0.1:%d --dataset %s --num-prompts 8 "
                 "--progress-interval 0.1 --db %s %s 2>%s >/dev/null)", tu_bin(), ts_port(srv), ds,
                 db_path("prog.db"), quiet ? "--quiet" : "", log);
        cr_assert_eq(tu_run(cmd, NULL), 0);
        char *text = tu_read_file(log, NULL);
        cr_assert_not_null(text);
        int lines = 0;
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
            lines += !strncmp(l, "[c=1] ", 6) && strstr(l, " done, ") != NULL;
        if (quiet)
            cr_expect_eq(lines, 0, "--quiet: %s", text);
        else
            cr_expect_geq(lines, 1, "no progress line: %s", text);
        cr_expect_null(strchr(text, '\r'), "no terminal redraws in a log");
        free(text);
    }
    ts_stop(srv);
}

/* Token-id prompts cannot go to the chat API: refused before the first request, unless a
 * tokenizer turns them into text. */
Test(run, chat_with_token_id_prompts, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --api chat --dataset random --input-len 8 "
             "--num-prompts 4 --db %s", tu_bin(), ts_port(srv), db_path("chatids.db"));
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--tokenizer"), "%s", out);
    size_t len = strlen(out);
    cr_expect(len > 0 && !memchr(out, '\n', len - 1), "not one line: %s", out);
    free(out);
    cr_expect_eq(ts_request_count(srv), 0, "a request was sent");
    cr_expect_neq(access(db_path("chatids.db"), F_OK), 0, "nothing was stored");
    char vocab[1024];
    tu_require_shared(vocab, sizeof vocab, "vocab/ggml-vocab-llama-spm.gguf");
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --api chat --dataset random --input-len 8 "
             "--num-prompts 4 --tokenizer %s --db %s --quiet", tu_bin(), ts_port(srv), vocab, db_path("chatids.db"));
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    cr_expect_eq(ts_request_count(srv), 4);
    ts_stop(srv);
}

/* The built-in dataset runs clean against both APIs: its chat entries go to /v1/completions
 * as role-prefixed text. */
Test(run, default_dataset_on_both_apis, .timeout = 120)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    static const char *const apis[] = {"completions", "chat"};
    for (int a = 0; a < 2; a++) {
        char cmd[4096], json[1024], dbn[64], *out;
        snprintf(json, sizeof json, "%s/default-%s.json", tu_tmpdir(), apis[a]);
        snprintf(dbn, sizeof dbn, "default-%s.db", apis[a]);
        snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --api %s --concurrency 16 --db %s "
                 "--json %s --quiet", tu_bin(), ts_port(srv), apis[a], db_path(dbn), json);
        cr_expect_eq(tu_run(cmd, &out), 0, "%s: %s", apis[a], out);
        free(out);
        cJSON *j = read_json(json);
        cr_expect_eq(num(cJSON_GetArrayItem(j, 0), "failed"), 0, "%s", apis[a]);
        cr_expect_geq(num(cJSON_GetArrayItem(j, 0), "completed"), 200, "%s", apis[a]);
        cJSON_Delete(j);
    }
    ts_record rec;
    cr_assert(ts_record_find(srv, "system: ", &rec), "no chat entry reached /v1/completions as text");
    cr_expect(!rec.chat && strstr(rec.body, "\\nuser: ") && strstr(rec.body, "\\nassistant:\""), "%s", rec.body);
    ts_stop(srv);
}

/* One request row of the store, by (phase, idx). */
typedef struct stored_req {
    double scheduled, sent, first_token, done;
    int ok, http_status;
    long long in_tok, out_tok, approx;
    char kind[32], error[256];
    float itl[64];
    int n_itl;
} stored_req;

static bool stored_get(sqlite3 *h, int phase, int idx, stored_req *r)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT scheduled, sent, coalesce(first_token, -1), done, ok, coalesce(http_status, 0), "
                      "input_tokens, output_tokens, tokens_approx, coalesce(error_kind, ''), coalesce(error, ''), itl "
                      "FROM requests WHERE phase = ? AND idx = ?";
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_bind_int(st, 1, phase);
    sqlite3_bind_int(st, 2, idx);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        *r = (stored_req){sqlite3_column_double(st, 0), sqlite3_column_double(st, 1), sqlite3_column_double(st, 2),
                          sqlite3_column_double(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
                          sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7), sqlite3_column_int64(st, 8),
                          "", "", {0}, 0};
        snprintf(r->kind, sizeof r->kind, "%s", (const char *)sqlite3_column_text(st, 9));
        snprintf(r->error, sizeof r->error, "%s", (const char *)sqlite3_column_text(st, 10));
        const unsigned char *b = sqlite3_column_blob(st, 11);
        int bytes = sqlite3_column_bytes(st, 11);
        cr_assert_leq(bytes, (int)sizeof r->itl);
        for (int i = 0; i + 4 <= bytes; i += 4) { /* little-endian float32 */
            uint32_t u = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 | (uint32_t)b[i + 3] << 24;
            memcpy(&r->itl[r->n_itl++], &u, 4);
        }
    }
    sqlite3_finalize(st);
    return found;
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-12 * fmax(1, fabs(b));
}

/* --save-requests: one line per stored request, and every field equal to the store's: times
 * (seconds on the run's clock), each ITL gap, counts, status and error. Failures included
 * (a 429 carries its status and message) and two load points (named per line). */
Test(run, save_requests_equals_the_store, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 5, .itl_ms = 2, .fault = TS_FAULT_HTTP_429, .fault_match = "BAD"};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *prompts[] = {"fine one", "BAD two", "fine three", "fine four two"};
    const char *ds = write_dataset("save.jsonl", prompts, 4, 5);
    const char *db = db_path("save.db");
    char cmd[4096], path[1024], *out;
    snprintf(path, sizeof path, "%s/save.requests.jsonl", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --concurrency 1,2 --num-prompts 8 "
             "--warmup 2 --db %s --save-requests %s --quiet", tu_bin(), ts_port(srv), ds, db, path);
    cr_expect_eq(tu_run(cmd, &out), 1, "two requests of each load point fail: %s", out);
    free(out);
    char *text = tu_read_file(path, NULL);
    cr_assert_not_null(text, "%s", path);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int lines = 0, failed = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "not JSON: %s", line);
        int phase = (int)num(o, "phase"), idx = (int)num(o, "idx");
        stored_req r;
        cr_assert(stored_get(h, phase, idx, &r), "line %d: no stored request %d/%d", lines, phase, idx);
        cr_expect_str_eq(cJSON_GetObjectItem(o, "load")->valuestring, phase ? "c=2" : "c=1");
        cr_expect(near(num(o, "scheduled_time"), r.scheduled) && near(num(o, "start_time"), r.sent), "%s", line);
        cr_expect(near(num(o, "latency"), r.done - r.sent), "%s", line);
        const cJSON *ttft = cJSON_GetObjectItem(o, "ttft");
        if (r.first_token < 0)
            cr_expect(cJSON_IsNull(ttft), "%s", line);
        else
            cr_expect(cJSON_IsNumber(ttft) && near(ttft->valuedouble, r.first_token - r.sent), "%s", line);
        const cJSON *itl = cJSON_GetObjectItem(o, "itl");
        cr_assert_eq(cJSON_GetArraySize(itl), r.n_itl, "%s", line);
        for (int i = 0; i < r.n_itl; i++)
            cr_expect_eq((float)(cJSON_GetArrayItem(itl, i)->valuedouble * 1e3), r.itl[i], "gap %d: %s", i, line);
        cr_expect_eq(num(o, "prompt_len"), r.in_tok);
        cr_expect_eq(num(o, "output_tokens"), r.out_tok);
        cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(o, "tokens_approximate")), r.approx);
        cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(o, "success")), r.ok, "%s", line);
        cr_expect_str_eq(cJSON_GetObjectItem(o, "error")->valuestring, r.error);
        const cJSON *kind = cJSON_GetObjectItem(o, "error_kind"), *status = cJSON_GetObjectItem(o, "http_status");
        cr_expect_str_eq(cJSON_IsString(kind) ? kind->valuestring : "", r.kind, "%s", line);
        cr_expect_eq(cJSON_IsNumber(status) ? status->valueint : 0, r.http_status, "%s", line);
        if (!r.ok) {
            failed++;
            cr_expect(r.http_status == 429 && !strcmp(r.kind, "http") && strstr(r.error, "rate limited"), "%s", line);
        } else {
            cr_expect_eq(r.n_itl, 4, "5 tokens, 4 gaps: %s", line);
        }
        cJSON_Delete(o);
    }
    sqlite3_close(h);
    free(text);
    cr_expect_eq(lines, db_int(db, "SELECT count(*) FROM requests"), "one line per stored request");
    cr_expect_eq(lines, 16);
    cr_expect_eq(failed, db_int(db, "SELECT count(*) FROM requests WHERE ok = 0"));
    cr_expect_gt(failed, 0);
    ts_stop(srv);
}

/* --slo percentile bounds end to end: 10 requests, each TTFT >= 20 ms (the server's delay).
 * ttft_p50 <= 10000 ms: none above, and 0 of 10 passes at p50 (P(X <= 0) = 1/1024 <= 0.01);
 * ttft_p99 <= 1 ms: all 10 above (P(X >= 10) = 1e-20): fail, so the exit status is 1;
 * e2e_p99 <= 100000 ms: none above, but p99 needs 459 requests. Each verdict is printed,
 * in the JSON and in the store's slo table; goodput counts the requests meeting every
 * bound (none: TTFT is never <= 1 ms). */
Test(run, slo_percentile_verdicts, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 3, .ttft_ms = 20, .itl_ms = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("slo.jsonl", words, 4, 3);
    const char *db = db_path("slo.db");
    char cmd[4096], json[1024], *out;
    snprintf(json, sizeof json, "%s/slo.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --num-prompts 10 --concurrency 2 "
             "--slo ttft_p50=10000,ttft_p99=1,e2e_p99=100000 --db %s --json %s", tu_bin(), ts_port(srv), ds, db, json);
    cr_expect_eq(tu_run(cmd, &out), 1, "a failed bound: exit 1: %s", out);
    cr_expect(strstr(out, "SLO percentiles at 99% confidence:\n"), "%s", out);
    cr_expect(strstr(out, "  c=2: ttft_p50 <= 10000 ms: pass ("), "%s", out);
    cr_expect(strstr(out, "  c=2: ttft_p99 <= 1 ms: fail ("), "%s", out);
    cr_expect(strstr(out, "10 of 10 above, at most 0 allowed)"), "%s", out);
    cr_expect(strstr(out, "  c=2: e2e_p99 <= 100000 ms: not enough requests: need 459 (0 of 10 above;"), "%s", out);
    free(out);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1, "every request succeeded");
    cr_expect_eq(db_int(db, "SELECT count(*) FROM slo"), 3);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM slo WHERE name = 'ttft_p50' AND verdict = 'pass' AND n = 10 AND "
                            "violations = 0 AND allowed = 0 AND needed IS NULL AND load = 'c=2' AND percentile = 50"), 1);
    cr_expect_eq(db_int(db, "SELECT count(*) FROM slo WHERE name = 'ttft_p99' AND verdict = 'fail' AND violations = 10 "
                            "AND observed_ms >= 15 AND bound_ms = 1 AND metric = 'ttft' AND confidence = 0.99"), 1);
    cr_expect_eq(db_int(db, "SELECT needed FROM slo WHERE name = 'e2e_p99' AND verdict = 'not_enough'"), 459);
    cJSON *j = read_json(json);
    const cJSON *ph = cJSON_GetArrayItem(j, 0), *slo = cJSON_GetObjectItem(ph, "slo");
    cr_assert_eq(cJSON_GetArraySize(slo), 3);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(slo, 1), "verdict")->valuestring, "fail");
    cr_expect_eq(num(cJSON_GetArrayItem(slo, 2), "needed"), 459);
    cr_expect_eq(num(ph, "request_goodput"), 0);
    cr_expect_gt(num(ph, "request_throughput"), 0);
    cJSON_Delete(j);
    ts_stop(srv);
}

/* --dataset prefix end to end: token-id prompts of exactly L + S ids (the server counts
 * them), and TTFT split by whether the prefix had been sent before: at concurrency 1 the
 * first request of each prefix drawn is "first", every later one "seen". */
Test(run, prefix_dataset_and_ttft_by_prefix, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *db = db_path("prefix.db");
    char cmd[4096], json[1024], *out;
    snprintf(json, sizeof json, "%s/prefix.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset prefix --prefixes 3 --prefix-len 8 "
             "--suffix-len 4 --num-prompts 12 --output-len 2 --db %s --json %s", tu_bin(), ts_port(srv), db, json);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "TTFT by prefix"), "%s", out);
    free(out);
    cr_expect_eq(ts_request_count(srv), 12);
    for (int i = 0; i < 12; i++) {
        ts_record rec;
        cr_assert(ts_record_get(srv, i, &rec));
        cr_expect_eq(rec.prompt_tokens, 12, "request %d", i);
    }
    cJSON *j = read_json(json);
    const cJSON *ph = cJSON_GetArrayItem(j, 0);
    double first = num(ph, "n_prefix_first"), seen = num(ph, "n_prefix_seen");
    cr_expect(first >= 1 && first <= 3 && first + seen == 12, "first %g, seen %g", first, seen);
    cJSON_Delete(j);
    cr_expect_eq(db_int(db, "SELECT sum(value) FROM metrics WHERE name LIKE 'c=1/ttft_ms_prefix_%' AND stat = 'n'"), 12);
    ts_stop(srv);
}

/* The messages of a chat request body, as "role:content|role:content|...". */
static void body_messages(const char *body, char *out, size_t cap)
{
    cJSON *j = cJSON_Parse(body);
    cr_assert_not_null(j, "%s", body);
    const cJSON *m;
    out[0] = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "messages"))
    {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s:%s", n ? "|" : "", cJSON_GetObjectItem(m, "role")->valuestring,
                 cJSON_GetObjectItem(m, "content")->valuestring);
    }
    cJSON_Delete(j);
}

/* --multi-turn: a 3-turn conversation (JSONL messages, and the same as ShareGPT) goes turn by
 * turn over the chat API, at concurrency 1: its third request carries both earlier answers
 * (the server's own "tok0 tok1 " by default, the dataset's with --history dataset), and each
 * turn leaves --think-time after the answer before it: the server received it no earlier (a
 * lower bound its own clock enforces), and the stored schedule says so exactly. */
static void multi_turn_case(const char *ds, const char *history, const char *want3, const char *name)
{
    ts_config cfg = {.n_tokens = 2, .itl_ms = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    char cmd[4096], path[1024], dbn[64], *out;
    snprintf(dbn, sizeof dbn, "%s.db", name);
    snprintf(path, sizeof path, "%s/%s.requests.jsonl", tu_tmpdir(), name);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --api chat --dataset %s --multi-turn "
             "--think-time 0.3 %s --db %s --save-requests %s --json %s.json --quiet", tu_bin(), ts_port(srv), ds,
             history, db_path(dbn), path, path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "c=1: 1 conversations completed, 0 failed, 0 cut short; 3.00 turns each"), "%s", out);
    free(out);
    cr_assert_eq(ts_request_count(srv), 3);
    ts_record rec[3];
    char msgs[1024];
    for (int i = 0; i < 3; i++)
        cr_assert(ts_record_get(srv, i, &rec[i]));
    body_messages(rec[0].body, msgs, sizeof msgs);
    cr_expect_str_eq(msgs, "system:be brief|user:U1");
    body_messages(rec[2].body, msgs, sizeof msgs);
    cr_expect_str_eq(msgs, want3);
    for (int i = 1; i < 3; i++) {
        double gap = rec[i].t_request - rec[i - 1].t_token[rec[i - 1].n_token - 1];
        cr_expect_geq(gap, 0.3, "turn %d came %.3f s after the answer", i + 1, gap);
    }
    char *text = tu_read_file(path, NULL);
    cr_assert_not_null(text);
    double done = 0;
    int turn = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o);
        cr_expect_eq(num(o, "turn"), ++turn);
        cr_expect_eq(num(o, "conversation"), 0);
        if (turn > 1) /* 1e-7: options are read as floats (0.3 is 0.30000001) */
            cr_expect(fabs(num(o, "scheduled_time") - (done + 0.3)) < 1e-7, "turn %d due %.9f, answer %.9f", turn,
                      num(o, "scheduled_time"), done);
        done = num(o, "start_time") + num(o, "latency");
        cJSON_Delete(o);
    }
    cr_expect_eq(turn, 3);
    free(text);
    char jpath[1100];
    snprintf(jpath, sizeof jpath, "%s.json", path);
    cJSON *j = read_json(jpath);
    const cJSON *ph = cJSON_GetArrayItem(j, 0);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(ph, "turns")), 3);
    cr_expect_eq(num(cJSON_GetObjectItem(ph, "conversations"), "completed"), 1);
    cr_expect_eq(num(ph, "completed"), 3);
    cJSON_Delete(j);
    ts_stop(srv);
}

static const char conv_jsonl[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"U1\"}, "
    "{\"role\": \"assistant\", \"content\": \"A1\"}, {\"role\": \"user\", \"content\": \"U2\"}, "
    "{\"role\": \"assistant\", \"content\": \"A2\"}, {\"role\": \"user\", \"content\": \"U3\"}], \"max_tokens\": 2}\n";
static const char conv_sharegpt[] =
    "[{\"id\": \"c\", \"conversations\": [{\"from\": \"system\", \"value\": \"be brief\"}, {\"from\": \"human\", "
    "\"value\": \"U1\"}, {\"from\": \"gpt\", \"value\": \"A1\"}, {\"from\": \"human\", \"value\": \"U2\"}, "
    "{\"from\": \"gpt\", \"value\": \"A2\"}, {\"from\": \"human\", \"value\": \"U3\"}, {\"from\": \"gpt\", "
    "\"value\": \"A3\"}]}]\n";

Test(run, multi_turn_real_history, .timeout = 60)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/conv.jsonl", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, conv_jsonl, sizeof conv_jsonl - 1), 0);
    multi_turn_case(path, "", "system:be brief|user:U1|assistant:tok0 tok1 |user:U2|assistant:tok0 tok1 |user:U3",
                    "mt-real");
}

Test(run, multi_turn_dataset_history_sharegpt, .timeout = 60)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/conv.json", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, conv_sharegpt, sizeof conv_sharegpt - 1), 0);
    multi_turn_case(path, "--history dataset", "system:be brief|user:U1|assistant:A1|user:U2|assistant:A2|user:U3",
                    "mt-ds");
}

/* Plain prompts are no conversation: refused before anything is sent, in one line. */
Test(run, multi_turn_needs_conversations, .timeout = 30)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_dataset("plain.jsonl", words, 2, 2);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --multi-turn --db %s", tu_bin(),
             ts_port(srv), ds, db_path("mt-plain.db"));
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--multi-turn replays chat conversations"), "%s", out);
    free(out);
    /* Messages without a user turn: the run fails naming the entry, and ends. */
    char path[1024];
    snprintf(path, sizeof path, "%s/nouser.jsonl", tu_tmpdir());
    const char nouser[] = "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}]}\n";
    cr_assert_eq(tu_write_file(path, nouser, sizeof nouser - 1), 0);
    snprintf(cmd, sizeof cmd, "timeout 20 %s run --endpoint http://127.0.0.1:%d --dataset %s --multi-turn --db %s",
             tu_bin(), ts_port(srv), path, db_path("mt-nouser.db"));
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "dataset 'nouser.jsonl', entry 0: a conversation needs chat messages"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --think-time 1 --db %s", tu_bin(),
             ts_port(srv), ds, db_path("mt-plain.db"));
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "apply to --multi-turn"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s run --model x.gguf --dataset %s --multi-turn --db %s", tu_bin(), ds,
             db_path("mt-plain.db"));
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--multi-turn needs --endpoint"), "%s", out);
    free(out);
    cr_expect_eq(ts_request_count(srv), 0);
    ts_stop(srv);
}

/* Each stream holds a socket: a soft open-file limit below --concurrency is raised toward the
 * hard one (every request succeeds), and a hard limit below it is refused before any request
 * is sent, naming both numbers, rather than failing connections one by one. */
Test(run, open_file_limit_raised_or_refused, .timeout = 120)
{
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "ulimit -Sn 128 && %s run --endpoint http://127.0.0.1:%d --dataset random "
             "--input-len 4 --output-len 2 --num-prompts 400 --concurrency 200 --db %s --quiet",
             tu_bin(), ts_port(srv), db_path("files.db"));
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect_eq(db_int(db_path("files.db"), "SELECT count(*) FROM requests WHERE ok = 1"), 400, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "ulimit -n 256 && %s run --endpoint http://127.0.0.1:%d --dataset random "
             "--input-len 4 --output-len 2 --num-prompts 10 --concurrency 1000 --db %s --quiet",
             tu_bin(), ts_port(srv), db_path("files2.db"));
    cr_expect_neq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "1072 open files") && strstr(out, "at most 256"), "%s", out);
    cr_expect_eq(ts_request_count(srv), 400, "the refused run sent requests: %s", out);
    free(out);
    ts_stop(srv);
}
