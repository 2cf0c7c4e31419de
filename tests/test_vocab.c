/* tests/test_vocab.c: the BPE trainer. Vocabularies trained on datasets/corpus.txt are
 * written to memory as GGUF, loaded by the real tokenizer, and checked: sizes and key
 * layout, compression of the corpus, round trips (corpus, random bytes, invalid UTF-8), BOS,
 * determinism, early stop on small texts, the trainer's pre-tokenizer against the
 * tokenizer's on ASCII, and argument errors. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlc/gguf_writer.h"
#include "mlc/tokenizer.h"
#include "mlc/vocab.h"
#include "util.h"

#define CORPUS "datasets/corpus.txt" /* tests run from the repository root */

/* ------------------------------------------------------------------ helpers */

static char *read_corpus(size_t *len)
{
    char *text = tu_read_file(CORPUS, len);
    cr_assert(text, "cannot read %s (tests run from the repository root)", CORPUS);
    cr_assert_gt(*len, 40000, "%s: %zu bytes, expected 40-80 KB", CORPUS, *len);
    return text;
}

/* Trains and writes the keys to a malloc'd GGUF image (*size bytes). */
static void *train_mem(const char *text, size_t len, int32_t n_vocab, size_t *size)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_err err = {0};
    void *buf = NULL;
    cr_assert(w);
    cr_assert_eq(mlc_vocab_train_bpe(text, len, n_vocab, w, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_gguf_writer_write_mem(w, &buf, size, NULL, NULL, &err), MLC_OK, "%s",
                 err.msg);
    mlc_gguf_writer_free(w);
    return buf;
}

static mlc_gguf *open_mem(const void *buf, size_t size)
{
    mlc_gguf *g = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_open_memory(buf, size, "trained.gguf", &g, &err), MLC_OK, "%s",
                 err.msg);
    return g;
}

static mlc_tokenizer *load_mem(const void *buf, size_t size)
{
    mlc_gguf *g = open_mem(buf, size);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s", err.msg);
    mlc_gguf_close(g); /* the tokenizer keeps copies */
    return t;
}

/* A tokenizer trained on the corpus. */
static mlc_tokenizer *corpus_tokenizer(int32_t n_vocab)
{
    size_t len, size;
    char *text = read_corpus(&len);
    void *buf = train_mem(text, len, n_vocab, &size);
    mlc_tokenizer *t = load_mem(buf, size);
    free(buf);
    free(text);
    return t;
}

static size_t tokenize(const mlc_tokenizer *t, const char *s, size_t n, bool add_special,
                       bool parse_special, int32_t **ids)
{
    size_t n_ids = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenize(t, s, n, add_special, parse_special, ids, &n_ids, &err), MLC_OK,
                 "%s", err.msg);
    return n_ids;
}

static char *detokenize(const mlc_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    char *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_detokenize(t, ids, n, false, &s, len, &err), MLC_OK, "%s", err.msg);
    return s;
}

/* The pieces of ids concatenated, without detokenize's clean-up of spaces: the exact bytes
 * the tokens stand for. */
static char *pieces(const mlc_tokenizer *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 16, o = 0;
    char *s = malloc(cap);
    cr_assert(s);
    for (size_t i = 0; i < n; i++) {
        size_t need = mlc_token_to_piece(t, ids[i], NULL, 0, false);
        while (o + need > cap)
            cr_assert((s = realloc(s, cap *= 2)));
        cr_assert_eq(mlc_token_to_piece(t, ids[i], s + o, need, false), need);
        o += need;
    }
    *len = o;
    return s;
}

static size_t put_utf8(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* What the tokenizer reads s as (documented in tokenizer.c, as in llama.cpp): code points
 * decoded and encoded again, so an invalid sequence becomes U+FFFD and consumes one byte,
 * an overlong form comes back in its short form, surrogates pass, and values past U+10FFFF
 * are invalid. out must hold 3 * n bytes. */
static size_t sanitize(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
        bool ok = len && i + len <= n;
        uint32_t v = len > 1 ? c & (0x7Fu >> len) : c;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xC0) == 0x80;
            v = (v << 6) | (s[i + k] & 0x3Fu);
        }
        if (!ok || v > 0x10FFFF) {
            v = 0xFFFD;
            len = 1;
        }
        o += put_utf8(v, out + o);
        i += len;
    }
    return o;
}

