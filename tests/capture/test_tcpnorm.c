/* The server's reassembly policy (capture.host_os_policy): crafted segments through
 * tn_hold and tn_compare_held, then delivered the way capgap_drain and libnids do (in
 * queue order, each from the next byte expected on), for each policy. The expected
 * streams follow Novak & Sturges' overlap rules (tcpnorm.c, tn_new_wins). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cap.h"
#include "config.h"
#include "flows.h"
#include "tcpnorm.h"

#define HOLE 990u /* the receiver expects this; queued segments start at 1000 */

struct pkt {
	uint8_t b[128];
	size_t n;
	struct tcpinfo t;
};

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An IPv4/TCP packet (ACK) carrying data at seq, with a valid checksum. */
static void mk(struct pkt *k, uint32_t seq, const char *data)
{
	size_t len = strlen(data);
	memset(k, 0, sizeof(*k));
	uint8_t *ip = k->b, *tcp = k->b + 20;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((40 + len) >> 8);
	ip[3] = (uint8_t)(40 + len);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	tcp[0] = 0x80, tcp[1] = 0x01, tcp[2] = 0x15, tcp[3] = 0x38;
	tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16), tcp[6] = (uint8_t)(seq >> 8), tcp[7] = (uint8_t)seq;
	tcp[12] = 0x50;
	tcp[13] = TN_ACK;
	memcpy(tcp + 20, data, len);
	k->n = 40 + len;
	uint32_t pseudo = 6 + (uint32_t)(20 + len);
	for (int i = 12; i < 20; i += 2)
		pseudo += (uint32_t)ip[i] << 8 | ip[i + 1];
	uint16_t c = csum(tcp, 20 + len, pseudo);
	tcp[16] = (uint8_t)(c >> 8), tcp[17] = (uint8_t)c;
	k->t = (struct tcpinfo){ .seq = seq, .flags = TN_ACK, .ttl = 64, .off = 40, .payload = (uint32_t)len };
}

static int csum_ok(const uint8_t *p, size_t n)
{
	uint32_t pseudo = 6 + (uint32_t)(n - 20);
	for (int i = 12; i < 20; i += 2)
		pseudo += (uint32_t)p[i] << 8 | p[i + 1];
	return csum(p + 20, n - 20, pseudo) == 0;
}

struct run {
	struct flow_table ft;
	struct flow f;
	const char *anomaly;
	char out[256];
	size_t olen;
	uint32_t expect;
};

static void start(struct run *r, int os)
{
	memset(r, 0, sizeof(*r));
	cr_assert_eq(flows_init(&r->ft, 16), 0);
	r->f.tn.os = (uint8_t)os;
	r->expect = HOLE;
}

static void hold(struct run *r, uint32_t seq, const char *data)
{
	struct pkt k;
	mk(&k, seq, data);
	cr_assert_eq(tn_hold(&r->ft, 1u << 20, &r->f, 0, &k.t, k.b, k.n, &r->anomaly), 0);
}

/* libnids: bytes from expect on, earlier ones already delivered are kept */
static void deliver(struct run *r, const uint8_t *pkt, uint32_t seq, uint32_t len)
{
	cr_assert(csum_ok(pkt, 40 + len), "a delivered copy has a valid TCP checksum");
	if ((int32_t)(seq + len - r->expect) <= 0 || (int32_t)(seq - r->expect) > 0)
		return;
	uint32_t skip = r->expect - seq;
	memcpy(r->out + r->olen, pkt + 40 + skip, len - skip);
	r->olen += len - skip;
	r->expect = seq + len;
}

