/* test_ppl.c: `mlc-bench ppl` end to end: the golden files' perplexity at context 128
 * within 0.5% of llama.cpp's (golden.json), stored in the database; usage errors. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

Test(ppl, golden_files_match_llama_cpp, .timeout = 120)
{
    char gpath[1024], text[1024];
    tu_require_shared(gpath, sizeof gpath, "golden/golden.json");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    char *js = tu_read_file(gpath, NULL);
    cJSON *g = cJSON_Parse(js);
    free(js);
    cr_assert_not_null(g);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(g, "models")) {
        double want = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "perplexity_ctx128"), "ppl")->valuedouble;
        char model[1024], rel[256], cmd[4096], *out;
        snprintf(rel, sizeof rel, "golden/%s", m->string);
        tu_require_shared(model, sizeof model, rel);
        snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --db %s/ppl.db --quiet", tu_bin(), model,
                 text, tu_tmpdir());
        cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
        const char *p = strstr(out, "PPL = ");
        cr_assert_not_null(p, "%s", out);
        double got = atof(p + 6);
        cr_expect_lt(fabs(got - want) / want, 0.005, "%s: ppl %f, llama.cpp %f", m->string, got, want);
        cr_expect(strstr(out, "6 chunks of 128"), "%s", out);
        free(out);
    }
    cJSON_Delete(g);
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "python3 -c \"import sqlite3; c = sqlite3.connect('%s/ppl.db'); "
             "print(c.execute(\\\"select count(*) from perplexity where ctx = 128 and chunks = 6\\\").fetchone()[0], "
             "c.execute(\\\"select count(*) from runs where kind = 'ppl' and status = 'complete'\\\").fetchone()[0])\"",
             tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect_str_eq(out, "4 4\n");
    free(out);
}

Test(ppl, errors)
{
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s ppl -m x.gguf", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "--text are required"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s ppl -m x.gguf --text /nonexistent.txt", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "/nonexistent.txt: cannot open"), "%s", out);
    free(out);
    char model[1024], path[1024];
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    snprintf(path, sizeof path, "%s/short.txt", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "too short", 9), 0);
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 128 --db %s/e.db", tu_bin(), model, path, tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 1);
    cr_expect(strstr(out, "make no chunk of 128"), "%s", out);
    free(out);
}
