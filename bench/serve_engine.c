/* serve_engine.c: see serve_engine.h. */
#include "serve_engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_s(void) { return mlc_cli_now(); }

mlc_serve_req *mlc_serve_req_new(mlc_server *s, bool chat)
{
    mlc_serve_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->refs = 1;
    r->chat = chat;
    pthread_cond_init(&r->cv, NULL);
    return r;
}

void mlc_serve_req_unref_locked(mlc_serve_req *r)
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

bool mlc_serve_submit(mlc_server *s, mlc_serve_req *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->in_engine >= s->o.parallel + s->o.max_queue) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    snprintf(r->id, sizeof r->id, "%s-%lld", r->chat ? "chatcmpl" : "cmpl",
             (long long)s->next_id++);
    r->created = (long)time(NULL);
    r->t_submit = now_s();
    r->refs = 2;
    s->in_engine++;
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    mlc_serve_metrics_add_tokens(&s->metrics, (int64_t)r->n_prompt, 0);
    pthread_cond_signal(&s->engine_cv);
    pthread_mutex_unlock(&s->mu);
    return true;
}

/* ---- engine thread ---- */

static bool push_token(mlc_serve_req *r, int32_t t, double now)
{
    if (r->n_toks == r->cap_toks) {
        size_t cap = r->cap_toks ? r->cap_toks * 2 : 64;
        int32_t *p = realloc(r->toks, cap * sizeof *p);
        if (!p)
            return false;
        r->toks = p;
        r->cap_toks = cap;
    }
    mlc_server *s = r->srv;
    if (r->n_toks == 0)
        mlc_serve_hist_add(&s->metrics.ttft, now - r->t_submit, 1);
    else
        mlc_serve_hist_add(&s->metrics.itl, now - r->t_last, 1);
    r->t_last = now;
    r->toks[r->n_toks++] = t;
    mlc_serve_metrics_add_tokens(&s->metrics, 0, 1);
    return true;
}

/* Log-probabilities of every token after the first of prompt + generated, on the
 * dedicated context (engine thread, lock not held: r's tokens do not change once done). */
static void compute_logprobs(mlc_server *s, mlc_serve_req *r, size_t n_gen)
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

static void end_req_locked(mlc_server *s, mlc_serve_req *r, mlc_finish f)
{
    r->finish = f;
    r->done = true;
    s->in_engine--;
    pthread_cond_broadcast(&r->cv);
    mlc_serve_req_unref_locked(r);
}

static void live_remove(mlc_server *s, int i)
{
    s->live[i] = s->live[--s->n_live];
}

/* Moves queued requests to the live list (submitting them to the scheduler). */
static void take_queue_locked(mlc_server *s, double now)
{
    while (s->q_head) {
        mlc_serve_req *r = s->q_head;
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
            mlc_serve_req **p = realloc(s->live, (size_t)cap * sizeof *p);
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

static void null_engine_loop(mlc_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop_engine) {
        double now = now_s();
        take_queue_locked(s, now);
        double next = INFINITY;
        for (int i = 0; i < s->n_live; i++) {
            mlc_serve_req *r = s->live[i];
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
            mlc_serve_hist_add(&s->metrics.batch, s->n_live, 1);
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

static void real_engine_loop(mlc_server *s)
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
                mlc_serve_req *r = s->live[i];
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
        mlc_serve_hist_add(&s->metrics.batch, mlc_sched_last_batch(s->s), 1);
        int ne;
        const mlc_sched_event *ev = mlc_sched_events(s->s, &ne);
        for (int e = 0; e < ne; e++) {
            int i = 0;
            while (i < s->n_live && s->live[i]->sched_id != ev[e].id)
                i++;
            if (i == s->n_live)
                continue;
            mlc_serve_req *r = s->live[i];
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

void *mlc_serve_engine_main(void *arg)
{
    mlc_server *s = arg;
    if (s->null_engine)
        null_engine_loop(s);
    else
        real_engine_loop(s);
    return NULL;
}

/* ---- handler side ---- */

bool mlc_serve_wait_progress(mlc_serve_req *r, size_t *n_avail)
{
    mlc_server *s = r->srv;
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

void mlc_serve_cancel(mlc_serve_req *r)
{
    mlc_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    if (!r->done && !r->cancel) {
        r->cancel = true;
        pthread_cond_signal(&s->engine_cv);
    }
    pthread_mutex_unlock(&s->mu);
}

void mlc_serve_wait_done(mlc_serve_req *r)
{
    mlc_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void mlc_serve_token_text(const mlc_server *s, int32_t id, mlc_strbuf *out)
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
