/* synth.h: `mlc-bench model synth`: deterministic random-weight llama/qwen2 GGUF files. */
#ifndef MLC_BENCH_SYNTH_H
#define MLC_BENCH_SYNTH_H

int mlc_cmd_model_synth(int argc, char **argv);

#endif
