/* What PREPARE / EXECUTE / DO run (issue #20 item 2).
 * The verb rules (destructive, privilege, export, sensitive access) judge the statement a
 * SQL-level EXECUTE runs (the text its PREPARE named, kept in the session's statement
 * cache with the protocol's), and each statement of a PostgreSQL DO block, including the
 * string an EXECUTE in it runs when that string is literals joined by || or a format()
 * template (dynamic parts read as a name). The findings belong to the outer statement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"

static int in_ready(struct an *an)
{
	if (an->in_toks)
		return 1;
	size_t cap = (size_t)an->cfg.max_sql_bytes + 4;
	an->in_toks = malloc(2 * AN_IN_TOKS * sizeof *an->in_toks);
	an->in_norm = malloc(SN_MAX_NORM + 1);
	an->in_masked = malloc(cap);
	an->in_text = malloc(cap);
	an->in_fold = malloc(cap);
	if (an->in_toks && an->in_norm && an->in_masked && an->in_text && an->in_fold)
		return 1;
	free(an->in_toks), free(an->in_norm), free(an->in_masked), free(an->in_text), free(an->in_fold);
	an->in_toks = NULL, an->in_norm = an->in_masked = an->in_text = an->in_fold = NULL;
	return 0;
}

/* Statement name at token i: PostgreSQL folds an unquoted name to lower case, MySQL's
 * names are case-insensitive. */
static size_t in_name(const struct an_session *s, const char *base, const struct sn_tok *t, char *buf, size_t cap)
{
	if (t->type != SN_WORD && t->type != SN_QIDENT)
		return 0;
	size_t n = sn_literal_text(base, t, buf, cap);
	if (t->type == SN_WORD || s->dialect == SN_MYSQL)
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]);
	return n;
}

/* Run the verb rules on tokens [first, end) of base, as part of outer's statement. */
static void in_judge(struct an *an, const struct an_stmt *outer, const char *base, const struct sn_tok *toks,
		     int first, int end, const char *via)
{
	if (first >= end || an->n_drafts >= AN_MAX_FINDINGS_STMT)
		return;
	struct sn_info info;
	memset(&info, 0, offsetof(struct sn_info, tables));
	sn_normalize(base, toks, first, end, outer->s->dialect, an->in_norm, SN_MAX_NORM + 1, &info);
	if (!info.verb[0])
		return;
	struct an_masked m = { an, 0 };
	struct an_stmt st = *outer;
	st.sql = base + toks[first].off;
	st.base = base;
	st.toks = toks;
	st.first = first;
	st.end = end;
	st.info = &info;
	st.norm = an->in_norm;
	st.masked = &m;
	char *outer_masked = an->masked; /* the outer statement's stored text stays intact */
	an->masked = an->in_masked;
	int d0 = an->n_drafts;
	for (const struct an_detector *const *d = an->det_stmt; *d; d++)
		if ((*d)->kind == AN_K_DESTRUCTIVE_STATEMENT || (*d)->kind == AN_K_PRIVILEGE_CHANGE ||
		    (*d)->kind == AN_K_DATA_EXPORT || (*d)->kind == AN_K_SENSITIVE_ACCESS)
			(*d)->on_statement(an, &st);
	an->masked = outer_masked;
	for (int i = d0; i < an->n_drafts; i++) {
		char *sm = an->drafts[i].summary;
		size_t k = strlen(sm);
		snprintf(sm + k, sizeof an->drafts[i].summary - k, " (%s)", via);
		memcpy(an->drafts[i].fp, info.fingerprint, sizeof an->drafts[i].fp);
	}
}

/* Lex text (an->in_fold or in_text) into token half h and judge it as one statement. */
static void in_judge_text(struct an *an, const struct an_stmt *outer, const char *text, size_t len, int h,
			  const char *via)
{
	int trunc = 0;
	struct sn_tok *toks = an->in_toks + h * AN_IN_TOKS;
	int n = sn_lex_mode(text, len, outer->s->dialect, outer->s->lexmode, toks, AN_IN_TOKS, &trunc);
	in_judge(an, outer, text, toks, 0, n, via);
}

