/* run.c: the benchmark harness, `mlc-bench run`.
 *
 * One thread, one event loop: the load generator decides when each request is due (closed
 * loop: when a slot frees; open loop: on a precomputed Poisson/gamma/constant schedule or a
 * trace's timestamps, load.c), hands it to the target (target.c: the local engine or an
 * endpoint), and the target reports when the request was sent, when each token-bearing chunk
 * arrived and when it finished. With --multi-turn a conversation's next turn is queued when
 * its answer arrives (conv.c). Finished requests go to the store in batches as they
 * complete; each load point's results (results.c), --slo verdicts (slo.c) and
 * --save-requests (export.c) follow it. SIGINT/SIGTERM stop sending, keep what finished,
 * mark the run 'interrupted' and exit 130. */
#include "run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "client.h"
#include "conv.h"
#include "dataset.h"
#include "export.h"
#include "load.h"
#include "metrics.h"
#include "mlc/model.h"
#include "results.h"
#include "run_opts.h"
#include "slo.h"
#include "store.h"
#include "strbuf.h"
#include "synth.h"
#include "target.h"

#define MAX_SCHEDULE_S 1e6         /* latest trace arrival at --time-scale, without --duration */
#define MAX_REASONS 3              /* distinct failure reasons printed per load point */

/* ---------------------------------------------------------------- the harness */

#define BLOCK 1024 /* request slots are allocated in blocks so their addresses never move */

typedef struct harness {
    const mlc_run_opts *o;
    mlc_target *t;
    mlc_store *store;
    int64_t run_id;
    mlc_dataset ds;
    mlc_run_req **blocks;
    int64_t n_slots_used, n_blocks;
    int in_flight;
    double t0;                 /* the run's clock origin (monotonic seconds) */
    double *free_at;           /* closed loop: times slots became free, a FIFO */
    int free_head, free_tail, free_cap;
    sigset_t sigs;
    bool interrupted, store_failed;
    mlc_err store_err;
    int64_t phase_done, phase_total;
    double last_progress;
    const char *phase_name;
    cJSON *json;
    bool tty;                  /* stderr is a terminal: one progress line, redrawn */
    /* Totals of the load points as their tables print them: the one source of the summary
     * line and the exit status. */
    int64_t ok_total, failed_total, dropped_total;
    mlc_strbuf slo_text;       /* the verdicts of --slo percentile bounds, one line each */
    mlc_strbuf prefix_text;    /* TTFT by whether the prefix was sent before, one line each */
    mlc_strbuf conv_text;      /* --multi-turn: conversations and turns, one line each */
    bool *prefix_sent;         /* prefix dataset: [prefix id] sent yet */
    /* --multi-turn: every conversation started, and the turns waiting for their time (a
     * FIFO: answers are handled in time order and the think time is one constant) */
    struct conv_rec {
        mlc_conv *c;
        int64_t entry;         /* the dataset entry */
        int phase;
        double start, end;     /* first turn sent, last answer done (monotonic s) */
        bool failed, cut;      /* a turn failed; stopped before its last turn */
    } *convs;
    int64_t n_convs, cap_convs, conv_active;
    int64_t *fu_conv, fu_head, fu_tail, fu_cap;
    double *fu_due;
    bool no_followups;         /* the load point stopped: conversations end with their turn */
    bool slo_failed;
    double phase_cpu_s;        /* process CPU time of the last load phase's request loop */
} harness;

static mlc_run_req *new_slot(harness *h)
{
    int64_t b = h->n_slots_used / BLOCK;
    if (b == h->n_blocks) {
        mlc_run_req **nb = realloc(h->blocks, (size_t)(b + 1) * sizeof *nb);
        if (!nb)
            return NULL;
        h->blocks = nb;
        if (!(h->blocks[b] = calloc(BLOCK, sizeof(mlc_run_req))))
            return NULL;
        h->n_blocks++;
    }
    return &h->blocks[b][h->n_slots_used++ % BLOCK];
}

static mlc_run_req *slot_at(const harness *h, int64_t i)
{
    return &h->blocks[i / BLOCK][i % BLOCK];
}

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

static void note_id(mlc_run_req *r, int32_t id)
{
    if (r->n_ids == r->cap_ids) {
        int32_t cap = r->cap_ids ? r->cap_ids * 2 : 32;
        int32_t *p = realloc(r->ids, (size_t)cap * sizeof *p);
        if (!p)
            return;
        r->ids = p;
        r->cap_ids = cap;
    }
    r->ids[r->n_ids++] = id;
}

static void push_free(harness *h, double t)
{
    if (h->free_tail - h->free_head == h->free_cap)
        return;
    h->free_at[h->free_tail++ % h->free_cap] = t;
}

static bool conv_after(harness *h, mlc_run_req *r, double t, bool ok, bool cut_short);

/* A finished request as the store and the export take it (times on the run's clock). */
static void slot_record(const harness *h, const mlc_run_req *r, mlc_request_record *rec)
{
    *rec = (mlc_request_record){
        .idx = r->idx, .phase = r->phase, .scheduled = r->t.scheduled - h->t0, .sent = r->t.sent - h->t0,
        .first_token = r->t.first_token < 0 ? -1 : r->t.first_token - h->t0, .done = r->t.done - h->t0,
        .ok = r->t.ok, .error_kind = r->t.ok ? NULL : r->t.error_kind, .error = r->t.ok || !r->t.error[0] ? NULL : r->t.error,
        .input_tokens = r->t.input_tokens, .output_tokens = r->t.output_tokens,
        .tokens_approx = r->t.tokens_approx, .itl_ms = r->t.itl_ms, .n_itl = r->t.n_itl,
        .http_status = r->http_status, .url = r->url};
}

