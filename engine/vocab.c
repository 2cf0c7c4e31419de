/* vocab.c: byte-level BPE training (see mlc/vocab.h for what is written and why).
 *
 * Data flow:
 *   text --split--> words, counted in a hash table (one entry per distinct word)
 *        --> each word's symbols: its bytes as byte-token ids, in one shared array
 *        --> pair table: every adjacent (left, right) pair with its total count (over word
 *            frequencies) and the list of words it occurs in (a linked list in one node pool)
 *        --> a max-heap of (count, pair), lazily updated: an entry whose count no longer
 *            matches the pair's is stale and is dropped or re-queued when it surfaces.
 *   One merge (a, b) -> c walks only the words listed for (a, b), rewrites their symbols in
 *   place and adjusts the counts of the neighbouring pairs (prev a -> prev c, b next ->
 *   c next). Pairs that gained count are queued once at the end of the step. The cost of a
 *   merge is thus proportional to the words it touches, not to the corpus.
 * A pair's count only grows in the step that creates its newer token, so the heap's top,
 * once its count is checked against the table, is the true maximum. */
#include "mlc/vocab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define K_MODEL "tokenizer.ggml.model"
#define K_PRE "tokenizer.ggml.pre"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"
#define K_BOS "tokenizer.ggml.bos_token_id"
#define K_EOS "tokenizer.ggml.eos_token_id"
#define K_ADD_BOS "tokenizer.ggml.add_bos_token"
#define K_ADD_EOS "tokenizer.ggml.add_eos_token"

#define EOT_TEXT "<|endoftext|>"
#define TOKEN_NORMAL 1
#define TOKEN_CONTROL 3

/* Offsets and node indices are 32-bit; a gigabyte keeps every count far from overflow
 * (nodes <= pairs + 2 per merge application <= 3 x text bytes). */
#define TEXT_MAX ((size_t)1 << 30)

/* ------------------------------------------------------------------ GPT-2 byte alphabet */

/* Bytes GPT-2 shows as themselves; the other 68 map, in order, to U+0100.. */
static bool byte_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

typedef struct alphabet {
    int32_t id_of[256];  /* byte -> token id (GPT-2's order: printable bytes first) */
    uint16_t cp_of[256]; /* byte -> code point of its token text */
} alphabet;

static void alphabet_init(alphabet *al)
{
    int32_t id = 0;
    uint16_t extra = 256;
    for (unsigned b = 0; b < 256; b++)
        if (byte_printable(b)) {
            al->id_of[b] = id++;
            al->cp_of[b] = (uint16_t)b;
        }
    for (unsigned b = 0; b < 256; b++)
        if (!byte_printable(b)) {
            al->id_of[b] = id++;
            al->cp_of[b] = extra++;
        }
}

/* ------------------------------------------------------------------ pre-tokenizer */

enum { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

/* ASCII classes as in Unicode; every byte >= 0x80 is a letter (the documented
 * approximation: it keeps multi-byte characters inside words without decoding them). */
static int byte_class(unsigned char c)
{
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return C_LETTER;
    if (c >= '0' && c <= '9')
        return C_NUMBER;
    if ((c >= 0x09 && c <= 0x0D) || c == ' ')
        return C_SPACE;
    return C_OTHER;
}

/* Length of the word at s[pos] (pos < n), by
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_word(const unsigned char *s, size_t n, size_t pos)
{
    if (s[pos] == '\'' && pos + 1 < n) {
        unsigned char a = s[pos + 1], b = pos + 2 < n ? s[pos + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    size_t p = pos + (s[pos] == ' ');
    if (p < n) {
        int c = byte_class(s[p]);
        if (c != C_SPACE) { /* letters, numbers and "other" each take a run of their class */
            while (p < n && byte_class(s[p]) == c)
                p++;
            return p - pos;
        }
    }
    /* \s+(?!\S) leaves the last space of a run to prefix the next word; at the end of the
     * text (or a lone space before a non-space, which ` ?` did not take) \s+ takes it all. */
    size_t k = 0;
    while (pos + k < n && byte_class(s[pos + k]) == C_SPACE)
        k++;
    if (k > 1 && pos + k < n)
        return k - 1;
    return k ? k : 1;
}

