/* MySQL framing for the decoder: 3-byte length + sequence packets (0xffffff continuation,
 * oversized packets handed on as their head then skipped), resynchronisation on a chain
 * of plausible packets, and the zlib/zstd compressed protocol around them. */
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

/* ---------- packet framing and resynchronisation ---------- */

/* A command byte a client may send: a chain of packets is only believed from one. */
int my_valid_cmd(uint8_t c)
{
	switch (c) {
	case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06: case 0x07:
	case 0x08: case 0x09: case 0x0a: case 0x0c: case 0x0d: case 0x0e: case 0x11:
	case 0x12: case 0x13: case 0x15: case 0x16: case 0x17: case 0x18: case 0x19:
	case 0x1a: case 0x1b: case 0x1c: case 0x1e: case 0x1f: case 0xfa:
		return 1;
	default:
		return 0;
	}
}


/* Does a chain of packets starting at b look like this direction's traffic?
 * strict: must end exactly at n. Returns 1 yes, 0 no, -1 cannot tell yet. */
static int raw_chain(const struct my *m, int dir, const uint8_t *b, size_t n, int strict, int inner)
{
	size_t off = 0;
	int count = 0, cont = 0;
	uint8_t prev = 0;
	while (n - off >= 4) {
		uint32_t plen = my_le24(b + off);
		uint8_t seq = b[off + 3];
		if (cont || (dir == TO_CLIENT && count > 0)) {
			if (seq != (uint8_t)(prev + 1))
				return 0;
		} else if (dir == TO_SERVER) {
			if (seq != 0 || plen == 0)
				return 0;
			if (n - off > 4 && !my_valid_cmd(b[off + 4]))
				return 0;
		} else {
			if (plen == 0 || (!inner && seq != 1))
				return 0;
		}
		(void)m;
		if (plen > n - off - 4)
			return strict ? 0 : 1;
		cont = plen == 0xffffff;
		prev = seq;
		off += 4 + (size_t)plen;
		if (++count >= MY_SYNC_CHAIN)
			return 1; /* long enough to believe; bounds the scan's work */
	}
	if (off == n)
		return count > 0;
	return strict ? 0 : (count > 0 ? 1 : -1);
}

static int zlib_head(const uint8_t *b)
{
	return (b[0] & 0x0f) == 8 && ((b[0] << 8) | b[1]) % 31 == 0;
}

static int zstd_head(const uint8_t *b)
{
	return b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd;
}

/* Same for compressed frames: header 7 bytes, payload a zlib/zstd stream or (length 0)
 * a stored packet. -1 when the first frame is too short to judge. */
static int z_chain(int dir, const uint8_t *b, size_t n, int strict)
{
	size_t off = 0;
	int count = 0;
	while (n - off >= 7) {
		uint32_t clen = my_le24(b + off), ulen = my_le24(b + off + 4);
		const uint8_t *pl = b + off + 7;
		size_t have = n - off - 7;
		if (clen == 0)
			return 0;
		if (ulen == 0) {
			if (have < 5)
				return count ? (strict ? 0 : 1) : -1;
			uint32_t ilen = my_le24(pl);
			if (ilen + 4 > clen)
				return 0;
			if (dir == TO_SERVER && count == 0 && (pl[3] != 0 || !my_valid_cmd(pl[4])))
				return 0;
		} else {
			if (have < 4)
				return count ? (strict ? 0 : 1) : -1;
			if (!zlib_head(pl) && !zstd_head(pl))
				return 0;
		}
		if (clen > have)
			return strict ? 0 : 1;
		off += 7 + (size_t)clen;
		if (++count >= MY_SYNC_CHAIN)
			return 1;
	}
	if (off == n)
		return count > 0;
	return strict ? 0 : (count > 0 ? 1 : -1);
}

/* For probe(): do these first bytes chain like a plain or compressed packet stream of
 * this direction, ending exactly at len? */
int my_chain_plausible(int dir, const uint8_t *b, size_t len)
{
	return raw_chain(NULL, dir, b, len, 1, 0) == 1 || z_chain(dir, b, len, 1) == 1;
}

