/* Analyzer core: the session table (least recently active evicted first), event dispatch and
 * the analyzer's lifecycle. Pending statements are an_pending.c's, their completion
 * an_complete.c's, records an_records.c's; detectors live in det_*.c and are called
 * through the table in det_registry.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "an_int.h"
#include "attr.h"

/* ---- session table ---- */

static void lru_unlink(struct an *an, struct an_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else if (an->lru_head == s)
		an->lru_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else if (an->lru_tail == s)
		an->lru_tail = s->prev;
	s->prev = s->next = NULL;
}

static void lru_front(struct an *an, struct an_session *s)
{
	if (an->lru_head == s)
		return;
	lru_unlink(an, s);
	s->next = an->lru_head;
	if (an->lru_head)
		an->lru_head->prev = s;
	an->lru_head = s;
	if (!an->lru_tail)
		an->lru_tail = s;
}

struct an_session *an_sessions(struct an *an)
{
	return an->lru_head;
}

static char *client_info_json(const struct ev_startup *su)
{
	static const char *const secretish[] = { "pass", "pwd", "secret", "token", "auth", "key", "cred", NULL };
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int added = 0;
	size_t total = 0;
	for (size_t i = 0; i < su->n_params && i < 64; i++) {
		char k[64], v[256];
		an_scopy(k, sizeof k, su->params[i].key);
		an_scopy(v, sizeof v, su->params[i].val);
		int bad = !k[0];
		for (int m = 0; secretish[m] && !bad; m++)
			if (strcasestr(k, secretish[m]))
				bad = 1;
		if (bad || cJSON_GetObjectItemCaseSensitive(o, k))
			continue;
		/* a harmless name can still carry one: options=-c my.password=..., a connection
		 * string in an attribute. The key stays, so that it is known there was one. */
		static const char *const secret_val[] = { "pass", "pwd", "secret", "token", NULL };
		for (int m = 0; secret_val[m]; m++)
			if (strcasestr(v, secret_val[m])) {
				snprintf(v, sizeof v, "?");
				break;
			}
		total += strlen(k) + strlen(v) + 6;
		if (total > AN_CLIENT_INFO_MAX - 16)
			break;
		cJSON_AddStringToObject(o, k, v);
		added++;
	}
	if (su->replication) {
		cJSON_AddTrueToObject(o, "replication");
		added++;
	}
	char *txt = added ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return txt;
}

static void on_startup(struct an *an, struct an_session *s, const struct ev *e)
{
	const struct ev_startup *su = &e->u.startup;
	char user[AN_STR_MAX];
	an_scopy(s->db_user, sizeof s->db_user, su->user);
	an_scopy(s->database, sizeof s->database, su->database);
	an_scopy(s->application, sizeof s->application, su->application);
	s->ident_gen++;
	s->replication = su->replication;
	free(s->client_info);
	s->client_info = client_info_json(su);
	s->attr_marker.src = AN_SRC_NONE;
	if (s->application[0] && an_app_user(an, s->application, user, sizeof user))
		an_marker_set(&s->attr_marker, AN_SRC_APPNAME, user);
	/* a connect attribute naming the user is more explicit than a program name */
	for (int k = 0; k < an->cfg.connect_attrs.n; k++) {
		for (size_t i = 0; i < su->n_params; i++) {
			char key[64];
			an_scopy(key, sizeof key, su->params[i].key);
			if (strcasecmp(key, an->cfg.connect_attrs.v[k]) == 0 && su->params[i].val.n > 0) {
				an_scopy(user, sizeof user, su->params[i].val);
				an_marker_set(&s->attr_marker, AN_SRC_CONNATTR, user);
				goto done;
			}
		}
	}
done:
	s->dirty = 1;
}

static void login_result(struct an *an, struct an_session *s, int ok, const char *account, const char *code,
			 ev_time ts)
{
	for (int i = 0; an_detectors[i]; i++)
		if (an_detectors[i]->on_login && !an->cfg.detector_off[an_detectors[i]->kind])
			an_detectors[i]->on_login(an, s, ok, account, code, ts);
}

