/* cuda_flash.cuh: the online softmax of the flash attention kernel (cuda_ops.cu), per query:
 * the positions come in tiles; each tile's largest score raises the running maximum m, the
 * sums so far (the output o = sum e^(s - m) v and the denominator l) are rescaled by
 * e^(m_old - m_new), and the tile's weights e^(s - m) are added. Compiled for the host too:
 * host_flash_row runs the kernel's steps for one query, which tests/test_cuda.c compares
 * with a two-pass softmax in double. */
#ifndef MLC_CUDA_FLASH_CUH
#define MLC_CUDA_FLASH_CUH

#include <math.h>

#include "gpu.h"

namespace MLC_GPU_NS {

#define MLC_FA_HD __host__ __device__ __forceinline__
#define FP_KT 16 /* positions per K / V tile of the flash kernel */

/* The positions [*lo, *np) a query at position pos sees: causal, and the last window ones
 * when window > 0. */
MLC_FA_HD void fa_span(int pos, int window, int *lo, int *np)
{
    *np = pos + 1;
    *lo = window > 0 && *np > window ? *np - window : 0;
}

/* One query's running state: maximum m of the scores so far (-inf: none yet) and the
 * denominator l = sum e^(s - m). */
typedef struct fa_state {
    float m;
    double l;
} fa_state;

/* Enters a tile whose largest score is tmax (-inf: every position masked): sets the new
 * maximum and returns the factor that rescales o and l (1 while nothing has been seen). */
MLC_FA_HD float fa_enter(fa_state *st, float tmax)
{
    const float m = fmaxf(st->m, tmax);
    const float c = st->m == -INFINITY ? 1.0f : (float)exp((double)(st->m - m));
    st->m = m;
    return c;
}

/* The weight of score s under the current maximum m: 0 for a masked position (-inf). */
MLC_FA_HD float fa_weight(float s, float m)
{
    return s == -INFINITY ? 0.0f : (float)exp((double)(s - m));
}

/* The factor of the final output o: 1 / l, 0 for a query that saw no position (a bad slot
 * or position, flagged). */
MLC_FA_HD float fa_norm(double l)
{
    return l > 0 ? (float)(1.0 / l) : 0.0f;
}

/* The kernel's steps for one query on the host: scores s [n] (scaled and capped; -inf for a
 * masked position) and values v [n, hd] in tiles of FP_KT positions; out [hd]. The tile's
 * weights are summed in order here and by a tree on the device (double, either way). */
static inline void host_flash_row(const float *s, const float *v, int n, int hd, float *out)
{
    fa_state st = {-INFINITY, 0.0};
    for (int d = 0; d < hd; d++)
        out[d] = 0.0f;
    for (int p0 = 0; p0 < n; p0 += FP_KT) {
        const int cnt = n - p0 < FP_KT ? n - p0 : FP_KT;
        float tmax = -INFINITY, p[FP_KT];
        for (int j = 0; j < cnt; j++)
            tmax = fmaxf(tmax, s[p0 + j]);
        const float c = fa_enter(&st, tmax);
        double ts = 0;
        for (int j = 0; j < cnt; j++) {
            p[j] = fa_weight(s[p0 + j], st.m);
            ts += p[j];
        }
        st.l = st.l * c + ts;
        for (int d = 0; d < hd; d++) {
            float a = out[d] * c;
            for (int j = 0; j < cnt; j++)
                a += p[j] * v[(int64_t)(p0 + j) * hd + d];
            out[d] = a;
        }
    }
    const float inv = fa_norm(st.l);
    for (int d = 0; d < hd; d++)
        out[d] *= inv;
}

} // namespace MLC_GPU_NS

#endif
