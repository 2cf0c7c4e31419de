/* ab.c: `mlc-bench ab --base BIN_A --head BIN_B [--rounds R] -- ARGS...`: an A/B comparison
 * of two builds on one machine. Each round runs both builds with the same ARGS (plus --db),
 * in an order drawn at random per round, so drift on a shared machine (thermal state, other
 * jobs, page cache) lands on both sides alike instead of on whichever ran second. The runs of
 * each side are then pooled and compared by the regression gate (compare.h): the head build
 * is the candidate. */
#include "ab.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "compare.h"
#include "store.h"

#define MAX_ROUNDS 100
/* Runs one invocation of a build may store (micro stores one per model and thread count). */
#define MAX_RUNS_PER_CALL 16

static const char ab_usage[] =
    "usage: mlc-bench ab --base BIN_A --head BIN_B [options] -- ARGS...\n"
    "Runs `BIN ARGS --db FILE` for both builds in R rounds, the order drawn at random each\n"
    "round, then compares the head build's runs (candidate) against the base build's\n"
    "(baseline) with the regression gate. ARGS is a storing command: micro, run or ppl.\n"
    "  --rounds R         rounds (default 6; with one run per build per round, per-run\n"
    "                     metrics need R >= 4 to reach p < 0.01 at all)\n"
    "  --db FILE          store for both builds' runs (default ./mlc-bench.db or $MLC_BENCH_DB)\n"
    "  --seed S           order of the rounds (default: from the clock; printed)\n"
    "  --verbose          show the builds' own output\n"
    "  and compare's gate options: --alpha --threshold --tolerance --noise-floor --gate\n"
    "  --metric --force --json --format table|md --junit FILE --quiet (see compare --help)\n"
    "exit status: 0 no regression, 1 regression, 2 usage error, or a build failed\n";

typedef struct ab_opts {
    const char *bin[2]; /* [0] base, [1] head */
    const char *db;
    int rounds;
    uint64_t seed;
    bool seeded, verbose;
    char **args;        /* ARGS..., NULL-terminated (argv's tail) */
    mlc_compare_opts gate;
} ab_opts;

static int parse_ab(int argc, char **argv, ab_opts *o)
{
    *o = (ab_opts){.rounds = 6};
    mlc_compare_opts_init(&o->gate);
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ab_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o->verbose = true;
            continue;
        }
        int g = mlc_compare_parse_opt("ab", argc, argv, &i, &o->gate);
        if (g < 0)
            return 2;
        if (g)
            continue;
        static const char *const valued[] = {"--base", "--head", "--db", "--rounds", "-r", "--seed", NULL};
        if (!(v = mlc_cli_option_value("ab", valued, argc, argv, &i)))
            return 2;
        bool ok = true;
        if (!strcmp(a, "--base")) o->bin[0] = v;
        else if (!strcmp(a, "--head")) o->bin[1] = v;
        else if (!strcmp(a, "--db")) o->db = v;
        else if (!strcmp(a, "--rounds") || !strcmp(a, "-r")) ok = mlc_cli_int("ab", a, v, 1, MAX_ROUNDS, &o->rounds);
        else if (!strcmp(a, "--seed")) ok = (o->seeded = mlc_cli_u64("ab", a, v, &o->seed));
        else {
            fprintf(stderr, "mlc-bench ab: unknown option '%s'\n%s", a, ab_usage);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (!o->bin[0] || !o->bin[1] || i + 1 >= argc) {
        fprintf(stderr, "mlc-bench ab: --base, --head and `-- ARGS...` are required\n%s", ab_usage);
        return 2;
    }
    o->args = argv + i + 1;
    for (char **a = o->args; *a; a++)
        if (!strcmp(*a, "--db")) {
            fprintf(stderr, "mlc-bench ab: ARGS must not set --db: ab passes its own (--db before --)\n");
            return 2;
        }
    if (!o->db)
        o->db = mlc_store_default_path();
    if (!o->seeded)
        o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return -1;
}

/* Runs `bin ARGS --db db` and waits: its exit status, or -1 when it could not start or
 * did not exit normally. Standard output goes to /dev/null unless verbose. */
static int run_build(const ab_opts *o, const char *bin)
{
    int n = 0;
    while (o->args[n])
        n++;
    char **argv = calloc((size_t)n + 4, sizeof *argv);
    if (!argv)
        return -1;
    argv[0] = (char *)bin;
    memcpy(argv + 1, o->args, (size_t)n * sizeof *argv);
    argv[n + 1] = "--db";
    argv[n + 2] = (char *)o->db;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!o->verbose) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0)
                dup2(fd, STDOUT_FILENO);
        }
        execvp(bin, argv);
        fprintf(stderr, "mlc-bench ab: %s: cannot run: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free(argv);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int64_t max_run_id(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM runs", -1, &st, NULL);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

