/* cl_api.h: the OpenCL entry points the backend uses, loaded from the ICD loader
 * (libOpenCL.so.1) at run time with dlopen, so a binary built with the opencl backend still
 * starts on a machine without OpenCL and can say "no ICD loader" in one line. */
#ifndef MLC_CL_API_H
#define MLC_CL_API_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#define MLC_CL_FUNCS(X)            \
    X(clGetPlatformIDs)            \
    X(clGetPlatformInfo)           \
    X(clGetDeviceIDs)              \
    X(clGetDeviceInfo)             \
    X(clCreateContext)             \
    X(clReleaseContext)            \
    X(clCreateCommandQueue)        \
    X(clReleaseCommandQueue)       \
    X(clCreateBuffer)              \
    X(clReleaseMemObject)          \
    X(clCreateProgramWithSource)   \
    X(clBuildProgram)              \
    X(clGetProgramBuildInfo)       \
    X(clReleaseProgram)            \
    X(clCreateKernel)              \
    X(clReleaseKernel)             \
    X(clSetKernelArg)              \
    X(clEnqueueNDRangeKernel)      \
    X(clEnqueueWriteBuffer)        \
    X(clEnqueueReadBuffer)         \
    X(clEnqueueFillBuffer)         \
    X(clFinish)

typedef struct mlc_cl_api {
#define MLC_CL_PTR_(f) __typeof__(&f) f;
    MLC_CL_FUNCS(MLC_CL_PTR_)
#undef MLC_CL_PTR_
} mlc_cl_api;

/* The process's table (loaded once, kept for the process's lifetime), or NULL with the
 * reason in why ("no OpenCL ICD loader: libOpenCL.so.1: cannot open shared object file"). */
const mlc_cl_api *mlc_cl_api_get(char *why, size_t cap);

/* "CL_OUT_OF_RESOURCES" for an OpenCL error code; "CL error -N" for others. */
const char *mlc_cl_error_name(cl_int e, char *buf, size_t cap);

#endif
