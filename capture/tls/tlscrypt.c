/* Record decryption with libcrypto: AEAD records (AES-GCM, ChaCha20-Poly1305; nonces per
 * RFC 5288, RFC 8446 §5.3, RFC 7905) and TLS 1.2 CBC records with their HMAC. */
#include "tls_int.h"

#include <string.h>

#include <openssl/crypto.h>

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

long tlscrypt_record(struct tls_sess *s, struct tls_dir *d, const uint8_t *r, size_t n)
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

