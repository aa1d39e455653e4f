/* Retention for the findings database: delete old statements in small transactions so a
 * running sensor's writer is never locked out for long; keep everything else. */
#include <errno.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "sink.h"

#define PRUNE_CHUNK 20000   /* rows per transaction */
#define PRUNE_BUSY_MS 30000 /* wait for the sensor's writer */

static int prune_fail(sqlite3 *db, const char *path, const char *what, char *err, size_t errlen)
{
	int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
	const char *why = db ? sqlite3_errmsg(db) : "error";
	if (code == SQLITE_NOTADB)
		why = "file is not a database";
	snprintf(err, errlen, "%s: %s: %s", path, what, why);
	return -1;
}

int report_prune_db(const char *path, int64_t cutoff_us, int vacuum, int64_t *deleted,
		    char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int rc = -1;
	*deleted = 0;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		prune_fail(db, path, "open", err, errlen);
		goto out;
	}
	sqlite3_busy_timeout(db, PRUNE_BUSY_MS);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND"
				   " name='statements'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		prune_fail(db, path, "reading schema", err, errlen);
		goto out;
	}
	if (sqlite3_column_int(st, 0) != 1) {
		snprintf(err, errlen, "%s: not a dbtap database (no statements table)", path);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	char cutoff[40];
	sink_fmt_time(cutoff_us, cutoff, sizeof(cutoff));
	if (sqlite3_prepare_v2(db, "DELETE FROM statements WHERE id IN (SELECT id FROM statements"
				   " WHERE ts < ?1 LIMIT " "20000" ")", -1, &st, NULL) != SQLITE_OK) {
		prune_fail(db, path, "prepare", err, errlen);
		goto out;
	}
	_Static_assert(PRUNE_CHUNK == 20000, "keep the LIMIT above in step");
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_TRANSIENT);
	for (;;) {
		int s = sqlite3_step(st);
		sqlite3_reset(st);
		if (s != SQLITE_DONE) {
			prune_fail(db, path, "delete", err, errlen);
			goto out;
		}
		int n = sqlite3_changes(db);
		*deleted += n;
		if (n == 0)
			break;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Saved session state (issue #18) not refreshed since the cutoff goes too: a restart
	 * would not take it up anyway once it is older than state_max_age_s. */
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='session_state'",
			       -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		prune_fail(db, path, "reading schema", err, errlen);
		goto out;
	}
	int have_state = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (have_state) {
		if (sqlite3_prepare_v2(db, "DELETE FROM session_state WHERE saved_at < ?1", -1, &st, NULL) != SQLITE_OK) {
			prune_fail(db, path, "prepare", err, errlen);
			goto out;
		}
		sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE) {
			prune_fail(db, path, "delete", err, errlen);
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	/* Freed pages go on SQLite's free list, reused by the next rows. VACUUM rewrites the
	 * file to return them; incremental_vacuum does it cheaply in databases that older
	 * dbtaps created with auto_vacuum=INCREMENTAL (a no-op elsewhere). */
	const char *tail = vacuum ? "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);"
				  : "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA incremental_vacuum;"
				    " PRAGMA wal_checkpoint(TRUNCATE);";
	if (sqlite3_exec(db, tail, NULL, NULL, NULL) != SQLITE_OK) {
		prune_fail(db, path, vacuum ? "vacuum" : "checkpoint", err, errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* One count from a read-only connection; -1 on error (message in err). */
static int prune_count(sqlite3 *db, const char *path, const char *sql, const char *cutoff,
		       int64_t *n, char *text, size_t textlen, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return prune_fail(db, path, "reading", err, errlen);
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		const unsigned char *s = text ? sqlite3_column_text(st, 1) : NULL;
		if (text)
			snprintf(text, textlen, "%s", s ? (const char *)s : "");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : prune_fail(db, path, "reading", err, errlen);
}

int report_prune_plan(const char *path, int64_t cutoff_us, struct prune_plan *p, char *err,
		      size_t errlen)
{
	struct stat sb;
	sqlite3 *db = NULL;
	int rc = -1;
	memset(p, 0, sizeof(*p));
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	/* mode=ro needs the WAL's -shm beside the file; where the file cannot be written (a
	 * read-only file system, a snapshot) nobody writes it either: read it immutable. */
	int have = -1;
	for (int immutable = 0; immutable < 2 && have < 0; immutable++) {
		if (immutable && access(path, W_OK) == 0)
			break;
		char *uri = report_ro_uri(path, immutable);
		if (!uri) {
			snprintf(err, errlen, "%s: out of memory", path);
			return -1;
		}
		sqlite3_close(db);
		db = NULL;
		int orc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
		free(uri);
		if (orc != SQLITE_OK)
			continue;
		sqlite3_busy_timeout(db, PRUNE_BUSY_MS);
		/* the schema is read lazily: read it now, while the fallback is still open */
		if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) == SQLITE_OK)
			have = 0;
	}
	if (have < 0) {
		prune_fail(db, path, "open", err, errlen);
		goto out;
	}
	char cutoff[40];
	sink_fmt_time(cutoff_us, cutoff, sizeof(cutoff));
	if (prune_count(db, path, "SELECT count(*), min(ts) FROM statements WHERE ts < ?1", cutoff,
			&p->statements, p->oldest, sizeof(p->oldest), err, errlen) < 0) {
		if (strstr(err, "no such table"))
			snprintf(err, errlen, "%s: not a dbtap database (no statements table)", path);
		goto out;
	}
	if (prune_count(db, path, "SELECT count(*) FROM session_state WHERE saved_at < ?1", cutoff,
			&p->states, NULL, 0, err, errlen) < 0) {
		if (!strstr(err, "no such table"))
			goto out;
		p->states = 0; /* made by a dbtap before issue #18 */
	}
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}
