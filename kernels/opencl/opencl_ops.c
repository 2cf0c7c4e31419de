/* opencl_ops.c: the OpenCL backend's ops: operand checks on the host (views inside their
 * buffers, types, shapes), then one or two kernel launches each. Index operands live on the
 * device, so their range is checked by the kernels (reported at sync; see ops.cl). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "opencl_ctx.h"

#define SCORES_MAX ((size_t)64 << 20) /* bytes of attention scores per launch */
#define MV_MAX_TOKENS 2               /* up to this many tokens, matmul runs the matvec kernel */

/* ---------------------------------------------------------------- checks */

static int64_t rows_of(const mlc_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* The sticky error, or a failure naming the first of n views outside its buffer. */
static mlc_status views_ok(cl_ctx *c, const char *op, int n, const mlc_tensor *const *t)
{
    if (c->err.status)
        return c->err.status;
    for (int i = 0; i < n; i++) {
        const size_t nb = mlc_tensor_nbytes(t[i]);
        const mlc_buffer *b = t[i]->buf;
        if (b && (nb || !mlc_tensor_nelem(t[i])) && t[i]->offset <= b->size && nb <= b->size - t[i]->offset)
            continue;
        return mlc_cl_fail(c, MLC_ERR_ARG,
                           "opencl: %s: operand %d (%s [%lld, %lld, %lld, %lld] at byte %zu) is not inside its buffer of %zu bytes",
                           op, i + 1, mlc_tensor_type_name(t[i]->type), (long long)t[i]->ne[0],
                           (long long)t[i]->ne[1], (long long)t[i]->ne[2], (long long)t[i]->ne[3],
                           t[i]->offset, b ? b->size : 0);
    }
    return MLC_OK;
}

#define VIEWS_OK(c, op, ...) \
    views_ok(c, op, (int)(sizeof (const mlc_tensor *[]){__VA_ARGS__} / sizeof(const mlc_tensor *)), \
             (const mlc_tensor *[]){__VA_ARGS__})

static mlc_status typed(cl_ctx *c, const char *op, uint32_t type, int n, const mlc_tensor *const *t)
{
    for (int i = 0; i < n; i++)
        if (t[i]->type != type)
            return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: %s: a %s view where %s is needed", op,
                               mlc_tensor_type_name(t[i]->type), mlc_tensor_type_name(type));
    return MLC_OK;
}

#define TYPED(c, op, type, ...) \
    typed(c, op, type, (int)(sizeof (const mlc_tensor *[]){__VA_ARGS__} / sizeof(const mlc_tensor *)), \
          (const mlc_tensor *[]){__VA_ARGS__})

/* Every index of an I32 view in [0, limit), or a failure naming the first that is not,
 * when the view's buffer holds what the host uploaded (else the kernel checks at run time). */
static mlc_status indices_ok(cl_ctx *c, const char *op, const char *what, const mlc_tensor *t, int64_t limit)
{
    if (!t->buf->mirror_ok)
        return MLC_OK;
    const int32_t *v = (const int32_t *)(const void *)(t->buf->mirror + t->offset);
    for (int64_t i = 0; i < mlc_tensor_nelem(t); i++)
        if (v[i] < 0 || v[i] >= limit)
            return mlc_cl_fail(c, MLC_ERR_RANGE, "opencl: %s: %s[%lld] = %d is outside 0..%lld", op, what,
                               (long long)i, v[i], (long long)limit - 1);
    return MLC_OK;
}

/* The host copy of a buffer a kernel is about to write no longer tells its contents. */
static void written(const mlc_tensor *t)
{
    t->buf->mirror_ok = false;
}

/* Tensor views as the kernels take them: the cl_mem and the byte offset. */
typedef struct view {
    cl_mem mem;
    cl_ulong off;
} view;

static view V(const mlc_tensor *t)
{
    return (view){t->buf->mem, t->offset};
}

#define AV_(v) A_((v).mem), A_((v).off)

/* ---------------------------------------------------------------- supports */

