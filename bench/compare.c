/* compare.c: `mlc-bench compare --baseline REF --candidate REF`: the regression gate
 * (compare.h). References are resolved here; the statistics are in stats.c. */
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
#include "stats.h"
#include "store.h"
#include "strbuf.h"

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

/* Most runs one reference may pool (last:N). */
#define MAX_RUNS 256

/* From this many runs on each side, the unit of the test is the run (the median of each
 * run's samples), not the pooled sample. Requests of one run share its conditions (a busy
 * neighbour, a cold cache), so pooled samples understate run-to-run variance and their
 * p-values are optimistic; with runs as units that variance is in the test. Five is the
 * fewest for which the exact one-sided p can reach 0.01 at all (1/C(10,5) = 0.004). */
#define RUN_LEVEL_MIN 5

typedef struct dvec {
    double *v;
    size_t n, cap;
    bool oom;
} dvec;

/* One metric of the comparison: the pooled samples of each side and the verdict. */
typedef struct row {
    char name[128], unit[24];
    int direction;    /* +1 higher is better, -1 lower is better, 0 neither */
    bool det;         /* deterministic: tolerance instead of a test */
    dvec s[2];        /* [0] baseline, [1] candidate samples, pooled over runs */
    dvec runs[2];     /* the median of each run's samples, per side */
    bool run_level;   /* tested on runs[], not s[] */
    double med[2];    /* medians of s */
    double change;    /* (candidate - baseline) / |baseline|, a fraction */
    double limit;     /* the threshold or tolerance that applied, a fraction */
    double floor;     /* noisy metrics: the absolute noise floor, in the metric's unit (0: none) */
    bool gated;       /* false: reported only (reported_only[], not named by --gate) */
    mlc_mwu mw;
    double p_worse;   /* one-sided p of "candidate worse", NaN when not tested */
    const char *verdict; /* "regression", "improved", "~", "ok", "changed", "n/a", "-" */
    char why[96];
} row;

typedef struct table {
    row *r;
    int n, cap;
} table;

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

