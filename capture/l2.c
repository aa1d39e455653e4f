/* Link-layer stripping and IPv6 -> IPv4 translation for libnids (see l2.h).
 * All reads go through rd.h: every byte here comes off the wire. */
#include "l2.h"

#include <stdlib.h>
#include <string.h>

#include "rd.h"

int l2_supported(int dlt)
{
	switch (dlt) {
	case L2_DLT_NULL:
	case L2_DLT_EN10MB:
	case L2_DLT_RAW:
	case L2_DLT_RAW_BSD:
	case L2_DLT_LOOP:
	case L2_DLT_LINUX_SLL:
	case L2_DLT_IPV4:
	case L2_DLT_IPV6:
	case L2_DLT_LINUX_SLL2:
		return 1;
	}
	return 0;
}

static int by_ethertype(uint16_t et, struct l2_ip *o)
{
	if (et == 0x0800)
		o->version = 4;
	else if (et == 0x86dd)
		o->version = 6;
	else
		return L2_NOT_IP;
	return L2_OK;
}

/* Skip any stack of 802.1Q / 802.1ad / 0x9100 tags; returns the inner ethertype. */
static uint16_t skip_vlans(struct rd *r, uint16_t et, int *tags)
{
	while ((et == 0x8100 || et == 0x88a8 || et == 0x9100) && *tags < L2_MAX_VLAN_TAGS) {
		rd_skip(r, 2); /* TCI */
		et = rd_be16(r);
		(*tags)++;
	}
	return et;
}

int l2_strip(int dlt, const uint8_t *pkt, size_t caplen, struct l2_ip *o)
{
	struct rd r = rd_make(pkt, caplen);
	uint16_t et;
	int rc = L2_OK;
	memset(o, 0, sizeof(*o));
	switch (dlt) {
	case L2_DLT_EN10MB:
		rd_skip(&r, 12);
		et = skip_vlans(&r, rd_be16(&r), &o->vlan_tags);
		rc = by_ethertype(et, o);
		break;
	case L2_DLT_LINUX_SLL:
		rd_skip(&r, 14);
		et = skip_vlans(&r, rd_be16(&r), &o->vlan_tags);
		rc = by_ethertype(et, o);
		break;
	case L2_DLT_LINUX_SLL2:
		et = rd_be16(&r);
		rd_skip(&r, 18);
		/* SLL2 keeps VLAN tags out of the header; the ethertype is the payload's. */
		rc = by_ethertype(et, o);
		break;
	case L2_DLT_NULL:
	case L2_DLT_LOOP:
		/* The AF value is host- or network-order and differs per OS: trust the IP nibble. */
		rd_skip(&r, 4);
		break;
	case L2_DLT_RAW:
	case L2_DLT_RAW_BSD:
	case L2_DLT_IPV4:
	case L2_DLT_IPV6:
		break;
	default:
		return L2_UNSUPPORTED_LINK;
	}
	if (rc != L2_OK)
		return r.err ? L2_TRUNCATED : rc;
	if (r.err || rd_left(&r) < 1)
		return L2_TRUNCATED;
	o->ip = pkt + r.off;
	o->len = caplen - r.off;
	int v = o->ip[0] >> 4;
	if (o->version && o->version != v)
		return L2_NOT_IP;
	if (v != 4 && v != 6)
		return L2_NOT_IP;
	o->version = v;
	return L2_OK;
}

/* ---- IPv6 address map ---- */

struct v6map {
	uint32_t cap, used, nbuckets;
	uint32_t *bucket; /* index+1 into keys, 0 = empty (open addressing) */
	uint8_t (*keys)[16];
};

struct v6map *v6map_new(uint32_t cap)
{
	if (cap == 0 || cap > (1u << 27))
		cap = 1u << 16;
	struct v6map *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cap = cap;
	m->nbuckets = 1;
	while (m->nbuckets < cap * 2)
		m->nbuckets <<= 1;
	m->bucket = calloc(m->nbuckets, sizeof(*m->bucket));
	m->keys = calloc(cap, sizeof(*m->keys));
	if (!m->bucket || !m->keys) {
		v6map_free(m);
		return NULL;
	}
	return m;
}

