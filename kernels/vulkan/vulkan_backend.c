/* vulkan_backend.c: the vulkan backend: the backend interface (backend.h) over vk_device.h,
 * with the ops as GLSL compute shaders (kernels/vulkan/shaders/). Numerics follow the CPU
 * backend's scheme: matmul activations formed as the weight type's activation format
 * (F16/BF16 rounding, Q8_0 or Q8_K quantization; shaders/actq.comp) before a float dot
 * product with the dequantized weights; attention through an F16 cache rounds q and the
 * probabilities to half.
 *
 * Weights are repacked on upload so that every block starts on a 4-byte boundary with its
 * fields aligned (shaders read 32-bit words); rows are padded to whole words.
 *
 * Views are checked on the host (inside their buffer, types, shapes). Indices live on the
 * device, but small buffers keep a host copy of what was uploaded to them (index vectors come
 * from the host), so an op meeting a bad index refuses at once, naming it, as the CPU does;
 * where no copy covers the view, the shader checks and flags a status bit that sync()
 * reports. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "vk_device.h"

#define MAX_HEAD_DIM 256 /* attention keeps one head's query in shared memory */
#define MATVEC_MAX_N 8   /* up to this many tokens a GPU runs a matmul as matvecs (decode) */
#define MIRROR_MAX 65536 /* buffers up to this many bytes keep a host copy of their uploads */
/* Parts of a VK_MAKE_API_VERSION number (vulkan.h stays inside vk_device.c). */
#define API_MAJOR(v) (((v) >> 22) & 0x7fu)
#define API_MINOR(v) (((v) >> 12) & 0x3ffu)
#define API_PATCH(v) ((v) & 0xfffu)

struct mlc_buffer {
    mlc_vk_span span;   /* a weight tensor split in parts: its first part */
    size_t size;        /* bytes asked for */
    bool weights;       /* from weights(): repacked rows of row_words words */
    uint32_t row_words;
    /* Weights larger than one binding can reach (lavapipe: 128 MiB, less than a 262144-token
     * embedding) are split by rows into n_parts buffers of part_rows rows (the last fewer);
     * ops run once per part. */
    uint32_t part_rows;
    int n_parts;
    mlc_vk_span *more;  /* [n_parts - 1] parts 1 .. */
    uint8_t *mirror;    /* [size] host copy of bytes [lo, hi) uploaded since a shader last wrote */
    size_t lo, hi;
};

typedef struct vk_ctx {
    mlc_vk *v;
    int dev;
    /* Tokens above which matmul uses the shared-memory tile kernel: MATVEC_MAX_N on a GPU;
     * never on a CPU device (matvec's SIMD lanes beat it there). MLC_VK_MATMUL=tiled or
     * matvec forces one kernel, so conformance covers both on any device. */
    int64_t tile_above;
    size_t part_bytes; /* the most bytes of one weight part (MLC_VK_PART_BYTES lowers it for tests) */
    /* Decode's matvec sums a row in a subgroup (matvecsg): use_subgroup_matvec(). */
    bool subgroup_matvec;
    mlc_buffer act; /* scratch: converted matmul activations */
    mlc_err err;    /* the sticky error: the first failure since the last sync */
} vk_ctx;

/* Weight layouts: the GGUF block, with pad bytes added in front (so the F16 scale of Q8_0,
 * Q4_0, Q5_0 and IQ4_NL ends a word and what follows starts one) or behind (Q6_K, Q3_K). */
typedef struct wlayout {
    uint32_t type;
    const char *name; /* shader suffix */
    int pad_front, pad_back;
    int act_mode;     /* shaders/actq.comp mode; 0: the activations as they are */
} wlayout;

/* Activations as the CPU's: Q8_0 blocks for the 32-value types (Q8_1's values for Q4_1 and
 * Q5_1, whose min term then sums the rounded activations), Q8_K for the 256-value ones. */
static const wlayout LAYOUTS[] = {
    {MLC_TYPE_F32, "f32", 0, 0, 0},     {MLC_TYPE_F16, "f16", 0, 0, 1},       {MLC_TYPE_BF16, "bf16", 0, 0, 2},
    {MLC_TYPE_Q8_0, "q8_0", 2, 0, 3},   {MLC_TYPE_Q4_0, "q4_0", 2, 0, 3},     {MLC_TYPE_Q4_1, "q4_1", 0, 0, 3},
    {MLC_TYPE_Q5_0, "q5_0", 2, 0, 3},   {MLC_TYPE_Q5_1, "q5_1", 0, 0, 3},     {MLC_TYPE_IQ4_NL, "iq4_nl", 2, 0, 3},
    {MLC_TYPE_Q2_K, "q2_k", 0, 0, 4},   {MLC_TYPE_Q3_K, "q3_k", 0, 2, 4},     {MLC_TYPE_Q4_K, "q4_k", 0, 0, 4},
    {MLC_TYPE_Q5_K, "q5_k", 0, 0, 4},   {MLC_TYPE_Q6_K, "q6_k", 0, 2, 4},     {MLC_TYPE_IQ4_XS, "iq4_xs", 0, 0, 4},
};

static const wlayout *layout_of(uint32_t type)
{
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0]; i++)
        if (LAYOUTS[i].type == type)
            return &LAYOUTS[i];
    return NULL;
}

/* Words of one repacked row of n values. */
static size_t row_words(const wlayout *l, int64_t n)
{
    const int64_t bs = mlc_type_block_size(l->type);
    const size_t bb = mlc_type_block_bytes(l->type) + (size_t)(l->pad_front + l->pad_back);
    return ((size_t)(n / bs) * bb + 3) / 4;
}

