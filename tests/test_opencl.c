/* test_opencl.c: the opencl backend (kernels/opencl/) on whatever OpenCL device the machine
 * has (PoCL in CI): the full conformance suite, model-level conformance and llama.cpp's
 * golden outputs on ../shared/golden, its optional kernel paths (sub-groups, emulated where
 * the device has none; fp16 forced off), and its one-line errors (no ICD loader, no platform,
 * no device, a kernel build failure, fp16 forced on a device without it, out of device
 * memory, an unsupported type, an index out of range).
 *
 * Without an OpenCL device the tests skip, unless MLC_REQUIRE_OPENCL=1 (CI sets it), where a
 * missing device fails them. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conformance/model_conformance.h"
#include "backend.h"
#include "mlc/backend_info.h"
#include "mlc/model.h"
#include "mlc/quant.h"
#include "mlc/sampler.h"
#include "util.h"

static const char *const GOLDEN[] = {"tiny-llama-f16.gguf", "tiny-llama-q8_0.gguf", "tiny-llama-q4_0.gguf",
                                     "tiny-llama-q4_k_m.gguf"};
#define N_GOLDEN (int)(sizeof GOLDEN / sizeof GOLDEN[0])

/* Skips the test when the build lacks the opencl backend (or, with device, when no OpenCL
 * device is present); under MLC_REQUIRE_OPENCL=1 fails it instead. */
static void need(bool device)
{
    const int b = mlc_backend_find("opencl");
    if (mlc_backend_built(b) && (!device || mlc_backend_device_count(b) > 0))
        return;
    const char *req = getenv("MLC_REQUIRE_OPENCL");
    if (req && !strcmp(req, "1"))
        cr_assert_fail("no OpenCL device (opencl %s), and MLC_REQUIRE_OPENCL=1",
                       mlc_backend_built(b) ? "built" : "not built");
    cr_skip_test("no OpenCL device (set MLC_REQUIRE_OPENCL=1 to fail instead)");
}

static cJSON *load_golden(void)
{
    char path[1024];
    tu_require_shared(path, sizeof path, "golden/golden.json");
    char *text = tu_read_file(path, NULL);
    cr_assert_not_null(text, "%s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

/* ---- conformance ------------------------------------------------------------------------ */

/* Weight types the CPU backend computes that the opencl backend declines, by name, each
 * followed by a space (none today): conformance_full expects exactly their cases to be
 * reported unsupported. */
static const char DECLINED[] = "";

static bool declined(const char *type_name)
{
    char key[32];
    snprintf(key, sizeof key, "%s ", type_name ? type_name : "?");
    for (const char *p = DECLINED; (p = strstr(p, key)); p++)
        if (p == DECLINED || p[-1] == ' ')
            return true;
    return false;
}

/* supports() says yes to get_rows and matmul of every type the CPU backend computes,
 * except the DECLINED list, and no to those. */
Test(opencl, supports_cpu_types)
{
    need(true);
    mlc_backend b;
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open("opencl", NULL, &b, &err), MLC_OK, "%s", err.msg);
    const int64_t shape[4] = {512, 8, 1, 1};
    int n = 0;
    for (uint32_t t = 0; t < MLC_TYPE_COUNT; t++) {
        if (!mlc_type_supported(t))
            continue;
        n++;
        const bool want = !declined(mlc_type_name(t));
        cr_expect_eq(b.vt->supports(b.ctx, MLC_OP_MATMUL, t, shape), want, "matmul %s", mlc_type_name(t));
        cr_expect_eq(b.vt->supports(b.ctx, MLC_OP_GET_ROWS, t, shape), want, "get_rows %s", mlc_type_name(t));
    }
    cr_expect_eq(n, 15);
    mlc_backend_close(&b);
}

/* Every op, type and shape of the full suite passes; none is declined but the cases of the
 * DECLINED types. The sanitizer build runs the quick suite: the host code is the same for
 * every case, and the full one takes minutes there. */
Test(opencl, conformance_full, .timeout = 900)
{
    need(true);
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "%s conformance --backend opencl --device 0 %s --no-store -o json 2>&1", tu_bin(),
             tu_sanitized() ? "--quick" : "--full");
    cr_assert_eq(tu_run(cmd, &out), 0, "%.2000s", out);
    cJSON *root = cJSON_Parse(strchr(out, '{'));
    cr_assert(root, "not JSON: %.400s", out);
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "devices"), 0);
    cr_assert_not_null(d);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d, "backend")), "opencl");
    const int cases = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "cases"));
    cr_expect_gt(cases, tu_sanitized() ? 100 : 500);
    int unsupported = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(d, "results"))
    {
        const char *verdict = cJSON_GetStringValue(cJSON_GetObjectItem(c, "verdict"));
        if (!verdict || strcmp(verdict, "unsupported"))
            continue;
        unsupported++;
        cr_expect(declined(cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"))), "unsupported: %s",
                  cJSON_GetStringValue(cJSON_GetObjectItem(c, "case")));
    }
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "unsupported")), unsupported);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "passed")), cases - unsupported);
    cJSON_Delete(root);
    free(out);
}

