/* test_conformance.c: the conformance suite (conformance/) and `mlc-bench conformance`.
 *
 * The quick suite runs through the CLI on every built backend; its JSON is read back with
 * cJSON and its JUnit XML with a real XML parser (python3's xml.etree.ElementTree, through
 * popen). Fault injection uses backend tables built here only: the CPU backend wrapped so
 * that one op perturbs its output, writes a NaN, writes past its output, or is declined; the
 * runner must report each (and a model needing a declined op must be refused at load). */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conformance/conformance.h"
#include "../conformance/model_conformance.h"
#include "backend.h"
#include "mlc/backend_info.h"
#include "mlc/model.h"
#include "util.h"

/* ---- the CLI ---------------------------------------------------------------------------- */

/* Model-level runs through the CLI: every built backend in the plain build, the CPU alone in
 * the sanitizer build (the other backends' model runs take minutes under ASan, and
 * test_opencl.c and test_vulkan.c run their model checks in the plain build). */
#define SAN_CPU_ONLY (tu_sanitized() ? "--backend cpu" : "")

Test(conformance, quick_json_all_pass, .timeout = 300)
{
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --perf -o json 2>&1", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cJSON *root = cJSON_Parse(out);
    cr_assert(root, "not JSON: %.400s", out);
    const cJSON *devs = cJSON_GetObjectItem(root, "devices");
    cr_assert(cJSON_IsArray(devs) && cJSON_GetArraySize(devs) >= 1);
    const cJSON *d = cJSON_GetArrayItem(devs, 0);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d, "backend")), "cpu");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d, "seed")), "0x6d6c632d636f6e66");
    const int cases = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "cases"));
    cr_expect_gt(cases, 50);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "passed")), cases);
    const cJSON *res = cJSON_GetObjectItem(d, "results");
    cr_assert_eq(cJSON_GetArraySize(res), cases);
    bool ops[MLC_OP_COUNT] = {0};
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        mlc_op op;
        cr_assert(mlc_op_from_name(cJSON_GetStringValue(cJSON_GetObjectItem(r, "op")), &op));
        ops[op] = true;
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "verdict")), "pass");
        const double nmse = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "nmse"));
        cr_expect(nmse <= cJSON_GetNumberValue(cJSON_GetObjectItem(r, "threshold")));
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(r, "seed")));
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(r, "ms")), "--perf gives times");
    }
    for (int op = 0; op < MLC_OP_COUNT; op++)
        cr_expect(ops[op], "the quick suite has no %s case", mlc_op_name((mlc_op)op));
    cJSON_Delete(root);
    free(out);
}

/* Stored: a run of kind 'conformance', one row per case with its seed and threshold, and the
 * per-device counts that compare gates on. */
