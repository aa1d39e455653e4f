/* The periodic calls of a capture: the stats record and the watchdog ping, due by the
 * wall clock and sent through the stages so they arrive in order with the events. */
#include "cap_int.h"

#include <stdlib.h>
#include <time.h>

void cap_set_hooks(struct cap *c, const struct cap_live_hooks *h)
{
	c->hooks = h;
	c->next_stats = c->next_watchdog = 0;
}

struct stats_box {
	const struct cap_live_hooks *h;
	struct cap_stats st;
};

static void stats_call(void *arg)
{
	struct stats_box *b = arg;
	b->h->on_stats(b->h->ctx, &b->st);
	free(b);
}

static void watchdog_call(void *arg)
{
	const struct cap_live_hooks *h = arg;
	h->on_watchdog(h->ctx);
}

/* Between read batches: the stats record and the watchdog ping are due by the wall
 * clock; both travel through the stages, so they arrive only while all of them move. */
void caphooks_periodic(struct cap *c)
{
	const struct cap_live_hooks *h = c->hooks;
	if (!h)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	int64_t iv = (int64_t)c->cfg.stats_interval_s * 1000000;
	if (h->on_stats && iv > 0) {
		if (!c->next_stats)
			c->next_stats = now + iv;
		else if (now >= c->next_stats) {
			c->next_stats = now + iv;
			struct stats_box *b = malloc(sizeof *b);
			if (b) {
				b->h = h;
				cap_get_stats(c, &b->st);
				decstage_call(c->ds, stats_call, b);
			}
		}
	}
	if (h->on_watchdog && h->watchdog_us > 0 && now >= c->next_watchdog) {
		c->next_watchdog = now + h->watchdog_us / 2;
		decstage_call(c->ds, watchdog_call, (void *)h);
	}
}
