/* serve_metrics.h: the counters and histograms of `mlc-bench serve` and their Prometheus
 * text exposition (GET /metrics; text format 0.0.4: HELP and TYPE lines, one sample a line,
 * counts as exact integers whatever their size). Not thread-safe: the server guards them
 * with its mutex. */
#ifndef MLC_BENCH_SERVE_METRICS_H
#define MLC_BENCH_SERVE_METRICS_H

#include <stdint.h>

#include "strbuf.h"

#define MLC_SERVE_HIST_MAX 12   /* buckets per histogram, +Inf not counted */
#define MLC_SERVE_N_CODES 9     /* HTTP statuses counted by name; others in one extra slot */

/* A cumulative Prometheus histogram: count[i] observations <= le[i]. */
typedef struct mlc_serve_hist {
    const double *le;
    int n;
    int64_t count[MLC_SERVE_HIST_MAX];
    int64_t total;
    double sum;
} mlc_serve_hist;

typedef struct mlc_serve_metrics {
    int64_t by_code[MLC_SERVE_N_CODES + 1];
    int64_t tokens_in, tokens_out;
    mlc_serve_hist ttft;    /* seconds from submission to the first token */
    mlc_serve_hist itl;     /* seconds between tokens of a request */
    mlc_serve_hist batch;   /* tokens per engine step */
} mlc_serve_metrics;

/* Zero counters, bucket bounds set. */
void mlc_serve_metrics_init(mlc_serve_metrics *m);
/* Adds n observations of v. */
void mlc_serve_hist_add(mlc_serve_hist *h, double v, int64_t n);
/* Counts n answered HTTP requests with this status. */
void mlc_serve_metrics_add_status(mlc_serve_metrics *m, unsigned code, int64_t n);
/* Counts prompt tokens taken in and tokens generated. */
void mlc_serve_metrics_add_tokens(mlc_serve_metrics *m, int64_t in, int64_t out);
/* Appends the exposition text; in_flight and queue_depth are the gauges' values. */
void mlc_serve_metrics_text(const mlc_serve_metrics *m, int in_flight, int queue_depth,
                            mlc_strbuf *out);

#endif
