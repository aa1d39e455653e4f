/* SQLite sink: the producer's side of the writer queue (hand a batch over, wait for a free
 * one, give up the oldest while writes fail) and the loss reports on stderr. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "sqlite_sink_int.h"

/* With mu held: wait up to a second for the writer, reporting while writes fail. -1 when
 * they have failed for SQ_WAIT_FAILING_S (a waiting caller then stops waiting: close
 * gives the rest up, counted, rather than hang on a disk that stays full). */
int sq_wait_done(struct sq_sink *q)
{
	if (q->failing_since && time(NULL) - q->failing_since >= q->give_up_s) {
		char why[256];
		snprintf(why, sizeof why, "%s", q->w_err);
		snprintf(q->w_err, sizeof(q->w_err), "%s: writes failing for %llds (%.100s); %d batches not stored yet, still retried",
			 q->base.name, (long long)(time(NULL) - q->failing_since), why,
			 q->q_len + q->writing);
		q->w_err_seq++;
		return -1;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_cond_timedwait(&q->cv_done, &q->mu, &ts);
	if (q->failing_since) {
		pthread_mutex_unlock(&q->mu);
		sq_report(q);
		pthread_mutex_lock(&q->mu);
	}
	return 0;
}

/* Queue the current batch if it has rows and a free batch can replace it. With wait set,
 * block until one is free (sync/close only; capture never waits). */
int sq_handover(struct sq_sink *q, int wait)
{
	struct sq_batch *b = q->cur;
	if (!b->n)
		return 0;
	pthread_mutex_lock(&q->mu);
	while (!q->n_free && wait)
		if (sq_wait_done(q) < 0)
			break;
	if (!q->n_free && q->failing_since && q->q_len > 1 && !q->wait) { /* reading files waits */
		/* Writes fail and every batch is queued: give up the oldest queued rows, not
		 * the newest (counted; the stderr report says so). */
		int old = q->queue[q->q_head];
		q->q_head = (q->q_head + 1) % SQ_NBATCH_LIVE;
		q->q_len--;
		q->w_lost += q->pool[old].n;
		q->w_shed += q->pool[old].n;
		sq_batch_reset(&q->pool[old]);
		q->free_idx[q->n_free++] = old;
	}
	if (!q->n_free) {
		pthread_mutex_unlock(&q->mu);
		return -EAGAIN;
	}
	int idx = q->free_idx[--q->n_free];
	q->queue[(q->q_head + q->q_len) % SQ_NBATCH_LIVE] = (int)(b - q->pool);
	q->q_len++;
	q->cur = &q->pool[idx];
	pthread_cond_signal(&q->cv_work);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* Fold the writer's error and loss counters into the public fields; -EIO once per new error. */
int sq_collect(struct sq_sink *q)
{
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	if (q->w_err_seq != q->seen_err_seq) {
		q->seen_err_seq = q->w_err_seq;
		snprintf(q->base.errmsg, sizeof(q->base.errmsg), "%s", q->w_err);
		rc = -EIO;
	}
	q->base.dropped = q->p_dropped + q->w_lost;
	if (rc && q->seen_err_seq == 1) {
		/* the caller prints this first error: it stands for the loss so far */
		q->reported_lost = q->base.dropped;
		q->last_report = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&q->mu);
	sq_report(q);
	return rc;
}

/* Loss is never silent: while writes fail or rows are being lost, a stderr line every
 * SQ_REPORT_S seconds with the counts (they are in runs.drops at the end too). Producer
 * thread, mu not held. */
void sq_report(struct sq_sink *q)
{
	pthread_mutex_lock(&q->mu);
	uint64_t lost = q->p_dropped + q->w_lost;
	int64_t failing = q->failing_since, now = (int64_t)time(NULL);
	uint64_t shed = q->w_shed;
	int queued = q->q_len;
	char why[256];
	snprintf(why, sizeof why, "%s", q->w_err);
	pthread_mutex_unlock(&q->mu);
	/* reading files, rows are lost only with an error the caller prints */
	if (((failing && now - failing >= 2) || (!q->wait && lost != q->reported_lost)) &&
	    now - q->last_report >= SQ_REPORT_S) {
		q->last_report = now;
		if (failing)
			fprintf(stderr, "dbtap: %s: writes failing for %llds (%s), retrying; %d batches queued; %llu rows lost so far (%llu oldest given up for newer)\n",
				q->base.name, (long long)(now - failing), why, queued,
				(unsigned long long)lost, (unsigned long long)shed);
		else
			fprintf(stderr, "dbtap: %s: %llu rows not stored so far (%llu since the last report)\n",
				q->base.name, (unsigned long long)lost,
				(unsigned long long)(lost - q->reported_lost));
		q->reported_lost = lost;
	}
}
