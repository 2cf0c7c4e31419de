/* tests/test_cpu_ops.c: every op of every backend and device this build has against the
 * float64 reference (kernels/ref), through the backend interface only (buffers and tensor
 * views), on random inputs over awkward shapes (1, 7, 33, non-power-of-two block multiples,
 * batch 1 and > 1). The CPU runs under every kernel set this CPU has (scalar, avx2, avx512)
 * and with 1 and 2 threads; other backends on each of their devices with their defaults.
 *
 * Each case draws its inputs from its own seed, derived from a base seed (MLC_TEST_SEED=<n>
 * sets it; MLC_TEST_SEED=time picks a fresh one); failures print both, so any failure can be
 * replayed. Error is NMSE = sum (out - ref)^2 / sum ref^2, against the thresholds of the one
 * table below. Any NaN or Inf the reference lacks fails. Outputs live between canary floats
 * (and start out filled with them), so an out-of-bounds write or an element never written
 * is caught. MLC_OPS_REPORT=1 prints the worst NMSE of each op and type. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "../kernels/cpu/vecdot.h"
#include "../conformance/tolerance.h"
#include "../kernels/ref/ref.h"
#include "backend.h"
#include "mlc/backend_info.h"
#include "mlc/quant.h"

/* ---- thresholds ------------------------------------------------------------------------

   The one table of conformance/tolerance.c (op x type -> largest NMSE), whose comments give
   the worst NMSE measured here and where the error comes from. To measure again: build this
   file with -DCPU_OPS_MEASURE and run with MLC_OPS_REPORT=1 over many MLC_TEST_SEED values. */

static double worst[MLC_OP_COUNT][MLC_TYPE_COUNT]; /* worst NMSE seen, for MLC_OPS_REPORT */

static void reset_worst(void)
{
    for (int o = 0; o < MLC_OP_COUNT; o++)
        for (int t = 0; t < MLC_TYPE_COUNT; t++)
            worst[o][t] = -1;
}

/* The op of a test's op name ("add_bias" is add with a broadcast row). */
static mlc_op op_of(const char *name)
{
    mlc_op op;
    if (!strcmp(name, "add_bias"))
        return MLC_OP_ADD;
    cr_assert(mlc_op_from_name(name, &op), "no op %s", name);
    return op;
}

static double threshold(const char *name, uint32_t type)
{
    const double t = mlc_conf_threshold(op_of(name), type);
    cr_assert(t >= 0, "no threshold for op %s type %s", name, mlc_type_name(type));
    return t;
}

static void report(void)
{
    if (!getenv("MLC_OPS_REPORT"))
        return;
    for (int o = 0; o < MLC_OP_COUNT; o++)
        for (int t = 0; t < MLC_TYPE_COUNT; t++)
            if (worst[o][t] >= 0)
                fprintf(stderr, "cpu_ops: %-9s %-5s worst NMSE %.3g (threshold %.3g)\n",
                        mlc_op_name((mlc_op)o), mlc_type_name((uint32_t)t), worst[o][t],
                        mlc_conf_threshold((mlc_op)o, (uint32_t)t));
}

/* ---- random numbers -------------------------------------------------------------------- */

static void fill_gauss(uint64_t *s, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)mlc_rng_gauss(s) * scale;
}

/* ---- the backends under test ----------------------------------------------------------- */

#define MAX_CFG 16

typedef struct cfg {
    mlc_backend b;
    char name[64]; /* "cpu:0 isa=avx2 threads=2" */
} cfg;

static cfg cfgs[MAX_CFG];
static int n_cfgs;
static uint64_t base_seed;
static uint64_t case_no;
static const char *test_name;

static uint64_t parse_seed(void)
{
    const char *e = getenv("MLC_TEST_SEED");
    if (!e || !*e)
        return 0x6d6c632d6f707321ull; /* fixed default: CI runs are reproducible */
    if (!strcmp(e, "time")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
        return mlc_rng_next(&s);
    }
    return strtoull(e, NULL, 0);
}

static void open_cfg(const mlc_backend_vt *vt, const mlc_backend_params *p, const char *name)
{
    cr_assert_lt(n_cfgs, MAX_CFG);
    cfg *c = &cfgs[n_cfgs];
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open_vt(vt, p, &c->b, &err), MLC_OK, "open %s: %s", name, err.msg);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (p->isa) {
        char desc[128];
        c->b.vt->describe(c->b.ctx, desc, sizeof desc);
        cr_assert(strstr(desc, p->isa), "isa %s asked for but the backend runs: %s", p->isa, desc);
    }
    n_cfgs++;
}

/* Opens every device of every built backend; the CPU for every ISA x {1, 2} threads. */
static void setup(const char *name)
{
    test_name = name;
    base_seed = parse_seed();
    case_no = 0;
    reset_worst();
    n_cfgs = 0;
    for (int bi = 0; bi < mlc_backend_count(); bi++) {
        const mlc_backend_vt *vt;
        if (!mlc_backend_built(bi) || mlc_backend_vt_get(mlc_backend_name(bi), &vt, NULL))
            continue;
        for (int dev = 0; dev < vt->device_count(); dev++) {
            char label[64];
            if (strcmp(vt->name, "cpu")) {
                snprintf(label, sizeof label, "%s:%d", vt->name, dev);
                open_cfg(vt, &(mlc_backend_params){.device = dev}, label);
                continue;
            }
            char isas[64];
            snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
            char *save = NULL;
            for (char *isa = strtok_r(isas, " ", &save); isa; isa = strtok_r(NULL, " ", &save))
                for (int threads = 1; threads <= 2; threads++) {
                    snprintf(label, sizeof label, "cpu:%d isa=%s threads=%d", dev, isa, threads);
                    open_cfg(vt, &(mlc_backend_params){.device = dev, .n_threads = threads, .isa = isa},
                             label);
                }
        }
    }
    cr_assert_gt(n_cfgs, 0);
}

static void teardown(void)
{
    for (int i = 0; i < n_cfgs; i++)
        mlc_backend_close(&cfgs[i].b);
    n_cfgs = 0;
    report();
}

/* The seed of the next case. */
static uint64_t next_case_seed(void)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the test name */
    for (const char *p = test_name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t s = base_seed ^ h ^ (++case_no * 0xD1B54A32D192ED03ull);
    return mlc_rng_next(&s);
}

/* ---- device buffers with guards -------------------------------------------------------- */

#define GUARD 16 /* canary floats on each side: 64 bytes keep the output 64-byte aligned */
#define CANARY 0x7FA5A5A5u /* a signalling NaN: reading it as data shows up too */

static mlc_buffer *d_alloc(const cfg *c, size_t bytes)
{
    mlc_buffer *b = NULL;
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->buffer_alloc(c->b.ctx, bytes, &b, &err), MLC_OK, "%s: alloc %zu bytes: %s",
                 c->name, bytes, err.msg);
    return b;
}

static void d_upload(const cfg *c, mlc_buffer *b, size_t offset, const void *host, size_t bytes)
{
    cr_assert_eq(c->b.vt->upload(c->b.ctx, b, offset, host, bytes), MLC_OK, "%s: upload", c->name);
}

/* An input [ne0, ne1, ne2] of type in its own buffer, filled from host. */
static mlc_tensor d_in(const cfg *c, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                       int64_t ne2)
{
    mlc_tensor t = mlc_tensor_make(NULL, 0, type, ne0, ne1, ne2);
    const size_t bytes = mlc_tensor_nbytes(&t);
    t.buf = d_alloc(c, bytes);
    d_upload(c, t.buf, 0, host, bytes);
    return t;
}

static mlc_tensor d_weights(const cfg *c, const void *host, uint32_t type, int64_t ne0, int64_t ne1)
{
    mlc_tensor t;
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->weights(c->b.ctx, host, type, ne0, ne1, &t, &err), MLC_OK,
                 "%s: weights: %s", c->name, err.msg);
    return t;
}

/* True when c's backend declines op on this type and shape (a GPU backend without kernels
 * for a weight type): the case is not run there. The CPU backend declines nothing. */
static bool declines(const cfg *c, mlc_op op, uint32_t type, int64_t ne0, int64_t ne1)
{
    const int64_t shape[4] = {ne0, ne1, 0, 0};
    if (c->b.vt->supports(c->b.ctx, op, type, shape))
        return false;
    cr_assert(strcmp(c->b.vt->name, "cpu"), "%s declines %s %s", c->name, mlc_op_name(op),
              mlc_type_name(type));
    return true;
}