/* ---- optional kernel paths ------------------------------------------------------------- */

/* The device line of `mlc-bench devices` under env: opencl:0's, with its chosen paths. */
static char *opencl_line(const char *env)
{
    char cmd[1400], *out;
    snprintf(cmd, sizeof cmd, "%s %s devices 2>&1", env, tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    char *l = strstr(out, "\n  opencl:0 ");
    cr_assert_not_null(l, "%s", out);
    memmove(out, l + 1, strcspn(l + 1, "\n"));
    out[strcspn(l + 1, "\n")] = 0;
    return out;
}

/* The paths chosen from the extensions, and the switches that force them off, are shown. */
Test(opencl, paths_shown)
{
    need(true);
    char *def = opencl_line("");
    const bool has_fp16 = strstr(def, "fp16 on"), has_sg = strstr(def, "sub-groups on");
    cr_expect(has_fp16 || strstr(def, "fp16 off (absent)"), "%s", def);
    cr_expect(has_sg || strstr(def, "sub-groups off (absent)"), "%s", def);
    char *l = opencl_line("MLC_OPENCL_NO_FP16=1 MLC_OPENCL_NO_SUBGROUPS=1 MLC_OPENCL_SUBGROUP_EMULATION=8");
    cr_expect(strstr(l, has_fp16 ? "fp16 off (MLC_OPENCL_NO_FP16)" : "fp16 off (absent)"), "%s", l);
    cr_expect(strstr(l, "sub-groups off (MLC_OPENCL_NO_SUBGROUPS)"), "%s", l);
    free(l);
    l = opencl_line("MLC_OPENCL_SUBGROUP_EMULATION=8");
    cr_expect(strstr(l, has_sg ? "sub-groups on" : "sub-groups emulated, 8 items"), "%s", l);
    free(l);
    free(def);
}

/* The op suite's cases under env pass (ops and types as conformance's --op / --type), on a
 * device whose description holds want. */
static void conformance_under(const char *env, const char *ops, const char *types, const char *want)
{
    char cmd[1600], *out;
    snprintf(cmd, sizeof cmd, "%s %s conformance --backend opencl --device 0 --op %s --type %s --no-store -o json 2>&1",
             env, tu_bin(), ops, types);
    cr_assert_eq(tu_run(cmd, &out), 0, "%.2000s", out);
    cJSON *root = cJSON_Parse(strchr(out, '{'));
    cr_assert(root, "not JSON: %.400s", out);
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "devices"), 0);
    cr_assert_not_null(d);
    const char *desc = cJSON_GetStringValue(cJSON_GetObjectItem(d, "description"));
    cr_expect(desc && strstr(desc, want), "%s: '%s' not in %s", env, want, desc ? desc : "(none)");
    const int cases = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "cases"));
    cr_expect_gt(cases, 10, "%s", env);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "passed")), cases, "%s: %.2000s", env, out);
    cJSON_Delete(root);
    free(out);
}

