/* The learned baseline: a bounded hash table of what each principal normally does, loaded
 * from the findings database, judged against every statement and login as it arrives, and
 * handed back to the sink's writer as a delta of changed rows every flush_interval_s of packet
 * time (never one SQLite write per statement). Learning periods, acknowledgement and time
 * zones live here. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cJSON.h>

#include "baseline_int.h"

static void touch(struct bl *b, struct bl_entry *e, ev_time ts)
{
	e->op = b->op;
	if (!e->first || ts < e->first)
		e->first = ts;
	if (ts > e->last)
		e->last = ts;
	bl_mark(b, e);
}

/* A principal seen again at ts. */
static struct bl_entry *principal_seen(struct an *an, struct bl *b, struct bl_entry *e, ev_time ts)
{
	/* --learn ends the learning period of every principal it sees */
	if (an->cfg.learn && e->learning_until > ts)
		e->learning_until = ts;
	touch(b, e, ts);
	return e;
}

/* The principal's entry, created with a learning period when it is new. */
struct bl_entry *bl_principal_get(struct an *an, struct bl *b, int scope, const char *name, ev_time ts)
{
	struct bl_entry *e = bl_lookup(b, scope, BL_PRINCIPAL, name, "", "");
	if (!e) {
		e = bl_insert(an, b, scope, BL_PRINCIPAL, name, "", "");
		if (!e)
			return NULL;
		e->learning_until = an->cfg.learn ? ts : ts + an->cfg.baseline.learning_period_s * 1000000;
	}
	return principal_seen(an, b, e, ts);
}

int bl_judged(const struct an *an, const struct bl_entry *p, ev_time ts)
{
	return !an->cfg.learn && p && ts >= p->learning_until;
}

/* A known item seen again: 1 when it is still pending acknowledgement and not yet
 * alerted in this run. */
static int seen_again(struct an *an, struct bl *b, const struct bl_entry *p, struct bl_entry *e, ev_time ts,
		      int may_fire)
{
	e->count++;
	touch(b, e, ts);
	if (e->pending && !e->alerted && may_fire && bl_judged(an, p, ts)) {
		e->alerted = 1;
		return 1;
	}
	return 0;
}

/* Record item for principal p. Returns 1 when it is new to a judged principal (or still
 * pending acknowledgement and not yet alerted in this run): the caller raises the finding. */
static int observe(struct an *an, struct bl *b, const struct bl_entry *p, int scope, int kind, const char *pname,
		   const char *app, const char *item, ev_time ts, int may_fire, struct bl_entry **out)
{
	struct bl_entry *e = bl_lookup(b, scope, kind, pname, app, item);
	int fire = 0;
	if (e) {
		fire = seen_again(an, b, p, e, ts, may_fire);
	} else {
		e = bl_insert(an, b, scope, kind, pname, app, item);
		if (e) {
			e->count = 1;
			touch(b, e, ts);
			if (may_fire && bl_judged(an, p, ts)) {
				fire = 1;
				e->alerted = 1;
				e->pending = (uint8_t)an->cfg.baseline.require_ack;
			}
		}
	}
	if (out)
		*out = e;
	return fire;
}

/* The session's own identity (db_user, client address, application) maps to the same
 * entries on every statement: remember them in the session until ident_gen changes
 * (entries live until bl_free). */
static void sess_entries(struct bl *b, struct an_session *s)
{
	if (s->bl_gen != s->ident_gen + 1 || s->bl_egen != b->egen) {
		s->bl_principal = s->bl_client = s->bl_subnet = s->bl_app = s->bl_hour = NULL;
		memset(s->bl_shapes, 0, sizeof s->bl_shapes);
		s->bl_gen = s->ident_gen + 1;
		s->bl_egen = b->egen;
	}
	b->cur = s; /* an eviction during this operation keeps what s remembers */
}

static struct bl_entry *sess_principal(struct an *an, struct bl *b, struct an_session *s, ev_time ts)
{
	sess_entries(b, s);
	if (!s->bl_principal)
		return s->bl_principal = bl_principal_get(an, b, BL_DBUSER, s->db_user, ts);
	return principal_seen(an, b, s->bl_principal, ts);
}

