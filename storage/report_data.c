/* `dbtap report`: the findings databases attached read-only to an in-memory database,
 * the window aggregated with SQL and gathered into the one report document. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "jsonw.h"
#include "report_int.h"
#include "dbtap_version.h"
#include "findings.h"
#include "sink.h"

const char *const sev_names[] = {"critical", "high", "medium", "low", "info"};

/* ---- SQL helpers ---- */

int rp_fail(struct rp *r, const char *path, const char *what)
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
	if ((i = sqlite3_bind_parameter_index(*st, ":prev")))
		sqlite3_bind_text(*st, i, r->prev[0] ? r->prev : "9999", -1, SQLITE_STATIC);
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

const char rp_tables_sql[] =
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
	" application, summary, sql, id);"
	"CREATE TABLE r_sensor(src INTEGER PRIMARY KEY, sensor);"
	"CREATE TABLE l_attack(kind, client_ip, db_user, application, end_user, n, sevrank,"
	" first, last);"
	"CREATE TABLE b(t TEXT PRIMARY KEY);"
	/* workload: one pass over the window's statements with their session's identity */
	"CREATE TABLE a_w(fingerprint, verb, outcome, error_code, end_user, db_user, database,"
	" application, client_ip, n, dur_n, dur_sum, dur_max, dur_min, rows, example);"
	"CREATE TABLE a_sec(sec, n);"
	"CREATE TABLE l_slow(src, ts, duration_us, verb, db_user, end_user, fingerprint, sql);"
	"CREATE TABLE l_err(src, ts, error_code, db_user, end_user, sql);"
	"CREATE TABLE l_groups(src, id, state, reopened, severity, kind, principal, object, count,"
	" clients, first, last, summary, sql, triage_state, triage_by, triage_at, triage_note);";

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
	"INSERT INTO a_sess SELECT :src, substr(started_at, 1, :blen), protocol, db_user, login,"
	" tls, midstream, coalesce(gaps, 0) > 0, count(*), sum(statements), sum(errors),"
	" sum(rows_returned) FROM src.sessions WHERE started_at >= :since AND started_at < :until"
	" GROUP BY 2, 3, 4, 5, 6, 7, 8;"
	"INSERT INTO a_fail SELECT :src, client_ip, db_user, count(*), min(started_at),"
	" max(started_at), max(login_error) FROM src.sessions WHERE login = 'failed'"
	" AND started_at >= :since AND started_at < :until GROUP BY client_ip, db_user;"
	"INSERT INTO a_stmt SELECT substr(ts, 1, :blen), end_user, verb, outcome, count(*)"
	" FROM w_statements WHERE ts >= :since AND ts < :until GROUP BY 1, 2, 3, 4;"
	"INSERT INTO a_find SELECT substr(ts, 1, :blen), kind, severity, db_user, end_user, count(*)"
	" FROM src.findings WHERE ts >= :since AND ts < :until GROUP BY 1, 2, 3, 4, 5;"
	"INSERT INTO a_misc SELECT :src, 'anomaly_sessions', count(DISTINCT session_id)"
	" FROM src.findings WHERE kind = 'protocol_anomaly' AND ts >= :since AND ts < :until;"
	"INSERT INTO l_shapes SELECT :src, ts, db_user, application, end_user, fingerprint, sql,"
	" summary FROM src.findings WHERE kind = 'new_query_shape' AND ts >= :since"
	" AND ts < :until ORDER BY ts DESC LIMIT :list;"
	"INSERT INTO l_top SELECT :src, ts, kind, severity, " RP_SEVRANK ", db_user, end_user,"
	" client_ip, application, summary, sql, id FROM src.findings WHERE ts >= :since"
	" AND ts < :until ORDER BY 5 DESC, ts DESC LIMIT :list;"
	/* durations count only where the capture saw request and completion (not NULL) */
	"INSERT INTO a_w SELECT s.fingerprint, s.verb, s.outcome, s.error_code, s.end_user,"
	" x.db_user, x.database, x.application, x.client_ip, count(*), count(s.duration_us),"
	" sum(s.duration_us), max(s.duration_us), min(s.duration_us), sum(s.rows), max(s.sql)"
	" FROM w_statements s LEFT JOIN src.sessions x ON x.id = s.session_id"
	" WHERE s.ts >= :since AND s.ts < :until GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;"
	"INSERT INTO a_sec SELECT substr(ts, 1, 19), count(*) FROM w_statements"
	" WHERE ts >= :since AND ts < :until GROUP BY 1;"
	"INSERT INTO l_slow SELECT :src, s.ts, s.duration_us, s.verb, x.db_user, s.end_user,"
	" s.fingerprint, s.sql FROM w_statements s LEFT JOIN src.sessions x"
	" ON x.id = s.session_id WHERE s.ts >= :since AND s.ts < :until"
	" AND s.duration_us IS NOT NULL ORDER BY s.duration_us DESC LIMIT :list;"
	"INSERT INTO l_err SELECT :src, s.ts, s.error_code, x.db_user, s.end_user, s.sql"
	" FROM w_statements s LEFT JOIN src.sessions x ON x.id = s.session_id"
	" WHERE s.ts >= :since AND s.ts < :until AND s.outcome = 'error'"
	" ORDER BY s.ts DESC LIMIT :list;"
	/* issue #19: an actor's injection statements and probing errors are one attack */
	"INSERT INTO l_attack SELECT kind, client_ip, db_user, application, coalesce(end_user, ''),"
	" count(*), max(" RP_SEVRANK "), min(ts), max(ts) FROM src.findings"
	" WHERE kind IN ('sql_injection', 'error_burst') AND ts >= :since AND ts < :until"
	" GROUP BY 1, 2, 3, 4, 5;";

