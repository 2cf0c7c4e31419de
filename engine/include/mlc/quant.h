/* mlc/quant.h: ggml tensor types: block layouts, sizes, dequantization and quantization.
 *
 * Type ids are ggml's (they are what GGUF files store). Every id ggml defines has a name,
 * block size and block byte size here, so a file holding a type we cannot compute with can
 * still be parsed, sized and reported by name. Only the types with mlc_type_supported() true
 * can be dequantized or quantized: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
 *
 * Block layouts (little-endian, bit-exact to ggml):
 *   Q4_0  32 values, 18 B: f16 d; u8 qs[16]        x = d * (q - 8), low nibbles = 0..15, high = 16..31
 *   Q4_1  32 values, 20 B: f16 d, m; u8 qs[16]     x = d * q + m, nibbles as Q4_0
 *   Q5_0  32 values, 22 B: f16 d; u8 qh[4]; u8 qs[16]     x = d * (q - 16); q's low 4 bits
 *         as Q4_0's nibbles, its fifth bit is bit i of the little-endian u32 qh
 *   Q5_1  32 values, 24 B: f16 d, m; u8 qh[4]; u8 qs[16]  x = d * q + m, bits as Q5_0
 *   Q8_0  32 values, 34 B: f16 d; i8 qs[32]        x = d * q
 *   Q2_K 256 values, 84 B: u8 scales[16] (4-bit scale | 4-bit min << 4); u8 qs[64] (2-bit);
 *        f16 d, dmin
 *   Q3_K 256 values, 110 B: u8 hmask[32] (third bits); u8 qs[64] (low 2 bits); u8 scales[12]
 *        (16 x 6-bit); f16 d
 *   Q4_K 256 values, 144 B: f16 d, dmin; u8 scales[12] (8 x 6-bit scale + 6-bit min); u8 qs[128]
 *   Q5_K 256 values, 176 B: f16 d, dmin; u8 scales[12] as Q4_K; u8 qh[32] (fifth bits); u8 qs[128]
 *   Q6_K 256 values, 210 B: u8 ql[128], qh[64]; i8 scales[16]; f16 d
 *   IQ4_NL  32 values, 18 B: f16 d; u8 qs[16]     x = d * table[nibble], nibbles as Q4_0
 *   IQ4_XS 256 values, 136 B: f16 d; u16 scales_h; u8 scales_l[4] (8 x 6-bit, minus 32);
 *        u8 qs[128] (IQ4_NL's nibbles per 32 values)
 */
#ifndef MLC_QUANT_H
#define MLC_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mlc_type {
    MLC_TYPE_F32 = 0,
    MLC_TYPE_F16 = 1,
    MLC_TYPE_Q4_0 = 2,
    MLC_TYPE_Q4_1 = 3,
    MLC_TYPE_Q5_0 = 6,
    MLC_TYPE_Q5_1 = 7,
    MLC_TYPE_Q8_0 = 8,
    MLC_TYPE_Q2_K = 10,
    MLC_TYPE_Q3_K = 11,
    MLC_TYPE_Q4_K = 12,
    MLC_TYPE_Q5_K = 13,
    MLC_TYPE_Q6_K = 14,
    MLC_TYPE_IQ4_NL = 20,
    MLC_TYPE_IQ4_XS = 23,
    MLC_TYPE_BF16 = 30,
} mlc_type;

/* Number of type ids known (ggml ids 0 .. MLC_TYPE_COUNT-1; some are retired holes). */
#define MLC_TYPE_COUNT 40

#define MLC_QK4_0 32
#define MLC_QK8_0 32
#define MLC_QK_K 256

/* Name of any ggml type id ("Q5_K"), or NULL when the id is unknown or retired. */
const char *mlc_type_name(uint32_t type);
/* Values per block (1 for F32/F16/BF16), 0 when the id is unknown. */
int64_t mlc_type_block_size(uint32_t type);
/* Bytes per block, 0 when the id is unknown. */
size_t mlc_type_block_bytes(uint32_t type);
/* True for the types this library can dequantize and quantize. */
bool mlc_type_supported(uint32_t type);
/* Parses a name ("q4_k", "Q4_K", "f16"); returns false when it names no supported type. */
bool mlc_type_from_name(const char *name, mlc_type *out);
/* Bytes of a row of n values; 0 when n is not a multiple of the block size or the id is unknown. */
size_t mlc_type_row_bytes(uint32_t type, int64_t n);

/* Half and bfloat16 conversions (round to nearest even; NaN stays NaN). Pure bit
 * manipulation: fp16 -> fp32 is exact for all 65536 inputs, subnormals included; a NaN comes
 * out quiet (payload kept as far as it fits); bf16 keeps fp32 subnormals (no flush). */
float mlc_fp16_to_fp32(uint16_t h);
uint16_t mlc_fp32_to_fp16(float f);
float mlc_bf16_to_fp32(uint16_t h);
uint16_t mlc_fp32_to_bf16(float f);

/* Reference (scalar) dequantization of n values; n is a multiple of the block size.
 * src holds n / block_size blocks; dst holds n floats. Requires mlc_type_supported(type).
 * Blocks may be at any alignment. A call breaking these requirements writes nothing. */
void mlc_dequantize_row(mlc_type type, const void *src, float *dst, int64_t n);

/* Reference quantization of n values with ggml's reference algorithms (quantize_row_*_ref),
 * so the bytes match what ggml writes for the same input. Same requirements as above.
 * Inputs ggml cannot represent (NaN, inf, block scales beyond f16 range) still give finite
 * blocks here: f16 scales saturate to +-65504, where ggml would store inf. */
void mlc_quantize_row(mlc_type type, const float *src, void *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
