/* Through the pooler (issue #21): the client and server legs of a configured connection
 * pooler (pgbouncer and the like) joined statement by statement.
 *
 * A pooler forwards each client statement unchanged (same text, same bound values) on the
 * server connection it lends that client. Every client-leg query is kept in a bounded ring
 * (key: hash of its bytes and values, plus its first bytes) with the client's identity at
 * that moment; a server-leg query takes the one live entry with its key. Identical
 * statements of several clients are not guessed between: the server-leg statement is held
 * until the transaction names its client (a later statement of the same transaction that
 * matches one client only: a pooler lends a server connection for a whole transaction),
 * or until all but one candidate were taken by other server connections; else it is stored
 * unmatched. Bindings last until the transaction ends (pool_mode "session": until the
 * client leg ends). Costs nothing for sessions of no pooler. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "an_int.h"
#include "attr.h"

#define PJ_HEAD 64	   /* first bytes compared besides the hash */
#define PJ_HOLD_MAX 32	   /* server-leg statements held per session */
#define PJ_HOLD_BYTES (8u << 20) /* held over all sessions */
#define PJ_BIND_MAX 4096   /* server connections bound to a client at once */

enum { E_FREE, E_LIVE, E_TAKEN, E_DEAD };

struct pj_ent {
	uint64_t key;
	uint32_t len, gen;
	int32_t next; /* hash chain */
	uint8_t state, pooler, src, head_n;
	int client_port;
	ev_time ts;
	int64_t client_sid;
	char client_ip[48];
	char app[AN_STR_MAX];
	char user[AN_STR_MAX]; /* at the query; once done, the client leg's own attribution */
	char fsrc[24];	       /* done: its end_user_source ("" none) */
	uint8_t done;	       /* the client-leg statement completed */
	struct pool_held *wait; /* taken: server-leg statements waiting for done */
	unsigned char head[PJ_HEAD];
};

struct pj_bind {
	int64_t server_sid, client_sid;
};

/* A server-leg statement record not put yet: its client is not known (a session's list),
 * or its client-leg statement has not completed (an entry's list). */
struct pool_held {
	struct pool_held *next;
	struct rec_statement rs; /* strings point into buf */
	size_t size;
	uint64_t key;
	uint32_t len;
	ev_time ts;
	unsigned char head[PJ_HEAD];
	uint8_t head_n;
	uint8_t comment; /* its end user came from its own comment: kept when joined */
	char buf[];
};

struct pool_state {
	struct pj_ent *ent;
	int cap, head, n; /* ring: oldest at head */
	int32_t *bucket;
	uint32_t mask;
	struct pj_bind *bind;
	int n_bind, cap_bind;
	int client_legs[AN_MAX_POOLERS]; /* client-leg sessions seen per pooler this run */
	size_t held_bytes;
	char sbuf[48]; /* end_user_source of the record being put */
};

static struct pool_state *pool_get(struct an *an)
{
	if (an->pool)
		return an->pool;
	struct pool_state *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->cap = an->cfg.max_pooler_pending > 0 ? an->cfg.max_pooler_pending : 4096;
	uint32_t nb = 16;
	while (nb < (uint32_t)p->cap * 2)
		nb <<= 1;
	p->ent = calloc((size_t)p->cap, sizeof *p->ent);
	p->bucket = malloc(nb * sizeof *p->bucket);
	if (!p->ent || !p->bucket) {
		free(p->ent);
		free(p->bucket);
		free(p);
		return NULL;
	}
	for (uint32_t i = 0; i < nb; i++)
		p->bucket[i] = -1;
	p->mask = nb - 1;
	an->pool = p;
	return p;
}

/* ---- recognition ---- */

static int ip_eq(const char *a, const char *canon)
{
	unsigned char x[16], y[16];
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(canon, ':') ? AF_INET6 : AF_INET;
	if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, canon, y) != 1)
		return 0;
	return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

