/* Every rule detector: what fires, and the benign look-alikes that must not. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an.h"
#include "harness.h"

static struct harness h;

static void svc(struct harness *x, const char *name)
{
	x->cfg.service_accounts.v[x->cfg.service_accounts.n++] = strdup(name);
}

static void start_as(const char *proto, const char *user, const char *client)
{
	h_init(&h);
	svc(&h, "app_svc");
	h_start(&h);
	h_open(&h, proto, client);
	h_startup(&h, user, "shop", "web");
	h_login(&h, 1);
}

/* Run one simple statement on a fresh session; returns how many findings of kind it raised. */
static int fires(const char *proto, const char *user, const char *sql, const char *kind)
{
	start_as(proto, user, NULL);
	h_simple(&h, sql, 8, 'I');
	h_end(&h);
	int n = rec_sink_count_kind(h.sink, kind);
	h_free(&h);
	return n;
}

static const char *const sqli_pos[][2] = {
	{ "postgresql", "SELECT * FROM users WHERE name = '' OR '1'='1'" },
	{ "postgresql", "SELECT * FROM users WHERE id = 1 OR 1=1" },
	{ "postgresql", "SELECT * FROM users WHERE id = 1 or true" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR 'a'<>'b'" },
	{ "postgresql", "SELECT * FROM users WHERE id = 1 OR (2 > 1)" },
	{ "postgresql", "SELECT name FROM products WHERE id = 1 UNION SELECT NULL, NULL" },
	{ "postgresql", "SELECT name FROM products WHERE id = 1 UNION ALL SELECT usename, passwd FROM pg_shadow" },
	{ "postgresql", "SELECT name, price FROM p WHERE id = 1 UNION SELECT version(), current_user" },
	{ "postgresql", "SELECT * FROM users WHERE id = 1 AND pg_sleep(5) IS NOT NULL" },
	{ "mysql", "SELECT * FROM users WHERE id = 1 AND SLEEP(5)" },
	{ "mysql", "SELECT BENCHMARK(1000000, MD5('a'))" },
	{ "mysql", "SELECT a FROM t WHERE id = 1 UNION SELECT @@version, 2" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'admin'--' AND password = 'x'" },
	{ "mysql", "SELECT * FROM users WHERE name = 'admin'#' AND pw = 'x'" },
	{ "mysql", "SELECT * FROM users WHERE name = 'admin' -- ' AND pw = 'x'" },
	{ "postgresql", "SELECT * FROM pg_catalog.pg_shadow" },
	{ "mysql", "SELECT user, authentication_string FROM mysql.user" },
	/* regressions (a DESIGN.md audit): a UNION reading another table behind an application
	 * SELECT emptied on purpose */
	{ "postgresql", "SELECT name FROM products WHERE id = -1 UNION ALL SELECT card_number FROM payments" },
	{ "mysql", "SELECT name FROM products WHERE id = 5 AND 1=2 UNION SELECT password FROM users" },
	{ "postgresql", "SELECT name FROM products WHERE (false) UNION SELECT secret FROM vault" },
};

Test(sql_injection, fires_on_classic_payloads)
{
	for (size_t i = 0; i < sizeof sqli_pos / sizeof sqli_pos[0]; i++)
		cr_expect_eq(fires(sqli_pos[i][0], "app_svc", sqli_pos[i][1], "sql_injection"), 1, "case %zu: %s", i,
			     sqli_pos[i][1]);
}

static const char *const sqli_neg[][2] = {
	{ "postgresql", "SELECT * FROM orders WHERE status = 'OR'" },
	{ "postgresql", "SELECT * FROM notes WHERE body = 'x'' UNION SELECT password FROM users --'" },
	{ "postgresql", "SELECT * FROM t WHERE 1=1 AND a = 5" },
	{ "postgresql", "SELECT a FROM t1 UNION SELECT a FROM t2" },
	{ "postgresql", "SELECT * FROM t WHERE a = 1 OR b = 2" },
	{ "postgresql", "SELECT * FROM t WHERE a = 'x' OR b = 'x'" },
	{ "postgresql", "BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT" },
	{ "postgresql", "SELECT * FROM t WHERE name = 'x' -- filter by name" },
	{ "postgresql", "SELECT * FROM t WHERE name = 'x' /*app_user='alice'*/" },
	{ "postgresql", "SELECT * FROM information_schema.tables WHERE table_name = 'x'" },
	{ "postgresql", "SELECT sleep_minutes FROM settings" },
	{ "mysql", "SELECT * FROM t WHERE a = 1 || b = 2" },
	{ "mysql", "SELECT * FROM t WHERE note = 'sleep(5)'" },
	/* psql \d: catalogs on both sides of the UNION */
	{ "postgresql", "SELECT pubname FROM pg_catalog.pg_publication p JOIN pg_catalog.pg_publication_rel pr ON "
			"p.oid = pr.prpubid WHERE pr.prrelid = '16384' UNION SELECT pubname FROM "
			"pg_catalog.pg_publication p WHERE p.puballtables ORDER BY 1" },
	{ "postgresql", "SELECT c.relname FROM pg_catalog.pg_class c UNION ALL SELECT NULL" },
	{ "postgresql", "SELECT a FROM t1 WHERE x = 'a' AND 1=1 UNION SELECT a FROM t2" },
	{ "postgresql", "SELECT a FROM t1 WHERE b > -1 UNION SELECT a FROM t2" },
	{ "postgresql", "SELECT a FROM t WHERE b = -1" },
	{ "postgresql", "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)" },
	{ "postgresql", "UPDATE t SET a = 1 WHERE id = 2; DELETE FROM q WHERE id = 3" },
	{ "postgresql", "CREATE TABLE t (a int); CREATE INDEX ON t (a)" },
};

Test(sql_injection, benign_look_alikes_do_not_fire)
{
	for (size_t i = 0; i < sizeof sqli_neg / sizeof sqli_neg[0]; i++)
		cr_expect_eq(fires(sqli_neg[i][0], "app_svc", sqli_neg[i][1], "sql_injection"), 0, "case %zu: %s", i,
			     sqli_neg[i][1]);
}

/* issue #19: what sqlmap 1.7.2 sends (payloads as captured by make_attack_captures.py), and
 * issue #20's tautology forms */
static const char *const sqlmap_pos[][2] = {
	{ "postgresql", "SELECT a FROM p WHERE id = 1 AND 2407=2407" },
	{ "postgresql", "SELECT a FROM p WHERE category = 'books' AND 'OBZv'='OBZv'" },
	{ "postgresql", "SELECT a FROM p WHERE id = 1 AND NOT 4512=4513" },
	{ "mysql", "SELECT a FROM p WHERE category = 'books' AND 2407=2407-- ZXMA' ORDER BY price" },
	{ "mysql", "SELECT a FROM p WHERE id = 7 AND ORD(MID((SELECT IFNULL(CAST(email AS NCHAR),0x20) FROM "
		   "shop.customers ORDER BY email LIMIT 0,1),12,1))>109" },
	{ "postgresql", "SELECT a FROM p WHERE id = 1 AND ASCII(SUBSTRING((COALESCE(CAST(CURRENT_USER AS "
			"VARCHAR(10000))::text,(CHR(32)))) FROM 1 FOR 1))>64" },
	{ "postgresql", "SELECT a FROM p WHERE id = 1 AND 7799=CAST((CHR(113)||CHR(120)||CHR(98)||CHR(107)||CHR(113))||"
			"(SELECT (CASE WHEN (7799=7799) THEN 1 ELSE 0 END))::text||(CHR(113)||CHR(118)) AS NUMERIC)" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND (SELECT 2282 FROM(SELECT COUNT(*),CONCAT(0x71766a7a71,(SELECT "
		   "(ELT(2282=2282,1))),0x71766b6271,FLOOR(RAND(0)*2))x FROM INFORMATION_SCHEMA.PLUGINS GROUP BY x)a)" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND EXTRACTVALUE(4312,CONCAT(0x5c,0x71766a7a71,(SELECT "
		   "(ELT(4312=4312,1))),0x71766b6271))" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND UPDATEXML(1,CONCAT(0x2e,0x71,(SELECT user())),1)" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND GTID_SUBSET(CONCAT(0x71766a7a71,(SELECT 1)),5236)" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND JSON_KEYS((SELECT CONVERT((SELECT CONCAT(0x71,(SELECT 1)))"
		   " USING utf8)))" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 AND EXP(~(SELECT * FROM (SELECT CONCAT(0x71,0x71))x))" },
	{ "mysql", "SELECT a FROM p WHERE id = 1 UNION ALL SELECT NULL,CONCAT(0x71766a7a71,JSON_ARRAYAGG(CONCAT_WS("
		   "0x7a,password_hash)),0x71) FROM shop.customers-- -" },
	{ "postgresql", "SELECT a FROM p WHERE id = 1 ORDER BY 3-- -" },
	{ "mysql", "SELECT a FROM p WHERE category = 'books' ORDER BY 4587#' ORDER BY price" },
	/* issue #20: tautologies the rules missed */
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR 1::int=1" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR 1 IN (1)" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR 2 BETWEEN 1 AND 3" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR NOT 1=2" },
	{ "postgresql", "SELECT * FROM users WHERE name = 'x' OR 2-1=1" },
	{ "mysql", "SELECT * FROM users WHERE name = 'x' OR 0x61='a'" },
};

Test(sql_injection, sqlmap_forms_fire_first_seen)
{
	for (size_t i = 0; i < sizeof sqlmap_pos / sizeof sqlmap_pos[0]; i++)
		cr_expect_eq(fires(sqlmap_pos[i][0], "app_svc", sqlmap_pos[i][1], "sql_injection"), 1, "case %zu: %s", i,
			     sqlmap_pos[i][1]);
}

/* Benign look-alikes of every new rule: ORM SQL, reporting tools' ORDER BY 2, JSON
 * aggregation, query builders' 1=1 / 1=0, text functions over columns, admin catalog reads. */
static const char *const sqlmap_neg[][2] = {
	{ "postgresql", "SELECT products.id AS products_id FROM products WHERE products.id IN (1, 2) ORDER BY products.id"
			" LIMIT 20 OFFSET 0" },
	{ "postgresql", "SELECT category, count(*), sum(price) FROM products GROUP BY 1 ORDER BY 2 DESC" },
	{ "postgresql", "SELECT name, price FROM products WHERE price BETWEEN 1 AND 30 ORDER BY 2, 1" },
	{ "postgresql", "SELECT json_agg(json_build_object('id', id, 'name', name)) FROM products WHERE category = 'x'" },
	{ "mysql", "SELECT JSON_ARRAYAGG(JSON_OBJECT('id', id, 'name', name)) FROM products WHERE category = 'x'" },
	{ "postgresql", "SELECT * FROM t WHERE a IN (NULL) AND (1 != 1)" },
	{ "postgresql", "SELECT * FROM t WHERE a = 5 AND 1=1" },
	{ "mysql", "SELECT ASCII(SUBSTRING(name, 1, 1)) AS initial FROM customers" },
	{ "mysql", "SELECT CONCAT(first_name, ' ', last_name) FROM customers WHERE id = 3" },
	{ "mysql", "SELECT CONCAT('#', LPAD(HEX(id), 6, '0')) FROM colors" },
	{ "mysql", "SELECT id FROM samples ORDER BY RAND() LIMIT 10" },
	{ "mysql", "SELECT FLOOR(RAND()*10) AS bucket, count(*) FROM t GROUP BY bucket" },
	{ "mysql", "SELECT EXTRACTVALUE(doc, '/order/id') FROM xml_orders WHERE id = 4" },
	{ "postgresql", "SELECT CAST(price AS NUMERIC) FROM products WHERE id = 9" },
	{ "postgresql", "SELECT id, name FROM products WHERE name LIKE '%cable 1=1%' OR note LIKE '%/* gift */%'" },
	{ "postgresql", "SELECT id, name, email FROM customers WHERE name = 'o''reilly'" },
	{ "postgresql", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'" },
	{ "postgresql", "SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attnum > 0" },
	{ "postgresql", "SELECT version(), current_user, current_schema()" },
	{ "postgresql", "SELECT a FROM t WHERE d > now() - interval '2 days' AND 1=1" },
	{ "postgresql", "SELECT a FROM t WHERE b = 1 -- ORDER BY 2" },
	{ "postgresql", "SELECT a FROM t ORDER BY 2 -- newest first" },
	{ "postgresql", "SELECT x FROM t WHERE a BETWEEN 1 AND 2 AND b = 3" },
};

Test(sql_injection, sqlmap_rule_look_alikes_do_not_fire)
{
	for (size_t i = 0; i < sizeof sqlmap_neg / sizeof sqlmap_neg[0]; i++)
		cr_expect_eq(fires(sqlmap_neg[i][0], "app_svc", sqlmap_neg[i][1], "sql_injection"), 0, "case %zu: %s", i,
			     sqlmap_neg[i][1]);
}

/* By structure: the application's clean shape first, then the same shape with a slot
 * replaced; a query builder's extra filter is data-shaped and stays quiet. */
Test(sql_injection, a_known_shape_with_a_slot_replaced)
{
	start_as("postgresql", "app_svc", NULL);
	h_simple(&h, "SELECT id, name FROM products WHERE category = 'books' ORDER BY price", 1, 'I');
	h_simple(&h, "SELECT id, name FROM products WHERE id = 4", 1, 'I');
	h_simple(&h, "SELECT id, name FROM products WHERE id = 4 AND price < 3", 1, 'I');		/* builder */
	h_simple(&h, "SELECT id, name FROM products WHERE category = 'toys' AND stock > 0 ORDER BY price", 1, 'I');
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 0);
	h_simple(&h, "SELECT id, name FROM products WHERE id = 1322-1321", 1, 'I');
	h_simple(&h, "SELECT id, name FROM products WHERE id = (SELECT max(id) FROM orders)", 1, 'I');
	h_simple(&h, "SELECT id, name FROM products WHERE category = 'books' ORDER BY 1-- x", 1, 'I');
	uint64_t q = h_query(&h, EV_Q_SIMPLE, "SELECT id, name FROM products WHERE category = 'books\"))(())),'' ORDER BY price",
			     NULL, 0);
	h_result(&h, q, EV_OUT_ERROR, -1, "42601");
	h_ready(&h, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 4);
	const struct h_finding *f = rec_sink_find(h.sink, "sql_injection");
	cr_expect_not_null(strstr(f->evidence, "\"slot_replaced\""), "%s", f->evidence);
	cr_expect_not_null(strstr(f->evidence, "\"replaced_by\":\"expression\""), "%s", f->evidence);
	cr_expect_not_null(strstr(f->evidence, "\"after\":\"WHERE id =\""), "%s", f->evidence);
	int sub = 0, broken = 0;
	for (int i = 0; i < h.sink->n_f; i++) {
		sub += strstr(h.sink->f[i].evidence, "\"replaced_by\":\"subquery\"") != NULL;
		broken += strstr(h.sink->f[i].evidence, "\"replaced_by\":\"broken_syntax\"") != NULL;
	}
	cr_expect_eq(sub, 1);
	cr_expect_eq(broken, 1);
	h_free(&h);
}

/* Severity follows the damage: a probe is high, reading another table, a credentials
 * column or the catalog is critical. */
Test(sql_injection, severity_follows_damage)
{
	start_as("mysql", "app_svc", NULL);
	h_simple(&h, "SELECT a FROM p WHERE id = 1 AND 2407=2407", 1, 'I');
	h_simple(&h, "SELECT a FROM p WHERE id = 1 UNION ALL SELECT CONCAT(0x71,password_hash) FROM customers-- -", 1, 'I');
	h_simple(&h, "SELECT a FROM p WHERE id = 1 AND ORD(MID((SELECT IFNULL(CAST(schema_name AS NCHAR),0x20) FROM "
		     "INFORMATION_SCHEMA.SCHEMATA LIMIT 0,1),1,1))>64", 1, 'I');
	h_end(&h);
	cr_expect_eq(h.sink->n_f >= 3, 1);
	int crit = 0, high = 0;
	for (int i = 0; i < h.sink->n_f; i++)
		if (!strcmp(h.sink->f[i].kind, "sql_injection")) {
			crit += !strcmp(h.sink->f[i].severity, "critical");
			high += !strcmp(h.sink->f[i].severity, "high");
		}
	cr_expect_eq(high, 1);
	cr_expect_eq(crit, 2);
	h_free(&h);
}

Test(sql_injection, an_emptied_union_the_application_is_known_to_send_is_quiet)
{
	start_as("postgresql", "app_svc", NULL);
	const char *tree = "SELECT name FROM nodes WHERE parent_id = -1 UNION SELECT name FROM archived_nodes";
	h_simple(&h, tree, 1, 'I'); /* first seen: a new shape, judged */
	h_simple(&h, tree, 1, 'I'); /* now a shape this account sends: quiet */
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 1);
	h_free(&h);
}

Test(sql_injection, dba_reading_pg_authid_is_not_injection)
{
	cr_expect_eq(fires("postgresql", "postgres", "SELECT rolname FROM pg_authid", "sql_injection"), 0);
}

Test(sql_injection, stacked_dangerous_statements)
{
	start_as("postgresql", "app_svc", NULL);
	h_simple(&h, "SELECT * FROM users WHERE id = 1; DROP TABLE users", 2, 'I');
	/* behind an application's write too (regression: only behind a SELECT) */
	h_simple(&h, "UPDATE t SET a = 'x'; DROP TABLE users; --'", 2, 'I');
	h_simple(&h, "INSERT INTO log VALUES (1); GRANT ALL ON users TO PUBLIC", 2, 'I');
	h_end(&h);
	const struct h_finding *f = rec_sink_find(h.sink, "sql_injection");
	cr_assert_not_null(f);
	cr_expect_not_null(strstr(f->evidence, "stacked_statement"));
	cr_expect_eq(f->statement_id, h.sink->st[1].id);
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 3);
	/* two DROPs (the same statement from the same actor: one row, count 2), an UPDATE
	 * without WHERE */
	cr_expect_eq(rec_sink_count_kind(h.sink, "destructive_statement"), 2);
	int after_update = 0;
	for (int k = 0; k < h.sink->n_f; k++)
		after_update |= strstr(h.sink->f[k].evidence, "\"stacked_after\":\"UPDATE\"") != NULL;
	cr_expect(after_update);
	h_free(&h);
}

Test(sql_injection, stacked_catalog_read_after_select)
{
	start_as("postgresql", "app_svc", NULL);
	h_simple(&h, "SELECT * FROM items WHERE id = 1; SELECT table_name FROM information_schema.tables", 2, 'I');
	h_simple(&h, "SELECT 1; SELECT 2", 2, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 1);
	h_free(&h);
}

Test(sql_injection, bound_parameters_are_data)
{
	start_as("postgresql", "app_svc", NULL);
	const char *p[] = { "' OR '1'='1' --" };
	uint64_t id = h_query(&h, EV_Q_EXECUTE, "SELECT * FROM users WHERE name = $1", p, 1);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_end(&h);
	cr_expect_eq(h.sink->n_f, 0);
	h_free(&h);
}

Test(sql_injection, finding_carries_context_and_masked_sql)
{
	start_as("postgresql", "app_svc", NULL);
	h_simple(&h, "SELECT * FROM users WHERE name = 'zed' OR 'a'='a' /*app_user='alice',traceparent='00-ab-cd-01'*/", 1,
		 'I');
	h_end(&h);
	const struct h_finding *f = rec_sink_find(h.sink, "sql_injection");
	cr_assert_not_null(f);
	cr_expect_str_eq(f->severity, "high");
	cr_expect_str_eq(f->end_user, "alice");
	cr_expect_str_eq(f->end_user_source, "comment");
	cr_expect_str_eq(f->db_user, "app_svc");
	cr_expect_null(strstr(f->sql, "zed"));
	cr_expect_not_null(strstr(f->evidence, "\"tautology\""));
	cr_expect_not_null(strstr(f->evidence, "00-ab-cd-01"));
	cr_expect(rec_sink_absent(h.sink, "zed"));
	h_free(&h);
}

/* ---- error_burst ---- */

static void errors(int n, const char *code, double gap_s)
{
	for (int i = 0; i < n; i++) {
		uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELEC 1", NULL, 0);
		h_result(&h, id, EV_OUT_ERROR, -1, code);
		h_ready(&h, 'I');
		h_sleep(&h, gap_s);
	}
}

Test(error_burst, one_finding_per_burst)
{
	start_as("postgresql", "app_svc", NULL);
	errors(25, "42601", 1);
	cr_expect_eq(rec_sink_count_kind(h.sink, "error_burst"), 1);
	h_sleep(&h, 120);
	errors(10, "42501", 1);
	h_end(&h);
	/* the second burst is within repeat_interval_s (300 s): it updates the first row */
	cr_expect_eq(rec_sink_count_kind(h.sink, "error_burst"), 1);
	cr_expect_eq(h.sink->n_f, 2);
	cr_expect_eq(h.sink->f[1].id, h.sink->f[0].id);
	const struct h_finding *f = rec_sink_find(h.sink, "error_burst");
	cr_expect_not_null(strstr(f->evidence, "\"threshold\":10"));
	h_free(&h);
}

Test(error_burst, below_threshold_or_other_errors_do_not_fire)
{
	start_as("postgresql", "app_svc", NULL);
	errors(4, "42601", 1);	  /* syntax errors weigh 2: 8 < 10 */
	errors(30, "23505", 0.1); /* unique violations are application bugs, not probing */
	h_free(&h);
	start_as("mysql", "app_svc", NULL);
	errors(20, "1064", 20); /* spread out: never weight 10 within 60 s */
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "error_burst"), 0);
	h_free(&h);
}

Test(error_burst, per_end_user_across_sessions)
{
	h_init(&h);
	svc(&h, "app_svc");
	h_start(&h);
	for (int s = 0; s < 5; s++) {
		h_open(&h, "postgresql", NULL);
		h_startup(&h, "app_svc", "shop", "web");
		for (int i = 0; i < 2; i++) {
			uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELECT x FROM t WHERE /*app_user='mallory'*/ 1=", NULL, 0);
			h_result(&h, id, EV_OUT_ERROR, -1, "42601");
			h_ready(&h, 'I');
			h_sleep(&h, 1);
		}
		h_close(&h, h.s);
	}
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "error_burst"), 1);
	cr_expect_not_null(strstr(rec_sink_find(h.sink, "error_burst")->evidence, "end_user"));
	h_free(&h);
}

/* ---- auth_bruteforce ---- */

static void failed_login(const char *client, const char *user)
{
	h_open(&h, "postgresql", client);
	h_startup(&h, user, "shop", "psql");
	h_login(&h, 0);
	h_close(&h, h.s);
	h_sleep(&h, 2);
}

Test(auth_bruteforce, one_finding_per_burst_with_the_count)
{
	h_init(&h);
	h_start(&h);
	for (int i = 0; i < 12; i++)
		failed_login("203.0.113.9", i % 2 ? "admin" : "root");
	/* raised when the threshold is crossed, while the burst goes on */
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 1);
	cr_expect_not_null(strstr(rec_sink_find(h.sink, "auth_bruteforce")->evidence, "\"failures\":5"));
	h_sleep(&h, 200);
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 1);
	h_end(&h);
	/* then the same row is updated with the count */
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 1);
	const struct h_finding *f = rec_sink_last(h.sink, "auth_bruteforce");
	cr_expect_not_null(strstr(f->evidence, "\"failures\":12"), "%s", f->evidence);
	cr_expect_not_null(strstr(f->evidence, "\"accounts\":[\"root\",\"admin\"]"), "%s", f->evidence);
	cr_expect_not_null(strstr(f->summary, "203.0.113.9"));
	cr_expect_str_eq(f->severity, "high");
	h_free(&h);
}

Test(auth_bruteforce, below_threshold_or_spread_out_does_not_fire)
{
	h_init(&h);
	h_start(&h);
	for (int i = 0; i < 4; i++)
		failed_login("198.51.100.7", "bob");
	h_sleep(&h, 400);
	for (int i = 0; i < 10; i++) {
		failed_login("198.51.100.8", "carol");
		h_sleep(&h, 60);
	}
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 0);
	h_free(&h);
}

Test(auth_bruteforce, distributed_attack_on_one_account)
{
	h_init(&h);
	h_start(&h);
	char ip[32];
	for (int i = 0; i < 6; i++) {
		snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
		failed_login(ip, "postgres");
	}
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 1);
	cr_expect_not_null(strstr(rec_sink_find(h.sink, "auth_bruteforce")->evidence, "failed_logins_per_account"));
	h_free(&h);
}

Test(auth_bruteforce, success_after_burst_raises_severity)
{
	h_init(&h);
	h_start(&h);
	for (int i = 0; i < 6; i++)
		failed_login("203.0.113.50", "admin");
	h_open(&h, "postgresql", "203.0.113.50");
	h_startup(&h, "admin", "shop", "psql");
	h_login(&h, 1);
	h_end(&h);
	const struct h_finding *f = rec_sink_last(h.sink, "auth_bruteforce");
	cr_assert_not_null(f);
	cr_expect_str_eq(f->severity, "critical");
	cr_expect_not_null(strstr(f->evidence, "\"login_succeeded_after\":true"));
	cr_expect_not_null(strstr(f->summary, "then a login as admin"), "%s", f->summary);
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 1);
	h_free(&h);
}

