/* pool.c: fork-join thread pool, see pool.h.
 *
 * Jobs are numbered by a generation counter. Each worker records in `taken` the last
 * generation it is accounted for: job g starts with every worker's taken at g - 1, and
 * whoever moves it to g first decides whether the worker runs job g (the worker) or is
 * left out of it (the caller, once a chunked job has no chunks left). So a worker that
 * wakes late never touches a job that has already returned, and the caller waits only for
 * workers that are really running. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before a waiting thread sleeps: long enough to cover the gap between two
 * ops of one forward pass (microseconds), short enough not to burn a core between requests
 * or while another thread finishes a long op. A pause costs 60-140 cycles on recent x86
 * cores, so 2000 is 0.04-0.1 ms. */
#define SPIN_ITERS 2000

typedef struct worker {
    mlc_pool *pool;
    int ith;
    pthread_t tid;
    atomic_uint taken; /* the last generation this worker ran or was left out of */
} worker;

struct mlc_pool {
    int n;
    worker *workers; /* [n], entry 0 unused (the caller) */
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* workers: a new generation */
    pthread_cond_t done;  /* caller: pending reached 0 */
    atomic_uint gen;      /* bumped once per job; workers wait for a change */
    atomic_int pending;   /* workers not yet finished with (or left out of) the current job */
    atomic_int sleepers;  /* workers blocked on wake */
    atomic_bool waiting;  /* the caller is blocked on done */
    atomic_bool stop;
    /* the current job: fn (all threads, fixed shares) or rfn (chunks from next) */
    mlc_pool_fn fn;
    mlc_pool_range_fn rfn;
    void *arg;
    int64_t n_items, chunk;
    atomic_llong next; /* first item not yet handed out */
};

static unsigned wait_gen(mlc_pool *p, unsigned seen)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned g;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

/* Chunks from the shared counter until none are left. */
static void run_chunks(mlc_pool *p, int ith)
{
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
        if (b >= p->n_items)
            return;
        int64_t e = p->n_items - b > p->chunk ? b + p->chunk : p->n_items;
        p->rfn(p->arg, ith, b, e);
    }
}

/* One worker fewer in the current job; the last one wakes a sleeping caller. */
static void finish(mlc_pool *p)
{
    if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->waiting)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    mlc_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_gen(p, seen);
        if (atomic_load(&p->stop))
            return NULL;
        unsigned prev = seen - 1;
        if (!atomic_compare_exchange_strong(&w->taken, &prev, seen))
            continue; /* left out of this job: the caller has counted it */
        if (p->rfn)
            run_chunks(p, w->ith);
        else
            p->fn(p->arg, w->ith, p->n);
        finish(p);
    }
}

static void kick(mlc_pool *p)
{
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        /* Taking the mutex orders the bump before a sleeper's re-check. */
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Waits for every worker still in the job: spins, then sleeps on done. */
static void join(mlc_pool *p)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->waiting, true);
    while (atomic_load(&p->pending) > 0)
        pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->waiting, false);
    pthread_mutex_unlock(&p->mu);
}

mlc_pool *mlc_pool_new(int n_threads)
{
    mlc_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc((size_t)p->n, sizeof *p->workers);
    if (!p->workers) {
        p->n = 1;
        mlc_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < p->n; i++) {
        p->workers[i].pool = p;
        p->workers[i].ith = i;
        atomic_init(&p->workers[i].taken, 0);
        if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]) != 0) {
            p->n = i; /* only threads 1..i-1 exist */
            mlc_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void mlc_pool_free(mlc_pool *p)
{
    if (!p)
        return;
    if (p->workers) {
        atomic_store(&p->stop, true);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->workers[i].tid, NULL);
    }
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int mlc_pool_size(const mlc_pool *p)
{
    return p->n;
}

void mlc_pool_run(mlc_pool *p, mlc_pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->rfn = NULL;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    kick(p);
    fn(arg, 0, p->n);
    join(p);
}

void mlc_pool_for(mlc_pool *p, int64_t n, int64_t chunk, mlc_pool_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (chunk < 1)
        chunk = 1;
    if (p->n == 1 || chunk >= n) {
        fn(arg, 0, 0, n);
        return;
    }
    p->fn = NULL;
    p->rfn = fn;
    p->arg = arg;
    p->n_items = n;
    p->chunk = chunk;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    kick(p);
    run_chunks(p, 0);
    /* No chunks left: workers that have not claimed this job yet stay out of it. */
    const unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed);
    for (int i = 1; i < p->n; i++) {
        unsigned prev = g - 1;
        if (atomic_compare_exchange_strong(&p->workers[i].taken, &prev, g))
            atomic_fetch_sub(&p->pending, 1);
    }
    join(p);
}
