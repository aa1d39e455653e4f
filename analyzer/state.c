/* Session state that outlives a flow (issue #18): idle sessions parked in a compact record
 * instead of ended, resumed on the same row when their 4-tuple speaks again; the state of
 * open and parked sessions saved to the findings database (table session_state) at every
 * checkpoint and at the end, and taken up by the next run.
 *
 * One format serves both: a small JSON object (short keys) holding what the session row
 * needs, the markers, the role and the named prepared statements. Parked records keep the
 * statement text as sent; saved state masks it as stored statements are (keep_literals,
 * secrets) and leaves out secret statements. Loading validates every field: a hostile or
 * damaged row is skipped and counted, never trusted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cJSON.h>

#include "an_int.h"
#include "attr.h"
#include "state_store.h"

#define ST_VERSION 1
#define ST_MAX_JSON (4u << 20) /* a saved row larger than this is not loaded */

struct an_parked {
	struct an_parked *hnext, *prev, *next; /* hash chain; LRU, most recent first */
	uint64_t h;
	int64_t id;
	ev_time last_ts;
	int from_db; /* loaded from an earlier run's saved state */
	size_t bytes;
	char *key, *json; /* in the same allocation */
};

static uint64_t key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ULL;
	return h;
}

static void key_of(char *buf, size_t cap, const char *proto, const char *cip, int cport, const char *sip,
		   int sport)
{
	snprintf(buf, cap, "%s %s %d %s %d", proto ? proto : "", cip ? cip : "", cport, sip ? sip : "", sport);
}

static void session_key(const struct an_session *s, char *buf, size_t cap)
{
	key_of(buf, cap, s->protocol, s->client_ip, s->client_port, s->server_ip, s->server_port);
}

static int64_t wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---- the state object ---- */

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v && v[0])
		cJSON_AddStringToObject(o, k, v);
}

static void add_marker(cJSON *o, const char *k, const struct an_marker *m)
{
	if (m->src == AN_SRC_NONE)
		return;
	cJSON *a = cJSON_AddArrayToObject(o, k);
	if (!a)
		return;
	cJSON_AddItemToArray(a, cJSON_CreateNumber(m->src));
	cJSON_AddItemToArray(a, cJSON_CreateString(m->value));
}

/* A prepared statement's text as it may be saved: masked like a stored statement; NULL for
 * a secret one (never saved). Uses the analyzer's scratch (not inside complete_part). */
static char *masked_text(struct an *an, const struct an_session *s, const char *text, size_t len)
{
	int trunc = 0;
	int n = sn_lex(text, len, s->dialect, an->toks, SN_MAX_TOKENS, &trunc);
	struct sn_info *info = calloc(1, sizeof *info);
	char *out = malloc((size_t)an->cfg.max_sql_bytes + 4);
	if (!info || !out)
		goto fail;
	sn_normalize(text, an->toks, 0, n, s->dialect, an->norm, SN_MAX_NORM + 1, info);
	if (info->secret)
		goto fail;
	sn_mask(text, an->toks, 0, n, an->cfg.keep_literals, 0, out, (size_t)an->cfg.max_sql_bytes + 4);
	free(info);
	return out;
fail:
	free(info);
	free(out);
	return NULL;
}

