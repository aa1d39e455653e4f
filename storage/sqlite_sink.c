/* SQLite sink: the findings database of DESIGN.md §3 (schema, WAL, user_version) written by a
 * writer thread. put() copies each record into a bounded batch (arena + item array) and never
 * touches disk; flush() hands the batch to the writer, which stores it in one transaction. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"
#include "sqlite_schema.h"

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

	struct sq_batch *cur; /* producer's batch */
	uint64_t p_dropped;   /* producer-side drops */
	unsigned seen_err_seq;

	int64_t t_sec;	/* writer's cache: the second last formatted ... */
	char t_buf[40]; /* ... and its text, so most rows skip gmtime + printf */
	/* Bound times, one buffer per time parameter in flight (a row of the multi-row INSERT
	 * each, up to three for any other row), so SQLite takes them without a copy. */
	char t_bound[SQ_MULTI + 3][28];
};

/* ---- arena ---- */

static char *sq_alloc(struct sq_batch *b, size_t n)
{
	struct sq_chunk *c = b->chunks;
	if (!c || c->size - c->used < n) {
		if (n <= SQ_CHUNK && b->spare) {
			c = b->spare;
			b->spare = c->next;
		} else {
			size_t sz = n > SQ_CHUNK ? n : SQ_CHUNK;
			c = malloc(sizeof(*c) + sz);
			if (!c)
				return NULL;
			c->size = sz;
		}
		c->used = 0;
		c->next = b->chunks;
		b->chunks = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

static void sq_batch_reset(struct sq_batch *b)
{
	struct sq_chunk *c = b->chunks, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->size == SQ_CHUNK) {
			c->next = b->spare;
			b->spare = c;
		} else {
			free(c); /* oversize: one huge statement must not pin memory */
		}
	}
	b->chunks = NULL;
	b->n = 0;
	b->bytes = 0;
}

