/* load.c: load points, the open loop's arrival process and the sweep's rates (load.h). */
#include "load.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mlc_arrivals_init(mlc_arrivals *a, double rate, double shape, bool constant, uint64_t seed,
                       int64_t stream)
{
    *a = (mlc_arrivals){.rate = rate, .shape = shape > 0 ? shape : 1, .constant = constant,
                        .rng = seed * 0x9e3779b97f4a7c15ull + (uint64_t)stream + 1};
}

/* Uniform in (0, 1): the top 53 bits of a 64-bit LCG step, never 0 (its log is taken). */
static double uniform(uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(*rng >> 11) + 1) / 9007199254740993.0;
}

/* Gamma(k, 1) by Marsaglia and Tsang's squeeze (ACM TOMS 26(3), 2000): for k >= 1 draw
 * d (1 + c x)^3 with x standard normal, accepted with the log test; for k < 1 draw
 * Gamma(k + 1) and scale by U^(1/k). */
static double gamma_unit(double k, uint64_t *rng)
{
    double d = (k < 1 ? k + 1 : k) - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x, v;
        do {
            double u1 = uniform(rng), u2 = uniform(rng);
            x = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2); /* Box-Muller */
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        if (log(uniform(rng)) < 0.5 * x * x + d - d * v + d * log(v))
            return k < 1 ? d * v * pow(uniform(rng), 1 / k) : d * v;
    }
}

double mlc_arrivals_next_gap(mlc_arrivals *a)
{
    if (isinf(a->rate))
        return 0;
    if (a->constant)
        return 1.0 / a->rate;
    /* scale 1/(R k): mean k * scale = 1/R */
    return gamma_unit(a->shape, &a->rng) / (a->rate * a->shape);
}

/* One --concurrency item: an integer in [1, MLC_LOAD_MAX_CONCURRENCY], digits only. */
static bool parse_conc(const char *t, double *out)
{
    char *end;
    errno = 0;
    long v = t[0] >= '0' && t[0] <= '9' ? strtol(t, &end, 10) : 0;
    if (v < 1 || errno || *end || v > MLC_LOAD_MAX_CONCURRENCY)
        return false;
    *out = (double)v;
    return true;
}

/* One --rate item: a finite rate in [MIN_RATE, MAX_RATE], or "inf" (all at once). */
static bool parse_rate(const char *t, double *out)
{
    if (!strcmp(t, "inf")) {
        *out = INFINITY;
        return true;
    }
    char *end;
    errno = 0;
    double v = (t[0] >= '0' && t[0] <= '9') || t[0] == '.' ? strtod(t, &end) : NAN;
    if (!(v >= MLC_LOAD_MIN_RATE && v <= MLC_LOAD_MAX_RATE) || errno || *end)
        return false;
    *out = v;
    return true;
}

bool mlc_load_parse_list(const char *flag, const char *v, double *out, int *n, bool rates)
{
    *n = 0;
    for (const char *p = v;; p++) {
        size_t len = strcspn(p, ",");
        char item[64];
        if (*n == MLC_LOAD_MAX_POINTS) {
            fprintf(stderr, "mlc-bench run: %s: '%s' has more than %d items\n", flag, v, MLC_LOAD_MAX_POINTS);
            return false;
        }
        if (len == 0) {
            fprintf(stderr, "mlc-bench run: %s: '%s' has an empty item\n", flag, v);
            return false;
        }
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (len >= sizeof item || !(rates ? parse_rate(item, &out[*n]) : parse_conc(item, &out[*n]))) {
            if (rates)
                fprintf(stderr, "mlc-bench run: %s: '%.*s' is not a rate in [%g, %g] requests/s or inf\n",
                        flag, (int)len, p, MLC_LOAD_MIN_RATE, MLC_LOAD_MAX_RATE);
            else
                fprintf(stderr, "mlc-bench run: %s: '%.*s' is not an integer in [1, %d]\n", flag,
                        (int)len, p, MLC_LOAD_MAX_CONCURRENCY);
            return false;
        }
        ++*n;
        p += len;
        if (!*p)
            return true;
    }
}

static void name_rate(mlc_load_point *p, const char *fmt)
{
    if (isinf(p->rate))
        snprintf(p->name, sizeof p->name, "r=inf");
    else
        snprintf(p->name, sizeof p->name, fmt, p->rate);
}

