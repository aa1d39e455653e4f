/* The decoding stage: each flow's decoder, fed with the bytes libnids reassembled, between
 * the capture and the analyzer pipe (anpipe.h). Either the calls run inline, or they are
 * copied into a chunk queue (chq.h) and a decoder thread replays them, so libpcap and
 * libnids, the decoders, and the analyzer each get a core.
 *
 * Capture hands every reassembled byte over at once; the stage keeps what a decoder did
 * not consume (a message's head) in a per-direction buffer of at most PROTO_MAX_HOLD
 * bytes plus the newest segment, all flows' buffers within one budget (a flood of flows
 * that each start a huge message cannot take the sensor's memory). Decoder counters reach
 * the capture at decstage_free. */
#ifndef DBTAP_DECSTAGE_H
#define DBTAP_DECSTAGE_H

#include "an.h"
#include "anpipe.h"
#include "proto.h"
#include "tlsdec.h"

struct decstage;
struct dflow; /* one flow's decoder; owned by the stage from decstage_open to _close */

struct decstage_stats {
	struct proto_stats p;	/* decoders' own drop counters */
	uint64_t oversize;	/* messages skipped: a decoder would not commit within the hold */
	uint64_t lost_bytes;	/* partial messages dropped with a gap in the other direction */
	uint64_t held_dropped;	/* message heads dropped: the hold budget was spent */
	struct tls_stats tls;	/* TLS sessions by outcome, records, failures */
	struct tlsk_stats keys; /* key log entries loaded, matched, unused, expired */
};

/* threaded = 0: calls run inline. held_max bounds the hold buffers of all flows together:
 * a head that does not fit is dropped (the decoder resyncs) and counted. NULL when out of
 * memory or the thread could not start. */
struct decstage *decstage_new(struct anpipe *pipe, int threaded, size_t held_max);
/* Replay what is queued, stop the thread, add the counters to *st, free. */
void decstage_free(struct decstage *ds, struct decstage_stats *st);
/* Decrypt TLS sessions with the secrets of these key logs (files, FIFOs, directories of
 * *.keys), followed as they grow; a session waits wait_s seconds of packet time for its
 * key. Call before the first flow. -1 and a one-line message when a path cannot be read. */
int decstage_tls(struct decstage *ds, char *const *keylogs, int n, int wait_s, char *err,
		 size_t errlen);
/* The TLS counters of st as `,"tls":{...}}` written at out (at most n bytes). */
void decstage_tls_json(const struct decstage_stats *st, char *out, size_t n);
/* Hand queued calls over now (end of a live read batch). */
void decstage_flush(struct decstage *ds);

/* Start decoding a flow and open its analyzer session; NULL when out of memory. */
struct dflow *decstage_open(struct decstage *ds, const struct proto_decoder *dec, int midstream,
			    const struct an_flow *flow);
/* 1 once the decoder said PROTO_STOP (the capture may stop handing bytes over). */
int decstage_stopped(const struct dflow *df);
void decstage_data(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts,
		   const uint8_t *buf, size_t len);
/* Bytes were lost in dir: the decoder resynchronises; the other direction's held message
 * head, if any, is dropped and counted in the session's lost bytes. */
void decstage_gap(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts);
/* The capture saw something wrong in the flow's packets (what: a static text): an
 * EV_ANOMALY into the session, in order with its data. */
void decstage_anomaly(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts,
		      const char *what);
/* The flow is over: the decoder emits what is pending, the session closes with *end
 * (plus the bytes dropped at gaps), and df is gone. */
void decstage_close(struct decstage *ds, struct dflow *df, enum proto_end why,
		    const struct an_flow_end *end);
void decstage_tick(struct decstage *ds, ev_time now);
/* fn(ctx) on the analyzer's side, in order with everything handed over before. */
void decstage_call(struct decstage *ds, void (*fn)(void *), void *ctx);
/* Bytes queued for the decoders' thread (0 without one). */
size_t decstage_queued(struct decstage *ds);

#endif
