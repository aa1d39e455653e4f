/* The SQL normaliser, fingerprint, splitter and secret masking on a table of tricky SQL. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "an.h"
#include "harness.h"
#include "sqlnorm.h"

static struct sn_tok toks[SN_MAX_TOKENS];
static const char *mask(const char *sql, enum sn_dialect d, int keep);

static char *norm(const char *sql, enum sn_dialect d, struct sn_info *info)
{
	static char out[SN_MAX_NORM + 1];
	int tr = 0;
	int n = sn_lex(sql, strlen(sql), d, toks, SN_MAX_TOKENS, &tr);
	sn_normalize(sql, toks, 0, n, d, out, sizeof out, info);
	info->truncated |= tr;
	return out;
}

struct ncase {
	enum sn_dialect d;
	const char *in, *out;
};

static const struct ncase ncases[] = {
	{ SN_PG, "SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = ?" },
	{ SN_PG, "select  *\n\t from Users where name='O''Brien'", "SELECT * FROM users WHERE name = ?" },
	{ SN_PG, "SELECT E'a\\'b; --', 'x' FROM t", "SELECT ?, ? FROM t" },
	{ SN_PG, "SELECT $$a ' b; $$, $tag$ x $$ y ; $tag$ FROM t", "SELECT ?, ? FROM t" },
	{ SN_PG, "SELECT /* a /* nested ' */ still */ 1", "SELECT ?" },
	{ SN_PG, "SELECT \"Weird\"\"Name\" FROM t", "SELECT \"Weird\"\"Name\" FROM t" },
	{ SN_PG, "SELECT 1e5, 0x1F, .5, 3.14, -7, 1_000 FROM t", "SELECT ?, ?, ?, ?, ?, ? FROM t" },
	{ SN_PG, "SELECT a - 1 FROM t", "SELECT a - ? FROM t" },
	{ SN_PG, "SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)" },
	{ SN_PG, "SELECT * FROM t WHERE id NOT IN ('a','b')", "SELECT * FROM t WHERE id NOT IN (?)" },
	{ SN_PG, "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (-3, NULL)", "INSERT INTO t(a, b) VALUES (?, ?)" },
	{ SN_PG, "SELECT count(*) FROM t", "SELECT count(*) FROM t" },
	{ SN_PG, "SELECT a::text, b :: int FROM t", "SELECT a::text, b::int FROM t" },
	{ SN_PG, "SELECT * FROM t WHERE id = $1 AND x = U&'d\\0061t'", "SELECT * FROM t WHERE id = ? AND x = ?" },
	{ SN_PG, "SELECT B'0101', X'1F', N'abc'", "SELECT ?, ?, ?" },
	{ SN_PG, "SELECT 1 -- trailing ' comment\n", "SELECT ?" },
	{ SN_MYSQL, "SELECT * FROM `users` WHERE name = \"bob\" # comment", "SELECT * FROM `users` WHERE name = ?" },
	{ SN_MYSQL, "SELECT 'it\\'s' -- c\n, _utf8mb4'x', X'4142', B'01', N'n', 0b101", "SELECT ?, ?, ?, ?, ?, ?" },
	{ SN_MYSQL, "SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = ? AND b IN (?)" },
	{ SN_MYSQL, "SELECT 1 --1", "SELECT ? - ?" },
	{ SN_MYSQL, "SELECT /*!50000 UNION */ 1", "SELECT UNION ?" },
	{ SN_MYSQL, "SET @app_user := 'x'", "SET @app_user := ?" },
};

Test(sqlnorm, table_of_tricky_sql)
{
	for (size_t i = 0; i < sizeof ncases / sizeof ncases[0]; i++) {
		struct sn_info info;
		const char *got = norm(ncases[i].in, ncases[i].d, &info);
		cr_expect_str_eq(got, ncases[i].out, "case %zu: %s", i, ncases[i].in);
		cr_expect_eq(strlen(info.fingerprint), 16);
		cr_expect(!info.truncated);
	}
}

