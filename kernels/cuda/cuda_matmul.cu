/* cuda_matmul.cu: get_rows and matmul over every weight type (cuda_quant.cuh).
 *
 * matmul y [n_out, n] = x [n_in, n] W^T runs one of three kernels, all accumulating in fp32:
 *   - up to MV_MAX_TOKENS tokens (decode, small batches) of a type of MLC_CU_Q8_TYPES: the
 *     activations quantized to the CPU's Q8_0 or Q8_K (cuda_q8.cuh; consecutive matmuls of
 *     one input, as q, k and v, share them), then the int8 matvec, one warp per weight row
 *     and up to MV_TOK tokens per block, integer dot products of 4 bytes (dp4a) with each
 *     block's sums exactly the CPU's; off with MLC_CUDA_NO_DP4A=1 (the next kernel takes
 *     these types then);
 *   - up to MV_MAX_TOKENS tokens otherwise: the matvec kernel, one warp per weight row and up
 *     to MV_TOK tokens per block, weights dequantized value by value against f32 activations;
 *     a batch reads each weight once per MV_TOK tokens;
 *   - more tokens (prefill), CUDA and a weight type other than F32: the tensor-core kernel,
 *     MM_R rows x MM_T tokens per block of 256 threads; per MM_K-wide step the weight tile is
 *     dequantized and rounded to half, the activation tile rounded to half, both into shared
 *     memory, and 8 warps multiply them with WMMA 16x16x16 (fp32 accumulation). Half
 *     activations are ggml's scheme on its CUDA prefill path; F32 weights keep the next kernel
 *     (their conformance threshold allows float rounding only). Off with MLC_CUDA_NO_MMA=1;
 *   - more tokens otherwise (and on HIP): a tiled kernel, MM_R rows x MM_T tokens per block of
 *     256 threads, the weight tile dequantized into shared memory once per MM_K-wide step. */
#ifndef MLC_GPU_HIP
#include <mma.h>
#endif

#include "cuda_ctx.h"
#include "cuda_q8.cuh"

namespace MLC_GPU_NS {

#define MV_ROWS 4         /* weight rows per matvec block (one warp of 32 lanes each) */
#define MV_TOK 4          /* tokens per matvec block */
#define MV_MAX_TOKENS 16  /* up to this many tokens, matmul runs the matvec kernel */
#define MV_CHUNK 8        /* consecutive values a lane takes per step (all block sizes divide by it or are 1) */
#define MM_R 64
#define MM_T 64
#define MM_K 32

__device__ __forceinline__ float warp_sum(float v)
{
    for (int m = 16; m > 0; m >>= 1)
        v += MLC_SHFL_XOR(v, m, 32);
    return v;
}

/* ---------------------------------------------------------------- get_rows */

/* out [row_len, n] = rows ids [n] of table [row_len, n_rows]; one thread per value. */
template <uint32_t T>
__global__ void get_rows_k(const uint8_t *tab, uint64_t row_bytes, int n_rows, const int *ids, float *out,
                           int row_len, int n, int *err)
{
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= row_len)
        return;
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const int id = ids[i];
        if (id < 0 || id >= n_rows) {
            if (j == 0 && atomicCAS(err, 0, MLC_CU_E_GET_ROWS) == 0) {
                err[1] = i;
                err[2] = id;
            }
            continue;
        }
        out[(int64_t)i * row_len + j] = row_value<T>(tab + (uint64_t)id * row_bytes, j);
    }
}

/* ---------------------------------------------------------------- matvec */