/* xorshift64*: a fixed stream, so failures reproduce. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------ sizes and keys */

static void check_layout(int32_t n_vocab)
{
    size_t len, size;
    char *text = read_corpus(&len);
    void *buf = train_mem(text, len, n_vocab, &size);
    mlc_gguf *g = open_mem(buf, size);
    mlc_err err = {0};
    mlc_gguf_str s;
    cr_assert_eq(mlc_gguf_get_str(g, "tokenizer.ggml.model", &s, &err), MLC_OK, "%s", err.msg);
    cr_expect(s.len == 4 && !memcmp(s.ptr, "gpt2", 4));
    cr_assert_eq(mlc_gguf_get_str(g, "tokenizer.ggml.pre", &s, &err), MLC_OK, "%s", err.msg);
    cr_expect(s.len == 5 && !memcmp(s.ptr, "gpt-2", 5));

    const mlc_gguf_value *toks, *types, *merges;
    cr_assert_eq(mlc_gguf_get_arr(g, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, &err),
                 MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_gguf_get_arr(g, "tokenizer.ggml.token_type", MLC_GGUF_INT32, &types, &err),
                 MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_gguf_get_arr(g, "tokenizer.ggml.merges", MLC_GGUF_STRING, &merges, &err),
                 MLC_OK, "%s", err.msg);
    const uint64_t n = toks->arr.n;
    cr_assert_eq(n, (uint64_t)n_vocab, "%llu tokens, asked for %d", (unsigned long long)n,
                 (int)n_vocab);
    cr_assert_eq(types->arr.n, n);
    cr_assert_eq(merges->arr.n, n - 256 - 1, "one merge per token that is not a byte or special");

    /* Byte tokens in GPT-2's order ("!" first), merges make the tokens after them. */
    mlc_gguf_str t0 = mlc_gguf_arr_str(toks, 0);
    cr_expect(t0.len == 1 && t0.ptr[0] == '!');
    for (uint64_t i = 0; i + 1 < n; i++)
        cr_expect_eq(mlc_gguf_arr_i64(types, i), MLC_TOKEN_NORMAL, "token %llu",
                     (unsigned long long)i);
    cr_expect_eq(mlc_gguf_arr_i64(types, n - 1), MLC_TOKEN_CONTROL);
    mlc_gguf_str last = mlc_gguf_arr_str(toks, n - 1);
    cr_expect(last.len == 13 && !memcmp(last.ptr, "<|endoftext|>", 13));
    for (uint64_t m = 0; m < merges->arr.n; m++) {
        mlc_gguf_str ms = mlc_gguf_arr_str(merges, m), ts = mlc_gguf_arr_str(toks, 256 + m);
        const char *sp = memchr(ms.ptr + 1, ' ', (size_t)ms.len - 1);
        cr_assert(sp, "merge %llu has no space", (unsigned long long)m);
        size_t la = (size_t)(sp - ms.ptr), lb = (size_t)ms.len - la - 1;
        cr_assert(ts.len == la + lb && !memcmp(ts.ptr, ms.ptr, la) &&
                      !memcmp(ts.ptr + la, sp + 1, lb),
                  "token %llu '%.*s' is not merge %llu '%.*s'", (unsigned long long)(256 + m),
                  (int)ts.len, ts.ptr, (unsigned long long)m, (int)ms.len, ms.ptr);
    }

    uint32_t bos, eos;
    bool add_bos, add_eos;
    cr_assert_eq(mlc_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, &err), MLC_OK);
    cr_expect(bos == n - 1 && eos == n - 1 && add_bos && !add_eos);
    mlc_gguf_close(g);

    /* The tokenizer agrees, and its 256 byte tokens cover every byte once. */
    mlc_tokenizer *t = load_mem(buf, size);
    cr_expect_eq(mlc_tokenizer_n_vocab(t), n_vocab);
    cr_expect_str_eq(mlc_tokenizer_model(t), "gpt2");
    cr_expect_str_eq(mlc_tokenizer_pre(t), "gpt-2");
    bool seen[256] = {false};
    for (int32_t id = 0; id < 256; id++) {
        char b;
        cr_assert_eq(mlc_token_to_piece(t, id, &b, 1, false), 1, "token %d is not one byte", id);
        cr_expect(!seen[(unsigned char)b], "byte 0x%02x twice", (unsigned char)b);
        seen[(unsigned char)b] = true;
    }
    mlc_tokenizer_free(t);
    free(buf);
    free(text);
}

