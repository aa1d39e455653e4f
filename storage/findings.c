/* `dbtap findings`: list finding groups with their triage state, and set it
 * (acknowledge, false positive, resolve, reopen), with who, when and a note. See
 * findings.h for what a group is. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "findings.h"
#include "jsonw.h"
#include "report.h"
#include "sink.h"

/* 64-bit FNV-1a over the three parts (with separators), first 12 hex digits: short
 * enough to type, and a collision needs ~16 M groups. */
static void gid_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < argc; i++) {
		const unsigned char *t = sqlite3_value_text(argv[i]);
		int n = sqlite3_value_bytes(argv[i]);
		for (int k = 0; t && k < n; k++)
			h = (h ^ t[k]) * 0x100000001b3ull;
		h = (h ^ 0x1f) * 0x100000001b3ull;
	}
	char out[13];
	snprintf(out, sizeof out, "%012llx", (unsigned long long)(h >> 16));
	sqlite3_result_text(ctx, out, 12, SQLITE_TRANSIENT);
}

int findings_register_sql(sqlite3 *db)
{
	return sqlite3_create_function(db, "dbtap_gid", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				       gid_fn, NULL, NULL);
}

static const char fg_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS triage(group_id TEXT PRIMARY KEY, kind TEXT, principal TEXT,"
	" object TEXT, state TEXT NOT NULL, severity TEXT, last_seen TEXT, last_id INTEGER,"
	" by_user TEXT, at TEXT, note TEXT);"
	"CREATE TABLE IF NOT EXISTS triage_log(id INTEGER PRIMARY KEY, group_id TEXT, state TEXT,"
	" by_user TEXT, at TEXT, note TEXT);"
	"CREATE TABLE IF NOT EXISTS report_runs(id INTEGER PRIMARY KEY, at TEXT, since TEXT,"
	" until TEXT, formats TEXT);";

int findings_schema(sqlite3 *db, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(db, fg_schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "creating triage tables: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int has_column(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

static int has_table(sqlite3 *db, const char *table)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

char *findings_group_sql(const char *schema, int has_count, int has_last, int has_triage,
			 const char *where)
{
	char tri[64];
	snprintf(tri, sizeof tri, "%striage", schema);
	/* findings de-duplicated by repeat interval carry count and last_seen */
	return sqlite3_mprintf(
		"WITH f AS (SELECT " FG_ID " AS gid, kind, " FG_PRINCIPAL " AS principal, " FG_OBJECT
		" AS object, %s AS c, ts, %s AS last, severity, " FG_SEVRANK("severity")
		" AS rank, summary, sql, client_ip, id FROM %sfindings WHERE %s),"
		" g AS (SELECT gid, kind, principal, object, sum(c) AS count, min(ts) AS first,"
		" max(last) AS last, max(rank) AS rank, count(DISTINCT client_ip) AS clients,"
		" max(id) AS last_id FROM f GROUP BY gid),"
		" w AS (SELECT gid, severity, summary, sql FROM (SELECT gid, severity, summary, sql,"
		" row_number() OVER (PARTITION BY gid ORDER BY rank DESC, ts DESC) AS r FROM f)"
		" WHERE r = 1),"
		" t AS (SELECT * FROM %s)"
		" SELECT g.gid AS id, CASE WHEN t.state IS NULL THEN 'open'"
		" WHEN t.state IN ('acknowledged', 'false_positive') AND g.rank > "
		FG_SEVRANK("t.severity") " THEN 'open'"
		" WHEN t.state = 'resolved' AND g.last_id > t.last_id THEN 'open'"
		" ELSE t.state END AS state,"
		" coalesce(t.state IN ('acknowledged', 'false_positive') AND g.rank > "
		FG_SEVRANK("t.severity") " OR t.state = 'resolved' AND g.last_id > t.last_id, 0)"
		" AS reopened, w.severity AS severity, g.kind AS kind, g.principal AS principal,"
		" g.object AS object, g.count AS count, g.clients AS clients, g.first AS first,"
		" g.last AS last, g.last_id AS last_id, w.summary AS summary, w.sql AS sql,"
		" t.state AS triage_state, t.by_user AS triage_by, t.at AS triage_at,"
		" t.note AS triage_note FROM g JOIN w ON w.gid = g.gid LEFT JOIN t ON t.group_id = g.gid",
		has_count ? "coalesce(count, 1)" : "1", has_last ? "coalesce(last_seen, ts)" : "ts", schema,
		where && *where ? where : "1",
		has_triage ? tri
			   : "(SELECT NULL AS group_id, NULL AS state, NULL AS severity, NULL AS last_seen,"
			     " NULL AS last_id, NULL AS by_user, NULL AS at, NULL AS note WHERE 0)");
}

/* Prepare "SELECT <cols> FROM (the groups of the main database) <tail>" (see
 * findings_group_sql); NULL with a message naming path on failure. */
static sqlite3_stmt *group_query(sqlite3 *db, const char *path, const char *cols, const char *tail)
{
	char *sql = findings_group_sql("", has_column(db, "findings", "count"),
				       has_column(db, "findings", "last_seen"), has_table(db, "triage"),
				       NULL);
	char *full = sql ? sqlite3_mprintf("SELECT %s FROM (%s) %s", cols, sql, tail) : NULL;
	sqlite3_free(sql);
	sqlite3_stmt *st = NULL;
	int rc = full ? sqlite3_prepare_v2(db, full, -1, &st, NULL) : SQLITE_NOMEM;
	sqlite3_free(full);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "dbtap findings: %s: %s\n", path, sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

static const char fg_help[] =
	"usage: dbtap findings [-d DB] [--list] [--state open|acknowledged|false_positive|resolved]\n"
	"                      [--kind KIND] [--since ISO8601 | --last 24h] [--json]\n"
	"       dbtap findings [-d DB] (--ack|--fp|--resolve|--reopen) ID [--note TEXT] [--by NAME]\n"
	"List finding groups and triage them. A group is the findings of one kind, principal and\n"
	"object (shape or client); ID is the group id that --list prints. An acknowledged or\n"
	"false-positive group stays collapsed in the report until it gets worse (a higher\n"
	"severity); a resolved one reopens when it comes back.\n"
	"  -d, --db=DB           findings database (default ./dbtap.db)\n"
	"      --list            list the groups (the default)\n"
	"      --state=STATE     only groups in this state\n"
	"      --kind=KIND       only findings of this kind\n"
	"      --since=TIME      only groups seen since, ISO 8601\n"
	"      --last=DURATION   only groups seen in the last DURATION (24h, 7d)\n"
	"      --json            one JSON object per group\n"
	"      --ack=ID          acknowledge a group (seen, handled)\n"
	"      --fp=ID           mark a group a false positive\n"
	"      --resolve=ID      resolve a group (reopens when it comes back)\n"
	"      --reopen=ID       open a group again\n"
	"      --note=TEXT       with a triage change: why\n"
	"      --by=NAME         with a triage change: who (default $SUDO_USER or $USER)\n"
	"  -h, --help            this help\n"
	"Exit status: 0 success, 1 runtime failure (database, unknown group), 2 usage error.\n";

/* --help (msg NULL) on stdout, exit 0; a usage error: what is wrong and where the options
 * are listed, exit 2. */
static int fg_usage(const char *msg)
{
	if (!msg) {
		fputs(fg_help, stdout);
		return 0;
	}
	fprintf(stderr, "dbtap findings: %s (see: dbtap findings --help)\n", msg);
	return 2;
}

static void now_text(char *buf, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	sink_fmt_time((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, buf, n);
}

static int fg_list(sqlite3 *db, const char *path, const char *where, const char *state, int json)
{
	char *tail = sqlite3_mprintf("WHERE (?1 IS NULL OR state = ?1) AND id IN (SELECT " FG_ID
				     " FROM findings WHERE %s) ORDER BY " FG_SEVRANK("severity")
				     " DESC, count DESC, id", where && *where ? where : "1");
	sqlite3_stmt *st = tail ? group_query(db, path, "*", tail) : NULL;
	sqlite3_free(tail);
	if (!st)
		return 1;
	if (state)
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	struct jw w = { 0 };
	int rc, rows = 0;
	if (!json)
		jw_printf(&w, "%-12s %-14s %-8s %-22s %-16s %7s  %-19s  %s\n", "group", "state",
			  "severity", "kind", "principal", "count", "last", "summary");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		if (json) {
			cJSON *o = cJSON_CreateObject();
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const char *name = sqlite3_column_name(st, c);
				if (sqlite3_column_type(st, c) == SQLITE_NULL)
					cJSON_AddNullToObject(o, name);
				else if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
					cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, c));
				else {
					char *clean = u8_clean_dup((const char *)sqlite3_column_text(st, c));
					cJSON_AddStringToObject(o, name, clean ? clean : "");
					free(clean);
				}
			}
			char *s = cJSON_PrintUnformatted(o);
			if (s)
				jw_printf(&w, "%s\n", s);
			free(s);
			cJSON_Delete(o);
			continue;
		}
		const char *state_s = (const char *)sqlite3_column_text(st, 1);
		char state_b[40];
		snprintf(state_b, sizeof state_b, "%s%s", state_s ? state_s : "?",
			 sqlite3_column_int(st, 2) ? " (again)" : "");
		jw_printf(&w, "%-12s %-14s %-8s ", (const char *)sqlite3_column_text(st, 0), state_b,
			  (const char *)sqlite3_column_text(st, 3));
		jw_text_pad(&w, (const char *)sqlite3_column_text(st, 4), 22);
		jw_putc(&w, ' ');
		jw_text_pad(&w, (const char *)sqlite3_column_text(st, 5), 16);
		jw_printf(&w, " %7lld  %.19s  ", (long long)sqlite3_column_int64(st, 7),
			  (const char *)sqlite3_column_text(st, 10));
		jw_text(&w, (const char *)sqlite3_column_text(st, 12), 90); /* summary */
		jw_putc(&w, '\n');
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "dbtap findings: %s: %s\n", path, sqlite3_errmsg(db));
		jw_free(&w);
		return 1;
	}
	if (!json && !rows)
		jw_puts(&w, "no finding groups\n");
	fwrite(w.buf ? w.buf : "", 1, w.len, stdout);
	jw_free(&w);
	return 0;
}