/* One warp per weight row r, tokens t0 .. t0 + MV_TOK - 1 (those below n). */
template <uint32_t T>
__global__ void __launch_bounds__(32 * MV_ROWS)
    mv_k(const uint8_t *w, uint64_t w_row, const float *x, float *y, int n_in, int n_out, int n)
{
    const int lane = threadIdx.x % 32, r = blockIdx.x * MV_ROWS + threadIdx.x / 32;
    if (r >= n_out)
        return;
    const uint8_t *row = w + (uint64_t)r * w_row;
    for (int t0 = blockIdx.y * MV_TOK; t0 < n; t0 += gridDim.y * MV_TOK) {
        const int nt = n - t0 < MV_TOK ? n - t0 : MV_TOK;
        float acc[MV_TOK] = {};
        for (int64_t i0 = (int64_t)lane * MV_CHUNK; i0 < n_in; i0 += 32 * MV_CHUNK) {
#pragma unroll
            for (int e = 0; e < MV_CHUNK; e++) {
                const int64_t i = i0 + e;
                if (i >= n_in)
                    break;
                const float wv = row_value<T>(row, i);
#pragma unroll
                for (int t = 0; t < MV_TOK; t++)
                    if (t < nt)
                        acc[t] += wv * x[(int64_t)(t0 + t) * n_in + i];
            }
        }
#pragma unroll
        for (int t = 0; t < MV_TOK; t++) {
            const float s = warp_sum(acc[t]);
            if (lane == 0 && t < nt)
                y[(int64_t)(t0 + t) * n_out + r] = s;
        }
    }
}

/* ---------------------------------------------------------------- int8 matvec */

/* Q8_0 activations of x [n_blk * 32] f32 (all tokens' rows end to end): qs [n_blk * 32] and
 * d [n_blk]; one warp per 32-value block (the maximum is exact in any order). */
__global__ void act_q8_0_k(const float *x, int8_t *qs, float *d, int64_t n_blk)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i / 32 >= n_blk) /* whole warps: blockDim is a multiple of 32 */
        return;
    const float v = x[i];
    float amax = fmaxf(0.0f, fabsf(v)); /* a NaN counts as 0, as fmaxf on the CPU */
    for (int m = 16; m > 0; m >>= 1)
        amax = fmaxf(amax, MLC_SHFL_XOR(amax, m, 32));
    float dd, id;
    q8_0_scale(amax, &dd, &id);
    qs[i] = q8_0_value(v, id);
    if (threadIdx.x % 32 == 0)
        d[i / 32] = dd;
}

/* Q8_K activations of x [n_blk * 256]: qs, d [n_blk] and the sums s32 [n_blk * 8]; one block of
 * 256 threads per 256 values. The scale comes from the first value of largest magnitude (the
 * CPU's strict > from 0: zeros and NaNs never count), found by (magnitude, index) pairs. */
__global__ void __launch_bounds__(256) act_q8_K_k(const float *x, int8_t *qs, float *d, int *s32)
{
    __shared__ float key_s[8];
    __shared__ int idx_s[8];
    const int tid = threadIdx.x, lane = tid % 32, wid = tid / 32;
    const int64_t i = (int64_t)blockIdx.x * 256 + tid;
    const float v = x[i];
    float key = fabsf(v) > 0 ? fabsf(v) : -1.0f;
    int idx = tid;
    for (int m = 16; m > 0; m >>= 1) {
        const float k2 = MLC_SHFL_XOR(key, m, 32);
        const int i2 = MLC_SHFL_XOR(idx, m, 32);
        if (k2 > key || (k2 == key && i2 < idx)) {
            key = k2;
            idx = i2;
        }
    }
    if (lane == 0) {
        key_s[wid] = key;
        idx_s[wid] = idx;
    }
    __syncthreads();
    key = key_s[0];
    idx = idx_s[0];
    for (int w = 1; w < 8; w++)
        if (key_s[w] > key) { /* warps in index order: a tie keeps the earlier one */
            key = key_s[w];
            idx = idx_s[w];
        }
    const float mx = key > 0 ? x[(int64_t)blockIdx.x * 256 + idx] : 0.0f;
    float dd, iscale;
    q8_K_scale(mx, &dd, &iscale);
    const int8_t q = q8_K_value(v, iscale);
    qs[i] = q;
    int s = q;
    for (int m = 16; m > 0; m >>= 1)
        s += MLC_SHFL_XOR(s, m, 32);
    if (lane == 0)
        s32[(int64_t)blockIdx.x * 8 + wid] = s;
    if (tid == 0)
        d[blockIdx.x] = dd;
}