/* The in-order segment fills the hole, then the queue drains (capgap_drain). */
static const char *fill(struct run *r, const char *data)
{
	struct pkt k;
	uint8_t patched[128];
	mk(&k, HOLE, data);
	const uint8_t *p = k.b;
	if (tn_compare_held(&r->f, 0, &k.t, k.b, k.n, patched, &r->anomaly))
		p = patched;
	deliver(r, p, HOLE, k.t.payload);
	while (r->f.held[0] && (int32_t)(r->f.held[0]->seq - r->expect) <= 0) {
		struct held_seg *h = r->f.held[0];
		r->f.held[0] = h->next;
		if (r->f.held[0])
			r->f.held[0]->cont = 0;
		r->f.held_bytes[0] -= h->len;
		r->ft.held -= h->len;
		deliver(r, h->pkt, h->seq, h->dlen);
		free(h);
	}
	r->out[r->olen] = 0;
	flow_held_clear(&r->ft, &r->f, 0);
	flows_free(&r->ft);
	return r->out;
}

static const int all_os[] = { CAP_OS_LINUX, CAP_OS_BSD, CAP_OS_WINDOWS, CAP_OS_VISTA, CAP_OS_SOLARIS, CAP_OS_FIRST, CAP_OS_LAST };
#define NOS (sizeof all_os / sizeof all_os[0])

/* want[os]: the stream after "0123456789" fills [990, 1000) */
static void check(const char *name, void (*queue)(struct run *), const char *const want[CAP_OS_N], int flagged)
{
	for (size_t i = 0; i < NOS; i++) {
		struct run r;
		start(&r, all_os[i]);
		queue(&r);
		const char *got = fill(&r, "0123456789");
		cr_expect_str_eq(got, want[all_os[i]], "%s, %s: got %s", name, cap_os_names[all_os[i]], got);
		cr_expect_eq(r.anomaly != NULL, flagged, "%s, %s: overlap reported", name, cap_os_names[all_os[i]]);
	}
}

#define W(linux, bsd, windows, vista, solaris, first, last) { linux, bsd, windows, vista, solaris, first, last }

static void same_start_longer(struct run *r)
{
	hold(r, 1000, "AAAAAAAAAA");
	hold(r, 1000, "BBBBBBBBBBBB");
}
Test(tcpnorm_policy, new_copy_same_start_longer)
{
	/* Linux replaces a queued skb by a longer one at the same sequence; BSD keeps it */
	const char *const want[] = W("0123456789BBBBBBBBBBBB", "0123456789AAAAAAAAAABB", "0123456789AAAAAAAAAABB",
				     "0123456789AAAAAAAAAABB", "0123456789BBBBBBBBBBBB", "0123456789AAAAAAAAAABB",
				     "0123456789BBBBBBBBBBBB");
	check("same start, longer", same_start_longer, want, 1);
}

static void starts_before(struct run *r)
{
	hold(r, 1004, "AAAAAAAAAA");
	hold(r, 1000, "CCCCCC");
}
Test(tcpnorm_policy, new_copy_starts_before_ends_inside)
{
	const char *const want[] = W("0123456789CCCCCCAAAAAAAA", "0123456789CCCCCCAAAAAAAA", "0123456789CCCCCCAAAAAAAA",
				     "0123456789CCCCAAAAAAAAAA", "0123456789CCCCAAAAAAAAAA", "0123456789CCCCAAAAAAAAAA",
				     "0123456789CCCCCCAAAAAAAA");
	check("starts before", starts_before, want, 1);
}

static void inside(struct run *r)
{
	hold(r, 1000, "AAAAAAAAAA");
	hold(r, 1004, "DD");
}
Test(tcpnorm_policy, new_copy_inside_old)
{
	const char *const want[] = W("0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA",
				     "0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA",
				     "0123456789AAAADDAAAA");
	check("inside", inside, want, 1);
}

static void starts_after_ends_after(struct run *r)
{
	hold(r, 1000, "AAAAAAAAAA");
	hold(r, 1006, "EEEEEEEE");
}
Test(tcpnorm_policy, new_copy_starts_after_ends_after)
{
	const char *const want[] = W("0123456789AAAAAAAAAAEEEE", "0123456789AAAAAAAAAAEEEE", "0123456789AAAAAAAAAAEEEE",
				     "0123456789AAAAAAAAAAEEEE", "0123456789AAAAAAEEEEEEEE", "0123456789AAAAAAAAAAEEEE",
				     "0123456789AAAAAAEEEEEEEE");
	check("starts after, ends after", starts_after_ends_after, want, 1);
}

