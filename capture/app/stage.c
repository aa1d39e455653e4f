/* Inline or on a thread (see stage.h). A queued call is a message: its type and size,
 * then the argument struct, then the bytes that struct points to. */
#include "stage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chq.h"

const struct stage_arg stage_call_arg = { sizeof(struct stage_call), NULL, NULL };

struct stage {
	const struct stage_ops *ops;
	void *ctx;
	struct chq *q; /* NULL: inline */
	struct chq_ops qops; /* the queue keeps a pointer to them */
};

struct smsg {
	uint32_t type;
	uint32_t size; /* whole message, a multiple of 8 */
};

#define HEAD chq_align8(sizeof(struct smsg))

static void replay(void *ctx, unsigned char *data, size_t used)
{
	struct stage *s = ctx;
	for (size_t off = 0; off < used;) {
		struct smsg *m = (struct smsg *)(void *)(data + off);
		off += m->size;
		s->ops->run(s->ctx, (int)m->type, (unsigned char *)m + HEAD);
	}
}

static void idle(void *ctx)
{
	struct stage *s = ctx;
	s->ops->idle(s->ctx);
}

struct stage *stage_new(const struct stage_ops *ops, void *ctx, int threaded)
{
	struct stage *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->ops = ops;
	s->ctx = ctx;
	s->qops = (struct chq_ops){ .thread_name = ops->thread_name, .replay = replay,
				    .idle = ops->idle ? idle : NULL };
	if (threaded && !(s->q = chq_new(&s->qops, s))) {
		free(s);
		return NULL;
	}
	return s;
}

int stage_threaded(const struct stage *s)
{
	return s->q != NULL;
}

int stage_post(struct stage *s, int type, void *arg, const struct stage_arg *how)
{
	if (!s->q) {
		s->ops->run(s->ctx, type, arg);
		return 0;
	}
	size_t a = chq_align8(how->size), x = how->extra ? how->extra(arg) : 0;
	size_t n = HEAD + a + chq_align8(x);
	struct smsg *m = chq_reserve(s->q, n);
	if (!m)
		return -1;
	m->type = (uint32_t)type;
	m->size = (uint32_t)n;
	unsigned char *body = (unsigned char *)m + HEAD;
	memcpy(body, arg, how->size);
	if (x)
		how->copy(body, body + a);
	return 0;
}

void stage_flush(struct stage *s)
{
	if (s && s->q)
		chq_flush(s->q);
}

void stage_drain(struct stage *s)
{
	if (s->q)
		chq_drain(s->q);
}

size_t stage_queued(const struct stage *s)
{
	return s && s->q ? chq_inflight(s->q) : 0;
}

void stage_stop(struct stage *s)
{
	if (!s)
		return;
	chq_free(s->q); /* runs the rest first */
	s->q = NULL;
}

void stage_free(struct stage *s)
{
	stage_stop(s);
	free(s);
}
