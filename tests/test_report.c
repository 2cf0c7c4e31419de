/* test_report.c: `mlc-bench report` end to end on databases made here with the store API:
 * one run, a sweep-like run with several load points, a history of 6 runs with a regression
 * in the last; markdown numbers, well-formed self-contained HTML with one SVG per chart, a
 * non-blank Chromium rendering, PNG output, the report without gnuplot, and the errors. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../bench/store.h"
#include "util.h"

static const mlc_run_info RI = {.kind = "run", .label = "report test", .target = "endpoint",
                                .endpoint = "http://127.0.0.1:1/v1", .model_path = "tiny",
                                .config_json = "{\"dataset\":\"random\",\"num_prompts\":40}"};

/* One run: per load point NAME (in order), n requests with TTFT ~ ttft ms (spread +-20%),
 * E2E = TTFT + 16 gaps of ~itl ms, 2 failures, and the aggregates stored like `run` does. */
static int64_t make_run(mlc_store *s, const char *const *names, int n_points, double ttft,
                        double itl, int n)
{
    mlc_err err = {0};
    int64_t id = 0;
    cr_assert_eq(mlc_store_run_begin(s, &RI, &id, &err), MLC_OK, "%s", err.msg);
    int64_t idx = 0;
    for (int p = 0; p < n_points; p++) {
        double scale = 1.0 + 0.5 * p; /* latency grows with the load */
        double *tt = malloc((size_t)n * sizeof *tt), *e2e = malloc((size_t)n * sizeof *e2e);
        cr_assert(tt && e2e);
        float gaps[16];
        for (int i = 0; i < n; i++) {
            double t = ttft * scale * (0.8 + 0.4 * i / (n - 1));
            for (int g = 0; g < 16; g++)
                gaps[g] = (float)(itl * scale * (0.7 + 0.6 * ((i * 7 + g * 3) % 11) / 10.0));
            double e = t + 16 * itl * scale;
            tt[i] = t;
            e2e[i] = e;
            double sent = 0.01 * (double)idx;
            mlc_request_record rec = {.idx = idx++, .phase = p, .scheduled = sent, .sent = sent,
                                      .first_token = sent + t / 1000.0, .done = sent + e / 1000.0,
                                      .ok = true, .input_tokens = 32, .output_tokens = 17,
                                      .itl_ms = gaps, .n_itl = 16};
            cr_assert_eq(mlc_store_add_request(s, id, &rec, &err), MLC_OK, "%s", err.msg);
        }
        for (int i = 0; i < 2; i++) {
            mlc_request_record rec = {.idx = idx++, .phase = p, .scheduled = 1, .sent = 1,
                                      .first_token = -1, .done = 1.5, .ok = false,
                                      .error_kind = "http_429", .error = "too many requests"};
            cr_assert_eq(mlc_store_add_request(s, id, &rec, &err), MLC_OK, "%s", err.msg);
        }
        char name[96];
        struct {
            const char *m, *unit;
            double v;
            int dir;
        } sc[] = {{"request_throughput", "req/s", 10.0 * (p + 1), 1},
                  {"output_throughput", "tok/s", 170.0 * (p + 1), 1},
                  {"total_token_throughput", "tok/s", 490.0 * (p + 1), 1},
                  {"request_goodput", "req/s", 9.0 * (p + 1), 1},
                  {"failed", "requests", 2, -1}};
        for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
            snprintf(name, sizeof name, "%s/%s", names[p], sc[i].m);
            cr_assert_eq(mlc_store_add_metric(s, id, name, sc[i].unit, "value", sc[i].v, sc[i].dir, &err), MLC_OK);
        }
        const char *lat[] = {"ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"};
        double base[] = {ttft * scale, itl * scale, itl * scale, ttft * scale + 16 * itl * scale};
        const char *stats[] = {"mean", "median", "p90", "p99"};
        double mult[] = {1.01, 1.0, 1.15, 1.19};
        for (int l = 0; l < 4; l++) {
            snprintf(name, sizeof name, "%s/%s", names[p], lat[l]);
            for (int k = 0; k < 4; k++)
                cr_assert_eq(mlc_store_add_metric(s, id, name, "ms", stats[k], base[l] * mult[k], -1, &err), MLC_OK);
        }
        snprintf(name, sizeof name, "%s/ttft_ms", names[p]);
        cr_assert_eq(mlc_store_add_samples(s, id, name, tt, n, &err), MLC_OK);
        snprintf(name, sizeof name, "%s/e2el_ms", names[p]);
        cr_assert_eq(mlc_store_add_samples(s, id, name, e2e, n, &err), MLC_OK);
        free(tt);
        free(e2e);
    }
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK, "%s", err.msg);
    return id;
}

static const char *path_in(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tu_tmpdir(), name);
    return p[k];
}

static mlc_store *open_db(const char *path)
{
    mlc_store *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_store_open(path, &s, &err), MLC_OK, "%s", err.msg);
    return s;
}

static const char *const ONE[] = {"c=1"};
static const char *const SWEEP[] = {"c=1", "c=2", "c=4", "c=8"};

