/* Internal to `dbtap report`: the gathering state and what the gathering
 * (report_data.c) and the renderers (report_text.c, report_html.c) share. One JSON
 * document is gathered once; every format renders from it. */
#ifndef DBTAP_REPORT_INT_H
#define DBTAP_REPORT_INT_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>

#include "jsonw.h"
#include "report.h"

#define RP_DEFAULT_WINDOW (24LL * 3600 * 1000000)
#define RP_TOP 15	   /* rows in top-N lists */
#define RP_LIST 50	   /* rows in finding lists */
#define RP_MAX_BUCKETS 800 /* chart columns before switching to a coarser bucket */
#define US_PER_S 1000000LL

struct rp {
	const struct report_opts *o;
	sqlite3 *db;
	char since[40], until[40]; /* window as stored text: since <= t < until */
	char prev[40]; /* window end of the previous recorded report ("" unknown) */
	int have_window;
	int blen; /* bucket prefix length: 13 hour, 10 day, 7 month */
	char *err;
	size_t errlen;
};

extern const char *const sev_names[];
#define N_SEV 5

/* report_data.c: attach the databases, aggregate the window into r->db, and gather and
 * compute the report document under root. 0, or -1 with r->err set. */
int rp_gather(struct rp *r, cJSON *root);
/* The in-memory tables the gathering fills (run once on r->db first). */
extern const char rp_tables_sql[];
/* Set r->err to "PATH: WHAT: sqlite's message"; returns -1. */
int rp_fail(struct rp *r, const char *path, const char *what);
int rp_compute(struct rp *r, cJSON *root);
void rp_add(cJSON *o, const char *key, cJSON *v);
double rp_num(const cJSON *o, const char *key);
const char *rp_strv(const cJSON *o, const char *key);

/* The report document's sections, looked up once for either renderer (report_text.c). */
struct rp_parts {
	const cJSON *win, *cap, *ses, *stm, *fnd, *bs, *fl, *ns;
};
struct rp_parts rp_parts_of(const cJSON *root);
const char *rp_or(const char *s, const char *dflt);
#define NUM(o, k) ((long long)rp_num(o, k))

/* The renderers. */
void rp_text(const cJSON *root, struct jw *w);
void rp_html(const cJSON *root, struct jw *w);

#endif
