/* Reading capture files (pcap, pcapng, standard input), with a progress line; the BPF
 * filter set-up that live capture shares. */
#include "cap_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/stat.h>

void capread_show_progress(struct cap *c, int final)
{
	time_t now = time(NULL);
	if (!final && now == c->last_progress)
		return;
	c->last_progress = now;
	char pct[16] = "";
	if (c->cur_fp && c->cur_size > 0) {
		long pos = final ? c->cur_size : ftell(c->cur_fp);
		if (pos >= 0)
			snprintf(pct, sizeof pct, " %3d%%", (int)(pos * 100 / c->cur_size));
	}
	fprintf(stderr, "\rdbtap: %s:%s %llu packets, %llu MB, %llu sessions%s", c->cur_file ? c->cur_file : "",
		pct, (unsigned long long)c->st.packets, (unsigned long long)(c->st.bytes >> 20),
		(unsigned long long)c->st.streams, final ? "\n" : "");
}
int capread_set_filter(pcap_t *p, const char *bpf, const char *what, char *err, size_t errlen)
{
	if (!bpf || !*bpf)
		return 0;
	struct bpf_program prog;
	if (pcap_compile(p, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s: bad filter '%s': %s", what, bpf, pcap_geterr(p));
		return CAP_EUSAGE;
	}
	int rc = pcap_setfilter(p, &prog);
	pcap_freecode(&prog);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot set filter: %s", what, pcap_geterr(p));
		return -1;
	}
	return 0;
}

static int read_handle(struct cap *c, pcap_t *p, const char *name, const char *bpf, int progress,
		       char *err, size_t errlen)
{
	c->dlt = pcap_datalink(p);
	if (!l2_supported(c->dlt)) {
		const char *dn = pcap_datalink_val_to_name(c->dlt);
		snprintf(err, errlen, "%s: unsupported link type %s (%d)", name, dn ? dn : "?", c->dlt);
		pcap_close(p);
		return -1;
	}
	int frc = capread_set_filter(p, bpf, name, err, errlen);
	if (frc != 0) {
		pcap_close(p);
		return frc;
	}
	c->cur_file = name;
	c->progress = progress;
	c->cur_fp = pcap_file(p);
	c->cur_size = 0;
	struct stat sb;
	if (c->cur_fp && fstat(fileno(c->cur_fp), &sb) == 0 && S_ISREG(sb.st_mode))
		c->cur_size = (long)sb.st_size;
	int rc = 0;
	while (!cap_stop_req) {
		int n = pcap_dispatch(p, 4096, cappkt_on_packet, (u_char *)c);
		if (n == 0)
			break; /* end of file */
		if (n == PCAP_ERROR) {
			snprintf(err, errlen, "%s: %s", name, pcap_geterr(p));
			rc = -1;
			break;
		}
		if (n == PCAP_ERROR_BREAK)
			break;
		caphooks_periodic(c);
	}
	if (progress)
		capread_show_progress(c, 1);
	c->cur_file = NULL;
	c->cur_fp = NULL;
	pcap_close(p);
	return rc;
}

FILE *cap_open_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* a 1 MiB buffer (4 KiB by default) and no stdio locking: libpcap reads it with two
	 * freads per packet, and only this thread touches it */
	setvbuf(fp, NULL, _IOFBF, 1u << 20);
	__fsetlocking(fp, FSETLOCKING_BYCALLER);
	return fp;
}

int cap_read_fp(struct cap *c, FILE *fp, const char *name, const char *bpf, int progress, char *err,
		size_t errlen)
{
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, eb);
	if (!p) {
		snprintf(err, errlen, "%s: %s", name, eb[0] ? eb : "cannot read");
		fclose(fp);
		return CAP_ERR;
	}
	return read_handle(c, p, name, bpf, progress, err, errlen);
}
