/* test_load.c: every load path of `mlc-bench run`: the arrival sampler (bench/load.c) on its
 * own, then the binary against the in-process test server, judged on what the store keeps
 * (scheduled times, order, counts), never on tight wall-clock timing: the CI machine is two
 * shared cores, so timing appears only as wide bounds that the server's own delays enforce.
 *
 * Random paths are judged by a one-sample Kolmogorov-Smirnov test against the intended
 * distribution. The p-value uses Kolmogorov's limiting law with Stephens' finite-sample
 * correction (M. A. Stephens, JRSS B 32 (1970)):
 *   P(D_n > d) ~= Q(lambda),  lambda = (sqrt(n) + 0.12 + 0.11/sqrt(n)) d,
 *   Q(l) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 l^2).
 * A sample fails when p < 1e-6. Under the null hypothesis p is uniform on [0, 1], so a correct
 * sampler fails with probability 1e-6 over seeds; the seeds here are fixed, so the outcome is
 * too. Worked out: Q(l) = 1e-6 at l = sqrt(ln(2e6) / 2) = 2.6934 (the k >= 2 terms are below
 * 1e-25 there), so the largest D that passes is 0.0848 for n = 1000 gaps and 0.00851 for
 * n = 100000 draws: a rate 10% off moves the exponential CDF by up to 0.035, which the large
 * samples reject, as the negative controls check. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../bench/load.h"
#include "testserver.h"
#include "util.h"

#define KS_P_MIN 1e-6

typedef double (*cdf_fn)(double x, double rate, double shape);

/* Gamma CDF for the shapes used here, in closed form: shape 1/2 is erf(sqrt(x/theta)),
 * integer shapes 1 - exp(-y) sum_{j<k} y^j / j!  (y = x / theta); theta = 1 / (rate shape). */
static double gamma_cdf(double x, double rate, double shape)
{
    if (x <= 0)
        return 0;
    double y = x * rate * shape;
    if (shape == 0.5)
        return erf(sqrt(y));
    cr_assert(shape == floor(shape) && shape >= 1 && shape <= 10, "no closed form for shape %g", shape);
    double term = 1, sum = 0;
    for (int j = 0; j < (int)shape; j++) {
        sum += term;
        term *= y / (j + 1);
    }
    return 1 - exp(-y) * sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p-value of the one-sample KS test of x[0..n) (sorted in place) against cdf. */
static double ks_p(double *x, int n, cdf_fn cdf, double rate, double shape)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double d = 0;
    for (int i = 0; i < n; i++) {
        double f = cdf(x[i], rate, shape);
        d = fmax(d, fmax((i + 1.0) / n - f, f - (double)i / n));
    }
    double l = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * d, q = 0;
    for (int k = 1; k <= 100; k++)
        q += 2 * ((k % 2) ? 1 : -1) * exp(-2.0 * k * k * l * l);
    cr_log_info("KS: n %d, D %.5f, p %.3g", n, d, fmin(1, fmax(0, q)));
    return fmin(1, fmax(0, q));
}

/* ---------------------------------------------------------------- the sampler alone */

static double *draw(int n, double rate, double shape, uint64_t seed)
{
    mlc_arrivals a;
    mlc_arrivals_init(&a, rate, shape, false, seed, 0);
    double *g = malloc((size_t)n * sizeof *g);
    cr_assert_not_null(g);
    for (int i = 0; i < n; i++)
        g[i] = mlc_arrivals_next_gap(&a);
    return g;
}

Test(load, sampler_matches_gamma_at_every_shape)
{
    const double shapes[] = {0.5, 1, 2, 4};
    const int n = 100000;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        double *g = draw(n, 7.5, shapes[s], 42);
        double mean = 0;
        for (int i = 0; i < n; i++)
            mean += g[i] / n;
        /* mean 1/7.5 s; the sd of the mean is 1/(7.5 sqrt(k n)) <= 0.0006 s: 6 sd of room */
        cr_expect(fabs(mean - 1 / 7.5) < 0.0036, "shape %g: mean gap %g s", shapes[s], mean);
        cr_expect_gt(ks_p(g, n, gamma_cdf, 7.5, shapes[s]), KS_P_MIN, "shape %g", shapes[s]);
        free(g);
    }
}

