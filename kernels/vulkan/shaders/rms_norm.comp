#version 450
/* rms_norm.comp: y = x / rms(x) * w over each row of dim values; one workgroup per row.
 * y may alias x: each thread rereads and writes only its own elements after the sum. */
#include "common.glsl"

layout(local_size_x = 128) in;
layout(std430, binding = 0) buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBuf { float Wn[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint x_off, w_off, y_off, dim, rows;
    float eps;
} pc;

shared float red[128];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= pc.rows)
        return; /* whole workgroup: uniform */
    uint xo = pc.x_off + row * pc.dim, yo = pc.y_off + row * pc.dim;
    float s = 0.0;
    for (uint i = tid; i < pc.dim; i += 128u)
        s += X[xo + i] * X[xo + i];
    red[tid] = s;
    barrier();
    for (uint k = 64u; k > 0u; k >>= 1) {
        if (tid < k)
            red[tid] += red[tid + k];
        barrier();
    }
    float scale = 1.0 / sqrt(red[0] / float(pc.dim) + pc.eps);
    for (uint i = tid; i < pc.dim; i += 128u)
        Y[yo + i] = (X[xo + i] * scale) * Wn[pc.w_off + i];
}
