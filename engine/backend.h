/* backend.h: the backend vtable (internal to libmlc).
 *
 * A backend is a small table of functions, in the spirit of ggml's backend interface.
 * This first version holds device discovery only; the engine adds buffer management and
 * the forward-pass ops (get_rows, matmul, rms_norm, rope, attention, ...) here, so that every
 * backend plugs into one plain-C forward pass. */
#ifndef MLC_BACKEND_H
#define MLC_BACKEND_H

#include <stddef.h>

typedef struct mlc_backend_vt {
    const char *name;
    int (*device_count)(void);
    void (*device_describe)(int dev, char *buf, size_t cap);
} mlc_backend_vt;

#ifdef MLC_HAVE_CPU
extern const mlc_backend_vt mlc_backend_cpu;
#endif

#endif
