/* runref.c: the grammar of run references (runref.h), resolved against the store. */
#include "runref.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

/* A reference that strtoll reads whole is a run id. */
static bool is_run_id(const char *s, long long *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (id)
        *id = v;
    return !errno && end != s && !*end;
}

const char *mlc_runref_meaning(const char *s)
{
    if (!strcmp(s, "last") || !strncmp(s, "last:", 5))
        return "the newest runs (last, last:N)";
    if (!strncmp(s, "label:", 6))
        return "the runs with a label (label:TEXT)";
    if (is_run_id(s, NULL))
        return "a run id";
    return NULL;
}

/* "last" = last:1. Returns N, 0 when ref is not of this form, -1 when malformed. */
static int last_n(const char *s)
{
    if (!strcmp(s, "last"))
        return 1;
    if (strncmp(s, "last:", 5))
        return 0;
    char *end;
    errno = 0;
    long n = strtol(s + 5, &end, 10);
    return errno || end == s + 5 || *end || n < 1 || n > MLC_RUNREF_MAX_RUNS ? -1 : (int)n;
}

/* label:TEXT: every complete run with that label (newest first). */
static bool resolve_label(sqlite3 *db, const char *cmd, const char *s, const char *what, mlc_runref *r)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE label = ?1 AND status = 'complete' ORDER BY id DESC", -1, &st,
                       NULL);
    sqlite3_bind_text(st, 1, s + 6, -1, SQLITE_STATIC);
    r->n = 0;
    while (st && r->n < MLC_RUNREF_MAX_RUNS && sqlite3_step(st) == SQLITE_ROW)
        r->ids[r->n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!r->n) {
        fprintf(stderr, "mlc-bench %s: --%s %s: no complete run labelled '%s'\n", cmd, what, s, s + 6);
        return false;
    }
    snprintf(r->desc, sizeof r->desc, "%s (%d run%s)", s, r->n, r->n == 1 ? "" : "s");
    return true;
}

/* A run id, a baseline name or label:TEXT. False with a message. */
static bool resolve_one(sqlite3 *db, const char *cmd, const char *s, const char *what, mlc_runref *r)
{
    if (!strncmp(s, "label:", 6))
        return resolve_label(db, cmd, s, what, r);
    long long id;
    bool numeric = is_run_id(s, &id);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, numeric ? "SELECT id FROM runs WHERE id = ?1" : "SELECT run_id FROM baselines WHERE name = ?1",
                       -1, &st, NULL);
    if (numeric)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC);
    bool found = st && sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        r->ids[0] = sqlite3_column_int64(st, 0);
        r->n = 1;
        if (numeric)
            snprintf(r->desc, sizeof r->desc, "run %lld", (long long)r->ids[0]);
        else
            snprintf(r->desc, sizeof r->desc, "'%s' (run %lld)", s, (long long)r->ids[0]);
    }
    sqlite3_finalize(st);
    if (!found && numeric)
        fprintf(stderr, "mlc-bench %s: --%s %s: no run %lld in the store\n", cmd, what, s, id);
    else if (!found)
        fprintf(stderr, "mlc-bench %s: --%s %s: no baseline named '%s' and no run with that id"
                " (see mlc-bench baseline list)\n", cmd, what, s, s);
    return found;
}

/* Up to n complete runs like anchor (same kind, target, backend, config, model and machine),
 * newest first, with ids below `below` (0: any), skipping `skip`. */
static int runs_like(sqlite3 *db, int64_t anchor, int64_t below, const mlc_runref *skip, int n, mlc_runref *out)
{
    mlc_run_meta *a = malloc(sizeof *a), *m = malloc(sizeof *m);
    sqlite3_stmt *st = NULL;
    out->n = 0;
    if (a && m && mlc_run_meta_load(db, anchor, a))
        sqlite3_prepare_v2(db, "SELECT r.id FROM runs r, runs x WHERE x.id = ?1 AND r.kind = x.kind AND"
                               " r.status = 'complete' AND (?2 = 0 OR r.id < ?2) AND r.config IS x.config AND"
                               " r.target IS x.target AND r.backend IS x.backend ORDER BY r.id DESC", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, anchor);
    sqlite3_bind_int64(st, 2, below);
    while (st && out->n < n && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        bool skipped = false;
        for (int i = 0; skip && i < skip->n; i++)
            skipped |= skip->ids[i] == id;
        if (!skipped && mlc_run_meta_load(db, id, m) && !strcmp(m->model, a->model) && !strcmp(m->arch, a->arch) &&
            !strcmp(m->quant, a->quant) && !strcmp(m->machine, a->machine))
            out->ids[out->n++] = id;
    }
    sqlite3_finalize(st);
    free(a);
    free(m);
    return out->n;
}

