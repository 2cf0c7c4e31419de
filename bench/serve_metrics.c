/* serve_metrics.c: see serve_metrics.h. */
#include "serve_metrics.h"

#include <stdio.h>
#include <string.h>

static const double ttft_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double itl_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

static const int status_codes[MLC_SERVE_N_CODES] = {200, 400, 401, 404, 405, 413, 429, 500, 503};

void mlc_serve_metrics_init(mlc_serve_metrics *m)
{
#define N_OF(a) (int)(sizeof a / sizeof a[0])
    memset(m, 0, sizeof *m);
    m->ttft = (mlc_serve_hist){.le = ttft_buckets, .n = N_OF(ttft_buckets)};
    m->itl = (mlc_serve_hist){.le = itl_buckets, .n = N_OF(itl_buckets)};
    m->batch = (mlc_serve_hist){.le = batch_buckets, .n = N_OF(batch_buckets)};
#undef N_OF
}

void mlc_serve_hist_add(mlc_serve_hist *h, double v, int64_t n)
{
    for (int i = 0; i < h->n; i++)
        if (v <= h->le[i])
            h->count[i] += n;
    h->total += n;
    h->sum += v * (double)n;
}

void mlc_serve_metrics_add_status(mlc_serve_metrics *m, unsigned code, int64_t n)
{
    int i = 0;
    while (i < MLC_SERVE_N_CODES && status_codes[i] != (int)code)
        i++;
    m->by_code[i] += n;
}

void mlc_serve_metrics_add_tokens(mlc_serve_metrics *m, int64_t in, int64_t out)
{
    m->tokens_in += in;
    m->tokens_out += out;
}

static void family(mlc_strbuf *b, const char *name, const char *type, const char *help)
{
    mlc_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The sum with 17 significant digits: the double exactly. */
static void histogram(mlc_strbuf *b, const char *name, const char *help, const mlc_serve_hist *h)
{
    family(b, name, "histogram", help);
    for (int i = 0; i < h->n; i++)
        mlc_sb_printf(b, "%s_bucket{le=\"%g\"} %lld\n", name, h->le[i], (long long)h->count[i]);
    mlc_sb_printf(b, "%s_bucket{le=\"+Inf\"} %lld\n", name, (long long)h->total);
    mlc_sb_printf(b, "%s_sum %.17g\n", name, h->sum);
    mlc_sb_printf(b, "%s_count %lld\n", name, (long long)h->total);
}

void mlc_serve_metrics_text(const mlc_serve_metrics *m, int in_flight, int queue_depth,
                            mlc_strbuf *out)
{
    family(out, "mlc_requests_total", "counter", "HTTP requests answered, by status.");
    for (int i = 0; i < MLC_SERVE_N_CODES; i++)
        mlc_sb_printf(out, "mlc_requests_total{status=\"%d\"} %lld\n", status_codes[i],
                      (long long)m->by_code[i]);
    family(out, "mlc_requests_in_flight", "gauge", "Requests in the engine (running or queued).");
    mlc_sb_printf(out, "mlc_requests_in_flight %d\n", in_flight);
    family(out, "mlc_queue_depth", "gauge", "Requests waiting for a slot.");
    mlc_sb_printf(out, "mlc_queue_depth %d\n", queue_depth);
    family(out, "mlc_prompt_tokens_total", "counter", "Prompt tokens of submitted requests.");
    mlc_sb_printf(out, "mlc_prompt_tokens_total %lld\n", (long long)m->tokens_in);
    family(out, "mlc_generation_tokens_total", "counter", "Tokens generated.");
    mlc_sb_printf(out, "mlc_generation_tokens_total %lld\n", (long long)m->tokens_out);
    histogram(out, "mlc_time_to_first_token_seconds",
              "Seconds from submission to a request's first token.", &m->ttft);
    histogram(out, "mlc_inter_token_latency_seconds",
              "Seconds between consecutive tokens of a request.", &m->itl);
    histogram(out, "mlc_batch_size_tokens", "Tokens decoded per engine step.", &m->batch);
}
