/* tests/test_tokenizer.c: the tokenizer against llama.cpp's own test vectors (every
 * vocabulary in ../shared/vocab and Gemma 3 270M's), the golden texts' ids, round trips
 * through detokenize, byte fallback, special tokens (Phi-3's strip), the BOS/EOS flags, the
 * gemma4 model, and the errors of broken metadata. The pre-tokenizers' own tests are in
 * test_pretok.c. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlc/gguf_writer.h"
#include "mlc/tokenizer.h"
#include "util.h"

/* ------------------------------------------------------------------ helpers */

static mlc_gguf *open_shared(const char *rel)
{
    char path[1024];
    mlc_gguf *g = NULL;
    mlc_err err = {0};
    tu_require_shared(path, sizeof path, rel);
    cr_assert_eq(mlc_gguf_open(path, &g, &err), MLC_OK, "%s: %s", path, err.msg);
    return g;
}

static mlc_tokenizer *load_path(const char *path)
{
    mlc_gguf *g = NULL;
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_open(path, &g, &err), MLC_OK, "%s: %s", path, err.msg);
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s: %s", path, err.msg);
    mlc_gguf_close(g); /* the tokenizer keeps copies */
    return t;
}

static mlc_tokenizer *load_shared(const char *rel)
{
    mlc_gguf *g = open_shared(rel);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s: %s", rel, err.msg);
    mlc_gguf_close(g); /* the tokenizer keeps copies */
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

static char *detokenize(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                        size_t *len)
{
    char *s = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_detokenize(t, ids, n, special, &s, len, &err), MLC_OK, "%s", err.msg);
    return s;
}

/* The test strings of an .inp file: each followed by "\n__ggml_vocab_test__\n" (the last
 * may lack it), and the expected ids of each, one line per string in the .out file (which
 * may end with one empty line more). */
typedef struct vectors {
    char *inp, *out;
    const char *str[128];
    size_t len[128];
    size_t n;
    char *line[129]; /* expected ids, one line per string */
    size_t n_lines;
} vectors;

static void load_vectors(vectors *v, const char *inp_path, const char *out_path)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    memset(v, 0, sizeof *v);
    size_t n_inp = 0;
    v->inp = tu_read_file(inp_path, &n_inp);
    v->out = tu_read_file(out_path, NULL);
    cr_assert(v->inp && v->out, "cannot read %s and %s", inp_path, out_path);
    char *p = v->inp, *q;
    for (; (q = strstr(p, sep)); p = q + strlen(sep)) {
        cr_assert_lt(v->n, 128);
        v->str[v->n] = p;
        v->len[v->n++] = (size_t)(q - p);
    }
    if (p < v->inp + n_inp) { /* a last string without its separator */
        cr_assert_lt(v->n, 128);
        v->str[v->n] = p;
        v->len[v->n++] = (size_t)(v->inp + n_inp - p);
    }
    for (char *l = v->out; *l; l = q + 1) {
        q = strchr(l, '\n');
        cr_assert(q, "%s: last line not terminated", out_path);
        *q = 0;
        cr_assert_lt(v->n_lines, 129);
        v->line[v->n_lines++] = l;
    }
    if (v->n_lines == v->n + 1 && !*v->line[v->n])
        v->n_lines--;
    cr_assert_eq(v->n, v->n_lines, "%s: %zu strings, %zu lines of ids", inp_path, v->n,
                 v->n_lines);
}

static size_t parse_ids(const char *line, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (long x = strtol(line, &end, 10); end != line; x = strtol(line, &end, 10)) {
        cr_assert_lt(n, cap);
        ids[n++] = (int32_t)x;
        line = end;
    }
    return n;
}

static void format_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, " %d", ids[i]);
}

/* Every string of inp_path gives exactly the ids of out_path (no BOS, special texts not
 * parsed: llama.cpp's test-tokenizer-0). Sets *total; returns the number matched. */