/* One warp per weight row r, tokens t0 .. t0 + MV_TOK - 1 (those below n), against the
 * quantized activations (qs aq [n, n_in], scales ad, sums as: cuda_q8.cuh's layout). Lane
 * group g of LPB lanes takes blocks g, g + 32 / LPB, ...; every lane runs every step (the
 * group's integer sums are shuffled together), lanes past the row's end adding nothing. */
template <uint32_t T>
__global__ void __launch_bounds__(32 * MV_ROWS)
    mvq_k(const uint8_t *w, uint64_t w_row, const int8_t *aq, const float *ad, const int *as, float *y, int n_in,
          int n_out, int n)
{
    using D = Dq<T>;
    constexpr int L = D::LPB, G = 32 / L, BS = Wt<T>::BS, BB = Wt<T>::BB;
    const int lane = threadIdx.x % 32, r = blockIdx.x * MV_ROWS + threadIdx.x / 32;
    if (r >= n_out)
        return;
    const uint8_t *row = w + (uint64_t)r * w_row;
    const int k = lane % L, nb = n_in / BS;
    for (int t0 = blockIdx.y * MV_TOK; t0 < n; t0 += gridDim.y * MV_TOK) {
        const int nt = n - t0 < MV_TOK ? n - t0 : MV_TOK;
        float acc[MV_TOK] = {};
        for (int ib0 = 0; ib0 < nb; ib0 += G) {
            const int ib = ib0 + lane / L;
            const bool ok = ib < nb;
            const uint8_t *b = row + (int64_t)(ok ? ib : 0) * BB;
#pragma unroll
            for (int t = 0; t < MV_TOK; t++) {
                if (t < nt) { /* the same for the whole warp */
                    const int64_t tok = t0 + t;
                    int i1 = 0, i2 = 0;
                    if (ok)
                        D::part(b, k, (const int *)(aq + tok * n_in + (int64_t)ib * BS),
                                D::AQ == 256 ? as + (tok * n_in + (int64_t)ib * BS) / 32 : nullptr, i1, i2);
#pragma unroll
                    for (int m = 1; m < L; m <<= 1) {
                        i1 += MLC_SHFL_XOR(i1, m, 32);
                        i2 += MLC_SHFL_XOR(i2, m, 32);
                    }
                    if (ok && k == 0)
                        acc[t] += D::term(b, ad[(tok * n_in + (int64_t)ib * BS) / D::AQ], i1, i2);
                }
            }
        }
#pragma unroll
        for (int t = 0; t < MV_TOK; t++) {
            const float s = warp_sum(acc[t]);
            if (lane == 0 && t < nt)
                y[(int64_t)(t0 + t) * n_out + r] = s;
        }
    }
}

/* ---------------------------------------------------------------- tiled matmul */

/* Rows r0 .. r0 + MM_R - 1, tokens t0 .. t0 + MM_T - 1; thread (tr, tt) = (tid % 16, tid / 16)
 * computes rows tr + 16 i and tokens tt + 16 j (i, j < 4). */
