/* gguf_writer.c: GGUF v2/v3 writer. Metadata and tensor infos are collected first, then the
 * file is written in one pass through mlc_outfile (a temporary file renamed at the end), with
 * tensor data borrowed or produced on demand by a fill callback. */
#include "mlc/gguf_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/quant.h"
#include "outfile.h"

typedef struct wkv {
    char *key;
    mlc_gguf_value v; /* deep copy owned by the writer */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[MLC_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    const void *data; /* borrowed; NULL: ask the fill callback */
} wtensor;

struct mlc_gguf_writer {
    uint32_t version;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

mlc_gguf_writer *mlc_gguf_writer_new(void)
{
    mlc_gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        w->version = 3;
    return w;
}

void mlc_gguf_writer_set_version(mlc_gguf_writer *w, uint32_t version)
{
    w->version = version;
}

/* Frees what value_copy() allocated. */
static void wvalue_free(mlc_gguf_value *v)
{
    if (v->type == MLC_GGUF_STRING)
        free((void *)v->s.ptr);
    if (v->type != MLC_GGUF_ARRAY)
        return;
    free((void *)v->arr.data);
    mlc_gguf_value *items = (mlc_gguf_value *)v->arr.items;
    for (uint64_t i = 0; items && i < v->arr.n; i++)
        wvalue_free(&items[i]);
    free(items);
}

static mlc_status value_copy(mlc_gguf_value *dst, const mlc_gguf_value *src, int depth)
{
    *dst = *src;
    if ((unsigned)src->type >= MLC_GGUF_VTYPE_COUNT)
        return MLC_ERR_ARG;
    if (src->type == MLC_GGUF_STRING) {
        char *p = malloc(src->s.len ? (size_t)src->s.len : 1);
        if (!p)
            return MLC_ERR_NOMEM;
        memcpy(p, src->s.ptr, (size_t)src->s.len);
        dst->s.ptr = p;
        return MLC_OK;
    }
    if (src->type != MLC_GGUF_ARRAY)
        return MLC_OK;
    dst->arr.data = NULL;
    dst->arr.items = NULL;
    dst->arr.n = 0;
    mlc_gguf_vtype et = src->arr.type;
    if ((unsigned)et >= MLC_GGUF_VTYPE_COUNT || depth >= MLC_GGUF_MAX_NESTING)
        return MLC_ERR_ARG;
    size_t esize = mlc_gguf_vtype_size(et), n = (size_t)src->arr.n, bytes;
    if (esize) {
        if (__builtin_mul_overflow(n, esize, &bytes) || (n && !src->arr.data))
            return MLC_ERR_ARG;
        void *p = malloc(bytes ? bytes : 1);
        if (!p)
            return MLC_ERR_NOMEM;
        if (bytes)
            memcpy(p, src->arr.data, bytes);
        dst->arr.data = p;
        dst->arr.n = n;
        return MLC_OK;
    }
    if (n && !src->arr.items)
        return MLC_ERR_ARG;
    mlc_gguf_value *items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return MLC_ERR_NOMEM;
    dst->arr.items = items;
    for (size_t i = 0; i < n; i++) {
        if (src->arr.items[i].type != et)
            return MLC_ERR_ARG;
        mlc_status s = value_copy(&items[i], &src->arr.items[i], depth + 1);
        dst->arr.n = i + 1; /* so wvalue_free() sees what was copied */
        if (s)
            return s;
    }
    return MLC_OK;
}

mlc_status mlc_gguf_writer_set(mlc_gguf_writer *w, const char *key, const mlc_gguf_value *v)
{
    if (!key || !*key)
        return MLC_ERR_ARG;
    if (!strcmp(key, "general.alignment") &&
        (v->type != MLC_GGUF_UINT32 || v->u == 0 || (v->u & (v->u - 1)) || v->u > UINT32_MAX))
        return MLC_ERR_ARG;
    mlc_gguf_value copy;
    mlc_status s = value_copy(&copy, v, 0);
    if (s) {
        wvalue_free(&copy);
        return s;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            wvalue_free(&w->kv[i].v);
            w->kv[i].v = copy;
            return MLC_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *nk = realloc(w->kv, cap * sizeof *nk);
        if (!nk)
            goto nomem;
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k)
        goto nomem;
    w->kv[w->n_kv++] = (wkv){k, copy};
    return MLC_OK;
nomem:
    wvalue_free(&copy);
    return MLC_ERR_NOMEM;
}

mlc_status mlc_gguf_writer_set_u32(mlc_gguf_writer *w, const char *key, uint32_t v)
{
    return mlc_gguf_writer_set(w, key, &(mlc_gguf_value){.type = MLC_GGUF_UINT32, .u = v});
}

mlc_status mlc_gguf_writer_set_i32(mlc_gguf_writer *w, const char *key, int32_t v)
{
    return mlc_gguf_writer_set(w, key, &(mlc_gguf_value){.type = MLC_GGUF_INT32, .i = v});
}

mlc_status mlc_gguf_writer_set_u64(mlc_gguf_writer *w, const char *key, uint64_t v)
{
    return mlc_gguf_writer_set(w, key, &(mlc_gguf_value){.type = MLC_GGUF_UINT64, .u = v});
}

mlc_status mlc_gguf_writer_set_f32(mlc_gguf_writer *w, const char *key, float v)
{
    return mlc_gguf_writer_set(w, key, &(mlc_gguf_value){.type = MLC_GGUF_FLOAT32, .f = v});
}

mlc_status mlc_gguf_writer_set_bool(mlc_gguf_writer *w, const char *key, bool v)
{
    return mlc_gguf_writer_set(w, key, &(mlc_gguf_value){.type = MLC_GGUF_BOOL, .b = v});
}

mlc_status mlc_gguf_writer_set_str(mlc_gguf_writer *w, const char *key, const char *s)
{
    mlc_gguf_value v = {.type = MLC_GGUF_STRING, .s = {s, strlen(s)}};
    return mlc_gguf_writer_set(w, key, &v);
}

mlc_status mlc_gguf_writer_set_arr(mlc_gguf_writer *w, const char *key, mlc_gguf_vtype elem,
                                   const void *data, uint64_t n)
{
    if ((unsigned)elem >= MLC_GGUF_VTYPE_COUNT || !mlc_gguf_vtype_size(elem))
        return MLC_ERR_ARG;
    mlc_gguf_value v = {.type = MLC_GGUF_ARRAY, .arr = {elem, n, data, NULL}};
    return mlc_gguf_writer_set(w, key, &v);
}

mlc_status mlc_gguf_writer_set_arr_str(mlc_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n)
{
    mlc_gguf_value *items = calloc(n ? (size_t)n : 1, sizeof *items);
    if (!items)
        return MLC_ERR_NOMEM;
    for (uint64_t i = 0; i < n; i++)
        items[i] = (mlc_gguf_value){.type = MLC_GGUF_STRING, .s = {strs[i], strlen(strs[i])}};
    mlc_gguf_value v = {.type = MLC_GGUF_ARRAY, .arr = {MLC_GGUF_STRING, n, NULL, items}};
    mlc_status s = mlc_gguf_writer_set(w, key, &v);
    free(items);
    return s;
}

mlc_status mlc_gguf_writer_add_tensor(mlc_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      mlc_err *err)
{
    int64_t bs = mlc_type_block_size(type);
    if (!name || !*name)
        return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: tensor name is empty");
    if (bs == 0 || n_dims > MLC_GGUF_MAX_DIMS)
        return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: tensor '%s': bad type %u or %u dims",
                           name, type, n_dims);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    int64_t n = 1;
    for (uint32_t d = 0; d < MLC_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0 || __builtin_mul_overflow(n, t.ne[d], &n))
            return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: tensor '%s': bad shape", name);
    }
    if (t.ne[0] % bs || __builtin_mul_overflow((uint64_t)(n / bs),
                                               (uint64_t)mlc_type_block_bytes(type), &t.nbytes))
        return mlc_err_set(err, MLC_ERR_ARG,
                           "gguf writer: tensor '%s': row of %lld is not a multiple of block %lld",
                           name, (long long)t.ne[0], (long long)bs);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return mlc_err_set(err, MLC_ERR_NOMEM, "gguf writer: out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    if (!(t.name = strdup(name)))
        return mlc_err_set(err, MLC_ERR_NOMEM, "gguf writer: out of memory");
    w->t[w->n_t++] = t;
    return MLC_OK;
}

void mlc_gguf_writer_free(mlc_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        wvalue_free(&w->kv[i].v);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Serialisation: put_* append to a stdio stream; errors are collected with ferror() at
 * the end, so the helpers stay simple. */
static void put_le(FILE *f, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    fwrite(b, 1, n, f);
}

static void put_str(FILE *f, const char *p, uint64_t len)
{
    put_le(f, len, 8);
    fwrite(p, 1, (size_t)len, f);
}

static void put_scalar(FILE *f, const mlc_gguf_value *v)
{
    size_t n = mlc_gguf_vtype_size(v->type);
    if (v->type == MLC_GGUF_FLOAT32) {
        float x = (float)v->f;
        uint32_t bits;
        memcpy(&bits, &x, 4);
        put_le(f, bits, 4);
    } else if (v->type == MLC_GGUF_FLOAT64) {
        uint64_t bits;
        memcpy(&bits, &v->f, 8);
        put_le(f, bits, 8);
    } else if (v->type == MLC_GGUF_BOOL) {
        put_le(f, v->b ? 1 : 0, 1);
    } else {
        put_le(f, mlc_gguf_vtype_is_signed(v->type) ? (uint64_t)v->i : v->u, n);
    }
}

static void put_value(FILE *f, const mlc_gguf_value *v)
{
    if (v->type == MLC_GGUF_STRING) {
        put_str(f, v->s.ptr, v->s.len);
    } else if (v->type == MLC_GGUF_ARRAY) {
        put_le(f, v->arr.type, 4);
        put_le(f, v->arr.n, 8);
        if (v->arr.data)
            fwrite(v->arr.data, mlc_gguf_vtype_size(v->arr.type), (size_t)v->arr.n, f);
        for (uint64_t i = 0; v->arr.items && i < v->arr.n; i++)
            put_value(f, &v->arr.items[i]);
    } else {
        put_scalar(f, v);
    }
}

static void put_pad(FILE *f, uint64_t from, uint64_t align)
{
    static const uint8_t zeros[64];
    for (uint64_t pad = (align - from % align) % align; pad > 0;) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        fwrite(zeros, 1, n, f);
        pad -= n;
    }
}

static uint64_t writer_alignment(const mlc_gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, "general.alignment"))
            return w->kv[i].v.u;
    return MLC_GGUF_DEFAULT_ALIGNMENT;
}

