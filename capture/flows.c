/* Flow table: hash by 4-tuple plus an LRU list for idle sweeps and eviction. */
#include "flows.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t flows_hash_key[2];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_make(void)
{
	uint64_t k[2];
	if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) {
		/* no entropy source: still differ per process and per run */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k[0] = flows_fmix64((uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uintptr_t)&ts);
		k[1] = flows_fmix64(k[0] ^ (uint64_t)getpid());
	}
	flows_hash_key[0] = k[0];
	flows_hash_key[1] = k[1];
}

void flows_hash_init(void)
{
	/* once: libnids' table is indexed by it too, so it may never change */
	pthread_once(&key_once, key_make);
}

int flows_init(struct flow_table *t, uint32_t cap)
{
	flows_hash_init();
	memset(t, 0, sizeof(*t));
	t->cap = cap ? cap : 1;
	t->nbuckets = 1;
	while (t->nbuckets < t->cap)
		t->nbuckets <<= 1;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	return t->bucket ? 0 : -12;
}

void flows_free(struct flow_table *t)
{
	while (t->lru_head)
		flows_remove(t, t->lru_head);
	free(t->bucket);
	memset(t, 0, sizeof(*t));
}

static uint32_t key_hash(const struct flow_key *k)
{
	return flows_hash(k->cli_ip, k->cli_port, k->srv_ip, k->srv_port);
}

static int key_is(const struct flow_key *k, uint32_t cli_ip, uint16_t cli_port, uint32_t srv_ip, uint16_t srv_port)
{
	return k->cli_ip == cli_ip && k->srv_ip == srv_ip && k->cli_port == cli_port && k->srv_port == srv_port;
}

static int key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return key_is(a, b->cli_ip, b->cli_port, b->srv_ip, b->srv_port);
}

struct flow *flows_find(struct flow_table *t, const struct flow_key *k)
{
	/* a packet asks several times, and the next packet is often of the same flow */
	if (t->last && key_eq(&t->last->key, k))
		return t->last;
	for (struct flow *f = t->bucket[key_hash(k) & (t->nbuckets - 1)]; f; f = f->hnext)
		if (key_eq(&f->key, k))
			return t->last = f;
	return NULL;
}

static int key_either(const struct flow_key *k, uint32_t a_ip, uint16_t a_port, uint32_t b_ip, uint16_t b_port)
{
	return key_is(k, a_ip, a_port, b_ip, b_port) || key_is(k, b_ip, b_port, a_ip, a_port);
}

struct flow *flows_find_either(struct flow_table *t, uint32_t a_ip, uint16_t a_port, uint32_t b_ip,
			       uint16_t b_port)
{
	if (t->last && key_either(&t->last->key, a_ip, a_port, b_ip, b_port))
		return t->last;
	uint32_t h = flows_hash(a_ip, a_port, b_ip, b_port);
	struct flow *rev = NULL; /* a flow with the roles the other way round, if no exact one */
	for (struct flow *f = t->bucket[h & (t->nbuckets - 1)]; f; f = f->hnext) {
		if (key_is(&f->key, a_ip, a_port, b_ip, b_port))
			return t->last = f;
		if (!rev && key_is(&f->key, b_ip, b_port, a_ip, a_port))
			rev = f;
	}
	return rev ? (t->last = rev) : NULL;
}

static void lru_unlink(struct flow_table *t, struct flow *f)
{
	if (f->lru_prev)
		f->lru_prev->lru_next = f->lru_next;
	else
		t->lru_head = f->lru_next;
	if (f->lru_next)
		f->lru_next->lru_prev = f->lru_prev;
	else
		t->lru_tail = f->lru_prev;
	f->lru_prev = f->lru_next = NULL;
}

static void lru_append(struct flow_table *t, struct flow *f)
{
	f->lru_prev = t->lru_tail;
	f->lru_next = NULL;
	if (t->lru_tail)
		t->lru_tail->lru_next = f;
	else
		t->lru_head = f;
	t->lru_tail = f;
}

struct flow *flows_add(struct flow_table *t, const struct flow_key *k)
{
	if (t->count >= t->cap)
		return NULL;
	struct flow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->key = *k;
	uint32_t b = key_hash(k) & (t->nbuckets - 1);
	f->hnext = t->bucket[b];
	t->bucket[b] = f;
	lru_append(t, f);
	t->count++;
	return f;
}

void flow_held_clear(struct flow_table *t, struct flow *f, int dir)
{
	t->held -= f->held_bytes[dir];
	while (f->held[dir]) {
		struct held_seg *h = f->held[dir];
		f->held[dir] = h->next;
		free(h);
	}
	f->held_bytes[dir] = 0;
}

void flows_remove(struct flow_table *t, struct flow *f)
{
	flow_held_clear(t, f, 0);
	flow_held_clear(t, f, 1);
	struct flow **pp = &t->bucket[key_hash(&f->key) & (t->nbuckets - 1)];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	lru_unlink(t, f);
	t->count--;
	if (t->last == f)
		t->last = NULL;
	free(f);
}

void flows_touch(struct flow_table *t, struct flow *f, ev_time ts)
{
	f->last_ts = ts;
	if (t->lru_tail != f) {
		lru_unlink(t, f);
		lru_append(t, f);
	}
}
