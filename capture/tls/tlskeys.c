/* TLS key log store (see tlskeys.h). */
#include "tlskeys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define TLSK_LINE_MAX 512     /* longest valid line is ~200 characters */
#define TLSK_MAX_FILES 256    /* files followed, directories' included */
#define TLSK_WARN_MAX 100     /* bad-line warnings printed; the rest only counted */
#define TLSK_POLL_NS 100000000LL /* 100 ms between reads of the files */
#define TLSK_SCAN_NS 1000000000LL /* 1 s between directory scans */

struct tlsk_file {
	char *path;
	int fd;
	ino_t ino;
	off_t off;
	unsigned long long lineno;
	size_t ln;     /* bytes in line[] */
	int overlong;  /* the current line passed TLSK_LINE_MAX: skip to its end */
	char line[TLSK_LINE_MAX];
};

struct tlsk_dir {
	char *path;
};

struct tlsk_store {
	/* one mapping: entries then index slots; locked, not dumped, zeroed at free */
	void *map;
	size_t map_len;
	struct tlsk_entry *e;
	uint32_t *slot; /* 0 empty, else entry index + 1 */
	size_t cap, nslot, n, next; /* next: the ring position to fill (oldest when full) */
	uint64_t seed;
	struct tlsk_file *files[TLSK_MAX_FILES];
	int nfiles;
	struct tlsk_dir *dirs;
	int ndirs;
	long long last_poll, last_scan;
	unsigned warned;
	struct tlsk_stats st;
};

static long long mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static size_t hash(const struct tlsk_store *k, const uint8_t *cr)
{
	uint64_t h = k->seed;
	for (int i = 0; i < 32; i += 8) {
		uint64_t w = 0;
		memcpy(&w, cr + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return (size_t)h & (k->nslot - 1);
}

struct tlsk_store *tlsk_new_empty(size_t max_entries)
{
	struct tlsk_store *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	if (max_entries < 16)
		max_entries = 16;
	k->cap = max_entries;
	k->nslot = 1;
	while (k->nslot < 2 * max_entries)
		k->nslot <<= 1;
	size_t elen = max_entries * sizeof(struct tlsk_entry);
	elen = (elen + 63) & ~(size_t)63;
	k->map_len = elen + k->nslot * sizeof(uint32_t);
	k->map = mmap(NULL, k->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k->map == MAP_FAILED) {
		free(k);
		return NULL;
	}
#ifdef MADV_DONTDUMP
	(void)madvise(k->map, k->map_len, MADV_DONTDUMP); /* no secrets in core dumps */
#endif
	(void)mlock(k->map, k->map_len); /* best effort: RLIMIT_MEMLOCK may refuse */
	k->e = k->map;
	k->slot = (uint32_t *)(void *)((char *)k->map + elen);
	k->seed = (uint64_t)mono_ns() * 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
	k->last_poll = k->last_scan = -(1LL << 62);
	return k;
}

static int add_file(struct tlsk_store *k, const char *path, int must, char *err, size_t errlen)
{
	for (int i = 0; i < k->nfiles; i++)
		if (!strcmp(k->files[i]->path, path))
			return 0;
	if (k->nfiles == TLSK_MAX_FILES) {
		if (err)
			snprintf(err, errlen, "tls_keylog: more than %d key log files", TLSK_MAX_FILES);
		return -1;
	}
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (must && err)
			snprintf(err, errlen, "tls_keylog %s: %s", path, strerror(errno));
		return must ? -1 : 0;
	}
	struct stat sb;
	struct tlsk_file *f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path)) || fstat(fd, &sb) < 0) {
		if (f)
			free(f->path);
		free(f);
		close(fd);
		if (err)
			snprintf(err, errlen, "tls_keylog %s: out of memory", path);
		return -1;
	}
	f->fd = fd;
	f->ino = sb.st_ino;
	k->files[k->nfiles++] = f;
	return 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static void scan_dir(struct tlsk_store *k, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".keys"))
			continue;
		char p[4096];
		if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p)
			continue;
		(void)add_file(k, p, 0, NULL, 0);
	}
	closedir(d);
}

struct tlsk_store *tlsk_new(char *const *paths, int n, size_t max_entries, char *err, size_t errlen)
{
	struct tlsk_store *k = tlsk_new_empty(max_entries);
	if (!k) {
		snprintf(err, errlen, "tls_keylog: out of memory");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		struct stat sb;
		if (stat(paths[i], &sb) < 0) {
			snprintf(err, errlen, "tls_keylog %s: %s", paths[i], strerror(errno));
			goto fail;
		}
		if (S_ISDIR(sb.st_mode)) {
			struct tlsk_dir *nd = realloc(k->dirs, (size_t)(k->ndirs + 1) * sizeof *nd);
			if (!nd || !(nd[k->ndirs].path = strdup(paths[i]))) {
				if (nd)
					k->dirs = nd;
				snprintf(err, errlen, "tls_keylog: out of memory");
				goto fail;
			}
			k->dirs = nd;
			k->ndirs++;
			if (access(paths[i], R_OK | X_OK) < 0) {
				snprintf(err, errlen, "tls_keylog %s: %s", paths[i], strerror(errno));
				goto fail;
			}
		} else if (add_file(k, paths[i], 1, err, errlen) < 0) {
			goto fail;
		}
	}
	tlsk_poll(k, 1);
	return k;
fail:
	tlsk_free(k, NULL);
	return NULL;
}