void an_feed(struct an *an, struct an_session *s, const struct ev *e)
{
	if (!an || !s || !e)
		return;
	if (s->evicted) {
		an->st.events_after_evict++;
		return;
	}
	if (e->ts > an->now)
		an->now = e->ts;
	s->last_ts = e->ts;
	s->state_dirty = 1;
	lru_front(an, s);
	switch (e->type) {
	case EV_STARTUP:
		on_startup(an, s, e);
		break;
	case EV_SERVER_HELLO:
		an_scopy(s->server_version, sizeof s->server_version, e->u.hello.version);
		s->dirty = 1;
		break;
	case EV_AUTH:
		snprintf(s->auth_method, sizeof s->auth_method, "%s", e->u.auth.method ? e->u.auth.method : "");
		s->dirty = 1;
		break;
	case EV_LOGIN: {
		char code[16], msg[200];
		an_scopy(code, sizeof code, e->u.login.error_code);
		an_scopy(msg, sizeof msg, e->u.login.error_msg);
		s->login = e->u.login.ok ? 1 : -1;
		if (!e->u.login.ok)
			snprintf(s->login_error, sizeof s->login_error, "%s%s%s", code, code[0] && msg[0] ? ": " : "", msg);
		an_put_session(an, s, NULL);
		login_result(an, s, e->u.login.ok, s->db_user, code, e->ts);
		break;
	}
	case EV_TLS:
		s->tls = 1;
		if (e->u.tls.decrypted)
			s->tls_decrypted = e->u.tls.decrypted;
		an_put_session(an, s, NULL);
		break;
	case EV_PARAM: {
		char name[64], val[AN_STR_MAX], user[AN_STR_MAX];
		an_scopy(name, sizeof name, e->u.param.name);
		an_scopy(val, sizeof val, e->u.param.value);
		if (!strcmp(name, "server_version")) {
			an_scopy(s->server_version, sizeof s->server_version, e->u.param.value);
			s->dirty = 1;
			size_t vl = strlen(s->server_version);
			if (s->dialect == SN_PG && vl > 8 && !strcmp(s->server_version + vl - 8, "/bouncer"))
				pool_learn(an, s); /* pgbouncer's admin console answered: a pooler */
		} else if (!strcmp(name, "application_name")) {
			if (!s->application[0] && val[0]) {
				snprintf(s->application, sizeof s->application, "%s", val);
				s->ident_gen++;
				s->dirty = 1;
			}
			/* the server reports the value in force: a marker when it names a user */
			if (val[0] && an_app_user(an, val, user, sizeof user) &&
			    !(s->attr_marker.src == AN_SRC_APPNAME && !strcmp(s->attr_marker.value, user)))
				an_marker_set(&s->sess_marker, AN_SRC_APPNAME, user);
			else if (s->sess_marker.src == AN_SRC_APPNAME)
				s->sess_marker.src = AN_SRC_NONE;
			pool_session_marker(s);
		} else if (!strcmp(name, "standard_conforming_strings")) {
			/* reported at login and on every change (SET, set_config, startup options) */
			if (!strcmp(val, "on") || !strcmp(val, "off")) {
				s->lexmode = (uint8_t)(val[1] == 'n' ? s->lexmode & ~SN_M_BACKSLASH
								    : s->lexmode | SN_M_BACKSLASH);
				s->lexmode_unknown &= (uint8_t)~SN_M_BACKSLASH;
			}
		} else if (!strcmp(name, "session_authorization")) {
			if (val[0] && strcmp(val, s->db_user) != 0)
				snprintf(s->role, sizeof s->role, "%s", val);
		}
		break;
	}
	case EV_USER_CHANGE: {
		char user[AN_STR_MAX];
		an_scopy(user, sizeof user, e->u.user_change.user);
		if (s->dialect == SN_MYSQL) {
			if (e->u.user_change.ok == 0) {
				login_result(an, s, 0, user, "1045", e->ts);
				break;
			}
			/* COM_CHANGE_USER resets the session: a new principal, no markers */
			snprintf(s->db_user, sizeof s->db_user, "%s", user);
			s->ident_gen++;
			if (e->u.user_change.database.n)
				an_scopy(s->database, sizeof s->database, e->u.user_change.database);
			s->sess_marker.src = s->txn_marker.src = s->attr_marker.src = AN_SRC_NONE;
			s->sess_at_idle.src = AN_SRC_NONE;
			s->role[0] = s->txn_role[0] = 0;
			an_ps_free(an, s);
			s->dirty = 1;
		} else if (e->u.user_change.ok != 0) {
			snprintf(s->role, sizeof s->role, "%s", user);
		}
		break;
	}
	case EV_SESSION_RESET:
		/* user variables, roles and prepared statements are gone; the account stays */
		s->sess_marker.src = s->txn_marker.src = AN_SRC_NONE;
		s->sess_at_idle.src = AN_SRC_NONE;
		s->role[0] = s->txn_role[0] = 0;
		an_ps_free(an, s);
		break;
	case EV_DB_CHANGE:
		an_scopy(s->database, sizeof s->database, e->u.database);
		s->dirty = 1;
		break;
	case EV_QUERY:
		an_on_query(an, s, e);
		break;
	case EV_RESULT:
		an_on_result(an, s, e);
		break;
	case EV_READY:
		an_on_ready(an, s, e);
		break;
	case EV_DATA_MOVE:
		/* it belongs to the statement executing now: the oldest one still waiting */
		for (int i = 0; i < s->pend_n; i++) {
			struct an_pending *p = an_pend_at(s, i);
			if (!p->n_parts)
				continue;
			p->data_move = 1;
			p->data_move_part = p->next;
			p->data_move_to_client = e->u.data_move.to_client;
			an_scopy(p->data_move_what, sizeof p->data_move_what, e->u.data_move.what);
			break;
		}
		break;
	default:
		break;
	}
	if (an->det_events & AN_EV_BIT(e->type)) /* queries, results and ready: usually none */
		for (const struct an_detector *const *d = an->det_event; *d; d++)
			if (!(*d)->events || ((*d)->events & AN_EV_BIT(e->type)))
				(*d)->on_event(an, s, e);
}

