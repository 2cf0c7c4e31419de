/* cuda_ops.cu: the forward pass's ops other than get_rows and matmul: rms_norm, rope,
 * kv_store, attention, the elementwise ops and gather. Operand checks on the host (views
 * inside their buffers, types, shapes), then one kernel launch each on the instance's stream
 * (two for the split-K attention of decode steps).
 * Index operands (slots, positions, rows) live on the device: the kernels check them and
 * report the first one out of range through the error flag, read at sync.
 *
 * The arithmetic follows the CPU backend's where it decides roundings: sums of squares and
 * the softmax denominator in double, GeGLU's tanh rounded from double, rotary angles built by
 * repeated multiplication, and with an F16 cache the query and the probabilities rounded to
 * half (as ggml's F16 matmuls do); the other exp/tanh/cos/sin are computed in double where the
 * CPU uses the float functions (within a float ulp of them). Both compilers are told not to
 * contract a*b+c into one fused operation (-fmad=false, -ffp-contract=off), as the CPU's
 * C code is compiled. */
#include <math.h>
#include <string.h>

#include "cuda_argmax.cuh"
#include "cuda_ctx.h"
#include "cuda_flash.cuh"

namespace MLC_GPU_NS {

#define WG 128          /* threads of the row-reduction kernels (rms_norm, attention) */
#define EW 256          /* threads of the elementwise kernels */
#define SCORES_MAX ((size_t)64 << 20) /* bytes of attention scores per launch */

__device__ __forceinline__ void flag(int *err, int code, int pos, int value)
{
    if (atomicCAS(err, 0, code) == 0) {
        err[1] = pos;
        err[2] = value;
    }
}

__device__ __forceinline__ float round_f16(float x)
{
    return __half2float(__float2half_rn(x));
}

/* Sum (or max) of WG values of s into s[0]; every thread of the block calls it. */
template <typename A, bool MAX> __device__ void reduce(A *s)
{
    for (int w = WG / 2; w > 0; w >>= 1) {
        __syncthreads();
        if ((int)threadIdx.x < w)
            s[threadIdx.x] = MAX ? (s[threadIdx.x] > s[threadIdx.x + w] ? s[threadIdx.x] : s[threadIdx.x + w])
                                 : s[threadIdx.x] + s[threadIdx.x + w];
    }
    __syncthreads();
}

/* ---------------------------------------------------------------- rms_norm, rope */

/* y = x / rms(x) * w per row of dim values; one block per row. */
__global__ void __launch_bounds__(WG) rms_norm_k(const float *x, const float *w, float *y, int dim, float eps)
{
    __shared__ double part[WG];
    const int64_t row = blockIdx.x;
    x += row * dim;
    y += row * dim;
    double s = 0;
    for (int i = threadIdx.x; i < dim; i += WG)
        s += (double)(x[i] * x[i]);
    part[threadIdx.x] = s;
    reduce<double, false>(part);
    const float sc = 1.0f / sqrtf((float)(part[0] / (double)dim) + eps);
    for (int i = threadIdx.x; i < dim; i += WG)
        y[i] = (x[i] * sc) * w[i];
}

/* Rotary embedding in place; one thread per (pair, head, token). */
__global__ void rope_k(float *x, const int *pos, const float *ff, int head_dim, int n_head, int n_rot,
                       float theta_scale, int neox, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= n_rot / 2 || h >= n_head)
        return;
    for (int t = blockIdx.z; t < n; t += gridDim.z) {
        float theta = (float)pos[t];
        for (int k = 0; k < i; k++)
            theta *= theta_scale;
        if (ff)
            theta = theta / ff[i];
        const float c = (float)cos((double)theta), s = (float)sin((double)theta);
        float *v = x + ((int64_t)t * n_head + h) * head_dim;
        const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

/* ---------------------------------------------------------------- KV cache */

/* Cache values: F32 as they are, F16 as the bits of a half. */
__device__ __forceinline__ float ld_cache(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld_cache(const unsigned short *p, int64_t i)
{
    return __half2float(__ushort_as_half(p[i]));
}
__device__ __forceinline__ void st_cache(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st_cache(unsigned short *p, int64_t i, float v)
{
    p[i] = __half_as_ushort(__float2half_rn(v));
}
__device__ __forceinline__ float rnd_cache(const float *, float v) { return v; }
__device__ __forceinline__ float rnd_cache(const unsigned short *, float v) { return round_f16(v); }

/* k, v [kv_dim, n] into the caches [kv_dim, n_ctx, n_slots] at (slot, pos); one thread per value. */
template <typename KT>
__global__ void kv_store_k(const float *k, const float *v, KT *kc, KT *vc, const int *slot, const int *pos, int kv_dim,
                           int n_ctx, int n_slots, int n, int *err)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= kv_dim)
        return;
    for (int t = blockIdx.y; t < n; t += gridDim.y) {
        const int sl = slot[t], ps = pos[t];
        if (sl < 0 || sl >= n_slots || ps < 0 || ps >= n_ctx) {
            if (i == 0)
                flag(err, sl < 0 || sl >= n_slots ? MLC_CU_E_KV_SLOT : MLC_CU_E_KV_POS, t,
                     sl < 0 || sl >= n_slots ? sl : ps);
            continue;
        }
        const int64_t dst = ((int64_t)sl * n_ctx + ps) * kv_dim + i, src = (int64_t)t * kv_dim + i;
        st_cache(kc, dst, k[src]);
        st_cache(vc, dst, v[src]);
    }
}

/* out = softmax(q K^T * scale) V for one (head, token) per block of WG threads: scores (one
 * position per thread, the head's dims summed in order) into the scratch [n, n_head, n_ctx]
 * of this launch (tokens t0 ..), max, exp, sum, then one multiplication by the inverse sum. */
template <typename KT>
__global__ void __launch_bounds__(WG)
    attention_k(const float *q, const KT *kc, const KT *vc, const int *slot, const int *pos, float *out, float *scores,
                int hd, int n_head, int n_kv_head, int n_ctx, int n_slots, int t0, float scale, int window,
                float softcap, int *err)
{
    __shared__ float ql[MLC_CU_MAX_HD];
    __shared__ float part[WG];
    __shared__ double psum[WG];
    const int lid = threadIdx.x, h = blockIdx.x, tl = blockIdx.y, t = t0 + tl;
    const int sl = slot[t], ps = pos[t];
    if (sl < 0 || sl >= n_slots || ps < 0 || ps >= n_ctx) { /* the same for the whole block */
        if (lid == 0)
            flag(err, sl < 0 || sl >= n_slots ? MLC_CU_E_ATT_SLOT : MLC_CU_E_ATT_POS, t,
                 sl < 0 || sl >= n_slots ? sl : ps);
        return;
    }
    const int kvh = h / (n_head / n_kv_head);
    const int64_t kv_dim = (int64_t)n_kv_head * hd, base = (int64_t)sl * n_ctx, hoff = (int64_t)kvh * hd;
    const float *qh = q + ((int64_t)t * n_head + h) * hd;
    for (int d = lid; d < hd; d += WG)
        ql[d] = rnd_cache(kc, qh[d]);
    __syncthreads();
    const int np = ps + 1, lo = window > 0 && np > window ? np - window : 0;
    float *sc = scores + ((int64_t)tl * n_head + h) * n_ctx;
    float mx = -INFINITY;
    for (int p = lo + lid; p < np; p += WG) {
        const int64_t row = (base + p) * kv_dim + hoff;
        float a = 0;
        for (int d = 0; d < hd; d++)
            a += ql[d] * ld_cache(kc, row + d);
        float s = a * scale;
        if (softcap > 0)
            s = softcap * (float)tanh((double)(s / softcap));
        sc[p] = s;
        mx = fmaxf(mx, s);
    }
    part[lid] = mx;
    reduce<float, true>(part);
    mx = part[0];
    double sum = 0;
    for (int p = lo + lid; p < np; p += WG) {
        const float e = (float)exp((double)(sc[p] - mx));
        sc[p] = e;
        sum += e;
    }
    psum[lid] = sum;
    reduce<double, false>(psum); /* its barriers also order the scores written above */
    const float inv = (float)(1.0 / psum[0]);
    float *o = out + ((int64_t)t * n_head + h) * hd;
    for (int d = lid; d < hd; d += WG) {
        float acc = 0;
        for (int p = lo; p < np; p++)
            acc += rnd_cache(kc, sc[p] * inv) * ld_cache(vc, (base + p) * kv_dim + hoff + d);
        o[d] = acc;
    }
}

/* Split-K decode attention: the positions a token sees are cut into chunks of FA_POS, one
 * block per (head, token, chunk), so that a decode step of few tokens still fills the device;
 * each block keeps its chunk's softmax unnormalized (max m, sum l, o = sum e^(s - m) v) in
 * the partials [n, n_head, n_split, hd + 2] (o, then m and l), and attn_combine_k rescales
 * and sums them (the online softmax's merge). Scores are warp dot products over the dims (the
 * lanes' share, then a tree); with an F16 cache the query is rounded to half as above, the
 * probabilities are not (they are only known normalized after the merge). */
#define FA_POS 256
#define FA_MAX_TOKENS 16 /* up to this many tokens, attention takes the split-K kernels */

__device__ __forceinline__ float warp_sum_f(float v)
{
    for (int m = 16; m > 0; m >>= 1)
        v += MLC_SHFL_XOR(v, m, 32);
    return v;
}

template <typename KT>
__global__ void __launch_bounds__(WG)
    attn_split_k(const float *q, const KT *kc, const KT *vc, const int *slot, const int *pos, float *part, int hd,
                 int n_head, int n_kv_head, int n_ctx, int n_slots, float scale, int window, float softcap, int *err)
{
    __shared__ float ql[MLC_CU_MAX_HD];
    __shared__ float pr[FA_POS];
    __shared__ float red[WG];
    __shared__ double redd[WG];
    const int lid = threadIdx.x, lane = lid % 32, h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
    const int n_split = gridDim.z, sl = slot[t], ps = pos[t];
    float *o = part + (((int64_t)t * n_head + h) * n_split + sp) * (hd + 2);
    const bool bad = sl < 0 || sl >= n_slots || ps < 0 || ps >= n_ctx;
    const int np = bad ? 0 : ps + 1, lo = window > 0 && np > window ? np - window : 0, p0 = lo + sp * FA_POS;
    if (p0 >= np) { /* the same for the whole block */
        if (lid == 0 && sp == 0 && bad)
            flag(err, sl < 0 || sl >= n_slots ? MLC_CU_E_ATT_SLOT : MLC_CU_E_ATT_POS, t,
                 sl < 0 || sl >= n_slots ? sl : ps);
        if (lid == 0)
            o[hd + 1] = 0; /* no positions: the merge skips this chunk */
        return;
    }
    const int cnt = np - p0 < FA_POS ? np - p0 : FA_POS;
    const int kvh = h / (n_head / n_kv_head);
    const int64_t kv_dim = (int64_t)n_kv_head * hd, hoff = (int64_t)kvh * hd, base = (int64_t)sl * n_ctx + p0;
    const float *qh = q + ((int64_t)t * n_head + h) * hd;
    for (int d = lid; d < hd; d += WG)
        ql[d] = rnd_cache(kc, qh[d]);
    __syncthreads();
    for (int i = lid / 32; i < cnt; i += WG / 32) {
        const int64_t row = (base + i) * kv_dim + hoff;
        float a = 0;
        for (int d = lane; d < hd; d += 32)
            a += ql[d] * ld_cache(kc, row + d);
        a = warp_sum_f(a);
        float sc = a * scale;
        if (softcap > 0)
            sc = softcap * (float)tanh((double)(sc / softcap));
        if (lane == 0)
            pr[i] = sc;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int i = lid; i < cnt; i += WG)
        mx = fmaxf(mx, pr[i]);
    red[lid] = mx;
    reduce<float, true>(red);
    mx = red[0];
    double sum = 0;
    for (int i = lid; i < cnt; i += WG) {
        const float e = (float)exp((double)(pr[i] - mx));
        pr[i] = e;
        sum += e;
    }
    redd[lid] = sum;
    reduce<double, false>(redd); /* its barriers also order the pr written above */
    for (int d = lid; d < hd; d += WG) {
        float acc = 0;
        for (int i = 0; i < cnt; i++)
            acc += pr[i] * ld_cache(vc, (base + i) * kv_dim + hoff + d);
        o[d] = acc;
    }
    if (lid == 0) {
        o[hd] = mx;
        o[hd + 1] = (float)redd[0];
    }
}

/* out [hd] of (head, token) = the merge of its n_split chunks' partials: each chunk's o and l
 * scaled by e^(m - max m), summed in chunk order in double, o divided by l. */
__global__ void __launch_bounds__(WG) attn_combine_k(const float *part, float *out, int hd, int n_split)
{
    const int h = blockIdx.x, t = blockIdx.y, n_head = gridDim.x;
    const float *pp = part + ((int64_t)t * n_head + h) * n_split * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < n_split; s++)
        if (pp[(int64_t)s * (hd + 2) + hd + 1] > 0)
            m = fmaxf(m, pp[(int64_t)s * (hd + 2) + hd]);
    double l = 0;
    for (int s = 0; s < n_split; s++) {
        const float *c = pp + (int64_t)s * (hd + 2);
        if (c[hd + 1] > 0)
            l += (double)c[hd + 1] * exp((double)(c[hd] - m));
    }
    float *o = out + ((int64_t)t * n_head + h) * hd;
    for (int d = threadIdx.x; d < hd; d += WG) {
        double acc = 0;
        for (int s = 0; s < n_split; s++) {
            const float *c = pp + (int64_t)s * (hd + 2);
            if (c[hd + 1] > 0)
                acc += (double)c[d] * exp((double)(c[hd] - m));
        }
        o[d] = l > 0 ? (float)(acc / l) : 0.0f; /* l = 0: a bad slot or position, flagged */
    }
}

/* Flash attention for prefill (more than FA_MAX_TOKENS tokens): one block of WG threads per
 * (head, tile of FP_Q consecutive tokens). For each slot the tile's tokens use, the positions
 * any of them sees come in tiles of FP_KT, staged in shared memory (K, then V in the same
 * place) and used by all FP_Q queries; each query keeps an online softmax (cuda_flash.cuh).
 * Warp w owns queries 4w .. 4w + 3. Scores: lane j % 16 takes position p0 + j, lanes 0..15
 * queries 4w and 4w + 1, lanes 16..31 the other two (head dims summed in order, as the other
 * kernels); a position outside a query's span or slot is -inf. The weighted sum of V: lane
 * takes dims lane, lane + 32, ... of the warp's 4 queries. With an F16 cache q is rounded to
 * half; the weights are not (as split-K: they are known normalized only at the end). */
#define FP_Q 16        /* queries per block: 4 warps x 4 */
#define FP_MAX_HD 256  /* larger heads take the one-block-per-(head, token) kernel */

template <typename KT>
__global__ void __launch_bounds__(WG)
    attn_flash_k(const float *q, const KT *kc, const KT *vc, const int *slot, const int *pos, float *out, int hd,
                 int n_head, int n_kv_head, int n_ctx, int n_slots, int n, float scale, int window, float softcap,
                 int *err)
{
    __shared__ float qs[FP_Q * (FP_MAX_HD + 1)];  /* [FP_Q][hd + 1] */
    __shared__ float kv[FP_KT * (FP_MAX_HD + 1)]; /* [FP_KT][hd + 1]: K, then V */
    __shared__ float ps[FP_Q * FP_KT];            /* the tile's weights per query */
    __shared__ float corr[FP_Q], inv[FP_Q];
    __shared__ int tsl[FP_Q], tlo[FP_Q], tnp[FP_Q]; /* each query's slot (-1: none) and span */
    const int lid = threadIdx.x, lane = lid % 32, w = lid / 32, j = lane % 16, qa = 4 * w + 2 * (lane / 16);
    const int h = blockIdx.x, ld = hd + 1, kvh = h / (n_head / n_kv_head);
    const int64_t kv_dim = (int64_t)n_kv_head * hd, hoff = (int64_t)kvh * hd;
    for (int64_t t0 = (int64_t)blockIdx.y * FP_Q; t0 < n; t0 += (int64_t)gridDim.y * FP_Q) {
        const int nq = n - t0 < FP_Q ? (int)(n - t0) : FP_Q;
        if (lid < FP_Q) {
            int sl = -1, lo = 0, np = 0;
            if (lid < nq) {
                const int t = (int)t0 + lid, s = slot[t], p = pos[t];
                if (s < 0 || s >= n_slots || p < 0 || p >= n_ctx)
                    flag(err, s < 0 || s >= n_slots ? MLC_CU_E_ATT_SLOT : MLC_CU_E_ATT_POS, t,
                         s < 0 || s >= n_slots ? s : p);
                else {
                    sl = s;
                    fa_span(p, window, &lo, &np);
                }
            }
            tsl[lid] = sl;
            tlo[lid] = lo;
            tnp[lid] = np;
        }
        for (int i = lid; i < FP_Q * hd; i += WG) {
            const int qi = i / hd, d = i % hd;
            qs[qi * ld + d] = qi < nq ? rnd_cache(kc, q[((t0 + qi) * n_head + h) * hd + d]) : 0.0f;
        }
        fa_state st[2] = {{-INFINITY, 0.0}, {-INFINITY, 0.0}};
        float acc[4][FP_MAX_HD / 32] = {};
        __syncthreads();
        for (int qi = 0; qi < nq; qi++) { /* each slot once, at its first token (the same for the whole block) */
            const int sl = tsl[qi];
            bool seen = false;
            int plo = n_ctx, phi = 0;
            for (int k = 0; k < nq; k++)
                if (tsl[k] == sl) {
                    seen = seen || k < qi;
                    plo = tlo[k] < plo ? tlo[k] : plo;
                    phi = tnp[k] > phi ? tnp[k] : phi;
                }
            if (sl < 0 || seen)
                continue;
            const int64_t base = (int64_t)sl * n_ctx;
            for (int p0 = plo; p0 < phi; p0 += FP_KT) {
                const int cnt = phi - p0 < FP_KT ? phi - p0 : FP_KT;
                for (int i = lid; i < cnt * hd; i += WG)
                    kv[(i / hd) * ld + i % hd] = ld_cache(kc, (base + p0 + i / hd) * kv_dim + hoff + i % hd);
                __syncthreads();
                float s[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int qq = qa + e, p = p0 + j;
                    s[e] = -INFINITY;
                    if (tsl[qq] == sl && p >= tlo[qq] && p < tnp[qq]) { /* p < tnp <= phi: a staged row */
                        float a = 0;
                        for (int d = 0; d < hd; d++)
                            a += qs[qq * ld + d] * kv[j * ld + d];
                        float sc = a * scale;
                        if (softcap > 0)
                            sc = softcap * (float)tanh((double)(sc / softcap));
                        s[e] = sc;
                    }
                }
#pragma unroll
                for (int e = 0; e < 2; e++) { /* the 16 lanes of a half warp share a query */
                    float tmax = s[e];
                    for (int m = 8; m > 0; m >>= 1)
                        tmax = fmaxf(tmax, MLC_SHFL_XOR(tmax, m, 32));
                    const float c = fa_enter(&st[e], tmax);
                    const float pe = fa_weight(s[e], st[e].m);
                    double ts = pe;
                    for (int m = 8; m > 0; m >>= 1)
                        ts += MLC_SHFL_XOR(ts, m, 32);
                    st[e].l = st[e].l * c + ts;
                    ps[(qa + e) * FP_KT + j] = pe;
                    if (j == 0)
                        corr[qa + e] = c;
                }
                __syncthreads(); /* K read, weights written */
                for (int i = lid; i < cnt * hd; i += WG)
                    kv[(i / hd) * ld + i % hd] = ld_cache(vc, (base + p0 + i / hd) * kv_dim + hoff + i % hd);
                __syncthreads();
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int qq = 4 * w + e;
                    const float c = corr[qq];
#pragma unroll
                    for (int i = 0; i < FP_MAX_HD / 32; i++) {
                        const int d = lane + 32 * i;
                        if (d < hd) {
                            float a = acc[e][i] * c;
                            for (int jj = 0; jj < cnt; jj++)
                                a += ps[qq * FP_KT + jj] * kv[jj * ld + d];
                            acc[e][i] = a;
                        }
                    }
                }
                __syncthreads(); /* V and the weights read before the next tile */
            }
        }
        if (j == 0) {
            inv[qa] = fa_norm(st[0].l);
            inv[qa + 1] = fa_norm(st[1].l);
        }
        __syncthreads();
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int qq = 4 * w + e;
#pragma unroll
            for (int i = 0; i < FP_MAX_HD / 32; i++) {
                const int d = lane + 32 * i;
                if (qq < nq && d < hd)
                    out[((t0 + qq) * n_head + h) * hd + d] = acc[e][i] * inv[qq];
            }
        }
        __syncthreads(); /* the queries' slots, spans and q are reused by the next tile */
    }
}

