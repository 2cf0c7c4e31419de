/* vecdot_avx2.c: AVX2+FMA+F16C kernels (placeholder until the SIMD kernels land: sets
 * nothing, so the scalar reference runs). */
#include "vecdot.h"

void mlc_cpu_kernels_avx2(mlc_cpu_kernels *k)
{
    k->isa = "avx2";
}

void mlc_cpu_kernels_avx512(mlc_cpu_kernels *k)
{
    k->isa = "avx512";
}