/* ---- lifecycle ---- */

struct an *an_new(const struct an_config *cfg, struct sink **sinks, int n_sinks, const struct sink_ids *ids,
		  int64_t run_id)
{
	struct an *an = calloc(1, sizeof *an);
	if (!an)
		return NULL;
	an->cfg = *cfg;
	for (int i = 0, ns = 0, ne = 0; an_detectors[i]; i++) {
		const struct an_detector *d = an_detectors[i];
		if (an->cfg.detector_off[d->kind])
			continue;
		if (d->on_statement && ns < AN_MAX_DETECTORS)
			an->det_stmt[ns++] = d;
		if (d->on_event && ne < AN_MAX_DETECTORS) {
			an->det_event[ne++] = d;
			an->det_events |= d->events ? d->events : ~0u;
		}
	}
	if (an->cfg.max_sql_bytes <= 0)
		an->cfg.max_sql_bytes = 16384;
	if (an->cfg.max_pending_bytes <= 0)
		an->cfg.max_pending_bytes = 1 << 20;
	if (an->cfg.max_sessions <= 0)
		an->cfg.max_sessions = 65536;
	an->sinks = sinks;
	an->n_sinks = n_sinks;
	an->run_id = run_id;
	an->next_session = ids && ids->session > 0 ? ids->session : 1;
	an->next_statement = ids && ids->statement > 0 ? ids->statement : 1;
	an->next_finding = ids && ids->finding > 0 ? ids->finding : 1;
	an->toks = malloc(sizeof(struct sn_tok) * SN_MAX_TOKENS);
	an->parts = malloc(2 * AN_MAX_PARTS * sizeof *an->parts);
	an->part_mode = malloc(2 * AN_MAX_PARTS);
	if (an->parts && an->part_mode) {
		an->alt_parts = an->parts + AN_MAX_PARTS;
		an->alt_mode = an->part_mode + AN_MAX_PARTS;
	}
	an->norm = malloc(SN_MAX_NORM + 1);
	an->masked = malloc((size_t)an->cfg.max_sql_bytes + 4);
	an->ncache = calloc(AN_NCACHE_SLOTS, sizeof *an->ncache);
	an->scache = calloc(AN_SCACHE_SLOTS, sizeof *an->scache);
	if (!an->toks || !an->norm || !an->masked || !an->ncache || !an->scache || !an->parts || !an->part_mode)
		goto fail;
	for (int i = 0; i < cfg->app_name_patterns.n && an->n_app_re < AN_MAX_LIST; i++)
		if (regcomp(&an->app_re[an->n_app_re], cfg->app_name_patterns.v[i], REG_EXTENDED) == 0)
			an->n_app_re++;
	return an;
fail:
	free(an->parts);
	free(an->part_mode);
	free(an->toks);
	free(an->norm);
	free(an->masked);
	free(an->ncache);
	free(an->scache);
	free(an->bf);
	free(an->eb);
	free(an);
	return NULL;
}

