/* sql_injection's three files: the rule (det_sql_injection.c), constant and tautological
 * predicates (sqli_predicates.c), the known shapes of each service account with their
 * literal slots (sqli_shapes.c). Internal to the detector. */
#ifndef DBTAP_SQLI_INT_H
#define DBTAP_SQLI_INT_H

#include "det.h"

#define SQLI_SLOTS (1u << 15)	/* slot index entries (open addressing, never more than 3/4 full) */
#define SQLI_SHAPES (1u << 13)	/* indexed shapes */
#define SQLI_MAX_SLOTS_SHAPE 16 /* slots indexed per shape */
#define SQLI_MAX_UNIONS 4	/* UNIONs judged in full per statement (cost stays linear) */
#define SQLI_CAMPAIGN 10	/* injections from one actor within 60 s: an attack in progress */
#define SQLI_HP 0x100000001b3ull

struct sqli_slot {
	uint64_t key; /* identity x tokens in front of the slot; 0 = empty */
	uint64_t sfx; /* hash of the tokens after the slot */
	uint64_t shape;
	uint32_t after; /* tokens after the slot */
	uint16_t ord;	/* which literal of the shape (1-based) */
};

struct sqli_state {
	struct { /* sqli_identity() by session id and identity generation (pools interleave sessions) */
		int64_t sid;
		uint32_t gen;
		uint64_t id;
	} idc[64];
	struct sqli_slot *slots;
	uint64_t *shapes;
	unsigned n_slots, n_shapes;
	uint64_t *ph, *gh; /* per-statement scratch: prefix / suffix hashes */
	int *idx;	   /* non-comment token -> token index */
	int cap;
};

struct slot_hit {
	const char *what;
	int from, to; /* token indexes of the replacement */
	const struct sqli_slot *e;
};

/* sqli_predicates.c */
int sqli_is_or(const struct an_stmt *st, int i);
int sqli_literal_cmp(const struct an_stmt *st, int i);
int sqli_tautology_at(const struct an_stmt *st, int i);
int sqli_falsehood_at(const struct an_stmt *st, int i);
int sqli_const_pred(const struct an_stmt *st, int i, int *simple, int *small);

/* sqli_shapes.c */
uint64_t sqli_mix(uint64_t a, uint64_t b);
uint64_t sqli_identity(const struct an *an, const struct an_session *s);
struct sqli_state *sqli_state_get(struct an *an, int ntok);
int sqli_shape_seen(struct sqli_state *q, uint64_t key, int add);
int sqli_hash_tokens(const struct an_stmt *st, struct sqli_state *q);
void sqli_index_shape(struct sqli_state *q, uint64_t id, uint64_t shape, int n, const struct an_stmt *st);
int sqli_injection_error(const char *code);
int sqli_slot_replaced(struct an *an, const struct an_stmt *st, struct sqli_state *q, uint64_t id, int n, int cut,
		       int errored, struct slot_hit *hit);
void sqli_free(struct an *an);

#endif
