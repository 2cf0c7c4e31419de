/* serve.c: `mlc-bench serve`, an OpenAI-compatible HTTP server.
 *
 * Threads: libmicrohttpd runs one thread per connection; ONE engine thread owns the model,
 * the context and the scheduler and steps it; the main thread waits for SIGINT/SIGTERM
 * (sigwait on a blocked set), then stops accepting, drains the requests in flight and exits.
 * A handler parses the request, puts it on the engine's queue (mutex-protected) and waits
 * on the request's condition variable for tokens: a non-streaming handler until the end,
 * a streaming one in the content reader, one SSE chunk per wake-up. A client that goes away
 * mid-stream makes MHD report a non-OK termination; the request is then cancelled in the
 * scheduler, which frees its slot.
 *
 * Logprobs: the scheduler does not expose logits, so when a request asks for logprobs the
 * engine thread re-reads prompt + generated tokens on a dedicated one-slot context with
 * want_logits for every position once the sequence ends, and takes log-softmax values
 * from there (this costs one extra prefill). Hence logprobs are refused with stream.
 *
 * The null engine (--engine null) has no model: token i of a request is id i with text
 * "tok<i> "; the first token comes --ttft-ms after submission, then one every --itl-ms.
 * Prompt tokens are counted as whitespace-separated words (ids: their number). */
#include "serve.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mlc/chat.h"
#include "mlc/gguf.h"
#include "mlc/model.h"
#include "mlc/sched.h"
#include "mlc/tokenizer.h"
#include "strbuf.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

#define MAX_STOPS 8

static const char serve_usage[] =
    "usage: mlc-bench serve (-m M.gguf [--backend B] | --engine null [--ttft-ms X] [--itl-ms Y])\n"
    "       [--host 127.0.0.1] [--port 8000] [-t N] [--ctx N] [--parallel N] [--max-queue N]\n"
    "       [--max-body BYTES] [--api-key-env VAR] [--chat-template NAME]\n"
    "OpenAI-compatible server: GET /v1/models /health /metrics, POST /v1/completions\n"
    "/v1/chat/completions. --port 0 picks a free port; the first line on stdout says which.\n"
    "--chat-template: chatml, llama2, llama3, mistral, gemma (default: from the model).\n"
    "SIGINT/SIGTERM: stop accepting, finish the requests in flight, exit 0.\n";

typedef struct serve_opts {
    const char *model, *backend, *host, *api_key_env, *chat_template, *engine;
    int port, threads, ctx, parallel, max_queue, max_body;
    float ttft_ms, itl_ms;
} serve_opts;

/* ---- growable text ---- */


/* ---- metrics ---- */
static const double ttft_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double itl_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
#define NB_MAX 12

typedef struct hist {
    const double *le;
    int n;
    int64_t count[NB_MAX];
    int64_t total;
    double sum;
} hist;

static void hist_add(hist *h, double v)
{
    for (int i = 0; i < h->n; i++)
        if (v <= h->le[i])
            h->count[i]++;
    h->total++;
    h->sum += v;
}

static const int status_codes[] = {200, 400, 401, 404, 405, 413, 429, 500, 503};
#define N_CODES (int)(sizeof status_codes / sizeof status_codes[0])

/* ---- requests ---- */
typedef struct sreq sreq;
typedef struct server server;

struct sreq {
    server *srv;
    int refs;               /* handler + engine; guarded by srv->mu */
    pthread_cond_t cv;
    /* input */
    int32_t *prompt;
    size_t n_prompt;
    char *echo_text;
    mlc_request_params rp;
    bool stream, chat, echo, include_usage, logprobs;
    char *stops[MAX_STOPS];
    int n_stops;
    /* engine side (guarded by srv->mu) */
    int32_t *toks;
    size_t n_toks, cap_toks;
    float *lp;              /* n_prompt + n_toks log-probabilities (lp[0] unused), or NULL */
    bool cancel, cancel_sent, done, failed, queued_to_engine;
    mlc_finish finish;
    char errmsg[MLC_ERR_MSG_MAX + 32];
    int64_t sched_id;
    double t_submit, t_last, next_due;
    sreq *next;
    /* handler side */
    size_t n_used;          /* tokens turned into text */
    int32_t *htoks;         /* the handler's copy of toks (the engine may move toks) */
    size_t n_htoks, cap_htoks;
    mlc_strbuf text;
    size_t emitted;         /* bytes of text already sent (streaming) */
    bool stopped;           /* a stop string ended it */
    bool finished_sent, role_sent;
    int phase;              /* streaming: 0 tokens, 1 tail written, 2 end */
    mlc_strbuf out;
    size_t out_pos;
    char id[40];
    long created;
};

typedef struct conn {
    char *body;
    size_t len, cap;
    bool too_big;
    sreq *r;
} conn;

struct server {
    serve_opts o;
    bool null_engine;
    mlc_model *m;
    mlc_context *c, *lpctx;
    mlc_sched *s;
    const mlc_tokenizer *tok;
    mlc_chat_template tmpl;
    char model_id[256];
    const char *api_key;
    struct MHD_Daemon *d;
    pthread_t engine;
    pthread_mutex_t mu;
    pthread_cond_t engine_cv, drain_cv;
    sreq *q_head, *q_tail;
    sreq **live;
    int n_live, cap_live;
    bool stop_engine;
    int in_flight;          /* HTTP requests being handled */
    int in_engine;          /* requests submitted to the engine and not ended */
    int64_t next_id;
    /* metrics (guarded by mu) */
    int64_t by_code[N_CODES + 1];
    int64_t tokens_in, tokens_out;
    hist ttft, itl, batch;
};

static double now_s(void) { return mlc_cli_now(); }

static void req_unref_locked(sreq *r)
{
    if (--r->refs > 0)
        return;
    pthread_cond_destroy(&r->cv);
    free(r->prompt);
    free(r->echo_text);
    for (int i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->toks);
    free(r->htoks);
    free(r->lp);
    free(r->text.p);
    free(r->out.p);
    free(r);
}

/* ---- engine thread ---- */

static bool push_token(sreq *r, int32_t t, double now)
{
    if (r->n_toks == r->cap_toks) {
        size_t cap = r->cap_toks ? r->cap_toks * 2 : 64;
        int32_t *p = realloc(r->toks, cap * sizeof *p);
        if (!p)
            return false;
        r->toks = p;
        r->cap_toks = cap;
    }
    server *s = r->srv;
    if (r->n_toks == 0)
        hist_add(&s->ttft, now - r->t_submit);
    else
        hist_add(&s->itl, now - r->t_last);
    r->t_last = now;
    r->toks[r->n_toks++] = t;
    s->tokens_out++;
    return true;
}