Test(conformance, stored_in_the_database, .timeout = 300)
{
    char db[1024], cmd[1400], *out;
    snprintf(db, sizeof db, "%s/conf.db", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s conformance --backend cpu --quick --op scale,add --db %s --label L 2>&1", tu_bin(), db);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "stored as run 1 in "), "%s", out);
    free(out);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT (SELECT kind || '/' || status || '/' || label FROM runs WHERE id = 1),"
                                       " (SELECT count(*) FROM conformance WHERE run_id = 1 AND status = 'pass'"
                                       "   AND op IN ('scale', 'add') AND seed LIKE '0x%' AND threshold > 0),"
                                       " (SELECT count(*) FROM conformance WHERE run_id = 1),"
                                       " (SELECT value FROM metrics WHERE run_id = 1 AND name = 'cpu:0/conf_passed'),"
                                       " (SELECT value FROM metrics WHERE run_id = 1 AND name = 'cpu:0/conf_failed')",
                                    -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "conformance/complete/L");
    const int pass = sqlite3_column_int(st, 1), rows = sqlite3_column_int(st, 2);
    cr_expect_gt(rows, 2);
    cr_expect_eq(pass, rows, "every row a passed scale/add case with seed and threshold");
    cr_expect_eq(sqlite3_column_int(st, 3), rows);
    cr_expect_eq(sqlite3_column_int(st, 4), 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* JUnit: parsed by python3's XML parser; counts match the testcases. */
Test(conformance, junit_well_formed, .timeout = 300)
{
    const char *dir = tu_tmpdir();
    char path[1100], cmd[3000], *out;
    snprintf(path, sizeof path, "%s/conf.xml", dir);
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --op matmul,attention,add -o junit > %s", tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys, xml.etree.ElementTree as ET\n"
             "r = ET.parse(sys.argv[1]).getroot()\n"
             "cases = r.findall('./testsuite/testcase')\n"
             "assert r.tag == 'testsuites' and int(r.get('tests')) == len(cases) > 0, r.attrib\n"
             "assert not r.findall('.//failure')\n"
             "print('ok', len(cases), sorted({c.get('classname') for c in cases}))\" %s 2>&1",
             path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char line[512] = "";
    const size_t got = fread(line, 1, sizeof line - 1, p);
    line[got] = 0;
    cr_assert_eq(pclose(p), 0, "the XML parser rejected the JUnit file: %s", line);
    cr_expect(strstr(line, "ok ") && strstr(line, "conformance.cpu.matmul") &&
              strstr(line, "conformance.cpu.attention"), "%s", line);
}

Test(conformance, usage_errors)
{
    static const char *bad[][2] = {
        {"--op nosuchop", "unknown op 'nosuchop'"},
        {"--type q3_x", "unknown type 'q3_x'"},
        {"--backend tpu", "unknown backend 'tpu'"},
        {"-o xml", "unknown format 'xml'"},
        {"--seed", "needs a value"},
        {"--device 7 --backend cpu", "no device 7"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1200], *out;
        snprintf(cmd, sizeof cmd, "%s conformance --no-store %s 2>&1", tu_bin(), bad[i][0]);
        cr_expect_eq(tu_run(cmd, &out), 2, "%s: %s", bad[i][0], out);
        cr_expect(strstr(out, bad[i][1]), "%s: %s", bad[i][0], out);
        free(out);
    }
}

/* A backend in this build with no device (cuda or hip on a machine without a GPU) is named
 * with the backend's own reason and exit status 2, never "no built backend has device -1". */
Test(conformance, built_backend_without_device)
{
    int tried = 0;
    for (int bi = 0; bi < mlc_backend_count(); bi++) {
        if (!mlc_backend_built(bi) || mlc_backend_device_count(bi) > 0)
            continue;
        char cmd[1200], want[64], *out;
        snprintf(cmd, sizeof cmd, "%s conformance --no-store --backend %s 2>&1", tu_bin(), mlc_backend_name(bi));
        snprintf(want, sizeof want, "backend '%s' has no device", mlc_backend_name(bi));
        cr_expect_eq(tu_run(cmd, &out), 2, "%s: %s", cmd, out);
        cr_expect(strstr(out, want), "%s: %s", cmd, out);
        free(out);
        tried++;
    }
    if (!tried)
        cr_skip_test("every backend in this build has a device");
}

/* The same base seed reproduces a case's seed and result in a filtered run. */
Test(conformance, seed_reproduces)
{
    mlc_conf_case *cases;
    const int n = mlc_conf_cases(MLC_CONF_QUICK, &cases);
    cr_assert_gt(n, 0);
    const mlc_conf_case *c = &cases[0];
    cr_expect_eq(mlc_conf_case_seed(c, 42), mlc_conf_case_seed(c, 42));
    cr_expect_neq(mlc_conf_case_seed(c, 42), mlc_conf_case_seed(c, 43));
    mlc_backend b;
    cr_assert_eq(mlc_backend_open("cpu", &(mlc_backend_params){.n_threads = 1}, &b, NULL), MLC_OK);
    mlc_conf_result r1, r2;
    mlc_conf_run(&b, c, mlc_conf_case_seed(c, 42), &r1);
    mlc_conf_run(&b, c, mlc_conf_case_seed(c, 42), &r2);
    cr_expect_eq(r1.verdict, MLC_CONF_PASS, "%s: %s", r1.desc, r1.error);
    cr_expect_eq(r1.nmse, r2.nmse);
    mlc_backend_close(&b);
    free(cases);
}

/* ---- fault injection --------------------------------------------------------------------- */

/* Reads a whole F32 view, lets fn change it, writes it back (through the interface). */
static mlc_status rewrite(void *ctx, mlc_tensor t, void (*fn)(float *v, int64_t n))
{
    const int64_t n = mlc_tensor_nelem(&t);
    float *h = malloc((size_t)n * sizeof *h);
    if (!h)
        return MLC_ERR_NOMEM;
    mlc_status s = mlc_backend_cpu.download(ctx, h, t.buf, t.offset, (size_t)n * sizeof *h);
    if (!s && !(s = mlc_backend_cpu.sync(ctx, NULL))) {
        fn(h, n);
        s = mlc_backend_cpu.upload(ctx, t.buf, t.offset, h, (size_t)n * sizeof *h);
    }
    free(h);
    return s;
}

static void perturb(float *v, int64_t n)
{
    v[n / 2] = v[n / 2] * 1.5f + 1.0f; /* one wrong element: NMSE far above any threshold */
}

static void one_nan(float *v, int64_t n)
{
    v[n - 1] = NAN;
}

static mlc_status perturbed_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    mlc_status s = mlc_backend_cpu.matmul(ctx, w, x, y);
    return s ? s : rewrite(ctx, y, perturb);
}

static mlc_status nan_swiglu(void *ctx, mlc_tensor g, mlc_tensor u, mlc_tensor out)
{
    mlc_status s = mlc_backend_cpu.swiglu(ctx, g, u, out);
    return s ? s : rewrite(ctx, out, one_nan);
}

/* Writes one float just past the output (inside the buffer: the guard, not the bounds
 * check, must catch it). */
static mlc_status oob_add(void *ctx, mlc_tensor a, mlc_tensor b, mlc_tensor out)
{
    mlc_status s = mlc_backend_cpu.add(ctx, a, b, out);
    const float junk = 1.0f;
    return s ? s : mlc_backend_cpu.upload(ctx, out.buf, out.offset + mlc_tensor_nbytes(&out), &junk, 4);
}

static bool no_geglu_rope(void *ctx, mlc_op op, uint32_t type, const int64_t shape[4])
{
    return op != MLC_OP_GEGLU && op != MLC_OP_ROPE && mlc_backend_cpu.supports(ctx, op, type, shape);
}

/* Runs every quick case of op on the wrapped table and returns how many got verdict v; the
 * first such result is copied to *first. */
static int run_op(const mlc_backend_vt *vt, mlc_op op, mlc_conf_verdict v, mlc_conf_result *first)
{
    mlc_backend b;
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open_vt(vt, &(mlc_backend_params){.n_threads = 2}, &b, &err), MLC_OK, "%s", err.msg);
    mlc_conf_case *cases;
    const int n = mlc_conf_cases(MLC_CONF_QUICK, &cases);
    int hits = 0;
    for (int i = 0; i < n; i++) {
        if (cases[i].op != op)
            continue;
        mlc_conf_result r;
        mlc_conf_run(&b, &cases[i], mlc_conf_case_seed(&cases[i], 7), &r);
        if (r.verdict == v && hits++ == 0)
            *first = r;
    }
    free(cases);
    mlc_backend_close(&b);
    return hits;
}

