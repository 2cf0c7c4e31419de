/* cpu_backend.c: the CPU backend: device discovery, host memory, and the forward-pass ops,
 * split across a fork-join thread pool and computed by the ISA-dispatched kernels of
 * vecdot.h. Numerics follow llama.cpp's CPU path where it matters for matching its logits:
 * activations converted to the weight type's activation format before matmuls, RMS sums in
 * double, RoPE angles by repeated multiplication, attention through an F16 KV cache with
 * the query and the probabilities rounded to F16 as ggml's F16 matmuls do.
 *
 * Buffers are host memory; a tensor view resolves to base + offset after a bounds check, so
 * a view outside its buffer, an index outside its table or a cache cell outside its layer is
 * a sticky error (backend.h), never a stray write. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#include "backend.h"
#include "gemm.h"
#include "gemm_amx.h"
#include "pool.h"
#include "vecdot.h"

#define MAX_HEAD_DIM 1024 /* rope and attention keep one head's values on the stack */

/* Sums here are written in a fixed order on purpose (results must not depend on the ISA
 * or compiler), so no contraction of a*b+c into fma either: GCC does not contract under
 * -std=c11; clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

struct mlc_buffer {
    uint8_t *base;
    size_t size;  /* bytes */
    bool owned;   /* false: weights mapped from the host (the GGUF mmap), not ours to free */
};

typedef struct cpu_ctx {
    mlc_pool *pool;
    mlc_cpu_kernels k;
    /* Prefill of Q8_0-activation types on AMX tiles: only under the avx512 set, so that a run
     * forced to avx2 or scalar tests those paths and nothing else. */
    bool amx;
    /* Scratch for converted activations; ops run one at a time, so one buffer serves all. */
    void *act;
    size_t act_cap;
    mlc_err err; /* the sticky error: the first failure since the last sync */
} cpu_ctx;

/* ---------------------------------------------------------------- errors and views */

/* Records the first failure (later ones keep it) and returns the sticky status. */
static mlc_status fail(cpu_ctx *c, mlc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static mlc_status fail(cpu_ctx *c, mlc_status s, const char *fmt, ...)
{
    if (c->err.status == MLC_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
        va_end(ap);
        c->err.status = s;
    }
    return c->err.status;
}

/* The sticky error, or a failure naming the first of n views that lies outside its buffer. */
static mlc_status views_ok(cpu_ctx *c, const char *op, int n, const mlc_tensor *const *t)
{
    if (c->err.status)
        return c->err.status;
    for (int i = 0; i < n; i++) {
        const size_t nb = mlc_tensor_nbytes(t[i]);
        const mlc_buffer *b = t[i]->buf;
        if (b && (nb || !mlc_tensor_nelem(t[i])) && t[i]->offset <= b->size && nb <= b->size - t[i]->offset)
            continue;
        return fail(c, MLC_ERR_ARG,
                    "cpu: %s: operand %d (%s [%lld, %lld, %lld, %lld] at byte %zu) is not inside its buffer of %zu bytes",
                    op, i + 1, mlc_tensor_type_name(t[i]->type),
                    (long long)t[i]->ne[0], (long long)t[i]->ne[1], (long long)t[i]->ne[2],
                    (long long)t[i]->ne[3], t[i]->offset, b ? b->size : 0);
    }
    return MLC_OK;
}

#define VIEWS_OK(c, op, ...) \
    views_ok(c, op, (int)(sizeof (const mlc_tensor *[]){__VA_ARGS__} / sizeof(const mlc_tensor *)), \
             (const mlc_tensor *[]){__VA_ARGS__})

/* A failure naming the first of n views whose type is not type (activations are F32, indices
 * I32: another type would make the op read or write past the view). */
static mlc_status typed(cpu_ctx *c, const char *op, uint32_t type, int n, const mlc_tensor *const *t)
{
    for (int i = 0; i < n; i++)
        if (t[i]->type != type)
            return fail(c, MLC_ERR_ARG, "cpu: %s: a %s view where %s is needed", op,
                        mlc_tensor_type_name(t[i]->type), mlc_tensor_type_name(type));
    return MLC_OK;
}

#define TYPED(c, op, type, ...) \
    typed(c, op, type, (int)(sizeof (const mlc_tensor *[]){__VA_ARGS__} / sizeof(const mlc_tensor *)), \
          (const mlc_tensor *[]){__VA_ARGS__})

static void *at(const mlc_tensor *t)
{
    return t->buf->base + t->offset;
}

/* Rows of a view: every dimension above the first. */
static int64_t rows_of(const mlc_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* Every index of an I32 view in [0, limit), or a failure naming the first that is not. */
static mlc_status indices_ok(cpu_ctx *c, const char *op, const char *what, const mlc_tensor *t,
                             int64_t limit)
{
    const int32_t *v = at(t);
    for (int64_t i = 0; i < mlc_tensor_nelem(t); i++)
        if (v[i] < 0 || v[i] >= limit)
            return fail(c, MLC_ERR_RANGE, "cpu: %s: %s[%lld] = %d is outside 0..%lld", op, what,
                        (long long)i, v[i], (long long)limit - 1);
    return MLC_OK;
}

/* ---------------------------------------------------------------- device */

static int cpu_device_count(void)
{
    return 1;
}

/* "model name : Intel Xeon ..." from /proc/cpuinfo; "unknown CPU" elsewhere. */
static void cpu_model_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon)
            continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static void cpu_device_info(int dev, mlc_device_info *out)
{
    (void)dev;
    char model[128];
    cpu_model_name(model, sizeof model);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cpu");
    snprintf(out->description, sizeof out->description, "%s, %ld threads, isa: %s%s", model,
             sysconf(_SC_NPROCESSORS_ONLN), mlc_cpu_isas_available(),
             mlc_cpu_amx_usable() ? ", prefill: amx-int8" : "");
    const long page = sysconf(_SC_PAGESIZE), total = sysconf(_SC_PHYS_PAGES),
               avail = sysconf(_SC_AVPHYS_PAGES);
    out->mem_total = page > 0 && total > 0 ? (uint64_t)page * (uint64_t)total : 0;
    out->mem_free = page > 0 && avail > 0 ? (uint64_t)page * (uint64_t)avail : 0;
    out->caps = MLC_CAP_HOST_MEMORY | MLC_CAP_THREADS;
}

static mlc_status cpu_init(const mlc_backend_params *p, void **out, mlc_err *err)
{
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "cpu backend: out of memory");
    mlc_status s = mlc_cpu_kernels_init(&c->k, p->isa ? p->isa : getenv("MLC_CPU_ISA"), err);
    if (s) {
        free(c);
        return s;
    }
    c->amx = !strcmp(c->k.isa, "avx512") && mlc_cpu_amx_usable();
    int n_threads = p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (!(c->pool = mlc_pool_new(n_threads))) {
        free(c);
        return mlc_err_set(err, MLC_ERR_NOMEM, "cpu backend: cannot start %d threads", n_threads);
    }
    *out = c;
    return MLC_OK;
}

