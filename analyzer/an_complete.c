/* Completing one statement of a pending entry: its text derived, end user attributed,
 * detectors run, then its record and findings put. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "an_int.h"
#include "attr.h"

int an_stmt_is_read(const struct an_stmt *st)
{
	const char *v = st->info ? st->info->verb : "";
	switch (st->tag[0]) { /* the command tag, when there is one, by its first letter */
	case 0:
		break;
	case 'S':
		return strncmp(st->tag, "SELECT", 6) == 0 || strncmp(st->tag, "SHOW", 4) == 0;
	case 'F':
		return strncmp(st->tag, "FETCH", 5) == 0;
	case 'C':
		return strncmp(st->tag, "COPY", 4) == 0 && st->data_move_to_client;
	default:
		return 0;
	}
	if (!strcmp(v, "SELECT") || !strcmp(v, "SHOW") || !strcmp(v, "FETCH") || !strcmp(v, "TABLE") ||
	    !strcmp(v, "VALUES") || !strcmp(v, "DESCRIBE") || !strcmp(v, "EXPLAIN") || !strcmp(v, "CALL"))
		return 1;
	if (!strcmp(v, "COPY"))
		return st->data_move_to_client;
	return !v[0] && st->bytes > 0;
}

static char *params_json(const struct an_pending *p)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < p->n_params; i++) {
		if (p->params[i].text)
			cJSON_AddItemToArray(a, cJSON_CreateString(p->params[i].text));
		else
			cJSON_AddItemToArray(a, cJSON_CreateNull());
	}
	char *txt = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return txt;
}

/* A SET of sql_mode that ran: how the server reads the session's next messages. */
static void sql_mode_seen(struct an_session *s, const char *text, const struct sn_tok *toks, int n, int ok)
{
	unsigned m = s->lexmode;
	int r = sn_sets_sql_mode(text, toks, 0, n, &m);
	if (r == 1 && ok) {
		s->lexmode = (uint8_t)m;
		s->lexmode_unknown = 0;
	} else if (r != 0) { /* an expression, DEFAULT (the global value) or an outcome not seen */
		s->lexmode = (uint8_t)m;
		s->lexmode_unknown = SN_M_ALL;
	}
}

/* A statement that exists only in the other reading of a setting we do not know: the
 * server may have run it. Raised once per statement, with the reading named. */
static void alt_reading_finding(struct an *an, const struct an_stmt *st, unsigned pm)
{
	const char *how = st->s->dialect == SN_PG ? "standard_conforming_strings = off"
			  : (pm & SN_M_ANSI_QUOTES) != (st->s->lexmode & SN_M_ANSI_QUOTES) ? "sql_mode ANSI_QUOTES"
			  : "sql_mode NO_BACKSLASH_ESCAPES";
	if (st->s->dialect == SN_PG && !(pm & SN_M_BACKSLASH))
		how = "standard_conforming_strings = on";
	else if (st->s->dialect == SN_MYSQL && (pm & SN_M_BACKSLASH) && !strcmp(how, "sql_mode NO_BACKSLASH_ESCAPES"))
		how = "sql_mode without NO_BACKSLASH_ESCAPES";
	cJSON *ev = an_evidence_stmt(st, "lexer_differential");
	if (ev)
		cJSON_AddStringToObject(ev, "reading", how);
	char summary[256], sql[120];
	const char *mt = an_stmt_masked(st);
	an_excerpt(sql, sizeof sql, mt ? mt : "", mt ? strlen(mt) : 0);
	an_fmt(summary, sizeof summary, "statement boundaries depend on a session setting not seen (%s): %s", how,
	       sql);
	an_stmt_finding(an, st, AN_K_PROTOCOL_ANOMALY, an->cfg.severity[AN_K_PROTOCOL_ANOMALY], summary, ev);
}