/* Negative controls: the test rejects a rate 10% off and the wrong shape. */
Test(load, ks_rejects_the_wrong_rate_or_shape)
{
    const int n = 100000;
    double *g = draw(n, 10, 1, 7);
    cr_expect_lt(ks_p(g, n, gamma_cdf, 11, 1), KS_P_MIN);
    cr_expect_lt(ks_p(g, n, gamma_cdf, 10, 2), KS_P_MIN);
    free(g);
}

Test(load, constant_and_infinite_rates)
{
    mlc_arrivals a;
    mlc_arrivals_init(&a, 8, 0.3, true, 1, 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(mlc_arrivals_next_gap(&a), 0.125);
    mlc_arrivals_init(&a, INFINITY, 1, false, 1, 0);
    cr_expect_eq(mlc_arrivals_next_gap(&a), 0);
}

/* The same seed and load point give the same schedule; another load point another one. */
Test(load, schedules_are_seeded)
{
    mlc_arrivals a, b, c;
    mlc_arrivals_init(&a, 3, 0.7, false, 99, 2);
    mlc_arrivals_init(&b, 3, 0.7, false, 99, 2);
    mlc_arrivals_init(&c, 3, 0.7, false, 99, 3);
    int same_c = 0;
    for (int i = 0; i < 50; i++) {
        double x = mlc_arrivals_next_gap(&a);
        cr_expect_eq(x, mlc_arrivals_next_gap(&b));
        same_c += x == mlc_arrivals_next_gap(&c);
    }
    cr_expect_lt(same_c, 50);
}

Test(load, sweep_rates_lie_between_ascending)
{
    mlc_load_point p[MLC_LOAD_MAX_POINTS];
    int n = 0;
    char why[160];
    mlc_load_plan_sweep(p, &n);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(p[0].name, "sync");
    cr_expect(p[0].kind == MLC_LOAD_CONCURRENCY && p[0].concurrency == 1);
    cr_expect(p[1].kind == MLC_LOAD_RATE && isinf(p[1].rate));
    cr_assert(mlc_load_sweep_rates(2, 10, 3, p, &n, why, sizeof why));
    cr_assert_eq(n, 5);
    cr_expect(p[2].rate == 4 && p[3].rate == 6 && p[4].rate == 8);
    cr_expect_str_eq(p[2].name, "r=4");
    /* Maximum throughput below the synchronous one (a server that does worse under load):
     * still ascending, between the two. */
    n = 2;
    cr_assert(mlc_load_sweep_rates(10, 2, 1, p, &n, why, sizeof why));
    cr_expect(n == 3 && p[2].rate == 6);
    /* No request succeeded: no rate 0 (that would wait forever for the first arrival). */
    n = 2;
    cr_expect_not(mlc_load_sweep_rates(0, 5, 3, p, &n, why, sizeof why));
    cr_expect_eq(n, 2);
    cr_expect(strstr(why, "sync"), "%s", why);
    cr_expect_not(mlc_load_sweep_rates(5, 0, 3, p, &n, why, sizeof why));
    cr_expect(strstr(why, "max"), "%s", why);
    cr_expect_eq(n, 2);
}

Test(load, plan_points)
{
    mlc_load_point p[MLC_LOAD_MAX_POINTS];
    int n;
    const double conc[] = {4, 8}, rates[] = {2.5, INFINITY};
    cr_assert(mlc_load_plan(conc, 1, rates, 2, false, p, &n));
    cr_assert_eq(n, 2);
    cr_expect(p[0].kind == MLC_LOAD_RATE && p[0].concurrency == 4 && p[0].rate == 2.5);
    cr_expect_str_eq(p[0].name, "r=2.5");
    cr_expect_str_eq(p[1].name, "r=inf");
    cr_expect_not(mlc_load_plan(conc, 2, rates, 1, false, p, &n), "a list of caps is refused");
    cr_assert(mlc_load_plan(conc, 2, NULL, 0, false, p, &n));
    cr_expect(n == 2 && p[1].kind == MLC_LOAD_CONCURRENCY && !strcmp(p[1].name, "c=8"));
    cr_assert(mlc_load_plan(NULL, 0, NULL, 0, false, p, &n));
    cr_expect(n == 1 && p[0].concurrency == 1 && !strcmp(p[0].name, "c=1"));
    cr_assert(mlc_load_plan(conc, 1, NULL, 0, true, p, &n));
    cr_expect(n == 1 && p[0].kind == MLC_LOAD_TRACE && p[0].concurrency == 4);
}

/* ---------------------------------------------------------------- the binary */

static const char *tmp_path(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tu_tmpdir(), name);
    return p[k];
}

