/* db.c: `mlc-bench db`: info, export (JSONL, CSV) and merge with shard groups (db.h). */
#include "db.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "results.h"
#include "slo.h"
#include "store_merge.h"

static const char usage_text[] =
    "usage: mlc-bench db info [--db FILE]\n"
    "       mlc-bench db export [--db FILE] [--run REF] [--format jsonl|csv]\n"
    "                           [--table requests|metrics|samples] [-o FILE]\n"
    "       mlc-bench db merge OUT.db IN.db...\n"
    "\n"
    "info    schema version, size, and runs per kind and status\n"
    "export  one table's rows (default requests; every run, or REF: an id, a UUID or\n"
    "        latest) as JSON lines (default) or CSV on stdout or FILE; each row has its\n"
    "        run's id and UUID; ITL gaps are a list of milliseconds (CSV: space-separated)\n"
    "merge   copies every run of the IN stores that OUT lacks (matched by UUID, so merging\n"
    "        a file twice adds nothing) with its requests, metrics, samples, fingerprints\n"
    "        and baselines, ids remapped. Shards of a group (run --shard I/N --run-group G)\n"
    "        become one more run, UUID group-G, holding the union of the shards' requests;\n"
    "        its aggregates are computed from those records (exact percentiles). It is\n"
    "        'complete' when every shard completed; a missing or unfinished shard makes it\n"
    "        'interrupted' with partial = 1. report and compare take it like any run.\n"
    "--db FILE  default ./mlc-bench.db or $MLC_BENCH_DB\n"
    "Exit: 0 done, 1 a file could not be read or written, 2 usage error.\n";