/* hydra against two accounts with 200 guesses: every account named, exact counts, and the
 * PostgreSQL and MariaDB bursts of one client are counted apart */
Test(auth_bruteforce, names_every_account_and_counts_per_protocol)
{
	h_init(&h);
	h_start(&h);
	char acct[32];
	for (int i = 0; i < 200; i++) {
		snprintf(acct, sizeof acct, "user%d", i % 40);
		h_open(&h, "postgresql", "203.0.113.77");
		h_startup(&h, acct, "shop", "hydra");
		h_login(&h, 0);
		h_close(&h, h.s);
		h_sleep(&h, 0.05);
	}
	for (int i = 0; i < 6; i++) {
		h_open(&h, "mysql", "203.0.113.77");
		h_startup(&h, "root", "", "hydra");
		h_login(&h, 0);
		h_close(&h, h.s);
	}
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "auth_bruteforce"), 2);
	const struct h_finding *f = NULL;
	for (int i = 0; i < h.sink->n_f; i++)
		if (strstr(h.sink->f[i].evidence, "\"protocol\":\"postgresql\""))
			f = &h.sink->f[i];
	cr_assert_not_null(f);
	cr_expect_not_null(strstr(f->evidence, "\"failures\":200"), "%s", f->evidence);
	cr_expect_not_null(strstr(f->evidence, "\"distinct_accounts\":40"), "%s", f->evidence);
	cr_expect_not_null(strstr(f->evidence, "\"user31\""), "%s", f->evidence);
	cr_expect_null(strstr(f->evidence, "\"user32\""), "%s", f->evidence); /* names kept up to 32 */
	/* updated while it went on: at most once a second of packet time */
	int puts = 0;
	for (int i = 0; i < h.sink->n_f; i++)
		puts += strstr(h.sink->f[i].evidence, "\"protocol\":\"postgresql\"") != NULL;
	cr_expect(puts >= 5 && puts <= 13, "%d puts", puts);
	h_free(&h);
}