struct an_session *an_open(struct an *an, const struct an_flow *flow)
{
	if (!an || !flow)
		return NULL;
	if (an->n_sessions >= an->cfg.max_sessions && an->lru_tail) {
		/* evict the least recently active session; its handle stays valid until an_close */
		struct an_session *old = an->lru_tail;
		struct an_flow_end end = { .ts = old->last_ts, .reason = "timeout" };
		an_pend_finish_all(an, old);
		pool_close(an, old);
		an_pend_spare_free(old);
		free(old->pend);
		old->pend = NULL;
		old->pend_cap = 0;
		an_put_session(an, old, &end);
		an_state_forget(an, old);
		an_ps_free(an, old);
		lru_unlink(an, old);
		old->evicted = 1;
		an->n_sessions--;
		an->st.sessions_evicted++;
	}
	struct an_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	snprintf(s->protocol, sizeof s->protocol, "%s", flow->protocol ? flow->protocol : "");
	s->dialect = flow->dialect == EV_DIALECT_MYSQL ? SN_MYSQL : SN_PG;
	/* MySQL's sql_mode starts as the server's global value, never on the wire; PostgreSQL
	 * reports standard_conforming_strings after login (ParameterStatus) */
	s->lexmode = (uint8_t)sn_default_mode(s->dialect);
	s->lexmode_unknown = s->dialect == SN_MYSQL ? SN_M_ALL : SN_M_BACKSLASH;
	snprintf(s->client_ip, sizeof s->client_ip, "%s", flow->client_ip ? flow->client_ip : "");
	s->ident_gen++;
	snprintf(s->server_ip, sizeof s->server_ip, "%s", flow->server_ip ? flow->server_ip : "");
	s->client_port = flow->client_port;
	s->server_port = flow->server_port;
	s->started_at = s->last_ts = flow->ts;
	s->midstream = flow->midstream;
	s->txn = '?';
	s->state_dirty = 1;
	if (flow->ts > an->now)
		an->now = flow->ts;
	/* the same connection speaking again after parking or a restart: the same row */
	if (!an_unpark(an, s, flow))
		s->id = an->next_session++;
	if (an->cfg.n_poolers)
		pool_open(an, s);
	lru_front(an, s);
	an->n_sessions++;
	an->st.sessions++;
	an_put_session(an, s, NULL);
	return s;
}

