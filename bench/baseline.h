/* baseline.h: `mlc-bench baseline set|list|rm`: named runs in the store's baselines table,
 * the references `compare --baseline NAME` resolves. */
#ifndef MLC_BENCH_BASELINE_H
#define MLC_BENCH_BASELINE_H

int mlc_cmd_baseline(int argc, char **argv);

#endif