mlc_status mlc_vocab_split(const char *text, size_t len, size_t **lens, size_t *n, mlc_err *err)
{
    if (lens)
        *lens = NULL;
    if (n)
        *n = 0;
    if (!lens || !n || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_vocab_split: NULL argument");
    size_t cap = 0, count = 0, *out = NULL;
    for (size_t pos = 0; pos < len;) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            size_t *p = realloc(out, ncap * sizeof *p);
            if (!p) {
                free(out);
                return mlc_err_set(err, MLC_ERR_NOMEM, "mlc_vocab_split: out of memory");
            }
            out = p;
            cap = ncap;
        }
        size_t m = next_word((const unsigned char *)text, len, pos);
        out[count++] = m;
        pos += m;
    }
    *lens = out;
    *n = count;
    return MLC_OK;
}

/* ------------------------------------------------------------------ helpers */

/* Doubles *p (elements of size elem) until it holds need; false when out of memory. */
static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(*p, ncap * elem);
    if (!q)
        return false;
    *p = q;
    *cap = ncap;
    return true;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* FNV-1a, streaming so a concatenation can be hashed without building it. */
#define FNV_SEED 0xCBF29CE484222325ull
static uint64_t fnv(uint64_t h, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001B3ull;
    return h;
}

/* Open-addressing index: slots hold (index + 1, hash) so the table can grow without
 * knowing what it indexes; lookups compare the hash, then the caller's key. */
typedef struct slot {
    uint32_t id1; /* index + 1; 0 = empty */
    uint32_t h;
} slot;

typedef struct table {
    slot *s;
    size_t mask, n;
} table;

/* Makes room for one more entry (load factor <= 1/2). */
static bool table_reserve(table *tb)
{
    if (tb->s && (tb->n + 1) * 2 <= tb->mask + 1)
        return true;
    size_t size = tb->s ? (tb->mask + 1) * 2 : 1024;
    slot *ns = calloc(size, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; tb->s && i <= tb->mask; i++) {
        if (!tb->s[i].id1)
            continue;
        size_t j = tb->s[i].h & (size - 1);
        while (ns[j].id1)
            j = (j + 1) & (size - 1);
        ns[j] = tb->s[i];
    }
    free(tb->s);
    tb->s = ns;
    tb->mask = size - 1;
    return true;
}

static void table_put(table *tb, size_t at, uint32_t h, uint32_t idx)
{
    tb->s[at] = (slot){idx + 1, h};
    tb->n++;
}

/* ------------------------------------------------------------------ trainer state */

typedef struct word {
    uint32_t off, len;   /* bytes in the text */
    uint32_t sym, n_sym; /* symbols in tr->syms */
    int64_t count;
    uint32_t stamp; /* last merge step that rewrote it (a word is listed once per pair) */
} word;

typedef struct pair {
    int32_t a, b;
    int64_t count;
    uint32_t head;  /* first node of the words it occurs in (1-based; 0 = none) */
    uint32_t stamp; /* last merge step that queued it */
    bool banned;    /* its concatenation is already a token: never merged */
} pair;

typedef struct node {
    uint32_t word, next;
} node;

typedef struct entry {
    int64_t count;
    uint32_t pair;
} entry;

typedef struct tok {
    uint32_t off, len; /* raw bytes in tr->tb */
    int32_t left, right; /* the merge that made it; -1 for byte tokens */
} tok;

typedef struct trainer {
    const unsigned char *text;
    word *words;
    size_t n_words, cap_words;
    table wtab;
    int32_t *syms;
    pair *pairs;
    size_t n_pairs, cap_pairs;
    table ptab;
    node *nodes;
    size_t n_nodes, cap_nodes;
    entry *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched; /* pairs that gained count in this step */
    size_t n_touched, cap_touched;
    tok *toks;
    size_t n_toks, cap_toks;
    unsigned char *tb; /* token bytes */
    size_t n_tb, cap_tb;
    table ttab;
    uint32_t step;
} trainer;

static void trainer_free(trainer *tr)
{
    free(tr->words);
    free(tr->wtab.s);
    free(tr->syms);
    free(tr->pairs);
    free(tr->ptab.s);
    free(tr->nodes);
    free(tr->heap);
    free(tr->touched);
    free(tr->toks);
    free(tr->tb);
    free(tr->ttab.s);
}

/* ------------------------------------------------------------------ words */

