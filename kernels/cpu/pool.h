/* pool.h: a fixed pthread pool that runs one function on all threads at once (fork-join).
 *
 * The forward pass issues dozens of small ops per token, so the join cost matters more than
 * anything else here: workers spin briefly on an atomic generation counter before sleeping
 * on a condition variable, and the caller runs share 0 itself. */
#ifndef MLC_CPU_POOL_H
#define MLC_CPU_POOL_H

typedef struct mlc_pool mlc_pool;

/* fn(arg, ith, nth): thread ith of nth does its share. */
typedef void (*mlc_pool_fn)(void *arg, int ith, int nth);

/* n_threads counts the caller; 1 means no worker threads. NULL on failure. */
mlc_pool *mlc_pool_new(int n_threads);
void mlc_pool_free(mlc_pool *p);
int mlc_pool_size(const mlc_pool *p);
/* Runs fn on every thread and returns when all have finished. Not reentrant. */
void mlc_pool_run(mlc_pool *p, mlc_pool_fn fn, void *arg);

#endif
