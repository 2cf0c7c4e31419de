/* report.c: `mlc-bench report`: markdown and single-file HTML reports from the store.
 *
 * Tables come from the runs, fingerprints and metrics tables; charts (latency CDFs, ITL
 * histogram, throughput and p99 latency against the load, a metric's trend across runs with
 * the baseline band) are drawn by gnuplot, run as an external program on data files written
 * to a temporary folder. The gnuplot scripts are generated here (the terminal prologue plus
 * one plot body per chart), so the binary needs no installed data files. SVG is inlined in
 * the HTML; --png also writes PNG files next to the report. Without gnuplot (not on PATH, or
 * $MLC_GNUPLOT not executable) the report is still written with a note per chart. Each
 * gnuplot run has a time limit (--chart-timeout, $MLC_CHART_TIMEOUT, default 60 s): a program
 * that hangs is killed with its whole process group and, like a missing gnuplot, leaves
 * notes in place of its chart and every later one.
 *
 * The comparison of --baseline/--candidate is a simple verdict per metric (median change and
 * the metric's direction); the statistical gate is a later issue. */
#include "report.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"
#include "strbuf.h"

#define CMD "report"
/* |change| below this percentage is "~". */
#define NOISE_PCT 5.0
#define MAX_POINTS 64

/* ---- text escaping ------------------------------------------------------------------ */

/* HTML text: & < > " escaped. */
static void sb_html(mlc_strbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': mlc_sb_put(b, "&amp;", 5); break;
        case '<': mlc_sb_put(b, "&lt;", 4); break;
        case '>': mlc_sb_put(b, "&gt;", 4); break;
        case '"': mlc_sb_put(b, "&quot;", 6); break;
        default: mlc_sb_put(b, s, 1);
        }
    }
}

/* Markdown table cell or inline text: | escaped, newlines as spaces. */
static void sb_md(mlc_strbuf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            mlc_sb_put(b, "\\|", 2);
        else if (*s == '\n' || *s == '\r')
            mlc_sb_put(b, " ", 1);
        else
            mlc_sb_put(b, s, 1);
    }
}

/* ---- report state -------------------------------------------------------------------- */

typedef struct report {
    sqlite3 *db;
    const char *db_path;
    bool html, png;
    const char *outdir;
    mlc_strbuf out;
    char tmp[512];        /* temporary folder for chart data, "" until made */
    char gnuplot[1024];   /* the program, "" when unavailable */
    char no_gnuplot[256]; /* why not */
    double timeout_s;     /* per gnuplot run; then its process group is killed */
    int n_charts;
} report;

static void text(report *r, const char *s)
{
    if (r->html)
        sb_html(&r->out, s);
    else
        sb_md(&r->out, s);
}

static void heading(report *r, int level, const char *s)
{
    if (r->html) {
        mlc_sb_printf(&r->out, "<h%d>", level);
        sb_html(&r->out, s);
        mlc_sb_printf(&r->out, "</h%d>\n", level);
    } else {
        mlc_sb_printf(&r->out, "\n%.*s ", level, "######");
        sb_md(&r->out, s);
        mlc_sb_printf(&r->out, "\n\n");
    }
}

static void para(report *r, const char *s)
{
    if (r->html) {
        mlc_sb_printf(&r->out, "<p>");
        sb_html(&r->out, s);
        mlc_sb_printf(&r->out, "</p>\n");
    } else {
        sb_md(&r->out, s);
        mlc_sb_printf(&r->out, "\n\n");
    }
}

static void note(report *r, const char *s)
{
    if (r->html) {
        mlc_sb_printf(&r->out, "<p class=\"note\">");
        sb_html(&r->out, s);
        mlc_sb_printf(&r->out, "</p>\n");
    } else {
        mlc_sb_printf(&r->out, "> ");
        sb_md(&r->out, s);
        mlc_sb_printf(&r->out, "\n\n");
    }
}

static void code_block(report *r, const char *s)
{
    if (r->html) {
        mlc_sb_printf(&r->out, "<pre>");
        sb_html(&r->out, s);
        mlc_sb_printf(&r->out, "</pre>\n");
    } else {
        mlc_sb_printf(&r->out, "```json\n%s\n```\n\n", s);
    }
}

static void table_row(report *r, int n, const char *const *cells, bool head)
{
    if (r->html) {
        mlc_sb_printf(&r->out, "<tr>");
        for (int i = 0; i < n; i++) {
            mlc_sb_printf(&r->out, head ? "<th>" : "<td>");
            sb_html(&r->out, cells[i] ? cells[i] : "");
            mlc_sb_printf(&r->out, head ? "</th>" : "</td>");
        }
        mlc_sb_printf(&r->out, "</tr>\n");
        return;
    }
    mlc_sb_printf(&r->out, "|");
    for (int i = 0; i < n; i++) {
        mlc_sb_printf(&r->out, " ");
        sb_md(&r->out, cells[i] ? cells[i] : "");
        mlc_sb_printf(&r->out, " |");
    }
    mlc_sb_printf(&r->out, "\n");
    if (head) {
        mlc_sb_printf(&r->out, "|");
        for (int i = 0; i < n; i++)
            mlc_sb_printf(&r->out, i ? "---:|" : "---|");
        mlc_sb_printf(&r->out, "\n");
    }
}

static void table_begin(report *r, int n, const char *const *head)
{
    if (r->html)
        mlc_sb_printf(&r->out, "<table>\n");
    table_row(r, n, head, true);
}

static void table_end(report *r)
{
    mlc_sb_printf(&r->out, r->html ? "</table>\n" : "\n");
}

static void fmt_num(char *out, size_t cap, double v)
{
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.2f", v);
}

/* ---- database helpers ---------------------------------------------------------------- */

static sqlite3_stmt *prep(report *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "mlc-bench %s: %s: %s\n", CMD, r->db_path, sqlite3_errmsg(r->db));
        return NULL;
    }
    return st;
}

