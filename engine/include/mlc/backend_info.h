/* mlc/backend_info.h: which backends this build has and which devices they see.
 *
 * Every backend mlc-bench knows is listed, built or not, so `mlc-bench devices` and
 * `--backend X` can say "not built" instead of silently falling back to the CPU. */
#ifndef MLC_BACKEND_INFO_H
#define MLC_BACKEND_INFO_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of known backends (cpu, cuda, hip, vulkan, opencl). */
int mlc_backend_count(void);
const char *mlc_backend_name(int i);
/* Index of the backend with this name, or -1. */
int mlc_backend_find(const char *name);
bool mlc_backend_built(int i);
/* Devices the backend can see now (0 when not built or none present). */
int mlc_backend_device_count(int i);
/* One line describing device dev of backend i ("AMD EPYC 7B13, 2 threads, avx2 fma"). */
void mlc_backend_device_describe(int i, int dev, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
