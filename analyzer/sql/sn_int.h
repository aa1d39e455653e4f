/* Internals of the SQL lexer and normaliser (sn_*.c): character and word tables, the output
 * buffer, token walks shared by the splitter, normaliser and masking. Only analyzer/sql/
 * includes it. */
#ifndef DBTAP_SN_INT_H
#define DBTAP_SN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
extern uint8_t sn_cclass[256];
/* Builds the character classes and the word table once (pthread_once): before either is read. */
void sn_tables_init(void);

static inline int is_space(unsigned char c)
{
	return sn_cclass[c] & C_SPACE;
}
static inline int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}
static inline int is_xdigit(unsigned char c)
{
	return sn_cclass[c] & C_XDIGIT;
}
static inline int is_word_start(unsigned char c)
{
	return sn_cclass[c] & C_WSTART;
}
static inline int is_word_char(unsigned char c)
{
	return sn_cclass[c] & C_WCHAR;
}

/* The recognised words (sn_words.c), indexed by id, and the lookup table by hash. */
#define WORD_MAX 32
#define KW_SLOTS 1024
extern const char *const sn_word_text_tab[SNW__COUNT];
extern const uint8_t sn_word_is_kw[SNW__COUNT];
extern char sn_word_upper[SNW__COUNT][WORD_MAX + 1];
extern uint8_t sn_word_len[SNW__COUNT];
extern uint8_t sn_kw_slot[KW_SLOTS]; /* word id; 0 = empty */

static inline unsigned kw_hash(const char *p, size_t n)
{
	unsigned a = (unsigned)uc((unsigned char)p[0]), z = (unsigned)uc((unsigned char)p[n - 1]);
	unsigned b = (unsigned)uc((unsigned char)p[n / 2]);
	return (unsigned)(n * 31u + a * 7u + b * 13u + z * 3u) & (KW_SLOTS - 1);
}


/* Id of the word p[0..n) (any case), SNW_NONE when it is not in the list. */
static inline int word_find(const char *p, size_t n)
{
	if (n == 0 || n > WORD_MAX)
		return SNW_NONE;
	for (unsigned h = kw_hash(p, n); sn_kw_slot[h]; h = (h + 1) & (KW_SLOTS - 1)) {
		if (sn_word_len[sn_kw_slot[h]] != n)
			continue;
		const char *w = sn_word_upper[sn_kw_slot[h]];
		size_t i = 0;
		while (i < n && w[i] == (char)uc((unsigned char)p[i]))
			i++;
		if (i == n && w[n] == 0)
			return sn_kw_slot[h];
	}
	return SNW_NONE;
}

/* Output buffer of the normaliser and the masking. */
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

static inline int next_code(const struct sn_tok *toks, int i, int end)
{
	while (i < end && toks[i].type == SN_COMMENT)
		i++;
	return i;
}

static inline int prev_code(const struct sn_tok *t, int i, int first)
{
	i--;
	while (i >= first && t[i].type == SN_COMMENT)
		i--;
	return i;
}

/* p[0..n) is tail, alone or after an underscore (any case; tail in lower case). */
static inline int ends_with_word(const char *p, size_t n, const char *tail, size_t tl)
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
static inline int password_word(const char *src, const struct sn_tok *k)
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

/* sn_norm.c */
int sn_trim_semicolons(const char *src, const struct sn_tok *t, int first, int end);
/* sn_mask.c */
int sn_secret_bare(const char *src, const struct sn_tok *t, int first, int i);
int sn_secret_scan(const struct sn_tok *t, int first, int end, const struct sn_info *info);

#endif
