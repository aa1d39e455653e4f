/* PostgreSQL decoder: messages from the client (startup, Query, Parse/Bind/Execute/Close,
 * FunctionCall, password messages), one function each. */
#include "pgsql_int.h"

/* ---- client messages ---- */

static void client_startup(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	(void)rd_be32(&r); /* protocol code, checked by the caller */
	struct ev e = { .type = EV_STARTUP };
	struct ev_kv kv[PG_MAX_KV];
	size_t nkv = 0;
	int bad = 0;
	for (;;) {
		struct strv k = rd_cstr(&r);
		if (r.err) {
			bad = 1;
			break;
		}
		if (k.n == 0)
			break;
		struct strv v = rd_cstr(&r);
		if (r.err) {
			bad = 1;
			break;
		}
		if (strv_eq(k, "user")) {
			e.u.startup.user = v;
		} else if (strv_eq(k, "database")) {
			e.u.startup.database = v;
		} else if (strv_eq(k, "application_name")) {
			e.u.startup.application = v;
		} else {
			if (strv_eq(k, "replication"))
				e.u.startup.replication = pg_strv_ieq(v, "true") || pg_strv_ieq(v, "on") ||
							  pg_strv_ieq(v, "yes") || pg_strv_ieq(v, "1") ||
							  pg_strv_ieq(v, "database");
			if (nkv < PG_MAX_KV)
				kv[nkv++] = (struct ev_kv){ k, v };
		}
	}
	/* libpq defaults the database to the user name */
	if (!e.u.startup.database.n)
		e.u.startup.database = e.u.startup.user;
	e.u.startup.params = kv;
	e.u.startup.n_params = nkv;
	if (bad)
		pg_anomaly(s, "pgsql: startup parameters not NUL-terminated", 0);
	pg_emit(s, &e);
	s->startup_seen = 1;
	s->confirmed = 1;
}

/* One startup-family packet at p. Returns bytes consumed (0 = need more). */
size_t pg_client_untyped(struct pg *s, const uint8_t *p, size_t n)
{
	if (n >= 2 && byte_at(p, n, 0) == 0x16 && byte_at(p, n, 1) == 0x03) {
		/* PostgreSQL 17 direct TLS: a ClientHello instead of a startup packet */
		pg_tls(s, p, 0);
		return n;
	}
	if (n < 8)
		return 0;
	uint32_t ml = be32_at(p), code = be32_at(p + 4);
	if (ml < 8 || ml > PG_MAX_STARTUP) {
		pg_anomaly(s, "pgsql: bad startup packet length", 1);
		return n;
	}
	if (code == PG_CODE_SSL || code == PG_CODE_GSS) {
		if (ml != 8) {
			pg_anomaly(s, "pgsql: bad encryption request length", 1);
			return n;
		}
		s->ssl_wait = code == PG_CODE_SSL ? 1 : 2;
		s->confirmed = 1;
		return 8;
	}
	if (code == PG_CODE_CANCEL) {
		if (ml != 16) {
			pg_anomaly(s, "pgsql: bad cancel request length", 1);
			return n;
		}
		if (n < 16)
			return 0;
		struct ev e = { .type = EV_CANCEL };
		e.u.cancel.target_conn_id = be32_at(p + 8);
		pg_emit(s, &e);
		s->confirmed = 1;
		return 16;
	}
	if ((code >> 16) != 3) {
		pg_anomaly(s, (code >> 16) == 2 ? "pgsql: protocol 2 not supported" : "pgsql: unknown startup code",
			   1);
		return n;
	}
	if (n < ml)
		return 0;
	client_startup(s, p + 4, ml - 4);
	s->untyped = 0;
	return ml;
}

void pg_client_query(struct pg *s, struct strv sql, int truncated)
{
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_SIMPLE;
	e.u.query.sql = sql;
	e.u.query.sql_known = 1;
	e.u.query.truncated = truncated;
	pg_emit(s, &e);
	pg_pend_push(s, PEND_Q, id);
}

