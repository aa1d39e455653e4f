/* Passive TLS 1.2/1.3 decryption (see tlsdec.h). Facts from RFC 8446 (TLS 1.3: record
 * layer §5, key schedule §7, KeyUpdate §4.6.3), RFC 5246 (TLS 1.2 key block §6.3),
 * RFC 5288 (AES-GCM nonces), RFC 7905 (ChaCha20-Poly1305 nonces). */
#include "tlsdec.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#define REC_HDR 5
#define REC_MAX (16384 + 2048) /* TLS 1.2 ciphertext bound; 1.3 allows 16384 + 256 */
#define HS_KEEP 4096	       /* handshake message bytes kept for parsing (hellos, KeyUpdate) */
#define HOLD_HDR 16	       /* per held record: dir, ts, length */

enum { CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
enum { HS_CLIENT_HELLO = 1, HS_SERVER_HELLO = 2, HS_FINISHED = 20, HS_KEY_UPDATE = 24 };
/* the AEADs, then TLS 1.2's CBC ciphers (with an HMAC) */
enum { AEAD_AES128GCM, AEAD_AES256GCM, AEAD_CHACHA, CBC_AES128, CBC_AES256, AEAD_N };

struct suite {
	uint16_t id;
	uint16_t version; /* 0x0304 or 0x0303 */
	int aead;
	int sha384; /* the PRF / HKDF hash */
	int mac;    /* CBC suites: the HMAC's hash length (20 SHA-1, 32 SHA-256, 48 SHA-384) */
};

static const struct suite suites[] = {
	{ 0x1301, 0x0304, AEAD_AES128GCM, 0, 0 }, /* TLS_AES_128_GCM_SHA256 */
	{ 0x1302, 0x0304, AEAD_AES256GCM, 1, 0 }, /* TLS_AES_256_GCM_SHA384 */
	{ 0x1303, 0x0304, AEAD_CHACHA, 0, 0 },    /* TLS_CHACHA20_POLY1305_SHA256 */
	{ 0xc02b, 0x0303, AEAD_AES128GCM, 0, 0 }, /* ECDHE-ECDSA-AES128-GCM-SHA256 */
	{ 0xc02f, 0x0303, AEAD_AES128GCM, 0, 0 }, /* ECDHE-RSA-AES128-GCM-SHA256 */
	{ 0x009c, 0x0303, AEAD_AES128GCM, 0, 0 }, /* RSA-AES128-GCM-SHA256 */
	{ 0x009e, 0x0303, AEAD_AES128GCM, 0, 0 }, /* DHE-RSA-AES128-GCM-SHA256 */
	{ 0xc02c, 0x0303, AEAD_AES256GCM, 1, 0 }, /* ECDHE-ECDSA-AES256-GCM-SHA384 */
	{ 0xc030, 0x0303, AEAD_AES256GCM, 1, 0 }, /* ECDHE-RSA-AES256-GCM-SHA384 */
	{ 0x009d, 0x0303, AEAD_AES256GCM, 1, 0 }, /* RSA-AES256-GCM-SHA384 */
	{ 0x009f, 0x0303, AEAD_AES256GCM, 1, 0 }, /* DHE-RSA-AES256-GCM-SHA384 */
	{ 0xcca8, 0x0303, AEAD_CHACHA, 0, 0 },    /* ECDHE-RSA-CHACHA20-POLY1305 */
	{ 0xcca9, 0x0303, AEAD_CHACHA, 0, 0 },    /* ECDHE-ECDSA-CHACHA20-POLY1305 */
	{ 0xccaa, 0x0303, AEAD_CHACHA, 0, 0 },    /* DHE-RSA-CHACHA20-POLY1305 */
	{ 0xc013, 0x0303, CBC_AES128, 0, 20 }, /* ECDHE-RSA-AES128-SHA */
	{ 0xc014, 0x0303, CBC_AES256, 0, 20 }, /* ECDHE-RSA-AES256-SHA */
	{ 0xc009, 0x0303, CBC_AES128, 0, 20 }, /* ECDHE-ECDSA-AES128-SHA */
	{ 0xc00a, 0x0303, CBC_AES256, 0, 20 }, /* ECDHE-ECDSA-AES256-SHA */
	{ 0x002f, 0x0303, CBC_AES128, 0, 20 }, /* AES128-SHA */
	{ 0x0035, 0x0303, CBC_AES256, 0, 20 }, /* AES256-SHA */
	{ 0x0033, 0x0303, CBC_AES128, 0, 20 }, /* DHE-RSA-AES128-SHA */
	{ 0x0039, 0x0303, CBC_AES256, 0, 20 }, /* DHE-RSA-AES256-SHA */
	{ 0xc027, 0x0303, CBC_AES128, 0, 32 }, /* ECDHE-RSA-AES128-SHA256 */
	{ 0xc028, 0x0303, CBC_AES256, 1, 48 }, /* ECDHE-RSA-AES256-SHA384 */
	{ 0xc023, 0x0303, CBC_AES128, 0, 32 }, /* ECDHE-ECDSA-AES128-SHA256 */
	{ 0xc024, 0x0303, CBC_AES256, 1, 48 }, /* ECDHE-ECDSA-AES256-SHA384 */
	{ 0x003c, 0x0303, CBC_AES128, 0, 32 }, /* AES128-SHA256 */
	{ 0x003d, 0x0303, CBC_AES256, 0, 32 }, /* AES256-SHA256 */
	{ 0x0067, 0x0303, CBC_AES128, 0, 32 }, /* DHE-RSA-AES128-SHA256 */
	{ 0x006b, 0x0303, CBC_AES256, 0, 32 }, /* DHE-RSA-AES256-SHA256 */
};

/* ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3) */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

struct tls_ctx {
	struct tlsk_store *keys;
	tls_time wait_us;
	size_t hold_flow, hold_total, held;
	EVP_CIPHER *cipher[AEAD_N];
	EVP_KDF *hkdf, *prf;
	EVP_MAC *hmac;
	struct tls_sess *waiting; /* sessions in TLS_ST_WAIT_KEY */
	struct tls_stats st;
	uint8_t plain[REC_MAX];
};

struct tls_dir {
	uint8_t *rb; /* a record not yet whole */
	size_t rn, rcap;
	uint8_t hh[4]; /* handshake message header being read */
	size_t hhn, hleft, hn;
	uint8_t hbuf[HS_KEEP];
	int enc;   /* records are protected from here on */
	int keyed; /* cx holds this direction's key */
	int dead;  /* nothing more can be decrypted in this direction */
	int app;   /* TLS 1.3: application traffic keys in use */
	int next;  /* after this record: 1 switch to application keys, 2 KeyUpdate */
	EVP_CIPHER_CTX *cx;
	EVP_MAC_CTX *mac; /* CBC suites */
	uint8_t iv[12];
	uint64_t seq;
	uint8_t secret[TLSK_MAX_SECRET];
	size_t slen;
};

struct tls_sess {
	struct tls_ctx *c;
	struct tls_out out;
	enum tls_state st;
	const struct suite *su;
	uint16_t version;
	int have_crand, hrr, decrypted_any;
	int etm; /* CBC: encrypt-then-MAC (RFC 7366) was agreed */
	uint8_t crand[32], srand[32];
	struct tls_dir d[2];
	uint8_t *held; /* records waiting for the key: HOLD_HDR + record each */
	size_t hn, hcap;
	tls_time hold_since;
	struct tls_sess *wprev, *wnext;
};

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

/* ---- key derivation ---- */

/* HKDF-Expand-Label(secret, label, "", n) of RFC 8446 §7.1 */
static int expand_label(struct tls_ctx *c, int sha384, const uint8_t *secret, size_t slen,
			const char *label, uint8_t *out, size_t n)
{
	uint8_t info[2 + 1 + 255 + 1];
	size_t ll = strlen(label), il = 0;
	info[il++] = (uint8_t)(n >> 8);
	info[il++] = (uint8_t)n;
	info[il++] = (uint8_t)(6 + ll);
	memcpy(info + il, "tls13 ", 6);
	il += 6;
	memcpy(info + il, label, ll);
	il += ll;
	info[il++] = 0; /* empty context */
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha384 ? "SHA384" : "SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, il),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(c->hkdf);
	int ok = k && EVP_KDF_derive(k, out, n, p) == 1;
	EVP_KDF_CTX_free(k);
	return ok ? 0 : -1;
}

static size_t key_len(int aead)
{
	return aead == AEAD_AES128GCM || aead == CBC_AES128 ? 16 : 32;
}

static const char *mac_digest(int mac)
{
	return mac == 20 ? "SHA1" : mac == 32 ? "SHA256" : "SHA384";
}

static int set_key(struct tls_sess *s, struct tls_dir *d, const uint8_t *key, const uint8_t *iv,
		   size_t ivlen)
{
	if (!d->cx && !(d->cx = EVP_CIPHER_CTX_new()))
		return -1;
	if (EVP_DecryptInit_ex2(d->cx, s->c->cipher[s->su->aead], key, NULL, NULL) != 1)
		return -1;
	if (s->su->mac)
		EVP_CIPHER_CTX_set_padding(d->cx, 0); /* TLS padding is checked here, not by EVP */
	memset(d->iv, 0, sizeof d->iv);
	memcpy(d->iv, iv, ivlen);
	d->seq = 0;
	d->keyed = 1;
	return 0;
}

/* TLS 1.3: traffic keys of dir from a traffic secret. */
static int key13(struct tls_sess *s, int dir, const uint8_t *secret, size_t slen)
{
	struct tls_dir *d = &s->d[dir];
	uint8_t key[32], iv[12];
	size_t kl = key_len(s->su->aead);
	int rc = -1;
	if (expand_label(s->c, s->su->sha384, secret, slen, "key", key, kl) == 0 &&
	    expand_label(s->c, s->su->sha384, secret, slen, "iv", iv, 12) == 0)
		rc = set_key(s, d, key, iv, 12);
	if (secret != d->secret)
		memcpy(d->secret, secret, slen);
	d->slen = slen;
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(iv, sizeof iv);
	return rc;
}

/* TLS 1.2, CBC suites: dir's HMAC key (the cipher's key is set by set_key). */
static int set_mac(struct tls_sess *s, struct tls_dir *d, const uint8_t *key)
{
	struct tls_ctx *c = s->c;
	/* fetched on first use: CBC is rare, and every fetch grows the sensor's memory */
	if (!c->hmac && !(c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
		return -1;
	if (!c->cipher[s->su->aead] &&
	    !(c->cipher[s->su->aead] = EVP_CIPHER_fetch(NULL, s->su->aead == CBC_AES128 ? "AES-128-CBC" : "AES-256-CBC", NULL)))
		return -1;
	if (!d->mac && !(d->mac = EVP_MAC_CTX_new(c->hmac)))
		return -1;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)mac_digest(s->su->mac), 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_init(d->mac, key, (size_t)s->su->mac, p) == 1 ? 0 : -1;
}

/* TLS 1.2: the key block from the master secret (RFC 5246 §6.3): AEAD suites take keys and
 * implicit IVs, CBC suites MAC keys and keys (their IVs are explicit, per record). */
static int keys12(struct tls_sess *s, const struct tlsk_entry *e)
{
	uint8_t seed[13 + 64], kb[2 * 48 + 2 * 32 + 2 * 12];
	memcpy(seed, "key expansion", 13);
	memcpy(seed + 13, s->srand, 32);
	memcpy(seed + 45, s->crand, 32);
	size_t kl = key_len(s->su->aead), ivl = s->su->aead == AEAD_CHACHA ? 12 : 4;
	size_t ml = (size_t)s->su->mac;
	size_t n = ml ? 2 * ml + 2 * kl : 2 * kl + 2 * ivl;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, s->su->sha384 ? "SHA384" : "SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)e->sec[TLSK_MASTER], 48),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(s->c->prf);
	int rc = k && EVP_KDF_derive(k, kb, n, p) == 1 ? 0 : -1;
	EVP_KDF_CTX_free(k);
	if (rc == 0 && ml) { /* client MAC key, server MAC key, client key, server key */
		static const uint8_t zero[16];
		if (set_mac(s, &s->d[0], kb) < 0 || set_mac(s, &s->d[1], kb + ml) < 0 ||
		    set_key(s, &s->d[0], kb + 2 * ml, zero, 0) < 0 ||
		    set_key(s, &s->d[1], kb + 2 * ml + kl, zero, 0) < 0)
			rc = -1;
	} else if (rc == 0 && (set_key(s, &s->d[0], kb, kb + 2 * kl, ivl) < 0 || /* keys, IVs */
			       set_key(s, &s->d[1], kb + kl, kb + 2 * kl + ivl, ivl) < 0)) {
		rc = -1;
	}
	s->d[0].keyed = s->d[1].keyed = 0; /* in use from each side's ChangeCipherSpec */
	OPENSSL_cleanse(kb, sizeof kb);
	return rc;
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

static void set_state(struct tls_sess *s, enum tls_state st)
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

static void dir_dead(struct tls_sess *s, int dir)
{
	struct tls_dir *d = &s->d[dir];
	d->dead = 1;
	free(d->rb);
	d->rb = NULL;
	d->rn = d->rcap = 0;
}

static void anomaly(struct tls_sess *s, int dir, tls_time ts, const char *what)
{
	if (s->out.anomaly)
		s->out.anomaly(s->out.ctx, dir, ts, what);
}

/* ---- records ---- */

static void record(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n);

/* The key log has what this session needs: install it and replay what was held. */
static int try_keys(struct tls_sess *s)
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
		if (key13(s, 0, e->sec[TLSK_CHTS], hl) < 0 || key13(s, 1, e->sec[TLSK_SHTS], hl) < 0)
			return 0;
	} else {
		if (e->len[TLSK_MASTER] != 48 || keys12(s, e) < 0)
			return 0;
	}
	tlsk_used(s->c->keys, e);
	/* the held records replay through the same path */
	uint8_t *held = s->held;
	size_t hn = s->hn, hcap = s->hcap;
	s->held = NULL;
	s->hn = s->hcap = 0;
	set_state(s, TLS_ST_DECRYPTING);
	for (size_t off = 0; off + HOLD_HDR <= hn;) {
		int dir = held[off];
		tls_time ts;
		uint32_t len;
		memcpy(&ts, held + off + 4, 8);
		memcpy(&len, held + off + 12, 4);
		record(s, dir, ts, held + off + HOLD_HDR, len);
		off += HOLD_HDR + len;
	}
	if (held) {
		OPENSSL_cleanse(held, hn);
		s->c->held -= hcap;
		free(held);
	}
	return 1;
}

static void hold(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n)
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
			dir_dead(s, dir);
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

static void server_hello(struct tls_sess *s, const uint8_t *b, size_t n)
{
	/* version(2) random(32) session_id<0..32> suite(2) compression(1) extensions<..> */
	if (n < 38)
		return;
	if (!memcmp(b + 2, hrr_random, 32)) {
		s->hrr = 1; /* the client says hello again, with the same random */
		return;
	}
	memcpy(s->srand, b + 2, 32);
	size_t off = 34, sl = b[off];
	off += 1 + sl;
	if (off + 3 > n)
		return;
	uint16_t suite = (uint16_t)(b[off] << 8 | b[off + 1]);
	uint16_t version = (uint16_t)(b[0] << 8 | b[1]);
	off += 3;
	if (off + 2 <= n) {
		size_t el = (size_t)(b[off] << 8 | b[off + 1]);
		off += 2;
		size_t end = off + el < n ? off + el : n;
		while (off + 4 <= end) {
			uint16_t t = (uint16_t)(b[off] << 8 | b[off + 1]);
			size_t l = (size_t)(b[off + 2] << 8 | b[off + 3]);
			off += 4;
			if (t == 0x002b && l == 2 && off + 2 <= end) /* supported_versions */
				version = (uint16_t)(b[off] << 8 | b[off + 1]);
			else if (t == 0x0016) /* encrypt_then_mac (RFC 7366) */
				s->etm = 1;
			off += l;
		}
	}
	s->version = version;
	s->su = NULL;
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
		if (suites[i].id == suite && suites[i].version == version)
			s->su = &suites[i];
	if (!s->su) {
		set_state(s, TLS_ST_UNSUPPORTED);
		return;
	}
	if (!s->have_crand) {
		set_state(s, TLS_ST_MIDSTREAM);
		return;
	}
	if (version == 0x0304)
		s->d[0].enc = s->d[1].enc = 1; /* every record after the ServerHello */
	if (s->c->keys)
		tlsk_poll(s->c->keys, 0);
	if (!try_keys(s)) {
		s->hold_since = 0;
		set_state(s, TLS_ST_WAIT_KEY);
	}
}

/* A whole handshake message (its first HS_KEEP bytes in b). */
static void hs_message(struct tls_sess *s, int dir, int type, const uint8_t *b, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	if (dir == 0 && type == HS_CLIENT_HELLO && n >= 34 && s->st == TLS_ST_HANDSHAKE) {
		memcpy(s->crand, b + 2, 32);
		s->have_crand = 1;
	} else if (dir == 1 && type == HS_SERVER_HELLO && s->st == TLS_ST_HANDSHAKE) {
		server_hello(s, b, n);
	} else if (d->keyed && s->version == 0x0304) {
		if (type == HS_FINISHED && !d->app)
			d->next = 1;
		else if (type == HS_KEY_UPDATE && d->app)
			d->next = 2;
	}
}

/* Handshake bytes (clear or decrypted), messages may span records. */
static void hs_feed(struct tls_sess *s, int dir, const uint8_t *p, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	while (n) {
		if (d->hhn < 4) {
			d->hh[d->hhn++] = *p++;
			n--;
			if (d->hhn == 4) {
				d->hleft = (size_t)d->hh[1] << 16 | (size_t)d->hh[2] << 8 | d->hh[3];
				d->hn = 0;
				if (!d->hleft) {
					hs_message(s, dir, d->hh[0], d->hbuf, 0);
					d->hhn = 0;
				}
			}
			continue;
		}
		size_t k = n < d->hleft ? n : d->hleft;
		if (d->hn < HS_KEEP) {
			size_t c = k < HS_KEEP - d->hn ? k : HS_KEEP - d->hn;
			memcpy(d->hbuf + d->hn, p, c);
			d->hn += c;
		}
		p += k;
		n -= k;
		d->hleft -= k;
		if (!d->hleft) {
			hs_message(s, dir, d->hh[0], d->hbuf, d->hn);
			d->hhn = 0;
		}
	}
}

/* HMAC of a TLS 1.2 record: seq, type, version, length, then the n bytes at p (RFC 5246
 * §6.2.3.1; with encrypt-then-MAC the IV and ciphertext, RFC 7366 §3). */
static int mac_ok(struct tls_dir *d, const uint8_t *r, const uint8_t *p, size_t n, const uint8_t *want,
		  size_t ml)
{
	uint8_t h[13], got[48];
	size_t gl = 0;
	for (int i = 0; i < 8; i++)
		h[i] = (uint8_t)(d->seq >> (56 - 8 * i));
	h[8] = r[0];
	h[9] = r[1];
	h[10] = r[2];
	h[11] = (uint8_t)(n >> 8);
	h[12] = (uint8_t)n;
	if (EVP_MAC_init(d->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(d->mac, h, 13) != 1 ||
	    EVP_MAC_update(d->mac, p, n) != 1 || EVP_MAC_final(d->mac, got, &gl, sizeof got) != 1 ||
	    gl != ml)
		return 0;
	return CRYPTO_memcmp(got, want, ml) == 0;
}

/* TLS 1.2 CBC record: IV (16) then the ciphertext, MAC-then-encrypt or encrypt-then-MAC. */
static long decrypt_cbc(struct tls_sess *s, struct tls_dir *d, const uint8_t *r, size_t n)
{
	size_t ml = (size_t)s->su->mac, cl = n - REC_HDR;
	const uint8_t *iv = r + REC_HDR;
	if (s->etm) {
		if (cl < 16 + 16 + ml || !mac_ok(d, r, iv, cl - ml, iv + cl - ml, ml))
			return -1;
		cl -= ml;
	}
	if (cl < 32 || cl % 16)
		return -1;
	cl -= 16;
	uint8_t *out = s->c->plain;
	int l1 = 0, l2 = 0;
	if (EVP_DecryptInit_ex2(d->cx, NULL, NULL, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(d->cx, out, &l1, iv + 16, (int)cl) != 1 ||
	    EVP_DecryptFinal_ex(d->cx, out + l1, &l2) != 1 || (size_t)(l1 + l2) != cl)
		return -1;
	size_t pad = out[cl - 1];
	if (pad + 1 + (s->etm ? 0 : ml) > cl)
		return -1;
	for (size_t i = 0; i < pad; i++)
		if (out[cl - 2 - i] != pad)
			return -1;
	size_t pl = cl - pad - 1;
	if (!s->etm) {
		pl -= ml;
		if (!mac_ok(d, r, out, pl, out + pl, ml))
			return -1;
	}
	d->seq++;
	return (long)pl;
}

/* Decrypt one protected record into c->plain. Returns plaintext length (TLS 1.3: with
 * the inner type and padding), -1 on failure. */
static long decrypt(struct tls_sess *s, struct tls_dir *d, const uint8_t *r, size_t n)
{
	if (s->su->mac)
		return decrypt_cbc(s, d, r, n);
	uint8_t nonce[12], aad[13];
	const uint8_t *ct = r + REC_HDR;
	size_t cl = n - REC_HDR, aadl;
	if (s->version == 0x0303 && s->su->aead != AEAD_CHACHA) {
		if (cl < 8 + 16) /* explicit nonce + tag */
			return -1;
		memcpy(nonce, d->iv, 4); /* RFC 5288: salt || explicit nonce */
		memcpy(nonce + 4, ct, 8);
		ct += 8;
		cl -= 8;
	} else {
		memcpy(nonce, d->iv, 12); /* RFC 8446 §5.3, RFC 7905: iv XOR seq */
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
	}
	if (cl < 16)
		return -1;
	cl -= 16;
	if (s->version == 0x0304) {
		memcpy(aad, r, REC_HDR);
		aadl = REC_HDR;
	} else {
		for (int i = 0; i < 8; i++)
			aad[i] = (uint8_t)(d->seq >> (56 - 8 * i));
		aad[8] = r[0];
		aad[9] = r[1];
		aad[10] = r[2];
		aad[11] = (uint8_t)(cl >> 8);
		aad[12] = (uint8_t)cl;
		aadl = 13;
	}
	int l1 = 0, l2 = 0, la = 0;
	uint8_t *out = s->c->plain;
	if (EVP_DecryptInit_ex2(d->cx, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(d->cx, NULL, &la, aad, (int)aadl) != 1 ||
	    EVP_DecryptUpdate(d->cx, out, &l1, ct, (int)cl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->cx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(ct + cl)) != 1 ||
	    EVP_DecryptFinal_ex(d->cx, out + l1, &l2) != 1)
		return -1;
	d->seq++;
	return (long)l1 + l2;
}

static void next_keys(struct tls_sess *s, int dir)
{
	struct tls_dir *d = &s->d[dir];
	int what = d->next;
	d->next = 0;
	if (what == 1) {
		struct tlsk_entry *e = s->c->keys ? tlsk_find(s->c->keys, s->crand) : NULL;
		int lab = dir == 0 ? TLSK_CTS0 : TLSK_STS0;
		if (!e || e->len[lab] != d->slen || key13(s, dir, e->sec[lab], d->slen) < 0) {
			dir_dead(s, dir); /* the entry went for room: cannot follow */
			return;
		}
		d->app = 1;
	} else if (what == 2) {
		uint8_t ns[TLSK_MAX_SECRET];
		if (expand_label(s->c, s->su->sha384, d->secret, d->slen, "traffic upd", ns, d->slen) < 0 ||
		    key13(s, dir, ns, d->slen) < 0)
			dir_dead(s, dir);
		OPENSSL_cleanse(ns, sizeof ns);
		s->c->st.keyupdates++;
	}
}

static void content(struct tls_sess *s, int dir, tls_time ts, int type, const uint8_t *p, size_t n)
{
	switch (type) {
	case CT_APPDATA:
		if (n && s->out.data)
			s->out.data(s->out.ctx, dir, ts, p, n);
		break;
	case CT_HANDSHAKE:
		hs_feed(s, dir, p, n);
		break;
	case CT_ALERT:
		s->c->st.alerts++;
		if (n >= 2 && p[1] != 0 && p[0] == 2) /* a fatal alert: the connection ends */
			anomaly(s, dir, ts, "tls: fatal alert");
		break;
	default:
		break;
	}
}

/* One whole record r (header included). */
static void record(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	int type = r[0];
	if (d->dead)
		return;
	if (s->st == TLS_ST_WAIT_KEY) {
		if (!s->hold_since)
			s->hold_since = ts ? ts : 1;
		hold(s, dir, ts, r, n);
		return;
	}
	if (s->st != TLS_ST_HANDSHAKE && s->st != TLS_ST_DECRYPTING)
		return;
	s->c->st.records++;
	if (type == CT_CCS) {
		if (s->version == 0x0303 && s->st == TLS_ST_DECRYPTING) {
			d->enc = 1;
			d->keyed = 1;
			d->seq = 0;
		}
		return;
	}
	if (!d->enc) {
		if (type == CT_HANDSHAKE)
			hs_feed(s, dir, r + REC_HDR, n - REC_HDR);
		else if (type == CT_APPDATA && s->st == TLS_ST_HANDSHAKE) /* 0-RTT, or no hello seen */
			set_state(s, s->have_crand ? TLS_ST_UNSUPPORTED : TLS_ST_MIDSTREAM);
		else if (type == CT_ALERT)
			content(s, dir, ts, type, r + REC_HDR, n - REC_HDR);
		return;
	}
	if (!d->keyed)
		return;
	if (s->version == 0x0304 && type != CT_APPDATA) {
		if (type == CT_ALERT) /* a clear alert before the peer had keys */
			content(s, dir, ts, type, r + REC_HDR, n - REC_HDR);
		return;
	}
	long pl = decrypt(s, d, r, n);
	if (pl < 0) {
		s->c->st.auth_failures++;
		anomaly(s, dir, ts, "tls: record failed authentication (wrong key or forged)");
		dir_dead(s, dir);
		if (!s->decrypted_any)
			set_state(s, TLS_ST_BAD_KEY);
		return;
	}
	s->decrypted_any = 1;
	const uint8_t *p = s->c->plain;
	size_t pn = (size_t)pl;
	if (s->version == 0x0304) { /* TLSInnerPlaintext: content, type, zero padding */
		while (pn && !p[pn - 1])
			pn--;
		if (!pn) {
			anomaly(s, dir, ts, "tls: record without content type");
			dir_dead(s, dir);
			return;
		}
		type = p[--pn];
	}
	content(s, dir, ts, type, p, pn);
	if (d->next && !d->dead)
		next_keys(s, dir);
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

static int valid_header(const uint8_t *h)
{
	return h[0] >= CT_CCS && h[0] <= CT_APPDATA && h[1] == 3 && h[2] <= 4;
}

static void expire(struct tls_sess *s, tls_time now)
{
	if (s->st == TLS_ST_WAIT_KEY && s->hold_since && now - s->hold_since > s->c->wait_us)
		set_state(s, TLS_ST_NO_KEY);
}

void tls_sess_feed(struct tls_sess *s, int dir, tls_time ts, const uint8_t *p, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	if (s->st == TLS_ST_WAIT_KEY) {
		if (s->c->keys) {
			tlsk_poll(s->c->keys, 0);
			try_keys(s);
		}
		expire(s, ts);
	}
	while (n && !d->dead && !tls_sess_done(s)) {
		if (d->rn) { /* complete the record begun earlier */
			size_t need = REC_HDR;
			if (d->rn >= REC_HDR)
				need += (size_t)d->rb[3] << 8 | d->rb[4];
			size_t k = need - d->rn < n ? need - d->rn : n;
			memcpy(d->rb + d->rn, p, k);
			d->rn += k;
			p += k;
			n -= k;
			if (d->rn == REC_HDR) {
				if (!valid_header(d->rb) || ((size_t)d->rb[3] << 8 | d->rb[4]) > REC_MAX) {
					anomaly(s, dir, ts, "tls: not a TLS record");
					dir_dead(s, dir);
					return;
				}
				/* the length just completed: a zero-length record is whole now (left
				 * waiting, it made no progress and the loop never ended) */
				need = REC_HDR + ((size_t)d->rb[3] << 8 | d->rb[4]);
			}
			if (d->rn == need) {
				d->rn = 0;
				record(s, dir, ts, d->rb, need);
			}
			continue;
		}
		if (n >= REC_HDR) {
			size_t len = (size_t)p[3] << 8 | p[4];
			if (!valid_header(p) || len > REC_MAX) {
				anomaly(s, dir, ts, "tls: not a TLS record");
				dir_dead(s, dir);
				return;
			}
			if (n >= REC_HDR + len) { /* whole: no copy */
				record(s, dir, ts, p, REC_HDR + len);
				p += REC_HDR + len;
				n -= REC_HDR + len;
				continue;
			}
		}
		if (!d->rb && !(d->rb = malloc(REC_HDR + REC_MAX))) {
			anomaly(s, dir, ts, "tls: out of memory");
			dir_dead(s, dir);
			return;
		}
		memcpy(d->rb, p, n); /* a header (checked above when whole) waits for the rest */
		d->rn = n;
		n = 0;
	}
}

void tls_sess_gap(struct tls_sess *s, int dir, tls_time ts)
{
	if (s->d[dir].dead)
		return;
	/* sequence numbers and record boundaries are lost with the bytes */
	dir_dead(s, dir);
	if (s->out.gap)
		s->out.gap(s->out.ctx, dir, ts);
}

void tls_ctx_tick(struct tls_ctx *c, tls_time now)
{
	if (c->keys && c->waiting)
		tlsk_poll(c->keys, 0);
	for (struct tls_sess *s = c->waiting, *nx; s; s = nx) {
		nx = s->wnext;
		if (!try_keys(s))
			expire(s, now);
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
	set_state(s, TLS_ST_KEY_LATE);
	return 1;
}

enum tls_state tls_sess_free(struct tls_sess *s, tls_time now)
{
	if (s->c->keys && (s->st == TLS_ST_WAIT_KEY || s->st == TLS_ST_NO_KEY))
		tlsk_poll(s->c->keys, 1);
	if (s->st == TLS_ST_WAIT_KEY) {
		expire(s, now);
		if (s->st == TLS_ST_WAIT_KEY && !try_keys(s))
			set_state(s, TLS_ST_NO_KEY);
	}
	if (s->st == TLS_ST_NO_KEY && s->su && s->c->keys && late_key(s))
		set_state(s, TLS_ST_KEY_LATE);
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
