/* generate.c: `mlc-bench generate` streams a completion through the scheduler (the same
 * path the benchmark and the server use); `mlc-bench tokenize` does what llama-tokenize
 * does, and works on vocabulary-only GGUF files. */
#include "generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mlc/gguf.h"
#include "mlc/model.h"
#include "mlc/sampler.h"
#include "mlc/sched.h"
#include "mlc/tokenizer.h"

static const char gen_usage[] =
    "usage: mlc-bench generate -m MODEL.gguf -p TEXT [options]\n"
    "  -n N            tokens to generate (default 64; generation also stops at end of text;\n"
    "                  0: process and time the prompt only)\n"
    "  --temp T        temperature (default 0: greedy)\n"
    "  --top-k K       (default 40)   --top-p P (default 0.95)   --min-p P (default 0.05)\n"
    "  --seed S        sampling seed (same seed, same tokens)\n"
    "  --ids           print the prompt's and the generated token ids instead of text\n"
    "  --ignore-eos    do not stop at end-of-generation tokens\n"
    "  --backend B     cpu (default) | cuda | hip | vulkan | opencl   -t N  threads\n"
    "  --device N      device of the backend (default 0; `mlc-bench devices` lists them)\n"
    "  --ctx N         context length (default: the prompt plus -n)\n"
    "  --kv-f32        F32 KV cache (default F16)\n"
    "Timings go to stderr.\n";

typedef struct gen_opts {
    const char *model, *prompt, *backend;
    int n, threads, ctx, device;
    bool ids, ignore_eos, kv_f32;
    mlc_sampler_params sp;
} gen_opts;

