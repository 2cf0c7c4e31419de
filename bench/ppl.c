/* ppl.c: `mlc-bench ppl`: perplexity by llama.cpp's algorithm (engine/perplexity.c), printed
 * per chunk like llama-perplexity, with tokens/s, and stored (run kind "ppl", the perplexity
 * table, and metrics ppl / ppl_err / tokens_per_s / tokens_scored; with --kld also kld_mean /
 * kld_p99 / same_top1_pct / ppl_ratio).
 *
 * Two targets score the same positions of the same chunks:
 *   local     -m M.gguf: the engine's logits (mlc_perplexity_logits);
 *   endpoint  --endpoint URL --tokenizer M.gguf: each chunk sent as token ids to
 *             URL/v1/completions with echo + logprobs and max_tokens 0; the NLL of the token
 *             at chunk position j is -choices[0].logprobs.token_logprobs[j]. The sums go
 *             through mlc_ppl_acc_* in the same order as the local path, so both agree up
 *             to the server's rounding of log-probabilities.
 * KL-divergence (local only, bench/kld.h): --kld-base FILE saves the base model's top-K
 * log-probabilities per scored token; --kld FILE compares this model's against them. */
#include "ppl.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kld.h"
#include "mlc/gguf.h"
#include "mlc/model.h"
#include "mlc/perplexity.h"
#include "mlc/tokenizer.h"
#include "store.h"

static const char ppl_usage[] =
    "usage: mlc-bench ppl -m MODEL.gguf --text FILE [--ctx N] [options]\n"
    "       mlc-bench ppl --endpoint URL --tokenizer MODEL.gguf --text FILE [--ctx N] [options]\n"
    "  --ctx N        chunk length (default 512)      --chunks K  at most K chunks\n"
    "  --batch N      tokens per forward pass (default: --ctx)\n"
    "  --backend B    cpu (default)    --device N (default 0)    -t N  threads\n"
    "  --db FILE      (default ./mlc-bench.db)\n"
    "  --label TEXT   --quiet (no per-chunk lines)\n"
    "endpoint (any OpenAI-compatible /v1/completions that returns prompt log-probabilities):\n"
    "  --endpoint URL --tokenizer M.gguf (vocabulary-only files work)\n"
    "  --model NAME   served model name (also --model-name)   --api-key-env VAR   --timeout S\n"
    "KL-divergence (local engine):\n"
    "  --kld-base FILE [--kld-top K]  save this model's top-K log-probabilities (K default 32)\n"
    "  --kld FILE     compare this model with the saved base (--ctx/--chunks default to the base's)\n"
    "Chunks of --ctx tokens, BOS first when the model adds BOS, the second half of each chunk\n"
    "scored; PPL = exp(mean NLL), +/- = PPL * sqrt(var(NLL) / (N - 1)).\n";

typedef struct ppl_opts {
    const char *model, *text, *backend, *db, *label;
    const char *endpoint, *tokenizer, *model_name, *api_key_env;
    const char *kld_base, *kld;
    int ctx, chunks, batch, threads, kld_top, device;
    float timeout_s;
    bool quiet, ctx_set;
} ppl_opts;

static int usage_error(const char *msg)
{
    fprintf(stderr, "mlc-bench ppl: %s\n%s", msg, ppl_usage);
    return 2;
}

