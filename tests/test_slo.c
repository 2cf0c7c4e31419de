/* test_slo.c: --slo parsing and the binomial verdicts of percentile bounds (bench/slo.c),
 * against values worked out by hand from the binomial formula
 *   P(X <= x) = sum_{k=0..x} C(n, k) q^k (1-q)^(n-k),   q = 1 - percentile/100,
 * at 99% confidence (alpha = 0.01): pass when P(X <= x) <= alpha, fail when
 * P(X >= x) <= alpha, otherwise not enough requests. */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "../bench/slo.h"
#include "../bench/store.h"
#include "util.h"

#define A 0.01 /* alpha at 99% confidence */

/* p99 with no violation: P(X <= 0) = 0.99^n; 0.99^458 = 0.0100212 > 0.01 >= 0.99^459 =
 * 0.0099210, so 459 requests is the least that can pass. */
Test(slo, p99_without_violation_needs_459)
{
    cr_expect(fabs(mlc_binom_cdf(0, 458, 0.01) - 0.010021186) < 1e-8, "%.10f", mlc_binom_cdf(0, 458, 0.01));
    cr_expect(fabs(mlc_binom_cdf(0, 459, 0.01) - 0.009920974) < 1e-8, "%.10f", mlc_binom_cdf(0, 459, 0.01));
    cr_expect_eq(mlc_slo_allowed(458, 0.01, A), -1);
    cr_expect_eq(mlc_slo_allowed(459, 0.01, A), 0);
    cr_expect_eq(mlc_slo_needed(0, 0.01, A), 459);
    mlc_slo_result r;
    mlc_slo_judge(458, 0, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_NOT_ENOUGH);
    cr_expect_eq(r.need, 459);
    mlc_slo_judge(459, 0, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_PASS);
    cr_expect_eq(r.allowed, 0);
}

/* p90 with no violation: 0.9^43 = 0.01078 > 0.01 >= 0.9^44 = 0.00970: 44 requests. */
Test(slo, p90_without_violation_needs_44)
{
    cr_expect_eq(mlc_slo_needed(0, 0.1, A), 44);
    mlc_slo_result r;
    mlc_slo_judge(43, 0, 90, 0.99, &r);
    cr_expect(r.verdict == MLC_SLO_NOT_ENOUGH && r.need == 44);
    mlc_slo_judge(44, 0, 90, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_PASS);
}

/* p99 among 1000 requests: P(X <= 2) = 0.99^1000 + 1000 (0.01) 0.99^999
 * + 499500 (0.01)^2 0.99^998 = 0.0000432 + 0.000436 + 0.002200 = 0.002679 <= 0.01, and
 * P(X = 3) = 166167000 (0.01)^3 0.99^997 = 0.007393 takes P(X <= 3) to 0.010073 > 0.01:
 * 2 violations pass, 3 do not. */
Test(slo, p99_among_1000_allows_2)
{
    cr_expect(fabs(mlc_binom_cdf(2, 1000, 0.01) - 0.0026794320) < 1e-9, "%.10f", mlc_binom_cdf(2, 1000, 0.01));
    cr_expect(fabs(mlc_binom_cdf(3, 1000, 0.01) - 0.0100726548) < 1e-9, "%.10f", mlc_binom_cdf(3, 1000, 0.01));
    cr_expect_eq(mlc_slo_allowed(1000, 0.01, A), 2);
    mlc_slo_result r;
    mlc_slo_judge(1000, 2, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_PASS);
    mlc_slo_judge(1000, 3, 99, 0.99, &r);
    cr_expect_neq(r.verdict, MLC_SLO_PASS);
}

/* Fail: among 100 at p99, P(X >= 5) = 1 - (0.366032 + 0.369730 + 0.184865 + 0.060999
 * + 0.014942) = 0.003432 <= 0.01: 5 violations fail. P(X >= 4) = 0.018374 > 0.01: 4 are
 * not enough to tell; they would pass among N requests with P(X <= 4) <= 0.01, first at
 * N = 1157 (the same sum at n = 1156 is just above 0.01). */
