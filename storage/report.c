/* `dbtap report` and `dbtap prune`: one or more findings databases are attached read-only
 * to an in-memory database, aggregated over the window with SQL, gathered into one JSON
 * document, and that document is rendered as JSON, text or self-contained HTML, so every
 * format shows the same numbers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
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
#include "sink.h"

#define RP_DEFAULT_WINDOW (24LL * 3600 * 1000000)
#define RP_TOP 15	   /* rows in top-N lists */
#define RP_LIST 50	   /* rows in finding lists */
#define RP_MAX_BUCKETS 800 /* chart columns before switching to a coarser bucket */
#define US_PER_S 1000000LL

struct rp {
	const struct report_opts *o;
	sqlite3 *db;
	char since[40], until[40]; /* window as stored text: since <= t < until */
	int have_window;
	int blen; /* bucket prefix length: 13 hour, 10 day, 7 month */
	char *err;
	size_t errlen;
};

static const char *const sev_names[] = {"critical", "high", "medium", "low", "info"};
#define N_SEV 5

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

/* ---- SQL helpers ---- */

static int rp_fail(struct rp *r, const char *path, const char *what)
{
	int code = sqlite3_errcode(r->db);
	const char *why = code == SQLITE_NOTADB ? "file is not a database" : sqlite3_errmsg(r->db);
	snprintf(r->err, r->errlen, "%s: %s: %s", path ? path : "report", what, why);
	return -1;
}

static int rp_prepare_tail(struct rp *r, const char *sql, int src, sqlite3_stmt **st,
			   const char **tail)
{
	if (sqlite3_prepare_v2(r->db, sql, -1, st, tail) != SQLITE_OK)
		return -1;
	if (!*st)
		return 0;
	int i;
	if ((i = sqlite3_bind_parameter_index(*st, ":since")))
		sqlite3_bind_text(*st, i, r->since, -1, SQLITE_STATIC);
	if ((i = sqlite3_bind_parameter_index(*st, ":until")))
		sqlite3_bind_text(*st, i, r->until, -1, SQLITE_STATIC);
	if ((i = sqlite3_bind_parameter_index(*st, ":src")))
		sqlite3_bind_int(*st, i, src);
	if ((i = sqlite3_bind_parameter_index(*st, ":blen")))
		sqlite3_bind_int(*st, i, r->blen);
	if ((i = sqlite3_bind_parameter_index(*st, ":top")))
		sqlite3_bind_int(*st, i, RP_TOP);
	if ((i = sqlite3_bind_parameter_index(*st, ":list")))
		sqlite3_bind_int(*st, i, RP_LIST);
	return 0;
}

static int rp_prepare(struct rp *r, const char *sql, int src, sqlite3_stmt **st)
{
	return rp_prepare_tail(r, sql, src, st, NULL);
}

/* Run a statement to completion (several ';'-separated statements allowed). */
static int rp_exec(struct rp *r, const char *sql, int src, const char *path)
{
	const char *tail = sql;
	while (tail && *tail) {
		sqlite3_stmt *st = NULL;
		const char *next = NULL;
		if (rp_prepare_tail(r, tail, src, &st, &next) < 0)
			return rp_fail(r, path, "query");
		if (!st) /* trailing whitespace */
			break;
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return rp_fail(r, path, "query");
		tail = next;
	}
	return 0;
}

static cJSON *rp_value(sqlite3_stmt *st, int c)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER: return cJSON_CreateNumber((double)sqlite3_column_int64(st, c));
	case SQLITE_FLOAT: return cJSON_CreateNumber(sqlite3_column_double(st, c));
	case SQLITE_NULL: return cJSON_CreateNull();
	default: {
		const char *t = (const char *)sqlite3_column_text(st, c);
		char *clean = u8_clean_dup(t ? t : "");
		cJSON *v = clean ? cJSON_CreateString(clean) : cJSON_CreateNull();
		free(clean);
		return v;
	}
	}
}

/* Rows of a query as an array of objects keyed by column name. */
static cJSON *rp_rows(struct rp *r, const char *sql)
{
	sqlite3_stmt *st;
	if (rp_prepare(r, sql, 0, &st) < 0) {
		rp_fail(r, NULL, "query");
		return NULL;
	}
	cJSON *arr = cJSON_CreateArray();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();
		for (int c = 0; c < sqlite3_column_count(st); c++)
			cJSON_AddItemToObject(o, sqlite3_column_name(st, c), rp_value(st, c));
		cJSON_AddItemToArray(arr, o);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rp_fail(r, NULL, "query");
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

/* The first row of a query as an object (columns -> values). */
static cJSON *rp_row(struct rp *r, const char *sql)
{
	cJSON *arr = rp_rows(r, sql);
	if (!arr)
		return NULL;
	cJSON *o = cJSON_DetachItemFromArray(arr, 0);
	cJSON_Delete(arr);
	return o ? o : cJSON_CreateObject();
}

/* ---- gathering ---- */

static const char rp_tables_sql[] =
	"CREATE TABLE r_runs(src, id, started_at, ended_at, source, packets, bytes, kernel_drops,"
	" sensor_drops, streams, version);"
	"CREATE TABLE a_sess(src, hour, protocol, db_user, login, tls, midstream, gapped, n,"
	" statements, errors, rows_returned);"
	"CREATE TABLE a_fail(src, client_ip, db_user, n, first, last, last_error);"
	"CREATE TABLE a_stmt(hour, end_user, verb, outcome, n);"
	"CREATE TABLE a_find(hour, kind, severity, db_user, end_user, n);"
	"CREATE TABLE a_misc(src, key, n);"
	"CREATE TABLE l_shapes(src, ts, db_user, application, end_user, fingerprint, sql,"
	" summary);"
	"CREATE TABLE l_top(src, ts, kind, severity, sevrank, db_user, end_user, client_ip,"
	" application, summary, sql);"
	"CREATE TABLE b(t TEXT PRIMARY KEY);";

#define RP_SEVRANK                                                                             \
	"CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3"         \
	" WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END"

/* Per database: aggregate the window into the in-memory tables (sums merge sensors). */
static const char rp_gather_sql[] =
	"INSERT INTO r_runs SELECT :src, id, started_at, ended_at, source, packets, bytes,"
	" kernel_drops, sensor_drops, streams, version FROM src.runs"
	" WHERE (started_at < :until AND coalesce(ended_at, '9999') >= :since)"
	" OR id IN (SELECT run_id FROM src.sessions WHERE started_at >= :since"
	" AND started_at < :until);"
	"INSERT INTO a_sess SELECT :src, substr(started_at, 1, 13), protocol, db_user, login,"
	" tls, midstream, coalesce(gaps, 0) > 0, count(*), sum(statements), sum(errors),"
	" sum(rows_returned) FROM src.sessions WHERE started_at >= :since AND started_at < :until"
	" GROUP BY 2, 3, 4, 5, 6, 7, 8;"
	"INSERT INTO a_fail SELECT :src, client_ip, db_user, count(*), min(started_at),"
	" max(started_at), max(login_error) FROM src.sessions WHERE login = 'failed'"
	" AND started_at >= :since AND started_at < :until GROUP BY client_ip, db_user;"
	"INSERT INTO a_stmt SELECT substr(ts, 1, 13), end_user, verb, outcome, count(*)"
	" FROM src.statements WHERE ts >= :since AND ts < :until GROUP BY 1, 2, 3, 4;"
	"INSERT INTO a_find SELECT substr(ts, 1, 13), kind, severity, db_user, end_user, count(*)"
	" FROM src.findings WHERE ts >= :since AND ts < :until GROUP BY 1, 2, 3, 4, 5;"
	"INSERT INTO a_misc SELECT :src, 'anomaly_sessions', count(DISTINCT session_id)"
	" FROM src.findings WHERE kind = 'protocol_anomaly' AND ts >= :since AND ts < :until;"
	"INSERT INTO l_shapes SELECT :src, ts, db_user, application, end_user, fingerprint, sql,"
	" summary FROM src.findings WHERE kind = 'new_query_shape' AND ts >= :since"
	" AND ts < :until ORDER BY ts DESC LIMIT :list;"
	"INSERT INTO l_top SELECT :src, ts, kind, severity, " RP_SEVRANK ", db_user, end_user,"
	" client_ip, application, summary, sql FROM src.findings WHERE ts >= :since"
	" AND ts < :until ORDER BY 5 DESC, ts DESC LIMIT :list;";

/* URI for ATTACH with mode=ro: percent-encode anything that could end the path. */
static char *rp_uri(const char *path)
{
	size_t n = strlen(path);
	char *u = malloc(n * 3 + 32);
	if (!u)
		return NULL;
	char *o = u + sprintf(u, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p == '?' || *p == '#' || *p == '%' || *p < 0x21 || *p >= 0x7f)
			o += sprintf(o, "%%%02X", *p);
		else
			*o++ = (char)*p;
	}
	sprintf(o, "?mode=ro");
	return u;
}

