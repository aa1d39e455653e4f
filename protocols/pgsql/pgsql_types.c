/* Binary-format Bind values rendered as PostgreSQL prints them (see pgsql_types.h).
 * Every input byte is hostile: sizes are checked against the type before any read, and
 * output is always cut at cap. */
#include "pgsql_types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rd.h"

enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_NAME = 19,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_OID = 26,
	OID_JSON = 114,
	OID_XML = 142,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_UNKNOWN = 705,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
	OID_DATE = 1082,
	OID_TIME = 1083,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_NUMERIC = 1700,
	OID_UUID = 2950,
	OID_JSONB = 3802,
};

/* Small appender that never writes past cap. */
struct pgt_out {
	char *p;
	size_t n, cap;
};

static void put(struct pgt_out *o, const char *s, size_t n)
{
	size_t room = o->cap - o->n;
	if (n > room)
		n = room;
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void putf_int(struct pgt_out *o, const char *fmt, long long v)
{
	char b[32];
	int k = snprintf(b, sizeof b, fmt, v);
	if (k > 0)
		put(o, b, (size_t)k < sizeof b ? (size_t)k : sizeof b - 1);
}

size_t pgt_hex(const uint8_t *v, size_t n, char *out, size_t cap)
{
	static const char hx[] = "0123456789abcdef";
	size_t w = 0;
	for (size_t i = 0; i < n && w + 2 <= cap; i++) {
		out[w++] = hx[v[i] >> 4];
		out[w++] = hx[v[i] & 15];
	}
	return w;
}

static void put_float(struct pgt_out *o, double d, int digits)
{
	if (isnan(d)) {
		put(o, "NaN", 3);
		return;
	}
	if (isinf(d)) {
		if (d < 0)
			put(o, "-Infinity", 9);
		else
			put(o, "Infinity", 8);
		return;
	}
	char b[64];
	int k = snprintf(b, sizeof b, "%.*g", digits, d);
	if (k > 0)
		put(o, b, (size_t)k < sizeof b ? (size_t)k : sizeof b - 1);
}

/* Base-10000 digit i of a binary numeric (after its 8-byte header). */
static int digit(const uint8_t *v, size_t n, size_t i)
{
	struct rd r = rd_make(v, n);
	rd_skip(&r, 8 + 2 * i);
	return rd_be16(&r);
}

/* numeric: ndigits, weight, sign, dscale, then base-10000 digits. */
static int put_numeric(struct pgt_out *o, const uint8_t *v, size_t n)
{
	struct rd r = rd_make(v, n);
	uint16_t ndig = rd_be16(&r);
	int16_t weight = (int16_t)rd_be16(&r);
	uint16_t sign = rd_be16(&r);
	uint16_t dscale = rd_be16(&r);
	if (r.err || rd_left(&r) != (size_t)ndig * 2 || dscale > 16383)
		return -1;
	if (sign == 0xC000) {
		put(o, "NaN", 3);
		return 0;
	}
	if (sign == 0xD000) {
		put(o, "Infinity", 8);
		return 0;
	}
	if (sign == 0xF000) {
		put(o, "-Infinity", 9);
		return 0;
	}
	if (sign != 0 && sign != 0x4000)
		return -1;
	for (size_t i = 0; i < ndig; i++)
		if (digit(v, n, i) > 9999)
			return -1;
	if (sign == 0x4000)
		put(o, "-", 1);
	if (weight < 0) {
		put(o, "0", 1);
	} else {
		for (int i = 0; i <= weight && o->n < o->cap; i++) {
			int dg = i < ndig ? digit(v, n, (size_t)i) : 0;
			putf_int(o, i == 0 ? "%lld" : "%04lld", dg);
		}
	}
	if (dscale > 0) {
		put(o, ".", 1);
		int left = dscale;
		for (int i = weight + 1; left > 0 && o->n < o->cap; i++) {
			int dg = (i >= 0 && i < ndig) ? digit(v, n, (size_t)i) : 0;
			char b[8];
			snprintf(b, sizeof b, "%04d", dg);
			size_t k = left < 4 ? (size_t)left : 4;
			put(o, b, k);
			left -= (int)k;
		}
	}
	return 0;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* PostgreSQL epoch 2000-01-01 is day 10957 after 1970-01-01. */
#define PG_EPOCH_DAYS 10957

static void put_date(struct pgt_out *o, int64_t days_pg, int *bc)
{
	int64_t y;
	int m, d;
	civil(days_pg + PG_EPOCH_DAYS, &y, &m, &d);
	*bc = y <= 0;
	if (*bc)
		y = 1 - y;
	char b[48];
	int k = snprintf(b, sizeof b, "%04lld-%02d-%02d", (long long)y, m, d);
	if (k > 0)
		put(o, b, (size_t)k < sizeof b ? (size_t)k : sizeof b - 1);
}

static void put_time(struct pgt_out *o, int64_t us)
{
	char b[48];
	int64_t s = us / 1000000, frac = us % 1000000;
	int k = snprintf(b, sizeof b, "%02lld:%02lld:%02lld", (long long)(s / 3600),
			 (long long)(s / 60 % 60), (long long)(s % 60));
	if (k > 0)
		put(o, b, (size_t)k < sizeof b ? (size_t)k : sizeof b - 1);
	if (frac) {
		k = snprintf(b, sizeof b, ".%06lld", (long long)frac);
		while (k > 1 && b[k - 1] == '0')
			k--;
		if (k > 0)
			put(o, b, (size_t)k);
	}
}

static void put_timestamp(struct pgt_out *o, int64_t us, int tz)
{
	if (us == INT64_MAX) {
		put(o, "infinity", 8);
		return;
	}
	if (us == INT64_MIN) {
		put(o, "-infinity", 9);
		return;
	}
	int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
	if (rem < 0) {
		rem += 86400000000LL;
		days--;
	}
	int bc;
	put_date(o, days, &bc);
	put(o, " ", 1);
	put_time(o, rem);
	if (tz)
		put(o, "+00", 3);
	if (bc)
		put(o, " BC", 3);
}

static int64_t be_i64(const uint8_t *v)
{
	struct rd r = rd_make(v, 8);
	return (int64_t)rd_be64(&r);
}

static uint8_t be_u8(const uint8_t *v)
{
	struct rd r = rd_make(v, 1);
	return rd_u8(&r);
}

static uint16_t be_u16(const uint8_t *v)
{
	struct rd r = rd_make(v, 2);
	return rd_be16(&r);
}

static uint32_t be_u32(const uint8_t *v)
{
	struct rd r = rd_make(v, 4);
	return rd_be32(&r);
}

size_t pgt_render_binary(uint32_t oid, const uint8_t *v, size_t n, char *out, size_t cap, int *is_hex)
{
	struct pgt_out o = { out, 0, cap };
	*is_hex = 0;
	switch (oid) {
	case OID_BOOL:
		if (n != 1)
			break;
		put(&o, be_u8(v) ? "t" : "f", 1);
		return o.n;
	case OID_INT2:
		if (n != 2)
			break;
		putf_int(&o, "%lld", (int16_t)be_u16(v));
		return o.n;
	case OID_INT4:
		if (n != 4)
			break;
		putf_int(&o, "%lld", (int32_t)be_u32(v));
		return o.n;
	case OID_OID:
		if (n != 4)
			break;
		putf_int(&o, "%lld", (long long)be_u32(v));
		return o.n;
	case OID_INT8:
		if (n != 8)
			break;
		putf_int(&o, "%lld", (long long)be_i64(v));
		return o.n;
	case OID_FLOAT4: {
		if (n != 4)
			break;
		uint32_t u = be_u32(v);
		float f;
		memcpy(&f, &u, sizeof f);
		put_float(&o, f, 9);
		return o.n;
	}
	case OID_FLOAT8: {
		if (n != 8)
			break;
		uint64_t u = (uint64_t)be_i64(v);
		double d;
		memcpy(&d, &u, sizeof d);
		put_float(&o, d, 17);
		return o.n;
	}
	case OID_NUMERIC:
		if (put_numeric(&o, v, n) < 0) {
			o.n = 0;
			break;
		}
		return o.n;
	case OID_TEXT:
	case OID_VARCHAR:
	case OID_BPCHAR:
	case OID_NAME:
	case OID_UNKNOWN:
	case OID_JSON:
	case OID_XML:
		put(&o, (const char *)v, n);
		return o.n;
	case OID_JSONB:
		if (n < 1 || be_u8(v) != 1)
			break;
		put(&o, (const char *)v + 1, n - 1);
		return o.n;
	case OID_BYTEA:
		put(&o, "\\x", 2);
		o.n += pgt_hex(v, n, o.p + o.n, o.cap - o.n);
		return o.n;
	case OID_UUID: {
		if (n != 16)
			break;
		char b[40];
		size_t w = 0;
		for (size_t i = 0; i < 16; i++) {
			if (i == 4 || i == 6 || i == 8 || i == 10)
				b[w++] = '-';
			w += pgt_hex(v + i, 1, b + w, 2);
		}
		put(&o, b, w);
		return o.n;
	}
	case OID_DATE: {
		if (n != 4)
			break;
		int32_t days = (int32_t)be_u32(v);
		if (days == INT32_MAX) {
			put(&o, "infinity", 8);
			return o.n;
		}
		if (days == INT32_MIN) {
			put(&o, "-infinity", 9);
			return o.n;
		}
		int bc;
		put_date(&o, days, &bc);
		if (bc)
			put(&o, " BC", 3);
		return o.n;
	}
	case OID_TIME: {
		if (n != 8)
			break;
		int64_t us = be_i64(v);
		if (us < 0 || us > 86400000000LL)
			break;
		put_time(&o, us);
		return o.n;
	}
	case OID_TIMESTAMP:
	case OID_TIMESTAMPTZ:
		if (n != 8)
			break;
		put_timestamp(&o, be_i64(v), oid == OID_TIMESTAMPTZ);
		return o.n;
	default:
		break;
	}
	*is_hex = 1;
	return pgt_hex(v, n, out, cap);
}
