/* MySQL / MariaDB client-server protocol decoder: connection phase, commands, prepared
 * statements and responses, turned into analyzer events (packet framing and compression
 * are in mysql_frame.c, binary values in mysql_bin.c). Passwords and auth responses are
 * skipped, never copied.
 *
 * Event choices: ERR gives error_code = errno as text ("1045") and error_msg =
 * "SQLSTATE: message" ("28000: Access denied ..."), so the SQLSTATE is kept without
 * changing what error_code means. COM_QUERY -> EV_Q_SIMPLE (one EV_RESULT per result of
 * a multi-statement, `more` set on all but the last), COM_STMT_PREPARE -> EV_Q_PREPARE,
 * COM_STMT_EXECUTE -> EV_Q_EXECUTE (stmt_name = statement id), COM_BINLOG_DUMP(_GTID) ->
 * EV_Q_FUNCTION then stop. COM_INIT_DB, COM_PING, COM_FIELD_LIST, ... are no statements:
 * only their effect is told (EV_DB_CHANGE). A cursor's rows (COM_STMT_FETCH) are counted
 * into the EV_RESULT of the execute that opened it, told when the cursor ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

/* ---------- small helpers ---------- */

/* A NUL-terminated string, or the rest of the buffer when the NUL is missing
 * (several clients end packets without it). */
struct strv my_rd_cstr_rest(struct rd *r)
{
	if (r->err || rd_left(r) == 0)
		return STRV_LIT("");
	if (memchr(r->p + r->off, 0, r->len - r->off))
		return rd_cstr(r);
	return rd_rest(r);
}

void my_emit(struct my *m, struct ev *e, int dir)
{
	e->ts = m->ts;
	e->to_server = dir == TO_SERVER;
	ev_emit(&m->out, e);
}

void my_anomaly(struct my *m, int dir, const char *what, int fatal)
{
	if (m->stopped)
		return;
	struct ev e = { .type = EV_ANOMALY };
	if (++m->anomalies >= MY_ANOMALY_MAX) {
		what = "mysql: too many anomalies, giving up on the flow";
		fatal = 1;
	}
	e.u.anomaly.what = what;
	e.u.anomaly.fatal = fatal;
	my_emit(m, &e, dir);
	if (fatal)
		m->stopped = 1;
}

static char txn_state(const struct my *m)
{
	if (!m->have_status)
		return '?';
	return (m->status & MY_STATUS_IN_TRANS) ? 'T' : 'I';
}

void my_emit_ready(struct my *m)
{
	struct ev e = { .type = EV_READY };
	e.u.ready.txn = txn_state(m);
	my_emit(m, &e, TO_CLIENT);
}

void my_set_status(struct my *m, uint16_t st)
{
	m->status = st;
	m->have_status = 1;
}

int my_has_cap(const struct my *m, uint64_t c)
{
	return m->have_caps && (m->caps & c);
}

/* ERR packet: errno as text into codebuf, "SQLSTATE: message" into errbuf. */

void my_parse_err(struct my *m, const uint8_t *p, size_t n, struct my_err *e)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, 1);
	e->code = rd_le16(&r);
	struct strv state = STRV_NULL;
	if (rd_left(&r) >= 6 && r.p[r.off] == '#') {
		rd_skip(&r, 1);
		state = rd_bytes(&r, 5);
	}
	struct strv msg = rd_rest(&r);
	int k = snprintf(m->codebuf, sizeof m->codebuf, "%u", (unsigned)e->code);
	e->code_txt = (struct strv){ m->codebuf, k > 0 ? (size_t)k : 0 };
	size_t mn = msg.n;
	size_t cap = sizeof m->errbuf - 8;
	if (mn > cap)
		mn = cap;
	size_t o = 0;
	if (state.n == 5) {
		memcpy(m->errbuf, state.p, 5);
		memcpy(m->errbuf + 5, ": ", 2);
		o = 7;
	}
	if (mn)
		memcpy(m->errbuf + o, msg.p, mn);
	e->msg = (struct strv){ m->errbuf, o + mn };
}

/* OK packet: affected rows and status flags. */
int my_parse_ok(const uint8_t *p, size_t n, uint64_t *affected, uint16_t *status)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, 1);
	*affected = rd_lenenc(&r, NULL);
	rd_lenenc(&r, NULL);
	*status = 0;
	if (rd_left(&r) >= 2)
		*status = rd_le16(&r);
	return r.err ? -1 : 0;
}

