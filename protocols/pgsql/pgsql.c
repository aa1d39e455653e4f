/* PostgreSQL v3 wire-protocol decoder: handshake (SSL/GSS/startup/auth), simple and
 * extended query protocol with a bounded statement cache and FIFO response matching,
 * COPY, function calls, and mid-stream resynchronisation. Emits ev.h events.
 * Only whole messages are consumed; oversized ones are counted and skipped piecewise. */
#include "pgsql_int.h"

/* ---- events ---- */

void pg_emit(struct pg *s, struct ev *e)
{
	e->ts = s->ts;
	e->to_server = s->to_server;
	ev_emit(&s->out, e);
}

void pg_anomaly(struct pg *s, const char *what, int fatal)
{
	struct ev e = { .type = EV_ANOMALY };
	e.u.anomaly.what = what;
	e.u.anomaly.fatal = fatal;
	pg_emit(s, &e);
	s->anomalies++;
	if (fatal)
		s->stopped = 1;
}

void pg_tls(struct pg *s, const uint8_t *at, int gss)
{
	struct ev e = { .type = EV_TLS };
	e.u.tls.at = at;
	e.u.tls.gss = gss;
	pg_emit(s, &e);
	s->stopped = 1;
}

void pg_auth(struct pg *s, const char *method)
{
	if (s->auth_method && strcmp(s->auth_method, method) == 0)
		return;
	s->auth_method = method;
	s->auth_seen = 1;
	struct ev e = { .type = EV_AUTH };
	e.u.auth.method = method;
	pg_emit(s, &e);
}

void pg_hello(struct pg *s)
{
	if (s->hello_sent || (!s->version_n && !s->pid))
		return;
	s->hello_sent = 1;
	struct ev e = { .type = EV_SERVER_HELLO };
	e.u.hello.version = (struct strv){ s->version, s->version_n };
	e.u.hello.conn_id = s->pid;
	pg_emit(s, &e);
}


int pg_strv_ieq(struct strv a, const char *lit)
{
	size_t n = strlen(lit);
	if (a.n != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = a.p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return 0;
	}
	return 1;
}

/* Rows from a command tag: the last word when it is a number ("INSERT 0 1" -> 1). */
int64_t pg_tag_rows(struct strv tag)
{
	size_t i = tag.n;
	while (i > 0 && tag.p[i - 1] >= '0' && tag.p[i - 1] <= '9')
		i--;
	if (i == tag.n || i == 0 || tag.p[i - 1] != ' ' || tag.n - i > 18)
		return -1;
	int64_t v = 0;
	for (size_t k = i; k < tag.n; k++)
		v = v * 10 + (tag.p[k] - '0');
	return v;
}


/* ErrorResponse / NoticeResponse fields; only C and M are kept. */
int pg_parse_err_fields(struct rd *r, struct pg_err *e)
{
	memset(e, 0, sizeof *e);
	for (;;) {
		uint8_t f = rd_u8(r);
		if (r->err)
			return -1;
		if (f == 0)
			return 0;
		struct strv v = rd_cstr(r);
		if (r->err)
			return -1;
		if (f == 'C')
			e->code = v;
		else if (f == 'M')
			e->msg = v;
	}
}

/* ---- oversized messages ---- */

/* A message too large to hold: act on its first PG_PREFIX bytes and skip the rest. */
static void msg_prefix(struct pg *s, int to_server, uint8_t t, const uint8_t *body, size_t n, uint64_t full)
{
	if (to_server && t == 'Q') {
		struct strv sql = { (const char *)body, n };
		const uint8_t *z = memchr(body, 0, n);
		if (z)
			sql.n = (size_t)(z - body);
		pg_client_query(s, sql, 1);
	} else if (to_server && t == 'P') {
		pg_client_parse(s, body, n, 1);
	} else if (to_server && t == 'B') {
		pg_client_bind(s, body, n, 1);
	} else if (to_server && t == 'F') {
		pg_client_function(s, body, n); /* lo_write and friends: large arguments */
	} else if (!to_server && t == 'V') {
		pg_server_msg(s, t, body, n); /* lo_read: a large result */
	} else if (t == 'd' || (!to_server && t == 'D')) {
		struct pg_pend *p = pg_pend_target(s);
		if (p) {
			p->bytes += full;
			if (t == 'D')
				p->rows++;
		}
	} else {
		pg_anomaly(s, "pgsql: oversized message skipped", 0);
	}
}

/* ---- decoder table ---- */