void pg_client_parse(struct pg *s, const uint8_t *body, size_t n, int truncated)
{
	struct rd r = rd_make(body, n);
	struct strv name = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: Parse without statement name", 0);
		return;
	}
	if (truncated) {
		/* only a prefix is here: keep what there is of the text */
		struct rd t = r;
		struct strv sql = rd_cstr(&t);
		if (t.err)
			sql = rd_rest(&r);
		pg_stmt_store(s, name, sql, 1, &r, 0);
		return;
	}
	struct strv sql = rd_cstr(&r);
	uint16_t np = rd_be16(&r);
	if (r.err || rd_left(&r) != (size_t)np * 4) {
		pg_anomaly(s, "pgsql: malformed Parse", 0);
		if (!sql.p)
			return;
		np = 0;
	}
	pg_stmt_store(s, name, sql, 0, &r, np);
}

void pg_client_bind(struct pg *s, const uint8_t *body, size_t n, int truncated)
{
	struct rd r = rd_make(body, n);
	struct strv portal = rd_cstr(&r);
	struct strv stmt = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Bind", 0);
		return;
	}
	struct pg_portal *pt = pg_portal_new(s, portal, stmt);
	if (!pt)
		return;
	struct pg_stmt *st = pg_stmt_find(s, stmt, NULL);
	if (st)
		st->used = ++s->use_clock;
	uint16_t nfmt = rd_be16(&r);
	struct rd fmts = rd_sub(&r, (size_t)nfmt * 2);
	uint16_t np = rd_be16(&r);
	if (r.err) {
		if (!truncated)
			pg_anomaly(s, "pgsql: malformed Bind", 0);
		return;
	}
	size_t keep = np < PG_MAX_PARAMS ? np : PG_MAX_PARAMS;
	if (np > keep)
		s->params_dropped += np - keep;
	if (pt->pv_cap < keep || !pt->pv) {
		size_t want = keep ? keep : 1;
		struct pg_pval *npv = realloc(pt->pv, want * sizeof *pt->pv);
		if (!npv)
			return;
		pt->pv = npv;
		pt->pv_cap = want;
	}
	if (!s->render && !(s->render = malloc(PG_PARAM_CAP)))
		return;
	size_t vn = 0;
	for (size_t i = 0; i < np; i++) {
		uint32_t l = rd_be32(&r);
		int is_null = l == 0xffffffffu;
		struct strv v = is_null ? STRV_NULL : rd_bytes(&r, l);
		if (r.err) {
			/* a truncated Bind keeps the values that arrived whole */
			if (!truncated)
				pg_anomaly(s, "pgsql: Bind value past message end", 0);
			break;
		}
		if (i >= keep)
			continue;
		uint16_t fmt = 0;
		if (nfmt == 1)
			fmt = be16_at(fmts.p, fmts.len, 0);
		else if (nfmt > i)
			fmt = be16_at(fmts.p, fmts.len, 2 * i);
		size_t rn = 0;
		int is_hex = 0;
		if (!is_null) {
			if (fmt == 0) {
				rn = v.n < PG_PARAM_CAP ? v.n : PG_PARAM_CAP;
				memcpy(s->render, v.p, rn);
			} else {
				uint32_t oid = st && i < st->n_oids ? st->oids[i] : 0;
				rn = pgt_render_binary(oid, (const uint8_t *)v.p, v.n, s->render, PG_PARAM_CAP,
						       &is_hex);
			}
		}
		if (vn + rn > PG_PORTAL_BYTES) {
			/* the portal's share is used up: later values are cut, counted */
			rn = PG_PORTAL_BYTES - vn;
			s->params_dropped++;
		}
		if (vn + rn > pt->vals_cap) {
			size_t nc = (vn + rn) * 2 + 64;
			char *nv = realloc(pt->vals, nc);
			if (!nv)
				break;
			pt->vals = nv;
			pt->vals_cap = nc;
		}
		if (rn)
			memcpy(pt->vals + vn, s->render, rn);
		pt->pv[pt->n_pv++] = (struct pg_pval){ vn, rn, (uint8_t)is_null, (uint8_t)is_hex };
		vn += rn;
	}
}

