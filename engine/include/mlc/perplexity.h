/* mlc/perplexity.h: perplexity of a token sequence, by llama.cpp's algorithm.
 *
 * The tokens are split into chunks of n_ctx; when add_bos, the first token of each chunk is
 * replaced by BOS; each chunk is evaluated from an empty cache and the second half of its
 * positions is scored (the logits at position i predict token i+1, for i in
 * [n_ctx/2, n_ctx-1)). PPL = exp(mean NLL); its error = PPL * sqrt(var(NLL) / (N - 1)). */
#ifndef MLC_PERPLEXITY_H
#define MLC_PERPLEXITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/model.h"
#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlc_ppl_params {
    int n_ctx;        /* chunk length; <= context's n_ctx */
    int n_chunks;     /* most chunks to evaluate; <= 0: all */
    bool add_bos;
    int32_t bos;
    int slot;         /* context slot to use */
} mlc_ppl_params;

typedef struct mlc_ppl_result {
    double ppl, ppl_err;
    double mean_nll;
    int64_t n_scored;
    int n_chunks;
} mlc_ppl_result;

/* Called after each chunk with the running result and that chunk's own perplexity;
 * returning false stops early (the result so far is kept). */
typedef bool (*mlc_ppl_progress_fn)(void *ctx, int chunk, double chunk_ppl,
                                    const mlc_ppl_result *so_far);

/* Negative log-likelihood of token `target` under logits [n_vocab] (log-softmax in double). */
double mlc_nll(const float *logits, int n_vocab, int32_t target);

mlc_status mlc_perplexity(mlc_context *c, const int32_t *tokens, size_t n_tokens,
                          const mlc_ppl_params *p, mlc_ppl_progress_fn progress, void *pctx,
                          mlc_ppl_result *out, mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
