/* conformance.c: `mlc-bench conformance`: runs the op cases of conformance/ on each backend
 * and device asked for and writes the results as a console summary, JSON, JUnit XML or
 * markdown. Exit status: 0 every supported case passed, 1 any failed, 2 usage error. */
#include "conformance.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"
#include "../conformance/tolerance.h"
#include "backend.h"
#include "embed.h"
#include "mlc/backend_info.h"
#include "synth.h"

static const char usage[] =
    "usage: mlc-bench conformance [--backend B|all] [--device N] [--op LIST] [--type LIST]\n"
    "                             [--seed S] [--quick|--full] [--perf] [-t N] [--isa I]\n"
    "                             [--model M.gguf|synth] [-o console|json|junit|md|html]\n"
    "Runs every op x type x shape case against the float64 reference (NMSE against the\n"
    "thresholds of conformance/tolerance.c; NaN/Inf the reference lacks, writes outside an\n"
    "output, backend errors fail; ops a device declines are listed as unsupported).\n"
    "  --backend B    a backend name, or all (default: every built backend)\n"
    "  --device N     one device (default: every device of each backend)\n"
    "  --op LIST      ops to run, comma-separated (get_rows,matmul,rms_norm,rope,kv_store,\n"
    "                 attention,swiglu,geglu,add,mul,scale,gather)\n"
    "  --type LIST    types to run (f32,f16,bf16,q8_0,q4_0,q4_1,q5_0,q5_1,q2_k,q3_k,q4_k,q5_k,\n"
    "                 q6_k,iq4_nl,iq4_xs)\n"
    "  --seed S       base seed (default fixed); every failure names it: rerun with it\n"
    "  --quick        a small sweep (default)      --full   every shape of the suite\n"
    "  --perf         time per case, GB/s and GFLOP/s (console and md tables, JSON fields)\n"
    "  -t N           CPU threads (default: all)   --isa I  CPU kernels: scalar|avx2|avx512\n"
    "  --model M      also run model M (synth: a tiny synthesized Q8_0 model) on each device\n"
    "                 against the reference CPU (scalar kernels) on the same tokens: logits NMSE\n"
    "                 per position, argmax agreement, perplexity, greedy tokens\n"
    "  -o FORMAT      console (default), json, junit, md, html (a single self-contained page)\n"
    "  --db FILE      store (default ./mlc-bench.db or $MLC_BENCH_DB): a run of kind\n"
    "                 'conformance', one row per case, failed/unsupported counts per device\n"
    "                 that `compare` treats as deterministic    --no-store   don't store\n"
    "  --label TEXT   the stored run's label\n"
    "exit status: 0 every supported case passed, 1 a case failed, 2 usage error\n";

#define DEFAULT_SEED 0x6d6c632d636f6e66ull

typedef struct conf_opts {
    const char *backend; /* NULL or "all": every built backend */
    int device;          /* -1: every device */
    bool op_on[MLC_OP_COUNT], op_filter;
    bool type_on[MLC_TYPE_COUNT], type_filter;
    uint64_t seed;
    mlc_conf_level level;
    bool perf;
    int threads;
    const char *isa;
    const char *format;
    const char *model;   /* --model, or NULL */
    const char *db, *label;
    bool no_store;
} conf_opts;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "mlc-bench conformance: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see mlc-bench conformance --help)\n");
    return 2;
}

/* Parses a comma list of op names into on[]; returns the bad item or NULL. */
static const char *parse_ops(const char *list, bool *on, char *bad, size_t cap)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        mlc_op op;
        if (!mlc_op_from_name(t, &op)) {
            snprintf(bad, cap, "%s", t);
            return bad;
        }
        on[op] = true;
    }
    return NULL;
}

static const char *parse_types(const char *list, bool *on, char *bad, size_t cap)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        mlc_type ty;
        if (!mlc_type_from_name(t, &ty)) {
            snprintf(bad, cap, "%s", t);
            return bad;
        }
        on[ty] = true;
    }
    return NULL;
}

