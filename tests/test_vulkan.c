/* test_vulkan.c: the vulkan backend on whatever Vulkan device the machine has (lavapipe in
 * CI): the op conformance suite through both matmul kernels and under the Khronos validation
 * layer, the golden models against llama.cpp's numbers, the CLI on --backend vulkan, and the
 * one-line errors (no loader, no driver, unsupported types, device memory, bad indices,
 * views outside their buffers).
 *
 * Without the backend in this build, or without a device, the tests skip, except where
 * MLC_REQUIRE_VULKAN=1 (CI sets it: there a missing device fails). */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conformance/conformance.h"
#include "backend.h"
#include "mlc/model.h"
#include "mlc/perplexity.h"
#include "mlc/sampler.h"
#include "util.h"

#define VALIDATION_LAYER "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json"

/* Whether this build has the vulkan backend (the Makefile lists the built ones in
 * MLC_BUILT_BACKENDS): 0 + each built backend's HAS_BACKEND_<name>, 1 for vulkan only. */
#define HAS_BACKEND_vulkan 1
#define HAS_BACKEND_(name) +HAS_BACKEND_##name
#if (0 MLC_BUILT_BACKENDS(HAS_BACKEND_))
#define HAVE_VULKAN 1
#include "../kernels/vulkan/vk_device.h"
#endif

/* Opens vulkan device 0, or skips (fails under MLC_REQUIRE_VULKAN=1) when there is none. */
static mlc_backend open_vulkan(void)
{
    mlc_backend b;
    mlc_err err = {0};
    const char *req = getenv("MLC_REQUIRE_VULKAN");
    const bool required = req && !strcmp(req, "1");
    if (mlc_backend_open("vulkan", NULL, &b, &err) != MLC_OK) {
        if (required)
            cr_assert_fail("vulkan: %s (MLC_REQUIRE_VULKAN=1)", err.msg);
        cr_skip_test("vulkan: %s", err.msg);
    }
    return b;
}

/* Runs every case of the quick suite on b; each must pass (none declined). */
static void quick_suite(const mlc_backend *b, const char *what)
{
    mlc_conf_case *cases;
    const int n = mlc_conf_cases(MLC_CONF_QUICK, &cases);
    cr_assert_gt(n, 50);
    int passed = 0;
    for (int i = 0; i < n; i++) {
        mlc_conf_result r;
        mlc_conf_run(b, &cases[i], mlc_conf_case_seed(&cases[i], 0x6d6c632d636f6e66ull), &r);
        cr_expect_eq(r.verdict, MLC_CONF_PASS, "%s: %s: %s (NMSE %g, threshold %g) %s", what, r.desc,
                     mlc_conf_verdict_name(r.verdict), r.nmse, r.threshold, r.error);
        passed += r.verdict == MLC_CONF_PASS;
    }
    cr_log_info("%s: %d of %d quick cases passed", what, passed, n);
    free(cases);
}

/* ---- conformance ------------------------------------------------------------------------- */

Test(vulkan, quick_suite_passes, .timeout = 300)
{
    mlc_backend b = open_vulkan();
    quick_suite(&b, "vulkan");
    mlc_backend_close(&b);
}

/* On a CPU device the prefill matmul runs as matvec8; the shared-memory tile kernel that GPUs
 * use must be conformant too. */
Test(vulkan, quick_suite_passes_with_the_tile_kernel, .timeout = 300)
{
    setenv("MLC_VK_MATMUL", "tiled", 1);
    mlc_backend b = open_vulkan();
    quick_suite(&b, "vulkan, tiled matmul");
    mlc_backend_close(&b);
}

/* Weights larger than one binding reaches (lavapipe: 128 MiB, less than Gemma 3's embedding)
 * are split by rows into parts, each op running once per part; 16 KiB parts split the
 * suite's larger weights into several. */
Test(vulkan, quick_suite_passes_with_weights_in_parts, .timeout = 300)
{
    setenv("MLC_VK_PART_BYTES", "16384", 1);
    mlc_backend b = open_vulkan();
    quick_suite(&b, "vulkan, weights in 16 KiB parts");
    mlc_backend_close(&b);
}

/* GPUs with subgroup arithmetic sum decode's matvec rows with subgroupAdd (matvecsg), CPU
 * devices run the plain matvec (quick_suite_passes covers the device's own choice); the
 * other path is forced here, so conformance covers both on whatever device runs the tests
 * (MLC_VK_SUBGROUP=1 needs the operations: lavapipe has them). */
