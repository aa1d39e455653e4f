/* Records as JSON lines for SIEMs: dbtap's own format (v2) and OCSF 1.3. Field by field
 * in storage/SCHEMA.md (dbtap) and storage/OCSF.md (ocsf); machine-readable in
 * storage/schema/. Every string goes through jsonw (hostile bytes become U+FFFD). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "dbtap_version.h"
#include "evline.h"

#define OCSF_VERSION "1.3.0"

int evl_parse_format(const char *s, enum evl_format *f)
{
	if (s && strcmp(s, "dbtap") == 0)
		*f = EVL_DBTAP;
	else if (s && strcmp(s, "ocsf") == 0)
		*f = EVL_OCSF;
	else
		return -1;
	return 0;
}

/* ---- Community ID ---- */

static int addr_parse(const char *s, unsigned char *a)
{
	if (!s || !s[0])
		return 0;
	if (inet_pton(AF_INET, s, a) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, a) == 1)
		return 16;
	return 0;
}

int evl_community_id(const char *saddr, int sport, const char *daddr, int dport, int proto,
		     uint16_t seed, char *out, unsigned long outlen)
{
	unsigned char a[16], b[16];
	int la = addr_parse(saddr, a), lb = addr_parse(daddr, b);
	if (outlen)
		out[0] = 0;
	if (!la || la != lb || outlen < 32)
		return -1;
	/* the smaller (address, port) end goes first, so both directions hash alike */
	int c = memcmp(a, b, (size_t)la);
	int swap = c > 0 || (c == 0 && sport > dport);
	unsigned char buf[2 + 32 + 2 + 4], *p = buf;
	*p++ = (unsigned char)(seed >> 8);
	*p++ = (unsigned char)seed;
	memcpy(p, swap ? b : a, (size_t)la);
	p += la;
	memcpy(p, swap ? a : b, (size_t)la);
	p += la;
	*p++ = (unsigned char)proto;
	*p++ = 0;
	int p1 = swap ? dport : sport, p2 = swap ? sport : dport;
	*p++ = (unsigned char)(p1 >> 8);
	*p++ = (unsigned char)p1;
	*p++ = (unsigned char)(p2 >> 8);
	*p++ = (unsigned char)p2;
	unsigned char md[SHA_DIGEST_LENGTH];
	SHA1(buf, (size_t)(p - buf), md);
	memcpy(out, "1:", 2);
	EVP_EncodeBlock((unsigned char *)out + 2, md, SHA_DIGEST_LENGTH); /* 28 chars + NUL */
	return 0;
}

/* The flow's Community ID, remembered for the next line of the same flow. */
static const char *cid_of(struct evl_opts *o, const char *cip, int cport, const char *sip, int sport)
{
	if (!cip || !sip)
		return NULL;
	if (cport != o->cid_cport || sport != o->cid_sport || strcmp(cip, o->cid_cip) ||
	    strcmp(sip, o->cid_sip)) {
		if (strlen(cip) >= sizeof o->cid_cip || strlen(sip) >= sizeof o->cid_sip)
			return NULL; /* not an address */
		evl_community_id(cip, cport, sip, sport, 6, 0, o->cid, sizeof o->cid);
		strcpy(o->cid_cip, cip);
		strcpy(o->cid_sip, sip);
		o->cid_cport = cport;
		o->cid_sport = sport;
	}
	return o->cid[0] ? o->cid : NULL;
}

/* ---- helpers ---- */

/* A cJSON value written through jsonw (strings re-escaped, invalid UTF-8 replaced). */
static void jw_cjson(struct jw *w, const cJSON *v)
{
	if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		int obj = cJSON_IsObject(v), first = 1;
		jw_putc(w, obj ? '{' : '[');
		for (const cJSON *c = v->child; c; c = c->next) {
			if (!first)
				jw_putc(w, ',');
			first = 0;
			if (obj) {
				jw_str(w, c->string ? c->string : "");
				jw_putc(w, ':');
			}
			jw_cjson(w, c);
		}
		jw_putc(w, obj ? '}' : ']');
	} else if (cJSON_IsString(v)) {
		jw_str(w, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d)
			jw_int(w, (int64_t)d);
		else
			jw_printf(w, "%.17g", d);
	} else if (cJSON_IsBool(v)) {
		jw_puts(w, cJSON_IsTrue(v) ? "true" : "false");
	} else {
		jw_puts(w, "null");
	}
}