/* TLS sessions by how they were seen (sessions.tls_decrypted, schema version 2 on). */
static const char rp_gather_tls_sql[] =
	"INSERT INTO a_misc SELECT :src, CASE WHEN tls_decrypted = 1 THEN 'tls_decrypted'"
	" WHEN tls_decrypted IN ('unsupported', 'midstream') THEN 'tls_unsupported'"
	" ELSE 'tls_key_missing' END, count(*) FROM src.sessions WHERE tls"
	" AND started_at >= :since AND started_at < :until GROUP BY 2;";

/* URI for ATTACH with mode=ro: percent-encode anything that could end the path. */
char *report_ro_uri(const char *path, int immutable)
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
	sprintf(o, immutable ? "?mode=ro&immutable=1" : "?mode=ro");
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
	/* mode=ro still needs the WAL's -shm beside the file: on a read-only file system (a
	 * snapshot, a backup mount) it cannot be made, and then the file is read as
	 * immutable (nobody can be writing it there). */
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;
	for (int immutable = 0; immutable < 2 && rc != SQLITE_DONE; immutable++) {
		if (immutable && access(path, W_OK) == 0)
			break;
		char *uri = report_ro_uri(path, immutable);
		if (!uri || sqlite3_prepare_v2(r->db, "ATTACH ?1 AS src", -1, &st, NULL) != SQLITE_OK) {
			free(uri);
			return rp_fail(r, path, "attach");
		}
		sqlite3_bind_text(st, 1, uri, -1, SQLITE_TRANSIENT);
		free(uri);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		/* the schema is read lazily: try it now, while the fallback is still open */
		if (rc == SQLITE_DONE && sqlite3_exec(r->db, "SELECT count(*) FROM src.sqlite_master", NULL,
						      NULL, NULL) != SQLITE_OK) {
			sqlite3_exec(r->db, "DETACH src", NULL, NULL, NULL);
			rc = SQLITE_ERROR;
		}
	}
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

/* The attached database's sensor (its newest run's runs.sensor; the file name without
 * directory and extension for a database older than schema 3), kept as r_sensor(src): ids
 * are per database, so merged reports name a record SENSOR:ID. */
