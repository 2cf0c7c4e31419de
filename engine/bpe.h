/* bpe.h: BPE tokenizing of one text fragment, as llama.cpp's llm_tokenizer_bpe: the
 * pre-tokenizer cuts it into words, then each word merges by rank. Byte-level vocabularies
 * (GPT-2 style) map bytes to printable code points first; SentencePiece-style ones
 * (gemma4) write spaces as U+2581 and merge raw UTF-8. */
#ifndef MLC_BPE_H
#define MLC_BPE_H

#include <stddef.h>

#include "merges.h"
#include "mlc/status.h"

/* Appends the ids of s[0..n) to w->out. */
mlc_status mlc_bpe_fragment(tok_work *w, const char *s, size_t n);

/* The pre-tokenizer's words of s[0..n) into w->lens[0..return), as code-point counts;
 * SIZE_MAX when out of memory. */
size_t mlc_bpe_words(tok_work *w, const char *s, size_t n);

#endif
