/* MySQL / MariaDB decoder tests: golden event lines from our own MariaDB captures (made by
 * tests/protocols/data/mysql/make_captures.sh) fed whole and split at every byte, the
 * conformance corpus (skipped when absent), mid-stream pickup, gaps, compression,
 * oversized packets, and malformed input that must give EV_ANOMALY, never a crash. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "segs.h"

#define DATA "tests/protocols/data/mysql/"

/* ---------- event recording with parameters and connect attributes ---------- */

struct rec {
	char *t;
	size_t n, cap;
	size_t count[32];
};

static void rec_add(struct rec *r, const char *s, size_t n)
{
	if (r->n + n + 2 > r->cap) {
		r->cap = (r->n + n + 2) * 2;
		r->t = realloc(r->t, r->cap);
	}
	memcpy(r->t + r->n, s, n);
	r->n += n;
	r->t[r->n] = 0;
}

static void rec_fn(void *ctx, const struct ev *e)
{
	struct rec *r = ctx;
	char b[2048];
	ev_format(e, b, sizeof b);
	rec_add(r, b, strlen(b));
	rec_add(r, "\n", 1);
	if ((unsigned)e->type < 32)
		r->count[e->type]++;
	if (e->type == EV_QUERY)
		for (size_t i = 0; i < e->u.query.n_params; i++) {
			const struct ev_bind *p = &e->u.query.params[i];
			int k = snprintf(b, sizeof b, "  param %zu %s%s%.*s\n", i, p->is_null ? "NULL" : "",
					 p->is_binary_hex ? "hex " : "", (int)(p->text.n > 200 ? 200 : p->text.n),
					 p->text.p ? p->text.p : "");
			rec_add(r, b, (size_t)k);
		}
	if (e->type == EV_STARTUP)
		for (size_t i = 0; i < e->u.startup.n_params; i++) {
			const struct ev_kv *kv = &e->u.startup.params[i];
			/* _pid changes per capture run but not per decode; kept */
			int k = snprintf(b, sizeof b, "  attr %.*s=%.*s\n", (int)kv->key.n, kv->key.p,
					 (int)kv->val.n, kv->val.p);
			rec_add(r, b, (size_t)k);
		}
}

static void rec_free(struct rec *r)
{
	free(r->t);
	memset(r, 0, sizeof *r);
}

static void run_segs(const struct segs *s, size_t split, int midstream, struct rec *r)
{
	memset(r, 0, sizeof *r);
	rec_add(r, "", 0);
	struct ev_sink sink = { rec_fn, r };
	void *st = proto_mysql.open(&sink, midstream);
	cr_assert_not_null(st);
	segs_feed(&proto_mysql, st, s, split);
	proto_mysql.close(st, PROTO_END_EOF, 1700000000000000LL + 999999);
}

/* Golden: whole, then every segment cut at every byte offset, all give the same lines.
 * DBTAP_REGEN=1 rewrites the .events file (review the diff before committing). */
static void golden(const char *name)
{
	char segp[256], evp[256];
	snprintf(segp, sizeof segp, DATA "%s.segs", name);
	snprintf(evp, sizeof evp, DATA "%s.events", name);
	struct segs s;
	cr_assert_eq(segs_load(&s, segp), 0, "missing %s", segp);
	struct rec r;
	run_segs(&s, 0, 0, &r);
	if (getenv("DBTAP_REGEN"))
		cr_assert_eq(segs_write_text(evp, r.t), 0, "cannot write %s", evp);
	char *want = segs_read_text(evp);
	cr_assert_not_null(want, "missing %s", evp);
	cr_assert_str_eq(r.t, want, "%s: events differ from the golden file", name);
	cr_assert_eq(r.count[EV_ANOMALY], 0);
	size_t maxlen = 0;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].len > maxlen)
			maxlen = s.v[i].len;
	for (size_t k = 1; k < maxlen; k++) {
		struct rec rs;
		run_segs(&s, k, 0, &rs);
		cr_assert_str_eq(rs.t, want, "%s: split at %zu changes the events", name, k);
		rec_free(&rs);
	}
	free(want);
	rec_free(&r);
	segs_free(&s);
}

Test(mysql, cli_session_golden_at_every_split) { golden("cli"); }
Test(mysql, wrong_password_golden_at_every_split) { golden("wrongpw"); }
Test(mysql, compressed_session_golden_at_every_split) { golden("compress"); }
Test(mysql, tls_session_golden_at_every_split) { golden("tls"); }
Test(mysql, ed25519_login_golden_at_every_split) { golden("ed25519"); }
Test(mysql, cleartext_login_golden_at_every_split) { golden("cleartext"); }
Test(mysql, pymysql_session_golden_at_every_split) { golden("pymysql"); }
Test(mysql, node_prepared_statements_golden_at_every_split) { golden("node"); }
Test(mysql, sysbench_prepared_oltp_golden_at_every_split) { golden("sysbench"); }

/* ---------- behaviours checked on the real captures ---------- */

