/* tests/bench_vecdot.c: micro-benchmark of the CPU dot kernels, run by hand (not part of
 * make test). For every weight type and every kernel set this CPU runs, one thread:
 *   dot  mem  GB/s of weight rows streamed from memory (a matrix far larger than the
 *             caches, as in token generation)
 *   dot  L2   GB/s with the weight matrix in L2 (the kernel's own speed)
 *   dot4 L2   GFLOP/s (2 flops per weight and activation row) of one weight row against 4
 *             activation rows, weights in L2 (the prompt-processing path; four dots for
 *             the scalar set, which has no dot4)
 *
 * Build and run from the repository root:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iengine/include tests/bench_vecdot.c \
 *      kernels/cpu/vecdot*.c engine/quant.c engine/quant_k.c engine/status.c -lm \
 *      -o build/bench-vecdot
 *   build/bench-vecdot
 * Options: -n N (row length, default 768), -m MB (memory matrix size, default 1024; 0
 * skips that column), -t TYPE (one type only), -s SECONDS (per measurement, default 0.3).
 * Times are the thread's CPU time, best of 3. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../kernels/cpu/vecdot.h"
#include "mlc/quant.h"

static double now(void)
{
    struct timespec ts;
    /* CPU time of this thread: the numbers stay meaningful on a loaded machine (wall time
     * would count the time slices other processes get). */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 42;
static float frand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / 16777216.0 * 2.0 - 1.0);
}

static volatile float sink;

/* 64-byte aligned, as the engine's buffers (GGUF tensor data, activation scratch). */
static void *amalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) {
        fprintf(stderr, "bench-vecdot: out of memory\n");
        exit(1);
    }
    return p;
}

/* Seconds per pass over rows rows of the matrix w with dot (best of 3 timings of at least
 * secs each). */
static double time_dot(mlc_dot_fn dot, int64_t n, const uint8_t *w, size_t rb, int64_t rows,
                       const uint8_t *a, double secs)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int64_t passes = 0;
        double t0 = now(), t;
        float acc = 0;
        do {
            for (int64_t r = 0; r < rows; r++)
                acc += dot(n, w + (size_t)r * rb, a);
            passes++;
        } while ((t = now() - t0) < secs);
        sink = acc;
        if (t / (double)passes < best)
            best = t / (double)passes;
    }
    return best;
}

/* dot4 NULL: four dots, as the engine does then. */
static double time_dot4(mlc_dot4_fn dot4, mlc_dot_fn dot, int64_t n, const uint8_t *w, size_t rb,
                        int64_t rows, const uint8_t *a, size_t astride, double secs)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int64_t passes = 0;
        double t0 = now(), t;
        float acc = 0, o[4];
        do {
            for (int64_t r = 0; r < rows; r++) {
                if (dot4) {
                    dot4(n, w + (size_t)r * rb, a, astride, o);
                } else {
                    for (int q = 0; q < 4; q++)
                        o[q] = dot(n, w + (size_t)r * rb, a + (size_t)q * astride);
                }
                acc += o[0];
            }
            passes++;
        } while ((t = now() - t0) < secs);
        sink = acc;
        if (t / (double)passes < best)
            best = t / (double)passes;
    }
    return best;
}

int main(int argc, char **argv)
{
    int64_t n = 768;
    double mem_mb = 1024, secs = 0.3;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n"))
            n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-m"))
            mem_mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-s"))
            secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            only = argv[i + 1];
    }
    if (n <= 0 || n % 256) {
        fprintf(stderr, "bench-vecdot: -n must be a positive multiple of 256\n");
        return 2;
    }
    const mlc_type types[] = {MLC_TYPE_F32,  MLC_TYPE_F16,  MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                              MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                              MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                              MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
    char isas[64];
    snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
    printf("n = %lld, memory matrix %.0f MB, 1 thread; ISAs: %s\n\n", (long long)n, mem_mb, isas);
    printf("%-5s %-7s %12s %12s %16s\n", "type", "isa", "dot mem GB/s", "dot L2 GB/s", "dot4 L2 GFLOP/s");

    const int64_t small_rows = 768; /* 768 x n: L2-resident for n = 768 in every type but F32 */
    float *x = malloc((size_t)(small_rows * n) * sizeof(float));
    float *xa = malloc((size_t)(4 * n) * sizeof(float));
    for (int64_t i = 0; i < small_rows * n; i++)
        x[i] = frand();
    for (int64_t i = 0; i < 4 * n; i++)
        xa[i] = frand();

    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const mlc_type t = types[ti];
        if (only && strcasecmp(only, mlc_type_name(t)))
            continue;
        const size_t rb = mlc_type_row_bytes(t, n);
        uint8_t *ws = amalloc(rb * (size_t)small_rows);
        for (int64_t r = 0; r < small_rows; r++)
            mlc_quantize_row(t, x + r * n, ws + (size_t)r * rb, n);
        const int64_t big_rows = (int64_t)(mem_mb * 1e6 / (double)rb) / small_rows * small_rows;
        uint8_t *wb = amalloc(rb * (size_t)big_rows);
        for (int64_t r = 0; r < big_rows; r += small_rows)
            memcpy(wb + (size_t)r * rb, ws, rb * (size_t)small_rows);

        char list[64];
        snprintf(list, sizeof list, "%s", isas);
        char *save = NULL;
        for (char *isa = strtok_r(list, " ", &save); isa; isa = strtok_r(NULL, " ", &save)) {
            mlc_cpu_kernels k;
            if (mlc_cpu_kernels_init(&k, isa, NULL) != MLC_OK)
                continue;
            const size_t ab = mlc_cpu_act_row_bytes(&k, t, n);
            uint8_t *a = amalloc(4 * ab);
            for (int r = 0; r < 4; r++)
                k.act[t](xa + r * n, a + (size_t)r * ab, n);
            double tm = big_rows ? time_dot(k.dot[t], n, wb, rb, big_rows, a, secs) : 0;
            double tl = time_dot(k.dot[t], n, ws, rb, small_rows, a, secs);
            double t4 = time_dot4(k.dot4[t], k.dot[t], n, ws, rb, small_rows, a, ab, secs);
            printf("%-5s %-7s %12.2f %12.2f %16.2f\n", mlc_type_name(t), isa,
                   tm > 0 ? (double)rb * (double)big_rows / tm * 1e-9 : 0.0,
                   (double)rb * (double)small_rows / tl * 1e-9,
                   2.0 * (double)n * 4.0 * (double)small_rows / t4 * 1e-9);
            fflush(stdout);
            free(a);
        }
        free(ws);
        free(wb);
    }
    free(x);
    free(xa);
    return 0;
}