static int rp_attach(struct rp *r, const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		snprintf(r->err, r->errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(r->err, r->errlen, "%s: not a regular file", path);
		return -1;
	}
	char *uri = rp_uri(path);
	sqlite3_stmt *st;
	if (!uri || sqlite3_prepare_v2(r->db, "ATTACH ?1 AS src", -1, &st, NULL) != SQLITE_OK) {
		free(uri);
		return rp_fail(r, path, "attach");
	}
	sqlite3_bind_text(st, 1, uri, -1, SQLITE_TRANSIENT);
	free(uri);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rp_fail(r, path, "open");
	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table'"
				      " AND name IN ('runs', 'sessions', 'statements', 'findings')",
			       -1, &st, NULL) != SQLITE_OK) {
		rp_fail(r, path, "reading schema");
		sqlite3_exec(r->db, "DETACH src", NULL, NULL, NULL);
		return -1;
	}
	rc = sqlite3_step(st);
	int n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (n != 4) {
		if (n < 0)
			rp_fail(r, path, "reading schema");
		else
			snprintf(r->err, r->errlen, "%s: not a dbtap database (tables missing)", path);
		sqlite3_exec(r->db, "DETACH src", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static void rp_detach(struct rp *r)
{
	sqlite3_exec(r->db, "DETACH src", NULL, NULL, NULL);
}

/* Newest and oldest packet time in the attached database as text ("" when empty). */
static int rp_newest(struct rp *r, const char *path, char *out, size_t outlen, char *old,
		     size_t oldlen)
{
	sqlite3_stmt *st;
	const char *sql = "SELECT max(t), min(o) FROM (SELECT max(ts) AS t, min(ts) AS o"
			  " FROM src.statements UNION ALL SELECT max(ts), min(ts) FROM src.findings"
			  " UNION ALL SELECT max(started_at), min(started_at) FROM src.sessions)";
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return rp_fail(r, path, "query");
	int rc = sqlite3_step(st);
	const char *t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	snprintf(out, outlen, "%s", t ? t : "");
	t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 1) : NULL;
	snprintf(old, oldlen, "%s", t ? t : "");
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rp_fail(r, path, "query");
	return 0;
}

/* Chart buckets covering the window (hours, days or months). */
static int rp_buckets(struct rp *r, int64_t since, int64_t until)
{
	int64_t span = until - since;
	int64_t step = 3600 * US_PER_S;
	r->blen = 13;
	if (span > 72 * 3600 * US_PER_S) {
		r->blen = 10;
		step = 86400 * US_PER_S;
	}
	if (span / step > RP_MAX_BUCKETS) {
		r->blen = 7;
		step = 86400 * US_PER_S;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO b VALUES(?1)", -1, &st, NULL) !=
	    SQLITE_OK)
		return rp_fail(r, NULL, "buckets");
	char buf[40];
	/* walk from the bucket containing since; the last bucket contains until - 1 */
	for (int64_t t = since;; t += step) {
		if (t >= until)
			t = until - 1;
		sink_fmt_time(t, buf, sizeof(buf));
		sqlite3_bind_text(st, 1, buf, r->blen, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_reset(st);
		if (t == until - 1)
			break;
	}
	sqlite3_finalize(st);
	return 0;
}

static void rp_add(cJSON *o, const char *key, cJSON *v)
{
	if (v)
		cJSON_AddItemToObject(o, key, v);
}

static double rp_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *rp_strv(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int rp_gather(struct rp *r, cJSON *root)
{
	const struct report_opts *o = r->o;
	char newest[40] = "", oldest[40] = "";
	cJSON *dbs = cJSON_AddArrayToObject(root, "databases");
	/* pass 1: check every database and find the newest packet time */
	for (int i = 0; i < o->n_dbs; i++) {
		char t[40], old[40];
		if (rp_attach(r, o->dbs[i]) < 0)
			return -1;
		int rc = rp_newest(r, o->dbs[i], t, sizeof(t), old, sizeof(old));
		rp_detach(r);
		if (rc < 0)
			return -1;
		if (strcmp(t, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", t);
		if (old[0] && (!oldest[0] || strcmp(old, oldest) < 0))
			snprintf(oldest, sizeof(oldest), "%s", old);
		cJSON *d = cJSON_CreateObject();
		char *clean = u8_clean_dup(o->dbs[i]);
		cJSON_AddStringToObject(d, "path", clean ? clean : "?");
		free(clean);
		if (t[0])
			cJSON_AddStringToObject(d, "newest", t);
		else
			cJSON_AddNullToObject(d, "newest");
		cJSON_AddItemToArray(dbs, d);
	}

	int64_t newest_us = 0, since, until;
	if (newest[0] && report_parse_time(newest, &newest_us) < 0)
		newest_us = 0;
	cJSON *win = cJSON_AddObjectToObject(root, "window");
	if (newest[0])
		cJSON_AddStringToObject(win, "newest_packet", newest);
	else
		cJSON_AddNullToObject(win, "newest_packet");
	if (o->since_set || o->since_us) {
		since = o->since_us;
		until = newest_us + 1 > since ? newest_us + 1 : since + 1;
	} else {
		until = newest_us ? newest_us + 1 : 1;
		since = until - (o->last_us ? o->last_us : RP_DEFAULT_WINDOW);
	}
	r->have_window = newest[0] != 0;
	sink_fmt_time(since, r->since, sizeof(r->since));
	sink_fmt_time(until, r->until, sizeof(r->until));
	cJSON_AddStringToObject(win, "since", r->since);
	cJSON_AddStringToObject(win, "until", r->until);
	/* charts start at the oldest data when the window reaches further back */
	int64_t oldest_us = 0, chart_from = since;
	if (oldest[0] && report_parse_time(oldest, &oldest_us) == 0 && oldest_us > since &&
	    oldest_us < until)
		chart_from = oldest_us;
	if (rp_buckets(r, chart_from, until) < 0)
		return -1;
	cJSON_AddStringToObject(win, "bucket", r->blen == 13 ? "hour" : r->blen == 10 ? "day"
										   : "month");

	/* pass 2: aggregate */
	for (int i = 0; i < o->n_dbs; i++) {
		if (rp_attach(r, o->dbs[i]) < 0)
			return -1;
		int rc = rp_exec(r, rp_gather_sql, i, o->dbs[i]);
		rp_detach(r);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Final numbers from the aggregate tables, as the JSON document. */
static int rp_compute(struct rp *r, cJSON *root)
{
	cJSON *v;
#define Q_ROW(key, sql)                                                                        \
	do {                                                                                   \
		if (!(v = rp_row(r, sql)))                                                     \
			return -1;                                                             \
		rp_add(root, key, v);                                                          \
	} while (0)
#define Q_ROWS(obj, key, sql)                                                                  \
	do {                                                                                   \
		if (!(v = rp_rows(r, sql)))                                                    \
			return -1;                                                             \
		rp_add(obj, key, v);                                                           \
	} while (0)

	Q_ROW("capture", "SELECT count(*) AS runs, coalesce(sum(packets), 0) AS packets,"
			 " coalesce(sum(bytes), 0) AS bytes,"
			 " coalesce(sum(kernel_drops), 0) AS kernel_drops,"
			 " coalesce(sum(sensor_drops), 0) AS sensor_drops,"
			 " coalesce(sum(streams), 0) AS streams,"
			 " group_concat(DISTINCT source) AS sources FROM r_runs");
	Q_ROW("sessions", "SELECT coalesce(sum(n), 0) AS total,"
			  " coalesce(sum(CASE WHEN login = 'ok' THEN n END), 0) AS login_ok,"
			  " coalesce(sum(CASE WHEN login = 'failed' THEN n END), 0) AS login_failed,"
			  " coalesce(sum(CASE WHEN login IS NOT 'ok' AND login IS NOT 'failed'"
			  " THEN n END), 0) AS login_unknown,"
			  " coalesce(sum(statements), 0) AS statements_observed,"
			  " coalesce(sum(errors), 0) AS errors_observed,"
			  " coalesce(sum(rows_returned), 0) AS rows_returned FROM a_sess");
	cJSON *sess = cJSON_GetObjectItemCaseSensitive(root, "sessions");
	Q_ROWS(sess, "by_protocol", "SELECT protocol, sum(n) AS sessions FROM a_sess"
				    " GROUP BY protocol ORDER BY 2 DESC");
	Q_ROW("statements", "SELECT coalesce(sum(n), 0) AS stored,"
			    " coalesce(sum(CASE WHEN outcome = 'error' THEN n END), 0) AS errors"
			    " FROM a_stmt");
	cJSON *stm = cJSON_GetObjectItemCaseSensitive(root, "statements");
	Q_ROWS(stm, "by_verb", "SELECT verb, sum(n) AS statements FROM a_stmt GROUP BY verb"
			       " ORDER BY 2 DESC, 1 LIMIT :top");

	Q_ROW("findings", "SELECT coalesce(sum(n), 0) AS total,"
			  " coalesce(sum(CASE WHEN severity = 'critical' THEN n END), 0) AS critical,"
			  " coalesce(sum(CASE WHEN severity = 'high' THEN n END), 0) AS high,"
			  " coalesce(sum(CASE WHEN severity = 'medium' THEN n END), 0) AS medium,"
			  " coalesce(sum(CASE WHEN severity = 'low' THEN n END), 0) AS low,"
			  " coalesce(sum(CASE WHEN severity = 'info' THEN n END), 0) AS info"
			  " FROM a_find");
	cJSON *fnd = cJSON_GetObjectItemCaseSensitive(root, "findings");
#define SEV_COLS                                                                               \
	" coalesce(sum(CASE WHEN f.severity = 'critical' THEN f.n END), 0) AS critical,"       \
	" coalesce(sum(CASE WHEN f.severity = 'high' THEN f.n END), 0) AS high,"               \
	" coalesce(sum(CASE WHEN f.severity = 'medium' THEN f.n END), 0) AS medium,"           \
	" coalesce(sum(CASE WHEN f.severity = 'low' THEN f.n END), 0) AS low,"                 \
	" coalesce(sum(CASE WHEN f.severity = 'info' THEN f.n END), 0) AS info"
	Q_ROWS(fnd, "by_kind", "SELECT f.kind AS kind, sum(f.n) AS total," SEV_COLS
			       " FROM a_find f GROUP BY f.kind ORDER BY 2 DESC, 1");
	Q_ROWS(fnd, "timeline", "SELECT b.t AS t, coalesce(sum(f.n), 0) AS total," SEV_COLS
				" FROM b LEFT JOIN a_find f ON substr(f.hour, 1, :blen) = b.t"
				" GROUP BY b.t ORDER BY b.t");
	Q_ROWS(fnd, "most_severe", "SELECT ts, kind, severity, db_user, end_user, client_ip,"
				   " application, summary, sql FROM l_top"
				   " ORDER BY sevrank DESC, ts DESC LIMIT :list");

	Q_ROWS(root, "activity",
	       "SELECT b.t AS t,"
	       " coalesce((SELECT sum(n) FROM a_stmt WHERE substr(hour, 1, :blen) = b.t), 0)"
	       " AS statements,"
	       " coalesce((SELECT sum(n) FROM a_sess WHERE substr(hour, 1, :blen) = b.t), 0)"
	       " AS sessions,"
	       " coalesce((SELECT sum(n) FROM a_find WHERE substr(hour, 1, :blen) = b.t), 0)"
	       " AS findings FROM b ORDER BY b.t");

	Q_ROWS(root, "top_db_users",
	       "WITH s AS (SELECT db_user, sum(n) AS sessions, sum(statements) AS statements,"
	       " sum(errors) AS errors, sum(CASE WHEN login = 'failed' THEN n ELSE 0 END)"
	       " AS failed_logins FROM a_sess GROUP BY db_user),"
	       " f AS (SELECT db_user, sum(n) AS findings FROM a_find GROUP BY db_user),"
	       " u AS (SELECT db_user FROM s UNION SELECT db_user FROM f)"
	       " SELECT u.db_user AS db_user, coalesce(s.sessions, 0) AS sessions,"
	       " coalesce(s.statements, 0) AS statements, coalesce(s.errors, 0) AS errors,"
	       " coalesce(s.failed_logins, 0) AS failed_logins,"
	       " coalesce(f.findings, 0) AS findings FROM u"
	       " LEFT JOIN s ON s.db_user IS u.db_user LEFT JOIN f ON f.db_user IS u.db_user"
	       " ORDER BY 3 DESC, 2 DESC, 6 DESC, 1 LIMIT :top");
	Q_ROWS(root, "top_end_users",
	       "WITH s AS (SELECT end_user, sum(n) AS statements,"
	       " sum(CASE WHEN outcome = 'error' THEN n ELSE 0 END) AS errors FROM a_stmt"
	       " WHERE end_user IS NOT NULL GROUP BY end_user),"
	       " f AS (SELECT end_user, sum(n) AS findings FROM a_find WHERE end_user IS NOT NULL"
	       " GROUP BY end_user),"
	       " u AS (SELECT end_user FROM s UNION SELECT end_user FROM f)"
	       " SELECT u.end_user AS end_user, coalesce(s.statements, 0) AS statements,"
	       " coalesce(s.errors, 0) AS errors, coalesce(f.findings, 0) AS findings FROM u"
	       " LEFT JOIN s ON s.end_user = u.end_user LEFT JOIN f ON f.end_user = u.end_user"
	       " ORDER BY 2 DESC, 4 DESC, 1 LIMIT :top");

	Q_ROW("new_shapes", "SELECT coalesce(sum(n), 0) AS total FROM a_find"
			    " WHERE kind = 'new_query_shape'");
	Q_ROWS(cJSON_GetObjectItemCaseSensitive(root, "new_shapes"), "items",
	       "SELECT ts, db_user, application, end_user, fingerprint, sql, summary"
	       " FROM l_shapes ORDER BY ts DESC LIMIT :list");

	Q_ROW("failed_logins", "SELECT coalesce(sum(n), 0) AS total,"
			       " count(DISTINCT client_ip) AS clients FROM a_fail");
	Q_ROWS(cJSON_GetObjectItemCaseSensitive(root, "failed_logins"), "by_client",
	       "SELECT client_ip, db_user, coalesce(client_ip, '?') || ' / '"
	       " || coalesce(db_user, '?') AS label, sum(n) AS count, min(first) AS first,"
	       " max(last) AS last, max(last_error) AS error FROM a_fail"
	       " GROUP BY client_ip, db_user ORDER BY count DESC, client_ip, db_user LIMIT :top");

	Q_ROW("blind_spots",
	      "SELECT coalesce(sum(n), 0) AS sessions,"
	      " coalesce(sum(CASE WHEN tls THEN n END), 0) AS tls,"
	      " coalesce(sum(CASE WHEN midstream THEN n END), 0) AS midstream,"
	      " coalesce(sum(CASE WHEN gapped THEN n END), 0) AS with_gaps,"
	      " (SELECT coalesce(sum(n), 0) FROM a_misc WHERE key = 'anomaly_sessions')"
	      " AS undecodable,"
	      " (SELECT coalesce(sum(packets), 0) FROM r_runs) AS packets,"
	      " (SELECT coalesce(sum(kernel_drops), 0) FROM r_runs) AS kernel_drops,"
	      " (SELECT coalesce(sum(sensor_drops), 0) FROM r_runs) AS sensor_drops FROM a_sess");
	cJSON *bs = cJSON_GetObjectItemCaseSensitive(root, "blind_spots");
	double ns = rp_num(bs, "sessions");
	static const char *const shares[][2] = {{"tls", "tls_share"},
						 {"midstream", "midstream_share"},
						 {"with_gaps", "gaps_share"},
						 {"undecodable", "undecodable_share"}};
	for (size_t i = 0; i < sizeof(shares) / sizeof(shares[0]); i++)
		cJSON_AddNumberToObject(bs, shares[i][1], ns > 0 ? rp_num(bs, shares[i][0]) / ns : 0);
	double pk = rp_num(bs, "packets"), dr = rp_num(bs, "kernel_drops") + rp_num(bs, "sensor_drops");
	cJSON_AddNumberToObject(bs, "drop_share", pk + dr > 0 ? dr / (pk + dr) : 0);
	return 0;
#undef Q_ROW
#undef Q_ROWS
}

/* ---- rendering: text ---- */

static const char *rp_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

static void tx_pad(struct jw *w, const char *s, size_t width)
{
	size_t start = w->len;
	jw_text(w, s, width);
	/* count code points written to pad to width */
	size_t cols = 0;
	for (size_t i = start; i < w->len; i++)
		if (((unsigned char)w->buf[i] & 0xc0) != 0x80)
			cols++;
	for (; cols < width; cols++)
		jw_putc(w, ' ');
}

static void tx_bar(struct jw *w, double v, double max, int width)
{
	int n = max > 0 ? (int)(v / max * width + 0.5) : 0;
	if (v > 0 && n == 0)
		n = 1;
	for (int i = 0; i < width; i++)
		jw_putc(w, i < n ? '#' : ' ');
}

#define NUM(o, k) ((long long)rp_num(o, k))

/* The report document's sections, looked up once for either renderer. */
struct rp_parts {
	const cJSON *win, *cap, *ses, *stm, *fnd, *bs, *fl, *ns;
};

static struct rp_parts rp_parts_of(const cJSON *root)
{
	struct rp_parts d = {
		cJSON_GetObjectItemCaseSensitive(root, "window"),
		cJSON_GetObjectItemCaseSensitive(root, "capture"),
		cJSON_GetObjectItemCaseSensitive(root, "sessions"),
		cJSON_GetObjectItemCaseSensitive(root, "statements"),
		cJSON_GetObjectItemCaseSensitive(root, "findings"),
		cJSON_GetObjectItemCaseSensitive(root, "blind_spots"),
		cJSON_GetObjectItemCaseSensitive(root, "failed_logins"),
		cJSON_GetObjectItemCaseSensitive(root, "new_shapes"),
	};
	return d;
}

static void rp_text(const cJSON *root, struct jw *w)
{
	const struct rp_parts d = rp_parts_of(root);
	const cJSON *win = d.win, *cap = d.cap, *ses = d.ses, *stm = d.stm, *fnd = d.fnd, *bs = d.bs,
		    *fl = d.fl, *ns = d.ns;
	const cJSON *it;

	jw_printf(w, "dbtap report (packet time)\n  window   %s .. %s\n", rp_strv(win, "since"),
		  rp_strv(win, "until"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "databases"))
	{
		jw_puts(w, "  database ");
		jw_text(w, rp_strv(it, "path"), 0);
		jw_printf(w, " (newest %s)\n", rp_or(rp_strv(it, "newest"), "empty"));
	}
	jw_printf(w, "  capture  %lld runs, %lld packets, %lld kernel drops, %lld sensor drops\n\n",
		  NUM(cap, "runs"), NUM(cap, "packets"), NUM(cap, "kernel_drops"),
		  NUM(cap, "sensor_drops"));

	jw_puts(w, "SUMMARY\n");
	jw_printf(w, "  sessions          %lld (login ok %lld, failed %lld, unknown %lld)\n",
		  NUM(ses, "total"), NUM(ses, "login_ok"), NUM(ses, "login_failed"),
		  NUM(ses, "login_unknown"));
	jw_printf(w, "  statements        %lld stored, %lld errors; %lld observed in sessions\n",
		  NUM(stm, "stored"), NUM(stm, "errors"), NUM(ses, "statements_observed"));
	jw_printf(w, "  findings          %lld (critical %lld, high %lld, medium %lld, low %lld,"
		     " info %lld)\n\n",
		  NUM(fnd, "total"), NUM(fnd, "critical"), NUM(fnd, "high"), NUM(fnd, "medium"),
		  NUM(fnd, "low"), NUM(fnd, "info"));

	jw_puts(w, "FINDINGS BY KIND\n  kind                    total  crit  high   med   low  info\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "by_kind"))
	{
		jw_puts(w, "  ");
		tx_pad(w, rp_or(rp_strv(it, "kind"), "(none)"), 22);
		jw_printf(w, "%7lld %5lld %5lld %5lld %5lld %5lld\n", NUM(it, "total"),
			  NUM(it, "critical"), NUM(it, "high"), NUM(it, "medium"), NUM(it, "low"),
			  NUM(it, "info"));
	}
	jw_puts(w, "\nMOST SEVERE FINDINGS\n");
	int k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "most_severe"))
	{
		if (k++ >= 20)
			break;
		jw_printf(w, "  %.19s  ", rp_or(rp_strv(it, "ts"), "-"));
		tx_pad(w, rp_strv(it, "severity"), 8);
		jw_putc(w, ' ');
		tx_pad(w, rp_strv(it, "kind"), 21);
		jw_putc(w, ' ');
		jw_text(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"),
			24);
		jw_puts(w, "@");
		jw_text(w, rp_strv(it, "client_ip"), 40);
		jw_puts(w, "\n      ");
		jw_text(w, rp_strv(it, "summary"), 100);
		jw_putc(w, '\n');
	}
	if (!k)
		jw_puts(w, "  none\n");

	jw_printf(w, "\nACTIVITY PER %s\n  %-13s %10s %8s %8s\n",
		  strcmp(rp_or(rp_strv(win, "bucket"), "hour"), "hour") ? "DAY" : "HOUR", "time",
		  "statements", "sessions", "findings");
	double amax = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "activity"))
	{
		if (rp_num(it, "statements") > amax)
			amax = rp_num(it, "statements");
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "activity"))
	{
		jw_printf(w, "  %-13s %10lld %8lld %8lld  ", rp_or(rp_strv(it, "t"), ""),
			  NUM(it, "statements"), NUM(it, "sessions"), NUM(it, "findings"));
		tx_bar(w, rp_num(it, "statements"), amax, 30);
		while (w->len && w->buf[w->len - 1] == ' ')
			w->buf[--w->len] = 0;
		jw_putc(w, '\n');
	}

	jw_puts(w, "\nTOP DATABASE USERS\n  db_user                 sessions statements   errors"
		   " failed findings\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"))
	{
		jw_puts(w, "  ");
		tx_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 22);
		jw_printf(w, " %9lld %10lld %8lld %6lld %8lld\n", NUM(it, "sessions"),
			  NUM(it, "statements"), NUM(it, "errors"), NUM(it, "failed_logins"),
			  NUM(it, "findings"));
	}
	jw_puts(w, "\nTOP END USERS\n  end_user                statements   errors findings\n");
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_end_users"))
	{
		k++;
		jw_puts(w, "  ");
		tx_pad(w, rp_strv(it, "end_user"), 22);
		jw_printf(w, " %10lld %8lld %8lld\n", NUM(it, "statements"), NUM(it, "errors"),
			  NUM(it, "findings"));
	}
	if (!k)
		jw_puts(w, "  none attributed\n");

	jw_printf(w, "\nFAILED LOGINS: %lld from %lld clients\n", NUM(fl, "total"),
		  NUM(fl, "clients"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fl, "by_client"))
	{
		jw_puts(w, "  ");
		tx_pad(w, rp_strv(it, "client_ip"), 24);
		jw_putc(w, ' ');
		tx_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 18);
		jw_printf(w, " %6lld  last %.19s  ", NUM(it, "count"), rp_or(rp_strv(it, "last"), "-"));
		jw_text(w, rp_strv(it, "error"), 60);
		jw_putc(w, '\n');
	}

	jw_printf(w, "\nNEW QUERY SHAPES: %lld\n", NUM(ns, "total"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ns, "items"))
	{
		jw_printf(w, "  %.19s  ", rp_or(rp_strv(it, "ts"), "-"));
		tx_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 16);
		jw_putc(w, ' ');
		jw_text(w, rp_strv(it, "sql"), 90);
		jw_putc(w, '\n');
	}

	jw_puts(w, "\nBLIND SPOTS (what dbtap could not see)\n");
	jw_printf(w, "  TLS sessions          %lld of %lld (%.1f%%)\n", NUM(bs, "tls"),
		  NUM(bs, "sessions"), 100 * rp_num(bs, "tls_share"));
	jw_printf(w, "  picked up mid-stream  %lld (%.1f%%)\n", NUM(bs, "midstream"),
		  100 * rp_num(bs, "midstream_share"));
	jw_printf(w, "  with capture gaps     %lld (%.1f%%)\n", NUM(bs, "with_gaps"),
		  100 * rp_num(bs, "gaps_share"));
	jw_printf(w, "  undecodable traffic   %lld (%.1f%%)\n", NUM(bs, "undecodable"),
		  100 * rp_num(bs, "undecodable_share"));
	jw_printf(w, "  packets dropped       %lld kernel + %lld sensor of %lld (%.3f%%)\n",
		  NUM(bs, "kernel_drops"), NUM(bs, "sensor_drops"), NUM(bs, "packets"),
		  100 * rp_num(bs, "drop_share"));
}