Test(mysql, cleartext_password_flagged_but_never_emitted)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "cleartext.segs"), 0);
	struct rec r;
	run_segs(&s, 0, 0, &r);
	cr_assert_eq(r.count[EV_CLEARTEXT_PASSWORD], 1);
	cr_assert_null(strstr(r.t, "app-secret-1"));
	cr_assert_not_null(strstr(r.t, "AUTH method=mysql_clear_password"));
	rec_free(&r);
	segs_free(&s);
}

Test(mysql, tls_request_stops_decoding)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "tls.segs"), 0);
	struct ev_sink none = { NULL, NULL };
	void *st = proto_mysql.open(&none, 0);
	cr_assert_eq(segs_feed(&proto_mysql, st, &s, 0), 1);
	proto_mysql.close(st, PROTO_END_EOF, 0);
	segs_free(&s);
}

/* Drop the first `skip` segments and decode the rest as a mid-stream pickup. */
static void run_from(const char *file, size_t skip, struct rec *r)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, file), 0);
	cr_assert(skip < s.n);
	struct segs t = { s.v + skip, s.n - skip };
	run_segs(&t, 0, 1, r);
	segs_free(&s);
}

Test(mysql, midstream_pickup_after_login_decodes_queries)
{
	struct rec r;
	run_from(DATA "cli.segs", 5, &r); /* greeting, login, OK and the first query gone */
	cr_assert_eq(r.count[EV_LOGIN], 0);
	cr_assert_not_null(strstr(r.t, "sql=SELECT * FROM no_such_table\nRESULT id=1 outcome=error"));
	cr_assert_not_null(strstr(r.t, "more=1\nRESULT id=7 outcome=ok rows=1 bytes=6"));
	cr_assert_eq(r.count[EV_ANOMALY], 0);
	rec_free(&r);
}

Test(mysql, midstream_compression_detected_from_framing)
{
	struct rec r;
	run_from(DATA "compress.segs", 3, &r);
	cr_assert_not_null(strstr(r.t, "sql=SELECT name, REPEAT(name, 200) AS big FROM items\n"
					"RESULT id=1 outcome=ok rows=3 bytes=2223"));
	cr_assert_eq(r.count[EV_ANOMALY], 0);
	rec_free(&r);
}

Test(mysql, midstream_execute_of_unknown_statement_infers_its_params)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "node.segs"), 0);
	/* start right at the second execute of statement 1 (prepared before pickup) */
	size_t at = 0;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].dir == PROTO_TO_SERVER && s.v[i].len > 5 && s.v[i].data[4] == 0x17 &&
		    s.v[i].data[5] == 1 && i > 10) {
			at = i;
			break;
		}
	cr_assert(at > 0);
	struct segs t = { s.v + at, s.n - at };
	struct rec r;
	run_segs(&t, 0, 1, &r);
	/* prepared before pickup: no SQL, but the parameter count that parses exactly */
	cr_assert_not_null(strstr(r.t, "QUERY id=1 kind=execute known=0 trunc=0 name=1 params=2 sql=\n"
					"  param 0 1\n  param 1 pen\nRESULT id=1 outcome=ok rows=3"), "%s", r.t);
	rec_free(&r);
	segs_free(&s);
}

Test(mysql, gap_in_reply_gives_unknown_result_then_resyncs)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "cli.segs"), 0);
	struct rec r;
	memset(&r, 0, sizeof r);
	rec_add(&r, "", 0);
	struct ev_sink sink = { rec_fn, &r };
	void *st = proto_mysql.open(&sink, 0);
	/* lose the server segment that answers the first SELECT of the session */
	int lost = 0;
	for (size_t i = 0; i < s.n; i++) {
		struct segs one = { &s.v[i], 1 };
		if (!lost && strstr(r.t, "sql=SELECT id, name, price") && s.v[i].dir == PROTO_TO_CLIENT) {
			proto_mysql.gap(st, PROTO_TO_CLIENT, 0);
			lost = 1;
			continue;
		}
		segs_feed(&proto_mysql, st, &one, 0);
	}
	proto_mysql.close(st, PROTO_END_EOF, 0);
	cr_assert(lost);
	cr_assert_not_null(strstr(r.t, "RESULT id=1 outcome=unknown"), "%s", r.t);
	cr_assert_not_null(strstr(r.t, "sql=SELECT * FROM no_such_table\nRESULT id=2 outcome=error"));
	cr_assert_not_null(strstr(r.t, "sql=COMMIT\nRESULT id=7 outcome=ok"));
	rec_free(&r);
	segs_free(&s);
}

/* ---------- probe ---------- */

