/* The learned baseline (analyzer/baseline.c, storage/baseline_store.c): learning periods,
 * --learn, each new_* kind and off_hours firing once, time zones and day boundaries, subnets,
 * acknowledgement, persistence across analyzer instances, caps, the sql_injection boost. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <sqlite3.h>

#include "an.h"
#include "an_int.h"
#include "baseline.h"
#include "baseline_store.h"
#include "harness.h"

#define HOUR 3600.0
#define DAY (24 * HOUR)
#define T0 (1764000000LL * 1000000LL) /* 2025-11-24T16:00:00Z, the harness's start */

static struct harness h;
static char dbdir[64], dbpath[128];

static void mkdb(void)
{
	snprintf(dbdir, sizeof dbdir, "/tmp/dbtap-bltest-XXXXXX");
	cr_assert_not_null(mkdtemp(dbdir));
	snprintf(dbpath, sizeof dbpath, "%s/t.db", dbdir);
}

static void rmdb(void)
{
	char p[160];
	const char *suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
		unlink(p);
	}
	rmdir(dbdir);
}

/* Start an analyzer (optionally on the database), with cfg tweaks applied by the caller
 * between h_init and this call. */
static void start(int learn, const char *db)
{
	h.cfg.learn = learn;
	h.db = db;
	h_start(&h);
	if (db) {
		char err[256];
		cr_assert_eq(an_baseline_open(h.an, db, err, sizeof err), 0, "%s", err);
	}
}

static void session(const char *user, const char *app, const char *ip)
{
	h_open(&h, "postgresql", ip);
	h_startup(&h, user, "shop", app);
	h_login(&h, 1);
}

static int count(const char *kind)
{
	return rec_sink_count_kind(h.sink, kind);
}

static int baseline_findings(void)
{
	return count("new_query_shape") + count("new_client") + count("new_application") + count("off_hours");
}

/* The findings' evidence of kind, as a parsed object (caller deletes), n-th occurrence. */
static cJSON *evidence(const char *kind, int nth)
{
	for (int i = 0; i < h.sink->n_f; i++)
		if (!strcmp(h.sink->f[i].kind, kind) && nth-- == 0)
			return cJSON_Parse(h.sink->f[i].evidence);
	return NULL;
}

static void workload(void)
{
	session("shop", "web", "10.0.0.5");
	h_simple(&h, "SELECT name FROM products WHERE id = 1", 1, 'I');
	h_simple(&h, "SELECT name FROM products WHERE id = 2", 1, 'I');
	h_simple(&h, "/*app_user='alice'*/ INSERT INTO orders(a, b) VALUES (1, 2)", 1, 'I');
}

Test(baseline, learn_mode_records_but_raises_nothing)
{
	h_init(&h);
	start(1, NULL);
	workload();
	h_simple(&h, "SELECT secret FROM vault", 1, 'I');
	h_sleep(&h, 10 * HOUR); /* 02:00 UTC: outside business hours, still nothing */
	h_simple(&h, "SELECT name FROM products WHERE id = 3", 1, 'I');
	cr_expect_eq(baseline_findings(), 0);
	h_end(&h);
	h_free(&h);
}

Test(baseline, survives_restart_and_judges_from_the_next_run)
{
	mkdb();
	h_init(&h);
	start(1, dbpath);
	workload();
	h_end(&h);
	h_free(&h);

	h_init(&h);
	h.t = T0 + (int64_t)(DAY * 1e6);
	start(0, dbpath);
	workload(); /* the same application a day later: nothing new */
	cr_expect_eq(baseline_findings(), 0, "known workload raised %d", baseline_findings());
	h_simple(&h, "SELECT email FROM customers WHERE id = 7", 1, 'I');
	h_simple(&h, "SELECT email FROM customers WHERE id = 8", 1, 'I'); /* same shape: once */
	cr_expect_eq(count("new_query_shape"), 1);
	cJSON *ev = evidence("new_query_shape", 0);
	cr_assert_not_null(ev);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "signal")->valuestring, "new_shape");
	cr_expect_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "new_tables"), 0)->valuestring, "customers");
	cJSON *exp = cJSON_GetObjectItem(ev, "expected");
	cr_expect_eq(cJSON_GetObjectItem(exp, "known_shapes")->valueint, 2);
	cJSON_Delete(ev);
	h_end(&h);
	h_free(&h);

	/* the new shape joined the baseline on disk */
	h_init(&h);
	h.t = T0 + (int64_t)(2 * DAY * 1e6);
	start(0, dbpath);
	session("shop", "web", "10.0.0.5");
	h_simple(&h, "SELECT email FROM customers WHERE id = 9", 1, 'I');
	cr_expect_eq(baseline_findings(), 0);
	h_end(&h);
	h_free(&h);
	rmdb();
}

