/* client.c: the OpenAI-compatible streaming client of `mlc-bench run --endpoint`.
 *
 * One libcurl multi handle runs every request on the caller's thread. It is driven through
 * curl's socket interface (curl_multi_socket_action) from an epoll set rather than through
 * curl_multi_perform/curl_multi_poll: those rebuild a poll set of every socket and visit
 * every transfer on each wake-up, while with epoll a wake-up costs work only for the sockets
 * that are ready. Against the in-process test server at 20 ms ITL that is 18 vs 30 us of
 * client CPU per token with 256 streams and 8 vs 10 us with 1024 (a 2-vCPU VM, where the
 * wake-up itself dominates both).
 *
 * Per request: the write callback takes the monotonic time first, then feeds the bytes to
 * the request's SSE parser; every event completed by those bytes carries that time. Request
 * objects (easy handle, parser and its buffers) are pooled and reused, so a long run stops
 * allocating except for cJSON's per-event tree and each request's JSON body. Memory per
 * request is bounded: the parser by max_event_bytes, the start of a body kept for an error
 * message by CLIENT_BODY_KEEP bytes. */
#include "client.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sse.h"

#define CLIENT_DEFAULT_MAX_EVENT ((size_t)1 << 20)
#define CLIENT_DEFAULT_CACHE 1024
#define CLIENT_BODY_KEEP 4096  /* start of a body kept: enough for an OpenAI error JSON */
#define CLIENT_MSG_MAX 200     /* bytes of a server's message in a failure's text */
#define CLIENT_EPOLL_BATCH 256
#define CLIENT_SPARE_FILES 64  /* open files beyond the sockets: store, epoll, outputs, curl */

/* The state of one transfer, zeroed when a pooled request is reused. */
typedef struct xfer {
    double t_chunk;          /* arrival of the bytes being parsed */
    double t_last;           /* arrival of the latest bytes */
    double t_done;           /* arrival of "[DONE]" */
    bool checked;            /* status and content type looked at (first body bytes) */
    bool http_error;         /* non-2xx: the body is kept for the message, not parsed */
    bool not_sse;            /* 2xx with another Content-Type: kept, not parsed */
    char ctype[64];          /* the response's Content-Type ("" when none) */
    bool ended;              /* [DONE] or an in-stream error: later bytes are drained */
    bool saw_done;
    const char *fail_kind;   /* set by the parsing side (protocol, in-stream error) */
    char fail_msg[200];
    char body[CLIENT_BODY_KEEP + 1]; /* the body's first bytes, for failure messages */
    size_t body_len;
    long status;
    int64_t usage_prompt, usage_completion, chunks, events;
    char finish[32];
} xfer;

typedef struct creq {
    mlc_client *c;
    CURL *easy;
    mlc_sse *sse;
    struct creq *prev, *next; /* the in-flight list, or the idle pool (next only) */
    void *user;
    char *body;               /* the JSON request body, owned while in flight */
    char curl_err[CURL_ERROR_SIZE];
    xfer st;
} creq;

struct mlc_client {
    CURLM *multi;
    int epfd;
    mlc_client_callbacks cb;
    mlc_api api;
    char *url;
    char *model;
    struct curl_slist *headers;
    long timeout_ms;
    bool include_usage;
    size_t max_event;
    creq *inflight;           /* doubly linked: a finished request unlinks in O(1) */
    int n_inflight;
    creq *idle;
    double timer_at;          /* when curl wants its timeout action; < 0: never */
};

double mlc_client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_fail(creq *q, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(creq *q, const char *kind, const char *fmt, ...)
{
    if (q->st.fail_kind)
        return; /* the first failure is the cause; later ones are its consequences */
    q->st.fail_kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->st.fail_msg, sizeof q->st.fail_msg, fmt, ap);
    va_end(ap);
}

/* ---- stream events ---- */

static int64_t json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static const char *nonempty(const cJSON *s)
{
    return cJSON_IsString(s) && s->valuestring && s->valuestring[0] ? s->valuestring : NULL;
}