/* n prompts "p0 w", "p1 w w", ... asking for max_tokens each. */
static const char *write_prompts(const char *name, int n, int max_tokens)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"prompt\": \"p%d%s\", \"max_tokens\": %d}\n", i, i % 2 ? " w" : "", max_tokens);
    fclose(f);
    return path;
}

/* Runs `mlc-bench run --endpoint URL --db DB ARGS`; returns the exit status, output in *out. */
static int run_bench(ts_server *srv, const char *db, const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:%d --db %s --quiet %s", tu_bin(), ts_port(srv),
             db, args);
    return tu_run(cmd, out);
}

/* The rows of a query returning doubles, one column; *n of them (malloc'd). */
static double *db_doubles(const char *db, const char *sql, int *n)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", db);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    int cap = 64;
    double *v = malloc((size_t)cap * sizeof *v);
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap)
            v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        cr_assert_not_null(v);
        v[(*n)++] = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static double db_one(const char *db, const char *sql)
{
    int n;
    double *v = db_doubles(db, sql, &n);
    cr_assert_eq(n, 1, "%s: %d rows", sql, n);
    double x = v[0];
    free(v);
    return x;
}

/* Gaps between consecutive scheduled times of load point `phase`, in request order. */
static double *scheduled_gaps(const char *db, int phase, int *n)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT scheduled FROM requests WHERE phase = %d ORDER BY idx", phase);
    double *t = db_doubles(db, sql, n);
    for (int i = 0; i + 1 < *n; i++) {
        cr_assert_geq(t[i + 1], t[i], "scheduled times go back at %d", i);
        t[i] = t[i + 1] - t[i];
    }
    --*n;
    return t;
}

/* --rate R [--burstiness K]: the stored schedule of 1000 requests passes KS against the gamma
 * law of shape K and mean 1/R. The cap keeps the test server's load small; it delays
 * sending, never the schedule. */
static void open_loop_ks(double shape, const char *name)
{
    ts_config cfg = {.n_tokens = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("ks.jsonl", 4, 1);
    char args[1024], dbn[64], *out;
    snprintf(dbn, sizeof dbn, "%s.db", name);
    const char *db = tmp_path(dbn);
    snprintf(args, sizeof args, "--dataset %s --num-prompts 1000 --rate 500 --concurrency 16 --burstiness %g --seed 3",
             ds, shape);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    int n;
    double *g = scheduled_gaps(db, 0, &n);
    cr_assert_eq(n, 999);
    cr_expect_gt(ks_p(g, n, gamma_cdf, 500, shape), KS_P_MIN, "shape %g", shape);
    free(g);
    ts_stop(srv);
}

Test(load, poisson_schedule_as_stored, .timeout = 120) { open_loop_ks(1, "ks1"); }
Test(load, gamma_bursty_schedule_as_stored, .timeout = 120) { open_loop_ks(0.5, "ks05"); }
Test(load, gamma_smooth_schedule_as_stored, .timeout = 120) { open_loop_ks(4, "ks4"); }

Test(load, constant_arrivals_are_evenly_spaced, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("const.jsonl", 4, 1);
    const char *db = tmp_path("const.db");
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --num-prompts 20 --rate 40 --arrival constant", ds);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    int n;
    double *g = scheduled_gaps(db, 0, &n);
    cr_assert_eq(n, 19);
    for (int i = 0; i < n; i++) /* 1e-9: a sum of doubles near the monotonic clock's value */
        cr_expect(fabs(g[i] - 0.025) < 1e-9, "gap %d: %.12f s", i, g[i]);
    free(g);
    ts_stop(srv);
}

/* The most requests in flight at once: for each send, how many others were sent no later
 * and had not finished (intervals [sent, done) on the client's clock). */
static int max_in_flight(const char *db, const char *where)
{
    char sql[256];
    int n, m;
    snprintf(sql, sizeof sql, "SELECT sent FROM requests WHERE %s ORDER BY idx", where);
    double *s = db_doubles(db, sql, &n);
    snprintf(sql, sizeof sql, "SELECT done FROM requests WHERE %s ORDER BY idx", where);
    double *d = db_doubles(db, sql, &m);
    cr_assert_eq(n, m);
    int most = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            k += s[j] <= s[i] && d[j] > s[i];
        most = k > most ? k : most;
    }
    free(s);
    free(d);
    return most;
}

