/* tests/test_pretok.c: the pre-tokenizers (engine/pretok.c) through mlc_tokenizer_split on
 * small synthetic vocabularies: the words of each regex family on texts that tell it from
 * its neighbours, the settings llama.cpp ties to each name, refusal of unknown names, and
 * random bytes (mostly malformed UTF-8) through every family. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/gguf_writer.h"
#include "mlc/tokenizer.h"

/* ------------------------------------------------------------------ helpers */

/* A GGUF in memory with a BPE vocabulary of the given tokens and merges (*mem: the image,
 * freed by the caller after closing). */
static mlc_gguf *bpe_gguf(const char *pre, const char *const *toks, size_t n_toks,
                          const char *const *merges, size_t n_merges, void **mem)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    cr_assert(w);
    mlc_gguf_writer_set_str(w, "general.architecture", "llama");
    mlc_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    mlc_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n_toks);
    mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, n_merges);
    size_t size = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_writer_write_mem(w, mem, &size, NULL, NULL, &err), MLC_OK, "%s",
                 err.msg);
    mlc_gguf_writer_free(w);
    mlc_gguf *g = NULL;
    cr_assert_eq(mlc_gguf_open_memory(*mem, size, "synth.gguf", &g, &err), MLC_OK, "%s", err.msg);
    return g;
}

static mlc_tokenizer *load_bpe(const char *pre, const char *const *toks, size_t n_toks,
                               const char *const *merges, size_t n_merges, void **mem)
{
    mlc_gguf *g = bpe_gguf(pre, toks, n_toks, merges, n_merges, mem);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s: %s", pre, err.msg);
    mlc_gguf_close(g);
    return t;
}

static mlc_tokenizer *tiny_bpe(const char *pre, void **mem)
{
    static const char *const toks[] = {"a", "b", "ab"};
    static const char *const merges[] = {"a b"};
    return load_bpe(pre, toks, 3, merges, 1, mem);
}

/* ------------------------------------------------------------------ words */

static const char *const split_texts[] = {
    "Hello, y'all! I'M 12345 \xC3\xA9t\xC3\xA9 \r\n\n  x\t\xE4\xB8\x80",
    "  3  33 333 3333\n\n\t\tfoo's BAR'S 've 'Ll 'x",
    "a\xC2\240b\xE3\x80\x80 c\xE2\x80\x80\xE2\x80\200d\r\n \r\ne\xE2\x80\x9D\xE2\x80\x94\xE2\x80\xA6",
    "ab$+<=>^~|`@c 12\xD9\xA3\xEF\xBC\2245 \xC2\xBDx ...\n",
    "\xF0\x9F\xA6\x99 llama\xCC\x81s  \xE2\x80\xA8!!  ",
};

/* Byte lengths of the words, computed with Python's `regex` module from the regexes that
 * llama.cpp names for each pre-tokenizer (default: its four regexes one after the other). */
