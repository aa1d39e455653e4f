/* Capture -> analyzer hand-over, direct or through an analyzer thread (see anpipe.h).
 * Threaded, each call becomes a message in the producer's current chunk: the struct by
 * value, then the bytes it points to, with the pointers aimed at those copies. Chunks go
 * to the analyzer thread in order; it replays the messages and frees the chunk. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "anpipe.h"

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

struct chunk {
	struct chunk *next;
	size_t cap, used;
	_Alignas(8) unsigned char data[];
};

struct anpipe {
	struct an *an;
	int threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t has_work, has_room;
	struct chunk *head, *tail; /* handed over, not yet replayed */
	struct chunk *spare;	   /* replayed standard chunks kept for reuse (a few) */
	int n_spare;
	size_t inflight;	   /* bytes of chunks handed over and not yet freed */
	int busy;		   /* the analyzer is replaying a chunk */
	int stop;
	struct chunk *cur; /* producer's chunk being filled */
};

#define SPARE_MAX 4

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* ---- what a message points to: one walk both sizes it and copies it ---- */

/* p == NULL: only count the bytes a copy takes */
struct wr {
	unsigned char *p;
	size_t off;
};

static void *wr_take(struct wr *w, size_t n)
{
	void *r = w->p ? w->p + w->off : NULL;
	w->off += align8(n);
	return r;
}

static void sv_copy(struct wr *w, struct strv *v)
{
	if (!v->p)
		return; /* "unknown" stays NULL */
	char *d = wr_take(w, v->n + 1);
	if (!d)
		return;
	if (v->n)
		memcpy(d, v->p, v->n);
	d[v->n] = 0;
	v->p = d;
}

static void cs_copy(struct wr *w, const char **s)
{
	if (!*s)
		return;
	size_t n = strlen(*s);
	char *d = wr_take(w, n + 1);
	if (!d)
		return;
	memcpy(d, *s, n + 1);
	*s = d;
}

/* Copy (or count) everything e points to, aiming e's pointers at the copies. */
static void ev_walk(struct wr *w, struct ev *e)
{
	switch (e->type) {
	case EV_STARTUP:
		sv_copy(w, &e->u.startup.user);
		sv_copy(w, &e->u.startup.database);
		sv_copy(w, &e->u.startup.application);
		if (e->u.startup.params) {
			size_t np = e->u.startup.n_params;
			struct ev_kv *kv = wr_take(w, np * sizeof *kv);
			for (size_t i = 0; i < np; i++) {
				struct ev_kv x = e->u.startup.params[i];
				sv_copy(w, &x.key);
				sv_copy(w, &x.val);
				if (kv)
					kv[i] = x;
			}
			if (kv)
				e->u.startup.params = kv;
		}
		break;
	case EV_SERVER_HELLO:
		sv_copy(w, &e->u.hello.version);
		break;
	case EV_AUTH:
		cs_copy(w, &e->u.auth.method);
		break;
	case EV_LOGIN:
		sv_copy(w, &e->u.login.error_code);
		sv_copy(w, &e->u.login.error_msg);
		break;
	case EV_PARAM:
		sv_copy(w, &e->u.param.name);
		sv_copy(w, &e->u.param.value);
		break;
	case EV_USER_CHANGE:
		sv_copy(w, &e->u.user_change.user);
		sv_copy(w, &e->u.user_change.database);
		break;
	case EV_DB_CHANGE:
		sv_copy(w, &e->u.database);
		break;
	case EV_QUERY:
		sv_copy(w, &e->u.query.sql);
		sv_copy(w, &e->u.query.stmt_name);
		if (e->u.query.params) {
			size_t np = e->u.query.n_params;
			struct ev_bind *b = wr_take(w, np * sizeof *b);
			for (size_t i = 0; i < np; i++) {
				struct ev_bind x = e->u.query.params[i];
				sv_copy(w, &x.text);
				if (b)
					b[i] = x;
			}
			if (b)
				e->u.query.params = b;
		}
		break;
	case EV_RESULT:
		sv_copy(w, &e->u.result.tag);
		sv_copy(w, &e->u.result.error_code);
		sv_copy(w, &e->u.result.error_msg);
		break;
	case EV_DATA_MOVE:
		sv_copy(w, &e->u.data_move.what);
		break;
	case EV_ANOMALY:
		cs_copy(w, &e->u.anomaly.what);
		break;
	default:
		break;
	}
}

static size_t ev_extra(const struct ev *ev)
{
	struct ev e = *ev;
	struct wr w = { NULL, 0 };
	ev_walk(&w, &e);
	return w.off;
}

/* The same for an M_OPEN: the addresses (protocol is the decoder's static name). */
static void flow_walk(struct wr *w, struct an_flow *f)
{
	cs_copy(w, &f->client_ip);
	cs_copy(w, &f->server_ip);
}

static size_t flow_extra(const struct an_flow *flow)
{
	struct an_flow f = *flow;
	struct wr w = { NULL, 0 };
	flow_walk(&w, &f);
	return w.off;
}

/* ---- the analyzer thread ---- */

