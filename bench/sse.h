/* sse.h: incremental parser for server-sent events (the text/event-stream of OpenAI
 * streaming APIs). Bytes arrive in arbitrary pieces; complete events are delivered with
 * their data lines joined by '\n'. Comment lines (':'), other fields (event, id, retry) and
 * CR/LF/CRLF line ends are handled as the WHATWG spec says. Limits bound memory: an event
 * larger than max_event bytes is an error, not an allocation. */
#ifndef MLC_BENCH_SSE_H
#define MLC_BENCH_SSE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mlc_sse mlc_sse;

/* Called per complete event; data is NUL-terminated. event is the "event:" field's value, or
 * "message" when the event had none (the spec's default type). Both stay valid only during
 * the call. Return false to stop parsing. */
typedef bool (*mlc_sse_event_fn)(void *ctx, const char *event, const char *data, size_t len);

/* max_event bounds one event's joined data (bytes, without the terminator); the parser's
 * buffers never grow past about twice that. NULL on no memory, a NULL fn or max_event 0. */
mlc_sse *mlc_sse_new(size_t max_event, mlc_sse_event_fn fn, void *ctx);
void mlc_sse_free(mlc_sse *p);
/* Forgets all state (for the next response) but keeps the buffers. */
void mlc_sse_reset(mlc_sse *p);
/* Feeds bytes; returns false on an oversized event or when the callback stopped parsing.
 * After false every further feed returns false until mlc_sse_reset. */
bool mlc_sse_feed(mlc_sse *p, const char *buf, size_t len);
/* True when bytes of an unfinished event are buffered (a stream cut mid-event). */
bool mlc_sse_pending(const mlc_sse *p);
/* Why the last feed returned false ("event larger than the limit", "stopped by the event
 * handler", "out of memory"), or NULL. A constant string. */
const char *mlc_sse_error(const mlc_sse *p);

#endif
