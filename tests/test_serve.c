/* test_serve.c: `mlc-bench serve` end to end: the binary started on a free port (--port 0),
 * spoken to with libcurl: OpenAI shapes, streaming, usage, stop strings, every error status,
 * metrics, client disconnect, SIGTERM drain, greedy tokens equal to `generate`, and
 * `mlc-bench run --endpoint` against it. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/openai.h"
#include "../bench/serve_metrics.h"
#include "util.h"

typedef struct srv {
    pid_t pid;
    int port;
} srv;

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static srv start(const char *args)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 %s", tu_bin(), args);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* Dies with the test, and holds none of the runner's descriptors. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd[1], 1);
        for (int i = 3; i < 1024; i++)
            close(i);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[512] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "serve did not start: %s", cmd);
    fclose(f);
    const char *p = strstr(line, "127.0.0.1:");
    cr_assert_not_null(p, "%s", line);
    return (srv){pid, atoi(p + 10)};
}

static void stop(srv s)
{
    int st;
    kill(s.pid, SIGTERM);
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "serve exit status %d", st);
}

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
    char **buf = u;
    size_t old = *buf ? strlen(*buf) : 0;
    char *nb = realloc(*buf, old + sz * n + 1);
    cr_assert_not_null(nb);
    memcpy(nb + old, p, sz * n);
    nb[old + sz * n] = 0;
    *buf = nb;
    return sz * n;
}

/* body NULL: GET. Returns the response body (malloc'd); *code the status. */
static char *http(int port, const char *path, const char *body, const char *auth, long *code)
{
    CURL *c = curl_easy_init();
    char url[256], *out = calloc(1, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth)
        h = curl_slist_append(h, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "%s", url);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out;
}

static cJSON *post_json(int port, const char *path, const char *body, long want)
{
    long code;
    char *out = http(port, path, body, NULL, &code);
    cr_assert_eq(code, want, "%s %s -> %ld %s", path, body, code, out);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "%s", out);
    free(out);
    return j;
}

static double jnum(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *v = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(v, atoi(k)) : cJSON_GetObjectItem(v, k);
    cr_assert(cJSON_IsNumber(v), "no number at %s", path);
    return v->valuedouble;
}

static const char *jstr(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *v = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(v, atoi(k)) : cJSON_GetObjectItem(v, k);
    cr_assert(cJSON_IsString(v), "no string at %s", path);
    return v->valuestring;
}

static void expect_error(int port, const char *path, const char *body, const char *auth,
                         long want, const char *param)
{
    long code;
    char *out = http(port, path, body, auth, &code);
    cr_expect_eq(code, want, "%s %s -> %ld %s", path, body ? body : "(GET)", code, out);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "%s", out);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")), "%s", out);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")), "%s", out);
    if (param)
        cr_expect_str_eq(jstr(j, "error.param"), param, "%s", out);
    cJSON_Delete(j);
    free(out);
}

/* A metric's value from /metrics, -1 when absent. */
static double metric(int port, const char *name)
{
    long code;
    char *out = http(port, "/metrics", NULL, NULL, &code), *p = out;
    cr_assert_eq(code, 200);
    double v = -1;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == out || p[-1] == '\n') && p[n] == ' ') {
            v = atof(p + n + 1);
            break;
        }
        p += n;
    }
    free(out);
    return v;
}