/* ---- rendering: HTML with inline SVG ---- */

static const char *const sev_colors[] = {"#b71c1c", "#ef6c00", "#f9a825", "#1e88e5", "#90a4ae"};

static void ht_label(struct jw *w, const char *s, size_t max)
{
	/* truncate by code points, then escape */
	struct jw t = {0};
	jw_text(&t, s ? s : "(unknown)", max);
	jw_html(w, t.buf ? t.buf : "");
	jw_free(&t);
}

/* An axis maximum divisible into 4 round steps (1, 2, 5 x 10^k each). */
static double nice_max(double v)
{
	if (v <= 0)
		return 4;
	double q = v / 4, p = 1;
	while (p * 10 <= q)
		p *= 10;
	double step = q <= p ? p : q <= 2 * p ? 2 * p : q <= 5 * p ? 5 * p : 10 * p;
	if (step < 1)
		step = 1;
	return 4 * step;
}

/* A stored time as "2026-11-27 09:15:02" for tables. */
static void ht_time(struct jw *w, const char *ts)
{
	char b[20];
	snprintf(b, sizeof(b), "%.19s", ts ? ts : "");
	if (b[0] && b[10] == 'T')
		b[10] = ' ';
	jw_puts(w, "<td class=\"t\">");
	jw_html(w, b);
	jw_puts(w, "</td>");
}

