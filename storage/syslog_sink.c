/* Syslog sink: every line of the JSON sink (dbtap or OCSF format, evline.c) as the MSG of an
 * RFC 5424 message, to unix:PATH (datagram), udp://HOST:PORT (RFC 5426) or tcp://HOST:PORT
 * (RFC 6587 octet counting), for rsyslog / syslog-ng to take on to Kafka, Elasticsearch,
 * Splunk. Capture never waits on the receiver: put() formats the message and queues it
 * (bounded); a sender thread connects, writes, and reconnects with backoff. What does not
 * fit the queue, or cannot be sent, is counted in s->dropped, never silent. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evline.h"
#include "jsonw.h"
#include "sink.h"

#define SL_QUEUE_MAX 16384		/* messages waiting for the receiver */
#define SL_QUEUE_BYTES (32u << 20)	/* and their bytes */
#define SL_BACKOFF_MIN_MS 100		/* first reconnect delay, doubled up to ... */
#define SL_BACKOFF_MAX_MS 5000
#define SL_SEND_STALL_MS 5000		/* no progress this long: the receiver is gone */
#define SL_DRAIN_MS 5000		/* sync/close wait at most this long without progress */
#define SL_SYNC_MAX_MS 30000		/* and at most this long in all */
#define SL_CONNECT_MS 2000		/* a connect that takes longer has failed */
#define SL_DGRAM_MAX 65000		/* a UDP datagram (RFC 5426) */
#define SL_FACILITY 16			/* local0 */

enum sl_kind { SL_UNIX, SL_UDP, SL_TCP };

struct sl_msg {
	char *buf;
	size_t len;
};

