/* Analyzer core: the bounded session table, pending statements matched to their results,
 * end-user attribution state, and the records (sessions, statements, findings) handed to the
 * sinks. Detectors live in det_*.c and are called through the table in det_registry.c. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "an_int.h"
#include "attr.h"

#define PARAM_BYTES_MAX 4096 /* bound parameter text kept per statement */
#define PARAM_ONE_MAX 1024

struct an_pending {
	uint64_t id;
	int kind;
	ev_time ts;
	char *sql; /* copy of the statement text (capped), NULL when not known */
	size_t sql_len;
	int truncated;
	uint32_t *part_off, *part_len;
	uint8_t *part_mode; /* per part: lexer mode (SQ_M_*) | PART_ALT | PART_CUT */
	int alt_flagged;    /* the message's lexer_differential finding was raised */
	int n_parts, next;
	int got_result;
	char first_verb[24];
	struct attr_val *params;
	int n_params;
	char *param_buf;
	char *msg_user; /* a split message's end user (AN_STR_MAX bytes in the block), else NULL */
	uint8_t msg_src; /* enum an_src of msg_user; 0: not decided yet */
	struct sq_tok *toks; /* a single-statement simple query's tokens, lexed once */
	int n_toks;
	void *block;	     /* one allocation holds sql, parts, tokens and parameters */
	size_t block_cap;
	int data_move, data_move_to_client, data_move_part;
	char data_move_what[AN_STR_MAX];
	size_t bytes; /* charged against the session's pending budget */
	struct an_pj_ref pj; /* issue #21: its match across a pooler's legs */
};
#define PART_ALT 0x10 /* part_mode: from the other reading of a setting not known */
#define PART_CUT 0x20 /* part_mode: text cut at the budget */

const char *an_src_name(enum an_src s)
{
	switch (s) {
	case AN_SRC_COMMENT: return "comment";
	case AN_SRC_APPNAME: return "application_name";
	case AN_SRC_SESSVAR: return "session_variable";
	case AN_SRC_CONNATTR: return "connect_attr";
	case AN_SRC_DBUSER: return "db_user";
	default: return NULL;
	}
}

/* snprintf(dst, cap, "%s", src) without printf's cost, for the per-statement path. */
static void an_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void scopy(char *dst, size_t cap, struct strv v)
{
	attr_clean(dst, cap, v.p ? v.p : "", v.p ? v.n : 0);
}

int an_in_list(const struct an_strlist *l, const char *v)
{
	if (!v)
		return 0;
	for (int i = 0; i < l->n; i++)
		if (l->v[i] && strcmp(l->v[i], v) == 0)
			return 1;
	return 0;
}

int an_is_service_account(const struct an_config *c, const char *user)
{
	return user && user[0] && an_in_list(&c->service_accounts, user);
}

int an_ip_in_cidrs(const struct an_strlist *cidrs, const char *ip)
{
	unsigned char a[16], b[16];
	int fam = strchr(ip ? ip : "", ':') ? AF_INET6 : AF_INET, alen = fam == AF_INET ? 4 : 16;
	if (!ip || inet_pton(fam, ip, a) != 1)
		return 0;
	for (int i = 0; i < cidrs->n; i++) {
		char buf[64];
		snprintf(buf, sizeof buf, "%s", cidrs->v[i]);
		char *slash = strchr(buf, '/');
		long bits = alen * 8;
		if (slash) {
			*slash = 0;
			bits = strtol(slash + 1, NULL, 10);
		}
		if (inet_pton(fam, buf, b) != 1 || bits < 0 || bits > alen * 8)
			continue;
		int ok = 1;
		for (long k = 0; k < bits && ok; k++)
			if (((a[k / 8] ^ b[k / 8]) >> (7 - k % 8)) & 1)
				ok = 0;
		if (ok)
			return 1;
	}
	return 0;
}

/* ---- windows ---- */

void an_window_add(struct an_window *w, ev_time ts, ev_time window_us)
{
	(void)window_us;
	int idx = (w->head + w->n) % AN_ERR_RING;
	if (w->n == AN_ERR_RING) {
		w->head = (w->head + 1) % AN_ERR_RING;
		idx = (w->head + AN_ERR_RING - 1) % AN_ERR_RING;
	} else {
		w->n++;
	}
	w->t[idx] = ts;
}

int an_window_count(struct an_window *w, ev_time now, ev_time window_us)
{
	while (w->n > 0 && now - w->t[w->head] > window_us) {
		w->head = (w->head + 1) % AN_ERR_RING;
		w->n--;
	}
	return w->n;
}

struct an_keyed *an_keyed_get(struct an_keyed **tabp, int *n, int *cap, int kind, const char *key, ev_time now)
{
	struct an_keyed *tab = *tabp;
	int oldest = -1;
	for (int i = 0; i < *n; i++) {
		if (tab[i].kind == kind && strcmp(tab[i].key, key) == 0) {
			tab[i].last = now;
			return &tab[i];
		}
		if (oldest < 0 || tab[i].last < tab[oldest].last)
			oldest = i;
	}
	int slot = oldest;
	if (*n < *cap) {
		slot = (*n)++;
	} else if (*cap < AN_KEYED_MAX) {
		int nc = *cap ? *cap * 2 : 16;
		if (nc > AN_KEYED_MAX)
			nc = AN_KEYED_MAX;
		struct an_keyed *nt = realloc(tab, (size_t)nc * sizeof *nt);
		if (nt) {
			*tabp = tab = nt;
			*cap = nc;
			slot = (*n)++;
		}
	}
	if (slot < 0)
		return NULL;
	/* a new key, or the least recently used window evicted for it */
	memset(&tab[slot], 0, sizeof tab[slot]);
	tab[slot].used = 1;
	tab[slot].kind = kind;
	tab[slot].last = now;
	attr_clean(tab[slot].key, sizeof tab[slot].key, key, strlen(key));
	return &tab[slot];
}

/* ---- records ---- */

static void put_all(struct an *an, const struct rec *r)
{
	for (int i = 0; i < an->n_sinks; i++)
		if (an->sinks[i] && sink_put(an->sinks[i], r) != 0)
			an->st.sink_errors++;
}

struct an_session *an_sessions(struct an *an)
{
	return an->lru_head;
}

void an_put_all(struct an *an, const struct rec *r)
{
	put_all(an, r);
}

static const char *nz(const char *s)
{
	return s && s[0] ? s : NULL;
}

static void put_session(struct an *an, struct an_session *s, const struct an_flow_end *end)
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
		.db_user = nz(s->db_user),
		.database = nz(s->database),
		.application = nz(s->application),
		.client_info = s->client_info,
		.server_version = nz(s->server_version),
		.tls = s->tls,
		/* before capture tells the outcome: "pending" while open, "no_key" at the end */
		.tls_decrypted = !s->tls ? NULL : s->tls_decrypted ? s->tls_decrypted : end ? "no_key" : "pending",
		.auth_method = nz(s->auth_method),
		.login = s->login > 0 ? "ok" : s->login < 0 ? "failed" : "unknown",
		.login_error = nz(s->login_error),
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
	put_all(an, &rec);
	s->dirty = 0;
}

void an_put_session(struct an *an, struct an_session *s, const struct an_flow_end *end)
{
	put_session(an, s, end);
}

static void put_finding(struct an *an, struct an_session *s, int64_t stmt_id, ev_time ts, int kind,
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
		.db_user = s ? nz(s->db_user) : NULL,
		.database = s ? nz(s->database) : NULL,
		.application = s ? nz(s->application) : NULL,
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
	put_all(an, &rec);
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
		put_session(an, s, NULL);
	put_finding(an, s, 0, ts, kind, sev, summary, txt, NULL);
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

#define AN_PEND_KEEP 2048 /* a block up to this size is kept as the session's spare */

static void pending_free(struct an_session *s, struct an_pending *p)
{
	s->pend_bytes -= p->bytes < s->pend_bytes ? p->bytes : s->pend_bytes;
	if (!s->pend_spare && p->block && p->block_cap <= AN_PEND_KEEP) {
		s->pend_spare = p->block;
		s->pend_spare_cap = p->block_cap;
	} else {
		free(p->block);
	}
	memset(p, 0, sizeof *p);
}

static void pend_spare_free(struct an_session *s)
{
	free(s->pend_spare);
	s->pend_spare = NULL;
	s->pend_spare_cap = 0;
}

static struct an_pending *pend_at(struct an_session *s, int i)
{
	int k = s->pend_head + i; /* both below pend_cap: no division on every lookup */
	return &s->pend[k < s->pend_cap ? k : k - s->pend_cap];
}

/* ---- attribution ---- */

static int app_pattern_user(struct an *an, const char *app, char *out, size_t cap)
{
	for (int i = 0; i < an->n_app_re; i++) {
		regmatch_t m[2];
		if (regexec(&an->app_re[i], app, 2, m, 0) == 0 && m[1].rm_so >= 0 && m[1].rm_eo > m[1].rm_so) {
			attr_clean(out, cap, app + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so));
			return 1;
		}
	}
	return 0;
}