/* The sub-group path (the reductions of rms_norm and attention, the float-weight matvec),
 * where the device has no sub-groups (PoCL) through its emulation: sub-groups smaller than a
 * matvec row's items (8: some idle) and larger (32: two rows each). Where the device has
 * sub-groups, the plain runs take that path and conformance_full covers it. */
Test(opencl, subgroup_path_8, .timeout = 600)
{
    need(true);
    conformance_under("MLC_OPENCL_SUBGROUP_EMULATION=8", "matmul,rms_norm,attention", "f32,f16,bf16",
                      "sub-groups ");
}

Test(opencl, subgroup_path_32, .timeout = 600)
{
    need(true);
    conformance_under("MLC_OPENCL_SUBGROUP_EMULATION=32", "matmul,rms_norm,attention", "f32,f16,bf16",
                      "sub-groups ");
}

/* A device without fp16 (forced off where it has it): the F16 weights and cache take the
 * vload_half path and pass. */
Test(opencl, fp16_off, .timeout = 600)
{
    need(true);
    conformance_under("MLC_OPENCL_NO_FP16=1", "matmul,get_rows,kv_store,attention", "f16", "fp16 off (");
}

/* The golden models on opencl against the reference CPU on the same tokens. With fp64 on the
 * device (PoCL) the kernels sum in the CPU's order and precision: measured NMSE 0 and equal
 * perplexity for all four; the table's thresholds still apply elsewhere. */
Test(opencl, model_level_golden, .timeout = 600)
{
    need(true);
    char text_path[1024];
    tu_require_shared(text_path, sizeof text_path, "golden/text.txt");
    size_t len;
    char *text = tu_read_file(text_path, &len);
    cr_assert_not_null(text);
    /* the sanitizer build runs the first file: the host code is the same for all four */
    for (int i = 0; i < (tu_sanitized() ? 1 : N_GOLDEN); i++) {
        char path[1024], rel[256];
        snprintf(rel, sizeof rel, "golden/%s", GOLDEN[i]);
        tu_require_shared(path, sizeof path, rel);
        mlc_conf_model_params p = {.path = path, .ref_threads = 2, .text = text, .text_len = len,
                                   .n_tokens = 128, .n_greedy = 32, .target = {.backend = "opencl"}};
        mlc_conf_model_result r;
        mlc_err err = {0};
        cr_assert_eq(mlc_conf_model_run(&p, &r, &err), MLC_OK, "%s: %s", GOLDEN[i], err.msg);
        cr_log_info("%s: logits NMSE max %g, argmax %.1f%%, ppl rel %g, greedy %d/%d", GOLDEN[i],
                    r.logits_nmse_max, 100 * r.top1_agree, r.ppl_rel, r.greedy_match, r.n_greedy);
        cr_expect(r.pass, "%s: %s", GOLDEN[i], r.error);
        cr_expect_gt(r.n_positions, 100);
    }
    free(text);
}

/* ---- llama.cpp's outputs ----------------------------------------------------------------- */

/* Greedy decoding of golden.json's prompts: the chosen token equals llama.cpp's wherever its
 * top-2 margin is at least 0.05 (up to the first near tie), and llama.cpp's top-5 logits are
 * within tol (test_model.c's quantized-weight tolerance, after rounding events: 8-bit
 * activations turn one-ulp differences into steps of ~0.05). */