/* The statement's view from its pending entry and result r (NULL: outcome unknown). */
static void stmt_init(struct an *an, struct an_session *s, const struct an_pending *p, int idx, const struct ev *r,
		      struct an_stmt *st)
{
	memset(st, 0, sizeof *st);
	st->s = s;
	st->kind = p->kind;
	st->part = idx;
	st->n_parts = p->n_parts;
	st->first_verb = p->first_verb;
	st->ts = p->ts;
	st->done_ts = r ? r->ts : an->now;
	st->outcome = r ? r->u.result.outcome : EV_OUT_UNKNOWN;
	st->rows = r ? r->u.result.rows : -1;
	st->bytes = r ? r->u.result.bytes : 0;
	st->from_params = p->n_params > 0;
	if (p->data_move && p->data_move_part == idx) {
		st->data_move = 1;
		st->data_move_to_client = p->data_move_to_client;
		an_strcpy(st->data_move_what, sizeof st->data_move_what, p->data_move_what);
	}
	if (r) {
		an_scopy(st->error_code, sizeof st->error_code, r->u.result.error_code);
		an_scopy(st->tag, sizeof st->tag, r->u.result.tag);
	}
}

/* What the statement's text does to the session (sql_mode, markers, ROLLBACK), and the end
 * user its comment names (into user). Returns the number of marker operations. */
static int stmt_effects(struct an *an, struct an_session *s, struct an_pending *p, int idx, struct an_stmt *st,
			char user[AN_STR_MAX])
{
	const char *text = st->sql;
	const struct sn_tok *toks = st->toks;
	const struct sn_info *info = st->info;
	int n = st->end;
	if (idx == 0)
		an_strcpy(p->first_verb, sizeof p->first_verb, info->verb);
	if (s->dialect == SN_MYSQL && info->verb_kw == SNW_SET && st->outcome != EV_OUT_ERROR)
		sql_mode_seen(s, text, toks, n, st->outcome == EV_OUT_OK);
	/* markers set by the statement take effect when it did not fail; a failed one
	 * leaves the marker unknown */
	struct attr_op ops[ATTR_MAX_OPS];
	int nops = attr_statement(text, toks, 0, n, s->dialect, &an->cfg, p->params, p->n_params, ops,
				  ATTR_MAX_OPS);
	an_apply_ops(an, s, ops, nops, st->outcome == EV_OUT_ERROR);
	if (s->dialect == SN_PG && st->tag[0] == 'R' && !strcmp(st->tag, "ROLLBACK"))
		an_rollback_seen(s, toks, n, text);
	if (p->msg_src != AN_SRC_COMMENT && sn_has(info, SNW__COMMENT) && /* no comment, no end user in one */
	    attr_comment_user(text, toks, 0, n, &an->cfg.comment_keys, user, AN_STR_MAX, st->traceparent,
			      sizeof st->traceparent)) {
		st->end_user = user;
		st->end_user_source = "comment";
	}
	return nops;
}

/* The detectors, and what a PREPARE / EXECUTE / DO runs. A joined server-leg statement is
 * judged on its client leg, under its real identity. */
static void stmt_judge(struct an *an, struct an_session *s, struct an_pending *p, int idx, const struct an_stmt *st)
{
	if (s->pool_role == AN_POOL_SERVER && pool_joined(an, &p->pj))
		return;
	for (const struct an_detector *const *d = an->det_stmt; *d; d++)
		(*d)->on_statement(an, st);
	int vk = st->info ? st->info->verb_kw : 0;
	if (p->sql && st->end && p->kind == EV_Q_SIMPLE && (vk == SNW_PREPARE || vk == SNW_EXECUTE || vk == SNW_DO))
		an_in_statement(an, s, st);
	if (p->part_mode && (p->part_mode[idx] & AN_PART_ALT) && p->sql && !p->alt_flagged) {
		p->alt_flagged = 1; /* once per message: its first statement of the other reading */
		alt_reading_finding(an, st, p->part_mode[idx]);
	}
}

/* The statement's row, when every statement is audited or a finding was drafted for it;
 * returns its id, 0 when none. */
