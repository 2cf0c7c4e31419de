/* compare.c: `mlc-bench compare --baseline REF --candidate REF`: the regression gate
 * (compare.h): options and output. The verdict rule is in verdict.c, the reference grammar in
 * runref.c, the statistics in stats.c. */
#include "compare.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runref.h"
#include "store.h"
#include "strbuf.h"
#include "verdict.h"

typedef mlc_verdict_row row;
typedef mlc_verdict_table table;

void mlc_compare_opts_init(mlc_compare_opts *o)
{
    /* 0.5 ms: about the wakeup latency of a loaded machine; a change smaller than that is
     * timing jitter, not the code under test, however many percent of a small figure. */
    *o = (mlc_compare_opts){.alpha = 0.01, .threshold_pct = 5, .tolerance_pct = 0.1,
                            .floors = {{.key = "ms", .v = 0.5}}, .n_floors = 1};
}

bool mlc_compare_parse_floors(const char *flag, const char *val, mlc_compare_opts *o)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", val) >= (int)sizeof buf || !*val || *val == ',' ||
        val[strlen(val) - 1] == ',' || strstr(val, ",,")) {
        fprintf(stderr, "mlc-bench compare: %s: '%s' is not a list of UNIT=VALUE or METRIC=VALUE\n", flag, val);
        return false;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '='), *end;
        errno = 0;
        double v = eq ? strtod(eq + 1, &end) : NAN;
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof o->floors[0].key || errno || end == eq + 1 ||
            *end || !(v >= 0) || v > 1e12) {
            fprintf(stderr, "mlc-bench compare: %s: '%s' is not UNIT=VALUE or METRIC=VALUE with VALUE >= 0"
                    " (e.g. ms=0.5)\n", flag, tok);
            return false;
        }
        *eq = 0;
        int i = 0;
        while (i < o->n_floors && strcmp(o->floors[i].key, tok))
            i++;
        if (i == MLC_COMPARE_MAX_FLOORS) {
            fprintf(stderr, "mlc-bench compare: %s: more than %d noise floors\n", flag, MLC_COMPARE_MAX_FLOORS);
            return false;
        }
        snprintf(o->floors[i].key, sizeof o->floors[i].key, "%s", tok);
        o->floors[i].v = v;
        o->floors[i].given = true;
        o->n_floors += i == o->n_floors;
    }
    return true;
}

bool mlc_compare_parse_pct(const char *flag, const char *val, double *all, mlc_metric_override *ov, int *n)
{
    const char *eq = strrchr(val, '=');
    const char *num = eq ? eq + 1 : val;
    char *end;
    errno = 0;
    double v = strtod(num, &end);
    if (*end == '%')
        end++;
    if (errno || end == num || *end || isspace((unsigned char)*num) || !(v >= 0) || v > 1e6) {
        fprintf(stderr, "mlc-bench compare: %s: '%s' is not a percentage (PCT or METRIC=PCT)\n", flag, val);
        return false;
    }
    if (!eq) {
        *all = v;
        return true;
    }
    if (*n == MLC_COMPARE_MAX_OVERRIDES || eq == val) {
        fprintf(stderr, "mlc-bench compare: %s: '%s': %s\n", flag, val,
                eq == val ? "empty metric name" : "too many per-metric values");
        return false;
    }
    ov[*n].pattern = val; /* "NAME=PCT": matched up to the last '=' (names hold '=': c=4/itl_ms=3) */
    ov[(*n)++].pct = v;
    return true;
}


static void print_table(const table *t, const char *bd, const char *cd, int regressions)
{
    printf("baseline:  %s\ncandidate: %s\n", bd, cd);
    printf("%-34s %12s %12s %9s %8s %11s  %s\n", "metric", "baseline", "candidate", "change", "p", "n (b/c)",
           "verdict");
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        char p[16], ch[24], n[32], m0[32], m1[32];
        mlc_verdict_fmt_p(r, p, sizeof p);
        mlc_verdict_fmt_change(r, ch, sizeof ch);
        mlc_verdict_fmt_n(r, n, sizeof n);
        mlc_verdict_fmt_med(r->med[0], "%.4g", m0, sizeof m0);
        mlc_verdict_fmt_med(r->med[1], "%.4g", m1, sizeof m1);
        printf("%-34s %12s %12s %9s %8s %11s  %s (%s)\n", r->name, m0, m1, ch, p, n, r->verdict, r->why);
    }
    printf("%d regression%s\n", regressions, regressions == 1 ? "" : "s");
}

