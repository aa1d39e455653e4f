/* Analyzer configuration: defaults and the top-level JSON keys the analyzer owns.
 * Every key is optional; a wrong type, value or unknown key is an error naming its JSON path
 * (the caller exits 2). contrib/dbtap.example.json documents every key. */
#include <arpa/inet.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "an_int.h"
#include "baseline.h"

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

static int fail(char *err, unsigned long len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, len, "config: ");
	va_start(ap, fmt);
	if (n >= 0 && (unsigned long)n < len)
		vsnprintf(err + n, len - (unsigned long)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* A list of strings at path; replace=1 clears what is there first. */
static int get_list(const cJSON *j, const char *path, struct an_strlist *l, int replace, int lower, char *err,
		    unsigned long len)
{
	if (!cJSON_IsArray(j))
		return fail(err, len, "%s: expected an array of strings", path);
	if (replace)
		list_clear(l);
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, j)
	{
		if (!cJSON_IsString(e) || !e->valuestring || !e->valuestring[0])
			return fail(err, len, "%s[%d]: expected a non-empty string", path, i);
		if (strlen(e->valuestring) > 255)
			return fail(err, len, "%s[%d]: longer than 255 characters", path, i);
		if (!an_in_list(l, e->valuestring)) {
			if (list_add(l, e->valuestring) < 0)
				return fail(err, len, "%s: more than %d entries", path, AN_MAX_LIST);
			if (lower)
				for (char *c = l->v[l->n - 1]; *c; c++)
					*c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
		}
		i++;
	}
	return 0;
}

static int get_posint(const cJSON *j, const char *path, int64_t max, int64_t *out, char *err, unsigned long len)
{
	if (!cJSON_IsNumber(j) || j->valuedouble < 1 || j->valuedouble > (double)max ||
	    floor(j->valuedouble) != j->valuedouble)
		return fail(err, len, "%s: expected a positive integer (at most %lld)", path, (long long)max);
	*out = (int64_t)j->valuedouble;
	return 0;
}

static int get_bool(const cJSON *j, const char *path, int *out, char *err, unsigned long len)
{
	if (!cJSON_IsBool(j))
		return fail(err, len, "%s: expected true or false", path);
	*out = cJSON_IsTrue(j) ? 1 : 0;
	return 0;
}

