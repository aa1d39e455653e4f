/* PostgreSQL v3 wire-protocol decoder: handshake (SSL/GSS/startup/auth), simple and
 * extended query protocol with a bounded statement cache and FIFO response matching,
 * COPY, function calls, and mid-stream resynchronisation. Emits ev.h events.
 * Only whole messages are consumed; oversized ones are counted and skipped piecewise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql_types.h"
#include "proto.h"
#include "rd.h"

/* Tunables. */
#define PG_MAX_MSG (1u << 30)		  /* larger than any message PostgreSQL sends */
#define PG_WHOLE_MAX (PROTO_MAX_HOLD / 2) /* above this a message is taken piecewise */
#define PG_PREFIX (64u * 1024)		  /* bytes kept of an oversized Query/Parse */
#define PG_MAX_STARTUP 10000		  /* the server's own startup packet limit */
#define PG_MAX_PENDING 4096		  /* statements awaiting responses */
#define PG_MAX_STMTS 256		  /* prepared statements cached per session */
#define PG_STMT_BYTES (4u << 20)	  /* SQL bytes cached per session */
#define PG_MAX_PORTALS 64
#define PG_EVICTED_MAX 1024 /* statements whose text was evicted: name hash and first bytes */
#define PG_EVICTED_HEAD 48
#define PG_MAX_PARAMS 256   /* bind values kept per portal (the rest counted) */
#define PG_MAX_OIDS 1024    /* parameter type OIDs kept per statement */
#define PG_PARAM_CAP 4096   /* rendered bytes kept per bind value */
#define PG_PORTAL_BYTES (64u * 1024) /* rendered bytes kept per portal */
#define PG_MAX_KV 64	    /* startup parameters passed on */
#define PG_RESYNC_PENDING (64u * 1024) /* an unfinished candidate message worth waiting for */
#define PG_RESYNC_BIGROW (16u << 20)    /* largest DataRow trusted as a resync point */
#define PG_RESYNC_UNSURE (1u << 20)    /* bytes scanned before giving up on a flow that
					  never looked like PostgreSQL */
#define PG_MAX_ANOMALIES 32

#define PG_CODE_SSL 80877103u
#define PG_CODE_GSS 80877104u
#define PG_CODE_CANCEL 80877102u

enum pg_pend_kind {
	PEND_Q,	   /* simple query: results until ReadyForQuery */
	PEND_E,	   /* Execute: one result */
	PEND_F,	   /* FunctionCall: result then ReadyForQuery */
	PEND_S,	   /* Sync: ReadyForQuery */
	PEND_LOST, /* client bytes lost here: absorbs responses until ReadyForQuery */
};

struct pg_pend {
	uint8_t kind;
	uint8_t done;	/* a result was emitted (Q: at least one) */
	uint64_t id;
	int64_t rows;	/* DataRows since the last result */
	uint64_t bytes; /* DataRow / CopyData bytes since the last result */
};

struct pg_stmt {
	char *name;
	size_t name_n;
	char *sql;
	size_t sql_n;
	int truncated;
	uint32_t *oids;
	size_t n_oids;
	uint64_t used;
};

struct pg_pval {
	size_t off, len;
	uint8_t is_null, is_hex;
};

struct pg_portal {
	char *name;
	size_t name_n;
	char *stmt;
	size_t stmt_n;
	size_t stmt_cap;
	char *vals; /* rendered values, back to back */
	size_t vals_cap;
	struct pg_pval *pv;
	size_t n_pv, pv_cap;
	uint64_t used;
};

struct pg_dir {
	uint64_t skip; /* bytes of an oversized message still to pass over */
	int resync;    /* looking for a message boundary */
	uint64_t scanned;
};

struct pg {
	struct ev_sink out;
	ev_time ts;
	int to_server;
	int stopped;
	int confirmed;	   /* at least one message made sense */
	int untyped;	   /* next client message is a startup-family packet */
	int ssl_wait;	   /* 1 SSLRequest / 2 GSSENCRequest awaits its one-byte answer */
	int startup_seen;
	int logged_in;
	int login_reported;
	int auth_seen;
	int auth_ok; /* AuthenticationOk seen, login not yet confirmed */
	uint32_t auth_req; /* last Authentication request type */
	const char *auth_method;
	int hello_sent;
	uint64_t pid;
	char version[64];
	size_t version_n;
	int anomalies;
	struct pg_dir d[2];

	uint64_t next_id;
	struct pg_pend *q; /* ring */
	size_t q_head, q_n, q_cap;
	int err_skip; /* server skips to Sync after an error */
	uint64_t pend_dropped;

	struct pg_stmt *stmts; /* PG_MAX_STMTS, allocated at the first Parse */
	size_t n_stmts, stmt_bytes;
	uint64_t stmt_evictions;
	/* a statement pushed out of stmts keeps its verb and first bytes here (ring, made at the
	 * first eviction): an Execute of it is still judged by verb (issue #20) */
	struct pg_evicted {
		uint64_t h; /* name hash, 0: empty */
		uint8_t n;
		char head[PG_EVICTED_HEAD];
	} *evicted;
	size_t evicted_next;
	struct pg_portal *portals; /* PG_MAX_PORTALS, allocated at the first Bind */
	size_t n_portals;
	uint64_t portal_evictions;
	uint64_t use_clock;
	uint64_t params_dropped;

	struct ev_bind *binds; /* PG_MAX_PARAMS, for Execute events */
	char *render;	       /* PG_PARAM_CAP scratch for one bind value */
};

/* ---- events ---- */

static void pg_emit(struct pg *s, struct ev *e)
{
	e->ts = s->ts;
	e->to_server = s->to_server;
	ev_emit(&s->out, e);
}

static void pg_anomaly(struct pg *s, const char *what, int fatal)
{
	struct ev e = { .type = EV_ANOMALY };
	e.u.anomaly.what = what;
	e.u.anomaly.fatal = fatal;
	pg_emit(s, &e);
	s->anomalies++;
	if (fatal)
		s->stopped = 1;
}

static void pg_tls(struct pg *s, const uint8_t *at, int gss)
{
	struct ev e = { .type = EV_TLS };
	e.u.tls.at = at;
	e.u.tls.gss = gss;
	pg_emit(s, &e);
	s->stopped = 1;
}

static void pg_auth(struct pg *s, const char *method)
{
	if (s->auth_method && strcmp(s->auth_method, method) == 0)
		return;
	s->auth_method = method;
	s->auth_seen = 1;
	struct ev e = { .type = EV_AUTH };
	e.u.auth.method = method;
	pg_emit(s, &e);
}

static void pg_hello(struct pg *s)
{
	if (s->hello_sent || (!s->version_n && !s->pid))
		return;
	s->hello_sent = 1;
	struct ev e = { .type = EV_SERVER_HELLO };
	e.u.hello.version = (struct strv){ s->version, s->version_n };
	e.u.hello.conn_id = s->pid;
	pg_emit(s, &e);
}

/* ---- pending queue ---- */

/* q_cap is 16 doubled up to PG_MAX_PENDING: a power of two, so no division per lookup */
_Static_assert((PG_MAX_PENDING & (PG_MAX_PENDING - 1)) == 0, "PG_MAX_PENDING: a power of two");
static struct pg_pend *pend_at(struct pg *s, size_t i)
{
	return &s->q[(s->q_head + i) & (s->q_cap - 1)];
}

