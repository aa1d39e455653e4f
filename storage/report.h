/* `dbtap report`: summarise one or more findings databases over a time window. */
#ifndef DBTAP_REPORT_H
#define DBTAP_REPORT_H

#include <stddef.h>
#include <stdint.h>

enum report_format { REPORT_TEXT, REPORT_HTML, REPORT_JSON };

struct report_opts {
	const char *const *dbs; /* one or more database paths (several sensors merge) */
	int n_dbs;
	int64_t since_us;  /* window start; 0 = derive from last_us */
	int64_t last_us;   /* window length back from the newest packet time; 0 = 24 h */
	enum report_format format;
	const char *out;   /* NULL or "-" = stdout */
};

/* 0 on success; -1 with a one-line message in err (exit 1). */
int report_run(const struct report_opts *o, char *err, size_t errlen);

/* `dbtap report ...` and `dbtap prune ...`: argv[0] is "report" or "prune".
 * Returns the exit status (0 ok, 1 runtime error, 2 usage error). */
int report_main(int argc, char **argv);

#endif
