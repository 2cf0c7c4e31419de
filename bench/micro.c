/* micro.c: `mlc-bench micro` measures the engine alone, as llama-bench does: prompt
 * processing (pp: n_prompt tokens in batches of -b) and text generation (tg: n_gen tokens one
 * at a time) in tokens per second, over comma lists of models, prompt sizes, generation
 * sizes and thread counts, with warmup and -r repetitions; mean and standard deviation with
 * the raw samples kept. Output uses llama-bench's field names so its consumers read ours.
 * For generation it also reports the weight bandwidth achieved: the bytes of matmul weights
 * read per token times tokens per second (what bounds decode speed), next to the machine's
 * streaming-read bandwidth with as many threads, measured right after the cell (membw.h),
 * and the first as a share of the second: how close decode runs to the memory's limit. */
#include "micro.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "membw.h"
#include "mlc/model.h"
#include "store.h"

#define MAX_LIST 16
#define MAX_REPS 1000
/* The read-bandwidth probe: larger than any L3 by far, read best of 5 times. */
#define MEMBW_BYTES ((size_t)256 << 20)
#define MEMBW_PASSES 5

typedef struct int_list {
    int v[MAX_LIST];
    int n;
} int_list;

typedef struct micro_opts {
    const char *models[MAX_LIST];
    int n_models;
    int_list prompt, gen, threads;
    int reps, batch, warmup, device;
    const char *backend, *format, *db, *label;
    bool kv_f32, no_store;
} micro_opts;

/* One measured test: a (model, threads, n_prompt, n_gen) cell. */
typedef struct result {
    const mlc_model_info *mi;
    int n_threads, n_prompt, n_gen, n_batch, reps;
    double samples_ns[MAX_REPS];
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double samples_ts[MAX_REPS];
    double weight_gbs;  /* tg only */
    double read_gbs;    /* tg on the CPU only: streaming-read bandwidth, n_threads threads */
    bool on_cpu;
    char test_time[32];
} result;

static const char micro_usage[] =
    "usage: mlc-bench micro -m MODEL.gguf[,MODEL2...] [options]\n"
    "  -p LIST        prompt sizes to process (default 512; 0 skips)\n"
    "  -n LIST        generation lengths (default 128; 0 skips)\n"
    "  -t LIST        thread counts (default: all CPUs)\n"
    "  -r N           repetitions (default 5)    --warmup N  warmup runs (default 1)\n"
    "  -b N           batch size for prompt processing (default 512)\n"
    "  -o FMT         md (default) | csv | json | jsonl | sql\n"
    "  --backend B    cpu (default) | cuda | hip | vulkan | opencl   --device N  (default 0)\n"
    "  --kv-f32       F32 KV cache (default F16)\n"
    "  --db FILE      store results (default ./mlc-bench.db or $MLC_BENCH_DB): a run of kind\n"
    "                 'micro' per model, metric 't=THREADS/TEST' in tok/s with every repetition\n"
    "                 as a sample (what `compare` tests)   --no-store  --label TEXT\n"
    "LISTs are comma-separated (-p 128,512). Fields as llama-bench's (n_prompt, n_gen, avg_ts,\n"
    "stddev_ts, samples_ts, ...); generation rows add weight_gbs: weight bytes read per token\n"
    "times tokens/s; on the CPU backend also read_gbs, the streaming-read bandwidth of as many\n"
    "threads measured right after the cell (256 MiB, best of 5), and weight_share =\n"
    "weight_gbs / read_gbs (1.0: decode reads weights as fast as the memory allows; above 1\n"
    "when the weights fit in the caches).\n";

static bool parse_list(const char *flag, const char *v, int min, int_list *out)
{
    return mlc_cli_int_list("micro", flag, v, min, 1 << 20, out->v, MAX_LIST, &out->n);
}