/* Status of a result-set terminator: EOF (5 bytes) or OK-with-0xFE. */
uint16_t my_term_status(const uint8_t *p, size_t n)
{
	if (n == 5)
		return (uint16_t)(p[3] | (p[4] << 8));
	uint64_t aff;
	uint16_t st = 0;
	if (my_parse_ok(p, n, &aff, &st) < 0)
		return 0;
	return st;
}

/* Auth plugin name to a static string (ev_auth.method is a C string). */
const char *my_plugin_name(struct my *m, struct strv v)
{
	static const char *const known[] = {
		"mysql_native_password", "caching_sha2_password", "sha256_password",
		"client_ed25519", "ed25519", "mysql_clear_password", "mysql_old_password",
		"dialog", "auth_gssapi_client", "authentication_kerberos_client",
		"authentication_ldap_sasl_client", "authentication_windows_client",
		"authentication_fido_client", "authentication_webauthn_client",
		"authentication_oci_client", "parsec", "sspi", NULL,
	};
	for (int i = 0; known[i]; i++)
		if (strv_eq(v, known[i]))
			return known[i];
	size_t n = 0;
	for (size_t i = 0; i < v.n && n + 1 < sizeof m->plugin_buf; i++) {
		unsigned char c = (unsigned char)v.p[i];
		m->plugin_buf[n++] = (c >= 0x21 && c < 0x7f) ? (char)c : '?';
	}
	m->plugin_buf[n] = 0;
	return m->plugin_buf;
}

int my_plugin_is_clear(const char *p)
{
	return strcmp(p, "mysql_clear_password") == 0 || strcmp(p, "dialog") == 0;
}

void my_emit_auth(struct my *m, const char *method)
{
	struct ev e = { .type = EV_AUTH };
	e.u.auth.method = method;
	my_emit(m, &e, TO_CLIENT);
}

void my_emit_cleartext(struct my *m)
{
	struct ev e = { .type = EV_CLEARTEXT_PASSWORD };
	my_emit(m, &e, TO_SERVER);
}

int my_arena_ready(struct my *m)
{
	if (!m->arena.p) {
		m->arena.p = malloc(MY_ARENA_CAP);
		m->binds = calloc(MY_PARAM_MAX, sizeof *m->binds);
		if (!m->arena.p || !m->binds) {
			free(m->arena.p);
			free(m->binds);
			m->arena.p = NULL;
			m->binds = NULL;
			return -1;
		}
		m->arena.cap = MY_ARENA_CAP;
	}
	m->arena.n = 0;
	return 0;
}


/* Bytes of a 0xffffff continuation: they belong to the row being read. */
static void my_cont_bytes(struct my *m, int dir, uint64_t k)
{
	if (dir != TO_CLIENT || !m->pend_n)
		return;
	struct my_pend *q = my_pend_at(m, 0);
	if (q->rstate == RS_ROWS)
		q->bytes += k;
}

static void my_on_packet(struct my *m, int dir, const uint8_t *p, size_t n, size_t full,
			 uint8_t seq, int trunc)
{
	if (dir == TO_SERVER) {
		switch (m->phase) {
		case PH_GREETING:
		case PH_LOGIN:
			if (seq == 0 && n > 0 && my_valid_cmd(p[0]) && m->phase == PH_GREETING) {
				m->phase = PH_CMD; /* no handshake here after all */
				my_command(m, p, n, trunc);
			} else if (n >= 4) {
				my_login(m, p, n);
			} else {
				my_anomaly(m, TO_SERVER, "mysql: short handshake response", 0);
			}
			return;
		case PH_AUTH:
			/* auth data: never copied */
			if (m->cleartext_next && n > 0)
				my_emit_cleartext(m);
			m->cleartext_next = 0;
			return;
		default:
			if (m->infile) {
				if (full == 0)
					m->infile = 0;
				return;
			}
			if (seq != 0) {
				my_anomaly(m, TO_SERVER, "mysql: command out of sequence", 0);
				return;
			}
			my_command(m, p, n, trunc);
			return;
		}
	}
	if (n == 0 && m->phase != PH_CMD) {
		my_anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
		return;
	}
	/* the bulk of a result set: a row (no terminator, no error) is only counted, as
	 * my_resp_result() would */
	if (m->phase == PH_CMD && n > 0 && p[0] < 0xfe && m->pend_n && !m->stopped) {
		struct my_pend *q = my_pend_at(m, 0);
		if (q->resp == R_RESULT && q->rstate == RS_ROWS) {
			q->rows++;
			q->bytes += full;
			return;
		}
	}
	switch (m->phase) {
	case PH_GREETING:
		my_greeting(m, p, n);
		return;
	case PH_LOGIN:
		if (p[0] == 0xff)
			my_auth_reply(m, p, n);
		else
			my_anomaly(m, TO_CLIENT, "mysql: server spoke before the login", 0);
		return;
	case PH_AUTH:
		my_auth_reply(m, p, n);
		return;
	default:
		my_response(m, p, n, full, seq);
		return;
	}
}

