/* Mid-stream pickup: a data segment of a database flow libnids does not track (capture
 * began after the handshake, the SYN was lost, or the stream was freed at a gap) gets a
 * synthetic handshake so libnids takes it up at that sequence (NOTES-libnids.md). */
#include "cap_int.h"

#include <stdlib.h>
#include <string.h>

/* One synthetic IPv4/TCP packet with valid checksums and window scale 14, no timestamps:
 * libnids' window and PAWS checks then accept the real segments that follow. */
static void inject(struct cap *c, const struct pcap_pkthdr *h, uint32_t src, uint16_t sport,
		   uint32_t dst, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags)
{
	uint8_t pkt[20 + 24];
	int syn = flags & 0x02;
	size_t tcplen = syn ? 24 : 20;
	memset(pkt, 0, sizeof pkt);
	pkt[0] = 0x45;
	pkt[3] = (uint8_t)(20 + tcplen);
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, &src, 4);
	memcpy(pkt + 16, &dst, 4);
	uint16_t ipc = tn_csum_fold(tn_csum_add(0, pkt, 20));
	pkt[10] = (uint8_t)(ipc >> 8);
	pkt[11] = (uint8_t)ipc;
	uint8_t *t = pkt + 20;
	t[0] = (uint8_t)(sport >> 8), t[1] = (uint8_t)sport;
	t[2] = (uint8_t)(dport >> 8), t[3] = (uint8_t)dport;
	for (int i = 0; i < 4; i++) {
		t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
		t[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
	}
	t[12] = (uint8_t)((tcplen / 4) << 4);
	t[13] = flags;
	t[14] = 0xff, t[15] = 0xff;
	if (syn) {
		t[20] = 1;	/* NOP */
		t[21] = 3;	/* window scale */
		t[22] = 3;
		t[23] = 14;
	}
	tn_tcp_csum(pkt, 20 + tcplen);
	struct pcap_pkthdr sh = *h;
	sh.caplen = sh.len = (bpf_u_int32)(20 + tcplen);
	nids_pcap_handler(NULL, &sh, pkt);
}

static struct tcp_stream *find_stream(uint32_t cli, uint16_t cport, uint32_t srv, uint16_t sport)
{
	struct tuple4 t = { .source = cport, .dest = sport, .saddr = cli, .daddr = srv };
	struct tcp_stream *a = nids_find_tcp_stream(&t);
	if (a)
		return a;
	struct tuple4 r = { .source = sport, .dest = cport, .saddr = srv, .daddr = cli };
	return nids_find_tcp_stream(&r);
}

/* After a reset the server has no connection on that 4-tuple: a segment without a new
 * handshake is answered with a reset and never executed (tcp_v4_rcv finds no socket), so
 * it must not start a session. But a reset the server never got (a forged one with a bad
 * checksum where checksums are not checked, NOTES-libnids.md §4) must cost no more than
 * before, so the segments of such a flow wait (copied, bounded) for the other side's
 * answer: a reset drops them, anything else picks the flow up at the first one and
 * replays them. With no answer within CAP_RESET_WAIT_US (a one-way capture), or at the
 * end, they are picked up too. A reset is remembered for as long as Linux keeps a closed
 * tuple (TCP_TIMEWAIT_LEN, 60 s), or until a handshake opens it again. */
#define CAP_RESET_US (60 * 1000000LL)
#define CAP_RESET_WAIT_US (3 * 1000000LL)
#define CAP_RESET_HOLD (256u << 10)

struct cap_wait_pkt {
	struct cap_wait_pkt *next;
	struct timeval ts;
	size_t n;
	uint8_t pkt[];
};

static int same_key(const struct flow_key *a, const struct flow_key *b)
{
	return a->cli_ip == b->cli_ip && a->srv_ip == b->srv_ip && a->cli_port == b->cli_port &&
	       a->srv_port == b->srv_port;
}

static void wait_free(struct cap *c, struct cap_reset *r)
{
	if (r->wait)
		c->n_waiting--;
	while (r->wait) {
		struct cap_wait_pkt *w = r->wait;
		r->wait = w->next;
		free(w);
	}
	r->wait_bytes = 0;
}

void cappick_reset(struct cap *c, const struct flow_key *k)
{
	struct cap_reset *r = &c->resets[c->next_reset++ % CAP_RESETS];
	if (r->wait)
		c->st.held_segments_dropped++; /* the oldest one waiting: no replay from a callback */
	wait_free(c, r);
	r->key = *k;
	r->ts = c->now ? c->now : 1;
}

void cappick_established(struct cap *c, const struct flow_key *k)
{
	for (unsigned i = 0; i < CAP_RESETS; i++)
		if (c->resets[i].ts && same_key(&c->resets[i].key, k)) {
			wait_free(c, &c->resets[i]);
			c->resets[i].ts = 0;
		}
}

/* The live answer: forget the reset and replay what waited (oldest first) through the
 * normal path, whose first segment picks the flow up. */
static void release(struct cap *c, struct cap_reset *r)
{
	struct cap_wait_pkt *list = NULL;
	while (r->wait) {
		struct cap_wait_pkt *w = r->wait;
		r->wait = w->next;
		w->next = list;
		list = w;
	}
	c->n_waiting--;
	r->wait_bytes = 0;
	r->ts = 0;
	ev_time now = c->now; /* each at its own time, as if it had not waited */
	while (list) {
		struct cap_wait_pkt *next = list->next;
		struct pcap_pkthdr h = { .ts = list->ts, .caplen = (bpf_u_int32)list->n, .len = (bpf_u_int32)list->n };
		struct tcpinfo t;
		c->now = (ev_time)list->ts.tv_sec * 1000000 + list->ts.tv_usec;
		if (cappkt_parse_tcp(list->pkt, list->n, &t) == 0)
			capseg_packet(c, &t, &h, list->pkt, list->n);
		free(list);
		list = next;
	}
	c->now = now;
}

