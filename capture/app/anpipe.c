/* Decoders -> analyzer hand-over, direct or through an analyzer thread (see anpipe.h), a
 * stage (stage.h) whose calls are the analyzer's: threaded, each call's argument is copied
 * with what it points to (events copy themselves: ev_copy.c) and the analyzer thread
 * replays them in order. */
#include <stdlib.h>
#include <string.h>

#include "anpipe.h"
#include "chq.h"
#include "stage.h"

enum { M_OPEN, M_FEED, M_CLOSE, M_TICK, M_CALL };

/* A session's handle, in both modes (so a call means the same inline or queued) */
struct handle {
	struct an_session *s; /* set and used on the analyzer's side only */
};

struct anpipe {
	struct an *an;
	struct stage *st;
};

/* ---- what a flow message points to (events copy themselves: ev_copy.c) ---- */

/* The same for an an_flow: the addresses (protocol is the decoder's static name). */
static void flow_walk(struct ev_copier *w, struct an_flow *f)
{
	ev_copy_cstr(w, &f->client_ip);
	ev_copy_cstr(w, &f->server_ip);
}

size_t anpipe_flow_extra(const void *arg)
{
	struct an_flow f = *(const struct an_flow *)arg;
	struct ev_copier w = { NULL, 0 };
	flow_walk(&w, &f);
	return w.off;
}

void anpipe_flow_copy(void *arg, void *at)
{
	struct ev_copier w = { at, 0 };
	flow_walk(&w, arg);
}

/* ---- the calls and their arguments ---- */

struct a_open {
	struct an_flow flow; /* first: anpipe_flow_copy */
	struct handle *h;
};

static const struct stage_arg open_arg = { sizeof(struct a_open), anpipe_flow_extra, anpipe_flow_copy };

struct a_feed {
	struct handle *h;
	const struct ev *ev; /* threaded: a copy behind the argument */
};

static size_t feed_extra(const void *arg)
{
	return chq_align8(sizeof(struct ev)) + ev_copy_size(((const struct a_feed *)arg)->ev);
}

static void feed_copy(void *arg, void *at)
{
	struct a_feed *a = arg;
	struct ev *e = at;
	*e = *a->ev;
	ev_copy_into(e, (unsigned char *)at + chq_align8(sizeof *e));
	a->ev = e;
}

static const struct stage_arg feed_arg = { sizeof(struct a_feed), feed_extra, feed_copy };

struct a_close {
	struct handle *h;
	struct an_flow_end end; /* reason: a static literal */
};

static const struct stage_arg close_arg = { sizeof(struct a_close), NULL, NULL };
static const struct stage_arg tick_arg = { sizeof(ev_time), NULL, NULL };

/* ---- the analyzer's side ---- */

static void run(void *ctx, int type, void *arg)
{
	struct anpipe *p = ctx;
	switch (type) {
	case M_OPEN: {
		struct a_open *a = arg;
		a->h->s = an_open(p->an, &a->flow);
		break;
	}
	case M_FEED: {
		struct a_feed *a = arg;
		if (a->h->s)
			an_feed(p->an, a->h->s, a->ev);
		break;
	}
	case M_CLOSE: {
		struct a_close *a = arg;
		if (a->h->s)
			an_close(p->an, a->h->s, &a->end);
		free(a->h);
		break;
	}
	case M_TICK:
		an_tick(p->an, *(ev_time *)arg);
		break;
	case M_CALL: {
		struct stage_call *a = arg;
		a->fn(a->ctx);
		break;
	}
	}
}

static const struct stage_ops an_ops = { .thread_name = "dbtap-analyzer", .run = run };

/* ---- the producer side ---- */

void anpipe_flush(struct anpipe *p)
{
	if (p)
		stage_flush(p->st);
}

struct anpipe *anpipe_new(struct an *an, int threaded)
{
	struct anpipe *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->an = an;
	if (!(p->st = stage_new(&an_ops, p, threaded))) {
		free(p);
		return NULL;
	}
	return p;
}

void anpipe_stop(struct anpipe *p)
{
	if (p)
		stage_stop(p->st);
}

void anpipe_free(struct anpipe *p)
{
	if (!p)
		return;
	stage_free(p->st);
	free(p);
}

void *anpipe_open(struct anpipe *p, const struct an_flow *flow)
{
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	struct a_open a = { *flow, h };
	if (stage_post(p->st, M_OPEN, &a, &open_arg) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

void anpipe_feed(struct anpipe *p, void *h, const struct ev *ev)
{
	struct a_feed a = { h, ev };
	/* out of memory: the event is lost, like any allocation failure */
	(void)stage_post(p->st, M_FEED, &a, &feed_arg);
}

void anpipe_close(struct anpipe *p, void *h, const struct an_flow_end *end)
{
	struct a_close a = { h, *end };
	if (stage_post(p->st, M_CLOSE, &a, &close_arg) < 0) {
		/* the handle cannot be handed over: wait until the analyzer is idle, then
		 * close directly (its thread is not touching the analyzer then) */
		stage_drain(p->st);
		run(p, M_CLOSE, &a);
	}
}

void anpipe_tick(struct anpipe *p, ev_time now)
{
	(void)stage_post(p->st, M_TICK, &now, &tick_arg);
}

void anpipe_call(struct anpipe *p, void (*fn)(void *), void *ctx)
{
	struct stage_call a = { fn, ctx };
	(void)stage_post(p->st, M_CALL, &a, &stage_call_arg);
	anpipe_flush(p);
}

size_t anpipe_queued(struct anpipe *p)
{
	return p ? stage_queued(p->st) : 0;
}
