/* cuda_backend.cu: the CUDA backend's host side: devices, memory, errors and the table. The
 * ops are in cuda_matmul.cu and cuda_ops.cu. Built by hipcc (MLC_GPU_HIP) it is the hip
 * backend, from the same source.
 *
 * Weights, the KV cache and activations live in device memory; every op runs on one stream
 * of the instance, so nothing waits for the device until download() or sync(). A machine
 * without the driver or a device answers with one line saying which (no_device). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ctx.h"

/* The oldest compute capability (major * 10 + minor) the kernels are built for: the Makefile
 * compiles for sm_80 and sm_90 and embeds PTX for compute_75 (CUDA 13 builds nothing older). */
#ifndef MLC_CUDA_MIN_CC
#define MLC_CUDA_MIN_CC 75
#endif

namespace MLC_GPU_NS {

/* ---------------------------------------------------------------- errors */

mlc_status fail(cu_ctx *c, mlc_status s, const char *fmt, ...)
{
    if (c->err.status == MLC_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
        va_end(ap);
        c->err.status = s;
    }
    return c->err.status;
}

/* Whether e leaves the CUDA context unusable: the runtime returns it from every later call
 * until the process ends. */
static bool lost(cudaError_t e)
{
    return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure
#ifndef MLC_GPU_HIP
           || e == cudaErrorHardwareStackError || e == cudaErrorIllegalInstruction || e == cudaErrorMisalignedAddress ||
           e == cudaErrorInvalidAddressSpace || e == cudaErrorInvalidPc || e == cudaErrorAssert ||
           e == cudaErrorECCUncorrectable
#endif
        ;
}

mlc_status fail_code(cu_ctx *c, const char *what, cudaError_t e)
{
    const bool oom = e == cudaErrorMemoryAllocation;
    if (lost(e) && c->fatal.status == MLC_OK) {
        /* Replaces a milder error kept before it: this one is what every later call gets. */
        mlc_err_set(&c->fatal, MLC_ERR_BACKEND,
                    MLC_GPU_NAME ": %s on %s: %s (%s): the device context is lost, every later call fails (restart "
                                 "the process)",
                    what, c->dev_name, cudaGetErrorName(e), cudaGetErrorString(e));
        c->err = c->fatal;
        return c->err.status;
    }
    return fail(c, oom ? MLC_ERR_NOMEM : MLC_ERR_BACKEND, MLC_GPU_NAME ": %s on %s: %s (%s)%s", what,
                c->dev_name, cudaGetErrorName(e), cudaGetErrorString(e), oom ? " (out of device memory)" : "");
}

mlc_status launched(cu_ctx *c, const char *op)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        return c->err.status;
    if (c->capturing && !lost(e)) {
        /* Not this op's fault alone: the step is issued again without recording, where a
         * real launch failure shows up as the sticky error. */
        c->cant_replay = "a launch failed while recording";
        return MLC_ERR_UNSUPPORTED;
    }
    char what[64];
    snprintf(what, sizeof what, "%s: launching a kernel", op);
    return fail_code(c, what, e);
}

/* ---------------------------------------------------------------- devices */

/* Devices present; 0 with the reason in why (may be NULL) when there is none. The CUDA build
 * first looks for the driver library itself: without it the runtime would only say "driver
 * version is insufficient", which reads like a version problem. */
static int count_devices(char *why, size_t cap)
{
#ifndef MLC_GPU_HIP
    void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!drv) {
        if (why)
            snprintf(why, cap, "no NVIDIA driver (libcuda.so.1 not found)");
        return 0;
    }
    dlclose(drv);
#endif
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: clear it for later runtime calls */
        if (why)
            snprintf(why, cap, "%s (%s)", e == cudaErrorNoDevice ? "no device" : cudaGetErrorString(e),
                     cudaGetErrorName(e));
        return 0;
    }
    if (n == 0 && why)
        snprintf(why, cap, "the driver sees no device");
    return n;
}

static int cu_device_count(void)
{
    return count_devices(NULL, 0);
}

static void cu_no_device(char *buf, size_t cap)
{
    if (count_devices(buf, cap) > 0)
        snprintf(buf, cap, "devices present");
}

