/* The baseline's table: entries by key in an open-addressing hash table, grouped by
 * principal, kind and application (evidence lists), bounded by baseline.max_entries; when
 * full, the least recently seen entries are evicted (when_full "evict") or nothing more is
 * learnt ("stop"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baseline_int.h"


static uint64_t mix_str(uint64_t h, const char *s)
{
	return sn_hash_mem(s, strlen(s), h);
}

static uint64_t key_hash(int scope, int kind, const char *p, const char *a, const char *i)
{
	uint64_t h = ((uint64_t)scope << 8 | (uint64_t)kind) * 0x165667B19E3779F9ull;
	return mix_str(mix_str(mix_str(h, p), a), i);
}

struct bl *bl_get(struct an *an)
{
	if (an->bl)
		return an->bl;
	struct bl *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->cap = 1024;
	b->slot = calloc(b->cap, sizeof *b->slot);
	if (!b->slot) {
		free(b);
		return NULL;
	}
	if (!an->cfg.baseline.tz_fixed) {
		/* localtime_r reads the process time zone: set it once, here */
		setenv("TZ", an->cfg.baseline.time_zone, 1);
		tzset();
	}
	an->bl = b;
	return b;
}

static struct bl_entry **find_slot(struct bl *b, uint64_t h, int scope, int kind, const char *p, const char *a,
				   const char *i)
{
	size_t m = b->cap - 1, k = (size_t)h & m;
	for (;; k = (k + 1) & m) {
		struct bl_entry *e = b->slot[k];
		if (!e || (e->h == h && e->scope == scope && e->kind == kind && !strcmp(e->principal, p) &&
			   !strcmp(e->app, a) && !strcmp(e->item, i)))
			return &b->slot[k];
	}
}

struct bl_entry *bl_lookup(struct bl *b, int scope, int kind, const char *p, const char *a, const char *i)
{
	struct bl_entry **m = scope >= 0 && scope < 3 && kind >= 0 && kind < BL_NKIND ? &b->memo[scope][kind] : NULL;
	if (m && *m && !strcmp((*m)->item, i) && !strcmp((*m)->principal, p) && !strcmp((*m)->app, a))
		return *m;
	struct bl_entry *e = *find_slot(b, key_hash(scope, kind, p, a, i), scope, kind, p, a, i);
	if (m && e)
		*m = e;
	return e;
}