static void replay(struct anpipe *p, struct chunk *c)
{
	for (size_t off = 0; off < c->used;) {
		struct msg *m = (struct msg *)(void *)(c->data + off);
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

static void *run(void *arg)
{
	struct anpipe *p = arg;
	pthread_setname_np(pthread_self(), "dbtap-analyzer"); /* top -H, perf */
	/* signals are the capture thread's business (poll wake-ups, stop flags) */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->has_work, &p->mu);
		struct chunk *c = p->head;
		if (!c)
			break; /* stop, and nothing left */
		p->head = c->next;
		if (!p->head)
			p->tail = NULL;
		p->busy = 1;
		pthread_mutex_unlock(&p->mu);
		replay(p, c);
		pthread_mutex_lock(&p->mu);
		p->busy = 0;
		p->inflight -= c->cap;
		if (c->cap == ANPIPE_CHUNK && p->n_spare < SPARE_MAX) {
			c->next = p->spare;
			p->spare = c;
			p->n_spare++;
		} else {
			free(c);
		}
		pthread_cond_broadcast(&p->has_room);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- the capture side ---- */

void anpipe_flush(struct anpipe *p)
{
	if (!p || !p->threaded || !p->cur || p->cur->used == 0)
		return;
	struct chunk *c = p->cur;
	p->cur = NULL;
	c->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	pthread_cond_signal(&p->has_work);
	pthread_mutex_unlock(&p->mu);
}

/* Room for a message of n bytes in the current chunk (NULL: out of memory). */
static struct msg *reserve(struct anpipe *p, size_t n)
{
	if (p->cur && p->cur->used + n <= p->cur->cap) {
		struct msg *m = (struct msg *)(void *)(p->cur->data + p->cur->used);
		p->cur->used += n;
		return m;
	}
	anpipe_flush(p);
	size_t cap = n > ANPIPE_CHUNK ? align8(n) : ANPIPE_CHUNK;
	struct chunk *c = NULL;
	pthread_mutex_lock(&p->mu);
	/* the analyzer is far behind: wait (one chunk always goes, however big) */
	while (p->inflight > 0 && p->inflight + cap > ANPIPE_MAX_INFLIGHT)
		pthread_cond_wait(&p->has_room, &p->mu);
	if (cap == ANPIPE_CHUNK && p->spare) {
		c = p->spare;
		p->spare = c->next;
		p->n_spare--;
	}
	p->inflight += cap;
	pthread_mutex_unlock(&p->mu);
	if (!c && !(c = malloc(sizeof *c + cap))) {
		pthread_mutex_lock(&p->mu);
		p->inflight -= cap;
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	c->cap = cap;
	c->used = n;
	c->next = NULL;
	p->cur = c;
	return (struct msg *)(void *)c->data;
}

static struct msg *msg_new(struct anpipe *p, int type, struct handle *h, size_t extra)
{
	size_t n = align8(sizeof(struct msg)) + extra;
	struct msg *m = reserve(p, n);
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
	if (!threaded)
		return p;
	p->threaded = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->has_work, NULL);
	pthread_cond_init(&p->has_room, NULL);
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		pthread_cond_destroy(&p->has_room);
		pthread_cond_destroy(&p->has_work);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return NULL;
	}
	return p;
}

/* Wait until the analyzer has replayed everything sent so far. */
static void anpipe_drain(struct anpipe *p)
{
	if (!p || !p->threaded)
		return;
	anpipe_flush(p);
	pthread_mutex_lock(&p->mu);
	while (p->head || p->busy)
		pthread_cond_wait(&p->has_room, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void anpipe_stop(struct anpipe *p)
{
	if (!p)
		return;
	if (p->threaded) {
		anpipe_flush(p);
		free(p->cur); /* only when flush had nothing to hand over */
		p->cur = NULL;
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->has_work);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
		while (p->spare) {
			struct chunk *c = p->spare;
			p->spare = c->next;
			free(c);
		}
		pthread_cond_destroy(&p->has_room);
		pthread_cond_destroy(&p->has_work);
		pthread_mutex_destroy(&p->mu);
		p->threaded = 0;
	}
}

void anpipe_free(struct anpipe *p)
{
	anpipe_stop(p);
	free(p);
}

void *anpipe_open(struct anpipe *p, const struct an_flow *flow)
{
	if (!p->threaded)
		return an_open(p->an, flow);
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	struct msg *m = msg_new(p, M_OPEN, h, flow_extra(flow));
	if (!m) {
		free(h);
		return NULL;
	}
	m->u.flow = *flow;
	struct wr w = { (unsigned char *)m, align8(sizeof *m) };
	flow_walk(&w, &m->u.flow);
	return h;
}

void anpipe_feed(struct anpipe *p, void *h, const struct ev *ev)
{
	if (!p->threaded) {
		an_feed(p->an, h, ev);
		return;
	}
	struct msg *m = msg_new(p, M_FEED, h, ev_extra(ev));
	if (!m)
		return; /* out of memory: the event is lost, like any allocation failure */
	m->u.ev = *ev;
	struct wr w = { (unsigned char *)m, align8(sizeof *m) };
	ev_walk(&w, &m->u.ev);
}

void anpipe_close(struct anpipe *p, void *h, const struct an_flow_end *end)
{
	if (!p->threaded) {
		an_close(p->an, h, end);
		return;
	}
	struct msg *m = msg_new(p, M_CLOSE, h, 0);
	if (!m) {
		/* the handle cannot be handed over: wait until the analyzer is idle, then
		 * close directly (its thread is not touching the analyzer then) */
		anpipe_drain(p);
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
	if (!p->threaded) {
		an_tick(p->an, now);
		return;
	}
	struct msg *m = msg_new(p, M_TICK, NULL, 0);
	if (m)
		m->u.now = now;
}

void anpipe_call(struct anpipe *p, void (*fn)(void *), void *ctx)
{
	if (!p->threaded) {
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
