/* gguf.c: GGUF v2/v3 reader (validating, mmap); the writer is gguf_writer.c.
 *
 * The reader trusts nothing: every count is bounded by the bytes left before anything is
 * allocated, every length and shape product uses overflow-checked arithmetic, and tensor
 * extents are checked against the file size and against each other. After mlc_gguf_open()
 * succeeds, all pointers in the handle are in bounds. */
#include "mlc/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlc/quant.h"
#include "outfile.h"

typedef struct gguf_kv {
    char *key;
    mlc_gguf_value v;
} gguf_kv;

struct mlc_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    mlc_gguf_tensor *tensors;
};

/* ---------------------------------------------------------------- value types */

static const struct {
    const char *name;
    size_t size;
} vtypes[MLC_GGUF_VTYPE_COUNT] = {
    [MLC_GGUF_UINT8] = {"u8", 1},     [MLC_GGUF_INT8] = {"i8", 1},
    [MLC_GGUF_UINT16] = {"u16", 2},   [MLC_GGUF_INT16] = {"i16", 2},
    [MLC_GGUF_UINT32] = {"u32", 4},   [MLC_GGUF_INT32] = {"i32", 4},
    [MLC_GGUF_FLOAT32] = {"f32", 4},  [MLC_GGUF_BOOL] = {"bool", 1},
    [MLC_GGUF_STRING] = {"string", 0}, [MLC_GGUF_ARRAY] = {"array", 0},
    [MLC_GGUF_UINT64] = {"u64", 8},   [MLC_GGUF_INT64] = {"i64", 8},
    [MLC_GGUF_FLOAT64] = {"f64", 8},
};

size_t mlc_gguf_vtype_size(mlc_gguf_vtype t)
{
    return (unsigned)t < MLC_GGUF_VTYPE_COUNT ? vtypes[t].size : 0;
}

const char *mlc_gguf_vtype_name(mlc_gguf_vtype t)
{
    return (unsigned)t < MLC_GGUF_VTYPE_COUNT ? vtypes[t].name : "invalid";
}

static bool vtype_is_unsigned(mlc_gguf_vtype t)
{
    return t == MLC_GGUF_UINT8 || t == MLC_GGUF_UINT16 || t == MLC_GGUF_UINT32 ||
           t == MLC_GGUF_UINT64;
}

bool mlc_gguf_vtype_is_signed(mlc_gguf_vtype t)
{
    return t == MLC_GGUF_INT8 || t == MLC_GGUF_INT16 || t == MLC_GGUF_INT32 ||
           t == MLC_GGUF_INT64;
}

static bool vtype_is_float(mlc_gguf_vtype t)
{
    return t == MLC_GGUF_FLOAT32 || t == MLC_GGUF_FLOAT64;
}

/* Little-endian loads from possibly unaligned bytes. */
static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int64_t sign_extend(uint64_t v, size_t n)
{
    if (n >= 8)
        return (int64_t)v;
    uint64_t m = 1ull << (8 * n - 1);
    return (int64_t)((v ^ m) - m);
}