Test(conformance, perturbed_op_fails_naming_it)
{
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.matmul = perturbed_matmul;
    mlc_conf_result r;
    const int fails = run_op(&vt, MLC_OP_MATMUL, MLC_CONF_FAIL, &r);
    cr_assert_gt(fails, 0);
    cr_expect_eq(run_op(&vt, MLC_OP_MATMUL, MLC_CONF_PASS, &(mlc_conf_result){0}), 0,
                 "a perturbed matmul passed");
    cr_expect(strstr(r.desc, "matmul") && strstr(r.desc, "n_in=") && strstr(r.desc, "n_out="), "%s", r.desc);
    cr_expect(strstr(r.error, "NMSE") && strstr(r.error, "> threshold"), "%s", r.error);
    cr_expect(r.nmse > r.threshold && r.seed != 0, "%g %g", r.nmse, r.threshold);
    char d[160];
    mlc_conf_case_desc(&r.c, d, sizeof d);
    cr_expect_str_eq(d, r.desc);
    cr_expect_neq(r.c.type, (uint32_t)-1);
}

Test(conformance, nan_output_fails)
{
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.swiglu = nan_swiglu;
    mlc_conf_result r;
    cr_assert_gt(run_op(&vt, MLC_OP_SWIGLU, MLC_CONF_FAIL, &r), 0);
    cr_expect_eq(run_op(&vt, MLC_OP_SWIGLU, MLC_CONF_PASS, &(mlc_conf_result){0}), 0);
    cr_expect(strstr(r.error, "non-finite output"), "%s", r.error);
}