static int64_t rows_where(const char *path, const char *where)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t n = -1;
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM baseline WHERE %s", where);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static int64_t stored_rows(const char *path)
{
	return rows_where(path, "1");
}

/* Regression: the periodic flush used its own connection and, on the analyzer's thread,
 * slept in SQLite's busy handler (up to 50 ms a flush) for the sink writer's lock, which
 * audit:all holds nearly always; a bench run slept 0.48 s. Changed rows now go through the
 * writer's queue. With another connection holding the write lock, the flush cannot store
 * anything, yet once the lock is free the rows arrive without a further flush. */
Test(baseline, periodic_flush_goes_through_the_sink_writer)
{
	mkdb();
	h_init(&h);
	h.cfg.baseline.flush_interval_s = 5;
	start(1, dbpath);
	sqlite3 *locker = NULL;
	cr_assert_eq(sqlite3_open(dbpath, &locker), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	workload();
	h_sleep(&h, 10); /* the periodic flush, while the lock is held */
	cr_expect_eq(stored_rows(dbpath), 0);
	cr_assert_eq(sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(locker);
	cr_assert_eq(sink_sync(h.db_sink), 0);
	int64_t n = stored_rows(dbpath);
	cr_expect_geq(n, 8, "principal, shape x2, table x2, client, subnet, application, hour: %lld", (long long)n);
	h_free(&h);
	rmdb();
}

Test(baseline, learning_period_holds_back_then_each_new_thing_fires_once)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 3600;
	h.cfg.baseline.prefix_v4 = 24;
	start(0, NULL);
	workload();
	h_simple(&h, "SELECT 1 FROM t1", 1, 'I');
	cr_expect_eq(baseline_findings(), 0, "learning: held back");
	h_sleep(&h, 2 * HOUR); /* 18:00, known hour? no: 18 is new, but inside business hours */
	h_simple(&h, "SELECT 1 FROM t2", 1, 'I');
	h_simple(&h, "SELECT 1 FROM t2", 1, 'I');
	cr_expect_eq(count("new_query_shape"), 1);
	cr_expect_eq(count("off_hours"), 1, "hour 18 was never seen after learning");
	session("shop", "psql", "10.0.0.5");
	session("shop", "psql", "10.0.0.5");
	cr_expect_eq(count("new_application"), 1);
	session("shop", "web", "10.0.7.5");
	session("shop", "web", "10.0.7.6");
	session("shop", "web", "10.0.0.77"); /* same /24 as the learned client */
	cr_expect_eq(count("new_client"), 1);
	cJSON *ev = evidence("new_client", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "subnet")->valuestring, "10.0.7.0/24");
	cr_expect_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "expected"), "known_subnets"), 0)
				 ->valuestring,
			 "10.0.0.0/24");
	cJSON_Delete(ev);
	h_end(&h);
	h_free(&h);
}

Test(baseline, off_hours_falls_back_to_business_hours_while_learning)
{
	h_init(&h);
	h.t = T0 - (int64_t)(12 * HOUR * 1e6); /* 04:00 UTC */
	start(0, NULL);
	session("night", "cron", "10.0.0.5");
	h_simple(&h, "SELECT 1", 1, 'I');
	h_simple(&h, "SELECT 2", 1, 'I');
	cr_expect_eq(count("off_hours"), 1, "04:00 is outside 07:00-20:00, once per hour");
	cJSON *ev = evidence("off_hours", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "signal")->valuestring, "outside_business_hours");
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "local_time")->valuestring, "04:00");
	cJSON_Delete(ev);
	h_sleep(&h, 4 * HOUR); /* 08:00: business hours */
	h_simple(&h, "SELECT 3", 1, 'I');
	cr_expect_eq(count("off_hours"), 1);
	cr_expect_eq(count("new_query_shape") + count("new_client") + count("new_application"), 0);
	h_end(&h);
	h_free(&h);
}