static void on_done(void *hv, mlc_run_req *r, double t, bool ok, const char *kind, const char *err,
                    int64_t in_tok, int64_t out_tok, bool approx)
{
    harness *h = hv;
    if (!r->in_flight)
        return;
    char why[96];
    if (ok && r->t.first_token < 0) {
        snprintf(why, sizeof why, "finished (%lld tokens counted) before any token arrived", (long long)out_tok);
        ok = false;
        kind = MLC_FAIL_NO_TOKENS;
        err = why;
    }
    r->in_flight = false;
    h->in_flight--;
    r->t.done = t;
    r->t.ok = ok;
    r->t.error_kind = kind;
    snprintf(r->t.error, sizeof r->t.error, "%s", err ? err : "");
    r->t.input_tokens = in_tok;
    r->t.output_tokens = out_tok;
    r->t.tokens_approx = approx;
    /* Requests cut short by Ctrl-C did not fail: they are left out of the tables, the totals
     * and the store (counted apart). A failure of another kind still counts. */
    bool cut_short = h->interrupted && !ok && kind && !strcmp(kind, MLC_FAIL_CANCELLED);
    /* A closed loop's slot frees when its request, or its conversation, ends. */
    if (r->conv < 0 || conv_after(h, r, t, ok, cut_short)) {
        push_free(h, t);
        h->phase_done++;
    }
    if (cut_short) {
        r->dropped = true;
        h->dropped_total += r->recorded;
        return;
    }
    if (!r->recorded || h->store_failed)
        return;
    mlc_request_record rec;
    slot_record(h, r, &rec);
    if (mlc_store_add_request(h->store, h->run_id, &rec, &h->store_err))
        h->store_failed = true;
}

/* On a terminal one line redrawn 5 times a second; elsewhere (a CI log) a plain line every
 * --progress-interval seconds, none at the end (the table follows). */
static void progress(harness *h, bool final)
{
    if (h->o->quiet)
        return;
    double now = mlc_client_now();
    if (!h->tty) {
        if (final || now - h->last_progress < h->o->progress_s)
            return;
        h->last_progress = now;
        fprintf(stderr, "[%s] %lld/%lld done, %d in flight, %.1f s\n", h->phase_name,
                (long long)h->phase_done, (long long)h->phase_total, h->in_flight, now - h->t0);
        return;
    }
    if (!final && now - h->last_progress < 0.2)
        return;
    h->last_progress = now;
    fprintf(stderr, "\r[%s] %lld/%lld done, %d in flight, %.1f s%s", h->phase_name,
            (long long)h->phase_done, (long long)h->phase_total, h->in_flight, now - h->t0,
            final ? "\n" : "   ");
}

static bool check_signal(harness *h)
{
    struct timespec zero = {0, 0};
    if (!h->interrupted && sigtimedwait(&h->sigs, NULL, &zero) > 0)
        h->interrupted = true;
    return h->interrupted;
}

static int32_t max_tokens_for(const mlc_run_opts *o, const mlc_prompt *p)
{
    if (o->output_len > 0)
        return o->output_len;
    return p->max_tokens > 0 ? p->max_tokens : 128;
}

