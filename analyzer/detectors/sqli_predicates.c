/* sql_injection: comparisons whose value does not depend on the row (1=1, 'a'='a', 2407=2407,
 * 1::int=1, 1 IN (1), 2-1=1, NOT FALSE): what boolean-based probes put behind AND/OR. */
#include <stdlib.h>

#include "sqli_int.h"

int sqli_is_or(const struct an_stmt *st, int i)
{
	return det_word(st, i, "OR") || (st->s->dialect == SN_MYSQL && det_op(st, i, "||"));
}

/* Literal operand at i: its text and whether it is a number. */
static int operand(const struct an_stmt *st, int i, char *buf, size_t cap, int *num)
{
	if (i < st->first || i >= st->end)
		return 0;
	const struct sn_tok *t = det_tok(st, i);
	if (!sn_is_literal(t))
		return 0;
	sn_literal_text(st->base, t, buf, cap);
	*num = t->type == SN_NUMBER;
	return 1;
}

/* literal op literal at i: 1 always true, 0 always false, -1 no such comparison or one
 * not judged (>= and <= only when both sides are equal; > and < only between numbers and
 * only when true). */
int sqli_literal_cmp(const struct an_stmt *st, int i)
{
	char a[64], b[64];
	int an_, bn;
	int op = det_next(st, i), rhs = det_next(st, op);
	if (!operand(st, i, a, sizeof a, &an_) || op >= st->end || det_tok(st, op)->type != SN_OP ||
	    !operand(st, rhs, b, sizeof b, &bn))
		return -1;
	double x = strtod(a, NULL), y = strtod(b, NULL);
	int eq = (an_ && bn) ? x == y : strcmp(a, b) == 0;
	if (det_op(st, op, "=") || det_op(st, op, "<=>"))
		return eq;
	if (det_op(st, op, ">=") || det_op(st, op, "<="))
		return eq ? 1 : -1;
	if (det_op(st, op, "<>") || det_op(st, op, "!="))
		return !eq;
	if (an_ && bn && det_op(st, op, ">"))
		return x > y ? 1 : -1;
	if (an_ && bn && det_op(st, op, "<"))
		return x < y ? 1 : -1;
	return -1;
}

/* Is the comparison starting at i always true? Returns the index after it, or -1. */
int sqli_tautology_at(const struct an_stmt *st, int i)
{
	char a[64];
	int an_;
	if (det_word(st, i, "TRUE"))
		return det_next(st, i);
	if (det_word(st, i, "NOT") && det_word(st, det_next(st, i), "FALSE"))
		return det_next(st, det_next(st, i));
	int op = det_next(st, i);
	int rhs = det_next(st, op);
	if (operand(st, i, a, sizeof a, &an_)) {
		if (op >= st->end || det_tok(st, op)->type != SN_OP) {
			/* OR 1 alone: a non-zero number as a boolean */
			if (an_ && strtod(a, NULL) != 0 &&
			    (op >= st->end || det_punct(st, op, ')') || det_punct(st, op, ';')))
				return op;
			return -1;
		}
		return sqli_literal_cmp(st, i) == 1 ? det_next(st, rhs) : -1;
	}
	/* x = x with the same bare identifier on both sides */
	if (i < st->end && det_tok(st, i)->type == SN_WORD && det_op(st, op, "=") && rhs < st->end &&
	    det_tok(st, rhs)->type == SN_WORD && det_tok(st, i)->len == det_tok(st, rhs)->len &&
	    strncasecmp(st->base + det_tok(st, i)->off, st->base + det_tok(st, rhs)->off, det_tok(st, i)->len) == 0 &&
	    !sn_is_keyword(st->base + det_tok(st, i)->off, det_tok(st, i)->len))
		return det_next(st, rhs);
	return -1;
}

/* Is the comparison at i always false (FALSE, NOT TRUE, 1=2, 'a'='b', 1<>1)? */
int sqli_falsehood_at(const struct an_stmt *st, int i)
{
	return det_word(st, i, "FALSE") || (det_word(st, i, "NOT") && det_word(st, det_next(st, i), "TRUE")) ||
	       sqli_literal_cmp(st, i) == 0;
}


/* ---- constant predicates: 2407=2407, 'OBZv'='OBZv', 1::int=1, 1 IN (1), 2-1=1,
 * 1 BETWEEN 0 AND 2, 0x61='a', CAST(1 AS int)=1 ---- */

/* A constant operand at i (literal, signed, cast, parenthesised, arithmetic of constants).
 * Returns the index after it, or -1. Bounded nesting. */