/* The rows of a result set in b, counted in one loop: each whole packet that
 * my_on_packet's row shortcut would count (not a terminator, error or oversized packet).
 * Returns the bytes consumed; the framer takes it from there. */
#define MY_ROWS_PREFETCH 2048 /* bytes ahead */
static size_t my_rows_run(struct my *m, const uint8_t *b, size_t len)
{
	if (m->phase != PH_CMD || !m->pend_n || m->stopped)
		return 0;
	struct my_pend *q = my_pend_at(m, 0);
	if (q->resp != R_RESULT || q->rstate != RS_ROWS)
		return 0;
	size_t off = 0, pf = 0;
	while (len - off >= 5) {
		/* The bytes were just copied on the capture's core and each header's address
		 * depends on the last: without prefetching ahead every row waits for memory. */
		for (; pf < len && pf < off + MY_ROWS_PREFETCH; pf += 64)
			__builtin_prefetch(b + pf);
		uint32_t plen = my_le24(b + off);
		if (plen == 0 || plen > len - off - 4 || 4 + (size_t)plen > MY_HOLD_MAX || b[off + 4] >= 0xfe)
			break;
		q->rows++;
		q->bytes += plen;
		off += 4 + (size_t)plen;
	}
	return off;
}

static const struct my_frame_up my_up = {
	.packet = my_on_packet,
	.rows = my_rows_run,
	.cont = my_cont_bytes,
	.anomaly = my_anomaly,
};

/* ---------- decoder table ---------- */

static enum proto_verdict my_probe(enum proto_dir dir, const uint8_t *b, size_t len)
{
	if (len < 5)
		return PROTO_MAYBE;
	uint32_t plen = my_le24(b);
	uint8_t seq = b[3];
	if (dir == TO_CLIENT) {
		if (seq == 0 && b[4] == 0x0a && plen >= 20 && plen < 1024) {
			size_t i = 5, lim = len < 5 + 64 ? len : 5 + 64;
			if (i < lim && b[i] >= '0' && b[i] <= '9') {
				while (i < lim && b[i] >= 0x20 && b[i] < 0x7f)
					i++;
				if (i < lim && b[i] == 0)
					return PROTO_YES;
			}
		}
		if (seq == 0 && b[4] == 0xff && plen < 512)
			return PROTO_MAYBE;
		/* a reply seen mid-stream: plain packets from seq 1, or compressed frames */
		return my_chain_plausible(TO_CLIENT, b, len) ? PROTO_MAYBE : PROTO_NO;
	}
	if (seq == 1 && plen >= 32 && plen < 65536 && len >= 36) {
		uint32_t caps = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) |
				((uint32_t)b[7] << 24);
		int zero = 1;
		for (size_t i = 9; i < 28; i++) /* filler; MariaDB uses the 4 bytes after it */
			zero &= b[4 + i] == 0;
		if ((caps & MY_CLIENT_PROTOCOL_41) && zero)
			return PROTO_YES;
	}
	if (my_chain_plausible(TO_SERVER, b, len))
		return PROTO_MAYBE; /* a command (plain or compressed) */
	return PROTO_NO;
}

static void *my_open(const struct ev_sink *out, int midstream)
{
	struct my *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->out = *out;
	m->up = &my_up;
	m->midstream = midstream;
	m->deprecate_eof = -1;
	m->qattr = -1;
	if (midstream) {
		/* Capabilities unknown: assume 4.1, guess the rest from what passes. */
		m->phase = PH_CMD;
		m->fr[0].sync = m->fr[1].sync = 1;
	} else {
		m->phase = PH_GREETING;
		m->z_decided = 1;
	}
	return m;
}

