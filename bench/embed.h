/* embed.h: files of datasets/ compiled into the binary by the Makefile (build/gen/embed/),
 * so the built-in vocabulary corpus and prompt set need nothing outside the executable. */
#ifndef MLC_BENCH_EMBED_H
#define MLC_BENCH_EMBED_H

#include <stddef.h>

extern const unsigned char mlc_embed_corpus_txt[];     /* datasets/corpus.txt */
extern const size_t mlc_embed_corpus_txt_len;
extern const unsigned char mlc_embed_prompts_jsonl[]; /* datasets/prompts.jsonl */
extern const size_t mlc_embed_prompts_jsonl_len;

#endif
