/* The link-layer shim and the IPv6 translation, on frames taken from real captures
 * (tests/capture/data, made by make_captures.py against a real PostgreSQL). */
#include <criterion/criterion.h>
#include <pcap.h>
#include <stdlib.h>
#include <string.h>

#include "l2.h"

struct frame {
	uint8_t *b;
	size_t n;
	int dlt;
};

/* The n-th frame (0-based) of a capture under tests/capture/data. */
static struct frame load_frame(const char *name, int index)
{
	char path[4096], eb[PCAP_ERRBUF_SIZE];
	const char *src = getenv("DBTAP_SRC");
	snprintf(path, sizeof path, "%s/tests/capture/data/%s", src ? src : ".", name);
	pcap_t *p = pcap_open_offline(path, eb);
	cr_assert_not_null(p, "%s: %s", path, eb);
	struct pcap_pkthdr *h;
	const u_char *d;
	struct frame f = { 0 };
	for (int i = 0; pcap_next_ex(p, &h, &d) == 1; i++) {
		if (i == index) {
			f.b = malloc(h->caplen);
			memcpy(f.b, d, h->caplen);
			f.n = h->caplen;
			break;
		}
	}
	f.dlt = pcap_datalink(p);
	pcap_close(p);
	cr_assert_not_null(f.b, "%s has no frame %d", name, index);
	return f;
}

static const char *variants[] = { "base.pcap", "sll.pcap", "sll2.pcap", "null.pcap", "loop.pcap",
				  "raw.pcap", "ipv4.pcap", "vlan.pcap", "qinq.pcap", "vlan9100.pcap" };

Test(l2, every_link_type_yields_the_same_ip_packet)
{
	struct frame base = load_frame("base.pcap", 5);
	struct l2_ip want;
	cr_assert_eq(l2_strip(base.dlt, base.b, base.n, &want), L2_OK);
	cr_assert_eq(want.version, 4);
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		struct frame f = load_frame(variants[i], 5);
		struct l2_ip got;
		cr_assert(l2_supported(f.dlt), "%s: dlt %d", variants[i], f.dlt);
		cr_assert_eq(l2_strip(f.dlt, f.b, f.n, &got), L2_OK, "%s", variants[i]);
		cr_assert_eq(got.len, want.len, "%s", variants[i]);
		cr_assert_eq(memcmp(got.ip, want.ip, want.len), 0, "%s", variants[i]);
		free(f.b);
	}
	free(base.b);
}

Test(l2, vlan_stacks_are_counted)
{
	struct frame f = load_frame("qinq.pcap", 0);
	struct l2_ip ip;
	cr_assert_eq(l2_strip(f.dlt, f.b, f.n, &ip), L2_OK);
	cr_assert_eq(ip.vlan_tags, 2);
	free(f.b);
}

Test(l2, truncated_at_every_length_never_reads_past_the_end)
{
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		struct frame f = load_frame(variants[i], 5);
		for (size_t n = 0; n < f.n; n++) {
			/* A fresh heap copy of exactly n bytes: ASan catches any over-read. */
			uint8_t *cut = malloc(n ? n : 1);
			memcpy(cut, f.b, n);
			struct l2_ip ip;
			int rc = l2_strip(f.dlt, cut, n, &ip);
			if (rc == L2_OK)
				cr_assert(ip.ip >= cut && ip.ip + ip.len <= cut + n);
			free(cut);
		}
		free(f.b);
	}
}

Test(l2, non_ip_and_unknown_links_are_refused)
{
	uint8_t arp[60] = { 0 };
	arp[12] = 0x08, arp[13] = 0x06;
	struct l2_ip ip;
	cr_assert_eq(l2_strip(L2_DLT_EN10MB, arp, sizeof arp, &ip), L2_NOT_IP);
	cr_assert_eq(l2_strip(147, arp, sizeof arp, &ip), L2_UNSUPPORTED_LINK);
	cr_assert_not(l2_supported(147));
	/* A VLAN tag stack deeper than we follow is not IP. */
	uint8_t deep[64] = { 0 };
	for (int i = 0; i < 12; i++)
		deep[12 + 4 * i] = 0x81;
	cr_assert_neq(l2_strip(L2_DLT_EN10MB, deep, sizeof deep, &ip), L2_OK);
}

Test(l2, ipv6_tcp_becomes_ipv4_with_a_reversible_address_map)
{
	struct frame f = load_frame("ipv6.pcap", 3);
	struct l2_ip ip;
	cr_assert_eq(l2_strip(f.dlt, f.b, f.n, &ip), L2_OK);
	cr_assert_eq(ip.version, 6);
	struct v6map *m = v6map_new(16);
	uint8_t out[70000];
	size_t outlen = 0;
	cr_assert_eq(l2_v6_to_v4(m, ip.ip, ip.len, out, sizeof out, &outlen), V6_OK);
	cr_assert_eq(out[0], 0x45);
	cr_assert_eq(out[9], 6);
	cr_assert_eq(outlen, ip.len - 40 + 20, "TCP segment copied whole");
	cr_assert_eq(memcmp(out + 20, ip.ip + 40, outlen - 20), 0);
	uint32_t s4;
	memcpy(&s4, out + 12, 4);
	cr_assert(v6map_is_synthetic(s4));
	const uint8_t *back = v6map_lookup(m, s4);
	cr_assert_not_null(back);
	cr_assert_eq(memcmp(back, ip.ip + 8, 16), 0, "maps back to the real source address");
	for (size_t n = 0; n < ip.len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, ip.ip, n);
		(void)l2_v6_to_v4(m, cut, n, out, sizeof out, &outlen);
		free(cut);
	}
	v6map_free(m);
	free(f.b);
}

Test(l2, ipv6_map_is_bounded)
{
	struct v6map *m = v6map_new(16);
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	int got = 0;
	for (int i = 0; i < 100; i++) {
		a[15] = (uint8_t)i;
		if (v6map_get(m, a))
			got++;
	}
	cr_assert_eq(got, 16, "only as many addresses as the map holds");
	a[15] = 3;
	cr_assert_neq(v6map_get(m, a), 0u, "known addresses still resolve when full");
	cr_assert_null(v6map_lookup(m, 0x0100007f), "127.0.0.1 is not synthetic");
	v6map_free(m);
}

Test(l2, ipv6_fragments_and_other_protocols_are_skipped)
{
	uint8_t p[80] = { 0x60 };
	p[4] = 0, p[5] = 40;
	p[6] = 44; /* fragment header */
	struct v6map *m = v6map_new(16);
	uint8_t out[200];
	size_t n;
	cr_assert_eq(l2_v6_to_v4(m, p, sizeof p, out, sizeof out, &n), V6_FRAGMENT);
	p[6] = 17; /* UDP */
	cr_assert_eq(l2_v6_to_v4(m, p, sizeof p, out, sizeof out, &n), V6_NOT_TCP);
	v6map_free(m);
}