static const struct {
    const char *pre;
    size_t words[5][32]; /* 0-terminated */
} split_want[] = {
    {"default",
     {{5, 1, 2, 1, 3, 1, 2, 1, 1, 1, 3, 2, 6, 5, 2, 1, 3},
      {1, 1, 1, 1, 1, 2, 1, 3, 1, 3, 1, 3, 1, 3, 1, 1, 4, 1, 1, 1, 1, 2, 1, 1, 2, 1, 1, 1},
      {1, 2, 1, 3, 2, 3, 3, 1, 4, 1, 1, 9},
      {2, 8, 1, 1, 1, 1, 8, 1, 2, 1, 1, 3, 1},
      {4, 6, 2, 1, 5, 2, 2}}},
    {"gpt-2",
     {{5, 1, 2, 1, 3, 1, 2, 1, 1, 6, 6, 5, 2, 1, 3},
      {1, 2, 1, 3, 4, 5, 3, 1, 3, 2, 4, 1, 1, 2, 2, 2, 2, 2, 1},
      {1, 2, 1, 3, 2, 3, 3, 1, 4, 1, 1, 9},
      {2, 10, 1, 9, 3, 1, 4, 1},
      {4, 6, 2, 1, 2, 3, 2, 2}}},
    {"llama3",
     {{5, 1, 2, 4, 1, 2, 2, 1, 3, 2, 6, 4, 1, 2, 4},
      {1, 1, 1, 1, 1, 2, 1, 3, 1, 3, 1, 2, 1, 4, 2, 4, 2, 2, 2, 2, 2, 2, 1},
      {1, 3, 3, 2, 3, 4, 5, 1, 9},
      {2, 10, 1, 1, 4, 4, 1, 2, 1, 5},
      {4, 6, 3, 2, 3, 2, 2}}},
    {"qwen2",
     {{5, 1, 2, 4, 1, 2, 2, 1, 1, 1, 1, 1, 1, 6, 4, 1, 2, 4},
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 4, 2, 4, 2, 2, 2, 2, 2, 2, 1},
      {1, 3, 3, 2, 3, 4, 5, 1, 9},
      {2, 10, 1, 1, 1, 1, 2, 3, 1, 1, 2, 1, 5},
      {4, 6, 3, 2, 3, 2, 2}}},
};

Test(pretok, words)
{
    for (size_t p = 0; p < sizeof split_want / sizeof split_want[0]; p++) {
        void *mem = NULL;
        mlc_tokenizer *t = tiny_bpe(split_want[p].pre, &mem);
        for (size_t i = 0; i < sizeof split_texts / sizeof split_texts[0]; i++) {
            size_t *lens = NULL, n = 0, n_want = 0;
            mlc_err err = {0};
            cr_assert_eq(mlc_tokenizer_split(t, split_texts[i], strlen(split_texts[i]), &lens, &n,
                                             &err),
                         MLC_OK, "%s", err.msg);
            while (split_want[p].words[i][n_want])
                n_want++;
            bool ok = n == n_want && !memcmp(lens, split_want[p].words[i], n * sizeof *lens);
            char got[512] = "";
            for (size_t k = 0, o = 0; k < n && o + 8 < sizeof got; k++)
                o += (size_t)snprintf(got + o, sizeof got - o, " %zu", lens[k]);
            cr_expect(ok, "%s: text %zu: got%s", split_want[p].pre, i, got);
            free(lens);
        }
        mlc_tokenizer_free(t);
        free(mem);
    }
}

/* Invalid UTF-8 reads as U+FFFD, one per bad byte, which splits as punctuation would. */
Test(pretok, invalid_utf8)
{
    void *mem = NULL;
    mlc_tokenizer *t = tiny_bpe("gpt-2", &mem);
    size_t *lens = NULL, n = 0;
    cr_assert_eq(mlc_tokenizer_split(t, "a\xFF\376b \xC3", 6, &lens, &n, NULL), MLC_OK);
    cr_assert_eq(n, 4);
    cr_expect(lens[0] == 1 && lens[1] == 2 && lens[2] == 1 && lens[3] == 2);
    free(lens);
    /* The aliases load; names llama.cpp does not map to these regexes are refused. */
    mlc_tokenizer_free(t);
    free(mem);
    static const char *const ok[] = {"llama-bpe", "llama-v3", "phi-2", "deepseek-r1-qwen"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        t = tiny_bpe(ok[i], &mem);
        mlc_tokenizer_free(t);
        free(mem);
    }
}

/* ------------------------------------------------------------------ regex families */

/* How each regex family of llama.cpp cuts a text that tells it from its neighbours, worked
 * out by hand from its regexes as llama.cpp runs them (std::regex, leftmost match, first
 * alternative that succeeds; non-ASCII code points by category). */
