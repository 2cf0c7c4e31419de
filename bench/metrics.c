/* metrics.c: the latency and throughput aggregates of a load point, see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool mlc_req_add_itl(mlc_req_times *r, float gap_ms)
{
    if (r->n_itl == r->cap_itl) {
        int32_t cap = r->cap_itl ? r->cap_itl * 2 : 64;
        float *p = realloc(r->itl_ms, (size_t)cap * sizeof *p);
        if (!p)
            return false;
        r->itl_ms = p;
        r->cap_itl = cap;
    }
    r->itl_ms[r->n_itl++] = gap_ms;
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile by linear interpolation between closest ranks (numpy's default), as vLLM. */
static double percentile(const double *sorted, int64_t n, double p)
{
    double pos = p / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

void mlc_stat_compute(double *v, int64_t n, mlc_stat *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n == 0)
        return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += v[i];
    out->mean = sum / (double)n;
    double var = 0;
    for (int64_t i = 0; i < n; i++)
        var += (v[i] - out->mean) * (v[i] - out->mean);
    out->std = sqrt(var / (double)n); /* population std, as numpy.std in vLLM */
    out->min = v[0];
    out->max = v[n - 1];
    out->median = out->p50 = percentile(v, n, 50);
    out->p90 = percentile(v, n, 90);
    out->p95 = percentile(v, n, 95);
    out->p99 = percentile(v, n, 99);
}

static void count_failure(mlc_phase_metrics *m, const char *kind)
{
    kind = kind ? kind : "unknown";
    for (int i = 0; i < m->n_failure_kinds; i++) {
        if (!strcmp(m->failures[i].kind, kind)) {
            m->failures[i].n++;
            return;
        }
    }
    if (m->n_failure_kinds < 8) {
        m->failures[m->n_failure_kinds].kind = kind;
        m->failures[m->n_failure_kinds++].n = 1;
    }
}

static bool meets_slo(const mlc_req_times *r, const mlc_slo *slo)
{
    double ttft = (r->first_token - r->sent) * 1e3, e2e = (r->done - r->sent) * 1e3;
    double tpot = r->output_tokens > 1 ? (e2e - ttft) / (double)(r->output_tokens - 1) : 0;
    return (slo->ttft_ms <= 0 || ttft <= slo->ttft_ms) && (slo->tpot_ms <= 0 || tpot <= slo->tpot_ms) &&
           (slo->e2e_ms <= 0 || e2e <= slo->e2e_ms);
}

void mlc_metrics_compute(const mlc_req_times *r, int64_t n, const mlc_slo *slo, mlc_phase_metrics *m)
{
    memset(m, 0, sizeof *m);
    int64_t n_itl = 0;
    for (int64_t i = 0; i < n; i++)
        n_itl += r[i].ok ? r[i].n_itl : 0;
    double *ttft = malloc(((size_t)n + 1) * sizeof *ttft), *tpot = malloc(((size_t)n + 1) * sizeof *tpot);
    double *e2e = malloc(((size_t)n + 1) * sizeof *e2e), *delay = malloc(((size_t)n + 1) * sizeof *delay);
    double *itl = malloc(((size_t)n_itl + 1) * sizeof *itl);
    if (!ttft || !tpot || !e2e || !delay || !itl)
        goto out;
    double t0 = INFINITY, t1 = -INFINITY;
    int64_t nt = 0, np = 0, ni = 0, good = 0;
    for (int64_t i = 0; i < n; i++) {
        const mlc_req_times *q = &r[i];
        delay[i] = (q->sent - q->scheduled) * 1e3;
        t0 = fmin(t0, q->sent);
        t1 = fmax(t1, q->done);
        if (!q->ok || q->first_token < 0) {
            m->failed++;
            count_failure(m, q->ok ? "no_tokens" : q->error_kind);
            continue;
        }
        m->completed++;
        m->total_input_tokens += q->input_tokens;
        m->total_output_tokens += q->output_tokens;
        m->tokens_approx |= q->tokens_approx;
        ttft[nt++] = (q->first_token - q->sent) * 1e3;
        e2e[nt - 1] = (q->done - q->sent) * 1e3;
        if (q->output_tokens > 1)
            tpot[np++] = (e2e[nt - 1] - ttft[nt - 1]) / (double)(q->output_tokens - 1);
        for (int32_t k = 0; k < q->n_itl; k++)
            itl[ni++] = q->itl_ms[k];
        good += slo && meets_slo(q, slo);
    }
    m->duration_s = n ? t1 - t0 : 0;
    double d = m->duration_s > 0 ? m->duration_s : 1e-9;
    m->request_throughput = (double)m->completed / d;
    m->output_throughput = (double)m->total_output_tokens / d;
    m->total_token_throughput = (double)(m->total_input_tokens + m->total_output_tokens) / d;
    m->goodput = (double)(slo ? good : m->completed) / d;
    mlc_stat_compute(ttft, nt, &m->ttft_ms);
    mlc_stat_compute(e2e, nt, &m->e2el_ms);
    mlc_stat_compute(tpot, np, &m->tpot_ms);
    mlc_stat_compute(itl, ni, &m->itl_ms);
    mlc_stat_compute(delay, n, &m->client_delay_ms);
out:
    free(ttft);
    free(tpot);
    free(e2e);
    free(delay);
    free(itl);
}

bool mlc_slo_parse(const char *s, mlc_slo *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    for (const char *kv = s;; kv++) {
        size_t len = strcspn(kv, ",");
        char item[64], *end = NULL;
        snprintf(item, sizeof item, "%.*s", (int)len, kv);
        char *eq = strchr(item, '=');
        double v = eq && eq[1] >= '0' && eq[1] <= '9' ? strtod(eq + 1, &end) : NAN;
        if (len == 0 || len >= sizeof item || !(v > 0) || !isfinite(v) || *end) {
            snprintf(msg, cap, "--slo: '%.*s' is not NAME=MILLISECONDS (a positive number)", (int)len, kv);
            return false;
        }
        *eq = 0;
        if (!strcmp(item, "ttft"))
            out->ttft_ms = v;
        else if (!strcmp(item, "tpot"))
            out->tpot_ms = v;
        else if (!strcmp(item, "e2e") || !strcmp(item, "e2el"))
            out->e2e_ms = v;
        else {
            snprintf(msg, cap, "--slo: unknown metric '%s' (ttft, tpot, e2e)", item);
            return false;
        }
        kv += len;
        if (!*kv)
            return true;
    }
}
