/* tests/test_cpu_ops.c: rms_norm (also per head), swiglu, geglu, add (also a broadcast bias),
 * gather, mul and scale; the reference's own helpers; the backend interface's error contract.
 *
 * Part of the op suite described in ops_harness.h (test_cpu_ops_matmul.c and
 * test_cpu_ops_attention.c hold the rest): every op of every backend and device this build
 * has against the float64 reference, through the backend interface only. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/ref/ref.h"
#include "mlc/quant.h"
#include "ops_harness.h"
#include "rng.h"
#include "util.h"

/* ---- rms_norm ------------------------------------------------------------------------- */

Test(cpu_ops, rms_norm)
{
    ops_run *run = ops_setup("rms_norm");
    static const int64_t dims[] = {1, 7, 33, 896, 4096};
    for (int di = 0; di < 5; di++) {
        for (int b = 0; b < OPS_N_BATCHES; b++) {
            const int64_t dim = dims[di], n = OPS_BATCHES[b];
            const uint64_t seed = ops_next_case_seed(run);
            uint64_t s = seed;
            const float eps = mlc_rng_below(&s, 2) ? 1e-5f : 1e-6f;
            float *x = ops_falloc(n * dim), *w = ops_falloc(dim);
            /* rows of very different magnitudes; one all zero when n > 1 */
            for (int64_t t = 0; t < n; t++)
                tu_fill_gauss(&s, x + t * dim, dim, (float)exp(2.0 * (float)mlc_rng_gauss(&s)));
            if (n > 1)
                memset(x + dim, 0, (size_t)dim * sizeof *x);
            for (int64_t i = 0; i < dim; i++)
                w[i] = 1.0f + 0.3f * (float)mlc_rng_gauss(&s);
            double *ref = ops_dalloc(n * dim);
            mlc_ref_rms_norm(x, w, n, dim, eps, ref);
            float *got = ops_falloc(n * dim);
            for (int i = 0; i < run->n_cfgs; i++) {
                const ops_cfg *c = &run->cfgs[i];
                char desc[512];
                ops_describe(run, desc, sizeof desc, c, seed, "rms_norm dim=%lld n=%lld eps=%g",
                             (long long)dim, (long long)n, (double)eps);
                mlc_tensor dx = ops_d_in(c, x, MLC_TYPE_F32, dim, n, 1);
                mlc_tensor dw = ops_d_in(c, w, MLC_TYPE_F32, dim, 1, 1);
                mlc_tensor dy = ops_d_out(c, dim, n, 1, NULL);
                c->b.vt->rms_norm(c->b.ctx, dx, dw, eps, dy);
                ops_d_fetch(c, dy, got, desc);
                ops_expect_close(run, "rms_norm", MLC_TYPE_F32, desc, got, ref, n * dim);
                ops_d_free(c, dy);
                ops_d_free(c, dw);
                ops_d_free(c, dx);
            }
            free(got);
            free(ref);
            free(w);
            free(x);
        }
    }
    ops_teardown(run);
}

/* ---- swiglu, add, add_bias, gather ----------------------------------------------------- */

static const int64_t LENS[] = {1, 7, 33, 1000, 4864};