/* ,"key": the JSON text as a nested value (null for NULL; a string if it does not parse,
 * so nothing is lost). */
static void jw_kjson(struct jw *w, const char *key, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;
	if (v) {
		jw_printf(w, ",\"%s\":", key);
		jw_cjson(w, v);
		cJSON_Delete(v);
	} else {
		jw_kstr(w, key, text);
	}
}

static void jw_kbool(struct jw *w, const char *key, int v)
{
	jw_printf(w, ",\"%s\":%s", key, v ? "true" : "false");
}

static void jw_kstr_nn(struct jw *w, const char *key, const char *v)
{
	if (v && v[0])
		jw_kstr(w, key, v);
}

static int64_t ms(int64_t us)
{
	return us / 1000;
}

/* ---- dbtap v2 ---- */

static void d_head(struct jw *w, struct evl_opts *o, const char *type, int64_t ts)
{
	jw_puts(w, "{\"event_type\":");
	jw_str(w, type);
	jw_kint(w, "schema_version", EVL_SCHEMA_VERSION);
	jw_ktime(w, "timestamp", ts);
	jw_kstr(w, "sensor", o->sensor);
}

/* ids, ports, pids and intervals: 0 (or less) means unknown, written as null */
static void d_pos(struct jw *w, const char *key, int64_t v)
{
	if (v > 0)
		jw_kint(w, key, v);
	else
		jw_knull(w, key);
}

/* rows and durations: 0 is a value, negative means unknown */
static void d_count(struct jw *w, const char *key, int64_t v)
{
	if (v >= 0)
		jw_kint(w, key, v);
	else
		jw_knull(w, key);
}

/* The flow's protocol and both ends, in the order every record kind writes them. A session
 * or statement has a flow (any port, 0 too, is the flow's); a finding may sum up several
 * flows, and its port 0 means "not one port": null. */
static void d_port(struct jw *w, const char *key, int port, int flow)
{
	if (flow)
		jw_kint(w, key, port);
	else
		d_pos(w, key, port);
}

static void d_flow(struct jw *w, const char *protocol, const char *cip, int cport, const char *sip, int sport,
		   int flow)
{
	jw_kstr(w, "protocol", protocol);
	jw_kstr(w, "client_ip", cip);
	d_port(w, "client_port", cport, flow);
	jw_kstr(w, "server_ip", sip);
	d_port(w, "server_port", sport, flow);
}

static void d_run(struct jw *w, struct evl_opts *o, const struct rec_run *x)
{
	d_head(w, o, "run", x->ended_at ? x->ended_at : x->started_at);
	jw_kstr(w, "state", x->ended_at ? "end" : "start");
	jw_kint(w, "id", x->id);
	jw_ktime(w, "started_at", x->started_at);
	jw_ktime(w, "ended_at", x->ended_at);
	jw_kstr(w, "source", x->source);
	jw_kint(w, "packets", x->packets);
	jw_kint(w, "bytes", x->bytes);
	jw_kint(w, "kernel_drops", x->kernel_drops);
	jw_kint(w, "sensor_drops", x->sensor_drops);
	jw_kint(w, "streams", x->streams);
	jw_kstr(w, "version", x->version);
	jw_kjson(w, "config", x->config);
	jw_kjson(w, "drops", x->drops);
	jw_ktime(w, "sensor_started_at", x->sensor_started_at);
	jw_ktime(w, "sensor_stopped_at", x->sensor_stopped_at);
	jw_kstr(w, "status", x->status);
	jw_kstr(w, "error", x->error);
	jw_ktime(w, "stats_at", x->stats_at);
	d_pos(w, "stats_interval_s", x->stats_interval_s);
	jw_kjson(w, "stats", x->stats);
	d_pos(w, "pid", x->pid);
	jw_kstr(w, "host", x->host);
}

/* The members of a JSON object text, each as ,"key":value (nothing if it is not an object). */
static void jw_kmembers(struct jw *w, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;
	if (cJSON_IsObject(v))
		for (const cJSON *c = v->child; c; c = c->next) {
			jw_putc(w, ',');
			jw_str(w, c->string ? c->string : "");
			jw_putc(w, ':');
			jw_cjson(w, c);
		}
	cJSON_Delete(v);
}

/* The sensor's health every stats_interval_s: the counters flat after run_id. */
static void d_stats(struct jw *w, struct evl_opts *o, const struct rec_stats *x)
{
	d_head(w, o, "stats", x->ts);
	d_pos(w, "run_id", x->run_id);
	jw_ktime(w, "ts", x->ts);
	jw_kmembers(w, x->counters);
}