/* The value of metric NAME with STAT of a run; NaN when absent. *dir gets its direction. */
static double metric(report *r, int64_t run, const char *name, const char *stat, int *dir)
{
    double v = NAN;
    sqlite3_stmt *st = prep(r, "SELECT value, direction FROM metrics WHERE run_id=?1 AND name=?2"
                               " AND stat=?3 ORDER BY rowid DESC LIMIT 1");
    if (!st)
        return v;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, stat, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_double(st, 0);
        if (dir)
            *dir = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return v;
}

typedef struct points {
    int n;
    char name[MAX_POINTS][32];
} points;

/* Load points of a run ("c=1", "r=2.5"), in the order they were stored (= phase order). */
static void load_points(report *r, int64_t run, points *p)
{
    p->n = 0;
    sqlite3_stmt *st = prep(r, "SELECT lp FROM (SELECT substr(name, 1, instr(name, '/') - 1) AS lp,"
                               " min(rowid) AS first FROM metrics WHERE run_id=?1 AND"
                               " instr(name, '/') > 1 GROUP BY lp) ORDER BY first");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW && p->n < MAX_POINTS) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        snprintf(p->name[p->n++], sizeof p->name[0], "%s", s ? s : "");
    }
    sqlite3_finalize(st);
}

/* Resolves REF (a run id, a baseline name, or "last") to a run id; false with a message. */
static bool resolve_ref(report *r, const char *ref, int64_t *id)
{
    sqlite3_stmt *st;
    char *end;
    errno = 0;
    long long v = strtoll(ref, &end, 10);
    if (!strcmp(ref, "last"))
        st = prep(r, "SELECT max(id) FROM runs");
    else if (!errno && end != ref && !*end)
        st = prep(r, "SELECT id FROM runs WHERE id=?1");
    else
        st = prep(r, "SELECT run_id FROM baselines WHERE name=?1");
    if (!st)
        return false;
    if (!strcmp(ref, "last"))
        ;
    else if (!errno && end != ref && !*end)
        sqlite3_bind_int64(st, 1, v);
    else
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
    bool ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (ok)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!ok)
        fprintf(stderr, "mlc-bench %s: %s: no run '%s' (not a run id, a baseline name or 'last')\n",
                CMD, r->db_path, ref);
    return ok;
}

/* ---- gnuplot ------------------------------------------------------------------------- */

static void find_gnuplot(report *r)
{
    const char *env = getenv("MLC_GNUPLOT");
    r->gnuplot[0] = 0;
    if (env && *env) {
        if (access(env, X_OK) == 0)
            snprintf(r->gnuplot, sizeof r->gnuplot, "%s", env);
        else
            snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "MLC_GNUPLOT=%s is not executable", env);
        return;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char cand[1024];
        snprintf(cand, sizeof cand, "%.*s/gnuplot", (int)len, len ? path : ".");
        if (access(cand, X_OK) == 0) {
            snprintf(r->gnuplot, sizeof r->gnuplot, "%s", cand);
            return;
        }
        path += len + (colon ? 1 : 0);
    }
    snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "gnuplot is not on PATH");
}

/* The temporary folder for data and scripts, made on first use. */
static const char *tmpdir(report *r)
{
    if (r->tmp[0])
        return r->tmp;
    const char *t = getenv("TMPDIR");
    snprintf(r->tmp, sizeof r->tmp, "%s/mlc-report-XXXXXX", t && *t && !strchr(t, '\'') ? t : "/tmp");
    if (!mkdtemp(r->tmp)) {
        r->tmp[0] = 0;
        return NULL;
    }
    return r->tmp;
}

static void remove_tmpdir(report *r)
{
    if (!r->tmp[0])
        return;
    DIR *d = opendir(r->tmp);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", r->tmp, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(r->tmp);
    r->tmp[0] = 0;
}

/* A data file in the temporary folder: opened for writing, its path in path. */
static FILE *data_file(report *r, const char *name, char *path, size_t cap)
{
    const char *t = tmpdir(r);
    if (!t)
        return NULL;
    snprintf(path, cap, "%s/%s", t, name);
    return fopen(path, "w");
}

/* Waits for child pid (the leader of its own process group) up to timeout_s seconds; then,
 * or once it has exited, kills what is left of its group. False when it timed out. The
 * child is checked without being reaped (WNOWAIT), so its pid, and so its group id, cannot
 * be reused by another process while the group is killed. */
static bool wait_child(pid_t pid, double timeout_s, int *status)
{
    setpgid(pid, pid); /* also from this side: the group exists before the first kill */
    double deadline = mlc_cli_now() + timeout_s;
    bool exited = false;
    while (!exited && mlc_cli_now() < deadline) {
        siginfo_t si = {0};
        int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && si.si_pid == pid) || (rc < 0 && errno != EINTR)) {
            exited = true; /* or not ours to wait for (ECHILD): nothing to time */
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return exited;
}

