/* Passive TLS decryption of one database session from key-log secrets: the record layer
 * (records split across segments or several per segment), the handshake in clear
 * (ClientHello random, ServerHello version and suite, HelloRetryRequest), the TLS 1.3 key
 * schedule (HKDF-Expand-Label, KeyUpdate) and the TLS 1.2 key block (PRF), AEAD record
 * decryption with OpenSSL's libcrypto (AES-128/256-GCM, ChaCha20-Poly1305) and TLS 1.2's
 * AES-CBC suites (HMAC-SHA1/256/384, MAC-then-encrypt or encrypt-then-MAC, RFC 7366).
 *
 * A session whose key is not in the log yet keeps its records (bounded per session and in
 * total) until the key arrives or tls_key_wait_s of packet time passed. Decrypted
 * application data goes to out->data in order, per direction. Every byte is hostile: a
 * record that fails authentication is an anomaly and that direction stops. */
#ifndef DBTAP_TLSDEC_H
#define DBTAP_TLSDEC_H

#include <stddef.h>
#include <stdint.h>

#include "tlskeys.h"

typedef int64_t tls_time; /* packet time, microseconds (ev_time) */

/* What a session came to; the first final state is what the session row says. */
enum tls_state {
	TLS_ST_HANDSHAKE,   /* before the ServerHello */
	TLS_ST_WAIT_KEY,    /* suite known, key not in the log yet: records held */
	TLS_ST_DECRYPTING,  /* keys found */
	TLS_ST_NO_KEY,      /* the key did not arrive within the wait */
	TLS_ST_KEY_LATE,    /* ... and came after it */
	TLS_ST_UNSUPPORTED, /* version or cipher suite we cannot decrypt */
	TLS_ST_MIDSTREAM,   /* handshake not seen: no client random, no key */
	TLS_ST_BAD_KEY,     /* the logged key does not authenticate the records */
};

/* Text stored in sessions.tls_decrypted: "1" when decrypted, else the reason. */
const char *tls_state_name(enum tls_state s);

struct tls_out {
	void (*data)(void *ctx, int dir, tls_time ts, const uint8_t *p, size_t n);
	void (*gap)(void *ctx, int dir, tls_time ts); /* plaintext lost in dir */
	void (*anomaly)(void *ctx, int dir, tls_time ts, const char *what);
	void (*state)(void *ctx, enum tls_state st); /* the session's state changed */
	void *ctx;
};

struct tls_stats {
	uint64_t sessions, decrypted, no_key, key_late, unsupported, midstream, bad_key;
	uint64_t records, auth_failures, held_dropped_bytes, keyupdates, alerts;
};

/* Shared by every session of a decoding stage: the key store and scratch memory. */
struct tls_ctx;
/* keys: taken over (freed by tls_ctx_free). wait_us: how long records wait for a key. */
struct tls_ctx *tls_ctx_new(struct tlsk_store *keys, tls_time wait_us, size_t hold_flow,
			    size_t hold_total);
void tls_ctx_free(struct tls_ctx *c, struct tls_stats *st, struct tlsk_stats *kst);
/* Re-read the key logs (rate limited) and give up on sessions whose wait is over. */
void tls_ctx_tick(struct tls_ctx *c, tls_time now);
void tls_ctx_stats(const struct tls_ctx *c, struct tls_stats *st, struct tlsk_stats *kst);

struct tls_sess;
/* dir numbering follows proto_dir: 0 to the server, 1 to the client. */
struct tls_sess *tls_sess_new(struct tls_ctx *c, const struct tls_out *out);
void tls_sess_feed(struct tls_sess *s, int dir, tls_time ts, const uint8_t *p, size_t n);
/* Bytes were lost in dir: that direction cannot be decrypted any more. */
void tls_sess_gap(struct tls_sess *s, int dir, tls_time ts);
enum tls_state tls_sess_state(const struct tls_sess *s);
/* 1 while nothing more can come out of this session (stop feeding it). */
int tls_sess_done(const struct tls_sess *s);
/* The TCP connection ended: 1 when the session may close now, 0 while its key could still
 * come (waiting for it, or it missed the wait and a late key would say key_late). */
int tls_sess_may_close(struct tls_sess *s);
/* Flow over: last look for a late key (then held records are decrypted, or the state
 * becomes key_late), free. Returns the final state. */
enum tls_state tls_sess_free(struct tls_sess *s, tls_time now);

#endif