static int kind_index(const char *name)
{
	for (int k = 0; k < AN_K_COUNT; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

/* Validate "a.b.c.d/n" or "x::y/n" (prefix optional). */
static int cidr_ok(const char *s)
{
	char buf[64];
	unsigned char a[16];
	if (strlen(s) >= sizeof buf)
		return 0;
	strcpy(buf, s);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		char *endp;
		*slash = 0;
		bits = strtol(slash + 1, &endp, 10);
		if (*endp || slash[1] == 0 || bits < 0)
			return 0;
	}
	if (inet_pton(AF_INET, buf, a) == 1)
		return bits <= 32;
	if (inet_pton(AF_INET6, buf, a) == 1)
		return bits <= 128;
	return 0;
}

static int set_attribution(struct an_config *c, const cJSON *obj, char *err, unsigned long len)
{
	if (!cJSON_IsObject(obj))
		return fail(err, len, "attribution: expected an object");
	int replace = 0;
	const cJSON *e;
	const cJSON *rd = cJSON_GetObjectItemCaseSensitive(obj, "replace_defaults");
	if (rd && get_bool(rd, "attribution.replace_defaults", &replace, err, len) < 0)
		return -1;
	cJSON_ArrayForEach(e, obj)
	{
		char path[128];
		snprintf(path, sizeof path, "attribution.%.80s", e->string ? e->string : "?");
		const char *k = e->string ? e->string : "";
		struct an_strlist *l = NULL;
		int lower = 0;
		if (strcmp(k, "replace_defaults") == 0 || k[0] == '_')
			continue;
		if (strcmp(k, "comment_keys") == 0)
			l = &c->comment_keys;
		else if (strcmp(k, "pg_settings") == 0)
			l = &c->pg_settings, lower = 1;
		else if (strcmp(k, "pg_json_settings") == 0)
			l = &c->pg_json_settings, lower = 1;
		else if (strcmp(k, "mysql_vars") == 0)
			l = &c->mysql_vars;
		else if (strcmp(k, "app_name_patterns") == 0)
			l = &c->app_name_patterns;
		else if (strcmp(k, "connect_attrs") == 0)
			l = &c->connect_attrs;
		else
			return fail(err, len, "%s: unknown key", path);
		/* values checked first so the message names the element as written */
		int i = 0;
		const cJSON *v;
		const cJSON *arr = cJSON_IsArray(e) ? e : NULL;
		cJSON_ArrayForEach(v, arr)
		{
			const char *sv = cJSON_IsString(v) ? v->valuestring : NULL;
			if (sv && l == &c->pg_json_settings) {
				const char *colon = strrchr(sv, ':');
				if (!colon || colon == sv || !colon[1])
					return fail(err, len, "%s[%d]: expected \"setting:key\"", path, i);
			}
			if (sv && l == &c->app_name_patterns) {
				regex_t re;
				if (regcomp(&re, sv, REG_EXTENDED) != 0)
					return fail(err, len, "%s[%d]: not a valid POSIX extended regex", path, i);
				size_t groups = re.re_nsub;
				regfree(&re);
				if (groups < 1)
					return fail(err, len, "%s[%d]: needs one capture group", path, i);
			}
			i++;
		}
		if (get_list(e, path, l, replace, lower, err, len) < 0)
			return -1;
	}
	return 0;
}

static int set_thresholds(struct an_config *c, const cJSON *obj, char *err, unsigned long len)
{
	if (!cJSON_IsObject(obj))
		return fail(err, len, "thresholds: expected an object");
	const cJSON *e;
	cJSON_ArrayForEach(e, obj)
	{
		char path[128];
		const char *k = e->string ? e->string : "";
		int64_t v = 0;
		snprintf(path, sizeof path, "thresholds.%.80s", k);
		if (k[0] == '_')
			continue;
		if (strcmp(k, "bruteforce_failures") == 0 || strcmp(k, "error_burst_errors") == 0) {
			if (get_posint(e, path, 64, &v, err, len) < 0)
				return -1;
			*(k[0] == 'b' ? &c->bruteforce_failures : &c->error_burst_errors) = (int)v;
		} else if (strcmp(k, "bruteforce_window_s") == 0 || strcmp(k, "error_burst_window_s") == 0) {
			if (get_posint(e, path, 86400, &v, err, len) < 0)
				return -1;
			*(k[0] == 'b' ? &c->bruteforce_window_s : &c->error_burst_window_s) = (int)v;
		} else if (strcmp(k, "bulk_read_rows") == 0) {
			if (get_posint(e, path, INT64_C(1) << 52, &v, err, len) < 0)
				return -1;
			c->bulk_read_rows = v;
		} else if (strcmp(k, "bulk_read_bytes") == 0) {
			if (get_posint(e, path, INT64_C(1) << 52, &v, err, len) < 0)
				return -1;
			c->bulk_read_bytes = v;
		} else if (strcmp(k, "anomaly_per_session") == 0 || strcmp(k, "anomaly_per_client") == 0) {
			if (get_posint(e, path, 1000, &v, err, len) < 0)
				return -1;
			*(k[13] == 'e' ? &c->anomaly_per_session : &c->anomaly_per_client) = (int)v;
		} else if (strcmp(k, "repeat_interval_s") == 0) {
			/* 0 is allowed: every finding its own row */
			if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 86400 ||
			    e->valuedouble != (double)(int)e->valuedouble)
				return fail(err, len, "%s: expected an integer 0..86400", path);
			c->repeat_interval_s = (int)e->valuedouble;
		} else {
			return fail(err, len, "%s: unknown key", path);
		}
	}
	return 0;
}

static int set_limits(struct an_config *c, const cJSON *obj, char *err, unsigned long len)
{
	if (!cJSON_IsObject(obj))
		return fail(err, len, "limits: expected an object");
	const cJSON *e;
	cJSON_ArrayForEach(e, obj)
	{
		char path[128];
		const char *k = e->string ? e->string : "";
		int64_t v = 0;
		int *dst;
		int64_t max;
		snprintf(path, sizeof path, "limits.%.80s", k);
		if (k[0] == '_')
			continue;
		if (strcmp(k, "max_sessions") == 0)
			dst = &c->max_sessions, max = 10000000;
		else if (strcmp(k, "idle_timeout_s") == 0)
			dst = &c->idle_timeout_s, max = 30 * 86400;
		else if (strcmp(k, "max_pending") == 0)
			dst = &c->max_pending, max = 65536;
		else if (strcmp(k, "max_sql_bytes") == 0)
			dst = &c->max_sql_bytes, max = 1 << 20;
		else if (strcmp(k, "max_pending_bytes") == 0)
			dst = &c->max_pending_bytes, max = 1 << 30;
		else if (strcmp(k, "max_parked") == 0)
			dst = &c->max_parked, max = 10000000;
		else if (strcmp(k, "max_parked_mb") == 0)
			dst = &c->max_parked_mb, max = 1 << 20;
		else if (strcmp(k, "checkpoint_interval_s") == 0)
			dst = &c->checkpoint_interval_s, max = 86400;
		else if (strcmp(k, "state_max_age_s") == 0)
			dst = &c->state_max_age_s, max = 366 * 86400;
		else if (strcmp(k, "max_pooler_pending") == 0)
			dst = &c->max_pooler_pending, max = 1 << 20;
		else
			return fail(err, len, "%s: unknown key", path);
		if (get_posint(e, path, max, &v, err, len) < 0)
			return -1;
		*dst = (int)v;
	}
	return 0;
}