void an_close(struct an *an, struct an_session *s, const struct an_flow_end *end)
{
	if (!an || !s)
		return;
	if (!s->evicted && end && end->reason && !strcmp(end->reason, "idle") &&
	    (s->login > 0 || s->statements > 0 || s->pend_n > 0)) {
		/* idle sweep: the connection did not end; its session is parked, not ended (one
		 * that never logged in nor sent a statement has nothing worth keeping) */
		if (end->ts > an->now)
			an->now = end->ts;
		an_pend_finish_all(an, s);
		pool_close(an, s);
		lru_unlink(an, s);
		an->n_sessions--;
		if (an_park(an, s) != 0) { /* parking off or out of memory: it ends as before */
			struct an_flow_end to = *end;
			to.reason = "timeout";
			an_put_session(an, s, &to);
			an_state_forget(an, s);
		}
		goto free_it;
	}
	if (!s->evicted) {
		if (end && end->ts > an->now)
			an->now = end->ts;
		struct an_flow_end idle_end;
		if (end && end->reason && !strcmp(end->reason, "idle")) { /* not parked: ends as before */
			idle_end = *end;
			idle_end.reason = "timeout";
			end = &idle_end;
		}
		an_pend_finish_all(an, s);
		pool_close(an, s);
		for (int i = 0; an_detectors[i]; i++)
			if (an_detectors[i]->on_session_end && !an->cfg.detector_off[an_detectors[i]->kind])
				an_detectors[i]->on_session_end(an, s, end ? end->ts : an->now);
		struct an_flow_end def = { .ts = s->last_ts, .reason = "eof" };
		const struct an_flow_end *e = end ? end : &def;
		/* the end of the capture (or a stop) does not end the connection: its state is
		 * saved for the next run; a close, reset or timeout does */
		if (!strcmp(e->reason, "eof"))
			an_checkpoint_one(an, s);
		else
			an_state_forget(an, s);
		an_put_session(an, s, e);
		lru_unlink(an, s);
		an->n_sessions--;
	}
free_it:
	pool_close(an, s); /* evicted earlier: already done */
	an_ps_free(an, s);
	free(s->pend);
	an_pend_spare_free(s);
	free(s->client_info);
	free(s);
}

static void flush_sinks(struct an *an)
{
	for (int i = 0; i < an->n_sinks; i++)
		if (an->sinks[i] && sink_flush(an->sinks[i]) != 0)
			an->st.sink_errors++;
}

void an_tick(struct an *an, ev_time now)
{
	if (!an)
		return;
	if (now > an->now)
		an->now = now;
	for (int i = 0; an_detectors[i]; i++)
		if (an_detectors[i]->on_tick && !an->cfg.detector_off[an_detectors[i]->kind])
			an_detectors[i]->on_tick(an, an->now);
	if (an->now - an->last_sweep >= 10 * 1000000LL) {
		/* statements whose results never came: complete them as unknown after the idle timeout */
		ev_time limit = (ev_time)an->cfg.idle_timeout_s * 1000000LL;
		for (struct an_session *s = an->lru_tail; s; s = s->prev) {
			if (an->now - s->last_ts < limit)
				break;
			if (s->pend_n)
				an_pend_finish_all(an, s);
		}
		an->last_sweep = an->now;
	}
	if (an->save_state && an->now - an->last_checkpoint >= (ev_time)an->cfg.checkpoint_interval_s * 1000000LL) {
		if (an->last_checkpoint)
			an_checkpoint(an, 0);
		an->last_checkpoint = an->now;
	}
	if (an->now - an->last_flush >= 1000000LL) {
		flush_sinks(an);
		an->last_flush = an->now;
	}
}

void an_free(struct an *an)
{
	if (!an)
		return;
	while (an->lru_head) {
		struct an_flow_end end = { .ts = an->lru_head->last_ts, .reason = "eof" };
		an_close(an, an->lru_head, &end);
	}
	an_park_free(an); /* parked rows end 'timeout'; their saved state stays */
	pool_free(an);
	for (int i = 0; an_detectors[i]; i++)
		if (an_detectors[i]->on_free)
			an_detectors[i]->on_free(an);
	flush_sinks(an);
	for (int i = 0; i < an->n_app_re; i++)
		regfree(&an->app_re[i]);
	for (int i = 0; an->ncache && i < AN_NCACHE_SLOTS; i++)
		an_ncache_clear(&an->ncache[i]);
	free(an->ncache);
	for (int i = 0; an->scache && i < AN_SCACHE_SLOTS; i++)
		free(an->scache[i].key);
	free(an->scache);
	free(an->toks);
	free(an->parts);
	free(an->part_mode);
	free(an->norm);
	free(an->masked);
	free(an->in_toks);
	free(an->in_norm);
	free(an->in_masked);
	free(an->in_text);
	free(an->in_fold);
	free(an->bf);
	free(an->eb);
	an_repeat_free(an);
	free(an);
}

void an_get_stats(const struct an *an, struct an_stats *st)
{
	if (an) {
		*st = an->st;
		st->sessions_open = (uint64_t)an->n_sessions;
		st->parked_now = (uint64_t)an->n_parked;
	} else
		*st = (struct an_stats){ 0 };
}
