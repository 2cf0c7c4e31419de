/* common.glsl: what every shader shares. Buffers are bound whole (each is one of the
 * backend's large allocations) and views are addressed by element offsets in push constants.
 * Binding 7 is the status word: a shader that meets a bad index sets its op's bit there
 * instead of touching memory, and the host turns the bits into the sticky error at sync. */
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 7) buffer StatusBuf { uint status_bits[]; };

void flag_error(uint op) { atomicOr(status_bits[0], 1u << op); }

/* Status bits, one per op that checks indices (the host names the op from the bit). */
#define ST_GET_ROWS 0u
#define ST_KV_STORE 1u
#define ST_ATTENTION 2u
#define ST_GATHER 3u
#define ST_ROPE 4u

/* float -> half bits, round to nearest even, as mlc_fp32_to_fp16 (packHalf2x16 leaves the
 * rounding mode to the implementation). */
uint f32_to_f16(float f)
{
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint a = x & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e00u | ((a >> 13) & 0x1ffu);
    if (a >= 0x477ff000u)
        return sign | 0x7c00u;
    if (a < 0x38800000u) {
        if (a < 0x33000000u)
            return sign;
        uint e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, sh = 126u - e;
        uint r = m >> sh, rem = m & ((1u << sh) - 1u), hf = 1u << (sh - 1u);
        if (rem > hf || (rem == hf && (r & 1u) != 0u))
            r++;
        return sign | r;
    }
    uint r = a - (112u << 23);
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return sign | r;
}

float f16_round(float f) { return unpackHalf2x16(f32_to_f16(f)).x; }

float bf16_round(float f)
{
    uint u = floatBitsToUint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return uintBitsToFloat(((u >> 16) | 0x40u) << 16);
    return uintBitsToFloat(((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16);
}

/* Flat invocation index of a 1-D dispatch spread over x and y (x is capped at 65535 groups). */
uint flat_id(uint local_size)
{
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * local_size + gl_LocalInvocationID.x;
}