Test(sqlnorm, keyword_lookup)
{
	/* every keyword used by the normaliser must be found, in any case */
	const char *kws[] = { "ADD", "ALL", "AS", "ASC", "IN", "INDEX", "INTO", "IS", "ON", "ONLY", "OR",
			      "ORDER", "TRUE", "TRUNCATE", "USE", "USER", "USING", "WITH", "SELECT", "VALUES",
			      "transaction", "Identified", "references", "wInDoW" };
	for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
		cr_expect(sn_is_keyword(kws[i], strlen(kws[i])), "%s", kws[i]);
	/* near misses: prefixes, extensions, same length and ends, non-ASCII, empty */
	const char *not[] = { "users", "SEL", "SELECTS", "SELEKT", "INT", "ORD", "A", "ASCII", "WINDOWS",
			      "TRANSACTIONS", "s\xc3\xa9lect", "_", "" };
	for (size_t i = 0; i < sizeof not / sizeof not[0]; i++)
		cr_expect(!sn_is_keyword(not[i], strlen(not[i])), "%s", not[i]);
	cr_expect(sn_is_keyword("SELECT x", 6), "length, not the NUL, ends the word");
}

static const char *fp(const char *sql, enum sn_dialect d)
{
	static char buf[4][17];
	static int k;
	struct sn_info info;
	norm(sql, d, &info);
	k = (k + 1) % 4;
	strcpy(buf[k], info.fingerprint);
	return buf[k];
}

Test(sqlnorm, sqlcommenter_comments_do_not_change_the_fingerprint)
{
	cr_expect_str_eq(fp("SELECT * FROM users WHERE id = 1", SN_PG),
			 fp("select * from users where id=999 /*app_user='alice',traceparent='00-abc-01'*/", SN_PG));
	cr_expect_str_eq(fp("/*controller='x'*/ SELECT a FROM t WHERE b = 'q'", SN_PG),
			 fp("SELECT a FROM t WHERE b = 'zz' -- route=/y", SN_PG));
}

Test(sqlnorm, trailing_semicolons_do_not_change_the_shape)
{
	cr_expect_str_eq(fp("SELECT a FROM t WHERE id = $1;", SN_PG), fp("SELECT a FROM t WHERE id = 7", SN_PG));
	cr_expect_str_eq(fp("SELECT 1 ; ; -- done", SN_PG), fp("SELECT 1", SN_PG));
	cr_expect_str_eq(mask("SELECT 'x' /*app_user='a'*/ ;", SN_PG, 1), "SELECT 'x' /*app_user='a'*/");
}

Test(sqlnorm, different_literals_same_fingerprint)
{
	cr_expect_str_eq(fp("SELECT a FROM t WHERE id IN (1,2,3)", SN_PG), fp("SELECT a FROM t WHERE id IN (7)", SN_PG));
	cr_expect_str_eq(fp("SELECT a FROM t WHERE b = 'x' AND c = 1.5", SN_PG),
			 fp("SELECT a FROM t WHERE b = $$y$$ AND c = -2", SN_PG));
	cr_expect_str_eq(fp("INSERT INTO t VALUES (1,2)", SN_MYSQL), fp("INSERT INTO t VALUES (3,4),(5,6)", SN_MYSQL));
	cr_expect_str_neq(fp("SELECT a FROM t", SN_PG), fp("SELECT b FROM t", SN_PG));
	cr_expect_str_neq(fp("SELECT a FROM t WHERE x = 1", SN_PG), fp("SELECT a FROM t WHERE x = 1 OR 1 = 1", SN_PG));
}

Test(sqlnorm, verb_and_tables)
{
	struct sn_info info;
	norm("WITH x AS (SELECT 1) DELETE FROM public.accounts a USING x", SN_PG, &info);
	cr_expect_str_eq(info.verb, "DELETE");
	cr_expect_eq(info.n_tables, 1);
	cr_expect_str_eq(info.tables[0], "public.accounts");
	norm("select * from a, \"B\" join c on true", SN_PG, &info);
	cr_expect_str_eq(info.verb, "SELECT");
	cr_expect_eq(info.n_tables, 3);
	cr_expect_str_eq(info.tables[1], "B");
	norm("SELECT user, host FROM mysql.user", SN_MYSQL, &info);
	cr_expect_str_eq(info.tables[0], "mysql.user");
}

static int split(const char *sql, enum sn_dialect d, struct sn_range *parts, int *more)
{
	int tr;
	int n = sn_lex(sql, strlen(sql), d, toks, SN_MAX_TOKENS, &tr);
	return sn_split(sql, toks, n, parts, SN_MAX_PARTS, more);
}

