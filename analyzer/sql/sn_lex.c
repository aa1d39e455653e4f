/* SQL lexer: one token stream shared by fingerprinting, splitting, masking, attribution
 * and the detectors. Understands both dialects' quoting and comment rules; all work is
 * capped (see sqlnorm.h) so hostile statements cost bounded time and memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sn_int.h"

/* The id of a quoted identifier's text when it names one of the detectors' words (not a
 * keyword: "user" stays a name): PostgreSQL matches quoted names exactly, so only the
 * lower-case spelling resolves to the function; MySQL folds function names. */
static int quoted_word(const char *p, size_t n, enum sn_dialect d)
{
	int id = word_find(p, n);
	if (!id || sn_word_is_kw[id])
		return SNW_NONE;
	if (d == SN_PG)
		for (size_t k = 0; k < n; k++)
			if (p[k] >= 'A' && p[k] <= 'Z')
				return SNW_NONE;
	return id;
}

/* Index just past a quoted run starting after the opening quote at start. */
static size_t scan_quoted(const char *s, size_t len, size_t j, char q, int bs, int *unterminated)
{
	while (j < len) {
		if (bs && s[j] == '\\') {
			j += 2;
			continue;
		}
		if (s[j] == q) {
			if (j + 1 < len && s[j + 1] == q) {
				j += 2;
				continue;
			}
			return j + 1;
		}
		j++;
	}
	*unterminated = 1;
	return len;
}

/* Length of the operator at s[0..n): the three-byte ones <=> ->> #>> !~~ !~*, the two-byte
 * ones :: <= >= <> != || -> #> @> <@ && ~~ ~* !~ << >> ?| ?& @@ => := -|, else one byte. */
static size_t op_len(const char *s, size_t n)
{
	char a = s[0], b = n >= 2 ? s[1] : 0, c = n >= 3 ? s[2] : 0;
	switch (a) {
	case '<':
		return b == '=' ? (c == '>' ? 3 : 2) : (b == '>' || b == '@' || b == '<') ? 2 : 1;
	case '-':
		return b == '>' ? (c == '>' ? 3 : 2) : b == '|' ? 2 : 1;
	case '#':
		return b == '>' ? (c == '>' ? 3 : 2) : 1;
	case '!':
		return b == '~' ? ((c == '~' || c == '*') ? 3 : 2) : b == '=' ? 2 : 1;
	case ':':
		return (b == ':' || b == '=') ? 2 : 1;
	case '>':
		return (b == '=' || b == '>') ? 2 : 1;
	case '|':
		return b == '|' ? 2 : 1;
	case '@':
		return (b == '>' || b == '@') ? 2 : 1;
	case '&':
		return b == '&' ? 2 : 1;
	case '~':
		return (b == '~' || b == '*') ? 2 : 1;
	case '?':
		return (b == '|' || b == '&') ? 2 : 1;
	case '=':
		return b == '>' ? 2 : 1;
	default:
		return 1;
	}
}

/* The number starting at s[i]: decimal with '_' separators, fraction and exponent, or 0x / 0b;
 * digits running on into word characters make a MySQL identifier (1abc). */
static size_t scan_number(const char *s, size_t len, size_t i, struct sn_tok *t)
{
	unsigned char c = (unsigned char)s[i], c1 = i + 1 < len ? (unsigned char)s[i + 1] : 0;
	size_t j;
	t->type = SN_NUMBER;
	if (c == '0' && (c1 == 'x' || c1 == 'X') && i + 2 < len && is_xdigit((unsigned char)s[i + 2])) {
		for (j = i + 2; j < len && is_xdigit((unsigned char)s[j]); j++)
			;
	} else if (c == '0' && (c1 == 'b' || c1 == 'B') && i + 2 < len && (s[i + 2] == '0' || s[i + 2] == '1')) {
		for (j = i + 2; j < len && (s[j] == '0' || s[j] == '1'); j++)
			;
	} else {
		j = i;
		while (j < len && (is_digit((unsigned char)s[j]) ||
				   (s[j] == '_' && j + 1 < len && is_digit((unsigned char)s[j + 1]))))
			j++;
		if (j < len && s[j] == '.') {
			j++;
			while (j < len && is_digit((unsigned char)s[j]))
				j++;
		}
		if (j < len && (s[j] == 'e' || s[j] == 'E')) {
			size_t k = j + 1;
			if (k < len && (s[k] == '+' || s[k] == '-'))
				k++;
			if (k < len && is_digit((unsigned char)s[k])) {
				for (j = k; j < len && is_digit((unsigned char)s[j]); j++)
					;
			}
		}
	}
	if (j < len && is_word_char((unsigned char)s[j]) && s[j - 1] != '.') {
		t->type = SN_WORD;
		while (j < len && is_word_char((unsigned char)s[j]))
			j++;
	}
	return j;
}

int sn_lex(const char *s, size_t len, enum sn_dialect d, struct sn_tok *toks, int cap, int *truncated)
{
	return sn_lex_mode(s, len, d, sn_default_mode(d), toks, cap, truncated);
}

