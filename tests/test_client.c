/* test_client.c: the streaming OpenAI client (bench/client.c) against tests/testserver.c.
 *
 * Timing accuracy is defined against the test server, which runs in this process on the
 * same CLOCK_MONOTONIC:
 *   TTFT error  = (first token-bearing chunk - on_sent) - configured ttft, per request;
 *   ITL error   = (token i - token i-1) - configured itl, per gap;
 *   client lag  = client's timestamp of token i - server's hand-off of token i to MHD.
 * The first two are what a benchmark run would report against a server whose truth is
 * known, so they are the numbers a user cares about; they also include the server's own
 * lateness (its wake-up after the deadline, tens of us) and the request's transit to the
 * server (on_sent to request received). The third isolates the client: how late it stamps
 * bytes the server already handed over. Each is summarized by the median (typical error,
 * which a systematic client mistake moves) and the p99 (the tail, which one preempted
 * wake-up moves), nearest rank: the ceil(0.99 n)-th smallest |value|. The logs also show
 * transit and server lateness, to tell whose time a bad tail was. */
#define _GNU_SOURCE /* RUSAGE_THREAD: the client's CPU without the server's threads */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../bench/client.h"
#include "testserver.h"
#include "util.h"

/* Timing bounds are for optimized builds; sanitizers make every step several times slower,
 * so their runs check the same things with looser bounds. */
#define TC_SLACK (tu_sanitized() ? 5.0 : 1.0)

#define TC_MAXTOK 128

/* ---- a request as the test sees it ---- */

typedef struct tc_run tc_run;

typedef struct tc_req {
    tc_run *run;
    int idx;
    mlc_prompt prompt;
    char text[256];
    double t_submit, t_sent, t_done;
    double t_tok[TC_MAXTOK];
    int n_tok, n_sent;
    char out[2048];
    size_t out_len;
    bool done;
    mlc_client_result r;
} tc_req;

struct tc_run {
    mlc_client *c;
    tc_req *req;
    int n, n_done;
    /* cancel test: submit this prompt from on_done (closed-loop refill) */
    tc_req *refill;
};

static void on_sent(void *user, double t)
{
    tc_req *q = user;
    q->t_sent = t;
    q->n_sent++;
}

static void on_token(void *user, double t, const char *text, size_t len)
{
    tc_req *q = user;
    if (q->n_tok < TC_MAXTOK)
        q->t_tok[q->n_tok] = t;
    q->n_tok++;
    if (q->out_len + len < sizeof q->out) {
        memcpy(q->out + q->out_len, text, len);
        q->out_len += len;
        q->out[q->out_len] = 0;
    }
}

static void on_done(void *user, double t, const mlc_client_result *r)
{
    tc_req *q = user;
    cr_assert_not(q->done, "request %d finished twice", q->idx);
    q->done = true;
    q->t_done = t;
    q->r = *r;
    q->run->n_done++;
    if (q->run->refill) {
        tc_req *f = q->run->refill;
        q->run->refill = NULL;
        mlc_client_req cr = {.prompt = &f->prompt, .max_tokens = 4, .temperature = -1,
                             .user = f};
        mlc_err err;
        cr_assert_eq(mlc_client_submit(q->run->c, &cr, &err), MLC_OK, "%s", err.msg);
    }
}

static const mlc_client_callbacks tc_cb = {on_sent, on_token, on_done};

static tc_run *run_new(int n, const char *fmt)
{
    tc_run *run = calloc(1, sizeof *run);
    run->req = calloc((size_t)n, sizeof *run->req);
    run->n = n;
    for (int i = 0; i < n; i++) {
        tc_req *q = &run->req[i];
        q->run = run;
        q->idx = i;
        snprintf(q->text, sizeof q->text, fmt, i);
        q->prompt.text = q->text;
        q->prompt.input_tokens = -1;
        q->prompt.timestamp = -1;
    }
    return run;
}

static void run_free(tc_run *run)
{
    if (!run)
        return;
    mlc_client_free(run->c);
    free(run->req);
    free(run);
}

/* The server's URL plus suffix, in buf (128 bytes; the client copies it). */
static const char *url_in(char *buf, ts_server *s, const char *suffix)
{
    snprintf(buf, 128, "http://127.0.0.1:%d%s", ts_port(s), suffix);
    return buf;
}
#define base_url(s, suffix) url_in((char[128]){0}, (s), (suffix))

static mlc_client *client_for(tc_run *run, const char *url, const mlc_client_opts *extra)
{
    mlc_client_opts o = {0};
    if (extra)
        o = *extra;
    o.base_url = url;
    if (!o.model)
        o.model = "test-model";
    if (!o.max_connections)
        o.max_connections = 1024;
    mlc_err err;
    cr_assert_eq(mlc_client_new(&o, &tc_cb, &run->c, &err), MLC_OK, "%s", err.msg);
    return run->c;
}

static void submit(tc_run *run, int i, int max_tokens)
{
    tc_req *q = &run->req[i];
    mlc_client_req r = {.prompt = &q->prompt, .max_tokens = max_tokens, .temperature = -1,
                        .user = q};
    mlc_err err;
    q->t_submit = mlc_client_now();
    cr_assert_eq(mlc_client_submit(run->c, &r, &err), MLC_OK, "%s", err.msg);
}

/* Polls until every submitted request has finished (or fails the test after limit_s). */
static void pump(tc_run *run, int until_done, double limit_s)
{
    double end = mlc_client_now() + limit_s;
    while (run->n_done < until_done) {
        cr_assert_lt(mlc_client_now(), end, "only %d of %d requests done after %.1f s",
                     run->n_done, until_done, limit_s);
        mlc_client_poll(run->c, 0.05);
    }
}