bool mlc_load_plan(const double *conc, int n_conc, const double *rates, int n_rate, bool timed,
                   mlc_load_point *points, int *n_points)
{
    *n_points = 0;
    int cap = n_conc ? (int)conc[0] : 0;
    if (timed) {
        points[(*n_points)++] = (mlc_load_point){MLC_LOAD_TRACE, cap, 0, "trace"};
        return true;
    }
    if (n_rate) {
        if (n_conc > 1) {
            fprintf(stderr, "mlc-bench run: with --rate, --concurrency is one cap, not a list\n");
            return false;
        }
        for (int i = 0; i < n_rate; i++) {
            mlc_load_point *p = &points[(*n_points)++];
            *p = (mlc_load_point){MLC_LOAD_RATE, cap, rates[i], ""};
            name_rate(p, "r=%g");
        }
        return true;
    }
    for (int i = 0; i < (n_conc ? n_conc : 1); i++) {
        mlc_load_point *p = &points[(*n_points)++];
        *p = (mlc_load_point){MLC_LOAD_CONCURRENCY, n_conc ? (int)conc[i] : 1, 0, ""};
        snprintf(p->name, sizeof p->name, "c=%d", p->concurrency);
    }
    return true;
}

void mlc_load_plan_sweep(mlc_load_point *points, int *n_points)
{
    points[0] = (mlc_load_point){MLC_LOAD_CONCURRENCY, 1, 0, "sync"};
    points[1] = (mlc_load_point){MLC_LOAD_RATE, 0, INFINITY, "max"};
    *n_points = 2;
}

bool mlc_load_sweep_rates(double r_sync, double r_max, int n, mlc_load_point *points, int *n_points,
                          char *why, size_t cap)
{
    if (!(r_sync > 0 && isfinite(r_sync) && r_max > 0 && isfinite(r_max))) {
        snprintf(why, cap, "the sweep stops: no request succeeded at %s, so there is no rate to sweep",
                 r_sync > 0 && isfinite(r_sync) ? "max" : "sync");
        return false;
    }
    double lo = fmin(r_sync, r_max), hi = fmax(r_sync, r_max);
    if (lo + (hi - lo) / (n + 1) < MLC_LOAD_MIN_RATE) {
        snprintf(why, cap, "the sweep stops: its rates would fall below %g requests/s", MLC_LOAD_MIN_RATE);
        return false;
    }
    for (int i = 1; i <= n && *n_points < MLC_LOAD_MAX_POINTS; i++) {
        mlc_load_point *p = &points[(*n_points)++];
        *p = (mlc_load_point){MLC_LOAD_RATE, 0, lo + (hi - lo) * i / (n + 1), ""};
        name_rate(p, "r=%.3g");
    }
    return true;
}

/* ---- shards ---------------------------------------------------------------------------- */

int64_t mlc_shard_share(int64_t total, int index, int count)
{
    if (count <= 1)
        return total;
    return total > index ? (total - index + count - 1) / count : 0;
}

int64_t mlc_shard_request(int64_t k, int index, int count)
{
    return count <= 1 ? k : k * count + index;
}

/* SplitMix64's finaliser: nearby inputs give unrelated outputs, so shards seeded from
 * (seed, index) do not share the LCG's correlated neighbouring states. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mlc_shard_arrivals(mlc_arrivals *a, double rate, double shape, bool constant, uint64_t seed, int64_t stream,
                        int index, int count)
{
    if (count <= 1) {
        mlc_arrivals_init(a, rate, shape, constant, seed, stream);
        return;
    }
    mlc_arrivals_init(a, rate / count, shape, constant, mix64(seed ^ mix64((uint64_t)index + 1)), stream);
}

bool mlc_shard_parse(const char *v, int *index, int *count)
{
    char *end = NULL;
    errno = 0;
    long i = strtol(v, &end, 10);
    long n = *end == '/' && end > v ? strtol(end + 1, &end, 10) : -1;
    if (errno || *end || n < 1 || n > MLC_SHARD_MAX || i < 0 || i >= n || !strchr(v, '/') || v[0] == '-') {
        fprintf(stderr, "mlc-bench run: --shard '%s': expected I/N with 0 <= I < N <= %d (e.g. 0/4)\n", v,
                MLC_SHARD_MAX);
        return false;
    }
    *index = (int)i;
    *count = (int)n;
    return true;
}
