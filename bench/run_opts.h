/* run_opts.h: the options of `mlc-bench run`: parsed strictly (one line naming the option
 * and exit 2 on anything else), its --help, and the options as the run's config JSON. */
#ifndef MLC_BENCH_RUN_OPTS_H
#define MLC_BENCH_RUN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "dataset.h"
#include "load.h"
#include "slo.h"

typedef struct mlc_run_opts {
    /* target */
    const char *backend, *model, *endpoint, *api, *model_name, *api_key_env, *tokenizer;
    int threads, ctx, parallel, device;
    double timeout_s;
    /* dataset */
    mlc_dataset_opts ds;
    const char *dataset;
    int output_len;
    bool ignore_eos;
    float temperature;
    /* load */
    mlc_load_point points[MLC_LOAD_MAX_POINTS];
    int n_points;
    double conc_list[MLC_LOAD_MAX_POINTS], rate_list[MLC_LOAD_MAX_POINTS];
    int n_conc, n_rate;
    const char *arrival;
    double burstiness, duration_s, time_scale;
    int num_prompts, warmup, sweep;
    uint64_t seed;
    bool multi_turn, history_dataset; /* --multi-turn, --history dataset */
    double think_s;                    /* --think-time */
    int shard_index, shard_count;      /* --shard I/N (count 0: not sharded) */
    const char *run_group;             /* --run-group */
    double start_at;                   /* --start-at: epoch seconds (0: at once) */
    mlc_slo_spec slo;
    const char *slo_text;
    /* output */
    const char *db, *label, *json_path, *format, *outputs, *save_requests;
    double progress_s;
    bool quiet;
} mlc_run_opts;

/* Fills *o from argv: -1 to run, 0 after --help (printed), 2 after a usage error (said on
 * stderr in one line). */
int mlc_run_opts_parse(int argc, char **argv, mlc_run_opts *o);
/* The options as a JSON object text (malloc'd; NULL on out of memory). */
char *mlc_run_opts_config_json(const mlc_run_opts *o);
/* The most requests in flight any load point asks for (16 at least for open loops). */
int mlc_run_opts_max_concurrency(const mlc_run_opts *o);

#endif
