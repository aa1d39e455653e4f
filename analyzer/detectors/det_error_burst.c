/* error_burst: many syntax or permission errors from one session or one end user within a
 * window (probing). One finding per burst; the burst ends after a quiet window. */
#include "det.h"

/* SQLSTATEs (PostgreSQL) and errnos (MySQL) that probing produces. */
static const char *const probe_codes[] = {
	"42601", /* syntax_error (also UNION column-count mismatch) */
	"42501", /* insufficient_privilege */
	"1064",	 /* ER_PARSE_ERROR */
	"1149",	 /* ER_SYNTAX_ERROR */
	"1142",	 /* ER_TABLEACCESS_DENIED_ERROR */
	"1143",	 /* ER_COLUMNACCESS_DENIED_ERROR */
	"1044",	 /* ER_DBACCESS_DENIED_ERROR */
	"1045",	 /* ER_ACCESS_DENIED_ERROR (in-session) */
	"1227",	 /* ER_SPECIFIC_ACCESS_DENIED_ERROR */
	"1370",	 /* ER_PROCACCESS_DENIED_ERROR */
	"1222",	 /* ER_WRONG_NUMBER_OF_COLUMNS_IN_SELECT (UNION probing) */
	NULL,
};

static int is_probe_code(const char *c)
{
	for (int i = 0; probe_codes[i]; i++)
		if (!strcmp(c, probe_codes[i]))
			return 1;
	return 0;
}

/* Add one error to w; returns the count when this error starts a burst, else 0. */
static int burst_step(struct an_window *w, ev_time ts, ev_time win, int threshold)
{
	if (w->in_burst && ts > w->burst_until)
		w->in_burst = 0;
	an_window_add(w, ts, win);
	int n = an_window_count(w, ts, win);
	if (w->in_burst) {
		w->burst_count++;
		w->burst_until = ts + win;
		return 0;
	}
	if (n >= threshold) {
		w->in_burst = 1;
		w->burst_count = n;
		w->burst_until = ts + win;
		return n;
	}
	return 0;
}

static void eb_statement(struct an *an, const struct an_stmt *st)
{
	if (st->outcome != EV_OUT_ERROR || !is_probe_code(st->error_code))
		return;
	ev_time win = (ev_time)an->cfg.error_burst_window_s * 1000000LL;
	int thr = an->cfg.error_burst_errors;
	int n_sess = burst_step(&st->s->err_win, st->done_ts, win, thr);
	int n_user = 0;
	if (st->end_user && st->end_user_source && strcmp(st->end_user_source, "db_user") != 0) {
		struct an_keyed *k = an_keyed_get(&an->eb, &an->n_eb, &an->cap_eb, 0, st->end_user, st->done_ts);
		if (k)
			n_user = burst_step(&k->w, st->done_ts, win, thr);
	}
	if (!n_sess && !n_user)
		return;
	const char *scope = n_sess ? "session" : "end_user";
	cJSON *ev = an_evidence_stmt(st, "error_burst");
	cJSON_AddStringToObject(ev, "scope", scope);
	cJSON_AddNumberToObject(ev, "errors", n_sess ? n_sess : n_user);
	cJSON_AddNumberToObject(ev, "threshold", thr);
	cJSON_AddNumberToObject(ev, "window_s", an->cfg.error_burst_window_s);
	char summary[256];
	an_fmt(summary, sizeof summary, "%d syntax/permission errors within %d s from %s %s (last: %s)",
		 n_sess ? n_sess : n_user, an->cfg.error_burst_window_s, n_sess ? "the session of" : "end user",
		 det_who(st), st->error_code);
	an_stmt_finding(an, st, AN_K_ERROR_BURST, an->cfg.severity[AN_K_ERROR_BURST], summary, ev);
}

const struct an_detector det_error_burst = {
	.name = "error_burst",
	.kind = AN_K_ERROR_BURST,
	.on_statement = eb_statement,
};
