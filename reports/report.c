/* report.c: `mlc-bench report` (report.h): the command. It picks the runs (one run, the last
 * N runs of one kind, or a baseline/candidate pair in the reference grammar of runref.h),
 * lays out the views (compare_view.h, kind_view.h, run_view.h) into one document (doc.h)
 * and writes it, charts drawn by gnuplot (plot.h). */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../bench/cli.h"
#include "../bench/runref.h"
#include "../bench/store_query.h"
#include "compare_view.h"
#include "kind_view.h"
#include "plot.h"
#include "run_view.h"

#define CMD "report"

static const char usage[] =
    "usage: mlc-bench report [--db F] [--run ID | --last N [--kind K] | --baseline REF --candidate REF]\n"
    "                        [--metric NAME] [--format md|html] [-o DIR] [--png]\n"
    "\n"
    "Markdown or single-file HTML report of runs in the store. Each run shows its results first\n"
    "(per load point with failures, a load curve for sweeps; per setting for micro runs; per\n"
    "chunk for ppl runs), then its charts (TTFT/E2E CDFs, ITL histogram, throughput and p99\n"
    "latency against the load, drawn by gnuplot), then its configuration and fingerprint.\n"
    "\n"
    "  --db F              store (default $MLC_BENCH_DB or ./mlc-bench.db)\n"
    "  --run ID            one run (default: the last run)\n"
    "  --last N            the last N runs of one kind (never mixed): load curves of the sweeps\n"
    "                      among them, the trend of --metric with verdicts, the latest in full\n"
    "  --kind K            with --last: runs of kind K (run, micro, ppl, ab...; default: the\n"
    "                      kind of the newest run)\n"
    "  --metric NAME       trend metric (default: FIRST_LOAD_POINT/ttft_ms of the latest run,\n"
    "                      else its first metric)\n"
    "  --baseline REF      REF as in mlc-bench compare: a run id, a baseline name, last,\n"
    "  --candidate REF     last:N or label:TEXT. With --candidate: the verdict of every metric\n"
    "                      by compare's rule (default options), a table and the samples of\n"
    "                      both sides as a chart; with --last: the trend's baseline\n"
    "  --format md|html    default md (appended to $GITHUB_STEP_SUMMARY when set)\n"
    "  -o DIR              output folder (default .): DIR/report.md or DIR/report.html\n"
    "  --png               also write the charts as PNG files into DIR\n"
    "  --chart-timeout S   seconds one gnuplot run may take (default $MLC_CHART_TIMEOUT or 60);\n"
    "                      then it is killed (its process group) and notes replace the charts\n"
    "\n"
    "gnuplot: $MLC_GNUPLOT or gnuplot on PATH; without it, notes in place of the charts.\n"
    "exit status: 0 written, 1 cannot write, 2 usage error or nothing to report\n";

typedef struct report_args {
    const char *db, *run, *base, *cand, *format, *outdir, *metric, *kind;
    int last;
    bool png;
    float chart_timeout;
} report_args;

/* 0 parsed, 1 help printed, 2 usage error (message printed). */
static int parse(int argc, char **argv, report_args *a)
{
    *a = (report_args){.format = "md", .chart_timeout = 60};
    const char *env = getenv("MLC_CHART_TIMEOUT");
    if (env && *env && !mlc_cli_float(CMD, "MLC_CHART_TIMEOUT", env, 0.01, 86400, &a->chart_timeout))
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage, stdout);
            return 1;
        }
        if (!strcmp(o, "--png")) {
            a->png = true;
            continue;
        }
        const struct {
            const char *flag, **dst;
        } valued[] = {{"--db", &a->db}, {"--run", &a->run}, {"--baseline", &a->base}, {"--candidate", &a->cand},
                      {"--format", &a->format}, {"-o", &a->outdir}, {"--output", &a->outdir},
                      {"--metric", &a->metric}, {"--kind", &a->kind}, {"--chart-timeout", NULL}, {"--last", NULL}};
        size_t k = 0, nv = sizeof valued / sizeof valued[0];
        while (k < nv && strcmp(o, valued[k].flag))
            k++;
        if (k == nv) {
            fprintf(stderr, "mlc-bench %s: unknown option '%s' (see mlc-bench report --help)\n", CMD, o);
            return 2;
        }
        if (!(v = mlc_cli_value(CMD, argc, argv, &i)))
            return 2;
        if (!strcmp(o, "--chart-timeout") && !mlc_cli_float(CMD, o, v, 0.01, 86400, &a->chart_timeout))
            return 2;
        if (!strcmp(o, "--last") && !mlc_cli_int(CMD, o, v, 1, 100000, &a->last))
            return 2;
        if (valued[k].dst)
            *valued[k].dst = v;
    }
    return 0;
}