static void bad_frame(struct pg *s, struct pg_dir *d, const char *what)
{
	if (!s->confirmed || s->anomalies + 1 >= PG_MAX_ANOMALIES) {
		pg_anomaly(s, what, 1);
		return;
	}
	pg_anomaly(s, what, 0);
	d->resync = 2; /* 2: skip at least the byte that failed */
	d->scanned = 0;
	/* Garbled client bytes reached the server too (which rejects them), so nothing to
	 * match there; garbled responses leave the pending statements unmatchable. */
	if (!s->to_server)
		pg_pend_flush_all(s, EV_OUT_UNKNOWN);
}

static struct proto_result pg_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len, ev_time ts)
{
	struct pg *s = st;
	size_t off = 0;
	if (s->stopped)
		return (struct proto_result){ PROTO_STOP, len };
	s->ts = ts;
	s->to_server = dir == PROTO_TO_SERVER;
	struct pg_dir *d = &s->d[dir == PROTO_TO_SERVER];
	while (off < len && !s->stopped) {
		const uint8_t *p = buf + off;
		size_t n = len - off;
		if (d->skip) {
			size_t k = d->skip < n ? (size_t)d->skip : n;
			d->skip -= k;
			off += k;
			continue;
		}
		if (!s->to_server && s->ssl_wait) {
			uint8_t b = byte_at(p, n, 0);
			int kind = s->ssl_wait;
			s->ssl_wait = 0;
			if ((kind == 1 && b == 'S') || (kind == 2 && b == 'G')) {
				pg_tls(s, p + 1, kind == 2);
				off = len;
				break;
			}
			if (b == 'N') {
				off++;
				continue;
			}
			/* an old server answers with an ErrorResponse: decode it as such */
		}
		if (s->to_server && s->untyped) {
			size_t k = pg_client_untyped(s, p, n);
			if (!k)
				break;
			off += k;
			continue;
		}
		if (!s->to_server && !s->confirmed && s->untyped) {
			/* PostgreSQL never speaks first (MySQL and others do) */
			pg_anomaly(s, "pgsql: server spoke before the client", 1);
			off = len;
			break;
		}
		if (d->resync) {
			if (d->resync == 1 && off == 0 && d->scanned == 0 && pg_looks_tls(p, n)) {
				pg_tls(s, p, 0);
				off = len;
				break;
			}
			if (d->resync == 1 && off == 0 && !s->confirmed && n >= 5 && pg_looks_foreign(s->to_server, p, n)) {
				pg_anomaly(s, "pgsql: not PostgreSQL (MySQL or HTTP bytes)", 1);
				off = len;
				break;
			}
			if (s->to_server && d->resync == 1 && off == 0 && d->scanned == 0 && pg_looks_untyped(p, n) == 1) {
				d->resync = 0;
				s->untyped = 1;
				s->logged_in = 0;
				continue;
			}
			size_t adv;
			int found = pg_resync_scan(s, s->to_server, p, n, d->resync == 2 ? 1 : 0, &adv);
			d->scanned += adv;
			off += adv;
			if (!found) {
				/* a flow that never looked like PostgreSQL is given up on; a known one
				 * keeps scanning (a large result or COPY may be in flight) */
				if (!s->confirmed && d->scanned > PG_RESYNC_UNSURE) {
					pg_anomaly(s, "pgsql: no message boundary found", 1);
					off = len;
				}
				break;
			}
			d->resync = 0;
			d->scanned = 0;
			s->confirmed = 1;
			continue;
		}
		if (n < 5)
			break;
		uint8_t t = byte_at(p, n, 0);
		uint32_t ml = be32_at(p + 1);
		uint32_t mn, mx;
		if (!pg_msg_bounds(s->to_server, t, &mn, &mx)) {
			bad_frame(s, d, s->to_server ? "pgsql: unknown client message type"
						     : "pgsql: unknown server message type");
			continue;
		}
		if (ml < 4) {
			bad_frame(s, d, "pgsql: message length < 4");
			continue;
		}
		if (ml < mn || ml > mx) {
			bad_frame(s, d, "pgsql: message length out of range");
			continue;
		}
		uint64_t total = (uint64_t)ml + 1;
		if (total > n) {
			int count_only = t == 'd' || (!s->to_server && t == 'D');
			if (count_only || total > PG_WHOLE_MAX) {
				if (!count_only && n < 5 + PG_PREFIX)
					break; /* wait for the prefix */
				s->confirmed = 1;
				size_t have = count_only ? 0 : PG_PREFIX;
				msg_prefix(s, s->to_server, t, p + 5, have, ml - 4);
				d->skip = total;
				continue;
			}
			break;
		}
		s->confirmed = 1;
		if (s->to_server)
			pg_client_msg(s, t, p + 5, ml - 4);
		else
			pg_server_msg(s, t, p + 5, ml - 4);
		off += (size_t)total;
	}
	if (s->stopped)
		off = len;
	return (struct proto_result){ s->stopped ? PROTO_STOP : PROTO_OK, off };
}

