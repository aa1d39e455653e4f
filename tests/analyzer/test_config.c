/* Analyzer configuration: defaults, every key applied, and errors naming the JSON path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "an.h"

/* Apply every top-level key of json; returns the first non-zero result, message in err. */
static int apply(struct an_config *c, const char *json, char *err, size_t len)
{
	cJSON *root = cJSON_Parse(json);
	cr_assert_not_null(root, "bad test JSON: %s", json);
	int rc = 0;
	const cJSON *e;
	err[0] = 0;
	cJSON_ArrayForEach(e, root)
	{
		rc = an_config_set(c, e->string, e, err, len);
		if (rc)
			break;
	}
	cJSON_Delete(root);
	return rc;
}

Test(config, defaults_cover_the_common_conventions)
{
	struct an_config c;
	an_config_defaults(&c);
	cr_expect_eq(c.audit, AN_AUDIT_ALL);
	cr_expect_eq(c.keep_literals, 0);
	cr_expect_eq(c.bruteforce_failures, 5);
	cr_expect_eq(c.bruteforce_window_s, 180);
	cr_expect_eq(c.bulk_read_rows, 10000);
	cr_expect_eq(c.bulk_read_bytes, 50 * 1024 * 1024);
	cr_expect_eq(c.comment_keys.n, 6);
	cr_expect_str_eq(c.comment_keys.v[0], "app_user");
	cr_expect_eq(c.severity[AN_K_SQL_INJECTION], AN_SEV_HIGH);
	cr_expect_str_eq(an_kind_name(AN_K_PROTOCOL_ANOMALY), "protocol_anomaly");
	cr_expect_null(an_kind_name(AN_K_COUNT));
	an_config_free(&c);
}

struct ecase {
	const char *json, *msg;
};

static const struct ecase errors[] = {
	{ "{\"thresholds\": {\"bulk_read_rows\": -1}}", "config: thresholds.bulk_read_rows: expected a positive integer" },
	{ "{\"thresholds\": {\"bulk_read_rows\": 1.5}}", "config: thresholds.bulk_read_rows: expected a positive integer" },
	{ "{\"thresholds\": {\"error_burst_errors\": 100}}", "config: thresholds.error_burst_errors: expected a positive integer (at most 64)" },
	{ "{\"thresholds\": {\"nope\": 1}}", "config: thresholds.nope: unknown key" },
	{ "{\"thresholds\": []}", "config: thresholds: expected an object" },
	{ "{\"audit\": \"some\"}", "config: audit: expected \"all\" or \"findings\"" },
	{ "{\"keep_literals\": \"yes\"}", "config: keep_literals: expected true or false" },
	{ "{\"service_accounts\": [\"a\", 3]}", "config: service_accounts[1]: expected a non-empty string" },
	{ "{\"service_accounts\": \"a\"}", "config: service_accounts: expected an array of strings" },
	{ "{\"attribution\": {\"comment_keys\": [\"x\"], \"bogus\": []}}", "config: attribution.bogus: unknown key" },
	{ "{\"attribution\": {\"app_name_patterns\": [\"(unclosed\"]}}", "config: attribution.app_name_patterns[0]: not a valid POSIX extended regex" },
	{ "{\"attribution\": {\"app_name_patterns\": [\"^web$\"]}}", "config: attribution.app_name_patterns[0]: needs one capture group" },
	{ "{\"attribution\": {\"pg_json_settings\": [\"claims\"]}}", "config: attribution.pg_json_settings[0]: expected \"setting:key\"" },
	{ "{\"attribution\": {\"replace_defaults\": 1}}", "config: attribution.replace_defaults: expected true or false" },
	{ "{\"severities\": {\"sql_injection\": \"urgent\"}}", "config: severities.sql_injection: expected \"info\", \"low\", \"medium\", \"high\" or \"critical\"" },
	{ "{\"severities\": {\"nope\": \"low\"}}", "config: severities.nope: unknown finding kind" },
	{ "{\"detectors\": {\"bulk_read\": 1}}", "config: detectors.bulk_read: expected true or false" },
	{ "{\"admin_hosts\": [\"10.0.0.0/33\"]}", "config: admin_hosts[0]: expected an IP address or CIDR" },
	{ "{\"admin_hosts\": [\"10.0.0.0/8\", \"bad host\"]}", "config: admin_hosts[1]: expected an IP address or CIDR" },
	{ "{\"admin_policy\": \"maybe\"}", "config: admin_policy: expected \"report\", \"downgrade\" or \"allow\"" },
	{ "{\"sensitive\": [{\"table\": \"t\", \"colums\": []}]}", "config: sensitive[0].colums: unknown key" },
	{ "{\"sensitive\": [{\"table\": \"t\"}, {\"columns\": [\"a\"]}]}", "config: sensitive[1].table: missing" },
	{ "{\"sensitive\": [{\"table\": \"t\", \"allow\": [1]}]}", "config: sensitive[0].allow[0]: expected a non-empty string" },
	{ "{\"limits\": {\"max_sessions\": 0}}", "config: limits.max_sessions: expected a positive integer" },
	{ "{\"limits\": {\"max_sesions\": 10}}", "config: limits.max_sesions: unknown key" },
};

Test(config, errors_name_the_json_path)
{
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
		struct an_config c;
		char err[256];
		an_config_defaults(&c);
		cr_expect_eq(apply(&c, errors[i].json, err, sizeof err), -1, "case %zu: %s", i, errors[i].json);
		cr_expect_eq(strncmp(err, errors[i].msg, strlen(errors[i].msg)), 0, "case %zu: got '%s' want '%s'", i, err,
			     errors[i].msg);
		cr_expect_null(strchr(err, '\n'));
		an_config_free(&c);
	}
}