/* One line and false when the options do not fit together. */
static bool check(const report_args *a)
{
    const char *why = NULL;
    if (strcmp(a->format, "md") && strcmp(a->format, "html")) {
        fprintf(stderr, "mlc-bench %s: --format: '%s' is not md or html\n", CMD, a->format);
        return false;
    }
    if (a->cand && !a->base)
        why = "--candidate needs --baseline";
    else if (a->base && !a->cand && !a->last)
        why = "--baseline needs --candidate (or --last N for a trend)";
    else if ((a->run && (a->last || a->cand)) || (a->last && a->cand))
        why = "--run, --last and --baseline/--candidate exclude each other";
    else if (a->kind && !a->last)
        why = "--kind goes with --last";
    if (why)
        fprintf(stderr, "mlc-bench %s: %s\n", CMD, why);
    return !why;
}

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

/* What the report is about, resolved from the options. */
typedef struct plan {
    int64_t main_run;       /* shown in full */
    int64_t *runs;          /* --last: oldest first */
    int n_runs;
    char kind[32];          /* --last: the kind of every run */
    mlc_runref *base, *cand; /* --baseline (with --candidate or --last), --candidate */
} plan;

static void first_metric(void *ctx, const char *name, const char *stat, double v, const char *unit, int dir)
{
    (void)stat, (void)v, (void)unit, (void)dir;
    char *out = ctx;
    if (!*out)
        snprintf(out, 160, "%s", name);
}

/* The default trend metric: the first load point's TTFT, else the run's first metric. */
static void default_metric(mlc_doc *d, int64_t run, char out[160])
{
    mlc_view_points p;
    mlc_view_points_load(d, run, &p);
    out[0] = 0;
    mlc_run_head rh;
    mlc_store_run_head(d->store, run, &rh);
    if (p.n && strcmp(rh.kind, "micro"))
        snprintf(out, 160, "%s/ttft_ms", p.name[0]);
    else
        mlc_store_each_metric(d->store, run, first_metric, out);
}

/* Resolves the runs; false with one line printed. */
static bool make_plan(mlc_doc *d, const report_args *a, plan *p)
{
    struct sqlite3 *db = mlc_store_db(d->store);
    if (mlc_store_run_count(d->store, &p->main_run) == 0) {
        fprintf(stderr, "mlc-bench %s: %s: no runs in the database\n", CMD, d->db_path);
        return false;
    }
    if (a->run) {
        char *end;
        errno = 0;
        long long v = strtoll(a->run, &end, 10);
        if (errno || end == a->run || *end || !mlc_store_run_exists(d->store, v)) {
            fprintf(stderr, "mlc-bench %s: %s: no run with id '%s'\n", CMD, d->db_path, a->run);
            return false;
        }
        p->main_run = v;
    }
    if (a->base && !(p->base = calloc(1, sizeof *p->base)))
        return false;
    if (a->cand) {
        if (!(p->cand = calloc(1, sizeof *p->cand)) ||
            !mlc_runref_resolve(db, CMD, a->base, a->cand, NULL, p->base, p->cand))
            return false;
        p->main_run = mlc_runref_newest(p->cand);
    }
    if (!a->last)
        return true;
    mlc_run_head rh;
    mlc_store_run_head(d->store, p->main_run, &rh);
    snprintf(p->kind, sizeof p->kind, "%s", a->kind ? a->kind : rh.kind);
    if (a->base && !mlc_runref_resolve_one(db, CMD, a->base, "baseline", p->kind, p->base))
        return false;
    if (!a->base) {
        int64_t b;
        if (mlc_store_default_baseline(d->store, &b) && mlc_store_run_head(d->store, b, &rh) &&
            !strcmp(rh.kind, p->kind) && (p->base = calloc(1, sizeof *p->base))) {
            p->base->ids[0] = b;
            p->base->n = 1;
            snprintf(p->base->desc, sizeof p->base->desc, "run %lld", (long long)b);
        }
    }
    if (!(p->runs = calloc((size_t)a->last, sizeof *p->runs)))
        return false;
    p->n_runs = mlc_store_last_runs(d->store, p->kind, a->last, p->runs);
    if (!p->n_runs) {
        fprintf(stderr, "mlc-bench %s: %s: no runs of kind '%s'\n", CMD, d->db_path, p->kind);
        return false;
    }
    p->main_run = p->runs[p->n_runs - 1];
    return true;
}