/* sessions.tls_decrypted: 1, or the reason it was not (text), or null (not TLS) */
static void tls_dec(struct jw *w, const char *v)
{
	if (!v)
		jw_knull(w, "tls_decrypted");
	else if (!strcmp(v, "1"))
		jw_kint(w, "tls_decrypted", 1);
	else
		jw_kstr(w, "tls_decrypted", v);
}

static void d_session(struct jw *w, struct evl_opts *o, const struct rec_session *x)
{
	d_head(w, o, "session", x->ts ? x->ts : x->started_at);
	jw_kstr(w, "state", x->state ? x->state : "update");
	jw_kstr(w, "community_id", cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port));
	jw_kint(w, "id", x->id);
	d_pos(w, "run_id", x->run_id);
	d_flow(w, x->protocol, x->client_ip, x->client_port, x->server_ip, x->server_port, 1);
	jw_ktime(w, "started_at", x->started_at);
	jw_ktime(w, "ended_at", x->ended_at);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
	jw_kjson(w, "client_info", x->client_info);
	jw_kstr(w, "server_version", x->server_version);
	jw_kint(w, "tls", x->tls ? 1 : 0);
	tls_dec(w, x->tls_decrypted);
	jw_kstr(w, "auth_method", x->auth_method);
	jw_kstr(w, "login", x->login);
	jw_kstr(w, "login_error", x->login_error);
	jw_kint(w, "midstream", x->midstream ? 1 : 0);
	jw_kstr(w, "end_reason", x->end_reason);
	jw_kint(w, "statements", x->statements);
	jw_kint(w, "errors", x->errors);
	jw_kint(w, "rows_returned", x->rows_returned);
	jw_kint(w, "bytes_to_server", x->bytes_to_server);
	jw_kint(w, "bytes_to_client", x->bytes_to_client);
	jw_kint(w, "gaps", x->gaps);
	jw_kint(w, "lost_bytes", x->lost_bytes);
	jw_kint(w, "resumed", x->resumed);
	jw_kint(w, "restored", x->restored);
	char pooler[64];
	jw_kstr(w, "pooler_role", rec_pooler_role(x));
	jw_kstr(w, "pooler", rec_pooler(x, pooler, sizeof pooler));
}

static void d_statement(struct jw *w, struct evl_opts *o, const struct rec_statement *x)
{
	d_head(w, o, "statement", x->ts);
	jw_kstr(w, "community_id", cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port));
	jw_kint(w, "id", x->id);
	d_pos(w, "session_id", x->session_id);
	jw_ktime(w, "ts", x->ts);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	jw_kstr(w, "verb", x->verb);
	jw_kstr(w, "fingerprint", x->fingerprint);
	jw_kstr(w, "sql", x->sql);
	jw_kjson(w, "params", x->params);
	jw_kstr(w, "outcome", x->outcome);
	jw_kstr(w, "error_code", x->error_code);
	d_count(w, "rows", x->rows);
	d_count(w, "duration_us", x->duration_us);
	d_flow(w, x->protocol, x->client_ip, x->client_port, x->server_ip, x->server_port, 1);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
	/* issue #21: a pooler's server leg: the client leg it forwards */
	d_pos(w, "via_session_id", x->via_session_id);
	jw_kstr(w, "pooler_join", x->pooler_join);
	jw_kstr(w, "via_client_ip", x->via_client_ip);
	d_pos(w, "via_client_port", x->via_client_port);
	jw_kstr(w, "via_application", x->via_application);
}

static void d_finding(struct jw *w, struct evl_opts *o, const struct rec_finding *x)
{
	d_head(w, o, "finding", x->last_seen > x->ts ? x->last_seen : x->ts);
	jw_kstr(w, "community_id", cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port));
	jw_kint(w, "id", x->id);
	d_pos(w, "run_id", x->run_id);
	d_pos(w, "session_id", x->session_id);
	d_pos(w, "statement_id", x->statement_id);
	jw_ktime(w, "ts", x->ts);
	jw_kstr(w, "kind", x->kind);
	jw_kstr(w, "severity", x->severity);
	d_flow(w, x->protocol, x->client_ip, x->client_port, x->server_ip, x->server_port, 0);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "database", x->database);
	jw_kstr(w, "application", x->application);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	jw_kstr(w, "fingerprint", x->fingerprint);
	jw_kstr(w, "sql", x->sql);
	jw_kstr(w, "summary", x->summary);
	jw_kjson(w, "evidence", x->evidence);
	/* a repeat (count > 1) updates the finding with this id: same id, newer count */
	jw_kint(w, "count", x->count > 0 ? x->count : 1);
	jw_ktime(w, "last_seen", x->last_seen ? x->last_seen : x->ts);
}

