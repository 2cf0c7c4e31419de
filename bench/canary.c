/* canary.c: `mlc-bench canary`, paired requests to two endpoints and their gate (canary.h). */
#include "canary.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "db.h"
#include "run_opts.h"
#include "stats.h"
#include "store.h"
#include "strbuf.h"
#include "target.h"

/* ---- statistics ----------------------------------------------------------------------------- */

static int cmp_abs(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return x < y ? -1 : x > y;
}

/* P(W+ >= w2 / 2) for ranks 1..n, each in the sum with probability 1/2 (w2: twice W+). */
static double exact_tail(size_t n, double w2)
{
    size_t max = n * (n + 1) / 2;
    double *c = calloc(max + 1, sizeof *c);
    if (!c)
        return 1;
    c[0] = 1;
    for (size_t r = 1; r <= n; r++)
        for (size_t s = max; s >= r; s--)
            c[s] += c[s - r];
    double tail = 0, total = ldexp(1, (int)n);
    for (size_t s = 0; s <= max; s++)
        if (2.0 * (double)s >= w2 - 1e-9)
            tail += c[s];
    free(c);
    return tail / total;
}

double mlc_wilcoxon_greater(double *d, size_t n, size_t *n_used)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] != 0 && !isnan(d[i]))
            d[m++] = d[i];
    *n_used = m;
    if (m == 0)
        return 1;
    qsort(d, m, sizeof *d, cmp_abs);
    double w = 0, ties = 0; /* W+ and sum of t^3 - t over groups of tied |d| */
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j + 1 < m && fabs(d[j + 1]) == fabs(d[i]))
            j++;
        double rank = (double)(i + j) / 2 + 1, t = (double)(j - i + 1);
        ties += t * t * t - t;
        for (size_t k = i; k <= j; k++)
            w += d[k] > 0 ? rank : 0;
        i = j + 1;
    }
    if (ties == 0 && m <= 30)
        return exact_tail(m, 2 * w);
    double nn = (double)m, mean = nn * (nn + 1) / 4;
    double var = nn * (nn + 1) * (2 * nn + 1) / 24 - ties / 48;
    if (var <= 0)
        return 1;
    double z = (w - mean - 0.5) / sqrt(var);
    return 0.5 * erfc(z / sqrt(2));
}

double mlc_two_prop_greater(int64_t fb, int64_t nb, int64_t fc, int64_t nc)
{
    if (nb <= 0 || nc <= 0)
        return 1;
    double pb = (double)fb / (double)nb, pc = (double)fc / (double)nc;
    double pool = (double)(fb + fc) / (double)(nb + nc);
    double se = sqrt(pool * (1 - pool) * (1.0 / (double)nb + 1.0 / (double)nc));
    if (!(se > 0))
        return 1;
    return 0.5 * erfc((pc - pb) / se / sqrt(2));
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct canary_opts {
    const char *url[2]; /* baseline, candidate */
    const char *junit;
    double alpha, threshold_pct, floor_ms;
} canary_opts;

static const char usage_text[] =
    "usage: mlc-bench canary --baseline URL --candidate URL [dataset and load options of run]\n"
    "                        [--alpha A] [--threshold PCT] [--noise-floor MS] [--junit FILE]\n"
    "\n"
    "The same prompts to two live OpenAI-compatible endpoints, interleaved in a random order\n"
    "(--seed), each endpoint at --concurrency N (closed loop, default 1; --rate, --sweep,\n"
    "--duration, traces, --multi-turn and --shard are refused), paired per prompt.\n"
    "Per metric (ttft_ms, tpot_ms, e2el_ms) the candidate regresses when the one-sided\n"
    "Wilcoxon signed-rank test on the per-prompt differences gives p < A (default 0.01), the\n"
    "median rose by more than PCT percent (default 5) and by more than MS milliseconds\n"
    "(default 0.5); a significant change short of that is `~`. The error rate regresses when\n"
    "a one-sided two-proportion z-test gives p < A. Output tokens per request are reported.\n"
    "Both sides are stored (--db) as runs labelled canary-baseline and canary-candidate with\n"
    "one run group. --format md writes markdown (also appended to $GITHUB_STEP_SUMMARY when\n"
    "set); --junit FILE one test case per metric. Other options: see mlc-bench run --help.\n"
    "exit status: 0 no regression, 1 regression (or no request answered), 2 usage error\n";

static bool parse_num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "mlc-bench canary: %s: '%s' is not a number in [%g, %g]\n", flag, v ? v : "", lo, hi);
        return false;
    }
    *out = x;
    return true;
}

