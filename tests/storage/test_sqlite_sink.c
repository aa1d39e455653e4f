/* The SQLite sink against the DESIGN.md §3 contract: schema, pragmas, appends, batching,
 * the writer thread's bounded queue, and one-line errors for bad paths and full disks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sink.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dbtap-sq-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

TestSuite(sqlite_sink, .init = setup, .fini = teardown);

static sqlite3 *db_open(void)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

static int64_t q1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *qs(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
	const char *t = (const char *)sqlite3_column_text(st, 0);
	char *v = t ? strdup(t) : NULL;
	sqlite3_finalize(st);
	return v;
}

static struct sink *open_ok(int batch, struct sink_ids *ids)
{
	char err[256] = "";
	struct sink *s = sink_sqlite_open(path, batch, ids, err, sizeof(err));
	cr_assert_not_null(s, "open failed: %s", err);
	return s;
}

static void put_ok(struct sink *s, const struct rec *r)
{
	cr_assert_eq(sink_put(s, r), 0, "put: %s", s->errmsg);
}

static const int64_t T0 = 1795770902123456LL; /* 2026-11-27T09:15:02.123456Z */

static void put_session(struct sink *s, int64_t id, int64_t run_id)
{
	struct rec_session se = {.id = id, .run_id = run_id, .protocol = "postgresql",
				 .client_ip = "10.0.0.5", .client_port = 40000,
				 .server_ip = "10.0.0.1", .server_port = 5432, .started_at = T0,
				 .db_user = "alice", .login = "ok"};
	struct rec r = {.type = REC_SESSION, .u.session = &se};
	put_ok(s, &r);
}

static int put_statement(struct sink *s, int64_t id, int64_t session_id)
{
	struct rec_statement st = {.id = id, .session_id = session_id, .ts = T0 + id,
				   .verb = "SELECT", .fingerprint = "0123456789abcdef",
				   .sql = "SELECT * FROM t WHERE id = ?", .outcome = "ok",
				   .rows = 1, .duration_us = 10};
	struct rec r = {.type = REC_STATEMENT, .u.statement = &st};
	return sink_put(s, &r);
}

/* DESIGN.md §3, column by column. */
static const char *const contract[][32] = {
	{"runs", "id", "started_at", "ended_at", "source", "packets", "bytes", "kernel_drops",
	 "sensor_drops", "streams", "version", "config", NULL},
	{"sessions", "id", "run_id", "protocol", "client_ip", "client_port", "server_ip",
	 "server_port", "started_at", "ended_at", "db_user", "database", "application",
	 "client_info", "server_version", "tls", "auth_method", "login", "login_error",
	 "midstream", "end_reason", "statements", "errors", "rows_returned", "bytes_to_server",
	 "bytes_to_client", NULL},
	{"statements", "id", "session_id", "ts", "end_user", "end_user_source", "verb",
	 "fingerprint", "sql", "params", "outcome", "error_code", "rows", "duration_us", NULL},
	{"findings", "id", "run_id", "session_id", "statement_id", "ts", "kind", "severity",
	 "protocol", "client_ip", "server_ip", "db_user", "database", "application", "end_user",
	 "end_user_source", "fingerprint", "sql", "summary", "evidence", NULL},
};

