/* ops.cl: the forward pass's other ops: rms_norm, rope, kv_store, attention, the
 * elementwise ops and gather. Index operands (ids, slots, positions, rows) are checked here:
 * an index outside its range writes nothing and is reported through the err flag. */

/* y = x / rms(x) * w per row of dim values; one work group of WG items per row. */
kernel void rms_norm(global const uchar *xb, ulong xoff, global const uchar *wb, ulong woff,
                     global uchar *yb, ulong yoff, int dim, float eps)
{
    local acc_t part[WG];
    const int lid = get_local_id(0);
    const ulong row = get_group_id(1);
    global const float *x = CPTR(float, xb, xoff) + row * dim, *w = CPTR(float, wb, woff);
    global float *y = PTR(float, yb, yoff) + row * dim;
    acc_t s = 0;
    for (int i = lid; i < dim; i += WG)
        s += (acc_t)(x[i] * x[i]);
    part[lid] = s;
    reduce_acc(part);
    const float scale = 1.0f / sqrt((float)(part[0] / (acc_t)dim) + eps);
    for (int i = lid; i < dim; i += WG)
        y[i] = (x[i] * scale) * w[i];
}

/* Rotary embedding in place; one work item per (pair, head, token). The angle of pair i is
 * built by i multiplications by theta_scale, as the CPU (and ggml) do, so both agree; with
 * frequency factors (has_ff: ff [n_rot/2] F32) it is then divided by ff[i]. */
kernel void rope(global uchar *xb, ulong xoff, global const uchar *pb, ulong poff,
                 global const uchar *fb, ulong foff, int has_ff, int head_dim, int n_head,
                 int n_rot, float theta_scale, int neox, int n)
{
    const int i = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    if (i >= n_rot / 2 || h >= n_head || t >= n)
        return;
    float theta = (float)CPTR(int, pb, poff)[t];
    for (int k = 0; k < i; k++)
        theta *= theta_scale;
    if (has_ff)
        theta = theta / CPTR(float, fb, foff)[i];
    const float c = COSF(theta), s = SINF(theta);
    global float *v = PTR(float, xb, xoff) + ((ulong)t * n_head + h) * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

/* Reads the (slot, pos) of token t, or flags the first that is out of range. */
bool cell_ok(global const uchar *sb, ulong soff, global const uchar *pb, ulong poff, int t,
             int n_slots, int n_ctx, int e_slot, int e_pos, global int *err, int *sl, int *ps)
{
    *sl = CPTR(int, sb, soff)[t];
    *ps = CPTR(int, pb, poff)[t];
    if (*sl < 0 || *sl >= n_slots) {
        flag(err, e_slot, t, *sl);
        return false;
    }
    if (*ps < 0 || *ps >= n_ctx) {
        flag(err, e_pos, t, *ps);
        return false;
    }
    return true;
}

/* k, v [kv_dim, n] into the caches [kv_dim, n_ctx, n_slots] at (slot, pos). */
#define KV_STORE(NAME, ST)                                                                       \
    kernel void kv_store_##NAME(global const uchar *kb, ulong koff, global const uchar *vb,       \
                                ulong voff, global uchar *kcb, ulong kcoff, global uchar *vcb,    \
                                ulong vcoff, global const uchar *sb, ulong soff,                  \
                                global const uchar *pb, ulong poff, int kv_dim, int n_ctx,        \
                                int n_slots, int n, global int *err)                             \
    {                                                                                            \
        const int i = get_global_id(0), t = get_global_id(1);                                    \
        int sl, ps;                                                                              \
        if (i >= kv_dim || t >= n ||                                                             \
            !cell_ok(sb, soff, pb, poff, t, n_slots, n_ctx, E_KV_SLOT, E_KV_POS, err, &sl, &ps)) \
            return;                                                                              \
        const ulong dst = ((ulong)sl * n_ctx + ps) * kv_dim + i, src = (ulong)t * kv_dim + i;    \
        ST(CPTR(float, kb, koff)[src], dst, kcb + kcoff);                                        \
        ST(CPTR(float, vb, voff)[src], dst, vcb + vcoff);                                        \
    }
#define ST_F32(v, i, p) (((global float *)(p))[i] = (v))
#define ST_F16(v, i, p) vstore_half_rte((v), (i), (global half *)(p))
KV_STORE(f32, ST_F32)
KV_STORE(f16, ST_F16)

#define LD_F32(p, i) ((p)[i])
#define LD_F16(p, i) LD_HALF(p, i)
#define RND_F32(x) (x)
#define RND_F16(x) round_f16(x)

/* out = softmax(q K^T * scale) V for one (head, token) per work group of WG items, in the
 * CPU's scheme: scores in float (sequential over the head's dims), max, exp, sum, then one
 * multiplication by the inverse sum; with an F16 cache q and the probabilities are rounded
 * to half, as ggml's F16 matmuls do. Scores go to the scratch [n, n_head, n_ctx] of this
 * launch (tokens t0 .. t0 + n - 1). */