/* Columns over time, stacked by the named series. */
static void svg_columns(struct jw *w, const cJSON *rows, const char *const *series,
			const char *const *colors, int nser, const char *title)
{
	int n = cJSON_GetArraySize(rows);
	const int W = 920, H = 240, L = 56, R = 10, T = 28, B = 40;
	double max = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, rows)
	{
		double s = 0;
		for (int k = 0; k < nser; k++)
			s += rp_num(it, series[k]);
		if (s > max)
			max = s;
	}
	max = nice_max(max);
	jw_printf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
		     " viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
	jw_html(w, title);
	jw_puts(w, "</title>");
	int pw = W - L - R, ph = H - T - B;
	for (int g = 0; g <= 4; g++) {
		double y = T + ph - ph * g / 4.0;
		jw_printf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
			     "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%.0f</text>",
			  L, y, W - R, y, L - 6, y + 4, max * g / 4);
	}
	double bw = n ? (double)pw / n : pw;
	int every = n > 24 ? (n + 23) / 24 : 1;
	int i = 0;
	cJSON_ArrayForEach(it, rows)
	{
		double x = L + i * bw, y = T + ph;
		for (int k = 0; k < nser; k++) {
			double v = rp_num(it, series[k]);
			if (v <= 0)
				continue;
			double h = ph * v / max;
			y -= h;
			jw_printf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
				     " fill=\"%s\"><title>",
				  x + bw * 0.1, y, bw * 0.8, h, colors[k]);
			jw_html(w, rp_strv(it, "t"));
			jw_printf(w, " %s: %.0f</title></rect>", series[k], v);
		}
		if (i % every == 0) {
			const char *t = rp_or(rp_strv(it, "t"), "");
			size_t tl = strlen(t);
			/* hours show as "09h", days as "11-27", months as is */
			const char *lab = tl == 13 ? t + 11 : tl == 10 ? t + 5 : t;
			jw_printf(w, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">",
				  x + bw / 2, T + ph + 16);
			jw_html(w, lab);
			jw_puts(w, tl == 13 ? "h</text>" : "</text>");
		}
		i++;
	}
	if (n) {
		/* first and last bucket spelled out under the axis */
		jw_printf(w, "<text x=\"%d\" y=\"%d\" class=\"ax\">", L, H - 6);
		jw_html(w, rp_strv(cJSON_GetArrayItem(rows, 0), "t"));
		jw_printf(w, "</text><text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">",
			  W - R, H - 6);
		jw_html(w, rp_strv(cJSON_GetArrayItem(rows, n - 1), "t"));
		jw_puts(w, "</text>");
	}
	int lx = L;
	for (int k = 0; k < nser && nser > 1; k++) {
		jw_printf(w, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			     "<text x=\"%d\" y=\"17\" class=\"ax\">%s</text>",
			  lx, colors[k], lx + 14, series[k]);
		lx += 14 + 8 * (int)strlen(series[k]) + 16;
	}
	jw_puts(w, "</svg>\n");
}

