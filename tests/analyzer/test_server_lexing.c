/* Issue #20: the analyzer reads each message the way the server does (session settings,
 * size caps, statement count), and where it cannot know, reads it both ways. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an.h"
#include "harness.h"

static struct harness h;

static void start(const char *proto)
{
	h_init(&h);
	h.cfg.audit = AN_AUDIT_ALL;
	h_start(&h);
	h_open(&h, proto, NULL);
	h_startup(&h, "alice", "shop", "psql");
	h_login(&h, 1);
}

/* Is there a stored statement with this verb whose text starts with prefix? */
static int stored(const char *verb, const char *prefix)
{
	for (int i = 0; i < h.sink->n_st; i++)
		if (h.sink->st[i].verb && !strcmp(h.sink->st[i].verb, verb) &&
		    (!prefix || (h.sink->st[i].sql && !strncmp(h.sink->st[i].sql, prefix, strlen(prefix)))))
			return 1;
	return 0;
}

static int kind(const char *k)
{
	return rec_sink_count_kind(h.sink, k);
}

Test(server_lexing, pg_standard_conforming_strings_off_from_parameter_status)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	h_simple(&h, "SELECT 'x\\'' ; DROP TABLE t; -- '", 1, 'I');
	cr_expect(!stored("DROP", NULL));
	h_param(&h, "standard_conforming_strings", "off"); /* after SET, startup option, set_config */
	h_simple(&h, "SELECT 'x\\'' ; DROP TABLE t; -- '", 2, 'I');
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect_eq(kind("destructive_statement"), 1);
	cr_expect_eq(kind("protocol_anomaly"), 0); /* the setting was known: one reading */
	h_free(&h);
}

Test(server_lexing, pg_setting_not_seen_reads_both_ways)
{
	start("postgresql"); /* no ParameterStatus: picked up mid-session */
	h_simple(&h, "SELECT 'x\\'' ; DROP TABLE t; -- '", 1, 'I');
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect_eq(kind("destructive_statement"), 1);
	const struct h_finding *f = rec_sink_find(h.sink, "protocol_anomaly");
	cr_assert(f);
	cr_expect(strstr(f->summary, "standard_conforming_strings = off"), "%s", f->summary);
	h_free(&h);
}

Test(server_lexing, pg_carriage_return_ends_a_line_comment)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	h_simple(&h, "SELECT 1; --x\rDROP TABLE t", 2, 'I');
	h_end(&h);
	cr_expect(stored("DROP", NULL));
	cr_expect_eq(kind("destructive_statement"), 1);
	h_free(&h);
}

Test(server_lexing, mysql_sql_mode_set_in_the_same_message)
{
	start("mysql");
	/* MySQL parses each statement after running the one before */
	h_simple(&h, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'x\\'; DROP TABLE t; -- '", 3, 'I');
	h_simple(&h, "SELECT 'y\\'; DROP TABLE u; -- '", 2, 'I');
	h_simple(&h, "SET @@sql_mode = 'ANSI'; SELECT \"a\\\" ; DROP TABLE v; -- \"", 3, 'I');
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect(stored("DROP", "DROP TABLE u"));
	cr_expect(stored("DROP", "DROP TABLE v"));
	cr_expect_eq(kind("destructive_statement"), 3);
	cr_expect_eq(kind("protocol_anomaly"), 0);
	h_free(&h);
}

Test(server_lexing, mysql_initial_sql_mode_unknown_reads_both_ways)
{
	start("mysql");
	h_simple(&h, "SELECT 'x\\'; DROP TABLE t; -- '", 1, 'I');
	h_simple(&h, "SELECT \"a\\\" ; DROP TABLE w; -- \"", 1, 'I');
	h_simple(&h, "SELECT 'it\\'s fine' FROM t WHERE a = \"x;y\"", 1, 'I'); /* same split both ways: quiet */
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect(stored("DROP", "DROP TABLE w"));
	cr_expect_eq(kind("protocol_anomaly"), 2);
	h_free(&h);
}

Test(server_lexing, mariadb_executable_comment_is_a_statement)
{
	start("mysql");
	h_simple(&h, "/*M!100100 DROP TABLE t */", 1, 'I');
	h_end(&h);
	cr_expect(stored("DROP", NULL));
	cr_expect_eq(kind("destructive_statement"), 1);
	h_free(&h);
}

Test(server_lexing, routine_body_does_not_swallow_what_follows)
{
	start("mysql");
	h_simple(&h, "CREATE FUNCTION f(begin int) RETURNS int DETERMINISTIC RETURN begin; DROP TABLE t", 2, 'I');
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	h_free(&h);
}

Test(server_lexing, statement_after_the_size_cap_is_split_and_checked)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	size_t pad = 40000;
	char *sql = malloc(pad + 200);
	strcpy(sql, "SELECT '");
	memset(sql + 8, 'a', pad);
	strcpy(sql + 8 + pad, "'; DROP TABLE t; GRANT ALL ON t TO bob");
	h_simple(&h, sql, 3, 'I');
	/* a routine padded past the cap, then the DROP */
	strcpy(sql, "SELECT 1 /*");
	memset(sql + 11, ' ', pad);
	strcpy(sql + 11 + pad, "*/; TRUNCATE t");
	h_simple(&h, sql, 2, 'I');
	h_end(&h);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect(stored("GRANT", "GRANT ALL ON t TO bob"));
	cr_expect(stored("TRUNCATE", "TRUNCATE t"));
	cr_expect_geq(kind("destructive_statement"), 2);
	cr_expect_eq(kind("privilege_change"), 1);
	for (int i = 0; i < h.sink->n_st; i++)
		cr_expect_leq(strlen(h.sink->st[i].sql), (size_t)h.cfg.max_sql_bytes + 4);
	h_free(&h);
	free(sql);
}

