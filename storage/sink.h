/* The narrow interface between the analyzer and storage: plain records in, put/flush/close.
 * Strings are NUL-terminated and borrowed for the duration of put(); NULL stores SQL NULL.
 * Times are microseconds since the Unix epoch (UTC); storage renders them as ISO-8601.
 * Ids are assigned by the caller (see sink_ids) so rows can reference each other before
 * they are flushed. */
#ifndef DBTAP_SINK_H
#define DBTAP_SINK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SINK_SCHEMA_VERSION 4

struct rec_run {
	int64_t id;
	int64_t started_at, ended_at; /* ended_at 0 while running */
	const char *source;	      /* 'file:NAME' | 'iface:NAME' */
	int64_t packets, bytes, kernel_drops, sensor_drops, streams;
	const char *version;
	const char *config; /* JSON of the effective config */
	const char *drops;  /* JSON breakdown of sensor_drops and other counters */
	const char *sensor; /* the sensor's name (output.sensor, default the host name) */
	/* Wall-clock life of the sensor process (started_at/ended_at are packet times), its
	 * state and its health (storage/SCHEMA.md, runs). 0 / NULL store NULL. */
	int64_t sensor_started_at, sensor_stopped_at;
	const char *status; /* 'running' | 'ok' | 'failed' */
	const char *error;  /* why it failed, one line */
	int64_t stats_at;   /* wall time of the last stats record */
	int64_t stats_interval_s;
	const char *stats; /* JSON: the last stats record's counters */
	int64_t pid;
	const char *host;
};

/* A periodic health record (the "stats" event of --json): counters is one JSON object
 * text whose members are copied after event_type, ts and run_id. The SQLite sink
 * ignores it (the run row carries the last one). */
struct rec_stats {
	int64_t ts, run_id; /* ts: wall time */
	const char *counters;
};

/* A sink's own health: what put() accepted and did not store, what is still queued.
 * Owners of a sink add their counters here; the stats record (capture/app/stats.c) shows
 * every field. */
struct sink_stats {
	uint64_t dropped;	 /* = sink.dropped */
	uint64_t queued_batches; /* SQLite: batches handed to the writer, not yet stored */
	/* SQLite, issue #20 item 4: seconds writes have been failing now (0: they work); rows
	 * put into the spill file, rows in it now, rows replayed from it into the database */
	uint64_t failing_s, spilled, spill_rows, replayed;
};

struct rec_session {
	int64_t id, run_id;
	const char *protocol;
	const char *client_ip;
	int client_port;
	int pooler_port; /* issue #21: the pooler's listen port on a pooler leg (a padding hole) */
	const char *server_ip;
	int server_port;
	int64_t started_at, ended_at; /* ended_at 0 while open */
	const char *db_user, *database, *application;
	const char *client_info; /* JSON */
	const char *server_version;
	int tls;
	const char *tls_decrypted; /* "1", or why not: "no_key", "key_late", ...; NULL not TLS */
	const char *auth_method;
	const char *login; /* 'ok' | 'failed' | 'unknown' */
	const char *login_error;
	int midstream;
	int pooler_role; /* issue #21: REC_POOL_* (a padding hole: the record does not grow) */
	const char *end_reason; /* NULL while open */
	int64_t statements, errors, rows_returned, bytes_to_server, bytes_to_client;
	int64_t gaps, lost_bytes; /* capture losses within this session */
	/* for the event sinks (not columns): why this put happened and when */
	const char *state; /* "start" | "login" | "update" | "end" */
	int64_t ts;	   /* time of the event behind this put */
	int resumed;  /* times the session spoke again after being parked idle (issue #18) */
	int restored; /* times it was taken up from state an earlier run saved */
};

/* Issue #21: a session that is a leg of a pooler, and the pooler as "ip:port" (columns
 * sessions.pooler_role and sessions.pooler): the server end of a client leg, the client
 * address of a server leg with the listen port. NULL when not a pooler leg. */
enum { REC_POOL_NONE, REC_POOL_CLIENT_LEG, REC_POOL_SERVER_LEG };
static inline const char *rec_pooler_role(const struct rec_session *x)
{
	return x->pooler_role == REC_POOL_CLIENT_LEG ? "client_leg"
	       : x->pooler_role == REC_POOL_SERVER_LEG ? "server_leg" : NULL;
}
static inline const char *rec_pooler(const struct rec_session *x, char *buf, size_t cap)
{
	int client = x->pooler_role == REC_POOL_CLIENT_LEG;
	const char *ip = client ? x->server_ip : x->client_ip;
	if (!rec_pooler_role(x) || !ip)
		return NULL;
	int v6 = strchr(ip, ':') != NULL;
	snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", client ? x->server_port : x->pooler_port);
	return buf;
}