void pool_open(struct an *an, struct an_session *s)
{
	s->pool_role = AN_POOL_NONE;
	for (int i = 0; i < an->cfg.n_poolers; i++) {
		const struct an_pooler_cfg *c = &an->cfg.poolers[i];
		if (s->server_port == c->listen_port && ip_eq(s->server_ip, c->address)) {
			s->pool_role = AN_POOL_CLIENT;
			s->pool_idx = (int8_t)i;
			struct pool_state *p = pool_get(an);
			if (p)
				p->client_legs[i]++;
			return;
		}
	}
	/* the pooler's own connections to the database (not to itself) */
	for (int i = 0; i < an->cfg.n_poolers; i++) {
		const struct an_pooler_cfg *c = &an->cfg.poolers[i];
		if (ip_eq(s->client_ip, c->source[0] ? c->source : c->address)) {
			s->pool_role = AN_POOL_SERVER;
			s->pool_idx = (int8_t)i;
			return;
		}
	}
}

void pool_learn(struct an *an, struct an_session *console)
{
	struct an_config *c = &an->cfg;
	for (int i = 0; i < c->n_poolers; i++)
		if (c->poolers[i].listen_port == console->server_port && ip_eq(console->server_ip, c->poolers[i].address))
			return; /* configured or learned already */
	if (c->n_poolers >= AN_MAX_POOLERS)
		return;
	struct an_pooler_cfg *p = &c->poolers[c->n_poolers];
	memset(p, 0, sizeof *p);
	unsigned char a[16];
	int fam = strchr(console->server_ip, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, console->server_ip, a) != 1 || !inet_ntop(fam, a, p->address, sizeof p->address))
		return;
	p->listen_port = console->server_port;
	p->window_ms = 60000;
	c->n_poolers++;
	/* the open sessions of its legs: from now on (their earlier statements stay as stored) */
	for (struct an_session *s = an_sessions(an); s; s = s->next)
		if (s->pool_role == AN_POOL_NONE) {
			pool_open(an, s);
			if (s->pool_role != AN_POOL_NONE)
				s->dirty = 1;
		}
}

/* ---- the ring of client-leg statements ---- */

static uint64_t query_key(const struct ev_query *q, struct strv sql, uint32_t *len)
{
	uint64_t h = sn_hash_mem(sql.p, sql.n, SN_HASH_INIT);
	size_t n = sql.n;
	for (size_t i = 0; i < q->n_params; i++) {
		const struct ev_bind *b = &q->params[i];
		unsigned char tag = b->is_null ? 0 : 1;
		h = sn_hash_mem(&tag, 1, h);
		if (!b->is_null && b->text.p)
			h = sn_hash_mem(b->text.p, b->text.n, h);
		n += 1 + b->text.n;
	}
	*len = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
	return h;
}

static void unlink_ent(struct pool_state *p, int i)
{
	struct pj_ent *e = &p->ent[i];
	int32_t *at = &p->bucket[e->key & p->mask];
	while (*at >= 0 && *at != i)
		at = &p->ent[*at].next;
	if (*at == i)
		*at = e->next;
	e->next = -1;
}

static void cstr_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void wait_put(struct an *an, struct pool_state *p, struct pj_ent *e);

static void ring_pop(struct an *an, struct pool_state *p)
{
	struct pj_ent *e = &p->ent[p->head];
	if (e->wait)
		wait_put(an, p, e); /* its client leg never completed: the identity at its query */
	if (e->state == E_LIVE)
		an->st.pooler_dropped++; /* still waiting to be forwarded: it cannot be matched now */
	if (e->state != E_FREE)
		unlink_ent(p, p->head);
	e->state = E_FREE;
	e->gen++;
	p->head = p->head + 1 < p->cap ? p->head + 1 : 0;
	p->n--;
}

/* The client's end user now, by the usual precedence without the statement's comment
 * (the server leg sees the same comment). */
