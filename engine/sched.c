/* sched.c: continuous batching over a context's KV-cache slots, see mlc/sched.h.
 *
 * Sequences live in one array in arrival order (FCFS): queued ones wait for a slot; running
 * ones either still read their prompt (prefill) or generate one token per step (decode).
 * A step's batch takes every decoder's next token first, so generation keeps its pace, then
 * fills what is left of n_batch with prompt chunks in arrival order. */
#include "mlc/sched.h"

#include <stdlib.h>
#include <string.h>

#include "mlc/tokenizer.h"

typedef struct seq {
    int64_t id;
    int slot;              /* -1 while queued */
    int32_t *prompt;
    int32_t n_prompt, n_prompt_done;
    int32_t n_past;        /* positions filled in the slot */
    int32_t last;          /* last generated token (next decode input) */
    int32_t n_generated;
    int out;               /* index of this sequence's logits in the current step, or -1 */
    bool cancelled;
    mlc_request_params rp;
    mlc_sampler *sampler;
} seq;

struct mlc_sched {
    mlc_context *c;
    const mlc_tokenizer *tok;
    int n_slots, n_batch, n_ctx, n_vocab, max_chunk;
    seq **seqs;            /* queued and running, arrival order */
    int n_seqs, cap_seqs;
    bool *slot_used;
    int64_t next_id;
    int32_t *b_tok, *b_pos, *b_slot; /* [n_batch] */
    bool *b_want;
    mlc_sched_event *ev;   /* [cap_seqs] */
    int n_ev, last_batch;
    mlc_sched_stats stats;
};

const char *mlc_finish_str(mlc_finish f)
{
    switch (f) {
    case MLC_FINISH_NONE: return "none";
    case MLC_FINISH_STOP: return "stop";
    case MLC_FINISH_LENGTH: return "length";
    case MLC_FINISH_CONTEXT: return "context";
    case MLC_FINISH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

mlc_status mlc_sched_new(mlc_context *c, const mlc_sched_params *p, mlc_sched **out, mlc_err *err)
{
    *out = NULL;
    mlc_sched *s = calloc(1, sizeof *s);
    if (!s)
        return mlc_err_set(err, MLC_ERR_NOMEM, "scheduler: out of memory");
    s->c = c;
    s->tok = mlc_model_tokenizer(mlc_context_model(c));
    s->n_slots = mlc_context_n_slots(c);
    s->n_batch = mlc_context_n_batch(c);
    s->n_ctx = mlc_context_n_ctx(c);
    s->n_vocab = mlc_context_n_vocab(c);
    s->max_chunk = p && p->max_prefill_chunk > 0 ? p->max_prefill_chunk : s->n_batch;
    size_t nb = (size_t)s->n_batch;
    s->slot_used = calloc((size_t)s->n_slots, sizeof *s->slot_used);
    s->b_tok = malloc(nb * sizeof *s->b_tok);
    s->b_pos = malloc(nb * sizeof *s->b_pos);
    s->b_slot = malloc(nb * sizeof *s->b_slot);
    s->b_want = malloc(nb * sizeof *s->b_want);
    if (!s->slot_used || !s->b_tok || !s->b_pos || !s->b_slot || !s->b_want) {
        mlc_sched_free(s);
        return mlc_err_set(err, MLC_ERR_NOMEM, "scheduler: out of memory");
    }
    *out = s;
    return MLC_OK;
}

static void seq_free(seq *q)
{
    if (!q)
        return;
    mlc_sampler_free(q->sampler);
    free(q->prompt);
    free(q);
}

void mlc_sched_free(mlc_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_seqs; i++)
        seq_free(s->seqs[i]);
    free(s->seqs);
    free(s->ev);
    free(s->slot_used);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_slot);
    free(s->b_want);
    free(s);
}