/* ---------------------------------------------------------------- errors and views */

static mlc_status fail(vk_ctx *c, mlc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static mlc_status fail(vk_ctx *c, mlc_status s, const char *fmt, ...)
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

/* Keeps a failure of the device layer (message in e) as the sticky error. */
static mlc_status keep(vk_ctx *c, mlc_status s, const mlc_err *e)
{
    return s ? fail(c, s, "%s", e->msg) : c->err.status;
}

static size_t elt_bytes(uint32_t type)
{
    return type == MLC_TYPE_F16 || type == MLC_TYPE_BF16 ? 2 : 4;
}

/* The sticky error, or a failure naming the first of n views outside its buffer or not
 * aligned to its element (shaders address elements). */
static mlc_status views_ok(vk_ctx *c, const char *op, int n, const mlc_tensor *const *t)
{
    if (c->err.status)
        return c->err.status;
    for (int i = 0; i < n; i++) {
        const size_t nb = mlc_tensor_nbytes(t[i]);
        const mlc_buffer *b = t[i]->buf;
        if (b && (nb || !mlc_tensor_nelem(t[i])) && t[i]->offset <= b->size && nb <= b->size - t[i]->offset &&
            (b->weights || t[i]->offset % elt_bytes(t[i]->type) == 0))
            continue;
        return fail(c, MLC_ERR_ARG,
                    "vulkan: %s: operand %d (%s [%lld, %lld, %lld, %lld] at byte %zu) is not inside its buffer of %zu bytes or not aligned to its element",
                    op, i + 1, mlc_tensor_type_name(t[i]->type), (long long)t[i]->ne[0], (long long)t[i]->ne[1],
                    (long long)t[i]->ne[2], (long long)t[i]->ne[3], t[i]->offset, b ? b->size : 0);
    }
    return MLC_OK;
}

#define NARGS_(...) (int)(sizeof(const mlc_tensor *[]){__VA_ARGS__} / sizeof(const mlc_tensor *))
#define VIEWS_OK(c, op, ...) views_ok(c, op, NARGS_(__VA_ARGS__), (const mlc_tensor *[]){__VA_ARGS__})

static mlc_status typed(vk_ctx *c, const char *op, uint32_t type, int n, const mlc_tensor *const *t)
{
    for (int i = 0; i < n; i++)
        if (t[i]->type != type)
            return fail(c, MLC_ERR_ARG, "vulkan: %s: a %s view where %s is needed", op,
                        mlc_tensor_type_name(t[i]->type), mlc_tensor_type_name(type));
    return MLC_OK;
}

#define TYPED(c, op, type, ...) typed(c, op, type, NARGS_(__VA_ARGS__), (const mlc_tensor *[]){__VA_ARGS__})

static int64_t rows_of(const mlc_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* Every index of an I32 view in [0, limit), or a failure naming the first that is not, where
 * the host copy of the view's buffer covers it (otherwise the shader checks). */
static mlc_status indices_ok(vk_ctx *c, const char *op, const char *what, const mlc_tensor *t, int64_t limit)
{
    const mlc_buffer *b = t->buf;
    const size_t bytes = (size_t)mlc_tensor_nelem(t) * 4;
    if (!b->mirror || t->offset < b->lo || t->offset + bytes > b->hi)
        return MLC_OK;
    for (int64_t i = 0; i < mlc_tensor_nelem(t); i++) {
        int32_t v;
        memcpy(&v, b->mirror + t->offset + (size_t)i * 4, 4);
        if (v < 0 || v >= limit)
            return fail(c, MLC_ERR_RANGE, "vulkan: %s: %s[%lld] = %d is outside 0..%lld", op, what, (long long)i, v,
                        (long long)limit - 1);
    }
    return MLC_OK;
}

/* Element offset of a view in its chunk (what shaders index by). */
static uint32_t eoff(const mlc_tensor *t)
{
    return (uint32_t)((t->buf->span.offset + t->offset) / elt_bytes(t->type));
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* A shader writes t: the host copy no longer says what the buffer holds. */
static void written(const mlc_tensor *t)
{
    t->buf->lo = t->buf->hi = 0;
}

static mlc_status run(vk_ctx *c, const char *shader, const mlc_tensor *const *ops, int n_ops, const uint32_t *pc,
                      int n_pc, uint32_t gx, uint32_t gy, uint32_t gz)
{
    const mlc_vk_span *bind[MLC_VK_BINDINGS] = {0};
    for (int i = 0; i < n_ops; i++) {
        bind[i] = ops[i] ? &ops[i]->buf->span : NULL;
        /* any float operand may be what the shader writes; index vectors never are */
        if (ops[i] && ops[i]->type != MLC_TYPE_I32 && !ops[i]->buf->weights)
            written(ops[i]);
    }
    mlc_err e = {0};
    return keep(c, mlc_vk_dispatch(c->v, shader, bind, pc, n_pc, gx, gy, gz, &e), &e);
}

#define RUN(c, shader, pc, gx, gy, gz, ...) \
    run(c, shader, (const mlc_tensor *[]){__VA_ARGS__}, NARGS_(__VA_ARGS__), pc, (int)(sizeof pc / sizeof pc[0]), gx, gy, gz)

/* ---------------------------------------------------------------- device */

static int vk_device_count(void)
{
    char why[256];
    return mlc_vk_device_count(why, sizeof why);
}

/* Why there is no device (no loader, no driver): `mlc-bench devices` and a failed open say it. */
static void vk_no_device(char *buf, size_t cap)
{
    if (mlc_vk_device_count(buf, cap) > 0)
        snprintf(buf, cap, "a Vulkan device is present");
}

/* Whether decode's matvec sums rows in subgroups on a device with info vi (see vk_ctx): on
 * GPUs with subgroup arithmetic. Not on CPU devices, where a workgroup per row leaves SIMD
 * lanes idle (lavapipe decodes 3x slower that way). MLC_VK_SUBGROUP=1|0 forces it on (where
 * the device has the operations) or off, so conformance covers both paths anywhere. */
static bool use_subgroup_matvec(const mlc_vk_info *vi)
{
    const char *e = getenv("MLC_VK_SUBGROUP");
    if (!vi->subgroup_arith || (e && !strcmp(e, "0")))
        return false;
    return (e && !strcmp(e, "1")) || strcmp(vi->type, "cpu") != 0;
}

static void vk_device_info(int dev, mlc_device_info *out)
{
    memset(out, 0, sizeof *out);
    mlc_vk_info vi;
    if (!mlc_vk_device_info(dev, &vi)) {
        snprintf(out->name, sizeof out->name, "vulkan");
        snprintf(out->description, sizeof out->description, "unreadable device");
        return;
    }
    snprintf(out->name, sizeof out->name, "%.63s", vi.name);
    snprintf(out->description, sizeof out->description, "%.50s (%.10s), driver %.60s, Vulkan %u.%u.%u, %.40s, subgroup %u, paths: %s",
             vi.name, vi.type, vi.driver, API_MAJOR(vi.api), API_MINOR(vi.api),
             API_PATCH(vi.api), vi.heaps, vi.subgroup, use_subgroup_matvec(&vi) ? "subgroup matvec" : "plain");
    /* mem_total stays 0: the description has the heaps, and Vulkan 1.2 core cannot say how
     * much of them is free. */
    out->caps = MLC_CAP_ASYNC;
}

static mlc_status vk_init(const mlc_backend_params *p, void **out, mlc_err *err)
{
    vk_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory");
    /* MLC_VK_VALIDATE=1|0 turns the validation layer on or off; debug builds (-O0) use it
     * where it is installed. */
    const char *val = getenv("MLC_VK_VALIDATE");
#ifdef __OPTIMIZE__
    mlc_vk_validation vdef = MLC_VK_VALIDATE_OFF;
#else
    mlc_vk_validation vdef = MLC_VK_VALIDATE_IF_INSTALLED;
#endif
    mlc_vk_validation vmode = val && !strcmp(val, "1") ? MLC_VK_VALIDATE_ON : val && !strcmp(val, "0") ? MLC_VK_VALIDATE_OFF : vdef;
    mlc_status s = mlc_vk_open(p->device, vmode, &c->v, err);
    if (s) {
        free(c);
        return s;
    }
    c->dev = p->device;
    const char *mm = getenv("MLC_VK_MATMUL");
    const bool cpu_dev = !strcmp(mlc_vk_info_of(c->v)->type, "cpu");
    c->tile_above = mm && !strcmp(mm, "tiled") ? 0 : (mm && !strcmp(mm, "matvec")) || cpu_dev ? INT64_MAX : MATVEC_MAX_N;
    c->subgroup_matvec = use_subgroup_matvec(mlc_vk_info_of(c->v));
    c->part_bytes = mlc_vk_max_buffer(c->v);
    const char *pb = getenv("MLC_VK_PART_BYTES");
    if (pb && strtoull(pb, NULL, 10) > 0 && strtoull(pb, NULL, 10) < c->part_bytes)
        c->part_bytes = (size_t)strtoull(pb, NULL, 10);
    *out = c;
    return MLC_OK;
}

static void vk_destroy(void *ctx)
{
    vk_ctx *c = ctx;
    const char *st = getenv("MLC_VK_STATS"); /* =1: how often recorded command buffers were reused */
    if (st && !strcmp(st, "1")) {
        uint64_t rec, reused;
        mlc_vk_stats(c->v, &rec, &reused);
        fprintf(stderr, "vulkan: %llu submissions: %llu recorded a command buffer, %llu reused one\n",
                (unsigned long long)(rec + reused), (unsigned long long)rec, (unsigned long long)reused);
    }
    mlc_vk_close(c->v);
    free(c);
}

static void vk_describe(void *ctx, char *buf, size_t cap)
{
    vk_ctx *c = ctx;
    const mlc_vk_info *vi = mlc_vk_info_of(c->v);
    snprintf(buf, cap, "device %d: %s, %s", c->dev, vi->name, vi->driver);
}

static bool vk_supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4])
{
    (void)ctx;
    const bool kv = type == MLC_TYPE_F16 || type == MLC_TYPE_F32;
    switch (op) {
    case MLC_OP_GET_ROWS:
    case MLC_OP_MATMUL:
        return layout_of(type) && shape[0] > 0 && shape[0] % mlc_type_block_size(type) == 0;
    case MLC_OP_ROPE:
        return type == MLC_TYPE_F32 && shape[2] <= shape[0] && shape[2] % 2 == 0;
    case MLC_OP_KV_STORE:
        return kv;
    case MLC_OP_ATTENTION:
        return kv && shape[0] > 0 && shape[0] <= MAX_HEAD_DIM && shape[2] > 0 && shape[1] % shape[2] == 0;
    default:
        return type == MLC_TYPE_F32;
    }
}

/* ---------------------------------------------------------------- memory */

static mlc_status vk_buffer_alloc(void *ctx, size_t bytes, mlc_buffer **out, mlc_err *err)
{
    vk_ctx *c = ctx;
    mlc_buffer *b = calloc(1, sizeof *b);
    *out = NULL;
    if (!b)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory");
    mlc_status s = mlc_vk_alloc(c->v, bytes, &b->span, err);
    if (s) {
        free(b);
        return s;
    }
    b->size = bytes;
    b->mirror = bytes <= MIRROR_MAX ? malloc(bytes ? bytes : 1) : NULL; /* optional: NULL is fine */
    *out = b;
    return MLC_OK;
}

static void vk_buffer_free(void *ctx, mlc_buffer *b)
{
    vk_ctx *c = ctx;
    if (!b)
        return;
    mlc_vk_free(c->v, &b->span);
    for (int p = 1; p < b->n_parts; p++)
        mlc_vk_free(c->v, &b->more[p - 1]);
    free(b->more);
    free(b->mirror);
    free(b);
}

/* Keeps the host copy of an upload: the covered range grows when the new bytes touch it. */
static void mirror_upload(mlc_buffer *b, size_t offset, const void *src, size_t bytes)
{
    if (!b->mirror || !bytes)
        return;
    memcpy(b->mirror + offset, src, bytes);
    if (b->hi > b->lo && offset <= b->hi && offset + bytes >= b->lo) {
        b->lo = offset < b->lo ? offset : b->lo;
        b->hi = offset + bytes > b->hi ? offset + bytes : b->hi;
    } else {
        b->lo = offset;
        b->hi = offset + bytes;
    }
}


static void fill_copy(void *dst, size_t done, size_t bytes, void *arg)
{
    memcpy(dst, (const uint8_t *)arg + done, bytes);
}

/* Rows of GGUF blocks -> rows of padded blocks, each row padded to whole words (zeros). */
static uint8_t *repack(const wlayout *l, const uint8_t *src, int64_t ne0, int64_t ne1, size_t rw)
{
    const int64_t nb = ne0 / mlc_type_block_size(l->type);
    const size_t bb = mlc_type_block_bytes(l->type), pbb = bb + (size_t)(l->pad_front + l->pad_back);
    uint8_t *out = calloc((size_t)ne1, rw * 4);
    for (int64_t r = 0; out && r < ne1; r++)
        for (int64_t b = 0; b < nb; b++)
            memcpy(out + (size_t)r * rw * 4 + (size_t)b * pbb + (size_t)l->pad_front,
                   src + ((size_t)r * (size_t)nb + (size_t)b) * bb, bb);
    return out;
}

static const mlc_vk_span *part_span(const mlc_buffer *b, int p)
{
    return p ? &b->more[p - 1] : &b->span;
}

/* A weights buffer for rows of rw words: one part, or as many as the device's binding range
 * (c->part_bytes) needs. */
static mlc_status weight_parts(vk_ctx *c, size_t rw, int64_t rows, mlc_buffer **out, mlc_err *err)
{
    const size_t bytes = rw * 4 * (size_t)rows, per = c->part_bytes / (rw * 4);
    if (!per)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: a weight row of %zu bytes exceeds the device's buffer limit of %zu bytes",
                           rw * 4, c->part_bytes);
    const int n_parts = (int)(((size_t)rows + per - 1) / per);
    mlc_status s = vk_buffer_alloc(c, n_parts > 1 ? per * rw * 4 : bytes, out, err);
    if (s)
        return s;
    mlc_buffer *b = *out;
    b->weights = true;
    b->row_words = (uint32_t)rw;
    b->part_rows = (uint32_t)(n_parts > 1 ? per : (size_t)rows);
    b->n_parts = 1;
    b->more = n_parts > 1 ? calloc((size_t)n_parts - 1, sizeof *b->more) : NULL;
    if (n_parts > 1 && !b->more)
        s = mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory");
    while (!s && b->n_parts < n_parts) {
        const size_t left = (size_t)rows - (size_t)b->n_parts * per;
        s = mlc_vk_alloc(c->v, (left < per ? left : per) * rw * 4, &b->more[b->n_parts - 1], err);
        b->n_parts += !s;
    }
    b->size = bytes;
    if (s) {
        vk_buffer_free(c, b);
        *out = NULL;
    }
    return s;
}

