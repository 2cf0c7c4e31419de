/* verdict.c: the verdict rule (verdict.h, compare.h): the samples of each side pooled per
 * metric, and the verdict of each metric; the statistics are in stats.c. */
#include "verdict.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

typedef mlc_dvec dvec;
typedef mlc_verdict_row row;
typedef mlc_verdict_table table;
typedef mlc_run_meta run_meta;

/* Metrics that do not vary between repetitions of the same build on the same input: a
 * change is real however small, so they get a tolerance, not a test. Matched on the last
 * '/'-separated component of the name. */
static const char *const deterministic[] = {"ppl", "ppl_err", "tokens_scored", "failed", "kld_mean",
                                            "kld_p99", "same_top1_pct", "ppl_ratio", "conf_passed",
                                            "conf_failed", "conf_unsupported"};

/* Metrics reported but not gated unless --gate names them, with why. Client delay (scheduled
 * to sent) measures the load generator's own scheduling, not the system under test, and on
 * a busy machine it moves by whole milliseconds between identical runs. A conformance case
 * that a device now declines moves its passed and unsupported counts: reported, while a
 * failing case gates (conf_failed and the case-level comparison). Matched on the last part. */
static const struct {
    const char *name, *why;
} reported_only[] = {
    {"client_delay_ms", "measures the load generator"},
    {"conf_passed", "a case declined or dropped is reported; failures gate"},
    {"conf_unsupported", "a case declined is reported; failures gate"},
};


/* From this many runs on each side, the unit of the test is the run (the median of each
 * run's samples), not the pooled sample. Requests of one run share its conditions (a busy
 * neighbour, a cold cache), so pooled samples understate run-to-run variance and their
 * p-values are optimistic; with runs as units that variance is in the test. Five is the
 * fewest for which the exact one-sided p can reach 0.01 at all (1/C(10,5) = 0.004). */
#define RUN_LEVEL_MIN 5

static void dv_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            d->oom = true;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = x;
}

static const char *last_part(const char *name)
{
    const char *s = strrchr(name, '/');
    return s ? s + 1 : name;
}

/* True when key names the metric: its full name or its last '/'-separated part. */
static bool names(const char *key, size_t len, const char *name)
{
    const char *lp = last_part(name);
    return (strlen(name) == len && !strncmp(name, key, len)) || (strlen(lp) == len && !strncmp(lp, key, len));
}

static bool is_deterministic(const char *name)
{
    for (size_t i = 0; i < sizeof deterministic / sizeof deterministic[0]; i++)
        if (!strcmp(last_part(name), deterministic[i]))
            return true;
    return false;
}

/* The override for name, else the default, as a fraction. */
static double pct_for(const char *name, double all, const mlc_metric_override *ov, int n)
{
    for (int i = n - 1; i >= 0; i--)
        if (names(ov[i].pattern, (size_t)(strrchr(ov[i].pattern, '=') - ov[i].pattern), name))
            return ov[i].pct / 100;
    return all / 100;
}

/* The noise floor of a metric, in its unit: a floor for its name, else for its unit, else 0. */
static double floor_for(const char *name, const char *unit, const mlc_compare_opts *o)
{
    double by_unit = 0;
    for (int i = 0; i < o->n_floors; i++) {
        if (names(o->floors[i].key, strlen(o->floors[i].key), name))
            return o->floors[i].v;
        if (!strcmp(o->floors[i].key, unit))
            by_unit = o->floors[i].v;
    }
    return by_unit;
}

const char *mlc_verdict_reported_why(const char *name)
{
    for (size_t i = 0; i < sizeof reported_only / sizeof reported_only[0]; i++)
        if (!strcmp(last_part(name), reported_only[i].name))
            return reported_only[i].why;
    return "";
}