Test(vulkan, quick_suite_passes_with_the_other_matvec, .timeout = 300)
{
    mlc_backend b = open_vulkan();
    mlc_device_info di;
    b.vt->device_info(0, &di);
    mlc_backend_close(&b);
    const bool sg_default = strstr(di.description, "paths: subgroup matvec") != NULL;
    setenv("MLC_VK_SUBGROUP", sg_default ? "0" : "1", 1);
    b = open_vulkan();
    b.vt->device_info(0, &di);
    const bool sg = strstr(di.description, "paths: subgroup matvec") != NULL;
    if (!sg_default && !sg) {
        mlc_backend_close(&b);
        cr_skip_test("vulkan: the device has no subgroup arithmetic (%s)", di.description);
    }
    cr_assert_neq(sg, sg_default, "MLC_VK_SUBGROUP did not change the path: %s", di.description);
    quick_suite(&b, sg ? "vulkan, subgroup matvec" : "vulkan, plain matvec");
    mlc_backend_close(&b);
}

#ifdef HAVE_VULKAN
/* mlc_vk_upload's fill: bytes [done, done + bytes) of the host array arg */
static void fill_from(void *dst, size_t done, size_t bytes, void *arg)
{
    memcpy(dst, (const char *)arg + done, bytes);
}

/* out = x * sc through the ew shader (mode 2), x uploaded first, then downloaded. */
static void scale_on_device(mlc_vk *v, const mlc_vk_span *buf, const float *x, float sc, float *out, int n)
{
    mlc_err err = {0};
    cr_assert_eq(mlc_vk_upload(v, buf, 0, (size_t)n * 4, fill_from, (void *)(uintptr_t)x, &err), MLC_OK, "%s", err.msg);
    const mlc_vk_span *bind[MLC_VK_BINDINGS] = {buf, buf, buf};
    uint32_t s;
    memcpy(&s, &sc, 4);
    const uint32_t first = (uint32_t)(buf->offset / 4);
    const uint32_t pc[] = {first, first, first + (uint32_t)n, (uint32_t)n, (uint32_t)n, 2u, s};
    const uint32_t groups = ((uint32_t)n + 255) / 256; /* ew: 256 invocations a group */
    cr_assert_eq(mlc_vk_dispatch(v, "ew", bind, pc, 7, groups, 1, 1, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_vk_download(v, out, buf, (size_t)n * 4, (size_t)n * 4, &err), MLC_OK, "%s", err.msg);
}
#endif

/* A step of the same shape (same uploads, dispatches and download) submits the command
 * buffers recorded the first time; a different one records anew. Under the validation layer
 * where it is installed (a reused command buffer must be valid to submit again). */
Test(vulkan, command_buffers_are_recorded_once_per_shape_and_reused)
{
#ifndef HAVE_VULKAN
    mlc_backend probe = open_vulkan(); /* skips (or fails under MLC_REQUIRE_VULKAN=1) */
    mlc_backend_close(&probe);
    cr_skip_test("vulkan: not in this build");
#else
    mlc_backend probe = open_vulkan();
    mlc_backend_close(&probe);
    const bool layer = access(VALIDATION_LAYER, R_OK) == 0;
    mlc_vk *v = NULL;
    mlc_vk_span buf;
    mlc_err err = {0};
    cr_assert_eq(mlc_vk_open(0, layer ? MLC_VK_VALIDATE_ON : MLC_VK_VALIDATE_OFF, &v, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_vk_alloc(v, 2 * 300 * 4, &buf, &err), MLC_OK, "%s", err.msg);
    float x[300], y[300];
    for (int i = 0; i < 300; i++)
        x[i] = (float)i - 150.0f;
    uint64_t rec, reused;
    const float scales[] = {2.0f, 2.0f, 2.0f, -0.5f};
    for (int k = 0; k < 4; k++) {
        scale_on_device(v, &buf, x, scales[k], y, 300);
        for (int i = 0; i < 300; i++)
            cr_assert_eq(y[i], x[i] * scales[k], "step %d: y[%d] = %g, not %g", k, i, y[i], x[i] * scales[k]);
        mlc_vk_stats(v, &rec, &reused);
        /* two submissions per step (the op, then the download); the first and the last step
         * (another scale: other push constants) record them, the other two reuse them */
        const uint64_t want_rec = k == 0 ? 2 : k < 3 ? 2 : 3;
        cr_expect_eq(rec, want_rec, "step %d: %llu command buffers recorded", k, (unsigned long long)rec);
        cr_expect_eq(rec + reused, 2u * (uint64_t)(k + 1), "step %d: %llu recorded + %llu reused", k,
                     (unsigned long long)rec, (unsigned long long)reused);
    }
    cr_expect_eq(mlc_vk_flush(v, &err), MLC_OK, "%s", err.msg);
    mlc_vk_free(v, &buf);
    mlc_vk_close(v);
#endif
}

/* A finding of the validation layer fails the next flush, naming it: a dispatch that sets no
 * push constants (vkCmdPushConstants of size 0 is invalid) over no workgroups (so the
 * shader never reads them). */
Test(vulkan, a_validation_finding_fails_the_flush)
{
#ifndef HAVE_VULKAN
    mlc_backend probe = open_vulkan();
    mlc_backend_close(&probe);
    cr_skip_test("vulkan: not in this build");
#else
    mlc_backend probe = open_vulkan();
    mlc_backend_close(&probe);
    if (access(VALIDATION_LAYER, R_OK) != 0) {
        const char *req = getenv("MLC_REQUIRE_VULKAN");
        cr_assert(!(req && !strcmp(req, "1")), "%s missing (vulkan-validationlayers)", VALIDATION_LAYER);
        cr_skip_test("no validation layer (%s)", VALIDATION_LAYER);
    }
    mlc_vk *v = NULL;
    mlc_vk_span buf;
    mlc_err err = {0};
    cr_assert_eq(mlc_vk_open(0, MLC_VK_VALIDATE_ON, &v, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_vk_alloc(v, 1024, &buf, &err), MLC_OK, "%s", err.msg);
    const mlc_vk_span *bind[MLC_VK_BINDINGS] = {&buf, &buf, &buf};
    const uint32_t none[1] = {0};
    cr_assert_eq(mlc_vk_dispatch(v, "ew", bind, none, 0, 0, 1, 1, &err), MLC_OK, "%s", err.msg);
    cr_expect_eq(mlc_vk_flush(v, &err), MLC_ERR_BACKEND, "flush: %s", err.msg);
    cr_expect(strstr(err.msg, "vulkan: validation layer: error: ") != NULL, "%s", err.msg);
    err = (mlc_err){0};
    cr_expect_eq(mlc_vk_flush(v, &err), MLC_OK, "the finding is reported once: %s", err.msg);
    mlc_vk_free(v, &buf);
    mlc_vk_close(v);
#endif
}

/* Under the Khronos validation layer every finding is an error that sync() returns, so a
 * suite that passes has none. Required where the layer is installed (make deps installs it). */
Test(vulkan, quick_suite_clean_under_the_validation_layer, .timeout = 600)
{
    if (access(VALIDATION_LAYER, R_OK) != 0) {
        const char *req = getenv("MLC_REQUIRE_VULKAN");
        cr_assert(!(req && !strcmp(req, "1")), "%s missing (vulkan-validationlayers)", VALIDATION_LAYER);
        cr_skip_test("no validation layer (%s)", VALIDATION_LAYER);
    }
    setenv("MLC_VK_VALIDATE", "1", 1);
    mlc_backend b = open_vulkan();
    quick_suite(&b, "vulkan, validated");
    mlc_backend_close(&b);
}

/* ---- golden models (../shared/golden, rules of its README) ---------------------------- */

static cJSON *golden_json(void)
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

/* The golden tests spend their time in shaders, which sanitizers do not see; the sanitizer
 * build (make test SANITIZE=1) skips them, the plain build runs them. */
static void skip_under_sanitizers(void)
{
    if (tu_sanitized())
        cr_skip_test("golden models on vulkan: run by the plain build (sanitizers do not see shaders)");
}

static mlc_model *load_vulkan(const char *file)
{
    mlc_backend probe = open_vulkan(); /* skips without a device */
    mlc_backend_close(&probe);
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "golden/%s", file);
    tu_require_shared(path, sizeof path, rel);
    mlc_model_params p = {.backend = "vulkan"};
    mlc_model *m = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_model_load(path, &p, &m, &err), MLC_OK, "%s", err.msg);
    return m;
}

static float golden_logit(const cJSON *top5, int k, int *id)
{
    const cJSON *pair = cJSON_GetArrayItem(top5, k);
    *id = cJSON_GetArrayItem(pair, 0)->valueint;
    return (float)cJSON_GetArrayItem(pair, 1)->valuedouble;
}

/* One prompt, by golden/README.md's rules: the top-5 logits agree within tol until the first
 * step off by more than 0.01 (an 8-bit activation rounding that went the other way, see
 * test_model.c), within tol_after from then on. The ids must match llama.cpp's where the
 * reference's top-2 margin is at least 0.05, and, after such a rounding event, where it is at
 * least 2 * tol_after (a closer pair may swap within the logit tolerance: this backend's sums
 * run in another order than the CPU's, so its events come earlier). Each step continues with
 * llama.cpp's token, so one swap does not end the comparison. Returns the largest difference. */
static float greedy_prompt(mlc_context *c, const cJSON *g, float tol, float tol_after, const char *model)
{
    const cJSON *pid = cJSON_GetObjectItem(g, "prompt_ids"), *steps = cJSON_GetObjectItem(g, "steps");
    int n = cJSON_GetArraySize(pid), event = -1;
    int32_t toks[64], pos[64], slot[64] = {0};
    for (int i = 0; i < n; i++) {
        toks[i] = cJSON_GetArrayItem(pid, i)->valueint;
        pos[i] = i;
    }
    mlc_err err = {0};
    mlc_batch b = {n, toks, pos, slot, NULL};
    cr_assert_eq(mlc_context_decode(c, &b, &err), MLC_OK, "%s", err.msg);
    float worst = 0;
    for (int s = 0; s < cJSON_GetArraySize(steps); s++) {
        const cJSON *st = cJSON_GetArrayItem(steps, s), *top5 = cJSON_GetObjectItem(st, "top5");
        const float *lg = mlc_context_logits(c, 0);
        int32_t id = mlc_argmax(lg, mlc_context_n_vocab(c));
        int id0, id1;
        const float margin = golden_logit(top5, 0, &id0) - golden_logit(top5, 1, &id1);
        int32_t want = cJSON_GetObjectItem(st, "id")->valueint;
        float d[5];
        int tid[5];
        for (int k = 0; k < 5; k++) {
            const float ref = golden_logit(top5, k, &tid[k]);
            d[k] = fabsf(lg[tid[k]] - ref);
            if (event < 0 && d[k] > 0.01f)
                event = s;
        }
        if (margin >= (event < 0 ? 0.05f : 2 * tol_after))
            cr_expect_eq(id, want, "%s step %d: id %d, llama.cpp %d (margin %.3f, first rounding event: step %d)",
                         model, s, id, want, (double)margin, event);
        for (int k = 0; k < 5; k++) {
            worst = fmaxf(worst, d[k]);
            cr_expect_leq(d[k], event < 0 ? tol : tol_after,
                          "%s step %d token %d: logit off by %f (first rounding event: step %d)", model, s, tid[k],
                          (double)d[k], event);
        }
        if (margin < 0.05f)
            break;
        int32_t p = n + s;
        mlc_batch nb = {1, &want, &p, &slot[0], NULL};
        cr_assert_eq(mlc_context_decode(c, &nb, &err), MLC_OK, "%s", err.msg);
    }
    return worst;
}

static void golden_greedy(const char *file, float tol, float tol_after)
{
    skip_under_sanitizers();
    cJSON *j = golden_json();
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "models"), file);
    cr_assert_not_null(m, "%s not in golden.json", file);
    mlc_model *model = load_vulkan(file);
    mlc_context *c;
    mlc_err err = {0};
    mlc_context_params cp = {.n_ctx = 256, .n_slots = 1, .n_batch = 128};
    cr_assert_eq(mlc_context_new(model, &cp, &c, &err), MLC_OK, "%s", err.msg);
    const cJSON *greedy = cJSON_GetObjectItem(m, "greedy");
    float worst = 0;
    for (int i = 0; i < cJSON_GetArraySize(greedy); i++)
        worst = fmaxf(worst, greedy_prompt(c, cJSON_GetArrayItem(greedy, i), tol, tol_after, file));
    cr_log_info("vulkan golden %s: largest top-5 logit difference %.4f (tolerance %.2f, %.2f after a rounding event)",
                file, (double)worst, (double)tol, (double)tol_after);
    mlc_context_free(c);
    mlc_model_free(model);
    cJSON_Delete(j);
}