Test(serve, null_engine_shapes, .timeout = 60)
{
    srv s = start("--engine null --ttft-ms 5 --itl-ms 1");
    long code;
    char *out = http(s.port, "/health", NULL, NULL, &code);
    cr_expect_eq(code, 200);
    free(out);
    cJSON *j = post_json(s.port, "/v1/models", NULL, 200);
    cr_expect_str_eq(jstr(j, "data.0.id"), "null");
    cJSON_Delete(j);

    j = post_json(s.port, "/v1/completions", "{\"model\":\"null\",\"prompt\":\"a b c\",\"max_tokens\":4}", 200);
    cr_expect_str_eq(jstr(j, "object"), "text_completion");
    cr_expect_str_eq(jstr(j, "choices.0.text"), "tok0 tok1 tok2 tok3 ");
    cr_expect_str_eq(jstr(j, "choices.0.finish_reason"), "length");
    cr_expect_eq(jnum(j, "usage.prompt_tokens"), 3);
    cr_expect_eq(jnum(j, "usage.completion_tokens"), 4);
    cr_expect_eq(jnum(j, "usage.total_tokens"), 7);
    cJSON_Delete(j);

    j = post_json(s.port, "/v1/completions", "{\"prompt\":[5,6],\"max_tokens\":9,\"stop\":[\"xx\",\"tok3\"]}", 200);
    cr_expect_str_eq(jstr(j, "choices.0.text"), "tok0 tok1 tok2 ");
    cr_expect_str_eq(jstr(j, "choices.0.finish_reason"), "stop");
    cr_expect_eq(jnum(j, "usage.prompt_tokens"), 2);
    cJSON_Delete(j);

    j = post_json(s.port, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}", 200);
    cr_expect_str_eq(jstr(j, "object"), "chat.completion");
    cr_expect_str_eq(jstr(j, "choices.0.message.role"), "assistant");
    cr_expect_str_eq(jstr(j, "choices.0.message.content"), "tok0 tok1 ");
    cr_expect_eq(jnum(j, "usage.completion_tokens"), 2);
    cJSON_Delete(j);

    /* Streaming: one chunk per token, a finish chunk, a usage chunk, [DONE]. */
    out = http(s.port, "/v1/completions",
               "{\"prompt\":\"x\",\"max_tokens\":5,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
               NULL, &code);
    cr_expect_eq(code, 200);
    int n = 0, usage = 0;
    char text[256] = "";
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cr_assert(!strncmp(l, "data: ", 6), "%s", l);
        if (!strcmp(l + 6, "[DONE]")) {
            n = -n - 100;
            continue;
        }
        cJSON *c = cJSON_Parse(l + 6);
        cr_assert_not_null(c, "%s", l);
        const cJSON *u = cJSON_GetObjectItem(c, "usage");
        if (u) {
            usage = (int)jnum(c, "usage.completion_tokens");
        } else {
            strncat(text, jstr(c, "choices.0.text"), sizeof text - strlen(text) - 1);
            n++;
        }
        cJSON_Delete(c);
    }
    cr_expect_eq(n, -(6 + 100), "5 token chunks + finish, then [DONE] last");
    cr_expect_eq(usage, 5);
    cr_expect_str_eq(text, "tok0 tok1 tok2 tok3 tok4 ");
    free(out);

    /* Streaming stop string held back across events: one event per token whatever the
     * timing, so "tok2 " goes out as "tok" (its "2 " may start the stop string) and tok3
     * completes the stop, which ends the stream with nothing more. */
    out = http(s.port, "/v1/chat/completions",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":9,\"stream\":true,\"stop\":\"2 tok\"}",
               NULL, &code);
    cr_expect(strstr(out, "\"finish_reason\":\"stop\"") != NULL, "%s", out);
    cr_expect(strstr(out, "tok2") == NULL, "%s", out);
    cr_expect(strstr(out, "\"content\":\"tok1 \"}") != NULL, "%s", out);
    cr_expect(strstr(out, "\"content\":\"tok\"}") != NULL, "%s", out);
    free(out);

    cr_expect_eq(metric(s.port, "mlc_requests_in_flight"), 0);
    cr_expect_geq(metric(s.port, "mlc_generation_tokens_total"), 15);
    cr_expect_geq(metric(s.port, "mlc_requests_total{status=\"200\"}"), 6);
    out = http(s.port, "/metrics", NULL, NULL, &code);
    cr_expect(strstr(out, "mlc_requests_total{status=\"200\"} ") != NULL);
    cr_expect(strstr(out, "mlc_time_to_first_token_seconds_bucket") != NULL);
    cr_expect(strstr(out, "mlc_inter_token_latency_seconds_count") != NULL);
    cr_expect(strstr(out, "mlc_batch_size_tokens_sum") != NULL);
    free(out);
    stop(s);
}

/* The events of an SSE reply: content events (non-empty text), events with a finish_reason,
 * usage events, [DONE] (and events after it); the content concatenated into text. */
typedef struct sse_tally {
    int content, finish, usage, done, after_done;
    char *text; /* malloc'd */
} sse_tally;

