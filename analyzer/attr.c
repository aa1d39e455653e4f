/* End-user attribution parsing: comment tags and the markers statements set.
 * Everything is read from the lexer's tokens (never regexes over raw text), so
 * SET app.user='x', set  app.user  TO "x" and set_config($1,$2,true) all parse alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "attr.h"

#define VALBUF 4096 /* enough for a JWT claims object; the end user itself is capped later */

void attr_clean(char *dst, size_t cap, const char *src, size_t n)
{
	size_t o = 0;
	if (cap == 0)
		return;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	/* do not end inside a UTF-8 sequence */
	if (o + 1 >= cap && o > 0) {
		size_t k = o;
		while (k > 0 && ((unsigned char)dst[k - 1] & 0xC0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)dst[k - 1] & 0xC0) == 0xC0)
			o = k - 1;
	}
	dst[o] = 0;
}

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* URL-decode src[0..n) into dst (capped, NUL-terminated). */
static void url_decode(char *dst, size_t cap, const char *src, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		int h, l;
		if (src[i] == '%' && i + 2 < n && (h = hexv((unsigned char)src[i + 1])) >= 0 &&
		    (l = hexv((unsigned char)src[i + 2])) >= 0) {
			dst[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			dst[o++] = src[i];
		}
	}
	dst[o] = 0;
}

static int key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '%' || c == '-' || c == '@';
}

void attr_comment_pairs(const char *p, size_t n, void (*fn)(void *ctx, const char *key, const char *val),
			void *ctx)
{
	size_t i = 0;
	char key[128], val[VALBUF], raw[VALBUF];
	while (i < n) {
		if (!key_char((unsigned char)p[i])) {
			i++;
			continue;
		}
		size_t ks = i;
		while (i < n && key_char((unsigned char)p[i]))
			i++;
		size_t ke = i;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i >= n || (p[i] != '=' && p[i] != ':'))
			continue;
		i++;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		size_t rn = 0;
		if (i < n && (p[i] == '\'' || p[i] == '"')) {
			char q = p[i++];
			while (i < n) {
				if (p[i] == '\\' && i + 1 < n) {
					if (rn + 1 < sizeof raw)
						raw[rn++] = p[i + 1];
					i += 2;
					continue;
				}
				if (p[i] == q) {
					if (i + 1 < n && p[i + 1] == q) {
						if (rn + 1 < sizeof raw)
							raw[rn++] = q;
						i += 2;
						continue;
					}
					i++;
					break;
				}
				if (rn + 1 < sizeof raw)
					raw[rn++] = p[i];
				i++;
			}
		} else {
			while (i < n && p[i] != ',' && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r' &&
			       p[i] != ';' && !(p[i] == '*' && i + 1 < n && p[i + 1] == '/')) {
				if (rn + 1 < sizeof raw)
					raw[rn++] = p[i];
				i++;
			}
		}
		url_decode(key, sizeof key, p + ks, ke - ks);
		url_decode(val, sizeof val, raw, rn);
		fn(ctx, key, val);
	}
}

struct cu_ctx {
	const struct an_strlist *keys;
	int best;
	char *user;
	size_t ucap;
	char *trace;
	size_t tcap;
};

static void cu_pair(void *vctx, const char *key, const char *val)
{
	struct cu_ctx *c = vctx;
	if (strcasecmp(key, "traceparent") == 0 && c->trace && !c->trace[0]) {
		attr_clean(c->trace, c->tcap, val, strlen(val));
		return;
	}
	if (!val[0])
		return;
	for (int k = 0; k < c->keys->n && k < c->best; k++) {
		if (c->keys->v[k] && strcasecmp(key, c->keys->v[k]) == 0) {
			c->best = k;
			attr_clean(c->user, c->ucap, val, strlen(val));
			return;
		}
	}
}

