/* One record as one JSON line, in the formats a SIEM takes (storage/SCHEMA.md, storage/OCSF.md):
 * "dbtap" (schema_version 2 of dbtap's own lines) or "ocsf" (OCSF 1.3 classes 6005, 3002,
 * 2004). Shared by the JSON-lines sink and the syslog sink. */
#ifndef DBTAP_EVLINE_H
#define DBTAP_EVLINE_H

#include <stdint.h>

#include "jsonw.h"
#include "sink.h"

#define EVL_SCHEMA_VERSION 2 /* of the dbtap format: bump when a field changes meaning */

enum evl_format { EVL_DBTAP, EVL_OCSF };

struct evl_opts {
	enum evl_format format;
	const char *sensor; /* on every line; NULL = none */
	/* the last flow's Community ID: a session's statements come in a row */
	char cid_cip[48], cid_sip[48], cid[40];
	int cid_cport, cid_sport;
};

/* "dbtap" / "ocsf" -> 0 and *f; -1 otherwise. */
int evl_parse_format(const char *s, enum evl_format *f);

/* Appends one JSON object (no newline) for r to w. Returns 1 when a line was written, 0
 * when the record has no line in this format (baseline rows; in OCSF the run rows and the
 * session updates that are neither a login nor an end), -ENOMEM when w ran out of memory.
 * *sev (may be NULL) gets the syslog severity (RFC 5424: 2 crit .. 6 info). */
int evl_format_rec(struct jw *w, struct evl_opts *o, const struct rec *r, int *sev);

/* Community ID v1 (github.com/corelight/community-id-spec) of a flow between two textual
 * IPv4/IPv6 addresses: "1:" + base64(SHA1(seed, addresses, proto, 0, ports)), ordered so
 * both directions give the same id. out >= 32 bytes. 0, or -1 when an address does not
 * parse or the two are of different families (out is then ""). */
int evl_community_id(const char *saddr, int sport, const char *daddr, int dport, int proto,
		     uint16_t seed, char *out, unsigned long outlen);

#endif
