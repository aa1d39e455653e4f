/* The health record's fields and its three renderings (JSON, a stderr line, Prometheus
 * text). One table, so the names agree everywhere. */
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define C(name, member, help) { name, STATS_COUNTER, offsetof(struct dbtap_stats, member), help }
#define G(name, member, help) { name, STATS_GAUGE, offsetof(struct dbtap_stats, member), help }

const struct stats_field stats_fields[] = {
	{ "uptime_seconds", STATS_SECONDS, offsetof(struct dbtap_stats, uptime_us), "seconds since the sensor started" },
	{ "lag_seconds", STATS_SECONDS, offsetof(struct dbtap_stats, lag_us), "live: wall time minus the newest packet's time" },
	C("packets", cap.packets, "packets read from the interface or files"),
	C("bytes", cap.bytes, "bytes of those packets (wire length)"),
	C("kernel_drops", cap.kernel_drops, "packets the kernel dropped before the sensor read them"),
	C("sensor_drops", sensor_drops, "records the sensor dropped itself: the sum of the causes below"),
	C("streams", cap.streams, "database TCP streams seen"),
	C("sessions", an.sessions, "sessions opened"),
	C("statements", an.statements, "statements decoded"),
	C("statements_stored", an.statements_stored, "statements handed to storage"),
	C("findings", an.findings, "findings raised"),
	C("gaps", cap.gaps, "holes in TCP streams declared lost"),
	C("lost_bytes", cap.lost_bytes, "bytes lost at those holes"),
	C("midstream_pickups", cap.midstream_pickups, "streams picked up after their handshake"),
	G("flows_open", cap.flows_open, "TCP flows tracked now"),
	G("sessions_open", an.sessions_open, "sessions in the analyzer's table now"),
	G("sessions_parked_now", an.parked_now, "idle sessions parked now (resumed on the same row)"),
	G("parked_bytes", an.parked_bytes, "bytes held by parked session records now"),
	G("decoder_queue_bytes", cap.decoder_queue_bytes, "bytes waiting for the decoder thread"),
	G("analyzer_queue_bytes", cap.analyzer_queue_bytes, "bytes waiting for the analyzer thread"),
	G("writer_queue_batches", db.queued_batches, "batches waiting for the SQLite writer"),
	G("db_failing_seconds", db.failing_s, "seconds SQLite writes have been failing (disk full, lock); 0: they work"),
	G("db_spill_rows", db.spill_rows, "rows waiting in the spill file (output.spill) for the database"),
	/* drop causes (each counted in sensor_drops) */
	C("flows_evicted", cap.evicted, "drop: flows evicted for room (max_flows)"),
	C("flows_failed", cap.flows_failed, "drop: flows not tracked, out of memory"),
	C("oversize", cap.oversize, "drop: messages larger than the hold limit skipped"),
	C("held_dropped", cap.held_dropped, "drop: message heads dropped (hold budget)"),
	C("held_segments_dropped", cap.held_segments_dropped, "drop: segments behind a hole not kept"),
	C("v6_map_full", cap.v6_map_full, "drop: IPv6 packets skipped, address map full"),
	C("sessions_evicted", an.sessions_evicted, "drop: sessions evicted, analyzer table full"),
	C("statements_dropped", an.pending_dropped, "drop: statements dropped, pending queue full"),
	C("db_dropped", db.dropped, "drop: records the SQLite writer could not store"),
	C("json_dropped", json_dropped, "drop: JSON lines not written"),
	C("syslog_dropped", syslog_dropped, "drop: syslog messages not sent (queue full, receiver gone)"),
	/* counted, not drops */
	C("db_spilled", db.spilled, "rows put into the spill file while the database could not be written"),
	C("db_replayed", db.replayed, "rows replayed from the spill file into the database"),
	C("nids_evictions", cap.nids_evictions, "streams libnids dropped for room, picked up again"),
	C("idle_closed", cap.idle_closed, "flows closed after idle_timeout_s"),
	C("non_ip", cap.non_ip, "packets neither IPv4 nor IPv6"),
	C("truncated", cap.truncated, "packets cut short by the snap length"),
	C("ipv6_fragments", cap.ipv6_fragments, "fragmented IPv6 packets skipped"),
	C("statements_skipped", an.statements_skipped, "statements the server skipped after an error"),
	C("sql_truncated", an.sql_truncated, "statement texts cut at the size cap"),
	C("baseline_dropped", an.baseline_dropped, "baseline items not kept: max_entries reached"),
	C("baseline_errors", an.baseline_errors, "baseline writes that failed (retried)"),
	C("baseline_evicted", an.baseline_evicted, "least recently seen baseline items forgotten for new ones (when_full evict)"),
	C("sessions_parked", an.sessions_parked, "idle sessions parked instead of ended"),
	C("sessions_resumed", an.sessions_resumed, "parked sessions that spoke again (same row)"),
	C("sessions_restored", an.sessions_restored, "sessions resumed from state saved by an earlier run"),
	C("parked_evicted", an.parked_evicted, "parked records ended for room (count or bytes cap)"),
	C("prepared_dropped", an.prepared_dropped, "prepared statement texts not kept (caps)"),
	C("state_rejected", an.state_rejected, "saved state rows not loaded (malformed, too old)"),
	C("pooler_joined", an.pooler_joined, "pooler server-leg statements joined to their client leg"),
	C("pooler_own", an.pooler_own, "pooler server-leg statements the pooler sent itself"),
	C("pooler_unmatched", an.pooler_unmatched, "pooler server-leg statements no client statement matched"),
	C("pooler_ambiguous", an.pooler_ambiguous, "pooler server-leg statements several clients could have sent"),
	C("pooler_dropped", an.pooler_dropped, "pooler client-leg statements not kept for matching (cap)"),
};
const size_t stats_nfields = sizeof(stats_fields) / sizeof(stats_fields[0]);