template <uint32_t T>
__global__ void __launch_bounds__(256)
    mm_k(const uint8_t *w, uint64_t w_row, const float *x, float *y, int n_in, int n_out, int n)
{
    __shared__ float ws[MM_K][MM_R + 1];
    __shared__ float xs[MM_K][MM_T + 1];
    const int tid = threadIdx.x, tr = tid % 16, tt = tid / 16;
    const int r0 = blockIdx.x * MM_R;
    const int lr = tid / 4, kk0 = (tid % 4) * 8; /* what this thread loads: one row / token, 8 values */
    for (int t0 = blockIdx.y * MM_T; t0 < n; t0 += gridDim.y * MM_T) { /* the same for the whole block */
        float acc[4][4] = {};
        for (int k0 = 0; k0 < n_in; k0 += MM_K) {
            const int r = r0 + lr, t = t0 + lr;
            const uint8_t *row = w + (uint64_t)(r < n_out ? r : 0) * w_row;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const int k = k0 + kk0 + e;
                ws[kk0 + e][lr] = r < n_out && k < n_in ? row_value<T>(row, k) : 0.0f;
                xs[kk0 + e][lr] = t < n && k < n_in ? x[(int64_t)t * n_in + k] : 0.0f;
            }
            __syncthreads();
#pragma unroll 8
            for (int k = 0; k < MM_K; k++) {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    a[i] = ws[k][tr + 16 * i];
                    b[i] = xs[k][tt + 16 * i];
                }
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        acc[i][j] += a[i] * b[j];
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int r = r0 + tr + 16 * i, t = t0 + tt + 16 * j;
                if (r < n_out && t < n)
                    y[(int64_t)t * n_out + r] = acc[i][j];
            }
    }
}

/* ---------------------------------------------------------------- tensor-core matmul */

#ifndef MLC_GPU_HIP
#define MMA_LD (MM_K + 8)  /* halves per row of the shared tiles (a multiple of 8, as WMMA asks) */
#define MMA_LDC (MM_R + 4) /* floats per token of the shared output tile (a multiple of 4) */

/* Rows r0 .. r0 + MM_R - 1, tokens t0 .. t0 + MM_T - 1. Shared tiles: ws [MM_R][MMA_LD] half
 * (row r, k), the weights' A (row major); xs [MM_T][MMA_LD] half (token t, k), the
 * activations' B (column major); cs [MM_T][MMA_LDC] f32, the output tile as (token, row).
 * Warp w computes rows 16 (w % 4) .. + 15 and tokens 32 (w / 4) .. + 31: two 16 x 16
 * accumulators. Loads as mm_k: thread tid takes row / token tid / 4, 8 values from
 * (tid % 4) * 8. */
template <uint32_t T>
__global__ void __launch_bounds__(256)
    mma_k(const uint8_t *w, uint64_t w_row, const float *x, float *y, int n_in, int n_out, int n)
{
    using namespace nvcuda;
    __shared__ __align__(32) __half ws[MM_R * MMA_LD];
    __shared__ __align__(32) __half xs[MM_T * MMA_LD];
    __shared__ __align__(32) float cs[MM_T * MMA_LDC];
    const int tid = threadIdx.x, wid = tid / 32, wr = (wid % 4) * 16, wt = (wid / 4) * 32;
    const int r0 = blockIdx.x * MM_R;
    const int lr = tid / 4, kk0 = (tid % 4) * 8;
    for (int t0 = blockIdx.y * MM_T; t0 < n; t0 += gridDim.y * MM_T) { /* the same for the whole block */
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
        wmma::fill_fragment(acc[0], 0.0f);
        wmma::fill_fragment(acc[1], 0.0f);
        for (int k0 = 0; k0 < n_in; k0 += MM_K) {
            const int r = r0 + lr, t = t0 + lr;
            const uint8_t *row = w + (uint64_t)(r < n_out ? r : 0) * w_row;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const int k = k0 + kk0 + e;
                ws[lr * MMA_LD + kk0 + e] = __float2half_rn(r < n_out && k < n_in ? row_value<T>(row, k) : 0.0f);
                xs[lr * MMA_LD + kk0 + e] = __float2half_rn(t < n && k < n_in ? x[(int64_t)t * n_in + k] : 0.0f);
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < MM_K; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
                wmma::load_matrix_sync(a, ws + wr * MMA_LD + kk, MMA_LD);
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    wmma::load_matrix_sync(b, xs + (wt + 16 * j) * MMA_LD + kk, MMA_LD);
                    wmma::mma_sync(acc[j], a, b, acc[j]);
                }
            }
            __syncthreads();
        }
        /* C (row, token) goes to cs [token][row]: column major with rows contiguous */
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(cs + (wt + 16 * j) * MMA_LDC + wr, acc[j], MMA_LDC, wmma::mem_col_major);
        __syncthreads();
        for (int i = tid; i < MM_R * MM_T; i += 256) {
            const int rr = i % MM_R, tt = i / MM_R, r = r0 + rr, t = t0 + tt;
            if (r < n_out && t < n)
                y[(int64_t)t * n_out + r] = cs[tt * MMA_LDC + rr];
        }
        __syncthreads(); /* cs is reused by the next tile of tokens */
    }
}
#endif