static int parse_args(int argc, char **argv, conf_opts *o)
{
    *o = (conf_opts){.device = -1, .seed = DEFAULT_SEED, .level = MLC_CONF_QUICK, .format = "console"};
    char bad[128];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        }
        if (!strcmp(a, "--quick")) {
            o->level = MLC_CONF_QUICK;
            continue;
        }
        if (!strcmp(a, "--full")) {
            o->level = MLC_CONF_FULL;
            continue;
        }
        if (!strcmp(a, "--perf")) {
            o->perf = true;
            continue;
        }
        if (!strcmp(a, "--no-store")) {
            o->no_store = true;
            continue;
        }
        static const char *const valued[] = {"--backend", "--device", "--op", "--type", "--seed", "-t",
                                             "--isa", "-o", "--model", "--db", "--label", NULL};
        const char *v = mlc_cli_option_value("conformance", valued, argc, argv, &i);
        if (!v)
            return 2;
        if (!strcmp(a, "--backend")) {
            o->backend = v;
            if (strcmp(v, "all") && mlc_backend_find(v) < 0)
                return usage_error("--backend: unknown backend '%s' (see mlc-bench devices)", v);
        } else if (!strcmp(a, "--device")) {
            if (!mlc_cli_int("conformance", a, v, 0, 1000, &o->device))
                return 2;
        } else if (!strcmp(a, "--op")) {
            if (parse_ops(v, o->op_on, bad, sizeof bad))
                return usage_error("--op: unknown op '%s'", bad);
            o->op_filter = true;
        } else if (!strcmp(a, "--type")) {
            if (parse_types(v, o->type_on, bad, sizeof bad))
                return usage_error("--type: unknown type '%s'", bad);
            o->type_filter = true;
        } else if (!strcmp(a, "--seed")) {
            if (!mlc_cli_u64("conformance", a, v, &o->seed))
                return 2;
        } else if (!strcmp(a, "-t")) {
            if (!mlc_cli_int("conformance", a, v, 1, 4096, &o->threads))
                return 2;
        } else if (!strcmp(a, "--isa")) {
            o->isa = v;
        } else if (!strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "--db")) {
            o->db = v;
        } else if (!strcmp(a, "--label")) {
            o->label = v;
        } else {
            if (strcmp(v, "console") && strcmp(v, "json") && strcmp(v, "junit") && strcmp(v, "md") &&
                strcmp(v, "html"))
                return usage_error("-o: unknown format '%s' (console, json, junit, md, html)", v);
            o->format = v;
        }
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool selected(const conf_opts *o, const mlc_conf_case *c)
{
    if (o->op_filter && !o->op_on[c->op])
        return false;
    return !o->type_filter || (c->type < MLC_TYPE_COUNT && o->type_on[c->type]);
}

/* The model-level comparison of one device (the instance b is only used for its name). */
static void run_model(const conf_opts *o, const mlc_backend *b, int dev, mlc_conf_device_run *out)
{
    const size_t len = mlc_embed_corpus_txt_len < 4096 ? mlc_embed_corpus_txt_len : 4096;
    const mlc_conf_model_params mp = {
        .path = o->model, .ref_threads = o->threads,
        .target = {.backend = b->vt->name, .device = dev, .n_threads = o->threads, .isa = o->isa},
        .text = (const char *)mlc_embed_corpus_txt, .text_len = len};
    mlc_err err = {0};
    out->has_model = true;
    snprintf(out->model_path, sizeof out->model_path, "%s", o->model);
    if (mlc_conf_model_run(&mp, &out->model, &err)) {
        out->model.pass = false;
        snprintf(out->model.error, sizeof out->model.error, "%.300s", err.msg);
    }
    out->n_fail += !out->model.pass;
}

/* Runs the selected cases on one open device. */
static int run_device(const conf_opts *o, const mlc_backend *b, int dev, const mlc_conf_case *cases,
                      int n_cases, mlc_conf_device_run *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "%s", b->vt->name);
    out->device = dev;
    out->level = o->level == MLC_CONF_FULL ? "full" : "quick";
    out->seed = o->seed;
    mlc_device_info di = {0};
    b->vt->device_info(dev, &di);
    char how[96];
    b->vt->describe(b->ctx, how, sizeof how);
    snprintf(out->device_desc, sizeof out->device_desc, "%.256s; %.96s", di.description, how);
    if (!(out->results = calloc((size_t)(n_cases ? n_cases : 1), sizeof *out->results)))
        return -1;
    const double t0 = now_s();
    for (int i = 0; i < n_cases; i++) {
        if (!selected(o, &cases[i]))
            continue;
        mlc_conf_result *r = &out->results[out->n_results++];
        mlc_conf_run(b, &cases[i], mlc_conf_case_seed(&cases[i], o->seed), r);
        out->n_pass += r->verdict == MLC_CONF_PASS;
        out->n_fail += r->verdict == MLC_CONF_FAIL;
        out->n_unsupported += r->verdict == MLC_CONF_UNSUPPORTED;
    }
    if (o->model)
        run_model(o, b, dev, out);
    out->seconds = now_s() - t0;
    return 0;
}

/* ---------------------------------------------------------------- writers */

static void rerun_hint(FILE *f, const mlc_conf_device_run *d, const mlc_conf_result *r)
{
    fprintf(f, "  rerun: mlc-bench conformance --backend %s --device %d --op %s --type %s --seed 0x%016" PRIx64
               " --%s\n",
            d->backend, d->device, mlc_op_name(r->c.op), mlc_tensor_type_name(r->c.type), d->seed, d->level);
}