static void three(struct run *r)
{
	/* queued copies agree with each other after every arrival, whatever the policy */
	hold(r, 1004, "XXXX");
	hold(r, 1000, "AAAAAAAAAA");
	hold(r, 1002, "YYYYYYYYYY");
}
Test(tcpnorm_policy, three_overlapping_copies)
{
	const char *const want[] = W("0123456789AAAAAAAAAAYY", "0123456789AAAAAAAAAAYY", "0123456789AAAAAAAAAAYY",
				     "0123456789AAAAXXXXAAYY", "0123456789AAYYYYYYYYYY", "0123456789AAAAXXXXAAYY",
				     "0123456789AAYYYYYYYYYY");
	check("three copies", three, want, 1);
}

static void same_bytes(struct run *r)
{
	hold(r, 1000, "AAAAAAAAAA");
	hold(r, 1000, "AAAAAAAAAAAA");
}
Test(tcpnorm_policy, retransmission_with_the_same_bytes_is_no_anomaly)
{
	const char *const want[] = W("0123456789AAAAAAAAAAAA", "0123456789AAAAAAAAAAAA", "0123456789AAAAAAAAAAAA",
				     "0123456789AAAAAAAAAAAA", "0123456789AAAAAAAAAAAA", "0123456789AAAAAAAAAAAA",
				     "0123456789AAAAAAAAAAAA");
	check("same bytes", same_bytes, want, 0);
}

/* An in-order segment overlapping a queued one: Linux (and BSD, Windows: it starts before
 * the queued one) keeps the in-order bytes; first keeps the queued ones. */
Test(tcpnorm_policy, in_order_segment_over_queued_bytes)
{
	const char *const want[] = W("0123456789ABCDAAAAAA", "0123456789ABCDAAAAAA", "0123456789ABCDAAAAAA",
				     "0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA", "0123456789AAAAAAAAAA",
				     "0123456789ABCDAAAAAA");
	for (size_t i = 0; i < NOS; i++) {
		struct run r;
		start(&r, all_os[i]);
		hold(&r, 1000, "AAAAAAAAAA");
		const char *got = fill(&r, "0123456789ABCD");
		cr_expect_str_eq(got, want[all_os[i]], "%s: got %s", cap_os_names[all_os[i]], got);
		cr_expect_not_null(r.anomaly, "%s: overlap reported", cap_os_names[all_os[i]]);
	}
}

Test(tcpnorm_policy, host_cidrs_choose_the_policy)
{
	struct cap_config cfg;
	cap_config_defaults(&cfg);
	const struct {
		const char *cidr;
		int os;
	} rules[] = { { "10.1.0.0/16", CAP_OS_BSD }, { "10.0.0.0/8", CAP_OS_WINDOWS }, { "2001:db8::/33", CAP_OS_LAST },
		      { "192.168.1.7", CAP_OS_FIRST } };
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		cr_assert_eq(cap_parse_host_cidr(rules[i].cidr, &cfg.host_os[i]), 0, "%s", rules[i].cidr);
		cfg.host_os[i].os = (uint8_t)rules[i].os;
	}
	cfg.n_host_os = 4;
	uint8_t a[16] = { 10, 1, 200, 3 };
	cr_expect_eq(cap_host_os(&cfg, 0, a), CAP_OS_BSD, "first match wins");
	a[1] = 2;
	cr_expect_eq(cap_host_os(&cfg, 0, a), CAP_OS_WINDOWS);
	uint8_t b[4] = { 192, 168, 1, 8 };
	cr_expect_eq(cap_host_os(&cfg, 0, b), CAP_OS_LINUX, "a /32 is one host; the default is linux");
	b[3] = 7;
	cr_expect_eq(cap_host_os(&cfg, 0, b), CAP_OS_FIRST);
	uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x7f, 0xff };
	cr_expect_eq(cap_host_os(&cfg, 1, v6), CAP_OS_LAST);
	v6[4] = 0x80; /* outside the /33 */
	cr_expect_eq(cap_host_os(&cfg, 1, v6), CAP_OS_LINUX);
	cr_expect_eq(cap_host_os(&cfg, 1, (const uint8_t *)"\x0a\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), CAP_OS_LINUX,
		     "an IPv4 CIDR never matches an IPv6 address");
	struct cap_host_os h;
	cr_expect_neq(cap_parse_host_cidr("10.0.0.0/33", &h), 0);
	cr_expect_neq(cap_parse_host_cidr("2001:db8::/129", &h), 0);
	cr_expect_neq(cap_parse_host_cidr("10.0.0.0/x", &h), 0);
	cr_expect_neq(cap_parse_host_cidr("db.example", &h), 0);
	cap_config_free(&cfg);
}

