/* `dbtap report` (stub until the reports issue lands). */
#include <stdio.h>

#include "report.h"

int report_run(const struct report_opts *o, char *err, size_t errlen)
{
	(void)o;
	snprintf(err, errlen, "report: not implemented yet");
	return -1;
}

int report_main(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "dbtap: %s: not implemented yet\n", argv[0]);
	return 1;
}
