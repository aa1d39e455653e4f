/* The capture engine: our own pcap handle feeds libnids through the L2 shim; libnids'
 * callbacks drive the decoders; we add what libnids lacks (NOTES-libnids.md): mid-stream
 * pickup by a synthetic handshake, gap declaration, idle sweeping, bounded buffering. */
#include "cap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <nids.h>
#include <pcap.h>
#include <poll.h>
#ifdef __linux__
#include <linux/if_packet.h>
#endif
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "anpipe.h"
#include "decstage.h"
#include "flows.h"
#include "l2.h"
#include "proto.h"
#include "rd.h"
#include "tcpnorm.h"

#define CAP_SNAPLEN 262144
#define CAP_PROBE_LIMIT 4096 /* bytes an unknown-port flow may show before we give up on it */
#define CAP_TICK_US 1000000  /* analyzer tick and idle sweep period, packet time */

struct cap {
	struct cap_config cfg;
	struct anpipe *pipe; /* how events reach the analyzer (direct, or its own thread) */
	struct decstage *ds; /* where decoders run (inline, or their own thread) */
	struct flow_table flows;
	struct v6map *v6;
	struct cap_stats st;
	struct decstage_stats dstats; /* the decoding stage's counters, added at cap_finish */
	pcap_t *dead;
	int dlt;
	int live;
	ev_time now, last_tick;
	int injecting;
	int bigqueue; /* libnids pruned an out-of-order queue during the current packet */
	int replaying; /* declare_gap is feeding held segments again */
	struct nids_chksum_ctl ctl[CAP_MAX_CIDRS + 4];
	int n_ctl;
	uint8_t v6buf[65536 + 64];
	const char *cur_file;
	FILE *cur_fp; /* for progress: position in the file being read */
	long cur_size;
	time_t last_progress;
	const struct cap_live_hooks *hooks; /* stats and watchdog (main.c) */
	int64_t next_stats, next_watchdog;  /* CLOCK_MONOTONIC, microseconds */
	int progress;
};

static struct cap *g_cap; /* libnids callbacks carry no context */
static volatile sig_atomic_t g_stop, g_hup;

void cap_stop(void)
{
	g_stop = 1;
}

void cap_hup(void)
{
	g_hup = 1;
}

void cap_config_defaults(struct cap_config *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; proto_registry[i]; i++)
		for (int j = 0; j < PROTO_MAX_DEFAULT_PORTS && proto_registry[i]->default_ports[j]; j++)
			c->ports[i].port[c->ports[i].n++] = proto_registry[i]->default_ports[j];
	c->probe_other_ports = 1;
	c->max_flows = 16384;
	c->idle_timeout_s = 3600;
	c->gap_timeout_ms = 2000;
	c->gap_max_packets = 8;
	c->v6_map_size = 65536;
	c->n_checksum_bypass = -1;
	c->kernel_buffer_mb = 64;
	c->stats_interval_s = 60;
	c->analyzer_thread = -1;
	c->decoder_thread = -1;
	c->max_held_mb = 128;
	c->tls_key_wait_s = 10;
}

void cap_config_free(struct cap_config *c)
{
	for (int i = 0; i < c->n_checksum_bypass; i++)
		free(c->checksum_bypass[i]);
	c->n_checksum_bypass = -1;
	for (int i = 0; i < c->n_tls_keylog; i++)
		free(c->tls_keylog[i]);
	c->n_tls_keylog = 0;
}

static int port_in(const int *v, int n, int port)
{
	for (int i = 0; i < n; i++)
		if (v[i] == port)
			return 1;
	return 0;
}

/* The decoder a server port is configured for, or NULL. */
static const struct proto_decoder *decoder_for_port(const struct cap *c, int port)
{
	for (int i = 0; proto_registry[i]; i++)
		if (port_in(c->cfg.ports[i].port, c->cfg.ports[i].n, port))
			return proto_registry[i];
	return NULL;
}

static ev_time tv_us(const struct timeval *tv)
{
	return (ev_time)tv->tv_sec * 1000000 + tv->tv_usec;
}

/* ---- flows: decoder and analyzer wiring ---- */