/* Where does the next packet start? >= 0 offset, -1 need more bytes, -2 drop all. */
static long find_sync(struct my *m, int dir, const uint8_t *b, size_t len, int inner)
{
	if (dir == TO_CLIENT && !m->pend_n) {
		/* Nothing asked: only a greeting is worth waiting for. */
		if (!m->any_cmd && len >= 5 && b[3] == 0 && b[4] == 0x0a && raw_chain(m, dir, b, len, 0, 1) == 1)
			return 0;
		return len < 5 && !m->any_cmd ? -1 : -2;
	}
	if (len < 5)
		return -1;
	size_t scan = len - 4 < MY_SYNC_SCAN ? len - 4 : MY_SYNC_SCAN;
	for (size_t o = 0; o < scan; o++) {
		const uint8_t *s = b + o;
		size_t sn = len - o;
		int raw = raw_chain(m, dir, s, sn, o > 0, inner);
		if (!inner && !m->z_decided) {
			/* Mid-stream: is compression on? Decide only on enough evidence. */
			int z = z_chain(dir, s, sn, o > 0);
			int raw_exact = raw_chain(m, dir, s, sn, 1, inner) == 1;
			if (z == 1 && !raw_exact) {
				m->z_on = 1;
				m->z_decided = 1;
				for (int d = 0; d < 2; d++) {
					m->z[d].sync = d != dir;
					m->z[d].fr.sync = 1;
				}
				return (long)o;
			}
			if (z == -1 && o == 0 && !raw_exact)
				return -1;
		}
		if (raw == 1) {
			if (!inner && m->midstream)
				m->z_decided = 1;
			return (long)o;
		}
		if (raw == -1 && o == 0)
			return -1;
	}
	return -2;
}

/* Walk the packets in b; returns bytes consumed. inner: b is decompressed data. */
size_t my_frame_run(struct my *m, int dir, struct my_framer *f, const uint8_t *b, size_t len,
			int inner)
{
	size_t off = 0;
	while (off < len && !m->stopped) {
		if (!inner && m->z_on)
			break; /* compression started: the rest is framed differently */
		if (f->skip_left) {
			size_t k = len - off < f->skip_left ? len - off : (size_t)f->skip_left;
			off += k;
			f->skip_left -= k;
			continue;
		}
		if (f->sync) {
			long at = find_sync(m, dir, b + off, len - off, inner);
			if (at == -1)
				break;
			if (at < 0) {
				off = len;
				break;
			}
			off += (size_t)at;
			f->sync = 0;
			continue;
		}
		if (len - off < 4)
			break;
		if (dir == TO_CLIENT && !f->cont) {
			/* rows of a result set: counted in a tight loop, no call per row */
			size_t k = m->up->rows(m, b + off, len - off);
			if (k) {
				off += k;
				continue;
			}
		}
		uint32_t plen = my_le24(b + off);
		uint8_t seq = b[off + 3];
		if (f->cont) {
			f->logical += plen;
			if (f->logical > MY_LOGICAL_MAX) {
				m->up->anomaly(m, dir, "mysql: packet chain longer than 1 GiB", 1);
				break;
			}
			m->up->cont(m, dir, plen);
			off += 4;
			f->skip_left = plen;
			f->cont = plen == 0xffffff;
			continue;
		}
		size_t hold = 4 + (size_t)plen;
		if (plen == 0xffffff || hold > MY_HOLD_MAX) {
			size_t head = dir == TO_SERVER ? MY_HEAD_TO_SERVER : MY_HEAD_TO_CLIENT;
			if (head > plen)
				head = plen;
			if (len - off < 4 + head)
				break;
			m->up->packet(m, dir, b + off + 4, head, plen, seq, 1);
			off += 4 + head;
			f->skip_left = plen - head;
			f->cont = plen == 0xffffff;
			f->logical = plen;
			continue;
		}
		if (len - off < hold)
			break;
		m->up->packet(m, dir, b + off + 4, plen, plen, seq, 0);
		off += hold;
	}
	return off;
}

