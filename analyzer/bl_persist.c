/* The baseline in the findings database: rows loaded at start (an_baseline_open), changed
 * rows handed to the sinks as REC_BASELINE every flush_interval_s of packet time and at the
 * end, never one write per statement. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cJSON.h>

#include "baseline_int.h"

static const char *const scope_names[] = { "db_user", "end_user" };
static const char *const kind_names[BL_NKIND] = { "principal", "shape", "client", "subnet",
						  "application", "hour", "table" };

/* ---- persistence ---- */

static int kind_of(const char *k)
{
	for (int i = 0; i < BL_NKIND; i++)
		if (!strcmp(kind_names[i], k))
			return i;
	return -1;
}

static int load_row(void *ctx, const struct rec_baseline *r)
{
	struct an *an = ctx;
	struct bl *b = an->bl;
	bl_op(b);
	int scope = !strcmp(r->scope, "db_user") ? BL_DBUSER : !strcmp(r->scope, "end_user") ? BL_ENDUSER : -1;
	int kind = kind_of(r->kind);
	if (scope < 0 || kind < 0 || !r->principal[0])
		return 0; /* a row of a newer dbtap: kept in the table, ignored here */
	struct bl_entry *e = bl_lookup(b, scope, kind, r->principal, r->application, r->item);
	if (!e)
		e = bl_insert(an, b, scope, kind, r->principal, r->application, r->item);
	if (!e)
		return 0;
	e->first = r->first_seen;
	e->last = r->last_seen;
	e->count = r->count;
	e->rows_min = r->rows_min;
	e->rows_max = r->rows_max;
	e->learning_until = r->learning_until;
	e->pending = r->pending != 0;
	if (r->detail && !e->detail)
		e->detail = strdup(r->detail);
	if (kind == BL_TABLE && scope == BL_ENDUSER)
		bl_peer_add(an, b, r->item, r->last_seen);
	if (kind == BL_HOUR) {
		struct bl_entry *p = bl_lookup(b, scope, BL_PRINCIPAL, r->principal, "", "");
		if (!p)
			p = bl_insert(an, b, scope, BL_PRINCIPAL, r->principal, "", "");
		if (p)
			p->n_hours++;
	}
	return 0;
}

int an_baseline_open(struct an *an, const char *db_path, char *err, unsigned long errlen)
{
	struct bl *b = bl_get(an);
	if (!b) {
		snprintf(err, errlen, "baseline: out of memory");
		return -ENOMEM;
	}
	if (b->persist)
		return 0;
	struct bstore *st = bstore_open(db_path, 1, err, errlen);
	if (!st)
		return -EIO;
	b->persist = 1; /* rows evicted while loading (a smaller max_entries) are deleted too */
	int rc = bstore_load(st, load_row, an);
	if (rc < 0)
		snprintf(err, errlen, "%s", bstore_errmsg(st));
	bstore_close(st);
	if (rc < 0) {
		b->persist = 0;
		return -EIO;
	}
	return 0;
}

/* One changed row to every sink (the SQLite sink's writer upserts it in its own
 * transaction). -EAGAIN: the writer is far behind; final waits for it to catch up. */
static int put_row(struct an *an, const struct rec *rec, int final)
{
	for (int i = 0; i < an->n_sinks; i++) {
		int rc = sink_put(an->sinks[i], rec);
		if (rc == -EAGAIN && final) {
			sink_sync(an->sinks[i]);
			rc = sink_put(an->sinks[i], rec);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static struct rec_baseline row_key(const struct bl_entry *e)
{
	return (struct rec_baseline){ .scope = scope_names[e->scope],
				      .principal = e->principal,
				      .application = e->app,
				      .kind = kind_names[e->kind],
				      .item = e->item };
}

int bl_flush_gone(struct an *an, struct bl *b, int final)
{
	while (b->gone) {
		struct bl_entry *e = b->gone;
		struct rec_baseline r = row_key(e);
		r.deleted = 1;
		struct rec rec = { .type = REC_BASELINE, .u.baseline = &r };
		int rc = put_row(an, &rec, final);
		if (rc < 0) {
			if (rc != -EAGAIN)
				an->st.baseline_errors++;
			return rc;
		}
		b->gone = e->grp_next;
		b->n_gone--;
		bl_entry_free(e);
	}
	return 0;
}

/* Hand the changed rows over; the analyzer never waits for the database's lock. final=0
 * (periodic): a row the writer cannot take now stays dirty for the next flush. */
static void flush(struct an *an, struct bl *b, int final)
{
	if (bl_flush_gone(an, b, final) < 0)
		return; /* a row learnt again after its eviction must not be deleted after it */
	for (size_t k = 0; k < b->cap && b->n_dirty; k++) {
		struct bl_entry *e = b->slot[k];
		if (!e || !e->dirty)
			continue;
		if (b->persist && e->scope != BL_PEERS) {
			struct rec_baseline r = row_key(e);
			r.detail = e->detail;
			r.first_seen = e->first;
			r.last_seen = e->last;
			r.count = e->count;
			r.rows_min = e->rows_min;
			r.rows_max = e->rows_max;
			r.learning_until = e->kind == BL_PRINCIPAL ? e->learning_until : 0;
			r.pending = e->pending;
			struct rec rec = { .type = REC_BASELINE, .u.baseline = &r };
			int rc = put_row(an, &rec, final);
			if (rc < 0) {
				if (rc != -EAGAIN)
					an->st.baseline_errors++;
				return; /* this row and the rest stay dirty */
			}
		}
		e->dirty = 0;
		b->n_dirty--;
	}
}

void bl_tick(struct an *an, ev_time now)
{
	struct bl *b = an->bl;
	if (!b || (!b->n_dirty && !b->gone))
		return;
	if (now - b->last_flush >= (ev_time)an->cfg.baseline.flush_interval_s * 1000000) {
		flush(an, b, 0);
		b->last_flush = now;
	}
}

void bl_free(struct an *an)
{
	struct bl *b = an->bl;
	if (!b)
		return;
	flush(an, b, 1);
	for (size_t k = 0; k < b->cap; k++)
		if (b->slot[k])
			bl_entry_free(b->slot[k]);
	while (b->gone) {
		struct bl_entry *e = b->gone;
		b->gone = e->grp_next;
		bl_entry_free(e);
	}
	free(b->slot);
	free(b->grp);
	free(b->tmp);
	free(b->norm);
	free(b);
	an->bl = NULL;
}
