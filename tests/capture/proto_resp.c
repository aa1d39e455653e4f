/* A stub Redis (RESP2) decoder: what adding a protocol takes. It is one table entry
 * (name, default ports, dialect, callbacks) registered with proto_register(); nothing in
 * capture/ or analyzer/ names it. Commands become statements, replies results, AUTH a login
 * (its password never enters an event). Not a product decoder: no RESP3, no pub/sub. */
#include <stdlib.h>
#include <string.h>

#include "proto_resp.h"

#define RESP_MAX_TEXT 1024 /* statement text kept per command */
#define RESP_MAX_PENDING 64
#define RESP_MAX_DEPTH 8

struct resp {
	struct ev_sink out;
	uint64_t next_id, pending[RESP_MAX_PENDING];
	int is_auth[RESP_MAX_PENDING];
	int head, n;
	char text[RESP_MAX_TEXT];
};

/* End of the CRLF-terminated line starting at off, or 0 when it is not all there. */
static size_t line_end(const uint8_t *b, size_t len, size_t off)
{
	const uint8_t *nl = off < len ? memchr(b + off, '\n', len - off) : NULL;
	return nl ? (size_t)(nl - b) + 1 : 0;
}

static long num(const uint8_t *b, size_t from, size_t to)
{
	long v = 0;
	for (size_t i = from; i < to && b[i] >= '0' && b[i] <= '9' && v < 1000000000; i++)
		v = v * 10 + (b[i] - '0');
	return (from < to && b[from] == '-') ? -1 : v;
}

/* Length of one whole reply (any type, nested arrays) at off, or 0 when incomplete. */
static size_t reply_len(const uint8_t *b, size_t len, size_t off, int depth)
{
	size_t e = line_end(b, len, off);
	if (!e || depth > RESP_MAX_DEPTH)
		return 0;
	long n = num(b, off + 1, e);
	if (b[off] == '$')
		return n < 0 ? e - off : (len - e >= (size_t)n + 2 ? e + (size_t)n + 2 - off : 0);
	if (b[off] == '*') {
		size_t at = e;
		for (long i = 0; i < n; i++) {
			size_t r = reply_len(b, len, at, depth + 1);
			if (!r)
				return 0;
			at += r;
		}
		return at - off;
	}
	return e - off; /* + - : */
}

static enum proto_verdict resp_probe(enum proto_dir dir, const uint8_t *b, size_t len)
{
	if (dir != PROTO_TO_SERVER || len < 4 || b[0] != '*' || b[1] < '1' || b[1] > '9')
		return PROTO_NO;
	size_t e = line_end(b, len, 0);
	return !e ? PROTO_MAYBE : (e < len && b[e] == '$') ? PROTO_YES : PROTO_NO;
}

static void *resp_open(const struct ev_sink *out, int midstream)
{
	struct resp *r = calloc(1, sizeof *r);
	if (r)
		r->out = *out;
	return r;
}

/* One command (an array of bulk strings) at b; its length, or 0 when incomplete. */
static size_t command(struct resp *r, const uint8_t *b, size_t len, ev_time ts)
{
	size_t e = line_end(b, len, 0), at = e, tn = 0;
	long argc = e ? num(b, 1, e) : 0;
	int auth = 0;
	for (long i = 0; e && i < argc; i++) {
		size_t le = line_end(b, len, at);
		long n = le && b[at] == '$' ? num(b, at + 1, le) : -1;
		if (n < 0 || len - le < (size_t)n + 2)
			return 0;
		if (i == 0)
			auth = n == 4 && !strncasecmp((const char *)b + le, "AUTH", 4);
		if (i == 0 || !auth) /* AUTH's arguments are a user and a password */
			for (long k = -(i > 0); k < n && tn < RESP_MAX_TEXT - 1; k++)
				r->text[tn++] = k < 0 ? ' ' : (char)b[le + (size_t)k];
		at = le + (size_t)n + 2;
	}
	if (!e || r->n == RESP_MAX_PENDING)
		return 0;
	struct ev ev = { .type = EV_QUERY, .ts = ts, .to_server = 1 };
	ev.u.query = (struct ev_query){ .id = ++r->next_id, .kind = EV_Q_SIMPLE, .sql_known = 1,
					.sql = { r->text, tn }, .truncated = tn == RESP_MAX_TEXT - 1 };
	int slot = (r->head + r->n++) % RESP_MAX_PENDING;
	r->pending[slot] = r->next_id;
	r->is_auth[slot] = auth;
	ev_emit(&r->out, &ev);
	return at;
}

static void reply(struct resp *r, const uint8_t *b, size_t n, ev_time ts)
{
	if (!r->n)
		return;
	uint64_t id = r->pending[r->head];
	int auth = r->is_auth[r->head];
	r->head = (r->head + 1) % RESP_MAX_PENDING, r->n--;
	size_t w = 1;
	while (w < n && b[w] != ' ' && b[w] != '\r')
		w++;
	struct strv code = b[0] == '-' ? (struct strv){ (const char *)b + 1, w - 1 } : STRV_NULL;
	struct ev ev = { .type = auth ? EV_LOGIN : EV_RESULT, .ts = ts };
	if (auth)
		ev.u.login = (struct ev_login){ .ok = b[0] != '-', .error_code = code };
	else
		ev.u.result = (struct ev_result){ .id = id, .rows = -1, .bytes = n, .error_code = code,
						  .outcome = b[0] == '-' ? EV_OUT_ERROR : EV_OUT_OK };
	ev_emit(&r->out, &ev);
	struct ev ready = { .type = EV_READY, .ts = ts, .u.ready = { 'I' } };
	ev_emit(&r->out, &ready);
}

static struct proto_result resp_parse(void *st, enum proto_dir dir, const uint8_t *b, size_t len,
				      ev_time ts)
{
	struct resp *r = st;
	size_t off = 0, n;
	while (off < len) {
		n = dir == PROTO_TO_SERVER ? command(r, b + off, len - off, ts)
					   : reply_len(b + off, len - off, 0, 0);
		if (!n)
			break;
		if (dir == PROTO_TO_CLIENT)
			reply(r, b + off, n, ts);
		off += n;
	}
	if (off == 0 && len >= PROTO_MAX_HOLD) {
		struct ev ev = { .type = EV_ANOMALY, .ts = ts, .u.anomaly = { "resp: message too large", 1 } };
		ev_emit(&r->out, &ev);
		return (struct proto_result){ PROTO_STOP, len };
	}
	return (struct proto_result){ PROTO_OK, off };
}

static void resp_gap(void *st, enum proto_dir dir, ev_time ts)
{
	((struct resp *)st)->n = 0; /* replies can no longer be matched */
}

static void resp_close(void *st, enum proto_end why, ev_time ts)
{
	free(st);
}

const struct proto_decoder proto_resp = {
	.name = "redis",
	.default_ports = { 6379 },
	.dialect = EV_DIALECT_NONE,
	.probe = resp_probe,
	.open = resp_open,
	.parse = resp_parse,
	.gap = resp_gap,
	.close = resp_close,
};
