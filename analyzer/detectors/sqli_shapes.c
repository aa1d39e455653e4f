/* sql_injection by structure: the shapes each service account (or non-interactive
 * application) sends, indexed by the tokens in front of each literal slot, and the search
 * for a known shape with one slot replaced by code. Memory is fixed (SQLI_SLOTS,
 * SQLI_SHAPES); a full index stops growing rather than evicting. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "baseline.h"
#include "sqli_int.h"

/* ---- known slots, by identity ---- */


uint64_t sqli_mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2))) * 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static uint64_t text_hash(const char *p, size_t n, int fold)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (fold && c >= 'A' && c <= 'Z')
			c += 32;
		h = (h ^ c) * SQLI_HP;
	}
	return h;
}

static uint64_t tok_hash(const struct an_stmt *st, int i)
{
	const struct sn_tok *t = det_tok(st, i);
	if (sn_is_literal(t) || t->type == SN_PARAM)
		return 0x3f3f3f3full;
	return text_hash(st->base + t->off, t->len, t->type == SN_WORD);
}

/* Whose shapes: a service account, or an application that is not an interactive tool. */
uint64_t sqli_identity(const struct an *an, const struct an_session *s)
{
	static const char *const tools[] = { "psql", "mysql", "mariadb", "pgcli", "mycli", "pgAdmin", "DBeaver",
					     "DataGrip", "MySQL Workbench", "HeidiSQL", "pg_dump", "mysqldump", NULL };
	if (!s->db_user[0])
		return 0;
	if (!an_is_service_account(&an->cfg, s->db_user)) {
		if (!s->application[0])
			return 0;
		for (int i = 0; tools[i]; i++)
			if (!strncasecmp(s->application, tools[i], strlen(tools[i])))
				return 0;
	}
	return sqli_mix(text_hash(s->db_user, strlen(s->db_user), 0), text_hash(s->application, strlen(s->application), 0));
}

struct sqli_state *sqli_state_get(struct an *an, int ntok)
{
	struct sqli_state *q = an->sqli;
	if (!q) {
		q = an->sqli = calloc(1, sizeof *q);
		if (!q)
			return NULL;
	}
	if (ntok + 1 > q->cap) {
		int cap = ntok + 1 < 256 ? 256 : ntok + 1;
		uint64_t *ph = realloc(q->ph, sizeof *ph * (size_t)cap);
		if (ph)
			q->ph = ph;
		uint64_t *gh = realloc(q->gh, sizeof *gh * (size_t)cap);
		if (gh)
			q->gh = gh;
		int *idx = realloc(q->idx, sizeof *idx * (size_t)cap);
		if (idx)
			q->idx = idx;
		if (!ph || !gh || !idx)
			return NULL;
		q->cap = cap;
	}
	return q;
}

int sqli_shape_seen(struct sqli_state *q, uint64_t key, int add)
{
	if (!q->shapes && !(q->shapes = calloc(SQLI_SHAPES, sizeof *q->shapes)))
		return 0;
	for (unsigned i = (unsigned)key & (SQLI_SHAPES - 1), n = 0; n < 64; i = (i + 1) & (SQLI_SHAPES - 1), n++) {
		if (q->shapes[i] == key)
			return 1;
		if (!q->shapes[i]) {
			if (add && q->n_shapes < SQLI_SHAPES * 3 / 4) {
				q->shapes[i] = key;
				q->n_shapes++;
			}
			return 0;
		}
	}
	return 0;
}

/* Hash the statement's non-comment tokens: q->ph[j] covers tokens [0, j), q->gh[j] [j, n). */
int sqli_hash_tokens(const struct an_stmt *st, struct sqli_state *q)
{
	int n = 0;
	for (int i = st->first; i < st->end; i++)
		if (det_tok(st, i)->type != SN_COMMENT)
			q->idx[n++] = i;
	q->ph[0] = 0;
	for (int j = 0; j < n; j++)
		q->ph[j + 1] = q->ph[j] * SQLI_HP + tok_hash(st, q->idx[j]);
	q->gh[n] = 0;
	for (int j = n - 1; j >= 0; j--)
		q->gh[j] = q->gh[j + 1] * SQLI_HP + tok_hash(st, q->idx[j]);
	return n;
}

void sqli_index_shape(struct sqli_state *q, uint64_t id, uint64_t shape, int n, const struct an_stmt *st)
{
	if (!q->slots && !(q->slots = calloc(SQLI_SLOTS, sizeof *q->slots)))
		return;
	int ord = 0;
	for (int j = 0; j < n && ord < SQLI_MAX_SLOTS_SHAPE; j++) {
		const struct sn_tok *t = det_tok(st, q->idx[j]);
		if (!sn_is_literal(t) && t->type != SN_PARAM)
			continue;
		ord++;
		if (q->n_slots >= SQLI_SLOTS * 3 / 4)
			return;
		uint64_t key = sqli_mix(id, q->ph[j]);
		for (unsigned i = (unsigned)key & (SQLI_SLOTS - 1), k = 0; k < 64; i = (i + 1) & (SQLI_SLOTS - 1), k++) {
			struct sqli_slot *e = &q->slots[i];
			if (e->key == key && e->sfx == q->gh[j + 1])
				break;
			if (!e->key) {
				*e = (struct sqli_slot){ .key = key, .sfx = q->gh[j + 1], .shape = shape,
							 .after = (uint32_t)(n - j - 1), .ord = (uint16_t)ord };
				q->n_slots++;
				break;
			}
		}
	}
}