static void markdown(mlc_strbuf *b, const table *t, const char *bd, const char *cd, int regressions)
{
    mlc_sb_printf(b, "### mlc-bench compare: %s\n\nCandidate %s against baseline %s.\n\n",
                  regressions ? "regression" : "no regression", cd, bd);
    mlc_sb_printf(b, "| metric | baseline | candidate | change | p | n (b/c) | verdict |\n"
                     "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        char p[16], ch[24], n[32], m0[32], m1[32];
        mlc_verdict_fmt_p(r, p, sizeof p);
        mlc_verdict_fmt_change(r, ch, sizeof ch);
        mlc_verdict_fmt_n(r, n, sizeof n);
        mlc_verdict_fmt_med(r->med[0], "%.4g", m0, sizeof m0);
        mlc_verdict_fmt_med(r->med[1], "%.4g", m1, sizeof m1);
        bool bad = mlc_verdict_is_bad(r);
        mlc_sb_printf(b, "| %s | %s | %s | %s | %s | %s | %s%s%s (%s) |\n", r->name, m0, m1, ch, p, n, bad ? "**" : "",
                      r->verdict, bad ? "**" : "", r->why);
    }
    mlc_sb_printf(b, "\n%d regression%s.\n\n", regressions, regressions == 1 ? "" : "s");
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static char *to_json(const table *t, const char *bd, const char *cd, int regressions, const mlc_compare_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "baseline", bd);
    cJSON_AddStringToObject(j, "candidate", cd);
    cJSON_AddNumberToObject(j, "alpha", o->alpha);
    cJSON_AddNumberToObject(j, "threshold_pct", o->threshold_pct);
    cJSON_AddNumberToObject(j, "tolerance_pct", o->tolerance_pct);
    cJSON *fl = cJSON_AddObjectToObject(j, "noise_floors");
    for (int i = 0; i < o->n_floors; i++)
        cJSON_AddNumberToObject(fl, o->floors[i].key, o->floors[i].v);
    cJSON *a = cJSON_AddArrayToObject(j, "metrics");
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", r->name);
        cJSON_AddStringToObject(m, "unit", r->unit);
        cJSON_AddNumberToObject(m, "direction", r->direction);
        cJSON_AddStringToObject(m, "type", r->det ? "deterministic" : "noisy");
        cJSON_AddItemToObject(m, "baseline_median", num_or_null(r->med[0]));
        cJSON_AddItemToObject(m, "candidate_median", num_or_null(r->med[1]));
        cJSON_AddItemToObject(m, "change_pct", num_or_null(100 * r->change));
        cJSON_AddItemToObject(m, "p_value", num_or_null(r->p_worse));
        cJSON_AddItemToObject(m, "limit_pct", num_or_null(100 * r->limit));
        cJSON_AddNumberToObject(m, "noise_floor", r->floor);
        cJSON_AddBoolToObject(m, "gated", r->gated);
        cJSON_AddNumberToObject(m, "n_baseline", (double)r->s[0].n);
        cJSON_AddNumberToObject(m, "n_candidate", (double)r->s[1].n);
        cJSON_AddNumberToObject(m, "runs_baseline", (double)r->runs[0].n);
        cJSON_AddNumberToObject(m, "runs_candidate", (double)r->runs[1].n);
        cJSON_AddStringToObject(m, "test_unit", r->det ? "none" : r->run_level ? "run" : "sample");
        cJSON_AddStringToObject(m, "verdict", r->verdict);
        cJSON_AddStringToObject(m, "reason", r->why);
        cJSON_AddItemToArray(a, m);
    }
    cJSON_AddNumberToObject(j, "regressions", regressions);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static bool write_junit(const char *path, const table *t, int regressions)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mlc-bench compare: %s: cannot write: %s\n", path, strerror(errno));
        return false;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
               "<testsuite name=\"mlc-bench compare\" tests=\"%d\" failures=\"%d\">\n", t->n, regressions);
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        char p[16], ch[24], msg[256], m0[32], m1[32];
        mlc_verdict_fmt_p(r, p, sizeof p);
        mlc_verdict_fmt_change(r, ch, sizeof ch);
        mlc_verdict_fmt_med(r->med[0], "%.6g", m0, sizeof m0);
        mlc_verdict_fmt_med(r->med[1], "%.6g", m1, sizeof m1);
        fputs("  <testcase classname=\"mlc-bench.compare\" name=\"", f);
        xml_text(f, r->name);
        snprintf(msg, sizeof msg, "%s: %s -> %s (%s, p %s): %s", r->verdict, m0, m1, ch, p, r->why);
        if (mlc_verdict_is_bad(r)) {
            fputs("\">\n    <failure message=\"", f);
            xml_text(f, msg);
            fputs("\"/>\n  </testcase>\n", f);
        } else {
            fputs("\">\n    <system-out>", f);
            xml_text(f, msg);
            fputs("</system-out>\n  </testcase>\n", f);
        }
    }
    fputs("</testsuite>\n</testsuites>\n", f);
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "mlc-bench compare: %s: write failed\n", path);
    return ok;
}