/* Log-probabilities of every token after the first of prompt + generated, on the
 * dedicated context (engine thread, lock not held: r's tokens do not change once done). */
static void compute_logprobs(server *s, sreq *r, size_t n_gen)
{
    size_t n = r->n_prompt + n_gen;
    float *lp = calloc(n ? n : 1, sizeof *lp);
    if (!lp)
        return;
    if (s->null_engine || n < 2) {
        r->lp = lp;
        return;
    }
    int32_t *all = malloc(n * sizeof *all);
    int32_t *pos = malloc(n * sizeof *pos), *slot = calloc(n, sizeof *slot);
    bool *want = malloc(n * sizeof *want);
    mlc_err err;
    bool ok = all && pos && slot && want;
    if (ok && !s->lpctx) {
        mlc_context_params cp = {.n_ctx = mlc_context_n_ctx(s->c), .n_slots = 1, .n_batch = 512};
        ok = mlc_context_new(s->m, &cp, &s->lpctx, &err) == MLC_OK;
    }
    if (ok) {
        memcpy(all, r->prompt, r->n_prompt * sizeof *all);
        if (n_gen) /* toks is NULL when nothing was generated (max_tokens 0 with echo) */
            memcpy(all + r->n_prompt, r->toks, n_gen * sizeof *all);
        for (size_t i = 0; i < n; i++)
            pos[i] = (int32_t)i, want[i] = true;
        int nb = mlc_context_n_batch(s->lpctx), nv = mlc_context_n_vocab(s->lpctx);
        for (size_t at = 0; ok && at + 1 < n; at += (size_t)nb) {
            size_t k = n - 1 - at < (size_t)nb ? n - 1 - at : (size_t)nb;
            mlc_batch b = {(int)k, all + at, pos + at, slot + at, want + at};
            ok = mlc_context_decode(s->lpctx, &b, &err) == MLC_OK;
            for (size_t i = 0; ok && i < k; i++) {
                const float *lg = mlc_context_logits(s->lpctx, (int)i);
                double mx = -INFINITY, sum = 0;
                for (int v = 0; v < nv; v++)
                    mx = lg[v] > mx ? lg[v] : mx;
                for (int v = 0; v < nv; v++)
                    sum += exp(lg[v] - mx);
                lp[at + i + 1] = (float)(lg[all[at + i + 1]] - mx - log(sum));
            }
        }
    }
    free(all);
    free(pos);
    free(slot);
    free(want);
    r->lp = lp; /* zeros where it failed */
}

static void end_req_locked(server *s, sreq *r, mlc_finish f)
{
    r->finish = f;
    r->done = true;
    s->in_engine--;
    pthread_cond_broadcast(&r->cv);
    req_unref_locked(r);
}

static void live_remove(server *s, int i)
{
    s->live[i] = s->live[--s->n_live];
}

/* Moves queued requests to the live list (submitting them to the scheduler). */
static void take_queue_locked(server *s, double now)
{
    while (s->q_head) {
        sreq *r = s->q_head;
        s->q_head = r->next;
        if (!s->q_head)
            s->q_tail = NULL;
        if (r->cancel || r->rp.max_tokens == 0) {
            if (r->logprobs && !r->cancel) {
                pthread_mutex_unlock(&s->mu);
                compute_logprobs(s, r, 0);
                pthread_mutex_lock(&s->mu);
            }
            end_req_locked(s, r, r->cancel ? MLC_FINISH_CANCELLED : MLC_FINISH_LENGTH);
            continue;
        }
        if (!s->null_engine) {
            mlc_err err;
            if (mlc_sched_submit(s->s, r->prompt, r->n_prompt, &r->rp, &r->sched_id, &err)) {
                snprintf(r->errmsg, sizeof r->errmsg, "%s", err.msg);
                r->failed = true;
                end_req_locked(s, r, MLC_FINISH_NONE);
                continue;
            }
        }
        r->next_due = now + s->o.ttft_ms / 1e3;
        if (s->n_live == s->cap_live) {
            int cap = s->cap_live ? s->cap_live * 2 : 64;
            sreq **p = realloc(s->live, (size_t)cap * sizeof *p);
            if (!p) {
                snprintf(r->errmsg, sizeof r->errmsg, "out of memory");
                r->failed = true;
                if (!s->null_engine)
                    mlc_sched_cancel(s->s, r->sched_id);
                end_req_locked(s, r, MLC_FINISH_NONE);
                continue;
            }
            s->live = p;
            s->cap_live = cap;
        }
        s->live[s->n_live++] = r;
    }
}

