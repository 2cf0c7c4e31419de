/* client.h: the OpenAI-compatible HTTP client of `mlc-bench run --endpoint`.
 *
 * All requests run in one libcurl multi handle driven by mlc_client_poll() from the
 * caller's event loop: no thread per request, keep-alive connection reuse, streaming SSE
 * parsed as bytes arrive. Times are taken on CLOCK_MONOTONIC at the moment curl hands over
 * the bytes, so the client's own work does not distort TTFT and ITL. The loop is curl's
 * socket interface on an epoll set (Linux), so each wake-up costs work for the ready
 * sockets only, not for every stream in flight.
 *
 * Requests: POST {base}/v1/completions (prompt text, token ids when the prompt has only
 * ids, or chat messages as plain text: one "ROLE: CONTENT" line per message, then
 * "assistant:", see mlc_messages_text) or {base}/v1/chat/completions (the prompt's
 * messages, or one user message), with
 * model, max_tokens, "stream": true, stream_options.include_usage when asked, ignore_eos
 * (vLLM), temperature when >= 0 and seed when asked. Each event's choices[0].text (or
 * delta.content, or delta.reasoning_content) is a token when non-empty; usage and
 * finish_reason are kept from whichever event carries them; "[DONE]" ends the stream. */
#ifndef MLC_BENCH_CLIENT_H
#define MLC_BENCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "mlc/status.h"

typedef struct mlc_client mlc_client;

typedef enum mlc_api { MLC_API_COMPLETIONS = 0, MLC_API_CHAT = 1 } mlc_api;

/* Failure kinds recorded per request (error_kind in the store). */
#define MLC_FAIL_HTTP "http"             /* non-2xx status (http_status); the message is the
                                          * server's (error.message of an OpenAI error body,
                                          * else the body's start), at most 200 bytes */
#define MLC_FAIL_NOT_SSE "not_sse"       /* 2xx, but no event stream: another Content-Type
                                          * (an HTML page, JSON) or bytes without any event */
#define MLC_FAIL_TIMEOUT "timeout"       /* per-request timeout */
#define MLC_FAIL_CONNECT "connect"       /* connection refused / DNS */
#define MLC_FAIL_DISCONNECT "disconnect" /* stream ended before [DONE] or finish_reason */
#define MLC_FAIL_PROTOCOL "protocol"     /* malformed SSE or invalid JSON chunk */
#define MLC_FAIL_CANCELLED "cancelled"   /* aborted by mlc_client_cancel_all */

typedef struct mlc_client_opts {
    const char *base_url;   /* "http://host:port" (a trailing /v1 is accepted) */
    mlc_api api;
    const char *model;      /* "model" field of requests */
    const char *api_key;    /* Bearer token or NULL */
    double timeout_s;       /* per request, whole response; <= 0: none */
    bool include_usage;     /* stream_options.include_usage */
    int max_connections;    /* curl's connection cache and host limit (>= concurrency);
                             * <= 0: no host limit, a cache of 1024 */
    size_t max_event_bytes; /* largest SSE event accepted (protocol error beyond); 0: 1 MiB */
} mlc_client_opts;

typedef struct mlc_client_req {
    const mlc_prompt *prompt;
    int32_t max_tokens;
    bool ignore_eos;
    float temperature;      /* < 0: not sent */
    uint64_t seed;
    bool send_seed;
    void *user;             /* handed back in callbacks */
} mlc_client_req;

typedef struct mlc_client_result {
    bool ok;
    const char *error_kind; /* MLC_FAIL_* or NULL */
    char error[256];
    long http_status;       /* 0 when no response came */
    const char *url;        /* the URL requested (valid while the client lives) */
    int64_t events;         /* JSON data events seen (token-bearing or not) */
    int64_t usage_prompt, usage_completion; /* -1 when the server sent no usage */
    int64_t chunks;         /* token-bearing chunks seen */
    char finish_reason[32];
} mlc_client_result;

/* Callbacks run on the thread that calls mlc_client_poll / mlc_client_cancel_all. on_sent and
 * on_token run inside libcurl's callbacks: they must not call mlc_client_* functions.
 * on_done runs outside them and may call mlc_client_submit (a closed loop refills there). */
typedef struct mlc_client_callbacks {
    /* The request's bytes started going out (t: monotonic seconds): the connection is up
     * (new or reused) and the request is about to be written, so connection queueing and
     * setup count as client delay, not as TTFT. Called again if curl retries the request on
     * a fresh connection; the last call counts. */
    void (*on_sent)(void *user, double t);
    /* A token-bearing chunk arrived (non-empty text or token content); t is when curl
     * handed over the bytes that completed the event. text is valid during the call. */
    void (*on_token)(void *user, double t, const char *text, size_t len);
    /* The request finished, well or not. t: arrival of "[DONE]" (or of the last bytes) for a
     * success, the moment the failure was seen otherwise. r is valid during the call. */
    void (*on_done)(void *user, double t, const mlc_client_result *r);
} mlc_client_callbacks;

mlc_status mlc_client_new(const mlc_client_opts *o, const mlc_client_callbacks *cb,
                          mlc_client **out, mlc_err *err);
/* Aborts what is still in flight without callbacks (call mlc_client_cancel_all first to get
 * them) and frees everything. Not from inside a callback. */
void mlc_client_free(mlc_client *c);
/* Starts a request now. Errors here are local (out of memory, bad prompt). */
mlc_status mlc_client_submit(mlc_client *c, const mlc_client_req *r, mlc_err *err);
/* Runs transfers for up to max_wait_s seconds (returns early when something completes or a
 * signal interrupts the wait); returns the number of requests still in flight. With nothing
 * in flight it just waits, so an open-loop caller can sleep here until its next arrival. */
int mlc_client_poll(mlc_client *c, double max_wait_s);
/* Aborts every request in flight; each gets on_done with error_kind "cancelled". Requests
 * submitted from those on_done calls are not cancelled. */
void mlc_client_cancel_all(mlc_client *c);

/* Monotonic clock in seconds (the clock of every callback). */
double mlc_client_now(void);

#endif