/* Saved state of an open or parked session (issue #18), so a restart resumes it. Stored in
 * session_state by key; state NULL deletes the row (the connection ended). */
struct rec_state {
	const char *key; /* "protocol client_ip client_port server_ip server_port" */
	int64_t session_id;
	int64_t last_ts;  /* packet time of the session's last activity */
	int64_t saved_at; /* wall clock */
	const char *state; /* JSON (analyzer/state.c), or NULL */
};

struct rec_statement {
	int64_t id, session_id;
	int64_t ts;
	const char *end_user, *end_user_source;
	const char *verb;
	const char *fingerprint;
	const char *sql;
	const char *params; /* JSON array or NULL */
	const char *outcome;
	const char *error_code;
	int64_t rows;	     /* -1 stores NULL */
	int64_t duration_us; /* -1 stores NULL */
	/* context copied for the JSON sink (not columns of statements) */
	const char *protocol, *client_ip, *db_user, *database, *application;
	int client_port, server_port;
	const char *server_ip;
	/* issue #21, a server-leg statement of a configured pooler: the client-leg session it
	 * forwards (0 stores NULL) and "joined" | "pooler" | "unmatched" (NULL: not a server
	 * leg). Columns. The client leg's address and application: JSON context only. */
	int64_t via_session_id;
	const char *pooler_join;
	const char *via_client_ip, *via_application;
	int via_client_port;
};

struct rec_finding {
	int64_t id, run_id, session_id, statement_id; /* 0 stores NULL */
	int64_t ts;
	const char *kind, *severity;
	const char *protocol, *client_ip, *server_ip, *db_user, *database, *application;
	const char *end_user, *end_user_source, *fingerprint, *sql;
	const char *summary;
	const char *evidence; /* JSON */
	/* issue #19: a repeat within the repeat interval is put again with the first row's id:
	 * the SQLite sink updates count, last_seen, severity, summary and evidence of that row */
	int64_t count;	   /* 0 stores 1 */
	int64_t last_seen; /* 0 stores ts */
	int client_port, server_port; /* for the event sinks (not columns) */
};

/* One row of the learned baseline (storage/SCHEMA.md). Times: us since the epoch (UTC),
 * 0 = none. rows_min/rows_max -1 = unknown. */
struct rec_baseline {
	const char *scope;	 /* "db_user" | "end_user" */
	const char *principal;	 /* the db_user or end user */
	const char *application; /* shapes of a db_user: the application; "" otherwise */
	const char *kind;	 /* principal | shape | client | subnet | application | hour | table */
	const char *item;	 /* fingerprint, address, CIDR, name, "00".."23", table; "" for principal */
	const char *detail;	 /* shape: normalised text; may be NULL */
	int64_t first_seen, last_seen;
	int64_t count, rows_min, rows_max;
	int64_t learning_until; /* principal rows: end of the automatic learning period */
	int pending;		/* 1: alerted, waiting for acknowledgement */
	int deleted;		/* 1: evicted (baseline.when_full): delete the row; only the key is set */
};

enum rec_type {
	REC_RUN,       /* insert or update by id */
	REC_SESSION,   /* insert or update by id */
	REC_STATEMENT, /* insert */
	REC_FINDING,   /* insert, or update count/last_seen/... of the row with that id */
	/* upsert (or delete) by (scope, principal, application, kind, item); sinks that keep no baseline
	 * accept and ignore it. put() returns -EAGAIN, not counted as dropped, when the writer
	 * is too far behind to take it now: keep the row and put it again later. */
	REC_BASELINE,
	REC_STATE, /* upsert or delete by key; sinks without a database accept and ignore it */
	REC_STATS, /* periodic health: JSON lines and syslog; the run row carries the last one */
};

struct rec {
	enum rec_type type;
	union {
		const struct rec_run *run;
		const struct rec_session *session;
		const struct rec_statement *statement;
		const struct rec_finding *finding;
		const struct rec_baseline *baseline;
		const struct rec_state *state;
		const struct rec_stats *stats;
	} u;
};

/* Next free ids, read once at open so a new run appends after existing rows. */
struct sink_ids {
	int64_t run, session, statement, finding;
};

struct sink;

struct sink_ops {
	int (*put)(struct sink *s, const struct rec *r); /* 0 or -errno */
	int (*flush)(struct sink *s);			  /* commit the current batch */
	void (*close)(struct sink *s);			  /* flush and free */
	/* Added by storage (optional, may be NULL): wait until every record put so far is
	 * stored (or counted in dropped); 0 or -errno with errmsg. */
	int (*sync)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops;
	const char *name;     /* for error messages: the file path */
	char errmsg[256];     /* last error, one line */
	/* Added by storage: records accepted by put() but never stored (writer queue full,
	 * write error); updated by put/flush/sync on the caller's thread. Never silent. */
	uint64_t dropped;
};

