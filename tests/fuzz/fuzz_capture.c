/* Fuzz target: a whole (mutated) capture file through the full pipeline — pcap reader,
 * link-layer shim, IPv6 translation, libnids with mid-stream pickup and gap handling,
 * both decoders (content probing on, inline or on the decoder thread), the analyzer — with
 * no sink. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "an.h"
#include "cap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	FILE *fp = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (!fp)
		return 0;
	struct an_config ac;
	an_config_defaults(&ac);
	ac.max_sessions = 64;
	struct sink_ids ids = { 1, 1, 1, 1 };
	struct an *an = an_new(&ac, NULL, 0, &ids, 1);
	struct cap_config cc;
	cap_config_defaults(&cc);
	cc.max_flows = 64;
	cc.v6_map_size = 64;
	cc.decoder_thread = data[size - 1] & 1; /* both ways of running the decoders */
	char err[512];
	struct cap *c = an ? cap_new(&cc, an, 0, err, sizeof err) : NULL;
	if (c) {
		if (cap_read_fp(c, fp, "fuzz", NULL, 0, err, sizeof err) != 0 && getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "%s\n", err);
		cap_finish(c);
		if (getenv("FUZZ_VERBOSE")) {
			struct cap_stats st;
			cap_get_stats(c, &st);
			fprintf(stderr, "packets %llu streams %llu\n", (unsigned long long)st.packets,
				(unsigned long long)st.streams);
		}
		cap_free(c);
	} else {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "%s\n", an ? err : "analyzer: out of memory");
		fclose(fp);
	}
	an_free(an);
	an_config_free(&ac);
	return 0;
}
