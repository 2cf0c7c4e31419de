/* load.h: the load shapes of `mlc-bench run` (DESIGN.md, Harness): load points (a closed
 * loop of N requests in flight, an open loop at a rate with an optional cap on requests in
 * flight, a trace on its own clock), the open loop's arrival process and the sweep's rates.
 *
 * Arrivals of an open loop at rate R requests/s are a renewal process whose gaps are
 *   poisson:  exponential with mean 1/R (gamma with shape 1)
 *   gamma:    gamma with shape k (--burstiness) and scale 1/(R k): mean 1/R whatever k,
 *             coefficient of variation 1/sqrt(k) (k < 1 burstier than Poisson, k > 1 smoother)
 *   constant: exactly 1/R
 * drawn from a seeded generator, so a seed gives the same schedule on every machine. */
#ifndef MLC_BENCH_LOAD_H
#define MLC_BENCH_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MLC_LOAD_MAX_POINTS 32
#define MLC_LOAD_MAX_CONCURRENCY 65536 /* requests in flight (one connection each) */
#define MLC_LOAD_MIN_RATE 1e-3         /* requests/s: at most 1000 s between arrivals on average */
#define MLC_LOAD_MAX_RATE 1e6

typedef enum mlc_load_kind { MLC_LOAD_CONCURRENCY, MLC_LOAD_RATE, MLC_LOAD_TRACE } mlc_load_kind;

typedef struct mlc_load_point {
    mlc_load_kind kind;
    int concurrency;   /* closed loop size, or the cap of an open loop or a trace (0: none) */
    double rate;       /* requests/s (INFINITY: all at once) */
    char name[32];     /* "c=4", "r=2.5", "trace", "sync", "max" */
} mlc_load_point;

/* The arrival process of one open-loop load point. */
typedef struct mlc_arrivals {
    double rate;       /* requests/s; INFINITY: every gap 0 */
    double shape;      /* gamma shape k (1: Poisson) */
    bool constant;     /* every gap exactly 1/rate */
    uint64_t rng;
} mlc_arrivals;

/* seed is the run's --seed; stream tells load points apart (each has its own sequence). */
void mlc_arrivals_init(mlc_arrivals *a, double rate, double shape, bool constant, uint64_t seed,
                       int64_t stream);
/* Seconds from one arrival to the next. */
double mlc_arrivals_next_gap(mlc_arrivals *a);

/* Shard `index` of `count` (run --shard I/N, 0 <= I < N) takes every N-th request of the
 * dataset order, from the I-th: its k-th request is request k N + I. An open-loop shard
 * draws its own arrival stream at rate/N; the N streams are independent (each seeded from
 * the run's seed and the shard index), so their union is a renewal process of the full rate
 * (for Poisson, exactly a Poisson process at the full rate). count <= 1: not sharded. */
#define MLC_SHARD_MAX 4096
/* How many of requests [0, total) shard index takes. */
int64_t mlc_shard_share(int64_t total, int index, int count);
/* The dataset/request number of the shard's k-th request. */
int64_t mlc_shard_request(int64_t k, int index, int count);
/* mlc_arrivals_init for the shard: rate/count, its own stream (the same as
 * mlc_arrivals_init when count <= 1). */
void mlc_shard_arrivals(mlc_arrivals *a, double rate, double shape, bool constant, uint64_t seed, int64_t stream,
                        int index, int count);
/* Parses "I/N" (0 <= I < N <= MLC_SHARD_MAX); false after one line on stderr. */
bool mlc_shard_parse(const char *v, int *index, int *count);

/* One comma list of --concurrency (integers in [1, MLC_LOAD_MAX_CONCURRENCY]) or --rate
 * (rates in [MLC_LOAD_MIN_RATE, MLC_LOAD_MAX_RATE] or "inf") items, at most
 * MLC_LOAD_MAX_POINTS, none empty; false after one line on stderr naming flag and item. */
bool mlc_load_parse_list(const char *flag, const char *v, double *out, int *n, bool rates);

/* The load points of --concurrency/--rate lists or a trace (timed): a trace is one point
 * capped at the first concurrency; rates are one point each, capped at the one concurrency
 * (a list is refused); otherwise one closed loop per concurrency (default 1). False after
 * one line on stderr. */
bool mlc_load_plan(const double *conc, int n_conc, const double *rates, int n_rate, bool timed,
                   mlc_load_point *points, int *n_points);
/* The first two points of --sweep: synchronous (one request at a time), then maximum
 * throughput (every request at once). */
void mlc_load_plan_sweep(mlc_load_point *points, int *n_points);
/* The n rates of a sweep between the synchronous and the maximum throughput (requests/s),
 * evenly spaced strictly between the lower and the higher of the two, ascending, appended as
 * open-loop points (at most MLC_LOAD_MAX_POINTS in all). False, with the reason in why, when
 * a throughput is not a positive finite rate (no request of that point succeeded), or when the
 * rates would fall below MLC_LOAD_MIN_RATE: no rate is appended then. */
bool mlc_load_sweep_rates(double r_sync, double r_max, int n, mlc_load_point *points, int *n_points,
                          char *why, size_t cap);

#endif
