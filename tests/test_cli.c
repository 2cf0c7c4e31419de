/* test_cli.c: every numeric option of every command refuses values that wrap, mean nothing or
 * are out of range: exit 2 and one line that names the option, within a hang guard; and an
 * unknown option is called unknown wherever it stands. (The sanitizer build runs the same
 * commands, so a report from any of them fails `make test SANITIZE=1`.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A numeric option: the command (with any arguments needed to reach option parsing), the
 * option, and which probe values are valid for it (those are skipped: the command would go
 * on to do its work). */
typedef struct numopt {
    const char *cmd, *opt;
    const char *valid; /* space-separated probe values the option accepts */
    bool list;         /* takes a comma list */
} numopt;

static const numopt opts[] = {
    {"run", "-t", "", false}, {"run", "--ctx", "", false}, {"run", "--parallel", "", false}, {"run", "--timeout", "", false},
    {"run", "--input-len", "", false}, {"run", "--output-len", "", false}, {"run", "--range-ratio", "0", false},
    {"run", "--num-prompts", "", false}, {"run", "--duration", "", false},
    {"run", "--seed", "0 2147483648 9223372036854775808", false}, {"run", "--temperature", "0", false},
    {"run", "--concurrency", "", true}, {"run", "--rate", "inf", true}, {"run", "--burstiness", "", false},
    {"run", "--warmup", "0", false}, {"run", "--time-scale", "", false}, {"run", "--sweep", "", false},
    {"run", "--progress-interval", "0", false},
    {"generate", "-n", "0", false}, {"generate", "-t", "", false}, {"generate", "--ctx", "", false}, {"generate", "--temp", "0", false},
    {"generate", "--top-k", "0", false}, {"generate", "--top-p", "0", false}, {"generate", "--min-p", "0", false},
    {"generate", "--seed", "0 2147483648 9223372036854775808", false},
    {"micro", "-p", "0", true}, {"micro", "-n", "0", true}, {"micro", "-t", "", true}, {"micro", "-r", "", false},
    {"micro", "--warmup", "0", false}, {"micro", "-b", "", false},
    {"ppl", "--kld-top", "", false}, {"ppl", "--timeout", "", false}, {"ppl", "--ctx", "", false}, {"ppl", "--chunks", "", false},
    {"ppl", "--batch", "", false}, {"ppl", "-t", "", false},
    {"serve", "--port", "0", false}, {"serve", "-t", "", false}, {"serve", "--ctx", "", false}, {"serve", "--parallel", "", false},
    {"serve", "--max-queue", "0", false}, {"serve", "--max-body", "", false}, {"serve", "--ttft-ms", "0", false},
    {"serve", "--itl-ms", "0", false},
    {"model synth", "--dim", "", false}, {"model synth", "--layers", "", false}, {"model synth", "--heads", "", false},
    {"model synth", "--kv-heads", "", false}, {"model synth", "--ffn", "", false}, {"model synth", "--ctx", "", false},
    {"model synth", "--vocab-size", "", false}, {"model synth", "--rope-base", "", false},
    {"model synth", "--seed", "0 2147483648 9223372036854775808", false},
    {"model synth", "--progress-interval", "0", false},
    {"ab", "--rounds", "", false}, {"ab", "--seed", "0 2147483648 9223372036854775808", false},
    {"compare", "--alpha", "", false}, {"compare", "--threshold", "0", false}, {"compare", "--tolerance", "0", false},
    {"report", "--last", "", false},
    {"conformance", "--device", "0", false}, {"run", "--device", "0", false}, {"generate", "--device", "0", false},
    {"micro", "--device", "0", false}, {"ppl", "--device", "0", false}, {"serve", "--device", "0", false}, {"conformance", "-t", "", false},
    {"conformance", "--seed", "0 2147483648 9223372036854775808", false},
};

static const char *const probes[] = {"0", "-1", "nan", "inf", "2147483648", "9223372036854775808",
                                     "", "abc", "1,", " 1", "1.5e999"};
static const char *const list_probes[] = {"1,,2", ",1", "1,nan", "2,2147483648"};

static bool is_valid(const numopt *o, const char *v)
{
    char buf[128];
    snprintf(buf, sizeof buf, " %s ", o->valid);
    char want[64];
    snprintf(want, sizeof want, " %s ", v);
    return *v && strstr(buf, want);
}

/* Runs `mlc-bench CMD OPT 'V'` under a hang guard and checks the refusal; returns false (and
 * says why on stderr, so one run lists every offender) when it is not as required. */
static bool refused(const numopt *o, const char *v)
{
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "timeout -k 5 60 %s %s %s '%s' </dev/null", tu_bin(), o->cmd, o->opt, v);
    int rc = tu_run(cmd, &out);
    const char *nl = out ? strchr(out, '\n') : NULL;
    bool one_line = nl && !nl[1];
    bool ok = rc == 2 && one_line && strstr(out, o->opt);
    if (!ok)
        fprintf(stderr, "%s %s '%s': exit %d, output: %s\n", o->cmd, o->opt, v, rc, out ? out : "");
    free(out);
    return ok;
}

Test(cli, numeric_options_refuse_bad_values, .timeout = 900)
{
    int bad = 0, n = 0;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++, n++)
            if (!is_valid(&opts[i], probes[k]) && !refused(&opts[i], probes[k]))
                bad++;
        for (size_t k = 0; opts[i].list && k < sizeof list_probes / sizeof list_probes[0]; k++, n++)
            if (!refused(&opts[i], list_probes[k]))
                bad++;
    }
    cr_expect_eq(bad, 0, "%d of %d bad values were not refused as required (listed on stderr)", bad, n);
}

/* `--bogus` last on the line must not read "--bogus needs a value". */
Test(cli, unknown_option_named_as_unknown, .timeout = 300)
{
    static const char *const cmds[] = {"run", "generate", "tokenize", "micro", "ppl", "serve", "model synth",
                                       "model info", "report", "compare", "baseline list", "ab", "devices", "conformance"};
    int bad = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char cmd[512], *out = NULL;
        snprintf(cmd, sizeof cmd, "timeout -k 5 60 %s %s --bogus </dev/null", tu_bin(), cmds[i]);
        int rc = tu_run(cmd, &out);
        if (rc != 2 || !strstr(out, "--bogus") || !strstr(out, "unknown option") || strstr(out, "needs a value")) {
            fprintf(stderr, "%s --bogus: exit %d, output: %s\n", cmds[i], rc, out ? out : "");
            bad++;
        }
        free(out);
    }
    cr_expect_eq(bad, 0, "%d commands misreport an unknown option (listed on stderr)", bad);
}

Test(cli, help_lists_every_command)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --help", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    static const char *const want[] = {"\n  run ", "\n  devices ", "\n  model info ", "\n  model synth ",
                                       "\n  generate ", "\n  tokenize ", "\n  serve ", "\n  micro ", "\n  ppl ",
                                       "\n  report ", "\n  compare ", "\n  baseline ", "\n  ab ",
                                       "\n  conformance "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(out, want[i]), "--help lacks '%s'", want[i] + 3);
    free(out);
}