/* for_db: the form saved to the database (masked statements). Caller frees. */
static char *state_json(struct an *an, const struct an_session *s, int for_db)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "v", ST_VERSION);
	cJSON_AddNumberToObject(o, "id", (double)s->id);
	cJSON_AddNumberToObject(o, "run", (double)(s->run_id ? s->run_id : an->run_id));
	add_str(o, "proto", s->protocol);
	add_str(o, "ci", s->client_ip);
	cJSON_AddNumberToObject(o, "cp", s->client_port);
	add_str(o, "si", s->server_ip);
	cJSON_AddNumberToObject(o, "sp", s->server_port);
	cJSON_AddNumberToObject(o, "t0", (double)s->started_at);
	cJSON_AddNumberToObject(o, "t1", (double)s->last_ts);
	cJSON_AddNumberToObject(o, "flags",
				(s->midstream ? 1 : 0) | (s->tls ? 2 : 0) | (s->replication ? 4 : 0) |
					(s->login > 0 ? 8 : s->login < 0 ? 16 : 0));
	cJSON_AddNumberToObject(o, "n", (double)s->statements);
	cJSON_AddNumberToObject(o, "err", (double)s->errors);
	cJSON_AddNumberToObject(o, "rows", (double)s->rows_returned);
	cJSON_AddNumberToObject(o, "res", s->resumed);
	cJSON_AddNumberToObject(o, "rst", s->restored);
	add_str(o, "user", s->db_user);
	add_str(o, "db", s->database);
	add_str(o, "app", s->application);
	add_str(o, "ver", s->server_version);
	add_str(o, "auth", s->auth_method);
	add_str(o, "lerr", s->login_error);
	add_str(o, "role", s->role);
	add_str(o, "info", s->client_info);
	add_marker(o, "sm", &s->sess_marker);
	add_marker(o, "am", &s->attr_marker);
	if (s->txn == 'T' || s->txn == 'E') { /* parked inside a transaction */
		add_marker(o, "tm", &s->txn_marker);
		add_str(o, "trole", s->txn_role);
	}
	if (s->n_ps) {
		cJSON *a = cJSON_AddArrayToObject(o, "ps");
		for (int i = 0; a && i < s->n_ps; i++) {
			const struct an_ps *p = &s->ps[i];
			const char *text = p->buf + p->name_len + 1;
			char *m = for_db ? masked_text(an, s, text, p->text_len) : NULL;
			if (for_db && !m)
				continue;
			cJSON *e = cJSON_CreateArray();
			cJSON_AddItemToArray(e, cJSON_CreateString(p->buf));
			cJSON_AddItemToArray(e, cJSON_CreateString(m ? m : text));
			cJSON_AddItemToArray(e, cJSON_CreateNumber(p->trunc));
			cJSON_AddItemToArray(a, e);
			free(m);
		}
	}
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return txt;
}

static int get_int(const cJSON *o, const char *k, int64_t lo, int64_t hi, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v) {
		*out = lo > 0 ? lo : 0;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi)
		return -1;
	*out = (int64_t)v->valuedouble;
	return 0;
}

/* A string field into dst (capped, control bytes replaced); absent: "". */
static int get_str(const cJSON *o, const char *k, char *dst, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	dst[0] = 0;
	if (!v)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return -1;
	attr_clean(dst, cap, v->valuestring, strlen(v->valuestring));
	return 0;
}

static int get_marker(const cJSON *o, const char *k, struct an_marker *m)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	m->src = AN_SRC_NONE;
	m->value[0] = 0;
	if (!v)
		return 0;
	const cJSON *src = cJSON_GetArrayItem(v, 0), *val = cJSON_GetArrayItem(v, 1);
	if (!cJSON_IsArray(v) || !cJSON_IsNumber(src) || !cJSON_IsString(val) || !val->valuestring)
		return -1;
	int sv = (int)src->valuedouble;
	if (sv != AN_SRC_APPNAME && sv != AN_SRC_SESSVAR && sv != AN_SRC_CONNATTR && sv != AN_SRC_UNKNOWN)
		return -1;
	attr_clean(m->value, sizeof m->value, val->valuestring, strlen(val->valuestring));
	m->src = sv == AN_SRC_UNKNOWN || m->value[0] ? (enum an_src)sv : AN_SRC_NONE;
	return 0;
}

/* Fill s from a state object; key (when given) must be the one the state names. Every field
 * is checked; 0, or -1 leaving s to be freed by the caller. */
