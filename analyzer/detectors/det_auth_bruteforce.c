/* auth_bruteforce: failed logins per client address and per account, counted per protocol
 * and server, in a sliding window. Raised while it happens: when the threshold is crossed,
 * then the same finding is updated (count, accounts, last failure) at most once per second
 * of packet time and when the burst ends (a quiet window, or the end of the run); repeats
 * within repeat_interval_s fold into that row (repeat.c). Every account name is kept up to
 * BF_NAMES, and the number of distinct accounts is exact up to BF_HASHES. A login that
 * succeeds after the failures makes it critical and names the account. An account burst is
 * reported only when it came from several clients (one client is its own burst). */
#include <stdlib.h>

#include "det.h"

enum { BF_CLIENT = 1, BF_ACCOUNT = 2 };
#define BF_NAMES 32   /* counterpart names kept per burst */
#define BF_HASHES 512 /* distinct counterparts counted exactly */

/* What a burst keeps beyond struct an_keyed, by slot index of an->bf. */
struct bf_ext {
	char key[AN_STR_MAX]; /* the slot's key when this was filled (slots are reused) */
	int kind;
	char names[BF_NAMES][64];
	int n_names;
	uint64_t hashes[BF_HASHES];
	int distinct, saturated;
	char success[64]; /* the account that then logged in */
	ev_time last_emit;
	int dirty; /* failures since the last emit */
};

struct bf_state {
	struct bf_ext *ext[AN_KEYED_MAX];
};

static struct bf_ext *ext_of(struct an *an, struct an_keyed *k)
{
	struct bf_state *b = an->bf_ext;
	if (!b && !(b = an->bf_ext = calloc(1, sizeof *b)))
		return NULL;
	long i = k - an->bf;
	if (i < 0 || i >= AN_KEYED_MAX)
		return NULL;
	struct bf_ext *x = b->ext[i];
	if (!x && !(x = b->ext[i] = calloc(1, sizeof *x)))
		return NULL;
	if (x->kind != k->kind || strcmp(x->key, k->key)) { /* the slot holds another key now */
		memset(x, 0, sizeof *x);
		x->kind = k->kind;
		snprintf(x->key, sizeof x->key, "%s", k->key);
	}
	return x;
}

static void add_name(struct bf_ext *x, const char *v)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = v; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	h |= 1;
	for (int i = 0; i < x->distinct && i < BF_HASHES; i++)
		if (x->hashes[i] == h)
			return;
	if (x->distinct < BF_HASHES)
		x->hashes[x->distinct++] = h;
	else
		x->saturated = 1;
	if (x->n_names < BF_NAMES)
		snprintf(x->names[x->n_names++], sizeof x->names[0], "%s", v);
}

static void emit(struct an *an, struct an_keyed *k, struct bf_ext *x, ev_time now)
{
	int client = k->kind == BF_CLIENT;
	if (!client && x->distinct < 2)
		return;
	struct an_session tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.id = k->session_id;
	snprintf(tmp.protocol, sizeof tmp.protocol, "%s", k->protocol);
	snprintf(tmp.client_ip, sizeof tmp.client_ip, "%s", k->client_ip);
	snprintf(tmp.server_ip, sizeof tmp.server_ip, "%s", k->server_ip);
	/* the row's identity stays the same across updates: the first account (client burst)
	 * or the account itself */
	snprintf(tmp.db_user, sizeof tmp.db_user, "%s", k->account);
	if (!client)
		snprintf(tmp.client_ip, sizeof tmp.client_ip, "%s", "");
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "signal", client ? "failed_logins_per_client" : "failed_logins_per_account");
	cJSON_AddStringToObject(ev, "protocol", k->protocol);
	cJSON_AddStringToObject(ev, "server_ip", k->server_ip);
	cJSON_AddStringToObject(ev, client ? "client_ip" : "account", client ? k->client_ip : k->account);
	cJSON_AddNumberToObject(ev, "failures", (double)k->count);
	cJSON_AddNumberToObject(ev, "threshold", an->cfg.bruteforce_failures);
	cJSON_AddNumberToObject(ev, "window_s", an->cfg.bruteforce_window_s);
	char t0[40], t1[40];
	sink_fmt_time(k->first_ts, t0, sizeof t0);
	sink_fmt_time(k->last, t1, sizeof t1);
	cJSON_AddStringToObject(ev, "first_failure", t0);
	cJSON_AddStringToObject(ev, "last_failure", t1);
	cJSON *o = cJSON_AddArrayToObject(ev, client ? "accounts" : "clients");
	for (int i = 0; i < x->n_names; i++)
		cJSON_AddItemToArray(o, cJSON_CreateString(x->names[i]));
	cJSON_AddNumberToObject(ev, client ? "distinct_accounts" : "distinct_clients", x->distinct);
	if (x->saturated)
		cJSON_AddBoolToObject(ev, "distinct_at_least", 1);
	cJSON_AddBoolToObject(ev, "login_succeeded_after", k->succeeded);
	if (x->success[0])
		cJSON_AddStringToObject(ev, "succeeded_account", x->success);
	cJSON_AddBoolToObject(ev, "ongoing", k->fired && now <= k->w.burst_until);
	char summary[256], who[96] = "";
	if (x->n_names == 1)
		an_fmt(who, sizeof who, " (%s)", x->names[0]);
	else if (x->n_names >= 2)
		an_fmt(who, sizeof who, " (%s, %s%s)", x->names[0], x->names[1], x->distinct > 2 ? ", ..." : "");
	if (client)
		an_fmt(summary, sizeof summary, "%lld failed %s logins from %s to %s against %d%s account(s)%s%s%s",
		       (long long)k->count, k->protocol, k->client_ip, k->server_ip, x->distinct, x->saturated ? "+" : "",
		       who, k->succeeded ? ", then a login as " : "", k->succeeded ? x->success : "");
	else
		an_fmt(summary, sizeof summary, "%lld failed %s logins to %s for account %s from %d%s clients%s%s",
		       (long long)k->count, k->protocol, k->server_ip, k->account, x->distinct, x->saturated ? "+" : "",
		       k->succeeded ? ", then a login from " : "", k->succeeded ? x->success : "");
	enum an_severity sev = an->cfg.severity[AN_K_AUTH_BRUTEFORCE];
	if (k->succeeded)
		sev = AN_SEV_CRITICAL;
	an_session_finding(an, &tmp, AN_K_AUTH_BRUTEFORCE, sev, k->cross_ts, summary, ev);
	x->last_emit = now;
	x->dirty = 0;
}

