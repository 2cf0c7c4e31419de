/* vk_device.h: the Vulkan side of the vulkan backend: the loader (opened at run time, so a
 * binary built with Vulkan still starts where no loader is installed), devices, memory,
 * compute pipelines and the command stream. vulkan_backend.c builds the ops on top.
 *
 * Memory: buffers are suballocated from a few large allocations ("chunks", each one
 * VkDeviceMemory bound to one VkBuffer), since devices cap the number of allocations.
 * Shaders bind a chunk's whole VkBuffer and address a view by element offset.
 *
 * Commands: ops, uploads and downloads are queued as a list, and submitted when the host
 * needs a result (download, sync) or the staging memory fills up: as a command buffer
 * recorded before from an equal list (a step of the same shape) or a new recording, with a
 * memory barrier after each command (vk_cmdlist.h). */
#ifndef MLC_VK_DEVICE_H
#define MLC_VK_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/status.h"

typedef struct mlc_vk mlc_vk;

/* Where a buffer lives: chunk and byte offset in it. */
typedef struct mlc_vk_span {
    int chunk;
    size_t offset, size; /* bytes */
} mlc_vk_span;

typedef struct mlc_vk_info {
    char name[128];
    char driver[128];  /* "llvmpipe: Mesa 22.3.6 (LLVM 15.0.6)" */
    char type[16];     /* "cpu", "discrete", "integrated", "virtual", "other" */
    uint32_t api;      /* VK_MAKE_API_VERSION */
    uint64_t mem_total; /* bytes of device-local heaps */
    char heaps[96];    /* "1 heap: 31.3 GiB device-local" */
    uint32_t subgroup;
    bool subgroup_arith; /* subgroupAdd and friends in compute shaders (the subgroup matvec) */
} mlc_vk_info;

/* Devices the loader sees; 0 with why filled (no loader, no device) when there are none.
 * The loader is libvulkan.so.1, or the file $MLC_VK_LOADER names. */
int mlc_vk_device_count(char *why, size_t cap);
/* Properties of device dev; false when it cannot be read. */
bool mlc_vk_device_info(int dev, mlc_vk_info *out);

/* Whether to run under the Khronos validation layer (its findings become errors). */
typedef enum mlc_vk_validation { MLC_VK_VALIDATE_OFF, MLC_VK_VALIDATE_ON, MLC_VK_VALIDATE_IF_INSTALLED } mlc_vk_validation;

/* Opens device dev: a device below Vulkan 1.2, one without a compute queue, a missing loader
 * or (MLC_VK_VALIDATE_ON) a missing validation layer is refused with a one-line message. */
mlc_status mlc_vk_open(int dev, mlc_vk_validation validate, mlc_vk **out, mlc_err *err);
void mlc_vk_close(mlc_vk *v);
const mlc_vk_info *mlc_vk_info_of(const mlc_vk *v);

/* Memory. alloc fails with a message (out of device memory, size above the device's
 * limits); free gives the span back to its chunk. */
mlc_status mlc_vk_alloc(mlc_vk *v, size_t bytes, mlc_vk_span *out, mlc_err *err);
void mlc_vk_free(mlc_vk *v, const mlc_vk_span *s);
/* The largest buffer alloc accepts: one binding's range (the storage buffer range, the
 * allocation limit). */
size_t mlc_vk_max_buffer(const mlc_vk *v);

/* Host -> device: fill(dst, cap, arg) writes the bytes (at most cap at a time) into staging
 * memory; the copy into span at offset is recorded in order with the ops. bytes may exceed
 * the staging memory (pieces, flushed in between). */
typedef void (*mlc_vk_fill_fn)(void *dst, size_t done, size_t bytes, void *arg);
mlc_status mlc_vk_upload(mlc_vk *v, const mlc_vk_span *dst, size_t offset, size_t bytes,
                         mlc_vk_fill_fn fill, void *arg, mlc_err *err);
/* Device -> host: runs everything recorded, then copies bytes at offset of span into dst. */
mlc_status mlc_vk_download(mlc_vk *v, void *dst, const mlc_vk_span *src, size_t offset, size_t bytes,
                           mlc_err *err);

/* Up to 7 buffers at bindings 0..6 (NULL: unused) for one dispatch of shader name (a SPIR-V
 * module built from kernels/vulkan/shaders/), with push constants pc[n_pc]. */
#define MLC_VK_BINDINGS 7
mlc_status mlc_vk_dispatch(mlc_vk *v, const char *shader, const mlc_vk_span *const bind[MLC_VK_BINDINGS],
                           const uint32_t *pc, int n_pc, uint32_t gx, uint32_t gy, uint32_t gz, mlc_err *err);
/* Splits n workgroups over x and y (x is capped at 65535). */
void mlc_vk_grid(uint32_t n, uint32_t *gx, uint32_t *gy);

/* Runs everything recorded and waits. Returns the first failure (device lost, a shader's
 * index error, a validation finding), message in err, then clears it. */
mlc_status mlc_vk_flush(mlc_vk *v, mlc_err *err);

/* Submissions so far that recorded a new command buffer, and those that reused one. */
void mlc_vk_stats(const mlc_vk *v, uint64_t *recorded, uint64_t *reused);

#endif
