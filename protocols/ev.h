/* Events: what a protocol decoder tells the analyzer, protocol-neutral.
 * Events are plain structs holding borrowed views ({ptr, len}) into the decoder's
 * buffers; they are valid only during the emit call. The analyzer copies what it keeps.
 * Passwords, hashes and auth exchanges never enter an event. */
#ifndef DBTAP_EV_H
#define DBTAP_EV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed view of bytes; not NUL-terminated. */
struct strv {
	const char *p;
	size_t n;
};

#define STRV_LIT(s) ((struct strv){ (s), sizeof(s) - 1 })
#define STRV_NULL ((struct strv){ NULL, 0 })

static inline struct strv strv_from(const char *s)
{
	return (struct strv){ s, s ? strlen(s) : 0 };
}

static inline int strv_eq(struct strv a, const char *lit)
{
	size_t n = strlen(lit);
	return a.n == n && (n == 0 || memcmp(a.p, lit, n) == 0);
}

/* The language a protocol's statement text is written in, so the analyzer lexes it with
 * the right rules (quotes, comments, identifiers). NONE: not SQL (the analyzer still
 * masks its quoted strings and numbers, with PostgreSQL's lexing rules). */
enum ev_dialect {
	EV_DIALECT_NONE,
	EV_DIALECT_POSTGRESQL,
	EV_DIALECT_MYSQL,
};

/* Packet time, microseconds since the Unix epoch (UTC). */
typedef int64_t ev_time;

enum ev_type {
	EV_STARTUP,	       /* client identity from the handshake */
	EV_SERVER_HELLO,       /* server version / connection id */
	EV_AUTH,	       /* authentication method requested or switched to */
	EV_LOGIN,	       /* login result */
	EV_TLS,		       /* the session switched to TLS (or, from capture, how it was decrypted) */
	EV_CLEARTEXT_PASSWORD, /* a password crossed in clear (the password itself never) */
	EV_PARAM,	       /* a server-reported setting (PG ParameterStatus) */
	EV_USER_CHANGE,	       /* COM_CHANGE_USER, SET ROLE/SESSION AUTHORIZATION seen by server */
	EV_DB_CHANGE,	       /* COM_INIT_DB accepted */
	EV_QUERY,	       /* statement text sent for execution */
	EV_RESULT,	       /* completion of one statement of a query */
	EV_READY,	       /* server idle again; carries transaction state */
	EV_DATA_MOVE,	       /* server asks for a client file (LOCAL INFILE), COPY direction */
	EV_CANCEL,	       /* PG CancelRequest targeting another session */
	EV_ANOMALY,	       /* malformed or desynchronised traffic */
	EV_SESSION_RESET,      /* the server reset the session's state (COM_RESET_CONNECTION) */
};

/* A key/value pair (startup parameters, connect attributes). */
struct ev_kv {
	struct strv key;
	struct strv val;
};

struct ev_startup {
	struct strv user;
	struct strv database;
	struct strv application;    /* application_name / program_name */
	const struct ev_kv *params; /* everything else, for client_info */
	size_t n_params;
	int replication;	    /* a replication client (PG replication=, binlog dump) */
};

struct ev_server_hello {
	struct strv version;
	uint64_t conn_id; /* PG backend pid / MySQL connection id; 0 unknown */
};

struct ev_auth {
	const char *method; /* 'scram-sha-256','md5','cleartext','trust','mysql_native_password',... */
};

struct ev_login {
	int ok;
	struct strv error_code; /* SQLSTATE or MySQL errno as text */
	struct strv error_msg;
};

struct ev_param {
	struct strv name;
	struct strv value;
};

struct ev_user_change {
	struct strv user;     /* new user / role */
	struct strv database; /* may be empty */
	int ok;		      /* -1 not yet known */
};

enum ev_query_kind {
	EV_Q_SIMPLE,   /* may hold several statements (stacked) */
	EV_Q_EXECUTE,  /* execution of a prepared/parsed statement */
	EV_Q_PREPARE,  /* preparation only (not counted as an executed statement) */
	EV_Q_FUNCTION, /* PG FunctionCall, MySQL other commands worth a row */
};

