/* Recording sink and event-feeding helpers for the analyzer tests (see harness.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char *dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *z(const char *s)
{
	return s ? s : "(null)";
}

static void add_line(struct rec_sink *r, char *line)
{
	if (r->n_lines < H_MAX)
		r->lines[r->n_lines++] = line;
	else
		free(line);
}

static int rs_put(struct sink *s, const struct rec *rec)
{
	struct rec_sink *r = (struct rec_sink *)s;
	char *line = NULL;
	if (r->discard) {
		r->n_discarded++;
		return 0;
	}
	switch (rec->type) {
	case REC_SESSION: {
		const struct rec_session *x = rec->u.session;
		if (asprintf(&line, "SESSION id=%lld user=%s db=%s app=%s info=%s ver=%s tls=%d auth=%s login=%s err=%s mid=%d end=%s stmts=%lld errs=%lld rows=%lld",
			     (long long)x->id, z(x->db_user), z(x->database), z(x->application), z(x->client_info),
			     z(x->server_version), x->tls, z(x->auth_method), z(x->login), z(x->login_error),
			     x->midstream, z(x->end_reason), (long long)x->statements, (long long)x->errors,
			     (long long)x->rows_returned) < 0)
			return -1;
		struct h_session *h = &r->last_session;
		free(h->login);
		free(h->login_error);
		free(h->db_user);
		free(h->client_info);
		free(h->end_reason);
		free(h->auth_method);
		free(h->application);
		h->login = dup(x->login);
		h->login_error = dup(x->login_error);
		h->db_user = dup(x->db_user);
		h->client_info = dup(x->client_info);
		h->end_reason = dup(x->end_reason);
		h->auth_method = dup(x->auth_method);
		h->application = dup(x->application);
		h->id = x->id;
		h->statements = x->statements;
		h->errors = x->errors;
		h->rows_returned = x->rows_returned;
		h->tls = x->tls;
		h->midstream = x->midstream;
		r->n_session_puts++;
		break;
	}
	case REC_STATEMENT: {
		const struct rec_statement *x = rec->u.statement;
		if (asprintf(&line, "STATEMENT id=%lld sess=%lld user=%s src=%s verb=%s fp=%s sql=%s params=%s out=%s code=%s rows=%lld dur=%lld",
			     (long long)x->id, (long long)x->session_id, z(x->end_user), z(x->end_user_source),
			     z(x->verb), z(x->fingerprint), z(x->sql), z(x->params), z(x->outcome), z(x->error_code),
			     (long long)x->rows, (long long)x->duration_us) < 0)
			return -1;
		if (r->n_st < H_MAX) {
			struct h_stmt *h = &r->st[r->n_st++];
			h->end_user = dup(x->end_user);
			h->end_user_source = dup(x->end_user_source);
			h->verb = dup(x->verb);
			h->fingerprint = dup(x->fingerprint);
			h->sql = dup(x->sql);
			h->params = dup(x->params);
			h->outcome = dup(x->outcome);
			h->error_code = dup(x->error_code);
			h->id = x->id;
			h->session_id = x->session_id;
			h->rows = x->rows;
			h->duration_us = x->duration_us;
			h->via_session_id = x->via_session_id;
			snprintf(h->pooler_join, sizeof h->pooler_join, "%s", x->pooler_join ? x->pooler_join : "");
		}
		break;
	}
	case REC_FINDING: {
		const struct rec_finding *x = rec->u.finding;
		if (asprintf(&line, "FINDING id=%lld sess=%lld stmt=%lld kind=%s sev=%s user=%s src=%s db_user=%s fp=%s sql=%s summary=%s evidence=%s",
			     (long long)x->id, (long long)x->session_id, (long long)x->statement_id, z(x->kind),
			     z(x->severity), z(x->end_user), z(x->end_user_source), z(x->db_user), z(x->fingerprint),
			     z(x->sql), z(x->summary), z(x->evidence)) < 0)
			return -1;
		if (r->n_f < H_MAX) {
			struct h_finding *h = &r->f[r->n_f++];
			h->kind = dup(x->kind);
			h->severity = dup(x->severity);
			h->summary = dup(x->summary);
			h->evidence = dup(x->evidence);
			h->end_user = dup(x->end_user);
			h->end_user_source = dup(x->end_user_source);
			h->db_user = dup(x->db_user);
			h->sql = dup(x->sql);
			h->id = x->id;
			h->session_id = x->session_id;
			h->statement_id = x->statement_id;
		}
		break;
	}
	default:
		return 0;
	}
	if (getenv("H_VERBOSE"))
		fprintf(stderr, "%s\n", line);
	add_line(r, line);
	return 0;
}

static int rs_flush(struct sink *s)
{
	((struct rec_sink *)s)->flushes++;
	return 0;
}

static void rs_close(struct sink *s)
{
	(void)s;
}

static const struct sink_ops rs_ops = { .put = rs_put, .flush = rs_flush, .close = rs_close };

struct rec_sink *rec_sink_new(void)
{
	struct rec_sink *r = calloc(1, sizeof *r);
	r->base.ops = &rs_ops;
	r->base.name = "rec";
	return r;
}

void rec_sink_free(struct rec_sink *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n_lines; i++)
		free(r->lines[i]);
	for (int i = 0; i < r->n_st; i++) {
		struct h_stmt *h = &r->st[i];
		free(h->end_user); free(h->end_user_source); free(h->verb); free(h->fingerprint);
		free(h->sql); free(h->params); free(h->outcome); free(h->error_code);
	}
	for (int i = 0; i < r->n_f; i++) {
		struct h_finding *h = &r->f[i];
		free(h->kind); free(h->severity); free(h->summary); free(h->evidence);
		free(h->end_user); free(h->end_user_source); free(h->db_user); free(h->sql);
	}
	struct h_session *h = &r->last_session;
	free(h->login); free(h->login_error); free(h->db_user); free(h->client_info);
	free(h->end_reason); free(h->auth_method); free(h->application);
	free(r);
}

int rec_sink_absent(const struct rec_sink *r, const char *needle)
{
	for (int i = 0; i < r->n_lines; i++)
		if (strstr(r->lines[i], needle)) {
			fprintf(stderr, "found '%s' in: %s\n", needle, r->lines[i]);
			return 0;
		}
	return 1;
}

/* Rows, not puts: a repeat within repeat_interval_s is put again with the first row's id. */
int rec_sink_count_kind(const struct rec_sink *r, const char *kind)
{
	int n = 0;
	for (int i = 0; i < r->n_f; i++) {
		if (strcmp(r->f[i].kind, kind))
			continue;
		int seen = 0;
		for (int j = 0; j < i && !seen; j++)
			seen = r->f[j].id == r->f[i].id;
		n += !seen;
	}
	return n;
}

