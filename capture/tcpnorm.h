/* Receiver-faithful TCP normalisation in front of libnids (issue #20 item 3).
 *
 * libnids reassembles by its own rules (NOTES-libnids.md §6): it accepts data without ACK
 * and data acknowledging bytes never sent, takes any in-window RST as the end, keeps the
 * first copy in sequence when segments overlap, and has no idea of TTL. A Linux server
 * does otherwise, so an attacker who knows the sensor can make it store what the server
 * never executed. Each segment of a flow libnids tracks therefore passes tn_check() first
 * and reaches libnids only when the server (Linux by default) would accept it; segments
 * beyond a hole wait in our own out-of-order queue (f->held), ordered and trimmed by
 * Linux's tcp_data_queue_ofo() rules (tn_hold), or another OS's overlap policy chosen per
 * server (capture.host_os_policy), and go to libnids in order. The rules, and why, are
 * written at each one in tcpnorm.c. */
#ifndef DBTAP_TCPNORM_H
#define DBTAP_TCPNORM_H

#include <stddef.h>
#include <stdint.h>

#include "flows.h"

struct tcp_stream;

/* One parsed IPv4/TCP segment. */
struct tcpinfo {
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint8_t ttl;
	uint16_t win; /* the window field, unscaled */
	uint16_t off; /* payload offset in the packet */
	uint32_t payload;
	uint32_t tsval; /* the timestamp option's TSval, when has_ts */
	uint8_t has_ts;
};

#define TN_FIN 0x01
#define TN_SYN 0x02
#define TN_RST 0x04
#define TN_ACK 0x10

enum tn_verdict {
	TN_PASS, /* hand it to libnids */
	TN_DROP, /* the server would discard it: libnids must not see it */
	TN_HOLD	 /* data beyond a hole: queue it (tn_hold) */
};

/* The next sequence number the receiver of direction d (0: bytes to the server) takes in
 * order, as libnids has reassembled it. */
uint32_t tn_expect(const struct tcp_stream *a, int d);
/* The last acknowledgement the receiver of direction d sent (its rcv_nxt then). */
uint32_t tn_receiver_ack(const struct tcp_stream *a, int d);

/* Judge a segment in direction d of flow f (libnids stream a). *anomaly is set to a
 * static text when the segment looks like evasion (the caller reports it once per flow). */
enum tn_verdict tn_check(struct flow *f, const struct tcp_stream *a, int d, const struct tcpinfo *t,
			 const uint8_t *pkt, const char **anomaly);

/* Queue an out-of-order segment (whole packet pkt, n bytes) in f->held[d] as Linux's
 * out-of-order queue would keep it. 0 when queued or dropped as covered; -1 when it would
 * pass the per-flow cap or the all-flows budget (nothing queued: the caller declares the
 * hole lost, then tries again). *anomaly is set when it overlaps different bytes. */
int tn_hold(struct flow_table *ft, uint64_t budget, struct flow *f, int d, const struct tcpinfo *t,
	    const uint8_t *pkt, size_t n, const char **anomaly);

/* An in-order segment [seq, seq+len) (whole packet pkt, n bytes) about to go to libnids:
 * *anomaly when it overlaps queued bytes that differ. Linux keeps the in-order copy, as
 * libnids will; where the server's policy keeps queued bytes instead (f->tn.os), out (n
 * bytes) gets a copy of pkt holding them and 1 is returned: feed out, not pkt. */
int tn_compare_held(const struct flow *f, int d, const struct tcpinfo *t, const uint8_t *pkt, size_t n,
		    uint8_t *out, const char **anomaly);

/* The Internet checksum (RFC 1071): words of b added to sum, and the folded complement. */
uint32_t tn_csum_add(uint32_t sum, const uint8_t *b, size_t n);
uint16_t tn_csum_fold(uint32_t sum);
/* Set the TCP checksum of an IPv4 packet (n bytes) whose bytes were made or changed here:
 * libnids checks it where checksum_bypass does not cover the sender. */
void tn_tcp_csum(uint8_t *pkt, size_t n);

/* Does a server of policy os (enum cap_os) keep the new copy [s, e) over the one it
 * queued earlier, [os_, oe), where they overlap? */
int tn_new_wins(int os, uint32_t s, uint32_t e, uint32_t os_, uint32_t oe);

#endif
