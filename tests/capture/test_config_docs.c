/* One table, three views: the configuration keys declared in the code (cfgkey.h tables),
 * the example configuration and the man page's key list. A key added, removed or
 * re-documented in one place and not the others fails here. DBTAP_UPDATE_GOLDEN=1
 * regenerates both files from the tables; review the diff. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgkey.h"
#include "config.h"

#define INTRO                                                                                                  \
	"dbtap configuration (dbtap run -c FILE), generated from the key tables in the code "                    \
	"(tests/capture/test_config_docs.c checks it). Every key is optional; unknown keys and wrong types "     \
	"are a usage error (exit 2) naming the key's JSON path. Keys starting with '_' are comments. The "      \
	"values below are the defaults unless a key's comment says it is an example."
#define MAN_BEGIN ".\\\" BEGIN CONFIGURATION KEYS (generated: tests/capture/test_config_docs.c)\n"
#define MAN_END ".\\\" END CONFIGURATION KEYS\n"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

static void src_path(char *out, size_t cap, const char *rel)
{
	const char *src = getenv("DBTAP_SRC");
	snprintf(out, cap, "%s/%s", src ? src : ".", rel);
}

static char *render(int man)
{
	struct dbtap_config c;
	struct ck_table t[DBTAP_CFG_TABLES];
	char *buf = NULL;
	size_t n = 0;
	dbtap_config_defaults(&c);
	int nt = dbtap_config_tables(&c, t);
	FILE *f = open_memstream(&buf, &n);
	if (man)
		ck_write_man(f, t, nt);
	else
		ck_write_example(f, t, nt, INTRO);
	fclose(f);
	dbtap_config_free(&c);
	return buf;
}

Test(config_docs, example_is_generated_from_the_tables)
{
	char path[1024];
	src_path(path, sizeof path, "contrib/dbtap.example.json");
	char *got = render(0);
	if (getenv("DBTAP_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(got, f);
		fclose(f);
	}
	char *want = slurp(path);
	cr_expect_str_eq(got, want, "%s differs from the key tables (DBTAP_UPDATE_GOLDEN=1 to regenerate)", path);
	free(got);
	free(want);
}

Test(config_docs, man_page_lists_the_same_keys)
{
	char path[1024];
	src_path(path, sizeof path, "contrib/dbtap.8");
	char *page = slurp(path), *got = render(1);
	char *b = strstr(page, MAN_BEGIN), *e = b ? strstr(b, MAN_END) : NULL;
	cr_assert(b && e, "%s: no generated key list between the BEGIN/END markers", path);
	b += strlen(MAN_BEGIN);
	if (getenv("DBTAP_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fprintf(f, "%.*s%s%s", (int)(b - page), page, got, e);
		fclose(f);
		free(page);
		page = slurp(path);
		b = strstr(page, MAN_BEGIN) + strlen(MAN_BEGIN);
		e = strstr(b, MAN_END);
	}
	cr_expect(strlen(got) == (size_t)(e - b) && !strncmp(b, got, strlen(got)),
		  "%s: key list differs from the key tables (DBTAP_UPDATE_GOLDEN=1 to regenerate)", path);
	free(page);
	free(got);
}

Test(config_docs, the_example_loads_and_every_key_is_documented)
{
	char path[1024], err[512] = "";
	struct dbtap_config c;
	struct ck_table t[DBTAP_CFG_TABLES];
	src_path(path, sizeof path, "contrib/dbtap.example.json");
	dbtap_config_defaults(&c);
	cr_expect_eq(dbtap_config_load(&c, path, err, sizeof err), 0, "%s", err);
	int nt = dbtap_config_tables(&c, t);
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < t[i].n; j++) {
			const struct ck_key *k = &t[i].keys[j];
			int wild = strlen(k->path) > 2 && !strcmp(k->path + strlen(k->path) - 2, ".*");
			cr_expect(wild || (k->doc && k->doc[0]), "%s: no documentation", k->path);
			for (int i2 = 0; i2 < nt; i2++)
				for (int j2 = 0; j2 < t[i2].n; j2++)
					cr_expect((i2 == i && j2 == j) || strcmp(t[i2].keys[j2].path, k->path),
						  "%s declared twice", k->path);
		}
	dbtap_config_free(&c);
}

/* The old per-module loaders' messages, kept: what users' scripts and the tests grep for. */
Test(config_docs, errors_name_the_path)
{
	static const char *const cases[][2] = {
		{ "{\"capture\": {\"max_flows\": 1}}", "capture.max_flows: expected an integer from 16 to 4000000" },
		{ "{\"capture\": {\"nope\": 1}}", "capture.nope: unknown key" },
		{ "{\"capture\": []}", "capture: expected an object" },
		{ "{\"ports\": {\"redis\": [6379]}}", "ports.redis: unknown key (a protocol name)" },
		{ "{\"ports\": {\"mysql\": [0]}}", "ports.mysql[0]: expected a port number 1-65535" },
		{ "{\"output\": {\"json_format\": \"cef\"}}", "output.json_format: expected \"dbtap\" or \"ocsf\"" },
		{ "{\"output\": {\"retention\": \"soon\"}}", "output.retention: expected a duration such as \"30d\"" },
		{ "{\"capture\": {\"decoder_thread\": 2}}", "capture.decoder_thread: expected true or false" },
		{ "{\"baseline\": {\"time_zone\": \"Mars/Olympus\"}}", "baseline.time_zone: expected \"UTC\"" },
		{ "{\"audit\": \"some\"}", "audit: expected \"all\" or \"findings\"" },
		{ "{\"admin_policy\": 1}", "admin_policy: expected \"report\", \"downgrade\" or \"allow\"" },
		{ "{\"severities\": {\"nope\": \"low\"}}", "severities.nope: unknown finding kind" },
		{ "[1]", "expected a JSON object at the top level" },
	};
	char path[] = "/tmp/dbtap-config-docs-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dbtap_config c;
		char err[512] = "";
		FILE *f = fopen(path, "w");
		fputs(cases[i][0], f);
		fclose(f);
		dbtap_config_defaults(&c);
		cr_expect_eq(dbtap_config_load(&c, path, err, sizeof err), -1, "%s", cases[i][0]);
		cr_expect(strstr(err, cases[i][1]) != NULL, "%s: got '%s' want '%s'", cases[i][0], err, cases[i][1]);
		dbtap_config_free(&c);
	}
	unlink(path);
}