/* Peak memory bandwidth in bytes/s from the memory clock and bus width; 0 when unknown. */
static double peak_bandwidth(int dev)
{
    int clock_khz = 0, bus_bits = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return 2.0 * (double)clock_khz * 1000.0 * (double)bus_bits / 8.0; /* double data rate */
}

static void version_str(int v, char *buf, size_t cap)
{
#ifdef MLC_GPU_HIP
    snprintf(buf, cap, "%d", v);
#else
    snprintf(buf, cap, "%d.%d", v / 1000, v % 1000 / 10);
#endif
}

static void cu_device_info(int dev, mlc_device_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, MLC_GPU_NAME);
    char why[256] = "";
    int n = count_devices(why, sizeof why);
    if (dev < 0 || dev >= n) {
        snprintf(out->description, sizeof out->description, "%s", why[0] ? why : "no such device");
        return;
    }
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(out->description, sizeof out->description, "device %d: properties unavailable", dev);
        return;
    }
    int drv = 0, rt = 0;
    (void)cudaDriverGetVersion(&drv);
    (void)cudaRuntimeGetVersion(&rt);
    char dv[16], rv[16];
    version_str(drv, dv, sizeof dv);
    version_str(rt, rv, sizeof rv);
    snprintf(out->name, sizeof out->name, "%.63s", p.name);
#ifdef MLC_GPU_HIP
    snprintf(out->description, sizeof out->description,
             "%.60s (%.24s, %d CUs, driver %s, runtime %s), memory bandwidth %.0f GB/s", p.name,
             p.gcnArchName, p.multiProcessorCount, dv, rv, peak_bandwidth(dev) / 1e9);
#else
    snprintf(out->description, sizeof out->description,
             "%.60s (compute capability %d.%d, %d SMs, driver %s, runtime %s), memory bandwidth %.0f GB/s",
             p.name, p.major, p.minor, p.multiProcessorCount, dv, rv, peak_bandwidth(dev) / 1e9);
#endif
    out->mem_total = p.totalGlobalMem;
    /* Free memory is a query of the current device: switch to dev and back. */
    size_t fr = 0, tot = 0;
    int cur = 0;
    if (cudaGetDevice(&cur) == cudaSuccess && cudaSetDevice(dev) == cudaSuccess) {
        if (cudaMemGetInfo(&fr, &tot) == cudaSuccess)
            out->mem_free = fr;
        (void)cudaSetDevice(cur);
    }
    (void)cudaGetLastError();
    out->caps = MLC_CAP_ASYNC;
}

/* ---------------------------------------------------------------- instance */

static void release(cu_ctx *c, mlc_buffer *b)
{
    (void)c;
    if (b->ptr)
        (void)cudaFree(b->ptr);
    b->ptr = NULL;
    b->size = 0;
}

/* The current device belongs to the calling host thread (serve loads a model in one thread
 * and decodes in another), so every entry point that touches memory or the stream binds this
 * instance's device first; the call is cheap when it is already current. */
static void bind(const cu_ctx *c)
{
    (void)cudaSetDevice(c->dev);
}

static void cu_destroy(void *ctx)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (!c)
        return;
    bind(c);
    if (c->stream)
        (void)cudaStreamSynchronize(c->stream);
    release(c, &c->scores);
    release(c, &c->errflag);
    release(c, &c->act);
#ifndef MLC_GPU_HIP
    if (c->exec)
        (void)cudaGraphExecDestroy(c->exec);
    if (c->stage)
        (void)cudaFreeHost(c->stage);
#endif
    if (c->stream)
        (void)cudaStreamDestroy(c->stream);
    free(c);
}

/* Fails unless the device can run the kernels this build holds. */
static mlc_status check_device(const cudaDeviceProp *p, int dev, mlc_err *err)
{
#ifdef MLC_GPU_HIP
    (void)p;
    (void)dev;
    (void)err;
    return MLC_OK;
#else
    const int cc = p->major * 10 + p->minor;
    if (cc < MLC_CUDA_MIN_CC)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "cuda: device %d (%s) has compute capability %d.%d; this build needs %d.%d or newer",
                           dev, p->name, p->major, p->minor, MLC_CUDA_MIN_CC / 10, MLC_CUDA_MIN_CC % 10);
    return MLC_OK;
#endif
}

/* Whether the environment variable name is "1". */
static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && !strcmp(v, "1");
}

