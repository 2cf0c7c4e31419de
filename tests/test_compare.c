/* test_compare.c: the regression gate, `mlc-bench baseline` and `mlc-bench ab`.
 *
 * - The promise of the gate, end to end: `run --endpoint` against `serve --engine null`
 *   with inter-token gaps of 40 ms vs 40 ms (A/A), 40 vs 44 ms (a real 10% regression) and
 *   40 vs 40.8 ms (2%), 6 runs a side, 20 repetitions each with the default settings: A/A
 *   never fails, 10% fails every time, 2% is reported within threshold.
 * - Verdict rules on stores written here with the store API (exact samples): significance
 *   without size and size without significance are `~`, the absolute noise floor per unit,
 *   client delay reported but not gated, a metric on one side only, deterministic metrics
 *   by tolerance, per-metric overrides and unknown names in them, JSON / JUnit / markdown
 *   in $GITHUB_STEP_SUMMARY.
 * - References: run ids, names, last, last:N, and every bad one (unknown run or name, empty
 *   baseline, mismatched model or machine, another kind) exits 2 with a clear message.
 * - ab: two builds (the binary, and the binary forced onto its scalar kernels) in rounds. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench/store.h"
#include "rng.h"
#include "util.h"

/* ------------------------------------------------------------ stores made here */

typedef struct metric_spec {
    const char *name;
    int direction;
    const double *v; /* samples (n > 1) or the value (n == 1) */
    int n;
    const char *unit; /* NULL: none */
} metric_spec;

static int64_t add_run(const char *db, const char *kind, const char *model, const metric_spec *m, int nm)
{
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(db, &s, &err), MLC_OK, "%s", err.msg);
    mlc_run_info ri = {.kind = kind, .target = "local", .backend = "cpu", .model_path = model,
                       .model_arch = "llama", .model_quant = "Q8_0", .config_json = "{\"ctx\":128}"};
    int64_t id = 0;
    cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK, "%s", err.msg);
    for (int i = 0; i < nm; i++) {
        double mean = 0;
        for (int k = 0; k < m[i].n; k++)
            mean += m[i].v[k] / m[i].n;
        cr_assert_eq(mlc_store_add_metric(s, id, m[i].name, m[i].unit ? m[i].unit : "", m[i].n > 1 ? "mean" : "value", mean,
                                          m[i].direction, &err), MLC_OK, "%s", err.msg);
        if (m[i].n > 1)
            cr_assert_eq(mlc_store_add_samples(s, id, m[i].name, m[i].v, m[i].n, &err), MLC_OK, "%s", err.msg);
    }
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    mlc_store_close(s);
    return id;
}

/* A micro-like run: tok/s repetitions (higher is better) and a perplexity (lower is better). */
static int64_t tps_run(const char *db, const char *model, const double *tps, int n, double ppl)
{
    metric_spec m[] = {{"t=2/tg16", 1, tps, n, "tok/s"}, {"ppl", -1, &ppl, 1, NULL}};
    return add_run(db, "micro", model, m, 2);
}

static char *db_path(const char *name)
{
    static char p[4][512];
    static int k;
    char *out = p[k++ % 4];
    snprintf(out, sizeof p[0], "%s/%s", tu_tmpdir(), name);
    remove(out);
    return out;
}

static int compare(const char *db, const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s compare --db %s %s", tu_bin(), db, args);
    return tu_run(cmd, out);
}

/* The verdict of one metric in `compare --json` output. */
static char *verdict_of(const char *json, const char *metric, double *change_pct)
{
    const char *brace = strchr(json, '{');
    cJSON *j = cJSON_Parse(brace ? brace : json);
    cr_assert_not_null(j, "not JSON: %s", json);
    const cJSON *m;
    char *v = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "metrics")) {
        if (strcmp(cJSON_GetObjectItem(m, "name")->valuestring, metric))
            continue;
        v = strdup(cJSON_GetObjectItem(m, "verdict")->valuestring);
        if (change_pct)
            *change_pct = cJSON_GetObjectItem(m, "change_pct")->valuedouble;
    }
    cJSON_Delete(j);
    cr_assert_not_null(v, "no metric %s in %s", metric, json);
    return v;
}

static const double BASE[] = {100, 101, 99, 100.5, 102};
static const double MINUS10[] = {90, 91, 89, 90.5, 92};
static const double MINUS2[] = {98, 98.5, 97.5, 98.2, 98.8}; /* all below BASE */
static const double PLUS10[] = {110, 111, 109, 110.5, 112};

/* ------------------------------------------------------------ verdict rules */