/* Does the replacement [a, b) (non-comment positions) hold code rather than data? What a
 * query builder adds (AND col = ?, LIMIT ?) is data-shaped; a subquery, a function call, a
 * constant predicate, UNION, ORDER BY n, a stacked statement or || is code. */
static const char *code_in(const struct an_stmt *st, const struct sqli_state *q, int a, int b, int cut)
{
	for (int j = a; j < b; j++) {
		int i = q->idx[j];
		const struct sn_tok *t = det_tok(st, i);
		if (det_word(st, i, "UNION"))
			return "union";
		if (det_word(st, i, "SELECT"))
			return "subquery";
		if (det_punct(st, i, ';'))
			return "stacked";
		if (det_word(st, i, "ORDER") && j + 2 < b && det_tok(st, q->idx[j + 2])->type == SN_NUMBER)
			return "order_by";
		if ((det_word(st, i, "AND") || det_word(st, i, "OR") || det_word(st, i, "NOT")) && j + 1 < b) {
			int simple, small, k = q->idx[j + 1];
			while (det_punct(st, k, '(') || det_word(st, k, "NOT"))
				k = det_next(st, k);
			if (sqli_const_pred(st, k, &simple, &small) >= 0)
				return "boolean_tail";
		}
		if (t->type == SN_WORD && j + 1 < b && det_punct(st, q->idx[j + 1], '(') && !det_word(st, i, "IN") &&
		    !det_word(st, i, "VALUES"))
			return "expression";
		if (det_op(st, i, "||") || det_word(st, i, "CASE"))
			return "expression";
		/* 1322-1321 where a number was: arithmetic the server evaluates */
		if (t->type == SN_OP && j > a && j + 1 < b && sn_is_literal(det_tok(st, q->idx[j - 1])) &&
		    sn_is_literal(det_tok(st, q->idx[j + 1])) &&
		    (det_op(st, i, "+") || det_op(st, i, "-") || det_op(st, i, "*") || det_op(st, i, "/") ||
		     det_op(st, i, "%")))
			return "expression";
	}
	return cut ? "comment_truncated_rest" : NULL;
}

/* Errors that a broken or probed literal slot provokes (syntax, types, unknown columns or
 * functions, casts of extracted text, duplicate keys of FLOOR(RAND(0)*2), UNION arity). */
int sqli_injection_error(const char *code)
{
	static const char *const codes[] = { "42601", "42883", "22P02", "42804", "42P01", "42703", "22003", "42P18",
					     "1064", "1054", "1062", "1105", "1690", "1222", "1241", "1367", "1139",
					     "1146", "1305", "1292", "1242", NULL };
	for (int i = 0; codes[i]; i++)
		if (!strcmp(code, codes[i]))
			return 1;
	return 0;
}


/* The known shape this statement is, with one slot replaced; 0 when none. */
int sqli_slot_replaced(struct an *an, const struct an_stmt *st, struct sqli_state *q, uint64_t id, int n,
			 int cut, int errored, struct slot_hit *hit)
{
	if (!q->slots)
		return 0;
	int judged = 0; /* replacements scanned: each is O(n), so at most SQLI_MAX_SLOTS_SHAPE */
	for (int j = 0; j < n && judged < SQLI_MAX_SLOTS_SHAPE; j++) {
		uint64_t key = sqli_mix(id, q->ph[j]);
		for (unsigned i = (unsigned)key & (SQLI_SLOTS - 1), k = 0; k < 64; i = (i + 1) & (SQLI_SLOTS - 1), k++) {
			const struct sqli_slot *e = &q->slots[i];
			if (!e->key)
				break;
			if (e->key != key)
				continue;
			int end = n - (int)e->after;
			int whole = end > j && q->gh[end] == e->sfx; /* the shape's rest follows */
			int rest_cut = cut && e->after > 0;	     /* a comment cut the rest off */
			if (!whole && !rest_cut && !errored)
				continue;
			if (!whole)
				end = n;
			/* a quote left open at the slot ran to the end: the server refused it */
			int open_quote = errored && (det_tok(st, q->idx[j])->flags & SN_F_UNTERMINATED);
			if (end - j < 2 && !open_quote)
				continue;
			judged++;
			const char *what = code_in(st, q, j, end, rest_cut && !whole);
			/* the server could not run the slot's new content (a quote or parenthesis
			 * that breaks the shape, a type probe): what sqlmap's first requests do */
			if (!what && errored)
				what = "broken_syntax";
			if (!what)
				continue;
			hit->what = what;
			hit->from = q->idx[j];
			hit->to = q->idx[end - 1] + 1;
			hit->e = e;
				return 1;
		}
	}
	return 0;
}

void sqli_free(struct an *an)
{
	struct sqli_state *q = an->sqli;
	if (!q)
		return;
	free(q->slots);
	free(q->shapes);
	free(q->ph);
	free(q->gh);
	free(q->idx);
	free(q);
	an->sqli = NULL;
}
