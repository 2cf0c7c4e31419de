#version 450
/* kv_store.comp: k, v [kv_dim, n] into the cache layers at (slot[t], pos[t]); one invocation
 * per value. F16 caches are written as halves of 32-bit words with atomics, so neighbouring
 * values of other rows (an odd kv_dim) are never disturbed. Offsets are in elements of the
 * cache type. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer KBuf { float K[]; };
layout(std430, binding = 1) readonly buffer VBuf { float V[]; };
layout(std430, binding = 2) buffer KCBuf { uint KC[]; };
layout(std430, binding = 3) buffer VCBuf { uint VC[]; };
layout(std430, binding = 4) readonly buffer SlotBuf { int SLOT[]; };
layout(std430, binding = 5) readonly buffer PosBuf { int POS[]; };
layout(push_constant) uniform PC {
    uint k_off, v_off, kc_off, vc_off, slot_off, pos_off, kv_dim, n_ctx, n_slots, n, f16;
} pc;

void put(bool is_k, uint e, float x)
{
    if (pc.f16 == 0u) {
        if (is_k)
            KC[e] = floatBitsToUint(x);
        else
            VC[e] = floatBitsToUint(x);
        return;
    }
    uint sh = (e & 1u) * 16u, h = f32_to_f16(x) << sh, keep = ~(0xffffu << sh);
    if (is_k) {
        atomicAnd(KC[e >> 1], keep);
        atomicOr(KC[e >> 1], h);
    } else {
        atomicAnd(VC[e >> 1], keep);
        atomicOr(VC[e >> 1], h);
    }
}

void main()
{
    uint g = flat_id(64u);
    if (g >= pc.n * pc.kv_dim)
        return;
    uint t = g / pc.kv_dim, d = g % pc.kv_dim;
    int sl = SLOT[pc.slot_off + t], p = POS[pc.pos_off + t];
    if (sl < 0 || uint(sl) >= pc.n_slots || p < 0 || uint(p) >= pc.n_ctx) {
        flag_error(ST_KV_STORE);
        return;
    }
    uint idx = (uint(sl) * pc.n_ctx + uint(p)) * pc.kv_dim + d;
    put(true, pc.kc_off + idx, K[pc.k_off + t * pc.kv_dim + d]);
    put(false, pc.vc_off + idx, V[pc.v_off + t * pc.kv_dim + d]);
}
