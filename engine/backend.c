/* backend.c: the registry of known backends (backend_list.h), which of them this build
 * contains (MLC_BUILT_BACKENDS, from the Makefile), op names and tensor views. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "mlc/backend_info.h"

static const char *const names[] = {
#define NAME_(n) #n,
    MLC_BACKEND_LIST(NAME_)
#undef NAME_
};

#define N_BACKENDS ((int)(sizeof names / sizeof names[0]))

static const char *const op_names[] = {
#define OP_NAME_(id, n) #n,
    MLC_OP_LIST(OP_NAME_)
#undef OP_NAME_
};

const char *mlc_op_name(mlc_op op)
{
    return (int)op >= 0 && op < MLC_OP_COUNT ? op_names[op] : "?";
}

bool mlc_op_from_name(const char *name, mlc_op *out)
{
    for (int i = 0; i < MLC_OP_COUNT; i++)
        if (!strcmp(op_names[i], name)) {
            *out = (mlc_op)i;
            return true;
        }
    return false;
}

mlc_tensor mlc_tensor_make(mlc_buffer *b, size_t offset, uint32_t type, int64_t ne0, int64_t ne1,
                           int64_t ne2)
{
    return (mlc_tensor){b, offset, type, {ne0, ne1, ne2, 1}};
}

int64_t mlc_tensor_nelem(const mlc_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

const char *mlc_tensor_type_name(uint32_t type)
{
    const char *n = type == MLC_TYPE_I32 ? "I32" : mlc_type_name(type);
    return n ? n : "?";
}

size_t mlc_tensor_nbytes(const mlc_tensor *t)
{
    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 0)
            return 0;
    size_t row = t->type == MLC_TYPE_I32 ? (size_t)t->ne[0] * 4 : mlc_type_row_bytes(t->type, t->ne[0]);
    return row * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

/* The table of a built backend, NULL for one this build lacks. */
static const mlc_backend_vt *built_vt(const char *name)
{
#define TRY_(n)                  \
    if (!strcmp(name, #n))       \
        return &mlc_backend_##n;
    MLC_BUILT_BACKENDS(TRY_)
#undef TRY_
    return NULL;
}

int mlc_backend_count(void) { return N_BACKENDS; }

const char *mlc_backend_name(int i)
{
    return i >= 0 && i < N_BACKENDS ? names[i] : NULL;
}

int mlc_backend_find(const char *name)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

bool mlc_backend_built(int i)
{
    return i >= 0 && i < N_BACKENDS && built_vt(names[i]);
}

int mlc_backend_device_count(int i)
{
    return mlc_backend_built(i) ? built_vt(names[i])->device_count() : 0;
}

void mlc_backend_device_describe(int i, int dev, char *buf, size_t cap)
{
    if (!mlc_backend_built(i) || dev < 0 || dev >= mlc_backend_device_count(i)) {
        snprintf(buf, cap, "no such device");
        return;
    }
    mlc_device_info di = {0};
    built_vt(names[i])->device_info(dev, &di);
    if (di.mem_total && di.mem_free)
        snprintf(buf, cap, "%s, memory %.1f GiB (%.1f GiB free)", di.description,
                 (double)di.mem_total / 1073741824.0, (double)di.mem_free / 1073741824.0);
    else if (di.mem_total) /* the API has no free-memory query (OpenCL) */
        snprintf(buf, cap, "%s, memory %.1f GiB", di.description, (double)di.mem_total / 1073741824.0);
    else
        snprintf(buf, cap, "%s", di.description);
}

mlc_status mlc_backend_vt_get(const char *name, const mlc_backend_vt **out, mlc_err *err)
{
    *out = NULL;
    if (mlc_backend_find(name) < 0) {
        char known[128] = "";
        size_t k = 0;
        for (int i = 0; i < N_BACKENDS && k < sizeof known; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", names[i]);
        return mlc_err_set(err, MLC_ERR_ARG, "backend '%s': unknown (known: %s)", name, known);
    }
    if (!(*out = built_vt(name)))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "backend '%s': not built into this binary (see mlc-bench devices)", name);
    return MLC_OK;
}

mlc_status mlc_backend_open_vt(const mlc_backend_vt *vt, const mlc_backend_params *p,
                               mlc_backend *out, mlc_err *err)
{
    out->vt = NULL;
    out->ctx = NULL;
    const mlc_backend_params dflt = {0};
    if (!p)
        p = &dflt;
    int n = vt->device_count();
    if (p->device < 0 || p->device >= n) {
        char why[256] = "";
        if (n == 0 && vt->no_device)
            vt->no_device(why, sizeof why);
        return mlc_err_set(err, MLC_ERR_ARG, "backend '%s': no device %d (%d present%s%s)", vt->name,
                           p->device, n, why[0] ? ": " : "", why);
    }
    mlc_status s = vt->init(p, &out->ctx, err);
    if (s == MLC_OK)
        out->vt = vt;
    return s;
}

mlc_status mlc_backend_open(const char *name, const mlc_backend_params *p, mlc_backend *out,
                            mlc_err *err)
{
    out->vt = NULL;
    out->ctx = NULL;
    const mlc_backend_vt *vt;
    mlc_status s = mlc_backend_vt_get(name, &vt, err);
    if (s)
        return s;
    return mlc_backend_open_vt(vt, p, out, err);
}

void mlc_backend_close(mlc_backend *b)
{
    if (b->vt)
        b->vt->destroy(b->ctx);
    b->vt = NULL;
    b->ctx = NULL;
}
