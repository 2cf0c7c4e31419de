/* tests/test_tokenizer.c: the tokenizer against llama.cpp's own test vectors (the shared
 * vocab files and their .inp/.out), the golden text's ids, round trips through detokenize,
 * byte fallback, special tokens, the BOS/EOS flags, and the errors of broken metadata. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlc/gguf.h"
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

/* ------------------------------------------------------------------ pre-tokenizers */

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

Test(tokenizer, pre_tokenizer_words)
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
Test(tokenizer, pre_tokenizer_invalid_utf8)
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

/* ------------------------------------------------------------------ pre-tokenizer families */

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

Test(tokenizer, pre_tokenizer_families)
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

/* gemma4: BPE over raw UTF-8 with spaces as U+2581, a word of newlines taken whole when it
 * is a token, <0xXX> for bytes no token covers, BOS added whatever the file says. */
Test(tokenizer, gemma4_model)
{
    static const char *const toks[] = {
        "<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "\xE2\x96\x81", "\xE2\x96\x81" "a", "ab",
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

/* Names llama.cpp knows but whose regexes are not implemented here are refused by name. */
Test(tokenizer, unknown_pre_tokenizers_refused_by_name)
{
    static const char *const names[] = {"tiny_aya", "afmoe", "superbpe", "Qwen2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *mem = NULL;
        mlc_gguf *g = write_synth(&(synth){.model = "gpt2", .pre = names[i], .toks = bpe_toks,
                                           .n_toks = 7, .merges = bpe_merges, .n_merges = 2,
                                           .bos = -1},
                                  &mem);
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
Test(tokenizer, pre_tokenizer_name_settings)
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
        mlc_gguf *g = write_synth(&(synth){.model = "gpt2", .pre = want[i].pre, .toks = toks,
                                           .n_toks = 3, .merges = merges, .n_merges = 1,
                                           .bos = -1},
                                  &mem);
        mlc_tokenizer *t = NULL;
        cr_assert_eq(mlc_tokenizer_load(g, &t, NULL), MLC_OK, "%s", want[i].pre);
        mlc_gguf_close(g);
        cr_expect_eq(mlc_tokenizer_add_bos(t), want[i].add_bos, "%s", want[i].pre);
        size_t len;
        char *s = detokenize(t, (const int32_t[]){0, 1}, 2, false, &len);
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
        mlc_gguf *g = write_synth(&(synth){.model = "gpt2", .pre = pres[i], .toks = twelve,
                                           .n_toks = 12, .merges = merges, .n_merges = 1,
                                           .bos = -1},
                                  &mem);
        mlc_tokenizer *t = NULL;
        cr_assert_eq(mlc_tokenizer_load(g, &t, NULL), MLC_OK);
        mlc_gguf_close(g);
        cr_expect_eq(mlc_tokenizer_bos(t), i ? -1 : 11, "%s", pres[i]);
        mlc_tokenizer_free(t);
        free(mem);
    }
}

/* Random bytes, mostly malformed UTF-8, through every regex family: the words cover the
 * text exactly, none is empty, and tokenizing succeeds (the tiny vocabulary lacks most
 * bytes; those give no token, as in llama.cpp). */
Test(tokenizer, every_pre_tokenizer_takes_random_bytes)
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
            tokenize(t, (const char *)text, len, false, true, &ids);
            free(ids);
        }
        mlc_tokenizer_free(t);
        free(mem);
    }
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