static void addr_text(const struct cap *c, uint32_t a, char *buf, size_t len)
{
	const uint8_t *v6 = v6map_lookup(c->v6, a);
	if (v6)
		inet_ntop(AF_INET6, v6, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

/* Choose the decoder and open the analyzer session. */
static void flow_start_decoding(struct cap *c, struct flow *f, const struct proto_decoder *d)
{
	f->dec = d;
	struct an_flow af = {
		.protocol = d->name,
		.dialect = d->dialect,
		.client_ip = f->cli_ip,
		.server_ip = f->srv_ip,
		.client_port = ntohs(f->key.cli_port),
		.server_port = ntohs(f->key.srv_port),
		.ts = f->first_ts,
		.midstream = f->midstream,
	};
	f->df = decstage_open(c->ds, d, f->midstream, &af);
	if (!f->df) {
		f->ignored = 1;
		return;
	}
	c->st.streams++;
}

static void flow_finish(struct cap *c, struct flow *f, const char *reason, enum proto_end why)
{
	if (f->df) {
		struct an_flow_end e = {
			.ts = f->last_ts,
			.reason = reason,
			.bytes_to_server = f->bytes_to_server,
			.bytes_to_client = f->bytes_to_client,
			.gaps = f->gaps,
			.lost_bytes = f->lost_bytes,
		};
		decstage_close(c->ds, f->df, why, &e);
		f->df = NULL;
	}
	if (f->stream)
		((struct tcp_stream *)f->stream)->user = NULL;
	flows_remove(&c->flows, f);
}

static void flow_key_of(const struct tuple4 *t, struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->cli_ip = t->saddr;
	k->srv_ip = t->daddr;
	k->cli_port = htons(t->source);
	k->srv_port = htons(t->dest);
}

/* Make room for one more flow by closing a least recently active one. Among the oldest
 * few, a flow that never carried more than a handshake goes first: under a connection
 * flood, the sessions that matter are the ones doing work. */
static void flows_make_room(struct cap *c)
{
	while (c->flows.count >= c->flows.cap && c->flows.lru_head) {
		struct flow *old = c->flows.lru_head;
		struct flow *f = old;
		for (int i = 0; f && i < 16; i++, f = f->lru_next)
			if (f->bytes_to_server + f->bytes_to_client < 1024) {
				old = f;
				break;
			}
		if (old->stream)
			nids_free_tcp_stream(old->stream);
		old->stream = NULL;
		c->st.evicted++;
		flow_finish(c, old, "timeout", PROTO_END_TIMEOUT);
	}
}

static void on_established(struct cap *c, struct tcp_stream *a)
{
	struct flow_key k;
	flow_key_of(&a->addr, &k);
	struct flow *f = flows_find(&c->flows, &k);
	if (f) { /* re-picked up after a gap or a reset: same session goes on */
		f->stream = a;
		a->user = f;
		a->client.collect++;
		a->server.collect++;
		return;
	}
	const struct proto_decoder *d = decoder_for_port(c, a->addr.dest);
	if (!d && !c->cfg.probe_other_ports)
		return;
	/* A SYN from a database port to a client port: roles reversed, not ours. */
	if (!d && decoder_for_port(c, a->addr.source))
		return;
	flows_make_room(c);
	f = flows_add(&c->flows, &k);
	if (!f) {
		c->st.flows_failed++; /* out of memory: room was made above */
		return;
	}
	f->stream = a;
	f->first_ts = f->last_ts = c->now;
	f->midstream = (uint8_t)c->injecting;
	addr_text(c, a->addr.saddr, f->cli_ip, sizeof f->cli_ip);
	addr_text(c, a->addr.daddr, f->srv_ip, sizeof f->srv_ip);
	a->user = f;
	a->client.collect++;
	a->server.collect++;
	if (d)
		flow_start_decoding(c, f, d);
}

/* Unknown port: look at the first bytes of either direction. */
static int flow_probe(struct cap *c, struct flow *f, enum proto_dir dir, const uint8_t *buf,
		      size_t len)
{
	int maybe = 0;
	for (size_t i = 0; proto_registry[i]; i++) {
		enum proto_verdict v = proto_registry[i]->probe(dir, buf, len);
		if (v == PROTO_YES) {
			flow_start_decoding(c, f, proto_registry[i]);
			return 1;
		}
		maybe |= v == PROTO_MAYBE;
	}
	f->probe_bytes += (uint32_t)len;
	if (!maybe || f->probe_bytes > CAP_PROBE_LIMIT)
		f->ignored = 1;
	return 0;
}

static void on_data(struct cap *c, struct tcp_stream *a, struct flow *f)
{
	struct half_stream *h;
	enum proto_dir dir;
	if (a->server.count_new) {
		h = &a->server;
		dir = PROTO_TO_SERVER;
		f->bytes_to_server += (uint64_t)a->server.count_new;
	} else if (a->client.count_new) {
		h = &a->client;
		dir = PROTO_TO_CLIENT;
		f->bytes_to_client += (uint64_t)a->client.count_new;
	} else {
		return; /* urgent data only */
	}
	flows_touch(&c->flows, f, c->now);
	if (f->ignored || (f->df && decstage_stopped(f->df)))
		return; /* everything is consumed by default */
	const uint8_t *buf = (const uint8_t *)h->data;
	size_t len = (size_t)(h->count - h->offset);
	if (!f->dec) {
		if (!flow_probe(c, f, dir, buf, len)) {
			if (!f->ignored)
				nids_discard(a, 0); /* keep the bytes until we know */
			return;
		}
		if (!f->df)
			return;
	}
	/* All of it goes to the decoding stage, which holds any message head itself. */
	decstage_data(c->ds, f->df, dir, c->now, buf, len);
}

static void tcp_callback(struct tcp_stream *a, void **param)
{
	(void)param;
	struct cap *c = g_cap;
	struct flow *f = a->user;
	switch (a->nids_state) {
	case NIDS_JUST_EST:
		on_established(c, a);
		return;
	case NIDS_DATA:
		if (f)
			on_data(c, a, f);
		return;
	case NIDS_CLOSE:
	case NIDS_RESET:
	case NIDS_TIMED_OUT:
	case NIDS_EXITING:
		break;
	default:
		return;
	}
	if (!f)
		return;
	f->stream = NULL;
	a->user = NULL;
	if (a->nids_state == NIDS_CLOSE) {
		flow_finish(c, f, "close", PROTO_END_CLOSE);
	} else if (a->nids_state == NIDS_RESET) {
		flow_finish(c, f, "reset", PROTO_END_RESET);
	} else if (a->nids_state == NIDS_TIMED_OUT && a->client.state == 1 && a->server.state == 1) {
		/* Both halves still ESTABLISHED: libnids evicted it to make room (a SYN flood
		 * does this), not a close. Keep the session; the next segment picks it up. */
		c->st.nids_evictions++;
	} else if (a->nids_state == NIDS_TIMED_OUT) {
		flow_finish(c, f, "timeout", PROTO_END_TIMEOUT);
	} else {
		flow_finish(c, f, "eof", PROTO_END_EOF);
	}
}

/* ---- libnids hooks ---- */

static void nids_log(int type, int err, struct ip *iph, void *data)
{
	(void)iph;
	(void)data;
	if (!g_cap)
		return;
	g_cap->st.nids_warnings++;
	if (type == NIDS_WARN_TCP && err == NIDS_WARN_TCP_BIGQUEUE)
		g_cap->bigqueue = 1;
	if (type == NIDS_WARN_TCP && err == NIDS_WARN_TCP_TOOMUCH)
		g_cap->st.nids_too_many++;
}

/* libnids finds a stream by mkhash() % table size, and calls mkhash through the PLT, so
 * this definition (exported: capture/meson.build) replaces its own: a keyed byte loop of
 * twelve divisions, ~200 instructions a call and one or two calls a packet, 12-18 % of
 * the capture thread. Ours is the flow table's keyed hash, just as hard to flood. */
unsigned int mkhash(unsigned int src, unsigned short sport, unsigned int dest, unsigned short dport);
unsigned int mkhash(unsigned int src, unsigned short sport, unsigned int dest, unsigned short dport)
{
	/* libnids keeps the result in an int before taking it modulo its table size: a
	 * negative one would index before the table (its own stays below 0xff100f) */
	return flows_hash(src, sport, dest, dport) & 0x7fffffffu;
}

static void nids_nomem(char *where)
{
	/* libnids would crash on the next memcpy if we returned. */
	fprintf(stderr, "dbtap: out of memory in libnids (%s)\n", where ? where : "?");
	abort();
}

/* ---- per-packet work ---- */

static int parse_tcp(const uint8_t *p, size_t n, struct tcpinfo *t)
{
	struct rd r = rd_make(p, n);
	uint8_t vihl = rd_u8(&r);
	if ((vihl >> 4) != 4)
		return -1;
	size_t ihl = (size_t)(vihl & 15) * 4;
	rd_skip(&r, 1);
	uint16_t tot = rd_be16(&r);
	rd_skip(&r, 2);
	uint16_t frag = rd_be16(&r);
	uint8_t ttl = rd_u8(&r);
	uint8_t proto = rd_u8(&r);
	rd_skip(&r, 2);
	struct strv s = rd_bytes(&r, 4), d = rd_bytes(&r, 4);
	if (r.err || proto != 6 || ihl < 20 || (frag & 0x3fff) || tot < ihl || tot > n)
		return -1;
	memcpy(&t->saddr, s.p, 4);
	memcpy(&t->daddr, d.p, 4);
	t->ttl = ttl;
	r = rd_make(p + ihl, tot - ihl);
	t->sport = rd_be16(&r);
	t->dport = rd_be16(&r);
	t->seq = rd_be32(&r);
	t->ack = rd_be32(&r);
	uint8_t off = rd_u8(&r);
	t->flags = rd_u8(&r);
	size_t hl = (size_t)(off >> 4) * 4;
	if (r.err || hl < 20 || hl > tot - ihl)
		return -1;
	t->payload = (uint32_t)(tot - ihl - hl);
	t->off = (uint16_t)(ihl + hl);
	return 0;
}

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

/* Our flow for a packet's addresses and ports (host-order ports), either direction. On
 * every packet this replaces libnids' lookup: f->stream is cleared whenever libnids lets
 * the stream go, so a flow with a stream attached is one libnids tracks. */
static struct flow *flow_of(struct cap *c, uint32_t a_ip, uint16_t a_port, uint32_t b_ip,
			    uint16_t b_port)
{
	return flows_find_either(&c->flows, a_ip, htons(a_port), b_ip, htons(b_port));
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
static void maybe_pickup(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h)
{
	if (!t->payload || !(t->flags & 0x10) || (t->flags & 0x07))
		return;
	/* the usual packet: a flow we know whose stream libnids has */
	struct flow *f = flow_of(c, t->saddr, t->sport, t->daddr, t->dport);
	if (f && f->stream)
		return;
	int from_client;
	if (decoder_for_port(c, t->dport))
		from_client = 1;
	else if (decoder_for_port(c, t->sport))
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

static void tcp_packet(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h,
		       const uint8_t *p, size_t n);

/* Declare the bytes before the first held segment lost: free the libnids stream (stuck
 * behind the hole for good), tell the decoder, then start a new stream at the first held
 * segment and replay the held ones, so only the missing bytes are lost. */
static void declare_gap(struct cap *c, struct flow *f, struct tcp_stream *a, int d, uint32_t expect)
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
	a->user = NULL;
	f->stream = NULL;
	f->ooo_pkts[0] = f->ooo_pkts[1] = 0;
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
		if (parse_tcp(list->pkt, list->len, &t) == 0)
			tcp_packet(c, &t, &h, list->pkt, list->len);
		free(list);
		list = next;
	}
	c->replaying = was;
}

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

static void feed_nids(const struct pcap_pkthdr *h, const uint8_t *p, size_t n)
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

/* The flow of t with its libnids stream attached, or NULL. */
static struct flow *tracked(struct cap *c, const struct tcpinfo *t, struct tcp_stream **a)
{
	struct flow *f = flow_of(c, t->saddr, t->sport, t->daddr, t->dport);
	*a = f ? f->stream : NULL;
	return *a && (*a)->user == f ? f : NULL;
}

/* Hand libnids the held segments of direction d that are now in order (Linux's
 * tcp_ofo_queue): libnids trims what it already has, so earlier bytes win. */
static void drain_held(struct cap *c, const struct tcpinfo *t, int d)
{
	struct tcp_stream *a;
	struct flow *f;
	while ((f = tracked(c, t, &a)) && f->held[d]) {
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
			feed_nids(&ph, h->pkt, h->len);
		}
		free(h);
	}
}

/* A hole in direction d is declared lost when the receiver acknowledged past it (it got
 * bytes the capture missed: SPAN loss, never retransmitted), or, when the receiver has
 * said nothing since the hole opened (a one-way capture), after gap_timeout_ms or
 * gap_max_packets. While the receiver answers with duplicate ACKs it is waiting for the
 * retransmission as the server does, and so do we, bounded by memory (tn_hold). */
static int hole_lost(struct cap *c, struct flow *f, const struct tcp_stream *a, int d)
{
	uint32_t expect = tn_expect(a, d);
	if ((int32_t)(tn_receiver_ack(a, d) - expect) > 0 || c->bigqueue)
		return 1;
	if (f->tn.rcv_seen[d])
		return 0;
	return f->ooo_pkts[d] >= c->cfg.gap_max_packets ||
	       c->now - f->ooo_since[d] >= (ev_time)c->cfg.gap_timeout_ms * 1000;
}

/* One TCP segment: pick the flow up if needed, judge it as the server would (tcpnorm.c),
 * then libnids, in order, or our out-of-order queue. */
static void tcp_packet(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h,
		       const uint8_t *p, size_t n)
{
	maybe_pickup(c, t, h);
	c->bigqueue = 0;
	struct tcp_stream *a;
	struct flow *f = tracked(c, t, &a);
	if (!f) {
		feed_nids(h, p, n);
		return;
	}
	int d = (t->saddr == a->addr.saddr && t->sport == a->addr.source) ? 0 : 1;
	const char *why = NULL;
	enum tn_verdict v = tn_check(f, a, d, t, p, &why);
	if (v == TN_HOLD) {
		if (!f->held[d]) {
			f->ooo_since[d] = c->now;
			f->ooo_pkts[d] = 0;
			f->tn.rcv_seen[d] = 0;
		}
		if (f->ooo_pkts[d] < 255)
			f->ooo_pkts[d]++;
		if (tn_hold(&c->flows, (uint64_t)c->cfg.max_held_mb << 20, f, d, t, p, n, &why) != 0) {
			/* the queue is full: the bytes before it are lost, then this one again */
			tn_report(c, f, d, why);
			if (c->replaying || !f->held[d]) {
				c->st.held_segments_dropped++;
				return;
			}
			declare_gap(c, f, a, d, tn_expect(a, d));
			tcp_packet(c, t, h, p, n);
			return;
		}
	} else if (v == TN_PASS && t->payload && f->held[d]) {
		tn_compare_held(f, d, t, p, &why);
	}
	tn_report(c, f, d, why);
	if (v == TN_DROP) {
		c->st.normalised_drops++;
		return;
	}
	if (v == TN_PASS)
		feed_nids(h, p, n);
	if (!(f = tracked(c, t, &a)))
		return;
	trim_nids_buffers(a);
	if (f->held[d])
		drain_held(c, t, d);
	if (c->replaying || !(f = tracked(c, t, &a)))
		return;
	for (int x = 0; x < 2; x++) {
		if (!f->held[x]) {
			f->ooo_pkts[x] = 0;
			f->ooo_since[x] = 0;
			continue;
		}
		if (hole_lost(c, f, a, x)) {
			declare_gap(c, f, a, x, tn_expect(a, x));
			return;
		}
	}
}

static void sweep_idle(struct cap *c)
{
	ev_time limit = c->now - (ev_time)c->cfg.idle_timeout_s * 1000000;
	while (c->flows.lru_head && c->flows.lru_head->last_ts < limit) {
		struct flow *f = c->flows.lru_head;
		if (f->stream)
			nids_free_tcp_stream(f->stream);
		f->stream = NULL;
		c->st.idle_closed++;
		flow_finish(c, f, "idle", PROTO_END_TIMEOUT); /* the analyzer parks its session */
	}
}

static void show_progress(struct cap *c, int final)
{
	time_t now = time(NULL);
	if (!final && now == c->last_progress)
		return;
	c->last_progress = now;
	char pct[16] = "";
	if (c->cur_fp && c->cur_size > 0) {
		long pos = final ? c->cur_size : ftell(c->cur_fp);
		if (pos >= 0)
			snprintf(pct, sizeof pct, " %3d%%", (int)(pos * 100 / c->cur_size));
	}
	fprintf(stderr, "\rdbtap: %s:%s %llu packets, %llu MB, %llu sessions%s", c->cur_file ? c->cur_file : "",
		pct, (unsigned long long)c->st.packets, (unsigned long long)(c->st.bytes >> 20),
		(unsigned long long)c->st.streams, final ? "\n" : "");
}

void cap_set_hooks(struct cap *c, const struct cap_live_hooks *h)
{
	c->hooks = h;
	c->next_stats = c->next_watchdog = 0;
}

struct stats_box {
	const struct cap_live_hooks *h;
	struct cap_stats st;
};

static void stats_call(void *arg)
{
	struct stats_box *b = arg;
	b->h->on_stats(b->h->ctx, &b->st);
	free(b);
}

static void watchdog_call(void *arg)
{
	const struct cap_live_hooks *h = arg;
	h->on_watchdog(h->ctx);
}

/* Between read batches: the stats record and the watchdog ping are due by the wall
 * clock; both travel through the stages, so they arrive only while all of them move. */
static void periodic(struct cap *c)
{
	const struct cap_live_hooks *h = c->hooks;
	if (!h)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	int64_t iv = (int64_t)c->cfg.stats_interval_s * 1000000;
	if (h->on_stats && iv > 0) {
		if (!c->next_stats)
			c->next_stats = now + iv;
		else if (now >= c->next_stats) {
			c->next_stats = now + iv;
			struct stats_box *b = malloc(sizeof *b);
			if (b) {
				b->h = h;
				cap_get_stats(c, &b->st);
				decstage_call(c->ds, stats_call, b);
			}
		}
	}
	if (h->on_watchdog && h->watchdog_us > 0 && now >= c->next_watchdog) {
		c->next_watchdog = now + h->watchdog_us / 2;
		decstage_call(c->ds, watchdog_call, (void *)h);
	}
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct cap *c = (struct cap *)user;
	c->st.packets++;
	c->st.bytes += h->len;
	ev_time ts = tv_us(&h->ts);
	if (ts > c->now || c->now == 0)
		c->now = ts;
	if (!c->st.first_ts)
		c->st.first_ts = ts;
	c->st.last_ts = c->now;
	struct l2_ip ip;
	int rc = l2_strip(c->dlt, bytes, h->caplen, &ip);
	if (rc != L2_OK) {
		if (rc == L2_TRUNCATED)
			c->st.truncated++;
		else
			c->st.non_ip++;
		return;
	}
	const uint8_t *p = ip.ip;
	size_t n = ip.len;
	if (ip.version == 6) {
		size_t out = 0;
		rc = l2_v6_to_v4(c->v6, ip.ip, ip.len, c->v6buf, sizeof c->v6buf, &out);
		if (rc != V6_OK) {
			if (rc == V6_FRAGMENT)
				c->st.ipv6_fragments++;
			else if (rc == V6_MAP_FULL)
				c->st.v6_map_full++;
			else
				c->st.ipv6_skipped++;
			return;
		}
		p = c->v6buf;
		n = out;
	} else if (n >= 20) {
		/* the range that stands in for IPv6 addresses (reserved 240.0.0.0/4): a real
		 * packet from it would be stored under an IPv6 client's address */
		uint32_t src, dst;
		memcpy(&src, p + 12, 4);
		memcpy(&dst, p + 16, 4);
		if (v6map_is_synthetic(src) || v6map_is_synthetic(dst)) {
			c->st.ipv4_reserved++;
			return;
		}
	}
	struct tcpinfo t;
	if (parse_tcp(p, n, &t) == 0)
		tcp_packet(c, &t, h, p, n);
	else
		feed_nids(h, p, n);
	if (c->now - c->last_tick >= CAP_TICK_US) {
		c->last_tick = c->now;
		decstage_tick(c->ds, c->now);
		sweep_idle(c);
	}
	if (c->progress && (c->st.packets & 0xffff) == 0)
		show_progress(c, 0);
}

/* ---- set-up ---- */

int cap_parse_cidr(const char *cidr, uint32_t *net, uint32_t *mask)
{
	char buf[64];
	size_t n = cidr ? strlen(cidr) : sizeof buf;
	if (n >= sizeof buf)
		return -1;
	if (strcmp(cidr, "all") == 0) {
		*net = *mask = 0;
		return 0;
	}
	memcpy(buf, cidr, n + 1);
	long bits = 32;
	char *slash = strchr(buf, '/');
	if (slash) {
		/* strictly digits: atoi read "10.0.0.0/x" as /0, every address */
		char *end = NULL;
		*slash = 0;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		bits = strtol(slash + 1, &end, 10);
		if (*end || bits > 32)
			return -1;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*mask = bits ? htonl(0xffffffffu << (32 - bits)) : 0;
	*net = a.s_addr & *mask;
	return 0;
}

static int add_ctl(struct cap *c, const char *cidr, int action, char *err, size_t errlen)
{
	if (c->n_ctl >= (int)(sizeof c->ctl / sizeof c->ctl[0]))
		return 0;
	uint32_t net, mask;
	if (cap_parse_cidr(cidr, &net, &mask) != 0) {
		snprintf(err, errlen, "config: capture.checksum_bypass: '%s' is not an IPv4 CIDR", cidr);
		return -1;
	}
	c->ctl[c->n_ctl].netaddr = net;
	c->ctl[c->n_ctl].mask = mask;
	c->ctl[c->n_ctl].action = action;
	c->n_ctl++;
	return 0;
}

struct cap *cap_new(const struct cap_config *cfg, struct an *an, int live, char *err, size_t errlen)
{
	if (g_cap) {
		snprintf(err, errlen, "capture: only one engine per process");
		return NULL;
	}
	struct cap *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "capture: out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	c->live = live;
	/* Two CPUs: the decoders and the analyzer share the second thread (libpcap and libnids
	 * keep the first); three or more: each stage its own. On two, that split measured
	 * 7-30 % faster than decoding on the capture thread except for pgbench's simple
	 * protocol (12 % slower), and a third busy thread slower still (bench README). */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int threaded = cfg->analyzer_thread > 0 || (cfg->analyzer_thread < 0 && ncpu > 2);
	c->pipe = anpipe_new(an, threaded);
	if (!c->pipe && threaded)
		c->pipe = anpipe_new(an, 0); /* no thread: analyse inline */
	threaded = cfg->decoder_thread > 0 || (cfg->decoder_thread < 0 && ncpu > 1);
	size_t held_max = (size_t)cfg->max_held_mb << 20;
	c->ds = c->pipe ? decstage_new(c->pipe, threaded, held_max) : NULL;
	if (!c->ds && c->pipe && threaded)
		c->ds = decstage_new(c->pipe, 0, held_max); /* no thread: decode inline */
	if (c->ds && cfg->n_tls_keylog > 0 &&
	    decstage_tls(c->ds, cfg->tls_keylog, cfg->n_tls_keylog, cfg->tls_key_wait_s, err, errlen) < 0)
		goto fail;
	if (!c->ds || flows_init(&c->flows, (uint32_t)cfg->max_flows) != 0 ||
	    !(c->v6 = v6map_new((uint32_t)cfg->v6_map_size))) {
		snprintf(err, errlen, "capture: out of memory");
		goto fail;
	}
	/* Synthetic IPv6 stand-ins never carry valid TCP checksums. */
	add_ctl(c, "240.0.0.0/4", NIDS_DONT_CHKSUM, err, errlen);
	if (cfg->n_checksum_bypass >= 0) {
		for (int i = 0; i < cfg->n_checksum_bypass; i++)
			if (add_ctl(c, cfg->checksum_bypass[i], NIDS_DONT_CHKSUM, err, errlen) != 0)
				goto fail;
	} else if (!live) {
		/* Files: bad checksums are nearly always capture-host offload artefacts. */
		add_ctl(c, "all", NIDS_DONT_CHKSUM, err, errlen);
	} else {
		add_ctl(c, "127.0.0.0/8", NIDS_DONT_CHKSUM, err, errlen);
		struct ifaddrs *ifa = NULL;
		if (getifaddrs(&ifa) == 0) {
			for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
				if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
					continue;
				char s[INET_ADDRSTRLEN];
				inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, s,
					  sizeof s);
				add_ctl(c, s, NIDS_DONT_CHKSUM, err, errlen);
			}
			freeifaddrs(ifa);
		}
	}
	c->dead = pcap_open_dead(DLT_RAW, CAP_SNAPLEN);
	if (!c->dead) {
		snprintf(err, errlen, "capture: pcap_open_dead failed");
		goto fail;
	}
	nids_params.pcap_desc = c->dead;
	nids_params.filename = NULL;
	nids_params.device = NULL;
	/* libnids holds 3/4 of this: room for every flow of ours plus as many half-open
	 * handshakes, so bare SYNs evict each other before they evict sessions. */
	nids_params.n_tcp_streams = cfg->max_flows * 2 + 16;
	nids_params.scan_num_hosts = 0;
	nids_params.multiproc = 0;
	nids_params.tcp_workarounds = 1;
	nids_params.syslog = nids_log;
	nids_params.no_mem = nids_nomem;
	nids_params.pcap_filter = NULL;
	g_cap = c;
	if (!nids_init()) {
		snprintf(err, errlen, "capture: libnids: %s", nids_errbuf);
		g_cap = NULL;
		goto fail;
	}
	nids_register_chksum_ctl(c->ctl, c->n_ctl);
	/* libnids takes the callback as void *; a union avoids a function/object pointer cast. */
	union {
		void (*fn)(struct tcp_stream *, void **);
		void *ptr;
	} cb = { .fn = tcp_callback };
	nids_register_tcp(cb.ptr);
	return c;
fail:
	decstage_free(c->ds, NULL);
	anpipe_free(c->pipe);
	if (c->dead)
		pcap_close(c->dead);
	flows_free(&c->flows);
	v6map_free(c->v6);
	free(c);
	return NULL;
}