/* Horizontal bars, stacked by series, one row per item labelled by label_key. */
static void svg_hbars(struct jw *w, const cJSON *rows, const char *label_key,
		      const char *const *series, const char *const *colors, int nser,
		      const char *title, int percent)
{
	int n = cJSON_GetArraySize(rows);
	if (!n) {
		jw_puts(w, "<p class=\"none\">none</p>\n");
		return;
	}
	const int W = 920, L = 230, R = 90, row = 22;
	int T = nser > 1 ? 26 : 6;
	int H = T + n * row + 8;
	double max = percent ? 1 : 0;
	const cJSON *it;
	if (!percent) {
		cJSON_ArrayForEach(it, rows)
		{
			double s = 0;
			for (int k = 0; k < nser; k++)
				s += rp_num(it, series[k]);
			if (s > max)
				max = s;
		}
	}
	if (max <= 0)
		max = 1;
	jw_printf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
		     " viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
	jw_html(w, title);
	jw_puts(w, "</title>");
	int i = 0, pw = W - L - R, lx = L;
	for (int k = 0; k < nser && nser > 1; k++) {
		jw_printf(w, "<rect x=\"%d\" y=\"6\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			     "<text x=\"%d\" y=\"15\" class=\"ax\">%s</text>",
			  lx, colors[k], lx + 14, series[k]);
		lx += 14 + 8 * (int)strlen(series[k]) + 16;
	}
	cJSON_ArrayForEach(it, rows)
	{
		double y = T + i * row, x = L, total = 0;
		jw_printf(w, "<text x=\"%d\" y=\"%.1f\" class=\"lb\" text-anchor=\"end\">", L - 8,
			  y + 15);
		ht_label(w, rp_strv(it, label_key), 30);
		jw_puts(w, "</text>");
		if (percent)
			jw_printf(w, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"16\""
				     " class=\"track\"/>", L, y + 3, pw);
		for (int k = 0; k < nser; k++) {
			double v = rp_num(it, series[k]);
			total += v;
			if (v <= 0)
				continue;
			double bw = pw * v / max;
			if (bw < 1)
				bw = 1;
			jw_printf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\""
				     " fill=\"%s\"><title>%s: %.0f</title></rect>",
				  x, y + 3, bw, colors[k], series[k], v);
			x += bw;
		}
		if (percent)
			jw_printf(w, "<text x=\"%d\" y=\"%.1f\" class=\"lb\">%.1f%%</text>",
				  W - R + 6, y + 15, total * 100);
		else
			jw_printf(w, "<text x=\"%.1f\" y=\"%.1f\" class=\"lb\">%.0f</text>", x + 6,
				  y + 15, total);
		i++;
	}
	jw_puts(w, "</svg>\n");
}

