/* matmul.cl: y [n_out, n] = x [n_in, n] W^T for W [n_in, n_out] in a GGUF type.
 *
 * Two kernels per weight type:
 *   mv_*  decode (few tokens): one work group of WG items per (MV_ROWS output rows, token);
 *         the MV_LANES items of a row stride over its blocks and sum in local memory.
 *         Weights are read once per token.
 *   mm_*  prefill: a TR x TT tile of (rows, tokens) per work group; the tile's activations
 *         are staged through local memory CHUNK values at a time and shared by its TR rows,
 *         each weight row is read by the TT items of its column (from cache after the first).
 * Activations come converted by quant.cl (F32: x itself). Build options define WG, TR, TT,
 * MV_ROWS. */

#define CHUNK 512  /* activation values per token staged per step: a multiple of 256 */
#define CHUNKF 256 /* the same for float activations (4 bytes each) */
#define MV_LANES (WG / MV_ROWS)  /* work items per row of a matvec group */
#define MV_BLOCKS 512            /* rows of up to this many blocks are summed in block order */

#define MV_Q(NAME, BS, BB, DS)                                                                    \
    kernel void mv_##NAME(global const uchar *wb, ulong woff, ulong w_row, global const uchar *act, \
                          ulong qoff, ulong doff, global uchar *yb, ulong yoff, int n_in, int n_out) \
    {                                                                                             \
        local float part[WG];                                                                     \
        local float blk[MV_ROWS * MV_BLOCKS];                                                     \
        const int lid = get_local_id(0), rl = lid / MV_LANES, lane = lid % MV_LANES;              \
        const int r = get_group_id(1) * MV_ROWS + rl, t = get_group_id(2), nb = n_in / BS;        \
        global const uchar *w = wb + woff + (ulong)min(r, n_out - 1) * w_row;                     \
        global const char *q = CPTR(char, act, qoff) + (ulong)t * n_in;                           \
        global const float *d = CPTR(float, act, doff) + (ulong)t * nb * DS;                      \
        local float *mine = blk + rl * MV_BLOCKS;                                                 \
        float s = 0;                                                                              \
        if (nb <= MV_BLOCKS) {                                                                    \
            /* block dots in parallel, summed in block order (the CPU's order) by one lane */     \
            for (int b = lane; b < nb; b += MV_LANES)                                             \
                mine[b] = dot_##NAME##_global(w + (ulong)b * BB, q + b * BS, d + b * DS);         \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            for (int b = 0; lane == 0 && b < nb; b++)                                             \
                s += mine[b];                                                                     \
        } else {                                                                                  \
            for (int b = lane; b < nb; b += MV_LANES)                                             \
                s += dot_##NAME##_global(w + (ulong)b * BB, q + b * BS, d + b * DS);              \
            part[lid] = s;                                                                        \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            s = 0;                                                                                \
            for (int i = 0; lane == 0 && i < MV_LANES; i++)                                       \
                s += part[lid + i];                                                               \
        }                                                                                         \
        if (lane == 0 && r < n_out)                                                               \
            PTR(float, yb, yoff)[(ulong)t * n_out + r] = s;                                       \
    }