static const char *client_user(struct an *an, const struct an_session *c, enum an_src *src)
{
	const struct an_marker *m = c->txn_marker.src ? &c->txn_marker
				  : c->sess_marker.src ? &c->sess_marker
				  : c->attr_marker.src ? &c->attr_marker : NULL;
	if (m && m->src != AN_SRC_UNKNOWN) {
		*src = m->src;
		return m->value;
	}
	if (!m && c->db_user[0] && !an_is_service_account(&an->cfg, c->db_user)) {
		*src = AN_SRC_DBUSER;
		return c->db_user;
	}
	*src = AN_SRC_NONE;
	return NULL;
}

static int bound_elsewhere(const struct pool_state *p, int64_t client, int64_t server)
{
	for (int i = 0; i < p->n_bind; i++)
		if (p->bind[i].client_sid == client && p->bind[i].server_sid != server)
			return 1;
	return 0;
}

static int bind_exists(const struct pool_state *p, int64_t server)
{
	for (int i = 0; i < p->n_bind; i++)
		if (p->bind[i].server_sid == server)
			return 1;
	return 0;
}

static void bind_set(struct pool_state *p, struct an_session *s, int64_t client)
{
	s->pool_bound = client;
	for (int i = 0; i < p->n_bind; i++)
		if (p->bind[i].server_sid == s->id) {
			p->bind[i].client_sid = client;
			return;
		}
	if (p->n_bind == p->cap_bind) {
		int nc = p->cap_bind ? p->cap_bind * 2 : 16;
		struct pj_bind *nb = nc <= PJ_BIND_MAX ? realloc(p->bind, (size_t)nc * sizeof *nb) : NULL;
		if (!nb)
			return; /* not recorded: only costs later statements of other servers a candidate */
		p->bind = nb;
		p->cap_bind = nc;
	}
	p->bind[p->n_bind++] = (struct pj_bind){ s->id, client };
}

static void bind_clear(struct pool_state *p, int64_t server, int64_t client)
{
	for (int i = 0; i < p->n_bind;)
		if ((server && p->bind[i].server_sid == server) || (client && p->bind[i].client_sid == client))
			p->bind[i] = p->bind[--p->n_bind];
		else
			i++;
}

static int head_eq(const struct pj_ent *e, const unsigned char *head, int n)
{
	return e->head_n == n && memcmp(e->head, head, (size_t)n) == 0;
}

/* Live entries (answered: also those answered but not taken) of s's pooler with this key
 * sent before ts (within the window) that the server session could be forwarding: only
 * client's when client != 0. Returns 0, 1 (that one in *found) or 2 (several). */
static int candidates(struct an *an, struct pool_state *p, const struct an_session *s, uint64_t key, uint32_t len,
		      const unsigned char *head, int hn, ev_time ts, int64_t client, int answered, int *found)
{
	ev_time win = (ev_time)an->cfg.poolers[s->pool_idx].window_ms * 1000;
	int n = 0;
	*found = -1;
	for (int32_t i = p->bucket[key & p->mask]; i >= 0; i = p->ent[i].next) {
		const struct pj_ent *e = &p->ent[i];
		if (!(e->state == E_LIVE || (answered && e->state == E_DEAD)) || e->key != key || e->len != len || e->pooler != (uint8_t)s->pool_idx ||
		    !head_eq(e, head, hn) || e->ts > ts || ts - e->ts > win)
			continue;
		if (client ? e->client_sid != client : bound_elsewhere(p, e->client_sid, s->id))
			continue;
		if (n++ == 0)
			*found = i;
		else
			break; /* one or several is all a caller asks: a flood of one text stays cheap */
	}
	return n;
}

static void take(struct pool_state *p, int i, struct an_session *s, struct an_pj_ref *ref)
{
	struct pj_ent *e = &p->ent[i];
	e->state = E_TAKEN;
	ref->state = AN_PJ_JOINED;
	ref->ent = i;
	ref->gen = e->gen;
	bind_set(p, s, e->client_sid);
}

static void held_resolve(struct an *an, struct pool_state *p, struct an_session *s, int at_end);

static void cstr_copy(char *dst, size_t cap, const char *src);

static char *an_strcpy_to(char *dst, size_t cap, const char *src)
{
	cstr_copy(dst, cap, src);
	return dst;
}

