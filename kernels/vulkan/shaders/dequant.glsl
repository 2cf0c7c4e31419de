/* dequant.glsl: weights of one type (WT_<type> defined by the build) as floats.
 *
 * The host repacks weight rows so that every block starts on a 4-byte boundary and its
 * multi-byte fields are aligned (vulkan_backend.c: pad_front/pad_back), then rows are padded
 * to whole words; row r starts at word w_off + r * row_words. A unit is what one call
 * decodes: UNIT consecutive values of a row (32 for the quantized types, 1 for the float
 * types), unit u covering values [u * UNIT, (u + 1) * UNIT): unit_begin reads what the
 * unit's values share (scales, where its quants start), unit_val(s, j) gives value j.
 * (No private arrays: a compiler that cannot unroll a loop over one turns every access into
 * a ladder of selects; lavapipe ran 400x slower that way.) */
struct Unit {
    uint base;      /* first word of what the values read */
    uint sh;        /* a shift or sub-block number, per type */
    float d, m;     /* scale and min, per type */
    float d2;       /* Q6_K: the scale of values 16..31 */
};
layout(std430, binding = 0) readonly buffer WeightBuf { uint W[]; };

uint wbyte(uint base, uint b) { return (W[base + (b >> 2)] >> ((b & 3u) * 8u)) & 0xffu; }

#if defined(WT_f32)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + u, 0u, 0.0, 0.0, 0.0); }
float unit_val(Unit s, uint j) { return uintBitsToFloat(W[s.base]); }

#elif defined(WT_f16)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + (u >> 1), u & 1u, 0.0, 0.0, 0.0); }
float unit_val(Unit s, uint j) { return unpackHalf2x16(W[s.base])[s.sh]; }

#elif defined(WT_bf16)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + (u >> 1), u & 1u, 0.0, 0.0, 0.0); }
float unit_val(Unit s, uint j)
{
    uint w = W[s.base];
    return uintBitsToFloat(s.sh != 0u ? (w & 0xffff0000u) : (w << 16));
}

#elif defined(WT_q8_0)
/* 36 bytes: pad[2] d(f16) qs[32] */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 9u;
    s = Unit(base + 1u, 0u, unpackHalf2x16(W[base]).y, 0.0, 0.0);
}
float unit_val(Unit s, uint j) { return float(bitfieldExtract(int(W[s.base + (j >> 2)]), int(8u * (j & 3u)), 8)) * s.d; }
vec4 unit_val4(Unit s, uint q)
{
    int w = int(W[s.base + q]);
    return vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8), bitfieldExtract(w, 24, 8)) * s.d;
}

#elif defined(WT_q4_0)
/* 20 bytes: pad[2] d(f16) qs[16]; value j < 16 is the low nibble of qs[j], j >= 16 the high
 * nibble of qs[j - 16], minus 8 */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 5u;
    s = Unit(base + 1u, 0u, unpackHalf2x16(W[base]).y, 0.0, 0.0);
}
float unit_val(Unit s, uint j)
{
    uint b = W[s.base + ((j & 15u) >> 2)] >> (8u * (j & 3u) + (j >> 4) * 4u);
    return float(int(b & 15u) - 8) * s.d;
}
vec4 unit_val4(Unit s, uint q)
{
    uint w = W[s.base + (q & 3u)] >> ((q >> 2) * 4u);
    return (vec4(w & 15u, (w >> 8) & 15u, (w >> 16) & 15u, (w >> 24) & 15u) - 8.0) * s.d;
}

#elif defined(WT_q4_k)
/* 144 bytes: d, dmin (f16) scales[12] qs[128]; eight sub-blocks of 32 (the unit), value
 * d * sc * q - dmin * m */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
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
    s = Unit(base + 4u + (j >> 1) * 8u, (j & 1u) * 4u, dm.x * float(sc), dm.y * float(m), 0.0);
}
float unit_val(Unit s, uint j) { return s.d * float((W[s.base + (j >> 2)] >> (8u * (j & 3u) + s.sh)) & 15u) - s.m; }
vec4 unit_val4(Unit s, uint q)
{
    uint w = W[s.base + q] >> s.sh;
    return s.d * vec4(w & 15u, (w >> 8) & 15u, (w >> 16) & 15u, (w >> 24) & 15u) - s.m;
}

#elif defined(WT_q6_k)
/* 212 bytes: ql[128] qh[64] scales[16] (i8) d(f16) pad[2]; sub-block j (the unit) is half
 * j / 4, quarter j % 4 of ggml's layout; values 0..15 and 16..31 have their own scales */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + (u >> 3) * 53u, j = u & 7u, nh = j >> 2, qd = j & 3u;
    float d = unpackHalf2x16(W[base + 52u]).x;
    uint sb = 192u + 8u * nh + 2u * qd;
    float s0 = float(bitfieldExtract(int(wbyte(base, sb)), 0, 8));
    float s1 = float(bitfieldExtract(int(wbyte(base, sb + 1u)), 0, 8));
    s = Unit(base, j, d * s0, 0.0, d * s1);
}
float unit_val(Unit s, uint l)
{
    uint nh = s.sh >> 2, qd = s.sh & 3u;
    uint lo = (wbyte(s.base, 64u * nh + (qd & 1u) * 32u + l) >> ((qd >> 1) * 4u)) & 15u;
    uint hi = (wbyte(s.base, 128u + 32u * nh + l) >> (2u * qd)) & 3u;
    return (l < 16u ? s.d : s.d2) * float(int(lo | (hi << 4)) - 32);
}
vec4 unit_val4(Unit s, uint q)
{
    uint nh = s.sh >> 2, qd = s.sh & 3u;
    uint lo = W[s.base + 16u * nh + (qd & 1u) * 8u + q] >> ((qd >> 1) * 4u);
    uint hi = W[s.base + 32u + 8u * nh + q] >> (2u * qd);
    uvec4 v = uvec4(lo & 15u, (lo >> 8) & 15u, (lo >> 16) & 15u, (lo >> 24) & 15u) |
              (uvec4(hi & 3u, (hi >> 8) & 3u, (hi >> 16) & 3u, (hi >> 24) & 3u) << 4);
    return (q < 4u ? s.d : s.d2) * (vec4(v) - 32.0);
}

#else
#error "WT_<type> not defined"
#endif
