/* Holes: segments behind a hole wait in the flow's out-of-order queue (tcpnorm.c keeps it
 * as Linux would), go to libnids once in order, and when the hole is judged lost the
 * bytes before them are declared a gap and the rest is replayed on a new stream. */
#include "cap_int.h"

#include <stdlib.h>

/* Declare the bytes before the first held segment lost: free the libnids stream (stuck
 * behind the hole for good), tell the decoder, then start a new stream at the first held
 * segment and replay the held ones, so only the missing bytes are lost. */
void capgap_declare(struct cap *c, struct flow *f, struct tcp_stream *a, int d, uint32_t expect)
{
	struct held_seg *list = f->held[d];
	uint32_t lost = list ? list->seq - expect : 0;
	if (lost >= 0x40000000u)
		lost = 0;
	f->gaps++;
	f->lost_bytes += lost;
	c->st.gaps++;
	c->st.lost_bytes += lost;
	/* d is the stuck direction; the other one loses only the partial message held for
	 * it, if any: by libnids while the flow is still probed, else by the decoding stage,
	 * which drops and counts it itself. */
	const struct half_stream *other = d == 0 ? &a->client : &a->server;
	if (other->count - other->offset > 0) {
		f->lost_bytes += (uint64_t)(other->count - other->offset);
		c->st.lost_bytes += (uint64_t)(other->count - other->offset);
	}
	if (f->df)
		decstage_gap(c->ds, f->df, d == 0 ? PROTO_TO_SERVER : PROTO_TO_CLIENT, c->now);
	if (list && lost && (int32_t)(tn_receiver_ack(a, d) - expect) <= 0) {
		f->tn.skip_from[d] = expect;
		f->tn.skip_to[d] = list->seq;
		f->tn.skip_set[d] = 1;
	}
	a->user = NULL;
	f->stream = NULL;
	f->ooo_since[0] = f->ooo_since[1] = 0;
	nids_free_tcp_stream(a);
	flow_held_clear(&c->flows, f, !d);
	c->flows.held -= f->held_bytes[d]; /* the list is replayed and freed below */
	f->held[d] = NULL;
	f->held_bytes[d] = 0;
	struct pcap_pkthdr h = { .ts = { .tv_sec = (time_t)(c->now / 1000000),
					 .tv_usec = (suseconds_t)(c->now % 1000000) } };
	/* the normal path again: the first one picks the flow up at its sequence, the others
	 * are in order after it or wait behind the next hole */
	int was = c->replaying;
	c->replaying = 1;
	while (list) {
		struct held_seg *next = list->next;
		struct tcpinfo t;
		h.caplen = h.len = list->len;
		if (cappkt_parse_tcp(list->pkt, list->len, &t) == 0)
			capseg_packet(c, &t, &h, list->pkt, list->len);
		free(list);
		list = next;
	}
	c->replaying = was;
}
/* Hand libnids the held segments of direction d that are now in order (Linux's
 * tcp_ofo_queue): libnids trims what it already has, so earlier bytes win. */
void capgap_drain(struct cap *c, const struct tcpinfo *t, int d)
{
	struct tcp_stream *a;
	struct flow *f;
	while ((f = capseg_tracked(c, t, &a)) && f->held[d]) {
		struct held_seg *h = f->held[d];
		uint32_t expect = tn_expect(a, d);
		if ((int32_t)(h->seq - expect) > 0)
			break;
		f->held[d] = h->next;
		if (f->held[d])
			f->held[d]->cont = 0;
		f->held_bytes[d] -= h->len;
		c->flows.held -= h->len;
		if ((int32_t)(h->seq + h->dlen + h->fin - expect) > 0) {
			struct pcap_pkthdr ph = { .ts = { .tv_sec = (time_t)(c->now / 1000000),
							  .tv_usec = (suseconds_t)(c->now % 1000000) } };
			capseg_feed_nids(&ph, h->pkt, h->len);
		}
		free(h);
	}
}