static void expect_tokens(const tc_req *q, int n)
{
    char want[2048] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(want + len, sizeof want - len, "tok%d ", i);
    cr_expect_str_eq(q->out, want, "request %d text", q->idx);
    cr_expect_eq(q->r.chunks, n, "request %d chunks", q->idx);
    cr_expect_eq(q->n_tok, n, "request %d on_token calls", q->idx);
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of |v| (v is sorted in place). */
static double pct_abs(double *v, int n, double p)
{
    for (int i = 0; i < n; i++)
        v[i] = fabs(v[i]);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(p / 100.0 * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

typedef struct tc_stats {
    double ttft_med, ttft_p99, itl_med, itl_p99, lag_med, lag_p99; /* ms */
    double transit_med, transit_p99; /* on_sent -> server has the whole request */
    double late_med, late_p99;       /* server hand-off - its schedule (machine noise) */
    double late0_med, late0_p99, lag0_med, lag0_p99; /* the same for first tokens only */
} tc_stats;

static tc_stats timing_stats(tc_run *run, ts_server *s, int first, int n_req, int n_tok,
                             double ttft_ms, double itl_ms)
{
    int n_gap = n_req * (n_tok - 1);
    double *ttft = calloc((size_t)n_req, sizeof *ttft);
    double *itl = calloc((size_t)n_gap, sizeof *itl);
    double *lag = calloc((size_t)(n_req * n_tok), sizeof *lag);
    double *late = calloc((size_t)(n_req * n_tok), sizeof *late);
    double *transit = calloc((size_t)n_req, sizeof *transit);
    double *late0 = calloc((size_t)n_req, sizeof *late0);
    double *lag0 = calloc((size_t)n_req, sizeof *lag0);
    int ng = 0, nl = 0;
    for (int i = 0; i < n_req; i++) {
        tc_req *q = &run->req[first + i];
        cr_assert(q->r.ok, "request %d: %s %s", q->idx, q->r.error_kind, q->r.error);
        cr_assert_eq(q->n_tok, n_tok);
        ttft[i] = (q->t_tok[0] - q->t_sent) * 1e3 - ttft_ms;
        for (int k = 1; k < n_tok; k++)
            itl[ng++] = (q->t_tok[k] - q->t_tok[k - 1]) * 1e3 - itl_ms;
        char prefix[64]; /* the prompt's first word ("r17 ") identifies the request */
        snprintf(prefix, sizeof prefix, "%.*s ", (int)strcspn(q->text, " "), q->text);
        ts_record rec;
        cr_assert(ts_record_find(s, prefix, &rec), "no server record for '%s'", prefix);
        cr_assert_eq(rec.n_token, n_tok);
        transit[i] = (rec.t_request - q->t_sent) * 1e3;
        late0[i] = (rec.t_token[0] - rec.t_request) * 1e3 - ttft_ms;
        lag0[i] = (q->t_tok[0] - rec.t_token[0]) * 1e3;
        for (int k = 0; k < n_tok; k++) {
            late[nl] = (rec.t_token[k] - rec.t_request) * 1e3 - ttft_ms - k * itl_ms;
            lag[nl] = (q->t_tok[k] - rec.t_token[k]) * 1e3;
            cr_expect_geq(lag[nl], -0.001, "client saw token %d before the server sent it", k);
            nl++;
        }
    }
    tc_stats st = {
        pct_abs(ttft, n_req, 50), pct_abs(ttft, n_req, 99), pct_abs(itl, ng, 50),
        pct_abs(itl, ng, 99),     pct_abs(lag, nl, 50),     pct_abs(lag, nl, 99),
        pct_abs(transit, n_req, 50), pct_abs(transit, n_req, 99),
        pct_abs(late, nl, 50),       pct_abs(late, nl, 99),
        pct_abs(late0, n_req, 50),   pct_abs(late0, n_req, 99),
        pct_abs(lag0, n_req, 50),    pct_abs(lag0, n_req, 99),
    };
    free(late0);
    free(lag0);
    free(transit);
    free(late);
    free(ttft);
    free(itl);
    free(lag);
    return st;
}

/* ---- basic requests ---- */

Test(client, completions_request_and_stream)
{
    ts_server *s = ts_start(&(ts_config){0});
    cr_assert_not_null(s);
    tc_run *run = run_new(1, "r%d the quick brown fox");
    client_for(run, base_url(s, ""),
               &(mlc_client_opts){.api_key = "sk-test", .include_usage = true});
    tc_req *q = &run->req[0];
    mlc_client_req r = {.prompt = &q->prompt, .max_tokens = 5, .ignore_eos = true,
                        .temperature = 0.7f, .seed = 12345678901234567890ull,
                        .send_seed = true, .user = q};
    mlc_err err;
    cr_assert_eq(mlc_client_submit(run->c, &r, &err), MLC_OK, "%s", err.msg);
    pump(run, 1, 5);
    cr_assert(q->r.ok, "%s: %s", q->r.error_kind, q->r.error);
    cr_expect_null(q->r.error_kind);
    cr_expect_eq(q->r.http_status, 200);
    expect_tokens(q, 5);
    cr_expect_eq(q->r.usage_prompt, 5);
    cr_expect_eq(q->r.usage_completion, 5);
    cr_expect_str_eq(q->r.finish_reason, "length");
    cr_expect_eq(q->n_sent, 1);
    cr_expect(q->t_submit <= q->t_sent && q->t_sent < q->t_tok[0] && q->t_tok[4] <= q->t_done);

    ts_record rec;
    cr_assert(ts_record_get(s, 0, &rec));
    cr_expect_not(rec.chat);
    cr_expect_str_eq(rec.auth, "Bearer sk-test");
    cr_expect_str_eq(rec.prompt, "r0 the quick brown fox");
    cJSON *j = cJSON_Parse(rec.body);
    cr_assert_not_null(j, "%s", rec.body);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "test-model");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "prompt")->valuestring, "r0 the quick brown fox");
    cr_expect_eq(cJSON_GetObjectItem(j, "max_tokens")->valueint, 5);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    cr_expect(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "ignore_eos")));
    cr_expect_float_eq(cJSON_GetObjectItem(j, "temperature")->valuedouble, 0.7, 1e-12);
    cJSON_Delete(j);
    /* Exact digits: a seed above 2^53 must not go through a double. */
    cr_expect(strstr(rec.body, "\"seed\":12345678901234567890"), "%s", rec.body);
    cr_expect(strstr(rec.body, "\"temperature\":0.7,"), "%s", rec.body);
    run_free(run);
    ts_stop(s);
}