int attr_comment_user(const char *base, const struct sn_tok *t, int first, int end, const struct an_strlist *keys,
		      char *user, size_t ucap, char *trace, size_t tcap)
{
	struct cu_ctx c = { keys, AN_MAX_LIST + 1, user, ucap, trace, tcap };
	if (ucap)
		user[0] = 0;
	if (trace && tcap)
		trace[0] = 0;
	for (int i = first; i < end; i++) {
		if (t[i].type != SN_COMMENT)
			continue;
		const char *p = base + t[i].off;
		size_t n = t[i].len;
		/* strip the delimiters; nested comment markers inside are skipped as noise */
		if (n >= 2 && p[0] == '/' && p[1] == '*') {
			p += 2;
			n -= 2;
			if (n >= 2 && p[n - 2] == '*' && p[n - 1] == '/')
				n -= 2;
		} else if (n >= 2 && p[0] == '-' && p[1] == '-') {
			p += 2;
			n -= 2;
		} else if (n >= 1 && p[0] == '#') {
			p++;
			n--;
		}
		attr_comment_pairs(p, n, cu_pair, &c);
	}
	return c.best <= AN_MAX_LIST && user[0] != 0;
}

/* ---- markers set by statements ---- */

static int nc(const struct sn_tok *t, int i, int end)
{
	while (i < end && t[i].type == SN_COMMENT)
		i++;
	return i;
}

static int punct(const char *b, const struct sn_tok *t, char c)
{
	return t->type == SN_PUNCT && b[t->off] == c;
}

static int op_is(const char *b, const struct sn_tok *t, const char *op)
{
	return t->type == SN_OP && t->len == strlen(op) && memcmp(b + t->off, op, t->len) == 0;
}

/* Where the last MySQL ? ordinal was counted: the next one counts on from there (SET
 * @a=?,@a=?,... asks for every one: counting from the start each time was quadratic). */
struct pcur {
	int k;	  /* token index */
	long idx; /* ? tokens before it */
};

static long param_ordinal(const struct sn_tok *t, int k, struct pcur *pc)
{
	for (; pc->k < k; pc->k++)
		pc->idx += t[pc->k].type == SN_PARAM;
	for (; pc->k > k; pc->k--)
		pc->idx -= t[pc->k - 1].type == SN_PARAM;
	return pc->idx;
}

/* Resolve the value token at k (literal, bound parameter, bare word). Returns 1 with the text
 * in out, 2 for DEFAULT (clear), 0 when not a plain value. */
static int value_at(const char *b, const struct sn_tok *t, struct pcur *pc, int k, enum sn_dialect d,
		    const struct attr_val *params, int n_params, char *out, size_t cap)
{
	out[0] = 0;
	const struct sn_tok *v = &t[k];
	if (v->type == SN_STRING || v->type == SN_NUMBER || v->type == SN_QIDENT) {
		sn_literal_text(b, v, out, cap);
		return 1;
	}
	if (v->type == SN_WORD) {
		if (sn_word(b, v, "DEFAULT") || sn_word(b, v, "NULL"))
			return 2;
		sn_literal_text(b, v, out, cap);
		return 1;
	}
	if (v->type == SN_PARAM) {
		long idx = -1;
		if (d == SN_PG) {
			idx = strtol(b + v->off + 1, NULL, 10) - 1;
		} else {
			idx = param_ordinal(t, k, pc);
		}
		if (idx < 0 || idx >= n_params || !params[idx].text)
			return 0;
		size_t n = params[idx].n < cap - 1 ? params[idx].n : cap - 1;
		memcpy(out, params[idx].text, n);
		out[n] = 0;
		return 1;
	}
	return 0;
}

/* set_config arguments and MySQL variables take expressions: only a lone literal or bound
 * parameter (optionally cast) is a value; a bare word there is a column, not a name. */
static int lone_value(const char *b, const struct sn_tok *t, int k, int end)
{
	if (k >= end || !(sn_is_literal(&t[k]) || t[k].type == SN_PARAM || sn_word(b, &t[k], "NULL") ||
			  sn_word(b, &t[k], "DEFAULT")))
		return 0;
	k = nc(t, k + 1, end);
	if (k + 1 < end && op_is(b, &t[k], "::") && t[k + 1].type == SN_WORD)
		k = nc(t, k + 2, end);
	return k >= end || punct(b, &t[k], ',') || punct(b, &t[k], ')') || punct(b, &t[k], ';') ||
	       sn_word(b, &t[k], "FROM") || sn_word(b, &t[k], "AS");
}

/* A dotted name at k: returns the index after it, name lower-cased into out. */
static int name_at(const char *b, const struct sn_tok *t, int k, int end, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (;;) {
		if (k >= end || (t[k].type != SN_WORD && t[k].type != SN_QIDENT))
			return -1;
		char part[128];
		size_t pl = sn_literal_text(b, &t[k], part, sizeof part);
		for (size_t m = 0; m < pl && o + 1 < cap; m++)
			out[o++] = (char)((part[m] >= 'A' && part[m] <= 'Z') ? part[m] + 32 : part[m]);
		out[o] = 0;
		k = nc(t, k + 1, end);
		if (k + 1 < end && punct(b, &t[k], '.')) {
			if (o + 1 < cap)
				out[o++] = '.';
			k = nc(t, k + 1, end);
			continue;
		}
		return k;
	}
}

