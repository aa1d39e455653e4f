/* `dbtap status`: the sensors writing to a findings database (runs rows still 'running'),
 * their uptime, their last stats record and whether they are alive: a record newer than
 * two stats intervals (storage/SCHEMA.md, runs). Read-only. */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

#define STATUS_BUSY_MS 5000

static void fmt_age(double s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%.0f s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0f min", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%.1f h", s / 3600);
	else
		snprintf(buf, len, "%.1f days", s / 86400);
}

int report_status(const char *path, FILE *out, char *err, size_t errlen)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, STATUS_BUSY_MS);
	/* age: seconds since the last sign of life (the last stats record, else the start) */
	if (sqlite3_prepare_v2(db,
			       "SELECT id, source, host, pid, sensor_started_at,"
			       " (julianday('now') - julianday(sensor_started_at)) * 86400,"
			       " (julianday('now') - julianday(coalesce(stats_at, sensor_started_at))) * 86400,"
			       " coalesce(stats_interval_s, 60), stats, packets, kernel_drops, sensor_drops, sensor"
			       " FROM runs WHERE status = 'running' ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	int n = 0, dead = 0, step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *src = (const char *)sqlite3_column_text(st, 1);
		const char *h = (const char *)sqlite3_column_text(st, 2);
		long long pid = sqlite3_column_int64(st, 3);
		const char *since = (const char *)sqlite3_column_text(st, 4);
		double up = sqlite3_column_double(st, 5), age = sqlite3_column_double(st, 6);
		long long iv = sqlite3_column_int64(st, 7);
		const char *stats = (const char *)sqlite3_column_text(st, 8);
		int alive = iv > 0 ? age <= 2.0 * (double)iv : 1;
		const char *why = "";
		/* same machine: a process that is gone is dead whatever its last record says */
		if (h && pid > 0 && strcmp(h, host) == 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			alive = 0;
			why = ", process gone";
		}
		char ups[32], ages[32];
		fmt_age(up, ups, sizeof ups);
		fmt_age(age, ages, sizeof ages);
		const char *sensor = (const char *)sqlite3_column_text(st, 12);
		fprintf(out, "run %lld: sensor %s, %s on %s pid %lld, up %s (since %s), last stats %s ago%s: %s\n",
			(long long)sqlite3_column_int64(st, 0), sensor ? sensor : "?", src ? src : "?", h ? h : "?", pid, ups,
			since ? since : "?", ages, why, alive ? "alive" : "NOT ALIVE");
		fprintf(out, "  packets %lld, kernel drops %lld, sensor drops %lld\n",
			(long long)sqlite3_column_int64(st, 9), (long long)sqlite3_column_int64(st, 10),
			(long long)sqlite3_column_int64(st, 11));
		if (stats)
			fprintf(out, "  stats %s\n", stats);
		n++;
		dead += !alive;
	}
	if (step != SQLITE_DONE)
		goto fail;
	if (n == 0)
		fprintf(out, "no sensor is writing to %s\n", path);
	rc = n > 0 && dead == 0 ? 0 : 1;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
fail:
	snprintf(err, errlen, "%s: %s", path,
		 db ? (sqlite3_errcode(db) == SQLITE_NOTADB ? "file is not a database" : sqlite3_errmsg(db))
		    : "cannot open");
	if (strstr(err, "no such column"))
		snprintf(err, errlen, "%s: no sensor health columns (written by an older dbtap; a run of this one adds them)", path);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}

int report_close_stale(const char *path, int64_t *closed, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *sel = NULL, *up = NULL;
	char host[256] = "";
	*closed = 0;
	if (gethostname(host, sizeof host - 1) != 0 || !host[0])
		return 0; /* without a host name nothing can be judged */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, STATUS_BUSY_MS);
	if (sqlite3_prepare_v2(db, "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?1", -1, &sel,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "UPDATE runs SET status = 'failed', sensor_stopped_at = coalesce(stats_at,"
			       " sensor_started_at), error = 'stopped without closing its run (killed, crashed"
			       " or power lost); counters as of its last stats record' WHERE id = ?1 AND status = 'running'",
			       -1, &up, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(sel, 1, host, -1, SQLITE_STATIC);
	int step;
	while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
		long long pid = sqlite3_column_int64(sel, 1);
		/* our own pid is an earlier life of it (a container's pid 1): this run's row is
		 * not written yet */
		if (pid <= 0 || (pid != (long long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
			continue;
		sqlite3_bind_int64(up, 1, sqlite3_column_int64(sel, 0));
		if (sqlite3_step(up) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(up);
		*closed += sqlite3_changes(db);
	}
	if (step != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	sqlite3_close(db);
	return 0;
fail:
	snprintf(err, errlen, "%s: closing the runs of stopped sensors: %s", path,
		 db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(sel);
	sqlite3_finalize(up);
	sqlite3_close(db);
	return -1;
}