static void cpu_destroy(void *ctx)
{
    cpu_ctx *c = ctx;
    mlc_pool_free(c->pool);
    free(c->act);
    free(c);
}

static void cpu_describe(void *ctx, char *buf, size_t cap)
{
    cpu_ctx *c = ctx;
    snprintf(buf, cap, "%d threads, %s%s", mlc_pool_size(c->pool), c->k.isa, c->amx ? ", amx-int8 prefill" : "");
}

static bool cpu_supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4])
{
    cpu_ctx *c = ctx;
    const bool kv = type == MLC_TYPE_F16 || type == MLC_TYPE_F32;
    switch (op) {
    case MLC_OP_GET_ROWS:
        return mlc_type_supported(type) && shape[0] > 0 && shape[0] % mlc_type_block_size(type) == 0;
    case MLC_OP_MATMUL:
        return type < MLC_TYPE_COUNT && c->k.dot[type] && shape[0] > 0 &&
               shape[0] % mlc_type_block_size(type) == 0;
    case MLC_OP_ROPE:
        return type == MLC_TYPE_F32 && shape[0] <= MAX_HEAD_DIM && shape[2] <= shape[0] &&
               shape[2] % 2 == 0;
    case MLC_OP_KV_STORE:
        return kv;
    case MLC_OP_ATTENTION:
        return kv && shape[0] > 0 && shape[0] <= MAX_HEAD_DIM && shape[2] > 0 &&
               shape[1] % shape[2] == 0;
    default:
        return type == MLC_TYPE_F32;
    }
}

/* ---------------------------------------------------------------- memory */

static mlc_status cpu_buffer_alloc(void *ctx, size_t bytes, mlc_buffer **out, mlc_err *err)
{
    (void)ctx;
    mlc_buffer *b = calloc(1, sizeof *b);
    void *p = NULL;
    /* 64-byte alignment: a cache line, and what AVX-512 loads like. */
    if (!b || posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        free(b);
        *out = NULL;
        return mlc_err_set(err, MLC_ERR_NOMEM, "cpu: out of memory for a buffer of %zu bytes", bytes);
    }
    *b = (mlc_buffer){p, bytes, true};
    *out = b;
    return MLC_OK;
}

