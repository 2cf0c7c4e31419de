/* cpu_backend.c: the CPU backend: device discovery, host memory, and the forward-pass ops,
 * split across a fork-join thread pool and computed by the ISA-dispatched kernels of
 * vecdot.h. Numerics follow llama.cpp's CPU path where it matters for matching its logits:
 * activations converted to the weight type's activation format before matmuls, RMS sums in
 * double, RoPE angles by repeated multiplication, attention through an F16 KV cache with
 * the query and the probabilities rounded to F16 as ggml's F16 matmuls do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "pool.h"
#include "vecdot.h"

#define MAX_HEAD_DIM 1024 /* the model loader refuses larger heads */
#define POS_BLOCK 8       /* attention scores computed for 8 positions at a time */

/* Sums here are written in a fixed order on purpose (results must not depend on the ISA
 * or compiler), so no contraction of a*b+c into fma either: GCC does not contract under
 * -std=c11; clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct cpu_ctx {
    mlc_pool *pool;
    mlc_cpu_kernels k;
    float *f16; /* [65536]: every half value as float, for reading the F16 KV cache */
    /* Scratch for converted activations; ops run one at a time, so one buffer serves all. */
    void *act;
    size_t act_cap;
} cpu_ctx;

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

static void cpu_device_describe(int dev, char *buf, size_t cap)
{
    (void)dev;
    char model[256];
    cpu_model_name(model, sizeof model);
    snprintf(buf, cap, "%s, %ld threads, isa: %s", model, sysconf(_SC_NPROCESSORS_ONLN),
             mlc_cpu_isas_available());
}

static mlc_status cpu_init(int dev, int n_threads, void **out, mlc_err *err)
{
    (void)dev;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "cpu backend: out of memory");
    mlc_status s = mlc_cpu_kernels_init(&c->k, getenv("MLC_CPU_ISA"), err);
    if (s) {
        free(c);
        return s;
    }
    if (n_threads <= 0)
        n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (!(c->f16 = malloc(65536 * sizeof *c->f16)) || !(c->pool = mlc_pool_new(n_threads))) {
        free(c->f16);
        free(c);
        return mlc_err_set(err, MLC_ERR_NOMEM, "cpu backend: cannot start %d threads", n_threads);
    }
    for (uint32_t h = 0; h < 65536; h++)
        c->f16[h] = mlc_fp16_to_fp32((uint16_t)h);
    *out = c;
    return MLC_OK;
}

static void cpu_destroy(void *ctx)
{
    cpu_ctx *c = ctx;
    mlc_pool_free(c->pool);
    free(c->act);
    free(c->f16);
    free(c);
}

static void cpu_describe(void *ctx, char *buf, size_t cap)
{
    cpu_ctx *c = ctx;
    snprintf(buf, cap, "%d threads, %s", mlc_pool_size(c->pool), c->k.isa);
}

/* ---------------------------------------------------------------- memory */

static void *cpu_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    void *p = NULL;
    /* 64-byte alignment: a cache line, and what AVX-512 loads like. */
    return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

static void cpu_release(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void *cpu_weights(void *ctx, const void *host, size_t bytes)
{
    (void)ctx;
    (void)bytes;
    return (void *)host; /* zero copy: the mmap is the device memory */
}

static void cpu_release_weights(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

static void cpu_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    memcpy(dst, src, bytes);
}

static mlc_status cpu_sync(void *ctx, mlc_err *err)
{
    (void)ctx;
    (void)err;
    return MLC_OK;
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

static void cpu_get_rows(void *ctx, uint32_t type, const void *table, int64_t row_len,
                         const int32_t *ids, int64_t n, float *out)
{
    (void)ctx;
    /* Few rows per batch: dequantizing in the calling thread beats a pool round trip. */
    size_t rb = mlc_type_row_bytes(type, row_len);
    for (int64_t i = 0; i < n; i++)
        mlc_dequantize_row((mlc_type)type, (const uint8_t *)table + (size_t)ids[i] * rb,
                           out + i * row_len, row_len);
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

static void cpu_matmul(void *ctx, uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                       const float *x, int64_t n, float *y)
{
    cpu_ctx *c = ctx;
    mm_job j = {.k = &c->k, .type = type, .w = w, .w_row = mlc_type_row_bytes(type, n_in),
                .n_in = n_in, .n_out = n_out, .n = n, .x = x, .y = y,
                .act_row = mlc_cpu_act_row_bytes(&c->k, type, n_in)};
    j.act = scratch(c, j.act_row * (size_t)n);
    if (!j.act) {
        /* No memory for the converted activations: make the failure visible in the output. */
        for (int64_t i = 0; i < n * n_out; i++)
            y[i] = NAN;
        return;
    }
    if (n == 1)
        mm_convert(&j, 0, 1);
    else
        mlc_pool_run(c->pool, mm_convert, &j);
    mlc_pool_run(c->pool, mm_run, &j);
}

/* ---------------------------------------------------------------- elementwise */

static void rms_row(const float *x, const float *w, int64_t dim, float eps, float *y)
{
    double sum = 0;
    for (int64_t i = 0; i < dim; i++)
        sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)dim) + eps);
    for (int64_t i = 0; i < dim; i++)
        y[i] = (x[i] * scale) * w[i];
}

