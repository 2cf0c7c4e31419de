/* pool.c: fork-join thread pool, see pool.h. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before a worker sleeps: long enough to cover the gap between two ops of
 * one forward pass (microseconds), short enough not to burn a core between requests. A
 * pause costs ~140 cycles on recent Intel cores, so 2000 is ~0.1 ms. */
#define SPIN_ITERS 2000

typedef struct worker {
    mlc_pool *pool;
    int ith;
    pthread_t tid;
} worker;

struct mlc_pool {
    int n;
    worker *workers; /* n - 1 */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen;     /* bumped once per run; workers wait for a change */
    atomic_int pending;  /* workers still running the current job */
    atomic_int sleepers; /* workers blocked on wake */
    atomic_bool stop;
    mlc_pool_fn fn;
    void *arg;
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

static void *worker_main(void *arg)
{
    worker *w = arg;
    mlc_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_gen(p, seen);
        if (atomic_load(&p->stop))
            return NULL;
        p->fn(p->arg, w->ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
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

mlc_pool *mlc_pool_new(int n_threads)
{
    mlc_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)p->n, sizeof *p->workers);
    if (!p->workers) {
        mlc_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < p->n; i++) {
        p->workers[i] = (worker){p, i, 0};
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
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    kick(p);
    fn(arg, 0, p->n);
    /* Yield after a while: with more threads than free cores a worker may be descheduled. */
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        if (i < SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
}
