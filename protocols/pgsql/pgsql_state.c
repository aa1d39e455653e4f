/* PostgreSQL decoder: per-session bookkeeping, each part bounded: statements waiting for
 * their responses (FIFO, as the server answers), named prepared statements (LRU by count
 * and bytes) and portals. */
#include "pgsql_int.h"

/* ---- pending queue ---- */

/* q_cap is 16 doubled up to PG_MAX_PENDING: a power of two, so no division per lookup */
_Static_assert((PG_MAX_PENDING & (PG_MAX_PENDING - 1)) == 0, "PG_MAX_PENDING: a power of two");
struct pg_pend *pg_pend_at(struct pg *s, size_t i)
{
	return &s->q[(s->q_head + i) & (s->q_cap - 1)];
}

void pg_emit_result(struct pg *s, struct pg_pend *p, enum ev_outcome out, int64_t rows,
			struct strv tag, struct strv code, struct strv msg)
{
	struct ev e = { .type = EV_RESULT };
	e.u.result.id = p->id;
	e.u.result.outcome = out;
	e.u.result.rows = rows;
	e.u.result.bytes = p->bytes;
	e.u.result.tag = tag;
	e.u.result.error_code = code;
	e.u.result.error_msg = msg;
	pg_emit(s, &e);
	p->done = 1;
	p->rows = 0;
	p->bytes = 0;
}

void pg_pend_pop(struct pg *s)
{
	if (!s->q_n)
		return;
	s->q_head = (s->q_head + 1) & (s->q_cap - 1);
	s->q_n--;
}

/* A statement left without its answer: say so rather than lose it. */
void pg_pend_finish_unanswered(struct pg *s, struct pg_pend *p, enum ev_outcome out)
{
	if (p->kind == PEND_S || p->kind == PEND_LOST)
		return;
	if (p->kind == PEND_Q && p->done)
		return;
	if (p->kind == PEND_F && p->done)
		return;
	pg_emit_result(s, p, out, -1, STRV_NULL, STRV_NULL, STRV_NULL);
}

void pg_pend_flush_all(struct pg *s, enum ev_outcome out)
{
	while (s->q_n) {
		pg_pend_finish_unanswered(s, pg_pend_at(s, 0), out);
		pg_pend_pop(s);
	}
	s->err_skip = 0;
}

struct pg_pend *pg_pend_push(struct pg *s, enum pg_pend_kind kind, uint64_t id)
{
	if (s->q_n == s->q_cap) {
		if (s->q_cap >= PG_MAX_PENDING) {
			/* Cap reached: the oldest answer is given up on, counted. */
			pg_pend_finish_unanswered(s, pg_pend_at(s, 0), EV_OUT_UNKNOWN);
			pg_pend_pop(s);
			s->pend_dropped++;
		} else {
			size_t ncap = s->q_cap ? s->q_cap * 2 : 16;
			struct pg_pend *nq = malloc(ncap * sizeof *nq);
			if (!nq)
				return NULL;
			for (size_t i = 0; i < s->q_n; i++)
				nq[i] = *pg_pend_at(s, i);
			free(s->q);
			s->q = nq;
			s->q_cap = ncap;
			s->q_head = 0;
		}
	}
	struct pg_pend *p = pg_pend_at(s, s->q_n);
	s->q_n++;
	memset(p, 0, sizeof *p);
	p->kind = (uint8_t)kind;
	p->id = id;
	return p;
}

/* The statement the next server result belongs to, or NULL. */
struct pg_pend *pg_pend_target(struct pg *s)
{
	for (size_t i = 0; i < s->q_n; i++) {
		struct pg_pend *p = pg_pend_at(s, i);
		if (p->kind == PEND_S)
			return NULL;
		if (p->kind == PEND_F && p->done)
			continue;
		return p;
	}
	return NULL;
}

/* ---- statement cache and portals ---- */

void pg_stmt_free(struct pg *s, struct pg_stmt *st)
{
	s->stmt_bytes -= st->sql_n;
	free(st->name);
	free(st->sql);
	free(st->oids);
	memset(st, 0, sizeof *st);
}

void pg_stmt_remove(struct pg *s, size_t i)
{
	pg_stmt_free(s, &s->stmts[i]);
	s->stmts[i] = s->stmts[--s->n_stmts];
	memset(&s->stmts[s->n_stmts], 0, sizeof s->stmts[0]);
}

struct pg_stmt *pg_stmt_find(struct pg *s, struct strv name, size_t *idx)
{
	for (size_t i = 0; i < s->n_stmts; i++)
		if (s->stmts[i].name_n == name.n && (name.n == 0 || memcmp(s->stmts[i].name, name.p, name.n) == 0)) {
			if (idx)
				*idx = i;
			return &s->stmts[i];
		}
	return NULL;
}

