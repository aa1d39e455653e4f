/* Loading the JSON configuration (DESIGN.md §5): the application's keys (ports, capture,
 * output) are declared here, the analyzer's in analyzer/config.c and analyzer/baseline.c;
 * one loader (analyzer/cfgkey.c) validates the file against all of them. A wrong key is an
 * error with its path, never ignored. */
#include "config.h"
#include "cfgkey.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbtap_config_defaults(struct dbtap_config *c)
{
	memset(c, 0, sizeof(*c));
	cap_config_defaults(&c->cap);
	an_config_defaults(&c->an);
	c->batch_rows = 5000;
	c->spill_max_mb = 256;
}

void dbtap_config_free(struct dbtap_config *c)
{
	cap_config_free(&c->cap);
	an_config_free(&c->an);
	free(c->json_path);
	free(c->json_format);
	free(c->sensor);
	free(c->syslog);
	free(c->spill);
	c->spill = NULL;
	free(c->effective);
	c->json_path = c->effective = NULL;
	c->json_format = c->sensor = c->syslog = NULL;
}

/* "ports.<protocol>": a decoder's server ports */
static int set_ports(void *base, const struct ck_key *k, const void *item, const char *path, char *err, size_t len)
{
	struct dbtap_config *c = base;
	const cJSON *v = item, *e;
	(void)k;
	int d = proto_index(proto_by_name(strrchr(path, '.') + 1)), n = 0;
	if (d < 0) {
		snprintf(err, len, "config: %s: unknown key (a protocol name)", path);
		return -1;
	}
	if (!cJSON_IsArray(v)) {
		snprintf(err, len, "config: %s: expected an array of port numbers", path);
		return -1;
	}
	cJSON_ArrayForEach(e, v)
	{
		if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 65535 ||
		    e->valuedouble != (double)(int)e->valuedouble) {
			snprintf(err, len, "config: %s[%d]: expected a port number 1-65535", path, n);
			return -1;
		}
		if (n >= CAP_MAX_PORTS) {
			snprintf(err, len, "config: %s: at most %d ports", path, CAP_MAX_PORTS);
			return -1;
		}
		c->cap.ports[d].port[n++] = e->valueint;
	}
	c->cap.ports[d].n = n;
	return 0;
}

static void *show_ports(const void *base, const struct ck_key *k)
{
	const struct dbtap_config *c = base;
	cJSON *o = cJSON_CreateObject();
	(void)k;
	for (int i = 0; proto_registry[i]; i++) {
		cJSON *a = cJSON_AddArrayToObject(o, proto_registry[i]->name);
		for (int j = 0; j < c->cap.ports[i].n; j++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(c->cap.ports[i].port[j]));
	}
	return o;
}

static int set_checksum_bypass(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
			       size_t len)
{
	struct dbtap_config *c = base;
	const cJSON *e = item, *s;
	(void)k;
	if (!cJSON_IsArray(e)) {
		snprintf(err, len, "config: %s: expected an array of IPv4 CIDRs or \"all\"", path);
		return -1;
	}
	for (int i = 0; i < c->cap.n_checksum_bypass; i++)
		free(c->cap.checksum_bypass[i]);
	c->cap.n_checksum_bypass = 0;
	cJSON_ArrayForEach(s, e)
	{
		if (!cJSON_IsString(s) || c->cap.n_checksum_bypass >= CAP_MAX_CIDRS) {
			snprintf(err, len, "config: %s[%d]: expected a CIDR string (at most %d)", path,
				 c->cap.n_checksum_bypass, CAP_MAX_CIDRS);
			return -1;
		}
		uint32_t net, mask;
		if (cap_parse_cidr(s->valuestring, &net, &mask) != 0) {
			snprintf(err, len, "config: %s[%d]: '%s' is not an IPv4 CIDR or \"all\"", path,
				 c->cap.n_checksum_bypass, s->valuestring);
			return -1;
		}
		c->cap.checksum_bypass[c->cap.n_checksum_bypass++] = strdup(s->valuestring);
	}
	return 0;
}

struct host_os_entry {
	struct dbtap_config *c;
	const cJSON *hosts, *os;
};

static int host_os_member(void *ctx, const char *k, const char *p, const void *v, char *err, size_t len)
{
	struct host_os_entry *h = ctx;
	if (strcmp(k, "hosts") == 0)
		h->hosts = v;
	else if (strcmp(k, "os") == 0)
		h->os = v;
	else
		return ck_fail(err, len, "%s: unknown key (hosts, os)", p);
	return 0;
}

