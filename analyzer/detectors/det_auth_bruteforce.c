/* auth_bruteforce: failed logins per client address and per account in a sliding window.
 * One finding per burst, raised when the burst ends (a quiet window, or the end of the run)
 * so it carries the total count; an account burst is reported only when it came from
 * several clients (one client is already reported by its own burst). */
#include "det.h"

enum { BF_CLIENT = 1, BF_ACCOUNT = 2 };

static void add_other(struct an_keyed *k, const char *v)
{
	for (int i = 0; i < k->n_others; i++)
		if (!strcmp(k->others[i], v))
			return;
	if (k->n_others < 4)
		snprintf(k->others[k->n_others], sizeof k->others[0], "%s", v);
	if (k->n_others < 1000)
		k->n_others++;
}

static void emit(struct an *an, struct an_keyed *k)
{
	int client = k->kind == BF_CLIENT;
	if (client || k->n_others >= 2) {
		struct an_session tmp;
		memset(&tmp, 0, sizeof tmp);
		tmp.id = k->session_id;
		snprintf(tmp.protocol, sizeof tmp.protocol, "%s", k->protocol);
		snprintf(tmp.client_ip, sizeof tmp.client_ip, "%s", k->client_ip);
		snprintf(tmp.server_ip, sizeof tmp.server_ip, "%s", k->server_ip);
		snprintf(tmp.db_user, sizeof tmp.db_user, "%s", k->account);
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "signal", client ? "failed_logins_per_client" : "failed_logins_per_account");
		cJSON_AddStringToObject(ev, client ? "client_ip" : "account", k->key);
		cJSON_AddNumberToObject(ev, "failures", (double)k->count);
		cJSON_AddNumberToObject(ev, "threshold", an->cfg.bruteforce_failures);
		cJSON_AddNumberToObject(ev, "window_s", an->cfg.bruteforce_window_s);
		char t0[40], t1[40];
		sink_fmt_time(k->first_ts, t0, sizeof t0);
		sink_fmt_time(k->last, t1, sizeof t1);
		cJSON_AddStringToObject(ev, "first_failure", t0);
		cJSON_AddStringToObject(ev, "last_failure", t1);
		cJSON *o = cJSON_AddArrayToObject(ev, client ? "accounts" : "clients");
		for (int i = 0; i < k->n_others && i < 4; i++)
			cJSON_AddItemToArray(o, cJSON_CreateString(k->others[i]));
		cJSON_AddNumberToObject(ev, client ? "distinct_accounts" : "distinct_clients", k->n_others);
		cJSON_AddBoolToObject(ev, "login_succeeded_after", k->succeeded);
		char summary[256];
		if (client)
			an_fmt(summary, sizeof summary, "%lld failed logins from %s against %d account(s)%s",
				 (long long)k->count, k->key, k->n_others,
				 k->succeeded ? ", then a login succeeded" : "");
		else
			an_fmt(summary, sizeof summary, "%lld failed logins for account %s from %d clients%s",
				 (long long)k->count, k->key, k->n_others, k->succeeded ? ", then a login succeeded" : "");
		enum an_severity sev = an->cfg.severity[AN_K_AUTH_BRUTEFORCE];
		if (k->succeeded && sev < AN_SEV_CRITICAL)
			sev++;
		an_session_finding(an, &tmp, AN_K_AUTH_BRUTEFORCE, sev, k->cross_ts, summary, ev);
	}
	k->fired = 0;
	k->succeeded = 0;
	k->count = 0;
	k->n_others = 0;
	k->w.n = 0;
}

static void track(struct an *an, struct an_session *s, int kind, const char *key, const char *other, ev_time ts)
{
	ev_time win = (ev_time)an->cfg.bruteforce_window_s * 1000000LL;
	struct an_keyed *k = an_keyed_get(&an->bf, &an->n_bf, &an->cap_bf, kind, key, ts);
	if (!k)
		return;
	if (k->fired && ts > k->w.burst_until)
		emit(an, k);
	if (an_window_count(&k->w, ts, win) == 0 && !k->fired) {
		k->n_others = 0;
		k->first_ts = ts;
	}
	an_window_add(&k->w, ts, win);
	add_other(k, other);
	int n = an_window_count(&k->w, ts, win);
	if (!k->fired && n >= an->cfg.bruteforce_failures) {
		k->fired = 1;
		k->count = n;
		k->first_ts = k->w.t[k->w.head];
		k->cross_ts = ts;
		k->session_id = s->id;
		snprintf(k->protocol, sizeof k->protocol, "%s", s->protocol);
		snprintf(k->client_ip, sizeof k->client_ip, "%s", s->client_ip);
		snprintf(k->server_ip, sizeof k->server_ip, "%s", s->server_ip);
		snprintf(k->account, sizeof k->account, "%s", kind == BF_ACCOUNT ? key : other);
	} else if (k->fired) {
		k->count++;
	}
	k->w.burst_until = ts + win;
}

static void bf_login(struct an *an, struct an_session *s, int ok, const char *account, const char *code, ev_time ts)
{
	(void)code;
	const char *acct = account && account[0] ? account : "(unknown)";
	if (ok) {
		for (int i = 0; i < an->n_bf; i++) {
			struct an_keyed *k = &an->bf[i];
			if (k->used && k->fired &&
			    ((k->kind == BF_CLIENT && !strcmp(k->key, s->client_ip)) ||
			     (k->kind == BF_ACCOUNT && !strcmp(k->key, acct))))
				k->succeeded = 1;
		}
		return;
	}
	track(an, s, BF_CLIENT, s->client_ip[0] ? s->client_ip : "(unknown)", acct, ts);
	track(an, s, BF_ACCOUNT, acct, s->client_ip, ts);
}

static void bf_tick(struct an *an, ev_time now)
{
	for (int i = 0; i < an->n_bf; i++)
		if (an->bf[i].used && an->bf[i].fired && now > an->bf[i].w.burst_until)
			emit(an, &an->bf[i]);
}

static void bf_free(struct an *an)
{
	for (int i = 0; i < an->n_bf; i++)
		if (an->bf[i].used && an->bf[i].fired)
			emit(an, &an->bf[i]);
}

const struct an_detector det_auth_bruteforce = {
	.name = "auth_bruteforce",
	.kind = AN_K_AUTH_BRUTEFORCE,
	.on_login = bf_login,
	.on_tick = bf_tick,
	.on_free = bf_free,
};