static void perf_cells(FILE *f, const mlc_conf_result *r, const char *sep)
{
    const double s = r->seconds;
    fprintf(f, "%s%.4f%s", sep, s * 1e3, sep);
    if (s > 0 && r->bytes > 0)
        fprintf(f, "%.2f", r->bytes / s / 1e9);
    fputs(sep, f);
    if (s > 0 && r->flops > 0)
        fprintf(f, "%.2f", r->flops / s / 1e9);
}

static void write_console(FILE *f, const conf_opts *o, const mlc_conf_device_run *d)
{
    fprintf(f, "conformance %s:%d (%s), %s, seed 0x%016" PRIx64 "\n", d->backend, d->device,
            d->device_desc, d->level, d->seed);
    for (int i = 0; i < d->n_results; i++) {
        const mlc_conf_result *r = &d->results[i];
        if (r->verdict == MLC_CONF_FAIL) {
            fprintf(f, "FAIL %s: %s (case seed 0x%016" PRIx64 ")\n", r->desc, r->error, r->seed);
            rerun_hint(f, d, r);
        } else if (r->verdict == MLC_CONF_UNSUPPORTED) {
            fprintf(f, "unsupported %s\n", r->desc);
        }
        if (o->perf && r->verdict == MLC_CONF_PASS) {
            fprintf(f, "  %-70s", r->desc);
            perf_cells(f, r, " ");
            fputs("  (ms, GB/s, GFLOP/s)\n", f);
        }
    }
    if (d->has_model) {
        const mlc_conf_model_result *m = &d->model;
        fprintf(f, "%s model %s: logits NMSE max %.3g mean %.3g over %d positions, argmax agree %.1f%%, "
                   "ppl %.4g vs %.4g (%.3g%%), greedy %d/%d tokens equal%s%s\n",
                m->pass ? "pass" : "FAIL", d->model_path, m->logits_nmse_max, m->logits_nmse_mean,
                m->n_positions, 100 * m->top1_agree, m->ppl, m->ppl_ref, 100 * m->ppl_rel, m->greedy_match,
                m->n_greedy, m->error[0] ? ": " : "", m->error);
    }
    fprintf(f, "%s:%d: %d cases: %d passed, %d failed, %d unsupported in %.1f s\n", d->backend,
            d->device, d->n_results, d->n_pass, d->n_fail - (d->has_model && !d->model.pass),
            d->n_unsupported, d->seconds);
}

static cJSON *device_json(const conf_opts *o, const mlc_conf_device_run *d)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backend", d->backend);
    cJSON_AddNumberToObject(j, "device", d->device);
    cJSON_AddStringToObject(j, "description", d->device_desc);
    cJSON_AddStringToObject(j, "level", d->level);
    char seed[24];
    snprintf(seed, sizeof seed, "0x%016" PRIx64, d->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "cases", d->n_results);
    cJSON_AddNumberToObject(j, "passed", d->n_pass);
    cJSON_AddNumberToObject(j, "failed", d->n_fail);
    cJSON_AddNumberToObject(j, "unsupported", d->n_unsupported);
    cJSON_AddNumberToObject(j, "seconds", d->seconds);
    cJSON *arr = cJSON_AddArrayToObject(j, "results");
    for (int i = 0; i < d->n_results; i++) {
        const mlc_conf_result *r = &d->results[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "op", mlc_op_name(r->c.op));
        cJSON_AddStringToObject(c, "type", mlc_tensor_type_name(r->c.type));
        cJSON *sh = cJSON_AddArrayToObject(c, "shape");
        for (int k = 0; k < 4 && (k == 0 || r->c.shape[k]); k++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)r->c.shape[k]));
        cJSON_AddNumberToObject(c, "n", (double)r->c.n);
        cJSON_AddStringToObject(c, "case", r->desc);
        cJSON_AddStringToObject(c, "verdict", mlc_conf_verdict_name(r->verdict));
        if (isfinite(r->nmse))
            cJSON_AddNumberToObject(c, "nmse", r->nmse);
        else
            cJSON_AddNullToObject(c, "nmse");
        cJSON_AddNumberToObject(c, "threshold", r->threshold);
        snprintf(seed, sizeof seed, "0x%016" PRIx64, r->seed);
        cJSON_AddStringToObject(c, "seed", seed);
        if (r->error[0])
            cJSON_AddStringToObject(c, "error", r->error);
        if (o->perf && r->verdict == MLC_CONF_PASS) {
            cJSON_AddNumberToObject(c, "ms", r->seconds * 1e3);
            if (r->seconds > 0 && r->bytes > 0)
                cJSON_AddNumberToObject(c, "gb_per_s", r->bytes / r->seconds / 1e9);
            if (r->seconds > 0 && r->flops > 0)
                cJSON_AddNumberToObject(c, "gflop_per_s", r->flops / r->seconds / 1e9);
        }
        cJSON_AddItemToArray(arr, c);
    }
    if (d->has_model) {
        const mlc_conf_model_result *m = &d->model;
        const mlc_conf_model_tol *t = mlc_conf_model_tolerance();
        cJSON *mj = cJSON_AddObjectToObject(j, "model");
        cJSON_AddStringToObject(mj, "path", d->model_path);
        cJSON_AddStringToObject(mj, "verdict", m->pass ? "pass" : "fail");
        cJSON_AddNumberToObject(mj, "positions", m->n_positions);
        cJSON_AddNumberToObject(mj, "logits_nmse_max", m->logits_nmse_max);
        cJSON_AddNumberToObject(mj, "logits_nmse_mean", m->logits_nmse_mean);
        cJSON_AddNumberToObject(mj, "logits_nmse_threshold", t->logits_nmse);
        cJSON_AddNumberToObject(mj, "top1_agree", m->top1_agree);
        cJSON_AddNumberToObject(mj, "ppl", m->ppl);
        cJSON_AddNumberToObject(mj, "ppl_ref", m->ppl_ref);
        cJSON_AddNumberToObject(mj, "ppl_rel_diff", m->ppl_rel);
        cJSON_AddNumberToObject(mj, "greedy_match", m->greedy_match);
        cJSON_AddNumberToObject(mj, "greedy_steps", m->n_greedy);
        if (m->error[0])
            cJSON_AddStringToObject(mj, "error", m->error);
    }
    return j;
}

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
        }
    }
}