/* A new slot for one request of prompt p, or NULL (out of memory: the run stops). */
static mlc_run_req *begin_slot(harness *h, int64_t k, int phase, bool record, double scheduled, const mlc_prompt *p)
{
    mlc_run_req *r = new_slot(h);
    if (!r) {
        h->store_failed = true;
        mlc_err_set(&h->store_err, MLC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *r = (mlc_run_req){.idx = k, .phase = phase, .recorded = record, .in_flight = true, .prompt = p, .conv = -1,
                    .prefix_seen = -1};
    if (p->prefix_id >= 0 && h->prefix_sent) {
        r->prefix_seen = h->prefix_sent[p->prefix_id];
        h->prefix_sent[p->prefix_id] = true;
    }
    r->t.scheduled = scheduled;
    r->t.first_token = -1;
    return r;
}

static void submit(harness *h, mlc_run_req *r)
{
    r->t.sent = mlc_client_now();
    h->in_flight++;
    mlc_err err;
    if (h->t->submit(h->t, r, max_tokens_for(h->o, r->prompt), &err))
        on_done(h, r, mlc_client_now(), false, "submit", err.msg, 0, 0, true);
}

/* The next turn of conversation ci as request k: its history and user message. */
static void send_turn(harness *h, int64_t ci, int64_t k, int phase, bool record, double scheduled)
{
    struct conv_rec *cr = &h->convs[ci];
    bool oom;
    char *msgs = mlc_conv_next(cr->c, &oom);
    const mlc_prompt *src = &h->ds.p[cr->entry % h->ds.n];
    mlc_run_req *r = msgs ? begin_slot(h, k, phase, record, scheduled, src) : NULL;
    if (!r) { /* the conversation ends here; out of memory also stops the run */
        free(msgs);
        cr->cut = true;
        h->conv_active--;
        push_free(h, mlc_client_now());
        if (oom || msgs) {
            h->store_failed = true;
            mlc_err_set(&h->store_err, MLC_ERR_NOMEM, "out of memory");
        }
        return;
    }
    r->own = (mlc_prompt){.messages_json = msgs, .max_tokens = src->max_tokens, .input_tokens = -1,
                          .timestamp = -1, .prefix_id = -1};
    r->prompt = &r->own;
    r->conv = ci;
    r->turn = mlc_conv_turns(cr->c);
    submit(h, r);
}

/* A new conversation from dataset entry k: its first turn. */
static void start_conv(harness *h, int64_t k, int phase, bool record, double scheduled)
{
    if (h->n_convs == h->cap_convs) {
        int64_t cap = h->cap_convs ? h->cap_convs * 2 : 64;
        struct conv_rec *nc = realloc(h->convs, (size_t)cap * sizeof *nc);
        if (!nc) {
            h->store_failed = true;
            mlc_err_set(&h->store_err, MLC_ERR_NOMEM, "out of memory");
            return;
        }
        h->convs = nc;
        h->cap_convs = cap;
    }
    struct conv_rec *cr = &h->convs[h->n_convs];
    /* Conversations take the dataset's entries in order (k numbers requests, turns included). */
    *cr = (struct conv_rec){.entry = h->n_convs, .phase = phase, .start = mlc_client_now()};
    const mlc_prompt *p = &h->ds.p[cr->entry % h->ds.n];
    mlc_err err;
    if (mlc_conv_new(p->messages_json, h->o->history_dataset, &cr->c, &err)) {
        mlc_err_set(&h->store_err, err.status, "dataset '%s', entry %lld: %s", h->ds.name,
                    (long long)(cr->entry % h->ds.n), err.msg);
        h->store_failed = true;
        return;
    }
    h->conv_active++;
    send_turn(h, h->n_convs++, k, phase, record, scheduled);
}

static void send_one(harness *h, int64_t k, int phase, bool record, double scheduled)
{
    if (h->o->multi_turn) {
        start_conv(h, k, phase, record, scheduled);
        return;
    }
    k = mlc_shard_request(k, h->o->shard_index, h->o->shard_count);
    mlc_run_req *r = begin_slot(h, k, phase, record, scheduled, &h->ds.p[k % h->ds.n]);
    if (r)
        submit(h, r);
}

/* After a turn's answer: the conversation's next turn is queued for after the think time
 * (true: the conversation ended, with its last turn, a failure, or the load point's end). */
static bool conv_after(harness *h, mlc_run_req *r, double t, bool ok, bool cut_short)
{
    struct conv_rec *cr = &h->convs[r->conv];
    cr->end = t;
    cr->failed |= !ok && !cut_short;
    bool more = ok && !h->interrupted && !h->no_followups && !h->store_failed;
    if (ok && !mlc_conv_answer(cr->c, r->text.p ? r->text.p : "", r->text.len)) {
        h->store_failed = true;
        mlc_err_set(&h->store_err, MLC_ERR_NOMEM, "out of memory");
        more = false;
    }
    more = more && mlc_conv_more(cr->c);
    if (more && h->fu_tail == h->fu_cap) {
        int64_t cap = h->fu_cap ? h->fu_cap * 2 : 64;
        int64_t *nc = realloc(h->fu_conv, (size_t)cap * sizeof *nc);
        double *nd = nc ? realloc(h->fu_due, (size_t)cap * sizeof *nd) : NULL;
        if (nc)
            h->fu_conv = nc;
        if (nd)
            h->fu_due = nd;
        more = nc && nd;
        h->fu_cap = more ? cap : h->fu_cap;
    }
    if (more) {
        h->fu_conv[h->fu_tail] = r->conv;
        h->fu_due[h->fu_tail++] = t + h->o->think_s;
        return false;
    }
    cr->cut = cut_short || (ok && mlc_conv_more(cr->c));
    h->conv_active--;
    return true;
}

/* Sends the queued turns that are due (an open loop's cap allowing); at the load point's end
 * drops them, ending their conversations. */
static void send_followups(harness *h, const mlc_load_point *lp, int phase, bool record, bool stop, double now,
                           int64_t *next_k)
{
    for (; h->fu_head < h->fu_tail; h->fu_head++) {
        int64_t ci = h->fu_conv[h->fu_head];
        if (stop) {
            h->convs[ci].cut = true;
            h->conv_active--;
            push_free(h, now);
            continue;
        }
        if (h->fu_due[h->fu_head] > now ||
            (lp->kind != MLC_LOAD_CONCURRENCY && lp->concurrency > 0 && h->in_flight >= lp->concurrency))
            return;
        send_turn(h, ci, (*next_k)++, phase, record, h->fu_due[h->fu_head]);
    }
}

/* Whether the next request of load point lp may go now: a closed loop when a slot is free,
 * an open loop (or a trace) when the next arrival is due and the cap allows. */
static bool may_send(const harness *h, const mlc_load_point *lp, double now, double next_arrival)
{
    if (lp->kind == MLC_LOAD_CONCURRENCY) /* a free slot: a request or conversation ended */
        return h->free_head != h->free_tail;
    if (lp->concurrency > 0 && h->in_flight >= lp->concurrency)
        return false;
    return next_arrival <= now;
}

/* How long the loop may wait for the target: until the next arrival is due (unless the cap
 * holds it back: then until a request finishes) or the duration ends, at most 50 ms. */
static double loop_wait(const harness *h, const mlc_load_point *lp, bool more, double next_arrival, double end)
{
    double now = mlc_client_now(), wait = 0.05;
    bool capped = lp->concurrency > 0 && h->in_flight >= lp->concurrency;
    if (more)
        wait = fmin(wait, end - now);
    if (more && lp->kind != MLC_LOAD_CONCURRENCY && !capped)
        wait = fmin(wait, next_arrival - now);
    if (h->fu_head < h->fu_tail && !(lp->kind != MLC_LOAD_CONCURRENCY && capped))
        wait = fmin(wait, h->fu_due[h->fu_head] - now);
    return fmax(0, wait);
}

/* Runs one load point: n requests, or with --duration (recorded points) as many as are due
 * before it ends (a trace still ends with its last entry); returns when none is in flight.
 * Requests of this phase are slots [first, h->n_slots_used). */
/* CPU seconds used by every thread of this process: against an endpoint, what the harness
 * itself costs per request and per token (the figure `make bench-client` compares). */
static double process_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts))
        return 0;
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_phase(harness *h, const mlc_load_point *lp, int phase, int64_t n, bool record, int64_t *next_k)
{
    const mlc_run_opts *o = h->o;
    const bool trace = lp->kind == MLC_LOAD_TRACE, timed = o->duration_s > 0 && record;
    double start = mlc_client_now(), next_arrival = start, cpu0 = process_cpu_s();
    double end = timed ? start + o->duration_s : INFINITY;
    int64_t sent = 0, limit = trace ? (n < h->ds.n ? n : h->ds.n) : timed ? INT64_MAX : n;
    mlc_arrivals arr;
    mlc_shard_arrivals(&arr, lp->rate, o->burstiness, !strcmp(o->arrival, "constant"), o->seed, phase,
                       o->shard_index, o->shard_count);
    h->phase_done = 0;
    h->phase_total = limit == INT64_MAX ? n : limit;
    h->phase_name = record ? lp->name : "warmup";
    if (!h->tty)
        h->last_progress = start;
    h->free_head = h->free_tail = 0;
    h->fu_head = h->fu_tail = 0;
    h->no_followups = false;
    for (int i = 0; lp->kind == MLC_LOAD_CONCURRENCY && i < lp->concurrency && i < h->free_cap; i++)
        push_free(h, start);
    if (trace && h->ds.n)
        next_arrival = start + h->ds.p[0].timestamp / o->time_scale;
    for (;;) {
        double now = mlc_client_now();
        bool stop = check_signal(h) || h->store_failed || now >= end;
        if (stop && h->in_flight && h->interrupted) {
            h->t->cancel_all(h->t);
            continue;
        }
        h->no_followups |= stop;
        send_followups(h, lp, phase, record, stop, now, next_k);
        bool more = !stop && sent < limit;
        while (more && may_send(h, lp, now, next_arrival)) {
            if (lp->kind == MLC_LOAD_CONCURRENCY) {
                send_one(h, (*next_k)++, phase, record, h->free_at[h->free_head++ % h->free_cap]);
            } else {
                send_one(h, trace ? sent : *next_k, phase, record, next_arrival);
                (*next_k)++;
                if (!trace)
                    next_arrival += mlc_arrivals_next_gap(&arr);
                else if (sent + 1 < h->ds.n)
                    next_arrival = start + h->ds.p[sent + 1].timestamp / o->time_scale;
            }
            more = ++sent < limit;
        }
        if (!more && h->in_flight == 0 && h->conv_active == 0)
            break;
        h->t->poll(h->t, loop_wait(h, lp, more, next_arrival, end));
        progress(h, false);
    }
    h->phase_total = h->phase_done;
    h->phase_cpu_s = process_cpu_s() - cpu0;
    progress(h, true);
}