Test(compare, verdicts_on_exact_samples)
{
    char *db = db_path("v.db"), *out;
    int64_t b = tps_run(db, "m.gguf", BASE, 5, 10.0);
    int64_t slow = tps_run(db, "m.gguf", MINUS10, 5, 10.0);
    int64_t small = tps_run(db, "m.gguf", MINUS2, 5, 10.0);
    int64_t fast = tps_run(db, "m.gguf", PLUS10, 5, 10.0);
    int64_t few = tps_run(db, "m.gguf", MINUS10, 3, 10.0);
    char args[256];

    /* 5 vs 5 completely separated: exact one-sided p = 1/C(10,5) = 1/252 < 0.01, -10%. */
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)slow);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    cr_expect(strstr(out, "t=2/tg16") && strstr(out, "regression (p < 0.01 and beyond 5%)"), "%s", out);
    cr_expect(strstr(out, "-9.95%"), "%s", out); /* median 90.5 vs 100.5 */
    cr_expect(strstr(out, "0.0040"), "%s", out); /* 1/252 */
    free(out);
    /* The same 2% slower: significant, within the threshold: `~`, exit 0. */
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)small);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "~ (significant but within threshold 5%)"), "%s", out);
    free(out);
    /* ...but a regression with a per-metric threshold of 1% (matched on the last part). */
    snprintf(args, sizeof args, "-b %lld -c %lld --threshold tg16=1", (long long)b, (long long)small);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    free(out);
    /* 10% slower on 3 samples: p = 1/C(8,3) = 1/56 > 0.01: large but not significant. */
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)few);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "~ (beyond 5% but not significant)"), "%s", out);
    cr_expect(strstr(out, "0.0179"), "%s", out);
    free(out);
    /* ...unless alpha allows it. */
    snprintf(args, sizeof args, "-b %lld -c %lld --alpha 0.05", (long long)b, (long long)few);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    free(out);
    /* Faster is an improvement, never a failure. */
    snprintf(args, sizeof args, "-b %lld -c %lld --json", (long long)b, (long long)fast);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    char *v = verdict_of(out, "t=2/tg16", NULL);
    cr_expect_str_eq(v, "improved");
    free(v);
    free(out);
}

/* Latency samples in ms: 1 ms, and 40% (0.4 ms) and 60% (0.6 ms) slower, each completely
 * separated from BASE_MS (exact p = 1/252). */
static const double BASE_MS[] = {1.00, 1.01, 0.99, 1.005, 1.02};
static const double PLUS04_MS[] = {1.40, 1.41, 1.39, 1.405, 1.42};
static const double PLUS06_MS[] = {1.60, 1.61, 1.59, 1.605, 1.62};
/* The client delay of the A/A flake: 0.41 ms against 2.06 ms. */
static const double DELAY_A[] = {0.41, 0.40, 0.42, 0.39, 0.43};
static const double DELAY_B[] = {2.06, 2.01, 2.10, 2.05, 2.07};

static int64_t ms_run(const char *db, const double *ttft, const double *delay)
{
    metric_spec m[] = {{"c=1/ttft_ms", -1, ttft, 5, "ms"}, {"c=1/client_delay_ms", -1, delay, 5, "ms"}};
    return add_run(db, "run", "m.gguf", m, 2);
}

/* A change beyond the threshold but not beyond the unit's absolute noise floor (default
 * 0.5 ms) is `~`, however significant; the floor is set per unit or per metric. */
Test(compare, noise_floor_on_exact_samples)
{
    char *db = db_path("floor.db"), *out, args[256];
    int64_t b = ms_run(db, BASE_MS, DELAY_A);
    int64_t small = ms_run(db, PLUS04_MS, DELAY_A);
    int64_t big = ms_run(db, PLUS06_MS, DELAY_A);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)small);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "+39.80%") && strstr(out, "0.0040") &&
              strstr(out, "~ (beyond 5% but within the noise floor 0.5 ms)"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)big);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    cr_expect(strstr(out, "regression (p < 0.01 and beyond 5% and 0.5 ms)"), "%s", out);
    free(out);
    /* Per unit, and per metric (more specific than the unit; the last value given wins). */
    snprintf(args, sizeof args, "-b %lld -c %lld --noise-floor ms=0.1", (long long)b, (long long)small);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --noise-floor ttft_ms=0.3,ms=2", (long long)b, (long long)small);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --noise-floor ms=0.1 --noise-floor ms=1 --json", (long long)b,
             (long long)big);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    char *v = verdict_of(out, "c=1/ttft_ms", NULL);
    cr_expect_str_eq(v, "~");
    free(v);
    cr_expect(strstr(out, "\"noise_floor\":\t1"), "%s", out);
    free(out);
    /* The threshold, by full name (which holds a '='), still applies below the floor. */
    snprintf(args, sizeof args, "-b %lld -c %lld --threshold c=1/ttft_ms=70 --noise-floor ms=0", (long long)b,
             (long long)big);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "~ (significant but within threshold 70%)"), "%s", out);
    free(out);
    /* A throughput floor: BASE -> MINUS10 is 10 tok/s slower. */
    int64_t tb = tps_run(db, "m.gguf", BASE, 5, 10.0), tc = tps_run(db, "m.gguf", MINUS10, 5, 10.0);
    snprintf(args, sizeof args, "-b %lld -c %lld --noise-floor tok/s=12", (long long)tb, (long long)tc);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "~ (beyond 5% but within the noise floor 12 tok/s)"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --noise-floor tok/s=8", (long long)tb, (long long)tc);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    free(out);
}

