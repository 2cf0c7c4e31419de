/* cuda_argmax.cuh: the greedy pick of a row of logits, by a block of threads on the device
 * and by the same steps on the host (tests/test_cuda.c compares those with the engine's
 * mlc_argmax). The pick is mlc_argmax's: NaN never wins, the largest value wins, equal values
 * go to the lowest index (-0 equals +0), and a row of NaN only gives 0. */
#ifndef MLC_CUDA_ARGMAX_CUH
#define MLC_CUDA_ARGMAX_CUH

#include <stdint.h>

#include "gpu.h"

namespace MLC_GPU_NS {

#define MLC_AM_HD __host__ __device__ __forceinline__
#define MLC_AM_NONE INT32_MAX /* index of a candidate that holds no number yet */

/* A candidate: value v at index i. */
typedef struct am_cand {
    float v;
    int32_t i;
} am_cand;

/* The better of a and b: a number beats none (NaN is never taken), then the larger value,
 * then the lower index. */
MLC_AM_HD am_cand am_pick(am_cand a, am_cand b)
{
    if (b.i == MLC_AM_NONE)
        return a;
    if (a.i == MLC_AM_NONE)
        return b;
    if (b.v > a.v || (b.v == a.v && b.i < a.i))
        return b;
    return a;
}

/* The candidate of value v at index i, or none for NaN. */
MLC_AM_HD am_cand am_of(float v, int32_t i)
{
    am_cand c = {v, v == v ? i : MLC_AM_NONE};
    return c;
}

/* The row's pick from the reduced candidate. */
MLC_AM_HD int32_t am_result(am_cand c)
{
    return c.i == MLC_AM_NONE ? 0 : c.i;
}

/* The device kernel's steps on the host, for threads (a power of two <= 1024) threads:
 * thread t scans t, t + threads, ...; then pairs halve until one candidate is left. */
static inline int32_t host_argmax_row(const float *x, int32_t n, int threads)
{
    am_cand part[1024];
    for (int t = 0; t < threads; t++) {
        am_cand b = {0.0f, MLC_AM_NONE};
        for (int32_t i = t; i < n; i += threads)
            b = am_pick(b, am_of(x[i], i));
        part[t] = b;
    }
    for (int w = threads / 2; w > 0; w >>= 1)
        for (int t = 0; t < w; t++)
            part[t] = am_pick(part[t], part[t + w]);
    return am_result(part[0]);
}

} // namespace MLC_GPU_NS

#endif