static bool add_word(trainer *tr, uint32_t off, uint32_t len)
{
    if (!table_reserve(&tr->wtab))
        return false;
    const unsigned char *s = tr->text + off;
    uint32_t h = (uint32_t)mix64(fnv(FNV_SEED, s, len));
    size_t i = h & tr->wtab.mask;
    for (; tr->wtab.s[i].id1; i = (i + 1) & tr->wtab.mask) {
        word *w = &tr->words[tr->wtab.s[i].id1 - 1];
        if (tr->wtab.s[i].h == h && w->len == len && !memcmp(tr->text + w->off, s, len)) {
            w->count++;
            return true;
        }
    }
    if (!grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words))
        return false;
    tr->words[tr->n_words] = (word){off, len, 0, len, 1, 0};
    table_put(&tr->wtab, i, h, (uint32_t)tr->n_words++);
    return true;
}

/* Words in first-occurrence order, each with its symbols set to its bytes' token ids. */
static bool count_words(trainer *tr, size_t len, const alphabet *al)
{
    for (size_t pos = 0; pos < len;) {
        size_t m = next_word(tr->text, len, pos);
        if (!add_word(tr, (uint32_t)pos, (uint32_t)m))
            return false;
        pos += m;
    }
    size_t total = 0;
    for (size_t i = 0; i < tr->n_words; i++)
        total += tr->words[i].len;
    tr->syms = malloc(total * sizeof *tr->syms);
    if (!tr->syms)
        return false;
    uint32_t at = 0;
    for (size_t i = 0; i < tr->n_words; i++) {
        word *w = &tr->words[i];
        w->sym = at;
        for (uint32_t k = 0; k < w->len; k++)
            tr->syms[at++] = al->id_of[tr->text[w->off + k]];
    }
    return true;
}

/* ------------------------------------------------------------------ tokens */

static uint32_t concat_hash(const trainer *tr, int32_t a, int32_t b)
{
    const tok *x = &tr->toks[a], *y = &tr->toks[b];
    return (uint32_t)mix64(fnv(fnv(FNV_SEED, tr->tb + x->off, x->len), tr->tb + y->off, y->len));
}

/* Slot of the token whose bytes are those of a then b, or of the empty slot to put it in;
 * *found tells which. The table must have room for one more. */
static size_t find_concat(const trainer *tr, int32_t a, int32_t b, uint32_t h, bool *found)
{
    const tok *x = &tr->toks[a], *y = &tr->toks[b];
    size_t i = h & tr->ttab.mask;
    for (; tr->ttab.s[i].id1; i = (i + 1) & tr->ttab.mask) {
        const tok *t = &tr->toks[tr->ttab.s[i].id1 - 1];
        if (tr->ttab.s[i].h == h && t->len == x->len + y->len &&
            !memcmp(tr->tb + t->off, tr->tb + x->off, x->len) &&
            !memcmp(tr->tb + t->off + x->len, tr->tb + y->off, y->len)) {
            *found = true;
            return i;
        }
    }
    *found = false;
    return i;
}

static bool add_token(trainer *tr, const unsigned char *bytes, uint32_t len, int32_t left,
                      int32_t right)
{
    if (!grow((void **)&tr->toks, &tr->cap_toks, tr->n_toks + 1, sizeof *tr->toks) ||
        !grow((void **)&tr->tb, &tr->cap_tb, tr->n_tb + len, 1))
        return false;
    tr->toks[tr->n_toks++] = (tok){(uint32_t)tr->n_tb, len, left, right};
    if (bytes)
        memcpy(tr->tb + tr->n_tb, bytes, len);
    tr->n_tb += len;
    return true;
}

static bool init_tokens(trainer *tr, const alphabet *al)
{
    unsigned char byte_of[256];
    for (unsigned b = 0; b < 256; b++)
        byte_of[al->id_of[b]] = (unsigned char)b;
    for (unsigned id = 0; id < 256; id++) {
        if (!add_token(tr, &byte_of[id], 1, -1, -1) || !table_reserve(&tr->ttab))
            return false;
        uint32_t h = (uint32_t)mix64(fnv(FNV_SEED, &byte_of[id], 1));
        size_t i = h & tr->ttab.mask;
        while (tr->ttab.s[i].id1)
            i = (i + 1) & tr->ttab.mask;
        table_put(&tr->ttab, i, h, id);
    }
    return true;
}

/* ------------------------------------------------------------------ pairs and the heap */

/* Order of the heap: higher count first, then lower left id, then lower right id. */
static bool better(const trainer *tr, entry x, entry y)
{
    if (x.count != y.count)
        return x.count > y.count;
    const pair *p = &tr->pairs[x.pair], *q = &tr->pairs[y.pair];
    return p->a != q->a ? p->a < q->a : p->b < q->b;
}