static void cpu_buffer_free(void *ctx, mlc_buffer *b)
{
    (void)ctx;
    if (!b)
        return;
    if (b->owned)
        free(b->base);
    free(b);
}

static mlc_status cpu_weights(void *ctx, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                              mlc_tensor *out, mlc_err *err)
{
    (void)ctx;
    const size_t rb = mlc_type_row_bytes(type, ne0);
    mlc_buffer *b = rb && ne1 > 0 ? malloc(sizeof *b) : NULL;
    if (!b)
        return mlc_err_set(err, rb && ne1 > 0 ? MLC_ERR_NOMEM : MLC_ERR_UNSUPPORTED,
                           "cpu: weights of type %s [%lld, %lld]: %s", mlc_tensor_type_name(type),
                           (long long)ne0, (long long)ne1, rb && ne1 > 0 ? "out of memory" : "not supported");
    /* zero copy: the mmap is the device memory */
    *b = (mlc_buffer){(uint8_t *)(uintptr_t)host, rb * (size_t)ne1, false};
    *out = mlc_tensor_make(b, 0, type, ne0, ne1, 1);
    return MLC_OK;
}

static void cpu_release_weights(void *ctx, mlc_tensor *w)
{
    cpu_buffer_free(ctx, w->buf);
    w->buf = NULL;
}

static mlc_status span_ok(cpu_ctx *c, const char *what, const mlc_buffer *b, size_t offset, size_t bytes)
{
    if (c->err.status)
        return c->err.status;
    if (b && offset <= b->size && bytes <= b->size - offset)
        return MLC_OK;
    return fail(c, MLC_ERR_ARG, "cpu: %s of %zu bytes at byte %zu: outside the buffer of %zu bytes",
                what, bytes, offset, b ? b->size : 0);
}

static mlc_status cpu_upload(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes)
{
    mlc_status s = span_ok(ctx, "upload", dst, offset, bytes);
    if (!s && bytes)
        memcpy(dst->base + offset, src, bytes);
    return s;
}

static mlc_status cpu_download(void *ctx, void *dst, mlc_buffer *src, size_t offset, size_t bytes)
{
    mlc_status s = span_ok(ctx, "download", src, offset, bytes);
    if (!s && bytes)
        memcpy(dst, src->base + offset, bytes);
    return s;
}

static mlc_status cpu_sync(void *ctx, mlc_err *err)
{
    cpu_ctx *c = ctx;
    mlc_status s = c->err.status;
    if (s)
        mlc_err_set(err, s, "%s", c->err.msg);
    c->err.status = MLC_OK;
    c->err.msg[0] = 0;
    return s;
}

static void *scratch(cpu_ctx *c, size_t bytes)
{
    if (bytes > c->act_cap) {
        free(c->act);
        c->act = NULL;
        c->act_cap = 0;
        if (posix_memalign(&c->act, 64, bytes) != 0)
            return NULL;
        c->act_cap = bytes;
    }
    return c->act;
}

/* [begin, end) of n items for thread ith of nth. */
static void share(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t per = (n + nth - 1) / nth;
    *begin = per * ith < n ? per * ith : n;
    *end = *begin + per < n ? *begin + per : n;
}

/* ---------------------------------------------------------------- get_rows */

static mlc_status cpu_get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "get_rows", &table, &ids, &out);
    if (s || (s = TYPED(c, "get_rows", MLC_TYPE_I32, &ids)) || (s = TYPED(c, "get_rows", MLC_TYPE_F32, &out)) ||
        (s = indices_ok(c, "get_rows", "ids", &ids, rows_of(&table))))
        return s;
    const int64_t row_len = table.ne[0], n = mlc_tensor_nelem(&ids);
    if (out.ne[0] != row_len || rows_of(&out) != n)
        return fail(c, MLC_ERR_ARG, "cpu: get_rows: output [%lld, %lld] for %lld rows of %lld",
                    (long long)out.ne[0], (long long)rows_of(&out), (long long)n, (long long)row_len);
    /* Few rows per batch: dequantizing in the calling thread beats a pool round trip. */
    const size_t rb = mlc_type_row_bytes(table.type, row_len);
    const int32_t *id = at(&ids);
    float *y = at(&out);
    for (int64_t i = 0; i < n; i++)
        mlc_dequantize_row((mlc_type)table.type, (const uint8_t *)at(&table) + (size_t)id[i] * rb,
                           y + i * row_len, row_len);
    return MLC_OK;
}

