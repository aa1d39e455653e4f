/* `dbtap report` and `dbtap prune` on databases filled through the real sink: every number
 * in the JSON report equals the SQL count over the same window; several databases merge;
 * text and HTML carry the same numbers and escape hostile strings; prune keeps findings. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "demo_fill.h"
#include "report.h"
#include "sink.h"

static char dir[64];
static char db1[128], db2[128], out[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dbtap-rp-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db1, sizeof(db1), "%s/a.db", dir);
	snprintf(db2, sizeof(db2), "%s/b.db", dir);
	snprintf(out, sizeof(out), "%s/report.out", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

TestSuite(report, .init = setup, .fini = teardown);

#define T_2026_11_26_03 (1795662000LL * 1000000)

static struct demo_counts fill(const char *path, int64_t t0, int hours, unsigned seed)
{
	char err[256];
	struct sink_ids ids;
	struct sink *s = sink_sqlite_open(path, 0, &ids, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	sink_sqlite_set_wait(s, 1);
	struct demo_counts c;
	cr_assert_eq(demo_fill(s, &ids, t0, hours, 12, seed, &c), 0, "%s", s->errmsg);
	cr_assert_eq(sink_sync(s), 0, "%s", s->errmsg);
	cr_assert_eq(s->dropped, 0);
	sink_close(s);
	return c;
}

static int run_cli(const char **args, int n)
{
	char *argv[16];
	for (int i = 0; i < n; i++)
		argv[i] = (char *)args[i];
	argv[n] = NULL;
	return report_main(n, argv);
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	cr_assert_not_null(f, "%s", p);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = 0;
	fclose(f);
	return b;
}

static cJSON *report_json(const char **extra, int nextra, const char *const *dbs, int ndbs)
{
	const char *args[16] = {"report"};
	int n = 1;
	for (int i = 0; i < ndbs; i++) {
		args[n++] = "-d";
		args[n++] = dbs[i];
	}
	for (int i = 0; i < nextra; i++)
		args[n++] = extra[i];
	args[n++] = "--format";
	args[n++] = "json";
	args[n++] = "-o";
	args[n++] = out;
	cr_assert_eq(run_cli(args, n), 0);
	char *txt = slurp(out);
	cJSON *j = cJSON_Parse(txt);
	cr_assert_not_null(j, "report JSON does not parse");
	free(txt);
	return j;
}

/* Sum of a count query over the databases with the report's window bound. */
static int64_t sql_count(const char *const *dbs, int ndbs, const char *sql, const char *since,
			 const char *until)
{
	int64_t total = 0;
	for (int i = 0; i < ndbs; i++) {
		sqlite3 *db;
		sqlite3_stmt *st;
		cr_assert_eq(sqlite3_open_v2(dbs[i], &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
			     sqlite3_errmsg(db));
		sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, until, -1, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		total += sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	return total;
}

static double jnum(const cJSON *root, const char *a, const char *b)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, a);
	if (b)
		o = cJSON_GetObjectItemCaseSensitive(o, b);
	cr_assert(cJSON_IsNumber(o), "%s.%s is not a number", a, b ? b : "");
	return o->valuedouble;
}

static const char *jstr(const cJSON *root, const char *a, const char *b)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, a), b);
	cr_assert(cJSON_IsString(o), "%s.%s is not a string", a, b);
	return o->valuestring;
}

