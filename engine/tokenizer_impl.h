/* tokenizer_impl.h: the state of a loaded tokenizer, shared by the files that make up the
 * tokenizer module: tokenizer.c (loading, special tokens, the public calls), spm.c and
 * bpe.c (the two merge algorithms), merges.c (their shared merge queue). Read-only once
 * loaded. */
#ifndef MLC_TOKENIZER_IMPL_H
#define MLC_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/tokenizer.h"
#include "pretok.h"

/* llama.cpp's token attributes (one per token, from token_type). */
enum {
    A_UNDEFINED = 0,
    A_UNKNOWN = 1,
    A_UNUSED = 2,
    A_NORMAL = 4,
    A_CONTROL = 8,
    A_USER = 16,
    A_BYTE = 32,
};

enum { KIND_SPM, KIND_BPE };

typedef struct tok_info {
    uint32_t off, len; /* into mlc_tokenizer.text */
    float score;
    uint8_t attr;
    bool eog;
    bool rstrip; /* white space after it in the text is dropped (Phi-3's special tokens) */
} tok_info;

typedef struct tok_merge {
    uint32_t off, len, left_len; /* "left right" at mtext + off; left_len bytes of left */
} tok_merge;

struct mlc_tokenizer {
    int kind;
    char model[16];            /* tokenizer.ggml.model */
    const mlc_pretok *pre;     /* BPE only */
    char pre_name[32];
    char *path;                /* for messages */
    int32_t n_vocab;
    char *text;
    tok_info *toks;
    uint32_t *slots;           /* token text -> id + 1 (0: empty), open addressing */
    uint32_t mask;
    char *mtext;
    tok_merge *merges;
    uint32_t n_merges;
    uint32_t *mslots;          /* merge "left right" -> rank + 1 */
    uint32_t mmask;
    int32_t *special;          /* control, user-defined, unknown ids, longest text first */
    size_t n_special;
    int32_t byte_tok[256];     /* byte fallback: <0xXX> (SentencePiece also the byte itself) */
    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    bool byte_level;           /* BPE over GPT-2's byte alphabet (else raw UTF-8) */
    bool escape_spaces;        /* spaces are U+2581 in token texts */
};

/* Rank of the merge "l r", or -1. */
int32_t mlc_tok_merge_rank(const mlc_tokenizer *t, const char *l, size_t ln, const char *r,
                           size_t rn);

#endif