/* Join a PACKET_FANOUT group in hash mode (after the filter is set: the kernel picks the
 * member first, then runs that member's filter, so every member must have the same one). */
static int join_fanout(pcap_t *p, int group, const char *iface, char *err, size_t errlen)
{
	if (group <= 0)
		return 0;
#ifdef PACKET_FANOUT
	int fd = pcap_fileno(p);
	uint32_t val = (uint32_t)(group & 0xffff) |
		       (uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16;
	if (fd >= 0 && setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof val) == 0)
		return 0;
	snprintf(err, errlen, "%s: cannot join fanout group %d: %s", iface, group,
		 fd < 0 ? "no socket" : strerror(errno));
#else
	(void)p;
	snprintf(err, errlen, "%s: fanout groups need Linux (PACKET_FANOUT)", iface);
#endif
	return -1;
}

static int set_filter(pcap_t *p, const char *bpf, const char *what, char *err, size_t errlen)
{
	if (!bpf || !*bpf)
		return 0;
	struct bpf_program prog;
	if (pcap_compile(p, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s: bad filter '%s': %s", what, bpf, pcap_geterr(p));
		return CAP_EUSAGE;
	}
	int rc = pcap_setfilter(p, &prog);
	pcap_freecode(&prog);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot set filter: %s", what, pcap_geterr(p));
		return -1;
	}
	return 0;
}

