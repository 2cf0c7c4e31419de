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

/* Called per complete event; data is NUL-terminated. Return false to stop parsing. */
typedef bool (*mlc_sse_event_fn)(void *ctx, const char *event, const char *data, size_t len);

mlc_sse *mlc_sse_new(size_t max_event, mlc_sse_event_fn fn, void *ctx);
void mlc_sse_free(mlc_sse *p);
void mlc_sse_reset(mlc_sse *p);
/* Feeds bytes; returns false on an oversized event or when the callback stopped parsing. */
bool mlc_sse_feed(mlc_sse *p, const char *buf, size_t len);
/* True when bytes of an unfinished event are buffered (a stream cut mid-event). */
bool mlc_sse_pending(const mlc_sse *p);

#endif
