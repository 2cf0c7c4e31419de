/* mlc/tokenizer.h: text <-> token ids from the vocabulary stored in a GGUF file.
 *
 * Three vocabulary kinds, chosen by tokenizer.ggml.model, behave as llama.cpp's tokenizers do
 * (same ids for the same text, same text for the same ids):
 *   "llama"  SentencePiece-style: tokens + scores; spaces become U+2581, a space is prefixed
 *            (tokenizer.ggml.add_space_prefix, default true), pieces are merged by the score
 *            of the merged piece, and what no token covers falls back to <0xXX> byte tokens.
 *   "gpt2"   byte-level BPE: bytes mapped to printable code points, merges ranked by
 *            tokenizer.ggml.merges ("left right"), after the pre-tokenizer that
 *            tokenizer.ggml.pre names ("default" when absent): every regex set llama.cpp
 *            gives a common name (gpt-2, llama3, qwen2, qwen35, starcoder, falcon, deepseek-*,
 *            gpt-4o, tekken, bloom, viking, chameleon, ...; the README lists them with their
 *            aliases) and the settings that go with the name. Other names are refused.
 *   "gemma4" BPE over raw UTF-8: spaces become U+2581, words are lines and runs of newlines,
 *            bytes no token covers become <0xXX> tokens; BOS is always added.
 * Control, user-defined and unknown token texts in the input can be recognised as single
 * tokens (parse_special); user-defined ones always are, as in llama.cpp.
 *
 * The tokenizer copies what it needs: the GGUF handle may be closed right after loading.
 * A loaded tokenizer is read-only, so one may be shared by threads. */
#ifndef MLC_TOKENIZER_H
#define MLC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/gguf.h"
#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlc_tokenizer mlc_tokenizer;

/* Token types of tokenizer.ggml.token_type (llama.cpp's numbering). */
typedef enum mlc_token_type {
    MLC_TOKEN_UNDEFINED = 0,
    MLC_TOKEN_NORMAL = 1,
    MLC_TOKEN_UNKNOWN = 2,
    MLC_TOKEN_CONTROL = 3,
    MLC_TOKEN_USER_DEFINED = 4,
    MLC_TOKEN_UNUSED = 5,
    MLC_TOKEN_BYTE = 6,
} mlc_token_type;

/* Reads the tokenizer.ggml.* keys of g. Errors name the file and the key: a missing or
 * mistyped key, arrays of different lengths, duplicate or malformed tokens and merges, a
 * special token id out of range, an unknown model or pre-tokenizer. */
mlc_status mlc_tokenizer_load(const mlc_gguf *g, mlc_tokenizer **out, mlc_err *err);
void mlc_tokenizer_free(mlc_tokenizer *t);

int32_t mlc_tokenizer_n_vocab(const mlc_tokenizer *t);
const char *mlc_tokenizer_model(const mlc_tokenizer *t); /* "llama", "gpt2", "gemma4" */
const char *mlc_tokenizer_pre(const mlc_tokenizer *t);   /* pre-tokenizer; "" for llama */
/* Special ids; -1 when the vocabulary has none. */
int32_t mlc_tokenizer_bos(const mlc_tokenizer *t);
int32_t mlc_tokenizer_eos(const mlc_tokenizer *t);
int32_t mlc_tokenizer_eot(const mlc_tokenizer *t);
int32_t mlc_tokenizer_unk(const mlc_tokenizer *t);
/* Whether mlc_tokenize(add_special = true) puts BOS first / EOS last. */
bool mlc_tokenizer_add_bos(const mlc_tokenizer *t);
bool mlc_tokenizer_add_eos(const mlc_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the end-of-turn tokens llama.cpp recognises by text
 * (<|eot_id|>, <|im_end|>, <|endoftext|>, <end_of_turn>, ...). False for ids out of range. */
bool mlc_tokenizer_is_eog(const mlc_tokenizer *t, int32_t id);
/* The stored text of a token (not NUL-terminated; *len set), NULL for ids out of range. */
const char *mlc_tokenizer_token_text(const mlc_tokenizer *t, int32_t id, size_t *len);
/* Type of a token (after llama.cpp's fix-ups: end-of-turn texts count as control).
 * MLC_TOKEN_UNDEFINED for ids out of range. */
mlc_token_type mlc_tokenizer_token_type(const mlc_tokenizer *t, int32_t id);
/* Id of the token whose stored text is exactly text[0..len), or -1. */
int32_t mlc_tokenizer_find(const mlc_tokenizer *t, const char *text, size_t len);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled as llama.cpp does).
 * add_special: BOS/EOS as mlc_tokenizer_add_bos/add_eos say. parse_special: control and
 * unknown token texts in the input (e.g. "<s>") become those tokens; without it they are
 * tokenized as plain text. *ids is malloc'd (NULL when *n_ids is 0); the caller frees it. */
mlc_status mlc_tokenize(const mlc_tokenizer *t, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t **ids, size_t *n_ids, mlc_err *err);

/* The words the pre-tokenizer cuts text[0..len) into before merging, as byte lengths of
 * consecutive pieces (*lens malloc'd, caller frees; NULL when len is 0). BPE only;
 * SentencePiece has no pre-tokenizer and gives one piece. Special token texts are not
 * split out here. For tests and for showing how a text is cut. */
mlc_status mlc_tokenizer_split(const mlc_tokenizer *t, const char *text, size_t len,
                               size_t **lens, size_t *n, mlc_err *err);

/* The text of one token as it appears in text: SentencePiece U+2581 -> ' ', <0xXX> -> that
 * byte, byte-level BPE code points -> bytes. Control and unknown tokens give "" unless
 * special is true (then their stored text); user-defined tokens always give their text.
 * Writes min(needed, cap) bytes (no NUL) and returns the number needed, so a return
 * greater than cap means the piece was cut; 0 for ids out of range. */
size_t mlc_token_to_piece(const mlc_tokenizer *t, int32_t id, char *buf, size_t cap, bool special);

/* Concatenates the pieces of ids[0..n) into *out (malloc'd, NUL-terminated, *out_len bytes
 * before the NUL; the caller frees it), as llama.cpp's common_detokenize does:
 *   - with add_space_prefix (SentencePiece), one leading space of the FIRST token's piece is
 *     dropped, so detokenize(tokenize(s, no BOS)) == s. When the first token is BOS, the
 *     space of the token after it is kept ("<s>" renders as "" or "<s>", then " Hello"), as
 *     in llama.cpp;
 *   - BPE vocabularies whose pre-tokenizer cleans spaces (gpt-2, llama3, default, gemma4, ...;
 *     not qwen2, command-r, deepseek-*, gpt-4o, ...) get llama.cpp's clean-up: " ." " ,"
 *     " !" " ?" lose the space, " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the
 *     space.
 * An id out of range is MLC_ERR_RANGE. */
mlc_status mlc_detokenize(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                          char **out, size_t *out_len, mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
