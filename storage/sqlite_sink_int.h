/* Internal to the SQLite sink (storage/sqlite_sink*.c): its tunables, the batch it copies
 * records into, the sink itself, and the functions the files share. One job per file:
 * sqlite_sink.c the sink's entry points and open, sqlite_sink_batch.c the record copy,
 * sqlite_sink_bind.c the binding of each record kind, sqlite_sink_queue.c the producer's
 * side of the writer queue and loss reports, sqlite_sink_writer.c the writer thread with
 * its retry and the checkpointer, sqlite_sink_schema.c the schema, migrations and the
 * wait for another process's lock at open. */
#ifndef DBTAP_SQLITE_SINK_INT_H
#define DBTAP_SQLITE_SINK_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/* Tunables. Memory bound: SQ_NBATCH (SQ_NBATCH_LIVE without waiting) batches of at most
 * SQ_HARD_FACTOR x the soft limits; batches are allocated as they fill. */
#define SQ_BATCH_ROWS_DEFAULT 8192  /* rows per transaction unless flushed earlier */
#define SQ_BATCH_BYTES (2u << 20)   /* soft cap on copied string bytes per batch */
#define SQ_NBATCH 4		    /* batches: one filling, the rest queued or being written */
#define SQ_NBATCH_LIVE 16	    /* live (no wait): a deeper queue absorbs bursts */
#define SQ_HARD_FACTOR 4	    /* sessions/runs/findings may overfill a batch this much */
#define SQ_CHUNK (256u << 10)	    /* arena chunk size */
#define SQ_BUSY_MS 10000	    /* wait this long for another writer's lock */
#define SQ_START_WAIT_MS 120000    /* at open: wait this long for a lock another process holds */
#define SQ_RETRY_MIN_MS 100	    /* a failed batch (disk full, lock) is retried after this, */
#define SQ_RETRY_MAX_MS 5000	    /* doubling up to this, for as long as dbtap runs */
#define SQ_STOP_TRIES 3		    /* at close, this many more tries before the rows are lost */
#define SQ_REPORT_S 10		    /* while writes fail or rows are lost: a stderr line this often */
#define SQ_CACHE_KIB 8192	    /* page cache of the writer connection */
#define SQ_CHECKPOINT_PAGES 4096   /* WAL pages that wake the checkpointer (16 MiB of 4 KiB) */
#define SQ_WAL_HARD_PAGES 16384	    /* past this the writer waits for and helps the checkpointer */
#define SQ_MULTI 32		    /* statement rows per multi-row INSERT */
#define SQ_STMT_COLS 15		    /* parameters per statement row */
#define SQ_WAIT_FAILING_S 60	    /* default give-up for a waiting caller (sq_wait_done) */

struct sq_chunk {
	struct sq_chunk *next;
	size_t size, used;
	char data[];
};

struct sq_item {
	enum rec_type type;
	union {
		struct rec_run run;
		struct rec_session session;
		struct rec_statement statement;
		struct rec_finding finding;
		struct rec_baseline baseline;
		struct rec_state state;
	} u;
};

struct sq_batch {
	struct sq_item *items;
	size_t n, cap;
	size_t bytes;		/* string bytes copied */
	struct sq_chunk *chunks; /* first = current */
	struct sq_chunk *spare;	 /* reusable standard-size chunks */
};

enum sq_stmt {
	SQ_RUN,
	SQ_SESSION,
	SQ_STATEMENT,
	SQ_STATEMENT_MULTI, /* SQ_MULTI statement rows in one INSERT: cursors stay open */
	SQ_BASELINE,
	SQ_BASELINE_DEL,
	SQ_FINDING,
	SQ_STATE_PUT,
	SQ_STATE_DEL,
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_NSTMT
};

struct sq_sink {
	struct sink base;
	sqlite3 *db;
	sqlite3_stmt *st[SQ_NSTMT];
	size_t batch_rows;
	int wait; /* put() waits for a free batch instead of dropping */

	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* writer waits for a queued batch or stop */
	pthread_cond_t cv_done; /* producer waits for a free batch / idle writer */
	struct sq_batch pool[SQ_NBATCH_LIVE];
	int n_batches;			   /* in circulation: SQ_NBATCH, or SQ_NBATCH_LIVE */
	int free_idx[SQ_NBATCH_LIVE], n_free; /* guarded by mu */
	int queue[SQ_NBATCH_LIVE], q_head, q_len; /* guarded by mu */
	int writing;			    /* guarded by mu */
	int stop;			    /* guarded by mu */
	uint64_t w_lost;		    /* rows lost to write errors; guarded by mu */
	uint64_t w_shed;		    /* of them: oldest queued rows given up for newer; guarded by mu */
	int64_t failing_since;		    /* wall seconds since writes fail (0: they work); guarded by mu */
	int64_t last_report;		    /* producer: when loss or failure was last reported */
	int stop_tries;			    /* writer: tries after stop while failing */
	int give_up_s;			    /* sync/put stop waiting after writes failed this long */
	uint64_t reported_lost;		    /* producer: rows lost at that report */
	unsigned w_err_seq;		    /* guarded by mu */
	char w_err[256];		    /* guarded by mu */