/* ---------------------------------------------------------------- results */

/* The first MAX_REASONS distinct reasons (kind, HTTP status, URL, message) among the failed
 * requests of slots [from, to), with counts, on stderr. */
static void print_reasons(const harness *h, const mlc_load_point *lp, int64_t from, int64_t to)
{
    const mlc_run_req *first[MAX_REASONS];
    int64_t count[MAX_REASONS], other = 0;
    int n = 0;
    for (int64_t i = from; i < to; i++) {
        const mlc_run_req *r = slot_at(h, i);
        if (r->dropped || r->t.ok)
            continue;
        int k = 0;
        while (k < n && !(first[k]->http_status == r->http_status && !strcmp(first[k]->t.error, r->t.error) &&
                          !strcmp(first[k]->t.error_kind ? first[k]->t.error_kind : "",
                                  r->t.error_kind ? r->t.error_kind : "")))
            k++;
        if (k < n)
            count[k]++;
        else if (n < MAX_REASONS)
            first[n] = r, count[n++] = 1;
        else
            other++;
    }
    for (int k = 0; k < n; k++) {
        const mlc_run_req *r = first[k];
        char status[16] = "";
        if (r->http_status > 0 && r->t.error_kind && !strcmp(r->t.error_kind, MLC_FAIL_HTTP))
            snprintf(status, sizeof status, " %d", r->http_status);
        fprintf(stderr, "  %s: %lld failed: %s%s%s%s: %s\n", lp->name, (long long)count[k],
                r->t.error_kind ? r->t.error_kind : "unknown", status, r->url ? " at " : "", r->url ? r->url : "",
                r->t.error[0] ? r->t.error : "(no message)");
    }
    if (other)
        fprintf(stderr, "  %s: %lld more failed for other reasons (all are in the store's requests table)\n",
                lp->name, (long long)other);
}

/* The --slo percentile bounds of one load point: judged, added to its JSON, stored, and
 * their lines kept for after the table. */
