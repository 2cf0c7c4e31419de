/* compare_view.c: the comparison and trend views (compare_view.h). */
#include "compare_view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/store_query.h"
#include "../bench/verdict.h"
#include "plot.h"

/* Most metrics in the samples chart (the rows that are not `ok` first). */
#define CHART_METRICS 12

static void verdict_table(mlc_doc *d, const mlc_verdict_table *t)
{
    static const char *const hd[] = {"metric", "baseline", "candidate", "change", "p", "n (b/c)", "verdict",
                                     "why"};
    mlc_doc_table_begin(d, 8, hd);
    for (int i = 0; i < t->n; i++) {
        const mlc_verdict_row *r = &t->r[i];
        char p[16], ch[24], n[32], m0[32], m1[32];
        mlc_verdict_fmt_p(r, p, sizeof p);
        mlc_verdict_fmt_change(r, ch, sizeof ch);
        mlc_verdict_fmt_n(r, n, sizeof n);
        mlc_verdict_fmt_med(r->med[0], "%.4g", m0, sizeof m0);
        mlc_verdict_fmt_med(r->med[1], "%.4g", m1, sizeof m1);
        const char *cells[] = {r->name, m0, m1, ch, p, n, r->verdict, r->why};
        mlc_doc_table_row(d, 8, cells);
    }
    mlc_doc_table_end(d);
}

/* Rows worth a box: samples on both sides and more than one on one; changed rows first. */
static int chart_rows(const mlc_verdict_table *t, int *pick)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < t->n && n < CHART_METRICS; i++) {
            const mlc_verdict_row *r = &t->r[i];
            bool plain = !strcmp(r->verdict, "ok") || !strcmp(r->verdict, "-") || !strcmp(r->verdict, "n/a");
            if (r->s[0].n && r->s[1].n && r->s[0].n + r->s[1].n > 2 && r->med[0] != 0 && plain == (pass == 1))
                pick[n++] = i;
        }
    }
    return n;
}

/* Box plots of both sides' samples per metric, scaled by the baseline median (1 = the
 * baseline's median), so metrics of different units share one axis. */
static void samples_chart(mlc_doc *d, const mlc_verdict_table *t)
{
    int pick[CHART_METRICS], n = chart_rows(t, pick);
    if (!n || !mlc_plot_wanted(d))
        return;
    mlc_strbuf body = {0};
    mlc_sb_printf(&body, "set ylabel 'sample / baseline median'\nset xrange [-0.6:%d.6]\nset xtics rotate by -25 (",
                  n - 1);
    for (int k = 0; k < n; k++)
        mlc_sb_printf(&body, "%s'%s' %d", k ? ", " : "", t->r[pick[k]].name, k);
    mlc_sb_printf(&body, ")\nset style fill solid 0.35 border -1\nset style boxplot nooutliers\n"
                         "set boxwidth 0.3\nset key top right\nplot ");
    for (int k = 0; k < n; k++) {
        const mlc_verdict_row *r = &t->r[pick[k]];
        double scale = fabs(r->med[0]);
        for (int side = 0; side < 2; side++) {
            char name[48], path[1024];
            snprintf(name, sizeof name, "samples-%d-%d.dat", k, side);
            FILE *f = mlc_plot_data(d, name, path, sizeof path);
            if (!f)
                continue;
            for (size_t i = 0; i < r->s[side].n; i++)
                fprintf(f, "%.6g\n", r->s[side].v[i] / scale);
            fclose(f);
            mlc_sb_printf(&body, "%s'%s' using (%g):1 with boxplot linecolor rgb '%s' %s", k || side ? ", " : "",
                          path, k + (side ? 0.18 : -0.18), side ? "#d62728" : "#1f77b4",
                          k ? "notitle" : side ? "title 'candidate'" : "title 'baseline'");
        }
    }
    mlc_plot_chart(d, "compare_samples", "Samples of both sides per metric (1 = the baseline median)", body.p);
    free(body.p);
}

