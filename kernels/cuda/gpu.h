/* gpu.h: what every source of kernels/cuda includes first: the CUDA runtime, or HIP through
 * hip_compat.h (MLC_GPU_HIP), and the names that differ between the two builds.
 *
 * The same sources make two backends: "cuda" (nvcc) and "hip" (hipcc). Both may be linked
 * into one binary, so every C++ symbol lives in the namespace MLC_GPU_NS and the only C
 * symbol is the backend's table (mlc_backend_cuda or mlc_backend_hip). */
#ifndef MLC_GPU_H
#define MLC_GPU_H

#ifdef MLC_GPU_HIP
#include "hip_compat.h"
#define MLC_GPU_NS mlc_gpu_hip
#define MLC_GPU_NAME "hip"
#define MLC_GPU_TABLE mlc_backend_hip
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define MLC_GPU_NS mlc_gpu_cuda
#define MLC_GPU_NAME "cuda"
#define MLC_GPU_TABLE mlc_backend_cuda
#define MLC_SHFL_XOR(v, m, width) __shfl_xor_sync(0xffffffffu, (v), (m), (width))
#endif

#include <stdint.h>

extern "C" {
#include "backend.h"
}

#endif
