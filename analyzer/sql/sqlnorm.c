/* SQL lexer and normaliser: one token stream shared by fingerprinting, splitting, masking,
 * attribution and the detectors. Understands both dialects' quoting and comment rules;
 * all work is capped (see sqlnorm.h) so hostile statements cost bounded time and memory. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlnorm.h"

/* ASCII case tables: the lexer and normaliser fold case several times per byte. Built by
 * the preprocessor from the rule, so they are constants shared by every thread. */
/* the casts: clang checks both arms of ?: for overflow, also the one never taken */
#define LC_OF(c) ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c)))
#define UC_OF(c) ((unsigned char)((c) >= 'a' && (c) <= 'z' ? (c) - 32 : (c)))
#define T4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define T16(F, b) T4(F, b), T4(F, (b) + 4), T4(F, (b) + 8), T4(F, (b) + 12)
#define T64(F, b) T16(F, b), T16(F, (b) + 16), T16(F, (b) + 32), T16(F, (b) + 48)
#define T256(F) T64(F, 0), T64(F, 64), T64(F, 128), T64(F, 192)
static const unsigned char lc_tab[256] = { T256(LC_OF) };
static const unsigned char uc_tab[256] = { T256(UC_OF) };
#undef LC_OF
#undef UC_OF
#undef T4
#undef T16
#undef T64
#undef T256
static inline int lc(int c)
{
	return lc_tab[c & 0xff];
}
static inline int uc(int c)
{
	return uc_tab[c & 0xff];
}
/* Character classes, one table lookup each: the lexer asks several per input byte. */
enum { C_SPACE = 1, C_DIGIT = 2, C_WSTART = 4, C_WCHAR = 8, C_XDIGIT = 16 };
static uint8_t cclass[256];
static void tables_build(void);
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static int is_space(unsigned char c)
{
	return cclass[c] & C_SPACE;
}
static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}
static int is_xdigit(unsigned char c)
{
	return cclass[c] & C_XDIGIT;
}
static int is_word_start(unsigned char c)
{
	return cclass[c] & C_WSTART;
}
static int is_word_char(unsigned char c)
{
	return cclass[c] & C_WCHAR;
}

uint64_t sn_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t sn_hash_mem(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	for (; n >= 8; b += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 29;
	}
	uint64_t t = 0;
	memcpy(&t, b, n);
	h = (h ^ ((uint64_t)n << 56) ^ t) * 0xC2B2AE3D27D4EB4Full;
	return h ^ (h >> 32);
}

static pthread_mutex_t wordset_mu = PTHREAD_MUTEX_INITIALIZER;

void sn_wordset_build(struct sn_wordset *s)
{
	pthread_mutex_lock(&wordset_mu); /* once per set; later calls see ready and return */
	if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
		for (const uint8_t *const *l = s->lists; *l; l++)
			for (const uint8_t *id = *l; *id; id++)
				s->w[*id >> 6] |= 1ull << (*id & 63);
		atomic_store_explicit(&s->ready, 1, memory_order_release);
	}
	pthread_mutex_unlock(&wordset_mu);
}

/* The recognised words (sqlnorm.h), indexed by id; upper-cased copies for the lookup. */
#define SN_WORD_TEXT(id, text, kw) text,
#define SN_WORD_KW(id, text, kw) kw,
static const char *const word_text[SNW__COUNT] = { NULL, SN_WORD_LIST(SN_WORD_TEXT) };
static const uint8_t word_is_kw[SNW__COUNT] = { 0, SN_WORD_LIST(SN_WORD_KW) };
#undef SN_WORD_TEXT
#undef SN_WORD_KW
_Static_assert(SNW__COUNT <= 256, "word ids must fit sn_tok.kw");
#define WORD_MAX 32
static char word_upper[SNW__COUNT][WORD_MAX + 1];
static uint8_t word_len[SNW__COUNT];