struct sl_sink {
	struct sink base;
	enum sl_kind kind;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fd;
	struct evl_opts opts;
	char *sensor;
	char host[256]; /* RFC 5424 HOSTNAME: the sensor name in PRINTUSASCII */
	struct jw line;

	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_idle;
	pthread_t thread;
	int thread_started, stop;
	struct sl_msg q[SL_QUEUE_MAX];
	size_t head, n, bytes;
	int sending; /* the sender holds the head message */
	int gave_up; /* the last sync saw no progress: the next waits only briefly */
	uint64_t sent;
	atomic_uint_fast64_t dropped; /* counted on either thread; copied to base.dropped */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the sender thread ---- */

static void sl_disconnect(struct sl_sink *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static int sl_connect(struct sl_sink *l)
{
	int type = l->kind == SL_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int fd = socket(l->addr.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = SL_SEND_STALL_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	/* a receiver whose accept queue is full never answers: connect with a timeout */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	int e = 0;
	if (connect(fd, (struct sockaddr *)&l->addr, l->addrlen) != 0) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			socklen_t el = sizeof e;
			if (poll(&p, 1, SL_CONNECT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
				e = ETIMEDOUT;
		}
	}
	if (e) {
		close(fd);
		return -e;
	}
	fcntl(fd, F_SETFL, fl);
	l->fd = fd;
	return 0;
}

/* TCP: a receiver that stopped has sent FIN (or RST); notice it before writing, so the
 * next message goes to the restarted receiver instead of into a dead socket. */
static int sl_peer_gone(struct sl_sink *l)
{
	if (l->kind != SL_TCP)
		return 0;
	struct pollfd p = { .fd = l->fd, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP))
		return 1;
	char b[256];
	ssize_t n = recv(l->fd, b, sizeof b, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* 0 sent, -1 connection lost (retry the message), 1 message refused (drop it). */
static int sl_send(struct sl_sink *l, const struct sl_msg *m)
{
	if (l->kind != SL_TCP) {
		ssize_t n = send(l->fd, m->buf, m->len, MSG_NOSIGNAL);
		if (n == (ssize_t)m->len)
			return 0;
		return n < 0 && errno == EMSGSIZE ? 1 : -1;
	}
	size_t off = 0;
	int64_t last = now_ms();
	while (off < m->len) {
		ssize_t n = send(l->fd, m->buf + off, m->len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			last = now_ms();
			continue;
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) &&
		    now_ms() - last < SL_SEND_STALL_MS)
			continue;
		return -1;
	}
	return 0;
}

static void *sl_thread(void *arg)
{
	struct sl_sink *l = arg;
	int backoff = SL_BACKOFF_MIN_MS;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->n && !l->stop)
			pthread_cond_wait(&l->cv_work, &l->mu);
		if (!l->n && l->stop)
			break;
		struct sl_msg m = l->q[l->head];
		l->sending = 1;
		pthread_mutex_unlock(&l->mu);

		int rc = -1;
		if (l->fd >= 0 && sl_peer_gone(l))
			sl_disconnect(l);
		if (l->fd < 0 && sl_connect(l) == 0)
			backoff = SL_BACKOFF_MIN_MS;
		if (l->fd >= 0) {
			rc = sl_send(l, &m);
			if (rc < 0)
				sl_disconnect(l);
		}

		pthread_mutex_lock(&l->mu);
		l->sending = 0;
		if (rc >= 0) {
			if (rc > 0)
				atomic_fetch_add(&l->dropped, 1);
			else
				l->sent++;
			free(m.buf);
			l->head = (l->head + 1) % SL_QUEUE_MAX;
			l->n--;
			l->bytes -= m.len;
			pthread_cond_broadcast(&l->cv_idle);
			continue;
		}
		if (l->stop)
			break; /* closing with the receiver down: what is left is counted */
		/* receiver down: wait, then try again (close wakes us) */
		struct timespec ts;
		sink_deadline(&ts, backoff);
		pthread_cond_timedwait(&l->cv_work, &l->mu, &ts);
		backoff = backoff * 2 > SL_BACKOFF_MAX_MS ? SL_BACKOFF_MAX_MS : backoff * 2;
	}
	pthread_cond_broadcast(&l->cv_idle);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ---- the caller's side ---- */

static int sl_put(struct sink *s, const struct rec *r)
{
	struct sl_sink *l = (struct sl_sink *)s;
	int sev = 6;
	jw_reset(&l->line);
	int rc = evl_format_rec(&l->line, &l->opts, r, &sev);
	if (rc <= 0) {
		if (rc == -ENOMEM)
			atomic_fetch_add(&l->dropped, 1);
		return rc == -EINVAL ? rc : 0;
	}
	static const char *const msgid[] = { [REC_RUN] = "run", [REC_SESSION] = "session",
					     [REC_STATEMENT] = "statement", [REC_FINDING] = "finding",
					     [REC_STATS] = "stats" };
	struct timeval tv;
	gettimeofday(&tv, NULL);
	char ts[40], hdr[512];
	sink_fmt_time((int64_t)tv.tv_sec * 1000000 + tv.tv_usec, ts, sizeof ts);
	int hl = snprintf(hdr, sizeof hdr, "<%d>1 %s %s dbtap %d %s - ", SL_FACILITY * 8 + sev, ts,
			  l->host, (int)getpid(), r->type < sizeof msgid / sizeof msgid[0] && msgid[r->type] ? msgid[r->type] : "-");
	size_t body = (size_t)hl + l->line.len;
	char pre[24] = "";
	int pl = l->kind == SL_TCP ? snprintf(pre, sizeof pre, "%zu ", body) : 0;
	if (l->kind != SL_TCP && body > SL_DGRAM_MAX) {
		atomic_fetch_add(&l->dropped, 1); /* a datagram this big would not arrive whole */
		return 0;
	}
	struct sl_msg m = { .len = (size_t)pl + body };
	m.buf = malloc(m.len);
	if (!m.buf) {
		atomic_fetch_add(&l->dropped, 1);
		return 0;
	}
	memcpy(m.buf, pre, (size_t)pl);
	memcpy(m.buf + pl, hdr, (size_t)hl);
	memcpy(m.buf + pl + hl, l->line.buf, l->line.len);
	pthread_mutex_lock(&l->mu);
	if (l->n >= SL_QUEUE_MAX || l->bytes + m.len > SL_QUEUE_BYTES) {
		pthread_mutex_unlock(&l->mu);
		free(m.buf);
		atomic_fetch_add(&l->dropped, 1); /* receiver slow or down: never wait */
		return 0;
	}
	l->q[(l->head + l->n) % SL_QUEUE_MAX] = m;
	l->n++;
	l->bytes += m.len;
	pthread_cond_signal(&l->cv_work);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

static int sl_flush(struct sink *s)
{
	struct sl_sink *l = (struct sl_sink *)s;
	s->dropped = atomic_load(&l->dropped);
	return 0;
}

/* Wait until the queue is empty, or nothing was sent for SL_DRAIN_MS (receiver down). */
static int sl_sync(struct sink *s)
{
	struct sl_sink *l = (struct sl_sink *)s;
	pthread_mutex_lock(&l->mu);
	pthread_cond_broadcast(&l->cv_work); /* a sender waiting out a backoff tries now */
	uint64_t seen = l->sent;
	int64_t last = now_ms(), start = last;
	int wait = l->gave_up ? 300 : SL_DRAIN_MS;
	while ((l->n || l->sending) && l->thread_started && now_ms() - last < wait &&
	       now_ms() - start < SL_SYNC_MAX_MS) {
		struct timespec ts;
		sink_deadline(&ts, 100);
		pthread_cond_timedwait(&l->cv_idle, &l->mu, &ts);
		if (l->sent != seen) {
			seen = l->sent;
			last = now_ms();
			wait = SL_DRAIN_MS;
		}
	}
	l->gave_up = l->n > 0;
	size_t left = l->n;
	pthread_mutex_unlock(&l->mu);
	/* still queued after the wait: not delivered as far as the caller can tell */
	s->dropped = atomic_load(&l->dropped) + left;
	return 0;
}

static void sl_free(struct sl_sink *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->q[(l->head + i) % SL_QUEUE_MAX].buf);
	sl_disconnect(l);
	jw_free(&l->line);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv_work);
	pthread_cond_destroy(&l->cv_idle);
	free(l->sensor);
	free((char *)l->base.name);
	free(l);
}

static void sl_close(struct sink *s)
{
	struct sl_sink *l = (struct sl_sink *)s;
	sl_sync(s);
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_broadcast(&l->cv_work);
	pthread_mutex_unlock(&l->mu);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	uint64_t lost = atomic_load(&l->dropped) + l->n;
	if (lost)
		fprintf(stderr, "dbtap: %s: %llu events not delivered (receiver slow or unreachable)\n",
			s->name, (unsigned long long)lost);
	sl_free(l);
}

static const struct sink_ops sl_ops = {
	.put = sl_put,
	.flush = sl_flush,
	.close = sl_close,
	.sync = sl_sync,
};

/* unix:PATH | udp://HOST:PORT | tcp://HOST:PORT; HOST may be [v6]. */
static int sl_parse(struct sl_sink *l, const char *url, char *err, size_t errlen)
{
	if (strncmp(url, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&l->addr;
		const char *p = url + 5;
		if (!p[0] || strlen(p) >= sizeof un->sun_path) {
			snprintf(err, errlen, "--syslog %s: a socket path (at most %zu bytes)", url,
				 sizeof un->sun_path - 1);
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, p, strlen(p) + 1);
		l->addrlen = sizeof *un;
		l->kind = SL_UNIX;
		return 0;
	}
	const char *rest;
	if (strncmp(url, "udp://", 6) == 0)
		l->kind = SL_UDP, rest = url + 6;
	else if (strncmp(url, "tcp://", 6) == 0)
		l->kind = SL_TCP, rest = url + 6;
	else {
		snprintf(err, errlen, "--syslog %s: expected unix:PATH, udp://HOST:PORT or tcp://HOST:PORT", url);
		return -1;
	}
	char host[256];
	const char *port;
	if (rest[0] == '[') {
		const char *e = strchr(rest, ']');
		if (!e || e[1] != ':' || (size_t)(e - rest - 1) >= sizeof host) {
			snprintf(err, errlen, "--syslog %s: expected [ADDRESS]:PORT", url);
			return -1;
		}
		memcpy(host, rest + 1, (size_t)(e - rest - 1));
		host[e - rest - 1] = 0;
		port = e + 2;
	} else {
		const char *c = strrchr(rest, ':');
		if (!c || (size_t)(c - rest) >= sizeof host || c == rest) {
			snprintf(err, errlen, "--syslog %s: expected HOST:PORT", url);
			return -1;
		}
		memcpy(host, rest, (size_t)(c - rest));
		host[c - rest] = 0;
		port = c + 1;
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!port[0] || *end || pn < 1 || pn > 65535) {
		snprintf(err, errlen, "--syslog %s: a port from 1 to 65535", url);
		return -1;
	}
	struct addrinfo hints = { .ai_socktype = l->kind == SL_TCP ? SOCK_STREAM : SOCK_DGRAM }, *ai;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g != 0) {
		snprintf(err, errlen, "--syslog %s: %s", url, gai_strerror(g));
		return -1;
	}
	memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
	l->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int sink_syslog_check(const char *url, char *err, size_t errlen)
{
	struct sl_sink *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "--syslog %s: out of memory", url);
		return -1;
	}
	int rc = sl_parse(l, url, err, errlen);
	free(l);
	return rc;
}

