/* Capture: our own libpcap handle, a link-layer shim, libnids reassembly and the flow
 * table that hands each database byte stream to its decoder and the analyzer. */
#ifndef DBTAP_CAP_H
#define DBTAP_CAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "an.h"
#include "proto.h"

#define CAP_MAX_PORTS 16
#define CAP_MAX_CIDRS 32
#define CAP_MAX_KEYLOGS 16
/* Linux gives up retransmitting 924.6 s after the first send (RTO 200 ms doubling to 120 s,
 * tcp_retries2 = 15): the default wait for a hole in a one-way capture. */
#define CAP_GAP_TIMEOUT_MS 924600

/* A server's TCP reassembly policy (capture.host_os_policy): which copy of overlapping
 * segments it keeps (tcpnorm.c). 0, Linux, is the default for every server. */
enum cap_os { CAP_OS_LINUX, CAP_OS_BSD, CAP_OS_WINDOWS, CAP_OS_VISTA, CAP_OS_SOLARIS, CAP_OS_FIRST, CAP_OS_LAST, CAP_OS_N };
extern const char *const cap_os_names[CAP_OS_N + 1]; /* by enum cap_os, NULL-terminated */

#define CAP_MAX_OS_HOSTS 256
struct cap_host_os {
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
	uint8_t v6, bits, os;
};
/* "10.0.0.0/8", "10.1.2.3", "2001:db8::/32", "::1" into *h (os untouched): 0 or -1. */
int cap_parse_host_cidr(const char *cidr, struct cap_host_os *h);

struct cap_config {
	/* Server ports per decoder, indexed like proto_registry (its default_ports unless the
	 * config's ports.<name> sets them). */
	struct cap_ports {
		int port[CAP_MAX_PORTS], n;
	} ports[PROTO_MAX];
	int probe_other_ports; /* decode flows on other ports whose first bytes are unmistakable */
	int max_flows;	       /* concurrent TCP flows tracked (libnids table sized from it) */
	int idle_timeout_s;    /* packet time without traffic before a flow is closed */
	/* A hole is declared lost at once when the receiver acknowledges past it; while the
	 * receiver waits for it (duplicate ACKs) so do we, within max_held_mb. Only when the
	 * receiver has said nothing since it opened (one-way capture): after this long
	 * (packet time), by default as long as a Linux sender retransmits (cap_gap.c), or
	 * once the flow sent nothing for TCP_RTO_MAX (120 s). gap_max_packets is accepted
	 * and ignored (deprecated: a count of segments proves nothing). */
	int gap_timeout_ms;
	int gap_max_packets;
	int v6_map_size;       /* distinct IPv6 addresses tracked */
	/* Source CIDRs (IPv4) whose TCP checksums are not verified; n = -1 means "defaults":
	 * everything for files, loopback and the interface's own addresses when live. */
	char *checksum_bypass[CAP_MAX_CIDRS];
	int n_checksum_bypass;
	int kernel_buffer_mb;
	int stats_interval_s; /* periodic stats line on stderr when live (0 = off) */
	/* Live, Linux: join this PACKET_FANOUT group (1-65535; 0 = none). The kernel hashes
	 * each flow symmetrically to one member, so N sensors on one interface each see whole
	 * flows. */
	int fanout_group;
	/* Run the decoders on their own thread, after libpcap and libnids: 1 on, 0 off, -1
	 * (default) on when the machine has more than one CPU. */
	int decoder_thread;
	/* Run the analyzer on its own thread, after the decoders (else it runs on theirs):
	 * 1 on, 0 off, -1 (default) on when the machine has more than two CPUs. */
	int analyzer_thread;
	/* MiB that all flows together may hold: message heads waiting for their rest, and
	 * (separately) segments waiting behind a hole. Beyond it they are dropped, counted. */
	int max_held_mb;
	/* TLS key logs (files, FIFOs, directories of *.keys) followed to decrypt TLS sessions,
	 * and how long (packet time) a session's records wait for a key that is not there yet. */
	/* Server addresses and their reassembly policy; the first match wins, else Linux. */
	struct cap_host_os host_os[CAP_MAX_OS_HOSTS];
	int n_host_os;
	char *tls_keylog[CAP_MAX_KEYLOGS];
	int n_tls_keylog;
	int tls_key_wait_s;
};

void cap_config_defaults(struct cap_config *c);
void cap_config_free(struct cap_config *c);