static void client_execute(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	struct strv portal = rd_cstr(&r);
	(void)rd_be32(&r); /* max rows */
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Execute", 0);
		return;
	}
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_EXECUTE;
	struct pg_portal *pt = pg_portal_find(s, portal, NULL);
	if (pt) {
		pt->used = ++s->use_clock;
		e.u.query.stmt_name = (struct strv){ pt->stmt, pt->stmt_n };
		struct pg_stmt *st = pg_stmt_find(s, e.u.query.stmt_name, NULL);
		if (st) {
			st->used = ++s->use_clock;
			e.u.query.sql = (struct strv){ st->sql, st->sql_n };
			e.u.query.sql_known = 1;
			e.u.query.truncated = st->truncated;
		} else if (s->evicted && pt->stmt_n) { /* its text was evicted: the newest head kept */
			uint64_t h = pg_name_hash(pt->stmt, pt->stmt_n);
			for (size_t k = 0; k < PG_EVICTED_MAX; k++) {
				struct pg_evicted *v = &s->evicted[(s->evicted_next - 1 - k) % PG_EVICTED_MAX];
				if (v->h == h) {
					e.u.query.sql = (struct strv){ v->head, v->n };
					e.u.query.sql_known = 1;
					e.u.query.truncated = 1;
					break;
				}
			}
		}
		if (pt->n_pv && !s->binds && !(s->binds = calloc(PG_MAX_PARAMS, sizeof *s->binds)))
			pt->n_pv = 0;
		for (size_t i = 0; i < pt->n_pv; i++) {
			struct pg_pval *v = &pt->pv[i];
			s->binds[i].text = (struct strv){ v->len ? pt->vals + v->off : "", v->len };
			s->binds[i].is_null = v->is_null;
			s->binds[i].is_binary_hex = v->is_hex;
		}
		e.u.query.params = s->binds;
		e.u.query.n_params = pt->n_pv;
	}
	pg_emit(s, &e);
	pg_pend_push(s, PEND_E, id);
}

static void client_close(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint8_t what = rd_u8(&r);
	struct strv name = rd_cstr(&r);
	if (r.err) {
		pg_anomaly(s, "pgsql: malformed Close", 0);
		return;
	}
	size_t idx;
	if (what == 'S' && pg_stmt_find(s, name, &idx))
		pg_stmt_remove(s, idx);
	else if (what == 'P' && pg_portal_find(s, name, &idx))
		pg_portal_remove(s, idx);
}

/* Built-in functions a FunctionCall names by OID only (fixed OIDs of pg_proc.dat, checked
 * against PostgreSQL 15): the text names them so that the analyzer's rules for server file,
 * large-object and sleep functions see the call as they would see it in SQL (issue #20). */
static const struct {
	uint16_t oid;
	char name[24];
} pg_fn_oids[] = {
	{ 715, "lo_create" }, { 764, "lo_import" }, { 765, "lo_export" }, { 767, "lo_import" },
	{ 952, "lo_open" }, { 953, "lo_close" }, { 954, "loread" }, { 955, "lowrite" },
	{ 956, "lo_lseek" }, { 957, "lo_creat" }, { 958, "lo_tell" }, { 964, "lo_unlink" },
	{ 1004, "lo_truncate" }, { 2078, "set_config" }, { 2096, "pg_terminate_backend" },
	{ 2171, "pg_cancel_backend" }, { 2621, "pg_reload_conf" }, { 2622, "pg_rotate_logfile" },
	{ 2623, "pg_stat_file" }, { 2624, "pg_read_file" }, { 2625, "pg_ls_dir" }, { 2626, "pg_sleep" },
	{ 2848, "pg_switch_wal" }, { 2924, "query_to_xml" }, { 3170, "lo_lseek64" }, { 3171, "lo_tell64" },
	{ 3172, "lo_truncate64" }, { 3293, "pg_read_file" }, { 3295, "pg_read_binary_file" },
	{ 3297, "pg_ls_dir" }, { 3307, "pg_stat_file" }, { 3353, "pg_ls_logdir" }, { 3354, "pg_ls_waldir" },
	{ 3436, "pg_promote" }, { 3457, "lo_from_bytea" }, { 3458, "lo_get" }, { 3459, "lo_get" },
	{ 3460, "lo_put" }, { 3800, "pg_current_logfile" }, { 3801, "pg_current_logfile" },
	{ 3826, "pg_read_file" }, { 3827, "pg_read_binary_file" }, { 3828, "pg_read_binary_file" },
	{ 3935, "pg_sleep_for" }, { 3936, "pg_sleep_until" }, { 5029, "pg_ls_tmpdir" },
	{ 5030, "pg_ls_tmpdir" }, { 5031, "pg_ls_archive_statusdir" },
};