Test(sqlite_sink, schema_has_every_contract_column_with_integer_primary_keys)
{
	struct sink_ids ids;
	sink_close(open_ok(0, &ids));
	sqlite3 *db = db_open();
	for (size_t t = 0; t < sizeof(contract) / sizeof(contract[0]); t++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", contract[t][0]);
		sqlite3_stmt *st;
		cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		int seen[32] = {0}, ncols = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 1);
			ncols++;
			for (int c = 1; contract[t][c]; c++) {
				if (strcmp(name, contract[t][c]) == 0) {
					seen[c] = 1;
					if (c == 1) {
						cr_expect_str_eq((const char *)sqlite3_column_text(st, 2),
								 "INTEGER");
						cr_expect_eq(sqlite3_column_int(st, 5), 1, "id is the pk");
					}
				}
			}
		}
		sqlite3_finalize(st);
		int want = 0;
		for (int c = 1; contract[t][c]; c++, want++)
			cr_expect(seen[c], "%s.%s missing", contract[t][0], contract[t][c]);
		cr_expect_geq(ncols, want, "%s", contract[t][0]);
	}
	/* documented extras */
	cr_expect_eq(q1(db, "SELECT count(*) FROM pragma_table_info('runs') WHERE name='drops'"), 1);
	cr_expect_eq(q1(db, "SELECT count(*) FROM pragma_table_info('sessions')"
			    " WHERE name IN ('gaps','lost_bytes')"), 2);
	/* the views the schema documentation promises */
	cr_expect_eq(q1(db, "SELECT count(*) FROM sqlite_master WHERE type='view' AND name IN"
			    " ('v_statements','v_failed_logins','v_findings_daily','v_activity_hourly',"
			    "'v_principals','v_end_users','v_new_shapes','v_blind_spots')"), 8);
	cr_expect_geq(q1(db, "SELECT count(*) FROM sqlite_master WHERE type='index'"
			     " AND name LIKE 'statements_%'"), 3);
	sqlite3_close(db);
}

Test(sqlite_sink, user_version_wal_and_mode_0640)
{
	struct sink_ids ids;
	mode_t old = umask(0);
	sink_close(open_ok(0, &ids));
	umask(old);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	char *jm = qs(db, "PRAGMA journal_mode");
	cr_expect_str_eq(jm, "wal");
	free(jm);
	cr_expect_eq(q1(db, "PRAGMA auto_vacuum"), 0, "none: prune's freed pages are reused");
	sqlite3_close(db);
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0640, "mode %o", sb.st_mode & 0777);
}

Test(sqlite_sink, fresh_database_starts_ids_at_one_and_second_run_appends)
{
	struct sink_ids ids;
	struct sink *s = open_ok(0, &ids);
	cr_expect_eq(ids.run, 1);
	cr_expect_eq(ids.session, 1);
	cr_expect_eq(ids.statement, 1);
	cr_expect_eq(ids.finding, 1);
	struct rec_run run = {.id = 1, .started_at = T0, .source = "file:a.pcap", .version = "t"};
	struct rec rr = {.type = REC_RUN, .u.run = &run};
	put_ok(s, &rr);
	put_session(s, 1, 1);
	put_statement(s, 1, 1);
	put_statement(s, 2, 1);
	struct rec_finding f = {.id = 1, .run_id = 1, .session_id = 1, .statement_id = 2,
				.ts = T0, .kind = "bulk_read", .severity = "medium"};
	struct rec rf = {.type = REC_FINDING, .u.finding = &f};
	put_ok(s, &rf);
	cr_expect_eq(sink_sync(s), 0, "%s", s->errmsg);
	sink_close(s);

	s = open_ok(0, &ids);
	cr_expect_eq(ids.run, 2);
	cr_expect_eq(ids.session, 2);
	cr_expect_eq(ids.statement, 3);
	cr_expect_eq(ids.finding, 2);
	run.id = 2;
	put_ok(s, &rr);
	put_session(s, 2, 2);
	put_statement(s, 3, 2);
	sink_close(s);

	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM runs"), 2);
	cr_expect_eq(q1(db, "SELECT count(*) FROM sessions"), 2);
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), 3);
	cr_expect_eq(q1(db, "SELECT session_id FROM statements WHERE id = 3"), 2);
	sqlite3_close(db);
}

