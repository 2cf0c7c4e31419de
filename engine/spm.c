/* spm.c: SentencePiece-style merging of a fragment (see spm.h). */
#include "spm.h"

#include <string.h>

static bool spm_pair(tok_work *w, int32_t left, int32_t right)
{
    const tok_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t id = mlc_tokenizer_find(w->t, w->buf.p + l->off, l->n + r->n);
    if (id < 0)
        return true;
    return mlc_tok_heap_push(&w->q, (tok_bigram){w->t->toks[id].score, left, right,
                                                 l->n + r->n});
}

/* A final symbol: its token, or its bytes as byte tokens (<unk> when a byte has none,
 * where llama.cpp would throw). */
static mlc_status spm_emit(tok_work *w, const tok_sym *s, mlc_err *err)
{
    const mlc_tokenizer *t = w->t;
    int32_t id = mlc_tokenizer_find(t, w->buf.p + s->off, s->n);
    if (id >= 0)
        return mlc_tok_ids_push(&w->out, id) ? MLC_OK : MLC_ERR_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char b = (unsigned char)w->buf.p[s->off + i];
        id = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->unk;
        if (id < 0)
            return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                               "%s: tokenizer: no token for byte 0x%02X and no unknown token",
                               t->path, b);
        if (!mlc_tok_ids_push(&w->out, id))
            return MLC_ERR_NOMEM;
    }
    return MLC_OK;
}

mlc_status mlc_spm_fragment(tok_work *w, const char *s, size_t n, bool prefix, mlc_err *err)
{
    static const char lower_block[3] = {'\xE2', '\x96', '\x81'};
    w->buf.n = 0;
    if (prefix && !mlc_tok_bytes_put(&w->buf, lower_block, 3))
        return MLC_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t run = sp ? (size_t)(sp - (s + i)) : n - i;
        if (!mlc_tok_bytes_put(&w->buf, s + i, run) ||
            (sp && !mlc_tok_bytes_put(&w->buf, lower_block, 3)))
            return MLC_ERR_NOMEM;
        i += run + (sp != NULL);
    }
    if (!mlc_tok_make_syms(w) || !mlc_tok_run_merges(w, spm_pair))
        return MLC_ERR_NOMEM;
    for (int32_t i = 0; w->n_syms && i != -1; i = w->syms[i].next) {
        mlc_status st = spm_emit(w, &w->syms[i], err);
        if (st)
            return st;
    }
    return MLC_OK;
}
