/* SQLite sink: the findings database of DESIGN.md §3 (schema, WAL, user_version) written by a
 * writer thread. put() copies each record into a bounded batch (arena + item array) and never
 * touches disk; flush() hands the batch to the writer, which stores it in one transaction. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite_schema.h"
#include "sqlite_sink_int.h"

static int sq_put(struct sink *s, const struct rec *r)
{
	struct sq_sink *q = (struct sq_sink *)s;
	if (r->type == REC_STATS)
		return 0; /* the run row carries the last one */
	struct sq_batch *b = q->cur;
	if (b->n >= q->batch_rows || b->bytes >= SQ_BATCH_BYTES) {
		sq_handover(q, q->wait);
		b = q->cur;
	}
	if (b->n >= q->batch_rows || b->bytes >= SQ_BATCH_BYTES) {
		/* The writer is behind. Statements go first; sessions, runs and findings may
		 * overfill the batch up to the hard cap because later rows refer to them. */
		if (r->type == REC_STATEMENT || b->n >= q->batch_rows * SQ_HARD_FACTOR ||
		    b->bytes >= (size_t)SQ_BATCH_BYTES * SQ_HARD_FACTOR) {
			if (r->type == REC_BASELINE)
				return -EAGAIN; /* the analyzer keeps the row and tries later */
			q->p_dropped++;
			q->base.dropped++;
			return -ENOBUFS;
		}
	}
	if (sq_copy(b, r) < 0) {
		q->p_dropped++;
		q->base.dropped++;
		snprintf(s->errmsg, sizeof(s->errmsg), "%s: out of memory copying a record", s->name);
		return -ENOMEM;
	}
	return 0;
}

static int sq_flush(struct sink *s)
{
	struct sq_sink *q = (struct sq_sink *)s;
	sq_handover(q, 0); /* -EAGAIN: the writer is busy; rows stay in cur */
	return sq_collect(q);
}

static int sq_sync(struct sink *s)
{
	struct sq_sink *q = (struct sq_sink *)s;
	sq_handover(q, 1);
	pthread_mutex_lock(&q->mu);
	while (q->q_len || q->writing)
		if (sq_wait_done(q) < 0)
			break;
	pthread_mutex_unlock(&q->mu);
	return sq_collect(q);
}

static void sq_free(struct sq_sink *q)
{
	sq_stop_checkpointer(q);
	for (int i = 0; i < SQ_NSTMT; i++) {
		sqlite3_finalize(q->st[i]);
		sqlite3_finalize(q->sp_st[i]);
	}
	sqlite3_close(q->sp_db);
	free(q->sp_path);
	free(q->sp_replay);
	if (q->db)
		sqlite3_close(q->db);
	for (int i = 0; i < SQ_NBATCH_LIVE; i++)
		sq_batch_free(&q->pool[i]);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv_work);
	pthread_cond_destroy(&q->cv_done);
	pthread_cond_destroy(&q->cv_ck);
	pthread_cond_destroy(&q->cv_ck_done);
	free((char *)q->base.name);
	free(q);
}

static void sq_close(struct sink *s)
{
	struct sq_sink *q = (struct sq_sink *)s;
	if (q->thread_started) {
		sq_sync(s);
		pthread_mutex_lock(&q->mu);
		q->stop = 1;
		pthread_cond_signal(&q->cv_work);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
	}
	if (q->sp_rows) /* never silent: where the rows are and who stores them */
		fprintf(stderr, "dbtap: %s: %llu rows wait in the spill %s (the database could not be written); the next start replays them\n",
			q->base.name, (unsigned long long)q->sp_rows, q->sp_path);
	if (q->db) /* bounded: never a full ANALYZE of a huge table at shutdown */
		sqlite3_exec(q->db, "PRAGMA analysis_limit=1000; PRAGMA optimize", NULL, NULL,
			     NULL);
	sq_free(q);
}

const struct sink_ops sq_ops = {
	.put = sq_put,
	.flush = sq_flush,
	.close = sq_close,
	.sync = sq_sync,
};