#define ATTENTION(NAME, KT, LD, RND)                                                             \
    kernel void attention_##NAME(                                                                \
        global const uchar *qb, ulong qoff, global const uchar *kcb, ulong kcoff,                 \
        global const uchar *vcb, ulong vcoff, global const uchar *sb, ulong soff,                 \
        global const uchar *pb, ulong poff, global uchar *ob, ulong ooff, global float *scores,   \
        int hd, int n_head, int n_kv_head, int n_ctx, int n_slots, int t0, float scale,           \
        int window, float softcap, global int *err)                                              \
    {                                                                                            \
        local float ql[MAX_HD];                                                                  \
        local float part[WG];                                                                    \
        local acc_t psum[WG];                                                                    \
        const int lid = get_local_id(0), h = get_group_id(1), tl = get_group_id(2), t = t0 + tl; \
        /* No early return before the barriers: a bad cell attends to nothing, writes nothing. */ \
        int sl, ps;                                                                              \
        const bool ok = cell_ok(sb, soff, pb, poff, t, n_slots, n_ctx, E_ATT_SLOT, E_ATT_POS, err, \
                                &sl, &ps);                                                       \
        if (!ok)                                                                                 \
            sl = ps = -1;                                                                        \
        const int kvh = h / (n_head / n_kv_head);                                                \
        const ulong kv_dim = (ulong)n_kv_head * hd;                                              \
        global const KT *kc = CPTR(KT, kcb, kcoff), *vc = CPTR(KT, vcb, vcoff);                  \
        global const float *q = CPTR(float, qb, qoff) + ((ulong)t * n_head + h) * hd;            \
        for (int d = lid; d < hd; d += WG)                                                       \
            ql[d] = RND(q[d]);                                                                   \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
        const int np = ps + 1, lo = window > 0 && np > window ? np - window : 0;                 \
        const ulong base = ok ? (ulong)sl * n_ctx : 0;                                           \
        global float *sc = scores + ((ulong)tl * n_head + h) * n_ctx;                            \
        float mx = -INFINITY;                                                                    \
        for (int p = lo + lid; p < np; p += WG) {                                                \
            const ulong row = (base + p) * kv_dim + (ulong)kvh * hd;                             \
            float a = 0;                                                                         \
            for (int d = 0; d < hd; d++)                                                         \
                a += ql[d] * LD(kc, row + d);                                                    \
            float s = a * scale;                                                                 \
            if (softcap > 0)                                                                     \
                s = softcap * TANHF(s / softcap);                                                 \
            sc[p] = s;                                                                           \
            mx = fmax(mx, s);                                                                    \
        }                                                                                        \
        part[lid] = mx;                                                                          \
        reduce_max(part);                                                                        \
        mx = part[0];                                                                            \
        barrier(CLK_LOCAL_MEM_FENCE);                                                            \
        acc_t sum = 0;                                                                           \
        for (int p = lo + lid; p < np; p += WG) {                                                \
            const float e = EXPF(sc[p] - mx);                                                     \
            sc[p] = e;                                                                           \
            sum += e;                                                                            \
        }                                                                                        \
        psum[lid] = sum;                                                                         \
        reduce_acc(psum);                                                                        \
        const float inv = (float)((acc_t)1 / psum[0]);                                           \
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);                                     \
        global float *o = PTR(float, ob, ooff) + ((ulong)t * n_head + h) * hd;                   \
        for (int d = lid; ok && d < hd; d += WG) {                                               \
            float acc = 0;                                                                       \
            for (int p = lo; p < np; p++)                                                        \
                acc += RND(sc[p] * inv) * LD(vc, (base + p) * kv_dim + (ulong)kvh * hd + d);     \
            o[d] = acc;                                                                          \
        }                                                                                        \
    }
ATTENTION(f32, float, LD_F32, RND_F32)
ATTENTION(f16, ushort, LD_F16, RND_F16)

/* ---------------------------------------------------------------- elementwise, gather */

kernel void swiglu(global const uchar *gb, ulong goff, global const uchar *ub, ulong uoff,
                   global uchar *ob, ulong ooff, int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float x = CPTR(float, gb, goff)[i];
    PTR(float, ob, ooff)[i] = x / (1.0f + EXPF(-x)) * CPTR(float, ub, uoff)[i];
}

kernel void geglu(global const uchar *gb, ulong goff, global const uchar *ub, ulong uoff,
                  global uchar *ob, ulong ooff, int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    const float x = CPTR(float, gb, goff)[i];
    PTR(float, ob, ooff)[i] = 0.5f * x * (1.0f + TANHF(k * (x + 0.044715f * x * x * x))) *
                              CPTR(float, ub, uoff)[i];
}

/* out = a + b or a * b; b has n values or one row of dim broadcast over a's rows. */
kernel void binary(global const uchar *ab, ulong aoff, global const uchar *bb, ulong boff,
                   global uchar *ob, ulong ooff, int n, int nb, int dim, int mul)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float a = CPTR(float, ab, aoff)[i], b = CPTR(float, bb, boff)[nb == n ? i : i % dim];
    PTR(float, ob, ooff)[i] = mul ? a * b : a + b;
}

kernel void scale(global const uchar *xb, ulong xoff, float s, global uchar *ob, ulong ooff, int n)
{
    const int i = get_global_id(0);
    if (i < n)
        PTR(float, ob, ooff)[i] = CPTR(float, xb, xoff)[i] * s;
}

/* out [dim, n]: row r is row rows[r] of x [dim, n_rows]. */
kernel void gather(global const uchar *xb, ulong xoff, global const uchar *rb, ulong roff,
                   global uchar *ob, ulong ooff, int dim, int n, int n_rows, global int *err)
{
    const int i = get_global_id(0), r = get_global_id(1);
    if (i >= dim || r >= n)
        return;
    const int row = CPTR(int, rb, roff)[r];
    if (row < 0 || row >= n_rows) {
        flag(err, E_GATHER, r, row);
        return;
    }
    PTR(float, ob, ooff)[(ulong)r * dim + i] = CPTR(float, xb, xoff)[(ulong)row * dim + i];
}
