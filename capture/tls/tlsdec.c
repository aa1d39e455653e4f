/* Passive TLS 1.2/1.3 decryption (see tlsdec.h): contexts and sessions, their state, and
 * records held while a session waits for its key. Facts from RFC 8446 (TLS 1.3: record
 * layer §5, key schedule §7, KeyUpdate §4.6.3), RFC 5246 (TLS 1.2 key block §6.3),
 * RFC 5288 (AES-GCM nonces), RFC 7905 (ChaCha20-Poly1305 nonces). */
#include "tls_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/kdf.h>

const char *tls_state_name(enum tls_state s)
{
	switch (s) {
	case TLS_ST_DECRYPTING:
		return "1";
	case TLS_ST_UNSUPPORTED:
		return "unsupported";
	case TLS_ST_MIDSTREAM:
		return "midstream";
	case TLS_ST_BAD_KEY:
		return "bad_key";
	case TLS_ST_KEY_LATE:
		return "key_late";
	case TLS_ST_HANDSHAKE:
	case TLS_ST_WAIT_KEY:
	case TLS_ST_NO_KEY:
		break;
	}
	return "no_key";
}

struct tls_ctx *tls_ctx_new(struct tlsk_store *keys, tls_time wait_us, size_t hold_flow,
			    size_t hold_total)
{
	struct tls_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->keys = keys;
	c->wait_us = wait_us;
	c->hold_flow = hold_flow;
	c->hold_total = hold_total;
	c->cipher[AEAD_AES128GCM] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	c->cipher[AEAD_AES256GCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	c->cipher[AEAD_CHACHA] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	c->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	c->prf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
	if (!c->hkdf || !c->prf || !c->cipher[0] || !c->cipher[1] || !c->cipher[2]) {
		tls_ctx_free(c, NULL, NULL);
		return NULL;
	}
	return c;
}

void tls_ctx_stats(const struct tls_ctx *c, struct tls_stats *st, struct tlsk_stats *kst)
{
	if (st)
		*st = c->st;
	if (kst) {
		if (c->keys)
			tlsk_get_stats(c->keys, kst);
		else
			memset(kst, 0, sizeof *kst);
	}
}

void tls_ctx_free(struct tls_ctx *c, struct tls_stats *st, struct tlsk_stats *kst)
{
	if (!c)
		return;
	if (st)
		*st = c->st;
	if (kst)
		memset(kst, 0, sizeof *kst);
	tlsk_free(c->keys, kst);
	for (int i = 0; i < AEAD_N; i++)
		EVP_CIPHER_free(c->cipher[i]);
	EVP_KDF_free(c->hkdf);
	EVP_KDF_free(c->prf);
	EVP_MAC_free(c->hmac);
	OPENSSL_cleanse(c->plain, sizeof c->plain);
	free(c);
}

/* ---- state ---- */

static void unwait(struct tls_sess *s)
{
	if (s->st != TLS_ST_WAIT_KEY)
		return;
	if (s->wprev)
		s->wprev->wnext = s->wnext;
	else
		s->c->waiting = s->wnext;
	if (s->wnext)
		s->wnext->wprev = s->wprev;
	s->wprev = s->wnext = NULL;
}

static void drop_held(struct tls_sess *s)
{
	if (s->held) {
		OPENSSL_cleanse(s->held, s->hn);
		s->c->held -= s->hcap;
		free(s->held);
	}
	s->held = NULL;
	s->hn = s->hcap = 0;
}

void tlsdec_set_state(struct tls_sess *s, enum tls_state st)
{
	if (s->st == st)
		return;
	unwait(s);
	s->st = st;
	struct tls_stats *t = &s->c->st;
	switch (st) {
	case TLS_ST_WAIT_KEY:
		s->wnext = s->c->waiting;
		if (s->wnext)
			s->wnext->wprev = s;
		s->c->waiting = s;
		if (s->out.state)
			s->out.state(s->out.ctx, st);
		return;
	case TLS_ST_DECRYPTING: t->decrypted++; break;
	case TLS_ST_NO_KEY: t->no_key++; break;
	case TLS_ST_KEY_LATE: t->key_late++; break;
	case TLS_ST_UNSUPPORTED: t->unsupported++; break;
	case TLS_ST_MIDSTREAM: t->midstream++; break;
	case TLS_ST_BAD_KEY: t->bad_key++; t->decrypted--; break;
	case TLS_ST_HANDSHAKE: break;
	}
	if (st != TLS_ST_DECRYPTING)
		drop_held(s);
	if (s->out.state)
		s->out.state(s->out.ctx, st);
}

void tlsdec_dir_dead(struct tls_sess *s, int dir)
{
	struct tls_dir *d = &s->d[dir];
	d->dead = 1;
	free(d->rb);
	d->rb = NULL;
	d->rn = d->rcap = 0;
}

void tlsdec_anomaly(struct tls_sess *s, int dir, tls_time ts, const char *what)
{
	if (s->out.anomaly)
		s->out.anomaly(s->out.ctx, dir, ts, what);
}

/* ---- waiting for the key ---- */

int tlsdec_try_keys(struct tls_sess *s)
{
	if (!s->c->keys)
		return 0;
	struct tlsk_entry *e = tlsk_find(s->c->keys, s->crand);
	if (!e)
		return 0;
	size_t hl = s->su->sha384 ? 48 : 32;
	if (s->version == 0x0304) {
		if (e->len[TLSK_CHTS] != hl || e->len[TLSK_SHTS] != hl || e->len[TLSK_CTS0] != hl ||
		    e->len[TLSK_STS0] != hl)
			return 0; /* not all lines yet (or the wrong hash) */
		if (tlskdf_key13(s, 0, e->sec[TLSK_CHTS], hl) < 0 || tlskdf_key13(s, 1, e->sec[TLSK_SHTS], hl) < 0)
			return 0;
	} else {
		if (e->len[TLSK_MASTER] != 48 || tlskdf_keys12(s, e) < 0)
			return 0;
	}
	tlsk_used(s->c->keys, e);
	/* the held records replay through the same path */
	uint8_t *held = s->held;
	size_t hn = s->hn, hcap = s->hcap;
	s->held = NULL;
	s->hn = s->hcap = 0;
	tlsdec_set_state(s, TLS_ST_DECRYPTING);
	for (size_t off = 0; off + HOLD_HDR <= hn;) {
		int dir = held[off];
		tls_time ts;
		uint32_t len;
		memcpy(&ts, held + off + 4, 8);
		memcpy(&len, held + off + 12, 4);
		tlsrec_record(s, dir, ts, held + off + HOLD_HDR, len);
		off += HOLD_HDR + len;
	}
	if (held) {
		OPENSSL_cleanse(held, hn);
		s->c->held -= hcap;
		free(held);
	}
	return 1;
}

void tlsdec_hold(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n)
{
	struct tls_ctx *c = s->c;
	if (s->d[dir].dead)
		return;
	size_t need = s->hn + HOLD_HDR + n;
	if (need > s->hcap) {
		size_t cap = s->hcap ? s->hcap : 16384;
		while (cap < need)
			cap *= 2;
		uint8_t *b = NULL;
		if (cap <= c->hold_flow && c->held - s->hcap + cap <= c->hold_total)
			b = realloc(s->held, cap);
		if (!b) { /* over budget: this direction cannot be decrypted in order any more */
			c->st.held_dropped_bytes += n;
			tlsdec_dir_dead(s, dir);
			return;
		}
		c->held += cap - s->hcap;
		s->held = b;
		s->hcap = cap;
	}
	uint8_t *h = s->held + s->hn;
	memset(h, 0, HOLD_HDR);
	h[0] = (uint8_t)dir;
	uint32_t len = (uint32_t)n;
	memcpy(h + 4, &ts, 8);
	memcpy(h + 12, &len, 4);
	memcpy(h + HOLD_HDR, r, n);
	s->hn = need;
}

/* ---- the session ---- */

struct tls_sess *tls_sess_new(struct tls_ctx *c, const struct tls_out *out)
{
	struct tls_sess *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->c = c;
	s->out = *out;
	s->st = TLS_ST_HANDSHAKE;
	c->st.sessions++;
	return s;
}

enum tls_state tls_sess_state(const struct tls_sess *s)
{
	return s->st;
}

int tls_sess_done(const struct tls_sess *s)
{
	return (s->st != TLS_ST_HANDSHAKE && s->st != TLS_ST_WAIT_KEY && s->st != TLS_ST_DECRYPTING) ||
	       (s->d[0].dead && s->d[1].dead);
}

void tlsdec_expire(struct tls_sess *s, tls_time now)
{
	if (s->st == TLS_ST_WAIT_KEY && s->hold_since && now - s->hold_since > s->c->wait_us)
		tlsdec_set_state(s, TLS_ST_NO_KEY);
}

void tls_ctx_tick(struct tls_ctx *c, tls_time now)
{
	if (c->keys && c->waiting)
		tlsk_poll(c->keys, 0);
	for (struct tls_sess *s = c->waiting, *nx; s; s = nx) {
		nx = s->wnext;
		if (!tlsdec_try_keys(s))
			tlsdec_expire(s, now);
	}
}

static int late_key(struct tls_sess *s)
{
	struct tlsk_entry *e = tlsk_find(s->c->keys, s->crand);
	return e && (e->len[TLSK_MASTER] || e->len[TLSK_CTS0]);
}

int tls_sess_may_close(struct tls_sess *s)
{
	if (s->st == TLS_ST_WAIT_KEY)
		return 0;
	if (s->st != TLS_ST_NO_KEY || !s->su || !s->c->keys)
		return 1;
	tlsk_poll(s->c->keys, 0);
	if (!late_key(s))
		return 0;
	tlsdec_set_state(s, TLS_ST_KEY_LATE);
	return 1;
}

enum tls_state tls_sess_free(struct tls_sess *s, tls_time now)
{
	if (s->c->keys && (s->st == TLS_ST_WAIT_KEY || s->st == TLS_ST_NO_KEY))
		tlsk_poll(s->c->keys, 1);
	if (s->st == TLS_ST_WAIT_KEY) {
		tlsdec_expire(s, now);
		if (s->st == TLS_ST_WAIT_KEY && !tlsdec_try_keys(s))
			tlsdec_set_state(s, TLS_ST_NO_KEY);
	}
	if (s->st == TLS_ST_NO_KEY && s->su && s->c->keys && late_key(s))
		tlsdec_set_state(s, TLS_ST_KEY_LATE);
	enum tls_state st = s->st;
	unwait(s);
	drop_held(s);
	for (int i = 0; i < 2; i++) {
		free(s->d[i].rb);
		EVP_CIPHER_CTX_free(s->d[i].cx);
		EVP_MAC_CTX_free(s->d[i].mac);
		OPENSSL_cleanse(s->d[i].secret, sizeof s->d[i].secret);
		OPENSSL_cleanse(s->d[i].iv, sizeof s->d[i].iv);
	}
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
	return st;
}
