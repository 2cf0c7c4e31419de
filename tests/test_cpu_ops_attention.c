/* tests/test_cpu_ops_attention.c: rope, kv_store and attention (GQA/MQA, sliding windows,
 * soft-caps).
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

/* ---- rope ----------------------------------------------------------------------------- */

static void rope_case(ops_run *run, bool neox, int n_head, int head_dim, int n_rot, float base,
                      int64_t n)
{
    const uint64_t seed = ops_next_case_seed(run);
    uint64_t s = seed;
    const int64_t len = n * n_head * head_dim;
    float *x = ops_falloc(len);
    tu_fill_gauss(&s, x, len, 1.0f);
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    cr_assert(pos);
    /* position 0 (identity), small, mid and long-context positions */
    static const int32_t fixed[] = {0, 1, 6, 32767, 4095, 130};
    for (int64_t t = 0; t < n; t++)
        pos[t] = t < 6 ? fixed[(t + (n == 1 ? (int64_t)(seed % 6) : 0)) % 6]
                       : (int32_t)mlc_rng_below(&s, 32768);
    double *ref = ops_dalloc(len);
    mlc_ref_rope(x, pos, NULL, n, n_head, head_dim, n_rot, base, neox, ref);
    float *got = ops_falloc(len);
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        char desc[512];
        ops_describe(run, desc, sizeof desc, c, seed,
                     "rope %s n_head=%d head_dim=%d n_rot=%d base=%g n=%lld", neox ? "neox" : "normal",
                     n_head, head_dim, n_rot, (double)base, (long long)n);
        mlc_tensor dpos = ops_d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dx = ops_d_out(c, head_dim, n_head, n, x); /* in place */
        c->b.vt->rope(c->b.ctx, dx, dpos, MLC_ROPE_NO_FF, n_rot, base, neox);
        ops_d_fetch(c, dx, got, desc);
        ops_expect_close(run, "rope", MLC_TYPE_F32, desc, got, ref, len);
        ops_d_free(c, dx);
        ops_d_free(c, dpos);
    }
    free(got);
    free(ref);
    free(pos);
    free(x);
}

static void rope_sweep(ops_run *run, bool neox)
{
    static const int hds[] = {32, 64, 128};
    static const int heads[] = {1, 7};
    for (int h = 0; h < 3; h++)
        for (int nh = 0; nh < 2; nh++)
            for (int part = 0; part < 2; part++) /* full and partial (n_rot = head_dim / 2) */
                for (int b = 0; b < OPS_N_BATCHES; b++)
                    rope_case(run, neox, heads[nh], hds[h], part ? hds[h] / 2 : hds[h],
                              (b + h) % 2 ? 1000000.0f : 10000.0f, OPS_BATCHES[b]);
}

Test(cpu_ops, rope_normal)
{
    ops_run *run = ops_setup("rope_normal");
    rope_sweep(run, false);
    ops_teardown(run);
}

Test(cpu_ops, rope_neox)
{
    ops_run *run = ops_setup("rope_neox");
    rope_sweep(run, true);
    ops_teardown(run);
}

/* ---- kv_store, attention --------------------------------------------------------------- */

enum { N_SLOTS = 3 }; /* slots of every cache layer below */

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
            const uint32_t v = OPS_CANARY;
            memcpy(h + 4 * i, &v, 4);
        }
    }
    return h;
}

/* A cache layer [kv_dim, n_ctx, N_SLOTS] of geometry g on the device between guards,
 * initialized to NaN. */
static mlc_tensor d_cache(const ops_cfg *c, const mlc_ref_kv_geom *g)
{
    void *nan = nan_cache(g->type, g->kv_dim * g->n_ctx * N_SLOTS);
    mlc_tensor t = ops_d_guarded(c, g->type, g->kv_dim, g->n_ctx, N_SLOTS, nan);
    free(nan);
    return t;
}