static void golden_greedy(const cJSON *g, const char *file, float tol)
{
    const cJSON *models = cJSON_GetObjectItem(g, "models"), *m = cJSON_GetObjectItem(models, file);
    cr_assert_not_null(m, "%s not in golden.json", file);
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "golden/%s", file);
    tu_require_shared(path, sizeof path, rel);
    mlc_model_params mp = {.backend = "opencl"};
    mlc_model *model;
    mlc_err err = {0};
    cr_assert_eq(mlc_model_load(path, &mp, &model, &err), MLC_OK, "%s", err.msg);
    mlc_context *c;
    mlc_context_params cp = {.n_ctx = 256, .n_slots = 1, .n_batch = 128};
    cr_assert_eq(mlc_context_new(model, &cp, &c, &err), MLC_OK, "%s", err.msg);
    const cJSON *greedy = cJSON_GetObjectItem(m, "greedy");
    float worst = 0;
    for (int gi = 0; gi < cJSON_GetArraySize(greedy); gi++) {
        const cJSON *pr = cJSON_GetArrayItem(greedy, gi), *pid = cJSON_GetObjectItem(pr, "prompt_ids");
        const cJSON *steps = cJSON_GetObjectItem(pr, "steps");
        const int n = cJSON_GetArraySize(pid);
        cr_assert(n > 0 && n <= 64);
        int32_t toks[64], pos[64], slot[64] = {0};
        for (int i = 0; i < n; i++) {
            toks[i] = cJSON_GetArrayItem(pid, i)->valueint;
            pos[i] = i;
        }
        mlc_batch b = {n, toks, pos, slot, NULL};
        cr_assert_eq(mlc_context_decode(c, &b, &err), MLC_OK, "%s", err.msg);
        for (int s = 0; s < cJSON_GetArraySize(steps); s++) {
            const cJSON *st = cJSON_GetArrayItem(steps, s), *top5 = cJSON_GetObjectItem(st, "top5");
            const float *lg = mlc_context_logits(c, 0);
            int32_t id = mlc_argmax(lg, mlc_context_n_vocab(c));
            const float margin = (float)(cJSON_GetArrayItem(cJSON_GetArrayItem(top5, 0), 1)->valuedouble -
                                         cJSON_GetArrayItem(cJSON_GetArrayItem(top5, 1), 1)->valuedouble);
            if (margin >= 0.05f)
                cr_assert_eq(id, cJSON_GetObjectItem(st, "id")->valueint, "%s prompt %d step %d", file, gi, s);
            for (int k = 0; k < 5; k++) {
                const cJSON *pair = cJSON_GetArrayItem(top5, k);
                const int tid = cJSON_GetArrayItem(pair, 0)->valueint;
                const float d = fabsf(lg[tid] - (float)cJSON_GetArrayItem(pair, 1)->valuedouble);
                worst = fmaxf(worst, d);
                cr_expect_leq(d, tol, "%s prompt %d step %d token %d: logit %f", file, gi, s, tid, (double)lg[tid]);
            }
            if (margin < 0.05f)
                break;
            int32_t p = n + s;
            mlc_batch nb = {1, &id, &p, &slot[0], NULL};
            cr_assert_eq(mlc_context_decode(c, &nb, &err), MLC_OK, "%s", err.msg);
        }
    }
    cr_log_info("golden %s on opencl: largest top-5 logit difference %.4f (tolerance %.2f)", file,
                (double)worst, (double)tol);
    mlc_context_free(c);
    mlc_model_free(model);
}

Test(opencl, golden_greedy_logits, .timeout = 600)
{
    need(true);
    cJSON *g = load_golden();
    golden_greedy(g, "tiny-llama-f16.gguf", 0.05f);
    golden_greedy(g, "tiny-llama-q8_0.gguf", 0.15f);
    golden_greedy(g, "tiny-llama-q4_0.gguf", 0.15f);
    golden_greedy(g, "tiny-llama-q4_k_m.gguf", 0.15f);
    cJSON_Delete(g);
}

/* `mlc-bench ppl --backend opencl`: llama.cpp's perplexity at context 128 within 0.5%. */
Test(opencl, golden_perplexity, .timeout = 600)
{
    need(true);
    if (tu_sanitized())
        cr_skip_test("run by the plain build (ppl runs under ASan in test_ppl.c, OpenCL in model_level_golden)");
    cJSON *g = load_golden();
    char text[1024];
    tu_require_shared(text, sizeof text, "golden/text.txt");
    for (int i = 0; i < N_GOLDEN; i++) {
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(g, "models"), GOLDEN[i]);
        cr_assert_not_null(m);
        const double want = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "perplexity_ctx128"), "ppl")->valuedouble;
        char model[1024], rel[256], cmd[4096], *out;
        snprintf(rel, sizeof rel, "golden/%s", GOLDEN[i]);
        tu_require_shared(model, sizeof model, rel);
        snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --backend opencl --db %s/ppl.db --quiet 2>&1",
                 tu_bin(), model, text, tu_tmpdir());
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        const char *p = strstr(out, "PPL = ");
        cr_assert_not_null(p, "%s", out);
        const double got = atof(p + 6);
        cr_expect_lt(fabs(got - want) / want, 0.005, "%s: ppl %f, llama.cpp %f", GOLDEN[i], got, want);
        free(out);
    }
    cJSON_Delete(g);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* A tiny synthesized model in the test's temporary directory. */
