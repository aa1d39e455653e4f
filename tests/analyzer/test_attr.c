/* End-user attribution: the comment-tag parser on a table of spellings, and markers fed
 * through the analyzer with their scope (transaction markers end at ReadyForQuery 'I'). */
#include <criterion/criterion.h>
#include <string.h>

#include "an.h"
#include "an_int.h"
#include "attr.h"
#include "harness.h"
#include "sqlnorm.h"

static struct sn_tok toks[4096];

struct ccase {
	enum sn_dialect d;
	const char *sql, *user; /* user NULL: none */
};

static const struct ccase ccases[] = {
	{ SN_PG, "SELECT 1 /*app_user='alice'*/", "alice" },
	{ SN_PG, "SELECT 1 /* app_user = 'alice' , route='%2Fx' */", "alice" },
	{ SN_PG, "/*route='%2Fusers%2F1',app_user='bob%40example.com'*/ SELECT 1", "bob@example.com" },
	{ SN_PG, "SELECT 1 -- app_user=carol", "carol" },
	{ SN_PG, "SELECT 1 /*user_id='42'*/ /*app_user='dave'*/", "dave" },
	{ SN_PG, "SELECT 1 /* outer /* app_user='eve' */ */", "eve" },
	{ SN_PG, "SELECT 1 /*app_user=\"frank\"*/", "frank" },
	{ SN_PG, "SELECT 1 /*app_user='o\\'neil'*/", "o'neil" },
	{ SN_PG, "SELECT 1 /*APP_USER='gina'*/", "gina" },
	{ SN_PG, "SELECT '/*app_user=''mallory''*/' AS x", NULL },
	{ SN_PG, "SELECT $$ -- app_user=mallory $$", NULL },
	{ SN_PG, "SELECT 1 /*controller='index',action='show'*/", NULL },
	{ SN_MYSQL, "SELECT 1 # app_user=hank", "hank" },
	{ SN_PG, "SELECT 1 /*app_user='',user='ivy'*/", "ivy" },
	{ SN_PG, "SELECT 1 /*end_user:'jo%20ann'*/", "jo ann" },
	{ SN_PG, "SELECT 1 /*username='x\x01y'*/", "x?y" },
	{ SN_PG, "SELECT 1 /*traceparent='00-4bf92f-00f067-01',app_user='kim'*/", "kim" },
};

Test(attr, comment_tags_table)
{
	struct an_config cfg;
	an_config_defaults(&cfg);
	for (size_t i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
		int tr;
		char user[128], trace[64];
		int n = sn_lex(ccases[i].sql, strlen(ccases[i].sql), ccases[i].d, toks, 4096, &tr);
		int found = attr_comment_user(ccases[i].sql, toks, 0, n, &cfg.comment_keys, user, sizeof user, trace,
					      sizeof trace);
		if (ccases[i].user) {
			cr_expect(found, "case %zu: %s", i, ccases[i].sql);
			cr_expect_str_eq(user, ccases[i].user, "case %zu", i);
		} else {
			cr_expect(!found, "case %zu: %s -> %s", i, ccases[i].sql, user);
		}
	}
	an_config_free(&cfg);
}

Test(attr, traceparent_is_kept)
{
	struct an_config cfg;
	an_config_defaults(&cfg);
	const char *sql = "SELECT 1 /*traceparent='00-4bf92f-00f067-01',app_user='kim'*/";
	int tr;
	char user[128], trace[64];
	int n = sn_lex(sql, strlen(sql), SN_PG, toks, 4096, &tr);
	attr_comment_user(sql, toks, 0, n, &cfg.comment_keys, user, sizeof user, trace, sizeof trace);
	cr_expect_str_eq(trace, "00-4bf92f-00f067-01");
	an_config_free(&cfg);
}

/* ---- markers through the analyzer ---- */

static struct harness h;

static void start(const char *proto, const char *user, const char *app)
{
	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	h_start(&h);
	h_open(&h, proto, NULL);
	h_startup(&h, user, "shop", app);
	h_login(&h, 1);
}

static const struct h_stmt *last(void)
{
	cr_assert(h.sink->n_st > 0);
	return &h.sink->st[h.sink->n_st - 1];
}

static void expect_user(const char *user, const char *src)
{
	const struct h_stmt *s = last();
	if (!user) {
		cr_expect_null(s->end_user, "sql %s: got %s", s->sql, s->end_user);
		cr_expect_null(s->end_user_source);
		return;
	}
	cr_assert_not_null(s->end_user, "sql %s", s->sql);
	cr_expect_str_eq(s->end_user, user, "sql %s", s->sql);
	cr_expect_str_eq(s->end_user_source, src, "sql %s", s->sql);
}