static bool on_event(void *ctx, const char *event, const char *data, size_t len)
{
    creq *q = ctx;
    if (q->st.ended)
        return true;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        q->st.saw_done = true;
        q->st.ended = true;
        q->st.t_done = q->st.t_chunk;
        return true;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!j || !cJSON_IsObject(j)) {
        set_fail(q, MLC_FAIL_PROTOCOL, "event data is not a JSON object: %.80s", data);
        cJSON_Delete(j);
        return false; /* abort this request: the stream cannot be trusted any more */
    }
    q->st.events++;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if ((err && !cJSON_IsNull(err)) || !strcmp(event, "error")) {
        /* vLLM and OpenAI report failures inside a 200 stream this way (often followed by
         * [DONE], which must not turn it into a success). */
        const char *msg = nonempty(cJSON_GetObjectItemCaseSensitive(err, "message"));
        set_fail(q, MLC_FAIL_HTTP, "error in stream: %.160s", msg ? msg : data);
        q->st.ended = true;
        cJSON_Delete(j);
        return true;
    }
    const char *text = NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? choices->child : NULL;
    if (c0) {
        text = nonempty(cJSON_GetObjectItemCaseSensitive(c0, "text"));
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
        if (!text && delta) {
            text = nonempty(cJSON_GetObjectItemCaseSensitive(delta, "content"));
            if (!text) /* reasoning models stream their thinking here first */
                text = nonempty(cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content"));
        }
        const char *fr = nonempty(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
        if (fr)
            snprintf(q->st.finish, sizeof q->st.finish, "%s", fr);
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(usage)) {
        /* Wherever it comes (final chunk, or every chunk with continuous usage stats),
         * the latest one is the total. */
        int64_t p = json_int(usage, "prompt_tokens"), g = json_int(usage, "completion_tokens");
        if (p >= 0)
            q->st.usage_prompt = p;
        if (g >= 0)
            q->st.usage_completion = g;
    }
    if (text) {
        q->st.chunks++;
        if (q->c->cb.on_token)
            q->c->cb.on_token(q->user, q->st.t_chunk, text, strlen(text));
    }
    cJSON_Delete(j);
    return true;
}

/* ---- curl callbacks ---- */

/* Keeps the first CLIENT_BODY_KEEP bytes of the body for a failure's message. */
static void keep_body(xfer *st, const char *ptr, size_t len)
{
    size_t room = CLIENT_BODY_KEEP - st->body_len;
    size_t n = len < room ? len : room;
    memcpy(st->body + st->body_len, ptr, n);
    st->body_len += n;
    st->body[st->body_len] = 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    double t = mlc_client_now(); /* first: parsing must not delay the timestamp */
    creq *q = ud;
    size_t len = size * nmemb;
    if (!q->st.checked) {
        q->st.checked = true;
        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &q->st.status);
        char *ct = NULL;
        curl_easy_getinfo(q->easy, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(q->st.ctype, sizeof q->st.ctype, "%s", ct ? ct : "");
        if (q->st.status < 200 || q->st.status >= 300)
            q->st.http_error = true;
        /* A declared type other than an event stream (an HTML page from a proxy or a web
         * UI, JSON from a server that ignored "stream": true) is not parsed as one; a
         * response without a type is tried as a stream. */
        else if (ct && strncasecmp(ct, "text/event-stream", 17) != 0)
            q->st.not_sse = true;
    }
    q->st.t_last = t;
    if (q->st.body_len < CLIENT_BODY_KEEP)
        keep_body(&q->st, ptr, len);
    if (q->st.http_error || q->st.not_sse)
        return len; /* drained, so the connection can be reused */
    if (q->st.ended)
        return len;
    q->st.t_chunk = t;
    if (!mlc_sse_feed(q->sse, ptr, len)) {
        const char *why = mlc_sse_error(q->sse);
        set_fail(q, MLC_FAIL_PROTOCOL, "malformed event stream: %s (limit %zu bytes)",
                 why ? why : "?", q->c->max_event);
        return 0; /* curl aborts this transfer (and its connection) only */
    }
    return len;
}

#if LIBCURL_VERSION_NUM >= 0x075000
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    creq *q = ud;
    if (q->c->cb.on_sent)
        q->c->cb.on_sent(q->user, mlc_client_now());
    return CURL_PREREQFUNC_OK;
}
#endif

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    mlc_client *c = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL); /* fails harmlessly if already closed */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = s;
    if (socketp) {
        epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
    } else {
        /* curl's per-socket pointer marks "already in the epoll set". */
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(c->multi, s, c);
    }
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    mlc_client *c = userp;
    c->timer_at = timeout_ms < 0 ? -1.0 : mlc_client_now() + (double)timeout_ms * 1e-3;
    return 0;
}