static mlc_status vk_weights(void *ctx, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                             mlc_tensor *out, mlc_err *err)
{
    vk_ctx *c = ctx;
    const wlayout *l = layout_of(type);
    if (!l || ne0 <= 0 || ne1 <= 0 || ne0 % mlc_type_block_size(type))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: weights of type %s [%lld, %lld]: not supported",
                           mlc_tensor_type_name(type), (long long)ne0, (long long)ne1);
    const size_t rw = row_words(l, ne0), bytes = rw * 4 * (size_t)ne1;
    const bool same = rw * 4 == mlc_type_row_bytes(type, ne0) && !l->pad_front && !l->pad_back;
    uint8_t *packed = same ? NULL : repack(l, host, ne0, ne1, rw);
    if (!same && !packed)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory repacking %zu bytes of weights", bytes);
    mlc_buffer *b = NULL;
    mlc_status s = weight_parts(c, rw, ne1, &b, err);
    const uint8_t *src = same ? host : packed;
    for (int p = 0; !s && p < b->n_parts; p++) {
        const size_t r0 = (size_t)p * b->part_rows, rows = (size_t)ne1 - r0 < b->part_rows ? (size_t)ne1 - r0 : b->part_rows;
        s = mlc_vk_upload(c->v, part_span(b, p), 0, rows * rw * 4, fill_copy, (void *)(uintptr_t)(src + r0 * rw * 4), err);
    }
    if (s && b)
        vk_buffer_free(ctx, b);
    free(packed);
    if (!s)
        *out = mlc_tensor_make(b, 0, type, ne0, ne1, 1);
    return s;
}

