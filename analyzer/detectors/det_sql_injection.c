/* sql_injection: token-stream heuristics on the statement text (never on bound parameters,
 * which are data): OR-tautologies and constant predicates behind AND/OR (sqlmap's boolean
 * probes), UNION SELECT probes (padding, system functions, catalogs, or an application SELECT
 * emptied on purpose in front), blind-extraction functions (ORD(MID(, ASCII(SUBSTRING(),
 * CHR()|| chains and 0x markers inside CONCAT, error-based forms (FLOOR(RAND(0)*2),
 * EXTRACTVALUE, UPDATEXML, GTID_SUBSET, JSON_KEYS, EXP(~), ORDER BY n column probes,
 * catalog reads inside a subquery, credential catalog reads by service accounts,
 * time-delay functions, dangerous stacked statements, comment truncation.
 *
 * And by structure: a service account's (or an application's) statements have few shapes.
 * Each clean shape it sends is indexed by the tokens in front of each literal slot; a later
 * statement that starts like a known shape up to a slot and ends like it after the slot,
 * but holds code where the literal was (a subquery, a boolean tail, ORDER BY, UNION, a
 * stacked statement, or a comment that cut the rest off), names the slot and what
 * replaced it.
 *
 * Cost: one pass over the tokens; UNIONs judged in full are capped (SQLI_MAX_UNIONS) and
 * comments need no look-around, so hostile statements stay linear. The constant predicates
 * are in sqli_predicates.c, the index of known shapes in sqli_shapes.c. */
#include <stdlib.h>
#include <strings.h>

#include "baseline.h"
#include "sqli_int.h"

/* ---- word tests by text, for functions the lexer has no id for ---- */
static int word_is(const struct an_stmt *st, int i, const char *const *list)
{
	if (i < st->first || i >= st->end || det_tok(st, i)->type != SN_WORD)
		return 0;
	for (int k = 0; list[k]; k++)
		if (sn_word(st->base, det_tok(st, i), list[k]))
			return 1;
	return 0;
}

static const char *const extract_outer[] = { "ORD", "ASCII", "UNICODE", NULL };
static const char *const extract_inner[] = { "MID", "SUBSTR", "SUBSTRING", "LEFT", "RIGHT", NULL };
static const char *const concat_fns[] = { "CONCAT", "CONCAT_WS", "MAKE_SET", "ELT", NULL };
static const char *const xml_err_fns[] = { "EXTRACTVALUE", "UPDATEXML", NULL };
/* catalogs and system functions beyond the lexer's ids: what fingerprinting reads */
static const char *const more_catalogs[] = { "pg_attribute", "pg_class", "pg_namespace", "pg_database", "pg_proc",
					     "pg_stat_activity", "pg_settings", "sysibm", "sqlite_master", NULL };
static const char *const more_sys_fns[] = { "current_schema", "current_schemas", "database", "schema", "user",
					    "current_setting", "inet_client_addr", "pg_backend_pid", "connection_id",
					    "uuid", "aurora_version", "quote_ident", NULL };