/* Client delay (the load generator's lateness) is reported, never gated unless --gate. */
Test(compare, client_delay_reported_not_gated)
{
    char *db = db_path("delay.db"), *out, args[256];
    int64_t b = ms_run(db, BASE_MS, DELAY_A);
    int64_t c = ms_run(db, BASE_MS, DELAY_B);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)b, (long long)c);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "c=1/client_delay_ms") && strstr(out, "+402.44%") && strstr(out, "0.0040") &&
              strstr(out, "- (reported, not gated: measures the load generator)"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --gate client_delay_ms --json", (long long)b, (long long)c);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    char *v = verdict_of(out, "c=1/client_delay_ms", NULL);
    cr_expect_str_eq(v, "regression");
    free(v);
    free(out);
}

/* A metric measured on one side only is shown as missing, not as 0, and is not a regression. */
Test(compare, metric_on_one_side_is_missing)
{
    char *db = db_path("side.db"), *out, args[256];
    static const double five = 5;
    metric_spec with[] = {{"t=2/tg16", 1, BASE, 5, "tok/s"}, {"t=2/pp8", 1, &five, 1, "tok/s"}};
    int64_t b = add_run(db, "micro", "m.gguf", with, 2);
    int64_t c = add_run(db, "micro", "m.gguf", with, 1);
    snprintf(args, sizeof args, "-b %lld -c %lld --format md", (long long)b, (long long)c);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "| t=2/pp8 | 5 | - | - | - | 1/0 | n/a (only in the baseline) |"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)c, (long long)b);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "t=2/pp8                                       -            5 "), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --json", (long long)b, (long long)c);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "\"baseline_median\":\t5,\n\t\t\t\"candidate_median\":\tnull"), "%s", out);
    free(out);
}

/* A per-metric option naming no compared metric is a usage error, not silently ignored. */
Test(compare, unknown_metric_names_rejected)
{
    char *db = db_path("names.db"), *out, args[256];
    int64_t b = ms_run(db, BASE_MS, DELAY_A);
    static const struct {
        const char *args, *msg;
    } cases[] = {
        {"--threshold nosuch=5", "--threshold nosuch=5: no compared metric is named 'nosuch' (metrics: ttft_ms,"
                                 " client_delay_ms)"},
        {"--tolerance ppl=1", "--tolerance ppl=1: no compared metric is named 'ppl'"},
        {"--noise-floor tok/s=1", "--noise-floor tok/s: no compared metric has the name or unit 'tok/s' (metrics:"
                                  " ttft_ms, client_delay_ms; units: ms)"},
        {"--noise-floor ms", "--noise-floor: 'ms' is not UNIT=VALUE"},
        {"--noise-floor ms=-1", "--noise-floor: 'ms=-1' is not UNIT=VALUE"},
        {"--noise-floor ms=nan", "--noise-floor: 'ms=nan' is not UNIT=VALUE"},
        {"--noise-floor ms=1,,itl_ms=2", "--noise-floor: 'ms=1,,itl_ms=2' is not a list"},
        {"--noise-floor ms=1,", "--noise-floor: 'ms=1,' is not a list"},
        {"--gate itl_ms", "--gate: 'itl_ms' is not a reported-only metric"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "-b %lld -c %lld %s", (long long)b, (long long)b, cases[i].args);
        cr_expect_eq(compare(db, args, &out), 2, "%s: %s", cases[i].args, out);
        cr_expect(strstr(out, cases[i].msg), "%s: %s", cases[i].args, out);
        cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
        free(out);
    }
    /* Names that match (full name, last part, unit) are accepted. */
    snprintf(args, sizeof args, "-b %lld -c %lld --threshold c=1/ttft_ms=3 --noise-floor ms=1,ttft_ms=2", (long long)b,
             (long long)b);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    free(out);
}

/* From 5 runs a side, runs are the unit: the test sees 5 run medians a side. */
Test(compare, runs_are_the_unit_from_five_runs_a_side)
{
    char *db = db_path("u.db"), *out;
    for (int i = 0; i < 5; i++)
        tps_run(db, "m.gguf", BASE, 5, 10.0);
    for (int i = 0; i < 5; i++)
        tps_run(db, "m.gguf", MINUS10, 5, 10.0);
    cr_expect_eq(compare(db, "-b last:5 -c last:5 --format md", &out), 1, "%s", out);
    cr_expect(strstr(out, "| t=2/tg16 | 100.5 | 90.5 | -9.95% |") && strstr(out, "| 5/5 runs | **regression**"), "%s", out);
    free(out);
    /* With 4 a side the samples are pooled (20 each). */
    cr_expect_eq(compare(db, "-b last:4 -c last:4", &out), 1, "%s", out);
    cr_expect(strstr(out, "20/20 "), "%s", out);
    free(out);
}