static void d_free(const cfg *c, mlc_tensor t)
{
    c->b.vt->buffer_free(c->b.ctx, t.buf);
}

static float *canaries(int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    cr_assert(h);
    const uint32_t bits = CANARY;
    for (int64_t i = 0; i < n; i++)
        memcpy(&h[i], &bits, 4);
    return h;
}

/* Floats a view spans (a cache layer of an odd F16 count ends in 2 bytes of padding). */
static int64_t span_floats(const mlc_tensor *t)
{
    return (int64_t)((mlc_tensor_nbytes(t) + 3) / 4);
}

/* A view of type [ne0, ne1, ne2] between guards in its own buffer; initial holds the bytes
 * it starts with (NULL: all canaries, so an element the op never writes stays NaN and
 * fails). */
static mlc_tensor d_guarded(const cfg *c, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                            const void *initial)
{
    mlc_tensor t = mlc_tensor_make(NULL, GUARD * sizeof(float), type, ne0, ne1, ne2);
    const int64_t nf = span_floats(&t);
    float *h = canaries(nf + 2 * GUARD);
    if (initial)
        memcpy(h + GUARD, initial, mlc_tensor_nbytes(&t));
    t.buf = d_alloc(c, (size_t)(nf + 2 * GUARD) * sizeof(float));
    d_upload(c, t.buf, 0, h, (size_t)(nf + 2 * GUARD) * sizeof(float));
    free(h);
    return t;
}

/* An F32 output [ne0, ne1, ne2] between guards. */
static mlc_tensor d_out(const cfg *c, int64_t ne0, int64_t ne1, int64_t ne2, const float *initial)
{
    return d_guarded(c, MLC_TYPE_F32, ne0, ne1, ne2, initial);
}

/* Syncs, then downloads the floats d spans into host after checking that both guards are
 * intact. */
static void d_fetch(const cfg *c, mlc_tensor d, float *host, const char *desc)
{
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->sync(c->b.ctx, &err), MLC_OK, "%s: sync: %s", desc, err.msg);
    const int64_t n = span_floats(&d);
    float *h = malloc((size_t)(n + 2 * GUARD) * sizeof *h);
    cr_assert(h);
    cr_assert_eq(c->b.vt->download(c->b.ctx, h, d.buf, d.offset - GUARD * sizeof(float),
                                   (size_t)(n + 2 * GUARD) * sizeof(float)),
                 MLC_OK, "%s: download", desc);
    for (int64_t i = 0; i < 2 * GUARD; i++) {
        const int64_t at = i < GUARD ? i : n + i;
        uint32_t bits;
        memcpy(&bits, &h[at], 4);
        cr_assert_eq(bits, CANARY, "%s: write out of bounds at output[%lld] (0x%08x)", desc,
                     (long long)(at - GUARD), bits);
    }
    memcpy(host, h + GUARD, (size_t)n * sizeof *h);
    free(h);
}

/* ---- comparison ------------------------------------------------------------------------ */

/* Sums of one comparison, possibly pooled over repetitions of a case (see matmul_case). */
typedef struct acc {
    double err, norm;   /* sum (out - ref)^2, sum ref^2 */
    double diff;        /* the largest |out - ref| seen, at: */
    double got, want;
    int64_t at;
    int rep;
} acc;

/* Adds n outputs to a; any non-finite output the reference lacks fails at once. */
static void acc_add(acc *a, const char *desc, int rep, const float *out, const double *ref,
                    int64_t n)
{
    const int64_t bad = mlc_ref_first_nonfinite(out, ref, n);
    char where[48] = "";
    if (rep >= 0)
        snprintf(where, sizeof where, " of repetition %d", rep);
    cr_assert_eq(bad, -1, "%s: non-finite output[%lld]%s = %g where the reference has %g", desc,
                 (long long)bad, where, bad >= 0 ? (double)out[bad] : 0.0,
                 bad >= 0 ? ref[bad] : 0.0);
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)out[i] - ref[i];
        a->err += d * d;
        a->norm += ref[i] * ref[i];
        if (!(fabs(d) <= a->diff)) {
            a->diff = fabs(d);
            a->got = out[i];
            a->want = ref[i];
            a->at = i;
            a->rep = rep;
        }
    }
}

/* NMSE of a against the threshold of (op, type). */
static void acc_check(const acc *a, const char *op, uint32_t type, const char *desc)
{
    const double max = threshold(op, type);
    const double e = a->norm > 0 ? a->err / a->norm : a->err == 0 ? 0.0 : INFINITY;
    double *w = &worst[op_of(op)][type];
    if (e > *w || isnan(e))
        *w = e;
#ifdef CPU_OPS_MEASURE /* defined only when measuring the thresholds: report, never fail */
    if (getenv("MLC_OPS_REPORT"))
        fprintf(stderr, "cpu_ops case: %.3g %s\n", e, desc);
#else
    char where[48] = "";
    if (a->rep >= 0)
        snprintf(where, sizeof where, " of repetition %d", a->rep);
    cr_assert(e <= max,
              "%s: NMSE %.3g > threshold %.3g (largest difference at [%lld]%s: got %.9g, "
              "expected %.9g)",
              desc, e, max, (long long)a->at, where, a->got, a->want);
#endif
}

static void expect_close(const char *op, uint32_t type, const char *desc, const float *out,
                         const double *ref, int64_t n)
{
    acc a = {0};
    acc_add(&a, desc, -1, out, ref, n);
    acc_check(&a, op, type, desc);
}

/* "op ... isa=avx2 threads=2 seed=0x.. (base seed 0x..)" */
static void describe(char *buf, size_t cap, const cfg *c, uint64_t seed, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void describe(char *buf, size_t cap, const cfg *c, uint64_t seed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap)
        return;
    snprintf(buf + k, cap - (size_t)k,
             " on %s case seed=0x%016llx (rerun with MLC_TEST_SEED=0x%016llx)",
             c->name, (unsigned long long)seed, (unsigned long long)base_seed);
}

static double *dalloc(int64_t n)
{
    double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    cr_assert(p);
    return p;
}

static float *falloc(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    cr_assert(p);
    return p;
}

static const int64_t BATCHES[] = {1, 3, 17};
#define N_BATCHES 3

/* ---- matmul and get_rows --------------------------------------------------------------- */

/* n_out rows of n_in random weights in type: Gaussian, each row with its own scale (as in
 * real weight matrices), a few rows all zero (degenerate blocks). */
static uint8_t *random_weights(uint64_t *s, uint32_t type, int64_t n_in, int64_t n_out)
{
    const size_t rb = mlc_type_row_bytes(type, n_in);
    cr_assert_gt(rb, 0);
    uint8_t *w = malloc(rb * (size_t)n_out);
    float *row = falloc(n_in);
    cr_assert(w);
    for (int64_t r = 0; r < n_out; r++) {
        const float scale = (float)exp(0.5 * (float)mlc_rng_gauss(s)) * 0.05f;
        fill_gauss(s, row, n_in, scale);
        if (n_out > 4 && r == n_out / 2)
            memset(row, 0, (size_t)n_in * sizeof *row);
        mlc_quantize_row((mlc_type)type, row, w + (size_t)r * rb, n_in);
    }
    free(row);
    return w;
}

/* The NMSE of a handful of outputs is the ratio of two small noisy sums (one output near 0
 * by cancellation gives any NMSE at all), and with quantized activations every output of a
 * token shares that token's rounding (its block maxima), so few tokens give a noisy error
 * too. A case is therefore repeated on fresh inputs of the same shape until it has pooled
 * at least 64 outputs and 16 activation rows into its NMSE, which then varies by less than
 * 3x from case to case. */
static int matmul_reps(int64_t n, int64_t n_out)
{
    const int64_t by_out = (64 + n * n_out - 1) / (n * n_out), by_row = (16 + n - 1) / n;
    return (int)(by_out > by_row ? by_out : by_row);
}