/* Word lookup runs for every bare word of every statement: a hash of length, first, middle
 * and last letters picks one slot of a small open-addressing table (built once). */
#define KW_SLOTS 1024
static uint8_t kw_slot[KW_SLOTS]; /* word id; 0 = empty */
static void kw_build(void);

static unsigned kw_hash(const char *p, size_t n)
{
	unsigned a = (unsigned)uc((unsigned char)p[0]), z = (unsigned)uc((unsigned char)p[n - 1]);
	unsigned b = (unsigned)uc((unsigned char)p[n / 2]);
	return (unsigned)(n * 31u + a * 7u + b * 13u + z * 3u) & (KW_SLOTS - 1);
}

static void tables_build(void)
{
	for (int c = 0; c < 256; c++) {
		int l = lc(c), ws = (l >= 'a' && l <= 'z') || c == '_' || c >= 0x80, dg = c >= '0' && c <= '9';
		cclass[c] = (uint8_t)((c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
				       ? C_SPACE : 0) |
				      (dg ? C_DIGIT : 0) | (ws ? C_WSTART : 0) |
				      (ws || dg || c == '$' ? C_WCHAR : 0) |
				      (dg || (l >= 'a' && l <= 'f') ? C_XDIGIT : 0));
	}
	kw_build();
}

static void kw_build(void)
{
	for (int k = 1; k < SNW__COUNT && word_text[k]; k++) {
		size_t n = strlen(word_text[k]);
		for (size_t i = 0; i < n && i < WORD_MAX; i++)
			word_upper[k][i] = (char)uc((unsigned char)word_text[k][i]);
		word_len[k] = (uint8_t)(n < WORD_MAX ? n : WORD_MAX);
		unsigned h = kw_hash(word_text[k], n);
		while (kw_slot[h])
			h = (h + 1) & (KW_SLOTS - 1);
		kw_slot[h] = (uint8_t)k;
	}
}

/* Id of the word p[0..n) (any case), SNW_NONE when it is not in the list. */
static inline int word_find(const char *p, size_t n)
{
	if (n == 0 || n > WORD_MAX)
		return SNW_NONE;
	for (unsigned h = kw_hash(p, n); kw_slot[h]; h = (h + 1) & (KW_SLOTS - 1)) {
		if (word_len[kw_slot[h]] != n)
			continue;
		const char *w = word_upper[kw_slot[h]];
		size_t i = 0;
		while (i < n && w[i] == (char)uc((unsigned char)p[i]))
			i++;
		if (i == n && w[n] == 0)
			return kw_slot[h];
	}
	return SNW_NONE;
}

const char *sn_word_text(int id)
{
	return id > SNW_NONE && id < SNW__COUNT ? word_text[id] : NULL;
}

int sn_is_keyword(const char *p, size_t n)
{
	pthread_once(&tables_once, tables_build);
	return word_is_kw[word_find(p, n)];
}

int sn_is(const char *src, const struct sn_tok *t, const char *word)
{
	const char *p = src + t->off;
	uint32_t i = 0;
	/* hot path of every detector: no strlen, first mismatch returns */
	for (; i < t->len; i++)
		if (!word[i] || lc((unsigned char)p[i]) != lc((unsigned char)word[i]))
			return 0;
	return word[i] == 0;
}

/* The id of a quoted identifier's text when it names one of the detectors' words (not a
 * keyword: "user" stays a name): PostgreSQL matches quoted names exactly, so only the
 * lower-case spelling resolves to the function; MySQL folds function names. */
