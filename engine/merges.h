/* merges.h: the scratch of one tokenization and the merge queue both merge algorithms run:
 * symbols of a word in a linked list, candidate merges of neighbours in a priority queue. */
#ifndef MLC_MERGES_H
#define MLC_MERGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer_impl.h"

/* Grows *p (an array of elem-byte items, *cap of them) to hold at least need items. */
bool mlc_tok_grow(void **p, size_t *cap, size_t need, size_t elem);

typedef struct tok_bytes {
    char *p;
    size_t n, cap;
} tok_bytes;

bool mlc_tok_bytes_put(tok_bytes *b, const void *s, size_t n);

typedef struct tok_ids {
    int32_t *p;
    size_t n, cap;
} tok_ids;

bool mlc_tok_ids_push(tok_ids *v, int32_t x);

/* A symbol of the word in tok_work.buf; merging grows the left one and empties the right. */
typedef struct tok_sym {
    int32_t prev, next;
    size_t off, n;
} tok_sym;

/* A candidate merge of two neighbours. Higher prio first (SentencePiece: score of the merged
 * piece; BPE: minus the merge rank), then the leftmost, as llama.cpp's priority queues. */
typedef struct tok_bigram {
    double prio;
    int32_t left, right;
    size_t size;
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *p;
    size_t n, cap;
} tok_heap;

/* Scratch of one mlc_tokenize call. */
typedef struct tok_work {
    const mlc_tokenizer *t;
    tok_bytes buf;            /* the word or fragment being merged */
    tok_sym *syms;
    size_t n_syms, cap_syms;
    tok_heap q;
    uint32_t *cps;            /* BPE: code points of the fragment and their flags */
    uint8_t *fl;
    size_t n_cps, cap_cps, cap_fl;
    size_t *lens, *lens2;     /* BPE: pre-tokenizer pieces, in code points */
    size_t cap_lens, cap_lens2;
    tok_ids out;
} tok_work;

void mlc_tok_work_free(tok_work *w);

bool mlc_tok_heap_push(tok_heap *h, tok_bigram b);

/* Splits w->buf into symbols of UTF-8 lead-byte length (clipped at the end). */
bool mlc_tok_make_syms(tok_work *w);

/* Queues a candidate for the neighbours left, right, or nothing; false: out of memory. */
typedef bool (*tok_pair_fn)(tok_work *w, int32_t left, int32_t right);

/* Runs the queue to the end: pops the best candidate, drops it if either side has changed
 * since it was queued, else merges and queues the new neighbours. */
bool mlc_tok_run_merges(tok_work *w, tok_pair_fn add);

#endif
