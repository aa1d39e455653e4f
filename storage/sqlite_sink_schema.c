/* SQLite sink: opening the database file, its pragmas, migrations of older databases and
 * the schema text, waiting (and saying so) while another process holds the lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite_schema.h"
#include "sqlite_sink_int.h"

int sq_fail(struct sq_sink *q, const char *what, char *err, size_t errlen)
{
	int code = sqlite3_errcode(q->db);
	const char *why = sqlite3_errmsg(q->db);
	if (code == SQLITE_NOTADB)
		why = "file is not a database";
	if (what)
		snprintf(err, errlen, "%s: %s: %s", q->base.name, what, why);
	else
		snprintf(err, errlen, "%s: %s", q->base.name, why);
	return -1;
}

int64_t sq_scalar(sqlite3 *db, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	*rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (*rc != SQLITE_OK)
		return 0;
	*rc = sqlite3_step(st);
	if (*rc == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		*rc = SQLITE_OK;
	} else if (*rc == SQLITE_DONE) {
		*rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return v;
}

/* At open, another process may hold the lock (a report, a prune, sqlite3 in a shell):
 * SQLite's busy handler does not cover every case (a journal-mode change, a read lock
 * upgraded inside a transaction answer SQLITE_BUSY at once), so wait here, saying so,
 * up to SQ_START_WAIT_MS, instead of failing the start. */
static int sq_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

static int sq_wait_lock(sqlite3 *db, const char *path, int rc, int64_t *waited_ms)
{
	if (!sq_busy(rc) || *waited_ms >= SQ_START_WAIT_MS)
		return 0;
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (*waited_ms == 0)
		fprintf(stderr, "dbtap: %s: locked by another process; waiting up to %d s\n", path,
			SQ_START_WAIT_MS / 1000);
	usleep(200 * 1000);
	*waited_ms += 200;
	return 1;
}

static int sq_exec_wait(sqlite3 *db, const char *path, const char *sql, char **msg,
			int64_t *waited_ms)
{
	int rc;
	do {
		sqlite3_free(*msg);
		*msg = NULL;
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
	} while (rc != SQLITE_OK && sq_wait_lock(db, path, sqlite3_extended_errcode(db), waited_ms));
	return rc;
}

static int64_t sq_scalar_wait(sqlite3 *db, const char *path, const char *sql, int *rc,
			      int64_t *waited_ms)
{
	int64_t v;
	do
		v = sq_scalar(db, sql, rc);
	while (*rc != SQLITE_OK && sq_wait_lock(db, path, *rc, waited_ms));
	return v;
}

/* Create the file ourselves so it gets mode 0640 (SQLite would use 0644) and so a missing
 * directory or a permission problem is reported with errno's words. */