Test(mysql, probe_greeting_and_handshake_response_are_unmistakable)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "cli.segs"), 0);
	cr_assert_eq(proto_mysql.probe(PROTO_TO_CLIENT, s.v[0].data, s.v[0].len), PROTO_YES);
	cr_assert_eq(proto_mysql.probe(PROTO_TO_SERVER, s.v[1].data, s.v[1].len), PROTO_YES);
	segs_free(&s);
	const uint8_t pg_startup[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	cr_assert_eq(proto_mysql.probe(PROTO_TO_SERVER, pg_startup, sizeof pg_startup), PROTO_NO);
	const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(proto_mysql.probe(PROTO_TO_SERVER, http, sizeof http - 1), PROTO_NO);
	cr_assert_eq(proto_mysql.probe(PROTO_TO_CLIENT, http, sizeof http - 1), PROTO_NO);
	const uint8_t query[] = { 9, 0, 0, 0, 3, 's', 'e', 'l', 'e', 'c', 't', ' ', '1' };
	cr_assert_eq(proto_mysql.probe(PROTO_TO_SERVER, query, sizeof query), PROTO_MAYBE);
}

/* ---------- hand-built protocol cases (no real client produces them here) ---------- */

struct feeder {
	void *st;
	struct rec r;
	uint8_t *hold[2];
	size_t n[2], cap[2], max_held;
	int stopped;
};

static void fd_open(struct feeder *f, int midstream)
{
	memset(f, 0, sizeof *f);
	rec_add(&f->r, "", 0);
	static struct ev_sink sink;
	sink = (struct ev_sink){ rec_fn, &f->r };
	f->st = proto_mysql.open(&sink, midstream);
	cr_assert_not_null(f->st);
}

/* Feed like capture does, keeping the unconsumed tail (and measuring it). */
static void fd_push(struct feeder *f, enum proto_dir d, const uint8_t *p, size_t n)
{
	if (f->stopped)
		return;
	if (f->n[d] + n > f->cap[d]) {
		f->cap[d] = (f->n[d] + n) * 2;
		f->hold[d] = realloc(f->hold[d], f->cap[d]);
	}
	memcpy(f->hold[d] + f->n[d], p, n);
	f->n[d] += n;
	struct proto_result r = proto_mysql.parse(f->st, d, f->hold[d], f->n[d], 0);
	cr_assert(r.consumed <= f->n[d]);
	memmove(f->hold[d], f->hold[d] + r.consumed, f->n[d] - r.consumed);
	f->n[d] -= r.consumed;
	if (f->n[d] > f->max_held)
		f->max_held = f->n[d];
	if (r.status == PROTO_STOP)
		f->stopped = 1;
}

static void fd_pkt(struct feeder *f, enum proto_dir d, uint8_t seq, const void *payload, size_t n)
{
	uint8_t *b = malloc(n + 4);
	b[0] = (uint8_t)n;
	b[1] = (uint8_t)(n >> 8);
	b[2] = (uint8_t)(n >> 16);
	b[3] = seq;
	memcpy(b + 4, payload, n);
	fd_push(f, d, b, n + 4);
	free(b);
}

static void fd_close(struct feeder *f)
{
	proto_mysql.close(f->st, PROTO_END_EOF, 0);
	free(f->hold[0]);
	free(f->hold[1]);
}

#define PKT(f, d, seq, ...)                                                                        \
	do {                                                                                       \
		const uint8_t pl_[] = { __VA_ARGS__ };                                             \
		fd_pkt(f, d, seq, pl_, sizeof pl_);                                                \
	} while (0)
#define C PROTO_TO_SERVER
#define S PROTO_TO_CLIENT
/* column definition "def" + empty names, type LONG; EOF with status */
#define COLDEF 0x03, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 0x3f, 0, 11, 0, 0, 0, 3, 0, 0, 0, 0, 0
#define EOF_ST(lo, hi) 0xfe, 0, 0, lo, hi

