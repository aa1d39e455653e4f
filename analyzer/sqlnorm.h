/* SQL lexer, normaliser, fingerprint, splitter and secret masking.
 * Works on a bounded token array so detectors and attribution see the same token stream;
 * every function caps its work (tokens, output bytes, nesting) and reports truncation. */
#ifndef DBTAP_SQLNORM_H
#define DBTAP_SQLNORM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum sq_dialect { SQ_PG, SQ_MYSQL };

enum sq_type {
	SQ_WORD,    /* unquoted identifier or keyword */
	SQ_QIDENT,  /* "ident" (PG) or `ident` (MySQL) */
	SQ_STRING,  /* '..', E'..', $tag$..$tag$, N'..', _cs'..', MySQL "..", X'..', B'..' */
	SQ_NUMBER,  /* 1, 1.5, .5, 1e5, 0x1F, 0b101 */
	SQ_PARAM,   /* $1 (PG) or ? (MySQL) */
	SQ_VAR,	    /* @name, @@name (MySQL) */
	SQ_OP,	    /* = <> :: || ... */
	SQ_PUNCT,   /* ( ) , ; [ ] . { } */
	SQ_COMMENT, /* -- .., # .., / * .. * / */
};

#define SQ_F_UNTERMINATED 0x01 /* string / comment / identifier ran to the end */
#define SQ_F_ESCAPES 0x02      /* backslash escapes apply inside (E'' / MySQL) */
#define SQ_F_LINE 0x04	       /* line comment */
#define SQ_F_DOLLAR 0x08       /* dollar-quoted string */
#define SQ_F_PREFIX 0x10       /* prefixed literal (E, N, X, B, U&, _charset) */

struct sq_tok {
	uint8_t type;
	uint8_t flags;
	uint16_t depth; /* parenthesis depth before the token (saturating) */
	uint32_t off, len;
};

/* Caps: beyond them the work stops and the result is marked truncated. */
#define SQ_MAX_INPUT (1u << 20) /* bytes lexed per statement */
#define SQ_MAX_TOKENS 16384
#define SQ_MAX_NORM 8192 /* normalised text bytes */
#define SQ_MAX_PARTS 64	 /* statements split out of one simple query */
#define SQ_MAX_TABLES 16

/* Lex src into toks (cap entries). Returns the token count; *truncated set when the
 * input or the token array was too large (the tokens returned are still valid). */
int sq_lex(const char *src, size_t len, enum sq_dialect d, struct sq_tok *toks, int cap,
	   int *truncated);

/* Case-insensitive compare of a token's text with an ASCII word. */
int sq_is(const char *src, const struct sq_tok *t, const char *word);
/* Is the token the word (SQ_WORD only). Inline because it runs ~100 times per statement
 * with a literal word: strlen folds to a constant, so most calls end at the length test. */
static inline int sq_word(const char *src, const struct sq_tok *t, const char *word)
{
	size_t n = strlen(word);
	if (t->type != SQ_WORD || t->len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned a = (unsigned char)src[t->off + i], b = (unsigned char)word[i];
		if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
			return 0;
	}
	return 1;
}
int sq_is_literal(const struct sq_tok *t);
int sq_is_keyword(const char *p, size_t n);

/* Unquote a literal string / number token into buf (always NUL-terminated, capped).
 * Returns the length written. */
size_t sq_literal_text(const char *src, const struct sq_tok *t, char *buf, size_t cap);

struct sq_range {
	uint32_t off, len; /* bytes of the source */
	int tok_first, tok_end; /* token index range [first, end) */
};

/* Split at top-level ';' (routine bodies kept whole). Parts holding only comments are
 * dropped. Returns the number of parts written (<= cap); *more set when parts were merged
 * because of the cap. */
int sq_split(const char *src, const struct sq_tok *toks, int n, struct sq_range *parts, int cap,
	     int *more);

/* What one statement is. */
struct sq_info {
	char verb[24];	      /* main verb upper-cased (WITH ... -> the verb after the CTEs) */
	char fingerprint[17]; /* 16 hex digits */
	uint64_t hash;
	int truncated;	      /* input, tokens or normalised text hit a cap */
	int secret;	      /* carries a password: mask every literal and bound parameter */
	int n_tables;
	char tables[SQ_MAX_TABLES][64]; /* referenced tables, lower-cased, schema.name as written */
};

/* Normalise tokens [first, end) of src into out (capacity outcap, NUL-terminated) and fill
 * info. Literals -> ?, comments dropped, whitespace collapsed, keywords upper-case and other
 * words lower-case, IN lists and VALUES tuples collapsed. Returns the length written. */
size_t sq_normalize(const char *src, const struct sq_tok *toks, int first, int end,
		    enum sq_dialect d, char *out, size_t outcap, struct sq_info *info);

/* The statement text for storage, into out (NUL-terminated, capped at outcap).
 * keep_literals=0: literals replaced by ?, comments dropped. keep_literals=1: verbatim, but
 * password literals (and, in a secret statement, every literal) masked. */
size_t sq_mask(const char *src, const struct sq_tok *toks, int first, int end, int keep_literals,
	       int secret, char *out, size_t outcap);

/* Is the literal token at index i a password (after PASSWORD / IDENTIFIED BY|AS, inside
 * SET PASSWORD, an argument of PASSWORD()/CRYPT(), or a string mentioning password=)? */
int sq_is_secret_literal(const char *src, const struct sq_tok *toks, int first, int end, int i);

/* FNV-1a 64. */
uint64_t sq_hash(const void *p, size_t n, uint64_t h);
#define SQ_HASH_INIT 0xcbf29ce484222325ULL

#endif
