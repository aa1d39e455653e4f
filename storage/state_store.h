/* Saved session state (table session_state, storage/SCHEMA.md; issue #18) read back at the
 * start of a run on its own read-only connection. Rows are written by the sink's writer
 * (REC_STATE), so the analyzer never waits for the writer's lock. */
#ifndef DBTAP_STATE_STORE_H
#define DBTAP_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Call fn for every row; key or state NULL when the column is not text, session_id 0 when
 * not an integer; saved_at: 1 when the row was saved at or after min_saved (wall clock,
 * us), 0 when older. A database or table that does not exist yet is not an error (0 rows).
 * 0, or -1 with a one-line message in err. fn returning < 0 stops the walk. */
int state_store_load(const char *path, int64_t min_saved,
		     int (*fn)(void *ctx, const char *key, int64_t session_id, int fresh, const char *state,
			       size_t len),
		     void *ctx, char *err, size_t errlen);

#endif