static void emit_result(struct pg *s, struct pg_pend *p, enum ev_outcome out, int64_t rows,
			struct strv tag, struct strv code, struct strv msg)
{
	struct ev e = { .type = EV_RESULT };
	e.u.result.id = p->id;
	e.u.result.outcome = out;
	e.u.result.rows = rows;
	e.u.result.bytes = p->bytes;
	e.u.result.tag = tag;
	e.u.result.error_code = code;
	e.u.result.error_msg = msg;
	pg_emit(s, &e);
	p->done = 1;
	p->rows = 0;
	p->bytes = 0;
}

static void pend_pop(struct pg *s)
{
	if (!s->q_n)
		return;
	s->q_head = (s->q_head + 1) & (s->q_cap - 1);
	s->q_n--;
}

/* A statement left without its answer: say so rather than lose it. */
static void pend_finish_unanswered(struct pg *s, struct pg_pend *p, enum ev_outcome out)
{
	if (p->kind == PEND_S || p->kind == PEND_LOST)
		return;
	if (p->kind == PEND_Q && p->done)
		return;
	if (p->kind == PEND_F && p->done)
		return;
	emit_result(s, p, out, -1, STRV_NULL, STRV_NULL, STRV_NULL);
}

static void pend_flush_all(struct pg *s, enum ev_outcome out)
{
	while (s->q_n) {
		pend_finish_unanswered(s, pend_at(s, 0), out);
		pend_pop(s);
	}
	s->err_skip = 0;
}

static struct pg_pend *pend_push(struct pg *s, enum pg_pend_kind kind, uint64_t id)
{
	if (s->q_n == s->q_cap) {
		if (s->q_cap >= PG_MAX_PENDING) {
			/* Cap reached: the oldest answer is given up on, counted. */
			pend_finish_unanswered(s, pend_at(s, 0), EV_OUT_UNKNOWN);
			pend_pop(s);
			s->pend_dropped++;
		} else {
			size_t ncap = s->q_cap ? s->q_cap * 2 : 16;
			struct pg_pend *nq = malloc(ncap * sizeof *nq);
			if (!nq)
				return NULL;
			for (size_t i = 0; i < s->q_n; i++)
				nq[i] = *pend_at(s, i);
			free(s->q);
			s->q = nq;
			s->q_cap = ncap;
			s->q_head = 0;
		}
	}
	struct pg_pend *p = pend_at(s, s->q_n);
	s->q_n++;
	memset(p, 0, sizeof *p);
	p->kind = (uint8_t)kind;
	p->id = id;
	return p;
}

/* The statement the next server result belongs to, or NULL. */
static struct pg_pend *pend_target(struct pg *s)
{
	for (size_t i = 0; i < s->q_n; i++) {
		struct pg_pend *p = pend_at(s, i);
		if (p->kind == PEND_S)
			return NULL;
		if (p->kind == PEND_F && p->done)
			continue;
		return p;
	}
	return NULL;
}

/* ---- statement cache and portals ---- */

static void stmt_free(struct pg *s, struct pg_stmt *st)
{
	s->stmt_bytes -= st->sql_n;
	free(st->name);
	free(st->sql);
	free(st->oids);
	memset(st, 0, sizeof *st);
}

static void stmt_remove(struct pg *s, size_t i)
{
	stmt_free(s, &s->stmts[i]);
	s->stmts[i] = s->stmts[--s->n_stmts];
	memset(&s->stmts[s->n_stmts], 0, sizeof s->stmts[0]);
}

static struct pg_stmt *stmt_find(struct pg *s, struct strv name, size_t *idx)
{
	for (size_t i = 0; i < s->n_stmts; i++)
		if (s->stmts[i].name_n == name.n && (name.n == 0 || memcmp(s->stmts[i].name, name.p, name.n) == 0)) {
			if (idx)
				*idx = i;
			return &s->stmts[i];
		}
	return NULL;
}

static uint64_t name_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static void stmt_evict_lru(struct pg *s)
{
	size_t best = 0;
	for (size_t i = 1; i < s->n_stmts; i++)
		if (s->stmts[i].used < s->stmts[best].used)
			best = i;
	struct pg_stmt *st = &s->stmts[best];
	if (st->name_n && (s->evicted || (s->evicted = calloc(PG_EVICTED_MAX, sizeof *s->evicted)))) {
		struct pg_evicted *e = &s->evicted[s->evicted_next++ % PG_EVICTED_MAX];
		size_t n = st->sql_n < PG_EVICTED_HEAD ? st->sql_n : PG_EVICTED_HEAD;
		if (n < st->sql_n) /* not inside a UTF-8 sequence */
			while (n > 0 && ((unsigned char)st->sql[n] & 0xc0) == 0x80)
				n--;
		e->h = name_hash(st->name, st->name_n);
		e->n = (uint8_t)n;
		memcpy(e->head, st->sql, n);
	}
	stmt_remove(s, best);
	s->stmt_evictions++;
}

static char *dup_bytes(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

static void stmt_store(struct pg *s, struct strv name, struct strv sql, int truncated, struct rd *oids,
		       size_t n_oids)
{
	size_t idx;
	if (stmt_find(s, name, &idx))
		stmt_remove(s, idx);
	if (sql.n > PG_STMT_BYTES)
		sql.n = PG_STMT_BYTES, truncated = 1;
	if (!s->stmts && !(s->stmts = calloc(PG_MAX_STMTS, sizeof *s->stmts)))
		return;
	while (s->n_stmts && (s->n_stmts == PG_MAX_STMTS || s->stmt_bytes + sql.n > PG_STMT_BYTES))
		stmt_evict_lru(s);
	struct pg_stmt *st = &s->stmts[s->n_stmts];
	if (n_oids > PG_MAX_OIDS)
		n_oids = PG_MAX_OIDS;
	st->name = dup_bytes(name.p, name.n);
	st->sql = dup_bytes(sql.p, sql.n);
	st->oids = malloc((n_oids ? n_oids : 1) * sizeof *st->oids);
	if (!st->name || !st->sql || !st->oids) {
		free(st->name);
		free(st->sql);
		free(st->oids);
		memset(st, 0, sizeof *st);
		return;
	}
	for (size_t i = 0; i < n_oids; i++)
		st->oids[i] = rd_be32(oids);
	st->n_oids = n_oids;
	st->name_n = name.n;
	st->sql_n = sql.n;
	st->truncated = truncated;
	st->used = ++s->use_clock;
	s->stmt_bytes += sql.n;
	s->n_stmts++;
}

static void portal_free(struct pg_portal *p)
{
	free(p->name);
	free(p->stmt);
	free(p->vals);
	free(p->pv);
	memset(p, 0, sizeof *p);
}

static void portal_remove(struct pg *s, size_t i)
{
	portal_free(&s->portals[i]);
	s->portals[i] = s->portals[--s->n_portals];
	memset(&s->portals[s->n_portals], 0, sizeof s->portals[0]);
}

static struct pg_portal *portal_find(struct pg *s, struct strv name, size_t *idx)
{
	for (size_t i = 0; i < s->n_portals; i++)
		if (s->portals[i].name_n == name.n &&
		    (name.n == 0 || memcmp(s->portals[i].name, name.p, name.n) == 0)) {
			if (idx)
				*idx = i;
			return &s->portals[i];
		}
	return NULL;
}

/* A fresh portal slot named name (an old one of that name is replaced). */
static struct pg_portal *portal_new(struct pg *s, struct strv name, struct strv stmt)
{
	size_t idx;
	struct pg_portal *old = portal_find(s, name, &idx);
	if (old && stmt.n <= old->stmt_cap) {
		/* rebound (the unnamed portal, at every Bind): its buffers are reused */
		if (stmt.n)
			memcpy(old->stmt, stmt.p, stmt.n);
		old->stmt_n = stmt.n;
		old->n_pv = 0;
		old->used = ++s->use_clock;
		return old;
	}
	if (old)
		portal_remove(s, idx);
	if (!s->portals && !(s->portals = calloc(PG_MAX_PORTALS, sizeof *s->portals)))
		return NULL;
	if (s->n_portals == PG_MAX_PORTALS) {
		size_t best = 0;
		for (size_t i = 1; i < s->n_portals; i++)
			if (s->portals[i].used < s->portals[best].used)
				best = i;
		portal_remove(s, best);
		s->portal_evictions++;
	}
	struct pg_portal *p = &s->portals[s->n_portals];
	p->name = dup_bytes(name.p, name.n);
	p->stmt = dup_bytes(stmt.p, stmt.n);
	if (!p->name || !p->stmt) {
		portal_free(p);
		return NULL;
	}
	p->name_n = name.n;
	p->stmt_n = p->stmt_cap = stmt.n;
	p->used = ++s->use_clock;
	s->n_portals++;
	return p;
}

/* ---- small helpers ---- */

static uint32_t be32_at(const uint8_t *p)
{
	struct rd r = rd_make(p, 4);
	return rd_be32(&r);
}

/* Byte i of p[0..n), 0 past the end. */
static uint8_t byte_at(const uint8_t *p, size_t n, size_t i)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, i);
	return rd_u8(&r);
}

