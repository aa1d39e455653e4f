/* Loading the JSON configuration (DESIGN.md §5): capture's own keys here, the rest
 * handed to the analyzer. A wrong key is an error with its path, never ignored. */
#include "config.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbtap_config_defaults(struct dbtap_config *c)
{
	memset(c, 0, sizeof(*c));
	cap_config_defaults(&c->cap);
	an_config_defaults(&c->an);
	c->batch_rows = 5000;
}

void dbtap_config_free(struct dbtap_config *c)
{
	cap_config_free(&c->cap);
	an_config_free(&c->an);
	free(c->json_path);
	free(c->json_format);
	free(c->sensor);
	free(c->syslog);
	free(c->effective);
	c->json_path = c->effective = NULL;
	c->json_format = c->sensor = c->syslog = NULL;
}

static int port_list(const cJSON *v, const char *path, int *out, int *n, char *err, size_t errlen)
{
	if (!cJSON_IsArray(v)) {
		snprintf(err, errlen, "config: %s: expected an array of port numbers", path);
		return -1;
	}
	*n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 65535 ||
		    e->valuedouble != (double)(int)e->valuedouble) {
			snprintf(err, errlen, "config: %s[%d]: expected a port number 1-65535", path, *n);
			return -1;
		}
		if (*n >= CAP_MAX_PORTS) {
			snprintf(err, errlen, "config: %s: at most %d ports", path, CAP_MAX_PORTS);
			return -1;
		}
		out[(*n)++] = e->valueint;
	}
	return 0;
}

static int int_key(const cJSON *v, const char *path, int lo, int hi, int *out, char *err, size_t errlen)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
	    v->valuedouble != (double)(int)v->valuedouble) {
		snprintf(err, errlen, "config: %s: expected an integer from %d to %d", path, lo, hi);
		return -1;
	}
	*out = v->valueint;
	return 0;
}