/* dst = a followed by b, cut at cap (no printf on the per-statement path) */
static void cstr_cat2(char *dst, size_t cap, const char *a, const char *b)
{
	size_t n = strnlen(a, cap - 1);
	memcpy(dst, a, n);
	size_t m = strnlen(b, cap - 1 - n);
	memcpy(dst + n, b, m);
	dst[n + m] = 0;
}

void pool_query(struct an *an, struct an_session *s, const struct ev_query *q, struct strv sql, ev_time ts,
		struct an_pj_ref *ref)
{
	memset(ref, 0, sizeof *ref);
	ref->ent = -1;
	if (s->pool_role == AN_POOL_NONE || !sql.p)
		return;
	struct pool_state *p = pool_get(an);
	if (!p)
		return;
	ref->key = query_key(q, sql, &ref->len);
	int hn = sql.n < PJ_HEAD ? (int)sql.n : PJ_HEAD;
	if (s->pool_role == AN_POOL_CLIENT) {
		if (p->n == p->cap)
			ring_pop(an, p);
		int i = p->head + p->n < p->cap ? p->head + p->n : p->head + p->n - p->cap;
		struct pj_ent *e = &p->ent[i]; /* free: set field by field (no 450-byte memset) */
		e->key = ref->key;
		e->len = ref->len;
		e->state = E_LIVE;
		e->pooler = (uint8_t)s->pool_idx;
		e->ts = ts;
		e->client_sid = s->id;
		e->client_port = s->client_port;
		e->done = 0;
		e->wait = NULL;
		e->fsrc[0] = 0;
		cstr_copy(e->client_ip, sizeof e->client_ip, s->client_ip);
		cstr_copy(e->app, sizeof e->app, s->application);
		enum an_src src;
		const char *u = client_user(an, s, &src);
		e->src = (uint8_t)src;
		cstr_copy(e->user, sizeof e->user, u ? u : "");
		e->next = -1;
		e->head_n = (uint8_t)hn;
		memcpy(e->head, sql.p, (size_t)hn);
		e->next = p->bucket[e->key & p->mask];
		p->bucket[e->key & p->mask] = i;
		p->n++;
		ref->state = AN_PJ_REG;
		ref->ent = i;
		ref->gen = e->gen;
		return;
	}
	/* server leg: bound to a client (in its transaction, or for its session) -> only its
	 * statements; else the one client that sent these bytes */
	if (s->pool_bound && !bind_exists(p, s->id))
		s->pool_bound = 0; /* session pooling: that client left */
	int found;
	int n = candidates(an, p, s, ref->key, ref->len, (const unsigned char *)sql.p, hn, ts, s->pool_bound, 0, &found);
	if (n == 1) {
		take(p, found, s, ref);
		if (s->held)
			held_resolve(an, p, s, 0);
	} else {
		ref->state = n > 1 ? AN_PJ_AMBIG : AN_PJ_NOMATCH;
	}
}


/* ---- attribution and the join columns ---- */

static const struct pj_ent *joined_ent(const struct an *an, const struct an_pj_ref *ref)
{
	const struct pool_state *p = an->pool;
	if (!p || ref->state != AN_PJ_JOINED || ref->ent < 0)
		return NULL;
	const struct pj_ent *e = &p->ent[ref->ent];
	return e->gen == ref->gen && e->state == E_TAKEN ? e : NULL;
}

int pool_joined(const struct an *an, const struct an_pj_ref *ref)
{
	return joined_ent(an, ref) != NULL;
}

/* The client leg's end user for a statement joined to e: its own attribution once it
 * completed, else the identity it had when it sent the statement. */
static void client_leg_user(struct pool_state *p, const struct pj_ent *e, const char **user, const char **src)
{
	const char *name = e->done ? e->fsrc : e->src != AN_SRC_NONE ? an_src_name((enum an_src)e->src) : NULL;
	if (!name || !name[0] || !e->user[0]) {
		*user = *src = NULL;
		return;
	}
	cstr_cat2(p->sbuf, sizeof p->sbuf, "client_leg:", name);
	*user = e->user;
	*src = p->sbuf;
}