static mlc_status judge_slos(harness *h, const mlc_load_point *lp, const mlc_req_times *t, int64_t n, cJSON *pj,
                             mlc_err *err)
{
    const mlc_slo_spec *spec = &h->o->slo;
    cJSON *arr = spec->n_pct ? cJSON_AddArrayToObject(pj, "slo") : NULL;
    mlc_status s = MLC_OK;
    for (int i = 0; i < spec->n_pct && !s; i++) {
        const mlc_slo_bound *b = &spec->pct[i];
        mlc_slo_result r;
        char line[256];
        mlc_slo_evaluate(b, t, n, &r);
        h->slo_failed |= r.verdict == MLC_SLO_FAIL;
        mlc_slo_describe(b, &r, line, sizeof line);
        mlc_sb_printf(&h->slo_text, "  %s: %s\n", lp->name, line);
        cJSON_AddItemToArray(arr, mlc_results_slo_json(b, &r));
        mlc_slo_row row = {lp->name, b->name, mlc_slo_metric_name(b->metric), b->percentile, b->ms,
                           MLC_SLO_CONFIDENCE, r.n, r.violations, r.allowed, r.need, r.observed_ms,
                           mlc_slo_verdict_name(r.verdict)};
        s = mlc_store_add_slo(h->store, h->run_id, &row, err);
    }
    return s;
}

/* Prefix dataset: TTFT of the successful requests of slots [from, to) whose prefix was sent
 * first, and of those whose prefix had been sent before. */
static mlc_status split_by_prefix(harness *h, const mlc_load_point *lp, int64_t from, int64_t to, cJSON *pj,
                                  mlc_err *err)
{
    double *v[2] = {malloc((size_t)(to - from + 1) * sizeof(double)), malloc((size_t)(to - from + 1) * sizeof(double))};
    int64_t n[2] = {0, 0};
    mlc_status s = MLC_OK;
    if (!v[0] || !v[1]) {
        s = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = from; i < to; i++) {
        const mlc_run_req *r = slot_at(h, i);
        if (r->prefix_seen >= 0 && !r->dropped && r->t.ok && r->t.first_token >= 0)
            v[r->prefix_seen][n[r->prefix_seen]++] = (r->t.first_token - r->t.sent) * 1e3;
    }
    mlc_stat st[2];
    mlc_stat_compute(v[0], n[0], &st[0]);
    mlc_stat_compute(v[1], n[1], &st[1]);
    s = mlc_results_prefix(h->store, h->run_id, lp, &st[0], &st[1], pj, &h->prefix_text, err);
out:
    free(v[0]);
    free(v[1]);
    return s;
}

/* --multi-turn: the requests of slots [from, to) by turn, and the conversations of this load
 * point (index `phase`). */
static mlc_status split_by_turn(harness *h, const mlc_load_point *lp, int phase, int64_t from, int64_t to,
                                cJSON *pj, mlc_err *err)
{
    int n_turns = 0;
    for (int64_t i = from; i < to; i++)
        n_turns = slot_at(h, i)->turn > n_turns ? slot_at(h, i)->turn : n_turns;
    size_t cap = (size_t)(to - from) + 1;
    mlc_turn_stats *ts = calloc((size_t)n_turns + 1, sizeof *ts);
    double *ttft = malloc(cap * sizeof *ttft), *e2e = malloc(cap * sizeof *e2e), *dur = NULL;
    mlc_conv_stats cs = {0};
    mlc_status s = MLC_OK;
    if (!ts || !ttft || !e2e || !(dur = malloc(((size_t)h->n_convs + 1) * sizeof *dur))) {
        s = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 1; k <= n_turns; k++) {
        int64_t n = 0;
        for (int64_t i = from; i < to; i++) {
            const mlc_run_req *r = slot_at(h, i);
            if (r->turn != k || r->dropped)
                continue;
            if (!r->t.ok || r->t.first_token < 0) {
                ts[k - 1].failed++;
                continue;
            }
            ttft[n] = (r->t.first_token - r->t.sent) * 1e3;
            e2e[n++] = (r->t.done - r->t.sent) * 1e3;
        }
        ts[k - 1].completed = n;
        mlc_stat_compute(ttft, n, &ts[k - 1].ttft_ms);
        mlc_stat_compute(e2e, n, &ts[k - 1].e2el_ms);
    }
    int64_t turns = 0, nd = 0;
    for (int64_t c = 0; c < h->n_convs; c++) {
        const struct conv_rec *cr = &h->convs[c];
        if (cr->phase != phase)
            continue;
        cs.started++;
        turns += mlc_conv_turns(cr->c);
        cs.failed += cr->failed;
        cs.cut += !cr->failed && cr->cut;
        if (!cr->failed && !cr->cut) {
            cs.completed++;
            dur[nd++] = cr->end - cr->start;
        }
    }
    cs.mean_turns = cs.started ? (double)turns / (double)cs.started : 0;
    mlc_stat_compute(dur, nd, &cs.duration_s);
    s = mlc_results_turns(h->store, h->run_id, lp, ts, n_turns, &cs, pj, &h->conv_text, err);
out:
    free(ts);
    free(ttft);
    free(e2e);
    free(dur);
    return s;
}