static int state_apply(struct an *an, struct an_session *s, const char *json, size_t len, const char *key)
{
	if (len > ST_MAX_JSON)
		return -1;
	cJSON *o = cJSON_ParseWithLength(json, len);
	int rc = -1;
	int64_t v, id, run, cp, sp, t0, t1, flags, n, err, rows, res, rst;
	char proto[16], ci[48], si[48];
	if (!cJSON_IsObject(o) || get_int(o, "v", 0, 1000, &v) || v != ST_VERSION ||
	    get_int(o, "id", 1, INT64_C(1) << 52, &id) || get_int(o, "run", 0, INT64_C(1) << 52, &run) ||
	    get_int(o, "cp", 0, 65535, &cp) || get_int(o, "sp", 0, 65535, &sp) ||
	    get_int(o, "t0", 0, INT64_C(1) << 62, &t0) || get_int(o, "t1", 0, INT64_C(1) << 62, &t1) ||
	    get_int(o, "flags", 0, 31, &flags) || get_int(o, "n", 0, INT64_C(1) << 52, &n) ||
	    get_int(o, "err", 0, INT64_C(1) << 52, &err) || get_int(o, "rows", 0, INT64_C(1) << 52, &rows) ||
	    get_int(o, "res", 0, 1 << 30, &res) || get_int(o, "rst", 0, 1 << 30, &rst) ||
	    get_str(o, "proto", proto, sizeof proto) || get_str(o, "ci", ci, sizeof ci) ||
	    get_str(o, "si", si, sizeof si))
		goto out;
	if (strcmp(proto, "postgresql") != 0 && strcmp(proto, "mysql") != 0)
		goto out;
	char k[160];
	key_of(k, sizeof k, proto, ci, (int)cp, si, (int)sp);
	if (key && strcmp(k, key) != 0)
		goto out;
	const cJSON *jinfo = cJSON_GetObjectItemCaseSensitive(o, "info");
	if (jinfo) {
		if (!cJSON_IsString(jinfo) || !jinfo->valuestring || strlen(jinfo->valuestring) > AN_CLIENT_INFO_MAX)
			goto out;
		cJSON *chk = cJSON_Parse(jinfo->valuestring); /* it is stored as JSON: must be JSON */
		int ok = cJSON_IsObject(chk);
		cJSON_Delete(chk);
		if (!ok)
			goto out;
	}
	if (get_str(o, "user", s->db_user, sizeof s->db_user) || get_str(o, "db", s->database, sizeof s->database) ||
	    get_str(o, "app", s->application, sizeof s->application) ||
	    get_str(o, "ver", s->server_version, sizeof s->server_version) ||
	    get_str(o, "auth", s->auth_method, sizeof s->auth_method) ||
	    get_str(o, "lerr", s->login_error, sizeof s->login_error) || get_str(o, "role", s->role, sizeof s->role) ||
	    get_str(o, "trole", s->txn_role, sizeof s->txn_role) || get_marker(o, "sm", &s->sess_marker) ||
	    get_marker(o, "am", &s->attr_marker) || get_marker(o, "tm", &s->txn_marker))
		goto out;
	const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "ps");
	if (ps && (!cJSON_IsArray(ps) || cJSON_GetArraySize(ps) > AN_PS_MAX))
		goto out;
	const cJSON *e;
	cJSON_ArrayForEach(e, ps)
	{
		const cJSON *nm = cJSON_GetArrayItem(e, 0), *tx = cJSON_GetArrayItem(e, 1), *tr = cJSON_GetArrayItem(e, 2);
		if (!cJSON_IsArray(e) || !cJSON_IsString(nm) || !cJSON_IsString(tx) || !nm->valuestring ||
		    !tx->valuestring || !cJSON_IsNumber(tr))
			goto out;
		size_t nl = strlen(nm->valuestring), tl = strlen(tx->valuestring);
		if (nl == 0 || nl > 255 || tl > (size_t)an->cfg.max_sql_bytes)
			goto out;
		an_ps_put(an, s, nm->valuestring, nl, tx->valuestring, tl, tr->valuedouble != 0);
	}
	if (jinfo)
		s->client_info = strdup(jinfo->valuestring);
	s->id = id;
	s->run_id = run;
	s->started_at = t0;
	s->midstream = (flags & 1) != 0;
	s->tls = (flags & 2) != 0;
	s->replication = (flags & 4) != 0;
	s->login = (flags & 8) ? 1 : (flags & 16) ? -1 : 0;
	s->statements = n;
	s->errors = err;
	s->rows_returned = rows;
	s->resumed = (int)res;
	s->restored = (int)rst;
	s->sess_at_idle = s->sess_marker;
	s->txn = s->txn_marker.src || s->txn_role[0] ? 'T' : '?';
	s->ident_gen++;
	if (t1 > s->last_ts)
		s->last_ts = t1;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

/* ---- the parked table ---- */

static void park_unlink(struct an *an, struct an_parked *p)
{
	struct an_parked **pp = &an->park_tab[p->h & an->park_mask];
	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	if (p->prev)
		p->prev->next = p->next;
	else
		an->park_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		an->park_tail = p->prev;
	an->n_parked--;
	an->st.parked_bytes -= p->bytes;
}

static struct an_parked *park_find(struct an *an, const char *key)
{
	if (!an->park_tab)
		return NULL;
	uint64_t h = key_hash(key);
	for (struct an_parked *p = an->park_tab[h & an->park_mask]; p; p = p->hnext)
		if (p->h == h && !strcmp(p->key, key))
			return p;
	return NULL;
}

