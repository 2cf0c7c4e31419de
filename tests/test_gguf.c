/* test_gguf.c: GGUF reader and writer: the shared golden and vocab files, writer->reader
 * round trips of every value and tensor type, and malformed files of every kind. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/gguf_writer.h"
#include "mlc/quant.h"
#include "util.h"

/* ------------------------------------------------------------------ shared files */

typedef struct golden_file {
    const char *name;
    uint32_t main_type; /* type of the big matrices */
} golden_file;

static const golden_file golden[] = {
    {"golden/tiny-llama-f16.gguf", MLC_TYPE_F16},
    {"golden/tiny-llama-q8_0.gguf", MLC_TYPE_Q8_0},
    {"golden/tiny-llama-q4_0.gguf", MLC_TYPE_Q4_0},
    {"golden/tiny-llama-q4_k_m.gguf", MLC_TYPE_Q4_K},
};

static mlc_gguf *open_shared(const char *rel)
{
    char path[1024];
    mlc_gguf *g = NULL;
    mlc_err err = {0};
    tu_require_shared(path, sizeof path, rel);
    mlc_status s = mlc_gguf_open(path, &g, &err);
    cr_assert_eq(s, MLC_OK, "%s: %s", path, err.msg);
    return g;
}

static int64_t count_type(const mlc_gguf *g, uint32_t type)
{
    int64_t n = 0;
    for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++)
        n += mlc_gguf_tensor_at(g, i)->type == type;
    return n;
}

static void check_u64(const mlc_gguf *g, const char *key, uint64_t want)
{
    uint64_t v = 0;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_get_u64(g, key, &v, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(v, want, "%s = %llu, want %llu", key, (unsigned long long)v,
                 (unsigned long long)want);
}

Test(gguf_shared, golden_models_match_readme)
{
    for (size_t f = 0; f < sizeof golden / sizeof golden[0]; f++) {
        mlc_gguf *g = open_shared(golden[f].name);
        mlc_gguf_str arch;
        cr_assert_eq(mlc_gguf_get_str(g, "general.architecture", &arch, NULL), MLC_OK);
        cr_expect(arch.len == 5 && !memcmp(arch.ptr, "llama", 5));
        check_u64(g, "llama.embedding_length", 256);
        check_u64(g, "llama.block_count", 4);
        check_u64(g, "llama.attention.head_count", 8);
        check_u64(g, "llama.attention.head_count_kv", 2);
        check_u64(g, "llama.feed_forward_length", 768);
        check_u64(g, "llama.context_length", 1024);
        const mlc_gguf_value *toks;
        cr_assert_eq(mlc_gguf_get_arr(g, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, NULL),
                     MLC_OK);
        cr_expect_eq(toks->arr.n, 32000);
        /* 4 layers x 9 tensors + token_embd, output_norm, output = 39; 9 norms are F32. */
        cr_expect_eq(mlc_gguf_n_tensors(g), 39, "%s", golden[f].name);
        cr_expect_eq(count_type(g, MLC_TYPE_F32), 9, "%s", golden[f].name);
        cr_expect_gt(count_type(g, golden[f].main_type), 0, "%s", golden[f].name);
        for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++) {
            const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, i);
            cr_expect(mlc_type_supported(t->type), "%s: %s", golden[f].name, t->name);
            cr_expect_leq(mlc_gguf_data_offset(g) + t->offset + t->nbytes, mlc_gguf_file_size(g));
        }
        const mlc_gguf_tensor *emb = mlc_gguf_find_tensor(g, "token_embd.weight");
        cr_assert_not_null(emb);
        cr_expect_eq(emb->ne[0], 256);
        cr_expect_eq(emb->ne[1], 32000);
        mlc_gguf_close(g);
    }
}

Test(gguf_shared, q4_k_m_type_mix)
{
    mlc_gguf *g = open_shared("golden/tiny-llama-q4_k_m.gguf");
    cr_expect_eq(mlc_gguf_n_tensors(g), 39);
    cr_expect_eq(count_type(g, MLC_TYPE_F32), 9);
    cr_expect_eq(count_type(g, MLC_TYPE_Q4_K), 25);
    cr_expect_eq(count_type(g, MLC_TYPE_Q6_K), 5);
    mlc_gguf_close(g);
}