/* ---------------------------------------------------------------- elementwise, gather */

__global__ void swiglu_k(const float *g, const float *u, float *o, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        o[i] = g[i] / (1.0f + (float)exp(-(double)g[i])) * u[i];
}

__global__ void geglu_k(const float *g, const float *u, float *o, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    const float x = g[i];
    o[i] = 0.5f * x * (1.0f + (float)tanh((double)(k * (x + 0.044715f * x * x * x)))) * u[i];
}

/* out = a + b or a * b; b has n values or one row of dim broadcast over a's rows. */
__global__ void binary_k(const float *a, const float *b, float *o, int64_t n, int64_t nb, int64_t dim, int mul)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float bv = b[nb == n ? i : i % dim];
    o[i] = mul ? a[i] * bv : a[i] + bv;
}

__global__ void scale_k(const float *x, float s, float *o, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        o[i] = x[i] * s;
}

/* out [dim, n]: row r is row rows[r] of x [dim, n_rows]. */
__global__ void gather_k(const float *x, const int *rows, float *o, int dim, int n_rows, int n, int *err)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= dim)
        return;
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        const int row = rows[r];
        if (row < 0 || row >= n_rows) {
            if (i == 0)
                flag(err, MLC_CU_E_GATHER, r, row);
            continue;
        }
        o[(int64_t)r * dim + i] = x[(int64_t)row * dim + i];
    }
}

