/* PostgreSQL decoder tests: golden event lines from our own captures (made by
 * data/pgsql/make_captures.sh against PostgreSQL 15), every capture split at every byte
 * offset, malformed and oversized input, mid-stream pickup, gaps, probe verdicts, and the
 * shared corpus (DBTAP_CORPUS) when it is present. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgsql_types.h"
#include "proto.h"
#include "segs.h"

#define DATA "tests/protocols/data/pgsql/"

static const char *const own_segs[] = {
	"auth.0",     "auth.1",	    "auth.2",	  "auth.3",	"auth.4",     "auth.5",	  "auth.6",
	"simple.0",   "simple.1",   "simple.2",	  "extended.0", "pgbench.0",  "pgbench.1", "pgbench.2",
	"pgbench.3",  "copy.0",	    "copy.1",
};
#define N_OWN (sizeof own_segs / sizeof own_segs[0])

/* ---- helpers ---- */

static void load_own(struct segs *s, const char *name)
{
	char p[256];
	snprintf(p, sizeof p, DATA "%s.segs", name);
	cr_assert_eq(segs_load(s, p), 0, "missing %s (run make_captures.sh)", p);
	cr_assert(s->n > 0);
}

static void run_segs(const struct segs *s, size_t split, int midstream, struct evlog *l)
{
	evlog_init(l);
	segs_run(&proto_pgsql, s, split, midstream, l);
}

/* Feeds raw byte strings (dir, bytes) through a fresh decoder. */
struct feed {
	enum proto_dir dir;
	const uint8_t *p;
	size_t n;
};

static void run_feeds(const struct feed *f, size_t nf, int midstream, struct evlog *l)
{
	struct segs s = { 0 };
	s.v = calloc(nf, sizeof *s.v);
	s.n = nf;
	for (size_t i = 0; i < nf; i++) {
		s.v[i].dir = f[i].dir;
		s.v[i].len = f[i].n;
		s.v[i].data = malloc(f[i].n ? f[i].n : 1);
		memcpy(s.v[i].data, f[i].p, f[i].n);
	}
	run_segs(&s, 0, midstream, l);
	segs_free(&s);
}

/* Message builder. */
struct mb {
	uint8_t *p;
	size_t n, cap;
};

static void mb_put(struct mb *b, const void *v, size_t n)
{
	if (!n)
		return;
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, v, n);
	b->n += n;
}

static void mb_be32(struct mb *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	mb_put(b, x, 4);
}

static void mb_be16(struct mb *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	mb_put(b, x, 2);
}

static void mb_str(struct mb *b, const char *s)
{
	mb_put(b, s, strlen(s) + 1);
}

/* A typed message: type, length, body. */
static void mb_msg(struct mb *b, char t, const void *body, size_t n)
{
	mb_put(b, &t, 1);
	mb_be32(b, (uint32_t)n + 4);
	mb_put(b, body, n);
}

static void mb_startup(struct mb *b, const char *user, const char *db)
{
	struct mb body = { 0 };
	mb_be32(&body, 196608);
	mb_str(&body, "user");
	mb_str(&body, user);
	mb_str(&body, "database");
	mb_str(&body, db);
	mb_put(&body, "", 1);
	mb_be32(b, (uint32_t)body.n + 4);
	mb_put(b, body.p, body.n);
	free(body.p);
}

/* Server side of a trust login: AuthenticationOk, server_version, key data, ready. */
static void mb_login_ok(struct mb *b)
{
	uint8_t ok[4] = { 0 };
	mb_msg(b, 'R', ok, 4);
	struct mb ps = { 0 };
	mb_str(&ps, "server_version");
	mb_str(&ps, "15.20");
	mb_msg(b, 'S', ps.p, ps.n);
	free(ps.p);
	uint8_t key[8] = { 0, 0, 0x30, 0x39, 1, 2, 3, 4 };
	mb_msg(b, 'K', key, 8);
	mb_msg(b, 'Z', "I", 1);
}

static void run_session(const struct mb *cli, const struct mb *srv, struct evlog *l);

