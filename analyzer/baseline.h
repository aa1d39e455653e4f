/* The learned baseline (issue #7): per principal what is normal -- query shapes, tables,
 * client subnets, applications, hours of day -- kept in a bounded in-memory table, loaded
 * from and written back to the findings database through storage/baseline_store.h. */
#ifndef DBTAP_BASELINE_H
#define DBTAP_BASELINE_H

#include "an_int.h"

/* Config key "baseline" (defaults in contrib/dbtap.example.json). */
void bl_config_defaults(struct an_config *c);
int bl_config_set(struct an_config *c, const void *cjson_item, char *err, unsigned long errlen);
/* The "baseline" keys as a cfgkey.h table pointing into c; returns 1. */
struct ck_table;
int bl_config_table(struct an_config *c, struct ck_table *out);

/* Hour of day (0..23) of packet time ts in the configured time zone; *minute_of_day
 * (0..1439) when not NULL. */
int bl_hour_of(const struct an_baseline_cfg *c, ev_time ts, int *minute_of_day);

/* For sql_injection: is the statement with tokens [from, to) left out (the tautology, the
 * added UNION SELECT) a shape this db_user/application is known to send? fp (17 bytes) gets
 * that shape's fingerprint. 1 known, 0 not. */
int bl_known_without(struct an *an, const struct an_stmt *st, int from, int to, char *fp);
/* Is the statement's own shape one this db_user/application is known to send? */
int bl_shape_known(struct an *an, const struct an_stmt *st);

/* The detectors' halves (det_baseline.c): each judges one aspect and records it.
 * st may be NULL for session-level activity (a successful login). */
void bl_shape(struct an *an, const struct an_stmt *st);
void bl_client(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts);
void bl_application(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts);
void bl_hours(struct an *an, struct an_session *s, const struct an_stmt *st, ev_time ts);
/* Write changed rows when flush_interval_s of packet time has passed. */
void bl_tick(struct an *an, ev_time now);
/* Final write and free. */
void bl_free(struct an *an);

#endif
