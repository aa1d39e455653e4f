/* Bounds-checked reader over untrusted bytes.
 * Every read checks `len - off < n` (no overflow); past the end a read returns 0
 * (or an empty view) and sets the sticky `err` flag, so a message is read whole and
 * checked once at the end. Never asserts, never jumps. */
#ifndef DBTAP_RD_H
#define DBTAP_RD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ev.h" /* struct strv */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

static inline struct rd rd_make(const uint8_t *p, size_t len)
{
	return (struct rd){ p, len, 0, 0 };
}

static inline size_t rd_left(const struct rd *r)
{
	return r->err ? 0 : r->len - r->off;
}

/* 1 if n more bytes can be read; otherwise sets err and returns 0. */
static inline int rd_need(struct rd *r, size_t n)
{
	if (r->err || r->len - r->off < n) {
		r->err = 1;
		return 0;
	}
	return 1;
}

static inline uint8_t rd_u8(struct rd *r)
{
	if (!rd_need(r, 1))
		return 0;
	return r->p[r->off++];
}

static inline uint16_t rd_be16(struct rd *r)
{
	if (!rd_need(r, 2))
		return 0;
	const uint8_t *b = r->p + r->off;
	r->off += 2;
	return (uint16_t)((b[0] << 8) | b[1]);
}

static inline uint32_t rd_be32(struct rd *r)
{
	if (!rd_need(r, 4))
		return 0;
	const uint8_t *b = r->p + r->off;
	r->off += 4;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline uint64_t rd_be64(struct rd *r)
{
	uint64_t hi = rd_be32(r);
	return (hi << 32) | rd_be32(r);
}

static inline uint16_t rd_le16(struct rd *r)
{
	if (!rd_need(r, 2))
		return 0;
	const uint8_t *b = r->p + r->off;
	r->off += 2;
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t rd_le24(struct rd *r)
{
	if (!rd_need(r, 3))
		return 0;
	const uint8_t *b = r->p + r->off;
	r->off += 3;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16);
}

static inline uint32_t rd_le32(struct rd *r)
{
	if (!rd_need(r, 4))
		return 0;
	const uint8_t *b = r->p + r->off;
	r->off += 4;
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static inline uint64_t rd_le64(struct rd *r)
{
	uint64_t lo = rd_le32(r);
	return lo | ((uint64_t)rd_le32(r) << 32);
}

/* MySQL length-encoded integer. 0xfb (NULL) sets *is_null when given; 0xff is an error. */
static inline uint64_t rd_lenenc(struct rd *r, int *is_null)
{
	if (is_null)
		*is_null = 0;
	uint8_t b = rd_u8(r);
	if (b < 0xfb)
		return b;
	switch (b) {
	case 0xfb:
		if (is_null)
			*is_null = 1;
		return 0;
	case 0xfc:
		return rd_le16(r);
	case 0xfd:
		return rd_le24(r);
	case 0xfe:
		return rd_le64(r);
	default:
		r->err = 1;
		return 0;
	}
}

static inline void rd_skip(struct rd *r, size_t n)
{
	if (rd_need(r, n))
		r->off += n;
}

/* n bytes as a view into the buffer. */
static inline struct strv rd_bytes(struct rd *r, size_t n)
{
	if (!rd_need(r, n))
		return STRV_NULL;
	struct strv v = { (const char *)r->p + r->off, n };
	r->off += n;
	return v;
}

/* Everything left, as a view. */
static inline struct strv rd_rest(struct rd *r)
{
	return rd_bytes(r, rd_left(r));
}

/* A NUL-terminated string (the NUL is consumed, not included). Missing NUL sets err. */
static inline struct strv rd_cstr(struct rd *r)
{
	if (r->err)
		return STRV_NULL;
	const uint8_t *s = r->p + r->off;
	const uint8_t *z = memchr(s, 0, r->len - r->off);
	if (!z) {
		r->err = 1;
		return STRV_NULL;
	}
	size_t n = (size_t)(z - s);
	r->off += n + 1;
	return (struct strv){ (const char *)s, n };
}

/* MySQL length-encoded string. */
static inline struct strv rd_lenenc_str(struct rd *r)
{
	uint64_t n = rd_lenenc(r, NULL);
	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return STRV_NULL;
	}
	return rd_bytes(r, (size_t)n);
}

/* A child reader limited to the next n bytes; the parent moves past them.
 * If fewer than n bytes remain, both readers are in error. */
static inline struct rd rd_sub(struct rd *r, size_t n)
{
	if (!rd_need(r, n)) {
		struct rd bad = { r->p, 0, 0, 1 };
		return bad;
	}
	struct rd c = { r->p + r->off, n, 0, 0 };
	r->off += n;
	return c;
}

#endif