/* Appends to $GITHUB_STEP_SUMMARY when set: the job summary GitHub shows. */
static void step_summary(const mlc_strbuf *md)
{
    const char *path = getenv("GITHUB_STEP_SUMMARY");
    if (!path || !*path || !md->p)
        return;
    FILE *f = fopen(path, "a");
    bool ok = f && fputs(md->p, f) >= 0;
    if (f && fclose(f))
        ok = false;
    if (!ok)
        fprintf(stderr, "mlc-bench compare: %s: cannot append the step summary\n", path);
}

static int emit(const table *t, const char *bd, const char *cd, int regressions, const mlc_compare_opts *o)
{
    mlc_strbuf md = {0};
    markdown(&md, t, bd, cd, regressions);
    if (md.oom) {
        free(md.p);
        fprintf(stderr, "mlc-bench compare: out of memory\n");
        return 2;
    }
    if (o->json) {
        char *s = to_json(t, bd, cd, regressions, o);
        printf("%s\n", s ? s : "null");
        free(s);
    } else if (o->markdown) {
        fputs(md.p, stdout);
    } else if (!o->quiet) {
        print_table(t, bd, cd, regressions);
    }
    fflush(stdout);
    step_summary(&md);
    free(md.p);
    if (o->junit && !write_junit(o->junit, t, regressions))
        return 2;
    return regressions ? 1 : 0;
}

int mlc_compare_runs(sqlite3 *db, const int64_t *base, int n_base, const char *base_desc, const int64_t *cand,
                     int n_cand, const char *cand_desc, const mlc_compare_opts *o)
{
    table t;
    if (mlc_verdict_build(db, "compare", base, n_base, base_desc, cand, n_cand, cand_desc, o, &t))
        return 2;
    int rc = emit(&t, base_desc, cand_desc, t.regressions, o);
    mlc_verdict_free(&t);
    return rc;
}

const char *mlc_compare_ref_meaning(const char *s)
{
    return mlc_runref_meaning(s);
}

/* ------------------------------------------------------------------ command */

static const char compare_usage[] =
    "usage: mlc-bench compare --baseline REF --candidate REF [options]\n"
    "  REF: a run id, a baseline name (mlc-bench baseline set), `last`, `last:N` (the N newest\n"
    "       complete runs with the same kind, model, target, config and machine, pooled), or\n"
    "       `label:TEXT` (every complete run with that --label).\n"
    "       A relative REF is taken relative to the other one (the baseline precedes the\n"
    "       candidate); with both relative the candidate is the newest complete run.\n"
    "  --db FILE          store (default ./mlc-bench.db or $MLC_BENCH_DB)\n"
    "  --kind K           with both REFs relative: the newest run of this kind (run, micro, ppl)\n"
    "  --alpha A          one-sided Mann-Whitney U significance level (default 0.01)\n"
    "  --threshold PCT    median change that counts for noisy metrics (default 5);\n"
    "                     METRIC=PCT sets one metric (by name or last component: itl_ms=3)\n"
    "  --tolerance PCT    deterministic metrics: ppl, token counts, failures (default 0.1);\n"
    "                     METRIC=PCT likewise\n"
    "  --noise-floor K=V[,K=V...]  absolute change a noisy metric must exceed to regress, per\n"
    "                     unit or metric (K: ms, tok/s, itl_ms, ...; V in that unit);\n"
    "                     default ms=0.5, none for other units; ms=0 turns it off\n"
    "  --gate METRIC      gate a reported-only metric too (client_delay_ms: it measures the\n"
    "                     load generator; conf_passed, conf_unsupported: a declined case is\n"
    "                     reported, a failing one gates)\n"
    "  --metric TEXT      only metrics whose name contains TEXT\n"
    "  --force            compare across machines (fingerprints) or models\n"
    "  --format table|md  console table (default) or markdown     --json  JSON on stdout\n"
    "  --junit FILE       JUnit XML, one test case per metric      --quiet  no table\n"
    "A noisy metric (latency, throughput) regresses when the candidate is worse with p < alpha\n"
    "AND its median moved beyond the threshold AND beyond the noise floor; less is `~`. A\n"
    "metric measured on one side only shows `-` there and is `n/a`, not a regression. Names\n"
    "given to --threshold, --tolerance, --noise-floor and --gate must match a compared metric\n"
    "(or unit). Markdown is appended to $GITHUB_STEP_SUMMARY when set. Two conformance runs\n"
    "also list, on stderr, every case whose status changed; a newly failing case regresses.\n"
    "exit status: 0 no regression, 1 regression, 2 usage or data error\n";

