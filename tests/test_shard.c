/* tests/test_shard.c: `run --shard I/N` and the merge of shard stores into one logical run.
 *
 * The share and the arrival streams are checked on their own (bench/load.c): the shards'
 * requests partition the dataset order, and the union of N open-loop shards' arrivals (each
 * at rate/N, seeded apart) is judged by a one-sample Kolmogorov-Smirnov test against
 * exponential gaps at the full rate, p-value by Kolmogorov's law with Stephens' correction
 * (as tests/test_load.c); it fails when p < 1e-6, which for n = 40000 gaps is D > 0.0135.
 * Measured D 0.0027 to 0.0046; shards each at the full rate give D 0.47 and shards sharing
 * one stream D 0.75 (the negative controls). Then three shard processes on loopback against
 * one `serve --engine null`, merged: counts add up, every percentile of the merged run equals the
 * one computed here from the union of the shards' raw records, a shard killed before it
 * finishes makes the run partial, and merging again changes nothing. No timing assertions. */
#include <criterion/criterion.h>

#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/load.h"
#include "../bench/metrics.h"
#include "util.h"

#define KS_P_MIN 1e-6

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p-value of the KS test of x[0..n) (sorted here) against exponential(rate). */
static double ks_exp_p(double *x, int n, double rate)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double d = 0;
    for (int i = 0; i < n; i++) {
        double f = 1 - exp(-rate * x[i]);
        d = fmax(d, fmax((i + 1.0) / n - f, f - (double)i / n));
    }
    double l = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * d, q = 0;
    for (int k = 1; k <= 100; k++)
        q += 2 * ((k % 2) ? 1 : -1) * exp(-2.0 * k * k * l * l);
    cr_log_info("KS: n %d, D %.5f, p %.3g", n, d, fmin(1, fmax(0, q)));
    return fmin(1, fmax(0, q));
}

/* ---------------------------------------------------------------- the share alone */

Test(shard, shares_partition_the_requests)
{
    const int counts[] = {1, 2, 3, 4, 7, 64};
    const int64_t totals[] = {0, 1, 5, 31, 1000, 1001};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++) {
            int64_t n = totals[t], sum = 0;
            char *seen = calloc((size_t)n + 1, 1);
            for (int i = 0; i < counts[c]; i++) {
                int64_t share = mlc_shard_share(n, i, counts[c]);
                sum += share;
                for (int64_t k = 0; k < share; k++) {
                    int64_t g = mlc_shard_request(k, i, counts[c]);
                    cr_assert(g >= 0 && g < n, "N %d I %d k %lld -> %lld", counts[c], i, (long long)k, (long long)g);
                    cr_expect_eq(seen[g]++, 0, "request %lld twice", (long long)g);
                }
            }
            cr_expect_eq(sum, n, "N %d total %lld", counts[c], (long long)n);
            free(seen);
        }
    }
}

