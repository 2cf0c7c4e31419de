/* canary.h: `mlc-bench canary`: the gate between two live endpoints (DESIGN.md, Scale-out).
 *
 * The same prompts go to a baseline and a candidate endpoint, interleaved in a seeded random
 * order, each endpoint at the same closed-loop concurrency, and are paired per prompt. Per
 * latency metric (TTFT, TPOT, E2E; milliseconds, lower is better) the candidate regresses
 * when all three hold: the one-sided Wilcoxon signed-rank test on the per-prompt differences
 * (candidate - baseline) gives p < alpha, the median moved up by more than the threshold
 * (percent of the baseline's median), and by more than the noise floor (ms). The error rate
 * regresses when a one-sided two-proportion z-test gives p < alpha. Output tokens per request
 * are reported. Both sides are stored as runs linked by one run group. */
#ifndef MLC_BENCH_CANARY_H
#define MLC_BENCH_CANARY_H

#include <stddef.h>
#include <stdint.h>

int mlc_cmd_canary(int argc, char **argv);

/* One-sided p-value of the Wilcoxon signed-rank test that the differences d[0..n) are
 * centred above 0 (zeros dropped, ties given average ranks): exact for up to 30 non-zero
 * differences without ties, else the normal approximation with tie and continuity
 * corrections. *n_used: the non-zero differences. 1 when none. d is reordered. */
double mlc_wilcoxon_greater(double *d, size_t n, size_t *n_used);

/* One-sided p-value that proportion fb/nb (baseline) is below fc/nc (candidate): the pooled
 * two-proportion z-test; 1 when both proportions are 0 or 1 or a side is empty. */
double mlc_two_prop_greater(int64_t fb, int64_t nb, int64_t fc, int64_t nc);

#endif