static void null_engine_loop(server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop_engine) {
        double now = now_s();
        take_queue_locked(s, now);
        double next = INFINITY;
        for (int i = 0; i < s->n_live; i++) {
            sreq *r = s->live[i];
            if (r->cancel) {
                end_req_locked(s, r, MLC_FINISH_CANCELLED);
                live_remove(s, i--);
                continue;
            }
            bool due = r->next_due <= now;
            if (due) {
                if (!push_token(r, (int32_t)r->n_toks, now)) {
                    r->failed = true;
                    snprintf(r->errmsg, sizeof r->errmsg, "out of memory");
                }
                r->next_due += s->o.itl_ms / 1e3;
                int32_t max = r->rp.max_tokens > 0 ? r->rp.max_tokens : 16;
                if (r->failed || (int32_t)r->n_toks >= max) {
                    if (r->logprobs) {
                        pthread_mutex_unlock(&s->mu);
                        compute_logprobs(s, r, r->n_toks);
                        pthread_mutex_lock(&s->mu);
                    }
                    end_req_locked(s, r, MLC_FINISH_LENGTH);
                    live_remove(s, i--);
                    continue;
                }
                pthread_cond_broadcast(&r->cv);
            }
            next = r->next_due < next ? r->next_due : next;
        }
        if (s->n_live)
            hist_add(&s->batch, s->n_live);
        if (s->q_head)
            continue;
        if (isinf(next)) {
            pthread_cond_wait(&s->engine_cv, &s->mu);
        } else if (next > now_s()) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wait = next - now_s();
            double t = (double)ts.tv_sec + ts.tv_nsec / 1e9 + wait;
            ts.tv_sec = (time_t)t;
            ts.tv_nsec = (long)((t - floor(t)) * 1e9);
            pthread_cond_timedwait(&s->engine_cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void real_engine_loop(server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop_engine) {
        take_queue_locked(s, now_s());
        for (int i = 0; i < s->n_live; i++)
            if (s->live[i]->cancel && !s->live[i]->cancel_sent) {
                mlc_sched_cancel(s->s, s->live[i]->sched_id);
                s->live[i]->cancel_sent = true;
            }
        if (mlc_sched_pending(s->s) == 0 && s->n_live == 0) {
            pthread_cond_wait(&s->engine_cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        mlc_err err;
        mlc_status st = mlc_sched_step(s->s, &err);
        double now = now_s();
        pthread_mutex_lock(&s->mu);
        if (st) {
            fprintf(stderr, "mlc-bench serve: engine: %s\n", err.msg);
            for (int i = 0; i < s->n_live; i++) {
                sreq *r = s->live[i];
                mlc_sched_cancel(s->s, r->sched_id);
                snprintf(r->errmsg, sizeof r->errmsg, "engine failure: %s", err.msg);
                r->failed = true;
                end_req_locked(s, r, MLC_FINISH_NONE);
            }
            s->n_live = 0;
            /* Deliver the cancellations so the slots are free. */
            pthread_mutex_unlock(&s->mu);
            mlc_sched_step(s->s, NULL);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        hist_add(&s->batch, mlc_sched_last_batch(s->s));
        int ne;
        const mlc_sched_event *ev = mlc_sched_events(s->s, &ne);
        for (int e = 0; e < ne; e++) {
            int i = 0;
            while (i < s->n_live && s->live[i]->sched_id != ev[e].id)
                i++;
            if (i == s->n_live)
                continue;
            sreq *r = s->live[i];
            if (ev[e].token >= 0 && !r->cancel && !push_token(r, ev[e].token, now)) {
                r->cancel = r->failed = true;
                snprintf(r->errmsg, sizeof r->errmsg, "out of memory");
                mlc_sched_cancel(s->s, r->sched_id);
                r->cancel_sent = true;
            }
            if (ev[e].finish != MLC_FINISH_NONE) {
                live_remove(s, i);
                if (r->logprobs) {
                    size_t n_gen = r->n_toks;
                    pthread_mutex_unlock(&s->mu);
                    compute_logprobs(s, r, n_gen);
                    pthread_mutex_lock(&s->mu);
                }
                end_req_locked(s, r, ev[e].finish);
            } else if (ev[e].token >= 0) {
                pthread_cond_broadcast(&r->cv);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void *engine_main(void *arg)
{
    server *s = arg;
    if (s->null_engine)
        null_engine_loop(s);
    else
        real_engine_loop(s);
    return NULL;
}

/* ---- text of tokens, stop strings ---- */

static void token_text(const server *s, int32_t id, mlc_strbuf *out)
{
    char buf[256];
    if (s->null_engine) {
        int n = snprintf(buf, sizeof buf, "tok%d ", (int)id);
        mlc_sb_put(out, buf, (size_t)n);
        return;
    }
    size_t n = mlc_token_to_piece(s->tok, id, buf, sizeof buf, false);
    mlc_sb_put(out, buf, n < sizeof buf ? n : sizeof buf);
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn)
{
    for (size_t i = 0; nn && i + nn <= hn; i++)
        if (!memcmp(h + i, n, nn))
            return h + i;
    return NULL;
}

/* Turns tokens [n_used, n_avail) into text; a stop string cuts it. Returns the number of
 * bytes of text safe to send (a possible stop-string prefix at the end is held back until
 * the request ends). Handler thread, lock not needed (tokens before n_avail are stable). */
static size_t advance_text(sreq *r, const int32_t *toks, size_t n_avail, bool done)
{
    server *s = r->srv;
    while (!r->stopped && r->n_used < n_avail) {
        size_t before = r->text.len;
        token_text(s, toks[r->n_used++], &r->text);
        for (int k = 0; k < r->n_stops; k++) {
            size_t sl = strlen(r->stops[k]);
            size_t from = before >= sl ? before - sl + 1 : 0;
            from = from < r->emitted ? r->emitted : from;
            const char *hit = find_bytes(r->text.p + from, r->text.len - from, r->stops[k], sl);
            if (hit) {
                r->text.len = (size_t)(hit - r->text.p);
                r->text.p[r->text.len] = 0;
                r->stopped = true;
                break;
            }
        }
    }
    if (done || r->stopped)
        return r->text.len;
    size_t hold = 0;
    for (int k = 0; k < r->n_stops; k++) {
        size_t sl = strlen(r->stops[k]);
        for (size_t m = sl - 1; m > hold; m--)
            if (m <= r->text.len && !memcmp(r->text.p + r->text.len - m, r->stops[k], m)) {
                hold = m;
                break;
            }
    }
    size_t safe = r->text.len - hold;
    return safe > r->emitted ? safe : r->emitted;
}

static const char *finish_reason(const sreq *r)
{
    if (r->stopped)
        return "stop";
    switch (r->finish) {
    case MLC_FINISH_LENGTH:
    case MLC_FINISH_CONTEXT:
        return "length";
    default:
        return "stop";
    }
}

/* ---- HTTP replies ---- */

static void count_status(server *s, unsigned code)
{
    int i = 0;
    while (i < N_CODES && status_codes[i] != (int)code)
        i++;
    pthread_mutex_lock(&s->mu);
    s->by_code[i]++;
    pthread_mutex_unlock(&s->mu);
}

static mhd_result reply(server *s, struct MHD_Connection *c, unsigned code, const char *ctype,
                        const char *body)
{
    count_status(s, code);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    mhd_result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static mhd_result reply_cjson(server *s, struct MHD_Connection *c, unsigned code, cJSON *j)
{
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt)
        return MHD_NO;
    mhd_result ret = reply(s, c, code, "application/json", txt);
    cJSON_free(txt);
    return ret;
}

static mhd_result reply_error(server *s, struct MHD_Connection *c, unsigned code,
                              const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static mhd_result reply_error(server *s, struct MHD_Connection *c, unsigned code,
                              const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = code == 401 ? "authentication_error"
                     : code == 404 ? "not_found_error"
                     : code == 429 ? "rate_limit_error"
                     : code >= 500 ? "server_error" : "invalid_request_error";
    const char *ecode = code == 401 ? "invalid_api_key"
                      : code == 404 ? (param ? "model_not_found" : "not_found")
                      : code == 413 ? "request_too_large"
                      : code == 429 ? "queue_full"
                      : code >= 500 ? "engine_error" : "invalid_parameter";
    cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", ecode);
    return reply_cjson(s, c, code, j);
}

/* ---- request parsing ---- */

static size_t count_words(const char *t)
{
    size_t n = 0;
    bool in = false;
    for (; *t; t++) {
        bool sp = *t == ' ' || *t == '\n' || *t == '\t' || *t == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n ? n : 1;
}

/* Tokenizes text into r->prompt. Returns an error message or NULL. */
static const char *tokenize_into(server *s, sreq *r, const char *text, char *msg, size_t cap)
{
    if (s->null_engine) {
        r->n_prompt = count_words(text);
        r->prompt = calloc(r->n_prompt, sizeof *r->prompt);
        return r->prompt ? NULL : "out of memory";
    }
    mlc_err err;
    if (mlc_tokenize(s->tok, text, strlen(text), true, true, &r->prompt, &r->n_prompt, &err)) {
        snprintf(msg, cap, "%s", err.msg);
        return msg;
    }
    return NULL;
}

static bool get_num(const cJSON *j, const char *k, double lo, double hi, double *out, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v))
        return false;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        *bad = true;
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool get_bool(const cJSON *j, const char *k, bool *out, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v))
        return false;
    if (!cJSON_IsBool(v)) {
        *bad = true;
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* Fills r from the JSON body. On error returns the status, with *param and msg set. */
static unsigned parse_body(server *s, sreq *r, const cJSON *j, const char **param, char *msg,
                           size_t cap)
{
#define BAD(p, ...) do { *param = (p); snprintf(msg, cap, __VA_ARGS__); return 400; } while (0)
    bool bad = false;
    double x = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (model && !cJSON_IsString(model))
        BAD("model", "model: expected a string");
    if (cJSON_IsString(model) && strcmp(model->valuestring, s->model_id) &&
        strcmp(model->valuestring, "default")) {
        *param = "model";
        snprintf(msg, cap, "model '%s' does not exist (this server has '%s')",
                 model->valuestring, s->model_id);
        return 404;
    }
    r->rp.sampling = mlc_sampler_default_params();
    r->rp.sampling.temperature = 1.0f;
    r->rp.sampling.top_k = 0;
    r->rp.sampling.top_p = 1.0f;
    r->rp.sampling.min_p = 0.0f;
    r->rp.max_tokens = r->chat ? -1 : 16;
    if (get_num(j, "temperature", 0, 2, &x, &bad))
        r->rp.sampling.temperature = (float)x;
    if (bad) BAD("temperature", "temperature: expected a number in [0, 2]");
    if (get_num(j, "top_p", 1e-9, 1, &x, &bad))
        r->rp.sampling.top_p = (float)x;
    if (bad) BAD("top_p", "top_p: expected a number in (0, 1]");
    if (get_num(j, "top_k", -1, 1 << 30, &x, &bad))
        r->rp.sampling.top_k = x < 0 ? 0 : (int32_t)x;
    if (bad || x != floor(x)) BAD("top_k", "top_k: expected a non-negative integer");
    if (get_num(j, "min_p", 0, 1, &x, &bad))
        r->rp.sampling.min_p = (float)x;
    if (bad) BAD("min_p", "min_p: expected a number in [0, 1]");
    if (get_num(j, "seed", -9.3e18, 1.8e19, &x, &bad))
        r->rp.sampling.seed = x < 0 ? (uint64_t)(int64_t)x : (uint64_t)x;
    if (bad) BAD("seed", "seed: expected an integer");
    const char *mt = r->chat && cJSON_GetObjectItemCaseSensitive(j, "max_completion_tokens")
                         ? "max_completion_tokens" : "max_tokens";
    x = 0;
    if (get_num(j, mt, 0, 1 << 30, &x, &bad))
        r->rp.max_tokens = (int32_t)x;
    if (bad || x != floor(x)) BAD(mt, "%s: expected a non-negative integer", mt);
    double n = 1;
    if (get_num(j, "n", 1, 1, &n, &bad), bad) BAD("n", "n: only 1 is supported");
    get_bool(j, "ignore_eos", &r->rp.ignore_eos, &bad);
    if (bad) BAD("ignore_eos", "ignore_eos: expected a boolean");
    get_bool(j, "stream", &r->stream, &bad);
    if (bad) BAD("stream", "stream: expected a boolean");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) BAD("stream_options", "stream_options: expected an object");
        get_bool(so, "include_usage", &r->include_usage, &bad);
        if (bad) BAD("stream_options.include_usage", "stream_options.include_usage: expected a boolean");
    }
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(j, "stop");
    if (cJSON_IsString(stop) || cJSON_IsArray(stop)) {
        const cJSON *e;
        bool one = cJSON_IsString(stop);
        int k = 0;
        for (e = one ? stop : stop->child; e; e = one ? NULL : e->next, k++) {
            if (!cJSON_IsString(e) || !e->valuestring[0] || k >= MAX_STOPS)
                BAD("stop", "stop: expected up to %d non-empty strings", MAX_STOPS);
            if (!(r->stops[r->n_stops] = strdup(e->valuestring)))
                BAD("stop", "out of memory");
            r->n_stops++;
        }
    } else if (stop && !cJSON_IsNull(stop)) {
        BAD("stop", "stop: expected a string or an array of strings");
    }
    const cJSON *lpv = cJSON_GetObjectItemCaseSensitive(j, "logprobs");
    if (lpv && !cJSON_IsNull(lpv)) {
        if (r->chat) {
            if (!cJSON_IsBool(lpv)) BAD("logprobs", "logprobs: expected a boolean");
            r->logprobs = cJSON_IsTrue(lpv);
        } else {
            if (!cJSON_IsNumber(lpv) || lpv->valuedouble < 0 || lpv->valuedouble > 20)
                BAD("logprobs", "logprobs: expected an integer in [0, 20]");
            r->logprobs = true;
        }
    }
    if (r->logprobs && r->stream)
        BAD("logprobs", "logprobs: not supported with stream (computed when the sequence ends)");
    if (!r->chat) {
        get_bool(j, "echo", &r->echo, &bad);
        if (bad) BAD("echo", "echo: expected a boolean");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child))
            p = p->child;
        if (cJSON_IsString(p)) {
            if (!p->valuestring[0]) BAD("prompt", "prompt: empty");
            const char *e = tokenize_into(s, r, p->valuestring, msg, cap);
            if (e) BAD("prompt", "prompt: %s", e == msg ? msg : e);
            if (r->echo && !(r->echo_text = strdup(p->valuestring)))
                BAD("prompt", "out of memory");
        } else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0) {
            int np = cJSON_GetArraySize(p);
            int nv = s->null_engine ? INT32_MAX : mlc_tokenizer_n_vocab(s->tok);
            r->prompt = malloc((size_t)np * sizeof *r->prompt);
            if (!r->prompt) BAD("prompt", "out of memory");
            const cJSON *e;
            cJSON_ArrayForEach(e, p) {
                if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= nv ||
                    e->valuedouble != floor(e->valuedouble))
                    BAD("prompt", "prompt: token ids must be integers in [0, %d)", nv);
                r->prompt[r->n_prompt++] = (int32_t)e->valuedouble;
            }
        } else {
            BAD("prompt", "prompt: expected a non-empty string or array of token ids");
        }
    } else {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
            BAD("messages", "messages: expected a non-empty array");
        int nm = cJSON_GetArraySize(msgs);
        mlc_chat_msg *cm = calloc((size_t)nm, sizeof *cm);
        mlc_strbuf parts[64] = {{0}};
        if (!cm) BAD("messages", "out of memory");
        const cJSON *m;
        int i = 0;
        const char *err = NULL;
        cJSON_ArrayForEach(m, msgs) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsString(role)) {
                err = "role";
                break;
            }
            cm[i].role = role->valuestring;
            if (cJSON_IsString(content)) {
                cm[i].content = content->valuestring;
            } else if (cJSON_IsArray(content) && i < 64) {
                const cJSON *part;
                mlc_sb_puts(&parts[i], "");
                cJSON_ArrayForEach(part, content) {
                    const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                    if (cJSON_IsString(t))
                        mlc_sb_puts(&parts[i], t->valuestring);
                }
                cm[i].content = parts[i].p ? parts[i].p : "";
            } else if (!content || cJSON_IsNull(content)) {
                cm[i].content = "";
            } else {
                err = "content";
                break;
            }
            i++;
        }
        char *text = NULL;
        mlc_err e2;
        if (!err && mlc_chat_render(s->tmpl, cm, (size_t)nm, &text, &e2))
            err = "render";
        free(cm);
        for (int k = 0; k < 64; k++)
            free(parts[k].p);
        if (err) {
            free(text);
            BAD("messages", "messages[%d].%s: expected a string", i, err);
        }
        const char *e = tokenize_into(s, r, text, msg, cap);
        free(text);
        if (e) BAD("messages", "messages: %s", e == msg ? msg : e);
    }
    if (!s->null_engine) {
        mlc_err err;
        if (mlc_sampler_params_check(&r->rp.sampling, &err))
            BAD(NULL, "%s", err.msg);
        if (r->n_prompt + 1 > (size_t)mlc_context_n_ctx(s->c))
            BAD(r->chat ? "messages" : "prompt", "prompt: %zu tokens do not fit the context of %d",
                r->n_prompt, mlc_context_n_ctx(s->c));
    }
    return 0;
#undef BAD
}

/* ---- response bodies ---- */

static void add_common(server *s, sreq *r, cJSON *j, const char *object)
{
    cJSON_AddStringToObject(j, "id", r->id);
    cJSON_AddStringToObject(j, "object", object);
    cJSON_AddNumberToObject(j, "created", (double)r->created);
    cJSON_AddStringToObject(j, "model", s->model_id);
}

static cJSON *usage_json(const sreq *r)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)r->n_used);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(r->n_prompt + r->n_used));
    return u;
}

