/* SQLite sink: binding one record of each kind to its prepared statement (writer thread). */
#include <string.h>

#include "sqlite_sink_int.h"

/* A time of the run row's wall-clock columns (rare: copied by SQLite). */
static void sq_bind_wall(sqlite3_stmt *st, int i, int64_t us)
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
static void sq_bind_time(struct sq_sink *q, sqlite3_stmt *st, int i, int64_t us, int slot)
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

static void sq_bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Values < 0 (or 0 for ids) mean unknown: SQL NULL. */
static void sq_bind_opt(sqlite3_stmt *st, int i, int64_t v, int64_t null_below)
{
	if (v < null_below)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* Statement rows bind 15 parameters starting at i (several rows share one INSERT); row m
 * of the INSERT keeps its time in q->t_bound[m]. */
void sq_bind_statement(struct sq_sink *q, sqlite3_stmt *st, int i, const struct rec_statement *x, int m)
{
	sqlite3_bind_int64(st, i++, x->id);
	sq_bind_opt(st, i++, x->session_id, 1);
	sq_bind_time(q, st, i++, x->ts, m);
	sq_bind_str(st, i++, x->end_user);
	sq_bind_str(st, i++, x->end_user_source);
	sq_bind_str(st, i++, x->verb);
	sq_bind_str(st, i++, x->fingerprint);
	sq_bind_str(st, i++, x->sql);
	sq_bind_str(st, i++, x->params);
	sq_bind_str(st, i++, x->outcome);
	sq_bind_str(st, i++, x->error_code);
	sq_bind_opt(st, i++, x->rows, 0);
	sq_bind_opt(st, i++, x->duration_us, 0);
	sq_bind_opt(st, i++, x->via_session_id, 1);
	sq_bind_str(st, i, x->pooler_join);
}

void sq_bind_item(struct sq_sink *q, sqlite3_stmt *const *sts, const struct sq_item *it, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	int i = 1;
	switch (it->type) {
	case REC_RUN: {
		const struct rec_run *x = &it->u.run;
		st = sts[SQ_RUN];
		sqlite3_bind_int64(st, i++, x->id);
		sq_bind_time(q, st, i++, x->started_at, SQ_MULTI);
		sq_bind_time(q, st, i++, x->ended_at, SQ_MULTI + 1);
		sq_bind_str(st, i++, x->source);
		sqlite3_bind_int64(st, i++, x->packets);
		sqlite3_bind_int64(st, i++, x->bytes);
		sqlite3_bind_int64(st, i++, x->kernel_drops);
		sqlite3_bind_int64(st, i++, x->sensor_drops);
		sqlite3_bind_int64(st, i++, x->streams);
		sq_bind_str(st, i++, x->version);
		sq_bind_str(st, i++, x->config);
		sq_bind_str(st, i++, x->drops);
		sq_bind_str(st, i++, x->sensor);
		sq_bind_wall(st, i++, x->sensor_started_at);
		sq_bind_wall(st, i++, x->sensor_stopped_at);
		sq_bind_str(st, i++, x->status);
		sq_bind_str(st, i++, x->error);
		sq_bind_wall(st, i++, x->stats_at);
		sq_bind_opt(st, i++, x->stats_interval_s, 1);
		sq_bind_str(st, i++, x->stats);
		sq_bind_opt(st, i++, x->pid, 1);
		sq_bind_str(st, i++, x->host);
		break;
	}
	case REC_SESSION: {
		const struct rec_session *x = &it->u.session;
		st = sts[SQ_SESSION];
		sqlite3_bind_int64(st, i++, x->id);
		sq_bind_opt(st, i++, x->run_id, 1);
		sq_bind_str(st, i++, x->protocol);
		sq_bind_str(st, i++, x->client_ip);
		sqlite3_bind_int(st, i++, x->client_port);
		sq_bind_str(st, i++, x->server_ip);
		sqlite3_bind_int(st, i++, x->server_port);
		sq_bind_time(q, st, i++, x->started_at, SQ_MULTI);
		sq_bind_time(q, st, i++, x->ended_at, SQ_MULTI + 1);
		sq_bind_str(st, i++, x->db_user);
		sq_bind_str(st, i++, x->database);
		sq_bind_str(st, i++, x->application);
		sq_bind_str(st, i++, x->client_info);
		sq_bind_str(st, i++, x->server_version);
		sqlite3_bind_int(st, i++, x->tls ? 1 : 0);
		sq_bind_str(st, i++, x->auth_method);
		sq_bind_str(st, i++, x->login);
		sq_bind_str(st, i++, x->login_error);
		sqlite3_bind_int(st, i++, x->midstream ? 1 : 0);
		sq_bind_str(st, i++, x->end_reason);
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
			sq_bind_str(st, i++, x->tls_decrypted);
		sq_bind_str(st, i++, rec_pooler_role(x)); /* static text */
		char pooler[64];
		if (rec_pooler(x, pooler, sizeof pooler))
			sqlite3_bind_text(st, i++, pooler, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, i++);
		break;
	}
	case REC_STATE: {
		const struct rec_state *x = &it->u.state;
		st = sts[x->state ? SQ_STATE_PUT : SQ_STATE_DEL];
		sq_bind_str(st, i++, x->key);
		if (x->state) {
			sqlite3_bind_int64(st, i++, x->session_id);
			sq_bind_time(q, st, i++, x->last_ts, SQ_MULTI);
			sq_bind_time(q, st, i++, x->saved_at, SQ_MULTI + 1);
			sq_bind_str(st, i++, x->state);
		}
		break;
	}
	case REC_STATEMENT:
		st = sts[SQ_STATEMENT];
		sq_bind_statement(q, st, 1, &it->u.statement, 0);
		break;
	case REC_FINDING: {
		const struct rec_finding *x = &it->u.finding;
		st = sts[SQ_FINDING];
		sqlite3_bind_int64(st, i++, x->id);
		sq_bind_opt(st, i++, x->run_id, 1);
		sq_bind_opt(st, i++, x->session_id, 1);
		sq_bind_opt(st, i++, x->statement_id, 1);
		sq_bind_time(q, st, i++, x->ts, 0);
		sq_bind_str(st, i++, x->kind);
		sq_bind_str(st, i++, x->severity);
		sq_bind_str(st, i++, x->protocol);
		sq_bind_str(st, i++, x->client_ip);
		sq_bind_str(st, i++, x->server_ip);
		sq_bind_str(st, i++, x->db_user);
		sq_bind_str(st, i++, x->database);
		sq_bind_str(st, i++, x->application);
		sq_bind_str(st, i++, x->end_user);
		sq_bind_str(st, i++, x->end_user_source);
		sq_bind_str(st, i++, x->fingerprint);
		sq_bind_str(st, i++, x->sql);
		sq_bind_str(st, i++, x->summary);
		sq_bind_str(st, i++, x->evidence);
		sqlite3_bind_int64(st, i++, x->count > 0 ? x->count : 1);
		sq_bind_time(q, st, i++, x->last_seen ? x->last_seen : x->ts, SQ_MULTI + 1);
		break;
	}
	case REC_BASELINE: {
		const struct rec_baseline *x = &it->u.baseline;
		st = sts[x->deleted ? SQ_BASELINE_DEL : SQ_BASELINE];
		sq_bind_str(st, i++, x->scope);
		sq_bind_str(st, i++, x->principal);
		sq_bind_str(st, i++, x->application ? x->application : ""); /* key columns: NOT NULL */
		sq_bind_str(st, i++, x->kind);
		sq_bind_str(st, i++, x->item ? x->item : "");
		if (x->deleted)
			break;
		sq_bind_str(st, i++, x->detail);
		sq_bind_time(q, st, i++, x->first_seen, SQ_MULTI);
		sq_bind_time(q, st, i++, x->last_seen, SQ_MULTI + 1);
		sqlite3_bind_int64(st, i++, x->count);
		sq_bind_opt(st, i++, x->rows_min, 0);
		sq_bind_opt(st, i++, x->rows_max, 0);
		sq_bind_time(q, st, i++, x->learning_until, SQ_MULTI + 2);
		sqlite3_bind_int(st, i, x->pending);
		break;
	}
	case REC_STATS: /* never queued (sq_put) */
		break;
	}
	*out = st;
}