static int add_op(struct attr_op *ops, int *n, int cap, enum attr_kind kind, enum attr_scope scope, int clear,
		  const char *value)
{
	if (*n >= cap)
		return -1;
	struct attr_op *o = &ops[(*n)++];
	o->kind = kind;
	o->scope = scope;
	o->clear = clear || !value || !value[0];
	o->unknown = 0;
	o->value[0] = 0;
	if (!o->clear)
		attr_clean(o->value, sizeof o->value, value, strlen(value));
	return 0;
}

/* Ops [from, to) set a marker to a value that could not be read. */
static void mark_unknown(struct attr_op *ops, int from, int to)
{
	for (int i = from; i < to; i++)
		if (ops[i].kind != ATTR_RESET_ALL) {
			ops[i].unknown = 1;
			ops[i].clear = 0;
			ops[i].value[0] = 0;
		}
}

static int in_list_ci(const struct an_strlist *l, const char *v, int strip_at)
{
	for (int i = 0; i < l->n; i++) {
		const char *e = l->v[i];
		if (!e)
			continue;
		if (strip_at && e[0] == '@')
			e++;
		if (strcasecmp(e, v) == 0)
			return 1;
	}
	return 0;
}

/* A setting name and its value: turn into an op when it is one we follow. */
static void setting(const struct an_config *cfg, const char *name, const char *val, int clear,
		    enum attr_scope scope, struct attr_op *ops, int *n, int cap)
{
	if (strcmp(name, "application_name") == 0) {
		add_op(ops, n, cap, ATTR_APPNAME, scope, clear, val);
		return;
	}
	if (strcmp(name, "role") == 0 || strcmp(name, "session_authorization") == 0) {
		add_op(ops, n, cap, ATTR_ROLE, scope,
		       clear || strcasecmp(val, "none") == 0 || strcasecmp(val, "default") == 0, val);
		return;
	}
	if (in_list_ci(&cfg->pg_settings, name, 0)) {
		add_op(ops, n, cap, ATTR_USER, scope, clear, val);
		return;
	}
	for (int i = 0; i < cfg->pg_json_settings.n; i++) {
		const char *e = cfg->pg_json_settings.v[i];
		const char *colon = e ? strrchr(e, ':') : NULL;
		if (!colon || (size_t)(colon - e) != strlen(name) || strncasecmp(e, name, strlen(name)) != 0)
			continue;
		if (clear) {
			add_op(ops, n, cap, ATTR_USER, scope, 1, NULL);
			return;
		}
		cJSON *j = cJSON_ParseWithLength(val, strlen(val));
		const cJSON *sub = j ? cJSON_GetObjectItemCaseSensitive(j, colon + 1) : NULL;
		char num[32];
		if (cJSON_IsString(sub) && sub->valuestring) {
			add_op(ops, n, cap, ATTR_USER, scope, 0, sub->valuestring);
		} else if (cJSON_IsNumber(sub)) {
			snprintf(num, sizeof num, "%.0f", sub->valuedouble);
			add_op(ops, n, cap, ATTR_USER, scope, 0, num);
		}
		cJSON_Delete(j);
		return;
	}
}

static void var_name(const char *b, const struct sn_tok *t, char *out, size_t cap)
{
	/* @name, @'name', @"name", @`name` */
	struct sn_tok q = *t;
	out[0] = 0;
	if (q.len < 2 || b[q.off + 1] == '@')
		return;
	q.off++;
	q.len--;
	if (b[q.off] == '\'' || b[q.off] == '"' || b[q.off] == '`') {
		q.type = SN_STRING;
		q.flags = 0;
		sn_literal_text(b, &q, out, cap);
	} else {
		size_t n = q.len < cap - 1 ? q.len : cap - 1;
		memcpy(out, b + q.off, n);
		out[n] = 0;
	}
}