static int rp_sensor(struct rp *r, int src, const char *path, cJSON *d)
{
	sqlite3_stmt *st;
	char name[256] = "";
	if (sqlite3_prepare_v2(r->db, "SELECT sensor FROM src.runs WHERE sensor <> ''"
				      " ORDER BY id DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
			snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	if (!name[0]) {
		const char *b = strrchr(path, '/');
		snprintf(name, sizeof name, "%s", b ? b + 1 : path);
		char *dot = strrchr(name, '.');
		if (dot && dot != name)
			*dot = 0;
	}
	char *clean = u8_clean_dup(name);
	cJSON_AddStringToObject(d, "sensor", clean ? clean : "?");
	free(clean);
	if (sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO r_sensor VALUES(?1, ?2)", -1, &st,
			       NULL) != SQLITE_OK)
		return rp_fail(r, path, "query");
	sqlite3_bind_int(st, 1, src);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rp_fail(r, path, "query");
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

/* The previous recorded report's window end, when the first database has one. */
static void rp_previous(struct rp *r)
{
	sqlite3_stmt *st;
	r->prev[0] = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT max(until) FROM src.report_runs", -1, &st, NULL) != SQLITE_OK)
		return; /* no report recorded yet */
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(r->prev, sizeof r->prev, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* Chart buckets covering the window (hours, days or months). */
static int rp_buckets(struct rp *r, int64_t since, int64_t until)
{
	int64_t span = until - since;
	int64_t step = 3600 * US_PER_S;
	r->blen = 13;
	if (span <= 3 * 3600 * US_PER_S) { /* a short window or a burst: minutes */
		r->blen = 16;
		step = 60 * US_PER_S;
	} else if (span > 72 * 3600 * US_PER_S) {
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

/* The attached database's statements the workload counts (temp view w_statements): a
 * server-leg statement joined to its client leg (issue #21, pooler_join 'joined') is that
 * client-leg row again, counted there under the real client and application. */
static int rp_stmt_view(struct rp *r, const char *path)
{
	sqlite3_stmt *st;
	int has_join = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM pragma_table_info('statements', 'src')"
				      " WHERE name = 'pooler_join'", -1, &st, NULL) != SQLITE_OK)
		return rp_fail(r, path, "reading schema");
	if (sqlite3_step(st) == SQLITE_ROW)
		has_join = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	const char *sql = has_join ? "CREATE TEMP VIEW w_statements AS SELECT * FROM src.statements"
				     " WHERE pooler_join IS NOT 'joined'"
				   : "CREATE TEMP VIEW w_statements AS SELECT * FROM src.statements";
	if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return rp_fail(r, path, "query");
	return 0;
}

/* Finding groups of the attached database in the window, with their triage state (see
 * findings.h), into l_groups. The group query runs on the attached schema "src". */
static int rp_groups(struct rp *r, int src, const char *path)
{
	sqlite3_stmt *st;
	int has_count = 0, has_last = 0, has_triage = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT (SELECT count(*) FROM pragma_table_info('findings', 'src')"
				      " WHERE name = 'count'), (SELECT count(*) FROM"
				      " pragma_table_info('findings', 'src') WHERE name = 'last_seen'),"
				      " (SELECT count(*) FROM src.sqlite_master WHERE name = 'triage')",
			       -1, &st, NULL) != SQLITE_OK)
		return rp_fail(r, path, "reading schema");
	if (sqlite3_step(st) == SQLITE_ROW) {
		has_count = sqlite3_column_int(st, 0);
		has_last = sqlite3_column_int(st, 1);
		has_triage = sqlite3_column_int(st, 2);
	}
	sqlite3_finalize(st);
	char *groups = findings_group_sql("src.", has_count, has_last, has_triage,
					  "ts >= :since AND ts < :until");
	char *sql = groups ? sqlite3_mprintf("INSERT INTO l_groups SELECT :src, id, state, reopened,"
					     " severity, kind, principal, object, count, clients, first,"
					     " last, summary, sql, triage_state, triage_by, triage_at,"
					     " triage_note FROM (%s)", groups)
			   : NULL;
	sqlite3_free(groups);
	if (!sql) {
		snprintf(r->err, r->errlen, "report: out of memory");
		return -1;
	}
	int rc = rp_exec(r, sql, src, path);
	sqlite3_free(sql);
	return rc;
}

void rp_add(cJSON *o, const char *key, cJSON *v)
{
	if (v)
		cJSON_AddItemToObject(o, key, v);
}

double rp_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *rp_strv(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int rp_gather(struct rp *r, cJSON *root)
{
	const struct report_opts *o = r->o;
	char newest[40] = "", oldest[40] = "";
	cJSON *dbs = cJSON_AddArrayToObject(root, "databases");
	/* pass 1: check every database and find the newest packet time */
	for (int i = 0; i < o->n_dbs; i++) {
		char t[40], old[40];
		if (rp_attach(r, o->dbs[i]) < 0)
			return -1;
		cJSON *d = cJSON_CreateObject();
		int rc = rp_newest(r, o->dbs[i], t, sizeof(t), old, sizeof(old));
		if (rc == 0 && i == 0)
			rp_previous(r);
		if (rc == 0)
			rc = rp_sensor(r, i, o->dbs[i], d);
		rp_detach(r);
		if (rc < 0) {
			cJSON_Delete(d);
			return -1;
		}
		if (strcmp(t, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", t);
		if (old[0] && (!oldest[0] || strcmp(old, oldest) < 0))
			snprintf(oldest, sizeof(oldest), "%s", old);
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
		until = o->until_set ? o->until_us : newest_us + 1 > since ? newest_us + 1 : since + 1;
	} else {
		until = o->until_set ? o->until_us : newest_us ? newest_us + 1 : 1;
		since = until - (o->last_us ? o->last_us : RP_DEFAULT_WINDOW);
	}
	/* say how the window was chosen: a missed night is rebuilt with --until */
	cJSON_AddStringToObject(win, "basis", o->until_set ? "until given" :
					      "ends at the newest packet time");
	r->have_window = newest[0] != 0;
	sink_fmt_time(since, r->since, sizeof(r->since));
	sink_fmt_time(until, r->until, sizeof(r->until));
	if (r->prev[0])
		cJSON_AddStringToObject(win, "previous_report_until", r->prev);
	else
		cJSON_AddNullToObject(win, "previous_report_until");
	cJSON_AddStringToObject(win, "since", r->since);
	cJSON_AddStringToObject(win, "until", r->until);
	/* charts start at the oldest data when the window reaches further back */
	int64_t oldest_us = 0, chart_from = since;
	if (oldest[0] && report_parse_time(oldest, &oldest_us) == 0 && oldest_us > since &&
	    oldest_us < until)
		chart_from = oldest_us;
	if (rp_buckets(r, chart_from, until) < 0)
		return -1;
	cJSON_AddStringToObject(win, "bucket", r->blen == 16 ? "minute" : r->blen == 13 ? "hour"
									: r->blen == 10 ? "day" : "month");

	/* pass 2: aggregate */
	for (int i = 0; i < o->n_dbs; i++) {
		if (rp_attach(r, o->dbs[i]) < 0)
			return -1;
		int rc = rp_stmt_view(r, o->dbs[i]);
		if (rc == 0)
			rc = rp_exec(r, rp_gather_sql, i, o->dbs[i]);
		if (rc == 0)
			rc = rp_groups(r, i, o->dbs[i]);
		cJSON *has = rc < 0 ? NULL : rp_row(r, "SELECT count(*) AS n FROM"
			" pragma_table_info('sessions', 'src') WHERE name = 'tls_decrypted'");
		if (has && rp_num(has, "n") > 0)
			rc = rp_exec(r, rp_gather_tls_sql, i, o->dbs[i]);
		else if (has) /* an older database: its TLS sessions were never decrypted */
			rc = rp_exec(r, "INSERT INTO a_misc SELECT :src, 'tls_key_missing', count(*)"
				     " FROM src.sessions WHERE tls AND started_at >= :since"
				     " AND started_at < :until;", i, o->dbs[i]);
		cJSON_Delete(has);
		sqlite3_exec(r->db, "DROP VIEW IF EXISTS temp.w_statements", NULL, NULL, NULL);
		rp_detach(r);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Final numbers from the aggregate tables, as the JSON document. */
int rp_compute(struct rp *r, cJSON *root)
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
			       " FROM a_find f GROUP BY f.kind"
			       " ORDER BY 3 DESC, 4 DESC, 5 DESC, 6 DESC, 7 DESC, 1");
	Q_ROWS(fnd, "timeline", "SELECT b.t AS t, coalesce(sum(f.n), 0) AS total," SEV_COLS
				" FROM b LEFT JOIN a_find f ON substr(f.hour, 1, :blen) = b.t"
				" GROUP BY b.t ORDER BY b.t");
	Q_ROWS(fnd, "attacks", "SELECT kind, client_ip, db_user, application, nullif(end_user, '') AS end_user,"
			       " sum(n) AS findings, CASE max(sevrank) WHEN 5 THEN 'critical' WHEN 4 THEN 'high'"
			       " WHEN 3 THEN 'medium' WHEN 2 THEN 'low' ELSE 'info' END AS severity,"
			       " min(first) AS first, max(last) AS last FROM l_attack GROUP BY 1, 2, 3, 4, 5"
			       " ORDER BY max(sevrank) DESC, 6 DESC LIMIT :list");
	Q_ROWS(fnd, "most_severe", "SELECT s.sensor || ':' || l.id AS id, s.sensor AS sensor,"
				   " ts, kind, severity, db_user, end_user, client_ip,"
				   " application, summary, sql FROM l_top l LEFT JOIN r_sensor s USING (src)"
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
	      " (SELECT coalesce(sum(n), 0) FROM a_misc WHERE key = 'tls_decrypted') AS tls_decrypted,"
	      " (SELECT coalesce(sum(n), 0) FROM a_misc WHERE key = 'tls_key_missing')"
	      " AS tls_key_missing,"
	      " (SELECT coalesce(sum(n), 0) FROM a_misc WHERE key = 'tls_unsupported')"
	      " AS tls_unsupported,"
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

	/* the DBA's page: what ran, how long it took, what failed, who sent it */
	Q_ROW("workload", "SELECT coalesce(sum(n), 0) AS statements,"
			  " coalesce(sum(dur_n), 0) AS timed,"
			  " coalesce(sum(dur_sum), 0) AS total_us,"
			  " (SELECT count(DISTINCT fingerprint) FROM a_w) AS shapes,"
			  " (SELECT sum(n) FROM a_sec GROUP BY sec ORDER BY 1 DESC LIMIT 1) AS peak_per_s,"
			  " (SELECT sec FROM a_sec GROUP BY sec ORDER BY sum(n) DESC, sec LIMIT 1)"
			  " AS peak_at FROM a_w");
	cJSON *wl = cJSON_GetObjectItemCaseSensitive(root, "workload");
#define SHAPE_COLS                                                                             	"SELECT fingerprint, max(verb) AS verb, sum(n) AS count,"                              	" sum(CASE WHEN outcome = 'error' THEN n ELSE 0 END) AS errors, sum(dur_n) AS timed,"  	" sum(dur_sum) AS total_us, CAST(sum(dur_sum) / max(sum(dur_n), 1) AS INTEGER)"        	" AS mean_us, min(dur_min) AS min_us, max(dur_max) AS max_us, sum(rows) AS rows,"      	" count(DISTINCT db_user) AS db_users, max(example) AS example FROM a_w"               	" GROUP BY fingerprint"
	Q_ROWS(wl, "top_by_count", SHAPE_COLS " ORDER BY count DESC, fingerprint LIMIT :top");
	Q_ROWS(wl, "top_by_time", SHAPE_COLS " HAVING timed > 0 ORDER BY total_us DESC,"
					     " fingerprint LIMIT :top");
	Q_ROWS(wl, "top_by_rows", SHAPE_COLS " HAVING rows > 0 ORDER BY rows DESC, fingerprint"
					     " LIMIT :top");
#undef SHAPE_COLS
	Q_ROWS(wl, "slowest", "SELECT ts, duration_us, verb, db_user, end_user, fingerprint, sql"
			      " FROM l_slow ORDER BY duration_us DESC, ts LIMIT :list");
	Q_ROWS(wl, "errors_by_code",
	       "SELECT coalesce(error_code, '?') AS error_code, sum(n) AS count,"
	       " count(DISTINCT fingerprint) AS shapes, count(DISTINCT db_user) AS db_users,"
	       " max(example) AS example FROM a_w WHERE outcome = 'error' GROUP BY 1"
	       " ORDER BY 2 DESC, 1 LIMIT :top");
	Q_ROWS(wl, "recent_errors", "SELECT ts, error_code, db_user, end_user, sql FROM l_err"
				    " ORDER BY ts DESC LIMIT :list");
	static const char *const dims[][2] = { { "database", "by_database" },
					       { "application", "by_application" },
					       { "client_ip", "by_client" },
					       { "db_user", "by_db_user" },
					       { "end_user", "by_end_user" } };
	for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
		char sql[512];
		snprintf(sql, sizeof sql,
			 "SELECT %s AS value, sum(n) AS statements,"
			 " sum(CASE WHEN outcome = 'error' THEN n ELSE 0 END) AS errors,"
			 " sum(dur_sum) AS total_us, sum(rows) AS rows,"
			 " count(DISTINCT fingerprint) AS shapes FROM a_w GROUP BY 1"
			 " ORDER BY 2 DESC, 1 LIMIT :top", dims[i][0]);
		Q_ROWS(wl, dims[i][1], sql);
	}
	/* no silent truncation: how many each capped list had in all */
	Q_ROW("list_totals",
	      "SELECT (SELECT count(DISTINCT fingerprint) FROM a_w) AS shapes,"
	      " (SELECT count(DISTINCT coalesce(error_code, '?')) FROM a_w WHERE outcome = 'error')"
	      " AS error_codes,"
	      " (SELECT coalesce(sum(n), 0) FROM a_w WHERE outcome = 'error') AS errors,"
	      " (SELECT coalesce(sum(dur_n), 0) FROM a_w) AS timed,"
	      " (SELECT count(DISTINCT database) FROM a_w) AS databases,"
	      " (SELECT count(DISTINCT application) FROM a_w) AS applications,"
	      " (SELECT count(DISTINCT client_ip) FROM a_w) AS clients,"
	      " (SELECT count(DISTINCT db_user) FROM a_w) AS db_users,"
	      " (SELECT count(DISTINCT end_user) FROM a_w) AS end_users,"
	      " (SELECT coalesce(sum(n), 0) FROM a_find) AS findings,"
	      " (SELECT coalesce(sum(n), 0) FROM a_find WHERE kind = 'new_query_shape')"
	      " AS new_shapes,"
	      " (SELECT count(*) FROM (SELECT DISTINCT client_ip, db_user FROM a_fail))"
	      " AS failed_login_pairs");
	/* triage: open groups (new or worse) first, known ones collapsed into counts */
	Q_ROW("groups", "SELECT count(*) AS total,"
			" coalesce(sum(state = 'open'), 0) AS open,"
			" coalesce(sum(state = 'open' AND reopened), 0) AS reopened,"
			" coalesce(sum(state = 'acknowledged'), 0) AS acknowledged,"
			" coalesce(sum(state = 'false_positive'), 0) AS false_positive,"
			" coalesce(sum(state = 'resolved'), 0) AS resolved,"
			" coalesce(sum(first >= :prev), 0) AS new FROM l_groups");
	cJSON *grp = cJSON_GetObjectItemCaseSensitive(root, "groups");
	Q_ROWS(grp, "open_groups",
	       "SELECT id, state, reopened, first >= :prev AS new, severity, kind, principal, object,"
	       " count, clients, first,"
	       " last, summary, sql, triage_state, triage_by, triage_at, triage_note FROM l_groups"
	       " WHERE state = 'open' ORDER BY " FG_SEVRANK("severity") " DESC, count DESC, id"
	       " LIMIT :list");
	Q_ROWS(grp, "collapsed",
	       "SELECT id, state, severity, kind, principal, count, last, summary, triage_by,"
	       " triage_at, triage_note FROM l_groups WHERE state <> 'open'"
	       " ORDER BY " FG_SEVRANK("severity") " DESC, count DESC, id LIMIT :list");
	cJSON_AddNumberToObject(root, "list_limit", RP_LIST);
	cJSON_AddNumberToObject(root, "top_limit", RP_TOP);
	return 0;
#undef Q_ROW
#undef Q_ROWS
}

