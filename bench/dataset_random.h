/* dataset_random.h: random token ids and the datasets made of them, "random" and "prefix"
 * (dataset.h describes both), and the seeded streams every dataset draws from (shuffling,
 * random lengths, trace input_length ids). For dataset.c and dataset_format.c only. */
#ifndef MLC_BENCH_DATASET_RANDOM_H
#define MLC_BENCH_DATASET_RANDOM_H

#include "dataset.h"

/* splitmix64: small, fast, and good enough for sampling; one independent stream per use. */
typedef struct mlc_dataset_rng {
    uint64_t s;
} mlc_dataset_rng;

enum {
    MLC_DATASET_STREAM_SHUFFLE = 1,
    MLC_DATASET_STREAM_RANDOM = 2,
    MLC_DATASET_STREAM_TRACE = 3,
    MLC_DATASET_STREAM_PREFIX = 4
};

/* Stream `stream` of seed. */
mlc_dataset_rng mlc_dataset_rng_make(uint64_t seed, uint64_t stream);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t mlc_dataset_rng_below(mlc_dataset_rng *r, uint64_t n);

/* Ids to draw from: ids[0..n) when a tokenizer picked them, else [low, high). */
typedef struct mlc_dataset_idpool {
    int32_t *ids;
    int32_t n, low, high;
    bool ready;
} mlc_dataset_idpool;

/* Sets *p up from o's vocabulary size and tokenizer (dataset.h, "Random token ids") unless it
 * is ready already; who names the dataset in messages. Free with mlc_dataset_pool_free. */
mlc_status mlc_dataset_pool_init(mlc_dataset_idpool *p, const mlc_dataset_opts *o, const char *who,
                                 mlc_err *err);
void mlc_dataset_pool_free(mlc_dataset_idpool *p);
/* Fills p with n random ids from pool (and, with a tokenizer, their text). */
mlc_status mlc_dataset_random_ids(mlc_prompt *p, int32_t n, const mlc_dataset_idpool *pool,
                                  mlc_dataset_rng *r, const struct mlc_tokenizer *tok,
                                  const char *who, mlc_err *err);

/* The "random" and "prefix" datasets of o, appended to v. */
mlc_status mlc_dataset_load_random(const mlc_dataset_opts *o, mlc_prompt_list *v, mlc_err *err);
mlc_status mlc_dataset_load_prefix(const mlc_dataset_opts *o, mlc_prompt_list *v, mlc_err *err);

#endif