Test(client, optional_fields_are_left_out)
{
    ts_server *s = ts_start(&(ts_config){.n_tokens = 3});
    tc_run *run = run_new(1, "r%d hello");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.model = NULL});
    submit(run, 0, 0);
    pump(run, 1, 5);
    tc_req *q = &run->req[0];
    cr_assert(q->r.ok, "%s", q->r.error);
    /* No include_usage: no usage, marked -1. */
    cr_expect_eq(q->r.usage_prompt, -1);
    cr_expect_eq(q->r.usage_completion, -1);
    ts_record rec;
    cr_assert(ts_record_get(s, 0, &rec));
    cr_expect_str_eq(rec.auth, "");
    cJSON *j = cJSON_Parse(rec.body);
    static const char *const absent[] = {"max_tokens", "stream_options", "ignore_eos",
                                         "temperature", "seed"};
    for (size_t k = 0; k < sizeof absent / sizeof *absent; k++)
        cr_expect_null(cJSON_GetObjectItem(j, absent[k]), "%s sent: %s", absent[k], rec.body);
    cJSON_Delete(j);
    run_free(run);
    ts_stop(s);
}

Test(client, chat_messages_and_text)
{
    ts_server *s = ts_start(&(ts_config){0});
    tc_run *run = run_new(2, "r%d say something nice");
    run->req[0].prompt.messages_json =
        "[{\"role\":\"system\",\"content\":\"r0 you are terse\"},"
        "{\"role\":\"user\",\"content\":\"tell me a story\"}]";
    client_for(run, base_url(s, "/v1"),
               &(mlc_client_opts){.api = MLC_API_CHAT, .include_usage = true});
    submit(run, 0, 4);
    submit(run, 1, 6);
    pump(run, 2, 5);
    for (int i = 0; i < 2; i++)
        cr_assert(run->req[i].r.ok, "%d: %s", i, run->req[i].r.error);
    /* The assistant-role chunk (empty content) is not a token. */
    expect_tokens(&run->req[0], 4);
    expect_tokens(&run->req[1], 6);
    cr_expect_eq(run->req[0].r.usage_prompt, 4 + 4);
    cr_expect_eq(run->req[1].r.usage_prompt, 4);
    cr_expect_eq(run->req[1].r.usage_completion, 6);
    ts_record rec;
    cr_assert(ts_record_find(s, "r1 ", &rec));
    cr_expect(rec.chat);
    cJSON *j = cJSON_Parse(rec.body);
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0);
    cr_expect_str_eq(cJSON_GetObjectItem(m, "role")->valuestring, "user");
    cr_expect_str_eq(cJSON_GetObjectItem(m, "content")->valuestring, "r1 say something nice");
    cr_expect_null(cJSON_GetObjectItem(j, "prompt"));
    cJSON_Delete(j);
    cr_assert(ts_record_find(s, "r0 ", &rec));
    cr_expect(strstr(rec.body, "\"role\":\"system\""), "%s", rec.body);
    run_free(run);
    ts_stop(s);
}

Test(client, chat_reasoning_content_counts_as_tokens)
{
    ts_server *s = ts_start(&(ts_config){.reasoning_tokens = 2});
    tc_run *run = run_new(1, "r%d think first");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.api = MLC_API_CHAT});
    submit(run, 0, 5);
    pump(run, 1, 5);
    cr_assert(run->req[0].r.ok, "%s", run->req[0].r.error);
    expect_tokens(&run->req[0], 5); /* 2 reasoning + 3 content chunks */
    run_free(run);
    ts_stop(s);
}

Test(client, token_id_prompts)
{
    ts_server *s = ts_start(&(ts_config){0});
    tc_run *run = run_new(1, "unused");
    int32_t ids[] = {101, 7, 0, 2147483647, 9000}; /* one digit to ten */
    tc_req *q = &run->req[0];
    q->prompt.text = NULL;
    q->prompt.ids = ids;
    q->prompt.n_ids = 5;
    q->prompt.max_tokens = 3; /* used when the request asks for none */
    client_for(run, base_url(s, "/"), &(mlc_client_opts){.include_usage = true});
    submit(run, 0, 0);
    pump(run, 1, 5);
    cr_assert(q->r.ok, "%s", q->r.error);
    expect_tokens(q, 3);
    cr_expect_eq(q->r.usage_prompt, 5);
    ts_record rec;
    cr_assert(ts_record_get(s, 0, &rec));
    cr_expect(strstr(rec.body, "\"prompt\":[101,7,0,2147483647,9000]"), "%s", rec.body);
    cr_expect(strstr(rec.body, "\"max_tokens\":3"), "%s", rec.body);
    run_free(run);
    ts_stop(s);
}

