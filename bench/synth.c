/* synth.c: `mlc-bench model synth` writes a llama-family (llama, qwen2, gemma3) GGUF model with deterministic
 * random weights, of any shape from a test-sized toy to 7B/8B, for benchmarking engines
 * without downloading a model.
 *
 * Weights are N(0, 1/n_in) so activations keep their scale through the layers (norms are
 * 1 + N(0, 0.01)). Every tensor is generated from its own stream (seed, tensor name), one
 * tensor at a time through the GGUF writer's fill callback, so an 8B file needs one tensor
 * in memory, not the model. The tokenizer is copied from --vocab FILE.gguf, or trained (a
 * byte-level BPE) on datasets/corpus.txt and padded with unused tokens to the vocabulary
 * size of the shape. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "embed.h"
#include "mlc/gguf_writer.h"
#include "mlc/quant.h"
#include "mlc/vocab.h"
#include "../kernels/ref/ref.h"

typedef struct shape {
    const char *name, *arch;
    int dim, layers, heads, kv_heads, ffn, ctx, vocab;
    float rope_base;
    int head_dim; /* 0: dim / heads */
    int window;   /* gemma3: sliding window of the local layers */
} shape;

static const shape presets[] = {
    {"tiny", "llama", 256, 4, 8, 2, 768, 1024, 4096, 10000.0f, 0, 0},
    {"110m", "llama", 768, 12, 12, 4, 2048, 2048, 32000, 10000.0f, 0, 0},
    {"llama2-7b", "llama", 4096, 32, 32, 32, 11008, 4096, 32000, 10000.0f, 0, 0},
    {"llama3-8b", "llama", 4096, 32, 32, 8, 14336, 8192, 128256, 500000.0f, 0, 0},
    {"qwen2-0.5b", "qwen2", 896, 24, 14, 2, 4864, 4096, 151936, 1000000.0f, 0, 0},
    /* Gemma 3 270M's shape, and a toy of its kind: six layers (five local, one global) and a
     * window short enough for tests to cross. */
    {"gemma3-tiny", "gemma3", 128, 6, 4, 1, 512, 1024, 4096, 1000000.0f, 64, 32},
    {"gemma3-270m", "gemma3", 640, 18, 4, 1, 2048, 32768, 262144, 1000000.0f, 256, 512},
};

static int head_dim(const shape *s)
{
    return s->head_dim > 0 ? s->head_dim : s->dim / s->heads;
}

/* "q4_k_m": Q4_K everywhere but Q6_K for the output, and for attn_v and ffn_down in the
 * layers llama.cpp's Q4_K_M gives more bits (first and last eighth, every third between). */
#define TYPE_Q4_K_M 1000u

typedef struct override {
    const char *pattern;
    uint32_t type;
} override;

typedef struct synth {
    shape s;
    uint32_t type;          /* MLC_TYPE_* or TYPE_Q4_K_M */
    uint64_t seed;
    override ov[16];
    int n_ov;
    const char *vocab_path, *out;
    bool quiet;             /* no progress lines */
    bool rope_freqs;        /* write rope_freqs.weight: Llama 3.1 factors, or all 1 */
    float rf[4];            /* factor, low, high, original context; factor 0: all 1 */
    double every_s;         /* seconds between progress lines */
    double t0, t_shown;     /* monotonic s: writing started, last progress line */
    int64_t bytes_done, bytes_total;
    int n_tensors;
    struct {
        char name[64];
        int64_t ne[2];
        int n_dims;
        uint32_t type;
        int kind;           /* 0 matrix, 1 norm, 2 bias, 3 rope frequency factors */
    } t[2048];
} synth;