static size_t check_vectors(const mlc_tokenizer *t, const char *name, const char *inp_path,
                            const char *out_path, size_t *total)
{
    vectors v;
    load_vectors(&v, inp_path, out_path);
    size_t matched = 0;
    for (size_t i = 0; i < v.n; i++) {
        int32_t want[1024], *got = NULL;
        size_t n_want = parse_ids(v.line[i], want, 1024);
        size_t n_got = tokenize(t, v.str[i], v.len[i], false, false, &got);
        bool ok = n_got == n_want && (!n_got || !memcmp(got, want, n_got * sizeof *got));
        char g[4096];
        format_ids(g, sizeof g, got, n_got);
        cr_expect(ok, "%s: string %zu ('%.*s'): got%s, want %s", name, i, (int)v.len[i],
                  v.str[i], g, v.line[i]);
        matched += ok;
        free(got);
    }
    *total = v.n;
    free(v.inp);
    free(v.out);
    return matched;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------------ llama.cpp's vectors */

/* Every X.gguf.inp of ../shared/vocab, against X.gguf, with a table of the results. */
Test(tokenizer, vectors_every_vocabulary)
{
    char dir[1024], gguf[1400], inp[1400], out[1400];
    tu_require_shared(dir, sizeof dir, "vocab/README.md");
    *strrchr(dir, '/') = 0;
    DIR *d = opendir(dir);
    cr_assert(d, "cannot list %s", dir);
    char *names[64];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 9 && !strcmp(e->d_name + len - 9, ".gguf.inp") && n < 64)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    cr_assert_geq(n, 9, "%s: %zu vocabularies with vectors, expected at least 9", dir, n);
    size_t all_ok = 0, all = 0;
    cr_log_info("%-36s %s", "vocabulary", "passed/total");
    for (size_t i = 0; i < n; i++) {
        snprintf(inp, sizeof inp, "%.1100s/%.200s", dir, names[i]);
        snprintf(gguf, sizeof gguf, "%.*s", (int)(strlen(inp) - 4), inp);
        snprintf(out, sizeof out, "%.1300s.out", gguf);
        mlc_tokenizer *t = load_path(gguf);
        size_t total, ok = check_vectors(t, names[i], inp, out, &total);
        cr_log_info("%-36s %zu/%zu", names[i], ok, total);
        cr_expect_eq(ok, total, "%s: %zu of %zu strings match", names[i], ok, total);
        all_ok += ok;
        all += total;
        mlc_tokenizer_free(t);
        free(names[i]);
    }
    cr_log_info("%-36s %zu/%zu", "all", all_ok, all);
}

/* The real Gemma 3 270M file (its vocabulary: SentencePiece, 262,144 tokens), from
 * $MLC_GEMMA3 or where the README's install puts it; skipped when absent. */
static const char *gemma3_path(void)
{
    const char *p = getenv("MLC_GEMMA3");
    if (!p || !*p)
        p = "build/models/gemma-3-270m-q4_k_m.gguf";
    if (access(p, R_OK))
        cr_skip_test("%s not found (set MLC_GEMMA3 to the Gemma 3 270M GGUF)", p);
    return p;
}

Test(tokenizer, vectors_gemma3)
{
    char inp[1024], out[1024];
    tu_require_shared(inp, sizeof inp, "golden/gemma3/gemma3-270m-vocab.inp");
    tu_require_shared(out, sizeof out, "golden/gemma3/gemma3-270m-vocab.out");
    mlc_tokenizer *t = load_path(gemma3_path());
    cr_expect_eq(mlc_tokenizer_n_vocab(t), 262144);
    cr_expect_str_eq(mlc_tokenizer_model(t), "llama");
    size_t total, ok = check_vectors(t, "gemma3-270m-vocab", inp, out, &total);
    cr_log_info("%-36s %zu/%zu", "gemma3-270m-vocab", ok, total);
    cr_expect_eq(ok, total);
    cr_expect_eq(total, 46);
    mlc_tokenizer_free(t);
}