Test(config, keys_of_others_are_not_mine)
{
	struct an_config c;
	char err[256];
	an_config_defaults(&c);
	cr_expect_eq(apply(&c, "{\"ports\": {\"postgresql\": [5432]}}", err, sizeof err), 1);
	cr_expect_eq(apply(&c, "{\"capture\": {}}", err, sizeof err), 1);
	cr_expect_eq(apply(&c, "{\"_comment\": \"free text\"}", err, sizeof err), 0);
	an_config_free(&c);
}

Test(config, lists_add_to_defaults_or_replace_them)
{
	struct an_config c;
	char err[256];
	an_config_defaults(&c);
	cr_assert_eq(apply(&c, "{\"attribution\": {\"comment_keys\": [\"uid\", \"app_user\"], \"mysql_vars\": [\"@who\"]}}",
			   err, sizeof err), 0, "%s", err);
	cr_expect_eq(c.comment_keys.n, 7);
	cr_expect_str_eq(c.comment_keys.v[6], "uid");
	cr_expect_eq(c.mysql_vars.n, 4);
	an_config_free(&c);
	an_config_defaults(&c);
	cr_assert_eq(apply(&c, "{\"attribution\": {\"comment_keys\": [\"uid\"], \"replace_defaults\": true}}", err,
			   sizeof err), 0, "%s", err);
	cr_expect_eq(c.comment_keys.n, 1);
	cr_expect_str_eq(c.comment_keys.v[0], "uid");
	an_config_free(&c);
}

Test(config, every_key_applies)
{
	struct an_config c;
	char err[256];
	an_config_defaults(&c);
	cr_assert_eq(apply(&c,
			   "{\"audit\": \"findings\", \"keep_literals\": true, \"service_accounts\": [\"svc\"],"
			   " \"admin_hosts\": [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.1\"], \"admin_users\": [\"dba\"],"
			   " \"admin_policy\": \"allow\","
			   " \"thresholds\": {\"bruteforce_failures\": 3, \"bruteforce_window_s\": 60, \"error_burst_errors\": 4,"
			   "   \"error_burst_window_s\": 30, \"bulk_read_rows\": 500, \"bulk_read_bytes\": 1000,"
			   "   \"anomaly_per_session\": 1},"
			   " \"severities\": {\"bulk_read\": \"critical\"}, \"detectors\": {\"protocol_anomaly\": false},"
			   " \"sensitive\": [{\"table\": \"HR.Salaries\", \"columns\": [\"Amount\"], \"allow\": [\"hr\"]}],"
			   " \"limits\": {\"max_sessions\": 10, \"idle_timeout_s\": 5, \"max_pending\": 3,"
			   "   \"max_sql_bytes\": 100, \"max_pending_bytes\": 1000}}",
			   err, sizeof err), 0, "%s", err);
	cr_expect_eq(c.audit, AN_AUDIT_FINDINGS);
	cr_expect_eq(c.keep_literals, 1);
	cr_expect_str_eq(c.service_accounts.v[0], "svc");
	cr_expect_eq(c.admin_hosts.n, 3);
	cr_expect_eq(c.admin_policy, AN_ADMIN_ALLOW);
	cr_expect_eq(c.bruteforce_failures, 3);
	cr_expect_eq(c.error_burst_window_s, 30);
	cr_expect_eq(c.bulk_read_bytes, 1000);
	cr_expect_eq(c.severity[AN_K_BULK_READ], AN_SEV_CRITICAL);
	cr_expect_eq(c.detector_off[AN_K_PROTOCOL_ANOMALY], 1);
	cr_expect_str_eq(c.sensitive[0].table, "hr.salaries");
	cr_expect_str_eq(c.sensitive[0].columns.v[0], "amount");
	cr_expect_eq(c.max_pending, 3);
	cr_expect_eq(c.max_sql_bytes, 100);
	an_config_free(&c);
}

Test(config, example_file_documents_every_key_and_loads)
{
	const char *src = getenv("DBTAP_SRC");
	char path[1024];
	snprintf(path, sizeof path, "%s/contrib/dbtap.example.json", src ? src : ".");
	FILE *f = fopen(path, "rb");
	if (!f)
		cr_skip_test("%s not found (DBTAP_SRC unset?)", path);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	struct an_config c;
	char err[256];
	an_config_defaults(&c);
	cJSON *root = cJSON_Parse(buf);
	cr_assert_not_null(root);
	const cJSON *e;
	int mine = 0;
	cJSON_ArrayForEach(e, root)
	{
		int rc = an_config_set(&c, e->string, e, err, sizeof err);
		cr_expect_neq(rc, -1, "%s: %s", e->string, err);
		if (rc == 1)
			cr_expect(!strcmp(e->string, "ports") || !strcmp(e->string, "capture") || !strcmp(e->string, "output"),
				  "%s is nobody's key", e->string);
		else
			mine++;
	}
	/* every severity and detector kind the analyzer knows appears in the example */
	const cJSON *sev = cJSON_GetObjectItem(root, "severities");
	for (int k = 0; k < AN_K_COUNT; k++)
		cr_expect_not_null(cJSON_GetObjectItem(sev, an_kind_name(k)), "%s", an_kind_name(k));
	cr_expect_gt(mine, 10);
	cJSON_Delete(root);
	an_config_free(&c);
}