/* Takes canary's own options out of argv; the rest (with --endpoint BASELINE first) is left
 * in rest[] for run's parser. -1 to go on, 0 after --help, 2 on a usage error. */
static int parse_own(int argc, char **argv, canary_opts *c, char **rest, int *n_rest)
{
    *c = (canary_opts){.alpha = 0.01, .threshold_pct = 5, .floor_ms = 0.5};
    *n_rest = 3; /* "canary", "--endpoint", baseline */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--baseline") || !strcmp(a, "--candidate") || !strcmp(a, "--junit")) {
            if (!v) {
                fprintf(stderr, "mlc-bench canary: %s needs a value\n", a);
                return 2;
            }
            *(!strcmp(a, "--baseline") ? &c->url[0] : !strcmp(a, "--candidate") ? &c->url[1] : &c->junit) = v;
        } else if (!strcmp(a, "--alpha")) {
            ok = parse_num(a, v, 1e-9, 0.5, &c->alpha);
        } else if (!strcmp(a, "--threshold")) {
            ok = parse_num(a, v, 0, 1000, &c->threshold_pct);
        } else if (!strcmp(a, "--noise-floor")) {
            ok = parse_num(a, v, 0, 1e6, &c->floor_ms);
        } else if (!strcmp(a, "--endpoint") || !strcmp(a, "--model") || !strcmp(a, "-m") ||
                   !strcmp(a, "--backend")) {
            fprintf(stderr, "mlc-bench canary: %s: the endpoints are --baseline and --candidate\n", a);
            return 2;
        } else {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        if (!ok)
            return 2;
        i++;
    }
    if (!c->url[0] || !c->url[1]) {
        fprintf(stderr, "mlc-bench canary: give --baseline URL and --candidate URL\n");
        return 2;
    }
    rest[0] = "canary";
    rest[1] = "--endpoint";
    rest[2] = (char *)c->url[0];
    rest[*n_rest] = NULL;
    return -1;
}

/* ---- the paired load ------------------------------------------------------------------------ */

typedef struct canary {
    mlc_run_opts *o;
    mlc_target *t[2];
    int in_flight[2], cap;
    mlc_dataset ds;
    int64_t n;            /* prompts; request j is prompt j / 2 to side j % 2 */
    mlc_run_req *req;     /* [2 n] */
    int64_t *order;       /* [2 n] sending order */
    mlc_store *store;
    int64_t run[2];
    double t0;
    bool store_failed, interrupted;
    mlc_err store_err;
    sigset_t sigs;
} canary;

static void on_sent(mlc_run_req *r, double t)
{
    r->t.sent = t;
}

static void on_token(mlc_run_req *r, double t, const char *text, size_t len)
{
    if (r->t.first_token < 0)
        r->t.first_token = t;
    else
        mlc_req_add_itl(&r->t, (float)((t - r->t.last_token) * 1e3));
    r->t.last_token = t;
    r->t.chunks++;
    if (text && len)
        mlc_sb_put(&r->text, text, len);
}

