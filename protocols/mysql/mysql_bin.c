/* MySQL binary-protocol values (COM_STMT_EXECUTE parameters, query attributes):
 * decode each type's wire form and render it as text for EV_QUERY params.
 * Strings are borrowed views; numbers, dates and hex are rendered into an arena. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_int.h"

struct strv my_arena_printf(struct my_arena *a, const char *fmt, ...)
{
	if (!a->p || a->n >= a->cap)
		return STRV_LIT("");
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(a->p + a->n, a->cap - a->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= a->cap - a->n)
		return STRV_LIT(""); /* arena full: the value is shown empty */
	struct strv v = { a->p + a->n, (size_t)k };
	a->n += (size_t)k;
	return v;
}

/* Decimal text of an integer parameter (the common case) without printf; the arena rule
 * of my_arena_printf: no room, empty value. */
static struct strv arena_int(struct my_arena *a, uint64_t mag, int neg)
{
	char tmp[24];
	size_t len = 0;
	if (neg)
		tmp[len++] = '-';
	len += my_dec(tmp + len, mag);
	if (!a->p || a->n >= a->cap || len >= a->cap - a->n)
		return STRV_LIT("");
	memcpy(a->p + a->n, tmp, len);
	struct strv v = { a->p + a->n, len };
	a->n += len;
	return v;
}

static struct strv arena_signed(struct my_arena *a, int64_t v)
{
	return arena_int(a, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

/* Shortest %g rendering that reads back to the same value. */
static struct strv render_double(struct my_arena *a, double d, int is_float)
{
	char tmp[64];
	for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (is_float ? (strtof(tmp, NULL) == (float)d) : (strtod(tmp, NULL) == d))
			break;
	}
	return my_arena_printf(a, "%s", tmp);
}

static int looks_binary(struct strv v)
{
	for (size_t i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f)
			return 1;
	}
	return 0;
}

static struct strv render_hex(struct my_arena *a, struct strv v)
{
	size_t n = v.n > MY_HEX_MAX ? MY_HEX_MAX : v.n;
	if (!a->p || a->cap - a->n < 2 * n + 4)
		return STRV_LIT("");
	char *o = a->p + a->n;
	static const char hx[] = "0123456789abcdef";
	o[0] = '0';
	o[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		o[2 + 2 * i] = hx[(unsigned char)v.p[i] >> 4];
		o[3 + 2 * i] = hx[(unsigned char)v.p[i] & 15];
	}
	size_t len = 2 + 2 * n;
	if (n < v.n) {
		o[len++] = '.';
		o[len++] = '.';
	}
	a->n += len;
	return (struct strv){ o, len };
}

/* DATE / DATETIME / TIMESTAMP: length byte 0, 4, 7 or 11. */
static int render_datetime(struct rd *r, int date_only, struct my_arena *a, struct ev_bind *out)
{
	uint8_t n = rd_u8(r);
	unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
	uint32_t us = 0;
	if (n != 0 && n != 4 && n != 7 && n != 11)
		return -1;
	if (n >= 4) {
		y = rd_le16(r);
		mo = rd_u8(r);
		d = rd_u8(r);
	}
	if (n >= 7) {
		h = rd_u8(r);
		mi = rd_u8(r);
		s = rd_u8(r);
	}
	if (n >= 11)
		us = rd_le32(r);
	if (r->err)
		return -1;
	if (date_only)
		out->text = my_arena_printf(a, "%04u-%02u-%02u", y, mo, d);
	else if (n == 11)
		out->text = my_arena_printf(a, "%04u-%02u-%02u %02u:%02u:%02u.%06u", y, mo, d, h, mi, s,
					    (unsigned)us);
	else
		out->text = my_arena_printf(a, "%04u-%02u-%02u %02u:%02u:%02u", y, mo, d, h, mi, s);
	return 0;
}

