/* tests/test_attn.c: the CPU backend's attention (kernels/cpu/attn.c) and the tile kernels
 * it runs on (vecdot_attn.c), in every kernel set this CPU runs.
 * - kq_tile and pv_tile give the bits of kq and axpy row after row, for rows of odd lengths,
 *   1..8 queries and 1..33 rows.
 * - round16 gives mlc_fp32_to_fp16 then mlc_fp16_to_fp32 bit for bit over a million spread
 *   bit patterns and the edge values (subnormals, the overflow threshold, inf, NaNs).
 * - vmax gives the fmaxf fold, NaNs skipped (a zero maximum compared by value).
 * - mlc_cpu_attn_run gives, bit for bit, the straightforward attention below (one query at
 *   a time through kq, fmaxf, exp_sub, a double sum and axpy) for head dims 48..256, MHA and
 *   GQA, F16 and F32 caches, window and softcap on and off, 1..512 tokens, two slots
 *   interleaved and positions out of order, on 1 and 2 threads. Cache rows that no query
 *   may read hold NaN, so reading one (even with weight 0) shows in the output. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/attn.h"
#include "mlc/quant.h"
#include "util.h"

static const char *const isas[] = {"scalar", "avx2", "avx512"};

static bool set_for(const char *isa, mlc_cpu_kernels *k)
{
    mlc_err err;
    return mlc_cpu_kernels_init(k, isa, &err) == MLC_OK;
}

static float round16(float x)
{
    return mlc_fp16_to_fp32(mlc_fp32_to_fp16(x));
}

Test(attn, tiles_match_rows)
{
    static const int lens[] = {1, 2, 3, 5, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 128, 130, 256};
    static const int nps[] = {1, 2, 3, 4, 5, 7, 15, 16, 17, 33};
    uint64_t seed = 11;
    enum { ROWS = 40, STRIDE = 263 }; /* values per cache row: more than any length */
    float *kf = malloc(sizeof(float) * ROWS * STRIDE), q[8][264], sc[8][40], ref[8][40]; /* q: 256 at offsets 0..7 */
    uint16_t *kh = malloc(sizeof(uint16_t) * ROWS * STRIDE);
    float out[8][256], out_ref[8][256];
    cr_assert(kf && kh);
    for (int i = 0; i < ROWS * STRIDE; i++) {
        kf[i] = tu_lcg_pm1(&seed) * 4;
        kh[i] = mlc_fp32_to_fp16(kf[i]);
    }
    for (int g = 0; g < 8; g++)
        for (int d = 0; d < 264; d++)
            q[g][d] = round16(tu_lcg_pm1(&seed) * 2);
    mlc_cpu_kernels k;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
            for (int f16 = 0; f16 < 2; f16++)
                for (int nq = 1; nq <= 8; nq++)
                    for (size_t pi = 0; pi < sizeof nps / sizeof *nps; pi++) {
                        const int n = lens[li], np = nps[pi];
                        const size_t esz = f16 ? 2 : 4, stride = STRIDE * esz;
                        const void *rows = f16 ? (const void *)(kh + 3) : (const void *)(kf + 3);
                        const float *qp[8];
                        float *sp[8], *op[8];
                        const float *wp[8];
                        for (int g = 0; g < nq; g++) {
                            qp[g] = q[g] + g; /* odd offsets */
                            sp[g] = sc[g];
                            op[g] = out[g];
                            wp[g] = sc[g];
                            for (int p = 0; p < np; p++)
                                ref[g][p] = k.kq[f16](n, qp[g], (const uint8_t *)rows + (size_t)p * stride);
                        }
                        k.kq_tile[f16](n, nq, qp, rows, stride, np, sp);
                        for (int g = 0; g < nq; g++)
                            cr_assert_eq(memcmp(sc[g], ref[g], (size_t)np * sizeof(float)), 0,
                                         "%s kq_tile f16=%d n=%d nq=%d np=%d query %d", isas[s], f16, n, nq, np, g);
                        for (int g = 0; g < nq; g++)
                            for (int d = 0; d < n; d++)
                                out[g][d] = out_ref[g][d] = tu_lcg_pm1(&seed);
                        for (int p = 0; p < np; p++)
                            for (int g = 0; g < nq; g++)
                                k.axpy[f16](n, sc[g][p], (const uint8_t *)rows + (size_t)p * stride, out_ref[g]);
                        k.pv_tile[f16](n, nq, wp, rows, stride, np, op);
                        for (int g = 0; g < nq; g++)
                            cr_assert_eq(memcmp(out[g], out_ref[g], (size_t)n * sizeof(float)), 0,
                                         "%s pv_tile f16=%d n=%d nq=%d np=%d query %d", isas[s], f16, n, nq, np, g);
                    }
    }
    free(kf);
    free(kh);
}