mlc_status mlc_sched_submit(mlc_sched *s, const int32_t *prompt, size_t n_prompt,
                            const mlc_request_params *rp, int64_t *id, mlc_err *err)
{
    if (n_prompt == 0)
        return mlc_err_set(err, MLC_ERR_ARG, "request: empty prompt");
    if (n_prompt >= (size_t)s->n_ctx)
        return mlc_err_set(err, MLC_ERR_RANGE, "request: prompt of %zu tokens does not fit the context of %d",
                           n_prompt, s->n_ctx);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= s->n_vocab)
            return mlc_err_set(err, MLC_ERR_ARG, "request: prompt token %zu: id %d outside the vocabulary of %d",
                               i, prompt[i], s->n_vocab);
    mlc_status st = mlc_sampler_params_check(&rp->sampling, err);
    if (st)
        return st;
    if (s->n_seqs == s->cap_seqs) {
        int cap = s->cap_seqs ? s->cap_seqs * 2 : 16;
        seq **ns = realloc(s->seqs, (size_t)cap * sizeof *ns);
        mlc_sched_event *ne = ns ? realloc(s->ev, (size_t)cap * sizeof *ne) : NULL;
        if (ns)
            s->seqs = ns;
        if (!ne)
            return mlc_err_set(err, MLC_ERR_NOMEM, "request: out of memory");
        s->ev = ne;
        s->cap_seqs = cap;
    }
    seq *q = calloc(1, sizeof *q);
    if (!q || !(q->prompt = malloc(n_prompt * sizeof *q->prompt))) {
        free(q);
        return mlc_err_set(err, MLC_ERR_NOMEM, "request: out of memory");
    }
    if ((st = mlc_sampler_new(&rp->sampling, s->n_vocab, &q->sampler, err))) {
        seq_free(q);
        return st;
    }
    memcpy(q->prompt, prompt, n_prompt * sizeof *q->prompt);
    q->n_prompt = (int32_t)n_prompt;
    q->slot = -1;
    q->rp = *rp;
    q->id = s->next_id++;
    s->seqs[s->n_seqs++] = q;
    *id = q->id;
    return MLC_OK;
}

void mlc_sched_cancel(mlc_sched *s, int64_t id)
{
    for (int i = 0; i < s->n_seqs; i++)
        if (s->seqs[i]->id == id)
            s->seqs[i]->cancelled = true;
}

static void emit(mlc_sched *s, const seq *q, int32_t token, mlc_finish f)
{
    s->ev[s->n_ev++] = (mlc_sched_event){q->id, token, q->n_prompt_done, q->n_generated, f};
}

/* Removes sequences that ended (finish set by the caller through `done`), freeing slots. */
static void retire(mlc_sched *s, const bool *done)
{
    int k = 0;
    for (int i = 0; i < s->n_seqs; i++) {
        seq *q = s->seqs[i];
        if (!done[i]) {
            s->seqs[k++] = q;
            continue;
        }
        if (q->slot >= 0)
            s->slot_used[q->slot] = false;
        seq_free(q);
    }
    s->n_seqs = k;
}

static void admit(mlc_sched *s)
{
    for (int i = 0, free_slot = 0; i < s->n_seqs; i++) {
        seq *q = s->seqs[i];
        if (q->slot >= 0 || q->cancelled)
            continue;
        while (free_slot < s->n_slots && s->slot_used[free_slot])
            free_slot++;
        if (free_slot == s->n_slots)
            return;
        q->slot = free_slot;
        s->slot_used[free_slot] = true;
    }
}

static void add_token(mlc_sched *s, int *n, const seq *q, int32_t tok, int32_t pos, bool want)
{
    s->b_tok[*n] = tok;
    s->b_pos[*n] = pos;
    s->b_slot[*n] = q->slot;
    s->b_want[*n] = want;
    (*n)++;
}

/* Decoders first (one token each), then prompt chunks in arrival order. Returns the batch
 * size; sets each sequence's out index (logits order = batch order of wanted tokens). */
