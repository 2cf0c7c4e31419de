/* quant_internal.h: what engine/quant.c and engine/quant_k.c share: little-endian byte
 * access, ggml's rounding helpers made safe for every input, and the block codec type.
 * Internal to libmlc (not installed). */
#ifndef MLC_QUANT_INTERNAL_H
#define MLC_QUANT_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mlc/quant.h"

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

static inline float rd_f16(const uint8_t *p)
{
    return mlc_fp16_to_fp32(rd16(p));
}

/* A block scale as f16; saturated and NaN-free so a degenerate block still decodes finite. */
static inline void wr_scale_f16(uint8_t *p, float v)
{
    if (v != v)
        v = 0.0f;
    else if (fabsf(v) > 65504.0f)
        v = copysignf(65504.0f, v);
    wr16(p, mlc_fp32_to_fp16(v));
}

/* ggml's nearest_int: round half to even via the 1.5 * 2^23 trick, valid for |v| < 2^22.
 * Outside that range (where ggml asserts) the result saturates; NaN gives 0. */
static inline int nearest_int(float v)
{
    if (!(fabsf(v) <= 4194303.0f))
        return v > 0 ? 4194303 : (v < 0 ? -4194303 : 0);
    const float f = v + 12582912.0f;
    uint32_t i;
    memcpy(&i, &f, sizeof i);
    return (int)(i & 0x7FFFFFu) - 0x400000;
}

/* Clamps v to [lo, hi] and truncates toward zero; NaN gives 0. */
static inline int trunc_clamp(float v, int lo, int hi)
{
    if (v != v)
        return 0;
    if (v <= (float)lo)
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

static inline int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* One block: dequantize (block -> block_size floats) and quantize (floats -> block). */
typedef void (*mlc_dequant_fn)(const uint8_t *block, float *y);
typedef void (*mlc_quant_fn)(const float *x, uint8_t *block);

/* The codec of a K-quant type (quant_k.c), or false for any other type. */
bool mlc_quant_k_codec(mlc_type type, mlc_dequant_fn *dq, mlc_quant_fn *q);

#endif
