/* tests/testserver.c: the OpenAI-compatible streaming test server (see testserver.h).
 *
 * libmicrohttpd runs one thread per connection, so a handler may simply sleep until its
 * next deadline: pacing is a clock_nanosleep to an absolute CLOCK_MONOTONIC time per token
 * (token i at first token + i * itl, so waits never accumulate drift), with the thread's
 * timer slack at 1 ns so it wakes on time. Sleeps are cut into slices of at most 20 ms so
 * that ts_stop() ends stalled requests promptly: every wait checks the stop flag.
 *
 * (One epoll thread with suspended connections and a pacing thread would need fewer
 * threads, but libmicrohttpd 0.9.75 keeps calling a content reader that suspended its
 * connection, and a resume can be lost in that window; a thread per connection is the mode
 * it supports without such races.) */
#define _GNU_SOURCE /* prctl(PR_SET_TIMERSLACK) for the serving threads */
#include "testserver.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#if MHD_VERSION < 0x00097002
typedef int mhd_result; /* before 0.9.71 handlers returned int */
#else
typedef enum MHD_Result mhd_result;
#endif

#define TS_BODY_MAX (4u << 20)      /* request bodies beyond this get 413 */
#define TS_DEFAULT_TOKENS 16
#define TS_DEFAULT_OVERSIZED (2 << 20)
#define TS_SLICE_NS 20000000LL      /* longest single sleep: bounds how long ts_stop waits */
#define TS_FOREVER INT64_MAX

typedef struct ts_slot {
    ts_record pub;
    char *body;
    double *t_token;
} ts_slot;

struct ts_server {
    struct MHD_Daemon *d;
    ts_config cfg;
    char *fault_match;              /* our copy of cfg.fault_match */
    int port;
    atomic_bool stopping;
    atomic_int connections;
    pthread_mutex_t mu;             /* guards the slots and n_requests */
    ts_slot *slots;
    int n_slots, cap_slots;
    int n_requests;
};

enum { PHASE_TOKENS, PHASE_END };