static char *report(const char *args, int expect_rc)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "env -u GITHUB_STEP_SUMMARY %s report %s", tu_bin(), args);
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, expect_rc, "%s: exit %d, expected %d:\n%s", cmd, rc, expect_rc, out ? out : "");
    return out;
}

static char *read_text(const char *path)
{
    char *t = tu_read_file(path, NULL);
    cr_assert_not_null(t, "%s not written", path);
    return t;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(report, one_run_markdown)
{
    const char *db = path_in("one.db");
    mlc_store *s = open_db(db);
    make_run(s, ONE, 1, 100.0, 10.0, 40);
    mlc_store_close(s);
    const char *dir = path_in("one-md");
    char args[1024];
    snprintf(args, sizeof args, "--db %s -o %s", db, dir);
    free(report(args, 0));
    char *md = read_text(path_in("one-md/report.md"));
    cr_expect(strstr(md, "# mlc-bench report: run 1"), "%s", md);
    cr_expect(strstr(md, "\"num_prompts\":"), "config JSON missing");
    cr_expect(strstr(md, "### Fingerprint"));
    cr_expect(strstr(md, "### Load point c=1"));
    cr_expect(strstr(md, "| TTFT (ms) | 101.00 | 100.00 | 115.00 | 119.00 |"), "%s", md);
    cr_expect(strstr(md, "| E2E (ms) | 262.60 | 260.00 | 299.00 | 309.40 |"), "%s", md);
    cr_expect(strstr(md, "| output throughput (tok/s) | 170.00 |"));
    cr_expect(strstr(md, "| http_429 | 2 |"), "failures missing");
    cr_expect(!strstr(md, "<svg"));
    /* Results before configuration. */
    const char *res = strstr(md, "## Run 1: results"), *cfg = strstr(md, "## Run 1: configuration");
    cr_expect(res && cfg && res < cfg && strstr(md, "### Load point c=1") < cfg, "%s", md);
    free(md);

    /* The step summary gets the same markdown appended. */
    char cmd[2048];
    const char *sum = path_in("summary.md");
    tu_write_file(sum, "previous\n", 9);
    snprintf(cmd, sizeof cmd, "GITHUB_STEP_SUMMARY=%s %s report --db %s --run 1 -o %s", sum, tu_bin(), db, dir);
    cr_assert_eq(tu_run(cmd, NULL), 0);
    char *t = read_text(sum);
    cr_expect(!strncmp(t, "previous\n# mlc-bench report: run 1\n", 35), "%s", t);
    free(t);
}

/* Balanced tags (void HTML elements and self-closing ones aside); comments, CDATA and the
 * doctype skipped. Returns NULL when well formed, else a static message. */
static const char *check_tags(const char *h)
{
    static char why[256];
    char stack[256][32];
    int depth = 0;
    static const char *const voids[] = {"meta", "br", "hr", "img", "link", "input", NULL};
    for (const char *p = h; (p = strchr(p, '<'));) {
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p, "-->");
            if (!e)
                return "unterminated comment";
            p = e + 3;
            continue;
        }
        if (!strncmp(p, "<![CDATA[", 9)) {
            const char *e = strstr(p, "]]>");
            if (!e)
                return "unterminated CDATA";
            p = e + 3;
            continue;
        }
        if (p[1] == '!' || p[1] == '?') {
            p = strchr(p, '>');
            if (!p)
                return "unterminated declaration";
            continue;
        }
        bool close = p[1] == '/';
        const char *n = p + 1 + close;
        char name[32];
        size_t k = 0;
        while ((isalnum((unsigned char)n[k]) || n[k] == '-' || n[k] == ':') && k < sizeof name - 1) {
            name[k] = (char)tolower((unsigned char)n[k]);
            k++;
        }
        name[k] = 0;
        const char *e = strchr(p, '>');
        if (!e || !k) {
            snprintf(why, sizeof why, "bad tag at offset %ld", (long)(p - h));
            return why;
        }
        bool self = e[-1] == '/';
        bool isvoid = false;
        for (int i = 0; voids[i]; i++)
            isvoid |= !strcmp(name, voids[i]);
        if (close) {
            if (!depth || strcmp(stack[depth - 1], name)) {
                snprintf(why, sizeof why, "</%s> at offset %ld closes <%s>", name, (long)(p - h),
                         depth ? stack[depth - 1] : "nothing");
                return why;
            }
            depth--;
        } else if (!self && !isvoid) {
            if (depth == 256)
                return "too deep";
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
        p = e + 1;
    }
    if (depth) {
        snprintf(why, sizeof why, "<%s> not closed", stack[depth - 1]);
        return why;
    }
    return NULL;
}

/* Every <svg>...</svg> holds drawn data (a path or polyline with points). */
static int svgs_with_data(const char *h)
{
    int n = 0;
    for (const char *p = h; (p = strstr(p, "<svg"));) {
        const char *e = strstr(p, "</svg>");
        cr_assert_not_null(e);
        for (const char *q = p; q < e; q++)
            if (!strncmp(q, "<path", 5) || !strncmp(q, "<polyline", 9)) {
                n++;
                break;
            }
        p = e;
    }
    return n;
}