Test(client, prompts_the_api_cannot_take)
{
    mlc_client *c;
    mlc_err err;
    int32_t ids[] = {1, 2};
    mlc_prompt only_ids = {.ids = ids, .n_ids = 2}, only_msgs = {.messages_json = "[]"},
               bad_msgs = {.messages_json = "{\"role\":"}, empty = {0};
    mlc_client_opts o = {.base_url = "http://127.0.0.1:9", .api = MLC_API_CHAT};
    cr_assert_eq(mlc_client_new(&o, &tc_cb, &c, &err), MLC_OK);
    mlc_client_req r = {.prompt = &only_ids, .temperature = -1};
    cr_expect_eq(mlc_client_submit(c, &r, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "chat"), "%s", err.msg);
    r.prompt = &bad_msgs;
    cr_expect_eq(mlc_client_submit(c, &r, &err), MLC_ERR_FORMAT);
    r.prompt = NULL;
    cr_expect_eq(mlc_client_submit(c, &r, &err), MLC_ERR_ARG);
    mlc_client_free(c);
    o.api = MLC_API_COMPLETIONS;
    cr_assert_eq(mlc_client_new(&o, &tc_cb, &c, &err), MLC_OK);
    r.prompt = &only_msgs; /* messages go as text, but there are none */
    cr_expect_eq(mlc_client_submit(c, &r, &err), MLC_ERR_FORMAT);
    r.prompt = &empty;
    cr_expect_eq(mlc_client_submit(c, &r, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_client_poll(c, 0), 0, "nothing went in flight");
    mlc_client_free(c);
    o.base_url = "";
    cr_expect_eq(mlc_client_new(&o, &tc_cb, &c, &err), MLC_ERR_ARG);
    cr_expect_null(c);
}

Test(client, base_url_forms)
{
    static const char *const forms[] = {"", "/", "/v1", "/v1/", "/v1/completions",
                                        "/v1/chat/completions"};
    ts_server *s = ts_start(&(ts_config){.n_tokens = 2});
    for (int api = 0; api < 2; api++) {
        for (size_t k = 0; k < sizeof forms / sizeof *forms; k++) {
            tc_run *run = run_new(1, "r%d x");
            client_for(run, base_url(s, forms[k]), &(mlc_client_opts){.api = (mlc_api)api});
            submit(run, 0, 0);
            pump(run, 1, 5);
            cr_expect(run->req[0].r.ok, "api %d, base '%s': %s", api, forms[k],
                      run->req[0].r.error);
            run_free(run);
        }
    }
    int n = ts_request_count(s);
    cr_expect_eq(n, 12);
    for (int i = 0; i < n; i++) {
        ts_record rec;
        cr_assert(ts_record_get(s, i, &rec));
        cr_expect_eq(rec.chat, i >= 6, "request %d went to the wrong endpoint", i);
    }
    ts_stop(s);
}

/* ---- faults: the faulty requests fail with the right kind, the others complete ---- */

typedef struct fault_case {
    ts_fault fault;
    int fault_after, fault_bytes;
    const char *kind;         /* expected error_kind; NULL: the fault is tolerated (ok) */
    int chunks;               /* token chunks expected before the failure (-1: don't check) */
    bool usage;               /* tolerated: usage expected */
    size_t max_event;
    double timeout_s;
} fault_case;

static void check_fault(fault_case fc)
{
    enum { N_GOOD = 6, N_BAD = 3, N_TOK = 8 };
    ts_config cfg = {.n_tokens = N_TOK, .itl_ms = 2, .fault = fc.fault,
                     .fault_after = fc.fault_after, .fault_bytes = fc.fault_bytes,
                     .fault_match = "bad"};
    ts_server *s = ts_start(&cfg);
    cr_assert_not_null(s);
    tc_run *run = run_new(N_GOOD + N_BAD, "r%d good prompt");
    for (int i = N_GOOD; i < N_GOOD + N_BAD; i++)
        snprintf(run->req[i].text, sizeof run->req[i].text, "r%d bad prompt", i);
    client_for(run, base_url(s, ""),
               &(mlc_client_opts){.include_usage = true, .timeout_s = fc.timeout_s,
                                  .max_event_bytes = fc.max_event});
    /* Interleaved, so faulty requests are in flight beside good ones. */
    for (int i = 0; i < N_GOOD + N_BAD; i++)
        submit(run, i % 3 == 2 ? N_GOOD + i / 3 : i - i / 3, 0);
    pump(run, N_GOOD + N_BAD, 10);
    for (int i = 0; i < N_GOOD; i++) {
        tc_req *q = &run->req[i];
        cr_expect(q->r.ok, "good request %d: %s %s", i, q->r.error_kind, q->r.error);
        expect_tokens(q, N_TOK);
        cr_expect_eq(q->r.usage_completion, N_TOK);
    }
    for (int i = N_GOOD; i < N_GOOD + N_BAD; i++) {
        tc_req *q = &run->req[i];
        if (!fc.kind) {
            cr_expect(q->r.ok, "tolerated fault, request %d: %s %s", i, q->r.error_kind,
                      q->r.error);
            expect_tokens(q, N_TOK);
            cr_expect_eq(q->r.usage_completion, fc.usage ? N_TOK : -1);
            cr_expect_eq(q->r.usage_prompt, fc.usage ? 3 : -1);
            continue;
        }
        cr_expect_not(q->r.ok, "request %d should fail", i);
        cr_expect_str_eq(q->r.error_kind ? q->r.error_kind : "(null)", fc.kind, "request %d: %s",
                         i, q->r.error);
        cr_expect(q->r.error[0], "a failure has a message");
        if (fc.chunks >= 0)
            cr_expect_eq(q->r.chunks, fc.chunks, "request %d: %s", i, q->r.error);
    }
    run_free(run);
    ts_stop(s);
}

Test(client, fault_http_429)
{
    ts_server *s = ts_start(&(ts_config){.fault = TS_FAULT_HTTP_429});
    tc_run *run = run_new(1, "r%d x");
    client_for(run, base_url(s, ""), NULL);
    submit(run, 0, 0);
    pump(run, 1, 5);
    tc_req *q = &run->req[0];
    cr_expect_not(q->r.ok);
    cr_expect_str_eq(q->r.error_kind, MLC_FAIL_HTTP);
    cr_expect_eq(q->r.http_status, 429);
    /* The server's own message (error.message of the OpenAI error body), and where. */
    cr_expect_str_eq(q->r.error, "rate limited (test fault)");
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", ts_port(s));
    cr_expect_str_eq(q->r.url ? q->r.url : "(null)", url);
    run_free(run);
    ts_stop(s);
    check_fault((fault_case){.fault = TS_FAULT_HTTP_429, .kind = MLC_FAIL_HTTP, .chunks = 0});
}

Test(client, fault_html_page_is_not_sse)
{
    check_fault((fault_case){.fault = TS_FAULT_HTML_200, .kind = MLC_FAIL_NOT_SSE, .chunks = 0});
    check_fault((fault_case){.fault = TS_FAULT_HTML_NO_TYPE, .kind = MLC_FAIL_NOT_SSE, .chunks = 0});
    ts_server *s = ts_start(&(ts_config){.fault = TS_FAULT_HTML_200});
    tc_run *run = run_new(1, "r%d x");
    client_for(run, base_url(s, ""), NULL);
    submit(run, 0, 0);
    pump(run, 1, 5);
    tc_req *q = &run->req[0];
    cr_expect_eq(q->r.http_status, 200);
    cr_expect(strstr(q->r.error, "not an SSE stream (Content-Type text/html") && strstr(q->r.error, "<!DOCTYPE html>"),
              "%s", q->r.error);
    cr_expect_null(strchr(q->r.error, '\n'), "one line: %s", q->r.error);
    run_free(run);
    ts_stop(s);
}

/* Valid SSE and JSON in another shape: complete by the protocol, but no token and every
 * event counted, so the caller can say what happened. */
Test(client, wrong_json_shape_counts_events)
{
    ts_server *s = ts_start(&(ts_config){.n_tokens = 4, .fault = TS_FAULT_WRONG_SHAPE});
    tc_run *run = run_new(1, "r%d x");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.include_usage = true});
    submit(run, 0, 0);
    pump(run, 1, 5);
    tc_req *q = &run->req[0];
    cr_expect(q->r.ok, "%s", q->r.error);
    cr_expect_eq(q->r.chunks, 0);
    cr_expect_eq(q->r.events, 5, "4 token events and the usage event");
    run_free(run);
    ts_stop(s);
}