static int host_os_entry(void *ctx, int i, const char *path, const void *o, char *err, size_t len)
{
	struct host_os_entry h = { ctx, NULL, NULL };
	struct dbtap_config *c = h.c;
	(void)i;
	if (ck_members(o, path, host_os_member, &h, err, len) != 0)
		return -1;
	int os = -1;
	for (int j = 0; h.os && cJSON_IsString(h.os) && cap_os_names[j]; j++)
		if (strcmp(h.os->valuestring, cap_os_names[j]) == 0)
			os = j;
	if (os < 0) {
		char names[96] = "";
		for (int j = 0; cap_os_names[j]; j++)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? ", " : "", cap_os_names[j]);
		return ck_fail(err, len, "%s.os: expected one of %s", path, names);
	}
	if (!cJSON_IsArray(h.hosts) || !h.hosts->child)
		return ck_fail(err, len, "%s.hosts: expected a non-empty array of IPv4 or IPv6 CIDRs", path);
	int j = 0;
	for (const cJSON *x = h.hosts->child; x; x = x->next, j++) {
		if (c->cap.n_host_os >= CAP_MAX_OS_HOSTS)
			return ck_fail(err, len, "capture.host_os_policy: at most %d CIDRs in all", CAP_MAX_OS_HOSTS);
		struct cap_host_os *ho = &c->cap.host_os[c->cap.n_host_os];
		if (!cJSON_IsString(x) || cap_parse_host_cidr(x->valuestring, ho) != 0)
			return ck_fail(err, len, "%s.hosts[%d]: expected an IPv4 or IPv6 CIDR such as \"10.0.0.0/8\"", path, j);
		ho->os = (uint8_t)os;
		c->cap.n_host_os++;
	}
	return 0;
}

/* [{"hosts": [CIDR, ...], "os": NAME}, ...]: each server address's reassembly policy */
static int set_host_os(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
		       size_t len)
{
	struct dbtap_config *c = base;
	(void)k;
	c->cap.n_host_os = 0;
	return ck_objects(item, path, "{\"hosts\": [CIDRs], \"os\": name}", CAP_MAX_OS_HOSTS, host_os_entry, c, err,
			  len);
}

/* a path or an array of paths: key logs are secrets, never echoed */
static int set_tls_keylog(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
			  size_t len)
{
	struct dbtap_config *c = base;
	const cJSON *e = item;
	(void)k;
	for (int i = 0; i < c->cap.n_tls_keylog; i++)
		free(c->cap.tls_keylog[i]);
	c->cap.n_tls_keylog = 0;
	const cJSON *s = cJSON_IsString(e) ? e : cJSON_IsArray(e) ? e->child : NULL;
	if (!s && !cJSON_IsArray(e)) {
		snprintf(err, len, "config: %s: expected a path or an array of paths", path);
		return -1;
	}
	for (; s; s = cJSON_IsString(e) ? NULL : s->next) {
		if (!cJSON_IsString(s) || !s->valuestring[0] || c->cap.n_tls_keylog >= CAP_MAX_KEYLOGS) {
			snprintf(err, len, "config: %s[%d]: expected a path (at most %d)", path, c->cap.n_tls_keylog,
				 CAP_MAX_KEYLOGS);
			return -1;
		}
		c->cap.tls_keylog[c->cap.n_tls_keylog++] = strdup(s->valuestring);
	}
	return 0;
}

/* decoder_thread / analyzer_thread: true or false; absent means "by CPU count" (-1) */
static int set_thread(void *base, const struct ck_key *k, const void *item, const char *path, char *err, size_t len)
{
	const cJSON *v = item;
	if (!cJSON_IsBool(v)) {
		snprintf(err, len, "config: %s: expected true or false", path);
		return -1;
	}
	*(int *)((char *)base + k->off) = cJSON_IsTrue(v);
	return 0;
}

static int set_retention(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
			 size_t len)
{
	struct dbtap_config *c = base;
	const cJSON *e = item;
	(void)k;
	if (!cJSON_IsString(e) || report_parse_duration(e->valuestring, &c->retention_us) != 0 || c->retention_us <= 0) {
		snprintf(err, len, "config: %s: expected a duration such as \"30d\"", path);
		return -1;
	}
	return 0;
}

