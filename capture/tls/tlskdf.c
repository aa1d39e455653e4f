/* Key schedule: TLS 1.3 traffic keys from the logged secrets (HKDF-Expand-Label, RFC 8446
 * §7.1, KeyUpdate §4.6.3) and TLS 1.2's key block from the master secret (RFC 5246 §6.3),
 * installed into libcrypto cipher and HMAC contexts. */
#include "tls_int.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

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

int tlskdf_key13(struct tls_sess *s, int dir, const uint8_t *secret, size_t slen)
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
int tlskdf_keys12(struct tls_sess *s, const struct tlsk_entry *e)
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

/* KeyUpdate: the next traffic secret from this one, and its keys. */
int tlskdf_update(struct tls_sess *s, int dir)
{
	struct tls_dir *d = &s->d[dir];
	uint8_t ns[TLSK_MAX_SECRET];
	int rc = -1;
	if (expand_label(s->c, s->su->sha384, d->secret, d->slen, "traffic upd", ns, d->slen) == 0)
		rc = tlskdf_key13(s, dir, ns, d->slen);
	OPENSSL_cleanse(ns, sizeof ns);
	return rc;
}