static const char *load(const char *json, char *err, size_t len)
{
	char path[] = "/tmp/dbtap-tcpnorm-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs(json, f);
	fclose(f);
	struct dbtap_config c;
	dbtap_config_defaults(&c);
	err[0] = 0;
	int rc = dbtap_config_load(&c, path, err, len);
	unlink(path);
	int n = c.cap.n_host_os, os = n ? c.cap.host_os[n - 1].os : -1;
	dbtap_config_free(&c);
	if (rc == 0)
		snprintf(err, len, "ok %d %d", n, os);
	return err;
}

Test(tcpnorm_policy, config_key_and_its_errors)
{
	char e[512];
	cr_expect_str_eq(load("{\"capture\":{\"host_os_policy\":[{\"hosts\":[\"10.0.0.0/8\",\"::1\"],\"os\":\"bsd\",\"_why\":\"x\"},"
			      "{\"hosts\":[\"192.0.2.1\"],\"os\":\"last\"}]}}",
			      e, sizeof e),
			 "ok 3 6");
	const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"capture\":{\"host_os_policy\":{}}}", "capture.host_os_policy: expected an array" },
		{ "{\"capture\":{\"host_os_policy\":[{\"hosts\":[\"10.0.0.0/8\"],\"os\":\"beos\"}]}}",
		  "capture.host_os_policy[0].os: expected one of linux, bsd, windows, vista, solaris, first, last" },
		{ "{\"capture\":{\"host_os_policy\":[{\"hosts\":[\"10.0.0.0/8\"]}]}}", "capture.host_os_policy[0].os: expected one of" },
		{ "{\"capture\":{\"host_os_policy\":[{\"hosts\":[],\"os\":\"bsd\"}]}}",
		  "capture.host_os_policy[0].hosts: expected a non-empty array" },
		{ "{\"capture\":{\"host_os_policy\":[{\"hosts\":[\"10.0.0.0/8\"],\"os\":\"bsd\"},{\"hosts\":[\"10.0.0.0/40\"],\"os\":\"bsd\"}]}}",
		  "capture.host_os_policy[1].hosts[0]: expected an IPv4 or IPv6 CIDR" },
		{ "{\"capture\":{\"host_os_policy\":[{\"hosts\":[\"10.0.0.0/8\"],\"os\":\"bsd\",\"ttl\":3}]}}",
		  "capture.host_os_policy[0].ttl: unknown key (hosts, os)" },
		{ "{\"capture\":{\"host_os_policy\":[7]}}", "capture.host_os_policy[0]: expected {" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		load(bad[i].json, e, sizeof e);
		cr_expect(strstr(e, bad[i].want) != NULL, "%s: got '%s'", bad[i].json, e);
		cr_expect(strchr(e, '\n') == NULL, "one line");
	}
}