const struct h_finding *rec_sink_last(const struct rec_sink *r, const char *kind)
{
	for (int i = r->n_f - 1; i >= 0; i--)
		if (!strcmp(r->f[i].kind, kind))
			return &r->f[i];
	return NULL;
}

const struct h_finding *rec_sink_find(const struct rec_sink *r, const char *kind)
{
	for (int i = 0; i < r->n_f; i++)
		if (!strcmp(r->f[i].kind, kind))
			return &r->f[i];
	return NULL;
}

void h_init(struct harness *h)
{
	memset(h, 0, sizeof *h);
	an_config_defaults(&h->cfg);
	h->t = 1764000000LL * 1000000LL;
	h->qid = 1;
}

void h_start(struct harness *h)
{
	static struct sink *sinks[2];
	struct sink_ids ids = { 1, 1, 1, 1 };
	int n = 1;
	h->sink = rec_sink_new();
	sinks[0] = &h->sink->base;
	if (h->db) {
		char err[256];
		h->db_sink = sink_sqlite_open(h->db, 0, &ids, err, sizeof err);
		if (!h->db_sink) {
			fprintf(stderr, "harness: %s\n", err);
			abort();
		}
		sinks[n++] = h->db_sink;
	}
	h->an = an_new(&h->cfg, sinks, n, &ids, 7);
}

void h_end(struct harness *h)
{
	if (h->an)
		an_free(h->an);
	h->an = NULL;
	h->s = NULL;
	if (h->db_sink) { /* after an_free: its last baseline rows go through this sink */
		sink_sync(h->db_sink);
		sink_close(h->db_sink);
		h->db_sink = NULL;
	}
}

void h_free(struct harness *h)
{
	h_end(h);
	rec_sink_free(h->sink);
	h->sink = NULL;
	an_config_free(&h->cfg);
}

