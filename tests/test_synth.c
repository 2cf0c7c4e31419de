/* test_synth.c: `mlc-bench model synth`'s progress lines on a stderr that is not a terminal. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
