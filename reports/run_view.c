/* run_view.c: the view of one run (run_view.h). */
#include "run_view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../bench/store_query.h"
#include "kind_view.h"
#include "plot.h"

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

void mlc_view_points_load(mlc_doc *d, int64_t run, mlc_view_points *p)
{
    p->n = mlc_store_load_points(d->store, run, p->name, MLC_VIEW_MAX_POINTS);
}

static double point_metric(mlc_doc *d, int64_t run, const char *point, const char *m, const char *stat)
{
    char name[128];
    snprintf(name, sizeof name, "%s/%s", point, m);
    return mlc_store_metric(d->store, run, name, stat, NULL);
}

typedef struct failures {
    mlc_doc *d;
    int rows;
} failures;

static void failure_row(void *ctx, const char *kind, int64_t count)
{
    failures *f = ctx;
    static const char *const fh[] = {"failure", "requests"};
    if (!f->rows++)
        mlc_doc_table_begin(f->d, 2, fh);
    char c[32];
    snprintf(c, sizeof c, "%lld", (long long)count);
    const char *cells[] = {kind, c};
    mlc_doc_table_row(f->d, 2, cells);
}

static void point_table(mlc_doc *d, int64_t run, const mlc_view_points *p, int k)
{
    char h[96], cell[4][48];
    snprintf(h, sizeof h, "Load point %s", p->name[k]);
    mlc_doc_heading(d, 3, h);
    static const char *const sh[] = {"metric", "value"};
    mlc_doc_table_begin(d, 2, sh);
    for (int i = 0; i < N_SCAL; i++) {
        double v = point_metric(d, run, p->name[k], SCALARS[i][0], "value");
        if (isnan(v))
            continue;
        mlc_doc_num(cell[0], sizeof cell[0], v);
        const char *cells[] = {SCALARS[i][1], cell[0]};
        mlc_doc_table_row(d, 2, cells);
    }
    mlc_doc_table_end(d);
    static const char *const lh[] = {"latency", "mean", "median", "p90", "p99"};
    static const char *const stats[] = {"mean", "median", "p90", "p99"};
    mlc_doc_table_begin(d, 5, lh);
    for (int i = 0; i < N_LAT; i++) {
        for (int s = 0; s < 4; s++)
            mlc_doc_num(cell[s], sizeof cell[s], point_metric(d, run, p->name[k], LATENCIES[i][0], stats[s]));
        const char *cells[] = {LATENCIES[i][1], cell[0], cell[1], cell[2], cell[3]};
        mlc_doc_table_row(d, 5, cells);
    }
    mlc_doc_table_end(d);
    failures f = {d, 0};
    mlc_store_failures(d->store, run, k, failure_row, &f);
    if (f.rows)
        mlc_doc_table_end(d);
    else
        mlc_doc_para(d, "Failures: none.");
}

typedef struct others {
    mlc_doc *d;
    int rows;
} others;

static void other_row(void *ctx, const char *name, const char *stat, double value, const char *unit, int dir)
{
    (void)dir;
    others *o = ctx;
    if (strchr(name, '/') && name[0] != '/')
        return; /* of a load point or a setting: in its own table */
    static const char *const h[] = {"metric", "stat", "value", "unit"};
    if (!o->rows++) {
        mlc_doc_heading(o->d, 3, "Metrics");
        mlc_doc_table_begin(o->d, 4, h);
    }
    char v[48];
    mlc_doc_num(v, sizeof v, value);
    const char *cells[] = {name, stat, v, unit};
    mlc_doc_table_row(o->d, 4, cells);
}

/* Metrics of no load point (ppl, tokens_per_s...): one generic table. */
static void other_metrics(mlc_doc *d, int64_t run)
{
    others o = {d, 0};
    mlc_store_each_metric(d->store, run, other_row, &o);
    if (o.rows)
        mlc_doc_table_end(d);
}

