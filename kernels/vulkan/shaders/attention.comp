#version 450
/* attention.comp: out [head_dim, n_head, n] = softmax(q K^T * scale) V over the cache
 * layers, one workgroup per (query head, token). Two passes over the positions, 128 at a
 * time (one per thread): the first finds the softmax's max and sum (each thread keeping its
 * own running pair), the second forms the probabilities and accumulates P V (each thread
 * owning head dims tid and tid + 128). With an F16 cache, q and the probabilities are rounded
 * to half before their products, as the CPU backend (and ggml's F16 matmuls) do. */
#include "common.glsl"

#define LS 128u
#define MAX_HD 256u
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer QBuf { float Q[]; };
layout(std430, binding = 1) readonly buffer KCBuf { uint KC[]; };
layout(std430, binding = 2) readonly buffer VCBuf { uint VC[]; };
layout(std430, binding = 3) readonly buffer SlotBuf { int SLOT[]; };
layout(std430, binding = 4) readonly buffer PosBuf { int POS[]; };
layout(std430, binding = 5) buffer OBuf { float O[]; };
layout(push_constant) uniform PC {
    uint q_off, kc_off, vc_off, slot_off, pos_off, o_off;
    uint head_dim, n_head, n_kv_head, n_ctx, n_slots, kv_dim, f16;
    float scale, softcap;
    int window;
} pc;

shared float qs[MAX_HD];
shared float pm[LS], pl[LS];
shared float wsh[LS];

float kv_at(bool is_k, uint e)
{
    if (pc.f16 != 0u) {
        uint w = is_k ? KC[e >> 1] : VC[e >> 1];
        return unpackHalf2x16(w)[e & 1u];
    }
    return uintBitsToFloat(is_k ? KC[e] : VC[e]);
}

float score(uint krow)
{
    float acc = 0.0;
    for (uint d = 0u; d < pc.head_dim; d++)
        acc += qs[d] * kv_at(true, krow + d);
    float s = acc * pc.scale;
    return pc.softcap > 0.0 ? pc.softcap * tanh(s / pc.softcap) : s;
}

void main()
{
    uint tid = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    int sl = SLOT[pc.slot_off + t], p = POS[pc.pos_off + t];
    if (sl < 0 || uint(sl) >= pc.n_slots || p < 0 || uint(p) >= pc.n_ctx) {
        if (tid == 0u)
            flag_error(ST_ATTENTION);
        return; /* whole workgroup: uniform */
    }
    uint hd = pc.head_dim, kvh = h / (pc.n_head / pc.n_kv_head);
    uint qo = pc.q_off + (t * pc.n_head + h) * hd;
    for (uint d = tid; d < hd; d += LS)
        qs[d] = pc.f16 != 0u ? f16_round(Q[qo + d]) : Q[qo + d];
    barrier();
    int np = p + 1, lo = pc.window > 0 && np > pc.window ? np - pc.window : 0;
    uint base = uint(sl) * pc.n_ctx, koff = kvh * hd;

    float m = -1.0 / 0.0, l = 0.0;
    for (int q = lo + int(tid); q < np; q += int(LS)) {
        float s = score(pc.kc_off + (base + uint(q)) * pc.kv_dim + koff);
        float mn = max(m, s);
        l = l * exp(m - mn) + exp(s - mn);
        m = mn;
    }
    pm[tid] = m;
    pl[tid] = l;
    barrier();
    float mx = -1.0 / 0.0;
    for (uint i = 0u; i < LS; i++)
        mx = max(mx, pm[i]);
    float sum = 0.0;
    for (uint i = 0u; i < LS; i++)
        if (pl[i] > 0.0)
            sum += pl[i] * exp(pm[i] - mx);
    float inv = 1.0 / sum;

    float o0 = 0.0, o1 = 0.0;
    for (int c0 = lo; c0 < np; c0 += int(LS)) {
        int q = c0 + int(tid);
        float w = 0.0;
        if (q < np) {
            w = exp(score(pc.kc_off + (base + uint(q)) * pc.kv_dim + koff) - mx) * inv;
            w = pc.f16 != 0u ? f16_round(w) : w;
        }
        barrier(); /* the previous chunk's weights are read */
        wsh[tid] = w;
        barrier();
        uint cn = uint(min(int(LS), np - c0));
        for (uint i = 0u; i < cn; i++) {
            uint vrow = pc.vc_off + (base + uint(c0) + i) * pc.kv_dim + koff;
            if (tid < hd)
                o0 += wsh[i] * kv_at(false, vrow + tid);
            if (tid + LS < hd)
                o1 += wsh[i] * kv_at(false, vrow + tid + LS);
        }
    }
    uint oo = pc.o_off + (t * pc.n_head + h) * hd;
    if (tid < hd)
        O[oo + tid] = o0;
    if (tid + LS < hd)
        O[oo + tid + LS] = o1;
}