static inline int sink_put(struct sink *s, const struct rec *r)
{
	return s->ops->put(s, r);
}
static inline int sink_flush(struct sink *s)
{
	return s->ops->flush(s);
}
static inline int sink_sync(struct sink *s)
{
	return s->ops->sync ? s->ops->sync(s) : s->ops->flush(s);
}
static inline void sink_close(struct sink *s)
{
	if (s)
		s->ops->close(s);
}

/* SQLite sink: creates the schema on first use (WAL, user_version), batches rows in
 * transactions of up to batch_rows rows or until flush. NULL with *err filled on failure.
 * Writes happen on a writer thread: put() copies the record into a bounded batch; flush()
 * hands the batch over without waiting; sink_sync() waits until everything is stored and
 * reports write errors (call it before the final close). When the writer falls behind,
 * put() waits, or drops statements (counted) after sink_sqlite_set_wait(s, 0).
 * batch_rows <= 0 picks the default. */
struct sink *sink_sqlite_open(const char *path, int batch_rows, struct sink_ids *next,
			      char *err, size_t errlen);

/* Added by storage: what put() does when the writer is behind. wait=1 (the default): put()
 * waits for the writer, right for offline reads (-r) where waiting only slows the read.
 * wait=0: put() never waits; statements are dropped first and counted in s->dropped --
 * live capture (-i) should set this so capture never waits on disk. It also deepens the
 * queue from 4 to 16 batches (allocated only as a backlog builds) to absorb bursts.
 * Returns 0, or -EINVAL for a sink that is not SQLite. */
int sink_sqlite_set_wait(struct sink *s, int wait);
/* Writes that fail for a reason that may pass (disk full, another process's lock) are
 * retried with backoff for as long as the sink is open, reported on stderr while they
 * fail; a waiting put/sync stops waiting after this many seconds of failure (default 60)
 * and reports an error, the rows still queued. Rows given up at close are counted. */
int sink_sqlite_set_give_up(struct sink *s, int seconds);
/* Spill (issue #20 item 4): while the database cannot be written (a full disk), batches go
 * to a SQLite file at path (another file system), at most max_bytes (>= 64 KiB), replayed
 * into the database in order once it can be written again; past the cap the newest rows are
 * kept and the rest counted in dropped. Rows an earlier process left there are replayed
 * first and *next moves past their ids. Call after open, before the first put. 0, or -1
 * with err (cannot create the file), -EINVAL. */
int sink_sqlite_set_spill(struct sink *s, const char *path, int64_t max_bytes, struct sink_ids *next,
			  char *err, size_t errlen);
/* The SQLite sink's counters (any thread that may call put); -EINVAL for other sinks. */
int sink_sqlite_get_stats(struct sink *s, struct sink_stats *st);

/* JSON-lines sink: one object per record, one line each; path "-" is stdout. */
struct sink *sink_json_open(const char *path, char *err, size_t errlen);
/* The line format (0 dbtap, 1 ocsf: enum evl_format) and the sensor name on every line
 * (copied); before the first put. 0 or -errno. */
int sink_json_set_format(struct sink *s, int format, const char *sensor);
/* Reopen the file (SIGHUP / logrotate). */
int sink_json_reopen(struct sink *s);

/* Syslog sink (RFC 5424 messages, MSG = the JSON sink's line in format 0 dbtap / 1 ocsf)
 * to "unix:PATH", "udp://HOST:PORT" or "tcp://HOST:PORT" (octet counting). put() never
 * waits: messages queue (bounded) for a sender thread that reconnects with backoff; what is
 * lost is counted in s->dropped. sync() waits while the receiver takes messages (at most
 * a few seconds without progress). NULL with *err on a malformed URL. */
struct sink *sink_syslog_open(const char *url, int format, const char *sensor, char *err,
			      size_t errlen);
/* The URL as sink_syslog_open takes it (the host resolved), without opening anything:
 * 0, or -1 with the same message (run --check-config). */
int sink_syslog_check(const char *url, char *err, size_t errlen);

/* A pthread_cond_timedwait deadline ms from now (CLOCK_REALTIME). */
struct timespec;
void sink_deadline(struct timespec *ts, unsigned ms);

/* ISO-8601 UTC with microseconds: 2026-11-27T09:15:02.123456Z (buf >= 32). */
void sink_fmt_time(int64_t us, char *buf, unsigned long len);

#endif