static void vk_release_weights(void *ctx, mlc_tensor *w)
{
    vk_buffer_free(ctx, w->buf);
    w->buf = NULL;
}

static mlc_status span_ok(vk_ctx *c, const char *what, const mlc_buffer *b, size_t offset, size_t bytes)
{
    if (c->err.status)
        return c->err.status;
    if (b && offset <= b->size && bytes <= b->size - offset)
        return MLC_OK;
    return fail(c, MLC_ERR_ARG, "vulkan: %s of %zu bytes at byte %zu: outside the buffer of %zu bytes", what,
                bytes, offset, b ? b->size : 0);
}

static mlc_status vk_upload(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes)
{
    vk_ctx *c = ctx;
    mlc_status s = span_ok(c, "upload", dst, offset, bytes);
    mlc_err e = {0};
    if (!s && bytes)
        s = keep(c, mlc_vk_upload(c->v, &dst->span, offset, bytes, fill_copy, (void *)(uintptr_t)src, &e), &e);
    if (!s)
        mirror_upload(dst, offset, src, bytes);
    return s;
}

static mlc_status vk_download(void *ctx, void *dst, mlc_buffer *src, size_t offset, size_t bytes)
{
    vk_ctx *c = ctx;
    mlc_status s = span_ok(c, "download", src, offset, bytes);
    mlc_err e = {0};
    if (!s)
        s = keep(c, mlc_vk_download(c->v, dst, &src->span, offset, bytes, &e), &e);
    return s;
}

