/* mlc/vocab.h: trains a small GPT-2-style byte-level BPE vocabulary from text, so synthetic
 * models (mlc-bench model synth) need no vocabulary from outside the repository.
 *
 * Training is standard BPE over pre-tokenized words: count the words, then repeatedly merge
 * the most frequent adjacent pair of symbols (ties: the pair with the lower left token id,
 * then the lower right id), updating pair counts incrementally. The result is written as
 * the tokenizer.ggml.* keys that mlc_tokenizer_load (and llama.cpp) read:
 *   tokenizer.ggml.model        "gpt2"
 *   tokenizer.ggml.pre          "gpt-2"
 *   tokenizer.ggml.tokens       ids 0..255: the 256 single bytes, in GPT-2's order (the
 *                               printable bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF first, then
 *                               the other 68), so "!" is 0 as in GPT-2; ids 256..: one token
 *                               per merge, in merge order; last: "<|endoftext|>"
 *   tokenizer.ggml.token_type   i32: 1 (normal) for all, 3 (control) for "<|endoftext|>"
 *   tokenizer.ggml.merges       "left right" in merge order (token i = merge i - 256)
 *   tokenizer.ggml.bos_token_id, eos_token_id   u32: both "<|endoftext|>"
 *   tokenizer.ggml.add_bos_token true, add_eos_token false (models get BOS, as llama does)
 * Token texts use GPT-2's byte-to-code-point alphabet (a space is "Ġ", a newline "Ċ").
 * Every merge makes a new token: a pair whose concatenation already is a token (reachable
 * by another split) is skipped, so n_merges = n_tokens - 257 exactly, as in GPT-2.
 *
 * The output depends only on the text and n_vocab (no hash order, no randomness). */
#ifndef MLC_VOCAB_H
#define MLC_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "mlc/gguf_writer.h"
#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tokens that are not merges: the 256 bytes and "<|endoftext|>". */
#define MLC_VOCAB_MIN 257
#define MLC_VOCAB_MAX (1 << 24)

/* Trains on text[0..len) (any bytes) for a vocabulary of n_vocab tokens in all
 * (MLC_VOCAB_MIN..MLC_VOCAB_MAX) and sets the keys above in w (replacing any present).
 * When the text runs out of pairs to merge first (every distinct word already a single
 * token), training stops early rather than inventing tokens: the vocabulary is then smaller
 * than n_vocab, and its real size is the length of tokenizer.ggml.tokens (callers that need
 * an exact size pad it, e.g. with unused tokens). Empty text or n_vocab out of range:
 * MLC_ERR_ARG.
 *
 * Pre-tokenization approximates GPT-2's regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * on bytes: exact for ASCII (letters A-Za-z, digits 0-9, spaces \t\n\v\f\r and ' '), while
 * every byte >= 0x80 counts as a letter (so "café", "日本" and emoji stay inside words).
 * This only changes which merges are learned: tokenizing with the result is done by
 * mlc_tokenize with the real Unicode classes, and every byte always has a token. */
mlc_status mlc_vocab_train_bpe(const char *text, size_t len, int32_t n_vocab,
                               mlc_gguf_writer *w, mlc_err *err);

/* The words training cuts text[0..len) into, as byte lengths of consecutive pieces (*lens
 * malloc'd, caller frees; NULL when len is 0), like mlc_tokenizer_split. For tests (on ASCII
 * it must agree with the tokenizer's "gpt-2" pre-tokenizer) and for showing the cut. */
mlc_status mlc_vocab_split(const char *text, size_t len, size_t **lens, size_t *n,
                           mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