static void on_done(void *hv, mlc_run_req *r, double t, bool ok, const char *kind, const char *err,
                    int64_t in_tok, int64_t out_tok, bool approx)
{
    canary *c = hv;
    if (!r->in_flight)
        return;
    int side = (int)((r - c->req) % 2);
    if (ok && r->t.first_token < 0) {
        ok = false;
        kind = MLC_FAIL_NO_TOKENS;
        err = "finished before any token arrived";
    }
    r->in_flight = false;
    c->in_flight[side]--;
    r->t = (mlc_req_times){.scheduled = r->t.scheduled, .sent = r->t.sent, .first_token = r->t.first_token,
                           .done = t, .ok = ok, .error_kind = kind, .input_tokens = in_tok, .output_tokens = out_tok,
                           .tokens_approx = approx, .itl_ms = r->t.itl_ms, .n_itl = r->t.n_itl,
                           .cap_itl = r->t.cap_itl, .last_token = r->t.last_token, .chunks = r->t.chunks};
    snprintf(r->t.error, sizeof r->t.error, "%s", err ? err : "");
    if (c->store_failed)
        return;
    mlc_request_record rec = {.idx = r->idx, .phase = 0, .scheduled = r->t.scheduled - c->t0,
                              .sent = r->t.sent - c->t0,
                              .first_token = r->t.first_token < 0 ? -1 : r->t.first_token - c->t0,
                              .done = t - c->t0, .ok = ok, .error_kind = ok ? NULL : kind,
                              .error = ok ? NULL : r->t.error, .http_status = r->http_status, .url = r->url,
                              .input_tokens = in_tok, .output_tokens = out_tok, .tokens_approx = approx,
                              .itl_ms = r->t.itl_ms, .n_itl = r->t.n_itl};
    if (mlc_store_add_request(c->store, c->run[side], &rec, &c->store_err))
        c->store_failed = true;
}

/* A seeded Fisher-Yates shuffle of 0..m-1 (SplitMix64 steps). */
static void shuffle(int64_t *v, int64_t m, uint64_t seed)
{
    uint64_t s = seed ^ 0x6a09e667f3bcc909ull;
    for (int64_t i = 0; i < m; i++)
        v[i] = i;
    for (int64_t i = m - 1; i > 0; i--) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1)), tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
}

static void send(canary *c, int64_t j)
{
    int side = (int)(j % 2);
    const mlc_prompt *p = &c->ds.p[(j / 2) % c->ds.n];
    mlc_run_req *r = &c->req[j];
    *r = (mlc_run_req){.idx = j / 2, .in_flight = true, .prompt = p, .conv = -1, .prefix_seen = -1};
    r->t.first_token = -1;
    r->t.scheduled = mlc_client_now();
    c->in_flight[side]++;
    int32_t max_tokens = c->o->output_len > 0 ? c->o->output_len : p->max_tokens > 0 ? p->max_tokens : 128;
    mlc_err err;
    r->t.sent = r->t.scheduled;
    if (c->t[side]->submit(c->t[side], r, max_tokens, &err))
        on_done(c, r, mlc_client_now(), false, "submit", err.msg, 0, 0, true);
}

/* Sends in c->order, each side capped at c->cap in flight (the next request waits for its
 * side's slot, so the order holds), until all are answered or a signal comes. */
static void drive(canary *c)
{
    int64_t next = 0, m = 2 * c->n;
    struct timespec zero = {0, 0};
    while (next < m || c->in_flight[0] + c->in_flight[1] > 0) {
        if (!c->interrupted && sigtimedwait(&c->sigs, NULL, &zero) > 0) {
            c->interrupted = true;
            c->t[0]->cancel_all(c->t[0]);
            c->t[1]->cancel_all(c->t[1]);
        }
        while (!c->interrupted && !c->store_failed && next < m && c->in_flight[c->order[next] % 2] < c->cap)
            send(c, c->order[next++]);
        if (c->interrupted || c->store_failed)
            next = m;
        /* Two clients, one thread: neither may block while the other has a token waiting
         * (its timestamp would be late), so both are polled without waiting, with a short
         * sleep between rounds: timestamps are at most ~0.1 ms late, on both sides alike. */
        if (c->in_flight[0] + c->in_flight[1] > 0) {
            c->t[0]->poll(c->t[0], 0);
            c->t[1]->poll(c->t[1], 0);
            nanosleep(&(struct timespec){0, 100000}, NULL);
        }
    }
}

