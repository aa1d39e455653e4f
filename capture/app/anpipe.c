/* Decoders -> analyzer hand-over, direct or through an analyzer thread (see anpipe.h).
 * Threaded, each call becomes a message in the producer's current chunk: the struct by
 * value, then the bytes it points to, with the pointers aimed at those copies. Chunks go
 * to the analyzer thread in order (chq.c); it replays the messages. */
#include <stdlib.h>
#include <string.h>

#include "anpipe.h"
#include "chq.h"

enum { M_OPEN, M_FEED, M_CLOSE, M_TICK, M_CALL };

struct handle {
	struct an_session *s; /* set and used by the analyzer thread only */
};

struct msg {
	uint32_t type;
	uint32_t size; /* whole message, a multiple of 8 */
	struct handle *h;
	union {
		struct an_flow flow;
		struct ev ev;
		struct an_flow_end end;
		ev_time now;
		struct {
			void (*fn)(void *);
			void *ctx;
		} call;
	} u;
};

struct anpipe {
	struct an *an;
	struct chq *q; /* NULL: direct calls */
};

/* ---- what a flow message points to (events copy themselves: ev_copy.c) ---- */

/* The same for an an_flow: the addresses (protocol is the decoder's static name). */
static void flow_walk(struct ev_copier *w, struct an_flow *f)
{
	ev_copy_cstr(w, &f->client_ip);
	ev_copy_cstr(w, &f->server_ip);
}

size_t anpipe_flow_extra(const struct an_flow *flow)
{
	struct an_flow f = *flow;
	struct ev_copier w = { NULL, 0 };
	flow_walk(&w, &f);
	return w.off;
}

void anpipe_flow_copy(struct an_flow *f, void *at)
{
	struct ev_copier w = { at, 0 };
	flow_walk(&w, f);
}

/* ---- the analyzer thread ---- */

static void replay(void *ctx, unsigned char *data, size_t used)
{
	struct anpipe *p = ctx;
	for (size_t off = 0; off < used;) {
		struct msg *m = (struct msg *)(void *)(data + off);
		off += m->size;
		switch (m->type) {
		case M_OPEN:
			m->h->s = an_open(p->an, &m->u.flow);
			break;
		case M_FEED:
			if (m->h->s)
				an_feed(p->an, m->h->s, &m->u.ev);
			break;
		case M_CLOSE:
			if (m->h->s)
				an_close(p->an, m->h->s, &m->u.end);
			free(m->h);
			break;
		case M_TICK:
			an_tick(p->an, m->u.now);
			break;
		case M_CALL:
			m->u.call.fn(m->u.call.ctx);
			break;
		}
	}
}

static const struct chq_ops an_ops = { .thread_name = "dbtap-analyzer", .replay = replay };

/* ---- the producer side ---- */

void anpipe_flush(struct anpipe *p)
{
	if (p)
		chq_flush(p->q);
}

static struct msg *msg_new(struct anpipe *p, int type, struct handle *h, size_t extra)
{
	size_t n = chq_align8(sizeof(struct msg)) + extra;
	struct msg *m = chq_reserve(p->q, n);
	if (!m)
		return NULL;
	m->type = (uint32_t)type;
	m->size = (uint32_t)n;
	m->h = h;
	return m;
}

struct anpipe *anpipe_new(struct an *an, int threaded)
{
	struct anpipe *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->an = an;
	if (threaded && !(p->q = chq_new(&an_ops, p))) {
		free(p);
		return NULL;
	}
	return p;
}

void anpipe_stop(struct anpipe *p)
{
	if (!p)
		return;
	chq_free(p->q);
	p->q = NULL;
}

void anpipe_free(struct anpipe *p)
{
	anpipe_stop(p);
	free(p);
}

void *anpipe_open(struct anpipe *p, const struct an_flow *flow)
{
	if (!p->q)
		return an_open(p->an, flow);
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	struct msg *m = msg_new(p, M_OPEN, h, anpipe_flow_extra(flow));
	if (!m) {
		free(h);
		return NULL;
	}
	m->u.flow = *flow;
	anpipe_flow_copy(&m->u.flow, (unsigned char *)m + chq_align8(sizeof *m));
	return h;
}

void anpipe_feed(struct anpipe *p, void *h, const struct ev *ev)
{
	if (!p->q) {
		an_feed(p->an, h, ev);
		return;
	}
	struct msg *m = msg_new(p, M_FEED, h, ev_copy_size(ev));
	if (!m)
		return; /* out of memory: the event is lost, like any allocation failure */
	m->u.ev = *ev;
	ev_copy_into(&m->u.ev, (unsigned char *)m + chq_align8(sizeof *m));
}

void anpipe_close(struct anpipe *p, void *h, const struct an_flow_end *end)
{
	if (!p->q) {
		an_close(p->an, h, end);
		return;
	}
	struct msg *m = msg_new(p, M_CLOSE, h, 0);
	if (!m) {
		/* the handle cannot be handed over: wait until the analyzer is idle, then
		 * close directly (its thread is not touching the analyzer then) */
		chq_drain(p->q);
		struct handle *hh = h;
		if (hh->s)
			an_close(p->an, hh->s, end);
		free(hh);
		return;
	}
	m->u.end = *end; /* reason: a static literal */
}

void anpipe_tick(struct anpipe *p, ev_time now)
{
	if (!p->q) {
		an_tick(p->an, now);
		return;
	}
	struct msg *m = msg_new(p, M_TICK, NULL, 0);
	if (m)
		m->u.now = now;
}

void anpipe_call(struct anpipe *p, void (*fn)(void *), void *ctx)
{
	if (!p->q) {
		fn(ctx);
		return;
	}
	struct msg *m = msg_new(p, M_CALL, NULL, 0);
	if (m) {
		m->u.call.fn = fn;
		m->u.call.ctx = ctx;
	}
	anpipe_flush(p);
}

size_t anpipe_queued(struct anpipe *p)
{
	return p && p->q ? chq_inflight(p->q) : 0;
}
