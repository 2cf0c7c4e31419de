/* ppl.h: `mlc-bench ppl`: perplexity of a text by llama.cpp's algorithm, on the local engine. */
#ifndef MLC_BENCH_PPL_H
#define MLC_BENCH_PPL_H

int mlc_cmd_ppl(int argc, char **argv);

#endif
