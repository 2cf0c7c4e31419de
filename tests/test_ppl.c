/* test_ppl.c: `mlc-bench ppl` end to end: the golden files' perplexity at context 128
 * within 0.5% of llama.cpp's (golden.json), stored in the database; usage errors; the
 * endpoint path against `mlc-bench serve` (equal to the local value) and against canned
 * responses of servers that cannot return prompt log-probabilities. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result; /* before 0.9.71 handlers returned int */
#else
typedef enum MHD_Result mhd_result;
#endif

Test(ppl, golden_files_match_llama_cpp, .timeout = 120)
{
    char gpath[1024], text[1024];
    tu_require_shared(gpath, sizeof gpath, "golden/golden.json");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    char *js = tu_read_file(gpath, NULL);
    cJSON *g = cJSON_Parse(js);
    free(js);
    cr_assert_not_null(g);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(g, "models")) {
        double want = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "perplexity_ctx128"), "ppl")->valuedouble;
        char model[1024], rel[256], cmd[4096], *out;
        snprintf(rel, sizeof rel, "golden/%s", m->string);
        tu_require_shared(model, sizeof model, rel);
        snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --db %s/ppl.db --quiet", tu_bin(), model,
                 text, tu_tmpdir());
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        const char *p = strstr(out, "PPL = ");
        cr_assert_not_null(p, "%s", out);
        double got = atof(p + 6);
        cr_expect_lt(fabs(got - want) / want, 0.005, "%s: ppl %f, llama.cpp %f", m->string, got, want);
        cr_expect(strstr(out, "6 chunks of 128"), "%s", out);
        free(out);
    }
    cJSON_Delete(g);
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "python3 -c \"import sqlite3; c = sqlite3.connect('%s/ppl.db'); "
             "print(c.execute(\\\"select count(*) from perplexity where ctx = 128 and chunks = 6\\\").fetchone()[0], "
             "c.execute(\\\"select count(*) from runs where kind = 'ppl' and status = 'complete'\\\").fetchone()[0])\"",
             tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect_str_eq(out, "4 4\n");
    free(out);
}

Test(ppl, errors)
{
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s ppl -m x.gguf", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "--text are required"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s ppl -m x.gguf --text /nonexistent.txt", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "/nonexistent.txt: cannot open"), "%s", out);
    free(out);
    char model[1024], path[1024];
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    snprintf(path, sizeof path, "%s/short.txt", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "too short", 9), 0);
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --db %s/e.db", tu_bin(), model, path, tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "make no chunk of 128"), "%s", out);
    free(out);
}

/* ------------------------------------------------------------------ endpoint */

typedef struct srv {
    pid_t pid;
    int port;
} srv;

/* `mlc-bench serve --port 0 ARGS` as a child; its first stdout line names the port. */
static srv serve_start(const char *args)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 %s 2>/dev/null", tu_bin(), args);
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

static void serve_stop(srv s)
{
    int st;
    kill(s.pid, SIGTERM);
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "serve exit status %d", st);
}

static double ppl_of(const char *out)
{
    const char *p = strstr(out, "PPL = ");
    cr_assert_not_null(p, "%s", out);
    return atof(p + 6);
}

Test(ppl, endpoint_equals_local, .timeout = 120)
{
    char model[1024], text[1024], vocab[1024], cmd[4096], args[1200], *out;
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    /* The tokenizer from a vocabulary-only file: the same Llama 2 vocabulary. */
    tu_require_shared(vocab, sizeof vocab, "vocab/ggml-vocab-llama-spm.gguf");
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --chunks 2 --db %s/remote.db", tu_bin(), model,
             text, tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    double local = ppl_of(out);
    cr_expect(strstr(out, "2 chunks of 128, 126 tokens scored"), "%s", out);
    free(out);

    snprintf(args, sizeof args, "-m %s -t 2", model);
    srv s = serve_start(args);
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:%d --tokenizer %s --model tiny-llama-q8_0.gguf "
             "--text %s --ctx 128 --chunks 2 --db %s/remote.db", tu_bin(), s.port, vocab, text, tu_tmpdir());
    int rc = tu_run(cmd, &out);
    serve_stop(s);
    cr_assert_eq(rc, 0, "%s", out);
    double remote = ppl_of(out);
    cr_expect(strstr(out, "[1]") && strstr(out, "[2]"), "per-chunk lines: %s", out);
    cr_expect(strstr(out, "2 chunks of 128, 126 tokens scored"), "%s", out);
    cr_expect_lt(fabs(remote - local) / local, 1e-4, "remote %.6f, local %.6f", remote, local);
    cr_log_info("ppl q8_0 ctx 128 x2: local %.6f, endpoint %.6f (rel %.2e)", local, remote,
                fabs(remote - local) / local);
    free(out);

    snprintf(cmd, sizeof cmd, "python3 -c \"import sqlite3; c = sqlite3.connect('%s/remote.db'); "
             "print(c.execute(\\\"select target, coalesce(endpoint, '-'), model_path from runs where kind = 'ppl' "
             "and status = 'complete' order by id\\\").fetchall(), "
             "c.execute(\\\"select count(*) from perplexity where ctx = 128 and chunks = 2\\\").fetchone()[0])\"",
             tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    char want[512];
    snprintf(want, sizeof want, "('endpoint', 'http://127.0.0.1:%d', 'tiny-llama-q8_0.gguf')] 2\n", s.port);
    cr_expect(strstr(out, "[('local', '-', ") && strstr(out, want), "%s", out);
    free(out);
}

/* A server answering every request with one canned status and body. */
typedef struct canned {
    unsigned status;
    const char *body;
} canned;