static uint16_t be16_at(const uint8_t *p, size_t n, size_t i)
{
	struct rd r = rd_make(p, n);
	rd_skip(&r, i);
	return rd_be16(&r);
}

static int strv_ieq(struct strv a, const char *lit)
{
	size_t n = strlen(lit);
	if (a.n != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = a.p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return 0;
	}
	return 1;
}

/* Rows from a command tag: the last word when it is a number ("INSERT 0 1" -> 1). */
static int64_t tag_rows(struct strv tag)
{
	size_t i = tag.n;
	while (i > 0 && tag.p[i - 1] >= '0' && tag.p[i - 1] <= '9')
		i--;
	if (i == tag.n || i == 0 || tag.p[i - 1] != ' ' || tag.n - i > 18)
		return -1;
	int64_t v = 0;
	for (size_t k = i; k < tag.n; k++)
		v = v * 10 + (tag.p[k] - '0');
	return v;
}

struct pg_err {
	struct strv code, msg;
};

/* ErrorResponse / NoticeResponse fields; only C and M are kept. */
static int parse_err_fields(struct rd *r, struct pg_err *e)
{
	memset(e, 0, sizeof *e);
	for (;;) {
		uint8_t f = rd_u8(r);
		if (r->err)
			return -1;
		if (f == 0)
			return 0;
		struct strv v = rd_cstr(r);
		if (r->err)
			return -1;
		if (f == 'C')
			e->code = v;
		else if (f == 'M')
			e->msg = v;
	}
}

/* ---- message framing knowledge ---- */

/* Length bounds of a typed message (the length field, which counts itself).
 * Returns 0 when t is not a message type of this direction. */
static int msg_bounds(int to_server, uint8_t t, uint32_t *min, uint32_t *max)
{
	*min = 4;
	*max = PG_MAX_MSG;
	if (to_server) {
		switch (t) {
		case 'S': case 'H': case 'c': case 'X':
			*max = 4;
			return 1;
		case 'Q': *min = 5; return 1;
		case 'P': *min = 8; return 1;
		case 'B': *min = 12; return 1;
		case 'E': *min = 9; *max = 1u << 16; return 1;
		case 'D': *min = 6; *max = 1u << 16; return 1;
		case 'C': *min = 6; *max = 1u << 16; return 1;
		case 'F': *min = 14; return 1;
		case 'f': *min = 5; *max = 1u << 20; return 1;
		case 'd': return 1;
		case 'p': *min = 5; *max = 1u << 20; return 1;
		default: return 0;
		}
	}
	switch (t) {
	case '1': case '2': case '3': case 'n': case 'I': case 's': case 'c':
		*max = 4;
		return 1;
	case 'Z': *min = *max = 5; return 1;
	case 'K': *min = 12; *max = 4 + 4 + 256; return 1;
	case 'R': *min = 8; *max = 1u << 16; return 1;
	case 'S': *min = 6; *max = 1u << 16; return 1;
	case 'C': *min = 5; *max = 1u << 16; return 1;
	case 'E': case 'N': *min = 5; *max = 1u << 20; return 1;
	case 'A': *min = 10; *max = 1u << 20; return 1;
	case 'G': case 'H': case 'W': *min = 7; *max = 1u << 16; return 1;
	case 't': *min = 6; *max = 1u << 20; return 1;
	case 'T': *min = 6; return 1;
	case 'D': *min = 6; return 1;
	case 'd': return 1;
	case 'V': *min = 8; return 1;
	case 'v': *min = 12; *max = 1u << 20; return 1;
	default: return 0;
	}
}

/* A whole message whose contents also look right (used to trust a resync point). */
static int msg_content_ok(int to_server, uint8_t t, const uint8_t *body, size_t n)
{
	if (!to_server && t == 'Z')
		return n == 1 && (byte_at(body, n, 0) == 'I' || byte_at(body, n, 0) == 'T' || byte_at(body, n, 0) == 'E');
	if (t == 'Q' && to_server)
		return n > 0 && byte_at(body, n, n - 1) == 0;
	if (!to_server && (t == 'C' || t == 'S' || t == 'E' || t == 'N'))
		return n > 0 && byte_at(body, n, n - 1) == 0;
	if (!to_server && t == 'R')
		return be32_at(body) <= 12;
	if (t == 'D' && !to_server) {
		/* column count then (len, bytes) pairs must fill the message exactly */
		struct rd r = rd_make(body, n);
		uint16_t nc = rd_be16(&r);
		for (uint16_t i = 0; i < nc && !r.err; i++) {
			uint32_t l = rd_be32(&r);
			if (l != 0xffffffffu)
				rd_skip(&r, l);
		}
		return !r.err && rd_left(&r) == 0;
	}
	return 1;
}

/* Walks messages from p; returns how many whole plausible ones follow each other, and
 * whether the chain ends exactly at n (*exact) or with a plausible unfinished one. */
static size_t chain_len(int to_server, const uint8_t *p, size_t n, int *exact, size_t *partial_total)
{
	size_t pos = 0, count = 0;
	*exact = 0;
	*partial_total = 0;
	while (n - pos >= 5) {
		uint32_t mn, mx;
		uint8_t t = byte_at(p, n, pos);
		uint32_t ml = be32_at(p + pos + 1);
		if (!msg_bounds(to_server, t, &mn, &mx) || ml < mn || ml > mx)
			return count;
		if ((uint64_t)ml + 1 > n - pos) {
			*partial_total = (size_t)ml + 1;
			return count;
		}
		if (!msg_content_ok(to_server, t, p + pos + 5, ml - 4))
			return count;
		count++;
		pos += (size_t)ml + 1;
	}
	*exact = pos == n;
	return count;
}