static void describe_last(mlc_runref *r, const char *s)
{
    if (r->n == 1) {
        snprintf(r->desc, sizeof r->desc, "%s (run %lld)", s, (long long)r->ids[0]);
        return;
    }
    snprintf(r->desc, sizeof r->desc, "%s (%d runs, %lld..%lld)", s, r->n, (long long)r->ids[r->n - 1],
             (long long)r->ids[0]);
}

/* The newest complete run, of `kind` when given: the anchor when both references are
 * relative. */
static bool newest(sqlite3 *db, const char *cmd, const char *kind, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT max(id) FROM runs WHERE status = 'complete' AND (?1 IS NULL OR kind = ?1)", -1,
                       &st, NULL);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    bool ok = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (ok)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!ok)
        fprintf(stderr, "mlc-bench %s: no complete %s%sruns in the store\n", cmd, kind ? kind : "", kind ? " " : "");
    return ok;
}

/* Resolves both references. A relative one (last, last:N) is taken relative to the other:
 * the baseline's runs precede the candidate's; with both relative, the candidate is the
 * newest complete run (of --kind) and its like. */
bool mlc_runref_resolve(sqlite3 *db, const char *cmd, const char *bs, const char *cs, const char *kind,
                        mlc_runref *b, mlc_runref *c)
{
    int nb = last_n(bs), nc = last_n(cs);
    if (nb < 0 || nc < 0) {
        fprintf(stderr, "mlc-bench %s: '%s': last:N needs N in [1, %d]\n", cmd, nb < 0 ? bs : cs, MLC_RUNREF_MAX_RUNS);
        return false;
    }
    if (!nb && !resolve_one(db, cmd, bs, "baseline", b))
        return false;
    if (!nc && !resolve_one(db, cmd, cs, "candidate", c))
        return false;
    if (nc) {
        int64_t anchor;
        if (nb == 0)
            anchor = b->ids[0];
        else if (!newest(db, cmd, kind, &anchor))
            return false;
        if (!runs_like(db, anchor, 0, nb ? NULL : b, nc, c)) {
            fprintf(stderr, "mlc-bench %s: --candidate %s: no complete run like run %lld (same kind, model,"
                    " target, config and machine) other than the baseline\n", cmd, cs, (long long)anchor);
            return false;
        }
        describe_last(c, cs);
    }
    if (nb) {
        int64_t oldest = c->ids[c->n - 1];
        if (!runs_like(db, c->ids[0], oldest, NULL, nb, b)) {
            fprintf(stderr, "mlc-bench %s: --baseline %s: empty: no complete run like run %lld (same kind,"
                    " model, target, config and machine) before run %lld\n", cmd, bs, (long long)c->ids[0],
                    (long long)oldest);
            return false;
        }
        describe_last(b, bs);
    }
    return true;
}

bool mlc_runref_resolve_one(sqlite3 *db, const char *cmd, const char *s, const char *what, const char *kind,
                            mlc_runref *r)
{
    int n = last_n(s);
    if (n < 0) {
        fprintf(stderr, "mlc-bench %s: --%s %s: last:N needs N in [1, %d]\n", cmd, what, s, MLC_RUNREF_MAX_RUNS);
        return false;
    }
    if (!n)
        return resolve_one(db, cmd, s, what, r);
    int64_t anchor;
    if (!newest(db, cmd, kind, &anchor) || !runs_like(db, anchor, 0, NULL, n, r))
        return false;
    describe_last(r, s);
    return true;
}

int64_t mlc_runref_newest(const mlc_runref *r)
{
    int64_t id = r->ids[0];
    for (int i = 1; i < r->n; i++)
        id = r->ids[i] > id ? r->ids[i] : id;
    return id;
}