static int parse_ppl(int argc, char **argv, ppl_opts *o)
{
    static const char *const valued[] = {"-m", "--model", "--text", "-f", "--backend", "--device", "--db", "--label",
        "--endpoint", "--tokenizer", "--model-name", "--api-key-env", "--kld-base", "--kld", "--kld-top",
        "--timeout", "--ctx", "-c", "--chunks", "--batch", "-b", "-t", "--threads", NULL};
    *o = (ppl_opts){.backend = "cpu", .ctx = 512, .timeout_s = 600};
    const char *c = "ppl", *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ppl_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = true;
            continue;
        }
        if (!(v = mlc_cli_option_value(c, valued, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--text") || !strcmp(a, "-f")) o->text = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--device")) ok = mlc_cli_int(c, a, v, 0, 1023, &o->device);
        else if (!strcmp(a, "--db")) o->db = v;
        else if (!strcmp(a, "--label")) o->label = v;
        else if (!strcmp(a, "--endpoint")) o->endpoint = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--model-name")) o->model_name = v;
        else if (!strcmp(a, "--api-key-env")) o->api_key_env = v;
        else if (!strcmp(a, "--kld-base")) o->kld_base = v;
        else if (!strcmp(a, "--kld")) o->kld = v;
        else if (!strcmp(a, "--kld-top")) ok = mlc_cli_int(c, a, v, 1, MLC_KLD_TOP_MAX, &o->kld_top);
        else if (!strcmp(a, "--timeout")) ok = mlc_cli_float(c, a, v, 0.001, 1e6, &o->timeout_s);
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) ok = mlc_cli_int(c, a, v, 8, 1 << 20, &o->ctx), o->ctx_set = true;
        else if (!strcmp(a, "--chunks")) ok = mlc_cli_int(c, a, v, 1, 1 << 24, &o->chunks);
        else if (!strcmp(a, "--batch") || !strcmp(a, "-b")) ok = mlc_cli_int(c, a, v, 1, 1 << 16, &o->batch);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = mlc_cli_int(c, a, v, 1, 1024, &o->threads);
        else {
            fprintf(stderr, "mlc-bench ppl: unknown option '%s'\n%s", a, ppl_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (o->endpoint) {
        /* Against an endpoint -m/--model names the served model, as in OpenAI requests. */
        if (!o->model_name)
            o->model_name = o->model;
        o->model = NULL;
        if (!o->tokenizer || !o->text)
            return usage_error("--endpoint needs --tokenizer and --text");
        if (o->kld || o->kld_base)
            return usage_error("--kld and --kld-base need the local engine's logits (-m), not --endpoint");
    } else if (!o->model || !o->text) {
        return usage_error("-m and --text are required");
    }
    if (o->kld && o->kld_base)
        return usage_error("give --kld-base (save a base) or --kld (compare with one), not both");
    if (o->kld_top && !o->kld_base)
        return usage_error("--kld-top goes with --kld-base");
    if (!o->kld_top)
        o->kld_top = MLC_KLD_TOP_DEFAULT;
    if (!o->db)
        o->db = mlc_store_default_path();
    return -1;
}

/* Reads the whole file into a malloc'd buffer (*len bytes, NUL-terminated); prints the
 * one-line error on failure. */
static bool read_text(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0, cap = 0, got = 1;
    const char *why = f ? NULL : "cannot open";
    while (!why && got) {
        if (n + 4096 > cap) {
            char *t = realloc(text, cap = cap ? cap * 2 : 65536);
            if (!t) {
                why = "out of memory";
                break;
            }
            text = t;
        }
        n += got = fread(text + n, 1, cap - n - 1, f);
    }
    if (!why && ferror(f))
        why = "read failed";
    if (f)
        fclose(f);
    if (why) {
        fprintf(stderr, "mlc-bench: %s: %s\n", path, why);
        free(text);
    } else {
        text[n] = 0;
        *out = text;
        *len = n;
    }
    return !why;
}

/* Each chunk's own perplexity, in chunk order: stored as the samples of "chunk_ppl" (the
 * report's per-chunk view). */
typedef struct chunk_log {
    const ppl_opts *o;
    double *v;
    int n, cap;
} chunk_log;

static bool print_chunk(void *ctx, int chunk, double chunk_ppl, const mlc_ppl_result *so_far)
{
    chunk_log *cl = ctx;
    const ppl_opts *o = cl->o;
    (void)so_far;
    if (cl->n == cl->cap) {
        int cap = cl->cap ? 2 * cl->cap : 64;
        double *v = realloc(cl->v, (size_t)cap * sizeof *v);
        if (v) {
            cl->v = v;
            cl->cap = cap;
        }
    }
    if (cl->n < cl->cap)
        cl->v[cl->n++] = chunk_ppl; /* out of memory: the chunk is left out of the store only */
    if (!o->quiet) {
        printf("[%d]%.4f%s", chunk + 1, chunk_ppl, (chunk + 1) % 8 ? "," : ",\n");
        fflush(stdout);
    }
    return true;
}

static void print_result(const ppl_opts *o, const mlc_ppl_result *r, double tok_s)
{
    printf("%sPPL = %.4f +/- %.4f (%d chunks of %d, %lld tokens scored, %.1f tok/s)\n",
           o->quiet || r->n_chunks % 8 == 0 ? "" : "\n", r->ppl, r->ppl_err, r->n_chunks, o->ctx,
           (long long)r->n_scored, tok_s);
}

/* What a run adds to the store beyond the perplexity itself. */
typedef struct ppl_store_extra {
    const mlc_kld_summary *kld; /* NULL: no KL-divergence comparison */
    const chunk_log *chunks;    /* each chunk's perplexity, or NULL */
} ppl_store_extra;

static mlc_status store_result(const ppl_opts *o, const mlc_run_info *ri_in, const mlc_ppl_result *r,
                               double tok_s, const ppl_store_extra *x, mlc_err *err)
{
    mlc_store *st = NULL;
    int64_t run;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", o->text);
    cJSON_AddNumberToObject(j, "ctx", o->ctx);
    cJSON_AddNumberToObject(j, "chunks", o->chunks);
    if (o->endpoint) {
        cJSON_AddStringToObject(j, "tokenizer", o->tokenizer);
    } else {
        cJSON_AddNumberToObject(j, "batch", o->batch ? o->batch : o->ctx);
    }
    if (o->kld_base) {
        cJSON_AddStringToObject(j, "kld_base", o->kld_base);
        cJSON_AddNumberToObject(j, "kld_top", o->kld_top);
    }
    if (o->kld)
        cJSON_AddStringToObject(j, "kld", o->kld);
    char *cfg = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    mlc_run_info ri = *ri_in;
    ri.config_json = cfg;
    mlc_status s = mlc_store_open(o->db, &st, err);
    if (!s)
        s = mlc_store_run_begin(st, &ri, &run, err);
    if (!s)
        s = mlc_store_add_perplexity(st, run, o->ctx, r->n_chunks, r->ppl, r->ppl_err, err);
    if (!s && x->chunks && x->chunks->n)
        s = mlc_store_add_samples(st, run, "chunk_ppl", x->chunks->v, x->chunks->n, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "ppl", "", "value", r->ppl, -1, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "ppl_err", "", "value", r->ppl_err, 0, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "tokens_per_s", "tok/s", "value", tok_s, 1, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "tokens_scored", "tokens", "value", (double)r->n_scored, 0, err);
    if (!s && x->kld) {
        s = mlc_store_add_metric(st, run, "kld_mean", "nats", "value", x->kld->kld_mean, -1, err);
        if (!s)
            s = mlc_store_add_metric(st, run, "kld_p99", "nats", "value", x->kld->kld_p99, -1, err);
        if (!s)
            s = mlc_store_add_metric(st, run, "same_top1_pct", "%", "value", x->kld->same_top1_pct, 1, err);
        if (!s)
            s = mlc_store_add_metric(st, run, "ppl_ratio", "", "value", x->kld->ppl_ratio, -1, err);
    }
    if (!s)
        s = mlc_store_run_end(st, run, "complete", err);
    mlc_store_close(st);
    free(cfg);
    return s;
}

/* ------------------------------------------------------------------ local engine */

/* State of the per-position logits callback: writing a base file or comparing with one. */
typedef struct kld_state {
    mlc_kld_writer *w;
    mlc_kld_reader *rd;
    uint32_t top_k;
    unsigned char *mark; /* [n_vocab] scratch of mlc_kld_compare */
    mlc_kld_acc acc;
} kld_state;

static mlc_status on_logits(void *ctx, const float *lg, int n_vocab, int32_t target, mlc_err *err)
{
    kld_state *k = ctx;
    if (k->w)
        return mlc_kld_writer_add(k->w, lg, n_vocab, target, err);
    const mlc_kld_record *rec;
    mlc_status s = mlc_kld_reader_next(k->rd, &rec, err);
    if (s)
        return s;
    mlc_kld_token t;
    mlc_kld_compare(rec, k->top_k, lg, n_vocab, target, k->mark, &t);
    if (!mlc_kld_acc_add(&k->acc, &t))
        return mlc_err_set(err, MLC_ERR_NOMEM, "kld: out of memory");
    return MLC_OK;
}

/* Hash of the token ids the engine evaluates: each chunk with its first id replaced by BOS
 * when the model adds BOS (see kld.h). */
static uint64_t eval_tokens_hash(const int32_t *ids, int n_chunks, int n_ctx, bool add_bos, int32_t bos)
{
    uint64_t h = MLC_FNV1A64_INIT;
    for (int c = 0; c < n_chunks; c++) {
        const int32_t *t = ids + (size_t)c * (size_t)n_ctx;
        int32_t first = add_bos ? bos : t[0];
        h = mlc_kld_tokens_hash(h, &first, 1);
        h = mlc_kld_tokens_hash(h, t + 1, (size_t)n_ctx - 1);
    }
    return h;
}

/* Checks the candidate's setup against the base file's header; prints the one-line error. */
static bool kld_matches(const ppl_opts *o, const mlc_kld_header *h, int n_vocab, int n_chunks, uint64_t thash)
{
    if ((uint32_t)n_vocab != h->n_vocab)
        fprintf(stderr, "mlc-bench ppl: %s: the base has a vocabulary of %u tokens, %s has %d\n", o->kld,
                h->n_vocab, o->model, n_vocab);
    else if ((uint32_t)o->ctx != h->n_ctx || (uint32_t)n_chunks != h->n_chunks)
        fprintf(stderr, "mlc-bench ppl: %s: the base used %u chunks of %u tokens, this run %d of %d; "
                "use the same --ctx and --chunks\n", o->kld, h->n_chunks, h->n_ctx, n_chunks, o->ctx);
    else if (thash != h->tokens_hash)
        fprintf(stderr, "mlc-bench ppl: %s: token ids differ from the base's (hash %016llx, base %016llx): "
                "a different tokenizer or text\n", o->kld, (unsigned long long)thash,
                (unsigned long long)h->tokens_hash);
    else
        return true;
    return false;
}

static int run_local(ppl_opts *o, const char *text, size_t len)
{
    chunk_log cl = {.o = o};
    mlc_err err;
    mlc_model *m = NULL;
    mlc_context *c = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    kld_state ks = {.top_k = (uint32_t)o->kld_top};
    mlc_kld_header kh = {0};
    int rc = 1;
    bool printed = false; /* the error was already printed */
    if (o->kld) {
        if (mlc_kld_reader_open(o->kld, &ks.rd, &kh, &err))
            goto fail;
        /* Unless given, the chunking is the base's. */
        if (!o->ctx_set)
            o->ctx = (int)kh.n_ctx;
        if (!o->chunks)
            o->chunks = (int)kh.n_chunks;
        ks.top_k = kh.top_k;
    }
    mlc_model_params mp = {.backend = o->backend, .device = o->device, .n_threads = o->threads};
    mlc_context_params cp = {.n_ctx = o->ctx, .n_slots = 1, .n_batch = o->batch ? o->batch : o->ctx};
    if (mlc_model_load(o->model, &mp, &m, &err) ||
        mlc_tokenize(mlc_model_tokenizer(m), text, len, true, false, &ids, &n, &err) ||
        mlc_context_new(m, &cp, &c, &err))
        goto fail;
    const mlc_tokenizer *tok = mlc_model_tokenizer(m);
    int n_vocab = mlc_context_n_vocab(c), n_chunks;
    mlc_ppl_params pp = {.n_ctx = o->ctx, .n_chunks = o->chunks, .add_bos = mlc_tokenizer_add_bos(tok),
                         .bos = mlc_tokenizer_bos(tok), .slot = 0};
    if (mlc_ppl_chunk_count(n, &pp, &n_chunks, &err))
        goto fail;
    uint64_t thash = eval_tokens_hash(ids, n_chunks, o->ctx, pp.add_bos, pp.bos);
    if (o->kld_base) {
        if (o->kld_top > n_vocab) {
            fprintf(stderr, "mlc-bench ppl: --kld-top %d exceeds the vocabulary of %s (%d tokens)\n", o->kld_top,
                    o->model, n_vocab);
            rc = 2;
            printed = true;
            goto fail;
        }
        mlc_kld_header h = {.top_k = (uint32_t)o->kld_top, .n_vocab = (uint32_t)n_vocab, .n_ctx = (uint32_t)o->ctx,
                            .n_chunks = (uint32_t)n_chunks, .tokens_hash = thash};
        if (mlc_kld_model_hash(o->model, &h.model_hash, &err) || mlc_kld_writer_open(o->kld_base, &h, &ks.w, &err))
            goto fail;
    }
    if (o->kld) {
        if (!kld_matches(o, &kh, n_vocab, n_chunks, thash)) {
            printed = true;
            goto fail;
        }
        if (!(ks.mark = calloc((size_t)n_vocab, 1))) {
            mlc_err_set(&err, MLC_ERR_NOMEM, "kld: out of memory");
            goto fail;
        }
    }
    mlc_ppl_result r;
    double t0 = mlc_cli_now();
    if (mlc_perplexity_logits(c, ids, n, &pp, print_chunk, &cl, (ks.w || ks.rd) ? on_logits : NULL, &ks, &r, &err))
        goto fail;
    double tok_s = (double)r.n_chunks * o->ctx / (mlc_cli_now() - t0);
    print_result(o, &r, tok_s);
    mlc_kld_summary ksum;
    ppl_store_extra x = {.chunks = &cl};
    if (ks.w) {
        if (mlc_kld_writer_finish(ks.w, r.mean_nll, &err))
            goto fail;
        printf("KL-divergence base: %s (top %d log-probabilities of %lld tokens)\n", o->kld_base, o->kld_top,
               (long long)r.n_scored);
    }
    if (ks.rd) {
        uint64_t mh = 0;
        if (mlc_kld_model_hash(o->model, &mh, &err))
            goto fail;
        mlc_kld_summarize(&ks.acc, r.mean_nll, kh.base_mean_nll, &ksum);
        if (mh == kh.model_hash)
            printf("note: %s is the base's model file (same size and first %u MiB)\n", o->model,
                   MLC_KLD_MODEL_HASH_BYTES >> 20);
        mlc_kld_print(&ksum, stdout);
        x.kld = &ksum;
    }
    const mlc_model_info *mi = mlc_model_get_info(m);
    mlc_run_info ri = {.kind = "ppl", .label = o->label, .target = "local", .backend = o->backend,
                       .device = mi->backend_desc, .model_path = mi->path, .model_arch = mi->arch,
                       .model_quant = mi->ftype};
    if (store_result(o, &ri, &r, tok_s, &x, &err))
        goto fail;
    rc = 0;
    goto out;
fail:
    if (!printed)
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
out:
    free(cl.v);
    free(ids);
    mlc_kld_writer_free(ks.w);
    mlc_kld_reader_free(ks.rd);
    mlc_kld_acc_free(&ks.acc);
    free(ks.mark);
    mlc_context_free(c);
    mlc_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ endpoint */

/* base URL -> base/v1/completions, whether it was given with /v1 or /v1/completions or not
 * (as the run command's client does). */
static char *completions_url(const char *base)
{
    static const char *const suffixes[] = {"/completions", "/v1"};
    size_t n = strlen(base);
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
        while (n && base[n - 1] == '/')
            n--;
        size_t sl = strlen(suffixes[k]);
        if (n >= sl && !memcmp(base + n - sl, suffixes[k], sl))
            n -= sl;
    }
    while (n && base[n - 1] == '/')
        n--;
    static const char path[] = "/v1/completions";
    char *url = malloc(n + sizeof path);
    if (url) {
        memcpy(url, base, n);
        memcpy(url + n, path, sizeof path);
    }
    return url;
}

typedef struct body_buf {
    char *p;
    size_t n, cap;
    bool oom;
} body_buf;

/* Responses are capped at 256 MiB: a chunk's JSON is a few hundred bytes per token. */
#define PPL_MAX_RESPONSE ((size_t)256 << 20)

static size_t on_body(char *data, size_t sz, size_t nmemb, void *u)
{
    body_buf *b = u;
    size_t add = sz * nmemb;
    if (b->n + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + add + 1)
            cap *= 2;
        char *p = cap <= PPL_MAX_RESPONSE ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, add);
    b->n += add;
    b->p[b->n] = 0;
    return add;
}