static void sq_batch_free(struct sq_batch *b)
{
	sq_batch_reset(b);
	for (struct sq_chunk *c = b->spare, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	b->spare = NULL;
	free(b->items);
	b->items = NULL;
	b->cap = 0;
}

/* Copy a borrowed string into the batch; 0 or -ENOMEM. */
static int sq_str(struct sq_batch *b, const char **s)
{
	if (!*s)
		return 0;
	size_t n = strlen(*s) + 1;
	char *p = sq_alloc(b, n);
	if (!p)
		return -ENOMEM;
	memcpy(p, *s, n);
	b->bytes += n;
	*s = p;
	return 0;
}

static int sq_copy(struct sq_batch *b, const struct rec *r)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct sq_item *it = realloc(b->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		b->items = it;
		b->cap = cap;
	}
	struct sq_item *it = &b->items[b->n];
	int rc = 0;
	it->type = r->type;
	switch (r->type) {
	case REC_RUN: {
		struct rec_run *x = &it->u.run;
		*x = *r->u.run;
		rc |= sq_str(b, &x->source) | sq_str(b, &x->version) | sq_str(b, &x->config) |
		      sq_str(b, &x->drops) | sq_str(b, &x->sensor);
		rc |= sq_str(b, &x->status) | sq_str(b, &x->error) | sq_str(b, &x->stats) |
		      sq_str(b, &x->host);
		break;
	}
	case REC_SESSION: {
		struct rec_session *x = &it->u.session;
		*x = *r->u.session;
		rc |= sq_str(b, &x->protocol) | sq_str(b, &x->client_ip) | sq_str(b, &x->server_ip);
		rc |= sq_str(b, &x->db_user) | sq_str(b, &x->database) | sq_str(b, &x->application);
		rc |= sq_str(b, &x->client_info) | sq_str(b, &x->server_version);
		rc |= sq_str(b, &x->auth_method) | sq_str(b, &x->login) | sq_str(b, &x->login_error);
		rc |= sq_str(b, &x->end_reason);
		break;
	}
	case REC_STATEMENT: {
		struct rec_statement *x = &it->u.statement;
		*x = *r->u.statement;
		rc |= sq_str(b, &x->end_user) | sq_str(b, &x->end_user_source) | sq_str(b, &x->verb);
		rc |= sq_str(b, &x->fingerprint) | sq_str(b, &x->sql) | sq_str(b, &x->params);
		rc |= sq_str(b, &x->outcome) | sq_str(b, &x->error_code) | sq_str(b, &x->pooler_join);
		/* context fields are not columns: not copied */
		x->protocol = x->client_ip = x->db_user = x->database = x->application = NULL;
		x->via_client_ip = x->via_application = NULL;
		break;
	}
	case REC_FINDING: {
		struct rec_finding *x = &it->u.finding;
		*x = *r->u.finding;
		rc |= sq_str(b, &x->kind) | sq_str(b, &x->severity) | sq_str(b, &x->protocol);
		rc |= sq_str(b, &x->client_ip) | sq_str(b, &x->server_ip) | sq_str(b, &x->db_user);
		rc |= sq_str(b, &x->database) | sq_str(b, &x->application) | sq_str(b, &x->end_user);
		rc |= sq_str(b, &x->end_user_source) | sq_str(b, &x->fingerprint);
		rc |= sq_str(b, &x->sql) | sq_str(b, &x->summary) | sq_str(b, &x->evidence);
		break;
	}
	case REC_STATE: {
		struct rec_state *x = &it->u.state;
		*x = *r->u.state;
		rc |= sq_str(b, &x->key) | sq_str(b, &x->state);
		break;
	}
	case REC_BASELINE: {
		struct rec_baseline *x = &it->u.baseline;
		*x = *r->u.baseline;
		rc |= sq_str(b, &x->scope) | sq_str(b, &x->principal) | sq_str(b, &x->application);
		rc |= sq_str(b, &x->kind) | sq_str(b, &x->item) | sq_str(b, &x->detail);
		break;
	}
	default:
		return -EINVAL;
	}
	if (rc)
		return -ENOMEM; /* strings already copied stay in the arena until reset */
	b->n++;
	return 0;
}

/* ---- writer side ---- */

/* A time of the run row's wall-clock columns (rare: copied by SQLite). */
static void bind_wall(sqlite3_stmt *st, int i, int64_t us)
{
	char buf[40];
	if (!us) {
		sqlite3_bind_null(st, i);
		return;
	}
	sink_fmt_time(us, buf, sizeof(buf));
	sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
}