/* ---- OCSF 1.3 ---- */

struct o_class {
	int uid, category_uid;
	const char *name, *category;
};
static const struct o_class O_DATASTORE = { 6005, 6, "Datastore Activity", "Application Activity" };
static const struct o_class O_AUTH = { 3002, 3, "Authentication", "Identity & Access Management" };
static const struct o_class O_DETECTION = { 2004, 2, "Detection Finding", "Findings" };
static const struct o_class O_APP_LIFECYCLE = { 6002, 6, "Application Lifecycle", "Application Activity" };

/* finding severity (DESIGN.md) -> OCSF severity_id and its caption, syslog severity */
static const struct {
	const char *name;
	int ocsf;
	const char *caption;
	int syslog;
} sev_map[] = {
	{ "info", 1, "Informational", 6 }, { "low", 2, "Low", 5 },	      { "medium", 3, "Medium", 4 },
	{ "high", 4, "High", 3 },	    { "critical", 5, "Critical", 2 },
};

static int sev_index(const char *s)
{
	for (size_t i = 0; s && i < sizeof sev_map / sizeof sev_map[0]; i++)
		if (strcmp(s, sev_map[i].name) == 0)
			return (int)i;
	return -1;
}

/* "sensor:kind:id", the fleet-wide id of a dbtap record, as a JSON string */
static void o_uid(struct jw *w, struct evl_opts *o, const char *kind, int64_t id)
{
	char buf[64];
	snprintf(buf, sizeof buf, ":%s:%lld", kind, (long long)id);
	struct jw tmp = { 0 };
	jw_puts(&tmp, o->sensor ? o->sensor : "");
	jw_puts(&tmp, buf);
	jw_str(w, tmp.oom ? "" : tmp.buf);
	if (tmp.oom)
		w->oom = 1;
	jw_free(&tmp);
}

static void o_head(struct jw *w, struct evl_opts *o, const struct o_class *c, int activity_id,
		   const char *activity, int64_t ts_us, int sev_id, const char *sev, const char *kind,
		   int64_t id, const char *community_id)
{
	jw_printf(w, "{\"class_uid\":%d", c->uid);
	jw_kstr(w, "class_name", c->name);
	jw_kint(w, "category_uid", c->category_uid);
	jw_kstr(w, "category_name", c->category);
	jw_kint(w, "activity_id", activity_id);
	jw_kstr(w, "activity_name", activity);
	jw_kint(w, "type_uid", (int64_t)c->uid * 100 + activity_id);
	jw_printf(w, ",\"type_name\":\"%s: %s\"", c->name, activity);
	jw_kint(w, "time", ms(ts_us));
	jw_kint(w, "severity_id", sev_id);
	jw_kstr(w, "severity", sev);
	jw_puts(w, ",\"metadata\":{\"version\":\"" OCSF_VERSION "\",\"product\":{\"name\":\"dbtap\","
		   "\"vendor_name\":\"dbtap\",\"version\":\"" DBTAP_VERSION "\"}");
	jw_kstr(w, "log_name", kind);
	if (o->sensor) {
		jw_puts(w, ",\"uid\":");
		o_uid(w, o, kind, id);
		jw_puts(w, ",\"loggers\":[{\"name\":");
		jw_str(w, o->sensor);
		jw_puts(w, "}]");
	}
	jw_kstr_nn(w, "correlation_uid", community_id);
	jw_putc(w, '}');
}

static void o_endpoint(struct jw *w, const char *key, const char *ip, int port, const char *svc)
{
	jw_printf(w, ",\"%s\":{\"ip\":", key);
	jw_str(w, ip && ip[0] ? ip : "0.0.0.0");
	if (port > 0 && port <= 65535)
		jw_kint(w, "port", port);
	jw_kstr_nn(w, "svc_name", svc);
	jw_putc(w, '}');
}

