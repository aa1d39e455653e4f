/* Records handed to the sinks: session rows, findings (drafted per statement or raised
 * on a session) and the evidence a statement's finding starts from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "an_int.h"

void an_put_all(struct an *an, const struct rec *r)
{
	for (int i = 0; i < an->n_sinks; i++)
		if (an->sinks[i] && sink_put(an->sinks[i], r) != 0)
			an->st.sink_errors++;
}

void an_put_session(struct an *an, struct an_session *s, const struct an_flow_end *end)
{
	struct rec_session r = {
		.id = s->id,
		.run_id = s->run_id ? s->run_id : an->run_id,
		.protocol = s->protocol,
		.client_ip = s->client_ip,
		.client_port = s->client_port,
		.server_ip = s->server_ip,
		.server_port = s->server_port,
		.started_at = s->started_at,
		.ended_at = end ? end->ts : 0,
		.db_user = an_nz(s->db_user),
		.database = an_nz(s->database),
		.application = an_nz(s->application),
		.client_info = s->client_info,
		.server_version = an_nz(s->server_version),
		.tls = s->tls,
		/* before capture tells the outcome: "pending" while open, "no_key" at the end */
		.tls_decrypted = !s->tls ? NULL : s->tls_decrypted ? s->tls_decrypted : end ? "no_key" : "pending",
		.auth_method = an_nz(s->auth_method),
		.login = s->login > 0 ? "ok" : s->login < 0 ? "failed" : "unknown",
		.login_error = an_nz(s->login_error),
		.midstream = s->midstream,
		.end_reason = end ? end->reason : NULL,
		.statements = s->statements,
		.errors = s->errors,
		.rows_returned = s->rows_returned,
		.bytes_to_server = end ? (int64_t)end->bytes_to_server : 0,
		.bytes_to_client = end ? (int64_t)end->bytes_to_client : 0,
		.gaps = end ? (int64_t)end->gaps : 0,
		.lost_bytes = end ? (int64_t)end->lost_bytes : 0,
		.ts = end ? end->ts : s->last_ts,
		.resumed = s->resumed,
		.restored = s->restored,
	};
	if (s->pool_role) { /* AN_POOL_CLIENT/SERVER are REC_POOL_CLIENT_LEG/SERVER_LEG */
		r.pooler_role = s->pool_role;
		r.pooler_port = an->cfg.poolers[s->pool_idx].listen_port;
	}
	r.state = end ? "end" : !s->put_start ? "start" : s->login && !s->put_login ? "login" : "update";
	s->put_start = 1;
	if (s->login && !end)
		s->put_login = 1;
	struct rec rec = { .type = REC_SESSION, .u.session = &r };
	an_put_all(an, &rec);
	s->dirty = 0;
}

void an_put_finding(struct an *an, struct an_session *s, int64_t stmt_id, ev_time ts, int kind,
		    enum an_severity sev, const char *summary, const char *evidence, const struct an_stmt *st)
{
	int64_t id = an->next_finding, count = 1;
	int repeat = an_repeat_of(an, kind, s, st, ts, &sev, &id, &count);
	if (!repeat)
		an->next_finding++;
	struct rec_finding f = {
		.id = id,
		.count = count,
		.last_seen = ts,
		.run_id = an->run_id,
		.session_id = s ? s->id : 0,
		.statement_id = stmt_id,
		.ts = ts,
		.kind = an_kind_name(kind),
		.severity = an_severity_name(sev),
		.protocol = s ? s->protocol : NULL,
		.client_ip = s ? s->client_ip : NULL,
		.server_ip = s ? s->server_ip : NULL,
		.db_user = s ? an_nz(s->db_user) : NULL,
		.database = s ? an_nz(s->database) : NULL,
		.application = s ? an_nz(s->application) : NULL,
		.end_user = st ? st->end_user : NULL,
		.end_user_source = st ? st->end_user_source : NULL,
		.fingerprint = st && st->info && st->info->fingerprint[0] ? st->info->fingerprint : NULL,
		.sql = st ? an_stmt_masked(st) : NULL,
		.summary = summary,
		.evidence = evidence,
		.client_port = s ? s->client_port : 0,
		.server_port = s ? s->server_port : 0,
	};
	struct rec rec = { .type = REC_FINDING, .u.finding = &f };
	an_put_all(an, &rec);
	if (!repeat)
		an->st.findings++;
}

void an_stmt_finding(struct an *an, const struct an_stmt *st, int kind, enum an_severity sev, const char *summary,
		     void *cjson_evidence)
{
	cJSON *ev = cjson_evidence;
	(void)st;
	if (kind < 0 || kind >= AN_K_COUNT || an->cfg.detector_off[kind] || an->n_drafts >= AN_MAX_FINDINGS_STMT) {
		cJSON_Delete(ev);
		return;
	}
	struct an_finding_draft *d = &an->drafts[an->n_drafts++];
	d->fp[0] = 0;
	d->kind = kind;
	d->sev = sev;
	snprintf(d->summary, sizeof d->summary, "%s", summary);
	d->evidence = ev ? cJSON_PrintUnformatted(ev) : NULL;
	cJSON_Delete(ev);
}

void an_session_finding(struct an *an, struct an_session *s, int kind, enum an_severity sev, ev_time ts,
			const char *summary, void *cjson_evidence)
{
	cJSON *ev = cjson_evidence;
	if (kind < 0 || kind >= AN_K_COUNT || an->cfg.detector_off[kind]) {
		cJSON_Delete(ev);
		return;
	}
	char *txt = ev ? cJSON_PrintUnformatted(ev) : NULL;
	if (s && s->dirty)
		an_put_session(an, s, NULL);
	an_put_finding(an, s, 0, ts, kind, sev, summary, txt, NULL);
	free(txt);
	cJSON_Delete(ev);
}

void *an_evidence_stmt(const struct an_stmt *st, const char *signal)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "signal", signal);
	const char *masked = an_stmt_masked(st);
	if (masked)
		cJSON_AddStringToObject(o, "sql", masked);
	if (st->info && st->info->fingerprint[0])
		cJSON_AddStringToObject(o, "fingerprint", st->info->fingerprint);
	if (st->info && st->info->verb[0])
		cJSON_AddStringToObject(o, "verb", st->info->verb);
	cJSON_AddStringToObject(o, "outcome", st->outcome == EV_OUT_OK ? "ok" : st->outcome == EV_OUT_ERROR ? "error" : "unknown");
	if (st->error_code[0])
		cJSON_AddStringToObject(o, "error_code", st->error_code);
	if (st->traceparent[0])
		cJSON_AddStringToObject(o, "traceparent", st->traceparent);
	if (st->n_parts > 1) {
		cJSON_AddNumberToObject(o, "part", st->part + 1);
		cJSON_AddNumberToObject(o, "parts", st->n_parts);
	}
	if (st->s && st->s->role[0])
		cJSON_AddStringToObject(o, "role", st->s->txn_role[0] ? st->s->txn_role : st->s->role);
	return o;
}
