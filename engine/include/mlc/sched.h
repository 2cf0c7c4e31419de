/* mlc/sched.h: the continuous-batching scheduler.
 *
 * Requests are submitted with their prompt tokens and sampling settings. Each step runs one
 * forward pass over a batch that mixes one decode token from every running sequence with
 * prefill chunks of sequences still reading their prompt (long prompts are split across
 * steps so decoders are not stalled); queued requests join whenever a KV-cache slot is free.
 * After a step, the tokens it produced are reported as events. The in-process benchmark
 * target and the HTTP server both drive this scheduler. Not thread-safe: one thread steps it. */
#ifndef MLC_SCHED_H
#define MLC_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/model.h"
#include "mlc/sampler.h"
#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mlc_finish {
    MLC_FINISH_NONE = 0, /* still running */
    MLC_FINISH_STOP,     /* end-of-generation token */
    MLC_FINISH_LENGTH,   /* max_tokens reached */
    MLC_FINISH_CONTEXT,  /* the context is full */
    MLC_FINISH_CANCELLED,
} mlc_finish;

const char *mlc_finish_str(mlc_finish f); /* "stop", "length", "context", "cancelled" */

typedef struct mlc_request_params {
    mlc_sampler_params sampling;
    int32_t max_tokens;  /* <= 0: until end of generation or the context is full */
    bool ignore_eos;     /* keep generating past end-of-generation tokens */
} mlc_request_params;

typedef struct mlc_sched_params {
    int max_prefill_chunk; /* most prompt tokens of one sequence per step (<= 0: n_batch) */
} mlc_sched_params;

/* What a step did for one sequence. */
typedef struct mlc_sched_event {
    int64_t id;
    int32_t token;       /* generated token, or -1 for prompt progress only */
    int32_t n_prompt_done; /* prompt tokens processed so far */
    int32_t n_generated;
    mlc_finish finish;   /* != NONE: the sequence ended in this step (its slot is free) */
} mlc_sched_event;

typedef struct mlc_sched_stats {
    int64_t steps;
    int64_t tokens_prefill, tokens_decode;
    int64_t max_batch;  /* largest batch run */
} mlc_sched_stats;

typedef struct mlc_sched mlc_sched;

mlc_status mlc_sched_new(mlc_context *c, const mlc_sched_params *p, mlc_sched **out, mlc_err *err);
void mlc_sched_free(mlc_sched *s);

/* Queues a request (the prompt is copied). A prompt that cannot fit the context, an empty
 * prompt or bad sampling settings are refused here. */
mlc_status mlc_sched_submit(mlc_sched *s, const int32_t *prompt, size_t n_prompt,
                            const mlc_request_params *rp, int64_t *id, mlc_err *err);
/* Ends a sequence now, freeing its slot; an event with MLC_FINISH_CANCELLED follows at the
 * next step. Unknown ids are ignored. */
void mlc_sched_cancel(mlc_sched *s, int64_t id);
/* Runs one step; does nothing when idle. The events stay valid until the next step. */
mlc_status mlc_sched_step(mlc_sched *s, mlc_err *err);
const mlc_sched_event *mlc_sched_events(const mlc_sched *s, int *n);
/* Sequences queued or running. */
int mlc_sched_pending(const mlc_sched *s);
int mlc_sched_running(const mlc_sched *s);
const mlc_sched_stats *mlc_sched_get_stats(const mlc_sched *s);
/* Last batch size (tokens in the last forward pass). */
int mlc_sched_last_batch(const mlc_sched *s);

#ifdef __cplusplus
}
#endif
#endif
