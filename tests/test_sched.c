/* test_sched.c: the continuous-batching scheduler: the same tokens whatever the batch
 * composition, chunked prefill, slots reused, cancellation, context limits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/model.h"
#include "mlc/sched.h"
#include "util.h"

#define MAX_GEN 64

static mlc_model *load(void)
{
    char path[1024];
    tu_require_shared(path, sizeof path, "golden/tiny-llama-q8_0.gguf");
    mlc_model_params p = {.backend = "cpu", .n_threads = 2};
    mlc_model *m = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_model_load(path, &p, &m, &err), MLC_OK, "%s", err.msg);
    return m;
}

static mlc_request_params greedy(int max_tokens)
{
    mlc_request_params rp = {.sampling = mlc_sampler_default_params(), .max_tokens = max_tokens,
                             .ignore_eos = true};
    rp.sampling.temperature = 0;
    return rp;
}

typedef struct run {
    int32_t tokens[MAX_GEN];
    int n;
    mlc_finish finish;
} run;

/* Runs one step and records its events by request id. */
static void step_collect(mlc_sched *s, run *runs, int n_runs)
{
    mlc_err err = {0};
    cr_assert_eq(mlc_sched_step(s, &err), MLC_OK, "%s", err.msg);
    int ne;
    const mlc_sched_event *ev = mlc_sched_events(s, &ne);
    for (int i = 0; i < ne; i++) {
        cr_assert_lt(ev[i].id, n_runs);
        run *r = &runs[ev[i].id];
        if (ev[i].token >= 0) {
            cr_assert_lt(r->n, MAX_GEN);
            r->tokens[r->n++] = ev[i].token;
        }
        if (ev[i].finish)
            r->finish = ev[i].finish;
    }
}

/* Steps until every submitted request ends. */
static void drain(mlc_sched *s, run *runs, int n_runs)
{
    for (int guard = 0; mlc_sched_pending(s) > 0; guard++) {
        cr_assert_lt(guard, 10000, "scheduler does not finish");
        step_collect(s, runs, n_runs);
    }
}

static void make_prompt(int32_t *p, int n, int salt)
{
    p[0] = 1; /* BOS */
    for (int i = 1; i < n; i++)
        p[i] = 100 + (i * 37 + salt * 101) % 20000;
}