/* ---- request objects ---- */

static void req_destroy(creq *q)
{
    if (!q)
        return;
    if (q->easy)
        curl_easy_cleanup(q->easy);
    mlc_sse_free(q->sse);
    cJSON_free(q->body);
    free(q);
}

static creq *req_create(mlc_client *c)
{
    creq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->c = c;
    q->easy = curl_easy_init();
    q->sse = mlc_sse_new(c->max_event, on_event, q);
    if (!q->easy || !q->sse) {
        req_destroy(q);
        return NULL;
    }
    /* Everything that does not change between requests is set once per pooled handle. */
    CURL *e = q->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* HTTP/1.1, as vLLM's benchmark client (aiohttp) speaks: one stream per connection,
     * so streams do not share a TCP window (h2 multiplexing would couple their timings). */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
#ifdef MLC_VERSION
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mlc-bench/" MLC_VERSION);
#else
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mlc-bench");
#endif
#if LIBCURL_VERSION_NUM >= 0x075000
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, q);
#endif
    return q;
}

static void inflight_unlink(mlc_client *c, creq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        c->inflight = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    c->n_inflight--;
}

/* Back to the pool, its body freed (bodies vary in size; the parser's buffers are kept). */
static void req_recycle(mlc_client *c, creq *q)
{
    cJSON_free(q->body);
    q->body = NULL;
    q->user = NULL;
    q->next = c->idle;
    c->idle = q;
}

/* ---- lifecycle ---- */

/* base_url with any trailing slashes, "/v1" and endpoint path removed, plus the API's path. */
static char *build_url(const char *base, mlc_api api)
{
    static const char *const suffixes[] = {"/chat/completions", "/completions", "/v1"};
    size_t n = strlen(base);
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
        while (n && base[n - 1] == '/')
            n--;
        size_t sl = strlen(suffixes[k]);
        if (n >= sl && !memcmp(base + n - sl, suffixes[k], sl))
            n -= sl;
    }
    while (n && base[n - 1] == '/')
        n--;
    const char *path = api == MLC_API_CHAT ? "/v1/chat/completions" : "/v1/completions";
    char *url = malloc(n + strlen(path) + 1);
    if (url) {
        memcpy(url, base, n);
        strcpy(url + n, path);
    }
    return url;
}

/* Every connection holds a socket. The soft limit on open files (often 1024) is raised
 * toward the hard one when the connection cap needs it, so 10,000 streams do not fail one by
 * one with "Couldn't connect"; a cap beyond the hard limit is refused before any request. */
static mlc_status ensure_files(int conns, mlc_err *err)
{
    struct rlimit rl;
    if (conns <= 0 || getrlimit(RLIMIT_NOFILE, &rl))
        return MLC_OK;
    rlim_t need = (rlim_t)conns + CLIENT_SPARE_FILES;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return MLC_OK;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "client: %d connections need %llu open files, and this process may open at "
                           "most %llu (ulimit -Hn): lower --concurrency or raise the limit",
                           conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl))
        return mlc_err_set(err, MLC_ERR_IO, "client: raising the open-file limit to %llu: %s",
                           (unsigned long long)need, strerror(errno));
    return MLC_OK;
}

