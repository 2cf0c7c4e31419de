/* serve.h: `mlc-bench serve`, an OpenAI-compatible HTTP server on the reference engine (or
 * on a model-free "null" engine that paces deterministic tokens, for measuring harness
 * overhead). */
#ifndef MLC_BENCH_SERVE_H
#define MLC_BENCH_SERVE_H

int mlc_cmd_serve(int argc, char **argv);

#endif