static bool have_program(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return tu_run(cmd, NULL) == 0;
}

Test(report, sweep_html_charts_and_chromium, .timeout = 180)
{
    if (!have_program("gnuplot"))
        cr_skip_test("gnuplot is not installed");
    const char *db = path_in("sweep.db");
    mlc_store *s = open_db(db);
    make_run(s, SWEEP, 4, 50.0, 8.0, 30);
    mlc_store_close(s);
    const char *dir = path_in("sweep-html");
    char args[1024];
    snprintf(args, sizeof args, "--db %s --format html -o %s --png", db, dir);
    free(report(args, 0));
    char *h = read_text(path_in("sweep-html/report.html"));
    const char *bad = check_tags(h);
    cr_expect_null(bad, "report.html not well formed: %s", bad);
    cr_expect_eq(count(h, "<html"), 1);
    cr_expect_eq(count(h, "<body"), 1);
    cr_expect_eq(count(h, "<table"), count(h, "</table>"));
    cr_expect_geq(count(h, "<table"), 9);
    /* The load curve; TTFT CDF, E2E CDF, ITL histogram, throughput and p99 latency against
     * concurrency. */
    cr_expect_eq(count(h, "<svg"), 6, "%d svg", count(h, "<svg"));
    cr_expect_eq(count(h, "</svg>"), 6);
    cr_expect_eq(svgs_with_data(h), 6);
    cr_expect_eq(count(h, "<figcaption>"), 6);
    /* Load curve point c=4: 30 req/s, 510 tok/s, TTFT p99 50*2*1.19, E2E p99 (100+16*16)*1.19. */
    cr_expect(strstr(h, "<tr><td>c=4</td><td>30.00</td><td>510.00</td><td>119.00</td><td>423.64</td></tr>"), "%s", h);
    cr_expect(strstr(h, "<figcaption>Throughput vs p99 latency</figcaption>"));
    cr_expect(strstr(h, "Throughput vs concurrency"));
    cr_expect(strstr(h, "| ") == NULL, "markdown in the HTML");
    /* Self-contained: nothing fetched, nothing run. */
    cr_expect(!strstr(h, "<script"));
    cr_expect(!strstr(h, "src=\"http"));
    cr_expect(!strstr(h, "<link"));
    cr_expect(strstr(h, "<td>c=4</td>") || strstr(h, "Load point c=4"));
    free(h);
    const char *pngs[] = {"ttft_cdf", "e2e_cdf", "itl_hist", "throughput", "p99_latency", "load_curve"};
    for (int i = 0; i < 6; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s.png", dir, pngs[i]);
        char *d = read_text(p);
        cr_expect(!memcmp(d, "\x89PNG", 4), "%s is not a PNG", p);
        free(d);
    }

    if (!have_program("chromium")) {
        const char *req = getenv("MLC_REQUIRE_CHROMIUM");
        if (req && !strcmp(req, "1"))
            cr_assert_fail("chromium is not installed and MLC_REQUIRE_CHROMIUM=1");
        cr_skip_test("chromium is not installed (Debian package chromium)");
    }
    const char *shot = path_in("shot.png");
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd %s && HOME=%s timeout 120 chromium --headless --no-sandbox --disable-gpu "
             "--no-first-run --disable-dev-shm-usage --user-data-dir=%s/chromium-profile "
             "--screenshot=%s --window-size=1200,2000 file://%s/sweep-html/report.html",
             tu_tmpdir(), tu_tmpdir(), tu_tmpdir(), shot, tu_tmpdir());
    int rc = tu_run(cmd, &out);
    struct stat st;
    cr_assert(stat(shot, &st) == 0 && st.st_size > 1000, "no screenshot (exit %d): %s", rc, out ? out : "");
    free(out);
    long dark = tu_png_nonwhite_pixels(shot);
    /* Text, table borders and chart lines: well over a few thousand pixels of 1200x2000. */
    cr_expect_gt(dark, 20000, "screenshot looks blank: %ld non-white pixels", dark);
}