Test(attr, set_config_local_holds_until_transaction_ends)
{
	start("postgresql", "app_svc", "shop-web");
	h_simple(&h, "BEGIN", 1, 'T');
	h_simple(&h, "SELECT set_config('app.user', 'alice', true)", 1, 'T');
	expect_user("alice", "session_variable");
	h_simple(&h, "SELECT * FROM orders", 1, 'T');
	expect_user("alice", "session_variable");
	h_simple(&h, "COMMIT", 1, 'I');
	h_simple(&h, "SELECT * FROM orders", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, set_config_with_bound_parameters)
{
	start("postgresql", "app_svc", NULL);
	const char *p[] = { "app.user", "bob", "true" };
	uint64_t id = h_query(&h, EV_Q_EXECUTE, "SELECT set_config($1, $2, $3::boolean)", p, 3);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	id = h_query(&h, EV_Q_EXECUTE, "SELECT * FROM t WHERE id = $1", p, 1);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	expect_user("bob", "session_variable");
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 2", 1, 'I');
	expect_user(NULL, NULL);
	/* session scope survives the transaction */
	const char *q[] = { "app.user", "carl" };
	id = h_query(&h, EV_Q_EXECUTE, "select pg_catalog.set_config( $1 , $2 , false )", q, 2);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 3", 1, 'I');
	expect_user("carl", "session_variable");
	h_free(&h);
}

Test(attr, set_local_application_name_is_transaction_scoped)
{
	start("postgresql", "app_svc", "shop");
	h_simple(&h, "BEGIN; SET LOCAL application_name = 'web:carol'; SELECT 1", 3, 'T');
	expect_user("carol", "application_name");
	h_simple(&h, "COMMIT", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, spacing_and_quoting_do_not_matter)
{
	const char *forms[] = {
		"set   local   app.user   to   'dora'",
		"SET LOCAL \"app.user\" = 'dora'",
		"SET LOCAL app.user=dora",
		"SELECT set_config('app.user',E'dora','t')",
		"select  set_config ( 'APP.USER' , $$dora$$ , true )",
		"SELECT set_config('request.jwt.claims', '{\"sub\":\"dora\",\"role\":\"authenticated\"}', true)",
		"SET LOCAL request.jwt.claim.sub = 'dora'",
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		start("postgresql", "app_svc", NULL);
		h_simple(&h, "BEGIN", 1, 'T');
		h_simple(&h, forms[i], 1, 'T');
		h_simple(&h, "SELECT 1", 1, 'T');
		expect_user("dora", "session_variable");
		h_simple(&h, "COMMIT", 1, 'I');
		h_simple(&h, "SELECT 1", 1, 'I');
		expect_user(NULL, NULL);
		h_free(&h);
	}
}

Test(attr, session_application_name_and_discard_all)
{
	start("postgresql", "app_svc", NULL);
	h_simple(&h, "SET application_name TO 'web:dave'", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("dave", "application_name");
	h_simple(&h, "DISCARD ALL", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	/* the server's ParameterStatus report counts, and a non-matching value clears it */
	h_param(&h, "application_name", "web:kate");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("kate", "application_name");
	h_param(&h, "application_name", "psql");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, startup_application_pattern_and_db_user)
{
	start("postgresql", "app_svc", "web:erin");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("erin", "application_name");
	h_free(&h);
	start("postgresql", "alice", "psql");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("alice", "db_user");
	h_free(&h);
	start("postgresql", "app_svc", "my app: with spaces");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, mysql_variables_connect_attrs_and_change_user)
{
	start("mysql", "app_svc", "php");
	h_simple(&h, "SET @app_user = 'frank'", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("frank", "session_variable");
	h_simple(&h, "SET @`end_user` := \"gus\", @other = 1", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("gus", "session_variable");
	const char *p[] = { "hal" };
	uint64_t id = h_query(&h, EV_Q_EXECUTE, "SET @user_id = ?", p, 1);
	h_result(&h, id, EV_OUT_OK, 0, NULL);
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("hal", "session_variable");
	/* COM_CHANGE_USER resets the session: the new account is the principal */
	struct ev e = { .type = EV_USER_CHANGE, .ts = h.t };
	e.u.user_change.user = STRV_LIT("ivan");
	e.u.user_change.ok = 1;
	h_event(&h, &e);
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("ivan", "db_user");
	h_free(&h);

	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	h_start(&h);
	h_open(&h, "mysql", NULL);
	struct ev_kv kv[] = { { STRV_LIT("_client_name"), STRV_LIT("libmysql") },
			      { STRV_LIT("app_user"), STRV_LIT("hank") } };
	struct ev su = { .type = EV_STARTUP, .ts = h.t };
	su.u.startup.user = STRV_LIT("app_svc");
	su.u.startup.params = kv;
	su.u.startup.n_params = 2;
	h_event(&h, &su);
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("hank", "connect_attr");
	h_close(&h, h.s);
	cr_expect_not_null(strstr(h.sink->last_session.client_info, "libmysql"));
	h_free(&h);
}

Test(attr, precedence_comment_then_transaction_then_session)
{
	start("postgresql", "app_svc", "web:sess");
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("sess", "application_name");
	h_simple(&h, "SET app.user = 'sessvar'", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("sessvar", "session_variable");
	h_simple(&h, "BEGIN; SET LOCAL app.user = 'txn'; SELECT 1", 3, 'T');
	expect_user("txn", "session_variable");
	h_simple(&h, "SELECT 1 /*app_user='cmt'*/", 1, 'T');
	expect_user("cmt", "comment");
	h_simple(&h, "COMMIT", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("sessvar", "session_variable");
	h_free(&h);
}

Test(attr, expressions_are_not_markers)
{
	start("postgresql", "app_svc", NULL);
	h_simple(&h, "SELECT set_config('app.user', current_setting('request.header.x'), true)", 1, 'T');
	h_simple(&h, "SELECT set_config('app.user', name, false) FROM users", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
	start("mysql", "app_svc", NULL);
	h_simple(&h, "SELECT @app_user := username FROM users LIMIT 1", 1, 'I');
	h_simple(&h, "SET @app_user = CONCAT('a', 'b')", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_simple(&h, "SELECT @app_user := 'zoe'", 1, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user("zoe", "session_variable");
	h_free(&h);
}

Test(attr, failed_marker_statement_does_not_apply)
{
	start("postgresql", "app_svc", NULL);
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SET app.user = 'nope'", NULL, 0);
	h_result(&h, id, EV_OUT_ERROR, -1, "42501");
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, statements_after_an_error_in_one_message_are_not_stored)
{
	start("postgresql", "app_svc", NULL);
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SELECT 1; SELECT x FROM nope; SELECT 3", NULL, 0);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_result(&h, id, EV_OUT_ERROR, -1, "42P01");
	h_ready(&h, 'I');
	h_end(&h);
	cr_expect_eq(h.sink->n_st, 2);
	cr_expect_str_eq(h.sink->st[1].outcome, "error");
	cr_expect_str_eq(h.sink->st[1].error_code, "42P01");
	cr_expect_str_eq(h.sink->st[1].sql, "SELECT x FROM nope");
	h_free(&h);
}

/* ---- resets (issue #18): after a reset, nobody is named from that marker ---- */

Test(attr, mysql_resets_end_the_marker)
{
	const char *resets[] = { "SET @app_user = NULL", "SET @app_user = ''", "SET @app_user = DEFAULT",
				 "SET @app_user := NULL", "SELECT @app_user := NULL",
				 "SET @app_user = (SELECT name FROM users LIMIT 1)" };
	for (size_t i = 0; i < sizeof resets / sizeof resets[0]; i++) {
		start("mysql", "app_svc", NULL);
		h_simple(&h, "SET @app_user = 'alice'", 1, 'I');
		h_simple(&h, "SELECT 1", 1, 'I');
		expect_user("alice", "session_variable");
		h_simple(&h, resets[i], 1, 'I');
		h_simple(&h, "START TRANSACTION", 1, 'T');
		expect_user(NULL, NULL);
		h_simple(&h, "COMMIT", 1, 'I');
		expect_user(NULL, NULL);
		h_free(&h);
	}
}

Test(attr, pg_resets_end_the_marker)
{
	const char *resets[] = { "RESET app.user", "RESET ALL", "DISCARD ALL", "SET app.user TO DEFAULT",
				 "SET app.user = DEFAULT", "SELECT set_config('app.user', '', false)",
				 "SELECT set_config('app.user', NULL, false)",
				 "SELECT set_config('app.user', current_setting('x.y'), false)" };
	for (size_t i = 0; i < sizeof resets / sizeof resets[0]; i++) {
		start("postgresql", "app_svc", NULL);
		h_simple(&h, "SET app.user = 'alice'", 1, 'I');
		h_simple(&h, "SELECT 1", 1, 'I');
		expect_user("alice", "session_variable");
		h_simple(&h, resets[i], 1, 'I');
		h_simple(&h, "SELECT 2", 1, 'I');
		cr_expect_null(last()->end_user, "after %s", resets[i]);
		h_free(&h);
	}
}

Test(attr, role_resets)
{
	const char *resets[] = { "RESET ROLE", "SET SESSION AUTHORIZATION DEFAULT", "SET ROLE NONE", "RESET ALL" };
	for (size_t i = 0; i < sizeof resets / sizeof resets[0]; i++) {
		start("postgresql", "app_svc", NULL);
		h_simple(&h, "SET ROLE auditor", 1, 'I');
		cr_expect_str_eq(h.s->role, "auditor");
		h_simple(&h, resets[i], 1, 'I');
		cr_expect_str_eq(h.s->role, "", "%s", resets[i]);
		h_free(&h);
	}
}

Test(attr, failed_set_leaves_nobody_named)
{
	start("postgresql", "app_svc", NULL);
	h_simple(&h, "SET app.user = 'alice'", 1, 'I');
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "SET app.user = 'bob'", NULL, 0);
	h_result(&h, id, EV_OUT_ERROR, -1, "25P02");
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, rollback_undoes_a_session_set_in_the_transaction)
{
	start("postgresql", "app_svc", NULL);
	h_simple(&h, "SET app.user = 'alice'", 1, 'I');
	h_simple(&h, "BEGIN", 1, 'T');
	h_simple(&h, "SET app.user = 'bob'", 1, 'T');
	h_simple(&h, "SELECT 1", 1, 'T');
	expect_user("bob", "session_variable");
	uint64_t id = h_query(&h, EV_Q_SIMPLE, "ROLLBACK", NULL, 0);
	h_result_bytes(&h, id, 0, 0, "ROLLBACK");
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 2", 1, 'I');
	expect_user("alice", "session_variable");
	/* an error aborts the transaction; its COMMIT is a rollback too */
	h_simple(&h, "BEGIN; SET app.user = 'carl'", 2, 'T');
	id = h_query(&h, EV_Q_SIMPLE, "SELECT x FROM nope", NULL, 0);
	h_result(&h, id, EV_OUT_ERROR, -1, "42P01");
	h_ready(&h, 'E');
	id = h_query(&h, EV_Q_SIMPLE, "COMMIT", NULL, 0);
	h_result_bytes(&h, id, 0, 0, "ROLLBACK");
	h_ready(&h, 'I');
	h_simple(&h, "SELECT 3", 1, 'I');
	expect_user("alice", "session_variable");
	/* committed: it holds */
	h_simple(&h, "BEGIN; SET app.user = 'dora'; COMMIT", 3, 'I');
	h_simple(&h, "SELECT 4", 1, 'I');
	expect_user("dora", "session_variable");
	h_free(&h);
}

Test(attr, mysql_reset_connection)
{
	start("mysql", "app_svc", NULL);
	h_simple(&h, "SET @app_user = 'alice'", 1, 'I');
	struct ev e = { .type = EV_SESSION_RESET, .ts = h.t };
	h_event(&h, &e);
	h_simple(&h, "SELECT 1", 1, 'I');
	expect_user(NULL, NULL);
	h_free(&h);
}

Test(attr, stacked_statements_share_the_message_attribution)
{
	start("postgresql", "app_svc", NULL);
	h_simple(&h, "/*app_user='mallory'*/ SELECT name FROM t WHERE name = 'x'; DROP TABLE tmp_import;-- -", 2, 'I');
	cr_assert_eq(h.sink->n_st, 2);
	cr_expect_str_eq(h.sink->st[1].end_user, "mallory");
	cr_expect_str_eq(h.sink->st[1].end_user_source, "comment");
	/* an injected SET cannot rename the statements stacked after the first */
	h_simple(&h, "SET app.user = 'alice'", 1, 'I');
	h_simple(&h, "SELECT 1 FROM t WHERE a = ''; SET app.user = 'admin'; DROP TABLE t", 3, 'I');
	expect_user("alice", "session_variable");
	/* markers at the front of a message still name its statements */
	h_simple(&h, "BEGIN; SET LOCAL app.user = 'erin'; SELECT 2", 3, 'T');
	expect_user("erin", "session_variable");
	h_free(&h);
}