/* Runs gnuplot on the script body with the terminal for fmt ("svg" or "png") writing out. */
static bool run_gnuplot(report *r, const char *name, const char *fmt, const char *body,
                        const char *out, char *why, size_t why_cap)
{
    const char *t = tmpdir(r);
    if (!t) {
        snprintf(why, why_cap, "cannot make a temporary folder");
        return false;
    }
    char script[1024], log[1024];
    snprintf(script, sizeof script, "%s/%s-%s.gp", t, name, fmt);
    snprintf(log, sizeof log, "%s/%s-%s.log", t, name, fmt);
    FILE *f = fopen(script, "w");
    if (!f) {
        snprintf(why, why_cap, "cannot write %.400s", script);
        return false;
    }
    if (!strcmp(fmt, "png"))
        fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                   "  set terminal pngcairo size 900,480 font 'sans,10'\n"
                   "} else {\n  set terminal png size 900,480\n}\n");
    else
        fprintf(f, "set terminal svg size 900,480 dynamic background rgb 'white' font 'sans,11'\n");
    fprintf(f, "set termoption noenhanced\nset output '%s'\nset grid\nset key top left\nset border 3\nset tics nomirror\n"
               "%s\nset output\n", out, body);
    if (fclose(f) != 0) {
        snprintf(why, why_cap, "cannot write %.400s", script);
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_cap, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own process group: a timeout kills whatever it started too */
        FILE *lf = freopen(log, "w", stdout);
        if (lf)
            dup2(fileno(stdout), 2);
        execl(r->gnuplot, r->gnuplot, script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (!wait_child(pid, r->timeout_s, &status)) {
        snprintf(why, why_cap, "%.300s did not finish in %g s (killed)", r->gnuplot, r->timeout_s);
        snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "%.200s timed out on an earlier chart", r->gnuplot);
        r->gnuplot[0] = 0;
        return false;
    }
    struct stat sst;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(out, &sst) != 0 || sst.st_size == 0) {
        char msg[160] = "";
        FILE *lf = fopen(log, "r");
        if (lf) {
            if (!fgets(msg, sizeof msg, lf))
                msg[0] = 0;
            fclose(lf);
        }
        msg[strcspn(msg, "\r\n")] = 0;
        snprintf(why, why_cap, "gnuplot failed (status %d)%s%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 msg[0] ? ": " : "", msg);
        return false;
    }
    return true;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    mlc_strbuf b = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        mlc_sb_put(&b, buf, n);
    fclose(f);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* One chart: drawn as inline SVG (HTML) and, with --png, as DIR/NAME.png (linked from the
 * markdown); a note in its place when it cannot be drawn. */
static void chart(report *r, const char *name, const char *title, const char *body)
{
    r->n_charts++;
    char why[512] = "";
    bool drawn = false;
    if (!r->gnuplot[0]) {
        snprintf(why, sizeof why, "%s", r->no_gnuplot);
    } else {
        drawn = true;
        if (r->html) {
            char svg[1024];
            const char *t = tmpdir(r);
            snprintf(svg, sizeof svg, "%s/%s.svg", t ? t : ".", name);
            char *s = NULL;
            if (run_gnuplot(r, name, "svg", body, svg, why, sizeof why) && (s = read_all(svg))) {
                char *start = strstr(s, "<svg");
                mlc_sb_printf(&r->out, "<figure>\n");
                mlc_sb_put(&r->out, start ? start : s, strlen(start ? start : s));
                mlc_sb_printf(&r->out, "<figcaption>");
                sb_html(&r->out, title);
                mlc_sb_printf(&r->out, "</figcaption></figure>\n");
            } else {
                drawn = false;
                if (!why[0])
                    snprintf(why, sizeof why, "cannot read %.400s", svg);
            }
            free(s);
        }
        if (drawn && r->png) {
            char png[1024];
            snprintf(png, sizeof png, "%s/%s.png", r->outdir, name);
            if (run_gnuplot(r, name, "png", body, png, why, sizeof why)) {
                if (!r->html) {
                    mlc_sb_printf(&r->out, "![");
                    sb_md(&r->out, title);
                    mlc_sb_printf(&r->out, "](%s.png)\n\n", name);
                }
            } else {
                drawn = false;
            }
        }
    }
    if (!drawn && (r->html || r->png)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "Chart \"%s\" not drawn: %s.", title, why);
        note(r, msg);
    }
}

/* ---- sections ------------------------------------------------------------------------ */

static bool run_exists(report *r, int64_t id)
{
    sqlite3_stmt *st = prep(r, "SELECT 1 FROM runs WHERE id=?1");
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, id);
    bool ok = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return ok;
}

static void run_config(report *r, int64_t run)
{
    static const char *const cols[] = {"kind", "label", "status", "started", "finished", "git_sha",
                                       "git_branch", "target", "backend", "device", "endpoint",
                                       "model_path", "model_sha256", "model_arch", "model_quant"};
    enum { NC = sizeof cols / sizeof cols[0] };
    sqlite3_stmt *st = prep(r, "SELECT kind, label, status, started, finished, git_sha, git_branch,"
                               " target, backend, device, endpoint, model_path, model_sha256,"
                               " model_arch, model_quant, config, fingerprint_id FROM runs"
                               " WHERE id=?1");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return;
    }
    char h[64];
    snprintf(h, sizeof h, "Run %lld: configuration", (long long)run);
    heading(r, 2, h);
    static const char *const head[] = {"field", "value"};
    table_begin(r, 2, head);
    for (int i = 0; i < NC; i++) {
        const char *v = (const char *)sqlite3_column_text(st, i);
        if (!v || !*v)
            continue;
        const char *cells[] = {cols[i], v};
        table_row(r, 2, cells, false);
    }
    table_end(r);
    const char *cfg = (const char *)sqlite3_column_text(st, 15);
    if (cfg && *cfg) {
        cJSON *j = cJSON_Parse(cfg);
        char *pretty = j ? cJSON_Print(j) : NULL;
        para(r, "Options (config JSON):");
        code_block(r, pretty ? pretty : cfg);
        free(pretty);
        cJSON_Delete(j);
    }
    int64_t fp = sqlite3_column_int64(st, 16);
    sqlite3_finalize(st);

    st = prep(r, "SELECT hash, cpu, cpus, gpu, driver, os, compiler, flags, build FROM fingerprints"
                 " WHERE id=?1");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, fp);
    if (sqlite3_step(st) == SQLITE_ROW) {
        heading(r, 3, "Fingerprint");
        static const char *const fcols[] = {"hash", "cpu", "cpus", "gpu", "driver", "os",
                                            "compiler", "flags", "build"};
        table_begin(r, 2, head);
        for (int i = 0; i < 9; i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            const char *cells[] = {fcols[i], v ? v : ""};
            table_row(r, 2, cells, false);
        }
        table_end(r);
    }
    sqlite3_finalize(st);
}

static const char *const LATENCIES[][2] = {
    {"ttft_ms", "TTFT (ms)"}, {"tpot_ms", "TPOT (ms)"}, {"itl_ms", "ITL (ms)"}, {"e2el_ms", "E2E (ms)"}};
static const char *const SCALARS[][2] = {
    {"request_throughput", "request throughput (req/s)"},
    {"output_throughput", "output throughput (tok/s)"},
    {"total_token_throughput", "total token throughput (tok/s)"},
    {"request_goodput", "goodput (req/s)"},
    {"failed", "failed requests"}};
#define N_LAT ((int)(sizeof LATENCIES / sizeof LATENCIES[0]))
#define N_SCAL ((int)(sizeof SCALARS / sizeof SCALARS[0]))