/* ---- the verdict ---------------------------------------------------------------------------- */

typedef struct verdict {
    char name[32];
    double base, cand;    /* medians (ms), or error rates (fractions), or mean output tokens */
    double change_pct, p; /* NaN when not applicable */
    size_t n;             /* pairs (or requests a side) */
    const char *mark;     /* "ok", "~", "REGRESSION", "-" (reported only) */
    char why[96];
} verdict;

/* A request's value of metric m (0 TTFT, 1 TPOT, 2 E2E, ms), NaN when it has none. */
static double value_of(const mlc_req_times *t, int m)
{
    if (!t->ok || t->first_token < 0)
        return NAN;
    if (m == 0)
        return (t->first_token - t->sent) * 1e3;
    if (m == 2)
        return (t->done - t->sent) * 1e3;
    return t->output_tokens > 1 ? (t->done - t->first_token) * 1e3 / (double)(t->output_tokens - 1) : NAN;
}

static void judge_metric(const canary *c, const canary_opts *co, int m, double *b, double *a, double *d, verdict *v)
{
    static const char *const names[] = {"ttft_ms", "tpot_ms", "e2el_ms"};
    size_t n = 0;
    for (int64_t i = 0; i < c->n; i++) {
        double x = value_of(&c->req[2 * i].t, m), y = value_of(&c->req[2 * i + 1].t, m);
        if (isnan(x) || isnan(y))
            continue;
        b[n] = x;
        a[n] = y;
        d[n++] = y - x;
    }
    *v = (verdict){.n = n, .change_pct = NAN, .p = NAN, .mark = "ok"};
    snprintf(v->name, sizeof v->name, "%s", names[m]);
    if (n == 0) {
        v->base = v->cand = NAN;
        v->mark = "-";
        snprintf(v->why, sizeof v->why, "no pair of answered requests");
        return;
    }
    v->base = mlc_median(b, n);
    v->cand = mlc_median(a, n);
    v->change_pct = v->base > 0 ? (v->cand - v->base) / v->base * 100 : NAN;
    size_t used = 0;
    v->p = mlc_wilcoxon_greater(d, n, &used);
    bool sig = v->p < co->alpha, big = v->change_pct > co->threshold_pct, real = v->cand - v->base > co->floor_ms;
    if (sig && big && real) {
        v->mark = "REGRESSION";
        snprintf(v->why, sizeof v->why, "slower: p %.2g < %g, +%.1f%% > %g%%, +%.3g ms > %g ms", v->p, co->alpha,
                 v->change_pct, co->threshold_pct, v->cand - v->base, co->floor_ms);
    } else if (sig) {
        v->mark = "~";
        snprintf(v->why, sizeof v->why, "significant, but %s", !big ? "within the threshold" : "within the noise floor");
    } else {
        snprintf(v->why, sizeof v->why, "no significant slowdown");
    }
}

static void judge_errors(const canary *c, const canary_opts *co, verdict *v)
{
    int64_t f[2] = {0, 0};
    for (int64_t j = 0; j < 2 * c->n; j++)
        f[j % 2] += !c->req[j].t.ok;
    *v = (verdict){.n = (size_t)c->n, .base = (double)f[0] / (double)c->n, .cand = (double)f[1] / (double)c->n,
                   .mark = "ok"};
    snprintf(v->name, sizeof v->name, "error_rate");
    v->change_pct = (v->cand - v->base) * 100; /* percentage points */
    v->p = mlc_two_prop_greater(f[0], c->n, f[1], c->n);
    if (v->p < co->alpha) {
        v->mark = "REGRESSION";
        snprintf(v->why, sizeof v->why, "error rate %.2f%% vs %.2f%%: p %.2g < %g", v->cand * 100, v->base * 100, v->p,
                 co->alpha);
    } else {
        snprintf(v->why, sizeof v->why, "%lld vs %lld failed", (long long)f[1], (long long)f[0]);
    }
}