/* Metrics of slots [from, to): printed, stored, added to the JSON. */
static mlc_status finish_phase(harness *h, const mlc_load_point *lp, int phase, int64_t from, int64_t to,
                               mlc_phase_metrics *m, mlc_err *err)
{
    int64_t n = 0, n_ok = 0;
    size_t cap = (size_t)(to - from) + 1;
    mlc_req_times *t = malloc(cap * sizeof *t);
    double *ttft = malloc(cap * sizeof *ttft), *e2e = malloc(cap * sizeof *e2e);
    if (!t || !ttft || !e2e) {
        free(t);
        free(ttft);
        free(e2e);
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = from; i < to; i++) {
        if (slot_at(h, i)->dropped)
            continue;
        t[n] = slot_at(h, i)->t;
        if (t[n].ok && t[n].first_token >= 0) {
            ttft[n_ok] = (t[n].first_token - t[n].sent) * 1e3;
            e2e[n_ok++] = (t[n].done - t[n].sent) * 1e3;
        }
        n++;
    }
    mlc_metrics_compute(t, n, h->o->slo.any ? &h->o->slo.request : NULL, m);
    h->ok_total += m->completed;
    h->failed_total += m->failed;
    mlc_results_print_row(!strcmp(h->o->format, "md"), lp, m);
    print_reasons(h, lp, from, to);
    cJSON *pj = mlc_results_phase_json(lp, m, n);
    if (h->o->endpoint)
        mlc_results_client_cpu_json(pj, h->phase_cpu_s, m);
    cJSON_AddItemToArray(h->json, pj);
    mlc_status s = mlc_results_store(h->store, h->run_id, lp, m, ttft, e2e, n_ok, err);
    if (!s)
        s = judge_slos(h, lp, t, n, pj, err);
    if (!s && h->prefix_sent)
        s = split_by_prefix(h, lp, from, to, pj, err);
    if (!s && h->o->multi_turn)
        s = split_by_turn(h, lp, phase, from, to, pj, err);
    free(t);
    free(ttft);
    free(e2e);
    return s;
}

/* ---------------------------------------------------------------- command */

static mlc_status open_target(harness *h, mlc_run_opts *o, mlc_model_info *info, mlc_err *err)
{
    memset(info, 0, sizeof *info);
    mlc_run_events ev = {on_sent, on_token, note_id, on_done, h};
    if (o->endpoint)
        return mlc_target_endpoint_new(o, &ev, &h->t, err);
    return mlc_target_local_new(o, &ev, &h->t, info, err);
}

static mlc_status load_dataset(harness *h, mlc_run_opts *o, const mlc_model_info *info, mlc_err *err)
{
    o->ds.spec = o->dataset;
    o->ds.seed = o->seed;
    o->ds.num_prompts = o->num_prompts;
    /* Random and prefix prompts need a count; a --duration run cycles through 1000 of them. */
    if ((!strcmp(o->dataset, "random") || !strcmp(o->dataset, "prefix")) && o->ds.num_prompts <= 0)
        o->ds.num_prompts = 1000;
    /* Random token ids become text for endpoints when a tokenizer is known; without one
     * they are sent as token-id prompts. */
    if (o->endpoint)
        o->ds.tok = h->t->tok;
    o->ds.output_len = o->output_len;
    o->ds.n_vocab = info->n_vocab > 0 ? info->n_vocab : 32000;
    if (!o->ds.input_len)
        o->ds.input_len = 128;
    if (!o->ds.output_len)
        o->ds.output_len = 128;
    mlc_status s = mlc_dataset_load(&o->ds, &h->ds, err);
    if (!s && h->ds.n == 0)
        s = mlc_err_set(err, MLC_ERR_FORMAT, "dataset '%s' has no prompts", o->dataset);
    return s;
}

/* Configurations that cannot work, refused before the first request (false: said why). */
static bool runnable(const harness *h, const mlc_run_opts *o)
{
    if (o->endpoint && !strcmp(o->api, "chat")) {
        for (int32_t i = 0; i < h->ds.n; i++) {
            if (!h->ds.p[i].text && !h->ds.p[i].messages_json) {
                fprintf(stderr, "mlc-bench run: --api chat sends text, but dataset '%s' has token-id prompts "
                        "(prompt %d); give --tokenizer M.gguf to turn them into text, or use --api completions\n",
                        h->ds.name, (int)i);
                return false;
            }
        }
    }
    for (int32_t i = 0; o->multi_turn && i < h->ds.n; i++) {
        if (h->ds.timed || !h->ds.p[i].messages_json) {
            fprintf(stderr, "mlc-bench run: --multi-turn replays chat conversations, but dataset '%s' has %s "
                    "(prompt %d); use ShareGPT or JSONL with \"messages\"\n", h->ds.name,
                    h->ds.timed ? "timestamps" : "a plain prompt", (int)i);
            return false;
        }
    }
    if (h->ds.timed && h->ds.n && !(o->duration_s > 0)) {
        double last = h->ds.p[h->ds.n - 1].timestamp / o->time_scale;
        if (last > MAX_SCHEDULE_S) {
            fprintf(stderr, "mlc-bench run: the trace's last request is due %g s after the first at "
                    "--time-scale %g, beyond %g s; raise --time-scale or cut it with --duration or --num-prompts\n",
                    last, o->time_scale, MAX_SCHEDULE_S);
            return false;
        }
    }
    return true;
}

