/* The decoding stage (see decstage.h), a stage (stage.h) whose calls are the decoders':
 * threaded, each call's argument is copied with the bytes it carries (segment data, the
 * open's addresses) and the decoder thread replays them in order; the dflow belongs to
 * that side except for its stopped flag, which the capture reads to stop handing bytes
 * over. */
#include "decstage.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"
#include "tlsdec.h"

#define HOLD_KEEP_CAP (64u << 10) /* an emptied hold buffer bigger than this is freed */
#define TLS_KEYS_MAX 65536	   /* key log entries kept (client randoms), oldest dropped */
#define TLS_HOLD_FLOW (1u << 20)   /* encrypted bytes one session may hold waiting for its key */
#define TLS_HOLD_TOTAL (64u << 20) /* ... all sessions together */
#define TLS_PARKED_MAX 4096	   /* closed flows kept open for a key that may still come */
#define TLS_LATE_GRACE_US (60 * (ev_time)1000000) /* how long after the wait a key is "late" */

struct hold {
	uint8_t *buf;
	size_t len, cap;
};

struct dflow {
	struct decstage *ds;
	const struct proto_decoder *dec;
	void *state; /* NULL: the decoder could not start; bytes are ignored */
	struct ev_sink sink;
	void *sess;
	struct hold hold[2]; /* by enum proto_dir */
	uint64_t lost;	     /* held bytes dropped at gaps */
	/* TLS: the decoder saw the session switch (EV_TLS) during the parse under way */
	int tls_start, tls_gss;
	const uint8_t *tls_at;
	struct tls_sess *tls; /* decrypting: every byte goes through it first */
	const char *tls_said; /* the tls_decrypted value the analyzer was last told */
	ev_time ts;
	/* closed while its key may still come: parked on the stage's list until it does,
	 * or the wait (plus TLS_LATE_GRACE_US to tell key_late from no_key) is over */
	int parked;
	enum proto_end why;
	struct an_flow_end end;
	struct dflow *pnext, *pprev;
	/* Read by the capture for every segment: a cache line of its own, or each write of
	 * the decoder's fields above would take the line from the capture's core. */
	_Alignas(64) atomic_int stopped;
};

struct decstage {
	struct anpipe *pipe;
	struct stage *stage;
	struct decstage_stats st; /* the decoding side's */
	size_t held, held_max;	  /* bytes of hold buffers, all flows; their cap */
	struct tls_ctx *tls;	  /* NULL: no key log configured, TLS stays opaque */
	struct dflow *parked;	  /* closed flows whose key may still come */
	size_t nparked;
	ev_time tls_wait_us;
};

enum { D_OPEN, D_DATA, D_GAP, D_CLOSE, D_TICK, D_CALL, D_ANOMALY };

/* ---- the decoding side ---- */

static void emit(void *ctx, const struct ev *ev)
{
	struct dflow *df = ctx;
	if (ev->type == EV_TLS && !ev->u.tls.decrypted && !df->tls) {
		df->tls_start = 1;
		df->tls_at = ev->u.tls.at;
		df->tls_gss = ev->u.tls.gss;
	}
	if (df->sess)
		anpipe_feed(df->ds->pipe, df->sess, ev);
}

static void do_open(struct dflow *df, const struct proto_decoder *dec, int midstream,
		    const struct an_flow *flow)
{
	df->dec = dec;
	df->sink.fn = emit;
	df->sink.ctx = df;
	df->state = dec->open(&df->sink, midstream);
	if (df->state)
		df->sess = anpipe_open(df->ds->pipe, flow);
}

static void hold_free(struct decstage *ds, struct hold *h)
{
	ds->held -= h->cap;
	free(h->buf);
	*h = (struct hold){ 0 };
}

/* Room for n bytes in h; -1 when out of memory or over the stage's budget. */
static int hold_room(struct decstage *ds, struct hold *h, size_t n)
{
	if (n <= h->cap)
		return 0;
	size_t cap = h->cap ? h->cap : 4096;
	while (cap < n)
		cap *= 2;
	if (ds->held - h->cap + cap > ds->held_max)
		return -1;
	uint8_t *b = realloc(h->buf, cap);
	if (!b)
		return -1;
	ds->held += cap - h->cap;
	h->buf = b;
	h->cap = cap;
	return 0;
}

/* A message head that cannot be held (budget, memory) is dropped: the decoder resyncs. */
static void drop_head(struct dflow *df, enum proto_dir dir, ev_time ts)
{
	df->ds->st.held_dropped++;
	hold_free(df->ds, &df->hold[dir]);
	df->dec->gap(df->state, dir, ts);
}