/* --rate with --concurrency: 30 arrivals due within about 60 ms, each request held 50 ms by
 * the server, at most 3 in flight: the cap holds, so the last ones leave late. */
Test(load, rate_with_cap_never_exceeds_it, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 2, .ttft_ms = 50};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("cap.jsonl", 4, 2);
    const char *db = tmp_path("cap.db");
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --num-prompts 30 --rate 500 --concurrency 3", ds);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    cr_expect_eq(db_one(db, "SELECT count(*) FROM requests WHERE ok = 1"), 30);
    int most = max_in_flight(db, "1");
    cr_expect(most >= 1 && most <= 3, "%d in flight", most);
    /* 10 rounds of >= 50 ms each: the last request left >= 450 ms after the first, while
     * all were due within 0.2 s (the seed's schedule: 29 gaps of mean 2 ms). */
    cr_expect_lt(db_one(db, "SELECT max(scheduled) - min(scheduled) FROM requests"), 0.2);
    cr_expect_gt(db_one(db, "SELECT max(sent - scheduled) FROM requests"), 0.2, "the cap did not hold sends back");
    ts_stop(srv);
}

static cJSON *read_json(const char *path)
{
    char *s = tu_read_file(path, NULL);
    cr_assert_not_null(s, "%s", path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "no number '%s'", k);
    return v->valuedouble;
}

/* --sweep 3: synchronous, maximum, then 3 rates evenly between the two throughputs,
 * ascending, one after another. */
Test(load, sweep_runs_sync_max_then_rates_in_order, .timeout = 120)
{
    ts_config cfg = {.n_tokens = 2, .ttft_ms = 20, .itl_ms = 5};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("sweep.jsonl", 10, 2);
    const char *db = tmp_path("sweep.db"), *json = tmp_path("sweep.json");
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --sweep 3 --json %s", ds, json);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    cJSON *j = read_json(json);
    cr_assert_eq(cJSON_GetArraySize(j), 5);
    const cJSON *sync = cJSON_GetArrayItem(j, 0), *max = cJSON_GetArrayItem(j, 1);
    cr_expect_str_eq(cJSON_GetObjectItem(sync, "load")->valuestring, "sync");
    cr_expect_eq(num(sync, "max_concurrency"), 1);
    cr_expect_str_eq(cJSON_GetObjectItem(max, "load")->valuestring, "max");
    cr_expect_str_eq(cJSON_GetObjectItem(max, "request_rate")->valuestring, "inf");
    double a = num(sync, "request_throughput"), b = num(max, "request_throughput");
    double lo = fmin(a, b), hi = fmax(a, b);
    for (int i = 1; i <= 3; i++) {
        double r = num(cJSON_GetArrayItem(j, 1 + i), "request_rate"), want = lo + (hi - lo) * i / 4;
        cr_expect(fabs(r - want) <= 1e-9 * want, "rate %d: %g, want %g", i, r, want);
        cr_expect_eq(num(cJSON_GetArrayItem(j, 1 + i), "completed"), 10);
    }
    cJSON_Delete(j);
    /* In order: each load point starts after the previous one ended. */
    for (int p = 1; p < 5; p++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT (SELECT min(sent) FROM requests WHERE phase = %d) - "
                 "(SELECT max(done) FROM requests WHERE phase = %d)", p, p - 1);
        cr_expect_geq(db_one(db, sql), 0, "load point %d overlaps the one before", p);
    }
    cr_expect_eq(max_in_flight(db, "phase = 0"), 1, "sync: one request at a time");
    cr_expect_eq(db_one(db, "SELECT max(scheduled) - min(scheduled) FROM requests WHERE phase = 1"), 0,
                 "max: every request due at once");
    ts_stop(srv);
}

static const char *write_trace(const char *name, const double *ts, int n)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"timestamp\": %.17g, \"prompt\": \"t%d\", \"max_tokens\": 2}\n", ts[i], i);
    fclose(f);
    return path;
}

/* A trace replays at its timestamps divided by --time-scale (2: twice as fast), in order,
 * each request sent no earlier than due; with --duration longer than the trace it still
 * ends with the trace's last entry (it used to send the whole dataset again and again, at
 * once, until the duration ended). */