	/* Checkpoints (WAL -> database file, with its fsyncs) run on their own thread and
	 * connection, so the writer does not stall on them; see sq_wal_hook. */
	sqlite3 *ck_db;
	pthread_t ck_thread;
	int ck_started;
	pthread_cond_t cv_ck;	   /* checkpointer waits for work or stop */
	pthread_cond_t cv_ck_done; /* writer waits for a running checkpoint */
	int ck_want, ck_running, ck_stop; /* guarded by mu */

	/* Spill (sink_sqlite_set_spill): while the database cannot be written (a full disk),
	 * batches go to a second SQLite file on another path, at most sp_max bytes, and are
	 * replayed into the database, in order, once it can be written again. */
	sqlite3 *sp_db;		     /* set before the first batch; then writer thread only */
	sqlite3_stmt *sp_st[SQ_NSTMT];
	char *sp_path;
	char *sp_replay;	     /* the replay's SQL (sq_spill_replay) */
	int sp_full;		     /* writer: the spill reached its cap */
	uint64_t wb_lost;	     /* writer: rows the last sq_write_batch stored nowhere */
	unsigned sp_delay_ms;	     /* writer: backoff between replay tries */
	int64_t sp_next_ms;	     /* writer: next replay try (monotonic) */
	uint64_t sp_rows;	     /* rows in the spill now; guarded by mu */
	uint64_t w_spilled, w_replayed; /* rows put into / replayed from the spill; guarded by mu */

	struct sq_batch *cur; /* producer's batch */
	uint64_t p_dropped;   /* producer-side drops */
	unsigned seen_err_seq;

	int64_t t_sec;	/* writer's cache: the second last formatted ... */
	char t_buf[40]; /* ... and its text, so most rows skip gmtime + printf */
	/* Bound times, one buffer per time parameter in flight (a row of the multi-row INSERT
	 * each, up to three for any other row), so SQLite takes them without a copy. */
	char t_bound[SQ_MULTI + 3][28];
};

extern const struct sink_ops sq_ops;

/* sqlite_sink_batch.c */
void sq_batch_reset(struct sq_batch *b);
void sq_batch_free(struct sq_batch *b);
int sq_copy(struct sq_batch *b, const struct rec *r);

/* sqlite_sink_bind.c */
void sq_bind_statement(struct sq_sink *q, sqlite3_stmt *st, int i, const struct rec_statement *x, int m);
/* sts: the prepared statements of the connection written (the database or the spill) */
void sq_bind_item(struct sq_sink *q, sqlite3_stmt *const *sts, const struct sq_item *it, sqlite3_stmt **out);

/* sqlite_sink.c */
int sq_prepare(sqlite3 *db, sqlite3_stmt **st, int spill);

/* sqlite_sink_spill.c (writer thread) */
/* Write b to the spill: 0 kept there (rows counted), 1 the spill is full or failing. */
int sq_spill_batch(struct sq_sink *q, struct sq_batch *b);
/* Replay the spill into the database (force: now, else when its backoff allows):
 * 0 the spill is empty, 1 it still holds rows (the database cannot be written yet). */
int sq_spill_replay(struct sq_sink *q, int force);

/* sqlite_sink_writer.c */
int sq_write_batch(struct sq_sink *q, struct sq_batch *b, sqlite3 *db, sqlite3_stmt *const *sts);
void *sq_writer(void *arg);
void sq_start_checkpointer(struct sq_sink *q);
void sq_stop_checkpointer(struct sq_sink *q);

/* sqlite_sink_queue.c (producer thread) */
int sq_wait_done(struct sq_sink *q);
int sq_handover(struct sq_sink *q, int wait);
int sq_collect(struct sq_sink *q);
void sq_report(struct sq_sink *q);

/* sqlite_sink_schema.c */
int sq_fail(struct sq_sink *q, const char *what, char *err, size_t errlen);
int64_t sq_scalar(sqlite3 *db, const char *sql, int *rc);
/* Create or open path's database in q->db: pragmas, migrations, schema, waiting for
 * another process's lock. 0, or -1 with err filled. */
int sq_schema_open(struct sq_sink *q, const char *path, char *err, size_t errlen);

#endif