/* The device side of mlc_ref_kv_store: k, v [n, kv_dim] f32 uploaded and stored by the
 * backend's kv_store at (slot[i], pos[i]) into fresh NaN cache layers of geometry g. The
 * inputs live until d_kv_free, as the store may still be running. */
typedef struct d_kv {
    mlc_tensor k, v, slot, pos; /* the inputs */
    mlc_tensor kc, vc;          /* the cache layers */
} d_kv;

static d_kv d_kv_store(const ops_cfg *c, const mlc_ref_kv_geom *g, const float *k, const float *v,
                       const int32_t *slot, const int32_t *pos, int64_t n)
{
    d_kv d;
    d.k = ops_d_in(c, k, MLC_TYPE_F32, g->kv_dim, n, 1);
    d.v = ops_d_in(c, v, MLC_TYPE_F32, g->kv_dim, n, 1);
    d.slot = ops_d_in(c, slot, MLC_TYPE_I32, n, 1, 1);
    d.pos = ops_d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
    d.kc = d_cache(c, g);
    d.vc = d_cache(c, g);
    c->b.vt->kv_store(c->b.ctx, d.k, d.v, d.kc, d.vc, d.slot, d.pos);
    return d;
}

static void d_kv_free(const ops_cfg *c, const d_kv *d)
{
    ops_d_free(c, d->vc);
    ops_d_free(c, d->kc);
    ops_d_free(c, d->pos);
    ops_d_free(c, d->slot);
    ops_d_free(c, d->v);
    ops_d_free(c, d->k);
}

