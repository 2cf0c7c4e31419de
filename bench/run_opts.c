/* run_opts.c: the options of `mlc-bench run` (run_opts.h). */
#include "run_opts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define DEFAULT_PROGRESS_S 5.0     /* between progress lines when stderr is not a terminal */

static const char run_usage[] =
    "usage: mlc-bench run (--backend B --model M.gguf | --endpoint URL) [options]\n"
    "target:\n"
    "  --backend B --model M.gguf [--device N] [-t N] [--ctx N] [--parallel N]   the engine,\n"
    "                 in-process (backend cpu, device 0; threads: all cores; ctx: the model's, at most 8192;\n"
    "                 parallel: the largest concurrency, at least 16 for --rate/--sweep,\n"
    "                 at most 64)\n"
    "  --endpoint URL [--api chat|completions] [--model-name NAME] [--api-key-env VAR]\n"
    "                 [--tokenizer M.gguf] [--timeout S]          any OpenAI-compatible server\n"
    "                 (api completions; model name \"default\"; timeout 600 s per request;\n"
    "                 chat messages go to completions as \"ROLE: CONTENT\" lines + \"assistant:\")\n"
    "dataset:\n"
    "  --dataset default|random|prefix|FILE [--dataset-format auto|sharegpt|jsonl|trace]\n"
    "                 (default: the built-in prompts; format auto)\n"
    "  --input-len N --output-len N --range-ratio R   (random; defaults 128, 128, 0;\n"
    "                 --output-len also caps the others, whose entries say, else 128)\n"
    "  --prefixes P --prefix-len L --suffix-len S   (prefix: shared-prefix prompts for\n"
    "                 prefix caches, random ids: each one of P prefixes of L tokens, drawn\n"
    "                 uniformly, then S tokens of its own; defaults 10, 256, 256; TTFT is\n"
    "                 reported apart for prefixes sent before and those sent first)\n"
    "  --num-prompts N | --duration S   (default: every prompt once; random, prefix: 1000)\n"
    "  --seed S (default 0)   --ignore-eos   --temperature T (default 0)\n"
    "  --multi-turn [--history real|dataset] [--think-time S]   replay conversations (ShareGPT,\n"
    "                 JSONL \"messages\") turn by turn, each user turn sent S seconds (default\n"
    "                 0) after the answer before it, with the history so far: the model's\n"
    "                 answers (real, the default) or the dataset's; --concurrency counts\n"
    "                 conversations, --rate starts them; endpoints only\n"
    "load (comma lists run one after another):\n"
    "  --concurrency LIST          closed loop: LIST requests in flight, integers in\n"
    "                              [1, 65536] (default 1)\n"
    "  --rate LIST [--burstiness K] [--arrival poisson|constant]   open loop, requests/s in\n"
    "                              [0.001, 1e6], or inf: every request at once (maximum\n"
    "                              throughput); defaults poisson, K 1 (< 1 burstier)\n"
    "  --rate R --concurrency C    open loop capped at C in flight (arrivals keep their\n"
    "                              schedule; sends wait for a free slot)\n"
    "  --sweep [N]                 synchronous, max throughput, then N rates evenly between\n"
    "                              their throughputs, ascending (default 5)\n"
    "  --warmup N (default 0)      unrecorded requests first, on the first load point's shape\n"
    "  --time-scale X (default 1)  trace speed: entry times divided by X; a trace may last at\n"
    "                              most 1e6 s at that speed unless --duration cuts it\n"
    "  --slo ttft=MS,tpot=MS,e2e=MS   goodput: requests meeting every SLO, per second\n"
    "  --slo ttft_p99=MS,tpot_p90=MS,...   percentile bounds, each judged at 99% confidence\n"
    "                              (binomial, as MLPerf's early stopping): pass, fail, or not\n"
    "                              enough requests: need N (p99 with no request above the\n"
    "                              bound needs 459); a failed request violates every bound;\n"
    "                              each bound also counts for goodput; stored in the 'slo' table\n"
    "scale-out (one load from many machines, merged with `mlc-bench db merge`):\n"
    "  --shard I/N --run-group ID  this process is shard I (from 0) of N: closed loop, every\n"
    "                              N-th request from the I-th (--num-prompts counts the\n"
    "                              whole); open loop, rate/N with its own seeded arrivals\n"
    "                              (N Poisson streams add up to one at the full rate);\n"
    "                              recorded with the run (not with --sweep or a trace)\n"
    "  --start-at EPOCH_S          wait until this Unix time before the first request, so\n"
    "                              that shards start together (clocks synced by NTP)\n"
    "output:\n"
    "  --db FILE (default ./mlc-bench.db or $MLC_BENCH_DB)  --label TEXT  --json FILE\n"
    "  --format table|md (default table)   --quiet (no progress or summary line)\n"
    "  --progress-interval S       seconds between progress lines when stderr is not a\n"
    "                              terminal, as in CI logs (default 5; on a terminal one line\n"
    "                              is redrawn instead)\n"
    "  --outputs FILE      what each request generated, as JSONL (idx, load, ok, text or\n"
    "                      token_ids), for checking correctness alongside speed\n"
    "  --save-requests FILE.jsonl   every request as a JSON line, with vLLM's field names and\n"
    "                      units (seconds on the run's clock): load, phase, idx, scheduled_time,\n"
    "                      start_time (sent), ttft, itl (every gap), latency, prompt_len,\n"
    "                      output_tokens, tokens_approximate, success, error, error_kind,\n"
    "                      http_status (and conversation, turn with --multi-turn)\n"
    "Failed requests print their first reasons (kind, HTTP status, URL, the server's message)\n"
    "on stderr and are stored with them.\n"
    "Exit: 0 every request ok, 1 any request failed (the run is still stored 'complete' when\n"
    "some succeeded), an --slo percentile bound failed, or the run failed, 2 usage error,\n"
    "130 interrupted.\n";

