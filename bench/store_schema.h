/* store_schema.h: the store's schema (DESIGN.md, Store): its migrations, the checks that a
 * file is ours, and the TEMP views through which an older schema reads as the newest. Also
 * the SQL helpers store.c shares with it. For store.c only; mlc_store_schema_version
 * (store.h) is defined here too. */
#ifndef MLC_BENCH_STORE_SCHEMA_H
#define MLC_BENCH_STORE_SCHEMA_H

#include <stdint.h>

#include "mlc/status.h"

struct sqlite3;

/* SQL for the current time as the store writes it (UTC, ISO 8601, milliseconds). */
#define MLC_STORE_UTC_NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* "PATH: WHAT: sqlite's message", with the status of the connection's last error. */
mlc_status mlc_store_db_err(const char *path, struct sqlite3 *db, mlc_err *err, const char *what);
/* Runs a one-row, one-integer query (a pragma); SQLITE_OK with *out set, or the error. */
int mlc_store_query_int(struct sqlite3 *db, const char *sql, int64_t *out);

/* Refuses files that are not ours: a schema newer than this build, another application's
 * id, or an unversioned database that already has tables (ver: its PRAGMA user_version). */
mlc_status mlc_store_schema_check(struct sqlite3 *db, const char *path, int64_t ver, mlc_err *err);
/* Brings the schema to the newest version under a write lock. */
mlc_status mlc_store_schema_migrate(struct sqlite3 *db, const char *path, mlc_err *err);
/* On a read-only connection to a file of schema version ver: TEMP views that give the
 * newest schema's tables, the later columns NULL. */
mlc_status mlc_store_schema_shim(struct sqlite3 *db, const char *path, int64_t ver, mlc_err *err);

#endif
