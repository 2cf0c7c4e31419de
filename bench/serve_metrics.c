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

void mlc_serve_hist_add(mlc_serve_hist *h, double v)
{
    for (int i = 0; i < h->n; i++)
        if (v <= h->le[i])
            h->count[i]++;
    h->total++;
    h->sum += v;
}

void mlc_serve_metrics_status(mlc_serve_metrics *m, unsigned code)
{
    int i = 0;
    while (i < MLC_SERVE_N_CODES && status_codes[i] != (int)code)
        i++;
    m->by_code[i]++;
}

void mlc_serve_metrics_text(const mlc_serve_metrics *m, int in_flight, int queue_depth,
                            mlc_strbuf *out)
{
    mlc_strbuf *b = out;
    char line[256];
    mlc_sb_puts(b, "# HELP mlc_requests_total HTTP requests answered, by status.\n"
               "# TYPE mlc_requests_total counter\n");
    for (int i = 0; i < MLC_SERVE_N_CODES; i++) {
        snprintf(line, sizeof line, "mlc_requests_total{status=\"%d\"} %lld\n", status_codes[i],
                 (long long)m->by_code[i]);
        mlc_sb_puts(b, line);
    }
    snprintf(line, sizeof line,
             "# TYPE mlc_requests_in_flight gauge\nmlc_requests_in_flight %d\n"
             "# TYPE mlc_queue_depth gauge\nmlc_queue_depth %d\n"
             "# TYPE mlc_prompt_tokens_total counter\nmlc_prompt_tokens_total %lld\n"
             "# TYPE mlc_generation_tokens_total counter\nmlc_generation_tokens_total %lld\n",
             in_flight, queue_depth, (long long)m->tokens_in, (long long)m->tokens_out);
    mlc_sb_puts(b, line);
    const mlc_serve_hist *hs[3] = {&m->ttft, &m->itl, &m->batch};
    const char *names[3] = {"mlc_time_to_first_token_seconds", "mlc_inter_token_latency_seconds",
                            "mlc_batch_size_tokens"};
    for (int k = 0; k < 3; k++) {
        snprintf(line, sizeof line, "# TYPE %s histogram\n", names[k]);
        mlc_sb_puts(b, line);
        for (int i = 0; i < hs[k]->n; i++) {
            snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %lld\n", names[k], hs[k]->le[i],
                     (long long)hs[k]->count[i]);
            mlc_sb_puts(b, line);
        }
        snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %lld\n%s_sum %.9g\n%s_count %lld\n",
                 names[k], (long long)hs[k]->total, names[k], hs[k]->sum, names[k],
                 (long long)hs[k]->total);
        mlc_sb_puts(b, line);
    }
}