/* A startup-family packet (startup 3.x, SSL, GSS, cancel) at p? 1 yes, 0 no, -1 too short. */
static int looks_untyped(const uint8_t *p, size_t n)
{
	if (n < 8)
		return -1;
	uint32_t ml = be32_at(p), code = be32_at(p + 4);
	if ((code == PG_CODE_SSL || code == PG_CODE_GSS) && ml == 8)
		return 1;
	if (code == PG_CODE_CANCEL && ml == 16)
		return 1;
	if ((code >> 16) == 3 && ml > 8 && ml <= PG_MAX_STARTUP) {
		size_t lim = n < ml ? n : ml;
		/* a startup packet names a user; its parameters start right after the code */
		for (size_t i = 8; i + 5 <= lim; i++)
			if (memcmp(p + i, "user", 5) == 0)
				return 1;
		return lim == ml ? 0 : -1;
	}
	return 0;
}

/* Bytes of another protocol that shows up on PostgreSQL ports: a MySQL greeting or
 * login packet (3-byte length, sequence number), or HTTP. */
static int looks_foreign(int to_server, const uint8_t *p, size_t n)
{
	int exact;
	size_t partial;
	if (chain_len(to_server, p, n, &exact, &partial) > 0 || partial)
		return 0; /* reads as PostgreSQL */
	struct rd r = rd_make(p, n);
	size_t ml = rd_le24(&r);
	uint8_t seq = rd_u8(&r), first = rd_u8(&r);
	if (!r.err && seq == 0 && first == 0x0a && ml >= 20 && ml < 1024)
		return 1; /* MySQL server greeting */
	if (!r.err && seq == 1 && ml >= 32 && ml < 8192)
		return 1; /* MySQL login request */
	static const char *const http[] = { "GET ", "POST ", "PUT ", "HEAD ", "HTTP/1.", "OPTIONS " };
	for (size_t i = 0; i < sizeof http / sizeof http[0]; i++) {
		size_t k = strlen(http[i]);
		if (n >= k && memcmp(p, http[i], k) == 0)
			return 1;
	}
	return 0;
}

static int looks_tls(const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	uint8_t type = rd_u8(&r), major = rd_u8(&r), minor = rd_u8(&r);
	return !r.err && (type == 0x16 || type == 0x17 || type == 0x15) && major == 0x03 && minor <= 0x04;
}

/* ---- client messages ---- */

static void client_startup(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	(void)rd_be32(&r); /* protocol code, checked by the caller */
	struct ev e = { .type = EV_STARTUP };
	struct ev_kv kv[PG_MAX_KV];
	size_t nkv = 0;
	int bad = 0;
	for (;;) {
		struct strv k = rd_cstr(&r);
		if (r.err) {
			bad = 1;
			break;
		}
		if (k.n == 0)
			break;
		struct strv v = rd_cstr(&r);
		if (r.err) {
			bad = 1;
			break;
		}
		if (strv_eq(k, "user")) {
			e.u.startup.user = v;
		} else if (strv_eq(k, "database")) {
			e.u.startup.database = v;
		} else if (strv_eq(k, "application_name")) {
			e.u.startup.application = v;
		} else {
			if (strv_eq(k, "replication"))
				e.u.startup.replication = strv_ieq(v, "true") || strv_ieq(v, "on") ||
							  strv_ieq(v, "yes") || strv_ieq(v, "1") ||
							  strv_ieq(v, "database");
			if (nkv < PG_MAX_KV)
				kv[nkv++] = (struct ev_kv){ k, v };
		}
	}
	/* libpq defaults the database to the user name */
	if (!e.u.startup.database.n)
		e.u.startup.database = e.u.startup.user;
	e.u.startup.params = kv;
	e.u.startup.n_params = nkv;
	if (bad)
		pg_anomaly(s, "pgsql: startup parameters not NUL-terminated", 0);
	pg_emit(s, &e);
	s->startup_seen = 1;
	s->confirmed = 1;
}

/* One startup-family packet at p. Returns bytes consumed (0 = need more). */
static size_t client_untyped(struct pg *s, const uint8_t *p, size_t n)
{
	if (n >= 2 && byte_at(p, n, 0) == 0x16 && byte_at(p, n, 1) == 0x03) {
		/* PostgreSQL 17 direct TLS: a ClientHello instead of a startup packet */
		pg_tls(s, p, 0);
		return n;
	}
	if (n < 8)
		return 0;
	uint32_t ml = be32_at(p), code = be32_at(p + 4);
	if (ml < 8 || ml > PG_MAX_STARTUP) {
		pg_anomaly(s, "pgsql: bad startup packet length", 1);
		return n;
	}
	if (code == PG_CODE_SSL || code == PG_CODE_GSS) {
		if (ml != 8) {
			pg_anomaly(s, "pgsql: bad encryption request length", 1);
			return n;
		}
		s->ssl_wait = code == PG_CODE_SSL ? 1 : 2;
		s->confirmed = 1;
		return 8;
	}
	if (code == PG_CODE_CANCEL) {
		if (ml != 16) {
			pg_anomaly(s, "pgsql: bad cancel request length", 1);
			return n;
		}
		if (n < 16)
			return 0;
		struct ev e = { .type = EV_CANCEL };
		e.u.cancel.target_conn_id = be32_at(p + 8);
		pg_emit(s, &e);
		s->confirmed = 1;
		return 16;
	}
	if ((code >> 16) != 3) {
		pg_anomaly(s, (code >> 16) == 2 ? "pgsql: protocol 2 not supported" : "pgsql: unknown startup code",
			   1);
		return n;
	}
	if (n < ml)
		return 0;
	client_startup(s, p + 4, ml - 4);
	s->untyped = 0;
	return ml;
}

static void client_query(struct pg *s, struct strv sql, int truncated)
{
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_SIMPLE;
	e.u.query.sql = sql;
	e.u.query.sql_known = 1;
	e.u.query.truncated = truncated;
	pg_emit(s, &e);
	pend_push(s, PEND_Q, id);
}

static void client_parse(struct pg *s, const uint8_t *body, size_t n, int truncated)
{
	struct rd r = rd_make(body, n);
	struct strv name = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: Parse without statement name", 0);
		return;
	}
	if (truncated) {
		/* only a prefix is here: keep what there is of the text */
		struct rd t = r;
		struct strv sql = rd_cstr(&t);
		if (t.err)
			sql = rd_rest(&r);
		stmt_store(s, name, sql, 1, &r, 0);
		return;
	}
	struct strv sql = rd_cstr(&r);
	uint16_t np = rd_be16(&r);
	if (r.err || rd_left(&r) != (size_t)np * 4) {
		pg_anomaly(s, "pgsql: malformed Parse", 0);
		if (!sql.p)
			return;
		np = 0;
	}
	stmt_store(s, name, sql, 0, &r, np);
}

