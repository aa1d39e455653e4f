/* Analyzer configuration: defaults and the top-level JSON keys the analyzer owns.
 * Every key is optional; a wrong type, value or unknown key is an error naming its JSON path
 * (the caller exits 2). contrib/dbtap.example.json documents every key. */
#include <arpa/inet.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "an_int.h"
#include "baseline.h"
#include "cfgkey.h"

static const char *const kind_names[AN_K_COUNT] = {
	"sql_injection", "error_burst", "auth_bruteforce", "privilege_change", "destructive_statement",
	"bulk_read", "data_export", "new_query_shape", "new_client", "new_application", "off_hours",
	"cleartext_password", "sensitive_access", "protocol_anomaly", "baseline_full",
};
static const char *const sev_names[] = { "info", "low", "medium", "high", "critical" };

const char *an_kind_name(int kind)
{
	return kind >= 0 && kind < AN_K_COUNT ? kind_names[kind] : NULL;
}

const char *an_severity_name(enum an_severity sev)
{
	return (unsigned)sev <= AN_SEV_CRITICAL ? sev_names[sev] : "medium";
}

static void list_clear(struct an_strlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int list_add(struct an_strlist *l, const char *s)
{
	if (l->n >= AN_MAX_LIST)
		return -1;
	char *d = strdup(s);
	if (!d)
		return -1;
	l->v[l->n++] = d;
	return 0;
}

static void list_set(struct an_strlist *l, const char *const *v)
{
	list_clear(l);
	for (; *v; v++)
		list_add(l, *v);
}

static const char *const def_comment_keys[] = { "app_user", "end_user", "enduser", "user", "user_id",
						"username", NULL };
static const char *const def_pg_settings[] = { "app.user", "app.user_id", "app.current_user", "app.end_user",
					       "request.jwt.claim.sub", NULL };
static const char *const def_pg_json[] = { "request.jwt.claims:sub", NULL };
static const char *const def_mysql_vars[] = { "app_user", "end_user", "user_id", NULL };
static const char *const def_app_patterns[] = { "^[^:[:space:]]+:([^:[:space:]]+)$", NULL };
static const char *const def_connect_attrs[] = { "app_user", "end_user", "enduser", "user_id", "username", NULL };

static const enum an_severity def_sev[AN_K_COUNT] = {
	[AN_K_SQL_INJECTION] = AN_SEV_HIGH,	    [AN_K_ERROR_BURST] = AN_SEV_MEDIUM,
	[AN_K_AUTH_BRUTEFORCE] = AN_SEV_HIGH,	    [AN_K_PRIVILEGE_CHANGE] = AN_SEV_HIGH,
	[AN_K_DESTRUCTIVE_STATEMENT] = AN_SEV_HIGH, [AN_K_BULK_READ] = AN_SEV_MEDIUM,
	[AN_K_DATA_EXPORT] = AN_SEV_HIGH,	    [AN_K_NEW_QUERY_SHAPE] = AN_SEV_LOW,
	[AN_K_NEW_CLIENT] = AN_SEV_MEDIUM,	    [AN_K_NEW_APPLICATION] = AN_SEV_LOW,
	[AN_K_OFF_HOURS] = AN_SEV_LOW,		    [AN_K_CLEARTEXT_PASSWORD] = AN_SEV_HIGH,
	[AN_K_SENSITIVE_ACCESS] = AN_SEV_MEDIUM,    [AN_K_PROTOCOL_ANOMALY] = AN_SEV_LOW,
	[AN_K_BASELINE_FULL] = AN_SEV_MEDIUM,
};

void an_config_defaults(struct an_config *c)
{
	memset(c, 0, sizeof(*c));
	c->audit = AN_AUDIT_ALL;
	list_set(&c->comment_keys, def_comment_keys);
	list_set(&c->pg_settings, def_pg_settings);
	list_set(&c->pg_json_settings, def_pg_json);
	list_set(&c->mysql_vars, def_mysql_vars);
	list_set(&c->app_name_patterns, def_app_patterns);
	list_set(&c->connect_attrs, def_connect_attrs);
	c->bruteforce_failures = 5;
	c->bruteforce_window_s = 180;
	c->error_burst_errors = 10;
	c->error_burst_window_s = 60;
	c->bulk_read_rows = 10000;
	c->bulk_read_bytes = 50LL * 1024 * 1024;
	c->anomaly_per_session = 3;
	c->repeat_interval_s = 300;
	c->anomaly_per_client = 10;
	for (int k = 0; k < AN_K_COUNT; k++)
		c->severity[k] = def_sev[k];
	c->admin_policy = AN_ADMIN_DOWNGRADE;
	c->max_sessions = 65536;
	c->idle_timeout_s = 3600;
	c->max_pending = 256;
	c->max_parked = 100000;
	c->max_parked_mb = 64;
	c->checkpoint_interval_s = 60;
	c->state_max_age_s = 7 * 86400;
	c->max_sql_bytes = 16384;
	c->max_pending_bytes = 1 << 20;
	c->max_pooler_pending = 4096;
	bl_config_defaults(c);
}

void an_config_free(struct an_config *c)
{
	list_clear(&c->service_accounts);
	list_clear(&c->comment_keys);
	list_clear(&c->pg_settings);
	list_clear(&c->pg_json_settings);
	list_clear(&c->mysql_vars);
	list_clear(&c->app_name_patterns);
	list_clear(&c->connect_attrs);
	list_clear(&c->admin_hosts);
	list_clear(&c->admin_users);
	for (int i = 0; i < c->n_sensitive; i++) {
		free(c->sensitive[i].table);
		list_clear(&c->sensitive[i].columns);
		list_clear(&c->sensitive[i].allow);
	}
	c->n_sensitive = 0;
}

static int kind_index(const char *name)
{
	for (int k = 0; k < AN_K_COUNT; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

static const char *check_json_setting(const char *s)
{
	const char *colon = strrchr(s, ':');
	return !colon || colon == s || !colon[1] ? "expected \"setting:key\"" : NULL;
}

static const char *check_regex(const char *s)
{
	regex_t re;
	if (regcomp(&re, s, REG_EXTENDED) != 0)
		return "not a valid POSIX extended regex";
	size_t groups = re.re_nsub;
	regfree(&re);
	return groups < 1 ? "needs one capture group" : NULL;
}

/* a whole list of names under a path the table does not name (sensitive[i].columns) */
static const struct ck_key list_key = { "*", CK_LIST, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL };
static const struct ck_key list_key_lower = { "*", CK_LIST, 0, 0, 0, 0, NULL, CK_LOWER, NULL, NULL, NULL, NULL, NULL, NULL };

static int sensitive_member(void *ctx, const char *k, const char *p2, const void *v, char *err, size_t len)
{
	struct an_sensitive *s = ctx;
	const cJSON *e = v;
	if (strcmp(k, "table") == 0) {
		if (!cJSON_IsString(e) || !e->valuestring || !e->valuestring[0] || strlen(e->valuestring) > 127)
			return ck_fail(err, len, "%s: expected a table name", p2);
		free(s->table);
		s->table = strdup(e->valuestring);
		if (!s->table)
			return ck_fail(err, len, "%s: out of memory", p2);
		for (char *ch = s->table; *ch; ch++)
			*ch = (char)((*ch >= 'A' && *ch <= 'Z') ? *ch + 32 : *ch);
		return 0;
	}
	if (strcmp(k, "columns") == 0)
		return ck_apply(&list_key_lower, &s->columns, e, p2, err, len);
	if (strcmp(k, "allow") == 0)
		return ck_apply(&list_key, &s->allow, e, p2, err, len);
	return ck_fail(err, len, "%s: unknown key", p2);
}

static int sensitive_entry(void *ctx, int i, const char *path, const void *o, char *err, size_t len)
{
	struct an_config *c = ctx;
	(void)i;
	struct an_sensitive *s = &c->sensitive[c->n_sensitive];
	memset(s, 0, sizeof *s);
	c->n_sensitive++; /* counted first so an_config_free releases partial entries */
	if (ck_members(o, path, sensitive_member, s, err, len) != 0)
		return -1;
	return s->table ? 0 : ck_fail(err, len, "%s.table: missing", path);
}

static int set_sensitive(void *base, const struct ck_key *key, const void *item, const char *kpath, char *err,
			 size_t len)
{
	struct an_config *c = base;
	(void)key;
	(void)kpath;
	return ck_objects(item, "sensitive", "an object", AN_MAX_SENSITIVE - c->n_sensitive, sensitive_entry, c, err,
			  len);
}

/* integers inside poolers[i], checked as any table key */
static const struct ck_key port_key = { "*", CK_INT, 0, sizeof(int), 1, 65535, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL };
static const struct ck_key window_key = { "*", CK_INT, 0, sizeof(int), 1, 3600 * 1000, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL };

/* An address in canonical text (inet_ntop), or -1. */
static int canon_ip(const char *in, char *out, size_t cap)
{
	unsigned char a[16];
	int fam = strchr(in, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, in, a) != 1 || !inet_ntop(fam, a, out, (socklen_t)cap))
		return -1;
	return 0;
}

static int pooler_member(void *ctx, const char *k, const char *p2, const void *v, char *err, size_t len)
{
	struct an_pooler_cfg *p = ctx;
	const cJSON *e = v;
	if (!strcmp(k, "address") || !strcmp(k, "source")) {
		char *dst = k[0] == 'a' ? p->address : p->source;
		if (!cJSON_IsString(e) || !e->valuestring || canon_ip(e->valuestring, dst, 48) < 0)
			return ck_fail(err, len, "%s: expected an IP address", p2);
		return 0;
	}
	if (!strcmp(k, "listen_port"))
		return ck_apply(&port_key, &p->listen_port, e, p2, err, len);
	if (!strcmp(k, "window_ms"))
		return ck_apply(&window_key, &p->window_ms, e, p2, err, len);
	if (!strcmp(k, "pool_mode")) {
		const char *m = cJSON_IsString(e) ? e->valuestring : "";
		if (!strcmp(m, "session"))
			p->session_mode = 1;
		else if (strcmp(m, "transaction") != 0 && strcmp(m, "statement") != 0)
			return ck_fail(err, len, "%s: expected \"transaction\", \"session\" or \"statement\"", p2);
		return 0;
	}
	return ck_fail(err, len, "%s: unknown key", p2);
}

static int pooler_entry(void *ctx, int i, const char *path, const void *o, char *err, size_t len)
{
	struct an_config *c = ctx;
	(void)i;
	struct an_pooler_cfg *p = &c->poolers[c->n_poolers];
	memset(p, 0, sizeof *p);
	p->window_ms = 60000;
	if (ck_members(o, path, pooler_member, p, err, len) != 0)
		return -1;
	if (!p->address[0])
		return ck_fail(err, len, "%s.address: missing", path);
	if (!p->listen_port)
		return ck_fail(err, len, "%s.listen_port: missing", path);
	c->n_poolers++;
	return 0;
}

/* "poolers": [{"address": IP, "listen_port": N, "source": IP, "pool_mode": "transaction"|"session",
 * "window_ms": N}] (issue #21) */
static int set_poolers(void *base, const struct ck_key *key, const void *item, const char *kpath, char *err, size_t len)
{
	struct an_config *c = base;
	(void)key;
	(void)kpath;
	c->n_poolers = 0;
	return ck_objects(item, "poolers", "an object", AN_MAX_POOLERS, pooler_entry, c, err, len);
}

static void *show_none(const void *base, const struct ck_key *k)
{
	(void)base;
	(void)k;
	return NULL;
}

static int set_replace_defaults(void *base, const struct ck_key *k, const void *v, const char *path, char *err,
				size_t len)
{
	(void)base;
	(void)k;
	/* read by each list of the group (CK_ADDS), wherever it stands in the object */
	return cJSON_IsBool((const cJSON *)v) ? 0 : ck_fail(err, len, "%s: expected true or false", path);
}

static void *show_false(const void *base, const struct ck_key *k)
{
	(void)base;
	(void)k;
	return cJSON_CreateFalse();
}

/* "severities.<kind>" and "detectors.<kind>" */
static int set_per_kind(void *base, const struct ck_key *k, const void *item, const char *path, char *err, size_t len)
{
	struct an_config *c = base;
	const cJSON *e = item;
	const char *name = strrchr(path, '.') + 1;
	int sev = k->path[0] == 's', kind = kind_index(name);
	if (kind < 0)
		return ck_fail(err, len, "%s: unknown finding kind", path);
	if (!sev) {
		if (!cJSON_IsBool(e))
			return ck_fail(err, len, "%s: expected true or false", path);
		c->detector_off[kind] = !cJSON_IsTrue(e);
		return 0;
	}
	for (int s = 0; s <= AN_SEV_CRITICAL && cJSON_IsString(e); s++)
		if (strcmp(e->valuestring, sev_names[s]) == 0) {
			c->severity[kind] = (enum an_severity)s;
			return 0;
		}
	return ck_fail(err, len, "%s: expected \"info\", \"low\", \"medium\", \"high\" or \"critical\"", path);
}

static void *show_per_kind(const void *base, const struct ck_key *k)
{
	const struct an_config *c = base;
	cJSON *o = cJSON_CreateObject();
	for (int kind = 0; kind < AN_K_COUNT; kind++) {
		if (k->path[0] == 's')
			cJSON_AddStringToObject(o, kind_names[kind], sev_names[c->severity[kind]]);
		else
			cJSON_AddBoolToObject(o, kind_names[kind], !c->detector_off[kind]);
	}
	return o;
}

static const char *const audit_names[] = { "all", "findings", NULL };
static const char *const admin_policy_names[] = { "report", "downgrade", "allow", NULL };

#define F(field) offsetof(struct an_config, field)
#define GROUP(p, doc) { p, CK_GROUP, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define BOOL(p, f, doc) { p, CK_BOOL, F(f), 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define INT(p, f, lo, hi, doc) { p, CK_INT, F(f), (int)sizeof(((struct an_config *)0)->f), lo, hi, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define LIST(p, f, flags, check, ex, doc) { p, CK_LIST, F(f), 0, 0, 0, NULL, flags, check, NULL, NULL, (ex) ? "none" : NULL, ex, doc }
#define ENUM(p, f, names, doc) { p, CK_ENUM, F(f), 0, 0, 0, names, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define CUSTOM(p, set, show, def, ex, doc) { p, CK_CUSTOM, 0, 0, 0, 0, NULL, 0, NULL, set, show, def, ex, doc }

static const struct ck_key an_keys[] = {
	ENUM("audit", audit, audit_names,
	     "'all' stores every statement; 'findings' stores only statements that back a finding (sessions and "
	     "findings are always stored)."),
	BOOL("keep_literals", keep_literals,
	     "false: statements are stored with literals replaced by ? and bound parameters are not stored. true: "
	     "literals and bound parameters (statements.params) are kept. Passwords inside statements (CREATE/ALTER "
	     "USER|ROLE ... PASSWORD, SET PASSWORD, IDENTIFIED BY/AS, PASSWORD()/CRYPT() arguments) and every literal "
	     "and parameter of such statements are masked either way."),
	LIST("service_accounts", service_accounts, 0, NULL, "[\"app_svc\"]",
	     "Pooled application accounts. Their statements are attributed to an end user only through markers "
	     "(comments, SET/set_config, application_name, connect attributes); never to the account itself. Their "
	     "reads of credential catalogs (pg_shadow, pg_authid, mysql.user) count as injection."),
	GROUP("attribution",
	      "End-user markers (DESIGN.md section 4). Each list ADDS to the built-in defaults shown here, unless "
	      "replace_defaults is true, in which case the lists given replace the defaults."),
	CUSTOM("attribution.replace_defaults", set_replace_defaults, show_false, NULL, NULL,
	       "true: the lists given in this object replace the built-in defaults instead of adding to them."),
	LIST("attribution.comment_keys", comment_keys, CK_ADDS, NULL, NULL,
	     "sqlcommenter-style comment keys naming the end user, in order of precedence: "
	     "/*app_user='alice',route='%2Fx'*/ or -- app_user=alice. Values may be URL-encoded."),
	LIST("attribution.pg_settings", pg_settings, CK_ADDS | CK_LOWER, NULL, NULL,
	     "PostgreSQL settings set with SET [LOCAL] name = 'v' or set_config('name', 'v', is_local); LOCAL / "
	     "is_local=true last until the transaction ends."),
	LIST("attribution.pg_json_settings", pg_json_settings, CK_ADDS | CK_LOWER, check_json_setting, NULL,
	     "\"setting:key\": a setting holding a JSON object whose key names the end user (PostgREST / Supabase "
	     "claims)."),
	LIST("attribution.mysql_vars", mysql_vars, CK_ADDS, NULL, NULL,
	     "MySQL user variables (SET @app_user = 'alice'), session scope; with or without the leading @."),
	LIST("attribution.app_name_patterns", app_name_patterns, CK_ADDS, check_regex, NULL,
	     "POSIX extended regexes with one capture group, matched against application_name (startup, SET [LOCAL] "
	     "application_name, the server's report) and MySQL program_name; the group is the end user. Default: "
	     "'app:user' without spaces."),
	LIST("attribution.connect_attrs", connect_attrs, CK_ADDS, NULL, NULL,
	     "MySQL connection attributes naming the end user."),
	LIST("admin_hosts", admin_hosts, 0, ck_check_cidr, "[\"10.1.0.0/16\", \"2001:db8:1::/48\"]",
	     "Addresses or CIDRs from which DBA work is expected."),
	LIST("admin_users", admin_users, 0, NULL, "[\"dba\", \"postgres\"]",
	     "DBA accounts (db_user, or the role after SET ROLE). Empty: anyone on an admin host counts as an admin."),
	ENUM("admin_policy", admin_policy, admin_policy_names,
	     "What privilege_change (and COPY ... TO STDOUT data_export, e.g. pg_dump) by an admin on an admin host "
	     "becomes: 'report' (like anyone else), 'downgrade' (severity info), 'allow' (no finding)."),
	GROUP("thresholds", "Detector thresholds. Windows are in seconds of packet time."),
	INT("thresholds.bruteforce_failures", bruteforce_failures, 1, 64,
	    "auth_bruteforce: failed logins of one client (or against one account) within bruteforce_window_s."),
	INT("thresholds.bruteforce_window_s", bruteforce_window_s, 1, 86400, "auth_bruteforce's window."),
	INT("thresholds.error_burst_errors", error_burst_errors, 1, 64,
	    "error_burst: probing errors per actor (the end user when known, else client address + db_user + "
	    "application, across its sessions) within the window, weighted: injection-provoked codes 2 (42601, "
	    "42883, 22P02, 42804, 42P01, 42703, 1064, 1054, 1062, 1105, 1690, 1222), other syntax/permission codes 1 "
	    "(42501, 42P18, 1149, 1142, 1143, 1044, 1045, 1227, 1370, 1241, 1305, 1146)."),
	INT("thresholds.error_burst_window_s", error_burst_window_s, 1, 86400, "error_burst's window."),
	INT("thresholds.bulk_read_rows", bulk_read_rows, 1, INT64_C(1) << 52, "bulk_read: rows one statement returns."),
	INT("thresholds.bulk_read_bytes", bulk_read_bytes, 1, INT64_C(1) << 52, "bulk_read: bytes one statement returns."),
	INT("thresholds.anomaly_per_session", anomaly_per_session, 1, 1000,
	    "protocol_anomaly findings per session; further anomalies are only counted."),
	INT("thresholds.anomaly_per_client", anomaly_per_client, 1, 1000,
	    "protocol_anomaly findings per client address within repeat_interval_s (hydra's malformed handshakes open "
	    "many sessions); further anomalies are only counted."),
	INT("thresholds.repeat_interval_s", repeat_interval_s, 0, 86400,
	    "No floods: a finding of the same kind, actor (end user, else db_user, client and application) and object "
	    "(statement fingerprint, or the login account) within this many seconds of the first one updates that "
	    "row's count and last_seen instead of adding a row (sql_injection keeps one row per statement; "
	    "auth_bruteforce updates its open burst). 0: every finding is a row."),
	GROUP("severities",
	      "Severity per finding kind: info, low, medium, high or critical. Superuser grants are always critical; a "
	      "failed attempt is one step lower; a successful login after a brute force one step higher."),
	CUSTOM("severities.*", set_per_kind, show_per_kind, NULL, NULL, "One finding kind's severity."),
	GROUP("detectors",
	      "Turn a detector off with false. All are on by default. Turning off new_query_shape, new_client, "
	      "new_application or off_hours also stops learning that aspect of the baseline."),
	CUSTOM("detectors.*", set_per_kind, show_per_kind, NULL, NULL, "false turns one finding kind's detector off."),
	CUSTOM("sensitive", set_sensitive, show_none, "none",
	       "[{\"table\": \"customers\", \"columns\": [\"ssn\", \"card_number\"], \"allow\": [\"billing_svc\", "
	       "\"auditor\"]}, {\"table\": \"hr.salaries\", \"allow\": [\"hr_app\"]}]",
	       "Sensitive tables: 'table' (name, or schema.name to require the schema), optional 'columns' (empty: any "
	       "use of the table; SELECT * counts as every column), 'allow' (db users, roles or end users allowed)."),
	CUSTOM("poolers", set_poolers, show_none, "none", "[{\"address\": \"10.0.0.7\", \"listen_port\": 6432, \"pool_mode\": \"transaction\"}]",
	       "Connection poolers (pgbouncer, ...) whose two legs are joined (analyzer/DETECTORS.md, Through a pooler). "
	       "address/listen_port: where clients connect (the client leg); source: the address it connects to the "
	       "database from (default: address; the server leg is every session from it to another server); "
	       "pool_mode: 'transaction' (default; also right for 'statement') or 'session' (a server connection serves "
	       "one client until that client leaves); window_ms (60000): how long a client statement may wait in the "
	       "pooler's queue before it is forwarded. Each server-leg statement gets the client-leg session it "
	       "forwards (statements.via_session_id) and that client's end user; the pooler's own statements are "
	       "marked; markers the pooler leaves on a server connection never name another client."),
	GROUP("limits", "Memory bounds of the analyzer."),
	INT("limits.max_sessions", max_sessions, 1, 10000000,
	    "Open sessions tracked; the least recently active is evicted (its record ends with 'timeout')."),
	INT("limits.max_parked", max_parked, 1, 10000000,
	    "Idle connections parked: a flow quiet for capture.idle_timeout_s does not end its session; it is kept in "
	    "a compact record (about 560 bytes with two prepared statements) and the same row resumes when the "
	    "connection speaks again. Beyond this count (or max_parked_mb) the least recently active parked session "
	    "ends ('timeout'), counted in runs.drops.parked_evicted."),
	INT("limits.max_parked_mb", max_parked_mb, 1, 1 << 20,
	    "MiB for parked records, and separately for the named prepared statement texts open sessions keep for it."),
	INT("limits.checkpoint_interval_s", checkpoint_interval_s, 1, 86400,
	    "Packet time between saves of open sessions' state to the database (table session_state) so a restart "
	    "resumes them."),
	INT("limits.state_max_age_s", state_max_age_s, 1, 366 * 86400,
	    "Saved or parked state older than this is not resumed."),
	INT("limits.idle_timeout_s", idle_timeout_s, 1, 30 * 86400,
	    "Statements still waiting for a result after this much packet time are stored with outcome 'unknown'."),
	INT("limits.max_pending", max_pending, 1, 65536,
	    "Statements waiting for their results per session; more are dropped and counted."),
	INT("limits.max_pending_bytes", max_pending_bytes, 1, 1 << 30, "Statement text waiting for results per session."),
	INT("limits.max_pooler_pending", max_pooler_pending, 1, 1 << 20,
	    "Client-leg statements of configured poolers kept for the join (about 450 bytes each); beyond it the oldest "
	    "is dropped, counted in runs.drops.pooler_dropped. Server-leg statements waiting for their client: at most "
	    "32 per connection and 8 MiB in all, else stored unmatched."),
	INT("limits.max_sql_bytes", max_sql_bytes, 1, 1 << 20,
	    "Statement text kept per statement (longer text is cut and analysed up to the cut)."),
};

int an_config_tables(struct an_config *c, struct ck_table *out)
{
	out[0] = (struct ck_table){ an_keys, (int)(sizeof an_keys / sizeof an_keys[0]), c };
	return 1 + bl_config_table(c, &out[1]);
}

int an_config_set(struct an_config *c, const char *key, const void *item, char *err, unsigned long errlen)
{
	if (!key || !item) {
		ck_fail(err, errlen, "%s: missing value", key ? key : "?");
		return -1;
	}
	if (key[0] == '_')
		return 0; /* "_comment"-style keys document the file */
	struct ck_table t[AN_CFG_TABLES];
	int nt = an_config_tables(c, t);
	if (strchr(key, '.'))
		return 1; /* only top-level keys are handed over */
	return ck_set(t, nt, key, item, err, errlen);
}
