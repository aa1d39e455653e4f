/* TLS key logs (the NSS key log format written by OpenSSL, NSS, Go, Node, Python, libpq 18:
 * "LABEL <client random hex> <secret hex>" per line) read into a bounded store of secrets
 * indexed by client random. The store follows its files as the applications append to
 * them (and every *.keys file of a directory). Secrets are never printed; the store's
 * memory is locked when the system allows it, kept out of core dumps and zeroed on free.
 * Single-threaded: the decoding side owns it. */
#ifndef DBTAP_TLSKEYS_H
#define DBTAP_TLSKEYS_H

#include <stddef.h>
#include <stdint.h>

#define TLSK_MAX_SECRET 48 /* SHA-384 secrets and the TLS 1.2 master secret */

enum tlsk_label {
	TLSK_MASTER, /* CLIENT_RANDOM: TLS 1.2 master secret */
	TLSK_CHTS,   /* CLIENT_HANDSHAKE_TRAFFIC_SECRET */
	TLSK_SHTS,   /* SERVER_HANDSHAKE_TRAFFIC_SECRET */
	TLSK_CTS0,   /* CLIENT_TRAFFIC_SECRET_0 */
	TLSK_STS0,   /* SERVER_TRAFFIC_SECRET_0 */
	TLSK_N
};

struct tlsk_entry {
	uint8_t crand[32];
	uint8_t len[TLSK_N]; /* 0: not (yet) in the log */
	uint8_t matched;
	uint8_t sec[TLSK_N][TLSK_MAX_SECRET];
};

struct tlsk_stats {
	uint64_t loaded;    /* key log lines taken in */
	uint64_t matched;   /* entries a session used */
	uint64_t unused;    /* entries never used (counted at free) */
	uint64_t expired;   /* entries dropped for room before any session used them */
	uint64_t bad_lines; /* lines that are not key log lines (each warned once) */
};

struct tlsk_store;

/* paths: files, FIFOs or directories (their *.keys files). A path that cannot be opened
 * now is an error (message in err); files that appear later in a directory are picked up.
 * max_entries bounds the store (oldest dropped first). */
struct tlsk_store *tlsk_new(char *const *paths, int n, size_t max_entries, char *err, size_t errlen);
void tlsk_free(struct tlsk_store *k, struct tlsk_stats *st);

/* Read what the files gained since the last call. force = 0: at most every 100 ms (wall
 * clock), so a flow waiting for its key can ask on every record. */
void tlsk_poll(struct tlsk_store *k, int force);

/* The entry for a client random, NULL when none. The pointer is valid until the next poll. */
struct tlsk_entry *tlsk_find(struct tlsk_store *k, const uint8_t crand[32]);
/* A session decrypts with this entry (counted once per entry). */
void tlsk_used(struct tlsk_store *k, struct tlsk_entry *e);

/* One line (without its newline): 0 taken, 1 ignored (blank, comment, a label we do not
 * use), -1 malformed. Exposed for the fuzzer. */
int tlsk_line(struct tlsk_store *k, const char *line, size_t n);
/* An empty store with no files (fuzzing, tests). */
struct tlsk_store *tlsk_new_empty(size_t max_entries);
void tlsk_get_stats(const struct tlsk_store *k, struct tlsk_stats *st);

#endif
