/* tokenizer.c: SentencePiece-style and BPE tokenizers from GGUF metadata, written to give
 * the same ids and text as llama.cpp's (llama-vocab.cpp, unicode.cpp) for the same
 * vocabulary. See mlc/tokenizer.h for the behaviour; comments here explain the why of the
 * less obvious parts, most of which are llama.cpp's conventions kept on purpose.
 *
 * This file loads the vocabulary, finds special tokens in the text and runs a tokenization;
 * the rest of the module: unicode.c (code points), pretok.c (pre-tokenizers), merges.c (the
 * merge queue), spm.c and bpe.c (the two merge algorithms), detokenize.c (ids to text). */
#include "mlc/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "merges.h"
#include "pretok.h"
#include "spm.h"
#include "tokenizer_impl.h"
#include "unicode.h"

/* ------------------------------------------------------------------ lookup tables */

static uint32_t hash_more(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) /* FNV-1a */
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

#define HASH_SEED 2166136261u

static uint32_t table_mask(size_t n)
{
    size_t c = 16;
    while (c < 2 * n)
        c *= 2;
    return (uint32_t)(c - 1);
}

int32_t mlc_tokenizer_find(const mlc_tokenizer *t, const char *s, size_t n)
{
    if (!t || (!s && n))
        return -1;
    for (uint32_t i = hash_more(HASH_SEED, s, n) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
        const tok_info *e = &t->toks[t->slots[i] - 1];
        if (e->len == n && !memcmp(t->text + e->off, s, n))
            return (int32_t)(t->slots[i] - 1);
    }
    return -1;
}

/* The key is hashed in pieces so the pair need not be copied next to each other. */
int32_t mlc_tok_merge_rank(const mlc_tokenizer *t, const char *l, size_t ln, const char *r,
                           size_t rn)
{
    uint32_t h = hash_more(hash_more(hash_more(HASH_SEED, l, ln), " ", 1), r, rn);
    for (uint32_t i = h & t->mmask; t->mslots[i]; i = (i + 1) & t->mmask) {
        const tok_merge *m = &t->merges[t->mslots[i] - 1];
        const char *s = t->mtext + m->off;
        if (m->left_len == ln && m->len == ln + 1 + rn && !memcmp(s, l, ln) &&
            !memcmp(s + ln + 1, r, rn))
            return (int32_t)(t->mslots[i] - 1);
    }
    return -1;
}

void mlc_tokenizer_free(mlc_tokenizer *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->text);
    free(t->toks);
    free(t->slots);
    free(t->mtext);
    free(t->merges);
    free(t->mslots);
    free(t->special);
    free(t);
}

/* ------------------------------------------------------------------ loading */

#define K_MODEL "tokenizer.ggml.model"
#define K_PRE "tokenizer.ggml.pre"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"

/* Printable, one-line rendering of a token text for messages. */
static const char *quoted(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
    }
    buf[o] = 0;
    return buf;
}

static bool str_is(mlc_gguf_str s, const char *z)
{
    return s.len == strlen(z) && !memcmp(s.ptr, z, s.len);
}

/* The pre-tokenizer named by tokenizer.ggml.pre ("default" when absent), or the one a
 * tokenizer model implies (gemma4). Names we have no regexes for are refused, not guessed. */
static mlc_status set_pre(mlc_tokenizer *t, mlc_gguf_str s, mlc_err *err)
{
    char q[96];
    t->pre = mlc_pretok_find(s.ptr, (size_t)s.len);
    if (!t->pre)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: key '%s': unsupported pre-tokenizer '%s' (see the README's "
                           "tokenizer section for the supported names)",
                           t->path, K_PRE, quoted(q, 64, s.ptr, (size_t)s.len));
    quoted(t->pre_name, sizeof t->pre_name, s.ptr, (size_t)s.len);
    t->byte_level = !(t->pre->flags & MLC_PRETOK_RAW);
    t->escape_spaces = !t->byte_level;
    return MLC_OK;
}

