/* PostgreSQL decoder: what a well-formed message looks like (length bounds and content
 * checks per type and direction), so a flow picked up mid-stream or after a gap finds the
 * next real message boundary and foreign bytes are not read as PostgreSQL. */
#include "pgsql_int.h"

/* ---- message framing knowledge ---- */

/* Length bounds of a typed message (the length field, which counts itself).
 * Returns 0 when t is not a message type of this direction. */
int pg_msg_bounds(int to_server, uint8_t t, uint32_t *min, uint32_t *max)
{
	*min = 4;
	*max = PG_MAX_MSG;
	if (to_server) {
		switch (t) {
		case 'S': case 'H': case 'c': case 'X':
			*max = 4;
			return 1;
		case 'Q': *min = 5; return 1;
		case 'P': *min = 8; return 1;
		case 'B': *min = 12; return 1;
		case 'E': *min = 9; *max = 1u << 16; return 1;
		case 'D': *min = 6; *max = 1u << 16; return 1;
		case 'C': *min = 6; *max = 1u << 16; return 1;
		case 'F': *min = 14; return 1;
		case 'f': *min = 5; *max = 1u << 20; return 1;
		case 'd': return 1;
		case 'p': *min = 5; *max = 1u << 20; return 1;
		default: return 0;
		}
	}
	switch (t) {
	case '1': case '2': case '3': case 'n': case 'I': case 's': case 'c':
		*max = 4;
		return 1;
	case 'Z': *min = *max = 5; return 1;
	case 'K': *min = 12; *max = 4 + 4 + 256; return 1;
	case 'R': *min = 8; *max = 1u << 16; return 1;
	case 'S': *min = 6; *max = 1u << 16; return 1;
	case 'C': *min = 5; *max = 1u << 16; return 1;
	case 'E': case 'N': *min = 5; *max = 1u << 20; return 1;
	case 'A': *min = 10; *max = 1u << 20; return 1;
	case 'G': case 'H': case 'W': *min = 7; *max = 1u << 16; return 1;
	case 't': *min = 6; *max = 1u << 20; return 1;
	case 'T': *min = 6; return 1;
	case 'D': *min = 6; return 1;
	case 'd': return 1;
	case 'V': *min = 8; return 1;
	case 'v': *min = 12; *max = 1u << 20; return 1;
	default: return 0;
	}
}

/* A whole message whose contents also look right (used to trust a resync point). */
static int msg_content_ok(int to_server, uint8_t t, const uint8_t *body, size_t n)
{
	if (!to_server && t == 'Z')
		return n == 1 && (byte_at(body, n, 0) == 'I' || byte_at(body, n, 0) == 'T' || byte_at(body, n, 0) == 'E');
	if (t == 'Q' && to_server)
		return n > 0 && byte_at(body, n, n - 1) == 0;
	if (!to_server && (t == 'C' || t == 'S' || t == 'E' || t == 'N'))
		return n > 0 && byte_at(body, n, n - 1) == 0;
	if (!to_server && t == 'R')
		return be32_at(body) <= 12;
	if (t == 'D' && !to_server) {
		/* column count then (len, bytes) pairs must fill the message exactly */
		struct rd r = rd_make(body, n);
		uint16_t nc = rd_be16(&r);
		for (uint16_t i = 0; i < nc && !r.err; i++) {
			uint32_t l = rd_be32(&r);
			if (l != 0xffffffffu)
				rd_skip(&r, l);
		}
		return !r.err && rd_left(&r) == 0;
	}
	return 1;
}

/* Walks messages from p; returns how many whole plausible ones follow each other, and
 * whether the chain ends exactly at n (*exact) or with a plausible unfinished one. */
size_t pg_chain_len(int to_server, const uint8_t *p, size_t n, int *exact, size_t *partial_total)
{
	size_t pos = 0, count = 0;
	*exact = 0;
	*partial_total = 0;
	while (n - pos >= 5) {
		uint32_t mn, mx;
		uint8_t t = byte_at(p, n, pos);
		uint32_t ml = be32_at(p + pos + 1);
		if (!pg_msg_bounds(to_server, t, &mn, &mx) || ml < mn || ml > mx)
			return count;
		if ((uint64_t)ml + 1 > n - pos) {
			*partial_total = (size_t)ml + 1;
			return count;
		}
		if (!msg_content_ok(to_server, t, p + pos + 5, ml - 4))
			return count;
		count++;
		pos += (size_t)ml + 1;
	}
	*exact = pos == n;
	return count;
}