static const char *tiny_model(char *path, size_t cap)
{
    snprintf(path, cap, "%s/tiny.gguf", tu_tmpdir());
    char cmd[1400], *out;
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny --type q8_0 -q -o %s 2>&1", tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    return path;
}

/* Runs `generate --backend opencl` under env; it must fail with a line holding want (the
 * device compiler may print its own diagnostics count too, never a crash). */
static void generate_fails(const char *env, const char *want)
{
    char model[1024], cmd[2400], *out;
    tiny_model(model, sizeof model);
    snprintf(cmd, sizeof cmd, "%s %s generate -m %s --backend opencl -p hi -n 2 2>&1", env, tu_bin(), model);
    const int rc = tu_run(cmd, &out);
    cr_expect(rc == 1 || rc == 2, "exit %d: %s", rc, out);
    cr_expect(strstr(out, want), "'%s' missing in: %s", want, out);
    cr_expect_null(strstr(out, "Segmentation"), "%s", out);
    free(out);
}

Test(opencl_errors, no_icd_loader)
{
    need(false);
    generate_fails("MLC_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1", "no OpenCL ICD loader");
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "MLC_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1 %s devices", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "opencl  built, 0 devices\n  (no OpenCL ICD loader"), "%s", out);
    free(out);
}

Test(opencl_errors, no_platform)
{
    need(false);
    char env[1200];
    snprintf(env, sizeof env, "OCL_ICD_VENDORS=%s/no-vendors", tu_tmpdir());
    generate_fails(env, "no OpenCL platform");
}