Test(sqlite_sink, session_is_inserted_at_start_and_updated_at_end)
{
	struct sink_ids ids;
	struct sink *s = open_ok(0, &ids);
	struct rec_session se = {.id = 7, .run_id = 1, .protocol = "mysql", .client_ip = "2001:db8::5",
				 .client_port = 1234, .server_ip = "10.0.0.1", .server_port = 3306,
				 .started_at = T0, .login = "unknown"};
	struct rec r = {.type = REC_SESSION, .u.session = &se};
	put_ok(s, &r);
	cr_expect_eq(sink_flush(s), 0);
	se.db_user = "bob";
	se.login = "ok";
	se.auth_method = "caching_sha2_password";
	put_ok(s, &r);
	se.ended_at = T0 + 5000000;
	se.end_reason = "reset";
	se.statements = 12;
	se.gaps = 2;
	se.lost_bytes = 3000;
	put_ok(s, &r);
	sink_close(s);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM sessions"), 1);
	char *v = qs(db, "SELECT db_user || '|' || login || '|' || end_reason || '|' || ended_at"
			 " || '|' || statements || '|' || gaps || '|' || lost_bytes FROM sessions");
	cr_expect_str_eq(v, "bob|ok|reset|2026-11-27T09:15:07.123456Z|12|2|3000");
	free(v);
	sqlite3_close(db);
}

Test(sqlite_sink, times_are_iso_utc_microseconds_and_unknowns_are_null)
{
	struct sink_ids ids;
	struct sink *s = open_ok(0, &ids);
	put_session(s, 1, 1);
	struct rec_statement st = {.id = 1, .session_id = 1, .ts = T0, .verb = "COPY",
				   .outcome = "unknown", .rows = -1, .duration_us = -1};
	struct rec r = {.type = REC_STATEMENT, .u.statement = &st};
	put_ok(s, &r);
	struct rec_finding f = {.id = 1, .ts = T0, .kind = "protocol_anomaly", .severity = "info"};
	struct rec rf = {.type = REC_FINDING, .u.finding = &f};
	put_ok(s, &rf);
	sink_close(s);
	sqlite3 *db = db_open();
	char *ts = qs(db, "SELECT ts FROM statements");
	cr_expect_str_eq(ts, "2026-11-27T09:15:02.123456Z");
	free(ts);
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements WHERE rows IS NULL AND duration_us"
			    " IS NULL AND sql IS NULL AND end_user IS NULL"), 1);
	cr_expect_eq(q1(db, "SELECT count(*) FROM findings WHERE run_id IS NULL AND session_id IS"
			    " NULL AND statement_id IS NULL"), 1);
	cr_expect_eq(q1(db, "SELECT count(*) FROM sessions WHERE ended_at IS NULL"), 1);
	sqlite3_close(db);
}

Test(sqlite_sink, many_rows_are_stored_by_one_flush)
{
	struct sink_ids ids;
	struct sink *s = open_ok(20000, &ids);
	put_session(s, 1, 1);
	for (int i = 1; i < 20000; i++)
		cr_assert_eq(put_statement(s, i, 1), 0);
	sqlite3 *db = db_open();
	/* nothing is written before the flush: the batch is one transaction */
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), 0);
	cr_expect_eq(sink_flush(s), 0);
	cr_expect_eq(sink_sync(s), 0, "%s", s->errmsg);
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), 19999);
	cr_expect_eq(s->dropped, 0);
	sink_close(s);
	sqlite3_close(db);
}

static int has_thread(const char *name)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "grep -qx '%s' /proc/%d/task/*/comm", name, (int)getpid());
	return system(cmd) == 0;
}

static off_t file_size(const char *suffix)
{
	char p[160];
	struct stat sb;
	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &sb) == 0 ? sb.st_size : 0;
}

/* Checkpoints run on their own thread: the database file grows while the sink is open,
 * and under a sustained load the WAL stays near its 64 MiB bound (16384 pages) instead
 * of growing with the data (96 MiB here). */