static bool is_gated(const char *name, const mlc_compare_opts *o)
{
    for (size_t i = 0; i < sizeof reported_only / sizeof reported_only[0]; i++) {
        if (strcmp(last_part(name), reported_only[i].name))
            continue;
        for (int k = 0; k < o->n_gate; k++)
            if (names(o->gate[k], strlen(o->gate[k]), name))
                return true;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ run checks */

/* What must agree between the runs of a comparison. */

static void col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

bool mlc_run_meta_load(sqlite3 *db, int64_t id, run_meta *m)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db,
                       "SELECT r.kind, r.status, r.target, r.backend, r.model_path, r.model_arch, r.model_quant,"
                       " r.config, 'cpu: ' || f.cpu || ' x' || f.cpus || '; gpu: ' || f.gpu || ' (' || f.driver ||"
                       " '); os: ' || f.os || '; compiler: ' || f.compiler || '; flags: ' || f.flags"
                       " FROM runs r JOIN fingerprints f ON f.id = r.fingerprint_id WHERE r.id = ?1",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, id);
    bool ok = st && sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        m->id = id;
        col_text(st, 0, m->kind, sizeof m->kind);
        col_text(st, 1, m->status, sizeof m->status);
        col_text(st, 2, m->target, sizeof m->target);
        col_text(st, 3, m->backend, sizeof m->backend);
        char path[1024];
        col_text(st, 4, path, sizeof path);
        const char *base = strrchr(path, '/');
        snprintf(m->model, sizeof m->model, "%s", base ? base + 1 : path);
        col_text(st, 5, m->arch, sizeof m->arch);
        col_text(st, 6, m->quant, sizeof m->quant);
        col_text(st, 7, m->config, sizeof m->config);
        col_text(st, 8, m->machine, sizeof m->machine);
    }
    sqlite3_finalize(st);
    return ok;
}

/* Refuses (false, message) runs that should not be compared: another kind always; another
 * model or machine unless forced. A config difference is only a note. */
static bool check_pair(const char *cmd, const run_meta *b, const run_meta *c, bool force)
{
    if (strcmp(b->kind, c->kind)) {
        fprintf(stderr, "mlc-bench %s: run %lld is a '%s' run, run %lld a '%s' run: nothing to compare\n", cmd,
                (long long)b->id, b->kind, (long long)c->id, c->kind);
        return false;
    }
    bool model = strcmp(b->model, c->model) || strcmp(b->arch, c->arch) || strcmp(b->quant, c->quant);
    if (model && !force) {
        fprintf(stderr, "mlc-bench %s: mismatched model: run %lld measured %s (%s %s), run %lld %s (%s %s);"
                " --force compares anyway\n", cmd, (long long)b->id, b->model, b->arch, b->quant, (long long)c->id,
                c->model, c->arch, c->quant);
        return false;
    }
    if (strcmp(b->machine, c->machine) && !force) {
        fprintf(stderr, "mlc-bench %s: different fingerprints: run %lld ran on [%s], run %lld on [%s];"
                " --force compares anyway\n", cmd, (long long)b->id, b->machine, (long long)c->id, c->machine);
        return false;
    }
    if (strcmp(b->config, c->config) || strcmp(b->target, c->target) || strcmp(b->backend, c->backend))
        fprintf(stderr, "mlc-bench %s: note: runs %lld and %lld differ in target, backend or config\n", cmd,
                (long long)b->id, (long long)c->id);
    return true;
}

/* ------------------------------------------------------------------ samples */

/* The load point (phase) index of a "LOAD/metric" name in run: load points are stored in
 * phase order, so it is the rank of the prefix's first appearance. -1 when unknown. */
static int phase_of(sqlite3 *db, int64_t run, const char *name)
{
    const char *slash = strchr(name, '/');
    if (!slash)
        return -1;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT lp FROM (SELECT substr(name, 1, instr(name, '/') - 1) AS lp, min(rowid) AS"
                           " first FROM metrics WHERE run_id = ?1 AND instr(name, '/') > 1 GROUP BY lp)"
                           " ORDER BY first", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run);
    int k = 0, found = -1;
    while (st && found < 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *lp = (const char *)sqlite3_column_text(st, 0);
        if (lp && strlen(lp) == (size_t)(slash - name) && !strncmp(lp, name, (size_t)(slash - name)))
            found = k;
        k++;
    }
    sqlite3_finalize(st);
    return found;
}

