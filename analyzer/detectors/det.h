/* Helpers shared by the detectors (det_*.c): token tests on the statement being analysed
 * and the standard summary prefix. Kept tiny: detectors read the token stream directly. */
#ifndef DBTAP_DET_H
#define DBTAP_DET_H

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "an_int.h"

static inline const struct sn_tok *det_tok(const struct an_stmt *st, int i)
{
	return &st->toks[i];
}

static inline int det_word(const struct an_stmt *st, int i, const char *w)
{
	return i >= st->first && i < st->end && sn_word(st->base, &st->toks[i], w);
}

static inline int det_punct(const struct an_stmt *st, int i, char c)
{
	return i >= st->first && i < st->end && st->toks[i].type == SN_PUNCT && st->base[st->toks[i].off] == c;
}

static inline int det_op(const struct an_stmt *st, int i, const char *op)
{
	return i >= st->first && i < st->end && st->toks[i].type == SN_OP && st->toks[i].len == strlen(op) &&
	       memcmp(st->base + st->toks[i].off, op, st->toks[i].len) == 0;
}

/* Next / previous token that is not a comment. */
static inline int det_next(const struct an_stmt *st, int i)
{
	i++;
	while (i < st->end && st->toks[i].type == SN_COMMENT)
		i++;
	return i;
}

static inline int det_prev(const struct an_stmt *st, int i)
{
	i--;
	while (i >= st->first && st->toks[i].type == SN_COMMENT)
		i--;
	return i;
}

/* Index of the main verb token (first word equal to info->verb at the lowest depth). */
static inline int det_verb_index(const struct an_stmt *st)
{
	int best = -1;
	if (!st->info || !st->info->verb[0])
		return -1;
	if (st->info->verb_kw) { /* the same test by word id */
		for (int i = st->first; i < st->end; i++)
			if (sn_kw(&st->toks[i], st->info->verb_kw) &&
			    (best < 0 || st->toks[i].depth < st->toks[best].depth))
				best = i;
		return best;
	}
	for (int i = st->first; i < st->end; i++)
		if (det_word(st, i, st->info->verb) && (best < 0 || st->toks[i].depth < st->toks[best].depth))
			best = i;
	return best;
}

/* "who": end user, then db_user, for summaries. */
static inline const char *det_who(const struct an_stmt *st)
{
	if (st->end_user)
		return st->end_user;
	return st->s->db_user[0] ? st->s->db_user : "unknown user";
}

/* An excerpt of the masked statement for summaries. */
static inline void det_sql_excerpt(const struct an_stmt *st, char *buf, size_t cap)
{
	const char *m = an_stmt_masked(st);
	an_excerpt(buf, cap, m ? m : "", m ? strlen(m) : 0);
}

#endif
