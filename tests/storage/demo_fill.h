/* Fills a findings database through the real sink with a deterministic day of activity
 * (sessions, statements, findings of every kind, failed logins, TLS/mid-stream sessions,
 * hostile strings) so report and HTML tests have realistic, known content. */
#ifndef DBTAP_TEST_DEMO_FILL_H
#define DBTAP_TEST_DEMO_FILL_H

#include <stdint.h>

#include "sink.h"

struct demo_counts {
	int64_t sessions, statements, findings, failed_logins;
};

/* Writes one run starting at t0 (us) spanning `hours` hours of packet time with about
 * `per_hour` sessions per hour. Ids come from ids (advanced). 0 or negative on put error. */
int demo_fill(struct sink *s, struct sink_ids *ids, int64_t t0, int hours, int per_hour,
	      unsigned seed, struct demo_counts *out);

#endif