Test(vocab, layout_4096)
{
    check_layout(4096);
}

Test(vocab, layout_1024)
{
    check_layout(1024);
}

/* ------------------------------------------------------------------ compression */

static double tokens_per_byte(int32_t n_vocab)
{
    size_t len;
    char *text = read_corpus(&len);
    mlc_tokenizer *t = corpus_tokenizer(n_vocab);
    int32_t *ids = NULL;
    size_t n = tokenize(t, text, len, false, false, &ids);
    double r = (double)n / (double)len;
    cr_log_info("vocab of %d: corpus of %zu bytes -> %zu tokens (%.3f tokens/byte)",
                (int)n_vocab, len, n, r);
    free(ids);
    mlc_tokenizer_free(t);
    free(text);
    return r;
}

Test(vocab, compresses_corpus)
{
    double r4096 = tokens_per_byte(4096), r1024 = tokens_per_byte(1024);
    cr_expect_lt(r4096, 0.35, "4096 tokens: %.3f tokens/byte", r4096);
    cr_expect_lt(r1024, 0.45, "1024 tokens: %.3f tokens/byte", r1024);
    cr_expect_lt(r4096, r1024, "a larger vocabulary compresses better");
}

/* A text the vocabulary was not trained on still compresses (the merges are English, not
 * the corpus's exact words). */
Test(vocab, compresses_unseen_english)
{
    static const char s[] =
        "The measurement was repeated twenty times on an idle machine, and the median time "
        "to first token was reported together with its interval, because a single number "
        "without its conditions tells the reader very little about the program.";
    mlc_tokenizer *t = corpus_tokenizer(4096);
    int32_t *ids = NULL;
    size_t n = tokenize(t, s, sizeof s - 1, false, false, &ids);
    cr_expect_lt((double)n / (double)(sizeof s - 1), 0.3, "%zu tokens for %zu bytes", n,
                 sizeof s - 1);
    free(ids);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ round trips */

static void round_trip_corpus(int32_t n_vocab)
{
    size_t len, n_back;
    char *text = read_corpus(&len);
    mlc_tokenizer *t = corpus_tokenizer(n_vocab);
    int32_t *ids = NULL;
    size_t n = tokenize(t, text, len, false, false, &ids);
    char *back = pieces(t, ids, n, &n_back);
    cr_expect(n_back == len && !memcmp(back, text, len), "pieces of the corpus differ");
    free(back);
    /* detokenize also applies llama.cpp's space clean-up, which the corpus avoids. */
    back = detokenize(t, ids, n, &n_back);
    cr_expect(n_back == len && !memcmp(back, text, len),
              "detokenize(tokenize(corpus)) differs (does %s contain a clean-up pattern such "
              "as \" .\"? see datasets/README.md)", CORPUS);
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
    free(text);
}

Test(vocab, round_trip_corpus_4096)
{
    round_trip_corpus(4096);
}

Test(vocab, round_trip_corpus_1024)
{
    round_trip_corpus(1024);
}

/* Random bytes, valid UTF-8 or not: the pieces give back exactly what the tokenizer reads
 * (invalid sequences as U+FFFD, as llama.cpp does); without spaces, detokenize (whose
 * clean-up only touches text after a space) gives the same. */
Test(vocab, round_trip_random_bytes)
{
    mlc_tokenizer *t = corpus_tokenizer(1024);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    unsigned char in[600], want[3 * sizeof in];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = (size_t)(rnd(&seed) % sizeof in);
        const bool spaces = iter % 2;
        for (size_t i = 0; i < n; i++) {
            unsigned char b;
            do
                b = (unsigned char)rnd(&seed);
            while (!spaces && b == ' ');
            in[i] = b;
        }
        size_t n_want = sanitize(in, n, want), n_back;
        int32_t *ids = NULL;
        size_t n_ids = tokenize(t, (const char *)in, n, false, false, &ids);
        cr_assert(n_ids <= n_want, "more tokens than bytes");
        char *back = pieces(t, ids, n_ids, &n_back);
        cr_assert(n_back == n_want && !memcmp(back, want, n_want),
                  "iteration %d (%zu bytes): pieces differ", iter, n);
        free(back);
        if (!spaces) {
            back = detokenize(t, ids, n_ids, &n_back);
            cr_assert(n_back == n_want && !memcmp(back, want, n_want),
                      "iteration %d (%zu bytes): detokenize differs", iter, n);
            free(back);
        }
        free(ids);
    }
    mlc_tokenizer_free(t);
}

