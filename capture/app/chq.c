/* Chunk queue with its consumer thread (see chq.h). */
#include "chq.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct chunk {
	struct chunk *next;
	size_t cap, used;
	_Alignas(8) unsigned char data[];
};

struct chq {
	const struct chq_ops *ops;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t has_work, has_room;
	struct chunk *head, *tail; /* handed over, not yet replayed */
	struct chunk *spare;	   /* replayed standard chunks kept for reuse (a few) */
	int n_spare;
	size_t inflight; /* bytes of chunks handed over and not yet freed */
	int busy;	 /* the consumer is replaying a chunk */
	int stop;
	struct chunk *cur; /* producer's chunk being filled */
};

#define SPARE_MAX 4

static void *run(void *arg)
{
	struct chq *q = arg;
	/* signals are the capture thread's business (poll wake-ups, stop flags) */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (!q->head && !q->stop && q->ops->idle) {
			q->busy = 1; /* chq_drain must not return while idle() runs */
			pthread_mutex_unlock(&q->mu);
			q->ops->idle(q->ctx);
			pthread_mutex_lock(&q->mu);
			q->busy = 0;
			pthread_cond_broadcast(&q->has_room);
		}
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->has_work, &q->mu);
		struct chunk *c = q->head;
		if (!c)
			break; /* stop, and nothing left */
		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		q->busy = 1;
		pthread_mutex_unlock(&q->mu);
		q->ops->replay(q->ctx, c->data, c->used);
		pthread_mutex_lock(&q->mu);
		q->busy = 0;
		q->inflight -= c->cap;
		if (c->cap == CHQ_CHUNK && q->n_spare < SPARE_MAX) {
			c->next = q->spare;
			q->spare = c;
			q->n_spare++;
		} else {
			free(c);
		}
		pthread_cond_broadcast(&q->has_room);
	}
	pthread_mutex_unlock(&q->mu);
	if (q->ops->idle)
		q->ops->idle(q->ctx); /* the last messages may have left output behind */
	return NULL;
}

struct chq *chq_new(const struct chq_ops *ops, void *ctx)
{
	struct chq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->ops = ops;
	q->ctx = ctx;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->has_work, NULL);
	pthread_cond_init(&q->has_room, NULL);
	if (pthread_create(&q->thread, NULL, run, q) != 0) {
		pthread_cond_destroy(&q->has_room);
		pthread_cond_destroy(&q->has_work);
		pthread_mutex_destroy(&q->mu);
		free(q);
		return NULL;
	}
	pthread_setname_np(q->thread, ops->thread_name); /* top -H, perf */
	return q;
}

void chq_flush(struct chq *q)
{
	if (!q || !q->cur || q->cur->used == 0)
		return;
	struct chunk *c = q->cur;
	q->cur = NULL;
	c->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	pthread_cond_signal(&q->has_work);
	pthread_mutex_unlock(&q->mu);
}

void *chq_reserve(struct chq *q, size_t n)
{
	if (q->cur && q->cur->used + n <= q->cur->cap) {
		void *m = q->cur->data + q->cur->used;
		q->cur->used += n;
		return m;
	}
	chq_flush(q);
	size_t cap = n > CHQ_CHUNK ? chq_align8(n) : CHQ_CHUNK;
	struct chunk *c = NULL;
	pthread_mutex_lock(&q->mu);
	/* the consumer is far behind: wait (one chunk always goes, however big) */
	while (q->inflight > 0 && q->inflight + cap > CHQ_MAX_INFLIGHT)
		pthread_cond_wait(&q->has_room, &q->mu);
	if (cap == CHQ_CHUNK && q->spare) {
		c = q->spare;
		q->spare = c->next;
		q->n_spare--;
	}
	q->inflight += cap;
	pthread_mutex_unlock(&q->mu);
	if (!c && !(c = malloc(sizeof *c + cap))) {
		pthread_mutex_lock(&q->mu);
		q->inflight -= cap;
		pthread_mutex_unlock(&q->mu);
		return NULL;
	}
	c->cap = cap;
	c->used = n;
	c->next = NULL;
	q->cur = c;
	return c->data;
}

void chq_drain(struct chq *q)
{
	if (!q)
		return;
	chq_flush(q);
	pthread_mutex_lock(&q->mu);
	while (q->head || q->busy)
		pthread_cond_wait(&q->has_room, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void chq_free(struct chq *q)
{
	if (!q)
		return;
	chq_flush(q);
	free(q->cur); /* only when flush had nothing to hand over */
	q->cur = NULL;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_signal(&q->has_work);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	while (q->spare) {
		struct chunk *c = q->spare;
		q->spare = c->next;
		free(c);
	}
	pthread_cond_destroy(&q->has_room);
	pthread_cond_destroy(&q->has_work);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

size_t chq_inflight(struct chq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->inflight;
	pthread_mutex_unlock(&q->mu);
	return n;
}
