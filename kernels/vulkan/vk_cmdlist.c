/* vk_cmdlist.c: command lists and the cache of command buffers recorded from them (see
 * vk_cmdlist.h). */
#include "vk_cmdlist.h"

#include <stdlib.h>
#include <string.h>

bool mlc_vk_cmdlist_push(mlc_vk_cmdlist *l, const mlc_vk_cmd *c)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        mlc_vk_cmd *nc = realloc(l->cmds, (size_t)cap * sizeof *nc);
        if (!nc)
            return false;
        l->cmds = nc;
        l->cap = cap;
    }
    l->cmds[l->n++] = *c;
    return true;
}

void mlc_vk_cmdlist_free(mlc_vk_cmdlist *l)
{
    free(l->cmds);
    *l = (mlc_vk_cmdlist){0};
}

/* FNV-1a over the list's bytes: equal lists hash equal, and unequal ones rarely do, so most
 * misses skip the memcmp. */
static uint64_t hash_of(const mlc_vk_cmdlist *l)
{
    const unsigned char *p = (const unsigned char *)l->cmds;
    const size_t n = (size_t)l->n * sizeof *l->cmds;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

mlc_vk_recorded *mlc_vk_cmdcache_find(mlc_vk_cmdcache *c, const mlc_vk_cmdlist *l)
{
    const uint64_t h = hash_of(l);
    for (int i = 0; i < MLC_VK_RECORDED; i++) {
        mlc_vk_recorded *e = &c->e[i];
        if (e->cb && e->hash == h && e->list.n == l->n &&
            !memcmp(e->list.cmds, l->cmds, (size_t)l->n * sizeof *l->cmds)) {
            e->last_use = ++c->clock;
            c->reused++;
            return e;
        }
    }
    return NULL;
}

mlc_vk_recorded *mlc_vk_cmdcache_take(mlc_vk_cmdcache *c, mlc_vk_cmdlist *l)
{
    mlc_vk_recorded *e = &c->e[0];
    for (int i = 1; i < MLC_VK_RECORDED && e->cb; i++)
        if (!c->e[i].cb || c->e[i].last_use < e->last_use)
            e = &c->e[i];
    mlc_vk_cmdlist_free(&e->list);
    e->list = *l;
    *l = (mlc_vk_cmdlist){0};
    e->hash = hash_of(&e->list);
    e->last_use = ++c->clock;
    c->recorded++;
    return e;
}

void mlc_vk_cmdcache_free(mlc_vk_cmdcache *c)
{
    for (int i = 0; i < MLC_VK_RECORDED; i++)
        mlc_vk_cmdlist_free(&c->e[i].list);
}