static void point_tables(report *r, int64_t run, const points *p)
{
    char name[128], cell[8][48];
    for (int k = 0; k < p->n; k++) {
        char h[96];
        snprintf(h, sizeof h, "Load point %s", p->name[k]);
        heading(r, 3, h);
        static const char *const sh[] = {"metric", "value"};
        table_begin(r, 2, sh);
        for (int i = 0; i < N_SCAL; i++) {
            snprintf(name, sizeof name, "%s/%s", p->name[k], SCALARS[i][0]);
            double v = metric(r, run, name, "value", NULL);
            if (isnan(v))
                continue;
            fmt_num(cell[0], sizeof cell[0], v);
            const char *cells[] = {SCALARS[i][1], cell[0]};
            table_row(r, 2, cells, false);
        }
        table_end(r);
        static const char *const lh[] = {"latency", "mean", "median", "p90", "p99"};
        static const char *const stats[] = {"mean", "median", "p90", "p99"};
        table_begin(r, 5, lh);
        for (int i = 0; i < N_LAT; i++) {
            snprintf(name, sizeof name, "%s/%s", p->name[k], LATENCIES[i][0]);
            for (int s = 0; s < 4; s++)
                fmt_num(cell[s], sizeof cell[s], metric(r, run, name, stats[s], NULL));
            const char *cells[] = {LATENCIES[i][1], cell[0], cell[1], cell[2], cell[3]};
            table_row(r, 5, cells, false);
        }
        table_end(r);
        /* Failures by kind (phase k of the run). */
        sqlite3_stmt *st = prep(r, "SELECT coalesce(error_kind, 'unknown'), count(*) FROM requests"
                                   " WHERE run_id=?1 AND phase=?2 AND ok=0 GROUP BY 1 ORDER BY 2 DESC");
        if (!st)
            continue;
        sqlite3_bind_int64(st, 1, run);
        sqlite3_bind_int(st, 2, k);
        bool any = false;
        static const char *const fh[] = {"failure", "requests"};
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (!any)
                table_begin(r, 2, fh);
            any = true;
            snprintf(cell[0], sizeof cell[0], "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(cell[1], sizeof cell[1], "%lld", (long long)sqlite3_column_int64(st, 1));
            const char *cells[] = {cell[0], cell[1]};
            table_row(r, 2, cells, false);
        }
        sqlite3_finalize(st);
        if (any)
            table_end(r);
        else
            para(r, "Failures: none.");
    }
}

/* Metrics not of a load point (micro, ppl runs...): one generic table. */
static void other_metrics(report *r, int64_t run)
{
    sqlite3_stmt *st = prep(r, "SELECT name, coalesce(stat, ''), value, coalesce(unit, '') FROM metrics"
                               " WHERE run_id=?1 AND instr(name, '/') <= 1 ORDER BY rowid");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, run);
    bool any = false;
    static const char *const h[] = {"metric", "stat", "value", "unit"};
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (!any) {
            heading(r, 3, "Metrics");
            table_begin(r, 4, h);
        }
        any = true;
        char v[48];
        fmt_num(v, sizeof v, sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2));
        const char *cells[] = {(const char *)sqlite3_column_text(st, 0),
                               (const char *)sqlite3_column_text(st, 1), v,
                               (const char *)sqlite3_column_text(st, 3)};
        table_row(r, 4, cells, false);
    }
    sqlite3_finalize(st);
    if (any)
        table_end(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CDF chart of a per-request latency (SQL expression in ms) over the load points. */
static void cdf_chart(report *r, int64_t run, const points *p, const char *name, const char *title,
                      const char *xlabel, const char *expr)
{
    mlc_strbuf body = {0};
    mlc_sb_printf(&body, "set xlabel '%s'\nset ylabel 'fraction of requests'\nset yrange [0:1.02]\n"
                  "set key bottom right\nplot ", xlabel);
    int series = 0;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM requests WHERE run_id=?1 AND phase=?2 AND ok=1 AND"
                              " first_token IS NOT NULL AND done IS NOT NULL AND sent IS NOT NULL"
                              " ORDER BY 1", expr);
    for (int k = 0; k < p->n; k++) {
        sqlite3_stmt *st = prep(r, sql);
        if (!st)
            break;
        sqlite3_bind_int64(st, 1, run);
        sqlite3_bind_int(st, 2, k);
        double *v = NULL;
        size_t n = 0, cap = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                double *nv = realloc(v, cap * sizeof *v);
                if (!nv)
                    break;
                v = nv;
            }
            v[n++] = sqlite3_column_double(st, 0);
        }
        sqlite3_finalize(st);
        if (n) {
            char fname[64], path[1024];
            snprintf(fname, sizeof fname, "%s-%d.dat", name, k);
            FILE *f = data_file(r, fname, path, sizeof path);
            if (f) {
                qsort(v, n, sizeof *v, cmp_double);
                for (size_t i = 0; i < n; i++)
                    fprintf(f, "%.6g %.6g\n", v[i], (double)(i + 1) / (double)n);
                fclose(f);
                mlc_sb_printf(&body, "%s'%s' using 1:2 with steps linewidth 2 title '%s'", series ? ", " : "",
                       path, p->name[k]);
                series++;
            }
        }
        free(v);
    }
    if (series)
        chart(r, name, title, body.p);
    free(body.p);
}

static void itl_chart(report *r, int64_t run)
{
    sqlite3_stmt *st = prep(r, "SELECT itl FROM requests WHERE run_id=?1 AND ok=1 AND itl IS NOT NULL");
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, run);
    double *v = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        for (int i = 0; b && i + 4 <= len; i += 4) {
            uint32_t u = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 |
                         (uint32_t)b[i + 3] << 24;
            float fv;
            memcpy(&fv, &u, sizeof fv);
            if (!isfinite(fv))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                double *nv = realloc(v, cap * sizeof *v);
                if (!nv)
                    goto done;
                v = nv;
            }
            v[n++] = fv;
        }
    }
