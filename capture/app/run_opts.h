/* `dbtap run`'s command line: its options, their parsing and checks, and what
 * --check-config prints. Split from main.c, which wires the run. */
#ifndef DBTAP_RUN_OPTS_H
#define DBTAP_RUN_OPTS_H

#include <stddef.h>

#include "config.h"

#define MAX_FILES 1024

struct run_opts {
	const char *files[MAX_FILES];
	int n_files;
	const char *iface, *db, *config, *bpf, *json, *drop_user, *metrics_file;
	const char *json_format, *sensor, *syslog;
	int learn, quiet, check_config;
	int fanout; /* PACKET_FANOUT group, 0 = none */
};

/* 0, 1 after --help, -1 after a usage error (already said). */
int parse_run(int argc, char **argv, struct run_opts *o);
/* The directories of the outputs exist (a typo is a configuration error, found first). */
int check_outputs(const struct run_opts *o, const char *json_path, char *err, size_t errlen);
/* --check-config: what this run would use. */
void print_effective(const struct run_opts *o, const struct dbtap_config *c, const char *json_path,
		     const char *json_format, const char *sensor);
/* The option getopt_long refused, and a command's usage error (returns -1). */
const char *bad_option(char **argv);
int usage_error(const char *cmd, const char *fmt, const char *arg);

#endif
