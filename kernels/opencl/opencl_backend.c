/* opencl_backend.c: the OpenCL backend's host side: device discovery over every platform,
 * the program (the .cl files embedded at build time, built once per device and options and
 * kept for the process), memory, errors and kernel launches. The ops are in opencl_ops.c.
 *
 * Devices are numbered in platform order, then device order within a platform, over every
 * device type. OpenCL 1.2 is all that is required (works on PoCL); the loader is opened with
 * dlopen (cl_api.c), so a machine without OpenCL gets a one-line reason, not a loader error. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl_ctx.h"

/* The program source: the .cl files of kernels/opencl concatenated by the Makefile. */
extern const unsigned char mlc_opencl_source[];
extern const size_t mlc_opencl_source_len;

#define MAX_DEVICES 32

/* ---------------------------------------------------------------- errors */

mlc_status mlc_cl_fail(cl_ctx *c, mlc_status s, const char *fmt, ...)
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

static bool oom_code(cl_int e)
{
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES || e == CL_OUT_OF_HOST_MEMORY;
}

mlc_status mlc_cl_fail_code(cl_ctx *c, const char *what, cl_int e)
{
    char nb[32];
    return mlc_cl_fail(c, oom_code(e) ? MLC_ERR_NOMEM : MLC_ERR_BACKEND, "opencl: %s on %s: %s%s", what,
                       c->dev_name, mlc_cl_error_name(e, nb, sizeof nb),
                       oom_code(e) ? " (out of device memory)" : "");
}

/* ---------------------------------------------------------------- devices */

/* Every device of every platform, up to cap; 0 with the reason in why when there is none. */
static int list_devices(const mlc_cl_api *cl, cl_device_id *out, int cap, char *why, size_t why_cap)
{
    cl_platform_id plats[16];
    cl_uint np = 0;
    char nb[48];
    cl_int e = cl->clGetPlatformIDs(16, plats, &np);
    if (e != CL_SUCCESS || np == 0) {
        snprintf(why, why_cap, "no OpenCL platform (%s; ICDs are listed in /etc/OpenCL/vendors, "
                 "e.g. install pocl-opencl-icd)", e ? mlc_cl_error_name(e, nb, sizeof nb) : "none installed");
        return 0;
    }
    int n = 0;
    for (cl_uint p = 0; p < np && p < 16; p++) {
        cl_uint nd = 0;
        if (cl->clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, (cl_uint)(cap - n), out + n, &nd) == CL_SUCCESS)
            n += (int)nd;
    }
    if (n == 0)
        snprintf(why, why_cap, "%u OpenCL platform%s but no device", np, np == 1 ? "" : "s");
    return n;
}

static int ocl_device_count(void)
{
    char why[256];
    const mlc_cl_api *cl = mlc_cl_api_get(why, sizeof why);
    cl_device_id d[MAX_DEVICES];
    return cl ? list_devices(cl, d, MAX_DEVICES, why, sizeof why) : 0;
}

static void str_info(const mlc_cl_api *cl, cl_device_id d, cl_device_info what, char *buf, size_t cap)
{
    buf[0] = 0;
    if (cl->clGetDeviceInfo(d, what, cap - 1, buf, NULL) != CL_SUCCESS)
        snprintf(buf, cap, "?");
    buf[cap - 1] = 0;
}

static uint64_t u64_info(const mlc_cl_api *cl, cl_device_id d, cl_device_info what)
{
    cl_ulong v = 0;
    return cl->clGetDeviceInfo(d, what, sizeof v, &v, NULL) == CL_SUCCESS ? v : 0;
}

static uint32_t u32_info(const mlc_cl_api *cl, cl_device_id d, cl_device_info what)
{
    cl_uint v = 0;
    return cl->clGetDeviceInfo(d, what, sizeof v, &v, NULL) == CL_SUCCESS ? v : 0;
}

