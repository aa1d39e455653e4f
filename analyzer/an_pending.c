/* Pending statements: each session's bounded ring of queries waiting for their results,
 * filled by queries and emptied by results and ReadyForQuery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"
#include "attr.h"

#define PARAM_BYTES_MAX 4096 /* bound parameter text kept per statement */
#define PARAM_ONE_MAX 1024
#define AN_PEND_KEEP 2048 /* a block up to this size is kept as the session's spare */

static void pend_free(struct an_session *s, struct an_pending *p)
{
	s->pend_bytes -= p->bytes < s->pend_bytes ? p->bytes : s->pend_bytes;
	if (!s->pend_spare && p->block && p->block_cap <= AN_PEND_KEEP) {
		s->pend_spare = p->block;
		s->pend_spare_cap = p->block_cap;
	} else {
		free(p->block);
	}
	memset(p, 0, sizeof *p);
}

void an_pend_spare_free(struct an_session *s)
{
	free(s->pend_spare);
	s->pend_spare = NULL;
	s->pend_spare_cap = 0;
}


/* Complete the remaining parts of the pending entry at ring index i with outcome unknown
 * and remove it (entries are removed from the head only; others are marked done). */
static void pend_finish(struct an *an, struct an_session *s, struct an_pending *p, int execute_rest)
{
	if (execute_rest)
		for (; p->next < p->n_parts; p->next++)
			an_complete_part(an, s, p, p->next, NULL);
	else
		for (; p->next < p->n_parts; p->next++) {
			/* the other reading's parts: the error may belong to that reading */
			if (p->part_mode && (p->part_mode[p->next] & AN_PART_ALT))
				an_complete_part(an, s, p, p->next, NULL);
			else
				an->st.statements_skipped++;
		}
	pend_free(s, p);
}

static void pend_pop_done(struct an_session *s)
{
	while (s->pend_n > 0 && an_pend_at(s, 0)->n_parts == 0) {
		s->pend_head = s->pend_head + 1 < s->pend_cap ? s->pend_head + 1 : 0;
		s->pend_n--;
	}
}

void an_pend_finish_all(struct an *an, struct an_session *s)
{
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = an_pend_at(s, i);
		if (p->n_parts)
			pend_finish(an, s, p, 1);
	}
	s->pend_n = 0;
	s->pend_head = 0;
}

/* The pending ring starts at 8 entries and doubles up to max_pending: a session waiting
 * for one result at a time costs 2 KiB, not 70 KiB (256 entries). Entries hold no pointers
 * into the ring, so they move by copy; nothing holds an entry across on_query. */
static int pend_grow(struct an_session *s, int max)
{
	int cap = s->pend_cap ? s->pend_cap * 2 : 8;
	if (cap > max)
		cap = max;
	struct an_pending *n = calloc((size_t)cap, sizeof *n);
	if (!n)
		return -ENOMEM;
	for (int i = 0; i < s->pend_n; i++)
		n[i] = *an_pend_at(s, i);
	free(s->pend);
	s->pend = n;
	s->pend_head = 0;
	s->pend_cap = cap;
	return 0;
}

/* How a query's text is kept: its parts in an->parts / an->part_mode and their bytes. */
struct pend_plan {
	int n_parts, keep_toks, n_toks, trunc;
	size_t len; /* text bytes kept */
};

/* Split a simple query first (the whole text, beyond max_sql_bytes too), so one
 * allocation can be sized; each part then keeps what the text budget allows. 0: nothing is
 * executed (only comments or whitespace). */
