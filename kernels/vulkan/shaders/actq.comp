#version 450
/* actq.comp: the activations a matmul's weight type multiplies, as the CPU backend forms
 * them (llama.cpp's scheme), written back as floats [n_in, rows]:
 *   mode 1: rounded to F16; 2: to BF16;
 *   3: Q8_0 (32 values per scale amax/127 stored as F16, round half to even);
 *   4: Q8_K (256 values per scale: -127/max of the value of largest magnitude, first wins).
 * Workgroup (x: 256-value chunk of a row, y: row). */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint x_off, y_off, n_in, mode;
} pc;

shared float sa[256];
shared uint si[256];
shared float sx[256];

void main()
{
    uint tid = gl_LocalInvocationID.x, row = gl_WorkGroupID.y;
    uint k = gl_WorkGroupID.x * 256u + tid;
    bool valid = k < pc.n_in;
    float x = valid ? X[pc.x_off + row * pc.n_in + k] : 0.0, y = x;
    if (pc.mode == 1u) {
        y = f16_round(x);
    } else if (pc.mode == 2u) {
        y = bf16_round(x);
    } else if (pc.mode == 3u) {
        sa[tid] = abs(x);
        barrier();
        for (uint s = 16u; s > 0u; s >>= 1) {
            if ((tid & 31u) < s)
                sa[tid] = max(sa[tid], sa[tid + s]);
            barrier();
        }
        float amax = sa[tid & ~31u];
        float id = amax != 0.0 ? 127.0 / amax : 0.0;
        y = roundEven(x * id) * f16_round(amax / 127.0);
    } else if (pc.mode == 4u) {
        sa[tid] = abs(x);
        si[tid] = tid;
        sx[tid] = x;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (tid < s && (sa[tid + s] > sa[tid] || (sa[tid + s] == sa[tid] && si[tid + s] < si[tid]))) {
                sa[tid] = sa[tid + s];
                si[tid] = si[tid + s];
            }
            barrier();
        }
        float mx = sx[si[0]];
        if (sa[0] == 0.0) {
            y = 0.0;
        } else {
            float iscale = -127.0 / mx;
            y = min(127.0, roundEven(iscale * x)) * (1.0 / iscale);
        }
    }
    if (valid)
        Y[pc.y_off + row * pc.n_in + k] = y;
}
