/* serve_http.h: the HTTP layer of `mlc-bench serve` on libmicrohttpd (one thread per
 * connection): routing, API key, request bodies, replies and the SSE stream, /health and
 * /metrics. */
#ifndef MLC_BENCH_SERVE_HTTP_H
#define MLC_BENCH_SERVE_HTTP_H

#include <netinet/in.h>

#include "serve_state.h"

/* Starts listening on addr (s->d set). Returns the bound port, or -1 with errno set. */
int mlc_serve_http_start(mlc_server *s, const struct sockaddr_in *addr);
/* Stops accepting, waits for the requests in flight to finish, stops the daemon. */
void mlc_serve_http_stop(mlc_server *s);

#endif