static void marker_set(struct an_marker *m, enum an_src src, const char *v)
{
	attr_clean(m->value, sizeof m->value, v, strlen(v));
	m->src = m->value[0] ? src : AN_SRC_NONE;
}

static void marker_unknown(struct an_marker *m)
{
	m->value[0] = 0;
	m->src = AN_SRC_UNKNOWN;
}

/* failed: the statement setting them failed; the application meant a new value, so a user
 * marker becomes unknown rather than keep the old name (DETECTORS.md, attribution). */
static void apply_ops(struct an *an, struct an_session *s, const struct attr_op *ops, int n, int failed)
{
	for (int i = 0; i < n; i++) {
		const struct attr_op *o = &ops[i];
		struct an_marker *m = o->scope == ATTR_TXN ? &s->txn_marker : &s->sess_marker;
		char user[AN_STR_MAX];
		if (failed && o->kind != ATTR_USER)
			continue;
		if (m == &s->sess_marker) {
			s->sess_changed = 1;
			pool_session_marker(s);
		}
		switch (o->kind) {
		case ATTR_USER:
			if (o->unknown || failed) {
				marker_unknown(m);
				if (failed && m == &s->sess_marker) /* not undone by a rollback either */
					marker_unknown(&s->sess_at_idle);
			} else if (o->clear) {
				if (m->src == AN_SRC_SESSVAR || m->src == AN_SRC_UNKNOWN)
					m->src = AN_SRC_NONE;
			} else {
				marker_set(m, AN_SRC_SESSVAR, o->value);
			}
			break;
		case ATTR_APPNAME:
			if (!o->clear && !o->unknown && app_pattern_user(an, o->value, user, sizeof user))
				marker_set(m, AN_SRC_APPNAME, user);
			else if (m->src == AN_SRC_APPNAME)
				m->src = AN_SRC_NONE;
			break;
		case ATTR_ROLE: {
			char *r = o->scope == ATTR_TXN ? s->txn_role : s->role;
			if (o->clear || o->unknown)
				r[0] = 0;
			else
				snprintf(r, AN_STR_MAX, "%s", o->value);
			break;
		}
		case ATTR_RESET_ALL:
			s->sess_marker.src = AN_SRC_NONE;
			s->txn_marker.src = AN_SRC_NONE;
			s->role[0] = s->txn_role[0] = 0;
			an_ps_free(an, s); /* DISCARD ALL deallocates them too */
			break;
		}
	}
}

/* ---- statement completion ---- */

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

static void ncache_clear(struct an_ncache *c)
{
	free(c->text);
	free(c->toks);
	free(c->norm);
	free(c->masked);
	memset(c, 0, sizeof *c);
}

/* An sq_info without the unused part of its 1 KiB table-name array. */
static void info_copy(struct sq_info *dst, const struct sq_info *src)
{
	memcpy(dst, src, offsetof(struct sq_info, tables));
	for (int i = 0; i < src->n_tables; i++)
		memcpy(dst->tables[i], src->tables[i], sizeof dst->tables[i]);
}

/* sq_normalize through the shape cache: a shape seen before costs its key and a copy. */
static void normalize_cached(struct an *an, const char *text, const struct sq_tok *toks, int n, enum sq_dialect d,
			     struct sq_info *info)
{
	uint8_t key[AN_SCACHE_MAX_KEY];
	size_t kl = an->scache ? sq_shape_key(text, toks, 0, n, key, sizeof key) : 0;
	struct an_scache *c = NULL;
	uint64_t h = 0;
	if (kl) {
		h = sq_hash_mem(key, kl, SQ_HASH_INIT ^ (uint64_t)d);
		c = &an->scache[h & (AN_SCACHE_SLOTS - 1)];
		if (c->key && c->h == h && c->key_len == kl && c->dialect == (int)d && memcmp(c->key, key, kl) == 0) {
			memcpy(an->norm, c->key + kl, c->norm_len + 1);
			info_copy(info, &c->info);
			return;
		}
	}
	size_t nl = sq_normalize(text, toks, 0, n, d, an->norm, SQ_MAX_NORM + 1, info);
	if (!c || info->truncated || nl > AN_SCACHE_MAX_NORM)
		return;
	uint8_t *buf = realloc(c->key, kl + nl + 1);
	if (!buf) {
		free(c->key);
		c->key = NULL;
		return;
	}
	memcpy(buf, key, kl);
	memcpy(buf + kl, an->norm, nl + 1);
	c->key = buf;
	c->h = h;
	c->key_len = kl;
	c->norm_len = nl;
	c->dialect = (int)d;
	info_copy(&c->info, info);
}

/* Remember one statement's derived outputs in slot c (replacing what was there); on
 * allocation failure the slot stays empty, which only costs the next lookup a miss. */
static void ncache_put(struct an_ncache *c, uint64_t h, const char *text, size_t len, int d,
		       const struct sq_tok *toks, int n, const char *norm, size_t norm_len, const char *masked,
		       size_t masked_len, const struct sq_info *info)
{
	ncache_clear(c);
	c->text = malloc(len + 1);
	c->toks = malloc((size_t)(n > 0 ? n : 1) * sizeof *toks);
	c->norm = malloc(norm_len + 1);
	c->masked = malloc(masked_len + 1);
	if (!c->text || !c->toks || !c->norm || !c->masked) {
		ncache_clear(c);
		return;
	}
	memcpy(c->text, text, len);
	c->text[len] = 0;
	memcpy(c->toks, toks, (size_t)n * sizeof *toks);
	memcpy(c->norm, norm, norm_len + 1);
	memcpy(c->masked, masked, masked_len + 1);
	c->hash = h;
	c->len = len;
	c->dialect = (int)d;
	c->n = n;
	c->norm_len = norm_len;
	c->masked_len = masked_len;
	info_copy(&c->info, info);
}

/* The stored form of tokens [first, end) of base, into an->masked. */
static void mask_text(struct an *an, const char *base, const struct sq_tok *toks, int first, int end, int secret)
{
	sq_mask(base, toks, first, end, an->cfg.keep_literals, secret, an->masked, (size_t)an->cfg.max_sql_bytes + 4);
}

const char *an_stmt_masked(const struct an_stmt *st)
{
	struct an_masked *m = st->masked;
	if (!m)
		return NULL;
	if (!m->ready) {
		mask_text(m->an, st->base, st->toks, st->first, st->end, st->info->secret);
		m->ready = 1;
	}
	return m->an->masked;
}

static int txn_verb(const char *v)
{
	switch (v[0]) {
	case 'B': return !strcmp(v, "BEGIN");
	case 'S': return !strcmp(v, "START") || !strcmp(v, "SET") || !strcmp(v, "SAVEPOINT");
	case 'C': return !strcmp(v, "COMMIT");
	case 'E': return !strcmp(v, "END");
	case 'R': return !strcmp(v, "ROLLBACK") || !strcmp(v, "RESET") || !strcmp(v, "RELEASE");
	case 'D': return !strcmp(v, "DISCARD");
	default: return 0;
	}
}

static enum an_src src_of(const char *name)
{
	for (int i = AN_SRC_COMMENT; i <= AN_SRC_DBUSER; i++)
		if (!strcmp(an_src_name((enum an_src)i), name))
			return (enum an_src)i;
	return AN_SRC_UNKNOWN;
}

/* A PostgreSQL statement whose tag is ROLLBACK: the whole transaction (restored at the
 * next idle ReadyForQuery), or back to a savepoint, after which a session marker set in
 * the transaction may or may not hold: unknown. */
static void rollback_seen(struct an_session *s, const struct sq_tok *t, int n, const char *b)
{
	for (int i = 0; i < n && i < 4; i++)
		if (sq_word(b, &t[i], "TO")) {
			if (s->sess_changed)
				marker_unknown(&s->sess_marker);
			return;
		}
	s->rolled_back = 1;
}

/* A SET of sql_mode that ran: how the server reads the session's next messages. */
static void sql_mode_seen(struct an_session *s, const char *text, const struct sq_tok *toks, int n, int ok)
{
	unsigned m = s->lexmode;
	int r = sq_sets_sql_mode(text, toks, 0, n, &m);
	if (r == 1 && ok) {
		s->lexmode = (uint8_t)m;
		s->lexmode_unknown = 0;
	} else if (r != 0) { /* an expression, DEFAULT (the global value) or an outcome not seen */
		s->lexmode = (uint8_t)m;
		s->lexmode_unknown = SQ_M_ALL;
	}
}

/* A statement that exists only in the other reading of a setting we do not know: the
 * server may have run it. Raised once per statement, with the reading named. */