Test(mysql, cursor_fetch_rows_count_into_the_execute)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x16, 's', 'e', 'l', 'e', 'c', 't', ' ', 'a', ' ', 'f', 'r', 'o', 'm', ' ', 't');
	PKT(&f, S, 1, 0x00, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	/* execute with a read-only cursor: metadata, EOF with SERVER_STATUS_CURSOR_EXISTS */
	PKT(&f, C, 0, 0x17, 7, 0, 0, 0, 0x01, 1, 0, 0, 0);
	PKT(&f, S, 1, 0x01);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(0x42, 0));
	cr_assert_null(strstr(f.r.t, "RESULT id=2"));
	PKT(&f, C, 0, 0x1c, 7, 0, 0, 0, 2, 0, 0, 0);
	PKT(&f, S, 1, 0x00, 0x00, 1, 0, 0, 0);
	PKT(&f, S, 2, 0x00, 0x00, 2, 0, 0, 0);
	PKT(&f, S, 3, EOF_ST(0x42, 0));
	PKT(&f, C, 0, 0x1c, 7, 0, 0, 0, 2, 0, 0, 0);
	PKT(&f, S, 1, 0x00, 0x00, 3, 0, 0, 0);
	PKT(&f, S, 2, EOF_ST(0xc2, 0)); /* LAST_ROW_SENT */
	cr_assert_not_null(strstr(f.r.t, "QUERY id=2 kind=execute known=1 trunc=0 name=7 params=0 sql=select a from t\n"));
	cr_assert_not_null(strstr(f.r.t, "RESULT id=2 outcome=ok rows=3 bytes=18"), "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, mariadb_statement_id_minus_one_means_last_prepared)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x16, 's', 'e', 'l', 'e', 'c', 't', ' ', '?');
	PKT(&f, S, 1, 0x00, 9, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	PKT(&f, S, 4, COLDEF);
	PKT(&f, S, 5, EOF_ST(2, 0));
	/* execute -1 with one TINY param = -5 */
	PKT(&f, C, 0, 0x17, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0x00, 1, 0x01, 0x00, 0xfb);
	PKT(&f, S, 1, 0x00, 0, 0, 2, 0, 0, 0);
	cr_assert_not_null(strstr(f.r.t, "QUERY id=2 kind=execute known=1 trunc=0 name=9 params=1 sql=select ?\n"
					  "  param 0 -5\n"), "%s", f.r.t);
	/* re-execute without types: remembered */
	PKT(&f, C, 0, 0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0, 0x07);
	cr_assert_not_null(strstr(f.r.t, "QUERY id=3 kind=execute known=1 trunc=0 name=9 params=1 sql=select ?\n"
					  "  param 0 7\n"), "%s", f.r.t);
	fd_close(&f);
	cr_assert_not_null(strstr(f.r.t, "RESULT id=3 outcome=unknown"));
	rec_free(&f.r);
}

Test(mysql, long_data_params_are_not_read_from_the_execute)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x16, 'i', 'n', 's', ' ', '?', ' ', '?');
	PKT(&f, S, 1, 0x00, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, COLDEF);
	PKT(&f, S, 4, EOF_ST(2, 0));
	PKT(&f, C, 0, 0x18, 4, 0, 0, 0, 0, 0, 'b', 'i', 'g'); /* param 0 goes ahead */
	PKT(&f, C, 0, 0x17, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 0xfc, 0x00, 0x03, 0x00, 5, 0, 0, 0);
	cr_assert_not_null(strstr(f.r.t, "params=2 sql=ins ? ?\n  param 0 (long data)\n  param 1 5\n"), "%s", f.r.t);
	PKT(&f, S, 1, 0x00, 1, 0, 2, 0, 0, 0);
	/* the next execute carries both values again */
	PKT(&f, C, 0, 0x17, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0, 2, 'h', 'i', 6, 0, 0, 0);
	cr_assert_not_null(strstr(f.r.t, "  param 0 hi\n  param 1 6\n"), "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, mariadb_pipelined_prepare_and_execute_minus_one)
{
	struct feeder f;
	fd_open(&f, 1);
	/* PREPARE and EXECUTE(-1) sent back to back before any answer */
	PKT(&f, C, 0, 0x16, 's', 'e', 'l', 'e', 'c', 't', ' ', '1');
	PKT(&f, C, 0, 0x17, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0);
	cr_assert_not_null(strstr(f.r.t, "QUERY id=2 kind=execute known=1 trunc=0 name=4294967295 params=0 sql=select 1\n"),
			   "%s", f.r.t);
	PKT(&f, S, 1, 0x00, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	PKT(&f, S, 1, 0x01);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	PKT(&f, S, 4, 0x00, 0x00, 1, 0, 0, 0);
	PKT(&f, S, 5, EOF_ST(2, 0));
	cr_assert_not_null(strstr(f.r.t, "RESULT id=1 outcome=ok rows=0"), "%s", f.r.t);
	cr_assert_not_null(strstr(f.r.t, "RESULT id=2 outcome=ok rows=1 bytes=6"), "%s", f.r.t);
	cr_assert_eq(f.r.count[EV_ANOMALY], 0);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, binary_param_types_render_as_text)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x16, '?');
	PKT(&f, S, 1, 0x00, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0);
	for (int i = 0; i < 8; i++)
		PKT(&f, S, (uint8_t)(2 + i), COLDEF);
	PKT(&f, S, 10, EOF_ST(2, 0));
	PKT(&f, C, 0, 0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1,
	    0x02, 0x80, 0x08, 0x00, 0x04, 0x00, 0x0b, 0x00, 0x0c, 0x00, 0xf6, 0x00, 0x06, 0x00, 0x0a, 0x00,
	    0xff, 0xff,						       /* SHORT unsigned 65535 */
	    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	       /* LONGLONG -2 */
	    0x00, 0x00, 0xc0, 0x3f,				       /* FLOAT 1.5 */
	    12, 1, 2, 0, 0, 0, 3, 4, 5, 0x10, 0x27, 0, 0,	       /* TIME -50:04:05.010000 */
	    4, 0xea, 0x07, 12, 31,				       /* DATETIME 2026-12-31 */
	    5, '1', '2', '.', '5', '0',				       /* NEWDECIMAL */
	    0							       /* DATE with len 0 */
	);
	cr_assert_not_null(strstr(f.r.t, "params=8 sql=?\n  param 0 65535\n  param 1 -2\n  param 2 1.5\n"
					  "  param 3 -51:04:05.010000\n  param 4 2026-12-31 00:00:00\n"
					  "  param 5 12.50\n  param 6 NULL\n  param 7 0000-00-00\n"),
			 "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, oversized_query_is_truncated_and_never_held_whole)
{
	struct feeder f;
	fd_open(&f, 1);
	size_t n = 3u << 20; /* 3 MiB COM_QUERY */
	uint8_t *b = malloc(n + 4);
	b[0] = (uint8_t)n;
	b[1] = (uint8_t)(n >> 8);
	b[2] = (uint8_t)(n >> 16);
	b[3] = 0;
	b[4] = 0x03;
	memset(b + 5, 'x', n - 1);
	memcpy(b + 5, "SELECT '", 8);
	for (size_t off = 0; off < n + 4; off += 65536)
		fd_push(&f, C, b + off, n + 4 - off < 65536 ? n + 4 - off : 65536);
	free(b);
	cr_assert_lt(f.max_held, (size_t)PROTO_MAX_HOLD);
	cr_assert_not_null(strstr(f.r.t, "QUERY id=1 kind=simple known=1 trunc=1 name= params=0 sql=SELECT 'xxx"));
	PKT(&f, S, 1, 0xff, 0x28, 0x04, '#', '4', '2', '0', '0', '0', 'b', 'a', 'd');
	PKT(&f, C, 0, 0x03, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1');
	cr_assert_not_null(strstr(f.r.t, "RESULT id=1 outcome=error rows=-1 bytes=0 tag= code=1064"));
	cr_assert_not_null(strstr(f.r.t, "QUERY id=2 kind=simple known=1 trunc=0 name= params=0 sql=SELECT 1\n"));
	cr_assert_eq(f.r.count[EV_ANOMALY], 0);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, row_over_16mib_continuation_counts_one_row)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x03, 's', 'e', 'l');
	PKT(&f, S, 1, 0x01);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	size_t big = 0xffffff;
	uint8_t *b = calloc(1, big + 4);
	b[0] = b[1] = b[2] = 0xff;
	b[3] = 4;
	b[4] = 0xfe; /* lenenc 8-byte string length: a row, not an EOF */
	fd_push(&f, S, b, big + 4);
	free(b);
	PKT(&f, S, 5, 'z', 'z', 'z');
	PKT(&f, S, 6, EOF_ST(2, 0));
	cr_assert_lt(f.max_held, (size_t)PROTO_MAX_HOLD);
	cr_assert_not_null(strstr(f.r.t, "RESULT id=1 outcome=ok rows=1 bytes=16777218"), "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, never_ending_continuation_chain_is_an_anomaly)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x03, 's', 'e', 'l');
	PKT(&f, S, 1, 0x01);
	PKT(&f, S, 2, COLDEF);
	PKT(&f, S, 3, EOF_ST(2, 0));
	size_t big = 0xffffff;
	uint8_t *b = calloc(1, big + 4);
	b[0] = b[1] = b[2] = 0xff;
	/* parse directly (no copying): 70 packets of 16 MiB = 1.1 GiB */
	for (int i = 0; i < 70 && !f.stopped; i++) {
		b[3] = (uint8_t)(4 + i);
		struct proto_result r = proto_mysql.parse(f.st, S, b, big + 4, 0);
		if (r.status == PROTO_STOP)
			f.stopped = 1;
	}
	free(b);
	cr_assert(f.stopped);
	cr_assert_not_null(strstr(f.r.t, "ANOMALY fatal=1 mysql: packet chain longer than 1 GiB"));
	fd_close(&f);
	rec_free(&f.r);
}

/* zlib-compress `in` into a MySQL compressed frame that declares `ulen`. */
static size_t zframe(uint8_t *out, uint8_t seq, const uint8_t *in, size_t n, size_t ulen);

#include <zlib.h>
static size_t zframe(uint8_t *out, uint8_t seq, const uint8_t *in, size_t n, size_t ulen)
{
	uLongf cl = compressBound((uLong)n);
	compress(out + 7, &cl, in, (uLong)n);
	out[0] = (uint8_t)cl;
	out[1] = (uint8_t)(cl >> 8);
	out[2] = (uint8_t)(cl >> 16);
	out[3] = seq;
	out[4] = (uint8_t)ulen;
	out[5] = (uint8_t)(ulen >> 8);
	out[6] = (uint8_t)(ulen >> 16);
	return 7 + cl;
}

Test(mysql, decompression_bomb_is_an_anomaly)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "compress.segs"), 0);
	struct feeder f;
	fd_open(&f, 0);
	for (size_t i = 0; i < 4; i++) /* handshake up to the OK that starts compression */
		fd_push(&f, s.v[i].dir, s.v[i].data, s.v[i].len);
	segs_free(&s);
	cr_assert_not_null(strstr(f.r.t, "LOGIN ok=1"));
	size_t n = 4u << 20;
	uint8_t *zeros = calloc(1, n);
	uint8_t *fr = malloc(compressBound((uLong)n) + 7);
	size_t fl = zframe(fr, 0, zeros, n, 100); /* declares 100 bytes, inflates to 4 MiB */
	fd_push(&f, C, fr, fl);
	free(zeros);
	free(fr);
	cr_assert_not_null(strstr(f.r.t, "mysql: decompressed data exceeds its declared length"));
	/* the next sane frame is decoded */
	const uint8_t q[] = { 8, 0, 0, 0, 3, 's', 'e', 'l', 'e', 'c', 't', '9' };
	uint8_t fr2[64];
	size_t fl2 = zframe(fr2, 0, q, sizeof q, sizeof q);
	fd_push(&f, C, fr2, fl2);
	cr_assert_not_null(strstr(f.r.t, "sql=select9"), "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

#include <zstd.h>
/* zstd-compress `in` into a MySQL compressed frame (CLIENT_ZSTD_COMPRESSION_ALGORITHM). */
static size_t zsframe(uint8_t *out, size_t cap, uint8_t seq, const uint8_t *in, size_t n)
{
	size_t cl = ZSTD_compress(out + 7, cap - 7, in, n, 3);
	cr_assert(!ZSTD_isError(cl));
	out[0] = (uint8_t)cl;
	out[1] = (uint8_t)(cl >> 8);
	out[2] = (uint8_t)(cl >> 16);
	out[3] = seq;
	out[4] = (uint8_t)n;
	out[5] = (uint8_t)(n >> 8);
	out[6] = (uint8_t)(n >> 16);
	return 7 + cl;
}

Test(mysql, zstd_frames_both_directions)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "compress.segs"), 0);
	struct feeder f;
	fd_open(&f, 0);
	for (size_t i = 0; i < 3; i++) /* greeting, login (compression on), OK */
		fd_push(&f, s.v[i].dir, s.v[i].data, s.v[i].len);
	segs_free(&s);
	const uint8_t q[] = { 9, 0, 0, 0, 3, 's', 'e', 'l', 'e', 'c', 't', ' ', '7' };
	const uint8_t ok[] = { 7, 0, 0, 1, 0, 3, 0, 2, 0, 0, 0 };
	uint8_t fr[256];
	size_t n = zsframe(fr, sizeof fr, 0, q, sizeof q);
	for (size_t k = 0; k < n; k++) /* one byte at a time */
		fd_push(&f, C, fr + k, 1);
	n = zsframe(fr, sizeof fr, 1, ok, sizeof ok);
	fd_push(&f, S, fr, n);
	cr_assert_not_null(strstr(f.r.t, "sql=select 7\nRESULT id=1 outcome=ok rows=3 bytes=0"), "%s", f.r.t);
	cr_assert_eq(f.r.count[EV_ANOMALY], 0);
	fd_close(&f);
	rec_free(&f.r);
}

