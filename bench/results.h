/* results.h: the results of one load point of `mlc-bench run`: its row of the console table
 * (or markdown), its object of the --json array (vLLM's field names: mean_ttft_ms,
 * p99_itl_ms, request_throughput, ...), and its aggregates and raw samples in the store
 * (metrics named "LOAD/NAME", e.g. "c=4/ttft_ms" with stats mean, median, p90, p99). */
#ifndef MLC_BENCH_RESULTS_H
#define MLC_BENCH_RESULTS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "load.h"
#include "metrics.h"
#include "slo.h"
#include "store.h"
#include "strbuf.h"

/* The table's header and one row (md: markdown), on stdout. */
void mlc_results_print_header(bool md);
void mlc_results_print_row(bool md, const mlc_load_point *lp, const mlc_phase_metrics *m);
/* The load point's JSON object; n_req requests were counted (ok and failed). */
cJSON *mlc_results_phase_json(const mlc_load_point *lp, const mlc_phase_metrics *m, int64_t n_req);
/* Adds the harness's own CPU time of an endpoint run's load phase to its JSON object: total
 * seconds, microseconds per request (completed + failed) and per output token. */
void mlc_results_client_cpu_json(cJSON *phase, double cpu_s, const mlc_phase_metrics *m);
/* One --slo percentile verdict as JSON. */
cJSON *mlc_results_slo_json(const mlc_slo_bound *b, const mlc_slo_result *r);
/* Aggregates and the raw TTFT and E2E samples (ms, n_ok each) of the load point. */
mlc_status mlc_results_store(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_phase_metrics *m,
                             const double *ttft, const double *e2e, int64_t n_ok, mlc_err *err);

/* Prefix dataset: TTFT of requests whose prefix was sent first, and sent before: JSON
 * (n_prefix_first, mean/median/p90/p99_ttft_ms_prefix_first, the same for _seen), stored
 * ("LOAD/ttft_ms_prefix_first" and "_seen": mean, median, p90, p99, n), one line in text. */
mlc_status mlc_results_prefix(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_stat *first,
                              const mlc_stat *seen, cJSON *pj, mlc_strbuf *text, mlc_err *err);

/* --multi-turn: per turn (1, 2, ...) and per conversation. */
typedef struct mlc_turn_stats {
    int64_t completed, failed;
    mlc_stat ttft_ms, e2el_ms;   /* of the completed requests of that turn */
} mlc_turn_stats;
typedef struct mlc_conv_stats {
    int64_t started, completed, failed, cut; /* completed: every turn answered */
    double mean_turns;                       /* turns sent per conversation */
    mlc_stat duration_s;                     /* first turn sent to last answer, completed ones */
} mlc_conv_stats;
/* JSON "turns" (one object per turn: completed, failed, mean/median/p99 of ttft_ms and
 * e2el_ms) and "conversations"; stored as "LOAD/turnK/ttft_ms", "LOAD/turnK/e2el_ms",
 * "LOAD/conversation_s" and "LOAD/conversations_completed"; one line in text. */
mlc_status mlc_results_turns(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_turn_stats *turns,
                             int n_turns, const mlc_conv_stats *cs, cJSON *pj, mlc_strbuf *text, mlc_err *err);

#endif
