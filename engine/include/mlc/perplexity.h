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

/* Called for every scored position, in order, with that position's logits [n_vocab] (valid
 * only during the call) and the token they predict; a non-OK status stops the run with that
 * error. For consumers that need the whole distribution (KL-divergence files). */
typedef mlc_status (*mlc_ppl_logits_fn)(void *ctx, const float *logits, int n_vocab, int32_t target,
                                        mlc_err *err);

/* Running sums of scored NLLs (nats). mlc_perplexity accumulates with exactly these calls,
 * so a caller scoring log-probabilities obtained elsewhere (an HTTP endpoint) and adding them
 * in the same order gets the same arithmetic. Zero-initialise. */
typedef struct mlc_ppl_acc {
    double nll, nll2;
    int64_t n;
} mlc_ppl_acc;
void mlc_ppl_acc_add(mlc_ppl_acc *a, double nll);
void mlc_ppl_acc_result(const mlc_ppl_acc *a, int n_chunks, mlc_ppl_result *out);

/* Number of chunks mlc_perplexity evaluates for n_tokens (n_tokens / n_ctx, at most
 * p->n_chunks when that is > 0); MLC_ERR_ARG naming both when that is none. */
mlc_status mlc_ppl_chunk_count(size_t n_tokens, const mlc_ppl_params *p, int *n_chunks, mlc_err *err);

/* Negative log-likelihood of token `target` under logits [n_vocab] (log-softmax in double). */
double mlc_nll(const float *logits, int n_vocab, int32_t target);

mlc_status mlc_perplexity(mlc_context *c, const int32_t *tokens, size_t n_tokens,
                          const mlc_ppl_params *p, mlc_ppl_progress_fn progress, void *pctx,
                          mlc_ppl_result *out, mlc_err *err);
/* mlc_perplexity, calling on_logits (when not NULL) for every scored position after its NLL
 * was added; the results are identical. */
mlc_status mlc_perplexity_logits(mlc_context *c, const int32_t *tokens, size_t n_tokens,
                                 const mlc_ppl_params *p, mlc_ppl_progress_fn progress, void *pctx,
                                 mlc_ppl_logits_fn on_logits, void *lctx, mlc_ppl_result *out,
                                 mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