static int read_handle(struct cap *c, pcap_t *p, const char *name, const char *bpf, int progress,
		       char *err, size_t errlen)
{
	c->dlt = pcap_datalink(p);
	if (!l2_supported(c->dlt)) {
		const char *dn = pcap_datalink_val_to_name(c->dlt);
		snprintf(err, errlen, "%s: unsupported link type %s (%d)", name, dn ? dn : "?", c->dlt);
		pcap_close(p);
		return -1;
	}
	int frc = set_filter(p, bpf, name, err, errlen);
	if (frc != 0) {
		pcap_close(p);
		return frc;
	}
	c->cur_file = name;
	c->progress = progress;
	c->cur_fp = pcap_file(p);
	c->cur_size = 0;
	struct stat sb;
	if (c->cur_fp && fstat(fileno(c->cur_fp), &sb) == 0 && S_ISREG(sb.st_mode))
		c->cur_size = (long)sb.st_size;
	int rc = 0;
	while (!g_stop) {
		int n = pcap_dispatch(p, 4096, on_packet, (u_char *)c);
		if (n == 0)
			break; /* end of file */
		if (n == PCAP_ERROR) {
			snprintf(err, errlen, "%s: %s", name, pcap_geterr(p));
			rc = -1;
			break;
		}
		if (n == PCAP_ERROR_BREAK)
			break;
		periodic(c);
	}
	if (progress)
		show_progress(c, 1);
	c->cur_file = NULL;
	c->cur_fp = NULL;
	pcap_close(p);
	return rc;
}