Test(sqlite_sink, checkpoints_run_beside_the_writer_and_bound_the_wal)
{
	struct sink_ids ids;
	struct sink *s = open_ok(1000, &ids);
	cr_expect(has_thread("dbtap-ckpt"), "the checkpointer thread runs");
	cr_expect(has_thread("dbtap-writer"), "the writer thread runs");
	put_session(s, 1, 1);
	static char sql[3001];
	memset(sql, 'x', sizeof(sql) - 1);
	memcpy(sql, "SELECT '", 8);
	off_t max_wal = 0;
	int n = 32000; /* ~3 KiB each */
	for (int i = 1; i <= n; i++) {
		struct rec_statement st = {.id = i, .session_id = 1, .ts = T0 + i, .verb = "SELECT",
					   .fingerprint = "0123456789abcdef", .sql = sql,
					   .outcome = "ok"};
		struct rec r = {.type = REC_STATEMENT, .u.statement = &st};
		put_ok(s, &r);
		if (i % 1000 == 0) {
			cr_assert_eq(sink_sync(s), 0, "%s", s->errmsg);
			off_t w = file_size("-wal");
			max_wal = w > max_wal ? w : max_wal;
		}
	}
	/* 16384 pages of 4 KiB plus their frame headers, and one transaction's worth more */
	cr_expect_lt(max_wal, (off_t)72 << 20, "WAL reached %lld bytes", (long long)max_wal);
	cr_expect_gt(file_size(""), (off_t)16 << 20, "pages reach the file while it is open");
	sink_close(s);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), n);
	char *ok = qs(db, "PRAGMA integrity_check");
	cr_expect_str_eq(ok, "ok");
	free(ok);
	sqlite3_close(db);
	cr_expect_eq(file_size("-wal"), 0, "the last close checkpoints and removes the WAL");
}

Test(sqlite_sink, duplicate_statement_id_loses_only_that_row_and_says_so)
{
	struct sink_ids ids;
	struct sink *s = open_ok(0, &ids);
	put_session(s, 1, 1);
	for (int i = 1; i <= 100; i++)
		cr_assert_eq(put_statement(s, i == 50 ? 10 : i, 1), 0);
	cr_expect_lt(sink_sync(s), 0, "a rejected row is reported");
	cr_expect_not_null(strstr(s->errmsg, "row rejected"), "%s", s->errmsg);
	cr_expect_eq(s->dropped, 1);
	sink_close(s);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), 99);
	sqlite3_close(db);
}

Test(sqlite_sink, full_queue_drops_statements_counts_them_and_keeps_sessions)
{
	struct sink_ids ids;
	struct sink *s = open_ok(100, &ids);
	cr_assert_eq(sink_sqlite_set_wait(s, 0), 0); /* live capture mode */
	/* another writer holds the lock: the writer thread stalls, capture must not */
	sqlite3 *db = db_open();
	cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	int dropped = 0, total = 20000;
	for (int i = 1; i <= total; i++) {
		if (i % 1000 == 1)
			put_session(s, i / 1000 + 1, 1);
		int rc = put_statement(s, i, i / 1000 + 1);
		if (rc == -ENOBUFS)
			dropped++;
		else
			cr_assert_eq(rc, 0);
		if (i % 100 == 0)
			sink_flush(s);
	}
	cr_expect_gt(dropped, 0, "a stalled writer must lead to counted drops");
	cr_expect_eq(s->dropped, (uint64_t)dropped);
	/* live mode queues up to 16 batches (of 100 rows here), not 4, before it drops */
	cr_expect_geq(total - dropped, 1000, "kept %d before dropping", total - dropped);
	cr_expect_leq(total - dropped, 1700 + 8 * 20, "kept %d: the queue is bounded", total - dropped);
	cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	cr_expect_eq(sink_sync(s), 0, "%s", s->errmsg);
	int64_t stored = q1(db, "SELECT count(*) FROM statements");
	cr_expect_eq(stored + (int64_t)s->dropped, total, "stored %lld + dropped %llu",
		     (long long)stored, (unsigned long long)s->dropped);
	cr_expect_eq(q1(db, "SELECT count(*) FROM sessions"), total / 1000, "sessions never dropped");
	sink_close(s);
	sqlite3_close(db);
}

static int put_baseline(struct sink *s, int item, int64_t count)
{
	char it[32];
	snprintf(it, sizeof it, "t%d", item);
	struct rec_baseline b = { .scope = "db_user", .principal = "app", .application = "", .kind = "table",
				  .item = it, .first_seen = 1764000000000000LL, .last_seen = 1764000001000000LL,
				  .count = count, .rows_min = -1, .rows_max = -1 };
	struct rec r = { .type = REC_BASELINE, .u.baseline = &b };
	return sink_put(s, &r);
}

