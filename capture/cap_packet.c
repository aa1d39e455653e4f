/* One captured packet: link layer off (l2.c), IPv6 to its IPv4 stand-in, the TCP header
 * parsed, then on to cap_segment.c; the analyzer tick and the idle sweep by packet time. */
#include "cap_int.h"

#include <string.h>

#include "rd.h"

static ev_time tv_us(const struct timeval *tv)
{
	return (ev_time)tv->tv_sec * 1000000 + tv->tv_usec;
}

int cappkt_parse_tcp(const uint8_t *p, size_t n, struct tcpinfo *t)
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
	t->win = rd_be16(&r);
	size_t hl = (size_t)(off >> 4) * 4;
	if (r.err || hl < 20 || hl > tot - ihl)
		return -1;
	t->payload = (uint32_t)(tot - ihl - hl);
	t->off = (uint16_t)(ihl + hl);
	t->has_ts = 0;
	const uint8_t *op = p + ihl + 20;
	if (hl >= 32 && op[0] == 1 && op[1] == 1 && op[2] == 8 && op[3] == 10) {
		/* the layout Linux and BSD send on every segment: NOP, NOP, timestamp */
		t->tsval = (uint32_t)op[4] << 24 | (uint32_t)op[5] << 16 | (uint32_t)op[6] << 8 | op[7];
		t->has_ts = 1;
		return 0;
	}
	struct rd o = rd_make(op, hl - 20);
	while (!o.err && o.off < o.len) { /* options: the timestamp (kind 8, length 10) for PAWS */
		uint8_t kind = rd_u8(&o);
		if (kind == 0)
			break;
		if (kind == 1)
			continue;
		uint8_t len = rd_u8(&o);
		if (o.err || len < 2)
			break;
		if (kind == 8 && len == 10) {
			t->tsval = rd_be32(&o);
			t->has_ts = !o.err;
			break;
		}
		rd_skip(&o, (size_t)len - 2);
	}
	return 0;
}
void cappkt_sweep_idle(struct cap *c)
{
	ev_time limit = c->now - (ev_time)c->cfg.idle_timeout_s * 1000000;
	while (c->flows.lru_head && c->flows.lru_head->last_ts < limit) {
		struct flow *f = c->flows.lru_head;
		if (f->stream && (f->held[0] || f->held[1])) {
			/* idle this long, nothing fills its holes any more: decode what waits */
			struct flow_key k = f->key;
			capgap_flush_flow(c, &k);
			if (!(f = flows_find(&c->flows, &k)))
				continue;
		}
		if (f->stream)
			nids_free_tcp_stream(f->stream);
		f->stream = NULL;
		c->st.idle_closed++;
		capnids_flow_finish(c, f, "idle", PROTO_END_TIMEOUT); /* the analyzer parks its session */
	}
}
void cappkt_on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
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
	if (cappkt_parse_tcp(p, n, &t) == 0)
		capseg_packet(c, &t, h, p, n);
	else
		capseg_feed_nids(h, p, n);
	if (c->now - c->last_tick >= CAP_TICK_US) {
		c->last_tick = c->now;
		decstage_tick(c->ds, c->now);
		capgap_sweep(c);
		cappkt_sweep_idle(c);
	}
	if (c->progress && (c->st.packets & 0xffff) == 0)
		capread_show_progress(c, 0);
}
