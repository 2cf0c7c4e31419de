/* cuda_matmul.cu: get_rows and matmul over every weight type (cuda_quant.cuh).
 *
 * matmul y [n_out, n] = x [n_in, n] W^T runs one of two kernels, both accumulating in fp32:
 *   - up to MV_MAX_TOKENS tokens (decode, small batches): the matvec kernel, one warp per
 *     weight row and up to MV_TOK tokens per block, so a batch reads each weight once per
 *     MV_TOK tokens;
 *   - more tokens (prefill): a tiled kernel, MM_R rows x MM_T tokens per block of 256
 *     threads, the weight tile dequantized into shared memory once per MM_K-wide step. */
#include "cuda_ctx.h"
#include "cuda_quant.cuh"

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
    const int i = blockIdx.y;
    if (j >= row_len || i >= n)
        return;
    const int id = ids[i];
    if (id < 0 || id >= n_rows) {
        if (j == 0 && atomicCAS(err, 0, MLC_CU_E_GET_ROWS) == 0) {
            err[1] = i;
            err[2] = id;
        }
        return;
    }
    out[(int64_t)i * row_len + j] = row_value<T>(tab + (uint64_t)id * row_bytes, j);
}

/* ---------------------------------------------------------------- matvec */

/* One warp per weight row r, tokens t0 .. t0 + MV_TOK - 1 (those below n). */
template <uint32_t T>
__global__ void __launch_bounds__(32 * MV_ROWS)
    mv_k(const uint8_t *w, uint64_t w_row, const float *x, float *y, int n_in, int n_out, int n)
{
    const int lane = threadIdx.x % 32, r = blockIdx.x * MV_ROWS + threadIdx.x / 32, t0 = blockIdx.y * MV_TOK;
    if (r >= n_out)
        return;
    const uint8_t *row = w + (uint64_t)r * w_row;
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
    const int r0 = blockIdx.x * MM_R, t0 = blockIdx.y * MM_T;
    const int lr = tid / 4, kk0 = (tid % 4) * 8; /* what this thread loads: one row / token, 8 values */
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
    const dim3 grid(blocks_for(row_len, 256), (unsigned)n);
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
    if (!bs || row_len % bs || out.ne[0] != row_len || rows_of(&out) != n || n > 65535)
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
        const dim3 grid(blocks_for(n_out, MV_ROWS), blocks_for(n, MV_TOK));
        mv_k<T><<<grid, 32 * MV_ROWS, 0, c->stream>>>(at<const uint8_t>(w), w_row, at<const float>(x), at<float>(y),
                                                     n_in, n_out, n);
        return;
    }
    const dim3 grid(blocks_for(n_out, MM_R), blocks_for(n, MM_T));
    mm_k<T><<<grid, 256, 0, c->stream>>>(at<const uint8_t>(w), w_row, at<const float>(x), at<float>(y), n_in, n_out,
                                         n);
}

mlc_status matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    cu_ctx *c = (cu_ctx *)ctx;
    mlc_status s = views_ok(c, "matmul", {&w, &x, &y});
    if (s || (s = typed(c, "matmul", MLC_TYPE_F32, {&x, &y})))
        return s;
    const int64_t n_in = w.ne[0], n_out = w.ne[1], n = rows_of(&x), bs = block_size(w.type);
    if (x.ne[0] != n_in || y.ne[0] != n_out || rows_of(&y) != n || !bs || n_in % bs || n > 65535LL * MM_T)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": matmul: weights %s [%lld, %lld], x [%lld, %lld], y [%lld, %lld] do not fit",
                    mlc_tensor_type_name(w.type), (long long)n_in, (long long)n_out, (long long)x.ne[0], (long long)n,
                    (long long)y.ne[0], (long long)rows_of(&y));
    if (n == 0 || n_out == 0)
        return MLC_OK;
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

} // namespace MLC_GPU_NS

/* host_dequantize_row under a C name per build (tests/test_cuda.c). */
#ifdef MLC_GPU_HIP
extern "C" bool mlc_hip_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n)
#else
extern "C" bool mlc_cuda_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n)
#endif
{
    return MLC_GPU_NS::host_dequantize_row(type, row, out, n);
}