Test(compare, deterministic_metrics_use_a_tolerance)
{
    char *db = db_path("d.db"), *out;
    int64_t b = tps_run(db, "m.gguf", BASE, 5, 10.0);
    int64_t worse = tps_run(db, "m.gguf", BASE, 5, 10.02); /* +0.2% */
    int64_t better = tps_run(db, "m.gguf", BASE, 5, 9.9);
    int64_t same = tps_run(db, "m.gguf", BASE, 5, 10.005); /* +0.05% */
    char args[256];
    snprintf(args, sizeof args, "-b %lld -c %lld --json", (long long)b, (long long)worse);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    char *v = verdict_of(out, "ppl", NULL);
    cr_expect_str_eq(v, "regression");
    free(v);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --tolerance ppl=0.5", (long long)b, (long long)worse);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "within tolerance 0.5%"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --json", (long long)b, (long long)better);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    v = verdict_of(out, "ppl", NULL);
    cr_expect_str_eq(v, "improved");
    free(v);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --json", (long long)b, (long long)same);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    v = verdict_of(out, "ppl", NULL);
    cr_expect_str_eq(v, "ok");
    free(v);
    free(out);
}

Test(compare, outputs_junit_markdown_step_summary)
{
    char *db = db_path("o.db"), *out;
    int64_t b = tps_run(db, "m.gguf", BASE, 5, 10.0);
    int64_t c = tps_run(db, "m.gguf", MINUS10, 5, 10.0);
    char junit[512], summary[512], cmd[4096];
    snprintf(junit, sizeof junit, "%s/compare.xml", tu_tmpdir());
    snprintf(summary, sizeof summary, "%s/summary.md", tu_tmpdir());
    cr_assert_eq(tu_write_file(summary, "# before\n", 9), 0);
    snprintf(cmd, sizeof cmd, "GITHUB_STEP_SUMMARY=%s %s compare --db %s -b %lld -c %lld --junit %s --quiet",
             summary, tu_bin(), db, (long long)b, (long long)c, junit);
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    cr_expect_str_eq(out, ""); /* --quiet */
    free(out);
    char *x = tu_read_file(junit, NULL), *md = tu_read_file(summary, NULL);
    cr_assert(x && md);
    cr_expect(strstr(x, "<testsuite name=\"mlc-bench compare\" tests=\"2\" failures=\"1\">"), "%s", x);
    cr_expect(strstr(x, "name=\"t=2/tg16\">\n    <failure message=\"regression: 100.5 -&gt; 90.5"), "%s", x);
    cr_expect(strstr(x, "name=\"ppl\">\n    <system-out>ok"), "%s", x);
    cr_expect(!strncmp(md, "# before\n### mlc-bench compare: regression", 41), "%s", md); /* appended */
    cr_expect(strstr(md, "| t=2/tg16 | 100.5 | 90.5 | -9.95% | 0.0040 | 5/5 | **regression** (p < 0.01 and beyond 5%) |"),
              "%s", md);
    free(x);
    free(md);
}

/* ------------------------------------------------------------ references */

Test(compare, references_last_n_and_names)
{
    char *db = db_path("r.db"), *out;
    int64_t id[5];
    for (int i = 0; i < 4; i++)
        id[i] = tps_run(db, "m.gguf", BASE, 5, 10.0);
    id[4] = tps_run(db, "m.gguf", MINUS10, 5, 10.0);
    /* last:3 = the three runs before the candidate, pooled (15 samples). */
    cr_expect_eq(compare(db, "-b last:3 -c last", &out), 1, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "baseline:  last:3 (3 runs, %lld..%lld)", (long long)id[1], (long long)id[3]);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect(strstr(out, "15/5"), "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s baseline set nightly --run %lld --db %s", tu_bin(), (long long)id[0], db);
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    cr_expect_eq(compare(db, "-b nightly -c last", &out), 1, "%s", out);
    snprintf(want, sizeof want, "baseline:  'nightly' (run %lld)", (long long)id[0]);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    /* Promotion moves the name; list and show see it; rm forgets it. */
    snprintf(cmd, sizeof cmd, "%s baseline set nightly --db %s && %s baseline list --db %s", tu_bin(), db, tu_bin(), db);
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    snprintf(want, sizeof want, "baseline 'nightly' -> run %lld", (long long)id[4]);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s baseline show nightly --db %s", tu_bin(), db);
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s baseline rm nightly --db %s && %s baseline show nightly --db %s", tu_bin(), db,
             tu_bin(), db);
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "no baseline named 'nightly'"), "%s", out);
    free(out);
}

/* A baseline name that a reference reads as something else could never be compared against:
 * `baseline set` refuses it. */
Test(compare, baseline_names_references_cannot_reach)
{
    char *db = db_path("names2.db"), *out, cmd[4096];
    tps_run(db, "m.gguf", BASE, 5, 10.0);
    static const struct {
        const char *name, *meaning;
    } cases[] = {
        {"1", "a run id"}, {"007", "a run id"}, {"+2", "a run id"}, {" 2", "a run id"},
        {"last", "the newest runs"}, {"last:3", "the newest runs"}, {"last:x", "the newest runs"},
        {"label:x", "the runs with a label"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s baseline set '%s' --db %s", tu_bin(), cases[i].name, db);
        cr_expect_eq(tu_run(cmd, &out), 2, "%s: %s", cases[i].name, out);
        char want[256];
        snprintf(want, sizeof want, "baseline set: '%s' cannot name a baseline: as a reference it means %s",
                 cases[i].name, cases[i].meaning);
        cr_expect(strstr(out, want) && strchr(out, '\n') == out + strlen(out) - 1, "%s", out);
        free(out);
    }
    /* Names that only look alike are names, and compare reaches them. */
    snprintf(cmd, sizeof cmd, "%s baseline set 1x --db %s && %s baseline set lastly --db %s && %s compare --db %s"
             " -b 1x -c lastly", tu_bin(), db, tu_bin(), db, tu_bin(), db);
    cr_expect_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "baseline:  '1x' (run 1)") && strstr(out, "candidate: 'lastly' (run 1)"), "%s", out);
    free(out);
}