Test(conformance, out_of_bounds_write_caught_by_guards)
{
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.add = oob_add;
    mlc_conf_result r;
    cr_assert_gt(run_op(&vt, MLC_OP_ADD, MLC_CONF_FAIL, &r), 0);
    cr_expect_eq(run_op(&vt, MLC_OP_ADD, MLC_CONF_PASS, &(mlc_conf_result){0}), 0);
    cr_expect(strstr(r.error, "write out of bounds"), "%s", r.error);
}

Test(conformance, declined_op_unsupported_and_model_refused, .timeout = 120)
{
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.supports = no_geglu_rope;
    mlc_conf_result r;
    const int unsup = run_op(&vt, MLC_OP_GEGLU, MLC_CONF_UNSUPPORTED, &r);
    cr_expect_gt(unsup, 0);
    cr_expect_eq(run_op(&vt, MLC_OP_GEGLU, MLC_CONF_PASS, &(mlc_conf_result){0}), 0,
                 "a declined op was reported as passed");
    cr_expect(isnan(r.nmse));
    /* a model whose forward pass needs rope is refused at load, naming op, type and shape */
    const char *dir = tu_tmpdir();
    char model[1100], cmd[2400], *out;
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny --type q8_0 -o %s 2>&1", tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    mlc_model *m = NULL;
    mlc_err err = {0};
    const mlc_model_params p = {.n_threads = 1, .backend_vt = &vt};
    cr_assert_eq(mlc_model_load(model, &p, &m, &err), MLC_ERR_UNSUPPORTED, "%s", err.msg);
    cr_expect_null(m);
    cr_expect(strstr(err.msg, "does not support op rope with type F32, shape [") &&
              strstr(err.msg, "backend 'cpu'"), "%s", err.msg);
    /* the plain CPU table loads it */
    const mlc_model_params q = {.n_threads = 1, .backend_vt = &mlc_backend_cpu};
    cr_assert_eq(mlc_model_load(model, &q, &m, &err), MLC_OK, "%s", err.msg);
    mlc_model_free(m);
}

/* ---- model level ------------------------------------------------------------------------- */