struct an_session *h_open(struct harness *h, const char *proto, const char *client_ip)
{
	static int port = 40000;
	int my = !strcmp(proto, "mysql");
	struct an_flow f = { .protocol = proto,
			     .dialect = my ? EV_DIALECT_MYSQL : EV_DIALECT_POSTGRESQL,
			     .client_ip = client_ip ? client_ip : "10.0.0.5",
			     .server_ip = "10.0.0.1", .client_port = port++,
			     .server_port = my ? 3306 : 5432, .ts = h->t };
	h->s = an_open(h->an, &f);
	return h->s;
}

void h_close(struct harness *h, struct an_session *s)
{
	struct an_flow_end e = { h->t, "close", 100, 200, 0, 0 };
	an_close(h->an, s, &e);
	if (h->s == s)
		h->s = NULL;
}

void h_event(struct harness *h, const struct ev *e)
{
	an_feed(h->an, h->s, e);
}

void h_startup(struct harness *h, const char *user, const char *db, const char *app)
{
	struct ev e = { .type = EV_STARTUP, .ts = h->t, .to_server = 1 };
	e.u.startup.user = strv_from(user);
	e.u.startup.database = strv_from(db);
	e.u.startup.application = strv_from(app);
	h_event(h, &e);
}

void h_login(struct harness *h, int ok)
{
	struct ev e = { .type = EV_LOGIN, .ts = h->t };
	e.u.login.ok = ok;
	if (!ok) {
		e.u.login.error_code = STRV_LIT("28P01");
		e.u.login.error_msg = STRV_LIT("password authentication failed for user");
	}
	h_event(h, &e);
}

uint64_t h_query(struct harness *h, int kind, const char *sql, const char *const *params, int n_params)
{
	struct ev_bind b[16];
	struct ev e = { .type = EV_QUERY, .ts = h->t, .to_server = 1 };
	for (int i = 0; i < n_params && i < 16; i++) {
		b[i].text = strv_from(params[i]);
		b[i].is_null = params[i] == NULL;
		b[i].is_binary_hex = 0;
	}
	e.u.query.id = h->qid++;
	e.u.query.kind = (enum ev_query_kind)kind;
	e.u.query.sql = strv_from(sql);
	e.u.query.sql_known = sql != NULL;
	e.u.query.params = b;
	e.u.query.n_params = (size_t)n_params;
	h_event(h, &e);
	return e.u.query.id;
}

void h_result(struct harness *h, uint64_t id, int outcome, int64_t rows, const char *code)
{
	struct ev e = { .type = EV_RESULT, .ts = h->t + 250 };
	e.u.result.id = id;
	e.u.result.outcome = (enum ev_outcome)outcome;
	e.u.result.rows = rows;
	e.u.result.error_code = strv_from(code);
	e.u.result.error_msg = code ? STRV_LIT("error message") : STRV_NULL;
	h_event(h, &e);
}

void h_result_bytes(struct harness *h, uint64_t id, int64_t rows, uint64_t bytes, const char *tag)
{
	struct ev e = { .type = EV_RESULT, .ts = h->t + 250 };
	e.u.result.id = id;
	e.u.result.outcome = EV_OUT_OK;
	e.u.result.rows = rows;
	e.u.result.bytes = bytes;
	e.u.result.tag = strv_from(tag);
	h_event(h, &e);
}

void h_ready(struct harness *h, char txn)
{
	struct ev e = { .type = EV_READY, .ts = h->t + 300 };
	e.u.ready.txn = txn;
	h_event(h, &e);
}

void h_simple(struct harness *h, const char *sql, int n_ok, char txn)
{
	uint64_t id = h_query(h, EV_Q_SIMPLE, sql, NULL, 0);
	for (int i = 0; i < n_ok; i++)
		h_result(h, id, EV_OUT_OK, 1, NULL);
	h_ready(h, txn);
	h->t += 1000;
}

void h_param(struct harness *h, const char *name, const char *value)
{
	struct ev e = { .type = EV_PARAM, .ts = h->t };
	e.u.param.name = strv_from(name);
	e.u.param.value = strv_from(value);
	h_event(h, &e);
}

void h_sleep(struct harness *h, double seconds)
{
	h->t += (int64_t)(seconds * 1e6);
	an_tick(h->an, h->t);
}