static int quoted_word(const char *p, size_t n, enum sn_dialect d)
{
	int id = word_find(p, n);
	if (!id || word_is_kw[id])
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
	pthread_once(&tables_once, tables_build);
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

static int next_code(const struct sn_tok *toks, int i, int end)
{
	while (i < end && toks[i].type == SN_COMMENT)
		i++;
	return i;
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

/* ---- normalisation ---- */

struct ob {
	char *p;
	size_t n, cap;
	int trunc;
};

/* The NUL goes on at the end (ob_end): these run several times per token. */
static inline void ob_put(struct ob *o, const char *s, size_t n)
{
	if (o->trunc)
		return;
	if (o->n + n + 1 > o->cap) {
		o->trunc = 1;
		return;
	}
	char *d = o->p + o->n;
	if (n <= 16)
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	else
		memcpy(d, s, n);
	o->n += n;
}

static inline void ob_end(struct ob *o)
{
	if (o->cap)
		o->p[o->n] = 0;
}

/* A word upper- or lower-cased; as much as fits, like ob_put byte by byte would. */
static inline void ob_case(struct ob *o, const char *s, size_t n, int upper)
{
	if (o->trunc)
		return;
	size_t room = o->cap > o->n + 1 ? o->cap - o->n - 1 : 0, k = n < room ? n : room;
	char *d = o->p + o->n;
	if (upper)
		for (size_t m = 0; m < k; m++)
			d[m] = (char)uc((unsigned char)s[m]);
	else
		for (size_t m = 0; m < k; m++)
			d[m] = (char)lc((unsigned char)s[m]);
	o->n += k;
	if (k < n)
		o->trunc = 1;
}

enum nk { NK_NONE, NK_KW, NK_IDENT, NK_LIT, NK_OPEN, NK_CLOSE, NK_COMMA, NK_DOT, NK_OP, NK_CAST, NK_SEMI };

static inline void ob_space(struct ob *o, enum nk prev, enum nk cur)
{
	if (prev == NK_NONE || prev == NK_OPEN || prev == NK_DOT || prev == NK_CAST)
		return;
	if (cur == NK_CLOSE || cur == NK_COMMA || cur == NK_DOT || cur == NK_SEMI || cur == NK_CAST)
		return;
	if (cur == NK_OPEN && prev == NK_IDENT)
		return;
	ob_put(o, " ", 1);
}

/* A literal-ish list element at i: [+-]number, string, param, NULL/TRUE/FALSE/DEFAULT,
 * optionally followed by ::type. Returns the index after it, or -1. */
static int lit_elem(const char *src, const struct sn_tok *t, int i, int end)
{
	i = next_code(t, i, end);
	if (i >= end)
		return -1;
	if (t[i].type == SN_OP && t[i].len == 1 && (src[t[i].off] == '-' || src[t[i].off] == '+')) {
		int k = next_code(t, i + 1, end);
		if (k >= end || t[k].type != SN_NUMBER)
			return -1;
		i = k;
	}
	if (!(sn_is_literal(&t[i]) || t[i].type == SN_PARAM || sn_kw(&t[i], SNW_NULL) || sn_kw(&t[i], SNW_TRUE) ||
	      sn_kw(&t[i], SNW_FALSE) || sn_kw(&t[i], SNW_DEFAULT)))
		return -1;
	i = next_code(t, i + 1, end);
	if (i + 1 < end && t[i].type == SN_OP && t[i].len == 2 && memcmp(src + t[i].off, "::", 2) == 0 &&
	    t[i + 1].type == SN_WORD)
		i = next_code(t, i + 2, end);
	return i;
}

/* A parenthesised list of literal-ish elements starting at '(' at i: returns the index after
 * ')' and the arity, or -1. */
static int lit_tuple(const char *src, const struct sn_tok *t, int i, int end, int *arity)
{
	i = next_code(t, i, end);
	if (i >= end || t[i].type != SN_PUNCT || src[t[i].off] != '(')
		return -1;
	*arity = 0;
	i++;
	for (;;) {
		int k = lit_elem(src, t, i, end);
		if (k < 0 || k >= end)
			return -1;
		(*arity)++;
		if (t[k].type == SN_PUNCT && src[t[k].off] == ',') {
			i = k + 1;
			continue;
		}
		if (t[k].type == SN_PUNCT && src[t[k].off] == ')')
			return k + 1;
		return -1;
	}
}

static void tables_scan(const char *src, const struct sn_tok *t, int first, int end, struct sn_info *info)
{
	for (int i = first; i < end && info->n_tables < SN_MAX_TABLES; i++) {
		if (t[i].type != SN_WORD)
			continue;
		int w = t[i].kw;
		int is_from = w == SNW_FROM || w == SNW_JOIN;
		if (!is_from && w != SNW_UPDATE && w != SNW_INTO && w != SNW_TABLE && w != SNW_TRUNCATE &&
		    w != SNW_COPY && w != SNW_DESCRIBE && w != SNW_DESC)
			continue;
		int k = next_code(t, i + 1, end);
	again:
		while (k < end && t[k].type == SN_WORD) {
			int x = t[k].kw;
			if (!(x == SNW_ONLY || x == SNW_IF || x == SNW_NOT || x == SNW_EXISTS || x == SNW_TEMP ||
			      x == SNW_TEMPORARY || x == SNW_UNLOGGED || x == SNW_LATERAL || x == SNW_TABLE))
				break;
			k = next_code(t, k + 1, end);
		}
		if (k >= end || (t[k].type != SN_WORD && t[k].type != SN_QIDENT))
			continue;
		if (t[k].type == SN_WORD) {
			int x = t[k].kw;
			if (x == SNW_SELECT || x == SNW_OUTFILE || x == SNW_DUMPFILE || x == SNW_LOCAL ||
			    x == SNW_VALUES || x == SNW_STDOUT || x == SNW_STDIN || x == SNW_WITH || x == SNW_SET ||
			    x == SNW_WHERE)
				continue;
		}
		char name[64];
		size_t nl = 0;
		for (;;) {
			char part[64];
			size_t pl;
			if (t[k].type == SN_QIDENT || src[t[k].off] == '"' || src[t[k].off] == '`') /* quoted */
				pl = sn_literal_text(src, &t[k], part, sizeof part);
			else {
				pl = t[k].len < sizeof part - 1 ? t[k].len : sizeof part - 1;
				for (size_t m = 0; m < pl; m++)
					part[m] = (char)lc((unsigned char)src[t[k].off + m]);
				part[pl] = 0;
			}
			for (size_t m = 0; m < pl && nl + 1 < sizeof name; m++)
				name[nl++] = part[m];
			k = next_code(t, k + 1, end);
			if (k + 1 < end && t[k].type == SN_PUNCT && src[t[k].off] == '.' &&
			    (t[k + 1].type == SN_WORD || t[k + 1].type == SN_QIDENT)) {
				if (nl + 1 < sizeof name)
					name[nl++] = '.';
				k++;
				continue;
			}
			break;
		}
		name[nl] = 0;
		int dup = 0;
		for (int m = 0; m < info->n_tables; m++)
			if (strcmp(info->tables[m], name) == 0)
				dup = 1;
		if (!dup && nl > 0 && info->n_tables < SN_MAX_TABLES)
			memcpy(info->tables[info->n_tables++], name, nl + 1); /* nl < sizeof name (64) */
		if (!is_from)
			continue;
		/* FROM a [AS] x, b: more tables after a comma */
		if (k < end && sn_kw(&t[k], SNW_AS))
			k = next_code(t, k + 1, end);
		if (k < end && t[k].type == SN_WORD && !word_is_kw[t[k].kw])
			k = next_code(t, k + 1, end);
		if (k < end && t[k].type == SN_PUNCT && src[t[k].off] == ',') {
			k = next_code(t, k + 1, end);
			goto again;
		}
	}
}

static void verb_scan(const char *src, const struct sn_tok *t, int first, int end, struct sn_info *info)
{
	int i = next_code(t, first, end);
	while (i < end && t[i].type == SN_PUNCT && src[t[i].off] == '(')
		i = next_code(t, i + 1, end);
	if (i >= end || t[i].type != SN_WORD)
		return;
	int v = i;
	if (sn_kw(&t[i], SNW_WITH)) {
		int base = t[i].depth;
		for (int k = i + 1; k < end; k++) {
			if (t[k].type != SN_WORD || t[k].depth != base)
				continue;
			int x = t[k].kw;
			if (x == SNW_SELECT || x == SNW_INSERT || x == SNW_UPDATE || x == SNW_DELETE || x == SNW_MERGE ||
			    x == SNW_VALUES || x == SNW_TABLE) {
				v = k;
				break;
			}
		}
	}
	info->verb_kw = t[v].len < sizeof info->verb ? t[v].kw : SNW_NONE; /* uncut verbs only */
	size_t n = t[v].len < sizeof info->verb - 1 ? t[v].len : sizeof info->verb - 1;
	for (size_t k = 0; k < n; k++)
		info->verb[k] = (char)uc((unsigned char)src[t[v].off + k]);
	info->verb[n] = 0;
}

static int prev_code(const struct sn_tok *t, int i, int first)
{
	i--;
	while (i >= first && t[i].type == SN_COMMENT)
		i--;
	return i;
}

/* p[0..n) is tail, alone or after an underscore (any case; tail in lower case). */
static int ends_with_word(const char *p, size_t n, const char *tail, size_t tl)
{
	if (n < tl || (n > tl && p[n - tl - 1] != '_'))
		return 0;
	for (size_t i = 0; i < tl; i++)
		if (lc((unsigned char)p[n - tl + i]) != tail[i])
			return 0;
	return 1;
}

/* PASSWORD and the words naming one: MASTER_PASSWORD, SOURCE_PASSWORD, OLD_PASSWORD, a
 * hashed_password or user_passwd column, pwd, authentication_string. Runs on every
 * identifier of every statement: most fail at the last letter or the first compare. */
static int password_word(const char *src, const struct sn_tok *k)
{
	if (k->type != SN_WORD || k->len < 3)
		return 0;
	const char *p = src + k->off;
	size_t n = k->len;
	int last = lc((unsigned char)p[n - 1]);
	if (last == 'g')
		return ends_with_word(p, n, "authentication_string", 21);
	return last == 'd' && (ends_with_word(p, n, "password", 8) || ends_with_word(p, n, "passwd", 6) ||
			       ends_with_word(p, n, "pwd", 3));
}

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
static int secret_bare(const char *src, const struct sn_tok *t, int first, int i)
{
	const struct sn_tok *k = &t[i];
	if (!(k->type == SN_WORD && !word_is_kw[k->kw]) && k->type != SN_QIDENT && k->type != SN_VAR)
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
static int secret_scan(const struct sn_tok *t, int first, int end, const struct sn_info *info)
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

/* End of the statement proper: trailing ';' (and comments around them) dropped, so
 * "SELECT 1;" sent with Parse has the shape of "SELECT 1" split out of a simple query. */
static int trim_semicolons(const char *src, const struct sn_tok *t, int first, int end)
{
	int e = end;
	while (e > first && (t[e - 1].type == SN_COMMENT || (t[e - 1].type == SN_PUNCT && src[t[e - 1].off] == ';')))
		e--;
	/* keep trailing comments that follow real code (sqlcommenter appends them) */
	int k = e;
	while (k < end && !(t[k].type == SN_PUNCT && src[t[k].off] == ';'))
		k++;
	return k;
}

size_t sn_normalize(const char *src, const struct sn_tok *t, int first, int end, enum sn_dialect d,
		    char *out, size_t outcap, struct sn_info *info)
{
	int all_end = end;
	end = trim_semicolons(src, t, first, end);
	struct ob o = { out, 0, outcap, 0 };
	enum nk prev = NK_NONE;
	(void)d;
	/* not the 1 KiB table-name array: only its first n_tables entries are ever read */
	memset(info, 0, offsetof(struct sn_info, tables));
	/* which words occur: detectors skip statements that lack every word they look for */
	for (int i = first; i < all_end; i++) {
		const struct sn_tok *k = &t[i];
		int id = k->type == SN_WORD ? k->kw
			 : k->type == SN_COMMENT ? SNW__COMMENT
			 : k->type == SN_VAR ? SNW__VAR
			 : (k->type == SN_OP && k->len == 2 && src[k->off] == '|' && src[k->off + 1] == '|') ? SNW__PIPES
			 : SNW_NONE;
		if (id == SNW_NONE && k->type == SN_WORD && password_word(src, k))
			id = SNW_PASSWORD; /* MASTER_PASSWORD='...': as secret as PASSWORD '...' */
		info->words[id >> 6] |= 1ull << (id & 63);
	}
	int secret = secret_scan(t, first, end, info);
	if (outcap)
		out[0] = 0;
	for (int i = first; i < end; i++) {
		const struct sn_tok *k = &t[i];
		const char *p = src + k->off;
		if (k->type == SN_COMMENT)
			continue;
		enum nk cur;
		if (secret && secret_bare(src, t, first, i)) {
			ob_space(&o, prev, NK_LIT);
			ob_put(&o, "?", 1);
			prev = NK_LIT;
			continue;
		}
		if (k->type == SN_OP && k->len == 1 && (p[0] == '-' || p[0] == '+') &&
		    (prev == NK_NONE || prev == NK_OPEN || prev == NK_COMMA || prev == NK_OP || prev == NK_KW)) {
			int nx = next_code(t, i + 1, end);
			if (nx < end && t[nx].type == SN_NUMBER) {
				ob_space(&o, prev, NK_LIT);
				ob_put(&o, "?", 1);
				prev = NK_LIT;
				i = nx;
				continue;
			}
		}
		if (sn_is_literal(k) || k->type == SN_PARAM) {
			ob_space(&o, prev, NK_LIT);
			ob_put(&o, "?", 1);
			prev = NK_LIT;
			continue;
		}
		if (sn_kw(k, SNW_IN)) {
			int ar, after = lit_tuple(src, t, i + 1, end, &ar);
			if (after > 0) {
				ob_space(&o, prev, NK_KW);
				ob_put(&o, "IN (?)", 6);
				prev = NK_CLOSE;
				i = after - 1;
				continue;
			}
		}
		if (sn_kw(k, SNW_VALUES)) {
			int ar, after = lit_tuple(src, t, i + 1, end, &ar);
			if (after > 0) {
				ob_space(&o, prev, NK_KW);
				ob_put(&o, "VALUES (", 8);
				for (int m = 0; m < ar; m++)
					ob_put(&o, m ? ", ?" : "?", m ? 3 : 1);
				ob_put(&o, ")", 1);
				prev = NK_CLOSE;
				/* drop further all-literal tuples */
				for (;;) {
					int c = next_code(t, after, end);
					int ar2, a2;
					if (c < end && t[c].type == SN_PUNCT && src[t[c].off] == ',' &&
					    (a2 = lit_tuple(src, t, c + 1, end, &ar2)) > 0) {
						after = a2;
						continue;
					}
					break;
				}
				i = after - 1;
				continue;
			}
		}
		switch (k->type) {
		case SN_WORD:
			cur = word_is_kw[k->kw] ? NK_KW : NK_IDENT;
			ob_space(&o, prev, cur);
			ob_case(&o, p, k->len, cur == NK_KW);
			prev = cur;
			break;
		case SN_VAR:
			ob_space(&o, prev, NK_IDENT);
			ob_case(&o, p, k->len, 0);
			prev = NK_IDENT;
			break;
		case SN_QIDENT:
			ob_space(&o, prev, NK_IDENT);
			ob_put(&o, p, k->len);
			prev = NK_IDENT;
			break;
		case SN_PUNCT:
			cur = p[0] == '(' || p[0] == '[' ? NK_OPEN : p[0] == ')' || p[0] == ']' ? NK_CLOSE
				: p[0] == ',' ? NK_COMMA : p[0] == '.' ? NK_DOT : p[0] == ';' ? NK_SEMI : NK_OP;
			ob_space(&o, prev, cur);
			ob_put(&o, p, 1);
			prev = cur;
			break;
		default:
			cur = (k->len == 2 && p[0] == ':' && p[1] == ':') ? NK_CAST : NK_OP;
			ob_space(&o, prev, cur);
			ob_put(&o, p, k->len);
			prev = cur;
			break;
		}
	}
	ob_end(&o);
	info->truncated = o.trunc;
	info->hash = sn_hash(o.p, o.n, SN_HASH_INIT);
	static const char hx[] = "0123456789abcdef";
	for (int b = 0; b < 8; b++) { /* "%016llx" without printf's cost on every statement */
		unsigned v = (unsigned)(info->hash >> (56 - 8 * b)) & 0xff;
		info->fingerprint[2 * b] = hx[v >> 4];
		info->fingerprint[2 * b + 1] = hx[v & 15];
	}
	info->fingerprint[16] = 0;
	verb_scan(src, t, first, end, info);
	tables_scan(src, t, first, end, info);
	info->secret = secret;
	return o.n;
}

/* n bytes of p into out with ASCII A-Z folded to a-z, eight at a time (identifiers). */
static size_t lower_copy(uint8_t *out, const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	size_t m = 0;
	for (; m + 8 <= n; m += 8) {
		uint64_t w;
		memcpy(&w, p + m, 8);
		/* per byte, high bit set where 'A' <= byte <= 'Z' (bytes >= 0x80 excluded) */
		uint64_t low7 = w & ~high;
		uint64_t ge_a = low7 + ones * (0x80 - 'A'), gt_z = low7 + ones * (0x80 - 'Z' - 1);
		uint64_t upper = ge_a & ~gt_z & ~w & high;
		w |= upper >> 2; /* 0x80 >> 2 = 0x20 */
		memcpy(out + m, &w, 8);
	}
	for (; m < n; m++)
		out[m] = (uint8_t)lc((unsigned char)p[m]);
	return n;
}

size_t sn_shape_key(const char *src, const struct sn_tok *t, int first, int end, uint8_t *key, size_t cap)
{
	size_t o = 0;
	if (cap < 2 || first > end)
		return 0;
	uint16_t d0 = first < end ? t[first].depth : 0;
	key[o++] = (uint8_t)(d0 >> 8);
	key[o++] = (uint8_t)d0;
	for (int i = first; i < end; i++) {
		const struct sn_tok *k = &t[i];
		const char *p = src + k->off;
		if (o + 2 > cap)
			return 0;
		switch (k->type) {
		case SN_WORD:
			if (k->kw) { /* id = the case-folded word */
				key[o++] = 0x80 | SN_WORD;
				key[o++] = k->kw;
				continue;
			}
			/* other words: their text, case-folded, like variables */
			/* fall through */
		case SN_VAR:
			if (k->len > 255 || o + 2 + k->len > cap)
				return 0;
			key[o++] = k->type;
			key[o++] = (uint8_t)k->len;
			o += lower_copy(key + o, p, k->len);
			break;
		case SN_QIDENT:
		case SN_OP:
		case SN_PUNCT:
			if (k->len > 255 || o + 2 + k->len > cap)
				return 0;
			key[o++] = k->type;
			key[o++] = (uint8_t)k->len;
			for (uint32_t m = 0; m < k->len; m++) /* mostly one or two bytes: no call */
				key[o++] = (uint8_t)p[m];
			break;
		default: /* literals, parameters, comments: the kind only */
			key[o++] = k->type;
			break;
		}
	}
	return o;
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
	end = trim_semicolons(src, t, first, end);
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
		} else if (secret && secret_bare(src, t, first, i)) {
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