static mlc_status write_data(mlc_gguf_writer *w, FILE *f, uint64_t align, mlc_gguf_fill_fn fill,
                             void *ctx, mlc_err *err)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        put_pad(f, pos, align);
        pos = t->offset;
        const void *src = t->data;
        void *buf = NULL;
        if (!src && t->nbytes) {
            if (!fill)
                return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: tensor '%s' has no data",
                                   t->name);
            if (!(buf = malloc((size_t)t->nbytes)))
                return mlc_err_set(err, MLC_ERR_NOMEM, "gguf writer: tensor '%s': out of memory",
                                   t->name);
            mlc_status s = fill(ctx, (int64_t)i, buf, (size_t)t->nbytes, err);
            if (s) {
                free(buf);
                return s;
            }
            src = buf;
        }
        if (t->nbytes)
            fwrite(src, 1, (size_t)t->nbytes, f);
        free(buf);
        pos += t->nbytes;
        if (ferror(f))
            return mlc_err_set(err, MLC_ERR_IO, "gguf writer: write failed: %s", strerror(errno));
    }
    return MLC_OK;
}

static mlc_status write_stream(mlc_gguf_writer *w, FILE *f, mlc_gguf_fill_fn fill, void *ctx,
                               mlc_err *err)
{
    uint64_t align = writer_alignment(w), off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += (w->t[i].nbytes + align - 1) / align * align;
    }
    put_le(f, MLC_GGUF_MAGIC, 4);
    put_le(f, w->version, 4);
    put_le(f, w->n_t, 8);
    put_le(f, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(f, w->kv[i].key, strlen(w->kv[i].key));
        put_le(f, w->kv[i].v.type, 4);
        put_value(f, &w->kv[i].v);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(f, t->name, strlen(t->name));
        put_le(f, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(f, (uint64_t)t->ne[d], 8);
        put_le(f, t->type, 4);
        put_le(f, t->offset, 8);
    }
    long hdr = ftell(f);
    if (hdr < 0 || ferror(f))
        return mlc_err_set(err, MLC_ERR_IO, "gguf writer: write failed: %s", strerror(errno));
    /* The data section is aligned; a file without tensors ends right after the header. */
    if (w->n_t)
        put_pad(f, (uint64_t)hdr, align);
    return write_data(w, f, align, fill, ctx, err);
}

