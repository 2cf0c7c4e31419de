/* fuzz_seeds.c: writes small valid GGUF files into a directory, as the fuzzer's seed corpus.
 * Usage: gguf-seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/gguf_writer.h"
#include "mlc/quant.h"

static int save(mlc_gguf_writer *w, const char *dir, const char *name)
{
    char path[1024];
    mlc_err err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mlc_status s = mlc_gguf_writer_write(w, path, NULL, NULL, &err);
    mlc_gguf_writer_free(w);
    if (s)
        fprintf(stderr, "gguf-seeds: %s\n", err.msg);
    return s != MLC_OK;
}

/* Metadata of every kind, no tensors. */
static mlc_gguf_writer *seed_metadata(void)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    const char *toks[] = {"<unk>", "<s>", "</s>", ("\xe2\x96\x81" "a"), "b"};
    const float scores[] = {0, 0, 0, -1.5f, -2};
    const int32_t types[] = {2, 3, 3, 1, 1};
    const uint32_t inner_a[] = {1, 2};
    mlc_gguf_value inner[2] = {
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_UINT32, 2, inner_a, NULL}},
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_UINT32, 0, NULL, NULL}},
    };
    mlc_gguf_value nested = {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_ARRAY, 2, NULL, inner}};
    mlc_gguf_value i64 = {.type = MLC_GGUF_INT64, .i = -5};
    mlc_gguf_value f64 = {.type = MLC_GGUF_FLOAT64, .f = 0.25};
    mlc_gguf_value u16 = {.type = MLC_GGUF_UINT16, .u = 7};
    mlc_gguf_writer_set_str(w, "general.architecture", "llama");
    mlc_gguf_writer_set_u32(w, "llama.block_count", 1);
    mlc_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    mlc_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    mlc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5);
    mlc_gguf_writer_set_arr(w, "tokenizer.ggml.scores", MLC_GGUF_FLOAT32, scores, 5);
    mlc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MLC_GGUF_INT32, types, 5);
    mlc_gguf_writer_set(w, "x.nested", &nested);
    mlc_gguf_writer_set(w, "x.i64", &i64);
    mlc_gguf_writer_set(w, "x.f64", &f64);
    mlc_gguf_writer_set(w, "x.u16", &u16);
    return w;
}

/* The types written to the tensor seeds: every supported one. */
static const mlc_type TYPES[] = {MLC_TYPE_F32,  MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                 MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                                 MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                                 MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
enum { NTYPES = sizeof TYPES / sizeof TYPES[0] };

/* One small tensor of each supported type (and a custom alignment). */
static mlc_gguf_writer *seed_tensors(uint32_t align, float *x, void *q[NTYPES])
{
    const mlc_type *types = TYPES;
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_gguf_writer_set_str(w, "general.architecture", "llama");
    if (align != 32)
        mlc_gguf_writer_set_u32(w, "general.alignment", align);
    for (int i = 0; i < NTYPES; i++) {
        int64_t ne[2] = {256, 1};
        q[i] = malloc(mlc_type_row_bytes(types[i], 256));
        mlc_quantize_row(types[i], x, q[i], 256);
        char name[32];
        snprintf(name, sizeof name, "t.%s", mlc_type_name(types[i]));
        mlc_gguf_writer_add_tensor(w, name, types[i], 2, ne, q[i], NULL);
    }
    return w;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gguf-seeds DIR\n");
        return 2;
    }
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    void *q[NTYPES];
    int rc = save(seed_metadata(), argv[1], "metadata.gguf");
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_gguf_writer_set_version(w, 2);
    mlc_gguf_writer_set_str(w, "general.name", "v2");
    rc |= save(w, argv[1], "v2.gguf");
    for (uint32_t align = 32; align <= 64; align *= 2) {
        char name[32];
        snprintf(name, sizeof name, "tensors-%u.gguf", align);
        rc |= save(seed_tensors(align, x, q), argv[1], name);
        for (int i = 0; i < NTYPES; i++)
            free(q[i]);
    }
    return rc;
}
