/* pretok.h: the pre-tokenizers of BPE vocabularies, by the names llama.cpp gives
 * them (tokenizer.ggml.pre). A pre-tokenizer cuts text into words before merges run; each
 * is llama.cpp's list of regular expressions applied one after the other, every regex
 * re-cutting every piece the previous one left (its matches and the text between them).
 * They are written here as hand-made matchers that give the pieces llama.cpp gives,
 * including its conventions: its own GPT-2 and Llama 3 splitters, and std::regex run on a
 * copy of the text where each non-ASCII code point stands for its category. */
#ifndef MLC_PRETOK_H
#define MLC_PRETOK_H

#include <stddef.h>
#include <stdint.h>

/* What llama.cpp attaches to a name besides the regexes. */
enum {
    MLC_PRETOK_IGNORE_MERGES = 1,  /* a word that is a token is taken whole */
    MLC_PRETOK_ADD_BOS = 2,        /* add_bos defaults to true */
    MLC_PRETOK_KEEP_SPACES = 4,    /* no clean-up of spaces when detokenizing */
    MLC_PRETOK_NO_BOS = 8,         /* no BOS id by default */
    MLC_PRETOK_RAW = 16,           /* SentencePiece-style BPE: spaces become U+2581, merges
                                      run on raw UTF-8, byte fallback is <0xXX> */
    MLC_PRETOK_NEWLINE_WORDS = 32, /* a word of newlines that is a token is taken whole */
    MLC_PRETOK_FORCE_BOS = 64,     /* add_bos is true whatever the file says */
};

typedef struct mlc_pretok {
    const char *name;
    int family; /* the regex set; names sharing one are aliases */
    unsigned flags;
} mlc_pretok;

/* The pre-tokenizer of that name (name[0..len)), or NULL when there is none we implement. */
const mlc_pretok *mlc_pretok_find(const char *name, size_t len);

/* Cuts n code points (cp, with their mlc_cp_flags in fl) into pieces: their lengths in code
 * points go to lens[0..return). lens and tmp must each hold n + 1 entries. */
size_t mlc_pretok_split(const mlc_pretok *p, const uint32_t *cp, const uint8_t *fl, size_t n,
                        size_t *lens, size_t *tmp);

#endif