Test(mysql, binlog_dump_is_recorded_then_decoding_stops)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x12, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0, 'b', 'i', 'n', '.', '1');
	cr_assert(f.stopped);
	fd_close(&f);
	cr_assert_str_eq(f.r.t, "QUERY id=1 kind=function known=1 trunc=0 name= params=0 sql=COM_BINLOG_DUMP\n"
				"RESULT id=1 outcome=unknown rows=-1 bytes=0 tag= code= more=0\n");
	rec_free(&f.r);
}

Test(mysql, auth_switch_to_clear_password_flags_the_next_client_packet)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "wrongpw.segs"), 0);
	struct feeder f;
	fd_open(&f, 0);
	fd_push(&f, s.v[0].dir, s.v[0].data, s.v[0].len); /* greeting */
	fd_push(&f, s.v[1].dir, s.v[1].data, s.v[1].len); /* login (native) */
	segs_free(&s);
	PKT(&f, S, 2, 0xfe, 'm', 'y', 's', 'q', 'l', '_', 'c', 'l', 'e', 'a', 'r', '_', 'p', 'a', 's', 's',
	    'w', 'o', 'r', 'd', 0);
	PKT(&f, C, 3, 'h', 'u', 'n', 't', 'e', 'r', '2', 0);
	PKT(&f, S, 4, 0x00, 0, 0, 2, 0, 0, 0);
	cr_assert_not_null(strstr(f.r.t, "AUTH method=mysql_clear_password\nCLEARTEXT_PASSWORD\nLOGIN ok=1"), "%s", f.r.t);
	cr_assert_null(strstr(f.r.t, "hunter2"));
	fd_close(&f);
	rec_free(&f.r);
}