static mlc_status cu_init(const mlc_backend_params *bp, void **out, mlc_err *err)
{
    char why[256] = "";
    const int n = count_devices(why, sizeof why);
    if (n == 0)
        return mlc_err_set(err, MLC_ERR_BACKEND, MLC_GPU_NAME ": %s", why);
    if (bp->device < 0 || bp->device >= n)
        return mlc_err_set(err, MLC_ERR_ARG, MLC_GPU_NAME ": no device %d (%d present: see mlc-bench devices)",
                           bp->device, n);
    cudaDeviceProp p;
    cudaError_t e;
    if ((e = cudaGetDeviceProperties(&p, bp->device)) != cudaSuccess)
        return mlc_err_set(err, MLC_ERR_BACKEND, MLC_GPU_NAME ": device %d: %s", bp->device, cudaGetErrorString(e));
    mlc_status s = check_device(&p, bp->device, err);
    if (s)
        return s;
    cu_ctx *c = (cu_ctx *)calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, MLC_GPU_NAME ": out of host memory");
    c->dev = bp->device;
    c->no_dp4a = env_on("MLC_CUDA_NO_DP4A");
    c->no_mma = env_on("MLC_CUDA_NO_MMA");
    c->no_flash = env_on("MLC_CUDA_NO_FLASH");
    c->no_argmax = env_on("MLC_CUDA_NO_ARGMAX");
#ifdef MLC_GPU_HIP
    c->no_graph = true; /* step replay is built for CUDA graphs only (see cu_begin_step) */
#else
    c->no_graph = env_on("MLC_CUDA_NO_GRAPH");
#endif
    c->mem_total = p.totalGlobalMem;
    snprintf(c->dev_name, sizeof c->dev_name, "%.127s", p.name);
    if ((e = cudaSetDevice(c->dev)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        s = mlc_err_set(err, MLC_ERR_BACKEND, MLC_GPU_NAME ": cannot open %s: %s", c->dev_name, cudaGetErrorString(e));
        goto fail;
    }
    if ((s = scratch(c, &c->errflag, 3 * sizeof(int), "the error flag")) ||
        (e = cudaMemsetAsync(c->errflag.ptr, 0, 3 * sizeof(int), c->stream)) != cudaSuccess) {
        s = mlc_err_set(err, s ? s : MLC_ERR_BACKEND, "%s", s ? c->err.msg : MLC_GPU_NAME ": cannot clear the error flag");
        goto fail;
    }
    *out = c;
    return MLC_OK;
fail:
    cu_destroy(c);
    return s;
}

static void cu_describe(void *ctx, char *buf, size_t cap)
{
    const cu_ctx *c = (const cu_ctx *)ctx;
    /* engine/model.c gives 200 bytes: each path in a word or two, the switch that turned it off */
    snprintf(buf, cap, "%s, matvec: %s, prefill: %s, attention: %s, argmax: %s, steps: %s", c->dev_name,
             c->no_dp4a ? "f32 (MLC_CUDA_NO_DP4A)" : "int8",
#ifdef MLC_GPU_HIP
             "f32 tiled",
#else
             c->no_mma ? "f32 (MLC_CUDA_NO_MMA)" : "f16 mma",
#endif
             c->no_flash ? "per head (MLC_CUDA_NO_FLASH)" : "split-K, flash",
             c->no_argmax ? "host (MLC_CUDA_NO_ARGMAX)" : "device",
#ifdef MLC_GPU_HIP
             "launched op by op"
#else
             c->no_graph ? "op by op (MLC_CUDA_NO_GRAPH)" : "CUDA graph replay"
#endif
    );
}

/* ---------------------------------------------------------------- memory */

static mlc_status alloc_mem(cu_ctx *c, size_t bytes, mlc_buffer *b, const char *what, mlc_err *err)
{
    bind(c);
    b->ptr = NULL;
    b->size = bytes;
    if (!bytes)
        return MLC_OK;
    cudaError_t e = cudaMalloc(&b->ptr, bytes);
    if (e == cudaSuccess)
        return MLC_OK;
    b->ptr = NULL;
    b->size = 0;
    (void)cudaGetLastError();
    size_t fr = 0, tot = 0;
    (void)cudaMemGetInfo(&fr, &tot);
    (void)cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
        return mlc_err_set(err, MLC_ERR_NOMEM,
                           MLC_GPU_NAME ": out of device memory for %s of %.1f MiB on %s (%.0f of %.0f MiB free)",
                           what, (double)bytes / 1048576.0, c->dev_name, (double)fr / 1048576.0,
                           (double)tot / 1048576.0);
    return mlc_err_set(err, MLC_ERR_BACKEND, MLC_GPU_NAME ": %s of %zu bytes on %s: %s", what, bytes, c->dev_name,
                       cudaGetErrorString(e));
}