/* ---------------------------------------------------------------- random numbers */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Standard normal by Box-Muller from two uniforms in (0, 1]. */
static float gauss(uint64_t *st)
{
    double u1 = ((double)(splitmix(st) >> 11) + 1.0) / 9007199254740992.0;
    double u2 = (double)(splitmix(st) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---------------------------------------------------------------- tensor plan */

static bool more_bits(int layer, int n_layers)
{
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

static uint32_t pick_type(const synth *y, const char *name, int layer, bool matrix)
{
    if (!matrix)
        return MLC_TYPE_F32;
    for (int i = 0; i < y->n_ov; i++)
        if (strstr(name, y->ov[i].pattern))
            return y->ov[i].type;
    if (y->type != TYPE_Q4_K_M)
        return y->type;
    if (!strcmp(name, "output.weight"))
        return MLC_TYPE_Q6_K;
    if ((strstr(name, "attn_v") || strstr(name, "ffn_down")) && more_bits(layer, y->s.layers))
        return MLC_TYPE_Q6_K;
    return MLC_TYPE_Q4_K;
}

static void plan_one(synth *y, const char *name, int layer, int64_t n_in, int64_t n_out, int kind)
{
    int i = y->n_tensors++;
    snprintf(y->t[i].name, sizeof y->t[i].name, "%s", name);
    y->t[i].ne[0] = n_in;
    y->t[i].ne[1] = n_out;
    y->t[i].n_dims = n_out ? 2 : 1;
    y->t[i].kind = kind;
    y->t[i].type = pick_type(y, name, layer, kind == 0);
}

static void plan(synth *y)
{
    const shape *s = &y->s;
    int hd = head_dim(s), qd = s->heads * hd, kvd = s->kv_heads * hd;
    bool bias = !strcmp(s->arch, "qwen2"), gemma = !strcmp(s->arch, "gemma3");
    char n[64];
    plan_one(y, "token_embd.weight", -1, s->dim, s->vocab, 0);
    plan_one(y, "output_norm.weight", -1, s->dim, 0, 1);
    if (!gemma) /* gemma3 ties the output to the embedding */
        plan_one(y, "output.weight", -1, s->dim, s->vocab, 0);
    if (y->rope_freqs)
        plan_one(y, "rope_freqs.weight", -1, hd / 2, 0, 3);
    for (int l = 0; l < s->layers; l++) {
#define T(suffix, a, b, kind) (snprintf(n, sizeof n, "blk.%d." suffix, l), plan_one(y, n, l, a, b, kind))
        T("attn_norm.weight", s->dim, 0, 1);
        T("attn_q.weight", s->dim, qd, 0);
        T("attn_k.weight", s->dim, kvd, 0);
        T("attn_v.weight", s->dim, kvd, 0);
        if (bias) {
            T("attn_q.bias", qd, 0, 2);
            T("attn_k.bias", kvd, 0, 2);
            T("attn_v.bias", kvd, 0, 2);
        }
        if (gemma) {
            T("attn_q_norm.weight", hd, 0, 1);
            T("attn_k_norm.weight", hd, 0, 1);
            T("post_attention_norm.weight", s->dim, 0, 1);
            T("post_ffw_norm.weight", s->dim, 0, 1);
        }
        T("attn_output.weight", qd, s->dim, 0);
        T("ffn_norm.weight", s->dim, 0, 1);
        T("ffn_gate.weight", s->dim, s->ffn, 0);
        T("ffn_up.weight", s->dim, s->ffn, 0);
        T("ffn_down.weight", s->ffn, s->dim, 0);
#undef T
    }
}

/* A plain line every few seconds: a large shape takes minutes, and a CI log (not a
 * terminal) must show that work goes on. */
static void progress(synth *y, int64_t i)
{
    double now = mlc_cli_now();
    if (y->quiet || now - y->t_shown < y->every_s)
        return;
    y->t_shown = now;
    fprintf(stderr, "synth: %.0f%% (%lld of %d tensors, %.0f of %.0f MiB) in %.0f s\n",
            100.0 * (double)y->bytes_done / (double)y->bytes_total, (long long)i + 1, y->n_tensors,
            (double)y->bytes_done / 1048576.0, (double)y->bytes_total / 1048576.0, now - y->t0);
}

/* rope_freqs.weight [n] (n = n_rot/2): Llama 3.1's factors for the shape's base, or all 1. */
static void rope_factors(const synth *y, float *ff, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        ff[j] = 1.0f;
    if (y->rf[0] > 0)
        mlc_ref_llama3_rope_factors((int)(2 * n), y->s.rope_base, y->rf[0], y->rf[1], y->rf[2],
                                    y->rf[3], ff);
}

/* Fills one tensor: generate rows of floats and quantize them row by row. */
static mlc_status fill(void *ctx, int64_t i, void *dst, size_t nbytes, mlc_err *err)
{
    synth *y = ctx;
    int64_t n_in = y->t[i].ne[0], rows = y->t[i].n_dims == 2 ? y->t[i].ne[1] : 1;
    size_t row_bytes = mlc_type_row_bytes(y->t[i].type, n_in);
    float *row = malloc((size_t)n_in * sizeof *row);
    if (!row)
        return mlc_err_set(err, MLC_ERR_NOMEM, "synth: tensor '%s': out of memory", y->t[i].name);
    uint64_t st = name_hash(y->t[i].name, y->seed);
    float sd = y->t[i].kind == 0 ? 1.0f / sqrtf((float)n_in) : y->t[i].kind == 1 ? 0.1f : 0.02f;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < n_in; j++)
            row[j] = (y->t[i].kind == 1 ? 1.0f : 0.0f) + sd * gauss(&st);
        if (y->t[i].kind == 3) /* [n_rot/2]: computed, not random */
            rope_factors(y, row, n_in);
        mlc_quantize_row((mlc_type)y->t[i].type, row, (uint8_t *)dst + (size_t)r * row_bytes, n_in);
    }
    free(row);
    y->bytes_done += (int64_t)nbytes;
    progress(y, i);
    return MLC_OK;
}

/* ---------------------------------------------------------------- vocabulary */

/* A vocabulary trained on the embedded corpus, as an in-memory GGUF holding only the
 * tokenizer keys. *buf owns the bytes behind *out. */
static mlc_status trained_vocab(int32_t n_vocab, void **buf, mlc_gguf **out, mlc_err *err)
{
    mlc_gguf_writer *w = mlc_gguf_writer_new();
    size_t size = 0;
    mlc_status s = w ? MLC_OK : mlc_err_set(err, MLC_ERR_NOMEM, "synth: out of memory");
    if (!s)
        s = mlc_vocab_train_bpe((const char *)mlc_embed_corpus_txt, mlc_embed_corpus_txt_len, n_vocab, w, err);
    if (!s)
        s = mlc_gguf_writer_write_mem(w, buf, &size, NULL, NULL, err);
    if (!s)
        s = mlc_gguf_open_memory(*buf, size, "trained vocabulary", out, err);
    mlc_gguf_writer_free(w);
    return s;
}

/* Copies every tokenizer.* key; pads tokens and token types with unused tokens up to
 * n_vocab so the embedding has the shape asked for. */
static mlc_status copy_vocab(const mlc_gguf *v, int32_t n_vocab, mlc_gguf_writer *w, mlc_err *err)
{
    const mlc_gguf_value *toks, *types;
    mlc_status s;
    if ((s = mlc_gguf_get_arr(v, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, err)))
        return s;
    for (int64_t i = 0; i < mlc_gguf_n_kv(v); i++)
        if (!strncmp(mlc_gguf_kv_key(v, i), "tokenizer.", 10) &&
            (s = mlc_gguf_writer_set(w, mlc_gguf_kv_key(v, i), mlc_gguf_kv_value(v, i))))
            return mlc_err_set(err, s, "synth: cannot copy key '%s'", mlc_gguf_kv_key(v, i));
    int64_t have = (int64_t)toks->arr.n;
    if (have >= n_vocab)
        return MLC_OK;
    if ((s = mlc_gguf_get_arr(v, "tokenizer.ggml.token_type", MLC_GGUF_INT32, &types, err)))
        return s;
    char **names = calloc((size_t)n_vocab, sizeof *names);
    int32_t *tt = malloc((size_t)n_vocab * sizeof *tt);
    s = names && tt ? MLC_OK : mlc_err_set(err, MLC_ERR_NOMEM, "synth: out of memory");
    for (int64_t i = 0; !s && i < n_vocab; i++) {
        mlc_gguf_str t = i < have ? mlc_gguf_arr_str(toks, (uint64_t)i) : (mlc_gguf_str){"", 0};
        char pad[32];
        int len = i < have ? (int)t.len : snprintf(pad, sizeof pad, "<|unused_%lld|>", (long long)i);
        if (!(names[i] = malloc((size_t)len + 1))) {
            s = mlc_err_set(err, MLC_ERR_NOMEM, "synth: out of memory");
            break;
        }
        memcpy(names[i], i < have ? t.ptr : pad, (size_t)len);
        names[i][len] = 0;
        tt[i] = i < have ? (int32_t)mlc_gguf_arr_i64(types, (uint64_t)i) : 5 /* unused */;
    }
    if (!s && ((s = mlc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)names, (uint64_t)n_vocab)) ||
               (s = mlc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MLC_GGUF_INT32, tt, (uint64_t)n_vocab))))
        mlc_err_set(err, s, "synth: out of memory");
    for (int64_t i = 0; names && i < n_vocab; i++)
        free(names[i]);
    free(names);
    free(tt);
    return s;
}