static int bool_key(const cJSON *v, const char *path, int *out, char *err, size_t errlen)
{
	if (!cJSON_IsBool(v)) {
		snprintf(err, errlen, "config: %s: expected true or false", path);
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

static int load_ports(struct dbtap_config *c, const cJSON *v, char *err, size_t errlen)
{
	if (!cJSON_IsObject(v)) {
		snprintf(err, errlen, "config: ports: expected an object");
		return -1;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (e->string[0] == '_') /* a comment, as everywhere in the file */
			continue;
		char path[128];
		snprintf(path, sizeof path, "ports.%s", e->string);
		int rc, d = proto_index(proto_by_name(e->string));
		if (d >= 0) {
			rc = port_list(e, path, c->cap.ports[d].port, &c->cap.ports[d].n, err, errlen);
		} else {
			snprintf(err, errlen, "config: %s: unknown key (a protocol name)", path);
			rc = -1;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int load_capture(struct dbtap_config *c, const cJSON *v, char *err, size_t errlen)
{
	if (!cJSON_IsObject(v)) {
		snprintf(err, errlen, "config: capture: expected an object");
		return -1;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (e->string[0] == '_')
			continue;
		char path[128];
		snprintf(path, sizeof path, "capture.%s", e->string);
		const char *k = e->string;
		int rc = 0;
		if (strcmp(k, "probe_other_ports") == 0) {
			rc = bool_key(e, path, &c->cap.probe_other_ports, err, errlen);
		} else if (strcmp(k, "analyzer_thread") == 0) {
			rc = bool_key(e, path, &c->cap.analyzer_thread, err, errlen);
		} else if (strcmp(k, "decoder_thread") == 0) {
			rc = bool_key(e, path, &c->cap.decoder_thread, err, errlen);
		} else if (strcmp(k, "max_held_mb") == 0) {
			rc = int_key(e, path, 1, 1 << 20, &c->cap.max_held_mb, err, errlen);
		} else if (strcmp(k, "max_flows") == 0) {
			rc = int_key(e, path, 16, 4000000, &c->cap.max_flows, err, errlen);
		} else if (strcmp(k, "idle_timeout_s") == 0) {
			rc = int_key(e, path, 1, 30 * 86400, &c->cap.idle_timeout_s, err, errlen);
		} else if (strcmp(k, "gap_timeout_ms") == 0) {
			rc = int_key(e, path, 1, 3600000, &c->cap.gap_timeout_ms, err, errlen);
		} else if (strcmp(k, "gap_max_packets") == 0) {
			rc = int_key(e, path, 1, 255, &c->cap.gap_max_packets, err, errlen);
		} else if (strcmp(k, "ipv6_addresses") == 0) {
			rc = int_key(e, path, 16, 1 << 26, &c->cap.v6_map_size, err, errlen);
		} else if (strcmp(k, "kernel_buffer_mb") == 0) {
			rc = int_key(e, path, 1, 4096, &c->cap.kernel_buffer_mb, err, errlen);
		} else if (strcmp(k, "stats_interval_s") == 0) {
			rc = int_key(e, path, 0, 86400, &c->cap.stats_interval_s, err, errlen);
		} else if (strcmp(k, "tls_key_wait_s") == 0) {
			rc = int_key(e, path, 0, 3600, &c->cap.tls_key_wait_s, err, errlen);
		} else if (strcmp(k, "tls_keylog") == 0) {
			/* a path or an array of paths: key logs are secrets, never echoed */
			for (int i = 0; i < c->cap.n_tls_keylog; i++)
				free(c->cap.tls_keylog[i]);
			c->cap.n_tls_keylog = 0;
			const cJSON *s = cJSON_IsString(e) ? e : cJSON_IsArray(e) ? e->child : NULL;
			if (!s && !cJSON_IsArray(e)) {
				snprintf(err, errlen, "config: %s: expected a path or an array of paths", path);
				return -1;
			}
			for (; s; s = cJSON_IsString(e) ? NULL : s->next) {
				if (!cJSON_IsString(s) || !s->valuestring[0] || c->cap.n_tls_keylog >= CAP_MAX_KEYLOGS) {
					snprintf(err, errlen, "config: %s[%d]: expected a path (at most %d)", path,
						 c->cap.n_tls_keylog, CAP_MAX_KEYLOGS);
					return -1;
				}
				c->cap.tls_keylog[c->cap.n_tls_keylog++] = strdup(s->valuestring);
			}
		} else if (strcmp(k, "checksum_bypass") == 0) {
			if (!cJSON_IsArray(e)) {
				snprintf(err, errlen, "config: %s: expected an array of IPv4 CIDRs or \"all\"", path);
				return -1;
			}
			for (int i = 0; i < c->cap.n_checksum_bypass; i++)
				free(c->cap.checksum_bypass[i]);
			c->cap.n_checksum_bypass = 0;
			const cJSON *s;
			cJSON_ArrayForEach(s, e)
			{
				if (!cJSON_IsString(s) || c->cap.n_checksum_bypass >= CAP_MAX_CIDRS) {
					snprintf(err, errlen, "config: %s[%d]: expected a CIDR string (at most %d)",
						 path, c->cap.n_checksum_bypass, CAP_MAX_CIDRS);
					return -1;
				}
				uint32_t net, mask;
				if (cap_parse_cidr(s->valuestring, &net, &mask) != 0) {
					snprintf(err, errlen, "config: %s[%d]: '%s' is not an IPv4 CIDR or \"all\"", path,
						 c->cap.n_checksum_bypass, s->valuestring);
					return -1;
				}
				c->cap.checksum_bypass[c->cap.n_checksum_bypass++] = strdup(s->valuestring);
			}
		} else {
			snprintf(err, errlen, "config: %s: unknown key", path);
			return -1;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int load_output(struct dbtap_config *c, const cJSON *v, char *err, size_t errlen)
{
	if (!cJSON_IsObject(v)) {
		snprintf(err, errlen, "config: output: expected an object");
		return -1;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (e->string[0] == '_')
			continue;
		if (strcmp(e->string, "json") == 0) {
			if (!cJSON_IsString(e) || !e->valuestring[0]) {
				snprintf(err, errlen, "config: output.json: expected a file path or \"-\"");
				return -1;
			}
			free(c->json_path);
			c->json_path = strdup(e->valuestring);
		} else if (strcmp(e->string, "json_format") == 0 || strcmp(e->string, "sensor") == 0 ||
			   strcmp(e->string, "syslog") == 0) {
			char **dst = e->string[0] == 'j' ? &c->json_format : e->string[1] == 'e' ? &c->sensor : &c->syslog;
			if (!cJSON_IsString(e) || !e->valuestring[0] ||
			    (dst == &c->json_format && strcmp(e->valuestring, "dbtap") && strcmp(e->valuestring, "ocsf"))) {
				snprintf(err, errlen, "config: output.%s: expected %s", e->string,
					 dst == &c->json_format ? "\"dbtap\" or \"ocsf\"" : "a non-empty string");
				return -1;
			}
			free(*dst);
			*dst = strdup(e->valuestring);
		} else if (strcmp(e->string, "retention") == 0) {
			if (!cJSON_IsString(e) || report_parse_duration(e->valuestring, &c->retention_us) != 0 ||
			    c->retention_us <= 0) {
				snprintf(err, errlen, "config: output.retention: expected a duration such as \"30d\"");
				return -1;
			}
		} else if (strcmp(e->string, "batch_rows") == 0) {
			if (int_key(e, "output.batch_rows", 1, 1000000, &c->batch_rows, err, errlen))
				return -1;
		} else {
			snprintf(err, errlen, "config: output.%s: unknown key", e->string);
			return -1;
		}
	}
	return 0;
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
	int rc = 0;
	char sub[512] = "";
	if (!cJSON_IsObject(root)) {
		snprintf(sub, sizeof sub, "config: expected a JSON object at the top level");
		rc = -1;
	}
	const cJSON *e;
	if (rc == 0)
		cJSON_ArrayForEach(e, root)
		{
			if (strcmp(e->string, "ports") == 0)
				rc = load_ports(c, e, sub, sizeof sub);
			else if (strcmp(e->string, "capture") == 0)
				rc = load_capture(c, e, sub, sizeof sub);
			else if (strcmp(e->string, "output") == 0)
				rc = load_output(c, e, sub, sizeof sub);
			else {
				int r = an_config_set(&c->an, e->string, e, sub, sizeof sub);
				if (r == 1) {
					snprintf(sub, sizeof sub, "config: %s: unknown key", e->string);
					rc = -1;
				} else if (r < 0) {
					rc = -1;
				}
			}
			if (rc)
				break;
		}
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
