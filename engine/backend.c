/* backend.c: the registry of known backends and which of them this build contains. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "mlc/backend_info.h"

typedef struct backend_entry {
    const char *name;
    const mlc_backend_vt *vt; /* NULL: not built */
} backend_entry;

static const backend_entry backends[] = {
#ifdef MLC_HAVE_CPU
    {"cpu", &mlc_backend_cpu},
#else
    {"cpu", NULL},
#endif
    {"cuda", NULL},
    {"hip", NULL},
    {"vulkan", NULL},
    {"opencl", NULL},
};

#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

int mlc_backend_count(void) { return N_BACKENDS; }

const char *mlc_backend_name(int i)
{
    return i >= 0 && i < N_BACKENDS ? backends[i].name : NULL;
}

int mlc_backend_find(const char *name)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (!strcmp(backends[i].name, name))
            return i;
    return -1;
}

bool mlc_backend_built(int i)
{
    return i >= 0 && i < N_BACKENDS && backends[i].vt;
}

int mlc_backend_device_count(int i)
{
    return mlc_backend_built(i) ? backends[i].vt->device_count() : 0;
}

void mlc_backend_device_describe(int i, int dev, char *buf, size_t cap)
{
    if (!mlc_backend_built(i) || dev < 0 || dev >= mlc_backend_device_count(i)) {
        snprintf(buf, cap, "no such device");
        return;
    }
    backends[i].vt->device_describe(dev, buf, cap);
}

mlc_status mlc_backend_open(const char *name, int dev, int n_threads, mlc_backend *out,
                            mlc_err *err)
{
    out->vt = NULL;
    out->ctx = NULL;
    int i = mlc_backend_find(name);
    if (i < 0)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "backend '%s': unknown (known: cpu, cuda, hip, vulkan, opencl)", name);
    if (!backends[i].vt)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "backend '%s': not built into this binary (see mlc-bench devices)", name);
    int n = backends[i].vt->device_count();
    if (dev < 0 || dev >= n)
        return mlc_err_set(err, MLC_ERR_ARG, "backend '%s': no device %d (%d present)", name, dev, n);
    mlc_status s = backends[i].vt->init(dev, n_threads, &out->ctx, err);
    if (s == MLC_OK)
        out->vt = backends[i].vt;
    return s;
}

void mlc_backend_close(mlc_backend *b)
{
    if (b->vt)
        b->vt->destroy(b->ctx);
    b->vt = NULL;
    b->ctx = NULL;
}