static const char lp_hint[] =
    "the server cannot return prompt log-probabilities; it needs echo + logprobs with max_tokens 0";

/* The request of one chunk: its ids (first replaced by BOS when the tokenizer adds BOS). */
static char *chunk_body(const ppl_opts *o, const int32_t *t, int n_ctx, bool add_bos, int32_t bos)
{
    cJSON *j = cJSON_CreateObject();
    if (o->model_name)
        cJSON_AddStringToObject(j, "model", o->model_name);
    cJSON *p = cJSON_AddArrayToObject(j, "prompt");
    for (int i = 0; p && i < n_ctx; i++)
        cJSON_AddItemToArray(p, cJSON_CreateNumber(i == 0 && add_bos ? bos : t[i]));
    cJSON_AddBoolToObject(j, "echo", true);
    cJSON_AddNumberToObject(j, "logprobs", 1);
    cJSON_AddNumberToObject(j, "max_tokens", 0);
    cJSON_AddNumberToObject(j, "temperature", 0);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* Scores one chunk's response: adds the NLLs of positions n_ctx/2 + 1 .. n_ctx - 1 (the
 * tokens the local path's logits at n_ctx/2 .. n_ctx - 2 predict). Error messages are one
 * line naming the URL, the chunk and the missing piece. */
static mlc_status score_response(const char *url, int chunk, const char *body, int n_ctx, mlc_ppl_acc *acc,
                                 double *chunk_nll, mlc_err *err)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c0, "logprobs");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(lp, "tokens");
    mlc_status s = MLC_OK;
    if (!j)
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: chunk %d: response is not JSON", url, chunk + 1);
    else if (!cJSON_IsObject(c0))
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: chunk %d: response has no choices[0]", url, chunk + 1);
    else if (!cJSON_IsObject(lp))
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: response has no choices[0].logprobs (%s)", url, lp_hint);
    else if (!cJSON_IsArray(vals))
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: response has no choices[0].logprobs.token_logprobs (%s)", url,
                        lp_hint);
    else if (cJSON_GetArraySize(vals) != n_ctx)
        s = mlc_err_set(err, MLC_ERR_FORMAT,
                        "%s: chunk %d: choices[0].logprobs.token_logprobs has %d entries for a prompt of %d tokens "
                        "(%s, one per prompt token)", url, chunk + 1, cJSON_GetArraySize(vals), n_ctx, lp_hint);
    else if (toks && (!cJSON_IsArray(toks) || cJSON_GetArraySize(toks) != n_ctx))
        s = mlc_err_set(err, MLC_ERR_FORMAT,
                        "%s: chunk %d: choices[0].logprobs.tokens has %d entries for a prompt of %d tokens", url,
                        chunk + 1, cJSON_GetArraySize(toks), n_ctx);
    *chunk_nll = 0;
    for (int i = n_ctx / 2 + 1; !s && i < n_ctx; i++) {
        const cJSON *v = cJSON_GetArrayItem(vals, i);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            s = mlc_err_set(err, MLC_ERR_FORMAT,
                            "%s: chunk %d: choices[0].logprobs.token_logprobs[%d] is %s, not a log-probability (%s)",
                            url, chunk + 1, i, cJSON_IsNull(v) ? "null" : "not a number", lp_hint);
        else {
            double nll = -v->valuedouble;
            mlc_ppl_acc_add(acc, nll);
            *chunk_nll += nll;
        }
    }
    cJSON_Delete(j);
    return s;
}

