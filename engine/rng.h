/* rng.h: the seeded random numbers of the suites (conformance inputs, test fixtures):
 * splitmix64, so a seed gives the same stream on every machine and build. */
#ifndef MLC_RNG_H
#define MLC_RNG_H

#include <stdint.h>

/* The next 64 bits of the stream whose state is *s. */
uint64_t mlc_rng_next(uint64_t *s);
/* Uniform in (0, 1), never 0 or 1 (safe for log). */
double mlc_rng_unit(uint64_t *s);
/* Standard normal (Box-Muller). */
double mlc_rng_gauss(uint64_t *s);
/* Uniform in [0, n), n > 0. */
int64_t mlc_rng_below(uint64_t *s, int64_t n);

#endif