static void matmul_case(uint32_t type, int64_t n_in, int64_t n_out, int64_t n)
{
    const uint64_t seed = next_case_seed();
    uint64_t s = seed;
    const int reps = matmul_reps(n, n_out);
    /* All repetitions' inputs first, then each backend runs them back to back (keeps its
     * thread pool warm: switching pools at every call costs each one its spin-wait). */
    uint8_t **w = calloc((size_t)reps, sizeof *w);
    float **x = calloc((size_t)reps, sizeof *x);
    double **ref = calloc((size_t)reps, sizeof *ref);
    cr_assert(w && x && ref);
    /* fresh weights until 64 weight rows are pooled; the further repetitions reuse them */
    const int wsets = (int)((64 + n_out - 1) / n_out) < reps ? (int)((64 + n_out - 1) / n_out) : reps;
    for (int rep = 0; rep < reps; rep++) {
        w[rep] = rep < wsets ? random_weights(&s, type, n_in, n_out) : w[rep % wsets];
        x[rep] = falloc(n * n_in);
        fill_gauss(&s, x[rep], n * n_in, 1.0f);
        if (n > 1 && mlc_rng_below(&s, 2)) /* an all-zero activation row (amax = 0 blocks) */
            memset(x[rep] + n_in * mlc_rng_below(&s, n), 0, (size_t)n_in * sizeof(float));
        ref[rep] = dalloc(n * n_out);
        cr_assert(mlc_ref_matmul(type, w[rep], n_in, n_out, x[rep], n, ref[rep]));
    }
    float *got = falloc(n * n_out);
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        if (declines(c, MLC_OP_MATMUL, type, n_in, n_out))
            continue;
        char desc[512];
        describe(desc, sizeof desc, c, seed,
                 "matmul %s n_in=%lld n_out=%lld n=%lld (%d repetition%s)", mlc_type_name(type),
                 (long long)n_in, (long long)n_out, (long long)n, reps, reps > 1 ? "s" : "");
        acc a = {0};
        for (int rep = 0; rep < reps; rep++) {
            mlc_tensor dw = d_weights(c, w[rep], type, n_in, n_out);
            mlc_tensor dx = d_in(c, x[rep], MLC_TYPE_F32, n_in, n, 1);
            mlc_tensor dy = d_out(c, n_out, n, 1, NULL);
            c->b.vt->matmul(c->b.ctx, dw, dx, dy);
            d_fetch(c, dy, got, desc);
            acc_add(&a, desc, rep, got, ref[rep], n * n_out);
            d_free(c, dy);
            d_free(c, dx);
            c->b.vt->release_weights(c->b.ctx, &dw);
        }
        acc_check(&a, "matmul", type, desc);
    }
    free(got);
    for (int rep = 0; rep < reps; rep++) {
        free(ref[rep]);
        free(x[rep]);
        if (rep < wsets)
            free(w[rep]);
    }
    free(ref);
    free(x);
    free(w);
}

static void matmul_sweep(uint32_t type, const int64_t *n_ins, int n_n_ins)
{
    static const int64_t n_outs[] = {1, 7, 33, 130};
    for (int a = 0; a < n_n_ins; a++)
        for (int o = 0; o < 4; o++)
            for (int b = 0; b < N_BATCHES; b++)
                matmul_case(type, n_ins[a], n_outs[o], BATCHES[b]);
}

/* Any row length for the plain float types; block multiples for the quantized ones. */
static const int64_t FLOAT_ROWS[] = {1, 7, 33, 257, 1024};
static const int64_t Q32_ROWS[] = {32, 96, 288, 768};
static const int64_t QK_ROWS[] = {256, 768, 2304};

Test(cpu_ops, matmul_f32)
{
    setup("matmul_f32");
    matmul_sweep(MLC_TYPE_F32, FLOAT_ROWS, 5);
    teardown();
}

Test(cpu_ops, matmul_f16)
{
    setup("matmul_f16");
    matmul_sweep(MLC_TYPE_F16, FLOAT_ROWS, 5);
    teardown();
}

Test(cpu_ops, matmul_bf16)
{
    setup("matmul_bf16");
    matmul_sweep(MLC_TYPE_BF16, FLOAT_ROWS, 5);
    teardown();
}

