/* Mid-stream pickup: a data segment of a database flow libnids does not track (capture
 * began after the handshake, the SYN was lost, or the stream was freed at a gap) gets a
 * synthetic handshake so libnids takes it up at that sequence (NOTES-libnids.md). */
#include "cap_int.h"

#include <string.h>

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

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
	uint16_t ipc = csum_fold(csum_add(0, pkt, 20));
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
	uint8_t pseudo[12];
	memcpy(pseudo, &src, 4);
	memcpy(pseudo + 4, &dst, 4);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = 0;
	pseudo[11] = (uint8_t)tcplen;
	uint16_t tc = csum_fold(csum_add(csum_add(0, pseudo, 12), t, tcplen));
	t[16] = (uint8_t)(tc >> 8);
	t[17] = (uint8_t)tc;
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

/* A data segment on a database port that libnids does not track: capture began after
 * the handshake, the SYN was lost, or we freed the stream at a gap. Start it here. */
void cappick_maybe(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h)
{
	if (!t->payload || !(t->flags & 0x10) || (t->flags & 0x07))
		return;
	/* the usual packet: a flow we know whose stream libnids has */
	struct flow *f = cap_flow_of(c, t->saddr, t->sport, t->daddr, t->dport);
	if (f && f->stream)
		return;
	int from_client;
	if (cap_decoder_for_port(c, t->dport))
		from_client = 1;
	else if (cap_decoder_for_port(c, t->sport))
		from_client = 0;
	else
		return;
	/* A flow we already know (its stream freed at a gap or a reset) keeps its roles, even
	 * when both ports are database ports. */
	if (f)
		from_client = f->key.cli_ip == t->saddr && f->key.cli_port == htons(t->sport);
	uint32_t cli = from_client ? t->saddr : t->daddr, srv = from_client ? t->daddr : t->saddr;
	uint16_t cport = from_client ? t->sport : t->dport, sport = from_client ? t->dport : t->sport;
	if (find_stream(cli, cport, srv, sport))
		return;
	uint32_t cnext = from_client ? t->seq : t->ack, snext = from_client ? t->ack : t->seq;
	c->injecting = 1;
	inject(c, h, cli, cport, srv, sport, cnext - 1, 0, 0x02);
	inject(c, h, srv, sport, cli, cport, snext - 1, cnext, 0x12);
	inject(c, h, cli, cport, srv, sport, cnext, snext, 0x10);
	c->injecting = 0;
	if (find_stream(cli, cport, srv, sport))
		c->st.midstream_pickups++;
}