Test(baseline, business_hours_and_fixed_offset_from_config)
{
	char err[256] = "";
	h_init(&h);
	cJSON *j = cJSON_Parse("{\"time_zone\": \"-05:00\", \"business_hours\": \"22:00-06:00\"}");
	cr_assert_eq(bl_config_set(&h.cfg, j, err, sizeof err), 0, "%s", err);
	cJSON_Delete(j);
	start(0, NULL); /* 16:00 UTC = 11:00 at -05:00: outside a night shift */
	session("night", "cron", "10.0.0.5");
	cr_expect_eq(count("off_hours"), 1);
	cJSON *ev = evidence("off_hours", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "local_time")->valuestring, "11:00");
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "time_zone")->valuestring, "-05:00");
	cJSON_Delete(ev);
	h_sleep(&h, 12 * HOUR); /* 23:00 local: inside the wrapped window */
	h_simple(&h, "SELECT 1", 1, 'I');
	cr_expect_eq(count("off_hours"), 1);
	h_end(&h);
	h_free(&h);
}

Test(baseline, hour_of_day_in_zones_and_across_day_boundaries)
{
	struct an_config c;
	char err[256];
	an_config_defaults(&c);
	int m;
	/* 2025-11-24T23:30:00Z */
	int64_t t = (1764000000LL + 7 * 3600 + 1800) * 1000000LL;
	cr_expect_eq(bl_hour_of(&c.baseline, t, &m), 23);
	cr_expect_eq(m, 23 * 60 + 30);
	cJSON *j = cJSON_Parse("{\"time_zone\": \"+01:00\"}");
	cr_assert_eq(bl_config_set(&c, j, err, sizeof err), 0, "%s", err);
	cJSON_Delete(j);
	cr_expect_eq(bl_hour_of(&c.baseline, t, &m), 0, "next day in +01:00");
	cr_expect_eq(m, 30);
	j = cJSON_Parse("{\"time_zone\": \"-09:30\"}");
	cr_assert_eq(bl_config_set(&c, j, err, sizeof err), 0, "%s", err);
	cJSON_Delete(j);
	cr_expect_eq(bl_hour_of(&c.baseline, t, &m), 14);
	cr_expect_eq(m, 14 * 60);
	cr_expect_eq(bl_hour_of(&c.baseline, t - 1, NULL), 13, "one microsecond earlier");
	if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) != 0) {
		an_config_free(&c);
		cr_skip_test("no TZ database (/usr/share/zoneinfo): tzdata not installed");
	}
	j = cJSON_Parse("{\"time_zone\": \"Europe/Berlin\"}");
	cr_assert_eq(bl_config_set(&c, j, err, sizeof err), 0, "%s", err);
	cJSON_Delete(j);
	setenv("TZ", "Europe/Berlin", 1); /* what the analyzer does at start for a zone name */
	tzset();
	cr_expect_eq(bl_hour_of(&c.baseline, t, NULL), 0, "winter: UTC+1");
	int64_t summer = 1751326200LL * 1000000LL; /* 2025-06-30T23:30:00Z */
	cr_expect_eq(bl_hour_of(&c.baseline, summer, &m), 1, "summer: UTC+2");
	cr_expect_eq(m, 90);
	unsetenv("TZ");
	tzset();
	an_config_free(&c);
}

