/* SQL lexer, normaliser, fingerprint, splitter and secret masking (prefix sn_): sn_lex.c,
 * sn_norm.c, sn_split.c, sn_mask.c, with words, character classes and hashes in sn_words.c.
 * Works on a bounded token array so detectors and attribution see the same token stream;
 * every function caps its work (tokens, output bytes, nesting) and reports truncation. */
#ifndef DBTAP_SQLNORM_H
#define DBTAP_SQLNORM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum sn_dialect { SN_PG, SN_MYSQL };

enum sn_type {
	SN_WORD,    /* unquoted identifier or keyword */
	SN_QIDENT,  /* "ident" (PG) or `ident` (MySQL) */
	SN_STRING,  /* '..', E'..', $tag$..$tag$, N'..', _cs'..', MySQL "..", X'..', B'..' */
	SN_NUMBER,  /* 1, 1.5, .5, 1e5, 0x1F, 0b101 */
	SN_PARAM,   /* $1 (PG) or ? (MySQL) */
	SN_VAR,	    /* @name, @@name (MySQL) */
	SN_OP,	    /* = <> :: || ... */
	SN_PUNCT,   /* ( ) , ; [ ] . { } */
	SN_COMMENT, /* -- .., # .., / * .. * / */
};

#define SN_F_UNTERMINATED 0x01 /* string / comment / identifier ran to the end */
#define SN_F_ESCAPES 0x02      /* backslash escapes apply inside (E'' / MySQL) */
#define SN_F_LINE 0x04	       /* line comment */
#define SN_F_DOLLAR 0x08       /* dollar-quoted string */
#define SN_F_PREFIX 0x10       /* prefixed literal (E, N, X, B, U&, _charset) */

/* Words the lexer recognises, case-insensitively: SQL keywords (flag 1: upper-cased by the
 * normaliser) and the words detectors and attribution look for (flag 0). A token's kw holds
 * the id, so hot paths compare small integers instead of strings. */