static void finish(struct an *an, struct an_keyed *k, ev_time now)
{
	struct bf_ext *x = ext_of(an, k);
	if (x && (x->dirty || k->succeeded))
		emit(an, k, x, now);
	if (x)
		memset(x->names, 0, sizeof x->names), x->n_names = x->distinct = x->saturated = 0, x->success[0] = 0;
	k->fired = 0;
	k->succeeded = 0;
	k->count = 0;
	k->w.n = 0;
}

static void track(struct an *an, struct an_session *s, int kind, const char *key, const char *other, const char *acct,
		  ev_time ts)
{
	ev_time win = (ev_time)an->cfg.bruteforce_window_s * 1000000LL;
	struct an_keyed *k = an_keyed_get(&an->bf, &an->n_bf, &an->cap_bf, kind, key, ts);
	if (!k)
		return;
	if (k->fired && ts > k->w.burst_until)
		finish(an, k, ts);
	struct bf_ext *x = ext_of(an, k);
	if (!x)
		return;
	if (an_window_count(&k->w, ts, win) == 0 && !k->fired) {
		x->n_names = x->distinct = x->saturated = 0;
		k->first_ts = ts;
	}
	an_window_add(&k->w, ts, win);
	add_name(x, other);
	k->last = ts;
	int n = an_window_count(&k->w, ts, win);
	k->w.burst_until = ts + win;
	if (!k->fired && n >= an->cfg.bruteforce_failures) {
		k->fired = 1;
		k->count = n;
		k->first_ts = k->w.t[k->w.head];
		k->cross_ts = ts;
		k->session_id = s->id;
		snprintf(k->protocol, sizeof k->protocol, "%s", s->protocol);
		snprintf(k->client_ip, sizeof k->client_ip, "%s", s->client_ip);
		snprintf(k->server_ip, sizeof k->server_ip, "%s", s->server_ip);
		snprintf(k->account, sizeof k->account, "%s", acct);
		emit(an, k, x, ts); /* raised when the threshold is crossed */
		return;
	}
	if (k->fired) {
		k->count++;
		x->dirty = 1;
		if (ts - x->last_emit >= 1000000) /* updated at most once a second */
			emit(an, k, x, ts);
	}
}

/* Keys are per protocol and server: the same address failing against PostgreSQL and
 * MariaDB is two bursts. */
static void bf_login(struct an *an, struct an_session *s, int ok, const char *account, const char *code, ev_time ts)
{
	(void)code;
	const char *acct = account && account[0] ? account : "(unknown)";
	char ck[AN_STR_MAX], ak[AN_STR_MAX];
	an_fmt(ck, sizeof ck, "%s|%s|%s", s->protocol, s->server_ip, s->client_ip[0] ? s->client_ip : "(unknown)");
	an_fmt(ak, sizeof ak, "%s|%s|%s", s->protocol, s->server_ip, acct);
	if (ok) {
		for (int i = 0; i < an->n_bf; i++) {
			struct an_keyed *k = &an->bf[i];
			if (!k->used || !k->fired || ts > k->w.burst_until ||
			    strcmp(k->key, k->kind == BF_CLIENT ? ck : ak))
				continue;
			struct bf_ext *x = ext_of(an, k);
			k->succeeded = 1;
			if (x) {
				snprintf(x->success, sizeof x->success, "%s", k->kind == BF_CLIENT ? acct : s->client_ip);
				emit(an, k, x, ts); /* critical, at once */
			}
		}
		return;
	}
	track(an, s, BF_CLIENT, ck, acct, acct, ts);
	track(an, s, BF_ACCOUNT, ak, s->client_ip, acct, ts);
}

static void bf_tick(struct an *an, ev_time now)
{
	for (int i = 0; i < an->n_bf; i++) {
		struct an_keyed *k = &an->bf[i];
		if (!k->used || !k->fired)
			continue;
		if (now > k->w.burst_until) {
			finish(an, k, now);
			continue;
		}
		struct bf_ext *x = ext_of(an, k);
		if (x && x->dirty && now - x->last_emit >= 1000000)
			emit(an, k, x, now);
	}
}

static void bf_free(struct an *an)
{
	for (int i = 0; i < an->n_bf; i++)
		if (an->bf[i].used && an->bf[i].fired)
			finish(an, &an->bf[i], an->bf[i].last);
	struct bf_state *b = an->bf_ext;
	if (b)
		for (int i = 0; i < AN_KEYED_MAX; i++)
			free(b->ext[i]);
	free(b);
	an->bf_ext = NULL;
}

const struct an_detector det_auth_bruteforce = {
	.name = "auth_bruteforce",
	.kind = AN_K_AUTH_BRUTEFORCE,
	.on_login = bf_login,
	.on_tick = bf_tick,
	.on_free = bf_free,
};