Test(attn, round16_matches_conversion)
{
    static const uint32_t edges[] = {
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FA5A5A5,
        0xFFBFFFFF, 0x00000001, 0x80000001, 0x33000000, 0x33000001, 0x32FFFFFF, 0x33800000, 0x33C00000,
        0x387FE000, 0x387FF000, 0x387FEFFF, 0x38800000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001,
        0xC77FF000, 0x47800000, 0x3F800000, 0x3F801000, 0x3F803000, 0x3F802FFF, 0x7F7FFFFF, 0xB3000001};
    enum { N = 1001 }; /* odd: every set's tail runs */
    float x[N], got[N];
    mlc_cpu_kernels k;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        int m = 0;
        for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) {
            x[m++] = tu_f32_of_bits((uint32_t)u);
            if (m == N || u + 4099 > 0xFFFFFFFFull) {
                for (size_t e = 0; e < sizeof edges / sizeof *edges && m < N; e++)
                    x[m++] = tu_f32_of_bits(edges[e]);
                k.round16(m, x, got);
                for (int i = 0; i < m; i++)
                    cr_assert_eq(tu_f32_bits(got[i]), tu_f32_bits(round16(x[i])), "%s round16(%08x): %08x against %08x",
                                 isas[s], tu_f32_bits(x[i]), tu_f32_bits(got[i]), tu_f32_bits(round16(x[i])));
                m = 0;
            }
        }
    }
}

Test(attn, vmax_is_fmaxf_fold)
{
    uint64_t seed = 5;
    float x[70];
    mlc_cpu_kernels k;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int rep = 0; rep < 400; rep++) {
            const int n = rep % 70;
            for (int i = 0; i < n; i++) {
                const float r = tu_lcg_pm1(&seed);
                x[i] = r < -0.8f ? NAN : r < -0.7f ? -INFINITY : r < -0.6f ? -0.0f : r < -0.5f ? 0.0f : r * 50 - 30;
            }
            float want = -INFINITY;
            for (int i = 0; i < n; i++)
                want = fmaxf(want, x[i]);
            const float got = k.vmax(n, x, -INFINITY);
            cr_assert(want == 0 ? got == 0 : tu_f32_bits(got) == tu_f32_bits(want), "%s vmax n=%d: %a against %a", isas[s], n,
                      got, want);
        }
    }
}

/* ---- the whole attention */

typedef struct acase {
    int hd, n_head, n_kv_head, f16, window;
    float softcap;
    int n, layout; /* 0: one slot, consecutive; 1: two slots interleaved; 2: positions out of order */
} acase;

/* One query at a time through the per-row kernels. */
static void ref_attn(const mlc_cpu_kernels *k, const mlc_cpu_attn *a)
{
    const int f16 = a->type == MLC_TYPE_F16, hd = a->hd;
    const size_t esz = f16 ? 2 : 4, kv_dim = (size_t)a->n_kv_head * (size_t)hd;
    float *sc = malloc(sizeof(float) * (size_t)a->n_ctx), qr[256];
    cr_assert(sc);
    for (int64_t t = 0; t < a->n; t++)
        for (int h = 0; h < a->n_head; h++) {
            const int kvh = h / (a->n_head / a->n_kv_head);
            const float *q = a->q + (t * a->n_head + h) * hd;
            float *out = a->out + (t * a->n_head + h) * hd;
            const size_t base = (size_t)a->slot[t] * (size_t)a->n_ctx;
            const int32_t np = a->pos[t] + 1, lo = a->p.window > 0 && np > a->p.window ? np - a->p.window : 0;
            for (int d = 0; d < hd; d++)
                qr[d] = f16 ? round16(q[d]) : q[d];
            for (int32_t p = lo; p < np; p++) {
                const size_t row = (base + (size_t)p) * kv_dim + (size_t)kvh * (size_t)hd;
                const float s = k->kq[f16](hd, qr, (const uint8_t *)a->kc + row * esz) * a->p.scale;
                sc[p] = a->p.softcap > 0 ? a->p.softcap * tanhf(s / a->p.softcap) : s;
            }
            float max = -INFINITY;
            for (int32_t p = lo; p < np; p++)
                max = fmaxf(max, sc[p]);
            k->exp_sub(np - lo, sc + lo, max, sc + lo);
            double sum = 0;
            for (int32_t p = lo; p < np; p++)
                sum += sc[p];
            memset(out, 0, (size_t)hd * sizeof(float));
            const float inv = (float)(1.0 / sum);
            for (int32_t p = lo; p < np; p++) {
                const size_t row = (base + (size_t)p) * kv_dim + (size_t)kvh * (size_t)hd;
                const float w = sc[p] * inv;
                k->axpy[f16](hd, f16 ? round16(w) : w, (const uint8_t *)a->vc + row * esz, out);
            }
        }
    free(sc);
}