/* observe() of the item whose entry the session keeps in *slot. */
static int sess_observe(struct an *an, struct bl *b, const struct bl_entry *p, struct bl_entry **slot, int kind,
			const char *pname, const char *item, ev_time ts, int may_fire)
{
	if (*slot)
		return seen_again(an, b, p, *slot, ts, may_fire);
	return observe(an, b, p, BL_DBUSER, kind, pname, "", item, ts, may_fire, slot);
}

/* Up to BL_LIST_MAX known items of a kind for a principal (sorted), for evidence. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *known_items(struct bl *b, int scope, int kind, const char *p, const char *app, const char *except,
			  int *total)
{
	const char *v[256];
	int n = 0, all = 0, walked = 0;
	/* the newest 256 items of the group (items without an application are kept with
	 * app ""); those beyond are counted as known without being looked at */
	const struct bl_group *g = bl_grp_find(b, scope, kind, p, app ? app : "", 0);
	const struct bl_entry *e = g ? g->head : NULL;
	for (; e && walked < 256; e = e->grp_next, walked++) {
		if (e->pending || (except && !strcmp(e->item, except)))
			continue;
		all++;
		v[n++] = e->item;
	}
	if (g && walked < g->n)
		all += (int)(g->n - walked);
	qsort(v, (size_t)n, sizeof v[0], cmp_str);
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n && i < BL_LIST_MAX; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i][0] ? v[i] : "(none)"));
	if (total)
		*total = all;
	return a;
}

static void bl_raise(struct an *an, struct an_session *s, const struct an_stmt *st, int kind, ev_time ts,
		  const char *summary, cJSON *ev)
{
	if (st)
		an_stmt_finding(an, st, kind, an->cfg.severity[kind], summary, ev);
	else
		an_session_finding(an, s, kind, an->cfg.severity[kind], ts, summary, ev);
}

static cJSON *evidence(const struct an_stmt *st, const char *signal)
{
	cJSON *o = st ? an_evidence_stmt(st, signal) : cJSON_CreateObject();
	if (o && !st)
		cJSON_AddStringToObject(o, "signal", signal);
	return o;
}

/* ---- aspects ---- */

/* Count one more end user for table; returns how many touched it before. */
int64_t bl_peer_add(struct an *an, struct bl *b, const char *table, ev_time ts)
{
	struct bl_entry *e = bl_lookup(b, BL_PEERS, BL_TABLE, "", "", table);
	if (!e)
		e = bl_insert(an, b, BL_PEERS, BL_TABLE, "", "", table);
	if (!e)
		return INT64_MAX; /* full: stay quiet rather than alert on every first access */
	e->count++;
	e->last = ts;
	e->op = b->op;
	return e->count - 1;
}

/* Free slot m for a new shape: the entry there moves to its own other slot (replacing
 * what that holds), so the two most recent shapes of a slot stay. */
static struct an_shape_memo *memo_make_room(struct an_session *s, struct an_shape_memo *m)
{
	if (!m->shape)
		return m;
	size_t here = (size_t)(m - s->bl_shapes), a = m->h & (AN_SHAPE_MEMO - 1),
	       b = (m->h >> 32) & (AN_SHAPE_MEMO - 1);
	size_t other = here == a ? b : a;
	if (other != here)
		s->bl_shapes[other] = *m;
	return m;
}

/* Once per run, the first time an item could not be learnt: from then on new_* and
 * off_hours cannot judge what is not in the table (issue #20: never silent). */
static void full_say(struct an *an, struct bl *b, struct an_session *s, ev_time ts)
{
	int evict = an->cfg.baseline.when_full == BL_FULL_EVICT;
	b->full = 2;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddNumberToObject(ev, "entries", (double)b->n);
	cJSON_AddNumberToObject(ev, "max_entries", an->cfg.baseline.max_entries);
	cJSON_AddStringToObject(ev, "when_full", evict ? "evict" : "stop");
	char summary[200];
	an_fmt(summary, sizeof summary, "baseline full (%zu entries, max_entries %d): %s", b->n,
	       an->cfg.baseline.max_entries,
	       evict ? "the least recently seen items are forgotten to learn new ones"
		     : "new items are no longer learnt or judged");
	an_session_finding(an, s, AN_K_BASELINE_FULL, an->cfg.severity[AN_K_BASELINE_FULL], ts, summary, ev);
}