/* Kernels by weight type: get_rows, matvec, tiled matmul; -1 for a type without them. */
typedef struct type_kernels {
    uint32_t type;
    mlc_cl_kernel get_rows, mv, mm, act; /* act: K_COUNT when x is used as it is */
} type_kernels;

static const type_kernels TYPES[] = {
    {MLC_TYPE_F32, K_get_rows_f32, K_mv_f32, K_mm_f32, K_COUNT},
    {MLC_TYPE_F16, K_get_rows_f16, K_mv_f16, K_mm_f16, K_act_f16},
    {MLC_TYPE_BF16, K_get_rows_bf16, K_mv_bf16, K_mm_bf16, K_act_bf16},
    {MLC_TYPE_Q8_0, K_get_rows_q8_0, K_mv_q8_0, K_mm_q8_0, K_act_q8_0},
    {MLC_TYPE_Q4_0, K_get_rows_q4_0, K_mv_q4_0, K_mm_q4_0, K_act_q8_0},
    {MLC_TYPE_Q5_0, K_get_rows_q5_0, K_mv_q5_0, K_mm_q5_0, K_act_q8_0},
    {MLC_TYPE_Q4_1, K_get_rows_q4_1, K_mv_q4_1, K_mm_q4_1, K_act_q8_1},
    {MLC_TYPE_Q5_1, K_get_rows_q5_1, K_mv_q5_1, K_mm_q5_1, K_act_q8_1},
    {MLC_TYPE_IQ4_NL, K_get_rows_iq4_nl, K_mv_iq4_nl, K_mm_iq4_nl, K_act_q8_0},
    {MLC_TYPE_Q2_K, K_get_rows_q2_k, K_mv_q2_k, K_mm_q2_k, K_act_q8_k},
    {MLC_TYPE_Q3_K, K_get_rows_q3_k, K_mv_q3_k, K_mm_q3_k, K_act_q8_k},
    {MLC_TYPE_Q4_K, K_get_rows_q4_k, K_mv_q4_k, K_mm_q4_k, K_act_q8_k},
    {MLC_TYPE_Q5_K, K_get_rows_q5_k, K_mv_q5_k, K_mm_q5_k, K_act_q8_k},
    {MLC_TYPE_Q6_K, K_get_rows_q6_k, K_mv_q6_k, K_mm_q6_k, K_act_q8_k},
    {MLC_TYPE_IQ4_XS, K_get_rows_iq4_xs, K_mv_iq4_xs, K_mm_iq4_xs, K_act_q8_k},
};

/* The kernels of a weight type, NULL for a type this backend has none for (the types other
 * than those above: a model using them is refused at load, naming the op and type). */
static const type_kernels *kernels_of(uint32_t type)
{
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].type == type)
            return &TYPES[i];
    return NULL;
}

bool mlc_cl_supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4])
{
    (void)ctx;
    const bool kv = type == MLC_TYPE_F16 || type == MLC_TYPE_F32;
    switch (op) {
    case MLC_OP_GET_ROWS:
    case MLC_OP_MATMUL:
        return kernels_of(type) && shape[0] > 0 && shape[0] % mlc_type_block_size(type) == 0 &&
               shape[0] <= INT32_MAX / 4;
    case MLC_OP_ROPE:
        return type == MLC_TYPE_F32 && shape[2] <= shape[0] && shape[2] % 2 == 0;
    case MLC_OP_KV_STORE:
        return kv;
    case MLC_OP_ATTENTION:
        return kv && shape[0] > 0 && shape[0] <= MLC_CL_MAX_HD && shape[2] > 0 && shape[1] % shape[2] == 0;
    default:
        return type == MLC_TYPE_F32;
    }
}

/* ---------------------------------------------------------------- get_rows, matmul */

