/* Issue #21: the join of a pooler's legs on events, in the orders a pooler produces them
 * (client query, server query, server result, client result). The live pgbouncer test is
 * tests/integration/pooler.py; these pin the rules it relies on. */
#include <criterion/criterion.h>
#include <string.h>

#include <cJSON.h>

#include "an.h"
#include "an_int.h"
#include "harness.h"

static struct harness h;

#define POOLER "10.0.0.7"

static void start(int session_mode)
{
	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	struct an_pooler_cfg *p = &h.cfg.poolers[0];
	memset(p, 0, sizeof *p);
	strcpy(p->address, POOLER);
	p->listen_port = 6432;
	p->window_ms = 60000;
	p->session_mode = session_mode;
	h.cfg.n_poolers = 1;
	h_start(&h);
}

static int cport = 50000;

/* A client leg (to the pooler) or a server leg (from it to the database). */
static struct an_session *leg(int client_leg, const char *app)
{
	struct an_flow f = { .protocol = "postgresql", .dialect = EV_DIALECT_POSTGRESQL,
			     .client_ip = client_leg ? "10.0.0.5" : POOLER,
			     .server_ip = client_leg ? POOLER : "10.0.0.1", .client_port = cport++,
			     .server_port = client_leg ? 6432 : 5432, .ts = h.t };
	h.s = an_open(h.an, &f);
	cr_assert_not_null(h.s);
	h_startup(&h, "app_svc", "shop", app);
	h_login(&h, 1);
	return h.s;
}

static uint64_t q(struct an_session *s, const char *sql)
{
	h.s = s;
	h_sleep(&h, 0.001);
	return h_query(&h, EV_Q_SIMPLE, sql, NULL, 0);
}

static void done(struct an_session *s, uint64_t id, char txn)
{
	h.s = s;
	h_sleep(&h, 0.001);
	h_result(&h, id, EV_OUT_OK, 1, NULL);
	h_ready(&h, txn);
}

/* One forwarded statement: client query, server query, server result, client result. */
static void fwd(struct an_session *c, struct an_session *srv, const char *sql, char txn)
{
	uint64_t a = q(c, sql), b = q(srv, sql);
	done(srv, b, txn);
	done(c, a, txn);
}

static const struct h_stmt *stmt_of(struct an_session *s, const char *sql)
{
	const struct h_stmt *found = NULL;
	for (int i = 0; i < h.sink->n_st; i++)
		if (h.sink->st[i].session_id == s->id && h.sink->st[i].sql && !strcmp(h.sink->st[i].sql, sql))
			found = &h.sink->st[i];
	cr_assert_not_null(found, "no statement %s on session %lld", sql, (long long)s->id);
	return found;
}

Test(pooler, legs_recognised_and_joined_with_client_identity)
{
	start(0);
	struct an_session *c = leg(1, "web:alice"), *srv = leg(0, NULL);
	cr_expect_eq(c->pool_role, AN_POOL_CLIENT);
	cr_expect_eq(srv->pool_role, AN_POOL_SERVER);
	fwd(c, srv, "SELECT * FROM orders", 'I');
	const struct h_stmt *st = stmt_of(srv, "SELECT * FROM orders");
	cr_expect_eq(st->via_session_id, c->id);
	cr_expect_str_eq(st->pooler_join, "joined");
	cr_expect_str_eq(st->end_user, "alice");
	cr_expect_str_eq(st->end_user_source, "client_leg:application_name");
	const struct h_stmt *cs = stmt_of(c, "SELECT * FROM orders");
	cr_expect_eq(cs->via_session_id, 0);
	cr_expect_str_eq(cs->pooler_join, "");
	h_free(&h);
}

