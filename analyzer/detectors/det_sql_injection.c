/* sql_injection: token-stream heuristics on the statement text (never on bound parameters,
 * which are data): OR-tautologies, UNION SELECT probes (padding, system functions,
 * catalogs, or an application SELECT emptied on purpose in front), credential catalog
 * reads by service accounts, time-delay functions, dangerous stacked statements,
 * comment truncation. */
#include <stdlib.h>
#include <strings.h>

#include "baseline.h"
#include "det.h"

static int is_or(const struct an_stmt *st, int i)
{
	return det_word(st, i, "OR") || (st->s->dialect == SQ_MYSQL && det_op(st, i, "||"));
}

/* Literal operand at i: its text and whether it is a number. */
static int operand(const struct an_stmt *st, int i, char *buf, size_t cap, int *num)
{
	if (i < st->first || i >= st->end)
		return 0;
	const struct sq_tok *t = det_tok(st, i);
	if (!sq_is_literal(t))
		return 0;
	sq_literal_text(st->base, t, buf, cap);
	*num = t->type == SQ_NUMBER;
	return 1;
}

/* literal op literal at i: 1 always true, 0 always false, -1 no such comparison or one
 * not judged (>= and <= only when both sides are equal; > and < only between numbers and
 * only when true). */
static int literal_cmp(const struct an_stmt *st, int i)
{
	char a[64], b[64];
	int an_, bn;
	int op = det_next(st, i), rhs = det_next(st, op);
	if (!operand(st, i, a, sizeof a, &an_) || op >= st->end || det_tok(st, op)->type != SQ_OP ||
	    !operand(st, rhs, b, sizeof b, &bn))
		return -1;
	double x = strtod(a, NULL), y = strtod(b, NULL);
	int eq = (an_ && bn) ? x == y : strcmp(a, b) == 0;
	if (det_op(st, op, "=") || det_op(st, op, "<=>"))
		return eq;
	if (det_op(st, op, ">=") || det_op(st, op, "<="))
		return eq ? 1 : -1;
	if (det_op(st, op, "<>") || det_op(st, op, "!="))
		return !eq;
	if (an_ && bn && det_op(st, op, ">"))
		return x > y ? 1 : -1;
	if (an_ && bn && det_op(st, op, "<"))
		return x < y ? 1 : -1;
	return -1;
}

/* Is the comparison starting at i always true? Returns the index after it, or -1. */
static int tautology_at(const struct an_stmt *st, int i)
{
	char a[64];
	int an_;
	if (det_word(st, i, "TRUE"))
		return det_next(st, i);
	if (det_word(st, i, "NOT") && det_word(st, det_next(st, i), "FALSE"))
		return det_next(st, det_next(st, i));
	int op = det_next(st, i);
	int rhs = det_next(st, op);
	if (operand(st, i, a, sizeof a, &an_)) {
		if (op >= st->end || det_tok(st, op)->type != SQ_OP) {
			/* OR 1 alone: a non-zero number as a boolean */
			if (an_ && strtod(a, NULL) != 0 &&
			    (op >= st->end || det_punct(st, op, ')') || det_punct(st, op, ';')))
				return op;
			return -1;
		}
		return literal_cmp(st, i) == 1 ? det_next(st, rhs) : -1;
	}
	/* x = x with the same bare identifier on both sides */
	if (i < st->end && det_tok(st, i)->type == SQ_WORD && det_op(st, op, "=") && rhs < st->end &&
	    det_tok(st, rhs)->type == SQ_WORD && det_tok(st, i)->len == det_tok(st, rhs)->len &&
	    strncasecmp(st->base + det_tok(st, i)->off, st->base + det_tok(st, rhs)->off, det_tok(st, i)->len) == 0 &&
	    !sq_is_keyword(st->base + det_tok(st, i)->off, det_tok(st, i)->len))
		return det_next(st, rhs);
	return -1;
}

/* Is the comparison at i always false (FALSE, NOT TRUE, 1=2, 'a'='b', 1<>1)? */
static int falsehood_at(const struct an_stmt *st, int i)
{
	return det_word(st, i, "FALSE") || (det_word(st, i, "NOT") && det_word(st, det_next(st, i), "TRUE")) ||
	       literal_cmp(st, i) == 0;
}

/* Does [from, to) empty its own result on purpose, the way a UNION-based extraction
 * starts: AND 1=2 (or another always-false comparison), or a column equal to a negative
 * number (id=-1)? Only counted in front of a UNION. */