Test(compare, bad_references_exit_2)
{
    char *db = db_path("bad.db"), *out;
    int64_t a = tps_run(db, "m.gguf", BASE, 5, 10.0);
    int64_t other = tps_run(db, "other.gguf", BASE, 5, 10.0);
    metric_spec ppl[] = {{"ppl", -1, BASE, 1, NULL}};
    int64_t kind = add_run(db, "ppl", "m.gguf", ppl, 1);
    char args[256];
    static const struct {
        const char *args, *msg;
    } cases[] = {
        {"-b 999 -c last", "--baseline 999: no run 999 in the store"},
        {"-b nosuch -c last", "--baseline nosuch: no baseline named 'nosuch'"},
        {"-b last:2 -c 1", "--baseline last:2: empty: no complete run like run 1"},
        {"-b last:0 -c 1", "last:N needs N in [1, 256]"},
        {"-b 1", "--baseline and --candidate are required"},
        {"-b 1 -c 1 --threshold x", "--threshold: 'x' is not a percentage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(compare(db, cases[i].args, &out), 2, "%s: %s", cases[i].args, out);
        cr_expect(strstr(out, cases[i].msg), "%s: %s", cases[i].args, out);
        free(out);
    }
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)a, (long long)other);
    cr_expect_eq(compare(db, args, &out), 2, "%s", out);
    cr_expect(strstr(out, "mismatched model: run 1 measured m.gguf"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --force", (long long)a, (long long)other);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --force", (long long)a, (long long)kind);
    cr_expect_eq(compare(db, args, &out), 2, "%s", out);
    cr_expect(strstr(out, "is a 'micro' run"), "%s", out);
    free(out);
    /* Another machine: the candidate moved to a fingerprint with another CPU. */
    int64_t moved = tps_run(db, "m.gguf", BASE, 5, 10.0);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO fingerprints (hash, cpu, cpus, gpu, driver, os, compiler, flags, build)"
             " SELECT 'other', 'Other CPU', cpus, gpu, driver, os, compiler, flags, build FROM fingerprints LIMIT 1;"
             " UPDATE runs SET fingerprint_id = last_insert_rowid() WHERE id = %lld", (long long)moved);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)a, (long long)moved);
    cr_expect_eq(compare(db, args, &out), 2, "%s", out);
    cr_expect(strstr(out, "different fingerprints") && strstr(out, "cpu: Other CPU"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld --force", (long long)a, (long long)moved);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    free(out);
    /* Not a store at all. */
    cr_expect_eq(compare("/nonexistent/x.db", "-b 1 -c 2", &out), 2, "%s", out);
    cr_expect(strstr(out, "/nonexistent/x.db: no such file"), "%s", out);
    free(out);
}

/* ------------------------------------------------------------ the gate against a server */

typedef struct srv {
    pid_t pid;
    int port;
} srv;

static srv start(const char *args)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 %s", tu_bin(), args);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd[1], 1);
        for (int i = 3; i < 1024; i++)
            close(i);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[512] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "serve did not start: %s", cmd);
    fclose(f);
    const char *p = strstr(line, "127.0.0.1:");
    cr_assert_not_null(p, "%s", line);
    return (srv){pid, atoi(p + 10)};
}

static void stop(srv s)
{
    int st;
    kill(s.pid, SIGTERM);
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
}

/* One stored `run` against the server, labelled: 4 requests of 8 tokens at concurrency 4,
 * so 28 ITL gaps and 4 TTFT/TPOT/E2E samples per run. */
static void bench_run(const char *db, int port, const char *label)
{
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset random --input-len 8 "
             "--output-len 8 --ignore-eos --concurrency 4 --num-prompts 4 --db %s --label %s --quiet",
             tu_bin(), port, db, label);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
}

/* End to end: serve -> run -> store -> compare -> exit status, against the null engine with
 * margins that scheduler noise cannot reach on a busy machine (measured at load 12 to 25:
 * run medians of TTFT moved by up to 14 ms between identical servers, gaps by a few ms). A/A
 * is judged at a 20% threshold with a 5 ms floor, the slow server adds 50% to TTFT and to
 * every gap (100 ms and 10 ms a gap). With 6 runs a side the rank test needs the two sides
 * (nearly) apart: one run starved for seconds (seen under ASan at load 30) can make one
 * repetition "~", so each claim must hold in 2 of the 3 repetitions. The gate's statistical
 * power at 10% and its silence at 2% and A/A under the default settings are proven on
 * modelled noise below (gate_rates_on_modelled_noise), where the outcome cannot depend on the
 * machine. */