Test(shard, shard_option_is_parsed_strictly)
{
    int i = -1, n = -1;
    cr_expect(mlc_shard_parse("0/1", &i, &n) && i == 0 && n == 1);
    cr_expect(mlc_shard_parse("3/4", &i, &n) && i == 3 && n == 4);
    const char *bad[] = {"4/4", "-1/4", "1", "1/", "/4", "1/0", "a/b", "1/4x", "1/5000", ""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        cr_expect(!mlc_shard_parse(bad[k], &i, &n), "'%s' accepted", bad[k]);
}

/* Arrival times in [0, horizon) of shards 0..n-1, each with its own stream (or, with
 * same_stream, all with shard 0's), merged; returns how many, gaps in gaps[]. */
static int merged_gaps(double rate, int n, double horizon, bool same_stream, bool full_rate, double *gaps, int cap)
{
    double *t = malloc((size_t)cap * sizeof *t);
    int m = 0;
    for (int i = 0; i < n; i++) {
        mlc_arrivals a;
        mlc_shard_arrivals(&a, full_rate ? rate * n : rate, 1, false, 42, 0, same_stream ? 0 : i, n);
        for (double x = mlc_arrivals_next_gap(&a); x < horizon && m < cap; x += mlc_arrivals_next_gap(&a))
            t[m++] = x;
    }
    qsort(t, (size_t)m, sizeof *t, cmp_double);
    for (int k = 1; k < m; k++)
        gaps[k - 1] = t[k] - t[k - 1];
    free(t);
    return m - 1;
}

Test(shard, merged_open_loop_arrivals_are_poisson_at_the_full_rate)
{
    enum { CAP = 200000 };
    double *g = malloc(CAP * sizeof *g);
    const int shards[] = {2, 3, 4, 16};
    for (size_t s = 0; s < sizeof shards / sizeof shards[0]; s++) {
        int n = merged_gaps(50, shards[s], 800, false, false, g, CAP);
        cr_expect(n > 38000 && n < 42000, "%d gaps", n); /* 40000 expected, sd 200 */
        cr_expect_gt(ks_exp_p(g, n, 50), KS_P_MIN, "%d shards", shards[s]);
    }
    /* Negative controls: each shard at the full rate, or shards sharing one stream. */
    int n = merged_gaps(50, 4, 800, false, true, g, CAP);
    cr_expect_lt(ks_exp_p(g, n, 50), KS_P_MIN);
    n = merged_gaps(50, 4, 800, true, false, g, CAP);
    cr_expect_lt(ks_exp_p(g, n, 50), KS_P_MIN);
    free(g);
}

Test(shard, one_shard_is_the_unsharded_stream)
{
    mlc_arrivals a, b;
    mlc_arrivals_init(&a, 7, 1, false, 9, 2);
    mlc_shard_arrivals(&b, 7, 1, false, 9, 2, 0, 1);
    for (int k = 0; k < 100; k++)
        cr_assert_eq(mlc_arrivals_next_gap(&a), mlc_arrivals_next_gap(&b));
}

/* ---------------------------------------------------------------- shards on loopback */

typedef struct srv {
    pid_t pid;
    int port;
} srv;

static pid_t spawn(const char *cmd, int out_fd)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        for (int i = 3; i < 1024; i++)
            close(i);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static srv start_null(void)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 --engine null --ttft-ms 2 --itl-ms 1 --parallel 8", tu_bin());
    pid_t pid = spawn(cmd, fd[1]);
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[512] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "serve did not start: %s", cmd);
    fclose(f);
    const char *p = strstr(line, "127.0.0.1:");
    cr_assert_not_null(p, "%s", line);
    return (srv){pid, atoi(p + 10)};
}

static void stop(srv s)
{
    int st;
    kill(s.pid, SIGTERM);
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", path);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static double q_num(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    double v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_double(q, 0) : NAN;
    sqlite3_finalize(q);
    return v;
}

/* The command of shard i of 3 (31 requests in all, concurrency 2) into DIR/s<i>.db. */
static void shard_cmd(char *cmd, size_t cap, int port, int i, long start_at, const char *group)
{
    snprintf(cmd, cap, "%s run --endpoint http://127.0.0.1:%d --dataset random --input-len 8 --output-len 8"
             " --ignore-eos --concurrency 2 --num-prompts 31 --shard %d/3 --run-group %s --start-at %ld"
             " --db %s/s%d%s.db --quiet", tu_bin(), port, i, group, start_at, tu_tmpdir(), i, group);
}

