/* Parked-session cost (issue #18): 100,000 pooled sessions, each with an identity, a
 * session marker and two named prepared statements, parked by the idle sweep; prints the
 * bytes the parked table holds and the heap growth (mallinfo2). The heap also holds what
 * the rest of the analyzer keeps (baseline entries for 100,000 clients...): run it again
 * with parking off (second argument 0) and take the difference.
 * Run: build/tests/analyzer/bench_park [N [MAX_PARKED]] */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an.h"
#include "an_int.h"
#include "harness.h"

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	struct harness h;
	h_init(&h);
	h.cfg.service_accounts.v[0] = strdup("app_svc");
	h.cfg.service_accounts.n = 1;
	h.cfg.max_parked = argc > 2 ? atoi(argv[2]) : n; /* 0: sessions end instead (the baseline) */
	h.cfg.max_parked_mb = 1024;
	h.an = an_new(&h.cfg, NULL, 0, NULL, 1); /* no sink: only the analyzer's own memory */
	size_t heap0 = mallinfo2().uordblks;
	char ip[48];
	for (int i = 0; i < n; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		struct an_flow f = { .protocol = "postgresql", .dialect = EV_DIALECT_POSTGRESQL, .client_ip = ip,
				     .server_ip = "10.255.0.1", .client_port = 40000 + i % 20000, .server_port = 5432,
				     .ts = h.t };
		h.s = an_open(h.an, &f);
		h_startup(&h, "app_svc", "shop", "node-pool");
		h_login(&h, 1);
		h_simple(&h, "SET app.end_user = 'user0000042'", 1, 'I');
		const char *names[2] = { "item_by_id", "items_by_owner" };
		const char *sqls[2] = { "SELECT id, name, price FROM items WHERE id = $1",
					"SELECT id, name FROM items WHERE owner = $1 ORDER BY id LIMIT 50" };
		for (int k = 0; k < 2; k++) {
			struct ev e = { .type = EV_QUERY, .ts = h.t, .to_server = 1 };
			e.u.query.id = h.qid++;
			e.u.query.kind = EV_Q_EXECUTE;
			e.u.query.sql = strv_from(sqls[k]);
			e.u.query.sql_known = 1;
			e.u.query.stmt_name = strv_from(names[k]);
			h_event(&h, &e);
			h_result(&h, e.u.query.id, EV_OUT_OK, 1, NULL);
		}
		struct an_flow_end end = { .ts = h.t, .reason = "idle" };
		an_close(h.an, h.s, &end);
	}
	struct an_stats st;
	an_get_stats(h.an, &st);
	size_t heap1 = mallinfo2().uordblks;
	printf("parked %llu sessions: parked_bytes %llu (%.0f B each), heap growth %.1f MiB (%.0f B each), evicted %llu\n",
	       (unsigned long long)st.sessions_parked, (unsigned long long)st.parked_bytes,
	       (double)st.parked_bytes / (double)n, (double)(heap1 - heap0) / 1048576.0,
	       (double)(heap1 - heap0) / (double)n, (unsigned long long)st.parked_evicted);
	an_free(h.an);
	an_config_free(&h.cfg);
	return 0;
}
