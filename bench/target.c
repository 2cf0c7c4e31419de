/* target.c: the local engine and endpoint targets of `mlc-bench run` (target.h). */
#include "target.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "client.h"
#include "mlc/gguf.h"
#include "mlc/sched.h"
#include "mlc/tokenizer.h"

#define DEFAULT_TIMEOUT_S 600.0

/* ---------------------------------------------------------------- local engine */

/* The scheduler stepped in the caller's thread, timed like HTTP would be. */

typedef struct local_target {
    mlc_target base;
    mlc_model *m;
    mlc_context *c;
    mlc_sched *s;
    mlc_run_req **by_id;   /* scheduler id -> request */
    int64_t cap_ids;
    float temperature;
    uint64_t seed;
    bool ignore_eos;
} local_target;

/* The prompt as token ids: ids as given, text tokenized, chat messages joined as text
 * (the local mlc_target has no chat template; the engine sees the same tokens every run). */
static mlc_status prompt_ids(const mlc_tokenizer *tok, const mlc_prompt *p, int32_t **ids,
                             size_t *n, mlc_err *err)
{
    if (p->ids) {
        *ids = malloc((size_t)p->n_ids * sizeof **ids);
        if (!*ids)
            return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        memcpy(*ids, p->ids, (size_t)p->n_ids * sizeof **ids);
        *n = (size_t)p->n_ids;
        return MLC_OK;
    }
    if (p->text)
        return mlc_tokenize(tok, p->text, strlen(p->text), true, false, ids, n, err);
    cJSON *msgs = cJSON_Parse(p->messages_json ? p->messages_json : "[]");
    mlc_strbuf buf = {0};
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *content = cJSON_GetObjectItem(m, "content");
        mlc_sb_puts(&buf, cJSON_IsString(content) ? content->valuestring : "");
        mlc_sb_put(&buf, "\n", 1);
    }
    cJSON_Delete(msgs);
    mlc_status s = buf.oom ? mlc_err_set(err, MLC_ERR_NOMEM, "out of memory")
                           : mlc_tokenize(tok, buf.p ? buf.p : "", buf.len, true, false, ids, n, err);
    free(buf.p);
    return s;
}

static mlc_status local_submit(mlc_target *t, mlc_run_req *r, int32_t max_tokens, mlc_err *err)
{
    local_target *lt = (local_target *)t;
    int32_t *ids = NULL;
    size_t n = 0;
    mlc_status s = prompt_ids(mlc_model_tokenizer(lt->m), r->prompt, &ids, &n, err);
    mlc_request_params rp = {.sampling = mlc_sampler_default_params(), .max_tokens = max_tokens,
                             .ignore_eos = lt->ignore_eos};
    rp.sampling.temperature = lt->temperature;
    rp.sampling.seed = lt->seed + (uint64_t)r->idx;
    int64_t id = -1;
    if (!s) {
        /* Prompts that cannot fit are cut from the front, as a server's truncation would,
         * so the request still measures; the count actually used is recorded. */
        long room = (long)mlc_context_n_ctx(lt->c) - (max_tokens > 0 ? max_tokens : 1) - 1;
        size_t limit = room > 16 ? (size_t)room : 16; /* an output longer than the context is cut by it */
        size_t skip = n > limit ? n - limit : 0;
        r->t.input_tokens = (int64_t)(n - skip);
        s = mlc_sched_submit(lt->s, ids + skip, n - skip, &rp, &id, err);
    }
    free(ids);
    if (s)
        return s;
    if (id >= lt->cap_ids) {
        int64_t cap = (id + 1) * 2;
        mlc_run_req **p = realloc(lt->by_id, (size_t)cap * sizeof *p);
        if (!p)
            return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        lt->by_id = p;
        lt->cap_ids = cap;
    }
    lt->by_id[id] = r;
    t->ev.sent(r, mlc_client_now());
    return MLC_OK;
}