int mlc_view_compare(mlc_doc *d, const mlc_runref *base, const mlc_runref *cand)
{
    mlc_compare_opts o;
    mlc_compare_opts_init(&o);
    mlc_verdict_table t;
    if (mlc_verdict_build(mlc_store_db(d->store), "report", base->ids, base->n, base->desc, cand->ids, cand->n,
                          cand->desc, &o, &t))
        return -1;
    char msg[768];
    snprintf(msg, sizeof msg, "Comparison: %s (baseline) vs %s (candidate)", base->desc, cand->desc);
    mlc_doc_heading(d, 2, msg);
    int improved = 0;
    for (int i = 0; i < t.n; i++)
        improved += !strcmp(t.r[i].verdict, "improved");
    snprintf(msg, sizeof msg, "Verdict: %d regression%s, %d improved, %d metrics compared.", t.regressions,
             t.regressions == 1 ? "" : "s", improved, t.n);
    mlc_doc_para(d, msg);
    snprintf(msg, sizeof msg, "The rule of mlc-bench compare with its defaults: a noisy metric regresses when "
                              "the candidate is worse with one-sided Mann-Whitney p < %g and its median moved "
                              "beyond %g%% and beyond the noise floor (%g ms); deterministic metrics use a %g%% "
                              "tolerance. `~` is a change that is not all three.", o.alpha, o.threshold_pct,
             o.floors[0].v, o.tolerance_pct);
    mlc_doc_note(d, msg);
    verdict_table(d, &t);
    samples_chart(d, &t);
    int rc = t.regressions;
    mlc_verdict_free(&t);
    return rc;
}

/* A run's value of metric: its median, else its value, else its mean (micro). */
static double run_value(mlc_doc *d, int64_t run, const char *metric, int *dir)
{
    static const char *const stats[] = {"median", "value", "mean"};
    double v = NAN;
    for (int i = 0; i < 3 && isnan(v); i++)
        v = mlc_store_metric(d->store, run, metric, stats[i], dir);
    return v;
}

/* The band: the median and [lo, hi] of the baseline; its description in label. */
static void band(mlc_doc *d, const char *metric, const mlc_runref *base, const double *val, int n,
                 double out[3], char *label, size_t cap)
{
    out[0] = out[1] = out[2] = NAN;
    if (base) {
        int64_t b = mlc_runref_newest(base);
        size_t ns = 0;
        double *s = mlc_store_samples(d->store, b, metric, &ns);
        out[0] = run_value(d, b, metric, NULL);
        out[1] = out[2] = out[0];
        if (ns >= 2) {
            qsort(s, ns, sizeof *s, mlc_plot_cmp_double);
            out[1] = s[(size_t)((double)(ns - 1) * 0.25)];
            out[2] = s[(size_t)((double)(ns - 1) * 0.75)];
        }
        free(s);
        snprintf(label, cap, "baseline %s (median, p25..p75 of its samples)", base->desc);
        return;
    }
    double *prev = n >= 2 ? malloc((size_t)(n - 1) * sizeof *prev) : NULL;
    int np = 0;
    for (int i = 0; prev && i < n - 1; i++)
        if (!isnan(val[i]))
            prev[np++] = val[i];
    if (np) {
        qsort(prev, (size_t)np, sizeof *prev, mlc_plot_cmp_double);
        out[0] = mlc_median(prev, (size_t)np);
        out[1] = prev[0];
        out[2] = prev[np - 1];
    }
    free(prev);
    snprintf(label, cap, n >= 2 ? "baseline: the %d runs before the last (median, min..max)" : "no baseline",
             n - 1);
}

/* The verdict of run against the baseline ids for metric, by the verdict rule. */
static const char *trend_verdict(mlc_doc *d, const int64_t *base, int nb, int64_t run, const char *metric,
                                 char *buf, size_t cap)
{
    mlc_compare_opts o;
    mlc_compare_opts_init(&o);
    o.metric = metric;
    o.force = true; /* a trend shows what changed, whatever changed with it */
    mlc_verdict_table t;
    snprintf(buf, cap, "-");
    if (!nb || mlc_verdict_build(mlc_store_db(d->store), "report", base, nb, "baseline", &run, 1, "run", &o, &t))
        return buf;
    for (int i = 0; i < t.n; i++)
        if (!strcmp(t.r[i].name, metric))
            snprintf(buf, cap, "%s", t.r[i].verdict);
    mlc_verdict_free(&t);
    return buf;
}

