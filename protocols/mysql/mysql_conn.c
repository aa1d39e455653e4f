/* MySQL decoder: the connection phase (greeting, login request, authentication exchange).
 * Passwords and auth responses are skipped, never copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

/* ---------- connection phase ---------- */

void my_greeting(struct my *m, const uint8_t *p, size_t n)
{
	if (p[0] == 0xff) { /* refused before the handshake (1040, 1130, ...) */
		struct my_err e;
		my_parse_err(m, p, n, &e);
		struct ev ev = { .type = EV_LOGIN };
		ev.u.login.ok = 0;
		ev.u.login.error_code = e.code_txt;
		ev.u.login.error_msg = e.msg;
		my_emit(m, &ev, TO_CLIENT);
		m->phase = PH_CMD;
		return;
	}
	struct rd r = rd_make(p, n);
	uint8_t proto = rd_u8(&r);
	if (proto != 10 && proto != 9) {
		my_anomaly(m, TO_CLIENT, "mysql: unknown handshake protocol", 1);
		return;
	}
	struct strv version = rd_cstr(&r);
	uint32_t conn_id = rd_le32(&r);
	if (proto == 10) {
		rd_skip(&r, 9); /* scramble part 1 + filler */
		uint64_t caps = rd_le16(&r);
		if (r.err) {
			my_anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
			return;
		}
		if (rd_left(&r) >= 16) {
			rd_u8(&r); /* charset */
			rd_le16(&r); /* status */
			caps |= (uint64_t)rd_le16(&r) << 16;
			uint8_t alen = rd_u8(&r);
			rd_skip(&r, 6);
			uint32_t ext = rd_le32(&r);
			if (!(caps & MY_CLIENT_MYSQL))
				caps |= (uint64_t)ext << 32;
			if (caps & MY_CLIENT_SECURE_CONNECTION)
				rd_skip(&r, alen > 21 ? (size_t)alen - 8 : 13);
			if ((caps & MY_CLIENT_PLUGIN_AUTH) && !r.err)
				my_copy_small(m->srv_plugin, sizeof m->srv_plugin, my_rd_cstr_rest(&r));
		}
		m->srv_caps = caps;
		m->have_srv_caps = 1;
	} else if (r.err) {
		my_anomaly(m, TO_CLIENT, "mysql: short server greeting", 1);
		return;
	}
	struct ev e = { .type = EV_SERVER_HELLO };
	e.u.hello.version = version;
	e.u.hello.conn_id = conn_id;
	my_emit(m, &e, TO_CLIENT);
	m->phase = PH_LOGIN;
	m->fr[TO_SERVER].sync = 0; /* the next client bytes are its handshake response */
	m->z_decided = 1;
}