mlc_status mlc_client_new(const mlc_client_opts *o, const mlc_client_callbacks *cb,
                          mlc_client **out, mlc_err *err)
{
    *out = NULL;
    if (!o || !o->base_url || !*o->base_url)
        return mlc_err_set(err, MLC_ERR_ARG, "client: no endpoint URL");
    if (o->api != MLC_API_COMPLETIONS && o->api != MLC_API_CHAT)
        return mlc_err_set(err, MLC_ERR_ARG, "client: unknown API %d", (int)o->api);
    mlc_status fs = ensure_files(o->max_connections, err);
    if (fs != MLC_OK)
        return fs;
    /* Reference counted by libcurl (and thread-safe since 7.84): each client pairs one
     * init with one cleanup, so no process-wide state is needed here. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return mlc_err_set(err, MLC_ERR_IO, "client: curl_global_init failed");
    mlc_client *c = calloc(1, sizeof *c);
    if (!c) {
        curl_global_cleanup();
        return mlc_err_set(err, MLC_ERR_NOMEM, "client: out of memory");
    }
    c->epfd = -1;
    c->timer_at = -1.0;
    if (cb)
        c->cb = *cb;
    c->api = o->api;
    c->include_usage = o->include_usage;
    c->max_event = o->max_event_bytes > 0 ? o->max_event_bytes : CLIENT_DEFAULT_MAX_EVENT;
    c->timeout_ms = o->timeout_s > 0 ? (long)ceil(o->timeout_s * 1000.0) : 0;
    c->url = build_url(o->base_url, o->api);
    c->model = o->model ? strdup(o->model) : NULL;
    mlc_status st = MLC_ERR_NOMEM;
    const char *what = "out of memory";
    if (!c->url || (o->model && !c->model))
        goto fail;
    static const char *const fixed[] = {
        "Content-Type: application/json", "Accept: text/event-stream",
        "Expect:", /* no 100-continue round trip (curl waits up to 1 s for it on big bodies) */
    };
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
        struct curl_slist *h = curl_slist_append(c->headers, fixed[k]);
        if (!h)
            goto fail;
        c->headers = h;
    }
    if (o->api_key && *o->api_key) {
        size_t n = strlen(o->api_key) + 32;
        char *line = malloc(n);
        if (!line)
            goto fail;
        snprintf(line, n, "Authorization: Bearer %s", o->api_key);
        struct curl_slist *h = curl_slist_append(c->headers, line);
        free(line);
        if (!h)
            goto fail;
        c->headers = h;
    }
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->multi = curl_multi_init();
    if (c->epfd < 0 || !c->multi) {
        st = MLC_ERR_IO;
        what = c->epfd < 0 ? strerror(errno) : "curl_multi_init failed";
        goto fail;
    }
    long cache = o->max_connections > 0 ? o->max_connections : CLIENT_DEFAULT_CACHE;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    /* Keep every connection of a run alive between its requests (the cache must hold the
     * concurrency), and never open more to the host than asked: extra requests queue. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, cache);
    if (o->max_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->max_connections);
    *out = c;
    return MLC_OK;
fail:
    mlc_client_free(c);
    return mlc_err_set(err, st, "client: %s", what);
}

void mlc_client_free(mlc_client *c)
{
    if (!c)
        return;
    while (c->inflight) {
        creq *q = c->inflight;
        curl_multi_remove_handle(c->multi, q->easy);
        inflight_unlink(c, q);
        req_destroy(q);
    }
    while (c->idle) {
        creq *q = c->idle;
        c->idle = q->next;
        req_destroy(q);
    }
    if (c->multi)
        curl_multi_cleanup(c->multi); /* may still call on_socket: epfd stays open until here */
    if (c->epfd >= 0)
        close(c->epfd);
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->model);
    free(c);
    curl_global_cleanup();
}

/* ---- submitting ---- */

static bool add_raw(cJSON *o, const char *key, const char *text)
{
    cJSON *v = cJSON_CreateRaw(text);
    return v && cJSON_AddItemToObject(o, key, v);
}

/* A token-id prompt as JSON array text ("[1,22,333]"): written directly, as cJSON would
 * format every id through a double and sprintf, which was the largest user-space cost of
 * building a request. NULL when out of memory. */