static sse_tally tally_sse(const char *body, bool chat)
{
    sse_tally t = {.text = calloc(1, 1)};
    size_t len = 0;
    for (const char *p = body; *p;) {
        const char *end = strstr(p, "\n\n");
        cr_assert_not_null(end, "unterminated event: %s", p);
        cr_assert(!strncmp(p, "data: ", 6), "not a data event: %.*s", (int)(end - p), p);
        const char *data = p + 6;
        size_t n = (size_t)(end - data);
        p = end + 2;
        t.after_done += t.done > 0;
        if (n == 6 && !memcmp(data, "[DONE]", 6)) {
            t.done++;
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(data, n);
        cr_assert_not_null(j, "%.*s", (int)n, data);
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const cJSON *txt = chat ? cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "content")
                                : cJSON_GetObjectItem(c0, "text");
        t.usage += cJSON_GetObjectItem(j, "usage") != NULL;
        t.finish += cJSON_IsString(cJSON_GetObjectItem(c0, "finish_reason"));
        if (cJSON_IsString(txt) && txt->valuestring[0]) {
            size_t k = strlen(txt->valuestring);
            char *nt = realloc(t.text, len + k + 1);
            cr_assert_not_null(nt);
            memcpy(nt + len, txt->valuestring, k + 1);
            t.text = nt;
            len += k;
            t.content++;
        }
        cJSON_Delete(j);
    }
    return t;
}

/* Streams body (with stream and include_usage added) and checks the frame: one finish event,
 * one usage event with n_tokens completion tokens, [DONE] last. */
static sse_tally stream_tally(int port, const char *path, const char *body, int n_tokens)
{
    char req[1024];
    snprintf(req, sizeof req, "%.*s,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             (int)strlen(body) - 1, body);
    long code;
    char *out = http(port, path, req, NULL, &code);
    cr_assert_eq(code, 200, "%s", out);
    sse_tally t = tally_sse(out, strstr(path, "chat") != NULL);
    cr_expect_eq(t.finish, 1, "%s", out);
    cr_expect_eq(t.usage, 1, "%s", out);
    cr_expect_eq(t.done, 1, "%s", out);
    cr_expect_eq(t.after_done, 0, "%s", out);
    cr_expect(strstr(out, "\"completion_tokens\":") && atoi(strstr(out, "\"completion_tokens\":") + 20) == n_tokens,
              "%s", out);
    free(out);
    return t;
}

/* The null engine with no pacing makes all 40 tokens at once: the stream still sends each in
 * its own event (a client times events, so a batch of tokens in one event reads as zero
 * inter-token gaps), and the events add up to the non-streamed text. */
Test(serve_stream, one_event_per_token_null_engine, .timeout = 60)
{
    srv s = start("--engine null --ttft-ms 0 --itl-ms 0");
    const char *paths[2] = {"/v1/completions", "/v1/chat/completions"};
    const char *bodies[2] = {"{\"prompt\":\"a b\",\"max_tokens\":40}",
                             "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":40}"};
    for (int k = 0; k < 2; k++) {
        cJSON *j = post_json(s.port, paths[k], bodies[k], 200);
        const char *want = jstr(j, k ? "choices.0.message.content" : "choices.0.text");
        cr_expect_eq(jnum(j, "usage.completion_tokens"), 40);
        for (int rep = 0; rep < 3; rep++) {
            sse_tally t = stream_tally(s.port, paths[k], bodies[k], 40);
            cr_expect_eq(t.content, 40, "%s: 40 tokens in %d content events", paths[k], t.content);
            cr_expect_str_eq(t.text, want, "%s", paths[k]);
            free(t.text);
        }
        cJSON_Delete(j);
    }
    stop(s);
}

/* Length of the prefix of p[0, n) that does not end inside a multi-byte UTF-8 character
 * (decoding forward; bytes that cannot start a character count as one). */
static size_t utf8_whole(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 && c < 0xE0 ? 2 : 1;
        size_t k = 1;
        while (k < need && i + k < n && (p[i + k] & 0xC0) == 0x80)
            k++;
        if (k < need && i + k == n)
            return i;
        i += k;
    }
    return n;
}

/* The content events of a per-token stream of these pieces: one per token, except a token
 * that leaves a character incomplete (its bytes go with the next event). */
static int events_for_pieces(const cJSON *pieces)
{
    unsigned char text[16384];
    size_t len = 0, sent = 0;
    int events = 0, i = 0, n = cJSON_GetArraySize(pieces);
    const cJSON *p;
    cJSON_ArrayForEach(p, pieces) {
        size_t k = strlen(p->valuestring);
        cr_assert_lt(len + k, sizeof text);
        memcpy(text + len, p->valuestring, k);
        len += k;
        size_t ok = ++i == n ? len : utf8_whole(text, len);
        if (ok > sent) {
            events++;
            sent = ok;
        }
    }
    return events;
}