mlc_status mlc_cl_get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "get_rows", &table, &ids, &out);
    if (s || (s = TYPED(c, "get_rows", MLC_TYPE_I32, &ids)) || (s = TYPED(c, "get_rows", MLC_TYPE_F32, &out)) ||
        (s = indices_ok(c, "get_rows", "ids", &ids, rows_of(&table))))
        return s;
    const type_kernels *tk = kernels_of(table.type);
    const int64_t row_len = table.ne[0], n = mlc_tensor_nelem(&ids);
    if (!tk || out.ne[0] != row_len || rows_of(&out) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: get_rows: %s table, output [%lld, %lld] for %lld rows of %lld",
                           mlc_tensor_type_name(table.type), (long long)out.ne[0], (long long)rows_of(&out),
                           (long long)n, (long long)row_len);
    view tv = V(&table), iv = V(&ids), ov = V(&out);
    cl_ulong row_bytes = mlc_type_row_bytes(table.type, row_len);
    cl_int n_rows = (cl_int)rows_of(&table), rl = (cl_int)row_len, ni = (cl_int)n;
    const size_t g[2] = {(size_t)(row_len / mlc_type_block_size(table.type)), (size_t)n};
    written(&out);
    return mlc_cl_launch(c, tk->get_rows, 2, g, NULL,
                         MLC_CL_ARGS(AV_(tv), A_(row_bytes), A_(n_rows), AV_(iv), AV_(ov), A_(rl), A_(ni),
                                     A_(c->errflag.mem)));
}

/* Converts x [n_in, n] to the activation format of weight type tk into the act scratch;
 * *a is where the matmul kernels then read it (x itself for F32 weights). For quantized
 * formats the scratch holds q [n, n_in] i8, then d (at *doff) [n, n_in / bs, ds] f32
 * (ds 2 for Q8_1's scale and sum, else 1). */
static mlc_status convert_act(cl_ctx *c, const type_kernels *tk, const mlc_tensor *x, int64_t n_in,
                              int64_t n, view *a, cl_ulong *doff)
{
    *a = V(x);
    if (tk->act == K_COUNT)
        return MLC_OK;
    view xv = V(x);
    const int64_t nv = n_in * n;
    if (tk->act == K_act_f16 || tk->act == K_act_bf16) {
        mlc_status s = mlc_cl_scratch(c, &c->act, (size_t)nv * 4, "converted activations");
        if (s)
            return s;
        *a = (view){c->act.mem, 0};
        cl_int ni = (cl_int)nv;
        const size_t g[1] = {(size_t)nv};
        return mlc_cl_launch(c, tk->act, 1, g, NULL, MLC_CL_ARGS(AV_(xv), A_(c->act.mem), A_(ni)));
    }
    const int64_t bs = tk->act == K_act_q8_k ? 256 : 32, nblk = nv / bs, ds = tk->act == K_act_q8_1 ? 2 : 1;
    const cl_ulong qoff = 0;
    *doff = ((cl_ulong)nv + 15) / 16 * 16;
    mlc_status s = mlc_cl_scratch(c, &c->act, (size_t)(*doff + (cl_ulong)(nblk * ds) * 4), "quantized activations");
    if (s)
        return s;
    *a = (view){c->act.mem, 0};
    cl_int nb = (cl_int)nblk;
    const size_t g[1] = {(size_t)nblk};
    return mlc_cl_launch(c, tk->act, 1, g, NULL, MLC_CL_ARGS(AV_(xv), A_(c->act.mem), A_(qoff), A_(*doff), A_(nb)));
}