mlc_status scratch(cu_ctx *c, mlc_buffer *b, size_t bytes, const char *what)
{
    if (c->err.status)
        return c->err.status;
    if (b->ptr && b->size >= bytes)
        return MLC_OK;
    if (c->capturing) {
        /* Growing waits for the stream, which a recording cannot: the step runs again
         * unrecorded and grows it there. */
        c->cant_replay = "scratch memory had to grow";
        return MLC_ERR_UNSUPPORTED;
    }
    /* Kernels queued on the stream may still read the old memory. */
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
        return fail_code(c, "waiting for the stream", e);
    release(c, b);
    mlc_err me = {};
    mlc_status s = alloc_mem(c, bytes, b, what, &me);
    return s ? fail(c, s, "%s", me.msg) : MLC_OK;
}

static mlc_status cu_buffer_alloc(void *ctx, size_t bytes, mlc_buffer **out, mlc_err *err)
{
    cu_ctx *c = (cu_ctx *)ctx;
    *out = NULL;
    if (c->fatal.status)
        return mlc_err_set(err, c->fatal.status, "%s", c->fatal.msg);
    mlc_buffer *b = (mlc_buffer *)calloc(1, sizeof *b);
    if (!b)
        return mlc_err_set(err, MLC_ERR_NOMEM, MLC_GPU_NAME ": out of host memory");
    mlc_status s = alloc_mem(c, bytes, b, "a buffer", err);
    if (s) {
        free(b);
        return s;
    }
    *out = b;
    return MLC_OK;
}

static void cu_buffer_free(void *ctx, mlc_buffer *b)
{
    if (!b)
        return;
    cu_ctx *c = (cu_ctx *)ctx;
    bind(c);
    /* Queued kernels may still use it. */
    (void)cudaStreamSynchronize(c->stream);
    release(c, b);
    free(b);
}

static mlc_status span_ok(cu_ctx *c, const char *what, const mlc_buffer *b, size_t offset, size_t bytes)
{
    bind(c);
    if (c->err.status)
        return c->err.status;
    if (b && offset <= b->size && bytes <= b->size - offset)
        return MLC_OK;
    return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": %s of %zu bytes at byte %zu: outside the buffer of %zu bytes", what,
                bytes, offset, b ? b->size : 0);
}

/* An upload inside a recorded step: src is copied into the step's own range of the pinned
 * staging now, and the recorded copy reads that range when the graph runs (at end_step),
 * so the caller may reuse src at once, as with a plain upload. */
static mlc_status staged_upload(cu_ctx *c, void *dst, const void *src, size_t bytes)
{
#ifdef MLC_GPU_HIP
    (void)dst;
    (void)src;
    (void)bytes;
    c->cant_replay = "no recording on HIP";
    return MLC_ERR_UNSUPPORTED;
#else
    /* The range is taken even when it does not fit, so that stage_want adds up the step. */
    const size_t at = c->stage_used, span = (bytes + 15) & ~(size_t)15;
    c->stage_used = at + span;
    c->stage_want = c->stage_used > c->stage_want ? c->stage_used : c->stage_want;
    if (!c->stage || c->stage_used > c->stage_size) {
        c->cant_replay = "the upload staging had to grow";
        return MLC_ERR_UNSUPPORTED;
    }
    memcpy(c->stage + at, src, bytes);
    cudaError_t e = cudaMemcpyAsync(dst, c->stage + at, bytes, cudaMemcpyHostToDevice, c->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        c->cant_replay = "an upload could not be recorded";
        return MLC_ERR_UNSUPPORTED;
    }
    return MLC_OK;
#endif
}