/* Malformed inputs, each fed whole and at every split, from a fresh decoder. */
struct bad {
	const char *what;
	int midstream;
	enum proto_dir dir;
	const uint8_t *b;
	size_t n;
	const char *expect; /* anomaly text expected, or NULL for "no crash" only */
};

static const uint8_t bad_greeting[] = { 5, 0, 0, 0, 0x42, 1, 2, 3, 4 };
static const uint8_t short_greeting[] = { 3, 0, 0, 0, 0x0a, '5', 0 };
static const uint8_t len_past[] = { 0xf0, 0xff, 0x00, 0x00, 0x03, 's', 'e', 'l' };
static const uint8_t unknown_cmd[] = { 2, 0, 0, 0, 0x03, 'x', 2, 0, 0, 0, 0x0b, 0x0b };
static const uint8_t empty_cmd[] = { 1, 0, 0, 0, 0x03, 0, 0, 0, 0 };

Test(mysql, malformed_inputs_give_anomalies_not_crashes)
{
	const struct bad cases[] = {
		{ "unknown greeting", 0, S, bad_greeting, sizeof bad_greeting, "mysql: unknown handshake protocol" },
		{ "short greeting", 0, S, short_greeting, sizeof short_greeting, "mysql: short server greeting" },
		{ "length past buffer", 1, C, len_past, sizeof len_past, NULL },
		{ "unknown command", 0, C, unknown_cmd, sizeof unknown_cmd, "mysql: unknown command" },
		{ "empty command", 0, C, empty_cmd, sizeof empty_cmd, "mysql: empty command packet" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t k = 0; k < cases[i].n; k++) {
			struct feeder f;
			fd_open(&f, cases[i].midstream);
			if (k) {
				fd_push(&f, cases[i].dir, cases[i].b, k);
				fd_push(&f, cases[i].dir, cases[i].b + k, cases[i].n - k);
			} else {
				fd_push(&f, cases[i].dir, cases[i].b, cases[i].n);
			}
			fd_close(&f);
			if (cases[i].expect)
				cr_assert_not_null(strstr(f.r.t, cases[i].expect), "%s split %zu: %s",
						   cases[i].what, k, f.r.t);
			rec_free(&f.r);
		}
	}
}