Test(compare, gate_end_to_end_against_a_server, .timeout = 900)
{
    srv a = start("--engine null --ttft-ms 200 --itl-ms 20 --parallel 8");
    srv b = start("--engine null --ttft-ms 300 --itl-ms 30 --parallel 8");
    char *db = db_path("gate.db"), *out, args[256];
    int aa_ok = 0, slow_exit = 0, ttft_caught = 0, itl_caught = 0;
    for (int rep = 0; rep < 3; rep++) {
        char la[32], la2[32], lb[32];
        snprintf(la, sizeof la, "A%d", rep);
        snprintf(la2, sizeof la2, "AA%d", rep);
        snprintf(lb, sizeof lb, "B%d", rep);
        for (int k = 0; k < 6; k++) {
            bench_run(db, a.port, la);
            bench_run(db, a.port, la2);
            bench_run(db, b.port, lb);
        }
        snprintf(args, sizeof args, "-b label:%s -c label:%s --json --threshold 20 --noise-floor ms=5", la, la2);
        int rc = compare(db, args, &out);
        cr_expect(rc == 0 || rc == 1, "A/A, repetition %d: exit %d: %s", rep, rc, out);
        if (rc)
            cr_log_info("A/A, repetition %d flagged: %s", rep, out);
        aa_ok += rc == 0;
        free(out);
        snprintf(args, sizeof args, "-b label:%s -c label:%s --json --threshold 20 --noise-floor ms=5", la, lb);
        rc = compare(db, args, &out);
        double ttft = 0, itl = 0;
        char *vt = verdict_of(out, "c=4/ttft_ms", &ttft), *vi = verdict_of(out, "c=4/itl_ms", &itl);
        cr_expect(rc == 0 || rc == 1, "50%% slower, repetition %d: exit %d: %s", rep, rc, out);
        /* The change itself is measured whatever the verdict: both sides ran. */
        cr_expect(ttft > 30 && itl > 30, "TTFT %+.1f%%, ITL %+.1f%%, repetition %d", ttft, itl, rep);
        cr_log_info("50%% slower, repetition %d: TTFT %s %+.1f%%, ITL %s %+.1f%%", rep, vt, ttft, vi, itl);
        slow_exit += rc == 1;
        ttft_caught += !strcmp(vt, "regression");
        itl_caught += !strcmp(vi, "regression");
        free(vt);
        free(vi);
        free(out);
    }
    cr_expect_geq(aa_ok, 2, "A/A passed in %d of 3 repetitions", aa_ok);
    cr_expect_geq(slow_exit, 2, "the slower server failed the gate in %d of 3 repetitions", slow_exit);
    cr_expect_geq(ttft_caught, 2, "TTFT regression in %d of 3 repetitions", ttft_caught);
    cr_expect_geq(itl_caught, 2, "ITL regression in %d of 3 repetitions", itl_caught);
    stop(a);
    stop(b);
}

/* A seeded model of what a busy machine does to latency runs, so the gate's rates are the
 * same on every machine: each run is shifted as a whole (normal, sd 1.5%, and one run in ten
 * starved by a further +6%), and each of its 28 samples jitters by a log-normal factor (sd
 * 5%). Beside two busy loops (load 12 to 25) run medians of 40 ms gaps moved by up to about
 * 5% between identical servers, which is what the sd and the starved runs reproduce. */
/* Runs of one side, labelled, of a latency metric (ms, lower is better) around base. */
static void modelled_side(mlc_store *s, uint64_t *n, const char *label, double base, int runs)
{
    mlc_err err = {0};
    for (int r = 0; r < runs; r++) {
        mlc_run_info ri = {.kind = "micro", .label = label, .target = "local", .backend = "cpu",
                           .model_path = "m.gguf", .config_json = "{}"};
        int64_t id;
        cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK, "%s", err.msg);
        double shift = 1 + 0.015 * mlc_rng_gauss(n) + (mlc_rng_unit(n) < 0.1 ? 0.06 : 0), v[28], mean = 0;
        for (int k = 0; k < 28; k++) {
            v[k] = base * shift * exp(0.05 * mlc_rng_gauss(n));
            mean += v[k] / 28;
        }
        cr_assert_eq(mlc_store_add_metric(s, id, "c=4/itl_ms", "ms", "mean", mean, -1, &err), MLC_OK, "%s", err.msg);
        cr_assert_eq(mlc_store_add_samples(s, id, "c=4/itl_ms", v, 28, &err), MLC_OK, "%s", err.msg);
        cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    }
}

/* The gate at its defaults (alpha 0.01, threshold 5%, floor 0.5 ms, runs as the unit from 5 a
 * side) on 40 ms gaps under that noise, 10 runs a side, 300 repetitions. The claim is a rate:
 * A/A fails at most 1% of the time, a 10% slowdown is caught at least 99% of the time, a 2%
 * one (0.8 ms, above the floor) is flagged at most 2% of the time. This seed gives 300, 300
 * and 298 of 300: a 2% change plus a starved run or two now and then looks like 5%. With 6
 * runs a side the same noise gives 10% caught 294 of 300: fewer runs are not enough. */