static void o_database(struct jw *w, const char *protocol, const char *name, const char *sip, int sport)
{
	jw_puts(w, ",\"database\":{\"type_id\":1,\"type\":\"Relational\"");
	jw_kstr_nn(w, "name", name);
	char uid[128];
	snprintf(uid, sizeof uid, "%s://%s%s%s:%d", protocol && protocol[0] ? protocol : "db",
		 sip && strchr(sip, ':') ? "[" : "", sip ? sip : "", sip && strchr(sip, ':') ? "]" : "",
		 sport);
	jw_kstr(w, "uid", uid);
	jw_putc(w, '}');
}

static void o_actor(struct jw *w, const char *user, const char *app, int64_t session_id)
{
	jw_puts(w, ",\"actor\":{");
	int any = 0;
	if (user && user[0]) {
		jw_puts(w, "\"user\":{\"name\":");
		jw_str(w, user);
		jw_putc(w, '}');
		any = 1;
	}
	if (app && app[0]) {
		if (any)
			jw_putc(w, ',');
		jw_puts(w, "\"app_name\":");
		jw_str(w, app);
		any = 1;
	}
	if (session_id > 0 || !any) {
		if (any)
			jw_putc(w, ',');
		jw_printf(w, "\"session\":{\"uid\":\"%lld\"}", (long long)session_id);
	}
	jw_putc(w, '}');
}

/* verb -> Datastore Activity activity_id (OCSF 1.3 enum) */
static int o_verb_activity(const char *verb, const char **name)
{
	static const struct {
		const char *verb;
		int id;
	} map[] = {
		{ "SELECT", 1 }, { "SHOW", 1 },	    { "DESCRIBE", 1 }, { "DESC", 1 },	  { "EXPLAIN", 1 },
		{ "TABLE", 1 },	 { "VALUES", 1 },   { "FETCH", 1 },    { "HANDLER", 1 },  { "UPDATE", 2 },
		{ "ALTER", 2 },	 { "RENAME", 2 },   { "GRANT", 2 },    { "REVOKE", 2 },	  { "INSERT", 5 },
		{ "REPLACE", 5 }, { "COPY", 5 },    { "LOAD", 5 },     { "MERGE", 5 },	  { "UPSERT", 5 },
		{ "CREATE", 6 }, { "DELETE", 7 },   { "DROP", 7 },     { "TRUNCATE", 7 },
	};
	static const char *const names[] = { "Unknown", "Read", "Update", "Connect", "Query",
					     "Write", "Create", "Delete" };
	int id = 4; /* Query: anything else a client sends (BEGIN, SET, CALL, ...) */
	for (size_t i = 0; verb && i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(verb, map[i].verb) == 0) {
			id = map[i].id;
			break;
		}
	*name = names[id];
	return id;
}

static void o_statement(struct jw *w, struct evl_opts *o, const struct rec_statement *x)
{
	const char *an;
	int act = o_verb_activity(x->verb, &an);
	const char *cidv = cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port);
	o_head(w, o, &O_DATASTORE, act, an, x->ts, 1, "Informational", "statement", x->id, cidv);
	int st = x->outcome && !strcmp(x->outcome, "ok") ? 1 : x->outcome && !strcmp(x->outcome, "error") ? 2 : 0;
	jw_kint(w, "status_id", st);
	jw_kstr(w, "status", st == 1 ? "Success" : st == 2 ? "Failure" : "Unknown");
	jw_kstr_nn(w, "status_code", x->error_code);
	if (x->duration_us >= 0)
		jw_kint(w, "duration", ms(x->duration_us));
	o_actor(w, x->end_user ? x->end_user : x->db_user, x->application, x->session_id);
	o_endpoint(w, "src_endpoint", x->client_ip, x->client_port, NULL);
	o_endpoint(w, "dst_endpoint", x->server_ip, x->server_port, x->protocol);
	o_database(w, x->protocol, x->database, x->server_ip, x->server_port);
	jw_kint(w, "type_id", 1);
	jw_kstr(w, "type", "Database");
	if (x->sql) {
		jw_puts(w, ",\"query_info\":{\"query_string\":");
		jw_str(w, x->sql);
		jw_kstr_nn(w, "uid", x->fingerprint);
		jw_putc(w, '}');
	}
	jw_puts(w, ",\"unmapped\":{\"sensor\":");
	jw_str(w, o->sensor);
	jw_kint(w, "statement_id", x->id);
	jw_kint(w, "session_id", x->session_id);
	jw_kstr(w, "verb", x->verb);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	if (x->rows >= 0)
		jw_kint(w, "rows", x->rows);
	if (x->params)
		jw_kjson(w, "params", x->params);
	if (x->pooler_join) {
		jw_kstr(w, "pooler_join", x->pooler_join);
		if (x->via_session_id > 0)
			jw_kint(w, "via_session_id", x->via_session_id);
		jw_kstr_nn(w, "via_client_ip", x->via_client_ip);
		if (x->via_client_port > 0)
			jw_kint(w, "via_client_port", x->via_client_port);
		jw_kstr_nn(w, "via_application", x->via_application);
	}
	jw_kstr(w, "community_id", cidv);
	jw_putc(w, '}');
}