typedef struct compare_args {
    const char *db, *baseline, *candidate, *kind;
    mlc_compare_opts o;
} compare_args;

/* --gate NAME: a reported-only metric (by name or last part) to gate anyway. */
static bool parse_gate(const char *cmd, const char *v, mlc_compare_opts *o)
{
    bool ok = *mlc_verdict_reported_why(v) != 0;
    if (!ok || o->n_gate == MLC_COMPARE_MAX_OVERRIDES) {
        fprintf(stderr, "mlc-bench %s: --gate: '%s' %s\n", cmd, v,
                ok ? "is one too many" : "is not a reported-only metric (client_delay_ms, conf_passed, conf_unsupported; every other metric is gated)");
        return false;
    }
    o->gate[o->n_gate++] = v;
    return true;
}

int mlc_compare_parse_opt(const char *cmd, int argc, char **argv, int *i, mlc_compare_opts *o)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--force") || !strcmp(a, "--json") || !strcmp(a, "--quiet")) {
        *(a[2] == 'f' ? &o->force : a[2] == 'j' ? &o->json : &o->quiet) = true;
        return 1;
    }
    static const char *const valued[] = {"--alpha", "--threshold", "--tolerance", "--noise-floor", "--gate",
                                         "--metric", "--junit", "--format"};
    bool known = false;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        known |= !strcmp(a, valued[k]);
    if (!known)
        return 0;
    if (!(v = mlc_cli_value(cmd, argc, argv, i)))
        return -1;
    float f;
    if (!strcmp(a, "--alpha")) {
        if (!mlc_cli_float(cmd, a, v, 1e-12, 0.5, &f))
            return -1;
        o->alpha = f;
    } else if (!strcmp(a, "--threshold")) {
        return mlc_compare_parse_pct(a, v, &o->threshold_pct, o->thresholds, &o->n_thresholds) ? 1 : -1;
    } else if (!strcmp(a, "--tolerance")) {
        return mlc_compare_parse_pct(a, v, &o->tolerance_pct, o->tolerances, &o->n_tolerances) ? 1 : -1;
    } else if (!strcmp(a, "--noise-floor")) {
        return mlc_compare_parse_floors(a, v, o) ? 1 : -1;
    } else if (!strcmp(a, "--gate")) {
        return parse_gate(cmd, v, o) ? 1 : -1;
    } else if (!strcmp(a, "--metric")) {
        o->metric = v;
    } else if (!strcmp(a, "--junit")) {
        o->junit = v;
    } else if (!strcmp(v, "md") || !strcmp(v, "table")) {
        o->markdown = !strcmp(v, "md");
    } else {
        fprintf(stderr, "mlc-bench %s: --format: unknown format '%s' (table, md)\n", cmd, v);
        return -1;
    }
    return 1;
}

