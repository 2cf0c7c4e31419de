#version 450
/* matvec.comp: y [n_out, n] = x [n_in, n] W^T, one invocation per output row and group of NC
 * tokens (built with NC = 1 for decode and NC = 8 as matvec8): each weight value is
 * dequantized once and multiplied into the NC tokens' sums. No shared memory and no
 * barriers: what decode wants on any device, and prefill too on a CPU device (lavapipe),
 * where neighbouring invocations are SIMD lanes and shared memory buys nothing. The sums are
 * plain variables, not an array (an array indexed in a loop the compiler does not unroll
 * becomes a ladder of selects). */
#include "common.glsl"
#include "dequant.glsl"

#ifndef NC
#define NC 1
#endif
#ifdef SUBGROUP
/* matvecsg (built with SUBGROUP, NC = 1), where the device has subgroup arithmetic: one
 * workgroup of 32 invocations per output row, each summing every 32nd unit of the row, the
 * partial sums added by subgroupAdd (and, where a subgroup is smaller than the workgroup,
 * the subgroups' sums through shared memory): rows as long as a GPU wants them. */
#extension GL_KHR_shader_subgroup_arithmetic : require
#define LANES 32u
layout(local_size_x = 32) in;
shared float sg_sum[32];
#else
#define LANES 1u
layout(local_size_x = 64) in;
#endif
layout(std430, binding = 1) readonly buffer XBuf { float X[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint w_off, row_words, x_off, y_off, n_in, n_out, n;
    uint rows; /* of these weights: n_out, or one part's (y_off then points at its first) */
} pc;

/* x value at xo of token c of this group; past the last token, the last token's (computed,
 * never stored: no branch in the inner loop) */
float xv(uint xo, uint c, uint nc)
{
    return X[xo + min(c, nc - 1u) * pc.n_in];
}

vec4 xv4(uint xo, uint c, uint nc)
{
    uint b = xo + min(c, nc - 1u) * pc.n_in;
    return vec4(X[b], X[b + 1u], X[b + 2u], X[b + 3u]);
}

#ifdef SUBGROUP
/* Adds the workgroup's partial sums; invocation 0 gets the total. */
float row_total(float acc)
{
    float s = subgroupAdd(acc);
    if (gl_NumSubgroups == 1u)
        return s;
    if (subgroupElect())
        sg_sum[gl_SubgroupID] = s;
    barrier();
    float t = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
        t += sg_sum[i];
    return t;
}
#endif

void main()
{
#ifdef SUBGROUP
    /* the row is the workgroup's: uniform, so returning before the barrier is allowed */
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, c0 = 0u;
    uint lane = gl_LocalInvocationID.x;
#else
    uint row = flat_id(64u), c0 = gl_WorkGroupID.z * uint(NC);
    uint lane = 0u;
#endif
    if (row >= pc.rows)
        return;
    uint rb = pc.w_off + row * pc.row_words, nc = min(uint(NC), pc.n - c0);
    Unit un;
#if NC == 1
    float acc = 0.0;
#else
    vec4 a0 = vec4(0.0), a1 = vec4(0.0);
#endif
    for (uint u = lane; u < pc.n_in / UNIT; u += LANES) {
        unit_begin(rb, u, un);
        uint xo = pc.x_off + c0 * pc.n_in + u * UNIT;
#if UNIT == 32 && NC == 1
        for (uint q = 0u; q < 8u; q++) {
            vec4 w4 = unit_val4(un, q);
            uint xq = xo + 4u * q;
            acc += dot(w4, vec4(X[xq], X[xq + 1u], X[xq + 2u], X[xq + 3u]));
        }
#elif UNIT == 32
        for (uint q = 0u; q < 8u; q++) {
            vec4 w4 = unit_val4(un, q);
            uint xq = xo + 4u * q;
            a0 += vec4(dot(w4, xv4(xq, 0u, nc)), dot(w4, xv4(xq, 1u, nc)), dot(w4, xv4(xq, 2u, nc)), dot(w4, xv4(xq, 3u, nc)));
            a1 += vec4(dot(w4, xv4(xq, 4u, nc)), dot(w4, xv4(xq, 5u, nc)), dot(w4, xv4(xq, 6u, nc)), dot(w4, xv4(xq, 7u, nc)));
        }
#else
        for (uint i = 0u; i < UNIT; i++) {
            float w = unit_val(un, i);
#if NC == 1
            acc += w * X[xo + i];
#else
            a0 += w * vec4(xv(xo + i, 0u, nc), xv(xo + i, 1u, nc), xv(xo + i, 2u, nc), xv(xo + i, 3u, nc));
            a1 += w * vec4(xv(xo + i, 4u, nc), xv(xo + i, 5u, nc), xv(xo + i, 6u, nc), xv(xo + i, 7u, nc));
#endif
        }
#endif
    }
    uint yo = pc.y_off + c0 * pc.n_out + row;
#if defined(SUBGROUP)
    float total = row_total(acc);
    if (lane == 0u)
        Y[yo] = total;
#elif NC == 1
    Y[yo] = acc;
#else
    for (uint c = 0u; c < nc; c++)
        Y[yo + c * pc.n_out] = c < 4u ? a0[c] : a1[c - 4u];
#endif
}
