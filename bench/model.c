/* model.c: `mlc-bench model info FILE [--json]`.
 *
 * Reads a GGUF file through the validating reader and prints what a user needs before
 * benchmarking it: architecture and hyper-parameters, tokenizer, every tensor with its type,
 * shape and size, and the totals. Tensors whose type the engine cannot compute with are
 * named, so a refusal later is no surprise. */
#include "model.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/gguf.h"
#include "mlc/quant.h"
#include "synth.h"

/* Hyper-parameters read from "{arch}.{suffix}"; shown in this order. */
static const struct {
    const char *suffix;
    const char *label; /* text output and JSON field */
} hparams[] = {
    {"context_length", "context_length"},
    {"embedding_length", "embedding_length"},
    {"block_count", "block_count"},
    {"feed_forward_length", "feed_forward_length"},
    {"attention.head_count", "head_count"},
    {"attention.head_count_kv", "head_count_kv"},
    {"attention.key_length", "key_length"},
    {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
    {"rope.dimension_count", "rope_dimension_count"},
    {"rope.freq_base", "rope_freq_base"},
    {"vocab_size", "vocab_size"},
};
#define N_HPARAMS (sizeof hparams / sizeof hparams[0])

typedef struct model_summary {
    char arch[64];
    char name[128];
    char tok_model[64];
    char tok_pre[64];
    int64_t vocab_size; /* -1: no tokenizer */
    bool has_hp[N_HPARAMS];
    double hp[N_HPARAMS];
    int64_t type_count[MLC_TYPE_COUNT];
    int64_t n_params;
    uint64_t n_bytes;
    int64_t n_unsupported;
} model_summary;

static void str_copy(char *dst, size_t cap, mlc_gguf_str s)
{
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

static void get_str_or(const mlc_gguf *g, const char *key, char *dst, size_t cap, const char *dflt)
{
    mlc_gguf_str s;
    if (mlc_gguf_get_str(g, key, &s, NULL) == MLC_OK)
        str_copy(dst, cap, s);
    else
        snprintf(dst, cap, "%s", dflt);
}

static void summarize(const mlc_gguf *g, model_summary *m)
{
    memset(m, 0, sizeof *m);
    get_str_or(g, "general.architecture", m->arch, sizeof m->arch, "");
    get_str_or(g, "general.name", m->name, sizeof m->name, "");
    get_str_or(g, "tokenizer.ggml.model", m->tok_model, sizeof m->tok_model, "");
    get_str_or(g, "tokenizer.ggml.pre", m->tok_pre, sizeof m->tok_pre, "");
    const mlc_gguf_value *toks;
    m->vocab_size = -1;
    if (mlc_gguf_get_arr(g, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, NULL) == MLC_OK)
        m->vocab_size = (int64_t)toks->arr.n;
    for (size_t i = 0; i < N_HPARAMS && m->arch[0]; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s.%s", m->arch, hparams[i].suffix);
        m->has_hp[i] = mlc_gguf_get_f64(g, key, &m->hp[i], NULL) == MLC_OK;
    }
    for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++) {
        const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, i);
        m->type_count[t->type]++;
        m->n_params += t->n_elements;
        m->n_bytes += t->nbytes;
        m->n_unsupported += !mlc_type_supported(t->type);
    }
}

static void shape_str(const mlc_gguf_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, d ? " x " : "", t->ne[d]);
    if (t->n_dims == 0)
        snprintf(buf, cap, "scalar");
}

static void human_bytes(uint64_t b, char *buf, size_t cap)
{
    if (b >= (1ull << 30))
        snprintf(buf, cap, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, cap, "%.2f MiB", (double)b / (double)(1ull << 20));
    else
        snprintf(buf, cap, "%.2f KiB", (double)b / 1024.0);
}

static void print_text(const mlc_gguf *g, const model_summary *m)
{
    char sz[32];
    human_bytes(mlc_gguf_file_size(g), sz, sizeof sz);
    printf("file:          %s (%s, GGUF v%u, alignment %" PRIu64 ")\n", mlc_gguf_path(g), sz,
           mlc_gguf_version(g), mlc_gguf_alignment(g));
    if (m->name[0])
        printf("name:          %s\n", m->name);
    printf("architecture:  %s\n", m->arch[0] ? m->arch : "(none: general.architecture absent)");
    for (size_t i = 0; i < N_HPARAMS; i++)
        if (m->has_hp[i])
            printf("  %-22s %g\n", hparams[i].label, m->hp[i]);
    if (m->vocab_size >= 0)
        printf("tokenizer:     %s%s%s, vocabulary %" PRId64 "\n", m->tok_model,
               m->tok_pre[0] ? ", pre " : "", m->tok_pre, m->vocab_size);
    else
        printf("tokenizer:     none\n");

    printf("\n%5s  %-32s %-6s %-22s %12s\n", "#", "tensor", "type", "shape", "bytes");
    for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++) {
        const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, i);
        char shape[96];
        shape_str(t, shape, sizeof shape);
        printf("%5" PRId64 "  %-32s %-6s %-22s %12" PRIu64 "%s\n", i, t->name,
               mlc_type_name(t->type), shape, t->nbytes,
               mlc_type_supported(t->type) ? "" : "  (unsupported type)");
    }
    human_bytes(m->n_bytes, sz, sizeof sz);
    printf("\ntensors:       %" PRId64, mlc_gguf_n_tensors(g));
    for (int t = 0, first = 1; t < MLC_TYPE_COUNT; t++) {
        if (m->type_count[t]) {
            printf("%s%" PRId64 " %s", first ? " (" : ", ", m->type_count[t], mlc_type_name((uint32_t)t));
            first = 0;
        }
    }
    printf("%s\nparameters:    %" PRId64 " (%.2f M)\n", mlc_gguf_n_tensors(g) ? ")" : "", m->n_params, (double)m->n_params / 1e6);
    printf("tensor bytes:  %" PRIu64 " (%s, %.2f bits per weight)\n", m->n_bytes, sz,
           m->n_params ? 8.0 * (double)m->n_bytes / (double)m->n_params : 0.0);
    for (int64_t i = 0; m->n_unsupported && i < mlc_gguf_n_tensors(g); i++) {
        const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, i);
        if (!mlc_type_supported(t->type))
            printf("unsupported:   tensor '%s' has type %s, which the engine cannot load\n",
                   t->name, mlc_type_name(t->type));
    }
}

