/* Reading saved session state back (state_store.h). */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sink.h"
#include "state_store.h"

int state_store_load(const char *path, int64_t min_saved,
		     int (*fn)(void *ctx, const char *key, int64_t session_id, int fresh, const char *state,
			       size_t len),
		     void *ctx, char *err, size_t errlen)
{
	struct stat sb;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (stat(path, &sb) != 0)
		return 0; /* a new database: nothing saved */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='session_state'", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	int have = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (!have) {
		rc = 0;
		goto out;
	}
	char cutoff[40];
	sink_fmt_time(min_saved, cutoff, sizeof cutoff);
	if (sqlite3_prepare_v2(db, "SELECT key, session_id, saved_at >= ?1, state FROM session_state", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_TRANSIENT);
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = sqlite3_column_type(st, 0) == SQLITE_TEXT ? (const char *)sqlite3_column_text(st, 0)
									     : NULL;
		int64_t id = sqlite3_column_type(st, 1) == SQLITE_INTEGER ? sqlite3_column_int64(st, 1) : 0;
		int fresh = sqlite3_column_int(st, 2);
		const char *state = sqlite3_column_type(st, 3) == SQLITE_TEXT ? (const char *)sqlite3_column_text(st, 3)
									       : NULL;
		size_t len = state ? (size_t)sqlite3_column_bytes(st, 3) : 0;
		if (fn(ctx, key, id, fresh, state, len) < 0)
			break;
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		goto fail;
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s: reading saved session state: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
