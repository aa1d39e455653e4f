/* protocol_anomaly: malformed or desynchronised traffic reported by a decoder (EV_ANOMALY),
 * at most anomaly_per_session findings per session and anomaly_per_client per client address
 * within repeat_interval_s (hydra opens a session per guess); the rest are counted, not
 * reported. TCP evasion (the capture layer, once per flow) is never capped. Repeats of one
 * client's anomaly also update one row (repeat.c). */
#include "det.h"

static void pa_event(struct an *an, struct an_session *s, const struct ev *e)
{
	if (e->type != EV_ANOMALY)
		return;
	/* TCP evasion comes at most once per flow: capped with the rest, ten cheap malformed
	 * messages first would hide it (issue #20) */
	int evasion = e->u.anomaly.evasion;
	if (!evasion && s->anomalies >= an->cfg.anomaly_per_session) {
		s->anomalies_suppressed++;
		return;
	}
	/* per client, across its sessions (keyed windows shared with error_burst, own kind) */
	int per_client = an->cfg.anomaly_per_client < AN_ERR_RING ? an->cfg.anomaly_per_client : AN_ERR_RING;
	ev_time win = (ev_time)(an->cfg.repeat_interval_s > 0 ? an->cfg.repeat_interval_s : 300) * 1000000LL;
	struct an_keyed *k = s->client_ip[0] ? an_keyed_get(&an->eb, &an->n_eb, &an->cap_eb, 0x50a, s->client_ip, e->ts)
					     : NULL;
	if (!evasion && k && an_window_count(&k->w, e->ts, win) >= per_client) {
		s->anomalies_suppressed++;
		return;
	}
	if (k)
		an_window_add(&k->w, e->ts, win);
	s->anomalies++;
	const char *what = e->u.anomaly.what ? e->u.anomaly.what : "unknown";
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "signal", evasion ? "tcp_evasion" : "protocol_anomaly");
	cJSON_AddStringToObject(ev, "what", what);
	cJSON_AddBoolToObject(ev, "fatal", e->u.anomaly.fatal);
	cJSON_AddBoolToObject(ev, "to_server", e->to_server);
	cJSON_AddNumberToObject(ev, "per_session_limit", an->cfg.anomaly_per_session);
	cJSON_AddNumberToObject(ev, "per_client_limit", per_client);
	char summary[256];
	an_fmt(summary, sizeof summary, "%s traffic %s %s: %s%s", s->protocol, e->to_server ? "from" : "to",
		 s->client_ip, what, e->u.anomaly.fatal ? " (decoding stopped)" : "");
	enum an_severity sev = an->cfg.severity[AN_K_PROTOCOL_ANOMALY];
	an_session_finding(an, s, AN_K_PROTOCOL_ANOMALY, sev, e->ts, summary, ev);
}

const struct an_detector det_protocol_anomaly = {
	.name = "protocol_anomaly",
	.kind = AN_K_PROTOCOL_ANOMALY,
	.on_event = pa_event,
	.events = AN_EV_BIT(EV_ANOMALY),
};