done:
    sqlite3_finalize(st);
    if (n) {
        qsort(v, n, sizeof *v, cmp_double);
        double lo = v[0], hi = v[(size_t)((double)(n - 1) * 0.995)];
        if (hi <= lo)
            hi = lo + 1;
        enum { BINS = 40 };
        size_t count[BINS] = {0};
        double w = (hi - lo) / BINS;
        for (size_t i = 0; i < n; i++) {
            int b = (int)((v[i] - lo) / w);
            if (b >= BINS)
                b = BINS - 1;
            if (b < 0)
                b = 0;
            count[b]++;
        }
        char path[1024];
        FILE *f = data_file(r, "itl.dat", path, sizeof path);
        if (f) {
            for (int b = 0; b < BINS; b++)
                fprintf(f, "%.6g %zu\n", lo + (b + 0.5) * w, count[b]);
            fclose(f);
            char body[1536];
            snprintf(body, sizeof body,
                     "set xlabel 'inter-token latency (ms; gaps above the 99.5th percentile in the last bin)'\n"
                     "set ylabel 'gaps'\nset style fill solid 0.6 border -1\nset boxwidth %.6g\n"
                     "set yrange [0:*]\nplot '%s' using 1:2 with boxes title 'ITL (%zu gaps)'",
                     w * 0.9, path, n);
            chart(r, "itl_hist", "ITL histogram", body);
        }
    }
    free(v);
}

/* Throughput and p99 latency against concurrency or rate, for runs with several points. */
static void load_charts(report *r, int64_t run, const points *p)
{
    if (p->n < 2)
        return;
    char kind = p->name[0][0];
    double x[MAX_POINTS];
    for (int k = 0; k < p->n; k++) {
        char *end;
        if (p->name[k][0] != kind || p->name[k][1] != '=' || (kind != 'c' && kind != 'r'))
            return;
        x[k] = strtod(p->name[k] + 2, &end);
        if (end == p->name[k] + 2)
            return;
    }
    char path[1024], name[128];
    FILE *f = data_file(r, "load.dat", path, sizeof path);
    if (!f)
        return;
    for (int k = 0; k < p->n; k++) {
        double v[5];
        snprintf(name, sizeof name, "%s/output_throughput", p->name[k]);
        v[0] = metric(r, run, name, "value", NULL);
        snprintf(name, sizeof name, "%s/request_throughput", p->name[k]);
        v[1] = metric(r, run, name, "value", NULL);
        snprintf(name, sizeof name, "%s/ttft_ms", p->name[k]);
        v[2] = metric(r, run, name, "p99", NULL);
        snprintf(name, sizeof name, "%s/e2el_ms", p->name[k]);
        v[3] = metric(r, run, name, "p99", NULL);
        snprintf(name, sizeof name, "%s/itl_ms", p->name[k]);
        v[4] = metric(r, run, name, "p99", NULL);
        fprintf(f, "%.6g", x[k]);
        for (int i = 0; i < 5; i++)
            fprintf(f, " %.6g", v[i]);
        fprintf(f, "\n");
    }
    fclose(f);
    const char *xl = kind == 'c' ? "concurrency" : "request rate (req/s)";
    char body[2048];
    snprintf(body, sizeof body,
             "set xlabel '%s'\nset ylabel 'output tok/s'\nset y2label 'req/s'\nset y2tics\n"
             "set yrange [0:*]\nset y2range [0:*]\n%s"
             "plot '%s' using 1:2 with linespoints linewidth 2 pointtype 7 title 'output tok/s',"
             " '' using 1:3 axes x1y2 with linespoints linewidth 2 pointtype 5 title 'req/s'",
             xl, kind == 'c' ? "set logscale x 2\n" : "", path);
    chart(r, "throughput", kind == 'c' ? "Throughput vs concurrency" : "Throughput vs request rate", body);
    snprintf(body, sizeof body,
             "set xlabel '%s'\nset ylabel 'p99 latency (ms)'\nset yrange [0:*]\n%s"
             "plot '%s' using 1:4 with linespoints linewidth 2 pointtype 7 title 'TTFT p99',"
             " '' using 1:5 with linespoints linewidth 2 pointtype 5 title 'E2E p99',"
             " '' using 1:6 with linespoints linewidth 2 pointtype 9 title 'ITL p99'",
             xl, kind == 'c' ? "set logscale x 2\n" : "", path);
    chart(r, "p99_latency", kind == 'c' ? "p99 latency vs concurrency" : "p99 latency vs request rate",
          body);
}

static void run_section(report *r, int64_t run)
{
    run_config(r, run);
    points p;
    load_points(r, run, &p);
    if (p.n) {
        char h[64];
        snprintf(h, sizeof h, "Run %lld: results per load point", (long long)run);
        heading(r, 2, h);
        point_tables(r, run, &p);
    }
    other_metrics(r, run);
    if (r->html || r->png) {
        char h[64];
        snprintf(h, sizeof h, "Run %lld: charts", (long long)run);
        heading(r, 2, h);
        cdf_chart(r, run, &p, "ttft_cdf", "TTFT CDF", "TTFT (ms)", "(first_token - sent) * 1000.0");
        cdf_chart(r, run, &p, "e2e_cdf", "E2E latency CDF", "E2E latency (ms)", "(done - sent) * 1000.0");
        itl_chart(r, run);
        load_charts(r, run, &p);
    }
}

/* Direction-aware verdict of a change in percent. */
static const char *verdict(double pct, int dir)
{
    if (isnan(pct) || dir == 0 || fabs(pct) < NOISE_PCT)
        return "~";
    return (pct > 0) == (dir > 0) ? "better" : "worse";
}

