/* privilege_change: GRANT/REVOKE, CREATE/ALTER/DROP/RENAME ROLE|USER|GROUP, SET PASSWORD,
 * ALTER DEFAULT PRIVILEGES. Escalations (SUPERUSER, ALL ON *.*, server-file roles) are
 * critical. An admin on an admin host is reported, downgraded to info, or allowed (config). */
#include "det.h"

/* by word id: one test per token instead of eight string compares (a GRANT to thousands of
 * roles cost 2.5x ordinary SQL of its size) */
static const uint8_t escalation[] = { SNW_SUPERUSER, SNW_SUPER, SNW_CREATEROLE, SNW_BYPASSRLS,
				      SNW_PG_EXECUTE_SERVER_PROGRAM, SNW_PG_READ_SERVER_FILES,
				      SNW_PG_WRITE_SERVER_FILES, SNW_FILE, SNW_NONE };

static void pc_statement(struct an *an, const struct an_stmt *st)
{
	if (!st->toks || !st->info)
		return;
	switch (st->info->verb_kw) { /* the verbs below; any other statement ends here */
	case SNW_GRANT: case SNW_REVOKE: case SNW_CREATE: case SNW_ALTER: case SNW_DROP: case SNW_RENAME: case SNW_SET:
		break;
	default:
		return;
	}
	int v = det_verb_index(st);
	if (v < 0)
		return;
	const char *what = NULL;
	int obj = det_next(st, v);
	const char *verb = st->info->verb;
	if (!strcmp(verb, "GRANT") || !strcmp(verb, "REVOKE")) {
		what = verb;
	} else if (!strcmp(verb, "CREATE") || !strcmp(verb, "ALTER") || !strcmp(verb, "DROP") ||
		   !strcmp(verb, "RENAME")) {
		if (det_word(st, obj, "ROLE") || det_word(st, obj, "USER") || det_word(st, obj, "GROUP"))
			what = det_word(st, obj, "ROLE") ? "ROLE" : det_word(st, obj, "USER") ? "USER" : "GROUP";
		else if (!strcmp(verb, "ALTER") && det_word(st, obj, "DEFAULT") &&
			 det_word(st, det_next(st, obj), "PRIVILEGES"))
			what = "DEFAULT PRIVILEGES";
		/* CREATE USER MAPPING is a foreign-server login, not a role */
		if (what && det_word(st, det_next(st, obj), "MAPPING"))
			what = NULL;
		/* ALTER ROLE x [IN DATABASE d] SET|RESET param: a per-role setting, not a privilege */
		if (what && !strcmp(verb, "ALTER") && strcmp(what, "DEFAULT PRIVILEGES")) {
			int k = det_next(st, det_next(st, obj));
			if (det_word(st, k, "IN") && det_word(st, det_next(st, k), "DATABASE"))
				k = det_next(st, det_next(st, det_next(st, k)));
			if (det_word(st, k, "SET") || det_word(st, k, "RESET"))
				what = NULL;
		}
	} else if (!strcmp(verb, "SET") && det_word(st, obj, "PASSWORD")) {
		what = "PASSWORD";
	}
	if (!what)
		return;
	int esc = 0;
	for (int i = st->first; i < st->end && !esc; i++) {
		const struct sn_tok *t = det_tok(st, i);
		/* the bare word only: a quoted name the lexer resolves to it is not matched */
		if (sn_kw_in(t, escalation) && st->base[t->off] != '"' && st->base[t->off] != '`' &&
		    strcmp(verb, "REVOKE") != 0)
			esc = 1;
		/* GRANT ALL [PRIVILEGES] ON *.* (MySQL global) */
		if (det_word(st, i, "ON") && det_op(st, det_next(st, i), "*") && !strcmp(verb, "GRANT"))
			esc = 1;
	}
	enum an_severity sev = an->cfg.severity[AN_K_PRIVILEGE_CHANGE];
	if (esc)
		sev = AN_SEV_CRITICAL;
	int admin = an_is_admin(an, st->s);
	if (admin && an->cfg.admin_policy == AN_ADMIN_ALLOW)
		return;
	if (admin && an->cfg.admin_policy == AN_ADMIN_DOWNGRADE)
		sev = AN_SEV_INFO;
	int failed = st->outcome == EV_OUT_ERROR;
	if (failed && sev > AN_SEV_LOW && !admin)
		sev--;
	cJSON *ev = an_evidence_stmt(st, esc ? "privilege_escalation" : "privilege_change");
	cJSON_AddStringToObject(ev, "action", verb);
	cJSON_AddStringToObject(ev, "object", what);
	cJSON_AddBoolToObject(ev, "escalation", esc);
	cJSON_AddBoolToObject(ev, "admin_host", admin);
	char summary[256], sql[140];
	det_sql_excerpt(st, sql, sizeof sql);
	an_fmt(summary, sizeof summary, "%s%s%s by %s from %s: %s", failed ? "attempted " : "", esc ? "privilege escalation " : "",
		 strcmp(verb, what) ? what : verb, det_who(st), st->s->client_ip, sql);
	an_stmt_finding(an, st, AN_K_PRIVILEGE_CHANGE, sev, summary, ev);
}

const struct an_detector det_privilege_change = {
	.name = "privilege_change",
	.kind = AN_K_PRIVILEGE_CHANGE,
	.on_statement = pc_statement,
};