/* Each request alone in a one-slot context: the reference the batched runs must equal. */
static void run_alone(mlc_model *m, const int32_t *prompt, int n, int max_tokens, run *out)
{
    mlc_context *c;
    mlc_sched *s;
    mlc_err err = {0};
    mlc_context_params cp = {.n_ctx = 128, .n_slots = 1, .n_batch = 64};
    cr_assert_eq(mlc_context_new(m, &cp, &c, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_sched_new(c, NULL, &s, &err), MLC_OK, "%s", err.msg);
    int64_t id;
    mlc_request_params rp = greedy(max_tokens);
    cr_assert_eq(mlc_sched_submit(s, prompt, (size_t)n, &rp, &id, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(id, 0);
    drain(s, out, 1);
    mlc_sched_free(s);
    mlc_context_free(c);
}

Test(sched, batched_equals_alone, .timeout = 120)
{
    mlc_model *m = load();
    enum { N = 6 };
    int lens[N] = {3, 17, 9, 30, 5, 12}, gens[N] = {8, 5, 12, 6, 10, 7};
    int32_t prompts[N][32];
    run alone[N] = {0}, batched[N] = {0};
    for (int i = 0; i < N; i++) {
        make_prompt(prompts[i], lens[i], i);
        run_alone(m, prompts[i], lens[i], gens[i], &alone[i]);
        cr_assert_eq(alone[i].n, gens[i]);
    }
    /* 3 slots for 6 requests, batches of 16 and prefill chunks of 4: requests queue, prompts
     * are split over steps, and prefill shares batches with decoding. */
    mlc_context *c;
    mlc_sched *s;
    mlc_err err = {0};
    mlc_context_params cp = {.n_ctx = 128, .n_slots = 3, .n_batch = 16};
    mlc_sched_params sp = {.max_prefill_chunk = 4};
    cr_assert_eq(mlc_context_new(m, &cp, &c, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_sched_new(c, &sp, &s, &err), MLC_OK, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        int64_t id;
        mlc_request_params rp = greedy(gens[i]);
        cr_assert_eq(mlc_sched_submit(s, prompts[i], (size_t)lens[i], &rp, &id, &err), MLC_OK);
        cr_assert_eq(id, i);
    }
    drain(s, batched, N);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(batched[i].n, alone[i].n, "request %d", i);
        cr_expect_eq(batched[i].finish, MLC_FINISH_LENGTH);
        cr_expect_eq(memcmp(batched[i].tokens, alone[i].tokens, sizeof(int32_t) * (size_t)alone[i].n), 0,
                     "request %d: batched tokens differ from its run alone", i);
    }
    const mlc_sched_stats *st = mlc_sched_get_stats(s);
    cr_expect_gt(st->max_batch, 3, "batches never mixed sequences (max %lld)", (long long)st->max_batch);
    cr_expect_leq(st->max_batch, 16);
    int total_prompt = 0;
    for (int i = 0; i < N; i++)
        total_prompt += lens[i];
    cr_expect_eq(st->tokens_prefill, total_prompt);
    mlc_sched_free(s);
    mlc_context_free(c);
    mlc_model_free(m);
}

Test(sched, limits_and_cancel, .timeout = 60)
{
    mlc_model *m = load();
    mlc_context *c;
    mlc_sched *s;
    mlc_err err = {0};
    mlc_context_params cp = {.n_ctx = 24, .n_slots = 1, .n_batch = 32};
    cr_assert_eq(mlc_context_new(m, &cp, &c, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_sched_new(c, NULL, &s, &err), MLC_OK, "%s", err.msg);
    int32_t p[32];
    make_prompt(p, 30, 1);
    int64_t id;
    mlc_request_params rp = greedy(0);
    /* A prompt longer than the context is refused up front. */
    cr_expect_eq(mlc_sched_submit(s, p, 30, &rp, &id, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "does not fit the context of 24"), "%s", err.msg);
    cr_expect_eq(mlc_sched_submit(s, p, 0, &rp, &id, &err), MLC_ERR_ARG);
    int32_t bad = 999999;
    cr_expect_eq(mlc_sched_submit(s, &bad, 1, &rp, &id, &err), MLC_ERR_ARG);
    /* Unlimited generation ends when the context is full: 20 prompt positions, 4 decoded
     * tokens at positions 20..23, and 5 tokens sampled (one from the prompt's last logits
     * and one after each decode; the last cannot be fed back). */
    run r[2] = {0};
    cr_assert_eq(mlc_sched_submit(s, p, 20, &rp, &id, &err), MLC_OK, "%s", err.msg);
    /* A second request waits for the only slot, then is cancelled while queued. */
    int64_t id2;
    cr_assert_eq(mlc_sched_submit(s, p, 5, &rp, &id2, &err), MLC_OK, "%s", err.msg);
    step_collect(s, r, 2);
    cr_expect_eq(mlc_sched_running(s), 1);
    cr_expect_eq(mlc_sched_pending(s), 2);
    mlc_sched_cancel(s, id2);
    drain(s, r, 2);
    cr_expect_eq(r[0].finish, MLC_FINISH_CONTEXT);
    cr_expect_eq(r[0].n, 5, "generated %d", r[0].n);
    cr_expect_eq(r[1].finish, MLC_FINISH_CANCELLED);
    cr_expect_eq(mlc_sched_pending(s), 0);
    mlc_sched_free(s);
    mlc_context_free(c);
    mlc_model_free(m);
}

Test(sched, seeded_sampling_reproducible, .timeout = 60)
{
    mlc_model *m = load();
    int32_t p[8];
    make_prompt(p, 8, 3);
    run r[2][2];
    memset(r, 0, sizeof r);
    for (int k = 0; k < 2; k++) {
        mlc_context *c;
        mlc_sched *s;
        mlc_err err = {0};
        mlc_context_params cp = {.n_ctx = 64, .n_slots = 2, .n_batch = 32};
        cr_assert_eq(mlc_context_new(m, &cp, &c, &err), MLC_OK, "%s", err.msg);
        cr_assert_eq(mlc_sched_new(c, NULL, &s, &err), MLC_OK, "%s", err.msg);
        for (int j = 0; j < 2; j++) {
            mlc_request_params rp = {.sampling = mlc_sampler_default_params(), .max_tokens = 12,
                                     .ignore_eos = true};
            rp.sampling.temperature = 1.0f;
            rp.sampling.seed = 1234 + (uint64_t)j;
            int64_t id;
            cr_assert_eq(mlc_sched_submit(s, p, 8, &rp, &id, &err), MLC_OK, "%s", err.msg);
        }
        drain(s, r[k], 2);
        mlc_sched_free(s);
        mlc_context_free(c);
    }
    cr_expect_eq(memcmp(r[0][0].tokens, r[1][0].tokens, sizeof r[0][0].tokens), 0, "same seed, other tokens");
    cr_expect_eq(memcmp(r[0][1].tokens, r[1][1].tokens, sizeof r[0][1].tokens), 0);
    cr_expect_neq(memcmp(r[0][0].tokens, r[0][1].tokens, sizeof r[0][0].tokens), 0, "different seeds, same tokens");
    mlc_model_free(m);
}
