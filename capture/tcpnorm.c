/* Receiver-faithful TCP normalisation (see tcpnorm.h). The server is taken to be Linux
 * (net/ipv4/tcp_input.c, kernel 6.x); each rule below says what Linux does and why the
 * sensor must do the same before libnids sees the segment.
 *
 * Rules, in the order applied to a segment of a tracked flow:
 * 1. TTL. The flow's first TTL each way is its baseline. A segment whose TTL is lower than
 *    the baseline and at most TN_DECOY_TTL is dropped: a sensor on a SPAN port sits before
 *    the last hops to the server, and such a segment is the classic decoy that expires
 *    between the two. Any other TTL change is reported, not dropped (routes change).
 *    A sensor on the database host itself sees only what arrived: there a low TTL is no
 *    decoy, but a host's own clients do not change TTL within a connection either.
 * 2. RST (RFC 5961 §3, tcp_validate_incoming): the reset is taken only when its sequence
 *    number is exactly the receiver's rcv_nxt (what libnids expects next, or what the
 *    receiver last acknowledged). In the window but not exact, Linux sends a challenge
 *    ACK and the connection goes on; outside the window it is discarded. Either way the
 *    session must not end here, and the segment is evasion.
 * 3. No ACK (tcp_rcv_established / tcp_validate_incoming: "!th->ack && !th->rst &&
 *    !th->syn" goes to discard): an established connection drops any segment without
 *    ACK, data or not. libnids would deliver its data.
 * 4. ACK of unsent data (tcp_ack(): after(ack, snd_nxt) returns an error and the segment
 *    is discarded with its data, RFC 793 §3.9): the receiver's snd_nxt is the highest
 *    sequence we saw it send (or libnids delivered from it).
 * 4b. ACK too old (RFC 5961 §5.2, tcp_ack(): before(ack, snd_una - max_window) sends a
 *    challenge ACK and discards the segment with its data): snd_una is the sender's last
 *    ACK that passed, max_window the largest window it advertised (scaled). Ours can only
 *    be as large as Linux's or larger, so we drop no segment Linux keeps.
 * 5. Beyond the receiver's window (tcp_sequence(): discarded with a duplicate ACK):
 *    dropped, as libnids itself would drop it, so it cannot sit in our queue either.
 * 6. Out of order (tcp_data_queue_ofo): queued in f->held by Linux's rules, see tn_hold;
 *    in-order segments go to libnids, which like Linux keeps bytes already received
 *    (tcp_data_queue's partial-overlap path reads from rcv_nxt on). */
#include "tcpnorm.h"

#include <nids.h>
#include <stdlib.h>
#include <string.h>

#define TN_DECOY_TTL 8	   /* a decoy must die within this many hops past the sensor */
#define TN_HELD_SEGS 2048 /* segments per direction in the queue (Linux: rcvbuf / truesize) */

static int after(uint32_t a, uint32_t b)
{
	return (int32_t)(b - a) < 0;
}

static int before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static const struct half_stream *rcv_half(const struct tcp_stream *a, int d)
{
	return d == 0 ? &a->server : &a->client;
}

uint32_t tn_expect(const struct tcp_stream *a, int d)
{
	const struct half_stream *r = rcv_half(a, d), *s = d == 0 ? &a->client : &a->server;
	/* libnids' EXP_SEQ: it removes urgent bytes from the stream but counts them here */
	return s->first_data_seq + (uint32_t)r->count + (uint32_t)r->urg_count;
}

uint32_t tn_receiver_ack(const struct tcp_stream *a, int d)
{
	return rcv_half(a, d)->ack_seq; /* libnids' handle_ack keeps the highest one */
}

static uint32_t rcv_window(const struct half_stream *r)
{
	uint32_t w = (uint32_t)r->window * (uint32_t)(r->wscale > 0 ? r->wscale : 1);
	return w < 65535 ? 65535 : w;
}

