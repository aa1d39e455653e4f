/* SQLite sink: the writer thread (one transaction per batch, retried with backoff while a
 * failure may pass) and the checkpointer thread. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "sqlite_sink_int.h"

/* Called with mu held. */
static void sq_set_werr_db(struct sq_sink *q, sqlite3 *db, const char *what)
{
	snprintf(q->w_err, sizeof(q->w_err), "%s: %s: %s", q->base.name, what, sqlite3_errmsg(db));
	q->w_err_seq++;
}

static int sq_exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Store one batch in one transaction. Row-level failures (e.g. a duplicate id) lose that row;
 * I/O-level failures (disk full, read-only, lock timeout) roll the batch back. */
/* With mu held. */
static int sq_retryable(const struct sq_sink *q, int rc)
{
	/* Another process's lock passes. A full disk (or the I/O error a full file system
	 * gives some calls) passes when someone frees space: live
	 * (the queue keeps the newest rows meanwhile) or with a spill file; reading files
	 * without a spill it stays an error, one line, the batch counted (durability.py). */
	int prim = rc & 0xff;
	return prim == SQLITE_BUSY || prim == SQLITE_LOCKED || prim == SQLITE_PROTOCOL ||
	       ((prim == SQLITE_FULL || prim == SQLITE_IOERR) && (!q->wait || q->sp_db));
}

/* 1: an I/O-level failure that may pass (disk full, lock held, read-only for now): the
 * batch was rolled back whole and is to be written again. */
int sq_write_batch(struct sq_sink *q, struct sq_batch *b, sqlite3 *db, sqlite3_stmt *const *sts)
{
	uint64_t lost = 0;
	const char *what = NULL;
	int rc = sq_exec_stmt(sts[SQ_BEGIN]);
	if (rc != SQLITE_OK) {
		what = "begin";
		goto rollback;
	}
	for (size_t k = 0; k < b->n; k++) {
		sqlite3_stmt *st;
		/* a run of SQ_MULTI statement rows goes in one INSERT; if it fails (e.g. one
		 * duplicate id) nothing of it was stored and the rows are retried one by one */
		if (k + SQ_MULTI <= b->n && b->items[k].type == REC_STATEMENT &&
		    b->items[k + SQ_MULTI - 1].type == REC_STATEMENT) {
			size_t j = k;
			while (j < k + SQ_MULTI && b->items[j].type == REC_STATEMENT)
				j++;
			if (j == k + SQ_MULTI) {
				st = sts[SQ_STATEMENT_MULTI];
				for (size_t m = 0; m < SQ_MULTI; m++)
					sq_bind_statement(q, st, 1 + (int)m * SQ_STMT_COLS,
						       &b->items[k + m].u.statement, (int)m);
				rc = sq_exec_stmt(st);
				if (rc == SQLITE_OK) {
					k += SQ_MULTI - 1;
					continue;
				}
				int prim = rc & 0xff;
				if (prim != SQLITE_CONSTRAINT && prim != SQLITE_MISMATCH &&
				    prim != SQLITE_TOOBIG) {
					what = "insert";
					goto rollback;
				}
			}
		}
		sq_bind_item(q, sts, &b->items[k], &st);
		rc = sq_exec_stmt(st); /* every parameter is bound again next time: no clear */
		if (rc == SQLITE_OK)
			continue;
		int prim = rc & 0xff;
		if (prim == SQLITE_CONSTRAINT || prim == SQLITE_MISMATCH || prim == SQLITE_TOOBIG) {
			if (!lost++) { /* report the first rejected row of a batch */
				pthread_mutex_lock(&q->mu);
				sq_set_werr_db(q, db, "row rejected");
				pthread_mutex_unlock(&q->mu);
			}
			continue;
		}
		what = "insert";
		goto rollback;
	}
	rc = sq_exec_stmt(sts[SQ_COMMIT]);
	if (rc == SQLITE_OK)
		goto out;
	what = "commit";
rollback:
	pthread_mutex_lock(&q->mu);
	int retry = sq_retryable(q, rc);
	if (retry) /* not an error yet: reported while it lasts (sq_report) */
		snprintf(q->w_err, sizeof(q->w_err), "%s%s: %s", db == q->sp_db ? "spill: " : "", what,
			 sqlite3_errmsg(db));
	else
		sq_set_werr_db(q, db, what);
	pthread_mutex_unlock(&q->mu);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (retry)
		return 1;
	lost = b->n;
out:
	q->wb_lost = lost;
	pthread_mutex_lock(&q->mu);
	q->w_lost += lost;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void *sq_writer(void *arg)
{
	struct sq_sink *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->q_len && !q->stop) {
			if (!q->sp_rows) {
				pthread_cond_wait(&q->cv_work, &q->mu);
				continue;
			}
			/* idle with rows in the spill: try to replay them now and then */
			struct timespec ts;
			sink_deadline(&ts, q->sp_delay_ms ? q->sp_delay_ms : SQ_RETRY_MIN_MS);
			pthread_cond_timedwait(&q->cv_work, &q->mu, &ts);
			if (q->q_len || q->stop)
				break;
			pthread_mutex_unlock(&q->mu);
			sq_spill_replay(q, 0);
			pthread_mutex_lock(&q->mu);
		}
		if (!q->q_len) { /* stop requested and nothing left */
			if (q->sp_rows) { /* a last try; else the next start replays them */
				pthread_mutex_unlock(&q->mu);
				sq_spill_replay(q, 1);
				pthread_mutex_lock(&q->mu);
			}
			break;
		}
		int idx = q->queue[q->q_head];
		q->q_head = (q->q_head + 1) % SQ_NBATCH_LIVE;
		q->q_len--;
		q->writing = 1;
		pthread_mutex_unlock(&q->mu);

		struct sq_batch *b = &q->pool[idx];
		/* A full disk or another process's lock passes: with a spill file the batch goes
		 * there (replayed first once the database can be written: rows stay in order);
		 * without one, or with the spill full, keep the batch and try again, backing off,
		 * while put() keeps the newest rows (sq_handover). */
		unsigned delay = SQ_RETRY_MIN_MS;
		int gave_up = 0, stored = 0;
		for (;;) {
			int r = q->sp_db ? sq_spill_replay(q, 0) : 0;
			if (r == 0 && sq_write_batch(q, b, q->db, q->st) == 0) {
				stored = 1;
				break;
			}
			pthread_mutex_lock(&q->mu);
			if (!q->failing_since)
				q->failing_since = (int64_t)time(NULL);
			pthread_mutex_unlock(&q->mu);
			if (q->sp_db && !q->sp_full && sq_spill_batch(q, b) == 0)
				break;
			pthread_mutex_lock(&q->mu);
			if (q->stop && ++q->stop_tries > SQ_STOP_TRIES) {
				gave_up = 1;
				q->w_lost += b->n; /* closing and still failing: lost, counted */
				snprintf(q->w_err, sizeof(q->w_err), "%s: rows lost: writes still failing at close",
					 q->base.name);
				q->w_err_seq++;
				pthread_mutex_unlock(&q->mu);
				break;
			}
			struct timespec ts;
			sink_deadline(&ts, delay);
			if (!q->stop)
				pthread_cond_timedwait(&q->cv_work, &q->mu, &ts);
			pthread_mutex_unlock(&q->mu);
			delay = delay * 2 > SQ_RETRY_MAX_MS ? SQ_RETRY_MAX_MS : delay * 2;
		}
		sq_batch_reset(b);

		pthread_mutex_lock(&q->mu);
		if (q->failing_since && stored && !gave_up)
			q->failing_since = 0; /* written: the failure is over */
		q->writing = 0;
		q->free_idx[q->n_free++] = idx;
		pthread_cond_broadcast(&q->cv_done);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- checkpoints ---- */

/* Runs in the writer thread after each commit. A checkpoint copies WAL pages into the
 * database file and fsyncs both: the checkpointer does that while the writer goes on.
 * Only if the WAL reaches SQ_WAL_HARD_PAGES (the checkpointer fell behind a sustained
 * load) does the writer wait for it and checkpoint the rest itself, so the WAL stays
 * bounded. PASSIVE never waits for readers: a long query only delays the WAL's reuse. */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_sink *q = arg;
	if (frames < SQ_CHECKPOINT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&q->mu);
	if (frames < SQ_WAL_HARD_PAGES) {
		q->ck_want = 1;
		pthread_cond_signal(&q->cv_ck);
		pthread_mutex_unlock(&q->mu);
		return SQLITE_OK;
	}
	while (q->ck_running)
		pthread_cond_wait(&q->cv_ck_done, &q->mu);
	pthread_mutex_unlock(&q->mu);
	int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
		pthread_mutex_lock(&q->mu);
		sq_set_werr_db(q, db, "checkpoint");
		pthread_mutex_unlock(&q->mu);
	}
	return SQLITE_OK;
}