/* ---------------------------------------------------------------- host side */

mlc_status rms_norm(void *ctx, mlc_tensor x, mlc_tensor w, float eps, mlc_tensor y)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "rms_norm", {&x, &w, &y});
    if (s || (s = typed(c, "rms_norm", MLC_TYPE_F32, {&x, &w, &y})))
        return s;
    const int64_t dim = x.ne[0], n = rows_of(&x);
    if (mlc_tensor_nelem(&w) != dim || mlc_tensor_nelem(&y) != n * dim || dim > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": rms_norm: x [%lld, %lld], w of %lld, y of %lld elements do not fit",
                    (long long)dim, (long long)n, (long long)mlc_tensor_nelem(&w), (long long)mlc_tensor_nelem(&y));
    if (n == 0 || dim == 0)
        return MLC_OK;
    rms_norm_k<<<(unsigned)n, WG, 0, c->stream>>>(at<const float>(x), at<const float>(w), at<float>(y), (int)dim, eps);
    return launched(c, "rms_norm");
}

mlc_status rope(void *ctx, mlc_tensor x, mlc_tensor pos, mlc_tensor ff, int n_rot, float freq_base, bool neox)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "rope", {&x, &pos});
    if (s || (s = typed(c, "rope", MLC_TYPE_F32, {&x})) || (s = typed(c, "rope", MLC_TYPE_I32, {&pos})))
        return s;
    const int head_dim = (int)x.ne[0], n_head = (int)x.ne[1], n = (int)(x.ne[2] * x.ne[3]);
    if (n_rot > head_dim || n_rot < 0 || n_rot % 2 || mlc_tensor_nelem(&pos) != n || n_head > MLC_CU_MAX_GRID ||
        x.ne[2] * x.ne[3] > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": rope: head dim %d, rope dims %d, %d tokens and %lld positions",
                    head_dim, n_rot, n, (long long)mlc_tensor_nelem(&pos));
    const float *ffp = NULL;
    if (ff.buf) {
        if ((s = views_ok(c, "rope", {&ff})) || (s = typed(c, "rope", MLC_TYPE_F32, {&ff})))
            return s;
        if (mlc_tensor_nelem(&ff) != n_rot / 2)
            return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": rope: %lld frequency factors for %d rope dims (%d needed)",
                        (long long)mlc_tensor_nelem(&ff), n_rot, n_rot / 2);
        ffp = at<const float>(ff);
    }
    if (n == 0 || n_head == 0 || n_rot == 0)
        return MLC_OK;
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    const dim3 grid(blocks_for(n_rot / 2, 64), (unsigned)n_head, grid_yz(n));
    rope_k<<<grid, 64, 0, c->stream>>>(at<float>(x), at<const int>(pos), ffp, head_dim, n_head, n_rot, theta_scale,
                                       neox, n);
    return launched(c, "rope");
}