/* Blocking: the caller may reuse src as soon as this returns (src may be any host memory). */
static mlc_status cu_upload(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes)
{
    cu_ctx *c = (cu_ctx *)ctx;
    c->epoch++; /* the matmul's quantized activations may be of this memory */
    mlc_status s = span_ok(c, "upload", dst, offset, bytes);
    if (s || !bytes)
        return s;
    if (c->capturing)
        return staged_upload(c, (uint8_t *)dst->ptr + offset, src, bytes);
    cudaError_t e = cudaMemcpyAsync((uint8_t *)dst->ptr + offset, src, bytes, cudaMemcpyHostToDevice, c->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(c->stream);
    return e != cudaSuccess ? fail_code(c, "upload", e) : MLC_OK;
}

static mlc_status cu_download(void *ctx, void *dst, mlc_buffer *src, size_t offset, size_t bytes)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (c->capturing)
        return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": download between begin_step and end_step");
    mlc_status s = span_ok(c, "download", src, offset, bytes);
    if (s || !bytes)
        return s;
    cudaError_t e = cudaMemcpyAsync(dst, (const uint8_t *)src->ptr + offset, bytes, cudaMemcpyDeviceToHost, c->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(c->stream);
    return e != cudaSuccess ? fail_code(c, "download", e) : MLC_OK;
}

static mlc_status cu_weights(void *ctx, const void *host, uint32_t type, int64_t ne0, int64_t ne1, mlc_tensor *out,
                             mlc_err *err)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (c->err.status) /* an earlier failure stays for its sync(); nothing new is started */
        return mlc_err_set(err, c->err.status, "%s", c->err.msg);
    const size_t rb = mlc_type_row_bytes(type, ne0);
    const int64_t shape[4] = {ne0, ne1, 1, 1};
    if (!rb || ne1 <= 0 || !supports(c, MLC_OP_MATMUL, type, shape))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, MLC_GPU_NAME ": weights of type %s [%lld, %lld]: not supported",
                           mlc_tensor_type_name(type), (long long)ne0, (long long)ne1);
    mlc_buffer *b;
    mlc_status s = cu_buffer_alloc(c, rb * (size_t)ne1, &b, err);
    if (s)
        return s;
    /* A failed upload is returned here, not left sticky. */
    if ((s = cu_upload(c, b, 0, host, rb * (size_t)ne1))) {
        cu_buffer_free(c, b);
        mlc_err_set(err, s, "%s (weights %s [%lld, %lld])", c->err.msg, mlc_tensor_type_name(type), (long long)ne0,
                    (long long)ne1);
        c->err = c->fatal; /* the failure was this call's own (no earlier one was kept) */
        return s;
    }
    *out = mlc_tensor_make(b, 0, type, ne0, ne1, 1);
    return MLC_OK;
}

static void cu_release_weights(void *ctx, mlc_tensor *w)
{
    cu_buffer_free(ctx, w->buf);
    w->buf = NULL;
}

/* What the kernels' error flag codes mean. */
static const char *flag_text(int code)
{
    static const char *const t[] = {"?", "get_rows: ids", "gather: rows", "kv_store: slot", "kv_store: pos",
                                    "attention: slot", "attention: pos"};
    return code > 0 && code < (int)(sizeof t / sizeof t[0]) ? t[code] : "?";
}

/* Waits for the stream, then reads (and clears) the kernels' error flag. */
static mlc_status cu_sync(void *ctx, mlc_err *err)
{
    cu_ctx *c = (cu_ctx *)ctx;
    bind(c);
    if (c->capturing) {
        /* A wait inside a recording would end it: refuse, and leave the step unreplayable. */
        c->cant_replay = "sync() inside the step";
        fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": sync between begin_step and end_step");
        mlc_err_set(err, c->err.status, "%s", c->err.msg);
        return c->err.status;
    }
    if (c->fatal.status) {
        mlc_err_set(err, c->fatal.status, "%s", c->fatal.msg);
        return c->fatal.status;
    }
    int f[3] = {0, 0, 0};
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
        fail_code(c, "running kernels", e);
    else if ((e = cudaMemcpyAsync(f, c->errflag.ptr, sizeof f, cudaMemcpyDeviceToHost, c->stream)) != cudaSuccess ||
             (e = cudaStreamSynchronize(c->stream)) != cudaSuccess)
        fail_code(c, "reading the error flag", e);
    if (f[0]) {
        fail(c, MLC_ERR_RANGE, MLC_GPU_NAME ": %s[%d] = %d is out of range", flag_text(f[0]), f[1], f[2]);
        (void)cudaMemsetAsync(c->errflag.ptr, 0, sizeof f, c->stream);
        (void)cudaStreamSynchronize(c->stream);
    }
    mlc_status s = c->err.status;
    if (s)
        mlc_err_set(err, s, "%s", c->err.msg);
    c->err = c->fatal; /* cleared, unless the context is lost */
    return s;
}

