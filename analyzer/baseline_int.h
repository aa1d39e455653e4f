/* The baseline's own declarations, shared by its files: baseline.c (the table and the
 * aspects judged per statement), bl_config.c (its configuration keys, time zones and
 * business hours), bl_persist.c (loading from and flushing to the findings database through
 * the sink). Internal to analyzer/. */
#ifndef DBTAP_BASELINE_INT_H
#define DBTAP_BASELINE_INT_H

#include <stdint.h>

#include "baseline.h"
#include "baseline_store.h"
#include "cfgkey.h"
#include "det.h"

#define BL_DETAIL_MAX 1024 /* normalised text kept per shape */
#define BL_LIST_MAX 8	   /* known items named in evidence */

/* BL_PEERS: per table, how many end users touched it (in memory only, rebuilt at load) */
enum bl_scope { BL_DBUSER, BL_ENDUSER, BL_PEERS };
enum bl_kind { BL_PRINCIPAL, BL_SHAPE, BL_CLIENT, BL_SUBNET, BL_APP, BL_HOUR, BL_TABLE, BL_NKIND };

struct bl_entry {
	uint64_t h;
	uint8_t scope, kind;
	uint8_t dirty;	 /* changed since the last write */
	uint8_t pending; /* alerted, not acknowledged (require_ack) */
	uint8_t alerted; /* alerted in this run */
	uint8_t dead;	 /* chosen for eviction */
	uint32_t op;	 /* the operation (bl->op) that last touched it: not evicted during it */
	char *principal, *app, *item; /* one allocation */
	char *detail;
	struct bl_entry *grp_next; /* the next older item of the same principal and kind; gone list */
	int64_t first, last, count, rows_min, rows_max, learning_until;
	int n_hours; /* principal: hour rows known */
};

/* The items of one principal, kind and application, newest first: evidence lists known
 * items without scanning the whole table (that scan made every new item cost O(baseline)). */
struct bl_group {
	uint64_t h;
	struct bl_entry *head; /* NULL: slot empty; the key is read from it */
	int64_t n;
};

struct bl {
	int persist; /* changed rows go to the sinks (REC_BASELINE) */
	struct bl_group *grp;
	size_t grp_cap, grp_n;
	struct bl_entry **slot;
	size_t cap, n;
	size_t n_dirty;
	ev_time last_flush;
	struct sn_tok *tmp; /* bl_known_without scratch */
	char *norm;
	char sub_ip[64], sub_txt[64]; /* the last subnet_of() result (see subnet_cached) */
	/* the last entry found per scope and kind: most lookups repeat the previous one
	 * (principal, client, subnet, application, hour); cleared by an eviction */
	struct bl_entry *memo[3][BL_NKIND];
	/* eviction (when_full "evict"): op counts operations (one statement's aspect, one
	 * loaded row); egen counts evictions, so sessions drop the entries they remember;
	 * cur is the session whose remembered entries the current operation uses. Evicted
	 * rows wait in gone (at most max_entries) until their deletes reach the sinks. */
	uint32_t op, egen;
	struct an_session *cur;
	struct bl_entry *gone;
	size_t n_gone;
	int64_t hour_minute; /* bl_hours: the minute hour_of and hour_mod are for */
	int hour_of, hour_mod, hour_valid;
	int full; /* 1: an item was not learnt (max_entries): baseline_full is due; 2: raised */
};

int bl_outside_business(const struct an_baseline_cfg *c, int mod);
struct bl *bl_get(struct an *an);
int bl_judged(const struct an *an, const struct bl_entry *p, ev_time ts);
int64_t bl_peer_add(struct an *an, struct bl *b, const char *table, ev_time ts);
struct bl_entry *bl_principal_get(struct an *an, struct bl *b, int scope, const char *name, ev_time ts);
struct bl_entry *bl_insert(struct an *an, struct bl *b, int scope, int kind, const char *p, const char *a,
			       const char *i);
struct bl_entry *bl_lookup(struct bl *b, int scope, int kind, const char *p, const char *a, const char *i);
void bl_mark(struct bl *b, struct bl_entry *e);
struct bl_group *bl_grp_find(struct bl *b, int scope, int kind, const char *p, const char *a, int create);
/* Evict the least recently seen entries not held by the current operation: how many. */
size_t bl_evict(struct an *an, struct bl *b);
/* The start of an operation: nothing from an earlier one is held (see struct bl's op). */
void bl_op(struct bl *b);
/* Hand the evicted rows' deletes to the sinks (before any changed row, so a row learnt again
 * after its eviction is not deleted). 0 when none is left; final waits for the writer. */
int bl_flush_gone(struct an *an, struct bl *b, int final);
void bl_entry_free(struct bl_entry *e);

#endif