static void *sq_checkpointer(void *arg)
{
	struct sq_sink *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->ck_want && !q->ck_stop)
			pthread_cond_wait(&q->cv_ck, &q->mu);
		if (q->ck_stop)
			break;
		q->ck_want = 0;
		q->ck_running = 1;
		pthread_mutex_unlock(&q->mu);
		int rc = sqlite3_wal_checkpoint_v2(q->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						   NULL);
		pthread_mutex_lock(&q->mu);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY) /* BUSY: the writer is checkpointing */
			sq_set_werr_db(q, q->ck_db, "checkpoint");
		q->ck_running = 0;
		pthread_cond_broadcast(&q->cv_ck_done);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* A second connection for checkpoints. Without it (it cannot be opened or the thread
 * not started) the writer checkpoints as SQLite does by default. */
void sq_start_checkpointer(struct sq_sink *q)
{
	if (sqlite3_open_v2(q->base.name, &q->ck_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(q->ck_db, SQ_BUSY_MS) != SQLITE_OK || /* like every connection */
	    sqlite3_exec(q->ck_db, "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0", NULL,
			 NULL, NULL) != SQLITE_OK ||
	    pthread_create(&q->ck_thread, NULL, sq_checkpointer, q) != 0) {
		sqlite3_close(q->ck_db);
		q->ck_db = NULL;
		return;
	}
	q->ck_started = 1;
	pthread_setname_np(q->ck_thread, "dbtap-ckpt"); /* here, so it is set when open returns */
	sqlite3_wal_hook(q->db, sq_wal_hook, q); /* replaces the automatic checkpoint */
}

void sq_stop_checkpointer(struct sq_sink *q)
{
	if (q->ck_started) {
		pthread_mutex_lock(&q->mu);
		q->ck_stop = 1;
		pthread_cond_signal(&q->cv_ck);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->ck_thread, NULL);
		q->ck_started = 0;
	}
	sqlite3_close(q->ck_db); /* first: the writer's close then checkpoints what is left */
	q->ck_db = NULL;
}
