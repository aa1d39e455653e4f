/* destructive_statement: DROP TABLE/SCHEMA/DATABASE, TRUNCATE, and DELETE/UPDATE without a
 * top-level WHERE. Temporary tables (DROP TEMPORARY TABLE) are not reported. */
#include "det.h"

static void ds_statement(struct an *an, const struct an_stmt *st)
{
	if (!st->toks || !st->info)
		return;
	int vk = st->info->verb_kw;
	if (vk != SNW_DROP && vk != SNW_TRUNCATE && vk != SNW_DELETE && vk != SNW_UPDATE)
		return;
	int v = det_verb_index(st);
	if (v < 0)
		return;
	const char *verb = st->info->verb, *what = NULL;
	int o = det_next(st, v);
	if (vk == SNW_DROP) { /* vk is the verb's word id: no string compares per statement */
		if (det_word(st, o, "TABLE") || det_word(st, o, "SCHEMA") || det_word(st, o, "DATABASE"))
			what = det_word(st, o, "TABLE") ? "DROP TABLE" : det_word(st, o, "SCHEMA") ? "DROP SCHEMA"
												    : "DROP DATABASE";
	} else if (vk == SNW_TRUNCATE) {
		what = "TRUNCATE";
	} else {
		int depth = det_tok(st, v)->depth, where = 0;
		for (int i = v; i < st->end && !where; i++)
			where = det_tok(st, i)->depth == depth && sn_kw(det_tok(st, i), SNW_WHERE);
		if (!where)
			what = verb[0] == 'D' ? "DELETE without WHERE" : "UPDATE without WHERE";
	}
	if (!what)
		return;
	enum an_severity sev = an->cfg.severity[AN_K_DESTRUCTIVE_STATEMENT];
	int failed = st->outcome == EV_OUT_ERROR;
	if (failed && sev > AN_SEV_LOW)
		sev--;
	cJSON *ev = an_evidence_stmt(st, what);
	if (st->rows >= 0)
		cJSON_AddNumberToObject(ev, "rows", (double)st->rows);
	for (int i = 0; i < st->info->n_tables; i++) {
		cJSON *a = cJSON_GetObjectItemCaseSensitive(ev, "tables");
		if (!a)
			a = cJSON_AddArrayToObject(ev, "tables");
		cJSON_AddItemToArray(a, cJSON_CreateString(st->info->tables[i]));
	}
	char summary[256], sql[140];
	det_sql_excerpt(st, sql, sizeof sql);
	an_fmt(summary, sizeof summary, "%s%s by %s: %s", failed ? "attempted " : "", what, det_who(st), sql);
	an_stmt_finding(an, st, AN_K_DESTRUCTIVE_STATEMENT, sev, summary, ev);
}

const struct an_detector det_destructive_statement = {
	.name = "destructive_statement",
	.kind = AN_K_DESTRUCTIVE_STATEMENT,
	.on_statement = ds_statement,
};
