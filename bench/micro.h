/* micro.h: `mlc-bench micro`: engine-only throughput, llama-bench's job and field names. */
#ifndef MLC_BENCH_MICRO_H
#define MLC_BENCH_MICRO_H

int mlc_cmd_micro(int argc, char **argv);

#endif
