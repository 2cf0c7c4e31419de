/* conv.h: one conversation of `mlc-bench run --multi-turn`, replayed turn by turn.
 *
 * A conversation is a dataset's chat messages (a JSON array of {"role", "content"}): each
 * "user" message is one turn. A turn's request carries the history so far (leading "system"
 * messages, then every earlier user message with its answer) and the turn's user message.
 * The answer kept in the history is the model's own (real) or the dataset's assistant
 * message after that user message (dataset history, the model's when the dataset has none). */
#ifndef MLC_BENCH_CONV_H
#define MLC_BENCH_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "mlc/status.h"

typedef struct mlc_conv mlc_conv;

/* MLC_ERR_FORMAT when messages_json is not an array of messages with a "user" one. */
mlc_status mlc_conv_new(const char *messages_json, bool dataset_history, mlc_conv **out, mlc_err *err);
/* The next turn's messages as JSON text (malloc'd), or NULL when no turn remains (or out of
 * memory: then *oom is set). */
char *mlc_conv_next(mlc_conv *c, bool *oom);
/* The answer to the turn last given by mlc_conv_next (text of len bytes, not NUL-terminated)
 * joins the history; false on out of memory. */
bool mlc_conv_answer(mlc_conv *c, const char *text, size_t len);
/* Whether a turn remains, and the number of turns given so far. */
bool mlc_conv_more(const mlc_conv *c);
int mlc_conv_turns(const mlc_conv *c);
void mlc_conv_free(mlc_conv *c);

#endif