static const char *check_json_format(const char *s)
{
	return strcmp(s, "dbtap") && strcmp(s, "ocsf") ? "expected \"dbtap\" or \"ocsf\"" : NULL;
}

#define F(field) offsetof(struct dbtap_config, field)
#define GROUP(p, doc) { p, CK_GROUP, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define BOOL(p, f, doc) { p, CK_BOOL, F(f), 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define INT(p, f, lo, hi, doc) { p, CK_INT, F(f), (int)sizeof(((struct dbtap_config *)0)->f), lo, hi, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define STR(p, f, check, ex, doc) { p, CK_STR, F(f), 0, 0, 0, NULL, 0, check, NULL, NULL, NULL, ex, doc }
#define CUSTOM(p, f, set, show, def, ex, doc) { p, CK_CUSTOM, F(f), 0, 0, 0, NULL, 0, NULL, set, show, def, ex, doc }

static const struct ck_key app_keys[] = {
	GROUP("ports",
	      "TCP ports per protocol. A flow on another port is decoded too when its first bytes are unmistakably one "
	      "of the protocols (capture.probe_other_ports)."),
	CUSTOM("ports.*", cap, set_ports, show_ports, NULL, NULL,
	       "One protocol's server ports (a decoder's name: an array of 1 to 16 port numbers)."),
	GROUP("capture", "Packets to streams (capture/)."),
	BOOL("capture.probe_other_ports", cap.probe_other_ports,
	     "Decode flows on other ports whose first bytes are unmistakably one of the protocols."),
	INT("capture.max_flows", cap.max_flows, 16, 4000000, "Concurrent TCP flows (about 10 KiB each while open)."),
	INT("capture.max_held_mb", cap.max_held_mb, 1, 1 << 20,
	    "What all flows together may hold of messages still arriving, and separately of segments behind a hole; "
	    "beyond it they are dropped and counted."),
	INT("capture.idle_timeout_s", cap.idle_timeout_s, 1, 30 * 86400,
	    "A flow idle this long (packet time) is freed; its session is parked, not ended (limits.max_parked)."),
	INT("capture.gap_timeout_ms", cap.gap_timeout_ms, 1, 3600000,
	    "How long a hole may hold a direction before it is skipped as a gap when the receiver says nothing (a "
	    "one-way capture): by default as long as a Linux sender keeps retransmitting (RTO 200 ms doubling to "
	    "120 s, 15 retries: 924.6 s), since the server keeps out-of-order data while the connection lives. "
	    "Sooner when it is proven unfillable: the flow sent nothing for 120 s (the longest retransmission "
	    "interval), idles out, or the capture ends; or when max_held_mb is reached. While the receiver answers "
	    "with duplicate ACKs dbtap waits as the server does (bounded by max_held_mb), and it skips the hole at "
	    "once when the receiver acknowledges past it."),
	INT("capture.gap_max_packets", cap.gap_max_packets, 1, 255,
	    "Deprecated, accepted and ignored: a count of segments behind a hole proves nothing (a sender sends a "
	    "window's worth before it retransmits); memory bounds them instead."),
	INT("capture.ipv6_addresses", cap.v6_map_size, 16, 1 << 26, "Distinct IPv6 addresses tracked."),
	INT("capture.kernel_buffer_mb", cap.kernel_buffer_mb, 1, 4096, "Kernel capture buffer (live)."),
	INT("capture.stats_interval_s", cap.stats_interval_s, 0, 86400, "Seconds between stats records; 0 = off."),
	CUSTOM("capture.tls_keylog", cap, set_tls_keylog, NULL, "none: TLS sessions stay opaque", NULL,
	       "A path or an array of paths: NSS key log files, FIFOs or directories of *.keys, followed as they "
	       "grow, whose keys decrypt TLS sessions (key logs are secrets: see README)."),
	INT("capture.tls_key_wait_s", cap.tls_key_wait_s, 0, 3600,
	    "Packet seconds a TLS session's records wait for a key not yet logged."),
	CUSTOM("capture.checksum_bypass", cap, set_checksum_bypass, NULL,
	       "every packet of a file; live, 127.0.0.0/8 plus the machine's own IPv4 addresses, whose outgoing "
	       "packets carry offloaded checksums",
	       "[\"127.0.0.0/8\"]",
	       "IPv4 CIDRs, or [\"all\"], whose packets skip libnids' checksum check (the example turns the check back "
	       "on for files)."),
	CUSTOM("capture.host_os_policy", cap, set_host_os, NULL, "linux for every server",
	       "[{\"hosts\": [\"10.20.0.0/16\", \"2001:db8:20::/48\"], \"os\": \"windows\"}]",
	       "The TCP reassembly policy of servers by address, as the server's OS applies it when segments "
	       "overlap (the first entry whose CIDR holds the server wins): linux (2.4 and later), bsd (FreeBSD, "
	       "NetBSD, OpenBSD, macOS), windows (2000, XP, 2003), vista, solaris, first (the first copy always "
	       "wins) or last (the last copy always wins). Only the overlap rules differ; RST, ACK and TTL "
	       "checks stay Linux's (see capture/tcpnorm.c)."),
	CUSTOM("capture.decoder_thread", cap.decoder_thread, set_thread, NULL,
	       "true when the machine has more than one CPU", NULL,
	       "Run the decoders on their own thread: libpcap and libnids on one core, the decoders on another."),
	CUSTOM("capture.analyzer_thread", cap.analyzer_thread, set_thread, NULL,
	       "true when the machine has more than two CPUs", NULL,
	       "Run analysis and output on a third core; else they run on the decoders' thread."),
	GROUP("output", "Where records go besides the SQLite database (-d)."),
	STR("output.json", json_path, NULL, "\"/var/log/dbtap/events.json\"",
	    "Also write every record as JSON lines to this file ('-' = stdout; same as --json). Its folder must "
	    "exist: /var/log/dbtap is made by the tmpfiles.d entry that meson install adds, and run --check-config "
	    "says when a folder is missing."),
	STR("output.json_format", json_format, check_json_format, NULL,
	    "'dbtap' (default) or 'ocsf' (same as --json-format)."),
	STR("output.sensor", sensor, NULL, NULL,
	    "This sensor's name on runs rows, JSON lines and syslog messages (same as --sensor; default: the host "
	    "name)."),
	STR("output.syslog", syslog, NULL, NULL,
	    "Also send every line to unix:PATH, udp://HOST:PORT or tcp://HOST:PORT (same as --syslog)."),
	INT("output.batch_rows", batch_rows, 1, 1000000, "Rows per SQLite transaction."),
	CUSTOM("output.retention", retention_us, set_retention, NULL, "keep everything", "\"30d\"",
	       "At start, statements older than this (wall clock) are pruned, keeping sessions, findings and the "
	       "baseline."),
	STR("output.spill", spill, NULL, NULL,
	    "While the database cannot be written (its disk is full), batches go to this SQLite file (put it on "
	    "another file system) and are replayed into the database, in order, once it can be written again, or "
	    "by the next start. Without it the newest rows are kept in memory and the rest counted in db_dropped."),
	INT("output.spill_max_mb", spill_max_mb, 1, 1 << 20,
	    "The spill file's cap; past it the newest rows are kept and the rest counted in db_dropped."),
};