Test(gguf_shared, vocab_files)
{
    static const struct {
        const char *file, *model;
        uint64_t n;
    } vocab[] = {
        {"vocab/ggml-vocab-llama-spm.gguf", "llama", 32000},
        {"vocab/ggml-vocab-gpt-2.gguf", "gpt2", 50257},
    };
    for (size_t i = 0; i < 2; i++) {
        mlc_gguf *g = open_shared(vocab[i].file);
        mlc_gguf_str model;
        cr_assert_eq(mlc_gguf_get_str(g, "tokenizer.ggml.model", &model, NULL), MLC_OK);
        cr_expect(model.len == strlen(vocab[i].model) && !memcmp(model.ptr, vocab[i].model, model.len));
        const mlc_gguf_value *toks;
        cr_assert_eq(mlc_gguf_get_arr(g, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, NULL),
                     MLC_OK);
        cr_expect_eq(toks->arr.n, vocab[i].n);
        cr_expect_eq(mlc_gguf_n_tensors(g), 0);
        mlc_gguf_close(g);
    }
}

/* ------------------------------------------------------------------ round trip */

static void *write_mem(mlc_gguf_writer *w, size_t *size)
{
    void *buf = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_writer_write_mem(w, &buf, size, NULL, NULL, &err), MLC_OK, "%s", err.msg);
    return buf;
}

static mlc_gguf *open_mem(const void *buf, size_t size)
{
    mlc_gguf *g = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_open_memory(buf, size, "mem.gguf", &g, &err), MLC_OK, "%s", err.msg);
    return g;
}

static bool str_eq(mlc_gguf_str s, const char *c)
{
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

/* One key of every scalar type, with extreme values, plus arrays of each. */
static void set_all_value_types(mlc_gguf_writer *w)
{
    mlc_gguf_value v;
    v = (mlc_gguf_value){.type = MLC_GGUF_UINT8, .u = 255};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.u8", &v), MLC_OK);
    v = (mlc_gguf_value){.type = MLC_GGUF_INT8, .i = -128};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.i8", &v), MLC_OK);
    v = (mlc_gguf_value){.type = MLC_GGUF_UINT16, .u = 65535};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.u16", &v), MLC_OK);
    v = (mlc_gguf_value){.type = MLC_GGUF_INT16, .i = -32768};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.i16", &v), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_u32(w, "t.u32", 4000000000u), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_i32(w, "t.i32", INT32_MIN), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_f32(w, "t.f32", -1.5e-7f), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_bool(w, "t.bool", true), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo"), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_str(w, "t.empty", ""), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_u64(w, "t.u64", UINT64_MAX), MLC_OK);
    v = (mlc_gguf_value){.type = MLC_GGUF_INT64, .i = INT64_MIN};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.i64", &v), MLC_OK);
    v = (mlc_gguf_value){.type = MLC_GGUF_FLOAT64, .f = 3.141592653589793};
    cr_assert_eq(mlc_gguf_writer_set(w, "t.f64", &v), MLC_OK);

    const int32_t i32s[] = {1, -2, 2147483647};
    const float f32s[] = {0.5f, -0.25f};
    const uint8_t bools[] = {1, 0, 1};
    const double f64s[] = {1e300};
    const int16_t i16s[] = {-7};
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.i32", MLC_GGUF_INT32, i32s, 3), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.f32", MLC_GGUF_FLOAT32, f32s, 2), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.bool", MLC_GGUF_BOOL, bools, 3), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.f64", MLC_GGUF_FLOAT64, f64s, 1), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.i16", MLC_GGUF_INT16, i16s, 1), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_set_arr(w, "a.empty", MLC_GGUF_UINT8, NULL, 0), MLC_OK);
    const char *strs[] = {"<s>", "", "\xe2\x96\x81the"};
    cr_assert_eq(mlc_gguf_writer_set_arr_str(w, "a.str", strs, 3), MLC_OK);

    /* Nested: [[1, 2], [], [3]] of u32 and [["a"], ["b", "c"]] of strings. */
    const uint32_t a12[] = {1, 2}, a3[] = {3};
    mlc_gguf_value inner[3] = {
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_UINT32, 2, a12, NULL}},
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_UINT32, 0, NULL, NULL}},
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_UINT32, 1, a3, NULL}},
    };
    v = (mlc_gguf_value){.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_ARRAY, 3, NULL, inner}};
    cr_assert_eq(mlc_gguf_writer_set(w, "a.nested", &v), MLC_OK);
    mlc_gguf_value sa[3] = {
        {.type = MLC_GGUF_STRING, .s = {"a", 1}},
        {.type = MLC_GGUF_STRING, .s = {"b", 1}},
        {.type = MLC_GGUF_STRING, .s = {"c", 1}},
    };
    mlc_gguf_value sinner[2] = {
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_STRING, 1, NULL, &sa[0]}},
        {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_STRING, 2, NULL, &sa[1]}},
    };
    v = (mlc_gguf_value){.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_ARRAY, 2, NULL, sinner}};
    cr_assert_eq(mlc_gguf_writer_set(w, "a.nested_str", &v), MLC_OK);
}