static void judge_tokens(const canary *c, verdict *v)
{
    double s[2] = {0, 0};
    int64_t k[2] = {0, 0};
    for (int64_t j = 0; j < 2 * c->n; j++) {
        if (c->req[j].t.ok) {
            s[j % 2] += (double)c->req[j].t.output_tokens;
            k[j % 2]++;
        }
    }
    *v = (verdict){.n = (size_t)c->n, .base = k[0] ? s[0] / (double)k[0] : NAN, .cand = k[1] ? s[1] / (double)k[1] : NAN,
                   .p = NAN, .mark = "-"};
    snprintf(v->name, sizeof v->name, "output_tokens");
    v->change_pct = v->base > 0 ? (v->cand - v->base) / v->base * 100 : NAN;
    snprintf(v->why, sizeof v->why, "mean per answered request: reported, not gated");
}

static void print_table(FILE *f, const verdict *v, int n, bool md, const canary_opts *co)
{
    if (md)
        fprintf(f, "### canary: %s vs %s\n\n| metric | baseline | candidate | change | p | n | verdict |\n"
                   "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n", co->url[1], co->url[0]);
    else
        fprintf(f, "%-14s %12s %12s %10s %9s %6s  %s\n", "metric", "baseline", "candidate", "change", "p", "n",
                "verdict");
    for (int i = 0; i < n; i++) {
        bool rate = !strcmp(v[i].name, "error_rate");
        char b[32], c[32], ch[32], p[32];
        snprintf(b, sizeof b, rate ? "%.2f%%" : "%.4g", rate ? v[i].base * 100 : v[i].base);
        snprintf(c, sizeof c, rate ? "%.2f%%" : "%.4g", rate ? v[i].cand * 100 : v[i].cand);
        snprintf(ch, sizeof ch, isnan(v[i].change_pct) ? "-" : rate ? "%+.2f pp" : "%+.2f%%", v[i].change_pct);
        snprintf(p, sizeof p, isnan(v[i].p) ? "-" : "%.3g", v[i].p);
        if (md)
            fprintf(f, "| %s | %s | %s | %s | %s | %zu | %s: %s |\n", v[i].name, b, c, ch, p, v[i].n, v[i].mark,
                    v[i].why);
        else
            fprintf(f, "%-14s %12s %12s %10s %9s %6zu  %s (%s)\n", v[i].name, b, c, ch, p, v[i].n, v[i].mark,
                    v[i].why);
    }
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static bool write_junit(const char *path, const verdict *v, int n, int regressions)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"mlc-bench canary\" tests=\"%d\""
               " failures=\"%d\">\n", n, regressions);
    for (int i = 0; i < n; i++) {
        fprintf(f, "  <testcase classname=\"canary\" name=\"%s\"", v[i].name);
        if (strcmp(v[i].mark, "REGRESSION")) {
            fputs("/>\n", f);
            continue;
        }
        fputs(">\n    <failure message=\"", f);
        xml_text(f, v[i].why);
        fputs("\"/>\n  </testcase>\n", f);
    }
    fputs("</testsuite>\n", f);
    return fclose(f) == 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static mlc_status open_side(canary *c, int side, const char *url, mlc_err *err)
{
    mlc_run_opts *so = malloc(sizeof *so);
    if (!so)
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    *so = *c->o;
    so->endpoint = url;
    mlc_run_events ev = {on_sent, on_token, NULL, on_done, c};
    mlc_status st = mlc_target_endpoint_new(so, &ev, &c->t[side], err);
    free(so);
    return st;
}

