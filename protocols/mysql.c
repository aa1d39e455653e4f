/* MySQL / MariaDB client-server protocol decoder: packet framing (0xffffff continuation,
 * oversized packets decoded from their head), zlib/zstd compression, connection phase,
 * commands, prepared statements and responses, turned into analyzer events.
 * Passwords and auth responses are skipped, never copied.
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
#include <zlib.h>
#include <zstd.h>

#include "mysql_int.h"

#define TO_SERVER PROTO_TO_SERVER
#define TO_CLIENT PROTO_TO_CLIENT

enum my_phase {
	PH_GREETING, /* waiting for the server's Initial Handshake */
	PH_LOGIN,    /* waiting for the client's HandshakeResponse */
	PH_AUTH,     /* auth exchange until OK/ERR (login or COM_CHANGE_USER) */
	PH_CMD,	     /* command phase */
};

/* What kind of reply a command expects. */
enum my_resp {
	R_OKERR,     /* OK / ERR (EOF for a few old commands) */
	R_RESULT,    /* OK / ERR / LOCAL INFILE / result sets, possibly several */
	R_PREPARE,   /* PREPARE_OK + parameter and column definitions */
	R_FIELDLIST, /* column definitions until EOF */
	R_STAT,	     /* one string packet */
	R_FETCH,     /* cursor rows until EOF */
};

enum my_rstate {
	RS_FIRST,
	RS_COLDEFS,
	RS_COLEOF,
	RS_ROWS,
	RS_PPARAMS,
	RS_PEOF,
	RS_PCOLS,
	RS_PCEOF,
};

struct my_pend {
	uint8_t cmd, resp, rstate, has_q;
	uint64_t qid;
	uint32_t stmt_id;
	uint64_t left;		  /* definitions still to come */
	uint16_t nparams, ncols;  /* from PREPARE_OK */
	int64_t rows;
	uint64_t bytes;
	char *text;		  /* PREPARE: SQL copy; INIT_DB: schema */
	size_t text_n;
	int text_trunc;
};

struct my_stmt {
	int used;
	uint32_t id;
	uint64_t age;
	char *sql;
	size_t sql_n;
	int sql_known, sql_trunc;
	uint16_t nparams, ncols;
	uint16_t *types; /* remembered for re-executes that omit them */
	int have_types;
	uint8_t *longd;	 /* params sent by COM_STMT_SEND_LONG_DATA: absent from the execute */
	/* A cursor opened by an execute: its result is owed until the last fetch. */
	int cur_open;
	uint64_t cur_qid;
	int64_t cur_rows;
	uint64_t cur_bytes;
};

struct my_framer {
	uint64_t skip_left; /* payload bytes of an oversized packet still to skip */
	uint64_t logical;   /* bytes of the current 0xffffff chain */
	int cont;	    /* a continuation packet of a handled payload comes next */
	int sync;	    /* looking for a packet boundary */
};

enum my_zkind { Z_STORED, Z_ZLIB, Z_ZSTD };

struct my_zdir {
	int sync, in_frame, kind;
	int broken; /* frame data was bad (reported): ignore the rest of the frame */
	int done;   /* the frame's stream ended: ignore trailing bytes */
	size_t cf_left;
	uint32_t cf_ulen;
	uint64_t cf_out;
	z_stream zs;
	int zs_ok;
	ZSTD_DStream *zd;
	uint8_t *ib; /* decompressed bytes not yet framed (MY_HOLD_MAX) */
	size_t ib_n;
	struct my_framer fr;
};

struct my {
	struct ev_sink out;
	ev_time ts;
	int midstream, stopped, phase, change_user;
	uint64_t srv_caps, caps;
	int have_srv_caps, have_caps;
	int deprecate_eof; /* -1 not known yet */
	int qattr;	   /* query attributes in COM_QUERY / EXECUTE; -1 not known yet */
	int z_on, z_decided;
	int cleartext_next; /* the next client auth packet carries a clear password */
	int infile;	    /* client uploads LOCAL INFILE data until an empty packet */
	int any_cmd;
	uint16_t status;
	int have_status;
	uint64_t qid;
	struct my_pend pend[MY_PEND_MAX];
	size_t pend_head, pend_n;
	struct my_stmt stmts[MY_STMT_MAX];
	size_t stmt_sql_total;
	uint64_t stmt_age, stmt_evictions;
	uint32_t last_prep_id;
	int have_last_prep;
	struct my_framer fr[2];
	struct my_zdir z[2];
	int anomalies;
	char srv_plugin[64], plugin_buf[64];
	char cu_user[256], cu_db[256];
	char errbuf[MY_ERRMSG_CAP], codebuf[16];
	struct my_arena arena;
	struct ev_bind *binds;
	struct ev_kv kv[MY_ATTR_MAX];
};

/* ---------- small helpers ---------- */

static uint32_t le24(const uint8_t *b)
{
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16);
}

/* A NUL-terminated string, or the rest of the buffer when the NUL is missing
 * (several clients end packets without it). */
static struct strv rd_cstr_rest(struct rd *r)
{
	if (r->err || rd_left(r) == 0)
		return STRV_LIT("");
	if (memchr(r->p + r->off, 0, r->len - r->off))
		return rd_cstr(r);
	return rd_rest(r);
}

static void emit(struct my *m, struct ev *e, int dir)
{
	e->ts = m->ts;
	e->to_server = dir == TO_SERVER;
	ev_emit(&m->out, e);
}

static void anomaly(struct my *m, int dir, const char *what, int fatal)
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
	emit(m, &e, dir);
	if (fatal)
		m->stopped = 1;
}

static char txn_state(const struct my *m)
{
	if (!m->have_status)
		return '?';
	return (m->status & MY_STATUS_IN_TRANS) ? 'T' : 'I';
}

static void emit_ready(struct my *m)
{
	struct ev e = { .type = EV_READY };
	e.u.ready.txn = txn_state(m);
	emit(m, &e, TO_CLIENT);
}

static void set_status(struct my *m, uint16_t st)
{
	m->status = st;
	m->have_status = 1;
}

static int has_cap(const struct my *m, uint64_t c)
{
	return m->have_caps && (m->caps & c);
}

static int valid_cmd(uint8_t c)
{
	switch (c) {
	case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06: case 0x07:
	case 0x08: case 0x09: case 0x0a: case 0x0c: case 0x0d: case 0x0e: case 0x11:
	case 0x12: case 0x13: case 0x15: case 0x16: case 0x17: case 0x18: case 0x19:
	case 0x1a: case 0x1b: case 0x1c: case 0x1e: case 0x1f: case 0xfa:
		return 1;
	default:
		return 0;
	}
}

/* ERR packet: errno as text into codebuf, "SQLSTATE: message" into errbuf. */
struct my_err {
	uint16_t code;
	struct strv code_txt, msg;
};

static void parse_err(struct my *m, const uint8_t *p, size_t n, struct my_err *e)
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
static int parse_ok(const uint8_t *p, size_t n, uint64_t *affected, uint16_t *status)
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
static uint16_t term_status(const uint8_t *p, size_t n)
{
	if (n == 5)
		return (uint16_t)(p[3] | (p[4] << 8));
	uint64_t aff;
	uint16_t st = 0;
	if (parse_ok(p, n, &aff, &st) < 0)
		return 0;
	return st;
}

/* Auth plugin name to a static string (ev_auth.method is a C string). */
static const char *plugin_name(struct my *m, struct strv v)
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

static int plugin_is_clear(const char *p)
{
	return strcmp(p, "mysql_clear_password") == 0 || strcmp(p, "dialog") == 0;
}

static void emit_auth(struct my *m, const char *method)
{
	struct ev e = { .type = EV_AUTH };
	e.u.auth.method = method;
	emit(m, &e, TO_CLIENT);
}

static void emit_cleartext(struct my *m)
{
	struct ev e = { .type = EV_CLEARTEXT_PASSWORD };
	emit(m, &e, TO_SERVER);
}

static int arena_ready(struct my *m)
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

/* ---------- pending commands ---------- */

static struct my_pend *pend_at(struct my *m, size_t i)
{
	return &m->pend[(m->pend_head + i) % MY_PEND_MAX];
}