static void trend_chart(mlc_doc *d, const int64_t *runs, const double *val, int n, const double b[3],
                        const char *metric)
{
    char path[1024];
    FILE *f = mlc_plot_wanted(d) ? mlc_plot_data(d, "trend.dat", path, sizeof path) : NULL;
    if (!f)
        return;
    for (int i = 0; i < n; i++)
        fprintf(f, "%d %lld %.6g %.6g %.6g %.6g\n", i, (long long)runs[i], val[i], b[0], b[1], b[2]);
    fclose(f);
    char body[2048];
    snprintf(body, sizeof body,
             "set xlabel 'run'\nset ylabel '%s (median)'\nset xrange [-0.5:%d.5]\n"
             "set key top left\nset style fill transparent solid 0.25 noborder\n"
             "plot '%s' using 1:5:6 with filledcurves linecolor rgb '#4c9be8' title 'baseline band',"
             " '' using 1:4 with lines dashtype 2 linecolor rgb '#1f5fa8' title 'baseline median',"
             " '' using 1:3:xticlabels(2) with linespoints linewidth 2 pointtype 7 linecolor rgb '#d62728' title '%s'",
             metric, n - 1, path, metric);
    mlc_plot_chart(d, "trend", "Trend across runs with the baseline band", body);
}

void mlc_view_trend(mlc_doc *d, const int64_t *runs, int n, const char *metric, const mlc_runref *base)
{
    char h[256], msg[768], blabel[384];
    snprintf(h, sizeof h, "Trend of %s over the last %d runs", metric, n);
    mlc_doc_heading(d, 2, h);
    double *val = calloc((size_t)n, sizeof *val);
    if (!val)
        return;
    for (int i = 0; i < n; i++)
        val[i] = run_value(d, runs[i], metric, NULL);
    double b[3];
    band(d, metric, base, val, n, b, blabel, sizeof blabel);
    const int64_t *bids = base ? base->ids : runs;
    int nb = base ? base->n : n - 1;
    static const char *const hd[] = {"run", "started", "git_sha", "median", "vs baseline", "verdict"};
    mlc_doc_table_begin(d, 6, hd);
    for (int i = 0; i < n; i++) {
        mlc_run_head rh;
        mlc_store_run_head(d->store, runs[i], &rh);
        char id[32], sha[16], v[48], pc[48] = "-", vd[32] = "(baseline)";
        snprintf(id, sizeof id, "%lld", (long long)runs[i]);
        snprintf(sha, sizeof sha, "%.12s", rh.git_sha);
        mlc_doc_num(v, sizeof v, val[i]);
        double pct = !isnan(b[0]) && b[0] != 0 ? (val[i] - b[0]) / fabs(b[0]) * 100.0 : NAN;
        if (!isnan(pct))
            snprintf(pc, sizeof pc, "%+.1f%%", pct);
        bool in_base = false;
        for (int k = 0; k < nb; k++)
            in_base |= bids[k] == runs[i];
        if (!in_base)
            trend_verdict(d, bids, nb, runs[i], metric, vd, sizeof vd);
        const char *cells[] = {id, rh.started, sha, v, pc, vd};
        mlc_doc_table_row(d, 6, cells);
    }
    mlc_doc_table_end(d);
    char bm[48], bl[48], bh[48];
    mlc_doc_num(bm, sizeof bm, b[0]);
    mlc_doc_num(bl, sizeof bl, b[1]);
    mlc_doc_num(bh, sizeof bh, b[2]);
    snprintf(msg, sizeof msg, "Band: %s: %s [%s, %s]. Verdicts: the rule of mlc-bench compare (each run against "
                              "the baseline's runs).", blabel, bm, bl, bh);
    mlc_doc_para(d, msg);
    trend_chart(d, runs, val, n, b, metric);
    free(val);
}
