/* The sensor's health record: what `dbtap run` reports every stats_interval_s (stderr line,
 * the --json "stats" event, the runs row, the --metrics-file) and once at the end.
 * Every number is one row of stats_fields[] (stats.c): add a counter there and it appears
 * in all four places, with the same name (storage/SCHEMA.md documents them). */
#ifndef DBTAP_STATS_H
#define DBTAP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "an.h"
#include "cap.h"
#include "sink.h"

struct dbtap_stats {
	int64_t wall_us;     /* when it was taken */
	int64_t uptime_us;   /* since the sensor started */
	int64_t lag_us;	     /* live: wall time minus the newest packet's time; 0 for files */
	uint64_t sensor_drops; /* every cause below together (= runs.sensor_drops) */
	struct cap_stats cap;
	struct an_stats an;
	struct sink_stats db; /* the SQLite writer */
	uint64_t json_dropped;
	uint64_t syslog_dropped;
};

enum stats_kind {
	STATS_COUNTER, /* only grows during a run */
	STATS_GAUGE,   /* a level now */
	STATS_SECONDS, /* a gauge kept in microseconds, shown in seconds */
};

struct stats_field {
	const char *name; /* JSON key; Prometheus: dbtap_NAME (counters: dbtap_NAME_total) */
	enum stats_kind kind;
	size_t off;	 /* of a uint64_t (int64_t for STATS_SECONDS) in struct dbtap_stats */
	const char *help;
};
extern const struct stats_field stats_fields[];
extern const size_t stats_nfields;

/* The sum of the sensor's own drop causes, into s->sensor_drops. */
void stats_total_drops(struct dbtap_stats *s);
/* runs.drops: the capture's counters (cap_json, an object; NULL: none), the analyzer's and
 * what the sinks did not store, one JSON object (storage/SCHEMA.md), written every stats
 * interval and at the end. */
void stats_drops_json(char *buf, size_t len, const char *cap_json, const struct an_stats *as,
		      uint64_t sink_dropped);
/* {"uptime_s":..,"packets":..,...}: every field; caller frees; NULL when out of memory. */
char *stats_json(const struct dbtap_stats *s);
/* One line for stderr (no newline). */
void stats_line(const struct dbtap_stats *s, const char *source, char *buf, size_t len);
/* The Prometheus text exposition of every field, labelled source="...", written to
 * path.tmp and renamed over path (node_exporter's textfile collector never reads half a
 * file). 0, or -1 with a one-line message. */
int stats_write_metrics(const struct dbtap_stats *s, const char *path, const char *source,
			int64_t started_us, char *err, size_t errlen);

#endif