static void emit_result(struct my *m, uint64_t qid, enum ev_outcome o, int64_t rows,
			uint64_t bytes, const struct my_err *err, int more)
{
	struct ev e = { .type = EV_RESULT };
	e.u.result.id = qid;
	e.u.result.outcome = o;
	e.u.result.rows = rows;
	e.u.result.bytes = bytes;
	if (err) {
		e.u.result.error_code = err->code_txt;
		e.u.result.error_msg = err->msg;
	}
	e.u.result.more = more;
	emit(m, &e, TO_CLIENT);
}

static void pend_pop(struct my *m)
{
	if (!m->pend_n)
		return;
	struct my_pend *q = pend_at(m, 0);
	free(q->text);
	memset(q, 0, sizeof *q);
	m->pend_head = (m->pend_head + 1) % MY_PEND_MAX;
	m->pend_n--;
}

/* Forget every pending command; owed results become 'unknown'. */
static void pend_flush(struct my *m)
{
	int any = 0;
	while (m->pend_n) {
		struct my_pend *q = pend_at(m, 0);
		if (q->has_q) {
			emit_result(m, q->qid, EV_OUT_UNKNOWN, q->rows > 0 ? q->rows : -1, q->bytes,
				    NULL, 0);
			any = 1;
		}
		pend_pop(m);
	}
	if (any)
		emit_ready(m);
}

static struct my_pend *pend_push(struct my *m, uint8_t cmd, uint8_t resp)
{
	if (m->pend_n == MY_PEND_MAX) {
		/* A server that answers nothing: the oldest is given up as unknown. */
		struct my_pend *q = pend_at(m, 0);
		if (q->has_q)
			emit_result(m, q->qid, EV_OUT_UNKNOWN, -1, 0, NULL, 0);
		pend_pop(m);
		anomaly(m, TO_SERVER, "mysql: too many unanswered commands", 0);
	}
	struct my_pend *q = pend_at(m, m->pend_n++);
	memset(q, 0, sizeof *q);
	q->cmd = cmd;
	q->resp = resp;
	q->rstate = RS_FIRST;
	return q;
}

static char *copy_text(const char *p, size_t n, size_t cap, size_t *out_n, int *trunc)
{
	*trunc = n > cap;
	if (n > cap)
		n = cap;
	char *s = malloc(n + 1);
	if (!s) {
		*out_n = 0;
		return NULL;
	}
	if (n)
		memcpy(s, p, n);
	s[n] = 0;
	*out_n = n;
	return s;
}

/* ---------- prepared statements ---------- */

static struct my_stmt *stmt_find(struct my *m, uint32_t id)
{
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used && m->stmts[i].id == id)
			return &m->stmts[i];
	return NULL;
}

/* An open cursor's owed result is emitted when the cursor ends or the statement goes. */
static void stmt_cursor_done(struct my *m, struct my_stmt *s, const struct my_err *err)
{
	if (!s->cur_open)
		return;
	s->cur_open = 0;
	emit_result(m, s->cur_qid, err ? EV_OUT_ERROR : EV_OUT_OK, s->cur_rows, s->cur_bytes, err, 0);
	emit_ready(m);
}

static void stmt_drop(struct my *m, struct my_stmt *s)
{
	stmt_cursor_done(m, s, NULL);
	m->stmt_sql_total -= s->sql_n;
	free(s->sql);
	free(s->types);
	free(s->longd);
	memset(s, 0, sizeof *s);
}

static void stmt_clear(struct my *m)
{
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used)
			stmt_drop(m, &m->stmts[i]);
	m->have_last_prep = 0;
}

static struct my_stmt *stmt_oldest(struct my *m)
{
	struct my_stmt *o = NULL;
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used && (!o || m->stmts[i].age < o->age))
			o = &m->stmts[i];
	return o;
}

static struct my_stmt *stmt_add(struct my *m, uint32_t id)
{
	struct my_stmt *s = stmt_find(m, id);
	if (s)
		stmt_drop(m, s);
	s = NULL;
	for (size_t i = 0; i < MY_STMT_MAX && !s; i++)
		if (!m->stmts[i].used)
			s = &m->stmts[i];
	if (!s) {
		s = stmt_oldest(m);
		stmt_drop(m, s);
		m->stmt_evictions++;
	}
	s->used = 1;
	s->id = id;
	s->age = ++m->stmt_age;
	return s;
}

/* Keep the total SQL kept under its budget by evicting the oldest statements. */
static void stmt_budget(struct my *m, const struct my_stmt *keep)
{
	while (m->stmt_sql_total > MY_STMT_SQL_TOTAL) {
		struct my_stmt *o = NULL;
		for (size_t i = 0; i < MY_STMT_MAX; i++)
			if (m->stmts[i].used && &m->stmts[i] != keep &&
			    (!o || m->stmts[i].age < o->age))
				o = &m->stmts[i];
		if (!o)
			break;
		stmt_drop(m, o);
		m->stmt_evictions++;
	}
}

/* ---------- binary values in COM_QUERY attributes and COM_STMT_EXECUTE ---------- */

/* Decode null bitmap + values for n params of the given types into m->binds.
 * Returns the number rendered (stops at an undecodable type). */
static size_t decode_values(struct my *m, struct rd *r, size_t n, const uint8_t *bitmap,
			    const uint16_t *types, const uint8_t *longd)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < MY_PARAM_MAX; i++) {
		struct ev_bind *b = &m->binds[k];
		if (bitmap[i / 8] & (1u << (i % 8))) {
			memset(b, 0, sizeof *b);
			b->is_null = 1;
			b->text = STRV_LIT("");
			k++;
			continue;
		}
		if (longd && longd[i]) { /* the value went ahead in COM_STMT_SEND_LONG_DATA */
			memset(b, 0, sizeof *b);
			b->text = STRV_LIT("(long data)");
			k++;
			continue;
		}
		uint8_t t = (uint8_t)(types[i] & 0xff);
		int uns = (types[i] >> 8) & 0x80;
		if (my_bin_value(r, t, uns, &m->arena, b) < 0)
			break;
		k++;
	}
	return k;
}

/* Skip the query attributes in front of COM_QUERY text. 0, or -1 if they do not parse. */
static int skip_qattrs(struct my *m, struct rd *r)
{
	uint64_t n = rd_lenenc(r, NULL);
	uint64_t sets = rd_lenenc(r, NULL);
	if (r->err || sets != 1)
		return -1;
	if (n == 0)
		return 0;
	if (n > MY_PARAM_MAX || arena_ready(m) < 0)
		return -1;
	struct strv bm = rd_bytes(r, (size_t)(n + 7) / 8);
	if (rd_u8(r) != 1 || r->err)
		return -1;
	uint16_t types[MY_PARAM_MAX];
	for (size_t i = 0; i < n; i++) {
		types[i] = rd_le16(r);
		rd_lenenc_str(r);
	}
	if (r->err)
		return -1;
	size_t got = decode_values(m, r, (size_t)n, (const uint8_t *)bm.p, types, NULL);
	return (got == n && !r->err) ? 0 : -1;
}

/* ---------- commands (client to server) ---------- */

static void emit_query(struct my *m, uint64_t qid, enum ev_query_kind kind, struct strv sql,
		       int known, int trunc, struct strv name, size_t n_params)
{
	struct ev e = { .type = EV_QUERY };
	e.u.query.id = qid;
	e.u.query.kind = kind;
	e.u.query.sql = sql;
	e.u.query.sql_known = known;
	e.u.query.truncated = trunc;
	e.u.query.stmt_name = name;
	e.u.query.params = n_params ? m->binds : NULL;
	e.u.query.n_params = n_params;
	emit(m, &e, TO_SERVER);
}

static void cmd_query(struct my *m, const uint8_t *p, size_t n, int trunc)
{
	struct rd r = rd_make(p + 1, n - 1);
	if (m->qattr != 0 && n >= 3) {
		/* Unknown (mid-stream): text never starts with "<count>\x01", attributes do. */
		if (m->qattr == 1 || (p[2] == 0x01 && p[1] < 0xfb)) {
			if (skip_qattrs(m, &r) == 0) {
				m->qattr = 1;
			} else {
				if (m->qattr == 1)
					anomaly(m, TO_SERVER, "mysql: bad query attributes", 0);
				r = rd_make(p + 1, n - 1);
			}
		}
	}
	struct strv sql = rd_rest(&r);
	uint64_t qid = ++m->qid;
	emit_query(m, qid, EV_Q_SIMPLE, sql, 1, trunc, STRV_NULL, 0);
	struct my_pend *q = pend_push(m, 0x03, R_RESULT);
	q->has_q = 1;
	q->qid = qid;
}

