/* Named prepared statements kept per session (issue #18): bounded, least recently used
 * replaced, so that a resumed session still knows what it executes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"

/* Learnt from executions of named statements whose text the decoder knows (PostgreSQL
 * statement names, MySQL statement ids), so nothing in the decoders changes. Entries are
 * replaced oldest first. Bounded per
 * session (AN_PS_MAX, max_sql_bytes each) and, over all sessions, by limits.max_parked_mb. */
void an_ps_put(struct an *an, struct an_session *s, const char *name, size_t nlen, const char *text, size_t tlen,
	       int trunc)
{
	if (nlen == 0 || nlen > 255)
		return;
	if (tlen > (size_t)an->cfg.max_sql_bytes) {
		tlen = (size_t)an->cfg.max_sql_bytes;
		trunc = 1;
	}
	int slot = -1;
	for (int i = 0; i < s->n_ps; i++)
		if (s->ps[i].name_len == nlen && memcmp(s->ps[i].buf, name, nlen) == 0) {
			slot = i;
			break;
		}
	if (slot < 0 && s->n_ps < AN_PS_MAX) {
		if (!s->ps && !(s->ps = calloc(AN_PS_MAX, sizeof *s->ps))) {
			an->st.prepared_dropped++;
			return;
		}
		slot = s->n_ps++;
	} else if (slot < 0) {
		uint32_t oldest = UINT32_MAX;
		for (int i = 0; i < s->n_ps; i++)
			if (s->ps[i].used < oldest) {
				oldest = s->ps[i].used;
				slot = i;
			}
		an->st.prepared_dropped++;
	}
	struct an_ps *p = &s->ps[slot];
	uint64_t cap = (uint64_t)an->cfg.max_parked_mb << 20;
	if (an->ps_bytes - (p->buf ? p->name_len + p->text_len + 2 : 0) + nlen + tlen + 2 > cap) {
		an->st.prepared_dropped++;
		return;
	}
	char *buf = malloc(nlen + tlen + 2);
	if (!buf) {
		an->st.prepared_dropped++;
		return;
	}
	if (p->buf)
		an->ps_bytes -= p->name_len + p->text_len + 2;
	free(p->buf);
	memcpy(buf, name, nlen);
	buf[nlen] = 0;
	memcpy(buf + nlen + 1, text, tlen);
	buf[nlen + 1 + tlen] = 0;
	p->buf = buf;
	p->name_len = (uint32_t)nlen;
	p->text_len = (uint32_t)tlen;
	p->trunc = (uint8_t)(trunc != 0);
	p->used = ++s->ps_clock;
	an->ps_bytes += nlen + tlen + 2;
	s->state_dirty = 1;
}

void an_ps_free(struct an *an, struct an_session *s)
{
	for (int i = 0; i < s->n_ps; i++) {
		an->ps_bytes -= s->ps[i].name_len + s->ps[i].text_len + 2;
		free(s->ps[i].buf);
	}
	free(s->ps);
	s->ps = NULL;
	s->n_ps = 0;
}

/* An application executes the same few statements: the last one found is tried first. */
const struct an_ps *an_ps_find(struct an_session *s, struct strv name)
{
	for (int k = 0, i = s->ps_last < s->n_ps ? s->ps_last : 0; k < s->n_ps; k++, i = i + 1 < s->n_ps ? i + 1 : 0) {
		if (s->ps[i].name_len == name.n && memcmp(s->ps[i].buf, name.p, name.n) == 0) {
			s->ps_last = i;
			return &s->ps[i];
		}
	}
	return NULL;
}