/* What a stream may send before the next token: not the first bytes of a character. */
Test(serve_stream, utf8_whole_holds_back_split_characters)
{
    static const struct { const char *s; size_t want; } cases[] = {
        {"", 0}, {"abc", 3}, {"a\xC3", 1}, {"a\xC3\xA9", 3}, {"\xE2\x9C", 0}, {"\xE2\x9C\x85", 3},
        {"x\xF0\x9F\x98", 1}, {"x\xF0\x9F\x98\x80", 5}, {"\xD0\xB8\x90", 3}, {"a\x90", 2},
        {"\x80\x80\x80\x80", 4}, {"\xFF", 1}, {"\xC3\xA9\xE2", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(mlc_openai_utf8_whole(cases[i].s, strlen(cases[i].s)), cases[i].want,
                     "case %zu", i);
}

Test(serve_stream, one_event_per_token_real_engine, .timeout = 120)
{
    char model[1024], args[1200];
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    snprintf(args, sizeof args, "-m %s -t 1 --parallel 2", model);
    srv s = start(args);
    const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"ignore_eos\":true}";
    cJSON *j = post_json(s.port, "/v1/completions",
                         "{\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,"
                         "\"ignore_eos\":true,\"logprobs\":0}", 200);
    cr_assert_eq(jnum(j, "usage.completion_tokens"), 40);
    const cJSON *pieces = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs"), "tokens");
    cr_assert_eq(cJSON_GetArraySize(pieces), 40);
    int want_events = events_for_pieces(pieces);
    cr_expect_geq(want_events, 36, "the golden output has few split characters");
    for (int rep = 0; rep < 2; rep++) {
        sse_tally t = stream_tally(s.port, "/v1/completions", body, 40);
        cr_expect_eq(t.content, want_events, "40 tokens in %d content events (want %d)", t.content, want_events);
        cr_expect_str_eq(t.text, jstr(j, "choices.0.text"));
        free(t.text);
    }
    cJSON_Delete(j);
    stop(s);
}

Test(serve, error_statuses, .timeout = 60)
{
    setenv("MLC_TEST_SERVE_KEY", "sekret", 1);
    srv s = start("--engine null --max-body 1024 --api-key-env MLC_TEST_SERVE_KEY");
    const char *ok = "Authorization: Bearer sekret";
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\"}", NULL, 401, NULL);
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\"}", "Authorization: Bearer nope", 401, NULL);
    expect_error(s.port, "/v1/completions", "{\"prompt\":", ok, 400, NULL);
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"temperature\":\"hot\"}", ok, 400, "temperature");
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":-1}", ok, 400, "max_tokens");
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"stop\":[1]}", ok, 400, "stop");
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"top_p\":0}", ok, 400, "top_p");
    expect_error(s.port, "/v1/completions", "{\"max_tokens\":3}", ok, 400, "prompt");
    expect_error(s.port, "/v1/chat/completions", "{\"messages\":[]}", ok, 400, "messages");
    expect_error(s.port, "/v1/chat/completions", "{\"messages\":[{\"content\":\"x\"}]}", ok, 400, "messages");
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"model\":\"gpt-9\"}", ok, 404, "model");
    expect_error(s.port, "/v1/nothing", "{}", ok, 404, NULL);
    char big[2048];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[0] = '{';
    big[sizeof big - 2] = '}';
    expect_error(s.port, "/v1/completions", big, ok, 413, NULL);
    long code;
    char *out = http(s.port, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":2}", ok, &code);
    cr_expect_eq(code, 200, "%s", out);
    free(out);
    stop(s);
}

/* A request on a thread of its own (no Criterion assertions there: the test thread checks
 * what it left). With stream set, it reads until the test sets quit, then hangs up. */
typedef struct bg {
    int port;
    const char *body;
    bool stream;
    atomic_bool quit;
    CURLcode rc;
    long code;
    char *out; /* malloc'd response body */
} bg;