static int compare_section(report *r, int64_t base, int64_t cand)
{
    char h[128];
    snprintf(h, sizeof h, "Comparison: run %lld (baseline) vs run %lld (candidate)", (long long)base,
             (long long)cand);
    heading(r, 2, h);
    char msg[256];
    snprintf(msg, sizeof msg, "Simple verdict per metric: change of the median (throughputs: the value); "
                              "|change| < %.0f%% is ~. Not a statistical test: the full statistical "
                              "gate is a later issue.", NOISE_PCT);
    note(r, msg);
    points p;
    load_points(r, cand, &p);
    static const char *const hd[] = {"load point", "metric", "baseline", "candidate", "change", "verdict"};
    int worse = 0, better = 0, rows = 0;
    table_begin(r, 6, hd);
    for (int k = 0; k < p.n; k++) {
        for (int i = 0; i < N_SCAL + N_LAT; i++) {
            bool lat = i >= N_SCAL;
            const char *m = lat ? LATENCIES[i - N_SCAL][0] : SCALARS[i][0];
            const char *label = lat ? LATENCIES[i - N_SCAL][1] : SCALARS[i][1];
            char name[128];
            snprintf(name, sizeof name, "%s/%s", p.name[k], m);
            int dir = 0, bdir = 0;
            double c = metric(r, cand, name, lat ? "median" : "value", &dir);
            double b = metric(r, base, name, lat ? "median" : "value", &bdir);
            if (isnan(c) || isnan(b))
                continue;
            double pct = b != 0 ? (c - b) / fabs(b) * 100.0 : (c == 0 ? 0.0 : NAN);
            const char *v = verdict(pct, dir);
            worse += !strcmp(v, "worse");
            better += !strcmp(v, "better");
            char cb[48], cc[48], cp[48];
            fmt_num(cb, sizeof cb, b);
            fmt_num(cc, sizeof cc, c);
            if (isnan(pct))
                snprintf(cp, sizeof cp, "-");
            else
                snprintf(cp, sizeof cp, "%+.1f%%", pct);
            const char *cells[] = {p.name[k], label, cb, cc, cp, v};
            table_row(r, 6, cells, false);
            rows++;
        }
    }
    table_end(r);
    if (!rows)
        para(r, "No metric in common between the two runs.");
    snprintf(msg, sizeof msg, "Summary: %d worse, %d better, %d within noise.", worse, better,
             rows - worse - better);
    para(r, msg);
    return worse;
}

/* The baseline band of the trend: a named/given baseline run's median and the p25..p75 of
 * its samples, else the median and min..max of the runs before the last. */
static void trend_section(report *r, const int64_t *runs, int n, const char *metric_name,
                          int64_t base_run, bool have_base)
{
    char h[256], msg[512];
    snprintf(h, sizeof h, "Trend of %s (median) over the last %d runs", metric_name, n);
    heading(r, 2, h);
    double *val = calloc((size_t)n, sizeof *val);
    if (!val)
        return;
    int dir = 0;
    for (int i = 0; i < n; i++) {
        int d = 0;
        val[i] = metric(r, runs[i], metric_name, "median", &d);
        if (isnan(val[i]))
            val[i] = metric(r, runs[i], metric_name, "value", &d);
        if (!isnan(val[i]))
            dir = d;
    }
    double bmed = NAN, blo = NAN, bhi = NAN;
    char blabel[128];
    if (have_base) {
        bmed = metric(r, base_run, metric_name, "median", NULL);
        if (isnan(bmed))
            bmed = metric(r, base_run, metric_name, "value", NULL);
        sqlite3_stmt *st = prep(r, "SELECT value FROM samples WHERE run_id=?1 AND metric=?2 AND"
                                   " value IS NOT NULL ORDER BY value");
        double *s = NULL;
        size_t ns = 0, cap = 0;
        if (st) {
            sqlite3_bind_int64(st, 1, base_run);
            sqlite3_bind_text(st, 2, metric_name, -1, SQLITE_TRANSIENT);
            while (sqlite3_step(st) == SQLITE_ROW) {
                if (ns == cap) {
                    cap = cap ? cap * 2 : 64;
                    double *nv = realloc(s, cap * sizeof *s);
                    if (!nv)
                        break;
                    s = nv;
                }
                s[ns++] = sqlite3_column_double(st, 0);
            }
            sqlite3_finalize(st);
        }
        if (ns >= 2) {
            blo = s[(size_t)((double)(ns - 1) * 0.25)];
            bhi = s[(size_t)((double)(ns - 1) * 0.75)];
        } else {
            blo = bhi = bmed;
        }
        free(s);
        snprintf(blabel, sizeof blabel, "baseline run %lld (median, p25..p75 of its samples)",
                 (long long)base_run);
    } else if (n >= 2) {
        double *prev = malloc((size_t)(n - 1) * sizeof *prev);
        int np = 0;
        for (int i = 0; prev && i < n - 1; i++)
            if (!isnan(val[i]))
                prev[np++] = val[i];
        if (np) {
            qsort(prev, (size_t)np, sizeof *prev, cmp_double);
            bmed = np % 2 ? prev[np / 2] : (prev[np / 2 - 1] + prev[np / 2]) / 2;
            blo = prev[0];
            bhi = prev[np - 1];
        }
        free(prev);
        snprintf(blabel, sizeof blabel, "baseline: the %d runs before the last (median, min..max)", n - 1);
    } else {
        snprintf(blabel, sizeof blabel, "no baseline");
    }
    static const char *const hd[] = {"run", "started", "git_sha", "median", "vs baseline", "verdict"};
    table_begin(r, 6, hd);
    sqlite3_stmt *st = prep(r, "SELECT started, coalesce(git_sha, '') FROM runs WHERE id=?1");
    for (int i = 0; i < n && st; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, runs[i]);
        char id[32], started[64] = "", sha[16] = "", v[48], pc[48] = "-";
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(started, sizeof started, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(sha, sizeof sha, "%.12s", (const char *)sqlite3_column_text(st, 1));
        }
        snprintf(id, sizeof id, "%lld", (long long)runs[i]);
        fmt_num(v, sizeof v, val[i]);
        double pct = !isnan(bmed) && bmed != 0 ? (val[i] - bmed) / fabs(bmed) * 100.0 : NAN;
        if (!isnan(pct))
            snprintf(pc, sizeof pc, "%+.1f%%", pct);
        const char *cells[] = {id, started, sha, v, pc, verdict(pct, dir)};
        table_row(r, 6, cells, false);
    }
    sqlite3_finalize(st);
    table_end(r);
    char bm[48], bl[48], bh[48];
    fmt_num(bm, sizeof bm, bmed);
    fmt_num(bl, sizeof bl, blo);
    fmt_num(bh, sizeof bh, bhi);
    snprintf(msg, sizeof msg, "Band: %s: %s [%s, %s]. Simple verdict (|change| < %.0f%% is ~); the "
                              "statistical gate is a later issue.", blabel, bm, bl, bh, NOISE_PCT);
    para(r, msg);

    if (r->html || r->png) {
        char path[1024];
        FILE *f = data_file(r, "trend.dat", path, sizeof path);
        if (f) {
            for (int i = 0; i < n; i++)
                fprintf(f, "%d %lld %.6g %.6g %.6g %.6g\n", i, (long long)runs[i], val[i], bmed,
                        blo, bhi);
            fclose(f);
            char body[2048];
            snprintf(body, sizeof body,
                     "set xlabel 'run'\nset ylabel '%s (median)'\nset xrange [-0.5:%d.5]\n"
                     "set key top left\nset style fill transparent solid 0.25 noborder\n"
                     "plot '%s' using 1:5:6 with filledcurves linecolor rgb '#4c9be8' title 'baseline band',"
                     " '' using 1:4 with lines dashtype 2 linecolor rgb '#1f5fa8' title 'baseline median',"
                     " '' using 1:3:xticlabels(2) with linespoints linewidth 2 pointtype 7 linecolor rgb '#d62728' title '%s'",
                     metric_name, n - 1, path, metric_name);
            chart(r, "trend", "Trend across runs with the baseline band", body);
        }
    }
    free(val);
}