#define MM_Q(NAME, BS, BB, DS)                                                                    \
    kernel __attribute__((reqd_work_group_size(TR, TT, 1))) void mm_##NAME(                       \
        global const uchar *wb, ulong woff, ulong w_row, global const uchar *act, ulong qoff,     \
        ulong doff, global uchar *yb, ulong yoff, int n_in, int n_out, int n)                     \
    {                                                                                             \
        local char lq[TT * CHUNK];                                                                \
        local float ld[TT * (CHUNK / BS) * DS];                                                   \
        const int lt = get_local_id(1), li = lt * TR + get_local_id(0);                           \
        const int r = get_global_id(0), t = get_global_id(1), t0 = get_group_id(1) * TT;          \
        const int nb = n_in / BS;                                                                 \
        global const char *aq = CPTR(char, act, qoff);                                            \
        global const float *ad = CPTR(float, act, doff);                                          \
        global const uchar *w = wb + woff + (ulong)min(r, n_out - 1) * w_row;                     \
        float s = 0;                                                                              \
        for (int c0 = 0; c0 < n_in; c0 += CHUNK) {                                                \
            const int cn = min(CHUNK, n_in - c0);                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            for (int i = li; i < TT * (CHUNK / 16); i += TR * TT) {                               \
                const int tt = i / (CHUNK / 16), off = (i % (CHUNK / 16)) * 16;                   \
                if (off < cn && t0 + tt < n)                                                      \
                    vstore16(vload16(0, aq + (ulong)(t0 + tt) * n_in + c0 + off), 0,              \
                             lq + tt * CHUNK + off);                                              \
            }                                                                                     \
            for (int i = li; i < TT * (CHUNK / BS) * DS; i += TR * TT) {                          \
                const int tt = i / ((CHUNK / BS) * DS), b = i % ((CHUNK / BS) * DS);              \
                if (b / DS * BS < cn && t0 + tt < n)                                              \
                    ld[i] = ad[((ulong)(t0 + tt) * nb + c0 / BS) * DS + b];                       \
            }                                                                                     \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            if (t < n)                                                                            \
                for (int b = 0; b * BS < cn; b++)                                                 \
                    s += dot_##NAME##_local(w + (ulong)(c0 / BS + b) * BB,                        \
                                            lq + lt * CHUNK + b * BS,                             \
                                            ld + (lt * (CHUNK / BS) + b) * DS);                   \
        }                                                                                         \
        if (r < n_out && t < n)                                                                   \
            PTR(float, yb, yoff)[(ulong)t * n_out + r] = s;                                       \
    }

/* Products of the float types as the CPU forms them: F32 in the accumulator's precision,
 * F16 / BF16 in float (exact: 11- or 8-bit significands). */
#define PROD_f32(w, a) ((acc_t)(w) * (acc_t)(a))
#define PROD_f16(w, a) ((acc_t)((w) * (a)))
#define PROD_bf16(w, a) ((acc_t)((w) * (a)))

#ifdef SG
/* Sub-group path: each sub-group takes rows of the group's MV_ROWS in turn, its items
 * striding over the row, summed by sub_group_reduce_add: no local memory, no barrier (but
 * the emulation's). The loop's trip count is the same for every item of the group. */
#define MV_F(NAME)                                                                                \
    kernel void mv_##NAME(global const uchar *wb, ulong woff, ulong w_row, global const uchar *ab, \
                          ulong aoff, global uchar *yb, ulong yoff, int n_in, int n_out)          \
    {                                                                                             \
        local acc_t part[WG];                                                                     \
        const int t = get_group_id(2), ns = sg_size();                                            \
        global const float *a = CPTR(float, ab, aoff) + (ulong)t * n_in;                          \
        for (int k0 = 0; k0 < MV_ROWS; k0 += sg_count()) {                                       \
            const int r = get_group_id(1) * MV_ROWS + k0 + sg_id();                               \
            const bool mine = k0 + sg_id() < MV_ROWS && r < n_out;                                \
            global const uchar *w = wb + woff + (ulong)min(r, n_out - 1) * w_row;                 \
            acc_t s = 0;                                                                          \
            for (int i = sg_lid(); mine && i < n_in; i += ns)                                     \
                s += PROD_##NAME(wv_##NAME(w, i), a[i]);                                          \
            s = sg_sum_a(s, part);                                                                \
            if (mine && sg_lid() == 0)                                                            \
                PTR(float, yb, yoff)[(ulong)t * n_out + r] = (float)s;                            \
        }                                                                                         \
    }
