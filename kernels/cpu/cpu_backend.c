/* cpu_backend.c: the CPU backend: device discovery (one device: this machine). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

static int cpu_device_count(void)
{
    return 1;
}

/* "model name : AMD EPYC ..." from /proc/cpuinfo; "unknown CPU" elsewhere. */
static void cpu_model_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon)
            continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static void cpu_device_describe(int dev, char *buf, size_t cap)
{
    (void)dev;
    char model[256];
    cpu_model_name(model, sizeof model);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *simd = "";
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    simd = __builtin_cpu_supports("avx512f") ? "avx512f avx2 fma"
           : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? "avx2 fma"
                                                                                : "scalar";
#endif
    snprintf(buf, cap, "%s, %ld threads, simd: %s", model, n, *simd ? simd : "scalar");
}

const mlc_backend_vt mlc_backend_cpu = {
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_describe = cpu_device_describe,
};
