/* Analyzer core (stub). */
#include <stdlib.h>

#include "an.h"

struct an {
	int dummy;
};
struct an_session {
	int dummy;
};

struct an *an_new(const struct an_config *cfg, struct sink **sinks, int n_sinks, const struct sink_ids *ids,
		  int64_t run_id)
{
	(void)cfg; (void)sinks; (void)n_sinks; (void)ids; (void)run_id;
	return calloc(1, sizeof(struct an));
}
void an_free(struct an *an) { free(an); }
struct an_session *an_open(struct an *an, const struct an_flow *flow)
{
	(void)an; (void)flow;
	return calloc(1, sizeof(struct an_session));
}
void an_feed(struct an *an, struct an_session *s, const struct ev *ev) { (void)an; (void)s; (void)ev; }
void an_close(struct an *an, struct an_session *s, const struct an_flow_end *end)
{
	(void)an; (void)end;
	free(s);
}
void an_tick(struct an *an, ev_time now) { (void)an; (void)now; }
void an_get_stats(const struct an *an, struct an_stats *st) { (void)an; *st = (struct an_stats){ 0 }; }
