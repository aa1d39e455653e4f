/* Session state across a restart (issue #18): what is saved obeys keep_literals and the
 * secrets policy; a restored session keeps its row, identity, markers and prepared
 * statements; the loader survives hostile rows (truncated, wrong types, hostile sizes). */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "an.h"
#include "an_int.h"
#include "harness.h"

static struct harness h;
static char db[64];

static void start(void)
{
	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	h.db = db;
	h_start(&h);
	char err[256] = "";
	cr_assert_geq(an_state_open(h.an, db, err, sizeof err), 0, "%s", err);
}

static void open_flow(int midstream)
{
	struct an_flow f = { .protocol = "postgresql", .dialect = EV_DIALECT_POSTGRESQL, .client_ip = "10.0.0.5",
			     .server_ip = "10.0.0.1", .client_port = 41000, .server_port = 5432, .ts = h.t,
			     .midstream = midstream };
	h.s = an_open(h.an, &f);
	cr_assert_not_null(h.s);
}

static uint64_t exec_named(const char *name, const char *sql)
{
	struct ev e = { .type = EV_QUERY, .ts = h.t, .to_server = 1 };
	e.u.query.id = h.qid++;
	e.u.query.kind = EV_Q_EXECUTE;
	e.u.query.sql = strv_from(sql);
	e.u.query.sql_known = sql != NULL;
	e.u.query.stmt_name = strv_from(name);
	h_event(&h, &e);
	h_result(&h, e.u.query.id, EV_OUT_OK, 1, NULL);
	h_ready(&h, 'I');
	return e.u.query.id;
}

