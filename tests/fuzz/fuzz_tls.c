/* Fuzz target: the TLS key-log parser and the record layer (capture/tls/).
 * Input: a 2-byte big-endian length, that many bytes of key log text (parsed line by line
 * into a store), then chunks of stream bytes: one byte (bit 0: direction, bit 1: a gap
 * before the chunk), a 2-byte length, the bytes. The seeds (make_tls_corpus.py) are real
 * sessions with their real key log, so decryption, KeyUpdate and replay paths are reached;
 * every packet time advances 1 s so the key wait expires too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsdec.h"
#include "tlskeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t plain_bytes;

static void on_data(void *ctx, int dir, tls_time ts, const uint8_t *p, size_t n)
{
	(void)ctx;
	(void)dir;
	(void)ts;
	for (size_t i = 0; i < n; i++) /* touch every byte: ASan checks the bounds */
		plain_bytes += p[i] == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t kl = (size_t)data[0] << 8 | data[1];
	if (kl > size - 2)
		kl = size - 2;
	struct tlsk_store *k = tlsk_new_empty(64); /* small: eviction is exercised */
	if (!k)
		return 0;
	const char *t = (const char *)data + 2;
	for (size_t i = 0, start = 0; i <= kl; i++)
		if (i == kl || t[i] == '\n') {
			(void)tlsk_line(k, t + start, i - start);
			start = i + 1;
		}
	struct tls_ctx *c = tls_ctx_new(k, 5 * 1000000, 1 << 16, 1 << 18);
	if (!c) {
		tlsk_free(k, NULL);
		return 0;
	}
	struct tls_out out = { .data = on_data };
	struct tls_sess *s = tls_sess_new(c, &out);
	tls_time ts = 1000000;
	for (size_t off = 2 + kl; s && off + 3 <= size;) {
		int flags = data[off];
		size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (n > size - off)
			n = size - off;
		if (flags & 2)
			tls_sess_gap(s, flags & 1, ts);
		tls_sess_feed(s, flags & 1, ts, data + off, n);
		off += n;
		ts += 1000000;
		tls_ctx_tick(c, ts);
		(void)tls_sess_may_close(s);
	}
	if (s)
		tls_sess_free(s, ts);
	tls_ctx_free(c, NULL, NULL);
	return 0;
}
