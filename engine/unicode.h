/* unicode.h: what the tokenizers need of Unicode: UTF-8 decoding and encoding as llama.cpp
 * does them, the general category of a code point (letter, number, punctuation, mark,
 * symbol) and White_Space, and GPT-2's byte-to-code-point alphabet. */
#ifndef MLC_UNICODE_H
#define MLC_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Flags of a code point. MLC_CP_ANY is set for every code point of the text being split:
 * positions past a segment have no flags at all, which the pre-tokenizers rely on. */
enum {
    MLC_CP_LETTER = 1,  /* \p{L} */
    MLC_CP_NUMBER = 2,  /* \p{N} */
    MLC_CP_PUNCT = 4,   /* \p{P} */
    MLC_CP_SPACE = 8,   /* White_Space */
    MLC_CP_ANY = 16,
    MLC_CP_MARK = 32,   /* \p{M} */
    MLC_CP_SYMBOL = 64, /* \p{S} */
};

/* Flags of cp (Unicode 15.1, the version of llama.cpp's tables). */
uint8_t mlc_cp_flags(uint32_t cp);

/* Decodes one code point from s[0..n), n >= 1: continuation bytes are checked, overlong
 * forms and surrogates accepted (as llama.cpp); an invalid or cut sequence, or a value past
 * U+10FFFF, is U+FFFD and consumes one byte. Returns the bytes consumed. */
size_t mlc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp (<= U+10FFFF) into out; returns 1 to 4. */
size_t mlc_utf8_encode(uint32_t cp, char out[4]);
/* Length a lead byte announces, without checking the rest (a stray continuation byte: 1). */
size_t mlc_utf8_lead_len(unsigned char c);

/* GPT-2's byte-level alphabet: byte -> code point, and back (-1: not in the alphabet). */
uint32_t mlc_byte_to_cp(unsigned char b);
int mlc_cp_to_byte(uint32_t cp);

#endif