static mlc_status vk_sync(void *ctx, mlc_err *err)
{
    vk_ctx *c = ctx;
    mlc_err e = {0};
    keep(c, mlc_vk_flush(c->v, &e), &e);
    mlc_status s = c->err.status;
    if (s)
        mlc_err_set(err, s, "%s", c->err.msg);
    c->err.status = MLC_OK;
    c->err.msg[0] = 0;
    return s;
}

/* The scratch buffer, grown to at least bytes (its old contents are not kept: only the op
 * being recorded uses it, and ops run in order). */
static mlc_status scratch(vk_ctx *c, size_t bytes)
{
    if (c->act.size >= bytes)
        return MLC_OK;
    mlc_err e = {0};
    if (c->act.size)
        mlc_vk_free(c->v, &c->act.span);
    c->act.size = 0;
    mlc_status s = mlc_vk_alloc(c->v, bytes, &c->act.span, &e);
    if (s)
        return keep(c, s, &e);
    c->act.size = bytes;
    return MLC_OK;
}

/* ---------------------------------------------------------------- get_rows, matmul */

/* Rows of part p of weights w (all rows when it is one part). */
static uint32_t rows_in_part(const mlc_tensor *w, int p)
{
    const int64_t left = rows_of(w) - (int64_t)p * w->buf->part_rows;
    return (uint32_t)(left < w->buf->part_rows ? left : w->buf->part_rows);
}

/* Weights w viewed as part p alone, for binding (in the buffer *tmp). */
static mlc_tensor part_view(const mlc_tensor *w, int p, mlc_buffer *tmp)
{
    *tmp = *w->buf;
    tmp->span = *part_span(w->buf, p);
    mlc_tensor t = *w;
    t.buf = tmp;
    return t;
}

static mlc_status vk_get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "get_rows", &table, &ids, &out);
    if (s || (s = TYPED(c, "get_rows", MLC_TYPE_I32, &ids)) || (s = TYPED(c, "get_rows", MLC_TYPE_F32, &out)) ||
        (s = indices_ok(c, "get_rows", "ids", &ids, rows_of(&table))))
        return s;
    const wlayout *l = layout_of(table.type);
    const int64_t row_len = table.ne[0], n = mlc_tensor_nelem(&ids);
    if (!l || !table.buf->weights)
        return fail(c, MLC_ERR_ARG, "vulkan: get_rows: the table (%s) does not come from weights()",
                    mlc_tensor_type_name(table.type));
    if (out.ne[0] != row_len || rows_of(&out) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: get_rows: output [%lld, %lld] for %lld rows of %lld",
                    (long long)out.ne[0], (long long)rows_of(&out), (long long)n, (long long)row_len);
    if (!n)
        return MLC_OK;
    char name[32];
    snprintf(name, sizeof name, "get_rows_%s", l->name);
    const uint32_t unit = mlc_type_block_size(table.type) > 1 ? 32 : 1;
    for (int p = 0; !s && p < table.buf->n_parts; p++) {
        mlc_buffer tmp;
        const mlc_tensor tp = part_view(&table, p, &tmp);
        const uint32_t pc[] = {(uint32_t)(tmp.span.offset / 4), table.buf->row_words, eoff(&ids), eoff(&out),
                               (uint32_t)row_len, (uint32_t)n, rows_in_part(&table, p),
                               (uint32_t)p * table.buf->part_rows, (uint32_t)rows_of(&table)};
        s = RUN(c, name, pc, ((uint32_t)row_len / unit + 63) / 64, (uint32_t)n, 1, &tp, &ids, &out);
    }
    return s;
}

/* x [n_in, n] as the weight type's activation format wants it: x itself, or converted into
 * the scratch buffer (*xa then views it). */