/* Valid UTF-8 from several scripts (no spaces) comes back byte for byte through detokenize,
 * including characters the corpus never shows. */
Test(vocab, round_trip_random_utf8)
{
    static const uint32_t ranges[][2] = {
        {0x21, 0x7E}, {0x09, 0x0D}, {0xA0, 0x17F}, {0x391, 0x3C9}, {0x410, 0x44F},
        {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1F64F},
    };
    mlc_tokenizer *t = corpus_tokenizer(4096);
    uint64_t seed = 12345;
    char in[2048];
    for (int iter = 0; iter < 200; iter++) {
        size_t n = 0, chars = (size_t)(rnd(&seed) % 300);
        for (size_t c = 0; c < chars; c++) {
            const uint32_t *r = ranges[rnd(&seed) % (sizeof ranges / sizeof ranges[0])];
            uint32_t cp = r[0] + (uint32_t)(rnd(&seed) % (r[1] - r[0] + 1));
            n += put_utf8(cp, (unsigned char *)in + n);
        }
        int32_t *ids = NULL;
        size_t n_ids = tokenize(t, in, n, false, false, &ids), n_back;
        char *back = detokenize(t, ids, n_ids, &n_back);
        cr_assert(n_back == n && !memcmp(back, in, n), "iteration %d: '%.*s' came back as '%s'",
                  iter, (int)n, in, back);
        free(back);
        free(ids);
    }
    mlc_tokenizer_free(t);
}

/* Every single byte, and stray or cut multi-byte sequences, tokenize to byte tokens. */
Test(vocab, invalid_utf8)
{
    static const char s[] = "ok \xFF\xFE then \xC3 cut \xE6\x97 end \x80\xBF and \xF4\x90\x80\x80";
    mlc_tokenizer *t = corpus_tokenizer(4096);
    unsigned char want[3 * sizeof s];
    size_t n_want = sanitize((const unsigned char *)s, sizeof s - 1, want), n_back;
    int32_t *ids = NULL;
    size_t n = tokenize(t, s, sizeof s - 1, false, false, &ids);
    char *back = pieces(t, ids, n, &n_back);
    cr_expect(n_back == n_want && !memcmp(back, want, n_want), "got '%.*s'", (int)n_back, back);
    free(back);
    free(ids);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        n = tokenize(t, &c, 1, false, false, &ids);
        cr_assert(n >= 1 && n <= 3, "byte 0x%02x: %zu tokens", b, n);
        free(ids);
    }
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ specials */