static void check_all_value_types(const mlc_gguf *g)
{
    const mlc_gguf_value *v;
    cr_assert_not_null(v = mlc_gguf_get(g, "t.u8"));
    cr_expect(v->type == MLC_GGUF_UINT8 && v->u == 255);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.i8"));
    cr_expect(v->type == MLC_GGUF_INT8 && v->i == -128);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.u16"));
    cr_expect(v->type == MLC_GGUF_UINT16 && v->u == 65535);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.i16"));
    cr_expect(v->type == MLC_GGUF_INT16 && v->i == -32768);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.u32"));
    cr_expect(v->type == MLC_GGUF_UINT32 && v->u == 4000000000u);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.i32"));
    cr_expect(v->type == MLC_GGUF_INT32 && v->i == INT32_MIN);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.f32"));
    cr_expect(v->type == MLC_GGUF_FLOAT32 && (float)v->f == -1.5e-7f);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.bool"));
    cr_expect(v->type == MLC_GGUF_BOOL && v->b);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.str"));
    cr_expect(v->type == MLC_GGUF_STRING && str_eq(v->s, "h\xc3\xa9llo"));
    cr_assert_not_null(v = mlc_gguf_get(g, "t.empty"));
    cr_expect(v->type == MLC_GGUF_STRING && v->s.len == 0);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.u64"));
    cr_expect(v->type == MLC_GGUF_UINT64 && v->u == UINT64_MAX);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.i64"));
    cr_expect(v->type == MLC_GGUF_INT64 && v->i == INT64_MIN);
    cr_assert_not_null(v = mlc_gguf_get(g, "t.f64"));
    cr_expect(v->type == MLC_GGUF_FLOAT64 && v->f == 3.141592653589793);

    cr_assert_eq(mlc_gguf_get_arr(g, "a.i32", MLC_GGUF_INT32, &v, NULL), MLC_OK);
    cr_assert_eq(v->arr.n, 3);
    cr_expect(mlc_gguf_arr_i64(v, 0) == 1 && mlc_gguf_arr_i64(v, 1) == -2 &&
              mlc_gguf_arr_i64(v, 2) == 2147483647);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.f32", MLC_GGUF_FLOAT32, &v, NULL), MLC_OK);
    cr_expect(mlc_gguf_arr_f64(v, 0) == 0.5 && mlc_gguf_arr_f64(v, 1) == -0.25);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.bool", MLC_GGUF_BOOL, &v, NULL), MLC_OK);
    cr_expect(mlc_gguf_arr_u64(v, 0) == 1 && mlc_gguf_arr_u64(v, 1) == 0 && mlc_gguf_arr_u64(v, 2) == 1);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.f64", MLC_GGUF_FLOAT64, &v, NULL), MLC_OK);
    cr_expect(mlc_gguf_arr_f64(v, 0) == 1e300);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.i16", MLC_GGUF_INT16, &v, NULL), MLC_OK);
    cr_expect(mlc_gguf_arr_i64(v, 0) == -7);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.empty", MLC_GGUF_UINT8, &v, NULL), MLC_OK);
    cr_expect_eq(v->arr.n, 0);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.str", MLC_GGUF_STRING, &v, NULL), MLC_OK);
    cr_assert_eq(v->arr.n, 3);
    cr_expect(str_eq(mlc_gguf_arr_str(v, 0), "<s>") && str_eq(mlc_gguf_arr_str(v, 1), "") &&
              str_eq(mlc_gguf_arr_str(v, 2), "\xe2\x96\x81the"));

    cr_assert_eq(mlc_gguf_get_arr(g, "a.nested", MLC_GGUF_ARRAY, &v, NULL), MLC_OK);
    cr_assert_eq(v->arr.n, 3);
    const mlc_gguf_value *in = v->arr.items;
    cr_expect(in[0].arr.type == MLC_GGUF_UINT32 && in[0].arr.n == 2);
    cr_expect(mlc_gguf_arr_u64(&in[0], 0) == 1 && mlc_gguf_arr_u64(&in[0], 1) == 2);
    cr_expect(in[1].arr.n == 0);
    cr_expect(in[2].arr.n == 1 && mlc_gguf_arr_u64(&in[2], 0) == 3);
    cr_assert_eq(mlc_gguf_get_arr(g, "a.nested_str", MLC_GGUF_ARRAY, &v, NULL), MLC_OK);
    cr_assert_eq(v->arr.n, 2);
    in = v->arr.items;
    cr_expect(in[0].arr.n == 1 && str_eq(mlc_gguf_arr_str(&in[0], 0), "a"));
    cr_expect(in[1].arr.n == 2 && str_eq(mlc_gguf_arr_str(&in[1], 1), "c"));
}

