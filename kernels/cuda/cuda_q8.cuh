/* cuda_q8.cuh: the int8 decode matvec's arithmetic, on the host and the device: the
 * activation quantizers (the CPU's Q8_0 and Q8_K, kernels/cpu/vecdot.c, value for value) and,
 * per weight type, what one lane of a warp adds to a block's integer sums and the block's
 * float term from them (the CPU scalar dot's formula, term for term).
 *
 * Activations are kept on the device in a layout of their own, aligned for 4-byte loads: per
 * token row of n values, qs int8 [n], then d float [n / 32] (Q8_0: the half scale as float)
 * or [n / 256] (Q8_K), then, for Q8_K, s32 int [n / 32] (sums of 32 consecutive qs: the
 * CPU's bsums taken two at a time, which is all the K types read of them).
 *
 * A block of a weight row is split among LPB lanes; each lane's integer partials are summed
 * across those lanes (exactly: integers) before the one float expression per block, so the
 * block terms are the CPU's bit for bit and only the order of summing blocks differs. */
#ifndef MLC_CUDA_Q8_CUH
#define MLC_CUDA_Q8_CUH

#include "cuda_quant.cuh"

namespace MLC_GPU_NS {

#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define MLC_Q8_DEVICE 1
#endif

MLC_HD uint32_t f32_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    return v.u;
}

/* The CPU's nearest_int: round to nearest even through the float mantissa (|v| < 2^22). */
MLC_HD int nearest_int(float v)
{
    const float f = v + 12582912.f;
    return (int)(f32_bits(f) & 0x007fffffu) - 0x00400000;
}

/* f to a half, rounded to nearest even (finite f; overflow gives infinity), as the engine's
 * mlc_fp32_to_fp16; returned as the half's value in float. */
MLC_HD float round_to_f16(float f)
{
    const uint32_t w = f32_bits(f), sign = (w >> 16) & 0x8000u, a = w & 0x7fffffffu;
    uint32_t h;
    if (a >= 0x477ff000u) { /* 65520 and up round to infinity */
        h = 0x7c00u;
    } else if (a < 0x38800000u) { /* below 2^-14: a subnormal half, in units of 2^-24 */
        const uint32_t e = a >> 23;
        if (e < 102) {
            h = 0;
        } else {
            const uint32_t man = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
            const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
            h = man >> shift;
            if (rem > half || (rem == half && (h & 1)))
                h++;
        }
    } else {
        const uint32_t r = a - (112u << 23);
        h = (r + 0xfffu + ((r >> 13) & 1)) >> 13;
    }
    return f16_to_f32(sign | h);
}

/* sum over 4 byte pairs of a[i] * b[i] (signed bytes) plus c: one instruction where the
 * device has it (sm_61+, and the AMD targets with dot1 instructions), else spelled out. */
MLC_HD int dot4(int a, int b, int c)
{
#if defined(__CUDA_ARCH__)
    return __dp4a(a, b, c);
#elif defined(__HIP_DEVICE_COMPILE__) && (defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || \
                                          defined(__gfx940__) || defined(__gfx942__) || defined(__gfx1030__))
    return __builtin_amdgcn_sdot4(a, b, c, false);
#else
    for (int i = 0; i < 32; i += 8)
        c += (int)(int8_t)(uint8_t)((uint32_t)a >> i) * (int)(int8_t)(uint8_t)((uint32_t)b >> i);
    return c;
#endif
}

/* Sum of the 4 signed bytes of a. */
MLC_HD int sum4(int a)
{
    return dot4(0x01010101, a, 0);
}

/* Little-endian u32 at p, p 4-byte aligned / 2-byte aligned (byte loads on the host). */
MLC_HD uint32_t ld4a(const uint8_t *p)
{
#ifdef MLC_Q8_DEVICE
    return *(const uint32_t *)p;
#else
    return ld_u32(p);
#endif
}

MLC_HD uint32_t ld2a(const uint8_t *p)
{
#ifdef MLC_Q8_DEVICE
    const uint16_t *h = (const uint16_t *)p;
    return (uint32_t)h[0] | (uint32_t)h[1] << 16;
#else
    return ld_u32(p);
#endif
}

/* ---------------------------------------------------------------- activations */

/* Q8_0 of a 32-value block with largest magnitude amax: the half scale d (as float) and the
 * inverse scale values are multiplied by (the CPU's 127/amax, not 1/d). */