static void cpu_rms_norm(void *ctx, const float *x, const float *w, int64_t n, int64_t dim,
                         float eps, float *y)
{
    (void)ctx;
    for (int64_t t = 0; t < n; t++)
        rms_row(x + t * dim, w, dim, eps, y + t * dim);
}

static void cpu_rope(void *ctx, float *x, const int32_t *pos, int64_t n, int n_head,
                     int head_dim, int n_rot, float freq_base, bool neox)
{
    (void)ctx;
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float cs[MAX_HEAD_DIM / 2][2]; /* cos, sin per rotated pair */
    for (int64_t t = 0; t < n; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < n_rot / 2; i++) {
            cs[i][0] = cosf(theta);
            cs[i][1] = sinf(theta);
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
}

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

static void cpu_kv_store(void *ctx, const mlc_kv_geom *g, const float *k, const float *v,
                         void *k_cache, void *v_cache, const int32_t *slot, const int32_t *pos,
                         int64_t n)
{
    (void)ctx;
    for (int64_t t = 0; t < n; t++) {
        size_t idx = (size_t)slot[t] * (size_t)g->n_ctx + (size_t)pos[t];
        store_row(g->type, k + t * g->kv_dim, k_cache, idx, g->kv_dim);
        store_row(g->type, v + t * g->kv_dim, v_cache, idx, g->kv_dim);
    }
}

typedef struct attn_job {
    const mlc_kv_geom *g;
    const mlc_attn_args *a;
    const float *f16;  /* half -> float table */
    float *scratch;    /* per thread: [n_ctx] scores + [POS_BLOCK * head_dim] + [head_dim] */
    size_t per_thread; /* floats */
} attn_job;

/* With an F16 cache, round like ggml's F16 matmuls: q before Q.K, probabilities before P.V. */
static float round_as(uint32_t type, float v)
{
    return type == MLC_TYPE_F16 ? mlc_fp16_to_fp32(mlc_fp32_to_fp16(v)) : v;
}

/* Row `row` of a cache layer (head slice of hd values) as floats. */
static void cache_row(const attn_job *j, const void *cache, size_t row, int hd, float *out)
{
    if (j->g->type == MLC_TYPE_F32) {
        memcpy(out, (const float *)cache + row, (size_t)hd * sizeof *out);
        return;
    }
    const uint16_t *h = (const uint16_t *)cache + row;
    for (int d = 0; d < hd; d++)
        out[d] = j->f16[h[d]];
}

/* Scores of positions [p0, p0 + m), m <= POS_BLOCK: each is the sequential float sum over d
 * of q[d] * k[d]; the block is laid out [d][POS_BLOCK] so the m independent sums proceed
 * side by side (vectorizable, same result as one position at a time). */
static void attn_scores(const attn_job *j, const float *qr, size_t base, int kvh, int32_t p0,
                        int m, float *kt, float *sc)
{
    const mlc_kv_geom *g = j->g;
    int hd = j->a->head_dim;
    const uint16_t *kh = j->g->type == MLC_TYPE_F16 ? j->a->k : NULL;
    const float *kf = j->g->type == MLC_TYPE_F32 ? j->a->k : NULL;
    for (int i = 0; i < m; i++) {
        size_t row = (base + (size_t)(p0 + i)) * (size_t)g->kv_dim + (size_t)kvh * (size_t)hd;
        for (int d = 0; d < hd; d++)
            kt[d * POS_BLOCK + i] = kh ? j->f16[kh[row + (size_t)d]] : kf[row + (size_t)d];
    }
    float acc[POS_BLOCK] = {0};
    for (int d = 0; d < hd; d++)
        for (int i = 0; i < POS_BLOCK; i++)
            acc[i] += qr[d] * kt[d * POS_BLOCK + i];
    for (int i = 0; i < m; i++)
        sc[p0 + i] = acc[i] * j->a->scale;
}

/* One query head of one token: softmax(q K^T * scale) V over positions 0..pos, in float.
 * The summation order here is fixed (not ISA-dependent), so every kernel set gives the
 * same attention output bit for bit. */
static void attn_head(const attn_job *j, int64_t t, int h, float *scr)
{
    const mlc_kv_geom *g = j->g;
    const mlc_attn_args *a = j->a;
    int hd = a->head_dim, kvh = h / (a->n_head / a->n_kv_head);
    const float *q = a->q + (t * a->n_head + h) * hd;
    float *out = a->out + (t * a->n_head + h) * hd;
    size_t base = (size_t)a->slot[t] * (size_t)g->n_ctx;
    int32_t np = a->pos[t] + 1;
    float *sc = scr, *kt = scr + g->n_ctx, *vrow = kt + POS_BLOCK * hd;
    float qr[MAX_HEAD_DIM];
    for (int d = 0; d < hd; d++)
        qr[d] = round_as(g->type, q[d]);
    for (int32_t p0 = 0; p0 < np; p0 += POS_BLOCK)
        attn_scores(j, qr, base, kvh, p0, np - p0 < POS_BLOCK ? np - p0 : POS_BLOCK, kt, sc);
    float max = -INFINITY;
    for (int32_t p = 0; p < np; p++)
        max = fmaxf(max, sc[p]);
    double sum = 0;
    for (int32_t p = 0; p < np; p++) {
        sc[p] = expf(sc[p] - max);
        sum += sc[p];
    }
    for (int d = 0; d < hd; d++)
        out[d] = 0;
    float inv = (float)(1.0 / sum); /* ggml scales by the float inverse of the double sum */
    for (int32_t p = 0; p < np; p++) {
        float w = round_as(g->type, sc[p] * inv);
        size_t row = (base + (size_t)p) * (size_t)g->kv_dim + (size_t)kvh * (size_t)hd;
        cache_row(j, a->v, row, hd, vrow);
        for (int d = 0; d < hd; d++)
            out[d] += w * vrow[d];
    }
}

static void attn_run(void *arg, int ith, int nth)
{
    attn_job *j = arg;
    int64_t b, e;
    share(j->a->n * j->a->n_head, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++)
        attn_head(j, i / j->a->n_head, (int)(i % j->a->n_head), j->scratch + (size_t)ith * j->per_thread);
}

static void cpu_attention(void *ctx, const mlc_kv_geom *g, const mlc_attn_args *a)
{
    cpu_ctx *c = ctx;
    attn_job j = {g, a, c->f16, NULL, (size_t)g->n_ctx + (POS_BLOCK + 1) * (size_t)a->head_dim};
    j.scratch = scratch(c, (size_t)mlc_pool_size(c->pool) * j.per_thread * sizeof(float));
    if (!j.scratch) {
        for (int64_t i = 0; i < a->n * a->n_head * a->head_dim; i++)
            a->out[i] = NAN;
        return;
    }
    mlc_pool_run(c->pool, attn_run, &j);
}

typedef struct swiglu_job {
    const float *gate, *up;
    float *out;
    int64_t n;
} swiglu_job;

static void swiglu_run(void *arg, int ith, int nth)
{
    swiglu_job *j = arg;
    int64_t b, e;
    share(j->n, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++)
        j->out[i] = j->gate[i] / (1.0f + expf(-j->gate[i])) * j->up[i];
}

/* expf dominates here ([n_tokens, n_ff] of them per layer), so prefill splits it. */
static void cpu_swiglu(void *ctx, const float *gate, const float *up, int64_t n, float *out)
{
    cpu_ctx *c = ctx;
    swiglu_job j = {gate, up, out, n};
    if (n < 4096)
        swiglu_run(&j, 0, 1);
    else
        mlc_pool_run(c->pool, swiglu_run, &j);
}

static void cpu_add(void *ctx, const float *a, const float *b, int64_t n, float *out)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void cpu_add_bias(void *ctx, float *x, const float *bias, int64_t n, int64_t dim)
{
    (void)ctx;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < dim; i++)
            x[t * dim + i] += bias[i];
}

static void cpu_gather(void *ctx, const float *x, const int32_t *rows, int64_t n, int64_t dim,
                       float *out)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        memmove(out + i * dim, x + (int64_t)rows[i] * dim, (size_t)dim * sizeof(float));
}

const mlc_backend_vt mlc_backend_cpu = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_describe = cpu_device_describe,
    .init = cpu_init,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .weights = cpu_weights,
    .release_weights = cpu_release_weights,
    .upload = cpu_copy,
    .download = cpu_copy,
    .sync = cpu_sync,
    .get_rows = cpu_get_rows,
    .matmul = cpu_matmul,
    .rms_norm = cpu_rms_norm,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .add_bias = cpu_add_bias,
    .gather = cpu_gather,
};