static mlc_status cache_ok(cu_ctx *c, const char *op, const mlc_tensor *kc, const mlc_tensor *vc,
                           const mlc_tensor *slot, const mlc_tensor *pos, int64_t n)
{
    mlc_status s = typed(c, op, MLC_TYPE_I32, {slot, pos});
    if (s)
        return s;
    if (kc->type != vc->type || (kc->type != MLC_TYPE_F16 && kc->type != MLC_TYPE_F32) ||
        memcmp(kc->ne, vc->ne, sizeof kc->ne) || mlc_tensor_nelem(slot) != n || mlc_tensor_nelem(pos) != n ||
        n > INT32_MAX || kc->ne[0] > INT32_MAX || kc->ne[1] > INT32_MAX || kc->ne[2] > INT32_MAX)
        return fail(c, MLC_ERR_ARG,
                    MLC_GPU_NAME ": %s: caches %s/%s [%lld, %lld, %lld] with %lld slots and %lld positions for %lld tokens",
                    op, mlc_tensor_type_name(kc->type), mlc_tensor_type_name(vc->type), (long long)kc->ne[0],
                    (long long)kc->ne[1], (long long)kc->ne[2], (long long)mlc_tensor_nelem(slot),
                    (long long)mlc_tensor_nelem(pos), (long long)n);
    return MLC_OK;
}