void v6map_free(struct v6map *m)
{
	if (!m)
		return;
	free(m->bucket);
	free(m->keys);
	free(m);
}

static uint32_t hash16(const uint8_t k[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static uint32_t to_be(uint32_t host)
{
	uint8_t b[4] = { (uint8_t)(host >> 24), (uint8_t)(host >> 16), (uint8_t)(host >> 8), (uint8_t)host };
	uint32_t v;
	memcpy(&v, b, 4);
	return v;
}

static uint32_t from_be(uint32_t be)
{
	uint8_t b[4];
	memcpy(b, &be, 4);
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

uint32_t v6map_get(struct v6map *m, const uint8_t addr[16])
{
	uint32_t mask = m->nbuckets - 1, i = hash16(addr) & mask;
	while (m->bucket[i]) {
		uint32_t idx = m->bucket[i] - 1;
		if (memcmp(m->keys[idx], addr, 16) == 0)
			return to_be(V6_SYNTH_BASE + idx + 1);
		i = (i + 1) & mask;
	}
	if (m->used >= m->cap)
		return 0;
	memcpy(m->keys[m->used], addr, 16);
	m->bucket[i] = ++m->used;
	return to_be(V6_SYNTH_BASE + m->used);
}

const uint8_t *v6map_lookup(const struct v6map *m, uint32_t synth_be)
{
	uint32_t h = from_be(synth_be);
	if (!m || (h & 0xF0000000u) != V6_SYNTH_BASE)
		return NULL;
	uint32_t idx = (h - V6_SYNTH_BASE) - 1;
	if (idx >= m->used)
		return NULL;
	return m->keys[idx];
}

int l2_v6_to_v4(struct v6map *m, const uint8_t *ip6, size_t len, uint8_t *out, size_t outcap,
		size_t *outlen)
{
	struct rd r = rd_make(ip6, len);
	rd_skip(&r, 4);
	uint16_t plen = rd_be16(&r);
	uint8_t nh = rd_u8(&r);
	rd_skip(&r, 1);
	struct strv src = rd_bytes(&r, 16), dst = rd_bytes(&r, 16);
	if (r.err)
		return V6_MALFORMED;
	/* Payload length bounds the packet; trailing link padding is ignored. */
	size_t end = 40 + (size_t)plen;
	if (end > len)
		end = len; /* snaplen-truncated: libnids will reject what is missing */
	for (int hops = 0; hops < 8; hops++) {
		if (nh == 6)
			break;
		if (nh == 44)
			return V6_FRAGMENT;
		if (nh != 0 && nh != 43 && nh != 60 && nh != 51)
			return V6_NOT_TCP;
		uint8_t next = rd_u8(&r);
		uint8_t hl = rd_u8(&r);
		/* AH (51) counts 4-byte units minus 2; the others 8-byte units minus 1. */
		size_t skip = nh == 51 ? ((size_t)hl + 2) * 4 : ((size_t)hl + 1) * 8;
		rd_skip(&r, skip - 2);
		nh = next;
		if (r.err)
			return V6_MALFORMED;
	}
	if (nh != 6)
		return V6_NOT_TCP;
	if (r.off > end)
		return V6_MALFORMED;
	size_t tcp_len = end - r.off;
	if (tcp_len + 20 > 65535)
		return V6_TOO_BIG;
	if (tcp_len + 20 > outcap)
		return V6_TOO_BIG;
	uint32_t s4 = v6map_get(m, (const uint8_t *)src.p);
	uint32_t d4 = v6map_get(m, (const uint8_t *)dst.p);
	if (!s4 || !d4)
		return V6_MAP_FULL;
	size_t tot = tcp_len + 20;
	memset(out, 0, 20);
	out[0] = 0x45;
	out[2] = (uint8_t)(tot >> 8);
	out[3] = (uint8_t)tot;
	out[8] = ip6[7]; /* the hop limit: tcpnorm.c compares TTLs */
	out[9] = 6;
	memcpy(out + 12, &s4, 4);
	memcpy(out + 16, &d4, 4);
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(out[i] << 8 | out[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	out[10] = (uint8_t)(sum >> 8);
	out[11] = (uint8_t)sum;
	memcpy(out + 20, ip6 + r.off, tcp_len);
	*outlen = tot;
	return V6_OK;
}