Test(cpu_ops, matmul_q8_0)
{
    setup("matmul_q8_0");
    matmul_sweep(MLC_TYPE_Q8_0, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_q4_0)
{
    setup("matmul_q4_0");
    matmul_sweep(MLC_TYPE_Q4_0, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_q5_0)
{
    setup("matmul_q5_0");
    matmul_sweep(MLC_TYPE_Q5_0, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_q4_1)
{
    setup("matmul_q4_1");
    matmul_sweep(MLC_TYPE_Q4_1, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_q5_1)
{
    setup("matmul_q5_1");
    matmul_sweep(MLC_TYPE_Q5_1, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_q2_k)
{
    setup("matmul_q2_k");
    matmul_sweep(MLC_TYPE_Q2_K, QK_ROWS, 3);
    teardown();
}

Test(cpu_ops, matmul_q3_k)
{
    setup("matmul_q3_k");
    matmul_sweep(MLC_TYPE_Q3_K, QK_ROWS, 3);
    teardown();
}

Test(cpu_ops, matmul_q5_k)
{
    setup("matmul_q5_k");
    matmul_sweep(MLC_TYPE_Q5_K, QK_ROWS, 3);
    teardown();
}

Test(cpu_ops, matmul_iq4_nl)
{
    setup("matmul_iq4_nl");
    matmul_sweep(MLC_TYPE_IQ4_NL, Q32_ROWS, 4);
    teardown();
}

Test(cpu_ops, matmul_iq4_xs)
{
    setup("matmul_iq4_xs");
    matmul_sweep(MLC_TYPE_IQ4_XS, QK_ROWS, 3);
    teardown();
}

Test(cpu_ops, matmul_q4_k)
{
    setup("matmul_q4_k");
    matmul_sweep(MLC_TYPE_Q4_K, QK_ROWS, 3);
    teardown();
}

Test(cpu_ops, matmul_q6_k)
{
    setup("matmul_q6_k");
    matmul_sweep(MLC_TYPE_Q6_K, QK_ROWS, 3);
    teardown();
}

static void get_rows_case(uint32_t type, int64_t row_len, int64_t n)
{
    const uint64_t seed = next_case_seed();
    uint64_t s = seed;
    const int64_t rows = 50;
    uint8_t *table = random_weights(&s, type, row_len, rows);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    cr_assert(ids);
    for (int64_t i = 0; i < n; i++) /* repeats allowed; the first and last rows included */
        ids[i] = i == 0 ? rows - 1 : i == 1 ? 0 : (int32_t)mlc_rng_below(&s, rows);
    double *ref = dalloc(n * row_len);
    cr_assert(mlc_ref_get_rows(type, table, row_len, ids, n, ref));
    float *got = falloc(n * row_len);
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        if (declines(c, MLC_OP_GET_ROWS, type, row_len, rows))
            continue;
        char desc[512];
        describe(desc, sizeof desc, c, seed, "get_rows %s row_len=%lld n=%lld",
                 mlc_type_name(type), (long long)row_len, (long long)n);
        mlc_tensor dt = d_weights(c, table, type, row_len, rows);
        mlc_tensor did = d_in(c, ids, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dy = d_out(c, row_len, n, 1, NULL);
        c->b.vt->get_rows(c->b.ctx, dt, did, dy);
        d_fetch(c, dy, got, desc);
        expect_close("get_rows", type, desc, got, ref, n * row_len);
        d_free(c, dy);
        d_free(c, did);
        c->b.vt->release_weights(c->b.ctx, &dt);
    }
    free(got);
    free(ref);
    free(ids);
    free(table);
}

Test(cpu_ops, get_rows)
{
    setup("get_rows");
    static const uint32_t types[] = {MLC_TYPE_F32,  MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                     MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                                     MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                                     MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
    for (int t = 0; t < (int)(sizeof types / sizeof types[0]); t++) {
        const int64_t bs = mlc_type_block_size(types[t]);
        const int64_t lens[] = {bs == 1 ? 1 : bs, bs == 1 ? 7 : 3 * bs, bs == 1 ? 33 : 9 * bs,
                                bs == 1 ? 896 : (bs == 32 ? 28 : 3) * bs};
        for (int l = 0; l < 4; l++)
            for (int b = 0; b < N_BATCHES; b++)
                get_rows_case(types[t], lens[l], BATCHES[b]);
    }
    teardown();
}

/* ---- rms_norm, rope -------------------------------------------------------------------- */

Test(cpu_ops, rms_norm)
{
    setup("rms_norm");
    static const int64_t dims[] = {1, 7, 33, 896, 4096};
    for (int di = 0; di < 5; di++) {
        for (int b = 0; b < N_BATCHES; b++) {
            const int64_t dim = dims[di], n = BATCHES[b];
            const uint64_t seed = next_case_seed();
            uint64_t s = seed;
            const float eps = mlc_rng_below(&s, 2) ? 1e-5f : 1e-6f;
            float *x = falloc(n * dim), *w = falloc(dim);
            /* rows of very different magnitudes; one all zero when n > 1 */
            for (int64_t t = 0; t < n; t++)
                fill_gauss(&s, x + t * dim, dim, (float)exp(2.0 * (float)mlc_rng_gauss(&s)));
            if (n > 1)
                memset(x + dim, 0, (size_t)dim * sizeof *x);
            for (int64_t i = 0; i < dim; i++)
                w[i] = 1.0f + 0.3f * (float)mlc_rng_gauss(&s);
            double *ref = dalloc(n * dim);
            mlc_ref_rms_norm(x, w, n, dim, eps, ref);
            float *got = falloc(n * dim);
            for (int i = 0; i < n_cfgs; i++) {
                const cfg *c = &cfgs[i];
                char desc[512];
                describe(desc, sizeof desc, c, seed, "rms_norm dim=%lld n=%lld eps=%g",
                         (long long)dim, (long long)n, (double)eps);
                mlc_tensor dx = d_in(c, x, MLC_TYPE_F32, dim, n, 1);
                mlc_tensor dw = d_in(c, w, MLC_TYPE_F32, dim, 1, 1);
                mlc_tensor dy = d_out(c, dim, n, 1, NULL);
                c->b.vt->rms_norm(c->b.ctx, dx, dw, eps, dy);
                d_fetch(c, dy, got, desc);
                expect_close("rms_norm", MLC_TYPE_F32, desc, got, ref, n * dim);
                d_free(c, dy);
                d_free(c, dw);
                d_free(c, dx);
            }
            free(got);
            free(ref);
            free(w);
            free(x);
        }
    }
    teardown();
}

static void rope_case(bool neox, int n_head, int head_dim, int n_rot, float base, int64_t n)
{
    const uint64_t seed = next_case_seed();
    uint64_t s = seed;
    const int64_t len = n * n_head * head_dim;
    float *x = falloc(len);
    fill_gauss(&s, x, len, 1.0f);
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    cr_assert(pos);
    /* position 0 (identity), small, mid and long-context positions */
    static const int32_t fixed[] = {0, 1, 6, 32767, 4095, 130};
    for (int64_t t = 0; t < n; t++)
        pos[t] = t < 6 ? fixed[(t + (n == 1 ? (int64_t)(seed % 6) : 0)) % 6]
                       : (int32_t)mlc_rng_below(&s, 32768);
    double *ref = dalloc(len);
    mlc_ref_rope(x, pos, NULL, n, n_head, head_dim, n_rot, base, neox, ref);
    float *got = falloc(len);
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        char desc[512];
        describe(desc, sizeof desc, c, seed,
                 "rope %s n_head=%d head_dim=%d n_rot=%d base=%g n=%lld", neox ? "neox" : "normal",
                 n_head, head_dim, n_rot, (double)base, (long long)n);
        mlc_tensor dpos = d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dx = d_out(c, head_dim, n_head, n, x); /* in place */
        c->b.vt->rope(c->b.ctx, dx, dpos, MLC_ROPE_NO_FF, n_rot, base, neox);
        d_fetch(c, dx, got, desc);
        expect_close("rope", MLC_TYPE_F32, desc, got, ref, len);
        d_free(c, dx);
        d_free(c, dpos);
    }
    free(got);
    free(ref);
    free(pos);
    free(x);
}

static void rope_sweep(bool neox)
{
    static const int hds[] = {32, 64, 128};
    static const int heads[] = {1, 7};
    for (int h = 0; h < 3; h++)
        for (int nh = 0; nh < 2; nh++)
            for (int part = 0; part < 2; part++) /* full and partial (n_rot = head_dim / 2) */
                for (int b = 0; b < N_BATCHES; b++)
                    rope_case(neox, heads[nh], hds[h], part ? hds[h] / 2 : hds[h],
                              (b + h) % 2 ? 1000000.0f : 10000.0f, BATCHES[b]);
}

Test(cpu_ops, rope_normal)
{
    setup("rope_normal");
    rope_sweep(false);
    teardown();
}

Test(cpu_ops, rope_neox)
{
    setup("rope_neox");
    rope_sweep(true);
    teardown();
}

/* ---- kv_store, attention --------------------------------------------------------------- */

static size_t kv_elem(uint32_t type)
{
    return type == MLC_TYPE_F16 ? 2 : 4;
}

/* A host cache image of n_elem elements, every one NaN (F16 0x7E00 / F32 canary). */
static void *nan_cache(uint32_t type, int64_t n_elem)
{
    uint8_t *h = malloc((size_t)n_elem * kv_elem(type));
    cr_assert(h);
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

/* A cache layer [kv_dim, n_ctx, n_slots] on the device between guards, initialized to NaN. */
static mlc_tensor d_cache(const cfg *c, uint32_t type, int64_t kv_dim, int64_t n_ctx, int64_t n_slots)
{
    void *nan = nan_cache(type, kv_dim * n_ctx * n_slots);
    mlc_tensor t = d_guarded(c, type, kv_dim, n_ctx, n_slots, nan);
    free(nan);
    return t;
}

/* Downloads a cache layer (guards and padding checked) widened to float. */
static void d_fetch_cache(const cfg *c, mlc_tensor d, float *host, const char *desc)
{
    const int64_t n_elem = mlc_tensor_nelem(&d);
    const size_t bytes = mlc_tensor_nbytes(&d);
    const int64_t nf = span_floats(&d);
    float *raw = falloc(nf);
    d_fetch(c, d, raw, desc);
    const uint32_t canary = CANARY;
    for (size_t b = bytes; b < (size_t)nf * 4; b++)
        cr_assert_eq(((const uint8_t *)raw)[b], ((const uint8_t *)&canary)[b % 4],
                     "%s: write past the end of the cache (byte %zu)", desc, b);
    if (d.type == MLC_TYPE_F32) {
        memcpy(host, raw, (size_t)n_elem * sizeof *host);
    } else {
        for (int64_t i = 0; i < n_elem; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)raw + 2 * i, 2);
            host[i] = mlc_fp16_to_fp32(h);
        }
    }
    free(raw);
}

static void kv_store_case(uint32_t type, int64_t kv_dim, int64_t n)
{
    const uint64_t seed = next_case_seed();
    uint64_t s = seed;
    const int n_slots = 3;
    const int64_t n_ctx = 23, cells = n_slots * n_ctx, n_elem = cells * kv_dim;
    /* n distinct cells, in random order */
    int32_t *slot = malloc((size_t)n * sizeof *slot), *pos = malloc((size_t)n * sizeof *pos);
    int32_t *cell = malloc((size_t)cells * sizeof *cell);
    cr_assert(slot && pos && cell);
    for (int64_t i = 0; i < cells; i++)
        cell[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = i + mlc_rng_below(&s, cells - i);
        const int32_t tmp = cell[i];
        cell[i] = cell[j];
        cell[j] = tmp;
        slot[i] = (int32_t)(cell[i] / n_ctx);
        pos[i] = (int32_t)(cell[i] % n_ctx);
    }
    float *k = falloc(n * kv_dim), *v = falloc(n * kv_dim);
    fill_gauss(&s, k, n * kv_dim, 1.0f);
    fill_gauss(&s, v, n * kv_dim, 3.0f);
    /* reference: the written cells hold the f32 inputs; the others keep their NaN */
    double *refk = dalloc(n * kv_dim), *refv = dalloc(n * kv_dim);
    for (int64_t i = 0; i < n * kv_dim; i++) {
        refk[i] = k[i];
        refv[i] = v[i];
    }
    float *gotk = falloc(n_elem), *gotv = falloc(n_elem);
    float *wk = falloc(n * kv_dim), *wv = falloc(n * kv_dim);
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        char desc[512];
        describe(desc, sizeof desc, c, seed, "kv_store %s kv_dim=%lld n=%lld", mlc_type_name(type),
                 (long long)kv_dim, (long long)n);
        mlc_tensor dk = d_in(c, k, MLC_TYPE_F32, kv_dim, n, 1);
        mlc_tensor dv = d_in(c, v, MLC_TYPE_F32, kv_dim, n, 1);
        mlc_tensor dslot = d_in(c, slot, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dpos = d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor kc = d_cache(c, type, kv_dim, n_ctx, n_slots);
        mlc_tensor vc = d_cache(c, type, kv_dim, n_ctx, n_slots);
        c->b.vt->kv_store(c->b.ctx, dk, dv, kc, vc, dslot, dpos);
        d_fetch_cache(c, kc, gotk, desc);
        d_fetch_cache(c, vc, gotv, desc);
        /* every cell not written is still NaN */
        for (int64_t ce = 0; ce < cells; ce++) {
            bool written = false;
            for (int64_t t = 0; t < n; t++)
                written |= cell[t] == ce;
            if (written)
                continue;
            for (int64_t d = 0; d < kv_dim; d++)
                cr_assert(isnan(gotk[ce * kv_dim + d]) && isnan(gotv[ce * kv_dim + d]),
                          "%s: cell (slot %lld, pos %lld) was not to be written", desc,
                          (long long)(ce / n_ctx), (long long)(ce % n_ctx));
        }
        for (int64_t t = 0; t < n; t++) {
            memcpy(wk + t * kv_dim, gotk + cell[t] * kv_dim, (size_t)kv_dim * sizeof *wk);
            memcpy(wv + t * kv_dim, gotv + cell[t] * kv_dim, (size_t)kv_dim * sizeof *wv);
        }
        expect_close("kv_store", type, desc, wk, refk, n * kv_dim);
        expect_close("kv_store", type, desc, wv, refv, n * kv_dim);
        d_free(c, vc);
        d_free(c, kc);
        d_free(c, dpos);
        d_free(c, dslot);
        d_free(c, dv);
        d_free(c, dk);
    }
    free(wv);
    free(wk);
    free(gotv);
    free(gotk);
    free(refv);
    free(refk);
    free(v);
    free(k);
    free(cell);
    free(pos);
    free(slot);
}

Test(cpu_ops, kv_store)
{
    setup("kv_store");
    static const int64_t dims[] = {1, 32, 96, 1024};
    for (int t = 0; t < 2; t++)
        for (int d = 0; d < 4; d++)
            for (int b = 0; b < N_BATCHES; b++)
                kv_store_case(t ? MLC_TYPE_F16 : MLC_TYPE_F32, dims[d], BATCHES[b]);
    teardown();
}

/* Attention over a cache of 3 slots x 77 positions. The cells of a slot are stored up to the
 * highest position any token of the batch has there; every other cell is NaN, so reading
 * past pos, or another slot, shows up as a NaN. mode 0: tokens spread over the slots at
 * positions whose pos + 1 is 1, 7, 33, 47, 61, 77...; mode 1: a prefill chunk (consecutive
 * positions of one slot, so later positions are stored and must be masked); mode 2: as 0
 * with queries 4x larger (peaky softmax). */
static void attention_case(uint32_t type, int head_dim, int n_head, int n_kv_head, int64_t n,
                           int mode, int32_t window, float softcap)
{
    const uint64_t seed = next_case_seed();
    uint64_t s = seed;
    const int n_slots = 3;
    const int64_t n_ctx = 77, kv_dim = (int64_t)n_kv_head * head_dim;
    const int64_t n_elem = n_slots * n_ctx * kv_dim, q_len = n * n_head * head_dim;
    const mlc_ref_kv_geom g32 = {MLC_TYPE_F32, n_ctx, kv_dim};
    int32_t *slot = malloc((size_t)n * sizeof *slot), *pos = malloc((size_t)n * sizeof *pos);
    cr_assert(slot && pos);
    static const int32_t spots[] = {0, 6, 32, 46, 60, 76, 12, 1, 20, 58, 36, 70, 2};
    const int64_t first = mode == 1 ? 5 + mlc_rng_below(&s, n_ctx - 5 - n) : 0;
    for (int64_t t = 0; t < n; t++) {
        if (mode == 1) {
            slot[t] = 1;
            pos[t] = (int32_t)(first + t);
        } else {
            slot[t] = (int32_t)((t + (int64_t)(seed % 3)) % n_slots);
            pos[t] = spots[(t + (int64_t)(seed % 13)) % 13];
        }
    }
    int32_t maxpos[3] = {-1, -1, -1};
    for (int64_t t = 0; t < n; t++)
        if (pos[t] > maxpos[slot[t]])
            maxpos[slot[t]] = pos[t];
    /* rows to store: (slot, 0..maxpos[slot]), in random order */
    int64_t n_st = 0;
    for (int i = 0; i < n_slots; i++)
        n_st += maxpos[i] + 1;
    int32_t *st_slot = malloc((size_t)n_st * sizeof *st_slot);
    int32_t *st_pos = malloc((size_t)n_st * sizeof *st_pos);
    cr_assert(st_slot && st_pos);
    for (int64_t i = 0, j = 0; i < n_slots; i++)
        for (int32_t p = 0; p <= maxpos[i]; p++, j++) {
            st_slot[j] = (int32_t)i;
            st_pos[j] = p;
        }
    for (int64_t i = n_st - 1; i > 0; i--) {
        const int64_t j = mlc_rng_below(&s, i + 1);
        int32_t a = st_slot[i];
        st_slot[i] = st_slot[j];
        st_slot[j] = a;
        a = st_pos[i];
        st_pos[i] = st_pos[j];
        st_pos[j] = a;
    }
    float *k = falloc(n_st * kv_dim), *v = falloc(n_st * kv_dim), *q = falloc(q_len);
    fill_gauss(&s, k, n_st * kv_dim, 1.0f);
    fill_gauss(&s, v, n_st * kv_dim, 1.0f);
    fill_gauss(&s, q, q_len, mode == 2 ? 4.0f : 1.0f);
    /* reference: an F32 cache from the same f32 K/V */
    void *rk = nan_cache(MLC_TYPE_F32, n_elem), *rv = nan_cache(MLC_TYPE_F32, n_elem);
    mlc_ref_kv_store(&g32, k, v, rk, rv, st_slot, st_pos, n_st);
    const float scale = 1.0f / sqrtf((float)head_dim);
    const mlc_attn_params ap = {.scale = scale, .window = window, .softcap = softcap};
    const mlc_ref_attn_args ra = {q, rk, rv, slot, pos, n, n_head, n_kv_head, head_dim, ap};
    double *ref = dalloc(q_len);
    cr_assert(mlc_ref_attention(&g32, &ra, ref));
    float *got = falloc(q_len);
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        char desc[512];
        describe(desc, sizeof desc, c, seed,
                 "attention %s head_dim=%d n_head=%d n_kv_head=%d n=%lld mode=%d window=%d softcap=%g",
                 mlc_type_name(type), head_dim, n_head, n_kv_head, (long long)n, mode, window,
                 (double)softcap);
        mlc_tensor dk = d_in(c, k, MLC_TYPE_F32, kv_dim, n_st, 1);
        mlc_tensor dv = d_in(c, v, MLC_TYPE_F32, kv_dim, n_st, 1);
        mlc_tensor dss = d_in(c, st_slot, MLC_TYPE_I32, n_st, 1, 1);
        mlc_tensor dsp = d_in(c, st_pos, MLC_TYPE_I32, n_st, 1, 1);
        mlc_tensor dslot = d_in(c, slot, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dpos = d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dq = d_in(c, q, MLC_TYPE_F32, head_dim, n_head, n);
        mlc_tensor kc = d_cache(c, type, kv_dim, n_ctx, n_slots);
        mlc_tensor vc = d_cache(c, type, kv_dim, n_ctx, n_slots);
        mlc_tensor dout = d_out(c, head_dim, n_head, n, NULL);
        c->b.vt->kv_store(c->b.ctx, dk, dv, kc, vc, dss, dsp);
        c->b.vt->attention(c->b.ctx, dq, kc, vc, dslot, dpos, &ap, dout);
        d_fetch(c, dout, got, desc);
        expect_close("attention", type, desc, got, ref, q_len);
        /* the caches must come through attention unchanged (guards included) */
        float *chk = falloc(n_elem);
        d_fetch_cache(c, kc, chk, desc);
        d_fetch_cache(c, vc, chk, desc);
        free(chk);
        d_free(c, dout);
        d_free(c, vc);
        d_free(c, kc);
        d_free(c, dq);
        d_free(c, dpos);
        d_free(c, dslot);
        d_free(c, dsp);
        d_free(c, dss);
        d_free(c, dv);
        d_free(c, dk);
    }
    free(got);
    free(ref);
    free(rv);
    free(rk);
    free(q);
    free(v);
    free(k);
    free(st_pos);
    free(st_slot);
    free(pos);
    free(slot);
}

static void attention_sweep(uint32_t type)
{
    static const int hds[] = {32, 64, 128};
    static const int gqa[][2] = {{4, 4}, {8, 2}, {4, 1}, {1, 1}}; /* ratios 1, 4, 4, 1 */
    for (int h = 0; h < 3; h++)
        for (int gi = 0; gi < 4; gi++)
            for (int b = 0; b < N_BATCHES; b++)
                for (int mode = 0; mode < 3; mode++)
                    attention_case(type, hds[h], gqa[gi][0], gqa[gi][1], BATCHES[b], mode, 0, 0);
}

Test(cpu_ops, attention_f32)
{
    setup("attention_f32");
    attention_sweep(MLC_TYPE_F32);
    teardown();
}

Test(cpu_ops, attention_f16)
{
    setup("attention_f16");
    attention_sweep(MLC_TYPE_F16);
    teardown();
}

/* Sliding windows (1, 7, 32: positions run to 76, past every window) and logit soft-caps
 * (mode 2's large queries drive the scores into the cap's tanh saturation), head dims up to
 * 256, GQA and MQA. */
static void attention_swa_sweep(uint32_t type)
{
    static const int hds[] = {64, 128, 256};
    static const int gqa[][2] = {{8, 2}, {4, 1}};
    static const int32_t windows[] = {0, 1, 7, 32};
    static const float caps[] = {0, 50.0f, 2.0f};
    for (int h = 0; h < 3; h++)
        for (int gi = 0; gi < 2; gi++)
            for (int w = 0; w < 4; w++)
                for (int cp = 0; cp < 3; cp++)
                    if (windows[w] || caps[cp])
                        attention_case(type, hds[h], gqa[gi][0], gqa[gi][1], BATCHES[(w + cp + h) % N_BATCHES],
                                       (w + cp) % 3, windows[w], caps[cp]);
}

Test(cpu_ops, attention_swa_softcap_f32)
{
    setup("attention_swa_softcap_f32");
    attention_swa_sweep(MLC_TYPE_F32);
    teardown();
}

Test(cpu_ops, attention_swa_softcap_f16)
{
    setup("attention_swa_softcap_f16");
    attention_swa_sweep(MLC_TYPE_F16);
    teardown();
}

/* ---- swiglu, add, add_bias, gather ----------------------------------------------------- */

static const int64_t LENS[] = {1, 7, 33, 1000, 4864};

Test(cpu_ops, swiglu)
{
    setup("swiglu");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = next_case_seed();
        uint64_t s = seed;
        float *gate = falloc(n), *up = falloc(n);
        fill_gauss(&s, gate, n, 3.0f);
        fill_gauss(&s, up, n, 1.0f);
        /* saturated gates: exp(-gate) overflowing float, or vanishing */
        static const float extreme[] = {-100.0f, 100.0f, -1000.0f, 88.0f, -88.0f, 30.0f, -30.0f};
        for (int64_t i = 0; i < n && i < 7; i++)
            if (n > 7)
                gate[mlc_rng_below(&s, n)] = extreme[i];
        double *ref = dalloc(n);
        mlc_ref_swiglu(gate, up, n, ref);
        float *got = falloc(n);
        for (int i = 0; i < n_cfgs; i++) {
            const cfg *c = &cfgs[i];
            char desc[512];
            describe(desc, sizeof desc, c, seed, "swiglu n=%lld", (long long)n);
            mlc_tensor dg = d_in(c, gate, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor du = d_in(c, up, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor dy = d_out(c, n, 1, 1, NULL);
            c->b.vt->swiglu(c->b.ctx, dg, du, dy);
            d_fetch(c, dy, got, desc);
            expect_close("swiglu", MLC_TYPE_F32, desc, got, ref, n);
            d_free(c, dy);
            d_free(c, du);
            d_free(c, dg);
        }
        free(got);
        free(ref);
        free(up);
        free(gate);
    }
    teardown();
}

Test(cpu_ops, geglu)
{
    setup("geglu");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = next_case_seed();
        uint64_t s = seed;
        float *gate = falloc(n), *up = falloc(n);
        fill_gauss(&s, gate, n, 3.0f);
        fill_gauss(&s, up, n, 1.0f);
        /* saturated gates: exp(-gate) overflowing float, or vanishing */
        static const float extreme[] = {-100.0f, 100.0f, -1000.0f, 88.0f, -88.0f, 30.0f, -30.0f};
        for (int64_t i = 0; i < n && i < 7; i++)
            if (n > 7)
                gate[mlc_rng_below(&s, n)] = extreme[i];
        double *ref = dalloc(n);
        mlc_ref_geglu(gate, up, n, ref);
        float *got = falloc(n);
        for (int i = 0; i < n_cfgs; i++) {
            const cfg *c = &cfgs[i];
            char desc[512];
            describe(desc, sizeof desc, c, seed, "geglu n=%lld", (long long)n);
            mlc_tensor dg = d_in(c, gate, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor du = d_in(c, up, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor dy = d_out(c, n, 1, 1, NULL);
            c->b.vt->geglu(c->b.ctx, dg, du, dy);
            d_fetch(c, dy, got, desc);
            expect_close("geglu", MLC_TYPE_F32, desc, got, ref, n);
            d_free(c, dy);
            d_free(c, du);
            d_free(c, dg);
        }
        free(got);
        free(ref);
        free(up);
        free(gate);
    }
    teardown();
}

Test(cpu_ops, add)
{
    setup("add");
    for (int li = 0; li < 5; li++) {
        for (int alias = 0; alias < 2; alias++) { /* out = a + b, and a += b (out aliases a) */
            const int64_t n = LENS[li];
            const uint64_t seed = next_case_seed();
            uint64_t s = seed;
            float *a = falloc(n), *b = falloc(n);
            fill_gauss(&s, a, n, 1.0f);
            fill_gauss(&s, b, n, 0.5f);
            double *ref = dalloc(n);
            mlc_ref_add(a, b, n, n, ref);
            float *got = falloc(n);
            for (int i = 0; i < n_cfgs; i++) {
                const cfg *c = &cfgs[i];
                char desc[512];
                describe(desc, sizeof desc, c, seed, "add n=%lld%s", (long long)n,
                         alias ? " out=a" : "");
                mlc_tensor db = d_in(c, b, MLC_TYPE_F32, n, 1, 1);
                if (alias) {
                    mlc_tensor da = d_out(c, n, 1, 1, a);
                    c->b.vt->add(c->b.ctx, da, db, da);
                    d_fetch(c, da, got, desc);
                    d_free(c, da);
                } else {
                    mlc_tensor da = d_in(c, a, MLC_TYPE_F32, n, 1, 1);
                    mlc_tensor dy = d_out(c, n, 1, 1, NULL);
                    c->b.vt->add(c->b.ctx, da, db, dy);
                    d_fetch(c, dy, got, desc);
                    d_free(c, dy);
                    d_free(c, da);
                }
                expect_close("add", MLC_TYPE_F32, desc, got, ref, n);
                d_free(c, db);
            }
            free(got);
            free(ref);
            free(b);
            free(a);
        }
    }
    teardown();
}

/* add with b one row broadcast over the rows of a (the QKV biases), in place. */
Test(cpu_ops, add_bias)
{
    setup("add_bias");
    static const int64_t dims[] = {1, 7, 33, 896};
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < N_BATCHES; bi++) {
            const int64_t dim = dims[di], n = BATCHES[bi];
            const uint64_t seed = next_case_seed();
            uint64_t s = seed;
            float *x = falloc(n * dim), *bias = falloc(dim);
            fill_gauss(&s, x, n * dim, 1.0f);
            fill_gauss(&s, bias, dim, 0.3f);
            double *ref = dalloc(n * dim);
            mlc_ref_add(x, bias, n * dim, dim, ref);
            float *got = falloc(n * dim);
            for (int i = 0; i < n_cfgs; i++) {
                const cfg *c = &cfgs[i];
                char desc[512];
                describe(desc, sizeof desc, c, seed, "add_bias dim=%lld n=%lld", (long long)dim,
                         (long long)n);
                mlc_tensor db = d_in(c, bias, MLC_TYPE_F32, dim, 1, 1);
                mlc_tensor dx = d_out(c, dim, n, 1, x); /* in place */
                c->b.vt->add(c->b.ctx, dx, db, dx);
                d_fetch(c, dx, got, desc);
                expect_close("add_bias", MLC_TYPE_F32, desc, got, ref, n * dim);
                d_free(c, dx);
                d_free(c, db);
            }
            free(got);
            free(ref);
            free(bias);
            free(x);
        }
    }
    teardown();
}

Test(cpu_ops, gather)
{
    setup("gather");
    static const int64_t dims[] = {1, 7, 33, 896};
    const int64_t src_rows = 20;
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < N_BATCHES; bi++) {
            const int64_t dim = dims[di], n = BATCHES[bi];
            const uint64_t seed = next_case_seed();
            uint64_t s = seed;
            float *x = falloc(src_rows * dim);
            fill_gauss(&s, x, src_rows * dim, 1.0f);
            int32_t *rows = malloc((size_t)n * sizeof *rows);
            cr_assert(rows);
            for (int64_t i = 0; i < n; i++) /* last row first; repeats allowed */
                rows[i] = i == 0 ? (int32_t)src_rows - 1 : (int32_t)mlc_rng_below(&s, src_rows);
            double *ref = dalloc(n * dim);
            mlc_ref_gather(x, rows, n, dim, ref);
            float *got = falloc(n * dim);
            for (int i = 0; i < n_cfgs; i++) {
                const cfg *c = &cfgs[i];
                char desc[512];
                describe(desc, sizeof desc, c, seed, "gather dim=%lld n=%lld", (long long)dim,
                         (long long)n);
                mlc_tensor dx = d_in(c, x, MLC_TYPE_F32, dim, src_rows, 1);
                mlc_tensor dr = d_in(c, rows, MLC_TYPE_I32, n, 1, 1);
                mlc_tensor dy = d_out(c, dim, n, 1, NULL);
                c->b.vt->gather(c->b.ctx, dx, dr, dy);
                d_fetch(c, dy, got, desc);
                expect_close("gather", MLC_TYPE_F32, desc, got, ref, n * dim);
                d_free(c, dy);
                d_free(c, dr);
                d_free(c, dx);
            }
            free(got);
            free(ref);
            free(rows);
            free(x);
        }
    }
    teardown();
}

/* out = a * b, b the same size as a or one row broadcast over a's rows; in place or not. */
Test(cpu_ops, mul)
{
    setup("mul");
    static const int64_t dims[] = {1, 7, 33, 896};
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < N_BATCHES; bi++) {
            for (int bcast = 0; bcast < 2; bcast++) {
                const int64_t dim = dims[di], n = BATCHES[bi], nb = bcast ? dim : n * dim;
                const uint64_t seed = next_case_seed();
                uint64_t s = seed;
                float *a = falloc(n * dim), *b = falloc(nb);
                fill_gauss(&s, a, n * dim, 1.0f);
                fill_gauss(&s, b, nb, 2.0f);
                double *ref = dalloc(n * dim);
                mlc_ref_mul(a, b, n * dim, nb, ref);
                float *got = falloc(n * dim);
                for (int i = 0; i < n_cfgs; i++) {
                    const cfg *c = &cfgs[i];
                    char desc[512];
                    describe(desc, sizeof desc, c, seed, "mul dim=%lld n=%lld%s", (long long)dim,
                             (long long)n, bcast ? " b=[dim] broadcast, in place" : "");
                    mlc_tensor db = d_in(c, b, MLC_TYPE_F32, dim, bcast ? 1 : n, 1);
                    mlc_tensor da = bcast ? d_out(c, dim, n, 1, a) : d_in(c, a, MLC_TYPE_F32, dim, n, 1);
                    mlc_tensor dy = bcast ? da : d_out(c, dim, n, 1, NULL);
                    c->b.vt->mul(c->b.ctx, da, db, dy);
                    d_fetch(c, dy, got, desc);
                    expect_close("mul", MLC_TYPE_F32, desc, got, ref, n * dim);
                    if (!bcast)
                        d_free(c, dy);
                    d_free(c, da);
                    d_free(c, db);
                }
                free(got);
                free(ref);
                free(b);
                free(a);
            }
        }
    }
    teardown();
}