static void client_bind(struct pg *s, const uint8_t *body, size_t n, int truncated)
{
	struct rd r = rd_make(body, n);
	struct strv portal = rd_cstr(&r);
	struct strv stmt = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Bind", 0);
		return;
	}
	struct pg_portal *pt = portal_new(s, portal, stmt);
	if (!pt)
		return;
	struct pg_stmt *st = stmt_find(s, stmt, NULL);
	if (st)
		st->used = ++s->use_clock;
	uint16_t nfmt = rd_be16(&r);
	struct rd fmts = rd_sub(&r, (size_t)nfmt * 2);
	uint16_t np = rd_be16(&r);
	if (r.err) {
		if (!truncated)
			pg_anomaly(s, "pgsql: malformed Bind", 0);
		return;
	}
	size_t keep = np < PG_MAX_PARAMS ? np : PG_MAX_PARAMS;
	if (np > keep)
		s->params_dropped += np - keep;
	if (pt->pv_cap < keep || !pt->pv) {
		size_t want = keep ? keep : 1;
		struct pg_pval *npv = realloc(pt->pv, want * sizeof *pt->pv);
		if (!npv)
			return;
		pt->pv = npv;
		pt->pv_cap = want;
	}
	if (!s->render && !(s->render = malloc(PG_PARAM_CAP)))
		return;
	size_t vn = 0;
	for (size_t i = 0; i < np; i++) {
		uint32_t l = rd_be32(&r);
		int is_null = l == 0xffffffffu;
		struct strv v = is_null ? STRV_NULL : rd_bytes(&r, l);
		if (r.err) {
			/* a truncated Bind keeps the values that arrived whole */
			if (!truncated)
				pg_anomaly(s, "pgsql: Bind value past message end", 0);
			break;
		}
		if (i >= keep)
			continue;
		uint16_t fmt = 0;
		if (nfmt == 1)
			fmt = be16_at(fmts.p, fmts.len, 0);
		else if (nfmt > i)
			fmt = be16_at(fmts.p, fmts.len, 2 * i);
		size_t rn = 0;
		int is_hex = 0;
		if (!is_null) {
			if (fmt == 0) {
				rn = v.n < PG_PARAM_CAP ? v.n : PG_PARAM_CAP;
				memcpy(s->render, v.p, rn);
			} else {
				uint32_t oid = st && i < st->n_oids ? st->oids[i] : 0;
				rn = pgt_render_binary(oid, (const uint8_t *)v.p, v.n, s->render, PG_PARAM_CAP,
						       &is_hex);
			}
		}
		if (vn + rn > PG_PORTAL_BYTES) {
			/* the portal's share is used up: later values are cut, counted */
			rn = PG_PORTAL_BYTES - vn;
			s->params_dropped++;
		}
		if (vn + rn > pt->vals_cap) {
			size_t nc = (vn + rn) * 2 + 64;
			char *nv = realloc(pt->vals, nc);
			if (!nv)
				break;
			pt->vals = nv;
			pt->vals_cap = nc;
		}
		if (rn)
			memcpy(pt->vals + vn, s->render, rn);
		pt->pv[pt->n_pv++] = (struct pg_pval){ vn, rn, (uint8_t)is_null, (uint8_t)is_hex };
		vn += rn;
	}
}

static void client_execute(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	struct strv portal = rd_cstr(&r);
	(void)rd_be32(&r); /* max rows */
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Execute", 0);
		return;
	}
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_EXECUTE;
	struct pg_portal *pt = portal_find(s, portal, NULL);
	if (pt) {
		pt->used = ++s->use_clock;
		e.u.query.stmt_name = (struct strv){ pt->stmt, pt->stmt_n };
		struct pg_stmt *st = stmt_find(s, e.u.query.stmt_name, NULL);
		if (st) {
			st->used = ++s->use_clock;
			e.u.query.sql = (struct strv){ st->sql, st->sql_n };
			e.u.query.sql_known = 1;
			e.u.query.truncated = st->truncated;
		} else if (s->evicted && pt->stmt_n) { /* its text was evicted: the newest head kept */
			uint64_t h = name_hash(pt->stmt, pt->stmt_n);
			for (size_t k = 0; k < PG_EVICTED_MAX; k++) {
				struct pg_evicted *v = &s->evicted[(s->evicted_next - 1 - k) % PG_EVICTED_MAX];
				if (v->h == h) {
					e.u.query.sql = (struct strv){ v->head, v->n };
					e.u.query.sql_known = 1;
					e.u.query.truncated = 1;
					break;
				}
			}
		}
		if (pt->n_pv && !s->binds && !(s->binds = calloc(PG_MAX_PARAMS, sizeof *s->binds)))
			pt->n_pv = 0;
		for (size_t i = 0; i < pt->n_pv; i++) {
			struct pg_pval *v = &pt->pv[i];
			s->binds[i].text = (struct strv){ v->len ? pt->vals + v->off : "", v->len };
			s->binds[i].is_null = v->is_null;
			s->binds[i].is_binary_hex = v->is_hex;
		}
		e.u.query.params = s->binds;
		e.u.query.n_params = pt->n_pv;
	}
	pg_emit(s, &e);
	pend_push(s, PEND_E, id);
}

static void client_close(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint8_t what = rd_u8(&r);
	struct strv name = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Close", 0);
		return;
	}
	size_t idx;
	if (what == 'S' && stmt_find(s, name, &idx))
		stmt_remove(s, idx);
	else if (what == 'P' && portal_find(s, name, &idx))
		portal_remove(s, idx);
}

/* Built-in functions a FunctionCall names by OID only (fixed OIDs of pg_proc.dat, checked
 * against PostgreSQL 15): the text names them so that the analyzer's rules for server file,
 * large-object and sleep functions see the call as they would see it in SQL (issue #20). */
static const struct {
	uint16_t oid;
	char name[24];
} pg_fn_oids[] = {
	{ 715, "lo_create" }, { 764, "lo_import" }, { 765, "lo_export" }, { 767, "lo_import" },
	{ 952, "lo_open" }, { 953, "lo_close" }, { 954, "loread" }, { 955, "lowrite" },
	{ 956, "lo_lseek" }, { 957, "lo_creat" }, { 958, "lo_tell" }, { 964, "lo_unlink" },
	{ 1004, "lo_truncate" }, { 2078, "set_config" }, { 2096, "pg_terminate_backend" },
	{ 2171, "pg_cancel_backend" }, { 2621, "pg_reload_conf" }, { 2622, "pg_rotate_logfile" },
	{ 2623, "pg_stat_file" }, { 2624, "pg_read_file" }, { 2625, "pg_ls_dir" }, { 2626, "pg_sleep" },
	{ 2848, "pg_switch_wal" }, { 2924, "query_to_xml" }, { 3170, "lo_lseek64" }, { 3171, "lo_tell64" },
	{ 3172, "lo_truncate64" }, { 3293, "pg_read_file" }, { 3295, "pg_read_binary_file" },
	{ 3297, "pg_ls_dir" }, { 3307, "pg_stat_file" }, { 3353, "pg_ls_logdir" }, { 3354, "pg_ls_waldir" },
	{ 3436, "pg_promote" }, { 3457, "lo_from_bytea" }, { 3458, "lo_get" }, { 3459, "lo_get" },
	{ 3460, "lo_put" }, { 3800, "pg_current_logfile" }, { 3801, "pg_current_logfile" },
	{ 3826, "pg_read_file" }, { 3827, "pg_read_binary_file" }, { 3828, "pg_read_binary_file" },
	{ 3935, "pg_sleep_for" }, { 3936, "pg_sleep_until" }, { 5029, "pg_ls_tmpdir" },
	{ 5030, "pg_ls_tmpdir" }, { 5031, "pg_ls_archive_statusdir" },
};