/* text.txt tokenizes (with BOS, special texts parsed) to the reference's text_token_ids. */
static void check_golden_text(const mlc_tokenizer *t, const char *json_rel)
{
    char path[1024];
    size_t n_text = 0;
    char *text = tu_read_file(tu_require_shared(path, sizeof path, "golden/text.txt"), &n_text);
    char *json = tu_read_file(tu_require_shared(path, sizeof path, json_rel), NULL);
    cr_assert(text && json);
    cJSON *root = cJSON_Parse(json);
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(root, "text_token_ids");
    cr_assert(cJSON_IsArray(want), "%s: no text_token_ids array", json_rel);
    int32_t *got = NULL;
    size_t n = tokenize(t, text, n_text, true, true, &got);
    cr_expect_eq(n, (size_t)cJSON_GetArraySize(want), "%zu ids, want %d", n,
                 cJSON_GetArraySize(want));
    size_t i = 0;
    for (const cJSON *e = want->child; e && i < n; e = e->next, i++)
        cr_assert_eq(got[i], (int32_t)e->valuedouble, "id %zu: got %d, want %d", i, got[i],
                     (int32_t)e->valuedouble);
    cr_expect_eq(got[0], mlc_tokenizer_bos(t));
    cr_log_info("%s: %zu ids match", json_rel, n);
    free(got);
    cJSON_Delete(root);
    free(json);
    free(text);
}

Test(tokenizer, golden_text_gemma3)
{
    char path[1024];
    tu_require_shared(path, sizeof path, "golden/gemma3/gemma3-270m.json");
    mlc_tokenizer *t = load_path(gemma3_path());
    check_golden_text(t, "golden/gemma3/gemma3-270m.json");
    mlc_tokenizer_free(t);
}

Test(tokenizer, golden_text_with_bos)
{
    char path[1024];
    mlc_tokenizer *t = load_shared("golden/tiny-llama-q8_0.gguf");
    check_golden_text(t, "golden/golden.json");
    size_t n_text = 0;
    char *text = tu_read_file(tu_require_shared(path, sizeof path, "golden/text.txt"), &n_text);
    int32_t *got = NULL;
    size_t n = tokenize(t, text, n_text, true, true, &got);
    /* Back to the text: llama.cpp keeps the space of the token after BOS. */
    size_t len;
    char *back = detokenize(t, got, n, false, &len);
    cr_expect_eq(len, n_text + 1);
    cr_expect(back[0] == ' ' && !memcmp(back + 1, text, n_text));
    free(back);
    back = detokenize(t, got + 1, n - 1, false, &len);
    cr_expect(len == n_text && !memcmp(back, text, n_text), "round trip without BOS");
    free(back);
    free(got);
    free(text);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ round trips */

/* llama.cpp's clean-up of BPE output changes " ." " ," " !" " ?" " 's" " 'm" " 're" " 've"
 * and " ' "; everything else comes back as it went in. */
static bool bpe_cleans(const char *s, size_t n)
{
    static const char *const pats[] = {" .", " ,", " !", " ?", " 's", " 'm", " 're", " 've",
                                       " ' "};
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++)
            if (i + strlen(pats[k]) <= n && !memcmp(s + i, pats[k], strlen(pats[k])))
                return true;
    return false;
}

static void check_round_trips(const char *vocab, bool spm)
{
    char rel[256], inp[1024], out[1024];
    snprintf(rel, sizeof rel, "vocab/%s.inp", vocab);
    tu_require_shared(inp, sizeof inp, rel);
    snprintf(rel, sizeof rel, "vocab/%s.out", vocab);
    tu_require_shared(out, sizeof out, rel);
    snprintf(rel, sizeof rel, "vocab/%s", vocab);
    mlc_tokenizer *t = load_shared(rel);
    vectors v;
    load_vectors(&v, inp, out);
    size_t checked = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (!spm && bpe_cleans(v.str[i], v.len[i]))
            continue;
        int32_t *ids = NULL;
        size_t n = tokenize(t, v.str[i], v.len[i], false, false, &ids), len;
        char *back = detokenize(t, ids, n, false, &len);
        cr_expect(len == v.len[i] && !memcmp(back, v.str[i], len), "%s: string %zu: '%s'",
                  vocab, i, back);
        checked++;
        free(back);
        free(ids);
    }
    cr_expect_geq(checked, spm ? v.n : v.n - 3);
    free(v.inp);
    free(v.out);
    mlc_tokenizer_free(t);
}

Test(tokenizer, round_trip_spm)
{
    check_round_trips("ggml-vocab-llama-spm.gguf", true);
}

Test(tokenizer, round_trip_gpt2)
{
    check_round_trips("ggml-vocab-gpt-2.gguf", false);
}

