/* The JSON-lines sink: every record parses back (cJSON) to the values put in, one line per
 * record, hostile bytes (invalid UTF-8, controls, quotes) survive as valid JSON, reopen. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonw.h"
#include "sink.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dbtap-js-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/events.json", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

TestSuite(json_sink, .init = setup, .fini = teardown);

static const int64_t T0 = 1795770902123456LL; /* 2026-11-27T09:15:02.123456Z */

/* Read the file's lines; each must be valid UTF-8 and parse as one JSON object. */
static int read_lines(const char *p, cJSON **out, int max)
{
	FILE *f = fopen(p, "r");
	cr_assert_not_null(f);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int k = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		cr_assert_eq(line[n - 1], '\n', "every record ends its line");
		for (ssize_t i = 0; i < n;) {
			uint32_t cp;
			int len = u8_decode((const unsigned char *)line + i, (size_t)(n - i), &cp);
			cr_assert_gt(len, 0, "invalid UTF-8 at byte %zd of line %d", i, k);
			i += len;
		}
		cr_assert_lt(k, max);
		out[k] = cJSON_Parse(line);
		cr_assert_not_null(out[k], "line %d does not parse: %s", k, line);
		k++;
	}
	free(line);
	fclose(f);
	return k;
}

static const char *S(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert_not_null(v, "field %s missing", k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double N(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert(cJSON_IsNumber(v), "field %s is not a number", k);
	return v->valuedouble;
}

static int is_null(const cJSON *o, const char *k)
{
	return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, k));
}

Test(json_sink, every_record_type_round_trips_with_column_names)
{
	char err[256];
	struct sink *s = sink_json_open(path, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	struct rec_run run = {.id = 3, .started_at = T0, .source = "iface:eth1", .packets = 10,
			      .bytes = 1000, .kernel_drops = 1, .sensor_drops = 2, .streams = 4,
			      .version = "0.1.0", .config = "{\"audit\":\"all\"}",
			      .drops = "{\"sink\":0}"};
	struct rec_session se = {.id = 5, .run_id = 3, .protocol = "postgresql",
				 .client_ip = "2001:db8::5", .client_port = 50000,
				 .server_ip = "10.0.0.1", .server_port = 5432, .started_at = T0,
				 .ended_at = T0 + 1000000, .db_user = "alice", .database = "shop",
				 .application = "psql", .client_info = "{\"DateStyle\":\"ISO\"}",
				 .server_version = "15.5", .tls = 0, .auth_method = "scram-sha-256",
				 .login = "ok", .midstream = 0, .end_reason = "close",
				 .statements = 2, .errors = 1, .rows_returned = 3,
				 .bytes_to_server = 100, .bytes_to_client = 200, .gaps = 1,
				 .lost_bytes = 7};
	struct rec_statement st = {.id = 9, .session_id = 5, .ts = T0 + 500, .end_user = "bob",
				   .end_user_source = "comment", .verb = "SELECT",
				   .fingerprint = "0123456789abcdef", .sql = "SELECT ?",
				   .outcome = "ok", .rows = -1, .duration_us = 42,
				   .protocol = "postgresql", .client_ip = "2001:db8::5",
				   .db_user = "alice", .database = "shop", .application = "psql"};
	struct rec_finding f = {.id = 2, .run_id = 3, .session_id = 5, .statement_id = 0,
				.ts = T0 + 600, .kind = "bulk_read", .severity = "medium",
				.db_user = "alice", .summary = "many rows", .evidence = "{\"rows\":1}"};
	struct rec r[4] = {{.type = REC_RUN, .u.run = &run},
			   {.type = REC_SESSION, .u.session = &se},
			   {.type = REC_STATEMENT, .u.statement = &st},
			   {.type = REC_FINDING, .u.finding = &f}};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(sink_put(s, &r[i]), 0);
	/* baseline rows live in the database only: accepted, not written */
	struct rec_baseline b = { .scope = "db_user", .principal = "alice", .kind = "shape", .item = "0123456789abcdef" };
	struct rec rb = { .type = REC_BASELINE, .u.baseline = &b };
	cr_expect_eq(sink_put(s, &rb), 0);
	cr_expect_eq(sink_flush(s), 0);
	sink_close(s);

	cJSON *l[8];
	cr_assert_eq(read_lines(path, l, 8), 4);
	cr_expect_str_eq(S(l[0], "event_type"), "run");
	cr_expect_eq(N(l[0], "id"), 3);
	cr_expect_str_eq(S(l[0], "started_at"), "2026-11-27T09:15:02.123456Z");
	cr_expect(is_null(l[0], "ended_at"));
	cr_expect_str_eq(S(l[0], "source"), "iface:eth1");
	cr_expect_eq(N(l[0], "sensor_drops"), 2);
	/* v2: JSON columns are nested objects, not JSON text in a string */
	cr_expect_str_eq(S(cJSON_GetObjectItemCaseSensitive(l[0], "config"), "audit"), "all");
	cr_expect_eq(N(l[0], "schema_version"), 2);
	cr_expect_str_eq(S(l[0], "timestamp"), "2026-11-27T09:15:02.123456Z");

	cr_expect_str_eq(S(l[1], "event_type"), "session");
	cr_expect_str_eq(S(l[1], "client_ip"), "2001:db8::5");
	cr_expect_eq(N(l[1], "client_port"), 50000);
	cr_expect_str_eq(S(l[1], "ended_at"), "2026-11-27T09:15:03.123456Z");
	cr_expect_str_eq(S(l[1], "auth_method"), "scram-sha-256");
	cr_expect_str_eq(S(l[1], "end_reason"), "close");
	cr_expect_eq(N(l[1], "bytes_to_client"), 200);
	cr_expect_eq(N(l[1], "lost_bytes"), 7);
	cr_expect(is_null(l[1], "login_error"));

	cr_expect_str_eq(S(l[2], "event_type"), "statement");
	cr_expect_eq(N(l[2], "session_id"), 5);
	cr_expect_str_eq(S(l[2], "ts"), "2026-11-27T09:15:02.123956Z");
	cr_expect_str_eq(S(l[2], "end_user_source"), "comment");
	cr_expect(is_null(l[2], "rows"), "rows -1 is null like SQL NULL");
	cr_expect_eq(N(l[2], "duration_us"), 42);
	cr_expect_str_eq(S(l[2], "db_user"), "alice");
	cr_expect_str_eq(S(l[2], "application"), "psql");
	cr_expect(is_null(l[2], "params"));

	cr_expect_str_eq(S(l[3], "event_type"), "finding");
	cr_expect_str_eq(S(l[3], "kind"), "bulk_read");
	cr_expect(is_null(l[3], "statement_id"));
	cr_expect_eq(N(cJSON_GetObjectItemCaseSensitive(l[3], "evidence"), "rows"), 1);
	cr_expect_str_eq(S(l[3], "timestamp"), "2026-11-27T09:15:02.124056Z");
	for (int i = 0; i < 4; i++)
		cJSON_Delete(l[i]);

	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 0007, 0, "not world-readable: statements are sensitive");
}

