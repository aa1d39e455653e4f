/* SQLite sink (stub: the storage work replaces this). */
#include <stdio.h>
#include <stdlib.h>

#include "sink.h"

struct sink *sink_sqlite_open(const char *path, int batch_rows, struct sink_ids *next, char *err,
			      size_t errlen)
{
	(void)batch_rows;
	(void)next;
	snprintf(err, errlen, "%s: sqlite sink not implemented", path);
	return NULL;
}