static size_t bg_data(char *p, size_t sz, size_t n, void *u)
{
    bg *b = u;
    size_t old = b->out ? strlen(b->out) : 0;
    char *nb = realloc(b->out, old + sz * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + old, p, sz * n);
    nb[old + sz * n] = 0;
    b->out = nb;
    /* Kept before hanging up: on a loaded machine the first chunk may arrive after quit. */
    if (b->stream && atomic_load(&b->quit))
        return 0; /* makes curl abort the transfer and close the connection */
    return sz * n;
}

static void *bg_request(void *arg)
{
    bg *b = arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", b->port);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bg_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    b->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &b->code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

/* Waits until the metric satisfies want (at least it, or exactly 0 when want is 0), polling;
 * the limit is a hang guard far above any scheduling delay. */
static double wait_metric(int port, const char *name, double want)
{
    double v = metric(port, name);
    for (double t0 = now_s(); want ? v < want : v != 0; v = metric(port, name)) {
        cr_assert_lt(now_s() - t0, 30.0, "%s is %g after 30 s (want %s%g)", name, v,
                     want ? ">= " : "", want);
        nap_ms(10);
    }
    return v;
}

Test(serve, queue_full_429_and_disconnect_cancels, .timeout = 60)
{
    srv s = start("--engine null --parallel 1 --max-queue 0 --itl-ms 20");
    /* One long streaming request, cut by the client after 0.5 s. */
    char cmd[512], *out;
    snprintf(cmd, sizeof cmd,
             "curl -s -N --max-time 0.5 http://127.0.0.1:%d/v1/completions "
             "-d '{\"prompt\":\"a\",\"max_tokens\":100000,\"stream\":true}' >/dev/null", s.port);
    tu_run(cmd, &out);
    free(out);
    /* 100000 tokens at 20 ms would take 33 min: only the cancellation brings it to 0. */
    wait_metric(s.port, "mlc_requests_in_flight", 0);

    /* An endless stream holds the only slot until the test hangs up; the request made
     * meanwhile is refused, however long the machine takes between the two. */
    bg b = {.port = s.port, .stream = true,
            .body = "{\"prompt\":\"a\",\"max_tokens\":100000,\"stream\":true}"};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bg_request, &b), 0);
    wait_metric(s.port, "mlc_requests_in_flight", 1);
    expect_error(s.port, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":1}", NULL, 429, NULL);
    atomic_store(&b.quit, true);
    pthread_join(t, NULL);
    cr_expect_eq(b.code, 200);
    cr_expect(b.out && strstr(b.out, "data: {"), "the stream had started: %s", b.out ? b.out : "");
    free(b.out);
    wait_metric(s.port, "mlc_requests_in_flight", 0);
    cr_expect_eq(metric(s.port, "mlc_queue_depth"), 0);
    stop(s);
}

Test(serve, sigterm_drains_in_flight, .timeout = 60)
{
    srv s = start("--engine null --itl-ms 10");
    bg b = {.port = s.port, .body = "{\"prompt\":\"a\",\"max_tokens\":100}"};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bg_request, &b), 0);
    /* SIGTERM once the request is in the engine (its 100 tokens take 1 s). */
    wait_metric(s.port, "mlc_requests_in_flight", 1);
    stop(s); /* waits for the request, then exit 0 */
    pthread_join(t, NULL);
    /* Drained means answered in full, not cut. */
    cr_expect_eq(b.rc, CURLE_OK, "%s", curl_easy_strerror(b.rc));
    cr_expect_eq(b.code, 200, "%s", b.out ? b.out : "");
    cr_expect(b.out && strstr(b.out, "\"completion_tokens\":100"), "%s", b.out ? b.out : "");
    free(b.out);
}

Test(serve, run_endpoint_against_null, .timeout = 120)
{
    srv s = start("--engine null --ttft-ms 2 --itl-ms 1 --parallel 8");
    char ds[512], db[512], json[512], cmd[4096], *out;
    snprintf(ds, sizeof ds, "%s/serve.jsonl", tu_tmpdir());
    snprintf(db, sizeof db, "%s/serve.db", tu_tmpdir());
    snprintf(json, sizeof json, "%s/serve.json", tu_tmpdir());
    FILE *f = fopen(ds, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 4; i++)
        fprintf(f, "{\"prompt\": \"word %d and more words\", \"max_tokens\": 8}\n", i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset %s --concurrency 1,4 "
             "--num-prompts 8 --db %s --json %s --quiet", tu_bin(), s.port, ds, db, json);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    char *txt = tu_read_file(json, NULL);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    cr_assert_not_null(j);
    for (int p = 0; p < 2; p++) {
        const cJSON *ph = cJSON_GetArrayItem(j, p);
        cr_expect_eq(jnum(ph, "completed"), 8);
        cr_expect_eq(jnum(ph, "failed"), 0);
        cr_expect_eq(jnum(ph, "total_output_tokens"), 64);
    }
    cJSON_Delete(j);
    stop(s);
}