/* ---------------------------------------------------------------- host side */

static int64_t block_size(uint32_t type)
{
    switch (type) {
#define BS_(T)  \
    case T:     \
        return Wt<T>::BS;
        MLC_CU_WEIGHT_TYPES(BS_)
#undef BS_
    default:
        return 0;
    }
}

bool weight_type_ok(uint32_t type)
{
    return block_size(type) > 0;
}

bool supports(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4])
{
    (void)ctx;
    const bool kv = type == MLC_TYPE_F16 || type == MLC_TYPE_F32;
    switch (op) {
    case MLC_OP_GET_ROWS:
    case MLC_OP_MATMUL:
        return weight_type_ok(type) && shape[0] > 0 && shape[0] % block_size(type) == 0 && shape[0] <= INT32_MAX / 4 &&
               shape[1] <= INT32_MAX;
    case MLC_OP_ROPE:
        return type == MLC_TYPE_F32 && shape[2] <= shape[0] && shape[2] % 2 == 0;
    case MLC_OP_KV_STORE:
        return kv;
    case MLC_OP_ATTENTION:
        return kv && shape[0] > 0 && shape[0] <= MLC_CU_MAX_HD && shape[2] > 0 && shape[1] % shape[2] == 0;
    default:
        return type == MLC_TYPE_F32;
    }
}

template <uint32_t T>
static void launch_get_rows(cu_ctx *c, const mlc_tensor &table, const mlc_tensor &ids, const mlc_tensor &out,
                            int row_len, int n)
{
    const dim3 grid(blocks_for(row_len, 256), grid_yz(n));
    get_rows_k<T><<<grid, 256, 0, c->stream>>>(at<const uint8_t>(table), mlc_type_row_bytes(T, row_len),
                                               (int)rows_of(&table), at<const int>(ids), at<float>(out), row_len, n,
                                               (int *)c->errflag.ptr);
}

mlc_status get_rows(void *ctx, mlc_tensor table, mlc_tensor ids, mlc_tensor out)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "get_rows", {&table, &ids, &out});
    if (s || (s = typed(c, "get_rows", MLC_TYPE_I32, {&ids})) || (s = typed(c, "get_rows", MLC_TYPE_F32, {&out})))
        return s;
    const int64_t row_len = table.ne[0], n = mlc_tensor_nelem(&ids), bs = block_size(table.type);
    if (!bs || row_len % bs || out.ne[0] != row_len || rows_of(&out) != n || n > INT32_MAX)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": get_rows: %s table, output [%lld, %lld] for %lld rows of %lld",
                    mlc_tensor_type_name(table.type), (long long)out.ne[0], (long long)rows_of(&out), (long long)n,
                    (long long)row_len);
    if (n == 0 || row_len == 0)
        return MLC_OK;
    switch (table.type) {
#define GR_(T)                                                             \
    case T:                                                                \
        launch_get_rows<T>(c, table, ids, out, (int)row_len, (int)n);      \
        break;
        MLC_CU_WEIGHT_TYPES(GR_)
#undef GR_
    }
    return launched(c, "get_rows");
}