/* The text an EXECUTE in a DO block runs: literals joined by ||, format()'s template (its
 * %I / %s / %L read as a name), any other operand read as a name. NUL-terminated in
 * an->in_fold; 0 when nothing literal is in it. */
static size_t in_fold(struct an *an, const char *base, const struct sn_tok *t, int i, int end)
{
	size_t cap = (size_t)an->cfg.max_sql_bytes, o = 0;
	int lit = 0;
	char *out = an->in_fold;
	while (i < end && o + 4 < cap) {
		const struct sn_tok *k = &t[i];
		if ((sn_kw(k, SNW_USING) || sn_kw(k, SNW_INTO)) && k->depth == t[end - 1].depth)
			break;
		if (k->type == SN_STRING) {
			o += sn_literal_text(base, k, out + o, cap - o);
			lit = 1;
			i++;
		} else if (k->type == SN_WORD && sn_word(base, k, "format") && i + 2 < end && t[i + 1].type == SN_PUNCT &&
			   base[t[i + 1].off] == '(' && t[i + 2].type == SN_STRING) {
			size_t a = o;
			o += sn_literal_text(base, &t[i + 2], out + o, cap - o);
			for (size_t j = a; j + 1 < o; j++)
				if (out[j] == '%' && (out[j + 1] == 'I' || out[j + 1] == 's' || out[j + 1] == 'L'))
					out[j] = ' ', out[j + 1] = 'x';
			lit = 1;
			int depth = t[i + 1].depth; /* past the call */
			for (i += 2; i < end && !(t[i].depth == depth + 1 && t[i].type == SN_PUNCT && base[t[i].off] == ')');)
				i++;
			i++;
		} else if (k->type == SN_OP && k->len == 2 && base[k->off] == '|' && base[k->off + 1] == '|') {
			i++;
		} else { /* a variable, a call: one name for the whole operand */
			int depth = k->depth;
			out[o++] = ' ', out[o++] = 'x', out[o++] = ' ';
			for (i++; i < end && !(t[i].depth == depth && t[i].type == SN_OP && t[i].len == 2 &&
					       base[t[i].off] == '|' && base[t[i].off + 1] == '|');)
				i++;
		}
	}
	out[o] = 0;
	return lit ? o : 0;
}

/* A plpgsql statement starts after the block words before it: BEGIN, ELSE, LOOP, EXCEPTION,
 * DECLARE, a <<label>>, and the headers IF/ELSIF/WHEN/WHILE ... THEN/LOOP, FOR ... LOOP. */
static int in_plpgsql_start(const char *b, const struct sn_tok *t, int i, int end)
{
	while (i < end) {
		const struct sn_tok *k = &t[i];
		if (sn_kw(k, SNW_BEGIN) || sn_kw(k, SNW_ELSE) || sn_kw(k, SNW_LOOP) || sn_word(b, k, "EXCEPTION") ||
		    sn_word(b, k, "DECLARE")) {
			i++;
		} else if (k->type == SN_OP && k->len >= 2 && b[k->off] == '<' && b[k->off + 1] == '<') {
			while (i < end && !(t[i].type == SN_OP && t[i].len >= 2 && b[t[i].off] == '>'))
				i++;
			i++;
		} else if (sn_kw(k, SNW_IF) || sn_word(b, k, "ELSIF") || sn_kw(k, SNW_WHEN) || sn_kw(k, SNW_WHILE) ||
			   sn_kw(k, SNW_FOR) || sn_word(b, k, "FOREACH")) {
			int depth = k->depth;
			for (i++; i < end && !(t[i].depth == depth && (sn_kw(&t[i], SNW_THEN) || sn_kw(&t[i], SNW_LOOP)));)
				i++;
			if (i >= end)
				return end; /* a header without its THEN / LOOP: nothing to run */
			i++;
		} else {
			break;
		}
	}
	return i;
}