/* ---------------------------------------------------------------- matmul */

typedef struct mm_job {
    const mlc_cpu_kernels *k;
    uint32_t type;
    const uint8_t *w;
    size_t w_row;    /* bytes per weight row */
    int64_t n_in, n_out, n;
    const float *x;
    uint8_t *act;    /* [n] converted rows */
    size_t act_row;  /* bytes per converted row */
    float *y;
} mm_job;

static void mm_convert(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    int64_t b, e;
    share(j->n, ith, nth, &b, &e);
    for (int64_t t = b; t < e; t++)
        j->k->act[j->type](j->x + t * j->n_in, j->act + (size_t)t * j->act_row, j->n_in);
}

/* Rows [rb, re) against all tokens, in tiles so that a tile of activation rows stays in
 * cache while the weight rows stream past. */
static void mm_rows(const mm_job *j, int64_t rb, int64_t re)
{
    enum { TOK_TILE = 16, ROW_TILE = 32 };
    mlc_dot_fn dot = j->k->dot[j->type];
    mlc_dot4_fn dot4 = j->k->dot4[j->type];
    mlc_dotw4_fn dotw4 = j->k->dotw4[j->type];
    mlc_dot44_fn dot44 = j->k->dot44[j->type];
    if (dotw4 && j->n < 4) {
        /* Decode: four weight rows at a time against the one activation row. */
        for (int64_t t = 0; t < j->n; t++) {
            const uint8_t *a = j->act + (size_t)t * j->act_row;
            float *y = j->y + t * j->n_out;
            int64_t r = rb;
            for (; r + 4 <= re; r += 4)
                dotw4(j->n_in, j->w + (size_t)r * j->w_row, j->w_row, a, y + r);
            for (; r < re; r++)
                y[r] = dot(j->n_in, j->w + (size_t)r * j->w_row, a);
        }
        return;
    }
    for (int64_t r0 = rb; r0 < re; r0 += ROW_TILE) {
        int64_t r1 = r0 + ROW_TILE < re ? r0 + ROW_TILE : re;
        for (int64_t t0 = 0; t0 < j->n; t0 += TOK_TILE) {
            int64_t t1 = t0 + TOK_TILE < j->n ? t0 + TOK_TILE : j->n;
            int64_t r = r0;
            if (dot44 && t1 - t0 >= 4) {
                /* 4 x 4 register tiles; the tokens left over go through dot. */
                for (; r + 4 <= r1; r += 4) {
                    const uint8_t *w = j->w + (size_t)r * j->w_row;
                    int64_t t = t0;
                    for (; t + 4 <= t1; t += 4) {
                        float o[16];
                        dot44(j->n_in, w, j->w_row, j->act + (size_t)t * j->act_row, j->act_row, o);
                        for (int c = 0; c < 4; c++)
                            for (int q = 0; q < 4; q++)
                                j->y[(t + c) * j->n_out + r + q] = o[4 * c + q];
                    }
                    for (; t < t1; t++)
                        for (int q = 0; q < 4; q++)
                            j->y[t * j->n_out + r + q] =
                                dot(j->n_in, w + (size_t)q * j->w_row, j->act + (size_t)t * j->act_row);
                }
            }
            for (; r < r1; r++) {
                const uint8_t *w = j->w + (size_t)r * j->w_row;
                int64_t t = t0;
                for (; dot4 && t + 4 <= t1; t += 4) {
                    float o[4];
                    dot4(j->n_in, w, j->act + (size_t)t * j->act_row, j->act_row, o);
                    for (int q = 0; q < 4; q++)
                        j->y[(t + q) * j->n_out + r] = o[q];
                }
                for (; t < t1; t++)
                    j->y[t * j->n_out + r] = dot(j->n_in, w, j->act + (size_t)t * j->act_row);
            }
        }
    }
}

static void mm_run(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    /* Ranges in multiples of 4 rows (the decode kernel's unit); the last may be shorter. */
    int64_t b, e;
    share((j->n_out + 3) / 4, ith, nth, &b, &e);
    b = b * 4 < j->n_out ? b * 4 : j->n_out;
    e = e * 4 < j->n_out ? e * 4 : j->n_out;
    mm_rows(j, b, e);
}

/* Decode (fewer than 4 tokens): weight rows [rb, re) from the pool's shared counter. */
static void mv_range(void *arg, int ith, int64_t rb, int64_t re)
{
    (void)ith;
    mm_rows(arg, rb, re);
}