static double load_float(const uint8_t *p, mlc_gguf_vtype t)
{
    if (t == MLC_GGUF_FLOAT32) {
        uint32_t bits = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    uint64_t bits = load_le(p, 8);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* Decodes one fixed-size scalar of type t at p into v. */
static void decode_scalar(const uint8_t *p, mlc_gguf_vtype t, mlc_gguf_value *v)
{
    size_t n = vtypes[t].size;
    v->type = t;
    if (vtype_is_unsigned(t))
        v->u = load_le(p, n);
    else if (mlc_gguf_vtype_is_signed(t))
        v->i = sign_extend(load_le(p, n), n);
    else if (vtype_is_float(t))
        v->f = load_float(p, t);
    else
        v->b = p[0] != 0;
}

/* ---------------------------------------------------------------- reader */

typedef struct reader {
    const char *path;
    const uint8_t *p;
    size_t size;
    size_t pos;
    char ctx[192]; /* "key 'x'" or "tensor 'y'": what was being read */
    mlc_err *err;
} reader;

static mlc_status rd_fail(reader *r, mlc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mlc_status rd_fail(reader *r, mlc_status s, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mlc_err_set(r->err, s, "%s: offset %zu: %s: %s", r->path, r->pos, r->ctx, what);
}

static void rd_ctx(reader *r, const char *kind, const char *name, size_t len)
{
    /* Names come from the file: show at most 96 bytes, with non-printables as '?'. */
    char shown[100];
    size_t n = len < 96 ? len : 96, j = 0;
    for (size_t i = 0; i < n; i++)
        shown[j++] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
    shown[j] = 0;
    snprintf(r->ctx, sizeof r->ctx, "%s '%s%s'", kind, shown, len > n ? "..." : "");
}

static size_t rd_left(const reader *r)
{
    return r->size - r->pos;
}

static mlc_status rd_need(reader *r, size_t n)
{
    if (rd_left(r) < n)
        return rd_fail(r, MLC_ERR_FORMAT, "unexpected end of file (need %zu bytes, %zu left)",
                       n, rd_left(r));
    return MLC_OK;
}

static mlc_status rd_u32(reader *r, uint32_t *out)
{
    mlc_status s = rd_need(r, 4);
    if (s)
        return s;
    *out = (uint32_t)load_le(r->p + r->pos, 4);
    r->pos += 4;
    return MLC_OK;
}

static mlc_status rd_u64(reader *r, uint64_t *out)
{
    mlc_status s = rd_need(r, 8);
    if (s)
        return s;
    *out = load_le(r->p + r->pos, 8);
    r->pos += 8;
    return MLC_OK;
}

/* A count of items that each take at least min_item bytes must fit in what is left after
 * the current position; an error points at the count field (at). */
static mlc_status rd_count(reader *r, size_t at, uint64_t n, size_t min_item, const char *what)
{
    size_t left = rd_left(r);
    if (n <= left / min_item)
        return MLC_OK;
    r->pos = at;
    return rd_fail(r, MLC_ERR_FORMAT, "%s count %llu cannot fit in the %zu bytes left", what,
                   (unsigned long long)n, left);
}

static mlc_status rd_str(reader *r, mlc_gguf_str *out)
{
    uint64_t len;
    mlc_status s = rd_u64(r, &len);
    if (s)
        return s;
    if (len > rd_left(r)) {
        r->pos -= 8;
        return rd_fail(r, MLC_ERR_FORMAT, "string length %llu exceeds the %zu bytes left",
                       (unsigned long long)len, rd_left(r) - 8);
    }
    out->ptr = (const char *)r->p + r->pos;
    out->len = len;
    r->pos += (size_t)len;
    return MLC_OK;
}

/* A key or tensor name: non-empty, no NUL byte, copied with a terminator. */
static mlc_status rd_name(reader *r, const char *kind, char **out)
{
    size_t start = r->pos;
    mlc_gguf_str s;
    mlc_status st = rd_str(r, &s);
    if (st)
        return st;
    rd_ctx(r, kind, s.ptr, (size_t)s.len);
    if (s.len == 0 || memchr(s.ptr, 0, (size_t)s.len)) {
        r->pos = start;
        return rd_fail(r, MLC_ERR_FORMAT, "%s name is empty or contains a NUL byte", kind);
    }
    *out = malloc((size_t)s.len + 1);
    if (!*out)
        return rd_fail(r, MLC_ERR_NOMEM, "out of memory");
    memcpy(*out, s.ptr, (size_t)s.len);
    (*out)[s.len] = 0;
    return MLC_OK;
}

static void value_free(mlc_gguf_value *v)
{
    if (v->type != MLC_GGUF_ARRAY || !v->arr.items)
        return;
    mlc_gguf_value *items = (mlc_gguf_value *)v->arr.items;
    for (uint64_t i = 0; i < v->arr.n; i++)
        value_free(&items[i]);
    free(items);
    v->arr.items = NULL;
}

static mlc_status rd_value(reader *r, mlc_gguf_vtype t, int depth, mlc_gguf_value *v);

static mlc_status rd_vtype(reader *r, mlc_gguf_vtype *t)
{
    uint32_t raw;
    mlc_status s = rd_u32(r, &raw);
    if (s)
        return s;
    if (raw >= MLC_GGUF_VTYPE_COUNT) {
        r->pos -= 4;
        return rd_fail(r, MLC_ERR_FORMAT, "invalid value type %u", raw);
    }
    *t = (mlc_gguf_vtype)raw;
    return MLC_OK;
}

static mlc_status rd_array(reader *r, int depth, mlc_gguf_value *v)
{
    mlc_gguf_vtype et = MLC_GGUF_UINT8;
    uint64_t n;
    mlc_status s;
    if (depth >= MLC_GGUF_MAX_NESTING)
        return rd_fail(r, MLC_ERR_FORMAT, "arrays nested deeper than %d", MLC_GGUF_MAX_NESTING);
    if ((s = rd_vtype(r, &et)))
        return s;
    size_t at = r->pos;
    if ((s = rd_u64(r, &n)))
        return s;
    v->arr.type = et;
    v->arr.n = 0;
    size_t esize = vtypes[et].size;
    if (esize) {
        if ((s = rd_count(r, at, n, esize, "array element")))
            return s;
        v->arr.n = n;
        v->arr.data = r->p + r->pos;
        r->pos += (size_t)n * esize;
        return MLC_OK;
    }
    /* Strings take at least 8 bytes (length), arrays at least 12 (type, count). */
    if ((s = rd_count(r, at, n, et == MLC_GGUF_STRING ? 8 : 12, "array element")))
        return s;
    mlc_gguf_value *items = calloc(n ? (size_t)n : 1, sizeof *items);
    if (!items)
        return rd_fail(r, MLC_ERR_NOMEM, "out of memory for %llu array elements",
                       (unsigned long long)n);
    v->arr.items = items;
    for (uint64_t i = 0; i < n; i++) {
        /* Count the item before reading it, so that value_free() also frees what a failed
         * read of a nested array allocated. */
        v->arr.n = i + 1;
        if ((s = rd_value(r, et, depth + 1, &items[i])))
            return s;
    }
    return MLC_OK;
}

static mlc_status rd_value(reader *r, mlc_gguf_vtype t, int depth, mlc_gguf_value *v)
{
    v->type = t;
    if (t == MLC_GGUF_STRING)
        return rd_str(r, &v->s);
    if (t == MLC_GGUF_ARRAY)
        return rd_array(r, depth, v);
    mlc_status s = rd_need(r, vtypes[t].size);
    if (s)
        return s;
    decode_scalar(r->p + r->pos, t, v);
    r->pos += vtypes[t].size;
    return MLC_OK;
}

static mlc_status rd_header(reader *r, mlc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    uint32_t magic;
    mlc_status s;
    snprintf(r->ctx, sizeof r->ctx, "header");
    if ((s = rd_u32(r, &magic)))
        return s;
    if (magic != MLC_GGUF_MAGIC) {
        r->pos = 0;
        return rd_fail(r, MLC_ERR_FORMAT, "bad magic 0x%08x (not a GGUF file)", magic);
    }
    if ((s = rd_u32(r, &g->version)))
        return s;
    if (g->version != 2 && g->version != 3) {
        r->pos -= 4;
        if ((g->version & 0xffffu) == 0 && g->version)
            return rd_fail(r, MLC_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
        return rd_fail(r, MLC_ERR_UNSUPPORTED, "GGUF version %u is not supported (2 and 3 are)",
                       g->version);
    }
    if ((s = rd_u64(r, n_tensors)) || (s = rd_u64(r, n_kv)))
        return s;
    /* A key-value pair takes at least 14 bytes, a tensor info at least 24. */
    if ((s = rd_count(r, 16, *n_kv, 14, "key-value")))
        return s;
    return rd_count(r, 8, *n_tensors, 24, "tensor");
}

static mlc_status rd_alignment(reader *r, mlc_gguf *g, const mlc_gguf_value *v, size_t at)
{
    g->alignment = MLC_GGUF_DEFAULT_ALIGNMENT;
    if (!v)
        return MLC_OK;
    size_t pos = r->pos;
    r->pos = at;
    snprintf(r->ctx, sizeof r->ctx, "key 'general.alignment'");
    if (v->type != MLC_GGUF_UINT32)
        return rd_fail(r, MLC_ERR_FORMAT, "must be u32, found %s", mlc_gguf_vtype_name(v->type));
    if (v->u == 0 || (v->u & (v->u - 1)))
        return rd_fail(r, MLC_ERR_FORMAT, "alignment %llu is not a power of two",
                       (unsigned long long)v->u);
    g->alignment = v->u;
    r->pos = pos;
    return MLC_OK;
}

static mlc_status rd_kvs(reader *r, mlc_gguf *g, uint64_t n)
{
    mlc_status s;
    size_t align_at = 0;
    const mlc_gguf_value *align = NULL;
    g->kv = calloc(n ? (size_t)n : 1, sizeof *g->kv);
    if (!g->kv)
        return rd_fail(r, MLC_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        gguf_kv *kv = &g->kv[i];
        size_t start = r->pos;
        snprintf(r->ctx, sizeof r->ctx, "key #%llu", (unsigned long long)i);
        if ((s = rd_name(r, "key", &kv->key)))
            return s;
        g->n_kv = (int64_t)i + 1;
        if (mlc_gguf_get(g, kv->key) != &kv->v) {
            r->pos = start;
            return rd_fail(r, MLC_ERR_FORMAT, "duplicate key");
        }
        size_t vpos = r->pos;
        if ((s = rd_vtype(r, &kv->v.type)) || (s = rd_value(r, kv->v.type, 0, &kv->v)))
            return s;
        if (!strcmp(kv->key, "general.alignment")) {
            align = &kv->v;
            align_at = vpos;
        }
    }
    return rd_alignment(r, g, align, align_at);
}

static mlc_status rd_tensor_shape(reader *r, mlc_gguf_tensor *t)
{
    mlc_status s;
    if ((s = rd_u32(r, &t->n_dims)))
        return s;
    if (t->n_dims > MLC_GGUF_MAX_DIMS) {
        r->pos -= 4;
        return rd_fail(r, MLC_ERR_FORMAT, "%u dimensions (at most %d)", t->n_dims,
                       MLC_GGUF_MAX_DIMS);
    }
    int64_t n = 1;
    for (uint32_t d = 0; d < MLC_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (s = rd_u64(r, &ne)))
            return s;
        if (ne > (uint64_t)INT64_MAX || __builtin_mul_overflow(n, (int64_t)ne, &n)) {
            r->pos -= 8;
            return rd_fail(r, MLC_ERR_FORMAT, "dimension %u (%llu) makes the element count overflow",
                           d, (unsigned long long)ne);
        }
        t->ne[d] = (int64_t)ne;
    }
    t->n_elements = n;
    return MLC_OK;
}

static mlc_status rd_tensor_type(reader *r, mlc_gguf_tensor *t)
{
    mlc_status s;
    if ((s = rd_u32(r, &t->type)))
        return s;
    r->pos -= 4;
    int64_t bs = mlc_type_block_size(t->type);
    if (bs == 0)
        return rd_fail(r, MLC_ERR_FORMAT, "unknown tensor type id %u", t->type);
    if (t->ne[0] % bs)
        return rd_fail(r, MLC_ERR_FORMAT, "row of %lld values is not a multiple of the %s block size %lld",
                       (long long)t->ne[0], mlc_type_name(t->type), (long long)bs);
    /* Rows are whole blocks, so bytes = (elements / block) * block bytes. */
    uint64_t blocks = (uint64_t)(t->n_elements / bs);
    if (__builtin_mul_overflow(blocks, (uint64_t)mlc_type_block_bytes(t->type), &t->nbytes))
        return rd_fail(r, MLC_ERR_FORMAT, "tensor byte size overflows");
    r->pos += 4;
    return MLC_OK;
}

static mlc_status rd_tensor_infos(reader *r, mlc_gguf *g, uint64_t n)
{
    mlc_status s;
    snprintf(r->ctx, sizeof r->ctx, "header");
    if ((s = rd_count(r, 8, n, 24, "tensor")))
        return s;
    g->tensors = calloc(n ? (size_t)n : 1, sizeof *g->tensors);
    if (!g->tensors)
        return rd_fail(r, MLC_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        mlc_gguf_tensor *t = &g->tensors[i];
        size_t start = r->pos;
        snprintf(r->ctx, sizeof r->ctx, "tensor #%llu", (unsigned long long)i);
        if ((s = rd_name(r, "tensor", (char **)&t->name)))
            return s;
        g->n_tensors = (int64_t)i + 1;
        if (mlc_gguf_find_tensor(g, t->name) != t) {
            r->pos = start;
            return rd_fail(r, MLC_ERR_FORMAT, "duplicate tensor name");
        }
        if ((s = rd_tensor_shape(r, t)) || (s = rd_tensor_type(r, t)) ||
            (s = rd_u64(r, &t->offset)))
            return s;
        if (t->offset % g->alignment) {
            r->pos -= 8;
            return rd_fail(r, MLC_ERR_FORMAT, "data offset %llu is not a multiple of the alignment %llu",
                           (unsigned long long)t->offset, (unsigned long long)g->alignment);
        }
    }
    return MLC_OK;
}

typedef struct extent {
    uint64_t start, end;
    int64_t idx;
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Every tensor lies inside the file and no two overlap. */
static mlc_status check_extents(reader *r, mlc_gguf *g)
{
    uint64_t avail = g->data_offset <= r->size ? r->size - g->data_offset : 0;
    extent *ex = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *ex);
    if (!ex)
        return rd_fail(r, MLC_ERR_NOMEM, "out of memory");
    mlc_status s = MLC_OK;
    for (int64_t i = 0; i < g->n_tensors && !s; i++) {
        mlc_gguf_tensor *t = &g->tensors[i];
        ex[i] = (extent){t->offset, t->offset + t->nbytes, i};
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            r->pos = (size_t)(g->data_offset < r->size ? g->data_offset : r->size);
            rd_ctx(r, "tensor", t->name, strlen(t->name));
            s = rd_fail(r, MLC_ERR_FORMAT, "data [%llu, +%llu) runs past the end of the file (%zu bytes of data)",
                        (unsigned long long)t->offset, (unsigned long long)t->nbytes, (size_t)avail);
        }
        if (!s && t->nbytes)
            t->data = r->p + g->data_offset + t->offset;
    }
    if (!s && g->n_tensors > 1) {
        qsort(ex, (size_t)g->n_tensors, sizeof *ex, extent_cmp);
        for (int64_t i = 1; i < g->n_tensors && !s; i++) {
            if (ex[i].start < ex[i - 1].end && ex[i].start != ex[i].end) {
                const mlc_gguf_tensor *t = &g->tensors[ex[i].idx];
                r->pos = (size_t)g->data_offset;
                rd_ctx(r, "tensor", t->name, strlen(t->name));
                s = rd_fail(r, MLC_ERR_FORMAT, "data overlaps tensor '%s'",
                            g->tensors[ex[i - 1].idx].name);
            }
        }
    }
    free(ex);
    return s;
}

static mlc_status parse(reader *r, mlc_gguf *g)
{
    uint64_t n_tensors, n_kv;
    mlc_status s;
    if ((s = rd_header(r, g, &n_tensors, &n_kv)) || (s = rd_kvs(r, g, n_kv)) ||
        (s = rd_tensor_infos(r, g, n_tensors)))
        return s;
    /* The data section starts at the next multiple of the alignment. A file with no tensor
     * data may end before that point. */
    uint64_t a = g->alignment;
    g->data_offset = ((uint64_t)r->pos + a - 1) / a * a;
    return check_extents(r, g);
}

static mlc_status open_impl(const void *data, size_t size, const char *name, bool mapped,
                            mlc_gguf **out, mlc_err *err)
{
    *out = NULL;
    mlc_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(name))) {
        free(g);
        if (mapped)
            munmap((void *)data, size);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", name);
    }
    g->base = data;
    g->size = size;
    g->mapped = mapped;
    g->alignment = MLC_GGUF_DEFAULT_ALIGNMENT;
    reader r = {.path = name, .p = data, .size = size, .err = err};
    mlc_status s = parse(&r, g);
    if (s) {
        mlc_gguf_close(g);
        return s;
    }
    *out = g;
    return MLC_OK;
}

