/* Capture: our own libpcap handle, a link-layer shim, libnids reassembly and the flow
 * table that hands each database byte stream to its decoder and the analyzer. */
#ifndef DBTAP_CAP_H
#define DBTAP_CAP_H

#include <stdint.h>

#include "an.h"

#define CAP_MAX_PORTS 16

struct cap_config {
	int pg_ports[CAP_MAX_PORTS], n_pg_ports;
	int my_ports[CAP_MAX_PORTS], n_my_ports;
	int probe_other_ports; /* content probing of flows on other ports */
	int max_streams;       /* concurrent TCP streams tracked */
	int idle_timeout_s;
	int gap_timeout_ms;    /* a hole older than this (packet time) is declared lost */
	int gap_max_bytes;     /* ... or once this much later data is queued */
	/* CIDRs whose source addresses skip checksum verification; "all" / "none" */
	char *checksum_bypass[AN_MAX_LIST];
	int n_checksum_bypass;
	int checksum_bypass_set; /* config gave the list explicitly */
};

void cap_config_defaults(struct cap_config *c);

struct cap_stats {
	uint64_t packets, bytes, kernel_drops, sensor_drops, streams;
	uint64_t non_ip, ipv6_ext_skipped, ip_fragments, bad_packets;
	uint64_t midstream_pickups, gaps, lost_bytes, evicted, idle_closed, oversize_msgs;
	uint64_t nids_warnings;
};

#endif
