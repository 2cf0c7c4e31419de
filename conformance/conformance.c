/* conformance.c: op-level conformance cases and their runner (see conformance.h).
 *
 * Inputs are Gaussian with per-row scales, plus the degenerate inputs real models produce:
 * all-zero weight rows and activation rows (zero block maxima), saturated gates, rows of very
 * different magnitude, positions up to 32767. Device memory is only touched through the
 * backend interface; every output and cache lies between guard sentinels (signalling-NaN
 * canaries), and outputs start out as canaries so an element never written fails too. */
#include "rng.h"
#include "conformance.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/ref/ref.h"
#include "tolerance.h"

#define GUARD 16           /* canary floats on each side of an output */
#define CANARY 0x7FA5A5A5u /* a signalling NaN: reading it as data shows up too */

/* ---------------------------------------------------------------- random numbers */

static void fill_gauss(uint64_t *s, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)mlc_rng_gauss(s) * scale;
}

/* ---------------------------------------------------------------- cases */

const char *mlc_conf_verdict_name(mlc_conf_verdict v)
{
    return v == MLC_CONF_PASS ? "pass" : v == MLC_CONF_FAIL ? "fail" : "unsupported";
}

void mlc_conf_case_desc(const mlc_conf_case *c, char *buf, size_t cap)
{
    const char *t = mlc_tensor_type_name(c->type);
    const long long s[4] = {(long long)c->shape[0], (long long)c->shape[1], (long long)c->shape[2],
                            (long long)c->shape[3]};
    const long long n = (long long)c->n;
    switch (c->op) {
    case MLC_OP_GET_ROWS:
        snprintf(buf, cap, "get_rows %s row_len=%lld rows=%lld n=%lld", t, s[0], s[1], n);
        break;
    case MLC_OP_MATMUL:
        snprintf(buf, cap, "matmul %s n_in=%lld n_out=%lld n=%lld", t, s[0], s[1], n);
        break;
    case MLC_OP_RMS_NORM:
        snprintf(buf, cap, "rms_norm dim=%lld rows=%lld", s[0], n);
        break;
    case MLC_OP_ROPE:
        snprintf(buf, cap, "rope %s head_dim=%lld n_head=%lld n_rot=%lld n=%lld%s",
                 c->neox ? "neox" : "normal", s[0], s[1], s[2], n, s[3] ? " ff=llama3" : "");
        break;
    case MLC_OP_KV_STORE:
        snprintf(buf, cap, "kv_store %s kv_dim=%lld n_ctx=%lld slots=%lld n=%lld", t, s[0], s[1], s[2], n);
        break;
    case MLC_OP_ATTENTION:
        snprintf(buf, cap, "attention %s head_dim=%lld heads=%lld/%lld n_ctx=%lld n=%lld window=%d softcap=%g",
                 t, s[0], s[1], s[2], s[3], n, c->window, (double)c->softcap);
        break;
    case MLC_OP_ADD:
    case MLC_OP_MUL:
        snprintf(buf, cap, "%s dim=%lld rows=%lld%s", mlc_op_name(c->op), s[0], n,
                 c->bcast ? " b=row" : "");
        break;
    case MLC_OP_GATHER:
        snprintf(buf, cap, "gather dim=%lld n=%lld", s[0], n);
        break;
    default:
        snprintf(buf, cap, "%s n=%lld", mlc_op_name(c->op), s[0]);
        break;
    }
}

uint64_t mlc_conf_case_seed(const mlc_conf_case *c, uint64_t base)
{
    char d[160];
    mlc_conf_case_desc(c, d, sizeof d);
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the description */
    for (const char *p = d; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t s = base ^ h;
    return mlc_rng_next(&s);
}

typedef struct case_list {
    mlc_conf_case *v;
    int n, cap;
    bool oom;
} case_list;

static void add_case(case_list *l, mlc_conf_case c)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        mlc_conf_case *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = c;
}

