/* Link-layer shim: strip every L2 header libnids cannot (SLL2, LOOP, IPV4, QinQ, stacked
 * VLANs) and translate IPv6/TCP into IPv4 with synthetic addresses, because libnids only
 * reassembles IPv4. Pure functions over untrusted bytes, unit-tested on their own. */
#ifndef DBTAP_L2_H
#define DBTAP_L2_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* DLT values we accept (from pcap/dlt.h, repeated so this header needs no pcap.h). */
#define L2_DLT_NULL 0
#define L2_DLT_EN10MB 1
#define L2_DLT_RAW 12
#define L2_DLT_RAW_BSD 14
#define L2_DLT_LOOP 108
#define L2_DLT_LINUX_SLL 113
#define L2_DLT_IPV4 228
#define L2_DLT_IPV6 229
#define L2_DLT_LINUX_SLL2 276

#define L2_MAX_VLAN_TAGS 8

enum l2_status {
	L2_OK = 0,
	L2_NOT_IP = -1,	   /* ARP, LLDP, unknown ethertype */
	L2_TRUNCATED = -2, /* shorter than its own headers */
	L2_UNSUPPORTED_LINK = -3,
};

/* Where the IP header starts; version is 4 or 6. */
struct l2_ip {
	const uint8_t *ip;
	size_t len;
	int version;
	int vlan_tags;
};

int l2_supported(int dlt);
int l2_strip(int dlt, const uint8_t *pkt, size_t caplen, struct l2_ip *out);

/* IPv6 address <-> synthetic IPv4 (240.0.0.0/4, never on the wire) map, bounded. */
struct v6map;
struct v6map *v6map_new(uint32_t cap);
void v6map_free(struct v6map *m);
/* Synthetic address in network byte order, or 0 when the map is full. */
uint32_t v6map_get(struct v6map *m, const uint8_t addr[16]);
/* The real address for a synthetic one; NULL if it is not ours. */
const uint8_t *v6map_lookup(const struct v6map *m, uint32_t synth_be);
/* Inline: the capture asks it of both addresses of every IPv4 packet. */
#define V6_SYNTH_BASE 0xF0000000u /* 240.0.0.0/4: reserved, never routed */
static inline int v6map_is_synthetic(uint32_t addr_be)
{
	uint8_t b[4]; /* the first octet in network order carries the /4 */
	memcpy(b, &addr_be, 4);
	return ((uint32_t)b[0] << 24 & 0xF0000000u) == V6_SYNTH_BASE;
}

enum v6_status {
	V6_OK = 0,
	V6_NOT_TCP = -1,
	V6_FRAGMENT = -2, /* counted and skipped */
	V6_TOO_BIG = -3,  /* payload does not fit an IPv4 datagram */
	V6_MAP_FULL = -4,
	V6_MALFORMED = -5,
};

/* Rewrite an IPv6 packet carrying TCP (after extension headers) as IPv4 into out
 * (needs len + 20 bytes at most). */
int l2_v6_to_v4(struct v6map *m, const uint8_t *ip6, size_t len, uint8_t *out, size_t outcap,
		size_t *outlen);

#endif
