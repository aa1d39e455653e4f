/* MySQL decoder: client commands (COM_QUERY, COM_STMT_*, COM_CHANGE_USER, ...), one
 * function each, and the dispatch over the command byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

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
	if (n > MY_PARAM_MAX || my_arena_ready(m) < 0)
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
	my_emit(m, &e, TO_SERVER);
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
	struct my_pend *q = my_pend_push(m, 0x03, R_RESULT);
	q->has_q = 1;
	q->qid = qid;
}

static void cmd_prepare(struct my *m, const uint8_t *p, size_t n, int trunc)
{
	struct strv sql = { (const char *)p + 1, n - 1 };
	uint64_t qid = ++m->qid;
	emit_query(m, qid, EV_Q_PREPARE, sql, 1, trunc, STRV_NULL, 0);
	struct my_pend *q = my_pend_push(m, 0x16, R_PREPARE);
	q->has_q = 1;
	q->qid = qid;
	int t = 0;
	q->text = my_copy_text(sql.p, sql.n, MY_STMT_SQL_CAP, &q->text_n, &t);
	q->text_trunc = t || trunc;
}

/* The most recent PREPARE still waiting for its answer (MariaDB pipelines
 * PREPARE + EXECUTE(-1)). */
static struct my_pend *pending_prepare(struct my *m)
{
	for (size_t i = m->pend_n; i-- > 0;)
		if (my_pend_at(m, i)->cmd == 0x16)
			return my_pend_at(m, i);
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
		struct my_stmt *s = my_stmt_add(m, id);
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
	struct my_stmt *s = my_stmt_find(m, id);
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
	const struct my_evicted *ev = !s && !pp ? my_evicted_find(m, id) : NULL;
	char evhead[sizeof ev->head]; /* a copy: inferring the statement below may evict again */
	if (ev) { /* its text was evicted: the first bytes kept */
		memcpy(evhead, ev->head, ev->n);
		sql = (struct strv){ evhead, ev->n };
		known = 1;
		strunc = 1;
	}
	if (s)
		my_stmt_cursor_done(m, s, NULL); /* re-execute closes the previous cursor */
	size_t nb = 0;
	int qa = m->qattr == 1 || my_has_cap(m, MY_CLIENT_QUERY_ATTRIBUTES);
	if (!s && !pp && id != 0xffffffffu && !qa && my_arena_ready(m) == 0) {
		s = infer_stmt(m, id, r.p + r.off, rd_left(&r), &nb);
		if (s)
			m->stmt_inferred++;
	} else if (my_arena_ready(m) == 0 && s) {
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
	struct my_pend *q = my_pend_push(m, 0x17, R_RESULT);
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
	struct my_stmt *s = my_stmt_find(m, id);
	char name[20];
	size_t k = my_dec(name, id);
	uint64_t qid = ++m->qid;
	struct strv sql = s && s->sql_known ? (struct strv){ s->sql, s->sql_n } : STRV_LIT("");
	emit_query(m, qid, EV_Q_EXECUTE, sql, s && s->sql_known, s ? s->sql_trunc : 0,
		   (struct strv){ name, k }, 0);
	struct my_pend *q = my_pend_push(m, 0xfa, R_RESULT);
	q->has_q = 1;
	q->qid = qid;
	q->stmt_id = id;
}

void my_copy_small(char *dst, size_t cap, struct strv v)
{
	size_t n = v.n < cap - 1 ? v.n : cap - 1;
	if (n)
		memcpy(dst, v.p, n);
	dst[n] = 0;
}

static void cmd_change_user(struct my *m, const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p + 1, n - 1);
	struct strv user = my_rd_cstr_rest(&r);
	if (!m->have_caps || my_has_cap(m, MY_CLIENT_SECURE_CONNECTION))
		rd_skip(&r, rd_u8(&r)); /* auth response: skipped, never copied */
	else
		my_rd_cstr_rest(&r);
	struct strv db = my_rd_cstr_rest(&r);
	struct strv plugin = STRV_NULL;
	if (rd_left(&r) >= 2) {
		rd_le16(&r); /* character set */
		if (!m->have_caps || my_has_cap(m, MY_CLIENT_PLUGIN_AUTH))
			plugin = my_rd_cstr_rest(&r);
	}
	my_copy_small(m->cu_user, sizeof m->cu_user, user);
	my_copy_small(m->cu_db, sizeof m->cu_db, db);
	m->change_user = 1;
	m->phase = PH_AUTH;
	my_stmt_clear(m); /* the server drops prepared statements on a user change */
	if (plugin.n) {
		const char *meth = my_plugin_name(m, plugin);
		my_emit_auth(m, meth);
		if (my_plugin_is_clear(meth))
			my_emit_cleartext(m);
	}
}

void my_command(struct my *m, const uint8_t *p, size_t n, int trunc)
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
		q = my_pend_push(m, 0x02, R_OKERR);
		int t;
		q->text = my_copy_text((const char *)p + 1, n - 1, 256, &q->text_n, &t);
		break;
	}
	case 0x03:
		cmd_query(m, p, n, trunc);
		break;
	case 0x04:
		my_pend_push(m, 0x04, R_FIELDLIST);
		break;
	case 0x09:
		my_pend_push(m, 0x09, R_STAT);
		break;
	case 0x0a: /* COM_PROCESS_INFO: a result set */
		my_pend_push(m, 0x0a, R_RESULT);
		break;
	case 0x11:
		cmd_change_user(m, p, n);
		break;
	case 0x12: /* COM_BINLOG_DUMP */
	case 0x1e: { /* COM_BINLOG_DUMP_GTID: a replication client; the binlog stream follows */
		uint64_t qid = ++m->qid;
		struct strv what = p[0] == 0x12 ? STRV_LIT("COM_BINLOG_DUMP") : STRV_LIT("COM_BINLOG_DUMP_GTID");
		emit_query(m, qid, EV_Q_FUNCTION, what, 1, 0, STRV_NULL, 0);
		q = my_pend_push(m, p[0], R_RESULT);
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
		struct my_stmt *s = my_stmt_find(m, rd_le32(&r));
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
		struct my_stmt *s = my_stmt_find(m, rd_le32(&r));
		if (s)
			my_stmt_drop(m, s);
		break;
	}
	case 0x1a: { /* COM_STMT_RESET */
		struct rd r = rd_make(p + 1, n - 1);
		struct my_stmt *s = my_stmt_find(m, rd_le32(&r));
		if (s)
			my_stmt_cursor_done(m, s, NULL);
		if (s && s->longd)
			memset(s->longd, 0, s->nparams);
		my_pend_push(m, 0x1a, R_OKERR);
		break;
	}
	case 0x1c: { /* COM_STMT_FETCH */
		struct rd r = rd_make(p + 1, n - 1);
		q = my_pend_push(m, 0x1c, R_FETCH);
		q->stmt_id = rd_le32(&r);
		break;
	}
	case 0xfa:
		cmd_bulk(m, p, n);
		break;
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x0c: case 0x0d: case 0x0e:
	case 0x13: case 0x15: case 0x1b: case 0x1f:
		my_pend_push(m, p[0], R_OKERR);
		break;
	default:
		my_anomaly(m, TO_SERVER, "mysql: unknown command", 0);
		m->fr[TO_SERVER].sync = 1;
		if (m->z_on)
			m->z[TO_SERVER].fr.sync = 1;
		break;
	}
}