static void cmd_prepare(struct my *m, const uint8_t *p, size_t n, int trunc)
{
	struct strv sql = { (const char *)p + 1, n - 1 };
	uint64_t qid = ++m->qid;
	emit_query(m, qid, EV_Q_PREPARE, sql, 1, trunc, STRV_NULL, 0);
	struct my_pend *q = pend_push(m, 0x16, R_PREPARE);
	q->has_q = 1;
	q->qid = qid;
	int t = 0;
	q->text = copy_text(sql.p, sql.n, MY_STMT_SQL_CAP, &q->text_n, &t);
	q->text_trunc = t || trunc;
}

/* The most recent PREPARE still waiting for its answer (MariaDB pipelines
 * PREPARE + EXECUTE(-1)). */
static struct my_pend *pending_prepare(struct my *m)
{
	for (size_t i = m->pend_n; i-- > 0;)
		if (pend_at(m, i)->cmd == 0x16)
			return pend_at(m, i);
	return NULL;
}

static void cmd_execute(struct my *m, const uint8_t *p, size_t n, int trunc)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, 1);
	uint32_t id = rd_le32(&r);
	uint8_t flags = rd_u8(&r);
	rd_le32(&r); /* iteration count */
	if (r.err) {
		anomaly(m, TO_SERVER, "mysql: short COM_STMT_EXECUTE", 0);
		return;
	}
	if (id == 0xffffffffu && m->have_last_prep)
		id = m->last_prep_id;
	struct my_stmt *s = stmt_find(m, id);
	struct my_pend *pp = (!s && id == 0xffffffffu) ? pending_prepare(m) : NULL;
	struct strv sql = STRV_LIT("");
	int known = 0, strunc = 0;
	if (s && s->sql_known) {
		sql = (struct strv){ s->sql, s->sql_n };
		known = 1;
		strunc = s->sql_trunc;
	} else if (pp && pp->text) {
		sql = (struct strv){ pp->text, pp->text_n };
		known = 1;
		strunc = pp->text_trunc;
	}
	if (s)
		stmt_cursor_done(m, s, NULL); /* re-execute closes the previous cursor */
	size_t nb = 0;
	if (arena_ready(m) == 0 && s) {
		uint64_t cnt = s->nparams;
		int qa = m->qattr == 1 || has_cap(m, MY_CLIENT_QUERY_ATTRIBUTES);
		if (qa && (cnt > 0 || (flags & 0x08)))
			cnt = rd_lenenc(&r, NULL);
		if (cnt > 0 && cnt <= 0xffff && !r.err) {
			struct strv bm = rd_bytes(&r, (size_t)(cnt + 7) / 8);
			uint8_t bound = rd_u8(&r);
			if (bound && !r.err) {
				if (!s->types || cnt > s->nparams) {
					free(s->types);
					size_t keep = cnt > MY_PARAM_MAX ? MY_PARAM_MAX : (size_t)cnt;
					s->types = calloc(keep, sizeof *s->types);
					if (keep != s->nparams) { /* sized by nparams: start over */
						free(s->longd);
						s->longd = NULL;
					}
					s->nparams = (uint16_t)keep;
				}
				for (uint64_t i = 0; i < cnt; i++) {
					uint16_t t = rd_le16(&r);
					if (qa)
						rd_lenenc_str(&r);
					if (s->types && i < s->nparams)
						s->types[i] = t;
				}
				s->have_types = s->types && !r.err;
			}
			if (!r.err && s->have_types) {
				size_t use = cnt > s->nparams ? s->nparams : (size_t)cnt;
				nb = decode_values(m, &r, use, (const uint8_t *)bm.p, s->types, s->longd);
			}
		}
	}
	if (s && s->longd)
		memset(s->longd, 0, s->nparams); /* long data is used once */
	char name[16];
	int k = snprintf(name, sizeof name, "%lu", (unsigned long)id);
	uint64_t qid = ++m->qid;
	emit_query(m, qid, EV_Q_EXECUTE, sql, known, strunc || (trunc && !known), (struct strv){ name, (size_t)k }, nb);
	struct my_pend *q = pend_push(m, 0x17, R_RESULT);
	q->has_q = 1;
	q->qid = qid;
	q->stmt_id = id;
}

/* MariaDB COM_STMT_BULK_EXECUTE: recorded with the statement text, values not decoded. */
static void cmd_bulk(struct my *m, const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, 1);
	uint32_t id = rd_le32(&r);
	if (id == 0xffffffffu && m->have_last_prep)
		id = m->last_prep_id;
	struct my_stmt *s = stmt_find(m, id);
	char name[16];
	int k = snprintf(name, sizeof name, "%lu", (unsigned long)id);
	uint64_t qid = ++m->qid;
	struct strv sql = s && s->sql_known ? (struct strv){ s->sql, s->sql_n } : STRV_LIT("");
	emit_query(m, qid, EV_Q_EXECUTE, sql, s && s->sql_known, s ? s->sql_trunc : 0,
		   (struct strv){ name, (size_t)k }, 0);
	struct my_pend *q = pend_push(m, 0xfa, R_RESULT);
	q->has_q = 1;
	q->qid = qid;
	q->stmt_id = id;
}

static void copy_small(char *dst, size_t cap, struct strv v)
{
	size_t n = v.n < cap - 1 ? v.n : cap - 1;
	if (n)
		memcpy(dst, v.p, n);
	dst[n] = 0;
}

static void cmd_change_user(struct my *m, const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p + 1, n - 1);
	struct strv user = rd_cstr_rest(&r);
	if (!m->have_caps || has_cap(m, MY_CLIENT_SECURE_CONNECTION))
		rd_skip(&r, rd_u8(&r)); /* auth response: skipped, never copied */
	else
		rd_cstr_rest(&r);
	struct strv db = rd_cstr_rest(&r);
	struct strv plugin = STRV_NULL;
	if (rd_left(&r) >= 2) {
		rd_le16(&r); /* character set */
		if (!m->have_caps || has_cap(m, MY_CLIENT_PLUGIN_AUTH))
			plugin = rd_cstr_rest(&r);
	}
	copy_small(m->cu_user, sizeof m->cu_user, user);
	copy_small(m->cu_db, sizeof m->cu_db, db);
	m->change_user = 1;
	m->phase = PH_AUTH;
	stmt_clear(m); /* the server drops prepared statements on a user change */
	if (plugin.n) {
		const char *meth = plugin_name(m, plugin);
		emit_auth(m, meth);
		if (plugin_is_clear(meth))
			emit_cleartext(m);
	}
}

