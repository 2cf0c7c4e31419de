#version 450
/* ew.comp: elementwise ops, one invocation per output element:
 *   mode 0: out = a + b;  1: out = a * b  (b of nb elements, repeated when nb < n);
 *   2: out = a * s;  3: out = silu(a) * b;  4: out = gelu_tanh(a) * b.
 * gelu_tanh(x) = x/2 (1 + tanh(z)) is computed as x / (1 + exp(-2z)), the same function
 * without the cancellation of 1 + tanh(z) for strongly negative z. out may alias a. */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer ABuf { float A[]; };
layout(std430, binding = 1) buffer BBuf { float B[]; };
layout(std430, binding = 2) buffer OBuf { float O[]; };
layout(push_constant) uniform PC {
    uint a_off, b_off, o_off, n, nb, mode;
    float s;
} pc;

void main()
{
    uint i = flat_id(256u);
    if (i >= pc.n)
        return;
    float a = A[pc.a_off + i], r;
    if (pc.mode == 2u) {
        r = a * pc.s;
    } else {
        float b = B[pc.b_off + (pc.nb == pc.n ? i : i % pc.nb)];
        if (pc.mode == 0u)
            r = a + b;
        else if (pc.mode == 1u)
            r = a * b;
        else if (pc.mode == 3u)
            r = a / (1.0 + exp(-a)) * b;
        else {
            float z = 0.7978845608028654 * (a + 0.044715 * a * a * a);
            r = a / (1.0 + exp(-2.0 * z)) * b;
        }
    }
    O[pc.o_off + i] = r;
}