static int tls_begin(struct dflow *df, enum proto_dir dir, ev_time ts, const uint8_t *buf,
		     size_t len);

static void stop(struct dflow *df)
{
	atomic_store_explicit(&df->stopped, 1, memory_order_relaxed);
	hold_free(df->ds, &df->hold[0]);
	hold_free(df->ds, &df->hold[1]);
}

/* Bytes for the decoder: the stream itself, or what TLS decrypted from it. */
static void dec_feed(struct dflow *df, enum proto_dir dir, ev_time ts, const uint8_t *p, size_t n)
{
	if (atomic_load_explicit(&df->stopped, memory_order_relaxed))
		return;
	struct hold *h = &df->hold[dir];
	const uint8_t *buf = p;
	size_t len = n;
	if (h->len) { /* a message head is waiting for these bytes */
		if (hold_room(df->ds, h, h->len + n) < 0) {
			drop_head(df, dir, ts);
			return;
		}
		memcpy(h->buf + h->len, p, n);
		h->len += n;
		buf = h->buf;
		len = h->len;
	}
	struct proto_result r = df->dec->parse(df->state, dir, buf, len, ts);
	size_t used = r.consumed > len ? len : r.consumed;
	if (r.status == PROTO_STOP) {
		if (df->tls_start && tls_begin(df, dir, ts, buf, len))
			return;
		stop(df);
		return;
	}
	if (len - used > PROTO_MAX_HOLD) {
		/* The decoder would not commit to a message this big: drop it, resync. */
		df->ds->st.oversize++;
		df->dec->gap(df->state, dir, ts);
		used = len;
	}
	size_t keep = len - used;
	if (!keep) {
		h->len = 0;
		if (h->cap > HOLD_KEEP_CAP)
			hold_free(df->ds, h);
		return;
	}
	if (buf == h->buf) {
		memmove(h->buf, h->buf + used, keep);
	} else if (hold_room(df->ds, h, keep) < 0) {
		drop_head(df, dir, ts);
		return;
	} else {
		memcpy(h->buf, buf + used, keep);
	}
	h->len = keep;
}

/* ---- TLS: decrypted from key logs between the stream and the decoder ---- */

static void tls_tell(struct dflow *df, const char *what)
{
	if (df->tls_said == what)
		return;
	df->tls_said = what;
	struct ev e = { .type = EV_TLS, .ts = df->ts };
	e.u.tls.decrypted = what;
	emit(df, &e);
}

static void tls_data(void *ctx, int dir, tls_time ts, const uint8_t *p, size_t n)
{
	dec_feed(ctx, (enum proto_dir)dir, ts, p, n);
}

static void tls_gap(void *ctx, int dir, tls_time ts)
{
	struct dflow *df = ctx;
	if (atomic_load_explicit(&df->stopped, memory_order_relaxed))
		return;
	df->hold[dir].len = 0;
	df->dec->gap(df->state, (enum proto_dir)dir, ts);
}

static void tls_anomaly(void *ctx, int dir, tls_time ts, const char *what)
{
	struct dflow *df = ctx;
	struct ev e = { .type = EV_ANOMALY, .ts = ts, .to_server = dir == PROTO_TO_SERVER };
	e.u.anomaly.what = what;
	emit(df, &e);
}

static void tls_state(void *ctx, enum tls_state st)
{
	struct dflow *df = ctx;
	if (st != TLS_ST_HANDSHAKE && st != TLS_ST_WAIT_KEY)
		tls_tell(df, tls_state_name(st));
}

/* The decoder stopped at a TLS start: decrypt when keys can be had, else stay opaque (and
 * say why). 1 when the flow carries on through the TLS layer. */
static int tls_begin(struct dflow *df, enum proto_dir dir, ev_time ts, const uint8_t *buf,
		     size_t len)
{
	df->tls_start = 0;
	if (df->tls || df->tls_gss || !df->ds->tls || !df->dec->tls_resume) {
		if (!df->tls)
			tls_tell(df, df->tls_gss ? "unsupported" : "no_key");
		return 0;
	}
	const struct tls_out out = { .data = tls_data, .gap = tls_gap, .anomaly = tls_anomaly,
				     .state = tls_state, .ctx = df };
	/* the TLS bytes that came with the switch (a direct ClientHello, or the one right
	 * behind a MySQL SSL request): copied, the hold buffers go now */
	size_t rn = df->tls_at && df->tls_at >= buf && df->tls_at <= buf + len
			    ? (size_t)(buf + len - df->tls_at) : 0;
	uint8_t *rest = rn ? malloc(rn) : NULL;
	if ((rn && !rest) || !(df->tls = tls_sess_new(df->ds->tls, &out))) {
		free(rest);
		tls_tell(df, "no_key");
		return 0;
	}
	if (rn)
		memcpy(rest, df->tls_at, rn);
	df->hold[0].len = df->hold[1].len = 0;
	df->dec->tls_resume(df->state);
	if (rn)
		tls_sess_feed(df->tls, dir, ts, rest, rn);
	free(rest);
	if (tls_sess_done(df->tls))
		stop(df);
	return 1;
}