Test(pooler, identical_begin_resolved_by_the_transaction)
{
	start(0);
	struct an_session *c1 = leg(1, NULL), *c2 = leg(1, NULL), *srv = leg(0, NULL);
	h.s = c2;
	h_simple(&h, "SET app.user = 'bob'", 1, 'I');
	uint64_t b1 = q(c1, "BEGIN"), b2 = q(c2, "BEGIN"); /* both wait for the one server */
	uint64_t sb = q(srv, "BEGIN");
	done(srv, sb, 'T');
	done(c2, b2, 'T'); /* the pooler gave it to c2 */
	fwd(c2, srv, "UPDATE t SET x = 2 WHERE id = 2", 'T');
	fwd(c2, srv, "COMMIT", 'I');
	/* then c1's BEGIN: only its entry is left */
	sb = q(srv, "BEGIN");
	done(srv, sb, 'T');
	done(c1, b1, 'T');
	fwd(c1, srv, "COMMIT", 'I');
	/* by content: c2's transaction, then c1's */
	cr_expect_eq(stmt_of(srv, "UPDATE t SET x = ? WHERE id = ?")->via_session_id, c2->id);
	cr_expect_str_eq(stmt_of(srv, "UPDATE t SET x = ? WHERE id = ?")->end_user, "bob");
	int begins = 0;
	for (int i = 0; i < h.sink->n_st; i++) {
		const struct h_stmt *x = &h.sink->st[i];
		if (x->session_id != srv->id || strcmp(x->verb, "BEGIN"))
			continue;
		cr_expect_str_eq(x->pooler_join, "joined");
		cr_expect(x->via_session_id == c1->id || x->via_session_id == c2->id);
		begins += x->via_session_id == c2->id ? 1 : 10;
	}
	cr_expect_eq(begins, 11, "one BEGIN each");
	h_free(&h);
}

Test(pooler, identical_autocommit_statements_are_not_guessed)
{
	start(0);
	struct an_session *c1 = leg(1, "web:alice"), *c2 = leg(1, "web:bob"), *srv = leg(0, NULL);
	uint64_t a1 = q(c1, "SELECT 1"), a2 = q(c2, "SELECT 1");
	uint64_t s1 = q(srv, "SELECT 1");
	done(srv, s1, 'I');
	done(c1, a1, 'I');
	const struct h_stmt *st = stmt_of(srv, "SELECT ?");
	cr_expect_str_eq(st->pooler_join, "unmatched");
	cr_expect_eq(st->via_session_id, 0);
	cr_expect_null(st->end_user);
	struct an_stats as;
	an_get_stats(h.an, &as);
	cr_expect_eq(as.pooler_ambiguous, 1);
	(void)a2;
	h_free(&h);
}

Test(pooler, pooler_own_statements_marked)
{
	start(0);
	struct an_session *c = leg(1, "web:alice"), *srv = leg(0, NULL);
	h.s = srv;
	h_simple(&h, "SET application_name='web:alice'", 1, 'I'); /* the pooler's, before forwarding */
	fwd(c, srv, "SELECT 2", 'I');
	h.s = srv;
	h_simple(&h, "DISCARD ALL", 1, 'I');
	cr_expect_str_eq(stmt_of(srv, "SET application_name=?")->pooler_join, "pooler");
	cr_expect_null(stmt_of(srv, "SET application_name=?")->end_user);
	cr_expect_str_eq(stmt_of(srv, "DISCARD ALL")->pooler_join, "pooler");
	cr_expect_str_eq(stmt_of(srv, "SELECT ?")->pooler_join, "joined");
	h_free(&h);
}

Test(pooler, server_leg_alone_leftover_markers_name_nobody)
{
	start(0);
	struct an_session *srv = leg(0, NULL);
	h.s = srv;
	h_simple(&h, "SET application_name = 'app:dave'", 1, 'I'); /* a client, or the pooler */
	h_simple(&h, "SELECT * FROM orders", 1, 'I');		   /* maybe another client */
	cr_expect_null(stmt_of(srv, "SELECT * FROM orders")->end_user);
	cr_expect_str_eq(stmt_of(srv, "SELECT * FROM orders")->pooler_join, "unmatched");
	h_simple(&h, "BEGIN", 1, 'T');
	h_simple(&h, "SET app.user = 'erin'", 1, 'T');
	h_simple(&h, "SELECT * FROM invoices", 1, 'T');
	const struct h_stmt *st = stmt_of(srv, "SELECT * FROM invoices");
	cr_expect_str_eq(st->end_user, "erin");
	cr_expect_str_eq(st->end_user_source, "same_transaction:session_variable");
	h_simple(&h, "COMMIT", 1, 'I');
	h_simple(&h, "SELECT * FROM payments", 1, 'I');
	cr_expect_null(stmt_of(srv, "SELECT * FROM payments")->end_user);
	h_free(&h);
}