static void check_numbers(const cJSON *j, const char *const *dbs, int ndbs)
{
	const char *since = jstr(j, "window", "since"), *until = jstr(j, "window", "until");
#define W " >= ?1 AND %s < ?2"
#define C(expr, sql)                                                                           \
	cr_expect_eq((int64_t)(expr), sql_count(dbs, ndbs, sql, since, until), "%s", sql)
	C(jnum(j, "statements", "stored"),
	  "SELECT count(*) FROM statements WHERE ts >= ?1 AND ts < ?2");
	C(jnum(j, "statements", "errors"),
	  "SELECT count(*) FROM statements WHERE outcome = 'error' AND ts >= ?1 AND ts < ?2");
	C(jnum(j, "sessions", "total"),
	  "SELECT count(*) FROM sessions WHERE started_at >= ?1 AND started_at < ?2");
	C(jnum(j, "sessions", "login_failed"),
	  "SELECT count(*) FROM sessions WHERE login = 'failed' AND started_at >= ?1"
	  " AND started_at < ?2");
	C(jnum(j, "failed_logins", "total"),
	  "SELECT count(*) FROM v_failed_logins WHERE started_at >= ?1 AND started_at < ?2");
	C(jnum(j, "sessions", "statements_observed"),
	  "SELECT coalesce(sum(statements), 0) FROM sessions WHERE started_at >= ?1"
	  " AND started_at < ?2");
	C(jnum(j, "findings", "total"), "SELECT count(*) FROM findings WHERE ts >= ?1 AND ts < ?2");
	C(jnum(j, "findings", "critical"),
	  "SELECT count(*) FROM findings WHERE severity = 'critical' AND ts >= ?1 AND ts < ?2");
	C(jnum(j, "new_shapes", "total"),
	  "SELECT count(*) FROM findings WHERE kind = 'new_query_shape' AND ts >= ?1 AND ts < ?2");
	C(jnum(j, "blind_spots", "tls"),
	  "SELECT count(*) FROM sessions WHERE tls = 1 AND started_at >= ?1 AND started_at < ?2");
	C(jnum(j, "blind_spots", "midstream"),
	  "SELECT count(*) FROM sessions WHERE midstream = 1 AND started_at >= ?1"
	  " AND started_at < ?2");
	C(jnum(j, "blind_spots", "with_gaps"),
	  "SELECT count(*) FROM sessions WHERE gaps > 0 AND started_at >= ?1 AND started_at < ?2");
	C(jnum(j, "blind_spots", "undecodable"),
	  "SELECT count(DISTINCT session_id) FROM findings WHERE kind = 'protocol_anomaly'"
	  " AND ts >= ?1 AND ts < ?2");
	C(jnum(j, "blind_spots", "kernel_drops"), "SELECT sum(kernel_drops) FROM runs");

	/* every kind row and every activity bucket adds up to the totals */
	const cJSON *it;
	int64_t sum = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
				       cJSON_GetObjectItemCaseSensitive(j, "findings"), "by_kind"))
	{
		char sql[200];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM findings WHERE kind = '%s'"
					   " AND ts >= ?1 AND ts < ?2",
			 cJSON_GetObjectItemCaseSensitive(it, "kind")->valuestring);
		C(jnum(it, "total", NULL), sql);
		sum += (int64_t)jnum(it, "total", NULL);
	}
	cr_expect_eq(sum, (int64_t)jnum(j, "findings", "total"));
	int64_t act = 0, buckets = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "activity"))
	{
		act += (int64_t)jnum(it, "statements", NULL);
		buckets++;
	}
	cr_expect_eq(act, (int64_t)jnum(j, "statements", "stored"));
	cr_expect_gt(buckets, 0);
	/* lists are ordered, biggest first */
	double prev = 1e18;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
				       cJSON_GetObjectItemCaseSensitive(j, "failed_logins"), "by_client"))
	{
		cr_expect_leq(jnum(it, "count", NULL), prev, "failed logins sorted by count");
		prev = jnum(it, "count", NULL);
	}
	prev = 1e18;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "top_db_users"))
	{
		cr_expect_leq(jnum(it, "statements", NULL), prev, "db users sorted by statements");
		prev = jnum(it, "statements", NULL);
	}
	/* top db users by sessions: the first row matches a GROUP BY */
	const cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "top_db_users"), 0);
	cr_assert_not_null(top);
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(top, "db_user");
	if (cJSON_IsString(u)) {
		char sql[200];
		snprintf(sql, sizeof(sql), "SELECT coalesce(sum(statements), 0) FROM sessions WHERE"
					   " db_user = '%s' AND started_at >= ?1 AND started_at < ?2",
			 u->valuestring);
		C(jnum(top, "statements", NULL), sql);
	}
#undef C
#undef W
}