Test(server_lexing, no_silent_64_statement_limit)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	size_t cap = 300 * 16 + 64;
	char *sql = malloc(cap);
	sql[0] = 0;
	for (int i = 0; i < 300; i++)
		strcat(sql, "SELECT 1;      ");
	strcat(sql, "DROP TABLE t");
	h_simple(&h, sql, 301, 'I');
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 301);
	cr_expect(stored("DROP", "DROP TABLE t"));
	cr_expect_eq(kind("destructive_statement"), 1);
	h_free(&h);
	free(sql);
}

Test(server_lexing, statement_longer_than_the_token_cap_then_a_drop)
{
	start("mysql");
	size_t n = 200000;
	char *sql = malloc(n + 64);
	memcpy(sql, "SELECT 1", 8);
	for (size_t i = 8; i < n; i += 2)
		memcpy(sql + i, ",1", 2);
	strcpy(sql + n, "; DROP TABLE t");
	h_simple(&h, sql, 2, 'I');
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 2);
	cr_expect(stored("DROP", "DROP TABLE t"));
	h_free(&h);
	free(sql);
}

Test(server_lexing, quoted_function_names_are_the_function)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	h_simple(&h, "SELECT \"pg_read_file\"('/etc/passwd')", 1, 'I');
	h_simple(&h, "SELECT * FROM users WHERE id = 1 AND \"pg_sleep\"(5) IS NOT NULL", 1, 'I');
	h_simple(&h, "SELECT \"PG_READ_FILE\"('/etc/passwd')", 1, 'I'); /* no such function in PG */
	h_simple(&h, "SELECT \"user\" FROM \"Orders\"", 1, 'I');	      /* names stay names */
	h_end(&h);
	cr_expect_eq(kind("data_export"), 1);
	cr_expect_eq(kind("sql_injection"), 1);
	cr_expect(stored("SELECT", "SELECT \"user\" FROM \"Orders\""));
	h_free(&h);
}

/* A FunctionCall names its function by OID only: the decoder names the built-in file,
 * large-object and sleep functions (pgsql.c), and the rules judge the call as in SQL. */
Test(server_lexing, function_call_by_oid_is_the_function)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	uint64_t id = h_query(&h, EV_Q_FUNCTION, "FUNCTION CALL oid=3826 pg_read_file()", NULL, 0);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_ready(&h, 'I');
	id = h_query(&h, EV_Q_FUNCTION, "FUNCTION CALL oid=764 lo_import()", NULL, 0);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_ready(&h, 'I');
	id = h_query(&h, EV_Q_FUNCTION, "FUNCTION CALL oid=955 lowrite()", NULL, 0); /* libpq's lo_import */
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_ready(&h, 'I');
	h_end(&h);
	cr_expect_eq(kind("data_export"), 2);
	h_free(&h);
}

/* PREPARE ... AS / EXECUTE and DO blocks are judged for what they run (issue #20). */
Test(server_lexing, prepare_execute_runs_the_prepared_statement)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	h_simple(&h, "PREPARE p (int) AS DELETE FROM orders", 1, 'I');
	cr_expect_eq(kind("destructive_statement"), 0); /* prepared, not run */
	h_simple(&h, "EXECUTE P", 1, 'I');		 /* the unquoted name folds to p */
	h_simple(&h, "PREPARE q AS SELECT 1; EXECUTE q; EXECUTE unknown_name", 3, 'I');
	h_end(&h);
	cr_expect_eq(kind("destructive_statement"), 1);
	const struct h_finding *f = rec_sink_find(h.sink, "destructive_statement");
	cr_assert(f);
	cr_expect(strstr(f->summary, "DELETE without WHERE") && strstr(f->summary, "(EXECUTE of p)"), "%s", f->summary);
	cr_expect(stored("EXECUTE", "EXECUTE P")); /* stored as sent */
	h_free(&h);
}

Test(server_lexing, mysql_prepare_from_string_then_execute)
{
	start("mysql");
	h_simple(&h, "PREPARE s FROM 'DROP TABLE orders'", 1, 'I');
	h_simple(&h, "SET @a = 1", 1, 'I');
	h_simple(&h, "EXECUTE S USING @a", 1, 'I');
	h_end(&h);
	cr_expect_eq(kind("destructive_statement"), 1);
	h_free(&h);
}

Test(server_lexing, do_block_statements_and_dynamic_sql)
{
	start("postgresql");
	h_param(&h, "standard_conforming_strings", "on");
	h_simple(&h, "DO $$ BEGIN EXECUTE 'DR' || 'OP TABLE t'; END $$", 1, 'I');
	h_simple(&h, "DO LANGUAGE plpgsql $x$ DECLARE n int; BEGIN IF true THEN TRUNCATE t2; END IF; END $x$", 1, 'I');
	h_simple(&h, "DO 'BEGIN EXECUTE format(''DROP SCHEMA %I CASCADE'', ''s3''); END'", 1, 'I');
	h_simple(&h, "DO $$ BEGIN FOR r IN SELECT 1 LOOP PERFORM pg_read_file('/etc/passwd'); END LOOP; END $$", 1, 'I');
	h_simple(&h, "DO $$ DECLARE t text := 'x'; BEGIN EXECUTE 'DROP TABLE ' || t; END $$", 1, 'I');
	h_simple(&h, "DO $$ BEGIN PERFORM 1; RAISE NOTICE 'drop table t'; END $$", 1, 'I'); /* nothing run */
	h_end(&h);
	cr_expect_eq(kind("destructive_statement"), 4); /* grouped by what ran, not by "DO ?" */
	cr_expect_eq(kind("data_export"), 1);
	h_free(&h);
}
