/* libnids glue: its callbacks open, feed and close our flows, and with them each flow's
 * decoder and analyzer session; its hooks (warnings, out of memory, the stream hash). */
#include "cap_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void addr_text(const struct cap *c, uint32_t a, char *buf, size_t len)
{
	const uint8_t *v6 = v6map_lookup(c->v6, a);
	if (v6)
		inet_ntop(AF_INET6, v6, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

/* Choose the decoder and open the analyzer session. */
static void flow_start_decoding(struct cap *c, struct flow *f, const struct proto_decoder *d)
{
	f->dec = d;
	struct an_flow af = {
		.protocol = d->name,
		.dialect = d->dialect,
		.client_ip = f->cli_ip,
		.server_ip = f->srv_ip,
		.client_port = ntohs(f->key.cli_port),
		.server_port = ntohs(f->key.srv_port),
		.ts = f->first_ts,
		.midstream = f->midstream,
	};
	f->df = decstage_open(c->ds, d, f->midstream, &af);
	if (!f->df) {
		f->ignored = 1;
		return;
	}
	c->st.streams++;
}

void capnids_flow_finish(struct cap *c, struct flow *f, const char *reason, enum proto_end why)
{
	if (f->df) {
		struct an_flow_end e = {
			.ts = f->last_ts,
			.reason = reason,
			.bytes_to_server = f->bytes_to_server,
			.bytes_to_client = f->bytes_to_client,
			.gaps = f->gaps,
			.lost_bytes = f->lost_bytes,
		};
		decstage_close(c->ds, f->df, why, &e);
		f->df = NULL;
	}
	if (f->stream)
		((struct tcp_stream *)f->stream)->user = NULL;
	flows_remove(&c->flows, f);
}

static void flow_key_of(const struct tuple4 *t, struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->cli_ip = t->saddr;
	k->srv_ip = t->daddr;
	k->cli_port = htons(t->source);
	k->srv_port = htons(t->dest);
}

/* Make room for one more flow by closing a least recently active one. Among the oldest
 * few, a flow that never carried more than a handshake goes first: under a connection
 * flood, the sessions that matter are the ones doing work. */
static void flows_make_room(struct cap *c)
{
	while (c->flows.count >= c->flows.cap && c->flows.lru_head) {
		struct flow *old = c->flows.lru_head;
		struct flow *f = old;
		for (int i = 0; f && i < 16; i++, f = f->lru_next)
			if (f->bytes_to_server + f->bytes_to_client < 1024) {
				old = f;
				break;
			}
		if (old->stream)
			nids_free_tcp_stream(old->stream);
		old->stream = NULL;
		c->st.evicted++;
		capnids_flow_finish(c, old, "timeout", PROTO_END_TIMEOUT);
	}
}

static void on_established(struct cap *c, struct tcp_stream *a)
{
	struct flow_key k;
	flow_key_of(&a->addr, &k);
	struct flow *f = flows_find(&c->flows, &k);
	if (!c->injecting)
		cappick_established(c, &k);
	if (f) { /* re-picked up after a gap or a reset: same session goes on */
		f->stream = a;
		a->user = f;
		a->client.collect++;
		a->server.collect++;
		return;
	}
	const struct proto_decoder *d = cap_decoder_for_port(c, a->addr.dest);
	if (!d && !c->cfg.probe_other_ports)
		return;
	/* A SYN from a database port to a client port: roles reversed, not ours. */
	if (!d && cap_decoder_for_port(c, a->addr.source))
		return;
	flows_make_room(c);
	f = flows_add(&c->flows, &k);
	if (!f) {
		c->st.flows_failed++; /* out of memory: room was made above */
		return;
	}
	f->stream = a;
	f->first_ts = f->last_ts = c->now;
	f->midstream = (uint8_t)c->injecting;
	addr_text(c, a->addr.saddr, f->cli_ip, sizeof f->cli_ip);
	addr_text(c, a->addr.daddr, f->srv_ip, sizeof f->srv_ip);
	if (c->cfg.n_host_os) {
		const uint8_t *v6 = v6map_lookup(c->v6, a->addr.daddr);
		f->tn.os = (uint8_t)cap_host_os(&c->cfg, v6 != NULL, v6 ? v6 : (const uint8_t *)&a->addr.daddr);
	}
	a->user = f;
	a->client.collect++;
	a->server.collect++;
	if (d)
		flow_start_decoding(c, f, d);
}

/* Unknown port: look at the first bytes of either direction. */
static int flow_probe(struct cap *c, struct flow *f, enum proto_dir dir, const uint8_t *buf,
		      size_t len)
{
	int maybe = 0;
	for (size_t i = 0; proto_registry[i]; i++) {
		enum proto_verdict v = proto_registry[i]->probe(dir, buf, len);
		if (v == PROTO_YES) {
			flow_start_decoding(c, f, proto_registry[i]);
			return 1;
		}
		maybe |= v == PROTO_MAYBE;
	}
	f->probe_bytes += (uint32_t)len;
	if (!maybe || f->probe_bytes > CAP_PROBE_LIMIT)
		f->ignored = 1;
	return 0;
}

static void on_data(struct cap *c, struct tcp_stream *a, struct flow *f)
{
	struct half_stream *h;
	enum proto_dir dir;
	if (a->server.count_new) {
		h = &a->server;
		dir = PROTO_TO_SERVER;
		f->bytes_to_server += (uint64_t)a->server.count_new;
	} else if (a->client.count_new) {
		h = &a->client;
		dir = PROTO_TO_CLIENT;
		f->bytes_to_client += (uint64_t)a->client.count_new;
	} else {
		return; /* urgent data only */
	}
	flows_touch(&c->flows, f, c->now);
	if (f->ignored || (f->df && decstage_stopped(f->df)))
		return; /* everything is consumed by default */
	const uint8_t *buf = (const uint8_t *)h->data;
	size_t len = (size_t)(h->count - h->offset);
	if (!f->dec) {
		if (!flow_probe(c, f, dir, buf, len)) {
			if (!f->ignored)
				nids_discard(a, 0); /* keep the bytes until we know */
			return;
		}
		if (!f->df)
			return;
	}
	/* All of it goes to the decoding stage, which holds any message head itself. */
	decstage_data(c->ds, f->df, dir, c->now, buf, len);
}

void capnids_tcp_callback(struct tcp_stream *a, void **param)
{
	(void)param;
	struct cap *c = cap_current;
	struct flow *f = a->user;
	switch (a->nids_state) {
	case NIDS_JUST_EST:
		/* PAWS is tcpnorm.c's, by Linux's rule (a TSval one tick older still passes);
		 * libnids' own is stricter and would drop a segment the server takes */
		a->client.ts_on = a->server.ts_on = 0;
		on_established(c, a);
		return;
	case NIDS_DATA:
		if (f)
			on_data(c, a, f);
		return;
	case NIDS_CLOSE:
	case NIDS_RESET:
	case NIDS_TIMED_OUT:
	case NIDS_EXITING:
		break;
	default:
		return;
	}
	if (!f)
		return;
	f->stream = NULL;
	a->user = NULL;
	if (a->nids_state == NIDS_CLOSE) {
		capnids_flow_finish(c, f, "close", PROTO_END_CLOSE);
	} else if (a->nids_state == NIDS_RESET) {
		cappick_reset(c, &f->key);
		capnids_flow_finish(c, f, "reset", PROTO_END_RESET);
	} else if (a->nids_state == NIDS_TIMED_OUT && a->client.state == 1 && a->server.state == 1) {
		/* Both halves still ESTABLISHED: libnids evicted it to make room (a SYN flood
		 * does this), not a close. Keep the session; the next segment picks it up. */
		c->st.nids_evictions++;
	} else if (a->nids_state == NIDS_TIMED_OUT) {
		capnids_flow_finish(c, f, "timeout", PROTO_END_TIMEOUT);
	} else {
		capnids_flow_finish(c, f, "eof", PROTO_END_EOF);
	}
}

/* ---- libnids hooks ---- */

void capnids_log(int type, int err, struct ip *iph, void *data)
{
	(void)iph;
	(void)data;
	if (!cap_current)
		return;
	cap_current->st.nids_warnings++;
	if (type == NIDS_WARN_TCP && err == NIDS_WARN_TCP_BIGQUEUE)
		cap_current->bigqueue = 1;
	if (type == NIDS_WARN_TCP && err == NIDS_WARN_TCP_TOOMUCH)
		cap_current->st.nids_too_many++;
}

/* libnids finds a stream by mkhash() % table size, and calls mkhash through the PLT, so
 * this definition (exported: capture/meson.build) replaces its own: a keyed byte loop of
 * twelve divisions, ~200 instructions a call and one or two calls a packet, 12-18 % of
 * the capture thread. Ours is the flow table's keyed hash, just as hard to flood. */
unsigned int mkhash(unsigned int src, unsigned short sport, unsigned int dest, unsigned short dport);
unsigned int mkhash(unsigned int src, unsigned short sport, unsigned int dest, unsigned short dport)
{
	/* libnids keeps the result in an int before taking it modulo its table size: a
	 * negative one would index before the table (its own stays below 0xff100f) */
	return flows_hash(src, sport, dest, dport) & 0x7fffffffu;
}

void capnids_nomem(char *where)
{
	/* libnids would crash on the next memcpy if we returned. */
	fprintf(stderr, "dbtap: out of memory in libnids (%s)\n", where ? where : "?");
	abort();
}