Test(gguf_roundtrip, every_value_type_v2_and_v3)
{
    for (uint32_t version = 2; version <= 3; version++) {
        mlc_gguf_writer *w = mlc_gguf_writer_new();
        mlc_gguf_writer_set_version(w, version);
        set_all_value_types(w);
        size_t size;
        void *buf = write_mem(w, &size);
        mlc_gguf *g = open_mem(buf, size);
        cr_expect_eq(mlc_gguf_version(g), version);
        cr_expect_eq(mlc_gguf_n_kv(g), 22);
        check_all_value_types(g);
        mlc_gguf_close(g);
        free(buf);
        mlc_gguf_writer_free(w);
    }
}

/* Bytes for a tensor of n values of type t: real quantized data for supported types,
 * a byte pattern for the one unsupported type we store. */
static uint8_t *make_tensor_bytes(uint32_t t, int64_t n, size_t *bytes)
{
    *bytes = mlc_type_row_bytes(t, n);
    uint8_t *p = malloc(*bytes);
    if (!mlc_type_supported(t)) {
        for (size_t i = 0; i < *bytes; i++)
            p[i] = (uint8_t)(i * 31 + 7);
        return p;
    }
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = sinf((float)i * 0.37f) * 2.0f;
    mlc_quantize_row((mlc_type)t, x, p, n);
    free(x);
    return p;
}

Test(gguf_roundtrip, every_tensor_type_and_alignment)
{
    static const uint32_t types[] = {MLC_TYPE_F32, MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                     MLC_TYPE_Q4_0, MLC_TYPE_Q4_K, MLC_TYPE_Q6_K, 16 /* IQ2_XXS */};
    const size_t nt = sizeof types / sizeof types[0];
    for (uint32_t align = 32; align <= 64; align *= 2) {
        mlc_gguf_writer *w = mlc_gguf_writer_new();
        if (align != 32)
            cr_assert_eq(mlc_gguf_writer_set_u32(w, "general.alignment", align), MLC_OK);
        cr_assert_eq(mlc_gguf_writer_set_str(w, "general.architecture", "llama"), MLC_OK);
        uint8_t *data[8];
        size_t bytes[8];
        mlc_err err = {0};
        for (size_t i = 0; i < nt; i++) {
            int64_t ne[3] = {256, (int64_t)i + 1, 2};
            data[i] = make_tensor_bytes(types[i], ne[0] * ne[1] * ne[2], &bytes[i]);
            char name[32];
            snprintf(name, sizeof name, "t%zu.%s", i, mlc_type_name(types[i]));
            cr_assert_eq(mlc_gguf_writer_add_tensor(w, name, types[i], 3, ne, data[i], &err),
                         MLC_OK, "%s", err.msg);
        }
        size_t size;
        void *buf = write_mem(w, &size);
        mlc_gguf *g = open_mem(buf, size);
        cr_expect_eq(mlc_gguf_alignment(g), align);
        cr_expect_eq(mlc_gguf_data_offset(g) % align, 0);
        cr_assert_eq(mlc_gguf_n_tensors(g), (int64_t)nt);
        for (size_t i = 0; i < nt; i++) {
            const mlc_gguf_tensor *t = mlc_gguf_tensor_at(g, (int64_t)i);
            cr_expect_eq(t->type, types[i]);
            cr_expect(t->n_dims == 3 && t->ne[0] == 256 && t->ne[1] == (int64_t)i + 1 &&
                      t->ne[2] == 2 && t->ne[3] == 1);
            cr_expect_eq(t->n_elements, 256 * ((int64_t)i + 1) * 2);
            cr_expect_eq(t->nbytes, bytes[i]);
            cr_expect_eq(t->offset % align, 0);
            cr_expect_eq(memcmp(t->data, data[i], bytes[i]), 0, "%s data differs", t->name);
            free(data[i]);
        }
        cr_expect_not(mlc_type_supported(mlc_gguf_tensor_at(g, 7)->type));
        mlc_gguf_close(g);
        free(buf);
        mlc_gguf_writer_free(w);
    }
}

static mlc_status fill_index(void *ctx, int64_t i, void *dst, size_t nbytes, mlc_err *err)
{
    (void)ctx;
    (void)err;
    memset(dst, (int)(0x40 + i), nbytes);
    return MLC_OK;
}