static const struct {
    const char *pre, *text;
    const char *words[16]; /* NULL-terminated */
} family_want[] = {
    /* digits one by one, then GPT-2 on the pieces (a space before digits stays alone) */
    {"starcoder", "x 2024 it's", {"x", " ", "2", "0", "2", "4", " it", "'s"}},
    {"command-r", "x 2024 it's", {"x", " ", "2", "0", "2", "4", " it", "'s"}},
    {"gpt-2", "x 2024 it's", {"x", " 2024", " it", "'s"}},
    /* falcon's first regex takes ` with the punctuation; default's does not */
    {"falcon", "a `! 1234567", {"a", " ", "`!", " ", "123", "456", "7"}},
    {"default", "a `! 1234567", {"a", " `", "!", " ", "123", "456", "7"}},
    /* newlines alone, \s?\p{L}+, then CJK cut out of a word, then single digits */
    {"deepseek-coder", "Hi \xE4\xB8\xAD\xE6\x96\x87" "12\n",
     {"Hi", " ", "\xE4\xB8\xAD\xE6\x96\x87", "1", "2", "\n"}},
    /* Latin letters, ASCII punctuation runs, trailing white space, CJK, numbers */
    {"deepseek-llm", "Ab \xE4\xB8\xAD\xE6\x96\x87!! 42  ",
     {"Ab", " ", "\xE4\xB8\xAD\xE6\x96\x87", "!!", " ", "42", "  "}},
    /* digits in threes first, kana and CJK apart, punctuation takes the letters after it,
     * '~' is neither punctuation nor symbol there */
    {"deepseek-v3", "abc 1234 \xE6\x97\xA5\xE6\x9C\xAC a.b ~x ~~",
     {"abc", " ", "123", "4", " ", "\xE6\x97\xA5\xE6\x9C\xAC", " a", ".b", " ", "~x", " ",
      "~~"}},
    /* case: a capital starts a word, capitals run together, a non-ASCII letter is both
     * cases; contractions stay on the word; punctuation takes / and newlines after it */
    {"gpt-4o", "HelloWORLD \xC3\x89" "COLE don't 12345 x//\n/y",
     {"Hello", "WORLD", " \xC3\x89", "COLE", " don't", " ", "123", "45", " x", "//\n/", "y"}},
    {"tekken", "don't 12", {"don", "'t", " ", "1", "2"}},
    /* combining marks stay in the word for qwen35, not for qwen2 */
    {"qwen35", "cafe\xCC\x81 x", {"cafe\xCC\x81", " x"}},
    {"qwen2", "cafe\xCC\x81 x", {"cafe", "\xCC\x81", " x"}},
    /* no contractions: 'tis is one word */
    {"ufakzeka", "'tis", {"'tis"}},
    {"qwen2", "'tis", {"'t", "is"}},
    /* punctuation does not take the newline after it */
    {"seed-coder", "x!\n", {"x", "!", "\n"}},
    {"qwen2", "x!\n", {"x", "!\n"}},
    /* lines first */
    {"laguna", "x \n y", {"x", " ", "\n", " y"}},
    {"qwen2", "x \n y", {"x", " \n", " y"}},
    /* words up to a space or one of (|.,!? and kin; viking then splits digits */
    {"bloom", "Hello, world... (x)", {"Hello", ",", " world", "... (", "x", ")"}},
    {"viking", "ab12 c", {"ab", "1", "2", " c"}},
    /* image tokens whole, two or four spaces, digits and punctuation alone */
    {"chameleon", "IMGIMGABZ  x1!", {"IMGIMGABZ", "  ", "x", "1", "!"}},
    /* white space in runs of 512, 256, ..., 4, 2, 1, each followed by white space */
    {"jais-2", "a      b", {"a", "    ", " ", " b"}},
    {"llama3", "a      b", {"a", "     ", " b"}},
    /* DeepSeek V3's regexes, newlines alone, then single digits */
    {"spark2_5", "x!\n12", {"x", "!", "\n", "1", "2"}},
    {"deepseek-v3", "x!\n12", {"x", "!\n", "12"}},
    /* Han apart from other letters, contractions stay on the word */
    {"kimi-k2", "\xE4\xB8\xAD\xE6\x96\x87" "abc's x \xE4\xB8\xAD 1234",
     {"\xE4\xB8\xAD\xE6\x96\x87", "abc's", " x", " ", "\xE4\xB8\xAD", " ", "123", "4"}},
    {"llama3", "\xE4\xB8\xAD\xE6\x96\x87" "abc's x \xE4\xB8\xAD 1234",
     {"\xE4\xB8\xAD\xE6\x96\x87" "abc", "'s", " x", " \xE4\xB8\xAD", " ", "123", "4"}},
    /* lines of text and runs of newlines (spaces are U+2581, one code point each) */
    {"gemma4", "a b\n\nc", {"a b", "\n\n", "c"}},
};

