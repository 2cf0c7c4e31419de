/* rng.c: splitmix64 and what the suites draw from it (see rng.h). */
#include "rng.h"

#include <math.h>

uint64_t mlc_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double mlc_rng_unit(uint64_t *s)
{
    return ((double)(mlc_rng_next(s) >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */
}

double mlc_rng_gauss(uint64_t *s)
{
    const double u = mlc_rng_unit(s), v = mlc_rng_unit(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int64_t mlc_rng_below(uint64_t *s, int64_t n)
{
    return (int64_t)(mlc_rng_next(s) % (uint64_t)n);
}
