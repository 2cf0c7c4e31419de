/* openai.h: the OpenAI API schema as `mlc-bench serve` speaks it: request bodies of
 * /v1/completions and /v1/chat/completions into a request, generated tokens into text (stop
 * strings), response objects, stream chunks (SSE events), error objects and the model list. */
#ifndef MLC_BENCH_OPENAI_H
#define MLC_BENCH_OPENAI_H

#include <cjson/cJSON.h>

#include "serve_state.h"

/* Fills r (r->chat set) from the JSON body. Returns 0, or the HTTP status of the error with
 * *param naming the field (or NULL) and msg the message. */
unsigned mlc_openai_parse(mlc_server *s, mlc_serve_req *r, const cJSON *j, const char **param,
                          char *msg, size_t cap);

/* {"error": {...}} for this status. */
cJSON *mlc_openai_error(unsigned code, const char *param, const char *msg);
/* The GET /v1/models list: this server's one model. */
cJSON *mlc_openai_models(const mlc_server *s);

/* Non-streaming: waits until the request has ended or a stop string cut it (then it is
 * cancelled and ended too); r->text holds the text. */
void mlc_openai_collect(mlc_serve_req *r);
/* The completion object of an ended request (NULL when out of memory). */
cJSON *mlc_openai_response(mlc_server *s, mlc_serve_req *r);

/* Streaming: the events before the first token (the echoed prompt) into r->out. */
void mlc_openai_stream_start(mlc_server *s, mlc_serve_req *r);
/* Appends the next events to r->out, waiting for the engine: one token's text per call
 * (none while it ends inside a stop-string prefix or a UTF-8 character), with the finish,
 * usage and [DONE] events after the last token; r->phase is then 1, and 2 on the next call
 * (nothing appended: end of stream). False when out of memory. */
bool mlc_openai_stream_next(mlc_serve_req *r);

/* Length of the prefix of p[0, n) that does not end inside a multi-byte UTF-8 character
 * (bytes that cannot complete one count as whole): what a stream may send before the next
 * token, so that each event's text is valid UTF-8 when the tokens' bytes are. */
size_t mlc_openai_utf8_whole(const char *p, size_t n);

#endif