Test(pooler, session_mode_binding_lasts_until_the_client_leaves)
{
	start(1);
	struct an_session *c1 = leg(1, "web:alice"), *srv = leg(0, NULL);
	fwd(c1, srv, "SELECT 'only-c1'", 'I');
	struct an_session *c2 = leg(1, "web:bob");
	/* c2 sends the same text while c1 still holds the server connection: c1's */
	uint64_t a2 = q(c2, "SELECT 5");
	uint64_t a1 = q(c1, "SELECT 5"), s1 = q(srv, "SELECT 5");
	done(srv, s1, 'I');
	done(c1, a1, 'I');
	cr_expect_eq(stmt_of(srv, "SELECT ?")->via_session_id, c1->id);
	h_close(&h, c1);
	h.s = srv;
	h_simple(&h, "DISCARD ALL", 1, 'I');
	cr_expect_str_eq(stmt_of(srv, "DISCARD ALL")->pooler_join, "pooler");
	(void)a2;
	h_free(&h);
}

Test(pooler, config_errors_name_the_key)
{
	struct an_config c;
	char err[256];
	const char *bad[] = {
		"{\"poolers\": {}}",
		"{\"poolers\": [{\"listen_port\": 6432}]}",
		"{\"poolers\": [{\"address\": \"pgb\", \"listen_port\": 6432}]}",
		"{\"poolers\": [{\"address\": \"10.0.0.7\"}]}",
		"{\"poolers\": [{\"address\": \"10.0.0.7\", \"listen_port\": 70000}]}",
		"{\"poolers\": [{\"address\": \"10.0.0.7\", \"listen_port\": 6432, \"pool_mode\": \"x\"}]}",
		"{\"poolers\": [{\"address\": \"10.0.0.7\", \"listen_port\": 6432, \"port\": 1}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		an_config_defaults(&c);
		cJSON *j = cJSON_Parse(bad[i]);
		cr_assert_not_null(j);
		int rc = an_config_set(&c, "poolers", cJSON_GetObjectItem(j, "poolers"), err, sizeof err);
		cr_expect_eq(rc, -1, "case %zu accepted", i);
		cr_expect(strstr(err, "poolers") != NULL, "case %zu: %s", i, err);
		cJSON_Delete(j);
		an_config_free(&c);
	}
	an_config_defaults(&c);
	cJSON *j = cJSON_Parse("[{\"address\": \"2001:db8::0:7\", \"listen_port\": 6432, \"pool_mode\": \"session\","
			       " \"source\": \"10.0.0.8\", \"window_ms\": 5000}]");
	cr_expect_eq(an_config_set(&c, "poolers", j, err, sizeof err), 0, "%s", err);
	cr_expect_eq(c.n_poolers, 1);
	cr_expect_str_eq(c.poolers[0].address, "2001:db8::7");
	cr_expect_str_eq(c.poolers[0].source, "10.0.0.8");
	cr_expect_eq(c.poolers[0].session_mode, 1);
	cr_expect_eq(c.poolers[0].window_ms, 5000);
	cJSON_Delete(j);
	an_config_free(&c);
}

Test(pooler, admin_console_makes_a_pooler_known)
{
	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	h_start(&h);
	struct an_session *c = leg(1, "web:alice"), *srv = leg(0, NULL);
	cr_expect_eq(c->pool_role, AN_POOL_NONE); /* not configured: nothing known yet */
	struct an_session *console = leg(1, NULL);
	h.s = console;
	h_param(&h, "server_version", "1.18.0/bouncer");
	cr_expect_eq(h.an->cfg.n_poolers, 1);
	cr_expect_eq(c->pool_role, AN_POOL_CLIENT, "open sessions get their legs");
	cr_expect_eq(srv->pool_role, AN_POOL_SERVER);
	fwd(c, srv, "SELECT * FROM orders", 'I');
	const struct h_stmt *st = stmt_of(srv, "SELECT * FROM orders");
	cr_expect_eq(st->via_session_id, c->id);
	cr_expect_str_eq(st->end_user, "alice");
	h_param(&h, "server_version", "1.18.0/bouncer"); /* again: no second entry */
	cr_expect_eq(h.an->cfg.n_poolers, 1);
	h_free(&h);
}
