/* Fuzz target: the SQL lexer, normaliser, splitter, masking and attribution parser, then the
 * same text through the analyzer as a simple query and as a prepared statement with bound
 * parameters. First byte: bit 0 picks the dialect (0 PostgreSQL, 1 MySQL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "an.h"
#include "null_sink.h"
#include "attr.h"
#include "sqlnorm.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shape_key(const char *src, const struct sn_tok *t, int first, int end, enum sn_dialect d)
{
	static char var[1 << 16], n1[SN_MAX_NORM + 1], n2[SN_MAX_NORM + 1];
	static uint8_t k1[1024], k2[1024];
	static struct sn_tok vt[4096];
	size_t o = 0;
	for (int i = first; i < end; i++) {
		const struct sn_tok *k = &t[i];
		const char *p = src + k->off;
		const char *rep = NULL;
		if (k->type == SN_NUMBER)
			rep = "7";
		else if (k->type == SN_STRING)
			rep = "'x'";
		else if (k->type == SN_COMMENT)
			rep = "/* c */";
		size_t len = rep ? strlen(rep) : k->len;
		if (o + len + 2 > sizeof var)
			return;
		var[o++] = ' ';
		for (size_t m = 0; m < len; m++) {
			char c = rep ? rep[m] : p[m];
			if (k->type == SN_WORD && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
				c ^= 0x20; /* other case */
			var[o++] = c;
		}
	}
	int tr = 0;
	int vn = sn_lex(var, o, d, vt, 4096, &tr);
	size_t l1 = sn_shape_key(src, t, first, end, k1, sizeof k1);
	size_t l2 = sn_shape_key(var, vt, 0, vn, k2, sizeof k2);
	if (tr || !l1 || l1 != l2 || memcmp(k1, k2, l1) != 0)
		return; /* lexed differently: nothing promised */
	struct sn_info a, b;
	sn_normalize(src, t, first, end, d, n1, sizeof n1, &a);
	sn_normalize(var, vt, 0, vn, d, n2, sizeof n2, &b);
	if (strcmp(n1, n2) != 0 || a.hash != b.hash || strcmp(a.verb, b.verb) != 0 || a.verb_kw != b.verb_kw ||
	    a.secret != b.secret || a.truncated != b.truncated || a.n_tables != b.n_tables ||
	    memcmp(a.words, b.words, sizeof a.words) != 0)
		abort();
	for (int i = 0; i < a.n_tables; i++)
		if (strcmp(a.tables[i], b.tables[i]) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sn_tok toks[SN_MAX_TOKENS];
	static char norm[SN_MAX_NORM + 1], masked[4096];
	if (size < 1)
		return 0;
	enum sn_dialect d = (data[0] & 1) ? SN_MYSQL : SN_PG;
	const char *sql = (const char *)data + 1;
	size_t len = size - 1;

	struct an_config cfg;
	an_config_defaults(&cfg);
	int tr = 0, more = 0;
	/* Poison what the lexer does not fill: a read past the tokens of this input then
	 * points far outside it and the sanitizer stops, instead of reading stale tokens. */
	for (int i = 0; i < SN_MAX_TOKENS; i++)
		toks[i] = (struct sn_tok){ .type = SN_WORD, .off = 0x7fffff00u, .len = 8 };
	int n = sn_lex(sql, len, d, toks, SN_MAX_TOKENS, &tr);
	struct sn_range parts[SN_MAX_PARTS];
	int np = sn_split(sql, toks, n, parts, SN_MAX_PARTS, &more);
	for (int i = 0; i < np; i++) {
		struct sn_info info;
		sn_normalize(sql, toks, parts[i].tok_first, parts[i].tok_end, d, norm, sizeof norm, &info);
		sn_mask(sql, toks, parts[i].tok_first, parts[i].tok_end, 0, info.secret, masked, sizeof masked);
		sn_mask(sql, toks, parts[i].tok_first, parts[i].tok_end, 1, info.secret, masked, sizeof masked);
		char user[128], trace[64];
		attr_comment_user(sql, toks, parts[i].tok_first, parts[i].tok_end, &cfg.comment_keys, user, sizeof user,
				  trace, sizeof trace);
		struct attr_val pv[2] = { { "app.user", 8 }, { "fuzz", 4 } };
		struct attr_op ops[ATTR_MAX_OPS];
		attr_statement(sql, toks, parts[i].tok_first, parts[i].tok_end, d, &cfg, pv, 2, ops, ATTR_MAX_OPS);
	}
	/* the shape key's promise: two statements with the same key normalise alike. The
	 * variant keeps every token but writes literals, comments and word case differently. */
	for (int i = 0; i < np; i++)
		check_shape_key(sql, toks, parts[i].tok_first, parts[i].tok_end, d);
	for (int i = 0; i < n; i++) {
		char lit[256];
		if (sn_is_literal(&toks[i])) {
			sn_literal_text(sql, &toks[i], lit, sizeof lit);
			sn_is_secret_literal(sql, toks, 0, n, i);
		}
	}

	/* the analyzer end to end */
	struct sink ns = { .ops = &null_ops, .name = "null" };
	struct sink *sinks[1] = { &ns };
	struct sink_ids ids = { 1, 1, 1, 1 };
	cfg.service_accounts.v[0] = strdup("app_svc");
	cfg.service_accounts.n = 1;
	struct an *an = an_new(&cfg, sinks, 1, &ids, 1);
	if (an) {
		struct an_flow f = { .protocol = d == SN_MYSQL ? "mysql" : "postgresql",
				     .dialect = d == SN_MYSQL ? EV_DIALECT_MYSQL : EV_DIALECT_POSTGRESQL,
				     .client_ip = "10.0.0.5", .server_ip = "10.0.0.1", .client_port = 40000,
				     .server_port = 5432, .ts = 1000 };
		struct an_session *s = an_open(an, &f);
		struct ev e = { .type = EV_STARTUP, .ts = 1000, .to_server = 1 };
		e.u.startup.user = STRV_LIT("app_svc");
		an_feed(an, s, &e);
		e = (struct ev){ .type = EV_QUERY, .ts = 2000, .to_server = 1 };
		e.u.query.id = 1;
		e.u.query.kind = EV_Q_SIMPLE;
		e.u.query.sql = (struct strv){ sql, len };
		e.u.query.sql_known = 1;
		an_feed(an, s, &e);
		for (int i = 0; i < 3; i++) {
			struct ev r = { .type = EV_RESULT, .ts = 3000 };
			r.u.result.id = 1;
			r.u.result.outcome = i == 2 ? EV_OUT_ERROR : EV_OUT_OK;
			r.u.result.rows = 20000;
			r.u.result.error_code = STRV_LIT("42601");
			an_feed(an, s, &r);
		}
		struct ev b = { .type = EV_READY, .ts = 3500 };
		b.u.ready.txn = 'T';
		an_feed(an, s, &b);
		struct ev_bind params[2] = { { { sql, len / 2 }, 0, 0 }, { { sql + len / 2, len - len / 2 }, 0, 0 } };
		e.u.query.id = 2;
		e.u.query.kind = EV_Q_EXECUTE;
		e.u.query.params = params;
		e.u.query.n_params = 2;
		an_feed(an, s, &e);
		b.u.ready.txn = 'I';
		an_feed(an, s, &b);
		struct an_flow_end end = { 4000, "close", 1, 1, 0, 0 };
		an_close(an, s, &end);
		an_free(an);
	}
	an_config_free(&cfg);
	return 0;
}
