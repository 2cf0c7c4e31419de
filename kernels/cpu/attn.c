/* attn.c: attention over blocks of queries (see attn.h).
 *
 * A work item is up to QMAX queries that share a KV head and a slot: heads of one group
 * times consecutive tokens. Their position ranges [lo, np) differ (causal, window), so the
 * range common to all goes through the tiles for every query at once and each query's
 * positions outside it one query at a time: before the common range first, after it last,
 * so every query still sees its positions in ascending order, as one query alone does.
 * Rows outside a query's range are never read for it. */
#include "attn.h"

#include <math.h>
#include <string.h>

#define QMAX 8 /* queries per item: [QMAX][n_ctx] scores and [QMAX][hd] queries per thread */

typedef struct attn_job {
    const mlc_cpu_kernels *k;
    const mlc_cpu_attn *a;
    float *scratch;
    size_t per_thread;  /* floats */
    int hq, tq, n_sub;  /* heads and tokens per item, items per KV head and token block */
    int64_t n_items;
} attn_job;

/* The queries of one item that share a slot, and their ranges. */
typedef struct group {
    int nq;
    const float *q[QMAX]; /* [hd], F16-rounded with an F16 cache */
    float *sc[QMAX];      /* [n_ctx] scores, then weights, by position */
    float *out[QMAX];     /* [hd] */
    int32_t lo[QMAX], np[QMAX];
    int32_t a[QMAX], b[QMAX]; /* own positions: [lo, a) before the common range, [b, np) after */
    int32_t clo, chi;         /* the common range, empty when clo == chi */
    const uint8_t *kr, *vr;   /* key and value rows of position 0 of the slot and KV head */
    size_t stride;            /* bytes from one position's row to the next */
} group;

static void group_ranges(group *g)
{
    g->clo = 0;
    g->chi = INT32_MAX;
    for (int i = 0; i < g->nq; i++) {
        g->clo = g->lo[i] > g->clo ? g->lo[i] : g->clo;
        g->chi = g->np[i] < g->chi ? g->np[i] : g->chi;
    }
    if (g->clo >= g->chi)
        g->clo = g->chi = 0;
    for (int i = 0; i < g->nq; i++) {
        g->a[i] = g->clo < g->chi ? g->clo : g->np[i];
        g->b[i] = g->clo < g->chi ? g->chi : g->np[i];
    }
}

/* scores of every query over its range */
static void scores(const attn_job *j, group *g)
{
    const mlc_kq_tile_fn kq = j->k->kq_tile[j->a->type == MLC_TYPE_F16];
    const int hd = j->a->hd;
    float *o[QMAX];
    for (int i = 0; i < g->nq; i++) {
        o[i] = g->sc[i] + g->lo[i];
        kq(hd, 1, &g->q[i], g->kr + (size_t)g->lo[i] * g->stride, g->stride, g->a[i] - g->lo[i], &o[i]);
        o[i] = g->sc[i] + g->clo;
    }
    if (g->clo < g->chi)
        kq(hd, g->nq, g->q, g->kr + (size_t)g->clo * g->stride, g->stride, g->chi - g->clo, o);
    for (int i = 0; i < g->nq; i++) {
        o[i] = g->sc[i] + g->b[i];
        kq(hd, 1, &g->q[i], g->kr + (size_t)g->b[i] * g->stride, g->stride, g->np[i] - g->b[i], &o[i]);
    }
}

/* sums[i] += the scores of positions [t0, t1) of queries i0 .. i0 + 3, in order: four
 * chains in registers (a query past nq repeats one, its sum unused) */
static void sum4(const group *g, int i0, int32_t t0, int32_t t1, double *sums)
{
    const float *r[4];
    for (int k = 0; k < 4; k++)
        r[k] = g->sc[i0 + k < g->nq ? i0 + k : i0];
    double s0 = sums[0], s1 = sums[1], s2 = sums[2], s3 = sums[3];
    for (int32_t t = t0; t < t1; t++) {
        s0 += r[0][t];
        s1 += r[1][t];
        s2 += r[2][t];
        s3 += r[3][t];
    }
    sums[0] = s0;
    sums[1] = s1;
    sums[2] = s2;
    sums[3] = s3;
}

/* scores to weights: softmax in float with the sum in double, the positions of each query
 * in ascending order */
static void weights(const attn_job *j, group *g)
{
    const mlc_attn_params *p = &j->a->p;
    double sum[QMAX] = {0}; /* QMAX a multiple of 4: sum4 stays inside */
    for (int i = 0; i < g->nq; i++) {
        float *s = g->sc[i] + g->lo[i];
        const int32_t n = g->np[i] - g->lo[i];
        j->k->scale(n, s, p->scale, s);
        if (p->softcap > 0)
            for (int32_t t = 0; t < n; t++)
                s[t] = p->softcap * tanhf(s[t] / p->softcap);
        j->k->exp_sub(n, s, j->k->vmax(n, s, -INFINITY), s);
        for (int32_t t = 0; t < g->a[i] - g->lo[i]; t++)
            sum[i] += s[t];
    }
    for (int i = 0; i < g->nq; i += 4)
        sum4(g, i, g->clo, g->chi, sum + i);
    for (int i = 0; i < g->nq; i++) {
        float *s = g->sc[i] + g->lo[i];
        for (int32_t t = g->b[i]; t < g->np[i]; t++)
            sum[i] += g->sc[i][t];
        const float inv = (float)(1.0 / sum[i]); /* ggml scales by the float inverse of the double sum */
        const int32_t n = g->np[i] - g->lo[i];
        j->k->scale(n, s, inv, s);
        if (j->a->type == MLC_TYPE_F16) /* rounded like ggml's F16 P.V matmul */
            j->k->round16(n, s, s);
    }
}