static int has_line(const struct evlog *l, const char *prefix)
{
	const char *p = l->text;
	size_t k = strlen(prefix);
	while (p && *p) {
		if (strncmp(p, prefix, k) == 0)
			return 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

/* ---- golden comparisons on our own captures ---- */

Test(pgsql, own_captures_match_golden_events)
{
	int update = getenv("DBTAP_UPDATE_GOLDEN") != NULL;
	for (size_t i = 0; i < N_OWN; i++) {
		struct segs s;
		load_own(&s, own_segs[i]);
		struct evlog l;
		run_segs(&s, 0, 0, &l);
		char gp[256];
		snprintf(gp, sizeof gp, DATA "%s.events", own_segs[i]);
		if (update)
			cr_assert_eq(segs_write_text(gp, l.text), 0, "cannot write %s", gp);
		char *want = segs_read_text(gp);
		cr_assert(want, "missing golden %s", gp);
		cr_expect_str_eq(l.text, want, "%s: events differ from golden", own_segs[i]);
		free(want);
		evlog_free(&l);
		segs_free(&s);
	}
}

Test(pgsql, every_capture_split_at_every_byte_gives_same_events)
{
	for (size_t i = 0; i < N_OWN; i++) {
		struct segs s;
		load_own(&s, own_segs[i]);
		struct evlog whole;
		run_segs(&s, 0, 0, &whole);
		size_t maxlen = 0;
		for (size_t k = 0; k < s.n; k++)
			if (s.v[k].len > maxlen)
				maxlen = s.v[k].len;
		for (size_t split = 1; split < maxlen; split++) {
			struct evlog l;
			run_segs(&s, split, 0, &l);
			cr_assert_str_eq(l.text, whole.text, "%s split at %zu", own_segs[i], split);
			evlog_free(&l);
		}
		evlog_free(&whole);
		segs_free(&s);
	}
}

/* Re-chunks a capture one byte per call in each direction: every message is seen cut
 * at every offset, with held bytes carried over as capture does. */
Test(pgsql, byte_by_byte_feeding_gives_same_events)
{
	for (size_t i = 0; i < N_OWN; i++) {
		struct segs s;
		load_own(&s, own_segs[i]);
		struct evlog whole;
		run_segs(&s, 0, 0, &whole);
		struct segs b = { 0 };
		size_t total = 0;
		for (size_t k = 0; k < s.n; k++)
			total += s.v[k].len;
		b.v = calloc(total, sizeof *b.v);
		for (size_t k = 0; k < s.n; k++)
			for (size_t j = 0; j < s.v[k].len; j++) {
				struct seg *g = &b.v[b.n++];
				g->dir = s.v[k].dir;
				g->len = 1;
				g->data = malloc(1);
				g->data[0] = s.v[k].data[j];
			}
		struct evlog l;
		run_segs(&b, 0, 0, &l);
		cr_assert_str_eq(l.text, whole.text, "%s byte by byte", own_segs[i]);
		evlog_free(&l);
		evlog_free(&whole);
		segs_free(&b);
		segs_free(&s);
	}
}

/* ---- behaviour on our own captures ---- */

Test(pgsql, auth_methods_and_login_results)
{
	static const struct {
		const char *segs, *line1, *line2;
	} cases[] = {
		{ "auth.0", "AUTH method=trust", "LOGIN ok=1" },
		{ "auth.1", "AUTH method=cleartext", "CLEARTEXT_PASSWORD" },
		{ "auth.2", "AUTH method=md5", "LOGIN ok=1" },
		{ "auth.3", "AUTH method=scram-sha-256", "LOGIN ok=1" },
		{ "auth.4", "AUTH method=scram-sha-256", "LOGIN ok=0 code=28P01" },
		{ "auth.5", "AUTH method=scram-sha-256", "LOGIN ok=0 code=3D000" },
		{ "auth.6", "TLS", "TLS" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct segs s;
		load_own(&s, cases[i].segs);
		struct evlog l;
		run_segs(&s, 0, 0, &l);
		cr_expect(has_line(&l, cases[i].line1), "%s: no '%s' in\n%s", cases[i].segs, cases[i].line1, l.text);
		cr_expect(has_line(&l, cases[i].line2), "%s: no '%s' in\n%s", cases[i].segs, cases[i].line2, l.text);
		cr_expect(!strstr(l.text, "Secret"), "%s: a password leaked", cases[i].segs);
		evlog_free(&l);
		segs_free(&s);
	}
}

Test(pgsql, tls_session_stops_after_ssl_accept)
{
	struct segs s;
	load_own(&s, "auth.6");
	struct ev_sink none = { 0 };
	void *st = proto_pgsql.open(&none, 0);
	int stops = segs_feed(&proto_pgsql, st, &s, 0);
	proto_pgsql.close(st, PROTO_END_EOF, 0);
	cr_assert_eq(stops, 1);
	segs_free(&s);
}

Test(pgsql, pipeline_error_marks_later_executes_skipped)
{
	struct segs s;
	load_own(&s, "extended.0");
	struct evlog l;
	run_segs(&s, 0, 0, &l);
	cr_assert(has_line(&l, "RESULT id=10 outcome=error rows=-1 bytes=0 tag= code=22012"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=11 outcome=skipped"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=12 outcome=skipped"), "%s", l.text);
	cr_assert(has_line(&l, "QUERY id=7 kind=execute known=1 trunc=0 name=_pg3_0 params=1 sql=SELECT name"));
	evlog_free(&l);
	segs_free(&s);
}

/* Captures the parameters of Execute events. */
struct bind_log {
	char text[8192];
	size_t n;
};

static void bind_fn(void *ctx, const struct ev *e)
{
	struct bind_log *b = ctx;
	if (e->type != EV_QUERY)
		return;
	for (size_t i = 0; i < e->u.query.n_params; i++) {
		const struct ev_bind *p = &e->u.query.params[i];
		int k = snprintf(b->text + b->n, sizeof b->text - b->n, "%llu:%zu:%s%.*s\n",
				 (unsigned long long)e->u.query.id, i + 1, p->is_null ? "NULL" : p->is_binary_hex ? "hex:" : "",
				 (int)p->text.n, p->text.p ? p->text.p : "");
		if (k > 0 && (size_t)k < sizeof b->text - b->n)
			b->n += (size_t)k;
	}
}

Test(pgsql, binary_bind_values_rendered_as_postgres_prints_them)
{
	struct segs s;
	load_own(&s, "extended.0");
	struct bind_log b = { .n = 0 };
	b.text[0] = 0;
	struct ev_sink k = { bind_fn, &b };
	void *st = proto_pgsql.open(&k, 0);
	segs_feed(&proto_pgsql, st, &s, 0);
	proto_pgsql.close(st, PROTO_END_EOF, 0);
	static const char *const want[] = {
		"1:1:3\n", "1:2:item%\n", "2:1:7\n", "2:2:70000\n", "2:3:9000000000\n", "2:4:2.5\n",
		"2:5:-1234.5678\n", "2:6:t'ext\n", "2:7:\\x0001fe\n", "2:8:12345678-1234-5678-1234-567812345678\n",
		"2:9:2024-02-29\n", "2:10:2024-03-01 12:30:15.25\n", "2:11:2024-03-01 12:30:15+00\n", "2:12:t\n",
		"2:13:{\"a\": [1, 2]}\n", "2:14:0.5\n", "3:1:NULL\n", "3:2:NULL\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_expect(strstr(b.text, want[i]), "missing %s in\n%s", want[i], b.text);
	segs_free(&s);
}

Test(pgsql, copy_in_and_out_carry_rows_and_bytes)
{
	struct segs s;
	load_own(&s, "copy.0");
	struct evlog l;
	run_segs(&s, 0, 0, &l);
	cr_assert(has_line(&l, "DATA_MOVE to_client=0"));
	cr_assert(has_line(&l, "DATA_MOVE to_client=1"));
	cr_assert(has_line(&l, "RESULT id=2 outcome=ok rows=3 bytes=23 tag=COPY 3"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=3 outcome=ok rows=3 bytes=20 tag=COPY 3"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=5 outcome=error"), "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
	load_own(&s, "copy.1");
	run_segs(&s, 0, 0, &l);
	cr_assert(has_line(&l, "STARTUP user=u_repl database=shop application=psql params=1 replication=1"), "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
}

Test(pgsql, cancel_request_names_target_and_nothing_else)
{
	struct segs s;
	load_own(&s, "simple.2");
	struct evlog l;
	run_segs(&s, 0, 0, &l);
	cr_assert_eq(l.count[EV_CANCEL], 1);
	cr_assert_eq(l.count[EV_STARTUP] + l.count[EV_ANOMALY] + l.count[EV_QUERY], 0, "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
}

Test(pgsql, function_calls_notices_and_empty_query)
{
	struct segs s;
	load_own(&s, "simple.0");
	struct evlog l;
	run_segs(&s, 0, 0, &l);
	cr_assert(has_line(&l, "QUERY id=17 kind=function known=1 trunc=0 name= params=0 sql=FUNCTION CALL oid="), "%s",
		  l.text);
	cr_assert(has_line(&l, "RESULT id=14 outcome=ok rows=0"), "%s", l.text);
	cr_assert(has_line(&l, "PARAM application_name=renamed_app"), "%s", l.text);
	cr_assert(has_line(&l, "READY txn=E"));
	cr_assert_eq(l.count[EV_ANOMALY], 0, "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
}

/* Pick up every own capture from each of its segments on, mid-stream: never an anomaly
 * storm, never a crash, and the last query's result still decodes. */
Test(pgsql, midstream_pickup_from_every_segment)
{
	for (size_t i = 0; i < N_OWN; i++) {
		struct segs s;
		load_own(&s, own_segs[i]);
		for (size_t from = 1; from < s.n; from++) {
			struct segs tail = { s.v + from, s.n - from };
			struct evlog l;
			run_segs(&tail, 0, 1, &l);
			cr_expect(l.count[EV_ANOMALY] <= 1, "%s from %zu:\n%s", own_segs[i], from, l.text);
			evlog_free(&l);
		}
		segs_free(&s);
	}
	struct segs s;
	load_own(&s, "simple.0");
	struct segs tail = { s.v + 12, s.n - 12 };
	struct evlog l;
	run_segs(&tail, 0, 1, &l);
	cr_assert(has_line(&l, "QUERY id=") && has_line(&l, "READY txn="), "%s", l.text);
	cr_assert(strstr(l.text, "sql=DELETE FROM items WHERE id = 1000;"), "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
}

Test(pgsql, gap_in_server_direction_closes_pending_as_unknown_and_resyncs)
{
	struct segs s;
	load_own(&s, "simple.0");
	struct evlog l;
	evlog_init(&l);
	struct ev_sink k = evlog_sink(&l);
	void *st = proto_pgsql.open(&k, 0);
	/* feed up to a query, lose its answer, then carry on */
	size_t cut = 0;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].dir == PROTO_TO_SERVER && s.v[i].data[0] == 'Q' && ++cut == 3) {
			struct segs head = { s.v, i + 1 };
			segs_feed(&proto_pgsql, st, &head, 0);
			proto_pgsql.gap(st, PROTO_TO_CLIENT, 0);
			struct segs rest = { s.v + i + 2, s.n - i - 2 };
			segs_feed(&proto_pgsql, st, &rest, 0);
			break;
		}
	proto_pgsql.close(st, PROTO_END_EOF, 0);
	cr_assert(has_line(&l, "RESULT id=3 outcome=unknown"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=22 outcome=ok rows=1 bytes=0 tag=DELETE 1"), "%s", l.text);
	evlog_free(&l);
	segs_free(&s);
}

Test(pgsql, gap_in_client_direction_keeps_answers_off_later_queries)
{
	struct mb c1 = { 0 }, lost = { 0 }, c2 = { 0 }, s1 = { 0 };
	mb_msg(&c1, 'Q', "SELECT 1", 9);
	mb_msg(&lost, 'Q', "SELECT lost", 12);
	mb_msg(&c2, 'Q', "SELECT 3", 9);
	/* answers to all three, in order */
	mb_msg(&s1, 'C', "SELECT 1", 9);
	mb_msg(&s1, 'Z', "I", 1);
	mb_msg(&s1, 'C', "SELECT 7", 9);
	mb_msg(&s1, 'Z', "I", 1);
	mb_msg(&s1, 'C', "SELECT 3", 9);
	mb_msg(&s1, 'Z', "I", 1);
	struct mb c0 = { 0 }, s0 = { 0 };
	mb_startup(&c0, "u", "d");
	mb_login_ok(&s0);
	struct evlog l;
	evlog_init(&l);
	struct ev_sink k = evlog_sink(&l);
	void *st = proto_pgsql.open(&k, 0);
	proto_pgsql.parse(st, PROTO_TO_SERVER, c0.p, c0.n, 1);
	proto_pgsql.parse(st, PROTO_TO_CLIENT, s0.p, s0.n, 1);
	proto_pgsql.parse(st, PROTO_TO_SERVER, c1.p, c1.n, 2);
	proto_pgsql.gap(st, PROTO_TO_SERVER, 3); /* the second query never reaches us */
	proto_pgsql.parse(st, PROTO_TO_SERVER, c2.p, c2.n, 4);
	proto_pgsql.parse(st, PROTO_TO_CLIENT, s1.p, s1.n, 5);
	proto_pgsql.close(st, PROTO_END_EOF, 6);
	cr_assert(has_line(&l, "RESULT id=1 outcome=ok rows=1 "), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=2 outcome=ok rows=3 "), "%s", l.text);
	cr_assert(!strstr(l.text, "rows=7"), "%s", l.text);
	evlog_free(&l);
	free(c0.p);
	free(s0.p);
	free(c1.p);
	free(c2.p);
	free(lost.p);
	free(s1.p);
}

/* ---- synthetic edge cases ---- */

Test(pgsql, auth_request_types_map_to_methods)
{
	static const struct {
		uint32_t type;
		const char *want;
	} cases[] = { { 3, "AUTH method=cleartext" }, { 5, "AUTH method=md5" }, { 7, "AUTH method=gss" },
		      { 9, "AUTH method=sspi" },	 { 2, "AUTH method=kerberos5" } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mb c = { 0 }, sv = { 0 }, c2 = { 0 }, s2 = { 0 };
		mb_startup(&c, "u", "d");
		uint8_t req[8] = { 0, 0, 0, (uint8_t)cases[i].type, 1, 2, 3, 4 };
		mb_msg(&sv, 'R', req, cases[i].type == 5 ? 8 : 4);
		mb_msg(&c2, 'p', "secret-pw", 10);
		mb_login_ok(&s2);
		struct feed f[] = { { PROTO_TO_SERVER, c.p, c.n },
				    { PROTO_TO_CLIENT, sv.p, sv.n },
				    { PROTO_TO_SERVER, c2.p, c2.n },
				    { PROTO_TO_CLIENT, s2.p, s2.n } };
		struct evlog l;
		run_feeds(f, 4, 0, &l);
		cr_expect(has_line(&l, cases[i].want), "type %u:\n%s", cases[i].type, l.text);
		cr_expect(has_line(&l, "LOGIN ok=1"), "type %u:\n%s", cases[i].type, l.text);
		cr_expect_eq(l.count[EV_CLEARTEXT_PASSWORD], cases[i].type == 3, "type %u", cases[i].type);
		cr_expect(!strstr(l.text, "secret-pw"));
		cr_expect_eq(l.count[EV_ANOMALY], 0, "%s", l.text);
		evlog_free(&l);
		free(c.p);
		free(sv.p);
		free(c2.p);
		free(s2.p);
	}
}

Test(pgsql, negotiate_version_notifications_and_copy_both_need_no_anomaly)
{
	struct mb c = { 0 }, s = { 0 }, m = { 0 };
	mb_msg(&c, 'Q', "START_REPLICATION 0/0", 22);
	mb_msg(&c, 'd', "r-status", 8);
	mb_be32(&m, 0);
	mb_be32(&m, 1);
	mb_str(&m, "_pq_.x");
	mb_msg(&s, 'v', m.p, m.n);
	free(m.p);
	m = (struct mb){ 0 };
	mb_be32(&m, 4242);
	mb_str(&m, "chan");
	mb_str(&m, "payload");
	mb_msg(&s, 'A', m.p, m.n);
	free(m.p);
	m = (struct mb){ 0 };
	mb_str(&m, "SNOTICE");
	mb_put(&m, "", 1);
	mb_msg(&s, 'N', m.p, m.n);
	free(m.p);
	mb_msg(&s, 'W', "\x00\x00\x00", 3);
	mb_msg(&s, 'd', "wal-bytes-here", 14);
	mb_msg(&s, 'c', NULL, 0);
	mb_msg(&s, 'C', "START_REPLICATION", 18);
	mb_msg(&s, 'Z', "I", 1);
	struct evlog l;
	run_session(&c, &s, &l);
	cr_assert(has_line(&l, "DATA_MOVE to_client=1"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=1 outcome=ok rows=0 bytes=22 tag=START_REPLICATION"), "%s", l.text);
	cr_assert_eq(l.count[EV_ANOMALY], 0, "%s", l.text);
	evlog_free(&l);
	free(c.p);
	free(s.p);
}


Test(pgsql, ssl_refused_then_startup_in_clear)
{
	struct mb c1 = { 0 }, c2 = { 0 }, s2 = { 0 };
	mb_be32(&c1, 8);
	mb_be32(&c1, 80877103);
	mb_startup(&c2, "bob", "db1");
	mb_login_ok(&s2);
	struct feed f[] = { { PROTO_TO_SERVER, c1.p, c1.n },
			    { PROTO_TO_CLIENT, (const uint8_t *)"N", 1 },
			    { PROTO_TO_SERVER, c2.p, c2.n },
			    { PROTO_TO_CLIENT, s2.p, s2.n } };
	struct evlog l;
	run_feeds(f, 4, 0, &l);
	cr_assert_str_eq(l.text, "STARTUP user=bob database=db1 application= params=0 replication=0\n"
				 "AUTH method=trust\n"
				 "LOGIN ok=1 code= msg=\n"
				 "PARAM server_version=15.20\n"
				 "HELLO version=15.20 conn_id=12345\n"
				 "READY txn=I\n");
	evlog_free(&l);
	free(c1.p);
	free(c2.p);
	free(s2.p);
}

Test(pgsql, gssenc_accepted_and_direct_tls_stop_decoding)
{
	struct mb c1 = { 0 };
	mb_be32(&c1, 8);
	mb_be32(&c1, 80877104);
	struct feed f[] = { { PROTO_TO_SERVER, c1.p, c1.n }, { PROTO_TO_CLIENT, (const uint8_t *)"G", 1 } };
	struct evlog l;
	run_feeds(f, 2, 0, &l);
	cr_assert_str_eq(l.text, "TLS\n");
	evlog_free(&l);
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03 };
	struct feed f2[] = { { PROTO_TO_SERVER, hello, sizeof hello } };
	run_feeds(f2, 1, 0, &l);
	cr_assert_str_eq(l.text, "TLS\n");
	evlog_free(&l);
	free(c1.p);
}

Test(pgsql, sasl_mechanism_chosen_by_client_wins)
{
	struct mb c = { 0 }, sv = { 0 }, c2 = { 0 };
	mb_startup(&c, "u", "d");
	struct mb r = { 0 };
	mb_be32(&r, 10);
	mb_str(&r, "SCRAM-SHA-256-PLUS");
	mb_str(&r, "SCRAM-SHA-256");
	mb_put(&r, "", 1);
	mb_msg(&sv, 'R', r.p, r.n);
	struct mb p = { 0 };
	mb_str(&p, "SCRAM-SHA-256-PLUS");
	mb_be32(&p, 5);
	mb_put(&p, "n,,x=", 5);
	mb_msg(&c2, 'p', p.p, p.n);
	struct feed f[] = { { PROTO_TO_SERVER, c.p, c.n }, { PROTO_TO_CLIENT, sv.p, sv.n }, { PROTO_TO_SERVER, c2.p, c2.n } };
	struct evlog l;
	run_feeds(f, 3, 0, &l);
	cr_assert(has_line(&l, "AUTH method=scram-sha-256\n"), "%s", l.text);
	cr_assert(has_line(&l, "AUTH method=scram-sha-256-plus"), "%s", l.text);
	cr_assert_eq(l.count[EV_CLEARTEXT_PASSWORD], 0);
	evlog_free(&l);
	free(c.p);
	free(sv.p);
	free(c2.p);
	free(r.p);
	free(p.p);
}

/* A logged-in session, then caller-provided client and server bytes. */
static void run_session(const struct mb *cli, const struct mb *srv, struct evlog *l)
{
	struct mb c = { 0 }, s = { 0 };
	mb_startup(&c, "u", "d");
	mb_login_ok(&s);
	struct feed f[4] = { { PROTO_TO_SERVER, c.p, c.n }, { PROTO_TO_CLIENT, s.p, s.n } };
	size_t n = 2;
	if (cli && cli->n)
		f[n++] = (struct feed){ PROTO_TO_SERVER, cli->p, cli->n };
	if (srv && srv->n)
		f[n++] = (struct feed){ PROTO_TO_CLIENT, srv->p, srv->n };
	run_feeds(f, n, 0, l);
	free(c.p);
	free(s.p);
}

static void mb_parse(struct mb *b, const char *name, const char *sql)
{
	struct mb m = { 0 };
	mb_str(&m, name);
	mb_str(&m, sql);
	mb_be16(&m, 0);
	mb_msg(b, 'P', m.p, m.n);
	free(m.p);
}

static void mb_bind(struct mb *b, const char *portal, const char *stmt)
{
	struct mb m = { 0 };
	mb_str(&m, portal);
	mb_str(&m, stmt);
	mb_be16(&m, 0);
	mb_be16(&m, 0);
	mb_be16(&m, 0);
	mb_msg(b, 'B', m.p, m.n);
	free(m.p);
}

static void mb_execute(struct mb *b, const char *portal, uint32_t maxrows)
{
	struct mb m = { 0 };
	mb_str(&m, portal);
	mb_be32(&m, maxrows);
	mb_msg(b, 'E', m.p, m.n);
	free(m.p);
}

static void mb_datarow(struct mb *b, const char *v)
{
	struct mb m = { 0 };
	mb_be16(&m, 1);
	mb_be32(&m, (uint32_t)strlen(v));
	mb_put(&m, v, strlen(v));
	mb_msg(b, 'D', m.p, m.n);
	free(m.p);
}

Test(pgsql, portal_suspended_reports_rows_so_far)
{
	struct mb c = { 0 }, s = { 0 };
	mb_parse(&c, "", "SELECT g FROM generate_series(1,5) g");
	mb_bind(&c, "", "");
	mb_execute(&c, "", 2);
	mb_execute(&c, "", 0);
	mb_msg(&c, 'S', NULL, 0);
	mb_msg(&s, '1', NULL, 0);
	mb_msg(&s, '2', NULL, 0);
	mb_datarow(&s, "1");
	mb_datarow(&s, "2");
	mb_msg(&s, 's', NULL, 0);
	mb_datarow(&s, "3");
	mb_msg(&s, 'C', "SELECT 1", 9);
	mb_msg(&s, 'Z', "I", 1);
	struct evlog l;
	run_session(&c, &s, &l);
	cr_assert(has_line(&l, "RESULT id=1 outcome=ok rows=2 bytes=14 tag= "), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=2 outcome=ok rows=1 bytes=7 tag=SELECT 1"), "%s", l.text);
	evlog_free(&l);
	free(c.p);
	free(s.p);
}

Test(pgsql, statement_cache_is_bounded_and_evicts_oldest)
{
	struct mb c = { 0 };
	char name[32], sql[64];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "s%d", i);
		snprintf(sql, sizeof sql, "SELECT %d", i);
		mb_parse(&c, name, sql);
	}
	mb_bind(&c, "", "s0");
	mb_execute(&c, "", 0);
	mb_bind(&c, "", "s299");
	mb_execute(&c, "", 0);
	mb_msg(&c, 'S', NULL, 0);
	struct evlog l;
	run_session(&c, NULL, &l);
	/* evicted: its first bytes are kept, so its verb is still judged (issue #20) */
	cr_assert(has_line(&l, "QUERY id=1 kind=execute known=1 trunc=1 name=s0 params=0 sql=SELECT 0\n"), "%s", l.text);
	cr_assert(has_line(&l, "QUERY id=2 kind=execute known=1 trunc=0 name=s299 params=0 sql=SELECT 299"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=1 outcome=unknown"), "%s", l.text);
	evlog_free(&l);
	free(c.p);
}

Test(pgsql, close_reports_unanswered_queries_as_unknown)
{
	struct mb c = { 0 };
	mb_msg(&c, 'Q', "SELECT pg_sleep(100)", 21);
	struct evlog l;
	run_session(&c, NULL, &l);
	cr_assert(has_line(&l, "RESULT id=1 outcome=unknown rows=-1"), "%s", l.text);
	evlog_free(&l);
	free(c.p);
}

Test(pgsql, oversized_query_is_truncated_and_next_message_decodes)
{
	size_t big = 3u << 20;
	char *sql = malloc(big + 1);
	memset(sql, 'x', big);
	memcpy(sql, "SELECT '", 8);
	sql[big] = 0;
	struct mb c = { 0 };
	mb_msg(&c, 'Q', sql, big + 1);
	mb_msg(&c, 'Q', "SELECT 2", 9);
	free(sql);
	/* capture never holds more than PROTO_MAX_HOLD: feed in 64 KiB pieces */
	struct mb s0 = { 0 }, c0 = { 0 };
	mb_startup(&c0, "u", "d");
	mb_login_ok(&s0);
	size_t nf = 2 + (c.n + 65535) / 65536;
	struct feed *f = calloc(nf, sizeof *f);
	f[0] = (struct feed){ PROTO_TO_SERVER, c0.p, c0.n };
	f[1] = (struct feed){ PROTO_TO_CLIENT, s0.p, s0.n };
	for (size_t i = 2, off = 0; off < c.n; i++, off += 65536)
		f[i] = (struct feed){ PROTO_TO_SERVER, c.p + off, c.n - off < 65536 ? c.n - off : 65536 };
	struct evlog l;
	run_feeds(f, nf, 0, &l);
	cr_assert(has_line(&l, "QUERY id=1 kind=simple known=1 trunc=1 name= params=0 sql=SELECT 'xxx"), "%s", l.text);
	cr_assert(has_line(&l, "QUERY id=2 kind=simple known=1 trunc=0 name= params=0 sql=SELECT 2"), "%s", l.text);
	cr_assert_eq(l.count[EV_ANOMALY], 0);
	evlog_free(&l);
	free(f);
	free(c.p);
	free(c0.p);
	free(s0.p);
}

Test(pgsql, huge_datarows_are_counted_without_buffering)
{
	struct mb c = { 0 }, s = { 0 };
	mb_msg(&c, 'Q', "SELECT big", 11);
	size_t big = 5u << 20;
	char *v = malloc(big + 1);
	memset(v, 'y', big);
	v[big] = 0;
	mb_datarow(&s, v);
	mb_datarow(&s, v);
	mb_msg(&s, 'C', "SELECT 2", 9);
	mb_msg(&s, 'Z', "I", 1);
	free(v);
	/* the decoder gets at most 1 MiB at once and must consume as it goes */
	struct ev_sink k;
	struct evlog l;
	evlog_init(&l);
	k = evlog_sink(&l);
	void *st = proto_pgsql.open(&k, 0);
	struct mb c0 = { 0 }, s0 = { 0 };
	mb_startup(&c0, "u", "d");
	mb_login_ok(&s0);
	struct proto_result r = proto_pgsql.parse(st, PROTO_TO_SERVER, c0.p, c0.n, 1);
	r = proto_pgsql.parse(st, PROTO_TO_CLIENT, s0.p, s0.n, 1);
	free(c0.p);
	free(s0.p);
	r = proto_pgsql.parse(st, PROTO_TO_SERVER, c.p, c.n, 1);
	cr_assert_eq(r.consumed, c.n);
	size_t off = 0, held = 0;
	while (off < s.n) {
		size_t n = s.n - off < (1u << 20) ? s.n - off : (1u << 20);
		r = proto_pgsql.parse(st, PROTO_TO_CLIENT, s.p + off - held, n + held, 2);
		cr_assert(r.consumed <= n + held);
		held = n + held - r.consumed;
		cr_assert(held < 64, "decoder held %zu bytes of a DataRow", held);
		off += n;
	}
	proto_pgsql.close(st, PROTO_END_EOF, 3);
	cr_assert(has_line(&l, "RESULT id=1 outcome=ok rows=2 bytes="), "%s", l.text);
	char want[128];
	snprintf(want, sizeof want, "RESULT id=1 outcome=ok rows=2 bytes=%zu ", 2 * (big + 6));
	cr_assert(has_line(&l, want), "%s", l.text);
	evlog_free(&l);
	free(c.p);
	free(s.p);
}

Test(pgsql, large_function_call_and_result_are_not_anomalies)
{
	size_t big = 2u << 20;
	struct mb body = { 0 };
	mb_be32(&body, 955); /* lowrite */
	mb_be16(&body, 1);
	mb_be16(&body, 1);
	mb_be16(&body, 2);
	mb_be32(&body, 4);
	mb_be32(&body, 0);
	mb_be32(&body, (uint32_t)big);
	char *blob = calloc(1, big);
	mb_put(&body, blob, big);
	mb_be16(&body, 1);
	struct mb c = { 0 }, s = { 0 };
	mb_msg(&c, 'F', body.p, body.n);
	struct mb v = { 0 };
	mb_be32(&v, (uint32_t)big);
	mb_put(&v, blob, big);
	mb_msg(&s, 'V', v.p, v.n);
	mb_msg(&s, 'Z', "T", 1);
	free(blob);
	struct mb c0 = { 0 }, s0 = { 0 };
	mb_startup(&c0, "u", "d");
	mb_login_ok(&s0);
	/* pieces no larger than capture would hold */
	size_t nf = 2 + (c.n + 65535) / 65536 + (s.n + 65535) / 65536;
	struct feed *f = calloc(nf, sizeof *f);
	size_t i = 0;
	f[i++] = (struct feed){ PROTO_TO_SERVER, c0.p, c0.n };
	f[i++] = (struct feed){ PROTO_TO_CLIENT, s0.p, s0.n };
	for (size_t off = 0; off < c.n; off += 65536)
		f[i++] = (struct feed){ PROTO_TO_SERVER, c.p + off, c.n - off < 65536 ? c.n - off : 65536 };
	for (size_t off = 0; off < s.n; off += 65536)
		f[i++] = (struct feed){ PROTO_TO_CLIENT, s.p + off, s.n - off < 65536 ? s.n - off : 65536 };
	struct evlog l;
	run_feeds(f, i, 0, &l);
	cr_assert(has_line(&l, "QUERY id=1 kind=function known=1 trunc=0 name= params=0 sql=FUNCTION CALL oid=955 lowrite()"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=1 outcome=ok"), "%s", l.text);
	cr_assert(has_line(&l, "READY txn=T"), "%s", l.text);
	cr_assert_eq(l.count[EV_ANOMALY], 0, "%s", l.text);
	evlog_free(&l);
	free(f);
	free(body.p);
	free(v.p);
	free(c.p);
	free(s.p);
	free(c0.p);
	free(s0.p);
}

Test(pgsql, midstream_pickup_inside_a_huge_result_resyncs_on_the_next_row)
{
	size_t big = 3u << 20;
	char *v = malloc(big + 1);
	memset(v, 'z', big);
	v[big] = 0;
	struct mb c = { 0 }, s = { 0 };
	mb_msg(&c, 'Q', "SELECT big", 11);
	mb_datarow(&s, v);
	mb_datarow(&s, v);
	mb_datarow(&s, v);
	mb_msg(&s, 'C', "SELECT 3", 9);
	mb_msg(&s, 'Z', "I", 1);
	free(v);
	struct evlog l;
	evlog_init(&l);
	struct ev_sink k = evlog_sink(&l);
	void *st = proto_pgsql.open(&k, 1);
	proto_pgsql.parse(st, PROTO_TO_SERVER, c.p, c.n, 1);
	/* the capture starts 1000 bytes into the first row; 64 KiB segments, held like capture */
	size_t off = 1000, held = 0;
	while (off < s.n) {
		size_t n = s.n - off < 65536 ? s.n - off : 65536;
		struct proto_result r = proto_pgsql.parse(st, PROTO_TO_CLIENT, s.p + off - held, n + held, 2);
		held = n + held - r.consumed;
		cr_assert(held <= 65536 + 5, "held %zu", held);
		off += n;
	}
	proto_pgsql.close(st, PROTO_END_EOF, 3);
	cr_expect(has_line(&l, "RESULT id=1 outcome=ok rows=3 bytes="), "%s", l.text);
	cr_assert_eq(l.count[EV_ANOMALY], 0, "%s", l.text);
	evlog_free(&l);
	free(c.p);
	free(s.p);
}

/* Malformed input, table driven: each case is a client and a server byte string sent
 * after a good login (or instead of it when raw=1). Each must give an anomaly, no crash. */
struct bad_case {
	const char *name;
	int raw;
	const char *cli;
	size_t cli_n;
	const char *srv;
	size_t srv_n;
	int fatal;
};

#define B(s) s, sizeof(s) - 1

static const struct bad_case bad_cases[] = {
	{ "client length < 4", 0, B("Q\x00\x00\x00\x03"), B(""), 0 },
	{ "client length 0", 0, B("Q\x00\x00\x00\x00SELECT 1"), B(""), 0 },
	{ "server length < 4", 0, B(""), B("Z\x00\x00\x00\x01I"), 0 },
	{ "ReadyForQuery too long", 0, B(""), B("Z\x00\x00\x00\x09IIIII"), 0 },
	{ "1 GiB query length", 0, B("Q\x40\x00\x00\x01SELECT"), B(""), 0 },
	{ "2 GiB query length", 0, B("Q\x7f\xff\xff\xffSELECT"), B(""), 0 },
	{ "query without NUL", 0, B("Q\x00\x00\x00\x0cSELECT 1"), B(""), 0 },
	{ "parse without NULs", 0, B("P\x00\x00\x00\x0a" "abcdef"), B(""), 0 },
	{ "bind value past end", 0, B("B\x00\x00\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00xy\x00\x00"), B(""), 0 },
	{ "execute without NUL", 0, B("E\x00\x00\x00\x09" "abcde"), B(""), 0 },
	{ "close without NUL", 0, B("C\x00\x00\x00\x07Sab"), B(""), 0 },
	{ "unknown client type", 0, B("z\x00\x00\x00\x04"), B(""), 0 },
	{ "unknown server type", 0, B(""), B("y\x00\x00\x00\x04"), 0 },
	{ "error fields unterminated", 0, B("Q\x00\x00\x00\x0dSELECT 1;\x00"), B("E\x00\x00\x00\x0a" "C42601"), 0 },
	{ "parameter status without NUL", 0, B(""), B("S\x00\x00\x00\x08" "abcd"), 0 },
	{ "command complete without NUL", 0, B("Q\x00\x00\x00\x0dSELECT 1;\x00"), B("C\x00\x00\x00\x0cSELECT 1"), 0 },
	{ "startup length 3", 1, B("\x00\x00\x00\x03\x00\x03\x00\x00"), B(""), 1 },
	{ "startup 1 GiB", 1, B("\x40\x00\x00\x00\x00\x03\x00\x00user\x00"), B(""), 1 },
	{ "startup params unterminated", 1, B("\x00\x00\x00\x0e\x00\x03\x00\x00user\x00u"), B(""), 0 },
	{ "protocol 2 startup", 1, B("\x00\x00\x01\x28\x00\x02\x00\x00"), B(""), 1 },
	{ "bad ssl length", 1, B("\x00\x00\x00\x0c\x04\xd2\x16\x2f\x00\x00\x00\x00"), B(""), 1 },
	{ "server speaks first (MySQL)", 1, B(""), B("\x4a\x00\x00\x00\x0a" "5.5.5-10.11\x00"), 1 },
	{ "HTTP request", 1, B("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), B(""), 1 },
};

Test(pgsql, malformed_inputs_give_anomalies_not_crashes)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct mb c = { 0 }, s = { 0 };
		mb_put(&c, bc->cli, bc->cli_n);
		mb_put(&s, bc->srv, bc->srv_n);
		struct evlog l;
		if (bc->raw) {
			struct feed f[2];
			size_t n = 0;
			if (c.n)
				f[n++] = (struct feed){ PROTO_TO_SERVER, c.p, c.n };
			if (s.n)
				f[n++] = (struct feed){ PROTO_TO_CLIENT, s.p, s.n };
			run_feeds(f, n, 0, &l);
		} else {
			run_session(&c, &s, &l);
		}
		cr_expect(l.count[EV_ANOMALY] >= 1, "%s: no anomaly:\n%s", bc->name, l.text);
		cr_expect(bc->fatal == (strstr(l.text, "ANOMALY fatal=1") != NULL), "%s: fatal should be %d:\n%s",
			  bc->name, bc->fatal, l.text);
		/* the same bytes mid-stream, and split everywhere: no crash */
		for (size_t split = 1; split < c.n || split < s.n; split++) {
			struct segs sg = { 0 };
			struct seg v[2];
			sg.v = v;
			if (c.n)
				v[sg.n++] = (struct seg){ PROTO_TO_SERVER, c.p, c.n };
			if (s.n)
				v[sg.n++] = (struct seg){ PROTO_TO_CLIENT, s.p, s.n };
			struct evlog m;
			evlog_init(&m);
			segs_run(&proto_pgsql, &sg, split, (int)(split & 1), &m);
			evlog_free(&m);
		}
		evlog_free(&l);
		free(c.p);
		free(s.p);
	}
}

Test(pgsql, after_a_bad_frame_decoding_resumes)
{
	struct mb c = { 0 }, s = { 0 };
	mb_msg(&c, 'Q', "SELECT 1", 9);
	mb_put(&c, "\x01\x02\x03garbage", 10);
	mb_msg(&c, 'Q', "SELECT 2", 9);
	mb_msg(&s, 'C', "SELECT 1", 9);
	mb_msg(&s, 'Z', "I", 1);
	mb_msg(&s, 'C', "SELECT 1", 9);
	mb_msg(&s, 'Z', "I", 1);
	struct evlog l;
	run_session(&c, &s, &l);
	cr_assert(has_line(&l, "QUERY id=2 kind=simple known=1 trunc=0 name= params=0 sql=SELECT 2"), "%s", l.text);
	cr_assert(has_line(&l, "RESULT id=2 outcome=ok"), "%s", l.text);
	cr_assert_eq(l.count[EV_ANOMALY], 1, "%s", l.text);
	evlog_free(&l);
	free(c.p);
	free(s.p);
}

Test(pgsql, probe_verdicts)
{
	struct mb st = { 0 };
	mb_startup(&st, "alice", "db");
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, st.p, st.n), PROTO_YES);
	free(st.p);
	static const uint8_t ssl[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	static const uint8_t gss[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30 };
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, ssl, 8), PROTO_YES);
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, gss, 8), PROTO_YES);
	static const uint8_t md5req[] = { 'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4 };
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_CLIENT, md5req, sizeof md5req), PROTO_YES);
	static const uint8_t q[] = "Q\x00\x00\x00\x0eSELECT 1;";
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, q, sizeof q), PROTO_MAYBE);
	static const uint8_t mysql_greet[] = "\x4a\x00\x00\x00\x0a" "5.5.5-10.11.6-MariaDB\x00";
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_CLIENT, mysql_greet, sizeof mysql_greet - 1), PROTO_NO);
	static const uint8_t http[] = "GET / HTTP/1.1\r\n";
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, http, sizeof http - 1), PROTO_NO);
	static const uint8_t mysql_login[] = "\xb5\x00\x00\x01\x85\xa6\xff\x01";
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, mysql_login, sizeof mysql_login - 1), PROTO_NO);
	cr_assert_eq(proto_pgsql.probe(PROTO_TO_SERVER, NULL, 0), PROTO_NO);
}