static int pend_plan(struct an *an, struct an_session *s, const struct ev_query *q, const char *sql, size_t full,
		     struct pend_plan *pl)
{
	struct sn_range *parts = an->parts;
	size_t stored = 0, cap = (size_t)an->cfg.max_sql_bytes, len = full;
	size_t head = AN_PART_HEAD < cap ? AN_PART_HEAD : cap;
	pl->n_parts = 1;
	if (sql && q->kind == EV_Q_SIMPLE) {
		int single = 0, tr;
		int n_parts = pl->n_parts = an_split_reading(an, s, sql, full, &single, &pl->n_toks);
		if (n_parts == 0)
			return 0;
		/* the message's comments name its end user (an_on_query): its tokens, the first
		 * SN_MAX_TOKENS of them when the split took several passes */
		if (n_parts > 1 && !single)
			pl->n_toks = sn_lex_mode(sql, full, s->dialect, s->lexmode, an->toks, SN_MAX_TOKENS, &tr);
		/* the usual case, one statement: keep its tokens for an_complete_part */
		pl->keep_toks = single && n_parts == 1 && parts[0].tok_first == 0 &&
				parts[0].tok_end <= AN_PEND_MAX_TOKS && parts[0].len <= cap &&
				!(an->part_mode[0] & AN_PART_ALT);
		for (int i = 0; i < n_parts; i++) {
			size_t keep = parts[i].len, left = stored < cap ? cap - stored : 0;
			if (keep > left) /* what the budget leaves, at least the head (verb, first bytes) */
				keep = left > head ? left : head < keep ? head : keep;
			if (keep < parts[i].len || (pl->trunc && i == n_parts - 1))
				an->part_mode[i] |= AN_PART_CUT;
			parts[i].len = (uint32_t)keep;
			stored += keep;
		}
		len = stored;
	} else {
		parts[0] = (struct sn_range){ 0, (uint32_t)len, 0, 0 };
		an->part_mode[0] = s->lexmode;
		if (len > cap) {
			len = cap;
			pl->trunc = 1;
			parts[0].len = (uint32_t)len;
		}
	}
	pl->len = len;
	return 1;
}

/* p's block: a spare kept by the session when large enough, else a new one. */
static int pend_block(struct an_session *s, struct an_pending *p, size_t need)
{
	if (s->pend_spare && s->pend_spare_cap >= need) {
		p->block = s->pend_spare;
		p->block_cap = s->pend_spare_cap;
		s->pend_spare = NULL;
	} else {
		an_pend_spare_free(s); /* too small: this block, rounded up, becomes the next spare */
		p->block_cap = need < AN_PEND_KEEP / 4 ? AN_PEND_KEEP / 4 : need;
		p->block = malloc(p->block_cap);
	}
	return p->block ? 0 : -1;
}

/* Bound parameters' text into p->param_buf, pbytes at most (later ones are unknown). */
static void pend_params(struct an_pending *p, const struct ev_query *q, size_t pbytes)
{
	size_t o = 0, nparam = q->n_params;
	for (size_t i = 0; i < nparam; i++)
		p->params[i] = (struct attr_val){ NULL, 0 };
	for (size_t i = 0; i < nparam; i++) {
		const struct ev_bind *b = &q->params[i];
		if (b->is_null || !b->text.p)
			continue;
		size_t n = b->text.n < PARAM_ONE_MAX ? b->text.n : PARAM_ONE_MAX;
		if (o + n + 1 > pbytes)
			break; /* budget spent: later parameters are unknown */
		memcpy(p->param_buf + o, b->text.p, n);
		p->param_buf[o + n] = 0;
		p->params[i].text = p->param_buf + o;
		p->params[i].n = n;
		o += n + 1;
	}
	p->n_params = (int)nparam;
}

