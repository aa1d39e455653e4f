/* The benchmark floor: a bare libpcap read loop over one or more capture files (the
 * same pcap_dispatch batches dbtap uses), counting packets and bytes. With -f it also
 * applies a BPF filter, which contrib/bench uses to check a flow split.
 * Build: cc -O2 -o pcap_count pcap_count.c -lpcap */
#include <pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct pc_count {
	uint64_t packets, bytes, sum; /* sum: touch the first byte so the data is read */
};

static void pc_on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct pc_count *c = (struct pc_count *)(void *)user;
	c->packets++;
	c->bytes += h->caplen;
	if (h->caplen)
		c->sum += bytes[0];
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "-f") == 0) {
		filter = argv[2];
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: pcap_count [-f BPF] FILE...\n");
		return 2;
	}
	struct pc_count c = { 0, 0, 0 };
	for (; i < argc; i++) {
		char eb[PCAP_ERRBUF_SIZE] = "";
		pcap_t *p = pcap_open_offline(argv[i], eb);
		if (!p) {
			fprintf(stderr, "pcap_count: %s: %s\n", argv[i], eb);
			return 1;
		}
		if (filter) {
			struct bpf_program prog;
			if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 ||
			    pcap_setfilter(p, &prog) != 0) {
				fprintf(stderr, "pcap_count: filter: %s\n", pcap_geterr(p));
				pcap_close(p);
				return 2;
			}
			pcap_freecode(&prog);
		}
		int n;
		while ((n = pcap_dispatch(p, 4096, pc_on_packet, (u_char *)&c)) > 0)
			;
		if (n == PCAP_ERROR) {
			fprintf(stderr, "pcap_count: %s: %s\n", argv[i], pcap_geterr(p));
			pcap_close(p);
			return 1;
		}
		pcap_close(p);
	}
	printf("packets %llu bytes %llu check %llu\n", (unsigned long long)c.packets,
	       (unsigned long long)c.bytes, (unsigned long long)(c.sum & 0xff));
	return 0;
}