/* The analyzer's changed baseline rows go through the writer (upserts); when the writer is
 * far behind a row is refused with -EAGAIN, not dropped: the analyzer keeps it for later. */
Test(sqlite_sink, baseline_rows_are_upserted_and_refused_uncounted_when_the_writer_is_behind)
{
	struct sink_ids ids;
	struct sink *s = open_ok(100, &ids);
	cr_assert_eq(sink_sqlite_set_wait(s, 0), 0);
	cr_assert_eq(put_baseline(s, 1, 1), 0);
	cr_assert_eq(put_baseline(s, 1, 5), 0); /* the same row again: replaces */
	cr_assert_eq(sink_sync(s), 0, "%s", s->errmsg);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count FROM baseline WHERE item = 't1'"), 5);
	cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	int i = 1, rc = 0;
	while (rc == 0 && i < 100000) {
		rc = put_baseline(s, ++i, 1);
		if (i % 100 == 0)
			sink_flush(s);
	}
	cr_expect_eq(rc, -EAGAIN, "a stalled writer refuses baseline rows at the queue's bound");
	cr_expect_eq(s->dropped, 0, "refused baseline rows are not losses");
	cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	cr_expect_eq(sink_sync(s), 0, "%s", s->errmsg);
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline"), i - 1, "every row accepted is stored");
	sink_close(s);
	sqlite3_close(db);
}

/* Issue #20: the baseline forgets its least recently seen rows when full, and their
 * deletes go through the writer like upserts; one that waits in the spill file while the
 * database is locked deletes the row when the spill is replayed. */
Test(sqlite_sink, baseline_delete_is_stored_and_survives_the_spill)
{
	struct sink_ids ids;
	struct sink *s = open_ok(100, &ids);
	char sp[160], err[256] = "";
	snprintf(sp, sizeof sp, "%s/spill.db", dir);
	cr_assert_eq(sink_sqlite_set_spill(s, sp, 1 << 20, &ids, err, sizeof err), 0, "%s", err);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(put_baseline(s, i, 1), 0);
	cr_assert_eq(sink_sync(s), 0, "%s", s->errmsg);
	struct rec_baseline del = { .scope = "db_user", .principal = "app", .application = "", .kind = "table",
				    .item = "t1", .deleted = 1 };
	struct rec r = { .type = REC_BASELINE, .u.baseline = &del };
	put_ok(s, &r);
	cr_assert_eq(sink_sync(s), 0, "%s", s->errmsg);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline WHERE item = 't1'"), 0, "deleted");
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline"), 2);

	cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	del.item = "t2";
	put_ok(s, &r);
	cr_assert_eq(put_baseline(s, 4, 1), 0);
	sink_flush(s);
	struct sink_stats st = { 0 };
	for (int i = 0; i < 600 && !st.spilled; i++) {
		usleep(50000);
		sink_sqlite_get_stats(s, &st);
	}
	cr_assert_gt(st.spilled, 0, "the locked batch went to the spill");
	cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 600 && st.replayed < st.spilled; i++) {
		usleep(50000);
		sink_sqlite_get_stats(s, &st);
	}
	cr_expect_eq(st.replayed, st.spilled);
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline WHERE item = 't2'"), 0, "deleted at replay");
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline WHERE item IN ('t3', 't4')"), 2);
	cr_expect_eq(q1(db, "SELECT count(*) FROM baseline WHERE pending < 0"), 0, "no tombstone left");
	sqlite3_close(db);
	sink_close(s);
}

Test(sqlite_sink, default_wait_mode_stores_everything_from_a_tight_loop)
{
	struct sink_ids ids;
	struct sink *s = open_ok(1000, &ids);
	put_session(s, 1, 1);
	for (int i = 1; i <= 100000; i++)
		cr_assert_eq(put_statement(s, i, 1), 0);
	cr_expect_eq(sink_sync(s), 0);
	cr_expect_eq(s->dropped, 0);
	sink_close(s);
	sqlite3 *db = db_open();
	cr_expect_eq(q1(db, "SELECT count(*) FROM statements"), 100000);
	sqlite3_close(db);
}

