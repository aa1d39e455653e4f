/* Fuzz target for the MySQL / MariaDB decoder. Input: flags byte (bit0 mid-stream open,
 * bit1 declare a gap before every seventh record, bit2 stop before the end), split byte
 * (each record is delivered in two calls cut there), then records
 * [2-byte big-endian header: bit15 direction (1 = to client), bits 0-14 length][bytes].
 * Each direction keeps its unconsumed tail as capture does, capped at PROTO_MAX_HOLD.
 * Seeds: tests/protocols/data/mysql/segs2fuzz.py turns our captures into this format. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fm_hold {
	uint8_t *b;
	size_t n;
};

static void fm_view(volatile size_t *acc, struct strv v)
{
	for (size_t k = 0; k < v.n; k++)
		*acc += (uint8_t)v.p[k];
}

/* Touch every borrowed view so the sanitizers check its bounds. */
static void fm_sink(void *ctx, const struct ev *e)
{
	volatile size_t *acc = ctx;
	switch (e->type) {
	case EV_QUERY:
		fm_view(acc, e->u.query.sql);
		fm_view(acc, e->u.query.stmt_name);
		for (size_t i = 0; i < e->u.query.n_params; i++)
			fm_view(acc, e->u.query.params[i].text);
		break;
	case EV_RESULT:
		fm_view(acc, e->u.result.error_code);
		fm_view(acc, e->u.result.error_msg);
		break;
	case EV_STARTUP:
		fm_view(acc, e->u.startup.user);
		fm_view(acc, e->u.startup.database);
		fm_view(acc, e->u.startup.application);
		for (size_t i = 0; i < e->u.startup.n_params; i++) {
			fm_view(acc, e->u.startup.params[i].key);
			fm_view(acc, e->u.startup.params[i].val);
		}
		break;
	case EV_LOGIN:
		fm_view(acc, e->u.login.error_code);
		fm_view(acc, e->u.login.error_msg);
		break;
	case EV_SERVER_HELLO:
		fm_view(acc, e->u.hello.version);
		break;
	case EV_AUTH:
		*acc += strlen(e->u.auth.method);
		break;
	case EV_USER_CHANGE:
		fm_view(acc, e->u.user_change.user);
		fm_view(acc, e->u.user_change.database);
		break;
	case EV_DB_CHANGE:
		fm_view(acc, e->u.database);
		break;
	case EV_DATA_MOVE:
		fm_view(acc, e->u.data_move.what);
		break;
	case EV_ANOMALY:
		*acc += strlen(e->u.anomaly.what);
		break;
	default:
		break;
	}
}

/* Returns 1 when the decoder said stop. */
static int fm_push(void *st, struct fm_hold *h, enum proto_dir dir, const uint8_t *p, size_t n)
{
	if (h->n + n > PROTO_MAX_HOLD) {
		proto_mysql.gap(st, dir, 0); /* capture would drop the bytes and say so */
		h->n = 0;
		return 0;
	}
	uint8_t *nb = realloc(h->b, h->n + n + 1);
	if (!nb)
		return 0;
	h->b = nb;
	if (n)
		memcpy(h->b + h->n, p, n);
	h->n += n;
	struct proto_result r = proto_mysql.parse(st, dir, h->b, h->n, 0);
	if (r.consumed > h->n)
		abort(); /* a decoder bug */
	memmove(h->b, h->b + r.consumed, h->n - r.consumed);
	h->n -= r.consumed;
	return r.status == PROTO_STOP;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0], split = data[1];
	volatile size_t acc = 0;
	struct ev_sink sink = { fm_sink, (void *)&acc };
	void *st = proto_mysql.open(&sink, flags & 1);
	if (!st)
		return 0;
	struct fm_hold h[2] = { { 0 }, { 0 } };
	size_t off = 2, rec = 0;
	int stop = 0;
	while (!stop && size - off >= 2) {
		unsigned hdr = (unsigned)data[off] << 8 | data[off + 1];
		off += 2;
		enum proto_dir dir = (hdr & 0x8000) ? PROTO_TO_CLIENT : PROTO_TO_SERVER;
		size_t n = hdr & 0x7fff;
		if (n > size - off)
			n = size - off;
		if ((flags & 2) && ++rec % 7 == 0) {
			proto_mysql.gap(st, dir, 0);
			h[dir].n = 0;
		}
		if (split && split < n) {
			stop = fm_push(st, &h[dir], dir, data + off, split);
			if (!stop)
				stop = fm_push(st, &h[dir], dir, data + off + split, n - split);
		} else {
			stop = fm_push(st, &h[dir], dir, data + off, n);
		}
		off += n;
		if ((flags & 4) && off > size / 2)
			break;
	}
	proto_mysql.close(st, PROTO_END_EOF, 0);
	free(h[0].b);
	free(h[1].b);
	return 0;
}