static uint64_t u64_at(const struct dbtap_stats *s, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)s + off, sizeof v);
	return v;
}

static double seconds_at(const struct dbtap_stats *s, size_t off)
{
	int64_t v;
	memcpy(&v, (const char *)s + off, sizeof v);
	return v > 0 ? (double)v / 1e6 : 0.0;
}

void stats_total_drops(struct dbtap_stats *s)
{
	s->sensor_drops = s->cap.sensor_drops + s->an.sessions_evicted + s->an.pending_dropped +
			  s->db.dropped + s->json_dropped + s->syslog_dropped;
}

void stats_drops_json(char *buf, size_t len, const char *cap_json, const struct an_stats *as, uint64_t sink_dropped)
{
	size_t cl = cap_json ? strlen(cap_json) : 0;
	snprintf(buf, len,
		 "%.*s%s\"sessions_evicted\":%llu,\"statements_dropped\":%llu,"
		 "\"statements_skipped\":%llu,\"sql_truncated\":%llu,\"sink_dropped\":%llu,"
		 "\"baseline_dropped\":%llu,\"baseline_errors\":%llu,\"sessions_parked\":%llu,"
		 "\"sessions_resumed\":%llu,\"sessions_restored\":%llu,\"parked_evicted\":%llu,"
		 "\"prepared_dropped\":%llu,\"state_rejected\":%llu,\"pooler_joined\":%llu,"
		 "\"pooler_own\":%llu,\"pooler_unmatched\":%llu,\"pooler_ambiguous\":%llu,"
		 "\"pooler_dropped\":%llu}",
		 cl > 1 ? (int)(cl - 1) : 1, cap_json ? cap_json : "{", cl > 2 ? "," : "",
		 (unsigned long long)as->sessions_evicted, (unsigned long long)as->pending_dropped,
		 (unsigned long long)as->statements_skipped, (unsigned long long)as->sql_truncated,
		 (unsigned long long)sink_dropped, (unsigned long long)as->baseline_dropped,
		 (unsigned long long)as->baseline_errors, (unsigned long long)as->sessions_parked,
		 (unsigned long long)as->sessions_resumed, (unsigned long long)as->sessions_restored,
		 (unsigned long long)as->parked_evicted, (unsigned long long)as->prepared_dropped,
		 (unsigned long long)as->state_rejected, (unsigned long long)as->pooler_joined,
		 (unsigned long long)as->pooler_own, (unsigned long long)as->pooler_unmatched,
		 (unsigned long long)as->pooler_ambiguous, (unsigned long long)as->pooler_dropped);
}