static void piece_of(const server *s, int32_t id, char *buf, size_t cap)
{
    mlc_strbuf b = {0};
    token_text(s, id, &b);
    snprintf(buf, cap, "%s", b.p ? b.p : "");
    free(b.p);
}

static cJSON *logprobs_json(server *s, sreq *r)
{
    cJSON *lp = cJSON_CreateObject();
    char piece[300];
    if (r->chat) {
        cJSON *content = cJSON_AddArrayToObject(lp, "content");
        for (size_t i = 0; i < r->n_used; i++) {
            cJSON *t = cJSON_CreateObject();
            piece_of(s, r->toks[i], piece, sizeof piece);
            cJSON_AddStringToObject(t, "token", piece);
            cJSON_AddNumberToObject(t, "logprob", r->lp ? r->lp[r->n_prompt + i] : 0);
            cJSON_AddArrayToObject(t, "top_logprobs");
            cJSON_AddItemToArray(content, t);
        }
        return lp;
    }
    cJSON *toks = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *vals = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *offs = cJSON_AddArrayToObject(lp, "text_offset");
    size_t from = r->echo ? 0 : r->n_prompt, off = 0;
    for (size_t i = from; i < r->n_prompt + r->n_used; i++) {
        int32_t id = i < r->n_prompt ? r->prompt[i] : r->toks[i - r->n_prompt];
        piece_of(s, id, piece, sizeof piece);
        cJSON_AddItemToArray(toks, cJSON_CreateString(piece));
        cJSON_AddItemToArray(vals, i == 0 ? cJSON_CreateNull() : cJSON_CreateNumber(r->lp ? r->lp[i] : 0));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += strlen(piece);
    }
    cJSON_AddNullToObject(lp, "top_logprobs");
    return lp;
}