static void values(const attn_job *j, group *g)
{
    const mlc_pv_tile_fn pv = j->k->pv_tile[j->a->type == MLC_TYPE_F16];
    const int hd = j->a->hd;
    const float *w[QMAX];
    for (int i = 0; i < g->nq; i++) {
        memset(g->out[i], 0, (size_t)hd * sizeof(float));
        w[i] = g->sc[i] + g->lo[i];
        pv(hd, 1, &w[i], g->vr + (size_t)g->lo[i] * g->stride, g->stride, g->a[i] - g->lo[i], &g->out[i]);
        w[i] = g->sc[i] + g->clo;
    }
    if (g->clo < g->chi)
        pv(hd, g->nq, w, g->vr + (size_t)g->clo * g->stride, g->stride, g->chi - g->clo, g->out);
    for (int i = 0; i < g->nq; i++) {
        w[i] = g->sc[i] + g->b[i];
        pv(hd, 1, &w[i], g->vr + (size_t)g->b[i] * g->stride, g->stride, g->np[i] - g->b[i], &g->out[i]);
    }
}

/* tokens [t0, t1) of one slot, heads [h0, h1) of KV head kvh */
static void run_group(const attn_job *j, int64_t t0, int64_t t1, int h0, int h1, int kvh, float *scratch)
{
    const mlc_cpu_attn *a = j->a;
    const size_t esz = a->type == MLC_TYPE_F16 ? 2 : 4, kv_dim = (size_t)a->n_kv_head * (size_t)a->hd;
    float *qbuf = scratch + (size_t)QMAX * (size_t)a->n_ctx; /* [QMAX][hd] */
    group g = {.nq = 0, .stride = kv_dim * esz};
    const size_t row0 = (size_t)a->slot[t0] * (size_t)a->n_ctx * kv_dim + (size_t)kvh * (size_t)a->hd;
    g.kr = (const uint8_t *)a->kc + row0 * esz;
    g.vr = (const uint8_t *)a->vc + row0 * esz;
    for (int64_t t = t0; t < t1; t++)
        for (int h = h0; h < h1; h++) {
            const int i = g.nq++;
            const size_t off = ((size_t)t * (size_t)a->n_head + (size_t)h) * (size_t)a->hd;
            g.q[i] = a->q + off;
            if (a->type == MLC_TYPE_F16) { /* rounded like ggml's F16 Q.K matmul */
                j->k->round16(a->hd, a->q + off, qbuf + (size_t)i * (size_t)a->hd);
                g.q[i] = qbuf + (size_t)i * (size_t)a->hd;
            }
            g.sc[i] = scratch + (size_t)i * (size_t)a->n_ctx;
            g.out[i] = a->out + off;
            g.np[i] = a->pos[t] + 1;
            g.lo[i] = a->p.window > 0 && g.np[i] > a->p.window ? g.np[i] - a->p.window : 0;
        }
    group_ranges(&g);
    scores(j, &g);
    weights(j, &g);
    values(j, &g);
}

/* Items from the shared counter, the last tokens' (the largest) first. */
static void attn_items(void *arg, int ith, int64_t b, int64_t e)
{
    const attn_job *j = arg;
    const mlc_cpu_attn *a = j->a;
    const int group_heads = a->n_head / a->n_kv_head;
    float *scratch = j->scratch + (size_t)ith * j->per_thread;
    for (int64_t it = b; it < e; it++) {
        const int64_t i = j->n_items - 1 - it;
        const int64_t per_block = (int64_t)a->n_kv_head * j->n_sub, block = i / per_block;
        const int kvh = (int)(i % per_block / j->n_sub), sub = (int)(i % j->n_sub);
        const int h0 = kvh * group_heads + sub * j->hq;
        const int h1 = h0 + j->hq < (kvh + 1) * group_heads ? h0 + j->hq : (kvh + 1) * group_heads;
        const int64_t tb = block * j->tq, te = tb + j->tq < a->n ? tb + j->tq : a->n;
        for (int64_t t0 = tb, t1; t0 < te; t0 = t1) { /* runs of tokens of one slot */
            for (t1 = t0 + 1; t1 < te && a->slot[t1] == a->slot[t0]; t1++)
                ;
            run_group(j, t0, t1, h0, h1, kvh, scratch);
        }
    }
}

size_t mlc_cpu_attn_scratch(const mlc_cpu_attn *a)
{
    return (size_t)QMAX * ((size_t)a->n_ctx + (size_t)a->hd);
}

void mlc_cpu_attn_run(const mlc_cpu_kernels *k, mlc_pool *pool, const mlc_cpu_attn *a, float *scratch)
{
    const int group_heads = a->n_head / a->n_kv_head;
    attn_job j = {.k = k, .a = a, .scratch = scratch, .per_thread = mlc_cpu_attn_scratch(a)};
    /* fewer heads per item while there are too few items to keep every thread busy
     * (decode with few KV heads) */
    for (j.hq = group_heads < QMAX ? group_heads : QMAX;; j.hq = (j.hq + 1) / 2) {
        j.tq = QMAX / j.hq;
        j.n_sub = (group_heads + j.hq - 1) / j.hq;
        j.n_items = (a->n + j.tq - 1) / j.tq * a->n_kv_head * j.n_sub;
        if (j.hq == 1 || j.n_items >= 2 * (int64_t)mlc_pool_size(pool))
            break;
    }
    /* one item at a time: late tokens' items see more positions than early ones' */
    mlc_pool_for(pool, j.n_items, 1, attn_items, &j);
}
