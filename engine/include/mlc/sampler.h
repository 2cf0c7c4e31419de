/* mlc/sampler.h: token sampling from a logits vector, as llama.cpp's default chain.
 *
 * One sample, given logits[n_vocab] (one float per token id):
 *   temperature <= 0   greedy: mlc_argmax(logits), the generator is not advanced.
 *   otherwise          the candidates are filtered in llama.cpp's order
 *     top_k            keep the k highest logits (0 = off; k >= candidates = no-op)
 *     top_p            softmax over what is left; keep the shortest prefix, by descending
 *                      probability, whose cumulative probability is >= top_p (>= 1 kept;
 *                      top_p = 1 = off)
 *     min_p            keep p >= min_p * p_max (0 = off)
 *   then the survivors' logits are divided by temperature, softmaxed, and one is drawn with
 *   the sampler's own generator (xoshiro256** seeded through splitmix64).
 *
 * Candidates are ordered by logit descending, token id ascending on ties, so the filters
 * keep a well-defined set: top_k = 1 and a tiny top_p are exactly greedy, ties included.
 * Probabilities for top_p and min_p are taken at temperature 1 (temperature comes last).
 *
 * Special values: NaN is treated as -inf; -inf tokens have probability 0 and are never drawn
 * unless every logit is -inf or NaN (then the result is mlc_argmax's). When some logits are
 * +inf the draw is uniform among those.
 *
 * A sampler owns scratch for n_vocab candidates, allocated by mlc_sampler_new: sampling
 * allocates nothing. A sampler is not thread-safe; use one per sequence. */
#ifndef MLC_SAMPLER_H
#define MLC_SAMPLER_H

#include <stdint.h>

#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seed of mlc_sampler_default_params(): fixed, so default runs are reproducible. */
#define MLC_SAMPLER_DEFAULT_SEED 42u

typedef struct mlc_sampler_params {
    float temperature; /* >= 0, finite; <= 0 means greedy */
    int32_t top_k;     /* >= 0; 0 = off */
    float top_p;       /* in (0, 1]; 1 = off */
    float min_p;       /* in [0, 1]; 0 = off */
    uint64_t seed;
} mlc_sampler_params;

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, and
 * MLC_SAMPLER_DEFAULT_SEED. */
mlc_sampler_params mlc_sampler_default_params(void);

/* MLC_OK, or MLC_ERR_ARG with a one-line message naming the first bad field. */
mlc_status mlc_sampler_params_check(const mlc_sampler_params *p, mlc_err *err);

typedef struct mlc_sampler mlc_sampler;

/* Checks p, allocates the sampler and its scratch for n_vocab (> 0) candidates. */
mlc_status mlc_sampler_new(const mlc_sampler_params *p, int32_t n_vocab, mlc_sampler **out,
                           mlc_err *err);
void mlc_sampler_free(mlc_sampler *s); /* NULL is a no-op */

/* Token id in [0, n_vocab) drawn from logits[n_vocab]; -1 when s or logits is NULL. */
int32_t mlc_sampler_sample(mlc_sampler *s, const float *logits);

/* Restarts the generator: the same seed gives the same sequence of samples. */
void mlc_sampler_reset(mlc_sampler *s, uint64_t seed);

/* Index of the largest of x[0..n): the lowest index on ties; NaN is never chosen over a
 * number (-inf included). 0 when all are NaN, -1 when n <= 0 or x is NULL. */
int32_t mlc_argmax(const float *x, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