static int set_sensitive(struct an_config *c, const cJSON *arr, char *err, unsigned long len)
{
	if (!cJSON_IsArray(arr))
		return fail(err, len, "sensitive: expected an array of objects");
	const cJSON *o;
	int i = 0;
	cJSON_ArrayForEach(o, arr)
	{
		char path[32];
		snprintf(path, sizeof path, "sensitive[%d]", i);
		if (!cJSON_IsObject(o))
			return fail(err, len, "%s: expected an object", path);
		if (c->n_sensitive >= AN_MAX_SENSITIVE)
			return fail(err, len, "sensitive: more than %d entries", AN_MAX_SENSITIVE);
		struct an_sensitive *s = &c->sensitive[c->n_sensitive];
		memset(s, 0, sizeof *s);
		c->n_sensitive++; /* counted first so an_config_free releases partial entries */
		const cJSON *e;
		cJSON_ArrayForEach(e, o)
		{
			char p2[200];
			const char *k = e->string ? e->string : "";
			snprintf(p2, sizeof p2, "%s.%.80s", path, k);
			if (k[0] == '_')
				continue;
			if (strcmp(k, "table") == 0) {
				if (!cJSON_IsString(e) || !e->valuestring || !e->valuestring[0] ||
				    strlen(e->valuestring) > 127)
					return fail(err, len, "%s: expected a table name", p2);
				free(s->table);
				s->table = strdup(e->valuestring);
				if (!s->table)
					return fail(err, len, "%s: out of memory", p2);
				for (char *ch = s->table; *ch; ch++)
					*ch = (char)((*ch >= 'A' && *ch <= 'Z') ? *ch + 32 : *ch);
			} else if (strcmp(k, "columns") == 0) {
				if (get_list(e, p2, &s->columns, 1, 1, err, len) < 0)
					return -1;
			} else if (strcmp(k, "allow") == 0) {
				if (get_list(e, p2, &s->allow, 1, 0, err, len) < 0)
					return -1;
			} else {
				return fail(err, len, "%s: unknown key", p2);
			}
		}
		if (!s->table)
			return fail(err, len, "%s.table: missing", path);
		i++;
	}
	return 0;
}

/* An address in canonical text (inet_ntop), or -1. */
static int canon_ip(const char *in, char *out, size_t cap)
{
	unsigned char a[16];
	int fam = strchr(in, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, in, a) != 1 || !inet_ntop(fam, a, out, (socklen_t)cap))
		return -1;
	return 0;
}

/* "poolers": [{"address": IP, "listen_port": N, "source": IP, "pool_mode": "transaction"|"session",
 * "window_ms": N}] (issue #21) */
static int set_poolers(struct an_config *c, const cJSON *arr, char *err, unsigned long len)
{
	if (!cJSON_IsArray(arr))
		return fail(err, len, "poolers: expected an array of objects");
	c->n_poolers = 0;
	const cJSON *o;
	int i = 0;
	cJSON_ArrayForEach(o, arr)
	{
		char path[64];
		snprintf(path, sizeof path, "poolers[%d]", i);
		if (!cJSON_IsObject(o))
			return fail(err, len, "%s: expected an object", path);
		if (c->n_poolers >= AN_MAX_POOLERS)
			return fail(err, len, "poolers: more than %d entries", AN_MAX_POOLERS);
		struct an_pooler_cfg *p = &c->poolers[c->n_poolers];
		memset(p, 0, sizeof *p);
		p->window_ms = 60000;
		const cJSON *e;
		cJSON_ArrayForEach(e, o)
		{
			char p2[200];
			const char *k = e->string ? e->string : "";
			snprintf(p2, sizeof p2, "%s.%.80s", path, k);
			if (k[0] == '_')
				continue;
			if (!strcmp(k, "address") || !strcmp(k, "source")) {
				char *dst = k[0] == 'a' ? p->address : p->source;
				if (!cJSON_IsString(e) || !e->valuestring || canon_ip(e->valuestring, dst, 48) < 0)
					return fail(err, len, "%s: expected an IP address", p2);
			} else if (!strcmp(k, "listen_port")) {
				int64_t v;
				if (get_posint(e, p2, 65535, &v, err, len) < 0)
					return -1;
				p->listen_port = (int)v;
			} else if (!strcmp(k, "window_ms")) {
				int64_t v;
				if (get_posint(e, p2, 3600 * 1000, &v, err, len) < 0)
					return -1;
				p->window_ms = (int)v;
			} else if (!strcmp(k, "pool_mode")) {
				const char *v = cJSON_IsString(e) ? e->valuestring : "";
				if (!strcmp(v, "session"))
					p->session_mode = 1;
				else if (strcmp(v, "transaction") != 0 && strcmp(v, "statement") != 0)
					return fail(err, len, "%s: expected \"transaction\", \"session\" or \"statement\"", p2);
			} else {
				return fail(err, len, "%s: unknown key", p2);
			}
		}
		if (!p->address[0])
			return fail(err, len, "%s.address: missing", path);
		if (!p->listen_port)
			return fail(err, len, "%s.listen_port: missing", path);
		c->n_poolers++;
		i++;
	}
	return 0;
}

