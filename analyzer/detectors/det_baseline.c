/* The learned-baseline detectors: new_query_shape (with the first-access-to-a-table signal),
 * new_client, new_application and off_hours. Each judges and records one aspect through
 * baseline.c; disabling one also stops learning that aspect. */
#include "baseline.h"

static void shape_statement(struct an *an, const struct an_stmt *st)
{
	bl_shape(an, st);
}

static void client_statement(struct an *an, const struct an_stmt *st)
{
	bl_client(an, st->s, st, st->ts);
}

static void client_login(struct an *an, struct an_session *s, int ok, const char *account, const char *code,
			 ev_time ts)
{
	(void)account;
	(void)code;
	if (ok)
		bl_client(an, s, NULL, ts);
}

static void app_statement(struct an *an, const struct an_stmt *st)
{
	bl_application(an, st->s, st, st->ts);
}

static void app_login(struct an *an, struct an_session *s, int ok, const char *account, const char *code, ev_time ts)
{
	(void)account;
	(void)code;
	if (ok)
		bl_application(an, s, NULL, ts);
}

static void hours_statement(struct an *an, const struct an_stmt *st)
{
	bl_hours(an, st->s, st, st->ts);
}

static void hours_login(struct an *an, struct an_session *s, int ok, const char *account, const char *code,
			ev_time ts)
{
	(void)account;
	(void)code;
	if (ok)
		bl_hours(an, s, NULL, ts);
}

/* only one entry frees: an_free calls on_free for every detector */
const struct an_detector det_new_query_shape = {
	.name = "new_query_shape",
	.kind = AN_K_NEW_QUERY_SHAPE,
	.on_statement = shape_statement,
	.on_tick = bl_tick,
	.on_free = bl_free,
};

const struct an_detector det_new_client = {
	.name = "new_client",
	.kind = AN_K_NEW_CLIENT,
	.on_statement = client_statement,
	.on_login = client_login,
	.on_tick = bl_tick,
};

const struct an_detector det_new_application = {
	.name = "new_application",
	.kind = AN_K_NEW_APPLICATION,
	.on_statement = app_statement,
	.on_login = app_login,
	.on_tick = bl_tick,
};

const struct an_detector det_off_hours = {
	.name = "off_hours",
	.kind = AN_K_OFF_HOURS,
	.on_statement = hours_statement,
	.on_login = hours_login,
	.on_tick = bl_tick,
};
