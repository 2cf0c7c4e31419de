/* kind_view.c: the micro, ppl and load-curve views (kind_view.h). */
#include "kind_view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/stats.h"
#include "../bench/store_query.h"
#include "plot.h"
#include "run_view.h"

#define MAX_SETTINGS 32
#define MAX_TESTS 8

/* The settings (t=4) and tests (pp512) of a micro run, from its "SETTING/TEST" names. */
typedef struct micro_grid {
    char setting[MAX_SETTINGS][32], test[MAX_TESTS][32];
    int n_settings, n_tests;
} micro_grid;

static int intern(char (*list)[32], int *n, int cap, const char *s, size_t len)
{
    for (int i = 0; i < *n; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], s, len))
            return i;
    if (*n == cap)
        return -1;
    snprintf(list[*n], 32, "%.*s", (int)len, s);
    return (*n)++;
}

static void micro_name(void *ctx, const char *name, const char *stat, double v, const char *unit, int dir)
{
    (void)v, (void)unit, (void)dir;
    micro_grid *g = ctx;
    const char *slash = strchr(name, '/');
    if (!slash || strcmp(stat, "mean"))
        return;
    intern(g->setting, &g->n_settings, MAX_SETTINGS, name, (size_t)(slash - name));
    intern(g->test, &g->n_tests, MAX_TESTS, slash + 1, strlen(slash + 1));
}

/* Sample standard deviation; NaN below two samples. */
static double stddev(const double *v, size_t n)
{
    if (n < 2)
        return NAN;
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++)
        m += v[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (double)(n - 1));
}

void mlc_view_micro(mlc_doc *d, int64_t run)
{
    micro_grid g = {.n_settings = 0};
    mlc_store_each_metric(d->store, run, micro_name, &g);
    if (!g.n_settings)
        return;
    mlc_doc_heading(d, 3, "Tokens/s per setting (micro)");
    static const char *const hd[] = {"setting", "test", "mean tok/s", "sd", "reps"};
    mlc_doc_table_begin(d, 5, hd);
    char path[1024];
    FILE *f = mlc_plot_wanted(d) ? mlc_plot_data(d, "micro.dat", path, sizeof path) : NULL;
    for (int s = 0; s < g.n_settings; s++) {
        if (f)
            fprintf(f, "%s", g.setting[s]);
        for (int t = 0; t < g.n_tests; t++) {
            char name[80], mean[48], sd[48], reps[16];
            snprintf(name, sizeof name, "%s/%s", g.setting[s], g.test[t]);
            double m = mlc_store_metric(d->store, run, name, "mean", NULL);
            size_t n = 0;
            double *v = mlc_store_samples(d->store, run, name, &n);
            if (f)
                fprintf(f, " %.6g", isnan(m) ? 0.0 : m);
            if (!isnan(m)) {
                mlc_doc_num(mean, sizeof mean, m);
                mlc_doc_num(sd, sizeof sd, stddev(v, n));
                snprintf(reps, sizeof reps, "%zu", n);
                const char *cells[] = {g.setting[s], g.test[t], mean, sd, reps};
                mlc_doc_table_row(d, 5, cells);
            }
            free(v);
        }
        if (f)
            fprintf(f, "\n");
    }
    mlc_doc_table_end(d);
    if (!f)
        return;
    fclose(f);
    mlc_strbuf body = {0};
    mlc_sb_printf(&body, "set ylabel 'tokens/s (mean)'\nset yrange [0:*]\nset style data histograms\n"
                         "set style histogram clustered gap 1\nset style fill solid 0.7 border -1\n"
                         "set key top right\nplot ");
    for (int t = 0; t < g.n_tests; t++)
        mlc_sb_printf(&body, "%s'%s' using %d:xticlabels(1) title '%s'", t ? ", " : "", path, t + 2, g.test[t]);
    mlc_plot_chart(d, "micro", "Tokens/s per setting: prompt processing (pp) and generation (tg)", body.p);
    free(body.p);
}