/* Per-request ITL gaps (float32 little-endian blobs) or TPOT of one load point, in ms. */
static void request_samples(sqlite3 *db, int64_t run, int phase, bool itl, dvec *out)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, itl ? "SELECT itl FROM requests WHERE run_id = ?1 AND phase = ?2 AND ok = 1"
                                 " AND itl IS NOT NULL"
                               : "SELECT (done - first_token) * 1000.0 / (output_tokens - 1) FROM requests"
                                 " WHERE run_id = ?1 AND phase = ?2 AND ok = 1 AND first_token IS NOT NULL"
                                 " AND output_tokens > 1", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, phase);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (!itl) {
            dv_push(out, sqlite3_column_double(st, 0));
            continue;
        }
        const unsigned char *b = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0) / 4;
        for (int i = 0; b && i < n; i++) {
            uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                         (uint32_t)b[4 * i + 3] << 24;
            float f;
            memcpy(&f, &u, sizeof f);
            dv_push(out, f);
        }
    }
    sqlite3_finalize(st);
}

/* The raw samples of one metric of one run: stored samples, else derived from the request
 * records (ITL, TPOT), else the metric's value as a single sample. */
static void run_samples(sqlite3 *db, int64_t run, const char *name, double value, dvec *out)
{
    size_t before = out->n;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT value FROM samples WHERE run_id = ?1 AND metric = ?2 AND value IS NOT NULL"
                           " ORDER BY rep", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        dv_push(out, sqlite3_column_double(st, 0));
    sqlite3_finalize(st);
    const char *lp = last_part(name);
    bool itl = !strcmp(lp, "itl_ms"), tpot = !strcmp(lp, "tpot_ms");
    if (out->n == before && (itl || tpot)) {
        int phase = phase_of(db, run, name);
        if (phase >= 0)
            request_samples(db, run, phase, itl, out);
    }
    if (out->n == before && !isnan(value))
        dv_push(out, value);
}

static row *find_row(table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->r[i].name, name))
            return &t->r[i];
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 32;
        row *r = realloc(t->r, (size_t)cap * sizeof *r);
        if (!r)
            return NULL;
        t->r = r;
        t->cap = cap;
    }
    row *r = &t->r[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->det = is_deterministic(name);
    return r;
}

/* Stat rows a metric's single value is taken from, best first. */
static int stat_rank(const char *stat)
{
    static const char *const order[] = {"value", "median", "mean"};
    for (int i = 0; i < 3; i++)
        if (stat && !strcmp(stat, order[i]))
            return i;
    return 3;
}

/* One metric's single value in a run: the row with the best stat. */
typedef struct mvalue {
    char name[128], unit[24];
    int direction, rank;
    double v;
} mvalue;

/* The metrics of run in storage order, one value each (rows of a name come in any order). */
static mvalue *run_values(sqlite3 *db, int64_t run, const char *filter, int *n)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT name, coalesce(unit, ''), direction, stat, value FROM metrics"
                           " WHERE run_id = ?1 ORDER BY rowid", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run);
    mvalue *v = NULL;
    int cap = 0;
    *n = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || (filter && !strstr(name, filter)))
            continue;
        int i = 0, rank = stat_rank((const char *)sqlite3_column_text(st, 3));
        while (i < *n && strcmp(v[i].name, name))
            i++;
        if (i == *n && *n == cap) {
            mvalue *nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (i == *n)
            v[(*n)++] = (mvalue){.rank = 99};
        if (rank < v[i].rank) {
            snprintf(v[i].name, sizeof v[i].name, "%s", name);
            snprintf(v[i].unit, sizeof v[i].unit, "%s", (const char *)sqlite3_column_text(st, 1));
            v[i].direction = sqlite3_column_int(st, 2);
            v[i].rank = rank;
            v[i].v = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 4);
        }
    }
    sqlite3_finalize(st);
    if (!v)
        v = malloc(sizeof *v); /* no metrics is not an error: an empty, non-NULL list */
    return v;
}

/* Adds every metric of run to side `side` (0 baseline, 1 candidate) of the table. */
static bool add_run(sqlite3 *db, int64_t run, int side, const char *filter, table *t)
{
    int n;
    mvalue *v = run_values(db, run, filter, &n);
    bool ok = v != NULL;
    for (int i = 0; ok && i < n; i++) {
        row *r = find_row(t, v[i].name);
        if (!(ok = r != NULL))
            break;
        snprintf(r->unit, sizeof r->unit, "%s", v[i].unit);
        r->direction = v[i].direction;
        size_t from = r->s[side].n;
        run_samples(db, run, r->name, v[i].v, &r->s[side]);
        if (r->s[side].n > from)
            dv_push(&r->runs[side], mlc_median(r->s[side].v + from, r->s[side].n - from));
        ok = !r->s[side].oom && !r->runs[side].oom;
    }
    free(v);
    return ok;
}

