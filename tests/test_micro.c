/* test_micro.c: `mlc-bench micro` output formats and `mlc-bench generate`'s timings, end to
 * end on the shared golden model (the binary under test is $MLC_BIN).
 *
 * - micro -o sql is executed by SQLite itself (the library, not a grep): one table, a row per
 *   test, weight_gbs, read_gbs and weight_share NULL for prompt processing, and for generation
 *   read_gbs > 0 with weight_share = weight_gbs / read_gbs; -o csv rows have exactly the header's fields
 *   (quoted fields holding commas and quotes counted as one), with a model path that needs
 *   quoting in both.
 * - generate -n 0 times the prompt alone: a time >= 0, no tokens. */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* The golden model under a name with a quote and a double quote, which both the csv and
 * the sql quoting must carry (-m splits at commas; cpu_info holds one: "cpu: N threads, ISA"). */
static void odd_model(char *path, size_t cap)
{
    char golden[1024], cwd[2048] = "", abs[4096];
    tu_require_shared(golden, sizeof golden, "golden/tiny-llama-q8_0.gguf");
    if (golden[0] != '/') /* MLC_SHARED may be relative; the link lives elsewhere */
        cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(abs, sizeof abs, "%s%s%s", cwd, cwd[0] ? "/" : "", golden);
    snprintf(path, cap, "%s/it's \"tiny\".gguf", tu_tmpdir());
    unlink(path);
    cr_assert_eq(symlink(abs, path), 0, "symlink %s", path);
}

static int micro(const char *model, const char *fmt, char **out)
{
    char cmd[4096];
    /* The model path goes through sh: single quotes, each ' written as '\''. */
    char q[2048] = "'";
    for (const char *s = model; *s; s++)
        strncat(q, *s == '\'' ? "'\\''" : (char[]){*s, 0}, sizeof q - strlen(q) - 2);
    strcat(q, "'");
    snprintf(cmd, sizeof cmd, "%s micro -m %s -p 8 -n 4 -r 2 --warmup 0 -t 1 --no-store -o %s 2>/dev/null",
             tu_bin(), q, fmt);
    return tu_run(cmd, out);
}

/* Fields of one csv line (RFC 4180: "..." with "" inside may hold commas). */
static int csv_fields(const char *line, size_t len)
{
    int n = 1;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '"')
            quoted = !quoted; /* "" toggles twice */
        else if (line[i] == ',' && !quoted)
            n++;
    }
    cr_expect(!quoted, "unbalanced quotes: %.*s", (int)len, line);
    return n;
}

Test(micro, csv_rows_match_the_header, .timeout = 120)
{
    char model[1024], *out;
    odd_model(model, sizeof model);
    cr_assert_eq(micro(model, "csv", &out), 0, "%s", out);
    const char *line = out, *nl;
    int header = -1, rows = 0;
    while ((nl = strchr(line, '\n'))) {
        int n = csv_fields(line, (size_t)(nl - line));
        if (header < 0) {
            header = n;
            cr_expect(!strncmp(line, "build_commit,", 13) && strstr(line, ",weight_gbs"), "%s", out);
        } else {
            rows++;
            cr_expect_eq(n, header, "row %d has %d fields, the header %d:\n%s", rows, n, header, out);
        }
        line = nl + 1;
    }
    cr_expect_eq(rows, 2, "%s", out); /* pp8 and tg4 */
    cr_expect(strstr(out, "/it's \"\"tiny\"\".gguf\""), "%s", out);
    free(out);
}

static int count_cb(void *arg, int n, char **v, char **names)
{
    (void)names;
    cr_assert_eq(n, 7);
    int *rows = arg;
    /* n_prompt, n_gen, weight_gbs, model_filename, samples_ts, read_gbs, weight_share */
    if (atoi(v[0]) == 8) {
        cr_expect_null(v[2], "pp8 weight_gbs: %s", v[2]);
        cr_expect_null(v[5], "pp8 read_gbs: %s", v[5]);
        cr_expect_null(v[6], "pp8 weight_share: %s", v[6]);
    } else {
        cr_expect_eq(atoi(v[1]), 4);
        cr_expect(v[2] && atof(v[2]) > 0, "tg4 weight_gbs: %s", v[2] ? v[2] : "NULL");
        cr_assert(v[5] && atof(v[5]) > 0, "tg4 read_gbs: %s", v[5] ? v[5] : "NULL");
        cr_assert(v[6], "tg4 weight_share is NULL");
        const double share = atof(v[2]) / atof(v[5]);
        cr_expect(fabs(atof(v[6]) - share) <= 1e-9 * share, "weight_share %s, weight_gbs / read_gbs %g", v[6], share);
    }
    cr_expect(v[3] && strstr(v[3], "/it's \"tiny\".gguf"), "%s", v[3]);
    cr_expect(v[4] && strchr(v[4], ';'), "two samples: %s", v[4]);
    (*rows)++;
    return 0;
}

Test(micro, sql_loads_into_sqlite, .timeout = 120)
{
    char model[1024], *out;
    odd_model(model, sizeof model);
    cr_assert_eq(micro(model, "sql", &out), 0, "%s", out);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(db, out, NULL, NULL, &err), SQLITE_OK, "%s\n%s", err ? err : "", out);
    int rows = 0;
    cr_expect_eq(sqlite3_exec(db, "SELECT n_prompt, n_gen, weight_gbs, model_filename, samples_ts, read_gbs,"
                                  " weight_share FROM test"
                                  " ORDER BY n_prompt DESC", count_cb, &rows, &err), SQLITE_OK, "%s", err ? err : "");
    cr_expect_eq(rows, 2);
    sqlite3_free(err);
    sqlite3_close(db);
    free(out);
}

/* Parses "prompt: N tokens in S s" from generate's stderr. */
static double prompt_seconds(const char *out, int *n_tokens)
{
    const char *p = strstr(out, "prompt: ");
    cr_assert_not_null(p, "%s", out);
    double s = -1;
    cr_assert_eq(sscanf(p, "prompt: %d tokens in %lf s", n_tokens, &s), 2, "%s", out);
    return s;
}

Test(generate, zero_tokens_times_the_prompt, .timeout = 120)
{
    char model[1024], cmd[2048], *out;
    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p 'hello world' -n 0 --ids", tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    int n = 0;
    double s = prompt_seconds(out, &n);
    cr_expect_eq(n, 3, "%s", out);
    cr_expect(s >= 0 && s < 100, "prompt time %g s: %s", s, out);
    cr_expect(strstr(out, "generated: []") && strstr(out, "generated: 0 tokens"), "%s", out);
    free(out);
    /* And with tokens: the same line, the tokens counted. */
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p 'hello world' -n 2 --ids", tu_bin(), model);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    s = prompt_seconds(out, &n);
    cr_expect(s >= 0 && s < 100, "prompt time %g s: %s", s, out);
    cr_expect(strstr(out, "generated: 2 tokens (length)"), "%s", out);
    free(out);
}
