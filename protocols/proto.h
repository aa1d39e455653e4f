/* The decoder table: one entry per database protocol. Capture feeds each direction's
 * reassembled bytes to parse(); a decoder consumes whole messages and says how many
 * bytes it consumed, so capture can discard them (decoders keep no reassembly buffer).
 * Decoders include libc and ev.h (this folder) only, so they can be fuzzed on byte arrays. */
#ifndef DBTAP_PROTO_H
#define DBTAP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"

enum proto_dir {
	PROTO_TO_SERVER,
	PROTO_TO_CLIENT,
};

enum proto_verdict {
	PROTO_NO,
	PROTO_MAYBE,
	PROTO_YES,
};

enum proto_status {
	PROTO_OK,   /* consumed what it could; call again with more bytes */
	PROTO_STOP, /* nothing more to decode on this flow (TLS, replication stream, gave up) */
};

struct proto_result {
	enum proto_status status;
	size_t consumed; /* bytes of buf the decoder is done with (may be 0) */
};

enum proto_end {
	PROTO_END_CLOSE,
	PROTO_END_RESET,
	PROTO_END_TIMEOUT,
	PROTO_END_EOF,
};

/* Largest message head a decoder may ask capture to hold before it must decide
 * (consume a prefix and skip the rest). Capture never buffers more than this per
 * direction; see PROTO_MAX_HOLD use in capture/. */
#define PROTO_MAX_HOLD (1u << 20)

/* What a decoder's bounded tables had to drop on one flow; capture adds them up into
 * runs.drops so nothing is lost silently. */
struct proto_stats {
	uint64_t stmt_evictions;   /* prepared statements forgotten: cache full */
	uint64_t portal_evictions; /* PostgreSQL portals forgotten */
	uint64_t params_dropped;   /* bind values not rendered: caps */
	uint64_t pending_dropped;  /* requests that could not be queued for matching */
};

/* Everything capture and the analyzer need to know of a protocol is in its entry: adding
 * a protocol is a subfolder of protocols/ plus one line in registry.c (or one
 * proto_register() call before the capture starts). */
#define PROTO_MAX 8		/* decoders in the registry, built-in and registered */
#define PROTO_MAX_DEFAULT_PORTS 4

struct proto_decoder {
	const char *name; /* 'postgresql' | 'mysql': sessions.protocol and the config's ports key */
	/* Server ports decoded without probing unless the config's ports.<name> says
	 * otherwise; 0-terminated. */
	uint16_t default_ports[PROTO_MAX_DEFAULT_PORTS];
	enum ev_dialect dialect; /* how the analyzer lexes its statement text */
	/* Look at the first bytes of a direction of an unknown flow. */
	enum proto_verdict (*probe)(enum proto_dir dir, const uint8_t *buf, size_t len);
	/* New per-flow state; midstream=1 when the handshake was not seen. NULL on ENOMEM. */
	void *(*open)(const struct ev_sink *out, int midstream);
	/* Decode as many whole messages as buf holds. ts is the packet time of the data.
	 * A message larger than PROTO_MAX_HOLD must be consumed piecewise (skip state). */
	struct proto_result (*parse)(void *st, enum proto_dir dir, const uint8_t *buf, size_t len,
				     ev_time ts);
	/* Bytes were lost in one direction: drop partial state and resynchronise. */
	void (*gap)(void *st, enum proto_dir dir, ev_time ts);
	/* Flow over: emit what is pending (queries without results get EV_OUT_UNKNOWN) and free. */
	void (*close)(void *st, enum proto_end why, ev_time ts);
	/* Optional: add this flow's drop counters into *out (called just before close). */
	void (*stats)(void *st, struct proto_stats *out);
	/* Optional: after EV_TLS and PROTO_STOP, capture can decrypt the session; the decoder
	 * carries on with the plaintext as if the TLS layer were not there. */
	void (*tls_resume)(void *st);
};

extern const struct proto_decoder proto_pgsql;
extern const struct proto_decoder proto_mysql;

/* Flat registry, NULL-terminated: the built-in decoders, then registered ones. */
extern const struct proto_decoder *proto_registry[PROTO_MAX + 1];

const struct proto_decoder *proto_by_name(const char *name);
/* Position of d in proto_registry, or -1. */
int proto_index(const struct proto_decoder *d);
/* Add a decoder (a test's or a plugin's) before capture starts. 0, or -ENOSPC when the
 * registry is full, -EEXIST when the name is taken. Not thread-safe: call at start-up. */
int proto_register(const struct proto_decoder *d);

#endif
