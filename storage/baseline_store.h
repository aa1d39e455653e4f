/* The learned baseline's rows in the findings database (table `baseline`, storage/SCHEMA.md):
 * load at start, upsert changed rows in one transaction, forget a principal, and the
 * `dbtap baseline` command. Uses its own SQLite connection (WAL, busy_timeout), separate from
 * the sink's writer thread; nothing else reads or writes the baseline table. */
#ifndef DBTAP_BASELINE_STORE_H
#define DBTAP_BASELINE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One row. Strings are borrowed (valid during the call / callback). Times: us since the
 * epoch (UTC), 0 = none. rows_min/rows_max -1 = unknown. */
struct bl_row {
	const char *scope;	 /* "db_user" | "end_user" */
	const char *principal;	 /* the db_user or end user */
	const char *application; /* shapes of a db_user: the application; "" otherwise */
	const char *kind;	 /* principal | shape | client | subnet | application | hour | table */
	const char *item;	 /* fingerprint, address, CIDR, name, "00".."23", table; "" for principal */
	const char *detail;	 /* shape: normalised text; may be NULL */
	int64_t first_seen, last_seen;
	int64_t count, rows_min, rows_max;
	int64_t learning_until; /* principal rows: end of the automatic learning period */
	int pending;		/* 1: alerted, waiting for acknowledgement */
};

struct bl_store;

/* Open path (must exist unless create=1), create the baseline table if missing.
 * NULL with err filled on failure. */
struct bl_store *bl_store_open(const char *path, int create, char *err, size_t errlen);
void bl_store_close(struct bl_store *b);
const char *bl_store_errmsg(const struct bl_store *b);

/* Call cb for every row (ordered by scope, principal, application, kind, item); a non-zero
 * return from cb stops the walk. 0 or -errno. */
int bl_store_load(struct bl_store *b, int (*cb)(void *ctx, const struct bl_row *r), void *ctx);

/* Upsert rows in one transaction: begin, put..., commit (rollback on failure).
 * wait_ms: how long begin may wait for another writer (the sink's thread); -EBUSY after. */
int bl_store_begin(struct bl_store *b, int wait_ms);
int bl_store_put(struct bl_store *b, const struct bl_row *r);
int bl_store_commit(struct bl_store *b);
void bl_store_rollback(struct bl_store *b);

/* Delete every row of principal (both scopes). *n gets the rows deleted. */
int bl_store_forget(struct bl_store *b, const char *principal, int64_t *n);
/* Accept what was alerted for principal: pending rows become part of the baseline. */
int bl_store_ack(struct bl_store *b, const char *principal, int64_t *n);

/* `dbtap baseline [-d DB] (--list [--json] | --forget PRINCIPAL | --ack PRINCIPAL)`;
 * argv[0] is "baseline". Exit status as DESIGN.md §2. */
int baseline_main(int argc, char **argv);

#endif