static void state_put(struct an *an, const char *key, int64_t id, ev_time last_ts, const char *json)
{
	if (!an->save_state)
		return;
	struct rec_state r = { .key = key, .session_id = id, .last_ts = last_ts, .saved_at = wall_us(), .state = json };
	struct rec rec = { .type = REC_STATE, .u.state = &r };
	for (int i = 0; i < an->n_sinks; i++)
		if (an->sinks[i] && sink_put(an->sinks[i], &rec) != 0)
			an->st.sink_errors++;
}

/* End a parked record's row (reason, at its last activity) without resuming it. */
static void park_end(struct an *an, struct an_parked *p, const char *reason, int forget)
{
	struct an_session *s = calloc(1, sizeof *s);
	if (s && state_apply(an, s, p->json, strlen(p->json), p->key) == 0) {
		/* the key holds the protocol and the 4-tuple */
		int cp = 0, sp = 0;
		char proto[16] = "", ci[48] = "", si[48] = "";
		if (sscanf(p->key, "%15s %47s %d %47s %d", proto, ci, &cp, si, &sp) == 5) {
			snprintf(s->protocol, sizeof s->protocol, "%s", proto);
			snprintf(s->client_ip, sizeof s->client_ip, "%s", ci);
			snprintf(s->server_ip, sizeof s->server_ip, "%s", si);
			s->client_port = cp;
			s->server_port = sp;
		}
		struct an_flow_end end = { .ts = p->last_ts, .reason = reason };
		an_put_session(an, s, &end);
	}
	if (s) {
		an_ps_free(an, s);
		free(s->client_info);
		free(s);
	}
	if (forget)
		state_put(an, p->key, p->id, p->last_ts, NULL);
}

static int park_insert(struct an *an, const char *key, int64_t id, ev_time last_ts, const char *json, int from_db)
{
	if (!an->park_tab) {
		size_t n = 1024;
		while (n < (size_t)an->cfg.max_parked && n < (1u << 22))
			n <<= 1;
		an->park_tab = calloc(n, sizeof *an->park_tab);
		if (!an->park_tab)
			return -1;
		an->park_mask = n - 1;
	}
	struct an_parked *old = park_find(an, key);
	if (old) { /* a saved copy of the same connection: the newer one wins */
		park_unlink(an, old);
		free(old);
	}
	size_t kl = strlen(key), jl = strlen(json);
	struct an_parked *p = malloc(sizeof *p + kl + jl + 2);
	if (!p)
		return -1;
	p->key = (char *)(p + 1);
	p->json = p->key + kl + 1;
	memcpy(p->key, key, kl + 1);
	memcpy(p->json, json, jl + 1);
	p->h = key_hash(key);
	p->id = id;
	p->last_ts = last_ts;
	p->from_db = from_db;
	p->bytes = sizeof *p + kl + jl + 2;
	p->hnext = an->park_tab[p->h & an->park_mask];
	an->park_tab[p->h & an->park_mask] = p;
	p->prev = NULL;
	p->next = an->park_head;
	if (an->park_head)
		an->park_head->prev = p;
	an->park_head = p;
	if (!an->park_tail)
		an->park_tail = p;
	an->n_parked++;
	an->st.parked_bytes += p->bytes;
	/* bounded: the least recently active parked session ends for room */
	uint64_t cap = (uint64_t)an->cfg.max_parked_mb << 20;
	while (an->park_tail && an->park_tail != p && (an->n_parked > an->cfg.max_parked || an->st.parked_bytes > cap)) {
		struct an_parked *t = an->park_tail;
		park_unlink(an, t);
		if (!t->from_db)
			park_end(an, t, "timeout", 1);
		else
			state_put(an, t->key, t->id, t->last_ts, NULL);
		free(t);
		an->st.parked_evicted++;
	}
	return 0;
}

int an_park(struct an *an, struct an_session *s)
{
	if (an->cfg.max_parked <= 0)
		return -1;
	char key[160];
	session_key(s, key, sizeof key);
	char *json = state_json(an, s, 0);
	if (!json)
		return -1;
	an_put_session(an, s, NULL); /* the row stays open, with its counters */
	if (park_insert(an, key, s->id, s->last_ts, json, 0) != 0) {
		free(json);
		return -1;
	}
	free(json);
	an_checkpoint_one(an, s);
	an->st.sessions_parked++;
	return 0;
}