static mlc_status load_pre(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    mlc_gguf_str s = {"default", 7};
    mlc_status st = mlc_gguf_get_str(g, K_PRE, &s, err);
    if (st == MLC_ERR_NOT_FOUND)
        s = (mlc_gguf_str){"default", 7};
    else if (st)
        return st;
    return set_pre(t, s, err);
}

/* "gemma4" is BPE whatever tokenizer.ggml.pre says: llama.cpp gives it its own
 * pre-tokenizer (SentencePiece-style BPE). */
static mlc_status load_model(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    mlc_gguf_str s;
    mlc_status st = mlc_gguf_get_str(g, K_MODEL, &s, err);
    if (st)
        return st;
    char q[64];
    if (str_is(s, "llama") || str_is(s, "gpt2") || str_is(s, "gemma4"))
        memcpy(t->model, s.ptr, (size_t)s.len);
    if (str_is(s, "llama")) {
        t->kind = KIND_SPM;
        return MLC_OK;
    }
    if (str_is(s, "gpt2")) {
        t->kind = KIND_BPE;
        return load_pre(t, g, err);
    }
    if (str_is(s, "gemma4")) {
        t->kind = KIND_BPE;
        return set_pre(t, (mlc_gguf_str){"gemma4", 6}, err);
    }
    return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                       "%s: key '%s': unsupported tokenizer model '%s' (supported: llama, gpt2, "
                       "gemma4)",
                       t->path, K_MODEL, quoted(q, sizeof q, s.ptr, (size_t)s.len));
}

/* Token text i; llama.cpp renames empty tokens to "[EMPTY_i]" (with a warning). */
static size_t token_text(const mlc_gguf_value *v, uint64_t i, const char **p, char tmp[32])
{
    mlc_gguf_str s = mlc_gguf_arr_str(v, i);
    if (s.len) {
        *p = s.ptr;
        return (size_t)s.len;
    }
    *p = tmp;
    return (size_t)snprintf(tmp, 32, "[EMPTY_%llu]", (unsigned long long)i);
}

static mlc_status index_tokens(mlc_tokenizer *t, mlc_err *err)
{
    t->mask = table_mask((size_t)t->n_vocab);
    t->slots = calloc((size_t)t->mask + 1, sizeof *t->slots);
    if (!t->slots)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_info *e = &t->toks[id];
        const char *s = t->text + e->off;
        uint32_t i = hash_more(HASH_SEED, s, e->len) & t->mask;
        for (; t->slots[i]; i = (i + 1) & t->mask) {
            const tok_info *o = &t->toks[t->slots[i] - 1];
            char q[96];
            if (o->len == e->len && !memcmp(t->text + o->off, s, e->len))
                /* llama.cpp asserts on this: ids would not round-trip. */
                return mlc_err_set(err, MLC_ERR_FORMAT,
                                   "%s: key '%s': token %d '%s' duplicates token %u", t->path,
                                   K_TOKENS, id, quoted(q, 64, s, e->len), t->slots[i] - 1);
        }
        t->slots[i] = (uint32_t)id + 1;
    }
    return MLC_OK;
}

static mlc_status load_tokens(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status st = mlc_gguf_get_arr(g, K_TOKENS, MLC_GGUF_STRING, &v, err);
    if (st)
        return st;
    if (v->arr.n == 0 || v->arr.n > INT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': %llu tokens", t->path, K_TOKENS,
                           (unsigned long long)v->arr.n);
    t->n_vocab = (int32_t)v->arr.n;
    uint64_t total = 0;
    char tmp[32];
    const char *p;
    for (uint64_t i = 0; i < v->arr.n; i++)
        total += token_text(v, i, &p, tmp);
    if (total > UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': token texts too large", t->path,
                           K_TOKENS);
    t->text = malloc(total ? (size_t)total : 1);
    t->toks = calloc(v->arr.n, sizeof *t->toks);
    if (!t->text || !t->toks)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    uint32_t off = 0;
    for (uint64_t i = 0; i < v->arr.n; i++) {
        size_t n = token_text(v, i, &p, tmp);
        memcpy(t->text + off, p, n);
        t->toks[i] = (tok_info){.off = off, .len = (uint32_t)n, .attr = A_NORMAL};
        off += (uint32_t)n;
    }
    return index_tokens(t, err);
}