/* Options that take a value (the rest are flags): an unknown option is told apart from a
 * known one missing its value. */
static const char *const value_options[] = {
    "--backend", "--device", "--model", "-m", "--endpoint", "--api", "--model-name", "--api-key-env",
    "--tokenizer", "-t", "--threads", "--ctx", "--parallel", "--timeout", "--dataset",
    "--dataset-format", "--input-len", "--output-len", "--range-ratio", "--num-prompts", "--prefixes",
    "--prefix-len", "--suffix-len", "--history", "--think-time",
    "--duration", "--seed", "--temperature", "--concurrency", "--rate", "--burstiness",
    "--arrival", "--warmup", "--time-scale", "--slo", "--db", "--label", "--json", "--outputs", "--save-requests",
    "--format", "--progress-interval", "--shard", "--run-group", "--start-at", NULL};

/* Unix time in seconds (fractions allowed); a float would round it to minutes. */
static bool parse_epoch(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double t = strtod(v, &end);
    if (errno || end == v || *end || !(t >= 0 && t < 1e11)) {
        fprintf(stderr, "mlc-bench run: --start-at: '%s' is not a Unix time in seconds\n", v);
        return false;
    }
    *out = t;
    return true;
}

static bool opt_value(const char *a, const char *v, mlc_run_opts *o, bool *known)
{
    const char *c = "run";
    bool ok = true;
    *known = true;
    if (!strcmp(a, "--backend")) o->backend = v;
    else if (!strcmp(a, "--device")) ok = mlc_cli_int(c, a, v, 0, 1023, &o->device);
    else if (!strcmp(a, "--model") || !strcmp(a, "-m")) o->model = v;
    else if (!strcmp(a, "--endpoint")) o->endpoint = v;
    else if (!strcmp(a, "--api")) {
        o->api = v;
        ok = !strcmp(v, "chat") || !strcmp(v, "completions");
        if (!ok) fprintf(stderr, "mlc-bench run: --api: '%s' (chat, completions)\n", v);
    }
    else if (!strcmp(a, "--model-name")) o->model_name = v;
    else if (!strcmp(a, "--api-key-env")) o->api_key_env = v;
    else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = mlc_cli_int(c, a, v, 1, 1024, &o->threads);
    else if (!strcmp(a, "--ctx")) ok = mlc_cli_int(c, a, v, 16, 1 << 24, &o->ctx);
    else if (!strcmp(a, "--parallel")) ok = mlc_cli_int(c, a, v, 1, 4096, &o->parallel);
    else if (!strcmp(a, "--timeout")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0.001, 1e6, &f);
        o->timeout_s = f;
    }
    else if (!strcmp(a, "--dataset")) o->dataset = v;
    else if (!strcmp(a, "--dataset-format")) o->ds.format = v;
    else if (!strcmp(a, "--input-len")) ok = mlc_cli_int(c, a, v, 1, 1 << 20, &o->ds.input_len);
    else if (!strcmp(a, "--history")) {
        o->history_dataset = !strcmp(v, "dataset");
        ok = o->history_dataset || !strcmp(v, "real");
        if (!ok) fprintf(stderr, "mlc-bench run: --history: '%s' (real, dataset)\n", v);
    }
    else if (!strcmp(a, "--think-time")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0, 3600, &f);
        o->think_s = f;
    }
    else if (!strcmp(a, "--prefixes")) ok = mlc_cli_int(c, a, v, 1, 1 << 20, &o->ds.n_prefixes);
    else if (!strcmp(a, "--prefix-len")) ok = mlc_cli_int(c, a, v, 1, 1 << 20, &o->ds.prefix_len);
    else if (!strcmp(a, "--suffix-len")) ok = mlc_cli_int(c, a, v, 0, 1 << 20, &o->ds.suffix_len);
    else if (!strcmp(a, "--output-len")) ok = mlc_cli_int(c, a, v, 1, 1 << 20, &o->output_len);
    else if (!strcmp(a, "--range-ratio")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0, 1, &f);
        o->ds.range_ratio = f;
    }
    else if (!strcmp(a, "--num-prompts")) ok = mlc_cli_int(c, a, v, 1, 1 << 24, &o->num_prompts);
    else if (!strcmp(a, "--duration")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0.001, 1e7, &f);
        o->duration_s = f;
    }
    else if (!strcmp(a, "--seed")) ok = mlc_cli_u64(c, a, v, &o->seed);
    else if (!strcmp(a, "--temperature")) ok = mlc_cli_float(c, a, v, 0, 100, &o->temperature);
    else if (!strcmp(a, "--concurrency")) ok = mlc_load_parse_list(a, v, o->conc_list, &o->n_conc, false);
    else if (!strcmp(a, "--progress-interval")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0.01, 3600, &f);
        o->progress_s = f;
    }
    else if (!strcmp(a, "--rate")) ok = mlc_load_parse_list(a, v, o->rate_list, &o->n_rate, true);
    else if (!strcmp(a, "--burstiness")) {
        float f;
        ok = mlc_cli_float(c, a, v, 0.001, 1000, &f);
        o->burstiness = f;
    }
    else if (!strcmp(a, "--arrival")) {
        o->arrival = v;
        ok = !strcmp(v, "poisson") || !strcmp(v, "constant");
        if (!ok) fprintf(stderr, "mlc-bench run: --arrival: '%s' (poisson, constant)\n", v);
    }
    else if (!strcmp(a, "--warmup")) ok = mlc_cli_int(c, a, v, 0, 1 << 20, &o->warmup);
    else if (!strcmp(a, "--time-scale")) {
        float f;
        ok = mlc_cli_float(c, a, v, 1e-6, 1e6, &f);
        o->time_scale = f;
    }
    else if (!strcmp(a, "--slo")) {
        char msg[256];
        ok = mlc_slo_spec_parse(v, &o->slo, msg, sizeof msg);
        o->slo_text = v;
        if (!ok) fprintf(stderr, "mlc-bench run: %s\n", msg);
    }
    else if (!strcmp(a, "--shard")) ok = mlc_shard_parse(v, &o->shard_index, &o->shard_count);
    else if (!strcmp(a, "--run-group")) o->run_group = v;
    else if (!strcmp(a, "--start-at")) ok = parse_epoch(v, &o->start_at);
    else if (!strcmp(a, "--db")) o->db = v;
    else if (!strcmp(a, "--label")) o->label = v;
    else if (!strcmp(a, "--json")) o->json_path = v;
    else if (!strcmp(a, "--outputs")) o->outputs = v;
    else if (!strcmp(a, "--save-requests")) o->save_requests = v;
    else if (!strcmp(a, "--format")) {
        o->format = v;
        ok = !strcmp(v, "table") || !strcmp(v, "md");
        if (!ok) fprintf(stderr, "mlc-bench run: --format: '%s' (table, md)\n", v);
    }
    else *known = false;
    return ok;
}