static void command(struct my *m, const uint8_t *p, size_t n, int trunc)
{
	if (n == 0) {
		anomaly(m, TO_SERVER, "mysql: empty command packet", 0);
		return;
	}
	m->any_cmd = 1;
	struct my_pend *q;
	switch (p[0]) {
	case 0x01: /* COM_QUIT */
		break;
	case 0x02: { /* COM_INIT_DB */
		q = pend_push(m, 0x02, R_OKERR);
		int t;
		q->text = copy_text((const char *)p + 1, n - 1, 256, &q->text_n, &t);
		break;
	}
	case 0x03:
		cmd_query(m, p, n, trunc);
		break;
	case 0x04:
		pend_push(m, 0x04, R_FIELDLIST);
		break;
	case 0x09:
		pend_push(m, 0x09, R_STAT);
		break;
	case 0x0a: /* COM_PROCESS_INFO: a result set */
		pend_push(m, 0x0a, R_RESULT);
		break;
	case 0x11:
		cmd_change_user(m, p, n);
		break;
	case 0x12: /* COM_BINLOG_DUMP */
	case 0x1e: { /* COM_BINLOG_DUMP_GTID: a replication client; the binlog stream follows */
		uint64_t qid = ++m->qid;
		struct strv what = p[0] == 0x12 ? STRV_LIT("COM_BINLOG_DUMP") : STRV_LIT("COM_BINLOG_DUMP_GTID");
		emit_query(m, qid, EV_Q_FUNCTION, what, 1, 0, STRV_NULL, 0);
		q = pend_push(m, p[0], R_RESULT);
		q->has_q = 1;
		q->qid = qid;
		m->stopped = 1;
		break;
	}
	case 0x16:
		cmd_prepare(m, p, n, trunc);
		break;
	case 0x17:
		cmd_execute(m, p, n, trunc);
		break;
	case 0x18: { /* COM_STMT_SEND_LONG_DATA: no reply; the execute will omit that value */
		struct rd r = rd_make(p + 1, n - 1);
		struct my_stmt *s = stmt_find(m, rd_le32(&r));
		uint16_t param = rd_le16(&r);
		if (s && !r.err && param < s->nparams) {
			if (!s->longd)
				s->longd = calloc(s->nparams, 1);
			if (s->longd)
				s->longd[param] = 1;
		}
		break;
	}
	case 0x19: { /* COM_STMT_CLOSE: no reply */
		struct rd r = rd_make(p + 1, n - 1);
		struct my_stmt *s = stmt_find(m, rd_le32(&r));
		if (s)
			stmt_drop(m, s);
		break;
	}
	case 0x1a: { /* COM_STMT_RESET */
		struct rd r = rd_make(p + 1, n - 1);
		struct my_stmt *s = stmt_find(m, rd_le32(&r));
		if (s)
			stmt_cursor_done(m, s, NULL);
		if (s && s->longd)
			memset(s->longd, 0, s->nparams);
		pend_push(m, 0x1a, R_OKERR);
		break;
	}
	case 0x1c: { /* COM_STMT_FETCH */
		struct rd r = rd_make(p + 1, n - 1);
		q = pend_push(m, 0x1c, R_FETCH);
		q->stmt_id = rd_le32(&r);
		break;
	}
	case 0xfa:
		cmd_bulk(m, p, n);
		break;
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x0c: case 0x0d: case 0x0e:
	case 0x13: case 0x15: case 0x1b: case 0x1f:
		pend_push(m, p[0], R_OKERR);
		break;
	default:
		anomaly(m, TO_SERVER, "mysql: unknown command", 0);
		m->fr[TO_SERVER].sync = 1;
		if (m->z_on)
			m->z[TO_SERVER].fr.sync = 1;
		break;
	}
}

/* ---------- connection phase ---------- */

static void greeting(struct my *m, const uint8_t *p, size_t n)
{
	if (p[0] == 0xff) { /* refused before the handshake (1040, 1130, ...) */
		struct my_err e;
		parse_err(m, p, n, &e);
		struct ev ev = { .type = EV_LOGIN };
		ev.u.login.ok = 0;
		ev.u.login.error_code = e.code_txt;
		ev.u.login.error_msg = e.msg;
		emit(m, &ev, TO_CLIENT);
		m->phase = PH_CMD;
		return;
	}
	struct rd r = rd_make(p, n);
	uint8_t proto = rd_u8(&r);
	if (proto != 10 && proto != 9) {
		anomaly(m, TO_CLIENT, "mysql: unknown handshake protocol", 1);
		return;
	}
	struct strv version = rd_cstr(&r);
	uint32_t conn_id = rd_le32(&r);
	if (proto == 10) {
		rd_skip(&r, 9); /* scramble part 1 + filler */
		uint64_t caps = rd_le16(&r);
		if (r.err) {
			anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
			return;
		}
		if (rd_left(&r) >= 16) {
			rd_u8(&r); /* charset */
			rd_le16(&r); /* status */
			caps |= (uint64_t)rd_le16(&r) << 16;
			uint8_t alen = rd_u8(&r);
			rd_skip(&r, 6);
			uint32_t ext = rd_le32(&r);
			if (!(caps & MY_CLIENT_MYSQL))
				caps |= (uint64_t)ext << 32;
			if (caps & MY_CLIENT_SECURE_CONNECTION)
				rd_skip(&r, alen > 21 ? (size_t)alen - 8 : 13);
			if ((caps & MY_CLIENT_PLUGIN_AUTH) && !r.err)
				copy_small(m->srv_plugin, sizeof m->srv_plugin, rd_cstr_rest(&r));
		}
		m->srv_caps = caps;
		m->have_srv_caps = 1;
	} else if (r.err) {
		anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
		return;
	}
	struct ev e = { .type = EV_SERVER_HELLO };
	e.u.hello.version = version;
	e.u.hello.conn_id = conn_id;
	emit(m, &e, TO_CLIENT);
	m->phase = PH_LOGIN;
	m->fr[TO_SERVER].sync = 0; /* the next client bytes are its handshake response */
	m->z_decided = 1;
}

static void login(struct my *m, const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	uint64_t caps = rd_le16(&r);
	struct strv user, db = STRV_NULL, plugin = STRV_NULL;
	size_t auth_len = 0;
	size_t nkv = 0;
	struct strv app = STRV_NULL;
	r = rd_make(p, n);
	if (caps & MY_CLIENT_PROTOCOL_41) {
		caps = rd_le32(&r);
		rd_le32(&r); /* max packet */
		rd_u8(&r);   /* charset */
		rd_skip(&r, 19);
		uint32_t ext = rd_le32(&r);
		if (r.err) {
			anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
			return;
		}
		if (!(caps & MY_CLIENT_MYSQL))
			caps |= (uint64_t)ext << 32;
		if (rd_left(&r) == 0 && (caps & MY_CLIENT_SSL))
			goto tls;
		user = rd_cstr_rest(&r);
		if (caps & MY_CLIENT_PLUGIN_AUTH_LENENC) {
			uint64_t a = rd_lenenc(&r, NULL);
			auth_len = a > rd_left(&r) ? rd_left(&r) : (size_t)a;
			rd_skip(&r, auth_len);
		} else if (caps & MY_CLIENT_SECURE_CONNECTION) {
			auth_len = rd_u8(&r);
			rd_skip(&r, auth_len);
		} else {
			auth_len = rd_cstr_rest(&r).n;
		}
		if (caps & MY_CLIENT_CONNECT_WITH_DB)
			db = rd_cstr_rest(&r);
		if (caps & MY_CLIENT_PLUGIN_AUTH)
			plugin = rd_cstr_rest(&r);
		if ((caps & MY_CLIENT_CONNECT_ATTRS) && rd_left(&r) > 0) {
			uint64_t tl = rd_lenenc(&r, NULL);
			struct rd a = rd_sub(&r, tl > rd_left(&r) ? rd_left(&r) : (size_t)tl);
			while (rd_left(&a) > 0 && !a.err) {
				struct strv k = rd_lenenc_str(&a);
				struct strv v = rd_lenenc_str(&a);
				if (a.err)
					break;
				if (strv_eq(k, "program_name"))
					app = v;
				else if (nkv < MY_ATTR_MAX)
					m->kv[nkv++] = (struct ev_kv){ k, v };
			}
		}
		if (r.err) {
			anomaly(m, TO_SERVER, "mysql: malformed handshake response", 0);
			r.err = 0;
		}
	} else {
		/* HandshakeResponse320 */
		rd_le24(&r); /* max packet */
		if (r.err) {
			anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
			return;
		}
		if (rd_left(&r) == 0 && (caps & MY_CLIENT_SSL))
			goto tls;
		user = rd_cstr_rest(&r);
		if (caps & MY_CLIENT_CONNECT_WITH_DB) {
			auth_len = rd_cstr_rest(&r).n;
			db = rd_cstr_rest(&r);
		} else {
			auth_len = rd_rest(&r).n;
		}
	}
	m->caps = caps & (m->have_srv_caps ? m->srv_caps : ~0ull);
	m->have_caps = 1;
	if (m->deprecate_eof < 0)
		m->deprecate_eof = (m->caps & MY_CLIENT_DEPRECATE_EOF) ? 1 : 0;
	m->qattr = (m->caps & MY_CLIENT_QUERY_ATTRIBUTES) ? 1 : 0;

	struct ev e = { .type = EV_STARTUP };
	e.u.startup.user = user;
	e.u.startup.database = db;
	e.u.startup.application = app;
	e.u.startup.params = nkv ? m->kv : NULL;
	e.u.startup.n_params = nkv;
	emit(m, &e, TO_SERVER);

	const char *meth;
	if (plugin.n)
		meth = plugin_name(m, plugin);
	else if (m->srv_plugin[0])
		meth = plugin_name(m, strv_from(m->srv_plugin));
	else
		meth = (caps & MY_CLIENT_SECURE_CONNECTION) ? "mysql_native_password" : "mysql_old_password";
	emit_auth(m, meth);
	if (plugin_is_clear(meth) && auth_len > 0)
		emit_cleartext(m);
	m->phase = PH_AUTH;
	m->change_user = 0;
	return;
tls:
	{
		struct ev t = { .type = EV_TLS };
		emit(m, &t, TO_SERVER);
		m->stopped = 1;
	}
}