void my_login(struct my *m, const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	uint64_t caps = rd_le16(&r);
	struct strv user, db = STRV_NULL, plugin = STRV_NULL;
	size_t auth_len = 0;
	size_t nkv = 0;
	struct strv app = STRV_NULL;
	r = rd_make(p, n);
	if (caps & MY_CLIENT_PROTOCOL_41) {
		caps = rd_le32(&r);
		rd_le32(&r); /* max packet */
		rd_u8(&r);   /* charset */
		rd_skip(&r, 19);
		uint32_t ext = rd_le32(&r);
		if (r.err) {
			my_anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
			return;
		}
		if (!(caps & MY_CLIENT_MYSQL))
			caps |= (uint64_t)ext << 32;
		if (rd_left(&r) == 0 && (caps & MY_CLIENT_SSL))
			goto tls;
		user = my_rd_cstr_rest(&r);
		if (caps & MY_CLIENT_PLUGIN_AUTH_LENENC) {
			uint64_t a = rd_lenenc(&r, NULL);
			auth_len = a > rd_left(&r) ? rd_left(&r) : (size_t)a;
			rd_skip(&r, auth_len);
		} else if (caps & MY_CLIENT_SECURE_CONNECTION) {
			auth_len = rd_u8(&r);
			rd_skip(&r, auth_len);
		} else {
			auth_len = my_rd_cstr_rest(&r).n;
		}
		if (caps & MY_CLIENT_CONNECT_WITH_DB)
			db = my_rd_cstr_rest(&r);
		if (caps & MY_CLIENT_PLUGIN_AUTH)
			plugin = my_rd_cstr_rest(&r);
		if ((caps & MY_CLIENT_CONNECT_ATTRS) && rd_left(&r) > 0) {
			uint64_t tl = rd_lenenc(&r, NULL);
			struct rd a = rd_sub(&r, tl > rd_left(&r) ? rd_left(&r) : (size_t)tl);
			while (rd_left(&a) > 0 && !a.err) {
				struct strv k = rd_lenenc_str(&a);
				struct strv v = rd_lenenc_str(&a);
				if (a.err)
					break;
				if (strv_eq(k, "program_name"))
					app = v;
				else if (nkv < MY_ATTR_MAX)
					m->kv[nkv++] = (struct ev_kv){ k, v };
			}
		}
		if (r.err) {
			my_anomaly(m, TO_SERVER, "mysql: malformed handshake response", 0);
			r.err = 0;
		}
	} else {
		/* HandshakeResponse320 */
		rd_le24(&r); /* max packet */
		if (r.err) {
			my_anomaly(m, TO_SERVER, "mysql: short handshake response", 1);
			return;
		}
		if (rd_left(&r) == 0 && (caps & MY_CLIENT_SSL))
			goto tls;
		user = my_rd_cstr_rest(&r);
		if (caps & MY_CLIENT_CONNECT_WITH_DB) {
			auth_len = my_rd_cstr_rest(&r).n;
			db = my_rd_cstr_rest(&r);
		} else {
			auth_len = rd_rest(&r).n;
		}
	}
	m->caps = caps & (m->have_srv_caps ? m->srv_caps : ~0ull);
	m->have_caps = 1;
	if (m->deprecate_eof < 0)
		m->deprecate_eof = (m->caps & MY_CLIENT_DEPRECATE_EOF) ? 1 : 0;
	m->qattr = (m->caps & MY_CLIENT_QUERY_ATTRIBUTES) ? 1 : 0;

	struct ev e = { .type = EV_STARTUP };
	e.u.startup.user = user;
	e.u.startup.database = db;
	e.u.startup.application = app;
	e.u.startup.params = nkv ? m->kv : NULL;
	e.u.startup.n_params = nkv;
	my_emit(m, &e, TO_SERVER);

	const char *meth;
	if (plugin.n)
		meth = my_plugin_name(m, plugin);
	else if (m->srv_plugin[0])
		meth = my_plugin_name(m, strv_from(m->srv_plugin));
	else
		meth = (caps & MY_CLIENT_SECURE_CONNECTION) ? "mysql_native_password" : "mysql_old_password";
	my_emit_auth(m, meth);
	if (my_plugin_is_clear(meth) && auth_len > 0)
		my_emit_cleartext(m);
	m->phase = PH_AUTH;
	m->change_user = 0;
	return;
tls:
	{
		struct ev t = { .type = EV_TLS };
		t.u.tls.at = p + n; /* the ClientHello may follow in the same segment */
		my_emit(m, &t, TO_SERVER);
		m->stopped = 1;
	}
}

/* The server's answer to COM_CHANGE_USER: the session's user changes, or stays. */
static void user_changed(struct my *m, int ok)
{
	struct ev e = { .type = EV_USER_CHANGE };
	e.u.user_change.user = strv_from(m->cu_user);
	e.u.user_change.database = strv_from(m->cu_db);
	e.u.user_change.ok = ok;
	my_emit(m, &e, TO_CLIENT);
	m->change_user = 0;
}

void my_auth_reply(struct my *m, const uint8_t *p, size_t n)
{
	switch (p[0]) {
	case 0x00: {
		uint64_t aff;
		uint16_t st;
		if (my_parse_ok(p, n, &aff, &st) == 0)
			my_set_status(m, st);
		m->phase = PH_CMD;
		m->cleartext_next = 0;
		if (m->change_user) {
			user_changed(m, 1);
		} else {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 1;
			my_emit(m, &e, TO_CLIENT);
			if (m->caps & (MY_CLIENT_COMPRESS | MY_CLIENT_ZSTD))
				my_z_start(m);
		}
		return;
	}
	case 0xff: {
		struct my_err err;
		my_parse_err(m, p, n, &err);
		m->phase = PH_CMD;
		m->cleartext_next = 0;
		if (m->change_user) {
			user_changed(m, 0);
		} else {
			struct ev e = { .type = EV_LOGIN };
			e.u.login.ok = 0;
			e.u.login.error_code = err.code_txt;
			e.u.login.error_msg = err.msg;
			my_emit(m, &e, TO_CLIENT);
		}
		return;
	}
	case 0xfe: { /* AuthSwitchRequest; a lone 0xfe asks for the pre-4.1 scramble */
		const char *meth = "mysql_old_password";
		if (n > 1) {
			struct rd r = rd_make(p + 1, n - 1);
			meth = my_plugin_name(m, my_rd_cstr_rest(&r));
		}
		my_emit_auth(m, meth);
		m->cleartext_next = my_plugin_is_clear(meth);
		return;
	}
	case 0x01: /* AuthMoreData: caching_sha2 fast (3) / full (4) auth, RSA key; no secrets kept */
		return;
	default:
		my_anomaly(m, TO_CLIENT, "mysql: unexpected packet during authentication", 0);
		return;
	}
}