static void alt_reading_finding(struct an *an, const struct an_stmt *st, unsigned pm)
{
	const char *how = st->s->dialect == SQ_PG ? "standard_conforming_strings = off"
			  : (pm & SQ_M_ANSI_QUOTES) != (st->s->lexmode & SQ_M_ANSI_QUOTES) ? "sql_mode ANSI_QUOTES"
			  : "sql_mode NO_BACKSLASH_ESCAPES";
	if (st->s->dialect == SQ_PG && !(pm & SQ_M_BACKSLASH))
		how = "standard_conforming_strings = on";
	else if (st->s->dialect == SQ_MYSQL && (pm & SQ_M_BACKSLASH) && !strcmp(how, "sql_mode NO_BACKSLASH_ESCAPES"))
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

/* Complete part idx of p with result r (NULL: outcome unknown). */
/* ---- what PREPARE / EXECUTE / DO run (issue #20 item 2) ----
 * The verb rules (destructive, privilege, export, sensitive access) judge the statement a
 * SQL-level EXECUTE runs (the text its PREPARE named, kept in the session's statement
 * cache with the protocol's), and each statement of a PostgreSQL DO block, including the
 * string an EXECUTE in it runs when that string is literals joined by || or a format()
 * template (dynamic parts read as a name). The findings belong to the outer statement. */
static const struct an_ps *ps_find(struct an_session *s, struct strv name);

static int in_ready(struct an *an)
{
	if (an->in_toks)
		return 1;
	size_t cap = (size_t)an->cfg.max_sql_bytes + 4;
	an->in_toks = malloc(2 * AN_IN_TOKS * sizeof *an->in_toks);
	an->in_norm = malloc(SQ_MAX_NORM + 1);
	an->in_masked = malloc(cap);
	an->in_text = malloc(cap);
	an->in_fold = malloc(cap);
	if (an->in_toks && an->in_norm && an->in_masked && an->in_text && an->in_fold)
		return 1;
	free(an->in_toks), free(an->in_norm), free(an->in_masked), free(an->in_text), free(an->in_fold);
	an->in_toks = NULL, an->in_norm = an->in_masked = an->in_text = an->in_fold = NULL;
	return 0;
}

/* Statement name at token i: PostgreSQL folds an unquoted name to lower case, MySQL's
 * names are case-insensitive. */
static size_t in_name(const struct an_session *s, const char *base, const struct sq_tok *t, char *buf, size_t cap)
{
	if (t->type != SQ_WORD && t->type != SQ_QIDENT)
		return 0;
	size_t n = sq_literal_text(base, t, buf, cap);
	if (t->type == SQ_WORD || s->dialect == SQ_MYSQL)
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]);
	return n;
}

/* Run the verb rules on tokens [first, end) of base, as part of outer's statement. */
static void in_judge(struct an *an, const struct an_stmt *outer, const char *base, const struct sq_tok *toks,
		     int first, int end, const char *via)
{
	if (first >= end || an->n_drafts >= AN_MAX_FINDINGS_STMT)
		return;
	struct sq_info info;
	memset(&info, 0, offsetof(struct sq_info, tables));
	sq_normalize(base, toks, first, end, outer->s->dialect, an->in_norm, SQ_MAX_NORM + 1, &info);
	if (!info.verb[0])
		return;
	struct an_masked m = { an, 0 };
	struct an_stmt st = *outer;
	st.sql = base + toks[first].off;
	st.base = base;
	st.toks = toks;
	st.first = first;
	st.end = end;
	st.info = &info;
	st.norm = an->in_norm;
	st.masked = &m;
	char *outer_masked = an->masked; /* the outer statement's stored text stays intact */
	an->masked = an->in_masked;
	int d0 = an->n_drafts;
	for (const struct an_detector *const *d = an->det_stmt; *d; d++)
		if ((*d)->kind == AN_K_DESTRUCTIVE_STATEMENT || (*d)->kind == AN_K_PRIVILEGE_CHANGE ||
		    (*d)->kind == AN_K_DATA_EXPORT || (*d)->kind == AN_K_SENSITIVE_ACCESS)
			(*d)->on_statement(an, &st);
	an->masked = outer_masked;
	for (int i = d0; i < an->n_drafts; i++) {
		char *sm = an->drafts[i].summary;
		size_t k = strlen(sm);
		snprintf(sm + k, sizeof an->drafts[i].summary - k, " (%s)", via);
		memcpy(an->drafts[i].fp, info.fingerprint, sizeof an->drafts[i].fp);
	}
}

/* Lex text (an->in_fold or in_text) into token half h and judge it as one statement. */
static void in_judge_text(struct an *an, const struct an_stmt *outer, const char *text, size_t len, int h,
			  const char *via)
{
	int trunc = 0;
	struct sq_tok *toks = an->in_toks + h * AN_IN_TOKS;
	int n = sq_lex_mode(text, len, outer->s->dialect, outer->s->lexmode, toks, AN_IN_TOKS, &trunc);
	in_judge(an, outer, text, toks, 0, n, via);
}

/* The text an EXECUTE in a DO block runs: literals joined by ||, format()'s template (its
 * %I / %s / %L read as a name), any other operand read as a name. NUL-terminated in
 * an->in_fold; 0 when nothing literal is in it. */
static size_t in_fold(struct an *an, const char *base, const struct sq_tok *t, int i, int end)
{
	size_t cap = (size_t)an->cfg.max_sql_bytes, o = 0;
	int lit = 0;
	char *out = an->in_fold;
	while (i < end && o + 4 < cap) {
		const struct sq_tok *k = &t[i];
		if ((sq_kw(k, SQW_USING) || sq_kw(k, SQW_INTO)) && k->depth == t[end - 1].depth)
			break;
		if (k->type == SQ_STRING) {
			o += sq_literal_text(base, k, out + o, cap - o);
			lit = 1;
			i++;
		} else if (k->type == SQ_WORD && sq_word(base, k, "format") && i + 2 < end && t[i + 1].type == SQ_PUNCT &&
			   base[t[i + 1].off] == '(' && t[i + 2].type == SQ_STRING) {
			size_t a = o;
			o += sq_literal_text(base, &t[i + 2], out + o, cap - o);
			for (size_t j = a; j + 1 < o; j++)
				if (out[j] == '%' && (out[j + 1] == 'I' || out[j + 1] == 's' || out[j + 1] == 'L'))
					out[j] = ' ', out[j + 1] = 'x';
			lit = 1;
			int depth = t[i + 1].depth; /* past the call */
			for (i += 2; i < end && !(t[i].depth == depth + 1 && t[i].type == SQ_PUNCT && base[t[i].off] == ')');)
				i++;
			i++;
		} else if (k->type == SQ_OP && k->len == 2 && base[k->off] == '|' && base[k->off + 1] == '|') {
			i++;
		} else { /* a variable, a call: one name for the whole operand */
			int depth = k->depth;
			out[o++] = ' ', out[o++] = 'x', out[o++] = ' ';
			for (i++; i < end && !(t[i].depth == depth && t[i].type == SQ_OP && t[i].len == 2 &&
					       base[t[i].off] == '|' && base[t[i].off + 1] == '|');)
				i++;
		}
	}
	out[o] = 0;
	return lit ? o : 0;
}

/* A plpgsql statement starts after the block words before it: BEGIN, ELSE, LOOP, EXCEPTION,
 * DECLARE, a <<label>>, and the headers IF/ELSIF/WHEN/WHILE ... THEN/LOOP, FOR ... LOOP. */
static int in_plpgsql_start(const char *b, const struct sq_tok *t, int i, int end)
{
	while (i < end) {
		const struct sq_tok *k = &t[i];
		if (sq_kw(k, SQW_BEGIN) || sq_kw(k, SQW_ELSE) || sq_kw(k, SQW_LOOP) || sq_word(b, k, "EXCEPTION") ||
		    sq_word(b, k, "DECLARE")) {
			i++;
		} else if (k->type == SQ_OP && k->len >= 2 && b[k->off] == '<' && b[k->off + 1] == '<') {
			while (i < end && !(t[i].type == SQ_OP && t[i].len >= 2 && b[t[i].off] == '>'))
				i++;
			i++;
		} else if (sq_kw(k, SQW_IF) || sq_word(b, k, "ELSIF") || sq_kw(k, SQW_WHEN) || sq_kw(k, SQW_WHILE) ||
			   sq_kw(k, SQW_FOR) || sq_word(b, k, "FOREACH")) {
			int depth = k->depth;
			for (i++; i < end && !(t[i].depth == depth && (sq_kw(&t[i], SQW_THEN) || sq_kw(&t[i], SQW_LOOP)));)
				i++;
			if (i >= end)
				return end; /* a header without its THEN / LOOP: nothing to run */
			i++;
		} else {
			break;
		}
	}
	return i;
}