static cJSON *full_response(server *s, sreq *r)
{
    cJSON *j = cJSON_CreateObject();
    add_common(s, r, j, r->chat ? "chat.completion" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(j, "choices"), *c0 = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c0);
    cJSON_AddNumberToObject(c0, "index", 0);
    const char *text = r->text.p ? r->text.p : "";
    if (r->chat) {
        cJSON *m = cJSON_AddObjectToObject(c0, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
    } else {
        mlc_strbuf t = {0};
        mlc_sb_puts(&t, "");
        if (r->echo && r->echo_text)
            mlc_sb_puts(&t, r->echo_text);
        else if (r->echo)
            for (size_t i = 0; i < r->n_prompt; i++)
                token_text(s, r->prompt[i], &t);
        mlc_sb_puts(&t, text);
        cJSON_AddStringToObject(c0, "text", t.p ? t.p : "");
        free(t.p);
    }
    if (r->logprobs)
        cJSON_AddItemToObject(c0, "logprobs", logprobs_json(s, r));
    else
        cJSON_AddNullToObject(c0, "logprobs");
    cJSON_AddStringToObject(c0, "finish_reason", finish_reason(r));
    /* Extension: the generated token ids (for checking against other engines). */
    cJSON *ids = cJSON_AddArrayToObject(c0, "token_ids");
    for (size_t i = 0; i < r->n_used; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(r->toks[i]));
    cJSON_AddItemToObject(j, "usage", usage_json(r));
    return j;
}

static void out_chunk(server *s, sreq *r, const char *text, size_t len, const char *finish)
{
    cJSON *j = cJSON_CreateObject();
    add_common(s, r, j, r->chat ? "chat.completion.chunk" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(j, "choices"), *c0 = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c0);
    cJSON_AddNumberToObject(c0, "index", 0);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = 0;
    }
    if (r->chat) {
        cJSON *d = cJSON_AddObjectToObject(c0, "delta");
        if (!r->role_sent) {
            cJSON_AddStringToObject(d, "role", "assistant");
            r->role_sent = true;
        }
        if (len || !finish)
            cJSON_AddStringToObject(d, "content", t ? t : "");
    } else {
        cJSON_AddStringToObject(c0, "text", t ? t : "");
        cJSON_AddNullToObject(c0, "logprobs");
    }
    free(t);
    if (finish)
        cJSON_AddStringToObject(c0, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c0, "finish_reason");
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (txt) {
        mlc_sb_puts(&r->out, "data: ");
        mlc_sb_puts(&r->out, txt);
        mlc_sb_puts(&r->out, "\n\n");
        cJSON_free(txt);
    } else {
        r->out.oom = true;
    }
}