static void expect_one_line(const char *err, const char *must1, const char *must2)
{
	cr_expect_neq(err[0], 0, "no message");
	cr_expect_null(strchr(err, '\n'), "one line: %s", err);
	cr_expect_not_null(strstr(err, must1), "'%s' lacks '%s'", err, must1);
	cr_expect_not_null(strstr(err, must2), "'%s' lacks '%s'", err, must2);
}

Test(sqlite_sink, missing_directory_is_a_one_line_error)
{
	char err[256] = "", p[200];
	struct sink_ids ids;
	snprintf(p, sizeof(p), "%s/no/such/dir/x.db", dir);
	cr_expect_null(sink_sqlite_open(p, 0, &ids, err, sizeof(err)));
	expect_one_line(err, p, "No such file or directory");
}

Test(sqlite_sink, non_database_file_is_a_one_line_error)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not a database, just text that goes on and on\n", f);
	fclose(f);
	char err[256] = "";
	struct sink_ids ids;
	cr_expect_null(sink_sqlite_open(path, 0, &ids, err, sizeof(err)));
	expect_one_line(err, path, "not a database");
}

Test(sqlite_sink, foreign_sqlite_database_is_refused)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE mine(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[256] = "";
	struct sink_ids ids;
	cr_expect_null(sink_sqlite_open(path, 0, &ids, err, sizeof(err)));
	expect_one_line(err, path, "not a dbtap database");
}

/* issue #19: a version-1 database gains findings.count and last_seen; a repeat (same id)
 * updates count, last_seen and severity of the first row and keeps its time. */
Test(sqlite_sink, version_1_database_is_migrated_and_repeats_update_one_row)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
				  "CREATE TABLE findings(id INTEGER PRIMARY KEY, run_id INTEGER, session_id INTEGER,"
				  " statement_id INTEGER, ts TEXT, kind TEXT, severity TEXT, protocol TEXT, client_ip TEXT,"
				  " server_ip TEXT, db_user TEXT, database TEXT, application TEXT, end_user TEXT,"
				  " end_user_source TEXT, fingerprint TEXT, sql TEXT, summary TEXT, evidence TEXT);"
				  "INSERT INTO findings(id, kind) VALUES(1, 'old');"
				  "PRAGMA user_version = 1",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	struct sink_ids ids;
	struct sink *s = open_ok(0, &ids);
	cr_expect_eq(ids.finding, 2);
	struct rec_finding f = { .id = 2, .ts = T0, .kind = "protocol_anomaly", .severity = "low", .summary = "a" };
	struct rec r = { .type = REC_FINDING, .u.finding = &f };
	put_ok(s, &r);
	f.count = 7;
	f.last_seen = T0 + 5000000;
	f.severity = "medium";
	f.summary = "b";
	put_ok(s, &r);
	cr_assert_eq(sink_sync(s), 0);
	sink_close(s);
	db = db_open();
	cr_expect_eq(q1(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	cr_expect_eq(q1(db, "SELECT count FROM findings WHERE id = 1"), 1);
	cr_expect_eq(q1(db, "SELECT count(*) FROM findings"), 2);
	cr_expect_eq(q1(db, "SELECT count FROM findings WHERE id = 2"), 7);
	char *v = qs(db, "SELECT ts || ' ' || last_seen || ' ' || severity || ' ' || summary FROM findings WHERE id = 2");
	cr_expect_str_eq(v, "2026-11-27T09:15:02.123456Z 2026-11-27T09:15:07.123456Z medium b");
	free(v);
	sqlite3_close(db);
}

Test(sqlite_sink, newer_schema_version_is_refused)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[256] = "";
	struct sink_ids ids;
	cr_expect_null(sink_sqlite_open(path, 0, &ids, err, sizeof(err)));
	expect_one_line(err, path, "newer");
}

/* Root ignores file modes: open as nobody in a child process (so the test's own cleanup
 * still runs as root) and hand the error message back through a pipe. */