/* Rows per chunk of a decode matmul: a multiple of 4 (the dotw4 unit), about 8 chunks per
 * thread so that a thread slowed by the machine's other load hands its rows to the other,
 * but at least 32 KiB of weights, so the shared counter is touched once per ~microsecond
 * of streaming rather than once per few rows. */
static int64_t mv_chunk(int64_t n_out, size_t w_row, int nth)
{
    const int64_t per_thread = (n_out + nth - 1) / nth;
    int64_t rows = (n_out + 8 * nth - 1) / (8 * nth);
    const int64_t min_rows = (int64_t)((32768 + w_row - 1) / w_row);
    if (rows < min_rows)
        rows = min_rows < per_thread ? min_rows : per_thread;
    return (rows + 3) / 4 * 4;
}

static mlc_status cpu_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "matmul", &w, &x, &y);
    if (s || (s = TYPED(c, "matmul", MLC_TYPE_F32, &x, &y)))
        return s;
    const uint32_t type = w.type;
    const int64_t n_in = w.ne[0], n_out = w.ne[1], n = rows_of(&x);
    if (x.ne[0] != n_in || y.ne[0] != n_out || rows_of(&y) != n || type >= MLC_TYPE_COUNT || !c->k.dot[type])
        return fail(c, MLC_ERR_ARG, "cpu: matmul: weights %s [%lld, %lld], x [%lld, %lld], y [%lld, %lld] do not fit",
                    mlc_tensor_type_name(type), (long long)n_in, (long long)n_out, (long long)x.ne[0],
                    (long long)n, (long long)y.ne[0], (long long)rows_of(&y));
    mm_job j = {.k = &c->k, .type = type, .w = at(&w), .w_row = mlc_type_row_bytes(type, n_in),
                .n_in = n_in, .n_out = n_out, .n = n, .x = at(&x), .y = at(&y),
                .act_row = mlc_cpu_act_row_bytes(&c->k, type, n_in)};
    j.act = scratch(c, j.act_row * (size_t)n);
    if (!j.act)
        return fail(c, MLC_ERR_NOMEM, "cpu: matmul: out of memory for %lld converted activation rows of %zu bytes",
                    (long long)n, j.act_row);
    if (n == 1)
        mm_convert(&j, 0, 1);
    else
        mlc_pool_run(c->pool, mm_convert, &j);
    if (n < 4) {
        mlc_pool_for(c->pool, n_out, mv_chunk(n_out, j.w_row, mlc_pool_size(c->pool)), mv_range, &j);
        return MLC_OK;
    }
    /* Prefill: the tile kernels, where this ISA has one for the type (gemm.h: the same bits
     * for quantized types, float types within rounding). */
    if (n >= MLC_CPU_GEMM_MIN_ROWS &&
        ((c->amx && mlc_cpu_gemm_amx(c->pool, type, j.w, j.w_row, n_in, n_out, j.act, j.act_row, n, j.y)) ||
         mlc_cpu_gemm(c->pool, &c->k, type, j.w, j.w_row, n_in, n_out, j.act, j.act_row, n, j.y)))
        return MLC_OK;
    mlc_pool_run(c->pool, mm_run, &j);
    return MLC_OK;
}

/* ---------------------------------------------------------------- rms_norm, rope */

static void rms_row(const float *x, const float *w, int64_t dim, float eps, float *y)
{
    double sum = 0;
    for (int64_t i = 0; i < dim; i++)
        sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)dim) + eps);
    for (int64_t i = 0; i < dim; i++)
        y[i] = (x[i] * scale) * w[i];
}

static mlc_status cpu_rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rms_norm", &x, &w, &y);
    if (s || (s = TYPED(c, "rms_norm", MLC_TYPE_F32, &x, &w, &y)))
        return s;
    const int64_t dim = x.ne[0], n = rows_of(&x);
    if (mlc_tensor_nelem(&w) != dim || mlc_tensor_nelem(&y) != n * dim)
        return fail(c, MLC_ERR_ARG, "cpu: rms_norm: x [%lld, %lld], w of %lld, y of %lld elements do not fit",
                    (long long)dim, (long long)n, (long long)mlc_tensor_nelem(&w),
                    (long long)mlc_tensor_nelem(&y));
    const float *xp = at(&x), *wp = at(&w);
    float *yp = at(&y);
    for (int64_t t = 0; t < n; t++)
        rms_row(xp + t * dim, wp, dim, eps, yp + t * dim);
    return MLC_OK;
}

