/* store_schema.c: the store's schema (store_schema.h). It lives in `migrations`: entry i
 * takes PRAGMA user_version from i to i+1, run in one IMMEDIATE transaction (so two processes
 * opening a new file at once do not both create it). A later schema change appends an entry;
 * a shipped entry is never edited. */
#include "store_schema.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>

#include "store.h"

static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE fingerprints ("
    "  id INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  cpu TEXT NOT NULL,"
    "  cpus INTEGER NOT NULL,"
    "  gpu TEXT NOT NULL,"
    "  driver TEXT NOT NULL,"
    "  os TEXT NOT NULL,"
    "  compiler TEXT NOT NULL,"
    "  flags TEXT NOT NULL,"
    "  build TEXT NOT NULL,"
    "  created TEXT NOT NULL DEFAULT (" MLC_STORE_UTC_NOW "));"
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  label TEXT,"
    "  git_sha TEXT,"
    "  git_branch TEXT,"
    "  started TEXT NOT NULL DEFAULT (" MLC_STORE_UTC_NOW "),"
    "  finished TEXT,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running','complete','failed','interrupted')),"
    "  target TEXT,"
    "  backend TEXT,"
    "  device TEXT,"
    "  endpoint TEXT,"
    "  model_path TEXT,"
    "  model_sha256 TEXT,"
    "  model_arch TEXT,"
    "  model_quant TEXT,"
    "  config TEXT CHECK (config IS NULL OR json_valid(config)),"
    "  fingerprint_id INTEGER NOT NULL REFERENCES fingerprints(id));"
    "CREATE INDEX runs_fingerprint ON runs(fingerprint_id);"
    "CREATE TABLE requests ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  phase INTEGER NOT NULL,"
    "  scheduled REAL,"
    "  sent REAL,"
    "  first_token REAL,"
    "  done REAL,"
    "  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),"
    "  error_kind TEXT,"
    "  error TEXT,"
    "  input_tokens INTEGER,"
    "  output_tokens INTEGER,"
    "  tokens_approx INTEGER NOT NULL CHECK (tokens_approx IN (0, 1)),"
    "  itl BLOB);"
    "CREATE INDEX requests_run ON requests(run_id, idx);"
    "CREATE TABLE metrics ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  unit TEXT,"
    "  stat TEXT,"
    "  value REAL,"
    "  direction INTEGER NOT NULL DEFAULT 0 CHECK (direction IN (-1, 0, 1)));"
    "CREATE INDEX metrics_run_name ON metrics(run_id, name);"
    "CREATE TABLE samples ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  metric TEXT NOT NULL,"
    "  rep INTEGER NOT NULL,"
    "  value REAL);"
    "CREATE INDEX samples_run_metric ON samples(run_id, metric);"
    "CREATE TABLE perplexity ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  ctx INTEGER,"
    "  chunks INTEGER,"
    "  ppl REAL,"
    "  ppl_err REAL);"
    "CREATE INDEX perplexity_run ON perplexity(run_id);"
    "CREATE TABLE conformance ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  backend TEXT,"
    "  op TEXT,"
    "  type TEXT,"
    "  shape TEXT,"
    "  nmse REAL,"
    "  status TEXT);"
    "CREATE INDEX conformance_run ON conformance(run_id);"
    "CREATE TABLE baselines ("
    "  name TEXT PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE);"
    "CREATE INDEX baselines_run ON baselines(run_id);",
    /* v2: why a request failed, beside error_kind and error (the reason's text): the HTTP
     * status an endpoint answered (NULL when none came) and the URL asked. */
    "ALTER TABLE requests ADD COLUMN http_status INTEGER;"
    "ALTER TABLE requests ADD COLUMN url TEXT;",
    /* v3: conformance rows say which device, name the case as the suite does (the key that
     * compares two runs), and keep what reproduces and judges it: the case's seed (hex text:
     * SQLite's integers are signed), the threshold, the error and the backend's time. */
    "ALTER TABLE conformance ADD COLUMN device TEXT;"
    "ALTER TABLE conformance ADD COLUMN case_desc TEXT;"
    "ALTER TABLE conformance ADD COLUMN threshold REAL;"
    "ALTER TABLE conformance ADD COLUMN seed TEXT;"
    "ALTER TABLE conformance ADD COLUMN error TEXT;"
    "ALTER TABLE conformance ADD COLUMN ms REAL;",
    /* v4: the verdicts of `run --slo` percentile bounds, one row per load point and bound:
     * the sample (n, violations), the most violations that pass among n at the confidence,
     * the requests needed when there were not enough (else NULL), the observed percentile. */
    "CREATE TABLE slo ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  load TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  metric TEXT NOT NULL,"
    "  percentile REAL NOT NULL,"
    "  bound_ms REAL NOT NULL,"
    "  confidence REAL NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  violations INTEGER NOT NULL,"
    "  allowed INTEGER NOT NULL,"
    "  needed INTEGER,"
    "  observed_ms REAL,"
    "  verdict TEXT NOT NULL CHECK (verdict IN ('pass','fail','not_enough')));"
    "CREATE INDEX slo_run ON slo(run_id);",
    /* v5: runs that travel between stores (db merge) and shards of one load (run --shard):
     * a stable UUID (older runs get a random one here), the group id, this shard's index and
     * the shard count; partial is 1 on a merged group run that lacks a shard or whose shard
     * did not complete. */
    "ALTER TABLE runs ADD COLUMN uuid TEXT;"
    "ALTER TABLE runs ADD COLUMN run_group TEXT;"
    "ALTER TABLE runs ADD COLUMN shard_index INTEGER;"
    "ALTER TABLE runs ADD COLUMN shard_count INTEGER;"
    "ALTER TABLE runs ADD COLUMN partial INTEGER;"
    "UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;"
    "CREATE UNIQUE INDEX runs_uuid ON runs(uuid);"
    "CREATE INDEX runs_group ON runs(run_group);",
    /* v6 goes here. */
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- errors and pragmas ------------------------------------------------------------------ */

static mlc_status map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return MLC_ERR_NOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return MLC_ERR_FORMAT;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return MLC_ERR_ARG;
    default: return MLC_ERR_IO;
    }
}