/* The README's tolerances, except after a rounding event on the 4-bit files: lavapipe's
 * sums differ from the CPU's in order (about 2.5e-7 of a matmul output), so an 8-bit
 * activation rounds the other way earlier and more often than on the CPU, and the events add
 * up: measured worst on lavapipe 0.0074 (f16), 0.119 (q8_0), 0.149 (q4_0), 0.226 (q4_k_m);
 * hence 0.25 after an event for the 4-bit files. */
Test(vulkan_golden, greedy_f16, .timeout = 300) { golden_greedy("tiny-llama-f16.gguf", 0.05f, 0.05f); }
Test(vulkan_golden, greedy_q8_0, .timeout = 300) { golden_greedy("tiny-llama-q8_0.gguf", 0.05f, 0.15f); }
Test(vulkan_golden, greedy_q4_0, .timeout = 300) { golden_greedy("tiny-llama-q4_0.gguf", 0.15f, 0.25f); }
Test(vulkan_golden, greedy_q4_k_m, .timeout = 300) { golden_greedy("tiny-llama-q4_k_m.gguf", 0.15f, 0.25f); }

/* Perplexity at ctx 128 within 0.5% of llama.cpp's over the whole text (measured 0.063% on
 * lavapipe). One file, the one mixing Q4_K and Q6_K: lavapipe needs about a minute for it
 * (the whole text through 6 prefills of 128 tokens with logits for every position), and the
 * other weight types' kernels are covered by the greedy tests and the conformance suite. */
