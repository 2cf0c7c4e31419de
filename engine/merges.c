/* merges.c: growable arrays and the merge queue of the tokenizers (see merges.h). */
#include "merges.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

bool mlc_tok_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np)
        return false;
    *p = np;
    *cap = c;
    return true;
}

bool mlc_tok_bytes_put(tok_bytes *b, const void *s, size_t n)
{
    if (!mlc_tok_grow((void **)&b->p, &b->cap, b->n + n, 1))
        return false;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

bool mlc_tok_ids_push(tok_ids *v, int32_t x)
{
    if (!mlc_tok_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p))
        return false;
    v->p[v->n++] = x;
    return true;
}

void mlc_tok_work_free(tok_work *w)
{
    free(w->buf.p);
    free(w->syms);
    free(w->q.p);
    free(w->cps);
    free(w->fl);
    free(w->lens);
    free(w->lens2);
    free(w->out.p);
}

static bool before(const tok_bigram *a, const tok_bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

bool mlc_tok_heap_push(tok_heap *h, tok_bigram b)
{
    if (!mlc_tok_grow((void **)&h->p, &h->cap, h->n + 1, sizeof *h->p))
        return false;
    size_t i = h->n++;
    while (i > 0 && before(&b, &h->p[(i - 1) / 2])) {
        h->p[i] = h->p[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->p[i] = b;
    return true;
}

static tok_bigram heap_pop(tok_heap *h)
{
    tok_bigram top = h->p[0], last = h->p[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->p[c + 1], &h->p[c]))
            c++;
        if (!before(&h->p[c], &last))
            break;
        h->p[i] = h->p[c];
        i = c;
    }
    if (h->n)
        h->p[i] = last;
    return top;
}

bool mlc_tok_make_syms(tok_work *w)
{
    w->n_syms = 0;
    for (size_t off = 0; off < w->buf.n;) {
        size_t n = mlc_utf8_lead_len((unsigned char)w->buf.p[off]);
        if (n > w->buf.n - off)
            n = w->buf.n - off;
        if (!mlc_tok_grow((void **)&w->syms, &w->cap_syms, w->n_syms + 1, sizeof *w->syms))
            return false;
        int32_t i = (int32_t)w->n_syms++;
        w->syms[i] = (tok_sym){i - 1, off + n == w->buf.n ? -1 : i + 1, off, n};
        off += n;
    }
    return true;
}

bool mlc_tok_run_merges(tok_work *w, tok_pair_fn add)
{
    w->q.n = 0;
    for (size_t i = 1; i < w->n_syms; i++)
        if (!add(w, (int32_t)i - 1, (int32_t)i))
            return false;
    while (w->q.n) {
        tok_bigram b = heap_pop(&w->q);
        tok_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = b.left;
        if ((l->prev >= 0 && !add(w, l->prev, b.left)) ||
            (l->next >= 0 && !add(w, b.left, l->next)))
            return false;
    }
    return true;
}