/* The start of each aspect: a new operation, and the one baseline_full finding when due. */
static struct bl *begin(struct an *an, struct an_session *s, ev_time ts)
{
	struct bl *b = bl_get(an);
	if (!b)
		return NULL;
	bl_op(b);
	if (b->full == 1)
		full_say(an, b, s, ts);
	return b;
}

void bl_shape(struct an *an, const struct an_stmt *st)
{
	struct an_session *s = st->s;
	struct bl *b = begin(an, s, st->ts);
	if (!b || !st->info || !st->info->fingerprint[0] || !s->db_user[0])
		return;
	const struct sn_info *in = st->info;
	ev_time ts = st->ts;
	struct bl_entry *p = sess_principal(an, b, s, ts), *e = NULL;
	if (!p)
		return;
	p->count++;
	const char *new_tables[SN_MAX_TABLES], *eu_tables[SN_MAX_TABLES];
	int n_new = 0, n_eu = 0, new_shape;
	/* same hash, same normalised text: same tables (unless the text was cut). Two slots per
	 * hash, the newer first: an application's handful of shapes rarely push each other out. */
	struct an_shape_memo *m = NULL;
	if (!in->truncated && in->n_tables <= AN_SHAPE_MEMO_TABLES) {
		struct an_shape_memo *m1 = &s->bl_shapes[in->hash & (AN_SHAPE_MEMO - 1)];
		struct an_shape_memo *m2 = &s->bl_shapes[(in->hash >> 32) & (AN_SHAPE_MEMO - 1)];
		if (m1->shape && m1->h == in->hash)
			m = m1;
		else if (m2->shape && m2->h == in->hash)
			m = m2;
		else if (m1->shape && !m2->shape)
			m = m2;
		else
			m = memo_make_room(s, m1);
	}
	if (m && m->shape && m->h == in->hash) {
		e = m->shape;
		new_shape = seen_again(an, b, p, e, ts, 1);
		for (int i = 0; i < in->n_tables; i++)
			if (seen_again(an, b, p, m->table[i], ts, 1))
				new_tables[n_new++] = in->tables[i];
	} else {
		new_shape = observe(an, b, p, BL_DBUSER, BL_SHAPE, s->db_user, s->application, in->fingerprint, ts, 1, &e);
		int whole = e != NULL;
		if (m)
			m->shape = NULL; /* the slot now holds this shape's entries, or none */
		for (int i = 0; i < in->n_tables; i++) {
			struct bl_entry *te = NULL;
			if (observe(an, b, p, BL_DBUSER, BL_TABLE, s->db_user, "", in->tables[i], ts, 1, &te))
				new_tables[n_new++] = in->tables[i];
			if (m && te)
				m->table[i] = te;
			whole &= te != NULL;
		}
		if (m && whole) {
			m->h = in->hash;
			m->shape = e;
		}
	}
	if (e) {
		if (!e->detail && st->norm) {
			size_t n = strlen(st->norm);
			e->detail = malloc(n < BL_DETAIL_MAX ? n + 1 : BL_DETAIL_MAX + 4);
			if (e->detail)
				snprintf(e->detail, n < BL_DETAIL_MAX ? n + 1 : BL_DETAIL_MAX + 4, "%.*s%s",
					 (int)(n < BL_DETAIL_MAX ? n : BL_DETAIL_MAX), st->norm, n < BL_DETAIL_MAX ? "" : "...");
		}
		if (st->rows >= 0) {
			if (e->rows_min < 0 || st->rows < e->rows_min)
				e->rows_min = st->rows;
			if (st->rows > e->rows_max)
				e->rows_max = st->rows;
		}
	}
	/* the end user behind a pooled account: shapes recorded, first access to a table judged */
	const char *eu = st->end_user && st->end_user_source && strcmp(st->end_user_source, "db_user") ? st->end_user
													  : NULL;
	if (eu) {
		struct bl_entry *pe = bl_principal_get(an, b, BL_ENDUSER, eu, ts);
		if (pe) {
			pe->count++;
			observe(an, b, pe, BL_ENDUSER, BL_SHAPE, eu, "", in->fingerprint, ts, 0, NULL);
			for (int i = 0; i < in->n_tables; i++) {
				/* a table many other end users of the application touch is no news when one
				 * more does (peer group); a table few touch is */
				int known = bl_lookup(b, BL_ENDUSER, BL_TABLE, eu, "", in->tables[i]) != NULL;
				int64_t peers = known ? 0 : bl_peer_add(an, b, in->tables[i], ts);
				int may = an->cfg.baseline.end_user_tables && peers < an->cfg.baseline.end_user_peers;
				if (observe(an, b, pe, BL_ENDUSER, BL_TABLE, eu, "", in->tables[i], ts, may, NULL))
					eu_tables[n_eu++] = in->tables[i];
			}
		}
	}
	if (!new_shape && !n_new && !n_eu)
		return;
	cJSON *ev = evidence(st, new_shape ? "new_shape" : "first_table_access");
	cJSON *exp = cJSON_AddObjectToObject(ev, "expected");
	int total = 0;
	cJSON_AddStringToObject(exp, "db_user", s->db_user);
	cJSON_AddStringToObject(exp, "application", s->application);
	if (new_shape) {
		cJSON_AddStringToObject(ev, "new", "fingerprint");
		cJSON_AddStringToObject(ev, "normalized", st->norm ? st->norm : "");
		cJSON_AddItemToObject(exp, "known_fingerprints",
				      known_items(b, BL_DBUSER, BL_SHAPE, s->db_user, s->application, in->fingerprint,
						  &total));
		cJSON_AddNumberToObject(exp, "known_shapes", total);
	}
	if (n_new) {
		cJSON *a = cJSON_AddArrayToObject(ev, "new_tables");
		for (int i = 0; i < n_new; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(new_tables[i]));
		cJSON_AddItemToObject(exp, "known_tables", known_items(b, BL_DBUSER, BL_TABLE, s->db_user, NULL, NULL, NULL));
	}
	if (n_eu) {
		cJSON *a = cJSON_AddArrayToObject(ev, "end_user_new_tables");
		for (int i = 0; i < n_eu; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(eu_tables[i]));
		cJSON_AddItemToObject(exp, "end_user_known_tables", known_items(b, BL_ENDUSER, BL_TABLE, eu, NULL, NULL, NULL));
	}
	char summary[256], sql[120];
	det_sql_excerpt(st, sql, sizeof sql);
	if (new_shape)
		an_fmt(summary, sizeof summary, "new query shape for %s/%s (%d known): %s", s->db_user,
		       s->application[0] ? s->application : "(no application)", total, sql);
	else
		an_fmt(summary, sizeof summary, "first access to table %s by %s: %s", n_eu ? eu_tables[0] : new_tables[0],
		       n_eu ? eu : s->db_user, sql);
	bl_raise(an, s, st, AN_K_NEW_QUERY_SHAPE, ts, summary, ev);
}