static void ht_num(struct jw *w, const cJSON *o, const char *key)
{
	jw_printf(w, "<td class=\"n\">%lld</td>", NUM(o, key));
}

static void ht_cell(struct jw *w, const char *s, size_t max)
{
	jw_puts(w, "<td>");
	ht_label(w, s, max);
	jw_puts(w, "</td>");
}

static void ht_card(struct jw *w, const char *label, long long v, const char *cls)
{
	jw_printf(w, "<div class=\"card %s\"><div class=\"v\">%lld</div><div class=\"l\">%s</div>"
		     "</div>", cls, v, label);
}

static void rp_html(const cJSON *root, struct jw *w)
{
	const struct rp_parts d = rp_parts_of(root);
	const cJSON *win = d.win, *cap = d.cap, *ses = d.ses, *stm = d.stm, *fnd = d.fnd, *bs = d.bs,
		    *fl = d.fl, *ns = d.ns;
	const cJSON *it;

	jw_puts(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta name=\"viewport\" content=\"width=device-width\">"
		   "<title>dbtap report</title><style>"
		   "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:960px}"
		   "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
		   "border-bottom:1px solid #ddd;padding-bottom:4px}"
		   ".meta{color:#555}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}"
		   ".card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}"
		   ".card .v{font-size:22px;font-weight:600}.card .l{color:#555;font-size:12px}"
		   ".card.bad .v{color:#b71c1c}"
		   "table{border-collapse:collapse;width:100%;font-size:13px}"
		   "th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;"
		   "vertical-align:top}td.t{white-space:nowrap}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
		   "code{font-size:12px;word-break:break-all}"
		   "svg{display:block;max-width:100%;height:auto}"
		   "svg .ax{font-size:11px;fill:#555}svg .lb{font-size:12px;fill:#222}"
		   "svg .grid{stroke:#eee}svg .track{fill:#f1f1f1}.none{color:#777}"
		   ".sev-critical{color:#b71c1c;font-weight:600}.sev-high{color:#ef6c00}"
		   "</style></head><body>\n");
	jw_puts(w, "<h1>dbtap report</h1><p class=\"meta\">Packet time ");
	jw_html(w, rp_strv(win, "since"));
	jw_puts(w, " &ndash; ");
	jw_html(w, rp_strv(win, "until"));
	jw_puts(w, "<br>Databases: ");
	int k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "databases"))
	{
		if (k++)
			jw_puts(w, ", ");
		jw_puts(w, "<code>");
		jw_html(w, rp_strv(it, "path"));
		jw_puts(w, "</code>");
	}
	jw_printf(w, "<br>Capture: %lld runs, %lld packets, %lld kernel drops, %lld sensor drops"
		     "</p>\n",
		  NUM(cap, "runs"), NUM(cap, "packets"), NUM(cap, "kernel_drops"),
		  NUM(cap, "sensor_drops"));

	jw_puts(w, "<div class=\"cards\">");
	ht_card(w, "sessions", NUM(ses, "total"), "");
	ht_card(w, "statements stored", NUM(stm, "stored"), "");
	ht_card(w, "statement errors", NUM(stm, "errors"), "");
	ht_card(w, "findings", NUM(fnd, "total"), "");
	ht_card(w, "critical + high", NUM(fnd, "critical") + NUM(fnd, "high"),
		NUM(fnd, "critical") + NUM(fnd, "high") ? "bad" : "");
	ht_card(w, "failed logins", NUM(fl, "total"), NUM(fl, "total") ? "bad" : "");
	ht_card(w, "new query shapes", NUM(ns, "total"), "");
	jw_puts(w, "</div>\n");

	jw_puts(w, "<h2>Findings by severity over time</h2>\n");
	svg_columns(w, cJSON_GetObjectItemCaseSensitive(fnd, "timeline"), sev_names, sev_colors,
		    N_SEV, "Findings per bucket by severity");
	jw_puts(w, "<h2>Findings by kind</h2>\n");
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(fnd, "by_kind"), "kind", sev_names,
		  sev_colors, N_SEV, "Findings by kind and severity", 0);

	jw_puts(w, "<h2>Most severe findings</h2>\n<table><tr><th>time</th><th>severity</th>"
		   "<th>kind</th><th>principal</th><th>client</th><th>summary</th></tr>");
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "most_severe"))
	{
		if (k++ >= 15)
			break;
		jw_puts(w, "<tr>");
		ht_time(w, rp_strv(it, "ts"));
		jw_puts(w, "<td class=\"sev-");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "\">");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "</td>");
		ht_cell(w, rp_strv(it, "kind"), 40);
		ht_cell(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"),
			40);
		ht_cell(w, rp_strv(it, "client_ip"), 40);
		ht_cell(w, rp_strv(it, "summary"), 200);
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");
	if (!k)
		jw_puts(w, "<p class=\"none\">none</p>\n");

	const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activity");
	static const char *const act_s[] = {"statements"}, *const act_c[] = {"#3949ab"};
	static const char *const ses_s[] = {"sessions"}, *const ses_c[] = {"#00897b"};
	jw_printf(w, "<h2>Activity per %s</h2>\n<p class=\"meta\">Statements stored</p>",
		  rp_or(rp_strv(win, "bucket"), "hour"));
	svg_columns(w, act, act_s, act_c, 1, "Statements stored per bucket");
	jw_puts(w, "<p class=\"meta\">Sessions started</p>");
	svg_columns(w, act, ses_s, ses_c, 1, "Sessions started per bucket");

	static const char *const du_s[] = {"statements"}, *const du_c[] = {"#3949ab"};
	jw_puts(w, "<h2>Top principals</h2>\n<p class=\"meta\">Database users by statements"
		   " observed</p>");
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"), "db_user", du_s,
		  du_c, 1, "Top database users", 0);
	jw_puts(w, "<table><tr><th>db_user</th><th class=\"n\">sessions</th>"
		   "<th class=\"n\">statements</th><th class=\"n\">errors</th>"
		   "<th class=\"n\">failed logins</th><th class=\"n\">findings</th></tr>");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"))
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "db_user"), 60);
		ht_num(w, it, "sessions");
		ht_num(w, it, "statements");
		ht_num(w, it, "errors");
		ht_num(w, it, "failed_logins");
		ht_num(w, it, "findings");
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n<p class=\"meta\">End users (attributed) by statements stored</p>");
	static const char *const eu_s[] = {"statements", "findings"},
			     *const eu_c[] = {"#00897b", "#ef6c00"};
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(root, "top_end_users"), "end_user", eu_s,
		  eu_c, 2, "Top end users", 0);

	jw_printf(w, "<h2>New query shapes (%lld)</h2>\n<table><tr><th>time</th><th>db_user</th>"
		     "<th>application</th><th>fingerprint</th><th>sql</th></tr>",
		  NUM(ns, "total"));
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ns, "items"))
	{
		if (k++ >= 20)
			break;
		jw_puts(w, "<tr>");
		ht_time(w, rp_strv(it, "ts"));
		ht_cell(w, rp_strv(it, "db_user"), 40);
		ht_cell(w, rp_strv(it, "application"), 40);
		ht_cell(w, rp_strv(it, "fingerprint"), 16);
		jw_puts(w, "<td><code>");
		ht_label(w, rp_strv(it, "sql"), 300);
		jw_puts(w, "</code></td></tr>");
	}
	jw_puts(w, "</table>\n");

	jw_printf(w, "<h2>Failed logins (%lld from %lld clients)</h2>\n", NUM(fl, "total"),
		  NUM(fl, "clients"));
	static const char *const fl_s[] = {"count"}, *const fl_c[] = {"#b71c1c"};
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(fl, "by_client"), "label", fl_s, fl_c, 1,
		  "Failed logins by client", 0);
	jw_puts(w, "<table><tr><th>client</th><th>db_user</th><th class=\"n\">count</th>"
		   "<th>first</th><th>last</th><th>error</th></tr>");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fl, "by_client"))
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "client_ip"), 40);
		ht_cell(w, rp_strv(it, "db_user"), 40);
		ht_num(w, it, "count");
		ht_time(w, rp_strv(it, "first"));
		ht_time(w, rp_strv(it, "last"));
		ht_cell(w, rp_strv(it, "error"), 120);
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");

	/* blind spots as shares of sessions (and of packets for drops) */
	jw_printf(w, "<h2>Blind spots</h2>\n<p class=\"meta\">What dbtap could not see: shares of"
		     " %lld sessions; drops as a share of %lld packets.</p>",
		  NUM(bs, "sessions"), NUM(bs, "packets"));
	cJSON *rows = cJSON_CreateArray();
	static const char *const bl[][2] = {{"TLS (encrypted)", "tls_share"},
					     {"picked up mid-stream", "midstream_share"},
					     {"capture gaps", "gaps_share"},
					     {"undecodable traffic", "undecodable_share"},
					     {"packets dropped", "drop_share"}};
	for (size_t i = 0; i < sizeof(bl) / sizeof(bl[0]); i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "label", bl[i][0]);
		cJSON_AddNumberToObject(o, "share", rp_num(bs, bl[i][1]));
		cJSON_AddItemToArray(rows, o);
	}
	static const char *const bs_s[] = {"share"}, *const bs_c[] = {"#6d4c41"};
	svg_hbars(w, rows, "label", bs_s, bs_c, 1, "Blind spots", 1);
	cJSON_Delete(rows);
	jw_printf(w, "<p class=\"meta\">TLS %lld, mid-stream %lld, with gaps %lld, undecodable %lld;"
		     " kernel drops %lld, sensor drops %lld.</p>\n",
		  NUM(bs, "tls"), NUM(bs, "midstream"), NUM(bs, "with_gaps"), NUM(bs, "undecodable"),
		  NUM(bs, "kernel_drops"), NUM(bs, "sensor_drops"));
	jw_puts(w, "<p class=\"meta\">Generated by dbtap " DBTAP_VERSION ".</p></body></html>\n");
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
	if (sqlite3_exec(r.db, rp_tables_sql, NULL, NULL, NULL) != SQLITE_OK) {
		rp_fail(&r, NULL, "setup");
		goto out;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "report", "dbtap");
	cJSON_AddStringToObject(root, "version", DBTAP_VERSION);
	if (rp_gather(&r, root) < 0 || rp_compute(&r, root) < 0)
		goto out;

	switch (o->format) {
	case REPORT_JSON: {
		char *s = cJSON_Print(root);
		if (!s) {
			snprintf(err, errlen, "report: out of memory");
			goto out;
		}
		jw_puts(&w, s);
		jw_putc(&w, '\n');
		free(s);
		break;
	}
	case REPORT_HTML: rp_html(root, &w); break;
	default: rp_text(root, &w); break;
	}
	if (w.oom) {
		snprintf(err, errlen, "report: out of memory");
		goto out;
	}
	rc = rp_write_out(o->out, w.buf ? w.buf : "", w.len, err, errlen);