static void golden_ppl(const char *file)
{
    skip_under_sanitizers();
    cJSON *j = golden_json();
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "models"), file);
    const double want = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "perplexity_ctx128"), "ppl")->valuedouble;
    const cJSON *ids = cJSON_GetObjectItem(j, "text_token_ids");
    const size_t n = (size_t)cJSON_GetArraySize(ids);
    int32_t *tok = malloc(n * sizeof *tok);
    for (size_t i = 0; i < n; i++)
        tok[i] = cJSON_GetArrayItem(ids, (int)i)->valueint;
    mlc_model *model = load_vulkan(file);
    mlc_context *c;
    mlc_err err = {0};
    mlc_context_params cp = {.n_ctx = 128, .n_slots = 1, .n_batch = 128};
    cr_assert_eq(mlc_context_new(model, &cp, &c, &err), MLC_OK, "%s", err.msg);
    mlc_ppl_params pp = {.n_ctx = 128, .add_bos = true, .bos = 1, .slot = 0};
    mlc_ppl_result r;
    cr_assert_eq(mlc_perplexity(c, tok, n, &pp, NULL, NULL, &r, &err), MLC_OK, "%s", err.msg);
    const double rel = fabs(r.ppl - want) / want;
    cr_log_info("vulkan golden %s: ppl %.4g, llama.cpp %.4g (%.3f%%), %d chunks", file, r.ppl, want, 100 * rel,
                r.n_chunks);
    cr_expect_lt(rel, 0.005, "%s: ppl %g vs llama.cpp %g", file, r.ppl, want);
    mlc_context_free(c);
    mlc_model_free(model);
    free(tok);
    cJSON_Delete(j);
}