FILE *cap_open_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* a 1 MiB buffer (4 KiB by default) and no stdio locking: libpcap reads it with two
	 * freads per packet, and only this thread touches it */
	setvbuf(fp, NULL, _IOFBF, 1u << 20);
	__fsetlocking(fp, FSETLOCKING_BYCALLER);
	return fp;
}

int cap_read_fp(struct cap *c, FILE *fp, const char *name, const char *bpf, int progress, char *err,
		size_t errlen)
{
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, eb);
	if (!p) {
		snprintf(err, errlen, "%s: %s", name, eb[0] ? eb : "cannot read");
		fclose(fp);
		return CAP_ERR;
	}
	return read_handle(c, p, name, bpf, progress, err, errlen);
}

int cap_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "-Z %s: no such user", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "-Z %s: cannot drop privileges: %s", user, strerror(errno));
		return -1;
	}
	/* setuid to non-root clears every capability; make sure it cannot come back. */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "-Z %s: privileges were not dropped", user);
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}

/* Without -f: only TCP (all of it when probing other ports, else the database ports),
 * in the nested form that also matches one or two VLAN tags (a flat `vlan and ...`
 * shifts offsets for the rest of the expression; see NOTES-libnids.md). */
void cap_default_filter(const struct cap_config *cfg, char *buf, size_t len)
{
	char p[1024] = "tcp";
	if (!cfg->probe_other_ports) {
		size_t n = 0;
		p[0] = 0;
		for (int d = 0; d < PROTO_MAX && n < sizeof p; d++)
			for (int i = 0; i < cfg->ports[d].n && n < sizeof p; i++)
				n += (size_t)snprintf(p + n, sizeof p - n, "%stcp port %d", n ? " or " : "",
						      cfg->ports[d].port[i]);
		if (!p[0])
			snprintf(p, sizeof p, "tcp");
	}
	snprintf(buf, len, "(%s) or (vlan and ((%s) or (vlan and (%s))))", p, p, p);
}