static mlc_status convert_act(vk_ctx *c, const wlayout *l, const mlc_tensor *x, mlc_tensor *xa)
{
    *xa = *x;
    if (!l->act_mode)
        return MLC_OK;
    const int64_t n_in = x->ne[0], n = rows_of(x);
    mlc_status s = scratch(c, (size_t)(n_in * n) * sizeof(float));
    if (s)
        return s;
    *xa = mlc_tensor_make(&c->act, 0, MLC_TYPE_F32, n_in, n, 1);
    const uint32_t pc[] = {eoff(x), eoff(xa), (uint32_t)n_in, (uint32_t)l->act_mode};
    return RUN(c, "actq", pc, ((uint32_t)n_in + 255) / 256, (uint32_t)n, 1, x, xa);
}

/* y rows of part p of w [n_in, n_out] = xa [n_in, n] (converted) times the part's rows. */
static mlc_status matmul_part(vk_ctx *c, const wlayout *l, const mlc_tensor *w, int p, const mlc_tensor *xa,
                              const mlc_tensor *y)
{
    const int64_t n = rows_of(xa);
    const uint32_t rows = rows_in_part(w, p);
    mlc_buffer tmp;
    const mlc_tensor wp = part_view(w, p, &tmp);
    const uint32_t pc[] = {(uint32_t)(tmp.span.offset / 4), w->buf->row_words, eoff(xa),
                           eoff(y) + (uint32_t)p * w->buf->part_rows, (uint32_t)w->ne[0], (uint32_t)w->ne[1],
                           (uint32_t)n, rows};
    char name[32];
    if (n <= c->tile_above) {
        uint32_t gx, gy;
        const uint32_t per = n == 1 ? 1 : 8; /* tokens per invocation */
        if (n == 1 && c->subgroup_matvec) { /* a workgroup per row */
            mlc_vk_grid(rows, &gx, &gy);
            snprintf(name, sizeof name, "matvecsg_%s", l->name);
            return RUN(c, name, pc, gx, gy, 1, &wp, xa, y);
        }
        mlc_vk_grid((rows + 63) / 64, &gx, &gy);
        snprintf(name, sizeof name, "matvec%s_%s", per == 1 ? "" : "8", l->name);
        return RUN(c, name, pc, gx, gy, ((uint32_t)n + per - 1) / per, &wp, xa, y);
    }
    snprintf(name, sizeof name, "matmul_%s", l->name);
    return RUN(c, name, pc, (rows + 63) / 64, ((uint32_t)n + 31) / 32, 1, &wp, xa, y);
}

static mlc_status vk_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "matmul", &w, &x, &y);
    if (s || (s = TYPED(c, "matmul", MLC_TYPE_F32, &x, &y)))
        return s;
    const wlayout *l = layout_of(w.type);
    const int64_t n_in = w.ne[0], n_out = w.ne[1], n = rows_of(&x);
    if (!l || !w.buf->weights || x.ne[0] != n_in || y.ne[0] != n_out || rows_of(&y) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: matmul: weights %s [%lld, %lld]%s, x [%lld, %lld], y [%lld, %lld] do not fit",
                    mlc_tensor_type_name(w.type), (long long)n_in, (long long)n_out,
                    w.buf->weights ? "" : " (not from weights())", (long long)x.ne[0], (long long)n,
                    (long long)y.ne[0], (long long)rows_of(&y));
    if (!n)
        return MLC_OK;
    mlc_tensor xa;
    if ((s = convert_act(c, l, &x, &xa)))
        return s;
    for (int p = 0; !s && p < w.buf->n_parts; p++)
        s = matmul_part(c, l, &w, p, &xa, &y);
    return s;
}

/* ---------------------------------------------------------------- rms_norm, rope */

static mlc_status vk_rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rms_norm", &x, &w, &y);
    if (s || (s = TYPED(c, "rms_norm", MLC_TYPE_F32, &x, &w, &y)))
        return s;
    const int64_t dim = x.ne[0], n = rows_of(&x);
    if (mlc_tensor_nelem(&w) != dim || mlc_tensor_nelem(&y) != n * dim)
        return fail(c, MLC_ERR_ARG, "vulkan: rms_norm: x [%lld, %lld], w of %lld, y of %lld elements do not fit",
                    (long long)dim, (long long)n, (long long)mlc_tensor_nelem(&w), (long long)mlc_tensor_nelem(&y));
    if (!n || !dim)
        return MLC_OK;
    uint32_t gx, gy;
    mlc_vk_grid((uint32_t)n, &gx, &gy);
    const uint32_t pc[] = {eoff(&x), eoff(&w), eoff(&y), (uint32_t)dim, (uint32_t)n, f2u(eps)};
    return RUN(c, "rms_norm", pc, gx, gy, 1, &x, &w, &y);
}

/* rope's frequency factors ff: none (ff.buf NULL), or a [n_rot/2] F32 view. */
static mlc_status rope_factors_ok(vk_ctx *c, const mlc_tensor *ff, int n_rot)
{
    if (!ff->buf)
        return MLC_OK;
    mlc_status s = VIEWS_OK(c, "rope", ff);
    if (s || (s = TYPED(c, "rope", MLC_TYPE_F32, ff)))
        return s;
    if (mlc_tensor_nelem(ff) != n_rot / 2)
        return fail(c, MLC_ERR_ARG, "vulkan: rope: %lld frequency factors for %d rope dims (%d needed)",
                    (long long)mlc_tensor_nelem(ff), n_rot, n_rot / 2);
    return MLC_OK;
}

