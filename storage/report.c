/* `dbtap report` (stub until the reports issue lands). */
#include <stdio.h>

#include "report.h"

int report_run(const struct report_opts *o, char *err, size_t errlen)
{
	(void)o;
	snprintf(err, errlen, "report: not implemented yet");
	return -1;
}