static void synth_tiny(char *path, size_t cap)
{
    char cmd[2400], *out;
    snprintf(path, cap, "%s/tiny-f16.gguf", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny --type f16 -o %s 2>&1", tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
}

/* The CPU's best kernels pass against the scalar reference; a backend whose matmul is wrong
 * fails with the logits NMSE named. */
Test(conformance, model_level, .timeout = 300)
{
    char model[1100];
    synth_tiny(model, sizeof model);
    static const char text[] = "The quick brown fox jumps over the lazy dog. It was the best of times, "
                               "it was the worst of times, it was the age of wisdom.";
    mlc_conf_model_params p = {.path = model, .ref_threads = 2, .text = text, .text_len = sizeof text - 1,
                               .n_tokens = 48, .n_greedy = 16, .target = {.n_threads = 2}};
    mlc_conf_model_result r;
    mlc_err err = {0};
    cr_assert_eq(mlc_conf_model_run(&p, &r, &err), MLC_OK, "%s", err.msg);
    cr_expect(r.pass, "%s", r.error);
    cr_expect_gt(r.n_positions, 10);
    cr_expect(r.logits_nmse_max < 1e-5 && r.top1_agree > 0.95 && r.ppl_rel < 1e-3, "%g %g %g",
              r.logits_nmse_max, r.top1_agree, r.ppl_rel);
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.matmul = perturbed_matmul;
    p.target.backend_vt = &vt;
    cr_assert_eq(mlc_conf_model_run(&p, &r, &err), MLC_OK, "%s", err.msg);
    cr_expect(!r.pass);
    cr_expect(strstr(r.error, "logits NMSE") && strstr(r.error, "> threshold"), "%s", r.error);
    /* through the CLI: the model section of the JSON */
    char cmd[2400], *out;
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --op scale --model %s %s -o json 2>/dev/null", tu_bin(),
             model, SAN_CPU_ONLY);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cJSON *root = cJSON_Parse(out);
    cr_assert(root, "%s", out);
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "devices"), 0), "model");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m, "verdict")), "pass");
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(m, "ppl_rel_diff")));
    cJSON_Delete(root);
    free(out);
}

/* ---- HTML ----------------------------------------------------------------------------------- */


/* The HTML report: every element closed (python3's HTML parser, tracking the tag stack),
 * self-contained, with the matrix and the model section; and it renders in headless
 * Chromium (a screenshot that is not blank). */
Test(conformance, html_report_renders, .timeout = 300)
{
    const char *dir = tu_tmpdir();
    char html[1100], shot[1100], cmd[4000], *out;
    snprintf(html, sizeof html, "%s/conformance.html", dir);
    snprintf(shot, sizeof shot, "%s/conformance.png", dir);
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --perf --model synth -o html > %s 2>/dev/null", tu_bin(), html);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys\nfrom html.parser import HTMLParser\n"
             "void = {'meta', 'br'}\n"
             "class P(HTMLParser):\n"
             "    stack = []; seen = set()\n"
             "    def handle_starttag(s, t, a):\n"
             "        s.seen.add(t)\n"
             "        if t not in void: s.stack.append(t)\n"
             "    def handle_endtag(s, t):\n"
             "        assert s.stack and s.stack.pop() == t, (t, s.stack)\n"
             "p = P(); p.feed(open(sys.argv[1]).read()); p.close()\n"
             "assert not p.stack, p.stack\n"
             "assert 'script' not in p.seen and 'link' not in p.seen\n"
             "print('ok', sorted(p.seen))\" %s 2>&1",
             html);
    cr_assert_eq(tu_run(cmd, &out), 0, "HTML not well formed: %s", out);
    free(out);
    char *h = tu_read_file(html, NULL);
    cr_assert(h);
    cr_expect(strstr(h, "<th>matmul</th>") && strstr(h, "<th>Q4_K</th>") && strstr(h, "class=\"pass\""), "matrix missing");
    cr_expect(strstr(h, "Model against the reference CPU") && strstr(h, "Performance"));
    cr_expect(!strstr(h, "class=\"fail\""));
    free(h);
    if (tu_run("command -v chromium >/dev/null 2>&1", NULL) != 0) {
        const char *req = getenv("MLC_REQUIRE_CHROMIUM");
        if (req && !strcmp(req, "1"))
            cr_assert_fail("chromium is not installed and MLC_REQUIRE_CHROMIUM=1");
        cr_skip_test("chromium is not installed (Debian package chromium)");
    }
    snprintf(cmd, sizeof cmd,
             "cd %s && HOME=%s timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
             "--disable-dev-shm-usage --user-data-dir=%s/chromium-profile --screenshot=%s "
             "--window-size=1200,1600 file://%s 2>&1",
             dir, dir, dir, shot, html);
    const int rc = tu_run(cmd, &out);
    FILE *png = fopen(shot, "rb");
    cr_assert(png, "no screenshot (exit %d): %s", rc, out ? out : "");
    fclose(png);
    free(out);
    const long dark = tu_png_nonwhite_pixels(shot);
    cr_expect_gt(dark, 20000, "screenshot looks blank: %ld non-white pixels", dark);
}

