/* Splitting a message at top-level ';' (routine bodies kept whole), and what a MySQL
 * SET sql_mode does to how the rest is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sn_int.h"

static int is_routine_start(const char *src, const struct sn_tok *toks, int first, int n)
{
	int words = 0;
	if (first >= n || !sn_word(src, &toks[first], "CREATE"))
		return 0;
	for (int i = first + 1; i < n && words < 8; i++) {
		if (toks[i].type == SN_COMMENT)
			continue;
		words++;
		if (sn_word(src, &toks[i], "FUNCTION") || sn_word(src, &toks[i], "PROCEDURE") ||
		    sn_word(src, &toks[i], "TRIGGER") || sn_word(src, &toks[i], "EVENT"))
			return 1;
	}
	return 0;
}

/* Does the BEGIN at i open a compound block of a routine body? BEGIN is no reserved word
 * (CREATE FUNCTION f(begin int) ... RETURN begin; DROP TABLE t is two statements), so it
 * opens one only at parenthesis depth 0, where a statement may start (not after an operator,
 * a comma or a word that wants an expression) and when a statement or ATOMIC follows. */
static int block_begin(const char *src, const struct sn_tok *toks, int i, int first, int n)
{
	static const uint8_t expr_before[] = { SNW_SELECT, SNW_WHERE, SNW_AND, SNW_OR, SNW_SET, SNW_BY, SNW_ON,
					       SNW_WHEN, SNW_NOT, SNW_IN, SNW_LIKE, SNW_AS, SNW_FROM, SNW_INTO,
					       SNW_VALUES, SNW_DISTINCT, SNW_IS, SNW_BETWEEN, SNW_CASE, SNW_USING,
					       SNW_NONE };
	if (toks[i].depth != 0)
		return 0;
	int k = next_code(toks, i + 1, n);
	if (k >= n || toks[k].type != SN_WORD || sn_kw(&toks[k], SNW_FROM) || sn_kw(&toks[k], SNW_AS) ||
	    sn_word(src, &toks[k], "RETURN"))
		return 0;
	int b = i - 1;
	while (b >= first && toks[b].type == SN_COMMENT)
		b--;
	if (b < first)
		return 1;
	const struct sn_tok *p = &toks[b];
	if (p->type == SN_OP)
		return p->len == 1 && src[p->off] == ':'; /* label: BEGIN */
	if (p->type == SN_PUNCT)
		return src[p->off] == ')' || src[p->off] == ';';
	return !(sn_kw_in(p, expr_before) || sn_word(src, p, "RETURN"));
}

int sn_split(const char *src, const struct sn_tok *toks, int n, struct sn_range *parts, int cap, int *more)
{
	int np = 0, start = 0;
	*more = 0;
	while (start < n && np < cap) {
		int first_code = next_code(toks, start, n);
		int routine = is_routine_start(src, toks, first_code, n);
		int bd = 0, i = start;
		/* The usual single statement, with or without a final ';': the first ';' byte
		 * of the rest of the text tells where the walk below would stop, so skip it. */
		const struct sn_tok *z = &toks[n - 1];
		const char *semi = memchr(src + toks[start].off, ';', (size_t)(z->off + z->len - toks[start].off));
		if (!semi)
			i = n;
		else if (!routine && semi == src + z->off && z->type == SN_PUNCT && z->depth == 0)
			i = n - 1;
		for (; i < n; i++) {
			const struct sn_tok *t = &toks[i];
			if (routine && t->type == SN_WORD) {
				if ((sn_kw(t, SNW_BEGIN) && block_begin(src, toks, i, first_code, n)) ||
				    (sn_kw(t, SNW_CASE) && bd > 0)) {
					bd++;
				} else if (sn_word(src, t, "END") && bd > 0) {
					int k = next_code(toks, i + 1, n);
					if (k < n && (sn_word(src, &toks[k], "IF") || sn_word(src, &toks[k], "LOOP") ||
						      sn_word(src, &toks[k], "WHILE") || sn_word(src, &toks[k], "REPEAT"))) {
						i = k;
						continue;
					}
					if (k < n && sn_word(src, &toks[k], "CASE"))
						i = k;
					bd--;
				}
			}
			if (t->type == SN_PUNCT && t->depth == 0 && src[t->off] == ';' && bd == 0)
				break;
		}
		/* the last allowed part swallows the rest */
		if (np == cap - 1 && i < n) {
			int k = next_code(toks, i + 1, n);
			if (k < n) {
				*more = 1;
				i = n;
			}
		}
		int end = i;
		if (first_code < end) {
			int last = end - 1;
			struct sn_range *r = &parts[np++];
			r->tok_first = start;
			r->tok_end = end;
			r->off = toks[start].off;
			r->len = toks[last].off + toks[last].len - toks[start].off;
		}
		start = i + 1;
	}
	return np;
}

