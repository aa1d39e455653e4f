/* The PostgreSQL decoder's own declarations, shared by its files: pgsql.c (the decoder
 * table entry, framing loop, emits), pgsql_client.c and pgsql_server.c (one function per
 * message type of each direction), pgsql_state.c (pending statements, prepared statements,
 * portals: bounded per session), pgsql_frame.c (what a valid message looks like: bounds,
 * content checks, mid-stream resynchronisation). Internal to protocols/pgsql/. */
#ifndef DBTAP_PGSQL_INT_H
#define DBTAP_PGSQL_INT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql_types.h"
#include "proto.h"
#include "rd.h"

/* Tunables. */
#define PG_MAX_MSG (1u << 30)		  /* larger than any message PostgreSQL sends */
#define PG_WHOLE_MAX (PROTO_MAX_HOLD / 2) /* above this a message is taken piecewise */
#define PG_PREFIX (64u * 1024)		  /* bytes kept of an oversized Query/Parse */
#define PG_MAX_STARTUP 10000		  /* the server's own startup packet limit */
#define PG_MAX_PENDING 4096		  /* statements awaiting responses */
#define PG_MAX_STMTS 256		  /* prepared statements cached per session */
#define PG_STMT_BYTES (4u << 20)	  /* SQL bytes cached per session */
#define PG_MAX_PORTALS 64
#define PG_EVICTED_MAX 1024 /* statements whose text was evicted: name hash and first bytes */
#define PG_EVICTED_HEAD 48
#define PG_MAX_PARAMS 256   /* bind values kept per portal (the rest counted) */
#define PG_MAX_OIDS 1024    /* parameter type OIDs kept per statement */
#define PG_PARAM_CAP 4096   /* rendered bytes kept per bind value */
#define PG_PORTAL_BYTES (64u * 1024) /* rendered bytes kept per portal */
#define PG_MAX_KV 64	    /* startup parameters passed on */
#define PG_RESYNC_PENDING (64u * 1024) /* an unfinished candidate message worth waiting for */
#define PG_RESYNC_BIGROW (16u << 20)    /* largest DataRow trusted as a resync point */
#define PG_RESYNC_UNSURE (1u << 20)    /* bytes scanned before giving up on a flow that
					  never looked like PostgreSQL */
#define PG_MAX_ANOMALIES 32

#define PG_CODE_SSL 80877103u
#define PG_CODE_GSS 80877104u
#define PG_CODE_CANCEL 80877102u

enum pg_pend_kind {
	PEND_Q,	   /* simple query: results until ReadyForQuery */
	PEND_E,	   /* Execute: one result */
	PEND_F,	   /* FunctionCall: result then ReadyForQuery */
	PEND_S,	   /* Sync: ReadyForQuery */
	PEND_LOST, /* client bytes lost here: absorbs responses until ReadyForQuery */
};

struct pg_pend {
	uint8_t kind;
	uint8_t done;	/* a result was emitted (Q: at least one) */
	uint64_t id;
	int64_t rows;	/* DataRows since the last result */
	uint64_t bytes; /* DataRow / CopyData bytes since the last result */
};

struct pg_stmt {
	char *name;
	size_t name_n;
	char *sql;
	size_t sql_n;
	int truncated;
	uint32_t *oids;
	size_t n_oids;
	uint64_t used;
};

struct pg_pval {
	size_t off, len;
	uint8_t is_null, is_hex;
};

struct pg_portal {
	char *name;
	size_t name_n;
	char *stmt;
	size_t stmt_n;
	size_t stmt_cap;
	char *vals; /* rendered values, back to back */
	size_t vals_cap;
	struct pg_pval *pv;
	size_t n_pv, pv_cap;
	uint64_t used;
};

struct pg_dir {
	uint64_t skip; /* bytes of an oversized message still to pass over */
	int resync;    /* looking for a message boundary */
	uint64_t scanned;
};

struct pg {
	struct ev_sink out;
	ev_time ts;
	int to_server;
	int stopped;
	int confirmed;	   /* at least one message made sense */
	int untyped;	   /* next client message is a startup-family packet */
	int ssl_wait;	   /* 1 SSLRequest / 2 GSSENCRequest awaits its one-byte answer */
	int startup_seen;
	int logged_in;
	int login_reported;
	int auth_seen;
	int auth_ok; /* AuthenticationOk seen, login not yet confirmed */
	uint32_t auth_req; /* last Authentication request type */
	const char *auth_method;
	int hello_sent;
	uint64_t pid;
	char version[64];
	size_t version_n;
	int anomalies;
	struct pg_dir d[2];