static int parse_compare(int argc, char **argv, compare_args *c)
{
    *c = (compare_args){0};
    mlc_compare_opts_init(&c->o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(compare_usage, stdout);
            return 0;
        }
        int g = mlc_compare_parse_opt("compare", argc, argv, &i, &c->o);
        if (g < 0)
            return 2;
        if (g)
            continue;
        static const char *const valued[] = {"--db", "--baseline", "-b", "--candidate", "-c", "--kind", NULL};
        if (!(v = mlc_cli_option_value("compare", valued, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "--db")) c->db = v;
        else if (!strcmp(a, "--baseline") || !strcmp(a, "-b")) c->baseline = v;
        else if (!strcmp(a, "--candidate") || !strcmp(a, "-c")) c->candidate = v;
        else if (!strcmp(a, "--kind")) c->kind = v;
        else {
            fprintf(stderr, "mlc-bench compare: unknown option '%s'\n%s", a, compare_usage);
            return 2;
        }
    }
    if (!c->baseline || !c->candidate) {
        fprintf(stderr, "mlc-bench compare: --baseline and --candidate are required\n%s", compare_usage);
        return 2;
    }
    if (!c->db)
        c->db = mlc_store_default_path();
    return -1;
}

/* ------------------------------------------------------------------ conformance cases */

typedef struct case_tally {
    int newly_failed, other;
} case_tally;

static void on_case_change(void *ctx, const mlc_conformance_change *c)
{
    case_tally *t = ctx;
    const char *before = c->before ? c->before : "absent", *after = c->after ? c->after : "absent";
    /* A case that fails now and did not before is a regression wherever it came from (passed,
     * unsupported, or new); everything else is reported. */
    bool regression = c->after && !strcmp(c->after, "fail") && !(c->before && !strcmp(c->before, "fail"));
    fprintf(stderr, "  %-11s %s %s: %s -> %s", regression ? "regression" : "changed", c->device, c->case_desc,
            before, after);
    if (regression && c->error && *c->error)
        fprintf(stderr, " (%s)", c->error);
    fputc('\n', stderr);
    *(regression ? &t->newly_failed : &t->other) += 1;
}

/* Two conformance runs: every case whose status changed between the newest run of each side,
 * on stderr (the table and its formats keep to metrics); a newly failing case is a regression
 * even when the failure counts did not move (one case fixed, another broken). */
static int conformance_cases(mlc_store *st, int64_t base, int64_t cand, int rc)
{
    mlc_run_meta *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    sqlite3 *db = mlc_store_db(st);
    bool both = b && c && mlc_run_meta_load(db, base, b) && mlc_run_meta_load(db, cand, c) && !strcmp(b->kind, "conformance") &&
                !strcmp(c->kind, "conformance");
    free(b);
    free(c);
    if (!both)
        return rc;
    case_tally t = {0, 0};
    mlc_err err = {0};
    fprintf(stderr, "conformance cases, run %lld -> run %lld:\n", (long long)base, (long long)cand);
    if (mlc_store_conformance_changes(st, base, cand, on_case_change, &t, &err)) {
        fprintf(stderr, "mlc-bench compare: %s\n", err.msg);
        return 2;
    }
    if (!t.newly_failed && !t.other)
        fprintf(stderr, "  no case changed\n");
    else
        fprintf(stderr, "  %d newly failing, %d other changes\n", t.newly_failed, t.other);
    return rc == 0 && t.newly_failed ? 1 : rc;
}

int mlc_cmd_compare(int argc, char **argv)
{
    compare_args c;
    int rc = parse_compare(argc, argv, &c);
    if (rc >= 0)
        return rc;
    mlc_store *st = NULL;
    mlc_err err;
    if (mlc_store_open_readonly(c.db, &st, &err)) {
        fprintf(stderr, "mlc-bench compare: %s\n", err.msg);
        return 2;
    }
    mlc_runref *b = calloc(1, sizeof *b), *cd = calloc(1, sizeof *cd);
    rc = 2;
    if (b && cd && mlc_runref_resolve(mlc_store_db(st), "compare", c.baseline, c.candidate, c.kind, b, cd)) {
        rc = mlc_compare_runs(mlc_store_db(st), b->ids, b->n, b->desc, cd->ids, cd->n, cd->desc, &c.o);
        if (rc != 2)
            rc = conformance_cases(st, mlc_runref_newest(b), mlc_runref_newest(cd), rc);
    } else if (!b || !cd)
        fprintf(stderr, "mlc-bench compare: out of memory\n");
    free(b);
    free(cd);
    mlc_store_close(st);
    return rc;
}
