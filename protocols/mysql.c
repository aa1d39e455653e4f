/* MySQL / MariaDB client-server protocol decoder (stub). */
#include "proto.h"

static enum proto_verdict my_probe(enum proto_dir dir, const uint8_t *buf, size_t len)
{
	(void)dir; (void)buf; (void)len;
	return PROTO_NO;
}

static void *my_open(const struct ev_sink *out, int midstream)
{
	(void)out; (void)midstream;
	static int dummy;
	return &dummy;
}

static struct proto_result my_parse(void *st, enum proto_dir dir, const uint8_t *buf, size_t len, ev_time ts)
{
	(void)st; (void)dir; (void)buf; (void)ts;
	return (struct proto_result){ PROTO_OK, len };
}

static void my_gap(void *st, enum proto_dir dir, ev_time ts) { (void)st; (void)dir; (void)ts; }
static void my_close(void *st, enum proto_end why, ev_time ts) { (void)st; (void)why; (void)ts; }

const struct proto_decoder proto_mysql = {
	.name = "mysql", .probe = my_probe, .open = my_open, .parse = my_parse, .gap = my_gap, .close = my_close,
};