#define SN_WORD_LIST(X) \
	X(ADD, "ADD", 1) \
	X(ALL, "ALL", 1) \
	X(ALTER, "ALTER", 1) \
	X(ANALYZE, "ANALYZE", 1) \
	X(AND, "AND", 1) \
	X(ANY, "ANY", 1) \
	X(ARRAY, "ARRAY", 1) \
	X(AS, "AS", 1) \
	X(ASC, "ASC", 1) \
	X(BEGIN, "BEGIN", 1) \
	X(BETWEEN, "BETWEEN", 1) \
	X(BY, "BY", 1) \
	X(CALL, "CALL", 1) \
	X(CASE, "CASE", 1) \
	X(CAST, "CAST", 1) \
	X(CHECK, "CHECK", 1) \
	X(COMMIT, "COMMIT", 1) \
	X(CONFLICT, "CONFLICT", 1) \
	X(CONSTRAINT, "CONSTRAINT", 1) \
	X(COPY, "COPY", 1) \
	X(CREATE, "CREATE", 1) \
	X(CROSS, "CROSS", 1) \
	X(DATABASE, "DATABASE", 1) \
	X(DEALLOCATE, "DEALLOCATE", 1) \
	X(DEFAULT, "DEFAULT", 1) \
	X(DELETE, "DELETE", 1) \
	X(DESC, "DESC", 1) \
	X(DISTINCT, "DISTINCT", 1) \
	X(DO, "DO", 1) \
	X(DROP, "DROP", 1) \
	X(DUMPFILE, "DUMPFILE", 1) \
	X(ELSE, "ELSE", 1) \
	X(END, "END", 1) \
	X(EXCEPT, "EXCEPT", 1) \
	X(EXECUTE, "EXECUTE", 1) \
	X(EXISTS, "EXISTS", 1) \
	X(EXPLAIN, "EXPLAIN", 1) \
	X(FALSE, "FALSE", 1) \
	X(FETCH, "FETCH", 1) \
	X(FOR, "FOR", 1) \
	X(FOREIGN, "FOREIGN", 1) \
	X(FROM, "FROM", 1) \
	X(FULL, "FULL", 1) \
	X(FUNCTION, "FUNCTION", 1) \
	X(GRANT, "GRANT", 1) \
	X(GROUP, "GROUP", 1) \
	X(HAVING, "HAVING", 1) \
	X(IDENTIFIED, "IDENTIFIED", 1) \
	X(IF, "IF", 1) \
	X(ILIKE, "ILIKE", 1) \
	X(IN, "IN", 1) \
	X(INDEX, "INDEX", 1) \
	X(INFILE, "INFILE", 1) \
	X(INNER, "INNER", 1) \
	X(INSERT, "INSERT", 1) \
	X(INTERSECT, "INTERSECT", 1) \
	X(INTO, "INTO", 1) \
	X(IS, "IS", 1) \
	X(JOIN, "JOIN", 1) \
	X(KEY, "KEY", 1) \
	X(LATERAL, "LATERAL", 1) \
	X(LEFT, "LEFT", 1) \
	X(LIKE, "LIKE", 1) \
	X(LIMIT, "LIMIT", 1) \
	X(LOAD, "LOAD", 1) \
	X(LOCAL, "LOCAL", 1) \
	X(LOCK, "LOCK", 1) \
	X(MERGE, "MERGE", 1) \
	X(NATURAL, "NATURAL", 1) \
	X(NOT, "NOT", 1) \
	X(NOTHING, "NOTHING", 1) \
	X(NULL, "NULL", 1) \
	X(OFFSET, "OFFSET", 1) \
	X(ON, "ON", 1) \
	X(ONLY, "ONLY", 1) \
	X(OR, "OR", 1) \
	X(ORDER, "ORDER", 1) \
	X(OUTER, "OUTER", 1) \
	X(OUTFILE, "OUTFILE", 1) \
	X(OVER, "OVER", 1) \
	X(PARTITION, "PARTITION", 1) \
	X(PASSWORD, "PASSWORD", 1) \
	X(PREPARE, "PREPARE", 1) \
	X(PRIMARY, "PRIMARY", 1) \
	X(PROCEDURE, "PROCEDURE", 1) \
	X(REFERENCES, "REFERENCES", 1) \
	X(RELEASE, "RELEASE", 1) \
	X(RETURNING, "RETURNING", 1) \
	X(REVOKE, "REVOKE", 1) \
	X(RIGHT, "RIGHT", 1) \
	X(ROLE, "ROLE", 1) \
	X(ROLLBACK, "ROLLBACK", 1) \
	X(SAVEPOINT, "SAVEPOINT", 1) \
	X(SCHEMA, "SCHEMA", 1) \
	X(SELECT, "SELECT", 1) \
	X(SESSION, "SESSION", 1) \
	X(SET, "SET", 1) \
	X(SHOW, "SHOW", 1) \
	X(START, "START", 1) \
	X(TABLE, "TABLE", 1) \
	X(THEN, "THEN", 1) \
	X(TO, "TO", 1) \
	X(TRANSACTION, "TRANSACTION", 1) \
	X(TRUE, "TRUE", 1) \
	X(TRUNCATE, "TRUNCATE", 1) \
	X(UNION, "UNION", 1) \
	X(UNIQUE, "UNIQUE", 1) \
	X(UPDATE, "UPDATE", 1) \
	X(USE, "USE", 1) \
	X(USER, "USER", 1) \
	X(USING, "USING", 1) \
	X(VALUES, "VALUES", 1) \
	X(VIEW, "VIEW", 1) \
	X(WHEN, "WHEN", 1) \
	X(WHERE, "WHERE", 1) \
	X(WINDOW, "WINDOW", 1) \
	X(WITH, "WITH", 1) \
	X(PG_SLEEP, "pg_sleep", 0) \
	X(PG_SLEEP_FOR, "pg_sleep_for", 0) \
	X(PG_SLEEP_UNTIL, "pg_sleep_until", 0) \
	X(SLEEP, "sleep", 0) \
	X(BENCHMARK, "benchmark", 0) \
	X(WAITFOR, "WAITFOR", 0) \
	X(DELAY, "DELAY", 0) \
	X(DBMS_LOCK, "dbms_lock", 0) \
	X(VERSION, "version", 0) \
	X(CURRENT_USER, "current_user", 0) \
	X(SESSION_USER, "session_user", 0) \
	X(SYSTEM_USER, "system_user", 0) \
	X(CURRENT_DATABASE, "current_database", 0) \
	X(LOAD_FILE, "load_file", 0) \
	X(INET_SERVER_ADDR, "inet_server_addr", 0) \
	X(PG_SHADOW, "pg_shadow", 0) \
	X(PG_AUTHID, "pg_authid", 0) \
	X(PG_USER_MAPPINGS, "pg_user_mappings", 0) \
	X(PG_CATALOG, "pg_catalog", 0) \
	X(INFORMATION_SCHEMA, "information_schema", 0) \
	X(MYSQL, "mysql", 0) \
	X(PG_USER, "pg_user", 0) \
	X(PG_ROLES, "pg_roles", 0) \
	X(PG_TABLES, "pg_tables", 0) \
	X(PERFORMANCE_SCHEMA, "performance_schema", 0) \
	X(DB, "db", 0) \
	X(SHUTDOWN, "SHUTDOWN", 0) \
	X(EXEC, "EXEC", 0) \
	X(RENAME, "RENAME", 0) \
	X(REPLACE, "REPLACE", 0) \
	X(SUPERUSER, "SUPERUSER", 0) \
	X(SUPER, "SUPER", 0) \
	X(CREATEROLE, "CREATEROLE", 0) \
	X(BYPASSRLS, "BYPASSRLS", 0) \
	X(PG_EXECUTE_SERVER_PROGRAM, "pg_execute_server_program", 0) \
	X(PG_READ_SERVER_FILES, "pg_read_server_files", 0) \
	X(PG_WRITE_SERVER_FILES, "pg_write_server_files", 0) \
	X(FILE, "FILE", 0) \
	X(PRIVILEGES, "PRIVILEGES", 0) \
	X(MAPPING, "MAPPING", 0) \
	X(RESET, "RESET", 0) \
	X(STDOUT, "STDOUT", 0) \
	X(STDIN, "STDIN", 0) \
	X(PROGRAM, "PROGRAM", 0) \
	X(DATA, "DATA", 0) \
	X(LOW_PRIORITY, "LOW_PRIORITY", 0) \
	X(CONCURRENT, "CONCURRENT", 0) \
	X(PG_READ_FILE, "pg_read_file", 0) \
	X(PG_READ_BINARY_FILE, "pg_read_binary_file", 0) \
	X(PG_LS_DIR, "pg_ls_dir", 0) \
	X(PG_STAT_FILE, "pg_stat_file", 0) \
	X(LO_EXPORT, "lo_export", 0) \
	X(LO_IMPORT, "lo_import", 0) \
	X(PG_FILE_WRITE, "pg_file_write", 0) \
	X(LO_FROM_BYTEA, "lo_from_bytea", 0) \
	X(TEMP, "TEMP", 0) \
	X(TEMPORARY, "TEMPORARY", 0) \
	X(UNLOGGED, "UNLOGGED", 0) \
	X(DESCRIBE, "DESCRIBE", 0) \
	X(SERVER, "SERVER", 0) \
	X(AUTHENTICATION_STRING, "authentication_string", 0) \
	X(DISCARD, "DISCARD", 0) \
	X(AUTHORIZATION, "AUTHORIZATION", 0) \
	X(GLOBAL, "GLOBAL", 0) \
	X(SET_CONFIG, "set_config", 0) \
	X(LOOP, "LOOP", 0) \
	X(WHILE, "WHILE", 0) \
	X(REPEAT, "REPEAT", 0) \
	X(TRIGGER, "TRIGGER", 0) \
	X(EVENT, "EVENT", 0)