Test(report, json_numbers_equal_sql_counts_over_the_default_window)
{
	struct demo_counts c = fill(db1, T_2026_11_26_03, 30, 7);
	cr_assert_gt(c.statements, 100);
	const char *dbs[] = {db1};
	cJSON *j = report_json(NULL, 0, dbs, 1);
	/* default: the last 24 h of packet time present */
	cr_expect_str_eq(jstr(j, "window", "bucket"), "hour");
	const char *newest = jstr(j, "window", "newest_packet");
	int64_t n_us, s_us, u_us;
	cr_assert_eq(report_parse_time(newest, &n_us), 0);
	cr_assert_eq(report_parse_time(jstr(j, "window", "since"), &s_us), 0);
	cr_assert_eq(report_parse_time(jstr(j, "window", "until"), &u_us), 0);
	cr_expect_eq(u_us, n_us + 1);
	cr_expect_eq(u_us - s_us, 24LL * 3600 * 1000000);
	check_numbers(j, dbs, 1);
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "activity")), 25,
		     "24 h not aligned to the hour cover 25 hour buckets");
	/* the window really cut: 30 hours were written */
	cr_expect_lt(jnum(j, "sessions", "total"), c.sessions);
	cr_expect_gt(jnum(j, "findings", "total"), 0);
	cr_expect_gt(jnum(j, "failed_logins", "total"), 0);
	cJSON_Delete(j);
}

Test(report, several_databases_merge_into_one_report)
{
	fill(db1, T_2026_11_26_03, 24, 1);
	fill(db2, T_2026_11_26_03 + 3600LL * 1000000, 24, 2);
	const char *dbs[] = {db1, db2};
	cJSON *j = report_json(NULL, 0, dbs, 2);
	check_numbers(j, dbs, 2);
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "databases")), 2);
	cr_expect_eq(jnum(j, "capture", "runs"), 2);
	cJSON_Delete(j);
}

Test(report, since_and_last_select_the_window)
{
	fill(db1, T_2026_11_26_03, 30, 3);
	const char *dbs[] = {db1};
	const char *a1[] = {"--since", "2026-11-26T12:00:00Z"};
	cJSON *j = report_json(a1, 2, dbs, 1);
	cr_expect_str_eq(jstr(j, "window", "since"), "2026-11-26T12:00:00.000000Z");
	check_numbers(j, dbs, 1);
	cJSON_Delete(j);
	const char *a2[] = {"--last", "90m"};
	j = report_json(a2, 2, dbs, 1);
	int64_t s_us, u_us;
	cr_assert_eq(report_parse_time(jstr(j, "window", "since"), &s_us), 0);
	cr_assert_eq(report_parse_time(jstr(j, "window", "until"), &u_us), 0);
	cr_expect_eq(u_us - s_us, 90LL * 60 * 1000000);
	check_numbers(j, dbs, 1);
	cJSON_Delete(j);
	const char *a3[] = {"--last", "7d"};
	j = report_json(a3, 2, dbs, 1);
	/* the window reaches before the data: charts start at the oldest row (30 h of hours) */
	cr_expect_str_eq(jstr(j, "window", "bucket"), "hour");
	cr_expect_leq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "activity")), 31);
	check_numbers(j, dbs, 1);
	cJSON_Delete(j);
}

Test(report, windows_longer_than_three_days_use_day_buckets)
{
	fill(db1, T_2026_11_26_03, 100, 8);
	const char *dbs[] = {db1};
	const char *a[] = {"--last", "7d"};
	cJSON *j = report_json(a, 2, dbs, 1);
	cr_expect_str_eq(jstr(j, "window", "bucket"), "day");
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "activity")), 5,
		     "100 h from 03:00 touch 5 days");
	check_numbers(j, dbs, 1);
	cJSON_Delete(j);
}

Test(report, text_and_html_show_the_same_numbers_and_escape_hostile_sql)
{
	fill(db1, T_2026_11_26_03, 30, 4);
	const char *dbs[] = {db1};
	cJSON *j = report_json(NULL, 0, dbs, 1);
	char want[64];
	snprintf(want, sizeof(want), "findings          %lld ",
		 (long long)jnum(j, "findings", "total"));

	const char *t[] = {"report", "-d", db1, "-o", out};
	cr_assert_eq(run_cli(t, 5), 0);
	char *txt = slurp(out);
	cr_expect_not_null(strstr(txt, want), "text lacks '%s'", want);
	cr_expect_not_null(strstr(txt, "FAILED LOGINS"));
	cr_expect_null(strchr(txt, '\x1b'), "no terminal escapes in text");
	free(txt);

	const char *h[] = {"report", "-d", db1, "--format", "html", "-o", out};
	cr_assert_eq(run_cli(h, 7), 0);
	char *html = slurp(out);
	cr_expect_eq(strncmp(html, "<!DOCTYPE html>", 15), 0);
	cr_expect_not_null(strstr(html, "<svg"));
	cr_expect_null(strstr(html, "<script"), "hostile SQL must be escaped");
	cr_expect_null(strstr(html, "src="), "no external assets");
	cr_expect_null(strstr(html, "href="), "no external assets");
	snprintf(want, sizeof(want), "<div class=\"v\">%lld</div><div class=\"l\">findings",
		 (long long)jnum(j, "findings", "total"));
	cr_expect_not_null(strstr(html, want), "html lacks '%s'", want);
	free(html);
	cJSON_Delete(j);
}

