/* perplexity.c: llama.cpp's perplexity algorithm over a context, see mlc/perplexity.h. */
#include "mlc/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double mlc_nll(const float *logits, int n_vocab, int32_t target)
{
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)(logits[i] - max));
    return -((double)(logits[target] - max) - log(sum));
}

void mlc_ppl_acc_add(mlc_ppl_acc *a, double nll)
{
    a->nll += nll;
    a->nll2 += nll * nll;
    a->n++;
}

void mlc_ppl_acc_result(const mlc_ppl_acc *a, int chunks, mlc_ppl_result *r)
{
    double mean = a->n ? a->nll / (double)a->n : 0, var = a->n ? a->nll2 / (double)a->n - mean * mean : 0;
    r->mean_nll = mean;
    r->ppl = exp(mean);
    r->ppl_err = (a->n > 1 && var > 0) ? r->ppl * sqrt(var / (double)(a->n - 1)) : 0;
    r->n_scored = a->n;
    r->n_chunks = chunks;
}

mlc_status mlc_ppl_chunk_count(size_t n_tokens, const mlc_ppl_params *p, int *n_chunks, mlc_err *err)
{
    *n_chunks = p->n_ctx > 0 ? (int)(n_tokens / (size_t)p->n_ctx) : 0;
    if (p->n_chunks > 0 && p->n_chunks < *n_chunks)
        *n_chunks = p->n_chunks;
    if (*n_chunks < 1)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "perplexity: %zu tokens make no chunk of %d; use a longer text or a smaller context",
                           n_tokens, p->n_ctx);
    return MLC_OK;
}

/* Evaluates one chunk (in pieces of the context's batch size) and adds its scored NLLs. */
static mlc_status eval_chunk(mlc_context *c, const int32_t *tok, const mlc_ppl_params *p,
                             int32_t *buf, bool *want, mlc_ppl_acc *acc, double *chunk_nll,
                             mlc_ppl_logits_fn on_logits, void *lctx, mlc_err *err)
{
    int n_ctx = p->n_ctx, first = n_ctx / 2, nb = mlc_context_n_batch(c);
    int32_t *pos = buf + nb, *slot = buf + 2 * nb;
    *chunk_nll = 0;
    for (int b0 = 0; b0 < n_ctx; b0 += nb) {
        int n = n_ctx - b0 < nb ? n_ctx - b0 : nb, n_out = 0;
        for (int i = 0; i < n; i++) {
            int at = b0 + i;
            buf[i] = (at == 0 && p->add_bos) ? p->bos : tok[at];
            pos[i] = at;
            slot[i] = p->slot;
            want[i] = at >= first && at < n_ctx - 1;
        }
        mlc_batch b = {n, buf, pos, slot, want};
        mlc_status s = mlc_context_decode(c, &b, err);
        if (s)
            return s;
        for (int i = 0; i < n; i++) {
            if (!want[i])
                continue;
            const float *lg = mlc_context_logits(c, n_out++);
            double nll = mlc_nll(lg, mlc_context_n_vocab(c), tok[b0 + i + 1]);
            mlc_ppl_acc_add(acc, nll);
            *chunk_nll += nll;
            if (on_logits && (s = on_logits(lctx, lg, mlc_context_n_vocab(c), tok[b0 + i + 1], err)))
                return s;
        }
    }
    return MLC_OK;
}

mlc_status mlc_perplexity(mlc_context *c, const int32_t *tokens, size_t n_tokens,
                          const mlc_ppl_params *p, mlc_ppl_progress_fn progress, void *pctx,
                          mlc_ppl_result *out, mlc_err *err)
{
    return mlc_perplexity_logits(c, tokens, n_tokens, p, progress, pctx, NULL, NULL, out, err);
}

mlc_status mlc_perplexity_logits(mlc_context *c, const int32_t *tokens, size_t n_tokens,
                                 const mlc_ppl_params *p, mlc_ppl_progress_fn progress, void *pctx,
                                 mlc_ppl_logits_fn on_logits, void *lctx, mlc_ppl_result *out,
                                 mlc_err *err)
{
    memset(out, 0, sizeof *out);
    if (p->n_ctx < 4 || p->n_ctx > mlc_context_n_ctx(c))
        return mlc_err_set(err, MLC_ERR_ARG, "perplexity: chunk length %d (4..%d allowed)", p->n_ctx,
                           mlc_context_n_ctx(c));
    int n_chunks;
    if (mlc_ppl_chunk_count(n_tokens, p, &n_chunks, err))
        return MLC_ERR_ARG;
    int nb = mlc_context_n_batch(c);
    int32_t *buf = malloc((size_t)nb * 3 * sizeof *buf);
    bool *want = malloc((size_t)nb * sizeof *want);
    mlc_ppl_acc acc = {0};
    mlc_status s = MLC_OK;
    if (!buf || !want)
        s = mlc_err_set(err, MLC_ERR_NOMEM, "perplexity: out of memory");
    for (int i = 0; !s && i < n_chunks; i++) {
        double chunk_nll;
        int64_t before = acc.n;
        s = eval_chunk(c, tokens + (size_t)i * (size_t)p->n_ctx, p, buf, want, &acc, &chunk_nll, on_logits, lctx, err);
        if (s)
            break;
        mlc_ppl_acc_result(&acc, i + 1, out);
        if (progress && !progress(pctx, i, exp(chunk_nll / (double)(acc.n - before)), out))
            break;
    }
    free(buf);
    free(want);
    return s;
}
