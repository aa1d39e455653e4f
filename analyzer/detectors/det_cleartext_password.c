/* cleartext_password: a password crossed the network in clear (PG 'password' auth, MySQL
 * clear-text plugin) outside TLS. The password itself never reaches the analyzer. */
#include "det.h"

static void cp_event(struct an *an, struct an_session *s, const struct ev *e)
{
	if (e->type != EV_CLEARTEXT_PASSWORD || s->tls || s->cleartext_reported)
		return;
	s->cleartext_reported = 1;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "signal", "cleartext_password");
	if (s->auth_method[0])
		cJSON_AddStringToObject(ev, "auth_method", s->auth_method);
	cJSON_AddBoolToObject(ev, "tls", 0);
	char summary[256];
	an_fmt(summary, sizeof summary, "password of %s sent in clear text from %s to %s (auth %s, no TLS)",
		 s->db_user[0] ? s->db_user : "unknown user", s->client_ip, s->server_ip,
		 s->auth_method[0] ? s->auth_method : "unknown");
	an_session_finding(an, s, AN_K_CLEARTEXT_PASSWORD, an->cfg.severity[AN_K_CLEARTEXT_PASSWORD], e->ts, summary, ev);
}

const struct an_detector det_cleartext_password = {
	.name = "cleartext_password",
	.kind = AN_K_CLEARTEXT_PASSWORD,
	.on_event = cp_event,
	.events = AN_EV_BIT(EV_CLEARTEXT_PASSWORD),
};