int mlc_run_opts_parse(int argc, char **argv, mlc_run_opts *o)
{
    *o = (mlc_run_opts){.backend = NULL, .api = "completions", .dataset = "default",
                    .arrival = "poisson", .burstiness = 1.0, .time_scale = 1.0, .format = "table",
                    .ds = {.format = "auto", .n_prefixes = 10, .prefix_len = 256, .suffix_len = 256}, .seed = 0, .progress_s = DEFAULT_PROGRESS_S};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--ignore-eos")) { o->ignore_eos = true; continue; }
        if (!strcmp(a, "--multi-turn")) { o->multi_turn = true; continue; }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { o->quiet = true; continue; }
        if (!strcmp(a, "--sweep")) {
            o->sweep = 5;
            /* The count is optional: the next argument is it unless it is another option
             * (a negative number is a count, refused by the range). */
            const char *n = i + 1 < argc ? argv[i + 1] : NULL;
            bool count = n && (n[0] != '-' || isdigit((unsigned char)n[1]));
            if (count && !mlc_cli_int("run", a, argv[++i], 1, 30, &o->sweep))
                return 2;
            continue;
        }
        const char *v = mlc_cli_option_value("run", value_options, argc, argv, &i);
        bool known;
        if (!v)
            return 2;
        if (!opt_value(a, v, o, &known))
            return 2;
        if (!known) {
            fprintf(stderr, "mlc-bench run: unknown option '%s' (see mlc-bench run --help)\n", a);
            return 2;
        }
    }
    if (!!o->endpoint == !!o->model) {
        fprintf(stderr, "mlc-bench run: give either --model (local engine) or --endpoint\n");
        return 2;
    }
    if (o->endpoint && o->backend) {
        fprintf(stderr, "mlc-bench run: --backend applies to the local engine, not to --endpoint\n");
        return 2;
    }
    if (o->sweep && (o->n_rate || o->n_conc)) {
        fprintf(stderr, "mlc-bench run: --sweep chooses its own load; drop --rate/--concurrency\n");
        return 2;
    }
    if (!o->multi_turn && (o->history_dataset || o->think_s > 0)) {
        fprintf(stderr, "mlc-bench run: --history and --think-time apply to --multi-turn\n");
        return 2;
    }
    if (o->multi_turn && !o->endpoint) {
        fprintf(stderr, "mlc-bench run: --multi-turn needs --endpoint (the answers are sent back as text)\n");
        return 2;
    }
    if (o->shard_count && !o->run_group) {
        fprintf(stderr, "mlc-bench run: --shard needs --run-group ID (the same on every shard)\n");
        return 2;
    }
    if (o->run_group && (!o->run_group[0] || strlen(o->run_group) > 200)) {
        fprintf(stderr, "mlc-bench run: --run-group: expected 1 to 200 characters\n");
        return 2;
    }
    if (o->shard_count > 1 && o->sweep) {
        fprintf(stderr, "mlc-bench run: --sweep measures its rates on one machine; give shards --rate or "
                        "--concurrency\n");
        return 2;
    }
    if (o->run_group && !o->shard_count)
        o->shard_count = 1;
    o->ds.conversations = o->multi_turn;
    if (!o->db)
        o->db = getenv("MLC_BENCH_DB") && *getenv("MLC_BENCH_DB") ? getenv("MLC_BENCH_DB") : "mlc-bench.db";
    return -1;
}