/* A startup-family packet (startup 3.x, SSL, GSS, cancel) at p? 1 yes, 0 no, -1 too short. */
int pg_looks_untyped(const uint8_t *p, size_t n)
{
	if (n < 8)
		return -1;
	uint32_t ml = be32_at(p), code = be32_at(p + 4);
	if ((code == PG_CODE_SSL || code == PG_CODE_GSS) && ml == 8)
		return 1;
	if (code == PG_CODE_CANCEL && ml == 16)
		return 1;
	if ((code >> 16) == 3 && ml > 8 && ml <= PG_MAX_STARTUP) {
		size_t lim = n < ml ? n : ml;
		/* a startup packet names a user; its parameters start right after the code */
		for (size_t i = 8; i + 5 <= lim; i++)
			if (memcmp(p + i, "user", 5) == 0)
				return 1;
		return lim == ml ? 0 : -1;
	}
	return 0;
}

/* Bytes of another protocol that shows up on PostgreSQL ports: a MySQL greeting or
 * login packet (3-byte length, sequence number), or HTTP. */
int pg_looks_foreign(int to_server, const uint8_t *p, size_t n)
{
	int exact;
	size_t partial;
	if (pg_chain_len(to_server, p, n, &exact, &partial) > 0 || partial)
		return 0; /* reads as PostgreSQL */
	struct rd r = rd_make(p, n);
	size_t ml = rd_le24(&r);
	uint8_t seq = rd_u8(&r), first = rd_u8(&r);
	if (!r.err && seq == 0 && first == 0x0a && ml >= 20 && ml < 1024)
		return 1; /* MySQL server greeting */
	if (!r.err && seq == 1 && ml >= 32 && ml < 8192)
		return 1; /* MySQL login request */
	static const char *const http[] = { "GET ", "POST ", "PUT ", "HEAD ", "HTTP/1.", "OPTIONS " };
	for (size_t i = 0; i < sizeof http / sizeof http[0]; i++) {
		size_t k = strlen(http[i]);
		if (n >= k && memcmp(p, http[i], k) == 0)
			return 1;
	}
	return 0;
}

int pg_looks_tls(const uint8_t *p, size_t n)
{
	struct rd r = rd_make(p, n);
	uint8_t type = rd_u8(&r), major = rd_u8(&r), minor = rd_u8(&r);
	return !r.err && (type == 0x16 || type == 0x17 || type == 0x15) && major == 0x03 && minor <= 0x04;
}

/* ---- resynchronisation ---- */

/* The visible start of an unfinished DataRow (total bytes with its type byte): a sane
 * column count and column lengths that stay inside the message. At least 3 columns or
 * 64 bytes must be visible, so random bytes rarely pass. */
static int datarow_head_ok(const uint8_t *p, size_t n, size_t total)
{
	if (byte_at(p, n, 0) != 'D' || total <= PG_RESYNC_PENDING)
		return 0;
	struct rd r = rd_make(p, n);
	rd_skip(&r, 5);
	uint16_t nc = rd_be16(&r);
	if (r.err || nc == 0 || nc > 1664)
		return 0;
	size_t pos = 7, seen = 0;
	for (uint16_t i = 0; i < nc; i++) {
		uint32_t l = rd_be32(&r);
		if (r.err)
			break;
		pos += 4;
		if (l == 0xffffffffu) {
			seen++;
			continue;
		}
		if ((uint64_t)pos + l > total || (i + 1 == nc && (uint64_t)pos + l != total))
			return 0;
		seen++;
		if ((uint64_t)pos + l >= n)
			break;
		rd_skip(&r, l);
		pos += l;
	}
	return seen >= 3 || seen == nc || pos >= 64;
}

/* Looks for a trustworthy message boundary in p. Returns 1 with *adv = the offset to
 * resume at, or 0 with *adv = bytes that can be dropped while waiting for more. */
int pg_resync_scan(struct pg *s, int to_server, const uint8_t *p, size_t n, size_t start, size_t *adv)
{
	size_t pending = (size_t)-1;
	for (size_t o = start; o < n; o++) {
		int exact;
		size_t partial;
		size_t c = pg_chain_len(to_server, p + o, n - o, &exact, &partial);
		if ((c >= 1 && exact) || c >= 3 || (c >= 2 && partial)) {
			*adv = o;
			return 1;
		}
		if (c == 0 && partial && !to_server && partial <= PG_RESYNC_BIGROW &&
		    datarow_head_ok(p + o, n - o, partial)) {
			/* picked up inside a large result: a DataRow too big to wait for,
			 * whose visible columns fit its length, is trusted as a boundary */
			*adv = o;
			return 1;
		}
		if (c == 0 && partial && partial <= PG_RESYNC_PENDING && pending == (size_t)-1)
			pending = o;
	}
	(void)s;
	if (pending != (size_t)-1) {
		*adv = pending;
		return 0;
	}
	/* keep a possible header split across segments */
	*adv = n > 4 ? n - 4 : 0;
	return 0;
}