Test(report, history_trend_and_regression)
{
    char db[512];
    snprintf(db, sizeof db, "%s", path_in("hist.db")); /* path_in's buffers are reused */
    mlc_store *s = open_db(db);
    double ttft[] = {100, 102, 98, 101, 99, 150};
    for (int i = 0; i < 6; i++)
        make_run(s, ONE, 1, ttft[i], 10.0, 20);
    mlc_store_close(s);
    const char *dir = path_in("hist");
    char args[1024];
    snprintf(args, sizeof args, "--db %s --last 6 -o %s", db, dir);
    free(report(args, 0));
    char *md = read_text(path_in("hist/report.md"));
    cr_expect(strstr(md, "## Trend of c=1/ttft_ms over the last 6 runs"), "%s", md);
    /* Baseline: the 5 runs before the last: median 100, band [98, 102]; the last run judged
     * against them by compare's rule, the others are the baseline. */
    cr_expect(strstr(md, "100.00 [98.00, 102.00]"), "%s", md);
    cr_expect(strstr(md, "| 150.00 | +50.0% | regression |"), "%s", md);
    cr_expect(strstr(md, "| 101.00 | +1.0% | (baseline) |"), "%s", md);
    cr_expect(strstr(md, "the rule of mlc-bench compare"));
    free(md);

    /* Comparison of the first and the last run: compare's verdicts. */
    snprintf(args, sizeof args, "--db %s --baseline 1 --candidate last -o %s", db, dir);
    free(report(args, 0));
    md = read_text(path_in("hist/report.md"));
    cr_expect(strstr(md, "| c=1/ttft_ms | 100 | 150 | +50.00% | <0.0001 | 20/20 | regression |"), "%s", md);
    cr_expect(strstr(md, "| c=1/output_throughput | 170 | 170 | +0.00% | 1.0000 | 1/1 | ok |"), "%s", md);
    cr_expect(strstr(md, "Verdict: 2 regressions, 0 improved"), "%s", md);
    free(md);

    /* compare's reference grammar: last:N pools the runs before the candidate. */
    snprintf(args, sizeof args, "--db %s --baseline last:3 --candidate last -o %s", db, dir);
    free(report(args, 0));
    md = read_text(path_in("hist/report.md"));
    cr_expect(strstr(md, "## Comparison: last:3 (3 runs, 3..5) (baseline) vs last (run 6) (candidate)"), "%s", md);
    /* 3 runs of 20 requests pooled against 20: the row's sizes and verdict. */
    const char *row = strstr(md, "| c=1/ttft_ms | "), *eol = row ? strchr(row, '\n') : NULL;
    const char *cell = row ? strstr(row, "| 60/20 | regression |") : NULL;
    cr_expect(cell && cell < eol, "%s", md);
    free(md);

    /* The trend chart in HTML, with the band from a named baseline. */
    if (have_program("gnuplot")) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "sqlite3 %s \"INSERT INTO baselines VALUES ('main', 2)\" 2>/dev/null"
                 " || python3 -c \"import sqlite3; c=sqlite3.connect('%s'); c.execute(\\\"INSERT INTO"
                 " baselines VALUES ('main', 2)\\\"); c.commit()\"", db, db);
        cr_assert_eq(tu_run(cmd, NULL), 0);
        snprintf(args, sizeof args, "--db %s --last 6 --format html -o %s", db, dir);
        free(report(args, 0));
        char *h = read_text(path_in("hist/report.html"));
        cr_expect_null(check_tags(h));
        cr_expect(strstr(h, "baseline run 2"), "named baseline not used");
        cr_expect(strstr(h, "Trend across runs with the baseline band"));
        /* trend, TTFT CDF, E2E CDF, ITL histogram (one load point: no load charts). */
        cr_expect_eq(count(h, "<svg"), 4);
        cr_expect_eq(svgs_with_data(h), 4);
        free(h);
    }
}

Test(report, without_gnuplot_notes)
{
    const char *db = path_in("nognu.db");
    mlc_store *s = open_db(db);
    make_run(s, SWEEP, 2, 50.0, 8.0, 10);
    mlc_store_close(s);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "MLC_GNUPLOT=/nonexistent %s report --db %s --format html -o %s/nognu",
             tu_bin(), db, tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    char *h = read_text(path_in("nognu/report.html"));
    cr_expect_null(check_tags(h));
    cr_expect_eq(count(h, "<svg"), 0);
    cr_expect_eq(count(h, "not drawn: MLC_GNUPLOT=/nonexistent is not executable"), 6, "%s", h);
    cr_expect(strstr(h, "<td>260.00</td>") || strstr(h, "TTFT (ms)"));
    free(h);
}