int cap_live(struct cap *c, const char *iface, const char *bpf, const char *drop_user,
	     const struct cap_live_hooks *hooks, char *err, size_t errlen)
{
	char deflt[4096];
	if (!bpf) {
		cap_default_filter(&c->cfg, deflt, sizeof deflt);
		bpf = deflt;
	}
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(iface, eb);
	if (!p) {
		snprintf(err, errlen, "%s: %s", iface, eb);
		return -1;
	}
	pcap_set_snaplen(p, CAP_SNAPLEN);
	pcap_set_promisc(p, 1);
	pcap_set_timeout(p, 100);
	pcap_set_buffer_size(p, c->cfg.kernel_buffer_mb * 1024 * 1024);
	int rc = pcap_activate(p);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	c->dlt = pcap_datalink(p);
	if (!l2_supported(c->dlt)) {
		snprintf(err, errlen, "%s: unsupported link type %d", iface, c->dlt);
		pcap_close(p);
		return -1;
	}
	int frc = set_filter(p, bpf, iface, err, errlen);
	if (frc != 0) {
		pcap_close(p);
		return frc;
	}
	if (join_fanout(p, c->cfg.fanout_group, iface, err, errlen) != 0 ||
	    pcap_setnonblock(p, 1, eb) != 0 ||
	    (drop_user && cap_drop_privileges(drop_user, err, errlen) != 0)) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", iface, eb);
		pcap_close(p);
		return -1;
	}
	int fd = pcap_get_selectable_fd(p);
	if (hooks) {
		cap_set_hooks(c, hooks);
		if (hooks->on_ready)
			hooks->on_ready(hooks->ctx);
	}
	rc = 0;
	while (!g_stop) {
		if (g_hup) {
			g_hup = 0;
			if (hooks && hooks->on_hup) /* outputs are the analyzer's: reopen in its order */
				decstage_call(c->ds, hooks->on_hup, hooks->ctx);
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, 200);
		if (pr < 0 && errno != EINTR) {
			snprintf(err, errlen, "%s: poll: %s", iface, strerror(errno));
			rc = -1;
			break;
		}
		int n = pcap_dispatch(p, 10000, on_packet, (u_char *)c);
		decstage_flush(c->ds); /* live: hand each batch over at once */
		if (n == PCAP_ERROR) {
			snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
			rc = -1;
			break;
		}
		/* Without traffic, packet time stands still: advance it with the clock so
		 * windows and idle sweeps still run. */
		if (n == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ev_time wall = (ev_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			if (wall > c->now) {
				c->now = wall;
				if (c->now - c->last_tick >= CAP_TICK_US) {
					c->last_tick = c->now;
					decstage_tick(c->ds, c->now);
					sweep_idle(c);
				}
			}
		}
		struct pcap_stat ps;
		if (pcap_stats(p, &ps) == 0)
			c->st.kernel_drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
		periodic(c);
	}
	pcap_close(p);
	return rc;
}