int dbtap_config_tables(struct dbtap_config *c, struct ck_table *out)
{
	out[0] = (struct ck_table){ app_keys, (int)(sizeof app_keys / sizeof app_keys[0]), c };
	return 1 + an_config_tables(&c->an, out + 1);
}

static char *slurp(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			if (cap >= (16u << 20)) {
				snprintf(err, errlen, "%s: larger than 16 MiB", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		buf = NULL;
	} else if (buf) {
		buf[n] = 0;
	} else {
		snprintf(err, errlen, "%s: out of memory", path);
	}
	fclose(f);
	return buf;
}

int dbtap_config_load(struct dbtap_config *c, const char *path, char *err, size_t errlen)
{
	char *text = slurp(path, err, errlen);
	if (!text)
		return -1;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
	if (!root) {
		long off = end ? (long)(end - text) : -1;
		snprintf(err, errlen, "%s: not valid JSON (near byte %ld)", path, off);
		free(text);
		return -1;
	}
	char sub[512] = "";
	struct ck_table t[DBTAP_CFG_TABLES];
	int rc = ck_load(t, dbtap_config_tables(c, t), root, sub, sizeof sub);
	if (rc == 0) {
		char *compact = cJSON_PrintUnformatted(root);
		free(c->effective);
		c->effective = compact;
	} else {
		snprintf(err, errlen, "%s: %s", path, sub);
	}
	cJSON_Delete(root);
	free(text);
	return rc;
}