Test(baseline, config_errors_name_the_key)
{
	static const char *const bad[][2] = {
		{ "{\"time_zone\": \"Mars/Olympus\"}", "baseline.time_zone" },
		{ "{\"time_zone\": \"../../etc/passwd\"}", "baseline.time_zone" },
		{ "{\"time_zone\": \"+15:00\"}", "baseline.time_zone" },
		{ "{\"business_hours\": \"7-20\"}", "baseline.business_hours" },
		{ "{\"business_hours\": \"08:00-08:00\"}", "baseline.business_hours" },
		{ "{\"client_prefix_v4\": 33}", "baseline.client_prefix_v4" },
		{ "{\"learning_period_s\": -1}", "baseline.learning_period_s" },
		{ "{\"require_ack\": 1}", "baseline.require_ack" },
		{ "{\"max_entries\": 1}", "baseline.max_entries" },
		{ "{\"when_full\": \"drop\"}", "baseline.when_full" },
		{ "{\"learning\": 5}", "baseline.learning" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct an_config c;
		char err[256] = "";
		an_config_defaults(&c);
		cJSON *j = cJSON_Parse(bad[i][0]);
		cr_expect_eq(an_config_set(&c, "baseline", j, err, sizeof err), -1, "%s", bad[i][0]);
		cr_expect(strstr(err, bad[i][1]) != NULL, "%s: %s", bad[i][0], err);
		cJSON_Delete(j);
		an_config_free(&c);
	}
	struct an_config c;
	char err[256] = "";
	an_config_defaults(&c);
	cJSON *j = cJSON_Parse("{\"learning_period_s\": 0, \"client_prefix_v6\": 48, \"require_ack\": true,"
			       " \"end_user_peers\": 0, \"flush_interval_s\": 5, \"_doc\": 1}");
	cr_expect_eq(an_config_set(&c, "baseline", j, err, sizeof err), 0, "%s", err);
	cr_expect_eq(c.baseline.learning_period_s, 0);
	cr_expect_eq(c.baseline.prefix_v6, 48);
	cr_expect_eq(c.baseline.require_ack, 1);
	cJSON_Delete(j);
	an_config_free(&c);
}

Test(baseline, ipv6_clients_by_prefix)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	h.cfg.baseline.prefix_v6 = 64;
	start(0, NULL);
	session("shop", "web", "2001:db8:1:2::5");
	h_sleep(&h, 120);
	session("shop", "web", "2001:db8:1:2::99"); /* same /64 */
	cr_expect_eq(count("new_client"), 0);
	session("shop", "web", "2001:db8:1:3::5");
	cr_expect_eq(count("new_client"), 1);
	cJSON *ev = evidence("new_client", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "subnet")->valuestring, "2001:db8:1:3::/64");
	cJSON_Delete(ev);
	h_end(&h);
	h_free(&h);
}

Test(baseline, require_ack_repeats_per_run_until_acknowledged)
{
	mkdb();
	h_init(&h);
	start(1, dbpath);
	workload();
	h_end(&h);
	h_free(&h);
	for (int run = 0; run < 2; run++) {
		h_init(&h);
		h.cfg.baseline.require_ack = 1;
		start(0, dbpath);
		session("shop", "psql", "10.0.0.5");
		session("shop", "psql", "10.0.0.5");
		cr_expect_eq(count("new_application"), 1, "run %d: once per run while pending", run);
		h_end(&h);
		h_free(&h);
	}
	/* acknowledge through the store, as `dbtap baseline --ack` does */
	char err[256];
	struct bstore *st = bstore_open(dbpath, 0, err, sizeof err);
	cr_assert_not_null(st, "%s", err);
	int64_t n = 0;
	cr_expect_eq(bstore_ack(st, "shop", &n), 0);
	cr_expect_eq(n, 1);
	bstore_close(st);
	h_init(&h);
	h.cfg.baseline.require_ack = 1;
	start(0, dbpath);
	session("shop", "psql", "10.0.0.5");
	cr_expect_eq(count("new_application"), 0, "acknowledged");
	h_end(&h);
	h_free(&h);
	rmdb();
}

Test(baseline, end_user_first_access_to_a_table_and_peer_group)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	start(0, NULL);
	session("app_svc", "web", "10.0.0.5");
	const char *users[] = { "u1", "u2", "u3", "u4" };
	char sql[160];
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof sql, "/*app_user='%s'*/ SELECT * FROM orders WHERE id = 1", users[i]);
		h_simple(&h, sql, 1, 'I');
	}
	h_simple(&h, "/*app_user='u1'*/ SELECT * FROM payroll WHERE id = 1", 1, 'I');
	h_simple(&h, "/*app_user='u4'*/ SELECT 1", 1, 'I');
	h_sleep(&h, 120);
	cr_expect_eq(baseline_findings(), 0, "learning");
	/* u4 reads orders, which three peers read: no news; payroll, which one peer reads: news */
	h_simple(&h, "/*app_user='u4'*/ SELECT * FROM orders WHERE id = 2", 1, 'I');
	cr_expect_eq(count("new_query_shape"), 0);
	h_simple(&h, "/*app_user='u4'*/ SELECT * FROM payroll WHERE id = 2", 1, 'I');
	cr_expect_eq(count("new_query_shape"), 1);
	cJSON *ev = evidence("new_query_shape", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "signal")->valuestring, "first_table_access");
	cr_expect_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "end_user_new_tables"), 0)->valuestring, "payroll");
	cJSON_Delete(ev);
	cr_expect_str_eq(h.sink->f[h.sink->n_f - 1].end_user, "u4");
	h_end(&h);
	h_free(&h);
}

