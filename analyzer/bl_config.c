/* The baseline's configuration keys (a cfgkey.h table), time zones and business hours. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cJSON.h>

#include "baseline_int.h"

/* ---- config ---- */

void bl_config_defaults(struct an_config *c)
{
	struct an_baseline_cfg *b = &c->baseline;
	b->learning_period_s = 86400;
	b->prefix_v4 = 32; /* per address, as DESIGN.md §3 words new_client; widen for pools */
	b->prefix_v6 = 128;
	snprintf(b->time_zone, sizeof b->time_zone, "UTC");
	b->tz_fixed = 1;
	b->tz_offset_min = 0;
	b->business_start_min = 7 * 60;
	b->business_end_min = 20 * 60;
	b->require_ack = 0;
	b->max_entries = 100000;
	b->when_full = BL_FULL_EVICT;
	b->flush_interval_s = 60;
	b->end_user_tables = 1;
	b->end_user_peers = 3;
}

/* "HH:MM" -> minutes of day, -1 when malformed. */
static int parse_hhmm(const char *s, const char **end)
{
	int h = 0, m = 0, n = 0;
	if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || h < 0 || h > 24 || m < 0 || m > 59 || h * 60 + m > 1440)
		return -1;
	*end = s + n;
	return h * 60 + m;
}

static int set_tz(struct an_baseline_cfg *b, const char *v)
{
	int sign, h = 0, m = 0, n = 0;
	if (!strcmp(v, "UTC") || !strcmp(v, "Z") || !strcmp(v, "GMT")) {
		b->tz_fixed = 1;
		b->tz_offset_min = 0;
	} else if ((v[0] == '+' || v[0] == '-') &&
		   (sscanf(v + 1, "%2d:%2d%n", &h, &m, &n) == 2 || (m = 0, sscanf(v + 1, "%2d%n", &h, &n) == 1)) &&
		   v[1 + n] == 0 && h <= 14 && m < 60) {
		sign = v[0] == '-' ? -1 : 1;
		b->tz_fixed = 1;
		b->tz_offset_min = sign * (h * 60 + m);
	} else {
		/* a TZ database name: must name a zone file (no path tricks) */
		char path[256];
		const char *dir = getenv("TZDIR");
		if (strstr(v, "..") || v[0] == '/' || strlen(v) > 60)
			return -1;
		for (const char *p = v; *p; p++)
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			      *p == '/' || *p == '_' || *p == '-' || *p == '+'))
				return -1;
		snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", v);
		if (access(path, R_OK) != 0)
			return -1;
		b->tz_fixed = 0;
	}
	snprintf(b->time_zone, sizeof b->time_zone, "%s", v);
	return 0;
}

static int set_time_zone(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
			 size_t len)
{
	const cJSON *e = item;
	(void)k;
	if (!cJSON_IsString(e) || set_tz(&((struct an_config *)base)->baseline, e->valuestring) < 0) {
		snprintf(err, len,
			 "config: %s: expected \"UTC\", an offset like \"+02:00\", or a time zone name like "
			 "\"Europe/Berlin\" that exists in the TZ database",
			 path);
		return -1;
	}
	return 0;
}

static void *show_time_zone(const void *base, const struct ck_key *k)
{
	(void)k;
	return cJSON_CreateString(((const struct an_config *)base)->baseline.time_zone);
}

static int set_business_hours(void *base, const struct ck_key *k, const void *item, const char *path, char *err,
			      size_t len)
{
	const cJSON *e = item;
	struct an_baseline_cfg *b = &((struct an_config *)base)->baseline;
	(void)k;
	const char *p = cJSON_IsString(e) ? e->valuestring : "", *q = p;
	int a = parse_hhmm(p, &q), z = -1;
	if (a >= 0 && *q == '-')
		z = parse_hhmm(q + 1, &q);
	if (a < 0 || z < 0 || *q || a == z) {
		snprintf(err, len, "config: %s: expected \"HH:MM-HH:MM\" (start inclusive, end exclusive)", path);
		return -1;
	}
	b->business_start_min = a;
	b->business_end_min = z;
	return 0;
}

static void *show_business_hours(const void *base, const struct ck_key *k)
{
	const struct an_baseline_cfg *b = &((const struct an_config *)base)->baseline;
	char s[48];
	(void)k;
	snprintf(s, sizeof s, "%02d:%02d-%02d:%02d", b->business_start_min / 60, b->business_start_min % 60,
		 b->business_end_min / 60, b->business_end_min % 60);
	return cJSON_CreateString(s);
}