/* ---------------------------------------------------------------- command */

static const char synth_usage[] =
    "usage: mlc-bench model synth -o OUT.gguf [--preset NAME] [shape options] [--type T]\n"
    "  --preset P      tiny | 110m | llama2-7b | llama3-8b | qwen2-0.5b | gemma3-tiny |\n"
    "                  gemma3-270m (default tiny)\n"
    "  --arch A        llama | qwen2 | gemma3\n"
    "  --dim N --layers N --heads N --kv-heads N --ffn N --ctx N --vocab-size N\n"
    "  --head-dim N    (default dim / heads)   --rope-base F\n"
    "  --window N      gemma3: sliding window of the local layers (5 of every 6)\n"
    "  --rope-freqs S  llama: write rope_freqs.weight, Llama 3.1 RoPE scaling: llama3\n"
    "                  (factor 8, low/high freq factor 1/4, original context 8192),\n"
    "                  llama3:F,LOW,HIGH,CTX, or ones (every factor 1: no change)\n"
    "  --type T        f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q2_k | q3_k | q4_k |\n"
    "                  q5_k | q6_k | iq4_nl | iq4_xs | q4_k_m (default f16)\n"
    "  --tensor-type PATTERN=T   type for tensors whose name contains PATTERN (repeatable)\n"
    "  --vocab FILE    borrow the tokenizer of a GGUF file (vocabulary-only files work);\n"
    "                  default: a byte-level BPE trained on datasets/corpus.txt\n"
    "  --seed S        weights seed (default 1); same options and seed, same file\n"
    "  -q, --quiet     no progress lines\n"
    "  --progress-interval S   seconds between progress lines on stderr (default 5)\n";

