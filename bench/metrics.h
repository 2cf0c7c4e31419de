/* metrics.h: per-request timings of a load point and the aggregates DESIGN.md defines.
 *
 *   TTFT = first token-bearing chunk - sent      ITL = gaps between token-bearing chunks
 *   TPOT = (E2E - TTFT) / (output tokens - 1)    E2E = done - sent
 *   client delay = sent - scheduled (how late the load generator was)
 * Aggregates: mean, median, std, p50/p90/p95/p99, min, max; throughput over the load
 * point's duration (first send to last completion); goodput = requests meeting every SLO
 * per second. */
#ifndef MLC_BENCH_METRICS_H
#define MLC_BENCH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One request's record as the harness fills it (seconds on the run's clock). */
typedef struct mlc_req_times {
    double scheduled, sent, first_token, done; /* first_token < 0: no token arrived */
    bool ok;
    const char *error_kind;  /* static string or NULL */
    char error[256];
    int64_t input_tokens, output_tokens;
    bool tokens_approx;
    float *itl_ms;           /* malloc'd gaps, n_itl of them */
    int32_t n_itl, cap_itl;
    double last_token;       /* arrival of the last token-bearing chunk */
    int64_t chunks;          /* token-bearing chunks */
} mlc_req_times;

typedef struct mlc_stat {
    double mean, median, std, p50, p90, p95, p99, min, max;
    int64_t n;
} mlc_stat;

typedef struct mlc_slo {
    double ttft_ms, tpot_ms, e2e_ms; /* <= 0: not set */
} mlc_slo;

typedef struct mlc_phase_metrics {
    int64_t completed, failed;
    double duration_s;
    int64_t total_input_tokens, total_output_tokens;
    bool tokens_approx;
    double request_throughput, output_throughput, total_token_throughput, goodput;
    mlc_stat ttft_ms, tpot_ms, itl_ms, e2el_ms, client_delay_ms;
    /* failures by kind: up to 8 kinds */
    struct {
        const char *kind;
        int64_t n;
    } failures[8];
    int n_failure_kinds;
} mlc_phase_metrics;

/* Appends one gap to r->itl_ms (false on out of memory). */
bool mlc_req_add_itl(mlc_req_times *r, float gap_ms);
void mlc_stat_compute(double *v, int64_t n, mlc_stat *out); /* sorts v */
void mlc_metrics_compute(const mlc_req_times *r, int64_t n, const mlc_slo *slo, mlc_phase_metrics *out);
/* Parses "ttft=200,tpot=50,e2e=2000" (milliseconds); false with a message on error. */
bool mlc_slo_parse(const char *s, mlc_slo *out, char *msg, size_t cap);

#endif