/* The extensions that matter to this backend's kernels, space-separated. */
static void notable_extensions(const mlc_cl_api *cl, cl_device_id d, char *buf, size_t cap)
{
    static const char *const notable[] = {"cl_khr_fp16", "cl_khr_fp64", "cl_khr_subgroups",
                                          "cl_intel_subgroups", "cl_khr_int64_base_atomics"};
    char all[8192];
    str_info(cl, d, CL_DEVICE_EXTENSIONS, all, sizeof all);
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof notable / sizeof notable[0] && k < cap; i++)
        if (strstr(all, notable[i]))
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? " " : "", notable[i]);
    if (!k)
        snprintf(buf, cap, "none of fp16/fp64/subgroups");
}

/* ---------------------------------------------------------------- optional paths */

/* The kernels' optional paths for a device, from its extensions and the environment:
 * build options (-DFP16, -DSG ...) and a short description ("fp16 off (absent), sub-groups
 * on"). Switches, for tests and diagnosis:
 *   MLC_OPENCL_NO_FP16=1, MLC_OPENCL_NO_SUBGROUPS=1  the fallback even where the device has it
 *   MLC_OPENCL_FORCE_FP16=1                          the fp16 path even where it lacks it
 *                                                    (the build then fails: tests that error)
 *   MLC_OPENCL_SUBGROUP_EMULATION=N                  sub-groups of N items (1 .. WG) emulated
 *                                                    in local memory where the device has none,
 *                                                    so conformance covers that path's logic */
static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && !strcmp(v, "1");
}

static void choose_paths(const mlc_cl_api *cl, cl_device_id d, char *opts, size_t ocap, char *desc, size_t dcap)
{
    char ext[8192];
    str_info(cl, d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    const bool fp16 = strstr(ext, "cl_khr_fp16") != NULL, khr_sg = strstr(ext, "cl_khr_subgroups") != NULL;
    const bool intel_sg = strstr(ext, "cl_intel_subgroups") != NULL;
    const bool force = env_on("MLC_OPENCL_FORCE_FP16"), no = env_on("MLC_OPENCL_NO_FP16");
    const bool use_fp16 = force || (fp16 && !no);
    const char *fp16_how = force ? "forced on" : !fp16 ? "off (absent)" : no ? "off (MLC_OPENCL_NO_FP16)" : "on";
    const char *em = getenv("MLC_OPENCL_SUBGROUP_EMULATION");
    const int emulate = em ? atoi(em) : 0;
    char sg_how[48];
    size_t k = 0;
    opts[0] = 0;
    if (use_fp16)
        k += (size_t)snprintf(opts + k, ocap - k, " -DFP16");
    /* cl_khr_subgroups' functions exist from OpenCL C 2.0 (compilers do not declare them
     * under -cl-std=CL1.2); cl_intel_subgroups' also in 1.2. */
    char ver[64];
    str_info(cl, d, CL_DEVICE_OPENCL_C_VERSION, ver, sizeof ver);
    const int major = !strncmp(ver, "OpenCL C ", 9) ? atoi(ver + 9) : 1;
    if (env_on("MLC_OPENCL_NO_SUBGROUPS"))
        snprintf(sg_how, sizeof sg_how, "off (MLC_OPENCL_NO_SUBGROUPS)");
    else if (intel_sg) {
        snprintf(sg_how, sizeof sg_how, "on");
        snprintf(opts + k, ocap - k, " -DSG -DSG_INTEL");
    } else if (khr_sg && major >= 2) {
        snprintf(sg_how, sizeof sg_how, "on");
        snprintf(opts + k, ocap - k, " -DSG -cl-std=CL%d.0", major >= 3 ? 3 : 2);
    } else if (emulate >= 1 && emulate <= MLC_CL_WG) {
        snprintf(sg_how, sizeof sg_how, "emulated, %d items", emulate);
        snprintf(opts + k, ocap - k, " -DSG_EMULATE=%d", emulate);
    } else
        snprintf(sg_how, sizeof sg_how, "off (absent)");
    snprintf(desc, dcap, "fp16 %s, sub-groups %s", fp16_how, sg_how);
}

static void ocl_no_device(char *buf, size_t cap)
{
    const mlc_cl_api *cl = mlc_cl_api_get(buf, cap);
    cl_device_id d[MAX_DEVICES];
    if (cl && list_devices(cl, d, MAX_DEVICES, buf, cap) > 0)
        snprintf(buf, cap, "devices present");
}

static void ocl_device_info(int dev, mlc_device_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "opencl");
    char why[256] = "";
    const mlc_cl_api *cl = mlc_cl_api_get(why, sizeof why);
    cl_device_id d[MAX_DEVICES];
    int n = cl ? list_devices(cl, d, MAX_DEVICES, why, sizeof why) : 0;
    if (dev < 0 || dev >= n) {
        snprintf(out->description, sizeof out->description, "%s", why[0] ? why : "no such device");
        return;
    }
    char name[128], drv[64], ver[64], ext[160];
    cl_platform_id plat = NULL;
    char pname[64] = "?";
    str_info(cl, d[dev], CL_DEVICE_NAME, name, sizeof name);
    str_info(cl, d[dev], CL_DRIVER_VERSION, drv, sizeof drv);
    str_info(cl, d[dev], CL_DEVICE_OPENCL_C_VERSION, ver, sizeof ver);
    if (cl->clGetDeviceInfo(d[dev], CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL) == CL_SUCCESS)
        cl->clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    notable_extensions(cl, d[dev], ext, sizeof ext);
    char opts[96], paths[96];
    choose_paths(cl, d[dev], opts, sizeof opts, paths, sizeof paths);
    snprintf(out->name, sizeof out->name, "%.63s", name);
    snprintf(out->description, sizeof out->description, "%.60s (%.40s, driver %.24s, %.24s), %u CUs, max alloc %.1f GiB, ext: %s",
             name, pname, drv, ver, u32_info(cl, d[dev], CL_DEVICE_MAX_COMPUTE_UNITS),
             (double)u64_info(cl, d[dev], CL_DEVICE_MAX_MEM_ALLOC_SIZE) / 1073741824.0, ext);
    const size_t k = strlen(out->description);
    snprintf(out->description + k, sizeof out->description - k, "; %s", paths);
    out->mem_total = u64_info(cl, d[dev], CL_DEVICE_GLOBAL_MEM_SIZE);
    out->caps = MLC_CAP_ASYNC;
}

