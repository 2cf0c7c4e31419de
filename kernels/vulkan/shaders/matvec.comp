#version 450
/* matvec.comp: y [n_out, n] = x [n_in, n] W^T for few tokens (decode): one workgroup per
 * output row and group of 4 tokens, its threads striding over the row's units, then a
 * shared-memory sum. */
#include "common.glsl"
#include "dequant.glsl"

#define LS 32
layout(local_size_x = LS) in;
layout(std430, binding = 1) readonly buffer XBuf { float X[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint w_off, row_words, x_off, y_off, n_in, n_out, n;
} pc;

shared float red[4][LS];

void main()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint c0 = gl_WorkGroupID.z * 4u, tid = gl_LocalInvocationID.x;
    if (row >= pc.n_out)
        return; /* whole workgroup: uniform */
    uint rb = pc.w_off + row * pc.row_words, nc = min(4u, pc.n - c0);
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    float v[UNIT];
    for (uint u = tid; u < pc.n_in / UNIT; u += LS) {
        dq_unit(rb, u, v);
        for (uint c = 0u; c < nc; c++) {
            uint xo = pc.x_off + (c0 + c) * pc.n_in + u * UNIT;
            float s = 0.0;
            for (uint i = 0u; i < UNIT; i++)
                s += v[i] * X[xo + i];
            acc[c] += s;
        }
    }
    for (uint c = 0u; c < 4u; c++)
        red[c][tid] = acc[c];
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            for (uint c = 0u; c < 4u; c++)
                red[c][tid] += red[c][tid + s];
        barrier();
    }
    if (tid < nc)
        Y[pc.y_off + (c0 + tid) * pc.n_out + row] = red[tid][0];
}