static int o_session(struct jw *w, struct evl_opts *o, const struct rec_session *x)
{
	const char *state = x->state ? x->state : "update";
	int logon = !strcmp(state, "login"), logoff = !strcmp(state, "end");
	int failed = x->login && !strcmp(x->login, "failed");
	if (!logon && !(logoff && !failed))
		return 0; /* a failed login's end adds nothing; starts and updates are dbtap's */
	const char *cidv = cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port);
	int ok = x->login && !strcmp(x->login, "ok");
	o_head(w, o, &O_AUTH, logon ? 1 : 2, logon ? "Logon" : "Logoff", x->ts ? x->ts : x->started_at,
	       logon && failed ? 3 : 1, logon && failed ? "Medium" : "Informational", "session", x->id, cidv);
	int st = ok ? 1 : failed ? 2 : 0;
	jw_kint(w, "status_id", st);
	jw_kstr(w, "status", st == 1 ? "Success" : st == 2 ? "Failure" : "Unknown");
	jw_kstr_nn(w, "status_detail", x->login_error);
	jw_puts(w, ",\"user\":{\"name\":");
	jw_str(w, x->db_user ? x->db_user : "");
	jw_putc(w, '}');
	if (x->auth_method) {
		jw_kstr(w, "auth_protocol", x->auth_method);
		jw_kint(w, "auth_protocol_id", 99);
		jw_kbool(w, "is_cleartext", !x->tls && !strcmp(x->auth_method, "cleartext"));
	} else {
		jw_kint(w, "auth_protocol_id", 0);
	}
	jw_kbool(w, "is_remote", 1);
	jw_kint(w, "logon_type_id", 3);
	jw_kstr(w, "logon_type", "Network");
	o_endpoint(w, "src_endpoint", x->client_ip, x->client_port, NULL);
	o_endpoint(w, "dst_endpoint", x->server_ip, x->server_port, x->protocol);
	jw_puts(w, ",\"service\":{\"name\":");
	jw_str(w, x->protocol && x->protocol[0] ? x->protocol : "database");
	jw_kstr_nn(w, "version", x->server_version);
	jw_putc(w, '}');
	jw_printf(w, ",\"session\":{\"uid\":\"%lld\"", (long long)x->id);
	jw_kint(w, "created_time", ms(x->started_at));
	jw_kbool(w, "is_remote", 1);
	jw_putc(w, '}');
	if (x->application && x->application[0]) {
		jw_puts(w, ",\"actor\":{\"app_name\":");
		jw_str(w, x->application);
		jw_putc(w, '}');
	}
	if (logoff) {
		jw_kint(w, "start_time", ms(x->started_at));
		if (x->ended_at)
			jw_kint(w, "end_time", ms(x->ended_at));
	}
	jw_puts(w, ",\"unmapped\":{\"sensor\":");
	jw_str(w, o->sensor);
	jw_kint(w, "session_id", x->id);
	jw_kstr(w, "database", x->database);
	jw_kint(w, "tls", x->tls ? 1 : 0);
	tls_dec(w, x->tls_decrypted);
	jw_kint(w, "midstream", x->midstream ? 1 : 0);
	if (logoff) {
		jw_kstr(w, "end_reason", x->end_reason);
		jw_kint(w, "statements", x->statements);
		jw_kint(w, "errors", x->errors);
		jw_kint(w, "rows_returned", x->rows_returned);
		jw_kint(w, "bytes_to_server", x->bytes_to_server);
		jw_kint(w, "bytes_to_client", x->bytes_to_client);
	}
	jw_kjson(w, "client_info", x->client_info);
	jw_kstr(w, "community_id", cidv);
	jw_putc(w, '}');
	return 1;
}

/* The health record as Application Lifecycle (6002), activity Other named "Stats": the
 * sensor (app) reports on itself; the counters go to unmapped as in the dbtap format. */