/* "PATH: WHAT: sqlite's message", with the status of the connection's last error. */
mlc_status mlc_store_db_err(const char *path, sqlite3 *db, mlc_err *err, const char *what)
{
    int rc = db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
    if ((rc & 0xff) == SQLITE_NOTADB)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: not an SQLite database", path);
    return mlc_err_set(err, map_rc(rc), "%s: %s: %s", path, what,
                       db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Runs a one-row, one-integer query (a pragma); SQLITE_OK with *out set, or the error. */
int mlc_store_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- versions ---------------------------------------------------------------------------- */

int mlc_store_schema_version(void)
{
    return N_MIGRATIONS;
}

/* Refuses files that are not ours: a schema newer than this build, another application's
 * id, or an unversioned database that already has tables. */
mlc_status mlc_store_schema_check(sqlite3 *db, const char *path, int64_t ver, mlc_err *err)
{
    int64_t app = 0, n_tables = 0;
    if (mlc_store_query_int(db, "PRAGMA application_id", &app) != SQLITE_OK ||
        mlc_store_query_int(db, "SELECT count(*) FROM sqlite_master", &n_tables) != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading the header");
    if (ver > N_MIGRATIONS)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: schema version %" PRId64 " is newer than this build of "
                           "mlc-bench supports (%d); use a newer mlc-bench",
                           path, ver, N_MIGRATIONS);
    if (app != 0 && app != MLC_STORE_APP_ID)
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: not an mlc-bench database (application_id 0x%08" PRIx64 ")",
                           path, (uint64_t)app & 0xffffffffu);
    if (ver == 0 && n_tables > 0)
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: not an mlc-bench database (it has tables but no schema version)",
                           path);
    return MLC_OK;
}

/* Brings the schema to N_MIGRATIONS, under a write lock taken before the version is read
 * again, so a concurrent opener cannot apply the same step twice. */
mlc_status mlc_store_schema_migrate(sqlite3 *db, const char *path, mlc_err *err)
{
    char what[64];
    int64_t ver = 0;
    if (mlc_store_query_int(db, "PRAGMA user_version", &ver) != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading the schema version");
    if (ver == N_MIGRATIONS)
        return MLC_OK;
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "locking for the schema migration");
    mlc_status st = MLC_OK;
    if (mlc_store_query_int(db, "PRAGMA user_version", &ver) != SQLITE_OK) {
        st = mlc_store_db_err(path, db, err, "reading the schema version");
        goto fail;
    }
    if ((st = mlc_store_schema_check(db, path, ver, err)) != MLC_OK)
        goto fail;
    for (int64_t v = ver; v < N_MIGRATIONS; v++) {
        char pragma[96];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %" PRId64 ";"
                 "PRAGMA application_id = %d", v + 1, MLC_STORE_APP_ID);
        snprintf(what, sizeof what, "migrating the schema to version %" PRId64, v + 1);
        if (exec(db, migrations[v]) != SQLITE_OK || exec(db, pragma) != SQLITE_OK) {
            st = mlc_store_db_err(path, db, err, what);
            goto fail;
        }
    }
    if (exec(db, "COMMIT") != SQLITE_OK) {
        st = mlc_store_db_err(path, db, err, "committing the schema migration");
        goto fail;
    }
    return MLC_OK;
fail:
    exec(db, "ROLLBACK");
    return st;
}

/* An older schema is read through TEMP views that add the later columns as NULL (the temp
 * schema lives in memory and shadows the file's tables for unqualified names). */
mlc_status mlc_store_schema_shim(sqlite3 *db, const char *path, int64_t ver, mlc_err *err)
{
    if (ver < 2 && exec(db, "CREATE TEMP VIEW requests AS SELECT *, NULL AS http_status,"
                               " NULL AS url FROM main.requests") != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading a version 1 schema");
    if (ver < 3 && exec(db, "CREATE TEMP VIEW conformance AS SELECT *, NULL AS device, NULL AS case_desc,"
                               " NULL AS threshold, NULL AS seed, NULL AS error, NULL AS ms FROM main.conformance") != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading a version 2 schema");
    if (ver < 4 && exec(db, "CREATE TEMP VIEW slo AS SELECT NULL AS run_id, NULL AS load, NULL AS name,"
                               " NULL AS metric, NULL AS percentile, NULL AS bound_ms, NULL AS confidence, NULL AS n,"
                               " NULL AS violations, NULL AS allowed, NULL AS needed, NULL AS observed_ms,"
                               " NULL AS verdict WHERE 0") != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading a version 3 schema");
    if (ver < 5 && exec(db, "CREATE TEMP VIEW runs AS SELECT *, NULL AS uuid, NULL AS run_group,"
                               " NULL AS shard_index, NULL AS shard_count, NULL AS partial FROM main.runs") != SQLITE_OK)
        return mlc_store_db_err(path, db, err, "reading a version 4 schema");
    return MLC_OK;
}