static int emptied(const struct an_stmt *st, int from, int to)
{
	for (int j = from; j < to; j++) {
		if (det_word(st, j, "AND") || det_word(st, j, "WHERE")) {
			int k = det_next(st, j);
			while (k < to && det_punct(st, k, '('))
				k = det_next(st, k);
			if (k < to && falsehood_at(st, k))
				return 1;
		}
		if (det_op(st, j, "=") && j > from && det_tok(st, det_prev(st, j))->type == SQ_WORD) {
			int m = det_next(st, j), v = det_next(st, m);
			if (m < to && v < to && det_op(st, m, "-") && det_tok(st, v)->type == SQ_NUMBER)
				return 1;
		}
	}
	return 0;
}

/* Word lists by id (sqlnorm.h), each ended by SQW_NONE. */
static const uint8_t delay_fns[] = { SQW_PG_SLEEP, SQW_PG_SLEEP_FOR, SQW_PG_SLEEP_UNTIL, SQW_SLEEP, SQW_BENCHMARK,
				     SQW_NONE };
static const uint8_t sys_fns[] = { SQW_VERSION, SQW_USER, SQW_CURRENT_USER, SQW_SESSION_USER, SQW_SYSTEM_USER,
				   SQW_DATABASE, SQW_SCHEMA, SQW_CURRENT_DATABASE, SQW_LOAD_FILE, SQW_INET_SERVER_ADDR,
				   SQW_NONE };
static const uint8_t cred_catalogs[] = { SQW_PG_SHADOW, SQW_PG_AUTHID, SQW_PG_USER_MAPPINGS, SQW_NONE };
static const uint8_t catalogs[] = { SQW_PG_CATALOG, SQW_INFORMATION_SCHEMA, SQW_PG_SHADOW, SQW_PG_AUTHID, SQW_MYSQL,
				    SQW_PG_USER, SQW_PG_ROLES, SQW_PG_TABLES, SQW_PERFORMANCE_SCHEMA, SQW_NONE };
/* stacked behind a write, what an application never sends in the same message */
static const uint8_t after_write[] = { SQW_DROP, SQW_TRUNCATE, SQW_ALTER, SQW_CREATE, SQW_GRANT, SQW_REVOKE,
				       SQW_COPY, SQW_SHUTDOWN, SQW_LOAD, SQW_RENAME, SQW_DO, SQW_NONE };
static const uint8_t dangerous[] = { SQW_DROP, SQW_DELETE, SQW_UPDATE, SQW_INSERT, SQW_TRUNCATE, SQW_ALTER, SQW_CREATE,
				     SQW_GRANT, SQW_REVOKE, SQW_COPY, SQW_SHUTDOWN, SQW_LOAD, SQW_EXEC, SQW_EXECUTE,
				     SQW_CALL, SQW_DO, SQW_RENAME, SQW_REPLACE, SQW_NONE };
/* what the other signals look for, besides delay functions and credential catalogs */
static const uint8_t signal_words[] = { SQW_OR, SQW__PIPES, SQW_UNION, SQW__COMMENT, SQW_WAITFOR, SQW_DBMS_LOCK,
					SQW_MYSQL, SQW_NONE };

/* every signal needs one of these */
static struct sq_wordset gate_words = SQ_WORDSET(signal_words, delay_fns, cred_catalogs);

static int word_in(const struct an_stmt *st, int i, const uint8_t *ids)
{
	return i >= st->first && i < st->end && sq_kw_in(&st->toks[i], ids);
}

/* Does [from, to) read a catalog (catalog name as a bare word, or mysql.user)? */
static int reads_catalog(const struct an_stmt *st, int from, int to, int cred_only)
{
	for (int i = from; i < to; i++) {
		if (word_in(st, i, cred_only ? cred_catalogs : catalogs)) {
			if (det_word(st, i, "mysql")) {
				int d = det_next(st, i), u = det_next(st, d);
				if (!(det_punct(st, d, '.') && (det_word(st, u, "user") || det_word(st, u, "db") || !cred_only)))
					continue;
			}
			return 1;
		}
		if (cred_only && det_word(st, i, "mysql") && det_punct(st, det_next(st, i), '.') &&
		    det_word(st, det_next(st, det_next(st, i)), "user"))
			return 1;
	}
	return 0;
}

/* The comment that cut the statement short, reduced to its keywords and operators: what it
 * removed is application text (maybe a password literal), so everything else becomes '?'. */