/* An optional per-token numeric array: NULL *out when absent. */
static mlc_status token_array(mlc_tokenizer *t, const mlc_gguf *g, const char *key, bool integer,
                              const mlc_gguf_value **out, mlc_err *err)
{
    mlc_status st = mlc_gguf_get_arr(g, key, MLC_GGUF_VTYPE_COUNT, out, err);
    if (st == MLC_ERR_NOT_FOUND) {
        *out = NULL;
        return MLC_OK;
    }
    if (st)
        return st;
    mlc_gguf_vtype et = (*out)->arr.type;
    bool is_float = et == MLC_GGUF_FLOAT32 || et == MLC_GGUF_FLOAT64;
    bool is_int = et <= MLC_GGUF_INT32 || et == MLC_GGUF_UINT64 || et == MLC_GGUF_INT64;
    if (!(is_int || (!integer && is_float)))
        return mlc_err_set(err, MLC_ERR_TYPE,
                           "%s: key '%s': expected array of %s, found array of %s", t->path, key,
                           integer ? "integers" : "numbers", mlc_gguf_vtype_name(et));
    if ((*out)->arr.n != (uint64_t)t->n_vocab)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': %llu entries for %d tokens",
                           t->path, key, (unsigned long long)(*out)->arr.n, t->n_vocab);
    return MLC_OK;
}

static uint8_t attr_of_type(int64_t type)
{
    switch (type) {
    case MLC_TOKEN_NORMAL: return A_NORMAL;
    case MLC_TOKEN_UNKNOWN: return A_UNKNOWN;
    case MLC_TOKEN_CONTROL: return A_CONTROL;
    case MLC_TOKEN_USER_DEFINED: return A_USER;
    case MLC_TOKEN_UNUSED: return A_UNUSED;
    case MLC_TOKEN_BYTE: return A_BYTE;
    default: return A_UNDEFINED;
    }
}

static mlc_status load_scores_types(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *scores, *types;
    mlc_status st = token_array(t, g, K_SCORES, false, &scores, err);
    if (!st)
        st = token_array(t, g, K_TYPES, true, &types, err);
    if (st)
        return st;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (scores)
            t->toks[i].score = (float)mlc_gguf_arr_f64(scores, (uint64_t)i);
        if (types)
            t->toks[i].attr = attr_of_type(mlc_gguf_arr_i64(types, (uint64_t)i));
    }
    return MLC_OK;
}

/* Merges are "left right", split at the first space after the first byte (so a left part
 * that is itself a space still works, as in llama.cpp). The first of duplicates wins. */
static mlc_status parse_merge(mlc_tokenizer *t, const mlc_gguf_value *v, uint64_t i, uint32_t off,
                              mlc_err *err)
{
    mlc_gguf_str s = mlc_gguf_arr_str(v, i);
    const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
    if (!sp || (uint64_t)(sp - s.ptr) + 1 == s.len) {
        char q[96];
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: key '%s': merge %llu '%s' is not \"left right\"", t->path,
                           K_MERGES, (unsigned long long)i, quoted(q, 64, s.ptr, (size_t)s.len));
    }
    memcpy(t->mtext + off, s.ptr, (size_t)s.len);
    t->merges[i] = (tok_merge){off, (uint32_t)s.len, (uint32_t)(sp - s.ptr)};
    return MLC_OK;
}

static void index_merge(mlc_tokenizer *t, uint32_t rank)
{
    const tok_merge *m = &t->merges[rank];
    const char *s = t->mtext + m->off;
    if (mlc_tok_merge_rank(t, s, m->left_len, s + m->left_len + 1, m->len - m->left_len - 1) >= 0)
        return;
    uint32_t i = hash_more(HASH_SEED, s, m->len) & t->mmask;
    while (t->mslots[i])
        i = (i + 1) & t->mmask;
    t->mslots[i] = rank + 1;
}