static void z_start(struct my *m);

static void auth_reply(struct my *m, const uint8_t *p, size_t n)
{
	switch (p[0]) {
	case 0x00: {
		uint64_t aff;
		uint16_t st;
		if (parse_ok(p, n, &aff, &st) == 0)
			set_status(m, st);
		m->phase = PH_CMD;
		m->cleartext_next = 0;
		if (m->change_user) {
			struct ev e = { .type = EV_USER_CHANGE };
			e.u.user_change.user = strv_from(m->cu_user);
			e.u.user_change.database = strv_from(m->cu_db);
			e.u.user_change.ok = 1;
			emit(m, &e, TO_CLIENT);
			m->change_user = 0;
		} else {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 1;
			emit(m, &e, TO_CLIENT);
			if (m->caps & (MY_CLIENT_COMPRESS | MY_CLIENT_ZSTD))
				z_start(m);
		}
		return;
	}
	case 0xff: {
		struct my_err err;
		parse_err(m, p, n, &err);
		m->phase = PH_CMD;
		m->cleartext_next = 0;
		if (m->change_user) {
			struct ev e = { .type = EV_USER_CHANGE };
			e.u.user_change.user = strv_from(m->cu_user);
			e.u.user_change.database = strv_from(m->cu_db);
			e.u.user_change.ok = 0;
			emit(m, &e, TO_CLIENT);
			m->change_user = 0;
		} else {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 0;
			e.u.login.error_code = err.code_txt;
			e.u.login.error_msg = err.msg;
			emit(m, &e, TO_CLIENT);
		}
		return;
	}
	case 0xfe: { /* AuthSwitchRequest; a lone 0xfe asks for the pre-4.1 scramble */
		const char *meth = "mysql_old_password";
		if (n > 1) {
			struct rd r = rd_make(p + 1, n - 1);
			meth = plugin_name(m, rd_cstr_rest(&r));
		}
		emit_auth(m, meth);
		m->cleartext_next = plugin_is_clear(meth);
		return;
	}
	case 0x01: /* AuthMoreData: caching_sha2 fast (3) / full (4) auth, RSA key; no secrets kept */
		return;
	default:
		anomaly(m, TO_CLIENT, "mysql: unexpected packet during authentication", 0);
		return;
	}
}

/* ---------- responses (server to client) ---------- */

static int is_term(const struct my *m, const uint8_t *p, size_t n, size_t full)
{
	(void)n;
	if (p[0] != 0xfe)
		return 0;
	return m->deprecate_eof == 1 ? full < 0xffffff : full < 9;
}

/* The result set (or cursor) of q ended with status st. Returns 1 if q is done. */
static int rows_done(struct my *m, struct my_pend *q, uint16_t st)
{
	set_status(m, st);
	if (q->cmd == 0x17 && (st & MY_STATUS_CURSOR_EXISTS)) {
		struct my_stmt *s = stmt_find(m, q->stmt_id);
		if (s && q->has_q) {
			s->cur_open = 1;
			s->cur_qid = q->qid;
			s->cur_rows = q->rows;
			s->cur_bytes = q->bytes;
			pend_pop(m);
			return 1;
		}
	}
	int more = (st & MY_STATUS_MORE_RESULTS) != 0;
	if (q->has_q)
		emit_result(m, q->qid, EV_OUT_OK, q->rows, q->bytes, NULL, more);
	if (more) {
		q->rstate = RS_FIRST;
		q->rows = 0;
		q->bytes = 0;
		return 0;
	}
	int had_q = q->has_q;
	pend_pop(m);
	if (had_q)
		emit_ready(m);
	return 1;
}

static void resp_err(struct my *m, struct my_pend *q, const uint8_t *p, size_t n)
{
	struct my_err err;
	parse_err(m, p, n, &err);
	int had_q = q->has_q;
	if (q->has_q)
		emit_result(m, q->qid, EV_OUT_ERROR, -1, 0, &err, 0);
	if (q->cmd == 0x16)
		m->have_last_prep = 0;
	pend_pop(m);
	if (had_q)
		emit_ready(m);
}

static void after_defs(struct my *m, struct my_pend *q)
{
	q->rstate = m->deprecate_eof == 1 ? RS_ROWS : RS_COLEOF;
}

/* 0: packet used; 1: not part of q's reply (q finished), give it to the next one. */
static int resp_result(struct my *m, struct my_pend *q, const uint8_t *p, size_t n, size_t full)
{
	switch (q->rstate) {
	case RS_FIRST: {
		if (p[0] == 0x00 || p[0] == 0xfe) {
			uint64_t aff = 0;
			uint16_t st = 0;
			if (parse_ok(p, n, &aff, &st) < 0)
				anomaly(m, TO_CLIENT, "mysql: malformed OK packet", 0);
			set_status(m, st);
			int more = (st & MY_STATUS_MORE_RESULTS) != 0;
			if (q->has_q)
				emit_result(m, q->qid, EV_OUT_OK, (int64_t)aff, 0, NULL, more);
			if (!more) {
				int had_q = q->has_q;
				pend_pop(m);
				if (had_q)
					emit_ready(m);
			}
			return 0;
		}
		if (p[0] == 0xff) {
			resp_err(m, q, p, n);
			return 0;
		}
		if (p[0] == 0xfb) { /* LOCAL INFILE: the server asks the client for a file */
			struct ev e = { .type = EV_DATA_MOVE };
			e.u.data_move.to_client = 0;
			e.u.data_move.what = (struct strv){ (const char *)p + 1, n - 1 };
			emit(m, &e, TO_CLIENT);
			m->infile = 1;
			return 0;
		}
		struct rd r = rd_make(p, n);
		uint64_t cols = rd_lenenc(&r, NULL);
		if (r.err || cols == 0 || rd_left(&r) > 1) {
			anomaly(m, TO_CLIENT, "mysql: bad column count", 0);
			pend_flush(m);
			m->fr[TO_CLIENT].sync = 1;
			return 0;
		}
		q->left = cols;
		q->rstate = RS_COLDEFS;
		if (rd_left(&r) == 1 && rd_u8(&r) == 0) /* metadata_follows = 0: no definitions */
			after_defs(m, q);
		return 0;
	}
	case RS_COLDEFS:
		if (p[0] == 0xff) {
			resp_err(m, q, p, n);
			return 0;
		}
		if (p[0] == 0xfe && full < 9) { /* fewer definitions than announced */
			anomaly(m, TO_CLIENT, "mysql: result set ended early", 0);
			q->rstate = RS_COLEOF;
			return resp_result(m, q, p, n, full);
		}
		if (q->left && --q->left == 0)
			after_defs(m, q);
		return 0;
	case RS_COLEOF:
		if (p[0] == 0xfe && full < 9) {
			if (m->deprecate_eof < 0 && n != 5) {
				m->deprecate_eof = 1; /* an OK-style terminator: empty result */
				rows_done(m, q, term_status(p, n));
				return 0;
			}
			if (m->deprecate_eof < 0)
				m->deprecate_eof = 0;
			uint16_t st = term_status(p, n);
			if (q->cmd == 0x17 && (st & MY_STATUS_CURSOR_EXISTS)) {
				rows_done(m, q, st);
				return 0;
			}
			q->rstate = RS_ROWS;
			return 0;
		}
		if (p[0] == 0xff) {
			resp_err(m, q, p, n);
			return 0;
		}
		if (m->deprecate_eof < 0)
			m->deprecate_eof = 1;
		else
			anomaly(m, TO_CLIENT, "mysql: missing EOF after column definitions", 0);
		q->rstate = RS_ROWS;
		return resp_result(m, q, p, n, full);
	case RS_ROWS:
		if (is_term(m, p, n, full)) {
			rows_done(m, q, term_status(p, n));
			return 0;
		}
		if (p[0] == 0xff) {
			resp_err(m, q, p, n);
			return 0;
		}
		q->rows++;
		q->bytes += full;
		return 0;
	default:
		return 0;
	}
}