/* ---- privilege_change ---- */

Test(privilege_change, grants_roles_and_passwords_fire)
{
	cr_expect_eq(fires("postgresql", "app_svc", "GRANT SELECT ON t TO bob", "privilege_change"), 1);
	cr_expect_eq(fires("postgresql", "app_svc", "REVOKE ALL ON t FROM bob", "privilege_change"), 1);
	cr_expect_eq(fires("postgresql", "app_svc", "CREATE ROLE r LOGIN", "privilege_change"), 1);
	cr_expect_eq(fires("postgresql", "app_svc", "DROP USER bob", "privilege_change"), 1);
	cr_expect_eq(fires("mysql", "app_svc", "CREATE USER 'x'@'%' IDENTIFIED BY 'pw'", "privilege_change"), 1);
	cr_expect_eq(fires("mysql", "app_svc", "SET PASSWORD FOR bob = 'pw'", "privilege_change"), 1);
	cr_expect_eq(fires("mysql", "app_svc", "RENAME USER a TO b", "privilege_change"), 1);
	cr_expect_eq(fires("postgresql", "app_svc", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
			   "privilege_change"), 1);
}

Test(privilege_change, look_alikes_do_not_fire)
{
	cr_expect_eq(fires("postgresql", "app_svc", "SET ROLE admin", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "SELECT grant_id FROM grants", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "CREATE USER MAPPING FOR bob SERVER s", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "ALTER TABLE users ADD COLUMN role text", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "ALTER ROLE app_svc SET search_path = app, public", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "ALTER USER app_svc IN DATABASE shop RESET work_mem", "privilege_change"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "ALTER ROLE bob WITH LOGIN", "privilege_change"), 1);
}