void an_on_query(struct an *an, struct an_session *s, const struct ev *e)
{
	const struct ev_query *q = &e->u.query;
	struct strv qsql = q->sql_known && q->sql.p ? q->sql : STRV_NULL;
	int qtrunc = q->truncated;
	if (q->kind == EV_Q_PREPARE)
		return;
	if (q->kind == EV_Q_EXECUTE && q->stmt_name.n) {
		const struct an_ps *ps = an_ps_find(s, q->stmt_name);
		if (qsql.p && (!ps || ps->text_len != qsql.n || memcmp(ps->buf + ps->name_len + 1, qsql.p, qsql.n)))
			an_ps_put(an, s, q->stmt_name.p, q->stmt_name.n, qsql.p, qsql.n, qtrunc);
		else if (!qsql.p && ps) { /* prepared before the decoder (re)started: parked, restored */
			qsql = (struct strv){ ps->buf + ps->name_len + 1, ps->text_len };
			qtrunc = ps->trunc;
		}
	}
	int max = an->cfg.max_pending > 0 ? an->cfg.max_pending : 1;
	if (!s->pend || (s->pend_n >= s->pend_cap && s->pend_cap < max)) {
		if (pend_grow(s, max) != 0) {
			an->st.pending_dropped++;
			return;
		}
	}
	const char *sql = qsql.p;
	size_t pbytes = 0;
	for (size_t i = 0; i < q->n_params; i++)
		pbytes += q->params[i].text.n < PARAM_ONE_MAX ? q->params[i].text.n + 1 : PARAM_ONE_MAX + 1;
	if (pbytes > PARAM_BYTES_MAX)
		pbytes = PARAM_BYTES_MAX;
	struct sn_range *parts = an->parts;
	struct pend_plan pl = { .trunc = qtrunc };
	if (!pend_plan(an, s, q, sql, sql ? qsql.n : 0, &pl))
		return; /* only comments or whitespace: nothing is executed */
	int n_parts = pl.n_parts, n_toks = pl.n_toks;
	size_t len = pl.len;
	size_t cost = len + pbytes + sizeof(struct an_pending);
	if (s->pend_n >= s->pend_cap || s->pend_bytes + cost > (size_t)an->cfg.max_pending_bytes) {
		an->st.pending_dropped++;
		return;
	}
	size_t ntok = pl.keep_toks ? (size_t)parts[0].tok_end : 0;
	size_t nparam = q->n_params;
	size_t size = nparam * sizeof(struct attr_val) + ntok * sizeof(struct sn_tok) +
		      2 * (size_t)n_parts * sizeof(uint32_t) + (size_t)n_parts + (nparam ? pbytes : 0) +
		      (sql ? len + 1 : 0) + (n_parts > 1 ? AN_STR_MAX : 0);
	struct an_pending *p = an_pend_at(s, s->pend_n);
	memset(p, 0, sizeof *p);
	p->id = q->id;
	p->kind = q->kind;
	p->ts = e->ts;
	p->truncated = q->kind != EV_Q_SIMPLE && pl.trunc;
	if (pend_block(s, p, size ? size : 1) != 0) {
		pend_free(s, p);
		an->st.pending_dropped++;
		return;
	}
	/* most aligned first: attr_val (pointers), tokens and offsets (4 bytes), then text */
	char *m = p->block;
	if (nparam) {
		p->params = (struct attr_val *)(void *)m;
		m += nparam * sizeof(struct attr_val);
	}
	if (ntok) {
		p->toks = (struct sn_tok *)(void *)m;
		p->n_toks = (int)ntok;
		m += ntok * sizeof(struct sn_tok);
		memcpy(p->toks, an->toks, ntok * sizeof *p->toks);
		if (parts[0].off) /* offsets relative to the part */
			for (size_t i = 0; i < ntok; i++)
				p->toks[i].off -= parts[0].off;
	}
	p->part_off = (uint32_t *)(void *)m;
	m += (size_t)n_parts * sizeof(uint32_t);
	p->part_len = (uint32_t *)(void *)m;
	m += (size_t)n_parts * sizeof(uint32_t);
	p->part_mode = (uint8_t *)m;
	m += (size_t)n_parts;
	p->n_parts = n_parts;
	if (nparam) {
		p->param_buf = m;
		m += pbytes;
	}
	if (n_parts > 1) {
		/* a comment anywhere in a split message names the end user of all its parts */
		p->msg_user = m;
		m += AN_STR_MAX;
		p->msg_user[0] = 0;
		for (int i = 0; i < n_toks; i++)
			if (an->toks[i].type == SN_COMMENT) {
				if (attr_comment_user(sql, an->toks, 0, n_toks, &an->cfg.comment_keys, p->msg_user,
						      AN_STR_MAX, NULL, 0))
					p->msg_src = AN_SRC_COMMENT;
				break;
			}
	}
	if (sql) {
		/* each part's kept bytes, one after the other */
		p->sql = m;
		size_t o = 0;
		for (int i = 0; i < n_parts; i++) {
			memcpy(p->sql + o, sql + parts[i].off, parts[i].len);
			p->part_off[i] = (uint32_t)o;
			p->part_len[i] = parts[i].len;
			o += parts[i].len;
		}
		p->sql[o] = 0;
		p->sql_len = o;
	} else {
		p->part_off[0] = p->part_len[0] = 0;
	}
	memcpy(p->part_mode, an->part_mode, (size_t)n_parts);
	if (nparam > 0)
		pend_params(p, q, pbytes);
	p->bytes = cost;
	s->pend_bytes += cost;
	s->pend_n++;
	if (s->pool_role)
		pool_query(an, s, q, qsql, e->ts, &p->pj);
}

