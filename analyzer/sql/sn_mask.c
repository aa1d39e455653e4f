/* Secrets and the stored text: which literals are passwords, and the statement masked
 * for storage (keep_literals or not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sn_int.h"


/* Token i stands where a password goes: after a password word (with = or := between or
 * not), after IDENTIFIED [WITH plugin] BY|AS, or as the argument of PASSWORD(...). */
static int secret_position(const char *src, const struct sn_tok *t, int first, int i)
{
	int a = prev_code(t, i, first);
	if (a >= first && t[a].type == SN_OP && (src[t[a].off] == '=' || (t[a].len == 2 && src[t[a].off] == ':')))
		a = prev_code(t, a, first);
	if (a < first)
		return 0;
	if (password_word(src, &t[a]))
		return 1;
	if (sn_word(src, &t[a], "BY") || sn_word(src, &t[a], "AS")) {
		for (int b = a - 1, n = 0; b >= first && n < 4; b--) {
			if (t[b].type == SN_COMMENT)
				continue;
			n++;
			if (sn_word(src, &t[b], "IDENTIFIED"))
				return 1;
		}
	}
	if (t[a].type == SN_PUNCT && src[t[a].off] == '(') {
		int b = prev_code(t, a, first);
		if (b >= first && (password_word(src, &t[b]) || sn_word(src, &t[b], "CRYPT") ||
				   sn_word(src, &t[b], "ENCRYPT")))
			return 1;
	}
	return 0;
}

/* A token of a secret statement that is masked although it is no literal: a bare word, a
 * quoted identifier or a variable where the password goes (the server rejects the
 * statement, but the password was on the wire). Keywords (PASSWORD EXPIRE) stay. */
int sn_secret_bare(const char *src, const struct sn_tok *t, int first, int i)
{
	const struct sn_tok *k = &t[i];
	if (!(k->type == SN_WORD && !sn_word_is_kw[k->kw]) && k->type != SN_QIDENT && k->type != SN_VAR)
		return 0;
	/* MySQL's PASSWORD EXPIRE|HISTORY|REUSE|REQUIRE options, PostgreSQL's PASSWORD NULL */
	static const char *const options[] = { "EXPIRE", "HISTORY", "REUSE", "REQUIRE", "NULL", "DEFAULT" };
	if (k->type == SN_WORD)
		for (size_t m = 0; m < sizeof options / sizeof options[0]; m++)
			if (sn_word(src, k, options[m]))
				return 0;
	return secret_position(src, t, first, i);
}

/* info->words must be filled (the words anywhere in the statement). */
int sn_secret_scan(const struct sn_tok *t, int first, int end, const struct sn_info *info)
{
	int i = next_code(t, first, end);
	if (i < end && (sn_kw(&t[i], SNW_CREATE) || sn_kw(&t[i], SNW_ALTER))) {
		int k = next_code(t, i + 1, end);
		if (k < end && (sn_kw(&t[k], SNW_USER) || sn_kw(&t[k], SNW_ROLE) || sn_kw(&t[k], SNW_GROUP) ||
				sn_kw(&t[k], SNW_SERVER)))
			return 1;
	}
	return sn_has(info, SNW_PASSWORD) || sn_has(info, SNW_IDENTIFIED) || sn_has(info, SNW_AUTHENTICATION_STRING) ||
	       sn_has(info, SNW_MAPPING);
}

static int ci_contains(const char *p, size_t n, const char *needle)
{
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= n; i++)
		if (strncasecmp(p + i, needle, nl) == 0)
			return 1;
	return 0;
}

int sn_is_secret_literal(const char *src, const struct sn_tok *t, int first, int end, int i)
{
	if (!sn_is_literal(&t[i]))
		return 0;
	const char *p = src + t[i].off;
	if (t[i].type == SN_STRING && (ci_contains(p, t[i].len, "password") || ci_contains(p, t[i].len, "passwd") ||
				       ci_contains(p, t[i].len, "pwd=")))
		return 1;
	int f = next_code(t, first, end);
	if (f < end && sn_word(src, &t[f], "SET")) {
		int k = next_code(t, f + 1, end);
		if (k < end && sn_word(src, &t[k], "PASSWORD"))
			return 1;
	}
	return secret_position(src, t, first, i);
}

size_t sn_mask(const char *src, const struct sn_tok *t, int first, int end, int keep_literals, int secret,
	       char *out, size_t outcap)
{
	struct ob o = { out, 0, outcap, 0 };
	if (outcap)
		out[0] = 0;
	end = sn_trim_semicolons(src, t, first, end);
	if (first >= end)
		return 0;
	size_t pos = t[first].off;
	for (int i = first; i < end && !o.trunc; i++) {
		const struct sn_tok *k = &t[i];
		if (k->off > pos)
			ob_put(&o, src + pos, k->off - pos); /* whitespace (or MySQL / *! markers) */
		const char *p = src + k->off;
		if (k->type == SN_COMMENT) {
			if (keep_literals && !ci_contains(p, k->len, "password") && !ci_contains(p, k->len, "identified"))
				ob_put(&o, p, k->len);
			else if (k->flags & SN_F_LINE)
				ob_put(&o, "", 0);
			else
				ob_put(&o, " ", 1);
		} else if (sn_is_literal(k)) {
			if (!keep_literals || secret || sn_is_secret_literal(src, t, first, end, i))
				ob_put(&o, "?", 1);
			else
				ob_put(&o, p, k->len);
		} else if (secret && sn_secret_bare(src, t, first, i)) {
			ob_put(&o, "?", 1);
		} else {
			ob_put(&o, p, k->len);
		}
		pos = k->off + k->len;
	}
	ob_end(&o);
	/* a dropped trailing comment leaves blanks behind */
	while (!o.trunc && o.n > 0 && (out[o.n - 1] == ' ' || out[o.n - 1] == '\t' || out[o.n - 1] == '\n' ||
				       out[o.n - 1] == '\r'))
		out[--o.n] = 0;
	if (o.trunc && outcap >= 4) {
		/* cut on a UTF-8 boundary and mark the cut */
		size_t n = o.n;
		if (n + 4 > outcap)
			n = outcap - 4;
		while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
			n--;
		memcpy(out + n, "...", 4);
		o.n = n + 3;
	}
	return o.n;
}

