/* vk_spirv.h: the compute shaders of kernels/vulkan/shaders/, compiled to SPIR-V by glslc at
 * build time and embedded (the Makefile writes the table into build/gen/vulkan/vk_spirv.c).
 * Names are the shader's file name, with the weight type for the per-type ones:
 * "matvec_q4_k", "attention". */
#ifndef MLC_VK_SPIRV_H
#define MLC_VK_SPIRV_H

#include <stddef.h>
#include <stdint.h>

typedef struct mlc_vk_spirv {
    const char *name;
    const uint32_t *words;
    size_t n_words;
} mlc_vk_spirv;

extern const mlc_vk_spirv mlc_vk_spirv_table[];
extern const int mlc_vk_spirv_count;

#endif