struct cap_stats {
	uint64_t packets, bytes, kernel_drops, sensor_drops, streams;
	uint64_t non_ip, truncated, ipv6_fragments, ipv6_skipped, v6_map_full;
	uint64_t ipv4_reserved; /* IPv4 packets from or to 240.0.0.0/4 (our IPv6 stand-ins): skipped */
	uint64_t midstream_pickups, gaps, lost_bytes, evicted, idle_closed, oversize;
	uint64_t nids_evictions; /* libnids dropped a live stream for room; re-picked up */
	uint64_t nids_warnings, nids_too_many;
	uint64_t held_dropped;	       /* message heads dropped: hold budget or memory */
	uint64_t held_segments_dropped; /* segments behind a hole not kept: per-flow cap or budget */
	uint64_t flows_failed;	       /* flows not tracked: no memory for them */
	uint64_t normalised_drops;     /* segments the server would discard (tcpnorm.c) */
	uint64_t evasion_flows;	       /* flows with an evasion anomaly */
	int64_t first_ts, last_ts; /* packet times, microseconds */
	/* gauges at the time of the copy */
	uint64_t flows_open;
	uint64_t decoder_queue_bytes, analyzer_queue_bytes; /* handed to a stage's thread, not yet taken */
};

struct cap;

/* One capture engine per process (libnids is a set of globals). an is not owned. */
struct cap *cap_new(const struct cap_config *cfg, struct an *an, int live, char *err, size_t errlen);
void cap_free(struct cap *c);

/* The reading calls return 0, CAP_ERR (a runtime failure) or CAP_EUSAGE (the -f filter
 * does not compile), each error with a one-line message naming the file or interface. */
#define CAP_ERR (-1)
#define CAP_EUSAGE (-2)

/* Read a pcap/pcapng file ("-": standard input) in two steps, so that -Z can drop
 * privileges between them: open (NULL and a message on failure), then read the stream
 * (taken over and closed; also fmemopen() in the fuzzer). Several reads make one capture;
 * what was decoded before an error is kept. */
FILE *cap_open_file(const char *path, char *err, size_t errlen);
int cap_read_fp(struct cap *c, FILE *fp, const char *name, const char *bpf, int progress, char *err,
		size_t errlen);

/* -Z: become USER (its groups too) for good, no capability left, no way back. */
int cap_drop_privileges(const char *user, char *err, size_t errlen);

/* An IPv4 CIDR ("10.0.0.0/8", "10.1.2.3") or "all", as network-order address and mask. */
int cap_parse_cidr(const char *cidr, uint32_t *net, uint32_t *mask);

/* Capture on an interface until cap_stop(). drop_user: setuid after the handle is open. */
struct cap_live_hooks {
	void (*on_hup)(void *ctx); /* SIGHUP: reopen outputs */
	void *ctx;
	int quiet;
	/* Every cfg.stats_interval_s of wall time (files and live): called on the analyzer's
	 * side, in order with the events before it, with a copy of the capture's counters
	 * taken when it was due. */
	void (*on_stats)(void *ctx, const struct cap_stats *st);
	/* Every watchdog_us / 2 of wall time, also on the analyzer's side: it arrives only
	 * while every stage moves (sd_notify WATCHDOG=1). 0 = off. */
	void (*on_watchdog)(void *ctx);
	int64_t watchdog_us;
	/* cap_live: the interface is open and privileges are dropped (main thread). */
	void (*on_ready)(void *ctx);
};
/* Hooks for the reading calls (cap_live sets its own); not copied: keep *h alive. */
void cap_set_hooks(struct cap *c, const struct cap_live_hooks *h);
int cap_live(struct cap *c, const char *iface, const char *bpf, const char *drop_user,
	     const struct cap_live_hooks *hooks, char *err, size_t errlen);

/* The reassembly policy of a server address (4 or 16 bytes, network order). */
enum cap_os cap_host_os(const struct cap_config *cfg, int v6, const uint8_t *addr);

/* The BPF used live when -f is not given. */
void cap_default_filter(const struct cap_config *cfg, char *buf, size_t len);

/* Async-signal-safe requests from signal handlers. */
void cap_stop(void);
void cap_hup(void);

/* End of capture: flush every open flow (end_reason 'eof'); when it returns the analyzer
 * has seen everything and its thread (if any) has stopped. */
void cap_finish(struct cap *c);
void cap_get_stats(const struct cap *c, struct cap_stats *st);
/* Counters as a JSON object text (caller frees). */
char *cap_stats_json(const struct cap *c);

#endif