static void in_do_block(struct an *an, const struct an_stmt *outer, int v)
{
	const char *b = outer->base;
	const struct sq_tok *t = outer->toks;
	int i = v + 1;
	while (i < outer->end && t[i].type != SQ_STRING)
		i++; /* LANGUAGE x before the body */
	if (i >= outer->end || !in_ready(an))
		return;
	size_t n = sq_literal_text(b, &t[i], an->in_text, (size_t)an->cfg.max_sql_bytes);
	int trunc = 0;
	struct sq_tok *bt = an->in_toks;
	int nb = sq_lex_mode(an->in_text, n, SQ_PG, outer->s->lexmode, bt, AN_IN_TOKS, &trunc);
	for (int a = 0; a < nb && an->n_drafts < AN_MAX_FINDINGS_STMT;) {
		int e = a;
		while (e < nb && !(bt[e].type == SQ_PUNCT && an->in_text[bt[e].off] == ';' && bt[e].depth == 0))
			e++;
		int f = in_plpgsql_start(an->in_text, bt, a, e);
		while (f < e && bt[f].type == SQ_COMMENT)
			f++;
		if (f < e && sq_kw(&bt[f], SQW_EXECUTE)) {
			size_t fl = in_fold(an, an->in_text, bt, f + 1, e);
			if (fl)
				in_judge_text(an, outer, an->in_fold, fl, 1, "EXECUTE in a DO block");
		} else if (f < e && !sq_word(an->in_text, &bt[f], "END")) {
			in_judge(an, outer, an->in_text, bt, f, e, "in a DO block");
		}
		a = e + 1;
	}
}

static void in_statement(struct an *an, struct an_session *s, const struct an_stmt *st)
{
	const char *b = st->base;
	const struct sq_tok *t = st->toks;
	int vk = st->info->verb_kw, v = -1;
	for (int i = st->first; i < st->end; i++) /* the verb: its word at the least depth */
		if (sq_kw(&t[i], vk) && (v < 0 || t[i].depth < t[v].depth))
			v = i;
	if (v < 0 || v + 1 >= st->end)
		return;
	if (vk == SQW_DO) {
		if (s->dialect == SQ_PG)
			in_do_block(an, st, v);
		return;
	}
	char name[256];
	size_t nl = in_name(s, b, &t[v + 1], name, sizeof name);
	if (!nl || !in_ready(an))
		return;
	if (vk == SQW_PREPARE) { /* remembered when it did not fail: EXECUTE (SQL or protocol) finds it */
		if (st->outcome == EV_OUT_ERROR)
			return;
		for (int i = v + 2; i < st->end; i++) {
			if (s->dialect == SQ_PG && sq_kw(&t[i], SQW_AS) && t[i].depth == t[v].depth && i + 1 < st->end) {
				const struct sq_tok *last = &t[st->end - 1];
				size_t off = t[i + 1].off, tl = last->off + last->len - off;
				an_ps_put(an, s, name, nl, b + off, tl, 0);
				return;
			}
			if (s->dialect == SQ_MYSQL && sq_kw(&t[i], SQW_FROM) && i + 1 < st->end && t[i + 1].type == SQ_STRING) {
				size_t tl = sq_literal_text(b, &t[i + 1], an->in_text, (size_t)an->cfg.max_sql_bytes);
				an_ps_put(an, s, name, nl, an->in_text, tl, 0);
				return;
			}
		}
		return;
	}
	if (vk == SQW_EXECUTE) {
		const struct an_ps *ps = ps_find(s, (struct strv){ name, nl });
		if (!ps)
			return;
		char via[300];
		snprintf(via, sizeof via, "EXECUTE of %s", name);
		size_t tl = ps->text_len < (size_t)an->cfg.max_sql_bytes ? ps->text_len : (size_t)an->cfg.max_sql_bytes;
		memcpy(an->in_fold, ps->buf + ps->name_len + 1, tl); /* the cache may change while judged */
		an->in_fold[tl] = 0;
		in_judge_text(an, st, an->in_fold, tl, 1, via);
	}
}

static void complete_part(struct an *an, struct an_session *s, struct an_pending *p, int idx, const struct ev *r)
{
	struct sq_info info;
	struct an_stmt st;
	struct an_masked masked = { an, 0 };
	char user[AN_STR_MAX] = "";
	memset(&st, 0, sizeof st);
	memset(&info, 0, offsetof(struct sq_info, tables)); /* tables: read up to n_tables only */
	st.s = s;
	st.kind = p->kind;
	st.part = idx;
	st.n_parts = p->n_parts;
	st.first_verb = p->first_verb;
	st.ts = p->ts;
	st.done_ts = r ? r->ts : an->now;
	st.outcome = r ? r->u.result.outcome : EV_OUT_UNKNOWN;
	st.rows = r ? r->u.result.rows : -1;
	st.bytes = r ? r->u.result.bytes : 0;
	st.from_params = p->n_params > 0;
	if (p->data_move && p->data_move_part == idx) {
		st.data_move = 1;
		st.data_move_to_client = p->data_move_to_client;
		an_strcpy(st.data_move_what, sizeof st.data_move_what, p->data_move_what);
	}
	if (r) {
		scopy(st.error_code, sizeof st.error_code, r->u.result.error_code);
		scopy(st.tag, sizeof st.tag, r->u.result.tag);
	}
	an->n_drafts = 0;
	an->norm[0] = an->masked[0] = 0;
	int n = 0, nops = 0;
	if (p->sql) {
		int trunc = 0;
		const char *text = p->sql + p->part_off[idx];
		size_t len = p->part_len[idx];
		struct an_ncache *c = NULL;
		uint64_t h = 0;
		/* the tokens are read in place: the cache entry's, the pending entry's (both stay
		 * put until this returns) or freshly lexed into an->toks */
		const struct sq_tok *toks = an->toks;
		unsigned pm = p->part_mode ? p->part_mode[idx] : s->lexmode, lm = pm & SQ_M_ALL;
		int dkey = (int)s->dialect | (int)(lm << 4); /* the cache's texts were read in this mode */
		if (p->kind == EV_Q_EXECUTE && an->ncache && len <= AN_NCACHE_MAX_TEXT) {
			h = sq_hash_mem(text, len, SQ_HASH_INIT);
			c = &an->ncache[h % AN_NCACHE_SLOTS];
		}
		if (c && c->text && c->hash == h && c->len == len && c->dialect == dkey &&
		    memcmp(c->text, text, len) == 0) {
			n = c->n;
			toks = c->toks;
			memcpy(an->norm, c->norm, c->norm_len + 1);
			memcpy(an->masked, c->masked, c->masked_len + 1);
			masked.ready = 1;
			info_copy(&info, &c->info);
		} else {
			if (p->toks && idx == 0) { /* lexed when the query arrived */
				n = p->n_toks;
				toks = p->toks;
			} else {
				n = sq_lex_mode(text, len, s->dialect, lm, an->toks, SQ_MAX_TOKENS, &trunc);
			}
			normalize_cached(an, text, toks, n, s->dialect, &info);
			info.truncated |= trunc | !!(pm & PART_CUT);
			/* C strings: consumers read them up to the NUL */
			if (c && !info.truncated && n <= AN_NCACHE_MAX_TOKS) {
				/* cached: masked once for every later execute of the text */
				mask_text(an, text, toks, 0, n, info.secret);
				masked.ready = 1;
				ncache_put(c, h, text, len, dkey, toks, n, an->norm, strlen(an->norm),
					   an->masked, strlen(an->masked), &info);
			}
		}
		info.truncated |= p->truncated;
		if (info.truncated)
			an->st.sql_truncated++;
		st.sql = st.base = text;
		st.toks = toks;
		st.first = 0;
		st.end = n;
		st.info = &info;
		st.norm = an->norm;
		st.masked = &masked;
		if (idx == 0)
			an_strcpy(p->first_verb, sizeof p->first_verb, info.verb);
		if (s->dialect == SQ_MYSQL && info.verb_kw == SQW_SET && st.outcome != EV_OUT_ERROR)
			sql_mode_seen(s, text, toks, n, st.outcome == EV_OUT_OK);
		/* markers set by the statement take effect when it did not fail; a failed one
		 * leaves the marker unknown */
		struct attr_op ops[ATTR_MAX_OPS];
		nops = attr_statement(text, toks, 0, n, s->dialect, &an->cfg, p->params, p->n_params, ops,
				      ATTR_MAX_OPS);
		apply_ops(an, s, ops, nops, st.outcome == EV_OUT_ERROR);
		if (s->dialect == SQ_PG && st.tag[0] == 'R' && !strcmp(st.tag, "ROLLBACK"))
			rollback_seen(s, toks, n, text);
		if (p->msg_src != AN_SRC_COMMENT && sq_has(&info, SQW__COMMENT) && /* no comment, no end user in one */
		    attr_comment_user(text, toks, 0, n, &an->cfg.comment_keys, user, sizeof user, st.traceparent,
				      sizeof st.traceparent)) {
			st.end_user = user;
			st.end_user_source = "comment";
		}
	}
	if (!st.end_user && p->msg_src) { /* the message's attribution (below) */
		if (p->msg_src != AN_SRC_UNKNOWN) {
			st.end_user = p->msg_user;
			st.end_user_source = an_src_name(p->msg_src);
		}
	} else if (!st.end_user) {
		const struct an_marker *m = s->txn_marker.src ? &s->txn_marker
					  : s->sess_marker.src ? &s->sess_marker
					  : s->attr_marker.src ? &s->attr_marker : NULL;
		if (m && m->src != AN_SRC_UNKNOWN) {
			st.end_user = m->value;
			st.end_user_source = an_src_name(m->src);
		} else if (s->db_user[0] && !an_is_service_account(&an->cfg, s->db_user)) {
			st.end_user = s->db_user;
			st.end_user_source = "db_user";
		}
	}
	/* One message, one attribution: from the first statement of a split message that is
	 * not a marker or transaction statement, its end user is every later part's (a stacked
	 * statement cannot rename itself) */
	if (p->msg_user && !p->msg_src && !nops && !txn_verb(info.verb)) {
		an_strcpy(p->msg_user, AN_STR_MAX, st.end_user ? st.end_user : "");
		p->msg_src = st.end_user ? src_of(st.end_user_source) : AN_SRC_UNKNOWN;
	}
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

	/* a joined server-leg statement is judged on its client leg, under its real identity */
	int judge = s->pool_role != AN_POOL_SERVER || !pool_joined(an, &p->pj);
	if (judge)
		for (const struct an_detector *const *d = an->det_stmt; *d; d++)
			(*d)->on_statement(an, &st);
	if (judge && p->sql && n && p->kind == EV_Q_SIMPLE &&
	    (info.verb_kw == SQW_PREPARE || info.verb_kw == SQW_EXECUTE || info.verb_kw == SQW_DO))
		in_statement(an, s, &st);
	if (judge && p->part_mode && (p->part_mode[idx] & PART_ALT) && p->sql && !p->alt_flagged) {
		p->alt_flagged = 1; /* once per message: its first statement of the other reading */
		alt_reading_finding(an, &st, p->part_mode[idx]);
	}

	int64_t sid = 0;
	if (an->cfg.audit == AN_AUDIT_ALL || an->n_drafts > 0) {
		char *pj = NULL;
		if (an->cfg.keep_literals && p->n_params > 0 && p->sql && !info.secret)
			pj = params_json(p);
		if (s->dirty)
			put_session(an, s, NULL);
		sid = an->next_statement++;
		struct rec_statement rs = {
			.id = sid,
			.session_id = s->id,
			.ts = p->ts,
			.end_user = st.end_user,
			.end_user_source = st.end_user_source,
			.verb = p->sql && info.verb[0] ? info.verb : NULL,
			.fingerprint = p->sql ? info.fingerprint : NULL,
			.sql = p->sql ? an_stmt_masked(&st) : NULL,
			.params = pj,
			.outcome = st.outcome == EV_OUT_OK ? "ok" : st.outcome == EV_OUT_ERROR ? "error" : "unknown",
			.error_code = nz(st.error_code),
			.rows = st.rows >= 0 ? st.rows : -1,
			.duration_us = r && r->ts >= p->ts ? r->ts - p->ts : -1,
			.protocol = s->protocol,
			.client_ip = s->client_ip,
			.db_user = nz(s->db_user),
			.database = nz(s->database),
			.application = nz(s->application),
			.client_port = s->client_port,
			.server_ip = s->server_ip,
			.server_port = s->server_port,
		};
		struct rec rec = { .type = REC_STATEMENT, .u.statement = &rs };
		if (!s->pool_role || !pool_put(an, s, &p->pj, &rs)) /* 1: held until its client is known */
			put_all(an, &rec);
		an->st.statements_stored++;
		free(pj);
	}
	an->st.statements++;
	for (int i = 0; i < an->n_drafts; i++) {
		struct an_finding_draft *d = &an->drafts[i];
		an->repeat_fp = d->fp[0] ? d->fp : NULL;
		put_finding(an, s, sid, st.done_ts, d->kind, d->sev, d->summary, d->evidence, &st);
		an->repeat_fp = NULL;
		d->fp[0] = 0;
		free(d->evidence);
		d->evidence = NULL;
	}
	an->n_drafts = 0;
}