static int grow(struct bl *b)
{
	size_t nc = b->cap * 2;
	struct bl_entry **ns = calloc(nc, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	for (size_t k = 0; k < b->cap; k++) {
		struct bl_entry *e = b->slot[k];
		if (!e)
			continue;
		size_t j = (size_t)e->h & (nc - 1);
		while (ns[j])
			j = (j + 1) & (nc - 1);
		ns[j] = e;
	}
	free(b->slot);
	b->slot = ns;
	b->cap = nc;
	return 0;
}

void bl_mark(struct bl *b, struct bl_entry *e)
{
	if (!e->dirty) {
		e->dirty = 1;
		b->n_dirty++;
	}
}

/* The groups into ng (nc slots), without those that became empty. */
static void grp_move(struct bl *b, struct bl_group *ng, size_t nc)
{
	b->grp_n = 0;
	for (size_t k = 0; k < b->grp_cap; k++) {
		if (!b->grp[k].head)
			continue;
		size_t j = (size_t)b->grp[k].h & (nc - 1);
		while (ng[j].head)
			j = (j + 1) & (nc - 1);
		ng[j] = b->grp[k];
		b->grp_n++;
	}
	free(b->grp);
	b->grp = ng;
	b->grp_cap = nc;
}

struct bl_group *bl_grp_find(struct bl *b, int scope, int kind, const char *p, const char *a, int create)
{
	if (!b->grp) {
		if (!create || !(b->grp = calloc(256, sizeof *b->grp)))
			return NULL;
		b->grp_cap = 256;
	}
	if (create && (b->grp_n + 1) * 2 > b->grp_cap) {
		struct bl_group *ng = calloc(b->grp_cap * 2, sizeof *ng);
		if (!ng)
			return NULL;
		grp_move(b, ng, b->grp_cap * 2);
	}
	uint64_t h = key_hash(scope, kind, p, a, "");
	size_t m = b->grp_cap - 1;
	for (size_t k = (size_t)h & m;; k = (k + 1) & m) {
		struct bl_group *g = &b->grp[k];
		if (!g->head) {
			if (!create)
				return NULL;
			g->h = h;
			b->grp_n++;
			return g; /* the caller links the first entry */
		}
		const struct bl_entry *e = g->head;
		if (g->h == h && e->scope == scope && e->kind == kind && !strcmp(e->principal, p) && !strcmp(e->app, a))
			return g;
	}
}

/* A new entry, or NULL when the table is full (counted). */
struct bl_entry *bl_insert(struct an *an, struct bl *b, int scope, int kind, const char *p, const char *a,
			       const char *i)
{
	if (b->n >= (size_t)an->cfg.baseline.max_entries) {
		if (!b->full)
			b->full = 1;
		if (an->cfg.baseline.when_full != BL_FULL_EVICT || bl_evict(an, b) == 0) {
			an->st.baseline_dropped++;
			return NULL;
		}
	}
	if ((b->n + 1) * 2 > b->cap && grow(b) < 0) {
		an->st.baseline_dropped++;
		return NULL;
	}
	uint64_t h = key_hash(scope, kind, p, a, i);
	struct bl_entry **s = find_slot(b, h, scope, kind, p, a, i);
	size_t lp = strlen(p) + 1, la = strlen(a) + 1, li = strlen(i) + 1;
	struct bl_entry *e = calloc(1, sizeof *e + lp + la + li);
	if (!e) {
		an->st.baseline_dropped++;
		return NULL;
	}
	e->h = h;
	e->scope = (uint8_t)scope;
	e->kind = (uint8_t)kind;
	e->principal = (char *)(e + 1);
	e->app = e->principal + lp;
	e->item = e->app + la;
	memcpy(e->principal, p, lp);
	memcpy(e->app, a, la);
	memcpy(e->item, i, li);
	e->rows_min = e->rows_max = -1;
	e->op = b->op;
	*s = e;
	b->n++;
	struct bl_group *g = bl_grp_find(b, scope, kind, p, a, 1);
	if (g) { /* without it the entry is only left out of evidence lists */
		e->grp_next = g->head;
		g->head = e;
		g->n++;
	}
	return e;
}

void bl_op(struct bl *b)
{
	b->op++;
	b->cur = NULL;
}

void bl_entry_free(struct bl_entry *e)
{
	free(e->detail);
	free(e);
}

/* The entries the current session remembers: its operation is using them. */
static void pin_session(struct bl *b, struct an_session *s)
{
	if (!s)
		return;
	struct bl_entry *v[] = { s->bl_principal, s->bl_client, s->bl_subnet, s->bl_app, s->bl_hour };
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (v[i])
			v[i]->op = b->op;
	for (int k = 0; k < AN_SHAPE_MEMO; k++) {
		const struct an_shape_memo *m = &s->bl_shapes[k];
		if (m->shape)
			m->shape->op = b->op;
		for (int i = 0; i < AN_SHAPE_MEMO_TABLES; i++)
			if (m->table[i])
				m->table[i]->op = b->op;
	}
}

/* Least recently seen first; a principal only after every item (it carries the learning
 * period and the hours count: forgetting it would start learning it anew). */
static int64_t age_key(const struct bl_entry *e)
{
	int64_t t = e->last > 0 ? e->last : 0;
	return e->kind == BL_PRINCIPAL ? t + ((int64_t)1 << 61) : t;
}

/* A max-heap of the k smallest keys seen: O(n log k), whatever order the keys come in. */
static void heap_offer(int64_t *h, size_t *n, size_t k, int64_t v)
{
	size_t i;
	if (*n < k) {
		for (i = (*n)++; i && h[(i - 1) / 2] < v; i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = v;
		return;
	}
	if (v >= h[0])
		return;
	for (i = 0;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] > h[c])
			c++;
		if (h[c] <= v)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = v;
}

static void gone_add(struct an *an, struct bl *b, struct bl_entry *e)
{
	if (!b->persist || e->scope == BL_PEERS) {
		bl_entry_free(e);
		return;
	}
	if (b->n_gone >= (size_t)an->cfg.baseline.max_entries) {
		an->st.baseline_errors++; /* the writer took no delete for a whole table's worth */
		bl_entry_free(e);
		return;
	}
	e->grp_next = b->gone;
	b->gone = e;
	b->n_gone++;
}

/* Evict a batch (1/32 of max_entries) at once: choosing costs a pass over the table, so
 * one pass buys room for many new items. */
size_t bl_evict(struct an *an, struct bl *b)
{
	size_t want = (size_t)an->cfg.baseline.max_entries / 32;
	if (want < 1)
		want = 1;
	if (b->n_gone)
		bl_flush_gone(an, b, 0);
	pin_session(b, b->cur);
	int64_t *heap = malloc(want * sizeof *heap);
	struct bl_entry **ns = calloc(b->cap, sizeof *ns);
	struct bl_group *ng = b->grp ? calloc(b->grp_cap, sizeof *ng) : NULL;
	if (!heap || !ns || (b->grp && !ng)) {
		free(heap);
		free(ns);
		free(ng);
		return 0;
	}
	size_t hn = 0, below = 0, got = 0;
	for (size_t k = 0; k < b->cap; k++)
		if (b->slot[k] && b->slot[k]->op != b->op)
			heap_offer(heap, &hn, want, age_key(b->slot[k]));
	if (!hn) {
		free(heap);
		free(ns);
		free(ng);
		return 0;
	}
	int64_t limit = heap[0]; /* the want-th smallest key */
	for (size_t k = 0; k < b->cap; k++)
		if (b->slot[k] && b->slot[k]->op != b->op && age_key(b->slot[k]) < limit)
			below++;
	size_t ties = hn - below;
	free(heap);
	for (size_t k = 0; k < b->cap; k++) {
		struct bl_entry *e = b->slot[k];
		if (!e || e->op == b->op)
			continue;
		int64_t a = age_key(e);
		if (a < limit || (a == limit && ties && ties--)) {
			e->dead = 1;
			got++;
		}
	}
	/* the survivors in a new table; groups lose their dead members */
	for (size_t k = 0; k < b->cap; k++) {
		struct bl_entry *e = b->slot[k];
		if (!e || e->dead)
			continue;
		size_t j = (size_t)e->h & (b->cap - 1);
		while (ns[j])
			j = (j + 1) & (b->cap - 1);
		ns[j] = e;
	}
	for (size_t k = 0; k < b->grp_cap; k++) {
		struct bl_group *g = &b->grp[k];
		for (struct bl_entry **l = &g->head; *l;) {
			if ((*l)->dead) {
				*l = (*l)->grp_next;
				g->n--;
			} else {
				l = &(*l)->grp_next;
			}
		}
	}
	if (b->grp) /* an emptied group must not end another's probe sequence */
		grp_move(b, ng, b->grp_cap);
	struct bl_entry **old = b->slot;
	b->slot = ns;
	b->n -= got;
	memset(b->memo, 0, sizeof b->memo);
	b->egen++;
	for (size_t k = 0; k < b->cap; k++) {
		struct bl_entry *e = old[k];
		if (!e || !e->dead)
			continue;
		if (e->dirty)
			b->n_dirty--;
		e->dirty = 0;
		if (e->kind == BL_HOUR) { /* one hour fewer known for its principal */
			struct bl_entry *p = bl_lookup(b, e->scope, BL_PRINCIPAL, e->principal, "", "");
			if (p && p->n_hours > 0)
				p->n_hours--;
		}
		gone_add(an, b, e);
	}
	free(old);
	an->st.baseline_evicted += got;
	return got;
}