Test(report, empty_database_gives_a_report_of_zeros)
{
	char err[256];
	struct sink_ids ids;
	sink_close(sink_sqlite_open(db1, 0, &ids, err, sizeof(err)));
	const char *dbs[] = {db1};
	cJSON *j = report_json(NULL, 0, dbs, 1);
	cr_expect_eq(jnum(j, "statements", "stored"), 0);
	cr_expect_eq(jnum(j, "findings", "total"), 0);
	cJSON_Delete(j);
	const char *h[] = {"report", "-d", db1, "--format", "html", "-o", out};
	cr_expect_eq(run_cli(h, 7), 0);
}

Test(report, bad_input_gives_exit_1_or_2)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/missing.db", dir);
	const char *a[] = {"report", "-d", p};
	cr_expect_eq(run_cli(a, 3), 1);
	cr_expect_neq(access(p, F_OK), 0, "report must not create a database");
	FILE *f = fopen(db1, "w");
	fputs("not a database at all, not even close. padding padding padding padding\n", f);
	fclose(f);
	const char *b[] = {"report", "-d", db1};
	cr_expect_eq(run_cli(b, 3), 1);
	const char *c[] = {"report", "--format", "pdf"};
	cr_expect_eq(run_cli(c, 3), 2);
	const char *d[] = {"report", "--last", "yesterday"};
	cr_expect_eq(run_cli(d, 3), 2);
	const char *e[] = {"report", "--since", "2026-13-01"};
	cr_expect_eq(run_cli(e, 3), 2);
	const char *g[] = {"prune", "-d", db1};
	cr_expect_eq(run_cli(g, 3), 2, "prune needs --older-than");
	const char *k[] = {"report", "--bogus"};
	cr_expect_eq(run_cli(k, 2), 2);
}