/* Complete the remaining parts of the pending entry at ring index i with outcome unknown
 * and remove it (entries are removed from the head only; others are marked done). */
static void pend_finish(struct an *an, struct an_session *s, struct an_pending *p, int execute_rest)
{
	if (execute_rest)
		for (; p->next < p->n_parts; p->next++)
			complete_part(an, s, p, p->next, NULL);
	else
		for (; p->next < p->n_parts; p->next++) {
			/* the other reading's parts: the error may belong to that reading */
			if (p->part_mode && (p->part_mode[p->next] & PART_ALT))
				complete_part(an, s, p, p->next, NULL);
			else
				an->st.statements_skipped++;
		}
	pending_free(s, p);
}

static void pend_pop_done(struct an_session *s)
{
	while (s->pend_n > 0 && pend_at(s, 0)->n_parts == 0) {
		s->pend_head = s->pend_head + 1 < s->pend_cap ? s->pend_head + 1 : 0;
		s->pend_n--;
	}
}

static void pend_finish_all(struct an *an, struct an_session *s)
{
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = pend_at(s, i);
		if (p->n_parts)
			pend_finish(an, s, p, 1);
	}
	s->pend_n = 0;
	s->pend_head = 0;
}

/* ---- prepared statements (issue #18) ---- */

/* Learnt from executions of named statements whose text the decoder knows (PostgreSQL
 * statement names, MySQL statement ids), so nothing in the decoders changes. Entries are
 * replaced oldest first. Bounded per
 * session (AN_PS_MAX, max_sql_bytes each) and, over all sessions, by limits.max_parked_mb. */
void an_ps_put(struct an *an, struct an_session *s, const char *name, size_t nlen, const char *text, size_t tlen,
	       int trunc)
{
	if (nlen == 0 || nlen > 255)
		return;
	if (tlen > (size_t)an->cfg.max_sql_bytes) {
		tlen = (size_t)an->cfg.max_sql_bytes;
		trunc = 1;
	}
	int slot = -1;
	for (int i = 0; i < s->n_ps; i++)
		if (s->ps[i].name_len == nlen && memcmp(s->ps[i].buf, name, nlen) == 0) {
			slot = i;
			break;
		}
	if (slot < 0 && s->n_ps < AN_PS_MAX) {
		if (!s->ps && !(s->ps = calloc(AN_PS_MAX, sizeof *s->ps))) {
			an->st.prepared_dropped++;
			return;
		}
		slot = s->n_ps++;
	} else if (slot < 0) {
		uint32_t oldest = UINT32_MAX;
		for (int i = 0; i < s->n_ps; i++)
			if (s->ps[i].used < oldest) {
				oldest = s->ps[i].used;
				slot = i;
			}
		an->st.prepared_dropped++;
	}
	struct an_ps *p = &s->ps[slot];
	uint64_t cap = (uint64_t)an->cfg.max_parked_mb << 20;
	if (an->ps_bytes - (p->buf ? p->name_len + p->text_len + 2 : 0) + nlen + tlen + 2 > cap) {
		an->st.prepared_dropped++;
		return;
	}
	char *buf = malloc(nlen + tlen + 2);
	if (!buf) {
		an->st.prepared_dropped++;
		return;
	}
	if (p->buf)
		an->ps_bytes -= p->name_len + p->text_len + 2;
	free(p->buf);
	memcpy(buf, name, nlen);
	buf[nlen] = 0;
	memcpy(buf + nlen + 1, text, tlen);
	buf[nlen + 1 + tlen] = 0;
	p->buf = buf;
	p->name_len = (uint32_t)nlen;
	p->text_len = (uint32_t)tlen;
	p->trunc = (uint8_t)(trunc != 0);
	p->used = ++s->ps_clock;
	an->ps_bytes += nlen + tlen + 2;
	s->state_dirty = 1;
}

void an_ps_free(struct an *an, struct an_session *s)
{
	for (int i = 0; i < s->n_ps; i++) {
		an->ps_bytes -= s->ps[i].name_len + s->ps[i].text_len + 2;
		free(s->ps[i].buf);
	}
	free(s->ps);
	s->ps = NULL;
	s->n_ps = 0;
}

/* An application executes the same few statements: the last one found is tried first. */
static const struct an_ps *ps_find(struct an_session *s, struct strv name)
{
	for (int k = 0, i = s->ps_last < s->n_ps ? s->ps_last : 0; k < s->n_ps; k++, i = i + 1 < s->n_ps ? i + 1 : 0) {
		if (s->ps[i].name_len == name.n && memcmp(s->ps[i].buf, name.p, name.n) == 0) {
			s->ps_last = i;
			return &s->ps[i];
		}
	}
	return NULL;
}

