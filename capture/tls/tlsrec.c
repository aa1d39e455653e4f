/* The TLS record layer (RFC 8446 §5, RFC 5246 §6.2): records split across segments or
 * several per segment, clear or protected, their content handed on by type. */
#include "tls_int.h"

#include <stdlib.h>
#include <string.h>

static void next_keys(struct tls_sess *s, int dir)
{
	struct tls_dir *d = &s->d[dir];
	int what = d->next;
	d->next = 0;
	if (what == 1) {
		struct tlsk_entry *e = s->c->keys ? tlsk_find(s->c->keys, s->crand) : NULL;
		int lab = dir == 0 ? TLSK_CTS0 : TLSK_STS0;
		if (!e || e->len[lab] != d->slen || tlskdf_key13(s, dir, e->sec[lab], d->slen) < 0) {
			tlsdec_dir_dead(s, dir); /* the entry went for room: cannot follow */
			return;
		}
		d->app = 1;
	} else if (what == 2) {
		if (tlskdf_update(s, dir) < 0)
			tlsdec_dir_dead(s, dir);
		s->c->st.keyupdates++;
	}
}

static void content(struct tls_sess *s, int dir, tls_time ts, int type, const uint8_t *p, size_t n)
{
	switch (type) {
	case CT_APPDATA:
		if (n && s->out.data)
			s->out.data(s->out.ctx, dir, ts, p, n);
		break;
	case CT_HANDSHAKE:
		tlshs_feed(s, dir, p, n);
		break;
	case CT_ALERT:
		s->c->st.alerts++;
		if (n >= 2 && p[1] != 0 && p[0] == 2) /* a fatal alert: the connection ends */
			tlsdec_anomaly(s, dir, ts, "tls: fatal alert");
		break;
	default:
		break;
	}
}

void tlsrec_record(struct tls_sess *s, int dir, tls_time ts, const uint8_t *r, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	int type = r[0];
	if (d->dead)
		return;
	if (s->st == TLS_ST_WAIT_KEY) {
		if (!s->hold_since)
			s->hold_since = ts ? ts : 1;
		tlsdec_hold(s, dir, ts, r, n);
		return;
	}
	if (s->st != TLS_ST_HANDSHAKE && s->st != TLS_ST_DECRYPTING)
		return;
	s->c->st.records++;
	if (type == CT_CCS) {
		if (s->version == 0x0303 && s->st == TLS_ST_DECRYPTING) {
			d->enc = 1;
			d->keyed = 1;
			d->seq = 0;
		}
		return;
	}
	if (!d->enc) {
		if (type == CT_HANDSHAKE)
			tlshs_feed(s, dir, r + REC_HDR, n - REC_HDR);
		else if (type == CT_APPDATA && s->st == TLS_ST_HANDSHAKE) /* 0-RTT, or no hello seen */
			tlsdec_set_state(s, s->have_crand ? TLS_ST_UNSUPPORTED : TLS_ST_MIDSTREAM);
		else if (type == CT_ALERT)
			content(s, dir, ts, type, r + REC_HDR, n - REC_HDR);
		return;
	}
	if (!d->keyed)
		return;
	if (s->version == 0x0304 && type != CT_APPDATA) {
		if (type == CT_ALERT) /* a clear alert before the peer had keys */
			content(s, dir, ts, type, r + REC_HDR, n - REC_HDR);
		return;
	}
	long pl = tlscrypt_record(s, d, r, n);
	if (pl < 0) {
		s->c->st.auth_failures++;
		tlsdec_anomaly(s, dir, ts, "tls: record failed authentication (wrong key or forged)");
		tlsdec_dir_dead(s, dir);
		if (!s->decrypted_any)
			tlsdec_set_state(s, TLS_ST_BAD_KEY);
		return;
	}
	s->decrypted_any = 1;
	const uint8_t *p = s->c->plain;
	size_t pn = (size_t)pl;
	if (s->version == 0x0304) { /* TLSInnerPlaintext: content, type, zero padding */
		while (pn && !p[pn - 1])
			pn--;
		if (!pn) {
			tlsdec_anomaly(s, dir, ts, "tls: record without content type");
			tlsdec_dir_dead(s, dir);
			return;
		}
		type = p[--pn];
	}
	content(s, dir, ts, type, p, pn);
	if (d->next && !d->dead)
		next_keys(s, dir);
}

/* ---- bytes in ---- */

static int valid_header(const uint8_t *h)
{
	return h[0] >= CT_CCS && h[0] <= CT_APPDATA && h[1] == 3 && h[2] <= 4;
}

void tls_sess_feed(struct tls_sess *s, int dir, tls_time ts, const uint8_t *p, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	if (s->st == TLS_ST_WAIT_KEY) {
		if (s->c->keys) {
			tlsk_poll(s->c->keys, 0);
			tlsdec_try_keys(s);
		}
		tlsdec_expire(s, ts);
	}
	while (n && !d->dead && !tls_sess_done(s)) {
		if (d->rn) { /* complete the record begun earlier */
			size_t need = REC_HDR;
			if (d->rn >= REC_HDR)
				need += (size_t)d->rb[3] << 8 | d->rb[4];
			size_t k = need - d->rn < n ? need - d->rn : n;
			memcpy(d->rb + d->rn, p, k);
			d->rn += k;
			p += k;
			n -= k;
			if (d->rn == REC_HDR) {
				if (!valid_header(d->rb) || ((size_t)d->rb[3] << 8 | d->rb[4]) > REC_MAX) {
					tlsdec_anomaly(s, dir, ts, "tls: not a TLS record");
					tlsdec_dir_dead(s, dir);
					return;
				}
				/* the length just completed: a zero-length record is whole now (left
				 * waiting, it made no progress and the loop never ended) */
				need = REC_HDR + ((size_t)d->rb[3] << 8 | d->rb[4]);
			}
			if (d->rn == need) {
				d->rn = 0;
				tlsrec_record(s, dir, ts, d->rb, need);
			}
			continue;
		}
		if (n >= REC_HDR) {
			size_t len = (size_t)p[3] << 8 | p[4];
			if (!valid_header(p) || len > REC_MAX) {
				tlsdec_anomaly(s, dir, ts, "tls: not a TLS record");
				tlsdec_dir_dead(s, dir);
				return;
			}
			if (n >= REC_HDR + len) { /* whole: no copy */
				tlsrec_record(s, dir, ts, p, REC_HDR + len);
				p += REC_HDR + len;
				n -= REC_HDR + len;
				continue;
			}
		}
		if (!d->rb && !(d->rb = malloc(REC_HDR + REC_MAX))) {
			tlsdec_anomaly(s, dir, ts, "tls: out of memory");
			tlsdec_dir_dead(s, dir);
			return;
		}
		memcpy(d->rb, p, n); /* a header (checked above when whole) waits for the rest */
		d->rn = n;
		n = 0;
	}
}

void tls_sess_gap(struct tls_sess *s, int dir, tls_time ts)
{
	if (s->d[dir].dead)
		return;
	/* sequence numbers and record boundaries are lost with the bytes */
	tlsdec_dir_dead(s, dir);
	if (s->out.gap)
		s->out.gap(s->out.ctx, dir, ts);
}