/* ------------------------------------------------------------------ verdicts */

static void judge_deterministic(row *r, const mlc_compare_opts *o)
{
    r->limit = pct_for(r->name, o->tolerance_pct, o->tolerances, o->n_tolerances);
    double d = r->med[1] - r->med[0];
    bool worse = r->direction < 0 ? d > 0 : r->direction > 0 ? d < 0 : d != 0;
    bool beyond = fabs(d) > r->limit * fabs(r->med[0]) && d != 0;
    r->gated = is_gated(r->name, o);
    if (!beyond) {
        r->verdict = "ok";
        snprintf(r->why, sizeof r->why, "within tolerance %.3g%%", 100 * r->limit);
    } else if (!r->gated) {
        r->verdict = "-";
        snprintf(r->why, sizeof r->why, "reported, not gated: %s", mlc_verdict_reported_why(r->name));
    } else if (worse) {
        r->verdict = r->direction ? "regression" : "changed";
        snprintf(r->why, sizeof r->why, "beyond tolerance %.3g%%", 100 * r->limit);
    } else {
        r->verdict = "improved";
        snprintf(r->why, sizeof r->why, "beyond tolerance %.3g%%", 100 * r->limit);
    }
}

static void judge_noisy(row *r, const mlc_compare_opts *o)
{
    r->limit = pct_for(r->name, o->threshold_pct, o->thresholds, o->n_thresholds);
    r->floor = floor_for(r->name, r->unit, o);
    r->gated = is_gated(r->name, o);
    const dvec *b = r->run_level ? &r->runs[0] : &r->s[0], *c = r->run_level ? &r->runs[1] : &r->s[1];
    if (mlc_mann_whitney(c->v, c->n, b->v, b->n, &r->mw)) {
        r->verdict = "n/a";
        snprintf(r->why, sizeof r->why, "no test (bad samples)");
        return;
    }
    if (r->direction == 0) {
        r->verdict = "-";
        snprintf(r->why, sizeof r->why, "no direction: not gated");
        return;
    }
    /* Candidate worse = larger when lower is better, smaller when higher is better. */
    r->p_worse = r->direction < 0 ? r->mw.p_greater : r->mw.p_less;
    if (!r->gated) {
        r->verdict = "-";
        snprintf(r->why, sizeof r->why, "reported, not gated: %s", mlc_verdict_reported_why(r->name));
        return;
    }
    double p_better = r->direction < 0 ? r->mw.p_less : r->mw.p_greater;
    double moved = r->direction < 0 ? r->change : -r->change; /* > 0: worse */
    bool above_floor = fabs(r->med[1] - r->med[0]) > r->floor;
    bool sig_worse = r->p_worse < o->alpha, beyond_worse = moved > r->limit;
    bool sig_better = p_better < o->alpha, beyond_better = -moved > r->limit;
    bool big_worse = beyond_worse && above_floor, big_better = beyond_better && above_floor;
    char floor[48] = "";
    if (r->floor > 0)
        snprintf(floor, sizeof floor, " and %g %s", r->floor, r->unit);
    if (sig_worse && big_worse) {
        r->verdict = "regression";
        snprintf(r->why, sizeof r->why, "p < %g and beyond %.3g%%%s", o->alpha, 100 * r->limit, floor);
    } else if (sig_better && big_better) {
        r->verdict = "improved";
        snprintf(r->why, sizeof r->why, "p < %g and beyond %.3g%%%s", o->alpha, 100 * r->limit, floor);
    } else if ((beyond_worse || beyond_better) && !above_floor) {
        r->verdict = "~";
        snprintf(r->why, sizeof r->why, "beyond %.3g%% but within the noise floor %g %s", 100 * r->limit, r->floor,
                 r->unit);
    } else if (big_worse || big_better) {
        r->verdict = "~";
        snprintf(r->why, sizeof r->why, "beyond %.3g%% but not significant", 100 * r->limit);
    } else if (sig_worse || sig_better) {
        r->verdict = "~";
        snprintf(r->why, sizeof r->why, "significant but within threshold %.3g%%", 100 * r->limit);
    } else {
        r->verdict = "ok";
        snprintf(r->why, sizeof r->why, "no significant change");
    }
}