void mlc_compare_opts_init(mlc_compare_opts *o)
{
    /* 0.5 ms: about the wakeup latency of a loaded machine; a change smaller than that is
     * timing jitter, not the code under test, however many percent of a small figure. */
    *o = (mlc_compare_opts){.alpha = 0.01, .threshold_pct = 5, .tolerance_pct = 0.1,
                            .floors = {{"ms", 0.5}}, .n_floors = 1};
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

static const char *reported_why(const char *name)
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
typedef struct run_meta {
    int64_t id;
    char kind[32], status[16], target[32], backend[32], model[1024], arch[64], quant[64];
    char machine[2048]; /* fingerprint without the build: the code under test may differ */
    char config[4096];
} run_meta;

static void col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static bool load_meta(sqlite3 *db, int64_t id, run_meta *m)
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
static bool check_pair(const run_meta *b, const run_meta *c, bool force)
{
    if (strcmp(b->kind, c->kind)) {
        fprintf(stderr, "mlc-bench compare: run %lld is a '%s' run, run %lld a '%s' run: nothing to compare\n",
                (long long)b->id, b->kind, (long long)c->id, c->kind);
        return false;
    }
    bool model = strcmp(b->model, c->model) || strcmp(b->arch, c->arch) || strcmp(b->quant, c->quant);
    if (model && !force) {
        fprintf(stderr, "mlc-bench compare: mismatched model: run %lld measured %s (%s %s), run %lld %s (%s %s);"
                " --force compares anyway\n", (long long)b->id, b->model, b->arch, b->quant, (long long)c->id,
                c->model, c->arch, c->quant);
        return false;
    }
    if (strcmp(b->machine, c->machine) && !force) {
        fprintf(stderr, "mlc-bench compare: different fingerprints: run %lld ran on [%s], run %lld on [%s];"
                " --force compares anyway\n", (long long)b->id, b->machine, (long long)c->id, c->machine);
        return false;
    }
    if (strcmp(b->config, c->config) || strcmp(b->target, c->target) || strcmp(b->backend, c->backend))
        fprintf(stderr, "mlc-bench compare: note: runs %lld and %lld differ in target, backend or config\n",
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
        snprintf(r->why, sizeof r->why, "reported, not gated: %s", reported_why(r->name));
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
        snprintf(r->why, sizeof r->why, "reported, not gated: %s", reported_why(r->name));
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

static void fmt_p(const row *r, char *buf, size_t cap)
{
    if (isnan(r->p_worse))
        snprintf(buf, cap, "-");
    else if (r->p_worse < 1e-4)
        snprintf(buf, cap, "<0.0001");
    else
        snprintf(buf, cap, "%.4f", r->p_worse);
}

static void fmt_change(const row *r, char *buf, size_t cap)
{
    if (isnan(r->change))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%+.2f%%", 100 * r->change);
}

/* A side's median; "-" when that side did not measure the metric. */
static void fmt_med(double v, const char *fmt, char *buf, size_t cap)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, fmt, v);
}

/* "n (b/c)": samples, or runs when runs are the unit. */
static void fmt_n(const row *r, char *buf, size_t cap)
{
    const dvec *v = r->run_level ? r->runs : r->s;
    snprintf(buf, cap, "%zu/%zu%s", v[0].n, v[1].n, r->run_level ? " runs" : "");
}

static void print_table(const table *t, const char *bd, const char *cd, int regressions)
{
    printf("baseline:  %s\ncandidate: %s\n", bd, cd);
    printf("%-34s %12s %12s %9s %8s %11s  %s\n", "metric", "baseline", "candidate", "change", "p", "n (b/c)",
           "verdict");
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->r[i];
        char p[16], ch[24], n[32], m0[32], m1[32];
        fmt_p(r, p, sizeof p);
        fmt_change(r, ch, sizeof ch);
        fmt_n(r, n, sizeof n);
        fmt_med(r->med[0], "%.4g", m0, sizeof m0);
        fmt_med(r->med[1], "%.4g", m1, sizeof m1);
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
        fmt_p(r, p, sizeof p);
        fmt_change(r, ch, sizeof ch);
        fmt_n(r, n, sizeof n);
        fmt_med(r->med[0], "%.4g", m0, sizeof m0);
        fmt_med(r->med[1], "%.4g", m1, sizeof m1);
        bool bad = !strcmp(r->verdict, "regression") || !strcmp(r->verdict, "changed");
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
        fmt_p(r, p, sizeof p);
        fmt_change(r, ch, sizeof ch);
        fmt_med(r->med[0], "%.6g", m0, sizeof m0);
        fmt_med(r->med[1], "%.6g", m1, sizeof m1);
        fputs("  <testcase classname=\"mlc-bench.compare\" name=\"", f);
        xml_text(f, r->name);
        snprintf(msg, sizeof msg, "%s: %s -> %s (%s, p %s): %s", r->verdict, m0, m1, ch, p, r->why);
        if (!strcmp(r->verdict, "regression") || !strcmp(r->verdict, "changed")) {
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

static void free_table(table *t)
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
static void unknown_key(const table *t, const char *flag, const char *arg, size_t len, bool units)
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
    fprintf(stderr, "mlc-bench compare: %s %s: no compared metric %s '%.*s' (%s)\n", flag, arg,
            units ? "has the name or unit" : "is named", (int)len, arg, b.p ? b.p : "");
    free(b.p);
}

/* Every name given to --threshold, --tolerance, --noise-floor and --gate matches something
 * compared; false with a message naming the first that does not. */
static bool check_keys(const table *t, const mlc_compare_opts *o)
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
                unknown_key(t, pct[k].flag, pct[k].ov[i].pattern, len, false);
                return false;
            }
        }
    }
    for (int i = 0; i < o->n_floors; i++) {
        if (o->floors[i].given && !key_known(t, o->floors[i].key, strlen(o->floors[i].key), true)) {
            unknown_key(t, "--noise-floor", o->floors[i].key, strlen(o->floors[i].key), true);
            return false;
        }
    }
    for (int i = 0; i < o->n_gate; i++) {
        if (!key_known(t, o->gate[i], strlen(o->gate[i]), false)) {
            unknown_key(t, "--gate", o->gate[i], strlen(o->gate[i]), false);
            return false;
        }
    }
    return true;
}