mlc_status kv_store(void *ctx, mlc_tensor k, mlc_tensor v, mlc_tensor k_cache, mlc_tensor v_cache, mlc_tensor slot,
                    mlc_tensor pos)
{
    cu_ctx *c = (cu_ctx *)ctx;
    const int64_t kv_dim = k_cache.ne[0], n = rows_of(&k);
    mlc_status s = views_ok(c, "kv_store", {&k, &v, &k_cache, &v_cache, &slot, &pos});
    if (s || (s = cache_ok(c, "kv_store", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = typed(c, "kv_store", MLC_TYPE_F32, {&k, &v})))
        return s;
    if (k.ne[0] != kv_dim || v.ne[0] != kv_dim || rows_of(&v) != n)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": kv_store: k [%lld, %lld], v [%lld, %lld] for caches of rows of %lld",
                    (long long)k.ne[0], (long long)n, (long long)v.ne[0], (long long)rows_of(&v), (long long)kv_dim);
    if (n == 0 || kv_dim == 0)
        return MLC_OK;
    const dim3 grid(blocks_for(kv_dim, EW), grid_yz(n));
    const int d = (int)kv_dim, n_ctx = (int)k_cache.ne[1], n_slots = (int)k_cache.ne[2];
    int *err = (int *)c->errflag.ptr;
    if (k_cache.type == MLC_TYPE_F16)
        kv_store_k<<<grid, EW, 0, c->stream>>>(at<const float>(k), at<const float>(v), at<unsigned short>(k_cache),
                                               at<unsigned short>(v_cache), at<const int>(slot), at<const int>(pos), d,
                                               n_ctx, n_slots, (int)n, err);
    else
        kv_store_k<<<grid, EW, 0, c->stream>>>(at<const float>(k), at<const float>(v), at<float>(k_cache),
                                               at<float>(v_cache), at<const int>(slot), at<const int>(pos), d, n_ctx,
                                               n_slots, (int)n, err);
    return launched(c, "kv_store");
}