static void title(const report_args *a, const plan *p, char *out, size_t cap)
{
    if (a->cand)
        snprintf(out, cap, "mlc-bench report: %s vs %s", p->base->desc, p->cand->desc);
    else if (a->last)
        snprintf(out, cap, "mlc-bench report: last %d runs of kind %s (latest %lld)", p->n_runs, p->kind,
                 (long long)p->main_run);
    else
        snprintf(out, cap, "mlc-bench report: run %lld", (long long)p->main_run);
}

/* Lays the views out into d; false when they cannot be (message printed). */
static bool views(mlc_doc *d, const report_args *a, const plan *p)
{
    char t[640];
    title(a, p, t, sizeof t);
    mlc_doc_begin(d, t);
    snprintf(t, sizeof t, "Store: %s.", d->db_path);
    mlc_doc_para(d, t);
    if (a->cand && mlc_view_compare(d, p->base, p->cand) < 0)
        return false;
    if (a->last) {
        int sweeps = 0;
        for (int i = 0; i < p->n_runs; i++) {
            mlc_view_points pts;
            mlc_view_points_load(d, p->runs[i], &pts);
            sweeps += pts.n >= 2;
        }
        if (sweeps >= 2 && !strcmp(p->kind, "run")) {
            mlc_doc_heading(d, 2, "Load curves over the sweeps");
            mlc_view_load_curve(d, p->runs, p->n_runs);
        }
        char m[160];
        if (a->metric)
            snprintf(m, sizeof m, "%s", a->metric);
        else
            default_metric(d, p->main_run, m);
        mlc_view_trend(d, p->runs, p->n_runs, m, p->base);
    }
    mlc_view_run(d, p->main_run);
    mlc_doc_end(d);
    return true;
}

static int write_report(mlc_doc *d)
{
    if (d->out.oom) {
        fprintf(stderr, "mlc-bench %s: out of memory\n", CMD);
        return 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/report.%s", d->outdir, d->html ? "html" : "md");
    if (!write_file(path, d->out.p, d->out.len, "w")) {
        fprintf(stderr, "mlc-bench %s: %s: cannot write: %s\n", CMD, path, strerror(errno));
        return 1;
    }
    const char *summary = getenv("GITHUB_STEP_SUMMARY");
    if (!d->html && summary && *summary && !write_file(summary, d->out.p, d->out.len, "a"))
        fprintf(stderr, "mlc-bench %s: %s: cannot append the step summary: %s\n", CMD, summary, strerror(errno));
    printf("wrote %s\n", path);
    return 0;
}

int mlc_cmd_report(int argc, char **argv)
{
    report_args a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!check(&a))
        return 2;
    const char *db_path = a.db ? a.db : mlc_store_default_path();
    struct stat st;
    if (stat(db_path, &st) != 0) {
        fprintf(stderr, "mlc-bench %s: %s: no such database\n", CMD, db_path);
        return 2;
    }
    mlc_err err = {0};
    mlc_store *store = NULL;
    if (mlc_store_open_readonly(db_path, &store, &err) != MLC_OK) {
        fprintf(stderr, "mlc-bench %s: %s\n", CMD, err.msg);
        return 2;
    }
    mlc_doc d = {.store = store, .db_path = db_path, .html = !strcmp(a.format, "html"), .png = a.png,
                 .outdir = a.outdir ? a.outdir : ".", .timeout_s = a.chart_timeout};
    plan p = {0};
    rc = 2;
    if (!make_plan(&d, &a, &p))
        goto out;
    rc = 1;
    if (a.outdir && !make_dirs(a.outdir)) {
        fprintf(stderr, "mlc-bench %s: %s: cannot create the folder: %s\n", CMD, a.outdir, strerror(errno));
        goto out;
    }
    if (mlc_plot_wanted(&d))
        mlc_plot_find(&d);
    rc = views(&d, &a, &p) ? write_report(&d) : 2;
out:
    mlc_plot_cleanup(&d);
    free(d.out.p);
    free(p.runs);
    free(p.base);
    free(p.cand);
    mlc_store_close(store);
    return rc;
}