/* CDF chart of a per-request latency over the load points. */
static void cdf_chart(mlc_doc *d, int64_t run, const mlc_view_points *p, mlc_latency_kind kind)
{
    const char *name = kind == MLC_LATENCY_TTFT ? "ttft_cdf" : "e2e_cdf";
    mlc_strbuf body = {0};
    mlc_sb_printf(&body, "set xlabel '%s'\nset ylabel 'fraction of requests'\nset yrange [0:1.02]\n"
                         "set key bottom right\nplot ", kind == MLC_LATENCY_TTFT ? "TTFT (ms)" : "E2E latency (ms)");
    int series = 0;
    for (int k = 0; k < p->n; k++) {
        size_t n = 0;
        double *v = mlc_store_latencies(d->store, run, k, kind, &n);
        char fname[64], path[1024];
        snprintf(fname, sizeof fname, "%s-%d.dat", name, k);
        FILE *f = n ? mlc_plot_data(d, fname, path, sizeof path) : NULL;
        if (f) {
            for (size_t i = 0; i < n; i++)
                fprintf(f, "%.6g %.6g\n", v[i], (double)(i + 1) / (double)n);
            fclose(f);
            mlc_sb_printf(&body, "%s'%s' using 1:2 with steps linewidth 2 title '%s'", series ? ", " : "", path,
                          p->name[k]);
            series++;
        }
        free(v);
    }
    if (series)
        mlc_plot_chart(d, name, kind == MLC_LATENCY_TTFT ? "TTFT CDF" : "E2E latency CDF", body.p);
    free(body.p);
}

