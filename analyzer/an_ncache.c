/* What a statement's text alone gives (tokens, normalised text, masked text, sn_info),
 * through two bounded caches: by exact text for prepared statements, by shape key for
 * the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"

void an_ncache_clear(struct an_ncache *c)
{
	free(c->text);
	free(c->toks);
	free(c->norm);
	free(c->masked);
	memset(c, 0, sizeof *c);
}

/* An sn_info without the unused part of its 1 KiB table-name array. */
static void info_copy(struct sn_info *dst, const struct sn_info *src)
{
	memcpy(dst, src, offsetof(struct sn_info, tables));
	for (int i = 0; i < src->n_tables; i++)
		memcpy(dst->tables[i], src->tables[i], sizeof dst->tables[i]);
}

/* sn_normalize through the shape cache: a shape seen before costs its key and a copy. */
static void normalize_cached(struct an *an, const char *text, const struct sn_tok *toks, int n, enum sn_dialect d,
			     struct sn_info *info)
{
	uint8_t key[AN_SCACHE_MAX_KEY];
	size_t kl = an->scache ? sn_shape_key(text, toks, 0, n, key, sizeof key) : 0;
	struct an_scache *c = NULL;
	uint64_t h = 0;
	if (kl) {
		h = sn_hash_mem(key, kl, SN_HASH_INIT ^ (uint64_t)d);
		c = &an->scache[h & (AN_SCACHE_SLOTS - 1)];
		if (c->key && c->h == h && c->key_len == kl && c->dialect == (int)d && memcmp(c->key, key, kl) == 0) {
			memcpy(an->norm, c->key + kl, c->norm_len + 1);
			info_copy(info, &c->info);
			return;
		}
	}
	size_t nl = sn_normalize(text, toks, 0, n, d, an->norm, SN_MAX_NORM + 1, info);
	if (!c || info->truncated || nl > AN_SCACHE_MAX_NORM)
		return;
	uint8_t *buf = realloc(c->key, kl + nl + 1);
	if (!buf) {
		free(c->key);
		c->key = NULL;
		return;
	}
	memcpy(buf, key, kl);
	memcpy(buf + kl, an->norm, nl + 1);
	c->key = buf;
	c->h = h;
	c->key_len = kl;
	c->norm_len = nl;
	c->dialect = (int)d;
	info_copy(&c->info, info);
}

/* Remember one statement's derived outputs in slot c (replacing what was there); on
 * allocation failure the slot stays empty, which only costs the next lookup a miss. */
static void ncache_put(struct an_ncache *c, uint64_t h, const char *text, size_t len, int d,
		       const struct sn_tok *toks, int n, const char *norm, size_t norm_len, const char *masked,
		       size_t masked_len, const struct sn_info *info)
{
	an_ncache_clear(c);
	c->text = malloc(len + 1);
	c->toks = malloc((size_t)(n > 0 ? n : 1) * sizeof *toks);
	c->norm = malloc(norm_len + 1);
	c->masked = malloc(masked_len + 1);
	if (!c->text || !c->toks || !c->norm || !c->masked) {
		an_ncache_clear(c);
		return;
	}
	memcpy(c->text, text, len);
	c->text[len] = 0;
	memcpy(c->toks, toks, (size_t)n * sizeof *toks);
	memcpy(c->norm, norm, norm_len + 1);
	memcpy(c->masked, masked, masked_len + 1);
	c->hash = h;
	c->len = len;
	c->dialect = (int)d;
	c->n = n;
	c->norm_len = norm_len;
	c->masked_len = masked_len;
	info_copy(&c->info, info);
}

/* The stored form of tokens [first, end) of base, into an->masked. */
static void mask_text(struct an *an, const char *base, const struct sn_tok *toks, int first, int end, int secret)
{
	sn_mask(base, toks, first, end, an->cfg.keep_literals, secret, an->masked, (size_t)an->cfg.max_sql_bytes + 4);
}

const char *an_stmt_masked(const struct an_stmt *st)
{
	struct an_masked *m = st->masked;
	if (!m)
		return NULL;
	if (!m->ready) {
		mask_text(m->an, st->base, st->toks, st->first, st->end, st->info->secret);
		m->ready = 1;
	}
	return m->an->masked;
}

int an_derive(struct an *an, struct an_session *s, const struct an_pending *p, int idx, struct sn_info *info,
	      const struct sn_tok **toksp, struct an_masked *masked)
{
	int n, trunc = 0;
	const char *text = p->sql + p->part_off[idx];
	size_t len = p->part_len[idx];
	struct an_ncache *c = NULL;
	uint64_t h = 0;
	/* the tokens are read in place: the cache entry's, the pending entry's (both stay
	 * put until the statement is completed) or freshly lexed into an->toks */
	const struct sn_tok *toks = an->toks;
	unsigned pm = p->part_mode ? p->part_mode[idx] : s->lexmode, lm = pm & SN_M_ALL;
	int dkey = (int)s->dialect | (int)(lm << 4); /* the cache's texts were read in this mode */
	if (p->kind == EV_Q_EXECUTE && an->ncache && len <= AN_NCACHE_MAX_TEXT) {
		h = sn_hash_mem(text, len, SN_HASH_INIT);
		c = &an->ncache[h % AN_NCACHE_SLOTS];
	}
	if (c && c->text && c->hash == h && c->len == len && c->dialect == dkey && memcmp(c->text, text, len) == 0) {
		n = c->n;
		toks = c->toks;
		memcpy(an->norm, c->norm, c->norm_len + 1);
		memcpy(an->masked, c->masked, c->masked_len + 1);
		masked->ready = 1;
		info_copy(info, &c->info);
	} else {
		if (p->toks && idx == 0) { /* lexed when the query arrived */
			n = p->n_toks;
			toks = p->toks;
		} else {
			n = sn_lex_mode(text, len, s->dialect, lm, an->toks, SN_MAX_TOKENS, &trunc);
		}
		normalize_cached(an, text, toks, n, s->dialect, info);
		info->truncated |= trunc | !!(pm & AN_PART_CUT);
		/* C strings: consumers read them up to the NUL */
		if (c && !info->truncated && n <= AN_NCACHE_MAX_TOKS) {
			/* cached: masked once for every later execute of the text */
			mask_text(an, text, toks, 0, n, info->secret);
			masked->ready = 1;
			ncache_put(c, h, text, len, dkey, toks, n, an->norm, strlen(an->norm), an->masked,
				   strlen(an->masked), info);
		}
	}
	info->truncated |= p->truncated;
	if (info->truncated)
		an->st.sql_truncated++;
	*toksp = toks;
	return n;
}