int mlc_compare_runs(sqlite3 *db, const int64_t *base, int n_base, const char *base_desc, const int64_t *cand,
                     int n_cand, const char *cand_desc, const mlc_compare_opts *o)
{
    run_meta *first = malloc(sizeof *first), *m = malloc(sizeof *m);
    table t = {0};
    int rc = 2;
    if (!first || !m || !n_base || !n_cand)
        goto out;
    for (int i = 0; i < n_base + n_cand; i++) {
        int64_t id = i < n_base ? base[i] : cand[i - n_base];
        if (!load_meta(db, id, i ? m : first)) {
            fprintf(stderr, "mlc-bench compare: no run %lld in the store\n", (long long)id);
            goto out;
        }
        if (i && !check_pair(first, m, o->force))
            goto out;
        if (!add_run(db, id, i < n_base ? 0 : 1, o->metric, &t)) {
            fprintf(stderr, "mlc-bench compare: reading run %lld: %s\n", (long long)id, sqlite3_errmsg(db));
            goto out;
        }
    }
    if (!t.n) {
        fprintf(stderr, "mlc-bench compare: %s and %s have no metrics%s%s%s\n", base_desc, cand_desc,
                o->metric ? " matching '" : "", o->metric ? o->metric : "", o->metric ? "'" : "");
        goto out;
    }
    if (!check_keys(&t, o))
        goto out;
    int regressions = 0;
    for (int i = 0; i < t.n; i++) {
        judge(&t.r[i], o);
        regressions += !strcmp(t.r[i].verdict, "regression") || !strcmp(t.r[i].verdict, "changed");
    }
    rc = emit(&t, base_desc, cand_desc, regressions, o);
out:
    if (rc == 2 && (!first || !m))
        fprintf(stderr, "mlc-bench compare: out of memory\n");
    free_table(&t);
    free(first);
    free(m);
    return rc;
}

/* ------------------------------------------------------------------ references */

typedef struct ref {
    int64_t ids[MAX_RUNS];
    int n;
    char desc[256];
} ref;

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

const char *mlc_compare_ref_meaning(const char *s)
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
    return errno || end == s + 5 || *end || n < 1 || n > MAX_RUNS ? -1 : (int)n;
}

/* label:TEXT: every complete run with that label (newest first). */
static bool resolve_label(sqlite3 *db, const char *s, const char *what, ref *r)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE label = ?1 AND status = 'complete' ORDER BY id DESC", -1, &st,
                       NULL);
    sqlite3_bind_text(st, 1, s + 6, -1, SQLITE_STATIC);
    r->n = 0;
    while (st && r->n < MAX_RUNS && sqlite3_step(st) == SQLITE_ROW)
        r->ids[r->n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!r->n) {
        fprintf(stderr, "mlc-bench compare: --%s %s: no complete run labelled '%s'\n", what, s, s + 6);
        return false;
    }
    snprintf(r->desc, sizeof r->desc, "%s (%d run%s)", s, r->n, r->n == 1 ? "" : "s");
    return true;
}

/* A run id, a baseline name or label:TEXT. False with a message. */
static bool resolve_one(sqlite3 *db, const char *s, const char *what, ref *r)
{
    if (!strncmp(s, "label:", 6))
        return resolve_label(db, s, what, r);
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
        fprintf(stderr, "mlc-bench compare: --%s %s: no run %lld in the store\n", what, s, id);
    else if (!found)
        fprintf(stderr, "mlc-bench compare: --%s %s: no baseline named '%s' and no run with that id"
                " (see mlc-bench baseline list)\n", what, s, s);
    return found;
}

/* Up to n complete runs like anchor (same kind, target, backend, config, model and machine),
 * newest first, with ids below `below` (0: any), skipping `skip`. */