Test(json_sink, hostile_bytes_stay_valid_json_on_one_line)
{
	char err[256];
	struct sink *s = sink_json_open(path, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	/* invalid UTF-8 (lone continuation, truncated 3-byte, overlong, surrogate), controls,
	 * quotes, backslashes, a newline and an ANSI escape */
	const char *sql = "SELECT '\x80' , 'caf\xc3\xa9' , '\xe2\x82' , '\xc0\xaf' , '\xed\xa0\x80'"
			  " , \"q\" \\ \n\r\t \x1b[31m \x7f end";
	struct rec_statement st = {.id = 1, .session_id = 1, .ts = T0, .sql = sql, .rows = 1,
				   .duration_us = 1, .end_user = "\xff\xfe"};
	struct rec r = {.type = REC_STATEMENT, .u.statement = &st};
	cr_assert_eq(sink_put(s, &r), 0);
	sink_close(s);
	cJSON *l[2];
	cr_assert_eq(read_lines(path, l, 2), 1);
	const char *got = S(l[0], "sql");
	cr_expect_str_eq(got, "SELECT '\xef\xbf\xbd' , 'caf\xc3\xa9' , '\xef\xbf\xbd\xef\xbf\xbd' ,"
			      " '\xef\xbf\xbd\xef\xbf\xbd' , '\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd'"
			      " , \"q\" \\ \n\r\t \x1b[31m \x7f end");
	cr_expect_str_eq(S(l[0], "end_user"), "\xef\xbf\xbd\xef\xbf\xbd");
	cJSON_Delete(l[0]);
}

Test(json_sink, reopen_after_rename_writes_a_new_file)
{
	char err[256], rotated[160];
	struct sink *s = sink_json_open(path, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	struct rec_finding f = {.id = 1, .ts = T0, .kind = "off_hours", .severity = "low"};
	struct rec r = {.type = REC_FINDING, .u.finding = &f};
	cr_assert_eq(sink_put(s, &r), 0);
	cr_assert_eq(sink_flush(s), 0);
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	cr_assert_eq(rename(path, rotated), 0);
	f.id = 2;
	cr_assert_eq(sink_put(s, &r), 0); /* buffered: goes to the old file on reopen */
	cr_assert_eq(sink_json_reopen(s), 0);
	f.id = 3;
	cr_assert_eq(sink_put(s, &r), 0);
	sink_close(s);
	cJSON *l[4];
	cr_assert_eq(read_lines(rotated, l, 4), 2);
	cr_expect_eq(N(l[1], "id"), 2);
	cJSON_Delete(l[0]);
	cJSON_Delete(l[1]);
	cr_assert_eq(read_lines(path, l, 4), 1);
	cr_expect_eq(N(l[0], "id"), 3);
	cJSON_Delete(l[0]);
}

Test(json_sink, dash_writes_to_stdout)
{
	fflush(stdout);
	int saved = dup(1);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	dup2(fileno(f), 1);
	char err[256];
	struct sink *s = sink_json_open("-", err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	struct rec_finding fi = {.id = 1, .ts = T0, .kind = "new_client", .severity = "medium"};
	struct rec r = {.type = REC_FINDING, .u.finding = &fi};
	cr_assert_eq(sink_put(s, &r), 0);
	cr_assert_eq(sink_json_reopen(s), 0, "reopen of stdout only flushes");
	sink_close(s);
	dup2(saved, 1);
	close(saved);
	fclose(f);
	cJSON *l[2];
	cr_assert_eq(read_lines(path, l, 2), 1);
	cr_expect_str_eq(S(l[0], "kind"), "new_client");
	cJSON_Delete(l[0]);
}

Test(json_sink, unwritable_path_is_a_one_line_error)
{
	char err[256] = "", p[200];
	snprintf(p, sizeof(p), "%s/missing/events.json", dir);
	cr_expect_null(sink_json_open(p, err, sizeof(err)));
	cr_expect_not_null(strstr(err, p), "%s", err);
	cr_expect_not_null(strstr(err, "No such file"), "%s", err);
	cr_expect_null(strchr(err, '\n'));
}

Test(json_sink, reopen_refuses_a_sink_of_another_kind)
{
	char err[256], p[160];
	struct sink_ids ids;
	snprintf(p, sizeof(p), "%s/x.db", dir);
	struct sink *s = sink_sqlite_open(p, 0, &ids, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_lt(sink_json_reopen(s), 0);
	sink_close(s);
}

/* Community ID v1: the spec's published vectors (corelight/community-id-spec,
 * baseline/baseline_deflt.json and baseline_seed1.json), both directions, TCP/UDP, v4/v6. */
#include "evline.h"

Test(json_sink, community_id_matches_the_spec_vectors)
{
	static const struct {
		const char *sa, *da;
		int sp, dp, proto, seed;
		const char *want;
	} v[] = {
		{ "128.232.110.120", "66.35.250.204", 34855, 80, 6, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" },
		{ "66.35.250.204", "128.232.110.120", 80, 34855, 6, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" },
		{ "128.232.110.120", "66.35.250.204", 34855, 80, 6, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc=" },
		{ "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, 6, 0,
		  "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=" },
		{ "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, 6, 1,
		  "1:eJYTW6AOzFLlSUoESovMjnu7rMw=" },
		{ "192.168.1.52", "8.8.8.8", 54585, 53, 17, 0, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=" },
		{ "8.8.8.8", "192.168.1.52", 53, 54585, 17, 1, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=" },
		{ "192.168.170.8", "192.168.170.56", 7, 7, 132, 0, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=" },
	};
	char out[40];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		cr_assert_eq(evl_community_id(v[i].sa, v[i].sp, v[i].da, v[i].dp, v[i].proto,
					      (uint16_t)v[i].seed, out, sizeof out), 0);
		cr_expect_str_eq(out, v[i].want, "vector %zu", i);
	}
	/* what does not parse gives no id, never a wrong one */
	cr_expect_eq(evl_community_id("10.0.0.1", 1, "::1", 2, 6, 0, out, sizeof out), -1);
	cr_expect_str_eq(out, "");
	cr_expect_eq(evl_community_id("not an ip", 1, "10.0.0.2", 2, 6, 0, out, sizeof out), -1);
	cr_expect_eq(evl_community_id(NULL, 1, "10.0.0.2", 2, 6, 0, out, sizeof out), -1);
}

/* The OCSF format: class, activity from the verb, severity, ATT&CK, evidences -> statement. */
Test(json_sink, ocsf_classes_and_mapping)
{
	char err[256];
	struct sink *s = sink_json_open(path, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(sink_json_set_format(s, EVL_OCSF, "edge-1"), 0);
	struct rec_run run = {.id = 1, .started_at = T0, .source = "iface:eth1", .version = "0.1.0"};
	struct rec_session se = {.id = 5, .run_id = 1, .protocol = "mysql", .client_ip = "10.0.0.9",
				 .client_port = 40000, .server_ip = "10.0.0.1", .server_port = 3306,
				 .started_at = T0, .db_user = "root", .auth_method = "mysql_native_password",
				 .login = "failed", .login_error = "1045: Access denied", .state = "login",
				 .ts = T0 + 10};
	struct rec_session upd = se;
	upd.state = "update";
	struct rec_statement st = {.id = 9, .session_id = 5, .ts = T0 + 500, .verb = "DELETE",
				   .sql = "DELETE FROM t WHERE ?", .outcome = "error", .error_code = "1142",
				   .rows = -1, .duration_us = 2000, .protocol = "mysql",
				   .client_ip = "10.0.0.9", .client_port = 40000, .server_ip = "10.0.0.1",
				   .server_port = 3306, .db_user = "root"};
	struct rec_finding f = {.id = 2, .run_id = 1, .session_id = 5, .statement_id = 9,
				.ts = T0 + 600, .kind = "auth_bruteforce", .severity = "high",
				.client_ip = "10.0.0.9", .server_ip = "10.0.0.1", .db_user = "root",
				.summary = "20 failed logins", .evidence = "{\"failures\":20}"};
	struct rec r[5] = {{.type = REC_RUN, .u.run = &run},
			   {.type = REC_SESSION, .u.session = &se},
			   {.type = REC_SESSION, .u.session = &upd},
			   {.type = REC_STATEMENT, .u.statement = &st},
			   {.type = REC_FINDING, .u.finding = &f}};
	for (int i = 0; i < 5; i++)
		cr_assert_eq(sink_put(s, &r[i]), 0);
	sink_close(s);
	cJSON *l[8];
	cr_assert_eq(read_lines(path, l, 8), 3, "no OCSF line for the run and the session update");
	cr_expect_eq(N(l[0], "class_uid"), 3002);
	cr_expect_eq(N(l[0], "status_id"), 2);
	cr_expect_eq(N(l[0], "time"), (double)((T0 + 10) / 1000));
	cr_expect_str_eq(S(cJSON_GetObjectItemCaseSensitive(l[0], "user"), "name"), "root");
	cr_expect_eq(N(l[1], "class_uid"), 6005);
	cr_expect_eq(N(l[1], "activity_id"), 7);
	cr_expect_eq(N(l[1], "type_uid"), 600507);
	cr_expect_eq(N(l[1], "status_id"), 2);
	cr_expect_str_eq(S(cJSON_GetObjectItemCaseSensitive(l[1], "metadata"), "uid"), "edge-1:statement:9");
	cr_expect_eq(N(l[2], "class_uid"), 2004);
	cr_expect_eq(N(l[2], "severity_id"), 4);
	const cJSON *fi = cJSON_GetObjectItemCaseSensitive(l[2], "finding_info");
	const cJSON *at = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(fi, "attacks"), 0);
	cr_expect_str_eq(S(cJSON_GetObjectItemCaseSensitive(at, "technique"), "uid"), "T1110");
	const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(l[2], "evidences"), 0);
	cr_expect_str_eq(S(cJSON_GetObjectItemCaseSensitive(ev, "data"), "statement_uid"), "edge-1:statement:9");
	for (int i = 0; i < 3; i++)
		cJSON_Delete(l[i]);
}

/* --syslog to a receiver that accepts and never reads: put() never waits (the queue is
 * bounded), what does not fit is counted, and close returns after its drain wait. */
#include <netinet/in.h>
#include <sys/socket.h>

Test(json_sink, syslog_slow_receiver_never_blocks_and_counts_drops, .timeout = 60)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(ls, 1), 0);
	cr_assert_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	char url[64], err[256];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	struct sink *s = sink_syslog_open(url, EVL_DBTAP, "slow-test", err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	static char sql[4096];
	memset(sql, 'x', sizeof sql - 1);
	struct rec_statement st = { .id = 1, .session_id = 1, .ts = T0, .sql = sql, .rows = -1,
				    .duration_us = -1, .client_ip = "10.0.0.1", .server_ip = "10.0.0.2",
				    .client_port = 1000, .server_port = 5432 };
	struct rec r = { .type = REC_STATEMENT, .u.statement = &st };
	for (int i = 0; i < 20000; i++) { /* 80 MB against a 32 MiB queue and a full socket */
		st.id = i + 1;
		cr_assert_eq(sink_put(s, &r), 0);
	}
	cr_expect_eq(sink_sync(s), 0, "a stalled receiver is not an error of the run");
	cr_expect_gt(s->dropped, 0, "drops are counted");
	cr_expect_lt(s->dropped, 20000, "the receiver's socket buffers took some");
	sink_close(s);
	close(ls);
}
