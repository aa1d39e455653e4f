/* Sink throughput: statements per second stored by the SQLite sink (writer thread, default
 * batches), optionally with the JSON-lines sink too. Not part of meson test.
 * bench_sink OUT.db [N] [--json FILE] [--drop] (default waits instead of dropping). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sink.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_sink OUT.db [N] [--json FILE] [--drop]\n");
		return 2;
	}
	long n = argc > 2 && argv[2][0] != '-' ? atol(argv[2]) : 1000000;
	const char *json = NULL;
	int drop = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--drop"))
			drop = 1;
	}
	char err[256];
	struct sink_ids ids;
	struct sink *s = sink_sqlite_open(argv[1], 0, &ids, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	sink_sqlite_set_wait(s, !drop);
	struct sink *j = json ? sink_json_open(json, err, sizeof(err)) : NULL;
	if (json && !j) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	static const char *const sqls[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = ?",
		"UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?,"
		" CURRENT_TIMESTAMP)",
		"UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?",
	};
	static const char *const verbs[] = {"SELECT", "UPDATE", "INSERT", "UPDATE"};
	int64_t t = 1795770902000000LL, sid = ids.session;
	struct rec_session se = {.id = sid, .run_id = 1, .protocol = "postgresql",
				 .client_ip = "127.0.0.1", .client_port = 40000,
				 .server_ip = "127.0.0.1", .server_port = 5432, .started_at = t,
				 .db_user = "bench", .database = "bench", .login = "ok"};
	struct rec rs = {.type = REC_SESSION, .u.session = &se};
	sink_put(s, &rs);
	double t0 = now_s(), last_flush = t0;
	for (long i = 0; i < n; i++) {
		int k = (int)(i & 3);
		struct rec_statement st = {.id = ids.statement + i, .session_id = sid,
					   .ts = t + i * 3, .verb = verbs[k],
					   .fingerprint = "9f3c2a7b1d0e4c55", .sql = sqls[k],
					   .outcome = "ok", .rows = 1, .duration_us = 80,
					   .end_user = (i & 7) ? NULL : "alice",
					   .end_user_source = (i & 7) ? NULL : "comment",
					   .protocol = "postgresql", .client_ip = "127.0.0.1",
					   .db_user = "bench", .database = "bench"};
		struct rec r = {.type = REC_STATEMENT, .u.statement = &st};
		sink_put(s, &r);
		if (j)
			sink_put(j, &r);
		if ((i & 4095) == 0) {
			double now = now_s();
			if (now - last_flush >= 1.0) { /* the analyzer flushes about once a second */
				sink_flush(s);
				if (j)
					sink_flush(j);
				last_flush = now;
			}
		}
	}
	double tput = now_s();
	int rc = sink_sync(s);
	double tend = now_s();
	unsigned long long dropped = (unsigned long long)s->dropped;
	sink_close(s);
	sink_close(j);
	struct timespec mt;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mt); /* the producer (this thread) */
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	double stored = (double)n - (double)dropped;
	double wcpu = cpu - ((double)mt.tv_sec + mt.tv_nsec / 1e9);
	/* wall rate depends on what else runs on the machine; CPU rate does not */
	printf("%ld statements: put %.2f s, stored after %.2f s => %.0f stored/s wall,"
	       " %.0f stored per CPU-second (process CPU %.2f s; writer thread %.2f s =>"
	       " %.0f/s), dropped %llu%s\n",
	       n, tput - t0, tend - t0, stored / (tend - t0), stored / cpu, cpu, wcpu,
	       wcpu > 0 ? stored / wcpu : 0, dropped,
	       rc ? " ERROR" : "");
	return rc ? 1 : 0;
}