Test(vulkan_golden, ppl_q4_k_m, .timeout = 600) { golden_ppl("tiny-llama-q4_k_m.gguf"); }

/* ---- the CLI ----------------------------------------------------------------------------- */

/* Devices list the Vulkan device with its driver, API version, memory heaps and subgroup. */
Test(vulkan_cli, devices_lists_the_device)
{
    mlc_backend b = open_vulkan();
    mlc_backend_close(&b);
    char cmd[1100], *out;
    snprintf(cmd, sizeof cmd, "%s devices 2>&1", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    const char *d = strstr(out, "  vulkan:0  ");
    cr_assert(d, "%s", out);
    cr_expect(strstr(d, ", driver ") && strstr(d, ", Vulkan 1.") && strstr(d, " heap") && strstr(d, ", subgroup "),
              "%s", out);
    free(out);
}

/* micro and conformance (op and model level) run on --backend vulkan --device 0. */
Test(vulkan_cli, micro_and_model_conformance, .timeout = 300)
{
    mlc_backend b = open_vulkan();
    mlc_backend_close(&b);
    char path[1024], cmd[2400], *out;
    tu_require_shared(path, sizeof path, "golden/tiny-llama-q8_0.gguf");
    snprintf(cmd, sizeof cmd, "%s micro -m %s --backend vulkan -p 16 -n 4 -r 1 --warmup 0 -o csv --no-store 2>&1",
             tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, ",\"vulkan\",") && strstr(out, ",16,0,") && strstr(out, ",0,4,"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s conformance --backend vulkan --device 0 --op scale --model synth --no-store 2>&1",
             tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "pass model ") && strstr(out, "greedy 32/32"), "%s", out);
    free(out);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* No loader, no driver: devices says why in one line; opening the backend fails cleanly. */
Test(vulkan_errors, no_loader_and_no_driver)
{
    mlc_backend b = open_vulkan(); /* the build has the backend */
    mlc_backend_close(&b);
    static const struct {
        const char *env, *says;
    } cases[] = {
        {"MLC_VK_LOADER=/nonexistent/libvulkan.so.1", "no Vulkan loader (/nonexistent/libvulkan.so.1: "},
        {"VK_ICD_FILENAMES=/nonexistent/icd.json", "vkCreateInstance failed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1200], *out;
        snprintf(cmd, sizeof cmd, "%s %s devices 2>&1", cases[i].env, tu_bin());
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        cr_expect(strstr(out, "vulkan  built, 0 devices\n") && strstr(out, cases[i].says), "%s: %s", cases[i].env, out);
        free(out);
        snprintf(cmd, sizeof cmd, "%s %s micro -m x.gguf --backend vulkan --no-store 2>&1", cases[i].env, tu_bin());
        cr_expect_neq(tu_run(cmd, &out), 0, "%s", out);
        free(out);
    }
}

/* A type the backend has no shader for is declined by supports() and refused by weights(). */
Test(vulkan_errors, unsupported_type)
{
    mlc_backend b = open_vulkan();
    const int64_t shape[4] = {256, 8, 0, 0};
    const uint32_t types[] = {MLC_TYPE_F16,  MLC_TYPE_Q4_1, MLC_TYPE_Q5_0, MLC_TYPE_Q5_1,   MLC_TYPE_Q2_K,
                              MLC_TYPE_Q3_K, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K, MLC_TYPE_Q6_K, MLC_TYPE_IQ4_NL,
                              MLC_TYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        cr_expect(b.vt->supports(b.ctx, MLC_OP_MATMUL, types[i], shape), "%s", mlc_tensor_type_name(types[i]));
        cr_expect(b.vt->supports(b.ctx, MLC_OP_GET_ROWS, types[i], shape), "%s", mlc_tensor_type_name(types[i]));
    }
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_MATMUL, 16 /* IQ2_XXS */, shape));
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_GET_ROWS, 16 /* IQ2_XXS */, shape));
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_MATMUL, MLC_TYPE_I32, shape));
    cr_expect_not(b.vt->supports(b.ctx, MLC_OP_ATTENTION, MLC_TYPE_F16, (int64_t[4]){512, 8, 2, 64}));
    static uint8_t block[66 * 8]; /* 8 rows of one IQ2_XXS block (256 values, 66 bytes) */
    mlc_tensor w;
    mlc_err err = {0};
    cr_expect_eq(b.vt->weights(b.ctx, block, 16, 256, 8, &w, &err), MLC_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "vulkan: weights of type ") && strstr(err.msg, ": not supported"), "%s", err.msg);
    mlc_backend_close(&b);
}