Test(mysql, bad_lenenc_column_count_is_an_anomaly)
{
	struct feeder f;
	fd_open(&f, 1);
	PKT(&f, C, 0, 0x03, 's', 'e', 'l');
	PKT(&f, S, 1, 0xff, 0x01); /* ERR cut short */
	PKT(&f, C, 0, 0x03, 's', 'e', 'l');
	PKT(&f, S, 1, 0xfc, 0x01); /* lenenc 0xfc needs 2 more bytes */
	fd_close(&f);
	cr_assert_not_null(strstr(f.r.t, "RESULT id=1 outcome=error"));
	cr_assert_not_null(strstr(f.r.t, "mysql: bad column count"), "%s", f.r.t);
	rec_free(&f.r);
}

Test(mysql, bad_zlib_data_is_an_anomaly_and_resyncs)
{
	struct segs s;
	cr_assert_eq(segs_load(&s, DATA "compress.segs"), 0);
	struct feeder f;
	fd_open(&f, 0);
	for (size_t i = 0; i < 4; i++)
		fd_push(&f, s.v[i].dir, s.v[i].data, s.v[i].len);
	segs_free(&s);
	const uint8_t junk[] = { 6, 0, 0, 0, 50, 0, 0, 0x78, 0x9c, 0xff, 0xff, 0xff, 0xff };
	fd_push(&f, C, junk, sizeof junk);
	cr_assert_not_null(strstr(f.r.t, "ANOMALY fatal=0 mysql: zlib data does not inflate"), "%s", f.r.t);
	const uint8_t q[] = { 8, 0, 0, 0, 3, 's', 'e', 'l', 'e', 'c', 't', '8' };
	uint8_t fr[64];
	fd_push(&f, C, fr, zframe(fr, 0, q, sizeof q, sizeof q));
	cr_assert_not_null(strstr(f.r.t, "sql=select8"), "%s", f.r.t);
	fd_close(&f);
	rec_free(&f.r);
}

/* ---------- the conformance corpus (skipped when absent) ---------- */

struct corpus_case {
	const char *file;
	int port, flow, midstream;
	int queries, results;
	const char *expect; /* a line (or lines) that must appear */
};