static void do_data(struct dflow *df, enum proto_dir dir, ev_time ts, const uint8_t *p, size_t n)
{
	if (!df->state || atomic_load_explicit(&df->stopped, memory_order_relaxed))
		return;
	df->ts = ts;
	if (!df->tls) {
		dec_feed(df, dir, ts, p, n);
		return;
	}
	tls_sess_feed(df->tls, dir, ts, p, n);
	if (tls_sess_done(df->tls))
		stop(df);
}

static void do_gap(struct dflow *df, enum proto_dir dir, ev_time ts)
{
	if (!df->state || atomic_load_explicit(&df->stopped, memory_order_relaxed))
		return;
	if (df->tls) {
		tls_sess_gap(df->tls, dir, ts);
		if (tls_sess_done(df->tls))
			stop(df);
		return;
	}
	df->hold[dir].len = 0; /* the stuck direction's head goes with the hole */
	df->dec->gap(df->state, dir, ts);
	enum proto_dir other = dir == PROTO_TO_SERVER ? PROTO_TO_CLIENT : PROTO_TO_SERVER;
	struct hold *o = &df->hold[other];
	if (o->len) {
		df->lost += o->len;
		df->ds->st.lost_bytes += o->len;
		o->len = 0;
		df->dec->gap(df->state, other, ts);
	}
}

/* Only the capture layer's TCP normalisation posts these (tcpnorm.c, once per flow). */
static void do_anomaly(struct dflow *df, enum proto_dir dir, ev_time ts, const char *what)
{
	struct ev e = { .type = EV_ANOMALY, .ts = ts, .to_server = dir == PROTO_TO_SERVER };
	e.u.anomaly.what = what;
	e.u.anomaly.evasion = 1;
	emit(df, &e);
}

static void finish_close(struct dflow *df, enum proto_end why, const struct an_flow_end *end);

static void unpark(struct dflow *df)
{
	struct decstage *ds = df->ds;
	if (df->pprev)
		df->pprev->pnext = df->pnext;
	else
		ds->parked = df->pnext;
	if (df->pnext)
		df->pnext->pprev = df->pprev;
	ds->nparked--;
	df->parked = 0;
	finish_close(df, df->why, &df->end);
}

/* Parked flows whose key came, or whose time is up, close now (all of them: force). */
static void tls_settle(struct decstage *ds, ev_time now, int force)
{
	for (struct dflow *df = ds->parked, *nx; df; df = nx) {
		nx = df->pnext;
		if (force || tls_sess_may_close(df->tls) ||
		    now - df->end.ts > ds->tls_wait_us + TLS_LATE_GRACE_US)
			unpark(df);
	}
}

static void do_close(struct dflow *df, enum proto_end why, const struct an_flow_end *end)
{
	if (df->tls && df->ds->nparked < TLS_PARKED_MAX && !tls_sess_may_close(df->tls)) {
		struct decstage *ds = df->ds;
		df->parked = 1;
		df->why = why;
		df->end = *end;
		df->pprev = NULL;
		df->pnext = ds->parked;
		if (ds->parked)
			ds->parked->pprev = df;
		ds->parked = df;
		ds->nparked++;
		return;
	}
	finish_close(df, why, end);
}

static void finish_close(struct dflow *df, enum proto_end why, const struct an_flow_end *end)
{
	if (df->tls) { /* a key may have come at last: decoded before the decoder closes */
		df->ts = end->ts;
		atomic_store_explicit(&df->stopped, 0, memory_order_relaxed);
		tls_sess_free(df->tls, end->ts);
		df->tls = NULL;
	}
	if (df->state) {
		if (df->dec->stats)
			df->dec->stats(df->state, &df->ds->st.p);
		df->dec->close(df->state, why, end->ts);
	}
	if (df->sess) {
		struct an_flow_end e = *end;
		e.lost_bytes += df->lost;
		anpipe_close(df->ds->pipe, df->sess, &e);
	}
	hold_free(df->ds, &df->hold[0]);
	hold_free(df->ds, &df->hold[1]);
	free(df);
}

/* ---- the calls and their arguments ---- */

