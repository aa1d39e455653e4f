/* The flow table's keyed 4-tuple hash, which libnids also uses for its stream table
 * (cap_nids.c's mkhash). Regression: the table's hash was a fixed multiply, so anyone who
 * read our source could pick addresses and ports that all fall into one bucket and make
 * every packet's lookup walk a chain of thousands (hash flooding). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "cap.h"
#include "flows.h"

unsigned int mkhash(unsigned int src, unsigned short sport, unsigned int dest, unsigned short dport);

#define N_CRAFTED 48
#define BUCKETS 1024

/* N_CRAFTED client tuples to one server that all land in bucket 0 under key k. */
static int craft(const uint64_t k[2], struct flow_key *out)
{
	int n = 0;
	uint32_t srv = htonl(0x0a000001);
	for (uint32_t i = 0; n < N_CRAFTED && i < 50u * 1000 * 1000; i++) {
		uint32_t cli = htonl(0x0a010000 | (i >> 16));
		uint16_t port = htons((uint16_t)i);
		if ((flows_hash_keyed(k, cli, port, srv, htons(5432)) & (BUCKETS - 1)) == 0)
			out[n++] = (struct flow_key){ .cli_ip = cli, .srv_ip = srv, .cli_port = port,
						      .srv_port = htons(5432) };
	}
	return n;
}

static int max_load(const uint64_t k[2], const struct flow_key *keys, int n)
{
	int load[BUCKETS] = { 0 }, max = 0;
	for (int i = 0; i < n; i++) {
		uint32_t b = flows_hash_keyed(k, keys[i].cli_ip, keys[i].cli_port, keys[i].srv_ip,
					      keys[i].srv_port) & (BUCKETS - 1);
		if (++load[b] > max)
			max = load[b];
	}
	return max;
}

Test(flows_hash, tuples_crafted_for_one_key_spread_under_another)
{
	const uint64_t known[2] = { 0x0123456789abcdefull, 0xfedcba9876543210ull };
	const uint64_t other[2] = { 0x0123456789abcdeeull, 0xfedcba9876543210ull }; /* one bit off */
	struct flow_key keys[N_CRAFTED];
	cr_assert_eq(craft(known, keys), N_CRAFTED);
	cr_assert_eq(max_load(known, keys, N_CRAFTED), N_CRAFTED);
	/* 48 keys in 1024 buckets: a load of 5 has odds below 1e-4 if they are spread */
	cr_expect_leq(max_load(other, keys, N_CRAFTED), 4, "one bit of key still leaves them piled up");
}

Test(flows_hash, the_table_keeps_crafted_tuples_apart)
{
	/* An attacker who knows the code but not this process's random key. */
	const uint64_t known[2] = { 0, 0 };
	struct flow_key keys[N_CRAFTED];
	cr_assert_eq(craft(known, keys), N_CRAFTED);
	struct flow_table t;
	cr_assert_eq(flows_init(&t, BUCKETS), 0);
	cr_assert(flows_hash_key[0] || flows_hash_key[1], "the process key was not set");
	for (int i = 0; i < N_CRAFTED; i++)
		cr_assert_not_null(flows_add(&t, &keys[i]));
	int longest = 0;
	for (uint32_t b = 0; b < t.nbuckets; b++) {
		int len = 0;
		for (struct flow *f = t.bucket[b]; f; f = f->hnext)
			len++;
		if (len > longest)
			longest = len;
	}
	cr_expect_leq(longest, 4, "crafted tuples share a chain of %d", longest);
	for (int i = 0; i < N_CRAFTED; i++)
		cr_expect_not_null(flows_find(&t, &keys[i]));
	flows_free(&t);
}

Test(flows_hash, the_key_is_set_once)
{
	flows_hash_init();
	uint64_t k0 = flows_hash_key[0], k1 = flows_hash_key[1];
	struct flow_table t;
	cr_assert_eq(flows_init(&t, 16), 0); /* a second table must not re-key libnids' */
	cr_expect(flows_hash_key[0] == k0 && flows_hash_key[1] == k1);
	flows_free(&t);
}

Test(flows_hash, libnids_resolves_mkhash_to_ours)
{
	/* libnids calls mkhash through its PLT, which binds to the first definition in the
	 * global scope: the executable's, if the link exported it. */
	void *bound = dlsym(RTLD_DEFAULT, "mkhash");
	cr_assert_not_null(bound, "no mkhash in the global scope");
	unsigned int (*fn)(unsigned int, unsigned short, unsigned int, unsigned short);
	memcpy(&fn, &bound, sizeof fn); /* ISO C has no cast from object to function pointer */
	cr_expect(fn == mkhash, "libnids would use its own mkhash: not exported");
}