int sn_lex_mode(const char *s, size_t len, enum sn_dialect d, unsigned mode, struct sn_tok *toks, int cap,
		int *truncated)
{
	const int mbs = (mode & SN_M_BACKSLASH) != 0;
	size_t i = 0;
	int n = 0, depth = 0, in_exec = 0;
	*truncated = 0;
	if (!s)
		return 0;
	sn_tables_init();
	if (len > SN_MAX_INPUT) {
		len = SN_MAX_INPUT;
		*truncated = 1;
	}
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_space(c)) {
			i++;
			continue;
		}
		unsigned char c1 = i + 1 < len ? (unsigned char)s[i + 1] : 0;
		if (in_exec && c == '*' && c1 == '/') {
			/* end of a MySQL executable comment whose content we lexed as code */
			in_exec = 0;
			i += 2;
			continue;
		}
		if (n >= cap) {
			*truncated = 1;
			break;
		}
		struct sn_tok *t = &toks[n];
		*t = (struct sn_tok){ .off = (uint32_t)i, .depth = (uint16_t)(depth > 65535 ? 65535 : depth) };
		size_t j = i + 1;
		int unt = 0;
		/* words first: the most common token; no case below takes a word-start byte */
		if (is_word_start(c)) {
			t->type = SN_WORD;
			for (; j < len && is_word_char((unsigned char)s[j]); j++)
				;
			size_t wl = j - i;
			if (j < len && (s[j] == '\'' || s[j] == '&')) {
				int l0 = lc(c);
				if (s[j] == '\'' && ((wl == 1 && (l0 == 'e' || l0 == 'x' || l0 == 'b' || l0 == 'n')) ||
						     (d == SN_MYSQL && c == '_'))) {
					t->type = SN_STRING;
					t->flags = SN_F_PREFIX;
					/* E'' always escapes; X'' B'' never (hex and bit digits only) */
					int bs = d == SN_PG && l0 == 'e' ? 1 : (l0 == 'x' || l0 == 'b') ? 0 : mbs;
					if (bs)
						t->flags |= SN_F_ESCAPES;
					j = scan_quoted(s, len, j + 1, '\'', bs, &unt);
				} else if (d == SN_PG && wl == 1 && l0 == 'u' && s[j] == '&' && j + 1 < len &&
					   (s[j + 1] == '\'' || s[j + 1] == '"')) {
					char q = s[j + 1];
					t->type = q == '\'' ? SN_STRING : SN_QIDENT;
					t->flags = SN_F_PREFIX;
					j = scan_quoted(s, len, j + 2, q, 0, &unt);
				}
			}
			if (t->type == SN_WORD)
				t->kw = (uint8_t)word_find(s + i, wl);
			goto store;
		}
		switch (c) {
		case '-':
			if (c1 != '-' || (d == SN_MYSQL && i + 2 < len && (unsigned char)s[i + 2] > ' '))
				goto op;
			t->type = SN_COMMENT;
			t->flags = SN_F_LINE;
			/* PostgreSQL's scanner ends it at \r too; MySQL only at \n */
			for (j = i + 2; j < len && s[j] != '\n' && !(d == SN_PG && s[j] == '\r'); j++)
				;
			break;
		case '#':
			if (d != SN_MYSQL)
				goto op;
			t->type = SN_COMMENT;
			t->flags = SN_F_LINE;
			for (j = i + 1; j < len && s[j] != '\n'; j++)
				;
			break;
		case '/': {
			if (c1 != '*')
				goto op;
			if (d == SN_MYSQL && !in_exec && i + 2 < len &&
			    (s[i + 2] == '!' || (s[i + 2] == 'M' && i + 3 < len && s[i + 3] == '!'))) {
				/* MySQL executes the body of / *! ... * /, MariaDB also / *M! ... * / (with
				 * or without a version): lex it as code. A version above the server's
				 * makes it a comment there: seeing it as code is the safe reading. */
				j = i + (s[i + 2] == 'M' ? 4 : 3);
				for (int k = 0; k < 6 && j < len && is_digit((unsigned char)s[j]); k++)
					j++;
				in_exec = 1;
				i = j;
				continue;
			}
			int nest = 1;
			t->type = SN_COMMENT;
			j = i + 2;
			while (j < len) {
				if (s[j] == '*' && j + 1 < len && s[j + 1] == '/') {
					j += 2;
					if (--nest == 0)
						break;
					continue;
				}
				if (d == SN_PG && s[j] == '/' && j + 1 < len && s[j + 1] == '*') {
					if (nest < 1000000)
						nest++;
					j += 2;
					continue;
				}
				j++;
			}
			if (nest > 0)
				unt = 1;
			break;
		}
		case '\'':
			t->type = SN_STRING;
			if (mbs)
				t->flags |= SN_F_ESCAPES;
			j = scan_quoted(s, len, i + 1, '\'', mbs, &unt);
			break;
		case '"':
			if (d == SN_MYSQL && !(mode & SN_M_ANSI_QUOTES)) {
				t->type = SN_STRING;
				if (mbs)
					t->flags |= SN_F_ESCAPES;
				j = scan_quoted(s, len, i + 1, '"', mbs, &unt);
			} else {
				t->type = SN_QIDENT;
				j = scan_quoted(s, len, i + 1, '"', 0, &unt);
			}
			break;
		case '`':
			if (d != SN_MYSQL)
				goto op;
			t->type = SN_QIDENT;
			j = scan_quoted(s, len, i + 1, '`', 0, &unt);
			break;
		case '$':
			if (d != SN_PG)
				goto op;
			if (is_digit(c1)) {
				t->type = SN_PARAM;
				for (j = i + 1; j < len && is_digit((unsigned char)s[j]); j++)
					;
			} else if (c1 == '$' || is_word_start(c1)) {
				size_t k = i + 1;
				while (k < len && (is_word_start((unsigned char)s[k]) || is_digit((unsigned char)s[k])))
					k++;
				if (k < len && s[k] == '$') {
					size_t tl = k + 1 - i; /* "$tag$" */
					t->type = SN_STRING;
					t->flags = SN_F_DOLLAR;
					j = len;
					unt = 1;
					for (size_t m = k + 1; m + tl <= len; m++) {
						if (s[m] == '$' && memcmp(s + m, s + i, tl) == 0) {
							j = m + tl;
							unt = 0;
							break;
						}
					}
				} else {
					t->type = SN_OP;
				}
			} else {
				goto op;
			}
			break;
		case '?':
			if (d != SN_MYSQL)
				goto op;
			t->type = SN_PARAM;
			break;
		case '@':
			if (d != SN_MYSQL)
				goto op;
			t->type = SN_VAR;
			if (j < len && s[j] == '@')
				j++;
			if (j < len && (s[j] == '\'' || s[j] == '"' || s[j] == '`'))
				j = scan_quoted(s, len, j + 1, s[j], s[j] != '`' && mbs, &unt);
			else
				while (j < len && (is_word_char((unsigned char)s[j]) || s[j] == '.'))
					j++;
			break;
		case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			j = scan_number(s, len, i, t);
			break;
		case '.':
			if (is_digit(c1) && !(i > 0 && (is_word_char((unsigned char)s[i - 1]) || s[i - 1] == ')' ||
							s[i - 1] == '"' || s[i - 1] == '`'))) {
				j = scan_number(s, len, i, t);
				break;
			}
			/* fall through */
		case '(': case ')': case ',': case ';': case '[': case ']': case '{': case '}':
			t->type = SN_PUNCT;
			if (c == '(') {
				depth++;
			} else if (c == ')') {
				if (depth > 0)
					depth--;
				t->depth = (uint16_t)(depth > 65535 ? 65535 : depth);
			}
			break;
		default:
		op:
			t->type = SN_OP;
			j = i + op_len(s + i, len - i);
			break;
		}
		/* "pg_read_file"(...), `sleep`: the server resolves them like the bare word, so
		 * they are that word (the text keeps its quotes) */
		if (t->type == SN_QIDENT && !unt && j - i >= 3 && (t->kw = (uint8_t)quoted_word(s + i + 1, j - i - 2, d)))
			t->type = SN_WORD;
	store:
		if (unt)
			t->flags |= SN_F_UNTERMINATED;
		if (j > len)
			j = len;
		t->len = (uint32_t)(j - i);
		n++;
		i = j;
	}
	return n;
}