out:
	cJSON_Delete(root);
	jw_free(&w);
	sqlite3_close(r.db);
	return rc;
}

#define RP_MAX_DBS 64

static int rp_usage(const char *word, const char *msg)
{
	fprintf(stderr, "dbtap %s: %s\n", word, msg);
	if (strcmp(word, "prune") == 0)
		fprintf(stderr, "usage: dbtap prune [-d DB]... --older-than 30d [--vacuum]\n");
	else
		fprintf(stderr, "usage: dbtap report [-d DB]... [--since ISO8601 | --last 24h]"
				" [--format text|html|json] [-o FILE]\n");
	return 2;
}

int report_main(int argc, char **argv)
{
	const char *word = argc > 0 && argv[0] ? argv[0] : "report";
	int prune = strcmp(word, "prune") == 0;
	const char *dbs[RP_MAX_DBS];
	struct report_opts o = {.dbs = dbs, .format = REPORT_TEXT};
	int64_t older = 0;
	int vacuum = 0;
	char msg[300];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			rp_usage(word, "help");
			return 0;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--db")) {
			if (!val)
				return rp_usage(word, "-d needs a database path");
			if (o.n_dbs == RP_MAX_DBS)
				return rp_usage(word, "too many -d databases (at most 64)");
			dbs[o.n_dbs++] = val;
		} else if (!prune && !strcmp(a, "--since")) {
			o.since_set = 1;
			if (!val || report_parse_time(val, &o.since_us) < 0) {
				snprintf(msg, sizeof(msg), "--since: not an ISO-8601 time: %.200s",
					 val ? val : "(missing)");
				return rp_usage(word, msg);
			}
		} else if (!prune && !strcmp(a, "--last")) {
			if (!val || report_parse_duration(val, &o.last_us) < 0) {
				snprintf(msg, sizeof(msg), "--last: not a duration like 24h or 7d: %.200s",
					 val ? val : "(missing)");
				return rp_usage(word, msg);
			}
		} else if (!prune && !strcmp(a, "--format")) {
			if (val && !strcmp(val, "text"))
				o.format = REPORT_TEXT;
			else if (val && !strcmp(val, "html"))
				o.format = REPORT_HTML;
			else if (val && !strcmp(val, "json"))
				o.format = REPORT_JSON;
			else
				return rp_usage(word, "--format must be text, html or json");
		} else if (!prune && (!strcmp(a, "-o") || !strcmp(a, "--output"))) {
			if (!val)
				return rp_usage(word, "-o needs a file name");
			o.out = val;
		} else if (prune && !strcmp(a, "--older-than")) {
			if (!val || report_parse_duration(val, &older) < 0) {
				snprintf(msg, sizeof(msg),
					 "--older-than: not a duration like 30d: %.200s",
					 val ? val : "(missing)");
				return rp_usage(word, msg);
			}
		} else if (prune && !strcmp(a, "--vacuum")) {
			vacuum = 1;
			takes = 0;
		} else {
			snprintf(msg, sizeof(msg), "unknown argument: %.200s", a);
			return rp_usage(word, msg);
		}
		i += takes;
	}
	if (o.since_set && o.last_us)
		return rp_usage(word, "--since and --last exclude each other");
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
		for (int i = 0; i < o.n_dbs; i++) {
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
