/* tests/test_cpu_ops_matmul.c: matmul over every weight type, and get_rows.
 *
 * Part of the op suite described in ops_harness.h: every op of every backend and device
 * this build has against the float64 reference, through the backend interface only. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ref/ref.h"
#include "mlc/quant.h"
#include "ops_harness.h"
#include "rng.h"
#include "util.h"

/* ---- matmul and get_rows --------------------------------------------------------------- */

/* n_out rows of n_in random weights in type: Gaussian, each row with its own scale (as in
 * real weight matrices), a few rows all zero (degenerate blocks). */
static uint8_t *random_weights(uint64_t *s, uint32_t type, int64_t n_in, int64_t n_out)
{
    const size_t rb = mlc_type_row_bytes(type, n_in);
    cr_assert_gt(rb, 0);
    uint8_t *w = malloc(rb * (size_t)n_out);
    float *row = ops_falloc(n_in);
    cr_assert(w);
    for (int64_t r = 0; r < n_out; r++) {
        const float scale = (float)exp(0.5 * (float)mlc_rng_gauss(s)) * 0.05f;
        tu_fill_gauss(s, row, n_in, scale);
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

static void matmul_case(ops_run *run, uint32_t type, int64_t n_in, int64_t n_out, int64_t n)
{
    const uint64_t seed = ops_next_case_seed(run);
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
        x[rep] = ops_falloc(n * n_in);
        tu_fill_gauss(&s, x[rep], n * n_in, 1.0f);
        if (n > 1 && mlc_rng_below(&s, 2)) /* an all-zero activation row (amax = 0 blocks) */
            memset(x[rep] + n_in * mlc_rng_below(&s, n), 0, (size_t)n_in * sizeof(float));
        ref[rep] = ops_dalloc(n * n_out);
        cr_assert(mlc_ref_matmul(type, w[rep], n_in, n_out, x[rep], n, ref[rep]));
    }
    float *got = ops_falloc(n * n_out);
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        if (ops_declines(c, MLC_OP_MATMUL, type, n_in, n_out))
            continue;
        char desc[512];
        ops_describe(run, desc, sizeof desc, c, seed,
                     "matmul %s n_in=%lld n_out=%lld n=%lld (%d repetition%s)", mlc_type_name(type),
                     (long long)n_in, (long long)n_out, (long long)n, reps, reps > 1 ? "s" : "");
        ops_acc a = {0};
        for (int rep = 0; rep < reps; rep++) {
            mlc_tensor dw = ops_d_weights(c, w[rep], type, n_in, n_out);
            mlc_tensor dx = ops_d_in(c, x[rep], MLC_TYPE_F32, n_in, n, 1);
            mlc_tensor dy = ops_d_out(c, n_out, n, 1, NULL);
            c->b.vt->matmul(c->b.ctx, dw, dx, dy);
            ops_d_fetch(c, dy, got, desc);
            ops_acc_add(&a, desc, rep, got, ref[rep], n * n_out);
            ops_d_free(c, dy);
            ops_d_free(c, dx);
            c->b.vt->release_weights(c->b.ctx, &dw);
        }
        ops_acc_check(run, &a, "matmul", type, desc);
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

static void matmul_sweep(ops_run *run, uint32_t type, const int64_t *n_ins, int n_n_ins)
{
    static const int64_t n_outs[] = {1, 7, 33, 130};
    for (int a = 0; a < n_n_ins; a++)
        for (int o = 0; o < 4; o++)
            for (int b = 0; b < OPS_N_BATCHES; b++)
                matmul_case(run, type, n_ins[a], n_outs[o], OPS_BATCHES[b]);
}

/* Any row length for the plain float types; block multiples for the quantized ones. */
static const int64_t FLOAT_ROWS[] = {1, 7, 33, 257, 1024};
static const int64_t Q32_ROWS[] = {32, 96, 288, 768};
static const int64_t QK_ROWS[] = {256, 768, 2304};

Test(cpu_ops, matmul_f32)
{
    ops_run *run = ops_setup("matmul_f32");
    matmul_sweep(run, MLC_TYPE_F32, FLOAT_ROWS, 5);
    ops_teardown(run);
}

Test(cpu_ops, matmul_f16)
{
    ops_run *run = ops_setup("matmul_f16");
    matmul_sweep(run, MLC_TYPE_F16, FLOAT_ROWS, 5);
    ops_teardown(run);
}

Test(cpu_ops, matmul_bf16)
{
    ops_run *run = ops_setup("matmul_bf16");
    matmul_sweep(run, MLC_TYPE_BF16, FLOAT_ROWS, 5);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q8_0)
{
    ops_run *run = ops_setup("matmul_q8_0");
    matmul_sweep(run, MLC_TYPE_Q8_0, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q4_0)
{
    ops_run *run = ops_setup("matmul_q4_0");
    matmul_sweep(run, MLC_TYPE_Q4_0, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q5_0)
{
    ops_run *run = ops_setup("matmul_q5_0");
    matmul_sweep(run, MLC_TYPE_Q5_0, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q4_1)
{
    ops_run *run = ops_setup("matmul_q4_1");
    matmul_sweep(run, MLC_TYPE_Q4_1, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q5_1)
{
    ops_run *run = ops_setup("matmul_q5_1");
    matmul_sweep(run, MLC_TYPE_Q5_1, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q2_k)
{
    ops_run *run = ops_setup("matmul_q2_k");
    matmul_sweep(run, MLC_TYPE_Q2_K, QK_ROWS, 3);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q3_k)
{
    ops_run *run = ops_setup("matmul_q3_k");
    matmul_sweep(run, MLC_TYPE_Q3_K, QK_ROWS, 3);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q5_k)
{
    ops_run *run = ops_setup("matmul_q5_k");
    matmul_sweep(run, MLC_TYPE_Q5_K, QK_ROWS, 3);
    ops_teardown(run);
}

Test(cpu_ops, matmul_iq4_nl)
{
    ops_run *run = ops_setup("matmul_iq4_nl");
    matmul_sweep(run, MLC_TYPE_IQ4_NL, Q32_ROWS, 4);
    ops_teardown(run);
}

Test(cpu_ops, matmul_iq4_xs)
{
    ops_run *run = ops_setup("matmul_iq4_xs");
    matmul_sweep(run, MLC_TYPE_IQ4_XS, QK_ROWS, 3);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q4_k)
{
    ops_run *run = ops_setup("matmul_q4_k");
    matmul_sweep(run, MLC_TYPE_Q4_K, QK_ROWS, 3);
    ops_teardown(run);
}

Test(cpu_ops, matmul_q6_k)
{
    ops_run *run = ops_setup("matmul_q6_k");
    matmul_sweep(run, MLC_TYPE_Q6_K, QK_ROWS, 3);
    ops_teardown(run);
}

static void get_rows_case(ops_run *run, uint32_t type, int64_t row_len, int64_t n)
{
    const uint64_t seed = ops_next_case_seed(run);
    uint64_t s = seed;
    const int64_t rows = 50;
    uint8_t *table = random_weights(&s, type, row_len, rows);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    cr_assert(ids);
    for (int64_t i = 0; i < n; i++) /* repeats allowed; the first and last rows included */
        ids[i] = i == 0 ? rows - 1 : i == 1 ? 0 : (int32_t)mlc_rng_below(&s, rows);
    double *ref = ops_dalloc(n * row_len);
    cr_assert(mlc_ref_get_rows(type, table, row_len, ids, n, ref));
    float *got = ops_falloc(n * row_len);
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        if (ops_declines(c, MLC_OP_GET_ROWS, type, row_len, rows))
            continue;
        char desc[512];
        ops_describe(run, desc, sizeof desc, c, seed, "get_rows %s row_len=%lld n=%lld",
                     mlc_type_name(type), (long long)row_len, (long long)n);
        mlc_tensor dt = ops_d_weights(c, table, type, row_len, rows);
        mlc_tensor did = ops_d_in(c, ids, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dy = ops_d_out(c, row_len, n, 1, NULL);
        c->b.vt->get_rows(c->b.ctx, dt, did, dy);
        ops_d_fetch(c, dy, got, desc);
        ops_expect_close(run, "get_rows", type, desc, got, ref, n * row_len);
        ops_d_free(c, dy);
        ops_d_free(c, did);
        c->b.vt->release_weights(c->b.ctx, &dt);
    }
    free(got);
    free(ref);
    free(ids);
    free(table);
}

Test(cpu_ops, get_rows)
{
    ops_run *run = ops_setup("get_rows");
    static const uint32_t types[] = {MLC_TYPE_F32,  MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                     MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                                     MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                                     MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
    for (int t = 0; t < (int)(sizeof types / sizeof types[0]); t++) {
        const int64_t bs = mlc_type_block_size(types[t]);
        const int64_t lens[] = {bs == 1 ? 1 : bs, bs == 1 ? 7 : 3 * bs, bs == 1 ? 33 : 9 * bs,
                                bs == 1 ? 896 : (bs == 32 ? 28 : 3) * bs};
        for (int l = 0; l < 4; l++)
            for (int b = 0; b < OPS_N_BATCHES; b++)
                get_rows_case(run, types[t], lens[l], OPS_BATCHES[b]);
    }
    ops_teardown(run);
}

/* ---- rms_norm, rope -------------------------------------------------------------------- */
