/* One stage of the pipeline, inline or on a thread: each call runs at once on the
 * caller's thread, or, threaded, becomes a message in a chunk queue (chq.h) that the
 * stage's own thread replays in order. The decoding stage (decstage.c) and the analyzer
 * hand-over (anpipe.c) are built on it; they say what their calls are and how each call's
 * argument is copied, the stage does the rest. */
#ifndef DBTAP_STAGE_H
#define DBTAP_STAGE_H

#include <stddef.h>

struct stage_ops {
	const char *thread_name; /* top -H, perf */
	/* One call on the stage's side (inline, or on its thread): type and argument as
	 * posted; arg lives until run returns. */
	void (*run)(void *ctx, int type, void *arg);
	/* Optional: the thread found its queue empty and is about to wait. */
	void (*idle)(void *ctx);
};

/* How a call's argument crosses to the thread: the struct (size bytes) by value, then the
 * bytes it points to copied right behind it, its pointers aimed at those copies. Neither
 * function is called inline, where the caller's memory is still there. */
struct stage_arg {
	size_t size;
	size_t (*extra)(const void *arg); /* bytes to copy; NULL: none */
	void (*copy)(void *arg, void *at);
};

/* A call of fn(ctx) carried by a stage (both stages have one: their "call" message). */
struct stage_call {
	void (*fn)(void *);
	void *ctx;
};
extern const struct stage_arg stage_call_arg;

struct stage;

/* threaded = 0: every call runs inline. NULL when out of memory or the thread could not
 * start. */
struct stage *stage_new(const struct stage_ops *ops, void *ctx, int threaded);
int stage_threaded(const struct stage *s);
/* Run the call, or queue it (bounded: waits while the thread is far behind). -1 when it
 * could not be queued (out of memory): the caller decides what is lost. */
int stage_post(struct stage *s, int type, void *arg, const struct stage_arg *how);
/* Hand the queued calls over now (end of a read batch), so live data is not held back. */
void stage_flush(struct stage *s);
/* Wait until the thread has run everything posted so far. */
void stage_drain(struct stage *s);
/* Bytes queued for the thread (0 inline). */
size_t stage_queued(const struct stage *s);
/* Run what is queued and stop the thread: later calls run inline. */
void stage_stop(struct stage *s);
/* stage_stop, then free. */
void stage_free(struct stage *s);

#endif