void tlsk_get_stats(const struct tlsk_store *k, struct tlsk_stats *st)
{
	*st = k->st;
	st->unused = 0;
	for (size_t i = 0; i < k->n; i++)
		if (!k->e[i].matched)
			st->unused++;
}

void tlsk_free(struct tlsk_store *k, struct tlsk_stats *st)
{
	if (!k)
		return;
	if (st)
		tlsk_get_stats(k, st);
	for (int i = 0; i < k->nfiles; i++) {
		close(k->files[i]->fd);
		OPENSSL_cleanse(k->files[i]->line, sizeof k->files[i]->line);
		free(k->files[i]->path);
		free(k->files[i]);
	}
	for (int i = 0; i < k->ndirs; i++)
		free(k->dirs[i].path);
	free(k->dirs);
	/* entries are taken in order from the first: only those ever used held a secret
	 * (the whole 18 MB of the default store cost ~12M instructions at every exit) */
	OPENSSL_cleanse(k->e, k->n * sizeof *k->e);
	munlock(k->map, k->map_len);
	munmap(k->map, k->map_len);
	free(k);
}

struct tlsk_entry *tlsk_find(struct tlsk_store *k, const uint8_t crand[32])
{
	for (size_t h = hash(k, crand);; h = (h + 1) & (k->nslot - 1)) {
		uint32_t s = k->slot[h];
		if (!s)
			return NULL;
		if (!memcmp(k->e[s - 1].crand, crand, 32))
			return &k->e[s - 1];
	}
}

void tlsk_used(struct tlsk_store *k, struct tlsk_entry *e)
{
	if (!e->matched) {
		e->matched = 1;
		k->st.matched++;
	}
}

/* Linear probing removal that keeps every other entry reachable (backward shift). */
static void unindex(struct tlsk_store *k, size_t idx)
{
	size_t m = k->nslot - 1, h = hash(k, k->e[idx].crand);
	while (k->slot[h] != idx + 1)
		h = (h + 1) & m;
	size_t hole = h;
	for (size_t j = (hole + 1) & m; k->slot[j]; j = (j + 1) & m) {
		size_t home = hash(k, k->e[k->slot[j] - 1].crand);
		/* j's entry may fill the hole when its home is not cyclically in (hole, j] */
		if (((j - home) & m) >= ((j - hole) & m)) {
			k->slot[hole] = k->slot[j];
			hole = j;
		}
	}
	k->slot[hole] = 0;
}