#define F(field) offsetof(struct an_config, baseline.field)
#define SZ(field) (int)sizeof(((struct an_config *)0)->baseline.field)
#define INT(p, f, lo, hi, doc) { p, CK_INT, F(f), SZ(f), lo, hi, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define BOOL(p, f, doc) { p, CK_BOOL, F(f), 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, doc }
#define ENUM(p, f, names, doc) { p, CK_ENUM, F(f), 0, 0, 0, names, 0, NULL, NULL, NULL, NULL, NULL, doc }

static const char *const when_full_names[] = { "evict", "stop", NULL };

static const struct ck_key bl_keys[] = {
	{ "baseline", CK_GROUP, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL,
	  "The learned baseline (storage/SCHEMA.md, table baseline). 'dbtap run --learn' records without baseline "
	  "findings and ends the learning period of every principal it sees." },
	INT("baseline.learning_period_s", learning_period_s, 0, INT64_C(10) * 365 * 86400,
	    "A principal (db_user or end user) with no baseline is learned automatically for this long (packet "
	    "time); meanwhile its new_* findings are held back and off_hours uses business_hours; 0 = judged at once."),
	INT("baseline.client_prefix_v4", prefix_v4, 0, 32,
	    "new_client is judged per subnet of this prefix (32 = per address; e.g. 24 when clients change addresses "
	    "within a network)."),
	INT("baseline.client_prefix_v6", prefix_v6, 0, 128, "The same for IPv6 (128 = per address; e.g. 64)."),
	{ "baseline.time_zone", CK_CUSTOM, 0, 0, 0, 0, NULL, 0, NULL, set_time_zone, show_time_zone, NULL, NULL,
	  "'UTC', a fixed offset like '+02:00', or a TZ database name like 'Europe/Berlin'; hours of day and "
	  "business hours are counted in it." },
	{ "baseline.business_hours", CK_CUSTOM, 0, 0, 0, 0, NULL, 0, NULL, set_business_hours, show_business_hours,
	  NULL, NULL, "'HH:MM-HH:MM', start inclusive, end exclusive, may wrap past midnight." },
	BOOL("baseline.require_ack", require_ack,
	     "Alerted items stay pending and are alerted again (once per run) until 'dbtap baseline --ack PRINCIPAL'."),
	BOOL("baseline.end_user_tables", end_user_tables,
	     "Report an end user's first access to a table (a new_query_shape finding, signal first_table_access), "
	     "but only while fewer than end_user_peers other end users touched that table."),
	INT("baseline.end_user_peers", end_user_peers, 0, 1000000, "See end_user_tables."),
	INT("baseline.max_entries", max_entries, 16, 10000000,
	    "Baseline rows kept in memory; see when_full."),
	ENUM("baseline.when_full", when_full, when_full_names,
	     "At max_entries: 'evict' forgets the least recently seen items (principals last) to learn new ones, "
	     "deleting their rows too; 'stop' learns nothing more (new items are counted in baseline_dropped and "
	     "not alerted). Either way one baseline_full finding per run."),
	INT("baseline.flush_interval_s", flush_interval_s, 1, 86400, "Packet time between writes of the changed rows."),
};

int bl_config_table(struct an_config *c, struct ck_table *out)
{
	*out = (struct ck_table){ bl_keys, (int)(sizeof bl_keys / sizeof bl_keys[0]), c };
	return 1;
}

int bl_config_set(struct an_config *c, const void *item, char *err, unsigned long len)
{
	struct ck_table t;
	bl_config_table(c, &t);
	return ck_set(&t, 1, "baseline", item, err, len) ? -1 : 0;
}

int bl_hour_of(const struct an_baseline_cfg *c, ev_time ts, int *minute_of_day)
{
	int64_t sec = ts / 1000000;
	if (ts < 0 && ts % 1000000)
		sec--;
	struct tm tm;
	time_t t;
	if (c->tz_fixed) {
		t = (time_t)(sec + (int64_t)c->tz_offset_min * 60);
		if (!gmtime_r(&t, &tm))
			memset(&tm, 0, sizeof tm);
	} else {
		t = (time_t)sec;
		if (!localtime_r(&t, &tm))
			memset(&tm, 0, sizeof tm);
	}
	if (minute_of_day)
		*minute_of_day = tm.tm_hour * 60 + tm.tm_min;
	return tm.tm_hour;
}

int bl_outside_business(const struct an_baseline_cfg *c, int mod)
{
	int a = c->business_start_min, z = c->business_end_min;
	int inside = a < z ? (mod >= a && mod < z) : (mod >= a || mod < z);
	return !inside;
}