Test(tokenizer, gpt2_cleans_spaces_like_llama_cpp)
{
    mlc_tokenizer *t = load_shared("vocab/ggml-vocab-gpt-2.gguf");
    static const char in[] = "Hello , world ! it 's a ' b ' 'll do it 't .";
    int32_t *ids = NULL;
    size_t n = tokenize(t, in, strlen(in), false, false, &ids), len;
    char *back = detokenize(t, ids, n, false, &len);
    cr_expect_str_eq(back, "Hello, world! it's a'b''ll do it 't.");
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
}

/* Arbitrary UTF-8 and invalid bytes go through SentencePiece's byte fallback unchanged. */
Test(tokenizer, spm_byte_fallback_round_trip)
{
    mlc_tokenizer *t = load_shared("vocab/ggml-vocab-llama-spm.gguf");
    static const char in[] = "\xF0\x9F\xA6\x99 \xE4\xB8\x80\xFF\xC3x\x80\x01\t\xE4\xB8y\xF0";
    const size_t n_in = sizeof in - 1;
    int32_t *ids = NULL;
    size_t n = tokenize(t, in, n_in, false, false, &ids), len;
    char *back = detokenize(t, ids, n, false, &len);
    cr_expect(len == n_in && !memcmp(back, in, n_in), "byte fallback round trip");
    /* 0xFF has no token of its own: <0xFF> (id 0xFF + 3). */
    bool saw_ff = false;
    for (size_t i = 0; i < n; i++)
        saw_ff |= ids[i] == 0xFF + 3;
    cr_expect(saw_ff);
    char piece[8];
    cr_expect_eq(mlc_token_to_piece(t, 0xFF + 3, piece, sizeof piece, false), 1);
    cr_expect_eq((unsigned char)piece[0], 0xFF);
    free(back);
    free(ids);
    /* As in llama.cpp, input is cut into symbols by lead byte only, so a broken sequence
     * before a space swallows the first byte of its U+2581, which then comes back as bytes. */
    n = tokenize(t, "\xC3 x", 3, false, false, &ids);
    back = detokenize(t, ids, n, false, &len);
    cr_expect(len == 5 && !memcmp(back, "\xC3\xE2\x96\x81x", 5));
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
}

/* Byte-level BPE: invalid UTF-8 is read as U+FFFD (llama.cpp's choice), valid text of any
 * script round-trips. */