Test(baseline, injection_in_a_known_shape_is_stronger_evidence)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	start(0, NULL);
	session("shop", "web", "10.0.0.5");
	h_simple(&h, "SELECT name FROM users WHERE name = 'bob'", 1, 'I');
	h_simple(&h, "SELECT id FROM items WHERE id = 4", 1, 'I');
	h_sleep(&h, 120);
	h_simple(&h, "SELECT name FROM users WHERE name = '' OR '1'='1'", 1, 'I');
	h_simple(&h, "SELECT id FROM items WHERE id = 4 UNION SELECT NULL", 1, 'I');
	h_simple(&h, "SELECT secret FROM vault WHERE id = 1 OR 1=1", 1, 'I');
	cr_assert_eq(count("sql_injection"), 3);
	const char *want_sev[] = { "critical", "critical", "high" };
	for (int i = 0; i < 3; i++) {
		cJSON *ev = evidence("sql_injection", i);
		const struct h_finding *f = NULL;
		for (int k = 0, n = 0; k < h.sink->n_f; k++)
			if (!strcmp(h.sink->f[k].kind, "sql_injection") && n++ == i)
				f = &h.sink->f[k];
		cr_expect_str_eq(f->severity, want_sev[i], "case %d", i);
		cr_expect_eq(cJSON_GetObjectItem(ev, "baseline_shape") != NULL, i < 2, "case %d", i);
		cJSON_Delete(ev);
	}
	h_end(&h);
	h_free(&h);
}

Test(baseline, bounded_memory_counts_drops_and_stays_quiet)
{
	h_init(&h);
	h.cfg.baseline.max_entries = 16;
	h.cfg.baseline.when_full = BL_FULL_STOP;
	h.cfg.baseline.learning_period_s = 0;
	start(0, NULL);
	session("shop", "web", "10.0.0.5");
	char sql[64];
	for (int i = 0; i < 200; i++) {
		snprintf(sql, sizeof sql, "SELECT c%d FROM t%d", i, i);
		h_simple(&h, sql, 1, 'I');
	}
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_gt(st.baseline_dropped, 0);
	cr_expect_lt(count("new_query_shape"), 16, "no finding for what cannot be remembered");
	/* but not silent (issue #20): one baseline_full for the run */
	cr_expect_eq(count("baseline_full"), 1);
	const struct h_finding *f = rec_sink_find(h.sink, "baseline_full");
	cr_assert(f);
	cr_expect(strstr(f->summary, "max_entries 16"), "%s", f->summary);
	h_end(&h);
	h_free(&h);
}

/* Issue #20: a full baseline must not go silent. By default it forgets the least recently
 * seen items: every new shape is still judged, one baseline_full says it, the counters
 * say how many went, and an item used all along survives. */
Test(baseline, full_evicts_least_recently_seen_and_keeps_judging)
{
	h_init(&h);
	h.cfg.baseline.max_entries = 64;
	h.cfg.baseline.learning_period_s = 0;
	start(0, NULL);
	session("shop", "web", "10.0.0.5");
	char sql[64];
	for (int i = 0; i < 300; i++) {
		snprintf(sql, sizeof sql, "SELECT c%d FROM t%d", i, i);
		h_simple(&h, sql, 1, 'I');
		h_simple(&h, "SELECT id FROM orders WHERE id = 1", 1, 'I'); /* used all along */
		h_sleep(&h, 1);
	}
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.baseline_dropped, 0);
	cr_expect_geq(st.baseline_evicted, 2 * 300 - 64, "%llu", (unsigned long long)st.baseline_evicted);
	cr_expect_eq(count("baseline_full"), 1);
	const struct h_finding *f = rec_sink_find(h.sink, "baseline_full");
	cr_assert(f);
	cr_expect(strstr(f->summary, "least recently seen"), "%s", f->summary);
	/* each of the 300 shapes was new, and orders' shape once */
	cr_expect_eq(count("new_query_shape"), 301, "%d", count("new_query_shape"));
	int before = count("new_query_shape");
	h_simple(&h, "SELECT id FROM orders WHERE id = 2", 1, 'I'); /* kept: most recently seen */
	h_simple(&h, "SELECT c299 FROM t299", 1, 'I');		/* kept: recent */
	cr_expect_eq(count("new_query_shape"), before);
	h_simple(&h, "SELECT c0 FROM t0", 1, 'I'); /* forgotten long ago: new again */
	cr_expect_eq(count("new_query_shape"), before + 1);
	cr_expect_eq(count("baseline_full"), 1, "once per run");
	h_end(&h);
	h_free(&h);
}