Test(privilege_change, superuser_is_critical)
{
	start_as("postgresql", "app_svc", NULL);
	h_simple(&h, "ALTER ROLE bob WITH SUPERUSER", 1, 'I');
	h_simple(&h, "GRANT ALL PRIVILEGES ON *.* TO 'x'@'%'", 1, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "privilege_change"), 2);
	cr_expect_str_eq(h.sink->f[0].severity, "critical");
	cr_expect_str_eq(h.sink->f[1].severity, "critical");
	h_free(&h);
}

static void admin_cfg(struct harness *x, const char *policy)
{
	x->cfg.admin_hosts.v[x->cfg.admin_hosts.n++] = strdup("10.1.0.0/16");
	x->cfg.admin_users.v[x->cfg.admin_users.n++] = strdup("dba");
	x->cfg.admin_policy = !strcmp(policy, "allow") ? AN_ADMIN_ALLOW : !strcmp(policy, "downgrade") ? AN_ADMIN_DOWNGRADE
											      : AN_ADMIN_REPORT;
}

Test(privilege_change, admin_dba_from_admin_host_allowed_by_config)
{
	h_init(&h);
	admin_cfg(&h, "allow");
	h_start(&h);
	h_open(&h, "postgresql", "10.1.2.3");
	h_startup(&h, "dba", "shop", "psql");
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I');
	/* same DBA from elsewhere is reported */
	h_open(&h, "postgresql", "10.9.9.9");
	h_startup(&h, "dba", "shop", "psql");
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I');
	/* another user on the admin host is reported */
	h_open(&h, "postgresql", "10.1.2.4");
	h_startup(&h, "intern", "shop", "psql");
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "privilege_change"), 2);
	h_free(&h);

	h_init(&h);
	admin_cfg(&h, "downgrade");
	h_start(&h);
	h_open(&h, "postgresql", "10.1.2.3");
	h_startup(&h, "dba", "shop", "psql");
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I');
	h_end(&h);
	cr_assert_eq(rec_sink_count_kind(h.sink, "privilege_change"), 1);
	cr_expect_str_eq(h.sink->f[0].severity, "info");
	h_free(&h);
}

