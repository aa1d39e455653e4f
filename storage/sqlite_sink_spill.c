/* SQLite sink: the spill file (issue #20 item 4). While the database cannot be written (a
 * full disk), the writer puts whole batches into a second SQLite file on another path with
 * the same tables, capped by max_page_count; once the database takes writes again the
 * spill is copied into it in one transaction, before any newer batch, and emptied. Rows
 * keep their ids (assigned by the caller), so a replay repeated after a crash replaces
 * the same rows. A spill left by a process that stopped first is replayed by the next. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite_schema.h"
#include "sqlite_sink_int.h"

static const char *const sp_tables[] = {"runs", "sessions", "statements", "findings", "baseline"};

static int64_t sp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sq_spill_batch(struct sq_sink *q, struct sq_batch *b)
{
	if (sq_write_batch(q, b, q->sp_db, q->sp_st) > 0) {
		q->sp_full = 1; /* the cap (SQLITE_FULL) or its own disk: retry in place now */
		return 1;
	}
	pthread_mutex_lock(&q->mu);
	uint64_t kept = b->n - q->wb_lost; /* rows the spill rejected are counted lost */
	q->w_spilled += kept;
	q->sp_rows += kept;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int sq_spill_replay(struct sq_sink *q, int force)
{
	pthread_mutex_lock(&q->mu);
	uint64_t rows = q->sp_rows;
	pthread_mutex_unlock(&q->mu);
	if (!rows)
		return 0;
	int64_t now = sp_now_ms();
	if (!force && now < q->sp_next_ms)
		return 1;
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(q->db, "ATTACH ?1 AS spill", -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, q->sp_path, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (ok) {
		ok = sqlite3_exec(q->db, q->sp_replay, NULL, NULL, NULL) == SQLITE_OK;
		if (!ok) {
			pthread_mutex_lock(&q->mu);
			snprintf(q->w_err, sizeof(q->w_err), "replaying the spill: %s", sqlite3_errmsg(q->db));
			pthread_mutex_unlock(&q->mu);
			if (!sqlite3_get_autocommit(q->db))
				sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		}
		sqlite3_exec(q->db, "DETACH spill", NULL, NULL, NULL);
	}
	/* stored: empty the spill (a crash before this replays the same ids again: harmless) */
	if (ok && sqlite3_exec(q->sp_db, "BEGIN; DELETE FROM runs; DELETE FROM sessions; DELETE FROM statements;"
					 " DELETE FROM findings; DELETE FROM baseline; DELETE FROM session_state; COMMIT",
			       NULL, NULL, NULL) != SQLITE_OK) {
		/* the rows are stored; what stays in the spill is replayed again (same ids) */
		pthread_mutex_lock(&q->mu);
		snprintf(q->w_err, sizeof(q->w_err), "%s: emptying the spill %s: %s", q->base.name, q->sp_path,
			 sqlite3_errmsg(q->sp_db));
		q->w_err_seq++;
		pthread_mutex_unlock(&q->mu);
		if (!sqlite3_get_autocommit(q->sp_db))
			sqlite3_exec(q->sp_db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (!ok) {
		q->sp_delay_ms = q->sp_delay_ms ? q->sp_delay_ms * 2 : SQ_RETRY_MIN_MS;
		if (q->sp_delay_ms > SQ_RETRY_MAX_MS)
			q->sp_delay_ms = SQ_RETRY_MAX_MS;
		q->sp_next_ms = now + q->sp_delay_ms;
		return 1;
	}
	q->sp_full = 0;
	q->sp_delay_ms = 0;
	pthread_mutex_lock(&q->mu);
	q->w_replayed += q->sp_rows;
	q->sp_rows = 0;
	q->failing_since = 0; /* the database takes writes again */
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* The replay: every table copied by column name (a spill made by an older dbtap may lack
 * newer columns), a session state spilled as deleted ('') deletes it, and so does a
 * baseline row spilled as evicted (pending -1). */
static char *sp_replay_sql(sqlite3 *db)
{
	size_t cap = 32768, n = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	n += (size_t)snprintf(s, cap, "BEGIN IMMEDIATE;");
	for (size_t t = 0; t <= sizeof sp_tables / sizeof sp_tables[0]; t++) {
		const char *name = t < sizeof sp_tables / sizeof sp_tables[0] ? sp_tables[t] : "session_state";
		char cols[2048];
		size_t cl = 0;
		sqlite3_stmt *st;
		char q[128];
		snprintf(q, sizeof q, "SELECT name FROM pragma_table_info('%s')", name);
		if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
			free(s);
			return NULL;
		}
		cols[0] = 0;
		while (sqlite3_step(st) == SQLITE_ROW && cl < sizeof cols - 80)
			cl += (size_t)snprintf(cols + cl, sizeof cols - cl, "%s\"%s\"", cl ? "," : "",
					       (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (n + 2 * cl + 256 > cap) {
			free(s);
			return NULL;
		}
		if (!strcmp(name, "baseline"))
			n += (size_t)snprintf(s + n, cap - n,
					      "DELETE FROM main.baseline WHERE (scope, principal, application, kind, item) IN"
					      " (SELECT scope, principal, application, kind, item FROM spill.baseline"
					      " WHERE pending = -1);"
					      "INSERT OR REPLACE INTO main.baseline(%s) SELECT %s FROM spill.baseline"
					      " WHERE pending <> -1;",
					      cols, cols);
		else if (t < sizeof sp_tables / sizeof sp_tables[0])
			n += (size_t)snprintf(s + n, cap - n, "INSERT OR REPLACE INTO main.%s(%s) SELECT %s FROM spill.%s;",
					      name, cols, cols, name);
		else
			n += (size_t)snprintf(s + n, cap - n,
					      "DELETE FROM main.session_state WHERE key IN (SELECT key FROM spill.session_state WHERE state = '');"
					      "INSERT OR REPLACE INTO main.session_state(%s) SELECT %s FROM spill.session_state WHERE state <> '';",
					      cols, cols);
	}
	if (n + 8 > cap) {
		free(s);
		return NULL;
	}
	memcpy(s + n, "COMMIT;", 8);
	return s;
}

int sink_sqlite_set_spill(struct sink *s, const char *path, int64_t max_bytes, struct sink_ids *next,
			  char *err, size_t errlen)
{
	if (!s || s->ops != &sq_ops || !path || max_bytes < 65536)
		return -EINVAL;
	struct sq_sink *q = (struct sq_sink *)s;
	sqlite3 *db = NULL;
	if (q->sp_db) {
		snprintf(err, errlen, "%s: spill already set", q->base.name);
		return -1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQ_BUSY_MS);
	char pr[160];
	snprintf(pr, sizeof pr, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=NORMAL; PRAGMA max_page_count=%lld",
		 (long long)(max_bytes / 4096)); /* 4 KiB pages: SQLite's default */
	static const char schema_a[] = SQ_SCHEMA_SQL, schema_b[] = SQ_SCHEMA_SQL2;
	char schema[sizeof schema_a + sizeof schema_b];
	memcpy(schema, schema_a, sizeof schema_a - 1);
	memcpy(schema + sizeof schema_a - 1, schema_b, sizeof schema_b);
	if (sqlite3_exec(db, pr, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, SQ_RUNS_SQL, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, SQ_BASELINE_SQL SQ_STATE_SQL, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_stmt *st[SQ_NSTMT] = {0};
	char *replay = sp_replay_sql(db);
	char *p = strdup(path);
	if (!replay || !p || sq_prepare(db, st, 1) != SQLITE_OK) {
		for (int i = 0; i < SQ_NSTMT; i++)
			sqlite3_finalize(st[i]);
		free(replay);
		free(p);
		goto fail;
	}
	/* what an earlier process left: counted, replayed first; ids continue after it */
	uint64_t rows = 0;
	int rc;
	for (size_t t = 0; t < sizeof sp_tables / sizeof sp_tables[0]; t++) {
		char sql[96];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", sp_tables[t]);
		rows += (uint64_t)sq_scalar(db, sql, &rc);
		if (next && t < 4) {
			snprintf(sql, sizeof sql, "SELECT coalesce(max(id),0)+1 FROM %s", sp_tables[t]);
			int64_t id = sq_scalar(db, sql, &rc);
			int64_t *dst[4] = {&next->run, &next->session, &next->statement, &next->finding};
			if (id > *dst[t])
				*dst[t] = id;
		}
	}
	rows += (uint64_t)sq_scalar(db, "SELECT count(*) FROM session_state", &rc);
	pthread_mutex_lock(&q->mu);
	memcpy(q->sp_st, st, sizeof st);
	q->sp_path = p;
	q->sp_replay = replay;
	q->sp_rows = rows;
	q->sp_db = db;
	if (rows)
		pthread_cond_signal(&q->cv_work); /* the writer replays them */
	pthread_mutex_unlock(&q->mu);
	if (rows)
		fprintf(stderr, "dbtap: %s: %llu rows an earlier run spilled to %s; replaying them\n", q->base.name,
			(unsigned long long)rows, path);
	return 0;
fail:
	snprintf(err, errlen, "%s: spill %s: %s", q->base.name, path, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_close(db);
	return -1;
}