struct a_open {
	struct an_flow flow; /* first: anpipe_flow_copy */
	struct dflow *df;
	const struct proto_decoder *dec;
	int midstream;
};

static const struct stage_arg open_arg = { sizeof(struct a_open), anpipe_flow_extra, anpipe_flow_copy };

struct a_data {
	struct dflow *df;
	ev_time ts;
	const uint8_t *p; /* threaded: a copy behind the argument */
	size_t len;
	int dir;
};

static size_t data_extra(const void *arg)
{
	return ((const struct a_data *)arg)->len;
}

static void data_copy(void *arg, void *at)
{
	struct a_data *a = arg;
	memcpy(at, a->p, a->len);
	a->p = at;
}

static const struct stage_arg data_arg = { sizeof(struct a_data), data_extra, data_copy };

/* a gap (what NULL) or a capture anomaly (what: static) */
struct a_gap {
	struct dflow *df;
	ev_time ts;
	int dir;
	const char *what;
};

static const struct stage_arg gap_arg = { sizeof(struct a_gap), NULL, NULL };

struct a_close {
	struct dflow *df;
	int why;
	struct an_flow_end end; /* reason: a static literal */
};

static const struct stage_arg close_arg = { sizeof(struct a_close), NULL, NULL };
static const struct stage_arg tick_arg = { sizeof(ev_time), NULL, NULL };

static void run(void *ctx, int type, void *arg)
{
	struct decstage *ds = ctx;
	switch (type) {
	case D_OPEN: {
		struct a_open *a = arg;
		do_open(a->df, a->dec, a->midstream, &a->flow);
		break;
	}
	case D_DATA: {
		struct a_data *a = arg;
		do_data(a->df, (enum proto_dir)a->dir, a->ts, a->p, a->len);
		break;
	}
	case D_GAP: {
		struct a_gap *a = arg;
		do_gap(a->df, (enum proto_dir)a->dir, a->ts);
		break;
	}
	case D_ANOMALY: {
		struct a_gap *a = arg;
		do_anomaly(a->df, (enum proto_dir)a->dir, a->ts, a->what);
		break;
	}
	case D_CLOSE: {
		struct a_close *a = arg;
		do_close(a->df, (enum proto_end)a->why, &a->end);
		break;
	}
	case D_TICK: {
		ev_time now = *(ev_time *)arg;
		if (ds->tls) {
			tls_ctx_tick(ds->tls, now);
			tls_settle(ds, now, 0);
		}
		anpipe_tick(ds->pipe, now);
		break;
	}
	case D_CALL: {
		struct stage_call *a = arg;
		anpipe_call(ds->pipe, a->fn, a->ctx);
		break;
	}
	}
}

/* The queue ran dry: give the analyzer what the decoders produced. */
static void idle(void *ctx)
{
	struct decstage *ds = ctx;
	anpipe_flush(ds->pipe);
}

static const struct stage_ops dec_ops = { .thread_name = "dbtap-decoder", .run = run, .idle = idle };

/* ---- the capture side ---- */

struct decstage *decstage_new(struct anpipe *pipe, int threaded, size_t held_max)
{
	struct decstage *ds = calloc(1, sizeof *ds);
	if (!ds)
		return NULL;
	ds->pipe = pipe;
	ds->held_max = held_max;
	if (!(ds->stage = stage_new(&dec_ops, ds, threaded))) {
		free(ds);
		return NULL;
	}
	return ds;
}

static void stats_add(struct decstage_stats *to, const struct decstage_stats *from)
{
	to->p.stmt_evictions += from->p.stmt_evictions;
	to->p.portal_evictions += from->p.portal_evictions;
	to->p.params_dropped += from->p.params_dropped;
	to->p.pending_dropped += from->p.pending_dropped;
	to->oversize += from->oversize;
	to->held_dropped += from->held_dropped;
	to->lost_bytes += from->lost_bytes;
	to->tls = from->tls;
	to->keys = from->keys;
}

void decstage_free(struct decstage *ds, struct decstage_stats *st)
{
	if (!ds)
		return;
	stage_free(ds->stage); /* runs the rest first */
	tls_settle(ds, 0, 1); /* the decoder thread is gone: closed here */
	tls_ctx_free(ds->tls, &ds->st.tls, &ds->st.keys);
	if (st)
		stats_add(st, &ds->st);
	free(ds);
}

void decstage_flush(struct decstage *ds)
{
	if (stage_threaded(ds->stage))
		stage_flush(ds->stage); /* the decoder thread flushes the analyzer's when idle */
	else
		anpipe_flush(ds->pipe);
}