void cap_finish(struct cap *c)
{
	if (!c)
		return;
	/* A hole still open at the end will never be filled: skip it so the segments held
	 * behind it are decoded before the flows close. Replaying them can open, evict or
	 * close any flow, so walk a snapshot of keys and look each one up again. */
	struct flow_key *keys = c->flows.count ? calloc(c->flows.count, sizeof(*keys)) : NULL;
	size_t nkeys = 0;
	for (struct flow *f = c->flows.lru_head; keys && f && nkeys < c->flows.count; f = f->lru_next)
		if (f->stream && (f->held[0] || f->held[1]))
			keys[nkeys++] = f->key;
	for (size_t i = 0; i < nkeys; i++) {
		struct flow *f = flows_find(&c->flows, &keys[i]);
		struct tcp_stream *a = f ? f->stream : NULL;
		if (!a)
			continue;
		/* each round skips one hole; what waits behind the next is held again */
		for (int round = 0; round < 64 && f && (a = f->stream) && (f->held[0] || f->held[1]); round++) {
			int d = f->held[0] ? 0 : 1;
			declare_gap(c, f, a, d, tn_expect(a, d));
			f = flows_find(&c->flows, &keys[i]);
		}
	}
	free(keys);
	/* Close in our order (least recently active first), not in the order of libnids'
	 * randomly keyed hash at nids_exit(): the same file then gives the same row ids. */
	while (c->flows.lru_head)
		flow_finish(c, c->flows.lru_head, "eof", PROTO_END_EOF);
	nids_exit(); /* EXITING for the streams left: none is ours any more */
	decstage_tick(c->ds, c->now);
	decstage_free(c->ds, &c->dstats);
	c->ds = NULL;
	anpipe_stop(c->pipe);
}