enum sn_word_id {
	SNW_NONE,
#define SN_WORD_ID(id, text, kw) SNW_##id,
	SN_WORD_LIST(SN_WORD_ID)
#undef SN_WORD_ID
	/* not words: token kinds recorded in sn_info.words too */
	SNW__COMMENT,
	SNW__VAR,   /* @var (MySQL) */
	SNW__PIPES, /* the || operator (OR in MySQL) */
	SNW__COUNT
};

struct sn_tok {
	uint8_t type;
	uint8_t flags;
	uint16_t depth; /* parenthesis depth before the token (saturating) */
	uint32_t off, len;
	uint8_t kw; /* enum sn_word_id of an SN_WORD token, SNW_NONE otherwise */
};

/* Is the token the recognised word id (an SN_WORD whose text is that word in any case)? */
static inline int sn_kw(const struct sn_tok *t, int id)
{
	return t->kw == id && t->type == SN_WORD;
}

/* Caps: beyond them the work stops and the result is marked truncated. */
#define SN_MAX_INPUT (1u << 20) /* bytes lexed per statement */
#define SN_MAX_TOKENS 16384
#define SN_MAX_NORM 8192 /* normalised text bytes */
#define SN_MAX_PARTS 64	 /* statements split out of one simple query */
#define SN_MAX_TABLES 16

