/* model_conformance.h: model-level conformance: a GGUF model on a backend against the same
 * model on the reference CPU (scalar kernels), on the same tokens: per-position logits NMSE,
 * argmax agreement, perplexity, and free-running greedy tokens; thresholds from
 * conformance/tolerance.c. */
#ifndef MLC_MODEL_CONFORMANCE_H
#define MLC_MODEL_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlc/model.h"
#include "mlc/status.h"

typedef struct mlc_conf_model_params {
    const char *path;      /* GGUF model */
    mlc_model_params target; /* the backend under test */
    int ref_threads;       /* threads of the reference CPU (<= 0: all) */
    const char *text;      /* scored text (tokenized with the model's tokenizer) */
    size_t text_len;
    int n_tokens;          /* most tokens of text to score (<= 0: 128) */
    int n_greedy;          /* greedy steps to compare (<= 0: 32) */
} mlc_conf_model_params;

typedef struct mlc_conf_model_result {
    int n_positions;          /* scored positions */
    double logits_nmse_max;   /* worst position */
    double logits_nmse_mean;
    double top1_agree;        /* share of positions with the reference's argmax, up to a
                               * near tie (within twice the position's largest logit error) */
    double ppl, ppl_ref, ppl_rel;
    int n_greedy;
    int greedy_match;         /* leading greedy tokens equal to the reference's */
    bool pass;
    char error[320];          /* what failed ("" when pass) */
} mlc_conf_model_result;

/* Runs the comparison; a status other than OK means it could not run (the model does not
 * load, ...), with the message in err; a failed comparison is r->pass false. */
mlc_status mlc_conf_model_run(const mlc_conf_model_params *p, mlc_conf_model_result *r, mlc_err *err);

#endif
