/* bpe.c: BPE merging of a fragment after its pre-tokenizer (see bpe.h). */
#include "bpe.h"

#include <stdint.h>
#include <string.h>

#include "unicode.h"

/* The fragment's code points and flags; SentencePiece-style vocabularies see spaces as
 * U+2581 (llama.cpp escapes the text before splitting it). */
static bool decode_cps(tok_work *w, const char *s, size_t n)
{
    if (!mlc_tok_grow((void **)&w->cps, &w->cap_cps, n, sizeof *w->cps) ||
        !mlc_tok_grow((void **)&w->fl, &w->cap_fl, n, 1))
        return false;
    const bool escape = w->t->escape_spaces;
    w->n_cps = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += mlc_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (escape && cp == ' ')
            cp = 0x2581;
        w->fl[w->n_cps] = mlc_cp_flags(cp);
        w->cps[w->n_cps++] = cp;
    }
    return true;
}

size_t mlc_bpe_words(tok_work *w, const char *s, size_t n)
{
    if (!decode_cps(w, s, n) ||
        !mlc_tok_grow((void **)&w->lens, &w->cap_lens, w->n_cps + 1, sizeof *w->lens) ||
        !mlc_tok_grow((void **)&w->lens2, &w->cap_lens2, w->n_cps + 1, sizeof *w->lens2))
        return SIZE_MAX;
    return mlc_pretok_split(w->t->pre, w->cps, w->fl, w->n_cps, w->lens, w->lens2);
}

/* The word's code points re-encoded as UTF-8 (so invalid input reads as U+FFFD); for
 * byte-level vocabularies each byte then written as its code point of the alphabet. */
static bool encode_word(tok_work *w, size_t first, size_t count)
{
    w->buf.n = 0;
    for (size_t i = first; i < first + count; i++) {
        char u[4], e[4];
        size_t n = mlc_utf8_encode(w->cps[i], u);
        if (!w->t->byte_level) {
            if (!mlc_tok_bytes_put(&w->buf, u, n))
                return false;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            size_t en = mlc_utf8_encode(mlc_byte_to_cp((unsigned char)u[k]), e);
            if (!mlc_tok_bytes_put(&w->buf, e, en))
                return false;
        }
    }
    return true;
}

static bool bpe_pair(tok_work *w, int32_t left, int32_t right)
{
    const tok_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = mlc_tok_merge_rank(w->t, w->buf.p + l->off, l->n, w->buf.p + r->off, r->n);
    if (rank < 0)
        return true;
    return mlc_tok_heap_push(&w->q, (tok_bigram){-(double)rank, left, right, l->n + r->n});
}

/* A final symbol that is not a token (only with merges that make non-tokens) goes out as
 * the tokens of its single bytes, where they exist, as in llama.cpp: the byte's own token
 * for byte-level vocabularies, <0xXX> for the others. */
static bool bpe_emit(tok_work *w, const tok_sym *s)
{
    const mlc_tokenizer *t = w->t;
    int32_t id = mlc_tokenizer_find(t, w->buf.p + s->off, s->n);
    if (id >= 0)
        return mlc_tok_ids_push(&w->out, id);
    for (size_t i = 0; i < s->n; i++) {
        unsigned char b = (unsigned char)w->buf.p[s->off + i];
        id = t->byte_level ? mlc_tokenizer_find(t, w->buf.p + s->off + i, 1) : t->byte_tok[b];
        if (id >= 0 && !mlc_tok_ids_push(&w->out, id))
            return false;
    }
    return true;
}

/* A word that is taken whole when it is a token: any word with ignore_merges (llama3),
 * a word of newlines only for gemma4. */
static bool whole_word(const tok_work *w)
{
    if (w->t->ignore_merges)
        return true;
    if (!(w->t->pre->flags & MLC_PRETOK_NEWLINE_WORDS))
        return false;
    for (size_t i = 0; i < w->buf.n; i++)
        if (w->buf.p[i] != '\n')
            return false;
    return true;
}

static bool bpe_word(tok_work *w)
{
    if (whole_word(w)) {
        int32_t id = mlc_tokenizer_find(w->t, w->buf.p, w->buf.n);
        if (id >= 0)
            return mlc_tok_ids_push(&w->out, id);
    }
    if (!mlc_tok_make_syms(w) || !mlc_tok_run_merges(w, bpe_pair))
        return false;
    for (size_t i = 0; i < w->n_syms; i++)
        if (w->syms[i].n && !bpe_emit(w, &w->syms[i]))
            return false;
    return true;
}

mlc_status mlc_bpe_fragment(tok_work *w, const char *s, size_t n)
{
    size_t n_words = mlc_bpe_words(w, s, n);
    if (n_words == SIZE_MAX)
        return MLC_ERR_NOMEM;
    size_t first = 0;
    for (size_t i = 0; i < n_words; i++) {
        if (!encode_word(w, first, w->lens[i]) || !bpe_word(w))
            return MLC_ERR_NOMEM;
        first += w->lens[i];
    }
    return MLC_OK;
}