void pool_attribute(struct an *an, struct an_session *s, const struct an_pj_ref *ref, struct an_stmt *st,
		    char *ubuf, char *sbuf)
{
	if (s->pool_role != AN_POOL_SERVER)
		return;
	if (st->end_user_source && !strcmp(st->end_user_source, "comment"))
		return; /* the statement names its user itself, on both legs */
	const struct pj_ent *e = joined_ent(an, ref);
	if (e) {
		const char *u, *src;
		client_leg_user(an->pool, e, &u, &src);
		st->end_user = u ? an_strcpy_to(ubuf, AN_STR_MAX, u) : NULL;
		st->end_user_source = src ? an_strcpy_to(sbuf, 48, src) : NULL;
		return;
	}
	/* not joined (yet): what the pooler left on the connection is not identity; a marker
	 * set in this same transaction is (the pooler lends the connection per transaction) */
	const struct an_marker *m = NULL;
	if (s->txn_marker.src)
		m = &s->txn_marker;
	else if (s->sess_marker.src && s->pool_sess_seq == s->pool_txn_seq)
		m = &s->sess_marker;
	if (m && m->src != AN_SRC_UNKNOWN) {
		an_fmt(ubuf, AN_STR_MAX, "%s", m->value);
		an_fmt(sbuf, 48, "same_transaction:%s", an_src_name(m->src));
		st->end_user = ubuf;
		st->end_user_source = sbuf;
	} else if (!m && s->db_user[0] && !an_is_service_account(&an->cfg, s->db_user)) {
		st->end_user = s->db_user;
		st->end_user_source = "db_user";
	} else {
		st->end_user = st->end_user_source = NULL;
	}
}

void pool_session_marker(struct an_session *s)
{
	s->pool_sess_seq = s->pool_txn_seq;
}

/* What a pooler sends on its own: resets, its parameter SETs, its check query. */
static int pooler_kind(const struct rec_statement *rs)
{
	const char *v = rs->verb ? rs->verb : "";
	if (!strcmp(v, "SET") || !strcmp(v, "RESET") || !strcmp(v, "DISCARD"))
		return 1;
	return rs->sql && (!strcasecmp(rs->sql, "select ?") || !strcasecmp(rs->sql, "select 1") || !rs->sql[0]);
}

static void fill_joined(struct pool_state *p, struct rec_statement *rs, const struct pj_ent *e, int comment)
{
	rs->via_session_id = e->client_sid;
	rs->pooler_join = "joined";
	rs->via_client_ip = e->client_ip;
	rs->via_client_port = e->client_port;
	rs->via_application = e->app[0] ? e->app : NULL;
	if (!comment)
		client_leg_user(p, e, &rs->end_user, &rs->end_user_source);
}

static void fill_unjoined(struct an *an, struct an_session *s, struct rec_statement *rs, int ambiguous)
{
	struct pool_state *p = an->pool;
	if (!ambiguous && p && p->client_legs[s->pool_idx] > 0 && pooler_kind(rs)) {
		rs->pooler_join = "pooler";
		rs->end_user = rs->end_user_source = NULL; /* nobody's: the pooler's own */
		an->st.pooler_own++;
		return;
	}
	rs->pooler_join = "unmatched";
	if (ambiguous)
		an->st.pooler_ambiguous++;
	else
		an->st.pooler_unmatched++;
}

static size_t cstr_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *cstr_put(char **at, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	memcpy(*at, s, n);
	const char *r = *at;
	*at += n;
	return r;
}

static int is_comment(const struct rec_statement *rs)
{
	return rs->end_user_source && !strcmp(rs->end_user_source, "comment");
}