/* One bound parameter, already rendered as text by the decoder. */
struct ev_bind {
	struct strv text;
	int is_null;
	int is_binary_hex; /* rendered as hex because the type was not decodable */
};

struct ev_query {
	uint64_t id; /* per-session sequence, named again by EV_RESULT */
	enum ev_query_kind kind;
	struct strv sql;       /* empty and sql_known=0 for an Execute prepared before pickup */
	int sql_known;
	int truncated;	       /* sql was cut at the decoder's cap */
	struct strv stmt_name; /* prepared statement name / id as text, may be empty */
	const struct ev_bind *params;
	size_t n_params;
};

enum ev_outcome {
	EV_OUT_OK,
	EV_OUT_ERROR,
	EV_OUT_UNKNOWN,
	EV_OUT_SKIPPED, /* server skipped it after an earlier error in the pipeline */
};

/* Completion of one statement. For a simple query with several statements, results
 * arrive in statement order with the same id; EV_READY ends the query. */
struct ev_result {
	uint64_t id;
	enum ev_outcome outcome;
	int64_t rows;	   /* rows returned or affected; -1 unknown */
	uint64_t bytes;	   /* result bytes (rows data, COPY data) */
	struct strv tag;   /* PG command tag ("INSERT 0 1"), empty for MySQL */
	struct strv error_code;
	struct strv error_msg;
	int more;	   /* MySQL SERVER_MORE_RESULTS_EXISTS */
};

struct ev_ready {
	char txn; /* 'I' idle, 'T' in transaction, 'E' failed transaction, '?' unknown */
};

struct ev_data_move {
	int to_client;	  /* 1: COPY TO / data out; 0: client uploads */
	struct strv what; /* LOCAL INFILE file name; empty for COPY */
};

struct ev_cancel {
	uint64_t target_conn_id;
};

/* EV_TLS from a decoder: where the TLS bytes begin in the buffer it was parsing (NULL: after
 * it) and whether it is GSSAPI encryption instead. From capture's TLS layer: decrypted is
 * "1" or why not ("no_key", "key_late", "bad_key", "unsupported", "midstream"). */
struct ev_tls {
	const uint8_t *at;
	int gss;
	const char *decrypted;
};

struct ev_anomaly {
	const char *what; /* short static text: "pgsql: message length < 4" */
	int fatal;	  /* decoder gave up on this flow */
	int evasion;	  /* TCP evasion seen by the capture layer: once per flow, never capped */
};

struct ev {
	enum ev_type type;
	ev_time ts;
	int to_server; /* direction of the bytes that produced it */
	union {
		struct ev_startup startup;
		struct ev_server_hello hello;
		struct ev_auth auth;
		struct ev_login login;
		struct ev_param param;
		struct ev_user_change user_change;
		struct strv database; /* EV_DB_CHANGE */
		struct ev_query query;
		struct ev_result result;
		struct ev_ready ready;
		struct ev_data_move data_move;
		struct ev_cancel cancel;
		struct ev_anomaly anomaly;
		struct ev_tls tls;
	} u;
};

/* How a decoder hands events on: fn(ctx, ev). */
struct ev_sink {
	void (*fn)(void *ctx, const struct ev *ev);
	void *ctx;
};

/* Deep copy (ev_copy.c): the bytes everything e points to takes, 8-byte aligned; then copy
 * them to at (that many bytes, 8-byte aligned) and aim e's pointers there. e is a shallow
 * copy of the original, which must still be valid during the call. */
size_t ev_copy_size(const struct ev *e);
void ev_copy_into(struct ev *e, void *at);
/* The walk's cursor, for copying a record that carries strings the same way (p NULL:
 * only count): ev_copy_cstr copies *s there (8-byte aligned) and aims *s at the copy. */
struct ev_copier {
	unsigned char *p;
	size_t off;
};
void ev_copy_cstr(struct ev_copier *w, const char **s);

static inline void ev_emit(const struct ev_sink *s, const struct ev *e)
{
	if (s && s->fn)
		s->fn(s->ctx, e);
}

#endif