static mhd_result on_canned(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)url, (void)method, (void)version, (void)upload;
    const canned *k = cls;
    if (!*con_cls) { /* headers in; the body follows */
        *con_cls = (void *)k;
        return MHD_YES;
    }
    if (*upload_size) { /* the request body is not needed */
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(k->body), (void *)k->body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    mhd_result ret = MHD_queue_response(c, k->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Runs `ppl --endpoint` (chunks of 16) against a server answering status/body; returns the
 * exit status and the output in *out. */
static int ppl_against(unsigned status, const char *body, char **out)
{
    canned k = {status, body};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_canned, &k,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    cr_assert_not_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info && info->port > 0);
    char vocab[1024], text[1024], cmd[4096];
    tu_require_shared(vocab, sizeof vocab, "vocab/ggml-vocab-llama-spm.gguf");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:%d/v1 --tokenizer %s --text %s --ctx 16 "
             "--chunks 1 --db %s/canned.db", tu_bin(), (int)info->port, vocab, text, tu_tmpdir());
    int rc = tu_run(cmd, out);
    MHD_stop_daemon(d);
    return rc;
}

/* {"choices":[{"logprobs":{"tokens":[16 x "a"],"token_logprobs":[null, VAL x 15]}}]} */
static char *lp_body(const char *val, int n)
{
    char *b = malloc(4096);
    cr_assert_not_null(b);
    int at = snprintf(b, 4096, "{\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":{\"tokens\":[");
    for (int i = 0; i < n; i++)
        at += snprintf(b + at, 4096 - (size_t)at, "%s\"a\"", i ? "," : "");
    at += snprintf(b + at, 4096 - (size_t)at, "],\"token_logprobs\":[");
    for (int i = 0; i < n; i++)
        at += snprintf(b + at, 4096 - (size_t)at, "%s%s", i ? "," : "", i ? val : "null");
    snprintf(b + at, 4096 - (size_t)at, "]}}]}");
    return b;
}

Test(ppl, endpoint_without_prompt_logprobs, .timeout = 60)
{
    char *out, *b;
    /* The shape read right: every scored token at log-probability -1 gives PPL e. */
    b = lp_body("-1.0", 16);
    cr_expect_eq(ppl_against(200, b, &out), 0, "%s", out);
    cr_expect(strstr(out, "PPL = 2.7183 +/- 0.0000 (1 chunks of 16, 7 tokens scored"), "%s", out);
    free(out);
    free(b);

    static const struct {
        unsigned status;
        const char *body, *want;
    } cases[] = {
        {200, "{\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null}]}",
         "/v1/completions: response has no choices[0].logprobs (the server cannot return prompt log-probabilities; "
         "it needs echo + logprobs with max_tokens 0)"},
        {200, "{\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":{\"tokens\":[]}}]}",
         "/v1/completions: response has no choices[0].logprobs.token_logprobs (the server cannot return prompt "
         "log-probabilities; it needs echo + logprobs with max_tokens 0)"},
        {200, "{\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":{\"token_logprobs\":null}}]}",
         "response has no choices[0].logprobs.token_logprobs"},
        {200, "{\"choices\":[]}", "chunk 1: response has no choices[0]"},
        {200, "not json", "chunk 1: response is not JSON"},
        {400, "{\"error\":{\"message\":\"echo is not supported\",\"type\":\"invalid_request_error\"}}",
         "chunk 1: HTTP 400: echo is not supported (ppl sends a token-id prompt with echo, logprobs and max_tokens 0)"},
        {500, "oops", "chunk 1: HTTP 500: oops"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_expect_eq(ppl_against(cases[i].status, cases[i].body, &out), 1, "case %zu: %s", i, out);
        cr_expect(strstr(out, "mlc-bench ppl: http://127.0.0.1:") && strstr(out, cases[i].want), "case %zu: %s", i,
                  out);
        cr_expect(!strchr(out, '\n') || strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
        free(out);
    }
    /* Without echo a server returns only the generated tokens' values: wrong length. */
    b = lp_body("-1.0", 3);
    cr_expect_eq(ppl_against(200, b, &out), 1, "%s", out);
    cr_expect(strstr(out, "token_logprobs has 3 entries for a prompt of 16 tokens"), "%s", out);
    free(out);
    free(b);
    /* Null values where the scored positions are (9..15 of a chunk of 16). */
    b = lp_body("null", 16);
    cr_expect_eq(ppl_against(200, b, &out), 1, "%s", out);
    cr_expect(strstr(out, "token_logprobs[9] is null, not a log-probability"), "%s", out);
    free(out);
    free(b);
}

Test(ppl, endpoint_usage_errors)
{
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:1 --text x.txt", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "--endpoint needs --tokenizer and --text"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:1 --tokenizer t.gguf --text x.txt --kld b.kld",
             tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "need the local engine's logits"), "%s", out);
    free(out);
    /* Nothing listens on port 1: a connection error, one line, exit 1. */
    char vocab[1024], text[1024];
    tu_require_shared(vocab, sizeof vocab, "vocab/ggml-vocab-llama-spm.gguf");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:1 --tokenizer %s --text %s --ctx 16 --db %s/u.db",
             tu_bin(), vocab, text, tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "mlc-bench ppl: http://127.0.0.1:1/v1/completions: chunk 1: "), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s ppl --endpoint http://127.0.0.1:1 --tokenizer %s --text %s --api-key-env "
             "MLC_PPL_TEST_NO_SUCH_VAR --db %s/u.db", tu_bin(), vocab, text, tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "variable 'MLC_PPL_TEST_NO_SUCH_VAR' is not set"), "%s", out);
    free(out);
}
