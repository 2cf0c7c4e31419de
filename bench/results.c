/* results.c: the results of one load point of `mlc-bench run` (results.h). */
#include "results.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void stat_json(cJSON *o, const char *metric, const mlc_stat *s)
{
    char k[64];
#define F(stat, v) (snprintf(k, sizeof k, stat "_%s", metric), cJSON_AddNumberToObject(o, k, v))
    F("mean", s->mean);
    F("median", s->median);
    F("std", s->std);
    F("p90", s->p90);
    F("p95", s->p95);
    F("p99", s->p99);
    F("min", s->min);
    F("max", s->max);
#undef F
}

cJSON *mlc_results_phase_json(const mlc_load_point *lp, const mlc_phase_metrics *m, int64_t n_req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "load", lp->name);
    if (lp->kind == MLC_LOAD_CONCURRENCY || lp->concurrency)
        cJSON_AddNumberToObject(o, "max_concurrency", lp->concurrency);
    if (lp->kind == MLC_LOAD_RATE)
        cJSON_AddItemToObject(o, "request_rate", isinf(lp->rate) ? cJSON_CreateString("inf") : cJSON_CreateNumber(lp->rate));
    cJSON_AddNumberToObject(o, "num_prompts", (double)n_req);
    cJSON_AddNumberToObject(o, "duration", m->duration_s);
    cJSON_AddNumberToObject(o, "completed", (double)m->completed);
    cJSON_AddNumberToObject(o, "failed", (double)m->failed);
    cJSON_AddNumberToObject(o, "total_input_tokens", (double)m->total_input_tokens);
    cJSON_AddNumberToObject(o, "total_output_tokens", (double)m->total_output_tokens);
    cJSON_AddBoolToObject(o, "tokens_approximate", m->tokens_approx);
    cJSON_AddNumberToObject(o, "request_throughput", m->request_throughput);
    cJSON_AddNumberToObject(o, "request_goodput", m->goodput);
    cJSON_AddNumberToObject(o, "output_throughput", m->output_throughput);
    cJSON_AddNumberToObject(o, "total_token_throughput", m->total_token_throughput);
    stat_json(o, "ttft_ms", &m->ttft_ms);
    stat_json(o, "tpot_ms", &m->tpot_ms);
    stat_json(o, "itl_ms", &m->itl_ms);
    stat_json(o, "e2el_ms", &m->e2el_ms);
    stat_json(o, "client_delay_ms", &m->client_delay_ms);
    cJSON *f = cJSON_AddObjectToObject(o, "errors");
    for (int i = 0; i < m->n_failure_kinds; i++)
        cJSON_AddNumberToObject(f, m->failures[i].kind, (double)m->failures[i].n);
    return o;
}

void mlc_results_client_cpu_json(cJSON *phase, double cpu_s, const mlc_phase_metrics *m)
{
    cJSON_AddNumberToObject(phase, "client_cpu_s", cpu_s);
    int64_t n = m->completed + m->failed;
    if (n > 0)
        cJSON_AddNumberToObject(phase, "client_cpu_us_per_request", cpu_s * 1e6 / (double)n);
    if (m->total_output_tokens > 0)
        cJSON_AddNumberToObject(phase, "client_cpu_us_per_output_token", cpu_s * 1e6 / (double)m->total_output_tokens);
}

void mlc_results_print_header(bool md)
{
    if (md) {
        printf("| load | ok | failed | s | req/s | out tok/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms | ITL p50 / p99 ms | E2E p50 / p99 ms | goodput req/s |\n");
        printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    } else {
        printf("%-8s %6s %6s %7s %7s %9s %17s %17s %17s %19s %8s\n", "load", "ok", "failed", "s",
               "req/s", "out tok/s", "TTFT p50/p99 ms", "TPOT p50/p99 ms", "ITL p50/p99 ms",
               "E2E p50/p99 ms", "goodput");
    }
}

void mlc_results_print_row(bool md, const mlc_load_point *lp, const mlc_phase_metrics *m)
{
    char ttft[40], tpot[40], itl[40], e2e[40];
    snprintf(ttft, sizeof ttft, "%.1f / %.1f", m->ttft_ms.p50, m->ttft_ms.p99);
    snprintf(tpot, sizeof tpot, "%.2f / %.2f", m->tpot_ms.p50, m->tpot_ms.p99);
    snprintf(itl, sizeof itl, "%.2f / %.2f", m->itl_ms.p50, m->itl_ms.p99);
    snprintf(e2e, sizeof e2e, "%.0f / %.0f", m->e2el_ms.p50, m->e2el_ms.p99);
    if (md)
        printf("| %s | %lld | %lld | %.2f | %.2f | %.1f%s | %s | %s | %s | %s | %.2f |\n", lp->name,
               (long long)m->completed, (long long)m->failed, m->duration_s, m->request_throughput,
               m->output_throughput, m->tokens_approx ? " (approx)" : "", ttft, tpot, itl, e2e, m->goodput);
    else
        printf("%-8s %6lld %6lld %7.2f %7.2f %9.1f%s %17s %17s %17s %19s %8.2f\n", lp->name,
               (long long)m->completed, (long long)m->failed, m->duration_s, m->request_throughput,
               m->output_throughput, m->tokens_approx ? "~" : "", ttft, tpot, itl, e2e, m->goodput);
    fflush(stdout);
}