Test(gguf_roundtrip, file_with_fill_callback)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/fill.gguf", tu_tmpdir());
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_err err = {0};
    const int64_t ne[2] = {64, 3};
    cr_assert_eq(mlc_gguf_writer_add_tensor(w, "a", MLC_TYPE_F32, 2, ne, NULL, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_add_tensor(w, "b", MLC_TYPE_Q8_0, 2, ne, NULL, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_write(w, path, fill_index, NULL, &err), MLC_OK, "%s", err.msg);
    mlc_gguf_writer_free(w);
    mlc_gguf *g;
    cr_assert_eq(mlc_gguf_open(path, &g, &err), MLC_OK, "%s", err.msg);
    const mlc_gguf_tensor *b = mlc_gguf_find_tensor(g, "b");
    cr_assert_not_null(b);
    cr_expect_eq(b->nbytes, 3 * 2 * 34);
    cr_expect_eq(((const uint8_t *)b->data)[0], 0x41);
    cr_expect_eq(((const uint8_t *)b->data)[b->nbytes - 1], 0x41);
    cr_expect_null(mlc_gguf_find_tensor(g, "c"));
    mlc_gguf_close(g);
}

Test(gguf_roundtrip, writer_rejects_bad_input)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    mlc_err err = {0};
    const int64_t ne[1] = {33};
    cr_expect_eq(mlc_gguf_writer_set_u32(w, "general.alignment", 24), MLC_ERR_ARG);
    cr_expect_eq(mlc_gguf_writer_set_u64(w, "general.alignment", 32), MLC_ERR_ARG);
    cr_expect_eq(mlc_gguf_writer_set_u32(w, "", 1), MLC_ERR_ARG);
    cr_expect_eq(mlc_gguf_writer_add_tensor(w, "x", MLC_TYPE_Q8_0, 1, ne, NULL, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "'x'"), "%s", err.msg);
    cr_expect_eq(mlc_gguf_writer_add_tensor(w, "y", 4 /* retired id */, 1, ne, NULL, &err), MLC_ERR_ARG);
    cr_expect_eq(mlc_gguf_writer_add_tensor(w, "z", MLC_TYPE_F32, 1, ne, NULL, &err), MLC_OK);
    cr_expect_eq(mlc_gguf_writer_add_tensor(w, "z", MLC_TYPE_F32, 1, ne, NULL, &err), MLC_ERR_ARG);
    void *buf;
    size_t size;
    /* No data and no fill callback. */
    cr_expect_eq(mlc_gguf_writer_write_mem(w, &buf, &size, NULL, NULL, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "'z'"), "%s", err.msg);
    mlc_gguf_writer_free(w);
}

Test(gguf_getters, types_ranges_and_messages)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    set_all_value_types(w);
    size_t size;
    void *buf = write_mem(w, &size);
    mlc_gguf *g = open_mem(buf, size);
    mlc_err err = {0};
    uint64_t u;
    int64_t i;
    uint32_t u32;
    double d;
    float f;
    bool b;
    mlc_gguf_str s;
    const mlc_gguf_value *v;
    cr_expect_eq(mlc_gguf_get_u64(g, "t.u8", &u, &err), MLC_OK);
    cr_expect_eq(u, 255);
    cr_expect_eq(mlc_gguf_get_i64(g, "t.u16", &i, &err), MLC_OK);
    cr_expect_eq(i, 65535);
    cr_expect_eq(mlc_gguf_get_u64(g, "t.i8", &u, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "mem.gguf: key 't.i8'"), "%s", err.msg);
    cr_expect_eq(mlc_gguf_get_i64(g, "t.u64", &i, &err), MLC_ERR_RANGE);
    cr_expect_eq(mlc_gguf_get_u32(g, "t.u64", &u32, &err), MLC_ERR_RANGE);
    cr_expect_eq(mlc_gguf_get_u32(g, "t.u32", &u32, &err), MLC_OK);
    cr_expect_eq(mlc_gguf_get_f64(g, "t.i32", &d, &err), MLC_OK);
    cr_expect_eq(d, (double)INT32_MIN);
    cr_expect_eq(mlc_gguf_get_f32(g, "t.f64", &f, &err), MLC_OK);
    cr_expect_float_eq(f, 3.14159265f, 1e-6);
    cr_expect_eq(mlc_gguf_get_bool(g, "t.bool", &b, &err), MLC_OK);
    cr_expect_eq(mlc_gguf_get_bool(g, "t.u8", &b, &err), MLC_ERR_TYPE);
    cr_expect(strstr(err.msg, "expected bool, found u8"), "%s", err.msg);
    cr_expect_eq(mlc_gguf_get_str(g, "t.f32", &s, &err), MLC_ERR_TYPE);
    cr_expect_eq(mlc_gguf_get_u64(g, "t.str", &u, &err), MLC_ERR_TYPE);
    cr_expect_eq(mlc_gguf_get_str(g, "nope", &s, &err), MLC_ERR_NOT_FOUND);
    cr_expect(strstr(err.msg, "key 'nope': not found"), "%s", err.msg);
    cr_expect_eq(mlc_gguf_get_arr(g, "a.i32", MLC_GGUF_FLOAT32, &v, &err), MLC_ERR_TYPE);
    cr_expect(strstr(err.msg, "array of f32, found array of i32"), "%s", err.msg);
    cr_expect_eq(mlc_gguf_get_arr(g, "a.i32", MLC_GGUF_VTYPE_COUNT, &v, &err), MLC_OK);
    cr_expect_eq(mlc_gguf_get_arr(g, "t.u8", MLC_GGUF_VTYPE_COUNT, &v, &err), MLC_ERR_TYPE);
    cr_expect_str_eq(mlc_gguf_kv_key(g, 0), "t.u8");
    cr_expect_null(mlc_gguf_kv_key(g, 1000));
    mlc_gguf_close(g);
    free(buf);
    mlc_gguf_writer_free(w);
}