template <uint32_t T>
static void launch_matmul(cu_ctx *c, const mlc_tensor &w, const mlc_tensor &x, const mlc_tensor &y, int n_in,
                          int n_out, int n)
{
    const uint64_t w_row = mlc_type_row_bytes(T, n_in);
    if (n <= MV_MAX_TOKENS) {
        const dim3 grid(blocks_for(n_out, MV_ROWS), grid_yz(blocks_for(n, MV_TOK)));
        mv_k<T><<<grid, 32 * MV_ROWS, 0, c->stream>>>(at<const uint8_t>(w), w_row, at<const float>(x), at<float>(y),
                                                     n_in, n_out, n);
        return;
    }
    const dim3 grid(blocks_for(n_out, MM_R), grid_yz(blocks_for(n, MM_T)));
#ifndef MLC_GPU_HIP
    if constexpr (T != MLC_TYPE_F32) {
        if (!c->no_mma) {
            mma_k<T><<<grid, 256, 0, c->stream>>>(at<const uint8_t>(w), w_row, at<const float>(x), at<float>(y),
                                                  n_in, n_out, n);
            return;
        }
    }
#endif
    mm_k<T><<<grid, 256, 0, c->stream>>>(at<const uint8_t>(w), w_row, at<const float>(x), at<float>(y), n_in, n_out,
                                         n);
}

/* Whether matmul of w for n tokens takes the int8 path: a type with one, few tokens, and
 * weights aligned for its loads (4-byte words of 16-byte blocks for Q4_K and Q5_K, 2-byte
 * halves otherwise; weights() gives allocations at offset 0, which always are). */
static bool q8_path(const cu_ctx *c, const mlc_tensor &w, int64_t n)
{
    if (c->no_dp4a || n > MV_MAX_TOKENS)
        return false;
    const uintptr_t a = (uintptr_t)at<const uint8_t>(w);
    switch (w.type) {
    case MLC_TYPE_Q4_K:
    case MLC_TYPE_Q5_K:
        return a % 16 == 0;
    case MLC_TYPE_Q8_0:
    case MLC_TYPE_Q4_0:
    case MLC_TYPE_Q5_0:
    case MLC_TYPE_Q6_K:
        return a % 2 == 0;
    default:
        return false;
    }
}

/* Quantizes x [n_in, n] into the scratch c->act (cuda_q8.cuh's layout: qs, then d at *ad,
 * then the sums at *as) as the activations of a type whose blocks hold aq values. */
static mlc_status quantize_act(cu_ctx *c, const mlc_tensor &xt, int64_t n_in, int64_t n, int aq, int8_t **qs,
                               float **ad, int **as)
{
    const size_t nq = (size_t)(n_in * n), d_off = (nq + 15) / 16 * 16, n32 = nq / 32;
    mlc_status s = scratch(c, &c->act, d_off + 2 * n32 * sizeof(float), "quantized activations");
    if (s)
        return s;
    *qs = (int8_t *)c->act.ptr;
    *ad = (float *)((uint8_t *)c->act.ptr + d_off);
    *as = (int *)(*ad + n32);
    /* The scratch still holds these activations when the last op was a matmul that quantized
     * (or reused) the same view the same way and wrote elsewhere (q, k, v and gate, up). */
    cu_act_key &k = c->act_key;
    const bool same = k.epoch && k.epoch + 1 == c->epoch && k.buf == xt.buf && k.offset == xt.offset &&
                      k.n_in == n_in && k.n == n && k.aq == aq;
    k = {c->epoch, xt.buf, xt.offset, n_in, n, aq};
    if (same)
        return MLC_OK;
    const float *x = at<const float>(xt);
    if (aq == 32)
        act_q8_0_k<<<blocks_for((int64_t)nq, 256), 256, 0, c->stream>>>(x, *qs, *ad, (int64_t)n32);
    else
        act_q8_K_k<<<(unsigned)(nq / 256), 256, 0, c->stream>>>(x, *qs, *ad, *as);
    return launched(c, "matmul: quantizing the activations");
}

