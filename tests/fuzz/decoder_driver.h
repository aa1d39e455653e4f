/* The driver shared by the decoder fuzz targets. Input: flags byte (bit0 mid-stream open,
 * bit1 declare a gap before every seventh record, bit2 stop half-way), split byte (each
 * record is delivered in two calls cut there), then records
 * [2-byte big-endian header: bit15 direction (1 = to client), bits 0-14 length][bytes].
 * Each direction keeps its unconsumed tail as capture does, capped at PROTO_MAX_HOLD.
 * Both probes see the records' bytes too. */
#ifndef DBTAP_DECODER_DRIVER_H
#define DBTAP_DECODER_DRIVER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

struct fd_hold {
	uint8_t *b;
	size_t n;
};

static void fd_view(volatile size_t *acc, struct strv v)
{
	for (size_t k = 0; k < v.n; k++)
		*acc += (uint8_t)v.p[k];
}

/* Touch every borrowed view so the sanitizers check its bounds. */
static void fd_sink(void *ctx, const struct ev *e)
{
	volatile size_t *acc = ctx;
	switch (e->type) {
	case EV_QUERY:
		fd_view(acc, e->u.query.sql);
		fd_view(acc, e->u.query.stmt_name);
		for (size_t i = 0; i < e->u.query.n_params; i++)
			fd_view(acc, e->u.query.params[i].text);
		break;
	case EV_RESULT:
		fd_view(acc, e->u.result.tag);
		fd_view(acc, e->u.result.error_code);
		fd_view(acc, e->u.result.error_msg);
		break;
	case EV_STARTUP:
		fd_view(acc, e->u.startup.user);
		fd_view(acc, e->u.startup.database);
		fd_view(acc, e->u.startup.application);
		for (size_t i = 0; i < e->u.startup.n_params; i++) {
			fd_view(acc, e->u.startup.params[i].key);
			fd_view(acc, e->u.startup.params[i].val);
		}
		break;
	case EV_PARAM:
		fd_view(acc, e->u.param.name);
		fd_view(acc, e->u.param.value);
		break;
	case EV_LOGIN:
		fd_view(acc, e->u.login.error_code);
		fd_view(acc, e->u.login.error_msg);
		break;
	case EV_SERVER_HELLO:
		fd_view(acc, e->u.hello.version);
		break;
	case EV_AUTH:
		*acc += strlen(e->u.auth.method);
		break;
	case EV_USER_CHANGE:
		fd_view(acc, e->u.user_change.user);
		fd_view(acc, e->u.user_change.database);
		break;
	case EV_DB_CHANGE:
		fd_view(acc, e->u.database);
		break;
	case EV_DATA_MOVE:
		fd_view(acc, e->u.data_move.what);
		break;
	case EV_ANOMALY:
		*acc += strlen(e->u.anomaly.what);
		break;
	default:
		break;
	}
}

/* Returns 1 when the decoder said stop. */
static int fd_push(const struct proto_decoder *d, void *st, struct fd_hold *h, enum proto_dir dir,
		   const uint8_t *p, size_t n)
{
	if (h->n + n > PROTO_MAX_HOLD) {
		d->gap(st, dir, 0); /* capture would drop the bytes and say so */
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
	struct proto_result r = d->parse(st, dir, h->b, h->n, 0);
	if (r.consumed > h->n)
		abort(); /* a decoder bug */
	memmove(h->b, h->b + r.consumed, h->n - r.consumed);
	h->n -= r.consumed;
	return r.status == PROTO_STOP;
}

static int fuzz_decoder(const struct proto_decoder *d, const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0], split = data[1];
	volatile size_t acc = 0;
	struct ev_sink sink = { fd_sink, (void *)&acc };
	(void)d->probe(PROTO_TO_SERVER, data + 2, size - 2);
	(void)d->probe(PROTO_TO_CLIENT, data + 2, size - 2);
	void *st = d->open(&sink, flags & 1);
	if (!st)
		return 0;
	struct fd_hold h[2] = { { 0 }, { 0 } };
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
			d->gap(st, dir, 0);
			h[dir].n = 0;
		}
		if (split && split < n) {
			stop = fd_push(d, st, &h[dir], dir, data + off, split);
			if (!stop)
				stop = fd_push(d, st, &h[dir], dir, data + off + split, n - split);
		} else {
			stop = fd_push(d, st, &h[dir], dir, data + off, n);
		}
		off += n;
		if ((flags & 4) && off > size / 2)
			break;
	}
	d->close(st, PROTO_END_EOF, 0);
	free(h[0].b);
	free(h[1].b);
	return 0;
}

#endif