/* Evicted rows are deleted from the database as well (else the table grows without bound
 * and a restart loads what was forgotten), and a smaller max_entries at the next start
 * evicts while loading. */
Test(baseline, eviction_deletes_rows_and_holds_across_runs)
{
	mkdb();
	h_init(&h);
	h.cfg.baseline.max_entries = 64;
	h.cfg.baseline.learning_period_s = 0;
	start(0, dbpath);
	session("shop", "web", "10.0.0.5");
	char sql[64];
	for (int i = 0; i < 200; i++) {
		snprintf(sql, sizeof sql, "SELECT c%d FROM t%d", i, i);
		h_simple(&h, sql, 1, 'I');
		h_sleep(&h, 1);
	}
	h_end(&h);
	h_free(&h);
	int64_t n = stored_rows(dbpath);
	cr_expect(n > 0 && n <= 64, "rows on disk: %lld", (long long)n);
	cr_expect_eq(rows_where(dbpath, "item = 't0'"), 0, "the oldest table was forgotten");
	cr_expect_eq(rows_where(dbpath, "item = 't199'"), 1, "the newest table is kept");
	cr_expect_eq(rows_where(dbpath, "kind = 'principal' AND principal = 'shop'"), 1);

	h_init(&h);
	h.t = T0 + (int64_t)(DAY * 1e6);
	h.cfg.baseline.max_entries = 16;
	h.cfg.baseline.learning_period_s = 0;
	start(0, dbpath);
	session("shop", "web", "10.0.0.5");
	h_simple(&h, "SELECT c199 FROM t199", 1, 'I'); /* newest: survived the smaller load */
	cr_expect_eq(count("new_query_shape"), 0);
	h_end(&h);
	h_free(&h);
	n = stored_rows(dbpath);
	cr_expect(n > 0 && n <= 16, "rows on disk after a load into 16: %lld", (long long)n);
	rmdb();
}

/* The entries a statement is using are never the ones evicted, even when the table is so
 * small that one statement fills it (16 tables, 16 entries). */
Test(baseline, eviction_spares_what_the_statement_uses)
{
	h_init(&h);
	h.cfg.baseline.max_entries = 16;
	h.cfg.baseline.learning_period_s = 0;
	start(0, NULL);
	session("shop", "web", "10.0.0.5");
	char sql[512];
	for (int r = 0; r < 20; r++) {
		int n = snprintf(sql, sizeof sql, "SELECT 1 FROM ");
		for (int i = 0; i < 16; i++)
			n += snprintf(sql + n, sizeof sql - (size_t)n, "%sr%dt%d", i ? ", " : "", r, i);
		h_simple(&h, sql, 1, 'I');
		session(r & 1 ? "shop" : "other", "web", r & 2 ? "10.0.0.6" : "10.0.0.5");
		h_sleep(&h, 1);
	}
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_gt(st.baseline_evicted, 0);
	cr_expect_eq(count("baseline_full"), 1);
	h_end(&h);
	h_free(&h);
}