mlc_status mlc_gguf_open_memory(const void *data, size_t size, const char *name, mlc_gguf **out,
                                mlc_err *err)
{
    if (!data && size)
        return mlc_err_set(err, MLC_ERR_ARG, "%s: NULL buffer", name);
    return open_impl(data ? data : "", size, name ? name : "<memory>", false, out, err);
}

mlc_status mlc_gguf_open(const char *path, mlc_gguf **out, mlc_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlc_err_set(err, errno == ENOENT ? MLC_ERR_NOT_FOUND : MLC_ERR_IO, "%s: %s", path,
                           strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path,
                           S_ISDIR(st.st_mode) ? "is a directory" : e ? strerror(e) : "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: offset 0: header: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return mlc_err_set(err, MLC_ERR_IO, "%s: mmap: %s", path, strerror(e));
    return open_impl(p, (size_t)st.st_size, path, true, out, err);
}

void mlc_gguf_close(mlc_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        value_free(&g->kv[i].v);
    }
    free(g->kv);
    for (int64_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->tensors);
    if (g->mapped)
        munmap((void *)g->base, g->size);
    free(g->path);
    free(g);
}

const char *mlc_gguf_path(const mlc_gguf *g) { return g->path; }
uint32_t mlc_gguf_version(const mlc_gguf *g) { return g->version; }
uint64_t mlc_gguf_alignment(const mlc_gguf *g) { return g->alignment; }
uint64_t mlc_gguf_file_size(const mlc_gguf *g) { return g->size; }
uint64_t mlc_gguf_data_offset(const mlc_gguf *g) { return g->data_offset; }
int64_t mlc_gguf_n_kv(const mlc_gguf *g) { return g->n_kv; }
int64_t mlc_gguf_n_tensors(const mlc_gguf *g) { return g->n_tensors; }