/* Aggregates and raw samples of one load point into the store, names prefixed "LOAD/". */
mlc_status mlc_results_store(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_phase_metrics *m,
                             const double *ttft, const double *e2e, int64_t n_ok, mlc_err *err)
{
    struct {
        const char *name, *unit;
        double v;
        int dir;
    } scalars[] = {
        {"request_throughput", "req/s", m->request_throughput, 1},
        {"output_throughput", "tok/s", m->output_throughput, 1},
        {"total_token_throughput", "tok/s", m->total_token_throughput, 1},
        {"request_goodput", "req/s", m->goodput, 1},
        {"failed", "requests", (double)m->failed, -1},
    };
    char name[96];
    mlc_status s = MLC_OK;
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0] && !s; i++) {
        snprintf(name, sizeof name, "%s/%s", lp->name, scalars[i].name);
        s = mlc_store_add_metric(st, run_id, name, scalars[i].unit, "value", scalars[i].v, scalars[i].dir, err);
    }
    const struct {
        const char *name;
        const mlc_stat *st;
    } lat[] = {{"ttft_ms", &m->ttft_ms}, {"tpot_ms", &m->tpot_ms}, {"itl_ms", &m->itl_ms},
               {"e2el_ms", &m->e2el_ms}, {"client_delay_ms", &m->client_delay_ms}};
    for (size_t i = 0; i < sizeof lat / sizeof lat[0] && !s; i++) {
        const char *stats[] = {"mean", "median", "p90", "p99"};
        double vals[] = {lat[i].st->mean, lat[i].st->median, lat[i].st->p90, lat[i].st->p99};
        snprintf(name, sizeof name, "%s/%s", lp->name, lat[i].name);
        for (int k = 0; k < 4 && !s; k++)
            s = mlc_store_add_metric(st, run_id, name, "ms", stats[k], vals[k], -1, err);
    }
    if (!s) {
        snprintf(name, sizeof name, "%s/ttft_ms", lp->name);
        s = mlc_store_add_samples(st, run_id, name, ttft, (int)n_ok, err);
    }
    if (!s) {
        snprintf(name, sizeof name, "%s/e2el_ms", lp->name);
        s = mlc_store_add_samples(st, run_id, name, e2e, (int)n_ok, err);
    }
    return s;
}

cJSON *mlc_results_slo_json(const mlc_slo_bound *b, const mlc_slo_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", b->name);
    cJSON_AddStringToObject(o, "metric", mlc_slo_metric_name(b->metric));
    cJSON_AddNumberToObject(o, "percentile", b->percentile);
    cJSON_AddNumberToObject(o, "bound_ms", b->ms);
    cJSON_AddNumberToObject(o, "confidence", MLC_SLO_CONFIDENCE);
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    cJSON_AddNumberToObject(o, "violations", (double)r->violations);
    cJSON_AddNumberToObject(o, "allowed", (double)r->allowed);
    if (r->verdict == MLC_SLO_NOT_ENOUGH)
        cJSON_AddNumberToObject(o, "needed", (double)r->need);
    if (!isnan(r->observed_ms))
        cJSON_AddNumberToObject(o, "observed_ms", r->observed_ms);
    cJSON_AddStringToObject(o, "verdict", mlc_slo_verdict_name(r->verdict));
    return o;
}