Test(load, trace_replays_at_its_times_scaled, .timeout = 60)
{
    const double ts[] = {100, 100.05, 100.1, 100.3, 100.31, 100.5}; /* epoch-like: from the first */
    ts_config cfg = {.n_tokens = 2};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *tr = write_trace("trace.jsonl", ts, 6);
    for (int dur = 0; dur < 2; dur++) {
        const char *db = tmp_path(dur ? "trace-d.db" : "trace.db");
        char args[1024], *out;
        snprintf(args, sizeof args, "--dataset %s --time-scale 2 %s", tr, dur ? "--duration 2" : "");
        int before = ts_request_count(srv);
        cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
        free(out);
        cr_expect_eq(ts_request_count(srv) - before, 6, "duration %d", dur);
        int n, m;
        double *s = db_doubles(db, "SELECT scheduled FROM requests ORDER BY idx", &n);
        double *sent = db_doubles(db, "SELECT sent - scheduled FROM requests ORDER BY idx", &m);
        cr_assert_eq(n, 6);
        for (int i = 0; i < n; i++) {
            double want = (ts[i] - ts[0]) / 2;
            cr_expect(fabs(s[i] - s[0] - want) < 1e-9, "entry %d due at %.9f s, want %.9f", i, s[i] - s[0], want);
            cr_expect_geq(sent[i], 0, "entry %d sent before it was due", i);
        }
        free(s);
        free(sent);
    }
    ts_stop(srv);
}

/* --duration stops sending on time and keeps what finished. Every request is held 400 ms by
 * the server, so those sent in the last 0.4 s finish after the stop and must still be kept:
 * what the server received is what the store has, all ok. Scheduled times (the open loop's
 * plan, the closed loop's free slots) are checked before each send, so every stored one lies
 * within the duration of the first; the send times get a wide margin (2 s: a busy shared
 * machine may hold the process back; without the stop, 100000 requests would take minutes). */
static void duration_case(const char *load, const char *name)
{
    ts_config cfg = {.n_tokens = 1, .ttft_ms = 400};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("dur.jsonl", 4, 1);
    char dbn[64], args[1024], *out;
    snprintf(dbn, sizeof dbn, "%s.db", name);
    const char *db = tmp_path(dbn);
    snprintf(args, sizeof args, "--dataset %s --num-prompts 100000 --duration 1 %s", ds, load);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    double stored = db_one(db, "SELECT count(*) FROM requests WHERE ok = 1");
    cr_expect_eq(stored, ts_request_count(srv), "%s: what was sent was kept", load);
    cr_expect_eq(db_one(db, "SELECT count(*) FROM requests"), stored, "%s", load);
    cr_expect_gt(stored, 1);
    cr_expect_lt(db_one(db, "SELECT max(scheduled) - min(scheduled) FROM requests"), 1.0, "%s", load);
    cr_expect_lt(db_one(db, "SELECT max(sent) - min(scheduled) FROM requests"), 3.0, "%s", load);
    cr_expect_gt(db_one(db, "SELECT max(done) - min(scheduled) FROM requests"), 1.0,
                 "%s: nothing finished after the stop", load);
    ts_stop(srv);
}

Test(load, duration_open_loop, .timeout = 60) { duration_case("--rate 20 --seed 1", "dur-rate"); }
Test(load, duration_closed_loop, .timeout = 60) { duration_case("--concurrency 3", "dur-conc"); }

/* --warmup 3: sent first (the server sees them), kept out of the store, the JSON, the samples
 * and the counts: each aggregate is the one of the recorded requests alone. The dataset has
 * 4 prompts asking for 2..5 tokens; the warmup takes the first 3, the load point then all 4
 * (the run's requests continue the dataset's order, so a warmup never changes which prompts
 * are measured): 4 requests and 14 tokens, against 7 and 23 had the warmup counted. */
