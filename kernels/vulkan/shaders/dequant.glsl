/* dequant.glsl: weights of one type (WT_<type> defined by the build) as floats.
 *
 * The host repacks weight rows so that every block starts on a 4-byte boundary and its
 * multi-byte fields are aligned (vulkan_backend.c: pad_front/pad_back), then rows are padded
 * to whole words; row r starts at word w_off + r * row_words. A unit is what one call
 * decodes: UNIT consecutive values of a row (32 for the quantized types, 1 for the float
 * types), unit u covering values [u * UNIT, (u + 1) * UNIT): unit_begin reads what the
 * unit's values share (scales, where its quants start); the float types give value j as
 * unit_val(s, j), the block types values 4q .. 4q + 3 as unit_val4(s, q), q in 0..7.
 * (No private arrays: a compiler that cannot unroll a loop over one turns every access into
 * a ladder of selects; lavapipe ran 400x slower that way.) */
struct Unit {
    uint base;      /* first word of what the values read */
    uint sh;        /* a shift, sub-block number or the fifth bits, per type */
    float d, m;     /* scale and min, per type */
    float d2, m2;   /* types with 16-value sub-blocks: the scale and min of values 16..31 */
};
layout(std430, binding = 0) readonly buffer WeightBuf { uint W[]; };

uint wbyte(uint base, uint b) { return (W[base + (b >> 2)] >> ((b & 3u) * 8u)) & 0xffu; }

/* The four bytes of w, each masked to its low bits */
uvec4 bytes4(uint w, uint mask) { return uvec4(w, w >> 8, w >> 16, w >> 24) & mask; }

/* Bits 0..3 of h, each moved to bit pos */
uvec4 bits4(uint h, uint pos) { return (uvec4(h, h >> 1, h >> 2, h >> 3) & 1u) << pos; }

/* The 4-bit level -> value table of IQ4_NL and IQ4_XS, 16 signed bytes in four words:
 * -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113 (selects, not an array: see above) */
float iq4_val(uint n)
{
    uint w = (n & 8u) != 0u ? ((n & 4u) != 0u ? 0x71594535u : 0x26190d01u)
                            : ((n & 4u) != 0u ? 0xf6eaddcfu : 0xbfad9881u);
    return float(bitfieldExtract(int(w), int(8u * (n & 3u)), 8));
}

vec4 iq4_val4(uvec4 n) { return vec4(iq4_val(n.x), iq4_val(n.y), iq4_val(n.z), iq4_val(n.w)); }

/* The nibbles of values 4q .. 4q + 3 of a 32-value block whose 16 bytes of quants start at
 * word base: byte j holds value j (low nibble) and j + 16 (high) */
uvec4 nib4(uint base, uint q) { return bytes4(W[base + (q & 3u)] >> ((q >> 2) * 4u), 15u); }

#if defined(WT_f32)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + u, 0u, 0.0, 0.0, 0.0, 0.0); }
float unit_val(Unit s, uint j) { return uintBitsToFloat(W[s.base]); }

#elif defined(WT_f16)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + (u >> 1), u & 1u, 0.0, 0.0, 0.0, 0.0); }
float unit_val(Unit s, uint j) { return unpackHalf2x16(W[s.base])[s.sh]; }

#elif defined(WT_bf16)
#define UNIT 1
void unit_begin(uint rb, uint u, out Unit s) { s = Unit(rb + (u >> 1), u & 1u, 0.0, 0.0, 0.0, 0.0); }
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
    s = Unit(base + 1u, 0u, unpackHalf2x16(W[base]).y, 0.0, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q)
{
    int w = int(W[s.base + q]);
    return vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8), bitfieldExtract(w, 24, 8)) * s.d;
}

#elif defined(WT_q4_0)
/* 20 bytes: pad[2] d(f16) qs[16]; nibbles as nib4, minus 8 */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 5u;
    s = Unit(base + 1u, 0u, unpackHalf2x16(W[base]).y, 0.0, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return (vec4(nib4(s.base, q)) - 8.0) * s.d; }

