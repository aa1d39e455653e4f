/* End-user attribution state of a session: the markers (comment, application name,
 * session variable, connect attribute) that SET, RESET, ROLLBACK and DISCARD change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"
#include "attr.h"

const char *an_src_name(enum an_src s)
{
	switch (s) {
	case AN_SRC_COMMENT: return "comment";
	case AN_SRC_APPNAME: return "application_name";
	case AN_SRC_SESSVAR: return "session_variable";
	case AN_SRC_CONNATTR: return "connect_attr";
	case AN_SRC_DBUSER: return "db_user";
	default: return NULL;
	}
}

int an_app_user(struct an *an, const char *app, char *out, size_t cap)
{
	for (int i = 0; i < an->n_app_re; i++) {
		regmatch_t m[2];
		if (regexec(&an->app_re[i], app, 2, m, 0) == 0 && m[1].rm_so >= 0 && m[1].rm_eo > m[1].rm_so) {
			attr_clean(out, cap, app + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so));
			return 1;
		}
	}
	return 0;
}

void an_marker_set(struct an_marker *m, enum an_src src, const char *v)
{
	attr_clean(m->value, sizeof m->value, v, strlen(v));
	m->src = m->value[0] ? src : AN_SRC_NONE;
}

static void marker_unknown(struct an_marker *m)
{
	m->value[0] = 0;
	m->src = AN_SRC_UNKNOWN;
}

/* failed: the statement setting them failed; the application meant a new value, so a user
 * marker becomes unknown rather than keep the old name (DETECTORS.md, attribution). */
void an_apply_ops(struct an *an, struct an_session *s, const struct attr_op *ops, int n, int failed)
{
	for (int i = 0; i < n; i++) {
		const struct attr_op *o = &ops[i];
		struct an_marker *m = o->scope == ATTR_TXN ? &s->txn_marker : &s->sess_marker;
		char user[AN_STR_MAX];
		if (failed && o->kind != ATTR_USER)
			continue;
		if (m == &s->sess_marker) {
			s->sess_changed = 1;
			pool_session_marker(s);
		}
		switch (o->kind) {
		case ATTR_USER:
			if (o->unknown || failed) {
				marker_unknown(m);
				if (failed && m == &s->sess_marker) /* not undone by a rollback either */
					marker_unknown(&s->sess_at_idle);
			} else if (o->clear) {
				if (m->src == AN_SRC_SESSVAR || m->src == AN_SRC_UNKNOWN)
					m->src = AN_SRC_NONE;
			} else {
				an_marker_set(m, AN_SRC_SESSVAR, o->value);
			}
			break;
		case ATTR_APPNAME:
			if (!o->clear && !o->unknown && an_app_user(an, o->value, user, sizeof user))
				an_marker_set(m, AN_SRC_APPNAME, user);
			else if (m->src == AN_SRC_APPNAME)
				m->src = AN_SRC_NONE;
			break;
		case ATTR_ROLE: {
			char *r = o->scope == ATTR_TXN ? s->txn_role : s->role;
			if (o->clear || o->unknown)
				r[0] = 0;
			else
				snprintf(r, AN_STR_MAX, "%s", o->value);
			break;
		}
		case ATTR_RESET_ALL:
			s->sess_marker.src = AN_SRC_NONE;
			s->txn_marker.src = AN_SRC_NONE;
			s->role[0] = s->txn_role[0] = 0;
			an_ps_free(an, s); /* DISCARD ALL deallocates them too */
			break;
		}
	}
}

static int txn_verb(const char *v)
{
	switch (v[0]) {
	case 'B': return !strcmp(v, "BEGIN");
	case 'S': return !strcmp(v, "START") || !strcmp(v, "SET") || !strcmp(v, "SAVEPOINT");
	case 'C': return !strcmp(v, "COMMIT");
	case 'E': return !strcmp(v, "END");
	case 'R': return !strcmp(v, "ROLLBACK") || !strcmp(v, "RESET") || !strcmp(v, "RELEASE");
	case 'D': return !strcmp(v, "DISCARD");
	default: return 0;
	}
}

static enum an_src src_of(const char *name)
{
	for (int i = AN_SRC_COMMENT; i <= AN_SRC_DBUSER; i++)
		if (!strcmp(an_src_name((enum an_src)i), name))
			return (enum an_src)i;
	return AN_SRC_UNKNOWN;
}

/* A PostgreSQL statement whose tag is ROLLBACK: the whole transaction (restored at the
 * next idle ReadyForQuery), or back to a savepoint, after which a session marker set in
 * the transaction may or may not hold: unknown. */
void an_rollback_seen(struct an_session *s, const struct sn_tok *t, int n, const char *b)
{
	for (int i = 0; i < n && i < 4; i++)
		if (sn_word(b, &t[i], "TO")) {
			if (s->sess_changed)
				marker_unknown(&s->sess_marker);
			return;
		}
	s->rolled_back = 1;
}

void an_stmt_end_user(struct an *an, struct an_session *s, struct an_pending *p, struct an_stmt *st, int nops)
{
	if (!st->end_user && p->msg_src) { /* the message's attribution (below) */
		if (p->msg_src != AN_SRC_UNKNOWN) {
			st->end_user = p->msg_user;
			st->end_user_source = an_src_name(p->msg_src);
		}
	} else if (!st->end_user) {
		const struct an_marker *m = s->txn_marker.src ? &s->txn_marker
					  : s->sess_marker.src ? &s->sess_marker
					  : s->attr_marker.src ? &s->attr_marker : NULL;
		if (m && m->src != AN_SRC_UNKNOWN) {
			st->end_user = m->value;
			st->end_user_source = an_src_name(m->src);
		} else if (s->db_user[0] && !an_is_service_account(&an->cfg, s->db_user)) {
			st->end_user = s->db_user;
			st->end_user_source = "db_user";
		}
	}
	/* One message, one attribution: from the first statement of a split message that is
	 * not a marker or transaction statement, its end user is every later part's (a stacked
	 * statement cannot rename itself) */
	if (p->msg_user && !p->msg_src && !nops && !txn_verb(st->info ? st->info->verb : "")) {
		an_strcpy(p->msg_user, AN_STR_MAX, st->end_user ? st->end_user : "");
		p->msg_src = st->end_user ? src_of(st->end_user_source) : AN_SRC_UNKNOWN;
	}
}
