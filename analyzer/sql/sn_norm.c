/* SQL normaliser: literals to ?, case and whitespace folded, lists collapsed, the
 * statement's verb, tables, words and fingerprint; and the shape key that caches it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sn_int.h"

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
		if (k < end && t[k].type == SN_WORD && !sn_word_is_kw[t[k].kw])
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


/* End of the statement proper: trailing ';' (and comments around them) dropped, so
 * "SELECT 1;" sent with Parse has the shape of "SELECT 1" split out of a simple query. */
int sn_trim_semicolons(const char *src, const struct sn_tok *t, int first, int end)
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
	end = sn_trim_semicolons(src, t, first, end);
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
	int secret = sn_secret_scan(t, first, end, info);
	if (outcap)
		out[0] = 0;
	for (int i = first; i < end; i++) {
		const struct sn_tok *k = &t[i];
		const char *p = src + k->off;
		if (k->type == SN_COMMENT)
			continue;
		enum nk cur;
		if (secret && sn_secret_bare(src, t, first, i)) {
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
			cur = sn_word_is_kw[k->kw] ? NK_KW : NK_IDENT;
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