Test(cpu_ops, swiglu)
{
    ops_run *run = ops_setup("swiglu");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = ops_next_case_seed(run);
        uint64_t s = seed;
        float *gate = ops_falloc(n), *up = ops_falloc(n);
        tu_fill_gauss(&s, gate, n, 3.0f);
        tu_fill_gauss(&s, up, n, 1.0f);
        /* saturated gates: exp(-gate) overflowing float, or vanishing */
        static const float extreme[] = {-100.0f, 100.0f, -1000.0f, 88.0f, -88.0f, 30.0f, -30.0f};
        for (int64_t i = 0; i < n && i < 7; i++)
            if (n > 7)
                gate[mlc_rng_below(&s, n)] = extreme[i];
        double *ref = ops_dalloc(n);
        mlc_ref_swiglu(gate, up, n, ref);
        float *got = ops_falloc(n);
        for (int i = 0; i < run->n_cfgs; i++) {
            const ops_cfg *c = &run->cfgs[i];
            char desc[512];
            ops_describe(run, desc, sizeof desc, c, seed, "swiglu n=%lld", (long long)n);
            mlc_tensor dg = ops_d_in(c, gate, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor du = ops_d_in(c, up, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor dy = ops_d_out(c, n, 1, 1, NULL);
            c->b.vt->swiglu(c->b.ctx, dg, du, dy);
            ops_d_fetch(c, dy, got, desc);
            ops_expect_close(run, "swiglu", MLC_TYPE_F32, desc, got, ref, n);
            ops_d_free(c, dy);
            ops_d_free(c, du);
            ops_d_free(c, dg);
        }
        free(got);
        free(ref);
        free(up);
        free(gate);
    }
    ops_teardown(run);
}

Test(cpu_ops, geglu)
{
    ops_run *run = ops_setup("geglu");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = ops_next_case_seed(run);
        uint64_t s = seed;
        float *gate = ops_falloc(n), *up = ops_falloc(n);
        tu_fill_gauss(&s, gate, n, 3.0f);
        tu_fill_gauss(&s, up, n, 1.0f);
        /* saturated gates: exp(-gate) overflowing float, or vanishing */
        static const float extreme[] = {-100.0f, 100.0f, -1000.0f, 88.0f, -88.0f, 30.0f, -30.0f};
        for (int64_t i = 0; i < n && i < 7; i++)
            if (n > 7)
                gate[mlc_rng_below(&s, n)] = extreme[i];
        double *ref = ops_dalloc(n);
        mlc_ref_geglu(gate, up, n, ref);
        float *got = ops_falloc(n);
        for (int i = 0; i < run->n_cfgs; i++) {
            const ops_cfg *c = &run->cfgs[i];
            char desc[512];
            ops_describe(run, desc, sizeof desc, c, seed, "geglu n=%lld", (long long)n);
            mlc_tensor dg = ops_d_in(c, gate, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor du = ops_d_in(c, up, MLC_TYPE_F32, n, 1, 1);
            mlc_tensor dy = ops_d_out(c, n, 1, 1, NULL);
            c->b.vt->geglu(c->b.ctx, dg, du, dy);
            ops_d_fetch(c, dy, got, desc);
            ops_expect_close(run, "geglu", MLC_TYPE_F32, desc, got, ref, n);
            ops_d_free(c, dy);
            ops_d_free(c, du);
            ops_d_free(c, dg);
        }
        free(got);
        free(ref);
        free(up);
        free(gate);
    }
    ops_teardown(run);
}

Test(cpu_ops, add)
{
    ops_run *run = ops_setup("add");
    for (int li = 0; li < 5; li++) {
        for (int alias = 0; alias < 2; alias++) { /* out = a + b, and a += b (out aliases a) */
            const int64_t n = LENS[li];
            const uint64_t seed = ops_next_case_seed(run);
            uint64_t s = seed;
            float *a = ops_falloc(n), *b = ops_falloc(n);
            tu_fill_gauss(&s, a, n, 1.0f);
            tu_fill_gauss(&s, b, n, 0.5f);
            double *ref = ops_dalloc(n);
            mlc_ref_add(a, b, n, n, ref);
            float *got = ops_falloc(n);
            for (int i = 0; i < run->n_cfgs; i++) {
                const ops_cfg *c = &run->cfgs[i];
                char desc[512];
                ops_describe(run, desc, sizeof desc, c, seed, "add n=%lld%s", (long long)n,
                             alias ? " out=a" : "");
                mlc_tensor db = ops_d_in(c, b, MLC_TYPE_F32, n, 1, 1);
                if (alias) {
                    mlc_tensor da = ops_d_out(c, n, 1, 1, a);
                    c->b.vt->add(c->b.ctx, da, db, da);
                    ops_d_fetch(c, da, got, desc);
                    ops_d_free(c, da);
                } else {
                    mlc_tensor da = ops_d_in(c, a, MLC_TYPE_F32, n, 1, 1);
                    mlc_tensor dy = ops_d_out(c, n, 1, 1, NULL);
                    c->b.vt->add(c->b.ctx, da, db, dy);
                    ops_d_fetch(c, dy, got, desc);
                    ops_d_free(c, dy);
                    ops_d_free(c, da);
                }
                ops_expect_close(run, "add", MLC_TYPE_F32, desc, got, ref, n);
                ops_d_free(c, db);
            }
            free(got);
            free(ref);
            free(b);
            free(a);
        }
    }
    ops_teardown(run);
}

/* add with b one row broadcast over the rows of a (the QKV biases), in place. */
Test(cpu_ops, add_bias)
{
    ops_run *run = ops_setup("add_bias");
    static const int64_t dims[] = {1, 7, 33, 896};
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < OPS_N_BATCHES; bi++) {
            const int64_t dim = dims[di], n = OPS_BATCHES[bi];
            const uint64_t seed = ops_next_case_seed(run);
            uint64_t s = seed;
            float *x = ops_falloc(n * dim), *bias = ops_falloc(dim);
            tu_fill_gauss(&s, x, n * dim, 1.0f);
            tu_fill_gauss(&s, bias, dim, 0.3f);
            double *ref = ops_dalloc(n * dim);
            mlc_ref_add(x, bias, n * dim, dim, ref);
            float *got = ops_falloc(n * dim);
            for (int i = 0; i < run->n_cfgs; i++) {
                const ops_cfg *c = &run->cfgs[i];
                char desc[512];
                ops_describe(run, desc, sizeof desc, c, seed, "add_bias dim=%lld n=%lld", (long long)dim,
                             (long long)n);
                mlc_tensor db = ops_d_in(c, bias, MLC_TYPE_F32, dim, 1, 1);
                mlc_tensor dx = ops_d_out(c, dim, n, 1, x); /* in place */
                c->b.vt->add(c->b.ctx, dx, db, dx);
                ops_d_fetch(c, dx, got, desc);
                ops_expect_close(run, "add_bias", MLC_TYPE_F32, desc, got, ref, n * dim);
                ops_d_free(c, dx);
                ops_d_free(c, db);
            }
            free(got);
            free(ref);
            free(bias);
            free(x);
        }
    }
    ops_teardown(run);
}

