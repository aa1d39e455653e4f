/* The decoders' hand-over to the analyzer: the same four calls as an.h (open, feed,
 * close, tick), either made directly or, with a thread, copied into chunks (chq.h) that
 * an analyzer thread replays in order. Normalisation, attribution, detection and output
 * then run on their own core. Every event is deep-copied (events only borrow decoder
 * memory). One producer: the capture thread, or the decoder thread (decstage.h). */
#ifndef DBTAP_ANPIPE_H
#define DBTAP_ANPIPE_H

#include "an.h"

struct anpipe;

/* threaded = 0: every call goes straight to an. NULL when out of memory or the thread
 * could not start (the caller may fall back to threaded = 0). */
struct anpipe *anpipe_new(struct an *an, int threaded);
/* Replay what is queued and stop the thread: later calls go straight to the analyzer. */
void anpipe_stop(struct anpipe *p);
/* anpipe_stop, then free. */
void anpipe_free(struct anpipe *p);
/* Hand the current chunk over now (end of a read batch), so live data is not held back. */
void anpipe_flush(struct anpipe *p);

/* stage_arg callbacks for a call whose argument struct begins with an an_flow (an open,
 * here and in decstage.c): the bytes its addresses take, and their copy to at, the flow's
 * pointers aimed at the copies. */
size_t anpipe_flow_extra(const void *arg);
void anpipe_flow_copy(void *arg, void *at);

/* A handle for the session (not an an_session when threaded); NULL when out of memory. */
void *anpipe_open(struct anpipe *p, const struct an_flow *flow);
void anpipe_feed(struct anpipe *p, void *h, const struct ev *ev);
/* The handle is gone after this call. */
void anpipe_close(struct anpipe *p, void *h, const struct an_flow_end *end);
void anpipe_tick(struct anpipe *p, ev_time now);
/* Run fn(ctx) on the analyzer's side, in order with the events (e.g. reopening an output
 * the analyzer writes to). */
void anpipe_call(struct anpipe *p, void (*fn)(void *), void *ctx);
/* Bytes queued for the analyzer's thread (0 without one). */
size_t anpipe_queued(struct anpipe *p);

#endif