static void sift_down(trainer *tr, size_t i)
{
    entry *h = tr->heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < tr->n_heap && better(tr, h[l], h[m]))
            m = l;
        if (r < tr->n_heap && better(tr, h[r], h[m]))
            m = r;
        if (m == i)
            return;
        entry t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static bool heap_push(trainer *tr, uint32_t p)
{
    if (!grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap))
        return false;
    entry e = {tr->pairs[p].count, p};
    size_t i = tr->n_heap++;
    while (i && better(tr, e, tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = e;
    return true;
}

static entry heap_pop(trainer *tr)
{
    entry top = tr->heap[0];
    tr->heap[0] = tr->heap[--tr->n_heap];
    if (tr->n_heap)
        sift_down(tr, 0);
    return top;
}

/* Index of pair (a, b), created with count 0 when new; UINT32_MAX when out of memory. */
static uint32_t get_pair(trainer *tr, int32_t a, int32_t b)
{
    if (!table_reserve(&tr->ptab))
        return UINT32_MAX;
    uint32_t h = (uint32_t)mix64(((uint64_t)(uint32_t)a << 32) | (uint32_t)b);
    size_t i = h & tr->ptab.mask;
    for (; tr->ptab.s[i].id1; i = (i + 1) & tr->ptab.mask) {
        const pair *p = &tr->pairs[tr->ptab.s[i].id1 - 1];
        if (p->a == a && p->b == b)
            return tr->ptab.s[i].id1 - 1;
    }
    if (!grow((void **)&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs))
        return UINT32_MAX;
    tr->pairs[tr->n_pairs] = (pair){a, b, 0, 0, 0, false};
    table_put(&tr->ptab, i, h, (uint32_t)tr->n_pairs);
    return (uint32_t)tr->n_pairs++;
}

/* Adds delta occurrences of (a, b). A gain lists word wi for the pair (once in a row: a
 * word's repeated pair is listed once) and marks the pair for queueing at the end of the
 * step. */
static bool count_pair(trainer *tr, int32_t a, int32_t b, int64_t delta, uint32_t wi)
{
    uint32_t pi = get_pair(tr, a, b);
    if (pi == UINT32_MAX)
        return false;
    pair *p = &tr->pairs[pi];
    p->count += delta;
    if (delta <= 0)
        return true;
    if (!p->head || tr->nodes[p->head - 1].word != wi) {
        if (!grow((void **)&tr->nodes, &tr->cap_nodes, tr->n_nodes + 1, sizeof *tr->nodes))
            return false;
        tr->nodes[tr->n_nodes++] = (node){wi, p->head};
        p->head = (uint32_t)tr->n_nodes;
    }
    if (p->stamp != tr->step) {
        p->stamp = tr->step;
        if (!grow((void **)&tr->touched, &tr->cap_touched, tr->n_touched + 1,
                  sizeof *tr->touched))
            return false;
        tr->touched[tr->n_touched++] = pi;
    }
    return true;
}

/* Queues the pairs that gained count in this step, with their final counts. */
static bool queue_touched(trainer *tr)
{
    for (size_t i = 0; i < tr->n_touched; i++)
        if (tr->pairs[tr->touched[i]].count > 0 && !heap_push(tr, tr->touched[i]))
            return false;
    tr->n_touched = 0;
    return true;
}

static bool count_all_pairs(trainer *tr)
{
    tr->step = 1;
    for (size_t wi = 0; wi < tr->n_words; wi++) {
        const word *w = &tr->words[wi];
        for (uint32_t k = 0; k + 1 < w->n_sym; k++)
            if (!count_pair(tr, tr->syms[w->sym + k], tr->syms[w->sym + k + 1], w->count,
                            (uint32_t)wi))
                return false;
    }
    return queue_touched(tr);
}

/* ------------------------------------------------------------------ merging */

/* Rewrites every (a, b) of word wi as c, left to right (so "a a a" under (a, a) gives
 * "c a"), and moves the counts of the neighbouring pairs. The previous symbol is read from
 * the rewritten part, so two merges in a row correctly make (c, c). */
static bool merge_word(trainer *tr, uint32_t wi, int32_t a, int32_t b, int32_t c)
{
    const word w = tr->words[wi];
    int32_t *s = tr->syms + w.sym;
    uint32_t o = 0;
    for (uint32_t i = 0; i < w.n_sym;) {
        if (i + 1 < w.n_sym && s[i] == a && s[i + 1] == b) {
            if (o && (!count_pair(tr, s[o - 1], a, -w.count, wi) ||
                      !count_pair(tr, s[o - 1], c, w.count, wi)))
                return false;
            if (!count_pair(tr, a, b, -w.count, wi))
                return false;
            if (i + 2 < w.n_sym && (!count_pair(tr, b, s[i + 2], -w.count, wi) ||
                                    !count_pair(tr, c, s[i + 2], w.count, wi)))
                return false;
            s[o++] = c;
            i += 2;
        } else {
            s[o++] = s[i++];
        }
    }
    tr->words[wi].n_sym = o;
    return true;
}

/* The best pair that may be merged, or UINT32_MAX when none is left. Stale heap entries
 * (the pair's count fell since) are re-queued with the current count; pairs whose
 * concatenation is already a token are banned. */
static uint32_t best_pair(trainer *tr, bool *oom)
{
    while (tr->n_heap) {
        entry e = heap_pop(tr);
        pair *p = &tr->pairs[e.pair];
        if (p->banned || p->count <= 0)
            continue;
        if (p->count != e.count) {
            /* A larger count has its own, fresher entry; a smaller one needs one. */
            if (p->count < e.count && !heap_push(tr, e.pair)) {
                *oom = true;
                return UINT32_MAX;
            }
            continue;
        }
        bool found;
        if (!table_reserve(&tr->ttab)) {
            *oom = true;
            return UINT32_MAX;
        }
        find_concat(tr, p->a, p->b, concat_hash(tr, p->a, p->b), &found);
        if (found) {
            p->banned = true;
            continue;
        }
        return e.pair;
    }
    return UINT32_MAX;
}

/* Merges until target tokens exist or no pair is left. */
static bool train(trainer *tr, size_t target)
{
    while (tr->n_toks < target) {
        bool oom = false;
        uint32_t pi = best_pair(tr, &oom);
        if (oom)
            return false;
        if (pi == UINT32_MAX)
            return true;
        const int32_t a = tr->pairs[pi].a, b = tr->pairs[pi].b, c = (int32_t)tr->n_toks;
        const uint32_t la = tr->toks[a].len, lb = tr->toks[b].len;
        bool found;
        uint32_t h = concat_hash(tr, a, b);
        size_t at = find_concat(tr, a, b, h, &found); /* room reserved by best_pair */
        if (!add_token(tr, NULL, la + lb, a, b))
            return false;
        /* Both halves are earlier tokens, so they lie before the new bytes. */
        memcpy(tr->tb + tr->toks[c].off, tr->tb + tr->toks[a].off, la);
        memcpy(tr->tb + tr->toks[c].off + la, tr->tb + tr->toks[b].off, lb);
        table_put(&tr->ttab, at, h, (uint32_t)c);

        tr->step++;
        /* The list of (a, b) does not change while merging: new nodes only go to pairs
         * with c. The node pool may move, so it is indexed afresh each time. */
        for (uint32_t nd = tr->pairs[pi].head; nd; nd = tr->nodes[nd - 1].next) {
            uint32_t wi = tr->nodes[nd - 1].word;
            if (tr->words[wi].stamp == tr->step)
                continue;
            tr->words[wi].stamp = tr->step;
            if (!merge_word(tr, wi, a, b, c))
                return false;
        }
        if (!queue_touched(tr))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ output */

/* UTF-8 of a GPT-2 alphabet code point (< 0x800). */
static size_t put_cp(unsigned char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
}

static mlc_status key_err(mlc_status st, const char *key, mlc_err *err)
{
    if (st)
        mlc_err_set(err, st, "mlc_vocab_train_bpe: cannot set key '%s': %s", key,
                    mlc_status_str(st));
    return st;
}

/* Writes the tokenizer keys: token texts (each NUL-terminated in one buffer), merges as
 * "left right" (in another), then the scalar keys. */
static mlc_status write_keys(const trainer *tr, const alphabet *al, mlc_gguf_writer *w,
                             mlc_err *err)
{
    const size_t n = tr->n_toks + 1, n_merges = tr->n_toks - 256;
    /* A token's text is at most 2 bytes per byte; its merge adds a space and a NUL. */
    size_t text_bytes = sizeof EOT_TEXT;
    for (size_t i = 0; i < tr->n_toks; i++)
        text_bytes += 2 * (size_t)tr->toks[i].len + 2;
    unsigned char *texts = malloc(text_bytes), *mtexts = malloc(text_bytes);
    const char **strs = malloc(n * sizeof *strs);
    const char **mstrs = malloc((n_merges ? n_merges : 1) * sizeof *mstrs);
    int32_t *types = malloc(n * sizeof *types);
    mlc_status st = MLC_OK;
    if (!texts || !mtexts || !strs || !mstrs || !types) {
        st = mlc_err_set(err, MLC_ERR_NOMEM, "mlc_vocab_train_bpe: out of memory");
        goto done;
    }
    size_t at = 0;
    for (size_t i = 0; i < tr->n_toks; i++) {
        strs[i] = (const char *)texts + at;
        for (uint32_t k = 0; k < tr->toks[i].len; k++)
            at += put_cp(texts + at, al->cp_of[tr->tb[tr->toks[i].off + k]]);
        texts[at++] = '\0';
        types[i] = TOKEN_NORMAL;
    }
    memcpy(texts + at, EOT_TEXT, sizeof EOT_TEXT);
    strs[n - 1] = (const char *)texts + at;
    types[n - 1] = TOKEN_CONTROL;

    at = 0;
    for (size_t m = 0; m < n_merges; m++) {
        const tok *t = &tr->toks[256 + m];
        size_t la = strlen(strs[t->left]), lb = strlen(strs[t->right]);
        mstrs[m] = (const char *)mtexts + at;
        memcpy(mtexts + at, strs[t->left], la);
        mtexts[at + la] = ' ';
        memcpy(mtexts + at + la + 1, strs[t->right], lb + 1);
        at += la + lb + 2;
    }

    const uint32_t eot = (uint32_t)(n - 1);
    if ((st = key_err(mlc_gguf_writer_set_str(w, K_MODEL, "gpt2"), K_MODEL, err)) ||
        (st = key_err(mlc_gguf_writer_set_str(w, K_PRE, "gpt-2"), K_PRE, err)) ||
        (st = key_err(mlc_gguf_writer_set_arr_str(w, K_TOKENS, strs, n), K_TOKENS, err)) ||
        (st = key_err(mlc_gguf_writer_set_arr(w, K_TYPES, MLC_GGUF_INT32, types, n), K_TYPES,
                      err)) ||
        (st = key_err(mlc_gguf_writer_set_arr_str(w, K_MERGES, mstrs, n_merges), K_MERGES,
                      err)) ||
        (st = key_err(mlc_gguf_writer_set_u32(w, K_BOS, eot), K_BOS, err)) ||
        (st = key_err(mlc_gguf_writer_set_u32(w, K_EOS, eot), K_EOS, err)) ||
        (st = key_err(mlc_gguf_writer_set_bool(w, K_ADD_BOS, true), K_ADD_BOS, err)) ||
        (st = key_err(mlc_gguf_writer_set_bool(w, K_ADD_EOS, false), K_ADD_EOS, err)))
        goto done;
done:
    free(texts);
    free(mtexts);
    free(strs);
    free(mstrs);
    free(types);
    return st;
}

mlc_status mlc_vocab_train_bpe(const char *text, size_t len, int32_t n_vocab,
                               mlc_gguf_writer *w, mlc_err *err)
{
    if (!w || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_vocab_train_bpe: NULL argument");
    if (!len)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "mlc_vocab_train_bpe: empty text: a vocabulary needs text to "
                           "learn merges from");
    if (len > TEXT_MAX)
        return mlc_err_set(err, MLC_ERR_RANGE,
                           "mlc_vocab_train_bpe: text of %zu bytes is too large (at most %zu)",
                           len, TEXT_MAX);
    if (n_vocab < MLC_VOCAB_MIN || n_vocab > MLC_VOCAB_MAX)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "mlc_vocab_train_bpe: vocabulary size %d out of range (%d: the 256 "
                           "bytes and <|endoftext|>, to %d)",
                           (int)n_vocab, MLC_VOCAB_MIN, MLC_VOCAB_MAX);
    alphabet al;
    alphabet_init(&al);
    trainer tr = {.text = (const unsigned char *)text};
    mlc_status st = MLC_OK;
    if (!count_words(&tr, len, &al) || !init_tokens(&tr, &al) || !count_all_pairs(&tr) ||
        !train(&tr, (size_t)n_vocab - 1))
        st = mlc_err_set(err, MLC_ERR_NOMEM, "mlc_vocab_train_bpe: out of memory");
    if (!st)
        st = write_keys(&tr, &al, w, err);
    trainer_free(&tr);
    return st;
}