Test(cpu_ops, gather)
{
    ops_run *run = ops_setup("gather");
    static const int64_t dims[] = {1, 7, 33, 896};
    const int64_t src_rows = 20;
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < OPS_N_BATCHES; bi++) {
            const int64_t dim = dims[di], n = OPS_BATCHES[bi];
            const uint64_t seed = ops_next_case_seed(run);
            uint64_t s = seed;
            float *x = ops_falloc(src_rows * dim);
            tu_fill_gauss(&s, x, src_rows * dim, 1.0f);
            int32_t *rows = malloc((size_t)n * sizeof *rows);
            cr_assert(rows);
            for (int64_t i = 0; i < n; i++) /* last row first; repeats allowed */
                rows[i] = i == 0 ? (int32_t)src_rows - 1 : (int32_t)mlc_rng_below(&s, src_rows);
            double *ref = ops_dalloc(n * dim);
            mlc_ref_gather(x, rows, n, dim, ref);
            float *got = ops_falloc(n * dim);
            for (int i = 0; i < run->n_cfgs; i++) {
                const ops_cfg *c = &run->cfgs[i];
                char desc[512];
                ops_describe(run, desc, sizeof desc, c, seed, "gather dim=%lld n=%lld", (long long)dim,
                             (long long)n);
                mlc_tensor dx = ops_d_in(c, x, MLC_TYPE_F32, dim, src_rows, 1);
                mlc_tensor dr = ops_d_in(c, rows, MLC_TYPE_I32, n, 1, 1);
                mlc_tensor dy = ops_d_out(c, dim, n, 1, NULL);
                c->b.vt->gather(c->b.ctx, dx, dr, dy);
                ops_d_fetch(c, dy, got, desc);
                ops_expect_close(run, "gather", MLC_TYPE_F32, desc, got, ref, n * dim);
                ops_d_free(c, dy);
                ops_d_free(c, dr);
                ops_d_free(c, dx);
            }
            free(got);
            free(ref);
            free(rows);
            free(x);
        }
    }
    ops_teardown(run);
}