static void write_junit(FILE *f, const mlc_conf_device_run *d, int n)
{
    int tests = 0, failures = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        tests += d[i].n_results + d[i].has_model;
        failures += d[i].n_fail;
        skipped += d[i].n_unsupported;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"mlc-bench conformance\" tests=\"%d\" failures=\"%d\" skipped=\"%d\">\n",
            tests, failures, skipped);
    for (int k = 0; k < n; k++) {
        fprintf(f, "  <testsuite name=\"%s:%d\" tests=\"%d\" failures=\"%d\" skipped=\"%d\" time=\"%.3f\">\n",
                d[k].backend, d[k].device, d[k].n_results + d[k].has_model, d[k].n_fail, d[k].n_unsupported, d[k].seconds);
        fprintf(f, "    <properties><property name=\"device\" value=\"");
        xml_escaped(f, d[k].device_desc);
        fprintf(f, "\"/><property name=\"seed\" value=\"0x%016" PRIx64 "\"/></properties>\n", d[k].seed);
        for (int i = 0; i < d[k].n_results; i++) {
            const mlc_conf_result *r = &d[k].results[i];
            fprintf(f, "    <testcase classname=\"conformance.%s.%s\" name=\"", d[k].backend, mlc_op_name(r->c.op));
            xml_escaped(f, r->desc);
            fprintf(f, "\" time=\"%.6f\"", r->seconds);
            if (r->verdict == MLC_CONF_PASS) {
                fputs("/>\n", f);
                continue;
            }
            fputs(">", f);
            if (r->verdict == MLC_CONF_UNSUPPORTED) {
                fputs("<skipped message=\"unsupported by the device\"/>", f);
            } else {
                fputs("<failure message=\"", f);
                xml_escaped(f, r->error);
                fprintf(f, "\">case seed 0x%016" PRIx64 "</failure>", r->seed);
            }
            fputs("</testcase>\n", f);
        }
        if (d[k].has_model) {
            fprintf(f, "    <testcase classname=\"conformance.%s.model\" name=\"", d[k].backend);
            xml_escaped(f, d[k].model_path);
            if (d[k].model.pass) {
                fputs("\"/>\n", f);
            } else {
                fputs("\"><failure message=\"", f);
                xml_escaped(f, d[k].model.error);
                fputs("\"/></testcase>\n", f);
            }
        }
        fputs("  </testsuite>\n", f);
    }
    fputs("</testsuites>\n", f);
}