/* "10.1.2.3" -> "10.1.2.0/24" with the configured prefix. */
static int subnet_of(const struct an_baseline_cfg *c, const char *ip, char *out, size_t cap)
{
	unsigned char a[16];
	int v6 = strchr(ip, ':') != NULL, fam = v6 ? AF_INET6 : AF_INET, bits = v6 ? c->prefix_v6 : c->prefix_v4;
	int len = v6 ? 16 : 4;
	char txt[INET6_ADDRSTRLEN];
	if (inet_pton(fam, ip, a) != 1)
		return -1;
	for (int k = bits; k < len * 8; k++)
		a[k / 8] &= (unsigned char)~(0x80u >> (k % 8));
	if (!inet_ntop(fam, a, txt, sizeof txt))
		return -1;
	snprintf(out, cap, "%s/%d", txt, bits);
	return 0;
}

/* subnet_of() costs an inet_pton, an inet_ntop and a printf on every statement: remember
 * the last address, which is nearly always the next statement's too. */
static int subnet_cached(struct bl *b, const struct an_baseline_cfg *c, const char *ip, char *out,
			 size_t cap)
{
	size_t n = strlen(ip);
	if (n >= sizeof b->sub_ip || cap < sizeof b->sub_txt)
		return subnet_of(c, ip, out, cap);
	if (strcmp(b->sub_ip, ip) != 0) {
		b->sub_ip[0] = 0;
		if (subnet_of(c, ip, b->sub_txt, sizeof b->sub_txt) != 0)
			return -1;
		memcpy(b->sub_ip, ip, n + 1);
	}
	memcpy(out, b->sub_txt, strlen(b->sub_txt) + 1);
	return 0;
}