Test(sqlnorm, splitter_respects_quotes_comments_and_routine_bodies)
{
	struct sn_range p[SN_MAX_PARTS];
	int more;
	const char *a = "SELECT ';' ; SELECT $$;$$, E'\\';'; -- c;\n";
	cr_expect_eq(split(a, SN_PG, p, &more), 2);
	cr_expect_eq(strncmp(a + p[1].off, "SELECT $$;$$, E'\\';'", p[1].len), 0);
	cr_expect_eq(split("SELECT 1;SELECT 2", SN_PG, p, &more), 2);
	cr_expect_eq(split(";;; -- nothing\n", SN_PG, p, &more), 0);
	const char *f = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3";
	cr_expect_eq(split(f, SN_PG, p, &more), 2);
	const char *m = "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; "
			"SELECT 'a;b'; END; SELECT 3";
	cr_expect_eq(split(m, SN_MYSQL, p, &more), 2);
	cr_expect_eq(split("SELECT 'a\\';b' # x;\n; SELECT 2", SN_MYSQL, p, &more), 2);
	cr_expect_eq(split("BEGIN; UPDATE t SET a = 1; COMMIT;", SN_PG, p, &more), 3);
}

Test(sqlnorm, splitter_caps_parts_and_merges_the_rest)
{
	char buf[2000] = "";
	for (int i = 0; i < 100; i++)
		strcat(buf, "SELECT 1;");
	struct sn_range p[SN_MAX_PARTS];
	int more;
	cr_expect_eq(split(buf, SN_PG, p, &more), SN_MAX_PARTS);
	cr_expect_eq(more, 1);
}

static const char *mask(const char *sql, enum sn_dialect d, int keep)
{
	static char out[4096];
	struct sn_info info;
	int tr;
	int n = sn_lex(sql, strlen(sql), d, toks, SN_MAX_TOKENS, &tr);
	char nb[SN_MAX_NORM + 1];
	sn_normalize(sql, toks, 0, n, d, nb, sizeof nb, &info);
	sn_mask(sql, toks, 0, n, keep, info.secret, out, sizeof out);
	return out;
}

Test(sqlnorm, mask_replaces_literals_and_drops_comments)
{
	cr_expect_str_eq(mask("SELECT a FROM t WHERE b = 'x' AND c = 5 /* c */", SN_PG, 0),
			 "SELECT a FROM t WHERE b = ? AND c = ?");
	cr_expect_str_eq(mask("SELECT a FROM t WHERE b = 'x'", SN_PG, 1), "SELECT a FROM t WHERE b = 'x'");
}

static const char *const secrets[][2] = {
	{ "pg", "ALTER USER bob PASSWORD 'hunter2'" },
	{ "pg", "CREATE ROLE r LOGIN ENCRYPTED PASSWORD 'hunter2' VALID UNTIL '2030-01-01'" },
	{ "pg", "alter role \"Bob\" with password E'hunter2'" },
	{ "pg", "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'hunter2')" },
	{ "pg", "SELECT dblink_connect('host=db user=x password=hunter2')" },
	{ "mysql", "CREATE USER 'x'@'%' IDENTIFIED BY 'hunter2'" },
	{ "mysql", "ALTER USER x IDENTIFIED WITH mysql_native_password BY 'hunter2'" },
	{ "mysql", "ALTER USER x IDENTIFIED WITH caching_sha2_password AS 'hunter2'" },
	{ "mysql", "SET PASSWORD FOR bob = PASSWORD('hunter2')" },
	{ "mysql", "SET PASSWORD = 'hunter2'" },
	{ "mysql", "GRANT ALL ON *.* TO x IDENTIFIED BY \"hunter2\"" },
	{ "mysql", "UPDATE mysql.user SET authentication_string = 'hunter2' WHERE user = 'x'" },
	/* regressions (a contract audit): replication passwords, password columns, and
	 * passwords typed without quotes, which the server rejects after they crossed the wire */
	{ "mysql", "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='r', MASTER_PASSWORD='hunter2'" },
	{ "mysql", "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = 'hunter2', SOURCE_PORT = 3306" },
	{ "mysql", "UPDATE accounts SET user_passwd = 'hunter2' WHERE id = 7" },
	{ "pg", "UPDATE accounts SET hashed_password = 'hunter2' WHERE id = 7" },
	{ "mysql", "CREATE USER x IDENTIFIED BY hunter2" },
	{ "pg", "ALTER USER bob PASSWORD hunter2" },
	{ "pg", "ALTER ROLE bob WITH PASSWORD \"hunter2\"" },
	{ "mysql", "SET PASSWORD FOR bob = PASSWORD(hunter2)" },
	{ "mysql", "ALTER USER x IDENTIFIED BY @hunter2" },
};

