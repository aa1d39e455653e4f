/* End-user attribution parsing (DESIGN.md §4): sqlcommenter-style comment tags, and the
 * markers a statement sets (SET [LOCAL], set_config, SET @var, SET ROLE, DISCARD ALL).
 * Works on the token stream, so spacing and quoting style do not matter. */
#ifndef DBTAP_ATTR_H
#define DBTAP_ATTR_H

#include <stddef.h>

#include "an.h"
#include "sqlnorm.h"

#define ATTR_VAL_MAX 128
#define ATTR_MAX_OPS 8

/* A bound parameter value as text (NULL text: SQL NULL or not decodable). */
struct attr_val {
	const char *text;
	size_t n;
};

enum attr_kind {
	ATTR_USER,	/* an end-user marker (configured setting / variable) */
	ATTR_APPNAME,	/* application_name (the end user only if it matches a pattern) */
	ATTR_ROLE,	/* effective role (SET ROLE, SET SESSION AUTHORIZATION, set_config('role')) */
	ATTR_RESET_ALL, /* DISCARD ALL / RESET ALL: session markers and role reset */
};
enum attr_scope { ATTR_SESSION, ATTR_TXN };

struct attr_op {
	enum attr_kind kind;
	enum attr_scope scope;
	int clear;   /* DEFAULT / NULL / RESET / empty value: the marker is unset */
	int unknown; /* set to a value we cannot read (an expression): no name, not the old one */
	char value[ATTR_VAL_MAX];
};

/* Find the end user in the statement's comments (keys in order of precedence).
 * Returns 1 and fills user when found; traceparent filled when present (else ""). */
int attr_comment_user(const char *base, const struct sn_tok *t, int first, int end,
		      const struct an_strlist *keys, char *user, size_t ucap, char *trace, size_t tcap);

/* Parse the key=value pairs of one comment text (without delimiters handling needs):
 * calls fn for each pair with URL-decoded key and value. Exposed for tests. */
void attr_comment_pairs(const char *p, size_t n,
			void (*fn)(void *ctx, const char *key, const char *val), void *ctx);

/* Markers set by one statement, in order. Returns the number of ops written. */
int attr_statement(const char *base, const struct sn_tok *t, int first, int end, enum sn_dialect d,
		   const struct an_config *cfg, const struct attr_val *params, int n_params,
		   struct attr_op *ops, int cap);

/* Copy a value for storage: capped, control bytes replaced by '?'. */
void attr_clean(char *dst, size_t cap, const char *src, size_t n);

#endif
