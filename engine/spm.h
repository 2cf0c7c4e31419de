/* spm.h: SentencePiece-style tokenizing of one text fragment, as llama.cpp's llm_tokenizer_spm:
 * spaces become U+2581, pieces merge bottom-up by the score of the merged piece. */
#ifndef MLC_SPM_H
#define MLC_SPM_H

#include <stdbool.h>
#include <stddef.h>

#include "merges.h"
#include "mlc/status.h"

/* Appends the ids of s[0..n) to w->out; prefix: put a space first. */
mlc_status mlc_spm_fragment(tok_work *w, const char *s, size_t n, bool prefix, mlc_err *err);

#endif
