/* model_conformance.c: model-level conformance (see model_conformance.h). */
#include "model_conformance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/tokenizer.h"
#include "tolerance.h"

typedef struct side {
    mlc_model *m;
    mlc_context *c;
} side;

static void side_free(side *s)
{
    mlc_context_free(s->c);
    mlc_model_free(s->m);
}

static mlc_status side_open(const char *path, const mlc_model_params *mp, int n_ctx, side *s,
                            mlc_err *err)
{
    mlc_status st = mlc_model_load(path, mp, &s->m, err);
    if (st)
        return st;
    const mlc_context_params cp = {.n_ctx = n_ctx, .n_slots = 1, .n_batch = n_ctx};
    return mlc_context_new(s->m, &cp, &s->c, err);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* -log softmax(v)[t], in double. */
static double nll(const float *v, int n, int t)
{
    double max = v[0], sum = 0;
    for (int i = 1; i < n; i++)
        max = v[i] > max ? v[i] : max;
    for (int i = 0; i < n; i++)
        sum += exp((double)v[i] - max);
    return log(sum) - ((double)v[t] - max);
}

/* Logits of every position of tokens[0..n) (one batch from an empty cache). */
static mlc_status score(side *s, const int32_t *tokens, int n, mlc_err *err)
{
    int32_t *pos = malloc((size_t)n * sizeof *pos), *slot = calloc((size_t)n, sizeof *slot);
    bool *want = malloc((size_t)n * sizeof *want);
    mlc_status st = MLC_ERR_NOMEM;
    if (pos && slot && want) {
        for (int i = 0; i < n; i++) {
            pos[i] = i;
            want[i] = true;
        }
        const mlc_batch b = {n, tokens, pos, slot, want};
        st = mlc_context_decode(s->c, &b, err);
    } else {
        mlc_err_set(err, st, "model conformance: out of memory");
    }
    free(want);
    free(slot);
    free(pos);
    return st;
}

/* Greedy continuation of tokens[0..n_prompt) for n_steps, into out[n_steps]. */
static mlc_status greedy(side *s, const int32_t *prompt, int n_prompt, int n_steps, int32_t *out,
                         mlc_err *err)
{
    int32_t pos = 0, slot = 0;
    const int32_t *tok = prompt;
    int n = n_prompt;
    int32_t *ps = malloc((size_t)n_prompt * sizeof *ps), *sl = calloc((size_t)n_prompt, sizeof *sl);
    if (!ps || !sl) {
        free(ps);
        free(sl);
        return mlc_err_set(err, MLC_ERR_NOMEM, "model conformance: out of memory");
    }
    for (int i = 0; i < n_prompt; i++)
        ps[i] = i;
    mlc_status st = MLC_OK;
    const int nv = mlc_context_n_vocab(s->c);
    for (int step = 0; step < n_steps && !st; step++) {
        const mlc_batch b = {n, tok, step ? &pos : ps, step ? &slot : sl, NULL};
        if ((st = mlc_context_decode(s->c, &b, err)))
            break;
        out[step] = argmax(mlc_context_logits(s->c, 0), nv);
        pos = n_prompt + step;
        tok = &out[step];
        n = 1;
    }
    free(sl);
    free(ps);
    return st;
}

static mlc_status compare(const mlc_conf_model_params *p, side *x, side *r, const int32_t *toks, int n,
                          mlc_conf_model_result *res, mlc_err *err)
{
    mlc_status st;
    if ((st = score(x, toks, n, err)) || (st = score(r, toks, n, err)))
        return st;
    const int nv = mlc_context_n_vocab(x->c);
    double sum_nmse = 0, nll_x = 0, nll_r = 0;
    int agree = 0;
    for (int i = 0; i + 1 < n; i++) {
        const float *lx = mlc_context_logits(x->c, i), *lr = mlc_context_logits(r->c, i);
        double e = 0, norm = 0, dmax = 0;
        for (int v = 0; v < nv; v++) {
            const double d = (double)lx[v] - (double)lr[v];
            dmax = fabs(d) > dmax ? fabs(d) : dmax;
            e += d * d;
            norm += (double)lr[v] * (double)lr[v];
        }
        const double nmse = norm > 0 ? e / norm : (e == 0 ? 0 : INFINITY);
        if (!(nmse <= res->logits_nmse_max))
            res->logits_nmse_max = nmse;
        sum_nmse += nmse;
        /* Agreement up to a near tie: the target's choice counts when the reference ranks it
         * within twice this position's largest logit difference of its own top logit, i.e.
         * when errors of the size measured here could swap the two (random-weight models
         * are full of such ties; a wrong op fails the NMSE bound first). */
        const int ax = argmax(lx, nv), ar = argmax(lr, nv);
        agree += ax == ar || (double)lr[ar] - (double)lr[ax] <= 2 * dmax;
        nll_x += nll(lx, nv, toks[i + 1]);
        nll_r += nll(lr, nv, toks[i + 1]);
    }
    res->n_positions = n - 1;
    res->logits_nmse_mean = sum_nmse / (n - 1);
    res->top1_agree = (double)agree / (n - 1);
    res->ppl = exp(nll_x / (n - 1));
    res->ppl_ref = exp(nll_r / (n - 1));
    res->ppl_rel = fabs(res->ppl - res->ppl_ref) / res->ppl_ref;
    /* free-running greedy from the first 8 tokens */
    const int n_prompt = n < 8 ? n : 8;
    res->n_greedy = p->n_greedy > 0 ? p->n_greedy : 32;
    int32_t *gx = malloc((size_t)res->n_greedy * sizeof *gx), *gr = malloc((size_t)res->n_greedy * sizeof *gr);
    if (!gx || !gr)
        st = mlc_err_set(err, MLC_ERR_NOMEM, "model conformance: out of memory");
    if (!st && !(st = greedy(x, toks, n_prompt, res->n_greedy, gx, err)) &&
        !(st = greedy(r, toks, n_prompt, res->n_greedy, gr, err)))
        while (res->greedy_match < res->n_greedy && gx[res->greedy_match] == gr[res->greedy_match])
            res->greedy_match++;
    free(gr);
    free(gx);
    return st;
}

mlc_status mlc_conf_model_run(const mlc_conf_model_params *p, mlc_conf_model_result *res, mlc_err *err)
{
    memset(res, 0, sizeof *res);
    res->logits_nmse_max = 0;
    side x = {0}, r = {0};
    int32_t *toks = NULL;
    size_t n_toks = 0;
    const int want = p->n_tokens > 0 ? p->n_tokens : 128;
    const int n_greedy = p->n_greedy > 0 ? p->n_greedy : 32;
    const int n_ctx = (want > 8 + n_greedy ? want : 8 + n_greedy) + 1;
    const mlc_model_params rp = {.backend = "cpu", .n_threads = p->ref_threads, .isa = "scalar"};
    mlc_status st;
    if ((st = side_open(p->path, &p->target, n_ctx, &x, err)) || (st = side_open(p->path, &rp, n_ctx, &r, err)) ||
        (st = mlc_tokenize(mlc_model_tokenizer(x.m), p->text, p->text_len, true, false, &toks, &n_toks, err)))
        goto done;
    if (n_toks < 2) {
        st = mlc_err_set(err, MLC_ERR_ARG, "model conformance: the text gives %zu tokens (2 or more needed)", n_toks);
        goto done;
    }
    if ((st = compare(p, &x, &r, toks, (int)(n_toks < (size_t)want ? n_toks : (size_t)want), res, err)))
        goto done;
    const mlc_conf_model_tol *t = mlc_conf_model_tolerance();
    if (!(res->logits_nmse_max <= t->logits_nmse))
        snprintf(res->error, sizeof res->error, "logits NMSE %.3g > threshold %.3g", res->logits_nmse_max, t->logits_nmse);
    else if (!(res->ppl_rel <= t->ppl_rel))
        snprintf(res->error, sizeof res->error, "perplexity %.4g vs %.4g: %.3g%% > %.3g%%", res->ppl, res->ppl_ref,
                 100 * res->ppl_rel, 100 * t->ppl_rel);
    else if (res->top1_agree < t->top1_agree)
        snprintf(res->error, sizeof res->error, "argmax agrees on %.1f%% of positions < %.1f%%",
                 100 * res->top1_agree, 100 * t->top1_agree);
    res->pass = !res->error[0];
done:
    free(toks);
    side_free(&r);
    side_free(&x);
    return st;
}
