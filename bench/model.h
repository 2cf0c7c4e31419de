/* model.h: `mlc-bench model SUBCOMMAND`: inspect (info) model files. */
#ifndef MLC_BENCH_MODEL_H
#define MLC_BENCH_MODEL_H

int mlc_cmd_model(int argc, char **argv);

#endif