/* ---------- compression ---------- */

void my_z_reset_dir(struct my_zdir *z)
{
	z->in_frame = 0;
	z->broken = 0;
	z->cf_left = 0;
	z->ib_n = 0;
	memset(&z->fr, 0, sizeof z->fr);
}

void my_z_start(struct my *m)
{
	m->z_on = 1;
	m->z_decided = 1;
	for (int d = 0; d < 2; d++) {
		my_z_reset_dir(&m->z[d]);
		m->z[d].sync = 0;
	}
}

static int z_inner_run(struct my *m, int dir)
{
	struct my_zdir *z = &m->z[dir];
	size_t k = my_frame_run(m, dir, &z->fr, z->ib, z->ib_n, 1);
	if (k) {
		memmove(z->ib, z->ib + k, z->ib_n - k);
		z->ib_n -= k;
	}
	if (z->ib_n == MY_HOLD_MAX && !m->stopped) {
		/* cannot happen with a sane framer; never spin */
		z->ib_n = 0;
		z->fr.sync = 1;
	}
	return m->stopped ? -1 : 0;
}

static int z_alloc(struct my_zdir *z)
{
	if (!z->ib) {
		z->ib = malloc(MY_HOLD_MAX);
		if (!z->ib)
			return -1;
	}
	return 0;
}

/* Decompressed output went wrong: drop the frame and resynchronise the inner stream. */
static void z_broken(struct my *m, int dir, const char *what)
{
	struct my_zdir *z = &m->z[dir];
	m->up->anomaly(m, dir, what, 0);
	z->broken = 1;
	z->ib_n = 0;
	memset(&z->fr, 0, sizeof z->fr);
	z->fr.sync = 1;
}

static void z_got(struct my *m, int dir, size_t got)
{
	struct my_zdir *z = &m->z[dir];
	z->cf_out += got;
	if (z->cf_out > z->cf_ulen || z->cf_out > MY_DECOMP_MAX) {
		z_broken(m, dir, "mysql: decompressed data exceeds its declared length");
		return;
	}
	z->ib_n += got;
	z_inner_run(m, dir);
}

static void z_feed(struct my *m, int dir, const uint8_t *p, size_t k)
{
	struct my_zdir *z = &m->z[dir];
	if (z->broken || z->done || k == 0)
		return;
	if (z->kind == Z_STORED) {
		while (k && !m->stopped) {
			size_t room = MY_HOLD_MAX - z->ib_n;
			size_t c = k < room ? k : room;
			memcpy(z->ib + z->ib_n, p, c);
			z->ib_n += c;
			p += c;
			k -= c;
			z_inner_run(m, dir);
		}
		return;
	}
	if (z->kind == Z_ZLIB) {
		z->zs.next_in = (Bytef *)(uintptr_t)p;
		z->zs.avail_in = (uInt)k;
		for (;;) {
			size_t room = MY_HOLD_MAX - z->ib_n;
			z->zs.next_out = z->ib + z->ib_n;
			z->zs.avail_out = (uInt)room;
			int rc = inflate(&z->zs, Z_NO_FLUSH);
			size_t got = room - z->zs.avail_out;
			if (got)
				z_got(m, dir, got);
			if (m->stopped || z->broken)
				return;
			if (rc == Z_STREAM_END) {
				z->done = 1;
				return;
			}
			if (rc != Z_OK && rc != Z_BUF_ERROR) {
				z_broken(m, dir, "mysql: zlib data does not inflate");
				return;
			}
			if (z->zs.avail_in == 0 && got < room)
				return;
			if (rc == Z_BUF_ERROR && got == 0)
				return;
		}
	}
	ZSTD_inBuffer in = { p, k, 0 };
	for (;;) {
		size_t room = MY_HOLD_MAX - z->ib_n;
		ZSTD_outBuffer out = { z->ib + z->ib_n, room, 0 };
		size_t rc = ZSTD_decompressStream(z->zd, &out, &in);
		if (ZSTD_isError(rc)) {
			z_broken(m, dir, "mysql: zstd data does not decompress");
			return;
		}
		if (out.pos)
			z_got(m, dir, out.pos);
		if (m->stopped || z->broken)
			return;
		if (rc == 0) {
			z->done = 1;
			return;
		}
		if (in.pos == in.size && out.pos < room)
			return;
	}
}

