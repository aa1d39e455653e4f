/* Inside the capture engine: the engine's state and the calls between its files, one job
 * each (ARCHITECTURE.md): cap.c set-up and teardown, cap_packet.c one packet to a TCP
 * segment, cap_segment.c one segment through tcpnorm to libnids, cap_gap.c holes,
 * cap_pickup.c mid-stream pickup, cap_nids.c libnids' callbacks and the flows they drive,
 * cap_read.c files, cap_live.c interfaces, cap_hooks.c periodic stats and watchdog,
 * cap_priv.c -Z. Not for use outside capture/. */
#ifndef DBTAP_CAP_INT_H
#define DBTAP_CAP_INT_H

#include <arpa/inet.h>
#include <nids.h>
#include <pcap.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "anpipe.h"
#include "cap.h"
#include "decstage.h"
#include "flows.h"
#include "l2.h"
#include "tcpnorm.h"

#define CAP_SNAPLEN 262144
#define CAP_PROBE_LIMIT 4096 /* bytes an unknown-port flow may show before we give up on it */
#define CAP_TICK_US 1000000  /* analyzer tick and idle sweep period, packet time */
#define CAP_RESETS 64	     /* flows ended by a reset whose next segments wait (cap_pickup.c) */
#define CAP_RTO_MAX_MS 120000 /* Linux's TCP_RTO_MAX: the longest wait between retransmissions */

struct cap_wait_pkt; /* cap_pickup.c */

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
	int replaying; /* capgap_declare is feeding held segments again */
	struct cap_reset {
		struct flow_key key;
		ev_time ts;		  /* of the reset; 0: free */
		ev_time since;		  /* of the first segment waiting */
		uint32_t wait_ip;	  /* who sent the waiting segments */
		uint16_t wait_port;	  /* (network order) */
		uint32_t wait_bytes;
		struct cap_wait_pkt *wait; /* newest first */
	} resets[CAP_RESETS];		  /* ring, see cap_pickup.c */
	unsigned next_reset, n_waiting;
	struct nids_chksum_ctl ctl[CAP_MAX_CIDRS + 4];
	int n_ctl;
	uint8_t v6buf[65536 + 64];
	uint8_t patchbuf[65536 + 64]; /* an in-order segment with a queued copy's bytes */
	const char *cur_file;
	FILE *cur_fp; /* for progress: position in the file being read */
	long cur_size;
	time_t last_progress;
	const struct cap_live_hooks *hooks; /* stats and watchdog (main.c) */
	int64_t next_stats, next_watchdog;  /* CLOCK_MONOTONIC, microseconds */
	int progress;
};

/* cap.c */
extern struct cap *cap_current; /* libnids callbacks carry no context */
extern volatile sig_atomic_t cap_stop_req, cap_hup_req;
/* The decoder a server port is configured for, or NULL. */
const struct proto_decoder *cap_decoder_for_port(const struct cap *c, int port);

/* Our flow for a packet's addresses and ports (host-order ports), either direction. On
 * every packet this replaces libnids' lookup: f->stream is cleared whenever libnids lets
 * the stream go, so a flow with a stream attached is one libnids tracks. */
static inline struct flow *cap_flow_of(struct cap *c, uint32_t a_ip, uint16_t a_port, uint32_t b_ip,
				       uint16_t b_port)
{
	return flows_find_either(&c->flows, a_ip, htons(a_port), b_ip, htons(b_port));
}

/* cap_nids.c */
void capnids_tcp_callback(struct tcp_stream *a, void **param);
void capnids_log(int type, int err, struct ip *iph, void *data);
void capnids_nomem(char *where);
/* Tell the decoder and the analyzer the flow ended, and forget it. */
void capnids_flow_finish(struct cap *c, struct flow *f, const char *reason, enum proto_end why);

/* cap_packet.c */
int cappkt_parse_tcp(const uint8_t *p, size_t n, struct tcpinfo *t);
void cappkt_on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes);
void cappkt_sweep_idle(struct cap *c);

/* cap_segment.c */
void capseg_packet(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h,
		   const uint8_t *p, size_t n);
void capseg_feed_nids(const struct pcap_pkthdr *h, const uint8_t *p, size_t n);
/* The flow of t with its libnids stream attached, or NULL. */
struct flow *capseg_tracked(struct cap *c, const struct tcpinfo *t, struct tcp_stream **a);

/* cap_gap.c */
void capgap_declare(struct cap *c, struct flow *f, struct tcp_stream *a, int d, uint32_t expect);
void capgap_drain(struct cap *c, const struct tcpinfo *t, int d);
int capgap_hole_lost(struct cap *c, struct flow *f, const struct tcp_stream *a, int d);
/* End of capture: skip every hole still open so what waits behind it is decoded. */
void capgap_flush_all(struct cap *c);
/* Once a tick: skip the holes of one-way flows whose sender stopped retransmitting. */
void capgap_sweep(struct cap *c);
/* The flow closes (idle): skip its holes so what waits behind them is decoded first. */
void capgap_flush_flow(struct cap *c, const struct flow_key *k);

/* cap_pickup.c */
/* 1 when the segment was taken (it waits for the other side's answer after a reset). */
int cappick_maybe(struct cap *c, const struct tcpinfo *t, const struct pcap_pkthdr *h, const uint8_t *p,
		  size_t n);
/* A flow ended by a reset libnids took (an exact one: tcpnorm.c drops the others), and a
 * flow established by a handshake again: see cap_pickup.c. */
void cappick_reset(struct cap *c, const struct flow_key *k);
void cappick_established(struct cap *c, const struct flow_key *k);
/* End of capture: what still waits is picked up (release) or freed (free). */
void cappick_release_all(struct cap *c);
void cappick_free(struct cap *c);

/* cap_read.c */
int capread_set_filter(pcap_t *p, const char *bpf, const char *what, char *err, size_t errlen);
/* The progress line on stderr (-v on files): at most once a second unless final. */
void capread_show_progress(struct cap *c, int final);

/* cap_hooks.c */
void caphooks_periodic(struct cap *c);

#endif
