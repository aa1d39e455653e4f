/* The -c configuration file: JSON loaded with libcjson. Capture owns "ports", "capture"
 * and "output"; every other top-level key goes to the analyzer (an_config_set). Unknown
 * keys and wrong types are usage errors naming the key's JSON path. */
#ifndef DBTAP_CONFIG_H
#define DBTAP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "an.h"
#include "cap.h"

struct dbtap_config {
	struct cap_config cap;
	struct an_config an;
	char *json_path;   /* output.json: JSON-lines file ("-" = stdout) */
	char *json_format; /* output.json_format: "dbtap" | "ocsf" (NULL = dbtap) */
	char *sensor;	   /* output.sensor: this sensor's name (NULL = the host name) */
	char *syslog;	   /* output.syslog: unix:PATH | udp://HOST:PORT | tcp://HOST:PORT */
	int batch_rows;	   /* output.batch_rows: rows per SQLite transaction */
	int64_t retention_us; /* output.retention ("30d"): statements older are pruned at start; 0 keeps all */
	char *spill;	   /* output.spill: where batches go while the database cannot be written */
	int spill_max_mb;  /* output.spill_max_mb: the spill file's cap */
	char *effective;   /* the file's JSON text, stored in runs.config */
};

void dbtap_config_defaults(struct dbtap_config *c);
/* 0, or -1 with a one-line message (file name, JSON path, reason) in err. */
int dbtap_config_load(struct dbtap_config *c, const char *path, char *err, size_t errlen);
void dbtap_config_free(struct dbtap_config *c);
/* Every key of the file as cfgkey.h tables pointing into c (the application's, then the
 * analyzer's): fills out[DBTAP_CFG_TABLES], returns how many. */
#define DBTAP_CFG_TABLES (1 + AN_CFG_TABLES)
struct ck_table;
int dbtap_config_tables(struct dbtap_config *c, struct ck_table *out);

#endif
