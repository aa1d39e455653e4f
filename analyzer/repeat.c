/* No floods (issue #19): a finding of the same kind, actor and object within
 * repeat_interval_s of packet time after the first one is not a new row; it updates the
 * first row's count, last_seen, severity (the higher), summary and evidence. The table is
 * bounded: an expired or, when full, the oldest entry of a probe window is reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"

#define REP_SLOTS 4096
#define REP_PROBE 16

struct an_repeat {
	uint64_t key; /* 0: empty */
	int64_t id, count;
	ev_time first;
	enum an_severity sev;
};

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull; /* field separator */
}

int an_repeat_of(struct an *an, int kind, const struct an_session *s, const struct an_stmt *st, ev_time ts,
		 enum an_severity *sev, int64_t *id, int64_t *count)
{
	if (an->cfg.repeat_interval_s <= 0 || kind == AN_K_SQL_INJECTION)
		return 0;
	if (!an->rep && !(an->rep = calloc(REP_SLOTS, sizeof *an->rep)))
		return 0;
	char k[8];
	snprintf(k, sizeof k, "%d", kind);
	uint64_t h = fnv(0xcbf29ce484222325ull, k);
	/* actor: the end user when known, else the connection's identity */
	if (st && st->end_user)
		h = fnv(h, st->end_user);
	else if (s)
		h = fnv(fnv(fnv(h, s->db_user), s->client_ip), s->application);
	/* object: the statement's shape; session findings are about the account/server */
	if (an->repeat_fp) /* a statement EXECUTE or DO ran: its own shape */
		h = fnv(h, an->repeat_fp);
	else if (st && st->info)
		h = fnv(h, st->info->fingerprint);
	else if (s)
		h = fnv(h, s->server_ip);
	if (!h)
		h = 1;
	ev_time win = (ev_time)an->cfg.repeat_interval_s * 1000000LL;
	struct an_repeat *free_e = NULL, *oldest = NULL, *victim;
	for (unsigned i = (unsigned)h & (REP_SLOTS - 1), n = 0; n < REP_PROBE; i = (i + 1) & (REP_SLOTS - 1), n++) {
		struct an_repeat *e = &an->rep[i];
		int live = e->key && ts >= e->first && ts - e->first <= win;
		if (live && e->key == h) {
			e->count++;
			if (*sev < e->sev)
				*sev = e->sev;
			e->sev = *sev;
			*id = e->id;
			*count = e->count;
			return 1;
		}
		if (!live) {
			if (!free_e)
				free_e = e;
		} else if (!oldest || e->first < oldest->first) {
			oldest = e;
		}
	}
	victim = free_e ? free_e : oldest;
	if (!victim)
		return 0;
	*victim = (struct an_repeat){ .key = h, .id = *id, .count = 1, .first = ts, .sev = *sev };
	return 0;
}

void an_repeat_free(struct an *an)
{
	free(an->rep);
	an->rep = NULL;
}