static const uint32_t WTYPES[] = {MLC_TYPE_F32,  MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                  MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                                  MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                                  MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
#define N_WTYPES ((int)(sizeof WTYPES / sizeof WTYPES[0]))
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Row lengths: any for the float types, block multiples for the quantized ones. */
static int row_lengths(uint32_t type, bool full, int64_t out[4])
{
    const int64_t bs = mlc_type_block_size(type);
    if (bs == 1) {
        static const int64_t q[] = {33}, f[] = {7, 33, 257, 1024};
        memcpy(out, full ? f : q, sizeof(int64_t) * (full ? 4 : 1));
        return full ? 4 : 1;
    }
    if (bs == 32) {
        static const int64_t q[] = {96}, f[] = {32, 288, 768};
        memcpy(out, full ? f : q, sizeof(int64_t) * (full ? 3 : 1));
        return full ? 3 : 1;
    }
    static const int64_t q[] = {256}, f[] = {256, 768, 2304};
    memcpy(out, full ? f : q, sizeof(int64_t) * (full ? 3 : 1));
    return full ? 3 : 1;
}

static void matrix_cases(case_list *l, bool full)
{
    static const int64_t outs_q[] = {7, 33}, outs_f[] = {1, 7, 33, 257};
    static const int64_t ns_q[] = {1, 3}, ns_f[] = {1, 3, 17};
    for (int t = 0; t < N_WTYPES; t++) {
        int64_t lens[4];
        const int nl = row_lengths(WTYPES[t], full, lens);
        for (int a = 0; a < nl; a++) {
            for (int o = 0; o < (full ? COUNT(outs_f) : COUNT(outs_q)); o++)
                for (int b = 0; b < (full ? COUNT(ns_f) : COUNT(ns_q)); b++)
                    add_case(l, (mlc_conf_case){.op = MLC_OP_MATMUL, .type = WTYPES[t],
                                                .shape = {lens[a], full ? outs_f[o] : outs_q[o]},
                                                .n = full ? ns_f[b] : ns_q[b]});
            for (int b = 0; b < (full ? 2 : 1); b++)
                add_case(l, (mlc_conf_case){.op = MLC_OP_GET_ROWS, .type = WTYPES[t],
                                            .shape = {lens[a], 50}, .n = b ? 7 : 1});
        }
    }
}

static void norm_rope_cases(case_list *l, bool full)
{
    static const int64_t dims_q[] = {7, 257}, dims_f[] = {1, 7, 33, 257, 4096};
    static const int64_t ns[] = {1, 3, 17};
    for (int d = 0; d < (full ? COUNT(dims_f) : COUNT(dims_q)); d++)
        for (int b = 0; b < (full ? 3 : 2); b++)
            add_case(l, (mlc_conf_case){.op = MLC_OP_RMS_NORM, .type = MLC_TYPE_F32,
                                        .shape = {full ? dims_f[d] : dims_q[d]}, .n = ns[b]});
    static const int64_t hds[] = {64, 128, 256};
    for (int h = 0; h < (full ? 3 : 1); h++) /* per head: rows = heads x tokens */
        add_case(l, (mlc_conf_case){.op = MLC_OP_RMS_NORM, .type = MLC_TYPE_F32,
                                    .shape = {hds[h]}, .n = 7 * 3});
    for (int h = 0; h < (full ? 3 : 1); h++)
        for (int nh = 0; nh < 2; nh++)
            for (int part = 0; part < 2; part++)
                for (int neox = 0; neox < 2; neox++)
                    for (int ff = 0; ff < 2; ff++) /* shape[3] 1: Llama 3.1 frequency factors */
                        for (int b = 0; b < (full ? 3 : 1); b++)
                            add_case(l, (mlc_conf_case){.op = MLC_OP_ROPE, .type = MLC_TYPE_F32,
                                                        .shape = {hds[h], nh ? 7 : 1, part ? hds[h] / 2 : hds[h], ff},
                                                        .n = full ? ns[b] : 3, .neox = neox});
}

static void kv_attention_cases(case_list *l, bool full)
{
    static const uint32_t kv[] = {MLC_TYPE_F32, MLC_TYPE_F16};
    static const int64_t kvd[] = {1, 32, 96, 1024};
    static const int64_t ns[] = {1, 3, 17};
    static const int64_t hds[] = {64, 128, 256};
    static const int heads[][2] = {{4, 4}, {8, 2}, {4, 1}}; /* MHA, GQA, MQA */
    for (int t = 0; t < 2; t++) {
        for (int d = 0; d < (full ? 4 : 2); d++)
            for (int b = 0; b < (full ? 3 : 1); b++)
                add_case(l, (mlc_conf_case){.op = MLC_OP_KV_STORE, .type = kv[t],
                                            .shape = {kvd[full ? d : d + 1], 23, 3}, .n = full ? ns[b] : 3});
        for (int h = 0; h < (full ? 3 : 1); h++)
            for (int g = 0; g < 3; g++)
                for (int b = 0; b < (full ? 3 : 2); b++) {
                    const int64_t hd = full ? hds[h] : 64;
                    add_case(l, (mlc_conf_case){.op = MLC_OP_ATTENTION, .type = kv[t],
                                                .shape = {hd, heads[g][0], heads[g][1], 77}, .n = ns[b]});
                    /* sliding windows (positions run past them) and soft-caps */
                    add_case(l, (mlc_conf_case){.op = MLC_OP_ATTENTION, .type = kv[t],
                                                .shape = {hd, heads[g][0], heads[g][1], 77}, .n = ns[b],
                                                .window = b ? 32 : 7, .softcap = g ? 50.0f : 0});
                }
        /* a long context: positions up to 4095 (1023 in the quick suite), with and without a window */
        for (int w = 0; w < 2; w++)
            add_case(l, (mlc_conf_case){.op = MLC_OP_ATTENTION, .type = kv[t],
                                        .shape = {128, 8, 2, full ? 4096 : 1024}, .n = 3,
                                        .window = w ? 512 : 0, .softcap = w ? 30.0f : 0});
    }
}

static void elementwise_cases(case_list *l, bool full)
{
    static const int64_t lens_q[] = {7, 4864}, lens_f[] = {1, 7, 33, 257, 4864};
    static const mlc_op glus[] = {MLC_OP_SWIGLU, MLC_OP_GEGLU, MLC_OP_SCALE};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < (full ? COUNT(lens_f) : COUNT(lens_q)); i++)
            add_case(l, (mlc_conf_case){.op = glus[g], .type = MLC_TYPE_F32,
                                        .shape = {full ? lens_f[i] : lens_q[i]}, .n = 1});
    static const int64_t dims_q[] = {33}, dims_f[] = {1, 7, 33, 257};
    static const int64_t ns[] = {1, 3, 17};
    for (int op = 0; op < 3; op++)
        for (int d = 0; d < (full ? COUNT(dims_f) : COUNT(dims_q)); d++)
            for (int b = 0; b < (full ? 3 : 2); b++)
                for (int bc = 0; bc < (op == 2 ? 1 : 2); bc++)
                    add_case(l, (mlc_conf_case){.op = op == 0 ? MLC_OP_ADD : op == 1 ? MLC_OP_MUL : MLC_OP_GATHER,
                                                .type = MLC_TYPE_F32,
                                                .shape = {full ? dims_f[d] : dims_q[d]}, .n = ns[b], .bcast = bc});
}

