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
 *    sequence we saw it send (or libnids delivered from it). Only once the receiver's side
 *    was seen (its handshake, or a segment since a mid-stream pickup): a one-way capture
 *    cannot know what the receiver sent, and would otherwise drop every segment.
 * 4b. ACK too old (RFC 5961 §5.2, tcp_ack(): before(ack, snd_una - max_window) sends a
 *    challenge ACK and discards the segment with its data): snd_una is the sender's last
 *    ACK that passed, max_window the largest window it advertised (scaled). Ours can only
 *    be as large as Linux's or larger, so we drop no segment Linux keeps.
 * 5. Beyond the receiver's window (tcp_sequence(): discarded with a duplicate ACK):
 *    dropped, as libnids itself would drop it, so it cannot sit in our queue either.
 * 5b. PAWS (RFC 7323 §5, tcp_paws_discard): with timestamps on (no SYN seen without
 *    them), a segment carrying data whose TSval is older than ts_recent by more than 1 is
 *    discarded. libnids applies PAWS only to flows it saw open with timestamps, not to
 *    those picked up mid-stream or after a gap.
 * 6. Out of order (tcp_data_queue_ofo): queued in f->held by Linux's rules, see tn_hold;
 *    in-order segments go to libnids, which like Linux keeps bytes already received
 *    (tcp_data_queue's partial-overlap path reads from rcv_nxt on).
 *
 * Other servers (capture.host_os_policy, the server's address chooses): only which copy
 * wins an overlap of bytes not yet taken in order differs, by Novak and Sturges'
 * "Target-Based TCP Stream Reassembly" (2007) as Suricata's stream-tcp-list.c applies it
 * (tn_new_wins). Rules 1-5 stay Linux's for every policy: those sources measured overlaps
 * only, and what Windows, BSD or Solaris do with an in-window RST, data without ACK or an
 * ACK of unsent data is not known to us. Bytes already taken in order are never replaced
 * (no receiver can: they are in the socket's queue), as libnids does for every policy. */
#include "tcpnorm.h"
#include "cap.h"

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
		if (!t->has_ts)
			f->tn.ts_off = 1;
		return TN_PASS; /* libnids' handshake and reuse logic */
	}
	int carries = t->payload || (t->flags & TN_FIN);
	int paws = t->has_ts && !f->tn.ts_off;
	if (carries && paws && f->tn.ts_set[d] && (int32_t)(f->tn.ts_recent[d] - t->tsval) > 1) {
		*anomaly = "tcp evasion: segment with an old timestamp (PAWS: the server discards it)";
		return TN_DROP;
	}
	if (!(t->flags & TN_ACK)) {
		if (carries)
			*anomaly = "tcp evasion: data without ACK (the server discards it)";
		return TN_DROP;
	}
	uint32_t sent = tn_expect(a, !d); /* what the receiver has sent, as far as we know */
	if (f->tn.end_set[!d] && after(f->tn.snd_end[!d], sent))
		sent = f->tn.snd_end[!d];
	if ((f->tn.end_set[!d] || !f->midstream) && after(t->ack, sent)) {
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
	/* ts_recent follows Linux's tcp_replace_ts_recent: only a segment starting at or
	 * before what the receiver last acknowledged (rcv_wup), never one out of order */
	uint32_t wup = r->ack_seq && !after(r->ack_seq, expect) ? r->ack_seq : expect;
	if (paws && !after(t->seq, wup)) {
		f->tn.ts_recent[d] = t->tsval;
		f->tn.ts_set[d] = 1;
	}
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

/* A copy of segment t (the whole packet pkt, n bytes) for the queue. */
static struct held_seg *held_new(const struct tcpinfo *t, const uint8_t *pkt, size_t n, int cont)
{
	struct held_seg *h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->seq = t->seq;
	h->len = (uint32_t)n;
	h->dlen = t->payload;
	h->doff = t->off;
	h->fin = (t->flags & TN_FIN) ? 1 : 0;
	h->cont = (uint8_t)cont;
	memcpy(h->pkt, pkt, n);
	return h;
}

static const char overlap_text[] = "tcp evasion: overlapping segments with different bytes";
static int hold_other(struct flow_table *ft, struct flow *f, int d, const struct tcpinfo *t,
		      const uint8_t *pkt, size_t n, const char **anomaly);

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
	if (f->tn.os != CAP_OS_LINUX)
		return hold_other(ft, f, d, t, pkt, n, anomaly);
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
	struct held_seg *h = held_new(t, pkt, n, cont);
	if (!h)
		return -1;
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

/* ---- other servers' policies ----
 *
 * Which copy a server keeps where a new segment [s, e) overlaps one it queued earlier,
 * [os, oe) (Novak & Sturges' tests, as Suricata's stream-tcp-list.c applies them):
 *   linux:           the new one when it starts before the old, or at the same place and
 *                    ends after it (this is also what tn_hold's exact model gives);
 *   bsd, windows:    the new one when it starts before the old (tcp_reass trims the new
 *                    segment by the one before it, then the ones after it by the new one);
 *   solaris:         the new one when it ends at or after the old one's end (but not when
 *                    it starts after it and ends at the same place);
 *   first, vista:    always the old one;   last: always the new one. */
int tn_new_wins(int os, uint32_t s, uint32_t e, uint32_t os_, uint32_t oe)
{
	switch (os) {
	case CAP_OS_LAST:
		return 1;
	case CAP_OS_FIRST:
	case CAP_OS_VISTA:
		return 0;
	case CAP_OS_BSD:
	case CAP_OS_WINDOWS:
		return before(s, os_);
	case CAP_OS_SOLARIS:
		return !before(e, oe) && !(after(s, os_) && e == oe);
	default:
		return before(s, os_) || (s == os_ && after(e, oe));
	}
}

uint32_t tn_csum_add(uint32_t sum, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

uint16_t tn_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void tn_tcp_csum(uint8_t *pkt, size_t n)
{
	size_t ihl = (size_t)(pkt[0] & 15) * 4, tot = (size_t)pkt[2] << 8 | pkt[3];
	if (tot > n || tot < ihl + 20)
		return;
	size_t tl = tot - ihl;
	uint8_t *tcp = pkt + ihl;
	tcp[16] = tcp[17] = 0;
	uint16_t sum = tn_csum_fold(tn_csum_add(tn_csum_add(6 + (uint32_t)tl, pkt + 12, 8), tcp, tl));
	tcp[16] = (uint8_t)(sum >> 8);
	tcp[17] = (uint8_t)sum;
}

/* Where a (new, at s) and x (queued) overlap with different bytes, the loser takes the
 * winner's bytes, so every queued copy agrees with every other and libnids, which keeps
 * the first copy in sequence, delivers what the server keeps whatever the order. Returns
 * 1 when the new copy's bytes changed. */
static int settle(int os, uint8_t *nd, uint32_t s, uint32_t len, struct held_seg *x, const char **anomaly)
{
	uint32_t e = s + len, xe = x->seq + x->dlen;
	uint32_t lo = after(x->seq, s) ? x->seq : s, hi = before(xe, e) ? xe : e;
	if (!before(lo, hi))
		return 0;
	uint8_t *xd = x->pkt + x->doff + (lo - x->seq), *n = nd + (lo - s);
	if (memcmp(xd, n, hi - lo) == 0)
		return 0;
	*anomaly = overlap_text;
	if (tn_new_wins(os, s, e, x->seq, xe)) {
		memcpy(xd, n, hi - lo);
		tn_tcp_csum(x->pkt, x->len);
		return 0;
	}
	memcpy(n, xd, hi - lo);
	return 1;
}

/* tn_hold for a server that is not Linux: the queue is kept sorted by sequence, each
 * overlap settled by the policy as the segment arrives (settle), and a segment whose
 * bytes one queued copy already holds entirely is dropped (it changes nothing). */
static int hold_other(struct flow_table *ft, struct flow *f, int d, const struct tcpinfo *t,
		      const uint8_t *pkt, size_t n, const char **anomaly)
{
	uint32_t s = t->seq, len = t->payload;
	uint8_t fin = (t->flags & TN_FIN) ? 1 : 0;
	struct held_seg *h = held_new(t, pkt, n, 0);
	if (!h)
		return -1;
	int changed = 0, covered = 0;
	struct held_seg **link = &f->held[d];
	for (struct held_seg **x = &f->held[d]; *x && before((*x)->seq, s + len + fin); x = &(*x)->next) {
		changed |= settle(f->tn.os, h->pkt + h->doff, s, len, *x, anomaly);
		if (!after((*x)->seq, s) && !after(s + len + fin, seg_end(*x)))
			covered = 1;
		if (!after((*x)->seq, s))
			link = &(*x)->next;
	}
	if (covered) {
		free(h);
		return 0;
	}
	if (changed)
		tn_tcp_csum(h->pkt, n);
	h->next = *link;
	*link = h;
	f->held_bytes[d] += (uint32_t)n;
	ft->held += n;
	return 0;
}

int tn_compare_held(const struct flow *f, int d, const struct tcpinfo *t, const uint8_t *pkt, size_t n,
		    uint8_t *out, const char **anomaly)
{
	uint32_t e = t->seq + t->payload;
	if (f->tn.os == CAP_OS_LINUX) {
		for (const struct held_seg *h = f->held[d]; h && before(h->seq, e); h = h->next)
			if (differs(h, t->seq, pkt + t->off, t->payload)) {
				*anomaly = overlap_text;
				return 0;
			}
		return 0;
	}
	int changed = 0;
	for (struct held_seg *h = f->held[d]; h && before(h->seq, e); h = h->next) {
		if (!differs(h, t->seq, pkt + t->off, t->payload))
			continue;
		if (!changed)
			memcpy(out, pkt, n);
		changed |= 1;
		settle(f->tn.os, out + t->off, t->seq, t->payload, h, anomaly);
	}
	if (changed)
		tn_tcp_csum(out, n);
	return changed;
}