/* The pending ring starts at 8 entries and doubles up to max_pending: a session waiting
 * for one result at a time costs 2 KiB, not 70 KiB (256 entries). Entries hold no pointers
 * into the ring, so they move by copy; nothing holds an entry across on_query. */
static int pend_grow(struct an_session *s, int max)
{
	int cap = s->pend_cap ? s->pend_cap * 2 : 8;
	if (cap > max)
		cap = max;
	struct an_pending *n = calloc((size_t)cap, sizeof *n);
	if (!n)
		return -ENOMEM;
	for (int i = 0; i < s->pend_n; i++)
		n[i] = *pend_at(s, i);
	free(s->pend);
	s->pend = n;
	s->pend_head = 0;
	s->pend_cap = cap;
	return 0;
}

/* Split sql[0..len) read with lexer mode `mode` into out (offsets into sql), each part's
 * mode into omode. The whole text is split, past the token cap too: lexing resumes after the
 * last token (a statement longer than the cap ends there: the safe side, more statements
 * seen, never fewer). MySQL parses each statement after running the previous one, so a
 * SET sql_mode changes how the rest is read. *single: one pass covered everything, an->toks
 * hold its tokens. */
static int split_pass(struct an *an, struct an_session *s, const char *sql, size_t len, unsigned mode,
		      struct sq_range *out, uint8_t *omode, int *single, int *ntok)
{
	int np = 0, cont = 0;
	size_t off = 0;
	*single = 1;
	while (off < len && np < AN_MAX_PARTS) {
		int tr = 0, more = 0;
		int n = sq_lex_mode(sql + off, len - off, s->dialect, mode, an->toks, SQ_MAX_TOKENS, &tr);
		int k = sq_split(sql + off, an->toks, n, out + np, AN_MAX_PARTS - np, &more);
		*ntok = n;
		if (cont && k > 0 && out[np].tok_first == 0) {
			/* the statement cut at the token cap goes on up to the first ';' */
			out[np - 1].len = (uint32_t)(off + out[np].off + out[np].len - out[np - 1].off);
			memmove(out + np, out + np + 1, (size_t)(k - 1) * sizeof *out);
			k--;
			cont = 0;
			if (k == 0 && tr) {
				const struct sq_tok *z = &an->toks[n - 1];
				out[np - 1].len = (uint32_t)(off + z->off + z->len - out[np - 1].off);
				cont = 1;
				*single = 0;
				off += z->off + z->len;
				continue;
			}
		}
		cont = 0;
		size_t next = len;
		if (tr && n > 0) {
			const struct sq_tok *z = &an->toks[n - 1];
			next = off + z->off + z->len; /* where lexing stopped */
			if (k > 1 && !more) {
				k--; /* the last part may go on: lex it again from its start */
				next = off + out[np + k].off;
			} else if (k >= 1) {
				struct sq_range *r = &out[np + k - 1];
				r->len = z->off + z->len - r->off;
				cont = !more;
			}
		}
		for (int i = 0; i < k; i++) {
			out[np + i].off += (uint32_t)off;
			omode[np + i] = (uint8_t)mode;
		}
		if (s->dialect == SQ_MYSQL) {
			for (int i = 0; i < k; i++) {
				unsigned m = mode;
				const struct sq_range *r = &out[np + i];
				if (!(i + 1 < k || next < len) || sq_sets_sql_mode(sql + off, an->toks, r->tok_first,
										   r->tok_end, &m) != 1 || m == mode)
					continue;
				mode = m; /* read the rest again */
				k = i + 1;
				next = r->off + r->len;
				break;
			}
		}
		np += k;
		if (next <= off || more || next >= len)
			break;
		*single = 0;
		off = next;
	}
	return np;
}

/* The parts of a simple query into an->parts / an->part_mode: the session's reading, and
 * where a setting that changes lexing is not known (the server's initial sql_mode, a
 * standard_conforming_strings not yet reported) the other reading's parts that differ,
 * marked PART_ALT: a statement the server may run is never lost to our guess. */
static int split_reading(struct an *an, struct an_session *s, const char *sql, size_t len, int *single,
			 int *ntok)
{
	int n_alt = 0, alt_single, n_run[2] = { 0, 0 };
	unsigned mode = s->lexmode, unk = s->lexmode_unknown;
	static const unsigned bits[] = { SQ_M_BACKSLASH, SQ_M_ANSI_QUOTES };
	for (size_t b = 0; b < 2; b++) {
		if (!(unk & bits[b]) || (bits[b] == SQ_M_ANSI_QUOTES && s->dialect != SQ_MYSQL) ||
		    !memchr(sql, bits[b] == SQ_M_BACKSLASH ? '\\' : '"', len))
			continue;
		int k = split_pass(an, s, sql, len, mode ^ bits[b], an->parts, an->part_mode, &alt_single, ntok);
		for (int i = 0; i < k && n_alt < AN_MAX_PARTS; i++) {
			an->alt_parts[n_alt] = an->parts[i];
			an->alt_mode[n_alt++] = an->part_mode[i];
			n_run[b]++;
		}
	}
	int np = split_pass(an, s, sql, len, mode, an->parts, an->part_mode, single, ntok);
	/* A statement of the other reading that starts where none of ours does: the server may
	 * run it. Each list runs in text order, so merge walks find them (the parts appended
	 * from the first reading are walked too, so that both readings add it once). */
	int np0 = np, i = 0;
	for (int r = 0; r < 2; r++) {
		int j = 0, np1 = np, j1 = np0;
		for (int e = i + n_run[r]; i < e; i++) {
			const struct sq_range *a = &an->alt_parts[i];
			while (j < np0 && an->parts[j].off < a->off)
				j++;
			while (r == 1 && j1 < np1 && an->parts[j1].off < a->off)
				j1++;
			if ((j < np0 && an->parts[j].off == a->off) || (r == 1 && j1 < np1 && an->parts[j1].off == a->off) ||
			    np >= AN_MAX_PARTS)
				continue;
			if (np - np0 >= AN_MAX_ALT_PARTS) {
				an->st.sql_truncated++; /* the other reading's further statements */
				break;
			}
			an->parts[np] = *a;
			an->part_mode[np++] = (uint8_t)(an->alt_mode[i] | PART_ALT);
			*single = 0;
		}
	}
	return np;
}