template <uint32_t T>
static mlc_status launch_mvq(cu_ctx *c, const mlc_tensor &w, const mlc_tensor &x, const mlc_tensor &y, int n_in,
                             int n_out, int n)
{
    int8_t *qs;
    float *ad;
    int *as;
    mlc_status s = quantize_act(c, x, n_in, n, Dq<T>::AQ, &qs, &ad, &as);
    if (s)
        return s;
    if (y.buf == x.buf) /* y may overlap x: the next matmul quantizes again */
        c->act_key.epoch = 0;
    const dim3 grid(blocks_for(n_out, MV_ROWS), grid_yz(blocks_for(n, MV_TOK)));
    mvq_k<T><<<grid, 32 * MV_ROWS, 0, c->stream>>>(at<const uint8_t>(w), mlc_type_row_bytes(T, n_in), qs, ad, as,
                                                  at<float>(y), n_in, n_out, n);
    return launched(c, "matmul");
}

mlc_status matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "matmul", {&w, &x, &y});
    if (s || (s = typed(c, "matmul", MLC_TYPE_F32, {&x, &y})))
        return s;
    const int64_t n_in = w.ne[0], n_out = w.ne[1], n = rows_of(&x), bs = block_size(w.type);
    if (x.ne[0] != n_in || y.ne[0] != n_out || rows_of(&y) != n || !bs || n_in % bs || n > INT32_MAX / 2)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": matmul: weights %s [%lld, %lld], x [%lld, %lld], y [%lld, %lld] do not fit",
                    mlc_tensor_type_name(w.type), (long long)n_in, (long long)n_out, (long long)x.ne[0], (long long)n,
                    (long long)y.ne[0], (long long)rows_of(&y));
    if (n == 0 || n_out == 0)
        return MLC_OK;
    if (q8_path(c, w, n)) {
        switch (w.type) {
#define MVQ_(T) \
    case T:     \
        return launch_mvq<T>(c, w, x, y, (int)n_in, (int)n_out, (int)n);
            MLC_CU_Q8_TYPES(MVQ_)
#undef MVQ_
        }
    }
    switch (w.type) {
#define MM_(T)                                                             \
    case T:                                                                \
        launch_matmul<T>(c, w, x, y, (int)n_in, (int)n_out, (int)n);       \
        break;
        MLC_CU_WEIGHT_TYPES(MM_)
#undef MM_
    }
    return launched(c, "matmul");
}

/* The host side of the kernels' dequantization: value i of n of a row of type, for tests. */
bool host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n)
{
    const uint8_t *r = (const uint8_t *)row;
    switch (type) {
#define HD_(T)                              \
    case T:                                 \
        for (int64_t i = 0; i < n; i++)     \
            out[i] = row_value<T>(r, i);    \
        return true;
        MLC_CU_WEIGHT_TYPES(HD_)
#undef HD_
    default:
        return false;
    }
}

/* The host side of the int8 path, for tests: the activations x [n] quantized as for
 * weights of type (qs [n], d, and for Q8_K the sums s32 [n / 32]), with the per-value
 * functions the kernels use and the maxima and sums (exact in any order) taken in order. */
static bool host_act(uint32_t type, const float *x, int64_t n, int8_t *qs, float *d, int *s32)
{
    int aq = 0;
    switch (type) {
#define AQ_(T)        \
    case T:           \
        aq = Dq<T>::AQ; \
        break;
        MLC_CU_Q8_TYPES(AQ_)
#undef AQ_
    default:
        return false;
    }
    for (int64_t i = 0; i < n; i += aq) {
        float amax = 0, mx = 0, dd, id;
        for (int j = 0; j < aq; j++) {
            if (aq == 32)
                amax = fmaxf(amax, fabsf(x[i + j]));
            else if (fabsf(x[i + j]) > amax)
                mx = x[i + j], amax = fabsf(mx);
        }
        if (aq == 32)
            q8_0_scale(amax, &dd, &id);
        else
            q8_K_scale(mx, &dd, &id);
        d[i / aq] = dd;
        for (int j = 0; j < aq; j++)
            qs[i + j] = aq == 32 ? q8_0_value(x[i + j], id) : q8_K_value(x[i + j], id);
    }
    for (int64_t i = 0; aq == 256 && i < n; i += 32) {
        int s = 0;
        for (int j = 0; j < 32; j++)
            s += qs[i + j];
        s32[i / 32] = s;
    }
    return true;
}