static void o_stats(struct jw *w, struct evl_opts *o, const struct rec_stats *x)
{
	o_head(w, o, &O_APP_LIFECYCLE, 99, "Stats", x->ts, 1, "Informational", "stats", ms(x->ts), NULL);
	jw_puts(w, ",\"app\":{\"name\":\"dbtap\",\"vendor_name\":\"dbtap\",\"version\":\"" DBTAP_VERSION "\"}");
	jw_kint(w, "status_id", 1);
	jw_kstr(w, "status", "Success");
	jw_puts(w, ",\"unmapped\":{\"sensor\":");
	jw_str(w, o->sensor);
	jw_kint(w, "run_id", x->run_id);
	jw_kmembers(w, x->counters);
	jw_putc(w, '}');
}

/* finding kind -> MITRE ATT&CK technique and tactic, where one fits */
static const struct {
	const char *kind, *tech, *tech_name, *tactic, *tactic_name;
	int behavioral; /* analytic type: 2 Behavioral (the learned baseline) or 1 Rule */
} attack_map[] = {
	{ "sql_injection", "T1190", "Exploit Public-Facing Application", "TA0001", "Initial Access", 0 },
	{ "auth_bruteforce", "T1110", "Brute Force", "TA0006", "Credential Access", 0 },
	{ "error_burst", NULL, NULL, NULL, NULL, 0 },
	{ "privilege_change", "T1098", "Account Manipulation", "TA0003", "Persistence", 0 },
	{ "destructive_statement", "T1485", "Data Destruction", "TA0040", "Impact", 0 },
	{ "bulk_read", "T1213", "Data from Information Repositories", "TA0009", "Collection", 1 },
	{ "data_export", "T1048", "Exfiltration Over Alternative Protocol", "TA0010", "Exfiltration", 0 },
	{ "new_query_shape", NULL, NULL, NULL, NULL, 1 },
	{ "new_client", "T1078", "Valid Accounts", "TA0001", "Initial Access", 1 },
	{ "new_application", "T1078", "Valid Accounts", "TA0001", "Initial Access", 1 },
	{ "off_hours", "T1078", "Valid Accounts", "TA0001", "Initial Access", 1 },
	{ "cleartext_password", "T1552", "Unsecured Credentials", "TA0006", "Credential Access", 0 },
	{ "sensitive_access", "T1213", "Data from Information Repositories", "TA0009", "Collection", 0 },
	{ "protocol_anomaly", NULL, NULL, NULL, NULL, 0 },
	{ "baseline_full", NULL, NULL, NULL, NULL, 0 },
};