static int prep_next(struct my *m, struct my_pend *q)
{
	if (q->rstate == RS_PPARAMS || q->rstate == RS_PEOF) {
		if (q->ncols) {
			q->rstate = RS_PCOLS;
			q->left = q->ncols;
			return 0;
		}
	}
	int had_q = q->has_q;
	pend_pop(m);
	if (had_q)
		emit_ready(m);
	return 1;
}

static int resp_prepare(struct my *m, struct my_pend *q, const uint8_t *p, size_t n, size_t full)
{
	switch (q->rstate) {
	case RS_FIRST: {
		if (p[0] == 0xff) {
			resp_err(m, q, p, n);
			return 0;
		}
		struct rd r = rd_make(p, n);
		rd_skip(&r, 1);
		uint32_t id = rd_le32(&r);
		uint16_t ncols = rd_le16(&r);
		uint16_t nparams = rd_le16(&r);
		if (p[0] != 0x00 || r.err) {
			anomaly(m, TO_CLIENT, "mysql: malformed PREPARE reply", 0);
			pend_flush(m);
			return 0;
		}
		rd_u8(&r);
		rd_le16(&r); /* warnings */
		int meta = !(rd_left(&r) >= 1 && rd_u8(&r) == 0);
		struct my_stmt *s = stmt_add(m, id);
		s->sql = q->text;
		s->sql_n = q->text_n;
		s->sql_known = q->text != NULL;
		s->sql_trunc = q->text_trunc;
		s->nparams = nparams;
		s->ncols = ncols;
		q->text = NULL;
		m->stmt_sql_total += s->sql_n;
		stmt_budget(m, s);
		m->last_prep_id = id;
		m->have_last_prep = 1;
		if (q->has_q)
			emit_result(m, q->qid, EV_OUT_OK, 0, 0, NULL, 0);
		q->ncols = meta ? ncols : 0;
		if (meta && nparams) {
			q->rstate = RS_PPARAMS;
			q->left = nparams;
			return 0;
		}
		q->rstate = RS_PEOF;
		prep_next(m, q);
		return 0;
	}
	case RS_PPARAMS:
	case RS_PCOLS:
		if (q->left && --q->left == 0) {
			if (m->deprecate_eof == 1) {
				q->rstate = q->rstate == RS_PPARAMS ? RS_PEOF : RS_PCEOF;
				prep_next(m, q);
			} else {
				q->rstate = q->rstate == RS_PPARAMS ? RS_PEOF : RS_PCEOF;
			}
		}
		return 0;
	case RS_PEOF:
	case RS_PCEOF:
		if (p[0] == 0xfe && full < 9) {
			if (m->deprecate_eof < 0)
				m->deprecate_eof = 0;
			prep_next(m, q);
			return 0;
		}
		/* No EOF after the definitions: CLIENT_DEPRECATE_EOF; this packet is not ours. */
		if (m->deprecate_eof < 0)
			m->deprecate_eof = 1;
		if (q->rstate == RS_PEOF && q->ncols) {
			prep_next(m, q);
			return resp_prepare(m, q, p, n, full);
		}
		prep_next(m, q);
		return 1;
	default:
		return 0;
	}
}

static int resp_one(struct my *m, struct my_pend *q, const uint8_t *p, size_t n, size_t full)
{
	switch (q->resp) {
	case R_RESULT:
		return resp_result(m, q, p, n, full);
	case R_PREPARE:
		return resp_prepare(m, q, p, n, full);
	case R_FIELDLIST:
		if (p[0] == 0xff || is_term(m, p, n, full) || (p[0] == 0xfe && full < 9))
			pend_pop(m);
		return 0;
	case R_STAT:
		pend_pop(m);
		return 0;
	case R_FETCH: {
		struct my_stmt *s = stmt_find(m, q->stmt_id);
		if (p[0] == 0xff) {
			struct my_err err;
			parse_err(m, p, n, &err);
			if (s)
				stmt_cursor_done(m, s, &err);
			pend_pop(m);
			return 0;
		}
		if (p[0] == 0xfe && (full < 9 || (m->deprecate_eof == 1 && full < 0xffffff))) {
			uint16_t st = term_status(p, n);
			set_status(m, st);
			if (s && ((st & MY_STATUS_LAST_ROW_SENT) || !(st & MY_STATUS_CURSOR_EXISTS)))
				stmt_cursor_done(m, s, NULL);
			pend_pop(m);
			return 0;
		}
		if (s && s->cur_open) {
			s->cur_rows++;
			s->cur_bytes += full;
		}
		return 0;
	}
	case R_OKERR:
	default:
		if (p[0] == 0x00) {
			uint64_t aff;
			uint16_t st;
			if (parse_ok(p, n, &aff, &st) == 0)
				set_status(m, st);
			if (q->cmd == 0x02) {
				struct ev e = { .type = EV_DB_CHANGE };
				e.u.database = (struct strv){ q->text ? q->text : "", q->text_n };
				emit(m, &e, TO_CLIENT);
			} else if (q->cmd == 0x1f) {
				stmt_clear(m);
			}
		} else if (p[0] != 0xff && p[0] != 0xfe) {
			anomaly(m, TO_CLIENT, "mysql: unexpected reply", 0);
		}
		pend_pop(m);
		return 0;
	}
}

static void response(struct my *m, const uint8_t *p, size_t n, size_t full, uint8_t seq)
{
	if (n == 0) {
		anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
		return;
	}
	if (!m->pend_n) {
		/* Picked up mid-stream just before a greeting: decode the handshake after all. */
		if (!m->any_cmd && seq == 0 && p[0] == 0x0a) {
			greeting(m, p, n);
			return;
		}
		return; /* unsolicited (server shutdown ERR, tail of a reply we did not see) */
	}
	if (p[0] == 0xff && n >= 3 && p[1] == 0xff && p[2] == 0xff)
		return; /* MariaDB progress report, not an error */
	for (int guard = 0; guard < 4 && m->pend_n && !m->stopped; guard++)
		if (resp_one(m, pend_at(m, 0), p, n, full) == 0)
			return;
}

/* Bytes of a 0xffffff continuation: they belong to the row being read. */
static void cont_bytes(struct my *m, int dir, uint64_t k)
{
	if (dir != TO_CLIENT || !m->pend_n)
		return;
	struct my_pend *q = pend_at(m, 0);
	if (q->rstate == RS_ROWS)
		q->bytes += k;
}

static void on_packet(struct my *m, int dir, const uint8_t *p, size_t n, size_t full, uint8_t seq,
		      int trunc)
{
	if (dir == TO_SERVER) {
		switch (m->phase) {
		case PH_GREETING:
		case PH_LOGIN:
			if (seq == 0 && n > 0 && valid_cmd(p[0]) && m->phase == PH_GREETING) {
				m->phase = PH_CMD; /* no handshake here after all */
				command(m, p, n, trunc);
			} else if (n >= 4) {
				login(m, p, n);
			} else {
				anomaly(m, TO_SERVER, "mysql: short handshake response", 0);
			}
			return;
		case PH_AUTH:
			/* auth data: never copied */
			if (m->cleartext_next && n > 0)
				emit_cleartext(m);
			m->cleartext_next = 0;
			return;
		default:
			if (m->infile) {
				if (full == 0)
					m->infile = 0;
				return;
			}
			if (seq != 0) {
				anomaly(m, TO_SERVER, "mysql: command out of sequence", 0);
				return;
			}
			command(m, p, n, trunc);
			return;
		}
	}
	if (n == 0 && m->phase != PH_CMD) {
		anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
		return;
	}
	switch (m->phase) {
	case PH_GREETING:
		greeting(m, p, n);
		return;
	case PH_LOGIN:
		if (p[0] == 0xff)
			auth_reply(m, p, n);
		else
			anomaly(m, TO_CLIENT, "mysql: server spoke before the login", 0);
		return;
	case PH_AUTH:
		auth_reply(m, p, n);
		return;
	default:
		response(m, p, n, full, seq);
		return;
	}
}

/* ---------- packet framing and resynchronisation ---------- */

/* Does a chain of packets starting at b look like this direction's traffic?
 * strict: must end exactly at n. Returns 1 yes, 0 no, -1 cannot tell yet. */