static void client_function(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint32_t oid = rd_be32(&r);
	if (r.err)
		return;
	const char *fn = NULL;
	for (size_t i = 0; i < sizeof pg_fn_oids / sizeof pg_fn_oids[0] && !fn; i++)
		if (pg_fn_oids[i].oid == oid)
			fn = pg_fn_oids[i].name;
	char sql[64];
	int k = fn ? snprintf(sql, sizeof sql, "FUNCTION CALL oid=%u %s()", oid, fn)
		   : snprintf(sql, sizeof sql, "FUNCTION CALL oid=%u", oid);
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_FUNCTION;
	e.u.query.sql = (struct strv){ sql, k > 0 ? (size_t)k : 0 };
	e.u.query.sql_known = 1;
	pg_emit(s, &e);
	pend_push(s, PEND_F, id);
}

/* Password, SASL and GSS responses: never copied; only what method was used. */
static void client_password(struct pg *s, const uint8_t *body, size_t n)
{
	if (s->auth_req == 3) {
		struct ev e = { .type = EV_CLEARTEXT_PASSWORD };
		pg_emit(s, &e);
		return;
	}
	if (s->auth_req == 10) {
		struct rd r = rd_make(body, n);
		struct strv mech = rd_cstr(&r);
		if (r.err)
			return;
		if (strv_eq(mech, "SCRAM-SHA-256"))
			pg_auth(s, "scram-sha-256");
		else if (strv_eq(mech, "SCRAM-SHA-256-PLUS"))
			pg_auth(s, "scram-sha-256-plus");
		else
			pg_auth(s, "sasl");
		s->auth_req = 11; /* further 'p' are SASLResponses */
	}
}

static void client_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n)
{
	switch (t) {
	case 'Q': {
		struct rd r = rd_make(body, n);
		struct strv sql = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: Query without NUL", 0);
			sql = (struct strv){ (const char *)body, n };
		}
		client_query(s, sql, 0);
		break;
	}
	case 'P':
		client_parse(s, body, n, 0);
		break;
	case 'B':
		client_bind(s, body, n, 0);
		break;
	case 'E':
		client_execute(s, body, n);
		break;
	case 'S':
		pend_push(s, PEND_S, 0);
		break;
	case 'C':
		client_close(s, body, n);
		break;
	case 'F':
		client_function(s, body, n);
		break;
	case 'd': {
		struct pg_pend *p = pend_target(s);
		if (p)
			p->bytes += n;
		break;
	}
	case 'p':
		client_password(s, body, n);
		break;
	default: /* Describe, Flush, CopyDone, CopyFail, Terminate: nothing to report */
		break;
	}
}

/* ---- server messages ---- */

static void server_auth(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint32_t type = rd_be32(&r);
	s->auth_req = type;
	switch (type) {
	case 0:
		if (!s->auth_seen)
			pg_auth(s, "trust");
		/* the login can still fail (missing database, too many connections):
		 * it succeeded once the server reports its parameters or is ready */
		s->auth_ok = 1;
		break;
	case 2:
		pg_auth(s, "kerberos5");
		break;
	case 3:
		pg_auth(s, "cleartext");
		break;
	case 5:
		pg_auth(s, "md5");
		break;
	case 6:
		pg_auth(s, "scm");
		break;
	case 7:
		pg_auth(s, "gss");
		break;
	case 9:
		pg_auth(s, "sspi");
		break;
	case 10: {
		/* the offered list until the client picks one */
		int plain = 0, plus = 0;
		for (;;) {
			struct strv m = rd_cstr(&r);
			if (r.err || m.n == 0)
				break;
			if (strv_eq(m, "SCRAM-SHA-256"))
				plain = 1;
			else if (strv_eq(m, "SCRAM-SHA-256-PLUS"))
				plus = 1;
		}
		pg_auth(s, plain ? "scram-sha-256" : plus ? "scram-sha-256-plus" : "sasl");
		break;
	}
	case 8:
	case 11:
	case 12:
		break;
	default:
		pg_anomaly(s, "pgsql: unknown authentication request", 0);
	}
}

static void server_error(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	struct pg_err er;
	if (parse_err_fields(&r, &er) < 0)
		pg_anomaly(s, "pgsql: malformed ErrorResponse", 0);
	if (!s->logged_in && s->startup_seen && !s->login_reported) {
		struct ev e = { .type = EV_LOGIN };
		e.u.login.ok = 0;
		e.u.login.error_code = er.code;
		e.u.login.error_msg = er.msg;
		pg_emit(s, &e);
		s->login_reported = 1;
		return;
	}
	struct pg_pend *p = pend_target(s);
	if (!p) {
		/* an error for a Parse/Bind with no Execute after it: still skips to Sync */
		if (s->q_n)
			s->err_skip = 1;
		return;
	}
	if (p->kind != PEND_LOST)
		emit_result(s, p, EV_OUT_ERROR, -1, STRV_NULL, er.code, er.msg);
	if (p->kind == PEND_E) {
		pend_pop(s);
		s->err_skip = 1;
	}
}

static void server_complete(struct pg *s, struct strv tag, int empty)
{
	struct pg_pend *p = pend_target(s);
	if (!p || p->kind == PEND_LOST)
		return;
	int64_t rows = empty ? 0 : tag_rows(tag);
	if (rows < 0)
		rows = p->rows;
	emit_result(s, p, EV_OUT_OK, rows, tag, STRV_NULL, STRV_NULL);
	if (p->kind == PEND_E)
		pend_pop(s);
}

static void server_ready(struct pg *s, const uint8_t *body, size_t n)
{
	char txn = n == 1 ? (char)byte_at(body, n, 0) : '?';
	pg_hello(s);
	/* ReadyForQuery answers the oldest Sync / Query / FunctionCall; Executes before it
	 * that got no answer were skipped after an error (or their answer was lost). */
	for (size_t i = 0; i < s->q_n; i++) {
		uint8_t k = pend_at(s, i)->kind;
		if (k == PEND_E)
			continue;
		for (size_t j = 0; j <= i; j++) {
			struct pg_pend *p = pend_at(s, 0);
			pend_finish_unanswered(s, p, s->err_skip && p->kind == PEND_E ? EV_OUT_SKIPPED : EV_OUT_UNKNOWN);
			pend_pop(s);
		}
		break;
	}
	s->err_skip = 0;
	struct ev e = { .type = EV_READY };
	e.u.ready.txn = (txn == 'I' || txn == 'T' || txn == 'E') ? txn : '?';
	pg_emit(s, &e);
}