/* ------------------------------------------------------------------ malformed files */

/* A byte builder for hand-made headers. */
typedef struct bytes {
    uint8_t b[4096];
    size_t n;
} bytes;

static void b_le(bytes *b, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b->b[b->n++] = (uint8_t)(v >> (8 * i));
}
static void b_str(bytes *b, const char *s)
{
    b_le(b, strlen(s), 8);
    memcpy(b->b + b->n, s, strlen(s));
    b->n += strlen(s);
}
static void b_header(bytes *b, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    b_le(b, 0x46554747u, 4);
    b_le(b, 3, 4);
    b_le(b, n_tensors, 8);
    b_le(b, n_kv, 8);
}
/* A tensor info: 1-D F32 with n elements at offset. */
static void b_tensor(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, uint64_t offset)
{
    b_str(b, name);
    b_le(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++)
        b_le(b, ne[d], 8);
    b_le(b, type, 4);
    b_le(b, offset, 8);
}
static void b_pad(bytes *b, size_t align, size_t extra)
{
    while (b->n % align)
        b->b[b->n++] = 0;
    memset(b->b + b->n, 0, extra);
    b->n += extra;
}

/* Opening must fail with status want, a message naming mem.gguf and containing each of
 * the given fragments, and no handle. */
static void expect_reject(const bytes *b, mlc_status want, const char *frag1, const char *frag2)
{
    mlc_gguf *g = (mlc_gguf *)1;
    mlc_err err = {0};
    /* Copy to a heap buffer of the exact size so ASan catches any read past the end. */
    uint8_t *heap = malloc(b->n ? b->n : 1);
    memcpy(heap, b->b, b->n);
    mlc_status s = mlc_gguf_open_memory(heap, b->n, "mem.gguf", &g, &err);
    free(heap);
    cr_expect_eq(s, want, "status %d (%s), want %d", s, err.msg, want);
    cr_expect_null(g);
    cr_expect(strncmp(err.msg, "mem.gguf: offset ", 17) == 0, "%s", err.msg);
    cr_expect(!strchr(err.msg, '\n'), "multi-line: %s", err.msg);
    if (frag1)
        cr_expect(strstr(err.msg, frag1), "'%s' not in: %s", frag1, err.msg);
    if (frag2)
        cr_expect(strstr(err.msg, frag2), "'%s' not in: %s", frag2, err.msg);
}

Test(gguf_malformed, truncation_at_every_byte)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    set_all_value_types(w);
    mlc_err err = {0};
    const int64_t ne[2] = {32, 2};
    uint8_t q[2 * 34] = {0};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t ne8 = 8;
    cr_assert_eq(mlc_gguf_writer_add_tensor(w, "x", MLC_TYPE_F32, 1, &ne8, x, &err), MLC_OK);
    cr_assert_eq(mlc_gguf_writer_add_tensor(w, "q", MLC_TYPE_Q8_0, 2, ne, q, &err), MLC_OK);
    size_t size;
    uint8_t *buf = write_mem(w, &size);
    mlc_gguf_writer_free(w);
    for (size_t n = 0; n < size; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        mlc_gguf *g = NULL;
        mlc_status s = mlc_gguf_open_memory(cut, n, "cut.gguf", &g, &err);
        free(cut);
        cr_assert_neq(s, MLC_OK, "prefix of %zu / %zu bytes was accepted", n, size);
        cr_assert_null(g);
        cr_assert(strncmp(err.msg, "cut.gguf: offset ", 17) == 0, "%s", err.msg);
    }
    mlc_gguf *g = open_mem(buf, size);
    mlc_gguf_close(g);
    free(buf);
}