/* ---------------------------------------------------------------- the program cache */

/* Built programs, kept for the process: PoCL compiles with LLVM (seconds), and a process
 * such as the test runner or conformance opens the same device many times. Guarded by
 * a mutex; entries are never freed (the driver reclaims them at exit). */
typedef struct prog_entry {
    cl_device_id dev;
    char options[256];
    cl_context context;
    cl_program program;
} prog_entry;

static pthread_mutex_t prog_mu = PTHREAD_MUTEX_INITIALIZER;
static prog_entry progs[MAX_DEVICES];
static int n_progs;

/* The first lines of a build log joined by " | ", for a one-line error. */
static void log_head(const char *log, char *buf, size_t cap)
{
    size_t k = 0;
    int lines = 0;
    buf[0] = 0;
    for (const char *p = log; *p && lines < 3 && k + 1 < cap; lines++) {
        size_t len = strcspn(p, "\n");
        if (len)
            k += (size_t)snprintf(buf + k, cap - k, "%s%.*s", k ? " | " : "", (int)len, p);
        else
            lines--;
        p += len + (p[len] == '\n');
    }
}

static mlc_status build_program(cl_ctx *c, const char *options, prog_entry *e, mlc_err *err)
{
    const mlc_cl_api *cl = c->cl;
    cl_int rc;
    char nb[48];
    e->context = cl->clCreateContext(NULL, 1, &c->dev, NULL, NULL, &rc);
    if (!e->context)
        return mlc_err_set(err, MLC_ERR_BACKEND, "opencl: cannot create a context on %s: %s", c->dev_name,
                           mlc_cl_error_name(rc, nb, sizeof nb));
    const char *src = (const char *)mlc_opencl_source;
    const size_t len = mlc_opencl_source_len;
    e->program = cl->clCreateProgramWithSource(e->context, 1, &src, &len, &rc);
    if (e->program && (rc = cl->clBuildProgram(e->program, 1, &c->dev, options, NULL, NULL)) == CL_SUCCESS)
        return MLC_OK;
    char head[320] = "";
    if (e->program) {
        size_t n = 0;
        cl->clGetProgramBuildInfo(e->program, c->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
        char *log = malloc(n + 1);
        if (log && cl->clGetProgramBuildInfo(e->program, c->dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
            log[n] = 0;
            log_head(log, head, sizeof head);
        }
        free(log);
        cl->clReleaseProgram(e->program);
    }
    cl->clReleaseContext(e->context);
    return mlc_err_set(err, MLC_ERR_BACKEND, "opencl: kernels failed to build on %s (%s): %s", c->dev_name,
                       mlc_cl_error_name(rc, nb, sizeof nb), head[0] ? head : "no build log");
}

/* The context and built program for c->dev with these options, from the cache or built. */
static mlc_status get_program(cl_ctx *c, const char *options, cl_program *prog, mlc_err *err)
{
    pthread_mutex_lock(&prog_mu);
    mlc_status s = MLC_OK;
    int i = 0;
    while (i < n_progs && (progs[i].dev != c->dev || strcmp(progs[i].options, options)))
        i++;
    if (i == n_progs) {
        prog_entry e = {.dev = c->dev};
        snprintf(e.options, sizeof e.options, "%s", options);
        if ((s = build_program(c, options, &e, err)) == MLC_OK && n_progs < MAX_DEVICES)
            progs[n_progs++] = e;
        else if (s == MLC_OK)
            i = -1; /* cache full: use this build once (its context is then never released) */
        if (s == MLC_OK && i == -1) {
            c->context = e.context;
            *prog = e.program;
        }
    }
    if (s == MLC_OK && i >= 0) {
        c->context = progs[i].context;
        *prog = progs[i].program;
    }
    pthread_mutex_unlock(&prog_mu);
    return s;
}

/* ---------------------------------------------------------------- instance */

static void ocl_destroy(void *ctx);

static mlc_status ocl_init(const mlc_backend_params *p, void **out, mlc_err *err)
{
    char why[256];
    const mlc_cl_api *cl = mlc_cl_api_get(why, sizeof why);
    if (!cl)
        return mlc_err_set(err, MLC_ERR_BACKEND, "opencl: %s", why);
    cl_device_id d[MAX_DEVICES];
    int n = list_devices(cl, d, MAX_DEVICES, why, sizeof why);
    if (n == 0)
        return mlc_err_set(err, MLC_ERR_BACKEND, "opencl: %s", why);
    if (p->device < 0 || p->device >= n)
        return mlc_err_set(err, MLC_ERR_ARG, "opencl: no device %d (%d present: see mlc-bench devices)", p->device, n);
    cl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "opencl: out of memory");
    c->cl = cl;
    c->dev = d[p->device];
    str_info(cl, c->dev, CL_DEVICE_NAME, c->dev_name, sizeof c->dev_name);
    c->mem_total = u64_info(cl, c->dev, CL_DEVICE_GLOBAL_MEM_SIZE);
    c->max_alloc = u64_info(cl, c->dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    size_t max_wg = 0;
    cl->clGetDeviceInfo(c->dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    mlc_status s;
    if (max_wg < MLC_CL_WG) {
        s = mlc_err_set(err, MLC_ERR_UNSUPPORTED, "opencl: %s: work groups of at most %zu items (%d needed)",
                        c->dev_name, max_wg, MLC_CL_WG);
        goto fail;
    }
    /* MLC_OPENCL_BUILD_OPTIONS: extra options for the device compiler (e.g. -cl-mad-enable). */
    const char *extra = getenv("MLC_OPENCL_BUILD_OPTIONS");
    char options[256], paths[96];
    choose_paths(cl, c->dev, paths, sizeof paths, c->paths, sizeof c->paths);
    snprintf(options, sizeof options,
             "%s-cl-fp32-correctly-rounded-divide-sqrt -DWG=%d -DTR=%d -DTT=%d -DMAX_HD=%d -DMV_ROWS=%d%s %.100s",
             strstr(paths, "-cl-std=") ? "" : "-cl-std=CL1.2 ", MLC_CL_WG, MLC_CL_TR, MLC_CL_TT, MLC_CL_MAX_HD,
             MLC_CL_MV_ROWS, paths, extra ? extra : "");
    cl_program prog;
    if ((s = get_program(c, options, &prog, err)))
        goto fail;
    cl_int rc;
    char nb[48];
    c->queue = cl->clCreateCommandQueue(c->context, c->dev, 0, &rc);
    if (!c->queue) {
        s = mlc_err_set(err, MLC_ERR_BACKEND, "opencl: cannot create a queue on %s: %s", c->dev_name,
                        mlc_cl_error_name(rc, nb, sizeof nb));
        goto fail;
    }
    static const char *const names[] = {
#define MLC_CL_K_NAME_(k) #k,
        MLC_CL_KERNELS(MLC_CL_K_NAME_)
#undef MLC_CL_K_NAME_
    };
    for (int k = 0; k < K_COUNT; k++)
        if (!(c->k[k] = cl->clCreateKernel(prog, names[k], &rc))) {
            s = mlc_err_set(err, MLC_ERR_BACKEND, "opencl: kernel %s on %s: %s", names[k], c->dev_name,
                            mlc_cl_error_name(rc, nb, sizeof nb));
            goto fail;
        }
    const cl_int zero[3] = {0};
    if ((s = mlc_cl_scratch(c, &c->errflag, sizeof zero, "the error flag")) ||
        (rc = cl->clEnqueueWriteBuffer(c->queue, c->errflag.mem, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL))) {
        s = mlc_err_set(err, MLC_ERR_BACKEND, "opencl: %s", s ? c->err.msg : "cannot clear the error flag");
        goto fail;
    }
    *out = c;
    return MLC_OK;
fail:
    ocl_destroy(c);
    return s;
}

static void release(cl_ctx *c, mlc_buffer *b)
{
    free(b->mirror);
    b->mirror = NULL;
    b->mirror_ok = false;
    if (b->mem) {
        c->cl->clReleaseMemObject(b->mem);
        c->mem_used -= b->size;
    }
    b->mem = NULL;
    b->size = 0;
}

static void ocl_destroy(void *ctx)
{
    cl_ctx *c = ctx;
    if (!c)
        return;
    if (c->queue)
        c->cl->clFinish(c->queue);
    release(c, &c->act);
    release(c, &c->scores);
    release(c, &c->errflag);
    for (int k = 0; k < K_COUNT; k++)
        if (c->k[k])
            c->cl->clReleaseKernel(c->k[k]);
    if (c->queue)
        c->cl->clReleaseCommandQueue(c->queue);
    free(c);
}

static void ocl_describe(void *ctx, char *buf, size_t cap)
{
    cl_ctx *c = ctx;
    snprintf(buf, cap, "%s; %s", c->dev_name, c->paths);
}

/* ---------------------------------------------------------------- memory */

/* A buffer of bytes (at least 4: OpenCL has no empty buffer), within the device's limits:
 * PoCL and others allocate lazily, so the limits are checked here to fail at allocation,
 * not at some later kernel. */
static mlc_status alloc_mem(cl_ctx *c, size_t bytes, mlc_buffer *b, const char *what, mlc_err *err)
{
    const size_t real = bytes < 4 ? 4 : bytes;
    if (real > c->max_alloc || c->mem_used + real > c->mem_total)
        return mlc_err_set(err, MLC_ERR_NOMEM,
                           "opencl: out of device memory for %s of %.1f MiB on %s (largest buffer %.0f MiB, %.0f of %.0f MiB in use)",
                           what, (double)bytes / 1048576.0, c->dev_name, (double)c->max_alloc / 1048576.0,
                           (double)c->mem_used / 1048576.0, (double)c->mem_total / 1048576.0);
    cl_int rc;
    b->mem = c->cl->clCreateBuffer(c->context, CL_MEM_READ_WRITE, real, NULL, &rc);
    if (!b->mem) {
        char nb[48];
        return mlc_err_set(err, oom_code(rc) ? MLC_ERR_NOMEM : MLC_ERR_BACKEND, "opencl: %s of %zu bytes on %s: %s%s",
                           what, bytes, c->dev_name, mlc_cl_error_name(rc, nb, sizeof nb),
                           oom_code(rc) ? " (out of device memory)" : "");
    }
    b->size = bytes;
    c->mem_used += bytes;
    return MLC_OK;
}

mlc_status mlc_cl_scratch(cl_ctx *c, mlc_buffer *b, size_t bytes, const char *what)
{
    if (c->err.status)
        return c->err.status;
    if (b->mem && b->size >= bytes)
        return MLC_OK;
    /* Queued kernels may still use the old buffer: OpenCL says a released cl_mem lives until
     * they finish, but PoCL 3.1 was seen reusing its memory early (corrupt activations in
     * one prefill run out of a few). Growth is rare (the first passes), so wait here. */
    cl_int rc = c->cl->clFinish(c->queue);
    if (rc)
        return mlc_cl_fail_code(c, "waiting for the queue", rc);
    release(c, b);
    mlc_err e = {0};
    mlc_status s = alloc_mem(c, bytes, b, what, &e);
    return s ? mlc_cl_fail(c, s, "%s", e.msg) : MLC_OK;
}

static mlc_status ocl_buffer_alloc(void *ctx, size_t bytes, mlc_buffer **out, mlc_err *err)
{
    cl_ctx *c = ctx;
    *out = NULL;
    mlc_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return mlc_err_set(err, MLC_ERR_NOMEM, "opencl: out of host memory");
    mlc_status s = alloc_mem(c, bytes, b, "a buffer", err);
    if (s) {
        free(b);
        return s;
    }
    *out = b;
    return MLC_OK;
}

static void ocl_buffer_free(void *ctx, mlc_buffer *b)
{
    if (!b)
        return;
    release(ctx, b);
    free(b);
}

static mlc_status ocl_upload(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes);

static mlc_status ocl_weights(void *ctx, const void *host, uint32_t type, int64_t ne0, int64_t ne1,
                             mlc_tensor *out, mlc_err *err)
{
    cl_ctx *c = ctx;
    const size_t rb = mlc_type_row_bytes(type, ne0);
    const int64_t shape[4] = {ne0, ne1, 1, 1};
    if (!rb || ne1 <= 0 || !mlc_cl_supports(c, MLC_OP_MATMUL, type, shape))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "opencl: weights of type %s [%lld, %lld]: not supported",
                           mlc_tensor_type_name(type), (long long)ne0, (long long)ne1);
    mlc_buffer *b;
    mlc_status s = ocl_buffer_alloc(c, rb * (size_t)ne1, &b, err);
    if (s)
        return s;
    /* A failed upload is returned here, not left sticky. */
    if ((s = ocl_upload(c, b, 0, host, rb * (size_t)ne1))) {
        ocl_buffer_free(c, b);
        mlc_err_set(err, s, "%s (weights %s [%lld, %lld])", c->err.msg, mlc_tensor_type_name(type),
                    (long long)ne0, (long long)ne1);
        c->err = (mlc_err){0};
        return s;
    }
    *out = mlc_tensor_make(b, 0, type, ne0, ne1, 1);
    return MLC_OK;
}

static void ocl_release_weights(void *ctx, mlc_tensor *w)
{
    ocl_buffer_free(ctx, w->buf);
    w->buf = NULL;
}

static mlc_status span_ok(cl_ctx *c, const char *what, const mlc_buffer *b, size_t offset, size_t bytes)
{
    if (c->err.status)
        return c->err.status;
    if (b && offset <= b->size && bytes <= b->size - offset)
        return MLC_OK;
    return mlc_cl_fail(c, MLC_ERR_ARG, "opencl: %s of %zu bytes at byte %zu: outside the buffer of %zu bytes",
                       what, bytes, offset, b ? b->size : 0);
}

/* Blocking: the caller may reuse src as soon as this returns. */
static mlc_status ocl_upload(void *ctx, mlc_buffer *dst, size_t offset, const void *src, size_t bytes)
{
    cl_ctx *c = ctx;
    mlc_status s = span_ok(c, "upload", dst, offset, bytes);
    if (s || !bytes)
        return s;
    cl_int rc = c->cl->clEnqueueWriteBuffer(c->queue, dst->mem, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
    if (rc)
        return mlc_cl_fail_code(c, "upload", rc);
    if (dst->size <= MLC_CL_MIRROR_MAX && (dst->mirror || (dst->mirror = calloc(1, dst->size)))) {
        memcpy(dst->mirror + offset, src, bytes);
        dst->mirror_ok = true;
    }
    return MLC_OK;
}

static mlc_status ocl_download(void *ctx, void *dst, mlc_buffer *src, size_t offset, size_t bytes)
{
    cl_ctx *c = ctx;
    mlc_status s = span_ok(c, "download", src, offset, bytes);
    if (s || !bytes)
        return s;
    cl_int rc = c->cl->clEnqueueReadBuffer(c->queue, src->mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
    return rc ? mlc_cl_fail_code(c, "download", rc) : MLC_OK;
}

/* What the kernels' error flag codes mean (ops.cl, quant.cl). */
static const char *flag_text(int code)
{
    static const char *const t[] = {"?", "get_rows: ids", "gather: rows", "kv_store: slot", "kv_store: pos",
                                    "attention: slot", "attention: pos"};
    return code > 0 && code < (int)(sizeof t / sizeof t[0]) ? t[code] : "?";
}

/* Waits for the queue, then reads (and clears) the kernels' error flag. */
static mlc_status ocl_sync(void *ctx, mlc_err *err)
{
    cl_ctx *c = ctx;
    cl_int rc = c->cl->clFinish(c->queue);
    if (rc)
        mlc_cl_fail_code(c, "running kernels", rc);
    cl_int f[3] = {0};
    if (!rc && (rc = c->cl->clEnqueueReadBuffer(c->queue, c->errflag.mem, CL_TRUE, 0, sizeof f, f, 0, NULL, NULL)))
        mlc_cl_fail_code(c, "reading the error flag", rc);
    if (f[0]) {
        mlc_cl_fail(c, MLC_ERR_RANGE, "opencl: %s[%d] = %d is out of range", flag_text(f[0]), f[1], f[2]);
        const cl_int zero[3] = {0};
        c->cl->clEnqueueWriteBuffer(c->queue, c->errflag.mem, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL);
    }
    mlc_status s = c->err.status;
    if (s)
        mlc_err_set(err, s, "%s", c->err.msg);
    c->err = (mlc_err){0};
    return s;
}

mlc_status mlc_cl_launch(cl_ctx *c, mlc_cl_kernel k, int dims, const size_t *global,
                         const size_t *local, int n, const mlc_cl_arg *args)
{
    if (c->err.status)
        return c->err.status;
    size_t g[3];
    for (int d = 0; d < dims; d++) {
        g[d] = global[d];
        if (local)
            g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
        if (g[d] == 0)
            return MLC_OK; /* nothing to do */
    }
    for (int i = 0; i < n; i++) {
        cl_int rc = c->cl->clSetKernelArg(c->k[k], (cl_uint)i, args[i].size, args[i].p);
        if (rc)
            return mlc_cl_fail_code(c, "setting a kernel argument", rc);
    }
    cl_int rc = c->cl->clEnqueueNDRangeKernel(c->queue, c->k[k], (cl_uint)dims, NULL, g, local, 0, NULL, NULL);
    return rc ? mlc_cl_fail_code(c, "launching a kernel", rc) : MLC_OK;
}

const mlc_backend_vt mlc_backend_opencl = {
    .name = "opencl",
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .no_device = ocl_no_device,
    .init = ocl_init,
    .destroy = ocl_destroy,
    .describe = ocl_describe,
    .supports = mlc_cl_supports,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .weights = ocl_weights,
    .release_weights = ocl_release_weights,
    .upload = ocl_upload,
    .download = ocl_download,
    .sync = ocl_sync,
    .get_rows = mlc_cl_get_rows,
    .matmul = mlc_cl_matmul,
    .rms_norm = mlc_cl_rms_norm,
    .rope = mlc_cl_rope,
    .kv_store = mlc_cl_kv_store,
    .attention = mlc_cl_attention,
    .swiglu = mlc_cl_swiglu,
    .geglu = mlc_cl_geglu,
    .add = mlc_cl_add,
    .mul = mlc_cl_mul,
    .scale = mlc_cl_scale,
    .gather = mlc_cl_gather,
};
