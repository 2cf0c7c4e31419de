/* main.c: the mlc-bench command line: dispatches to one module per command. */
#include <stdio.h>
#include <string.h>

#include "ab.h"
#include "baseline.h"
#include "canary.h"
#include "compare.h"
#include "conformance.h"
#include "db.h"
#include "devices.h"
#include "generate.h"
#include "micro.h"
#include "ppl.h"
#include "run.h"
#include "serve.h"
#include "model.h"
#include "../reports/report.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv); /* NULL: a second help line of the command above */
    const char *args, *what;          /* for --help; what may continue on lines of its own */
} command;

/* The one list of commands: dispatch and --help both read it. */
static const command commands[] = {
    {"run", mlc_cmd_run, "[options]", "replay a dataset against the engine (--model) or an OpenAI-\n"
                                      "compatible endpoint (--endpoint); TTFT, ITL, TPOT, E2E, tok/s"},
    {"devices", mlc_cmd_devices, "", "backends built into this binary and the devices they see"},
    {"model", mlc_cmd_model, "info FILE", "a GGUF model's architecture, hyper-parameters, tokenizer and\n"
                                          "tensors (--json for machine-readable output)"},
    {"model", NULL, "synth -o F", "a deterministic random-weight GGUF of any llama/qwen2/gemma3 shape\n"
                                  "(--preset tiny|110m|llama2-7b|..., --type q4_k_m|...)"},
    {"generate", mlc_cmd_generate, "-m M -p T", "stream a completion from the reference engine"},
    {"tokenize", mlc_cmd_tokenize, "-m M -p T", "token ids and pieces of a text (vocabulary-only files work)"},
    {"serve", mlc_cmd_serve, "-m M", "OpenAI-compatible HTTP server on the engine (--engine null: none)"},
    {"micro", mlc_cmd_micro, "-m M", "engine throughput like llama-bench (-p 512 -n 128 -r 5 -o md)"},
    {"ppl", mlc_cmd_ppl, "-m M --text F", "perplexity by llama.cpp's algorithm (--ctx N), KL-divergence"},
    {"report", mlc_cmd_report, "[options]", "markdown or single-file HTML report, gnuplot charts, of stored runs"},
    {"compare", mlc_cmd_compare, "[options]", "the regression gate: a run against a run, a named baseline\n"
                                              "or the last N runs; exit 1 on a regression"},
    {"baseline", mlc_cmd_baseline, "set|list|show|rm", "\nnamed baselines for compare"},
    {"db", mlc_cmd_db, "info|export|merge", "the store as a file: its summary, rows as JSONL/CSV,\n"
                                           "stores of many machines (run --shard) merged into one"},
    {"canary", mlc_cmd_canary, "--baseline U --candidate U", "\nthe same prompts to two live endpoints, paired;\n"
                                                           "exit 1 when the candidate is slower or fails more"},
    {"ab", mlc_cmd_ab, "--base A --head B", "two builds in rounds of random order, then the gate"},
    {"conformance", mlc_cmd_conformance, "[options]", "every op, type and shape of a backend against the float64\n"
                                                      "reference; a model against the CPU (-o json|junit|md|html)"},
};

static void usage(void)
{
    fputs("usage: mlc-bench [COMMAND [ARGS...]]\n"
          "\n"
          "Benchmarking, conformance and regression suite for LLM inference. With no arguments:\n"
          "the CPU engine on a built-in synthetic model (made once, cached under\n"
          "$XDG_CACHE_HOME/mlc-bench) and the built-in dataset at concurrency 1 and 4; results in\n"
          "./mlc-bench.db. Run options without a command mean `run`.\n"
          "\n"
          "commands:\n", stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const command *c = &commands[i];
        char head[64];
        snprintf(head, sizeof head, "%s %s", c->name, c->args);
        printf("  %-24s", head);
        for (const char *w = c->what, *nl; w; w = nl ? nl + 1 : NULL) {
            nl = strchr(w, '\n');
            printf("%s%.*s\n", w != c->what ? "                           " : *w != '\n' ? " " : "",
                   nl ? (int)(nl - w) : (int)strlen(w), w);
        }
    }
    fputs("\n"
          "  mlc-bench COMMAND --help   options of one command\n"
          "  mlc-bench --version        version and backends of this build\n"
          "\n"
          "exit status: 0 success, 1 failure (bad file, failed run), 2 usage error\n", stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return mlc_cmd_default();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage();
        return 0;
    }
    /* `mlc-bench --backend cuda --model m.gguf ...` is `mlc-bench run ...`. */
    if (argv[1][0] == '-' && strcmp(argv[1], "--version")) {
        argv[0] = "run";
        return mlc_cmd_run(argc, argv);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mlc-bench %s (backends: %s)\n", MLC_VERSION, MLC_BACKENDS);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn && !strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mlc-bench: unknown command '%s' (see mlc-bench --help)\n", argv[1]);
    return 2;
}