static void on_query(struct an *an, struct an_session *s, const struct ev *e)
{
	const struct ev_query *q = &e->u.query;
	struct strv qsql = q->sql_known && q->sql.p ? q->sql : STRV_NULL;
	int qtrunc = q->truncated;
	if (q->kind == EV_Q_PREPARE)
		return;
	if (q->kind == EV_Q_EXECUTE && q->stmt_name.n) {
		const struct an_ps *ps = ps_find(s, q->stmt_name);
		if (qsql.p && (!ps || ps->text_len != qsql.n || memcmp(ps->buf + ps->name_len + 1, qsql.p, qsql.n)))
			an_ps_put(an, s, q->stmt_name.p, q->stmt_name.n, qsql.p, qsql.n, qtrunc);
		else if (!qsql.p && ps) { /* prepared before the decoder (re)started: parked, restored */
			qsql = (struct strv){ ps->buf + ps->name_len + 1, ps->text_len };
			qtrunc = ps->trunc;
		}
	}
	int max = an->cfg.max_pending > 0 ? an->cfg.max_pending : 1;
	if (!s->pend || (s->pend_n >= s->pend_cap && s->pend_cap < max)) {
		if (pend_grow(s, max) != 0) {
			an->st.pending_dropped++;
			return;
		}
	}
	const char *sql = qsql.p;
	size_t full = sql ? qsql.n : 0, len = full;
	int trunc = qtrunc;
	size_t pbytes = 0;
	for (size_t i = 0; i < q->n_params; i++)
		pbytes += q->params[i].text.n < PARAM_ONE_MAX ? q->params[i].text.n + 1 : PARAM_ONE_MAX + 1;
	if (pbytes > PARAM_BYTES_MAX)
		pbytes = PARAM_BYTES_MAX;
	/* Split a simple query first (the whole text, beyond max_sql_bytes too), so one
	 * allocation can be sized; each part then keeps what the text budget allows. */
	struct sq_range *parts = an->parts;
	int n_parts = 1, keep_toks = 0, n_toks = 0;
	size_t stored = 0, cap = (size_t)an->cfg.max_sql_bytes;
	size_t head = AN_PART_HEAD < cap ? AN_PART_HEAD : cap;
	if (sql && q->kind == EV_Q_SIMPLE) {
		int single = 0, tr;
		n_parts = split_reading(an, s, sql, full, &single, &n_toks);
		if (n_parts == 0)
			return; /* only comments or whitespace: nothing is executed */
		/* the message's comments name its end user (below): its tokens, the first
		 * SQ_MAX_TOKENS of them when the split took several passes */
		if (n_parts > 1 && !single)
			n_toks = sq_lex_mode(sql, full, s->dialect, s->lexmode, an->toks, SQ_MAX_TOKENS, &tr);
		/* the usual case, one statement: keep its tokens for complete_part */
		keep_toks = single && n_parts == 1 && parts[0].tok_first == 0 && parts[0].tok_end <= AN_PEND_MAX_TOKS &&
			    parts[0].len <= cap && !(an->part_mode[0] & PART_ALT);
		for (int i = 0; i < n_parts; i++) {
			size_t keep = parts[i].len, left = stored < cap ? cap - stored : 0;
			if (keep > left) /* what the budget leaves, at least the head (verb, first bytes) */
				keep = left > head ? left : head < keep ? head : keep;
			if (keep < parts[i].len || (trunc && i == n_parts - 1))
				an->part_mode[i] |= PART_CUT;
			parts[i].len = (uint32_t)keep;
			stored += keep;
		}
		len = stored;
	} else {
		parts[0] = (struct sq_range){ 0, (uint32_t)len, 0, 0 };
		an->part_mode[0] = s->lexmode;
		if (len > cap) {
			len = cap;
			trunc = 1;
			parts[0].len = (uint32_t)len;
		}
		stored = len;
	}
	size_t cost = len + pbytes + sizeof(struct an_pending);
	if (s->pend_n >= s->pend_cap || s->pend_bytes + cost > (size_t)an->cfg.max_pending_bytes) {
		an->st.pending_dropped++;
		return;
	}
	size_t ntok = keep_toks ? (size_t)parts[0].tok_end : 0;
	size_t nparam = q->n_params;
	size_t size = nparam * sizeof(struct attr_val) + ntok * sizeof(struct sq_tok) +
		      2 * (size_t)n_parts * sizeof(uint32_t) + (size_t)n_parts + (nparam ? pbytes : 0) +
		      (sql ? len + 1 : 0) + (n_parts > 1 ? AN_STR_MAX : 0);
	struct an_pending *p = pend_at(s, s->pend_n);
	memset(p, 0, sizeof *p);
	p->id = q->id;
	p->kind = q->kind;
	p->ts = e->ts;
	p->truncated = q->kind != EV_Q_SIMPLE && trunc;
	size_t need = size ? size : 1;
	if (s->pend_spare && s->pend_spare_cap >= need) {
		p->block = s->pend_spare;
		p->block_cap = s->pend_spare_cap;
		s->pend_spare = NULL;
	} else {
		pend_spare_free(s); /* too small: this block, rounded up, becomes the next spare */
		p->block_cap = need < AN_PEND_KEEP / 4 ? AN_PEND_KEEP / 4 : need;
		p->block = malloc(p->block_cap);
	}
	if (!p->block)
		goto fail;
	/* most aligned first: attr_val (pointers), tokens and offsets (4 bytes), then text */
	char *m = p->block;
	if (nparam) {
		p->params = (struct attr_val *)(void *)m;
		m += nparam * sizeof(struct attr_val);
	}
	if (ntok) {
		p->toks = (struct sq_tok *)(void *)m;
		p->n_toks = (int)ntok;
		m += ntok * sizeof(struct sq_tok);
		memcpy(p->toks, an->toks, ntok * sizeof *p->toks);
		if (parts[0].off) /* offsets relative to the part */
			for (size_t i = 0; i < ntok; i++)
				p->toks[i].off -= parts[0].off;
	}
	p->part_off = (uint32_t *)(void *)m;
	m += (size_t)n_parts * sizeof(uint32_t);
	p->part_len = (uint32_t *)(void *)m;
	m += (size_t)n_parts * sizeof(uint32_t);
	p->part_mode = (uint8_t *)m;
	m += (size_t)n_parts;
	p->n_parts = n_parts;
	if (nparam) {
		p->param_buf = m;
		m += pbytes;
	}
	if (n_parts > 1) {
		/* a comment anywhere in a split message names the end user of all its parts */
		p->msg_user = m;
		m += AN_STR_MAX;
		p->msg_user[0] = 0;
		for (int i = 0; i < n_toks; i++)
			if (an->toks[i].type == SQ_COMMENT) {
				if (attr_comment_user(sql, an->toks, 0, n_toks, &an->cfg.comment_keys, p->msg_user,
						      AN_STR_MAX, NULL, 0))
					p->msg_src = AN_SRC_COMMENT;
				break;
			}
	}
	if (sql) {
		/* each part's kept bytes, one after the other */
		p->sql = m;
		size_t o = 0;
		for (int i = 0; i < n_parts; i++) {
			memcpy(p->sql + o, sql + parts[i].off, parts[i].len);
			p->part_off[i] = (uint32_t)o;
			p->part_len[i] = parts[i].len;
			o += parts[i].len;
		}
		p->sql[o] = 0;
		p->sql_len = o;
	} else {
		p->part_off[0] = p->part_len[0] = 0;
	}
	memcpy(p->part_mode, an->part_mode, (size_t)n_parts);
	if (nparam > 0) {
		size_t o = 0;
		for (size_t i = 0; i < nparam; i++)
			p->params[i] = (struct attr_val){ NULL, 0 };
		for (size_t i = 0; i < nparam; i++) {
			const struct ev_bind *b = &q->params[i];
			if (b->is_null || !b->text.p)
				continue;
			size_t n = b->text.n < PARAM_ONE_MAX ? b->text.n : PARAM_ONE_MAX;
			if (o + n + 1 > pbytes)
				break; /* budget spent: later parameters are unknown */
			memcpy(p->param_buf + o, b->text.p, n);
			p->param_buf[o + n] = 0;
			p->params[i].text = p->param_buf + o;
			p->params[i].n = n;
			o += n + 1;
		}
		p->n_params = (int)nparam;
	}
	p->bytes = cost;
	s->pend_bytes += cost;
	s->pend_n++;
	if (s->pool_role)
		pool_query(an, s, q, qsql, e->ts, &p->pj);
	return;
fail:
	pending_free(s, p);
	an->st.pending_dropped++;
}

static void on_result(struct an *an, struct an_session *s, const struct ev *e)
{
	const struct ev_result *r = &e->u.result;
	int found = -1;
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = pend_at(s, i);
		if (p->n_parts && p->id == r->id) {
			found = i;
			break;
		}
	}
	if (found < 0) {
		/* no statement for it (picked up mid-stream, or dropped): still count it */
		if (r->outcome == EV_OUT_ERROR)
			s->errors++;
		return;
	}
	/* earlier statements still waiting lost their results: complete them as unknown */
	for (int i = 0; i < found; i++) {
		struct an_pending *p = pend_at(s, i);
		if (p->n_parts)
			pend_finish(an, s, p, 1);
	}
	struct an_pending *p = pend_at(s, found);
	if (r->outcome == EV_OUT_SKIPPED) {
		pend_finish(an, s, p, 0); /* counts it as skipped */
		pend_pop_done(s);
		return;
	}
	complete_part(an, s, p, p->next, e);
	p->next++;
	p->got_result = 1;
	if (p->next >= p->n_parts) {
		pending_free(s, p);
	} else if (r->outcome == EV_OUT_ERROR) {
		/* the rest of a multi-statement message is not executed after an error */
		pend_finish(an, s, p, 0);
	} else if (s->dialect == SQ_MYSQL && !r->more && p->kind == EV_Q_SIMPLE) {
		pend_finish(an, s, p, 1); /* server says done: our split had more parts */
	}
	pend_pop_done(s);
}