/* Chat messages sent to /v1/completions become one text prompt. */
Test(client, messages_to_completions_as_text)
{
    ts_server *s = ts_start(&(ts_config){.n_tokens = 2});
    tc_run *run = run_new(1, "unused");
    client_for(run, base_url(s, ""), NULL);
    tc_req *q = &run->req[0];
    q->prompt = (mlc_prompt){.messages_json = "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                              "{\"role\":\"user\",\"content\":\"Hi there\"}]"};
    mlc_client_req r = {.prompt = &q->prompt, .temperature = -1, .user = q};
    mlc_err err;
    cr_assert_eq(mlc_client_submit(run->c, &r, &err), MLC_OK, "%s", err.msg);
    pump(run, 1, 5);
    cr_expect(q->r.ok, "%s %s", q->r.error_kind, q->r.error);
    ts_record rec;
    cr_assert(ts_record_get(s, 0, &rec));
    cr_expect_not(rec.chat);
    cJSON *j = cJSON_Parse(rec.body);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "prompt")->valuestring, "system: Be brief.\nuser: Hi there\nassistant:");
    cJSON_Delete(j);
    run_free(run);
    ts_stop(s);
}

Test(client, fault_http_500)
{
    check_fault((fault_case){.fault = TS_FAULT_HTTP_500, .kind = MLC_FAIL_HTTP, .chunks = 0});
}

Test(client, fault_disconnect_mid_stream)
{
    check_fault((fault_case){.fault = TS_FAULT_DISCONNECT, .fault_after = 3,
                             .kind = MLC_FAIL_DISCONNECT, .chunks = 3});
}

Test(client, fault_disconnect_before_first_token)
{
    check_fault((fault_case){.fault = TS_FAULT_DISCONNECT, .fault_after = 0,
                             .kind = MLC_FAIL_DISCONNECT, .chunks = 0});
}

Test(client, fault_stall_times_out)
{
    check_fault((fault_case){.fault = TS_FAULT_STALL, .fault_after = 2,
                             .kind = MLC_FAIL_TIMEOUT, .chunks = 2, .timeout_s = 0.4});
}