/* A hole in direction d is declared lost when the receiver acknowledged past it (it got
 * bytes the capture missed: SPAN loss, never retransmitted). While the receiver answers
 * with duplicate ACKs it is waiting for the retransmission as the server does, and so do
 * we, bounded by memory (tn_hold: the per-flow cap and max_held_mb). When the receiver has
 * said nothing since the hole opened (a one-way capture) nothing tells SPAN loss from a
 * late segment, and the server keeps its out-of-order queue as long as the connection
 * lives, so we wait as long as the sender can still fill the hole by retransmitting: a
 * Linux sender retransmits on RTO from 200 ms (TCP_RTO_MIN), doubling up to 120 s
 * (TCP_RTO_MAX), and gives up after tcp_retries2 = 15, 924.6 s after the first send
 * (tcp_model_timeout); gap_timeout_ms, 924600 by default, is that bound. A count of
 * segments behind the hole proves nothing (the sender sends a window's worth before its
 * first retransmission), so there is none: memory bounds what waits. */
int capgap_hole_lost(struct cap *c, struct flow *f, const struct tcp_stream *a, int d)
{
	uint32_t expect = tn_expect(a, d);
	if ((int32_t)(tn_receiver_ack(a, d) - expect) > 0 || c->bigqueue)
		return 1;
	if (f->tn.rcv_seen[d])
		return 0;
	return c->now - f->ooo_since[d] >= (ev_time)c->cfg.gap_timeout_ms * 1000;
}

/* Skip each hole of one flow (looked up by key: replaying can open, evict or close any
 * flow), so what waits behind it is decoded after a declared gap. */
void capgap_flush_flow(struct cap *c, const struct flow_key *k)
{
	struct flow *f = flows_find(&c->flows, k);
	struct tcp_stream *a;
	/* each round skips one hole; what waits behind the next is held again */
	for (int round = 0; round < 64 && f && (a = f->stream) && (f->held[0] || f->held[1]); round++) {
		int d = f->held[0] ? 0 : 1;
		capgap_declare(c, f, a, d, tn_expect(a, d));
		f = flows_find(&c->flows, k);
	}
}

/* Flows (from the least recently active) with a hole that can no longer be filled. */
static void flush_where(struct cap *c, ev_time quiet_before, int one_way_only)
{
	if (!c->flows.held)
		return;
	struct flow_key *keys = c->flows.count ? calloc(c->flows.count, sizeof(*keys)) : NULL;
	size_t nkeys = 0;
	for (struct flow *f = c->flows.lru_head; keys && f && nkeys < c->flows.count && f->last_ts < quiet_before;
	     f = f->lru_next) {
		if (!f->stream || !(f->held[0] || f->held[1]) || f->seen_ts >= quiet_before)
			continue;
		if (one_way_only && !((f->held[0] && !f->tn.rcv_seen[0]) || (f->held[1] && !f->tn.rcv_seen[1])))
			continue;
		keys[nkeys++] = f->key;
	}
	for (size_t i = 0; i < nkeys; i++)
		capgap_flush_flow(c, &keys[i]);
	free(keys);
}

/* A hole still open at the end will never be filled: skip it so the segments held behind
 * it are decoded before the flows close. */
void capgap_flush_all(struct cap *c)
{
	flush_where(c, INT64_MAX, 0);
}

/* Once a tick: in a one-way capture, a flow that sent no segment for longer than the
 * longest interval between a sender's retransmissions (TCP_RTO_MAX, 120 s; or
 * gap_timeout_ms if shorter) has a sender that stopped retransmitting (it gave up, or the
 * receiver had the bytes): its hole will not be filled, so what waits behind it is
 * decoded now rather than when the flow idles out. */
void capgap_sweep(struct cap *c)
{
	ev_time quiet = (ev_time)CAP_RTO_MAX_MS * 1000;
	if ((ev_time)c->cfg.gap_timeout_ms * 1000 < quiet)
		quiet = (ev_time)c->cfg.gap_timeout_ms * 1000;
	flush_where(c, c->now - quiet, 1);
}