void bl_client(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts)
{
	struct bl *b = begin(an, s, ts);
	char buf[64];
	if (!b || !s->db_user[0] || !s->client_ip[0])
		return;
	sess_entries(b, s);
	const char *subnet = s->bl_subnet ? s->bl_subnet->item : NULL;
	if (!subnet) {
		if (subnet_cached(b, &an->cfg.baseline, s->client_ip, buf, sizeof buf))
			return;
		subnet = buf;
	}
	struct bl_entry *p = sess_principal(an, b, s, ts);
	if (!p)
		return;
	sess_observe(an, b, p, &s->bl_client, BL_CLIENT, s->db_user, s->client_ip, ts, 0);
	if (!sess_observe(an, b, p, &s->bl_subnet, BL_SUBNET, s->db_user, subnet, ts, 1))
		return;
	cJSON *ev = evidence(st, "new_client");
	cJSON_AddStringToObject(ev, "client_ip", s->client_ip);
	cJSON_AddStringToObject(ev, "subnet", subnet);
	cJSON *exp = cJSON_AddObjectToObject(ev, "expected");
	int total = 0;
	cJSON *known = known_items(b, BL_DBUSER, BL_SUBNET, s->db_user, NULL, subnet, &total);
	cJSON_AddItemToObject(exp, "known_subnets", known);
	cJSON_AddItemToObject(exp, "known_clients", known_items(b, BL_DBUSER, BL_CLIENT, s->db_user, NULL, s->client_ip, NULL));
	char summary[256], first[64] = "";
	if (cJSON_GetArraySize(known) > 0)
		snprintf(first, sizeof first, "%s", cJSON_GetArrayItem(known, 0)->valuestring);
	an_fmt(summary, sizeof summary, "%s connected from new client %s (subnet %s; known: %s%s)", s->db_user,
	       s->client_ip, subnet, first[0] ? first : "none", total > 1 ? ", ..." : "");
	bl_raise(an, s, st, AN_K_NEW_CLIENT, ts, summary, ev);
}

void bl_application(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts)
{
	struct bl *b = begin(an, s, ts);
	if (!b || !s->db_user[0])
		return;
	struct bl_entry *p = sess_principal(an, b, s, ts);
	if (!p || !sess_observe(an, b, p, &s->bl_app, BL_APP, s->db_user, s->application, ts, 1))
		return;
	cJSON *ev = evidence(st, "new_application");
	cJSON_AddStringToObject(ev, "application", s->application);
	cJSON *exp = cJSON_AddObjectToObject(ev, "expected");
	int total = 0;
	cJSON *known = known_items(b, BL_DBUSER, BL_APP, s->db_user, NULL, s->application, &total);
	cJSON_AddItemToObject(exp, "known_applications", known);
	char summary[256];
	an_fmt(summary, sizeof summary, "%s used new application '%s' (known: %s%s)", s->db_user,
	       s->application[0] ? s->application : "(none)",
	       cJSON_GetArraySize(known) ? cJSON_GetArrayItem(known, 0)->valuestring : "none", total > 1 ? ", ..." : "");
	bl_raise(an, s, st, AN_K_NEW_APPLICATION, ts, summary, ev);
}