MLC_HD void q8_0_scale(float amax, float *d, float *id)
{
    *d = round_to_f16(amax / 127.f);
    *id = amax != 0 ? 127.f / amax : 0.0f;
}

MLC_HD int8_t q8_0_value(float x, float id)
{
    return (int8_t)nearest_int(x * id);
}

/* Q8_K of a 256-value block whose first value of largest magnitude is mx (0 when all are
 * zero): the scale d and the inverse scale iscale (-127 / mx, so that mx becomes -127). */
MLC_HD void q8_K_scale(float mx, float *d, float *iscale)
{
    if (mx == 0) {
        *d = 0;
        *iscale = 0;
        return;
    }
    *iscale = -127.f / mx;
    *d = 1 / *iscale;
}

MLC_HD int8_t q8_K_value(float x, float iscale)
{
    if (iscale == 0)
        return 0;
    const int v = nearest_int(iscale * x);
    return (int8_t)(v > 127 ? 127 : v);
}

/* ---------------------------------------------------------------- weight blocks */

/* Dq<T>: for weight type T, LPB lanes per block; part() adds lane k's share (0 <= k < LPB)
 * of block b against the activation block (words aw, 32-value sums s32 for Q8_K) to the
 * integer sums i1, i2; term() is the block's float term from the whole block's sums and the
 * activation scale ad, as the CPU writes it. Only the types listed here take the int8 path;
 * AQ says which activation format it reads (32: Q8_0, 256: Q8_K). */
template <uint32_t T> struct Dq;

#define MLC_LO4 0x0f0f0f0fu

template <> struct Dq<MLC_TYPE_Q8_0> {
    static constexpr int LPB = 4, AQ = 32;
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *, int &i1, int &)
    {
        i1 = dot4((int)ld2a(b + 2 + 8 * k), aw[2 * k], i1);
        i1 = dot4((int)ld2a(b + 6 + 8 * k), aw[2 * k + 1], i1);
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int)
    {
        return (float)i1 * (ld_f16(b) * ad);
    }
};

template <> struct Dq<MLC_TYPE_Q4_0> {
    static constexpr int LPB = 4, AQ = 32;
    /* Lane k: qs bytes 4k..4k+3, i.e. values 4k.. (low nibbles) and 16 + 4k.. (high). */
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *, int &i1, int &)
    {
        const uint32_t w = ld2a(b + 2 + 4 * k);
        const int lo = aw[k], hi = aw[4 + k];
        i1 = dot4((int)(w & MLC_LO4), lo, i1);
        i1 = dot4((int)((w >> 4) & MLC_LO4), hi, i1);
        i1 -= 8 * (sum4(lo) + sum4(hi));
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int)
    {
        return (float)i1 * (ld_f16(b) * ad);
    }
};

/* The 4 bits h & 15 as bit 4 of each of 4 bytes. */
MLC_HD uint32_t bits_to_bytes(uint32_t h)
{
    return (h & 1u) << 4 | (h & 2u) << 11 | (h & 4u) << 18 | (h & 8u) << 25;
}

template <> struct Dq<MLC_TYPE_Q5_0> {
    static constexpr int LPB = 4, AQ = 32;
    /* As Q4_0 (qs at 6) with the fifth bits of values j from bit j of the u32 qh at 2. */
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *, int &i1, int &)
    {
        const uint32_t w = ld2a(b + 6 + 4 * k), h = ld2a(b + 2);
        const int lo = aw[k], hi = aw[4 + k];
        i1 = dot4((int)((w & MLC_LO4) | bits_to_bytes(h >> (4 * k))), lo, i1);
        i1 = dot4((int)(((w >> 4) & MLC_LO4) | bits_to_bytes(h >> (16 + 4 * k))), hi, i1);
        i1 -= 16 * (sum4(lo) + sum4(hi));
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int)
    {
        return (float)i1 * (ld_f16(b) * ad);
    }
};

/* Q4_K (qh NULL) and Q5_K, lane k: 64-value group k, i.e. sub-blocks 2k (low nibbles of
 * qs[32k..32k+31]) and 2k + 1 (high nibbles); i1 += sc * isum, i2 += m * sum of the
 * activations (the min term). */
