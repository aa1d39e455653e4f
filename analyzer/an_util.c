/* Helpers the detectors share: list and CIDR tests, sliding and keyed windows, admin test,
 * one-line excerpts. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_int.h"
#include "attr.h"

void an_scopy(char *dst, size_t cap, struct strv v)
{
	attr_clean(dst, cap, v.p ? v.p : "", v.p ? v.n : 0);
}

int an_in_list(const struct an_strlist *l, const char *v)
{
	if (!v)
		return 0;
	for (int i = 0; i < l->n; i++)
		if (l->v[i] && strcmp(l->v[i], v) == 0)
			return 1;
	return 0;
}

int an_is_service_account(const struct an_config *c, const char *user)
{
	return user && user[0] && an_in_list(&c->service_accounts, user);
}

int an_ip_in_cidrs(const struct an_strlist *cidrs, const char *ip)
{
	unsigned char a[16], b[16];
	int fam = strchr(ip ? ip : "", ':') ? AF_INET6 : AF_INET, alen = fam == AF_INET ? 4 : 16;
	if (!ip || inet_pton(fam, ip, a) != 1)
		return 0;
	for (int i = 0; i < cidrs->n; i++) {
		char buf[64];
		snprintf(buf, sizeof buf, "%s", cidrs->v[i]);
		char *slash = strchr(buf, '/');
		long bits = alen * 8;
		if (slash) {
			*slash = 0;
			bits = strtol(slash + 1, NULL, 10);
		}
		if (inet_pton(fam, buf, b) != 1 || bits < 0 || bits > alen * 8)
			continue;
		int ok = 1;
		for (long k = 0; k < bits && ok; k++)
			if (((a[k / 8] ^ b[k / 8]) >> (7 - k % 8)) & 1)
				ok = 0;
		if (ok)
			return 1;
	}
	return 0;
}

/* ---- windows ---- */

void an_window_add(struct an_window *w, ev_time ts, ev_time window_us)
{
	(void)window_us;
	int idx = (w->head + w->n) % AN_ERR_RING;
	if (w->n == AN_ERR_RING) {
		w->head = (w->head + 1) % AN_ERR_RING;
		idx = (w->head + AN_ERR_RING - 1) % AN_ERR_RING;
	} else {
		w->n++;
	}
	w->t[idx] = ts;
}

int an_window_count(struct an_window *w, ev_time now, ev_time window_us)
{
	while (w->n > 0 && now - w->t[w->head] > window_us) {
		w->head = (w->head + 1) % AN_ERR_RING;
		w->n--;
	}
	return w->n;
}

struct an_keyed *an_keyed_get(struct an_keyed **tabp, int *n, int *cap, int kind, const char *key, ev_time now)
{
	struct an_keyed *tab = *tabp;
	int oldest = -1;
	for (int i = 0; i < *n; i++) {
		if (tab[i].kind == kind && strcmp(tab[i].key, key) == 0) {
			tab[i].last = now;
			return &tab[i];
		}
		if (oldest < 0 || tab[i].last < tab[oldest].last)
			oldest = i;
	}
	int slot = oldest;
	if (*n < *cap) {
		slot = (*n)++;
	} else if (*cap < AN_KEYED_MAX) {
		int nc = *cap ? *cap * 2 : 16;
		if (nc > AN_KEYED_MAX)
			nc = AN_KEYED_MAX;
		struct an_keyed *nt = realloc(tab, (size_t)nc * sizeof *nt);
		if (nt) {
			*tabp = tab = nt;
			*cap = nc;
			slot = (*n)++;
		}
	}
	if (slot < 0)
		return NULL;
	/* a new key, or the least recently used window evicted for it */
	memset(&tab[slot], 0, sizeof tab[slot]);
	tab[slot].used = 1;
	tab[slot].kind = kind;
	tab[slot].last = now;
	attr_clean(tab[slot].key, sizeof tab[slot].key, key, strlen(key));
	return &tab[slot];
}

int an_is_admin(const struct an *an, const struct an_session *s)
{
	const struct an_config *c = &an->cfg;
	if (c->admin_hosts.n == 0 || !an_ip_in_cidrs(&c->admin_hosts, s->client_ip))
		return 0;
	if (c->admin_users.n == 0)
		return 1;
	return an_in_list(&c->admin_users, s->db_user) || an_in_list(&c->admin_users, s->role) ||
	       an_in_list(&c->admin_users, s->txn_role);
}

void an_excerpt(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	int sp = 0;
	if (!cap)
		return;
	size_t i = 0;
	for (; s && i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ') {
			sp = o > 0;
			continue;
		}
		if (o + (sp ? 2 : 1) + 4 > cap)
			break; /* room for the character, a space and "..." */
		if (sp) {
			dst[o++] = ' ';
			sp = 0;
		}
		dst[o++] = (char)c;
	}
	if (s && i < n && s[i]) {
		while (o > 0 && ((unsigned char)dst[o - 1] & 0xC0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)dst[o - 1] & 0xC0) == 0xC0)
			o--;
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = 0;
}

void an_fmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	if (!cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}