/* out = a * b, b the same size as a or one row broadcast over a's rows; in place or not. */
Test(cpu_ops, mul)
{
    ops_run *run = ops_setup("mul");
    static const int64_t dims[] = {1, 7, 33, 896};
    for (int di = 0; di < 4; di++) {
        for (int bi = 0; bi < OPS_N_BATCHES; bi++) {
            for (int bcast = 0; bcast < 2; bcast++) {
                const int64_t dim = dims[di], n = OPS_BATCHES[bi], nb = bcast ? dim : n * dim;
                const uint64_t seed = ops_next_case_seed(run);
                uint64_t s = seed;
                float *a = ops_falloc(n * dim), *b = ops_falloc(nb);
                tu_fill_gauss(&s, a, n * dim, 1.0f);
                tu_fill_gauss(&s, b, nb, 2.0f);
                double *ref = ops_dalloc(n * dim);
                mlc_ref_mul(a, b, n * dim, nb, ref);
                float *got = ops_falloc(n * dim);
                for (int i = 0; i < run->n_cfgs; i++) {
                    const ops_cfg *c = &run->cfgs[i];
                    char desc[512];
                    ops_describe(run, desc, sizeof desc, c, seed, "mul dim=%lld n=%lld%s", (long long)dim,
                                 (long long)n, bcast ? " b=[dim] broadcast, in place" : "");
                    mlc_tensor db = ops_d_in(c, b, MLC_TYPE_F32, dim, bcast ? 1 : n, 1);
                    mlc_tensor da = bcast ? ops_d_out(c, dim, n, 1, a)
                                          : ops_d_in(c, a, MLC_TYPE_F32, dim, n, 1);
                    mlc_tensor dy = bcast ? da : ops_d_out(c, dim, n, 1, NULL);
                    c->b.vt->mul(c->b.ctx, da, db, dy);
                    ops_d_fetch(c, dy, got, desc);
                    ops_expect_close(run, "mul", MLC_TYPE_F32, desc, got, ref, n * dim);
                    if (!bcast)
                        ops_d_free(c, dy);
                    ops_d_free(c, da);
                    ops_d_free(c, db);
                }
                free(got);
                free(ref);
                free(b);
                free(a);
            }
        }
    }
    ops_teardown(run);
}

Test(cpu_ops, scale)
{
    ops_run *run = ops_setup("scale");
    for (int li = 0; li < 5; li++) {
        const int64_t n = LENS[li];
        const uint64_t seed = ops_next_case_seed(run);
        uint64_t s = seed;
        float *x = ops_falloc(n);
        tu_fill_gauss(&s, x, n, 3.0f);
        const float k = li % 2 ? 33.941125f : 0.125f; /* sqrt(1152), as gemma scales embeddings */
        double *ref = ops_dalloc(n);
        mlc_ref_scale(x, k, n, ref);
        float *got = ops_falloc(n);
        for (int i = 0; i < run->n_cfgs; i++) {
            const ops_cfg *c = &run->cfgs[i];
            char desc[512];
            ops_describe(run, desc, sizeof desc, c, seed, "scale n=%lld s=%g", (long long)n, (double)k);
            mlc_tensor dx = ops_d_out(c, n, 1, 1, x); /* in place */
            c->b.vt->scale(c->b.ctx, dx, k, dx);
            ops_d_fetch(c, dx, got, desc);
            ops_expect_close(run, "scale", MLC_TYPE_F32, desc, got, ref, n);
            ops_d_free(c, dx);
        }
        free(got);
        free(ref);
        free(x);
    }
    ops_teardown(run);
}

/* Per-head RMS norm (Q/K norms): x [head_dim, n_head, n] normalized over each head with one
 * weight vector [head_dim], in place. */
