/* kind_view.h: views of one kind of run: `micro` (tokens/s of each test per setting), `ppl`
 * (the perplexity of each chunk) and load curves (throughput against p99 latency over the
 * load points of one or more sweeps). */
#ifndef MLC_REPORTS_KIND_VIEW_H
#define MLC_REPORTS_KIND_VIEW_H

#include "doc.h"

/* Samples metric under which `ppl` stores each chunk's own perplexity (rep = chunk index). */
#define MLC_PPL_CHUNK_METRIC "chunk_ppl"

/* A micro run: a table of setting (t=N), test (ppN, tgN), mean and sd of tokens/s and
 * repetitions, and a bar chart of the means per setting. */
void mlc_view_micro(mlc_doc *d, int64_t run);

/* A ppl run: the perplexity of every chunk, as a table and a line chart. */
void mlc_view_ppl(mlc_doc *d, int64_t run);

/* Runs with several load points (concurrency or rate sweeps): per point the request and
 * output throughput and the p99 TTFT and E2E latency, and a chart of p99 E2E latency
 * against output throughput, one curve per run. Runs with fewer points are left out. */
void mlc_view_load_curve(mlc_doc *d, const int64_t *runs, int n);

#endif