Test(client, fault_no_answer_times_out)
{
    check_fault((fault_case){.fault = TS_FAULT_NO_ANSWER, .kind = MLC_FAIL_TIMEOUT,
                             .chunks = 0, .timeout_s = 0.4});
}

Test(client, fault_invalid_json_is_protocol)
{
    check_fault((fault_case){.fault = TS_FAULT_INVALID_JSON, .fault_after = 4,
                             .kind = MLC_FAIL_PROTOCOL, .chunks = 4});
}

Test(client, fault_oversized_event_is_protocol)
{
    check_fault((fault_case){.fault = TS_FAULT_OVERSIZED, .fault_after = 1,
                             .fault_bytes = 64 << 10, .max_event = 16 << 10,
                             .kind = MLC_FAIL_PROTOCOL, .chunks = 1});
    /* And with the default limit (1 MiB) against the server's default 2 MiB event. */
    check_fault((fault_case){.fault = TS_FAULT_OVERSIZED, .fault_after = 5,
                             .kind = MLC_FAIL_PROTOCOL, .chunks = 5});
}

/* vLLM reports an engine failure inside the 200 stream, then sends [DONE]: a failure. */
Test(client, fault_error_event_in_stream)
{
    check_fault((fault_case){.fault = TS_FAULT_STREAM_ERROR, .fault_after = 3,
                             .kind = MLC_FAIL_HTTP, .chunks = 3});
    ts_server *s = ts_start(&(ts_config){.n_tokens = 5, .fault = TS_FAULT_STREAM_ERROR,
                                         .fault_after = 2});
    tc_run *run = run_new(1, "r%d x");
    client_for(run, base_url(s, ""), NULL);
    submit(run, 0, 0);
    pump(run, 1, 5);
    cr_expect_str_eq(run->req[0].r.error, "error in stream: engine died (test fault)");
    run_free(run);
    ts_stop(s);
}

/* Lines that are not SSE fields are ignored by the spec (WHATWG: unknown field names and
 * lines without a colon are fields to ignore), so a garbage line costs nothing. */
Test(client, fault_garbage_lines_are_ignored)
{
    check_fault((fault_case){.fault = TS_FAULT_MALFORMED_SSE, .fault_after = 2, .usage = true});
}

Test(client, fault_no_usage_gives_minus_one)
{
    check_fault((fault_case){.fault = TS_FAULT_NO_USAGE, .usage = false});
}

Test(client, stream_variants_parse_the_same)
{
    check_fault((fault_case){.fault = TS_FAULT_COMMENTS, .usage = true});
    check_fault((fault_case){.fault = TS_FAULT_MULTILINE, .usage = true});
    check_fault((fault_case){.fault = TS_FAULT_CRLF, .usage = true});
    check_fault((fault_case){.fault = TS_FAULT_CR, .usage = true});
}

Test(client, connection_refused)
{
    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    tc_run *run = run_new(2, "r%d x");
    client_for(run, url, NULL);
    submit(run, 0, 0);
    submit(run, 1, 0);
    pump(run, 2, 5);
    for (int i = 0; i < 2; i++) {
        cr_expect_not(run->req[i].r.ok);
        cr_expect_str_eq(run->req[i].r.error_kind, MLC_FAIL_CONNECT, "%s", run->req[i].r.error);
        cr_expect_eq(run->req[i].n_sent, 0, "nothing was sent");
    }
    run_free(run);
}

Test(client, timeout_is_the_whole_request, .timeout = 60)
{
    /* Tokens keep coming every 10 ms for 10 s; the timeout is 1 s. A whole-request timeout
     * ends it mid-stream; an idle or first-byte timeout never fires (no gap comes near 1 s)
     * and the request would complete. The bounds leave seconds to the scheduler: a timeout
     * is never early, and ends the request well before the stream's natural end. */
    enum { N = 1000 };
    const double itl_ms = 10, timeout_s = 1.0;
    ts_server *s = ts_start(&(ts_config){.n_tokens = N, .itl_ms = itl_ms});
    tc_run *run = run_new(1, "r%d x");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.timeout_s = timeout_s});
    submit(run, 0, 0);
    pump(run, 1, 30);
    tc_req *q = &run->req[0];
    cr_expect_str_eq(q->r.error_kind, MLC_FAIL_TIMEOUT, "%s", q->r.error);
    double took = q->t_done - q->t_submit;
    cr_expect(took >= timeout_s - 0.01, "timed out early, after %.3f s", took);
    cr_expect(took < N * itl_ms * 1e-3 / 2, "timed out after %.3f s, not near %.1f s", took,
              timeout_s);
    /* It cut a flowing stream: tokens had arrived, and not all of them. */
    cr_expect(q->r.chunks >= 2 && q->r.chunks < N, "%lld chunks", (long long)q->r.chunks);
    run_free(run);
    ts_stop(s);
}

Test(client, keep_alive_reuses_connections)
{
    ts_server *s = ts_start(&(ts_config){.n_tokens = 3});
    tc_run *run = run_new(16, "r%d x");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.max_connections = 4});
    /* Sequential: one connection for all. */
    for (int i = 0; i < 8; i++) {
        submit(run, i, 0);
        pump(run, i + 1, 5);
        cr_expect(run->req[i].r.ok, "%s", run->req[i].r.error);
    }
    cr_expect_eq(ts_connection_count(s), 1);
    /* Two waves of 4: four connections, opened once. */
    for (int w = 0; w < 2; w++) {
        for (int i = 8 + 4 * w; i < 12 + 4 * w; i++)
            submit(run, i, 0);
        pump(run, 12 + 4 * w, 5);
    }
    cr_expect_eq(ts_request_count(s), 16);
    cr_expect_leq(ts_connection_count(s), 4);
    run_free(run);
    ts_stop(s);
}