/* True while pid runs (a zombie has finished: nobody may reap an orphan in a container). */
static bool running(long pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool got = fgets(stat, sizeof stat, f) != NULL;
    fclose(f);
    const char *paren = strrchr(stat, ')');
    return got && paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* True while pid runs, waiting up to 30 s for it to end: SIGKILL is delivered at once but
 * the killed process exits when it is next scheduled, which on a busy machine is later
 * than the report's return. */
static bool alive(long pid)
{
    for (int k = 0; k < 3000 && running(pid); k++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    return running(pid);
}

/* A gnuplot that never finishes (and starts a child that never does either) is killed with
 * its process group after --chart-timeout; the report is written with notes. The test's
 * own timeout is the hang guard. */
Test(report, hanging_gnuplot_killed, .timeout = 120)
{
    const char *db = path_in("hang.db");
    mlc_store *s = open_db(db);
    make_run(s, SWEEP, 2, 50.0, 8.0, 10);
    mlc_store_close(s);
    char script[512], pidfile[512], cmd[2048], *out = NULL;
    snprintf(pidfile, sizeof pidfile, "%s/hang.pid", tu_tmpdir());
    snprintf(script, sizeof script, "%s/hang-gnuplot", tu_tmpdir());
    char body[1024];
    int n = snprintf(body, sizeof body, "#!/bin/sh\nsleep 100000 &\necho $! > %s\nwait\n", pidfile);
    cr_assert_eq(tu_write_file(script, body, (size_t)n), 0);
    cr_assert_eq(chmod(script, 0755), 0);
    for (int k = 0; k < 2; k++) {
        /* The limit from the option, then from the environment. */
        remove(pidfile);
        snprintf(cmd, sizeof cmd, "MLC_GNUPLOT=%s %s %s report --db %s --format html -o %s/hang%d %s", script,
                 k ? "MLC_CHART_TIMEOUT=0.5" : "", tu_bin(), db, tu_tmpdir(), k, k ? "" : "--chart-timeout 1");
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        free(out);
        char path[64];
        snprintf(path, sizeof path, "hang%d/report.html", k);
        char *h = read_text(path_in(path));
        char want[1024];
        snprintf(want, sizeof want, "not drawn: %s did not finish in %s s (killed)", script, k ? "0.5" : "1");
        cr_expect_eq(count(h, want), 1, "%s", h);
        cr_expect_eq(count(h, "timed out on an earlier chart"), 5, "%s", h);
        cr_expect(strstr(h, "</html>"));
        free(h);
        char *pid = tu_read_file(pidfile, NULL);
        cr_assert_not_null(pid, "the script did not run");
        cr_expect(!alive(atol(pid)), "the script's child %ld survived", atol(pid));
        free(pid);
    }
}

static void expect_error(const char *args, const char *what)
{
    char *out = report(args, 2);
    size_t len = strlen(out);
    cr_expect(len > 0 && out[len - 1] == '\n' && !memchr(out, '\n', len - 1),
              "not one line: '%s'", out);
    cr_expect(strstr(out, what), "'%s' not in '%s'", what, out);
    free(out);
}

Test(report, errors)
{
    char args[1024];
    const char *empty = path_in("empty.db");
    mlc_store_close(open_db(empty));
    snprintf(args, sizeof args, "--db %s -o %s", empty, tu_tmpdir());
    expect_error(args, "no runs in the database");

    const char *db = path_in("err.db");
    mlc_store *s = open_db(db);
    make_run(s, ONE, 1, 100.0, 10.0, 5);
    mlc_store_close(s);
    snprintf(args, sizeof args, "--db %s --run 42 -o %s", db, tu_tmpdir());
    expect_error(args, "no run with id '42'");
    snprintf(args, sizeof args, "--db %s --baseline nosuch --candidate last -o %s", db, tu_tmpdir());
    expect_error(args, "--baseline nosuch: no baseline named 'nosuch'");

    const char *bad = path_in("corrupt.db");
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
    cr_assert_eq(tu_write_file(bad, junk, sizeof junk), 0);
    snprintf(args, sizeof args, "--db %s -o %s", bad, tu_tmpdir());
    expect_error(args, "corrupt.db");

    snprintf(args, sizeof args, "--db %s/absent.db -o %s", tu_tmpdir(), tu_tmpdir());
    expect_error(args, "no such database");
    struct stat st;
    cr_expect(stat(path_in("absent.db"), &st) != 0, "the report created a database");

    snprintf(args, sizeof args, "--db %s --format pdf", db);
    expect_error(args, "--format");
    snprintf(args, sizeof args, "--db %s --chart-timeout 0", db);
    expect_error(args, "--chart-timeout: '0' is not a number in [0.01, 86400]");
}

/* ---- the views of compare verdicts, micro, ppl, load curves; --last by kind ---------- */

/* Renders html (a file under the test folder) in headless Chromium into NAME.png there, and
 * into $MLC_REPORT_SCREENS/NAME.png when that is set; the shot must not be blank. Skips
 * (unless MLC_REQUIRE_CHROMIUM=1) without chromium. */
static void screenshot(const char *html, const char *name)
{
    if (!have_program("chromium")) {
        const char *req = getenv("MLC_REQUIRE_CHROMIUM");
        if (req && !strcmp(req, "1"))
            cr_assert_fail("chromium is not installed and MLC_REQUIRE_CHROMIUM=1");
        return;
    }
    char shot[600], cmd[4096], *out = NULL;
    snprintf(shot, sizeof shot, "%s/%s.png", tu_tmpdir(), name);
    snprintf(cmd, sizeof cmd,
             "cd %s && HOME=%s timeout 120 chromium --headless --no-sandbox --disable-gpu "
             "--no-first-run --disable-dev-shm-usage --user-data-dir=%s/chromium-profile-%s "
             "--screenshot=%s --window-size=1100,1800 file://%s",
             tu_tmpdir(), tu_tmpdir(), tu_tmpdir(), name, shot, html);
    int rc = tu_run(cmd, &out);
    struct stat st;
    cr_assert(stat(shot, &st) == 0 && st.st_size > 1000, "no screenshot (exit %d): %s", rc, out ? out : "");
    free(out);
    cr_expect_gt(tu_png_nonwhite_pixels(shot), 20000, "screenshot %s looks blank", shot);
    const char *keep = getenv("MLC_REPORT_SCREENS");
    if (keep && *keep) {
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/%s.png'", keep, shot, keep, name);
        cr_expect_eq(tu_run(cmd, NULL), 0, "%s", cmd);
    }
}

/* The figure whose caption is caption: its SVG text (a static copy), or NULL. */
static const char *figure_svg(const char *h, const char *caption)
{
    static char buf[1 << 20];
    char want[256];
    snprintf(want, sizeof want, "<figcaption>%s</figcaption>", caption);
    const char *cap = strstr(h, want);
    if (!cap)
        return NULL;
    const char *start = NULL;
    for (const char *p = h; (p = strstr(p, "<svg")) && p < cap; p++)
        start = p;
    if (!start || (size_t)(cap - start) >= sizeof buf)
        return NULL;
    memcpy(buf, start, (size_t)(cap - start));
    buf[cap - start] = 0;
    return buf;
}

Test(report, compare_view_verdicts_and_samples, .timeout = 180)
{
    const char *db = path_in("cmpv.db");
    mlc_store *s = open_db(db);
    make_run(s, ONE, 1, 100.0, 10.0, 20);
    make_run(s, ONE, 1, 150.0, 10.0, 20);
    mlc_store_close(s);
    const char *dir = path_in("cmpv");
    char args[1024];
    snprintf(args, sizeof args, "--db %s --baseline 1 --candidate 2 --format html -o %s", db, dir);
    free(report(args, 0));
    char *h = read_text(path_in("cmpv/report.html"));
    cr_expect_null(check_tags(h));
    cr_expect(strstr(h, "<h2>Comparison: run 1 (baseline) vs run 2 (candidate)</h2>"), "%s", h);
    /* TTFT 100 -> 150 ms over 20 requests a side: far beyond 5% and 0.5 ms, p < 0.0001. */
    cr_expect(strstr(h, "<tr><td>c=1/ttft_ms</td><td>100</td><td>150</td><td>+50.00%</td><td>&lt;0.0001</td>"
                        "<td>20/20</td><td>regression</td>"), "%s", h);
    cr_expect(strstr(h, "<tr><td>c=1/failed</td><td>2</td><td>2</td><td>+0.00%</td><td>-</td><td>1/1</td>"
                        "<td>ok</td><td>within tolerance 0.1%</td></tr>"), "%s", h);
    cr_expect(strstr(h, "Verdict: 2 regressions, 0 improved, 9 metrics compared."));
    /* The comparison comes before the candidate's results, which come before its configuration. */
    const char *cmp = strstr(h, "<h2>Comparison"), *res = strstr(h, "<h2>Run 2: results"),
               *cfg = strstr(h, "<h2>Run 2: configuration");
    cr_expect(cmp && res && cfg && cmp < res && res < cfg);

    /* Same verdicts as `compare --json` on the same runs. */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s compare --db %s --baseline 1 --candidate 2 --json 2>/dev/null", tu_bin(), db);
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    int checked = 0;
    for (const char *p = out; (p = strstr(p, "\"name\":")); p++) {
        char name[128], verdict[32], row[320];
        const char *v = strstr(p, "\"verdict\":");
        if (!v || sscanf(p, "\"name\": \"%127[^\"]\"", name) != 1 || sscanf(v, "\"verdict\": \"%31[^\"]\"", verdict) != 1)
            continue;
        snprintf(row, sizeof row, "<tr><td>%s</td>", name);
        const char *r = strstr(h, row), *end = r ? strstr(r, "</tr>") : NULL;
        snprintf(row, sizeof row, "<td>%s</td>", verdict);
        const char *cell = r ? strstr(r, row) : NULL;
        cr_expect(cell && cell < end, "%s: report and compare disagree (compare: %s)", name, verdict);
        checked++;
    }
    cr_expect_eq(checked, 9, "%s", out);
    free(out);

    if (have_program("gnuplot")) {
        const char *svg = figure_svg(h, "Samples of both sides per metric (1 = the baseline median)");
        cr_assert_not_null(svg, "no samples chart");
        cr_expect(strstr(svg, "c=1/ttft_ms") && strstr(svg, "c=1/e2el_ms"), "metric labels missing");
        cr_expect(strstr(svg, "baseline") && strstr(svg, "candidate"), "legend missing");
        /* samples, TTFT CDF, E2E CDF, ITL histogram */
        cr_expect_eq(svgs_with_data(h), 4);
        free(h);
        screenshot(path_in("cmpv/report.html"), "report-compare");
        return;
    }
    free(h);
}

/* A micro run: tokens/s of pp64 and tg16 at 1 and 2 threads, three repetitions each. */
static void make_micro(mlc_store *s)
{
    mlc_err err = {0};
    mlc_run_info ri = RI;
    ri.kind = "micro";
    ri.target = "local";
    int64_t id;
    cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK, "%s", err.msg);
    const char *names[] = {"t=1/pp64", "t=1/tg16", "t=2/pp64", "t=2/tg16"};
    double mean[] = {500, 50, 900, 80};
    for (int i = 0; i < 4; i++) {
        double v[3] = {mean[i] - 10, mean[i], mean[i] + 10};
        cr_assert_eq(mlc_store_add_metric(s, id, names[i], "tok/s", "mean", mean[i], 1, &err), MLC_OK);
        cr_assert_eq(mlc_store_add_samples(s, id, names[i], v, 3, &err), MLC_OK);
    }
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK);
}