mlc_status mlc_results_prefix(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_stat *first,
                              const mlc_stat *seen, cJSON *pj, mlc_strbuf *text, mlc_err *err)
{
    const char *names[2] = {"first", "seen"};
    const mlc_stat *sv[2] = {first, seen};
    mlc_status s = MLC_OK;
    for (int k = 0; k < 2 && !s; k++) {
        char key[96];
        snprintf(key, sizeof key, "n_prefix_%s", names[k]);
        cJSON_AddNumberToObject(pj, key, (double)sv[k]->n);
        const char *stats[] = {"mean", "median", "p90", "p99"};
        double vals[] = {sv[k]->mean, sv[k]->median, sv[k]->p90, sv[k]->p99};
        for (int i = 0; i < 4; i++) {
            snprintf(key, sizeof key, "%s_ttft_ms_prefix_%s", stats[i], names[k]);
            cJSON_AddNumberToObject(pj, key, vals[i]);
        }
        snprintf(key, sizeof key, "%s/ttft_ms_prefix_%s", lp->name, names[k]);
        for (int i = 0; i < 4 && !s && sv[k]->n; i++)
            s = mlc_store_add_metric(st, run_id, key, "ms", stats[i], vals[i], -1, err);
        if (!s)
            s = mlc_store_add_metric(st, run_id, key, "requests", "n", (double)sv[k]->n, 0, err);
    }
    mlc_sb_printf(text, "  %s: first %lld requests, TTFT p50 %.1f / p99 %.1f ms; prefix sent before %lld, "
                  "TTFT p50 %.1f / p99 %.1f ms\n", lp->name, (long long)first->n, first->p50, first->p99,
                  (long long)seen->n, seen->p50, seen->p99);
    return s;
}

/* mean, median and p99 of one metric of a turn: JSON keys STAT_NAME, stored as LOAD/turnK/NAME. */
static mlc_status turn_stat(mlc_store *st, int64_t run_id, const char *load, int turn, const char *name,
                            const mlc_stat *v, cJSON *o, mlc_err *err)
{
    const char *stats[] = {"mean", "median", "p99"};
    double vals[] = {v->mean, v->median, v->p99};
    char key[96];
    mlc_status s = MLC_OK;
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s_%s", stats[i], name);
        cJSON_AddNumberToObject(o, key, vals[i]);
    }
    snprintf(key, sizeof key, "%s/turn%d/%s", load, turn, name);
    for (int i = 0; i < 3 && !s && v->n; i++)
        s = mlc_store_add_metric(st, run_id, key, "ms", stats[i], vals[i], -1, err);
    return s;
}

mlc_status mlc_results_turns(mlc_store *st, int64_t run_id, const mlc_load_point *lp, const mlc_turn_stats *turns,
                             int n_turns, const mlc_conv_stats *cs, cJSON *pj, mlc_strbuf *text, mlc_err *err)
{
    mlc_status s = MLC_OK;
    cJSON *arr = cJSON_AddArrayToObject(pj, "turns");
    mlc_sb_printf(text, "  %s: %lld conversations completed, %lld failed, %lld cut short; %.2f turns each; "
                  "duration p50 %.3f / p99 %.3f s; TTFT p50 by turn:", lp->name, (long long)cs->completed,
                  (long long)cs->failed, (long long)cs->cut, cs->mean_turns, cs->duration_s.p50, cs->duration_s.p99);
    for (int k = 0; k < n_turns && !s; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "turn", k + 1);
        cJSON_AddNumberToObject(o, "completed", (double)turns[k].completed);
        cJSON_AddNumberToObject(o, "failed", (double)turns[k].failed);
        s = turn_stat(st, run_id, lp->name, k + 1, "ttft_ms", &turns[k].ttft_ms, o, err);
        if (!s)
            s = turn_stat(st, run_id, lp->name, k + 1, "e2el_ms", &turns[k].e2el_ms, o, err);
        mlc_sb_printf(text, "%s %d: %.1f ms", k ? "," : "", k + 1, turns[k].ttft_ms.p50);
    }
    mlc_sb_puts(text, "\n");
    cJSON *c = cJSON_AddObjectToObject(pj, "conversations");
    cJSON_AddNumberToObject(c, "started", (double)cs->started);
    cJSON_AddNumberToObject(c, "completed", (double)cs->completed);
    cJSON_AddNumberToObject(c, "failed", (double)cs->failed);
    cJSON_AddNumberToObject(c, "cut", (double)cs->cut);
    cJSON_AddNumberToObject(c, "mean_turns", cs->mean_turns);
    cJSON_AddNumberToObject(c, "mean_duration_s", cs->duration_s.mean);
    cJSON_AddNumberToObject(c, "median_duration_s", cs->duration_s.median);
    cJSON_AddNumberToObject(c, "p99_duration_s", cs->duration_s.p99);
    char key[96];
    snprintf(key, sizeof key, "%s/conversation_s", lp->name);
    const char *stats[] = {"mean", "median", "p90", "p99"};
    double vals[] = {cs->duration_s.mean, cs->duration_s.median, cs->duration_s.p90, cs->duration_s.p99};
    for (int i = 0; i < 4 && !s && cs->duration_s.n; i++)
        s = mlc_store_add_metric(st, run_id, key, "s", stats[i], vals[i], -1, err);
    snprintf(key, sizeof key, "%s/conversations_completed", lp->name);
    if (!s)
        s = mlc_store_add_metric(st, run_id, key, "conversations", "value", (double)cs->completed, 1, err);
    return s;
}
