/* `dbtap report` and `dbtap prune`: one or more findings databases are attached read-only
 * to an in-memory database, aggregated over the window with SQL, gathered into one JSON
 * document, and that document is rendered as JSON, text or self-contained HTML, so every
 * format shows the same numbers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbtap_version.h"
#include "jsonw.h"
#include "report.h"
#include "findings.h"
#include "report_int.h"
#include "sink.h"

/* ---- parsing ---- */

int report_parse_duration(const char *s, int64_t *us)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0 || !end[0] || end[1])
		return -1;
	int64_t mul;
	switch (end[0]) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -1;
	}
	if (v > INT64_MAX / US_PER_S / mul)
		return -1;
	*us = (int64_t)v * mul * US_PER_S;
	return 0;
}

static int rp_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int report_parse_time(const char *s, int64_t *us)
{
	struct tm tm = {0};
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac = 0, off = 0;
	const char *p = s;
	if (rp_digits(&p, 4, &y) || *p++ != '-' || rp_digits(&p, 2, &mo) || *p++ != '-' ||
	    rp_digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (rp_digits(&p, 2, &h) || *p++ != ':' || rp_digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (rp_digits(&p, 2, &sec))
				return -1;
			if (*p == '.') {
				p++;
				int64_t scale = 100000;
				if (*p < '0' || *p > '9')
					return -1;
				for (; *p >= '0' && *p <= '9'; p++) {
					frac += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om;
			if (rp_digits(&p, 2, &oh))
				return -1;
			if (*p == ':')
				p++;
			if (rp_digits(&p, 2, &om))
				return -1;
			off = sign * ((int64_t)oh * 3600 + om * 60);
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	*us = ((int64_t)t - off) * US_PER_S + frac;
	return 0;
}


/* ---- entry points ---- */

static int rp_write_out(const char *out, const char *data, size_t len, char *err, size_t errlen)
{
	int fd = STDOUT_FILENO;
	const char *name = "<stdout>";
	if (out && strcmp(out, "-") != 0) {
		name = out;
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s", out, strerror(errno));
			return -1;
		}
	}
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: write: %s", name, n < 0 ? strerror(errno) : "short write");
			rc = -1;
			break;
		}
		off += (size_t)n;
	}
	if (fd != STDOUT_FILENO && close(fd) != 0 && !rc) {
		snprintf(err, errlen, "%s: close: %s", name, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Remember this report's window in the first database, for "new since the last report". */
static int rp_record(struct rp *r, unsigned formats)
{
	const char *path = r->o->dbs[0];
	sqlite3 *db;
	char at[40];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	sink_fmt_time((int64_t)now.tv_sec * US_PER_S + now.tv_nsec / 1000, at, sizeof at);
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	sqlite3_busy_timeout(db, 10000);
	if (rc == SQLITE_OK && findings_schema(db, r->err, r->errlen) < 0) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_stmt *st = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO report_runs(at, since, until, formats)"
					    " VALUES(?1, ?2, ?3, ?4)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->since, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->until, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, (int)formats);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc != SQLITE_OK)
		snprintf(r->err, r->errlen, "%s: recording the report: %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

int report_run(const struct report_opts *o, char *err, size_t errlen)
{
	struct rp r = {.o = o, .err = err, .errlen = errlen};
	cJSON *root = NULL;
	struct jw w = {0};
	int rc = -1;
	if (o->n_dbs < 1) {
		snprintf(err, errlen, "report: no database");
		return -1;
	}
	if (sqlite3_open_v2(":memory:", &r.db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "report: cannot open an in-memory database");
		goto out;
	}
	sqlite3_busy_timeout(r.db, 10000);
	findings_register_sql(r.db);
	if (sqlite3_exec(r.db, rp_tables_sql, NULL, NULL, NULL) != SQLITE_OK) {
		rp_fail(&r, NULL, "setup");
		goto out;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "report", "dbtap");
	cJSON_AddStringToObject(root, "version", DBTAP_VERSION);
	if (rp_gather(&r, root) < 0 || rp_compute(&r, root) < 0)
		goto out;

	/* one computation, every format rendered from it */
	unsigned fm = o->formats ? o->formats : REPORT_FMT(o->format);
	int several = (fm & (fm - 1)) != 0;
	static const char *const names[REPORT_NFORMATS] = { "report.txt", "report.html", "report.json" };
	if (several && o->out && strcmp(o->out, "-") != 0 && mkdir(o->out, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	rc = 0;
	for (int f = 0; f < REPORT_NFORMATS && rc == 0; f++) {
		if (!(fm & REPORT_FMT(f)))
			continue;
		jw_free(&w);
		memset(&w, 0, sizeof w);
		if (f == REPORT_JSON) {
			char *s = cJSON_Print(root);
			if (s) {
				jw_puts(&w, s);
				jw_putc(&w, '\n');
				free(s);
			} else {
				w.oom = 1;
			}
		} else if (f == REPORT_HTML) {
			rp_html(root, &w);
		} else {
			rp_text(root, &w);
		}
		if (w.oom) {
			snprintf(err, errlen, "report: out of memory");
			rc = -1;
			break;
		}
		char path[4096];
		const char *dest = o->out;
		if (several && o->out && strcmp(o->out, "-") != 0) {
			snprintf(path, sizeof path, "%s/%s", o->out, names[f]);
			dest = path;
		}
		rc = rp_write_out(dest, w.buf ? w.buf : "", w.len, err, errlen);
	}
	if (rc == 0 && o->record)
		rc = rp_record(&r, fm);
out:
	cJSON_Delete(root);
	jw_free(&w);
	sqlite3_close(r.db);
	return rc;
}

int report_parse_formats(const char *s, unsigned *mask)
{
	static const char *const names[REPORT_NFORMATS] = { "text", "html", "json" };
	*mask = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		int f = REPORT_NFORMATS;
		for (int i = 0; i < REPORT_NFORMATS; i++)
			if (strlen(names[i]) == n && !strncmp(s, names[i], n))
				f = i;
		if (f == REPORT_NFORMATS)
			return -1;
		*mask |= REPORT_FMT(f);
		s += n + (s[n] == ',');
	}
	return *mask ? 0 : -1;
}

#define RP_MAX_DBS 64

static const char rp_help_report[] =
	"usage: dbtap report [-d DB]... [--since ISO8601 | --last 24h] [--until ISO8601|now]\n"
	"                    [--format text|html|json[,...]] [-o FILE|DIR] [--record]\n"
	"Summarise findings databases over a time window (several -d: several sensors merged).\n"
	"  -d, --db=DB           findings database (default ./dbtap.db); repeatable\n"
	"      --since=TIME      window start, ISO 8601 (2026-11-27, 2026-11-27T09:15Z)\n"
	"      --last=DURATION   window length back from its end (default 24h)\n"
	"      --until=TIME|now  window end (default: the newest packet)\n"
	"      --format=FORMATS  text (default), html or json; several, comma-separated,\n"
	"                        need -o DIR (report.txt, report.html, report.json)\n"
	"  -o, --output=FILE|DIR write there instead of standard output\n"
	"      --record          remember this window, so the next report counts new groups\n"
	"  -h, --help            this help\n";
static const char rp_help_prune[] =
	"usage: dbtap prune [-d DB]... --older-than 30d [--vacuum] [--dry-run]\n"
	"Delete statements older than a duration; sessions, findings, runs and the baseline stay.\n"
	"  -d, --db=DB              findings database (default ./dbtap.db); repeatable\n"
	"      --older-than=DURATION  e.g. 30d, 12h, 2w (required)\n"
	"      --vacuum             also shrink the file (VACUUM)\n"
	"  -n, --dry-run            say what would be deleted; open read-only, change nothing\n"
	"  -h, --help               this help\n";

/* A usage error: what is wrong, then how to ask for the options (exit 2). */
static int rp_usage(const char *word, const char *msg)
{
	fprintf(stderr, "dbtap %s: %s (see: dbtap %s --help)\n", word, msg, word);
	return 2;
}

int report_main(int argc, char **argv)
{
	const char *word = argc > 0 && argv[0] ? argv[0] : "report";
	int prune = strcmp(word, "prune") == 0;
	const char *dbs[RP_MAX_DBS];
	struct report_opts o = {.dbs = dbs, .format = REPORT_TEXT};
	int64_t older = 0;
	int vacuum = 0, dry_run = 0;
	char msg[300];
	static const struct option report_opts[] = {
		{"db", required_argument, NULL, 'd'},	 {"since", required_argument, NULL, 'S'},
		{"last", required_argument, NULL, 'L'},	 {"format", required_argument, NULL, 'F'},
		{"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
		{"until", required_argument, NULL, 'U'},	 {"record", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0},
	};
	static const struct option prune_opts[] = {
		{"db", required_argument, NULL, 'd'},	  {"older-than", required_argument, NULL, 'O'},
		{"vacuum", no_argument, NULL, 'v'},	  {"help", no_argument, NULL, 'h'},
		{"dry-run", no_argument, NULL, 'n'},	  {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	opterr = 0; /* our own one-line messages */
	while ((ch = getopt_long(argc, argv, prune ? ":d:hn" : ":d:o:h", prune ? prune_opts : report_opts,
				 NULL)) != -1) {
		const char *val = optarg;
		switch (ch) {
		case 'h':
			fputs(prune ? rp_help_prune : rp_help_report, stdout);
			return 0;
		case 'd':
			if (o.n_dbs == RP_MAX_DBS)
				return rp_usage(word, "too many -d databases (at most 64)");
			dbs[o.n_dbs++] = val;
			break;
		case 'S':
			o.since_set = 1;
			if (report_parse_time(val, &o.since_us) < 0) {
				snprintf(msg, sizeof(msg), "--since: not an ISO-8601 time: %.200s", val);
				return rp_usage(word, msg);
			}
			break;
		case 'L':
			if (report_parse_duration(val, &o.last_us) < 0) {
				snprintf(msg, sizeof(msg), "--last: not a duration like 24h or 7d: %.200s", val);
				return rp_usage(word, msg);
			}
			break;
		case 'U':
			o.until_set = 1;
			if (!strcmp(val, "now")) {
				struct timespec now;
				clock_gettime(CLOCK_REALTIME, &now);
				o.until_us = (int64_t)now.tv_sec * US_PER_S + now.tv_nsec / 1000;
			} else if (report_parse_time(val, &o.until_us) < 0) {
				snprintf(msg, sizeof(msg), "--until: not an ISO-8601 time or 'now': %.200s", val);
				return rp_usage(word, msg);
			}
			break;
		case 'R':
			o.record = 1;
			break;
		case 'F':
			if (report_parse_formats(val, &o.formats) < 0)
				return rp_usage(word, "--format takes text, html or json, or several"
						      " separated by commas");
			break;
		case 'o':
			o.out = val;
			break;
		case 'O':
			if (report_parse_duration(val, &older) < 0) {
				snprintf(msg, sizeof(msg), "--older-than: not a duration like 30d: %.200s", val);
				return rp_usage(word, msg);
			}
			break;
		case 'v':
			vacuum = 1;
			break;
		case 'n':
			dry_run = 1;
			break;
		case ':':
			snprintf(msg, sizeof(msg), "%.200s needs a value", argv[optind - 1]);
			return rp_usage(word, msg);
		default:
			snprintf(msg, sizeof(msg), "unknown option %.200s", argv[optind - 1]);
			return rp_usage(word, msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument '%.200s'", argv[optind]);
		return rp_usage(word, msg);
	}
	if (o.since_set && o.last_us)
		return rp_usage(word, "--since and --last exclude each other");
	if (o.since_set && o.until_set && o.until_us <= o.since_us)
		return rp_usage(word, "--until must be later than --since");
	if (!o.n_dbs)
		dbs[o.n_dbs++] = "dbtap.db";

	char err[512];
	if (prune) {
		if (!older)
			return rp_usage(word, "--older-than is required");
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t cutoff = (int64_t)now.tv_sec * US_PER_S + now.tv_nsec / 1000 - older;
		char ct[40];
		sink_fmt_time(cutoff, ct, sizeof(ct));
		for (int i = 0; i < o.n_dbs && dry_run; i++) {
			struct prune_plan p;
			if (report_prune_plan(dbs[i], cutoff, &p, err, sizeof(err)) < 0) {
				fprintf(stderr, "dbtap prune: %s\n", err);
				return 1;
			}
			printf("dbtap prune: %s: would delete %lld statements before %s%s%s%s and %lld saved session states%s; dry run, nothing changed\n",
			       dbs[i], (long long)p.statements, ct, p.oldest[0] ? " (oldest " : "", p.oldest,
			       p.oldest[0] ? ")" : "", (long long)p.states, vacuum ? ", then VACUUM" : "");
		}
		for (int i = 0; i < o.n_dbs && !dry_run; i++) {
			int64_t n;
			if (report_prune_db(dbs[i], cutoff, vacuum, &n, err, sizeof(err)) < 0) {
				fprintf(stderr, "dbtap prune: %s\n", err);
				return 1;
			}
			fprintf(stderr, "dbtap prune: %s: deleted %lld statements before %s\n", dbs[i],
				(long long)n, ct);
		}
		return 0;
	}
	if (report_run(&o, err, sizeof(err)) < 0) {
		fprintf(stderr, "dbtap report: %s\n", err);
		return 1;
	}
	return 0;
}