static void judge(row *r, const mlc_compare_opts *o)
{
    r->p_worse = NAN;
    r->change = NAN;
    r->gated = true;
    if (!r->s[0].n || !r->s[1].n) {
        /* Measured on one side only: shown as missing, not as 0, and not a regression (the
         * gate compares what both sides measured; failures are gated by `failed`). */
        for (int k = 0; k < 2; k++)
            r->med[k] = r->s[k].n ? mlc_median(r->s[k].v, r->s[k].n) : NAN;
        r->verdict = "n/a";
        snprintf(r->why, sizeof r->why, "only in the %s", r->s[0].n ? "baseline" : "candidate");
        return;
    }
    r->run_level = !r->det && r->runs[0].n >= RUN_LEVEL_MIN && r->runs[1].n >= RUN_LEVEL_MIN;
    for (int k = 0; k < 2; k++)
        r->med[k] = r->run_level ? mlc_median(r->runs[k].v, r->runs[k].n) : mlc_median(r->s[k].v, r->s[k].n);
    if (r->med[0] != 0)
        r->change = (r->med[1] - r->med[0]) / fabs(r->med[0]);
    else
        r->change = r->med[1] == 0 ? 0 : copysign(INFINITY, r->med[1]);
    if (r->det)
        judge_deterministic(r, o);
    else
        judge_noisy(r, o);
}

/* ------------------------------------------------------------------ output */

void mlc_verdict_fmt_p(const row *r, char *buf, size_t cap)
{
    if (isnan(r->p_worse))
        snprintf(buf, cap, "-");
    else if (r->p_worse < 1e-4)
        snprintf(buf, cap, "<0.0001");
    else
        snprintf(buf, cap, "%.4f", r->p_worse);
}

void mlc_verdict_fmt_change(const row *r, char *buf, size_t cap)
{
    if (isnan(r->change))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%+.2f%%", 100 * r->change);
}

/* A side's median; "-" when that side did not measure the metric. */
void mlc_verdict_fmt_med(double v, const char *fmt, char *buf, size_t cap)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, fmt, v);
}

/* "n (b/c)": samples, or runs when runs are the unit. */
void mlc_verdict_fmt_n(const row *r, char *buf, size_t cap)
{
    const dvec *v = r->run_level ? r->runs : r->s;
    snprintf(buf, cap, "%zu/%zu%s", v[0].n, v[1].n, r->run_level ? " runs" : "");
}

void mlc_verdict_free(table *t)
{
    for (int i = 0; i < t->n; i++) {
        for (int k = 0; k < 2; k++) {
            free(t->r[i].s[k].v);
            free(t->r[i].runs[k].v);
        }
    }
    free(t->r);
}

/* Does key (len bytes) name a compared metric, or (units) a compared metric's unit? */
static bool key_known(const table *t, const char *key, size_t len, bool units)
{
    for (int i = 0; i < t->n; i++)
        if (names(key, len, t->r[i].name) || (units && strlen(t->r[i].unit) == len && !strncmp(t->r[i].unit, key, len)))
            return true;
    return false;
}

/* One line for a per-metric option whose name matches nothing compared (a typo would
 * otherwise be ignored silently): the option, and the names (and units) it could take. */
static void unknown_key(const char *cmd, const table *t, const char *flag, const char *arg, size_t len, bool units)
{
    mlc_strbuf b = {0};
    for (int pass = 0; pass < 1 + units; pass++) {
        mlc_sb_printf(&b, "%s", pass ? "; units: " : "metrics: ");
        size_t start = b.len;
        for (int i = 0; i < t->n; i++) {
            const char *s = pass ? t->r[i].unit : last_part(t->r[i].name);
            bool seen = !*s;
            for (int k = 0; k < i && !seen; k++)
                seen = !strcmp(s, pass ? t->r[k].unit : last_part(t->r[k].name));
            if (!seen)
                mlc_sb_printf(&b, "%s%s", b.len > start ? ", " : "", s);
        }
    }
    fprintf(stderr, "mlc-bench %s: %s %s: no compared metric %s '%.*s' (%s)\n", cmd, flag, arg,
            units ? "has the name or unit" : "is named", (int)len, arg, b.p ? b.p : "");
    free(b.p);
}

