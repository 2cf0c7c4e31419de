/* tests/testserver.h: a small OpenAI-compatible streaming server for tests.
 *
 * Runs in the test process (libmicrohttpd, one thread per connection) on 127.0.0.1 with an
 * ephemeral port. It serves POST /v1/completions and /v1/chat/completions with "stream":
 * true: SSE events "data: {json}\n\n", one per token ("tok0 ", "tok1 ", ...), then a usage
 * event when stream_options.include_usage is set, then "data: [DONE]\n\n". Timing is
 * exact by construction: the response (headers and first token) is held until ttft_ms after
 * the request was fully received, and token i is handed over at that moment + i * itl_ms
 * (absolute deadlines, so waits never accumulate drift). Every hand-off
 * is timestamped on CLOCK_MONOTONIC, the clock of mlc_client_now(), so tests can compare
 * what the client saw with what the server sent.
 *
 * Usage is always exact: prompt_tokens is the whitespace word count of the prompt (of all
 * message contents for chat; the number of ids for a token-id prompt), completion_tokens
 * the number of token events sent. */
#ifndef MLC_TESTS_TESTSERVER_H
#define MLC_TESTS_TESTSERVER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ts_server ts_server;

typedef enum ts_fault {
    TS_FAULT_NONE = 0,
    TS_FAULT_HTTP_429,       /* 429 with a JSON error body, at once */
    TS_FAULT_HTTP_500,       /* 500 with a JSON error body, at once */
    TS_FAULT_DISCONNECT,     /* close the connection after fault_after tokens (no [DONE]) */
    TS_FAULT_STALL,          /* send headers and fault_after tokens, then nothing */
    TS_FAULT_NO_ANSWER,      /* never answer at all (not even headers) */
    TS_FAULT_MALFORMED_SSE,  /* after fault_after tokens, garbage lines: a line without a
                              * colon and an unknown field (the spec says: ignore them) */
    TS_FAULT_INVALID_JSON,   /* after fault_after tokens, "data: {not json}" */
    TS_FAULT_OVERSIZED,      /* after fault_after tokens, one event of fault_bytes of data */
    TS_FAULT_NO_USAGE,       /* never send usage, even when asked */
    TS_FAULT_COMMENTS,       /* ": keep-alive" comment lines between and inside events */
    TS_FAULT_MULTILINE,      /* each event's JSON split over two data: lines */
    TS_FAULT_CRLF,           /* CRLF line ends */
    TS_FAULT_CR,             /* bare CR line ends */
    TS_FAULT_STREAM_ERROR,   /* after fault_after tokens, an {"error": ...} event, then
                              * [DONE] (how vLLM reports a failure inside a 200 stream) */
    TS_FAULT_WRONG_SHAPE,    /* every token event without "choices" ({"output": {"text":
                              * ...}}), then usage and [DONE] as usual: valid SSE, valid
                              * JSON, but not the OpenAI shape */
    TS_FAULT_HTML_200,       /* 200 with an HTML page (Content-Type text/html), at once */
    TS_FAULT_HTML_NO_TYPE,   /* the same page with no Content-Type at all */
} ts_fault;

typedef struct ts_config {
    int n_tokens;            /* tokens per response; <= 0: the request's max_tokens
                              * (16 when it has none) */
    double ttft_ms;          /* request fully received -> first token (and headers, unless
                              * early_headers) */
    bool early_headers;      /* send the response headers at once, as vLLM's (Starlette's)
                              * StreamingResponse does; the first token still waits ttft */
    double itl_ms;           /* first token -> each next token */
    ts_fault fault;
    int fault_after;         /* tokens sent before the fault shows */
    int fault_bytes;         /* TS_FAULT_OVERSIZED: data bytes of the big event (0: 2 MiB) */
    const char *fault_match; /* fault only for prompts containing this text; NULL: all */
    int max_records;         /* requests recorded (0: 4096); later ones are served, not kept */
    int reasoning_tokens;    /* chat: the first this many tokens come as
                              * delta.reasoning_content, as reasoning models stream them */
} ts_config;

/* One request as the server saw it. Pointers stay valid until ts_stop(). Read a record only
 * after the client saw its request finish: the serving thread writes it until then. */
typedef struct ts_record {
    int index;               /* arrival order, from 0 */
    bool chat;               /* /v1/chat/completions */
    char prompt[128];        /* start of the prompt text (message contents for chat) */
    const char *body;        /* the raw request body, NUL-terminated */
    char auth[160];          /* Authorization header ("" when absent) */
    int64_t prompt_tokens;
    int64_t completion_tokens; /* token events sent so far */
    double t_request;        /* monotonic s: request body fully received */
    double t_response;       /* monotonic s: the response (headers) was queued */
    const double *t_token;   /* monotonic s: hand-off of token i's event to MHD */
    int n_token;
    bool finished;           /* the whole stream, [DONE] included, was handed over */
} ts_record;

/* NULL when the server cannot start (the reason is printed to stderr). */
ts_server *ts_start(const ts_config *cfg);
int ts_port(ts_server *s);
/* Stops accepting, wakes every waiting handler (stalls end with a closed connection) and
 * joins the server's threads; frees everything. NULL is fine. */
void ts_stop(ts_server *s);

/* Requests received so far, and TCP connections accepted (keep-alive shows as fewer). */
int ts_request_count(ts_server *s);
int ts_connection_count(ts_server *s);
/* Copies record i (arrival order); false when there is no such record. */
bool ts_record_get(ts_server *s, int i, ts_record *out);
/* The first record whose prompt starts with prefix; false when none. */
bool ts_record_find(ts_server *s, const char *prefix, ts_record *out);

#endif
