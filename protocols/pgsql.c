/* PostgreSQL v3 wire protocol decoder (stub). */
#include "proto.h"

static enum proto_verdict pg_probe(enum proto_dir dir, const uint8_t *buf, size_t len)
{
	(void)dir; (void)buf; (void)len;
	return PROTO_NO;
}

static void *pg_open(const struct ev_sink *out, int midstream)
{
	(void)out; (void)midstream;
	static int dummy;
	return &dummy;
}

static struct proto_result pg_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len, ev_time ts)
{
	(void)st; (void)dir; (void)buf; (void)ts;
	return (struct proto_result){ PROTO_OK, len };
}

static void pg_gap(void *st, enum proto_dir dir, ev_time ts) { (void)st; (void)dir; (void)ts; }
static void pg_close(void *st, enum proto_end why, ev_time ts) { (void)st; (void)why; (void)ts; }

const struct proto_decoder proto_pgsql = {
	.name = "postgresql", .probe = pg_probe, .open = pg_open, .parse = pg_parse, .gap = pg_gap, .close = pg_close,
};
