/* The learned baseline's rows in the findings database (table `baseline`, storage/SCHEMA.md):
 * create and load at start, forget a principal, and the `dbtap baseline` command, on its own
 * SQLite connection (WAL, busy_timeout). A run's changed rows are not written here but by the
 * sink's writer thread (REC_BASELINE), so the analyzer never waits for the writer's lock. */
#ifndef DBTAP_BASELINE_STORE_H
#define DBTAP_BASELINE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sink.h"

struct bstore;

/* Open path (must exist unless create=1), create the baseline table if missing.
 * NULL with err filled on failure. */
struct bstore *bstore_open(const char *path, int create, char *err, size_t errlen);
void bstore_close(struct bstore *b);
const char *bstore_errmsg(const struct bstore *b);

/* Call cb for every row (ordered by scope, principal, application, kind, item); a non-zero
 * return from cb stops the walk. 0 or -errno. */
int bstore_load(struct bstore *b, int (*cb)(void *ctx, const struct rec_baseline *r), void *ctx);

/* Delete every row of principal (both scopes). *n gets the rows deleted. */
int bstore_forget(struct bstore *b, const char *principal, int64_t *n);
/* Accept what was alerted for principal: pending rows become part of the baseline. */
int bstore_ack(struct bstore *b, const char *principal, int64_t *n);

/* `dbtap baseline [-d DB] (--list [--json] | --forget PRINCIPAL | --ack PRINCIPAL)`;
 * argv[0] is "baseline". Exit status as DESIGN.md §2. */
int baseline_main(int argc, char **argv);

#endif