Test(cpu_ops, scale)
{
    setup("scale");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = next_case_seed();
        uint64_t s = seed;
        float *x = falloc(n);
        fill_gauss(&s, x, n, 3.0f);
        const float k = li % 2 ? 33.941125f : 0.125f; /* sqrt(1152), as gemma scales embeddings */
        double *ref = dalloc(n);
        mlc_ref_scale(x, k, n, ref);
        float *got = falloc(n);
        for (int i = 0; i < n_cfgs; i++) {
            const cfg *c = &cfgs[i];
            char desc[512];
            describe(desc, sizeof desc, c, seed, "scale n=%lld s=%g", (long long)n, (double)k);
            mlc_tensor dx = d_out(c, n, 1, 1, x); /* in place */
            c->b.vt->scale(c->b.ctx, dx, k, dx);
            d_fetch(c, dx, got, desc);
            expect_close("scale", MLC_TYPE_F32, desc, got, ref, n);
            d_free(c, dx);
        }
        free(got);
        free(ref);
        free(x);
    }
    teardown();
}

/* Per-head RMS norm (Q/K norms): x [head_dim, n_head, n] normalized over each head with one
 * weight vector [head_dim], in place. */
Test(cpu_ops, rms_norm_per_head)
{
    setup("rms_norm_per_head");
    static const int hds[] = {64, 128, 256};
    static const int heads[] = {1, 7};
    for (int h = 0; h < 3; h++) {
        for (int nh = 0; nh < 2; nh++) {
            for (int b = 0; b < N_BATCHES; b++) {
                const int64_t hd = hds[h], n = BATCHES[b], rows = heads[nh] * n;
                const uint64_t seed = next_case_seed();
                uint64_t s = seed;
                float *x = falloc(rows * hd), *w = falloc(hd);
                for (int64_t r = 0; r < rows; r++)
                    fill_gauss(&s, x + r * hd, hd, (float)exp(2.0 * (float)mlc_rng_gauss(&s)));
                for (int64_t i = 0; i < hd; i++)
                    w[i] = 1.0f + 0.3f * (float)mlc_rng_gauss(&s);
                double *ref = dalloc(rows * hd);
                mlc_ref_rms_norm(x, w, rows, hd, 1e-6f, ref);
                float *got = falloc(rows * hd);
                for (int i = 0; i < n_cfgs; i++) {
                    const cfg *c = &cfgs[i];
                    char desc[512];
                    describe(desc, sizeof desc, c, seed, "rms_norm per head head_dim=%lld n_head=%d n=%lld",
                             (long long)hd, heads[nh], (long long)n);
                    mlc_tensor dx = d_out(c, hd, heads[nh], n, x);
                    mlc_tensor dw = d_in(c, w, MLC_TYPE_F32, hd, 1, 1);
                    c->b.vt->rms_norm(c->b.ctx, dx, dw, 1e-6f, dx);
                    d_fetch(c, dx, got, desc);
                    expect_close("rms_norm", MLC_TYPE_F32, desc, got, ref, rows * hd);
                    d_free(c, dw);
                    d_free(c, dx);
                }
                free(got);
                free(ref);
                free(w);
                free(x);
            }
        }
    }
    teardown();
}

