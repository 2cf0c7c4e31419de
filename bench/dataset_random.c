/* dataset_random.c: random token ids and the datasets made of them, "random" and "prefix"
 * (dataset.h describes both; dataset_random.h the parts the other dataset files use). */
#include "dataset_random.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/tokenizer.h"

/* ------------------------------------------------------------------ random numbers */

static uint64_t rng_next(mlc_dataset_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

mlc_dataset_rng mlc_dataset_rng_make(uint64_t seed, uint64_t stream)
{
    mlc_dataset_rng r = {seed ^ (stream * 0xD1B54A32D192ED03ull)};
    rng_next(&r);
    return r;
}

/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t mlc_dataset_rng_below(mlc_dataset_rng *r, uint64_t n)
{
    uint64_t lim = -n % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= lim)
            return x % n;
    }
}

/* ------------------------------------------------------------------ random token ids */

mlc_status mlc_dataset_pool_init(mlc_dataset_idpool *p, const mlc_dataset_opts *o, const char *who,
                                 mlc_err *err)
{
    if (p->ready)
        return MLC_OK;
    int32_t n_vocab = o->n_vocab;
    if (o->tok) {
        int32_t tv = mlc_tokenizer_n_vocab(o->tok);
        n_vocab = n_vocab > 0 && n_vocab < tv ? n_vocab : tv;
    }
    if (n_vocab <= MLC_DATASET_RANDOM_LOW)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "%s: random token ids need a vocabulary size over %d (n_vocab %d) "
                           "or a tokenizer",
                           who, MLC_DATASET_RANDOM_LOW, (int)n_vocab);
    p->low = MLC_DATASET_RANDOM_LOW;
    p->high = n_vocab;
    if (o->tok) {
        p->ids = malloc((size_t)n_vocab * sizeof *p->ids);
        if (!p->ids)
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
        for (int32_t id = p->low; id < n_vocab; id++)
            if (mlc_tokenizer_token_type(o->tok, id) == MLC_TOKEN_NORMAL &&
                !mlc_tokenizer_is_eog(o->tok, id))
                p->ids[p->n++] = id;
        if (p->n == 0)
            return mlc_err_set(err, MLC_ERR_ARG, "%s: the tokenizer has no normal tokens to draw",
                               who);
    }
    p->ready = true;
    return MLC_OK;
}