Test(report, micro_view, .timeout = 180)
{
    const char *db = path_in("micro.db");
    mlc_store *s = open_db(db);
    make_micro(s);
    mlc_store_close(s);
    char args[1024];
    snprintf(args, sizeof args, "--db %s --format html -o %s", db, path_in("micro"));
    free(report(args, 0));
    char *h = read_text(path_in("micro/report.html"));
    cr_expect_null(check_tags(h));
    cr_expect(strstr(h, "<h3>Tokens/s per setting (micro)</h3>"), "%s", h);
    /* mean, sample sd of {890, 900, 910} = 10, repetitions */
    cr_expect(strstr(h, "<tr><td>t=2</td><td>pp64</td><td>900.00</td><td>10.00</td><td>3</td></tr>"), "%s", h);
    cr_expect(strstr(h, "<tr><td>t=1</td><td>tg16</td><td>50.00</td><td>10.00</td><td>3</td></tr>"), "%s", h);
    cr_expect(!strstr(h, "Load point t=1"), "settings shown as load points");
    if (have_program("gnuplot")) {
        const char *svg = figure_svg(h, "Tokens/s per setting: prompt processing (pp) and generation (tg)");
        cr_assert_not_null(svg, "no micro chart");
        cr_expect(strstr(svg, "pp64") && strstr(svg, "tg16") && strstr(svg, "t=2"), "labels missing");
        cr_expect_eq(svgs_with_data(h), 1);
        free(h);
        screenshot(path_in("micro/report.html"), "report-micro");
        return;
    }
    free(h);
}