/* Values of one metric over the ok requests of the shard stores (expr over requests). */
static int64_t union_values(const char *group, const char *expr, double *v, int64_t cap)
{
    int64_t n = 0;
    for (int i = 0; i < 3; i++) {
        char path[1024], sql[512];
        snprintf(path, sizeof path, "%s/s%d%s.db", tu_tmpdir(), i, group);
        sqlite3 *db = open_db(path);
        snprintf(sql, sizeof sql, "SELECT %s FROM requests WHERE ok = 1 AND first_token IS NOT NULL", expr);
        sqlite3_stmt *q = NULL;
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        while (sqlite3_step(q) == SQLITE_ROW && n < cap)
            v[n++] = sqlite3_column_double(q, 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    return n;
}

static void expect_stat(sqlite3 *out, int64_t run, const char *metric, const mlc_stat *st)
{
    const struct {
        const char *stat;
        double v;
    } want[] = {{"median", st->median}, {"p90", st->p90}, {"p99", st->p99}, {"mean", st->mean}};
    for (size_t k = 0; k < 4; k++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT value FROM metrics WHERE run_id = %lld AND name = 'c=2/%s' AND stat = '%s'",
                 (long long)run, metric, want[k].stat);
        double got = q_num(out, sql);
        /* Percentiles: the same sorted values, so equal to the bit; the mean's sum may run in
         * another order (worst seen 0: 1e-12 relative allowed). */
        if (k < 3)
            cr_expect_eq(got, want[k].v, "%s %s: %.17g vs %.17g", metric, want[k].stat, got, want[k].v);
        else
            cr_expect_leq(fabs(got - want[k].v), 1e-12 * fabs(want[k].v), "%s mean", metric);
    }
}

/* db merge DIR/out DIR/in... for the space-separated names ins. */
static int merge(const char *out, const char *ins, char **text)
{
    char cmd[8192], list[4096] = "", copy[1024];
    snprintf(copy, sizeof copy, "%s", ins);
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " "))
        snprintf(list + strlen(list), sizeof list - strlen(list), " %s/%s", tu_tmpdir(), w);
    snprintf(cmd, sizeof cmd, "%s db merge %s/%s%s", tu_bin(), tu_tmpdir(), out, list);
    return tu_run(cmd, text);
}

Test(shard, three_shards_merge_into_one_run, .timeout = 120)
{
    srv s = start_null();
    char cmd[8192], c0[2048], c1[2048], c2[2048];
    long t = (long)time(NULL) + 2;
    shard_cmd(c0, sizeof c0, s.port, 0, t, "g");
    shard_cmd(c1, sizeof c1, s.port, 1, t, "g");
    shard_cmd(c2, sizeof c2, s.port, 2, t, "g");
    snprintf(cmd, sizeof cmd, "(%s) & (%s) & (%s) & wait", c0, c1, c2);
    char *o = NULL;
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    free(o);
    stop(s);
    cr_assert_eq(merge("out.db", "s0g.db s1g.db s2g.db", &o), 0, "%s", o);
    cr_expect(strstr(o, "from 3 of 3 shards, 3 complete\n"), "%s", o);
    free(o);

    char path[1024];
    snprintf(path, sizeof path, "%s/out.db", tu_tmpdir());
    sqlite3 *out = open_db(path);
    int64_t run = (int64_t)q_num(out, "SELECT id FROM runs WHERE uuid = 'group-g'");
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE run_id = %lld", (long long)run);
    cr_expect_eq(q_num(out, sql), 31);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT idx) FROM requests WHERE run_id = %lld AND idx BETWEEN 0 AND 30",
             (long long)run);
    cr_expect_eq(q_num(out, sql), 31);
    cr_expect_eq(q_num(out, "SELECT count(*) FROM requests r JOIN runs u ON u.id = r.run_id WHERE u.shard_index"
                            " IS NOT NULL"), 31, "the shards' own requests add up");
    snprintf(sql, sizeof sql, "SELECT status = 'complete' AND partial = 0 AND shard_count = 3 FROM runs WHERE id = %lld",
             (long long)run);
    cr_expect_eq(q_num(out, sql), 1);

    static double v[4096];
    mlc_stat st;
    int64_t n = union_values("g", "(first_token - sent) * 1e3", v, 4096);
    cr_expect_eq(n, 31);
    mlc_stat_compute(v, n, &st);
    expect_stat(out, run, "ttft_ms", &st);
    n = union_values("g", "(done - sent) * 1e3", v, 4096);
    mlc_stat_compute(v, n, &st);
    expect_stat(out, run, "e2el_ms", &st);

    /* Merging again, and a shard file again, changes nothing. */
    const char *counts[] = {"SELECT count(*) FROM runs", "SELECT count(*) FROM requests",
                            "SELECT count(*) FROM metrics", "SELECT count(*) FROM samples",
                            "SELECT total(value) FROM metrics", "SELECT max(rowid) FROM metrics"};
    double before[6];
    for (int k = 0; k < 6; k++)
        before[k] = q_num(out, counts[k]);
    sqlite3_close(out);
    cr_assert_eq(merge("out.db", "s0g.db s1g.db s2g.db s1g.db", &o), 0, "%s", o);
    cr_expect(!strstr(o, "group g"), "no group rebuilt: %s", o);
    free(o);
    out = open_db(path);
    for (int k = 0; k < 6; k++)
        cr_expect_eq(q_num(out, counts[k]), before[k], "%s", counts[k]);
    sqlite3_close(out);

    /* One shard missing: partial. */
    cr_assert_eq(merge("two.db", "s0g.db s2g.db", &o), 0, "%s", o);
    cr_expect(strstr(o, "from 2 of 3 shards, 2 complete: partial"), "%s", o);
    free(o);
    snprintf(path, sizeof path, "%s/two.db", tu_tmpdir());
    out = open_db(path);
    cr_expect_eq(q_num(out, "SELECT status = 'interrupted' AND partial = 1 FROM runs WHERE uuid = 'group-g'"), 1);
    cr_expect_eq(q_num(out, "SELECT count(*) FROM requests r JOIN runs u ON u.id = r.run_id WHERE u.uuid = 'group-g'"),
                 21, "shards 0 and 2 hold 11 + 10 requests");
    sqlite3_close(out);
}

