/* MySQL decoder: per-connection bookkeeping, each part bounded: commands waiting for their
 * responses and the prepared statements the server has announced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

/* ---------- pending commands ---------- */

struct my_pend *my_pend_at(struct my *m, size_t i)
{
	return &m->pend[(m->pend_head + i) % MY_PEND_MAX];
}

void my_emit_result(struct my *m, uint64_t qid, enum ev_outcome o, int64_t rows,
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
	my_emit(m, &e, TO_CLIENT);
}

void my_pend_pop(struct my *m)
{
	if (!m->pend_n)
		return;
	struct my_pend *q = my_pend_at(m, 0);
	free(q->text);
	memset(q, 0, sizeof *q);
	m->pend_head = (m->pend_head + 1) % MY_PEND_MAX;
	m->pend_n--;
}

/* Forget every pending command; owed results become 'unknown'. */
void my_pend_flush(struct my *m)
{
	int any = 0;
	while (m->pend_n) {
		struct my_pend *q = my_pend_at(m, 0);
		if (q->has_q) {
			my_emit_result(m, q->qid, EV_OUT_UNKNOWN, q->rows > 0 ? q->rows : -1, q->bytes,
				    NULL, 0);
			any = 1;
		}
		my_pend_pop(m);
	}
	if (any)
		my_emit_ready(m);
}

struct my_pend *my_pend_push(struct my *m, uint8_t cmd, uint8_t resp)
{
	if (m->pend_n == MY_PEND_MAX) {
		/* A server that answers nothing: the oldest is given up as unknown. */
		struct my_pend *q = my_pend_at(m, 0);
		if (q->has_q)
			my_emit_result(m, q->qid, EV_OUT_UNKNOWN, -1, 0, NULL, 0);
		my_pend_pop(m);
		my_anomaly(m, TO_SERVER, "mysql: too many unanswered commands", 0);
	}
	struct my_pend *q = my_pend_at(m, m->pend_n++);
	memset(q, 0, sizeof *q);
	q->cmd = cmd;
	q->resp = resp;
	q->rstate = RS_FIRST;
	return q;
}

char *my_copy_text(const char *p, size_t n, size_t cap, size_t *out_n, int *trunc)
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

struct my_stmt *my_stmt_find(struct my *m, uint32_t id)
{
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used && m->stmts[i].id == id)
			return &m->stmts[i];
	return NULL;
}

/* An open cursor's owed result is emitted when the cursor ends or the statement goes. */
void my_stmt_cursor_done(struct my *m, struct my_stmt *s, const struct my_err *err)
{
	if (!s->cur_open)
		return;
	s->cur_open = 0;
	my_emit_result(m, s->cur_qid, err ? EV_OUT_ERROR : EV_OUT_OK, s->cur_rows, s->cur_bytes, err, 0);
	my_emit_ready(m);
}

void my_stmt_drop(struct my *m, struct my_stmt *s)
{
	my_stmt_cursor_done(m, s, NULL);
	m->stmt_sql_total -= s->sql_n;
	free(s->sql);
	free(s->types);
	free(s->longd);
	memset(s, 0, sizeof *s);
}

void my_stmt_clear(struct my *m)
{
	for (size_t i = 0; i < MY_STMT_MAX; i++)
		if (m->stmts[i].used)
			my_stmt_drop(m, &m->stmts[i]);
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
	my_stmt_drop(m, s);
	m->stmt_evictions++;
}

const struct my_evicted *my_evicted_find(const struct my *m, uint32_t id)
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

struct my_stmt *my_stmt_add(struct my *m, uint32_t id)
{
	struct my_stmt *s = my_stmt_find(m, id);
	if (s)
		my_stmt_drop(m, s);
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
void my_stmt_budget(struct my *m, const struct my_stmt *keep)
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
