/* test_bench_model.c: `mlc-bench model info` end to end, on the shared golden files and on
 * broken files (the binary under test is $MLC_BIN). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int run_info(const char *file, const char *extra, char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s model info '%s' %s", tu_bin(), file, extra);
    return tu_run(cmd, out);
}

Test(model_info, golden_q4_k_m_text)
{
    char path[1024], *out;
    tu_require_shared(path, sizeof path, "golden/tiny-llama-q4_k_m.gguf");
    cr_assert_eq(run_info(path, "", &out), 0, "%s", out);
    cr_expect(strstr(out, "architecture:  llama"), "%s", out);
    cr_expect(strstr(out, "context_length         1024"), "%s", out);
    cr_expect(strstr(out, "embedding_length       256"), "%s", out);
    cr_expect(strstr(out, "head_count_kv          2"), "%s", out);
    cr_expect(strstr(out, "vocabulary 32000"), "%s", out);
    cr_expect(strstr(out, "tensors:       39 (9 F32, 25 Q4_K, 5 Q6_K)"), "%s", out);
    cr_expect(strstr(out, "output.weight                    Q6_K   256 x 32000"), "%s", out);
    cr_expect_null(strstr(out, "unsupported"), "%s", out);
    free(out);
}

Test(model_info, golden_files_json)
{
    static const struct {
        const char *file;
        const char *type;
        int n;
    } files[] = {
        {"golden/tiny-llama-f16.gguf", "F16", 30},
        {"golden/tiny-llama-q8_0.gguf", "Q8_0", 30},
        {"golden/tiny-llama-q4_0.gguf", "Q4_0", 29},
        {"golden/tiny-llama-q4_k_m.gguf", "Q4_K", 25},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024], *out;
        tu_require_shared(path, sizeof path, files[i].file);
        cr_assert_eq(run_info(path, "--json", &out), 0, "%s", out);
        cJSON *j = cJSON_Parse(out);
        cr_assert_not_null(j, "not JSON: %s", out);
        cr_expect_str_eq(cJSON_GetObjectItem(j, "architecture")->valuestring, "llama");
        cr_expect_eq(cJSON_GetObjectItem(j, "n_tensors")->valueint, 39);
        cJSON *hp = cJSON_GetObjectItem(j, "hparams");
        cr_expect_eq(cJSON_GetObjectItem(hp, "context_length")->valueint, 1024);
        cr_expect_eq(cJSON_GetObjectItem(hp, "block_count")->valueint, 4);
        cJSON *tok = cJSON_GetObjectItem(j, "tokenizer");
        cr_expect_eq(cJSON_GetObjectItem(tok, "vocab_size")->valueint, 32000);
        cr_expect_str_eq(cJSON_GetObjectItem(tok, "model")->valuestring, "llama");
        cJSON *counts = cJSON_GetObjectItem(j, "type_counts");
        cr_expect_eq(cJSON_GetObjectItem(counts, "F32")->valueint, 9);
        cr_expect_eq(cJSON_GetObjectItem(counts, files[i].type)->valueint, files[i].n, "%s",
                     files[i].file);
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")), 39);
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "unsupported")), 0);
        /* 19.4 M parameters: 2 x 256 x 32000 + 4 x (2 x 256 x 256 + 2 x 256 x 64
         * + 3 x 256 x 768 + 2 x 256) + 256. */
        cr_expect_eq(cJSON_GetObjectItem(j, "n_params")->valuedouble, 19400960.0);
        cJSON_Delete(j);
        free(out);
    }
}

Test(model_info, vocab_only_file)
{
    char path[1024], *out;
    tu_require_shared(path, sizeof path, "vocab/ggml-vocab-gpt-2.gguf");
    cr_assert_eq(run_info(path, "", &out), 0, "%s", out);
    cr_expect(strstr(out, "tokenizer:     gpt2, pre gpt-2, vocabulary 50257"), "%s", out);
    cr_expect(strstr(out, "tensors:       0\n"), "%s", out);
    free(out);
}

Test(model_info, bad_files_and_usage)
{
    char path[1024], *out;
    snprintf(path, sizeof path, "%s/bad.gguf", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, "GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 16), 0);
    cr_expect_eq(run_info(path, "", &out), 1);
    /* One line naming the file and the offset. */
    cr_expect(strstr(out, "bad.gguf: offset 16: header: unexpected end of file"), "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "%s", out);
    free(out);
    cr_expect_eq(run_info("/nonexistent.gguf", "", &out), 1);
    cr_expect(strstr(out, "/nonexistent.gguf: No such file"), "%s", out);
    free(out);
    cr_expect_eq(run_info(path, "--bogus", &out), 2);
    free(out);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s frobnicate", tu_bin());
    cr_expect_eq(tu_run(cmd, &out), 2);
    cr_expect(strstr(out, "unknown command 'frobnicate'"), "%s", out);
    free(out);
}

Test(model_info, unsupported_type_named)
{
    /* A hand-made file with one IQ2_XXS tensor (type 16, 256 values = 66 bytes). */
    unsigned char f[512] = "GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    size_t n = 24;
    const char name[] = "blk.0.ffn_up.weight";
    unsigned long long len = sizeof name - 1;
    memcpy(f + n, &len, 8), n += 8;
    memcpy(f + n, name, len), n += len;
    unsigned dims = 1, type = 16;
    unsigned long long ne = 256, off = 0;
    memcpy(f + n, &dims, 4), n += 4;
    memcpy(f + n, &ne, 8), n += 8;
    memcpy(f + n, &type, 4), n += 4;
    memcpy(f + n, &off, 8), n += 8;
    n = (n + 31) / 32 * 32 + 66;
    char path[1024], *out;
    snprintf(path, sizeof path, "%s/iq2xxs.gguf", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, f, n), 0);
    cr_assert_eq(run_info(path, "", &out), 0, "%s", out);
    cr_expect(strstr(out, "unsupported:   tensor 'blk.0.ffn_up.weight' has type IQ2_XXS"), "%s", out);
    free(out);
    cr_assert_eq(run_info(path, "--json", &out), 0, "%s", out);
    cr_expect(strstr(out, "\"tensor\":\t\"blk.0.ffn_up.weight\""), "%s", out);
    free(out);
}