/* rope's frequency factors: NULL when ff is none, else its [n_rot/2] F32 values, or a failure
 * (*s set) for a view of another type or length. */
static const float *rope_factors(cpu_ctx *c, const mlc_tensor *ff, int n_rot, mlc_status *s)
{
    *s = MLC_OK;
    if (!ff->buf)
        return NULL;
    if ((*s = VIEWS_OK(c, "rope", ff)) || (*s = TYPED(c, "rope", MLC_TYPE_F32, ff)))
        return NULL;
    if (mlc_tensor_nelem(ff) != n_rot / 2)
        *s = fail(c, MLC_ERR_ARG, "cpu: rope: %lld frequency factors for %d rope dims (%d needed)",
                  (long long)mlc_tensor_nelem(ff), n_rot, n_rot / 2);
    return *s ? NULL : at(ff);
}

static mlc_status cpu_rope(void *ctx, mlc_tensor xt, mlc_tensor post, mlc_tensor fft, int n_rot,
                           float freq_base, bool neox)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rope", &xt, &post);
    if (s || (s = TYPED(c, "rope", MLC_TYPE_F32, &xt)) || (s = TYPED(c, "rope", MLC_TYPE_I32, &post)))
        return s;
    const int head_dim = (int)xt.ne[0], n_head = (int)xt.ne[1];
    const int64_t n = xt.ne[2] * xt.ne[3];
    if (head_dim > MAX_HEAD_DIM || n_rot > head_dim || n_rot < 0 || n_rot % 2 || mlc_tensor_nelem(&post) != n)
        return fail(c, MLC_ERR_ARG, "cpu: rope: head dim %d, rope dims %d, %lld tokens and %lld positions",
                    head_dim, n_rot, (long long)n, (long long)mlc_tensor_nelem(&post));
    const float *ff = rope_factors(c, &fft, n_rot, &s);
    if (s)
        return s;
    float *x = at(&xt);
    const int32_t *pos = at(&post);
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float cs[MAX_HEAD_DIM / 2][2]; /* cos, sin per rotated pair */
    for (int64_t t = 0; t < n; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < n_rot / 2; i++) {
            const float th = ff ? theta / ff[i] : theta; /* factor 1 leaves theta as it is */
            cs[i][0] = cosf(th);
            cs[i][1] = sinf(th);
            theta *= theta_scale;
        }
        for (int h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * head_dim;
            for (int i = 0; i < n_rot / 2; i++) {
                int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * cs[i][0] - x1 * cs[i][1];
                v[b] = x0 * cs[i][1] + x1 * cs[i][0];
            }
        }
    }
    return MLC_OK;
}

/* ---------------------------------------------------------------- kv_store, attention */

static void store_row(uint32_t type, const float *src, void *cache, size_t idx, int64_t dim)
{
    if (type == MLC_TYPE_F32) {
        memcpy((float *)cache + idx * (size_t)dim, src, (size_t)dim * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)cache + idx * (size_t)dim;
    for (int64_t i = 0; i < dim; i++)
        dst[i] = mlc_fp32_to_fp16(src[i]);
}

/* Checks a cache layer pair and the (slot, pos) of n tokens against it. */
static mlc_status cache_ok(cpu_ctx *c, const char *op, const mlc_tensor *kc, const mlc_tensor *vc,
                           const mlc_tensor *slot, const mlc_tensor *pos, int64_t n)
{
    mlc_status s;
    if ((s = TYPED(c, op, MLC_TYPE_I32, slot, pos)))
        return s;
    if (kc->type != vc->type || (kc->type != MLC_TYPE_F16 && kc->type != MLC_TYPE_F32) ||
        memcmp(kc->ne, vc->ne, sizeof kc->ne) || mlc_tensor_nelem(slot) != n ||
        mlc_tensor_nelem(pos) != n)
        return fail(c, MLC_ERR_ARG, "cpu: %s: caches %s/%s [%lld, %lld, %lld] with %lld slots and %lld positions for %lld tokens",
                    op, mlc_tensor_type_name(kc->type), mlc_tensor_type_name(vc->type), (long long)kc->ne[0],
                    (long long)kc->ne[1], (long long)kc->ne[2], (long long)mlc_tensor_nelem(slot),
                    (long long)mlc_tensor_nelem(pos), (long long)n);
    if ((s = indices_ok(c, op, "slot", slot, kc->ne[2])) || (s = indices_ok(c, op, "pos", pos, kc->ne[1])))
        return s;
    return MLC_OK;
}

static mlc_status cpu_kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache,
                               mlc_tensor v_cache, mlc_tensor slot, mlc_tensor pos)
{
    cpu_ctx *c = ctx;
    const int64_t kv_dim = k_cache.ne[0], n_ctx = k_cache.ne[1], n = rows_of(&k);
    mlc_status s = VIEWS_OK(c, "kv_store", &k, &v, &k_cache, &v_cache, &slot, &pos);
    if (s || (s = cache_ok(c, "kv_store", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "kv_store", MLC_TYPE_F32, &k, &v)))
        return s;
    if (k.ne[0] != kv_dim || v.ne[0] != kv_dim || rows_of(&v) != n)
        return fail(c, MLC_ERR_ARG, "cpu: kv_store: k [%lld, %lld], v [%lld, %lld] for caches of rows of %lld",
                    (long long)k.ne[0], (long long)n, (long long)v.ne[0], (long long)rows_of(&v),
                    (long long)kv_dim);
    const float *kp = at(&k), *vp = at(&v);
    const int32_t *sl = at(&slot), *ps = at(&pos);
    for (int64_t t = 0; t < n; t++) {
        size_t idx = (size_t)sl[t] * (size_t)n_ctx + (size_t)ps[t];
        store_row(k_cache.type, kp + t * kv_dim, at(&k_cache), idx, kv_dim);
        store_row(k_cache.type, vp + t * kv_dim, at(&v_cache), idx, kv_dim);
    }
    return MLC_OK;
}