int mlc_conf_cases(mlc_conf_level level, mlc_conf_case **out)
{
    case_list l = {0};
    const bool full = level == MLC_CONF_FULL;
    matrix_cases(&l, full);
    norm_rope_cases(&l, full);
    kv_attention_cases(&l, full);
    elementwise_cases(&l, full);
    if (l.oom) {
        free(l.v);
        *out = NULL;
        return -1;
    }
    *out = l.v;
    return l.n;
}

/* ---------------------------------------------------------------- running one case */

typedef struct rc {
    const mlc_backend *b;
    mlc_conf_result *r;
    uint64_t s;                       /* the case's random stream */
    mlc_buffer *bufs[32];
    int n_bufs;
    mlc_tensor w[2];                  /* weights() results to release */
    int n_w;
    void **host;                      /* host allocations, freed at the end */
    int n_host, cap_host;
    double err, norm;                 /* pooled sums (out - ref)^2, ref^2 */
    bool failed;
    bool timing;
    struct timespec t0;
} rc;

static bool failf(rc *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(rc *x, const char *fmt, ...)
{
    if (!x->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->r->error, sizeof x->r->error, fmt, ap);
        va_end(ap);
        x->failed = true;
        x->r->verdict = MLC_CONF_FAIL;
    }
    return false;
}