static enum proto_verdict pg_probe(enum proto_dir dir, const uint8_t *buf, size_t len)
{
	if (dir == PROTO_TO_SERVER) {
		int u = pg_looks_untyped(buf, len);
		if (u == 1)
			return PROTO_YES;
		if (pg_looks_tls(buf, len) && byte_at(buf, len, 0) == 0x16)
			return PROTO_MAYBE;
	} else {
		if (len == 1 && (byte_at(buf, len, 0) == 'S' || byte_at(buf, len, 0) == 'N' || byte_at(buf, len, 0) == 'G'))
			return PROTO_MAYBE;
		if (len >= 9 && byte_at(buf, len, 0) == 'R') {
			uint32_t ml = be32_at(buf + 1), type = be32_at(buf + 5);
			if (ml >= 8 && ml <= 4096 && type <= 12 && type != 1 && type != 4)
				return PROTO_YES;
		}
	}
	int exact;
	size_t partial;
	size_t c = pg_chain_len(dir == PROTO_TO_SERVER, buf, len, &exact, &partial);
	if (c >= 1 && (exact || partial))
		return PROTO_MAYBE;
	if (c >= 2)
		return PROTO_MAYBE;
	return PROTO_NO;
}

static void *pg_open(const struct ev_sink *out, int midstream)
{
	struct pg *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->out = *out;
	if (midstream) {
		s->d[0].resync = 1;
		s->d[1].resync = 1;
		s->logged_in = 1; /* whatever login there was happened before pickup */
	} else {
		s->untyped = 1;
	}
	return s;
}

static void pg_gap(void *st, enum proto_dir dir, ev_time ts)
{
	struct pg *s = st;
	if (s->stopped)
		return;
	s->ts = ts;
	s->to_server = dir == PROTO_TO_SERVER;
	struct pg_dir *d = &s->d[dir == PROTO_TO_SERVER];
	d->skip = 0;
	d->resync = 1;
	d->scanned = 0;
	if (dir == PROTO_TO_CLIENT) {
		s->ssl_wait = 0;
		pg_pend_flush_all(s, EV_OUT_UNKNOWN);
	} else {
		s->untyped = 0;
		if (!pg_pend_push(s, PEND_LOST, 0))
			pg_pend_flush_all(s, EV_OUT_UNKNOWN);
	}
}

/* Capture decrypts the session: what follows is what the TLS start was waiting for (the
 * startup packet, after SSLRequest or a direct ClientHello). */
static void pg_tls_resume(void *st)
{
	struct pg *s = st;
	s->stopped = 0;
	s->ssl_wait = 0;
}

static void pg_stats(void *st, struct proto_stats *out)
{
	const struct pg *s = st;
	out->stmt_evictions += s->stmt_evictions;
	out->portal_evictions += s->portal_evictions;
	out->params_dropped += s->params_dropped;
	out->pending_dropped += s->pend_dropped;
}

static void pg_close(void *st, enum proto_end why, ev_time ts)
{
	struct pg *s = st;
	(void)why;
	s->ts = ts;
	s->to_server = 0;
	if (!s->stopped)
		pg_pend_flush_all(s, EV_OUT_UNKNOWN);
	for (size_t i = 0; i < s->n_stmts; i++)
		pg_stmt_free(s, &s->stmts[i]);
	for (size_t i = 0; i < s->n_portals; i++)
		pg_portal_free(&s->portals[i]);
	free(s->stmts);
	free(s->evicted);
	free(s->portals);
	free(s->binds);
	free(s->render);
	free(s->q);
	free(s);
}

const struct proto_decoder proto_pgsql = {
	.name = "postgresql",
	.default_ports = { 5432 },
	.dialect = EV_DIALECT_POSTGRESQL,
	.probe = pg_probe,
	.open = pg_open,
	.parse = pg_parse,
	.gap = pg_gap,
	.close = pg_close,
	.stats = pg_stats,
	.tls_resume = pg_tls_resume,
};
