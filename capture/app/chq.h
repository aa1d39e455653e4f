/* A chunk queue between two threads of the pipeline: one producer writes messages into
 * its current chunk; whole chunks go, in order, to a consumer thread that replays them.
 * Chunks in flight are capped in bytes and the producer waits beyond the cap (live: the
 * kernel ring absorbs it, drops counted). stage.c (inline or on a thread) builds its
 * messages on it, for anpipe.c and decstage.c. */
#ifndef DBTAP_CHQ_H
#define DBTAP_CHQ_H

#include <stddef.h>

#define CHQ_CHUNK (64u * 1024)		  /* bytes per chunk (bigger messages get their own) */
#define CHQ_MAX_INFLIGHT (2u * 1024 * 1024) /* bytes queued before the producer waits */

struct chq_ops {
	const char *thread_name; /* top -H, perf */
	/* Replay one chunk's messages (data[0..used)), on the consumer thread. */
	void (*replay)(void *ctx, unsigned char *data, size_t used);
	/* Optional: the consumer found the queue empty and is about to wait. */
	void (*idle)(void *ctx);
};

struct chq;

/* NULL when out of memory or the thread could not start. */
struct chq *chq_new(const struct chq_ops *ops, void *ctx);
/* Room for a message of n bytes (a multiple of 8) in the producer's chunk, 8-aligned;
 * waits while the consumer is CHQ_MAX_INFLIGHT behind; NULL when out of memory. */
void *chq_reserve(struct chq *q, size_t n);
/* Hand the current chunk over now (end of a read batch, so live data is not held back). */
void chq_flush(struct chq *q);
/* Wait until the consumer has replayed everything handed over so far (flushes first). */
void chq_drain(struct chq *q);
/* Bytes handed over and not yet replayed (for the stats record; any thread). */
size_t chq_inflight(struct chq *q);
/* Replay what is queued, stop the thread and free. */
void chq_free(struct chq *q);

static inline size_t chq_align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

#endif
