/* SQLite sink: the batch arena and the copy of each record into it (put's only work). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_sink_int.h"

static char *sq_alloc(struct sq_batch *b, size_t n)
{
	struct sq_chunk *c = b->chunks;
	if (!c || c->size - c->used < n) {
		if (n <= SQ_CHUNK && b->spare) {
			c = b->spare;
			b->spare = c->next;
		} else {
			size_t sz = n > SQ_CHUNK ? n : SQ_CHUNK;
			c = malloc(sizeof(*c) + sz);
			if (!c)
				return NULL;
			c->size = sz;
		}
		c->used = 0;
		c->next = b->chunks;
		b->chunks = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

void sq_batch_reset(struct sq_batch *b)
{
	struct sq_chunk *c = b->chunks, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->size == SQ_CHUNK) {
			c->next = b->spare;
			b->spare = c;
		} else {
			free(c); /* oversize: one huge statement must not pin memory */
		}
	}
	b->chunks = NULL;
	b->n = 0;
	b->bytes = 0;
}

void sq_batch_free(struct sq_batch *b)
{
	sq_batch_reset(b);
	for (struct sq_chunk *c = b->spare, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	b->spare = NULL;
	free(b->items);
	b->items = NULL;
	b->cap = 0;
}

/* Copy a borrowed string into the batch; 0 or -ENOMEM. */
static int sq_str(struct sq_batch *b, const char **s)
{
	if (!*s)
		return 0;
	size_t n = strlen(*s) + 1;
	char *p = sq_alloc(b, n);
	if (!p)
		return -ENOMEM;
	memcpy(p, *s, n);
	b->bytes += n;
	*s = p;
	return 0;
}

int sq_copy(struct sq_batch *b, const struct rec *r)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct sq_item *it = realloc(b->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		b->items = it;
		b->cap = cap;
	}
	struct sq_item *it = &b->items[b->n];
	int rc = 0;
	it->type = r->type;
	switch (r->type) {
	case REC_RUN: {
		struct rec_run *x = &it->u.run;
		*x = *r->u.run;
		rc |= sq_str(b, &x->source) | sq_str(b, &x->version) | sq_str(b, &x->config) |
		      sq_str(b, &x->drops) | sq_str(b, &x->sensor);
		rc |= sq_str(b, &x->status) | sq_str(b, &x->error) | sq_str(b, &x->stats) |
		      sq_str(b, &x->host);
		break;
	}
	case REC_SESSION: {
		struct rec_session *x = &it->u.session;
		*x = *r->u.session;
		rc |= sq_str(b, &x->protocol) | sq_str(b, &x->client_ip) | sq_str(b, &x->server_ip);
		rc |= sq_str(b, &x->db_user) | sq_str(b, &x->database) | sq_str(b, &x->application);
		rc |= sq_str(b, &x->client_info) | sq_str(b, &x->server_version);
		rc |= sq_str(b, &x->auth_method) | sq_str(b, &x->login) | sq_str(b, &x->login_error);
		rc |= sq_str(b, &x->end_reason);
		break;
	}
	case REC_STATEMENT: {
		struct rec_statement *x = &it->u.statement;
		*x = *r->u.statement;
		rc |= sq_str(b, &x->end_user) | sq_str(b, &x->end_user_source) | sq_str(b, &x->verb);
		rc |= sq_str(b, &x->fingerprint) | sq_str(b, &x->sql) | sq_str(b, &x->params);
		rc |= sq_str(b, &x->outcome) | sq_str(b, &x->error_code) | sq_str(b, &x->pooler_join);
		/* context fields are not columns: not copied */
		x->protocol = x->client_ip = x->db_user = x->database = x->application = NULL;
		x->via_client_ip = x->via_application = NULL;
		break;
	}
	case REC_FINDING: {
		struct rec_finding *x = &it->u.finding;
		*x = *r->u.finding;
		rc |= sq_str(b, &x->kind) | sq_str(b, &x->severity) | sq_str(b, &x->protocol);
		rc |= sq_str(b, &x->client_ip) | sq_str(b, &x->server_ip) | sq_str(b, &x->db_user);
		rc |= sq_str(b, &x->database) | sq_str(b, &x->application) | sq_str(b, &x->end_user);
		rc |= sq_str(b, &x->end_user_source) | sq_str(b, &x->fingerprint);
		rc |= sq_str(b, &x->sql) | sq_str(b, &x->summary) | sq_str(b, &x->evidence);
		break;
	}
	case REC_STATE: {
		struct rec_state *x = &it->u.state;
		*x = *r->u.state;
		rc |= sq_str(b, &x->key) | sq_str(b, &x->state);
		break;
	}
	case REC_BASELINE: {
		struct rec_baseline *x = &it->u.baseline;
		*x = *r->u.baseline;
		rc |= sq_str(b, &x->scope) | sq_str(b, &x->principal) | sq_str(b, &x->application);
		rc |= sq_str(b, &x->kind) | sq_str(b, &x->item) | sq_str(b, &x->detail);
		break;
	}
	default:
		return -EINVAL;
	}
	if (rc)
		return -ENOMEM; /* strings already copied stay in the arena until reset */
	b->n++;
	return 0;
}