static void on_ready(struct an *an, struct an_session *s, const struct ev *e)
{
	if (e->u.ready.txn == 'I') {
		s->txn_marker.src = AN_SRC_NONE;
		s->txn_role[0] = 0;
		if (s->sess_changed || s->rolled_back) {
			/* a transaction that rolled back (ROLLBACK, or COMMIT of a failed one) undid
			 * the session SETs made in it */
			if (s->dialect == SQ_PG && (s->rolled_back || s->txn == 'E'))
				s->sess_marker = s->sess_at_idle;
			else
				s->sess_at_idle = s->sess_marker;
			s->sess_changed = s->rolled_back = 0;
		}
	}
	s->txn = e->u.ready.txn;
	/* ReadyForQuery ends the oldest simple query: its unmatched parts are completed as unknown
	 * (never dropped: a statement we could not match must still be visible) */
	for (int i = 0; i < s->pend_n; i++) {
		struct an_pending *p = pend_at(s, i);
		if (!p->n_parts)
			continue;
		if (p->got_result || p->kind == EV_Q_SIMPLE) {
			int simple = p->kind == EV_Q_SIMPLE;
			pend_finish(an, s, p, 1);
			if (simple)
				break;
		}
	}
	pend_pop_done(s);
	if (s->pool_role == AN_POOL_SERVER)
		pool_ready(an, s, e->u.ready.txn);
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
		scopy(k, sizeof k, su->params[i].key);
		scopy(v, sizeof v, su->params[i].val);
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
	scopy(s->db_user, sizeof s->db_user, su->user);
	scopy(s->database, sizeof s->database, su->database);
	scopy(s->application, sizeof s->application, su->application);
	s->ident_gen++;
	s->replication = su->replication;
	free(s->client_info);
	s->client_info = client_info_json(su);
	s->attr_marker.src = AN_SRC_NONE;
	if (s->application[0] && app_pattern_user(an, s->application, user, sizeof user))
		marker_set(&s->attr_marker, AN_SRC_APPNAME, user);
	/* a connect attribute naming the user is more explicit than a program name */
	for (int k = 0; k < an->cfg.connect_attrs.n; k++) {
		for (size_t i = 0; i < su->n_params; i++) {
			char key[64];
			scopy(key, sizeof key, su->params[i].key);
			if (strcasecmp(key, an->cfg.connect_attrs.v[k]) == 0 && su->params[i].val.n > 0) {
				scopy(user, sizeof user, su->params[i].val);
				marker_set(&s->attr_marker, AN_SRC_CONNATTR, user);
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
		scopy(s->server_version, sizeof s->server_version, e->u.hello.version);
		s->dirty = 1;
		break;
	case EV_AUTH:
		snprintf(s->auth_method, sizeof s->auth_method, "%s", e->u.auth.method ? e->u.auth.method : "");
		s->dirty = 1;
		break;
	case EV_LOGIN: {
		char code[16], msg[200];
		scopy(code, sizeof code, e->u.login.error_code);
		scopy(msg, sizeof msg, e->u.login.error_msg);
		s->login = e->u.login.ok ? 1 : -1;
		if (!e->u.login.ok)
			snprintf(s->login_error, sizeof s->login_error, "%s%s%s", code, code[0] && msg[0] ? ": " : "", msg);
		put_session(an, s, NULL);
		login_result(an, s, e->u.login.ok, s->db_user, code, e->ts);
		break;
	}
	case EV_TLS:
		s->tls = 1;
		if (e->u.tls.decrypted)
			s->tls_decrypted = e->u.tls.decrypted;
		put_session(an, s, NULL);
		break;
	case EV_PARAM: {
		char name[64], val[AN_STR_MAX], user[AN_STR_MAX];
		scopy(name, sizeof name, e->u.param.name);
		scopy(val, sizeof val, e->u.param.value);
		if (!strcmp(name, "server_version")) {
			scopy(s->server_version, sizeof s->server_version, e->u.param.value);
			s->dirty = 1;
			size_t vl = strlen(s->server_version);
			if (s->dialect == SQ_PG && vl > 8 && !strcmp(s->server_version + vl - 8, "/bouncer"))
				pool_learn(an, s); /* pgbouncer's admin console answered: a pooler */
		} else if (!strcmp(name, "application_name")) {
			if (!s->application[0] && val[0]) {
				snprintf(s->application, sizeof s->application, "%s", val);
				s->ident_gen++;
				s->dirty = 1;
			}
			/* the server reports the value in force: a marker when it names a user */
			if (val[0] && app_pattern_user(an, val, user, sizeof user) &&
			    !(s->attr_marker.src == AN_SRC_APPNAME && !strcmp(s->attr_marker.value, user)))
				marker_set(&s->sess_marker, AN_SRC_APPNAME, user);
			else if (s->sess_marker.src == AN_SRC_APPNAME)
				s->sess_marker.src = AN_SRC_NONE;
			pool_session_marker(s);
		} else if (!strcmp(name, "standard_conforming_strings")) {
			/* reported at login and on every change (SET, set_config, startup options) */
			if (!strcmp(val, "on") || !strcmp(val, "off")) {
				s->lexmode = (uint8_t)(val[1] == 'n' ? s->lexmode & ~SQ_M_BACKSLASH
								    : s->lexmode | SQ_M_BACKSLASH);
				s->lexmode_unknown &= (uint8_t)~SQ_M_BACKSLASH;
			}
		} else if (!strcmp(name, "session_authorization")) {
			if (val[0] && strcmp(val, s->db_user) != 0)
				snprintf(s->role, sizeof s->role, "%s", val);
		}
		break;
	}
	case EV_USER_CHANGE: {
		char user[AN_STR_MAX];
		scopy(user, sizeof user, e->u.user_change.user);
		if (s->dialect == SQ_MYSQL) {
			if (e->u.user_change.ok == 0) {
				login_result(an, s, 0, user, "1045", e->ts);
				break;
			}
			/* COM_CHANGE_USER resets the session: a new principal, no markers */
			snprintf(s->db_user, sizeof s->db_user, "%s", user);
			s->ident_gen++;
			if (e->u.user_change.database.n)
				scopy(s->database, sizeof s->database, e->u.user_change.database);
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
		scopy(s->database, sizeof s->database, e->u.database);
		s->dirty = 1;
		break;
	case EV_QUERY:
		on_query(an, s, e);
		break;
	case EV_RESULT:
		on_result(an, s, e);
		break;
	case EV_READY:
		on_ready(an, s, e);
		break;
	case EV_DATA_MOVE:
		/* it belongs to the statement executing now: the oldest one still waiting */
		for (int i = 0; i < s->pend_n; i++) {
			struct an_pending *p = pend_at(s, i);
			if (!p->n_parts)
				continue;
			p->data_move = 1;
			p->data_move_part = p->next;
			p->data_move_to_client = e->u.data_move.to_client;
			scopy(p->data_move_what, sizeof p->data_move_what, e->u.data_move.what);
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
	an->toks = malloc(sizeof(struct sq_tok) * SQ_MAX_TOKENS);
	an->parts = malloc(2 * AN_MAX_PARTS * sizeof *an->parts);
	an->part_mode = malloc(2 * AN_MAX_PARTS);
	if (an->parts && an->part_mode) {
		an->alt_parts = an->parts + AN_MAX_PARTS;
		an->alt_mode = an->part_mode + AN_MAX_PARTS;
	}
	an->norm = malloc(SQ_MAX_NORM + 1);
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
		pend_finish_all(an, old);
		pool_close(an, old);
		pend_spare_free(old);
		free(old->pend);
		old->pend = NULL;
		old->pend_cap = 0;
		put_session(an, old, &end);
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
	s->dialect = flow->dialect == EV_DIALECT_MYSQL ? SQ_MYSQL : SQ_PG;
	/* MySQL's sql_mode starts as the server's global value, never on the wire; PostgreSQL
	 * reports standard_conforming_strings after login (ParameterStatus) */
	s->lexmode = (uint8_t)sq_default_mode(s->dialect);
	s->lexmode_unknown = s->dialect == SQ_MYSQL ? SQ_M_ALL : SQ_M_BACKSLASH;
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
	put_session(an, s, NULL);
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
		pend_finish_all(an, s);
		pool_close(an, s);
		lru_unlink(an, s);
		an->n_sessions--;
		if (an_park(an, s) != 0) { /* parking off or out of memory: it ends as before */
			struct an_flow_end to = *end;
			to.reason = "timeout";
			put_session(an, s, &to);
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
		pend_finish_all(an, s);
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
		put_session(an, s, e);
		lru_unlink(an, s);
		an->n_sessions--;
	}
free_it:
	pool_close(an, s); /* evicted earlier: already done */
	an_ps_free(an, s);
	free(s->pend);
	pend_spare_free(s);
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
				pend_finish_all(an, s);
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
		ncache_clear(&an->ncache[i]);
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

int an_is_admin(const struct an *an, const struct an_session *s)
{
	const struct an_config *c = &an->cfg;
	if (c->admin_hosts.n == 0 || !an_ip_in_cidrs(&c->admin_hosts, s->client_ip))
		return 0;
	if (c->admin_users.n == 0)
		return 1;
	return an_in_list(&c->admin_users, s->db_user) || an_in_list(&c->admin_users, s->role) ||
	       an_in_list(&c->admin_users, s->txn_role);
}

void an_excerpt(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	int sp = 0;
	if (!cap)
		return;
	size_t i = 0;
	for (; s && i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ') {
			sp = o > 0;
			continue;
		}
		if (o + (sp ? 2 : 1) + 4 > cap)
			break; /* room for the character, a space and "..." */
		if (sp) {
			dst[o++] = ' ';
			sp = 0;
		}
		dst[o++] = (char)c;
	}
	if (s && i < n && s[i]) {
		while (o > 0 && ((unsigned char)dst[o - 1] & 0xC0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)dst[o - 1] & 0xC0) == 0xC0)
			o--;
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = 0;
}

void an_fmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	if (!cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}
