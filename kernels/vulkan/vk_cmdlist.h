/* vk_cmdlist.h: the vulkan backend's commands as data, and the command buffers recorded from
 * them. Between two submissions vk_device.c collects the dispatches and copies it is asked
 * for as a list; at submission it looks the list up among the lists it recorded before and
 * submits that command buffer again when one is equal (a decode step of the same shape: same
 * pipelines, descriptor sets, push constants, grids and copy offsets), recording a new one
 * only for a list it has not seen. Lists live in a small cache, least recently used out. */
#ifndef MLC_VK_CMDLIST_H
#define MLC_VK_CMDLIST_H

#define VK_NO_PROTOTYPES
#include <stdbool.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

enum { MLC_VK_CMD_DISPATCH, MLC_VK_CMD_COPY };

/* One command, every byte defined (lists are compared with memcmp). */
typedef struct mlc_vk_cmd {
    uint32_t kind;
    uint32_t n_pc;
    VkPipeline pipe;
    VkDescriptorSet set;
    uint32_t pc[32]; /* push constants, [n_pc] used, the rest zero */
    uint32_t grid[3];
    uint32_t pad_;
    VkBuffer src, dst;
    VkBufferCopy copy;
} mlc_vk_cmd;

typedef struct mlc_vk_cmdlist {
    mlc_vk_cmd *cmds;
    int n, cap;
} mlc_vk_cmdlist;

/* Appends c; false when out of host memory. */
bool mlc_vk_cmdlist_push(mlc_vk_cmdlist *l, const mlc_vk_cmd *c);
void mlc_vk_cmdlist_free(mlc_vk_cmdlist *l);

#define MLC_VK_RECORDED 16 /* command buffers kept: a model's decode and prefill shapes */

typedef struct mlc_vk_recorded {
    VkCommandBuffer cb; /* VK_NULL_HANDLE until first used */
    mlc_vk_cmdlist list;
    uint64_t hash, last_use;
} mlc_vk_recorded;

typedef struct mlc_vk_cmdcache {
    mlc_vk_recorded e[MLC_VK_RECORDED];
    uint64_t clock;
    uint64_t recorded, reused; /* submissions that recorded a command buffer / reused one */
} mlc_vk_cmdcache;

/* The entry recorded from a list equal to l (marked used), or NULL. */
mlc_vk_recorded *mlc_vk_cmdcache_find(mlc_vk_cmdcache *c, const mlc_vk_cmdlist *l);
/* The entry to record l into: an unused one or the least recently used; l's commands move
 * into it (l is left empty). The caller (re)records the entry's command buffer. */
mlc_vk_recorded *mlc_vk_cmdcache_take(mlc_vk_cmdcache *c, mlc_vk_cmdlist *l);
void mlc_vk_cmdcache_free(mlc_vk_cmdcache *c);

#endif