static bool parse_type(const char *v, uint32_t *out)
{
    mlc_type t;
    if (!strcmp(v, "q4_k_m") || !strcmp(v, "Q4_K_M")) {
        *out = TYPE_Q4_K_M;
        return true;
    }
    if (!mlc_type_from_name(v, &t))
        return false;
    *out = t;
    return true;
}

/* --rope-freqs: llama3 | llama3:F,LOW,HIGH,CTX | ones. */
static bool parse_rope_freqs(const char *v, synth *y)
{
    float *rf = y->rf;
    char end;
    y->rope_freqs = true;
    if (!strcmp(v, "ones")) {
        rf[0] = 0;
        return true;
    }
    rf[0] = 8, rf[1] = 1, rf[2] = 4, rf[3] = 8192;
    if (!strcmp(v, "llama3"))
        return true;
    if (sscanf(v, "llama3:%f,%f,%f,%f%c", &rf[0], &rf[1], &rf[2], &rf[3], &end) == 4 &&
        rf[0] >= 1 && rf[1] > 0 && rf[2] > rf[1] && rf[3] >= 1)
        return true;
    fprintf(stderr, "mlc-bench model synth: --rope-freqs: '%s' is not llama3, llama3:F,LOW,HIGH,CTX (F >= 1, 0 < LOW < HIGH, CTX >= 1) or ones\n", v);
    return false;
}

