/* error_burst: many syntax, permission or injection-provoked errors from one actor within a
 * window (probing). The actor is the end user when a marker names one, else the client
 * address, db_user and application together, counted across all of its sessions (a pooled
 * application spreads one attacker's errors over its connections). Errors that injection
 * provokes (type and cast errors carrying extracted text, unknown columns and functions,
 * duplicate keys of FLOOR(RAND(0)*2), UNION arity) weigh double. One finding per burst
 * (repeats within repeat_interval_s update it); the burst ends after a quiet window. */
#include "det.h"

/* SQLSTATEs (PostgreSQL) and errnos (MySQL) that probing produces, with their weight. */
static const struct {
	const char *code;
	int weight;
} probe_codes[] = {
	{ "42601", 2 }, /* syntax_error (also UNION column-count mismatch) */
	{ "42883", 2 }, /* undefined_function (fingerprinting) */
	{ "22P02", 2 }, /* invalid_text_representation: CAST(extracted text AS NUMERIC) */
	{ "42804", 2 }, /* datatype_mismatch */
	{ "42P01", 2 }, /* undefined_table */
	{ "42703", 2 }, /* undefined_column */
	{ "42P18", 1 }, /* indeterminate_datatype */
	{ "42501", 1 }, /* insufficient_privilege */
	{ "1064", 2 },	/* ER_PARSE_ERROR */
	{ "1054", 2 },	/* ER_BAD_FIELD_ERROR */
	{ "1062", 2 },	/* ER_DUP_ENTRY: FLOOR(RAND(0)*2) ... GROUP BY extraction */
	{ "1105", 2 },	/* ER_UNKNOWN_ERROR: EXTRACTVALUE/UPDATEXML, XPATH errors */
	{ "1690", 2 },	/* ER_DATA_OUT_OF_RANGE: EXP(~...) */
	{ "1222", 2 },	/* ER_WRONG_NUMBER_OF_COLUMNS_IN_SELECT (UNION probing) */
	{ "1241", 1 },	/* ER_OPERAND_COLUMNS */
	{ "1305", 1 },	/* ER_SP_DOES_NOT_EXIST (fingerprinting functions) */
	{ "1146", 1 },	/* ER_NO_SUCH_TABLE */
	{ "1149", 1 },	/* ER_SYNTAX_ERROR */
	{ "1142", 1 },	/* ER_TABLEACCESS_DENIED_ERROR */
	{ "1143", 1 },	/* ER_COLUMNACCESS_DENIED_ERROR */
	{ "1044", 1 },	/* ER_DBACCESS_DENIED_ERROR */
	{ "1045", 1 },	/* ER_ACCESS_DENIED_ERROR (in-session) */
	{ "1227", 1 },	/* ER_SPECIFIC_ACCESS_DENIED_ERROR */
	{ "1370", 1 },	/* ER_PROCACCESS_DENIED_ERROR */
};

static int code_weight(const char *c)
{
	for (size_t i = 0; i < sizeof probe_codes / sizeof probe_codes[0]; i++)
		if (!strcmp(c, probe_codes[i].code))
			return probe_codes[i].weight;
	return 0;
}

/* Add one error of weight w to the window; returns the weighted count when this error
 * starts a burst, else 0. */
static int burst_step(struct an_window *win_, ev_time ts, ev_time win, int threshold, int w)
{
	if (win_->in_burst && ts > win_->burst_until)
		win_->in_burst = 0;
	for (int i = 0; i < w; i++)
		an_window_add(win_, ts, win);
	int n = an_window_count(win_, ts, win);
	if (win_->in_burst) {
		win_->burst_count += w;
		win_->burst_until = ts + win;
		return 0;
	}
	if (n >= threshold) {
		win_->in_burst = 1;
		win_->burst_count = n;
		win_->burst_until = ts + win;
		return n;
	}
	return 0;
}

enum { EB_END_USER = 0, EB_ACTOR = 1 };

static void eb_statement(struct an *an, const struct an_stmt *st)
{
	if (st->outcome != EV_OUT_ERROR)
		return;
	int w = code_weight(st->error_code);
	if (!w)
		return;
	ev_time win = (ev_time)an->cfg.error_burst_window_s * 1000000LL;
	int thr = an->cfg.error_burst_errors;
	int by_user = st->end_user && st->end_user_source && strcmp(st->end_user_source, "db_user") != 0;
	char key[AN_STR_MAX];
	if (by_user)
		an_fmt(key, sizeof key, "%s", st->end_user);
	else
		an_fmt(key, sizeof key, "%s|%s|%s", st->s->client_ip, st->s->db_user, st->s->application);
	struct an_keyed *k = an_keyed_get(&an->eb, &an->n_eb, &an->cap_eb, by_user ? EB_END_USER : EB_ACTOR, key,
					  st->done_ts);
	if (!k)
		return;
	if (!k->w.in_burst || st->done_ts > k->w.burst_until)
		k->n_others = 0;
	/* the latest erroring statements, to link the burst to what caused it */
	char what[AN_STR_MAX];
	an_fmt(what, sizeof what, "%s %s", st->error_code, st->info ? st->info->fingerprint : "");
	if (k->n_others < 4)
		snprintf(k->others[k->n_others++], sizeof k->others[0], "%s", what);
	else {
		memmove(k->others[0], k->others[1], sizeof k->others[0] * 3);
		snprintf(k->others[3], sizeof k->others[0], "%s", what);
	}
	int n = burst_step(&k->w, st->done_ts, win, thr, w);
	if (!n)
		return;
	cJSON *ev = an_evidence_stmt(st, "error_burst");
	cJSON_AddStringToObject(ev, "scope", by_user ? "end_user" : "actor");
	if (by_user)
		cJSON_AddStringToObject(ev, "end_user", st->end_user);
	cJSON_AddStringToObject(ev, "client_ip", st->s->client_ip);
	cJSON_AddNumberToObject(ev, "weighted_errors", n);
	cJSON_AddNumberToObject(ev, "threshold", thr);
	cJSON_AddNumberToObject(ev, "window_s", an->cfg.error_burst_window_s);
	cJSON *arr = cJSON_AddArrayToObject(ev, "recent_errors"); /* "code fingerprint" */
	for (int i = 0; i < k->n_others; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(k->others[i]));
	char summary[256];
	an_fmt(summary, sizeof summary, "probing errors (weight %d within %d s) from %s%s%s (last: %s)", n,
	       an->cfg.error_burst_window_s, by_user ? "end user " : "", det_who(st),
	       by_user ? "" : " across its sessions", st->error_code);
	an_stmt_finding(an, st, AN_K_ERROR_BURST, an->cfg.severity[AN_K_ERROR_BURST], summary, ev);
}

const struct an_detector det_error_burst = {
	.name = "error_burst",
	.kind = AN_K_ERROR_BURST,
	.on_statement = eb_statement,
};
