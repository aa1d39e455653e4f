/* The deep copy of an event, owned by the vocabulary so that a new field or event type
 * is copied where it is defined: one walk both sizes a copy and makes it. Used to hand
 * events to another thread (capture/app/anpipe.c). */
#include <stdlib.h>
#include <string.h>

#include "ev.h"

static void *wr_take(struct ev_copier *w, size_t n)
{
	void *r = w->p ? w->p + w->off : NULL;
	w->off += (n + 7) & ~(size_t)7; /* keeps every copy 8-byte aligned */
	return r;
}

static void sv_copy(struct ev_copier *w, struct strv *v)
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

void ev_copy_cstr(struct ev_copier *w, const char **s)
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
static void ev_walk(struct ev_copier *w, struct ev *e)
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
		ev_copy_cstr(w, &e->u.auth.method);
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
		ev_copy_cstr(w, &e->u.anomaly.what);
		break;
	default:
		break;
	}
}

size_t ev_copy_size(const struct ev *ev)
{
	struct ev e = *ev;
	struct ev_copier w = { NULL, 0 };
	ev_walk(&w, &e);
	return w.off;
}

void ev_copy_into(struct ev *e, void *at)
{
	struct ev_copier w = { at, 0 };
	ev_walk(&w, e);
}