Test(privilege_change, set_role_is_kept_for_admin_checks)
{
	h_init(&h);
	admin_cfg(&h, "allow");
	h_start(&h);
	h_open(&h, "postgresql", "10.1.2.3");
	h_startup(&h, "alice", "shop", "psql");
	h_simple(&h, "SET ROLE dba", 1, 'I');
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I');
	h_simple(&h, "RESET ROLE", 1, 'I');
	h_simple(&h, "GRANT SELECT ON t TO carl", 1, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "privilege_change"), 1);
	cr_expect_not_null(strstr(h.sink->f[0].summary, "carl"), "%s", h.sink->f[0].summary);
	h_free(&h);
}

/* ---- destructive_statement ---- */

Test(destructive_statement, fires)
{
	const char *pos[] = { "DROP TABLE users", "drop table if exists public.users cascade", "TRUNCATE orders",
			      "DELETE FROM orders", "UPDATE t SET a = (SELECT b FROM c WHERE d = 1)", "DROP SCHEMA s CASCADE",
			      "DROP DATABASE shop" };
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
		cr_expect_eq(fires("postgresql", "app_svc", pos[i], "destructive_statement"), 1, "%s", pos[i]);
}

Test(destructive_statement, look_alikes_do_not_fire)
{
	const char *neg[] = { "DELETE FROM orders WHERE id = 1", "UPDATE t SET a = 1 WHERE id = 2", "DROP INDEX i",
			      "SELECT 'DROP TABLE x'", "CREATE TABLE drop_log (a int)" };
	for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++)
		cr_expect_eq(fires("postgresql", "app_svc", neg[i], "destructive_statement"), 0, "%s", neg[i]);
	cr_expect_eq(fires("mysql", "app_svc", "DROP TEMPORARY TABLE tmp", "destructive_statement"), 0);
}

/* ---- bulk_read ---- */

Test(bulk_read, rows_or_bytes_over_threshold)
{
	start_as("postgresql", "app_svc", NULL);
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELECT * FROM customers", NULL, 0);
	h_result_bytes(&h, id, 20000, 1000, "SELECT 20000");
	id = h_query(&h, EV_Q_SIMPLE, "UPDATE t SET a = 1 WHERE b > 0", NULL, 0);
	h_result_bytes(&h, id, 20000, 0, "UPDATE 20000");
	id = h_query(&h, EV_Q_SIMPLE, "SELECT * FROM small", NULL, 0);
	h_result_bytes(&h, id, 9999, 100, "SELECT 9999");
	/* exactly at the thresholds: not more than them (regression: >= fired here) */
	id = h_query(&h, EV_Q_SIMPLE, "SELECT * FROM edge", NULL, 0);
	h_result_bytes(&h, id, 10000, 50ull << 20, "SELECT 10000");
	id = h_query(&h, EV_Q_SIMPLE, "SELECT blob FROM files", NULL, 0);
	h_result_bytes(&h, id, 3, 60ull << 20, "SELECT 3");
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "bulk_read"), 2);
	cr_expect_not_null(strstr(h.sink->f[0].evidence, "\"threshold_rows\":10000"));
	cr_expect_eq(h.sink->last_session.rows_returned, 20000 + 9999 + 10000 + 3);
	h_free(&h);
}

/* ---- data_export ---- */