static mlc_status load_merges(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status st = mlc_gguf_get_arr(g, K_MERGES, MLC_GGUF_STRING, &v, err);
    if (st)
        return st;
    uint64_t total = 0;
    for (uint64_t i = 0; i < v->arr.n; i++)
        total += mlc_gguf_arr_str(v, i).len;
    if (v->arr.n >= INT32_MAX || total > UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: key '%s': too many merges", t->path,
                           K_MERGES);
    t->n_merges = (uint32_t)v->arr.n;
    t->mmask = table_mask(t->n_merges);
    t->mtext = malloc(total ? (size_t)total : 1);
    t->merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *t->merges);
    t->mslots = calloc((size_t)t->mmask + 1, sizeof *t->mslots);
    if (!t->mtext || !t->merges || !t->mslots)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    uint32_t off = 0;
    for (uint32_t i = 0; i < t->n_merges; i++) {
        if ((st = parse_merge(t, v, i, off, err)))
            return st;
        off += t->merges[i].len;
        index_merge(t, i);
    }
    return MLC_OK;
}

/* A token id key: absent keeps *id; present must name a token (llama.cpp only warns and
 * keeps its default, but a file that points outside its vocabulary is broken). */
static mlc_status load_id(mlc_tokenizer *t, const mlc_gguf *g, const char *key, int32_t *id,
                          mlc_err *err)
{
    uint32_t v;
    mlc_status st = mlc_gguf_get_u32(g, key, &v, err);
    if (st == MLC_ERR_NOT_FOUND)
        return MLC_OK;
    if (st)
        return st;
    if (v >= (uint32_t)t->n_vocab)
        return mlc_err_set(err, MLC_ERR_RANGE,
                           "%s: key '%s': token id %u out of range (vocabulary of %d tokens)",
                           t->path, key, v, t->n_vocab);
    *id = (int32_t)v;
    return MLC_OK;
}

static mlc_status load_bool(const mlc_gguf *g, const char *key, bool *out, mlc_err *err)
{
    mlc_status st = mlc_gguf_get_bool(g, key, out, err);
    return st == MLC_ERR_NOT_FOUND ? MLC_OK : st;
}

static int32_t id_or_none(const mlc_tokenizer *t, int32_t id)
{
    return id < t->n_vocab ? id : -1;
}

/* llama.cpp's defaults: SentencePiece has <unk>=0 <s>=1 </s>=2, adds BOS and a space
 * prefix; BPE has BOS = EOS = 11 (sic; gemma4: none), adds neither and cleans spaces when
 * detokenizing, except where the pre-tokenizer's name says otherwise. */
static void set_defaults(mlc_tokenizer *t)
{
    const bool spm = t->kind == KIND_SPM, gemma4 = !strcmp(t->model, "gemma4");
    const unsigned pre = spm ? 0 : t->pre->flags;
    t->bos = gemma4 || (pre & MLC_PRETOK_NO_BOS) ? -1 : id_or_none(t, spm ? 1 : 11);
    t->eos = gemma4 ? -1 : id_or_none(t, spm ? 2 : 11);
    t->unk = spm ? id_or_none(t, 0) : -1;
    t->eot = t->eom = -1;
    t->add_bos = spm || (pre & MLC_PRETOK_ADD_BOS);
    t->add_eos = false;
    t->add_space_prefix = spm;
    t->clean_spaces = !spm && !(pre & MLC_PRETOK_KEEP_SPACES);
    t->ignore_merges = pre & MLC_PRETOK_IGNORE_MERGES;
}

static mlc_status load_specials(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    set_defaults(t);
    mlc_status st = load_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eot_token_id", &t->eot, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.eom_token_id", &t->eom, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err);
    if (!st)
        st = load_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    if (t->kind == KIND_BPE && (t->pre->flags & MLC_PRETOK_FORCE_BOS))
        t->add_bos = true; /* llama.cpp overrides gemma4 files that say otherwise */
    return st;
}