/* ---- command ------------------------------------------------------------------------- */

static const char usage[] =
    "usage: mlc-bench report [--db F] [--run ID | --last N | --baseline REF --candidate REF]\n"
    "                        [--metric NAME] [--format md|html] [-o DIR] [--png]\n"
    "\n"
    "Markdown or single-file HTML report of runs in the store: configuration, fingerprint,\n"
    "metrics per load point, comparison verdicts, and charts drawn by gnuplot (TTFT/E2E CDFs,\n"
    "ITL histogram, throughput and p99 latency against the load, a metric's trend).\n"
    "\n"
    "  --db F              store (default $MLC_BENCH_DB or ./mlc-bench.db)\n"
    "  --run ID            one run (default: the last run)\n"
    "  --last N            the last N runs: the latest in full, and the trend of --metric\n"
    "  --metric NAME       trend metric (default: FIRST_LOAD_POINT/ttft_ms of the latest run)\n"
    "  --baseline REF      REF: a run id, a baseline name, or 'last'; with --candidate: a\n"
    "  --candidate REF     comparison (simple median verdicts); with --last: the trend's band\n"
    "  --format md|html    default md (appended to $GITHUB_STEP_SUMMARY when set)\n"
    "  -o DIR              output folder (default .): DIR/report.md or DIR/report.html\n"
    "  --png               also write the charts as PNG files into DIR\n"
    "  --chart-timeout S   seconds one gnuplot run may take (default $MLC_CHART_TIMEOUT or 60);\n"
    "                      then it is killed (its process group) and notes replace the charts\n"
    "\n"
    "gnuplot: $MLC_GNUPLOT or gnuplot on PATH; without it, notes in place of the charts.\n"
    "exit status: 0 written, 1 cannot write, 2 usage error or nothing to report\n";

/* mkdir -p. */
static bool make_dirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return false;
        *c = '/';
    }
    return mkdir(p, 0777) == 0 || errno == EEXIST;
}

static bool write_file(const char *path, const char *data, size_t n, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f)
        return false;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0) && w == n;
}

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;"
    "padding:0 1em;color:#222;background:#fff}h1{border-bottom:2px solid #ddd}"
    "table{border-collapse:collapse;margin:0.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f0f3f7}td:first-child,th:first-child{text-align:left}"
    "pre{background:#f6f8fa;padding:0.6em;overflow:auto;font-size:90%}"
    ".note{background:#fff8e0;border-left:4px solid #e0b000;padding:0.4em 0.8em}"
    "figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:90%}";

