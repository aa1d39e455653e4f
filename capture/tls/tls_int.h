/* Internal to capture/tls/: the decoder's state and the calls between its files. Each
 * file has one job and its own prefix: tlsdec.c (contexts, sessions, their state and the
 * wait for a key), tlsrec.c (the record layer), tlshs.c (the handshake in clear),
 * tlskdf.c (key schedule), tlscrypt.c (record decryption). */
#ifndef DBTAP_TLS_INT_H
#define DBTAP_TLS_INT_H

#include "tlsdec.h"

#include <openssl/evp.h>

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

/* tlsdec.c: state changes, the wait for the key */
void tlsdec_set_state(struct tls_sess *s, enum tls_state st);
void tlsdec_dir_dead(struct tls_sess *s, int dir);
void tlsdec_anomaly(struct tls_sess *s, int dir, tls_time ts, const char *what);
/* The key log has what this session needs: install it, replay what was held; 1 if so. */
int tlsdec_try_keys(struct tls_sess *s);
void tlsdec_hold(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n);
void tlsdec_expire(struct tls_sess *s, tls_time now);
/* tlsrec.c: one whole record r (header included) */
void tlsrec_record(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n);
/* tlshs.c: handshake bytes (clear or decrypted); messages may span records */
void tlshs_feed(struct tls_sess *s, int dir, const uint8_t *p, size_t n);
/* tlskdf.c: TLS 1.3 traffic keys of dir from a traffic secret; TLS 1.2 key block; the
 * next traffic secret after a KeyUpdate. 0 or -1. */
int tlskdf_key13(struct tls_sess *s, int dir, const uint8_t *secret, size_t slen);
int tlskdf_keys12(struct tls_sess *s, const struct tlsk_entry *e);
int tlskdf_update(struct tls_sess *s, int dir);
/* tlscrypt.c: decrypt one protected record into c->plain; the plaintext length (TLS 1.3:
 * with the inner type and padding), -1 on failure */
long tlscrypt_record(struct tls_sess *s, struct tls_dir *d, const uint8_t *r, size_t n);

#endif