static int runs_like(sqlite3 *db, int64_t anchor, int64_t below, const ref *skip, int n, ref *out)
{
    run_meta *a = malloc(sizeof *a), *m = malloc(sizeof *m);
    sqlite3_stmt *st = NULL;
    out->n = 0;
    if (a && m && load_meta(db, anchor, a))
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
        if (!skipped && load_meta(db, id, m) && !strcmp(m->model, a->model) && !strcmp(m->arch, a->arch) &&
            !strcmp(m->quant, a->quant) && !strcmp(m->machine, a->machine))
            out->ids[out->n++] = id;
    }
    sqlite3_finalize(st);
    free(a);
    free(m);
    return out->n;
}

static void describe_last(ref *r, const char *s)
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
static bool newest(sqlite3 *db, const char *kind, int64_t *id)
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
        fprintf(stderr, "mlc-bench compare: no complete %s%sruns in the store\n", kind ? kind : "", kind ? " " : "");
    return ok;
}

/* Resolves both references. A relative one (last, last:N) is taken relative to the other:
 * the baseline's runs precede the candidate's; with both relative, the candidate is the
 * newest complete run (of --kind) and its like. */
static bool resolve(sqlite3 *db, const char *bs, const char *cs, const char *kind, ref *b, ref *c)
{
    int nb = last_n(bs), nc = last_n(cs);
    if (nb < 0 || nc < 0) {
        fprintf(stderr, "mlc-bench compare: '%s': last:N needs N in [1, %d]\n", nb < 0 ? bs : cs, MAX_RUNS);
        return false;
    }
    if (!nb && !resolve_one(db, bs, "baseline", b))
        return false;
    if (!nc && !resolve_one(db, cs, "candidate", c))
        return false;
    if (nc) {
        int64_t anchor;
        if (nb == 0)
            anchor = b->ids[0];
        else if (!newest(db, kind, &anchor))
            return false;
        if (!runs_like(db, anchor, 0, nb ? NULL : b, nc, c)) {
            fprintf(stderr, "mlc-bench compare: --candidate %s: no complete run like run %lld (same kind, model,"
                    " target, config and machine) other than the baseline\n", cs, (long long)anchor);
            return false;
        }
        describe_last(c, cs);
    }
    if (nb) {
        int64_t oldest = c->ids[c->n - 1];
        if (!runs_like(db, c->ids[0], oldest, NULL, nb, b)) {
            fprintf(stderr, "mlc-bench compare: --baseline %s: empty: no complete run like run %lld (same kind,"
                    " model, target, config and machine) before run %lld\n", bs, (long long)c->ids[0],
                    (long long)oldest);
            return false;
        }
        describe_last(b, bs);
    }
    return true;
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
    bool ok = false;
    for (size_t i = 0; i < sizeof reported_only / sizeof reported_only[0]; i++)
        ok |= !strcmp(last_part(v), reported_only[i].name);
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

static int64_t newest_of(const ref *r)
{
    int64_t id = r->ids[0];
    for (int i = 1; i < r->n; i++)
        id = r->ids[i] > id ? r->ids[i] : id;
    return id;
}

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
    run_meta *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    sqlite3 *db = mlc_store_db(st);
    bool both = b && c && load_meta(db, base, b) && load_meta(db, cand, c) && !strcmp(b->kind, "conformance") &&
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
    ref *b = calloc(1, sizeof *b), *cd = calloc(1, sizeof *cd);
    rc = 2;
    if (b && cd && resolve(mlc_store_db(st), c.baseline, c.candidate, c.kind, b, cd)) {
        rc = mlc_compare_runs(mlc_store_db(st), b->ids, b->n, b->desc, cd->ids, cd->n, cd->desc, &c.o);
        if (rc != 2)
            rc = conformance_cases(st, newest_of(b), newest_of(cd), rc);
    } else if (!b || !cd)
        fprintf(stderr, "mlc-bench compare: out of memory\n");
    free(b);
    free(cd);
    mlc_store_close(st);
    return rc;
}
