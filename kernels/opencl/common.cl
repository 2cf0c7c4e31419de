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

/* Half values: with FP16 (the device has cl_khr_fp16) read as the native half type and
 * converted by the compiler, elsewhere through vload_half / vstore_half_rte (OpenCL 1.2
 * core). Both give the same floats: arithmetic stays in float either way, so the results
 * (and conformance's tolerances) do not depend on the path. */
#ifdef FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#define LD_HALF(p, i) ((float)((global const half *)(p))[i])
#else
#define LD_HALF(p, i) vload_half((i), (global const half *)(p))
#endif

float ld_f16(global const uchar *p)
{
    return LD_HALF(p, 0);
}

/* x rounded to half and back (round to nearest even), as the CPU's F16 activations. */
float round_f16(float x)
{
#ifdef FP16
    return (float)convert_half_rte(x);
#else
    ushort h;
    vstore_half_rte(x, 0, (private half *)&h);
    return vload_half(0, (private const half *)&h);
#endif
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

/* ---------------------------------------------------------------- sub-groups
 * Build options select the reductions' path: SG (the device has cl_khr_subgroups or
 * cl_intel_subgroups) sums within a sub-group with sub_group_reduce_add and combines the
 * sub-groups' sums through local memory in sub-group order: one barrier instead of log2(WG).
 * SG_EMULATE=N (a test-only switch, for devices without sub-groups such as PoCL 3.1) takes the
 * same path with sub-groups of N consecutive items summed in local memory, so that path's
 * logic is exercised by conformance where no device offers the builtins. The sg_* helpers
 * take a local array v of the group's size that the emulation sums through (with barriers:
 * every item of the group must call them); the real builtins ignore it. Groups are 1-D in
 * dimension 0. */
#if defined(SG_EMULATE)
#define SG 1
int sg_size(void) { return SG_EMULATE; }
int sg_lid(void) { return (int)get_local_id(0) % SG_EMULATE; }
int sg_id(void) { return (int)get_local_id(0) / SG_EMULATE; }
int sg_count(void) { return ((int)get_local_size(0) + SG_EMULATE - 1) / SG_EMULATE; }
#define SG_SUM_(NAME, T, OP)                                                              \
    T NAME(T x, local T *v)                                                               \
    {                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        v[get_local_id(0)] = x;                                                           \
        barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        const int b = sg_id() * SG_EMULATE, e = min(b + SG_EMULATE, (int)get_local_size(0)); \
        T t = v[b];                                                                       \
        for (int i = b + 1; i < e; i++)                                                   \
            t = OP(t, v[i]);                                                              \
        return t;                                                                         \
    }
#elif defined(SG)
#if defined(SG_INTEL)
#pragma OPENCL EXTENSION cl_intel_subgroups : enable
#else
#pragma OPENCL EXTENSION cl_khr_subgroups : enable
#endif
int sg_size(void) { return (int)get_sub_group_size(); }
int sg_lid(void) { return (int)get_sub_group_local_id(); }
int sg_id(void) { return (int)get_sub_group_id(); }
int sg_count(void) { return (int)get_num_sub_groups(); }
#define SG_SUM_(NAME, T, OP) \
    T NAME(T x, local T *v) { return OP(x); }
#endif

#ifdef SG
#define ADD_(a, b) ((a) + (b))
#ifdef SG_EMULATE
SG_SUM_(sg_sum_f, float, ADD_)
SG_SUM_(sg_max_f, float, fmax)
#ifdef cl_khr_fp64
SG_SUM_(sg_sum_a, acc_t, ADD_)
#endif
#else
SG_SUM_(sg_sum_f, float, sub_group_reduce_add)
SG_SUM_(sg_max_f, float, sub_group_reduce_max)
#ifdef cl_khr_fp64
SG_SUM_(sg_sum_a, acc_t, sub_group_reduce_add)
#endif
#endif
#ifndef cl_khr_fp64
#define sg_sum_a sg_sum_f
#endif

/* The reduction of s[0 .. local size) into s[0] over sub-groups: each sub-group's result,
 * then those in sub-group order. Every work item must call it. */
#define WG_REDUCE_(NAME, T, SGOP, OP)                                                   \
    void NAME(local T *s)                                                               \
    {                                                                                   \
        barrier(CLK_LOCAL_MEM_FENCE);                                                   \
        const T x = SGOP(s[get_local_id(0)], s);                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                   \
        if (sg_lid() == 0)                                                              \
            s[sg_id()] = x;                                                             \
        barrier(CLK_LOCAL_MEM_FENCE);                                                   \
        if (get_local_id(0) == 0)                                                       \
            for (int i = 1; i < sg_count(); i++)                                        \
                s[0] = OP(s[0], s[i]);                                                  \
        barrier(CLK_LOCAL_MEM_FENCE);                                                   \
    }
WG_REDUCE_(reduce_sum, float, sg_sum_f, ADD_)
WG_REDUCE_(reduce_acc, acc_t, sg_sum_a, ADD_)
WG_REDUCE_(reduce_max, float, sg_max_f, fmax)

#else /* no sub-groups: trees in local memory */

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
#endif