const char *mlc_gguf_kv_key(const mlc_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

const mlc_gguf_value *mlc_gguf_kv_value(const mlc_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i].v : NULL;
}

const mlc_gguf_value *mlc_gguf_get(const mlc_gguf *g, const char *key)
{
    for (int64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key))
            return &g->kv[i].v;
    return NULL;
}

const mlc_gguf_tensor *mlc_gguf_tensor_at(const mlc_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mlc_gguf_tensor *mlc_gguf_find_tensor(const mlc_gguf *g, const char *name)
{
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

/* ---------------------------------------------------------------- typed getters */

static mlc_status lookup(const mlc_gguf *g, const char *key, const mlc_gguf_value **v,
                         mlc_err *err)
{
    *v = mlc_gguf_get(g, key);
    if (!*v)
        return mlc_err_set(err, MLC_ERR_NOT_FOUND, "%s: key '%s': not found", g->path, key);
    return MLC_OK;
}

static mlc_status wrong_type(const mlc_gguf *g, const char *key, const mlc_gguf_value *v,
                             const char *want, mlc_err *err)
{
    return mlc_err_set(err, MLC_ERR_TYPE, "%s: key '%s': expected %s, found %s", g->path, key,
                       want, mlc_gguf_vtype_name(v->type));
}

mlc_status mlc_gguf_get_i64(const mlc_gguf *g, const char *key, int64_t *out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (mlc_gguf_vtype_is_signed(v->type)) {
        *out = v->i;
        return MLC_OK;
    }
    if (!vtype_is_unsigned(v->type))
        return wrong_type(g, key, v, "an integer", err);
    if (v->u > (uint64_t)INT64_MAX)
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: key '%s': %llu does not fit in i64", g->path,
                           key, (unsigned long long)v->u);
    *out = (int64_t)v->u;
    return MLC_OK;
}

mlc_status mlc_gguf_get_u64(const mlc_gguf *g, const char *key, uint64_t *out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (vtype_is_unsigned(v->type)) {
        *out = v->u;
        return MLC_OK;
    }
    if (!mlc_gguf_vtype_is_signed(v->type))
        return wrong_type(g, key, v, "an integer", err);
    if (v->i < 0)
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: key '%s': %lld is negative", g->path, key,
                           (long long)v->i);
    *out = (uint64_t)v->i;
    return MLC_OK;
}

