/* MySQL decoder: responses (OK, ERR, EOF, result sets, prepare answers), matched to the
 * oldest pending command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

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
	my_set_status(m, st);
	if (q->cmd == 0x17 && (st & MY_STATUS_CURSOR_EXISTS)) {
		struct my_stmt *s = my_stmt_find(m, q->stmt_id);
		if (s && q->has_q) {
			s->cur_open = 1;
			s->cur_qid = q->qid;
			s->cur_rows = q->rows;
			s->cur_bytes = q->bytes;
			my_pend_pop(m);
			return 1;
		}
	}
	int more = (st & MY_STATUS_MORE_RESULTS) != 0;
	if (q->has_q)
		my_emit_result(m, q->qid, EV_OUT_OK, q->rows, q->bytes, NULL, more);
	if (more) {
		q->rstate = RS_FIRST;
		q->rows = 0;
		q->bytes = 0;
		return 0;
	}
	int had_q = q->has_q;
	my_pend_pop(m);
	if (had_q)
		my_emit_ready(m);
	return 1;
}

static void resp_err(struct my *m, struct my_pend *q, const uint8_t *p, size_t n)
{
	struct my_err err;
	my_parse_err(m, p, n, &err);
	int had_q = q->has_q;
	if (q->has_q)
		my_emit_result(m, q->qid, EV_OUT_ERROR, -1, 0, &err, 0);
	if (q->cmd == 0x16)
		m->have_last_prep = 0;
	my_pend_pop(m);
	if (had_q)
		my_emit_ready(m);
}

static void after_defs(struct my *m, struct my_pend *q)
{
	q->rstate = m->deprecate_eof == 1 ? RS_ROWS : RS_COLEOF;
}

/* 0: packet used; 1: not part of q's reply (q finished), give it to the next one. */
int my_resp_result(struct my *m, struct my_pend *q, const uint8_t *p, size_t n, size_t full)
{
	switch (q->rstate) {
	case RS_FIRST: {
		if (p[0] == 0x00 || p[0] == 0xfe) {
			uint64_t aff = 0;
			uint16_t st = 0;
			if (my_parse_ok(p, n, &aff, &st) < 0)
				my_anomaly(m, TO_CLIENT, "mysql: malformed OK packet", 0);
			my_set_status(m, st);
			int more = (st & MY_STATUS_MORE_RESULTS) != 0;
			if (q->has_q)
				my_emit_result(m, q->qid, EV_OUT_OK, (int64_t)aff, 0, NULL, more);
			if (!more) {
				int had_q = q->has_q;
				my_pend_pop(m);
				if (had_q)
					my_emit_ready(m);
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
			my_emit(m, &e, TO_CLIENT);
			m->infile = 1;
			return 0;
		}
		struct rd r = rd_make(p, n);
		uint64_t cols = rd_lenenc(&r, NULL);
		if (r.err || cols == 0 || rd_left(&r) > 1) {
			my_anomaly(m, TO_CLIENT, "mysql: bad column count", 0);
			my_pend_flush(m);
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
			return my_resp_result(m, q, p, n, full);
		}
		if (q->left && --q->left == 0)
			after_defs(m, q);
		return 0;
	case RS_COLEOF:
		if (p[0] == 0xfe && full < 9) {
			if (m->deprecate_eof < 0 && n != 5) {
				m->deprecate_eof = 1; /* an OK-style terminator: empty result */
				rows_done(m, q, my_term_status(p, n));
				return 0;
			}
			if (m->deprecate_eof < 0)
				m->deprecate_eof = 0;
			uint16_t st = my_term_status(p, n);
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
		return my_resp_result(m, q, p, n, full);
	case RS_ROWS:
		if (is_term(m, p, n, full)) {
			rows_done(m, q, my_term_status(p, n));
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
	my_pend_pop(m);
	if (had_q)
		my_emit_ready(m);
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
			my_pend_flush(m);
			return 0;
		}
		rd_u8(&r);
		rd_le16(&r); /* warnings */
		int meta = !(rd_left(&r) >= 1 && rd_u8(&r) == 0);
		struct my_stmt *s = my_stmt_add(m, id);
		s->sql = q->text;
		s->sql_n = q->text_n;
		s->sql_known = q->text != NULL;
		s->sql_trunc = q->text_trunc;
		s->nparams = nparams;
		s->ncols = ncols;
		q->text = NULL;
		m->stmt_sql_total += s->sql_n;
		my_stmt_budget(m, s);
		m->last_prep_id = id;
		m->have_last_prep = 1;
		if (q->has_q)
			my_emit_result(m, q->qid, EV_OUT_OK, 0, 0, NULL, 0);
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
		return my_resp_result(m, q, p, n, full);
	case R_PREPARE:
		return resp_prepare(m, q, p, n, full);
	case R_FIELDLIST:
		if (p[0] == 0xff || is_term(m, p, n, full) || (p[0] == 0xfe && full < 9))
			my_pend_pop(m);
		return 0;
	case R_STAT:
		my_pend_pop(m);
		return 0;
	case R_FETCH: {
		struct my_stmt *s = my_stmt_find(m, q->stmt_id);
		if (p[0] == 0xff) {
			struct my_err err;
			my_parse_err(m, p, n, &err);
			if (s)
				my_stmt_cursor_done(m, s, &err);
			my_pend_pop(m);
			return 0;
		}
		if (p[0] == 0xfe && (full < 9 || (m->deprecate_eof == 1 && full < 0xffffff))) {
			uint16_t st = my_term_status(p, n);
			my_set_status(m, st);
			if (s && ((st & MY_STATUS_LAST_ROW_SENT) || !(st & MY_STATUS_CURSOR_EXISTS)))
				my_stmt_cursor_done(m, s, NULL);
			my_pend_pop(m);
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
			if (my_parse_ok(p, n, &aff, &st) == 0)
				my_set_status(m, st);
			if (q->cmd == 0x02) {
				struct ev e = { .type = EV_DB_CHANGE };
				e.u.database = (struct strv){ q->text ? q->text : "", q->text_n };
				my_emit(m, &e, TO_CLIENT);
			} else if (q->cmd == 0x1f) {
				my_stmt_clear(m);
				struct ev e = { .type = EV_SESSION_RESET };
				my_emit(m, &e, TO_CLIENT);
			}
		} else if (p[0] != 0xff && p[0] != 0xfe) {
			my_anomaly(m, TO_CLIENT, "mysql: unexpected reply", 0);
		}
		my_pend_pop(m);
		return 0;
	}
}

void my_response(struct my *m, const uint8_t *p, size_t n, size_t full, uint8_t seq)
{
	if (n == 0) {
		my_anomaly(m, TO_CLIENT, "mysql: empty server packet", 0);
		return;
	}
	if (!m->pend_n) {
		/* Picked up mid-stream just before a greeting: decode the handshake after all. */
		if (!m->any_cmd && seq == 0 && p[0] == 0x0a) {
			my_greeting(m, p, n);
			return;
		}
		return; /* unsolicited (server shutdown ERR, tail of a reply we did not see) */
	}
	if (p[0] == 0xff && n >= 3 && p[1] == 0xff && p[2] == 0xff)
		return; /* MariaDB progress report, not an error */
	for (int guard = 0; guard < 4 && m->pend_n && !m->stopped; guard++)
		if (resp_one(m, my_pend_at(m, 0), p, n, full) == 0)
			return;
}
