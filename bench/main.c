/* main.c: the mlc-bench command line: dispatches to one module per command. */
#include <stdio.h>
#include <string.h>

#include "ab.h"
#include "baseline.h"
#include "compare.h"
#include "conformance.h"
#include "devices.h"
#include "generate.h"
#include "micro.h"
#include "ppl.h"
#include "run.h"
#include "serve.h"
#include "model.h"
#include "report.h"

static const char usage[] =
    "usage: mlc-bench [COMMAND [ARGS...]]\n"
    "\n"
    "Benchmarking, conformance and regression suite for LLM inference. With no arguments:\n"
    "the CPU engine on a built-in synthetic model (made once, cached under\n"
    "$XDG_CACHE_HOME/mlc-bench) and the built-in dataset at concurrency 1 and 4; results in\n"
    "./mlc-bench.db. Run options without a command mean `run`.\n"
    "\n"
    "commands:\n"
    "  run [options]        replay a dataset against the engine (--model) or an OpenAI-\n"
    "                       compatible endpoint (--endpoint); TTFT, ITL, TPOT, E2E, tok/s\n"
    "  devices              backends built into this binary and the devices they see\n"
    "  model info FILE      a GGUF model's architecture, hyper-parameters, tokenizer and\n"
    "                       tensors (--json for machine-readable output)\n"
    "  generate -m M -p T   stream a completion from the reference engine\n"
    "  tokenize -m M -p T   token ids and pieces of a text (vocabulary-only files work)\n"
    "  serve -m M           OpenAI-compatible HTTP server on the engine (--engine null: none)\n"
    "  micro -m M           engine throughput like llama-bench (-p 512 -n 128 -r 5 -o md)\n"
    "  ppl -m M --text F    perplexity by llama.cpp's algorithm (--ctx N), stored\n"
    "  report [options]     markdown or single-file HTML report, gnuplot charts, of stored runs\n"
    "\n"
    "  mlc-bench COMMAND --help   options of one command\n"
    "  mlc-bench --version        version and backends of this build\n"
    "\n"
    "exit status: 0 success, 1 failure (bad file, failed run), 2 usage error\n";

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
    {"devices", mlc_cmd_devices},
    {"model", mlc_cmd_model},
    {"generate", mlc_cmd_generate},
    {"tokenize", mlc_cmd_tokenize},
    {"micro", mlc_cmd_micro},
    {"ppl", mlc_cmd_ppl},
    {"run", mlc_cmd_run},
    {"serve", mlc_cmd_serve},
    {"report", mlc_cmd_report},
    {"compare", mlc_cmd_compare},
    {"baseline", mlc_cmd_baseline},
    {"ab", mlc_cmd_ab},
    {"conformance", mlc_cmd_conformance},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return mlc_cmd_default();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
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
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mlc-bench: unknown command '%s' (see mlc-bench --help)\n", argv[1]);
    return 2;
}