void cap_free(struct cap *c)
{
	if (!c)
		return;
	decstage_free(c->ds, NULL);
	anpipe_free(c->pipe);
	flows_free(&c->flows);
	v6map_free(c->v6);
	if (c->dead)
		pcap_close(c->dead);
	if (g_cap == c)
		g_cap = NULL;
	free(c);
}

void cap_get_stats(const struct cap *c, struct cap_stats *st)
{
	*st = c->st;
	st->oversize += c->dstats.oversize;
	st->held_dropped += c->dstats.held_dropped;
	st->lost_bytes += c->dstats.lost_bytes;
	st->sensor_drops += st->evicted + st->oversize + st->v6_map_full + st->held_dropped +
			    st->held_segments_dropped + st->flows_failed;
	st->flows_open = c->flows.count;
	st->decoder_queue_bytes = decstage_queued(c->ds);
	st->analyzer_queue_bytes = anpipe_queued(c->pipe);
}

char *cap_stats_json(const struct cap *c)
{
	char *s = malloc(2048);
	if (!s)
		return NULL;
	struct cap_stats st;
	cap_get_stats(c, &st);
	const struct cap_stats *t = &st;
	const struct proto_stats *ps = &c->dstats.p;
	snprintf(s, 2048,
		 "{\"non_ip\":%llu,\"truncated\":%llu,\"ipv4_reserved\":%llu,\"ipv6_fragments\":%llu,\"ipv6_skipped\":%llu,"
		 "\"v6_map_full\":%llu,\"midstream_pickups\":%llu,\"gaps\":%llu,\"lost_bytes\":%llu,"
		 "\"evicted\":%llu,\"nids_evictions\":%llu,\"idle_closed\":%llu,\"oversize\":%llu,\"nids_warnings\":%llu,"
		 "\"held_dropped\":%llu,\"held_segments_dropped\":%llu,\"flows_failed\":%llu,"
		 "\"decoder_stmt_evictions\":%llu,\"decoder_portal_evictions\":%llu,"
		 "\"decoder_params_dropped\":%llu,\"decoder_pending_dropped\":%llu,"
		 "\"normalised_drops\":%llu,\"evasion_flows\":%llu}",
		 (unsigned long long)t->non_ip, (unsigned long long)t->truncated, (unsigned long long)t->ipv4_reserved,
		 (unsigned long long)t->ipv6_fragments, (unsigned long long)t->ipv6_skipped,
		 (unsigned long long)t->v6_map_full, (unsigned long long)t->midstream_pickups,
		 (unsigned long long)t->gaps, (unsigned long long)t->lost_bytes,
		 (unsigned long long)t->evicted, (unsigned long long)t->nids_evictions,
		 (unsigned long long)t->idle_closed,
		 (unsigned long long)t->oversize, (unsigned long long)t->nids_warnings,
		 (unsigned long long)t->held_dropped, (unsigned long long)t->held_segments_dropped,
		 (unsigned long long)t->flows_failed,
		 (unsigned long long)ps->stmt_evictions, (unsigned long long)ps->portal_evictions,
		 (unsigned long long)ps->params_dropped, (unsigned long long)ps->pending_dropped,
		 (unsigned long long)t->normalised_drops, (unsigned long long)t->evasion_flows);
	size_t l = strlen(s); /* TLS decryption counters as one more object */
	decstage_tls_json(&c->dstats, s + l - 1, 2048 - (l - 1));
	return s;
}
