/* SQL module: recognised words (by id, looked up by hash), character classes, and the
 * hashes fingerprints and in-memory tables use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sn_int.h"

uint8_t sn_cclass[256];
static void tables_build(void);
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

void sn_tables_init(void)
{
	pthread_once(&tables_once, tables_build);
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
const char *const sn_word_text_tab[SNW__COUNT] = { NULL, SN_WORD_LIST(SN_WORD_TEXT) };
const uint8_t sn_word_is_kw[SNW__COUNT] = { 0, SN_WORD_LIST(SN_WORD_KW) };
#undef SN_WORD_TEXT
#undef SN_WORD_KW
_Static_assert(SNW__COUNT <= 256, "word ids must fit sn_tok.kw");
char sn_word_upper[SNW__COUNT][WORD_MAX + 1];
uint8_t sn_word_len[SNW__COUNT];

/* Word lookup runs for every bare word of every statement: a hash of length, first, middle
 * and last letters picks one slot of a small open-addressing table (built once). */
uint8_t sn_kw_slot[KW_SLOTS];
static void kw_build(void);

static void tables_build(void)
{
	for (int c = 0; c < 256; c++) {
		int l = lc(c), ws = (l >= 'a' && l <= 'z') || c == '_' || c >= 0x80, dg = c >= '0' && c <= '9';
		sn_cclass[c] = (uint8_t)((c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
				       ? C_SPACE : 0) |
				      (dg ? C_DIGIT : 0) | (ws ? C_WSTART : 0) |
				      (ws || dg || c == '$' ? C_WCHAR : 0) |
				      (dg || (l >= 'a' && l <= 'f') ? C_XDIGIT : 0));
	}
	kw_build();
}

static void kw_build(void)
{
	for (int k = 1; k < SNW__COUNT && sn_word_text_tab[k]; k++) {
		size_t n = strlen(sn_word_text_tab[k]);
		for (size_t i = 0; i < n && i < WORD_MAX; i++)
			sn_word_upper[k][i] = (char)uc((unsigned char)sn_word_text_tab[k][i]);
		sn_word_len[k] = (uint8_t)(n < WORD_MAX ? n : WORD_MAX);
		unsigned h = kw_hash(sn_word_text_tab[k], n);
		while (sn_kw_slot[h])
			h = (h + 1) & (KW_SLOTS - 1);
		sn_kw_slot[h] = (uint8_t)k;
	}
}

const char *sn_word_text(int id)
{
	return id > SNW_NONE && id < SNW__COUNT ? sn_word_text_tab[id] : NULL;
}

int sn_is_keyword(const char *p, size_t n)
{
	sn_tables_init();
	return sn_word_is_kw[word_find(p, n)];
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
