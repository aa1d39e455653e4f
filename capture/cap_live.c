/* Live capture on an interface: the pcap handle, the default filter, PACKET_FANOUT, the
 * privilege drop once the handle is open, and the poll loop. */
#include "cap_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#ifdef __linux__
#include <linux/if_packet.h>
#endif

/* Join a PACKET_FANOUT group in hash mode (after the filter is set: the kernel picks the
 * member first, then runs that member's filter, so every member must have the same one). */
static int join_fanout(pcap_t *p, int group, const char *iface, char *err, size_t errlen)
{
	if (group <= 0)
		return 0;
#ifdef PACKET_FANOUT
	int fd = pcap_fileno(p);
	uint32_t val = (uint32_t)(group & 0xffff) |
		       (uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16;
	if (fd >= 0 && setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof val) == 0)
		return 0;
	snprintf(err, errlen, "%s: cannot join fanout group %d: %s", iface, group,
		 fd < 0 ? "no socket" : strerror(errno));
#else
	(void)p;
	snprintf(err, errlen, "%s: fanout groups need Linux (PACKET_FANOUT)", iface);
#endif
	return -1;
}
/* Without -f: only TCP (all of it when probing other ports, else the database ports),
 * in the nested form that also matches one or two VLAN tags (a flat `vlan and ...`
 * shifts offsets for the rest of the expression; see NOTES-libnids.md). */
void cap_default_filter(const struct cap_config *cfg, char *buf, size_t len)
{
	char p[1024] = "tcp";
	if (!cfg->probe_other_ports) {
		size_t n = 0;
		p[0] = 0;
		for (int d = 0; d < PROTO_MAX && n < sizeof p; d++)
			for (int i = 0; i < cfg->ports[d].n && n < sizeof p; i++)
				n += (size_t)snprintf(p + n, sizeof p - n, "%stcp port %d", n ? " or " : "",
						      cfg->ports[d].port[i]);
		if (!p[0])
			snprintf(p, sizeof p, "tcp");
	}
	snprintf(buf, len, "(%s) or (vlan and ((%s) or (vlan and (%s))))", p, p, p);
}

int cap_live(struct cap *c, const char *iface, const char *bpf, const char *drop_user,
	     const struct cap_live_hooks *hooks, char *err, size_t errlen)
{
	char deflt[4096];
	if (!bpf) {
		cap_default_filter(&c->cfg, deflt, sizeof deflt);
		bpf = deflt;
	}
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(iface, eb);
	if (!p) {
		snprintf(err, errlen, "%s: %s", iface, eb);
		return -1;
	}
	pcap_set_snaplen(p, CAP_SNAPLEN);
	pcap_set_promisc(p, 1);
	pcap_set_timeout(p, 100);
	pcap_set_buffer_size(p, c->cfg.kernel_buffer_mb * 1024 * 1024);
	int rc = pcap_activate(p);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	c->dlt = pcap_datalink(p);
	if (!l2_supported(c->dlt)) {
		snprintf(err, errlen, "%s: unsupported link type %d", iface, c->dlt);
		pcap_close(p);
		return -1;
	}
	int frc = capread_set_filter(p, bpf, iface, err, errlen);
	if (frc != 0) {
		pcap_close(p);
		return frc;
	}
	if (join_fanout(p, c->cfg.fanout_group, iface, err, errlen) != 0 ||
	    pcap_setnonblock(p, 1, eb) != 0 ||
	    (drop_user && cap_drop_privileges(drop_user, err, errlen) != 0)) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", iface, eb);
		pcap_close(p);
		return -1;
	}
	int fd = pcap_get_selectable_fd(p);
	if (hooks) {
		cap_set_hooks(c, hooks);
		if (hooks->on_ready)
			hooks->on_ready(hooks->ctx);
	}
	rc = 0;
	while (!cap_stop_req) {
		if (cap_hup_req) {
			cap_hup_req = 0;
			if (hooks && hooks->on_hup) /* outputs are the analyzer's: reopen in its order */
				decstage_call(c->ds, hooks->on_hup, hooks->ctx);
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, 200);
		if (pr < 0 && errno != EINTR) {
			snprintf(err, errlen, "%s: poll: %s", iface, strerror(errno));
			rc = -1;
			break;
		}
		int n = pcap_dispatch(p, 10000, cappkt_on_packet, (u_char *)c);
		decstage_flush(c->ds); /* live: hand each batch over at once */
		if (n == PCAP_ERROR) {
			snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
			rc = -1;
			break;
		}
		/* Without traffic, packet time stands still: advance it with the clock so
		 * windows and idle sweeps still run. */
		if (n == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ev_time wall = (ev_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			if (wall > c->now) {
				c->now = wall;
				if (c->now - c->last_tick >= CAP_TICK_US) {
					c->last_tick = c->now;
					decstage_tick(c->ds, c->now);
					cappkt_sweep_idle(c);
				}
			}
		}
		struct pcap_stat ps;
		if (pcap_stats(p, &ps) == 0)
			c->st.kernel_drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
		caphooks_periodic(c);
	}
	pcap_close(p);
	return rc;
}
