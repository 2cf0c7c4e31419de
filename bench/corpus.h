/* corpus.h: datasets/corpus.txt, embedded at build time (build/gen/corpus.c), so the
 * synthetic-model tool can train a vocabulary with nothing from outside the binary. */
#ifndef MLC_BENCH_CORPUS_H
#define MLC_BENCH_CORPUS_H

#include <stddef.h>

extern const unsigned char mlc_corpus[];
extern const size_t mlc_corpus_len;

#endif