static void server_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	if (s->auth_ok && !s->logged_in && t != 'E' && t != 'N' && t != 'R') {
		if (!s->login_reported) {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 1;
			pg_emit(s, &e);
			s->login_reported = 1;
		}
		s->logged_in = 1;
	}
	switch (t) {
	case 'R':
		server_auth(s, body, n);
		break;
	case 'E':
		server_error(s, body, n);
		break;
	case 'S': {
		struct ev e = { .type = EV_PARAM };
		e.u.param.name = rd_cstr(&r);
		e.u.param.value = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: malformed ParameterStatus", 0);
			break;
		}
		if (strv_eq(e.u.param.name, "server_version") && !s->hello_sent) {
			size_t k = e.u.param.value.n < sizeof s->version ? e.u.param.value.n : sizeof s->version;
			memcpy(s->version, e.u.param.value.p, k);
			s->version_n = k;
		}
		pg_emit(s, &e);
		break;
	}
	case 'K':
		s->pid = rd_be32(&r);
		pg_hello(s);
		break;
	case 'Z':
		server_ready(s, body, n);
		break;
	case 'C': {
		struct strv tag = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: CommandComplete without NUL", 0);
			tag = (struct strv){ (const char *)body, n };
		}
		server_complete(s, tag, 0);
		break;
	}
	case 'I':
		server_complete(s, STRV_NULL, 1);
		break;
	case 'D': {
		struct pg_pend *p = pend_target(s);
		if (p) {
			p->rows++;
			p->bytes += n;
		}
		break;
	}
	case 'd': {
		struct pg_pend *p = pend_target(s);
		if (p)
			p->bytes += n;
		break;
	}
	case 's': {
		struct pg_pend *p = pend_target(s);
		if (p && p->kind == PEND_E) {
			emit_result(s, p, EV_OUT_OK, p->rows, STRV_NULL, STRV_NULL, STRV_NULL);
			pend_pop(s);
		}
		break;
	}
	case 'G':
	case 'H':
	case 'W': {
		struct ev e = { .type = EV_DATA_MOVE };
		e.u.data_move.to_client = t != 'G';
		pg_emit(s, &e);
		break;
	}
	case 'V': {
		struct pg_pend *p = pend_target(s);
		if (p && p->kind == PEND_F)
			emit_result(s, p, EV_OUT_OK, -1, STRV_NULL, STRV_NULL, STRV_NULL);
		break;
	}
	default: /* Notice, Notification, descriptions, completions of Parse/Bind/Close */
		break;
	}
}

/* ---- oversized messages ---- */

/* A message too large to hold: act on its first PG_PREFIX bytes and skip the rest. */
static void msg_prefix(struct pg *s, int to_server, uint8_t t, const uint8_t *body, size_t n, uint64_t full)
{
	if (to_server && t == 'Q') {
		struct strv sql = { (const char *)body, n };
		const uint8_t *z = memchr(body, 0, n);
		if (z)
			sql.n = (size_t)(z - body);
		client_query(s, sql, 1);
	} else if (to_server && t == 'P') {
		client_parse(s, body, n, 1);
	} else if (to_server && t == 'B') {
		client_bind(s, body, n, 1);
	} else if (to_server && t == 'F') {
		client_function(s, body, n); /* lo_write and friends: large arguments */
	} else if (!to_server && t == 'V') {
		server_msg(s, t, body, n); /* lo_read: a large result */
	} else if (t == 'd' || (!to_server && t == 'D')) {
		struct pg_pend *p = pend_target(s);
		if (p) {
			p->bytes += full;
			if (t == 'D')
				p->rows++;
		}
	} else {
		pg_anomaly(s, "pgsql: oversized message skipped", 0);
	}
}

/* ---- resynchronisation ---- */

/* The visible start of an unfinished DataRow (total bytes with its type byte): a sane
 * column count and column lengths that stay inside the message. At least 3 columns or
 * 64 bytes must be visible, so random bytes rarely pass. */
static int datarow_head_ok(const uint8_t *p, size_t n, size_t total)
{
	if (byte_at(p, n, 0) != 'D' || total <= PG_RESYNC_PENDING)
		return 0;
	struct rd r = rd_make(p, n);
	rd_skip(&r, 5);
	uint16_t nc = rd_be16(&r);
	if (r.err || nc == 0 || nc > 1664)
		return 0;
	size_t pos = 7, seen = 0;
	for (uint16_t i = 0; i < nc; i++) {
		uint32_t l = rd_be32(&r);
		if (r.err)
			break;
		pos += 4;
		if (l == 0xffffffffu) {
			seen++;
			continue;
		}
		if ((uint64_t)pos + l > total || (i + 1 == nc && (uint64_t)pos + l != total))
			return 0;
		seen++;
		if ((uint64_t)pos + l >= n)
			break;
		rd_skip(&r, l);
		pos += l;
	}
	return seen >= 3 || seen == nc || pos >= 64;
}

/* Looks for a trustworthy message boundary in p. Returns 1 with *adv = the offset to
 * resume at, or 0 with *adv = bytes that can be dropped while waiting for more. */
static int resync_scan(struct pg *s, int to_server, const uint8_t *p, size_t n, size_t start, size_t *adv)
{
	size_t pending = (size_t)-1;
	for (size_t o = start; o < n; o++) {
		int exact;
		size_t partial;
		size_t c = chain_len(to_server, p + o, n - o, &exact, &partial);
		if ((c >= 1 && exact) || c >= 3 || (c >= 2 && partial)) {
			*adv = o;
			return 1;
		}
		if (c == 0 && partial && !to_server && partial <= PG_RESYNC_BIGROW &&
		    datarow_head_ok(p + o, n - o, partial)) {
			/* picked up inside a large result: a DataRow too big to wait for,
			 * whose visible columns fit its length, is trusted as a boundary */
			*adv = o;
			return 1;
		}
		if (c == 0 && partial && partial <= PG_RESYNC_PENDING && pending == (size_t)-1)
			pending = o;
	}
	(void)s;
	if (pending != (size_t)-1) {
		*adv = pending;
		return 0;
	}
	/* keep a possible header split across segments */
	*adv = n > 4 ? n - 4 : 0;
	return 0;
}

/* ---- decoder table ---- */

static void bad_frame(struct pg *s, struct pg_dir *d, const char *what)
{
	if (!s->confirmed || s->anomalies + 1 >= PG_MAX_ANOMALIES) {
		pg_anomaly(s, what, 1);
		return;
	}
	pg_anomaly(s, what, 0);
	d->resync = 2; /* 2: skip at least the byte that failed */
	d->scanned = 0;
	/* Garbled client bytes reached the server too (which rejects them), so nothing to
	 * match there; garbled responses leave the pending statements unmatchable. */
	if (!s->to_server)
		pend_flush_all(s, EV_OUT_UNKNOWN);
}