static const uint32_t MATRIX_TYPES[] = {MLC_TYPE_F32, MLC_TYPE_F16, MLC_TYPE_BF16, MLC_TYPE_Q8_0,
                                        MLC_TYPE_Q4_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,
                                        MLC_TYPE_Q2_K, MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K,
                                        MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
#define N_MATRIX_TYPES ((int)(sizeof MATRIX_TYPES / sizeof MATRIX_TYPES[0]))

/* One cell of the op x type matrix: the cases of op at type and their worst NMSE. */
typedef struct cell {
    int cases, fails, unsup;
    double worst, thr;
} cell;

static cell matrix_cell(const mlc_conf_device_run *d, int op, uint32_t type)
{
    cell c = {.worst = -1};
    for (int i = 0; i < d->n_results; i++) {
        const mlc_conf_result *r = &d->results[i];
        if (r->c.op != (mlc_op)op || r->c.type != type)
            continue;
        c.cases++;
        c.fails += r->verdict == MLC_CONF_FAIL;
        c.unsup += r->verdict == MLC_CONF_UNSUPPORTED;
        c.thr = r->threshold;
        if (r->verdict == MLC_CONF_FAIL && !isfinite(r->nmse))
            c.worst = INFINITY;
        else if (isfinite(r->nmse) && r->nmse > c.worst)
            c.worst = r->nmse;
    }
    return c;
}

static bool op_present(const mlc_conf_device_run *d, int op)
{
    for (int i = 0; i < d->n_results; i++)
        if (d->results[i].c.op == (mlc_op)op)
            return true;
    return false;
}

/* Markdown: a pass/fail matrix op x type with the worst NMSE against the threshold, the
 * failures, the unsupported cases and (--perf) the timings. */
static void write_md(FILE *f, const conf_opts *o, const mlc_conf_device_run *d)
{
    fprintf(f, "## Conformance: %s:%d\n\n%s  \n%s suite, seed `0x%016" PRIx64 "`: %d cases, %d passed, "
               "%d failed, %d unsupported (%.1f s)\n\n",
            d->backend, d->device, d->device_desc, d->level, d->seed, d->n_results, d->n_pass, d->n_fail,
            d->n_unsupported, d->seconds);
    fputs("| op |", f);
    for (int t = 0; t < N_MATRIX_TYPES; t++)
        fprintf(f, " %s |", mlc_type_name(MATRIX_TYPES[t]));
    fputs("\n| --- |", f);
    for (int t = 0; t < N_MATRIX_TYPES; t++)
        fputs(" --- |", f);
    fputs("\n", f);
    for (int op = 0; op < MLC_OP_COUNT; op++) {
        if (!op_present(d, op))
            continue;
        fprintf(f, "| %s |", mlc_op_name((mlc_op)op));
        for (int t = 0; t < N_MATRIX_TYPES; t++) {
            const cell c = matrix_cell(d, op, MATRIX_TYPES[t]);
            if (!c.cases)
                fputs(" |", f);
            else if (c.unsup == c.cases)
                fputs(" unsupported |", f);
            else
                fprintf(f, " %s %.1e / %.0e%s |", c.fails ? "**FAIL**" : "pass", c.worst, c.thr,
                        c.unsup ? " (some unsupported)" : "");
        }
        fputs("\n", f);
    }
    if (d->n_fail) {
        fputs("\n### Failures\n\n", f);
        for (int i = 0; i < d->n_results; i++)
            if (d->results[i].verdict == MLC_CONF_FAIL)
                fprintf(f, "- `%s`: %s (case seed `0x%016" PRIx64 "`)\n", d->results[i].desc,
                        d->results[i].error, d->results[i].seed);
    }
    if (d->n_unsupported) {
        fputs("\n### Unsupported\n\n", f);
        for (int i = 0; i < d->n_results; i++)
            if (d->results[i].verdict == MLC_CONF_UNSUPPORTED)
                fprintf(f, "- `%s`\n", d->results[i].desc);
    }
    if (d->has_model) {
        const mlc_conf_model_result *m = &d->model;
        const mlc_conf_model_tol *t = mlc_conf_model_tolerance();
        fprintf(f, "\n### Model `%s` against the reference CPU\n\n| check | value | threshold |\n| --- | ---: | ---: |\n"
                   "| logits NMSE (worst position of %d) | %.3g | %.0e |\n| argmax agreement | %.1f%% | %.0f%% |\n"
                   "| perplexity (reference) | %.4g (%.4g), %.3g%% | %.0f%% |\n| greedy tokens equal | %d of %d | |\n\n%s%s\n",
                d->model_path, m->n_positions, m->logits_nmse_max, t->logits_nmse, 100 * m->top1_agree,
                100 * t->top1_agree, m->ppl, m->ppl_ref, 100 * m->ppl_rel, 100 * t->ppl_rel, m->greedy_match,
                m->n_greedy, m->pass ? "**pass**" : "**FAIL**: ", m->error);
    }
    if (o->perf) {
        fputs("\n### Performance\n\n| case | ms | GB/s | GFLOP/s |\n| --- | ---: | ---: | ---: |\n", f);
        for (int i = 0; i < d->n_results; i++)
            if (d->results[i].verdict == MLC_CONF_PASS) {
                fprintf(f, "| %s", d->results[i].desc);
                perf_cells(f, &d->results[i], " | ");
                fputs(" |\n", f);
            }
    }
    fputs("\n", f);
}

/* A single self-contained HTML page (inline CSS, nothing fetched) a vendor can publish: per
 * device its fingerprint, the op x type matrix (worst NMSE / threshold), failures,
 * unsupported cases, the model level and (--perf) the timings. */
static void write_html(FILE *f, const conf_opts *o, const mlc_conf_device_run *runs, int n)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>mlc-bench conformance</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;color:#222}\n"
          "table{border-collapse:collapse;margin:1em 0}\n"
          "th,td{border:1px solid #999;padding:4px 8px;text-align:left;font-size:14px;white-space:nowrap}\n"
          "th{background:#e8e8e8}\n.pass{background:#c8f0c8}\n.fail{background:#f4b0b0}\n"
          ".unsup{background:#e0e0e0;color:#555}\ncode{font-size:13px}\n"
          "</style>\n</head>\n<body>\n<h1>mlc-bench conformance</h1>\n", f);
    for (int k = 0; k < n; k++) {
        const mlc_conf_device_run *d = &runs[k];
        fprintf(f, "<h2>%s:%d</h2>\n<p>", d->backend, d->device);
        xml_escaped(f, d->device_desc);
        fprintf(f, "<br>%s suite, seed <code>0x%016" PRIx64 "</code>: %d cases, %d passed, %d failed, "
                   "%d unsupported (%.1f s)</p>\n",
                d->level, d->seed, d->n_results, d->n_pass, d->n_fail - (d->has_model && !d->model.pass),
                d->n_unsupported, d->seconds);
        fputs("<table>\n<tr><th>op</th>", f);
        for (int t = 0; t < N_MATRIX_TYPES; t++)
            fprintf(f, "<th>%s</th>", mlc_type_name(MATRIX_TYPES[t]));
        fputs("</tr>\n", f);
        for (int op = 0; op < MLC_OP_COUNT; op++) {
            if (!op_present(d, op))
                continue;
            fprintf(f, "<tr><th>%s</th>", mlc_op_name((mlc_op)op));
            for (int t = 0; t < N_MATRIX_TYPES; t++) {
                const cell c = matrix_cell(d, op, MATRIX_TYPES[t]);
                if (!c.cases)
                    fputs("<td></td>", f);
                else if (c.unsup == c.cases)
                    fputs("<td class=\"unsup\">unsupported</td>", f);
                else
                    fprintf(f, "<td class=\"%s\">%s %.1e / %.0e%s</td>", c.fails ? "fail" : "pass",
                            c.fails ? "FAIL" : "pass", c.worst, c.thr, c.unsup ? " (some unsupported)" : "");
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        for (int pass = 0; pass < 2; pass++) {
            const mlc_conf_verdict v = pass ? MLC_CONF_UNSUPPORTED : MLC_CONF_FAIL;
            if (!(pass ? d->n_unsupported : d->n_fail))
                continue;
            fprintf(f, "<h3>%s</h3>\n<ul>\n", pass ? "Unsupported" : "Failures");
            for (int i = 0; i < d->n_results; i++) {
                const mlc_conf_result *r = &d->results[i];
                if (r->verdict != v)
                    continue;
                fputs("<li><code>", f);
                xml_escaped(f, r->desc);
                fputs("</code>", f);
                if (!pass) {
                    fputs(": ", f);
                    xml_escaped(f, r->error);
                    fprintf(f, " (case seed <code>0x%016" PRIx64 "</code>)", r->seed);
                }
                fputs("</li>\n", f);
            }
            fputs("</ul>\n", f);
        }
        if (d->has_model) {
            const mlc_conf_model_result *m = &d->model;
            const mlc_conf_model_tol *t = mlc_conf_model_tolerance();
            fputs("<h3>Model against the reference CPU</h3>\n<p><code>", f);
            xml_escaped(f, d->model_path);
            fprintf(f, "</code>: <span class=\"%s\">%s</span> ", m->pass ? "pass" : "fail", m->pass ? "pass" : "FAIL");
            xml_escaped(f, m->error);
            fprintf(f, "</p>\n<table>\n<tr><th>check</th><th>value</th><th>threshold</th></tr>\n"
                       "<tr><td>logits NMSE (worst of %d positions)</td><td>%.3g</td><td>%.0e</td></tr>\n"
                       "<tr><td>argmax agreement</td><td>%.1f%%</td><td>%.0f%%</td></tr>\n"
                       "<tr><td>perplexity (reference)</td><td>%.4g (%.4g), %.3g%%</td><td>%.0f%%</td></tr>\n"
                       "<tr><td>greedy tokens equal</td><td>%d of %d</td><td></td></tr>\n</table>\n",
                    m->n_positions, m->logits_nmse_max, t->logits_nmse, 100 * m->top1_agree, 100 * t->top1_agree,
                    m->ppl, m->ppl_ref, 100 * m->ppl_rel, 100 * t->ppl_rel, m->greedy_match, m->n_greedy);
        }
        if (o->perf) {
            fputs("<h3>Performance</h3>\n<table>\n<tr><th>case</th><th>ms</th><th>GB/s</th><th>GFLOP/s</th></tr>\n", f);
            for (int i = 0; i < d->n_results; i++) {
                const mlc_conf_result *r = &d->results[i];
                if (r->verdict != MLC_CONF_PASS)
                    continue;
                fputs("<tr><td>", f);
                xml_escaped(f, r->desc);
                fprintf(f, "</td><td>%.4f</td><td>", r->seconds * 1e3);
                if (r->seconds > 0 && r->bytes > 0)
                    fprintf(f, "%.2f", r->bytes / r->seconds / 1e9);
                fputs("</td><td>", f);
                if (r->seconds > 0 && r->flops > 0)
                    fprintf(f, "%.2f", r->flops / r->seconds / 1e9);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
        }
    }
    fputs("</body>\n</html>\n", f);
}

static void write_all(const conf_opts *o, const mlc_conf_device_run *runs, int n)
{
    if (!strcmp(o->format, "html")) {
        write_html(stdout, o, runs, n);
        return;
    }
    if (!strcmp(o->format, "junit")) {
        write_junit(stdout, runs, n);
        return;
    }
    if (!strcmp(o->format, "json")) {
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "devices");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, device_json(o, &runs[i]));
        char *s = cJSON_Print(root);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(root);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(o->format, "md"))
            write_md(stdout, o, &runs[i]);
        else
            write_console(stdout, o, &runs[i]);
    }
}