/* Lowest id among tokens with one of these texts, or -1. */
static int32_t find_any(const mlc_tokenizer *t, const char *const *texts)
{
    int32_t best = -1;
    for (; *texts; texts++) {
        int32_t id = mlc_tokenizer_find(t, *texts, strlen(*texts));
        if (id >= 0 && (best < 0 || id < best))
            best = id;
    }
    return best;
}

/* A token recognised as end of generation; like llama.cpp, one that was not typed control
 * becomes control (so it is hidden from output and parsed only with parse_special). */
static void mark_eog(mlc_tokenizer *t, int32_t id, bool make_control)
{
    if (id < 0)
        return;
    t->toks[id].eog = true;
    if (make_control)
        t->toks[id].attr = A_CONTROL;
}

/* End-of-generation tokens as llama.cpp finds them: ids from the file, then well-known
 * texts (the file rarely names EOT/EOM/FIM ids). */
static mlc_status detect_eog(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    /* DeepSeek's is <｜end▁of▁sentence｜> (fullwidth bars, U+2581 for spaces). */
    static const char *const eot[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
        "_<EOT>", "<\xEF\xBD\234end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
        "<end_of_utterance>", NULL};
    static const char *const eom[] = {"<|eom_id|>", NULL};
    static const char *const eog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
                                      "<|call|>", "<end_of_turn>", "<|endoftext|>",
                                      "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                      "<end_of_utterance>", "<eos>", "<turn|>",
                                      "<|tool_response>", NULL};
    static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                          "<REPO>", NULL};
    static const char *const fim_sep[] = {"<|file_sep|>", NULL};
    int32_t pad = -1, rep = -1, sep = -1;
    mlc_status st = load_id(t, g, "tokenizer.ggml.fim_pad_token_id", &pad, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.fim_rep_token_id", &rep, err);
    if (!st)
        st = load_id(t, g, "tokenizer.ggml.fim_sep_token_id", &sep, err);
    if (st)
        return st;
    /* Ids from the file keep their type: llama.cpp only adds them to the set. */
    if (t->eot < 0)
        mark_eog(t, t->eot = find_any(t, eot), true);
    if (t->eom < 0)
        mark_eog(t, t->eom = find_any(t, eom), true);
    mark_eog(t, pad < 0 ? find_any(t, fim_pad) : pad, pad < 0);
    mark_eog(t, rep < 0 ? find_any(t, fim_rep) : rep, rep < 0);
    mark_eog(t, sep < 0 ? find_any(t, fim_sep) : sep, sep < 0);
    for (const char *const *s = eog; *s; s++)
        mark_eog(t, mlc_tokenizer_find(t, *s, strlen(*s)), true);
    mark_eog(t, t->eos, false);
    mark_eog(t, t->eot, false);
    mark_eog(t, t->eom, false);
    return MLC_OK;
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

static int by_len_desc(const void *a, const void *b)
{
    const len_id *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Tokens matched in the raw text before tokenizing, longest first (llama.cpp sorts by
 * length only; equal lengths go by id here so the order is deterministic). */
static mlc_status build_specials(mlc_tokenizer *t, mlc_err *err)
{
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += (t->toks[i].attr & (A_CONTROL | A_USER | A_UNKNOWN)) != 0;
    len_id *v = malloc((n ? n : 1) * sizeof *v);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!v || !t->special) {
        free(v);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->toks[i].attr & (A_CONTROL | A_USER | A_UNKNOWN))
            v[n++] = (len_id){t->toks[i].len, i};
    qsort(v, n, sizeof *v, by_len_desc);
    for (size_t i = 0; i < n; i++)
        t->special[i] = v[i].id;
    t->n_special = n;
    free(v);
    return MLC_OK;
}

static char ascii_lower_c(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Whether s contains z (lower-case ASCII), ASCII letters of s compared lower-cased. */
static bool contains_ascii_ci(mlc_gguf_str s, const char *z)
{
    const size_t n = strlen(z);
    for (size_t i = 0; i + n <= (size_t)s.len; i++) {
        size_t k = 0;
        while (k < n && ascii_lower_c(s.ptr[i + k]) == z[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static void set_rstrip(mlc_tokenizer *t, const char *text, bool on)
{
    int32_t id = mlc_tokenizer_find(t, text, strlen(text));
    if (id >= 0)
        t->toks[id].rstrip = on;
}

/* llama.cpp gives the special tokens of models named Phi-3 (general.name) the "rstrip"
 * attribute, except <unk>, <s> and <|endoftext|>: white space after them is dropped. */
static mlc_status mark_rstrip(mlc_tokenizer *t, const mlc_gguf *g, mlc_err *err)
{
    mlc_gguf_str s;
    mlc_status st = mlc_gguf_get_str(g, "general.name", &s, err);
    if (st == MLC_ERR_NOT_FOUND)
        return MLC_OK;
    if (st)
        return st;
    if (!contains_ascii_ci(s, "phi-3") && !contains_ascii_ci(s, "phi3"))
        return MLC_OK;
    for (size_t i = 0; i < t->n_special; i++)
        t->toks[t->special[i]].rstrip = true;
    set_rstrip(t, "</s>", true);
    set_rstrip(t, "<unk>", false);
    set_rstrip(t, "<s>", false);
    set_rstrip(t, "<|endoftext|>", false);
    return MLC_OK;
}

/* Byte fallback: <0xXX>, else (SentencePiece) the byte itself as a token, in llama.cpp's
 * order, else none. */
static void build_byte_tokens(mlc_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = mlc_tokenizer_find(t, name, 6);
        if (id < 0 && t->kind == KIND_SPM) {
            char c = (char)b;
            id = mlc_tokenizer_find(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }
}

mlc_status mlc_tokenizer_load(const mlc_gguf *g, mlc_tokenizer **out, mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_load: NULL out");
    *out = NULL;
    if (!g)
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_load: NULL gguf");
    mlc_tokenizer *t = calloc(1, sizeof *t);
    const char *path = mlc_gguf_path(g) ? mlc_gguf_path(g) : "(gguf)";
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", path);
    }
    mlc_status st = load_model(t, g, err);
    if (!st)
        st = load_tokens(t, g, err);
    if (!st)
        st = load_scores_types(t, g, err);
    if (!st && t->kind == KIND_BPE)
        st = load_merges(t, g, err);
    if (!st)
        st = load_specials(t, g, err);
    if (!st)
        st = detect_eog(t, g, err);
    if (!st)
        st = build_specials(t, err);
    if (!st)
        st = mark_rstrip(t, g, err);
    if (st) {
        mlc_tokenizer_free(t);
        return st;
    }
    build_byte_tokens(t);
    *out = t;
    return MLC_OK;
}

/* ------------------------------------------------------------------ accessors */

int32_t mlc_tokenizer_n_vocab(const mlc_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t mlc_tokenizer_bos(const mlc_tokenizer *t) { return t ? t->bos : -1; }
int32_t mlc_tokenizer_eos(const mlc_tokenizer *t) { return t ? t->eos : -1; }
int32_t mlc_tokenizer_eot(const mlc_tokenizer *t) { return t ? t->eot : -1; }
int32_t mlc_tokenizer_unk(const mlc_tokenizer *t) { return t ? t->unk : -1; }
bool mlc_tokenizer_add_bos(const mlc_tokenizer *t) { return t && t->add_bos; }
bool mlc_tokenizer_add_eos(const mlc_tokenizer *t) { return t && t->add_eos; }

const char *mlc_tokenizer_model(const mlc_tokenizer *t)
{
    return t ? t->model : "";
}

const char *mlc_tokenizer_pre(const mlc_tokenizer *t)
{
    return t ? t->pre_name : "";
}

static bool valid_id(const mlc_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab;
}

bool mlc_tokenizer_is_eog(const mlc_tokenizer *t, int32_t id)
{
    return valid_id(t, id) && t->toks[id].eog;
}

const char *mlc_tokenizer_token_text(const mlc_tokenizer *t, int32_t id, size_t *len)
{
    if (!valid_id(t, id))
        return NULL;
    if (len)
        *len = t->toks[id].len;
    return t->text + t->toks[id].off;
}

mlc_token_type mlc_tokenizer_token_type(const mlc_tokenizer *t, int32_t id)
{
    if (!valid_id(t, id))
        return MLC_TOKEN_UNDEFINED;
    switch (t->toks[id].attr) {
    case A_NORMAL: return MLC_TOKEN_NORMAL;
    case A_UNKNOWN: return MLC_TOKEN_UNKNOWN;
    case A_CONTROL: return MLC_TOKEN_CONTROL;
    case A_USER: return MLC_TOKEN_USER_DEFINED;
    case A_UNUSED: return MLC_TOKEN_UNUSED;
    case A_BYTE: return MLC_TOKEN_BYTE;
    default: return MLC_TOKEN_UNDEFINED;
    }
}

/* ------------------------------------------------------------------ special tokens in text */

/* A run of the input: raw text (tok < 0) or a token already decided. */
typedef struct frag {
    int32_t tok;
    size_t off, len;
} frag;

typedef struct fragvec {
    frag *p;
    size_t n, cap;
} fragvec;

static bool frag_push(fragvec *v, int32_t tok, size_t off, size_t len)
{
    if (!mlc_tok_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p))
        return false;
    v->p[v->n++] = (frag){tok, off, len};
    return true;
}

static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0 || nn > hn)
        return NULL;
    const char *last = hay + (hn - nn);
    for (const char *p = hay; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (!memcmp(p, needle, nn))
            return p;
    }
    return NULL;
}

/* isspace() in the C locale, as llama.cpp strips around special tokens. */
static bool is_c_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Cuts every raw fragment of `in` at the occurrences (leftmost, not overlapping) of token
 * id's text, into `out`. */
static bool split_on(const mlc_tokenizer *t, int32_t id, const char *text, const fragvec *in,
                     fragvec *out)
{
    const char *s = t->text + t->toks[id].off;
    const size_t n = t->toks[id].len;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->p[i];
        if (f.tok >= 0) {
            if (!frag_push(out, f.tok, 0, 0))
                return false;
            continue;
        }
        size_t cur = f.off, end = f.off + f.len;
        const char *m;
        while ((m = find_bytes(text + cur, end - cur, s, n))) {
            size_t at = (size_t)(m - text);
            if ((at > cur && !frag_push(out, -1, cur, at - cur)) || !frag_push(out, id, 0, 0))
                return false;
            cur = at + n;
            while (t->toks[id].rstrip && cur < end && is_c_space(text[cur]))
                cur++;
        }
        if (cur < end && !frag_push(out, -1, cur, end - cur))
            return false;
    }
    return true;
}

/* llama.cpp's tokenizer_st_partition: special token texts are cut out of the input before
 * tokenizing, longest first. Control and unknown tokens only with parse_special;
 * user-defined tokens always (as Hugging Face tokenizers do with added tokens). */
static bool partition(const mlc_tokenizer *t, const char *text, size_t len, bool parse_special,
                      fragvec *frags)
{
    fragvec tmp = {0};
    frags->n = 0;
    if (len && !frag_push(frags, -1, 0, len))
        return false;
    for (size_t k = 0; k < t->n_special && frags->n; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->toks[id].attr & (A_CONTROL | A_UNKNOWN)))
            continue;
        if (!split_on(t, id, text, frags, &tmp)) {
            free(tmp.p);
            return false;
        }
        fragvec sw = *frags;
        *frags = tmp;
        tmp = sw;
    }
    free(tmp.p);
    return true;
}

/* ------------------------------------------------------------------ pre-tokenizer words */

/* Code-point counts to byte counts of the original text (gemma4's U+2581 for a space is
 * one code point for one too). */
static void lens_to_bytes(size_t *lens, size_t n, const char *text, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes_n = 0;
        for (size_t k = 0; k < lens[i]; k++) {
            uint32_t cp;
            bytes_n += mlc_utf8_decode((const unsigned char *)text + at + bytes_n,
                                       len - at - bytes_n, &cp);
        }
        lens[i] = bytes_n;
        at += bytes_n;
    }
}