/* "generated: [a, b, ...]" of `generate --ids` as a JSON array. */
static cJSON *generate_ids(const char *model, const char *prompt, int n)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p '%s' -n %d --ids 2>/dev/null", tu_bin(), model, prompt, n);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    char *g = strstr(out, "generated: [");
    cr_assert_not_null(g, "%s", out);
    cJSON *j = cJSON_Parse(g + 11);
    cr_assert(cJSON_IsArray(j), "%s", out);
    free(out);
    return j;
}

Test(serve, greedy_equals_generate_and_logprobs, .timeout = 120)
{
    char model[1024], args[1200];
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    snprintf(args, sizeof args, "-m %s -t 2 --parallel 4 --chat-template llama3", model);
    srv s = start(args);
    cJSON *want = generate_ids(model, "Once upon a time", 12);
    cJSON *j = post_json(s.port, "/v1/completions",
                         "{\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0}", 200);
    const cJSON *got = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "token_ids");
    cr_assert(cJSON_IsArray(got));
    char *a = cJSON_PrintUnformatted(want), *b = cJSON_PrintUnformatted(got);
    cr_expect_str_eq(b, a, "serve greedy tokens equal generate's");
    cr_expect_eq(jnum(j, "usage.prompt_tokens"), 5);
    cr_expect_eq(jnum(j, "usage.completion_tokens"), 12);
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(j);
    cJSON_Delete(want);

    /* echo + logprobs: prompt and generated tokens, the first prompt token has none. */
    j = post_json(s.port, "/v1/completions",
                  "{\"prompt\":\"Once upon a time\",\"max_tokens\":3,\"temperature\":0,\"echo\":true,\"logprobs\":1}", 200);
    const cJSON *lp = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs");
    const cJSON *vals = cJSON_GetObjectItem(lp, "token_logprobs");
    cr_assert_eq(cJSON_GetArraySize(vals), 8);
    cr_expect(cJSON_IsNull(cJSON_GetArrayItem(vals, 0)));
    for (int i = 1; i < 8; i++) {
        double v = cJSON_GetArrayItem(vals, i)->valuedouble;
        cr_expect(v < 0 && v > -100, "logprob %d = %g", i, v);
    }
    cr_expect(!strncmp(jstr(j, "choices.0.text"), "Once upon a time", 16));
    cJSON_Delete(j);

    /* max_tokens 0 with echo: the prompt back, nothing generated. */
    j = post_json(s.port, "/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":0,\"echo\":true}", 200);
    cr_expect_str_eq(jstr(j, "choices.0.text"), "Once upon a time");
    cr_expect_eq(jnum(j, "usage.completion_tokens"), 0);
    cJSON_Delete(j);

    /* Chat and a streamed completion agree on usage. */
    j = post_json(s.port, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"max_tokens\":4,\"temperature\":0,\"seed\":1}", 200);
    cr_expect_eq(jnum(j, "usage.completion_tokens"), 4);
    cJSON_Delete(j);
    long code;
    char *out = http(s.port, "/v1/completions",
                     "{\"prompt\":\"Once upon a time\",\"max_tokens\":6,\"temperature\":0.8,\"top_k\":40,"
                     "\"top_p\":0.9,\"min_p\":0.05,\"seed\":7,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                     NULL, &code);
    cr_expect_eq(code, 200);
    cr_expect(strstr(out, "\"completion_tokens\":6") != NULL, "%s", out);
    cr_expect(strstr(out, "data: [DONE]") != NULL, "%s", out);
    free(out);
    stop(s);
}

/* Resident memory of a process in KiB (VmRSS), or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* 64 streaming clients for 60 s: no failed request, and the server's memory after the load
 * stops is what it was a few seconds in (no growth per request). Leaks are caught by the
 * sanitizer build of this test (make test SANITIZE=1 fails on any report in our code). */