Test(data_export, fires)
{
	const char *pg[] = { "COPY users TO '/tmp/u.csv'", "COPY (SELECT * FROM users) TO STDOUT WITH CSV",
			     "COPY t FROM PROGRAM 'curl http://x'", "SELECT pg_read_file('/etc/passwd')",
			     "SELECT lo_export(1234, '/tmp/x')" };
	for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++)
		cr_expect_eq(fires("postgresql", "app_svc", pg[i], "data_export"), 1, "%s", pg[i]);
	cr_expect_eq(fires("mysql", "app_svc", "SELECT * FROM users INTO OUTFILE '/tmp/x'", "data_export"), 1);
	cr_expect_eq(fires("mysql", "app_svc", "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", "data_export"), 1);
	cr_expect_eq(fires("mysql", "app_svc", "SELECT LOAD_FILE('/etc/shadow')", "data_export"), 1);
}

Test(data_export, look_alikes_do_not_fire)
{
	cr_expect_eq(fires("postgresql", "app_svc", "COPY users FROM STDIN", "data_export"), 0);
	cr_expect_eq(fires("postgresql", "app_svc", "SELECT * FROM files WHERE name = 'pg_read_file'", "data_export"), 0);
	cr_expect_eq(fires("mysql", "app_svc", "SELECT outfile FROM exports", "data_export"), 0);
}

Test(data_export, server_file_request_event)
{
	start_as("mysql", "app_svc", NULL);
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELECT 1", NULL, 0);
	struct ev e = { .type = EV_DATA_MOVE, .ts = h.t };
	e.u.data_move.to_client = 0;
	e.u.data_move.what = STRV_LIT("/etc/passwd");
	h_event(&h, &e);
	h_result(&h, id, EV_OUT_OK, 0, NULL);
	h_end(&h);
	const struct h_finding *f = rec_sink_find(h.sink, "data_export");
	cr_assert_not_null(f);
	cr_expect_not_null(strstr(f->evidence, "local_infile_request"));
	cr_expect_not_null(strstr(f->evidence, "/etc/passwd"));
	h_free(&h);
}

Test(data_export, data_move_belongs_to_the_executing_statement)
{
	h_init(&h);
	svc(&h, "app_svc");
	h.cfg.repeat_interval_s = 0; /* two rows, each naming its statement */
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	h_startup(&h, "app_svc", "shop", "web");
	h_login(&h, 1);
	uint64_t a = h_query(&h, EV_Q_EXECUTE, "SELECT 1", NULL, 0);
	uint64_t b = h_query(&h, EV_Q_EXECUTE, "SELECT 2", NULL, 0);
	struct ev e = { .type = EV_DATA_MOVE, .ts = h.t };
	e.u.data_move.to_client = 0;
	e.u.data_move.what = STRV_LIT("/etc/passwd");
	h_event(&h, &e);
	h_result(&h, a, EV_OUT_OK, 0, NULL);
	h_result(&h, b, EV_OUT_OK, 1, NULL);
	uint64_t c2 = h_query(&h, EV_Q_SIMPLE, "SELECT 3; SELECT 4", NULL, 0);
	h_result(&h, c2, EV_OUT_OK, 1, NULL);
	h_event(&h, &e);
	h_result(&h, c2, EV_OUT_OK, 1, NULL);
	h_end(&h);
	cr_assert_eq(rec_sink_count_kind(h.sink, "data_export"), 2);
	cr_expect_eq(h.sink->f[0].statement_id, h.sink->st[0].id);
	cr_expect_eq(h.sink->f[1].statement_id, h.sink->st[3].id);
	h_free(&h);
}

Test(data_export, pg_dump_by_admin_follows_policy)
{
	h_init(&h);
	admin_cfg(&h, "allow");
	h_start(&h);
	h_open(&h, "postgresql", "10.1.0.9");
	h_startup(&h, "dba", "shop", "pg_dump");
	h_simple(&h, "COPY public.users (id, name) TO stdout;", 1, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "data_export"), 0);
	h_free(&h);
}

/* ---- cleartext_password ---- */

Test(cleartext_password, once_per_session_and_not_under_tls)
{
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	h_startup(&h, "bob", "shop", "psql");
	struct ev a = { .type = EV_AUTH, .ts = h.t };
	a.u.auth.method = "cleartext";
	h_event(&h, &a);
	struct ev c = { .type = EV_CLEARTEXT_PASSWORD, .ts = h.t };
	h_event(&h, &c);
	h_event(&h, &c);
	h_open(&h, "postgresql", NULL);
	struct ev t = { .type = EV_TLS, .ts = h.t };
	h_event(&h, &t);
	h_event(&h, &c);
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "cleartext_password"), 1);
	cr_expect_not_null(strstr(rec_sink_find(h.sink, "cleartext_password")->summary, "bob"));
	h_free(&h);
}

/* ---- sensitive_access ---- */

static void sens_cfg(struct harness *x)
{
	struct an_sensitive *s = &x->cfg.sensitive[x->cfg.n_sensitive++];
	s->table = strdup("customers");
	s->columns.v[s->columns.n++] = strdup("ssn");
	s->allow.v[s->allow.n++] = strdup("billing_svc");
	s->allow.v[s->allow.n++] = strdup("auditor");
}

