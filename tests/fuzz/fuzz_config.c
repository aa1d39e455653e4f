/* Fuzz target: a JSON configuration applied key by key through an_config_set (as capture
 * does), then an analyzer built from it (regex patterns compiled) and fed a few events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "an.h"
#include "null_sink.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);
	struct an_config cfg;
	char err[256];
	an_config_defaults(&cfg);
	const cJSON *e;
	int bad = 0;
	cJSON *obj = cJSON_IsObject(root) ? root : NULL;
	cJSON_ArrayForEach(e, obj)
	{
		if (e->string && an_config_set(&cfg, e->string, e, err, sizeof err) < 0) {
			bad = 1;
			break;
		}
	}
	cJSON_Delete(root);
	if (!bad) {
		struct sink ns = { .ops = &null_ops, .name = "null" };
		struct sink *sinks[1] = { &ns };
		struct sink_ids ids = { 1, 1, 1, 1 };
		struct an *an = an_new(&cfg, sinks, 1, &ids, 1);
		if (an) {
			struct an_flow f = { .protocol = "postgresql", .dialect = EV_DIALECT_POSTGRESQL,
					     .client_ip = "10.1.2.3", .server_ip = "10.0.0.1",
					     .client_port = 40000, .server_port = 5432, .ts = 1000 };
			struct an_session *s = an_open(an, &f);
			struct ev st = { .type = EV_STARTUP, .ts = 1000, .to_server = 1 };
			st.u.startup.user = STRV_LIT("dba");
			st.u.startup.application = STRV_LIT("web:alice");
			an_feed(an, s, &st);
			const char *q = "GRANT SELECT ON customers TO bob; SELECT ssn FROM customers";
			struct ev e2 = { .type = EV_QUERY, .ts = 2000, .to_server = 1 };
			e2.u.query.id = 1;
			e2.u.query.sql = strv_from(q);
			e2.u.query.sql_known = 1;
			an_feed(an, s, &e2);
			for (int i = 0; i < 2; i++) {
				struct ev r = { .type = EV_RESULT, .ts = 3000 };
				r.u.result.id = 1;
				r.u.result.rows = 1000000;
				an_feed(an, s, &r);
			}
			struct ev l = { .type = EV_LOGIN, .ts = 3000 };
			for (int i = 0; i < 70; i++)
				an_feed(an, s, &l);
			an_tick(an, 1000000000);
			an_close(an, s, NULL);
			an_free(an);
		}
	}
	an_config_free(&cfg);
	return 0;
}