mlc_status mlc_cl_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "matmul", &w, &x, &y);
    if (s || (s = TYPED(c, "matmul", MLC_TYPE_F32, &x, &y)))
        return s;
    const type_kernels *tk = kernels_of(w.type);
    const int64_t n_in = w.ne[0], n_out = w.ne[1], n = rows_of(&x);
    if (x.ne[0] != n_in || y.ne[0] != n_out || rows_of(&y) != n || !tk)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: matmul: weights %s [%lld, %lld], x [%lld, %lld], y [%lld, %lld] do not fit",
                           mlc_tensor_type_name(w.type), (long long)n_in, (long long)n_out, (long long)x.ne[0],
                           (long long)n, (long long)y.ne[0], (long long)rows_of(&y));
    view a, wv = V(&w), yv = V(&y);
    cl_ulong doff = 0, w_row = mlc_type_row_bytes(w.type, n_in);
    if ((s = convert_act(c, tk, &x, n_in, n, &a, &doff)))
        return s;
    written(&y);
    const bool quant = mlc_type_block_size(w.type) > 1, mv = n <= MV_MAX_TOKENS;
    cl_int ni = (cl_int)n_in, no = (cl_int)n_out, nt = (cl_int)n;
    const size_t g_mv[3] = {MLC_CL_WG, (size_t)(n_out + MLC_CL_MV_ROWS - 1) / MLC_CL_MV_ROWS, (size_t)n};
    const size_t l_mv[3] = {MLC_CL_WG, 1, 1};
    const size_t g_mm[2] = {(size_t)n_out, (size_t)n}, l_mm[2] = {MLC_CL_TR, MLC_CL_TT};
    if (quant && mv)
        return mlc_cl_launch(c, tk->mv, 3, g_mv, l_mv,
                             MLC_CL_ARGS(AV_(wv), A_(w_row), AV_(a), A_(doff), AV_(yv), A_(ni), A_(no)));
    if (quant)
        return mlc_cl_launch(c, tk->mm, 2, g_mm, l_mm,
                             MLC_CL_ARGS(AV_(wv), A_(w_row), AV_(a), A_(doff), AV_(yv), A_(ni), A_(no), A_(nt)));
    if (mv)
        return mlc_cl_launch(c, tk->mv, 3, g_mv, l_mv, MLC_CL_ARGS(AV_(wv), A_(w_row), AV_(a), AV_(yv), A_(ni), A_(no)));
    return mlc_cl_launch(c, tk->mm, 2, g_mm, l_mm,
                         MLC_CL_ARGS(AV_(wv), A_(w_row), AV_(a), AV_(yv), A_(ni), A_(no), A_(nt)));
}

/* ---------------------------------------------------------------- rms_norm, rope */

mlc_status mlc_cl_rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rms_norm", &x, &w, &y);
    if (s || (s = TYPED(c, "rms_norm", MLC_TYPE_F32, &x, &w, &y)))
        return s;
    const int64_t dim = x.ne[0], n = rows_of(&x);
    if (mlc_tensor_nelem(&w) != dim || mlc_tensor_nelem(&y) != n * dim)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: rms_norm: x [%lld, %lld], w of %lld, y of %lld elements do not fit",
                           (long long)dim, (long long)n, (long long)mlc_tensor_nelem(&w),
                           (long long)mlc_tensor_nelem(&y));
    view xv = V(&x), wv = V(&w), yv = V(&y);
    cl_int d = (cl_int)dim;
    const size_t g[2] = {MLC_CL_WG, (size_t)n}, l[2] = {MLC_CL_WG, 1};
    written(&y);
    return mlc_cl_launch(c, K_rms_norm, 2, g, l, MLC_CL_ARGS(AV_(xv), AV_(wv), AV_(yv), A_(d), A_(eps)));
}

/* rope's frequency factors ff: none (has 0, the kernel gets x's buffer and never reads it),
 * or a [n_rot/2] F32 view. */
static mlc_status rope_factors(cl_ctx *c, const mlc_tensor *ff, const mlc_tensor *x, int n_rot,
                               view *fv, cl_int *has)
{
    *has = ff->buf != NULL;
    *fv = V(*has ? ff : x);
    if (!*has)
        return MLC_OK;
    mlc_status s = VIEWS_OK(c, "rope", ff);
    if (s || (s = TYPED(c, "rope", MLC_TYPE_F32, ff)))
        return s;
    if (mlc_tensor_nelem(ff) != n_rot / 2)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: rope: %lld frequency factors for %d rope dims (%d needed)",
                           (long long)mlc_tensor_nelem(ff), n_rot, n_rot / 2);
    return MLC_OK;
}