/* ---------------------------------------------------------------- step replay */

/* Step replay records the kernels of one forward pass into a CUDA graph and launches the
 * graph: one launch instead of hundreds, the launch overhead off the token loop. Each step
 * is recorded anew (recording costs less than launching), and the recording is written into
 * the previous step's executable graph when its shape is the same (a decode step with the
 * same batch size), else instantiated anew. HIP leaves both hooks unset: hipGraph's capture
 * and update have never run here (no AMD GPU), so HIP launches op by op. */

#ifndef MLC_GPU_HIP
/* Prints the one-line warning of a step that was not replayed, once per instance. */
static void warn_replay(cu_ctx *c, const char *why, cudaError_t e)
{
    (void)cudaGetLastError();
    if (c->warned)
        return;
    c->warned = true;
    fprintf(stderr, MLC_GPU_NAME ": warning: a step could not be replayed as a CUDA graph (%s: %s); such steps "
                    "are launched op by op (MLC_CUDA_NO_GRAPH=1 turns replay off)\n",
            why, cudaGetErrorString(e));
}

/* Makes the pinned staging hold at least bytes; false (staging unchanged) when it cannot. */
static bool stage_reserve(cu_ctx *c, size_t bytes)
{
    if (c->stage && c->stage_size >= bytes)
        return true;
    size_t want = c->stage_size ? c->stage_size : 64 << 10;
    while (want < bytes)
        want *= 2;
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, want);
    if (e != cudaSuccess) {
        warn_replay(c, "pinned staging", e);
        return false;
    }
    if (c->stage)
        (void)cudaFreeHost(c->stage);
    c->stage = (uint8_t *)p;
    c->stage_size = want;
    return true;
}

static mlc_status cu_begin_step(void *ctx)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (c->no_graph)
        return MLC_ERR_UNSUPPORTED;
    if (c->err.status)
        return c->err.status;
    bind(c);
    /* The previous graph may still read the staging this step rewrites. */
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
        return fail_code(c, "waiting for the stream", e);
    if (!stage_reserve(c, c->stage_want))
        return MLC_ERR_UNSUPPORTED;
    c->stage_used = 0;
    c->cant_replay = NULL;
    if ((e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal)) != cudaSuccess) {
        warn_replay(c, "starting a recording", e);
        return MLC_ERR_UNSUPPORTED;
    }
    c->capturing = true;
    return MLC_OK;
}

/* Writes graph g into c->exec (updated in place, or instantiated anew). */
static cudaError_t to_exec(cu_ctx *c, cudaGraph_t g)
{
    if (c->exec) {
#if CUDART_VERSION >= 12000
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(c->exec, g, &info) == cudaSuccess)
            return cudaSuccess;
#else
        cudaGraphNode_t bad;
        cudaGraphExecUpdateResult res;
        if (cudaGraphExecUpdate(c->exec, g, &bad, &res) == cudaSuccess)
            return cudaSuccess;
#endif
        (void)cudaGetLastError(); /* another shape: not an error */
        (void)cudaGraphExecDestroy(c->exec);
        c->exec = NULL;
    }
    return cudaGraphInstantiateWithFlags(&c->exec, g, 0);
}