Test(vocab, bos_and_endoftext)
{
    static const char s[] = "Hello world, this is a benchmark.";
    mlc_tokenizer *t = corpus_tokenizer(4096);
    const int32_t eot = mlc_tokenizer_n_vocab(t) - 1;
    cr_expect_eq(mlc_tokenizer_bos(t), eot);
    cr_expect_eq(mlc_tokenizer_eos(t), eot);
    cr_expect(mlc_tokenizer_add_bos(t));
    cr_expect(!mlc_tokenizer_add_eos(t));
    cr_expect_eq(mlc_tokenizer_token_type(t, eot), MLC_TOKEN_CONTROL);
    cr_expect(mlc_tokenizer_is_eog(t, eot));
    cr_expect_eq(mlc_tokenizer_find(t, "<|endoftext|>", 13), eot);

    int32_t *ids = NULL, *plain = NULL;
    size_t n = tokenize(t, s, sizeof s - 1, true, false, &ids), n_back;
    size_t n_plain = tokenize(t, s, sizeof s - 1, false, false, &plain);
    cr_assert_eq(n, n_plain + 1);
    cr_expect_eq(ids[0], eot, "BOS first");
    cr_expect(!memcmp(ids + 1, plain, n_plain * sizeof *plain));
    char *back = detokenize(t, ids, n, &n_back);
    cr_expect(n_back == sizeof s - 1 && !memcmp(back, s, n_back), "got '%s'", back);
    free(back);
    free(ids);
    free(plain);

    /* "<|endoftext|>" in the input is one token only when special texts are parsed. */
    n = tokenize(t, "a<|endoftext|>b", 15, false, true, &ids);
    cr_expect(n == 3 && ids[1] == eot);
    free(ids);
    n = tokenize(t, "a<|endoftext|>b", 15, false, false, &ids);
    for (size_t i = 0; i < n; i++)
        cr_expect_neq(ids[i], eot);
    free(ids);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ determinism, timing */

Test(vocab, deterministic)
{
    size_t len, size1, size2;
    char *text = read_corpus(&len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    void *a = train_mem(text, len, 4096, &size1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    void *b = train_mem(text, len, 4096, &size2);
    cr_log_info("trained 4096 tokens on %zu bytes in %.1f ms (with writing the GGUF)", len,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    cr_assert_eq(size1, size2);
    cr_expect(!memcmp(a, b, size1), "two trainings differ");
    free(a);
    free(b);
    /* A smaller vocabulary is a prefix of a larger one: the same merges in the same order. */
    a = train_mem(text, len, 1024, &size1);
    b = train_mem(text, len, 4096, &size2);
    mlc_gguf *ga = open_mem(a, size1), *gb = open_mem(b, size2);
    const mlc_gguf_value *ma = mlc_gguf_get(ga, "tokenizer.ggml.merges");
    const mlc_gguf_value *mb = mlc_gguf_get(gb, "tokenizer.ggml.merges");
    cr_assert(ma && mb && ma->arr.n < mb->arr.n);
    for (uint64_t i = 0; i < ma->arr.n; i++) {
        mlc_gguf_str x = mlc_gguf_arr_str(ma, i), y = mlc_gguf_arr_str(mb, i);
        cr_assert(x.len == y.len && !memcmp(x.ptr, y.ptr, x.len), "merge %llu differs",
                  (unsigned long long)i);
    }
    mlc_gguf_close(ga);
    mlc_gguf_close(gb);
    free(a);
    free(b);
    free(text);
}

/* ------------------------------------------------------------------ small texts */

/* "ab ab ab": words "ab", " ab", " ab"; (a, b) occurs 3 times, then (" ", ab) twice; then
 * every word is one token and training stops at 259 tokens, not the 4096 asked for. */
Test(vocab, stops_early)
{
    size_t size;
    void *buf = train_mem("ab ab ab", 8, 4096, &size);
    mlc_gguf *g = open_mem(buf, size);
    const mlc_gguf_value *toks = mlc_gguf_get(g, "tokenizer.ggml.tokens");
    const mlc_gguf_value *merges = mlc_gguf_get(g, "tokenizer.ggml.merges");
    cr_assert(toks && merges);
    cr_assert_eq(toks->arr.n, 259);
    cr_assert_eq(merges->arr.n, 2);
    mlc_gguf_str m0 = mlc_gguf_arr_str(merges, 0), m1 = mlc_gguf_arr_str(merges, 1);
    cr_expect(m0.len == 3 && !memcmp(m0.ptr, "a b", 3));
    cr_expect(m1.len == 5 && !memcmp(m1.ptr, "\xC4\xA0 ab", 5), "got '%.*s'", (int)m1.len,
              m1.ptr); /* a space is U+0120 in GPT-2's alphabet */
    mlc_gguf_close(g);

    mlc_tokenizer *t = load_mem(buf, size);
    int32_t *ids = NULL;
    size_t n = tokenize(t, "ab ab", 5, false, false, &ids);
    cr_expect(n == 2 && ids[0] == 256 && ids[1] == 257);
    free(ids);
    mlc_tokenizer_free(t);
    free(buf);
}

/* Small random texts trained to exhaustion: one merge per token past the bytes, and the
 * tokenizer loads them (it refuses duplicate tokens, which the trainer never makes: a pair
 * whose concatenation is already a token is skipped) and gives every text back. */
Test(vocab, small_texts_to_exhaustion)
{
    static const char *const alphabets[] = {"ab ", "abc  ", "aab ", "ab'c \n", "xy1 .,"};
    uint64_t seed = 99;
    char s[200];
    for (int iter = 0; iter < 150; iter++) {
        const char *al = alphabets[iter % 5];
        size_t n = 1 + (size_t)(rnd(&seed) % (sizeof s - 1)), size, n_back;
        for (size_t i = 0; i < n; i++)
            s[i] = al[rnd(&seed) % strlen(al)];
        void *buf = train_mem(s, n, 2000, &size);
        mlc_gguf *g = open_mem(buf, size);
        const mlc_gguf_value *toks = mlc_gguf_get(g, "tokenizer.ggml.tokens");
        const mlc_gguf_value *merges = mlc_gguf_get(g, "tokenizer.ggml.merges");
        cr_assert(toks && merges);
        cr_assert_eq(merges->arr.n + 257, toks->arr.n, "iteration %d", iter);
        cr_assert_lt(toks->arr.n, 2000, "iteration %d: %zu bytes cannot need 2000 tokens", iter, n);
        mlc_gguf_close(g);
        mlc_tokenizer *t = load_mem(buf, size);
        int32_t *ids = NULL;
        size_t n_ids = tokenize(t, s, n, false, false, &ids);
        char *back = pieces(t, ids, n_ids, &n_back);
        cr_assert(n_back == n && !memcmp(back, s, n), "iteration %d: '%.*s'", iter, (int)n, s);
        free(back);
        free(ids);
        mlc_tokenizer_free(t);
        free(buf);
    }
}

/* ------------------------------------------------------------------ pre-tokenizer */

static void expect_same_split(const mlc_tokenizer *t, const char *s, size_t n)
{
    size_t *a = NULL, *b = NULL, na = 0, nb = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_vocab_split(s, n, &a, &na, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_tokenizer_split(t, s, n, &b, &nb, &err), MLC_OK, "%s", err.msg);
    size_t at = 0, i = 0;
    for (; i < na && i < nb && a[i] == b[i]; i++)
        at += a[i];
    cr_assert(na == nb && i == na, "splits differ at byte %zu: '%.*s' (trainer %zu, tokenizer %zu)",
              at, (int)(n - at < 40 ? n - at : 40), s + at, i < na ? a[i] : 0,
              i < nb ? b[i] : 0);
    free(a);
    free(b);
}

/* On ASCII the trainer cuts words exactly as the tokenizer's "gpt-2" pre-tokenizer. */
Test(vocab, split_matches_tokenizer_on_ascii)
{
    size_t len;
    char *text = read_corpus(&len);
    mlc_tokenizer *t = corpus_tokenizer(1024);
    /* The corpus with its non-ASCII bytes dropped. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!((unsigned char)text[i] & 0x80))
            text[n++] = text[i];
    expect_same_split(t, text, n);
    static const char *const cases[] = {
        "", " ", "  ", "a", " a", "  a", "\n\nb", " \n b", "x  ", "I'm sure they're fine, it's",
        "'s 'S 'll 'LL 're'", "can't won't y'all", "1234 56.78 -9e10", "a++ b-- !!  ??",
        "tabs\tand\t\tnewlines\r\n\r\nend\n", "trailing spaces   ", "' '' ''' 'x",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_same_split(t, cases[i], strlen(cases[i]));
    /* Random ASCII, biased toward the characters the rules care about. */
    static const char pick[] = "aZ9 '\n\t\r.,-srtvelmd";
    uint64_t seed = 7;
    char s[256];
    for (int iter = 0; iter < 500; iter++) {
        size_t m = (size_t)(rnd(&seed) % sizeof s);
        for (size_t k = 0; k < m; k++) {
            uint64_t r = rnd(&seed);
            s[k] = r % 3 ? pick[(r >> 8) % (sizeof pick - 1)] : (char)((r >> 8) % 128);
        }
        expect_same_split(t, s, m);
    }
    mlc_tokenizer_free(t);
    free(text);
}

/* Non-ASCII bytes stay inside words (the documented approximation). */
Test(vocab, split_non_ascii_as_letters)
{
    static const char s[] = "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC!";
    size_t *lens = NULL, n = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_vocab_split(s, sizeof s - 1, &lens, &n, &err), MLC_OK);
    cr_assert_eq(n, 3);
    cr_expect(lens[0] == 5 && lens[1] == 7 && lens[2] == 1);
    free(lens);
    cr_assert_eq(mlc_vocab_split("", 0, &lens, &n, &err), MLC_OK);
    cr_expect(n == 0 && !lens);
}

/* ------------------------------------------------------------------ errors */

Test(vocab, errors)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_err err = {0};
    cr_assert_eq(mlc_vocab_train_bpe("", 0, 4096, w, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "empty text"), "message: %s", err.msg);
    cr_assert_eq(mlc_vocab_train_bpe(NULL, 0, 4096, w, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "empty text"), "message: %s", err.msg);
    cr_assert_eq(mlc_vocab_train_bpe("abc", 3, 256, w, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "vocabulary size 256 out of range"), "message: %s", err.msg);
    cr_assert_eq(mlc_vocab_train_bpe("abc", 3, MLC_VOCAB_MAX + 1, w, &err), MLC_ERR_ARG);
    cr_assert_eq(mlc_vocab_train_bpe("abc", 3, 300, NULL, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "NULL"), "message: %s", err.msg);
    cr_assert_eq(mlc_vocab_train_bpe(NULL, 5, 300, w, NULL), MLC_ERR_ARG); /* err optional */
    size_t *lens, n;
    cr_assert_eq(mlc_vocab_split(NULL, 3, &lens, &n, &err), MLC_ERR_ARG);
    /* Nothing was written by the failed calls. */
    void *buf = NULL;
    size_t size = 0;
    cr_assert_eq(mlc_gguf_writer_write_mem(w, &buf, &size, NULL, NULL, &err), MLC_OK, "%s",
                 err.msg);
    mlc_gguf *g = open_mem(buf, size);
    cr_expect_eq(mlc_gguf_n_kv(g), 0);
    mlc_gguf_close(g);
    free(buf);
    mlc_gguf_writer_free(w);
}

/* The smallest vocabulary: bytes and <|endoftext|>, no merges; still tokenizes anything. */
Test(vocab, minimum_size)
{
    size_t size, n_back;
    void *buf = train_mem("hello hello", 11, MLC_VOCAB_MIN, &size);
    mlc_tokenizer *t = load_mem(buf, size);
    cr_expect_eq(mlc_tokenizer_n_vocab(t), MLC_VOCAB_MIN);
    int32_t *ids = NULL;
    size_t n = tokenize(t, "hello", 5, false, false, &ids);
    cr_expect_eq(n, 5);
    char *back = detokenize(t, ids, n, &n_back);
    cr_expect(n_back == 5 && !memcmp(back, "hello", 5));
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
    free(buf);
}