template <typename KT>
static void launch_attention(cu_ctx *c, const mlc_tensor &q, const mlc_tensor &kc, const mlc_tensor &vc,
                             const mlc_tensor &slot, const mlc_tensor &pos, const mlc_attn_params *p,
                             const mlc_tensor &out, int64_t t0, int64_t nt)
{
    const int hd = (int)q.ne[0], n_head = (int)q.ne[1], n_kv = (int)(kc.ne[0] / hd);
    const dim3 grid((unsigned)n_head, (unsigned)nt);
    attention_k<KT><<<grid, WG, 0, c->stream>>>(at<const float>(q), at<const KT>(kc), at<const KT>(vc),
                                                at<const int>(slot), at<const int>(pos), at<float>(out),
                                                (float *)c->scores.ptr, hd, n_head, n_kv, (int)kc.ne[1],
                                                (int)kc.ne[2], (int)t0, p->scale, p->window, p->softcap,
                                                (int *)c->errflag.ptr);
}

/* The split-K kernels for nt tokens, when they are on and their partials fit the scratch
 * limit; false to take the one-block-per-head kernel. */
template <typename KT>
static bool launch_split(cu_ctx *c, const mlc_tensor &q, const mlc_tensor &kc, const mlc_tensor &vc,
                         const mlc_tensor &slot, const mlc_tensor &pos, const mlc_attn_params *p, const mlc_tensor &out,
                         int64_t nt, mlc_status *st)
{
    const int hd = (int)q.ne[0], n_head = (int)q.ne[1], n_kv = (int)(kc.ne[0] / hd), n_ctx = (int)kc.ne[1];
    const int n_split = (n_ctx + FA_POS - 1) / FA_POS;
    const size_t bytes = (size_t)nt * (size_t)n_head * (size_t)n_split * (size_t)(hd + 2) * sizeof(float);
    if (c->no_flash || nt > FA_MAX_TOKENS || bytes > SCORES_MAX || n_split > MLC_CU_MAX_GRID)
        return false;
    if ((*st = scratch(c, &c->scores, bytes, "attention partials")))
        return true;
    float *part = (float *)c->scores.ptr;
    attn_split_k<KT><<<dim3((unsigned)n_head, (unsigned)nt, (unsigned)n_split), WG, 0, c->stream>>>(
        at<const float>(q), at<const KT>(kc), at<const KT>(vc), at<const int>(slot), at<const int>(pos), part, hd,
        n_head, n_kv, n_ctx, (int)kc.ne[2], p->scale, p->window, p->softcap, (int *)c->errflag.ptr);
    if ((*st = launched(c, "attention")))
        return true;
    attn_combine_k<<<dim3((unsigned)n_head, (unsigned)nt), WG, 0, c->stream>>>(part, at<float>(out), hd, n_split);
    *st = launched(c, "attention");
    return true;
}

/* The flash kernel for n tokens (more than FA_MAX_TOKENS, heads up to FP_MAX_HD). */
template <typename KT>
static void launch_flash(cu_ctx *c, const mlc_tensor &q, const mlc_tensor &kc, const mlc_tensor &vc,
                         const mlc_tensor &slot, const mlc_tensor &pos, const mlc_attn_params *p, const mlc_tensor &out,
                         int64_t n)
{
    const int hd = (int)q.ne[0], n_head = (int)q.ne[1], n_kv = (int)(kc.ne[0] / hd);
    const dim3 grid((unsigned)n_head, grid_yz(blocks_for(n, FP_Q)));
    attn_flash_k<KT><<<grid, WG, 0, c->stream>>>(at<const float>(q), at<const KT>(kc), at<const KT>(vc),
                                                 at<const int>(slot), at<const int>(pos), at<float>(out), hd, n_head,
                                                 n_kv, (int)kc.ne[1], (int)kc.ne[2], (int)n, p->scale, p->window,
                                                 p->softcap, (int *)c->errflag.ptr);
}

