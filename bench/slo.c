/* slo.c: --slo parsing and percentile bounds judged with confidence (slo.h). */
#include "slo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define MAX_NEEDED ((int64_t)1 << 50) /* beyond any run: the search for N stops here */

static const char *const metric_names[] = {"ttft", "tpot", "e2e"};

const char *mlc_slo_metric_name(mlc_slo_metric m)
{
    return metric_names[m];
}

const char *mlc_slo_verdict_name(mlc_slo_verdict v)
{
    return v == MLC_SLO_PASS ? "pass" : v == MLC_SLO_FAIL ? "fail" : "not_enough";
}

static bool metric_of(const char *name, size_t len, mlc_slo_metric *m)
{
    for (int i = 0; i < 3; i++) {
        if (strlen(metric_names[i]) == len && !strncmp(name, metric_names[i], len)) {
            *m = (mlc_slo_metric)i;
            return true;
        }
    }
    if (len == 4 && !strncmp(name, "e2el", 4)) {
        *m = MLC_SLO_E2E;
        return true;
    }
    return false;
}

/* The per-request bound of metric m in s (tightest wins). */
static void tighten(mlc_slo *s, mlc_slo_metric m, double ms)
{
    double *v = m == MLC_SLO_TTFT ? &s->ttft_ms : m == MLC_SLO_TPOT ? &s->tpot_ms : &s->e2e_ms;
    if (*v <= 0 || ms < *v)
        *v = ms;
}

/* One item "NAME=MS" or "NAME_pPCT=MS" (item is NUL-terminated, at most 63 bytes). */
static bool parse_item(char *item, mlc_slo_spec *out, char *msg, size_t cap)
{
    char *eq = strchr(item, '='), *end = NULL;
    double v = eq && eq[1] >= '0' && eq[1] <= '9' ? strtod(eq + 1, &end) : NAN;
    if (!(v > 0) || !isfinite(v) || *end) {
        snprintf(msg, cap, "--slo: '%s' is not NAME=MILLISECONDS or NAME_pPERCENTILE=MILLISECONDS "
                 "(a positive number)", item);
        return false;
    }
    *eq = 0;
    char *p = strstr(item, "_p");
    mlc_slo_metric m;
    if (!metric_of(item, p ? (size_t)(p - item) : strlen(item), &m)) {
        snprintf(msg, cap, "--slo: unknown metric '%s' (ttft, tpot, e2e; a percentile as ttft_p99)", item);
        return false;
    }
    if (!p) {
        tighten(&out->request, m, v);
        return true;
    }
    double pct = p[2] >= '0' && p[2] <= '9' ? strtod(p + 2, &end) : NAN;
    if (!(pct > 0 && pct < 100) || *end) {
        snprintf(msg, cap, "--slo: '%s': the percentile must be a number in (0, 100), as ttft_p99", item);
        return false;
    }
    if (out->n_pct == MLC_SLO_MAX_BOUNDS) {
        snprintf(msg, cap, "--slo: more than %d percentile bounds", MLC_SLO_MAX_BOUNDS);
        return false;
    }
    mlc_slo_bound *b = &out->pct[out->n_pct++];
    *b = (mlc_slo_bound){m, pct, v, ""};
    snprintf(b->name, sizeof b->name, "%s", item);
    tighten(&out->request, m, v);
    return true;
}

bool mlc_slo_spec_parse(const char *s, mlc_slo_spec *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    for (const char *kv = s;; kv++) {
        size_t len = strcspn(kv, ",");
        char item[64];
        if (len == 0 || len >= sizeof item) {
            snprintf(msg, cap, "--slo: '%.*s' is not NAME=MILLISECONDS or NAME_pPERCENTILE=MILLISECONDS",
                     (int)(len > 40 ? 40 : len), kv);
            return false;
        }
        snprintf(item, sizeof item, "%.*s", (int)len, kv);
        if (!parse_item(item, out, msg, cap))
            return false;
        out->any = true;
        kv += len;
        if (!*kv)
            return true;
    }
}

/* P(X <= x) summed from the pmf, in logs so that large n never underflows the first terms:
 * log pmf(k+1) = log pmf(k) + log((n-k)/(k+1)) + log(q/(1-q)). Terms below 1e-308 vanish,
 * which is far below any alpha this is compared with. */
