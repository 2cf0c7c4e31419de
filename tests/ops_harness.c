/* tests/ops_harness.c: what the op suite's files share (ops_harness.h). */
#include "ops_harness.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../conformance/tolerance.h"
#include "../kernels/cpu/vecdot.h"
#include "../kernels/ref/ref.h"
#include "mlc/backend_info.h"
#include "rng.h"

/* ---- thresholds ------------------------------------------------------------------------

   The one table of conformance/tolerance.c (op x type -> largest NMSE), whose comments give
   the worst NMSE measured here and where the error comes from. To measure again: build this
   file with -DCPU_OPS_MEASURE and run with MLC_OPS_REPORT=1 over many MLC_TEST_SEED values. */

static void reset_worst(ops_run *run)
{
    for (int o = 0; o < MLC_OP_COUNT; o++)
        for (int t = 0; t < MLC_TYPE_COUNT; t++)
            run->worst[o][t] = -1;
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

static void report(const ops_run *run)
{
    if (!getenv("MLC_OPS_REPORT"))
        return;
    for (int o = 0; o < MLC_OP_COUNT; o++)
        for (int t = 0; t < MLC_TYPE_COUNT; t++)
            if (run->worst[o][t] >= 0)
                fprintf(stderr, "cpu_ops: %-9s %-5s worst NMSE %.3g (threshold %.3g)\n",
                        mlc_op_name((mlc_op)o), mlc_type_name((uint32_t)t), run->worst[o][t],
                        mlc_conf_threshold((mlc_op)o, (uint32_t)t));
}

/* ---- the backends under test ----------------------------------------------------------- */


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

static void open_cfg(ops_run *run, const mlc_backend_vt *vt, const mlc_backend_params *p, const char *name)
{
    cr_assert_lt(run->n_cfgs, OPS_MAX_CFG);
    ops_cfg *c = &run->cfgs[run->n_cfgs];
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open_vt(vt, p, &c->b, &err), MLC_OK, "open %s: %s", name, err.msg);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (p->isa) {
        char desc[128];
        c->b.vt->describe(c->b.ctx, desc, sizeof desc);
        cr_assert(strstr(desc, p->isa), "isa %s asked for but the backend runs: %s", p->isa, desc);
    }
    run->n_cfgs++;
}

/* Opens every device of every built backend; the CPU for every ISA x {1, 2} threads. */
ops_run *ops_setup(const char *name)
{
    ops_run *run = calloc(1, sizeof *run);
    cr_assert(run);
    run->test_name = name;
    run->base_seed = parse_seed();
    reset_worst(run);
    for (int bi = 0; bi < mlc_backend_count(); bi++) {
        const mlc_backend_vt *vt;
        if (!mlc_backend_built(bi) || mlc_backend_vt_get(mlc_backend_name(bi), &vt, NULL))
            continue;
        for (int dev = 0; dev < vt->device_count(); dev++) {
            char label[64];
            if (strcmp(vt->name, "cpu")) {
                snprintf(label, sizeof label, "%s:%d", vt->name, dev);
                open_cfg(run, vt, &(mlc_backend_params){.device = dev}, label);
                continue;
            }
            char isas[64];
            snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
            char *save = NULL;
            for (char *isa = strtok_r(isas, " ", &save); isa; isa = strtok_r(NULL, " ", &save))
                for (int threads = 1; threads <= 2; threads++) {
                    snprintf(label, sizeof label, "cpu:%d isa=%s threads=%d", dev, isa, threads);
                    open_cfg(run, vt, &(mlc_backend_params){.device = dev, .n_threads = threads, .isa = isa},
                             label);
                }
        }
    }
    cr_assert_gt(run->n_cfgs, 0);
    return run;
}

void ops_teardown(ops_run *run)
{
    for (int i = 0; i < run->n_cfgs; i++)
        mlc_backend_close(&run->cfgs[i].b);
    report(run);
    free(run);
}

/* The seed of the next case. */
uint64_t ops_next_case_seed(ops_run *run)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the test name */
    for (const char *p = run->test_name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    uint64_t s = run->base_seed ^ h ^ (++run->case_no * 0xD1B54A32D192ED03ull);
    return mlc_rng_next(&s);
}

/* ---- device buffers with guards -------------------------------------------------------- */

#define GUARD 16 /* canary floats on each side: 64 bytes keep the output 64-byte aligned */

static mlc_buffer *d_alloc(const ops_cfg *c, size_t bytes)
{
    mlc_buffer *b = NULL;
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->buffer_alloc(c->b.ctx, bytes, &b, &err), MLC_OK, "%s: alloc %zu bytes: %s",
                 c->name, bytes, err.msg);
    return b;
}

static void d_upload(const ops_cfg *c, mlc_buffer *b, size_t offset, const void *host, size_t bytes)
{
    cr_assert_eq(c->b.vt->upload(c->b.ctx, b, offset, host, bytes), MLC_OK, "%s: upload", c->name);
}

/* An input [ne0, ne1, ne2] of type in its own buffer, filled from host. */
mlc_tensor ops_d_in(const ops_cfg *c, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                    int64_t ne2)
{
    mlc_tensor t = mlc_tensor_make(NULL, 0, type, ne0, ne1, ne2);
    const size_t bytes = mlc_tensor_nbytes(&t);
    t.buf = d_alloc(c, bytes);
    d_upload(c, t.buf, 0, host, bytes);
    return t;
}

