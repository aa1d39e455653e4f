/* The handshake in clear (RFC 8446 §4, RFC 5246 §7.4): the ClientHello's random, the
 * ServerHello's version, suite and extensions, HelloRetryRequest, and the TLS 1.3 messages
 * that switch keys (Finished, KeyUpdate). */
#include "tls_int.h"

#include <string.h>

static const struct suite suites[] = {
	{ 0x1301, 0x0304, AEAD_AES128GCM, 0, 0 }, /* TLS_AES_128_GCM_SHA256 */
	{ 0x1302, 0x0304, AEAD_AES256GCM, 1, 0 }, /* TLS_AES_256_GCM_SHA384 */
	{ 0x1303, 0x0304, AEAD_CHACHA, 0, 0 },    /* TLS_CHACHA20_POLY1305_SHA256 */
	{ 0xc02b, 0x0303, AEAD_AES128GCM, 0, 0 }, /* ECDHE-ECDSA-AES128-GCM-SHA256 */
	{ 0xc02f, 0x0303, AEAD_AES128GCM, 0, 0 }, /* ECDHE-RSA-AES128-GCM-SHA256 */
	{ 0x009c, 0x0303, AEAD_AES128GCM, 0, 0 }, /* RSA-AES128-GCM-SHA256 */
	{ 0x009e, 0x0303, AEAD_AES128GCM, 0, 0 }, /* DHE-RSA-AES128-GCM-SHA256 */
	{ 0xc02c, 0x0303, AEAD_AES256GCM, 1, 0 }, /* ECDHE-ECDSA-AES256-GCM-SHA384 */
	{ 0xc030, 0x0303, AEAD_AES256GCM, 1, 0 }, /* ECDHE-RSA-AES256-GCM-SHA384 */
	{ 0x009d, 0x0303, AEAD_AES256GCM, 1, 0 }, /* RSA-AES256-GCM-SHA384 */
	{ 0x009f, 0x0303, AEAD_AES256GCM, 1, 0 }, /* DHE-RSA-AES256-GCM-SHA384 */
	{ 0xcca8, 0x0303, AEAD_CHACHA, 0, 0 },    /* ECDHE-RSA-CHACHA20-POLY1305 */
	{ 0xcca9, 0x0303, AEAD_CHACHA, 0, 0 },    /* ECDHE-ECDSA-CHACHA20-POLY1305 */
	{ 0xccaa, 0x0303, AEAD_CHACHA, 0, 0 },    /* DHE-RSA-CHACHA20-POLY1305 */
	{ 0xc013, 0x0303, CBC_AES128, 0, 20 }, /* ECDHE-RSA-AES128-SHA */
	{ 0xc014, 0x0303, CBC_AES256, 0, 20 }, /* ECDHE-RSA-AES256-SHA */
	{ 0xc009, 0x0303, CBC_AES128, 0, 20 }, /* ECDHE-ECDSA-AES128-SHA */
	{ 0xc00a, 0x0303, CBC_AES256, 0, 20 }, /* ECDHE-ECDSA-AES256-SHA */
	{ 0x002f, 0x0303, CBC_AES128, 0, 20 }, /* AES128-SHA */
	{ 0x0035, 0x0303, CBC_AES256, 0, 20 }, /* AES256-SHA */
	{ 0x0033, 0x0303, CBC_AES128, 0, 20 }, /* DHE-RSA-AES128-SHA */
	{ 0x0039, 0x0303, CBC_AES256, 0, 20 }, /* DHE-RSA-AES256-SHA */
	{ 0xc027, 0x0303, CBC_AES128, 0, 32 }, /* ECDHE-RSA-AES128-SHA256 */
	{ 0xc028, 0x0303, CBC_AES256, 1, 48 }, /* ECDHE-RSA-AES256-SHA384 */
	{ 0xc023, 0x0303, CBC_AES128, 0, 32 }, /* ECDHE-ECDSA-AES128-SHA256 */
	{ 0xc024, 0x0303, CBC_AES256, 1, 48 }, /* ECDHE-ECDSA-AES256-SHA384 */
	{ 0x003c, 0x0303, CBC_AES128, 0, 32 }, /* AES128-SHA256 */
	{ 0x003d, 0x0303, CBC_AES256, 0, 32 }, /* AES256-SHA256 */
	{ 0x0067, 0x0303, CBC_AES128, 0, 32 }, /* DHE-RSA-AES128-SHA256 */
	{ 0x006b, 0x0303, CBC_AES256, 0, 32 }, /* DHE-RSA-AES256-SHA256 */
};

/* ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3) */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static void server_hello(struct tls_sess *s, const uint8_t *b, size_t n)
{
	/* version(2) random(32) session_id<0..32> suite(2) compression(1) extensions<..> */
	if (n < 38)
		return;
	if (!memcmp(b + 2, hrr_random, 32)) {
		s->hrr = 1; /* the client says hello again, with the same random */
		return;
	}
	memcpy(s->srand, b + 2, 32);
	size_t off = 34, sl = b[off];
	off += 1 + sl;
	if (off + 3 > n)
		return;
	uint16_t suite = (uint16_t)(b[off] << 8 | b[off + 1]);
	uint16_t version = (uint16_t)(b[0] << 8 | b[1]);
	off += 3;
	if (off + 2 <= n) {
		size_t el = (size_t)(b[off] << 8 | b[off + 1]);
		off += 2;
		size_t end = off + el < n ? off + el : n;
		while (off + 4 <= end) {
			uint16_t t = (uint16_t)(b[off] << 8 | b[off + 1]);
			size_t l = (size_t)(b[off + 2] << 8 | b[off + 3]);
			off += 4;
			if (t == 0x002b && l == 2 && off + 2 <= end) /* supported_versions */
				version = (uint16_t)(b[off] << 8 | b[off + 1]);
			else if (t == 0x0016) /* encrypt_then_mac (RFC 7366) */
				s->etm = 1;
			off += l;
		}
	}
	s->version = version;
	s->su = NULL;
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
		if (suites[i].id == suite && suites[i].version == version)
			s->su = &suites[i];
	if (!s->su) {
		tlsdec_set_state(s, TLS_ST_UNSUPPORTED);
		return;
	}
	if (!s->have_crand) {
		tlsdec_set_state(s, TLS_ST_MIDSTREAM);
		return;
	}
	if (version == 0x0304)
		s->d[0].enc = s->d[1].enc = 1; /* every record after the ServerHello */
	if (s->c->keys)
		tlsk_poll(s->c->keys, 0);
	if (!tlsdec_try_keys(s)) {
		s->hold_since = 0;
		tlsdec_set_state(s, TLS_ST_WAIT_KEY);
	}
}

/* A whole handshake message (its first HS_KEEP bytes in b). */
static void hs_message(struct tls_sess *s, int dir, int type, const uint8_t *b, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	if (dir == 0 && type == HS_CLIENT_HELLO && n >= 34 && s->st == TLS_ST_HANDSHAKE) {
		memcpy(s->crand, b + 2, 32);
		s->have_crand = 1;
	} else if (dir == 1 && type == HS_SERVER_HELLO && s->st == TLS_ST_HANDSHAKE) {
		server_hello(s, b, n);
	} else if (d->keyed && s->version == 0x0304) {
		if (type == HS_FINISHED && !d->app)
			d->next = 1;
		else if (type == HS_KEY_UPDATE && d->app)
			d->next = 2;
	}
}

void tlshs_feed(struct tls_sess *s, int dir, const uint8_t *p, size_t n)
{
	struct tls_dir *d = &s->d[dir];
	while (n) {
		if (d->hhn < 4) {
			d->hh[d->hhn++] = *p++;
			n--;
			if (d->hhn == 4) {
				d->hleft = (size_t)d->hh[1] << 16 | (size_t)d->hh[2] << 8 | d->hh[3];
				d->hn = 0;
				if (!d->hleft) {
					hs_message(s, dir, d->hh[0], d->hbuf, 0);
					d->hhn = 0;
				}
			}
			continue;
		}
		size_t k = n < d->hleft ? n : d->hleft;
		if (d->hn < HS_KEEP) {
			size_t c = k < HS_KEEP - d->hn ? k : HS_KEEP - d->hn;
			memcpy(d->hbuf + d->hn, p, c);
			d->hn += c;
		}
		p += k;
		n -= k;
		d->hleft -= k;
		if (!d->hleft) {
			hs_message(s, dir, d->hh[0], d->hbuf, d->hn);
			d->hhn = 0;
		}
	}
}