/* A TLS record header: type, version 3.x, a length within a record's bound. */
static int looks_tls(const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	uint8_t type = rd_u8(&r), major = rd_u8(&r), minor = rd_u8(&r);
	uint16_t len = rd_be16(&r);
	return !r.err && type >= 0x14 && type <= 0x17 && major == 3 && minor <= 4 && len &&
	       len <= 16384 + 2048;
}

static struct proto_result my_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len,
				    ev_time ts)
{
	struct my *m = st;
	m->ts = ts;
	size_t off = 0;
	if (m->midstream && !m->began) {
		/* picked up inside TLS: say so (a TLS blind spot, not garbled commands) */
		m->began = 1;
		if (looks_tls(buf, len)) {
			struct ev t = { .type = EV_TLS };
			t.u.tls.at = buf;
			my_emit(m, &t, dir);
			m->stopped = 1;
			return (struct proto_result){ PROTO_STOP, len };
		}
	}
	while (off < len && !m->stopped) {
		int was = m->z_on;
		size_t k = m->z_on ? my_z_run(m, dir, buf + off, len - off)
				   : my_frame_run(m, dir, &m->fr[dir], buf + off, len - off, 0);
		off += k;
		if (m->z_on == was)
			break;
	}
	if (m->stopped)
		return (struct proto_result){ PROTO_STOP, len };
	return (struct proto_result){ PROTO_OK, off };
}

static void my_gap(void *st, enum proto_dir dir, ev_time ts)
{
	struct my *m = st;
	m->ts = ts;
	if (m->stopped)
		return;
	memset(&m->fr[dir], 0, sizeof m->fr[dir]);
	m->fr[dir].sync = 1;
	if (m->z_on) {
		my_z_reset_dir(&m->z[dir]);
		m->z[dir].sync = 1;
		m->z[dir].fr.sync = 1;
	}
	if (dir == TO_CLIENT) {
		my_pend_flush(m); /* the replies under way are lost */
		if (m->phase != PH_CMD)
			m->phase = PH_CMD;
	} else {
		m->infile = 0;
	}
}

/* Capture decrypts the session: the handshake response continues inside TLS. */
static void my_tls_resume(void *st)
{
	struct my *m = st;
	m->stopped = 0;
}

static void my_stats(void *st, struct proto_stats *out)
{
	const struct my *m = st;
	out->stmt_evictions += m->stmt_evictions;
}

static void my_close(void *st, enum proto_end why, ev_time ts)
{
	struct my *m = st;
	(void)why;
	m->ts = ts;
	m->stopped = 0; /* owed results are still told after a stop */
	while (m->pend_n) {
		struct my_pend *q = my_pend_at(m, 0);
		if (q->has_q)
			my_emit_result(m, q->qid, EV_OUT_UNKNOWN, q->rows > 0 ? q->rows : -1, q->bytes, NULL, 0);
		my_pend_pop(m);
	}
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used && m->stmts[i].cur_open) {
			m->stmts[i].cur_open = 0;
			my_emit_result(m, m->stmts[i].cur_qid, EV_OUT_UNKNOWN, m->stmts[i].cur_rows,
				    m->stmts[i].cur_bytes, NULL, 0);
		}
	if (m->phase == PH_AUTH && m->change_user) {
		struct ev e = { .type = EV_USER_CHANGE };
		e.u.user_change.user = strv_from(m->cu_user);
		e.u.user_change.database = strv_from(m->cu_db);
		e.u.user_change.ok = -1;
		my_emit(m, &e, TO_CLIENT);
	}
	for (size_t i = 0; i < MY_STMT_MAX; i++) {
		free(m->stmts[i].sql);
		free(m->stmts[i].types);
		free(m->stmts[i].longd);
	}
	for (int d = 0; d < 2; d++) {
		free(m->z[d].ib);
		if (m->z[d].zs_ok)
			inflateEnd(&m->z[d].zs);
		if (m->z[d].zd)
			ZSTD_freeDStream(m->z[d].zd);
	}
	free(m->arena.p);
	free(m->binds);
	free(m->evicted);
	free(m);
}

const struct proto_decoder proto_mysql = {
	.name = "mysql",
	.default_ports = { 3306 },
	.dialect = EV_DIALECT_MYSQL,
	.probe = my_probe,
	.open = my_open,
	.parse = my_parse,
	.gap = my_gap,
	.close = my_close,
	.stats = my_stats,
	.tls_resume = my_tls_resume,
};