static int usage_err(const char *msg, const char *arg)
{
    fprintf(stderr, "mlc-bench db: %s%s%s (see mlc-bench db --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

/* ---- info ----------------------------------------------------------------------------------- */

static void print_count(void *ctx, const char *kind, const char *status, int64_t n)
{
    (void)ctx;
    printf("  %-12s %-12s %" PRId64 "\n", kind ? kind : "?", status ? status : "?", n);
}

static int cmd_info(const char *path)
{
    mlc_store *s = NULL;
    mlc_err err;
    int64_t ver = 0, bytes = 0;
    if (mlc_store_open_readonly(path, &s, &err)) {
        fprintf(stderr, "mlc-bench db info: %s\n", err.msg);
        return 1;
    }
    mlc_store_file_info(s, &ver, &bytes);
    printf("file: %s\nschema version: %" PRId64 " (this build writes %d)\nsize: %" PRId64 " bytes\n"
           "runs (kind, status, count):\n", path, ver, mlc_store_schema_version(), bytes);
    int rc = 0;
    if (mlc_store_run_counts(s, print_count, NULL, &err)) {
        fprintf(stderr, "mlc-bench db info: %s\n", err.msg);
        rc = 1;
    }
    mlc_store_close(s);
    return rc;
}

/* ---- export --------------------------------------------------------------------------------- */

typedef struct export_ctx {
    FILE *f;
    bool csv, header_done;
} export_ctx;

/* A CSV field: quoted when it holds a comma, quote or line break; quotes doubled. */
static void csv_text(FILE *f, const char *t)
{
    if (!strpbrk(t, ",\"\r\n")) {
        fputs(t, f);
        return;
    }
    fputc('"', f);
    for (; *t; t++) {
        if (*t == '"')
            fputc('"', f);
        fputc(*t, f);
    }
    fputc('"', f);
}

static void csv_cell(FILE *f, const mlc_cell *c)
{
    switch (c->type) {
    case MLC_CELL_INT: fprintf(f, "%" PRId64, c->i); break;
    case MLC_CELL_REAL: fprintf(f, "%.17g", c->d); break;
    case MLC_CELL_TEXT: csv_text(f, c->text); break;
    case MLC_CELL_FLOATS:
        for (int32_t k = 0; k < c->nf; k++)
            fprintf(f, "%s%.9g", k ? " " : "", (double)c->f[k]);
        break;
    case MLC_CELL_NULL: break;
    }
}

/* A number as raw JSON with enough digits to read back the same value: cJSON's own
 * printing may drop the last bit of a double. Non-finite values are null. */
static cJSON *json_num(double v, int digits)
{
    char buf[40];
    if (!isfinite(v))
        return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *json_cell(const mlc_cell *c)
{
    switch (c->type) {
    case MLC_CELL_INT: return cJSON_CreateNumber((double)c->i);
    case MLC_CELL_REAL: return json_num(c->d, 17);
    case MLC_CELL_TEXT: return cJSON_CreateString(c->text);
    case MLC_CELL_FLOATS: {
        cJSON *a = cJSON_CreateArray();
        for (int32_t k = 0; a && k < c->nf; k++)
            cJSON_AddItemToArray(a, json_num((double)c->f[k], 9));
        return a;
    }
    case MLC_CELL_NULL: break;
    }
    return cJSON_CreateNull();
}

static mlc_status export_row(void *ctx, const mlc_cell *c, int n, mlc_err *err)
{
    export_ctx *x = ctx;
    if (x->csv) {
        for (int i = 0; !x->header_done && i < n; i++)
            fprintf(x->f, "%s%s", i ? "," : "", c[i].name);
        if (!x->header_done)
            fputc('\n', x->f);
        x->header_done = true;
        for (int i = 0; i < n; i++) {
            if (i)
                fputc(',', x->f);
            csv_cell(x->f, &c[i]);
        }
        fputc('\n', x->f);
        return MLC_OK;
    }
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < n; i++)
        cJSON_AddItemToObject(o, c[i].name, json_cell(&c[i]));
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line)
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    fprintf(x->f, "%s\n", line);
    free(line);
    return MLC_OK;
}

static int cmd_export(const char *path, const char *ref, const char *format, const char *table, const char *out)
{
    if (strcmp(format, "jsonl") && strcmp(format, "csv"))
        return usage_err("--format: expected jsonl or csv, got", format);
    if (strcmp(table, "requests") && strcmp(table, "metrics") && strcmp(table, "samples"))
        return usage_err("--table: expected requests, metrics or samples, got", table);
    mlc_store *s = NULL;
    mlc_err err;
    int64_t run_id = 0;
    export_ctx x = {.csv = !strcmp(format, "csv")};
    int rc = 1;
    if (mlc_store_open_readonly(path, &s, &err) || (ref && mlc_store_resolve_run(s, ref, &run_id, &err)))
        goto fail;
    x.f = out ? fopen(out, "w") : stdout;
    if (!x.f) {
        mlc_err_set(&err, MLC_ERR_IO, "%s: cannot write", out);
        goto fail;
    }
    if (mlc_store_export_rows(s, table, run_id, export_row, &x, &err))
        goto fail;
    if (fflush(x.f) || ferror(x.f)) {
        mlc_err_set(&err, MLC_ERR_IO, "%s: write failed", out ? out : "stdout");
        goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mlc-bench db export: %s\n", err.msg);
done:
    if (x.f && x.f != stdout)
        fclose(x.f);
    mlc_store_close(s);
    return rc;
}

/* ---- merge ---------------------------------------------------------------------------------- */

/* The name of load point p: the config's "load" entry, else "p=K". */
static void load_name(const cJSON *loads, int p, char *buf, size_t cap)
{
    const cJSON *n = cJSON_GetArrayItem(loads, p);
    if (cJSON_IsString(n) && n->valuestring[0])
        snprintf(buf, cap, "%s", n->valuestring);
    else
        snprintf(buf, cap, "p=%d", p);
}

/* Aggregates of one load point; *n is how many requests it had. */
static mlc_status aggregate_point(mlc_store *s, int64_t run_id, int p, const mlc_load_point *lp,
                                  const mlc_slo *slo, int64_t *n, mlc_err *err)
{
    mlc_req_times *t = NULL;
    mlc_status st = mlc_store_read_times(s, run_id, p, &t, n, err);
    if (st || *n == 0) {
        mlc_store_free_times(t, *n);
        return st;
    }
    double *ttft = malloc((size_t)*n * sizeof *ttft), *e2e = malloc((size_t)*n * sizeof *e2e);
    int64_t n_ok = 0;
    if (!ttft || !e2e) {
        st = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < *n; i++) {
        if (t[i].ok && t[i].first_token >= 0) {
            ttft[n_ok] = (t[i].first_token - t[i].sent) * 1e3;
            e2e[n_ok++] = (t[i].done - t[i].sent) * 1e3;
        }
    }
    mlc_phase_metrics m;
    mlc_metrics_compute(t, *n, slo, &m);
    st = mlc_results_store(s, run_id, lp, &m, ttft, e2e, n_ok, err);
out:
    free(ttft);
    free(e2e);
    mlc_store_free_times(t, *n);
    return st;
}

mlc_status mlc_db_aggregate(mlc_store *s, int64_t run_id, const char *config, mlc_err *err)
{
    cJSON *cfg = config ? cJSON_Parse(config) : NULL;
    const cJSON *loads = cJSON_GetObjectItemCaseSensitive(cfg, "load");
    const cJSON *slo_text = cJSON_GetObjectItemCaseSensitive(cfg, "slo");
    mlc_slo_spec spec = {0};
    char msg[160];
    if (cJSON_IsString(slo_text) && !mlc_slo_spec_parse(slo_text->valuestring, &spec, msg, sizeof msg))
        spec.any = false;
    mlc_status st = MLC_OK;
    int n_names = cJSON_GetArraySize(loads);
    for (int p = 0; p < MLC_LOAD_MAX_POINTS && !st; p++) {
        mlc_load_point lp = {0};
        load_name(loads, p, lp.name, sizeof lp.name);
        int64_t n = 0;
        st = aggregate_point(s, run_id, p, &lp, spec.any ? &spec.request : NULL, &n, err);
        if (n == 0 && p >= n_names)
            break;
    }
    cJSON_Delete(cfg);
    return st;
}

static mlc_status merge_group(void *ctx, const mlc_shard_group *g, mlc_err *err)
{
    mlc_store *s = ctx;
    int64_t run_id = 0;
    char *config = NULL;
    mlc_status st = mlc_store_group_run(s, g, &run_id, &config, err);
    if (!st)
        st = mlc_db_aggregate(s, run_id, config, err);
    free(config);
    if (st)
        return st;
    bool partial = g->present < g->shard_count || g->complete < g->present;
    printf("group %s: run %" PRId64 " (uuid group-%s) from %d of %d shards, %d complete%s\n", g->id, run_id, g->id,
           g->present, g->shard_count, g->complete, partial ? ": partial" : "");
    return MLC_OK;
}

static int cmd_merge(int n, char **paths)
{
    mlc_store *s = NULL;
    mlc_err err;
    int rc = 1;
    if (mlc_store_open(paths[0], &s, &err))
        goto fail;
    for (int i = 1; i < n; i++) {
        int64_t added = 0, skipped = 0;
        if (mlc_store_merge_file(s, paths[i], &added, &skipped, &err))
            goto fail;
        printf("%s: %" PRId64 " runs added, %" PRId64 " already present\n", paths[i], added, skipped);
    }
    if (mlc_store_touched_groups(s, merge_group, s, &err))
        goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mlc-bench db merge: %s\n", err.msg);
done:
    mlc_store_close(s);
    return rc;
}

/* ---- command line --------------------------------------------------------------------------- */

int mlc_cmd_db(int argc, char **argv)
{
    if (argc < 2)
        return usage_err("expected info, export or merge", NULL);
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(sub, "merge")) {
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                fputs(usage_text, stdout);
                return 0;
            }
        if (argc < 4)
            return usage_err("merge: expected OUT.db and at least one IN.db", NULL);
        return cmd_merge(argc - 2, argv + 2);
    }
    if (strcmp(sub, "info") && strcmp(sub, "export"))
        return usage_err("unknown subcommand", sub);
    const char *db = mlc_store_default_path(), *ref = NULL, *format = "jsonl", *table = "requests", *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--db") ? &db : !strcmp(a, "--run") ? &ref : !strcmp(a, "--format") ? &format
                         : !strcmp(a, "--table") ? &table : !strcmp(a, "-o") ? &out : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!dst || (strcmp(sub, "export") && strcmp(a, "--db")))
            return usage_err("unknown option", a);
        if (i + 1 >= argc)
            return usage_err("missing the value of", a);
        *dst = argv[++i];
    }
    return !strcmp(sub, "info") ? cmd_info(db) : cmd_export(db, ref, format, table, out);
}