/* Downloads a cache layer (guards and padding checked) widened to float. */
static void d_fetch_cache(const ops_cfg *c, mlc_tensor d, float *host, const char *desc)
{
    const int64_t n_elem = mlc_tensor_nelem(&d);
    const size_t bytes = mlc_tensor_nbytes(&d);
    const int64_t nf = ops_span_floats(&d);
    float *raw = ops_falloc(nf);
    ops_d_fetch(c, d, raw, desc);
    const uint32_t canary = OPS_CANARY;
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

static void kv_store_case(ops_run *run, uint32_t type, int64_t kv_dim, int64_t n)
{
    const uint64_t seed = ops_next_case_seed(run);
    uint64_t s = seed;
    const int64_t n_ctx = 23, cells = N_SLOTS * n_ctx, n_elem = cells * kv_dim;
    const mlc_ref_kv_geom g = {type, n_ctx, kv_dim};
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
    float *k = ops_falloc(n * kv_dim), *v = ops_falloc(n * kv_dim);
    tu_fill_gauss(&s, k, n * kv_dim, 1.0f);
    tu_fill_gauss(&s, v, n * kv_dim, 3.0f);
    /* reference: the written cells hold the f32 inputs; the others keep their NaN */
    double *refk = ops_dalloc(n * kv_dim), *refv = ops_dalloc(n * kv_dim);
    for (int64_t i = 0; i < n * kv_dim; i++) {
        refk[i] = k[i];
        refv[i] = v[i];
    }
    float *gotk = ops_falloc(n_elem), *gotv = ops_falloc(n_elem);
    float *wk = ops_falloc(n * kv_dim), *wv = ops_falloc(n * kv_dim);
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        char desc[512];
        ops_describe(run, desc, sizeof desc, c, seed, "kv_store %s kv_dim=%lld n=%lld", mlc_type_name(type),
                     (long long)kv_dim, (long long)n);
        const d_kv dkv = d_kv_store(c, &g, k, v, slot, pos, n);
        d_fetch_cache(c, dkv.kc, gotk, desc);
        d_fetch_cache(c, dkv.vc, gotv, desc);
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
        ops_expect_close(run, "kv_store", type, desc, wk, refk, n * kv_dim);
        ops_expect_close(run, "kv_store", type, desc, wv, refv, n * kv_dim);
        d_kv_free(c, &dkv);
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
    ops_run *run = ops_setup("kv_store");
    static const int64_t dims[] = {1, 32, 96, 1024};
    for (int t = 0; t < 2; t++)
        for (int d = 0; d < 4; d++)
            for (int b = 0; b < OPS_N_BATCHES; b++)
                kv_store_case(run, t ? MLC_TYPE_F16 : MLC_TYPE_F32, dims[d], OPS_BATCHES[b]);
    ops_teardown(run);
}

/* Attention over a cache of 3 slots x 77 positions. The cells of a slot are stored up to the
 * highest position any token of the batch has there; every other cell is NaN, so reading
 * past pos, or another slot, shows up as a NaN. mode 0: tokens spread over the slots at
 * positions whose pos + 1 is 1, 7, 33, 47, 61, 77...; mode 1: a prefill chunk (consecutive
 * positions of one slot, so later positions are stored and must be masked); mode 2: as 0
 * with queries 4x larger (peaky softmax). */
static void attention_case(ops_run *run, uint32_t type, int head_dim, int n_head, int n_kv_head, int64_t n,
                           int mode, int32_t window, float softcap)
{
    const uint64_t seed = ops_next_case_seed(run);
    uint64_t s = seed;
    const int64_t n_ctx = 77, kv_dim = (int64_t)n_kv_head * head_dim;
    const int64_t n_elem = N_SLOTS * n_ctx * kv_dim, q_len = n * n_head * head_dim;
    const mlc_ref_kv_geom g32 = {MLC_TYPE_F32, n_ctx, kv_dim}, g = {type, n_ctx, kv_dim};
    int32_t *slot = malloc((size_t)n * sizeof *slot), *pos = malloc((size_t)n * sizeof *pos);
    cr_assert(slot && pos);
    static const int32_t spots[] = {0, 6, 32, 46, 60, 76, 12, 1, 20, 58, 36, 70, 2};
    const int64_t first = mode == 1 ? 5 + mlc_rng_below(&s, n_ctx - 5 - n) : 0;
    for (int64_t t = 0; t < n; t++) {
        if (mode == 1) {
            slot[t] = 1;
            pos[t] = (int32_t)(first + t);
        } else {
            slot[t] = (int32_t)((t + (int64_t)(seed % 3)) % N_SLOTS);
            pos[t] = spots[(t + (int64_t)(seed % 13)) % 13];
        }
    }
    int32_t maxpos[N_SLOTS] = {-1, -1, -1};
    for (int64_t t = 0; t < n; t++)
        if (pos[t] > maxpos[slot[t]])
            maxpos[slot[t]] = pos[t];
    /* rows to store: (slot, 0..maxpos[slot]), in random order */
    int64_t n_st = 0;
    for (int i = 0; i < N_SLOTS; i++)
        n_st += maxpos[i] + 1;
    int32_t *st_slot = malloc((size_t)n_st * sizeof *st_slot);
    int32_t *st_pos = malloc((size_t)n_st * sizeof *st_pos);
    cr_assert(st_slot && st_pos);
    for (int64_t i = 0, j = 0; i < N_SLOTS; i++)
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
    float *k = ops_falloc(n_st * kv_dim), *v = ops_falloc(n_st * kv_dim), *q = ops_falloc(q_len);
    tu_fill_gauss(&s, k, n_st * kv_dim, 1.0f);
    tu_fill_gauss(&s, v, n_st * kv_dim, 1.0f);
    tu_fill_gauss(&s, q, q_len, mode == 2 ? 4.0f : 1.0f);
    /* reference: an F32 cache from the same f32 K/V */
    void *rk = nan_cache(MLC_TYPE_F32, n_elem), *rv = nan_cache(MLC_TYPE_F32, n_elem);
    mlc_ref_kv_store(&g32, k, v, rk, rv, st_slot, st_pos, n_st);
    const float scale = 1.0f / sqrtf((float)head_dim);
    const mlc_attn_params ap = {.scale = scale, .window = window, .softcap = softcap};
    const mlc_ref_attn_args ra = {q, rk, rv, slot, pos, n, n_head, n_kv_head, head_dim, ap};
    double *ref = ops_dalloc(q_len);
    cr_assert(mlc_ref_attention(&g32, &ra, ref));
    float *got = ops_falloc(q_len);
    for (int i = 0; i < run->n_cfgs; i++) {
        const ops_cfg *c = &run->cfgs[i];
        char desc[512];
        ops_describe(run, desc, sizeof desc, c, seed,
                     "attention %s head_dim=%d n_head=%d n_kv_head=%d n=%lld mode=%d window=%d softcap=%g",
                     mlc_type_name(type), head_dim, n_head, n_kv_head, (long long)n, mode, window,
                     (double)softcap);
        const d_kv dkv = d_kv_store(c, &g, k, v, st_slot, st_pos, n_st);
        mlc_tensor dslot = ops_d_in(c, slot, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dpos = ops_d_in(c, pos, MLC_TYPE_I32, n, 1, 1);
        mlc_tensor dq = ops_d_in(c, q, MLC_TYPE_F32, head_dim, n_head, n);
        mlc_tensor dout = ops_d_out(c, head_dim, n_head, n, NULL);
        c->b.vt->attention(c->b.ctx, dq, dkv.kc, dkv.vc, dslot, dpos, &ap, dout);
        ops_d_fetch(c, dout, got, desc);
        ops_expect_close(run, "attention", type, desc, got, ref, q_len);
        /* the caches must come through attention unchanged (guards included) */
        float *chk = ops_falloc(n_elem);
        d_fetch_cache(c, dkv.kc, chk, desc);
        d_fetch_cache(c, dkv.vc, chk, desc);
        free(chk);
        ops_d_free(c, dout);
        ops_d_free(c, dq);
        ops_d_free(c, dpos);
        ops_d_free(c, dslot);
        d_kv_free(c, &dkv);
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

static void attention_sweep(ops_run *run, uint32_t type)
{
    static const int hds[] = {32, 64, 128};
    static const int gqa[][2] = {{4, 4}, {8, 2}, {4, 1}, {1, 1}}; /* ratios 1, 4, 4, 1 */
    for (int h = 0; h < 3; h++)
        for (int gi = 0; gi < 4; gi++)
            for (int b = 0; b < OPS_N_BATCHES; b++)
                for (int mode = 0; mode < 3; mode++)
                    attention_case(run, type, hds[h], gqa[gi][0], gqa[gi][1], OPS_BATCHES[b], mode, 0, 0);
}

Test(cpu_ops, attention_f32)
{
    ops_run *run = ops_setup("attention_f32");
    attention_sweep(run, MLC_TYPE_F32);
    ops_teardown(run);
}

Test(cpu_ops, attention_f16)
{
    ops_run *run = ops_setup("attention_f16");
    attention_sweep(run, MLC_TYPE_F16);
    ops_teardown(run);
}

/* Sliding windows (1, 7, 32: positions run to 76, past every window) and logit soft-caps
 * (mode 2's large queries drive the scores into the cap's tanh saturation), head dims up to
 * 256, GQA and MQA. */
static void attention_swa_sweep(ops_run *run, uint32_t type)
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
                        attention_case(run, type, hds[h], gqa[gi][0], gqa[gi][1],
                                       OPS_BATCHES[(w + cp + h) % OPS_N_BATCHES], (w + cp) % 3,
                                       windows[w], caps[cp]);
}

Test(cpu_ops, attention_swa_softcap_f32)
{
    ops_run *run = ops_setup("attention_swa_softcap_f32");
    attention_swa_sweep(run, MLC_TYPE_F32);
    ops_teardown(run);
}

Test(cpu_ops, attention_swa_softcap_f16)
{
    ops_run *run = ops_setup("attention_swa_softcap_f16");
    attention_swa_sweep(run, MLC_TYPE_F16);
    ops_teardown(run);
}

/* ---- swiglu, add, add_bias, gather ----------------------------------------------------- */