static void itl_chart(mlc_doc *d, int64_t run)
{
    size_t n = 0;
    double *v = mlc_store_itl_gaps(d->store, run, &n);
    char path[1024];
    FILE *f = n ? mlc_plot_data(d, "itl.dat", path, sizeof path) : NULL;
    if (!f) {
        free(v);
        return;
    }
    qsort(v, n, sizeof *v, mlc_plot_cmp_double);
    double lo = v[0], hi = v[(size_t)((double)(n - 1) * 0.995)];
    if (hi <= lo)
        hi = lo + 1;
    enum { BINS = 40 };
    size_t count[BINS] = {0};
    double w = (hi - lo) / BINS;
    for (size_t i = 0; i < n; i++) {
        int b = (int)((v[i] - lo) / w);
        count[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
    }
    for (int b = 0; b < BINS; b++)
        fprintf(f, "%.6g %zu\n", lo + (b + 0.5) * w, count[b]);
    fclose(f);
    char body[1536];
    snprintf(body, sizeof body,
             "set xlabel 'inter-token latency (ms; gaps above the 99.5th percentile in the last bin)'\n"
             "set ylabel 'gaps'\nset style fill solid 0.6 border -1\nset boxwidth %.6g\n"
             "set yrange [0:*]\nplot '%s' using 1:2 with boxes title 'ITL (%zu gaps)'",
             w * 0.9, path, n);
    mlc_plot_chart(d, "itl_hist", "ITL histogram", body);
    free(v);
}

/* Throughput and p99 latency against concurrency or rate, for runs with several points. */
static void load_charts(mlc_doc *d, int64_t run, const mlc_view_points *p)
{
    char kind = p->name[0][0];
    for (int k = 0; k < p->n; k++)
        if (p->name[k][0] != kind || p->name[k][1] != '=' || (kind != 'c' && kind != 'r'))
            return;
    char path[1024];
    FILE *f = p->n >= 2 ? mlc_plot_data(d, "load.dat", path, sizeof path) : NULL;
    if (!f)
        return;
    static const char *const m[][2] = {{"output_throughput", "value"}, {"request_throughput", "value"},
                                       {"ttft_ms", "p99"}, {"e2el_ms", "p99"}, {"itl_ms", "p99"}};
    for (int k = 0; k < p->n; k++) {
        fprintf(f, "%.6g", strtod(p->name[k] + 2, NULL));
        for (int i = 0; i < 5; i++)
            fprintf(f, " %.6g", point_metric(d, run, p->name[k], m[i][0], m[i][1]));
        fprintf(f, "\n");
    }
    fclose(f);
    const char *xl = kind == 'c' ? "concurrency" : "request rate (req/s)";
    const char *logx = kind == 'c' ? "set logscale x 2\n" : "";
    char body[2048];
    snprintf(body, sizeof body,
             "set xlabel '%s'\nset ylabel 'output tok/s'\nset y2label 'req/s'\nset y2tics\n"
             "set yrange [0:*]\nset y2range [0:*]\n%s"
             "plot '%s' using 1:2 with linespoints linewidth 2 pointtype 7 title 'output tok/s',"
             " '' using 1:3 axes x1y2 with linespoints linewidth 2 pointtype 5 title 'req/s'",
             xl, logx, path);
    mlc_plot_chart(d, "throughput", kind == 'c' ? "Throughput vs concurrency" : "Throughput vs request rate", body);
    snprintf(body, sizeof body,
             "set xlabel '%s'\nset ylabel 'p99 latency (ms)'\nset yrange [0:*]\n%s"
             "plot '%s' using 1:4 with linespoints linewidth 2 pointtype 7 title 'TTFT p99',"
             " '' using 1:5 with linespoints linewidth 2 pointtype 5 title 'E2E p99',"
             " '' using 1:6 with linespoints linewidth 2 pointtype 9 title 'ITL p99'",
             xl, logx, path);
    mlc_plot_chart(d, "p99_latency", kind == 'c' ? "p99 latency vs concurrency" : "p99 latency vs request rate",
                   body);
}

static void field_row(void *ctx, const char *field, const char *value)
{
    mlc_doc *d = ctx;
    if (!strcmp(field, "config"))
        return;
    const char *cells[] = {field, value};
    mlc_doc_table_row(d, 2, cells);
}

static void config_json(void *ctx, const char *field, const char *value)
{
    mlc_doc *d = ctx;
    if (strcmp(field, "config"))
        return;
    cJSON *j = cJSON_Parse(value);
    char *pretty = j ? cJSON_Print(j) : NULL;
    mlc_doc_para(d, "Options (config JSON):");
    mlc_doc_code(d, pretty ? pretty : value);
    free(pretty);
    cJSON_Delete(j);
}

static void run_config(mlc_doc *d, int64_t run)
{
    char h[64];
    snprintf(h, sizeof h, "Run %lld: configuration", (long long)run);
    mlc_doc_heading(d, 2, h);
    static const char *const head[] = {"field", "value"};
    mlc_doc_table_begin(d, 2, head);
    mlc_store_run_fields(d->store, run, false, field_row, d);
    mlc_doc_table_end(d);
    mlc_store_run_fields(d->store, run, false, config_json, d);
    mlc_doc_heading(d, 3, "Fingerprint");
    mlc_doc_table_begin(d, 2, head);
    mlc_store_run_fields(d->store, run, true, field_row, d);
    mlc_doc_table_end(d);
}

void mlc_view_run(mlc_doc *d, int64_t run)
{
    mlc_run_head rh;
    mlc_store_run_head(d->store, run, &rh);
    mlc_view_points p;
    mlc_view_points_load(d, run, &p);
    bool micro = !strcmp(rh.kind, "micro");
    char h[96];
    snprintf(h, sizeof h, "Run %lld: results", (long long)run);
    mlc_doc_heading(d, 2, h);
    if (micro)
        mlc_view_micro(d, run);
    for (int k = 0; !micro && k < p.n; k++)
        point_table(d, run, &p, k);
    if (!micro && p.n >= 2)
        mlc_view_load_curve(d, &run, 1);
    other_metrics(d, run);
    if (!strcmp(rh.kind, "ppl"))
        mlc_view_ppl(d, run);
    if (!micro && p.n && mlc_plot_wanted(d)) {
        snprintf(h, sizeof h, "Run %lld: charts", (long long)run);
        mlc_doc_heading(d, 2, h);
        cdf_chart(d, run, &p, MLC_LATENCY_TTFT);
        cdf_chart(d, run, &p, MLC_LATENCY_E2E);
        itl_chart(d, run);
        load_charts(d, run, &p);
    }
    run_config(d, run);
}