static char *ids_text(const int32_t *ids, int32_t n)
{
    char *t = malloc((size_t)n * 12 + 3); /* "-2147483648," is 12 bytes */
    if (!t)
        return NULL;
    char *w = t;
    *w++ = '[';
    for (int32_t i = 0; i < n; i++) {
        char digits[11];
        int k = 0;
        uint32_t v = ids[i] < 0 ? 0u - (uint32_t)ids[i] : (uint32_t)ids[i];
        do
            digits[k++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (i)
            *w++ = ',';
        if (ids[i] < 0)
            *w++ = '-';
        while (k)
            *w++ = digits[--k];
    }
    *w++ = ']';
    *w = 0;
    return t;
}

static mlc_status build_body(mlc_client *c, const mlc_client_req *r, char **out, mlc_err *err)
{
    const mlc_prompt *p = r->prompt;
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && c->model)
        ok = cJSON_AddStringToObject(root, "model", c->model) != NULL;
    if (ok && c->api == MLC_API_CHAT) {
        cJSON *msgs = NULL;
        if (p->messages_json) {
            msgs = cJSON_Parse(p->messages_json);
            if (!cJSON_IsArray(msgs)) {
                cJSON_Delete(msgs);
                cJSON_Delete(root);
                return mlc_err_set(err, MLC_ERR_FORMAT,
                                   "client: prompt messages are not a JSON array");
            }
        } else if (p->text) {
            cJSON *m = cJSON_CreateObject();
            msgs = cJSON_CreateArray();
            if (!m || !msgs || !cJSON_AddStringToObject(m, "role", "user") ||
                !cJSON_AddStringToObject(m, "content", p->text)) {
                cJSON_Delete(m);
                ok = false;
            } else {
                cJSON_AddItemToArray(msgs, m);
            }
        } else {
            cJSON_Delete(root);
            return mlc_err_set(err, MLC_ERR_ARG,
                               "client: the chat API needs a text or messages prompt "
                               "(token ids can only go to /v1/completions)");
        }
        ok = ok && msgs && cJSON_AddItemToObject(root, "messages", msgs);
        if (!ok)
            cJSON_Delete(msgs);
    } else if (ok) {
        if (p->text) {
            ok = cJSON_AddStringToObject(root, "prompt", p->text) != NULL;
        } else if (p->messages_json) {
            char *text = NULL;
            mlc_status ms = mlc_messages_text(p->messages_json, &text, err);
            if (ms != MLC_OK) {
                cJSON_Delete(root);
                return ms;
            }
            ok = cJSON_AddStringToObject(root, "prompt", text) != NULL;
            free(text);
        } else if (p->ids && p->n_ids > 0) {
            char *ids = ids_text(p->ids, p->n_ids);
            ok = ids && add_raw(root, "prompt", ids);
            free(ids);
        } else {
            cJSON_Delete(root);
            return mlc_err_set(err, MLC_ERR_ARG,
                               "client: the completions API needs a text or token-id prompt");
        }
    }
    int32_t max_tokens = r->max_tokens > 0 ? r->max_tokens : p->max_tokens;
    if (ok && max_tokens > 0)
        ok = cJSON_AddNumberToObject(root, "max_tokens", max_tokens) != NULL;
    if (ok)
        ok = cJSON_AddTrueToObject(root, "stream") != NULL;
    if (ok && c->include_usage) {
        cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
        ok = so && cJSON_AddTrueToObject(so, "include_usage");
    }
    if (ok && r->ignore_eos)
        ok = cJSON_AddTrueToObject(root, "ignore_eos") != NULL; /* vLLM extension */
    char num[32];
    if (ok && r->temperature >= 0) {
        /* %.7g: the shortest text that reads back as the same float, so 0.7f goes out as
         * 0.7 rather than cJSON's double rendering 0.699999988079071. */
        snprintf(num, sizeof num, "%.7g", (double)r->temperature);
        ok = add_raw(root, "temperature", num);
    }
    if (ok && r->send_seed) {
        /* As integer text: a JSON number through a double would round seeds above 2^53. */
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->seed);
        ok = add_raw(root, "seed", num);
    }
    char *body = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!body)
        return mlc_err_set(err, MLC_ERR_NOMEM, "client: out of memory building a request");
    *out = body;
    return MLC_OK;
}

