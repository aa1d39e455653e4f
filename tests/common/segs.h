/* Test helpers shared by decoder suites: load a 'segs' file made by
 * tests/tools/pcap2segs.py from a real capture, feed it to a decoder the way capture
 * would (keeping unconsumed bytes, optionally split at a given offset), and record the
 * emitted events as text lines for golden comparisons. */
#ifndef DBTAP_TEST_SEGS_H
#define DBTAP_TEST_SEGS_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct seg {
	enum proto_dir dir;
	uint8_t *data;
	size_t len;
};

struct segs {
	struct seg *v;
	size_t n;
};

/* A whole text file under DBTAP_SRC (malloc'd, NUL-terminated), or NULL if missing. */
char *segs_read_text(const char *rel);
/* Write a text file under DBTAP_SRC (golden files when regenerating); 0 or -1. */
int segs_write_text(const char *rel, const char *text);

/* Path relative to DBTAP_SRC (or absolute). Returns 0, or -1 if missing/unreadable. */
int segs_load(struct segs *s, const char *path);
void segs_free(struct segs *s);

/* Records events as lines like "QUERY id=1 kind=simple sql=select 1". */
struct evlog {
	char *text; /* all lines, '\n'-terminated */
	size_t len, cap;
	size_t count[32]; /* per enum ev_type */
};

void evlog_init(struct evlog *l);
void evlog_free(struct evlog *l);
struct ev_sink evlog_sink(struct evlog *l);
/* Render one event as a line (no newline) into buf. */
void ev_format(const struct ev *e, char *buf, size_t len);

/* Feed every segment through d: each direction keeps its unconsumed tail, like capture.
 * When split > 0, each segment is delivered in two calls cut at min(split, len).
 * Returns the number of PROTO_STOP results seen. */
int segs_feed(const struct proto_decoder *d, void *st, const struct segs *s, size_t split);

/* Convenience: open, feed, close(EOF) into a fresh evlog. */
void segs_run(const struct proto_decoder *d, const struct segs *s, size_t split, int midstream,
	      struct evlog *out);

#endif