Test(report, prune_deletes_old_statements_and_keeps_findings_and_sessions)
{
	/* 2020: far older than 30 days */
	struct demo_counts c = fill(db1, 1577854800LL * 1000000, 6, 5);
	const char *a[] = {"prune", "-d", db1, "--older-than", "30d"};
	cr_assert_eq(run_cli(a, 5), 0);
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(db1, &db), SQLITE_OK);
	const char *q[] = {"SELECT count(*) FROM statements", "SELECT count(*) FROM findings",
			   "SELECT count(*) FROM sessions", "SELECT count(*) FROM runs"};
	int64_t want[] = {0, c.findings, c.sessions, 1};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(sqlite3_prepare_v2(db, q[i], -1, &st, NULL), SQLITE_OK);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		cr_expect_eq(sqlite3_column_int64(st, 0), want[i], "%s", q[i]);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	/* recent data is kept */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	c = fill(db2, ((int64_t)now.tv_sec - 3 * 3600) * 1000000, 2, 6);
	const char *b[] = {"prune", "-d", db2, "--older-than", "30d", "--vacuum"};
	cr_assert_eq(run_cli(b, 6), 0);
	cr_assert_eq(sqlite3_open(db2, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, q[0], -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int64(st, 0), c.statements);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* prune --dry-run says what it would delete and changes nothing: the database's bytes stay
 * the same and a read-only file opens (issue #20 item 4). */
Test(report, prune_dry_run_counts_and_changes_nothing)
{
	struct demo_counts c = fill(db1, 1577854800LL * 1000000, 6, 5); /* 2020 */
	struct prune_plan p;
	char err[256];
	cr_assert_eq(report_prune_plan(db1, 1609459200LL * 1000000, &p, err, sizeof err), 0, "%s", err);
	cr_expect_eq(p.statements, c.statements);
	cr_expect_eq(strncmp(p.oldest, "2020-01-01", 10), 0, "oldest %s", p.oldest);
	cr_expect_eq(report_prune_plan(db1, 1500000000LL * 1000000, &p, err, sizeof err), 0);
	cr_expect_eq(p.statements, 0);
	cr_expect_eq(p.oldest[0], 0);
	char *before = slurp(db1);
	struct stat sb0, sb1;
	stat(db1, &sb0);
	cr_assert_eq(chmod(db1, 0440), 0);
	const char *a[] = {"prune", "-d", db1, "--older-than", "30d", "--dry-run", "--vacuum"};
	cr_expect_eq(run_cli(a, 7), 0);
	cr_assert_eq(chmod(db1, 0640), 0);
	stat(db1, &sb1);
	char *after = slurp(db1);
	cr_expect_eq(sb0.st_size, sb1.st_size);
	cr_expect_eq(memcmp(before, after, (size_t)sb0.st_size), 0, "dry run changed the database");
	free(before);
	free(after);
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(db1, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM statements", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int64(st, 0), c.statements, "nothing deleted");
	sqlite3_finalize(st);
	sqlite3_close(db);
	char p2[160];
	snprintf(p2, sizeof(p2), "%s/missing.db", dir);
	const char *b[] = {"prune", "-d", p2, "--older-than", "30d", "-n"};
	cr_expect_eq(run_cli(b, 6), 1);
	cr_expect_neq(access(p2, F_OK), 0, "a dry run must not create a database");
}

Test(report, parsers_accept_iso_times_and_durations)
{
	int64_t us;
	cr_expect_eq(report_parse_time("2026-11-27", &us), 0);
	cr_expect_eq(us, 1795737600LL * 1000000);
	cr_expect_eq(report_parse_time("2026-11-27T09:15:02.123456Z", &us), 0);
	cr_expect_eq(us, 1795770902123456LL);
	cr_expect_eq(report_parse_time("2026-11-27T10:15:02+01:00", &us), 0);
	cr_expect_eq(us, 1795770902LL * 1000000);
	cr_expect_eq(report_parse_time("2026-11-27T09:15", &us), 0);
	cr_expect_lt(report_parse_time("27/11/2026", &us), 0);
	cr_expect_lt(report_parse_time("2026-11-27T25:00", &us), 0);
	cr_expect_lt(report_parse_time("2026-11-27Tx", &us), 0);
	cr_expect_eq(report_parse_duration("24h", &us), 0);
	cr_expect_eq(us, 24LL * 3600 * 1000000);
	cr_expect_eq(report_parse_duration("30d", &us), 0);
	cr_expect_lt(report_parse_duration("30", &us), 0);
	cr_expect_lt(report_parse_duration("-1h", &us), 0);
	cr_expect_lt(report_parse_duration("1hh", &us), 0);
	cr_expect_lt(report_parse_duration("99999999999999999w", &us), 0);
}

/* Golden report: a fixed database (demo_fill is deterministic in its seed) over a fixed
 * window gives exactly tests/storage/data/report_golden.json, paths and version aside.
 * A deliberate change regenerates it: DBTAP_UPDATE_GOLDEN=1, then review the diff. */
Test(report, golden_json)
{
	fill(db1, T_2026_11_26_03, 30, 11);
	const char *extra[] = { "--since", "2026-11-26T00:00:00Z", "--until", "2026-11-27T12:00:00Z" };
	const char *dbs[] = { db1 };
	cJSON *j = report_json(extra, 4, dbs, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "version");
	cJSON *d;
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "databases"))
		cJSON_ReplaceItemInObjectCaseSensitive(d, "path", cJSON_CreateString("a.db"));
	char *got = cJSON_Print(j);
	cJSON_Delete(j);
	char golden[1024];
	const char *src = getenv("DBTAP_SRC");
	snprintf(golden, sizeof golden, "%s/tests/storage/data/report_golden.json", src ? src : ".");
	if (getenv("DBTAP_UPDATE_GOLDEN")) {
		FILE *f = fopen(golden, "w");
		cr_assert_not_null(f, "%s", golden);
		fprintf(f, "%s\n", got);
		fclose(f);
	}
	char *want = slurp(golden);
	size_t n = strlen(want);
	if (n && want[n - 1] == '\n')
		want[n - 1] = 0;
	cr_expect_str_eq(got, want, "report differs from %s (DBTAP_UPDATE_GOLDEN=1 to regenerate)", golden);
	free(got);
	free(want);
}