Test(cpu_ops, rms_norm_per_head)
{
    ops_run *run = ops_setup("rms_norm_per_head");
    static const int hds[] = {64, 128, 256};
    static const int heads[] = {1, 7};
    for (int h = 0; h < 3; h++) {
        for (int nh = 0; nh < 2; nh++) {
            for (int b = 0; b < OPS_N_BATCHES; b++) {
                const int64_t hd = hds[h], n = OPS_BATCHES[b], rows = heads[nh] * n;
                const uint64_t seed = ops_next_case_seed(run);
                uint64_t s = seed;
                float *x = ops_falloc(rows * hd), *w = ops_falloc(hd);
                for (int64_t r = 0; r < rows; r++)
                    tu_fill_gauss(&s, x + r * hd, hd, (float)exp(2.0 * (float)mlc_rng_gauss(&s)));
                for (int64_t i = 0; i < hd; i++)
                    w[i] = 1.0f + 0.3f * (float)mlc_rng_gauss(&s);
                double *ref = ops_dalloc(rows * hd);
                mlc_ref_rms_norm(x, w, rows, hd, 1e-6f, ref);
                float *got = ops_falloc(rows * hd);
                for (int i = 0; i < run->n_cfgs; i++) {
                    const ops_cfg *c = &run->cfgs[i];
                    char desc[512];
                    ops_describe(run, desc, sizeof desc, c, seed,
                                 "rms_norm per head head_dim=%lld n_head=%d n=%lld", (long long)hd,
                                 heads[nh], (long long)n);
                    mlc_tensor dx = ops_d_out(c, hd, heads[nh], n, x);
                    mlc_tensor dw = ops_d_in(c, w, MLC_TYPE_F32, hd, 1, 1);
                    c->b.vt->rms_norm(c->b.ctx, dx, dw, 1e-6f, dx);
                    ops_d_fetch(c, dx, got, desc);
                    ops_expect_close(run, "rms_norm", MLC_TYPE_F32, desc, got, ref, rows * hd);
                    ops_d_free(c, dw);
                    ops_d_free(c, dx);
                }
                free(got);
                free(ref);
                free(w);
                free(x);
            }
        }
    }
    ops_teardown(run);
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
    ops_run *run = ops_setup("sticky_errors");
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        const mlc_backend_vt *vt = c->b.vt;
        const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        const int32_t bad_rows[2] = {0, 9};
        mlc_tensor dx = ops_d_in(c, x, MLC_TYPE_F32, 4, 2, 1);
        mlc_tensor dr = ops_d_in(c, bad_rows, MLC_TYPE_I32, 2, 1, 1);
        mlc_tensor dy = ops_d_out(c, 4, 2, 1, x);
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
        ops_d_fetch(c, dy, got, c->name);
        cr_expect_eq(memcmp(got, x, sizeof x), 0, "%s: a refused op wrote its output", c->name);
        ops_d_free(c, dy);
        ops_d_free(c, dr);
        ops_d_free(c, dx);
    }
    ops_teardown(run);
}

/* Malformed shapes are refused by the op (an error naming it), never a crash: here an
 * empty cache row (0 / head_dim KV heads), a head wider than the backend's limit, and a
 * matmul whose activations do not match the weights. */
Test(cpu_ops, malformed_shapes_refused)
{
    ops_run *run = ops_setup("malformed_shapes_refused");
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        const mlc_backend_vt *vt = c->b.vt;
        float q[64] = {0};
        const int32_t zero[1] = {0};
        const uint16_t cache[64] = {0};
        mlc_tensor dq = ops_d_in(c, q, MLC_TYPE_F32, 64, 1, 1);
        mlc_tensor ds = ops_d_in(c, zero, MLC_TYPE_I32, 1, 1, 1);
        mlc_tensor kc = ops_d_in(c, cache, MLC_TYPE_F16, 64, 1, 1);
        mlc_tensor empty = kc;
        empty.ne[0] = 0;
        mlc_tensor out = ops_d_out(c, 64, 1, 1, NULL);
        const mlc_attn_params ap = {.scale = 0.125f};
        mlc_err err = {0};
        cr_expect_neq(vt->attention(c->b.ctx, dq, empty, empty, ds, ds, &ap, out), MLC_OK, "%s", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "attention"), "%s: %s", c->name, err.msg);
        mlc_tensor w = ops_d_weights(c, q, MLC_TYPE_F32, 32, 2);
        cr_expect_neq(vt->matmul(c->b.ctx, w, dq, out), MLC_OK, "%s: x [64] against weights [32, 2]", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "matmul") && strstr(err.msg, "do not fit"), "%s: %s", c->name, err.msg);
        /* an F16 output view of a buffer sized for F16: an F32 write would overflow it */
        mlc_tensor half = ops_d_in(c, cache, MLC_TYPE_F16, 64, 1, 1);
        cr_expect_neq(vt->scale(c->b.ctx, dq, 2.0f, half), MLC_OK, "%s", c->name);
        cr_expect_eq(vt->sync(c->b.ctx, &err), MLC_ERR_ARG, "%s", c->name);
        cr_expect(strstr(err.msg, "scale: a F16 view where F32 is needed"), "%s: %s", c->name, err.msg);
        ops_d_free(c, half);
        const int64_t wide[4] = {2048, 1, 1, 1024};
        if (!strncmp(c->name, "cpu", 3))
            cr_expect(!vt->supports(c->b.ctx, MLC_OP_ATTENTION, MLC_TYPE_F16, wide), "%s", c->name);
        vt->release_weights(c->b.ctx, &w);
        ops_d_free(c, out);
        ops_d_free(c, kc);
        ops_d_free(c, ds);
        ops_d_free(c, dq);
    }
    ops_teardown(run);
}