Test(flows_hash, mkhash_never_looks_negative_to_libnids)
{
	/* Regression: libnids stores mkhash() in an int and takes it % its table size, so a
	 * value of 2^31 or more indexed before the table (a crash, or a silent heap write). */
	flows_hash_init();
	uint32_t all = 0;
	for (uint32_t i = 0; i < 200000; i++) {
		unsigned int h = mkhash(htonl(0x0a000000 | i), (unsigned short)(i * 7919u), htonl(0x7f000001), 5432);
		cr_assert_lt(h, 0x80000000u, "mkhash gave %u", h);
		all |= h;
	}
	cr_expect_eq(all, 0x7fffffffu, "the hash does not use all 31 bits");
}

Test(flows_hash, both_directions_share_a_bucket)
{
	flows_hash_init();
	uint32_t a = htonl(0x0a000001), b = htonl(0x0a000002);
	for (uint16_t p = 1; p < 2000; p += 7) {
		cr_assert_eq(flows_hash(a, htons(p), b, htons(5432)), flows_hash(b, htons(5432), a, htons(p)));
		cr_assert_eq(mkhash(a, p, b, 5432), mkhash(b, 5432, a, p));
	}
	/* but the endpoints are not merged: swapping only the ports is another flow */
	cr_expect_neq(flows_hash(a, htons(40000), b, htons(5432)), flows_hash(a, htons(5432), b, htons(40000)));
}

/* Looked up afresh (not through the last flow found), from the key's client or server. */
static struct flow *find_cold(struct flow_table *t, const struct flow_key *k, int from_server)
{
	t->last = NULL;
	return from_server ? flows_find_either(t, k->srv_ip, k->srv_port, k->cli_ip, k->cli_port)
			   : flows_find_either(t, k->cli_ip, k->cli_port, k->srv_ip, k->srv_port);
}

Test(flows_hash, a_packet_finds_its_flow_either_way)
{
	struct flow_table t;
	cr_assert_eq(flows_init(&t, 64), 0);
	struct flow_key k = { .cli_ip = htonl(0x0a000001), .srv_ip = htonl(0x0a000002),
			      .cli_port = htons(40000), .srv_port = htons(5432) };
	struct flow *f = flows_add(&t, &k);
	cr_assert_not_null(f);
	cr_expect_eq(find_cold(&t, &k, 0), f);
	cr_expect_eq(find_cold(&t, &k, 1), f);
	struct flow_key other = k;
	other.cli_port = htons(40001);
	cr_expect_null(find_cold(&t, &other, 0));
	/* the same four-tuple with the roles the other way round: the exact one wins */
	struct flow_key r = { .cli_ip = k.srv_ip, .srv_ip = k.cli_ip, .cli_port = k.srv_port, .srv_port = k.cli_port };
	struct flow *g = flows_add(&t, &r);
	cr_assert_not_null(g);
	cr_expect_eq(find_cold(&t, &k, 0), f);
	cr_expect_eq(find_cold(&t, &k, 1), g);
	cr_expect_eq(find_cold(&t, &r, 0), g);
	flows_free(&t);
}

/* capture.checksum_bypass entries: exactly an IPv4 address with an optional /0-32, or
 * "all". Regression: "10.0.0.0/x" used to parse as /0, turning the check off for all. */
Test(cidr, strict)
{
	uint32_t net, mask;
	cr_assert_eq(cap_parse_cidr("10.1.2.3/8", &net, &mask), 0);
	cr_assert_eq(net, htonl(0x0a000000u));
	cr_assert_eq(mask, htonl(0xff000000u));
	cr_assert_eq(cap_parse_cidr("10.1.2.3", &net, &mask), 0);
	cr_assert_eq(mask, 0xffffffffu);
	cr_assert_eq(cap_parse_cidr("0.0.0.0/0", &net, &mask), 0);
	cr_assert_eq(mask, 0u);
	cr_assert_eq(cap_parse_cidr("all", &net, &mask), 0);
	cr_assert_eq(mask, 0u);
	const char *bad[] = { "10.0.0.0/x", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8x",
			      "10.0.0.0/ 8", "10.0.0.300", "::1", "", "ALL", "10.0.0.0/8/8" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_neq(cap_parse_cidr(bad[i], &net, &mask), 0, "'%s' accepted", bad[i]);
}