/* Row w [n] of type against those activations as the int8 kernel computes each block (the
 * lanes' parts in turn), the block terms summed in order: the CPU scalar dot's order. */
template <uint32_t T>
static float host_q8_dot(const uint8_t *w, const int8_t *qs, const float *d, const int *s32, int64_t n)
{
    using D = Dq<T>;
    float s = 0;
    for (int64_t ib = 0; ib < n / Wt<T>::BS; ib++) {
        const uint8_t *b = w + ib * Wt<T>::BB;
        const int64_t i0 = ib * Wt<T>::BS;
        int i1 = 0, i2 = 0;
        for (int k = 0; k < D::LPB; k++)
            D::part(b, k, (const int *)(qs + i0), s32 + i0 / 32, i1, i2);
        s += D::term(b, d[i0 / D::AQ], i1, i2);
    }
    return s;
}

static bool host_q8_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out, int8_t *qs_out,
                            float *d_out, int *s32_out)
{
    if (!host_act(type, x, n, qs_out, d_out, s32_out))
        return false;
    switch (type) {
#define HQ_(T)                                                                          \
    case T:                                                                             \
        *out = host_q8_dot<T>((const uint8_t *)w, qs_out, d_out, s32_out, n);           \
        return true;
        MLC_CU_Q8_TYPES(HQ_)
#undef HQ_
    default:
        return false;
    }
}

#ifndef MLC_GPU_HIP
/* The tensor-core kernel's numerics on the host, for tests: row w [n] of type T dequantized
 * by the kernels' function and rounded to half, against x [n] rounded to half, the exact
 * products summed in fp32 in order (the tensor cores' order differs). */
template <uint32_t T> static float host_mma_dot(const uint8_t *w, const float *x, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += __half2float(__float2half_rn(row_value<T>(w, i))) * __half2float(__float2half_rn(x[i]));
    return s;
}

/* false for F32, which the tensor-core kernel does not take. */
static bool host_mma_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out)
{
    if (type == MLC_TYPE_F32)
        return false;
    switch (type) {
#define HM_(T)                                                  \
    case T:                                                     \
        *out = host_mma_dot<T>((const uint8_t *)w, x, n);       \
        return true;
        MLC_CU_WEIGHT_TYPES(HM_)
#undef HM_
    default:
        return false;
    }
}
#endif

} // namespace MLC_GPU_NS

#ifndef MLC_GPU_HIP
/* host_mma_dot_row under a C name (tests/test_cuda.c); the hip build has no tensor-core path. */
extern "C" bool mlc_cuda_host_mma_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out)
{
    return MLC_GPU_NS::host_mma_dot_row(type, w, x, n, out);
}
#endif

/* host_q8_dot_row under a C name per build (tests/test_cuda.c): qs [n] (4-byte aligned),
 * d [n / 32] and s32 [n / 32] receive the quantized activations; false for a type without
 * an int8 path. */
#ifdef MLC_GPU_HIP
extern "C" bool mlc_hip_host_q8_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out,
                                        int8_t *qs, float *d, int *s32)
#else
extern "C" bool mlc_cuda_host_q8_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out,
                                         int8_t *qs, float *d, int *s32)
#endif
{
    return MLC_GPU_NS::host_q8_dot_row(type, w, x, n, out, qs, d, s32);
}

/* host_dequantize_row under a C name per build (tests/test_cuda.c). */
#ifdef MLC_GPU_HIP
extern "C" bool mlc_hip_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n)
#else
extern "C" bool mlc_cuda_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n)
#endif
{
    return MLC_GPU_NS::host_dequantize_row(type, row, out, n);
}