static int build_batch(mlc_sched *s)
{
    int n = 0, n_out = 0;
    for (int i = 0; i < s->n_seqs; i++)
        s->seqs[i]->out = -1;
    for (int i = 0; i < s->n_seqs && n < s->n_batch; i++) {
        seq *q = s->seqs[i];
        if (q->slot < 0 || q->cancelled || q->n_prompt_done < q->n_prompt)
            continue;
        add_token(s, &n, q, q->last, q->n_past++, true);
        q->out = n_out++;
    }
    int n_decode = n;
    s->stats.tokens_decode += n_decode;
    for (int i = 0; i < s->n_seqs && n < s->n_batch; i++) {
        seq *q = s->seqs[i];
        if (q->slot < 0 || q->cancelled || q->n_prompt_done == q->n_prompt)
            continue;
        int chunk = q->n_prompt - q->n_prompt_done;
        chunk = chunk < s->max_chunk ? chunk : s->max_chunk;
        chunk = chunk < s->n_batch - n ? chunk : s->n_batch - n;
        for (int j = 0; j < chunk; j++) {
            bool last = q->n_prompt_done + 1 == q->n_prompt;
            add_token(s, &n, q, q->prompt[q->n_prompt_done++], q->n_past++, last);
            if (last)
                q->out = n_out++;
        }
    }
    s->stats.tokens_prefill += n - n_decode;
    /* Logits come back in batch order: decoders (added first) then prompt ends. */
    return n;
}

static mlc_finish after_token(const mlc_sched *s, const seq *q, int32_t tok)
{
    if (!q->rp.ignore_eos && mlc_tokenizer_is_eog(s->tok, tok))
        return MLC_FINISH_STOP;
    if (q->rp.max_tokens > 0 && q->n_generated >= q->rp.max_tokens)
        return MLC_FINISH_LENGTH;
    if (q->n_past >= s->n_ctx)
        return MLC_FINISH_CONTEXT;
    return MLC_FINISH_NONE;
}

/* Whether every sequence that samples this step does so greedily (temperature 0, where the
 * sampler is mlc_argmax): the step then needs only each row's argmax, not its logits. */
static bool all_greedy(const mlc_sched *s)
{
    for (int i = 0; i < s->n_seqs; i++)
        if (s->seqs[i]->out >= 0 && s->seqs[i]->rp.sampling.temperature > 0.0f)
            return false;
    return true;
}

mlc_status mlc_sched_step(mlc_sched *s, mlc_err *err)
{
    s->n_ev = 0;
    s->last_batch = 0;
    bool done[s->n_seqs > 0 ? s->n_seqs : 1];
    for (int i = 0; i < s->n_seqs; i++) {
        done[i] = s->seqs[i]->cancelled;
        if (done[i])
            emit(s, s->seqs[i], -1, MLC_FINISH_CANCELLED);
    }
    retire(s, done);
    admit(s);
    int n = build_batch(s);
    if (n == 0)
        return MLC_OK;
    mlc_batch b = {n, s->b_tok, s->b_pos, s->b_slot, s->b_want};
    const bool greedy = all_greedy(s);
    mlc_status st = greedy ? mlc_context_decode_greedy(s->c, &b, err) : mlc_context_decode(s->c, &b, err);
    if (st)
        return st;
    s->last_batch = n;
    s->stats.steps++;
    s->stats.max_batch = n > s->stats.max_batch ? n : s->stats.max_batch;
    for (int i = 0; i < s->n_seqs; i++) {
        seq *q = s->seqs[i];
        done[i] = false;
        if (q->slot < 0)
            continue;
        if (q->out < 0) {
            if (q->n_prompt_done > 0 && q->n_prompt_done < q->n_prompt)
                emit(s, q, -1, MLC_FINISH_NONE);
            continue;
        }
        int32_t tok = greedy ? mlc_context_argmax(s->c, q->out)
                               : mlc_sampler_sample(q->sampler, mlc_context_logits(s->c, q->out));
        q->last = tok;
        q->n_generated++;
        mlc_finish f = after_token(s, q, tok);
        emit(s, q, tok, f);
        done[i] = f != MLC_FINISH_NONE;
    }
    retire(s, done);
    return MLC_OK;
}

const mlc_sched_event *mlc_sched_events(const mlc_sched *s, int *n)
{
    *n = s->n_ev;
    return s->ev;
}

int mlc_sched_pending(const mlc_sched *s)
{
    return s->n_seqs;
}

int mlc_sched_running(const mlc_sched *s)
{
    int n = 0;
    for (int i = 0; i < s->n_seqs; i++)
        n += s->seqs[i]->slot >= 0;
    return n;
}

const mlc_sched_stats *mlc_sched_get_stats(const mlc_sched *s)
{
    return &s->stats;
}

int mlc_sched_last_batch(const mlc_sched *s)
{
    return s->last_batch;
}