Test(sqlnorm, passwords_masked_even_with_keep_literals)
{
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
		enum sn_dialect d = strcmp(secrets[i][0], "mysql") ? SN_PG : SN_MYSQL;
		cr_expect_null(strstr(mask(secrets[i][1], d, 1), "hunter2"), "case %zu: %s", i, mask(secrets[i][1], d, 1));
		cr_expect_null(strstr(mask(secrets[i][1], d, 0), "hunter2"), "case %zu", i);
	}
}

Test(sqlnorm, passwords_absent_from_the_normalised_text)
{
	struct sn_info info;
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
		enum sn_dialect d = strcmp(secrets[i][0], "mysql") ? SN_PG : SN_MYSQL;
		const char *got = norm(secrets[i][1], d, &info);
		cr_expect_null(strcasestr(got, "hunter2"), "case %zu: %s", i, got);
	}
	/* keywords after PASSWORD are no password; ordinary words elsewhere stay */
	cr_expect_str_eq(mask("ALTER USER x PASSWORD EXPIRE INTERVAL 90 DAY", SN_MYSQL, 1),
			 "ALTER USER x PASSWORD EXPIRE INTERVAL ? DAY");
	cr_expect_str_eq(norm("ALTER USER bob PASSWORD hunter2 VALID UNTIL 'infinity'", SN_PG, &info),
			 "ALTER USER bob PASSWORD ? valid until ?");
	cr_expect_str_eq(mask("ALTER ROLE r PASSWORD NULL", SN_PG, 1), "ALTER ROLE r PASSWORD NULL");
	cr_expect_str_eq(mask("SELECT password_hint FROM users WHERE id = 3", SN_PG, 1),
			 "SELECT password_hint FROM users WHERE id = 3");
}

Test(sqlnorm, passwords_absent_from_every_record_with_keep_literals)
{
	struct harness h;
	h_init(&h);
	h.cfg.keep_literals = 1;
	h_start(&h);
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
		h_open(&h, strcmp(secrets[i][0], "mysql") ? "postgresql" : "mysql", NULL);
		h_startup(&h, "admin", "db", "psql");
		h_login(&h, 1);
		h_simple(&h, secrets[i][1], 1, 'I');
		h_close(&h, h.s);
	}
	/* bound parameters of a password statement */
	h_open(&h, "postgresql", NULL);
	const char *pw[] = { "hunter2" };
	uint64_t id = h_query(&h, EV_Q_EXECUTE, "ALTER USER bob PASSWORD $1", pw, 1);
	h_result(&h, id, EV_OUT_OK, -1, NULL);
	const char *pw2[] = { "bob", "hunter2" };
	id = h_query(&h, EV_Q_EXECUTE, "SELECT 1 FROM users WHERE name = $1 AND password = crypt($2, password)", pw2, 2);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	/* ordinary statements keep their literals and parameters */
	const char *p3[] = { "visible-param" };
	id = h_query(&h, EV_Q_EXECUTE, "SELECT * FROM t WHERE a = 'visible' AND b = $1", p3, 1);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_end(&h);
	cr_expect(rec_sink_absent(h.sink, "hunter2"));
	cr_expect(h.sink->n_st >= (int)(sizeof secrets / sizeof secrets[0]) + 2);
	cr_expect(!rec_sink_absent(h.sink, "'visible'"));
	cr_expect(!rec_sink_absent(h.sink, "visible-param"));
	h_free(&h);
}