int attr_statement(const char *b, const struct sn_tok *t, int first, int end, enum sn_dialect d,
		   const struct an_config *cfg, const struct attr_val *params, int n_params, struct attr_op *ops,
		   int cap)
{
	int n = 0;
	int i = nc(t, first, end);
	/* only DISCARD / RESET / SET, set_config() and @var := set markers: check the words
	 * before taking the value buffer */
	if (!(i < end && (sn_kw(&t[i], SNW_DISCARD) || sn_kw(&t[i], SNW_RESET) || sn_kw(&t[i], SNW_SET)))) {
		int k = first;
		while (k < end && !sn_kw(&t[k], SNW_SET_CONFIG) && t[k].type != SN_VAR)
			k++;
		if (k == end)
			return 0;
	}
	char *val = malloc(VALBUF), name[128];
	struct pcur pc = { first, 0 };
	if (!val)
		return 0;
	if (i < end && sn_word(b, &t[i], "DISCARD")) {
		int k = nc(t, i + 1, end);
		if (k < end && sn_word(b, &t[k], "ALL"))
			add_op(ops, &n, cap, ATTR_RESET_ALL, ATTR_SESSION, 1, NULL);
	} else if (i < end && sn_word(b, &t[i], "RESET")) {
		int k = nc(t, i + 1, end);
		if (k < end && sn_word(b, &t[k], "ALL")) {
			add_op(ops, &n, cap, ATTR_RESET_ALL, ATTR_SESSION, 1, NULL);
		} else if (k < end && sn_word(b, &t[k], "SESSION")) {
			add_op(ops, &n, cap, ATTR_ROLE, ATTR_SESSION, 1, NULL);
		} else if (name_at(b, t, k, end, name, sizeof name) > 0) {
			setting(cfg, name, "", 1, ATTR_SESSION, ops, &n, cap);
		}
	} else if (i < end && sn_word(b, &t[i], "SET")) {
		enum attr_scope scope = ATTR_SESSION;
		int k = nc(t, i + 1, end);
		if (d == SN_PG && k < end && sn_word(b, &t[k], "LOCAL")) {
			scope = ATTR_TXN;
			k = nc(t, k + 1, end);
		} else if (k < end && sn_word(b, &t[k], "SESSION")) {
			int k2 = nc(t, k + 1, end);
			if (k2 < end && sn_word(b, &t[k2], "AUTHORIZATION")) {
				k2 = nc(t, k2 + 1, end);
				if (k2 < end) {
					int r = value_at(b, t, &pc, k2, d, params, n_params, val, VALBUF);
					add_op(ops, &n, cap, ATTR_ROLE, ATTR_SESSION, r != 1, val);
				}
				goto done;
			}
			k = k2;
		}
		if (k < end && sn_word(b, &t[k], "ROLE")) {
			int k2 = nc(t, k + 1, end);
			if (k2 < end && !(t[k2].type == SN_OP && (op_is(b, &t[k2], "=")))) {
				int r = value_at(b, t, &pc, k2, d, params, n_params, val, VALBUF);
				add_op(ops, &n, cap, ATTR_ROLE, scope, r != 1 || strcasecmp(val, "none") == 0, val);
				goto done;
			}
		}
		/* comma-separated assignments: name {=|TO|:=} value */
		while (k < end) {
			int vk;
			if (t[k].type == SN_VAR) {
				var_name(b, &t[k], name, sizeof name);
				vk = nc(t, k + 1, end);
			} else {
				if (k < end && (sn_word(b, &t[k], "SESSION") || sn_word(b, &t[k], "GLOBAL") ||
						sn_word(b, &t[k], "LOCAL")))
					k = nc(t, k + 1, end);
				vk = name_at(b, t, k, end, name, sizeof name);
				if (vk < 0)
					break;
				name[0] = name[0] == '@' ? 0 : name[0];
			}
			if (vk >= end)
				break;
			if (op_is(b, &t[vk], "=") || op_is(b, &t[vk], ":=") || sn_word(b, &t[vk], "TO"))
				vk = nc(t, vk + 1, end);
			else
				break;
			if (vk >= end)
				break;
			int r = value_at(b, t, &pc, vk, d, params, n_params, val, VALBUF);
			int nx = nc(t, vk + 1, end);
			/* a value that is an expression (not a lone literal) is not followed */
			int lone = nx >= end || punct(b, &t[nx], ',') || punct(b, &t[nx], ';');
			if (t[k].type == SN_VAR && !lone_value(b, t, vk, end))
				r = 0; /* @var = expression or column */
			if (!lone)
				r = 0;
			/* a followed marker set to what we cannot read is unknown: never the old name */
			if (name[0]) {
				int n0 = n;
				if (t[k].type == SN_VAR) {
					if (in_list_ci(&cfg->mysql_vars, name, 1))
						add_op(ops, &n, cap, ATTR_USER, ATTR_SESSION, r != 1, val);
				} else {
					setting(cfg, name, r == 1 ? val : "", r != 1, scope, ops, &n, cap);
				}
				if (!r)
					mark_unknown(ops, n0, n);
			}
			/* next assignment */
			while (nx < end && !(punct(b, &t[nx], ',') && t[nx].depth == t[i].depth))
				nx++;
			k = nc(t, nx + 1, end);
		}
		goto done;
	}
	/* set_config(name, value, is_local) and MySQL @var := value anywhere in the statement */
	for (int k = first; k < end && n < cap; k++) {
		if (t[k].type == SN_WORD && sn_word(b, &t[k], "set_config")) {
			int a[3], m = 0, j = nc(t, k + 1, end);
			if (j >= end || !punct(b, &t[j], '('))
				continue;
			int depth = t[j].depth + 1;
			j = nc(t, j + 1, end);
			int long_arg = 0;
			while (j < end && m < 3) {
				a[m++] = j;
				/* a name that is no literal is skipped below: stop here, or nested calls
				 * would each walk the rest of the statement */
				if (m == 1 && !lone_value(b, t, j, end))
					break;
				/* skip to the next top-level comma or the closing parenthesis; an argument
				 * longer than 256 tokens is an expression: value and scope unknown */
				int j0 = j;
				while (j < end && !(punct(b, &t[j], ',') && t[j].depth == depth) &&
				       !(punct(b, &t[j], ')') && t[j].depth < depth) && j - j0 < 256)
					j++; /* a ')' has its '(''s depth */
				if (j - j0 >= 256) {
					long_arg = 1;
					while (m < 3)
						a[m++] = j0;
					break;
				}
				if (j >= end || punct(b, &t[j], ')'))
					break;
				j = nc(t, j + 1, end);
			}
			if (m < 3)
				continue;
			int third_word = sn_word(b, &t[a[2]], "TRUE") || sn_word(b, &t[a[2]], "FALSE");
			if (!lone_value(b, t, a[0], end))
				continue;
			int r1 = value_at(b, t, &pc, a[0], d, params, n_params, name, sizeof name);
			for (char *c = name; *c; c++)
				*c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
			if (r1 != 1)
				continue;
			char loc[16] = "";
			int r3 = !long_arg && (third_word || lone_value(b, t, a[2], end))
					 ? value_at(b, t, &pc, a[2], d, params, n_params, loc, sizeof loc)
					 : 0;
			int r2 = !long_arg && lone_value(b, t, a[1], end)
					 ? value_at(b, t, &pc, a[1], d, params, n_params, val, VALBUF)
					 : 0;
			enum attr_scope sc = (strcasecmp(loc, "true") == 0 || strcasecmp(loc, "t") == 0 ||
					      strcasecmp(loc, "on") == 0 || strcmp(loc, "1") == 0 ||
					      strcasecmp(loc, "yes") == 0)
						     ? ATTR_TXN
						     : ATTR_SESSION;
			int n0 = n;
			if (r3 != 1) { /* scope unknown: both scopes lose what they had */
				setting(cfg, name, "", 1, ATTR_TXN, ops, &n, cap);
				sc = ATTR_SESSION;
			}
			setting(cfg, name, r2 == 1 ? val : "", r2 != 1, sc, ops, &n, cap);
			if (!r2 || r3 != 1)
				mark_unknown(ops, n0, n);
		} else if (t[k].type == SN_VAR && k + 2 < end && op_is(b, &t[k + 1], ":=")) {
			var_name(b, &t[k], name, sizeof name);
			int r = lone_value(b, t, nc(t, k + 2, end), end)
					? value_at(b, t, &pc, nc(t, k + 2, end), d, params, n_params, val, VALBUF)
					: 0;
			if (name[0] && in_list_ci(&cfg->mysql_vars, name, 1)) {
				int n0 = n;
				add_op(ops, &n, cap, ATTR_USER, ATTR_SESSION, r != 1, val);
				if (!r)
					mark_unknown(ops, n0, n);
			}
		}
	}
done:
	free(val);
	return n;
}