/* ---- the shared corpus (skipped when absent) ---- */

static int corpus_segs(const char *file, int port, int flow, struct segs *s)
{
	const char *corpus = getenv("DBTAP_CORPUS");
	const char *src = getenv("DBTAP_SRC");
	if (!corpus || !src)
		return -1;
	char pcap[4096], out[64], cmd[9000];
	snprintf(pcap, sizeof pcap, "%s/pgsql/%s", corpus, file);
	FILE *f = fopen(pcap, "rb");
	if (!f)
		return -1;
	fclose(f);
	snprintf(out, sizeof out, "/tmp/dbtap-pgsql-test-%d.segs", (int)getpid());
	snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/pcap2segs.py' '%s' %d %d > '%s'", src, pcap, port, flow, out);
	if (system(cmd) != 0)
		return -1;
	int rc = segs_load(s, out);
	remove(out);
	return rc;
}

static const struct {
	const char *file;
	int port, flow, midstream;
	const char *lines[4];
} corpus_cases[] = {
	{ "deepflow-error.pcap", 5432, 0, 1, { "QUERY id=1 kind=simple known=1 trunc=0 name= params=0 sql=asdsdfdsf;", "RESULT id=1 outcome=error rows=-1 bytes=0 tag= code=42601" } },
	{ "deepflow-simple_query.pcap", 5432, 0, 1, { "RESULT id=1 outcome=ok rows=1 bytes=0 tag=DELETE 1" } },
	{ "deepflow-pgsql-all.pcap", 8000, 0, 1, { "QUERY id=1 kind=execute known=1 trunc=0 name= params=0 sql=SELECT 'x'", "QUERY id=32 kind=execute" } },
	{ "packetbeat-pgsql_insert.pcap", 5432, 0, 1, { "RESULT id=1 outcome=ok rows=1 bytes=0 tag=INSERT 0 1" } },
	{ "packetbeat-pgsql_insert_error.pcap", 5432, 0, 1, { "RESULT id=1 outcome=error rows=-1 bytes=0 tag= code=23505" } },
	{ "packetbeat-pgsql_long_result.pcap", 5432, 0, 1, { "RESULT id=1 outcome=ok rows=15 " } },
	{ "packetbeat-pgsql_request_response.pcap", 5432, 0, 1, { "RESULT id=1 outcome=ok rows=4 " } },
	{ "packetbeat-pgsql_extended_query.pcap", 5432, 0, 0, { "QUERY id=2 kind=execute known=1 trunc=0 name= params=1 sql=SELECT * from test where id = $1" } },
	{ "suricata-verify-pgsql-5000-query-results.pcap", 5432, 1, 0, { "RESULT id=1 outcome=ok rows=5000 " } },
	{ "suricata-verify-pgsql-bug-5579.pcap", 5432, 0, 0, { "STARTUP user=ctfpost database=ctfbase" } },
	{ "suricata-verify-pgsql-cancel-request.pcap", 5432, 1, 0, { "CANCEL target=28954" } },
	{ "suricata-verify-pgsql-pwd-output-disabled.pcap", 5432, 0, 0, { "AUTH method=cleartext", "CLEARTEXT_PASSWORD", "LOGIN ok=1" } },
	{ "suricata-verify-pgsql-upgrade-tls.pcap", 5432, 1, 0, { "LOGIN ok=0 code=28000", "STARTUP user=rep database=replication application=walreceiver params=1 replication=1" } },
	{ "suricata-verify-pgsql-upgrade-tls.pcap", 5432, 0, 0, { "TLS" } },
	{ "zeek-psql-login-no-role.pcap", 5432, 0, 0, { "LOGIN ok=0 code=28000" } },
	{ "zeek-mysql-on-port-5432.pcap", 5432, 0, 0, { "ANOMALY fatal=1" } },
	{ "zeek-mysql-on-port-5432.pcap", 5432, 0, 1, { "ANOMALY fatal=1" } },
	{ "zeek-http-on-port-5432.pcap", 5432, 0, 1, { "ANOMALY fatal=1" } },
	{ "ndpi-pgsql.pcap", 5432, 5, 0, { "AUTH method=scram-sha-256", "LOGIN ok=1" } },
};

