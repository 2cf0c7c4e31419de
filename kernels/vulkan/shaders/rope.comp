#version 450
/* rope.comp: rotary embedding in place on x [head_dim, n_head, n], one invocation per
 * rotated pair. The angle pos * theta_scale^i is built by repeated multiplication in float
 * (as the CPU backend and ggml do), divided by the pair's frequency factor when there are
 * factors (has_ff: FF [n_rot/2], Llama 3.1's rope_freqs), then reduced modulo 2 pi in pieces exact in float, so
 * that cos and sin see a small argument whatever the device's range reduction. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer PosBuf { int POS[]; };
layout(std430, binding = 2) readonly buffer FfBuf { float FF[]; };
layout(push_constant) uniform PC {
    uint x_off, pos_off, head_dim, n_head, n, n_rot, neox;
    float theta_scale;
    uint ff_off, has_ff;
} pc;

void main()
{
    uint half_rot = pc.n_rot / 2u, g = flat_id(64u);
    if (g >= pc.n * pc.n_head * half_rot)
        return;
    uint i = g % half_rot, h = (g / half_rot) % pc.n_head, t = g / (half_rot * pc.n_head);
    precise float theta = float(POS[pc.pos_off + t]);
    for (uint j = 0u; j < i; j++)
        theta *= pc.theta_scale;
    if (pc.has_ff != 0u)
        theta = theta / FF[pc.ff_off + i];
    precise float k = roundEven(theta * 0.15915493667125702);
    precise float r = theta - k * 6.28125;
    r = r - k * 0.00193023681640625;
    r = r - k * 5.066394805908203e-06;
    r = r - k * 3.968374073792802e-09;
    float c = cos(r), s = sin(r);
    uint base = pc.x_off + (t * pc.n_head + h) * pc.head_dim;
    uint a = pc.neox != 0u ? i : 2u * i, b = pc.neox != 0u ? i + half_rot : 2u * i + 1u;
    float x0 = X[base + a], x1 = X[base + b];
    X[base + a] = x0 * c - x1 * s;
    X[base + b] = x0 * s + x1 * c;
}