Test(gguf_malformed, magic_and_version)
{
    bytes b;
    b_header(&b, 0, 0);
    b.b[0] = 'X';
    expect_reject(&b, MLC_ERR_FORMAT, "offset 0: header: bad magic", NULL);
    b_header(&b, 0, 0);
    b.b[4] = 1;
    expect_reject(&b, MLC_ERR_UNSUPPORTED, "offset 4", "version 1");
    b_header(&b, 0, 0);
    b.b[4] = 4;
    expect_reject(&b, MLC_ERR_UNSUPPORTED, "version 4", NULL);
    b_header(&b, 0, 0);
    b.b[4] = 0;
    b.b[7] = 3; /* version 3 written big-endian */
    expect_reject(&b, MLC_ERR_UNSUPPORTED, "big-endian", NULL);
    b.n = 0;
    expect_reject(&b, MLC_ERR_FORMAT, "end of file", NULL);
}

Test(gguf_malformed, absurd_counts)
{
    bytes b;
    b_header(&b, 0, UINT64_MAX);
    expect_reject(&b, MLC_ERR_FORMAT, "offset 16", "key-value count");
    b_header(&b, 1ull << 40, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "offset 8", "tensor count");
    /* A string claiming 2^63 bytes. */
    b_header(&b, 0, 1);
    b_le(&b, 1ull << 63, 8);
    b_le(&b, 0, 8);
    expect_reject(&b, MLC_ERR_FORMAT, "offset 24", "string length");
    /* An array of 2^62 u32. */
    b_header(&b, 0, 1);
    b_str(&b, "arr");
    b_le(&b, MLC_GGUF_ARRAY, 4);
    b_le(&b, MLC_GGUF_UINT32, 4);
    b_le(&b, 1ull << 62, 8);
    expect_reject(&b, MLC_ERR_FORMAT, "key 'arr'", "array element count");
    /* An array of 2^40 strings. */
    b_header(&b, 0, 1);
    b_str(&b, "arr");
    b_le(&b, MLC_GGUF_ARRAY, 4);
    b_le(&b, MLC_GGUF_STRING, 4);
    b_le(&b, 1ull << 40, 8);
    b_le(&b, 0, 8);
    expect_reject(&b, MLC_ERR_FORMAT, "key 'arr'", "array element count");
}

Test(gguf_malformed, bad_values)
{
    bytes b;
    b_header(&b, 0, 1);
    b_str(&b, "k");
    b_le(&b, 13, 4);
    b_le(&b, 0, 8); /* room for a value, so the count check passes */
    expect_reject(&b, MLC_ERR_FORMAT, "offset 33: key 'k'", "invalid value type 13");
    b_header(&b, 0, 1);
    b_str(&b, "k");
    b_le(&b, MLC_GGUF_ARRAY, 4);
    b_le(&b, 77, 4);
    b_le(&b, 0, 8);
    expect_reject(&b, MLC_ERR_FORMAT, "invalid value type 77", NULL);
    /* Duplicate key. */
    b_header(&b, 0, 2);
    b_str(&b, "k");
    b_le(&b, MLC_GGUF_UINT8, 4);
    b_le(&b, 1, 1);
    b_str(&b, "k");
    b_le(&b, MLC_GGUF_UINT8, 4);
    b_le(&b, 1, 1);
    expect_reject(&b, MLC_ERR_FORMAT, "key 'k'", "duplicate key");
    /* Empty key and key with a NUL. */
    b_header(&b, 0, 1);
    b_str(&b, "");
    b_le(&b, MLC_GGUF_UINT8, 4);
    b_le(&b, 1, 2);
    expect_reject(&b, MLC_ERR_FORMAT, "empty or contains a NUL", NULL);
    /* Arrays nested past the limit: each level is an array of one array. */
    b_header(&b, 0, 1);
    b_str(&b, "deep");
    b_le(&b, MLC_GGUF_ARRAY, 4);
    for (int d = 0; d < MLC_GGUF_MAX_NESTING + 1; d++) {
        b_le(&b, MLC_GGUF_ARRAY, 4);
        b_le(&b, 1, 8);
    }
    b_le(&b, MLC_GGUF_UINT8, 4);
    b_le(&b, 0, 8);
    expect_reject(&b, MLC_ERR_FORMAT, "key 'deep'", "nested deeper");
}

Test(gguf_malformed, alignment_key)
{
    bytes b;
    b_header(&b, 0, 1);
    b_str(&b, "general.alignment");
    b_le(&b, MLC_GGUF_UINT32, 4);
    b_le(&b, 48, 4);
    expect_reject(&b, MLC_ERR_FORMAT, "key 'general.alignment'", "not a power of two");
    b_header(&b, 0, 1);
    b_str(&b, "general.alignment");
    b_le(&b, MLC_GGUF_UINT32, 4);
    b_le(&b, 0, 4);
    expect_reject(&b, MLC_ERR_FORMAT, "not a power of two", NULL);
    b_header(&b, 0, 1);
    b_str(&b, "general.alignment");
    b_le(&b, MLC_GGUF_INT32, 4);
    b_le(&b, 32, 4);
    expect_reject(&b, MLC_ERR_FORMAT, "must be u32, found i32", NULL);
}

