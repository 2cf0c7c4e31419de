/* openai.c: see openai.h. */
#include "openai.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_engine.h"

/* ---- text of tokens, stop strings ---- */

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn)
{
    for (size_t i = 0; nn && i + nn <= hn; i++)
        if (!memcmp(h + i, n, nn))
            return h + i;
    return NULL;
}

size_t mlc_openai_utf8_whole(const char *p, size_t n)
{
    size_t i = n, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)p[i - 1] & 0xC0) == 0x80)
        i--, cont++;
    if (i == 0)
        return n;
    unsigned char c = (unsigned char)p[i - 1];
    size_t need = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
    return cont + 1 < need ? i - 1 : n;
}

/* Turns tokens [n_used, n_avail) into text; a stop string cuts it. Returns the number of
 * bytes of text safe to send: a possible stop-string prefix and an incomplete UTF-8
 * character at the end are held back until the next token or the end. Handler thread, lock
 * not needed (tokens before n_avail are stable). */
static size_t advance_text(mlc_serve_req *r, const int32_t *toks, size_t n_avail, bool done)
{
    mlc_server *s = r->srv;
    while (!r->stopped && r->n_used < n_avail) {
        size_t before = r->text.len;
        mlc_serve_token_text(s, toks[r->n_used++], &r->text);
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
    size_t safe = mlc_openai_utf8_whole(r->text.p, r->text.len - hold);
    return safe > r->emitted ? safe : r->emitted;
}

static const char *finish_reason(const mlc_serve_req *r)
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
static const char *tokenize_into(mlc_server *s, mlc_serve_req *r, const char *text, char *msg,
                                 size_t cap)
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

unsigned mlc_openai_parse(mlc_server *s, mlc_serve_req *r, const cJSON *j, const char **param,
                          char *msg, size_t cap)
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
            if (!cJSON_IsString(e) || !e->valuestring[0] || k >= MLC_SERVE_MAX_STOPS)
                BAD("stop", "stop: expected up to %d non-empty strings", MLC_SERVE_MAX_STOPS);
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

static void add_common(mlc_server *s, mlc_serve_req *r, cJSON *j, const char *object)
{
    cJSON_AddStringToObject(j, "id", r->id);
    cJSON_AddStringToObject(j, "object", object);
    cJSON_AddNumberToObject(j, "created", (double)r->created);
    cJSON_AddStringToObject(j, "model", s->model_id);
}

static cJSON *usage_json(const mlc_serve_req *r)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)r->n_used);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(r->n_prompt + r->n_used));
    return u;
}

static void piece_of(const mlc_server *s, int32_t id, char *buf, size_t cap)
{
    mlc_strbuf b = {0};
    mlc_serve_token_text(s, id, &b);
    snprintf(buf, cap, "%s", b.p ? b.p : "");
    free(b.p);
}

static cJSON *logprobs_json(mlc_server *s, mlc_serve_req *r)
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

cJSON *mlc_openai_response(mlc_server *s, mlc_serve_req *r)
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
                mlc_serve_token_text(s, r->prompt[i], &t);
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

void mlc_openai_collect(mlc_serve_req *r)
{
    for (;;) {
        size_t n_avail;
        bool done = mlc_serve_wait_progress(r, &n_avail);
        advance_text(r, r->htoks, n_avail, done);
        if (r->stopped && !done) {
            mlc_serve_cancel(r);
            mlc_serve_wait_done(r);
        }
        if (done || r->stopped)
            break;
    }
}

/* ---- streaming ---- */


/* Appends j as one SSE event ("data: JSON\n\n") and frees it; out of memory marks the
 * stream's buffer, as a failed append does. */
static void put_event(mlc_serve_req *r, cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!txt) {
        r->out.oom = true;
        return;
    }
    mlc_sb_puts(&r->out, "data: ");
    mlc_sb_puts(&r->out, txt);
    mlc_sb_puts(&r->out, "\n\n");
    cJSON_free(txt);
}

static void out_chunk(mlc_server *s, mlc_serve_req *r, const char *text, size_t len,
                      const char *finish)
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
    put_event(r, j);
}

static void out_usage(mlc_server *s, mlc_serve_req *r)
{
    cJSON *j = cJSON_CreateObject();
    add_common(s, r, j, r->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(j, "choices");
    cJSON_AddItemToObject(j, "usage", usage_json(r));
    put_event(r, j);
}

void mlc_openai_stream_start(mlc_server *s, mlc_serve_req *r)
{
    if (!r->echo)
        return;
    mlc_strbuf t = {0};
    if (r->echo_text)
        mlc_sb_puts(&t, r->echo_text);
    else
        for (size_t i = 0; i < r->n_prompt; i++)
            mlc_serve_token_text(s, r->prompt[i], &t);
    if (t.len)
        out_chunk(s, r, t.p, t.len, NULL);
    free(t.p);
}

bool mlc_openai_stream_next(mlc_serve_req *r)
{
    mlc_server *s = r->srv;
    if (r->phase == 1) {
        r->phase = 2;
        return true;
    }
    size_t n_avail;
    bool done = mlc_serve_wait_progress(r, &n_avail);
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
    /* One token per call, hence per event, even when several arrived together: clients
     * time events, and tokens sharing one would read as zero inter-token gaps. */
    size_t upto = r->n_used < n_avail ? r->n_used + 1 : n_avail;
    bool last = done && upto == n_avail;
    size_t safe = advance_text(r, r->htoks, upto, last);
    if (r->stopped && !done) {
        mlc_serve_cancel(r);
        mlc_serve_wait_done(r);
    }
    last = last || r->stopped;
    if (safe > r->emitted) {
        out_chunk(s, r, r->text.p + r->emitted, safe - r->emitted, NULL);
        r->emitted = safe;
    }
    if (last) {
        out_chunk(s, r, "", 0, finish_reason(r));
        if (r->include_usage)
            out_usage(s, r);
        mlc_sb_puts(&r->out, "data: [DONE]\n\n");
        r->phase = 1;
    }
    return !r->out.oom;
}


/* ---- errors, models ---- */

cJSON *mlc_openai_error(unsigned code, const char *param, const char *msg)
{
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
    return j;
}

cJSON *mlc_openai_models(const mlc_server *s)
{
    cJSON *j = cJSON_CreateObject(), *d;
    cJSON_AddStringToObject(j, "object", "list");
    d = cJSON_AddArrayToObject(j, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "mlc-bench");
    cJSON_AddItemToArray(d, m);
    return j;
}
