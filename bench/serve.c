/* serve.c: `mlc-bench serve`, an OpenAI-compatible HTTP server: options, engine loading and
 * the server's lifecycle. The main thread waits for SIGINT/SIGTERM (sigwait on a blocked
 * set), then stops accepting, drains the requests in flight and exits. The parts:
 * serve_http.c (HTTP layer), openai.c (schema), serve_engine.c (engine thread, null engine,
 * logprobs), serve_metrics.c (/metrics counters); serve_state.h holds what they share. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mlc/gguf.h"
#include "serve_engine.h"
#include "serve_http.h"
#include "serve_state.h"

static const char serve_usage[] =
    "usage: mlc-bench serve (-m M.gguf [--backend B [--device N]] | --engine null [--ttft-ms X] [--itl-ms Y])\n"
    "       [--host 127.0.0.1] [--port 8000] [-t N] [--ctx N] [--parallel N] [--max-queue N]\n"
    "       [--max-body BYTES] [--api-key-env VAR] [--chat-template NAME]\n"
    "OpenAI-compatible server: GET /v1/models /health /metrics, POST /v1/completions\n"
    "/v1/chat/completions. --port 0 picks a free port; the first line on stdout says which.\n"
    "--chat-template: chatml, llama2, llama3, mistral, gemma (default: from the model).\n"
    "stream: one SSE event per token (a character split over tokens goes with its last byte).\n"
    "SIGINT/SIGTERM: stop accepting, finish the requests in flight, exit 0.\n";

static int parse_opts(int argc, char **argv, mlc_serve_opts *o)
{
    static const char *const valued[] = {"-m", "--model", "--backend", "--device", "--host", "--api-key-env",
        "--chat-template", "--engine", "--port", "-t", "--threads", "--ctx", "--parallel", "--max-queue",
        "--max-body", "--ttft-ms", "--itl-ms", NULL};
    const char *c = "serve";
    *o = (mlc_serve_opts){.backend = "cpu", .host = "127.0.0.1", .port = 8000, .parallel = 8,
                          .max_queue = 256, .max_body = 1 << 20, .engine = "ref", .ttft_ms = 0,
                          .itl_ms = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(serve_usage, stdout);
            return 0;
        }
        const char *v = mlc_cli_option_value(c, valued, argc, argv, &i);
        if (!v)
            return 2;
        bool ok = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--device")) ok = mlc_cli_int(c, a, v, 0, 1023, &o->device);
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

static int load_engine(mlc_server *s)
{
    const mlc_serve_opts *o = &s->o;
    mlc_err err;
    if (s->null_engine) {
        snprintf(s->model_id, sizeof s->model_id, "null");
        return 0;
    }
    const char *base = strrchr(o->model, '/');
    snprintf(s->model_id, sizeof s->model_id, "%s", base ? base + 1 : o->model);
    mlc_model_params mp = {.backend = o->backend, .device = o->device, .n_threads = o->threads};
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
        bool found = false;
        if (!mlc_gguf_open(o->model, &g, NULL))
            found = mlc_chat_template_from_gguf(g, &s->tmpl);
        mlc_gguf_close(g);
        if (!found)
            fprintf(stderr, "mlc-bench serve: warning: %s: no recognised tokenizer.chat_template; "
                            "using chatml\n", o->model);
    }
    return 0;
}

static void free_server(mlc_server *s)
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
    mlc_server s = {0};
    int rc = parse_opts(argc, argv, &s.o);
    if (rc >= 0)
        return rc;
    s.null_engine = !strcmp(s.o.engine, "null");
    mlc_serve_metrics_init(&s.metrics);
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
    if (pthread_create(&s.engine, NULL, mlc_serve_engine_main, &s)) {
        fprintf(stderr, "mlc-bench serve: cannot start the engine thread\n");
        free_server(&s);
        return 1;
    }
    int port = mlc_serve_http_start(&s, &addr);
    rc = 0;
    if (port < 0) {
        fprintf(stderr, "mlc-bench serve: cannot listen on %s:%d: %s\n", s.o.host, s.o.port,
                strerror(errno));
        rc = 1;
    } else {
        printf("mlc-bench serve: listening on http://%s:%d (model %s)\n", s.o.host, port,
               s.model_id);
        fflush(stdout);
        int sig = 0;
        sigwait(&set, &sig);
        fprintf(stderr, "mlc-bench serve: signal %d: draining\n", sig);
        mlc_serve_http_stop(&s);
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