/* Lex src into toks (cap entries). Returns the token count; *truncated set when the
 * input or the token array was too large (the tokens returned are still valid). Uses the
 * dialect's default mode (sn_default_mode). */
int sn_lex(const char *src, size_t len, enum sn_dialect d, struct sn_tok *toks, int cap,
	   int *truncated);

/* Session settings that change where the server's lexer ends a string or identifier. */
#define SN_M_BACKSLASH 0x1   /* \ escapes in plain '..' (and MySQL "..") strings: MySQL without
			      * NO_BACKSLASH_ESCAPES, PG with standard_conforming_strings off */
#define SN_M_ANSI_QUOTES 0x2 /* MySQL ANSI_QUOTES: "..." is an identifier */
#define SN_M_ALL 0x3
/* MySQL: backslash escapes on; PG: standard_conforming_strings on (both servers' defaults). */
static inline unsigned sn_default_mode(enum sn_dialect d)
{
	return d == SN_MYSQL ? SN_M_BACKSLASH : 0;
}
int sn_lex_mode(const char *src, size_t len, enum sn_dialect d, unsigned mode, struct sn_tok *toks, int cap,
		int *truncated);

/* Case-insensitive compare of a token's text with an ASCII word. */
int sn_is(const char *src, const struct sn_tok *t, const char *word);
/* Is the token the word (SN_WORD only). Inline because it runs ~100 times per statement
 * with a literal word: strlen folds to a constant, so most calls end at the length test. */
static inline int sn_word(const char *src, const struct sn_tok *t, const char *word)
{
	size_t n = strlen(word);
	if (t->type != SN_WORD || t->len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned a = (unsigned char)src[t->off + i], b = (unsigned char)word[i];
		if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
			return 0;
	}
	return 1;
}
static inline int sn_is_literal(const struct sn_tok *t)
{
	return t->type == SN_STRING || t->type == SN_NUMBER;
}
int sn_is_keyword(const char *p, size_t n);

/* Unquote a literal string / number token into buf (always NUL-terminated, capped).
 * Returns the length written. */
size_t sn_literal_text(const char *src, const struct sn_tok *t, char *buf, size_t cap);

struct sn_range {
	uint32_t off, len; /* bytes of the source */
	int tok_first, tok_end; /* token index range [first, end) */
};

/* Split at top-level ';' (routine bodies kept whole). Parts holding only comments are
 * dropped. Returns the number of parts written (<= cap); *more set when parts were merged
 * because of the cap. */
int sn_split(const char *src, const struct sn_tok *toks, int n, struct sn_range *parts, int cap,
	     int *more);

/* Does the MySQL statement [first, end) set the session's sql_mode (SET [SESSION|LOCAL]
 * sql_mode = ..., SET @@[session.]sql_mode = ...)? 1: to a literal, *mode gets its
 * SN_M_BACKSLASH / SN_M_ANSI_QUOTES reading (other bits kept); -1: to something the text
 * does not tell (an expression, DEFAULT); 0: it does not. */
int sn_sets_sql_mode(const char *src, const struct sn_tok *toks, int first, int end, unsigned *mode);