/* A ppl run with the perplexity of 4 chunks. */
static const double CHUNKS[] = {10.5, 11.25, 9.75, 12.0};

static void make_ppl(mlc_store *s)
{
    mlc_err err = {0};
    mlc_run_info ri = RI;
    ri.kind = "ppl";
    ri.target = "local";
    int64_t id;
    cr_assert_eq(mlc_store_run_begin(s, &ri, &id, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_store_add_perplexity(s, id, 128, 4, 10.8, 0.3, &err), MLC_OK);
    cr_assert_eq(mlc_store_add_metric(s, id, "ppl", "", "value", 10.8, -1, &err), MLC_OK);
    cr_assert_eq(mlc_store_add_samples(s, id, "chunk_ppl", CHUNKS, 4, &err), MLC_OK);
    cr_assert_eq(mlc_store_run_end(s, id, "complete", &err), MLC_OK);
}

Test(report, ppl_view, .timeout = 180)
{
    const char *db = path_in("ppl.db");
    mlc_store *s = open_db(db);
    make_ppl(s);
    mlc_store_close(s);
    char args[1024];
    snprintf(args, sizeof args, "--db %s -o %s", db, path_in("ppl-md"));
    free(report(args, 0));
    char *md = read_text(path_in("ppl-md/report.md"));
    cr_expect(strstr(md, "### Perplexity per chunk"), "%s", md);
    for (int i = 0; i < 4; i++) {
        char row[64];
        snprintf(row, sizeof row, "| %d | %.4f |", i + 1, CHUNKS[i]);
        cr_expect(strstr(md, row), "%s missing: %s", row, md);
    }
    cr_expect(strstr(md, "| ppl | value | 10.80 |  |"), "%s", md);
    free(md);
    snprintf(args, sizeof args, "--db %s --format html -o %s", db, path_in("ppl"));
    free(report(args, 0));
    char *h = read_text(path_in("ppl/report.html"));
    cr_expect_null(check_tags(h));
    cr_expect(strstr(h, "<tr><td>2</td><td>11.2500</td></tr>"), "%s", h);
    if (have_program("gnuplot")) {
        const char *svg = figure_svg(h, "Perplexity per chunk");
        cr_assert_not_null(svg, "no ppl chart");
        cr_expect(strstr(svg, "median 10.8750"), "the median line is missing"); /* (10.5 + 11.25) / 2 */
        cr_expect_eq(svgs_with_data(h), 1);
        free(h);
        screenshot(path_in("ppl/report.html"), "report-ppl");
        return;
    }
    free(h);
}

Test(report, load_curves_over_sweeps, .timeout = 180)
{
    const char *db = path_in("curves.db");
    mlc_store *s = open_db(db);
    make_run(s, SWEEP, 4, 50.0, 8.0, 10);
    make_run(s, SWEEP, 3, 80.0, 8.0, 10);
    mlc_store_close(s);
    char args[1024];
    snprintf(args, sizeof args, "--db %s --last 2 --format html -o %s", db, path_in("curves"));
    free(report(args, 0));
    char *h = read_text(path_in("curves/report.html"));
    cr_expect_null(check_tags(h));
    cr_expect(strstr(h, "<h2>Load curves over the sweeps</h2>"), "%s", h);
    /* run 1 at c=8: 40 req/s, 680 tok/s, TTFT p99 50*2.5*1.19, E2E p99 (125+16*20)*1.19 */
    cr_expect(strstr(h, "<tr><td>1</td><td>c=8</td><td>40.00</td><td>680.00</td><td>148.75</td><td>529.55</td></tr>"),
              "%s", h);
    /* run 2 at c=4: 30 req/s, 510 tok/s, TTFT p99 80*2*1.19, E2E p99 (160+16*16)*1.19 */
    cr_expect(strstr(h, "<tr><td>2</td><td>c=4</td><td>30.00</td><td>510.00</td><td>190.40</td><td>495.04</td></tr>"),
              "%s", h);
    cr_expect(!strstr(h, "<tr><td>2</td><td>c=8</td>"), "run 2 has no c=8");
    if (have_program("gnuplot")) {
        const char *svg = figure_svg(h, "Throughput vs p99 latency, one curve per sweep");
        cr_assert_not_null(svg, "no load-curve chart");
        cr_expect(strstr(svg, "run 1") && strstr(svg, "run 2"), "one curve per run");
        cr_expect(strstr(svg, "c=8"), "points are labelled by load point");
        free(h);
        screenshot(path_in("curves/report.html"), "report-load-curves");
        return;
    }
    free(h);
}

/* Counts the rows of the trend table (lines "| ID | 20..." in markdown). */
static int trend_rows(const char *md, int64_t id)
{
    char want[32];
    snprintf(want, sizeof want, "\n| %lld | 20", (long long)id);
    return count(md, want);
}

Test(report, last_never_mixes_kinds)
{
    char db[512];
    snprintf(db, sizeof db, "%s", path_in("kinds.db")); /* path_in's buffers are reused */
    mlc_store *s = open_db(db);
    make_run(s, ONE, 1, 100.0, 10.0, 5); /* 1: run */
    make_micro(s);                       /* 2: micro */
    make_run(s, ONE, 1, 110.0, 10.0, 5); /* 3: run */
    make_ppl(s);                         /* 4: ppl */
    make_micro(s);                       /* 5: micro */
    mlc_store_close(s);
    char args[1024];
    /* The newest run's kind: micro runs 2 and 5 only. */
    snprintf(args, sizeof args, "--db %s --last 4 -o %s", db, path_in("kinds"));
    free(report(args, 0));
    char *md = read_text(path_in("kinds/report.md"));
    cr_expect(strstr(md, "# mlc-bench report: last 2 runs of kind micro (latest 5)"), "%s", md);
    cr_expect(strstr(md, "## Trend of t=1/pp64 over the last 2 runs"), "%s", md);
    cr_expect_eq(trend_rows(md, 2) + trend_rows(md, 5), 2, "%s", md);
    cr_expect_eq(trend_rows(md, 1) + trend_rows(md, 3) + trend_rows(md, 4), 0, "%s", md);
    free(md);
    /* --kind run: runs 1 and 3, whatever came between. */
    snprintf(args, sizeof args, "--db %s --last 5 --kind run -o %s", db, path_in("kinds"));
    free(report(args, 0));
    md = read_text(path_in("kinds/report.md"));
    cr_expect(strstr(md, "# mlc-bench report: last 2 runs of kind run (latest 3)"), "%s", md);
    cr_expect_eq(trend_rows(md, 1) + trend_rows(md, 3), 2, "%s", md);
    cr_expect_eq(trend_rows(md, 2) + trend_rows(md, 4) + trend_rows(md, 5), 0, "%s", md);
    cr_expect(strstr(md, "| 110.00 | +10.0% |"), "%s", md);
    free(md);
    snprintf(args, sizeof args, "--db %s --last 3 --kind nosuch -o %s", db, path_in("kinds"));
    expect_error(args, "no runs of kind 'nosuch'");
    snprintf(args, sizeof args, "--db %s --kind run -o %s", db, path_in("kinds"));
    expect_error(args, "--kind goes with --last");
}

/* `ppl` stores each chunk's perplexity; the report lists exactly what ppl printed. */
Test(report, ppl_view_from_a_real_run, .timeout = 120)
{
    char model[1024], text[1024], db[600], cmd[4096], *out = NULL;
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q4_0.gguf");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    snprintf(db, sizeof db, "%s/realppl.db", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --chunks 3 --db %s", tu_bin(), model, text, db);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    char args[1024];
    snprintf(args, sizeof args, "--db %s -o %s", db, path_in("realppl"));
    free(report(args, 0));
    char *md = read_text(path_in("realppl/report.md"));
    cr_expect(strstr(md, "### Perplexity per chunk"), "%s", md);
    for (int c = 1; c <= 3; c++) {
        /* ppl prints "[C]VALUE," with 4 decimals, as the report does. */
        char tag[16], row[64];
        snprintf(tag, sizeof tag, "[%d]", c);
        const char *p = strstr(out, tag);
        cr_assert_not_null(p, "%s", out);
        snprintf(row, sizeof row, "| %d | %.4f |", c, atof(p + strlen(tag)));
        cr_expect(strstr(md, row), "%s not in the report: %s", row, md);
    }
    cr_expect(!strstr(md, "| 4 | "), "a fourth chunk: %s", md);
    free(md);
    free(out);
}