int decstage_tls(struct decstage *ds, char *const *keylogs, int n, int wait_s, char *err,
		 size_t errlen)
{
	struct tlsk_store *k = tlsk_new(keylogs, n, TLS_KEYS_MAX, err, errlen);
	if (!k)
		return -1;
	ds->tls_wait_us = (ev_time)wait_s * 1000000;
	ds->tls = tls_ctx_new(k, (tls_time)wait_s * 1000000, TLS_HOLD_FLOW, TLS_HOLD_TOTAL);
	if (!ds->tls) {
		tlsk_free(k, NULL);
		snprintf(err, errlen, "tls_keylog: libcrypto lacks HKDF, TLS1-PRF or an AEAD cipher");
		return -1;
	}
	return 0;
}

struct dflow *decstage_open(struct decstage *ds, const struct proto_decoder *dec, int midstream,
			    const struct an_flow *flow)
{
	struct dflow *df = aligned_alloc(_Alignof(struct dflow), sizeof *df);
	if (!df)
		return NULL;
	memset(df, 0, sizeof *df);
	df->ds = ds;
	atomic_init(&df->stopped, 0);
	struct a_open a = { *flow, df, dec, midstream };
	if (stage_post(ds->stage, D_OPEN, &a, &open_arg) < 0) {
		free(df);
		return NULL;
	}
	return df;
}

int decstage_stopped(const struct dflow *df)
{
	return atomic_load_explicit(&df->stopped, memory_order_relaxed);
}

void decstage_data(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts,
		   const uint8_t *buf, size_t len)
{
	struct a_data a = { df, ts, buf, len, (int)dir };
	if (stage_post(ds->stage, D_DATA, &a, &data_arg) < 0)
		decstage_gap(ds, df, dir, ts); /* out of memory: these bytes are lost to the decoder */
}

void decstage_gap(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts)
{
	struct a_gap a = { df, ts, (int)dir, NULL };
	(void)stage_post(ds->stage, D_GAP, &a, &gap_arg);
}

void decstage_anomaly(struct decstage *ds, struct dflow *df, enum proto_dir dir, ev_time ts,
		      const char *what)
{
	struct a_gap a = { df, ts, (int)dir, what };
	(void)stage_post(ds->stage, D_ANOMALY, &a, &gap_arg);
}

void decstage_close(struct decstage *ds, struct dflow *df, enum proto_end why,
		    const struct an_flow_end *end)
{
	struct a_close a = { df, (int)why, *end };
	if (stage_post(ds->stage, D_CLOSE, &a, &close_arg) < 0) {
		stage_drain(ds->stage); /* out of memory: close here once the decoder thread is idle */
		do_close(df, why, end);
	}
}

void decstage_tick(struct decstage *ds, ev_time now)
{
	(void)stage_post(ds->stage, D_TICK, &now, &tick_arg);
}

void decstage_call(struct decstage *ds, void (*fn)(void *), void *ctx)
{
	struct stage_call a = { fn, ctx };
	(void)stage_post(ds->stage, D_CALL, &a, &stage_call_arg);
	stage_flush(ds->stage);
}

void decstage_tls_json(const struct decstage_stats *st, char *out, size_t n)
{
	const struct tls_stats *t = &st->tls;
	const struct tlsk_stats *k = &st->keys;
	snprintf(out, n,
		 ",\"tls\":{\"sessions\":%llu,\"decrypted\":%llu,\"no_key\":%llu,\"key_late\":%llu,"
		 "\"bad_key\":%llu,\"unsupported\":%llu,\"midstream\":%llu,\"records\":%llu,"
		 "\"auth_failures\":%llu,\"held_dropped_bytes\":%llu,\"key_updates\":%llu,"
		 "\"keys_loaded\":%llu,\"keys_matched\":%llu,\"keys_unused\":%llu,"
		 "\"keys_expired\":%llu,\"keylog_bad_lines\":%llu}}",
		 (unsigned long long)t->sessions, (unsigned long long)t->decrypted,
		 (unsigned long long)t->no_key, (unsigned long long)t->key_late,
		 (unsigned long long)t->bad_key, (unsigned long long)t->unsupported,
		 (unsigned long long)t->midstream, (unsigned long long)t->records,
		 (unsigned long long)t->auth_failures, (unsigned long long)t->held_dropped_bytes,
		 (unsigned long long)t->keyupdates, (unsigned long long)k->loaded,
		 (unsigned long long)k->matched, (unsigned long long)k->unused,
		 (unsigned long long)k->expired, (unsigned long long)k->bad_lines);
}

size_t decstage_queued(struct decstage *ds)
{
	return ds ? stage_queued(ds->stage) : 0;
}
