/* generate.h: `mlc-bench generate` (text generation) and `mlc-bench tokenize`. */
#ifndef MLC_BENCH_GENERATE_H
#define MLC_BENCH_GENERATE_H

int mlc_cmd_generate(int argc, char **argv);
int mlc_cmd_tokenize(int argc, char **argv);

#endif