mlc_status attention(void *ctx, mlc_tensor q, mlc_tensor k_cache, mlc_tensor v_cache, mlc_tensor slot, mlc_tensor pos,
                     const mlc_attn_params *p, mlc_tensor out)
{
    cu_ctx *c = (cu_ctx *)ctx;
    const int64_t hd = q.ne[0], n = q.ne[2] * q.ne[3];
    mlc_status s = views_ok(c, "attention", {&q, &k_cache, &v_cache, &slot, &pos, &out});
    if (s || (s = cache_ok(c, "attention", &k_cache, &v_cache, &slot, &pos, n)) ||
        (s = typed(c, "attention", MLC_TYPE_F32, {&q, &out})))
        return s;
    if (hd < 1 || hd > MLC_CU_MAX_HD || k_cache.ne[0] < hd || k_cache.ne[0] % hd || k_cache.ne[1] < 1 ||
        q.ne[1] % (k_cache.ne[0] / hd) || mlc_tensor_nelem(&out) != mlc_tensor_nelem(&q) || q.ne[1] > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": attention: q [%lld, %lld, %lld] over caches of rows of %lld",
                    (long long)hd, (long long)q.ne[1], (long long)n, (long long)k_cache.ne[0]);
    if (n == 0 || q.ne[1] == 0)
        return MLC_OK;
    if (k_cache.type == MLC_TYPE_F16 ? launch_split<unsigned short>(c, q, k_cache, v_cache, slot, pos, p, out, n, &s)
                                     : launch_split<float>(c, q, k_cache, v_cache, slot, pos, p, out, n, &s))
        return s;
    if (!c->no_flash && hd <= FP_MAX_HD) {
        if (k_cache.type == MLC_TYPE_F16)
            launch_flash<unsigned short>(c, q, k_cache, v_cache, slot, pos, p, out, n);
        else
            launch_flash<float>(c, q, k_cache, v_cache, slot, pos, p, out, n);
        return launched(c, "attention");
    }
    const size_t per_token = (size_t)q.ne[1] * (size_t)k_cache.ne[1] * sizeof(float);
    size_t chunk = SCORES_MAX / per_token;
    chunk = chunk < 1 ? 1 : chunk > (size_t)n ? (size_t)n : chunk;
    chunk = chunk > MLC_CU_MAX_GRID ? MLC_CU_MAX_GRID : chunk; /* tokens go on grid.y */
    if ((s = scratch(c, &c->scores, chunk * per_token, "attention scores")))
        return s;
    for (int64_t t = 0; t < n; t += (int64_t)chunk) {
        const int64_t nt = n - t < (int64_t)chunk ? n - t : (int64_t)chunk;
        if (k_cache.type == MLC_TYPE_F16)
            launch_attention<unsigned short>(c, q, k_cache, v_cache, slot, pos, p, out, t, nt);
        else
            launch_attention<float>(c, q, k_cache, v_cache, slot, pos, p, out, t, nt);
        if ((s = launched(c, "attention")))
            return s;
    }
    return MLC_OK;
}

static mlc_status glu(cu_ctx *c, const char *op, bool gelu, const mlc_tensor *g, const mlc_tensor *u,
                      const mlc_tensor *o)
{
    mlc_status s = views_ok(c, op, {g, u, o});
    if (s || (s = typed(c, op, MLC_TYPE_F32, {g, u, o})))
        return s;
    const int64_t n = mlc_tensor_nelem(g);
    if (mlc_tensor_nelem(u) != n || mlc_tensor_nelem(o) != n)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": %s: gate, up and out of %lld, %lld and %lld elements", op,
                    (long long)n, (long long)mlc_tensor_nelem(u), (long long)mlc_tensor_nelem(o));
    if (n == 0)
        return MLC_OK;
    if (gelu)
        geglu_k<<<blocks_for(n, EW), EW, 0, c->stream>>>(at<const float>(*g), at<const float>(*u), at<float>(*o), n);
    else
        swiglu_k<<<blocks_for(n, EW), EW, 0, c->stream>>>(at<const float>(*g), at<const float>(*u), at<float>(*o), n);
    return launched(c, op);
}

mlc_status swiglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu((cu_ctx *)ctx, "swiglu", false, &gate, &up, &out);
}

mlc_status geglu(void *ctx, mlc_tensor gate, mlc_tensor up, mlc_tensor out)
{
    return glu((cu_ctx *)ctx, "geglu", true, &gate, &up, &out);
}

static mlc_status binary(cu_ctx *c, const char *op, bool is_mul, const mlc_tensor *a, const mlc_tensor *b,
                         const mlc_tensor *o)
{
    mlc_status s = views_ok(c, op, {a, b, o});
    if (s || (s = typed(c, op, MLC_TYPE_F32, {a, b, o})))
        return s;
    const int64_t n = mlc_tensor_nelem(a), nb = mlc_tensor_nelem(b), dim = a->ne[0];
    if (mlc_tensor_nelem(o) != n || (nb != n && nb != dim) || dim < 1)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": %s: a of %lld, b of %lld, out of %lld elements", op, (long long)n,
                    (long long)nb, (long long)mlc_tensor_nelem(o));
    if (n == 0)
        return MLC_OK;
    binary_k<<<blocks_for(n, EW), EW, 0, c->stream>>>(at<const float>(*a), at<const float>(*b), at<float>(*o), n, nb,
                                                      dim, is_mul);
    return launched(c, op);
}