int sink_sqlite_set_wait(struct sink *s, int wait)
{
	if (!s || s->ops != &sq_ops)
		return -EINVAL;
	struct sq_sink *q = (struct sq_sink *)s;
	pthread_mutex_lock(&q->mu);
	q->wait = wait != 0;
	/* not waiting: put more batches in circulation (kept if waiting is turned back on) */
	while (!q->wait && q->n_batches < SQ_NBATCH_LIVE)
		q->free_idx[q->n_free++] = q->n_batches++;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int sink_sqlite_set_give_up(struct sink *s, int seconds)
{
	if (!s || s->ops != &sq_ops || seconds < 0)
		return -EINVAL;
	struct sq_sink *q = (struct sq_sink *)s;
	pthread_mutex_lock(&q->mu);
	q->give_up_s = seconds;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* SQLite keeps global allocation statistics behind a mutex taken on every malloc; dbtap
 * never reads them. Only effective before SQLite initialises; harmless (MISUSE) after. */
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;
static void sq_global_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* The writer's statements on db (the database, or with spill set the spill file, where a
 * deleted session state is kept as a row with state '', an evicted baseline row as one with
 * pending -1, so the replay deletes them). */
int sq_prepare(sqlite3 *db, sqlite3_stmt **st, int spill)
{
	const char *sql[SQ_NSTMT] = {
		[SQ_RUN] = SQ_UPSERT_RUN,
		[SQ_SESSION] = SQ_UPSERT_SESSION,
		[SQ_STATEMENT] = SQ_INSERT_STATEMENT,
		[SQ_FINDING] = SQ_INSERT_FINDING,
		[SQ_BASELINE] = SQ_BASELINE_UPSERT,
		[SQ_BASELINE_DEL] = spill ? SQ_BASELINE_TOMBSTONE : SQ_BASELINE_DELETE,
		[SQ_STATE_PUT] = SQ_STATE_UPSERT,
		[SQ_STATE_DEL] = spill ? "INSERT OR REPLACE INTO session_state(key, session_id, state) VALUES(?, 0, '')"
				       : SQ_STATE_DELETE,
		[SQ_BEGIN] = "BEGIN IMMEDIATE",
		[SQ_COMMIT] = "COMMIT",
	};
	char multi[sizeof(SQ_INSERT_STATEMENT) + SQ_MULTI * (SQ_STMT_COLS * 2 + 4)];
	size_t ml = (size_t)snprintf(multi, sizeof(multi), "%s", SQ_INSERT_STATEMENT);
	for (int m = 1; m < SQ_MULTI; m++)
		ml += (size_t)snprintf(multi + ml, sizeof(multi) - ml, ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sql[SQ_STATEMENT_MULTI] = multi;
	for (int i = 0; i < SQ_NSTMT; i++) {
		int rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

struct sink *sink_sqlite_open(const char *path, int batch_rows, struct sink_ids *next, char *err,
			      size_t errlen)
{
	pthread_once(&sq_once, sq_global_config);
	struct sq_sink *q = calloc(1, sizeof(*q));
	int rc;
	if (!q || !(q->base.name = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(q);
		return NULL;
	}
	q->base.ops = &sq_ops;
	q->batch_rows = batch_rows > 0 ? (size_t)batch_rows : SQ_BATCH_ROWS_DEFAULT;
	q->wait = 1; /* exact by default; live capture opts into dropping */
	q->give_up_s = SQ_WAIT_FAILING_S;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv_work, NULL);
	pthread_cond_init(&q->cv_done, NULL);
	pthread_cond_init(&q->cv_ck, NULL);
	pthread_cond_init(&q->cv_ck_done, NULL);

	if (sq_schema_open(q, path, err, errlen) < 0)
		goto fail;

	if (sq_prepare(q->db, q->st, 0) != SQLITE_OK) {
		sq_fail(q, "prepare", err, errlen);
		goto fail;
	}

	if (next) {
		static const char *const maxq[4] = {
			"SELECT coalesce(max(id),0)+1 FROM runs",
			"SELECT coalesce(max(id),0)+1 FROM sessions",
			"SELECT coalesce(max(id),0)+1 FROM statements",
			"SELECT coalesce(max(id),0)+1 FROM findings",
		};
		int64_t *dst[4] = {&next->run, &next->session, &next->statement, &next->finding};
		for (int i = 0; i < 4; i++) {
			*dst[i] = sq_scalar(q->db, maxq[i], &rc);
			if (rc != SQLITE_OK) {
				sq_fail(q, "reading ids", err, errlen);
				goto fail;
			}
		}
	}

	q->n_batches = SQ_NBATCH;
	for (int i = 0; i < SQ_NBATCH; i++)
		q->free_idx[q->n_free++] = i;
	q->cur = &q->pool[q->free_idx[--q->n_free]];
	sq_start_checkpointer(q); /* before the writer thread touches the connection */
	if (pthread_create(&q->thread, NULL, sq_writer, q) != 0) {
		snprintf(err, errlen, "%s: cannot start the writer thread", path);
		goto fail;
	}
	q->thread_started = 1;
	pthread_setname_np(q->thread, "dbtap-writer"); /* top -H, perf */
	return &q->base;
fail:
	sq_free(q);
	return NULL;
}

int sink_sqlite_get_stats(struct sink *s, struct sink_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!s || s->ops != &sq_ops)
		return -EINVAL;
	struct sq_sink *q = (struct sq_sink *)s;
	pthread_mutex_lock(&q->mu);
	st->queued_batches = (uint64_t)q->q_len + (uint64_t)(q->writing != 0);
	st->dropped = q->p_dropped + q->w_lost;
	st->failing_s = q->failing_since ? (uint64_t)(time(NULL) - q->failing_since) : 0;
	st->spilled = q->w_spilled;
	st->spill_rows = q->sp_rows;
	st->replayed = q->w_replayed;
	pthread_mutex_unlock(&q->mu);
	return 0;
}