static mlc_status load_prompts(canary *c, mlc_err *err)
{
    mlc_run_opts *o = c->o;
    o->ds.spec = o->dataset;
    o->ds.seed = o->seed;
    o->ds.num_prompts = o->num_prompts;
    if ((!strcmp(o->dataset, "random") || !strcmp(o->dataset, "prefix")) && o->ds.num_prompts <= 0)
        o->ds.num_prompts = 100;
    o->ds.tok = c->t[0]->tok;
    o->ds.output_len = o->output_len > 0 ? o->output_len : 128;
    o->ds.n_vocab = 32000;
    if (!o->ds.input_len)
        o->ds.input_len = 128;
    mlc_status st = mlc_dataset_load(&o->ds, &c->ds, err);
    if (!st && (c->ds.n == 0 || c->ds.timed))
        st = mlc_err_set(err, MLC_ERR_FORMAT, "dataset '%s': %s", o->dataset,
                         c->ds.n ? "a trace has its own schedule; canary pairs prompts" : "no prompts");
    c->n = o->num_prompts > 0 ? o->num_prompts : c->ds.n;
    return st;
}

static mlc_status begin_runs(canary *c, const canary_opts *co, mlc_err *err)
{
    char group[64], *cfg = mlc_run_opts_config_json(c->o);
    snprintf(group, sizeof group, "canary-%lld-%ld", (long long)time(NULL), (long)getpid());
    mlc_status st = mlc_store_open(c->o->db, &c->store, err);
    for (int s = 0; s < 2 && !st; s++) {
        mlc_run_info ri = {.kind = "run", .label = s ? "canary-candidate" : "canary-baseline", .target = "endpoint",
                           .endpoint = co->url[s], .model_path = c->o->model_name ? c->o->model_name : "default",
                           .config_json = cfg, .run_group = group};
        st = mlc_store_run_begin(c->store, &ri, &c->run[s], err);
    }
    free(cfg);
    return st;
}

/* Ends both runs and stores their aggregates; false when the store failed (said on stderr). */
static bool end_runs(canary *c)
{
    mlc_err err;
    char *cfg = mlc_run_opts_config_json(c->o);
    bool ok = !c->store_failed;
    for (int s = 0; s < 2 && ok; s++) {
        int64_t answered = 0;
        for (int64_t i = 0; i < c->n; i++)
            answered += c->req[2 * i + s].t.ok;
        const char *status = c->interrupted ? "interrupted" : answered ? "complete" : "failed";
        ok = !mlc_db_aggregate(c->store, c->run[s], cfg, &err) && !mlc_store_run_end(c->store, c->run[s], status, &err);
    }
    if (!ok)
        fprintf(stderr, "mlc-bench canary: %s\n", c->store_failed ? c->store_err.msg : err.msg);
    free(cfg);
    return ok;
}

static int verdicts(canary *c, const canary_opts *co)
{
    verdict v[5];
    size_t m = (size_t)c->n + 1;
    double *b = malloc(m * sizeof *b), *a = malloc(m * sizeof *a), *d = malloc(m * sizeof *d);
    if (!b || !a || !d) {
        free(b), free(a), free(d);
        fprintf(stderr, "mlc-bench canary: out of memory\n");
        return 1;
    }
    for (int k = 0; k < 3; k++)
        judge_metric(c, co, k, b, a, d, &v[k]);
    judge_errors(c, co, &v[3]);
    judge_tokens(c, &v[4]);
    free(b), free(a), free(d);
    int regressions = 0;
    for (int k = 0; k < 5; k++)
        regressions += !strcmp(v[k].mark, "REGRESSION");
    bool md = !strcmp(c->o->format, "md");
    print_table(stdout, v, 5, md, co);
    const char *summary = getenv("GITHUB_STEP_SUMMARY");
    FILE *sf = md && summary && *summary ? fopen(summary, "a") : NULL;
    if (sf) {
        print_table(sf, v, 5, true, co);
        fclose(sf);
    }
    printf("%s%d regression%s\n", md ? "\n" : "", regressions, regressions == 1 ? "" : "s");
    if (co->junit && !write_junit(co->junit, v, 5, regressions)) {
        fprintf(stderr, "mlc-bench canary: %s: cannot write the JUnit file\n", co->junit);
        return 2;
    }
    bool none = v[3].base >= 1 || v[3].cand >= 1;
    if (none)
        fprintf(stderr, "mlc-bench canary: no request to the %s was answered\n",
                v[3].base >= 1 ? "baseline" : "candidate");
    return regressions || none ? 1 : 0;
}