/* One request: MHD's per-request context, freed when MHD reports it complete. */
typedef struct ts_req {
    ts_server *s;
    char *body;
    size_t len, cap;
    bool too_big;

    int id;
    ts_slot *slot;                  /* NULL when past max_records */
    bool chat, usage, faulty, fault_done;
    char *model_json;               /* the model name as a JSON string literal */
    int n_tokens, pos;              /* tokens to send; next position (n_tokens: the tail) */
    int64_t prompt_tokens;
    int64_t t0_ns;                  /* deadline of the first token */
    int phase;

    char *out;                      /* bytes produced and not yet handed to MHD */
    size_t out_len, out_pos, out_cap;
} ts_req;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps until the absolute deadline; false when the server is stopping. */
static bool wait_until(ts_server *s, int64_t deadline)
{
    for (;;) {
        if (atomic_load(&s->stopping))
            return false;
        int64_t t = now_ns();
        if (t >= deadline)
            return true;
        int64_t next = deadline - t > TS_SLICE_NS ? t + TS_SLICE_NS : deadline;
        struct timespec ts = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
}

/* ---- output buffer ---- */

static bool out_put(ts_req *q, const char *s, size_t n)
{
    if (q->out_len + n > q->out_cap) {
        size_t cap = q->out_cap ? q->out_cap : 1024;
        while (cap < q->out_len + n)
            cap *= 2;
        char *nb = realloc(q->out, cap);
        if (!nb)
            return false;
        q->out = nb;
        q->out_cap = cap;
    }
    memcpy(q->out + q->out_len, s, n);
    q->out_len += n;
    return true;
}

static const char *eol(const ts_req *q)
{
    if (q->faulty && q->s->cfg.fault == TS_FAULT_CRLF)
        return "\r\n";
    if (q->faulty && q->s->cfg.fault == TS_FAULT_CR)
        return "\r";
    return "\n";
}

static bool out_line(ts_req *q, const char *s)
{
    const char *e = eol(q);
    return out_put(q, s, strlen(s)) && out_put(q, e, strlen(e));
}

/* One SSE event carrying json, in the line style the fault mode asks for. */
static bool out_event(ts_req *q, const char *json)
{
    ts_fault f = q->faulty ? q->s->cfg.fault : TS_FAULT_NONE;
    bool ok = true;
    if (f == TS_FAULT_COMMENTS)
        ok = out_line(q, ": keep-alive") && out_line(q, "");
    const char *comma = strchr(json, ',');
    if (f == TS_FAULT_MULTILINE && comma) {
        /* Joined with '\n' by the client: whitespace between JSON tokens, still valid. */
        size_t k = (size_t)(comma - json) + 1;
        ok = ok && out_put(q, "data: ", 6) && out_put(q, json, k) && out_line(q, "") &&
             out_put(q, "data: ", 6) && out_line(q, json + k);
    } else {
        ok = ok && out_put(q, "data: ", 6) && out_line(q, json);
    }
    if (f == TS_FAULT_COMMENTS)
        ok = ok && out_line(q, ": ping");
    return ok && out_line(q, "");
}

/* ---- responses ---- */

static mhd_result reply_json(struct MHD_Connection *c, unsigned code, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    mhd_result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* The kind of page a web UI or a proxy answers on a wrong path; type NULL: no header. */
static mhd_result reply_html(struct MHD_Connection *c, const char *type)
{
    static const char page[] = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
                               "<body><h1>It works!</h1></body></html>\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof page - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (type)
        MHD_add_response_header(r, "Content-Type", type);
    mhd_result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static mhd_result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"error\":{\"message\":\"%s\",\"type\":\"test_error\",\"code\":%u}}", msg, code);
    return reply_json(c, code, buf);
}

/* Token i's chunk (i == -1: the chat role chunk; i == n_tokens with no tokens: the bare
 * finish chunk). The last token carries finish_reason, as vLLM and OpenAI send it. */
static bool out_token(ts_req *q, int i)
{
    char json[1024], text[32];
    bool last = i == q->n_tokens - 1 || (q->n_tokens == 0 && i == 0);
    const char *finish = last ? "\"length\"" : "null";
    const char *usage_null = q->usage ? ",\"usage\":null" : "";
    if (i >= 0 && q->n_tokens > 0)
        snprintf(text, sizeof text, "tok%d ", i);
    else
        text[0] = 0;
    if (q->faulty && q->s->cfg.fault == TS_FAULT_WRONG_SHAPE) {
        if (i < 0)
            return true;
        snprintf(json, sizeof json, "{\"id\":\"x-%d\",\"output\":{\"text\":\"%s\"}}", q->id, text);
    } else if (q->chat)
        snprintf(json, sizeof json,
                 "{\"id\":\"chatcmpl-%d\",\"object\":\"chat.completion.chunk\",\"created\":"
                 "1700000000,\"model\":%s,\"choices\":[{\"index\":0,\"delta\":{%s\"%s\":"
                 "\"%s\"},\"logprobs\":null,\"finish_reason\":%s}]%s}",
                 q->id, q->model_json, i < 0 ? "\"role\":\"assistant\"," : "",
                 i >= 0 && i < q->s->cfg.reasoning_tokens ? "reasoning_content" : "content",
                 text, i < 0 ? "null" : finish, usage_null);
    else
        snprintf(json, sizeof json,
                 "{\"id\":\"cmpl-%d\",\"object\":\"text_completion\",\"created\":1700000000,"
                 "\"model\":%s,\"choices\":[{\"index\":0,\"text\":\"%s\",\"logprobs\":null,"
                 "\"finish_reason\":%s,\"stop_reason\":null}]%s}",
                 q->id, q->model_json, text, finish, usage_null);
    return out_event(q, json);
}

static bool out_tail(ts_req *q)
{
    bool send_usage = q->usage && !(q->faulty && q->s->cfg.fault == TS_FAULT_NO_USAGE);
    if (send_usage) {
        char json[512];
        int64_t sent = q->n_tokens;
        snprintf(json, sizeof json,
                 "{\"id\":\"%s-%d\",\"object\":\"%s\",\"created\":1700000000,\"model\":%s,"
                 "\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld,"
                 "\"completion_tokens\":%lld}}",
                 q->chat ? "chatcmpl" : "cmpl", q->id,
                 q->chat ? "chat.completion.chunk" : "text_completion", q->model_json,
                 (long long)q->prompt_tokens, (long long)(q->prompt_tokens + sent),
                 (long long)sent);
        if (!out_event(q, json))
            return false;
    }
    return out_put(q, "data: [DONE]", 12) && out_line(q, "") && out_line(q, "");
}

static bool out_fault(ts_req *q)
{
    switch (q->s->cfg.fault) {
    case TS_FAULT_MALFORMED_SSE:
        return out_line(q, "this line has no field separator") &&
               out_line(q, "x-unknown-field: 42") && out_line(q, "");
    case TS_FAULT_INVALID_JSON:
        return out_line(q, "data: {not json}") && out_line(q, "");
    case TS_FAULT_STREAM_ERROR:
        return out_event(q, "{\"error\":{\"object\":\"error\",\"message\":\"engine died "
                            "(test fault)\",\"type\":\"InternalServerError\",\"code\":500}}") &&
               out_put(q, "data: [DONE]", 12) && out_line(q, "") && out_line(q, "");
    case TS_FAULT_OVERSIZED: {
        size_t n = q->s->cfg.fault_bytes > 0 ? (size_t)q->s->cfg.fault_bytes
                                             : (size_t)TS_DEFAULT_OVERSIZED;
        char x[4096];
        memset(x, 'x', sizeof x);
        bool ok = out_put(q, "data: ", 6);
        for (size_t k = 0; ok && k < n; k += sizeof x)
            ok = out_put(q, x, n - k < sizeof x ? n - k : sizeof x);
        return ok && out_line(q, "") && out_line(q, "");
    }
    default:
        return true;
    }
}

static void record_token(ts_req *q, int i, int64_t t)
{
    if (!q->slot)
        return;
    pthread_mutex_lock(&q->s->mu);
    q->slot->t_token[i] = (double)t * 1e-9;
    q->slot->pub.n_token = i + 1;
    q->slot->pub.completion_tokens = i + 1;
    pthread_mutex_unlock(&q->s->mu);
}

/* Produces the bytes of the next position (token pos, or the tail once pos == n_tokens),
 * sleeping until its deadline. False: end the response with an error (closes the
 * connection without the final chunk, so the client sees the stream cut). */
static bool produce(ts_req *q)
{
    ts_server *s = q->s;
    q->out_len = q->out_pos = 0;
    if (q->faulty && q->pos == s->cfg.fault_after && !q->fault_done) {
        q->fault_done = true;
        if (s->cfg.fault == TS_FAULT_DISCONNECT)
            return false;
        if (s->cfg.fault == TS_FAULT_STALL) {
            wait_until(s, TS_FOREVER);
            return false;
        }
        if (!out_fault(q))
            return false;
        if (s->cfg.fault == TS_FAULT_STREAM_ERROR) {
            q->phase = PHASE_END; /* the error event ended the stream with [DONE] */
            return true;
        }
    }
    if (q->pos < q->n_tokens) {
        int i = q->pos;
        int64_t due = q->t0_ns + (int64_t)((double)i * s->cfg.itl_ms * 1e6);
        if (!wait_until(s, due))
            return false;
        if (i == 0 && q->chat && !out_token(q, -1))
            return false;
        if (!out_token(q, i))
            return false;
        q->pos++;
        record_token(q, i, now_ns());
        return true;
    }
    if (q->n_tokens == 0 && !out_token(q, 0))
        return false;
    if (!out_tail(q))
        return false;
    q->phase = PHASE_END;
    if (q->slot) {
        pthread_mutex_lock(&s->mu);
        q->slot->pub.finished = true;
        pthread_mutex_unlock(&s->mu);
    }
    return true;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ts_req *q = cls;
    if (q->out_pos == q->out_len) {
        if (q->phase == PHASE_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!produce(q))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = q->out_len - q->out_pos;
    if (n > max)
        n = max;
    memcpy(buf, q->out + q->out_pos, n);
    q->out_pos += n;
    return (ssize_t)n;
}

/* ---- request parsing ---- */

static int64_t count_words(const char *s)
{
    int64_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool sp = isspace((unsigned char)*s) != 0;
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

/* Appends text (bounded) to the prompt summary used for matching. */
static void summary_add(char *sum, size_t cap, size_t *len, const char *text)
{
    if (*len && *len + 1 < cap)
        sum[(*len)++] = ' ';
    size_t n = strlen(text);
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(sum + *len, text, n);
    *len += n;
    sum[*len] = 0;
}

/* Fills q's fields from the JSON body; an error message for a 400, or NULL. The prompt's
 * text (first bytes, for matching faults and records) goes to sum. */
static const char *parse_request(ts_req *q, const cJSON *j, char *sum, size_t cap)
{
    size_t len = 0;
    sum[0] = 0;
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(j, "stream");
    if (!cJSON_IsTrue(stream))
        return "this test server only streams: stream must be true";
    if (q->chat) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages"), *m;
        if (!cJSON_IsArray(msgs))
            return "messages must be an array";
        cJSON_ArrayForEach(m, msgs) {
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content"), *part;
            if (cJSON_IsString(content)) {
                q->prompt_tokens += count_words(content->valuestring);
                summary_add(sum, cap, &len, content->valuestring);
            } else if (cJSON_IsArray(content)) {
                cJSON_ArrayForEach(part, content) {
                    const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                    if (cJSON_IsString(t)) {
                        q->prompt_tokens += count_words(t->valuestring);
                        summary_add(sum, cap, &len, t->valuestring);
                    }
                }
            } else {
                return "message content must be a string or an array of parts";
            }
        }
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt"), *id;
        if (cJSON_IsString(p)) {
            q->prompt_tokens = count_words(p->valuestring);
            summary_add(sum, cap, &len, p->valuestring);
        } else if (cJSON_IsArray(p)) {
            cJSON_ArrayForEach(id, p) {
                if (!cJSON_IsNumber(id))
                    return "prompt array must hold token ids";
                char num[24];
                snprintf(num, sizeof num, "%d", id->valueint);
                summary_add(sum, cap, &len, num);
                q->prompt_tokens++;
            }
        } else {
            return "prompt must be a string or an array of token ids";
        }
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "max_tokens");
    int max_tokens = cJSON_IsNumber(mt) ? mt->valueint : TS_DEFAULT_TOKENS;
    q->n_tokens = q->s->cfg.n_tokens > 0 ? q->s->cfg.n_tokens : max_tokens;
    if (q->n_tokens < 0)
        q->n_tokens = 0;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    q->usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *mstr = cJSON_CreateString(cJSON_IsString(model) ? model->valuestring : "test-model");
    q->model_json = mstr ? cJSON_PrintUnformatted(mstr) : NULL;
    cJSON_Delete(mstr);
    if (!q->model_json)
        return "out of memory";
    return NULL;
}

/* Takes a record slot and fills it; the slot stays owned by the server. */
static void record_request(ts_req *q, struct MHD_Connection *c, const char *sum, int64_t t)
{
    ts_server *s = q->s;
    pthread_mutex_lock(&s->mu);
    q->id = s->n_requests++;
    if (s->n_slots < s->cap_slots) {
        ts_slot *sl = &s->slots[s->n_slots];
        double *tt = calloc(q->n_tokens > 0 ? (size_t)q->n_tokens : 1, sizeof *tt);
        if (tt) {
            s->n_slots++;
            sl->t_token = tt;
            sl->body = q->body; /* ownership moves to the record */
            q->body = NULL;
            ts_record *r = &sl->pub;
            r->index = q->id;
            r->chat = q->chat;
            snprintf(r->prompt, sizeof r->prompt, "%s", sum);
            r->body = sl->body ? sl->body : "";
            const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
            snprintf(r->auth, sizeof r->auth, "%s", auth ? auth : "");
            r->prompt_tokens = q->prompt_tokens;
            r->t_request = (double)t * 1e-9;
            r->t_token = tt;
            q->slot = sl;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static mhd_result start_stream(ts_req *q, struct MHD_Connection *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, q, NULL);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    mhd_result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    if (q->slot) {
        pthread_mutex_lock(&q->s->mu);
        q->slot->pub.t_response = (double)now_ns() * 1e-9;
        pthread_mutex_unlock(&q->s->mu);
    }
    return ret;
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)version;
    ts_server *s = cls;
    ts_req *q = *con_cls;
    if (!q) {
        /* Headers are in; the body (if any) follows in later calls. */
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        q->s = s;
        *con_cls = q;
#ifdef PR_SET_TIMERSLACK
        /* This connection's thread paces tokens: wake at the deadline, not up to 50 us
         * later (Linux's default timer slack), so the truth the tests compare with is
         * sharp. Per thread; repeating it for each request on a connection is harmless. */
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > TS_BODY_MAX) {
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

    int64_t t_req = now_ns();
    if (!strcmp(method, "GET") && !strcmp(url, "/v1/models"))
        return reply_json(c, MHD_HTTP_OK,
                          "{\"object\":\"list\",\"data\":[{\"id\":\"test-model\","
                          "\"object\":\"model\",\"owned_by\":\"mlc-bench-tests\"}]}");
    bool chat = !strcmp(url, "/v1/chat/completions");
    if (!chat && strcmp(url, "/v1/completions"))
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
    if (strcmp(method, "POST"))
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
    if (q->too_big)
        return reply_error(c, 413 /* content too large */, "request body too large");
    q->chat = chat;
    cJSON *j = q->body ? cJSON_ParseWithLength(q->body, q->len) : NULL;
    if (!j)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "request body is not valid JSON");
    char sum[4096];
    const char *bad = parse_request(q, j, sum, sizeof sum);
    cJSON_Delete(j);
    if (bad)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, bad);
    q->faulty = s->cfg.fault != TS_FAULT_NONE &&
                (!s->fault_match || strstr(sum, s->fault_match) != NULL);
    record_request(q, c, sum, t_req);

    if (q->faulty && s->cfg.fault == TS_FAULT_HTTP_429)
        return reply_error(c, MHD_HTTP_TOO_MANY_REQUESTS, "rate limited (test fault)");
    if (q->faulty && s->cfg.fault == TS_FAULT_HTTP_500)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error (test fault)");
    if (q->faulty && s->cfg.fault == TS_FAULT_HTML_200)
        return reply_html(c, "text/html; charset=utf-8");
    if (q->faulty && s->cfg.fault == TS_FAULT_HTML_NO_TYPE)
        return reply_html(c, NULL);
    if (q->faulty && s->cfg.fault == TS_FAULT_NO_ANSWER) {
        wait_until(s, TS_FOREVER);
        return MHD_NO;
    }
    /* By default the whole response, headers included, is held until the first token is
     * due: the client's first byte then comes exactly ttft after the request arrived. With
     * early_headers the first token waits in the content reader, like every later one. */
    q->t0_ns = t_req + (int64_t)(s->cfg.ttft_ms * 1e6);
    if (!s->cfg.early_headers && !wait_until(s, q->t0_ns))
        return MHD_NO;
    return start_stream(q, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    ts_req *q = *con_cls;
    if (!q)
        return;
    free(q->body);
    free(q->out);
    cJSON_free(q->model_json);
    free(q);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    ts_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&s->connections, 1);
}

static void free_server(ts_server *s)
{
    for (int i = 0; i < s->n_slots; i++) {
        free(s->slots[i].body);
        free(s->slots[i].t_token);
    }
    free(s->slots);
    free(s->fault_match);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

ts_server *ts_start(const ts_config *cfg)
{
    ts_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (cfg)
        s->cfg = *cfg;
    s->fault_match = s->cfg.fault_match ? strdup(s->cfg.fault_match) : NULL;
    s->cfg.fault_match = s->fault_match;
    s->cap_slots = s->cfg.max_records > 0 ? s->cfg.max_records : 4096;
    s->slots = calloc((size_t)s->cap_slots, sizeof *s->slots);
    atomic_init(&s->stopping, false);
    atomic_init(&s->connections, 0);
    pthread_mutex_init(&s->mu, NULL);
    if (!s->slots || (s->cfg.fault_match && !s->fault_match)) {
        free_server(s);
        return NULL;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* the kernel picks a free port */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
        0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)16384, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)4096, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_END);
    if (!s->d) {
        fprintf(stderr, "testserver: MHD_start_daemon failed\n");
        free_server(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (s->port <= 0) {
        fprintf(stderr, "testserver: no bound port\n");
        atomic_store(&s->stopping, true);
        MHD_stop_daemon(s->d);
        free_server(s);
        return NULL;
    }
    return s;
}

int ts_port(ts_server *s)
{
    return s->port;
}

void ts_stop(ts_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_stop_daemon(s->d); /* joins every connection thread; their waits see the flag */
    free_server(s);
}

int ts_request_count(ts_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n_requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int ts_connection_count(ts_server *s)
{
    return atomic_load(&s->connections);
}

bool ts_record_get(ts_server *s, int i, ts_record *out)
{
    pthread_mutex_lock(&s->mu);
    bool ok = i >= 0 && i < s->n_slots;
    if (ok)
        *out = s->slots[i].pub;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

bool ts_record_find(ts_server *s, const char *prefix, ts_record *out)
{
    size_t n = strlen(prefix);
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_slots && !ok; i++) {
        if (!strncmp(s->slots[i].pub.prompt, prefix, n)) {
            *out = s->slots[i].pub;
            ok = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}