enum tn_verdict tn_check(struct flow *f, const struct tcp_stream *a, int d, const struct tcpinfo *t,
			 const uint8_t *pkt, const char **anomaly)
{
	(void)pkt;
	if (!f->tn.ttl_set[d]) {
		f->tn.ttl[d] = t->ttl;
		f->tn.ttl_set[d] = 1;
	} else if (t->ttl != f->tn.ttl[d]) {
		if (t->ttl < f->tn.ttl[d] && t->ttl <= TN_DECOY_TTL) {
			*anomaly = "tcp evasion: segment with a low TTL (a decoy that expires before the server)";
			return TN_DROP;
		}
		*anomaly = "tcp evasion: TTL changed within the flow";
	}
	const struct half_stream *r = rcv_half(a, d);
	uint32_t expect = tn_expect(a, d);
	if (t->flags & TN_RST) {
		if (t->seq == expect || t->seq == r->ack_seq)
			return TN_PASS;
		*anomaly = t->seq - r->ack_seq < rcv_window(r)
				   ? "tcp evasion: RST in the window at the wrong sequence number (RFC 5961: "
				     "challenge ACK, the session goes on)"
				   : "tcp evasion: RST outside the window (the server ignores it)";
		return TN_DROP;
	}
	if (t->flags & TN_SYN) {
		f->tn.max_win[d] = f->tn.max_win[d] > t->win ? f->tn.max_win[d] : t->win;
		return TN_PASS; /* libnids' handshake and reuse logic */
	}
	int carries = t->payload || (t->flags & TN_FIN);
	if (!(t->flags & TN_ACK)) {
		if (carries)
			*anomaly = "tcp evasion: data without ACK (the server discards it)";
		return TN_DROP;
	}
	uint32_t sent = tn_expect(a, !d); /* what the receiver has sent, as far as we know */
	if (f->tn.end_set[!d] && after(f->tn.snd_end[!d], sent))
		sent = f->tn.snd_end[!d];
	if (after(t->ack, sent)) {
		if (carries)
			*anomaly = "tcp evasion: segment acknowledges data never sent (the server discards it)";
		return TN_DROP;
	}
	if (carries && !before(t->seq, r->ack_seq + rcv_window(r)))
		return TN_DROP; /* beyond the window: libnids would drop it too */
	if (f->tn.max_win[d] && f->tn.una[d] && before(t->ack, f->tn.una[d] - f->tn.max_win[d])) {
		if (carries)
			*anomaly = "tcp evasion: segment acknowledges data older than the window (RFC 5961: "
				   "the server discards it)";
		return TN_DROP;
	}
	const struct half_stream *snd = d == 0 ? &a->client : &a->server;
	uint32_t win = (uint32_t)t->win * (snd->wscale > 0 ? snd->wscale : 1u);
	if (win > f->tn.max_win[d])
		f->tn.max_win[d] = win;
	if (!f->tn.una[d] || after(t->ack, f->tn.una[d]))
		f->tn.una[d] = t->ack ? t->ack : 1;
	uint32_t end = t->seq + t->payload + (t->flags & TN_FIN ? 1u : 0u);
	if (!f->tn.end_set[d] || after(end, f->tn.snd_end[d])) {
		f->tn.snd_end[d] = end;
		f->tn.end_set[d] = 1;
	}
	f->tn.rcv_seen[!d] = 1;
	if (carries && after(t->seq, expect))
		return TN_HOLD;
	return TN_PASS;
}

/* ---- the out-of-order queue ---- */

static uint32_t seg_end(const struct held_seg *h)
{
	return h->seq + h->dlen + h->fin;
}

/* A unit is a segment and those merged onto it (cont): Linux's one skb. */
static uint32_t unit_end(const struct held_seg *u)
{
	uint32_t e = seg_end(u);
	for (const struct held_seg *x = u->next; x && x->cont; x = x->next)
		if (after(seg_end(x), e))
			e = seg_end(x);
	return e;
}

/* Do h's payload and [s, s+len) disagree where they overlap? */
static int differs(const struct held_seg *h, uint32_t s, const uint8_t *data, uint32_t len)
{
	uint32_t lo = after(h->seq, s) ? h->seq : s;
	uint32_t he = h->seq + h->dlen, ne = s + len;
	uint32_t hi = before(he, ne) ? he : ne;
	if (!before(lo, hi))
		return 0;
	return memcmp(h->pkt + h->doff + (lo - h->seq), data + (lo - s), hi - lo) != 0;
}

