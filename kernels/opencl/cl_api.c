/* cl_api.c: loading the OpenCL ICD loader (see cl_api.h). */
#include "cl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one process-wide state of this backend: the loaded table, filled once under
 * pthread_once (dlopen is expensive and the loader must stay mapped while any context
 * lives). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static mlc_cl_api api;
static char load_error[256];
static int loaded;

static void load(void)
{
    /* MLC_OPENCL_LIBRARY: another loader (or a vendor's libOpenCL) to open instead. */
    const char *lib = getenv("MLC_OPENCL_LIBRARY");
    void *h = dlopen(lib && *lib ? lib : "libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h && !(lib && *lib))
        h = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "no OpenCL ICD loader (%s; install ocl-icd-libopencl1)",
                 e ? e : "libOpenCL.so.1 not found");
        return;
    }
#define MLC_CL_SYM_(f)                                                                       \
    if (!(*(void **)&api.f = dlsym(h, #f))) {                                                \
        snprintf(load_error, sizeof load_error, "OpenCL ICD loader lacks %s (not OpenCL 1.2)", #f); \
        return;                                                                              \
    }
    MLC_CL_FUNCS(MLC_CL_SYM_)
#undef MLC_CL_SYM_
    loaded = 1;
}

const mlc_cl_api *mlc_cl_api_get(char *why, size_t cap)
{
    pthread_once(&once, load);
    if (!loaded && why)
        snprintf(why, cap, "%s", load_error);
    return loaded ? &api : NULL;
}

const char *mlc_cl_error_name(cl_int e, char *buf, size_t cap)
{
    switch (e) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no ICD installed)";
    default: snprintf(buf, cap, "CL error %d", (int)e); return buf;
    }
}