static int sens(const char *user, const char *sql)
{
	h_init(&h);
	svc(&h, "app_svc");
	sens_cfg(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	h_startup(&h, user, "shop", "web");
	h_simple(&h, sql, 1, 'I');
	h_end(&h);
	int n = rec_sink_count_kind(h.sink, "sensitive_access");
	h_free(&h);
	return n;
}

Test(sensitive_access, configured_columns_by_unlisted_principal)
{
	cr_expect_eq(sens("app_svc", "SELECT name, ssn FROM customers"), 1);
	cr_expect_eq(sens("app_svc", "SELECT * FROM public.customers WHERE id = 1"), 1);
	cr_expect_eq(sens("app_svc", "SELECT c.* FROM customers c"), 1);
	cr_expect_eq(sens("app_svc", "UPDATE customers SET ssn = '1' WHERE id = 2"), 1);
	cr_expect_eq(sens("app_svc", "SELECT name FROM customers"), 0);
	cr_expect_eq(sens("billing_svc", "SELECT ssn FROM customers"), 0);
	cr_expect_eq(sens("app_svc", "SELECT ssn FROM customers /*app_user='auditor'*/"), 0);
	cr_expect_eq(sens("app_svc", "SELECT ssn FROM other"), 0);
	cr_expect_eq(sens("app_svc", "SELECT count(*) FROM customers"), 0);
}

/* ---- protocol_anomaly ---- */

Test(protocol_anomaly, rate_limited_per_session)
{
	start_as("postgresql", "app_svc", NULL);
	struct ev e = { .type = EV_ANOMALY, .ts = h.t, .to_server = 1 };
	e.u.anomaly.what = "pgsql: message length < 4";
	for (int i = 0; i < 10; i++)
		h_event(&h, &e);
	h_end(&h);
	/* 3 per session reported, and those repeats update one row */
	cr_expect_eq(h.sink->n_f, 3);
	cr_expect_eq(rec_sink_count_kind(h.sink, "protocol_anomaly"), 1);
	cr_expect_not_null(strstr(h.sink->f[0].summary, "message length"));
	cr_expect_str_eq(h.sink->f[0].severity, "low");
	h_free(&h);
}

/* hydra opens a session per guess: per client across its sessions, and one row per repeat */
Test(protocol_anomaly, rate_limited_per_client_and_repeats_update_one_row)
{
	h_init(&h);
	h_start(&h);
	for (int s = 0; s < 50; s++) {
		h_open(&h, "mysql", "10.0.0.9");
		struct ev e = { .type = EV_ANOMALY, .ts = h.t, .to_server = 1 };
		e.u.anomaly.what = "mysql: handshake response truncated";
		h_event(&h, &e);
		h_close(&h, h.s);
		h_sleep(&h, 0.5);
	}
	h_end(&h);
	cr_expect_eq(h.sink->n_f, 10); /* anomaly_per_client */
	cr_expect_eq(rec_sink_count_kind(h.sink, "protocol_anomaly"), 1);
	h_free(&h);
}

/* Issue #20: TCP evasion (the capture layer, once per flow) is never capped: an attacker
 * who first sends a dozen malformed messages must not be able to evade unseen. */
Test(protocol_anomaly, tcp_evasion_is_never_capped)
{
	h_init(&h);
	h_start(&h);
	struct ev junk = { .type = EV_ANOMALY, .to_server = 1 };
	junk.u.anomaly.what = "pgsql: message length < 4";
	struct ev evade = { .type = EV_ANOMALY, .to_server = 1 };
	evade.u.anomaly.what = "tcp evasion: data without ACK (the server discards it)";
	evade.u.anomaly.evasion = 1;
	for (int s = 0; s < 16; s++) {
		h_open(&h, "postgresql", "10.0.0.9");
		for (int i = 0; i < 5; i++) { /* the client's and the session's caps, used up */
			junk.ts = h.t;
			h_event(&h, &junk);
		}
		if (s >= 12) {
			evade.ts = h.t;
			h_event(&h, &evade);
		}
		h_close(&h, h.s);
		h_sleep(&h, 0.5);
	}
	h_end(&h);
	int evasions = 0;
	for (int i = 0; i < h.sink->n_f; i++)
		evasions += strstr(h.sink->f[i].evidence, "\"tcp_evasion\"") != NULL;
	cr_expect_eq(evasions, 4, "each evading flow reported (%d)", evasions);
	cr_expect_eq(h.sink->n_f, 10 + 4, "the malformed ones stay capped");
	h_free(&h);
}

/* ---- core behaviour the detectors rely on ---- */

Test(core, audit_findings_stores_only_statements_backing_findings)
{
	h_init(&h);
	svc(&h, "app_svc");
	h.cfg.audit = AN_AUDIT_FINDINGS;
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	h_startup(&h, "app_svc", "shop", "web");
	h_simple(&h, "SELECT 1", 1, 'I');
	h_simple(&h, "DROP TABLE users", 1, 'I');
	h_simple(&h, "SELECT 2", 1, 'I');
	h_end(&h);
	cr_assert_eq(h.sink->n_st, 1);
	cr_expect_str_eq(h.sink->st[0].verb, "DROP");
	cr_assert_eq(h.sink->n_f, 1);
	cr_expect_eq(h.sink->f[0].statement_id, h.sink->st[0].id);
	cr_expect_eq(h.sink->last_session.statements, 3);
	h_free(&h);
}

Test(core, pending_statements_are_capped_and_counted)
{
	h_init(&h);
	h.cfg.max_pending = 2;
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	for (int i = 0; i < 5; i++)
		h_query(&h, EV_Q_EXECUTE, "SELECT 1", NULL, 0);
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.pending_dropped, 3);
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 2); /* completed as unknown at the end */
	cr_expect_str_eq(h.sink->st[0].outcome, "unknown");
	h_free(&h);
}

Test(core, pending_ring_grows_in_order_while_wrapped)
{
	/* The ring starts at 8 entries and doubles: grow it while its head is not at 0. */
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	uint64_t id[16];
	char sql[32];
	for (int i = 0; i < 6; i++) {
		snprintf(sql, sizeof sql, "SELECT * FROM t%d", i);
		id[i] = h_query(&h, EV_Q_EXECUTE, sql, NULL, 0);
	}
	for (int i = 0; i < 4; i++)
		h_result(&h, id[i], EV_OUT_OK, 1, NULL);
	for (int i = 6; i < 16; i++) {
		snprintf(sql, sizeof sql, "SELECT * FROM t%d", i);
		id[i] = h_query(&h, EV_Q_EXECUTE, sql, NULL, 0);
	}
	for (int i = 4; i < 16; i++)
		h_result(&h, id[i], EV_OUT_OK, 1, NULL);
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.pending_dropped, 0);
	h_end(&h);
	cr_assert_eq(h.sink->n_st, 16);
	for (int i = 0; i < 16; i++) {
		snprintf(sql, sizeof sql, "SELECT * FROM t%d", i);
		cr_expect_str_eq(h.sink->st[i].sql, sql);
		cr_expect_str_eq(h.sink->st[i].outcome, "ok");
	}
	h_free(&h);
}

Test(core, skipped_statements_are_not_stored)
{
	start_as("postgresql", "app_svc", NULL);
	uint64_t a = h_query(&h, EV_Q_EXECUTE, "INSERT INTO t VALUES ($1)", NULL, 0);
	uint64_t b = h_query(&h, EV_Q_EXECUTE, "INSERT INTO t VALUES ($1)", NULL, 0);
	h_result(&h, a, EV_OUT_ERROR, -1, "23505");
	h_result(&h, b, EV_OUT_SKIPPED, -1, NULL);
	h_ready(&h, 'I');
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.statements_skipped, 1);
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 1);
	cr_expect_eq(h.sink->st[0].duration_us, 250);
	cr_expect_eq(h.sink->last_session.errors, 1);
	h_free(&h);
}

Test(core, lost_results_complete_earlier_statements_as_unknown)
{
	start_as("postgresql", "app_svc", NULL);
	uint64_t a = h_query(&h, EV_Q_EXECUTE, "SELECT 1", NULL, 0);
	uint64_t b = h_query(&h, EV_Q_EXECUTE, "SELECT 2", NULL, 0);
	(void)a;
	h_result(&h, b, EV_OUT_OK, 1, NULL);
	h_end(&h);
	cr_assert_eq(h.sink->n_st, 2);
	cr_expect_str_eq(h.sink->st[0].outcome, "unknown");
	cr_expect_str_eq(h.sink->st[1].outcome, "ok");
	h_free(&h);
}