void bl_hours(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts)
{
	struct bl *b = begin(an, s, ts);
	const struct an_baseline_cfg *c = &an->cfg.baseline;
	if (!b || !s->db_user[0])
		return;
	struct bl_entry *p = sess_principal(an, b, s, ts), *e = NULL;
	if (!p)
		return;
	/* local time changes hour only on a minute boundary: one conversion a minute */
	int64_t minute = ts / 60000000 - (ts % 60000000 < 0);
	if (!b->hour_valid || b->hour_minute != minute) {
		b->hour_of = bl_hour_of(c, ts, &b->hour_mod);
		b->hour_minute = minute;
		b->hour_valid = 1;
	}
	int mod = b->hour_mod, hour = b->hour_of, had = p->n_hours;
	char item[4] = { (char)('0' + hour / 10 % 10), (char)('0' + hour % 10), 0, 0 };
	/* no hours learned yet (learning, or nothing recorded): configured business hours */
	int fallback = !bl_judged(an, p, ts) || had == 0;
	int known, fire;
	if (s->bl_hour && s->bl_hour_of == hour) { /* sess_principal() checked the identity */
		known = 1;
		e = s->bl_hour;
		fire = seen_again(an, b, p, e, ts, !fallback);
	} else {
		known = bl_lookup(b, BL_DBUSER, BL_HOUR, s->db_user, "", item) != NULL; /* memo: observe's is free */
		fire = observe(an, b, p, BL_DBUSER, BL_HOUR, s->db_user, "", item, ts, !fallback, &e);
		s->bl_hour = e;
		s->bl_hour_of = hour;
	}
	if (!known && e)
		p->n_hours++;
	if (fallback && !known && e && !an->cfg.learn && bl_outside_business(c, mod)) {
		fire = 1;
		e->alerted = 1;
		e->pending = (uint8_t)c->require_ack;
	}
	if (!fire)
		return;
	cJSON *ev = evidence(st, fallback ? "outside_business_hours" : "new_hour");
	char local[16], bh[40];
	snprintf(local, sizeof local, "%02d:%02d", mod / 60, mod % 60);
	snprintf(bh, sizeof bh, "%02d:%02d-%02d:%02d", c->business_start_min / 60, c->business_start_min % 60,
		 c->business_end_min / 60, c->business_end_min % 60);
	cJSON_AddStringToObject(ev, "hour", item);
	cJSON_AddStringToObject(ev, "local_time", local);
	cJSON_AddStringToObject(ev, "time_zone", c->time_zone);
	cJSON *exp = cJSON_AddObjectToObject(ev, "expected");
	if (fallback) {
		cJSON_AddStringToObject(exp, "business_hours", bh);
		cJSON_AddBoolToObject(exp, "learning", !bl_judged(an, p, ts));
	} else {
		cJSON_AddItemToObject(exp, "known_hours", known_items(b, BL_DBUSER, BL_HOUR, s->db_user, NULL, item, NULL));
	}
	char summary[256];
	if (fallback)
		an_fmt(summary, sizeof summary, "%s active at %s %s, outside business hours %s (no baseline yet)",
		       s->db_user, local, c->time_zone, bh);
	else
		an_fmt(summary, sizeof summary, "%s active at %s %s, an hour never seen in its baseline", s->db_user,
		       local, c->time_zone);
	bl_raise(an, s, st, AN_K_OFF_HOURS, ts, summary, ev);
}

int bl_shape_known(struct an *an, const struct an_stmt *st)
{
	struct bl *b = an->bl;
	if (!b || !st->info || !st->info->fingerprint[0] || !st->s->db_user[0])
		return 0;
	const struct bl_entry *e =
		bl_lookup(b, BL_DBUSER, BL_SHAPE, st->s->db_user, st->s->application, st->info->fingerprint);
	return e && !e->pending;
}

int bl_known_without(struct an *an, const struct an_stmt *st, int from, int to, char *fp)
{
	struct bl *b = an->bl;
	if (!b || !st->toks || !st->s->db_user[0] || from >= to)
		return 0;
	if (!b->tmp)
		b->tmp = malloc(sizeof(struct sn_tok) * SN_MAX_TOKENS);
	if (!b->norm)
		b->norm = malloc(SN_MAX_NORM + 1);
	if (!b->tmp || !b->norm)
		return 0;
	int n = 0;
	for (int i = st->first; i < st->end && n < SN_MAX_TOKENS; i++)
		if (i < from || i >= to)
			b->tmp[n++] = st->toks[i];
	struct sn_info info;
	memset(&info, 0, sizeof info);
	sn_normalize(st->base, b->tmp, 0, n, st->s->dialect, b->norm, SN_MAX_NORM + 1, &info);
	const struct bl_entry *e = bl_lookup(b, BL_DBUSER, BL_SHAPE, st->s->db_user, st->s->application, info.fingerprint);
	if (!e || e->pending)
		return 0;
	snprintf(fp, 17, "%s", info.fingerprint);
	return 1;
}