Test(pgsql, corpus_captures_decode_as_peers_report)
{
	if (!getenv("DBTAP_CORPUS")) {
		cr_log_warn("SKIP: DBTAP_CORPUS not set");
		return;
	}
	size_t done = 0;
	for (size_t i = 0; i < sizeof corpus_cases / sizeof corpus_cases[0]; i++) {
		struct segs s;
		if (corpus_segs(corpus_cases[i].file, corpus_cases[i].port, corpus_cases[i].flow, &s) < 0)
			continue;
		done++;
		for (size_t split = 0; split < 3; split++) {
			struct evlog l;
			run_segs(&s, split * 7, corpus_cases[i].midstream, &l);
			for (size_t k = 0; k < 4 && corpus_cases[i].lines[k]; k++)
				cr_expect(has_line(&l, corpus_cases[i].lines[k]), "%s flow %d: no '%s' in\n%s",
					  corpus_cases[i].file, corpus_cases[i].flow, corpus_cases[i].lines[k], l.text);
			evlog_free(&l);
		}
		segs_free(&s);
	}
	if (!done)
		cr_log_warn("SKIP: corpus captures or python3 not available");
}

/* ---- binary value rendering, boundary values ---- */

static const char *render(uint32_t oid, const char *bytes, size_t n, int *hex)
{
	static char out[256];
	size_t k = pgt_render_binary(oid, (const uint8_t *)bytes, n, out, sizeof out - 1, hex);
	out[k] = 0;
	return out;
}