Test(compare, gate_rates_on_modelled_noise, .timeout = 300)
{
    if (tu_sanitized())
        cr_skip_test("run by the plain build (900 compare processes: a rate, not a memory check)");
    char *db = db_path("model.db"), *out, args[128];
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(db, &s, &err), MLC_OK, "%s", err.msg);
    uint64_t n = 0x6761746520726174ull; /* "gate rat" */
    const int reps = 300;
    for (int rep = 0; rep < reps; rep++) {
        char l[4][16];
        const double base[4] = {40, 40, 44, 40.8};
        for (int k = 0; k < 4; k++) {
            snprintf(l[k], sizeof l[k], "%c%d", "AaBC"[k], rep);
            modelled_side(s, &n, l[k], base[k], 10);
        }
    }
    mlc_store_close(s);
    int aa = 0, caught = 0, small = 0;
    for (int rep = 0; rep < reps; rep++) {
        const char *want[3] = {"A/A", "10%", "2%"};
        for (int k = 0; k < 3; k++) {
            snprintf(args, sizeof args, "-b label:A%d -c label:%c%d", rep, "aBC"[k], rep);
            int rc = compare(db, args, &out);
            cr_assert_neq(rc, 2, "%s", out);
            bool ok = k == 1 ? rc == 1 && strstr(out, "regression") : rc == 0;
            if (!ok)
                cr_log_info("%s, repetition %d: %s", want[k], rep, out);
            *(k == 0 ? &aa : k == 1 ? &caught : &small) += ok;
            free(out);
        }
    }
    cr_expect_geq(aa, reps * 99 / 100, "A/A quiet %d of %d times", aa, reps);
    cr_expect_geq(caught, reps * 99 / 100, "10%% caught %d of %d times", caught, reps);
    cr_expect_geq(small, reps * 98 / 100, "2%% within the threshold %d of %d times", small, reps);
}

/* ------------------------------------------------------------ ab */

Test(compare, ab_two_builds, .timeout = 300)
{
    char model[512], scalar[512], cmd[4096], *out;
    snprintf(model, sizeof model, "%s/ab-tiny.gguf", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny -o %s", tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    /* A slower "build" of the engine: the same binary held to its scalar kernels. */
    snprintf(scalar, sizeof scalar, "%s/mlc-bench-scalar", tu_tmpdir());
    char script[1024];
    int n = snprintf(script, sizeof script, "#!/bin/sh\nMLC_CPU_ISA=scalar exec %s \"$@\"\n", tu_bin());
    cr_assert_eq(tu_write_file(scalar, script, (size_t)n), 0);
    cr_assert_eq(chmod(scalar, 0755), 0);
    char *db = db_path("ab.db");
    snprintf(cmd, sizeof cmd, "%s ab --base %s --head %s --rounds 4 --seed 3 --db %s -- micro -m %s -p 32 -n 0 -r 2 -t 1",
             tu_bin(), tu_bin(), scalar, db, model);
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "t=1/pp32") && strstr(out, "regression"), "%s", out);
    cr_expect(strstr(out, "round 4/4:"), "%s", out);
    free(out);
    /* Both sides stored and labelled. */
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT count(*) FROM runs WHERE label LIKE 'ab head round %' OR"
                                       " label LIKE 'ab base round %'", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 8);
    sqlite3_finalize(st);
    sqlite3_close(h);
    /* A failing build stops ab with exit 2 and names it. */
    snprintf(cmd, sizeof cmd, "%s ab --base %s --head /bin/false --rounds 1 --db %s -- micro -m %s -p 8 -n 0 -r 1",
             tu_bin(), tu_bin(), db, model);
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "the head build (/bin/false) failed (exit 1)"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s ab --base a --head b -- micro --db x", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "ARGS must not set --db"), "%s", out);
    free(out);
}

/* ------------------------------------------------------------ read-only stores */

/* Runs `sh -c cmd` as another user when root (for whom file modes would not apply), else as
 * this one; returns the exit status, 3 when root cannot become another user. */
static int run_as_reader(const char *cmd)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* report, compare and baseline list read a store its reader may not write (file 0444 in a
 * 0555 directory): no "attempt to write a readonly database", and the file is unchanged. */