static mlc_status vk_rope(void *ctx, mlc_tensor xt, mlc_tensor post, mlc_tensor ff, int n_rot, float freq_base,
                          bool neox)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rope", &xt, &post);
    if (s || (s = TYPED(c, "rope", MLC_TYPE_F32, &xt)) || (s = TYPED(c, "rope", MLC_TYPE_I32, &post)))
        return s;
    const int64_t head_dim = xt.ne[0], n_head = xt.ne[1], n = xt.ne[2] * xt.ne[3];
    if (n_rot > head_dim || n_rot < 0 || n_rot % 2 || mlc_tensor_nelem(&post) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: rope: head dim %lld, rope dims %d, %lld tokens and %lld positions",
                    (long long)head_dim, n_rot, (long long)n, (long long)mlc_tensor_nelem(&post));
    if ((s = rope_factors_ok(c, &ff, n_rot)))
        return s;
    const uint32_t pairs = (uint32_t)(n * n_head) * (uint32_t)(n_rot / 2);
    if (!pairs)
        return MLC_OK;
    uint32_t gx, gy;
    mlc_vk_grid((pairs + 63) / 64, &gx, &gy);
    const bool has_ff = ff.buf != NULL;
    const uint32_t pc[] = {eoff(&xt), eoff(&post), (uint32_t)head_dim, (uint32_t)n_head, (uint32_t)n,
                           (uint32_t)n_rot, neox, f2u(powf(freq_base, -2.0f / (float)n_rot)),
                           has_ff ? eoff(&ff) : 0u, has_ff};
    return RUN(c, "rope", pc, gx, gy, 1, &xt, &post, has_ff ? &ff : NULL); /* NULL: a dummy binding */
}

/* ---------------------------------------------------------------- kv_store, attention */

/* Checks a cache layer pair and the slot and pos vectors of n tokens against it. */
static mlc_status cache_ok(vk_ctx *c, const char *op, const mlc_tensor *kc, const mlc_tensor *vc,
                           const mlc_tensor *slot, const mlc_tensor *pos, int64_t n)
{
    mlc_status s;
    if ((s = TYPED(c, op, MLC_TYPE_I32, slot, pos)))
        return s;
    if (mlc_tensor_nelem(slot) == n && mlc_tensor_nelem(pos) == n &&
        ((s = indices_ok(c, op, "slot", slot, kc->ne[2])) || (s = indices_ok(c, op, "pos", pos, kc->ne[1]))))
        return s;
    if (kc->type != vc->type || (kc->type != MLC_TYPE_F16 && kc->type != MLC_TYPE_F32) ||
        memcmp(kc->ne, vc->ne, sizeof kc->ne) || mlc_tensor_nelem(slot) != n || mlc_tensor_nelem(pos) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: %s: caches %s/%s [%lld, %lld, %lld] with %lld slots and %lld positions for %lld tokens",
                    op, mlc_tensor_type_name(kc->type), mlc_tensor_type_name(vc->type), (long long)kc->ne[0],
                    (long long)kc->ne[1], (long long)kc->ne[2], (long long)mlc_tensor_nelem(slot),
                    (long long)mlc_tensor_nelem(pos), (long long)n);
    return MLC_OK;
}

static mlc_status vk_kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache, mlc_tensor v_cache,
                              mlc_tensor slot, mlc_tensor pos)
{
    vk_ctx *c = ctx;
    const int64_t kv_dim = k_cache.ne[0], n = rows_of(&k);
    mlc_status s = VIEWS_OK(c, "kv_store", &k, &v, &k_cache, &v_cache, &slot, &pos);
    if (s || (s = cache_ok(c, "kv_store", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "kv_store", MLC_TYPE_F32, &k, &v)))
        return s;
    if (k.ne[0] != kv_dim || v.ne[0] != kv_dim || rows_of(&v) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: kv_store: k [%lld, %lld], v [%lld, %lld] for caches of rows of %lld",
                    (long long)k.ne[0], (long long)n, (long long)v.ne[0], (long long)rows_of(&v), (long long)kv_dim);
    const uint32_t total = (uint32_t)(n * kv_dim);
    if (!total)
        return MLC_OK;
    uint32_t gx, gy;
    mlc_vk_grid((total + 63) / 64, &gx, &gy);
    const uint32_t pc[] = {eoff(&k), eoff(&v), eoff(&k_cache), eoff(&v_cache), eoff(&slot), eoff(&pos),
                           (uint32_t)kv_dim, (uint32_t)k_cache.ne[1], (uint32_t)k_cache.ne[2], (uint32_t)n,
                           k_cache.type == MLC_TYPE_F16};
    return RUN(c, "kv_store", pc, gx, gy, 1, &k, &v, &k_cache, &v_cache, &slot, &pos);
}

static mlc_status vk_attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache, mlc_tensor slot,
                               mlc_tensor pos, const mlc_attn_params *p, mlc_tensor out)
{
    vk_ctx *c = ctx;
    const int64_t hd = q.ne[0], n = q.ne[2] * q.ne[3];
    mlc_status s = VIEWS_OK(c, "attention", &q, &k_cache, &v_cache, &slot, &pos, &out);
    if (s || (s = cache_ok(c, "attention", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "attention", MLC_TYPE_F32, &q, &out)))
        return s;
    if (hd < 1 || hd > MAX_HEAD_DIM || k_cache.ne[0] < hd || k_cache.ne[0] % hd || q.ne[1] % (k_cache.ne[0] / hd) ||
        mlc_tensor_nelem(&out) != mlc_tensor_nelem(&q))
        return fail(c, MLC_ERR_ARG, "vulkan: attention: q [%lld, %lld, %lld] over caches of rows of %lld",
                    (long long)hd, (long long)q.ne[1], (long long)n, (long long)k_cache.ne[0]);
    if (!n || !q.ne[1])
        return MLC_OK;
    const uint32_t pc[] = {eoff(&q), eoff(&k_cache), eoff(&v_cache), eoff(&slot), eoff(&pos), eoff(&out),
                           (uint32_t)hd, (uint32_t)q.ne[1], (uint32_t)(k_cache.ne[0] / hd), (uint32_t)k_cache.ne[1],
                           (uint32_t)k_cache.ne[2], (uint32_t)k_cache.ne[0], k_cache.type == MLC_TYPE_F16,
                           f2u(p->scale), f2u(p->softcap), (uint32_t)p->window};
    return RUN(c, "attention", pc, (uint32_t)q.ne[1], (uint32_t)n, 1, &q, &k_cache, &v_cache, &slot, &pos, &out);
}