char *stats_json(const struct dbtap_stats *s)
{
	size_t cap = 64 + stats_nfields * 48, n = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	out[n++] = '{';
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];
		int w = f->kind == STATS_SECONDS
				? snprintf(out + n, cap - n, "%s\"%s\":%.3f", i ? "," : "", f->name,
					   seconds_at(s, f->off))
				: snprintf(out + n, cap - n, "%s\"%s\":%llu", i ? "," : "", f->name,
					   (unsigned long long)u64_at(s, f->off));
		if (w < 0 || (size_t)w >= cap - n) {
			free(out);
			return NULL;
		}
		n += (size_t)w;
	}
	if (n + 2 > cap) {
		free(out);
		return NULL;
	}
	out[n++] = '}';
	out[n] = 0;
	return out;
}

void stats_line(const struct dbtap_stats *s, const char *source, char *buf, size_t len)
{
	snprintf(buf, len,
		 "dbtap: stats %s: %llu packets, %llu MB, %llu sessions open, %llu statements, "
		 "%llu findings, drops %llu kernel %llu sensor, %llu gaps, lag %.1f s, queues %llu KiB "
		 "%llu KiB %llu batches",
		 source, (unsigned long long)s->cap.packets, (unsigned long long)(s->cap.bytes >> 20),
		 (unsigned long long)s->an.sessions_open, (unsigned long long)s->an.statements,
		 (unsigned long long)s->an.findings, (unsigned long long)s->cap.kernel_drops,
		 (unsigned long long)s->sensor_drops, (unsigned long long)s->cap.gaps,
		 s->lag_us > 0 ? (double)s->lag_us / 1e6 : 0.0,
		 (unsigned long long)(s->cap.decoder_queue_bytes >> 10),
		 (unsigned long long)(s->cap.analyzer_queue_bytes >> 10),
		 (unsigned long long)s->db.queued_batches);
	size_t n = strlen(buf);
	if (n < len && (s->db.failing_s || s->db.dropped || s->db.spill_rows))
		snprintf(buf + n, len - n, "; database: writes failing %llu s, %llu rows not stored, %llu spilled, "
			 "%llu waiting in the spill, %llu replayed",
			 (unsigned long long)s->db.failing_s, (unsigned long long)s->db.dropped,
			 (unsigned long long)s->db.spilled, (unsigned long long)s->db.spill_rows,
			 (unsigned long long)s->db.replayed);
}

/* A label value: backslash, double quote and newline escaped (the exposition format). */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

int stats_write_metrics(const struct dbtap_stats *s, const char *path, const char *source,
			int64_t started_us, char *err, size_t errlen)
{
	char tmp[4200];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "# HELP dbtap_start_time_seconds when the sensor started (Unix time)\n"
		   "# TYPE dbtap_start_time_seconds gauge\ndbtap_start_time_seconds{source=\"");
	put_label(f, source);
	fprintf(f, "\"} %.3f\n", (double)started_us / 1e6);
	fprintf(f, "# HELP dbtap_last_stats_timestamp_seconds when these numbers were taken (Unix time)\n"
		   "# TYPE dbtap_last_stats_timestamp_seconds gauge\ndbtap_last_stats_timestamp_seconds{source=\"");
	put_label(f, source);
	fprintf(f, "\"} %.3f\n", (double)s->wall_us / 1e6);
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *fl = &stats_fields[i];
		const char *suffix = fl->kind == STATS_COUNTER ? "_total" : "";
		fprintf(f, "# HELP dbtap_%s%s %s\n# TYPE dbtap_%s%s %s\ndbtap_%s%s{source=\"", fl->name,
			suffix, fl->help, fl->name, suffix, fl->kind == STATS_COUNTER ? "counter" : "gauge",
			fl->name, suffix);
		put_label(f, source);
		if (fl->kind == STATS_SECONDS)
			fprintf(f, "\"} %.3f\n", seconds_at(s, fl->off));
		else
			fprintf(f, "\"} %llu\n", (unsigned long long)u64_at(s, fl->off));
	}
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno ? errno : EIO));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: rename: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