mlc_status add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary((cu_ctx *)ctx, "add", false, &a, &b, &out);
}

mlc_status mul(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    return binary((cu_ctx *)ctx, "mul", true, &a, &b, &out);
}

mlc_status scale(void *ctx, mlc_tensor x, float sc, mlc_tensor out)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "scale", {&x, &out});
    if (s || (s = typed(c, "scale", MLC_TYPE_F32, {&x, &out})))
        return s;
    const int64_t n = mlc_tensor_nelem(&x);
    if (mlc_tensor_nelem(&out) != n)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": scale: x of %lld, out of %lld elements", (long long)n,
                    (long long)mlc_tensor_nelem(&out));
    if (n == 0)
        return MLC_OK;
    scale_k<<<blocks_for(n, EW), EW, 0, c->stream>>>(at<const float>(x), sc, at<float>(out), n);
    return launched(c, "scale");
}

mlc_status gather(void *ctx, mlc_tensor x, mlc_tensor rows, mlc_tensor out)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "gather", {&x, &rows, &out});
    if (s || (s = typed(c, "gather", MLC_TYPE_F32, {&x, &out})) || (s = typed(c, "gather", MLC_TYPE_I32, {&rows})))
        return s;
    const int64_t dim = x.ne[0], n = mlc_tensor_nelem(&rows);
    if (out.ne[0] != dim || rows_of(&out) != n || n > INT32_MAX || dim > INT32_MAX || rows_of(&x) > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": gather: output [%lld, %lld] for %lld rows of %lld",
                    (long long)out.ne[0], (long long)rows_of(&out), (long long)n, (long long)dim);
    if (n == 0 || dim == 0)
        return MLC_OK;
    const dim3 grid(blocks_for(dim, EW), grid_yz(n));
    gather_k<<<grid, EW, 0, c->stream>>>(at<const float>(x), at<const int>(rows), at<float>(out), (int)dim,
                                         (int)rows_of(&x), (int)n, (int *)c->errflag.ptr);
    return launched(c, "gather");
}

/* ---------------------------------------------------------------- argmax */

#define AM 256 /* threads per row of the argmax kernel (a power of two) */

/* out[row] = the greedy pick of row row of x [nv, n] (cuda_argmax.cuh); one block per row,
 * looping when there are more rows than blocks. */
__global__ void __launch_bounds__(AM) argmax_k(const float *x, int *out, int nv, int64_t n)
{
    __shared__ float sv[AM];
    __shared__ int32_t si[AM];
    const int t = threadIdx.x;
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *r = x + row * nv;
        am_cand b = {0.0f, MLC_AM_NONE};
        for (int i = t; i < nv; i += AM)
            b = am_pick(b, am_of(r[i], i));
        sv[t] = b.v;
        si[t] = b.i;
        for (int w = AM / 2; w > 0; w >>= 1) {
            __syncthreads();
            if (t < w) {
                const am_cand m = am_pick(am_cand{sv[t], si[t]}, am_cand{sv[t + w], si[t + w]});
                sv[t] = m.v;
                si[t] = m.i;
            }
        }
        __syncthreads();
        if (t == 0)
            out[row] = am_result(am_cand{sv[0], si[0]});
        __syncthreads(); /* sv, si are reused by the next row */
    }
}

mlc_status argmax(void *ctx, mlc_tensor logits, mlc_tensor out)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (c->no_argmax)
        return MLC_ERR_UNSUPPORTED; /* not sticky: the engine picks on the host */
    mlc_status s = views_ok(c, "argmax", {&logits, &out});
    if (s || (s = typed(c, "argmax", MLC_TYPE_F32, {&logits})) || (s = typed(c, "argmax", MLC_TYPE_I32, {&out})))
        return s;
    const int64_t nv = logits.ne[0], n = rows_of(&logits);
    if (mlc_tensor_nelem(&out) != n || nv <= 0 || nv > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": argmax: %lld picks for %lld rows of %lld", (long long)mlc_tensor_nelem(&out),
                    (long long)n, (long long)nv);
    if (n == 0)
        return MLC_OK;
    argmax_k<<<(unsigned)(n < MLC_CU_MAX_GRID ? n : MLC_CU_MAX_GRID), AM, 0, c->stream>>>(at<const float>(logits), at<int>(out),
                                                                                        (int)nv, n);
    return launched(c, "argmax");
}

} // namespace MLC_GPU_NS

/* host_flash_row under a C name per build (tests/test_cuda.c). */
#ifdef MLC_GPU_HIP
extern "C" void mlc_hip_host_flash_row(const float *s, const float *v, int n, int hd, float *out)
#else
extern "C" void mlc_cuda_host_flash_row(const float *s, const float *v, int n, int hd, float *out)
#endif
{
    MLC_GPU_NS::host_flash_row(s, v, n, hd, out);
}

/* host_argmax_row under a C name per build (tests/test_cuda.c): the kernel's steps with
 * threads threads. */
#ifdef MLC_GPU_HIP
extern "C" int32_t mlc_hip_host_argmax_row(const float *x, int32_t n, int threads)
#else
extern "C" int32_t mlc_cuda_host_argmax_row(const float *x, int32_t n, int threads)
#endif
{
    return MLC_GPU_NS::host_argmax_row(x, n, threads);
}