Test(serve, soak_64_streams_60s, .timeout = 240)
{
    srv s = start("--engine null --ttft-ms 5 --itl-ms 5 --parallel 64 --max-queue 64");
    char db[512], json[512], cmd[4096];
    snprintf(db, sizeof db, "%s/soak.db", tu_tmpdir());
    snprintf(json, sizeof json, "%s/soak.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --dataset random --input-len 16 "
             "--output-len 32 --concurrency 64 --duration 60 --db %s --json %s --quiet",
             tu_bin(), s.port, db, json);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    nap_ms(8000);
    long early = rss_kib(s.pid);
    char buf[4096];
    while (fread(buf, 1, sizeof buf, p) > 0)
        ;
    cr_assert_eq(pclose(p), 0, "run failed: %s", cmd);
    nap_ms(1000);
    long late = rss_kib(s.pid);
    cr_expect(early > 0 && late > 0);
    /* ASan holds freed memory in quarantine, so resident memory only means something without
     * it; the sanitizer build checks for leaks instead. */
    if (!tu_sanitized())
        cr_expect_leq(late, early + early / 5 + 4096, "server memory grew from %ld KiB to %ld KiB", early, late);
    cr_expect_eq(metric(s.port, "mlc_requests_in_flight"), 0);
    char *txt = tu_read_file(json, NULL);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    cr_assert_not_null(j);
    const cJSON *ph = cJSON_GetArrayItem(j, 0);
    cr_expect_eq(jnum(ph, "failed"), 0);
    cr_expect_gt(jnum(ph, "completed"), 1000, "completed %f", jnum(ph, "completed"));
    fprintf(stderr, "soak: %.0f requests, %.0f output tok/s, server RSS %ld -> %ld KiB\n",
            jnum(ph, "completed"), jnum(ph, "output_throughput"), early, late);
    cJSON_Delete(j);
    stop(s);
}

/* ---- /metrics exposition ---- */

typedef struct want_sample {
    char name[128];     /* with labels */
    long long count;    /* the value, unless sum */
    bool is_sum;
    double sum;
    int seen;
} want_sample;

typedef struct hist_obs {
    double v;
    int64_t n;
} hist_obs;

static int add_hist(mlc_serve_hist *h, const char *name, const hist_obs *obs, int n_obs,
                    want_sample *w)
{
    int k = 0;
    double sum = 0;
    long long total = 0;
    for (int o = 0; o < n_obs; o++) {
        mlc_serve_hist_add(h, obs[o].v, obs[o].n);
        sum += obs[o].v * (double)obs[o].n;
        total += obs[o].n;
    }
    for (int i = 0; i < h->n; i++, k++) {
        snprintf(w[k].name, sizeof w[k].name, "%s_bucket{le=\"%g\"}", name, h->le[i]);
        for (int o = 0; o < n_obs; o++)
            w[k].count += obs[o].v <= h->le[i] ? obs[o].n : 0;
    }
    snprintf(w[k].name, sizeof w[k].name, "%s_bucket{le=\"+Inf\"}", name);
    w[k++].count = total;
    snprintf(w[k].name, sizeof w[k].name, "%s_sum", name);
    w[k].is_sum = true;
    w[k++].sum = sum;
    snprintf(w[k].name, sizeof w[k].name, "%s_count", name);
    w[k++].count = total;
    return k;
}

/* Whether a sample name (labels cut) belongs to the family declared last: its name, or for
 * a histogram its name + _bucket, _sum or _count. */
static bool in_family(const char *sample, const char *fam, const char *kind)
{
    size_t n = strcspn(sample, "{"), f = strlen(fam);
    if (n < f || strncmp(sample, fam, f))
        return false;
    if (n == f)
        return strcmp(kind, "histogram") != 0;
    static const char *const suffix[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++)
        if (n - f == strlen(suffix[i]) && !strncmp(sample + f, suffix[i], n - f))
            return !strcmp(kind, "histogram");
    return false;
}

/* Counters past 2^32 and 10^9, up to 2^53 + 1 and beyond: every line of the exposition is
 * a HELP, a TYPE or one "name value" sample, each family has HELP and TYPE before its
 * samples, and every value is what was counted, to the last digit. */
