/* ppl.c: `mlc-bench ppl -m M --text FILE --ctx N`: perplexity by llama.cpp's algorithm
 * (engine/perplexity.c), printed per chunk like llama-perplexity, with tokens/s, and stored
 * (run kind "ppl", the perplexity table, and metrics ppl / ppl_err / tokens_per_s). */
#include "ppl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mlc/model.h"
#include "mlc/perplexity.h"
#include "mlc/tokenizer.h"
#include "store.h"

static const char ppl_usage[] =
    "usage: mlc-bench ppl -m MODEL.gguf --text FILE [--ctx N] [options]\n"
    "  --ctx N        chunk length (default 512)      --chunks K  at most K chunks\n"
    "  --batch N      tokens per forward pass (default: --ctx)\n"
    "  --backend B    cpu (default)    -t N  threads    --db FILE  (default ./mlc-bench.db)\n"
    "  --label TEXT   --quiet (no per-chunk lines)\n"
    "Chunks of --ctx tokens, BOS first when the model adds BOS, the second half of each chunk\n"
    "scored; PPL = exp(mean NLL), +/- = PPL * sqrt(var(NLL) / (N - 1)).\n";

typedef struct ppl_opts {
    const char *model, *text, *backend, *db, *label;
    int ctx, chunks, batch, threads;
    bool quiet;
} ppl_opts;

static int parse_ppl(int argc, char **argv, ppl_opts *o)
{
    *o = (ppl_opts){.backend = "cpu", .ctx = 512};
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
        if (!(v = mlc_cli_value(c, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--text") || !strcmp(a, "-f")) o->text = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--db")) o->db = v;
        else if (!strcmp(a, "--label")) o->label = v;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) ok = mlc_cli_int(c, a, v, 8, 1 << 20, &o->ctx);
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
    if (!o->model || !o->text) {
        fprintf(stderr, "mlc-bench ppl: -m and --text are required\n%s", ppl_usage);
        return 2;
    }
    if (!o->db)
        o->db = mlc_store_default_path();
    return -1;
}

static bool print_chunk(void *ctx, int chunk, double chunk_ppl, const mlc_ppl_result *so_far)
{
    const ppl_opts *o = ctx;
    (void)so_far;
    if (!o->quiet) {
        printf("[%d]%.4f%s", chunk + 1, chunk_ppl, (chunk + 1) % 8 ? "," : ",\n");
        fflush(stdout);
    }
    return true;
}

static mlc_status store_result(const ppl_opts *o, const mlc_model_info *mi, const mlc_ppl_result *r,
                               double tok_s, mlc_err *err)
{
    mlc_store *st = NULL;
    int64_t run;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", o->text);
    cJSON_AddNumberToObject(j, "ctx", o->ctx);
    cJSON_AddNumberToObject(j, "chunks", o->chunks);
    cJSON_AddNumberToObject(j, "batch", o->batch ? o->batch : o->ctx);
    char *cfg = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    mlc_run_info ri = {.kind = "ppl", .label = o->label, .target = "local", .backend = o->backend,
                       .device = mi->backend_desc, .model_path = mi->path, .model_arch = mi->arch,
                       .model_quant = mi->ftype, .config_json = cfg};
    mlc_status s = mlc_store_open(o->db, &st, err);
    if (!s)
        s = mlc_store_run_begin(st, &ri, &run, err);
    if (!s)
        s = mlc_store_add_perplexity(st, run, o->ctx, r->n_chunks, r->ppl, r->ppl_err, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "ppl", "", "value", r->ppl, -1, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "ppl_err", "", "value", r->ppl_err, 0, err);
    if (!s)
        s = mlc_store_add_metric(st, run, "tokens_per_s", "tok/s", "value", tok_s, 1, err);
    if (!s)
        s = mlc_store_run_end(st, run, "complete", err);
    mlc_store_close(st);
    free(cfg);
    return s;
}

int mlc_cmd_ppl(int argc, char **argv)
{
    ppl_opts o;
    int rc = parse_ppl(argc, argv, &o);
    if (rc >= 0)
        return rc;
    mlc_err err;
    mlc_model *m = NULL;
    mlc_context *c = NULL;
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *text = NULL;
    rc = 1;
    FILE *f = fopen(o.text, "rb");
    if (!f) {
        fprintf(stderr, "mlc-bench: %s: cannot open\n", o.text);
        return 1;
    }
    for (size_t cap = 0, got = 1; got;) {
        if (len + 4096 > cap && !(text = realloc(text, cap = cap ? cap * 2 : 65536)))
            break;
        len += got = fread(text + len, 1, cap - len, f);
    }
    fclose(f);
    mlc_model_params mp = {.backend = o.backend, .n_threads = o.threads};
    mlc_context_params cp = {.n_ctx = o.ctx, .n_slots = 1, .n_batch = o.batch ? o.batch : o.ctx};
    if (!text || mlc_model_load(o.model, &mp, &m, &err) ||
        mlc_tokenize(mlc_model_tokenizer(m), text, len, true, false, &ids, &n, &err) ||
        mlc_context_new(m, &cp, &c, &err))
        goto fail;
    const mlc_tokenizer *tok = mlc_model_tokenizer(m);
    mlc_ppl_params pp = {.n_ctx = o.ctx, .n_chunks = o.chunks, .add_bos = mlc_tokenizer_add_bos(tok),
                         .bos = mlc_tokenizer_bos(tok), .slot = 0};
    mlc_ppl_result r;
    double t0 = mlc_cli_now();
    if (mlc_perplexity(c, ids, n, &pp, print_chunk, &o, &r, &err))
        goto fail;
    double tok_s = (double)r.n_chunks * o.ctx / (mlc_cli_now() - t0);
    printf("%sPPL = %.4f +/- %.4f (%d chunks of %d, %lld tokens scored, %.1f tok/s)\n",
           o.quiet || r.n_chunks % 8 == 0 ? "" : "\n", r.ppl, r.ppl_err, r.n_chunks, o.ctx,
           (long long)r.n_scored, tok_s);
    if (store_result(&o, mlc_model_get_info(m), &r, tok_s, &err))
        goto fail;
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "mlc-bench: %s\n", text ? err.msg : "out of memory");
out:
    free(text);
    free(ids);
    mlc_context_free(c);
    mlc_model_free(m);
    return rc;
}