	uint64_t next_id;
	struct pg_pend *q; /* ring */
	size_t q_head, q_n, q_cap;
	int err_skip; /* server skips to Sync after an error */
	uint64_t pend_dropped;

	struct pg_stmt *stmts; /* PG_MAX_STMTS, allocated at the first Parse */
	size_t n_stmts, stmt_bytes;
	uint64_t stmt_evictions;
	/* a statement pushed out of stmts keeps its verb and first bytes here (ring, made at the
	 * first eviction): an Execute of it is still judged by verb (issue #20) */
	struct pg_evicted {
		uint64_t h; /* name hash, 0: empty */
		uint8_t n;
		char head[PG_EVICTED_HEAD];
	} *evicted;
	size_t evicted_next;
	struct pg_portal *portals; /* PG_MAX_PORTALS, allocated at the first Bind */
	size_t n_portals;
	uint64_t portal_evictions;
	uint64_t use_clock;
	uint64_t params_dropped;

	struct ev_bind *binds; /* PG_MAX_PARAMS, for Execute events */
	char *render;	       /* PG_PARAM_CAP scratch for one bind value */
};

struct pg_err {
	struct strv code, msg;
};

static inline uint32_t be32_at(const uint8_t *p)
{
	struct rd r = rd_make(p, 4);
	return rd_be32(&r);
}

/* Byte i of p[0..n), 0 past the end. */
static inline uint8_t byte_at(const uint8_t *p, size_t n, size_t i)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, i);
	return rd_u8(&r);
}

static inline uint16_t be16_at(const uint8_t *p, size_t n, size_t i)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, i);
	return rd_be16(&r);
}

/* pgsql.c */
int pg_parse_err_fields(struct rd *r, struct pg_err *e);
void pg_hello(struct pg *s);
int64_t pg_tag_rows(struct strv tag);
void pg_tls(struct pg *s, const uint8_t *at, int gss);
void pg_emit(struct pg *s, struct ev *e);
int pg_strv_ieq(struct strv a, const char *lit);
void pg_auth(struct pg *s, const char *method);
void pg_anomaly(struct pg *s, const char *what, int fatal);

/* pgsql_client.c */
void pg_client_bind(struct pg *s, const uint8_t *body, size_t n, int truncated);
void pg_client_function(struct pg *s, const uint8_t *body, size_t n);
void pg_client_parse(struct pg *s, const uint8_t *body, size_t n, int truncated);
void pg_client_query(struct pg *s, struct strv sql, int truncated);
void pg_client_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n);
size_t pg_client_untyped(struct pg *s, const uint8_t *p, size_t n);

/* pgsql_server.c */
void pg_server_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n);

/* pgsql_state.c */
void pg_portal_remove(struct pg *s, size_t i);
struct pg_stmt *pg_stmt_find(struct pg *s, struct strv name, size_t *idx);
void pg_pend_finish_unanswered(struct pg *s, struct pg_pend *p, enum ev_outcome out);
uint64_t pg_name_hash(const char *p, size_t n);
struct pg_pend *pg_pend_target(struct pg *s);
void pg_portal_free(struct pg_portal *p);
void pg_stmt_free(struct pg *s, struct pg_stmt *st);
struct pg_portal *pg_portal_find(struct pg *s, struct strv name, size_t *idx);
void pg_pend_pop(struct pg *s);
void pg_stmt_store(struct pg *s, struct strv name, struct strv sql, int truncated, struct rd *oids,
		       size_t n_oids);
struct pg_pend *pg_pend_push(struct pg *s, enum pg_pend_kind kind, uint64_t id);
void pg_emit_result(struct pg *s, struct pg_pend *p, enum ev_outcome out, int64_t rows,
			struct strv tag, struct strv code, struct strv msg);
struct pg_portal *pg_portal_new(struct pg *s, struct strv name, struct strv stmt);
struct pg_pend *pg_pend_at(struct pg *s, size_t i);
void pg_pend_flush_all(struct pg *s, enum ev_outcome out);
void pg_stmt_remove(struct pg *s, size_t i);

/* pgsql_frame.c */
int pg_resync_scan(struct pg *s, int to_server, const uint8_t *p, size_t n, size_t start, size_t *adv);
int pg_msg_bounds(int to_server, uint8_t t, uint32_t *min, uint32_t *max);
int pg_looks_tls(const uint8_t *p, size_t n);
int pg_looks_foreign(int to_server, const uint8_t *p, size_t n);
int pg_looks_untyped(const uint8_t *p, size_t n);
size_t pg_chain_len(int to_server, const uint8_t *p, size_t n, int *exact, size_t *partial_total);

#endif
