/* UTF-8-safe JSON / HTML / terminal escaping into a growable buffer (see jsonw.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "sink.h"

int u8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (!n)
		return 0;
	unsigned c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	int len;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < (size_t)len)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static int jw_grow(struct jw *w, size_t need)
{
	if (w->oom)
		return -1;
	if (w->cap - w->len >= need)
		return 0;
	size_t cap = w->cap ? w->cap : 256;
	while (cap - w->len < need)
		cap *= 2;
	char *b = realloc(w->buf, cap);
	if (!b) {
		w->oom = 1;
		return -1;
	}
	w->buf = b;
	w->cap = cap;
	return 0;
}

void jw_reset(struct jw *w)
{
	w->len = 0;
	w->oom = 0;
}

void jw_free(struct jw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

void jw_mem(struct jw *w, const char *s, size_t n)
{
	if (jw_grow(w, n + 1) < 0)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

void jw_puts(struct jw *w, const char *s)
{
	jw_mem(w, s, strlen(s));
}

void jw_putc(struct jw *w, char c)
{
	jw_mem(w, &c, 1);
}

void jw_printf(struct jw *w, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		jw_mem(w, tmp, (size_t)n);
		return;
	}
	if (jw_grow(w, (size_t)n + 1) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(w->buf + w->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	w->len += (size_t)n;
}

static const char hexd[] = "0123456789abcdef";

void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_mem(w, "null", 4);
		return;
	}
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	/* worst case: every byte becomes \ufffd (6 bytes) */
	if (jw_grow(w, n * 6 + 3) < 0)
		return;
	char *o = w->buf + w->len;
	*o++ = '"';
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		/* fast path for plain ASCII */
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c < 0x80) {
			*o++ = '\\';
			switch (c) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '\n': *o++ = 'n'; break;
			case '\r': *o++ = 'r'; break;
			case '\t': *o++ = 't'; break;
			default:
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hexd[c >> 4];
				*o++ = hexd[c & 15];
			}
			i++;
			continue;
		}
		uint32_t cp;
		int len = u8_decode(p + i, n - i, &cp);
		if (len) {
			memcpy(o, p + i, (size_t)len);
			o += len;
			i += (size_t)len;
		} else {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
		}
	}
	*o++ = '"';
	*o = 0;
	w->len = (size_t)(o - w->buf);
}

void jw_int(struct jw *w, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	jw_mem(w, tmp, (size_t)n);
}

static void jw_key(struct jw *w, const char *key)
{
	jw_putc(w, ',');
	jw_putc(w, '"');
	jw_puts(w, key);
	jw_putc(w, '"');
	jw_putc(w, ':');
}

void jw_kstr(struct jw *w, const char *key, const char *v)
{
	jw_key(w, key);
	jw_str(w, v);
}

void jw_kint(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_knull(struct jw *w, const char *key)
{
	jw_key(w, key);
	jw_mem(w, "null", 4);
}

void jw_ktime(struct jw *w, const char *key, int64_t us)
{
	if (!us) {
		jw_knull(w, key);
		return;
	}
	char buf[40];
	sink_fmt_time(us, buf, sizeof(buf));
	jw_key(w, key);
	jw_putc(w, '"');
	jw_puts(w, buf);
	jw_putc(w, '"');
}

void jw_html(struct jw *w, const char *s)
{
	if (!s)
		return;
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	while (i < n) {
		unsigned c = p[i];
		uint32_t cp;
		int len;
		switch (c) {
		case '&': jw_puts(w, "&amp;"); i++; continue;
		case '<': jw_puts(w, "&lt;"); i++; continue;
		case '>': jw_puts(w, "&gt;"); i++; continue;
		case '"': jw_puts(w, "&quot;"); i++; continue;
		case '\'': jw_puts(w, "&#39;"); i++; continue;
		case '\n': case '\t': jw_putc(w, ' '); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			jw_puts(w, "\xef\xbf\xbd");
			i++;
		} else if ((len = u8_decode(p + i, n - i, &cp)) > 0) {
			jw_mem(w, (const char *)p + i, (size_t)len);
			i += (size_t)len;
		} else {
			jw_puts(w, "\xef\xbf\xbd");
			i++;
		}
	}
}

void jw_text(struct jw *w, const char *s, size_t max_cols)
{
	if (!s) {
		jw_putc(w, '-');
		return;
	}
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, cols = 0;
	while (i < n) {
		if (max_cols && cols + 1 >= max_cols && i + 1 < n) {
			jw_puts(w, "...");
			return;
		}
		unsigned c = p[i];
		uint32_t cp;
		int len = u8_decode(p + i, n - i, &cp);
		if (!len || c < 0x20 || c == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
			jw_putc(w, c == '\n' || c == '\t' ? ' ' : '?');
			i += len ? (size_t)len : 1;
		} else {
			jw_mem(w, (const char *)p + i, (size_t)len);
			i += (size_t)len;
		}
		cols++;
	}
}

char *u8_clean_dup(const char *s)
{
	size_t n = strlen(s), o = 0, i = 0;
	char *d = malloc(n * 3 + 1);
	if (!d)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	while (i < n) {
		uint32_t cp;
		int len = u8_decode(p + i, n - i, &cp);
		if (len) {
			memcpy(d + o, p + i, (size_t)len);
			o += (size_t)len;
			i += (size_t)len;
		} else {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	d[o] = 0;
	return d;
}

void jw_text_pad(struct jw *w, const char *s, size_t width)
{
	size_t start = w->len;
	jw_text(w, s, width);
	/* count code points written to pad to width */
	size_t cols = 0;
	for (size_t i = start; i < w->len; i++)
		if (((unsigned char)w->buf[i] & 0xc0) != 0x80)
			cols++;
	for (; cols < width; cols++)
		jw_putc(w, ' ');
}