mlc_status mlc_tokenizer_split(const mlc_tokenizer *t, const char *text, size_t len,
                               size_t **lens, size_t *n, mlc_err *err)
{
    if (lens)
        *lens = NULL;
    if (n)
        *n = 0;
    if (!t || !lens || !n || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenizer_split: NULL argument");
    if (!len)
        return MLC_OK;
    tok_work w = {.t = t};
    size_t count = 1;
    bool ok = true;
    if (t->kind == KIND_SPM) {
        ok = mlc_tok_grow((void **)&w.lens, &w.cap_lens, 1, sizeof *w.lens);
        if (ok)
            w.lens[0] = len;
    } else if ((ok = (count = mlc_bpe_words(&w, text, len)) != SIZE_MAX)) {
        lens_to_bytes(w.lens, count, text, len);
    }
    if (!ok) {
        mlc_tok_work_free(&w);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tokenizer: out of memory", t->path);
    }
    *lens = w.lens;
    *n = count;
    w.lens = NULL;
    mlc_tok_work_free(&w);
    return MLC_OK;
}

/* ------------------------------------------------------------------ tokenize */

static mlc_status add_special_id(tok_work *w, int32_t id, const char *what, mlc_err *err)
{
    if (id < 0)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: tokenizer: add_%s_token is set but "
                           "the vocabulary has no %s token", w->t->path, what, what);
    return mlc_tok_ids_push(&w->out, id) ? MLC_OK : MLC_ERR_NOMEM;
}

