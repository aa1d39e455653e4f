/* Deterministic demo activity written through the sink (see demo_fill.h). */
#include <stdio.h>
#include <string.h>

#include "demo_fill.h"

#define HOUR_US (3600LL * 1000000)

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static const char *const users[] = {"app_svc", "app_svc", "app_svc", "alice", "report_ro",
				    "etl", "dba_bob"};
static const char *const end_users[] = {"alice", "bob", "carol", "dave", "erin"};
static const char *const apps[] = {"shop-web", "shop-web", "psql", "metabase", "etl-nightly"};
static const char *const clients[] = {"10.0.0.5", "10.0.0.6", "10.0.0.7", "2001:db8::5",
				      "192.168.1.20"};
static const char *const verbs[] = {"SELECT", "SELECT", "SELECT", "INSERT", "UPDATE", "DELETE",
				    "BEGIN", "COMMIT"};
static const char *const sqls[] = {
	"SELECT id, name FROM customers WHERE id = ?",
	"SELECT * FROM orders WHERE customer_id = ? ORDER BY created DESC LIMIT ?",
	"SELECT count(*) FROM invoices WHERE due < ?",
	"INSERT INTO orders(customer_id, total) VALUES (?, ?)",
	"UPDATE customers SET email = ? WHERE id = ?",
	"DELETE FROM carts WHERE updated < ?",
	"BEGIN",
	"COMMIT",
};
static const struct {
	const char *kind, *severity, *summary;
} kinds[] = {
	{"sql_injection", "critical", "tautology in WHERE: ' OR 1=1 --"},
	{"error_burst", "medium", "42 syntax errors in 60 s"},
	{"auth_bruteforce", "high", "25 failed logins for postgres in 60 s"},
	{"privilege_change", "high", "GRANT ALL ON customers TO report_ro"},
	{"destructive_statement", "high", "DELETE without WHERE on carts"},
	{"bulk_read", "medium", "SELECT returned 250000 rows"},
	{"data_export", "high", "COPY customers TO STDOUT"},
	{"new_query_shape", "low", "first time seen for app_svc/shop-web"},
	{"new_client", "medium", "etl from 192.168.1.20 never seen"},
	{"new_application", "low", "application DBeaver 23.1 never seen for alice"},
	{"off_hours", "low", "dba_bob active at 03h"},
	{"cleartext_password", "high", "password auth outside TLS"},
	{"sensitive_access", "medium", "report_ro read customers.card_number"},
	{"protocol_anomaly", "info", "message length past the frame"},
};
#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int demo_fill(struct sink *s, struct sink_ids *ids, int64_t t0, int hours, int per_hour,
	      unsigned seed, struct demo_counts *out)
{
	memset(out, 0, sizeof(*out));
	int64_t run_id = ids->run++;
	struct rec_run run = {.id = run_id, .started_at = t0, .source = "file:demo.pcap",
			      .version = "test", .config = "{\"audit\":\"all\"}",
			      .drops = "{\"sink\":0}"};
	struct rec rr = {.type = REC_RUN, .u.run = &run};
	if (sink_put(s, &rr) < 0)
		return -1;
	int64_t packets = 0;
	for (int h = 0; h < hours; h++) {
		/* quiet at night, busy in office hours */
		int hod = (int)((t0 / HOUR_US + h) % 24);
		int n = hod >= 8 && hod <= 18 ? per_hour : per_hour / 4 + 1;
		for (int k = 0; k < n; k++) {
			int64_t ts = t0 + h * HOUR_US + (int64_t)k * (HOUR_US / n) + rnd(&seed);
			int ui = rnd(&seed) % N(users);
			struct rec_session se = {
				.id = ids->session++,
				.run_id = run_id,
				.protocol = rnd(&seed) % 3 ? "postgresql" : "mysql",
				.client_ip = clients[rnd(&seed) % N(clients)],
				.client_port = 40000 + (int)(rnd(&seed) % 20000),
				.server_ip = "10.0.0.1",
				.server_port = 5432,
				.started_at = ts,
				.db_user = users[ui],
				.database = "shop",
				.application = apps[rnd(&seed) % N(apps)],
				.client_info = "{\"client_encoding\":\"UTF8\"}",
				.server_version = "15.5",
				.auth_method = "scram-sha-256",
				.login = "ok",
			};
			unsigned kindroll = rnd(&seed) % 20;
			if (kindroll == 0)
				se.tls = 1;
			else if (kindroll == 1)
				se.midstream = 1, se.login = "unknown", se.db_user = NULL;
			if (rnd(&seed) % 25 == 0)
				se.gaps = 1, se.lost_bytes = 1460;
			int failed = kindroll == 2 || kindroll == 3;
			if (failed) {
				se.login = "failed";
				se.login_error = "28P01 password authentication failed for user";
				se.client_ip = kindroll == 2 ? "203.0.113.66" : se.client_ip;
				se.db_user = kindroll == 2 ? "postgres" : se.db_user;
			}
			struct rec r = {.type = REC_SESSION, .u.session = &se};
			if (sink_put(s, &r) < 0)
				return -1;
			out->sessions++;
			out->failed_logins += failed;
			int nst = failed || se.tls ? 0 : 3 + (int)(rnd(&seed) % 8);
			for (int i = 0; i < nst; i++) {
				int vi = rnd(&seed) % N(verbs);
				int service = ui < 3;
				struct rec_statement st = {
					.id = ids->statement++,
					.session_id = se.id,
					.ts = ts + 1000 * (i + 1),
					.end_user = service ? end_users[rnd(&seed) % N(end_users)]
							    : se.db_user,
					.end_user_source = service ? "comment" : "db_user",
					.verb = verbs[vi],
					.fingerprint = "0123456789abcdef",
					.sql = sqls[vi],
					.outcome = rnd(&seed) % 30 ? "ok" : "error",
					.rows = vi < 3 ? (int64_t)(rnd(&seed) % 50) : 1,
					.duration_us = 100 + rnd(&seed) % 5000,
					.protocol = se.protocol,
					.client_ip = se.client_ip,
					.db_user = se.db_user,
					.database = se.database,
					.application = se.application,
				};
				if (!strcmp(st.outcome, "error"))
					st.error_code = "42601", se.errors++;
				struct rec rs = {.type = REC_STATEMENT, .u.statement = &st};
				if (sink_put(s, &rs) < 0)
					return -1;
				out->statements++;
				se.statements++;
				se.rows_returned += st.rows;
				/* one finding every few statements, every kind over the day */
				if (rnd(&seed) % 9 == 0) {
					int ki = rnd(&seed) % N(kinds);
					char ev[96];
					snprintf(ev, sizeof(ev), "{\"n\":%d}", ki);
					struct rec_finding f = {
						.id = ids->finding++,
						.run_id = run_id,
						.session_id = se.id,
						.statement_id = st.id,
						.ts = st.ts,
						.kind = kinds[ki].kind,
						.severity = kinds[ki].severity,
						.protocol = se.protocol,
						.client_ip = se.client_ip,
						.server_ip = se.server_ip,
						.db_user = se.db_user,
						.database = se.database,
						.application = se.application,
						.end_user = st.end_user,
						.end_user_source = st.end_user_source,
						.fingerprint = st.fingerprint,
						/* hostile text: markup, quotes, invalid UTF-8 */
						.sql = ki == 0 ? "SELECT * FROM users WHERE name = '' OR 1=1"
								 " --<script>alert(1)</script>\xff\xfe"
							       : st.sql,
						.summary = kinds[ki].summary,
						.evidence = ev,
					};
					struct rec rf = {.type = REC_FINDING, .u.finding = &f};
					if (sink_put(s, &rf) < 0)
						return -1;
					out->findings++;
				}
			}
			se.ended_at = ts + 1000 * (nst + 2);
			se.end_reason = "close";
			se.bytes_to_server = 200 * (nst + 1);
			se.bytes_to_client = 900 * (nst + 1);
			packets += 4 + 2 * nst;
			if (sink_put(s, &r) < 0)
				return -1;
		}
		if (sink_flush(s) < 0)
			return -1;
	}
	run.ended_at = t0 + hours * HOUR_US;
	run.packets = packets;
	run.bytes = packets * 120;
	run.kernel_drops = 3;
	run.streams = out->sessions;
	if (sink_put(s, &rr) < 0)
		return -1;
	return 0;
}