Test(tokenizer, gpt2_unicode_and_invalid_bytes)
{
    mlc_tokenizer *t = load_shared("vocab/ggml-vocab-gpt-2.gguf");
    static const char ok[] = "\xF0\x9F\xA6\x99 na\xC3\xAFve \xE4\xB8\x80\x01\x7F";
    int32_t *ids = NULL;
    size_t n = tokenize(t, ok, sizeof ok - 1, false, false, &ids), len;
    char *back = detokenize(t, ids, n, false, &len);
    cr_expect(len == sizeof ok - 1 && !memcmp(back, ok, len));
    free(back);
    free(ids);
    n = tokenize(t, "a\xFF" "b", 3, false, false, &ids);
    back = detokenize(t, ids, n, false, &len);
    cr_expect_str_eq(back, "a\xEF\xBF\xBD" "b");
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ special tokens */

Test(tokenizer, spm_special_tokens)
{
    mlc_tokenizer *t = load_shared("vocab/ggml-vocab-llama-spm.gguf");
    cr_expect_eq(mlc_tokenizer_n_vocab(t), 32000);
    cr_expect_str_eq(mlc_tokenizer_model(t), "llama");
    cr_expect_eq(mlc_tokenizer_bos(t), 1);
    cr_expect_eq(mlc_tokenizer_eos(t), 2);
    cr_expect_eq(mlc_tokenizer_unk(t), 0);
    cr_expect(mlc_tokenizer_add_bos(t));
    cr_expect(!mlc_tokenizer_add_eos(t));
    cr_expect(mlc_tokenizer_is_eog(t, 2));
    cr_expect(!mlc_tokenizer_is_eog(t, 1));
    cr_expect(!mlc_tokenizer_is_eog(t, 32000));
    cr_expect_eq(mlc_tokenizer_token_type(t, 1), MLC_TOKEN_CONTROL);
    cr_expect_eq(mlc_tokenizer_token_type(t, 3), MLC_TOKEN_BYTE);
    cr_expect_eq(mlc_tokenizer_find(t, "\xE2\x96\x81Hello", 8), 15043);

    /* Parsed: "<s>" is BOS and the text after it gets its own space prefix. */
    static const char s[] = "<s>Hello</s>";
    int32_t *ids = NULL;
    size_t n = tokenize(t, s, strlen(s), false, true, &ids);
    cr_assert_eq(n, 3);
    cr_expect(ids[0] == 1 && ids[1] == 15043 && ids[2] == 2);
    free(ids);
    /* Not parsed: plain text. */
    n = tokenize(t, s, strlen(s), false, false, &ids);
    cr_expect_gt(n, 3);
    for (size_t i = 0; i < n; i++)
        cr_expect(ids[i] != 1 && ids[i] != 2);
    free(ids);

    /* Rendered only with special = true. */
    const int32_t seq[] = {1, 15043, 2};
    size_t len;
    char *txt = detokenize(t, seq, 3, false, &len);
    cr_expect_str_eq(txt, " Hello");
    free(txt);
    txt = detokenize(t, seq, 3, true, &len);
    cr_expect_str_eq(txt, "<s> Hello</s>");
    free(txt);
    char piece[16];
    cr_expect_eq(mlc_token_to_piece(t, 2, piece, sizeof piece, false), 0);
    cr_expect_eq(mlc_token_to_piece(t, 2, piece, sizeof piece, true), 4);
    cr_expect(!memcmp(piece, "</s>", 4));
    cr_expect_eq(mlc_token_to_piece(t, 15043, piece, sizeof piece, false), 6);
    cr_expect(!memcmp(piece, " Hello", 6));
    /* snprintf-like: the size needed, only what fits written. */
    memset(piece, '#', sizeof piece);
    cr_expect_eq(mlc_token_to_piece(t, 15043, piece, 3, false), 6);
    cr_expect(!memcmp(piece, " He#", 4));
    cr_expect_eq(mlc_token_to_piece(t, -1, piece, sizeof piece, true), 0);
    cr_expect_eq(mlc_token_to_piece(t, 32000, piece, sizeof piece, true), 0);
    mlc_tokenizer_free(t);
}

Test(tokenizer, bos_eos_flags)
{
    mlc_tokenizer *spm = load_shared("vocab/ggml-vocab-llama-spm.gguf");
    int32_t *ids = NULL;
    size_t n = tokenize(spm, "Hello world", 11, true, false, &ids);
    cr_assert_eq(n, 3);
    cr_expect(ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186);
    free(ids);
    /* OG SentencePiece: the empty string is just BOS with add_special, nothing without. */
    n = tokenize(spm, "", 0, true, false, &ids);
    cr_expect(n == 1 && ids[0] == 1);
    free(ids);
    n = tokenize(spm, "", 0, false, false, &ids);
    cr_expect(n == 0 && ids == NULL);
    mlc_tokenizer_free(spm);

    mlc_tokenizer *bpe = load_shared("vocab/ggml-vocab-gpt-2.gguf");
    cr_expect_str_eq(mlc_tokenizer_model(bpe), "gpt2");
    cr_expect_str_eq(mlc_tokenizer_pre(bpe), "gpt-2");
    cr_expect(!mlc_tokenizer_add_bos(bpe));
    cr_expect(!mlc_tokenizer_add_eos(bpe));
    cr_expect_eq(mlc_tokenizer_eos(bpe), 50256);
    cr_expect(mlc_tokenizer_is_eog(bpe, 50256));
    n = tokenize(bpe, "Hello world", 11, true, false, &ids);
    cr_expect(n == 2 && ids[0] == 15496 && ids[1] == 995);
    free(ids);
    /* <|endoftext|> is a control token: parsed only on request. */
    n = tokenize(bpe, "a<|endoftext|>", 14, false, true, &ids);
    cr_expect(n == 2 && ids[0] == 64 && ids[1] == 50256);
    free(ids);
    n = tokenize(bpe, "a<|endoftext|>", 14, false, false, &ids);
    cr_expect_gt(n, 2);
    free(ids);
    mlc_tokenizer_free(bpe);
}

/* ------------------------------------------------------------------ synthetic vocabularies */

/* A tiny vocabulary written with the GGUF writer; keys left out or broken by the caller. */
typedef struct synth {
    const char *name;        /* general.name; NULL: none */
    const char *model;       /* NULL: no tokenizer.ggml.model */
    const char *pre;         /* NULL: none */
    const char *const *toks; /* NULL: no tokens */
    size_t n_toks;
    const char *const *merges;
    size_t n_merges;
    const int32_t *types;
    size_t n_types;
    int64_t bos; /* < 0: absent */
    bool scores_as_strings;
} synth;

static mlc_gguf *write_synth(const synth *s, void **mem)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    cr_assert(w);
    mlc_gguf_writer_set_str(w, "general.architecture", "llama");
    if (s->name)
        mlc_gguf_writer_set_str(w, "general.name", s->name);
    if (s->model)
        mlc_gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre)
        mlc_gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    if (s->toks)
        mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", s->toks, s->n_toks);
    if (s->merges)
        mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", s->merges, s->n_merges);
    if (s->types)
        mlc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MLC_GGUF_INT32, s->types,
                                s->n_types);
    if (s->scores_as_strings)
        mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.scores", s->toks, s->n_toks);
    if (s->bos >= 0)
        mlc_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    size_t size = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_writer_write_mem(w, mem, &size, NULL, NULL, &err), MLC_OK, "%s",
                 err.msg);
    mlc_gguf_writer_free(w);
    mlc_gguf *g = NULL;
    cr_assert_eq(mlc_gguf_open_memory(*mem, size, "synth.gguf", &g, &err), MLC_OK, "%s", err.msg);
    return g;
}

