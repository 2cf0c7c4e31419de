/* target.h: where `mlc-bench run` sends its requests: the engine in this process (its
 * continuous-batching scheduler stepped in the caller's thread, timed like HTTP would be) or
 * an OpenAI-compatible endpoint (libcurl multi, one event loop). Both report each request's
 * events (sent, each token-bearing chunk, done with its counts or its failure) through the
 * harness's callbacks, on the caller's thread, from submit, poll or cancel_all. */
#ifndef MLC_BENCH_TARGET_H
#define MLC_BENCH_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "dataset.h"
#include "metrics.h"
#include "mlc/model.h"
#include "run_opts.h"
#include "strbuf.h"

#define MLC_FAIL_NO_TOKENS "no_tokens" /* finished well by the protocol, but no token came */

/* The harness's record of one request: targets read idx and prompt, and report the rest
 * through mlc_run_events. */
typedef struct mlc_run_req {
    int64_t idx;          /* request number in the run */
    int phase;
    bool recorded;        /* false for warmup */
    bool in_flight;
    bool dropped;         /* cancelled by Ctrl-C: neither ok nor failed, not stored */
    int http_status;      /* endpoints: the status answered (0: none) */
    const char *url;      /* endpoints: the URL asked (the client's, lives as long) */
    mlc_req_times t;
    const mlc_prompt *prompt;
    mlc_strbuf text;      /* streamed text (endpoints, for token counting) */
    int32_t *ids;         /* generated token ids (local target, for --outputs) */
    int64_t conv;         /* --multi-turn: the conversation (index in harness.convs), or -1 */
    int turn;             /* --multi-turn: the turn, from 1 */
    mlc_prompt own;       /* --multi-turn: the turn's prompt (messages_json owned) */
    int8_t prefix_seen;   /* prefix dataset: 1 when a request with its prefix was sent before
                           * in this run (warmup included), 0 when first, -1 no prefix */
    int32_t n_ids, cap_ids;
    struct mlc_target *tgt;
} mlc_run_req;

/* The harness's side: h is handed back to done. */
typedef struct mlc_run_events {
    void (*sent)(mlc_run_req *r, double t);
    void (*token)(mlc_run_req *r, double t, const char *text, size_t len); /* one chunk */
    void (*token_id)(mlc_run_req *r, int32_t id);                          /* local: its id */
    void (*done)(void *h, mlc_run_req *r, double t, bool ok, const char *kind, const char *err,
                 int64_t in_tok, int64_t out_tok, bool approx);
    void *h;
} mlc_run_events;

typedef struct mlc_target {
    mlc_status (*submit)(struct mlc_target *t, mlc_run_req *r, int32_t max_tokens, mlc_err *err);
    int (*poll)(struct mlc_target *t, double max_wait_s); /* returns requests in flight */
    void (*cancel_all)(struct mlc_target *t);
    void (*destroy)(struct mlc_target *t);
    mlc_run_events ev;
    const struct mlc_tokenizer *tok; /* endpoint --tokenizer (for the dataset), or NULL */
} mlc_target;

/* --backend/--model: loads the model (its info in *info) with a context of --parallel slots. */
mlc_status mlc_target_local_new(const mlc_run_opts *o, const mlc_run_events *ev, mlc_target **out, mlc_model_info *info,
                                mlc_err *err);
/* --endpoint: the client, and --tokenizer's vocabulary when given. */
mlc_status mlc_target_endpoint_new(const mlc_run_opts *o, const mlc_run_events *ev, mlc_target **out, mlc_err *err);

#endif