double mlc_binom_cdf(int64_t x, int64_t n, double q)
{
    if (x < 0)
        return 0;
    if (x >= n)
        return 1;
    double lp = (double)n * log1p(-q), odds = log(q) - log1p(-q), sum = 0;
    for (int64_t k = 0; k <= x; k++) {
        sum += exp(lp);
        lp += log((double)(n - k) / (double)(k + 1)) + odds;
    }
    return fmin(1, sum);
}

int64_t mlc_slo_allowed(int64_t n, double q, double alpha)
{
    if (n <= 0)
        return -1;
    double lp = (double)n * log1p(-q), odds = log(q) - log1p(-q), sum = 0;
    for (int64_t k = 0; k < n; k++) {
        sum += exp(lp);
        if (sum > alpha)
            return k - 1;
        lp += log((double)(n - k) / (double)(k + 1)) + odds;
    }
    return n - 1; /* P(X <= n) = 1 > alpha always */
}

int64_t mlc_slo_needed(int64_t x, double q, double alpha)
{
    int64_t lo = x > 0 ? x : 1, hi = lo;
    while (mlc_binom_cdf(x, hi, q) > alpha) { /* P(X <= x) falls as n grows */
        lo = hi + 1;
        if (hi >= MAX_NEEDED)
            return MAX_NEEDED;
        hi *= 2;
    }
    while (lo < hi) { /* the least n in [lo, hi] that passes; hi passes */
        int64_t mid = lo + (hi - lo) / 2;
        if (mlc_binom_cdf(x, mid, q) <= alpha)
            hi = mid;
        else
            lo = mid + 1;
    }
    return hi;
}

void mlc_slo_judge(int64_t n, int64_t x, double pct, double conf, mlc_slo_result *out)
{
    double q = 1 - pct / 100, alpha = 1 - conf;
    *out = (mlc_slo_result){.n = n, .violations = x, .observed_ms = NAN};
    out->allowed = mlc_slo_allowed(n, q, alpha);
    if (x <= out->allowed)
        out->verdict = MLC_SLO_PASS;
    else if (x > 0 && 1 - mlc_binom_cdf(x - 1, n, q) <= alpha)
        out->verdict = MLC_SLO_FAIL;
    else {
        out->verdict = MLC_SLO_NOT_ENOUGH;
        out->need = mlc_slo_needed(x, q, alpha);
    }
}

/* Metric m of a successful request, ms; false when the request is no sample of it. */
static bool value_of(mlc_slo_metric m, const mlc_req_times *r, double *v)
{
    double ttft = (r->first_token - r->sent) * 1e3, e2e = (r->done - r->sent) * 1e3;
    if (m == MLC_SLO_TPOT) {
        if (r->output_tokens <= 1)
            return false;
        *v = (e2e - ttft) / (double)(r->output_tokens - 1);
        return true;
    }
    *v = m == MLC_SLO_TTFT ? ttft : e2e;
    return true;
}

void mlc_slo_evaluate(const mlc_slo_bound *b, const mlc_req_times *r, int64_t n, mlc_slo_result *out)
{
    double *ok = malloc(((size_t)n + 1) * sizeof *ok);
    int64_t samples = 0, x = 0, n_ok = 0;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (!r[i].ok || r[i].first_token < 0) {
            samples++, x++;
            continue;
        }
        if (!value_of(b->metric, &r[i], &v))
            continue;
        samples++;
        x += v > b->ms;
        if (ok)
            ok[n_ok++] = v;
    }
    mlc_slo_judge(samples, x, b->percentile, MLC_SLO_CONFIDENCE, out);
    out->observed_ms = n_ok ? mlc_quantile(ok, (size_t)n_ok, b->percentile / 100) : NAN;
    free(ok);
}

void mlc_slo_describe(const mlc_slo_bound *b, const mlc_slo_result *r, char *buf, size_t cap)
{
    char seen[64] = "none succeeded";
    if (!isnan(r->observed_ms))
        snprintf(seen, sizeof seen, "observed %.1f ms", r->observed_ms);
    if (r->verdict == MLC_SLO_NOT_ENOUGH)
        snprintf(buf, cap, "%s <= %g ms: not enough requests: need %lld (%lld of %lld above; %s)", b->name, b->ms,
                 (long long)r->need, (long long)r->violations, (long long)r->n, seen);
    else
        snprintf(buf, cap, "%s <= %g ms: %s (%s; %lld of %lld above, at most %lld allowed)", b->name, b->ms,
                 mlc_slo_verdict_name(r->verdict), seen, (long long)r->violations, (long long)r->n,
                 (long long)(r->allowed > 0 ? r->allowed : 0));
}