/* One comma-separated item of a sql_mode value: NO_BACKSLASH_ESCAPES, ANSI_QUOTES and the
 * combination modes that include ANSI_QUOTES. */
static void sql_mode_item(const char *p, size_t n, unsigned *mode)
{
	static const char *const ansi[] = { "ANSI_QUOTES", "ANSI", "DB2", "MSSQL", "ORACLE", "POSTGRESQL", "MAXDB" };
	while (n && is_space((unsigned char)*p))
		p++, n--;
	while (n && is_space((unsigned char)p[n - 1]))
		n--;
	if (n == 20 && strncasecmp(p, "NO_BACKSLASH_ESCAPES", 20) == 0)
		*mode &= ~(unsigned)SN_M_BACKSLASH;
	for (size_t k = 0; k < sizeof ansi / sizeof ansi[0]; k++)
		if (strlen(ansi[k]) == n && strncasecmp(p, ansi[k], n) == 0)
			*mode |= SN_M_ANSI_QUOTES;
}

int sn_sets_sql_mode(const char *src, const struct sn_tok *t, int first, int end, unsigned *mode)
{
	int i = next_code(t, first, end), found = 0;
	if (i >= end || !sn_kw(&t[i], SNW_SET))
		return 0;
	i = next_code(t, i + 1, end);
	while (i < end) {
		/* one assignment: [SESSION|LOCAL|GLOBAL|PERSIST] name | @@[scope.]name, = or :=, value */
		int global = 0, named = 0;
		if (t[i].type == SN_WORD && (sn_word(src, &t[i], "SESSION") || sn_word(src, &t[i], "LOCAL") ||
					     sn_word(src, &t[i], "GLOBAL") || sn_word(src, &t[i], "PERSIST") ||
					     sn_word(src, &t[i], "PERSIST_ONLY"))) {
			global = sn_word(src, &t[i], "GLOBAL") || !strncasecmp(src + t[i].off, "PERSIST", 7);
			i = next_code(t, i + 1, end);
		}
		if (i < end && t[i].type == SN_WORD && t[i].len == 8 && !strncasecmp(src + t[i].off, "sql_mode", 8))
			named = 1;
		else if (i < end && t[i].type == SN_VAR && t[i].len >= 10 && src[t[i].off + 1] == '@' &&
			 !strncasecmp(src + t[i].off + t[i].len - 8, "sql_mode", 8)) {
			const char *v = src + t[i].off + 2;
			size_t vl = t[i].len - 2;
			named = vl == 8 || (vl == 16 && !strncasecmp(v, "session.", 8)) ||
				(vl == 14 && !strncasecmp(v, "local.", 6));
			global = (vl == 15 && !strncasecmp(v, "global.", 7));
			named |= global;
		}
		int v = next_code(t, i + 1, end);
		if (v < end && t[v].type == SN_OP && (src[t[v].off] == '=' || (t[v].len == 2 && src[t[v].off] == ':')))
			v = next_code(t, v + 1, end);
		/* the value runs to the next comma at the same depth */
		int e = v, depth0 = v < end ? t[v].depth : 0;
		while (e < end && !(t[e].type == SN_PUNCT && src[t[e].off] == ',' && t[e].depth == depth0))
			e++;
		if (named && !global) {
			int after = v < end ? next_code(t, v + 1, end) : end;
			if (v < end && t[v].type == SN_STRING && after >= e) {
				char val[512];
				size_t n = sn_literal_text(src, &t[v], val, sizeof val);
				unsigned m = (*mode & ~(unsigned)SN_M_ANSI_QUOTES) | SN_M_BACKSLASH;
				for (size_t a = 0, b; a <= n; a = b + 1) {
					for (b = a; b < n && val[b] != ','; b++)
						;
					sql_mode_item(val + a, b - a, &m);
				}
				*mode = m;
				found = found ? found : 1;
			} else {
				found = -1;
			}
		}
		i = next_code(t, e + 1, end);
	}
	return found;
}