#elif defined(WT_q4_1)
/* 20 bytes: d, m (f16) qs[16]; nibbles as nib4, value d * q + m */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 5u;
    vec2 dm = unpackHalf2x16(W[base]);
    s = Unit(base + 1u, 0u, dm.x, dm.y, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return s.d * vec4(nib4(s.base, q)) + s.m; }

#elif defined(WT_q5_0)
/* 24 bytes: pad[2] d(f16) qh(u32) qs[16]; the low 4 bits as nib4, the fifth of value j is
 * bit j of qh (kept in sh); minus 16 */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 6u;
    s = Unit(base + 2u, W[base + 1u], unpackHalf2x16(W[base]).y, 0.0, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return (vec4(nib4(s.base, q) | bits4(s.sh >> (4u * q), 4u)) - 16.0) * s.d; }

#elif defined(WT_q5_1)
/* 24 bytes: d, m (f16) qh(u32) qs[16]; bits as Q5_0, value d * q + m */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 6u;
    vec2 dm = unpackHalf2x16(W[base]);
    s = Unit(base + 2u, W[base + 1u], dm.x, dm.y, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return s.d * vec4(nib4(s.base, q) | bits4(s.sh >> (4u * q), 4u)) + s.m; }

#elif defined(WT_iq4_nl)
/* 20 bytes: pad[2] d(f16) qs[16]; nibbles as nib4, value d * iq4_val(nibble) */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + u * 5u;
    s = Unit(base + 1u, 0u, unpackHalf2x16(W[base]).y, 0.0, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return iq4_val4(nib4(s.base, q)) * s.d; }

#elif defined(WT_q4_k) || defined(WT_q5_k)
/* Q4_K, 144 bytes: d, dmin (f16) scales[12] qs[128]; Q5_K, 176 bytes: d, dmin (f16)
 * scales[12] qh[32] qs[128]. Eight sub-blocks of 32 (the unit), value d * sc * q - dmin * m;
 * sub-block j's quants are the low (j even) or high nibbles of qs[32 (j / 2) ..], Q5_K's
 * fifth bit of value l is bit j of qh[l]. */
#define UNIT 32
#if defined(WT_q4_k)
#define KWORDS 36u
#define KQS 4u
#else
#define KWORDS 44u
#define KQS 12u
#endif
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + (u >> 3) * KWORDS, j = u & 7u;
    vec2 dm = unpackHalf2x16(W[base]);
    uint sc, m;
    if (j < 4u) {
        sc = wbyte(base, 4u + j) & 63u;
        m = wbyte(base, 8u + j) & 63u;
    } else {
        sc = (wbyte(base, 8u + j) & 15u) | ((wbyte(base, j) >> 6) << 4);
        m = (wbyte(base, 8u + j) >> 4) | ((wbyte(base, 4u + j) >> 6) << 4);
    }
    s = Unit(base, j, dm.x * float(sc), dm.y * float(m), 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q)
{
    uvec4 v = bytes4(W[s.base + KQS + (s.sh >> 1) * 8u + q] >> ((s.sh & 1u) * 4u), 15u);
#if defined(WT_q5_k)
    v |= bytes4(W[s.base + 4u + q] >> s.sh, 1u) << 4;
#endif
    return s.d * vec4(v) - s.m;
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
    s = Unit(base, j, d * s0, 0.0, d * s1, 0.0);
}
vec4 unit_val4(Unit s, uint q)
{
    uint nh = s.sh >> 2, qd = s.sh & 3u;
    uint lo = W[s.base + 16u * nh + (qd & 1u) * 8u + q] >> ((qd >> 1) * 4u);
    uint hi = W[s.base + 32u + 8u * nh + q] >> (2u * qd);
    uvec4 v = bytes4(lo, 15u) | (bytes4(hi, 3u) << 4);
    return (q < 4u ? s.d : s.d2) * (vec4(v) - 32.0);
}