static mlc_status cpu_attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache,
                                mlc_tensor slot, mlc_tensor pos, const mlc_attn_params *p,
                                mlc_tensor out)
{
    cpu_ctx *c = ctx;
    const int64_t hd = q.ne[0], n = q.ne[2] * q.ne[3];
    mlc_status s = VIEWS_OK(c, "attention", &q, &k_cache, &v_cache, &slot, &pos, &out);
    if (s || (s = cache_ok(c, "attention", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "attention", MLC_TYPE_F32, &q, &out)))
        return s;
    if (hd < 1 || hd > MAX_HEAD_DIM || k_cache.ne[0] < hd || k_cache.ne[0] % hd || q.ne[1] % (k_cache.ne[0] / hd) ||
        mlc_tensor_nelem(&out) != mlc_tensor_nelem(&q))
        return fail(c, MLC_ERR_ARG, "cpu: attention: q [%lld, %lld, %lld] over caches of rows of %lld",
                    (long long)hd, (long long)q.ne[1], (long long)n, (long long)k_cache.ne[0]);
    const mlc_cpu_attn a = {.type = k_cache.type, .q = at(&q), .kc = at(&k_cache), .vc = at(&v_cache),
                            .slot = at(&slot), .pos = at(&pos), .out = at(&out), .n = n, .n_ctx = k_cache.ne[1],
                            .n_head = (int)q.ne[1], .n_kv_head = (int)(k_cache.ne[0] / hd), .hd = (int)hd,
                            .p = *p};
    float *sc = scratch(c, (size_t)mlc_pool_size(c->pool) * mlc_cpu_attn_scratch(&a) * sizeof(float));
    if (!sc)
        return fail(c, MLC_ERR_NOMEM, "cpu: attention: out of memory for scores of %lld positions",
                    (long long)a.n_ctx);
    mlc_cpu_attn_run(&c->k, c->pool, &a, sc);
    return MLC_OK;
}

/* ---------------------------------------------------------------- elementwise */

typedef struct glu_job {
    const float *gate, *up;
    float *out;
    int64_t n;
    mlc_geglu_fn geglu;
} glu_job;

static void swiglu_run(void *arg, int ith, int64_t b, int64_t e)
{
    glu_job *j = arg;
    (void)ith;
    for (int64_t i = b; i < e; i++)
        j->out[i] = j->gate[i] / (1.0f + expf(-j->gate[i])) * j->up[i];
}

static void geglu_run(void *arg, int ith, int64_t b, int64_t e)
{
    glu_job *j = arg;
    (void)ith;
    j->geglu(e - b, j->gate + b, j->up + b, j->out + b);
}