/* A one-line summary of an error body: an OpenAI error object's message, else its start. */
static void error_detail(const char *body, char *out, size_t cap)
{
    cJSON *j = cJSON_Parse(body ? body : "");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(j, "detail");
    snprintf(out, cap, "%s", cJSON_IsString(m) ? m->valuestring : body ? body : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (strlen(out) > 200)
        strcpy(out + 197, "...");
    cJSON_Delete(j);
}

static bool add_header(struct curl_slist **l, const char *h)
{
    struct curl_slist *n = curl_slist_append(*l, h);
    if (n)
        *l = n;
    return n != NULL;
}

static int run_remote(ppl_opts *o, const char *text, size_t len)
{
    chunk_log cl = {.o = o};
    mlc_err err;
    mlc_gguf *g = NULL;
    mlc_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    char *url = NULL, *auth = NULL;
    CURL *e = NULL;
    struct curl_slist *hdr = NULL;
    body_buf resp = {0};
    bool curl_inited = false;
    int rc = 1;
    const char *key = NULL;
    if (o->api_key_env && !(key = getenv(o->api_key_env))) {
        mlc_err_set(&err, MLC_ERR_ARG, "--api-key-env: variable '%s' is not set", o->api_key_env);
        goto fail;
    }
    if (mlc_gguf_open(o->tokenizer, &g, &err) || mlc_tokenizer_load(g, &tok, &err) ||
        mlc_tokenize(tok, text, len, true, false, &ids, &n, &err))
        goto fail;
    mlc_ppl_params pp = {.n_ctx = o->ctx, .n_chunks = o->chunks, .add_bos = mlc_tokenizer_add_bos(tok),
                         .bos = mlc_tokenizer_bos(tok)};
    int n_chunks;
    if (mlc_ppl_chunk_count(n, &pp, &n_chunks, &err))
        goto fail;
    if (!(url = completions_url(o->endpoint))) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* libcurl reference-counts global init: one init here, one cleanup at the end. */
    curl_inited = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!curl_inited || !(e = curl_easy_init())) {
        mlc_err_set(&err, MLC_ERR_IO, "%s: cannot initialise libcurl", url);
        goto fail;
    }
    if (key && *key) {
        size_t an = strlen(key) + 32;
        if ((auth = malloc(an)))
            snprintf(auth, an, "Authorization: Bearer %s", key);
    }
    /* "Expect:": no 100-continue round trip (curl waits up to 1 s for it on big bodies). */
    if (!add_header(&hdr, "Content-Type: application/json") || !add_header(&hdr, "Expect:") ||
        (key && *key && (!auth || !add_header(&hdr, auth)))) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ceil(o->timeout_s * 1000.0));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mlc-bench/" MLC_VERSION);
    mlc_ppl_acc acc = {0};
    mlc_ppl_result r = {0};
    double t0 = mlc_cli_now();
    for (int c = 0; c < n_chunks; c++) {
        char *body = chunk_body(o, ids + (size_t)c * (size_t)o->ctx, o->ctx, pp.add_bos, pp.bos);
        if (!body) {
            mlc_err_set(&err, MLC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        resp.n = 0;
        curl_err[0] = 0;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        CURLcode cc = curl_easy_perform(e);
        free(body);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            mlc_err_set(&err, MLC_ERR_IO, "%s: chunk %d: %s", url, c + 1,
                        resp.oom ? "response too large or out of memory"
                                 : curl_err[0] ? curl_err : curl_easy_strerror(cc));
            goto fail;
        }
        if (status != 200) {
            char detail[256];
            error_detail(resp.n ? resp.p : NULL, detail, sizeof detail);
            /* 400/422: the usual answer of a server that rejects one of the fields ppl needs. */
            bool hint = status == 400 || status == 422;
            mlc_err_set(&err, MLC_ERR_IO, "%s: chunk %d: HTTP %ld: %s%s", url, c + 1, status, detail,
                        hint ? " (ppl sends a token-id prompt with echo, logprobs and max_tokens 0)"
                             : "");
            goto fail;
        }
        double chunk_nll;
        int64_t before = acc.n;
        if (score_response(url, c, resp.n ? resp.p : "", o->ctx, &acc, &chunk_nll, &err))
            goto fail;
        mlc_ppl_acc_result(&acc, c + 1, &r);
        print_chunk(&cl, c, exp(chunk_nll / (double)(acc.n - before)), &r);
    }
    double tok_s = (double)r.n_chunks * o->ctx / (mlc_cli_now() - t0);
    print_result(o, &r, tok_s);
    mlc_run_info ri = {.kind = "ppl", .label = o->label, .target = "endpoint", .endpoint = o->endpoint,
                       .model_path = o->model_name ? o->model_name : "default"};
    ppl_store_extra x = {.chunks = &cl};
    if (store_result(o, &ri, &r, tok_s, &x, &err))
        goto fail;
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "mlc-bench ppl: %s\n", err.msg);
out:
    free(cl.v);
    curl_slist_free_all(hdr);
    if (e)
        curl_easy_cleanup(e);
    if (curl_inited)
        curl_global_cleanup();
    free(resp.p);
    free(auth);
    free(url);
    free(ids);
    mlc_tokenizer_free(tok);
    mlc_gguf_close(g);
    return rc;
}

int mlc_cmd_ppl(int argc, char **argv)
{
    ppl_opts o;
    int rc = parse_ppl(argc, argv, &o);
    if (rc >= 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    if (!read_text(o.text, &text, &len))
        return 1;
    rc = o.endpoint ? run_remote(&o, text, len) : run_local(&o, text, len);
    free(text);
    return rc;
}