static void in_do_block(struct an *an, const struct an_stmt *outer, int v)
{
	const char *b = outer->base;
	const struct sn_tok *t = outer->toks;
	int i = v + 1;
	while (i < outer->end && t[i].type != SN_STRING)
		i++; /* LANGUAGE x before the body */
	if (i >= outer->end || !in_ready(an))
		return;
	size_t n = sn_literal_text(b, &t[i], an->in_text, (size_t)an->cfg.max_sql_bytes);
	int trunc = 0;
	struct sn_tok *bt = an->in_toks;
	int nb = sn_lex_mode(an->in_text, n, SN_PG, outer->s->lexmode, bt, AN_IN_TOKS, &trunc);
	for (int a = 0; a < nb && an->n_drafts < AN_MAX_FINDINGS_STMT;) {
		int e = a;
		while (e < nb && !(bt[e].type == SN_PUNCT && an->in_text[bt[e].off] == ';' && bt[e].depth == 0))
			e++;
		int f = in_plpgsql_start(an->in_text, bt, a, e);
		while (f < e && bt[f].type == SN_COMMENT)
			f++;
		if (f < e && sn_kw(&bt[f], SNW_EXECUTE)) {
			size_t fl = in_fold(an, an->in_text, bt, f + 1, e);
			if (fl)
				in_judge_text(an, outer, an->in_fold, fl, 1, "EXECUTE in a DO block");
		} else if (f < e && !sn_word(an->in_text, &bt[f], "END")) {
			in_judge(an, outer, an->in_text, bt, f, e, "in a DO block");
		}
		a = e + 1;
	}
}

void an_in_statement(struct an *an, struct an_session *s, const struct an_stmt *st)
{
	const char *b = st->base;
	const struct sn_tok *t = st->toks;
	int vk = st->info->verb_kw, v = -1;
	for (int i = st->first; i < st->end; i++) /* the verb: its word at the least depth */
		if (sn_kw(&t[i], vk) && (v < 0 || t[i].depth < t[v].depth))
			v = i;
	if (v < 0 || v + 1 >= st->end)
		return;
	if (vk == SNW_DO) {
		if (s->dialect == SN_PG)
			in_do_block(an, st, v);
		return;
	}
	char name[256];
	size_t nl = in_name(s, b, &t[v + 1], name, sizeof name);
	if (!nl || !in_ready(an))
		return;
	if (vk == SNW_PREPARE) { /* remembered when it did not fail: EXECUTE (SQL or protocol) finds it */
		if (st->outcome == EV_OUT_ERROR)
			return;
		for (int i = v + 2; i < st->end; i++) {
			if (s->dialect == SN_PG && sn_kw(&t[i], SNW_AS) && t[i].depth == t[v].depth && i + 1 < st->end) {
				const struct sn_tok *last = &t[st->end - 1];
				size_t off = t[i + 1].off, tl = last->off + last->len - off;
				an_ps_put(an, s, name, nl, b + off, tl, 0);
				return;
			}
			if (s->dialect == SN_MYSQL && sn_kw(&t[i], SNW_FROM) && i + 1 < st->end && t[i + 1].type == SN_STRING) {
				size_t tl = sn_literal_text(b, &t[i + 1], an->in_text, (size_t)an->cfg.max_sql_bytes);
				an_ps_put(an, s, name, nl, an->in_text, tl, 0);
				return;
			}
		}
		return;
	}
	if (vk == SNW_EXECUTE) {
		const struct an_ps *ps = an_ps_find(s, (struct strv){ name, nl });
		if (!ps)
			return;
		char via[300];
		snprintf(via, sizeof via, "EXECUTE of %s", name);
		size_t tl = ps->text_len < (size_t)an->cfg.max_sql_bytes ? ps->text_len : (size_t)an->cfg.max_sql_bytes;
		memcpy(an->in_fold, ps->buf + ps->name_len + 1, tl); /* the cache may change while judged */
		an->in_fold[tl] = 0;
		in_judge_text(an, st, an->in_fold, tl, 1, via);
	}
}