/* PoCL's platform with no device enabled (POCL_DEVICES names none it has). */
Test(opencl_errors, no_device)
{
    need(false);
    if (access("/etc/OpenCL/vendors/pocl.icd", R_OK))
        cr_skip_test("PoCL's ICD is not installed");
    char dir[1100], cmd[2400], env[1400];
    snprintf(dir, sizeof dir, "%s/vendors", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp /etc/OpenCL/vendors/pocl.icd %s/", dir, dir);
    cr_assert_eq(tu_run(cmd, NULL), 0);
    snprintf(env, sizeof env, "OCL_ICD_VENDORS=%s POCL_DEVICES=nosuchdevice", dir);
    generate_fails(env, "1 OpenCL platform but no device");
}

Test(opencl_errors, kernel_build_failure)
{
    need(true);
    generate_fails("MLC_OPENCL_BUILD_OPTIONS=-DWG=notanumber", "opencl: kernels failed to build on ");
    generate_fails("MLC_OPENCL_BUILD_OPTIONS=-DWG=notanumber", "error");
}

/* The fp16 path forced on a device that lacks cl_khr_fp16: its kernels fail to build, and
 * the one-line error quotes the device compiler's first lines (which name half). */
Test(opencl_errors, fp16_forced_on_device_without_it)
{
    need(true);
    char *l = opencl_line("");
    const bool has = strstr(l, "fp16 on");
    free(l);
    if (has)
        cr_skip_test("the device has cl_khr_fp16: forcing it on builds");
    generate_fails("MLC_OPENCL_FORCE_FP16=1", "opencl: kernels failed to build on ");
    generate_fails("MLC_OPENCL_FORCE_FP16=1", "half");
}

/* Out of device memory, an unsupported weight type, an index out of range: through the
 * backend interface. */
Test(opencl_errors, backend_interface)
{
    need(true);
    mlc_backend b;
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open("opencl", NULL, &b, &err), MLC_OK, "%s", err.msg);
    mlc_buffer *buf = NULL;
    cr_expect_eq(b.vt->buffer_alloc(b.ctx, (size_t)1 << 50, &buf, &err), MLC_ERR_NOMEM);
    cr_expect(strstr(err.msg, "out of device memory"), "%s", err.msg);
    cr_expect_null(buf);
    /* IQ2_XXS (ggml id 16, 66 bytes per 256 values; no backend computes it): declined by
     * supports() and refused by weights(), naming the type. */
    const int64_t shape[4] = {256, 8, 1, 1};
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_MATMUL, 16, shape));
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_GET_ROWS, 16, shape));
    cr_expect(b.vt->supports(b.ctx, MLC_OP_MATMUL, MLC_TYPE_Q4_K, shape));
    static uint8_t iq2[8 * 66];
    mlc_tensor w;
    cr_expect_eq(b.vt->weights(b.ctx, iq2, 16, 256, 8, &w, &err), MLC_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "IQ2_XXS") && strstr(err.msg, "not supported"), "%s", err.msg);
    /* get_rows with an id past the table: reported at sync, naming the op and position. */
    float table[4 * 32];
    for (int i = 0; i < 4 * 32; i++)
        table[i] = (float)i;
    int32_t ids[2] = {1, 99};
    cr_assert_eq(b.vt->weights(b.ctx, table, MLC_TYPE_F32, 32, 4, &w, &err), MLC_OK, "%s", err.msg);
    mlc_buffer *ib, *ob;
    cr_assert_eq(b.vt->buffer_alloc(b.ctx, sizeof ids, &ib, &err), MLC_OK);
    cr_assert_eq(b.vt->buffer_alloc(b.ctx, 2 * 32 * sizeof(float), &ob, &err), MLC_OK);
    b.vt->upload(b.ctx, ib, 0, ids, sizeof ids);
    b.vt->get_rows(b.ctx, w, mlc_tensor_make(ib, 0, MLC_TYPE_I32, 2, 1, 1), mlc_tensor_make(ob, 0, MLC_TYPE_F32, 32, 2, 1));
    cr_expect_eq(b.vt->sync(b.ctx, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "get_rows: ids[1] = 99"), "%s", err.msg);
    /* the same, for ids a kernel may have written (the buffer's host copy is then stale):
     * the kernel finds it, sync reports it */
    mlc_buffer *mixed;
    cr_assert_eq(b.vt->buffer_alloc(b.ctx, 4 * sizeof(float), &mixed, &err), MLC_OK);
    b.vt->upload(b.ctx, mixed, 0, ids, sizeof ids);
    const mlc_tensor scratch = mlc_tensor_make(mixed, 8, MLC_TYPE_F32, 2, 1, 1);
    cr_expect_eq(b.vt->scale(b.ctx, scratch, 1.0f, scratch), MLC_OK);
    cr_expect_eq(b.vt->get_rows(b.ctx, w, mlc_tensor_make(mixed, 0, MLC_TYPE_I32, 2, 1, 1),
                                mlc_tensor_make(ob, 0, MLC_TYPE_F32, 32, 2, 1)), MLC_OK);
    cr_expect_eq(b.vt->sync(b.ctx, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "get_rows: ids[1] = 99"), "%s", err.msg);
    b.vt->buffer_free(b.ctx, mixed);
    /* the error was cleared: the next pass runs */
    ids[1] = 3;
    b.vt->upload(b.ctx, ib, 0, ids, sizeof ids);
    b.vt->get_rows(b.ctx, w, mlc_tensor_make(ib, 0, MLC_TYPE_I32, 2, 1, 1), mlc_tensor_make(ob, 0, MLC_TYPE_F32, 32, 2, 1));
    float got[64];
    b.vt->download(b.ctx, got, ob, 0, sizeof got);
    cr_expect_eq(b.vt->sync(b.ctx, &err), MLC_OK, "%s", err.msg);
    cr_expect(got[0] == 32.0f && got[63] == 127.0f, "%f %f", (double)got[0], (double)got[63]);
    b.vt->buffer_free(b.ctx, ib);
    b.vt->buffer_free(b.ctx, ob);
    b.vt->release_weights(b.ctx, &w);
    mlc_backend_close(&b);
}