int mlc_run_opts_max_concurrency(const mlc_run_opts *o)
{
    int c = 1;
    for (int i = 0; i < o->n_conc; i++)
        c = o->conc_list[i] > c ? (int)o->conc_list[i] : c;
    if (o->n_rate || o->sweep)
        c = c > 16 ? c : 16;
    return c;
}

char *mlc_run_opts_config_json(const mlc_run_opts *o)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "dataset", o->dataset);
    cJSON_AddNumberToObject(c, "num_prompts", o->num_prompts);
    cJSON_AddNumberToObject(c, "duration_s", o->duration_s);
    cJSON_AddNumberToObject(c, "output_len", o->output_len);
    cJSON_AddNumberToObject(c, "input_len", o->ds.input_len);
    if (!strcmp(o->dataset, "prefix")) {
        cJSON_AddNumberToObject(c, "prefixes", o->ds.n_prefixes);
        cJSON_AddNumberToObject(c, "prefix_len", o->ds.prefix_len);
        cJSON_AddNumberToObject(c, "suffix_len", o->ds.suffix_len);
    }
    cJSON_AddBoolToObject(c, "ignore_eos", o->ignore_eos);
    cJSON_AddNumberToObject(c, "temperature", o->temperature);
    cJSON_AddNumberToObject(c, "seed", (double)o->seed);
    cJSON_AddStringToObject(c, "arrival", o->arrival);
    cJSON_AddNumberToObject(c, "burstiness", o->burstiness);
    cJSON_AddNumberToObject(c, "warmup", o->warmup);
    cJSON_AddNumberToObject(c, "sweep", o->sweep);
    if (o->multi_turn) {
        cJSON_AddStringToObject(c, "history", o->history_dataset ? "dataset" : "real");
        cJSON_AddNumberToObject(c, "think_time_s", o->think_s);
    }
    if (o->slo_text)
        cJSON_AddStringToObject(c, "slo", o->slo_text);
    cJSON *loads = cJSON_AddArrayToObject(c, "load");
    for (int i = 0; i < o->n_points; i++)
        cJSON_AddItemToArray(loads, cJSON_CreateString(o->points[i].name));
    if (o->endpoint) {
        cJSON_AddStringToObject(c, "api", o->api);
        cJSON_AddNumberToObject(c, "timeout_s", o->timeout_s);
    } else {
        cJSON_AddNumberToObject(c, "threads", o->threads);
        cJSON_AddNumberToObject(c, "ctx", o->ctx);
        cJSON_AddNumberToObject(c, "parallel", o->parallel);
    }
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
}