mlc_status mlc_client_submit(mlc_client *c, const mlc_client_req *r, mlc_err *err)
{
    if (!r || !r->prompt)
        return mlc_err_set(err, MLC_ERR_ARG, "client: request without a prompt");
    char *body = NULL;
    mlc_status st = build_body(c, r, &body, err);
    if (st != MLC_OK)
        return st;
    creq *q = c->idle;
    if (q) {
        c->idle = q->next;
        q->next = NULL;
    } else if (!(q = req_create(c))) {
        cJSON_free(body);
        return mlc_err_set(err, MLC_ERR_NOMEM, "client: out of memory (request handle)");
    }
    memset(&q->st, 0, sizeof q->st);
    q->st.usage_prompt = q->st.usage_completion = -1;
    q->curl_err[0] = 0;
    mlc_sse_reset(q->sse);
    q->user = r->user;
    q->body = body;
    /* curl reads the body from our buffer (no copy); it lives until the request ends. */
    curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, body);
    CURLMcode mc = curl_multi_add_handle(c->multi, q->easy);
    if (mc != CURLM_OK) {
        req_recycle(c, q);
        return mlc_err_set(err, MLC_ERR_IO, "client: %s", curl_multi_strerror(mc));
    }
    q->prev = NULL;
    q->next = c->inflight;
    if (c->inflight)
        c->inflight->prev = q;
    c->inflight = q;
    c->n_inflight++;
#if LIBCURL_VERSION_NUM < 0x075000
    if (c->cb.on_sent) /* no pre-request hook in this libcurl: the hand-over is the best */
        c->cb.on_sent(q->user, mlc_client_now());
#endif
    return MLC_OK;
}

/* ---- completion ---- */

