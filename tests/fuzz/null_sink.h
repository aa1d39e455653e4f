/* A sink that accepts and forgets every record: fuzz targets exercise the analyzer's
 * record building without storage. */
#ifndef DBTAP_NULL_SINK_H
#define DBTAP_NULL_SINK_H

#include "sink.h"

static int null_put(struct sink *s, const struct rec *r)
{
	(void)s;
	(void)r;
	return 0;
}

static int null_flush(struct sink *s)
{
	(void)s;
	return 0;
}

static void null_close(struct sink *s)
{
	(void)s;
}

static const struct sink_ops null_ops = { .put = null_put, .flush = null_flush, .close = null_close };

#endif