#elif defined(WT_q2_k)
/* 84 bytes: scales[16] (4-bit scale | 4-bit min << 4) qs[64] d, dmin (f16). Value k of the
 * block is the 2-bit field (k % 128) / 32 of qs[32 (k / 128) + k % 32]; sub-block k / 16 is
 * d * sc * q - dmin * m, so a unit (32 values) has two scales and two mins. */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + (u >> 3) * 21u, j = u & 7u;
    vec2 dm = unpackHalf2x16(W[base + 20u]);
    uint s0 = wbyte(base, 2u * j), s1 = wbyte(base, 2u * j + 1u);
    s = Unit(base + 4u + 8u * (j >> 2), 2u * (j & 3u), dm.x * float(s0 & 15u), dm.y * float(s0 >> 4),
             dm.x * float(s1 & 15u), dm.y * float(s1 >> 4));
}
vec4 unit_val4(Unit s, uint q)
{
    vec4 v = vec4(bytes4(W[s.base + q] >> s.sh, 3u));
    return q < 4u ? s.d * v - s.m : s.d2 * v - s.m2;
}

#elif defined(WT_q3_k)
/* 112 bytes: hmask[32] qs[64] scales[12] (16 x 6-bit) d(f16) pad[2]. Value k: low 2 bits as
 * Q2_K's, third bit k / 32 of hmask[k % 32]; sub-block k / 16 is d * (sc - 32) * (q - 4). */
#define UNIT 32
/* 6-bit scale g (0..15): low 4 bits in scales[g % 8] (g / 8 picks the nibble), high 2 bits
 * in scales[8 + g % 4] (bits 2 (g / 4)) */
float q3k_scale(uint base, uint g)
{
    uint lo = (wbyte(base, 96u + (g & 7u)) >> ((g >> 3) * 4u)) & 15u;
    uint hi = (wbyte(base, 104u + (g & 3u)) >> (2u * (g >> 2))) & 3u;
    return float(int(lo | (hi << 4)) - 32);
}
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + (u >> 3) * 28u, j = u & 7u;
    float d = unpackHalf2x16(W[base + 27u]).x;
    s = Unit(base, j, d * q3k_scale(base, 2u * j), 0.0, d * q3k_scale(base, 2u * j + 1u), 0.0);
}
vec4 unit_val4(Unit s, uint q)
{
    uvec4 lo = bytes4(W[s.base + 8u + 8u * (s.sh >> 2) + q] >> (2u * (s.sh & 3u)), 3u);
    uvec4 hi = bytes4(W[s.base + q] >> s.sh, 1u) << 2;
    return (q < 4u ? s.d : s.d2) * (vec4(lo | hi) - 4.0);
}

#elif defined(WT_iq4_xs)
/* 136 bytes: d(f16) scales_h(u16) scales_l[4] qs[128]; sub-block ib (the unit) has the 6-bit
 * scale ls (low 4 bits: nibble ib % 2 of scales_l[ib / 2], high 2: bits 2 ib of scales_h),
 * value d * (ls - 32) * iq4_val(nibble), its quants 16 bytes at qs[16 ib] as nib4 */
#define UNIT 32
void unit_begin(uint rb, uint u, out Unit s)
{
    uint base = rb + (u >> 3) * 34u, ib = u & 7u, w0 = W[base];
    uint ls = ((wbyte(base, 4u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u) | (((w0 >> (16u + 2u * ib)) & 3u) << 4);
    s = Unit(base + 2u + 4u * ib, 0u, unpackHalf2x16(w0).x * float(int(ls) - 32), 0.0, 0.0, 0.0);
}
vec4 unit_val4(Unit s, uint q) { return iq4_val4(nib4(s.base, q)) * s.d; }

#else
#error "WT_<type> not defined"
#endif