static void format_words(char *buf, size_t cap, const char *text, const size_t *lens,
                         size_t n)
{
    size_t o = 0, at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 8 < cap; at += lens[i++])
        o += (size_t)snprintf(buf + o, cap - o, " '%.*s'", (int)lens[i], text + at);
}

Test(pretok, families)
{
    for (size_t p = 0; p < sizeof family_want / sizeof family_want[0]; p++) {
        void *mem = NULL;
        mlc_tokenizer *t = tiny_bpe(family_want[p].pre, &mem);
        const char *text = family_want[p].text;
        size_t *lens = NULL, n = 0, n_want = 0;
        cr_assert_eq(mlc_tokenizer_split(t, text, strlen(text), &lens, &n, NULL), MLC_OK);
        bool ok = true;
        for (size_t at = 0; family_want[p].words[n_want]; n_want++) {
            size_t len = strlen(family_want[p].words[n_want]);
            ok = ok && n_want < n && lens[n_want] == len &&
                 !memcmp(text + at, family_want[p].words[n_want], len);
            at += len;
        }
        char got[512];
        format_words(got, sizeof got, text, lens, n);
        cr_expect(ok && n == n_want, "%s: '%s': got%s", family_want[p].pre, text, got);
        free(lens);
        mlc_tokenizer_free(t);
        free(mem);
    }
}

/* ------------------------------------------------------------------ names */

/* Names llama.cpp knows but whose regexes are not implemented here are refused by name. */
Test(pretok, unknown_names_refused)
{
    static const char *const names[] = {"tiny_aya", "afmoe", "superbpe", "Qwen2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *mem = NULL;
        static const char *const toks[] = {"a", "b", "ab"};
        static const char *const merges[] = {"a b"};
        mlc_gguf *g = bpe_gguf(names[i], toks, 3, merges, 1, &mem);
        mlc_tokenizer *t = NULL;
        mlc_err err = {0};
        cr_expect_eq(mlc_tokenizer_load(g, &t, &err), MLC_ERR_UNSUPPORTED, "%s", names[i]);
        cr_expect(strstr(err.msg, names[i]) && strstr(err.msg, "tokenizer.ggml.pre"), "%s",
                  err.msg);
        cr_expect_null(t);
        mlc_gguf_close(g);
        free(mem);
    }
}

/* The settings llama.cpp ties to a name: BOS added by default, and whether " ," loses its
 * space when detokenizing. */