static int unit_differs(const struct held_seg *u, uint32_t s, const uint8_t *data, uint32_t len)
{
	if (differs(u, s, data, len))
		return 1;
	for (const struct held_seg *x = u->next; x && x->cont; x = x->next)
		if (differs(x, s, data, len))
			return 1;
	return 0;
}

static void unit_free(struct flow_table *ft, struct flow *f, int d, struct held_seg **link)
{
	do {
		struct held_seg *h = *link;
		*link = h->next;
		f->held_bytes[d] -= h->len;
		ft->held -= h->len;
		free(h);
	} while (*link && (*link)->cont);
}

static const char overlap_text[] = "tcp evasion: overlapping segments with different bytes";

/* Linux's tcp_data_queue_ofo(), on units sorted by sequence. For the unit U that starts
 * at or before the new segment [s, e):
 *   - inside U (e <= U's end): dropped, the queued bytes win ("all the bits are present");
 *   - same start as U and longer: replaces U (rb_replace_node), the new bytes win;
 *   - starts inside U and goes beyond: queued after U, U's bytes win where they overlap
 *     (delivered first, the rest is read from rcv_nxt on);
 *   - starts exactly at U's end: merged onto U (tcp_ooo_try_coalesce);
 * then (merge_right) units the new one covers entirely are removed, the new bytes winning,
 * and one it covers in part stays, the new bytes winning the overlap (delivered first). */
int tn_hold(struct flow_table *ft, uint64_t budget, struct flow *f, int d, const struct tcpinfo *t,
	    const uint8_t *pkt, size_t n, const char **anomaly)
{
	uint32_t s = t->seq, len = t->payload;
	uint8_t fin = (t->flags & TN_FIN) ? 1 : 0;
	uint32_t e = s + len + fin;
	const uint8_t *data = pkt + t->off;
	struct held_seg **link = &f->held[d], **ulink = NULL;
	unsigned nseg = 0;
	for (; *link; link = &(*link)->next, nseg++) {
		if ((*link)->cont)
			continue;
		if (after((*link)->seq, s))
			break;
		ulink = link;
	}
	for (struct held_seg *x = *link; x; x = x->next)
		nseg++;
	if (f->held_bytes[d] + n > FLOW_HELD_MAX || ft->held + n > budget || nseg >= TN_HELD_SEGS)
		return -1;
	int cont = 0;
	if (ulink) {
		struct held_seg *u = *ulink;
		uint32_t ue = unit_end(u);
		if (before(s, ue)) {
			if (unit_differs(u, s, data, len))
				*anomaly = overlap_text;
			if (!after(e, ue))
				return 0;
			if (s == u->seq) {
				unit_free(ft, f, d, ulink);
				link = ulink;
			}
		} else if (s == ue) {
			cont = 1;
		}
	}
	struct held_seg *h = malloc(sizeof(*h) + n);
	if (!h)
		return -1;
	h->seq = s;
	h->len = (uint32_t)n;
	h->dlen = len;
	h->doff = t->off;
	h->fin = fin;
	h->cont = (uint8_t)cont;
	memcpy(h->pkt, pkt, n);
	h->next = *link;
	*link = h;
	f->held_bytes[d] += (uint32_t)n;
	ft->held += n;
	if (cont)
		return 0; /* a merge does not look right (Linux: coalesce_done) */
	/* merge_right: past h and its own continuation */
	struct held_seg **next = &h->next;
	while (*next && (*next)->cont)
		next = &(*next)->next;
	while (*next && after(e, (*next)->seq)) {
		if (unit_differs(*next, s, data, len))
			*anomaly = overlap_text;
		if (before(e, unit_end(*next)))
			break;
		unit_free(ft, f, d, next);
	}
	return 0;
}

void tn_compare_held(const struct flow *f, int d, const struct tcpinfo *t, const uint8_t *pkt,
		     const char **anomaly)
{
	uint32_t e = t->seq + t->payload;
	for (const struct held_seg *h = f->held[d]; h && before(h->seq, e); h = h->next)
		if (differs(h, t->seq, pkt + t->off, t->payload)) {
			*anomaly = overlap_text;
			return;
		}
}