static struct proto_result pg_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len, ev_time ts)
{
	struct pg *s = st;
	size_t off = 0;
	if (s->stopped)
		return (struct proto_result){ PROTO_STOP, len };
	s->ts = ts;
	s->to_server = dir == PROTO_TO_SERVER;
	struct pg_dir *d = &s->d[dir == PROTO_TO_SERVER];
	while (off < len && !s->stopped) {
		const uint8_t *p = buf + off;
		size_t n = len - off;
		if (d->skip) {
			size_t k = d->skip < n ? (size_t)d->skip : n;
			d->skip -= k;
			off += k;
			continue;
		}
		if (!s->to_server && s->ssl_wait) {
			uint8_t b = byte_at(p, n, 0);
			int kind = s->ssl_wait;
			s->ssl_wait = 0;
			if ((kind == 1 && b == 'S') || (kind == 2 && b == 'G')) {
				pg_tls(s, p + 1, kind == 2);
				off = len;
				break;
			}
			if (b == 'N') {
				off++;
				continue;
			}
			/* an old server answers with an ErrorResponse: decode it as such */
		}
		if (s->to_server && s->untyped) {
			size_t k = client_untyped(s, p, n);
			if (!k)
				break;
			off += k;
			continue;
		}
		if (!s->to_server && !s->confirmed && s->untyped) {
			/* PostgreSQL never speaks first (MySQL and others do) */
			pg_anomaly(s, "pgsql: server spoke before the client", 1);
			off = len;
			break;
		}
		if (d->resync) {
			if (d->resync == 1 && off == 0 && d->scanned == 0 && looks_tls(p, n)) {
				pg_tls(s, p, 0);
				off = len;
				break;
			}
			if (d->resync == 1 && off == 0 && !s->confirmed && n >= 5 && looks_foreign(s->to_server, p, n)) {
				pg_anomaly(s, "pgsql: not PostgreSQL (MySQL or HTTP bytes)", 1);
				off = len;
				break;
			}
			if (s->to_server && d->resync == 1 && off == 0 && d->scanned == 0 && looks_untyped(p, n) == 1) {
				d->resync = 0;
				s->untyped = 1;
				s->logged_in = 0;
				continue;
			}
			size_t adv;
			int found = resync_scan(s, s->to_server, p, n, d->resync == 2 ? 1 : 0, &adv);
			d->scanned += adv;
			off += adv;
			if (!found) {
				/* a flow that never looked like PostgreSQL is given up on; a known one
				 * keeps scanning (a large result or COPY may be in flight) */
				if (!s->confirmed && d->scanned > PG_RESYNC_UNSURE) {
					pg_anomaly(s, "pgsql: no message boundary found", 1);
					off = len;
				}
				break;
			}
			d->resync = 0;
			d->scanned = 0;
			s->confirmed = 1;
			continue;
		}
		if (n < 5)
			break;
		uint8_t t = byte_at(p, n, 0);
		uint32_t ml = be32_at(p + 1);
		uint32_t mn, mx;
		if (!msg_bounds(s->to_server, t, &mn, &mx)) {
			bad_frame(s, d, s->to_server ? "pgsql: unknown client message type"
						     : "pgsql: unknown server message type");
			continue;
		}
		if (ml < 4) {
			bad_frame(s, d, "pgsql: message length < 4");
			continue;
		}
		if (ml < mn || ml > mx) {
			bad_frame(s, d, "pgsql: message length out of range");
			continue;
		}
		uint64_t total = (uint64_t)ml + 1;
		if (total > n) {
			int count_only = t == 'd' || (!s->to_server && t == 'D');
			if (count_only || total > PG_WHOLE_MAX) {
				if (!count_only && n < 5 + PG_PREFIX)
					break; /* wait for the prefix */
				s->confirmed = 1;
				size_t have = count_only ? 0 : PG_PREFIX;
				msg_prefix(s, s->to_server, t, p + 5, have, ml - 4);
				d->skip = total;
				continue;
			}
			break;
		}
		s->confirmed = 1;
		if (s->to_server)
			client_msg(s, t, p + 5, ml - 4);
		else
			server_msg(s, t, p + 5, ml - 4);
		off += (size_t)total;
	}
	if (s->stopped)
		off = len;
	return (struct proto_result){ s->stopped ? PROTO_STOP : PROTO_OK, off };
}

static enum proto_verdict pg_probe(enum proto_dir dir, const uint8_t *buf, size_t len)
{
	if (dir == PROTO_TO_SERVER) {
		int u = looks_untyped(buf, len);
		if (u == 1)
			return PROTO_YES;
		if (looks_tls(buf, len) && byte_at(buf, len, 0) == 0x16)
			return PROTO_MAYBE;
	} else {
		if (len == 1 && (byte_at(buf, len, 0) == 'S' || byte_at(buf, len, 0) == 'N' || byte_at(buf, len, 0) == 'G'))
			return PROTO_MAYBE;
		if (len >= 9 && byte_at(buf, len, 0) == 'R') {
			uint32_t ml = be32_at(buf + 1), type = be32_at(buf + 5);
			if (ml >= 8 && ml <= 4096 && type <= 12 && type != 1 && type != 4)
				return PROTO_YES;
		}
	}
	int exact;
	size_t partial;
	size_t c = chain_len(dir == PROTO_TO_SERVER, buf, len, &exact, &partial);
	if (c >= 1 && (exact || partial))
		return PROTO_MAYBE;
	if (c >= 2)
		return PROTO_MAYBE;
	return PROTO_NO;
}

static void *pg_open(const struct ev_sink *out, int midstream)
{
	struct pg *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->out = *out;
	if (midstream) {
		s->d[0].resync = 1;
		s->d[1].resync = 1;
		s->logged_in = 1; /* whatever login there was happened before pickup */
	} else {
		s->untyped = 1;
	}
	return s;
}

static void pg_gap(void *st, enum proto_dir dir, ev_time ts)
{
	struct pg *s = st;
	if (s->stopped)
		return;
	s->ts = ts;
	s->to_server = dir == PROTO_TO_SERVER;
	struct pg_dir *d = &s->d[dir == PROTO_TO_SERVER];
	d->skip = 0;
	d->resync = 1;
	d->scanned = 0;
	if (dir == PROTO_TO_CLIENT) {
		s->ssl_wait = 0;
		pend_flush_all(s, EV_OUT_UNKNOWN);
	} else {
		s->untyped = 0;
		if (!pend_push(s, PEND_LOST, 0))
			pend_flush_all(s, EV_OUT_UNKNOWN);
	}
}

/* Capture decrypts the session: what follows is what the TLS start was waiting for (the
 * startup packet, after SSLRequest or a direct ClientHello). */
static void pg_tls_resume(void *st)
{
	struct pg *s = st;
	s->stopped = 0;
	s->ssl_wait = 0;
}

static void pg_stats(void *st, struct proto_stats *out)
{
	const struct pg *s = st;
	out->stmt_evictions += s->stmt_evictions;
	out->portal_evictions += s->portal_evictions;
	out->params_dropped += s->params_dropped;
	out->pending_dropped += s->pend_dropped;
}

static void pg_close(void *st, enum proto_end why, ev_time ts)
{
	struct pg *s = st;
	(void)why;
	s->ts = ts;
	s->to_server = 0;
	if (!s->stopped)
		pend_flush_all(s, EV_OUT_UNKNOWN);
	for (size_t i = 0; i < s->n_stmts; i++)
		stmt_free(s, &s->stmts[i]);
	for (size_t i = 0; i < s->n_portals; i++)
		portal_free(&s->portals[i]);
	free(s->stmts);
	free(s->evicted);
	free(s->portals);
	free(s->binds);
	free(s->render);
	free(s->q);
	free(s);
}

const struct proto_decoder proto_pgsql = {
	.name = "postgresql",
	.default_ports = { 5432 },
	.dialect = EV_DIALECT_POSTGRESQL,
	.probe = pg_probe,
	.open = pg_open,
	.parse = pg_parse,
	.gap = pg_gap,
	.close = pg_close,
	.stats = pg_stats,
	.tls_resume = pg_tls_resume,
};
