/* membw.c: streaming-read bandwidth, see membw.h.
 *
 * Each thread sums its share as 64-byte vectors (four independent accumulators, so the loads,
 * not the adds, set the pace); the sum is kept so the compiler cannot drop the reads. The
 * buffer is written once before timing so every page is present, as the weights of a loaded
 * model are after the warmup. Best of several passes: the machine's other load only ever
 * slows a pass down. */
#include "membw.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256

typedef uint64_t v8u64 __attribute__((vector_size(64)));

typedef struct reader {
    const v8u64 *p;
    size_t n;        /* vectors */
    uint64_t sum;
} reader;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *read_share(void *arg)
{
    reader *r = arg;
    v8u64 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t i = 0;
    for (; i + 4 <= r->n; i += 4) {
        a0 += r->p[i];
        a1 += r->p[i + 1];
        a2 += r->p[i + 2];
        a3 += r->p[i + 3];
    }
    for (; i < r->n; i++)
        a0 += r->p[i];
    v8u64 s = (a0 + a1) + (a2 + a3);
    r->sum = 0;
    for (int k = 0; k < 8; k++)
        r->sum += s[k];
    return NULL;
}

/* One pass: seconds for all threads to read their shares, or a negative value. */
static double one_pass(const v8u64 *buf, size_t nvec, int n, reader *rd, pthread_t *tid)
{
    for (int t = 0; t < n; t++) {
        size_t b = nvec * (size_t)t / (size_t)n, e = nvec * (size_t)(t + 1) / (size_t)n;
        rd[t] = (reader){buf + b, e - b, 0};
    }
    double t0 = now_s();
    int started = 1;
    for (; started < n; started++)
        if (pthread_create(&tid[started], NULL, read_share, &rd[started]))
            break;
    read_share(&rd[0]);
    for (int t = 1; t < started; t++)
        pthread_join(tid[t], NULL);
    double dt = now_s() - t0;
    return started == n ? dt : -1;
}

double mlc_membw_read(int n_threads, size_t bytes, int passes)
{
    const int n = n_threads < 1 ? 1 : n_threads > MAX_THREADS ? MAX_THREADS : n_threads;
    const size_t nvec = bytes / sizeof(v8u64);
    void *mem = NULL;
    reader rd[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    double best = 0;
    if (!nvec || posix_memalign(&mem, 64, nvec * sizeof(v8u64)))
        return 0;
    memset(mem, 1, nvec * sizeof(v8u64));
    for (int p = 0; p < passes; p++) {
        double dt = one_pass(mem, nvec, n, rd, tid);
        if (dt <= 0)
            break;
        double gbs = (double)(nvec * sizeof(v8u64)) / dt / 1e9;
        best = gbs > best ? gbs : best;
    }
    volatile uint64_t sink = rd[0].sum; /* the reads have a consumer */
    (void)sink;
    free(mem);
    return best;
}
