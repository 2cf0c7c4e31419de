/* baseline.c: `mlc-bench baseline set NAME [--run ID|last] [--kind K]`, `baseline list`,
 * `baseline show NAME`, `baseline rm NAME`. A name points at one run; setting it again
 * moves it (how the nightly job promotes a clean run). */
#include "baseline.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "store.h"

static const char baseline_usage[] =
    "usage: mlc-bench baseline set NAME [--run ID|last] [--kind K]   name a run (default: the\n"
    "                                     newest complete run, of kind K when given)\n"
    "       mlc-bench baseline list        every name with its run\n"
    "       mlc-bench baseline show NAME   one name's run (exit 2 when there is none)\n"
    "       mlc-bench baseline rm NAME     forget a name (the run stays)\n"
    "  --db FILE   store (default ./mlc-bench.db or $MLC_BENCH_DB)\n"
    "NAME is any text a reference would read as a name: not a run id (1), last, last:N or\n"
    "label:TEXT.\n";

typedef struct baseline_args {
    const char *verb, *name, *run, *kind, *db;
} baseline_args;

static int parse_baseline(int argc, char **argv, baseline_args *b)
{
    *b = (baseline_args){.run = "last"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(baseline_usage, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (!b->verb) b->verb = a;
            else if (!b->name) b->name = a;
            else {
                fprintf(stderr, "mlc-bench baseline: unexpected argument '%s'\n", a);
                return 2;
            }
            continue;
        }
        static const char *const valued[] = {"--run", "--kind", "--db", NULL};
        if (!(v = mlc_cli_option_value("baseline", valued, argc, argv, &i)))
            return 2;
        if (!strcmp(a, "--run")) b->run = v;
        else if (!strcmp(a, "--kind")) b->kind = v;
        else if (!strcmp(a, "--db")) b->db = v;
        else {
            fprintf(stderr, "mlc-bench baseline: unknown option '%s'\n%s", a, baseline_usage);
            return 2;
        }
    }
    bool named = b->verb && strcmp(b->verb, "list");
    if (!b->verb || (strcmp(b->verb, "set") && strcmp(b->verb, "list") && strcmp(b->verb, "show") &&
                     strcmp(b->verb, "rm"))) {
        fprintf(stderr, "mlc-bench baseline: expected set, list, show or rm\n%s", baseline_usage);
        return 2;
    }
    if (named && (!b->name || !*b->name)) {
        fprintf(stderr, "mlc-bench baseline %s: NAME is required\n", b->verb);
        return 2;
    }
    if (!b->db)
        b->db = mlc_store_default_path();
    return -1;
}

/* The run --run names: an existing run id, or the newest complete run (of kind). */
static bool pick_run(sqlite3 *db, const baseline_args *b, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    char *end;
    errno = 0;
    long long v = strtoll(b->run, &end, 10);
    bool last = !strcmp(b->run, "last");
    if (!last && (errno || end == b->run || *end)) {
        fprintf(stderr, "mlc-bench baseline set: --run: '%s' is neither a run id nor 'last'\n", b->run);
        return false;
    }
    sqlite3_prepare_v2(db, last ? "SELECT max(id) FROM runs WHERE status = 'complete' AND (?1 IS NULL OR kind = ?1)"
                                : "SELECT id FROM runs WHERE id = ?2", -1, &st, NULL);
    sqlite3_bind_text(st, 1, b->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    bool ok = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (ok)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!ok && last)
        fprintf(stderr, "mlc-bench baseline set: no complete %s%sruns in the store\n", b->kind ? b->kind : "",
                b->kind ? " " : "");
    else if (!ok)
        fprintf(stderr, "mlc-bench baseline set: --run %s: no such run in the store\n", b->run);
    return ok;
}

static int exec(sqlite3 *db, const char *sql, const char *name, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "mlc-bench baseline: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    return 0;
}

static int cmd_set(sqlite3 *db, const baseline_args *b)
{
    const char *meaning = mlc_compare_ref_meaning(b->name);
    if (meaning) {
        fprintf(stderr, "mlc-bench baseline set: '%s' cannot name a baseline: as a reference it means %s\n",
                b->name, meaning);
        return 2;
    }
    int64_t id;
    if (!pick_run(db, b, &id))
        return 2;
    if (exec(db, "INSERT INTO baselines (name, run_id) VALUES (?1, ?2)"
                 " ON CONFLICT(name) DO UPDATE SET run_id = excluded.run_id", b->name, id))
        return 1;
    printf("baseline '%s' -> run %lld\n", b->name, (long long)id);
    return 0;
}

static int cmd_rm(sqlite3 *db, const baseline_args *b)
{
    if (exec(db, "DELETE FROM baselines WHERE name = ?1", b->name, 0))
        return 1;
    if (sqlite3_changes(db) == 0) {
        fprintf(stderr, "mlc-bench baseline rm: no baseline named '%s'\n", b->name);
        return 2;
    }
    printf("baseline '%s' removed\n", b->name);
    return 0;
}

/* list (name NULL) or show NAME: name, run, kind, status, model, started, git sha. */
static int cmd_list(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT b.name, r.id, r.kind, r.status, coalesce(r.model_path, ''), r.started,"
                           " coalesce(r.git_sha, '') FROM baselines b JOIN runs r ON r.id = b.run_id"
                           " WHERE ?1 IS NULL OR b.name = ?1 ORDER BY b.name", -1, &st, NULL);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int n = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (!n++)
            printf("%-24s %6s %-6s %-9s %-24s %-40s %s\n", "name", "run", "kind", "status", "started", "model",
                   "git sha");
        printf("%-24s %6lld %-6s %-9s %-24s %-40s %s\n", sqlite3_column_text(st, 0),
               (long long)sqlite3_column_int64(st, 1), sqlite3_column_text(st, 2), sqlite3_column_text(st, 3),
               sqlite3_column_text(st, 5), sqlite3_column_text(st, 4), sqlite3_column_text(st, 6));
    }
    sqlite3_finalize(st);
    if (!n && name) {
        fprintf(stderr, "mlc-bench baseline show: no baseline named '%s'\n", name);
        return 2;
    }
    if (!n)
        printf("no baselines (mlc-bench baseline set NAME names a run)\n");
    return 0;
}

int mlc_cmd_baseline(int argc, char **argv)
{
    baseline_args b;
    int rc = parse_baseline(argc, argv, &b);
    if (rc >= 0)
        return rc;
    FILE *probe = fopen(b.db, "rb");
    if (!probe) {
        fprintf(stderr, "mlc-bench baseline: %s: no such store\n", b.db);
        return 2;
    }
    fclose(probe);
    /* list and show only read: a store the user may not write, or an older schema, is read
     * as it is (never migrated); set and rm write. */
    const bool writes = !strcmp(b.verb, "set") || !strcmp(b.verb, "rm");
    mlc_store *st = NULL;
    mlc_err err;
    if ((writes ? mlc_store_open : mlc_store_open_readonly)(b.db, &st, &err)) {
        fprintf(stderr, "mlc-bench baseline: %s\n", err.msg);
        return 2;
    }
    sqlite3 *db = mlc_store_db(st);
    if (!strcmp(b.verb, "set"))
        rc = cmd_set(db, &b);
    else if (!strcmp(b.verb, "rm"))
        rc = cmd_rm(db, &b);
    else
        rc = cmd_list(db, strcmp(b.verb, "show") ? NULL : b.name);
    mlc_store_close(st);
    return rc;
}