static int sq_precreate(const char *path, char *err, size_t errlen)
{
	struct stat stt;
	if (stat(path, &stt) == 0) {
		if (!S_ISREG(stt.st_mode)) {
			snprintf(err, errlen, "%s: not a regular file", path);
			return -1;
		}
		if (access(path, W_OK) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

int sq_schema_open(struct sq_sink *q, const char *path, char *err, size_t errlen)
{
	int rc;
	int64_t waited = 0; /* for another process's lock (sq_wait_lock) */
	char *msg = NULL;
	if (sq_precreate(path, err, errlen) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sq_fail(q, "open", err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, SQ_BUSY_MS);

	int64_t version = sq_scalar_wait(q->db, path, "PRAGMA user_version", &rc, &waited);
	if (rc != SQLITE_OK) {
		sq_fail(q, NULL, err, errlen);
		goto fail;
	}
	int64_t ntables = sq_scalar_wait(q->db, path, "SELECT count(*) FROM sqlite_master", &rc, &waited);
	if (rc != SQLITE_OK) {
		sq_fail(q, NULL, err, errlen);
		goto fail;
	}
	if (version > SINK_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this dbtap's (%d)", path,
			 (long long)version, SINK_SCHEMA_VERSION);
		goto fail;
	}
	if (version == 0 && ntables > 0) {
		snprintf(err, errlen, "%s: not a dbtap database (has tables but no schema version)",
			 path);
		goto fail;
	}
	/* No auto-vacuum: its pointer map costs every insert ~17% (callgrind, 50k statement
	 * rows). Pages freed by prune are reused by later rows; prune --vacuum shrinks the
	 * file. Databases made by older dbtaps keep their incremental mode. */
	if (ntables == 0 &&
	    sq_exec_wait(q->db, path, "PRAGMA auto_vacuum=NONE", &msg, &waited) != SQLITE_OK) {
		sq_fail(q, "auto_vacuum", err, errlen);
		goto fail;
	}
	sqlite3_stmt *jm;
	int wal;
	do {
		if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &jm, NULL) != SQLITE_OK) {
			sq_fail(q, "journal_mode", err, errlen);
			goto fail;
		}
		rc = sqlite3_step(jm);
		wal = rc == SQLITE_ROW &&
		      sqlite3_stricmp((const char *)sqlite3_column_text(jm, 0), "wal") == 0;
		sqlite3_finalize(jm);
	} while (rc != SQLITE_ROW && sq_wait_lock(q->db, path, rc, &waited));
	if (!wal) {
		if (rc == SQLITE_ROW)
			snprintf(err, errlen, "%s: cannot switch to WAL mode", path);
		else
			sq_fail(q, "journal_mode", err, errlen);
		goto fail;
	}
	/* NORMAL: commits do not fsync in WAL mode (a power cut may lose the last batches,
	 * never corrupt); a bigger cache and checkpoint interval keep index pages hot.
	 * temp_store=MEMORY: each multi-row INSERT keeps a statement journal (the pages it
	 * changes, to undo it alone); past 64 KiB SQLite spills that to a file in /var/tmp,
	 * 1.2 write syscalls per statement row stored. In memory it is a few pages. */
	if (sq_exec_wait(q->db, path, "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-" SQ_STR(SQ_CACHE_KIB)
			 "; PRAGMA wal_autocheckpoint=" SQ_STR(SQ_CHECKPOINT_PAGES),
			 &msg, &waited) != SQLITE_OK) {
		sq_fail(q, "synchronous", err, errlen);
		goto fail;
	}
	/* Columns added since: ALTER an older database before the schema text runs (its
	 * CREATE TABLE IF NOT EXISTS would not add them). */
	if (ntables > 0) {
#define SQ_MIGRATE(table, column, alter)                                                                       \
	if (sq_scalar_wait(q->db, path, "SELECT EXISTS (SELECT 1 FROM pragma_table_info('" table "')) AND NOT EXISTS" \
			   " (SELECT 1 FROM pragma_table_info('" table "') WHERE name = '" column "')",            \
			   &rc, &waited) == 1 && /* a missing table is created whole by the schema text */      \
	    rc == SQLITE_OK && sq_exec_wait(q->db, path, alter, &msg, &waited) != SQLITE_OK) {                  \
		snprintf(err, errlen, "%s: migrating schema: %s", path, msg ? msg : "error");                 \
		goto fail; /* msg is freed there */                                                                                    \
	}
		SQ_MIGRATIONS(SQ_MIGRATE)
#undef SQ_MIGRATE
	}
	/* Idempotent: every statement is IF NOT EXISTS, so this also adds views or indexes
	 * that a newer dbtap defines to a database an older one created. */
	/* one string, so that a retry after a lock wait (which rolls back) begins again */
	static const char schema_a[] = SQ_SCHEMA_SQL, schema_b[] = SQ_SCHEMA_SQL2;
	char schema[sizeof schema_a + sizeof schema_b];
	memcpy(schema, schema_a, sizeof schema_a - 1);
	memcpy(schema + sizeof schema_a - 1, schema_b, sizeof schema_b);
	if (sq_exec_wait(q->db, path, SQ_RUNS_SQL, &msg, &waited) != SQLITE_OK ||
	    sq_exec_wait(q->db, path, schema, &msg, &waited) != SQLITE_OK ||
	    sq_exec_wait(q->db, path, "BEGIN IMMEDIATE;" SQ_BASELINE_SQL SQ_STATE_SQL "COMMIT;", &msg, &waited) != SQLITE_OK) {
		snprintf(err, errlen, "%s: creating schema: %s", path, msg ? msg : "error");
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}

	sqlite3_free(msg);
	return 0;
fail:
	sqlite3_free(msg);
	return -1;
}
