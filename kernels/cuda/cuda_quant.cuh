/* cuda_quant.cuh: GGUF weight formats on the device: element j of a block, dequantized to
 * float, for every weight type the backend takes (the layouts of engine/quant.c; ggml's).
 *
 * Wt<T> gives, for type T: BS (values per block), BB (bytes per block) and get(b, j), value
 * j (0 <= j < BS) of the block at b. get() recomputes a block's scales for each value: the
 * kernels read a few consecutive values of one block per call site and the compiler keeps
 * the loads it can share. Blocks are only byte-aligned (GGUF rows of 18, 34, 210... bytes),
 * so multi-byte fields are read a byte at a time. */
#ifndef MLC_CUDA_QUANT_CUH
#define MLC_CUDA_QUANT_CUH

#include "gpu.h"

namespace MLC_GPU_NS {

/* Host and device: the host side of the same functions is what tests/test_cuda.c compares
 * with the engine's dequantization (host_dequantize_row), on machines without a GPU too. */
#define MLC_HD __host__ __device__ __forceinline__

MLC_HD float bits_f32(uint32_t u)
{
    union {
        uint32_t u;
        float f;
    } v = {u};
    return v.f;
}

/* A half's bits to float (exact; written out because HIP's intrinsics are device-only). */
MLC_HD float f16_to_f32(uint32_t h)
{
    const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 31, man = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: man * 2^-24 */
        const float f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (e == 31)
        return bits_f32(sign | 0x7f800000u | man << 13);
    return bits_f32(sign | (e + 112) << 23 | man << 13);
}

MLC_HD float ld_f16(const uint8_t *p)
{
    return f16_to_f32((uint32_t)(p[0] | p[1] << 8));
}

MLC_HD uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

MLC_HD float bf16_to_f32(unsigned short h)
{
    return bits_f32((uint32_t)h << 16);
}

/* The IQ4_NL / IQ4_XS value table (ggml's kvalues_iq4nl). */
MLC_HD int iq4_value(int i)
{
    const int8_t v[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return v[i];
}

/* Level j (0..15, or 0..31 with the fifth bits h) of a 32-value block's qs[16]: byte j holds
 * value j (low nibble) and j + 16 (high nibble); bit j of h is value j's fifth bit. */
MLC_HD int level32(const uint8_t *qs, uint32_t h, int j)
{
    const int v = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
    return v | (int)(((h >> j) & 1u) << 4);
}

/* The 2-bit level (0..3) of value k (0..255) of a Q2_K / Q3_K block's qs[64]. */
MLC_HD int k2_level(const uint8_t *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* Q3_K's 6-bit scale of sub-block g (0..15) of scales[12] (the value is this minus 32). */
MLC_HD int q3k_scale(const uint8_t *sc, int g)
{
    const int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4;
    return lo | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4);
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block's scales[12]. */
MLC_HD void q4k_sm(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Value j of a Q4_K (qh NULL) or Q5_K block: 64-value group g holds values 64g + l in the low
 * nibble and 64g + 32 + l in the high nibble of qs[32g + l]; Q5_K's fifth bit of sub-block
 * s is bit s of qh[l]. */
MLC_HD float k4_value(const uint8_t *b, const uint8_t *qs, const uint8_t *qh, int j)
{
    const int sub = j / 32, l = j % 32;
    int sc, m;
    q4k_sm(sub, b + 4, &sc, &m);
    const uint8_t q = qs[(sub / 2) * 32 + l];
    const int hb = qh ? ((qh[l] >> sub) & 1) << 4 : 0;
    const int v = ((sub & 1) ? (q >> 4) : (q & 15)) | hb;
    return ld_f16(b) * (float)sc * (float)v - ld_f16(b + 2) * (float)m;
}

/* Value k (0..255) of a Q6_K block (ql[128], qh[64]), minus 32. */
MLC_HD int q6k_value(const uint8_t *b, int k)
{
    const int hf = k / 128, r = k % 128, l = r % 32, quarter = r / 32;
    const uint8_t *L = b + hf * 64, *H = b + 128 + hf * 32;
    int lo = (quarter & 1) ? L[l + 32] : L[l];
    lo = quarter < 2 ? (lo & 15) : (lo >> 4);
    return (lo | (((H[l] >> (2 * quarter)) & 3) << 4)) - 32;
}

template <uint32_t T> struct Wt;

template <> struct Wt<MLC_TYPE_F32> {
    static constexpr int BS = 1, BB = 4;
    static MLC_HD float get(const uint8_t *b, int) { return bits_f32(ld_u32(b)); }
};
template <> struct Wt<MLC_TYPE_F16> {
    static constexpr int BS = 1, BB = 2;
    static MLC_HD float get(const uint8_t *b, int) { return ld_f16(b); }
};
template <> struct Wt<MLC_TYPE_BF16> {
    static constexpr int BS = 1, BB = 2;
    static MLC_HD float get(const uint8_t *b, int)
    {
        return bf16_to_f32((unsigned short)(b[0] | b[1] << 8));
    }
};
template <> struct Wt<MLC_TYPE_Q8_0> {
    static constexpr int BS = 32, BB = 34;
    static MLC_HD float get(const uint8_t *b, int j) { return (float)(int8_t)b[2 + j] * ld_f16(b); }
};
template <> struct Wt<MLC_TYPE_Q4_0> {
    static constexpr int BS = 32, BB = 18;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return (float)(level32(b + 2, 0, j) - 8) * ld_f16(b);
    }
};
template <> struct Wt<MLC_TYPE_Q5_0> {
    static constexpr int BS = 32, BB = 22;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return (float)(level32(b + 6, ld_u32(b + 2), j) - 16) * ld_f16(b);
    }
};
template <> struct Wt<MLC_TYPE_Q4_1> {
    static constexpr int BS = 32, BB = 20;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return (float)level32(b + 4, 0, j) * ld_f16(b) + ld_f16(b + 2);
    }
};
template <> struct Wt<MLC_TYPE_Q5_1> {
    static constexpr int BS = 32, BB = 24;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return (float)level32(b + 8, ld_u32(b + 4), j) * ld_f16(b) + ld_f16(b + 2);
    }
};
template <> struct Wt<MLC_TYPE_IQ4_NL> {
    static constexpr int BS = 32, BB = 18;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return ld_f16(b) * (float)iq4_value(level32(b + 2, 0, j));
    }
};
template <> struct Wt<MLC_TYPE_IQ4_XS> {
    static constexpr int BS = 256, BB = 136;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        const int ib = j / 32, sh = b[2] | (b[3] << 8);
        const int sc = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
        return ld_f16(b) * (float)(sc - 32) * (float)iq4_value(level32(b + 8 + 16 * ib, 0, j % 32));
    }
};
template <> struct Wt<MLC_TYPE_Q2_K> {
    static constexpr int BS = 256, BB = 84;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        const int g = j / 16;
        const float dl = ld_f16(b + 80) * (float)(b[g] & 15), ml = ld_f16(b + 82) * (float)(b[g] >> 4);
        return dl * (float)k2_level(b + 16, j) - ml;
    }
};
template <> struct Wt<MLC_TYPE_Q3_K> {
    static constexpr int BS = 256, BB = 110;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        const float dl = ld_f16(b + 108) * (float)(q3k_scale(b + 96, j / 16) - 32);
        const int lv = k2_level(b + 32, j) | (((b[j % 32] >> (j / 32)) & 1) << 2);
        return dl * (float)(lv - 4);
    }
};
template <> struct Wt<MLC_TYPE_Q4_K> {
    static constexpr int BS = 256, BB = 144;
    static MLC_HD float get(const uint8_t *b, int j) { return k4_value(b, b + 16, nullptr, j); }
};
template <> struct Wt<MLC_TYPE_Q5_K> {
    static constexpr int BS = 256, BB = 176;
    static MLC_HD float get(const uint8_t *b, int j) { return k4_value(b, b + 48, b + 16, j); }
};
template <> struct Wt<MLC_TYPE_Q6_K> {
    static constexpr int BS = 256, BB = 210;
    static MLC_HD float get(const uint8_t *b, int j)
    {
        return ld_f16(b + 208) * (float)(int8_t)b[192 + j / 16] * (float)q6k_value(b, j);
    }
};

/* Value i of a row of type T. */
template <uint32_t T> MLC_HD float row_value(const uint8_t *row, int64_t i)
{
    return Wt<T>::get(row + (i / Wt<T>::BS) * Wt<T>::BB, (int)(i % Wt<T>::BS));
}

/* Calls f.template operator()<T>() with T the weight type id type; false for a type without
 * kernels. Every weight type the backend takes is listed here once. */
#define MLC_CU_WEIGHT_TYPES(X)                                                                    \
    X(MLC_TYPE_F32) X(MLC_TYPE_F16) X(MLC_TYPE_BF16) X(MLC_TYPE_Q8_0) X(MLC_TYPE_Q4_0) X(MLC_TYPE_Q5_0) \
    X(MLC_TYPE_Q4_1) X(MLC_TYPE_Q5_1) X(MLC_TYPE_IQ4_NL) X(MLC_TYPE_IQ4_XS) X(MLC_TYPE_Q2_K)        \
    X(MLC_TYPE_Q3_K) X(MLC_TYPE_Q4_K) X(MLC_TYPE_Q5_K) X(MLC_TYPE_Q6_K)

} // namespace MLC_GPU_NS

#endif
