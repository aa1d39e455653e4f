/* Writes a demo findings database through the real SQLite sink (for the HTML check and for
 * trying `dbtap report` by hand): storage_demo OUT.db [HOURS] [SESSIONS_PER_HOUR]. */
#include <stdio.h>
#include <stdlib.h>

#include "demo_fill.h"
#include "sink.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: storage_demo OUT.db [HOURS] [SESSIONS_PER_HOUR]\n");
		return 2;
	}
	int hours = argc > 2 ? atoi(argv[2]) : 30;
	int per_hour = argc > 3 ? atoi(argv[3]) : 40;
	char err[256];
	struct sink_ids ids;
	struct sink *s = sink_sqlite_open(argv[1], 0, &ids, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "storage_demo: %s\n", err);
		return 1;
	}
	sink_sqlite_set_wait(s, 1);
	struct demo_counts c;
	/* 2026-11-26T03:00:00Z */
	int rc = demo_fill(s, &ids, 1795662000LL * 1000000, hours, per_hour, 42, &c);
	int src = sink_sync(s);
	if (rc < 0 || src < 0) {
		fprintf(stderr, "storage_demo: %s\n", s->errmsg);
		sink_close(s);
		return 1;
	}
	sink_close(s);
	printf("%lld sessions, %lld statements, %lld findings, %lld failed logins\n",
	       (long long)c.sessions, (long long)c.statements, (long long)c.findings,
	       (long long)c.failed_logins);
	return 0;
}