/* expf/tanhf dominate here ([n_tokens, n_ff] of them per layer), so prefill splits them. */
static mlc_status glu(cpu_ctx *c, const char *op, mlc_pool_range_fn fn, const mlc_tensor *gate,
                      const mlc_tensor *up, const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, gate, up, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, gate, up, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(gate);
    if (mlc_tensor_nelem(up) != n || mlc_tensor_nelem(out) != n)
        return fail(c, MLC_ERR_ARG, "cpu: %s: gate, up and out of %lld, %lld and %lld elements", op,
                    (long long)n, (long long)mlc_tensor_nelem(up), (long long)mlc_tensor_nelem(out));
    glu_job j = {at(gate), at(up), at(out), n, c->k.geglu};
    /* about 8 chunks per thread, of at least 1024 values */
    const int64_t chunk = n / (8 * mlc_pool_size(c->pool));
    if (n < 4096)
        fn(&j, 0, 0, n);
    else
        mlc_pool_for(c->pool, n, chunk > 1024 ? chunk : 1024, fn, &j);
    return MLC_OK;
}

static mlc_status cpu_swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "swiglu", swiglu_run, &gate, &up, &out);
}

static mlc_status cpu_geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "geglu", geglu_run, &gate, &up, &out);
}

/* out = a op b with b the same size as a or one row broadcast over a's rows. */
static mlc_status binary(cpu_ctx *c, const char *op, bool mul, const mlc_tensor *a,
                         const mlc_tensor *b, const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, a, b, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, a, b, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(a), nb = mlc_tensor_nelem(b), dim = a->ne[0];
    if (mlc_tensor_nelem(out) != n || (nb != n && nb != dim) || dim < 1)
        return fail(c, MLC_ERR_ARG, "cpu: %s: a of %lld, b of %lld, out of %lld elements", op,
                    (long long)n, (long long)nb, (long long)mlc_tensor_nelem(out));
    const float *x = at(a), *y = at(b);
    float *o = at(out);
    if (nb == n) {
        if (mul)
            for (int64_t i = 0; i < n; i++)
                o[i] = x[i] * y[i];
        else
            for (int64_t i = 0; i < n; i++)
                o[i] = x[i] + y[i];
        return MLC_OK;
    }
    for (int64_t r = 0; r < n / dim; r++)
        for (int64_t i = 0; i < dim; i++)
            o[r * dim + i] = mul ? x[r * dim + i] * y[i] : x[r * dim + i] + y[i];
    return MLC_OK;
}

static mlc_status cpu_add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "add", false, &a, &b, &out);
}

static mlc_status cpu_mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "mul", true, &a, &b, &out);
}

static mlc_status cpu_scale(void *ctx, mlc_tensor x, float sc, mlc_tensor out)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "scale", &x, &out);
    if (s || (s = TYPED(c, "scale", MLC_TYPE_F32, &x, &out)))
        return s;
    const int64_t n = mlc_tensor_nelem(&x);
    if (mlc_tensor_nelem(&out) != n)
        return fail(c, MLC_ERR_ARG, "cpu: scale: x of %lld, out of %lld elements", (long long)n,
                    (long long)mlc_tensor_nelem(&out));
    const float *xp = at(&x);
    float *o = at(&out);
    for (int64_t i = 0; i < n; i++)
        o[i] = xp[i] * sc;
    return MLC_OK;
}

static mlc_status cpu_gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out)
{
    cpu_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "gather", &x, &rows, &out);
    if (s || (s = TYPED(c, "gather", MLC_TYPE_F32, &x, &out)) || (s = TYPED(c, "gather", MLC_TYPE_I32, &rows)) ||
        (s = indices_ok(c, "gather", "rows", &rows, rows_of(&x))))
        return s;
    const int64_t dim = x.ne[0], n = mlc_tensor_nelem(&rows);
    if (out.ne[0] != dim || rows_of(&out) != n)
        return fail(c, MLC_ERR_ARG, "cpu: gather: output [%lld, %lld] for %lld rows of %lld",
                    (long long)out.ne[0], (long long)rows_of(&out), (long long)n, (long long)dim);
    const float *xp = at(&x);
    const int32_t *r = at(&rows);
    float *o = at(&out);
    for (int64_t i = 0; i < n; i++)
        memmove(o + i * dim, xp + (int64_t)r[i] * dim, (size_t)dim * sizeof(float));
    return MLC_OK;
}

const mlc_backend_vt mlc_backend_cpu = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .init = cpu_init,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .supports = cpu_supports,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .weights = cpu_weights,
    .release_weights = cpu_release_weights,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .get_rows = cpu_get_rows,
    .matmul = cpu_matmul,
    .rms_norm = cpu_rms_norm,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .geglu = cpu_geglu,
    .add = cpu_add,
    .mul = cpu_mul,
    .scale = cpu_scale,
    .gather = cpu_gather,
};