static int64_t stmt_put(struct an *an, struct an_session *s, struct an_pending *p, const struct an_stmt *st,
			const struct ev *r)
{
	if (an->cfg.audit != AN_AUDIT_ALL && an->n_drafts == 0)
		return 0;
	const struct sn_info *info = st->info; /* set when p->sql is */
	char *pj = NULL;
	if (an->cfg.keep_literals && p->n_params > 0 && p->sql && !info->secret)
		pj = params_json(p);
	if (s->dirty)
		an_put_session(an, s, NULL);
	int64_t sid = an->next_statement++;
	struct rec_statement rs = {
		.id = sid,
		.session_id = s->id,
		.ts = p->ts,
		.end_user = st->end_user,
		.end_user_source = st->end_user_source,
		.verb = p->sql && info->verb[0] ? info->verb : NULL,
		.fingerprint = p->sql ? info->fingerprint : NULL,
		.sql = p->sql ? an_stmt_masked(st) : NULL,
		.params = pj,
		.outcome = st->outcome == EV_OUT_OK ? "ok" : st->outcome == EV_OUT_ERROR ? "error" : "unknown",
		.error_code = an_nz(st->error_code),
		.rows = st->rows >= 0 ? st->rows : -1,
		.duration_us = r && r->ts >= p->ts ? r->ts - p->ts : -1,
		.protocol = s->protocol,
		.client_ip = s->client_ip,
		.db_user = an_nz(s->db_user),
		.database = an_nz(s->database),
		.application = an_nz(s->application),
		.client_port = s->client_port,
		.server_ip = s->server_ip,
		.server_port = s->server_port,
	};
	struct rec rec = { .type = REC_STATEMENT, .u.statement = &rs };
	if (!s->pool_role || !pool_put(an, s, &p->pj, &rs)) /* 1: held until its client is known */
		an_put_all(an, &rec);
	an->st.statements_stored++;
	free(pj);
	return sid;
}

void an_complete_part(struct an *an, struct an_session *s, struct an_pending *p, int idx, const struct ev *r)
{
	struct sn_info info;
	struct an_stmt st;
	struct an_masked masked = { an, 0 };
	char user[AN_STR_MAX] = "";
	memset(&info, 0, offsetof(struct sn_info, tables)); /* tables: read up to n_tables only */
	stmt_init(an, s, p, idx, r, &st);
	an->n_drafts = 0;
	an->norm[0] = an->masked[0] = 0;
	int nops = 0;
	if (p->sql) {
		const struct sn_tok *toks;
		int n = an_derive(an, s, p, idx, &info, &toks, &masked);
		st.sql = st.base = p->sql + p->part_off[idx];
		st.toks = toks;
		st.first = 0;
		st.end = n;
		st.info = &info;
		st.norm = an->norm;
		st.masked = &masked;
		nops = stmt_effects(an, s, p, idx, &st, user);
	}
	an_stmt_end_user(an, s, p, &st, nops);
	/* issue #21: a pooler's legs */
	char pool_user[AN_STR_MAX], pool_src[48];
	if (s->pool_role == AN_POOL_SERVER)
		pool_attribute(an, s, &p->pj, &st, pool_user, pool_src);
	else if (s->pool_role == AN_POOL_CLIENT && idx == 0)
		pool_client_done(an, &p->pj, st.end_user, st.end_user_source);
	/* counters */
	s->statements++;
	if (st.outcome == EV_OUT_ERROR)
		s->errors++;
	if (st.rows > 0 && an_stmt_is_read(&st))
		s->rows_returned += st.rows;

	stmt_judge(an, s, p, idx, &st);
	int64_t sid = stmt_put(an, s, p, &st, r);
	an->st.statements++;
	for (int i = 0; i < an->n_drafts; i++) {
		struct an_finding_draft *d = &an->drafts[i];
		an->repeat_fp = d->fp[0] ? d->fp : NULL;
		an_put_finding(an, s, sid, st.done_ts, d->kind, d->sev, d->summary, d->evidence, &st);
		an->repeat_fp = NULL;
		d->fp[0] = 0;
		free(d->evidence);
		d->evidence = NULL;
	}
	an->n_drafts = 0;
}
