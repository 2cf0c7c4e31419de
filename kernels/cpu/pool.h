/* pool.h: a fixed pthread pool that runs one job on all threads at once (fork-join).
 *
 * The forward pass issues dozens of small ops per token, so the join cost matters more than
 * anything else here: workers spin briefly on an atomic generation counter before sleeping
 * on a condition variable, and the caller takes part in every job. A caller that has
 * finished its part spins briefly too, then sleeps until the last worker wakes it, so an
 * idle thread never holds a core that another thread (of this pool or not) could use. */
#ifndef MLC_CPU_POOL_H
#define MLC_CPU_POOL_H

#include <stdint.h>

typedef struct mlc_pool mlc_pool;

/* fn(arg, ith, nth): thread ith of nth does its share. */
typedef void (*mlc_pool_fn)(void *arg, int ith, int nth);
/* fn(arg, ith, begin, end): thread ith (0 <= ith < pool size, for per-thread scratch) does
 * items [begin, end). */
typedef void (*mlc_pool_range_fn)(void *arg, int ith, int64_t begin, int64_t end);

/* n_threads counts the caller; 1 means no worker threads. NULL on failure. */
mlc_pool *mlc_pool_new(int n_threads);
void mlc_pool_free(mlc_pool *p);
int mlc_pool_size(const mlc_pool *p);
/* Runs fn on every thread and returns when all have finished. Not reentrant. */
void mlc_pool_run(mlc_pool *p, mlc_pool_fn fn, void *arg);
/* Runs fn over items [0, n) in chunks of `chunk` items handed out in order from a shared
 * counter (every range starts at a multiple of chunk and ends at one or at n; one thread
 * alone, or a chunk of n items or more, gets [0, n) in one call): a thread that runs slower or is descheduled takes
 * fewer chunks, so the threads finish within one chunk of each other on any machine load.
 * Every item is covered exactly once; a worker that has not started by the time the caller
 * runs out of chunks is left out of the job rather than waited for. Not reentrant. */
void mlc_pool_for(mlc_pool *p, int64_t n, int64_t chunk, mlc_pool_range_fn fn, void *arg);

#endif