static const shape *find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

static int parse_synth(int argc, char **argv, synth *y)
{
    static const char *const valued[] = {"-o", "--preset", "--arch", "--dim", "--layers", "--heads", "--kv-heads",
        "--ffn", "--ctx", "--vocab-size", "--rope-base", "--head-dim", "--window", "--rope-freqs", "--seed", "--vocab", "--type", "--tensor-type", "--progress-interval", NULL};
    const char *c = "model synth", *v;
    y->s = presets[0];
    y->type = MLC_TYPE_F16;
    y->seed = 1;
    y->every_s = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(synth_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            y->quiet = true;
            continue;
        }
        if (!(v = mlc_cli_option_value(c, valued, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "-o")) {
            y->out = v;
        } else if (!strcmp(a, "--preset")) {
            const shape *p = find_preset(v);
            if (!p) {
                fprintf(stderr, "mlc-bench model synth: --preset: unknown preset '%s'\n", v);
                return 2;
            }
            y->s = *p;
        } else if (!strcmp(a, "--arch")) {
            static const char *const archs[] = {"llama", "qwen2", "gemma3"};
            size_t k = 0;
            while (k < 3 && strcmp(v, archs[k]))
                k++;
            if (k == 3) {
                fprintf(stderr, "mlc-bench model synth: --arch: '%s' (llama, qwen2, gemma3)\n", v);
                return 2;
            }
            y->s.arch = archs[k];
            if (k == 2 && y->s.window == 0)
                y->s.window = 512;
        } else if (!strcmp(a, "--dim")) {
            ok = mlc_cli_int(c, a, v, 32, 65536, &y->s.dim);
        } else if (!strcmp(a, "--layers")) {
            ok = mlc_cli_int(c, a, v, 1, 512, &y->s.layers);
        } else if (!strcmp(a, "--heads")) {
            ok = mlc_cli_int(c, a, v, 1, 1024, &y->s.heads);
        } else if (!strcmp(a, "--kv-heads")) {
            ok = mlc_cli_int(c, a, v, 1, 1024, &y->s.kv_heads);
        } else if (!strcmp(a, "--ffn")) {
            ok = mlc_cli_int(c, a, v, 32, 1 << 20, &y->s.ffn);
        } else if (!strcmp(a, "--ctx")) {
            ok = mlc_cli_int(c, a, v, 16, 1 << 24, &y->s.ctx);
        } else if (!strcmp(a, "--vocab-size")) {
            ok = mlc_cli_int(c, a, v, 300, 1 << 22, &y->s.vocab);
        } else if (!strcmp(a, "--head-dim")) {
            ok = mlc_cli_int(c, a, v, 2, 1024, &y->s.head_dim);
        } else if (!strcmp(a, "--window")) {
            ok = mlc_cli_int(c, a, v, 1, 1 << 24, &y->s.window);
        } else if (!strcmp(a, "--rope-freqs")) {
            ok = parse_rope_freqs(v, y);
        } else if (!strcmp(a, "--rope-base")) {
            ok = mlc_cli_float(c, a, v, 1, 1e9, &y->s.rope_base);
        } else if (!strcmp(a, "--seed")) {
            ok = mlc_cli_u64(c, a, v, &y->seed);
        } else if (!strcmp(a, "--progress-interval")) {
            float f;
            ok = mlc_cli_float(c, a, v, 0, 3600, &f);
            y->every_s = f;
        } else if (!strcmp(a, "--vocab")) {
            y->vocab_path = v;
        } else if (!strcmp(a, "--type")) {
            if (!(ok = parse_type(v, &y->type)))
                fprintf(stderr, "mlc-bench model synth: --type: unknown type '%s'\n", v);
        } else if (!strcmp(a, "--tensor-type")) {
            const char *eq = strchr(v, '=');
            ok = eq && eq != v && y->n_ov < 16 && parse_type(eq + 1, &y->ov[y->n_ov].type) &&
                 y->ov[y->n_ov].type != TYPE_Q4_K_M;
            if (!ok)
                fprintf(stderr, "mlc-bench model synth: --tensor-type: '%s' is not PATTERN=TYPE\n", v);
            else
                y->ov[y->n_ov++].pattern = strndup(v, (size_t)(eq - v));
        } else {
            fprintf(stderr, "mlc-bench model synth: unknown option '%s'\n%s", a, synth_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (!y->out) {
        fprintf(stderr, "mlc-bench model synth: -o OUT.gguf is required\n%s", synth_usage);
        return 2;
    }
    return -1;
}

/* Shape rules the engine relies on, checked before anything is written. */
static bool check_shape(synth *y)
{
    const shape *s = &y->s;
    if ((s->head_dim <= 0 && s->dim % s->heads) || s->heads % s->kv_heads || head_dim(s) % 2) {
        fprintf(stderr, "mlc-bench model synth: dim %d, heads %d, kv heads %d, head dim %d: dim must divide into heads of even size (or --head-dim be even) and heads into kv heads\n",
                s->dim, s->heads, s->kv_heads, head_dim(s));
        return false;
    }
    if (y->rope_freqs && strcmp(s->arch, "llama")) {
        fprintf(stderr, "mlc-bench model synth: --rope-freqs: for arch llama only (not %s)\n", s->arch);
        return false;
    }
    if (y->n_tensors > (int)(sizeof y->t / sizeof y->t[0]) - 16) {
        fprintf(stderr, "mlc-bench model synth: too many layers (%d)\n", s->layers);
        return false;
    }
    for (int i = 0; i < y->n_tensors; i++) {
        int64_t bs = mlc_type_block_size(y->t[i].type);
        if (y->t[i].ne[0] % bs) {
            fprintf(stderr, "mlc-bench model synth: tensor '%s': rows of %lld values do not divide into %s blocks of %lld; choose another --type or shape\n",
                    y->t[i].name, (long long)y->t[i].ne[0], mlc_type_name(y->t[i].type), (long long)bs);
            return false;
        }
    }
    return true;
}

static uint32_t file_type(uint32_t t)
{
    /* llama.cpp's general.file_type values for the mixes we write. */
    switch (t) {
    case MLC_TYPE_F32: return 0;
    case MLC_TYPE_F16: return 1;
    case MLC_TYPE_Q4_0: return 2;
    case MLC_TYPE_Q4_1: return 3;
    case MLC_TYPE_Q8_0: return 7;
    case MLC_TYPE_Q5_0: return 8;
    case MLC_TYPE_Q5_1: return 9;
    case MLC_TYPE_Q2_K: return 21; /* Q2_K_S: one type throughout */
    case MLC_TYPE_Q3_K: return 11; /* Q3_K_S */
    case MLC_TYPE_Q4_K: return 14; /* Q4_K_S */
    case MLC_TYPE_Q5_K: return 16; /* Q5_K_S */
    case MLC_TYPE_Q6_K: return 18;
    case MLC_TYPE_IQ4_NL: return 25;
    case MLC_TYPE_IQ4_XS: return 30;
    case MLC_TYPE_BF16: return 32;
    default: return 15; /* Q4_K_M */
    }
}

static mlc_status set_hparams(const synth *y, mlc_gguf_writer *w)
{
    const shape *s = &y->s;
    char key[96], name[128];
    const char *a = s->arch;
    mlc_status st = MLC_OK;
    snprintf(name, sizeof name, "mlc-bench synthetic %s %dx%d seed %llu", a, s->dim, s->layers,
             (unsigned long long)y->seed);
#define U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), st = st ? st : mlc_gguf_writer_set_u32(w, key, (uint32_t)(v)))
    st = mlc_gguf_writer_set_str(w, "general.architecture", a);
    st = st ? st : mlc_gguf_writer_set_str(w, "general.name", name);
    st = st ? st : mlc_gguf_writer_set_u32(w, "general.file_type", file_type(y->type));
    U32("context_length", s->ctx);
    U32("embedding_length", s->dim);
    U32("block_count", s->layers);
    U32("feed_forward_length", s->ffn);
    U32("attention.head_count", s->heads);
    U32("attention.head_count_kv", s->kv_heads);
    U32("rope.dimension_count", head_dim(s));
    U32("vocab_size", s->vocab);
    if (!strcmp(a, "gemma3")) {
        U32("attention.key_length", head_dim(s));
        U32("attention.value_length", head_dim(s));
        U32("attention.sliding_window", s->window);
    }
#undef U32
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
    st = st ? st : mlc_gguf_writer_set_f32(w, key, !strcmp(a, "gemma3") ? 1e-6f : 1e-5f);
    snprintf(key, sizeof key, "%s.rope.freq_base", a);
    return st ? st : mlc_gguf_writer_set_f32(w, key, s->rope_base);
}

static mlc_status load_vocab(synth *y, void **buf, mlc_gguf **v, mlc_err *err)
{
    if (!y->vocab_path)
        return trained_vocab(y->s.vocab < 4096 ? y->s.vocab : 4096, buf, v, err);
    mlc_status s = mlc_gguf_open(y->vocab_path, v, err);
    const mlc_gguf_value *toks;
    if (!s && !(s = mlc_gguf_get_arr(*v, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, err)))
        y->s.vocab = (int)toks->arr.n; /* a borrowed vocabulary sets the embedding size */
    return s;
}

int mlc_cmd_model_synth(int argc, char **argv)
{
    synth *y = calloc(1, sizeof *y);
    if (!y)
        return 1;
    int rc = parse_synth(argc, argv, y);
    mlc_gguf *v = NULL;
    void *vbuf = NULL;
    mlc_gguf_writer *w = NULL;
    mlc_err err;
    if (rc >= 0)
        goto out;
    rc = 1;
    if (load_vocab(y, &vbuf, &v, &err))
        goto fail;
    plan(y);
    if (!check_shape(y))
        goto out;
    if (!(w = mlc_gguf_writer_new())) {
        mlc_err_set(&err, MLC_ERR_NOMEM, "synth: out of memory");
        goto fail;
    }
    if (set_hparams(y, w) || copy_vocab(v, y->s.vocab, w, &err))
        goto fail;
    for (int i = 0; i < y->n_tensors; i++)
        if (mlc_gguf_writer_add_tensor(w, y->t[i].name, y->t[i].type, (uint32_t)y->t[i].n_dims,
                                       y->t[i].ne, NULL, &err))
            goto fail;
    for (int i = 0; i < y->n_tensors; i++)
        y->bytes_total += (int64_t)mlc_type_row_bytes(y->t[i].type, y->t[i].ne[0]) *
                          (y->t[i].n_dims == 2 ? y->t[i].ne[1] : 1);
    double t0 = y->t0 = y->t_shown = mlc_cli_now();
    if (mlc_gguf_writer_write(w, y->out, fill, y, &err))
        goto fail;
    fprintf(stderr, "wrote %s: %s %dx%d, %d tensors, vocabulary %d, in %.1f s\n", y->out,
            y->s.arch, y->s.dim, y->s.layers, y->n_tensors, y->s.vocab, mlc_cli_now() - t0);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "mlc-bench: %s\n", err.msg);
out:
    for (int i = 0; i < y->n_ov; i++)
        free((char *)y->ov[i].pattern);
    mlc_gguf_writer_free(w);
    mlc_gguf_close(v);
    free(vbuf);
    free(y);
    return rc;
}