/* slot: which of q->t_bound holds the text until the statement runs (see there) */
static void bind_time(struct sq_sink *q, sqlite3_stmt *st, int i, int64_t us, int slot)
{
	if (!us) {
		sqlite3_bind_null(st, i);
		return;
	}
	int64_t sec = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	if (sec != q->t_sec || !q->t_buf[0]) {
		sink_fmt_time(sec * 1000000, q->t_buf, sizeof(q->t_buf));
		q->t_sec = sec;
	}
	/* "YYYY-MM-DDTHH:MM:SS." is 20 characters for years 0000-9999; then 6 digits and Z */
	size_t n = strlen(q->t_buf);
	if (n != 27) {
		char buf[40];
		sink_fmt_time(us, buf, sizeof(buf));
		sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
		return;
	}
	char *buf = q->t_bound[slot];
	memcpy(buf, q->t_buf, 20);
	for (int d = 25; d >= 20; d--) {
		buf[d] = (char)('0' + frac % 10);
		frac /= 10;
	}
	buf[26] = 'Z';
	buf[27] = 0;
	sqlite3_bind_text(st, i, buf, 27, SQLITE_STATIC);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Values < 0 (or 0 for ids) mean unknown: SQL NULL. */
static void bind_opt(sqlite3_stmt *st, int i, int64_t v, int64_t null_below)
{
	if (v < null_below)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* Statement rows bind 15 parameters starting at i (several rows share one INSERT); row m
 * of the INSERT keeps its time in q->t_bound[m]. */
static void bind_statement(struct sq_sink *q, sqlite3_stmt *st, int i, const struct rec_statement *x, int m)
{
	sqlite3_bind_int64(st, i++, x->id);
	bind_opt(st, i++, x->session_id, 1);
	bind_time(q, st, i++, x->ts, m);
	bind_str(st, i++, x->end_user);
	bind_str(st, i++, x->end_user_source);
	bind_str(st, i++, x->verb);
	bind_str(st, i++, x->fingerprint);
	bind_str(st, i++, x->sql);
	bind_str(st, i++, x->params);
	bind_str(st, i++, x->outcome);
	bind_str(st, i++, x->error_code);
	bind_opt(st, i++, x->rows, 0);
	bind_opt(st, i++, x->duration_us, 0);
	bind_opt(st, i++, x->via_session_id, 1);
	bind_str(st, i, x->pooler_join);
}

static void bind_item(struct sq_sink *q, const struct sq_item *it, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	int i = 1;
	switch (it->type) {
	case REC_RUN: {
		const struct rec_run *x = &it->u.run;
		st = q->st[SQ_RUN];
		sqlite3_bind_int64(st, i++, x->id);
		bind_time(q, st, i++, x->started_at, SQ_MULTI);
		bind_time(q, st, i++, x->ended_at, SQ_MULTI + 1);
		bind_str(st, i++, x->source);
		sqlite3_bind_int64(st, i++, x->packets);
		sqlite3_bind_int64(st, i++, x->bytes);
		sqlite3_bind_int64(st, i++, x->kernel_drops);
		sqlite3_bind_int64(st, i++, x->sensor_drops);
		sqlite3_bind_int64(st, i++, x->streams);
		bind_str(st, i++, x->version);
		bind_str(st, i++, x->config);
		bind_str(st, i++, x->drops);
		bind_str(st, i++, x->sensor);
		bind_wall(st, i++, x->sensor_started_at);
		bind_wall(st, i++, x->sensor_stopped_at);
		bind_str(st, i++, x->status);
		bind_str(st, i++, x->error);
		bind_wall(st, i++, x->stats_at);
		bind_opt(st, i++, x->stats_interval_s, 1);
		bind_str(st, i++, x->stats);
		bind_opt(st, i++, x->pid, 1);
		bind_str(st, i++, x->host);
		break;
	}
	case REC_SESSION: {
		const struct rec_session *x = &it->u.session;
		st = q->st[SQ_SESSION];
		sqlite3_bind_int64(st, i++, x->id);
		bind_opt(st, i++, x->run_id, 1);
		bind_str(st, i++, x->protocol);
		bind_str(st, i++, x->client_ip);
		sqlite3_bind_int(st, i++, x->client_port);
		bind_str(st, i++, x->server_ip);
		sqlite3_bind_int(st, i++, x->server_port);
		bind_time(q, st, i++, x->started_at, SQ_MULTI);
		bind_time(q, st, i++, x->ended_at, SQ_MULTI + 1);
		bind_str(st, i++, x->db_user);
		bind_str(st, i++, x->database);
		bind_str(st, i++, x->application);
		bind_str(st, i++, x->client_info);
		bind_str(st, i++, x->server_version);
		sqlite3_bind_int(st, i++, x->tls ? 1 : 0);
		bind_str(st, i++, x->auth_method);
		bind_str(st, i++, x->login);
		bind_str(st, i++, x->login_error);
		sqlite3_bind_int(st, i++, x->midstream ? 1 : 0);
		bind_str(st, i++, x->end_reason);
		sqlite3_bind_int64(st, i++, x->statements);
		sqlite3_bind_int64(st, i++, x->errors);
		sqlite3_bind_int64(st, i++, x->rows_returned);
		sqlite3_bind_int64(st, i++, x->bytes_to_server);
		sqlite3_bind_int64(st, i++, x->bytes_to_client);
		sqlite3_bind_int64(st, i++, x->gaps);
		sqlite3_bind_int64(st, i++, x->lost_bytes);
		sqlite3_bind_int(st, i++, x->resumed);
		sqlite3_bind_int(st, i++, x->restored);
		if (!x->tls_decrypted)
			sqlite3_bind_null(st, i++);
		else if (!strcmp(x->tls_decrypted, "1"))
			sqlite3_bind_int(st, i++, 1);
		else
			bind_str(st, i++, x->tls_decrypted);
		bind_str(st, i++, rec_pooler_role(x)); /* static text */
		char pooler[64];
		if (rec_pooler(x, pooler, sizeof pooler))
			sqlite3_bind_text(st, i++, pooler, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, i++);
		break;
	}
	case REC_STATE: {
		const struct rec_state *x = &it->u.state;
		st = q->st[x->state ? SQ_STATE_PUT : SQ_STATE_DEL];
		bind_str(st, i++, x->key);
		if (x->state) {
			sqlite3_bind_int64(st, i++, x->session_id);
			bind_time(q, st, i++, x->last_ts, SQ_MULTI);
			bind_time(q, st, i++, x->saved_at, SQ_MULTI + 1);
			bind_str(st, i++, x->state);
		}
		break;
	}
	case REC_STATEMENT:
		st = q->st[SQ_STATEMENT];
		bind_statement(q, st, 1, &it->u.statement, 0);
		break;
	case REC_FINDING: {
		const struct rec_finding *x = &it->u.finding;
		st = q->st[SQ_FINDING];
		sqlite3_bind_int64(st, i++, x->id);
		bind_opt(st, i++, x->run_id, 1);
		bind_opt(st, i++, x->session_id, 1);
		bind_opt(st, i++, x->statement_id, 1);
		bind_time(q, st, i++, x->ts, 0);
		bind_str(st, i++, x->kind);
		bind_str(st, i++, x->severity);
		bind_str(st, i++, x->protocol);
		bind_str(st, i++, x->client_ip);
		bind_str(st, i++, x->server_ip);
		bind_str(st, i++, x->db_user);
		bind_str(st, i++, x->database);
		bind_str(st, i++, x->application);
		bind_str(st, i++, x->end_user);
		bind_str(st, i++, x->end_user_source);
		bind_str(st, i++, x->fingerprint);
		bind_str(st, i++, x->sql);
		bind_str(st, i++, x->summary);
		bind_str(st, i++, x->evidence);
		sqlite3_bind_int64(st, i++, x->count > 0 ? x->count : 1);
		bind_time(q, st, i++, x->last_seen ? x->last_seen : x->ts, SQ_MULTI + 1);
		break;
	}
	case REC_BASELINE: {
		const struct rec_baseline *x = &it->u.baseline;
		st = q->st[SQ_BASELINE];
		bind_str(st, i++, x->scope);
		bind_str(st, i++, x->principal);
		bind_str(st, i++, x->application ? x->application : ""); /* key columns: NOT NULL */
		bind_str(st, i++, x->kind);
		bind_str(st, i++, x->item ? x->item : "");
		bind_str(st, i++, x->detail);
		bind_time(q, st, i++, x->first_seen, SQ_MULTI);
		bind_time(q, st, i++, x->last_seen, SQ_MULTI + 1);
		sqlite3_bind_int64(st, i++, x->count);
		bind_opt(st, i++, x->rows_min, 0);
		bind_opt(st, i++, x->rows_max, 0);
		bind_time(q, st, i++, x->learning_until, SQ_MULTI + 2);
		sqlite3_bind_int(st, i, x->pending);
		break;
	}
	case REC_STATS: /* never queued (sq_put) */
		break;
	}
	*out = st;
}

/* Called with mu held. */
static void sq_set_werr_db(struct sq_sink *q, sqlite3 *db, const char *what)
{
	snprintf(q->w_err, sizeof(q->w_err), "%s: %s: %s", q->base.name, what, sqlite3_errmsg(db));
	q->w_err_seq++;
}

static void sq_set_werr(struct sq_sink *q, const char *what)
{
	sq_set_werr_db(q, q->db, what);
}

static int sq_exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Store one batch in one transaction. Row-level failures (e.g. a duplicate id) lose that row;
 * I/O-level failures (disk full, read-only, lock timeout) roll the batch back. */
static int sq_retryable(int rc)
{
	/* Another process's lock passes. A full disk is still an error here: one line, the
	 * batch lost and counted (durability.py); retrying it, keeping the newest rows, is
	 * left for the live queue (issue #20 item 4). */
	int prim = rc & 0xff;
	return prim == SQLITE_BUSY || prim == SQLITE_LOCKED || prim == SQLITE_PROTOCOL;
}

/* 1: an I/O-level failure that may pass (disk full, lock held, read-only for now): the
 * batch was rolled back whole and is to be written again. */
static int sq_write_batch(struct sq_sink *q, struct sq_batch *b)
{
	uint64_t lost = 0;
	const char *what = NULL;
	int rc = sq_exec_stmt(q->st[SQ_BEGIN]);
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
				st = q->st[SQ_STATEMENT_MULTI];
				for (size_t m = 0; m < SQ_MULTI; m++)
					bind_statement(q, st, 1 + (int)m * SQ_STMT_COLS,
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
		bind_item(q, &b->items[k], &st);
		rc = sq_exec_stmt(st); /* every parameter is bound again next time: no clear */
		if (rc == SQLITE_OK)
			continue;
		int prim = rc & 0xff;
		if (prim == SQLITE_CONSTRAINT || prim == SQLITE_MISMATCH || prim == SQLITE_TOOBIG) {
			if (!lost++) { /* report the first rejected row of a batch */
				pthread_mutex_lock(&q->mu);
				sq_set_werr(q, "row rejected");
				pthread_mutex_unlock(&q->mu);
			}
			continue;
		}
		what = "insert";
		goto rollback;
	}
	rc = sq_exec_stmt(q->st[SQ_COMMIT]);
	if (rc == SQLITE_OK)
		goto out;
	what = "commit";
rollback:
	pthread_mutex_lock(&q->mu);
	if (sq_retryable(rc)) /* not an error yet: reported while it lasts (sq_report) */
		snprintf(q->w_err, sizeof(q->w_err), "%s: %s", what, sqlite3_errmsg(q->db));
	else
		sq_set_werr(q, what);
	pthread_mutex_unlock(&q->mu);
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	if (sq_retryable(rc))
		return 1;
	lost = b->n;
out:
	pthread_mutex_lock(&q->mu);
	q->w_lost += lost;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static void *sq_writer(void *arg)
{
	struct sq_sink *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->q_len && !q->stop)
			pthread_cond_wait(&q->cv_work, &q->mu);
		if (!q->q_len)
			break; /* stop requested and nothing left */
		int idx = q->queue[q->q_head];
		q->q_head = (q->q_head + 1) % SQ_NBATCH_LIVE;
		q->q_len--;
		q->writing = 1;
		pthread_mutex_unlock(&q->mu);

		struct sq_batch *b = &q->pool[idx];
		/* A full disk or another process's lock passes: keep the batch and try again,
		 * backing off, while put() keeps the newest rows (sq_handover). */
		unsigned delay = SQ_RETRY_MIN_MS;
		int gave_up = 0;
		while (sq_write_batch(q, b) > 0) {
			pthread_mutex_lock(&q->mu);
			if (!q->failing_since)
				q->failing_since = (int64_t)time(NULL);
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
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += delay / 1000;
			ts.tv_nsec += (long)(delay % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (!q->stop)
				pthread_cond_timedwait(&q->cv_work, &q->mu, &ts);
			pthread_mutex_unlock(&q->mu);
			delay = delay * 2 > SQ_RETRY_MAX_MS ? SQ_RETRY_MAX_MS : delay * 2;
		}
		sq_batch_reset(b);

		pthread_mutex_lock(&q->mu);
		if (q->failing_since && !gave_up)
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
static void sq_start_checkpointer(struct sq_sink *q)
{
	if (sqlite3_open_v2(q->base.name, &q->ck_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
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

static void sq_stop_checkpointer(struct sq_sink *q)
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

/* ---- producer side ---- */

static void sq_report(struct sq_sink *q);

/* With mu held: wait up to a second for the writer, reporting while writes fail. -1 when
 * they have failed for SQ_WAIT_FAILING_S (a waiting caller then stops waiting: close
 * gives the rest up, counted, rather than hang on a disk that stays full). */
#define SQ_WAIT_FAILING_S 60
static int sq_wait_done(struct sq_sink *q)
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
static int sq_handover(struct sq_sink *q, int wait)
{
	struct sq_batch *b = q->cur;
	if (!b->n)
		return 0;
	pthread_mutex_lock(&q->mu);
	while (!q->n_free && wait)
		if (sq_wait_done(q) < 0)
			break;
	if (!q->n_free && q->failing_since && q->q_len > 1) {
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
static int sq_collect(struct sq_sink *q)
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
static void sq_report(struct sq_sink *q)
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
	for (int i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(q->st[i]);
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
	if (q->db) /* bounded: never a full ANALYZE of a huge table at shutdown */
		sqlite3_exec(q->db, "PRAGMA analysis_limit=1000; PRAGMA optimize", NULL, NULL,
			     NULL);
	sq_free(q);
}

static const struct sink_ops sq_ops = {
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

/* ---- open ---- */

static int sq_fail(struct sq_sink *q, const char *what, char *err, size_t errlen)
{
	int code = sqlite3_errcode(q->db);
	const char *why = sqlite3_errmsg(q->db);
	if (code == SQLITE_NOTADB)
		why = "file is not a database";
	if (what)
		snprintf(err, errlen, "%s: %s: %s", q->base.name, what, why);
	else
		snprintf(err, errlen, "%s: %s", q->base.name, why);
	return -1;
}

static int64_t sq_scalar(sqlite3 *db, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	*rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (*rc != SQLITE_OK)
		return 0;
	*rc = sqlite3_step(st);
	if (*rc == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		*rc = SQLITE_OK;
	} else if (*rc == SQLITE_DONE) {
		*rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return v;
}

/* At open, another process may hold the lock (a report, a prune, sqlite3 in a shell):
 * SQLite's busy handler does not cover every case (a journal-mode change, a read lock
 * upgraded inside a transaction answer SQLITE_BUSY at once), so wait here, saying so,
 * up to SQ_START_WAIT_MS, instead of failing the start. */
static int sq_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

static int sq_wait_lock(sqlite3 *db, const char *path, int rc, int64_t *waited_ms)
{
	if (!sq_busy(rc) || *waited_ms >= SQ_START_WAIT_MS)
		return 0;
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (*waited_ms == 0)
		fprintf(stderr, "dbtap: %s: locked by another process; waiting up to %d s\n", path,
			SQ_START_WAIT_MS / 1000);
	usleep(200 * 1000);
	*waited_ms += 200;
	return 1;
}

static int sq_exec_wait(sqlite3 *db, const char *path, const char *sql, char **msg,
			int64_t *waited_ms)
{
	int rc;
	do {
		sqlite3_free(*msg);
		*msg = NULL;
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
	} while (rc != SQLITE_OK && sq_wait_lock(db, path, sqlite3_extended_errcode(db), waited_ms));
	return rc;
}

static int64_t sq_scalar_wait(sqlite3 *db, const char *path, const char *sql, int *rc,
			      int64_t *waited_ms)
{
	int64_t v;
	do
		v = sq_scalar(db, sql, rc);
	while (*rc != SQLITE_OK && sq_wait_lock(db, path, *rc, waited_ms));
	return v;
}

/* Create the file ourselves so it gets mode 0640 (SQLite would use 0644) and so a missing
 * directory or a permission problem is reported with errno's words. */
static int sq_precreate(const char *path, char *err, size_t errlen)
{
	struct stat stt;
	if (stat(path, &stt) == 0) {
		if (!S_ISREG(stt.st_mode)) {
			snprintf(err, errlen, "%s: not a regular file", path);
			return -1;
		}
		if (access(path, W_OK) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* SQLite keeps global allocation statistics behind a mutex taken on every malloc; dbtap
 * never reads them. Only effective before SQLite initialises; harmless (MISUSE) after. */
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;
static void sq_global_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct sink *sink_sqlite_open(const char *path, int batch_rows, struct sink_ids *next, char *err,
			      size_t errlen)
{
	pthread_once(&sq_once, sq_global_config);
	struct sq_sink *q = calloc(1, sizeof(*q));
	int rc;
	int64_t waited = 0; /* for another process's lock (sq_wait_lock) */
	char *msg = NULL;
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

	if (sq_precreate(path, err, errlen) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sq_fail(q, "open", err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, SQ_BUSY_MS);

	int64_t version = sq_scalar_wait(q->db, path, "PRAGMA user_version", &rc, &waited);
	if (rc != SQLITE_OK) {
		sq_fail(q, NULL, err, errlen);
		goto fail;
	}
	int64_t ntables = sq_scalar_wait(q->db, path, "SELECT count(*) FROM sqlite_master", &rc, &waited);
	if (rc != SQLITE_OK) {
		sq_fail(q, NULL, err, errlen);
		goto fail;
	}
	if (version > SINK_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this dbtap's (%d)", path,
			 (long long)version, SINK_SCHEMA_VERSION);
		goto fail;
	}
	if (version == 0 && ntables > 0) {
		snprintf(err, errlen, "%s: not a dbtap database (has tables but no schema version)",
			 path);
		goto fail;
	}
	/* No auto-vacuum: its pointer map costs every insert ~17% (callgrind, 50k statement
	 * rows). Pages freed by prune are reused by later rows; prune --vacuum shrinks the
	 * file. Databases made by older dbtaps keep their incremental mode. */
	if (ntables == 0 &&
	    sq_exec_wait(q->db, path, "PRAGMA auto_vacuum=NONE", &msg, &waited) != SQLITE_OK) {
		sq_fail(q, "auto_vacuum", err, errlen);
		goto fail;
	}
	sqlite3_stmt *jm;
	int wal;
	do {
		if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &jm, NULL) != SQLITE_OK) {
			sq_fail(q, "journal_mode", err, errlen);
			goto fail;
		}
		rc = sqlite3_step(jm);
		wal = rc == SQLITE_ROW &&
		      sqlite3_stricmp((const char *)sqlite3_column_text(jm, 0), "wal") == 0;
		sqlite3_finalize(jm);
	} while (rc != SQLITE_ROW && sq_wait_lock(q->db, path, rc, &waited));
	if (!wal) {
		if (rc == SQLITE_ROW)
			snprintf(err, errlen, "%s: cannot switch to WAL mode", path);
		else
			sq_fail(q, "journal_mode", err, errlen);
		goto fail;
	}
	/* NORMAL: commits do not fsync in WAL mode (a power cut may lose the last batches,
	 * never corrupt); a bigger cache and checkpoint interval keep index pages hot.
	 * temp_store=MEMORY: each multi-row INSERT keeps a statement journal (the pages it
	 * changes, to undo it alone); past 64 KiB SQLite spills that to a file in /var/tmp,
	 * 1.2 write syscalls per statement row stored. In memory it is a few pages. */
	if (sq_exec_wait(q->db, path, "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-" SQ_STR(SQ_CACHE_KIB)
			 "; PRAGMA wal_autocheckpoint=" SQ_STR(SQ_CHECKPOINT_PAGES),
			 &msg, &waited) != SQLITE_OK) {
		sq_fail(q, "synchronous", err, errlen);
		goto fail;
	}
	/* Columns added since: ALTER an older database before the schema text runs (its
	 * CREATE TABLE IF NOT EXISTS would not add them). */
	if (ntables > 0) {
#define SQ_MIGRATE(table, column, alter)                                                                       \
	if (sq_scalar_wait(q->db, path, "SELECT EXISTS (SELECT 1 FROM pragma_table_info('" table "')) AND NOT EXISTS" \
			   " (SELECT 1 FROM pragma_table_info('" table "') WHERE name = '" column "')",            \
			   &rc, &waited) == 1 && /* a missing table is created whole by the schema text */      \
	    rc == SQLITE_OK && sq_exec_wait(q->db, path, alter, &msg, &waited) != SQLITE_OK) {                  \
		snprintf(err, errlen, "%s: migrating schema: %s", path, msg ? msg : "error");                 \
		goto fail; /* msg is freed there */                                                                                    \
	}
		SQ_MIGRATIONS(SQ_MIGRATE)
#undef SQ_MIGRATE
	}
	/* Idempotent: every statement is IF NOT EXISTS, so this also adds views or indexes
	 * that a newer dbtap defines to a database an older one created. */
	/* one string, so that a retry after a lock wait (which rolls back) begins again */
	static const char schema_a[] = SQ_SCHEMA_SQL, schema_b[] = SQ_SCHEMA_SQL2;
	char schema[sizeof schema_a + sizeof schema_b];
	memcpy(schema, schema_a, sizeof schema_a - 1);
	memcpy(schema + sizeof schema_a - 1, schema_b, sizeof schema_b);
	if (sq_exec_wait(q->db, path, SQ_RUNS_SQL, &msg, &waited) != SQLITE_OK ||
	    sq_exec_wait(q->db, path, schema, &msg, &waited) != SQLITE_OK ||
	    sq_exec_wait(q->db, path, "BEGIN IMMEDIATE;" SQ_BASELINE_SQL SQ_STATE_SQL "COMMIT;", &msg, &waited) != SQLITE_OK) {
		snprintf(err, errlen, "%s: creating schema: %s", path, msg ? msg : "error");
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}

	const char *sql[SQ_NSTMT] = {
		[SQ_RUN] = SQ_UPSERT_RUN,
		[SQ_SESSION] = SQ_UPSERT_SESSION,
		[SQ_STATEMENT] = SQ_INSERT_STATEMENT,
		[SQ_FINDING] = SQ_INSERT_FINDING,
		[SQ_BASELINE] = SQ_BASELINE_UPSERT,
		[SQ_STATE_PUT] = SQ_STATE_UPSERT,
		[SQ_STATE_DEL] = SQ_STATE_DELETE,
		[SQ_BEGIN] = "BEGIN IMMEDIATE",
		[SQ_COMMIT] = "COMMIT",
	};
	char multi[sizeof(SQ_INSERT_STATEMENT) + SQ_MULTI * (SQ_STMT_COLS * 2 + 4)];
	size_t ml = (size_t)snprintf(multi, sizeof(multi), "%s", SQ_INSERT_STATEMENT);
	for (int m = 1; m < SQ_MULTI; m++)
		ml += (size_t)snprintf(multi + ml, sizeof(multi) - ml, ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sql[SQ_STATEMENT_MULTI] = multi;
	for (int i = 0; i < SQ_NSTMT; i++) {
		if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
				       NULL) != SQLITE_OK) {
			sq_fail(q, "prepare", err, errlen);
			goto fail;
		}
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
	sqlite3_free(msg);
	return &q->base;
fail:
	sqlite3_free(msg);
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
	pthread_mutex_unlock(&q->mu);
	return 0;
}
