/* The benchmark's "libnids only" row (the second column): the floor's libpcap
 * loop feeding libnids the way dbtap does (our own handle, a raw dead handle for libnids,
 * checksums not checked, every stream collected), with a callback that only counts the
 * delivered bytes. dbtap's time over this one is what decoding and analysis add.
 * Ethernet captures only (what the bench makes on lo).
 * Build: cc -O2 -o nids_count nids_count.c -lnids -lpcap */
#include <nids.h>
#include <pcap.h>
#include <stdint.h>
#include <stdio.h>

struct nc_count {
	uint64_t packets, bytes, sum;
};
static struct nc_count g_count;

static void nc_on_stream(struct tcp_stream *a, void **param)
{
	(void)param;
	if (a->nids_state == NIDS_JUST_EST) {
		a->client.collect++;
		a->server.collect++;
		return;
	}
	if (a->nids_state != NIDS_DATA)
		return;
	const struct half_stream *h = a->client.count_new ? &a->client : &a->server;
	g_count.bytes += (uint64_t)h->count_new;
	if (h->count_new)
		g_count.sum += (uint8_t)h->data[0]; /* touch the data, as a decoder would */
}

static void nc_on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	(void)user;
	g_count.packets++;
	if (h->caplen < 14)
		return;
	struct pcap_pkthdr ip = *h;
	ip.caplen -= 14;
	ip.len = ip.caplen;
	nids_pcap_handler(NULL, &ip, (u_char *)bytes + 14);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nids_count FILE\n");
		return 2;
	}
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_open_offline(argv[1], eb);
	if (!p) {
		fprintf(stderr, "nids_count: %s: %s\n", argv[1], eb);
		return 1;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		fprintf(stderr, "nids_count: %s: only Ethernet captures\n", argv[1]);
		return 1;
	}
	nids_params.pcap_desc = pcap_open_dead(DLT_RAW, 262144);
	nids_params.n_tcp_streams = 16384 * 2 + 16; /* as dbtap sets it for its default max_flows */
	nids_params.scan_num_hosts = 0;
	nids_params.tcp_workarounds = 1;
	if (!nids_init()) {
		fprintf(stderr, "nids_count: %s\n", nids_errbuf);
		return 1;
	}
	static struct nids_chksum_ctl all = { 0, 0, NIDS_DONT_CHKSUM, 0 };
	nids_register_chksum_ctl(&all, 1);
	nids_register_tcp((void *)nc_on_stream);
	int n;
	while ((n = pcap_dispatch(p, 4096, nc_on_packet, NULL)) > 0)
		;
	nids_exit();
	if (n == PCAP_ERROR) {
		fprintf(stderr, "nids_count: %s: %s\n", argv[1], pcap_geterr(p));
		return 1;
	}
	printf("packets %llu bytes %llu check %llu\n", (unsigned long long)g_count.packets,
	       (unsigned long long)g_count.bytes, (unsigned long long)(g_count.sum & 1));
	pcap_close(p);
	return 0;
}
