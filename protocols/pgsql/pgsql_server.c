/* PostgreSQL decoder: messages from the server (authentication, errors and notices,
 * CommandComplete, ReadyForQuery, row data and parameter reports). */
#include "pgsql_int.h"

/* ---- server messages ---- */

static void server_auth(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint32_t type = rd_be32(&r);
	s->auth_req = type;
	switch (type) {
	case 0:
		if (!s->auth_seen)
			pg_auth(s, "trust");
		/* the login can still fail (missing database, too many connections):
		 * it succeeded once the server reports its parameters or is ready */
		s->auth_ok = 1;
		break;
	case 2:
		pg_auth(s, "kerberos5");
		break;
	case 3:
		pg_auth(s, "cleartext");
		break;
	case 5:
		pg_auth(s, "md5");
		break;
	case 6:
		pg_auth(s, "scm");
		break;
	case 7:
		pg_auth(s, "gss");
		break;
	case 9:
		pg_auth(s, "sspi");
		break;
	case 10: {
		/* the offered list until the client picks one */
		int plain = 0, plus = 0;
		for (;;) {
			struct strv m = rd_cstr(&r);
			if (r.err || m.n == 0)
				break;
			if (strv_eq(m, "SCRAM-SHA-256"))
				plain = 1;
			else if (strv_eq(m, "SCRAM-SHA-256-PLUS"))
				plus = 1;
		}
		pg_auth(s, plain ? "scram-sha-256" : plus ? "scram-sha-256-plus" : "sasl");
		break;
	}
	case 8:
	case 11:
	case 12:
		break;
	default:
		pg_anomaly(s, "pgsql: unknown authentication request", 0);
	}
}

static void server_error(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	struct pg_err er;
	if (pg_parse_err_fields(&r, &er) < 0)
		pg_anomaly(s, "pgsql: malformed ErrorResponse", 0);
	if (!s->logged_in && s->startup_seen && !s->login_reported) {
		struct ev e = { .type = EV_LOGIN };
		e.u.login.ok = 0;
		e.u.login.error_code = er.code;
		e.u.login.error_msg = er.msg;
		pg_emit(s, &e);
		s->login_reported = 1;
		return;
	}
	struct pg_pend *p = pg_pend_target(s);
	if (!p) {
		/* an error for a Parse/Bind with no Execute after it: still skips to Sync */
		if (s->q_n)
			s->err_skip = 1;
		return;
	}
	if (p->kind != PEND_LOST)
		pg_emit_result(s, p, EV_OUT_ERROR, -1, STRV_NULL, er.code, er.msg);
	if (p->kind == PEND_E) {
		pg_pend_pop(s);
		s->err_skip = 1;
	}
}

static void server_complete(struct pg *s, struct strv tag, int empty)
{
	struct pg_pend *p = pg_pend_target(s);
	if (!p || p->kind == PEND_LOST)
		return;
	int64_t rows = empty ? 0 : pg_tag_rows(tag);
	if (rows < 0)
		rows = p->rows;
	pg_emit_result(s, p, EV_OUT_OK, rows, tag, STRV_NULL, STRV_NULL);
	if (p->kind == PEND_E)
		pg_pend_pop(s);
}

static void server_ready(struct pg *s, const uint8_t *body, size_t n)
{
	char txn = n == 1 ? (char)byte_at(body, n, 0) : '?';
	pg_hello(s);
	/* ReadyForQuery answers the oldest Sync / Query / FunctionCall; Executes before it
	 * that got no answer were skipped after an error (or their answer was lost). */
	for (size_t i = 0; i < s->q_n; i++) {
		uint8_t k = pg_pend_at(s, i)->kind;
		if (k == PEND_E)
			continue;
		for (size_t j = 0; j <= i; j++) {
			struct pg_pend *p = pg_pend_at(s, 0);
			pg_pend_finish_unanswered(s, p, s->err_skip && p->kind == PEND_E ? EV_OUT_SKIPPED : EV_OUT_UNKNOWN);
			pg_pend_pop(s);
		}
		break;
	}
	s->err_skip = 0;
	struct ev e = { .type = EV_READY };
	e.u.ready.txn = (txn == 'I' || txn == 'T' || txn == 'E') ? txn : '?';
	pg_emit(s, &e);
}

void pg_server_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	if (s->auth_ok && !s->logged_in && t != 'E' && t != 'N' && t != 'R') {
		if (!s->login_reported) {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 1;
			pg_emit(s, &e);
			s->login_reported = 1;
		}
		s->logged_in = 1;
	}
	switch (t) {
	case 'R':
		server_auth(s, body, n);
		break;
	case 'E':
		server_error(s, body, n);
		break;
	case 'S': {
		struct ev e = { .type = EV_PARAM };
		e.u.param.name = rd_cstr(&r);
		e.u.param.value = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: malformed ParameterStatus", 0);
			break;
		}
		if (strv_eq(e.u.param.name, "server_version") && !s->hello_sent) {
			size_t k = e.u.param.value.n < sizeof s->version ? e.u.param.value.n : sizeof s->version;
			memcpy(s->version, e.u.param.value.p, k);
			s->version_n = k;
		}
		pg_emit(s, &e);
		break;
	}
	case 'K':
		s->pid = rd_be32(&r);
		pg_hello(s);
		break;
	case 'Z':
		server_ready(s, body, n);
		break;
	case 'C': {
		struct strv tag = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: CommandComplete without NUL", 0);
			tag = (struct strv){ (const char *)body, n };
		}
		server_complete(s, tag, 0);
		break;
	}
	case 'I':
		server_complete(s, STRV_NULL, 1);
		break;
	case 'D': {
		struct pg_pend *p = pg_pend_target(s);
		if (p) {
			p->rows++;
			p->bytes += n;
		}
		break;
	}
	case 'd': {
		struct pg_pend *p = pg_pend_target(s);
		if (p)
			p->bytes += n;
		break;
	}
	case 's': {
		struct pg_pend *p = pg_pend_target(s);
		if (p && p->kind == PEND_E) {
			pg_emit_result(s, p, EV_OUT_OK, p->rows, STRV_NULL, STRV_NULL, STRV_NULL);
			pg_pend_pop(s);
		}
		break;
	}
	case 'G':
	case 'H':
	case 'W': {
		struct ev e = { .type = EV_DATA_MOVE };
		e.u.data_move.to_client = t != 'G';
		pg_emit(s, &e);
		break;
	}
	case 'V': {
		struct pg_pend *p = pg_pend_target(s);
		if (p && p->kind == PEND_F)
			pg_emit_result(s, p, EV_OUT_OK, -1, STRV_NULL, STRV_NULL, STRV_NULL);
		break;
	}
	default: /* Notice, Notification, descriptions, completions of Parse/Bind/Close */
		break;
	}
}
