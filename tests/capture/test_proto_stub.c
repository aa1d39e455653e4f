/* Adding a protocol: a stub Redis decoder (proto_resp.c) registered at start-up runs
 * through the whole pipeline (libpcap, libnids, the decoder table, the analyzer) on a
 * real redis-cli capture, with nothing in capture/ or analyzer/ naming it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "cap.h"
#include "harness.h"
#include "proto_resp.h"

static char *src_path(const char *rel)
{
	static char buf[1024];
	const char *src = getenv("DBTAP_SRC");
	snprintf(buf, sizeof buf, "%s/%s", src ? src : ".", rel);
	return buf;
}

/* Run the capture through cap + an into the harness's recording sink. */
static void run_capture(struct harness *h, const struct cap_config *cc)
{
	char err[512];
	struct cap *c = cap_new(cc, h->an, 0, err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	FILE *fp = cap_open_file(src_path("tests/protocols/data/redis/resp.pcap"), err, sizeof err);
	cr_assert_not_null(fp, "%s", err);
	cr_assert_eq(cap_read_fp(c, fp, "resp.pcap", NULL, 0, err, sizeof err), 0, "%s", err);
	cap_finish(c);
	cap_free(c);
}

Test(proto_stub, registered_decoder_runs_end_to_end)
{
	cr_assert_eq(proto_register(&proto_resp), 0);
	cr_assert_eq(proto_register(&proto_resp), -EEXIST);
	int d = proto_index(&proto_resp);
	cr_assert_geq(d, 2);

	struct cap_config cc;
	cap_config_defaults(&cc);
	cr_assert_eq(cc.ports[d].n, 1, "defaults come from the table");
	cr_assert_eq(cc.ports[d].port[0], 6379);
	cc.ports[d].port[0] = 6390; /* the capture script's private port, as ports.redis would */

	char db[] = "/tmp/dbtap-proto-stub-XXXXXX";
	int fd = mkstemp(db);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(db);
	struct harness h;
	h_init(&h);
	h.db = db;
	h_start(&h);
	run_capture(&h, &cc);
	h_end(&h);

	const char *want[] = { "SET greeting hello", "GET greeting", "INCR visits", "HSET user:" };
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int found = 0;
		for (int j = 0; j < h.sink->n_st; j++)
			found |= h.sink->st[j].sql && strstr(h.sink->st[j].sql, want[i]) != NULL;
		cr_expect(found, "statement %s stored", want[i]);
	}
	int errors = 0;
	for (int j = 0; j < h.sink->n_st; j++)
		errors += h.sink->st[j].outcome && !strcmp(h.sink->st[j].outcome, "error");
	cr_expect_geq(errors, 1, "the unknown command's error reply is matched to it");
	cr_expect(rec_sink_absent(h.sink, "s3cret-redis-pw"), "the AUTH password is never stored");
	cr_expect(rec_sink_absent(h.sink, "wrong-pw"), "nor a wrong one");
	sqlite3 *q;
	cr_assert_eq(sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *ps;
	cr_assert_eq(sqlite3_prepare_v2(q, "SELECT count(*), min(protocol), max(server_port) FROM sessions",
					-1, &ps, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(ps), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(ps, 0), 2, "two connections, two sessions");
	cr_expect_str_eq((const char *)sqlite3_column_text(ps, 1), "redis", "protocol from the table");
	cr_expect_eq(sqlite3_column_int(ps, 2), 6390);
	sqlite3_finalize(ps);
	sqlite3_close(q);
	char side[sizeof db + 8];
	for (int i = 0; i < 3; i++) {
		snprintf(side, sizeof side, "%s%s", db, (const char *[]){ "", "-wal", "-shm" }[i]);
		unlink(side);
	}
	h_free(&h);
}
