/* sensitive_access: a configured sensitive table (optionally only some columns) touched by a
 * principal (db_user, effective role or end user) not in its allow list. SELECT * and t.*
 * count as touching every column. */
#include <strings.h>

#include "det.h"

static int table_match(const char *cfg, const char *seen)
{
	if (strchr(cfg, '.'))
		return strcmp(cfg, seen) == 0;
	const char *dot = strrchr(seen, '.');
	return strcmp(cfg, dot ? dot + 1 : seen) == 0;
}

static int allowed(const struct an_sensitive *o, const struct an_stmt *st)
{
	const struct an_session *s = st->s;
	return an_in_list(&o->allow, s->db_user) || (s->role[0] && an_in_list(&o->allow, s->role)) ||
	       (s->txn_role[0] && an_in_list(&o->allow, s->txn_role)) || (st->end_user && an_in_list(&o->allow, st->end_user));
}

static void sa_statement(struct an *an, const struct an_stmt *st)
{
	if (!st->info || !st->toks)
		return;
	for (int k = 0; k < an->cfg.n_sensitive; k++) {
		const struct an_sensitive *o = &an->cfg.sensitive[k];
		const char *table = NULL;
		for (int i = 0; i < st->info->n_tables && !table; i++)
			if (table_match(o->table, st->info->tables[i]))
				table = st->info->tables[i];
		if (!table || allowed(o, st))
			continue;
		char column[64] = "";
		if (o->columns.n > 0) {
			for (int i = st->first; i < st->end && !column[0]; i++) {
				const struct sn_tok *t = det_tok(st, i);
				if (t->type == SN_OP && t->len == 1 && st->base[t->off] == '*' &&
				    (det_word(st, det_prev(st, i), "SELECT") || det_punct(st, det_prev(st, i), '.') ||
				     det_punct(st, det_prev(st, i), ',')))
					snprintf(column, sizeof column, "*");
				if (t->type == SN_WORD || t->type == SN_QIDENT) {
					char name[64];
					sn_literal_text(st->base, t, name, sizeof name);
					for (int c = 0; c < o->columns.n; c++)
						if (!strcasecmp(name, o->columns.v[c]))
							snprintf(column, sizeof column, "%s", o->columns.v[c]);
				}
			}
			if (!column[0])
				continue;
		}
		cJSON *ev = an_evidence_stmt(st, "sensitive_object");
		cJSON_AddStringToObject(ev, "table", table);
		if (column[0])
			cJSON_AddStringToObject(ev, "column", column);
		cJSON_AddStringToObject(ev, "principal", det_who(st));
		char summary[256];
		an_fmt(summary, sizeof summary, "%s (%s) touched sensitive %s%s%s with %s", det_who(st),
			 st->s->db_user[0] ? st->s->db_user : "unknown db user", table, column[0] ? "." : "", column,
			 st->info->verb[0] ? st->info->verb : "a statement");
		an_stmt_finding(an, st, AN_K_SENSITIVE_ACCESS, an->cfg.severity[AN_K_SENSITIVE_ACCESS], summary, ev);
		return; /* one finding per statement */
	}
}

const struct an_detector det_sensitive_access = {
	.name = "sensitive_access",
	.kind = AN_K_SENSITIVE_ACCESS,
	.on_statement = sa_statement,
};
