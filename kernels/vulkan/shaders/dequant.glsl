/* dequant.glsl: weights of one type (WT_<type> defined by the build) as floats.
 *
 * The host repacks weight rows so that every block starts on a 4-byte boundary and its
 * multi-byte fields are aligned (vulkan_backend.c: pad_front/pad_back), then rows are padded
 * to whole words; row r starts at word w_off + r * row_words. A unit is what one call
 * decodes: UNIT consecutive values of a row (32 for the quantized types, 1 for the float
 * types), unit u covering values [u * UNIT, (u + 1) * UNIT). */
layout(std430, binding = 0) readonly buffer WeightBuf { uint W[]; };

uint wbyte(uint base, uint b) { return (W[base + (b >> 2)] >> ((b & 3u) * 8u)) & 0xffu; }

#if defined(WT_f32)
#define UNIT 1
void dq_unit(uint rb, uint u, out float v[UNIT]) { v[0] = uintBitsToFloat(W[rb + u]); }

#elif defined(WT_f16)
#define UNIT 1
void dq_unit(uint rb, uint u, out float v[UNIT]) { v[0] = unpackHalf2x16(W[rb + (u >> 1)])[u & 1u]; }

#elif defined(WT_bf16)
#define UNIT 1
void dq_unit(uint rb, uint u, out float v[UNIT])
{
    uint w = W[rb + (u >> 1)];
    v[0] = uintBitsToFloat((u & 1u) != 0u ? (w & 0xffff0000u) : (w << 16));
}

#elif defined(WT_q8_0)
/* 36 bytes: pad[2] d(f16) qs[32] */
#define UNIT 32
void dq_unit(uint rb, uint u, out float v[UNIT])
{
    uint base = rb + u * 9u;
    float d = unpackHalf2x16(W[base]).y;
    for (uint i = 0u; i < 8u; i++) {
        int w = int(W[base + 1u + i]);
        for (uint k = 0u; k < 4u; k++)
            v[4u * i + k] = float(bitfieldExtract(w, int(8u * k), 8)) * d;
    }
}

#elif defined(WT_q4_0)
/* 20 bytes: pad[2] d(f16) qs[16]; value j < 16 is the low nibble of qs[j], j >= 16 the high
 * nibble of qs[j - 16], minus 8 */
#define UNIT 32
void dq_unit(uint rb, uint u, out float v[UNIT])
{
    uint base = rb + u * 5u;
    float d = unpackHalf2x16(W[base]).y;
    for (uint i = 0u; i < 4u; i++) {
        uint w = W[base + 1u + i];
        for (uint k = 0u; k < 4u; k++) {
            uint b = (w >> (8u * k)) & 0xffu;
            v[4u * i + k] = float(int(b & 15u) - 8) * d;
            v[4u * i + k + 16u] = float(int(b >> 4) - 8) * d;
        }
    }
}

#elif defined(WT_q4_k)
/* 144 bytes: d, dmin (f16) scales[12] qs[128]; eight sub-blocks of 32 (the unit) */
#define UNIT 32
void dq_unit(uint rb, uint u, out float v[UNIT])
{
    uint base = rb + (u >> 3) * 36u, j = u & 7u;
    vec2 dm = unpackHalf2x16(W[base]);
    uint sc, m;
    if (j < 4u) {
        sc = wbyte(base, 4u + j) & 63u;
        m = wbyte(base, 8u + j) & 63u;
    } else {
        sc = (wbyte(base, 8u + j) & 15u) | ((wbyte(base, j) >> 6) << 4);
        m = (wbyte(base, 8u + j) >> 4) | ((wbyte(base, 4u + j) >> 6) << 4);
    }
    float d1 = dm.x * float(sc), m1 = dm.y * float(m);
    uint q = base + 4u + (j >> 1) * 8u, sh = (j & 1u) * 4u;
    for (uint i = 0u; i < 8u; i++) {
        uint w = W[q + i];
        for (uint k = 0u; k < 4u; k++)
            v[4u * i + k] = d1 * float((w >> (8u * k + sh)) & 15u) - m1;
    }
}

#elif defined(WT_q6_k)
/* 212 bytes: ql[128] qh[64] scales[16] (i8) d(f16) pad[2]; sub-block j (the unit) is half
 * j / 4, quarter j % 4 of ggml's layout */
#define UNIT 32
void dq_unit(uint rb, uint u, out float v[UNIT])
{
    uint base = rb + (u >> 3) * 53u, j = u & 7u, nh = j >> 2, qd = j & 3u;
    float d = unpackHalf2x16(W[base + 52u]).x;
    uint ql = 64u * nh + (qd & 1u) * 32u, lsh = (qd >> 1) * 4u, qh = 128u + 32u * nh;
    for (uint l = 0u; l < 32u; l++) {
        uint lo = (wbyte(base, ql + l) >> lsh) & 15u;
        uint hi = (wbyte(base, qh + l) >> (2u * qd)) & 3u;
        int q = int(lo | (hi << 4)) - 32;
        int sc = bitfieldExtract(int(wbyte(base, 192u + 8u * nh + l / 16u + 2u * qd)), 0, 8);
        v[l] = d * float(sc) * float(q);
    }
}

#else
#error "WT_<type> not defined"
#endif