/* Set a group's state: remember the severity and last finding time it had then, so
 * "worse" and "came back" can be told later. */
static int fg_set(sqlite3 *db, const char *path, const char *id, const char *state, const char *note,
		  const char *by)
{
	char err[256];
	if (findings_schema(db, err, sizeof err) < 0) {
		fprintf(stderr, "dbtap findings: %s: %s\n", path, err);
		return 1;
	}
	/* the group's state and its history change together */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "dbtap findings: %s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_stmt *st = group_query(db, path, "kind, principal, object, severity, last, last_id",
				       "WHERE id = ?1");
	if (!st) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		fprintf(stderr, "dbtap findings: %s: no finding group %s (see dbtap findings --list)\n",
			path, id);
		return 1;
	}
	char at[40];
	now_text(at, sizeof at);
	sqlite3_stmt *up;
	int rc = sqlite3_prepare_v2(db,
				    "INSERT INTO triage(group_id, kind, principal, object, state, severity,"
				    " last_seen, by_user, at, note, last_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
				    " ?8, ?9, ?10, ?11) ON CONFLICT(group_id) DO UPDATE SET state = ?5,"
				    " severity = ?6, last_seen = ?7, by_user = ?8, at = ?9, note = ?10,"
				    " last_id = ?11",
				    -1, &up, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(up, 1, id, -1, SQLITE_STATIC);
		/* kind principal object severity last last_id */
		static const int to[6] = { 2, 3, 4, 6, 7, 11 };
		for (int c = 0; c < 6; c++)
			sqlite3_bind_value(up, to[c], sqlite3_column_value(st, c));
		sqlite3_bind_text(up, 5, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(up, 8, by, -1, SQLITE_STATIC);
		sqlite3_bind_text(up, 9, at, -1, SQLITE_STATIC);
		if (note)
			sqlite3_bind_text(up, 10, note, -1, SQLITE_STATIC);
		rc = sqlite3_step(up) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(up);
	}
	sqlite3_finalize(st);
	/* the history row is the state row just written, in the same transaction */
	if (rc == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "INSERT INTO triage_log(group_id, state, by_user, at, note)"
				   " SELECT group_id, state, by_user, at, note FROM triage"
				   " WHERE group_id = ?1", -1, &up, NULL) == SQLITE_OK) {
		sqlite3_bind_text(up, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(up) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(up);
	}
	if (sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	if (rc != SQLITE_OK) {
		fprintf(stderr, "dbtap findings: %s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	printf("%s: %s by %s\n", id, state, by);
	return 0;
}

/* The option getopt_long refused: a short one by its letter (it may sit in a group). */
static const char *fg_bad_option(char **argv)
{
	static char s[3];
	if (optopt > 0 && optopt < 256) {
		s[0] = '-';
		s[1] = (char)optopt;
		return s;
	}
	return argv[optind - 1];
}

int findings_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },	    { "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },	    { "state", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },   { "since", required_argument, NULL, 'S' },
		{ "last", required_argument, NULL, 'L' },   { "ack", required_argument, NULL, 'a' },
		{ "fp", required_argument, NULL, 'f' },	    { "resolve", required_argument, NULL, 'r' },
		{ "reopen", required_argument, NULL, 'o' }, { "note", required_argument, NULL, 'n' },
		{ "by", required_argument, NULL, 'b' },	    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *db_path = "./dbtap.db", *state = NULL, *kind = NULL, *id = NULL, *set = NULL;
	const char *note = NULL, *by = NULL;
	int json = 0, c;
	int64_t since = 0, last = 0;
	char msg[300];
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db_path = optarg; break;
		case 'l': break;
		case 'j': json = 1; break;
		case 's':
			if (strcmp(optarg, "open") && strcmp(optarg, "acknowledged") &&
			    strcmp(optarg, "false_positive") && strcmp(optarg, "resolved"))
				return fg_usage("--state is open, acknowledged, false_positive or resolved");
			state = optarg;
			break;
		case 'k': kind = optarg; break;
		case 'S':
			if (report_parse_time(optarg, &since) < 0)
				return fg_usage("--since: not an ISO-8601 time");
			break;
		case 'L':
			if (report_parse_duration(optarg, &last) < 0)
				return fg_usage("--last: not a duration like 24h or 7d");
			break;
		case 'a': case 'f': case 'r': case 'o':
			if (set)
				return fg_usage("one of --ack, --fp, --resolve, --reopen at a time");
			id = optarg;
			set = c == 'a' ? "acknowledged" : c == 'f' ? "false_positive" : c == 'r' ? "resolved"
												     : "open";
			break;
		case 'n': note = optarg; break;
		case 'b': by = optarg; break;
		case 'h': return fg_usage(NULL);
		case ':':
			snprintf(msg, sizeof msg, "%.200s needs a value", argv[optind - 1]);
			return fg_usage(msg);
		default:
			snprintf(msg, sizeof msg, "unknown option '%.200s'", fg_bad_option(argv));
			return fg_usage(msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof msg, "unexpected argument '%.200s'", argv[optind]);
		return fg_usage(msg);
	}
	if (!by) {
		by = getenv("SUDO_USER");
		if (!by || !*by)
			by = getenv("USER");
		if (!by || !*by)
			by = "unknown";
	}
	sqlite3 *db;
	int flags = set ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (sqlite3_open_v2(db_path, &db, flags, NULL) != SQLITE_OK) {
		fprintf(stderr, "dbtap findings: %s: %s\n", db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	sqlite3_busy_timeout(db, 10000);
	findings_register_sql(db);
	if (!has_table(db, "findings")) {
		fprintf(stderr, "dbtap findings: %s: not a dbtap database (no findings table)\n", db_path);
		sqlite3_close(db);
		return 1;
	}
	int rc;
	if (set) {
		rc = fg_set(db, db_path, id, set, note, by);
	} else {
		char where[512] = "1", t[40];
		char *q;
		if (kind) {
			q = sqlite3_mprintf(" AND kind = %Q", kind);
			strncat(where, q, sizeof where - strlen(where) - 1);
			sqlite3_free(q);
		}
		if (since || last) {
			if (!since) {
				struct timespec now;
				clock_gettime(CLOCK_REALTIME, &now);
				since = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - last;
			}
			sink_fmt_time(since, t, sizeof t);
			q = sqlite3_mprintf(" AND ts >= %Q", t);
			strncat(where, q, sizeof where - strlen(where) - 1);
			sqlite3_free(q);
		}
		rc = fg_list(db, db_path, where, state, json);
	}
	sqlite3_close(db);
	return rc;
}