/* One load point, with the sweep's dynamic rates computed from the first two. */
static mlc_status run_points(harness *h, mlc_run_opts *o, int *exit_code, mlc_err *err)
{
    int64_t next_k = 0, n = mlc_shard_share(o->num_prompts > 0 ? o->num_prompts : h->ds.n, o->shard_index,
                                            o->shard_count);
    if (o->warmup > 0 && o->n_points) {
        mlc_load_point w = o->points[0];
        if (w.kind == MLC_LOAD_TRACE)
            w = (mlc_load_point){MLC_LOAD_CONCURRENCY, 1, 0, "warmup"};
        run_phase(h, &w, -1, o->warmup, false, &next_k);
    }
    mlc_results_print_header(!strcmp(o->format, "md"));
    double r_sync = 0;
    for (int p = 0; p < o->n_points && !h->interrupted && !h->store_failed; p++) {
        int64_t first = h->n_slots_used;
        run_phase(h, &o->points[p], p, n, true, &next_k);
        mlc_phase_metrics m;
        mlc_status s = finish_phase(h, &o->points[p], p, first, h->n_slots_used, &m, err);
        if (s)
            return s;
        if (o->sweep && p == 0)
            r_sync = m.request_throughput;
        char why[160];
        if (o->sweep && p == 1 && !mlc_load_sweep_rates(r_sync, m.request_throughput, o->sweep, o->points,
                                                        &o->n_points, why, sizeof why))
            fprintf(stderr, "mlc-bench run: %s\n", why);
    }
    if (h->store_failed)
        return mlc_err_set(err, h->store_err.status, "%s", h->store_err.msg);
    if (h->prefix_text.len)
        printf("%sTTFT by prefix (first: its prefix not sent before in this run):\n%s",
               !strcmp(o->format, "md") ? "\n" : "", h->prefix_text.p);
    if (h->conv_text.len)
        printf("%sConversations (--multi-turn):\n%s", !strcmp(o->format, "md") ? "\n" : "", h->conv_text.p);
    if (h->slo_text.len)
        printf("%sSLO percentiles at %g%% confidence:\n%s", !strcmp(o->format, "md") ? "\n" : "",
               MLC_SLO_CONFIDENCE * 100, h->slo_text.p);
    *exit_code = h->interrupted ? 130 : h->ok_total == 0 || h->failed_total > 0 || h->slo_failed ? 1 : 0;
    return MLC_OK;
}

static void harness_free(harness *h)
{
    for (int64_t i = 0; i < h->n_slots_used; i++) {
        free(slot_at(h, i)->t.itl_ms);
        free(slot_at(h, i)->text.p);
        free(slot_at(h, i)->ids);
        free(slot_at(h, i)->own.messages_json);
    }
    for (int64_t b = 0; b < h->n_blocks; b++)
        free(h->blocks[b]);
    free(h->blocks);
    free(h->free_at);
    free(h->slo_text.p);
    free(h->prefix_text.p);
    free(h->conv_text.p);
    free(h->prefix_sent);
    for (int64_t i = 0; i < h->n_convs; i++)
        mlc_conv_free(h->convs[i].c);
    free(h->convs);
    free(h->fu_conv);
    free(h->fu_due);
    if (h->t)
        h->t->destroy(h->t);
    mlc_dataset_free(&h->ds);
    cJSON_Delete(h->json);
}

/* --outputs: one JSON line per recorded request: generated token ids (local engine) or
 * streamed text (endpoints). */
static bool write_outputs(const harness *h, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    for (int64_t i = 0; i < h->n_slots_used; i++) {
        const mlc_run_req *r = slot_at(h, i);
        if (!r->recorded)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "idx", (double)r->idx);
        cJSON_AddNumberToObject(o, "phase", r->phase);
        cJSON_AddBoolToObject(o, "ok", r->t.ok);
        if (r->ids)
            cJSON_AddItemToObject(o, "token_ids", cJSON_CreateIntArray(r->ids, r->n_ids));
        cJSON_AddStringToObject(o, "text", r->text.p ? r->text.p : "");
        char *line = cJSON_PrintUnformatted(o);
        if (line)
            fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    return fclose(f) == 0;
}

/* --save-requests: every request the store kept, in the order they were sent. */
static mlc_status save_requests(const harness *h, const char *path, mlc_err *err)
{
    mlc_request_export *x;
    mlc_status s = mlc_export_open(path, &x, err);
    for (int64_t i = 0; i < h->n_slots_used && !s; i++) {
        const mlc_run_req *r = slot_at(h, i);
        if (!r->recorded || r->dropped || r->in_flight)
            continue;
        mlc_request_record rec;
        slot_record(h, r, &rec);
        s = mlc_export_add(x, h->o->points[r->phase].name, &rec, r->conv, r->turn, err);
    }
    if (s) {
        mlc_export_discard(x);
        return s;
    }
    return mlc_export_commit(x, err);
}

static bool write_json(const char *path, const cJSON *j)
{
    char *s = cJSON_Print(j);
    FILE *f = s ? fopen(path, "w") : NULL;
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f))
        ok = false;
    free(s);
    return ok;
}

/* Waits until Unix time t (seconds; 0 or past: at once), taking SIGINT/SIGTERM as they come;
 * false when interrupted. */
static bool wait_start(harness *h, double t)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double left = t - ((double)now.tv_sec + now.tv_nsec * 1e-9);
        if (left <= 0)
            return true;
        left = left < 1 ? left : 1;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        if (sigtimedwait(&h->sigs, NULL, &ts) > 0) {
            h->interrupted = true;
            return false;
        }
    }
}