/* ---------------------------------------------------------------- the store */

static mlc_status store_device(mlc_store *st, int64_t run, const mlc_conf_device_run *d, mlc_err *err)
{
    char dev[448];
    snprintf(dev, sizeof dev, "%.31s:%d %.383s", d->backend, d->device, d->device_desc);
    mlc_status s = MLC_OK;
    for (int i = 0; i < d->n_results && !s; i++) {
        const mlc_conf_result *r = &d->results[i];
        char shape[96];
        snprintf(shape, sizeof shape, "[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]", r->c.shape[0],
                 r->c.shape[1], r->c.shape[2], r->c.shape[3]);
        mlc_conformance_row row = {d->backend, dev, mlc_op_name(r->c.op), mlc_tensor_type_name(r->c.type), shape,
                                   r->desc, mlc_conf_verdict_name(r->verdict), r->error, r->nmse,
                                   r->threshold, r->seconds * 1e3, r->seed};
        s = mlc_store_add_conformance(st, run, &row, err);
    }
    if (!s && d->has_model) {
        const mlc_conf_model_result *m = &d->model;
        char desc[600];
        snprintf(desc, sizeof desc, "model %s", d->model_path);
        mlc_conformance_row row = {d->backend, dev, "model", "", "", desc, m->pass ? "pass" : "fail", m->error,
                                   m->logits_nmse_max, NAN, NAN, d->seed};
        s = mlc_store_add_conformance(st, run, &row, err);
    }
    /* Counts for `compare` (deterministic: any change is real). Only failures gate; a case
     * that became unsupported moves passed and unsupported, which have no direction, so it is
     * reported as a change, not a regression. */
    const struct { const char *name; int v, dir; } counts[] = {
        {"conf_passed", d->n_pass, 0}, {"conf_failed", d->n_fail + (d->has_model && !d->model.pass), -1},
        {"conf_unsupported", d->n_unsupported, 0},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0] && !s; i++) {
        char name[96];
        snprintf(name, sizeof name, "%.31s:%d/%s", d->backend, d->device, counts[i].name);
        s = mlc_store_add_metric(st, run, name, "cases", "count", counts[i].v, counts[i].dir, err);
    }
    return s;
}