/* ---------------------------------------------------------------- elementwise */

enum { EW_ADD, EW_MUL, EW_SCALE, EW_SWIGLU, EW_GEGLU };

static mlc_status ew(vk_ctx *c, int mode, const mlc_tensor *a, const mlc_tensor *b, const mlc_tensor *out, float sc)
{
    const int64_t n = mlc_tensor_nelem(a);
    if (!n)
        return MLC_OK;
    uint32_t gx, gy;
    mlc_vk_grid((uint32_t)((n + 255) / 256), &gx, &gy);
    const uint32_t pc[] = {eoff(a), b ? eoff(b) : 0, eoff(out), (uint32_t)n,
                           (uint32_t)(b ? mlc_tensor_nelem(b) : n), (uint32_t)mode, f2u(sc)};
    return RUN(c, "ew", pc, gx, gy, 1, a, b, out);
}

static mlc_status glu(vk_ctx *c, const char *op, int mode, const mlc_tensor *gate, const mlc_tensor *up,
                      const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, gate, up, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, gate, up, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(gate);
    if (mlc_tensor_nelem(up) != n || mlc_tensor_nelem(out) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: %s: gate, up and out of %lld, %lld and %lld elements", op, (long long)n,
                    (long long)mlc_tensor_nelem(up), (long long)mlc_tensor_nelem(out));
    return ew(c, mode, gate, up, out, 0);
}

static mlc_status vk_swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "swiglu", EW_SWIGLU, &gate, &up, &out);
}

static mlc_status vk_geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "geglu", EW_GEGLU, &gate, &up, &out);
}

static mlc_status binary(vk_ctx *c, const char *op, int mode, const mlc_tensor *a, const mlc_tensor *b,
                         const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, a, b, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, a, b, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(a), nb = mlc_tensor_nelem(b), dim = a->ne[0];
    if (mlc_tensor_nelem(out) != n || (nb != n && nb != dim) || dim < 1)
        return fail(c, MLC_ERR_ARG, "vulkan: %s: a of %lld, b of %lld, out of %lld elements", op, (long long)n,
                    (long long)nb, (long long)mlc_tensor_nelem(out));
    return ew(c, mode, a, b, out, 0);
}

static mlc_status vk_add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "add", EW_ADD, &a, &b, &out);
}

static mlc_status vk_mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "mul", EW_MUL, &a, &b, &out);
}

static mlc_status vk_scale(void *ctx, mlc_tensor x, float sc, mlc_tensor out)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "scale", &x, &out);
    if (s || (s = TYPED(c, "scale", MLC_TYPE_F32, &x, &out)))
        return s;
    if (mlc_tensor_nelem(&out) != mlc_tensor_nelem(&x))
        return fail(c, MLC_ERR_ARG, "vulkan: scale: x of %lld, out of %lld elements", (long long)mlc_tensor_nelem(&x),
                    (long long)mlc_tensor_nelem(&out));
    return ew(c, EW_SCALE, &x, NULL, &out, sc);
}

static mlc_status vk_gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out)
{
    vk_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "gather", &x, &rows, &out);
    if (s || (s = TYPED(c, "gather", MLC_TYPE_F32, &x, &out)) || (s = TYPED(c, "gather", MLC_TYPE_I32, &rows)) ||
        (s = indices_ok(c, "gather", "rows", &rows, rows_of(&x))))
        return s;
    const int64_t dim = x.ne[0], n = mlc_tensor_nelem(&rows);
    if (out.ne[0] != dim || rows_of(&out) != n)
        return fail(c, MLC_ERR_ARG, "vulkan: gather: output [%lld, %lld] for %lld rows of %lld", (long long)out.ne[0],
                    (long long)rows_of(&out), (long long)n, (long long)dim);
    const uint32_t total = (uint32_t)(n * dim);
    if (!total)
        return MLC_OK;
    uint32_t gx, gy;
    mlc_vk_grid((total + 63) / 64, &gx, &gy);
    const uint32_t pc[] = {eoff(&x), eoff(&rows), eoff(&out), (uint32_t)dim, (uint32_t)n, (uint32_t)rows_of(&x)};
    return RUN(c, "gather", pc, gx, gy, 1, &x, &rows, &out);
}

const mlc_backend_vt mlc_backend_vulkan = {
    .name = "vulkan",
    .device_count = vk_device_count,
    .device_info = vk_device_info,
    .no_device = vk_no_device,
    .init = vk_init,
    .destroy = vk_destroy,
    .describe = vk_describe,
    .supports = vk_supports,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .weights = vk_weights,
    .release_weights = vk_release_weights,
    .upload = vk_upload,
    .download = vk_download,
    .sync = vk_sync,
    .get_rows = vk_get_rows,
    .matmul = vk_matmul,
    .rms_norm = vk_rms_norm,
    .rope = vk_rope,
    .kv_store = vk_kv_store,
    .attention = vk_attention,
    .swiglu = vk_swiglu,
    .geglu = vk_geglu,
    .add = vk_add,
    .mul = vk_mul,
    .scale = vk_scale,
    .gather = vk_gather,
};