/* Every name given to --threshold, --tolerance, --noise-floor and --gate matches something
 * compared; false with a message naming the first that does not. */
static bool check_keys(const char *cmd, const table *t, const mlc_compare_opts *o)
{
    const struct {
        const char *flag;
        const mlc_metric_override *ov;
        int n;
    } pct[] = {{"--threshold", o->thresholds, o->n_thresholds}, {"--tolerance", o->tolerances, o->n_tolerances}};
    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; i < pct[k].n; i++) {
            size_t len = (size_t)(strrchr(pct[k].ov[i].pattern, '=') - pct[k].ov[i].pattern);
            if (!key_known(t, pct[k].ov[i].pattern, len, false)) {
                unknown_key(cmd, t, pct[k].flag, pct[k].ov[i].pattern, len, false);
                return false;
            }
        }
    }
    for (int i = 0; i < o->n_floors; i++) {
        if (o->floors[i].given && !key_known(t, o->floors[i].key, strlen(o->floors[i].key), true)) {
            unknown_key(cmd, t, "--noise-floor", o->floors[i].key, strlen(o->floors[i].key), true);
            return false;
        }
    }
    for (int i = 0; i < o->n_gate; i++) {
        if (!key_known(t, o->gate[i], strlen(o->gate[i]), false)) {
            unknown_key(cmd, t, "--gate", o->gate[i], strlen(o->gate[i]), false);
            return false;
        }
    }
    return true;
}

bool mlc_verdict_is_bad(const row *r)
{
    return !strcmp(r->verdict, "regression") || !strcmp(r->verdict, "changed");
}

/* Loads, checks and adds every run of both sides to t; false with a message. */
static bool load_sides(sqlite3 *db, const char *cmd, const int64_t *base, int n_base, const int64_t *cand,
                       int n_cand, const mlc_compare_opts *o, table *t)
{
    run_meta *first = malloc(sizeof *first), *m = malloc(sizeof *m);
    bool ok = first && m;
    if (!ok)
        fprintf(stderr, "mlc-bench %s: out of memory\n", cmd);
    for (int i = 0; ok && i < n_base + n_cand; i++) {
        int64_t id = i < n_base ? base[i] : cand[i - n_base];
        if (!(ok = mlc_run_meta_load(db, id, i ? m : first)))
            fprintf(stderr, "mlc-bench %s: no run %lld in the store\n", cmd, (long long)id);
        else if (i && !(ok = check_pair(cmd, first, m, o->force)))
            break;
        else if (!(ok = add_run(db, id, i < n_base ? 0 : 1, o->metric, t)))
            fprintf(stderr, "mlc-bench %s: reading run %lld: %s\n", cmd, (long long)id, sqlite3_errmsg(db));
    }
    free(first);
    free(m);
    return ok;
}

int mlc_verdict_build(sqlite3 *db, const char *cmd, const int64_t *base, int n_base, const char *base_desc,
                      const int64_t *cand, int n_cand, const char *cand_desc, const mlc_compare_opts *o, table *t)
{
    *t = (table){0};
    if (!n_base || !n_cand || !load_sides(db, cmd, base, n_base, cand, n_cand, o, t))
        goto fail;
    if (!t->n) {
        fprintf(stderr, "mlc-bench %s: %s and %s have no metrics%s%s%s\n", cmd, base_desc, cand_desc,
                o->metric ? " matching '" : "", o->metric ? o->metric : "", o->metric ? "'" : "");
        goto fail;
    }
    if (!check_keys(cmd, t, o))
        goto fail;
    for (int i = 0; i < t->n; i++) {
        judge(&t->r[i], o);
        t->regressions += mlc_verdict_is_bad(&t->r[i]);
    }
    return 0;
fail:
    mlc_verdict_free(t);
    *t = (table){0};
    return 2;
}