static void run_case(const acase *c, uint64_t seed)
{
    const int n = c->n, n_ctx = 2 * n + 16, n_slots = 2;
    const size_t kv_dim = (size_t)c->n_kv_head * (size_t)c->hd, qn = (size_t)n * (size_t)c->n_head * (size_t)c->hd;
    const size_t cn = (size_t)n_slots * (size_t)n_ctx * kv_dim, esz = c->f16 ? 2 : 4;
    int32_t *slot = malloc(sizeof(int32_t) * (size_t)n), *pos = malloc(sizeof(int32_t) * (size_t)n);
    bool *used = calloc((size_t)n_slots * (size_t)n_ctx, 1);
    float *q = malloc(sizeof(float) * qn), *ref = malloc(sizeof(float) * qn), *out = malloc(sizeof(float) * qn);
    uint8_t *kc = malloc(cn * esz), *vc = malloc(cn * esz);
    cr_assert(slot && pos && used && q && ref && out && kc && vc);
    for (int t = 0; t < n; t++) {
        slot[t] = c->layout == 1 ? t % 2 : c->layout == 0;
        pos[t] = c->layout == 0 ? 3 + t : c->layout == 1 ? t / 2 + (t % 2 ? 5 : 0) : (t * 5) % (2 * n + 1);
        const int32_t np = pos[t] + 1, lo = c->window > 0 && np > c->window ? np - c->window : 0;
        for (int32_t p = lo; p < np; p++)
            used[slot[t] * n_ctx + p] = true;
    }
    for (size_t i = 0; i < qn; i++)
        q[i] = tu_lcg_pm1(&seed) * 2;
    for (size_t r = 0; r < (size_t)n_slots * (size_t)n_ctx; r++)
        for (size_t d = 0; d < kv_dim; d++) {
            const size_t i = r * kv_dim + d;
            const float kv = used[r] ? tu_lcg_pm1(&seed) : NAN, vv = used[r] ? tu_lcg_pm1(&seed) : NAN;
            if (c->f16) {
                ((uint16_t *)kc)[i] = mlc_fp32_to_fp16(kv);
                ((uint16_t *)vc)[i] = mlc_fp32_to_fp16(vv);
            } else {
                ((float *)kc)[i] = kv;
                ((float *)vc)[i] = vv;
            }
        }
    mlc_cpu_attn a = {.type = c->f16 ? MLC_TYPE_F16 : MLC_TYPE_F32, .q = q, .kc = kc, .vc = vc, .slot = slot,
                      .pos = pos, .out = ref, .n = n, .n_ctx = n_ctx, .n_head = c->n_head,
                      .n_kv_head = c->n_kv_head, .hd = c->hd,
                      .p = {.scale = 3.0f / sqrtf((float)c->hd), .window = c->window, .softcap = c->softcap}};
    mlc_cpu_kernels k;
    for (int s = 2; s >= 0; s--) /* the reference through the best set's rows (every set's are the same) */
        if (set_for(isas[s], &k))
            break;
    ref_attn(&k, &a);
    for (size_t i = 0; i < qn; i++)
        cr_assert(isfinite(ref[i]), "reference reads an unused row");
    a.out = out;
    for (size_t s = 0; s < sizeof isas / sizeof *isas; s++) {
        if (!set_for(isas[s], &k))
            continue;
        for (int threads = 1; threads <= 2; threads++) {
            mlc_pool *pool = mlc_pool_new(threads);
            float *scratch = malloc(sizeof(float) * mlc_cpu_attn_scratch(&a) * (size_t)threads);
            cr_assert(pool && scratch);
            for (size_t i = 0; i < qn; i++)
                out[i] = 1e30f;
            mlc_cpu_attn_run(&k, pool, &a, scratch);
            cr_assert_eq(memcmp(out, ref, qn * sizeof(float)), 0,
                         "%s, %d threads: hd %d, heads %d/%d, %s, window %d, softcap %g, %d tokens, layout %d",
                         isas[s], threads, c->hd, c->n_head, c->n_kv_head, c->f16 ? "f16" : "f32", c->window,
                         (double)c->softcap, n, c->layout);
            free(scratch);
            mlc_pool_free(pool);
        }
    }
    free(slot);
    free(pos);
    free(used);
    free(q);
    free(ref);
    free(out);
    free(kc);
    free(vc);
}

Test(attn, blocked_matches_per_query_bits)
{
    static const int hds[] = {48, 64, 128, 256}, heads[][2] = {{6, 6}, {12, 12}, {4, 1}, {8, 2}}, ns[] = {1, 7, 33};
    int i = 0;
    for (int hi = 0; hi < 4; hi++)
        for (int gi = 0; gi < 4; gi++)
            for (int ni = 0; ni < 3; ni++, i++) {
                const acase c = {.hd = hds[hi], .n_head = heads[gi][0], .n_kv_head = heads[gi][1], .f16 = i & 1,
                                 .window = i & 2 ? 5 : 0, .softcap = i & 4 ? 2.0f : 0, .n = ns[ni],
                                 .layout = (i / 8 + i) % 3};
                run_case(&c, (uint64_t)i + 1);
            }
}

Test(attn, blocked_matches_per_query_bits_long_prompts)
{
    static const acase cases[] = {
        {.hd = 64, .n_head = 4, .n_kv_head = 1, .f16 = 1, .n = 512},
        {.hd = 48, .n_head = 6, .n_kv_head = 6, .window = 100, .softcap = 2.0f, .n = 512},
        {.hd = 128, .n_head = 8, .n_kv_head = 2, .f16 = 1, .window = 40, .n = 130, .layout = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(&cases[i], 100 + i);
}