static int raw_chain(const struct my *m, int dir, const uint8_t *b, size_t n, int strict, int inner)
{
	size_t off = 0;
	int count = 0, cont = 0;
	uint8_t prev = 0;
	while (n - off >= 4) {
		uint32_t plen = le24(b + off);
		uint8_t seq = b[off + 3];
		if (cont || (dir == TO_CLIENT && count > 0)) {
			if (seq != (uint8_t)(prev + 1))
				return 0;
		} else if (dir == TO_SERVER) {
			if (seq != 0 || plen == 0)
				return 0;
			if (n - off > 4 && !valid_cmd(b[off + 4]))
				return 0;
		} else {
			if (plen == 0 || (!inner && seq != 1))
				return 0;
		}
		(void)m;
		if (plen > n - off - 4)
			return strict ? 0 : 1;
		cont = plen == 0xffffff;
		prev = seq;
		off += 4 + (size_t)plen;
		if (++count >= MY_SYNC_CHAIN)
			return 1; /* long enough to believe; bounds the scan's work */
	}
	if (off == n)
		return count > 0;
	return strict ? 0 : (count > 0 ? 1 : -1);
}

static int zlib_head(const uint8_t *b)
{
	return (b[0] & 0x0f) == 8 && ((b[0] << 8) | b[1]) % 31 == 0;
}

static int zstd_head(const uint8_t *b)
{
	return b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd;
}

/* Same for compressed frames: header 7 bytes, payload a zlib/zstd stream or (length 0)
 * a stored packet. -1 when the first frame is too short to judge. */
static int z_chain(int dir, const uint8_t *b, size_t n, int strict)
{
	size_t off = 0;
	int count = 0;
	while (n - off >= 7) {
		uint32_t clen = le24(b + off), ulen = le24(b + off + 4);
		const uint8_t *pl = b + off + 7;
		size_t have = n - off - 7;
		if (clen == 0)
			return 0;
		if (ulen == 0) {
			if (have < 5)
				return count ? (strict ? 0 : 1) : -1;
			uint32_t ilen = le24(pl);
			if (ilen + 4 > clen)
				return 0;
			if (dir == TO_SERVER && count == 0 && (pl[3] != 0 || !valid_cmd(pl[4])))
				return 0;
		} else {
			if (have < 4)
				return count ? (strict ? 0 : 1) : -1;
			if (!zlib_head(pl) && !zstd_head(pl))
				return 0;
		}
		if (clen > have)
			return strict ? 0 : 1;
		off += 7 + (size_t)clen;
		if (++count >= MY_SYNC_CHAIN)
			return 1;
	}
	if (off == n)
		return count > 0;
	return strict ? 0 : (count > 0 ? 1 : -1);
}

/* Where does the next packet start? >= 0 offset, -1 need more bytes, -2 drop all. */
static long find_sync(struct my *m, int dir, const uint8_t *b, size_t len, int inner)
{
	if (dir == TO_CLIENT && !m->pend_n) {
		/* Nothing asked: only a greeting is worth waiting for. */
		if (!m->any_cmd && len >= 5 && b[3] == 0 && b[4] == 0x0a && raw_chain(m, dir, b, len, 0, 1) == 1)
			return 0;
		return len < 5 && !m->any_cmd ? -1 : -2;
	}
	if (len < 5)
		return -1;
	size_t scan = len - 4 < MY_SYNC_SCAN ? len - 4 : MY_SYNC_SCAN;
	for (size_t o = 0; o < scan; o++) {
		const uint8_t *s = b + o;
		size_t sn = len - o;
		int raw = raw_chain(m, dir, s, sn, o > 0, inner);
		if (!inner && !m->z_decided) {
			/* Mid-stream: is compression on? Decide only on enough evidence. */
			int z = z_chain(dir, s, sn, o > 0);
			int raw_exact = raw_chain(m, dir, s, sn, 1, inner) == 1;
			if (z == 1 && !raw_exact) {
				m->z_on = 1;
				m->z_decided = 1;
				for (int d = 0; d < 2; d++) {
					m->z[d].sync = d != dir;
					m->z[d].fr.sync = 1;
				}
				return (long)o;
			}
			if (z == -1 && o == 0 && !raw_exact)
				return -1;
		}
		if (raw == 1) {
			if (!inner && m->midstream)
				m->z_decided = 1;
			return (long)o;
		}
		if (raw == -1 && o == 0)
			return -1;
	}
	return -2;
}

/* Walk the packets in b; returns bytes consumed. inner: b is decompressed data. */
static size_t frame_run(struct my *m, int dir, struct my_framer *f, const uint8_t *b, size_t len,
			int inner)
{
	size_t off = 0;
	while (off < len && !m->stopped) {
		if (!inner && m->z_on)
			break; /* compression started: the rest is framed differently */
		if (f->skip_left) {
			size_t k = len - off < f->skip_left ? len - off : (size_t)f->skip_left;
			off += k;
			f->skip_left -= k;
			continue;
		}
		if (f->sync) {
			long at = find_sync(m, dir, b + off, len - off, inner);
			if (at == -1)
				break;
			if (at < 0) {
				off = len;
				break;
			}
			off += (size_t)at;
			f->sync = 0;
			continue;
		}
		if (len - off < 4)
			break;
		uint32_t plen = le24(b + off);
		uint8_t seq = b[off + 3];
		if (f->cont) {
			f->logical += plen;
			if (f->logical > MY_LOGICAL_MAX) {
				anomaly(m, dir, "mysql: packet chain longer than 1 GiB", 1);
				break;
			}
			cont_bytes(m, dir, plen);
			off += 4;
			f->skip_left = plen;
			f->cont = plen == 0xffffff;
			continue;
		}
		size_t hold = 4 + (size_t)plen;
		if (plen == 0xffffff || hold > MY_HOLD_MAX) {
			size_t head = dir == TO_SERVER ? MY_HEAD_TO_SERVER : MY_HEAD_TO_CLIENT;
			if (head > plen)
				head = plen;
			if (len - off < 4 + head)
				break;
			on_packet(m, dir, b + off + 4, head, plen, seq, 1);
			off += 4 + head;
			f->skip_left = plen - head;
			f->cont = plen == 0xffffff;
			f->logical = plen;
			continue;
		}
		if (len - off < hold)
			break;
		on_packet(m, dir, b + off + 4, plen, plen, seq, 0);
		off += hold;
	}
	return off;
}

/* ---------- compression ---------- */

static void z_reset_dir(struct my_zdir *z)
{
	z->in_frame = 0;
	z->broken = 0;
	z->cf_left = 0;
	z->ib_n = 0;
	memset(&z->fr, 0, sizeof z->fr);
}

static void z_start(struct my *m)
{
	m->z_on = 1;
	m->z_decided = 1;
	for (int d = 0; d < 2; d++) {
		z_reset_dir(&m->z[d]);
		m->z[d].sync = 0;
	}
}

static int z_inner_run(struct my *m, int dir)
{
	struct my_zdir *z = &m->z[dir];
	size_t k = frame_run(m, dir, &z->fr, z->ib, z->ib_n, 1);
	if (k) {
		memmove(z->ib, z->ib + k, z->ib_n - k);
		z->ib_n -= k;
	}
	if (z->ib_n == MY_HOLD_MAX && !m->stopped) {
		/* cannot happen with a sane framer; never spin */
		z->ib_n = 0;
		z->fr.sync = 1;
	}
	return m->stopped ? -1 : 0;
}

static int z_alloc(struct my_zdir *z)
{
	if (!z->ib) {
		z->ib = malloc(MY_HOLD_MAX);
		if (!z->ib)
			return -1;
	}
	return 0;
}

/* Decompressed output went wrong: drop the frame and resynchronise the inner stream. */
static void z_broken(struct my *m, int dir, const char *what)
{
	struct my_zdir *z = &m->z[dir];
	anomaly(m, dir, what, 0);
	z->broken = 1;
	z->ib_n = 0;
	memset(&z->fr, 0, sizeof z->fr);
	z->fr.sync = 1;
}

static void z_got(struct my *m, int dir, size_t got)
{
	struct my_zdir *z = &m->z[dir];
	z->cf_out += got;
	if (z->cf_out > z->cf_ulen || z->cf_out > MY_DECOMP_MAX) {
		z_broken(m, dir, "mysql: decompressed data exceeds its declared length");
		return;
	}
	z->ib_n += got;
	z_inner_run(m, dir);
}