/* ---- the reference itself -------------------------------------------------------------- */

Test(cpu_ops, reference_helpers)
{
    /* NMSE: exact, scaled, zero reference */
    const double r[4] = {1, -2, 3, -4};
    const float o[4] = {1, -2, 3, -4}, o2[4] = {1.1f, -2, 3, -4};
    cr_expect_eq(mlc_ref_nmse(o, r, 4), 0.0);
    cr_expect(fabs(mlc_ref_nmse(o2, r, 4) - 0.01 / 30.0) < 1e-9, "%g",
              mlc_ref_nmse(o2, r, 4));
    const double z[2] = {0, 0};
    const float zo[2] = {0, 0}, nz[2] = {0, 1e-30f};
    cr_expect_eq(mlc_ref_nmse(zo, z, 2), 0.0);
    cr_expect(isinf(mlc_ref_nmse(nz, z, 2)));
    /* non-finite detection */
    const float bad[4] = {1, NAN, 3, INFINITY};
    const double rbad[4] = {1, NAN, 3, 4};
    cr_expect_eq(mlc_ref_first_nonfinite(o, r, 4), -1);
    cr_expect_eq(mlc_ref_first_nonfinite(bad, r, 4), 1);
    cr_expect_eq(mlc_ref_first_nonfinite(bad, rbad, 4), 3);
    cr_expect(isnan(mlc_ref_nmse(bad, r, 4)));
    /* softmax: sums to 1, stable for large logits, masked rows zero */
    const float lg[6] = {1000, 999, 998, -INFINITY, -INFINITY, -INFINITY};
    double p[6];
    mlc_ref_softmax(lg, 2, 3, p);
    cr_expect(fabs(p[0] + p[1] + p[2] - 1) < 1e-15);
    cr_expect(fabs(p[0] / p[1] - exp(1.0)) < 1e-12);
    cr_expect(p[3] == 0 && p[4] == 0 && p[5] == 0);
    /* rope: position 0 is the identity, and rotation keeps each pair's norm; position 1 of
     * pair 0 turns by exactly 1 radian */
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t ps[2] = {0, 1};
    double y[16];
    float xx[16];
    memcpy(xx, x, sizeof x);
    memcpy(xx + 8, x, sizeof x);
    mlc_ref_rope(xx, ps, NULL, 2, 1, 8, 8, 10000.0f, false, y);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(y[i], x[i]);
    cr_expect(fabs(y[8] - (cos(1.0) - 2 * sin(1.0))) < 1e-12);
    cr_expect(fabs(y[9] - (sin(1.0) + 2 * cos(1.0))) < 1e-12);
    for (int i = 0; i < 4; i++)
        cr_expect(fabs(hypot(y[8 + 2 * i], y[9 + 2 * i]) - hypot(x[2 * i], x[2 * i + 1])) < 1e-12);
    mlc_ref_rope(xx, ps, NULL, 2, 1, 8, 8, 10000.0f, true, y);
    cr_expect(fabs(y[8] - (cos(1.0) - 5 * sin(1.0))) < 1e-12); /* neox: pair (0, 4) */
    /* rms_norm of a constant row is w */
    const float cst[4] = {3, 3, 3, 3}, w[4] = {1, 2, 3, 4};
    double rn[4];
    mlc_ref_rms_norm(cst, w, 1, 4, 0.0f, rn);
    for (int i = 0; i < 4; i++)
        cr_expect(fabs(rn[i] - w[i]) < 1e-15);
    /* matmul of Q8_0 weights is the dot product of the dequantized row */
    float wf[32], xf[32], deq[32];
    uint8_t blk[34];
    for (int i = 0; i < 32; i++) {
        wf[i] = (float)(i - 16) / 7.0f;
        xf[i] = (float)(i % 5) - 2.0f;
    }
    mlc_quantize_row(MLC_TYPE_Q8_0, wf, blk, 32);
    mlc_dequantize_row(MLC_TYPE_Q8_0, blk, deq, 32);
    double want = 0, got;
    for (int i = 0; i < 32; i++)
        want += (double)deq[i] * xf[i];
    cr_assert(mlc_ref_matmul(MLC_TYPE_Q8_0, blk, 32, 1, xf, 1, &got));
    cr_expect_eq(got, want);
    cr_expect(!mlc_ref_matmul(MLC_TYPE_Q8_0, blk, 31, 1, xf, 1, &got));
    /* attention with one position returns that position's V, whatever the scores */
    const mlc_ref_kv_geom g = {MLC_TYPE_F32, 2, 2};
    const float kc[4] = {1, 2, NAN, NAN}, vc[4] = {5, -6, NAN, NAN}, q[2] = {30, 40};
    const int32_t sl = 0, po = 0;
    const mlc_ref_attn_args a = {q, kc, vc, &sl, &po, 1, 1, 1, 2, {.scale = 0.7f}};
    double ao[2];
    cr_assert(mlc_ref_attention(&g, &a, ao));
    cr_expect(ao[0] == 5 && ao[1] == -6, "%g %g", ao[0], ao[1]);
}