int mlc_cmd_report(int argc, char **argv)
{
    const char *db_path = NULL, *run_ref = NULL, *base_ref = NULL, *cand_ref = NULL;
    const char *format = "md", *outdir = NULL, *metric_name = NULL;
    int last = 0;
    bool png = false;
    float chart_timeout = 60;
    const char *env_timeout = getenv("MLC_CHART_TIMEOUT");
    if (env_timeout && *env_timeout && !mlc_cli_float(CMD, "MLC_CHART_TIMEOUT", env_timeout, 0.01, 86400, &chart_timeout))
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--png")) {
            png = true;
            continue;
        } else if (!strcmp(a, "--db")) {
            dst = &db_path;
        } else if (!strcmp(a, "--run")) {
            dst = &run_ref;
        } else if (!strcmp(a, "--baseline")) {
            dst = &base_ref;
        } else if (!strcmp(a, "--candidate")) {
            dst = &cand_ref;
        } else if (!strcmp(a, "--format")) {
            dst = &format;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            dst = &outdir;
        } else if (!strcmp(a, "--metric")) {
            dst = &metric_name;
        } else if (!strcmp(a, "--chart-timeout")) {
            const char *v = mlc_cli_value(CMD, argc, argv, &i);
            if (!v || !mlc_cli_float(CMD, a, v, 0.01, 86400, &chart_timeout))
                return 2;
            continue;
        } else if (!strcmp(a, "--last")) {
            const char *v = mlc_cli_value(CMD, argc, argv, &i);
            if (!v || !mlc_cli_int(CMD, "--last", v, 1, 100000, &last))
                return 2;
            continue;
        } else {
            fprintf(stderr, "mlc-bench %s: unknown option '%s' (see mlc-bench report --help)\n", CMD, a);
            return 2;
        }
        if (!(*dst = mlc_cli_value(CMD, argc, argv, &i)))
            return 2;
    }
    if (strcmp(format, "md") && strcmp(format, "html")) {
        fprintf(stderr, "mlc-bench %s: --format: '%s' is not md or html\n", CMD, format);
        return 2;
    }
    if ((cand_ref != NULL) && !base_ref) {
        fprintf(stderr, "mlc-bench %s: --candidate needs --baseline\n", CMD);
        return 2;
    }
    if (base_ref && !cand_ref && !last) {
        fprintf(stderr, "mlc-bench %s: --baseline needs --candidate (or --last N for a trend)\n", CMD);
        return 2;
    }
    if ((run_ref && (last || cand_ref)) || (last && cand_ref)) {
        fprintf(stderr, "mlc-bench %s: --run, --last and --baseline/--candidate exclude each other\n", CMD);
        return 2;
    }
    if (!db_path)
        db_path = mlc_store_default_path();
    struct stat dst_st;
    if (stat(db_path, &dst_st) != 0) {
        fprintf(stderr, "mlc-bench %s: %s: no such database\n", CMD, db_path);
        return 2;
    }

    mlc_err err = {0};
    mlc_store *store = NULL;
    if (mlc_store_open_readonly(db_path, &store, &err) != MLC_OK) {
        fprintf(stderr, "mlc-bench %s: %s\n", CMD, err.msg);
        return 2;
    }
    report r = {.db = mlc_store_db(store), .db_path = db_path, .html = !strcmp(format, "html"),
                .png = png, .outdir = outdir ? outdir : ".", .timeout_s = chart_timeout};
    int rc = 2;
    int64_t *runs = NULL;
    int n_runs = 0;
    int64_t base = 0, cand = 0, main_run = 0;
    bool have_base = false;

    int64_t n_total = 0;
    sqlite3_stmt *st = prep(&r, "SELECT count(*), max(id) FROM runs");
    if (!st)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        n_total = sqlite3_column_int64(st, 0);
        main_run = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (n_total == 0) {
        fprintf(stderr, "mlc-bench %s: %s: no runs in the database\n", CMD, db_path);
        goto out;
    }
    if (run_ref) {
        char *end;
        errno = 0;
        long long v = strtoll(run_ref, &end, 10);
        if (errno || end == run_ref || *end || !run_exists(&r, v)) {
            fprintf(stderr, "mlc-bench %s: %s: no run with id '%s'\n", CMD, db_path, run_ref);
            goto out;
        }
        main_run = v;
    }
    if (cand_ref) {
        if (!resolve_ref(&r, base_ref, &base) || !resolve_ref(&r, cand_ref, &cand))
            goto out;
        main_run = cand;
    }
    if (last) {
        if (base_ref) {
            if (!resolve_ref(&r, base_ref, &base))
                goto out;
            have_base = true;
        } else {
            st = prep(&r, "SELECT run_id FROM baselines ORDER BY name = 'main' DESC, name LIMIT 1");
            if (st && sqlite3_step(st) == SQLITE_ROW) {
                base = sqlite3_column_int64(st, 0);
                have_base = true;
            }
            sqlite3_finalize(st);
        }
        runs = calloc((size_t)last, sizeof *runs);
        st = runs ? prep(&r, "SELECT id FROM runs ORDER BY id DESC LIMIT ?1") : NULL;
        if (!st)
            goto out;
        sqlite3_bind_int(st, 1, last);
        while (sqlite3_step(st) == SQLITE_ROW && n_runs < last)
            runs[n_runs++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        for (int i = 0; i < n_runs / 2; i++) {
            int64_t t = runs[i];
            runs[i] = runs[n_runs - 1 - i];
            runs[n_runs - 1 - i] = t;
        }
        main_run = runs[n_runs - 1];
    }
    rc = 1;
    if (outdir && !make_dirs(outdir)) {
        fprintf(stderr, "mlc-bench %s: %s: cannot create the folder: %s\n", CMD, outdir, strerror(errno));
        goto out;
    }
    if (r.html || r.png)
        find_gnuplot(&r);

    char title[256];
    if (cand_ref)
        snprintf(title, sizeof title, "mlc-bench report: run %lld vs run %lld", (long long)base,
                 (long long)cand);
    else if (last)
        snprintf(title, sizeof title, "mlc-bench report: last %d runs (latest %lld)", n_runs,
                 (long long)main_run);
    else
        snprintf(title, sizeof title, "mlc-bench report: run %lld", (long long)main_run);
    if (r.html) {
        mlc_sb_printf(&r.out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
        sb_html(&r.out, title);
        mlc_sb_printf(&r.out, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", CSS);
        sb_html(&r.out, title);
        mlc_sb_printf(&r.out, "</h1>\n");
    } else {
        mlc_sb_printf(&r.out, "# ");
        sb_md(&r.out, title);
        mlc_sb_printf(&r.out, "\n\n");
    }
    {
        char m[1024];
        snprintf(m, sizeof m, "Store: %s.", db_path);
        para(&r, m);
    }
    if (cand_ref)
        compare_section(&r, base, cand);
    if (last) {
        char mname[160];
        if (metric_name) {
            snprintf(mname, sizeof mname, "%s", metric_name);
        } else {
            points p;
            load_points(&r, main_run, &p);
            snprintf(mname, sizeof mname, "%s/ttft_ms", p.n ? p.name[0] : "c=1");
        }
        trend_section(&r, runs, n_runs, mname, base, have_base);
    }
    run_section(&r, main_run);
    if (r.html) {
        mlc_sb_printf(&r.out, "<p class=\"foot\">");
        text(&r, "Written by mlc-bench " MLC_VERSION ". Charts: gnuplot. Self-contained: no scripts, "
                 "no network.");
        mlc_sb_printf(&r.out, "</p>\n</body>\n</html>\n");
    }
    if (r.out.oom) {
        fprintf(stderr, "mlc-bench %s: out of memory\n", CMD);
        goto out;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/report.%s", r.outdir, r.html ? "html" : "md");
    if (!write_file(path, r.out.p, r.out.len, "w")) {
        fprintf(stderr, "mlc-bench %s: %s: cannot write: %s\n", CMD, path, strerror(errno));
        goto out;
    }
    const char *summary = getenv("GITHUB_STEP_SUMMARY");
    if (!r.html && summary && *summary && !write_file(summary, r.out.p, r.out.len, "a"))
        fprintf(stderr, "mlc-bench %s: %s: cannot append the step summary: %s\n", CMD, summary,
                strerror(errno));
    printf("wrote %s\n", path);
    rc = 0;
out:
    remove_tmpdir(&r);
    free(r.out.p);
    free(runs);
    mlc_store_close(store);
    return rc;
}