static int const_operand(const struct an_stmt *st, int i, int nest)
{
	if (nest > 4 || i >= st->end)
		return -1;
	if (det_op(st, i, "-") || det_op(st, i, "+") || det_op(st, i, "~"))
		i = det_next(st, i);
	int j;
	if (i < st->end && sn_is_literal(det_tok(st, i))) {
		j = det_next(st, i);
	} else if (det_punct(st, i, '(')) {
		j = const_operand(st, det_next(st, i), nest + 1);
		if (j < 0 || !det_punct(st, j, ')'))
			return -1;
		j = det_next(st, j);
	} else if (det_word(st, i, "CAST") && det_punct(st, det_next(st, i), '(')) {
		j = const_operand(st, det_next(st, det_next(st, i)), nest + 1);
		if (j < 0 || !det_word(st, j, "AS"))
			return -1;
		j = det_next(st, det_next(st, j)); /* the type name */
		if (det_punct(st, j, '(')) /* VARCHAR(10) */
			j = det_next(st, det_next(st, det_next(st, j)));
		if (!det_punct(st, j, ')'))
			return -1;
		j = det_next(st, j);
	} else {
		return -1;
	}
	for (int steps = 0; steps < 8 && j < st->end; steps++) {
		if (det_op(st, j, "::")) { /* ::int, ::text */
			j = det_next(st, j);
			if (j >= st->end || det_tok(st, j)->type != SN_WORD)
				return -1;
			j = det_next(st, j);
			continue;
		}
		if (det_op(st, j, "+") || det_op(st, j, "-") || det_op(st, j, "*") || det_op(st, j, "/") ||
		    det_op(st, j, "%") || (st->s->dialect == SN_PG && det_op(st, j, "||"))) {
			int k = const_operand(st, det_next(st, j), nest + 1);
			if (k < 0)
				return -1;
			j = k;
			continue;
		}
		break;
	}
	return j;
}

static int is_cmp_op(const struct an_stmt *st, int i)
{
	static const char *const ops[] = { "=", "<>", "!=", "<", ">", "<=", ">=", "<=>", "==" };
	if (i >= st->end || det_tok(st, i)->type != SN_OP)
		return 0;
	for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
		if (det_op(st, i, ops[k]))
			return 1;
	return 0;
}

/* Is the token a small number (0 or 1)? Query builders write 1=1 and 1=0. */
static int tiny(const struct an_stmt *st, int i)
{
	const struct sn_tok *t = det_tok(st, i);
	if (t->type != SN_NUMBER || t->len != 1)
		return 0;
	char c = st->base[t->off];
	return c == '0' || c == '1';
}

/* A predicate made only of constants at i. Returns the index after it or -1; *simple: the
 * plain literal-op-literal form (literal_cmp can judge it), *small: both operands 0/1. */
int sqli_const_pred(const struct an_stmt *st, int i, int *simple, int *small)
{
	*simple = *small = 0;
	int a = const_operand(st, i, 0);
	if (a < 0)
		return -1;
	if (is_cmp_op(st, a) || det_word(st, a, "LIKE")) {
		int b = const_operand(st, det_next(st, a), 0);
		if (b < 0)
			return -1;
		*simple = det_next(st, i) == a && det_next(st, det_next(st, a)) == b && !det_word(st, a, "LIKE");
		*small = *simple && tiny(st, i) && tiny(st, det_next(st, a));
		/* a hex literal against a string is MySQL's 0x61='a': not judged as text */
		if (*simple && det_tok(st, i)->type != det_tok(st, det_next(st, a))->type)
			*simple = 0;
		return b;
	}
	int k = a;
	if (det_word(st, k, "NOT"))
		k = det_next(st, k);
	if (det_word(st, k, "IN") && det_punct(st, det_next(st, k), '(')) {
		int j = det_next(st, det_next(st, k));
		for (int n = 0; n < 16; n++) {
			j = const_operand(st, j, 0);
			if (j < 0)
				return -1;
			if (det_punct(st, j, ')'))
				return det_next(st, j);
			if (!det_punct(st, j, ','))
				return -1;
			j = det_next(st, j);
		}
		return -1;
	}
	if (det_word(st, k, "BETWEEN")) {
		int j = const_operand(st, det_next(st, k), 0);
		if (j < 0 || !det_word(st, j, "AND"))
			return -1;
		return const_operand(st, det_next(st, j), 0);
	}
	return -1;
}