static void mask_comment(const struct an_stmt *st, const struct sq_tok *t, char *out, size_t cap)
{
	struct sq_tok sub[48];
	const char *p = st->base + t->off;
	size_t skip = (t->len >= 2 && (p[0] == '-' || p[0] == '/')) ? 2 : 1, o = 0;
	int tr, n = sq_lex(p + skip, t->len - skip, st->s->dialect, sub, 48, &tr);
	o = (size_t)snprintf(out, cap, "%.*s", (int)skip, p);
	for (int i = 0; i < n && o + 16 < cap; i++) {
		const struct sq_tok *k = &sub[i];
		const char *kp = p + skip + k->off;
		int keep = (k->type == SQ_WORD && sq_is_keyword(kp, k->len)) ||
			   ((k->type == SQ_OP || k->type == SQ_PUNCT) && k->len <= 3);
		if (keep)
			o += (size_t)snprintf(out + o, cap - o, " %.*s", (int)k->len, kp);
		else
			o += (size_t)snprintf(out + o, cap - o, " ?");
	}
}

static void sqli_statement(struct an *an, const struct an_stmt *st)
{
	if (!st->toks || st->end <= st->first)
		return;
	/* every signal needs one of these words, a comment, or a part stacked behind another:
	 * most statements have none and end here */
	const struct sq_info *in = st->info;
	if (in && st->part == 0 && !sq_has_set(in, &gate_words))
		return;
	const char *signals[8];
	int ns = 0, tautologies = 0, unions = 0;
	int trunc_comment = 0, delay = 0, stacked = 0, cred = 0;
	char taut_text[64] = "", cut[96] = "";
	int taut_at = -1, taut_end = -1, union_at = -1, union_end = -1; /* for the baseline check */

	for (int i = st->first; i < st->end; i++) {
		const struct sq_tok *t = det_tok(st, i);
		/* OR <always-true>: WHERE 1=1 AND ... (query builders) deliberately does not count */
		if (is_or(st, i)) {
			int k = det_next(st, i);
			while (det_punct(st, k, '('))
				k = det_next(st, k);
			int after = tautology_at(st, k);
			if (after >= 0) {
				tautologies++;
				if (taut_at < 0)
					taut_at = i, taut_end = after;
				int last = det_prev(st, after);
				if (!taut_text[0] && last >= i)
					sq_mask(st->base, st->toks, i, last + 1, an->cfg.keep_literals,
						st->info && st->info->secret, taut_text, sizeof taut_text);
			}
		}
		if (det_word(st, i, "UNION")) {
			int k = det_next(st, i);
			if (det_word(st, k, "ALL") || det_word(st, k, "DISTINCT"))
				k = det_next(st, k);
			while (det_punct(st, k, '('))
				k = det_next(st, k);
			if (det_word(st, k, "SELECT")) {
				/* what the added SELECT reads: literal/NULL padding, system functions, catalogs */
				int depth = det_tok(st, k)->depth, items = 0, lits = 0, sys = 0, j;
				for (j = det_next(st, k); j < st->end; j = det_next(st, j)) {
					const struct sq_tok *u = det_tok(st, j);
					if (u->depth == depth && (det_word(st, j, "FROM") || det_word(st, j, "UNION") ||
								  det_word(st, j, "WHERE")))
						break;
					if (u->depth == depth && det_punct(st, j, ','))
						continue;
					if (u->depth == depth && (sq_is_literal(u) || det_word(st, j, "NULL")))
						lits++;
					if (word_in(st, j, sys_fns) || (u->type == SQ_VAR && u->len > 2 &&
									  st->base[u->off + 1] == '@'))
						sys++;
					items++;
				}
				int upto = j;
				while (upto < st->end && !(det_tok(st, upto)->depth < depth))
					upto++;
				if (union_at < 0)
					union_at = i, union_end = upto;
				/* catalog queries that union catalogs (psql's \d, ORM introspection)
				 * are tools, not injection: only a UNION added to a non-catalog read counts */
				int tool = reads_catalog(st, st->first, i, 0);
				/* an emptied SELECT in front: a UNION the application is not known to send
				 * (a tree query's parent_id = -1 would be, once learned) */
				if (!tool && ((items >= 1 && lits == items) || sys || reads_catalog(st, k, upto, 0) ||
					      (emptied(st, st->first, i) && !bl_shape_known(an, st))))
					unions++;
				else
					unions += 0x100; /* plain UNION: counts only with another signal */
			}
		}
		if (t->type == SQ_WORD && word_in(st, i, delay_fns) && det_punct(st, det_next(st, i), '('))
			delay++;
		if (det_word(st, i, "WAITFOR") && det_word(st, det_next(st, i), "DELAY"))
			delay++;
		if (det_word(st, i, "dbms_lock") && det_punct(st, det_next(st, i), '.'))
			delay++;
		if (t->type == SQ_COMMENT) {
			int p = det_prev(st, i);
			int after = det_next(st, i);
			int unterminated_block = !(t->flags & SQ_F_LINE) && (t->flags & SQ_F_UNTERMINATED);
			if (p >= st->first && det_tok(st, p)->type == SQ_STRING && after >= st->end &&
			    ((t->flags & SQ_F_LINE) || unterminated_block)) {
				const struct sq_tok *q = det_tok(st, p);
				int adjacent = q->off + q->len == t->off;
				int quoted = memchr(st->base + t->off, '\'', t->len) || memchr(st->base + t->off, '"', t->len);
				if ((adjacent || quoted || unterminated_block) && !trunc_comment++)
					mask_comment(st, t, cut, sizeof cut);
			}
		}
	}
	if (an_is_service_account(&an->cfg, st->s->db_user) && reads_catalog(st, st->first, st->end, 1))
		cred++;
	if (st->part > 0 && st->first_verb && (!strcmp(st->first_verb, "SELECT") || !strcmp(st->first_verb, "WITH"))) {
		int v = det_verb_index(st);
		/* a piggy-backed write, or a catalog read (schema discovery) behind a SELECT */
		if ((v >= 0 && word_in(st, v, dangerous)) || reads_catalog(st, st->first, st->end, 0))
			stacked++;
	} else if (st->part > 0 && st->first_verb &&
		   (!strcmp(st->first_verb, "UPDATE") || !strcmp(st->first_verb, "INSERT") ||
		    !strcmp(st->first_verb, "DELETE"))) {
		/* DDL or a grant behind an application's write (UPDATE ... '; DROP TABLE ...);
		 * writes behind writes are batches and stay quiet */
		int v = det_verb_index(st);
		if (v >= 0 && word_in(st, v, after_write))
			stacked++;
	}
	int strong = tautologies || delay || trunc_comment || stacked || cred || (unions & 0xff);
	if (!strong)
		return;
	if (tautologies)
		signals[ns++] = "tautology";
	if (unions & 0xff || (unions && strong))
		signals[ns++] = "union_select";
	if (delay)
		signals[ns++] = "time_delay";
	if (trunc_comment)
		signals[ns++] = "comment_truncation";
	if (stacked)
		signals[ns++] = "stacked_statement";
	if (cred)
		signals[ns++] = "credential_catalog";

	cJSON *ev = an_evidence_stmt(st, signals[0]);
	cJSON *arr = cJSON_AddArrayToObject(ev, "signals");
	for (int i = 0; i < ns; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(signals[i]));
	if (taut_text[0])
		cJSON_AddStringToObject(ev, "tautology", taut_text);
	if (cut[0])
		cJSON_AddStringToObject(ev, "truncating_comment", cut);
	if (stacked && st->first_verb)
		cJSON_AddStringToObject(ev, "stacked_after", st->first_verb);
	/* a shape this db_user/application normally sends, plus the tautology or UNION: far
	 * stronger evidence than either alone (learned baseline) */
	enum an_severity sev = an->cfg.severity[AN_K_SQL_INJECTION];
	char known_fp[17];
	if ((taut_at >= 0 && bl_known_without(an, st, taut_at, taut_end, known_fp)) ||
	    (union_at >= 0 && bl_known_without(an, st, union_at, union_end, known_fp))) {
		cJSON_AddStringToObject(ev, "baseline_shape", known_fp);
		cJSON_AddStringToObject(ev, "confidence", "high");
		if (sev < AN_SEV_CRITICAL)
			sev++;
	}
	char summary[256], sig[96] = "", sql[120];
	for (int i = 0; i < ns; i++) {
		strncat(sig, i ? ", " : "", sizeof sig - strlen(sig) - 1);
		strncat(sig, signals[i], sizeof sig - strlen(sig) - 1);
	}
	det_sql_excerpt(st, sql, sizeof sql);
	an_fmt(summary, sizeof summary, "possible SQL injection (%s) by %s: %s", sig, det_who(st), sql);
	an_stmt_finding(an, st, AN_K_SQL_INJECTION, sev, summary, ev);
}

const struct an_detector det_sql_injection = {
	.name = "sql_injection",
	.kind = AN_K_SQL_INJECTION,
	.on_statement = sqli_statement,
};