Test(sqlnorm, literals_masked_by_default)
{
	struct harness h;
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	const char *p[] = { "param-secret" };
	uint64_t id = h_query(&h, EV_Q_EXECUTE, "SELECT * FROM t WHERE a = 'lit-secret' AND b = $1", p, 1);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_end(&h);
	cr_expect(rec_sink_absent(h.sink, "lit-secret"));
	cr_expect(rec_sink_absent(h.sink, "param-secret"));
	cr_expect_str_eq(h.sink->st[0].sql, "SELECT * FROM t WHERE a = ? AND b = $1");
	cr_expect_null(h.sink->st[0].params);
	h_free(&h);
}

Test(sqlnorm, huge_and_deeply_nested_sql_is_bounded)
{
	size_t n = 3u << 20;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 2 ? '(' : '/';
	big[n] = 0;
	struct sn_info info;
	norm(big, SN_PG, &info);
	cr_expect(info.truncated);
	memset(big, '(', n);
	norm(big, SN_PG, &info);
	cr_expect(info.truncated);
	for (size_t i = 0; i < n; i++)
		big[i] = "/*"[i % 2];
	norm(big, SN_PG, &info); /* one unterminated, deeply nested comment */
	cr_expect(info.truncated);
	/* through the analyzer: stored text is capped */
	struct harness h;
	h_init(&h);
	h_start(&h);
	h_open(&h, "postgresql", NULL);
	memcpy(big, "SELECT ", 7);
	for (size_t i = 7; i < n; i++)
		big[i] = i % 3 ? '1' : ',';
	h_simple(&h, big, 1, 'I');
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 1);
	cr_expect_leq(strlen(h.sink->st[0].sql), (size_t)h.cfg.max_sql_bytes + 4);
	struct an_stats st;
	(void)st;
	h_free(&h);
	free(big);
}

Test(sqlnorm, literal_text_unquotes_every_style)
{
	struct { enum sn_dialect d; const char *in, *out; } c[] = {
		{ SN_PG, "'it''s'", "it's" },
		{ SN_PG, "E'a\\'b'", "a'b" },
		{ SN_PG, "$x$ab$x$", "ab" },
		{ SN_MYSQL, "'a\\'b'", "a'b" },
		{ SN_MYSQL, "\"q\"", "q" },
		{ SN_MYSQL, "_utf8mb4'z'", "z" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int tr;
		char buf[64];
		int n = sn_lex(c[i].in, strlen(c[i].in), c[i].d, toks, 8, &tr);
		cr_assert_eq(n, 1, "case %zu", i);
		sn_literal_text(c[i].in, &toks[0], buf, sizeof buf);
		cr_expect_str_eq(buf, c[i].out, "case %zu", i);
	}
}

/* ---- issue #20: the server's lexing, not ours ---- */

static int split_mode(const char *sql, enum sn_dialect d, unsigned mode, struct sn_range *parts)
{
	int tr, more;
	int n = sn_lex_mode(sql, strlen(sql), d, mode, toks, SN_MAX_TOKENS, &tr);
	return sn_split(sql, toks, n, parts, SN_MAX_PARTS, &more);
}

static int part_is(const char *sql, const struct sn_range *r, const char *want)
{
	return r->len == strlen(want) && memcmp(sql + r->off, want, r->len) == 0;
}

Test(sqlnorm, pg_line_comment_ends_at_carriage_return)
{
	struct sn_range p[SN_MAX_PARTS];
	const char *a = "SELECT 1; --x\rDROP TABLE t";
	cr_assert_eq(split_mode(a, SN_PG, 0, p), 2);
	cr_expect(part_is(a, &p[1], "--x\rDROP TABLE t"));
	/* MySQL's -- and # comments run to \n only */
	cr_expect_eq(split_mode("SELECT 1; -- x\rDROP TABLE t", SN_MYSQL, SN_M_BACKSLASH, p), 1);
	cr_expect_eq(split_mode("SELECT 1; # x\rDROP TABLE t", SN_MYSQL, SN_M_BACKSLASH, p), 1);
}

Test(sqlnorm, backslash_reading_follows_the_session_mode)
{
	struct sn_range p[SN_MAX_PARTS];
	const char *a = "SELECT 'x\\'' ; DROP TABLE t; -- '";
	/* PG standard_conforming_strings on: \ is a plain byte, '' doubles the quote: one string */
	cr_expect_eq(split_mode(a, SN_PG, 0, p), 1);
	/* off: \' escapes the quote, the string ends, the DROP runs */
	cr_expect_eq(split_mode(a, SN_PG, SN_M_BACKSLASH, p), 2);
	/* E'' escapes whatever the setting */
	cr_expect_eq(split_mode("SELECT E'x\\'' ; DROP TABLE t; -- '", SN_PG, 0, p), 2);
	/* MySQL: escapes by default; under NO_BACKSLASH_ESCAPES 'x\' ends and the DROP runs */
	const char *m = "SELECT 'x\\'; DROP TABLE t; -- '";
	cr_expect_eq(split_mode(m, SN_MYSQL, SN_M_BACKSLASH, p), 1);
	cr_expect_eq(split_mode(m, SN_MYSQL, 0, p), 2);
	/* "..." is a string in MySQL, an identifier under ANSI_QUOTES (no escapes) */
	const char *q = "SELECT \"x\\\" ; DROP TABLE t; -- \"";
	cr_expect_eq(split_mode(q, SN_MYSQL, SN_M_BACKSLASH, p), 1);
	cr_expect_eq(split_mode(q, SN_MYSQL, SN_M_BACKSLASH | SN_M_ANSI_QUOTES, p), 2);
	struct sn_info info;
	int tr, n = sn_lex_mode(q, strlen(q), SN_MYSQL, SN_M_BACKSLASH | SN_M_ANSI_QUOTES, toks, SN_MAX_TOKENS, &tr);
	char out[256];
	sn_normalize(q, toks, 0, n, SN_MYSQL, out, sizeof out, &info);
	cr_expect_eq(toks[1].type, SN_QIDENT);
}

Test(sqlnorm, mariadb_executable_comments_are_code)
{
	struct sn_range p[SN_MAX_PARTS];
	struct sn_info info;
	const char *c[] = { "/*M!100100 DROP TABLE t */", "/*M! DROP TABLE t */", "/*!50000 DROP TABLE t */",
			    "/*! DROP TABLE t*/", "/*!100100 DROP TABLE t */" };
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		cr_expect_eq(split_mode(c[i], SN_MYSQL, SN_M_BACKSLASH, p), 1, "%s", c[i]);
		norm(c[i], SN_MYSQL, &info);
		cr_expect_str_eq(info.verb, "DROP", "%s", c[i]);
	}
	const char *s = "SELECT 1 /*M!100100 ; DROP TABLE t */";
	cr_expect_eq(split_mode(s, SN_MYSQL, SN_M_BACKSLASH, p), 2);
	/* a plain comment stays one */
	cr_expect_eq(split_mode("/* DROP TABLE t */", SN_MYSQL, SN_M_BACKSLASH, p), 0);
}