int an_config_set(struct an_config *c, const char *key, const void *item, char *err, unsigned long errlen)
{
	const cJSON *j = item;
	if (!key || !j) {
		fail(err, errlen, "%s: missing value", key ? key : "?");
		return -1;
	}
	if (key[0] == '_')
		return 0; /* "_comment"-style keys document the file */
	if (strcmp(key, "audit") == 0) {
		if (cJSON_IsString(j) && strcmp(j->valuestring, "all") == 0)
			c->audit = AN_AUDIT_ALL;
		else if (cJSON_IsString(j) && strcmp(j->valuestring, "findings") == 0)
			c->audit = AN_AUDIT_FINDINGS;
		else
			return fail(err, errlen, "audit: expected \"all\" or \"findings\"");
		return 0;
	}
	if (strcmp(key, "keep_literals") == 0)
		return get_bool(j, "keep_literals", &c->keep_literals, err, errlen);
	if (strcmp(key, "service_accounts") == 0)
		return get_list(j, "service_accounts", &c->service_accounts, 1, 0, err, errlen);
	if (strcmp(key, "admin_users") == 0)
		return get_list(j, "admin_users", &c->admin_users, 1, 0, err, errlen);
	if (strcmp(key, "admin_hosts") == 0) {
		if (get_list(j, "admin_hosts", &c->admin_hosts, 1, 0, err, errlen) < 0)
			return -1;
		for (int i = 0; i < c->admin_hosts.n; i++)
			if (!cidr_ok(c->admin_hosts.v[i]))
				return fail(err, errlen, "admin_hosts[%d]: expected an IP address or CIDR", i);
		return 0;
	}
	if (strcmp(key, "admin_policy") == 0) {
		const char *v = cJSON_IsString(j) ? j->valuestring : "";
		if (strcmp(v, "report") == 0)
			c->admin_policy = AN_ADMIN_REPORT;
		else if (strcmp(v, "downgrade") == 0)
			c->admin_policy = AN_ADMIN_DOWNGRADE;
		else if (strcmp(v, "allow") == 0)
			c->admin_policy = AN_ADMIN_ALLOW;
		else
			return fail(err, errlen, "admin_policy: expected \"report\", \"downgrade\" or \"allow\"");
		return 0;
	}
	if (strcmp(key, "attribution") == 0)
		return set_attribution(c, j, err, errlen);
	if (strcmp(key, "thresholds") == 0)
		return set_thresholds(c, j, err, errlen);
	if (strcmp(key, "limits") == 0)
		return set_limits(c, j, err, errlen);
	if (strcmp(key, "sensitive") == 0)
		return set_sensitive(c, j, err, errlen);
	if (strcmp(key, "poolers") == 0)
		return set_poolers(c, j, err, errlen);
	if (strcmp(key, "baseline") == 0)
		return bl_config_set(c, j, err, errlen);
	if (strcmp(key, "severities") == 0 || strcmp(key, "detectors") == 0) {
		int sev = key[0] == 's';
		if (!cJSON_IsObject(j))
			return fail(err, errlen, "%s: expected an object", key);
		const cJSON *e;
		cJSON_ArrayForEach(e, j)
		{
			const char *k = e->string ? e->string : "";
			if (k[0] == '_')
				continue;
			int kind = kind_index(k);
			if (kind < 0)
				return fail(err, errlen, "%s.%.80s: unknown finding kind", key, k);
			if (!sev) {
				int on = 1;
				char path[128];
				snprintf(path, sizeof path, "detectors.%.80s", k);
				if (get_bool(e, path, &on, err, errlen) < 0)
					return -1;
				c->detector_off[kind] = !on;
				continue;
			}
			int found = -1;
			for (int s = 0; s <= AN_SEV_CRITICAL && cJSON_IsString(e); s++)
				if (strcmp(e->valuestring, sev_names[s]) == 0)
					found = s;
			if (found < 0)
				return fail(err, errlen,
					    "severities.%.80s: expected \"info\", \"low\", \"medium\", \"high\" or \"critical\"",
					    k);
			c->severity[kind] = (enum an_severity)found;
		}
		return 0;
	}
	return 1;
}