static int run_with(harness *h, mlc_run_opts *o)
{
    mlc_err err;
    mlc_model_info info;
    int rc = 1;
    char *cfg = NULL;
    const char *status = "failed";
    if (open_target(h, o, &info, &err) || load_dataset(h, o, &info, &err))
        goto fail;
    if (!mlc_load_plan(o->conc_list, o->n_conc, o->rate_list, o->n_rate, h->ds.timed, o->points, &o->n_points) ||
        !runnable(h, o))
        return 2;
    if (o->shard_count > 1 && (h->ds.timed || o->multi_turn)) {
        fprintf(stderr, "mlc-bench run: --shard splits requests and arrivals; a trace's or a conversation's own "
                        "schedule cannot be split\n");
        return 2;
    }
    if (o->sweep)
        mlc_load_plan_sweep(o->points, &o->n_points);
    if (!strcmp(o->dataset, "prefix") && !(h->prefix_sent = calloc((size_t)o->ds.n_prefixes, sizeof *h->prefix_sent))) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    h->free_cap = 1;
    for (int i = 0; i < o->n_points; i++)
        h->free_cap = o->points[i].concurrency + 1 > h->free_cap ? o->points[i].concurrency + 1 : h->free_cap;
    if (!(h->free_at = malloc((size_t)h->free_cap * sizeof *h->free_at)) || !(h->json = cJSON_CreateArray())) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    cfg = mlc_run_opts_config_json(o);
    mlc_run_info ri = {.kind = "run", .label = o->label, .target = o->endpoint ? "endpoint" : "local",
                       .backend = o->endpoint ? NULL : (o->backend ? o->backend : "cpu"),
                       .device = o->endpoint ? NULL : info.backend_desc, .endpoint = o->endpoint,
                       .model_path = o->endpoint ? (o->model_name ? o->model_name : "default") : o->model,
                       .model_arch = info.arch, .model_quant = info.ftype, .config_json = cfg,
                       .run_group = o->run_group, .shard_index = o->shard_index, .shard_count = o->shard_count};
    if (mlc_store_open(o->db, &h->store, &err) || mlc_store_run_begin(h->store, &ri, &h->run_id, &err))
        goto fail;
    if (!wait_start(h, o->start_at)) {
        rc = 130;
        mlc_err_set(&err, MLC_ERR_ARG, "interrupted while waiting for --start-at");
        goto fail;
    }
    h->t0 = mlc_client_now();
    if (run_points(h, o, &rc, &err))
        goto fail;
    /* 'complete': every load point ran to its end, so the aggregates stand for the
     * configuration (failures included, as the 'failed' metric); the exit status still
     * says that requests failed. */
    status = rc == 130 ? "interrupted" : h->ok_total == 0 ? "failed" : "complete";
    if (mlc_store_run_end(h->store, h->run_id, status, &err))
        goto fail;
    if (o->outputs && !write_outputs(h, o->outputs)) {
        fprintf(stderr, "mlc-bench: %s: cannot write the outputs\n", o->outputs);
        rc = 1;
    }
    if (o->save_requests && save_requests(h, o->save_requests, &err)) {
        fprintf(stderr, "mlc-bench: --save-requests: %s\n", err.msg);
        rc = 1;
    }
    if (o->json_path && !write_json(o->json_path, h->json)) {
        fprintf(stderr, "mlc-bench: %s: cannot write the JSON results\n", o->json_path);
        rc = 1;
    }
    if (!o->quiet) {
        char cut[96] = "";
        if (h->dropped_total)
            snprintf(cut, sizeof cut, " (%lld cut short by the interrupt, not counted)", (long long)h->dropped_total);
        fprintf(stderr, "run %lld %s: %lld requests ok, %lld failed%s; stored in %s\n", (long long)h->run_id,
                status, (long long)h->ok_total, (long long)h->failed_total, cut, o->db);
    }
    goto out;
fail:
    fprintf(stderr, "mlc-bench: %s\n", err.msg);
    if (h->store && h->run_id > 0)
        mlc_store_run_end(h->store, h->run_id, h->interrupted ? "interrupted" : "failed", NULL);
    rc = h->interrupted ? 130 : 1;
out:
    free(cfg);
    mlc_store_close(h->store);
    return rc;
}

int mlc_cmd_run(int argc, char **argv)
{
    mlc_run_opts *o = calloc(1, sizeof *o);
    harness *h = calloc(1, sizeof *h);
    int rc = o && h ? mlc_run_opts_parse(argc, argv, o) : 1;
    if (rc < 0) {
        /* Ctrl-C and SIGTERM are taken synchronously by the event loop (sigtimedwait), so no
         * handler or global flag is needed: the loop stops sending and saves what finished. */
        sigset_t old;
        sigemptyset(&h->sigs);
        sigaddset(&h->sigs, SIGINT);
        sigaddset(&h->sigs, SIGTERM);
        sigprocmask(SIG_BLOCK, &h->sigs, &old);
        h->o = o;
        h->tty = isatty(2);
        rc = run_with(h, o);
        harness_free(h);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    free(o);
    free(h);
    return rc;
}

/* ---------------------------------------------------------------- the embedded default */

static bool cache_path(char *buf, size_t cap)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[900];
    if (x && *x)
        snprintf(dir, sizeof dir, "%s/mlc-bench", x);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/mlc-bench", home);
    else
        snprintf(dir, sizeof dir, "/tmp/mlc-bench-cache");
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return false;
    snprintf(buf, cap, "%s/synth-tiny-v1.gguf", dir);
    return true;
}

int mlc_cmd_default(void)
{
    char model[1024];
    if (!cache_path(model, sizeof model)) {
        fprintf(stderr, "mlc-bench: cannot create the cache folder for %s\n", model);
        return 1;
    }
    if (access(model, R_OK) != 0) {
        fprintf(stderr, "mlc-bench: making the built-in synthetic model (once): %s\n", model);
        char *sargv[] = {"synth", "--preset", "tiny", "--type", "q8_0", "-o", model, NULL};
        if (mlc_cmd_model_synth(7, sargv) != 0)
            return 1;
    }
    char *rargv[] = {"run", "--backend", "cpu", "--model", model, "--dataset", "default",
                     "--concurrency", "1,4", "--num-prompts", "24", "--output-len", "64",
                     "--label", "default", NULL};
    return mlc_cmd_run(15, rargv);
}