Test(core, session_table_evicts_least_recent)
{
	h_init(&h);
	h.cfg.max_sessions = 2;
	h_start(&h);
	struct an_session *a = h_open(&h, "postgresql", NULL);
	struct an_session *b = h_open(&h, "postgresql", NULL);
	h.s = a;
	h_simple(&h, "SELECT 1", 1, 'I'); /* a is now the most recent: b goes */
	struct an_session *c = h_open(&h, "postgresql", NULL);
	h.s = b;
	h_simple(&h, "SELECT 2", 1, 'I'); /* ignored */
	struct an_stats st;
	an_get_stats(h.an, &st);
	cr_expect_eq(st.sessions_evicted, 1);
	cr_expect_eq(st.events_after_evict, 3);
	h_close(&h, b);
	h_close(&h, a);
	h_close(&h, c);
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 1);
	h_free(&h);
}

Test(core, session_record_lifecycle)
{
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	cr_expect_eq(h.sink->n_session_puts, 1);
	cr_expect_str_eq(h.sink->last_session.login, "unknown");
	h_startup(&h, "bob", "shop", "psql");
	struct ev a = { .type = EV_AUTH, .ts = h.t };
	a.u.auth.method = "scram-sha-256";
	h_event(&h, &a);
	h_login(&h, 0);
	cr_expect_str_eq(h.sink->last_session.login, "failed");
	cr_expect_str_eq(h.sink->last_session.login_error, "28P01: password authentication failed for user");
	h_close(&h, h.s);
	cr_expect_str_eq(h.sink->last_session.end_reason, "close");
	cr_expect_str_eq(h.sink->last_session.auth_method, "scram-sha-256");
	h_end(&h);
	h_free(&h);
}

Test(core, sinks_flushed_about_every_second_of_packet_time)
{
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	for (int i = 0; i < 10; i++)
		h_sleep(&h, 0.5);
	cr_expect_geq(h.sink->flushes, 4);
	cr_expect_leq(h.sink->flushes, 6);
	h_free(&h);
}

Test(core, mysql_multi_statement_ends_with_the_last_result)
{
	start_as("mysql", "app_svc", NULL);
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELECT 1; SELECT 2; SELECT 3", NULL, 0);
	struct ev r = { .type = EV_RESULT, .ts = h.t + 10 };
	r.u.result.id = id;
	r.u.result.rows = 1;
	r.u.result.more = 1;
	h_event(&h, &r);
	r.u.result.more = 0; /* the server says this was the last one */
	h_event(&h, &r);
	cr_expect_eq(h.sink->n_st, 3);
	cr_expect_str_eq(h.sink->st[2].outcome, "unknown");
	h_end(&h);
	h_free(&h);
}

Test(core, statements_without_results_complete_after_idle_timeout)
{
	h_init(&h);
	h.cfg.idle_timeout_s = 30;
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	h_query(&h, EV_Q_SIMPLE, "SELECT pg_sleep(1000)", NULL, 0);
	h_sleep(&h, 10);
	cr_expect_eq(h.sink->n_st, 0);
	h_sleep(&h, 45);
	cr_expect_eq(h.sink->n_st, 1);
	cr_expect_str_eq(h.sink->st[0].outcome, "unknown");
	h_free(&h);
}

Test(core, midstream_and_tls_sessions)
{
	h_init(&h);
	h_start(&h);
	struct an_flow f = { .protocol = "postgresql", .dialect = EV_DIALECT_POSTGRESQL,
			     .client_ip = "10.0.0.9", .server_ip = "10.0.0.1", .client_port = 50000,
			     .server_port = 5432, .ts = h.t, .midstream = 1 };
	h.s = an_open(h.an, &f);
	h_simple(&h, "SELECT 1", 1, 'I');
	cr_expect_null(h.sink->st[0].end_user);
	struct ev t = { .type = EV_TLS, .ts = h.t };
	h_event(&h, &t);
	cr_expect_eq(h.sink->last_session.tls, 1);
	cr_expect_eq(h.sink->last_session.midstream, 1);
	h_free(&h);
}

Test(core, session_authorization_sets_the_effective_role)
{
	h_init(&h);
	admin_cfg(&h, "allow");
	h_start(&h);
	h_open(&h, "postgresql", "10.1.2.3");
	h_startup(&h, "postgres", "shop", "psql");
	h_simple(&h, "SET SESSION AUTHORIZATION dba", 1, 'I');
	h_simple(&h, "GRANT SELECT ON t TO bob", 1, 'I'); /* as dba from an admin host: allowed */
	h_simple(&h, "RESET SESSION AUTHORIZATION", 1, 'I');
	h_simple(&h, "GRANT SELECT ON t TO carl", 1, 'I');
	h_end(&h);
	cr_expect_eq(rec_sink_count_kind(h.sink, "privilege_change"), 1);
	h_free(&h);
}

/* ---- issue #20: the detectors' cost stays linear in hostile statements ----
 * 50 statements of ~16 KiB each: the shapes that were quadratic in det_sql_injection.c
 * (UNION SELECT repeated: every UNION rescanned from the start; /x x/ and # comments: each
 * walked all the later ones) next to ordinary SQL of the same size. These tests only check
 * the verdicts; the cost ratio is measured with callgrind on each test alone
 * (build-x/tests/test_detectors --filter 'complexity/<name>' -j1; see the commit message). */
static void run50(const char *proto, const char *head, const char *unit, const char *tail)
{
	size_t cap = 16 * 1024 + 256;
	char *sql = malloc(cap);
	cr_assert_not_null(sql);
	size_t n = (size_t)snprintf(sql, cap, "%s", head);
	while (n + strlen(unit) + strlen(tail) + 1 < 16 * 1024)
		n += (size_t)snprintf(sql + n, cap - n, "%s", unit);
	snprintf(sql + n, cap - n, "%s", tail);
	start_as(proto, "app_svc", NULL);
	for (int i = 0; i < 50; i++)
		h_simple(&h, sql, 1, 'I');
	h_end(&h);
	free(sql);
}

Test(complexity, ordinary_sql)
{
	run50("postgresql", "SELECT a, b FROM t WHERE x = 1", " AND col_name = 'value' OR other_col < 42", "");
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 0);
	h_free(&h);
}

Test(complexity, union_select_repeated)
{
	run50("postgresql", "SELECT a FROM t WHERE id = 1", " UNION SELECT b", "");
	h_free(&h);
}

Test(complexity, nested_union_subqueries)
{
	run50("postgresql", "SELECT a FROM t WHERE id IN (SELECT b FROM u", " UNION (SELECT b FROM u", ")");
	h_free(&h);
}

Test(complexity, block_comments_repeated)
{
	run50("postgresql", "SELECT a FROM t WHERE id = 1", "/**/", "");
	h_free(&h);
}

Test(complexity, mysql_hash_comments)
{
	run50("mysql", "SELECT a FROM t WHERE id = 1 ", "#x\n", "");
	h_free(&h);
}

Test(complexity, boolean_probes_repeated)
{
	run50("mysql", "SELECT a FROM t WHERE id = 1", " AND 2407=2407", "");
	cr_expect_eq(rec_sink_count_kind(h.sink, "sql_injection"), 50);
	h_free(&h);
}

Test(complexity, concat_hex_repeated)
{
	run50("mysql", "SELECT a FROM t WHERE id = 1 AND 1=CONCAT(0x71", ",CONCAT(0x7171", ")");
	h_free(&h);
}