/* Head-size limits are the backend's to state: the CPU keeps one head on the stack and
 * declines heads over 1024 values in supports(), so the model load names the op and shape
 * (the loader itself has no such limit any more). */
Test(conformance, cpu_declines_heads_over_1024, .timeout = 120)
{
    char model[1100], cmd[2400], *out;
    snprintf(model, sizeof model, "%s/hd2048.gguf", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s model synth --dim 2048 --layers 1 --heads 1 --kv-heads 1 --ffn 64 --vocab-size 300 --ctx 64 "
             "--type q8_0 -o %s 2>&1", tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    mlc_model *m = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_model_load(model, &(mlc_model_params){.n_threads = 1}, &m, &err), MLC_ERR_UNSUPPORTED,
                 "%s", err.msg);
    cr_expect(strstr(err.msg, "backend 'cpu' does not support op rope with type F32, shape [2048, 1, 2048]"),
              "%s", err.msg);
}

/* ---- RoPE with Llama 3.1 frequency factors ------------------------------------------------ */

/* Every built backend's device runs rope with frequency factors (the " ff=llama3" cases) and
 * passes; measured NMSE 6e-8 at most in the quick sweep (1.9e-6 in the full one), as without. */
Test(conformance, rope_factors_every_backend, .timeout = 300)
{
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --op rope -o json 2>/dev/null", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cJSON *root = cJSON_Parse(out);
    cr_assert(root, "not JSON: %.400s", out);
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(root, "devices")) {
        const char *be = cJSON_GetStringValue(cJSON_GetObjectItem(d, "backend"));
        int with_ff = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(d, "results")) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(r, "case"));
            with_ff += c && strstr(c, " ff=llama3") != NULL;
            cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "verdict")), "pass", "%s: %s", be, c);
        }
        cr_log_info("%s: %d rope cases with frequency factors", be, with_ff);
        cr_expect_eq(with_ff, 8, "%s: %d rope cases with frequency factors", be, with_ff);
    }
    cJSON_Delete(root);
    free(out);
}

/* Model level on every built backend (SAN_CPU_ONLY): a llama with strong frequency factors
 * (factor 64 over an original context of 16, so that they matter within the text) against the
 * reference CPU. */
Test(conformance, model_level_rope_factors, .timeout = 300)
{
    char model[1100], cmd[2400], *out;
    snprintf(model, sizeof model, "%s/tiny-rf.gguf", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s model synth -q --preset tiny --layers 2 --type f16 --rope-freqs llama3:64,1,4,16 -o %s 2>&1",
             tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s conformance --no-store --quick --op scale --model %s %s -o json 2>/dev/null", tu_bin(),
             model, SAN_CPU_ONLY);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cJSON *root = cJSON_Parse(out);
    cr_assert(root, "%s", out);
    const cJSON *d;
    int n = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(root, "devices")) {
        const cJSON *m = cJSON_GetObjectItem(d, "model");
        const char *be = cJSON_GetStringValue(cJSON_GetObjectItem(d, "backend"));
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m, "verdict")), "pass", "%s", be);
        n++;
    }
    cr_expect_geq(n, 1);
    cJSON_Delete(root);
    free(out);
}