void cappick_release_all(struct cap *c)
{
	for (unsigned i = 0; c->n_waiting && i < CAP_RESETS; i++)
		if (c->resets[i].wait)
			release(c, &c->resets[i]);
}

void cappick_free(struct cap *c)
{
	for (unsigned i = 0; i < CAP_RESETS; i++)
		wait_free(c, &c->resets[i]);
}

static struct cap_reset *reset_of(struct cap *c, const struct flow_key *k)
{
	for (unsigned i = 0; i < CAP_RESETS; i++)
		if (c->resets[i].ts && same_key(&c->resets[i].key, k) && c->now - c->resets[i].ts < CAP_RESET_US)
			return &c->resets[i];
	return NULL;
}

static int wait_add(struct cap *c, struct cap_reset *r, const struct tcpinfo *t, const struct pcap_pkthdr *h,
		    const uint8_t *p, size_t n)
{
	if (r->wait_bytes + n > CAP_RESET_HOLD)
		return -1;
	struct cap_wait_pkt *w = malloc(sizeof(*w) + n);
	if (!w)
		return -1;
	w->ts = h->ts;
	w->n = n;
	memcpy(w->pkt, p, n);
	if (!r->wait) {
		c->n_waiting++;
		r->since = c->now;
		r->wait_ip = t->saddr;
		r->wait_port = htons(t->sport);
	}
	w->next = r->wait;
	r->wait = w;
	r->wait_bytes += (uint32_t)n;
	return 0;
}

/* A segment of a flow whose segments wait after a reset: 1 when taken. */
static int waiting(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h, const uint8_t *p,
		   size_t n)
{
	struct cap_reset *r = NULL;
	uint16_t sp = htons(t->sport), dp = htons(t->dport);
	for (unsigned i = 0; i < CAP_RESETS && !r; i++) {
		const struct flow_key *k = &c->resets[i].key;
		if (c->resets[i].wait &&
		    ((k->cli_ip == t->saddr && k->cli_port == sp && k->srv_ip == t->daddr && k->srv_port == dp) ||
		     (k->srv_ip == t->saddr && k->srv_port == sp && k->cli_ip == t->daddr && k->cli_port == dp)))
			r = &c->resets[i];
	}
	if (!r)
		return 0;
	if (t->saddr == r->wait_ip && sp == r->wait_port) {
		if (!(t->flags & 0x07) && c->now - r->since < CAP_RESET_WAIT_US && wait_add(c, r, t, h, p, n) == 0)
			return 1;
		release(c, r); /* waited enough: this one follows them */
		return 0;
	}
	if (t->flags & 0x04) { /* the answer is a reset: the server has no such connection */
		for (const struct cap_wait_pkt *w = r->wait; w; w = w->next)
			c->st.normalised_drops++;
		wait_free(c, r);
		return 1;
	}
	release(c, r);
	return 0;
}

/* A data segment on a database port that libnids does not track: capture began after
 * the handshake, the SYN was lost, or we freed the stream at a gap. Start it here. */
int cappick_maybe(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h, const uint8_t *p,
		  size_t n)
{
	if (c->n_waiting && waiting(c, t, h, p, n))
		return 1;
	if (!t->payload || !(t->flags & 0x10) || (t->flags & 0x07))
		return 0;
	/* the usual packet: a flow we know whose stream libnids has */
	struct flow *f = cap_flow_of(c, t->saddr, t->sport, t->daddr, t->dport);
	if (f && f->stream)
		return 0;
	int from_client;
	if (cap_decoder_for_port(c, t->dport))
		from_client = 1;
	else if (cap_decoder_for_port(c, t->sport))
		from_client = 0;
	else
		return 0;
	/* A flow we already know (its stream freed at a gap or a reset) keeps its roles, even
	 * when both ports are database ports. */
	if (f)
		from_client = f->key.cli_ip == t->saddr && f->key.cli_port == htons(t->sport);
	uint32_t cli = from_client ? t->saddr : t->daddr, srv = from_client ? t->daddr : t->saddr;
	uint16_t cport = from_client ? t->sport : t->dport, sport = from_client ? t->dport : t->sport;
	if (find_stream(cli, cport, srv, sport))
		return 0;
	const struct flow_key k = { .cli_ip = cli, .srv_ip = srv, .cli_port = htons(cport), .srv_port = htons(sport) };
	struct cap_reset *r = reset_of(c, &k);
	if (r && wait_add(c, r, t, h, p, n) == 0)
		return 1;
	uint32_t cnext = from_client ? t->seq : t->ack, snext = from_client ? t->ack : t->seq;
	c->injecting = 1;
	inject(c, h, cli, cport, srv, sport, cnext - 1, 0, 0x02);
	inject(c, h, srv, sport, cli, cport, snext - 1, cnext, 0x12);
	inject(c, h, cli, cport, srv, sport, cnext, snext, 0x10);
	c->injecting = 0;
	if (find_stream(cli, cport, srv, sport))
		c->st.midstream_pickups++;
	return 0;
}