/* Loads s and expects failure with status want and a one-line message naming the file and
 * the key. */
static void expect_load_error(const synth *s, mlc_status want, const char *key)
{
    void *mem = NULL;
    mlc_gguf *g = write_synth(s, &mem);
    mlc_tokenizer *t = (mlc_tokenizer *)&mem; /* must be reset to NULL */
    mlc_err err = {0};
    cr_expect_eq(mlc_tokenizer_load(g, &t, &err), want, "%s: %s", key, err.msg);
    cr_expect_null(t);
    cr_expect(strstr(err.msg, "synth.gguf") && strstr(err.msg, key), "message: %s", err.msg);
    cr_expect_null(strchr(err.msg, '\n'), "message: %s", err.msg);
    mlc_gguf_close(g);
    free(mem);
}

static const char *const bpe_toks[] = {"a", "b", "c", "ab", "abc", "\xC4\xA0", "<|end|>"};
static const char *const bpe_merges[] = {"a b", "ab c"};

Test(tokenizer, errors_name_file_and_key)
{
    expect_load_error(&(synth){.bos = -1}, MLC_ERR_NOT_FOUND, "tokenizer.ggml.model");
    expect_load_error(&(synth){.model = "t5", .bos = -1}, MLC_ERR_UNSUPPORTED,
                      "tokenizer.ggml.model");
    expect_load_error(&(synth){.model = "llama", .bos = -1}, MLC_ERR_NOT_FOUND,
                      "tokenizer.ggml.tokens");
    expect_load_error(&(synth){.model = "gpt2", .toks = bpe_toks, .n_toks = 7, .bos = -1},
                      MLC_ERR_NOT_FOUND, "tokenizer.ggml.merges");
    expect_load_error(&(synth){.model = "gpt2", .pre = "no-such-pre", .toks = bpe_toks,
                               .n_toks = 7, .merges = bpe_merges, .n_merges = 2, .bos = -1},
                      MLC_ERR_UNSUPPORTED, "tokenizer.ggml.pre");
    static const char *const bad_merges[] = {"a b", "abc"};
    expect_load_error(&(synth){.model = "gpt2", .toks = bpe_toks, .n_toks = 7,
                               .merges = bad_merges, .n_merges = 2, .bos = -1},
                      MLC_ERR_FORMAT, "tokenizer.ggml.merges");
    expect_load_error(&(synth){.model = "gpt2", .toks = bpe_toks, .n_toks = 7,
                               .merges = bpe_merges, .n_merges = 2, .bos = 7},
                      MLC_ERR_RANGE, "tokenizer.ggml.bos_token_id");
    static const int32_t types[3] = {1, 1, 1};
    expect_load_error(&(synth){.model = "llama", .toks = bpe_toks, .n_toks = 7, .types = types,
                               .n_types = 3, .bos = -1},
                      MLC_ERR_FORMAT, "tokenizer.ggml.token_type");
    expect_load_error(&(synth){.model = "llama", .toks = bpe_toks, .n_toks = 7,
                               .scores_as_strings = true, .bos = -1},
                      MLC_ERR_TYPE, "tokenizer.ggml.scores");
    static const char *const dup[] = {"a", "b", "a"};
    expect_load_error(&(synth){.model = "llama", .toks = dup, .n_toks = 3, .bos = -1},
                      MLC_ERR_FORMAT, "tokenizer.ggml.tokens");
}