Test(pgsql, binary_types_boundary_values)
{
	static const struct {
		uint32_t oid;
		const char *bytes;
		size_t n;
		const char *want;
		int hex;
	} cases[] = {
		{ 21, "\xff\xfe", 2, "-2", 0 },
		{ 23, "\x80\x00\x00\x00", 4, "-2147483648", 0 },
		{ 20, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8, "9223372036854775807", 0 },
		{ 16, "\x00", 1, "f", 0 },
		{ 701, "\x7f\xf8\x00\x00\x00\x00\x00\x00", 8, "NaN", 0 },
		{ 701, "\xff\xf0\x00\x00\x00\x00\x00\x00", 8, "-Infinity", 0 },
		{ 700, "\x3f\xc0\x00\x00", 4, "1.5", 0 },
		/* numeric 0: ndigits 0, weight 0, sign +, dscale 0 */
		{ 1700, "\x00\x00\x00\x00\x00\x00\x00\x00", 8, "0", 0 },
		/* 0.001: one digit 10 at weight -1, dscale 3 */
		{ 1700, "\x00\x01\xff\xff\x00\x00\x00\x03\x00\x0a", 10, "0.001", 0 },
		/* 12345678.9: digits 1234 5678 9000, weight 1, dscale 1 */
		{ 1700, "\x00\x03\x00\x01\x00\x00\x00\x01\x04\xd2\x16\x2e\x23\x28", 14, "12345678.9", 0 },
		{ 1700, "\x00\x00\x00\x00\xc0\x00\x00\x00", 8, "NaN", 0 },
		/* digit 10000 is not a base-10000 digit: hex */
		{ 1700, "\x00\x01\x00\x00\x00\x00\x00\x00\x27\x10", 10, "00010000000000002710", 1 },
		{ 1082, "\x00\x00\x00\x00", 4, "2000-01-01", 0 },
		{ 1082, "\xff\xf4\xdb\xf8", 4, "0001-12-31 BC", 0 },
		{ 1082, "\x7f\xff\xff\xff", 4, "infinity", 0 },
		{ 1114, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8, "infinity", 0 },
		{ 1114, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, "1999-12-31 23:59:59.999999", 0 },
		{ 1083, "\x00\x00\x00\x0c\x92\xa7\x5f\x50", 8, "15:00:00.05", 0 },
		{ 17, "", 0, "\\x", 0 },
		{ 2950, "\x01\x02", 2, "0102", 1 },
		{ 23, "\x01\x02\x03", 3, "010203", 1 },
		{ 600, "\x01\x02", 2, "0102", 1 },
		{ 3802, "\x02{}", 3, "027b7d", 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int hex = -1;
		const char *got = render(cases[i].oid, cases[i].bytes, cases[i].n, &hex);
		cr_expect_str_eq(got, cases[i].want, "case %zu oid %u", i, cases[i].oid);
		cr_expect_eq(hex, cases[i].hex, "case %zu oid %u hex flag", i, cases[i].oid);
	}
	/* output is cut at the cap, never past it */
	char small[5];
	int hex;
	size_t k = pgt_render_binary(17, (const uint8_t *)"\x01\x02\x03\x04", 4, small, sizeof small, &hex);
	cr_assert_leq(k, sizeof small);
}