static char *saved_state(void)
{
	sqlite3 *d;
	sqlite3_stmt *st;
	char *out = NULL;
	cr_assert_eq(sqlite3_open(db, &d), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(d, "SELECT group_concat(state, '|') FROM session_state", -1, &st, NULL),
		     SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(d);
	return out;
}

static void exec_sql(const char *sql)
{
	sqlite3 *d;
	cr_assert_eq(sqlite3_open(db, &d), SQLITE_OK);
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(d, sql, NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
	sqlite3_close(d);
}

static void setup(void)
{
	snprintf(db, sizeof db, "/tmp/dbtap-test-state-%d.db", (int)getpid());
	unlink(db);
}

static void teardown(void)
{
	char p[80];
	unlink(db);
	snprintf(p, sizeof p, "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", db);
	unlink(p);
}

/* A first run: a pooled session with a marker and two named statements, cut by the end
 * of the capture. */
static void first_run(void)
{
	start();
	open_flow(0);
	h_startup(&h, "app_svc", "shop", "web");
	h_login(&h, 1);
	h_simple(&h, "SET app.end_user = 'erin'", 1, 'I');
	exec_named("s1", "SELECT * FROM t WHERE code = 'LIT-77' AND id = $1");
	exec_named("s2", "ALTER ROLE bob PASSWORD 'Pw-Secret-9'");
	h_free(&h);
}

TestSuite(state, .init = setup, .fini = teardown);

Test(state, saved_state_obeys_keep_literals_and_secrets)
{
	first_run();
	char *s = saved_state();
	cr_assert_not_null(s);
	cr_expect_null(strstr(s, "LIT-77"), "%s", s);
	cr_expect_null(strstr(s, "Pw-Secret-9"), "%s", s);
	cr_expect_not_null(strstr(s, "\"s1\""), "%s", s);
	cr_expect_null(strstr(s, "\"s2\""), "a secret statement is not saved: %s", s);
	cr_expect_not_null(strstr(s, "erin"), "%s", s);
	free(s);
}

Test(state, restored_session_keeps_row_identity_marker_and_statements)
{
	first_run();
	start();
	h.t += 1000000;
	open_flow(1); /* picked up mid-stream by the next run */
	exec_named("s1", NULL);
	cr_assert_eq(h.sink->n_st, 1);
	cr_expect_eq(h.sink->st[0].session_id, 1, "the same row");
	cr_expect_str_eq(h.sink->st[0].sql, "SELECT * FROM t WHERE code = ? AND id = $1");
	cr_expect_str_eq(h.sink->st[0].end_user, "erin");
	cr_expect_str_eq(h.sink->st[0].end_user_source, "session_variable", "truthful source");
	cr_expect_str_eq(h.sink->last_session.db_user, "app_svc");
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.sessions_restored, 1);
	h_free(&h);
}

Test(state, syn_on_a_saved_tuple_is_a_new_session)
{
	first_run();
	start();
	open_flow(0); /* a handshake: the port was reused by a new connection */
	h_startup(&h, "app_svc", "shop", "web");
	h_simple(&h, "SELECT 1", 1, 'I');
	cr_expect_neq(h.sink->st[0].session_id, 1);
	cr_expect_null(h.sink->st[0].end_user);
	h_free(&h);
}

/* Hostile rows: each is skipped with one warning; the run starts clean and never crashes. */
Test(state, loader_survives_hostile_rows)
{
	first_run();
	char *good = saved_state();
	cr_assert_not_null(good);
	static const char *const bad[] = {
		"'{'", "'[]'", "'null'", "'{\"v\":1}'", "x'00ff'", "42", "'{\"v\":1,\"id\":\"x\"}'",
		"'{\"v\":1,\"id\":1e300,\"proto\":\"postgresql\"}'",
		"'{\"v\":1,\"id\":2,\"proto\":\"postgresql\",\"ci\":\"10.0.0.5\",\"cp\":41001,\"si\":\"10.0.0.1\","
		"\"sp\":5432,\"ps\":[[\"a\",7,0]]}'",
		"'{\"v\":1,\"id\":2,\"proto\":\"postgresql\",\"ci\":\"10.0.0.5\",\"cp\":41001,\"si\":\"10.0.0.1\","
		"\"sp\":5432,\"sm\":[99,\"x\"]}'",
		"'{\"v\":1,\"id\":2,\"proto\":\"postgresql\",\"ci\":\"10.0.0.5\",\"cp\":41001,\"si\":\"10.0.0.1\","
		"\"sp\":5432,\"info\":\"not json\"}'",
	};
	char sql[512];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(sql, sizeof sql,
			 "INSERT OR REPLACE INTO session_state VALUES('postgresql 10.0.0.5 %zu 10.0.0.1 5432', 2, NULL,"
			 " strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ','now'), %s)",
			 50000 + i, bad[i]);
		exec_sql(sql);
	}
	exec_sql("INSERT INTO session_state VALUES(7, 'x', NULL, NULL, 'y')");
	/* mutations of the valid row: truncations and flipped bytes */
	sqlite3 *d;
	cr_assert_eq(sqlite3_open(db, &d), SQLITE_OK);
	sqlite3_stmt *ins;
	cr_assert_eq(sqlite3_prepare_v2(d, "INSERT OR REPLACE INTO session_state VALUES(?, 1, NULL,"
					   " strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?)", -1, &ins, NULL), SQLITE_OK);
	size_t n = strlen(good);
	srand(18);
	for (int m = 0; m < 400; m++) {
		char key[64], *mut = strdup(good);
		size_t len = n;
		if (m % 2)
			len = (size_t)rand() % n;
		else
			for (int k = 0; k < 4; k++)
				mut[(size_t)rand() % n] = (char)(rand() % 255 + 1);
		snprintf(key, sizeof key, "postgresql 10.0.0.9 %d 10.0.0.1 5432", 1000 + m);
		sqlite3_bind_text(ins, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 2, mut, (int)len, SQLITE_TRANSIENT);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		free(mut);
	}
	sqlite3_finalize(ins);
	sqlite3_close(d);
	free(good);

	h_init(&h);
	h.db = db;
	h_start(&h);
	char err[256] = "";
	int rc = an_state_open(h.an, db, err, sizeof err);
	cr_expect_eq(rc, 1, "a warning: %s", err);
	cr_expect_not_null(strstr(err, "not valid"), "%s", err);
	cr_expect_null(strchr(err, '\n'), "one line");
	/* the good row still resumes; a bad one does not */
	open_flow(1);
	exec_named("s1", NULL);
	cr_expect_str_eq(h.sink->st[0].end_user, "erin");
	h_free(&h);
}