Test(slo, fail_and_not_enough)
{
    mlc_slo_result r;
    mlc_slo_judge(100, 5, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_FAIL);
    cr_expect(fabs(1 - mlc_binom_cdf(4, 100, 0.01) - 0.0034323216) < 1e-9);
    mlc_slo_judge(100, 4, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_NOT_ENOUGH);
    cr_expect_eq(r.need, 1157);
    cr_expect(mlc_binom_cdf(4, 1157, 0.01) <= A && mlc_binom_cdf(4, 1156, 0.01) > A);
    cr_expect_eq(mlc_slo_needed(1, 0.01, A), 662);
    cr_expect_eq(mlc_slo_needed(2, 0.01, A), 838);
    /* Every request above the bound fails as soon as that is unlikely: at p90 one of one
     * has P(X >= 1) = 0.1 > 0.01, at p99 two of two 0.01^2 <= 0.01. */
    mlc_slo_judge(1, 1, 90, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_NOT_ENOUGH);
    mlc_slo_judge(2, 2, 99, 0.99, &r);
    cr_expect_eq(r.verdict, MLC_SLO_FAIL);
    /* No request at all: not enough, and as many are needed as with none above. */
    mlc_slo_judge(0, 0, 99, 0.99, &r);
    cr_expect(r.verdict == MLC_SLO_NOT_ENOUGH && r.need == 459);
}

/* Large n: the terms are summed in logs (0.99^1000000 underflows a double); the count
 * allowed sits where the sum crosses alpha. 77 among 10000 by the exact sum. */
Test(slo, large_samples)
{
    cr_expect_eq(mlc_slo_allowed(10000, 0.01, A), 77);
    int64_t k = mlc_slo_allowed(1000000, 0.01, A);
    cr_expect(k > 9000 && k < 10000, "%lld", (long long)k);
    cr_expect(mlc_binom_cdf(k, 1000000, 0.01) <= A && mlc_binom_cdf(k + 1, 1000000, 0.01) > A);
    /* p50 among 10: P(X <= 0) = 1/1024 <= 0.01 < P(X <= 1) = 11/1024. */
    cr_expect_eq(mlc_slo_allowed(10, 0.5, A), 0);
}

Test(slo, parse)
{
    mlc_slo_spec s;
    char msg[256];
    cr_assert(mlc_slo_spec_parse("ttft_p99=500,tpot_p90=50", &s, msg, sizeof msg), "%s", msg);
    cr_assert_eq(s.n_pct, 2);
    cr_expect(s.pct[0].metric == MLC_SLO_TTFT && s.pct[0].percentile == 99 && s.pct[0].ms == 500);
    cr_expect_str_eq(s.pct[0].name, "ttft_p99");
    cr_expect(s.pct[1].metric == MLC_SLO_TPOT && s.pct[1].percentile == 90 && s.pct[1].ms == 50);
    cr_expect(s.request.ttft_ms == 500 && s.request.tpot_ms == 50 && s.request.e2e_ms == 0, "also for goodput");
    cr_assert(mlc_slo_spec_parse("e2el_p99.9=2000,ttft=200,ttft_p50=300", &s, msg, sizeof msg), "%s", msg);
    cr_expect(s.n_pct == 2 && s.pct[0].metric == MLC_SLO_E2E && s.pct[0].percentile == 99.9);
    cr_expect_eq(s.request.ttft_ms, 200, "the tightest bound per request");
    cr_assert(mlc_slo_spec_parse("ttft=200,tpot=50,e2e=2000", &s, msg, sizeof msg), "%s", msg);
    cr_expect(s.any && s.n_pct == 0 && s.request.e2e_ms == 2000);
    static const char *const bad[] = {"ttft_p100=5", "ttft_p0=5", "ttft_p=5", "ttft_p99x=5", "foo_p99=5", "ttft_p99=-1",
                                      "ttft_p99=0", "ttft_p99=nan", "ttft_p99", "ttft_pinf=5", "ttft_p-1=5", "x=1",
                                      "ttft=1,,tpot=2", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msg[0] = 0;
        cr_expect_not(mlc_slo_spec_parse(bad[i], &s, msg, sizeof msg), "'%s' accepted", bad[i]);
        cr_expect(!strncmp(msg, "--slo: ", 7), "'%s': %s", bad[i], msg);
    }
}

