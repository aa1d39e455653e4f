/* See segs.h. */
#include "segs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void src_path(char *buf, size_t len, const char *rel)
{
	const char *src = getenv("DBTAP_SRC");
	if (rel[0] != '/' && src)
		snprintf(buf, len, "%s/%s", src, rel);
	else
		snprintf(buf, len, "%s", rel);
}

char *segs_read_text(const char *rel)
{
	char path[4096];
	src_path(path, sizeof path, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (b) {
		size_t got = fread(b, 1, (size_t)n, f);
		b[got] = 0;
	}
	fclose(f);
	return b;
}

int segs_write_text(const char *rel, const char *text)
{
	char path[4096];
	src_path(path, sizeof path, rel);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

int segs_load(struct segs *s, const char *path)
{
	char full[4096];
	src_path(full, sizeof full, path);
	memset(s, 0, sizeof *s);
	FILE *f = fopen(full, "r");
	if (!f)
		return -1;
	size_t cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	while ((got = getline(&line, &lcap, f)) > 0) {
		if (line[0] != 'C' && line[0] != 'S')
			continue;
		size_t hexlen = 0;
		while (hexlen + 2 < (size_t)got && hexval(line[2 + hexlen]) >= 0)
			hexlen++;
		if (s->n == cap) {
			cap = cap ? cap * 2 : 64;
			s->v = realloc(s->v, cap * sizeof *s->v);
		}
		struct seg *g = &s->v[s->n++];
		g->dir = line[0] == 'C' ? PROTO_TO_SERVER : PROTO_TO_CLIENT;
		g->len = hexlen / 2;
		g->data = malloc(g->len ? g->len : 1);
		for (size_t i = 0; i < g->len; i++)
			g->data[i] = (uint8_t)(hexval(line[2 + 2 * i]) << 4 | hexval(line[3 + 2 * i]));
	}
	free(line);
	fclose(f);
	return 0;
}

void segs_free(struct segs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].data);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static const char *kind_name(enum ev_query_kind k)
{
	switch (k) {
	case EV_Q_SIMPLE:
		return "simple";
	case EV_Q_EXECUTE:
		return "execute";
	case EV_Q_PREPARE:
		return "prepare";
	case EV_Q_FUNCTION:
		return "function";
	}
	return "?";
}

static const char *outcome_name(enum ev_outcome o)
{
	switch (o) {
	case EV_OUT_OK:
		return "ok";
	case EV_OUT_ERROR:
		return "error";
	case EV_OUT_UNKNOWN:
		return "unknown";
	case EV_OUT_SKIPPED:
		return "skipped";
	}
	return "?";
}

#define SV(v) (int)((v).n > 200 ? 200 : (v).n), (v).p ? (v).p : ""

void ev_format(const struct ev *e, char *b, size_t n)
{
	switch (e->type) {
	case EV_STARTUP:
		snprintf(b, n, "STARTUP user=%.*s database=%.*s application=%.*s params=%zu replication=%d",
			 SV(e->u.startup.user), SV(e->u.startup.database), SV(e->u.startup.application),
			 e->u.startup.n_params, e->u.startup.replication);
		break;
	case EV_SERVER_HELLO:
		snprintf(b, n, "HELLO version=%.*s conn_id=%llu", SV(e->u.hello.version),
			 (unsigned long long)e->u.hello.conn_id);
		break;
	case EV_AUTH:
		snprintf(b, n, "AUTH method=%s", e->u.auth.method ? e->u.auth.method : "");
		break;
	case EV_LOGIN:
		snprintf(b, n, "LOGIN ok=%d code=%.*s msg=%.*s", e->u.login.ok, SV(e->u.login.error_code),
			 SV(e->u.login.error_msg));
		break;
	case EV_TLS:
		snprintf(b, n, "TLS");
		break;
	case EV_CLEARTEXT_PASSWORD:
		snprintf(b, n, "CLEARTEXT_PASSWORD");
		break;
	case EV_PARAM:
		snprintf(b, n, "PARAM %.*s=%.*s", SV(e->u.param.name), SV(e->u.param.value));
		break;
	case EV_USER_CHANGE:
		snprintf(b, n, "USER_CHANGE user=%.*s database=%.*s ok=%d", SV(e->u.user_change.user),
			 SV(e->u.user_change.database), e->u.user_change.ok);
		break;
	case EV_DB_CHANGE:
		snprintf(b, n, "DB_CHANGE %.*s", SV(e->u.database));
		break;
	case EV_QUERY:
		snprintf(b, n, "QUERY id=%llu kind=%s known=%d trunc=%d name=%.*s params=%zu sql=%.*s",
			 (unsigned long long)e->u.query.id, kind_name(e->u.query.kind), e->u.query.sql_known,
			 e->u.query.truncated, SV(e->u.query.stmt_name), e->u.query.n_params,
			 SV(e->u.query.sql));
		break;
	case EV_RESULT:
		snprintf(b, n, "RESULT id=%llu outcome=%s rows=%lld bytes=%llu tag=%.*s code=%.*s more=%d",
			 (unsigned long long)e->u.result.id, outcome_name(e->u.result.outcome),
			 (long long)e->u.result.rows, (unsigned long long)e->u.result.bytes,
			 SV(e->u.result.tag), SV(e->u.result.error_code), e->u.result.more);
		break;
	case EV_READY:
		snprintf(b, n, "READY txn=%c", e->u.ready.txn);
		break;
	case EV_DATA_MOVE:
		snprintf(b, n, "DATA_MOVE to_client=%d what=%.*s", e->u.data_move.to_client,
			 SV(e->u.data_move.what));
		break;
	case EV_CANCEL:
		snprintf(b, n, "CANCEL target=%llu", (unsigned long long)e->u.cancel.target_conn_id);
		break;
	case EV_SESSION_RESET:
		snprintf(b, n, "SESSION_RESET");
		break;
	case EV_ANOMALY:
		snprintf(b, n, "ANOMALY fatal=%d %s", e->u.anomaly.fatal,
			 e->u.anomaly.what ? e->u.anomaly.what : "");
		break;
	default:
		snprintf(b, n, "EV%d", (int)e->type);
	}
}

static void evlog_fn(void *ctx, const struct ev *e)
{
	struct evlog *l = ctx;
	char line[1024];
	ev_format(e, line, sizeof line);
	size_t n = strlen(line);
	if (l->len + n + 2 > l->cap) {
		l->cap = (l->len + n + 2) * 2;
		l->text = realloc(l->text, l->cap);
	}
	memcpy(l->text + l->len, line, n);
	l->len += n;
	l->text[l->len++] = '\n';
	l->text[l->len] = 0;
	if ((unsigned)e->type < 32)
		l->count[e->type]++;
}

void evlog_init(struct evlog *l)
{
	memset(l, 0, sizeof *l);
	l->cap = 1;
	l->text = calloc(1, 1);
}

void evlog_free(struct evlog *l)
{
	free(l->text);
	memset(l, 0, sizeof *l);
}

struct ev_sink evlog_sink(struct evlog *l)
{
	return (struct ev_sink){ evlog_fn, l };
}

/* Per-direction holding buffer, as capture keeps unconsumed bytes. */
struct hold {
	uint8_t *b;
	size_t n, cap;
};

static int push(const struct proto_decoder *d, void *st, struct hold *h, enum proto_dir dir,
		const uint8_t *p, size_t n, ev_time ts)
{
	if (h->n + n > h->cap) {
		h->cap = (h->n + n) * 2 + 16;
		h->b = realloc(h->b, h->cap);
	}
	memcpy(h->b + h->n, p, n);
	h->n += n;
	struct proto_result r = d->parse(st, dir, h->b, h->n, ts);
	if (r.consumed > h->n)
		r.consumed = h->n; /* a decoder bug; the test asserting on events will show it */
	memmove(h->b, h->b + r.consumed, h->n - r.consumed);
	h->n -= r.consumed;
	return r.status == PROTO_STOP;
}

int segs_feed(const struct proto_decoder *d, void *st, const struct segs *s, size_t split)
{
	struct hold h[2] = { { 0 }, { 0 } };
	int stops = 0;
	for (size_t i = 0; i < s->n && !stops; i++) {
		const struct seg *g = &s->v[i];
		ev_time ts = 1700000000000000LL + (ev_time)i * 1000;
		struct hold *hh = &h[g->dir];
		if (split > 0 && split < g->len) {
			stops += push(d, st, hh, g->dir, g->data, split, ts);
			if (!stops)
				stops += push(d, st, hh, g->dir, g->data + split, g->len - split, ts);
		} else {
			stops += push(d, st, hh, g->dir, g->data, g->len, ts);
		}
	}
	free(h[0].b);
	free(h[1].b);
	return stops;
}

void segs_run(const struct proto_decoder *d, const struct segs *s, size_t split, int midstream,
	      struct evlog *out)
{
	struct ev_sink sink = evlog_sink(out);
	void *st = d->open(&sink, midstream);
	if (!st)
		return;
	segs_feed(d, st, s, split);
	d->close(st, PROTO_END_EOF, 1700000000000000LL + 999999);
}