/* The complete runs stored after `after`, labelled "ab base|head round R", appended to ids. */
static int collect(sqlite3 *db, int64_t after, const char *side, int round, int64_t *ids, int *n, int cap)
{
    char label[64];
    snprintf(label, sizeof label, "ab %s round %d", side, round);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "UPDATE runs SET label = ?2 WHERE id > ?1 AND status = 'complete' RETURNING id", -1, &st,
                       NULL);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    int got = 0, rc;
    while (st && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if (*n < cap) {
            ids[(*n)++] = sqlite3_column_int64(st, 0);
            got++;
        }
    sqlite3_finalize(st);
    return got;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* R rounds of both builds; ids[side] gets each side's runs. 0, or 2 after a failed build. */
static int rounds(const ab_opts *o, sqlite3 *db, int64_t *ids[2], int n[2], int cap)
{
    static const char *const side[2] = {"base", "head"};
    uint64_t rng = o->seed ? o->seed : 1;
    for (int r = 1; r <= o->rounds; r++) {
        int first = (int)(next_rand(&rng) >> 63);
        char line[256];
        int len = snprintf(line, sizeof line, "round %d/%d:", r, o->rounds);
        for (int k = 0; k < 2; k++) {
            int s = k ? 1 - first : first;
            int64_t before = max_run_id(db);
            double t0 = mlc_cli_now();
            int rc = run_build(o, o->bin[s]);
            /* `run` exits 1 when requests failed but still stores a complete run: that is a
             * measurement (its `failed` metric is compared), not a broken build. */
            bool stored = (rc == 0 || rc == 1) && collect(db, before, side[s], r, ids[s], &n[s], cap);
            if (!stored && rc != 0) {
                fprintf(stderr, "mlc-bench ab: round %d: the %s build (%s) failed (%s %d)\n", r, side[s],
                        o->bin[s], rc < 0 ? "status" : "exit", rc);
                return 2;
            }
            if (!stored) {
                fprintf(stderr, "mlc-bench ab: round %d: the %s build stored no complete run in %s (ARGS must be"
                        " micro, run or ppl)\n", r, side[s], o->db);
                return 2;
            }
            if (rc == 1)
                fprintf(stderr, "mlc-bench ab: round %d: the %s build's run had failed requests (exit 1); its"
                        " `failed` metric is compared\n", r, side[s]);
            len += snprintf(line + len, sizeof line - (size_t)len, " %s %.1f s%s", side[s], mlc_cli_now() - t0,
                            k ? "" : ",");
        }
        fprintf(stderr, "%s\n", line);
    }
    return 0;
}

int mlc_cmd_ab(int argc, char **argv)
{
    ab_opts o;
    int rc = parse_ab(argc, argv, &o);
    if (rc >= 0)
        return rc;
    mlc_store *st = NULL;
    mlc_err err;
    if (mlc_store_open(o.db, &st, &err)) {
        fprintf(stderr, "mlc-bench ab: %s\n", err.msg);
        return 2;
    }
    int cap = o.rounds * MAX_RUNS_PER_CALL, n[2] = {0, 0};
    int64_t *ids[2] = {calloc((size_t)cap, sizeof(int64_t)), calloc((size_t)cap, sizeof(int64_t))};
    rc = 2;
    if (!ids[0] || !ids[1]) {
        fprintf(stderr, "mlc-bench ab: out of memory\n");
        goto out;
    }
    fprintf(stderr, "mlc-bench ab: %d rounds, seed %llu, store %s\n", o.rounds, (unsigned long long)o.seed, o.db);
    if (rounds(&o, mlc_store_db(st), ids, n, cap))
        goto out;
    char bd[512], cd[512];
    snprintf(bd, sizeof bd, "base %s (%d runs, %lld..%lld)", o.bin[0], n[0], (long long)ids[0][0],
             (long long)ids[0][n[0] - 1]);
    snprintf(cd, sizeof cd, "head %s (%d runs, %lld..%lld)", o.bin[1], n[1], (long long)ids[1][0],
             (long long)ids[1][n[1] - 1]);
    rc = mlc_compare_runs(mlc_store_db(st), ids[0], n[0], bd, ids[1], n[1], cd, &o.gate);
out:
    free(ids[0]);
    free(ids[1]);
    mlc_store_close(st);
    return rc;
}