size_t sn_literal_text(const char *src, const struct sn_tok *t, char *buf, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return 0;
	const char *p = src + t->off;
	size_t n = t->len;
	if (t->type == SN_NUMBER || t->type == SN_PARAM || (t->type == SN_WORD && n && p[0] != '"' && p[0] != '`')) {
		for (size_t i = 0; i < n && o + 1 < cap; i++)
			buf[o++] = p[i];
		buf[o] = 0;
		return o;
	}
	if (t->flags & SN_F_DOLLAR) {
		size_t tl = 1;
		while (tl < n && p[tl] != '$')
			tl++;
		tl++;
		size_t end = (t->flags & SN_F_UNTERMINATED) ? n : (n >= tl ? n - tl : n);
		for (size_t i = tl; i < end && o + 1 < cap; i++)
			buf[o++] = p[i];
		buf[o] = 0;
		return o;
	}
	/* skip a prefix up to the opening quote */
	size_t i = 0;
	while (i < n && p[i] != '\'' && p[i] != '"' && p[i] != '`')
		i++;
	if (i >= n) {
		buf[0] = 0;
		return 0;
	}
	char q = p[i++];
	int bs = (t->flags & SN_F_ESCAPES) != 0;
	while (i < n && o + 1 < cap) {
		char c = p[i];
		if (bs && c == '\\' && i + 1 < n) {
			char e = p[i + 1];
			buf[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? ' ' : e;
			i += 2;
			continue;
		}
		if (c == q) {
			if (i + 1 < n && p[i + 1] == q) {
				buf[o++] = q;
				i += 2;
				continue;
			}
			break;
		}
		buf[o++] = c;
		i++;
	}
	buf[o] = 0;
	return o;
}