static void out_usage(server *s, sreq *r)
{
    cJSON *j = cJSON_CreateObject();
    add_common(s, r, j, r->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(j, "choices");
    cJSON_AddItemToObject(j, "usage", usage_json(r));
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (txt) {
        mlc_sb_puts(&r->out, "data: ");
        mlc_sb_puts(&r->out, txt);
        mlc_sb_puts(&r->out, "\n\n");
        cJSON_free(txt);
    }
}

/* Waits for progress and returns whether the request has ended (done or stopped). Copies the
 * new tokens to r->htoks under the lock (the engine thread may reallocate r->toks). */
static bool wait_progress(sreq *r, size_t *n_avail)
{
    server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    while (!r->done && r->n_toks == r->n_used)
        pthread_cond_wait(&r->cv, &s->mu);
    if (r->n_toks > r->cap_htoks) {
        int32_t *p = realloc(r->htoks, r->cap_toks * sizeof *p);
        if (p) {
            r->htoks = p;
            r->cap_htoks = r->cap_toks;
        }
    }
    size_t n = r->n_toks < r->cap_htoks ? r->n_toks : r->cap_htoks;
    if (n > r->n_htoks)
        memcpy(r->htoks + r->n_htoks, r->toks + r->n_htoks, (n - r->n_htoks) * sizeof *r->htoks);
    r->n_htoks = n;
    *n_avail = n;
    bool done = r->done && n == r->n_toks;
    pthread_mutex_unlock(&s->mu);
    return done;
}

static void cancel_req(sreq *r)
{
    server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    if (!r->done && !r->cancel) {
        r->cancel = true;
        pthread_cond_signal(&s->engine_cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Waits until the engine has ended the request (after a stop string: the cancellation). */
static void wait_done(sreq *r)
{
    server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void note_tokens_in(server *s, sreq *r)
{
    pthread_mutex_lock(&s->mu);
    s->tokens_in += (int64_t)r->n_prompt;
    pthread_mutex_unlock(&s->mu);
}

static bool produce(sreq *r)
{
    server *s = r->srv;
    if (r->phase == 1) {
        r->phase = 2;
        return true;
    }
    size_t n_avail;
    bool done = wait_progress(r, &n_avail);
    if (done && r->failed) {
        /* Headers are out: end the stream with an error event. */
        cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
        cJSON_AddStringToObject(e, "message", r->errmsg);
        cJSON_AddStringToObject(e, "type", "server_error");
        char *txt = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        mlc_sb_puts(&r->out, "data: ");
        mlc_sb_puts(&r->out, txt ? txt : "{}");
        mlc_sb_puts(&r->out, "\n\ndata: [DONE]\n\n");
        cJSON_free(txt);
        r->phase = 1;
        return !r->out.oom;
    }
    size_t safe = advance_text(r, r->htoks, n_avail, done);
    if (r->stopped && !done) {
        cancel_req(r);
        wait_done(r);
        done = true;
    }
    if (safe > r->emitted) {
        out_chunk(s, r, r->text.p + r->emitted, safe - r->emitted, NULL);
        r->emitted = safe;
    }
    if (done) {
        out_chunk(s, r, "", 0, finish_reason(r));
        if (r->include_usage)
            out_usage(s, r);
        mlc_sb_puts(&r->out, "data: [DONE]\n\n");
        r->phase = 1;
    }
    return !r->out.oom;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sreq *r = cls;
    while (r->out_pos == r->out.len) {
        if (r->phase == 2)
            return MHD_CONTENT_READER_END_OF_STREAM;
        r->out.len = r->out_pos = 0;
        if (!produce(r))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = r->out.len - r->out_pos;
    n = n > max ? max : n;
    memcpy(buf, r->out.p + r->out_pos, n);
    r->out_pos += n;
    return (ssize_t)n;
}

/* ---- endpoints ---- */

static mhd_result do_metrics(server *s, struct MHD_Connection *c)
{
    mlc_strbuf b = {0};
    char line[256];
    pthread_mutex_lock(&s->mu);
    mlc_sb_puts(&b, "# HELP mlc_requests_total HTTP requests answered, by status.\n"
               "# TYPE mlc_requests_total counter\n");
    for (int i = 0; i < N_CODES; i++) {
        snprintf(line, sizeof line, "mlc_requests_total{status=\"%d\"} %lld\n", status_codes[i],
                 (long long)s->by_code[i]);
        mlc_sb_puts(&b, line);
    }
    int waiting = s->in_engine - s->o.parallel;
    snprintf(line, sizeof line,
             "# TYPE mlc_requests_in_flight gauge\nmlc_requests_in_flight %d\n"
             "# TYPE mlc_queue_depth gauge\nmlc_queue_depth %d\n"
             "# TYPE mlc_prompt_tokens_total counter\nmlc_prompt_tokens_total %lld\n"
             "# TYPE mlc_generation_tokens_total counter\nmlc_generation_tokens_total %lld\n",
             s->in_engine, waiting > 0 ? waiting : 0, (long long)s->tokens_in,
             (long long)s->tokens_out);
    mlc_sb_puts(&b, line);
    const hist *hs[3] = {&s->ttft, &s->itl, &s->batch};
    const char *names[3] = {"mlc_time_to_first_token_seconds", "mlc_inter_token_latency_seconds",
                            "mlc_batch_size_tokens"};
    for (int k = 0; k < 3; k++) {
        snprintf(line, sizeof line, "# TYPE %s histogram\n", names[k]);
        mlc_sb_puts(&b, line);
        for (int i = 0; i < hs[k]->n; i++) {
            snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %lld\n", names[k], hs[k]->le[i],
                     (long long)hs[k]->count[i]);
            mlc_sb_puts(&b, line);
        }
        snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %lld\n%s_sum %.9g\n%s_count %lld\n",
                 names[k], (long long)hs[k]->total, names[k], hs[k]->sum, names[k],
                 (long long)hs[k]->total);
        mlc_sb_puts(&b, line);
    }
    pthread_mutex_unlock(&s->mu);
    if (b.oom || !b.p) {
        free(b.p);
        return MHD_NO;
    }
    mhd_result ret = reply(s, c, 200, "text/plain; version=0.0.4", b.p);
    free(b.p);
    return ret;
}

static mhd_result do_generate(server *s, struct MHD_Connection *c, conn *q, bool chat)
{
    cJSON *j = q->body ? cJSON_ParseWithLength(q->body, q->len) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return reply_error(s, c, 400, NULL, "request body is not a valid JSON object");
    }
    sreq *r = calloc(1, sizeof *r);
    if (!r) {
        cJSON_Delete(j);
        return MHD_NO;
    }
    r->srv = s;
    r->refs = 1;
    r->chat = chat;
    pthread_cond_init(&r->cv, NULL);
    const char *param = NULL;
    char msg[600];
    unsigned code = parse_body(s, r, j, &param, msg, sizeof msg);
    cJSON_Delete(j);
    if (code) {
        pthread_mutex_lock(&s->mu);
        req_unref_locked(r);
        pthread_mutex_unlock(&s->mu);
        return reply_error(s, c, code, param, "%s", msg);
    }
    pthread_mutex_lock(&s->mu);
    if (s->in_engine >= s->o.parallel + s->o.max_queue) {
        req_unref_locked(r);
        pthread_mutex_unlock(&s->mu);
        return reply_error(s, c, 429, NULL, "server busy: %d requests queued (--max-queue)",
                           s->o.max_queue);
    }
    snprintf(r->id, sizeof r->id, "%s-%lld", chat ? "chatcmpl" : "cmpl", (long long)s->next_id++);
    r->created = (long)time(NULL);
    r->t_submit = now_s();
    r->refs = 2;
    s->in_engine++;
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    pthread_cond_signal(&s->engine_cv);
    pthread_mutex_unlock(&s->mu);
    note_tokens_in(s, r);
    q->r = r;

    if (r->stream) {
        if (r->echo) {
            mlc_strbuf t = {0};
            if (r->echo_text)
                mlc_sb_puts(&t, r->echo_text);
            else
                for (size_t i = 0; i < r->n_prompt; i++)
                    token_text(s, r->prompt[i], &t);
            if (t.len)
                out_chunk(s, r, t.p, t.len, NULL);
            free(t.p);
        }
        count_status(s, 200);
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, r, NULL);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        mhd_result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    for (;;) {
        size_t n_avail;
        bool done = wait_progress(r, &n_avail);
        advance_text(r, r->htoks, n_avail, done);
        if (r->stopped && !done) {
            cancel_req(r);
            wait_done(r);
        }
        if (done || r->stopped)
            break;
    }
    if (r->failed)
        return reply_error(s, c, 500, NULL, "%s", r->errmsg);
    return reply_cjson(s, c, 200, full_response(s, r));
}

static bool authorized(server *s, struct MHD_Connection *c)
{
    if (!s->api_key)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, s->api_key);
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    conn *q = *con_cls;
    if (!q) {
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *con_cls = q;
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > (size_t)s->o.max_body) {
            q->too_big = true;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *nb = realloc(q->body, cap);
            if (!nb)
                return MHD_NO;
            q->body = nb;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        q->body[q->len] = 0;
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/health"))
        return reply(s, c, 200, "application/json", "{\"status\":\"ok\"}");
    if (!strcmp(url, "/metrics"))
        return do_metrics(s, c);
    bool models = !strcmp(url, "/v1/models"), cmpl = !strcmp(url, "/v1/completions"),
         chat = !strcmp(url, "/v1/chat/completions");
    if (!models && !cmpl && !chat)
        return reply_error(s, c, 404, NULL, "no such path: %s", url);
    if (!authorized(s, c))
        return reply_error(s, c, 401, NULL, "invalid or missing API key (Authorization: Bearer)");
    if (models) {
        if (!get)
            return reply_error(s, c, 405, NULL, "%s: use GET", url);
        cJSON *j = cJSON_CreateObject(), *d;
        cJSON_AddStringToObject(j, "object", "list");
        d = cJSON_AddArrayToObject(j, "data");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", s->model_id);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "mlc-bench");
        cJSON_AddItemToArray(d, m);
        return reply_cjson(s, c, 200, j);
    }
    if (!post)
        return reply_error(s, c, 405, NULL, "%s: use POST", url);
    if (q->too_big)
        return reply_error(s, c, 413, NULL, "request body larger than %d bytes (--max-body)",
                           s->o.max_body);
    return do_generate(s, c, q, chat);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    server *s = cls;
    conn *q = *con_cls;
    if (!q)
        return;
    pthread_mutex_lock(&s->mu);
    if (q->r) {
        if (!q->r->done && !q->r->cancel && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            q->r->cancel = true;
            pthread_cond_signal(&s->engine_cv);
        }
        req_unref_locked(q->r);
    }
    s->in_flight--;
    pthread_cond_broadcast(&s->drain_cv);
    pthread_mutex_unlock(&s->mu);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

/* ---- command ---- */

static int parse_opts(int argc, char **argv, serve_opts *o)
{
    const char *c = "serve";
    *o = (serve_opts){.backend = "cpu", .host = "127.0.0.1", .port = 8000, .parallel = 8,
                      .max_queue = 256, .max_body = 1 << 20, .engine = "ref", .ttft_ms = 0,
                      .itl_ms = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(serve_usage, stdout);
            return 0;
        }
        const char *v = mlc_cli_value(c, argc, argv, &i);
        if (!v)
            return 2;
        bool ok = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--api-key-env")) o->api_key_env = v;
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "--engine")) {
            o->engine = v;
            ok = !strcmp(v, "null") || !strcmp(v, "ref");
            if (!ok) fprintf(stderr, "mlc-bench serve: --engine: '%s' (ref, null)\n", v);
        }
        else if (!strcmp(a, "--port")) ok = mlc_cli_int(c, a, v, 0, 65535, &o->port);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = mlc_cli_int(c, a, v, 1, 1024, &o->threads);
        else if (!strcmp(a, "--ctx")) ok = mlc_cli_int(c, a, v, 16, 1 << 24, &o->ctx);
        else if (!strcmp(a, "--parallel")) ok = mlc_cli_int(c, a, v, 1, 4096, &o->parallel);
        else if (!strcmp(a, "--max-queue")) ok = mlc_cli_int(c, a, v, 0, 1 << 20, &o->max_queue);
        else if (!strcmp(a, "--max-body")) ok = mlc_cli_int(c, a, v, 64, 1 << 30, &o->max_body);
        else if (!strcmp(a, "--ttft-ms")) ok = mlc_cli_float(c, a, v, 0, 1e6, &o->ttft_ms);
        else if (!strcmp(a, "--itl-ms")) ok = mlc_cli_float(c, a, v, 0, 1e6, &o->itl_ms);
        else {
            fprintf(stderr, "mlc-bench serve: unknown option '%s'\n%s", a, serve_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    bool null = !strcmp(o->engine, "null");
    if (!null && !o->model) {
        fprintf(stderr, "mlc-bench serve: -m MODEL.gguf (or --engine null) is required\n%s", serve_usage);
        return 2;
    }
    return -1;
}

static int load_engine(server *s)
{
    const serve_opts *o = &s->o;
    mlc_err err;
    if (s->null_engine) {
        snprintf(s->model_id, sizeof s->model_id, "null");
        return 0;
    }
    const char *base = strrchr(o->model, '/');
    snprintf(s->model_id, sizeof s->model_id, "%s", base ? base + 1 : o->model);
    mlc_model_params mp = {.backend = o->backend, .n_threads = o->threads};
    if (mlc_model_load(o->model, &mp, &s->m, &err)) {
        fprintf(stderr, "mlc-bench serve: %s\n", err.msg);
        return 1;
    }
    s->tok = mlc_model_tokenizer(s->m);
    int n_ctx = o->ctx ? o->ctx : mlc_model_get_info(s->m)->n_ctx_train;
    n_ctx = n_ctx > 8192 && !o->ctx ? 8192 : n_ctx;
    mlc_context_params cp = {.n_ctx = n_ctx, .n_slots = o->parallel, .n_batch = 512};
    if (mlc_context_new(s->m, &cp, &s->c, &err) || mlc_sched_new(s->c, NULL, &s->s, &err)) {
        fprintf(stderr, "mlc-bench serve: %s\n", err.msg);
        return 1;
    }
    if (o->chat_template) {
        if (!mlc_chat_template_from_name(o->chat_template, &s->tmpl)) {
            fprintf(stderr, "mlc-bench serve: --chat-template: '%s' (chatml, llama2, llama3, "
                            "mistral, gemma)\n", o->chat_template);
            return 2;
        }
    } else {
        mlc_gguf *g = NULL;
        mlc_gguf_str str = {0};
        bool found = false;
        if (!mlc_gguf_open(o->model, &g, NULL) &&
            !mlc_gguf_get_str(g, "tokenizer.chat_template", &str, NULL))
            found = mlc_chat_template_detect(str.ptr, (size_t)str.len, &s->tmpl);
        mlc_gguf_close(g);
        if (!found)
            fprintf(stderr, "mlc-bench serve: warning: %s: no recognised tokenizer.chat_template; "
                            "using chatml\n", o->model);
    }
    return 0;
}

static void free_server(server *s)
{
    mlc_sched_free(s->s);
    mlc_context_free(s->lpctx);
    mlc_context_free(s->c);
    mlc_model_free(s->m);
    free(s->live);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->engine_cv);
    pthread_cond_destroy(&s->drain_cv);
}

int mlc_cmd_serve(int argc, char **argv)
{
    server s = {0};
    int rc = parse_opts(argc, argv, &s.o);
    if (rc >= 0)
        return rc;
    s.null_engine = !strcmp(s.o.engine, "null");
    s.ttft = (hist){.le = ttft_buckets, .n = (int)(sizeof ttft_buckets / sizeof ttft_buckets[0])};
    s.itl = (hist){.le = itl_buckets, .n = (int)(sizeof itl_buckets / sizeof itl_buckets[0])};
    s.batch = (hist){.le = batch_buckets, .n = (int)(sizeof batch_buckets / sizeof batch_buckets[0])};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.engine_cv, NULL);
    pthread_cond_init(&s.drain_cv, NULL);
    if (s.o.api_key_env) {
        s.api_key = getenv(s.o.api_key_env);
        if (!s.api_key || !*s.api_key) {
            fprintf(stderr, "mlc-bench serve: --api-key-env: $%s is not set\n", s.o.api_key_env);
            free_server(&s);
            return 2;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.o.port)};
    if (inet_pton(AF_INET, s.o.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "mlc-bench serve: --host: '%s' is not an IPv4 address\n", s.o.host);
        free_server(&s);
        return 2;
    }
    if ((rc = load_engine(&s))) {
        free_server(&s);
        return rc;
    }
    /* Signals are taken by sigwait in this thread: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&s.engine, NULL, engine_main, &s)) {
        fprintf(stderr, "mlc-bench serve: cannot start the engine thread\n");
        free_server(&s);
        return 1;
    }
    s.d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC,
        0, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)8192, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)600, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_END);
    rc = 0;
    if (!s.d) {
        fprintf(stderr, "mlc-bench serve: cannot listen on %s:%d: %s\n", s.o.host, s.o.port,
                strerror(errno));
        rc = 1;
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT);
        printf("mlc-bench serve: listening on http://%s:%d (model %s)\n", s.o.host,
               info ? (int)info->port : s.o.port, s.model_id);
        fflush(stdout);
        int sig = 0;
        sigwait(&set, &sig);
        fprintf(stderr, "mlc-bench serve: signal %d: draining\n", sig);
        MHD_socket ls = MHD_quiesce_daemon(s.d);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
        pthread_mutex_lock(&s.mu);
        while (s.in_flight > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&s.drain_cv, &s.mu, &ts);
        }
        pthread_mutex_unlock(&s.mu);
        MHD_stop_daemon(s.d);
    }
    pthread_mutex_lock(&s.mu);
    s.stop_engine = true;
    pthread_cond_signal(&s.engine_cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(s.engine, NULL);
    /* Requests left on the queue or live (only after a failed start) are dropped. */
    free_server(&s);
    return rc;
}