void an_on_result(struct an *an, struct an_session *s, const struct ev *e)
{
	const struct ev_result *r = &e->u.result;
	int found = -1;
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = an_pend_at(s, i);
		if (p->n_parts && p->id == r->id) {
			found = i;
			break;
		}
	}
	if (found < 0) {
		/* no statement for it (picked up mid-stream, or dropped): still count it */
		if (r->outcome == EV_OUT_ERROR)
			s->errors++;
		return;
	}
	/* earlier statements still waiting lost their results: complete them as unknown */
	for (int i = 0; i < found; i++) {
		struct an_pending *p = an_pend_at(s, i);
		if (p->n_parts)
			pend_finish(an, s, p, 1);
	}
	struct an_pending *p = an_pend_at(s, found);
	if (r->outcome == EV_OUT_SKIPPED) {
		pend_finish(an, s, p, 0); /* counts it as skipped */
		pend_pop_done(s);
		return;
	}
	an_complete_part(an, s, p, p->next, e);
	p->next++;
	p->got_result = 1;
	if (p->next >= p->n_parts) {
		pend_free(s, p);
	} else if (r->outcome == EV_OUT_ERROR) {
		/* the rest of a multi-statement message is not executed after an error */
		pend_finish(an, s, p, 0);
	} else if (s->dialect == SN_MYSQL && !r->more && p->kind == EV_Q_SIMPLE) {
		pend_finish(an, s, p, 1); /* server says done: our split had more parts */
	}
	pend_pop_done(s);
}

void an_on_ready(struct an *an, struct an_session *s, const struct ev *e)
{
	if (e->u.ready.txn == 'I') {
		s->txn_marker.src = AN_SRC_NONE;
		s->txn_role[0] = 0;
		if (s->sess_changed || s->rolled_back) {
			/* a transaction that rolled back (ROLLBACK, or COMMIT of a failed one) undid
			 * the session SETs made in it */
			if (s->dialect == SN_PG && (s->rolled_back || s->txn == 'E'))
				s->sess_marker = s->sess_at_idle;
			else
				s->sess_at_idle = s->sess_marker;
			s->sess_changed = s->rolled_back = 0;
		}
	}
	s->txn = e->u.ready.txn;
	/* ReadyForQuery ends the oldest simple query: its unmatched parts are completed as unknown
	 * (never dropped: a statement we could not match must still be visible) */
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = an_pend_at(s, i);
		if (!p->n_parts)
			continue;
		if (p->got_result || p->kind == EV_Q_SIMPLE) {
			int simple = p->kind == EV_Q_SIMPLE;
			pend_finish(an, s, p, 1);
			if (simple)
				break;
		}
	}
	pend_pop_done(s);
	if (s->pool_role == AN_POOL_SERVER)
		pool_ready(an, s, e->u.ready.txn);
}