/* ---- the interface's error contract ---------------------------------------------------- */

/* A view outside its buffer or an index outside its table is refused by the op that finds
 * it, sticks (later ops do nothing and return it) until sync() reports it, then clears. */
Test(cpu_ops, sticky_errors)
{
    setup("sticky_errors");
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        const mlc_backend_vt *vt = c->b.vt;
        const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        const int32_t bad_rows[2] = {0, 9};
        mlc_tensor dx = d_in(c, x, MLC_TYPE_F32, 4, 2, 1);
        mlc_tensor dr = d_in(c, bad_rows, MLC_TYPE_I32, 2, 1, 1);
        mlc_tensor dy = d_out(c, 4, 2, 1, x);
        mlc_tensor past = dx;
        past.offset = 4 * sizeof(float); /* [4, 2] from element 4: half outside */
        cr_expect_neq(vt->add(c->b.ctx, past, dx, dy), MLC_OK, "%s", c->name);
        cr_expect_neq(vt->scale(c->b.ctx, dx, 2.0f, dy), MLC_OK, "%s: the error did not stick", c->name);
        mlc_err err = {0};
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "add") && strstr(err.msg, "buffer"), "%s: %s", c->name, err.msg);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_OK, "%s: sync did not clear the error", c->name);
        cr_expect_neq(vt->gather(c->b.ctx, dx, dr, dy), MLC_OK, "%s", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_RANGE, "%s", c->name);
        cr_expect(strstr(err.msg, "rows[1] = 9"), "%s: %s", c->name, err.msg);
        /* nothing was written by the refused ops */
        float got[8];
        d_fetch(c, dy, got, c->name);
        cr_expect_eq(memcmp(got, x, sizeof x), 0, "%s: a refused op wrote its output", c->name);
        d_free(c, dy);
        d_free(c, dr);
        d_free(c, dx);
    }
    teardown();
}