int an_unpark(struct an *an, struct an_session *s, const struct an_flow *flow)
{
	if (!an->n_parked)
		return 0;
	char key[160];
	key_of(key, sizeof key, flow->protocol, flow->client_ip, flow->client_port, flow->server_ip, flow->server_port);
	struct an_parked *p = park_find(an, key);
	if (!p)
		return 0;
	park_unlink(an, p);
	int too_old = flow->ts - p->last_ts > (ev_time)an->cfg.state_max_age_s * 1000000LL;
	if (!flow->midstream || too_old) {
		/* a SYN: a new connection reusing the port; or state too old to trust */
		if (!p->from_db)
			park_end(an, p, "timeout", 1);
		else
			state_put(an, p->key, p->id, p->last_ts, NULL);
		if (too_old)
			an->st.state_rejected++;
		free(p);
		return 0;
	}
	ev_time keep_ts = s->last_ts;
	int ok = state_apply(an, s, p->json, strlen(p->json), p->key) == 0;
	if (ok) {
		if (p->from_db) {
			s->restored++;
			an->st.sessions_restored++;
		} else {
			s->resumed++;
			an->st.sessions_resumed++;
		}
		s->last_ts = keep_ts;
		s->dirty = 1;
	} else {
		an_ps_free(an, s);
		free(s->client_info);
		s->client_info = NULL;
		an->st.state_rejected++;
	}
	free(p);
	return ok;
}

void an_checkpoint_one(struct an *an, struct an_session *s)
{
	if (!an->save_state || s->evicted)
		return;
	char key[160];
	session_key(s, key, sizeof key);
	char *json = state_json(an, s, 1);
	if (json)
		state_put(an, key, s->id, s->last_ts, json);
	free(json);
	s->state_dirty = 0;
}

void an_checkpoint(struct an *an, int at_end)
{
	for (struct an_session *s = an->lru_head; s; s = s->next)
		if (at_end || s->state_dirty)
			an_checkpoint_one(an, s);
}

void an_state_forget(struct an *an, const struct an_session *s)
{
	if (!an->save_state)
		return;
	char key[160];
	session_key(s, key, sizeof key);
	state_put(an, key, s->id, s->last_ts, NULL);
}

void an_park_free(struct an *an)
{
	while (an->park_head) {
		struct an_parked *p = an->park_head;
		park_unlink(an, p);
		/* parked here: the row ends as an idle flow did before; the saved state stays
		 * for the next run. Restored but never resumed: its row is left as it was. */
		if (!p->from_db)
			park_end(an, p, "timeout", 0);
		free(p);
	}
	free(an->park_tab);
	an->park_tab = NULL;
}

/* ---- loading saved state ---- */

struct load_ctx {
	struct an *an;
	uint64_t bad, old, ok;
};

static int load_row(void *vctx, const char *key, int64_t session_id, int fresh, const char *json, size_t len)
{
	struct load_ctx *c = vctx;
	struct an *an = c->an;
	if (!fresh) {
		c->old++;
		return 0;
	}
	if (!key || !json || session_id <= 0 || strlen(key) >= 160) {
		c->bad++;
		return 0;
	}
	struct an_session *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	int ok = state_apply(an, s, json, len, key) == 0 && s->id == session_id;
	ev_time last = s->last_ts;
	an_ps_free(an, s);
	free(s->client_info);
	free(s);
	if (!ok || park_insert(an, key, session_id, last, json, 1) != 0) {
		c->bad++;
		return 0;
	}
	c->ok++;
	return 0;
}

int an_state_open(struct an *an, const char *db_path, char *err, unsigned long errlen)
{
	if (!an || !db_path)
		return -1;
	an->save_state = 1;
	struct load_ctx c = { an, 0, 0, 0 };
	int rc = state_store_load(db_path, wall_us() - (int64_t)an->cfg.state_max_age_s * 1000000LL, load_row, &c,
				  err, errlen);
	an->st.state_rejected += c.bad + c.old;
	if (rc < 0)
		return -1;
	if (c.bad) {
		snprintf(err, errlen, "%s: session_state: %llu saved sessions not valid, skipped (%llu loaded)", db_path,
			 (unsigned long long)c.bad, (unsigned long long)c.ok);
		return 1;
	}
	return 0;
}