Test(client, host_limit_queues_requests)
{
    /* max_connections 2 with 6 requests: never more than 2 connections; all complete. */
    ts_server *s = ts_start(&(ts_config){.n_tokens = 4, .itl_ms = 5});
    tc_run *run = run_new(6, "r%d x");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.max_connections = 2});
    for (int i = 0; i < 6; i++)
        submit(run, i, 0);
    pump(run, 6, 5);
    for (int i = 0; i < 6; i++)
        cr_expect(run->req[i].r.ok, "%s", run->req[i].r.error);
    cr_expect_leq(ts_connection_count(s), 2);
    run_free(run);
    ts_stop(s);
}

Test(client, cancel_all)
{
    ts_server *s = ts_start(&(ts_config){.n_tokens = 4, .fault = TS_FAULT_STALL,
                                         .fault_after = 1, .fault_match = "stall"});
    tc_run *run = run_new(4, "r%d stall");
    snprintf(run->req[3].text, sizeof run->req[3].text, "r3 fine");
    client_for(run, base_url(s, ""), NULL);
    for (int i = 0; i < 3; i++)
        submit(run, i, 0);
    double end = mlc_client_now() + 5;
    while (mlc_client_now() < end) {
        mlc_client_poll(run->c, 0.01);
        int got = 0;
        for (int i = 0; i < 3; i++)
            got += run->req[i].n_tok;
        if (got == 3)
            break;
    }
    run->refill = &run->req[3]; /* the first on_done submits this one: it must survive */
    mlc_client_cancel_all(run->c);
    cr_expect_eq(run->n_done, 3);
    for (int i = 0; i < 3; i++) {
        cr_expect_not(run->req[i].r.ok);
        cr_expect_str_eq(run->req[i].r.error_kind, MLC_FAIL_CANCELLED);
        cr_expect_eq(run->req[i].r.chunks, 1);
    }
    pump(run, 4, 5);
    cr_expect(run->req[3].r.ok, "%s", run->req[3].r.error);
    cr_expect_eq(mlc_client_poll(run->c, 0), 0);
    run_free(run);
    ts_stop(s);
}

/* ---- timing ---- */

static void log_stats(const char *what, int attempt, const tc_stats *st)
{
    cr_log_info("%s, attempt %d: |TTFT err| med %.3f p99 %.3f; |ITL err| med %.3f p99 %.3f; "
                "client lag med %.3f p99 %.3f; request transit med %.3f p99 %.3f; server "
                "lateness med %.3f p99 %.3f; first token: server lateness med %.3f p99 "
                "%.3f, client lag med %.3f p99 %.3f (ms)",
                what, attempt, st->ttft_med, st->ttft_p99, st->itl_med, st->itl_p99,
                st->lag_med, st->lag_p99, st->transit_med, st->transit_p99, st->late_med,
                st->late_p99, st->late0_med, st->late0_p99, st->lag0_med, st->lag0_p99);
}

static bool within(const tc_stats *st, double bound_ms)
{
    return st->ttft_med <= bound_ms && st->ttft_p99 <= bound_ms && st->itl_med <= bound_ms &&
           st->itl_p99 <= bound_ms && st->lag_p99 <= bound_ms;
}

/* Sequential requests on one connection. */
static tc_stats timing_one(void)
{
    const double ttft = 50, itl = 20;
    enum { N = 8, T = 8 };
    ts_server *s = ts_start(&(ts_config){.n_tokens = T, .ttft_ms = ttft, .itl_ms = itl});
    cr_assert_not_null(s);
    tc_run *run = run_new(N + 1, "r%d timing one stream");
    client_for(run, base_url(s, ""), NULL);
    /* One request first: connection, server thread and page faults are set up. */
    for (int i = 0; i <= N; i++) {
        submit(run, i, 0);
        pump(run, i + 1, 5);
    }
    tc_stats st = timing_stats(run, s, 1, N, T, ttft, itl);
    run_free(run);
    ts_stop(s);
    return st;
}

/* 256 concurrent streams. Requests start spread over one ITL period, as a closed loop's
 * requests are once running: 256 streams all waking in the same microsecond would measure
 * the burst (a queue any client and any server has), not the client's accuracy. The server
 * sends headers at once (as vLLM does), which also checks that headers arriving 50 ms
 * before the first token do not count as it; and it keeps the first token on the same
 * server path as the others (held headers add a second hand-off inside libmicrohttpd,
 * which on a busy 2-core machine shows up as ms of extra first-token latency). */
static tc_stats timing_many(int n)
{
    const double ttft = 50, itl = 20;
    enum { T = 12 };
    ts_server *s = ts_start(&(ts_config){.ttft_ms = ttft, .itl_ms = itl, .early_headers = true});
    cr_assert_not_null(s);
    tc_run *run = run_new(2 * n, "r%d timing many");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.max_connections = n});
    /* Warm-up wave: opens the n connections (and server threads) that the measured wave
     * reuses, so connection setup is not in the numbers (it is not in TTFT anyway: on_sent
     * comes after it). */
    for (int i = 0; i < n; i++)
        submit(run, i, 1);
    pump(run, n, 20);
    /* Nothing arrives while the requests go out (ttft > itl), so the test may sleep
     * between submissions: finer than the millisecond of mlc_client_poll's epoll wait. */
    double t0 = mlc_client_now();
    for (int i = 0; i < n; i++) {
        double at = t0 + itl * 1e-3 * i / n;
        struct timespec ts = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        submit(run, n + i, T);
        mlc_client_poll(run->c, 0); /* sends it now */
    }
    pump(run, 2 * n, 20);
    cr_expect_eq(ts_connection_count(s), n, "the measured wave reused the connections");
    tc_stats st = timing_stats(run, s, n, n, T, ttft, itl);
    run_free(run);
    ts_stop(s);
    return st;
}