void mlc_dataset_pool_free(mlc_dataset_idpool *p)
{
    free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Fills p with n random ids (and, with a tokenizer, their text). */
mlc_status mlc_dataset_random_ids(mlc_prompt *p, int32_t n, const mlc_dataset_idpool *pool,
                                  mlc_dataset_rng *r, const struct mlc_tokenizer *tok,
                                  const char *who, mlc_err *err)
{
    p->ids = malloc((size_t)n * sizeof *p->ids);
    if (!p->ids)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
    for (int32_t i = 0; i < n; i++)
        p->ids[i] = pool->ids
                        ? pool->ids[mlc_dataset_rng_below(r, (uint64_t)pool->n)]
                        : pool->low +
                              (int32_t)mlc_dataset_rng_below(r, (uint64_t)(pool->high - pool->low));
    p->n_ids = n;
    p->input_tokens = n;
    if (tok) {
        char *s = NULL;
        size_t len = 0;
        mlc_status st = mlc_detokenize(tok, p->ids, (size_t)n, false, &s, &len, err);
        if (st != MLC_OK)
            return st;
        p->text = mlc_dataset_utf8_sanitize(s, len);
        free(s);
        if (!p->text)
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
    }
    return MLC_OK;
}

/* A length around len: exactly len when ratio is 0, else uniform over the integers of
 * [len * (1 - ratio), len * (1 + ratio)], at least 1. */
static int32_t draw_len(mlc_dataset_rng *r, int32_t len, double ratio)
{
    if (ratio <= 0)
        return len;
    double lo_f = ceil(len * (1 - ratio) - 1e-9), hi_f = floor(len * (1 + ratio) + 1e-9);
    int64_t lo = lo_f < 1 ? 1 : (int64_t)lo_f;
    int64_t hi = hi_f > INT32_MAX ? INT32_MAX : (int64_t)hi_f;
    if (hi < lo)
        hi = lo;
    return (int32_t)(lo + (int64_t)mlc_dataset_rng_below(r, (uint64_t)(hi - lo + 1)));
}

/* ------------------------------------------------------------------ the loaders */

mlc_status mlc_dataset_load_random(const mlc_dataset_opts *o, mlc_prompt_list *v, mlc_err *err)
{
    if (o->input_len < 1 || o->input_len > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG, "random: input length %ld is not in [1, %d]",
                           (long)o->input_len, MLC_DATASET_MAX_INPUT_LEN);
    if (o->range_ratio > 0 && o->range_ratio < 1 &&
        floor(o->input_len * (1 + o->range_ratio) + 1e-9) > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "random: input lengths up to %.0f (length %ld, range ratio %g) are "
                           "over the limit of %d",
                           floor(o->input_len * (1 + o->range_ratio) + 1e-9), (long)o->input_len,
                           o->range_ratio, MLC_DATASET_MAX_INPUT_LEN);
    if (o->output_len < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "random: output length %ld is not positive",
                           (long)o->output_len);
    if (!(o->range_ratio >= 0 && o->range_ratio < 1))
        return mlc_err_set(err, MLC_ERR_ARG, "random: range ratio %g is not in [0, 1)",
                           o->range_ratio);
    if (o->num_prompts < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "random: needs a number of prompts (got %ld)",
                           (long)o->num_prompts);
    mlc_dataset_idpool pool = {0};
    mlc_status st = mlc_dataset_pool_init(&pool, o, "random", err);
    mlc_dataset_rng r = mlc_dataset_rng_make(o->seed, MLC_DATASET_STREAM_RANDOM);
    for (int32_t i = 0; st == MLC_OK && i < o->num_prompts; i++) {
        mlc_prompt *p = mlc_prompt_list_push(v);
        if (!p) {
            st = mlc_err_set(err, MLC_ERR_NOMEM, "random: out of memory");
            break;
        }
        int32_t in = draw_len(&r, o->input_len, o->range_ratio);
        p->max_tokens = draw_len(&r, o->output_len, o->range_ratio);
        st = mlc_dataset_random_ids(p, in, &pool, &r, o->tok, "random", err);
    }
    mlc_dataset_pool_free(&pool);
    return st;
}

static mlc_status check_prefix_opts(const mlc_dataset_opts *o, mlc_err *err)
{
    if (o->n_prefixes < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: needs a number of prefixes (got %ld)", (long)o->n_prefixes);
    if (o->prefix_len < 1 || o->suffix_len < 0 ||
        (int64_t)o->prefix_len + o->suffix_len > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: prefix length %ld (at least 1) and suffix length %ld "
                           "(at least 0) must add up to at most %d", (long)o->prefix_len, (long)o->suffix_len,
                           MLC_DATASET_MAX_INPUT_LEN);
    if (o->output_len < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: output length %ld is not positive", (long)o->output_len);
    if (o->num_prompts < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: needs a number of prompts (got %ld)", (long)o->num_prompts);
    return MLC_OK;
}

/* One prompt: prefix k's ids, then suffix_len fresh ones; the text (with a tokenizer) is that
 * of the whole. */
static mlc_status prefix_prompt(mlc_prompt *p, const mlc_prompt *prefix, int32_t k, const mlc_dataset_opts *o,
                                const mlc_dataset_idpool *pool, mlc_dataset_rng *r, mlc_err *err)
{
    mlc_prompt suffix = {0};
    mlc_status st = MLC_OK;
    if (o->suffix_len > 0 && (st = mlc_dataset_random_ids(&suffix, o->suffix_len, pool, r, NULL, "prefix", err)) != MLC_OK)
        return st;
    int32_t n = o->prefix_len + o->suffix_len;
    p->ids = malloc((size_t)n * sizeof *p->ids);
    if (!p->ids) {
        free(suffix.ids);
        return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    memcpy(p->ids, prefix->ids, (size_t)o->prefix_len * sizeof *p->ids);
    if (o->suffix_len > 0)
        memcpy(p->ids + o->prefix_len, suffix.ids, (size_t)o->suffix_len * sizeof *p->ids);
    free(suffix.ids);
    p->n_ids = p->input_tokens = n;
    p->prefix_id = k;
    p->max_tokens = o->output_len;
    if (o->tok) {
        char *s = NULL;
        size_t len = 0;
        if ((st = mlc_detokenize(o->tok, p->ids, (size_t)n, false, &s, &len, err)) != MLC_OK)
            return st;
        p->text = mlc_dataset_utf8_sanitize(s, len);
        free(s);
        if (!p->text)
            return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    return MLC_OK;
}

mlc_status mlc_dataset_load_prefix(const mlc_dataset_opts *o, mlc_prompt_list *v, mlc_err *err)
{
    mlc_status st = check_prefix_opts(o, err);
    if (st != MLC_OK)
        return st;
    mlc_dataset_idpool pool = {0};
    mlc_dataset_rng r = mlc_dataset_rng_make(o->seed, MLC_DATASET_STREAM_PREFIX);
    mlc_prompt *prefixes = calloc((size_t)o->n_prefixes, sizeof *prefixes);
    if (!prefixes)
        return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    st = mlc_dataset_pool_init(&pool, o, "prefix", err);
    for (int32_t k = 0; st == MLC_OK && k < o->n_prefixes; k++)
        st = mlc_dataset_random_ids(&prefixes[k], o->prefix_len, &pool, &r, NULL, "prefix", err);
    for (int32_t i = 0; st == MLC_OK && i < o->num_prompts; i++) {
        mlc_prompt *p = mlc_prompt_list_push(v);
        int32_t k = (int32_t)mlc_dataset_rng_below(&r, (uint64_t)o->n_prefixes);
        st = p ? prefix_prompt(p, &prefixes[k], k, o, &pool, &r, err)
               : mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    for (int32_t k = 0; k < o->n_prefixes; k++)
        free(prefixes[k].ids);
    free(prefixes);
    mlc_dataset_pool_free(&pool);
    return st;
}