static cJSON *tensor_json(const mlc_gguf_tensor *t)
{
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(o, "shape");
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "type", mlc_type_name(t->type));
    for (uint32_t d = 0; d < t->n_dims; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
    cJSON_AddNumberToObject(o, "n_elements", (double)t->n_elements);
    cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
    cJSON_AddNumberToObject(o, "offset", (double)t->offset);
    cJSON_AddBoolToObject(o, "supported", mlc_type_supported(t->type));
    return o;
}

static int print_json(const mlc_gguf *g, const model_summary *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", mlc_gguf_path(g));
    cJSON_AddNumberToObject(o, "file_bytes", (double)mlc_gguf_file_size(g));
    cJSON_AddNumberToObject(o, "gguf_version", mlc_gguf_version(g));
    cJSON_AddNumberToObject(o, "alignment", (double)mlc_gguf_alignment(g));
    cJSON_AddStringToObject(o, "architecture", m->arch);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON *hp = cJSON_AddObjectToObject(o, "hparams");
    for (size_t i = 0; i < N_HPARAMS; i++)
        if (m->has_hp[i])
            cJSON_AddNumberToObject(hp, hparams[i].label, m->hp[i]);
    cJSON *tok = cJSON_AddObjectToObject(o, "tokenizer");
    cJSON_AddStringToObject(tok, "model", m->tok_model);
    cJSON_AddStringToObject(tok, "pre", m->tok_pre);
    cJSON_AddNumberToObject(tok, "vocab_size", (double)m->vocab_size);
    cJSON *counts = cJSON_AddObjectToObject(o, "type_counts");
    for (int t = 0; t < MLC_TYPE_COUNT; t++)
        if (m->type_count[t])
            cJSON_AddNumberToObject(counts, mlc_type_name((uint32_t)t), (double)m->type_count[t]);
    cJSON_AddNumberToObject(o, "n_tensors", (double)mlc_gguf_n_tensors(g));
    cJSON_AddNumberToObject(o, "n_params", (double)m->n_params);
    cJSON_AddNumberToObject(o, "tensor_bytes", (double)m->n_bytes);
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    cJSON *un = cJSON_AddArrayToObject(o, "unsupported");
    for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++) {
        const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, i);
        cJSON_AddItemToArray(ts, tensor_json(t));
        if (!mlc_type_supported(t->type)) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "tensor", t->name);
            cJSON_AddStringToObject(u, "type", mlc_type_name(t->type));
            cJSON_AddItemToArray(un, u);
        }
    }
    char *s = cJSON_Print(o);
    int rc = s ? (puts(s) < 0) : 1;
    free(s);
    cJSON_Delete(o);
    return rc;
}

static const char info_usage[] = "usage: mlc-bench model info FILE.gguf [--json]\n";

static int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(info_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "mlc-bench model info: unknown option '%s' (see mlc-bench model info --help)\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "mlc-bench model info: unexpected argument '%s'\n%s", argv[i], info_usage);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fputs(info_usage, stderr);
        return 2;
    }
    mlc_gguf *g;
    mlc_err err;
    if (mlc_gguf_open(path, &g, &err) != MLC_OK) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        return 1;
    }
    model_summary m;
    summarize(g, &m);
    int rc = json ? print_json(g, &m) : (print_text(g, &m), 0);
    mlc_gguf_close(g);
    return rc;
}

static const char model_usage[] =
    "usage: mlc-bench model info FILE.gguf [--json]\n"
    "       mlc-bench model synth -o OUT.gguf [--preset P] [--type T] [--vocab FILE] ...\n"
    "  info   architecture, hyper-parameters, tokenizer, every tensor and the totals\n"
    "  synth  a deterministic random-weight llama/qwen2/gemma3 model (see model synth --help)\n";

int mlc_cmd_model(int argc, char **argv)
{
    if (argc < 2) {
        fputs(model_usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(model_usage, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "synth"))
        return mlc_cmd_model_synth(argc - 1, argv + 1);
    fprintf(stderr, "mlc-bench model: unknown subcommand '%s'\n%s", argv[1], model_usage);
    return 2;
}