Test(shard, a_killed_shard_makes_the_run_partial, .timeout = 120)
{
    srv s = start_null();
    char cmd[8192], c0[2048], c1[2048], c2[2048];
    long t = (long)time(NULL) + 1;
    shard_cmd(c0, sizeof c0, s.port, 0, t, "k");
    shard_cmd(c1, sizeof c1, s.port, 1, t, "k");
    /* Shard 2 waits for a start an hour away and is killed while its run is 'running'. */
    shard_cmd(c2, sizeof c2, s.port, 2, t + 3600, "k");
    snprintf(cmd, sizeof cmd, "exec %s", c2);
    pid_t victim = spawn(cmd, -1);
    snprintf(cmd, sizeof cmd, "(%s) & (%s) & wait", c0, c1);
    char *o = NULL;
    cr_assert_eq(tu_run(cmd, &o), 0, "%s", o);
    free(o);
    stop(s);
    char path[1024];
    snprintf(path, sizeof path, "%s/s2k.db", tu_tmpdir());
    for (int i = 0; i < 200; i++) { /* its run row exists once the store is open: 20 s at most */
        if (access(path, F_OK) == 0) {
            sqlite3 *db = open_db(path);
            double n = q_num(db, "SELECT count(*) FROM runs");
            sqlite3_close(db);
            if (n == 1)
                break;
        }
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    kill(victim, SIGKILL);
    int st;
    cr_assert_eq(waitpid(victim, &st, 0), victim);
    cr_assert_eq(merge("killed.db", "s0k.db s1k.db s2k.db", &o), 0, "%s", o);
    cr_expect(strstr(o, "from 3 of 3 shards, 2 complete: partial"), "%s", o);
    free(o);
    snprintf(path, sizeof path, "%s/killed.db", tu_tmpdir());
    sqlite3 *out = open_db(path);
    cr_expect_eq(q_num(out, "SELECT status = 'interrupted' AND partial = 1 FROM runs WHERE uuid = 'group-k'"), 1);
    cr_expect_eq(q_num(out, "SELECT count(*) FROM requests r JOIN runs u ON u.id = r.run_id WHERE u.uuid = 'group-k'"),
                 21);
    cr_expect_eq(q_num(out, "SELECT count(*) FROM runs WHERE status = 'running' AND shard_index = 2"), 1);
    sqlite3_close(out);
}

Test(shard, usage_errors_are_named)
{
    const struct {
        const char *args, *says;
    } cases[] = {
        {"--shard 1/2", "--shard needs --run-group ID"},
        {"--shard 2/2 --run-group g", "--shard '2/2': expected I/N"},
        {"--shard 0/2 --run-group g --sweep", "--sweep measures its rates on one machine"},
        {"--start-at soon", "--start-at: 'soon' is not a Unix time"},
        {"--run-group ''", "--run-group: expected 1 to 200 characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048], *o = NULL;
        snprintf(cmd, sizeof cmd, "%s run --endpoint http://127.0.0.1:9 %s --db %s/u.db", tu_bin(), cases[i].args,
                 tu_tmpdir());
        cr_expect_eq(tu_run(cmd, &o), 2, "%s: %s", cmd, o);
        cr_expect(strstr(o, cases[i].says), "%s: %s", cmd, o);
        free(o);
    }
}