Test(serve_metrics, exposition_exact_past_1e9)
{
    mlc_serve_metrics m;
    mlc_serve_metrics_init(&m);
    want_sample w[64];
    memset(w, 0, sizeof w);
    int nw = 0;
    static const unsigned codes[] = {200, 400, 401, 404, 405, 413, 429, 500, 503};
    for (int i = 0; i < 9; i++) {
        long long n = 1000000007LL * (i + 1) + i;
        mlc_serve_metrics_add_status(&m, codes[i], n);
        snprintf(w[nw].name, sizeof w[nw].name, "mlc_requests_total{status=\"%u\"}", codes[i]);
        w[nw++].count = n;
    }
    const long long in = 9007199254740993LL, out = 354482123456789LL;
    mlc_serve_metrics_add_tokens(&m, in, out);
    snprintf(w[nw].name, sizeof w[nw].name, "mlc_prompt_tokens_total");
    w[nw++].count = in;
    snprintf(w[nw].name, sizeof w[nw].name, "mlc_generation_tokens_total");
    w[nw++].count = out;
    snprintf(w[nw].name, sizeof w[nw].name, "mlc_requests_in_flight");
    w[nw++].count = 2147483647;
    snprintf(w[nw].name, sizeof w[nw].name, "mlc_queue_depth");
    w[nw++].count = 1234567;
    const hist_obs ttft[] = {{0.007, 3000000001LL}, {7.5, 5}, {30, 2}};
    const hist_obs itl[] = {{0.0001, 1234567890123LL}, {0.3, 17}};
    const hist_obs batch[] = {{3, 1LL << 40}, {600, 11}, {1, 1}};
    nw += add_hist(&m.ttft, "mlc_time_to_first_token_seconds", ttft, 3, w + nw);
    nw += add_hist(&m.itl, "mlc_inter_token_latency_seconds", itl, 2, w + nw);
    nw += add_hist(&m.batch, "mlc_batch_size_tokens", batch, 3, w + nw);
    cr_assert_lt(nw, 64);

    mlc_strbuf b = {0};
    mlc_serve_metrics_text(&m, 2147483647, 1234567, &b);
    cr_assert(!b.oom && b.p && b.len > 0 && b.p[b.len - 1] == '\n');
    char help[32][128] = {{0}}, type[32][128] = {{0}}, kind[32] = "";
    int n_help = 0, n_type = 0;
    char *save = NULL;
    for (char *l = strtok_r(b.p, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (!strncmp(l, "# HELP ", 7)) {
            cr_assert_eq(sscanf(l + 7, "%127s", name), 1, "%s", l);
            cr_expect_gt(strlen(l), 8 + strlen(name), "HELP without text: %s", l);
            cr_assert_lt(n_help, 32);
            snprintf(help[n_help++], 128, "%s", name);
            continue;
        }
        if (!strncmp(l, "# TYPE ", 7)) {
            cr_assert_eq(sscanf(l + 7, "%127s %31s", name, kind), 2, "%s", l);
            cr_expect(!strcmp(kind, "counter") || !strcmp(kind, "gauge") || !strcmp(kind, "histogram"),
                      "%s", l);
            cr_expect(n_help > 0 && !strcmp(help[n_help - 1], name), "TYPE without HELP before it: %s", l);
            cr_assert_lt(n_type, 32);
            snprintf(type[n_type++], 128, "%s", name);
            continue;
        }
        cr_assert_neq(l[0], '#', "%s", l);
        const char *sp = strchr(l, ' ');
        cr_assert_not_null(sp, "not 'name value': %s", l);
        snprintf(name, sizeof name, "%.*s", (int)(sp - l), l);
        cr_expect(n_type > 0 && in_family(name, type[n_type - 1], kind), "sample outside its family: %s", l);
        int i = 0;
        while (i < nw && strcmp(w[i].name, name))
            i++;
        cr_assert_lt(i, nw, "unexpected sample: %s", l);
        w[i].seen++;
        char *end;
        errno = 0;
        if (w[i].is_sum) {
            double v = strtod(sp + 1, &end);
            cr_expect(*end == 0 && v == w[i].sum, "%s: want %.17g", l, w[i].sum);
        } else {
            long long v = strtoll(sp + 1, &end, 10);
            cr_expect(*end == 0 && errno == 0 && v == w[i].count, "%s: want %lld", l, w[i].count);
        }
    }
    for (int i = 0; i < nw; i++)
        cr_expect_eq(w[i].seen, 1, "%s seen %d times", w[i].name, w[i].seen);
    cr_expect_eq(n_type, 8);
    cr_expect_eq(n_help, 8);
    free(b.p);
}