mlc_status mlc_gguf_get_u32(const mlc_gguf *g, const char *key, uint32_t *out, mlc_err *err)
{
    uint64_t u;
    mlc_status s = mlc_gguf_get_u64(g, key, &u, err);
    if (s)
        return s;
    if (u > UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: key '%s': %llu does not fit in u32", g->path,
                           key, (unsigned long long)u);
    *out = (uint32_t)u;
    return MLC_OK;
}

mlc_status mlc_gguf_get_f64(const mlc_gguf *g, const char *key, double *out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (vtype_is_float(v->type))
        *out = v->f;
    else if (mlc_gguf_vtype_is_signed(v->type))
        *out = (double)v->i;
    else if (vtype_is_unsigned(v->type))
        *out = (double)v->u;
    else
        return wrong_type(g, key, v, "a number", err);
    return MLC_OK;
}

mlc_status mlc_gguf_get_f32(const mlc_gguf *g, const char *key, float *out, mlc_err *err)
{
    double d;
    mlc_status s = mlc_gguf_get_f64(g, key, &d, err);
    if (!s)
        *out = (float)d;
    return s;
}

mlc_status mlc_gguf_get_bool(const mlc_gguf *g, const char *key, bool *out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (v->type != MLC_GGUF_BOOL)
        return wrong_type(g, key, v, "bool", err);
    *out = v->b;
    return MLC_OK;
}