static mlc_status cu_end_step(void *ctx)
{
    cu_ctx *c = (cu_ctx *)ctx;
    if (!c->capturing)
        return MLC_ERR_ARG;
    bind(c);
    c->capturing = false;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    const char *why = c->cant_replay;
    c->cant_replay = NULL;
    mlc_status s = MLC_OK;
    if (e != cudaSuccess) {
        warn_replay(c, "ending the recording", e);
        s = MLC_ERR_UNSUPPORTED;
    } else if (c->err.status || why) {
        s = c->err.status ? c->err.status : MLC_ERR_UNSUPPORTED; /* expected: scratch grows once */
    } else if ((e = to_exec(c, g)) != cudaSuccess) {
        warn_replay(c, "instantiating the graph", e);
        s = MLC_ERR_UNSUPPORTED;
    } else if ((e = cudaGraphLaunch(c->exec, c->stream)) != cudaSuccess) {
        if (lost(e))
            s = fail_code(c, "launching the step's graph", e);
        else {
            warn_replay(c, "launching the graph", e);
            s = MLC_ERR_UNSUPPORTED;
        }
    }
    if (g)
        (void)cudaGraphDestroy(g);
    /* The recording ran nothing: the matmul's quantized activations are not in act. */
    c->epoch++;
    c->act_key = cu_act_key{};
    return s;
}
#endif

/* ---------------------------------------------------------------- operand checks */

/* The byte alignment a view's offset needs: the kernels read F32 and I32 as 4-byte words and
 * F16 as 2-byte ones; quantized blocks are read a byte at a time. */
static size_t elem_align(uint32_t type)
{
    if (type == MLC_TYPE_F32 || type == MLC_TYPE_I32)
        return 4;
    if (type == MLC_TYPE_F16 || type == MLC_TYPE_BF16)
        return 2;
    return 1;
}

mlc_status views_ok(cu_ctx *c, const char *op, std::initializer_list<const mlc_tensor *> ts)
{
    bind(c);
    c->epoch++;
    if (c->err.status)
        return c->err.status;
    if (c->cant_replay) /* the step runs again unrecorded: skip the rest of the recording */
        return MLC_ERR_UNSUPPORTED;
    int i = 0;
    for (const mlc_tensor *t : ts) {
        i++;
        const size_t nb = mlc_tensor_nbytes(t);
        const mlc_buffer *b = t->buf;
        const size_t align = elem_align(t->type);
        if (t->offset % align)
            return fail(c, MLC_ERR_ARG,
                        MLC_GPU_NAME ": %s: operand %d (%s) starts at byte %zu of its buffer, not a multiple of %zu "
                                     "(the kernels load whole elements)",
                        op, i, mlc_tensor_type_name(t->type), t->offset, align);
        if (b && (nb || !mlc_tensor_nelem(t)) && t->offset <= b->size && nb <= b->size - t->offset)
            continue;
        return fail(c, MLC_ERR_ARG,
                    MLC_GPU_NAME ": %s: operand %d (%s [%lld, %lld, %lld, %lld] at byte %zu) is not inside its buffer of %zu bytes",
                    op, i, mlc_tensor_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                    (long long)t->ne[3], t->offset, b ? b->size : 0);
    }
    return MLC_OK;
}

mlc_status typed(cu_ctx *c, const char *op, uint32_t type, std::initializer_list<const mlc_tensor *> ts)
{
    for (const mlc_tensor *t : ts)
        if (t->type != type)
            return fail(c, MLC_ERR_ARG, MLC_GPU_NAME ": %s: a %s view where %s is needed", op,
                        mlc_tensor_type_name(t->type), mlc_tensor_type_name(type));
    return MLC_OK;
}

} // namespace MLC_GPU_NS

using namespace MLC_GPU_NS;

extern "C" const mlc_backend_vt MLC_GPU_TABLE = {
    .name = MLC_GPU_NAME,
    .device_count = cu_device_count,
    .device_info = cu_device_info,
    .no_device = cu_no_device,
    .init = cu_init,
    .destroy = cu_destroy,
    .describe = cu_describe,
    .supports = supports,
    .buffer_alloc = cu_buffer_alloc,
    .buffer_free = cu_buffer_free,
    .weights = cu_weights,
    .release_weights = cu_release_weights,
    .upload = cu_upload,
    .download = cu_download,
    .sync = cu_sync,
    .get_rows = get_rows,
    .matmul = matmul,
    .rms_norm = rms_norm,
    .rope = rope,
    .kv_store = kv_store,
    .attention = attention,
    .swiglu = swiglu,
    .geglu = geglu,
    .add = add,
    .mul = mul,
    .scale = scale,
    .gather = gather,
    .argmax = argmax,
#ifdef MLC_GPU_HIP
    .begin_step = NULL,
    .end_step = NULL,
#else
    .begin_step = cu_begin_step,
    .end_step = cu_end_step,
#endif
};
