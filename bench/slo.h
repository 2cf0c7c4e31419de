/* slo.h: `mlc-bench run --slo`: service-level objectives, per request and per percentile.
 *
 * "ttft=500,tpot=50,e2e=2000" bounds each request (milliseconds): goodput counts the requests
 * meeting every bound, per second (metrics.h). "ttft_p99=500" bounds a percentile: the 99th
 * percentile of TTFT must be at most 500 ms. Each percentile bound is also a bound on each
 * request for goodput (the tightest one given for a metric applies).
 *
 * A percentile bound is judged with confidence, the way MLPerf LoadGen's early stopping does.
 * The n requests of a load point are a sample; x of them exceed the bound (violations; a
 * failed request violates every bound, a request of one output token has no TPOT and is no
 * sample of it). Were the true P-th percentile exactly at the bound, each request would
 * exceed it with probability q = 1 - P/100, and x would be Binomial(n, q). At confidence
 * c = 0.99 (alpha = 1 - c):
 *   pass  when P(X <= x) <= alpha: so few violations are that unlikely unless the true
 *         percentile is below the bound;
 *   fail  when P(X >= x) <= alpha: so many are that unlikely unless it is above the bound;
 *   else  not enough requests: need N, the least number of requests at which the x
 *         violations seen would pass (none of the further requests violating).
 * For example at p99 with no violation: P(X <= 0) = 0.99^n, 0.99^458 = 0.01002 > 0.01 and
 * 0.99^459 = 0.00992, so 459 requests is the least that can pass. */
#ifndef MLC_BENCH_SLO_H
#define MLC_BENCH_SLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define MLC_SLO_MAX_BOUNDS 16
#define MLC_SLO_CONFIDENCE 0.99

typedef enum mlc_slo_metric { MLC_SLO_TTFT, MLC_SLO_TPOT, MLC_SLO_E2E } mlc_slo_metric;

typedef struct mlc_slo_bound {
    mlc_slo_metric metric;
    double percentile;  /* in (0, 100) */
    double ms;          /* the bound */
    char name[24];      /* "ttft_p99" as given */
} mlc_slo_bound;

typedef struct mlc_slo_spec {
    mlc_slo request;    /* per-request bounds for goodput (<= 0: none) */
    bool any;           /* some bound was given */
    mlc_slo_bound pct[MLC_SLO_MAX_BOUNDS];
    int n_pct;
} mlc_slo_spec;

typedef enum mlc_slo_verdict { MLC_SLO_PASS, MLC_SLO_FAIL, MLC_SLO_NOT_ENOUGH } mlc_slo_verdict;

typedef struct mlc_slo_result {
    mlc_slo_verdict verdict;
    int64_t n;           /* requests that are samples of the metric */
    int64_t violations;  /* of them, above the bound (failed requests included) */
    int64_t allowed;     /* the most violations that pass among n (-1: none would) */
    int64_t need;        /* MLC_SLO_NOT_ENOUGH: requests needed to pass; else 0 */
    double observed_ms;  /* the percentile of the successful samples (NaN: none) */
} mlc_slo_result;

/* Parses a comma list of NAME=MS and NAME_pPCT=MS items (NAME ttft, tpot, e2e or e2el; MS a
 * positive finite number; PCT in (0, 100)); false with a one-line message on error. */
bool mlc_slo_spec_parse(const char *s, mlc_slo_spec *out, char *msg, size_t cap);

/* Binomial(n, q): P(X <= x) (1 for x >= n, 0 for x < 0). */
double mlc_binom_cdf(int64_t x, int64_t n, double q);
/* The largest x with P(X <= x) <= alpha among n, or -1 when even 0 is too many. */
int64_t mlc_slo_allowed(int64_t n, double q, double alpha);
/* The least n >= x with P(X <= x) <= alpha: requests needed for x violations to pass. */
int64_t mlc_slo_needed(int64_t x, double q, double alpha);
/* The verdict for x violations among n at percentile pct and confidence conf. */
void mlc_slo_judge(int64_t n, int64_t x, double pct, double conf, mlc_slo_result *out);
/* Judges bound b on the requests r[0..n) of one load point at MLC_SLO_CONFIDENCE. */
void mlc_slo_evaluate(const mlc_slo_bound *b, const mlc_req_times *r, int64_t n, mlc_slo_result *out);
/* One line for people: "ttft_p99 <= 500 ms: pass (observed 312.4 ms; 3 of 1000 above, at
 * most 5 allowed)", "... fail (...)", "... not enough requests: need 459 (0 of 100 above)". */
void mlc_slo_describe(const mlc_slo_bound *b, const mlc_slo_result *r, char *buf, size_t cap);
/* "pass", "fail", "not_enough". */
const char *mlc_slo_verdict_name(mlc_slo_verdict v);
/* "ttft", "tpot", "e2e". */
const char *mlc_slo_metric_name(mlc_slo_metric m);

#endif