struct sink *sink_syslog_open(const char *url, int format, const char *sensor, char *err, size_t errlen)
{
	struct sl_sink *l = calloc(1, sizeof *l);
	if (!l || !(l->base.name = strdup(url)) || (sensor && !(l->sensor = strdup(sensor)))) {
		snprintf(err, errlen, "--syslog %s: out of memory", url);
		if (l) {
			free((char *)l->base.name);
			free(l);
		}
		return NULL;
	}
	l->base.ops = &sl_ops;
	l->fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv_work, NULL);
	pthread_cond_init(&l->cv_idle, NULL);
	atomic_init(&l->dropped, 0);
	l->opts.format = format == EVL_OCSF ? EVL_OCSF : EVL_DBTAP;
	l->opts.sensor = l->sensor;
	/* HOSTNAME is PRINTUSASCII (33..126), at most 255; "-" when there is none */
	size_t k = 0;
	for (const char *p = sensor ? sensor : ""; *p && k < sizeof l->host - 1; p++)
		l->host[k++] = (*p > 32 && *p < 127) ? *p : '_';
	if (!k)
		l->host[k++] = '-';
	l->host[k] = 0;
	if (sl_parse(l, url, err, errlen) != 0) {
		sl_free(l);
		return NULL;
	}
	if (pthread_create(&l->thread, NULL, sl_thread, l) != 0) {
		snprintf(err, errlen, "--syslog %s: cannot start the sender thread", url);
		sl_free(l);
		return NULL;
	}
	l->thread_started = 1;
	pthread_setname_np(l->thread, "dbtap-syslog");
	return &l->base;
}