static int run_lines(char ***out)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	start(0, NULL);
	workload();
	h_sleep(&h, 9 * HOUR);
	workload();
	h_simple(&h, "SELECT x FROM y", 1, 'I');
	session("shop", "cli", "10.9.0.1");
	h_end(&h);
	int n = h.sink->n_f;
	*out = calloc((size_t)n + 1, sizeof **out);
	for (int i = 0; i < n; i++) {
		const struct h_finding *f = &h.sink->f[i];
		size_t l = strlen(f->kind) + strlen(f->summary) + strlen(f->evidence ? f->evidence : "") + 4;
		(*out)[i] = malloc(l);
		snprintf((*out)[i], l, "%s|%s|%s", f->kind, f->summary, f->evidence ? f->evidence : "");
	}
	h_free(&h);
	return n;
}

Test(baseline, repeated_runs_are_deterministic)
{
	char **a, **b;
	int na = run_lines(&a), nb = run_lines(&b);
	cr_expect_eq(na, nb);
	cr_expect_geq(na, 4, "shape, off_hours, application, client: %d", na);
	for (int i = 0; i < na && i < nb; i++)
		cr_expect_str_eq(a[i], b[i]);
	for (int i = 0; i < na; i++)
		free(a[i]);
	for (int i = 0; i < nb; i++)
		free(b[i]);
	free(a);
	free(b);
}

Test(baseline, business_hours_fallback_leaves_nothing_pending)
{
	/* judged at once (no learning period), no hours known yet: 16:00 is inside business
	 * hours, so the hour is learned, not alerted -- and not left pending for require_ack */
	mkdb();
	for (int run = 0; run < 2; run++) {
		h_init(&h);
		h.cfg.baseline.learning_period_s = 0;
		h.cfg.baseline.require_ack = 1;
		start(0, dbpath);
		session("shop", "web", "10.0.0.5");
		h_simple(&h, "SELECT 1", 1, 'I');
		cr_expect_eq(count("off_hours"), 0, "run %d", run);
		h_end(&h);
		h_free(&h);
	}
	rmdb();
}

Test(baseline, new_client_is_per_address_by_default)
{
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	start(0, NULL);
	session("shop", "web", "10.0.0.5");
	h_sleep(&h, 120);
	session("shop", "web", "10.0.0.6");
	session("shop", "web", "10.0.0.6");
	cr_expect_eq(count("new_client"), 1);
	cJSON *ev = evidence("new_client", 0);
	cr_expect_str_eq(cJSON_GetObjectItem(ev, "subnet")->valuestring, "10.0.0.6/32");
	cJSON_Delete(ev);
	h_end(&h);
	h_free(&h);
}

Test(baseline, identity_changes_within_a_session_are_judged_anew)
{
	/* the session keeps its principal, client and application entries between
	 * statements; a change of application or account must not reuse them */
	h_init(&h);
	h.cfg.baseline.learning_period_s = 60;
	start(0, NULL);
	session("shop", "", "10.0.0.5");
	h_simple(&h, "SELECT 1", 1, 'I');
	h_sleep(&h, 120);
	h_simple(&h, "SELECT 1", 1, 'I');
	cr_expect_eq(baseline_findings(), 0, "known: %d", baseline_findings());
	h_param(&h, "application_name", "evil-tool");
	h_simple(&h, "SELECT 1", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	cr_expect_eq(count("new_application"), 1, "the application set mid-session is new");
	cr_expect_eq(count("new_query_shape"), 1, "shapes are per application: SELECT ? is new for it");

	h_open(&h, "mysql", "10.0.0.5");
	h_startup(&h, "shop", "shop", "evil-tool");
	h_login(&h, 1);
	h_simple(&h, "SELECT 1", 1, 'I');
	int shapes = count("new_query_shape");
	struct ev e = { .type = EV_USER_CHANGE, .ts = h.t };
	e.u.user_change.user = STRV_LIT("ivan");
	e.u.user_change.ok = 1;
	h_event(&h, &e);
	/* ivan is a new principal, still learning: his first shape is not judged as shop's */
	h_simple(&h, "SELECT name FROM t", 1, 'I');
	cr_expect_eq(count("new_query_shape"), shapes, "judged under the old account");
	h_sleep(&h, 120);
	h_simple(&h, "SELECT email FROM t", 1, 'I');
	cr_expect_eq(count("new_query_shape"), shapes + 1, "ivan judged once his learning period ends");
	const struct h_finding *last = &h.sink->f[h.sink->n_f - 1];
	cr_expect_str_eq(last->db_user, "ivan");
	h_end(&h);
	h_free(&h);
}
