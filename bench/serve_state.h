/* serve_state.h: the state shared by the parts of `mlc-bench serve` (serve.c: command and
 * lifecycle; serve_http.c: HTTP layer; openai.c: request and response schema;
 * serve_engine.c: the engine thread; serve_metrics.c: counters).
 *
 * Threads: libmicrohttpd runs one thread per connection; ONE engine thread owns the model,
 * the context and the scheduler and steps it. Fields marked "mu" are guarded by
 * mlc_server.mu; a request's handler-side fields belong to its connection's thread. */
#ifndef MLC_BENCH_SERVE_STATE_H
#define MLC_BENCH_SERVE_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/chat.h"
#include "mlc/model.h"
#include "mlc/sched.h"
#include "mlc/tokenizer.h"
#include "serve_metrics.h"
#include "strbuf.h"

#define MLC_SERVE_MAX_STOPS 8

struct MHD_Daemon;

typedef struct mlc_serve_opts {
    const char *model, *backend, *host, *api_key_env, *chat_template, *engine;
    int port, threads, ctx, parallel, max_queue, max_body;
    int device; /* of the backend */
    float ttft_ms, itl_ms;
} mlc_serve_opts;

typedef struct mlc_server mlc_server;
typedef struct mlc_serve_req mlc_serve_req;

struct mlc_serve_req {
    mlc_server *srv;
    int refs;               /* handler + engine; mu */
    pthread_cond_t cv;
    /* input */
    int32_t *prompt;
    size_t n_prompt;
    char *echo_text;
    mlc_request_params rp;
    bool stream, chat, echo, include_usage, logprobs;
    char *stops[MLC_SERVE_MAX_STOPS];
    int n_stops;
    /* engine side (mu) */
    int32_t *toks;
    size_t n_toks, cap_toks;
    float *lp;              /* n_prompt + n_toks log-probabilities (lp[0] unused), or NULL */
    bool cancel, cancel_sent, done, failed;
    mlc_finish finish;
    char errmsg[MLC_ERR_MSG_MAX + 32];
    int64_t sched_id;
    double t_submit, t_last, next_due;
    mlc_serve_req *next;
    /* handler side */
    size_t n_used;          /* tokens turned into text */
    int32_t *htoks;         /* the handler's copy of toks (the engine may move toks) */
    size_t n_htoks, cap_htoks;
    mlc_strbuf text;
    size_t emitted;         /* bytes of text already sent (streaming) */
    bool stopped;           /* a stop string ended it */
    bool role_sent;         /* chat: the first chunk carried the role */
    int phase;              /* streaming: 0 tokens, 1 tail written, 2 end */
    mlc_strbuf out;
    size_t out_pos;
    char id[40];
    long created;
};

struct mlc_server {
    mlc_serve_opts o;
    bool null_engine;
    mlc_model *m;
    mlc_context *c, *lpctx;
    mlc_sched *s;
    const mlc_tokenizer *tok;
    mlc_chat_template tmpl;
    char model_id[256];
    const char *api_key;
    struct MHD_Daemon *d;
    pthread_t engine;
    pthread_mutex_t mu;
    pthread_cond_t engine_cv, drain_cv;
    mlc_serve_req *q_head, *q_tail;
    mlc_serve_req **live;
    int n_live, cap_live;
    bool stop_engine;
    int in_flight;          /* HTTP requests being handled */
    int in_engine;          /* requests submitted to the engine and not ended */
    int64_t next_id;
    mlc_serve_metrics metrics; /* mu */
};

#endif
