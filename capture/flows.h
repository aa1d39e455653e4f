/* The capture flow table: our own record of each database TCP flow, keyed by its
 * 4-tuple and independent of libnids' stream (which we may free on a gap and re-pick up).
 * Bounded: at most `cap` flows; the least recently active is evicted first. */
#ifndef DBTAP_FLOWS_H
#define DBTAP_FLOWS_H

#include <stdint.h>

#include "an.h"
#include "proto.h"

struct dflow;

struct flow_key {
	uint32_t cli_ip, srv_ip; /* network order; IPv6 flows use synthetic addresses */
	uint16_t cli_port, srv_port;
};

struct flow {
	struct flow_key key;
	struct flow *hnext;	     /* hash chain */
	struct flow *lru_prev, *lru_next;
	void *stream;		     /* libnids tcp_stream while attached */
	const struct proto_decoder *dec; /* NULL while probing */
	struct dflow *df;		 /* its decoder in the decoding stage */
	ev_time first_ts, last_ts;
	uint64_t bytes_to_server, bytes_to_client;
	uint64_t gaps, lost_bytes;
	uint32_t probe_bytes;
	uint8_t midstream, ignored;
	ev_time ooo_since[2];	     /* when the hole in each direction opened */
	ev_time seen_ts;	     /* its last segment (last_ts: its last delivered bytes) */
	/* Copies of segments queued behind a hole, replayed after the gap is declared so
	 * only the missing bytes are lost. Bounded by FLOW_HELD_MAX bytes per direction. */
	struct held_seg *held[2];
	uint32_t held_bytes[2];
	/* tcpnorm.c's view of each direction (0: client to server) */
	struct {
		uint32_t snd_end[2];  /* highest sequence sent + 1 (SYN/FIN count) */
		uint8_t end_set[2];
		uint8_t ttl[2], ttl_set[2]; /* the flow's first TTL each way */
		uint32_t una[2], max_win[2]; /* each sender's last ACK, largest window (0: none yet) */
		uint8_t rcv_seen[2];	    /* the receiver spoke since the hole in d opened */
		/* a hole skipped as lost while the receiver had not acknowledged past it: data
		 * for it arriving later may run on the server though dbtap skipped it */
		uint32_t skip_from[2], skip_to[2];
		uint8_t skip_set[2];
		uint32_t ts_recent[2];	    /* PAWS: the last TSval taken in order, each way */
		uint8_t ts_set[2];
		uint8_t ts_off;		    /* a SYN without the timestamp option: no PAWS */
		uint8_t flagged;	    /* evasion reported (once per flow) */
		uint8_t os;		    /* the server's reassembly policy (enum cap_os) */
	} tn;
	char cli_ip[46], srv_ip[46];
};

#define FLOW_HELD_MAX (256u << 10)

struct held_seg {
	struct held_seg *next;
	uint32_t seq;
	uint32_t len;  /* of pkt: a whole IPv4 packet as fed to libnids */
	uint32_t dlen; /* payload bytes, at pkt + doff */
	uint16_t doff;
	uint8_t fin;
	uint8_t cont; /* merged into the segment before it, as Linux coalesces adjacent ones */
	uint8_t pkt[];
};

struct flow_table;
void flow_held_clear(struct flow_table *t, struct flow *f, int dir);

struct flow_table {
	struct flow **bucket;
	uint32_t nbuckets, count, cap;
	struct flow *lru_head, *lru_tail; /* head = least recently active */
	struct flow *last;		  /* the last one found (cleared when removed) */
	uint64_t held;			  /* bytes of held segments, all flows */
};

/* The 4-tuple hash of the flow table and of libnids' stream table (cap_nids.c gives it to
 * libnids as its mkhash). Keyed by a random per-process key, so that nobody on the wire
 * can choose addresses and ports that pile into one bucket (hash flooding); fast, not
 * cryptographic: the key never leaves the process and buckets are not observable. */
extern uint64_t flows_hash_key[2];
void flows_hash_init(void); /* sets the key once per process (flows_init calls it) */

static inline uint64_t flows_fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* The same for both directions of a flow (the endpoints are put in order first): a
 * packet finds its flow with one hash and one bucket, whichever way it goes. */
static inline uint32_t flows_hash_keyed(const uint64_t key[2], uint32_t a_ip, uint16_t a_port,
					uint32_t b_ip, uint16_t b_port)
{
	uint64_t a = (uint64_t)a_ip << 16 | a_port, b = (uint64_t)b_ip << 16 | b_port;
	uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
	uint64_t h = flows_fmix64(lo ^ key[0]);
	h = flows_fmix64(h ^ hi ^ key[1]);
	return (uint32_t)h;
}

static inline uint32_t flows_hash(uint32_t a_ip, uint16_t a_port, uint32_t b_ip, uint16_t b_port)
{
	return flows_hash_keyed(flows_hash_key, a_ip, a_port, b_ip, b_port);
}

int flows_init(struct flow_table *t, uint32_t cap);
void flows_free(struct flow_table *t);
struct flow *flows_find(struct flow_table *t, const struct flow_key *k);
/* The flow of a packet from a to b (network-order ports), whichever of them is the client. */
struct flow *flows_find_either(struct flow_table *t, uint32_t a_ip, uint16_t a_port, uint32_t b_ip,
			       uint16_t b_port);
/* A new zeroed flow linked at the LRU tail; NULL when full (caller evicts first) or ENOMEM. */
struct flow *flows_add(struct flow_table *t, const struct flow_key *k);
void flows_remove(struct flow_table *t, struct flow *f); /* unlink and free */
void flows_touch(struct flow_table *t, struct flow *f, ev_time ts);

#endif