/* A buffer past the device's limits, and a context whose KV cache cannot fit: one line each. */
Test(vulkan_errors, out_of_device_memory)
{
    mlc_backend b = open_vulkan();
    mlc_buffer *buf = NULL;
    mlc_err err = {0};
    cr_expect_eq(b.vt->buffer_alloc(b.ctx, (size_t)1 << 50, &buf, &err), MLC_ERR_NOMEM);
    cr_expect_null(buf);
    cr_expect(strstr(err.msg, "vulkan: ") && !strchr(err.msg, '\n'), "%s", err.msg);
    mlc_backend_close(&b);
    mlc_model *m = load_vulkan("tiny-llama-q8_0.gguf");
    mlc_context *c = NULL;
    mlc_context_params cp = {.n_ctx = 1024, .n_slots = 1 << 16, .n_batch = 8};
    cr_expect_eq(mlc_context_new(m, &cp, &c, &err), MLC_ERR_NOMEM);
    cr_expect(strstr(err.msg, "context: out of memory for 65536 slots"), "%s", err.msg);
    mlc_model_free(m);
}

/* A bad index in a small buffer (whose uploads the backend keeps a copy of) is refused by
 * the op at once, naming it; in a large one the shader finds it (nothing written) and sync()
 * reports it. Errors stick until sync, and the backend works after it. */