/* TIME: length byte 0, 8 or 12; days fold into hours the way MySQL prints them. */
static int render_time(struct rd *r, struct my_arena *a, struct ev_bind *out)
{
	uint8_t n = rd_u8(r);
	if (n != 0 && n != 8 && n != 12)
		return -1;
	unsigned neg = 0, h = 0, mi = 0, s = 0;
	uint32_t days = 0, us = 0;
	if (n >= 8) {
		neg = rd_u8(r);
		days = rd_le32(r);
		h = rd_u8(r);
		mi = rd_u8(r);
		s = rd_u8(r);
	}
	if (n >= 12)
		us = rd_le32(r);
	if (r->err)
		return -1;
	unsigned long long hours = (unsigned long long)days * 24 + h;
	if (n == 12)
		out->text = my_arena_printf(a, "%s%02llu:%02u:%02u.%06u", neg ? "-" : "", hours, mi, s,
					    (unsigned)us);
	else
		out->text = my_arena_printf(a, "%s%02llu:%02u:%02u", neg ? "-" : "", hours, mi, s);
	return 0;
}

int my_bin_known(uint8_t type)
{
	return type <= MY_T_TIME2 || type == MY_T_VECTOR || type >= MY_T_JSON;
}

int my_bin_value(struct rd *r, uint8_t type, int is_unsigned, struct my_arena *a,
		 struct ev_bind *out)
{
	out->is_null = 0;
	out->is_binary_hex = 0;
	out->text = STRV_LIT("");
	switch (type) {
	case MY_T_NULL:
		out->is_null = 1;
		return 0;
	case MY_T_TINY: {
		uint8_t v = rd_u8(r);
		if (r->err)
			return -1;
		out->text = is_unsigned ? arena_int(a, v, 0) : arena_signed(a, (int8_t)v);
		return 0;
	}
	case MY_T_SHORT:
	case MY_T_YEAR: {
		uint16_t v = rd_le16(r);
		if (r->err)
			return -1;
		out->text = is_unsigned || type == MY_T_YEAR ? arena_int(a, v, 0) : arena_signed(a, (int16_t)v);
		return 0;
	}
	case MY_T_LONG:
	case MY_T_INT24: {
		uint32_t v = rd_le32(r);
		if (r->err)
			return -1;
		out->text = is_unsigned ? arena_int(a, v, 0) : arena_signed(a, (int32_t)v);
		return 0;
	}
	case MY_T_LONGLONG: {
		uint64_t v = rd_le64(r);
		if (r->err)
			return -1;
		out->text = is_unsigned ? arena_int(a, v, 0) : arena_signed(a, (int64_t)v);
		return 0;
	}
	case MY_T_FLOAT: {
		uint32_t v = rd_le32(r);
		if (r->err)
			return -1;
		float f;
		memcpy(&f, &v, sizeof f);
		out->text = render_double(a, (double)f, 1);
		return 0;
	}
	case MY_T_DOUBLE: {
		uint64_t v = rd_le64(r);
		if (r->err)
			return -1;
		double d;
		memcpy(&d, &v, sizeof d);
		out->text = render_double(a, d, 0);
		return 0;
	}
	case MY_T_DATE:
	case MY_T_NEWDATE:
		return render_datetime(r, 1, a, out);
	case MY_T_DATETIME:
	case MY_T_TIMESTAMP:
	case MY_T_DATETIME2:
	case MY_T_TIMESTAMP2:
		return render_datetime(r, 0, a, out);
	case MY_T_TIME:
	case MY_T_TIME2:
		return render_time(r, a, out);
	case MY_T_DECIMAL:
	case MY_T_NEWDECIMAL:
	case MY_T_VARCHAR:
	case MY_T_JSON:
	case MY_T_ENUM:
	case MY_T_SET:
	case MY_T_VAR_STRING:
	case MY_T_STRING:
	case MY_T_TINY_BLOB:
	case MY_T_MEDIUM_BLOB:
	case MY_T_LONG_BLOB:
	case MY_T_BLOB:
	case MY_T_BIT:
	case MY_T_GEOMETRY:
	case MY_T_VECTOR: {
		struct strv v = rd_lenenc_str(r);
		if (r->err)
			return -1;
		if (type == MY_T_GEOMETRY || type == MY_T_BIT || type == MY_T_VECTOR || looks_binary(v)) {
			out->text = render_hex(a, v);
			out->is_binary_hex = 1;
		} else {
			out->text = v;
		}
		return 0;
	}
	default:
		return -1;
	}
}
