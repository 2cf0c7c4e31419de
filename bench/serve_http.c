/* serve_http.c: see serve_http.h.
 *
 * A handler parses the request, submits it to the engine and waits for tokens: a
 * non-streaming handler until the end, a streaming one in the content reader. A client that
 * goes away mid-stream makes libmicrohttpd report a non-OK termination; the request is then
 * cancelled, which frees its slot in the scheduler. */
#include "serve_http.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "openai.h"
#include "serve_engine.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

/* One HTTP request: its body as it arrives, then the engine request. */
typedef struct conn {
    char *body;
    size_t len, cap;
    bool too_big;
    mlc_serve_req *r;
} conn;

/* ---- replies ---- */

static void count_status(mlc_server *s, unsigned code)
{
    pthread_mutex_lock(&s->mu);
    mlc_serve_metrics_add_status(&s->metrics, code, 1);
    pthread_mutex_unlock(&s->mu);
}

static mhd_result reply(mlc_server *s, struct MHD_Connection *c, unsigned code,
                        const char *ctype, const char *body)
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

static mhd_result reply_cjson(mlc_server *s, struct MHD_Connection *c, unsigned code, cJSON *j)
{
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt)
        return MHD_NO;
    mhd_result ret = reply(s, c, code, "application/json", txt);
    cJSON_free(txt);
    return ret;
}

static mhd_result reply_error(mlc_server *s, struct MHD_Connection *c, unsigned code,
                              const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static mhd_result reply_error(mlc_server *s, struct MHD_Connection *c, unsigned code,
                              const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_cjson(s, c, code, mlc_openai_error(code, param, msg));
}

/* ---- streaming ---- */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    mlc_serve_req *r = cls;
    while (r->out_pos == r->out.len) {
        if (r->phase == 2)
            return MHD_CONTENT_READER_END_OF_STREAM;
        r->out.len = r->out_pos = 0;
        if (!mlc_openai_stream_next(r))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = r->out.len - r->out_pos;
    n = n > max ? max : n;
    memcpy(buf, r->out.p + r->out_pos, n);
    r->out_pos += n;
    return (ssize_t)n;
}

/* ---- endpoints ---- */

static mhd_result do_metrics(mlc_server *s, struct MHD_Connection *c)
{
    mlc_strbuf b = {0};
    pthread_mutex_lock(&s->mu);
    int waiting = s->in_engine - s->o.parallel;
    mlc_serve_metrics_text(&s->metrics, s->in_engine, waiting > 0 ? waiting : 0, &b);
    pthread_mutex_unlock(&s->mu);
    if (b.oom || !b.p) {
        free(b.p);
        return MHD_NO;
    }
    mhd_result ret = reply(s, c, 200, "text/plain; version=0.0.4", b.p);
    free(b.p);
    return ret;
}

static mhd_result do_generate(mlc_server *s, struct MHD_Connection *c, conn *q, bool chat)
{
    cJSON *j = q->body ? cJSON_ParseWithLength(q->body, q->len) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return reply_error(s, c, 400, NULL, "request body is not a valid JSON object");
    }
    mlc_serve_req *r = mlc_serve_req_new(s, chat);
    if (!r) {
        cJSON_Delete(j);
        return MHD_NO;
    }
    const char *param = NULL;
    char msg[600];
    unsigned code = mlc_openai_parse(s, r, j, &param, msg, sizeof msg);
    cJSON_Delete(j);
    if (code || !mlc_serve_submit(s, r)) {
        pthread_mutex_lock(&s->mu);
        mlc_serve_req_unref_locked(r);
        pthread_mutex_unlock(&s->mu);
        if (code)
            return reply_error(s, c, code, param, "%s", msg);
        return reply_error(s, c, 429, NULL, "server busy: %d requests queued (--max-queue)",
                           s->o.max_queue);
    }
    q->r = r;

    if (r->stream) {
        mlc_openai_stream_start(s, r);
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
    mlc_openai_collect(r);
    if (r->failed)
        return reply_error(s, c, 500, NULL, "%s", r->errmsg);
    return reply_cjson(s, c, 200, mlc_openai_response(s, r));
}

static bool authorized(mlc_server *s, struct MHD_Connection *c)
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
    mlc_server *s = cls;
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
        return reply_cjson(s, c, 200, mlc_openai_models(s));
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
    mlc_server *s = cls;
    conn *q = *con_cls;
    if (!q)
        return;
    pthread_mutex_lock(&s->mu);
    if (q->r) {
        if (!q->r->done && !q->r->cancel && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            q->r->cancel = true;
            pthread_cond_signal(&s->engine_cv);
        }
        mlc_serve_req_unref_locked(q->r);
    }
    s->in_flight--;
    pthread_cond_broadcast(&s->drain_cv);
    pthread_mutex_unlock(&s->mu);
    free(q->body);
    free(q);
    *con_cls = NULL;
}


/* ---- daemon ---- */

int mlc_serve_http_start(mlc_server *s, const struct sockaddr_in *addr)
{
    s->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC,
        0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)16384, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)600, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : s->o.port;
}

void mlc_serve_http_stop(mlc_server *s)
{
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->drain_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
    s->d = NULL;
}