void pg_client_function(struct pg *s, const uint8_t *body, size_t n)
{
	struct rd r = rd_make(body, n);
	uint32_t oid = rd_be32(&r);
	if (r.err)
		return;
	const char *fn = NULL;
	for (size_t i = 0; i < sizeof pg_fn_oids / sizeof pg_fn_oids[0] && !fn; i++)
		if (pg_fn_oids[i].oid == oid)
			fn = pg_fn_oids[i].name;
	char sql[64];
	int k = fn ? snprintf(sql, sizeof sql, "FUNCTION CALL oid=%u %s()", oid, fn)
		   : snprintf(sql, sizeof sql, "FUNCTION CALL oid=%u", oid);
	struct ev e = { .type = EV_QUERY };
	uint64_t id = ++s->next_id;
	e.u.query.id = id;
	e.u.query.kind = EV_Q_FUNCTION;
	e.u.query.sql = (struct strv){ sql, k > 0 ? (size_t)k : 0 };
	e.u.query.sql_known = 1;
	pg_emit(s, &e);
	pg_pend_push(s, PEND_F, id);
}

/* Password, SASL and GSS responses: never copied; only what method was used. */
static void client_password(struct pg *s, const uint8_t *body, size_t n)
{
	if (s->auth_req == 3) {
		struct ev e = { .type = EV_CLEARTEXT_PASSWORD };
		pg_emit(s, &e);
		return;
	}
	if (s->auth_req == 10) {
		struct rd r = rd_make(body, n);
		struct strv mech = rd_cstr(&r);
		if (r.err)
			return;
		if (strv_eq(mech, "SCRAM-SHA-256"))
			pg_auth(s, "scram-sha-256");
		else if (strv_eq(mech, "SCRAM-SHA-256-PLUS"))
			pg_auth(s, "scram-sha-256-plus");
		else
			pg_auth(s, "sasl");
		s->auth_req = 11; /* further 'p' are SASLResponses */
	}
}

void pg_client_msg(struct pg *s, uint8_t t, const uint8_t *body, size_t n)
{
	switch (t) {
	case 'Q': {
		struct rd r = rd_make(body, n);
		struct strv sql = rd_cstr(&r);
		if (r.err) {
			pg_anomaly(s, "pgsql: Query without NUL", 0);
			sql = (struct strv){ (const char *)body, n };
		}
		pg_client_query(s, sql, 0);
		break;
	}
	case 'P':
		pg_client_parse(s, body, n, 0);
		break;
	case 'B':
		pg_client_bind(s, body, n, 0);
		break;
	case 'E':
		client_execute(s, body, n);
		break;
	case 'S':
		pg_pend_push(s, PEND_S, 0);
		break;
	case 'C':
		client_close(s, body, n);
		break;
	case 'F':
		pg_client_function(s, body, n);
		break;
	case 'd': {
		struct pg_pend *p = pg_pend_target(s);
		if (p)
			p->bytes += n;
		break;
	}
	case 'p':
		client_password(s, body, n);
		break;
	default: /* Describe, Flush, CopyDone, CopyFail, Terminate: nothing to report */
		break;
	}
}