static void o_finding(struct jw *w, struct evl_opts *o, const struct rec_finding *x, int si)
{
	const char *cidv = cid_of(o, x->client_ip, x->client_port, x->server_ip, x->server_port);
	int sev_id = si >= 0 ? sev_map[si].ocsf : 0;
	int64_t last = x->last_seen > x->ts ? x->last_seen : x->ts;
	int repeat = x->count > 1; /* the same finding again: an Update of the same uid */
	o_head(w, o, &O_DETECTION, repeat ? 2 : 1, repeat ? "Update" : "Create", last, sev_id,
	       si >= 0 ? sev_map[si].caption : "Unknown", "finding", x->id, cidv);
	jw_kint(w, "count", x->count > 0 ? x->count : 1);
	jw_kint(w, "status_id", 1);
	jw_kstr(w, "status", "New");
	jw_kstr(w, "message", x->summary);
	int ai = -1;
	for (size_t i = 0; x->kind && i < sizeof attack_map / sizeof attack_map[0]; i++)
		if (!strcmp(x->kind, attack_map[i].kind))
			ai = (int)i;
	jw_puts(w, ",\"finding_info\":{");
	jw_puts(w, "\"uid\":");
	o_uid(w, o, "finding", x->id);
	jw_kstr(w, "title", x->summary ? x->summary : x->kind);
	jw_puts(w, ",\"types\":[");
	jw_str(w, x->kind);
	jw_putc(w, ']');
	jw_kint(w, "created_time", ms(x->ts));
	jw_kint(w, "first_seen_time", ms(x->ts));
	jw_kint(w, "last_seen_time", ms(last));
	if (repeat)
		jw_kint(w, "modified_time", ms(last));
	int beh = ai >= 0 && attack_map[ai].behavioral;
	jw_puts(w, ",\"analytic\":{\"name\":");
	jw_str(w, x->kind);
	jw_kstr(w, "uid", x->kind);
	jw_kint(w, "type_id", beh ? 2 : 1);
	jw_kstr(w, "type", beh ? "Behavioral" : "Rule");
	jw_putc(w, '}');
	if (ai >= 0 && attack_map[ai].tech)
		jw_printf(w, ",\"attacks\":[{\"technique\":{\"uid\":\"%s\",\"name\":\"%s\"},"
			     "\"tactic\":{\"uid\":\"%s\",\"name\":\"%s\"}}]",
			  attack_map[ai].tech, attack_map[ai].tech_name, attack_map[ai].tactic,
			  attack_map[ai].tactic_name);
	if (x->statement_id > 0) {
		jw_puts(w, ",\"related_events\":[{\"uid\":");
		o_uid(w, o, "statement", x->statement_id);
		jw_puts(w, "}]");
	}
	jw_putc(w, '}');
	/* the statement (or session) the finding is about */
	jw_puts(w, ",\"evidences\":[{\"data\":{");
	jw_printf(w, "\"session_id\":%lld", (long long)x->session_id);
	if (x->statement_id > 0) {
		jw_kint(w, "statement_id", x->statement_id);
		jw_puts(w, ",\"statement_uid\":");
		o_uid(w, o, "statement", x->statement_id);
	}
	jw_kstr(w, "fingerprint", x->fingerprint);
	jw_kstr(w, "sql", x->sql);
	jw_kjson(w, "detail", x->evidence);
	jw_putc(w, '}');
	o_actor(w, x->end_user ? x->end_user : x->db_user, x->application, x->session_id);
	if (x->client_ip)
		o_endpoint(w, "src_endpoint", x->client_ip, x->client_port, NULL);
	if (x->server_ip) {
		o_endpoint(w, "dst_endpoint", x->server_ip, x->server_port, x->protocol);
		o_database(w, x->protocol, x->database, x->server_ip, x->server_port);
	}
	jw_puts(w, "}]");
	jw_puts(w, ",\"unmapped\":{\"sensor\":");
	jw_str(w, o->sensor);
	jw_kint(w, "finding_id", x->id);
	jw_kstr(w, "kind", x->kind);
	jw_kstr(w, "severity", x->severity);
	jw_kstr(w, "db_user", x->db_user);
	jw_kstr(w, "end_user", x->end_user);
	jw_kstr(w, "end_user_source", x->end_user_source);
	jw_kstr(w, "community_id", cidv);
	jw_putc(w, '}');
}

int evl_format_rec(struct jw *w, struct evl_opts *o, const struct rec *r, int *sev)
{
	int s = 6, wrote = 1;
	size_t mark = w->len;
	switch (r->type) {
	case REC_RUN:
		if (o->format == EVL_OCSF)
			wrote = 0; /* a sensor's own bookkeeping: no OCSF class fits */
		else
			d_run(w, o, r->u.run);
		break;
	case REC_SESSION:
		if (r->u.session->login && !strcmp(r->u.session->login, "failed") && r->u.session->state &&
		    !strcmp(r->u.session->state, "login"))
			s = 5; /* notice */
		if (o->format == EVL_OCSF)
			wrote = o_session(w, o, r->u.session);
		else
			d_session(w, o, r->u.session);
		break;
	case REC_STATEMENT:
		if (o->format == EVL_OCSF)
			o_statement(w, o, r->u.statement);
		else
			d_statement(w, o, r->u.statement);
		break;
	case REC_FINDING: {
		int si = sev_index(r->u.finding->severity);
		s = si >= 0 ? sev_map[si].syslog : 4;
		if (o->format == EVL_OCSF)
			o_finding(w, o, r->u.finding, si);
		else
			d_finding(w, o, r->u.finding);
		break;
	}
	case REC_STATS:
		if (o->format == EVL_OCSF)
			o_stats(w, o, r->u.stats);
		else
			d_stats(w, o, r->u.stats);
		break;
	case REC_BASELINE:
	case REC_STATE: /* the baseline and saved session state live in the database only */
		wrote = 0;
		break;
	default:
		return -EINVAL;
	}
	if (wrote)
		jw_putc(w, '}');
	if (w->oom) {
		w->oom = 0;
		w->len = mark;
		return -ENOMEM;
	}
	if (sev)
		*sev = s;
	return wrote;
}
