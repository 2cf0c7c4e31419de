/* common.cl: helpers every kernel file uses (the Makefile concatenates the .cl files into one
 * program: common, quant, matmul, ops). OpenCL C 1.2, no extension required.
 *
 * Buffers are passed as (pointer, byte offset) pairs: a tensor view is a cl_mem plus an
 * offset, and OpenCL 1.2 has no sub-buffer at arbitrary alignment. Build options define
 * WG (work-group size of the reduction kernels, a power of two <= 256). */

/* Sums are written in a fixed order like the CPU backend's: no a*b+c contracted into fma. */
#pragma OPENCL FP_CONTRACT OFF

/* Sums the CPU backend takes in double (rms_norm, float-weight dots, the softmax denominator)
 * are taken in double where the device has cl_khr_fp64, in float elsewhere. */
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
/* exp, tanh, cos, sin rounded from double: a one-ulp difference here flips roundings of 8-bit
 * activations later. The CPU's glibc float functions are not all correctly rounded: measured
 * on glibc 2.36, expf differs from this in 0.07% of inputs, sinf/cosf on [0, 128] in 1.3%,
 * tanhf on [-4, 4] in 14% (geglu's, so Gemma models differ most). */
#define EXPF(x) ((float)exp((double)(x)))
#define TANHF(x) ((float)tanh((double)(x)))
#define COSF(x) ((float)cos((double)(x)))
#define SINF(x) ((float)sin((double)(x)))
#else
typedef float acc_t;
#define EXPF(x) exp(x)
#define TANHF(x) tanh(x)
#define COSF(x) cos(x)
#define SINF(x) sin(x)
#endif

#define PTR(T, buf, off) ((global T *)((global uchar *)(buf) + (off)))
#define CPTR(T, buf, off) ((global const T *)((global const uchar *)(buf) + (off)))

/* Error codes written to the flag buffer err[3] = {code, position, value}: only the first
 * failure is kept; the host reads it at sync and names the op. */
#define E_GET_ROWS 1
#define E_GATHER 2
#define E_KV_SLOT 3
#define E_KV_POS 4
#define E_ATT_SLOT 5
#define E_ATT_POS 6

void flag(global int *err, int code, int pos, int value)
{
    if (atomic_cmpxchg(err, 0, code) == 0) {
        err[1] = pos;
        err[2] = value;
    }
}

float ld_f16(global const uchar *p)
{
    return vload_half(0, (global const half *)p);
}

/* x rounded to half and back (round to nearest even), as the CPU's F16 activations. */
float round_f16(float x)
{
    ushort h;
    vstore_half_rte(x, 0, (private half *)&h);
    return vload_half(0, (private const half *)&h);
}

float bf16_to_f32(ushort h)
{
    return as_float((uint)h << 16);
}

/* Round to nearest even; a NaN stays a quiet NaN (mlc_fp32_to_bf16). */
ushort f32_to_bf16(float f)
{
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((u >> 16) | 64u);
    return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Sum of WG values of s (local) into s[0]; every work item must call it. */
void reduce_sum(local float *s)
{
    for (int w = WG / 2; w > 0; w >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if ((int)get_local_id(0) < w)
            s[get_local_id(0)] += s[get_local_id(0) + w];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

void reduce_acc(local acc_t *s)
{
    for (int w = WG / 2; w > 0; w >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if ((int)get_local_id(0) < w)
            s[get_local_id(0)] += s[get_local_id(0) + w];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

void reduce_max(local float *s)
{
    for (int w = WG / 2; w > 0; w >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if ((int)get_local_id(0) < w)
            s[get_local_id(0)] = fmax(s[get_local_id(0)], s[get_local_id(0) + w]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