mlc_status mlc_gguf_get_str(const mlc_gguf *g, const char *key, mlc_gguf_str *out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (v->type != MLC_GGUF_STRING)
        return wrong_type(g, key, v, "string", err);
    *out = v->s;
    return MLC_OK;
}

mlc_status mlc_gguf_get_arr(const mlc_gguf *g, const char *key, mlc_gguf_vtype elem,
                            const mlc_gguf_value **out, mlc_err *err)
{
    const mlc_gguf_value *v;
    mlc_status s = lookup(g, key, &v, err);
    if (s)
        return s;
    if (v->type != MLC_GGUF_ARRAY)
        return wrong_type(g, key, v, "array", err);
    if (elem != MLC_GGUF_VTYPE_COUNT && v->arr.type != elem)
        return mlc_err_set(err, MLC_ERR_TYPE, "%s: key '%s': expected array of %s, found array of %s",
                           g->path, key, mlc_gguf_vtype_name(elem),
                           mlc_gguf_vtype_name(v->arr.type));
    *out = v;
    return MLC_OK;
}

static mlc_gguf_value arr_elem(const mlc_gguf_value *arr, uint64_t i)
{
    mlc_gguf_value e = {.type = arr->arr.type};
    if (arr->arr.items)
        return arr->arr.items[i];
    decode_scalar((const uint8_t *)arr->arr.data + i * vtypes[e.type].size, e.type, &e);
    return e;
}

uint64_t mlc_gguf_arr_u64(const mlc_gguf_value *arr, uint64_t i)
{
    mlc_gguf_value e = arr_elem(arr, i);
    if (e.type == MLC_GGUF_BOOL)
        return e.b;
    return mlc_gguf_vtype_is_signed(e.type) ? (uint64_t)e.i : e.u;
}

int64_t mlc_gguf_arr_i64(const mlc_gguf_value *arr, uint64_t i)
{
    mlc_gguf_value e = arr_elem(arr, i);
    return vtype_is_unsigned(e.type) ? (int64_t)e.u : e.i;
}

double mlc_gguf_arr_f64(const mlc_gguf_value *arr, uint64_t i)
{
    mlc_gguf_value e = arr_elem(arr, i);
    if (vtype_is_float(e.type))
        return e.f;
    return vtype_is_unsigned(e.type) ? (double)e.u : (double)e.i;
}

mlc_gguf_str mlc_gguf_arr_str(const mlc_gguf_value *arr, uint64_t i)
{
    mlc_gguf_str none = {"", 0};
    return arr->arr.type == MLC_GGUF_STRING ? arr->arr.items[i].s : none;
}
