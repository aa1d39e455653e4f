/* `dbtap report|prune` without the sensor: argv[1] is the word, as main.c dispatches it. */
#include <stdio.h>

#include "report.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: storage_report report|prune ARGS...\n");
		return 2;
	}
	return report_main(argc - 1, argv + 1);
}
