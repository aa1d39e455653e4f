/* Fuzz target for the PostgreSQL decoder. Input: flags byte (bit0 mid-stream open, bit1
 * declare a gap every fifth record, bit2 close before the end), split byte, then records
 * [2-byte big-endian header: bit15 direction (1 = to client), bits 0-14 length][bytes].
 * Each direction keeps its unconsumed tail as capture does, capped at PROTO_MAX_HOLD. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_hold {
	uint8_t *b;
	size_t n;
};

static void fz_sink(void *ctx, const struct ev *e)
{
	/* touch every borrowed view so the sanitizers check it */
	volatile size_t *acc = ctx;
	const struct strv *v[4] = { 0 };
	switch (e->type) {
	case EV_QUERY:
		v[0] = &e->u.query.sql;
		v[1] = &e->u.query.stmt_name;
		for (size_t i = 0; i < e->u.query.n_params; i++)
			for (size_t k = 0; k < e->u.query.params[i].text.n; k++)
				*acc += (uint8_t)e->u.query.params[i].text.p[k];
		break;
	case EV_RESULT:
		v[0] = &e->u.result.tag;
		v[1] = &e->u.result.error_code;
		v[2] = &e->u.result.error_msg;
		break;
	case EV_STARTUP:
		v[0] = &e->u.startup.user;
		v[1] = &e->u.startup.database;
		v[2] = &e->u.startup.application;
		for (size_t i = 0; i < e->u.startup.n_params; i++)
			*acc += e->u.startup.params[i].key.n + e->u.startup.params[i].val.n;
		break;
	case EV_PARAM:
		v[0] = &e->u.param.name;
		v[1] = &e->u.param.value;
		break;
	case EV_LOGIN:
		v[0] = &e->u.login.error_code;
		v[1] = &e->u.login.error_msg;
		break;
	case EV_SERVER_HELLO:
		v[0] = &e->u.hello.version;
		break;
	default:
		break;
	}
	for (size_t i = 0; i < 4; i++)
		if (v[i])
			for (size_t k = 0; k < v[i]->n; k++)
				*acc += (uint8_t)v[i]->p[k];
}

static int fz_push(void *st, struct fz_hold *h, enum proto_dir dir, const uint8_t *p, size_t n)
{
	if (h->n + n > PROTO_MAX_HOLD) {
		/* capture would drop this and declare a gap */
		proto_pgsql.gap(st, dir, 0);
		h->n = 0;
		return 0;
	}
	uint8_t *nb = realloc(h->b, h->n + n + 1);
	if (!nb)
		return 0;
	h->b = nb;
	memcpy(h->b + h->n, p, n);
	h->n += n;
	struct proto_result r = proto_pgsql.parse(st, dir, h->b, h->n, 0);
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
	uint8_t flags = data[0];
	size_t split = data[1];
	volatile size_t acc = 0;
	struct ev_sink sink = { fz_sink, (void *)&acc };
	void *st = proto_pgsql.open(&sink, flags & 1);
	if (!st)
		return 0;
	(void)proto_pgsql.probe(PROTO_TO_SERVER, data + 2, size - 2);
	(void)proto_pgsql.probe(PROTO_TO_CLIENT, data + 2, size - 2);
	struct fz_hold h[2] = { { NULL, 0 }, { NULL, 0 } };
	size_t off = 2, rec = 0;
	int stop = 0;
	while (!stop && size - off >= 2) {
		unsigned hdr = (unsigned)data[off] << 8 | data[off + 1];
		off += 2;
		enum proto_dir dir = (hdr & 0x8000) ? PROTO_TO_CLIENT : PROTO_TO_SERVER;
		size_t n = hdr & 0x7fff;
		if (n > size - off)
			n = size - off;
		struct fz_hold *hh = &h[dir];
		if (split && split < n) {
			stop = fz_push(st, hh, dir, data + off, split);
			if (!stop)
				stop = fz_push(st, hh, dir, data + off + split, n - split);
		} else {
			stop = fz_push(st, hh, dir, data + off, n);
		}
		off += n;
		if ((flags & 2) && ++rec % 5 == 4 && !stop) {
			proto_pgsql.gap(st, dir, 0);
			hh->n = 0;
		}
		if ((flags & 4) && rec > 3)
			break;
	}
	proto_pgsql.close(st, PROTO_END_EOF, 0);
	free(h[0].b);
	free(h[1].b);
	return 0;
}