/* The fragments in order. SentencePiece prefixes a space to a text fragment at the start or
 * after a special token, as llama.cpp does. */
static mlc_status tokenize_frags(tok_work *w, const char *text, const fragvec *frags, mlc_err *err)
{
    const mlc_tokenizer *t = w->t;
    bool after_special = true;
    for (size_t i = 0; i < frags->n; i++) {
        const frag *f = &frags->p[i];
        mlc_status st = MLC_OK;
        if (f->tok >= 0)
            st = mlc_tok_ids_push(&w->out, f->tok) ? MLC_OK : MLC_ERR_NOMEM;
        else if (t->kind == KIND_SPM)
            st = mlc_spm_fragment(w, text + f->off, f->len, t->add_space_prefix && after_special,
                                  err);
        else
            st = mlc_bpe_fragment(w, text + f->off, f->len);
        if (st)
            return st;
        after_special = f->tok >= 0;
    }
    return MLC_OK;
}

mlc_status mlc_tokenize(const mlc_tokenizer *t, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t **ids, size_t *n_ids, mlc_err *err)
{
    if (ids)
        *ids = NULL;
    if (n_ids)
        *n_ids = 0;
    if (!t || !ids || !n_ids || (!text && len))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_tokenize: NULL argument");
    tok_work w = {.t = t};
    fragvec frags = {0};
    mlc_status st = partition(t, text, len, parse_special, &frags) ? MLC_OK : MLC_ERR_NOMEM;
    if (!st && add_special && t->add_bos)
        st = add_special_id(&w, t->bos, "bos", err);
    if (!st)
        st = tokenize_frags(&w, text, &frags, err);
    if (!st && add_special && t->add_eos)
        st = add_special_id(&w, t->eos, "eos", err);
    free(frags.p);
    if (st == MLC_ERR_NOMEM)
        mlc_err_set(err, st, "%s: tokenizer: out of memory", t->path);
    if (st || !w.out.n) {
        mlc_tok_work_free(&w);
        return st;
    }
    *ids = w.out.p;
    *n_ids = w.out.n;
    w.out.p = NULL;
    mlc_tok_work_free(&w);
    return MLC_OK;
}