static struct tlsk_entry *entry_for(struct tlsk_store *k, const uint8_t *cr)
{
	struct tlsk_entry *e = tlsk_find(k, cr);
	if (e)
		return e;
	size_t idx = k->next;
	if (k->n == k->cap) { /* full: the oldest goes */
		if (!k->e[idx].matched)
			k->st.expired++;
		unindex(k, idx);
	} else {
		k->n++;
	}
	k->next = (idx + 1) % k->cap;
	e = &k->e[idx];
	OPENSSL_cleanse(e, sizeof *e);
	memcpy(e->crand, cr, 32);
	size_t h = hash(k, cr);
	while (k->slot[h])
		h = (h + 1) & (k->nslot - 1);
	k->slot[h] = (uint32_t)idx + 1;
	return e;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text of exactly 2*max or fewer characters into out; returns bytes or -1. */
static int unhex(const char *s, size_t n, uint8_t *out, size_t max)
{
	if (n == 0 || n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int a = hexval(s[i]), b = hexval(s[i + 1]);
		if (a < 0 || b < 0)
			return -1;
		out[i / 2] = (uint8_t)(a << 4 | b);
	}
	return (int)(n / 2);
}

static const struct {
	const char *name;
	int label; /* -1: a valid label we do not use */
} labels[] = {
	{ "CLIENT_RANDOM", TLSK_MASTER },
	{ "CLIENT_HANDSHAKE_TRAFFIC_SECRET", TLSK_CHTS },
	{ "SERVER_HANDSHAKE_TRAFFIC_SECRET", TLSK_SHTS },
	{ "CLIENT_TRAFFIC_SECRET_0", TLSK_CTS0 },
	{ "SERVER_TRAFFIC_SECRET_0", TLSK_STS0 },
	{ "CLIENT_EARLY_TRAFFIC_SECRET", -1 },
	{ "EARLY_EXPORTER_SECRET", -1 },
	{ "EXPORTER_SECRET", -1 },
};

/* An NSS key log label: capitals, digits, underscores. */
static int label_like(const char *p, size_t n)
{
	if (!n || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return 0;
	return 1;
}

int tlsk_line(struct tlsk_store *k, const char *line, size_t n)
{
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	size_t i = 0;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == n || line[i] == '#')
		return 1;
	/* three fields separated by single spaces */
	const char *f[3];
	size_t fl[3];
	for (int j = 0; j < 3; j++) {
		if (j && (i == n || line[i] != ' '))
			return -1;
		if (j)
			i++;
		f[j] = line + i;
		while (i < n && line[i] != ' ')
			i++;
		fl[j] = (size_t)(line + i - f[j]);
	}
	if (i != n)
		return -1;
	int label = -2;
	for (size_t j = 0; j < sizeof labels / sizeof labels[0]; j++)
		if (strlen(labels[j].name) == fl[0] && !memcmp(labels[j].name, f[0], fl[0]))
			label = labels[j].label;
	uint8_t cr[32], sec[TLSK_MAX_SECRET];
	int crl = unhex(f[1], fl[1], cr, sizeof cr);
	int sl = unhex(f[2], fl[2], sec, sizeof sec);
	if (label == -2 && crl == 32 && sl > 0 && label_like(f[0], fl[0]))
		label = -1; /* well formed, a label we do not know: OpenSSL 3.0 logs
			     * CLIENT/SERVER_TRAFFIC_SECRET_N after a KeyUpdate (we derive those) */
	int ok = label != -2 && crl == 32 && sl > 0 &&
		 (label != TLSK_MASTER || sl == 48) && (label < 0 || label == TLSK_MASTER || sl >= 32);
	if (ok && label >= 0) {
		struct tlsk_entry *e = entry_for(k, cr);
		memcpy(e->sec[label], sec, (size_t)sl);
		e->len[label] = (uint8_t)sl;
		k->st.loaded++;
	}
	OPENSSL_cleanse(sec, sizeof sec);
	if (!ok)
		return -1;
	return label >= 0 ? 0 : 1;
}

static void bad_line(struct tlsk_store *k, struct tlsk_file *f)
{
	k->st.bad_lines++;
	if (k->warned < TLSK_WARN_MAX) /* never the line itself: it may hold a secret */
		fprintf(stderr, "dbtap: warning: tls_keylog %s line %llu: not a key log line, ignored%s\n",
			f->path, f->lineno, ++k->warned == TLSK_WARN_MAX ? " (no more such warnings)" : "");
}

static void read_file(struct tlsk_store *k, struct tlsk_file *f)
{
	struct stat sb;
	if (fstat(f->fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < f->off) {
		/* truncated: start over */
		lseek(f->fd, 0, SEEK_SET);
		f->off = 0;
		f->ln = 0;
		f->overlong = 0;
	}
	char buf[8192];
	for (int rounds = 0; rounds < 1024; rounds++) { /* bounded work per poll */
		ssize_t r = read(f->fd, buf, sizeof buf);
		if (r <= 0)
			break;
		f->off += r;
		for (ssize_t i = 0; i < r; i++) {
			char c = buf[i];
			if (c != '\n') {
				if (f->ln < TLSK_LINE_MAX)
					f->line[f->ln++] = c;
				else
					f->overlong = 1;
				continue;
			}
			f->lineno++;
			if (f->overlong || tlsk_line(k, f->line, f->ln) < 0)
				bad_line(k, f);
			f->ln = 0;
			f->overlong = 0;
		}
		OPENSSL_cleanse(buf, (size_t)r);
	}
}

void tlsk_poll(struct tlsk_store *k, int force)
{
	long long now = mono_ns();
	if (!force && now - k->last_poll < TLSK_POLL_NS)
		return;
	k->last_poll = now;
	if (k->ndirs && (force || now - k->last_scan >= TLSK_SCAN_NS)) {
		k->last_scan = now;
		for (int i = 0; i < k->ndirs; i++)
			scan_dir(k, k->dirs[i].path);
	}
	for (int i = 0; i < k->nfiles; i++) {
		struct tlsk_file *f = k->files[i];
		struct stat sb;
		if (stat(f->path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_ino != f->ino) {
			/* replaced (rotated): follow the new file from its start */
			int fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				close(f->fd);
				f->fd = fd;
				f->ino = sb.st_ino;
				f->off = 0;
				f->ln = 0;
				f->overlong = 0;
				f->lineno = 0;
			}
		}
		read_file(k, f);
	}
}