static int local_poll(mlc_target *t, double max_wait_s)
{
    local_target *lt = (local_target *)t;
    if (mlc_sched_pending(lt->s) == 0) {
        if (max_wait_s > 0) {
            struct timespec ts = {(time_t)max_wait_s, (long)((max_wait_s - floor(max_wait_s)) * 1e9)};
            nanosleep(&ts, NULL);
        }
        return 0;
    }
    mlc_err err;
    if (mlc_sched_step(lt->s, &err)) {
        /* An engine failure fails every request in flight; the run goes on. */
        double now = mlc_client_now();
        for (int64_t i = 0; i < lt->cap_ids; i++) {
            mlc_run_req *r = lt->by_id[i];
            if (r && r->in_flight) {
                t->ev.done(t->ev.h, r, now, false, "engine", err.msg, r->t.input_tokens, r->t.output_tokens, false);
                mlc_sched_cancel(lt->s, i);
                lt->by_id[i] = NULL;
            }
        }
        return mlc_sched_pending(lt->s);
    }
    double now = mlc_client_now();
    int ne;
    const mlc_sched_event *ev = mlc_sched_events(lt->s, &ne);
    for (int i = 0; i < ne; i++) {
        mlc_run_req *r = ev[i].id < lt->cap_ids ? lt->by_id[ev[i].id] : NULL;
        if (!r)
            continue;
        if (ev[i].token >= 0) {
            t->ev.token(r, now, NULL, 0);
            t->ev.token_id(r, ev[i].token);
        }
        if (ev[i].finish != MLC_FINISH_NONE) {
            bool ok = ev[i].finish != MLC_FINISH_CANCELLED;
            t->ev.done(t->ev.h, r, now, ok, ok ? NULL : "cancelled", ok ? NULL : "cancelled", r->t.input_tokens,
                    ev[i].n_generated, false);
            lt->by_id[ev[i].id] = NULL;
        }
    }
    return mlc_sched_pending(lt->s);
}

static void local_cancel_all(mlc_target *t)
{
    local_target *lt = (local_target *)t;
    for (int64_t i = 0; i < lt->cap_ids; i++)
        if (lt->by_id[i])
            mlc_sched_cancel(lt->s, i);
    /* One step delivers the cancellations. */
    local_poll(t, 0);
}

static void local_destroy(mlc_target *t)
{
    local_target *lt = (local_target *)t;
    mlc_sched_free(lt->s);
    mlc_context_free(lt->c);
    mlc_model_free(lt->m);
    free(lt->by_id);
    free(lt);
}

mlc_status mlc_target_local_new(const mlc_run_opts *o, const mlc_run_events *ev, mlc_target **out, mlc_model_info *info,
                                mlc_err *err)
{
    local_target *lt = calloc(1, sizeof *lt);
    if (!lt)
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    lt->base = (mlc_target){local_submit, local_poll, local_cancel_all, local_destroy, *ev, NULL};
    lt->temperature = o->temperature;
    lt->seed = o->seed;
    lt->ignore_eos = o->ignore_eos;
    mlc_model_params mp = {.backend = o->backend ? o->backend : "cpu", .device = o->device, .n_threads = o->threads};
    mlc_status s = mlc_model_load(o->model, &mp, &lt->m, err);
    if (!s) {
        int n_ctx = o->ctx ? o->ctx : mlc_model_get_info(lt->m)->n_ctx_train;
        n_ctx = n_ctx > 8192 && !o->ctx ? 8192 : n_ctx;
        int par = o->parallel ? o->parallel : (mlc_run_opts_max_concurrency(o) < 64 ? mlc_run_opts_max_concurrency(o) : 64);
        mlc_context_params cp = {.n_ctx = n_ctx, .n_slots = par, .n_batch = 512};
        s = mlc_context_new(lt->m, &cp, &lt->c, err);
    }
    if (!s)
        s = mlc_sched_new(lt->c, NULL, &lt->s, err);
    if (s) {
        local_destroy(&lt->base);
        return s;
    }
    *info = *mlc_model_get_info(lt->m);
    *out = &lt->base;
    return MLC_OK;
}

/* ---------------------------------------------------------------- endpoint */

typedef struct endpoint_target {
    mlc_target base;
    mlc_client *cl;
    mlc_tokenizer *tok;   /* --tokenizer: exact counts when the server sends no usage */
    mlc_gguf *tok_file;
    float temperature;
    uint64_t seed;
    bool ignore_eos;
} endpoint_target;

static int64_t count_tokens(const endpoint_target *et, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (!et->tok || mlc_tokenize(et->tok, text, len, false, false, &ids, &n, NULL))
        return -1;
    free(ids);
    return (int64_t)n;
}

static void ep_sent(void *user, double t)
{
    mlc_run_req *r = user;
    r->tgt->ev.sent(r, t);
}

static void ep_token(void *user, double t, const char *text, size_t len)
{
    mlc_run_req *r = user;
    r->tgt->ev.token(r, t, text, len);
}

/* Token counts: the server's usage when it sent one, else the tokenizer's count of the
 * text, else the number of token-bearing chunks (marked approximate). */