/* What one statement is. */
struct sn_info {
	char verb[24];	      /* main verb upper-cased (WITH ... -> the verb after the CTEs) */
	int verb_kw;	      /* the verb's word id (SNW_NONE when it is no recognised word) */
	char fingerprint[17]; /* 16 hex digits */
	uint64_t hash;
	int truncated;	      /* input, tokens or normalised text hit a cap */
	int secret;	      /* carries a password: mask every literal and bound parameter */
	uint64_t words[(SNW__COUNT + 63) / 64]; /* set of the word ids (and SNW__*) present */
	int n_tables;
	char tables[SN_MAX_TABLES][64]; /* referenced tables, lower-cased, schema.name as written */
};

/* Normalise tokens [first, end) of src into out (capacity outcap, NUL-terminated) and fill
 * info. Literals -> ?, comments dropped, whitespace collapsed, keywords upper-case and other
 * words lower-case, IN lists and VALUES tuples collapsed. Returns the length written. */
size_t sn_normalize(const char *src, const struct sn_tok *toks, int first, int end,
		    enum sn_dialect d, char *out, size_t outcap, struct sn_info *info);

/* A compact key of everything sn_normalize reads from tokens [first, end): token types,
 * the first token's depth, operator, punctuation and quoted-identifier text verbatim,
 * words and variables case-folded (recognised words by id); literal values and comment
 * text are left out. Equal keys normalise to the same text and info, so a cache keyed by
 * it skips the normaliser for a statement shape already seen. Returns the key length, or
 * 0 when the key does not fit cap or a token is longer than 255 bytes (normalise then). */
size_t sn_shape_key(const char *src, const struct sn_tok *t, int first, int end, uint8_t *key, size_t cap);

/* The statement text for storage, into out (NUL-terminated, capped at outcap).
 * keep_literals=0: literals replaced by ?, comments dropped. keep_literals=1: verbatim, but
 * password literals (and, in a secret statement, every literal) masked. */
size_t sn_mask(const char *src, const struct sn_tok *toks, int first, int end, int keep_literals,
	       int secret, char *out, size_t outcap);

/* Is the literal token at index i a password (after PASSWORD / IDENTIFIED BY|AS, inside
 * SET PASSWORD, an argument of PASSWORD()/CRYPT(), or a string mentioning password=)? */
int sn_is_secret_literal(const char *src, const struct sn_tok *toks, int first, int end, int i);

/* Does the statement contain the word id (anywhere in its tokens, comments excepted)? */
static inline int sn_has(const struct sn_info *info, int id)
{
	return (info->words[id >> 6] >> (id & 63)) & 1;
}

/* Word lists (each ended by SNW_NONE) as one bit set like sn_info.words, built on first use:
 * the detectors' "does it contain any of these" gates run for every statement. */
struct sn_wordset {
	const uint8_t *lists[4]; /* up to three lists, then NULL */
	atomic_int ready;
	uint64_t w[(SNW__COUNT + 63) / 64];
};
#define SN_WORDSET(...) { { __VA_ARGS__, NULL }, 0, { 0 } }
void sn_wordset_build(struct sn_wordset *s);

/* Does it contain any word of the set? */
static inline int sn_has_set(const struct sn_info *info, struct sn_wordset *s)
{
	if (!atomic_load_explicit(&s->ready, memory_order_acquire))
		sn_wordset_build(s);
	uint64_t any = 0;
	for (size_t k = 0; k < sizeof s->w / sizeof s->w[0]; k++)
		any |= info->words[k] & s->w[k];
	return any != 0;
}

/* Is the token one of ids (a list ended by SNW_NONE)? */
static inline int sn_kw_in(const struct sn_tok *t, const uint8_t *ids)
{
	if (t->type != SN_WORD || !t->kw)
		return 0;
	for (; *ids; ids++)
		if (t->kw == *ids)
			return 1;
	return 0;
}

/* The text of a recognised word as listed (keywords upper-case, others as written). */
const char *sn_word_text(int id);

/* FNV-1a 64: the stored fingerprints are made of it, so it never changes. */
uint64_t sn_hash(const void *p, size_t n, uint64_t h);
#define SN_HASH_INIT 0xcbf29ce484222325ULL
/* For in-memory tables only (never stored, free to change): eight bytes a step. */
uint64_t sn_hash_mem(const void *p, size_t n, uint64_t h);

#endif
