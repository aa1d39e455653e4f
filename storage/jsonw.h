/* A small append-only text buffer with JSON and HTML escaping that is UTF-8 safe: invalid
 * byte sequences become U+FFFD, control characters are escaped. Used by the JSON-lines sink
 * and the report, where every string may come from hostile traffic. */
#ifndef DBTAP_JSONW_H
#define DBTAP_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jw {
	char *buf;
	size_t len, cap;
	int oom; /* sticky: an allocation failed, contents are truncated */
};

/* Length (1-4) of the valid UTF-8 sequence at s, storing the code point; 0 when invalid
 * (truncated, overlong, surrogate, above U+10FFFF, stray continuation byte). */
int u8_decode(const unsigned char *s, size_t n, uint32_t *cp);

void jw_reset(struct jw *w);
void jw_free(struct jw *w);
void jw_mem(struct jw *w, const char *s, size_t n);
void jw_puts(struct jw *w, const char *s);
void jw_putc(struct jw *w, char c);
void jw_printf(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "escaped", or null for NULL. */
void jw_str(struct jw *w, const char *s);
void jw_int(struct jw *w, int64_t v);
/* ,"key":value -- for flat objects opened with a first field written by hand. */
void jw_kstr(struct jw *w, const char *key, const char *v);
void jw_kint(struct jw *w, const char *key, int64_t v);
void jw_knull(struct jw *w, const char *key);
void jw_ktime(struct jw *w, const char *key, int64_t us); /* 0 -> null */
/* Text with & < > " ' escaped for HTML, invalid UTF-8 replaced, controls shown as U+FFFD. */
void jw_html(struct jw *w, const char *s);
/* Text for terminals: invalid UTF-8 and control characters (escape sequences!) become '?',
 * at most max_cols characters (0 = no limit), an ellipsis when cut. */
void jw_text(struct jw *w, const char *s, size_t max_cols);
/* jw_text, then spaces up to width code points (columns of a text table). */
void jw_text_pad(struct jw *w, const char *s, size_t width);
/* A malloc'd copy with invalid UTF-8 replaced by U+FFFD (for cJSON); NULL on OOM. */
char *u8_clean_dup(const char *s);

#endif
