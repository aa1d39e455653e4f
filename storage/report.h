/* `dbtap report` and `dbtap prune`: summarise one or more findings databases over a time
 * window (text, self-contained HTML, JSON), and apply retention to old statements. */
#ifndef DBTAP_REPORT_H
#define DBTAP_REPORT_H

#include <stddef.h>
#include <stdint.h>

enum report_format { REPORT_TEXT, REPORT_HTML, REPORT_JSON, REPORT_NFORMATS };
#define REPORT_FMT(f) (1u << (f))

struct report_opts {
	const char *const *dbs; /* one or more database paths (several sensors merge) */
	int n_dbs;
	int64_t since_us;  /* window start; 0 = derive from last_us */
	int64_t last_us;   /* window length back from its end; 0 = 24 h */
	int64_t until_us;  /* window end (exclusive) when until_set; else the newest packet */
	int until_set;
	enum report_format format; /* used when formats is 0 */
	unsigned formats;  /* REPORT_FMT() bits: each rendered from one computation */
	/* NULL or "-" = stdout; with several formats a directory that gets report.txt,
	 * report.html and report.json (created when missing). */
	const char *out;
	int since_set;     /* since_us given (it may be 0: 1970-01-01) */
	/* Record this report in the first database (table report_runs), so the next one can
	 * say which finding groups are new since. */
	int record;
};

/* "text", "html,json", ...: REPORT_FMT bits in *mask; -1 when a name is unknown. */
int report_parse_formats(const char *s, unsigned *mask);

/* 0 on success; -1 with a one-line message in err (exit 1). */
int report_run(const struct report_opts *o, char *err, size_t errlen);

/* The CLI of both words: argv[0] is "report" or "prune"; the rest as in DESIGN.md §2:
 *   report [-d DB]... [--since ISO8601 | --last 24h] [--until ISO8601|now]
 *          [--format text|html|json[,...]] [-o FILE|DIR]
 *   prune  [-d DB]... --older-than 30d [--vacuum] [--dry-run]
 * Returns the exit status: 0 ok, 1 runtime error (one line on stderr naming the file),
 * 2 usage error. */
int report_main(int argc, char **argv);

/* Retention (also for a config key applied at start-up): delete statements with ts older
 * than cutoff_us in small transactions, keeping runs, sessions, findings and any other
 * table (the baseline). findings.statement_id keeps its value (the finding carries its own
 * sql and fingerprint). vacuum: also VACUUM; otherwise freed pages are returned with
 * incremental_vacuum. 0, or -1 with a one-line message naming the file. */
int report_prune_db(const char *path, int64_t cutoff_us, int vacuum, int64_t *deleted,
		    char *err, size_t errlen);
/* prune --dry-run: what report_prune_db would delete, read through a read-only connection
 * (mode=ro; immutable when the file cannot be written, e.g. a read-only file system), the
 * database unchanged. oldest: the oldest statement's time ("" when none). 0, or -1 with a
 * one-line message naming the file. */
struct prune_plan {
	int64_t statements, states; /* statements and saved session states before the cutoff */
	char oldest[40];
};
int report_prune_plan(const char *path, int64_t cutoff_us, struct prune_plan *p, char *err,
		      size_t errlen);
/* "file:PATH?mode=ro" (with "&immutable=1"), the path percent-encoded; malloc'd, NULL when
 * out of memory. */
char *report_ro_uri(const char *path, int immutable);

/* `dbtap status`: one paragraph per sensor still running on the database at path (its
 * source, host, pid, uptime, last stats record, alive or not). 0 when at least one sensor
 * runs and all are alive, 1 otherwise; -1 with a one-line message when the database
 * cannot be read. */
#include <stdio.h>
int report_status(const char *path, FILE *out, char *err, size_t errlen);
/* At a sensor's start: its host's runs rows still 'running' whose process is gone (killed,
 * crashed, power cut) become 'failed', stopped at their last stats record, so `dbtap status`
 * judges the sensors that run now. A pid that exists (perhaps reused) is left alone, except
 * the caller's own (it has not written its row yet). Call before the run row is put.
 * 0 with the number closed in *closed, or -1 with a one-line message in err. */
int report_close_stale(const char *path, int64_t *closed, char *err, size_t errlen);

/* Parsers shared by the CLI: "24h", "30d", "90m", "3600s", "2w" -> microseconds;
 * "2026-11-27", "2026-11-27T09:15", "2026-11-27T09:15:02.5Z", "...+01:00" -> us since epoch.
 * 0 or -1 when malformed. */
int report_parse_duration(const char *s, int64_t *us);
int report_parse_time(const char *s, int64_t *us);

#endif