static void open_as_nobody(const char *p, char *err, size_t errlen)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		char e[256] = "";
		struct sink_ids ids;
		struct sink *s = sink_sqlite_open(p, 0, &ids, e, sizeof(e));
		if (s) {
			sink_close(s);
			snprintf(e, sizeof(e), "OPENED");
		}
		if (write(fds[1], e, strlen(e)) < 0)
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], err, errlen - 1);
	err[n > 0 ? n : 0] = 0;
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed");
}

Test(sqlite_sink, read_only_file_is_a_one_line_error)
{
	struct sink_ids ids;
	sink_close(open_ok(0, &ids));
	char wal[160], err[256];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	cr_assert_eq(chmod(path, 0444), 0);
	open_as_nobody(path, err, sizeof(err));
	expect_one_line(err, path, "Permission denied");
}

Test(sqlite_sink, read_only_directory_is_a_one_line_error)
{
	char sub[160], p[200], err[256];
	snprintf(sub, sizeof(sub), "%s/ro", dir);
	cr_assert_eq(mkdir(sub, 0555), 0);
	snprintf(p, sizeof(p), "%s/x.db", sub);
	open_as_nobody(p, err, sizeof(err));
	expect_one_line(err, p, "Permission denied");
}

Test(sqlite_sink, full_disk_is_reported_on_flush_not_a_crash)
{
	struct sink_ids ids;
	struct sink *s = open_ok(2000, &ids);
	/* a file size limit is a real ENOSPC-like failure (EFBIG) under SQLite */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {.rlim_cur = 256 * 1024, .rlim_max = RLIM_INFINITY};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	put_session(s, 1, 1);
	int failed = 0;
	for (int i = 1; i <= 40000 && !failed; i++) {
		put_statement(s, i, 1);
		if (i % 2000 == 0 && sink_sync(s) < 0)
			failed = 1;
	}
	if (!failed)
		failed = sink_sync(s) < 0;
	cr_expect(failed, "writing past the file size limit must fail");
	expect_one_line(s->errmsg, path, ":");
	cr_expect_gt(s->dropped, 0, "rows of the failed batch are counted");
	sink_close(s);
}

/* issue #22: a database whose runs table predates the health columns (schema 3) gains
 * them (sensor_started_at ... host), and a run row stores them. */
Test(sqlite_sink, runs_gain_health_columns)
{
	struct sink_ids ids;
	sink_close(open_ok(0, &ids)); /* every other table as it is now */
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
				  "DROP TABLE runs; CREATE TABLE runs(id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT,"
				  " source TEXT, packets INTEGER, bytes INTEGER, kernel_drops INTEGER,"
				  " sensor_drops INTEGER, streams INTEGER, version TEXT, config TEXT, drops TEXT,"
				  " sensor TEXT);"
				  "INSERT INTO runs(id, source) VALUES(1, 'file:old');"
				  "PRAGMA user_version = 3",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	struct sink *s = open_ok(0, &ids);
	cr_expect_eq(ids.run, 2);
	struct rec_run run = { .id = 2, .started_at = T0, .source = "iface:lo", .sensor_started_at = T0,
			       .status = "running", .stats_at = T0 + 1000000, .stats_interval_s = 60,
			       .stats = "{\"packets\":1}", .pid = 42, .host = "h" };
	struct rec r = { .type = REC_RUN, .u.run = &run };
	put_ok(s, &r);
	cr_assert_eq(sink_sync(s), 0);
	sink_close(s);
	db = db_open();
	cr_expect_eq(q1(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	char *v = qs(db, "SELECT sensor_started_at || ' ' || status || ' ' || stats_at || ' ' || stats_interval_s"
			 " || ' ' || stats || ' ' || pid || ' ' || host FROM runs WHERE id = 2");
	cr_expect_str_eq(v, "2026-11-27T09:15:02.123456Z running 2026-11-27T09:15:03.123456Z 60 {\"packets\":1} 42 h");
	free(v);
	cr_expect_eq(q1(db, "SELECT count(*) FROM runs WHERE sensor_stopped_at IS NULL"), 2);
	sqlite3_close(db);
}