static void ep_done(void *user, double t, const mlc_client_result *res)
{
    mlc_run_req *r = user;
    endpoint_target *et = (endpoint_target *)r->tgt;
    bool approx = false;
    int64_t out = res->usage_completion, in = res->usage_prompt;
    if (out < 0)
        out = count_tokens(et, r->text.p ? r->text.p : "", r->text.len);
    if (out < 0) {
        out = res->chunks;
        approx = true;
    }
    if (in < 0 && r->prompt->ids)
        in = r->prompt->n_ids;
    if (in < 0 && r->prompt->text)
        in = count_tokens(et, r->prompt->text, strlen(r->prompt->text));
    if (in < 0 && r->prompt->input_tokens >= 0)
        in = r->prompt->input_tokens;
    if (in < 0) {
        const char *p = r->prompt->text ? r->prompt->text : r->prompt->messages_json ? r->prompt->messages_json : "";
        in = (int64_t)(strlen(p) + 3) / 4;
        approx = true;
    }
    r->http_status = (int)res->http_status;
    r->url = res->url;
    bool ok = res->ok;
    const char *kind = res->error_kind, *why = res->error;
    char msg[200];
    if (ok && res->chunks == 0) {
        /* Complete by the protocol, yet nothing measurable: a server speaking another JSON
         * shape, or one that stopped at once. */
        if (res->events == 0)
            snprintf(msg, sizeof msg, "the stream ended without a data event");
        else
            snprintf(msg, sizeof msg, "%lld events, none with text in choices[0].text or "
                     "choices[0].delta.content (finish_reason '%s')", (long long)res->events,
                     res->finish_reason[0] ? res->finish_reason : "none");
        ok = false;
        kind = MLC_FAIL_NO_TOKENS;
        why = msg;
    }
    et->base.ev.done(et->base.ev.h, r, t, ok, kind, ok ? NULL : why, in, out, approx);
}

static mlc_status ep_submit(mlc_target *t, mlc_run_req *r, int32_t max_tokens, mlc_err *err)
{
    endpoint_target *et = (endpoint_target *)t;
    r->tgt = t;
    mlc_client_req q = {.prompt = r->prompt, .max_tokens = max_tokens, .ignore_eos = et->ignore_eos,
                        .temperature = et->temperature, .seed = et->seed + (uint64_t)r->idx,
                        .send_seed = true, .user = r};
    return mlc_client_submit(et->cl, &q, err);
}

static int ep_poll(mlc_target *t, double max_wait_s)
{
    return mlc_client_poll(((endpoint_target *)t)->cl, max_wait_s);
}

static void ep_cancel_all(mlc_target *t)
{
    mlc_client_cancel_all(((endpoint_target *)t)->cl);
}

static void ep_destroy(mlc_target *t)
{
    endpoint_target *et = (endpoint_target *)t;
    mlc_client_free(et->cl);
    mlc_tokenizer_free(et->tok);
    mlc_gguf_close(et->tok_file);
    free(et);
}

mlc_status mlc_target_endpoint_new(const mlc_run_opts *o, const mlc_run_events *ev, mlc_target **out, mlc_err *err)
{
    endpoint_target *et = calloc(1, sizeof *et);
    if (!et)
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    et->base = (mlc_target){ep_submit, ep_poll, ep_cancel_all, ep_destroy, *ev, NULL};
    et->temperature = o->temperature;
    et->seed = o->seed;
    et->ignore_eos = o->ignore_eos;
    const char *key = NULL;
    if (o->api_key_env && !(key = getenv(o->api_key_env))) {
        free(et);
        return mlc_err_set(err, MLC_ERR_ARG, "--api-key-env: variable '%s' is not set", o->api_key_env);
    }
    mlc_client_opts co = {.base_url = o->endpoint, .api = !strcmp(o->api, "chat") ? MLC_API_CHAT : MLC_API_COMPLETIONS,
                          .model = o->model_name ? o->model_name : "default", .api_key = key,
                          .timeout_s = o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S, .include_usage = true,
                          .max_connections = mlc_run_opts_max_concurrency(o) + 8};
    mlc_client_callbacks cb = {ep_sent, ep_token, ep_done};
    mlc_status s = MLC_OK;
    if (o->tokenizer && (s = mlc_gguf_open(o->tokenizer, &et->tok_file, err)) == MLC_OK)
        s = mlc_tokenizer_load(et->tok_file, &et->tok, err);
    if (!s)
        s = mlc_client_new(&co, &cb, &et->cl, err);
    if (s) {
        ep_destroy(&et->base);
        return s;
    }
    et->base.tok = et->tok;
    *out = &et->base;
    return MLC_OK;
}