static int parse_micro(int argc, char **argv, micro_opts *o)
{
    *o = (micro_opts){.reps = 5, .batch = 512, .warmup = 1, .backend = "cpu", .format = "md",
                      .prompt = {{512}, 1}, .gen = {{128}, 1}, .threads = {{0}, 1}};
    static const char *const valued[] = {"-m", "--model", "-p", "-n", "-t", "-r", "--warmup", "-b", "--backend", "--device",
                                         "--db", "--label", "-o", NULL};
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(micro_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--kv-f32") || !strcmp(a, "--no-store")) {
            *(a[2] == 'k' ? &o->kv_f32 : &o->no_store) = true;
            continue;
        }
        if (!(v = mlc_cli_option_value("micro", valued, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            char *copy = strdup(v);
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && o->n_models < MAX_LIST; t = strtok_r(NULL, ",", &save))
                o->models[o->n_models++] = strdup(t);
            free(copy);
        } else if (!strcmp(a, "-p")) {
            ok = parse_list(a, v, 0, &o->prompt);
        } else if (!strcmp(a, "-n")) {
            ok = parse_list(a, v, 0, &o->gen);
        } else if (!strcmp(a, "-t")) {
            ok = parse_list(a, v, 1, &o->threads);
        } else if (!strcmp(a, "-r")) {
            ok = mlc_cli_int("micro", a, v, 1, MAX_REPS, &o->reps);
        } else if (!strcmp(a, "--warmup")) {
            ok = mlc_cli_int("micro", a, v, 0, 100, &o->warmup);
        } else if (!strcmp(a, "-b")) {
            ok = mlc_cli_int("micro", a, v, 1, 1 << 16, &o->batch);
        } else if (!strcmp(a, "--backend")) {
            o->backend = v;
        } else if (!strcmp(a, "--device")) {
            ok = mlc_cli_int("micro", a, v, 0, 1023, &o->device);
        } else if (!strcmp(a, "--db")) {
            o->db = v;
        } else if (!strcmp(a, "--label")) {
            o->label = v;
        } else if (!strcmp(a, "-o")) {
            o->format = v;
            ok = !strcmp(v, "md") || !strcmp(v, "csv") || !strcmp(v, "json") || !strcmp(v, "jsonl") ||
                 !strcmp(v, "sql");
            if (!ok)
                fprintf(stderr, "mlc-bench micro: -o: unknown format '%s' (md, csv, json, jsonl, sql)\n", v);
        } else {
            fprintf(stderr, "mlc-bench micro: unknown option '%s'\n%s", a, micro_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (!o->n_models) {
        fprintf(stderr, "mlc-bench micro: -m MODEL is required\n%s", micro_usage);
        return 2;
    }
    if (!o->db)
        o->db = mlc_store_default_path();
    return -1;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Deterministic token ids that avoid special tokens at the low end of the vocabulary. */
static void fill_tokens(int32_t *t, int n, int n_vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = 3 + (int32_t)((seed >> 33) % (uint64_t)(n_vocab - 3));
    }
}

/* Prompt processing: n tokens in batches, from an empty slot. */
static mlc_status run_pp(mlc_context *c, int n, int n_batch, mlc_err *err)
{
    int32_t tok[4096], pos[4096], slot[4096];
    int nb = n_batch < 4096 ? n_batch : 4096;
    for (int b0 = 0; b0 < n; b0 += nb) {
        int m = n - b0 < nb ? n - b0 : nb;
        fill_tokens(tok, m, mlc_context_n_vocab(c), (uint64_t)b0 + 1);
        for (int i = 0; i < m; i++) {
            pos[i] = b0 + i;
            slot[i] = 0;
        }
        mlc_batch b = {m, tok, pos, slot, NULL};
        mlc_status s = mlc_context_decode(c, &b, err);
        if (s)
            return s;
    }
    return MLC_OK;
}

/* Generation: n single-token steps, as llama-bench's tg (each step's logits computed). */
static mlc_status run_tg(mlc_context *c, int n, mlc_err *err)
{
    int32_t tok, slot = 0;
    for (int32_t p = 0; p < n; p++) {
        fill_tokens(&tok, 1, mlc_context_n_vocab(c), (uint64_t)p + 7);
        mlc_batch b = {1, &tok, &p, &slot, NULL};
        mlc_status s = mlc_context_decode(c, &b, err);
        if (s)
            return s;
    }
    return MLC_OK;
}

static void finish_stats(result *r)
{
    double sum = 0, sum_ts = 0;
    int tokens = r->n_prompt + r->n_gen;
    for (int i = 0; i < r->reps; i++) {
        r->samples_ts[i] = 1e9 * tokens / r->samples_ns[i];
        sum += r->samples_ns[i];
        sum_ts += r->samples_ts[i];
    }
    r->avg_ns = sum / r->reps;
    r->avg_ts = sum_ts / r->reps;
    double v = 0, vt = 0;
    for (int i = 0; i < r->reps; i++) {
        v += (r->samples_ns[i] - r->avg_ns) * (r->samples_ns[i] - r->avg_ns);
        vt += (r->samples_ts[i] - r->avg_ts) * (r->samples_ts[i] - r->avg_ts);
    }
    r->stddev_ns = r->reps > 1 ? sqrt(v / (r->reps - 1)) : 0;
    r->stddev_ts = r->reps > 1 ? sqrt(vt / (r->reps - 1)) : 0;
    if (r->n_gen)
        r->weight_gbs = r->avg_ts * (double)r->mi->matmul_bytes_per_token / 1e9;
}

static mlc_status measure(mlc_context *c, result *r, int warmup, mlc_err *err)
{
    time_t t = time(NULL);
    strftime(r->test_time, sizeof r->test_time, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    mlc_status s = MLC_OK;
    for (int i = -warmup; i < r->reps && !s; i++) {
        double t0 = now_ns();
        s = r->n_prompt ? run_pp(c, r->n_prompt, r->n_batch, err) : run_tg(c, r->n_gen, err);
        if (i >= 0)
            r->samples_ns[i] = now_ns() - t0;
    }
    if (!s)
        finish_stats(r);
    if (!s && r->n_gen && r->on_cpu)
        r->read_gbs = mlc_membw_read(r->n_threads, MEMBW_BYTES, MEMBW_PASSES);
    return s;
}

/* ---------------------------------------------------------------- output */

static void model_type(const mlc_model_info *mi, char *buf, size_t cap)
{
    double p = (double)mi->n_params;
    if (p >= 1e9)
        snprintf(buf, cap, "%s %.1fB %s", mi->arch, p / 1e9, mi->ftype);
    else
        snprintf(buf, cap, "%s %.0fM %s", mi->arch, p / 1e6, mi->ftype);
}

static void test_name(const result *r, char *buf, size_t cap)
{
    if (r->n_prompt)
        snprintf(buf, cap, "pp%d", r->n_prompt);
    else
        snprintf(buf, cap, "tg%d", r->n_gen);
}

static cJSON *result_json(const result *r, const char *backend)
{
    char mt[128];
    model_type(r->mi, mt, sizeof mt);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "build_commit", MLC_VERSION);
    cJSON_AddNumberToObject(o, "build_number", 0);
    cJSON_AddStringToObject(o, "cpu_info", r->mi->backend_desc);
    cJSON_AddStringToObject(o, "gpu_info", "");
    cJSON_AddStringToObject(o, "backends", backend);
    cJSON_AddStringToObject(o, "model_filename", r->mi->path);
    cJSON_AddStringToObject(o, "model_type", mt);
    cJSON_AddNumberToObject(o, "model_size", (double)r->mi->weight_bytes);
    cJSON_AddNumberToObject(o, "model_n_params", (double)r->mi->n_params);
    cJSON_AddNumberToObject(o, "n_batch", r->n_batch);
    cJSON_AddNumberToObject(o, "n_ubatch", r->n_batch);
    cJSON_AddNumberToObject(o, "n_threads", r->n_threads);
    cJSON_AddStringToObject(o, "type_k", "f16");
    cJSON_AddStringToObject(o, "type_v", "f16");
    cJSON_AddNumberToObject(o, "n_gpu_layers", 0);
    cJSON_AddBoolToObject(o, "flash_attn", false);
    cJSON_AddBoolToObject(o, "use_mmap", true);
    cJSON_AddNumberToObject(o, "n_prompt", r->n_prompt);
    cJSON_AddNumberToObject(o, "n_gen", r->n_gen);
    cJSON_AddStringToObject(o, "test_time", r->test_time);
    cJSON_AddNumberToObject(o, "avg_ns", round(r->avg_ns));
    cJSON_AddNumberToObject(o, "stddev_ns", round(r->stddev_ns));
    cJSON_AddNumberToObject(o, "avg_ts", r->avg_ts);
    cJSON_AddNumberToObject(o, "stddev_ts", r->stddev_ts);
    cJSON *sn = cJSON_AddArrayToObject(o, "samples_ns"), *st = cJSON_AddArrayToObject(o, "samples_ts");
    for (int i = 0; i < r->reps; i++) {
        cJSON_AddItemToArray(sn, cJSON_CreateNumber(round(r->samples_ns[i])));
        cJSON_AddItemToArray(st, cJSON_CreateNumber(r->samples_ts[i]));
    }
    /* Every row has the same fields (csv and sql rows must match their header); prompt
     * processing has no weight bandwidth: null. */
    cJSON_AddItemToObject(o, "weight_gbs", r->n_gen ? cJSON_CreateNumber(r->weight_gbs) : cJSON_CreateNull());
    const bool bw = r->n_gen && r->read_gbs > 0;
    cJSON_AddItemToObject(o, "read_gbs", bw ? cJSON_CreateNumber(r->read_gbs) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "weight_share", bw ? cJSON_CreateNumber(r->weight_gbs / r->read_gbs) : cJSON_CreateNull());
    return o;
}

static void print_md_header(void)
{
    printf("| model | size | params | backend | threads | test | t/s | weights GB/s | read GB/s | share |\n");
    printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
}

static void print_md(const result *r, const char *backend)
{
    char mt[128], tn[32], bw[32] = "", rd[32] = "", sh[32] = "";
    model_type(r->mi, mt, sizeof mt);
    test_name(r, tn, sizeof tn);
    if (r->n_gen)
        snprintf(bw, sizeof bw, "%.1f", r->weight_gbs);
    if (r->n_gen && r->read_gbs > 0) {
        snprintf(rd, sizeof rd, "%.1f", r->read_gbs);
        snprintf(sh, sizeof sh, "%.0f%%", 100 * r->weight_gbs / r->read_gbs);
    }
    printf("| %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f | %s | %s | %s |\n", mt,
           (double)r->mi->weight_bytes / 1048576.0, (double)r->mi->n_params / 1e6, backend,
           r->n_threads, tn, r->avg_ts, r->stddev_ts, bw, rd, sh);
    fflush(stdout);
}

/* A string quoted for csv ("...", "" inside) or sql ('...', '' inside). */
static void print_quoted(const char *s, char q)
{
    putchar(q);
    for (; *s; s++) {
        if (*s == q)
            putchar(q);
        putchar(*s);
    }
    putchar(q);
}

/* csv and sql: every field of the JSON object, in order (arrays as "a;b;c" strings, null as
 * an empty csv field or NULL). Only numbers are ever null (weight_gbs), so null is REAL. */
static void print_flat(const cJSON *o, const char *fmt, bool header)
{
    const cJSON *f;
    if (header && !strcmp(fmt, "sql")) {
        printf("CREATE TABLE IF NOT EXISTS test (\n");
        cJSON_ArrayForEach(f, o) printf("  %s %s%s\n", f->string,
                                         cJSON_IsNumber(f) || cJSON_IsNull(f) ? "REAL"
                                         : cJSON_IsBool(f)                    ? "INTEGER"
                                                                              : "TEXT",
                                         f->next ? "," : "");
        printf(");\n");
    } else if (header) {
        cJSON_ArrayForEach(f, o) printf("%s%s", f->string, f->next ? "," : "\n");
    }
    if (!strcmp(fmt, "sql")) {
        printf("INSERT INTO test (");
        cJSON_ArrayForEach(f, o) printf("%s%s", f->string, f->next ? ", " : ") VALUES (");
    }
    bool sql = !strcmp(fmt, "sql");
    cJSON_ArrayForEach(f, o) {
        const char *sep = f->next ? (sql ? ", " : ",") : (sql ? ");\n" : "\n");
        const char *q = sql ? "'" : "\"";
        if (cJSON_IsArray(f)) {
            printf("%s", q);
            const cJSON *e;
            cJSON_ArrayForEach(e, f) printf("%.17g%s", e->valuedouble, e->next ? ";" : "");
            printf("%s%s", q, sep);
        } else if (cJSON_IsString(f)) {
            print_quoted(f->valuestring, *q);
            printf("%s", sep);
        } else if (cJSON_IsNull(f)) {
            printf("%s%s", sql ? "NULL" : "", sep);
        } else if (cJSON_IsBool(f)) {
            printf("%d%s", cJSON_IsTrue(f) ? 1 : 0, sep);
        } else {
            printf("%.17g%s", f->valuedouble, sep);
        }
    }
    fflush(stdout);
}

static void emit(const result *r, const micro_opts *o, int *count)
{
    cJSON *j = result_json(r, o->backend);
    if (!strcmp(o->format, "md")) {
        if (*count == 0)
            print_md_header();
        print_md(r, o->backend);
    } else if (!strcmp(o->format, "json") || !strcmp(o->format, "jsonl")) {
        bool array = !strcmp(o->format, "json");
        char *s = array ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
        printf("%s%s%s", array ? (*count ? ",\n" : "[\n") : "", s, array ? "" : "\n");
        free(s);
    } else {
        print_flat(j, o->format, *count == 0);
    }
    fflush(stdout);
    cJSON_Delete(j);
    (*count)++;
}

/* ---------------------------------------------------------------- command */

/* The options that shape the measurement, as JSON: `compare` pools only runs whose configs
 * are equal (so -r or --warmup differences never mix). */
static char *config_json(const micro_opts *o, int threads)
{
    cJSON *j = cJSON_CreateObject();
    const int_list *lists[] = {&o->prompt, &o->gen};
    const char *names[] = {"n_prompt", "n_gen"};
    for (int k = 0; k < 2; k++) {
        cJSON *a = cJSON_AddArrayToObject(j, names[k]);
        for (int i = 0; i < lists[k]->n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(lists[k]->v[i]));
    }
    cJSON_AddNumberToObject(j, "threads", threads);
    cJSON_AddNumberToObject(j, "reps", o->reps);
    cJSON_AddNumberToObject(j, "warmup", o->warmup);
    cJSON_AddNumberToObject(j, "n_batch", o->batch);
    cJSON_AddStringToObject(j, "kv", o->kv_f32 ? "f32" : "f16");
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* A run of kind 'micro' for this model and thread count; *run stays 0 when not storing. */
static mlc_status begin_store(mlc_store *st, const micro_opts *o, const mlc_model_info *mi, int threads,
                              int64_t *run, mlc_err *err)
{
    *run = 0;
    if (!st)
        return MLC_OK;
    char *cfg = config_json(o, threads);
    mlc_run_info ri = {.kind = "micro", .label = o->label, .target = "local", .backend = o->backend,
                       .device = mi->backend_desc, .model_path = mi->path, .model_arch = mi->arch,
                       .model_quant = mi->ftype, .config_json = cfg};
    mlc_status s = mlc_store_run_begin(st, &ri, run, err);
    free(cfg);
    return s;
}

/* Mean tokens/s as the metric, every repetition as a sample (the raw data the gate tests). */
static mlc_status store_result(mlc_store *st, int64_t run, const result *r, mlc_err *err)
{
    if (!st)
        return MLC_OK;
    char tn[32], name[64];
    test_name(r, tn, sizeof tn);
    snprintf(name, sizeof name, "t=%d/%s", r->n_threads, tn);
    mlc_status s = mlc_store_add_metric(st, run, name, "tok/s", "mean", r->avg_ts, 1, err);
    if (!s)
        s = mlc_store_add_samples(st, run, name, r->samples_ts, r->reps, err);
    return s;
}

static int run_model(const char *path, int threads, const micro_opts *o, mlc_store *st, int *count)
{
    mlc_err err;
    mlc_model *m = NULL;
    mlc_context *c = NULL;
    mlc_model_params mp = {.backend = o->backend, .device = o->device, .n_threads = threads};
    int max_p = 0;
    for (int i = 0; i < o->prompt.n; i++)
        max_p = o->prompt.v[i] > max_p ? o->prompt.v[i] : max_p;
    for (int i = 0; i < o->gen.n; i++)
        max_p = o->gen.v[i] > max_p ? o->gen.v[i] : max_p;
    mlc_context_params cp = {.n_ctx = max_p + 1, .n_slots = 1, .n_batch = o->batch,
                             .kv_type = o->kv_f32 ? MLC_KV_F32 : MLC_KV_F16};
    int64_t run = 0;
    if (mlc_model_load(path, &mp, &m, &err) || mlc_context_new(m, &cp, &c, &err) ||
        begin_store(st, o, mlc_model_get_info(m), threads, &run, &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        mlc_context_free(c);
        mlc_model_free(m);
        return 1;
    }
    result *r = calloc(1, sizeof *r);
    int rc = r ? 0 : 1;
    for (int k = 0; k < 2 && !rc; k++) {
        const int_list *l = k == 0 ? &o->prompt : &o->gen;
        for (int i = 0; i < l->n && !rc; i++) {
            if (l->v[i] == 0)
                continue;
            *r = (result){.mi = mlc_model_get_info(m), .reps = o->reps, .n_batch = o->batch,
                          .n_threads = threads ? threads : mlc_model_get_info(m)->n_threads,
                          .on_cpu = !strcmp(o->backend, "cpu")};
            if (k == 0)
                r->n_prompt = l->v[i];
            else
                r->n_gen = l->v[i];
            if (measure(c, r, o->warmup, &err) || store_result(st, run, r, &err)) {
                fprintf(stderr, "mlc-bench: %s\n", err.msg);
                rc = 1;
            } else {
                emit(r, o, count);
            }
        }
    }
    if (run && mlc_store_run_end(st, run, rc ? "failed" : "complete", &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        rc = 1;
    }
    free(r);
    mlc_context_free(c);
    mlc_model_free(m);
    return rc;
}

int mlc_cmd_micro(int argc, char **argv)
{
    micro_opts o;
    int rc = parse_micro(argc, argv, &o);
    int count = 0;
    mlc_store *st = NULL;
    mlc_err err;
    if (rc < 0 && !o.no_store && mlc_store_open(o.db, &st, &err)) {
        fprintf(stderr, "mlc-bench: %s\n", err.msg);
        rc = 1;
    }
    for (int mi = 0; rc < 0 && mi < o.n_models; mi++)
        for (int ti = 0; ti < o.threads.n; ti++)
            if (run_model(o.models[mi], o.threads.v[ti], &o, st, &count)) {
                rc = 1;
                break;
            }
    if (rc < 0)
        rc = 0;
    if (!strcmp(o.format, "json") && count)
        printf("\n]\n");
    mlc_store_close(st);
    for (int i = 0; i < o.n_models; i++)
        free((char *)o.models[i]);
    return rc;
}