MLC_HD void k4_part(const uint8_t *b, const uint8_t *qs, const uint8_t *qh, int k, const int *aw, const int *s32,
                    int &i1, int &i2)
{
    int lo = 0, hi = 0;
    for (int i = 0; i < 8; i++) {
        const uint32_t w = ld4a(qs + 32 * k + 4 * i);
        uint32_t wl = w & MLC_LO4, wh = (w >> 4) & MLC_LO4;
        if (qh) {
            const uint32_t h = ld4a(qh + 4 * i);
            wl |= ((h >> (2 * k)) & 0x01010101u) << 4;
            wh |= ((h >> (2 * k + 1)) & 0x01010101u) << 4;
        }
        lo = dot4((int)wl, aw[16 * k + i], lo);
        hi = dot4((int)wh, aw[16 * k + 8 + i], hi);
    }
    int sc0, m0, sc1, m1;
    q4k_sm(2 * k, b + 4, &sc0, &m0);
    q4k_sm(2 * k + 1, b + 4, &sc1, &m1);
    i1 += sc0 * lo + sc1 * hi;
    i2 += m0 * s32[2 * k] + m1 * s32[2 * k + 1];
}

MLC_HD float k4_term(const uint8_t *b, float ad, int i1, int i2)
{
    const float d = ad * ld_f16(b), dmin = ad * ld_f16(b + 2);
    return d * (float)i1 - dmin * (float)i2;
}

template <> struct Dq<MLC_TYPE_Q4_K> {
    static constexpr int LPB = 4, AQ = 256;
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *s32, int &i1, int &i2)
    {
        k4_part(b, b + 16, nullptr, k, aw, s32, i1, i2);
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int i2) { return k4_term(b, ad, i1, i2); }
};

template <> struct Dq<MLC_TYPE_Q5_K> {
    static constexpr int LPB = 4, AQ = 256;
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *s32, int &i1, int &i2)
    {
        k4_part(b, b + 48, b + 16, k, aw, s32, i1, i2);
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int i2) { return k4_term(b, ad, i1, i2); }
};

template <> struct Dq<MLC_TYPE_Q6_K> {
    static constexpr int LPB = 8, AQ = 256;
    /* Lane k: half hf = k / 4 of the block, positions l0 .. l0 + 7 (l0 = 8 (k % 4)) of its
     * four 32-value quarters: quarters 0 and 2 are the low and high nibbles of ql[l], 1 and
     * 3 those of ql[32 + l], each with two bits of qh[l]; scale g = 8 hf + 2 q + l0 / 16. */
    static MLC_HD void part(const uint8_t *b, int k, const int *aw, const int *, int &i1, int &)
    {
        const int hf = k / 4, l0 = 8 * (k % 4);
        const uint8_t *L = b + 64 * hf + l0, *H = b + 128 + 32 * hf + l0;
        const int8_t *sc = (const int8_t *)(b + 192) + 8 * hf + l0 / 16;
        int isum[4] = {0, 0, 0, 0};
        for (int c = 0; c < 2; c++) {
            const uint32_t wa = ld2a(L + 4 * c), wb = ld2a(L + 32 + 4 * c), wh = ld2a(H + 4 * c);
            const uint32_t v[4] = {(wa & MLC_LO4) | ((wh << 4) & 0x30303030u),
                                   (wb & MLC_LO4) | ((wh << 2) & 0x30303030u),
                                   ((wa >> 4) & MLC_LO4) | (wh & 0x30303030u),
                                   ((wb >> 4) & MLC_LO4) | ((wh >> 2) & 0x30303030u)};
            for (int q = 0; q < 4; q++) {
                const int a = aw[(128 * hf + 32 * q + l0) / 4 + c];
                isum[q] = dot4((int)v[q], a, isum[q]) - 32 * sum4(a);
            }
        }
        for (int q = 0; q < 4; q++)
            i1 += (int)sc[2 * q] * isum[q];
    }
    static MLC_HD float term(const uint8_t *b, float ad, int i1, int)
    {
        return ld_f16(b + 208) * ad * (float)i1;
    }
};

/* Calls X(T) for each weight type with an int8 path. */
#define MLC_CU_Q8_TYPES(X) X(MLC_TYPE_Q8_0) X(MLC_TYPE_Q4_0) X(MLC_TYPE_Q5_0) X(MLC_TYPE_Q4_K) X(MLC_TYPE_Q5_K) X(MLC_TYPE_Q6_K)

} // namespace MLC_GPU_NS

#endif