Test(sqlnorm, routine_body_ends_where_the_server_ends_it)
{
	struct sn_range p[SN_MAX_PARTS];
	const char *m = "CREATE FUNCTION f(begin int) RETURNS int DETERMINISTIC RETURN begin; DROP TABLE t";
	cr_assert_eq(split_mode(m, SN_MYSQL, SN_M_BACKSLASH, p), 2);
	cr_expect(part_is(m, &p[1], "DROP TABLE t"));
	const char *g = "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN begin; DROP TABLE t";
	cr_assert_eq(split_mode(g, SN_PG, 0, p), 2);
	cr_expect(part_is(g, &p[1], "DROP TABLE t"));
	/* a column named begin inside a real block does not open another */
	const char *b = "CREATE PROCEDURE p() BEGIN SELECT begin FROM t; SELECT a, begin FROM t; END; DROP TABLE t";
	cr_assert_eq(split_mode(b, SN_MYSQL, SN_M_BACKSLASH, p), 2);
	cr_expect(part_is(b, &p[1], "DROP TABLE t"));
	const char *l = "CREATE PROCEDURE p() lbl: BEGIN NOT ATOMIC SELECT 1; END; DROP TABLE t";
	cr_expect_eq(split_mode(l, SN_MYSQL, SN_M_BACKSLASH, p), 2);
	const char *t = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END; DROP TABLE t";
	cr_expect_eq(split_mode(t, SN_MYSQL, SN_M_BACKSLASH, p), 2);
	const char *d = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; DROP TABLE t";
	cr_expect_eq(split_mode(d, SN_PG, 0, p), 2);
}