mlc_status mlc_cl_rope(void *ctx, mlc_tensor x, mlc_tensor pos, mlc_tensor ff, int n_rot,
                       float freq_base, bool neox)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "rope", &x, &pos);
    if (s || (s = TYPED(c, "rope", MLC_TYPE_F32, &x)) || (s = TYPED(c, "rope", MLC_TYPE_I32, &pos)))
        return s;
    cl_int head_dim = (cl_int)x.ne[0], n_head = (cl_int)x.ne[1], nr = n_rot, nx = neox, has_ff;
    cl_int n = (cl_int)(x.ne[2] * x.ne[3]);
    if (n_rot > head_dim || n_rot < 0 || n_rot % 2 || mlc_tensor_nelem(&pos) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: rope: head dim %d, rope dims %d, %d tokens and %lld positions",
                           head_dim, n_rot, n, (long long)mlc_tensor_nelem(&pos));
    view xv = V(&x), pv = V(&pos), fv;
    if ((s = rope_factors(c, &ff, &x, n_rot, &fv, &has_ff)))
        return s;
    float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    const size_t g[3] = {(size_t)n_rot / 2, (size_t)n_head, (size_t)n};
    written(&x);
    return mlc_cl_launch(c, K_rope, 3, g, NULL,
                         MLC_CL_ARGS(AV_(xv), AV_(pv), AV_(fv), A_(has_ff), A_(head_dim), A_(n_head), A_(nr),
                                     A_(theta_scale), A_(nx), A_(n)));
}

/* ---------------------------------------------------------------- kv_store, attention */

static mlc_status cache_ok(cl_ctx *c, const char *op, const mlc_tensor *kc, const mlc_tensor *vc,
                           const mlc_tensor *slot, const mlc_tensor *pos, int64_t n)
{
    mlc_status s;
    if ((s = TYPED(c, op, MLC_TYPE_I32, slot, pos)))
        return s;
    if (kc->type != vc->type || (kc->type != MLC_TYPE_F16 && kc->type != MLC_TYPE_F32) ||
        memcmp(kc->ne, vc->ne, sizeof kc->ne) || mlc_tensor_nelem(slot) != n || mlc_tensor_nelem(pos) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: %s: caches %s/%s [%lld, %lld, %lld] with %lld slots and %lld positions for %lld tokens",
                           op, mlc_tensor_type_name(kc->type), mlc_tensor_type_name(vc->type), (long long)kc->ne[0],
                           (long long)kc->ne[1], (long long)kc->ne[2], (long long)mlc_tensor_nelem(slot),
                           (long long)mlc_tensor_nelem(pos), (long long)n);
    if ((s = indices_ok(c, op, "slot", slot, kc->ne[2])) || (s = indices_ok(c, op, "pos", pos, kc->ne[1])))
        return s;
    return MLC_OK;
}

mlc_status mlc_cl_kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache,
                           mlc_tensor v_cache, mlc_tensor slot, mlc_tensor pos)
{
    cl_ctx *c = ctx;
    const int64_t kv_dim = k_cache.ne[0], n = rows_of(&k);
    mlc_status s = VIEWS_OK(c, "kv_store", &k, &v, &k_cache, &v_cache, &slot, &pos);
    if (s || (s = cache_ok(c, "kv_store", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "kv_store", MLC_TYPE_F32, &k, &v)))
        return s;
    if (k.ne[0] != kv_dim || v.ne[0] != kv_dim || rows_of(&v) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: kv_store: k [%lld, %lld], v [%lld, %lld] for caches of rows of %lld",
                           (long long)k.ne[0], (long long)n, (long long)v.ne[0], (long long)rows_of(&v),
                           (long long)kv_dim);
    view kv = V(&k), vv = V(&v), kcv = V(&k_cache), vcv = V(&v_cache), sv = V(&slot), pv = V(&pos);
    cl_int d = (cl_int)kv_dim, n_ctx = (cl_int)k_cache.ne[1], n_slots = (cl_int)k_cache.ne[2], nt = (cl_int)n;
    const size_t g[2] = {(size_t)kv_dim, (size_t)n};
    written(&k_cache);
    written(&v_cache);
    return mlc_cl_launch(c, k_cache.type == MLC_TYPE_F16 ? K_kv_store_f16 : K_kv_store_f32, 2, g, NULL,
                         MLC_CL_ARGS(AV_(kv), AV_(vv), AV_(kcv), AV_(vcv), AV_(sv), AV_(pv), A_(d), A_(n_ctx),
                                     A_(n_slots), A_(nt), A_(c->errflag.mem)));
}