Test(gguf_malformed, tensor_infos)
{
    bytes b;
    uint64_t ne1[1] = {8};
    /* Too many dimensions. */
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    b_header(&b, 1, 0);
    b_tensor(&b, "t", 5, ne5, MLC_TYPE_F32, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 't'", "5 dimensions");
    /* Element count overflows int64. */
    uint64_t big[3] = {1ull << 32, 1ull << 31, 4};
    b_header(&b, 1, 0);
    b_tensor(&b, "big", 3, big, MLC_TYPE_F32, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'big'", "overflow");
    uint64_t neg[1] = {1ull << 63};
    b_header(&b, 1, 0);
    b_tensor(&b, "neg", 1, neg, MLC_TYPE_F32, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'neg'", "overflow");
    /* Element count fits but bytes overflow: 2^61 F32 values. */
    uint64_t bytes_ovf[2] = {1ull << 31, 1ull << 30};
    b_header(&b, 1, 0);
    b_tensor(&b, "b", 2, bytes_ovf, 28 /* F64: 8 bytes each */, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'b'", NULL);
    /* Unknown type id and a retired one. */
    b_header(&b, 1, 0);
    b_tensor(&b, "u", 1, ne1, 99, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'u'", "unknown tensor type id 99");
    b_header(&b, 1, 0);
    b_tensor(&b, "r", 1, ne1, 4, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "unknown tensor type id 4", NULL);
    /* Row not a multiple of the block size. */
    uint64_t ne33[1] = {33};
    b_header(&b, 1, 0);
    b_tensor(&b, "q", 1, ne33, MLC_TYPE_Q8_0, 0);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'q'", "not a multiple of the Q8_0 block size 32");
    /* Misaligned offset. */
    b_header(&b, 1, 0);
    b_tensor(&b, "m", 1, ne1, MLC_TYPE_F32, 4);
    b_pad(&b, 32, 64);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'm'", "not a multiple of the alignment 32");
    /* Data past the end: 8 floats need 32 bytes, 16 present. */
    b_header(&b, 1, 0);
    b_tensor(&b, "e", 1, ne1, MLC_TYPE_F32, 0);
    b_pad(&b, 32, 16);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'e'", "past the end");
    /* Offset near 2^64: offset + size must not wrap. */
    b_header(&b, 1, 0);
    b_tensor(&b, "w", 1, ne1, MLC_TYPE_F32, UINT64_MAX - 31);
    b_pad(&b, 32, 32);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'w'", "past the end");
    /* Duplicate names and overlapping data. */
    b_header(&b, 2, 0);
    b_tensor(&b, "d", 1, ne1, MLC_TYPE_F32, 0);
    b_tensor(&b, "d", 1, ne1, MLC_TYPE_F32, 32);
    b_pad(&b, 32, 64);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'd'", "duplicate tensor name");
    uint64_t ne16[1] = {16};
    b_header(&b, 2, 0);
    b_tensor(&b, "a", 1, ne16, MLC_TYPE_F32, 0);
    b_tensor(&b, "b", 1, ne1, MLC_TYPE_F32, 32);
    b_pad(&b, 32, 64);
    expect_reject(&b, MLC_ERR_FORMAT, "tensor 'b'", "overlaps tensor 'a'");
}

Test(gguf_malformed, files_on_disk)
{
    mlc_gguf *g;
    mlc_err err = {0};
    cr_expect_eq(mlc_gguf_open("/nonexistent/x.gguf", &g, &err), MLC_ERR_NOT_FOUND);
    cr_expect(strstr(err.msg, "/nonexistent/x.gguf: "), "%s", err.msg);
    cr_expect_eq(mlc_gguf_open(tu_tmpdir(), &g, &err), MLC_ERR_IO);
    cr_expect(strstr(err.msg, "directory"), "%s", err.msg);
    char path[1024];
    snprintf(path, sizeof path, "%s/empty.gguf", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "", 0), 0);
    cr_expect_eq(mlc_gguf_open(path, &g, &err), MLC_ERR_FORMAT);
    cr_expect(strstr(err.msg, "empty file"), "%s", err.msg);
    snprintf(path, sizeof path, "%s/short.gguf", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "GGUF\x03\x00\x00\x00", 8), 0);
    cr_expect_eq(mlc_gguf_open(path, &g, &err), MLC_ERR_FORMAT);
    cr_expect(strstr(err.msg, "short.gguf: offset 8: header: unexpected end of file"), "%s", err.msg);
}