static void z_feed(struct my *m, int dir, const uint8_t *p, size_t k)
{
	struct my_zdir *z = &m->z[dir];
	if (z->broken || z->done || k == 0)
		return;
	if (z->kind == Z_STORED) {
		while (k && !m->stopped) {
			size_t room = MY_HOLD_MAX - z->ib_n;
			size_t c = k < room ? k : room;
			memcpy(z->ib + z->ib_n, p, c);
			z->ib_n += c;
			p += c;
			k -= c;
			z_inner_run(m, dir);
		}
		return;
	}
	if (z->kind == Z_ZLIB) {
		z->zs.next_in = (Bytef *)(uintptr_t)p;
		z->zs.avail_in = (uInt)k;
		for (;;) {
			size_t room = MY_HOLD_MAX - z->ib_n;
			z->zs.next_out = z->ib + z->ib_n;
			z->zs.avail_out = (uInt)room;
			int rc = inflate(&z->zs, Z_NO_FLUSH);
			size_t got = room - z->zs.avail_out;
			if (got)
				z_got(m, dir, got);
			if (m->stopped || z->broken)
				return;
			if (rc == Z_STREAM_END) {
				z->done = 1;
				return;
			}
			if (rc != Z_OK && rc != Z_BUF_ERROR) {
				z_broken(m, dir, "mysql: zlib data does not inflate");
				return;
			}
			if (z->zs.avail_in == 0 && got < room)
				return;
			if (rc == Z_BUF_ERROR && got == 0)
				return;
		}
	}
	ZSTD_inBuffer in = { p, k, 0 };
	for (;;) {
		size_t room = MY_HOLD_MAX - z->ib_n;
		ZSTD_outBuffer out = { z->ib + z->ib_n, room, 0 };
		size_t rc = ZSTD_decompressStream(z->zd, &out, &in);
		if (ZSTD_isError(rc)) {
			z_broken(m, dir, "mysql: zstd data does not decompress");
			return;
		}
		if (out.pos)
			z_got(m, dir, out.pos);
		if (m->stopped || z->broken)
			return;
		if (rc == 0) {
			z->done = 1;
			return;
		}
		if (in.pos == in.size && out.pos < room)
			return;
	}
}

static int z_begin(struct my *m, int dir, uint32_t clen, uint32_t ulen, const uint8_t *pl)
{
	struct my_zdir *z = &m->z[dir];
	z->in_frame = 1;
	z->broken = 0;
	z->done = 0;
	z->cf_left = clen;
	z->cf_ulen = ulen;
	z->cf_out = 0;
	if (z_alloc(z) < 0) {
		anomaly(m, dir, "mysql: out of memory for decompression", 1);
		return -1;
	}
	if (ulen == 0) {
		z->kind = Z_STORED;
		return 0;
	}
	if (clen >= 4 && zstd_head(pl)) {
		z->kind = Z_ZSTD;
		if (!z->zd) {
			z->zd = ZSTD_createDStream();
			if (!z->zd) {
				anomaly(m, dir, "mysql: out of memory for decompression", 1);
				return -1;
			}
			/* a payload is at most 16 MiB: refuse bigger windows */
			ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax, 24);
		}
		ZSTD_DCtx_reset(z->zd, ZSTD_reset_session_only);
		return 0;
	}
	z->kind = Z_ZLIB;
	int rc = z->zs_ok ? inflateReset(&z->zs) : inflateInit(&z->zs);
	if (rc != Z_OK) {
		anomaly(m, dir, "mysql: out of memory for decompression", 1);
		return -1;
	}
	z->zs_ok = 1;
	return 0;
}

static void z_end(struct my *m, int dir)
{
	struct my_zdir *z = &m->z[dir];
	if (z->kind != Z_STORED && !z->broken && !m->stopped && z->cf_out < z->cf_ulen)
		z_broken(m, dir, "mysql: compressed frame shorter than declared");
	z->in_frame = 0;
	z->broken = 0;
	z->done = 0;
}

static long z_find_sync(struct my *m, int dir, const uint8_t *b, size_t len)
{
	(void)m;
	if (len < 8)
		return -1;
	size_t scan = len - 7 < MY_SYNC_SCAN ? len - 7 : MY_SYNC_SCAN;
	for (size_t o = 0; o < scan; o++) {
		int r = z_chain(dir, b + o, len - o, o > 0);
		if (r == 1)
			return (long)o;
		if (r == -1 && o == 0)
			return -1;
	}
	return -2;
}

static size_t z_run(struct my *m, int dir, const uint8_t *b, size_t len)
{
	struct my_zdir *z = &m->z[dir];
	size_t off = 0;
	while (off < len && !m->stopped) {
		if (!z->in_frame) {
			if (z->sync) {
				if (dir == TO_CLIENT && !m->pend_n && m->any_cmd) {
					off = len; /* nothing asked: drop until a command */
					break;
				}
				long at = z_find_sync(m, dir, b + off, len - off);
				if (at == -1)
					break;
				if (at < 0) {
					off = len;
					break;
				}
				off += (size_t)at;
				z->sync = 0;
			}
			if (len - off < 7)
				break;
			uint32_t clen = le24(b + off), ulen = le24(b + off + 4);
			size_t need = 7 + (clen < 4 ? clen : 4);
			if (len - off < need)
				break;
			if (z_begin(m, dir, clen, ulen, b + off + 7) < 0)
				break;
			off += 7;
			if (clen == 0) {
				z_end(m, dir);
				continue;
			}
		}
		size_t k = len - off < z->cf_left ? len - off : z->cf_left;
		z_feed(m, dir, b + off, k);
		off += k;
		z->cf_left -= k;
		if (z->cf_left == 0)
			z_end(m, dir);
	}
	return off;
}

/* ---------- decoder table ---------- */

static enum proto_verdict my_probe(enum proto_dir dir, const uint8_t *b, size_t len)
{
	if (len < 5)
		return PROTO_MAYBE;
	uint32_t plen = le24(b);
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
		return PROTO_NO;
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
	if (seq == 0 && plen >= 1 && valid_cmd(b[4]) && (size_t)plen + 4 == len)
		return PROTO_MAYBE;
	return PROTO_NO;
}

static void *my_open(const struct ev_sink *out, int midstream)
{
	struct my *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->out = *out;
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

static struct proto_result my_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len,
				    ev_time ts)
{
	struct my *m = st;
	m->ts = ts;
	size_t off = 0;
	while (off < len && !m->stopped) {
		int was = m->z_on;
		size_t k = m->z_on ? z_run(m, dir, buf + off, len - off)
				   : frame_run(m, dir, &m->fr[dir], buf + off, len - off, 0);
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
		z_reset_dir(&m->z[dir]);
		m->z[dir].sync = 1;
		m->z[dir].fr.sync = 1;
	}
	if (dir == TO_CLIENT) {
		pend_flush(m); /* the replies under way are lost */
		if (m->phase != PH_CMD)
			m->phase = PH_CMD;
	} else {
		m->infile = 0;
	}
}

static void my_close(void *st, enum proto_end why, ev_time ts)
{
	struct my *m = st;
	(void)why;
	m->ts = ts;
	m->stopped = 0; /* owed results are still told after a stop */
	while (m->pend_n) {
		struct my_pend *q = pend_at(m, 0);
		if (q->has_q)
			emit_result(m, q->qid, EV_OUT_UNKNOWN, q->rows > 0 ? q->rows : -1, q->bytes, NULL, 0);
		pend_pop(m);
	}
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used && m->stmts[i].cur_open) {
			m->stmts[i].cur_open = 0;
			emit_result(m, m->stmts[i].cur_qid, EV_OUT_UNKNOWN, m->stmts[i].cur_rows,
				    m->stmts[i].cur_bytes, NULL, 0);
		}
	if (m->phase == PH_AUTH && m->change_user) {
		struct ev e = { .type = EV_USER_CHANGE };
		e.u.user_change.user = strv_from(m->cu_user);
		e.u.user_change.database = strv_from(m->cu_db);
		e.u.user_change.ok = -1;
		emit(m, &e, TO_CLIENT);
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
	free(m);
}

const struct proto_decoder proto_mysql = {
	.name = "mysql",
	.probe = my_probe,
	.open = my_open,
	.parse = my_parse,
	.gap = my_gap,
	.close = my_close,
};