Test(compare, readers_of_a_readonly_store, .timeout = 120)
{
    char top[] = "/tmp/mlc-compare-ro-XXXXXX", dir[256], db[300], bin[300], out[300], cmd[4096];
    cr_assert_not_null(mkdtemp(top));
    cr_assert_eq(chmod(top, 0755), 0);
    snprintf(dir, sizeof dir, "%s/ro", top);
    snprintf(out, sizeof out, "%s/out", top);
    snprintf(db, sizeof db, "%s/bench.db", dir);
    snprintf(bin, sizeof bin, "%s/mlc-bench", top);
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(mkdir(out, 0777), 0);
    cr_assert_eq(chmod(out, 0777), 0);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tu_bin(), bin);
    cr_assert_eq(system(cmd), 0);
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(db, &s, &err), MLC_OK, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        mlc_run_info ri = {.kind = "ppl", .target = "local", .model_path = "m.gguf", .config_json = "{}"};
        int64_t run;
        cr_assert_eq(mlc_store_run_begin(s, &ri, &run, &err), MLC_OK, "%s", err.msg);
        cr_assert_eq(mlc_store_add_metric(s, run, "ppl", "", "value", 12.5, -1, &err), MLC_OK, "%s", err.msg);
        cr_assert_eq(mlc_store_run_end(s, run, "complete", &err), MLC_OK, "%s", err.msg);
    }
    mlc_store_close(s);
    snprintf(cmd, sizeof cmd, "%s baseline set nightly --run 1 --db %s", bin, db);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(chmod(db, 0444), 0);
    cr_assert_eq(chmod(dir, 0555), 0);
    struct stat before, after;
    cr_assert_eq(stat(db, &before), 0);
    const char *reads[] = {"compare -b nightly -c 2 --db %s", "baseline list --db %s", "report --db %s -o %s"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        char sub[2400];
        snprintf(sub, sizeof sub, reads[i], db, out);
        snprintf(cmd, sizeof cmd, "%s %s > %s/log 2>&1", bin, sub, out);
        int rc = run_as_reader(cmd);
        if (rc == 3) {
            chmod(dir, 0755);
            cr_skip_test("root here cannot become another user, for whom file modes would apply");
        }
        snprintf(cmd, sizeof cmd, "%s/log", out);
        char *log = tu_read_file(cmd, NULL);
        cr_expect_eq(rc, 0, "%s: exit %d: %s", sub, rc, log ? log : "");
        cr_expect(log && !strstr(log, "readonly"), "%s: %s", sub, log ? log : "");
        free(log);
    }
    cr_assert_eq(stat(db, &after), 0);
    cr_expect(before.st_size == after.st_size && before.st_mtime == after.st_mtime, "the store was written");
    chmod(dir, 0755);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    cr_expect_eq(system(cmd), 0);
}

/* ------------------------------------------------------------ conformance runs */

/* A conformance run as the command stores it: a row per case and the per-device counts. */
static int64_t conformance_run(mlc_store *s, const char *const *cases, const char *const *status, int n)
{
    mlc_run_info ri = {.kind = "conformance", .target = "local", .backend = "cpu", .config_json = "{}"};
    mlc_err err = {0};
    int64_t run;
    cr_assert_eq(mlc_store_run_begin(s, &ri, &run, &err), MLC_OK, "%s", err.msg);
    int count[3] = {0};
    for (int i = 0; i < n; i++) {
        mlc_conformance_row r = {"cpu", "cpu:0 test", "scale", "F32", "[7, 1, 1, 1]", cases[i], status[i],
                                 !strcmp(status[i], "fail") ? "NMSE 3e-3 > 1e-7" : NULL, 0, 1e-7, 0.1, 42};
        cr_assert_eq(mlc_store_add_conformance(s, run, &r, &err), MLC_OK, "%s", err.msg);
        count[!strcmp(status[i], "pass") ? 0 : !strcmp(status[i], "fail") ? 1 : 2]++;
    }
    const char *names[] = {"cpu:0/conf_passed", "cpu:0/conf_failed", "cpu:0/conf_unsupported"};
    const int dir[] = {0, -1, 0};
    for (int k = 0; k < 3; k++)
        cr_assert_eq(mlc_store_add_metric(s, run, names[k], "cases", "count", count[k], dir[k], &err), MLC_OK);
    cr_assert_eq(mlc_store_run_end(s, run, "complete", &err), MLC_OK, "%s", err.msg);
    return run;
}

/* One case fixed and another broken leave the counts as they were: the case-level comparison
 * still calls it a regression; a case that became unsupported is reported, not gated. */
Test(compare, conformance_cases_compared)
{
    char *db = db_path("conf.db"), *out;
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(db, &s, &err), MLC_OK, "%s", err.msg);
    const char *cases[] = {"a", "b", "c"};
    const char *base[] = {"pass", "fail", "pass"}, *swap[] = {"fail", "pass", "pass"},
               *declined[] = {"pass", "fail", "unsupported"};
    int64_t r0 = conformance_run(s, cases, base, 3), r1 = conformance_run(s, cases, swap, 3),
            r2 = conformance_run(s, cases, declined, 3), r3 = conformance_run(s, cases, base, 3);
    mlc_store_close(s);
    char args[128];
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)r0, (long long)r1);
    cr_expect_eq(compare(db, args, &out), 1, "%s", out);
    cr_expect(strstr(out, "regression  cpu:0 a: pass -> fail (NMSE 3e-3 > 1e-7)"), "%s", out);
    cr_expect(strstr(out, "changed     cpu:0 b: fail -> pass"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)r0, (long long)r2);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "changed     cpu:0 c: pass -> unsupported"), "%s", out);
    cr_expect(strstr(out, "conf_unsupported"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "-b %lld -c %lld", (long long)r0, (long long)r3);
    cr_expect_eq(compare(db, args, &out), 0, "%s", out);
    cr_expect(strstr(out, "no case changed"), "%s", out);
    free(out);
}