/* The server shares the machine (and the process) with the client, and `make test` runs
 * other test processes beside this one, so any single run can catch the machine busy: a
 * few-millisecond preemption of either side lands in the p99. Systematic client errors
 * (a timestamp taken after parsing, per-event work that grows with the number of streams,
 * on_sent at the wrong moment) move the medians; preemptions move only the tails. So:
 *   - pass when one of up to 5 attempts has medians and p99s within the bound;
 *   - fail when no attempt even has its medians within the bound (a client defect);
 *   - otherwise (medians fine, tails never) skip, naming the server's own lateness as
 *     evidence of a busy machine; MLC_REQUIRE_TIMING=1 turns that into a failure. */
static void check_timing(const char *what, tc_stats (*measure)(void), double bound_ms)
{
    bool medians_ok = false;
    double worst_late = 0;
    for (int attempt = 1; attempt <= 5; attempt++) {
        if (attempt > 1) /* let a burst of other work pass */
            nanosleep(&(struct timespec){0, 200000000L}, NULL);
        tc_stats st = measure();
        log_stats(what, attempt, &st);
        if (within(&st, bound_ms))
            return;
        medians_ok = medians_ok || (st.ttft_med <= bound_ms && st.itl_med <= bound_ms &&
                                    st.lag_med <= bound_ms);
        worst_late = fmax(worst_late, fmax(st.late_p99, st.late0_p99));
    }
    const char *req = getenv("MLC_REQUIRE_TIMING");
    if (medians_ok && !(req && !strcmp(req, "1")))
        cr_skip_test("%s: medians within %.1f ms but p99 above it in every attempt; the "
                     "machine is busy (the server itself ran up to %.2f ms late at p99)",
                     what, bound_ms, worst_late);
    cr_assert_fail("%s: TTFT/ITL error or client lag above %.1f ms in every attempt%s", what,
                   bound_ms, medians_ok ? "" : ", medians included");
}

Test(client, timing_one_stream, .timeout = 60)
{
    check_timing("1 stream", timing_one, 1.0 * TC_SLACK);
}

static tc_stats timing_256(void)
{
    return timing_many(256);
}

Test(client, timing_256_streams, .timeout = 60)
{
    check_timing("256 streams", timing_256, 2.0 * TC_SLACK);
}

/* CPU per token at high concurrency: 256 streams x 100 tokens as fast as the server can
 * send them. Measured on this thread only (RUSAGE_THREAD), so the server's threads in the
 * same process do not count. The bound is loose: it catches an O(streams) cost per event,
 * which would be ~100x this. */
Test(client, cpu_per_token, .timeout = 60)
{
    enum { N = 256, T = 100 };
    ts_server *s = ts_start(&(ts_config){.n_tokens = T});
    tc_run *run = run_new(N, "r%d cpu per token");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.max_connections = N,
                                                        .include_usage = true});
    struct rusage r0, r1;
    getrusage(RUSAGE_THREAD, &r0);
    double w0 = mlc_client_now();
    for (int i = 0; i < N; i++)
        submit(run, i, 0);
    pump(run, N, 50);
    double wall = mlc_client_now() - w0;
    getrusage(RUSAGE_THREAD, &r1);
    double user = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e6 +
                  (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec);
    double sys = (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e6 +
                 (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
    long tokens = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(run->req[i].r.ok, "%s", run->req[i].r.error);
        tokens += run->req[i].n_tok;
    }
    cr_assert_eq(tokens, (long)N * T);
    double per = (user + sys) / (double)tokens;
    cr_log_info("%d streams x %d tokens: client CPU %.2f us/token (user %.2f, sys %.2f), "
                "wall %.3f s, %.0f tokens/s",
                N, T, per, user / tokens, sys / tokens, wall, tokens / wall);
    cr_expect_lt(per, 50.0 * TC_SLACK, "client CPU %.2f us per token", per);
    run_free(run);
    ts_stop(s);
}

/* 1024 concurrent streams in one thread: all complete, tokens and usage exact. */
Test(client, scale_1024_streams, .timeout = 60)
{
    enum { N = 1024, T = 20 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 3 * N) {
        /* Both ends of every connection live in this process. */
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4 * N ? 4 * N : rl.rlim_max;
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 3 * N)
            cr_skip_test("needs %d open files, the limit is %llu", 3 * N,
                         (unsigned long long)rl.rlim_cur);
    }
    ts_server *s = ts_start(&(ts_config){.n_tokens = T, .itl_ms = 5});
    tc_run *run = run_new(N, "r%d scale");
    client_for(run, base_url(s, ""), &(mlc_client_opts){.max_connections = N,
                                                        .include_usage = true});
    for (int i = 0; i < N; i++)
        submit(run, i, 0);
    pump(run, N, 50);
    for (int i = 0; i < N; i++) {
        cr_assert(run->req[i].r.ok, "%d: %s", i, run->req[i].r.error);
        cr_assert_eq(run->req[i].n_tok, T);
        cr_assert_eq(run->req[i].r.usage_completion, T);
    }
    run_free(run);
    ts_stop(s);
}