static int parse_gen(int argc, char **argv, gen_opts *o)
{
    *o = (gen_opts){.backend = "cpu", .n = 64, .sp = mlc_sampler_default_params()};
    o->sp.temperature = 0;
    static const char *const valued[] = {"-m", "--model", "-p", "--prompt", "--backend", "--device", "-n", "-t", "--threads",
                                         "--ctx", "--temp", "--top-k", "--top-p", "--min-p", "--seed", NULL};
    const char *c = "generate", *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(gen_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--ids")) {
            o->ids = true;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (!strcmp(a, "--kv-f32")) {
            o->kv_f32 = true;
        } else if (!(v = mlc_cli_option_value(c, valued, argc, argv, &i))) {
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            o->prompt = v;
        } else if (!strcmp(a, "--backend")) {
            o->backend = v;
        } else if (!strcmp(a, "--device")) {
            ok = mlc_cli_int(c, a, v, 0, 1023, &o->device);
        } else if (!strcmp(a, "-n")) {
            ok = mlc_cli_int(c, a, v, 0, 1 << 24, &o->n);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            ok = mlc_cli_int(c, a, v, 1, 1024, &o->threads);
        } else if (!strcmp(a, "--ctx")) {
            ok = mlc_cli_int(c, a, v, 8, 1 << 24, &o->ctx);
        } else if (!strcmp(a, "--temp")) {
            ok = mlc_cli_float(c, a, v, 0, 100, &o->sp.temperature);
        } else if (!strcmp(a, "--top-k")) {
            ok = mlc_cli_int(c, a, v, 0, 1 << 30, &o->sp.top_k);
        } else if (!strcmp(a, "--top-p")) {
            ok = mlc_cli_float(c, a, v, 0, 1, &o->sp.top_p);
        } else if (!strcmp(a, "--min-p")) {
            ok = mlc_cli_float(c, a, v, 0, 1, &o->sp.min_p);
        } else if (!strcmp(a, "--seed")) {
            ok = mlc_cli_u64(c, a, v, &o->sp.seed);
        } else {
            fprintf(stderr, "mlc-bench generate: unknown option '%s'\n%s", a, gen_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (!o->model || !o->prompt) {
        fprintf(stderr, "mlc-bench generate: -m and -p are required\n%s", gen_usage);
        return 2;
    }
    return -1;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    printf("%s [", label);
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? ", " : "", ids[i]);
    printf("]\n");
}

static void print_piece(const mlc_tokenizer *tok, int32_t id)
{
    char buf[256];
    size_t n = mlc_token_to_piece(tok, id, buf, sizeof buf, false);
    fwrite(buf, 1, n < sizeof buf ? n : sizeof buf, stdout);
    fflush(stdout);
}

/* Steps the scheduler until the one request ends, streaming its tokens. */
static int run_gen(const gen_opts *o, mlc_context *ctx, const mlc_tokenizer *tok,
                   const int32_t *prompt, size_t n_prompt)
{
    mlc_sched *s;
    mlc_err err;
    int64_t id;
    /* -n 0 times the prompt alone: max_tokens 0 would mean "no limit", so one token is asked
     * for (the prompt's own logits give it), neither kept nor shown. */
    mlc_request_params rp = {.sampling = o->sp, .max_tokens = o->n > 0 ? o->n : 1, .ignore_eos = o->ignore_eos};
    if (mlc_sched_new(ctx, NULL, &s, &err) || mlc_sched_submit(s, prompt, n_prompt, &rp, &id, &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        return 1;
    }
    int32_t *out = malloc(((size_t)o->n + 1) * sizeof *out);
    size_t n_out = 0;
    double t0 = mlc_cli_now(), t_first = 0;
    bool first = false;
    mlc_finish fin = MLC_FINISH_NONE;
    int rc = 0;
    while (fin == MLC_FINISH_NONE && out) {
        if (mlc_sched_step(s, &err)) {
            fprintf(stderr, "\nmlc-bench: %s\n", err.msg);
            rc = 1;
            break;
        }
        int ne;
        const mlc_sched_event *ev = mlc_sched_events(s, &ne);
        for (int i = 0; i < ne; i++) {
            if (ev[i].finish != MLC_FINISH_NONE)
                fin = ev[i].finish;
            if (ev[i].token < 0)
                continue;
            if (!first)
                t_first = mlc_cli_now();
            first = true;
            if (o->n == 0)
                continue;
            out[n_out++] = ev[i].token;
            if (!o->ids)
                print_piece(tok, ev[i].token);
        }
    }
    double t1 = mlc_cli_now();
    if (o->ids)
        print_ids("generated:", out, n_out);
    else
        printf("\n");
    /* The prompt is timed to its first token; without one (an error) there is no time to give. */
    if (first)
        fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tok/s); ", n_prompt, t_first - t0,
                n_prompt / (t_first - t0 + 1e-12));
    else
        fprintf(stderr, "prompt: %zu tokens, not timed (no token came back); ", n_prompt);
    fprintf(stderr, "generated: %zu tokens (%s), %.1f tok/s\n", n_out, mlc_finish_str(fin),
            n_out > 1 ? (double)(n_out - 1) / (t1 - t_first) : 0.0);
    free(out);
    mlc_sched_free(s);
    return rc;
}

int mlc_cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_gen(argc, argv, &o);
    if (rc >= 0)
        return rc;
    mlc_err err;
    mlc_model *m;
    mlc_model_params mp = {.backend = o.backend, .device = o.device, .n_threads = o.threads};
    if (mlc_model_load(o.model, &mp, &m, &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        return 1;
    }
    const mlc_tokenizer *tok = mlc_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    mlc_context *ctx = NULL;
    rc = 1;
    if (mlc_tokenize(tok, o.prompt, strlen(o.prompt), true, true, &ids, &n_ids, &err))
        goto fail;
    mlc_context_params cp = {.n_ctx = o.ctx ? o.ctx : (int)n_ids + o.n + 1, .n_slots = 1,
                             .kv_type = o.kv_f32 ? MLC_KV_F32 : MLC_KV_F16};
    if (mlc_context_new(m, &cp, &ctx, &err))
        goto fail;
    if (o.ids)
        print_ids("prompt:", ids, n_ids);
    else
        printf("%s", o.prompt);
    rc = run_gen(&o, ctx, tok, ids, n_ids);
    goto done;
fail:
    fprintf(stderr, "mlc-bench: %s\n", err.msg);
done:
    free(ids);
    mlc_context_free(ctx);
    mlc_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- tokenize */

static const char tok_usage[] =
    "usage: mlc-bench tokenize -m MODEL.gguf (-p TEXT | -f FILE) [--ids] [--no-bos]\n"
    "                         [--no-parse-special]\n"
    "Prints each token as 'id -> \\'piece\\'' (with --ids: one list of ids), like llama-tokenize.\n"
    "Works on vocabulary-only GGUF files. Vocabularies: llama (SentencePiece), gpt2 (BPE with\n"
    "llama.cpp's pre-tokenizers: gpt-2, llama3, qwen2, qwen35, starcoder, deepseek-*, gpt-4o, ...)\n"
    "and gemma4; the README lists every pre-tokenizer name.\n";

static int print_tokens(const mlc_tokenizer *tok, const int32_t *ids, size_t n, bool only_ids)
{
    if (only_ids) {
        print_ids("", ids, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        size_t len = mlc_token_to_piece(tok, ids[i], buf, sizeof buf, true);
        printf("%6d -> '%.*s'\n", ids[i], (int)(len < sizeof buf ? len : sizeof buf), buf);
    }
    return 0;
}

int mlc_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *file = NULL, *v;
    bool ids = false, bos = true, special = true;
    static const char *const valued[] = {"-m", "--model", "-p", "--prompt", "-f", "--file", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(tok_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--ids")) {
            ids = true;
        } else if (!strcmp(a, "--no-bos")) {
            bos = false;
        } else if (!strcmp(a, "--no-parse-special")) {
            special = false;
        } else if (!(v = mlc_cli_option_value("tokenize", valued, argc, argv, &i))) {
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            text = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            file = v;
        } else {
            fprintf(stderr, "mlc-bench tokenize: unknown option '%s'\n%s", a, tok_usage);
            return 2;
        }
    }
    if (!model || !!text == !!file) {
        fprintf(stderr, "mlc-bench tokenize: give -m and exactly one of -p, -f\n%s", tok_usage);
        return 2;
    }
    mlc_err err;
    mlc_gguf *g = NULL;
    mlc_tokenizer *tok = NULL;
    char *buf = NULL;
    int32_t *out = NULL;
    size_t len = 0, n = 0;
    int rc = 1;
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            fprintf(stderr, "mlc-bench: %s: cannot open\n", file);
            return 1;
        }
        size_t cap = 1 << 16, got;
        buf = malloc(cap);
        while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
            len += got;
            if (len == cap)
                buf = realloc(buf, cap *= 2);
        }
        fclose(f);
        if (!buf) {
            fprintf(stderr, "mlc-bench: %s: out of memory\n", file);
            return 1;
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    if (mlc_gguf_open(model, &g, &err) || mlc_tokenizer_load(g, &tok, &err) ||
        mlc_tokenize(tok, text, len, bos, special, &out, &n, &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
    } else {
        /* --no-bos turns off all added special tokens (BOS, and EOS where the vocabulary adds it), as llama-tokenize does. */
        rc = print_tokens(tok, out, n, ids);
    }
    free(out);
    free(buf);
    mlc_tokenizer_free(tok);
    mlc_gguf_close(g);
    return rc;
}