mlc_status mlc_cl_attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache,
                            mlc_tensor slot, mlc_tensor pos, const mlc_attn_params *p, mlc_tensor out)
{
    cl_ctx *c = ctx;
    const int64_t hd = q.ne[0], n = q.ne[2] * q.ne[3];
    mlc_status s = VIEWS_OK(c, "attention", &q, &k_cache, &v_cache, &slot, &pos, &out);
    if (s || (s = cache_ok(c, "attention", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = TYPED(c, "attention", MLC_TYPE_F32, &q, &out)))
        return s;
    if (hd < 1 || hd > MLC_CL_MAX_HD || k_cache.ne[0] < hd || k_cache.ne[0] % hd ||
        q.ne[1] % (k_cache.ne[0] / hd) || mlc_tensor_nelem(&out) != mlc_tensor_nelem(&q))
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: attention: q [%lld, %lld, %lld] over caches of rows of %lld",
                           (long long)hd, (long long)q.ne[1], (long long)n, (long long)k_cache.ne[0]);
    const size_t per_token = (size_t)q.ne[1] * (size_t)k_cache.ne[1] * sizeof(float);
    size_t chunk = SCORES_MAX / per_token;
    chunk = chunk < 1 ? 1 : chunk > (size_t)n ? (size_t)n : chunk;
    if ((s = mlc_cl_scratch(c, &c->scores, chunk * per_token, "attention scores")))
        return s;
    view qv = V(&q), kcv = V(&k_cache), vcv = V(&v_cache), sv = V(&slot), pv = V(&pos), ov = V(&out);
    cl_int h = (cl_int)hd, n_head = (cl_int)q.ne[1], n_kv = (cl_int)(k_cache.ne[0] / hd);
    cl_int n_ctx = (cl_int)k_cache.ne[1], n_slots = (cl_int)k_cache.ne[2], window = p->window;
    float scale = p->scale, softcap = p->softcap;
    const mlc_cl_kernel k = k_cache.type == MLC_TYPE_F16 ? K_attention_f16 : K_attention_f32;
    written(&out);
    for (int64_t t = 0; t < n && !s; t += (int64_t)chunk) {
        cl_int t0 = (cl_int)t;
        const size_t g[3] = {MLC_CL_WG, (size_t)n_head, (size_t)(n - t < (int64_t)chunk ? n - t : (int64_t)chunk)};
        const size_t l[3] = {MLC_CL_WG, 1, 1};
        s = mlc_cl_launch(c, k, 3, g, l,
                          MLC_CL_ARGS(AV_(qv), AV_(kcv), AV_(vcv), AV_(sv), AV_(pv), AV_(ov), A_(c->scores.mem),
                                      A_(h), A_(n_head), A_(n_kv), A_(n_ctx), A_(n_slots), A_(t0), A_(scale),
                                      A_(window), A_(softcap), A_(c->errflag.mem)));
    }
    return s;
}

/* ---------------------------------------------------------------- elementwise, gather */

static mlc_status glu(cl_ctx *c, const char *op, mlc_cl_kernel k, const mlc_tensor *gate,
                      const mlc_tensor *up, const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, gate, up, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, gate, up, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(gate);
    if (mlc_tensor_nelem(up) != n || mlc_tensor_nelem(out) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: %s: gate, up and out of %lld, %lld and %lld elements", op,
                           (long long)n, (long long)mlc_tensor_nelem(up), (long long)mlc_tensor_nelem(out));
    view gv = V(gate), uv = V(up), ov = V(out);
    written(out);
    cl_int ni = (cl_int)n;
    const size_t g[1] = {(size_t)n};
    return mlc_cl_launch(c, k, 1, g, NULL, MLC_CL_ARGS(AV_(gv), AV_(uv), AV_(ov), A_(ni)));
}