/* Replaces control characters so a server's body makes a one-line message. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* At most max bytes of s into out (cap > max), cut at a UTF-8 character boundary. */
static void copy_msg(char *out, size_t cap, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* The server's own words in an error body: the OpenAI error JSON's error.message (or an
 * "error" string, or FastAPI's "detail"), else the start of the body. */
static void server_message(const xfer *st, char *out, size_t cap, size_t max)
{
    cJSON *j = cJSON_ParseWithLength(st->body, st->body_len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *msg = nonempty(cJSON_GetObjectItemCaseSensitive(e, "message"));
    if (!msg)
        msg = nonempty(e);
    if (!msg)
        msg = nonempty(cJSON_GetObjectItemCaseSensitive(j, "detail"));
    if (!msg)
        msg = nonempty(cJSON_GetObjectItemCaseSensitive(j, "message"));
    const char *body = st->body;
    while (*body == ' ' || *body == '\r' || *body == '\n' || *body == '\t')
        body++;
    copy_msg(out, cap, msg ? msg : *body ? body : "(empty body)", max);
    cJSON_Delete(j);
    one_line(out);
}

static void finish(mlc_client *c, creq *q, CURLcode rc, bool cancelled)
{
    mlc_client_result r;
    memset(&r, 0, sizeof r);
    xfer *st = &q->st;
    double t = mlc_client_now();
    long status = st->status;
    if (!status)
        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    r.http_status = status;
    r.url = c->url;
    r.events = st->events;
    r.usage_prompt = st->usage_prompt;
    r.usage_completion = st->usage_completion;
    r.chunks = st->chunks;
    snprintf(r.finish_reason, sizeof r.finish_reason, "%s", st->finish);
    const char *curl_msg = q->curl_err[0] ? q->curl_err : curl_easy_strerror(rc);

    if (cancelled) {
        r.error_kind = MLC_FAIL_CANCELLED;
        snprintf(r.error, sizeof r.error, "cancelled after %lld tokens", (long long)st->chunks);
    } else if (st->fail_kind) {
        r.error_kind = st->fail_kind;
        snprintf(r.error, sizeof r.error, "%s", st->fail_msg);
    } else if (status >= 300 || (status > 0 && status < 200)) {
        r.error_kind = MLC_FAIL_HTTP;
        server_message(st, r.error, sizeof r.error, CLIENT_MSG_MAX);
    } else if (st->not_sse || (rc == CURLE_OK && !st->saw_done && !st->finish[0] && st->events == 0 &&
                               st->body_len > 0)) {
        /* Bytes came, but no event: a page or a JSON answer, whatever its Content-Type. */
        char start[161];
        server_message(st, start, sizeof start, sizeof start - 1);
        r.error_kind = MLC_FAIL_NOT_SSE;
        snprintf(r.error, sizeof r.error, "not an SSE stream (Content-Type %.40s): %s",
                 st->ctype[0] ? st->ctype : "none", start);
    } else if (st->saw_done || st->finish[0]) {
        /* Complete by the protocol, whatever happened to the connection afterwards. */
        r.ok = true;
        t = st->saw_done ? st->t_done : st->t_last;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        r.error_kind = MLC_FAIL_TIMEOUT;
        /* curl's own text adds the exact milliseconds and bytes, which would make every
         * timeout a reason of its own. */
        snprintf(r.error, sizeof r.error, "no complete response within %.3f s (%lld tokens)",
                 (double)c->timeout_ms * 1e-3, (long long)st->chunks);
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
               rc == CURLE_COULDNT_RESOLVE_PROXY) {
        r.error_kind = MLC_FAIL_CONNECT;
        snprintf(r.error, sizeof r.error, "%s", curl_msg);
    } else {
        r.error_kind = MLC_FAIL_DISCONNECT;
        if (rc == CURLE_OK)
            snprintf(r.error, sizeof r.error,
                     "stream ended without [DONE] or finish_reason after %lld tokens",
                     (long long)st->chunks);
        else
            snprintf(r.error, sizeof r.error, "stream cut after %lld tokens: %.200s",
                     (long long)st->chunks, curl_msg);
    }
    one_line(r.error);

    curl_multi_remove_handle(c->multi, q->easy);
    inflight_unlink(c, q);
    void *user = q->user;
    /* Recycled before the callback so that a request submitted from on_done can reuse it. */
    req_recycle(c, q);
    if (c->cb.on_done)
        c->cb.on_done(user, t, &r);
}

/* Hands every finished transfer to finish(); returns how many. */
static int drain(mlc_client *c)
{
    int n = 0, left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        creq *q = (creq *)(void *)priv;
        if (q) {
            finish(c, q, rc, false);
            n++;
        }
    }
    return n;
}

int mlc_client_poll(mlc_client *c, double max_wait_s)
{
    double end = mlc_client_now() + (max_wait_s > 0 ? max_wait_s : 0);
    int done = 0, running = 0;
    struct epoll_event evs[CLIENT_EPOLL_BATCH];
    for (;;) {
        double t = mlc_client_now();
        if (c->timer_at >= 0 && c->timer_at <= t) {
            /* The timer is one-shot: curl re-arms it through on_timer when it needs to. */
            c->timer_at = -1.0;
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            done += drain(c);
            t = mlc_client_now();
        }
        /* Sleep until the deadline or curl's next timeout, whichever is first; with
         * something finished (or the time up) only look for ready sockets (wait 0), so a
         * zero max_wait_s still moves every transfer along. */
        double until = end;
        if (c->timer_at >= 0 && c->timer_at < until)
            until = c->timer_at;
        double wait_ms = done > 0 ? 0 : ceil((until - t) * 1000.0);
        int ms = wait_ms < 0 ? 0 : wait_ms > (double)INT_MAX ? INT_MAX : (int)wait_ms;
        int n = epoll_wait(c->epfd, evs, CLIENT_EPOLL_BATCH, ms);
        if (n < 0) {
            if (errno == EINTR)
                break; /* let the caller look at its signal flags */
            n = 0;
        }
        for (int i = 0; i < n; i++) {
            uint32_t e = evs[i].events;
            int flags = ((e & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((e & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(c->multi, evs[i].data.fd, flags, &running);
        }
        done += drain(c);
        if (done > 0 || mlc_client_now() >= end)
            break;
    }
    return c->n_inflight;
}

void mlc_client_cancel_all(mlc_client *c)
{
    /* Detach the list first: on_done may submit new requests, which must survive. */
    creq *list = c->inflight;
    c->inflight = NULL;
    while (list) {
        creq *q = list;
        list = q->next;
        if (list)
            list->prev = NULL;
        /* Put back at the head (with any requests submitted meanwhile) for finish() to
         * unlink: the in-flight count still includes it. */
        q->prev = NULL;
        q->next = c->inflight;
        if (c->inflight)
            c->inflight->prev = q;
        c->inflight = q;
        finish(c, q, CURLE_ABORTED_BY_CALLBACK, true);
    }
}
