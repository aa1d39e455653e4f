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

int my_valid_cmd(uint8_t c)
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
		my_anomaly(m, TO_SERVER, "mysql: too many unanswered commands", 0);
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

#define MY_EVICTED_MAX 1024
static void stmt_evict(struct my *m, struct my_stmt *s)
{
	if (s->sql_known && (m->evicted || (m->evicted = calloc(MY_EVICTED_MAX, sizeof *m->evicted)))) {
		struct my_evicted *e = &m->evicted[m->evicted_next++ % MY_EVICTED_MAX];
		size_t n = s->sql_n < sizeof e->head ? s->sql_n : sizeof e->head;
		if (n < s->sql_n) /* not inside a UTF-8 sequence */
			while (n > 0 && ((unsigned char)s->sql[n] & 0xc0) == 0x80)
				n--;
		e->id = s->id;
		e->used = 1;
		e->n = (uint8_t)n;
		memcpy(e->head, s->sql, n);
	}
	stmt_drop(m, s);
	m->stmt_evictions++;
}

static const struct my_evicted *evicted_find(const struct my *m, uint32_t id)
{
	for (size_t k = 0; m->evicted && k < MY_EVICTED_MAX; k++) { /* the newest first */
		const struct my_evicted *e = &m->evicted[(m->evicted_next - 1 - k) % MY_EVICTED_MAX];
		if (e->used && e->id == id)
			return e;
	}
	return NULL;
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
		stmt_evict(m, s);
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
		stmt_evict(m, o);
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
					my_anomaly(m, TO_SERVER, "mysql: bad query attributes", 0);
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

/* A statement prepared before pickup: find the parameter count that makes the execute
 * parse exactly (null bitmap, new-params-bound = 1, known types, values to the last
 * byte), remember it, and render the values. NULL when no count fits. */
static struct my_stmt *infer_stmt(struct my *m, uint32_t id, const uint8_t *p, size_t n,
				  size_t *nb)
{
	uint16_t types[MY_INFER_MAX];
	for (size_t np = 1; np <= MY_INFER_MAX; np++) {
		size_t bml = (np + 7) / 8, head = bml + 1 + 2 * np;
		if (head > n)
			break;
		if (p[bml] != 1)
			continue;
		int ok = 1;
		for (size_t i = 0; i < np && ok; i++) {
			types[i] = (uint16_t)(p[bml + 1 + 2 * i] | (p[bml + 2 + 2 * i] << 8));
			ok = my_bin_known(p[bml + 1 + 2 * i]) && (p[bml + 2 + 2 * i] & 0x7f) == 0;
		}
		if (!ok)
			continue;
		struct rd r = rd_make(p + head, n - head);
		m->arena.n = 0;
		if (decode_values(m, &r, np, p, types, NULL) != np || r.err || rd_left(&r) != 0)
			continue;
		struct my_stmt *s = stmt_add(m, id);
		s->types = malloc(np * sizeof *s->types);
		if (s->types) {
			memcpy(s->types, types, np * sizeof *s->types);
			s->have_types = 1;
		}
		s->nparams = (uint16_t)np;
		*nb = np;
		return s;
	}
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
		my_anomaly(m, TO_SERVER, "mysql: short COM_STMT_EXECUTE", 0);
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
	const struct my_evicted *ev = !s && !pp ? evicted_find(m, id) : NULL;
	char evhead[sizeof ev->head]; /* a copy: inferring the statement below may evict again */
	if (ev) { /* its text was evicted: the first bytes kept */
		memcpy(evhead, ev->head, ev->n);
		sql = (struct strv){ evhead, ev->n };
		known = 1;
		strunc = 1;
	}
	if (s)
		stmt_cursor_done(m, s, NULL); /* re-execute closes the previous cursor */
	size_t nb = 0;
	int qa = m->qattr == 1 || has_cap(m, MY_CLIENT_QUERY_ATTRIBUTES);
	if (!s && !pp && id != 0xffffffffu && !qa && arena_ready(m) == 0) {
		s = infer_stmt(m, id, r.p + r.off, rd_left(&r), &nb);
		if (s)
			m->stmt_inferred++;
	} else if (arena_ready(m) == 0 && s) {
		uint64_t cnt = s->nparams;
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
	char name[20];
	size_t k = my_dec(name, id);
	uint64_t qid = ++m->qid;
	emit_query(m, qid, EV_Q_EXECUTE, sql, known, strunc || (trunc && !known), (struct strv){ name, k }, nb);
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
	char name[20];
	size_t k = my_dec(name, id);
	uint64_t qid = ++m->qid;
	struct strv sql = s && s->sql_known ? (struct strv){ s->sql, s->sql_n } : STRV_LIT("");
	emit_query(m, qid, EV_Q_EXECUTE, sql, s && s->sql_known, s ? s->sql_trunc : 0,
		   (struct strv){ name, k }, 0);
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
		my_anomaly(m, TO_SERVER, "mysql: empty command packet", 0);
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
		my_anomaly(m, TO_SERVER, "mysql: unknown command", 0);
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
		my_anomaly(m, TO_CLIENT, "mysql: unknown handshake protocol", 1);
		return;
	}
	struct strv version = rd_cstr(&r);
	uint32_t conn_id = rd_le32(&r);
	if (proto == 10) {
		rd_skip(&r, 9); /* scramble part 1 + filler */
		uint64_t caps = rd_le16(&r);
		if (r.err) {
			my_anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
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
		my_anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
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
			my_anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
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
			my_anomaly(m, TO_SERVER, "mysql: malformed handshake response", 0);
			r.err = 0;
		}
	} else {
		/* HandshakeResponse320 */
		rd_le24(&r); /* max packet */
		if (r.err) {
			my_anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
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
		t.u.tls.at = p + n; /* the ClientHello may follow in the same segment */
		emit(m, &t, TO_SERVER);
		m->stopped = 1;
	}
}

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
				my_z_start(m);
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
		my_anomaly(m, TO_CLIENT, "mysql: unexpected packet during authentication", 0);
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
				my_anomaly(m, TO_CLIENT, "mysql: malformed OK packet", 0);
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
			my_anomaly(m, TO_CLIENT, "mysql: bad column count", 0);
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
			my_anomaly(m, TO_CLIENT, "mysql: result set ended early", 0);
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
			my_anomaly(m, TO_CLIENT, "mysql: missing EOF after column definitions", 0);
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
			my_anomaly(m, TO_CLIENT, "mysql: malformed PREPARE reply", 0);
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
				struct ev e = { .type = EV_SESSION_RESET };
				emit(m, &e, TO_CLIENT);
			}
		} else if (p[0] != 0xff && p[0] != 0xfe) {
			my_anomaly(m, TO_CLIENT, "mysql: unexpected reply", 0);
		}
		pend_pop(m);
		return 0;
	}
}