mlc_status mlc_cl_swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "swiglu", K_swiglu, &gate, &up, &out);
}

mlc_status mlc_cl_geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu(ctx, "geglu", K_geglu, &gate, &up, &out);
}

static mlc_status binary(cl_ctx *c, const char *op, bool mul, const mlc_tensor *a, const mlc_tensor *b,
                         const mlc_tensor *out)
{
    mlc_status s = VIEWS_OK(c, op, a, b, out);
    if (s || (s = TYPED(c, op, MLC_TYPE_F32, a, b, out)))
        return s;
    const int64_t n = mlc_tensor_nelem(a), nb = mlc_tensor_nelem(b), dim = a->ne[0];
    if (mlc_tensor_nelem(out) != n || (nb != n && nb != dim) || dim < 1)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: %s: a of %lld, b of %lld, out of %lld elements", op,
                           (long long)n, (long long)nb, (long long)mlc_tensor_nelem(out));
    view av = V(a), bv = V(b), ov = V(out);
    written(out);
    cl_int ni = (cl_int)n, nbi = (cl_int)nb, d = (cl_int)dim, m = mul;
    const size_t g[1] = {(size_t)n};
    return mlc_cl_launch(c, K_binary, 1, g, NULL, MLC_CL_ARGS(AV_(av), AV_(bv), AV_(ov), A_(ni), A_(nbi), A_(d), A_(m)));
}

mlc_status mlc_cl_add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "add", false, &a, &b, &out);
}

mlc_status mlc_cl_mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary(ctx, "mul", true, &a, &b, &out);
}

mlc_status mlc_cl_scale(void *ctx, mlc_tensor x, float sc, mlc_tensor out)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "scale", &x, &out);
    if (s || (s = TYPED(c, "scale", MLC_TYPE_F32, &x, &out)))
        return s;
    const int64_t n = mlc_tensor_nelem(&x);
    if (mlc_tensor_nelem(&out) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: scale: x of %lld, out of %lld elements", (long long)n,
                           (long long)mlc_tensor_nelem(&out));
    view xv = V(&x), ov = V(&out);
    written(&out);
    cl_int ni = (cl_int)n;
    const size_t g[1] = {(size_t)n};
    return mlc_cl_launch(c, K_scale, 1, g, NULL, MLC_CL_ARGS(AV_(xv), A_(sc), AV_(ov), A_(ni)));
}

mlc_status mlc_cl_gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out)
{
    cl_ctx *c = ctx;
    mlc_status s = VIEWS_OK(c, "gather", &x, &rows, &out);
    if (s || (s = TYPED(c, "gather", MLC_TYPE_F32, &x, &out)) || (s = TYPED(c, "gather", MLC_TYPE_I32, &rows)) ||
        (s = indices_ok(c, "gather", "rows", &rows, rows_of(&x))))
        return s;
    const int64_t dim = x.ne[0], n = mlc_tensor_nelem(&rows);
    if (out.ne[0] != dim || rows_of(&out) != n)
        return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: gather: output [%lld, %lld] for %lld rows of %lld",
                           (long long)out.ne[0], (long long)rows_of(&out), (long long)n, (long long)dim);
    view xv = V(&x), rv = V(&rows), ov = V(&out);
    written(&out);
    cl_int d = (cl_int)dim, ni = (cl_int)n, n_rows = (cl_int)rows_of(&x);
    const size_t g[2] = {(size_t)dim, (size_t)n};
    return mlc_cl_launch(c, K_gather, 2, g, NULL, MLC_CL_ARGS(AV_(xv), AV_(rv), AV_(ov), A_(d), A_(ni), A_(n_rows), A_(c->errflag.mem)));
}