#else
#define MV_F(NAME)                                                                                \
    kernel void mv_##NAME(global const uchar *wb, ulong woff, ulong w_row, global const uchar *ab, \
                          ulong aoff, global uchar *yb, ulong yoff, int n_in, int n_out)          \
    {                                                                                             \
        local acc_t part[WG];                                                                     \
        const int lid = get_local_id(0), rl = lid / MV_LANES, lane = lid % MV_LANES;              \
        const int r = get_group_id(1) * MV_ROWS + rl, t = get_group_id(2);                        \
        global const uchar *w = wb + woff + (ulong)min(r, n_out - 1) * w_row;                     \
        global const float *a = CPTR(float, ab, aoff) + (ulong)t * n_in;                          \
        acc_t s = 0;                                                                              \
        for (int i = lane; i < n_in; i += MV_LANES)                                               \
            s += PROD_##NAME(wv_##NAME(w, i), a[i]);                                              \
        part[lid] = s;                                                                            \
        barrier(CLK_LOCAL_MEM_FENCE);                                                             \
        s = 0;                                                                                    \
        for (int i = 0; lane == 0 && i < MV_LANES; i++)                                           \
            s += part[lid + i];                                                                   \
        if (lane == 0 && r < n_out)                                                               \
            PTR(float, yb, yoff)[(ulong)t * n_out + r] = (float)s;                                \
    }
#endif

#define MM_F(NAME)                                                                                \
    kernel __attribute__((reqd_work_group_size(TR, TT, 1))) void mm_##NAME(                       \
        global const uchar *wb, ulong woff, ulong w_row, global const uchar *ab, ulong aoff,      \
        global uchar *yb, ulong yoff, int n_in, int n_out, int n)                                 \
    {                                                                                             \
        local float la[TT * CHUNKF];                                                              \
        const int lt = get_local_id(1), li = lt * TR + get_local_id(0);                           \
        const int r = get_global_id(0), t = get_global_id(1), t0 = get_group_id(1) * TT;          \
        global const float *a = CPTR(float, ab, aoff);                                            \
        global const uchar *w = wb + woff + (ulong)min(r, n_out - 1) * w_row;                     \
        acc_t s = 0;                                                                              \
        for (int c0 = 0; c0 < n_in; c0 += CHUNKF) {                                               \
            const int cn = min(CHUNKF, n_in - c0);                                                \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            for (int i = li; i < TT * CHUNKF; i += TR * TT) {                                     \
                const int tt = i / CHUNKF, off = i % CHUNKF;                                      \
                if (off < cn && t0 + tt < n)                                                      \
                    la[i] = a[(ulong)(t0 + tt) * n_in + c0 + off];                                \
            }                                                                                     \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            if (t < n)                                                                            \
                for (int i = 0; i < cn; i++)                                                      \
                    s += PROD_##NAME(wv_##NAME(w, c0 + i), la[lt * CHUNKF + i]);                  \
        }                                                                                         \
        if (r < n_out && t < n)                                                                   \
            PTR(float, yb, yoff)[(ulong)t * n_out + r] = (float)s;                                \
    }

/* DS: floats of activation scale per block (2 for Q8_1, see quant.cl). */
#define MVM_Q(NAME, BS, BB, DS) MV_Q(NAME, BS, BB, DS) MM_Q(NAME, BS, BB, DS)
MVM_Q(q8_0, 32, 34, 1)
MVM_Q(q4_0, 32, 18, 1)
MVM_Q(q5_0, 32, 22, 1)
MVM_Q(q4_1, 32, 20, 2)
MVM_Q(q5_1, 32, 24, 2)
MVM_Q(iq4_nl, 32, 18, 1)
MVM_Q(q2_k, 256, 84, 1)
MVM_Q(q3_k, 256, 110, 1)
MVM_Q(q4_k, 256, 144, 1)
MVM_Q(q5_k, 256, 176, 1)
MVM_Q(q6_k, 256, 210, 1)
MVM_Q(iq4_xs, 256, 136, 1)
MV_F(f32)
MV_F(f16)
MV_F(bf16)
MM_F(f32)
MM_F(f16)
MM_F(bf16)