mlc_status mlc_gguf_writer_write(mlc_gguf_writer *w, const char *path, mlc_gguf_fill_fn fill,
                                 void *fill_ctx, mlc_err *err)
{
    if (w->version != 2 && w->version != 3)
        return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: version %u", w->version);
    mlc_outfile out;
    mlc_status s = mlc_outfile_open(&out, path, err);
    if (s == MLC_OK)
        s = write_stream(w, out.f, fill, fill_ctx, err);
    if (s == MLC_OK)
        return mlc_outfile_commit(&out, err);
    mlc_outfile_discard(&out);
    return s;
}

mlc_status mlc_gguf_writer_write_mem(mlc_gguf_writer *w, void **out, size_t *size,
                                     mlc_gguf_fill_fn fill, void *fill_ctx, mlc_err *err)
{
    *out = NULL;
    *size = 0;
    if (w->version != 2 && w->version != 3)
        return mlc_err_set(err, MLC_ERR_ARG, "gguf writer: version %u", w->version);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return mlc_err_set(err, MLC_ERR_NOMEM, "gguf writer: open_memstream: %s", strerror(errno));
    mlc_status s = write_stream(w, f, fill, fill_ctx, err);
    if (fclose(f) != 0 && !s)
        s = mlc_err_set(err, MLC_ERR_IO, "gguf writer: %s", strerror(errno));
    if (s) {
        free(buf);
        return s;
    }
    *out = buf;
    *size = len;
    return MLC_OK;
}