Test(vulkan_errors, bad_index_view_outside_and_sticky)
{
    mlc_backend b = open_vulkan();
    const mlc_backend_vt *vt = b.vt;
    float table[4 * 8];
    for (int i = 0; i < 32; i++)
        table[i] = (float)i;
    mlc_tensor w;
    mlc_err err = {0};
    cr_assert_eq(vt->weights(b.ctx, table, MLC_TYPE_F32, 4, 8, &w, &err), MLC_OK, "%s", err.msg);
    mlc_buffer *small, *large, *ob;
    cr_assert_eq(vt->buffer_alloc(b.ctx, 8, &small, &err), MLC_OK);
    cr_assert_eq(vt->buffer_alloc(b.ctx, 1 << 20, &large, &err), MLC_OK);
    cr_assert_eq(vt->buffer_alloc(b.ctx, 2 * 4 * 4, &ob, &err), MLC_OK);
    const float sentinel[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    const int32_t ids[2] = {3, 8};
    vt->upload(b.ctx, ob, 0, sentinel, sizeof sentinel);
    vt->upload(b.ctx, small, 0, ids, sizeof ids);
    vt->upload(b.ctx, large, 0, ids, sizeof ids);
    const mlc_tensor out = mlc_tensor_make(ob, 0, MLC_TYPE_F32, 4, 2, 1);
    cr_expect_eq(vt->get_rows(b.ctx, w, mlc_tensor_make(small, 0, MLC_TYPE_I32, 2, 1, 1), out), MLC_ERR_RANGE);
    cr_expect_eq(vt->sync(b.ctx, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "vulkan: get_rows: ids[1] = 8 is outside 0..7"), "%s", err.msg);
    vt->get_rows(b.ctx, w, mlc_tensor_make(large, 0, MLC_TYPE_I32, 2, 1, 1), out);
    cr_expect_eq(vt->sync(b.ctx, &err), MLC_ERR_RANGE);
    cr_expect(strstr(err.msg, "vulkan: get_rows: an id outside the table"), "%s", err.msg);
    float got[8];
    cr_assert_eq(vt->download(b.ctx, got, ob, 0, sizeof got), MLC_OK);
    cr_expect_eq(got[4], -1.0f, "the bad id's row was written");
    cr_expect_eq(got[0], 12.0f, "row 3 starts with 12, got %f", (double)got[0]);

    /* a view outside its buffer: refused at once, sticky until sync */
    const mlc_tensor past = mlc_tensor_make(ob, 16, MLC_TYPE_F32, 4, 2, 1);
    cr_expect_eq(vt->scale(b.ctx, past, 2.0f, past), MLC_ERR_ARG);
    cr_expect_eq(vt->scale(b.ctx, out, 2.0f, out), MLC_ERR_ARG, "sticky");
    cr_expect_eq(vt->sync(b.ctx, &err), MLC_ERR_ARG);
    cr_expect(strstr(err.msg, "vulkan: scale: operand 1 (F32 [4, 2, 1, 1] at byte 16) is not inside"), "%s", err.msg);
    cr_expect_eq(vt->scale(b.ctx, out, 2.0f, out), MLC_OK, "cleared by sync");
    cr_expect_eq(vt->sync(b.ctx, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(vt->download(b.ctx, got, ob, 0, sizeof got), MLC_OK);
    cr_expect_eq(got[0], 24.0f);
    vt->release_weights(b.ctx, &w);
    vt->buffer_free(b.ctx, small);
    vt->buffer_free(b.ctx, large);
    vt->buffer_free(b.ctx, ob);
    mlc_backend_close(&b);
}