/* Does the word look like a credentials column (password, pwd, hash, token, secret...)? */
static int credential_word(const struct an_stmt *st, int i)
{
	static const char *const parts[] = { "pass", "pwd", "hash", "secret", "token", "salt", "credential",
					     "authentication_string", "api_key", "apikey", NULL };
	const struct sn_tok *t = det_tok(st, i);
	if ((t->type != SN_WORD && t->type != SN_QIDENT) || t->len > 64)
		return 0;
	char w[65];
	for (uint32_t k = 0; k < t->len; k++) {
		char c = st->base[t->off + k];
		w[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	w[t->len] = 0;
	for (int k = 0; parts[k]; k++)
		if (strstr(w, parts[k]))
			return 1;
	return 0;
}

/* A hex literal whose bytes are printable text (sqlmap's 0x71766a7a71 markers). */
static int hex_text(const struct an_stmt *st, int i)
{
	const struct sn_tok *t = det_tok(st, i);
	const char *p = st->base + t->off;
	if (t->type != SN_NUMBER || t->len < 4 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X') || (t->len - 2) % 2)
		return 0;
	for (uint32_t k = 2; k + 1 < t->len; k += 2) {
		int v = 0;
		for (int d = 0; d < 2; d++) {
			char c = p[k + (uint32_t)d];
			int x = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
			if (x < 0)
				return 0;
			v = v * 16 + x;
		}
		if (v < 0x20 || v > 0x7e)
			return 0;
	}
	return 1;
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
			if (k < to && sqli_falsehood_at(st, k))
				return 1;
		}
		if (det_op(st, j, "=") && j > from && det_tok(st, det_prev(st, j))->type == SN_WORD) {
			int m = det_next(st, j), v = det_next(st, m);
			if (m < to && v < to && det_op(st, m, "-") && det_tok(st, v)->type == SN_NUMBER)
				return 1;
		}
	}
	return 0;
}

static const uint8_t delay_fns[] = { SNW_PG_SLEEP, SNW_PG_SLEEP_FOR, SNW_PG_SLEEP_UNTIL, SNW_SLEEP, SNW_BENCHMARK,
				     SNW_NONE };
static const uint8_t sys_fns[] = { SNW_VERSION, SNW_USER, SNW_CURRENT_USER, SNW_SESSION_USER, SNW_SYSTEM_USER,
				   SNW_DATABASE, SNW_SCHEMA, SNW_CURRENT_DATABASE, SNW_LOAD_FILE, SNW_INET_SERVER_ADDR,
				   SNW_NONE };
static const uint8_t cred_catalogs[] = { SNW_PG_SHADOW, SNW_PG_AUTHID, SNW_PG_USER_MAPPINGS, SNW_NONE };
static const uint8_t catalogs[] = { SNW_PG_CATALOG, SNW_INFORMATION_SCHEMA, SNW_PG_SHADOW, SNW_PG_AUTHID, SNW_MYSQL,
				    SNW_PG_USER, SNW_PG_ROLES, SNW_PG_TABLES, SNW_PERFORMANCE_SCHEMA, SNW_NONE };
/* stacked behind a write, what an application never sends in the same message */
static const uint8_t after_write[] = { SNW_DROP, SNW_TRUNCATE, SNW_ALTER, SNW_CREATE, SNW_GRANT, SNW_REVOKE,
				       SNW_COPY, SNW_SHUTDOWN, SNW_LOAD, SNW_RENAME, SNW_DO, SNW_NONE };
static const uint8_t dangerous[] = { SNW_DROP, SNW_DELETE, SNW_UPDATE, SNW_INSERT, SNW_TRUNCATE, SNW_ALTER, SNW_CREATE,
				     SNW_GRANT, SNW_REVOKE, SNW_COPY, SNW_SHUTDOWN, SNW_LOAD, SNW_EXEC, SNW_EXECUTE,
				     SNW_CALL, SNW_DO, SNW_RENAME, SNW_REPLACE, SNW_NONE };
/* every signal needs one of these */
/* what the word-based signals look for, besides delay functions and credential catalogs */
static const uint8_t signal_words[] = { SNW_OR, SNW__PIPES, SNW_UNION, SNW__COMMENT, SNW_WAITFOR, SNW_DBMS_LOCK,
					SNW_MYSQL, SNW_NONE };
static struct sn_wordset gate_words = SN_WORDSET(signal_words, delay_fns, cred_catalogs);

/* catalog_ref's words by id, one bit test: it runs on every token of an injected part */
static struct sn_wordset catalog_words = SN_WORDSET(catalogs, sys_fns);

static int word_in(const struct an_stmt *st, int i, const uint8_t *ids)
{
	return i >= st->first && i < st->end && sn_kw_in(&st->toks[i], ids);
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
static void mask_comment(const struct an_stmt *st, const struct sn_tok *t, char *out, size_t cap)
{
	struct sn_tok sub[48];
	const char *p = st->base + t->off;
	size_t skip = (t->len >= 2 && (p[0] == '-' || p[0] == '/')) ? 2 : 1, o = 0;
	int tr, n = sn_lex(p + skip, t->len - skip, st->s->dialect, sub, 48, &tr);
	o = (size_t)snprintf(out, cap, "%.*s", (int)skip, p);
	for (int i = 0; i < n && o + 16 < cap; i++) {
		const struct sn_tok *k = &sub[i];
		const char *kp = p + skip + k->off;
		int keep = (k->type == SN_WORD && sn_is_keyword(kp, k->len)) ||
			   ((k->type == SN_OP || k->type == SN_PUNCT) && k->len <= 3);
		if (keep)
			o += (size_t)snprintf(out + o, cap - o, " %.*s", (int)k->len, kp);
		else
			o += (size_t)snprintf(out + o, cap - o, " ?");
	}
}


/* Is token i a catalog or system-function reference (what fingerprinting reads)? Words the
 * lexer knows by id are compared as integers; text lists only for pg_/sys/sqlite names and
 * for calls. */
static int catalog_ref(const struct an_stmt *st, int i)
{
	const struct sn_tok *t = det_tok(st, i);
	if (t->type == SN_VAR && t->len > 2 && st->base[t->off + 1] == '@')
		return 1; /* @@version, @@hostname */
	if (t->type != SN_WORD)
		return 0;
	if (t->kw != SNW_NONE) {
		if (!atomic_load_explicit(&catalog_words.ready, memory_order_acquire))
			sn_wordset_build(&catalog_words);
		if (!((catalog_words.w[t->kw >> 6] >> (t->kw & 63)) & 1))
			return 0; /* in neither list: none of the tests below can hold */
		if (t->kw == SNW_MYSQL)
			return det_punct(st, det_next(st, i), '.');
		if (sn_kw_in(t, catalogs))
			return 1;
		if (sn_kw_in(t, sys_fns) && det_punct(st, det_next(st, i), '('))
			return 1;
		/* PostgreSQL's CURRENT_USER / SESSION_USER without parentheses */
		return (t->kw == SNW_CURRENT_USER || t->kw == SNW_SESSION_USER) && !det_op(st, det_prev(st, i), "=");
	}
	if (t->len < 4)
		return 0;
	char c0 = (char)(st->base[t->off] | 0x20), c1 = (char)(st->base[t->off + 1] | 0x20);
	if (((c0 == 'p' && c1 == 'g') || (c0 == 's' && (c1 == 'y' || c1 == 'q'))) && word_is(st, i, more_catalogs))
		return 1;
	return det_punct(st, det_next(st, i), '(') && word_is(st, i, more_sys_fns);
}

/* What the injected part [from, to) reaches: another table, a credentials column, the
 * catalog. Fills the evidence; returns 1 when any (critical). */
static int damage(const struct an_stmt *st, int from, int to, cJSON *ev)
{
	int cat = 0, cred = 0, tab = 0;
	char table[64] = "", column[64] = "";
	for (int i = from; i < to; i++) {
		const struct sn_tok *t = det_tok(st, i);
		if (t->type == SN_COMMENT)
			continue;
		if (!cat && catalog_ref(st, i))
			cat = 1;
		if (cat && cred && tab)
			break;
		if (!cred && t->kw == SNW_NONE && credential_word(st, i)) {
			cred = 1;
			snprintf(column, sizeof column, "%.*s", (int)(t->len < 63 ? t->len : 63), st->base + t->off);
		}
		if (!tab && det_word(st, i, "FROM")) {
			int k = det_next(st, i);
			if (k < to && (det_tok(st, k)->type == SN_WORD || det_tok(st, k)->type == SN_QIDENT) &&
			    !det_punct(st, det_next(st, k), '(') && !sn_is_keyword(st->base + det_tok(st, k)->off, det_tok(st, k)->len)) {
				int e = k;
				if (det_punct(st, det_next(st, k), '.'))
					e = det_next(st, det_next(st, k));
				tab = 1;
				int len = (int)(det_tok(st, e)->off + det_tok(st, e)->len - det_tok(st, k)->off);
				snprintf(table, sizeof table, "%.*s", len < 63 ? len : 63, st->base + det_tok(st, k)->off);
			}
		}
	}
	if (!cat && !cred && !tab)
		return 0;
	cJSON *d = cJSON_AddArrayToObject(ev, "reaches");
	if (tab)
		cJSON_AddItemToArray(d, cJSON_CreateString("table"));
	if (cred)
		cJSON_AddItemToArray(d, cJSON_CreateString("credentials_column"));
	if (cat)
		cJSON_AddItemToArray(d, cJSON_CreateString("catalog"));
	if (table[0])
		cJSON_AddStringToObject(ev, "table", table);
	if (column[0])
		cJSON_AddStringToObject(ev, "column", column);
	return 1;
}

#define SIG(name)                                                           \
	do {                                                                \
		int dup_ = 0;                                               \
		for (int s_ = 0; s_ < ns; s_++)                             \
			dup_ |= !strcmp(signals[s_], name);                 \
		if (!dup_ && ns < (int)(sizeof signals / sizeof signals[0])) \
			signals[ns++] = name;                               \
	} while (0)

/* Functions whose call the token rules judge (by text: the lexer has no id for them). */
static const char *const hint_fns[] = { "ORD", "ASCII", "UNICODE", "CHR", "CONCAT", "CONCAT_WS", "ELT", "MAKE_SET",
					"EXTRACTVALUE", "UPDATEXML", "FLOOR", "GTID_SUBSET", "JSON_KEYS", "EXP", NULL };

/* Could any token rule fire? One tight pass over token types for what the word set of
 * sn_info cannot tell: a literal compared with a literal (2407=2407), a call of one of
 * hint_fns, ORDER BY <number>. Most statements have none and skip the full pass. */
static int quick_hint(const struct an_stmt *st)
{
	for (int i = st->first + 1; i + 1 < st->end; i++) {
		const struct sn_tok *t = &st->toks[i];
		if (t->type == SN_OP) {
			if (sn_is_literal(t - 1) && sn_is_literal(t + 1))
				return 1;
		} else if (t->type == SN_WORD && t->len >= 3 && t->len <= 12 && t[1].type == SN_PUNCT &&
			   st->base[t[1].off] == '(') {
			char c = (char)(st->base[t->off] & ~0x20);
			if ((c == 'O' || c == 'A' || c == 'U' || c == 'C' || c == 'E' || c == 'M' || c == 'F' || c == 'G' ||
			     c == 'J') &&
			    word_is(st, i, hint_fns))
				return 1;
		} else if (t->type == SN_NUMBER && i >= st->first + 2 && sn_kw(t - 1, SNW_BY) && sn_kw(t - 2, SNW_ORDER)) {
			return 1;
		}
	}
	return 0;
}

static void sqli_statement(struct an *an, const struct an_stmt *st)
{
	if (!st->toks || st->end <= st->first)
		return;
	const struct sn_info *in = st->info;
	int hint = st->part > 0 || !in || sn_has_set(in, &gate_words) || quick_hint(st);
	const char *signals[16];
	int ns = 0, tautologies = 0, unions = 0, n_unions = 0;
	int trunc_comment = 0, delay = 0, stacked = 0, cred = 0;
	char taut_text[64] = "", cut[96] = "";
	int taut_at = -1, taut_end = -1, union_at = -1, union_end = -1; /* for the baseline check */
	int region = st->end; /* where the injected part starts: damage is judged from there */
	int open_at[64];      /* '(' index by depth, for "argument of which function" */
	int last_real = st->first - 1, order_probe = -1, cat_top = 0, marker = 0;
	int svc = hint && an_is_service_account(&an->cfg, st->s->db_user);
	for (int i = st->end - 1; i >= st->first; i--)
		if (det_tok(st, i)->type != SN_COMMENT) {
			last_real = i;
			break;
		}

	for (int i = hint ? st->first : st->end; i < st->end; i++) {
		const struct sn_tok *t = det_tok(st, i);
		switch (t->type) {
		case SN_PUNCT:
			if (st->base[t->off] == '(' && t->depth < 64)
				open_at[t->depth] = i;
			continue;
		case SN_STRING:
		case SN_PARAM:
		case SN_QIDENT:
			continue;
		case SN_NUMBER:
			/* 0x71766a7a71 (text as hex) as an argument of CONCAT(...) */
			if (!marker && t->depth > 0 && t->depth <= 64 && hex_text(st, i) &&
			    word_is(st, det_prev(st, open_at[t->depth - 1]), concat_fns)) {
				SIG("marker_concat");
				marker = 1;
				region = region < i ? region : det_prev(st, open_at[t->depth - 1]);
			}
			continue;
		case SN_COMMENT: {
			if (i <= last_real)
				continue;
			/* a comment that ends the statement right after a literal: the rest of the
			 * application's text (its closing quote) was cut off */
			int p = last_real;
			int unterminated_block = !(t->flags & SN_F_LINE) && (t->flags & SN_F_UNTERMINATED);
			if (p < st->first || !((t->flags & SN_F_LINE) || unterminated_block))
				continue;
			const struct sn_tok *q = det_tok(st, p);
			int quotes = 0;
			for (uint32_t k = 0; k < t->len; k++)
				quotes += st->base[t->off + k] == '\'' || st->base[t->off + k] == '"';
			if (q->type == SN_STRING) {
				int adjacent = q->off + q->len == t->off;
				if ((adjacent || quotes || unterminated_block) && !trunc_comment++)
					mask_comment(st, t, cut, sizeof cut);
			} else if ((quotes & 1) && (svc || sn_is_literal(q) || det_punct(st, p, ')')) && !trunc_comment++) {
				mask_comment(st, t, cut, sizeof cut); /* ... AND 2407=2407-- x' ORDER BY ... */
			}
			/* ORDER BY 3-- fpvC: a column probe ends in a short tag or the cut-off quote;
			 * a reporting query's "-- newest first" is prose */
			if (order_probe >= 0 && (t->flags & SN_F_LINE)) {
				uint32_t b = st->base[t->off] == '#' ? 1 : 2, e = t->len, words = 0;
				while (b < e && (st->base[t->off + b] == ' ' || st->base[t->off + b] == '\t'))
					b++;
				while (e > b && (st->base[t->off + e - 1] == ' ' || st->base[t->off + e - 1] == '\r'))
					e--;
				for (uint32_t k = b; k < e; k++)
					words += st->base[t->off + k] == ' ';
				if (quotes || (e - b <= 8 && !words))
					SIG("order_by_probe");
			}
			continue;
		}
		default:
			break;
		}
		if (t->depth == 0 && sn_kw(t, SNW_FROM) && det_next(st, i) < st->end && catalog_ref(st, det_next(st, i)))
			cat_top = 1;
		/* OR <always-true>: WHERE 1=1 AND ... (query builders) deliberately does not count */
		int is_and = sn_kw(t, SNW_AND), is_orr = !is_and && sqli_is_or(st, i);
		if (is_and && taut_text[0])
			is_and = 0; /* one boolean probe named is enough: the rest add no evidence */
		/* likewise once an OR-tautology is counted and named: judging every later OR again
		 * (its literals unquoted and parsed up to three times) made "OR 1=1" repeated cost
		 * over 3x ordinary SQL of the same size */
		if (is_orr && tautologies && taut_text[0])
			is_orr = 0;
		if (is_orr || is_and) {
			int k = det_next(st, i), neg = 0;
			while (det_punct(st, k, '(') || det_word(st, k, "NOT")) {
				neg ^= det_word(st, k, "NOT");
				k = det_next(st, k);
			}
			int after = is_orr ? sqli_tautology_at(st, k) : -1, simple, small;
			if (after < 0) {
				int e = sqli_const_pred(st, k, &simple, &small);
				if (e >= 0) {
					int truth = simple && is_orr ? sqli_literal_cmp(st, k) : -1;
					if (truth >= 0 && neg)
						truth = !truth;
					if (is_orr && !(truth == 0 && small)) /* OR 2407=2407, OR 1::int=1 */
						after = e;
					else if (is_and && !small && !det_word(st, det_prev(st, i), "BETWEEN")) {
						SIG("boolean_probe"); /* AND 2407=2407, AND 'OBZv'='OBZv', AND NOT 1=2 */
						region = region < i ? region : i;
						if (!taut_text[0])
							sn_mask(st->base, st->toks, i, e, an->cfg.keep_literals,
								st->info && st->info->secret, taut_text, sizeof taut_text);
					}
				}
			}
			if (after >= 0) {
				tautologies++;
				region = region < i ? region : i;
				if (taut_at < 0)
					taut_at = i, taut_end = after;
				int last = det_prev(st, after);
				if (!taut_text[0] && last >= i)
					sn_mask(st->base, st->toks, i, last + 1, an->cfg.keep_literals,
						st->info && st->info->secret, taut_text, sizeof taut_text);
			}
		}
		if (sn_kw(t, SNW_UNION) && n_unions++ < SQLI_MAX_UNIONS) {
			int k = det_next(st, i);
			if (det_word(st, k, "ALL") || det_word(st, k, "DISTINCT"))
				k = det_next(st, k);
			while (det_punct(st, k, '('))
				k = det_next(st, k);
			if (det_word(st, k, "SELECT")) {
				/* what the added SELECT reads: literal/NULL padding, system functions, catalogs */
				int depth = det_tok(st, k)->depth, items = 0, lits = 0, sys = 0, j;
				for (j = det_next(st, k); j < st->end; j = det_next(st, j)) {
					const struct sn_tok *u = det_tok(st, j);
					if (u->depth == depth && (det_word(st, j, "FROM") || det_word(st, j, "UNION") ||
								  det_word(st, j, "WHERE")))
						break;
					if (u->depth == depth && det_punct(st, j, ','))
						continue;
					if (u->depth == depth && (sn_is_literal(u) || det_word(st, j, "NULL")))
						lits++;
					if (word_in(st, j, sys_fns) || (u->type == SN_VAR && u->len > 2 &&
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
					      (emptied(st, st->first, i) && !bl_shape_known(an, st)))) {
					unions++;
					region = region < i ? region : i;
				} else {
					unions += 0x100; /* plain UNION: counts only with another signal */
				}
			}
		}
		if (t->type != SN_WORD && t->type != SN_OP)
			continue;
		int call = det_punct(st, det_next(st, i), '(');
		if (call && word_in(st, i, delay_fns)) {
			delay++;
			region = region < i ? region : i;
		}
		if (det_word(st, i, "WAITFOR") && det_word(st, det_next(st, i), "DELAY"))
			delay++;
		if (det_word(st, i, "dbms_lock") && det_punct(st, det_next(st, i), '.'))
			delay++;
		if (!call && !(t->type == SN_WORD && det_word(st, i, "ORDER")) && !det_op(st, i, "||"))
			continue;
		int a1 = det_next(st, det_next(st, i)); /* first token inside the parentheses */
		if (word_is(st, i, extract_outer) && word_is(st, a1, extract_inner) && det_punct(st, det_next(st, a1), '(') &&
		    det_punct(st, det_next(st, det_next(st, a1)), '(')) {
			SIG("blind_extraction"); /* ORD(MID((SELECT ...),1,1)), ASCII(SUBSTRING((...)::text FROM 1 FOR 1)) */
			region = region < i ? region : i;
		} else if (det_word(st, i, "CHR") && det_op(st, det_next(st, det_next(st, det_next(st, det_next(st, i)))), "||") &&
			   det_word(st, det_next(st, det_next(st, det_next(st, det_next(st, det_next(st, i))))), "CHR")) {
			/* CHR(113)||CHR(120)||...: text built from character codes */
			int n = 0, j = i;
			while (n < 3 && det_word(st, j, "CHR")) {
				n++;
				j = det_next(st, det_next(st, det_next(st, det_next(st, j))));
				if (det_op(st, j, "||"))
					j = det_next(st, j);
			}
			if (n >= 3) {
				SIG("char_concat");
				region = region < i ? region : i;
			}
		} else if (word_is(st, i, xml_err_fns) && a1 < st->end && (det_tok(st, a1)->type == SN_NUMBER ||
									  word_is(st, a1, concat_fns))) {
			SIG("error_based"); /* EXTRACTVALUE(4312, CONCAT(0x5c, ...)) */
			region = region < i ? region : i;
		} else if ((det_word(st, i, "FLOOR") && det_word(st, a1, "RAND") && det_punct(st, det_next(st, a1), '(') &&
			    det_tok(st, det_next(st, det_next(st, a1)))->type == SN_NUMBER) ||
			   (det_word(st, i, "GTID_SUBSET") && word_is(st, a1, concat_fns)) ||
			   (det_word(st, i, "JSON_KEYS") && det_punct(st, a1, '(') && det_word(st, det_next(st, a1), "SELECT")) ||
			   (det_word(st, i, "EXP") && det_op(st, a1, "~"))) {
			SIG("error_based"); /* FLOOR(RAND(0)*2) ... GROUP BY, GTID_SUBSET(CONCAT(...)), EXP(~(...)) */
			region = region < i ? region : i;
		} else if (det_word(st, i, "ORDER") && det_word(st, det_next(st, i), "BY") &&
			   det_tok(st, det_next(st, det_next(st, i)))->type == SN_NUMBER &&
			   det_next(st, det_next(st, det_next(st, i))) > last_real) {
			order_probe = i; /* ORDER BY 3-- -: judged at the comment */
			region = region < i ? region : i;
		}
	}
	if (hint && svc && reads_catalog(st, st->first, st->end, 1))
		cred++;
	/* a catalog or system function inside a subquery of a statement that reads no catalog
	 * at its top (schema discovery through an injected subquery) */
	if (!cat_top && (ns || tautologies || (unions & 0xff) || delay)) {
		for (int i = st->first; i < st->end; i++)
			if (det_tok(st, i)->depth > 0 && det_tok(st, i)->type == SN_WORD && catalog_ref(st, i)) {
				SIG("catalog_subquery");
				break;
			}
	}
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
	if (stacked || delay || cred)
		region = st->first < region ? st->first : region;

	/* by structure: a known shape of this identity with a slot replaced by code */
	struct slot_hit hit = { 0 };
	int structural = 0;
	uint64_t id = 0;
	if (st->part == 0 && in && !in->truncated) {
		struct sqli_state *c = an->sqli ? an->sqli : sqli_state_get(an, 0);
		unsigned slot = (unsigned)st->s->id & 63;
		if (c && c->idc[slot].sid == st->s->id && c->idc[slot].gen == st->s->ident_gen) {
			id = c->idc[slot].id;
		} else {
			id = sqli_identity(an, st->s);
			if (c) {
				c->idc[slot].sid = st->s->id;
				c->idc[slot].gen = st->s->ident_gen;
				c->idc[slot].id = id;
			}
		}
	}
	struct sqli_state *q = id ? sqli_state_get(an, st->end - st->first) : NULL;
	uint64_t shape_key = q ? sqli_mix(id, in->hash) : 0;
	/* a failed statement is judged even when its shape is known: an open quote at a slot
	 * normalises like the clean literal */
	int n_real = 0, known_shape = q && st->outcome != EV_OUT_ERROR ? sqli_shape_seen(q, shape_key, 0) : 0;
	if (q && !known_shape) {
		n_real = sqli_hash_tokens(st, q);
		structural = sqli_slot_replaced(an, st, q, id, n_real, trunc_comment || (last_real < st->end - 1 &&
								 (det_tok(st, st->end - 1)->flags & SN_F_LINE)),
					   st->outcome == EV_OUT_ERROR && sqli_injection_error(st->error_code), &hit);
		if (structural)
			region = region < hit.from ? region : hit.from;
	}

	int strong = tautologies || delay || trunc_comment || stacked || cred || (unions & 0xff) || ns || structural;
	if (!strong) {
		/* a clean statement: its slots become known (not after an error: probes fail; not
		 * the head of a stacked message: 'books';SELECT ... leaves 'books' alone) */
		if (q && !known_shape && st->outcome != EV_OUT_ERROR && st->n_parts <= 1) {
			sqli_shape_seen(q, shape_key, 1);
			sqli_index_shape(q, id, in->hash, n_real, st);
		}
		return;
	}
	const char *extra[16];
	int ne = 0;
	for (int i = 0; i < ns; i++)
		extra[ne++] = signals[i];
	ns = 0;
	if (tautologies)
		SIG("tautology");
	if (unions & 0xff || (unions && strong))
		SIG("union_select");
	if (delay)
		SIG("time_delay");
	if (trunc_comment)
		SIG("comment_truncation");
	if (stacked)
		SIG("stacked_statement");
	if (cred)
		SIG("credential_catalog");
	for (int i = 0; i < ne; i++)
		SIG(extra[i]);
	if (structural)
		SIG("slot_replaced");

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
	if (structural) {
		char before[96], repl[160], shape[17];
		int b0 = hit.from;
		for (int k = 0; k < 3 && det_prev(st, b0) >= st->first; k++)
			b0 = det_prev(st, b0);
		sn_mask(st->base, st->toks, b0, hit.from, 0, 0, before, sizeof before);
		sn_mask(st->base, st->toks, hit.from, hit.to, an->cfg.keep_literals, st->info && st->info->secret, repl,
			sizeof repl);
		snprintf(shape, sizeof shape, "%016llx", (unsigned long long)hit.e->shape);
		cJSON *o = cJSON_AddObjectToObject(ev, "slot");
		cJSON_AddNumberToObject(o, "literal", hit.e->ord);
		cJSON_AddStringToObject(o, "after", before);
		cJSON_AddStringToObject(o, "replaced_by", hit.what);
		cJSON_AddStringToObject(o, "replacement", repl);
		cJSON_AddStringToObject(o, "known_shape", shape);
	}
	/* severity follows the damage: reaching another table, a credentials column or the
	 * catalog is critical; a probe stays at the configured severity (high) */
	enum an_severity sev = an->cfg.severity[AN_K_SQL_INJECTION];
	int harm = damage(st, region < st->first ? st->first : region, st->end, ev) || cred ||
		   (stacked && !delay);
	/* a shape this db_user/application normally sends, plus the tautology or UNION: far
	 * stronger evidence than either alone (learned baseline) */
	char known_fp[17];
	if ((taut_at >= 0 && bl_known_without(an, st, taut_at, taut_end, known_fp)) ||
	    (union_at >= 0 && bl_known_without(an, st, union_at, union_end, known_fp))) {
		cJSON_AddStringToObject(ev, "baseline_shape", known_fp);
		if (sev < AN_SEV_CRITICAL)
			sev++;
	}
	if (structural || cJSON_GetObjectItemCaseSensitive(ev, "baseline_shape"))
		cJSON_AddStringToObject(ev, "confidence", "high");
	/* one actor's sequence is one attack: past SQLI_CAMPAIGN injections within a minute it
	 * is a tool working through its payloads (sqlmap sends hundreds), about to read data */
	char actor[AN_STR_MAX];
	if (st->end_user)
		an_fmt(actor, sizeof actor, "%s", st->end_user);
	else
		an_fmt(actor, sizeof actor, "%s|%s|%s", st->s->client_ip, st->s->db_user, st->s->application);
	struct an_keyed *k = an_keyed_get(&an->eb, &an->n_eb, &an->cap_eb, 0x51, actor, st->done_ts);
	if (k) {
		an_window_add(&k->w, st->done_ts, 60 * 1000000LL);
		int n = an_window_count(&k->w, st->done_ts, 60 * 1000000LL);
		cJSON_AddNumberToObject(ev, "actor_injections_60s", n);
		if (n >= SQLI_CAMPAIGN) {
			cJSON_AddItemToArray(arr, cJSON_CreateString("campaign"));
			harm = 1;
		}
	}
	if (harm)
		sev = AN_SEV_CRITICAL;
	char summary[256], sig[96] = "", sql[120];
	for (int i = 0; i < ns; i++) {
		strncat(sig, i ? ", " : "", sizeof sig - strlen(sig) - 1);
		strncat(sig, signals[i], sizeof sig - strlen(sig) - 1);
	}
	det_sql_excerpt(st, sql, sizeof sql);
	an_fmt(summary, sizeof summary, "%s SQL injection (%s) by %s: %s", harm ? "data-reading" : "possible", sig,
	       det_who(st), sql);
	an_stmt_finding(an, st, AN_K_SQL_INJECTION, sev, summary, ev);
}


const struct an_detector det_sql_injection = {
	.name = "sql_injection",
	.kind = AN_K_SQL_INJECTION,
	.on_statement = sqli_statement,
	.on_free = sqli_free,
};