Test(pretok, name_settings)
{
    static const struct {
        const char *pre;
        bool add_bos, cleans;
    } want[] = {
        {"llama-bpe", true, true},  {"dbrx", false, true},       {"tekken", true, false},
        {"chameleon", true, false}, {"command-r", false, false}, {"refact", false, true},
        {"qwen2", false, false},    {"stablelm2", false, true},  {"gpt-4o", false, false},
        {"deepseek-v3", false, false}, {"falcon", false, true},  {"glm4", false, true},
    };
    static const char *const toks[] = {"\xC4\xA0", ",", "a"};
    static const char *const merges[] = {"a a"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        void *mem = NULL;
        mlc_tokenizer *t = load_bpe(want[i].pre, toks, 3, merges, 1, &mem);
        cr_expect_eq(mlc_tokenizer_add_bos(t), want[i].add_bos, "%s", want[i].pre);
        char *s = NULL;
        cr_assert_eq(mlc_detokenize(t, (const int32_t[]){0, 1}, 2, false, &s, NULL, NULL),
                     MLC_OK);
        cr_expect_str_eq(s, want[i].cleans ? "," : " ,", "%s", want[i].pre);
        free(s);
        mlc_tokenizer_free(t);
        free(mem);
    }
    /* BPE's default BOS is id 11, except for glm4 (none unless the file names one) */
    static const char *const twelve[] = {"a", "b", "c", "d", "e", "f",
                                         "g", "h", "i", "j", "k", "l"};
    static const char *const pres[] = {"dbrx", "glm4"};
    for (int i = 0; i < 2; i++) {
        void *mem = NULL;
        mlc_tokenizer *t = load_bpe(pres[i], twelve, 12, merges, 1, &mem);
        cr_expect_eq(mlc_tokenizer_bos(t), i ? -1 : 11, "%s", pres[i]);
        mlc_tokenizer_free(t);
        free(mem);
    }
}

/* Random bytes, mostly malformed UTF-8, through every regex family: the words cover the
 * text exactly, none is empty, and tokenizing succeeds (the tiny vocabulary lacks most
 * bytes; those give no token, as in llama.cpp). */
Test(pretok, random_bytes)
{
    static const char *const pres[] = {
        "default", "gpt-2", "llama3", "qwen2", "qwen35", "seed-coder", "ufakzeka", "minicpm5",
        "laguna", "starcoder", "falcon", "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "gpt-4o", "tekken", "granite-embed-multi-97m", "bloom", "viking", "chameleon",
        "gemma4", "sarvam-moe", "jais-2", "spark2_5", "kimi-k2"};
    static const unsigned char pool[] = {'a', 'Z', '1', ' ', ' ', '\n', '\r', '\t', '\'',
                                         's', '.', '~', 0x80, 0xBF, 0xC3, 0xA9, 0xE4, 0xB8,
                                         0xAD, 0xE2, 0x80, 0xF0, 0x9F, 0xFF, 0xFE, 0xCC, 0x81};
    uint64_t seed = 42;
    for (size_t p = 0; p < sizeof pres / sizeof pres[0]; p++) {
        void *mem = NULL;
        mlc_tokenizer *t = tiny_bpe(pres[p], &mem);
        for (int r = 0; r < 300; r++) {
            unsigned char text[96];
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t len = (size_t)(seed >> 33) % sizeof text;
            for (size_t i = 0; i < len; i++) {
                seed = seed * 6364136223846793005u + 1442695040888963407u;
                text[i] = pool[(seed >> 33) % sizeof pool];
            }
            size_t *lens = NULL, n = 0, sum = 0;
            cr_assert_eq(mlc_tokenizer_split(t, (const char *)text, len, &lens, &n, NULL),
                         MLC_OK);
            for (size_t i = 0; i < n; i++) {
                cr_assert_gt(lens[i], 0, "%s: an empty word", pres[p]);
                sum += lens[i];
            }
            cr_assert_eq(sum, len, "%s: words cover %zu of %zu bytes", pres[p], sum, len);
            free(lens);
            int32_t *ids = NULL;
            size_t n_ids = 0;
            cr_assert_eq(mlc_tokenize(t, (const char *)text, len, false, true, &ids, &n_ids,
                                      NULL),
                         MLC_OK, "%s", pres[p]);
            free(ids);
        }
        mlc_tokenizer_free(t);
        free(mem);
    }
}