static const struct corpus_case corpus[] = {
	{ "arkime-mysql-allow.pcap", 3306, 0, 0, 1, 1, "STARTUP user=user10 " },
	{ "arkime-mysql-deny.pcap", 3306, 0, 0, 0, 0, "LOGIN ok=0 code=1045 msg=28000: Access denied for user 'user0'" },
	{ "arkime-mysql-tls.pcap", 3306, 0, 0, 0, 0, "HELLO version=5.7.16 conn_id=2123853\nTLS\n" },
	{ "deepflow-mysql.pcap", 20130, 0, 0, 5, 5, "AUTH method=caching_sha2_password\nAUTH method=mysql_native_password\nLOGIN ok=1" },
	{ "deepflow-mysql-error.pcap", 20130, 0, 0, 2, 2, "STARTUP user=root" },
	{ "deepflow-mysql-use.pcap", 3306, 0, 1, 1, 1, "sql=use `test`\nRESULT id=1 outcome=ok" },
	{ "deepflow-mysql-compressed-response.pcap", 30130, 0, 1, 1, 1, "RESULT id=1 outcome=ok rows=5 bytes=491" },
	{ "deepflow-partial-packet-compressed.pcap", 30130, 0, 1, 2, 2, "RESULT id=1 outcome=ok rows=1992 bytes=653059" },
	{ "deepflow-mysql-exec.pcap", 30130, 0, 1, 2, 2, "kind=execute known=1 trunc=0 name=55 params=97" },
	{ "deepflow-truncate-1024.pcap", 6033, 0, 1, 3, 3, "RESULT id=2 outcome=ok rows=3 bytes=1936" },
	{ "deepflow-mysql-login-error.pcap", 3306, 0, 0, 0, 0, "LOGIN ok=0 code=1040" },
	{ "packetbeat-mysql_affected_rows.pcap", 3306, 0, 1, 1, 1, "RESULT id=1 outcome=ok rows=316" },
	{ "packetbeat-mysql_err_database_not_selected.pcap", 3306, 0, 1, 1, 1, "code=1046" },
	{ "packetbeat-mysql_long.pcap", 3306, 0, 1, 1, 1, "RESULT id=1 outcome=ok rows=400" },
	{ "packetbeat-mysql_long_result.pcap", 3306, 0, 1, 1, 1, "RESULT id=1 outcome=ok rows=15" },
	{ "packetbeat-mysql_int_string_operations.pcap", 13001, 0, 1, 157, 157, NULL },
	{ "pcap2mysql-log-compressed.pcap", 3306, 0, 0, 1, 1, "sql=SELECT * FROM peeps" },
	{ "pcap2mysql-log-error.pcap", 3306, 0, 0, 1, 1, "RESULT id=1 outcome=error rows=-1 bytes=0 tag= code=1064" },
	{ "pcap2mysql-log-numeric-types.pcap", 3306, 0, 0, 6, 6, "params=14" },
	{ "pcap2mysql-log-date-types.pcap", 3306, 0, 0, 4, 4, "params=4" },
	{ "zeek-caching_sha2_password.pcap", 3306, 0, 0, 0, 0, "LOGIN ok=0 code=1158" },
	{ "zeek-change-user-error.pcap", 3306, 0, 0, 0, 0, "USER_CHANGE user=root2 database= ok=0" },
	{ "zeek-change-user-success.pcap", 3306, 0, 0, 2, 2, "USER_CHANGE user=root2 database= ok=1" },
	{ "zeek-mysql-9.0.0-query-attributes.pcap", 3306, 0, 0, 1, 1, "sql=SELECT version()\n" },
	{ "zeek-query-attr.pcap", 3306, 0, 0, 3, 3, NULL },
	{ "zeek-many-query-attrs.pcap", 3306, 0, 0, 4, 4, NULL },
	{ "zeek-mysql.pcap", 3306, 0, 0, 14, 14, "DB_CHANGE test\n" },
	{ "zeek-selects_with_new_proto.pcap", 3306, 0, 0, 4, 4, NULL },
	{ "zeek-mysql8-navicat-login-failed.pcap", 3306, 0, 0, 0, 0, "AUTH method=sha256_password" },
	{ "zeek-encrypted.pcap", 3306, 0, 0, 0, 0, "TLS\n" },
};

static int corpus_segs(const struct corpus_case *c, struct segs *s)
{
	const char *dir = getenv("DBTAP_CORPUS");
	const char *src = getenv("DBTAP_SRC");
	char pcap[4096], out[] = "/tmp/dbtap-mysql-segs-XXXXXX", cmd[9000];
	snprintf(pcap, sizeof pcap, "%s/mysql/%s", dir ? dir : "", c->file);
	if (!dir || access(pcap, R_OK) != 0)
		return -1;
	int fd = mkstemp(out);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/pcap2segs.py' '%s' %d %d > '%s'", src, pcap,
		 c->port, c->flow, out);
	int rc = system(cmd);
	int ok = rc == 0 && segs_load(s, out) == 0;
	unlink(out);
	return ok ? 0 : -1;
}

Test(mysql, corpus_captures_decode_as_the_peers_saw_them)
{
	size_t ran = 0;
	for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
		const struct corpus_case *c = &corpus[i];
		struct segs s;
		if (corpus_segs(c, &s) < 0)
			continue;
		ran++;
		struct rec r;
		run_segs(&s, 0, c->midstream, &r);
		cr_assert_eq(r.count[EV_QUERY], (size_t)c->queries, "%s: queries\n%s", c->file, r.t);
		cr_assert_eq(r.count[EV_RESULT], (size_t)c->results, "%s: results\n%s", c->file, r.t);
		cr_assert_eq(r.count[EV_ANOMALY], 0, "%s: anomalies\n%s", c->file, r.t);
		if (c->expect)
			cr_assert_not_null(strstr(r.t, c->expect), "%s: missing '%s'\n%s", c->file, c->expect, r.t);
		/* same events at a spread of split offsets */
		static const size_t splits[] = { 1, 2, 3, 4, 5, 6, 7, 8, 11, 17, 64, 300, 1460 };
		for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
			struct rec rs;
			run_segs(&s, splits[k], c->midstream, &rs);
			cr_assert_str_eq(rs.t, r.t, "%s: split %zu changes the events", c->file, splits[k]);
			rec_free(&rs);
		}
		rec_free(&r);
		segs_free(&s);
	}
	if (!ran)
		cr_skip_test("DBTAP_CORPUS/mysql not present: corpus checks skipped");
}
