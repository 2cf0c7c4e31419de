/* export.h: `mlc-bench run --save-requests FILE.jsonl`: every recorded request as one JSON
 * object per line, for analysis outside mlc-bench. Field names follow vLLM's benchmark
 * (--save-detailed, RequestFuncOutput) where one exists, and so do its units, seconds:
 *
 *   load, phase, idx    the load point's name ("c=4", "r=2") and index, the request number
 *   scheduled_time      when the load generator meant to send it   (s on the run's clock,
 *   start_time          when it was sent                             the store's: 0 is the
 *   ttft                first token-bearing chunk - sent (null: none came)   run's start)
 *   itl                 every gap between token-bearing chunks, in order ([] when < 2)
 *   latency             done - sent (vLLM's E2E)
 *   prompt_len, output_tokens, tokens_approximate   token counts and whether estimated
 *   success, error      vLLM's: whether it succeeded, and why not ("" when it did)
 *   error_kind, http_status   the failure's kind and the HTTP status answered (null: none)
 *   conversation, turn  --multi-turn only: the conversation (from 0) and its turn (from 1)
 *
 * The file is written whole (engine/outfile.h): a reader never sees half of it, and a
 * failed run leaves an older file as it was. */
#ifndef MLC_BENCH_EXPORT_H
#define MLC_BENCH_EXPORT_H

#include "mlc/status.h"
#include "store.h"

typedef struct mlc_request_export mlc_request_export;

mlc_status mlc_export_open(const char *path, mlc_request_export **out, mlc_err *err);
/* One request of load point `load`; conversation < 0 when it is none's turn. */
mlc_status mlc_export_add(mlc_request_export *x, const char *load, const mlc_request_record *r,
                          int64_t conversation, int turn, mlc_err *err);
/* Puts the file in place and frees x. */
mlc_status mlc_export_commit(mlc_request_export *x, mlc_err *err);
/* Frees x leaving the target as it was; NULL is a no-op. */
void mlc_export_discard(mlc_request_export *x);

#endif
