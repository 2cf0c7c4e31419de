#version 450
/* matmul.comp: y [n_out, n] = x [n_in, n] W^T for many tokens (prefill): a 64-row x 32-token
 * output tile per workgroup of 16 x 16 threads (4 x 2 outputs each); the weights, dequantized
 * a unit at a time, and the activations pass through shared memory 32 values of n_in at a time. */
#include "common.glsl"
#include "dequant.glsl"

#define TM 64u
#define TN 32u
#define TK 32u
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 1) readonly buffer XBuf { float X[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
layout(push_constant) uniform PC {
    uint w_off, row_words, x_off, y_off, n_in, n_out, n;
    uint rows; /* of these weights: n_out, or one part's (y_off then points at its first) */
} pc;

shared float Ws[TM][TK + 1u];
shared float Xs[TN][TK + 1u];

void main()
{
    uint r0 = gl_WorkGroupID.x * TM, t0 = gl_WorkGroupID.y * TN;
    uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, tid = ly * 16u + lx;
    float acc[4][2];
    for (uint a = 0u; a < 4u; a++)
        acc[a][0] = acc[a][1] = 0.0;
    Unit un;
    const uint upr = TK / UNIT; /* units per tile row */
    for (uint k0 = 0u; k0 < pc.n_in; k0 += TK) {
        for (uint i = tid; i < TM * upr; i += 256u) {
            uint r = i / upr, uk = i % upr, k = k0 + uk * UNIT, row = r0 + r;
            if (row < pc.rows && k < pc.n_in) {
                unit_begin(pc.w_off + row * pc.row_words, k / UNIT, un);
#if UNIT == 1
                Ws[r][uk] = unit_val(un, 0u);
#else
                for (uint q = 0u; q < UNIT / 4u; q++) {
                    vec4 v = unit_val4(un, q);
                    Ws[r][uk * UNIT + 4u * q] = v.x;
                    Ws[r][uk * UNIT + 4u * q + 1u] = v.y;
                    Ws[r][uk * UNIT + 4u * q + 2u] = v.z;
                    Ws[r][uk * UNIT + 4u * q + 3u] = v.w;
                }
#endif
            } else {
                for (uint e = 0u; e < UNIT; e++)
                    Ws[r][uk * UNIT + e] = 0.0;
            }
        }
        for (uint i = tid; i < TN * TK; i += 256u) {
            uint t = i / TK, kk = i % TK;
            Xs[t][kk] = t0 + t < pc.n && k0 + kk < pc.n_in ? X[pc.x_off + (t0 + t) * pc.n_in + k0 + kk] : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float x0 = Xs[lx][kk], x1 = Xs[lx + 16u][kk];
            for (uint a = 0u; a < 4u; a++) {
                float w = Ws[ly + 16u * a][kk];
                acc[a][0] += w * x0;
                acc[a][1] += w * x1;
            }
        }
        barrier();
    }
    for (uint a = 0u; a < 4u; a++)
        for (uint b = 0u; b < 2u; b++) {
            uint row = r0 + ly + 16u * a, t = t0 + lx + 16u * b;
            if (row < pc.rows && t < pc.n)
                Y[pc.y_off + t * pc.n_out + row] = acc[a][b];
        }
}