static void *hmalloc(rc *x, size_t bytes)
{
    if (x->n_host == x->cap_host) {
        int cap = x->cap_host ? 2 * x->cap_host : 32;
        void **v = realloc(x->host, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        x->host = v;
        x->cap_host = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        x->host[x->n_host++] = p;
    return p;
}

static float *hfloats(rc *x, int64_t n)
{
    float *p = hmalloc(x, (size_t)n * sizeof *p);
    if (!p)
        failf(x, "host out of memory");
    return p;
}

static double *hdoubles(rc *x, int64_t n)
{
    double *p = hmalloc(x, (size_t)n * sizeof *p);
    if (!p)
        failf(x, "host out of memory");
    return p;
}

static int32_t *hints(rc *x, int64_t n)
{
    int32_t *p = hmalloc(x, (size_t)n * sizeof *p);
    if (!p)
        failf(x, "host out of memory");
    return p;
}

static bool d_alloc(rc *x, size_t bytes, mlc_buffer **out)
{
    mlc_err err = {0};
    if (x->n_bufs == (int)(sizeof x->bufs / sizeof x->bufs[0]))
        return failf(x, "too many buffers in one case");
    if (x->b->vt->buffer_alloc(x->b->ctx, bytes, out, &err))
        return failf(x, "buffer of %zu bytes: %s", bytes, err.msg);
    x->bufs[x->n_bufs++] = *out;
    return true;
}

static bool d_in(rc *x, const void *host, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                 mlc_tensor *t)
{
    *t = mlc_tensor_make(NULL, 0, type, ne0, ne1, ne2);
    const size_t bytes = mlc_tensor_nbytes(t);
    return d_alloc(x, bytes, &t->buf) &&
           (x->b->vt->upload(x->b->ctx, t->buf, 0, host, bytes) == MLC_OK || failf(x, "upload failed"));
}

static bool d_weights(rc *x, const void *host, uint32_t type, int64_t ne0, int64_t ne1, mlc_tensor *t)
{
    mlc_err err = {0};
    if (x->b->vt->weights(x->b->ctx, host, type, ne0, ne1, t, &err))
        return failf(x, "weights: %s", err.msg);
    x->w[x->n_w++] = *t;
    return true;
}

/* Floats a view spans (a cache of an odd F16 count ends in 2 bytes of padding). */
static int64_t span_floats(const mlc_tensor *t)
{
    return (int64_t)((mlc_tensor_nbytes(t) + 3) / 4);
}

/* A view [ne0, ne1, ne2] of type between guards; initial (NULL: all canaries) fills it. */
static bool d_guarded(rc *x, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                      const void *initial, mlc_tensor *t)
{
    *t = mlc_tensor_make(NULL, GUARD * sizeof(float), type, ne0, ne1, ne2);
    const int64_t nf = span_floats(t) + 2 * GUARD;
    float *h = hfloats(x, nf);
    if (!h)
        return false;
    const uint32_t bits = CANARY;
    for (int64_t i = 0; i < nf; i++)
        memcpy(&h[i], &bits, 4);
    if (initial)
        memcpy(h + GUARD, initial, mlc_tensor_nbytes(t));
    return d_alloc(x, (size_t)nf * sizeof(float), &t->buf) &&
           (x->b->vt->upload(x->b->ctx, t->buf, 0, h, (size_t)nf * sizeof(float)) == MLC_OK ||
            failf(x, "upload failed"));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts the clock for the op about to be issued (stopped by the sync of d_fetch). */
static void tic(rc *x)
{
    x->timing = true;
    x->r->seconds -= now_s();
}

/* Syncs (a backend error fails the case), then downloads the floats t spans (into host
 * when not NULL) and checks both guards. */
static bool d_fetch(rc *x, mlc_tensor t, float *host)
{
    mlc_err err = {0};
    mlc_status s = x->b->vt->sync(x->b->ctx, &err);
    if (x->timing) {
        x->r->seconds += now_s();
        x->timing = false;
    }
    if (s)
        return failf(x, "backend error: %s", err.msg);
    const int64_t n = span_floats(&t);
    float *h = hfloats(x, n + 2 * GUARD);
    if (!h)
        return false;
    if (x->b->vt->download(x->b->ctx, h, t.buf, t.offset - GUARD * sizeof(float),
                           (size_t)(n + 2 * GUARD) * sizeof(float)) ||
        x->b->vt->sync(x->b->ctx, &err))
        return failf(x, "download: %s", err.msg);
    for (int64_t i = 0; i < 2 * GUARD; i++) {
        const int64_t at = i < GUARD ? i : n + i;
        uint32_t bits;
        memcpy(&bits, &h[at], 4);
        if (bits != CANARY)
            return failf(x, "write out of bounds at output[%lld] (guard holds 0x%08x)",
                         (long long)(at - GUARD), bits);
    }
    if (host)
        memcpy(host, h + GUARD, (size_t)n * sizeof *h);
    return true;
}

/* Adds n outputs to the pooled error; a NaN or Inf the reference lacks fails. */
static bool compare(rc *x, const float *out, const double *ref, int64_t n)
{
    const int64_t bad = mlc_ref_first_nonfinite(out, ref, n);
    if (bad >= 0)
        return failf(x, "non-finite output[%lld] = %g where the reference has %g", (long long)bad,
                     (double)out[bad], ref[bad]);
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)out[i] - ref[i];
        x->err += d * d;
        x->norm += ref[i] * ref[i];
    }
    return true;
}

/* ---------------------------------------------------------------- ops */

/* n_out rows of n_in random weights in type, each row with its own scale, one row all zero. */
static uint8_t *random_weights(rc *x, uint32_t type, int64_t n_in, int64_t n_out)
{
    const size_t rb = mlc_type_row_bytes(type, n_in);
    uint8_t *w = hmalloc(x, rb * (size_t)n_out);
    float *row = hfloats(x, n_in);
    if (!w || !row) {
        failf(x, "host out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < n_out; r++) {
        fill_gauss(&x->s, row, n_in, (float)exp(0.5 * (float)mlc_rng_gauss(&x->s)) * 0.05f);
        if (n_out > 4 && r == n_out / 2)
            memset(row, 0, (size_t)n_in * sizeof *row);
        mlc_quantize_row((mlc_type)type, row, w + (size_t)r * rb, n_in);
    }
    return w;
}

/* A matmul's NMSE over a handful of outputs is noisy (quantized activations share each
 * row's rounding), so a case is repeated on fresh inputs until it pools at least 64 outputs
 * and 16 activation rows, as the thresholds were measured. */
static void run_matmul(rc *x, const mlc_conf_case *c)
{
    const uint32_t type = c->type;
    const int64_t n_in = c->shape[0], n_out = c->shape[1], n = c->n;
    const int64_t by_out = (64 + n * n_out - 1) / (n * n_out), by_row = (16 + n - 1) / n;
    const int reps = (int)(by_out > by_row ? by_out : by_row);
    x->r->bytes = (double)(mlc_type_row_bytes(type, n_in) * (size_t)n_out) + 4.0 * (double)(n * (n_in + n_out));
    x->r->flops = 2.0 * (double)n_in * (double)n_out * (double)n;
    for (int rep = 0; rep < reps && !x->failed; rep++) {
        uint8_t *w = random_weights(x, type, n_in, n_out);
        float *in = hfloats(x, n * n_in), *got = hfloats(x, n * n_out);
        double *ref = hdoubles(x, n * n_out);
        if (!w || !in || !got || !ref)
            return;
        fill_gauss(&x->s, in, n * n_in, 1.0f);
        if (n > 1 && mlc_rng_below(&x->s, 2)) /* an all-zero activation row (amax = 0 blocks) */
            memset(in + n_in * mlc_rng_below(&x->s, n), 0, (size_t)n_in * sizeof(float));
        if (!mlc_ref_matmul(type, w, n_in, n_out, in, n, ref)) {
            failf(x, "the reference cannot compute matmul %s", mlc_tensor_type_name(type));
            return;
        }
        const int mark = x->n_bufs;
        mlc_tensor dw, dx, dy;
        if (!d_weights(x, w, type, n_in, n_out, &dw) || !d_in(x, in, MLC_TYPE_F32, n_in, n, 1, &dx) ||
            !d_guarded(x, MLC_TYPE_F32, n_out, n, 1, NULL, &dy))
            return;
        tic(x);
        x->b->vt->matmul(x->b->ctx, dw, dx, dy);
        if (!d_fetch(x, dy, got) || !compare(x, got, ref, n * n_out))
            return;
        x->b->vt->release_weights(x->b->ctx, &x->w[--x->n_w]);
        while (x->n_bufs > mark) /* each repetition's buffers go before the next */
            x->b->vt->buffer_free(x->b->ctx, x->bufs[--x->n_bufs]);
    }
    x->r->seconds /= reps;
}

static void run_get_rows(rc *x, const mlc_conf_case *c)
{
    const int64_t row_len = c->shape[0], rows = c->shape[1], n = c->n;
    uint8_t *table = random_weights(x, c->type, row_len, rows);
    int32_t *ids = hints(x, n);
    float *got = hfloats(x, n * row_len);
    double *ref = hdoubles(x, n * row_len);
    if (!table || !ids || !got || !ref)
        return;
    for (int64_t i = 0; i < n; i++) /* the last and first rows, then any (repeats allowed) */
        ids[i] = i == 0 ? (int32_t)rows - 1 : i == 1 ? 0 : (int32_t)mlc_rng_below(&x->s, rows);
    if (!mlc_ref_get_rows(c->type, table, row_len, ids, n, ref)) {
        failf(x, "the reference cannot compute get_rows %s", mlc_tensor_type_name(c->type));
        return;
    }
    mlc_tensor dt, di, dy;
    if (!d_weights(x, table, c->type, row_len, rows, &dt) || !d_in(x, ids, MLC_TYPE_I32, n, 1, 1, &di) ||
        !d_guarded(x, MLC_TYPE_F32, row_len, n, 1, NULL, &dy))
        return;
    x->r->bytes = (double)n * (double)(mlc_type_row_bytes(c->type, row_len) + 4 * (size_t)row_len);
    tic(x);
    x->b->vt->get_rows(x->b->ctx, dt, di, dy);
    if (d_fetch(x, dy, got))
        compare(x, got, ref, n * row_len);
}

static void run_rms_norm(rc *x, const mlc_conf_case *c)
{
    const int64_t dim = c->shape[0], n = c->n;
    float *in = hfloats(x, n * dim), *w = hfloats(x, dim), *got = hfloats(x, n * dim);
    double *ref = hdoubles(x, n * dim);
    if (!in || !w || !got || !ref)
        return;
    for (int64_t t = 0; t < n; t++) /* rows of very different magnitudes; one all zero */
        fill_gauss(&x->s, in + t * dim, dim, (float)exp(2.0 * (float)mlc_rng_gauss(&x->s)));
    if (n > 1)
        memset(in + dim, 0, (size_t)dim * sizeof *in);
    for (int64_t i = 0; i < dim; i++)
        w[i] = 1.0f + 0.3f * (float)mlc_rng_gauss(&x->s);
    const float eps = mlc_rng_below(&x->s, 2) ? 1e-5f : 1e-6f;
    mlc_ref_rms_norm(in, w, n, dim, eps, ref);
    mlc_tensor dx, dw;
    if (!d_guarded(x, MLC_TYPE_F32, dim, n, 1, in, &dx) || !d_in(x, w, MLC_TYPE_F32, dim, 1, 1, &dw))
        return;
    x->r->bytes = 8.0 * (double)(n * dim);
    x->r->flops = 4.0 * (double)(n * dim);
    tic(x);
    x->b->vt->rms_norm(x->b->ctx, dx, dw, eps, dx); /* in place */
    if (d_fetch(x, dx, got))
        compare(x, got, ref, n * dim);
}

static void run_rope(rc *x, const mlc_conf_case *c)
{
    const int hd = (int)c->shape[0], nh = (int)c->shape[1], n_rot = (int)c->shape[2];
    const int64_t n = c->n, len = n * nh * hd;
    float *in = hfloats(x, len), *got = hfloats(x, len);
    int32_t *pos = hints(x, n);
    double *ref = hdoubles(x, len);
    float *ff = c->shape[3] ? hfloats(x, n_rot / 2) : NULL; /* [n_rot/2] */
    if (!in || !got || !pos || !ref || (c->shape[3] && !ff))
        return;
    fill_gauss(&x->s, in, len, 1.0f);
    static const int32_t fixed[] = {32767, 0, 1, 4095, 130, 6}; /* long contexts first */
    for (int64_t t = 0; t < n; t++)
        pos[t] = t < 6 ? fixed[t] : (int32_t)mlc_rng_below(&x->s, 32768);
    const float base = mlc_rng_below(&x->s, 2) ? 1000000.0f : 10000.0f;
    if (ff)
        mlc_ref_llama3_rope_factors(n_rot, base, 8.0f, 1.0f, 4.0f, 8192.0f, ff);
    mlc_ref_rope(in, pos, ff, n, nh, hd, n_rot, base, c->neox, ref);
    mlc_tensor dx, dp, df = MLC_ROPE_NO_FF;
    if (!d_guarded(x, MLC_TYPE_F32, hd, nh, n, in, &dx) || !d_in(x, pos, MLC_TYPE_I32, n, 1, 1, &dp) ||
        (ff && !d_in(x, ff, MLC_TYPE_F32, n_rot / 2, 1, 1, &df)))
        return;
    x->r->bytes = 8.0 * (double)len;
    tic(x);
    x->b->vt->rope(x->b->ctx, dx, dp, df, n_rot, base, c->neox);
    if (d_fetch(x, dx, got))
        compare(x, got, ref, len);
}

/* A cache image of n_elem elements, every one NaN, so a cell read before it was written or
 * outside what a token may see shows up. */
static void *nan_cache(rc *x, uint32_t type, int64_t n_elem)
{
    uint8_t *h = hmalloc(x, (size_t)n_elem * (type == MLC_TYPE_F16 ? 2 : 4));
    if (!h) {
        failf(x, "host out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n_elem; i++) {
        if (type == MLC_TYPE_F16) {
            const uint16_t v = 0x7E00;
            memcpy(h + 2 * i, &v, 2);
        } else {
            const uint32_t v = CANARY;
            memcpy(h + 4 * i, &v, 4);
        }
    }
    return h;
}

/* The cache read back as floats (guards and padding checked). */
static bool fetch_cache(rc *x, mlc_tensor d, float *out)
{
    const int64_t n_elem = mlc_tensor_nelem(&d);
    float *raw = hfloats(x, span_floats(&d));
    if (!raw || !d_fetch(x, d, raw))
        return false;
    for (size_t b = mlc_tensor_nbytes(&d); b < (size_t)span_floats(&d) * 4; b++)
        if (((const uint8_t *)raw)[b] != ((const uint8_t[4]){0xA5, 0xA5, 0xA5, 0x7F})[b % 4])
            return failf(x, "write past the end of the cache (byte %zu)", b);
    for (int64_t i = 0; i < n_elem; i++) {
        if (d.type == MLC_TYPE_F32) {
            out[i] = raw[i];
        } else {
            uint16_t h;
            memcpy(&h, (const uint8_t *)raw + 2 * i, 2);
            out[i] = mlc_fp16_to_fp32(h);
        }
    }
    return true;
}

static void run_kv_store(rc *x, const mlc_conf_case *c)
{
    const int64_t kvd = c->shape[0], n_ctx = c->shape[1], n_slots = c->shape[2], n = c->n;
    const int64_t cells = n_ctx * n_slots, n_elem = cells * kvd;
    int32_t *slot = hints(x, n), *pos = hints(x, n), *cell = hints(x, cells);
    float *k = hfloats(x, n * kvd), *v = hfloats(x, n * kvd), *got = hfloats(x, n_elem);
    float *sel = hfloats(x, n * kvd);
    double *ref = hdoubles(x, n * kvd);
    void *nan = nan_cache(x, c->type, n_elem);
    if (!slot || !pos || !cell || !k || !v || !got || !sel || !ref || !nan)
        return;
    for (int64_t i = 0; i < cells; i++)
        cell[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++) { /* n distinct cells in random order */
        const int64_t j = i + mlc_rng_below(&x->s, cells - i);
        const int32_t tmp = cell[i];
        cell[i] = cell[j];
        cell[j] = tmp;
        slot[i] = (int32_t)(cell[i] / n_ctx);
        pos[i] = (int32_t)(cell[i] % n_ctx);
    }
    fill_gauss(&x->s, k, n * kvd, 1.0f);
    fill_gauss(&x->s, v, n * kvd, 3.0f);
    mlc_tensor dk, dv, ds, dp, kc, vc;
    if (!d_in(x, k, MLC_TYPE_F32, kvd, n, 1, &dk) || !d_in(x, v, MLC_TYPE_F32, kvd, n, 1, &dv) ||
        !d_in(x, slot, MLC_TYPE_I32, n, 1, 1, &ds) || !d_in(x, pos, MLC_TYPE_I32, n, 1, 1, &dp) ||
        !d_guarded(x, c->type, kvd, n_ctx, n_slots, nan, &kc) ||
        !d_guarded(x, c->type, kvd, n_ctx, n_slots, nan, &vc))
        return;
    x->r->bytes = 2.0 * (double)(n * kvd) * (4.0 + (c->type == MLC_TYPE_F16 ? 2 : 4));
    tic(x);
    x->b->vt->kv_store(x->b->ctx, dk, dv, kc, vc, ds, dp);
    for (int kvi = 0; kvi < 2; kvi++) {
        if (!fetch_cache(x, kvi ? vc : kc, got))
            return;
        /* every cell not written is still NaN; the written ones hold k (v) */
        for (int64_t ce = 0; ce < cells; ce++) {
            int64_t t = -1;
            for (int64_t i = 0; i < n && t < 0; i++)
                if (cell[i] == ce)
                    t = i;
            if (t >= 0) {
                memcpy(sel + t * kvd, got + ce * kvd, (size_t)kvd * sizeof *sel);
                continue;
            }
            for (int64_t d = 0; d < kvd; d++)
                if (!isnan(got[ce * kvd + d])) {
                    failf(x, "cache cell (slot %lld, pos %lld) was written but not stored to",
                          (long long)(ce / n_ctx), (long long)(ce % n_ctx));
                    return;
                }
        }
        const float *src = kvi ? v : k;
        for (int64_t i = 0; i < n * kvd; i++)
            ref[i] = src[i];
        if (!compare(x, sel, ref, n * kvd))
            return;
    }
}

/* Tokens over 3 slots of n_ctx positions: token 0 at the last position (long contexts, past
 * any window), the others spread; each slot stored up to the highest position a token has
 * there, the rest NaN (reading past pos or into another slot shows up). */
static void run_attention(rc *x, const mlc_conf_case *c)
{
    const int hd = (int)c->shape[0], nh = (int)c->shape[1], nkv = (int)c->shape[2];
    const int64_t n_ctx = c->shape[3], n = c->n, kvd = (int64_t)nkv * hd, n_slots = 3;
    const int64_t n_elem = n_slots * n_ctx * kvd, q_len = n * nh * hd;
    int32_t *slot = hints(x, n), *pos = hints(x, n);
    float *q = hfloats(x, q_len), *got = hfloats(x, q_len);
    double *ref = hdoubles(x, q_len);
    if (!slot || !pos || !q || !got || !ref)
        return;
    int32_t maxpos[3] = {-1, -1, -1};
    for (int64_t t = 0; t < n; t++) {
        slot[t] = (int32_t)(t % n_slots);
        pos[t] = t == 0 ? (int32_t)n_ctx - 1 : t == 1 ? 0 : (int32_t)mlc_rng_below(&x->s, n_ctx);
        if (pos[t] > maxpos[slot[t]])
            maxpos[slot[t]] = pos[t];
    }
    int64_t n_st = 0;
    for (int i = 0; i < n_slots; i++)
        n_st += maxpos[i] + 1;
    int32_t *st_slot = hints(x, n_st), *st_pos = hints(x, n_st);
    float *k = hfloats(x, n_st * kvd), *v = hfloats(x, n_st * kvd);
    void *rk = nan_cache(x, MLC_TYPE_F32, n_elem), *rv = nan_cache(x, MLC_TYPE_F32, n_elem);
    void *nan = nan_cache(x, c->type, n_elem);
    if (!st_slot || !st_pos || !k || !v || !rk || !rv || !nan)
        return;
    for (int64_t i = 0, j = 0; i < n_slots; i++)
        for (int32_t p = 0; p <= maxpos[i]; p++, j++) {
            st_slot[j] = (int32_t)i;
            st_pos[j] = p;
        }
    fill_gauss(&x->s, k, n_st * kvd, 1.0f);
    fill_gauss(&x->s, v, n_st * kvd, 1.0f);
    fill_gauss(&x->s, q, q_len, c->softcap > 0 ? 4.0f : 1.0f); /* reach into the cap */
    const mlc_ref_kv_geom g32 = {MLC_TYPE_F32, n_ctx, kvd};
    mlc_ref_kv_store(&g32, k, v, rk, rv, st_slot, st_pos, n_st);
    const mlc_attn_params ap = {1.0f / sqrtf((float)hd), c->window, c->softcap};
    const mlc_ref_attn_args ra = {q, rk, rv, slot, pos, n, nh, nkv, hd, ap};
    if (!mlc_ref_attention(&g32, &ra, ref)) {
        failf(x, "host out of memory (reference attention)");
        return;
    }
    mlc_tensor dk, dv, dss, dsp, ds, dp, dq, kc, vc, dy;
    if (!d_in(x, k, MLC_TYPE_F32, kvd, n_st, 1, &dk) || !d_in(x, v, MLC_TYPE_F32, kvd, n_st, 1, &dv) ||
        !d_in(x, st_slot, MLC_TYPE_I32, n_st, 1, 1, &dss) || !d_in(x, st_pos, MLC_TYPE_I32, n_st, 1, 1, &dsp) ||
        !d_in(x, slot, MLC_TYPE_I32, n, 1, 1, &ds) || !d_in(x, pos, MLC_TYPE_I32, n, 1, 1, &dp) ||
        !d_in(x, q, MLC_TYPE_F32, hd, nh, n, &dq) ||
        !d_guarded(x, c->type, kvd, n_ctx, n_slots, nan, &kc) ||
        !d_guarded(x, c->type, kvd, n_ctx, n_slots, nan, &vc) ||
        !d_guarded(x, MLC_TYPE_F32, hd, nh, n, NULL, &dy))
        return;
    x->b->vt->kv_store(x->b->ctx, dk, dv, kc, vc, dss, dsp);
    double seen = 0;
    for (int64_t t = 0; t < n; t++) {
        const int64_t np = pos[t] + 1;
        seen += (double)(c->window > 0 && np > c->window ? c->window : np);
    }
    x->r->flops = 4.0 * seen * nh * hd;
    x->r->bytes = 2.0 * seen * nkv * hd * (c->type == MLC_TYPE_F16 ? 2 : 4);
    if (!d_fetch(x, dy, NULL)) /* the stores done: time the attention alone */
        return;
    tic(x);
    x->b->vt->attention(x->b->ctx, dq, kc, vc, ds, dp, &ap, dy);
    if (!d_fetch(x, dy, got) || !compare(x, got, ref, q_len))
        return;
    /* the caches come through attention unchanged around their guards */
    float *chk = hfloats(x, n_elem);
    if (chk && fetch_cache(x, kc, chk))
        fetch_cache(x, vc, chk);
}

static void run_unary(rc *x, const mlc_conf_case *c)
{
    const int64_t n = c->shape[0];
    float *a = hfloats(x, n), *b = hfloats(x, n), *got = hfloats(x, n);
    double *ref = hdoubles(x, n);
    if (!a || !b || !got || !ref)
        return;
    fill_gauss(&x->s, a, n, 3.0f);
    fill_gauss(&x->s, b, n, 1.0f);
    static const float extreme[] = {-100.0f, 100.0f, -1000.0f, 88.0f, -88.0f, 30.0f, -30.0f};
    for (int64_t i = 0; n > 7 && i < 7; i++) /* saturated gates */
        a[mlc_rng_below(&x->s, n)] = extreme[i];
    const float k = 33.941125f;
    if (c->op == MLC_OP_SWIGLU)
        mlc_ref_swiglu(a, b, n, ref);
    else if (c->op == MLC_OP_GEGLU)
        mlc_ref_geglu(a, b, n, ref);
    else
        mlc_ref_scale(a, k, n, ref);
    mlc_tensor da, db, dy;
    if (!d_in(x, a, MLC_TYPE_F32, n, 1, 1, &da) || !d_in(x, b, MLC_TYPE_F32, n, 1, 1, &db) ||
        !d_guarded(x, MLC_TYPE_F32, n, 1, 1, NULL, &dy))
        return;
    x->r->bytes = 4.0 * (double)n * (c->op == MLC_OP_SCALE ? 2 : 3);
    x->r->flops = (double)n;
    tic(x);
    if (c->op == MLC_OP_SWIGLU)
        x->b->vt->swiglu(x->b->ctx, da, db, dy);
    else if (c->op == MLC_OP_GEGLU)
        x->b->vt->geglu(x->b->ctx, da, db, dy);
    else
        x->b->vt->scale(x->b->ctx, da, k, dy);
    if (d_fetch(x, dy, got))
        compare(x, got, ref, n);
}

/* add, mul (b full or one broadcast row, in place), gather (repeated rows). */
static void run_binary(rc *x, const mlc_conf_case *c)
{
    const int64_t dim = c->shape[0], n = c->n, src_rows = 20;
    const bool gather = c->op == MLC_OP_GATHER;
    const int64_t na = gather ? src_rows * dim : n * dim, nb = c->bcast ? dim : n * dim;
    float *a = hfloats(x, na), *b = hfloats(x, nb), *got = hfloats(x, n * dim);
    int32_t *rows = hints(x, n);
    double *ref = hdoubles(x, n * dim);
    if (!a || !b || !got || !rows || !ref)
        return;
    fill_gauss(&x->s, a, na, 1.0f);
    fill_gauss(&x->s, b, nb, 0.5f);
    for (int64_t i = 0; i < n; i++)
        rows[i] = i == 0 ? (int32_t)src_rows - 1 : (int32_t)mlc_rng_below(&x->s, src_rows);
    if (gather)
        mlc_ref_gather(a, rows, n, dim, ref);
    else if (c->op == MLC_OP_ADD)
        mlc_ref_add(a, b, n * dim, nb, ref);
    else
        mlc_ref_mul(a, b, n * dim, nb, ref);
    mlc_tensor da, db, dy;
    x->r->bytes = 12.0 * (double)(n * dim);
    x->r->flops = gather ? 0 : (double)(n * dim);
    if (gather) {
        if (!d_in(x, a, MLC_TYPE_F32, dim, src_rows, 1, &da) || !d_in(x, rows, MLC_TYPE_I32, n, 1, 1, &db) ||
            !d_guarded(x, MLC_TYPE_F32, dim, n, 1, NULL, &dy))
            return;
        tic(x);
        x->b->vt->gather(x->b->ctx, da, db, dy);
    } else {
        if (!d_in(x, b, MLC_TYPE_F32, dim, c->bcast ? 1 : n, 1, &db) ||
            !d_guarded(x, MLC_TYPE_F32, dim, n, 1, a, &da))
            return;
        if (!c->bcast && !d_guarded(x, MLC_TYPE_F32, dim, n, 1, NULL, &dy))
            return;
        if (c->bcast)
            dy = da; /* in place */
        tic(x);
        if (c->op == MLC_OP_ADD)
            x->b->vt->add(x->b->ctx, da, db, dy);
        else
            x->b->vt->mul(x->b->ctx, da, db, dy);
    }
    if (d_fetch(x, dy, got))
        compare(x, got, ref, n * dim);
}

void mlc_conf_run(const mlc_backend *b, const mlc_conf_case *c, uint64_t seed, mlc_conf_result *r)
{
    memset(r, 0, sizeof *r);
    r->c = *c;
    r->seed = seed;
    r->nmse = NAN;
    r->threshold = mlc_conf_threshold(c->op, c->type);
    mlc_conf_case_desc(c, r->desc, sizeof r->desc);
    if (!b->vt->supports(b->ctx, c->op, c->type, c->shape)) {
        r->verdict = MLC_CONF_UNSUPPORTED;
        return;
    }
    rc x = {.b = b, .r = r, .s = seed};
    if (r->threshold < 0) {
        failf(&x, "no threshold for %s %s in conformance/tolerance.c", mlc_op_name(c->op),
              mlc_tensor_type_name(c->type));
    } else {
        switch (c->op) {
        case MLC_OP_GET_ROWS: run_get_rows(&x, c); break;
        case MLC_OP_MATMUL: run_matmul(&x, c); break;
        case MLC_OP_RMS_NORM: run_rms_norm(&x, c); break;
        case MLC_OP_ROPE: run_rope(&x, c); break;
        case MLC_OP_KV_STORE: run_kv_store(&x, c); break;
        case MLC_OP_ATTENTION: run_attention(&x, c); break;
        case MLC_OP_SWIGLU:
        case MLC_OP_GEGLU:
        case MLC_OP_SCALE: run_unary(&x, c); break;
        case MLC_OP_ADD:
        case MLC_OP_MUL:
        case MLC_OP_GATHER: run_binary(&x, c); break;
        default: failf(&x, "no case runner for op %d", (int)c->op); break;
        }
    }
    if (!x.failed) {
        r->nmse = x.norm > 0 ? x.err / x.norm : x.err == 0 ? 0.0 : INFINITY;
        if (r->nmse <= r->threshold)
            r->verdict = MLC_CONF_PASS;
        else
            failf(&x, "NMSE %.3g > threshold %.3g", r->nmse, r->threshold);
    } else if (x.norm > 0) {
        r->nmse = x.err / x.norm;
    }
    for (int i = x.n_w - 1; i >= 0; i--)
        b->vt->release_weights(b->ctx, &x.w[i]);
    for (int i = 0; i < x.n_bufs; i++)
        b->vt->buffer_free(b->ctx, x.bufs[i]);
    b->vt->sync(b->ctx, NULL); /* leave no sticky error behind for the next case */
    for (int i = 0; i < x.n_host; i++)
        free(x.host[i]);
    free(x.host);
}