static void response(struct my *m, const uint8_t *p, size_t n, size_t full, uint8_t seq)
{
	if (n == 0) {
		my_anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
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
void my_cont_bytes(struct my *m, int dir, uint64_t k)
{
	if (dir != TO_CLIENT || !m->pend_n)
		return;
	struct my_pend *q = pend_at(m, 0);
	if (q->rstate == RS_ROWS)
		q->bytes += k;
}

void my_on_packet(struct my *m, int dir, const uint8_t *p, size_t n, size_t full, uint8_t seq,
		      int trunc)
{
	if (dir == TO_SERVER) {
		switch (m->phase) {
		case PH_GREETING:
		case PH_LOGIN:
			if (seq == 0 && n > 0 && my_valid_cmd(p[0]) && m->phase == PH_GREETING) {
				m->phase = PH_CMD; /* no handshake here after all */
				command(m, p, n, trunc);
			} else if (n >= 4) {
				login(m, p, n);
			} else {
				my_anomaly(m, TO_SERVER, "mysql: short handshake response", 0);
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
				my_anomaly(m, TO_SERVER, "mysql: command out of sequence", 0);
				return;
			}
			command(m, p, n, trunc);
			return;
		}
	}
	if (n == 0 && m->phase != PH_CMD) {
		my_anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
		return;
	}
	/* the bulk of a result set: a row (no terminator, no error) is only counted, as
	 * resp_result() would */
	if (m->phase == PH_CMD && n > 0 && p[0] < 0xfe && m->pend_n && !m->stopped) {
		struct my_pend *q = pend_at(m, 0);
		if (q->resp == R_RESULT && q->rstate == RS_ROWS) {
			q->rows++;
			q->bytes += full;
			return;
		}
	}
	switch (m->phase) {
	case PH_GREETING:
		greeting(m, p, n);
		return;
	case PH_LOGIN:
		if (p[0] == 0xff)
			auth_reply(m, p, n);
		else
			my_anomaly(m, TO_CLIENT, "mysql: server spoke before the login", 0);
		return;
	case PH_AUTH:
		auth_reply(m, p, n);
		return;
	default:
		response(m, p, n, full, seq);
		return;
	}
}

/* The rows of a result set in b, counted in one loop: each whole packet that
 * my_on_packet's row shortcut would count (not a terminator, error or oversized packet).
 * Returns the bytes consumed; the framer takes it from there. */
#define MY_ROWS_PREFETCH 2048 /* bytes ahead */
size_t my_rows_run(struct my *m, const uint8_t *b, size_t len)
{
	if (m->phase != PH_CMD || !m->pend_n || m->stopped)
		return 0;
	struct my_pend *q = pend_at(m, 0);
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
			emit(m, &t, dir);
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
		pend_flush(m); /* the replies under way are lost */
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