static bool loads_ok(const mlc_run_opts *o)
{
    const char *why = o->n_rate ? "--rate" : o->sweep ? "--sweep" : o->duration_s > 0 ? "--duration"
                    : o->multi_turn ? "--multi-turn" : o->shard_count ? "--shard/--run-group"
                    : o->n_conc > 1 ? "a --concurrency list" : NULL;
    if (why)
        fprintf(stderr, "mlc-bench canary: %s: canary pairs prompts in one closed loop (give --concurrency N)\n", why);
    return !why;
}

static int canary_with(canary *c, const canary_opts *co)
{
    mlc_err err;
    int rc = 1;
    if (open_side(c, 0, co->url[0], &err) || open_side(c, 1, co->url[1], &err) || load_prompts(c, &err))
        goto fail;
    c->cap = c->o->n_conc ? (int)c->o->conc_list[0] : 1;
    if (!mlc_load_plan(c->o->conc_list, c->o->n_conc, NULL, 0, false, c->o->points, &c->o->n_points))
        return 2;
    if (!(c->req = calloc((size_t)(2 * c->n), sizeof *c->req)) ||
        !(c->order = malloc((size_t)(2 * c->n) * sizeof *c->order))) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    shuffle(c->order, 2 * c->n, c->o->seed);
    if (begin_runs(c, co, &err))
        goto fail;
    c->t0 = mlc_client_now();
    drive(c);
    if (!end_runs(c))
        return 1;
    rc = verdicts(c, co);
    if (!c->o->quiet)
        fprintf(stderr, "canary: runs %lld (baseline) and %lld (candidate), %lld prompts each, stored in %s\n",
                (long long)c->run[0], (long long)c->run[1], (long long)c->n, c->o->db);
    return c->interrupted ? 130 : rc;
fail:
    fprintf(stderr, "mlc-bench canary: %s\n", err.msg);
    for (int s = 0; s < 2; s++)
        if (c->store && c->run[s] > 0)
            mlc_store_run_end(c->store, c->run[s], "failed", NULL);
    return rc;
}

static void canary_free(canary *c)
{
    for (int64_t j = 0; c->req && j < 2 * c->n; j++) {
        free(c->req[j].t.itl_ms);
        free(c->req[j].text.p);
    }
    free(c->req);
    free(c->order);
    for (int s = 0; s < 2; s++)
        if (c->t[s])
            c->t[s]->destroy(c->t[s]);
    mlc_dataset_free(&c->ds);
    mlc_store_close(c->store);
}

int mlc_cmd_canary(int argc, char **argv)
{
    canary_opts co;
    char **rest = calloc((size_t)argc + 4, sizeof *rest);
    mlc_run_opts *o = calloc(1, sizeof *o);
    canary *c = calloc(1, sizeof *c);
    int n_rest = 0, rc = rest && o && c ? parse_own(argc, argv, &co, rest, &n_rest) : 1;
    if (rc < 0)
        rc = mlc_run_opts_parse(n_rest, rest, o);
    if (rc < 0 && !loads_ok(o))
        rc = 2;
    if (rc < 0) {
        sigset_t old;
        sigemptyset(&c->sigs);
        sigaddset(&c->sigs, SIGINT);
        sigaddset(&c->sigs, SIGTERM);
        sigprocmask(SIG_BLOCK, &c->sigs, &old);
        c->o = o;
        rc = canary_with(c, &co);
        canary_free(c);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    free(rest);
    free(o);
    free(c);
    return rc;
}
