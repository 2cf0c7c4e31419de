/* tests/test_pool.c: the fork-join pool of kernels/cpu/pool.c.
 *
 * - mlc_pool_for covers every item exactly once, for odd item counts, chunk sizes and
 *   thread counts (more threads than cores too), over many jobs back to back, so a worker
 *   that wakes late and is left out of one job would show up as a double count in the
 *   next; each range is inside [0, n) and starts and ends on chunk boundaries (or n), and reported with a
 *   thread index inside the pool.
 * - mlc_pool_run calls every thread index exactly once with the pool's size.
 * - The two kinds of job interleave (a chunked job, then a fixed-share one, ...). */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../kernels/cpu/pool.h"

typedef struct for_job {
    atomic_int *hits; /* [n] */
    int64_t n, chunk;
    int size;
    atomic_int bad; /* ranges outside [0, n), longer than chunk, or a bad thread index */
} for_job;

static void count_range(void *arg, int ith, int64_t b, int64_t e)
{
    for_job *j = arg;
    if (ith < 0 || ith >= j->size || b < 0 || e > j->n || b >= e || b % j->chunk || (e % j->chunk && e != j->n))
        atomic_fetch_add(&j->bad, 1);
    for (int64_t i = b; i < e && i < j->n; i++)
        atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

typedef struct run_job {
    atomic_int calls[16];
    atomic_int bad;
    int size;
} run_job;

static void count_thread(void *arg, int ith, int nth)
{
    run_job *j = arg;
    if (ith < 0 || ith >= 16 || nth != j->size)
        atomic_fetch_add(&j->bad, 1);
    else
        atomic_fetch_add(&j->calls[ith], 1);
}

/* One chunked job over n items; every item counted once. */
static void check_for(mlc_pool *p, int64_t n, int64_t chunk, atomic_int *hits)
{
    for (int64_t i = 0; i < n; i++)
        atomic_store(&hits[i], 0);
    for_job j = {.hits = hits, .n = n, .chunk = chunk < 1 ? 1 : chunk, .size = mlc_pool_size(p)};
    atomic_init(&j.bad, 0);
    mlc_pool_for(p, n, chunk, count_range, &j);
    cr_assert_eq(atomic_load(&j.bad), 0, "n %lld chunk %lld: a range off the chunk boundaries or a bad thread index", (long long)n,
                 (long long)chunk);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&hits[i]), 1, "n %lld chunk %lld threads %d: item %lld counted %d times",
                     (long long)n, (long long)chunk, mlc_pool_size(p), (long long)i, atomic_load(&hits[i]));
}

static void check_run(mlc_pool *p)
{
    run_job j = {.size = mlc_pool_size(p)};
    for (int i = 0; i < 16; i++)
        atomic_init(&j.calls[i], 0);
    atomic_init(&j.bad, 0);
    mlc_pool_run(p, count_thread, &j);
    cr_assert_eq(atomic_load(&j.bad), 0);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(atomic_load(&j.calls[i]), i < j.size ? 1 : 0, "thread %d of %d ran %d times", i, j.size,
                     atomic_load(&j.calls[i]));
}

Test(pool, for_covers_every_item_once)
{
    const int threads[] = {1, 2, 3, 5, 8};
    const int64_t sizes[] = {1, 2, 3, 7, 63, 64, 65, 1001, 4099};
    const int64_t chunks[] = {0, 1, 3, 4, 16, 17, 5000};
    atomic_int *hits = malloc(4099 * sizeof *hits);
    cr_assert_not_null(hits);
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        mlc_pool *p = mlc_pool_new(threads[t]);
        cr_assert_not_null(p);
        cr_assert_eq(mlc_pool_size(p), threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++)
                check_for(p, sizes[s], chunks[c], hits);
        mlc_pool_free(p);
    }
    free(hits);
}

Test(pool, for_many_jobs_back_to_back)
{
    atomic_int *hits = malloc(257 * sizeof *hits);
    cr_assert_not_null(hits);
    mlc_pool *p = mlc_pool_new(3);
    cr_assert_not_null(p);
    /* Small jobs: the caller often runs out of chunks before a worker wakes. */
    for (int rep = 0; rep < 3000; rep++)
        check_for(p, 1 + rep % 257, 1 + rep % 5, hits);
    mlc_pool_free(p);
    free(hits);
}

Test(pool, for_empty_calls_nothing)
{
    mlc_pool *p = mlc_pool_new(2);
    cr_assert_not_null(p);
    for_job j = {.hits = NULL, .n = 0, .chunk = 4, .size = 2};
    atomic_init(&j.bad, 0);
    mlc_pool_for(p, 0, 4, count_range, &j);
    mlc_pool_for(p, -3, 4, count_range, &j);
    cr_assert_eq(atomic_load(&j.bad), 0, "a range was run for no items");
    mlc_pool_free(p);
}

Test(pool, run_calls_every_thread_once)
{
    const int threads[] = {1, 2, 3, 7};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        mlc_pool *p = mlc_pool_new(threads[t]);
        cr_assert_not_null(p);
        for (int rep = 0; rep < 50; rep++)
            check_run(p);
        mlc_pool_free(p);
    }
}

Test(pool, run_and_for_interleave)
{
    atomic_int *hits = malloc(333 * sizeof *hits);
    cr_assert_not_null(hits);
    mlc_pool *p = mlc_pool_new(4);
    cr_assert_not_null(p);
    for (int rep = 0; rep < 500; rep++) {
        check_for(p, 1 + rep % 333, 1 + rep % 9, hits);
        check_run(p);
    }
    mlc_pool_free(p);
    free(hits);
}