mlc_tensor ops_d_weights(const ops_cfg *c, const void *host, uint32_t type, int64_t ne0, int64_t ne1)
{
    mlc_tensor t;
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->weights(c->b.ctx, host, type, ne0, ne1, &t, &err), MLC_OK,
                 "%s: weights: %s", c->name, err.msg);
    return t;
}

/* True when c's backend declines op on this type and shape (a GPU backend without kernels
 * for a weight type): the case is not run there. The CPU backend declines nothing. */
bool ops_declines(const ops_cfg *c, mlc_op op, uint32_t type, int64_t ne0, int64_t ne1)
{
    const int64_t shape[4] = {ne0, ne1, 0, 0};
    if (c->b.vt->supports(c->b.ctx, op, type, shape))
        return false;
    cr_assert(strcmp(c->b.vt->name, "cpu"), "%s declines %s %s", c->name, mlc_op_name(op),
              mlc_type_name(type));
    return true;
}

void ops_d_free(const ops_cfg *c, mlc_tensor t)
{
    c->b.vt->buffer_free(c->b.ctx, t.buf);
}

static float *canaries(int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    cr_assert(h);
    const uint32_t bits = OPS_CANARY;
    for (int64_t i = 0; i < n; i++)
        memcpy(&h[i], &bits, 4);
    return h;
}

/* Floats a view spans (a cache layer of an odd F16 count ends in 2 bytes of padding). */
int64_t ops_span_floats(const mlc_tensor *t)
{
    return (int64_t)((mlc_tensor_nbytes(t) + 3) / 4);
}

/* A view of type [ne0, ne1, ne2] between guards in its own buffer; initial holds the bytes
 * it starts with (NULL: all canaries, so an element the op never writes stays NaN and
 * fails). */
mlc_tensor ops_d_guarded(const ops_cfg *c, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                         const void *initial)
{
    mlc_tensor t = mlc_tensor_make(NULL, GUARD * sizeof(float), type, ne0, ne1, ne2);
    const int64_t nf = ops_span_floats(&t);
    float *h = canaries(nf + 2 * GUARD);
    if (initial)
        memcpy(h + GUARD, initial, mlc_tensor_nbytes(&t));
    t.buf = d_alloc(c, (size_t)(nf + 2 * GUARD) * sizeof(float));
    d_upload(c, t.buf, 0, h, (size_t)(nf + 2 * GUARD) * sizeof(float));
    free(h);
    return t;
}

/* An F32 output [ne0, ne1, ne2] between guards. */
mlc_tensor ops_d_out(const ops_cfg *c, int64_t ne0, int64_t ne1, int64_t ne2, const float *initial)
{
    return ops_d_guarded(c, MLC_TYPE_F32, ne0, ne1, ne2, initial);
}

/* Syncs, then downloads the floats d spans into host after checking that both guards are
 * intact. */
void ops_d_fetch(const ops_cfg *c, mlc_tensor d, float *host, const char *desc)
{
    mlc_err err = {0};
    cr_assert_eq(c->b.vt->sync(c->b.ctx, &err), MLC_OK, "%s: sync: %s", desc, err.msg);
    const int64_t n = ops_span_floats(&d);
    float *h = malloc((size_t)(n + 2 * GUARD) * sizeof *h);
    cr_assert(h);
    cr_assert_eq(c->b.vt->download(c->b.ctx, h, d.buf, d.offset - GUARD * sizeof(float),
                                   (size_t)(n + 2 * GUARD) * sizeof(float)),
                 MLC_OK, "%s: download", desc);
    for (int64_t i = 0; i < 2 * GUARD; i++) {
        const int64_t at = i < GUARD ? i : n + i;
        uint32_t bits;
        memcpy(&bits, &h[at], 4);
        cr_assert_eq(bits, OPS_CANARY, "%s: write out of bounds at output[%lld] (0x%08x)", desc,
                     (long long)(at - GUARD), bits);
    }
    memcpy(host, h + GUARD, (size_t)n * sizeof *h);
    free(h);
}

/* ---- comparison ------------------------------------------------------------------------ */

/* Adds n outputs to a; any non-finite output the reference lacks fails at once. */
void ops_acc_add(ops_acc *a, const char *desc, int rep, const float *out, const double *ref,
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
void ops_acc_check(ops_run *run, const ops_acc *a, const char *op, uint32_t type,
                   const char *desc)
{
    const double max = threshold(op, type);
    const double e = a->norm > 0 ? a->err / a->norm : a->err == 0 ? 0.0 : INFINITY;
    double *w = &run->worst[op_of(op)][type];
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

void ops_expect_close(ops_run *run, const char *op, uint32_t type, const char *desc,
                      const float *out, const double *ref, int64_t n)
{
    ops_acc a = {0};
    ops_acc_add(&a, desc, -1, out, ref, n);
    ops_acc_check(run, &a, op, type, desc);
}

/* "op ... isa=avx2 threads=2 seed=0x.. (base seed 0x..)" */
void ops_describe(const ops_run *run, char *buf, size_t cap, const ops_cfg *c, uint64_t seed,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap)
        return;
    snprintf(buf + k, cap - (size_t)k,
             " on %s case seed=0x%016llx (rerun with MLC_TEST_SEED=0x%016llx)",
             c->name, (unsigned long long)seed, (unsigned long long)run->base_seed);
}

double *ops_dalloc(int64_t n)
{
    double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    cr_assert(p);
    return p;
}

float *ops_falloc(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    cr_assert(p);
    return p;
}

const int64_t OPS_BATCHES[OPS_N_BATCHES] = {1, 3, 17};
