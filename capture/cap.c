/* The capture engine's set-up and teardown: configuration defaults, the checksum rules,
 * libnids' parameters and callbacks, the stages, the end of capture and the counters.
 * What each packet goes through is in the other cap_*.c files (cap_int.h lists them). */
#include "cap_int.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

struct cap *cap_current; /* libnids callbacks carry no context */
volatile sig_atomic_t cap_stop_req, cap_hup_req;

void cap_stop(void)
{
	cap_stop_req = 1;
}

void cap_hup(void)
{
	cap_hup_req = 1;
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
	c->gap_timeout_ms = CAP_GAP_TIMEOUT_MS;
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

const struct proto_decoder *cap_decoder_for_port(const struct cap *c, int port)
{
	for (int i = 0; proto_registry[i]; i++)
		if (port_in(c->cfg.ports[i].port, c->cfg.ports[i].n, port))
			return proto_registry[i];
	return NULL;
}
const char *const cap_os_names[CAP_OS_N + 1] = { "linux", "bsd", "windows", "vista", "solaris", "first", "last", NULL };

int cap_parse_host_cidr(const char *cidr, struct cap_host_os *h)
{
	char buf[64];
	size_t n = cidr ? strlen(cidr) : sizeof buf;
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, cidr, n + 1);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	memset(h->addr, 0, sizeof h->addr);
	if (inet_pton(AF_INET, buf, h->addr) == 1)
		h->v6 = 0;
	else if (inet_pton(AF_INET6, buf, h->addr) == 1)
		h->v6 = 1;
	else
		return -1;
	long bits = h->v6 ? 128 : 32;
	if (slash) {
		/* strictly digits: atoi read "10.0.0.0/x" as /0, every address */
		char *end = NULL;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		long b = strtol(slash + 1, &end, 10);
		if (*end || b > bits)
			return -1;
		bits = b;
	}
	h->bits = (uint8_t)bits;
	return 0;
}

enum cap_os cap_host_os(const struct cap_config *cfg, int v6, const uint8_t *addr)
{
	for (int i = 0; i < cfg->n_host_os; i++) {
		const struct cap_host_os *h = &cfg->host_os[i];
		if (h->v6 != !!v6)
			continue;
		int full = h->bits / 8, rest = h->bits % 8;
		if (memcmp(h->addr, addr, (size_t)full) != 0)
			continue;
		if (rest && ((h->addr[full] ^ addr[full]) & (uint8_t)(0xff00 >> rest)))
			continue;
		return (enum cap_os)h->os;
	}
	return CAP_OS_LINUX;
}

int cap_parse_cidr(const char *cidr, uint32_t *net, uint32_t *mask)
{
	if (cidr && strcmp(cidr, "all") == 0) {
		*net = *mask = 0;
		return 0;
	}
	struct cap_host_os h;
	if (cap_parse_host_cidr(cidr, &h) != 0 || h.v6)
		return -1;
	uint32_t a;
	memcpy(&a, h.addr, 4);
	*mask = h.bits ? htonl(0xffffffffu << (32 - h.bits)) : 0;
	*net = a & *mask;
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
	if (cap_current) {
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
	nids_params.syslog = capnids_log;
	nids_params.no_mem = capnids_nomem;
	nids_params.pcap_filter = NULL;
	cap_current = c;
	if (!nids_init()) {
		snprintf(err, errlen, "capture: libnids: %s", nids_errbuf);
		cap_current = NULL;
		goto fail;
	}
	nids_register_chksum_ctl(c->ctl, c->n_ctl);
	/* libnids takes the callback as void *; a union avoids a function/object pointer cast. */
	union {
		void (*fn)(struct tcp_stream *, void **);
		void *ptr;
	} cb = { .fn = capnids_tcp_callback };
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
void cap_finish(struct cap *c)
{
	if (!c)
		return;
	cappick_release_all(c);
	capgap_flush_all(c);
	/* Close in our order (least recently active first), not in the order of libnids'
	 * randomly keyed hash at nids_exit(): the same file then gives the same row ids. */
	while (c->flows.lru_head)
		capnids_flow_finish(c, c->flows.lru_head, "eof", PROTO_END_EOF);
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
	cappick_free(c);
	flows_free(&c->flows);
	v6map_free(c->v6);
	if (c->dead)
		pcap_close(c->dead);
	if (cap_current == c)
		cap_current = NULL;
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
