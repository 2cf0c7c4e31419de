/* run.h: `mlc-bench run` (and `mlc-bench` with no arguments): replay a dataset against the
 * local engine or an OpenAI-compatible endpoint under a load shape, measure what a user
 * feels, and store every request and aggregate in SQLite. */
#ifndef MLC_BENCH_RUN_H
#define MLC_BENCH_RUN_H

int mlc_cmd_run(int argc, char **argv);
/* `mlc-bench` with no arguments: the CPU engine on a cached synthetic model and the
 * built-in dataset at concurrency 1 and 4. */
int mlc_cmd_default(void);

#endif