/* A copy of rs that outlives the statement (NULL: over the caps; put it now instead). */
static struct pool_held *held_new(struct pool_state *p, const struct rec_statement *rs)
{
	size_t size = cstr_size(rs->end_user) + cstr_size(rs->end_user_source) + cstr_size(rs->verb) +
		      cstr_size(rs->fingerprint) + cstr_size(rs->sql) + cstr_size(rs->params) +
		      cstr_size(rs->outcome) + cstr_size(rs->error_code) + cstr_size(rs->protocol) +
		      cstr_size(rs->client_ip) + cstr_size(rs->db_user) + cstr_size(rs->database) +
		      cstr_size(rs->application) + cstr_size(rs->server_ip);
	if (p->held_bytes + size + sizeof(struct pool_held) > PJ_HOLD_BYTES)
		return NULL;
	struct pool_held *h = malloc(sizeof *h + size);
	if (!h)
		return NULL;
	char *at = h->buf;
	h->next = NULL;
	h->rs = *rs;
	h->comment = (uint8_t)is_comment(rs);
	h->rs.end_user = cstr_put(&at, rs->end_user);
	h->rs.end_user_source = cstr_put(&at, rs->end_user_source);
	h->rs.verb = cstr_put(&at, rs->verb);
	h->rs.fingerprint = cstr_put(&at, rs->fingerprint);
	h->rs.sql = cstr_put(&at, rs->sql);
	h->rs.params = cstr_put(&at, rs->params);
	h->rs.outcome = cstr_put(&at, rs->outcome);
	h->rs.error_code = cstr_put(&at, rs->error_code);
	h->rs.protocol = cstr_put(&at, rs->protocol);
	h->rs.client_ip = cstr_put(&at, rs->client_ip);
	h->rs.db_user = cstr_put(&at, rs->db_user);
	h->rs.database = cstr_put(&at, rs->database);
	h->rs.application = cstr_put(&at, rs->application);
	h->rs.server_ip = cstr_put(&at, rs->server_ip);
	h->size = size + sizeof(struct pool_held);
	p->held_bytes += h->size;
	return h;
}

static void held_put(struct an *an, struct pool_state *p, struct pool_held *h)
{
	struct rec rec = { .type = REC_STATEMENT, .u.statement = &h->rs };
	an_put_all(an, &rec);
	p->held_bytes -= h->size;
	free(h);
}

/* e's waiting statements, with what the client leg says now. */
static void wait_put(struct an *an, struct pool_state *p, struct pj_ent *e)
{
	while (e->wait) {
		struct pool_held *h = e->wait;
		e->wait = h->next;
		fill_joined(p, &h->rs, e, h->comment);
		held_put(an, p, h);
	}
}

/* Held statement h joined to entry e: put now when its client-leg statement completed,
 * else when it does. */
static void join_held(struct an *an, struct pool_state *p, struct pj_ent *e, struct pool_held *h)
{
	e->state = E_TAKEN;
	an->st.pooler_joined++;
	h->next = NULL;
	if (e->done) {
		fill_joined(p, &h->rs, e, h->comment);
		held_put(an, p, h);
		return;
	}
	struct pool_held **at = &e->wait;
	while (*at)
		at = &(*at)->next;
	*at = h;
}

/* Held statements of s: joined to the client s is now bound to, or (at_end: the
 * transaction or session is over) to the last candidate left, else put unmatched. */
static void held_resolve(struct an *an, struct pool_state *p, struct an_session *s, int at_end)
{
	struct pool_held *keep = NULL, **kt = &keep;
	int n_keep = 0;
	while (s->held) {
		struct pool_held *h = s->held;
		s->held = h->next;
		int found = -1;
		int n = candidates(an, p, s, h->key, h->len, h->head, h->head_n, h->ts, s->pool_bound, 1, &found);
		if (n == 1 && (s->pool_bound || at_end)) {
			join_held(an, p, &p->ent[found], h);
			continue;
		}
		if (s->pool_bound || at_end) {
			/* bound to a client that did not send it: the pooler's own or unmatched;
			 * several candidates left at the end: not guessed */
			fill_unjoined(an, s, &h->rs, n > 1);
			held_put(an, p, h);
			continue;
		}
		h->next = NULL;
		*kt = h;
		kt = &h->next;
		n_keep++;
	}
	s->held = keep;
	s->n_held = n_keep;
}

