/* The per-analyzer cache of prepared-statement normalisation (an_ncache.c): a repeated
 * Execute must store exactly what its first, uncached execution stored, per dialect. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "an.h"
#include "harness.h"

static const char *texts[] = {
	"SELECT \"a\" FROM t WHERE b = $1",
	"ALTER USER bob PASSWORD $1",
	"SELECT * FROM t WHERE a = 'lit' AND b = $1 /* app_user='kim' */",
	"UPDATE accounts SET bal = bal + $1 WHERE id = $2",
	"SELECT 1 FROM users WHERE name = $1 AND password = crypt($2, password)",
};
#define N_TEXTS (sizeof texts / sizeof texts[0])
#define N_FILLER 100 /* more distinct texts than cache slots: forces replacements */
#define ROUNDS 3

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

Test(ncache, repeated_execute_stores_what_the_first_execution_stored)
{
	struct harness h;
	h_init(&h);
	h.cfg.keep_literals = 1;
	h_start(&h);
	struct an_session *pg = h_open(&h, "postgresql", NULL);
	h_startup(&h, "app", "db", "svc");
	h_login(&h, 1);
	struct an_session *my = h_open(&h, "mysql", NULL);
	h_startup(&h, "app", "db", "svc");
	h_login(&h, 1);
	const char *params[] = { "x", "hunter2" };
	char filler[64];
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < N_TEXTS; i++) {
			for (int d = 0; d < 2; d++) {
				h.s = d ? my : pg;
				uint64_t id = h_query(&h, EV_Q_EXECUTE, texts[i], params, 2);
				h_result(&h, id, EV_OUT_OK, 1, NULL);
			}
		}
		for (int f = 0; f < N_FILLER; f++) {
			snprintf(filler, sizeof filler, "SELECT c%d FROM t%d WHERE x = $1", f, r);
			h.s = pg;
			uint64_t id = h_query(&h, EV_Q_EXECUTE, filler, params, 1);
			h_result(&h, id, EV_OUT_OK, 1, NULL);
		}
	}
	h_end(&h);
	int per_round = (int)N_TEXTS * 2 + N_FILLER;
	cr_assert_eq(h.sink->n_st, per_round * ROUNDS);
	for (int r = 1; r < ROUNDS; r++) {
		for (int k = 0; k < (int)N_TEXTS * 2; k++) {
			const struct h_stmt *a = &h.sink->st[k], *b = &h.sink->st[r * per_round + k];
			cr_expect(same(a->verb, b->verb), "verb %d", k);
			cr_expect(same(a->fingerprint, b->fingerprint), "fingerprint %d", k);
			cr_expect(same(a->sql, b->sql), "sql %d", k);
			cr_expect(same(a->params, b->params), "params %d", k);
			cr_expect(same(a->end_user, b->end_user), "end_user %d", k);
			cr_expect(same(a->end_user_source, b->end_user_source), "source %d", k);
		}
	}
	/* the same text in the other dialect is not served from the cache: "a" is an
	 * identifier in PostgreSQL and a string in MySQL */
	cr_expect(!same(h.sink->st[0].fingerprint, h.sink->st[1].fingerprint));
	for (int r = 0; r < ROUNDS; r++) {
		/* the password statements' parameters are not stored on any execution */
		cr_expect_null(h.sink->st[r * per_round + 2].params);
		cr_expect_null(h.sink->st[r * per_round + 8].params);
		cr_expect_not_null(h.sink->st[r * per_round + 6].params);
		/* the comment names the end user each time */
		cr_expect_str_eq(h.sink->st[r * per_round + 4].end_user, "kim");
	}
	h_free(&h);
}