/* A run of kind 'conformance' with every case of every device; a failure to store is reported
 * (exit 1) but never hides the results, which are already written. */
static int store_results(const conf_opts *o, const mlc_conf_device_run *runs, int n)
{
    const char *path = o->db ? o->db : mlc_store_default_path();
    mlc_store *st = NULL;
    mlc_err err = {0};
    int64_t run = 0;
    char config[256];
    snprintf(config, sizeof config, "{\"level\": \"%s\", \"seed\": \"0x%016" PRIx64 "\", \"threads\": %d, \"isa\": \"%s\"}",
             o->level == MLC_CONF_FULL ? "full" : "quick", o->seed, o->threads, o->isa ? o->isa : "");
    mlc_run_info ri = {.kind = "conformance", .label = o->label, .target = "local",
                       .backend = o->backend ? o->backend : "all", .device = n == 1 ? runs[0].device_desc : NULL,
                       .model_path = o->model, .config_json = config};
    mlc_status s = mlc_store_open(path, &st, &err);
    if (!s)
        s = mlc_store_run_begin(st, &ri, &run, &err);
    for (int i = 0; i < n && !s; i++)
        s = store_device(st, run, &runs[i], &err);
    if (run) {
        mlc_err end_err = {0};
        mlc_status e = mlc_store_run_end(st, run, s ? "failed" : "complete", &end_err);
        if (!s && e) {
            s = e;
            err = end_err;
        }
    }
    mlc_store_close(st);
    if (s) {
        fprintf(stderr, "mlc-bench conformance: not stored: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "stored as run %" PRId64 " in %s\n", run, path);
    return 0;
}

/* ---------------------------------------------------------------- the command */

int mlc_cmd_conformance(int argc, char **argv)
{
    conf_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    const bool all = !o.backend || !strcmp(o.backend, "all");
    if (!all && !mlc_backend_built(mlc_backend_find(o.backend))) {
        fprintf(stderr, "mlc-bench conformance: backend '%s' is not built into this binary (see mlc-bench devices)\n",
                o.backend);
        return 2;
    }
    char synth_dir[64] = "", synth_path[96] = "";
    if (o.model && !strcmp(o.model, "synth")) {
        /* a tiny model written for this run, removed at the end */
        const char *tmp = getenv("TMPDIR");
        snprintf(synth_dir, sizeof synth_dir, "%.40s/mlc-conf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(synth_dir)) {
            fprintf(stderr, "mlc-bench conformance: cannot create a directory for the synthesized model\n");
            return 1;
        }
        snprintf(synth_path, sizeof synth_path, "%s/tiny-q8_0.gguf", synth_dir);
        char *sargv[] = {"synth", "--preset", "tiny", "--type", "q8_0", "-o", synth_path, NULL};
        if (mlc_cmd_model_synth(7, sargv)) {
            rmdir(synth_dir);
            return 1;
        }
        o.model = synth_path;
    } else if (o.model && access(o.model, R_OK)) {
        fprintf(stderr, "mlc-bench conformance: --model: cannot read '%s'\n", o.model);
        return 2;
    }
    mlc_conf_case *cases = NULL;
    const int n_cases = mlc_conf_cases(o.level, &cases);
    mlc_conf_device_run runs[32];
    int n_runs = 0;
    rc = n_cases < 0 ? 1 : 0;
    for (int bi = 0; !rc && bi < mlc_backend_count(); bi++) {
        if (!mlc_backend_built(bi) || (!all && strcmp(mlc_backend_name(bi), o.backend)))
            continue;
        const int n_dev = mlc_backend_device_count(bi);
        if (n_dev == 0 && !all) {
            const mlc_backend_vt *vt = NULL;
            mlc_err err = {0};
            char why[256] = "";
            if (mlc_backend_vt_get(o.backend, &vt, &err) == MLC_OK && vt->no_device)
                vt->no_device(why, sizeof why);
            fprintf(stderr, "mlc-bench conformance: backend '%s' has no device%s%s\n", o.backend,
                    why[0] ? ": " : "", why);
            rc = 2;
            break;
        }
        if (o.device >= n_dev && !all) {
            fprintf(stderr, "mlc-bench conformance: backend '%s' has no device %d (%d present)\n",
                    o.backend, o.device, n_dev);
            rc = 2;
            break;
        }
        for (int dev = 0; dev < n_dev && n_runs < 32 && !rc; dev++) {
            if (o.device >= 0 && dev != o.device)
                continue;
            mlc_backend b;
            mlc_err err = {0};
            const mlc_backend_params p = {.device = dev, .n_threads = o.threads, .isa = o.isa};
            if (mlc_backend_open(mlc_backend_name(bi), &p, &b, &err)) {
                fprintf(stderr, "mlc-bench conformance: %s\n", err.msg);
                rc = err.status == MLC_ERR_ARG || o.isa ? 2 : 1; /* a bad --device or --isa */
                break;
            }
            if (run_device(&o, &b, dev, cases, n_cases, &runs[n_runs]) == 0)
                n_runs++;
            else
                rc = 1;
            mlc_backend_close(&b);
        }
    }
    if (n_cases < 0)
        fprintf(stderr, "mlc-bench conformance: out of memory\n");
    if (!rc && !n_runs) {
        fprintf(stderr, "mlc-bench conformance: no built backend has device %d\n", o.device);
        rc = 2;
    }
    write_all(&o, runs, n_runs);
    if (n_runs && !o.no_store && (rc == 0 || rc == 1) && store_results(&o, runs, n_runs) && !rc)
        rc = 1;
    for (int i = 0; i < n_runs; i++) {
        if (runs[i].n_fail && !rc)
            rc = 1;
        free(runs[i].results);
    }
    free(cases);
    if (synth_path[0]) {
        unlink(synth_path);
        rmdir(synth_dir);
    }
    return rc;
}