/* A GGUF without any tokenizer keys (e.g. a bare weights file). */
Test(tokenizer, error_without_tokenizer_keys)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_gguf_writer_set_str(w, "general.architecture", "llama");
    void *mem = NULL;
    size_t size = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_writer_write_mem(w, &mem, &size, NULL, NULL, &err), MLC_OK);
    mlc_gguf_writer_free(w);
    mlc_gguf *g = NULL;
    cr_assert_eq(mlc_gguf_open_memory(mem, size, "bare.gguf", &g, &err), MLC_OK);
    mlc_tokenizer *t = NULL;
    cr_expect_eq(mlc_tokenizer_load(g, &t, &err), MLC_ERR_NOT_FOUND);
    cr_expect(strstr(err.msg, "bare.gguf") && strstr(err.msg, "tokenizer.ggml.model"), "%s",
              err.msg);
    cr_expect_eq(mlc_tokenizer_load(NULL, &t, &err), MLC_ERR_ARG);
    mlc_gguf_close(g);
    free(mem);
}

/* Merges apply by rank; "<|end|>" is found as end of generation and made a control token;
 * the BPE defaults of llama.cpp (no BOS added, BOS = EOS = 11 absent the keys: here out of
 * range, so none). */
Test(tokenizer, synthetic_bpe)
{
    void *mem = NULL;
    mlc_gguf *g = write_synth(&(synth){.model = "gpt2", .pre = "gpt-2", .toks = bpe_toks,
                                       .n_toks = 7, .merges = bpe_merges, .n_merges = 2,
                                       .bos = -1},
                              &mem);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s", err.msg);
    mlc_gguf_close(g);
    free(mem);
    cr_expect_eq(mlc_tokenizer_bos(t), -1);
    cr_expect(mlc_tokenizer_is_eog(t, 6));
    cr_expect_eq(mlc_tokenizer_token_type(t, 6), MLC_TOKEN_CONTROL);
    int32_t *ids = NULL;
    size_t n = tokenize(t, "abc ab", 6, true, false, &ids);
    /* "abc" merges fully; " ab" is "Ġ" + "ab" (no merge for Ġ a). */
    cr_assert_eq(n, 3);
    cr_expect(ids[0] == 4 && ids[1] == 5 && ids[2] == 3);
    free(ids);
    size_t len;
    const int32_t seq[] = {4, 5, 3, 6};
    char *s = detokenize(t, seq, 4, false, &len);
    cr_expect_str_eq(s, "abc ab");
    free(s);
    s = detokenize(t, seq, 4, true, &len);
    cr_expect_str_eq(s, "abc ab<|end|>");
    free(s);
    cr_expect_eq(mlc_detokenize(t, (const int32_t[]){7}, 1, false, &s, &len, &err),
                 MLC_ERR_RANGE);
    cr_expect_null(s);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ splits, gemma4, Phi-3 */

static mlc_tokenizer *tiny_bpe(const char *pre, void **mem)
{
    static const char *const toks[] = {"a", "b", "ab"};
    static const char *const merges[] = {"a b"};
    mlc_gguf *g = write_synth(&(synth){.model = "gpt2", .pre = pre, .toks = toks, .n_toks = 3,
                                       .merges = merges, .n_merges = 1, .bos = -1},
                              mem);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s: %s", pre, err.msg);
    mlc_gguf_close(g);
    return t;
}

/* SentencePiece has no pre-tokenizer: one piece. Llama 3 adds BOS by default. */
Test(tokenizer, split_spm_and_llama3_defaults)
{
    mlc_tokenizer *t = load_shared("vocab/ggml-vocab-llama-spm.gguf");
    size_t *lens = NULL, n = 0;
    cr_assert_eq(mlc_tokenizer_split(t, "a b", 3, &lens, &n, NULL), MLC_OK);
    cr_expect(n == 1 && lens[0] == 3);
    free(lens);
    cr_assert_eq(mlc_tokenizer_split(t, "", 0, &lens, &n, NULL), MLC_OK);
    cr_expect(n == 0 && !lens);
    mlc_tokenizer_free(t);
    void *mem = NULL;
    t = tiny_bpe("llama3", &mem);
    cr_expect(mlc_tokenizer_add_bos(t));
    mlc_tokenizer_free(t);
    free(mem);
}

/* gemma4: BPE over raw UTF-8 with spaces as U+2581, a word of newlines taken whole when it
 * is a token, <0xXX> for bytes no token covers, BOS added whatever the file says. */
Test(tokenizer, gemma4_model)
{
    static const char *const toks[] = {
        "<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "\xE2\x96\x81", "\xE2\x96\x81\x61", "ab",
        "\n", "\n\n", "<0x63>", "<0xC3>", "<0xA9>", "<|tool_response>", "<turn|>"};
    static const int32_t types[] = {3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 6, 6, 6, 3, 3};
    static const char *const merges[] = {"\xE2\x96\x81 a", "a b"};
    void *mem = NULL;
    mlc_gguf *g = write_synth(&(synth){.model = "gemma4", .toks = toks, .n_toks = 16,
                                       .merges = merges, .n_merges = 2, .types = types,
                                       .n_types = 16, .bos = 2},
                              &mem);
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s", err.msg);
    mlc_gguf_close(g);
    free(mem);
    cr_expect_str_eq(mlc_tokenizer_model(t), "gemma4");
    cr_expect_str_eq(mlc_tokenizer_pre(t), "gemma4");
    cr_expect(mlc_tokenizer_add_bos(t));
    cr_expect(mlc_tokenizer_is_eog(t, 1) && mlc_tokenizer_is_eog(t, 14) &&
              mlc_tokenizer_is_eog(t, 15));
    int32_t *ids = NULL;
    const char text[] = "ab a\n\nc \xC3\xA9";
    size_t n = tokenize(t, text, strlen(text), true, false, &ids);
    const int32_t want[] = {2, 8, 7, 10, 11, 6, 12, 13};
    char got[256];
    format_ids(got, sizeof got, ids, n);
    cr_expect(n == 8 && !memcmp(ids, want, sizeof want), "got%s", got);
    size_t len;
    char *back = detokenize(t, ids, n, false, &len);
    cr_expect_str_eq(back, text);
    free(back);
    free(ids);
    mlc_tokenizer_free(t);
}

/* Phi-3 (by general.name, as llama.cpp decides it): white space after its special tokens is
 * dropped, except after <s>; other models keep it. */
Test(tokenizer, phi3_strips_after_special_tokens)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "<|user|>", "<|end|>",
                                       "\xE2\x96\x81", "h", "i"};
    static const int32_t types[] = {2, 3, 3, 3, 3, 1, 1, 1};
    static const char *const names[] = {"Phi-3-mini-4k-instruct", "Llama-2-7b"};
    static const int32_t phi3[] = {3, 5, 6, 7, 4}, other[] = {3, 5, 0, 5, 6, 7, 4, 5, 0};
    const char text[] = "<|user|>\n hi<|end|>\n";
    for (int k = 0; k < 2; k++) {
        void *mem = NULL;
        mlc_gguf *g = write_synth(&(synth){.name = names[k], .model = "llama", .toks = toks,
                                           .n_toks = 8, .types = types, .n_types = 8,
                                           .bos = -1},
                                  &mem);
        mlc_tokenizer *t = NULL;
        cr_assert_eq(mlc_tokenizer_load(g, &t, NULL), MLC_OK);
        mlc_gguf_close(g);
        int32_t *ids = NULL;
        size_t n = tokenize(t, text, strlen(text), false, true, &ids);
        const int32_t *want = k ? other : phi3;
        size_t n_want = k ? 9 : 5;
        char got[256];
        format_ids(got, sizeof got, ids, n);
        cr_expect(n == n_want && !memcmp(ids, want, n * sizeof *ids), "%s: got%s", names[k],
                  got);
        free(ids);
        mlc_tokenizer_free(t);
        free(mem);
    }
}
