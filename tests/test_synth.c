/* test_synth.c: `mlc-bench model synth`: progress lines on a stderr that is not a terminal,
 * the gemma3 preset, and RoPE frequency factors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/gguf.h"
#include "mlc/quant.h"
#include "util.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* --progress-interval 0 prints a line after every tensor; the tiny shape has 39. The last line
 * reports the whole file, so the byte totals add up. -q silences them. */
Test(synth, progress_lines_unless_quiet, .timeout = 120)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s model synth --progress-interval 0 --preset tiny -o %s/p.gguf", tu_bin(), tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect_eq(count(out, "synth: "), 39, "%s", out);
    cr_expect(strstr(out, "synth: 100% (39 of 39 tensors"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s model synth --progress-interval 0 -q --preset tiny -o %s/p.gguf", tu_bin(), tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect_eq(count(out, "synth: "), 0, "%s", out);
    cr_expect(strstr(out, "wrote "), "%s", out);
    free(out);
}

/* --preset gemma3-tiny: the gemma3 tensors (per-head and post norms, no output.weight: the
 * output is tied to the embedding) and the keys the engine needs. */
Test(synth, gemma3_preset, .timeout = 120)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s model synth -q --preset gemma3-tiny -o %s/g.gguf && %s model info %s/g.gguf",
             tu_bin(), tu_tmpdir(), tu_bin(), tu_tmpdir());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "architecture:  gemma3"), "%s", out);
    cr_expect(strstr(out, "key_length             64"), "%s", out);
    cr_expect_eq(count(out, "attn_q_norm.weight"), 6, "%s", out);
    cr_expect_eq(count(out, "post_ffw_norm.weight"), 6, "%s", out);
    cr_expect_eq(count(out, " output.weight"), 0, "%s", out); /* not attn_output */
    free(out);
    snprintf(cmd, sizeof cmd, "%s model synth -q --arch mamba -o %s/x.gguf", tu_bin(), tu_tmpdir());
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "(llama, qwen2, gemma3)"), "%s", out);
    free(out);
}

/* --rope-freqs llama3: rope_freqs.weight [head_dim/2] F32 with Llama 3.1's factors for the
 * tiny shape (head dim 32, base 10000, factor 8, low/high 1/4, original context 8192): 1 for
 * wavelengths under 2048 positions, 8 over 8192, smoothed between, never decreasing. ones:
 * every factor 1. Malformed specs and other architectures are refused. */
Test(synth, rope_freqs, .timeout = 120)
{
    char cmd[4096], path[1024], *out;
    snprintf(path, sizeof path, "%s/rf.gguf", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s model synth -q --rope-freqs llama3 -o %s", tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    mlc_gguf *g = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_open(path, &g, &err), MLC_OK, "%s", err.msg);
    const mlc_gguf_tensor *t = mlc_gguf_find_tensor(g, "rope_freqs.weight");
    cr_assert(t && t->type == MLC_TYPE_F32 && t->n_dims == 1 && t->ne[0] == 16);
    const float *ff = t->data;
    int ones = 0, eights = 0, between = 0;
    for (int i = 0; i < 16; i++) {
        double w = 6.283185307179586 * pow(10000.0, 2.0 * i / 32);
        ones += ff[i] == 1.0f && w < 2048;
        eights += ff[i] == 8.0f && w > 8192;
        between += ff[i] > 1.0f && ff[i] < 8.0f && w >= 2048 && w <= 8192;
        cr_expect(i == 0 || ff[i] >= ff[i - 1], "factor %d: %g after %g", i, (double)ff[i], (double)ff[i - 1]);
    }
    cr_expect_eq(ones + eights + between, 16, "%d ones, %d eights, %d between", ones, eights, between);
    cr_expect(ones > 0 && eights > 0 && between > 0, "%d ones, %d eights, %d between", ones, eights, between);
    mlc_gguf_close(g);
    snprintf(cmd, sizeof cmd, "%s model synth -q --rope-freqs ones -o %s && %s model info %s", tu_bin(), path, tu_bin(), path);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "rope_freqs.weight"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s model synth -q --rope-freqs llama3:8,4,1,8192 -o %s", tu_bin(), path);
    cr_expect_eq(tu_run(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--rope-freqs: 'llama3:8,4,1,8192' is not"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s model synth -q --arch qwen2 --rope-freqs llama3 -o %s", tu_bin(), path);
    cr_expect_neq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "--rope-freqs: for arch llama only"), "%s", out);
    free(out);
}