/* Malformed shapes are refused by the op (an error naming it), never a crash: here an
 * empty cache row (0 / head_dim KV heads), a head wider than the backend's limit, and a
 * matmul whose activations do not match the weights. */
Test(cpu_ops, malformed_shapes_refused)
{
    setup("malformed_shapes_refused");
    for (int i = 0; i < n_cfgs; i++) {
        const cfg *c = &cfgs[i];
        const mlc_backend_vt *vt = c->b.vt;
        float q[64] = {0};
        const int32_t zero[1] = {0};
        const uint16_t cache[64] = {0};
        mlc_tensor dq = d_in(c, q, MLC_TYPE_F32, 64, 1, 1);
        mlc_tensor ds = d_in(c, zero, MLC_TYPE_I32, 1, 1, 1);
        mlc_tensor kc = d_in(c, cache, MLC_TYPE_F16, 64, 1, 1);
        mlc_tensor empty = kc;
        empty.ne[0] = 0;
        mlc_tensor out = d_out(c, 64, 1, 1, NULL);
        const mlc_attn_params ap = {.scale = 0.125f};
        mlc_err err = {0};
        cr_expect_neq(vt->attention(c->b.ctx, dq, empty, empty, ds, ds, &ap, out), MLC_OK, "%s", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "attention"), "%s: %s", c->name, err.msg);
        mlc_tensor w = d_weights(c, q, MLC_TYPE_F32, 32, 2);
        cr_expect_neq(vt->matmul(c->b.ctx, w, dq, out), MLC_OK, "%s: x [64] against weights [32, 2]", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "matmul") && strstr(err.msg, "do not fit"), "%s: %s", c->name, err.msg);
        /* an F16 output view of a buffer sized for F16: an F32 write would overflow it */
        mlc_tensor half = d_in(c, cache, MLC_TYPE_F16, 64, 1, 1);
        cr_expect_neq(vt->scale(c->b.ctx, dq, 2.0f, half), MLC_OK, "%s", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "scale: a F16 view where F32 is needed"), "%s: %s", c->name, err.msg);
        d_free(c, half);
        const int64_t wide[4] = {2048, 1, 1, 1024};
        if (!strncmp(c->name, "cpu", 3))
            cr_expect(!vt->supports(c->b.ctx, MLC_OP_ATTENTION, MLC_TYPE_F16, wide), "%s", c->name);
        vt->release_weights(c->b.ctx, &w);
        d_free(c, out);
        d_free(c, kc);
        d_free(c, ds);
        d_free(c, dq);
    }
    teardown();
}