uint64_t pg_name_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static void stmt_evict_lru(struct pg *s)
{
	size_t best = 0;
	for (size_t i = 1; i < s->n_stmts; i++)
		if (s->stmts[i].used < s->stmts[best].used)
			best = i;
	struct pg_stmt *st = &s->stmts[best];
	if (st->name_n && (s->evicted || (s->evicted = calloc(PG_EVICTED_MAX, sizeof *s->evicted)))) {
		struct pg_evicted *e = &s->evicted[s->evicted_next++ % PG_EVICTED_MAX];
		size_t n = st->sql_n < PG_EVICTED_HEAD ? st->sql_n : PG_EVICTED_HEAD;
		if (n < st->sql_n) /* not inside a UTF-8 sequence */
			while (n > 0 && ((unsigned char)st->sql[n] & 0xc0) == 0x80)
				n--;
		e->h = pg_name_hash(st->name, st->name_n);
		e->n = (uint8_t)n;
		memcpy(e->head, st->sql, n);
	}
	pg_stmt_remove(s, best);
	s->stmt_evictions++;
}

static char *dup_bytes(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

void pg_stmt_store(struct pg *s, struct strv name, struct strv sql, int truncated, struct rd *oids,
		       size_t n_oids)
{
	size_t idx;
	if (pg_stmt_find(s, name, &idx))
		pg_stmt_remove(s, idx);
	if (sql.n > PG_STMT_BYTES)
		sql.n = PG_STMT_BYTES, truncated = 1;
	if (!s->stmts && !(s->stmts = calloc(PG_MAX_STMTS, sizeof *s->stmts)))
		return;
	while (s->n_stmts && (s->n_stmts == PG_MAX_STMTS || s->stmt_bytes + sql.n > PG_STMT_BYTES))
		stmt_evict_lru(s);
	struct pg_stmt *st = &s->stmts[s->n_stmts];
	if (n_oids > PG_MAX_OIDS)
		n_oids = PG_MAX_OIDS;
	st->name = dup_bytes(name.p, name.n);
	st->sql = dup_bytes(sql.p, sql.n);
	st->oids = malloc((n_oids ? n_oids : 1) * sizeof *st->oids);
	if (!st->name || !st->sql || !st->oids) {
		free(st->name);
		free(st->sql);
		free(st->oids);
		memset(st, 0, sizeof *st);
		return;
	}
	for (size_t i = 0; i < n_oids; i++)
		st->oids[i] = rd_be32(oids);
	st->n_oids = n_oids;
	st->name_n = name.n;
	st->sql_n = sql.n;
	st->truncated = truncated;
	st->used = ++s->use_clock;
	s->stmt_bytes += sql.n;
	s->n_stmts++;
}

void pg_portal_free(struct pg_portal *p)
{
	free(p->name);
	free(p->stmt);
	free(p->vals);
	free(p->pv);
	memset(p, 0, sizeof *p);
}

void pg_portal_remove(struct pg *s, size_t i)
{
	pg_portal_free(&s->portals[i]);
	s->portals[i] = s->portals[--s->n_portals];
	memset(&s->portals[s->n_portals], 0, sizeof s->portals[0]);
}

struct pg_portal *pg_portal_find(struct pg *s, struct strv name, size_t *idx)
{
	for (size_t i = 0; i < s->n_portals; i++)
		if (s->portals[i].name_n == name.n &&
		    (name.n == 0 || memcmp(s->portals[i].name, name.p, name.n) == 0)) {
			if (idx)
				*idx = i;
			return &s->portals[i];
		}
	return NULL;
}

/* A fresh portal slot named name (an old one of that name is replaced). */
struct pg_portal *pg_portal_new(struct pg *s, struct strv name, struct strv stmt)
{
	size_t idx;
	struct pg_portal *old = pg_portal_find(s, name, &idx);
	if (old && stmt.n <= old->stmt_cap) {
		/* rebound (the unnamed portal, at every Bind): its buffers are reused */
		if (stmt.n)
			memcpy(old->stmt, stmt.p, stmt.n);
		old->stmt_n = stmt.n;
		old->n_pv = 0;
		old->used = ++s->use_clock;
		return old;
	}
	if (old)
		pg_portal_remove(s, idx);
	if (!s->portals && !(s->portals = calloc(PG_MAX_PORTALS, sizeof *s->portals)))
		return NULL;
	if (s->n_portals == PG_MAX_PORTALS) {
		size_t best = 0;
		for (size_t i = 1; i < s->n_portals; i++)
			if (s->portals[i].used < s->portals[best].used)
				best = i;
		pg_portal_remove(s, best);
		s->portal_evictions++;
	}
	struct pg_portal *p = &s->portals[s->n_portals];
	p->name = dup_bytes(name.p, name.n);
	p->stmt = dup_bytes(stmt.p, stmt.n);
	if (!p->name || !p->stmt) {
		pg_portal_free(p);
		return NULL;
	}
	p->name_n = name.n;
	p->stmt_n = p->stmt_cap = stmt.n;
	p->used = ++s->use_clock;
	s->n_portals++;
	return p;
}
