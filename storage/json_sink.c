/* JSON-lines sink (stub). */
#include <stdio.h>

#include "sink.h"

struct sink *sink_json_open(const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: json sink not implemented", path);
	return NULL;
}

int sink_json_reopen(struct sink *s)
{
	(void)s;
	return 0;
}
