/* One TCP segment of a flow: picked up if needed, judged as the server would judge it
 * (tcpnorm.c), then handed to libnids in order or queued behind a hole (cap_gap.c). */
#include "cap_int.h"

#include <stdlib.h>

/* libnids grows a half-stream's buffer to fit its largest delivery and never shrinks it
 * (NOTES-libnids.md): a flood of flows that each sent one 64 KiB segment would pin
 * 128 KiB or more apiece. Decoded flows leave nothing in it, so a big one is given back
 * once this packet is done (libnids allocates afresh when data is NULL). */
#define CAP_NIDS_BUF_KEEP (32 * 1024)
static void trim_nids_buffers(struct tcp_stream *a)
{
	struct half_stream *hs[2] = { &a->client, &a->server };
	for (int i = 0; i < 2; i++) {
		if (hs[i]->bufsize > CAP_NIDS_BUF_KEEP && hs[i]->count == hs[i]->offset) {
			free(hs[i]->data);
			hs[i]->data = NULL;
			hs[i]->bufsize = 0;
		}
	}
}

void capseg_feed_nids(const struct pcap_pkthdr *h, const uint8_t *p, size_t n)
{
	struct pcap_pkthdr h2 = *h;
	h2.caplen = (bpf_u_int32)n;
	h2.len = (bpf_u_int32)n;
	nids_pcap_handler(NULL, &h2, (u_char *)p);
}

/* Evasion is reported once per flow, into its session (tcpnorm.h). */
static void tn_report(struct cap *c, struct flow *f, int d, const char *what)
{
	if (!what || f->tn.flagged)
		return;
	f->tn.flagged = 1;
	c->st.evasion_flows++;
	if (f->df)
		decstage_anomaly(c->ds, f->df, d == 0 ? PROTO_TO_SERVER : PROTO_TO_CLIENT, c->now, what);
}

struct flow *capseg_tracked(struct cap *c, const struct tcpinfo *t, struct tcp_stream **a)
{
	struct flow *f = cap_flow_of(c, t->saddr, t->sport, t->daddr, t->dport);
	*a = f ? f->stream : NULL;
	return *a && (*a)->user == f ? f : NULL;
}
/* One TCP segment: pick the flow up if needed, judge it as the server would (tcpnorm.c),
 * then libnids, in order, or our out-of-order queue. */
void capseg_packet(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h,
		   const uint8_t *p, size_t n)
{
	if (cappick_maybe(c, t, h, p, n))
		return;
	c->bigqueue = 0;
	struct tcp_stream *a;
	struct flow *f = capseg_tracked(c, t, &a);
	if (!f) {
		capseg_feed_nids(h, p, n);
		return;
	}
	int d = (t->saddr == a->addr.saddr && t->sport == a->addr.source) ? 0 : 1;
	f->seen_ts = c->now;
	const char *why = NULL;
	/* The bytes of a hole skipped as lost (one-way, silence, memory) came after all: the
	 * server may run them, dbtap has moved on (libnids drops them as old). Say so. */
	if (f->tn.skip_set[d] && t->payload && (int32_t)(t->seq - f->tn.skip_to[d]) < 0 &&
	    (int32_t)(t->seq + t->payload - f->tn.skip_from[d]) > 0)
		why = "tcp evasion: data for a hole already skipped as lost (the server may run bytes dbtap did not see)";
	enum tn_verdict v = tn_check(f, a, d, t, p, &why);
	if (v == TN_HOLD) {
		if (!f->held[d]) {
			f->ooo_since[d] = c->now;
			f->tn.rcv_seen[d] = 0;
		}
		if (tn_hold(&c->flows, (uint64_t)c->cfg.max_held_mb << 20, f, d, t, p, n, &why) != 0) {
			/* the queue is full: the bytes before it are lost, then this one again */
			tn_report(c, f, d, why);
			if (c->replaying || !f->held[d]) {
				c->st.held_segments_dropped++;
				return;
			}
			capgap_declare(c, f, a, d, tn_expect(a, d));
			capseg_packet(c, t, h, p, n);
			return;
		}
	} else if (v == TN_PASS && t->payload && f->held[d]) {
		if (n <= sizeof c->patchbuf && tn_compare_held(f, d, t, p, n, c->patchbuf, &why))
			p = c->patchbuf; /* the server keeps queued bytes over these (host_os_policy) */
	}
	tn_report(c, f, d, why);
	if (v == TN_DROP) {
		c->st.normalised_drops++;
		return;
	}
	if (v == TN_PASS)
		capseg_feed_nids(h, p, n);
	if (!(f = capseg_tracked(c, t, &a)))
		return;
	trim_nids_buffers(a);
	if (f->held[d])
		capgap_drain(c, t, d);
	if (c->replaying || !(f = capseg_tracked(c, t, &a)))
		return;
	for (int x = 0; x < 2; x++) {
		if (!f->held[x]) {
			f->ooo_since[x] = 0;
			continue;
		}
		if (capgap_hole_lost(c, f, a, x)) {
			capgap_declare(c, f, a, x, tn_expect(a, x));
			return;
		}
	}
}