int pool_put(struct an *an, struct an_session *s, const struct an_pj_ref *ref, struct rec_statement *rs)
{
	struct pool_state *p = an->pool;
	if (s->pool_role != AN_POOL_SERVER || !p)
		return 0;
	const struct pj_ent *ce = joined_ent(an, ref);
	if (ce) {
		struct pj_ent *e = &p->ent[ref->ent];
		an->st.pooler_joined++;
		struct pool_held *h = e->done ? NULL : held_new(p, rs);
		if (!h) { /* its client leg completed (or no room to wait for it) */
			fill_joined(p, rs, e, is_comment(rs));
			return 0;
		}
		an->st.pooler_joined--; /* counted by join_held */
		join_held(an, p, e, h);
		return 1;
	}
	if (ref->state != AN_PJ_AMBIG) {
		if (ref->state == AN_PJ_JOINED)
			an->st.pooler_dropped++; /* its entry was reused for room before it completed */
		fill_unjoined(an, s, rs, 0);
		return 0;
	}
	/* several clients sent these bytes: wait for the transaction to say which */
	struct pool_held *h = s->n_held < PJ_HOLD_MAX ? held_new(p, rs) : NULL;
	if (!h) {
		fill_unjoined(an, s, rs, 1);
		return 0;
	}
	h->key = ref->key;
	h->len = ref->len;
	h->ts = rs->ts; /* the statement's packet time: its query's */
	h->head_n = 0; /* the head is compared again at resolution: the ring entry's */
	for (int32_t i = p->bucket[ref->key & p->mask]; i >= 0; i = p->ent[i].next)
		if (p->ent[i].key == ref->key && p->ent[i].len == ref->len) {
			h->head_n = p->ent[i].head_n;
			memcpy(h->head, p->ent[i].head, h->head_n);
			break;
		}
	struct pool_held **at = &s->held;
	while (*at)
		at = &(*at)->next;
	*at = h;
	s->n_held++;
	return 1;
}

void pool_client_done(struct an *an, struct an_pj_ref *ref, const char *end_user, const char *source)
{
	struct pool_state *p = an->pool;
	if (!p || ref->state != AN_PJ_REG || ref->ent < 0)
		return;
	struct pj_ent *e = &p->ent[ref->ent];
	ref->state = AN_PJ_NONE;
	if (e->gen != ref->gen)
		return;
	/* the client leg decides: its own attribution of the statement */
	cstr_copy(e->user, sizeof e->user, end_user && source ? end_user : "");
	cstr_copy(e->fsrc, sizeof e->fsrc, end_user && source ? source : "");
	e->done = 1;
	if (e->state == E_LIVE)
		e->state = E_DEAD; /* answered, not taken (yet): only a held statement may take it */
	else if (e->wait)
		wait_put(an, p, e);
}

void pool_ready(struct an *an, struct an_session *s, char txn)
{
	if (s->pool_role != AN_POOL_SERVER || txn != 'I')
		return;
	s->pool_txn_seq++;
	struct pool_state *p = an->pool;
	if (!p)
		return;
	if (s->held)
		held_resolve(an, p, s, 1);
	if (!an->cfg.poolers[s->pool_idx].session_mode && s->pool_bound) {
		bind_clear(p, s->id, 0);
		s->pool_bound = 0;
	}
}

void pool_close(struct an *an, struct an_session *s)
{
	struct pool_state *p = an->pool;
	if (!p || s->pool_role == AN_POOL_NONE)
		return;
	if (s->pool_role == AN_POOL_CLIENT) {
		bind_clear(p, 0, s->id); /* session pooling: its server connection is free again */
		return;
	}
	if (s->held)
		held_resolve(an, p, s, 1);
	bind_clear(p, s->id, 0);
	s->pool_bound = 0;
}

void pool_free(struct an *an)
{
	struct pool_state *p = an->pool;
	if (!p)
		return;
	for (int i = 0; i < p->cap; i++)
		if (p->ent[i].wait)
			wait_put(an, p, &p->ent[i]);
	free(p->ent);
	free(p->bucket);
	free(p->bind);
	free(p);
	an->pool = NULL;
}