void mlc_view_ppl(mlc_doc *d, int64_t run)
{
    size_t n = 0;
    double *v = mlc_store_samples(d->store, run, MLC_PPL_CHUNK_METRIC, &n);
    if (!n) {
        mlc_doc_para(d, "Per-chunk perplexity: not stored by this run.");
        free(v);
        return;
    }
    mlc_doc_heading(d, 3, "Perplexity per chunk");
    static const char *const hd[] = {"chunk", "perplexity"};
    mlc_doc_table_begin(d, 2, hd);
    for (size_t i = 0; i < n; i++) {
        char c[24], p[48];
        snprintf(c, sizeof c, "%zu", i + 1);
        snprintf(p, sizeof p, "%.4f", v[i]);
        const char *cells[] = {c, p};
        mlc_doc_table_row(d, 2, cells);
    }
    mlc_doc_table_end(d);
    char path[1024];
    FILE *f = mlc_plot_wanted(d) ? mlc_plot_data(d, "ppl.dat", path, sizeof path) : NULL;
    if (f) {
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%zu %.8g\n", i + 1, v[i]);
        fclose(f);
        char body[1536];
        snprintf(body, sizeof body,
                 "set xlabel 'chunk'\nset ylabel 'perplexity'\nset key top right\n"
                 "plot '%s' using 1:2 with linespoints linewidth 2 pointtype 7 title 'chunk perplexity',"
                 " %.8g with lines dashtype 2 title 'median %.4f'",
                 path, mlc_median(v, n), mlc_median(v, n));
        mlc_plot_chart(d, "ppl_chunks", "Perplexity per chunk", body);
    }
    free(v);
}

static double point_metric(mlc_doc *d, int64_t run, const char *point, const char *m, const char *stat)
{
    char name[128];
    snprintf(name, sizeof name, "%s/%s", point, m);
    return mlc_store_metric(d->store, run, name, stat, NULL);
}

/* One run's rows of the load-curve table and its data file; false when it has < 2 points. */
static bool curve_rows(mlc_doc *d, int64_t run, bool many, FILE *f)
{
    mlc_view_points p;
    mlc_view_points_load(d, run, &p);
    if (p.n < 2)
        return false;
    for (int k = 0; k < p.n; k++) {
        double v[4] = {point_metric(d, run, p.name[k], "request_throughput", "value"),
                       point_metric(d, run, p.name[k], "output_throughput", "value"),
                       point_metric(d, run, p.name[k], "ttft_ms", "p99"),
                       point_metric(d, run, p.name[k], "e2el_ms", "p99")};
        char id[32], c[4][48];
        snprintf(id, sizeof id, "%lld", (long long)run);
        for (int i = 0; i < 4; i++)
            mlc_doc_num(c[i], sizeof c[i], v[i]);
        const char *all[] = {id, p.name[k], c[0], c[1], c[2], c[3]};
        mlc_doc_table_row(d, many ? 6 : 5, many ? all : all + 1);
        if (f && !isnan(v[1]) && !isnan(v[3]))
            fprintf(f, "%.6g %.6g %s\n", v[1], v[3], p.name[k]);
    }
    if (f)
        fprintf(f, "\n\n"); /* a gnuplot index per run */
    return true;
}

void mlc_view_load_curve(mlc_doc *d, const int64_t *runs, int n)
{
    static const char *const hd[] = {"run", "load point", "req/s", "output tok/s", "TTFT p99 (ms)",
                                     "E2E p99 (ms)"};
    bool many = n > 1;
    char path[1024];
    FILE *f = mlc_plot_wanted(d) ? mlc_plot_data(d, many ? "curves.dat" : "curve.dat", path, sizeof path) : NULL;
    mlc_doc_heading(d, 3, many ? "Load curves: throughput vs p99 latency over the sweeps" :
                                 "Load curve: throughput vs p99 latency");
    mlc_doc_table_begin(d, many ? 6 : 5, many ? hd : hd + 1);
    mlc_strbuf body = {0};
    mlc_sb_printf(&body, "set xlabel 'output throughput (tok/s)'\nset ylabel 'E2E p99 latency (ms)'\n"
                         "set yrange [0:*]\nset key top left\nplot ");
    int series = 0;
    for (int i = 0; i < n; i++) {
        if (!curve_rows(d, runs[i], many, f))
            continue;
        mlc_sb_printf(&body, "%s'%s' index %d using 1:2 with linespoints linewidth 2 pointtype 7 title 'run %lld',"
                             " '' index %d using 1:2:3 with labels offset char 1,0.6 notitle",
                      series ? ", " : "", path, series, (long long)runs[i], series);
        series++;
    }
    mlc_doc_table_end(d);
    if (f)
        fclose(f);
    if (f && series)
        mlc_plot_chart(d, many ? "load_curves" : "load_curve",
                       many ? "Throughput vs p99 latency, one curve per sweep" : "Throughput vs p99 latency", body.p);
    free(body.p);
}