/* Requests of one load point: a failed one violates every bound; one output token is no
 * TPOT sample. */
Test(slo, evaluate_counts_samples_and_violations)
{
    static mlc_req_times r[460];
    for (int i = 0; i < 459; i++)
        r[i] = (mlc_req_times){.sent = i, .first_token = i + 0.010, .done = i + 0.110, .ok = true, .output_tokens = 11};
    mlc_slo_bound ttft = {MLC_SLO_TTFT, 99, 20, "ttft_p99"}, tpot = {MLC_SLO_TPOT, 99, 9.5, "tpot_p99"};
    mlc_slo_result res;
    mlc_slo_evaluate(&ttft, r, 459, &res);
    cr_expect(res.verdict == MLC_SLO_PASS && res.n == 459 && res.violations == 0);
    cr_expect(fabs(res.observed_ms - 10) < 1e-6, "%g", res.observed_ms);
    /* TPOT (110 - 10) / 10 = 10 ms, above 9.5: every one violates. */
    mlc_slo_evaluate(&tpot, r, 459, &res);
    cr_expect(res.verdict == MLC_SLO_FAIL && res.violations == 459);
    r[459] = (mlc_req_times){.sent = 500, .first_token = -1, .done = 501, .ok = false};
    mlc_slo_evaluate(&ttft, r, 460, &res);
    cr_expect(res.n == 460 && res.violations == 1 && res.verdict == MLC_SLO_NOT_ENOUGH && res.need == 662);
    r[0].output_tokens = 1;
    mlc_slo_evaluate(&tpot, r, 460, &res);
    cr_expect_eq(res.n, 459, "one output token: no TPOT");
    char line[256];
    mlc_slo_evaluate(&ttft, r, 460, &res);
    mlc_slo_describe(&ttft, &res, line, sizeof line);
    cr_expect_str_eq(line, "ttft_p99 <= 20 ms: not enough requests: need 662 (1 of 460 above; observed 10.0 ms)");
}

/* A store of schema version 3 (before the slo table) is read as it is: its slo view is
 * empty. A writer migrates it and can add a verdict. */
Test(slo, store_table_and_older_schemas)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/slo-v3.db", tu_tmpdir());
    mlc_store *s;
    mlc_err err;
    cr_assert_eq(mlc_store_open(path, &s, &err), MLC_OK, "%s", err.msg);
    mlc_store_close(s);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DROP TABLE slo; DROP INDEX runs_uuid; DROP INDEX runs_group; ALTER TABLE runs DROP COLUMN uuid;"
                                      "ALTER TABLE runs DROP COLUMN run_group; ALTER TABLE runs DROP COLUMN shard_index;"
                                      "ALTER TABLE runs DROP COLUMN shard_count; ALTER TABLE runs DROP COLUMN partial;"
                                      "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(mlc_store_open_readonly(path, &s, &err), MLC_OK, "%s", err.msg);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(mlc_store_db(s), "SELECT count(*), count(verdict) FROM slo", -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(mlc_store_db(s)));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    mlc_store_close(s);
    cr_assert_eq(mlc_store_open(path, &s, &err), MLC_OK, "%s", err.msg);
    mlc_run_info ri = {.kind = "run"};
    int64_t run;
    cr_assert_eq(mlc_store_run_begin(s, &ri, &run, &err), MLC_OK, "%s", err.msg);
    mlc_slo_row row = {"c=1", "ttft_p99", "ttft", 99, 500, 0.99, 459, 0, 0, 0, NAN, "pass"};
    cr_expect_eq(mlc_store_add_slo(s, run, &row, &err), MLC_OK, "%s", err.msg);
    row.verdict = "maybe";
    cr_expect_neq(mlc_store_add_slo(s, run, &row, &err), MLC_OK, "the verdicts are checked");
    cr_assert_eq(sqlite3_prepare_v2(mlc_store_db(s), "SELECT count(*) FROM slo WHERE needed IS NULL AND observed_ms IS NULL"
                                    " AND n = 459 AND verdict = 'pass'", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    mlc_store_close(s);
}
