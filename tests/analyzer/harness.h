/* Test harness for the analyzer: a recording sink (every record rendered as one text line,
 * statements and findings also kept as fields) and helpers that feed events the way a
 * decoder would. Constructing struct ev here is the analyzer's real input, not a mock. */
#ifndef DBTAP_TEST_AN_HARNESS_H
#define DBTAP_TEST_AN_HARNESS_H

#include "an.h"

#define H_MAX 4096

struct h_stmt {
	char *end_user, *end_user_source, *verb, *fingerprint, *sql, *params, *outcome, *error_code;
	int64_t id, session_id, rows, duration_us;
	int64_t via_session_id; /* issue #21 */
	char pooler_join[16];
};
struct h_finding {
	char *kind, *severity, *summary, *evidence, *end_user, *end_user_source, *db_user, *sql;
	int64_t id, session_id, statement_id;
};
struct h_session {
	char *login, *login_error, *db_user, *client_info, *end_reason, *auth_method, *application;
	int64_t id, statements, errors, rows_returned;
	int tls, midstream;
};

struct rec_sink {
	struct sink base;
	char *lines[H_MAX];
	int n_lines;
	struct h_stmt st[H_MAX];
	int n_st;
	struct h_finding f[H_MAX];
	int n_f;
	struct h_session last_session; /* latest put */
	int n_session_puts, flushes;
	int discard; /* records are counted only (cost measurements: the analyzer, not this sink) */
	long n_discarded;
};

struct harness {
	struct an_config cfg;
	struct rec_sink *sink;
	const char *db;	       /* set before h_start: also a real SQLite sink on this file */
	struct sink *db_sink;
	struct an *an;
	struct an_session *s;
	int64_t t;    /* packet time, us */
	uint64_t qid; /* next query id */
};

struct rec_sink *rec_sink_new(void);
void rec_sink_free(struct rec_sink *r);
/* Is needle absent from every record line? */
int rec_sink_absent(const struct rec_sink *r, const char *needle);
int rec_sink_count_kind(const struct rec_sink *r, const char *kind);
const struct h_finding *rec_sink_find(const struct rec_sink *r, const char *kind);
/* The latest put of that kind: a repeat/update of a row carries its newest state. */
const struct h_finding *rec_sink_last(const struct rec_sink *r, const char *kind);

/* h_init sets defaults; change h->cfg, then h_start. */
void h_init(struct harness *h);
void h_start(struct harness *h);
void h_end(struct harness *h); /* an_free + frees; the sink stays readable until h_free */
void h_free(struct harness *h);

struct an_session *h_open(struct harness *h, const char *proto, const char *client_ip);
void h_close(struct harness *h, struct an_session *s);
void h_startup(struct harness *h, const char *user, const char *db, const char *app);
void h_login(struct harness *h, int ok);
uint64_t h_query(struct harness *h, int kind, const char *sql, const char *const *params, int n_params);
void h_result(struct harness *h, uint64_t id, int outcome, int64_t rows, const char *code);
void h_result_bytes(struct harness *h, uint64_t id, int64_t rows, uint64_t bytes, const char *tag);
void h_ready(struct harness *h, char txn);
/* A simple query whose every part succeeds (n_ok results), then ReadyForQuery. */
void h_simple(struct harness *h, const char *sql, int n_ok, char txn);
void h_param(struct harness *h, const char *name, const char *value);
void h_event(struct harness *h, const struct ev *e);
/* Advance packet time. */
void h_sleep(struct harness *h, double seconds);

#endif
