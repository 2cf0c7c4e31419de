/* serve_engine.h: the engine thread of `mlc-bench serve` and the request hand-over between
 * it and the HTTP handlers.
 *
 * A handler makes a request (mlc_serve_req_new), fills its input, submits it to the engine's
 * queue, then waits on the request's condition variable for tokens. The engine thread either
 * steps the reference engine's continuous-batching scheduler, or (null engine, no model)
 * paces deterministic tokens: token i of a request is id i with text "tok<i> ", the first
 * --ttft-ms after submission, then one every --itl-ms.
 *
 * Logprobs: the scheduler does not expose logits, so when a request asks for logprobs the
 * engine thread re-reads prompt + generated tokens on a dedicated one-slot context with
 * want_logits for every position once the sequence ends, and takes log-softmax values from
 * there (one extra prefill). */
#ifndef MLC_BENCH_SERVE_ENGINE_H
#define MLC_BENCH_SERVE_ENGINE_H

#include "serve_state.h"

/* A request with one reference (the handler's), or NULL when out of memory. */
mlc_serve_req *mlc_serve_req_new(mlc_server *s, bool chat);
/* Drops a reference (caller holds s->mu); the last one frees the request. */
void mlc_serve_req_unref_locked(mlc_serve_req *r);
/* Queues a parsed request for the engine (taking a second reference). False when
 * --parallel + --max-queue requests are already in the engine (nothing queued then). */
bool mlc_serve_submit(mlc_server *s, mlc_serve_req *r);
/* The engine thread's body (arg: the mlc_server); returns when s->stop_engine is set. */
void *mlc_serve_engine_main(void *arg);

/* Handler side. Waits for tokens past r->n_used or the end; copies the tokens to r->htoks
 * (the engine may move r->toks) and sets *n_avail to their number. Returns whether the
 * request has ended with all its tokens copied. */
bool mlc_serve_wait_progress(mlc_serve_req *r, size_t *n_avail);
/* Asks the engine to end the request (a stop string hit, the client left). */
void mlc_serve_cancel(mlc_serve_req *r);
/* Waits until the engine has ended the request. */
void mlc_serve_wait_done(mlc_serve_req *r);

/* Appends the text of a token (the null engine's "tok<id> ", else the tokenizer's piece). */
void mlc_serve_token_text(const mlc_server *s, int32_t id, mlc_strbuf *out);

#endif
