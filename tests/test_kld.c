/* test_kld.c: KL-divergence files (bench/kld.h): the writer/reader round trip and the KL
 * estimate on synthetic logits (exact when K covers the vocabulary, a lower bound
 * otherwise), every reader error naming its byte offset, and `mlc-bench ppl --kld-base /
 * --kld` end to end on the golden models (same model: 0; q8_0 against f16: small), token
 * mismatch and truncation refused, --kld-top bounds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/kld.h"
#include "util.h"

#define NV 50

/* Deterministic pseudo-random logits in [-scale, scale). */
static void fill_logits(float *lg, int n, uint32_t seed, float scale)
{
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        lg[i] = scale * ((float)(x >> 8) / (float)(1u << 24) * 2 - 1);
    }
}

/* Exact KL(P || Q) over the whole vocabulary, in double. */
static double exact_kl(const float *p, const float *q, int n)
{
    double mp = p[0], mq = q[0], sp = 0, sq = 0, kl = 0;
    for (int i = 1; i < n; i++)
        mp = fmax(mp, p[i]), mq = fmax(mq, q[i]);
    for (int i = 0; i < n; i++)
        sp += exp(p[i] - mp), sq += exp(q[i] - mq);
    for (int i = 0; i < n; i++) {
        double lp = p[i] - mp - log(sp), lq = q[i] - mq - log(sq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* Writes a file of `rows` base rows (seeds 1..rows) with K = top_k to path (1024 bytes). */
static const char *write_base(char *path, const char *name, uint32_t top_k, int rows)
{
    snprintf(path, 1024, "%s/%s", tu_tmpdir(), name);
    mlc_kld_header h = {.top_k = top_k, .n_vocab = NV, .n_ctx = 8, .n_chunks = (uint32_t)rows / 3,
                        .model_hash = 7, .tokens_hash = 9};
    mlc_kld_writer *w;
    mlc_err err;
    cr_assert_eq(mlc_kld_writer_open(path, &h, &w, &err), MLC_OK, "%s", err.msg);
    float lg[NV];
    for (int r = 0; r < rows; r++) {
        fill_logits(lg, NV, (uint32_t)r + 1, 4);
        cr_assert_eq(mlc_kld_writer_add(w, lg, NV, r % NV, &err), MLC_OK, "%s", err.msg);
    }
    cr_assert_eq(mlc_kld_writer_finish(w, 3.5, &err), MLC_OK, "%s", err.msg);
    mlc_kld_writer_free(w);
    return path;
}

Test(kld, round_trip_and_exact_kl_when_k_is_vocab)
{
    /* 6 rows: 2 chunks of 8 (3 scored positions each). */
    char buf[1024];
    const char *path = write_base(buf, "full.kld", NV, 6);
    mlc_kld_reader *rd;
    mlc_kld_header h;
    mlc_err err;
    cr_assert_eq(mlc_kld_reader_open(path, &rd, &h, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(h.top_k, NV);
    cr_expect_eq(h.n_scored, 6);
    cr_expect_eq(h.model_hash, 7);
    cr_expect_eq(h.tokens_hash, 9);
    cr_expect_eq(h.base_mean_nll, 3.5);
    unsigned char mark[NV] = {0};
    float base[NV], cand[NV];
    for (int r = 0; r < 6; r++) {
        const mlc_kld_record *rec;
        cr_assert_eq(mlc_kld_reader_next(rd, &rec, &err), MLC_OK, "%s", err.msg);
        fill_logits(base, NV, (uint32_t)r + 1, 4);
        for (int j = 1; j < NV; j++)
            cr_assert(base[rec->ids[j - 1]] >= base[rec->ids[j]], "row %d: sorted", r);
        cr_expect_eq(rec->lp_rest, -INFINITY, "K = n_vocab leaves no remainder");
        /* Same logits: exactly 0. */
        mlc_kld_token t;
        mlc_kld_compare(rec, NV, base, NV, r % NV, mark, &t);
        cr_expect_eq(t.kld, 0.0);
        cr_expect(t.same_top1);
        cr_expect_float_eq(t.nll_cand, t.nll_base, 1e-5);
        /* Perturbed logits: the full KL, up to float rounding of the log-probabilities. */
        fill_logits(cand, NV, (uint32_t)r + 100, 1);
        for (int i = 0; i < NV; i++)
            cand[i] += base[i];
        mlc_kld_compare(rec, NV, cand, NV, r % NV, mark, &t);
        double want = exact_kl(base, cand, NV);
        cr_expect(fabs(t.kld - want) < 1e-5 * (1 + want), "row %d: kld %g, exact %g", r, t.kld, want);
        cr_expect_gt(t.kld, 0);
        for (int i = 0; i < NV; i++)
            cr_assert_eq(mark[i], 0, "scratch left clean");
    }
    const mlc_kld_record *rec;
    cr_expect_eq(mlc_kld_reader_next(rd, &rec, &err), MLC_ERR_RANGE);
    mlc_kld_reader_free(rd);
}

Test(kld, top_k_is_a_lower_bound)
{
    char buf[1024];
    const char *path = write_base(buf, "k8.kld", 8, 6);
    mlc_kld_reader *rd;
    mlc_kld_header h;
    mlc_err err;
    cr_assert_eq(mlc_kld_reader_open(path, &rd, &h, &err), MLC_OK, "%s", err.msg);
    unsigned char mark[NV] = {0};
    float base[NV], cand[NV];
    for (int r = 0; r < 6; r++) {
        const mlc_kld_record *rec;
        cr_assert_eq(mlc_kld_reader_next(rd, &rec, &err), MLC_OK, "%s", err.msg);
        fill_logits(base, NV, (uint32_t)r + 1, 4);
        /* The remainder is the mass of the other 42 ids. */
        double mx = base[rec->ids[0]], s = 0, rest = 0;
        for (int i = 0; i < NV; i++)
            s += exp(base[i] - mx);
        for (int i = 0; i < NV; i++) {
            bool top = false;
            for (int j = 0; j < 8; j++)
                top |= rec->ids[j] == i;
            rest += top ? 0 : exp(base[i] - mx);
        }
        cr_expect_float_eq(rec->lp_rest, log(rest / s), 1e-5);
        fill_logits(cand, NV, (uint32_t)r + 100, 1);
        for (int i = 0; i < NV; i++)
            cand[i] += base[i];
        mlc_kld_token t;
        mlc_kld_compare(rec, 8, cand, NV, 0, mark, &t);
        double full = exact_kl(base, cand, NV);
        cr_expect(t.kld > 0 && t.kld <= full + 1e-6, "row %d: top-8 kld %g, full %g", r, t.kld, full);
    }
    mlc_kld_reader_free(rd);
}

Test(kld, ties_keep_lower_ids_first)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/ties.kld", tu_tmpdir());
    mlc_kld_header h = {.top_k = 4, .n_vocab = NV, .n_ctx = 4, .n_chunks = 1};
    mlc_kld_writer *w;
    mlc_err err;
    cr_assert_eq(mlc_kld_writer_open(path, &h, &w, &err), MLC_OK, "%s", err.msg);
    float lg[NV] = {0};
    lg[30] = 1;
    cr_assert_eq(mlc_kld_writer_add(w, lg, NV, 3, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_kld_writer_finish(w, 1, &err), MLC_OK, "%s", err.msg);
    mlc_kld_writer_free(w);
    mlc_kld_reader *rd;
    const mlc_kld_record *rec;
    cr_assert_eq(mlc_kld_reader_open(path, &rd, &h, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_kld_reader_next(rd, &rec, &err), MLC_OK, "%s", err.msg);
    cr_expect(rec->ids[0] == 30 && rec->ids[1] == 0 && rec->ids[2] == 1 && rec->ids[3] == 2);
    mlc_kld_reader_free(rd);
}

/* Opens path expecting a failure whose message contains want. */
static void expect_bad(const char *path, const char *want)
{
    mlc_kld_reader *rd = NULL;
    mlc_kld_header h;
    mlc_err err;
    mlc_status s = mlc_kld_reader_open(path, &rd, &h, &err);
    if (!s) {
        const mlc_kld_record *rec;
        do
            s = mlc_kld_reader_next(rd, &rec, &err);
        while (!s);
        mlc_kld_reader_free(rd);
    }
    cr_expect(s != MLC_OK && strstr(err.msg, path) && strstr(err.msg, want), "%s: want '%s', got '%s'", path, want,
              s ? err.msg : "success");
}

/* A copy of src with `len` bytes (zero-padded), byte `at` set to v (at < 0: none), written
 * to path (1024 bytes). */
static const char *variant(char *path, const char *src, const char *name, size_t len, long at, unsigned char v)
{
    size_t n;
    unsigned char *b = (unsigned char *)tu_read_file(src, &n);
    cr_assert_not_null(b);
    unsigned char *c = calloc(len + 1, 1);
    memcpy(c, b, len < n ? len : n);
    if (at >= 0)
        c[at] = v;
    snprintf(path, 1024, "%s/%s", tu_tmpdir(), name);
    cr_assert_eq(tu_write_file(path, c, len), 0);
    free(b);
    free(c);
    return path;
}

Test(kld, reader_errors_name_the_offset)
{
    char src[1024], p[1024];
    write_base(src, "ok.kld", 4, 6);
    size_t rb = mlc_kld_record_bytes(4), full = MLC_KLD_HEADER_BYTES + 6 * rb; /* 40 bytes a record */
    char want[256];
    expect_bad(variant(p, src, "magic.kld", full, 0, 'X'), "at byte 0: not an mlc-bench KL-divergence file");
    expect_bad(variant(p, src, "empty.kld", 0, -1, 0), "at byte 0: truncated header");
    expect_bad(variant(p, src, "hdr.kld", 30, -1, 0), "at byte 30: truncated header");
    expect_bad(variant(p, src, "version.kld", full, 8, 9), "at byte 8: version 9");
    expect_bad(variant(p, src, "k0.kld", full, 12, 0), "at byte 12: K = 0 (1..1024 allowed)");
    expect_bad(variant(p, src, "kbig.kld", full, 13, 0x10), "at byte 12: K = 4100");
    expect_bad(variant(p, src, "count.kld", full, 32, 7), "at byte 32: 7 scored tokens do not match 2 chunks of 8");
    snprintf(want, sizeof want, "at byte %zu: truncated: the file ends in record 4 of 6",
             MLC_KLD_HEADER_BYTES + 3 * rb + 17);
    expect_bad(variant(p, src, "trunc.kld", MLC_KLD_HEADER_BYTES + 3 * rb + 17, -1, 0), want);
    snprintf(want, sizeof want, "at byte %zu: 5 unexpected bytes after the last record", full);
    expect_bad(variant(p, src, "trail.kld", full + 5, -1, 0), want);
    /* Record 2's first id (little-endian int32) set to 0x7f000000 + ...: out of range. */
    snprintf(want, sizeof want, "at byte %zu: token id", MLC_KLD_HEADER_BYTES + rb);
    expect_bad(variant(p, src, "id.kld", full, (long)(MLC_KLD_HEADER_BYTES + rb + 3), 0x7f), want);
    /* Record 1's second log-probability made positive (sign bit of a float cleared, and
     * exponent large): not a descending log-probability. */
    snprintf(want, sizeof want, "at byte %d: log-probability", MLC_KLD_HEADER_BYTES + 16 + 4);
    expect_bad(variant(p, src, "lp.kld", full, (long)(MLC_KLD_HEADER_BYTES + 16 + 4 + 3), 0x7f), want);
}

/* ------------------------------------------------------------------ end to end */

typedef struct kld_out {
    double kld_mean, same_top, ratio;
} kld_out;

static double after(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    cr_assert_not_null(p, "'%s' in %s", key, out);
    p = strchr(p + strlen(key), ':');
    cr_assert_not_null(p);
    return atof(p + 1);
}

static int run_ppl(const char *model, const char *args, char **out)
{
    char path[1024], text[1024], cmd[4096];
    tu_require_shared(path, sizeof path, model);
    tu_require_shared(text, sizeof text, "golden/text.txt");
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --db %s/kld.db --quiet %s", tu_bin(), path, text, tu_tmpdir(),
             args);
    return tu_run(cmd, out);
}

static kld_out compare(const char *model, const char *base_file, char **out)
{
    char args[1200];
    snprintf(args, sizeof args, "--kld %s", base_file);
    cr_assert_eq(run_ppl(model, args, out), 0, "%s", *out);
    return (kld_out){after(*out, "Mean    KLD"), atof(strstr(*out, "Same top p:") + 11),
                     after(*out, "Mean PPL(Q)/PPL(base)")};
}

Test(kld, same_model_is_zero_and_stored, .timeout = 120)
{
    char base[1024], args[1200], *out;
    snprintf(base, sizeof base, "%s/q8.kld", tu_tmpdir());
    snprintf(args, sizeof args, "--ctx 128 --chunks 2 --kld-base %s", base);
    cr_assert_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 0, "%s", out);
    cr_expect(strstr(out, "KL-divergence base: ") && strstr(out, "top 32 log-probabilities of 126 tokens"), "%s", out);
    free(out);
    size_t n;
    free(tu_read_file(base, &n));
    cr_expect_eq(n, MLC_KLD_HEADER_BYTES + 126 * mlc_kld_record_bytes(32));
    /* --ctx and --chunks come from the base file. */
    kld_out k = compare("golden/tiny-llama-q8_0.gguf", base, &out);
    cr_expect(strstr(out, "2 chunks of 128"), "%s", out);
    cr_expect(strstr(out, "is the base's model file"), "%s", out);
    cr_expect_lt(k.kld_mean, 1e-6, "%s", out);
    cr_expect_eq(k.same_top, 100.0, "%s", out);
    cr_expect_eq(k.ratio, 1.0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 -c \"import sqlite3; c = sqlite3.connect('%s/kld.db'); "
             "print(c.execute(\\\"select group_concat(name || '=' || round(value, 4), ' ') from metrics where "
             "run_id = (select max(id) from runs where kind = 'ppl') and name in "
             "('kld_mean', 'kld_p99', 'same_top1_pct', 'ppl_ratio') order by name\\\").fetchone()[0])\"",
             tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "kld_mean=0.0") && strstr(out, "kld_p99=0.0") && strstr(out, "same_top1_pct=100.0") &&
                  strstr(out, "ppl_ratio=1.0"), "%s", out);
    free(out);
}

Test(kld, q8_0_against_f16, .timeout = 120)
{
    char base[1024], args[1200], *out;
    snprintf(base, sizeof base, "%s/f16.kld", tu_tmpdir());
    snprintf(args, sizeof args, "--ctx 128 --kld-base %s", base);
    cr_assert_eq(run_ppl("golden/tiny-llama-f16.gguf", args, &out), 0, "%s", out);
    free(out);
    kld_out k = compare("golden/tiny-llama-q8_0.gguf", base, &out);
    cr_expect(k.kld_mean > 0 && k.kld_mean < 0.05, "%s", out);
    cr_expect(k.same_top > 80 && k.same_top < 100, "%s", out);
    cr_expect(fabs(k.ratio - 1) < 0.05, "%s", out);
    cr_expect(!strstr(out, "is the base's model file"), "%s", out);
    cr_log_info("q8_0 vs f16 (ctx 128, 6 chunks): mean KLD %.6f, same top-1 %.3f%%, PPL ratio %.6f", k.kld_mean,
                k.same_top, k.ratio);
    free(out);
}

Test(kld, mismatch_truncation_and_bounds, .timeout = 120)
{
    char base[1024], args[1200], *out;
    snprintf(base, sizeof base, "%s/b.kld", tu_tmpdir());
    snprintf(args, sizeof args, "--ctx 64 --chunks 2 --kld-base %s", base);
    cr_assert_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 0, "%s", out);
    free(out);
    /* Another text (one word changed) tokenizes to other ids. */
    char text[1024], other[1024], cmd[4096], model[1024];
    tu_require_shared(text, sizeof text, "golden/text.txt");
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    size_t n;
    char *t = tu_read_file(text, &n);
    memcpy(t, "Everybody", 9);
    snprintf(other, sizeof other, "%s/other.txt", tu_tmpdir());
    cr_assert_eq(tu_write_file(other, t, n), 0);
    free(t);
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --kld %s --db %s/kld.db", tu_bin(), model, other, base,
             tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, base) && strstr(out, "token ids differ from the base's"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "--ctx 128 --kld %s", base);
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 1, "%s", out);
    cr_expect(strstr(out, "the base used 2 chunks of 64 tokens"), "%s", out);
    free(out);
    /* Truncated: cut in the middle of record 10. */
    size_t rb = mlc_kld_record_bytes(32), cut = MLC_KLD_HEADER_BYTES + 9 * rb + 100;
    char *b = tu_read_file(base, &n), trunc[1024], want[1200];
    snprintf(trunc, sizeof trunc, "%s/trunc.kld", tu_tmpdir());
    cr_assert_eq(tu_write_file(trunc, b, cut), 0);
    free(b);
    snprintf(args, sizeof args, "--kld %s", trunc);
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 1, "%s", out);
    snprintf(want, sizeof want, "%s: at byte %zu: truncated", trunc, cut);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    /* K bounds. */
    snprintf(args, sizeof args, "--kld-base %s/k.kld --kld-top 0", tu_tmpdir());
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 2, "%s", out);
    cr_expect(strstr(out, "--kld-top: '0' is not an integer in [1, 1024]"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "--kld-base %s/k.kld --kld-top 1025", tu_tmpdir());
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 2, "%s", out);
    free(out);
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", "--kld-top 4", &out), 2, "%s", out);
    cr_expect(strstr(out, "--kld-top goes with --kld-base"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "--kld-base %s/k.kld --kld %s", tu_tmpdir(), base);
    cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 2, "%s", out);
    free(out);
    /* K = 1 and K = 1024 work (one chunk of 64: 31 tokens). */
    for (int k = 1; k <= 1024; k += 1023) {
        char kf[1024];
        snprintf(kf, sizeof kf, "%s/k%d.kld", tu_tmpdir(), k);
        snprintf(args, sizeof args, "--ctx 64 --chunks 1 --kld-base %s --kld-top %d", kf, k);
        cr_expect_eq(run_ppl("golden/tiny-llama-q8_0.gguf", args, &out), 0, "%s", out);
        free(out);
        free(tu_read_file(kf, &n));
        cr_expect_eq(n, MLC_KLD_HEADER_BYTES + 31 * mlc_kld_record_bytes((uint32_t)k));
        kld_out r = compare("golden/tiny-llama-q8_0.gguf", kf, &out);
        cr_expect(r.kld_mean == 0 && r.same_top == 100, "K %d: %s", k, out);
        free(out);
    }
}

Test(kld, writer_k_bounds)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/kb.kld", tu_tmpdir());
    mlc_kld_writer *w = NULL;
    mlc_err err;
    uint32_t bad[] = {0, NV + 1, MLC_KLD_TOP_MAX + 1};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mlc_kld_header h = {.top_k = bad[i], .n_vocab = bad[i] > MLC_KLD_TOP_MAX ? 4096 : NV, .n_ctx = 8,
                            .n_chunks = 1};
        cr_expect_eq(mlc_kld_writer_open(path, &h, &w, &err), MLC_ERR_ARG, "K %u", bad[i]);
        cr_expect_null(w);
        cr_expect(strstr(err.msg, "kb.kld: K = "), "%s", err.msg);
    }
}