Test(load, warmup_is_sent_and_excluded, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 0, .ttft_ms = 5, .itl_ms = 1};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *path = tmp_path("warm.jsonl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 4; i++)
        fprintf(f, "{\"prompt\": \"w%d\", \"max_tokens\": %d}\n", i, 2 + i);
    fclose(f);
    const char *db = tmp_path("warm.db"), *json = tmp_path("warm.json");
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --warmup 3 --concurrency 1 --json %s", path, json);
    cr_assert_eq(run_bench(srv, db, args, &out), 0, "%s", out);
    free(out);
    cr_expect_eq(ts_request_count(srv), 7, "warmup requests are sent");
    ts_record rec;
    for (int i = 0; i < 3; i++) {
        cr_assert(ts_record_get(srv, i, &rec));
        char want[8];
        snprintf(want, sizeof want, "w%d", i);
        cr_expect_str_eq(rec.prompt, want, "the warmup goes first");
    }
    cr_expect_eq(db_one(db, "SELECT count(*) FROM requests"), 4);
    cr_expect_eq(db_one(db, "SELECT min(idx) FROM requests"), 3);
    cr_expect_eq(db_one(db, "SELECT count(*) FROM requests WHERE phase < 0"), 0);
    cr_expect_eq(db_one(db, "SELECT count(*) FROM samples WHERE metric = 'c=1/ttft_ms'"), 4);
    cr_expect_eq(db_one(db, "SELECT count(*) FROM samples WHERE metric = 'c=1/e2el_ms'"), 4);
    cJSON *j = read_json(json);
    cr_assert_eq(cJSON_GetArraySize(j), 1);
    const cJSON *ph = cJSON_GetArrayItem(j, 0);
    cr_expect_eq(num(ph, "completed"), 4);
    cr_expect_eq(num(ph, "num_prompts"), 4);
    cr_expect_eq(num(ph, "total_output_tokens"), 14);
    double mean = db_one(db, "SELECT avg((first_token - sent) * 1e3) FROM requests");
    cr_expect(fabs(num(ph, "mean_ttft_ms") - mean) < 1e-6 * mean, "mean TTFT %g, of the store %g",
              num(ph, "mean_ttft_ms"), mean);
    double span = db_one(db, "SELECT max(done) - min(sent) FROM requests");
    cr_expect(fabs(num(ph, "duration") - span) < 1e-9, "duration %g, of the store %g", num(ph, "duration"), span);
    cr_expect_eq(db_one(db, "SELECT value FROM metrics WHERE name = 'c=1/failed'"), 0);
    cJSON_Delete(j);
    ts_stop(srv);
}

/* A sweep whose synchronous point had no success has no rate to sweep: it says so and ends
 * (it used to start a rate of 0 requests/s and wait forever for its second arrival). */
Test(load, sweep_without_success_ends, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 1, .fault = TS_FAULT_HTTP_500};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("sweepfail.jsonl", 3, 1);
    const char *db = tmp_path("sweepfail.db"), *json = tmp_path("sweepfail.json");
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --sweep 2 --json %s", ds, json);
    cr_expect_eq(run_bench(srv, db, args, &out), 1, "%s", out);
    cr_expect(strstr(out, "the sweep stops: no request succeeded at sync"), "%s", out);
    free(out);
    cJSON *j = read_json(json);
    cr_expect_eq(cJSON_GetArraySize(j), 2, "sync and max only");
    cJSON_Delete(j);
    cr_expect_eq(ts_request_count(srv), 6);
    ts_stop(srv);
}

/* While the cap holds arrivals back, the loop waits for a request to finish instead of
 * polling without a pause. Six arrivals due at once, one in flight at a time, each held
 * 300 ms by the server: 1.8 s of waiting. Measured client CPU (user + sys): 0.01-0.024 s,
 * 0.066 s under the sanitizers; the loop that spun used 0.33 s on an idle machine. The bound,
 * 0.2 s, is 3 times the sanitizers' worst. */
Test(load, capped_open_loop_waits_without_spinning, .timeout = 60)
{
    ts_config cfg = {.n_tokens = 2, .ttft_ms = 300};
    ts_server *srv = ts_start(&cfg);
    cr_assert_not_null(srv);
    const char *ds = write_prompts("spin.jsonl", 4, 2);
    char args[1024], *out;
    snprintf(args, sizeof args, "--dataset %s --num-prompts 6 --rate 1000 --concurrency 1", ds);
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    cr_assert_eq(run_bench(srv, tmp_path("spin.db"), args, &out), 0, "%s", out);
    getrusage(RUSAGE_CHILDREN, &after);
    free(out);
    double cpu = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec -
                          before.ru_stime.tv_sec) +
                 (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec + after.ru_stime.tv_usec -
                          before.ru_stime.tv_usec) / 1e6;
    cr_log_info("capped open loop: %.3f s of client CPU over 1.8 s of waiting", cpu);
    cr_expect_lt(cpu, 0.2, "%.3f s of CPU while waiting", cpu);
    ts_stop(srv);
}