static int z_begin(struct my *m, int dir, uint32_t clen, uint32_t ulen, const uint8_t *pl)
{
	struct my_zdir *z = &m->z[dir];
	z->in_frame = 1;
	z->broken = 0;
	z->done = 0;
	z->cf_left = clen;
	z->cf_ulen = ulen;
	z->cf_out = 0;
	if (z_alloc(z) < 0) {
		m->up->anomaly(m, dir, "mysql: out of memory for decompression", 1);
		return -1;
	}
	if (ulen == 0) {
		z->kind = Z_STORED;
		return 0;
	}
	if (clen >= 4 && zstd_head(pl)) {
		z->kind = Z_ZSTD;
		if (!z->zd) {
			z->zd = ZSTD_createDStream();
			if (!z->zd) {
				m->up->anomaly(m, dir, "mysql: out of memory for decompression", 1);
				return -1;
			}
			/* a payload is at most 16 MiB: refuse bigger windows */
			ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax, 24);
		}
		ZSTD_DCtx_reset(z->zd, ZSTD_reset_session_only);
		return 0;
	}
	z->kind = Z_ZLIB;
	int rc = z->zs_ok ? inflateReset(&z->zs) : inflateInit(&z->zs);
	if (rc != Z_OK) {
		m->up->anomaly(m, dir, "mysql: out of memory for decompression", 1);
		return -1;
	}
	z->zs_ok = 1;
	return 0;
}

static void z_end(struct my *m, int dir)
{
	struct my_zdir *z = &m->z[dir];
	if (z->kind != Z_STORED && !z->broken && !m->stopped && z->cf_out < z->cf_ulen)
		z_broken(m, dir, "mysql: compressed frame shorter than declared");
	z->in_frame = 0;
	z->broken = 0;
	z->done = 0;
}

static long z_find_sync(struct my *m, int dir, const uint8_t *b, size_t len)
{
	(void)m;
	if (len < 8)
		return -1;
	size_t scan = len - 7 < MY_SYNC_SCAN ? len - 7 : MY_SYNC_SCAN;
	for (size_t o = 0; o < scan; o++) {
		int r = z_chain(dir, b + o, len - o, o > 0);
		if (r == 1)
			return (long)o;
		if (r == -1 && o == 0)
			return -1;
	}
	return -2;
}

size_t my_z_run(struct my *m, int dir, const uint8_t *b, size_t len)
{
	struct my_zdir *z = &m->z[dir];
	size_t off = 0;
	while (off < len && !m->stopped) {
		if (!z->in_frame) {
			if (z->sync) {
				if (dir == TO_CLIENT && !m->pend_n && m->any_cmd) {
					off = len; /* nothing asked: drop until a command */
					break;
				}
				long at = z_find_sync(m, dir, b + off, len - off);
				if (at == -1)
					break;
				if (at < 0) {
					off = len;
					break;
				}
				off += (size_t)at;
				z->sync = 0;
			}
			if (len - off < 7)
				break;
			uint32_t clen = my_le24(b + off), ulen = my_le24(b + off + 4);
			size_t need = 7 + (clen < 4 ? clen : 4);
			if (len - off < need)
				break;
			if (z_begin(m, dir, clen, ulen, b + off + 7) < 0)
				break;
			off += 7;
			if (clen == 0) {
				z_end(m, dir);
				continue;
			}
		}
		size_t k = len - off < z->cf_left ? len - off : z->cf_left;
		z_feed(m, dir, b + off, k);
		off += k;
		z->cf_left -= k;
		if (z->cf_left == 0)
			z_end(m, dir);
	}
	return off;
}

