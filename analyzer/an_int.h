/* Analyzer internals shared by the core (an*.c), attribution (attr.c) and the detectors
 * (det_*.c): the session and statement views detectors read, and how they raise findings.
 * Not part of the seam: nothing outside analyzer/ includes it (tests do). */
#ifndef DBTAP_AN_INT_H
#define DBTAP_AN_INT_H

#include <regex.h>
#include <string.h>

#include "an.h"
#include "sqlnorm.h"

#define AN_STR_MAX 128		 /* identity strings kept per session */
#define AN_CLIENT_INFO_MAX 2048	 /* client_info JSON */
#define AN_MAX_FINDINGS_STMT 12	 /* findings one statement may raise */
#define AN_ERR_RING 64		 /* error timestamps kept per window (caps error_burst) */
#define AN_KEYED_MAX 4096	 /* keyed windows (clients, accounts, end users) */

/* AN_SRC_UNKNOWN: a marker set to a value we could not read (or by a failed SET): it hides
 * the markers below it and names nobody. */
enum an_src { AN_SRC_NONE, AN_SRC_COMMENT, AN_SRC_APPNAME, AN_SRC_SESSVAR, AN_SRC_CONNATTR, AN_SRC_DBUSER,
	      AN_SRC_UNKNOWN };
const char *an_src_name(enum an_src s);

/* An end-user marker and where it came from. */
struct an_marker {
	char value[AN_STR_MAX];
	enum an_src src; /* AN_SRC_NONE: unset */
};

/* A sliding window of event times, capped at AN_ERR_RING entries. */
struct an_window {
	ev_time t[AN_ERR_RING];
	int head, n;
	int in_burst;	     /* a finding was raised for the current burst */
	ev_time burst_until; /* burst ends when nothing new arrives before this */
	int64_t burst_count;
};
void an_window_add(struct an_window *w, ev_time ts, ev_time window_us);
int an_window_count(struct an_window *w, ev_time now, ev_time window_us);

struct an_pending;
struct bl_entry;

/* The baseline entries of a query shape and its tables, for the session's identity: an
 * application sends the same few shapes over and over. */
#define AN_SHAPE_MEMO 16
#define AN_SHAPE_MEMO_TABLES 4
struct an_shape_memo {
	uint64_t h; /* sn_info.hash */
	struct bl_entry *shape, *table[AN_SHAPE_MEMO_TABLES];
};

/* A named prepared statement's text, kept by the analyzer so that a session resumed after
 * parking or a restart (its decoder starting mid-stream) still knows what it executes.
 * buf: name, NUL, text, NUL. */
#define AN_PS_MAX 64 /* per session; least recently used replaced */
struct an_ps {
	char *buf;
	uint32_t name_len, text_len, used;
	uint8_t trunc;
};

struct an_parked; /* state.c */

/* Issue #21 (pooler.c): a leg of a configured connection pooler, and what the join knows
 * about one statement. */
enum { AN_POOL_NONE, AN_POOL_CLIENT, AN_POOL_SERVER }; /* = REC_POOL_* (sink.h) */
enum { AN_PJ_NONE, AN_PJ_REG, AN_PJ_JOINED, AN_PJ_AMBIG, AN_PJ_NOMATCH };
struct an_pj_ref {
	uint64_t key;	/* hash of the statement bytes and bound values */
	uint32_t len;
	int32_t ent;	/* client-leg entry in the join ring (REG, JOINED) */
	uint32_t gen;
	uint8_t state;	/* AN_PJ_* */
};
struct pool_held;

struct an_session {
	struct an_session *prev, *next; /* LRU list, most recent first */
	int64_t id;
	int evicted; /* state freed, waiting for an_close */
	enum sn_dialect dialect;
	/* how the server lexes: SN_M_* in force, and the bits of it not known (both readings
	 * are then analysed) */
	uint8_t lexmode, lexmode_unknown;
	char protocol[16], client_ip[48], server_ip[48];
	int client_port, server_port;
	ev_time started_at, last_ts;
	int midstream, tls, login; /* login: 0 unknown, 1 ok, -1 failed */
	const char *tls_decrypted; /* static text from capture's TLS layer; NULL not told */
	char db_user[AN_STR_MAX], database[AN_STR_MAX], application[AN_STR_MAX];
	char server_version[64], auth_method[40], login_error[256];
	char role[AN_STR_MAX];	   /* effective role after SET ROLE / SESSION AUTHORIZATION */
	char txn_role[AN_STR_MAX]; /* SET LOCAL ROLE: until the transaction ends */
	char *client_info;     /* JSON, malloc'd */
	int replication;
	int64_t statements, errors, rows_returned;
	int dirty; /* identity changed since the last session put */
	int put_start, put_login; /* the start / login event was put (session state) */
	/* bumped whenever db_user, application or client_ip changes; the baseline entries
	 * of that identity (baseline.c) are kept while bl_gen == ident_gen + 1 */
	uint32_t ident_gen, bl_gen;
	uint32_t bl_egen; /* ... and while no eviction happened since (bl->egen) */
	struct bl_entry *bl_principal, *bl_client, *bl_subnet, *bl_app;
	struct bl_entry *bl_hour; /* the entry of hour bl_hour_of for this identity */
	int bl_hour_of;
	struct an_shape_memo bl_shapes[AN_SHAPE_MEMO]; /* by fingerprint hash, same identity */

	/* attribution state */
	struct an_marker txn_marker, sess_marker, attr_marker;
	char txn;
	/* PostgreSQL undoes a session SET inside a transaction that rolls back: the session
	 * marker as of the last idle ReadyForQuery, and whether it changed since */
	struct an_marker sess_at_idle;
	uint8_t sess_changed, rolled_back;

	/* pending statements: a ring of max_pending entries */
	struct an_pending *pend;
	int pend_head, pend_n, pend_cap;
	size_t pend_bytes;
	/* The last finished entry's block, reused by the next query (a session that waits for
	 * each result then needs no malloc per statement); at most AN_PEND_KEEP bytes. */
	void *pend_spare;
	size_t pend_spare_cap;

	/* issue #18: named prepared statements, resume facts */
	struct an_ps *ps;
	int n_ps;
	uint32_t ps_clock;
	int ps_last; /* index of the last one found */
	int64_t run_id; /* the run the session's row belongs to (kept when resumed) */
	int resumed, restored;
	int state_dirty; /* changed since its state was last saved */

	/* issue #21 (pooler.c) */
	uint8_t pool_role;  /* AN_POOL_* */
	int8_t pool_idx;    /* index into cfg.poolers */
	int64_t pool_bound; /* server leg: the client session it serves now; 0 none */
	uint32_t pool_txn_seq, pool_sess_seq; /* idle points so far; its value when a session marker was set */
	struct pool_held *held; /* server leg: statements waiting for their client to be known */
	int n_held;

	/* per-session detector state */
	struct an_window err_win;
	int anomalies, anomalies_suppressed;
	int cleartext_reported;
	int catalog_reported;
};

/* Most statements raise nothing and, with audit: findings, are not stored: their masked
 * text is made only when something asks for it. */
struct an_masked {
	struct an *an;
	int ready;
};

/* What a detector sees about one executed statement. */
struct an_stmt {
	struct an_session *s;
	const char *sql; /* this statement's raw text (NOT for storage: literals unmasked) */
	const struct sn_tok *toks;
	int first, end;	 /* token range within toks (offsets relative to sql base) */
	const char *base; /* toks offsets are relative to base */
	const struct sn_info *info;
	const char *norm;   /* normalised text */
	struct an_masked *masked; /* text as stored: an_stmt_masked(), made on first use */
	int kind;	    /* enum ev_query_kind */
	int part, n_parts;  /* position in a split simple query */
	const char *first_verb; /* verb of part 0 of the same message */
	int from_params;    /* 1: bound parameters exist (they are data, never injection) */
	ev_time ts, done_ts;
	/* result */
	enum ev_outcome outcome;
	char error_code[16];
	int64_t rows;
	uint64_t bytes;
	char tag[32];
	/* data movement the server asked for during the statement */
	int data_move, data_move_to_client;
	char data_move_what[AN_STR_MAX];
	/* attribution */
	const char *end_user, *end_user_source;
	char traceparent[64];
};

struct an_finding_draft {
	int kind;
	enum an_severity sev;
	char summary[256];
	char *evidence; /* JSON text, malloc'd */
	char fp[17];	/* a statement PREPARE / EXECUTE / DO runs: its fingerprint groups repeats */
};

/* A keyed sliding window table (bounded, least recently used evicted). */
struct an_keyed {
	char key[AN_STR_MAX];
	int kind; /* what the key names: detector-defined */
	ev_time last;
	struct an_window w;
	int64_t count; /* failures in the current burst */
	ev_time first_ts, cross_ts;
	int64_t session_id;
	char others[4][AN_STR_MAX]; /* distinct counterparts (clients for an account, ...) */
	int n_others;
	int fired;
	int succeeded; /* a login succeeded after the burst started */
	int used;
	/* context of the failure that crossed the threshold, for the finding */
	char protocol[16], client_ip[48], server_ip[48], account[AN_STR_MAX];
};

#define AN_NCACHE_SLOTS 64
#define AN_NCACHE_MAX_TEXT 4096 /* longer statements are not cached */
#define AN_NCACHE_MAX_TOKS 512
#define AN_PEND_MAX_TOKS 256 /* tokens kept with a pending simple query */
#define AN_MAX_PARTS 1024    /* statements of one message analysed; the last takes the rest */
#define AN_PART_HEAD 256     /* bytes kept of each statement once max_sql_bytes is spent */
#define AN_MAX_ALT_PARTS 64  /* statements of the other reading analysed per message */
#define AN_IN_TOKS 4096	     /* tokens of a PREPARE / EXECUTE / DO body analysed (each half) */
#define AN_MAX_DETECTORS 32  /* entries of an_detectors[] (det_registry.c) */
struct an_ncache {
	uint64_t hash;
	char *text; /* NULL: slot empty */
	size_t len;
	int dialect;
	int n;		     /* tokens */
	struct sn_tok *toks; /* n tokens */
	char *norm, *masked;
	size_t norm_len, masked_len;
	struct sn_info info; /* before the pending entry's own truncation is added */
};

/* Normalisation results by shape key (sn_shape_key): the statements of an application
 * differ in their literals, rarely in their shape. */
#define AN_SCACHE_SLOTS 256
#define AN_SCACHE_MAX_KEY 1024
#define AN_SCACHE_MAX_NORM 2048
struct an_scache {
	uint64_t h;
	uint8_t *key; /* NULL: slot empty; key, then the normalised text, one allocation */
	size_t key_len, norm_len;
	int dialect;
	struct sn_info info; /* only the first info.n_tables table names are set */
};

struct an {
	struct an_config cfg; /* shallow copy: strings stay owned by the caller's config */
	struct sink **sinks;
	int n_sinks;
	int64_t run_id;
	int64_t next_session, next_statement, next_finding;
	struct an_stats st;
	struct an_session *lru_head, *lru_tail;
	int n_sessions;
	ev_time now, last_flush, last_sweep;
	regex_t app_re[AN_MAX_LIST];
	int n_app_re;
	/* scratch for one statement */
	struct sn_tok *toks;
	char *norm, *masked;
	/* scratch for splitting one message: parts of the session's reading and of the other
	 * reading of a setting not known (AN_MAX_PARTS each), with each part's lexer mode */
	struct sn_range *parts, *alt_parts;
	uint8_t *part_mode, *alt_mode;
	/* scratch for what PREPARE / EXECUTE / DO run (inner.c-style, an.c): made at first use.
	 * Two token halves (a DO body, a string it EXECUTEs), norm, masked and unquoted text */
	struct sn_tok *in_toks;
	char *in_norm, *in_masked, *in_text, *in_fold;
	const char *repeat_fp; /* set while a draft with fp is put */
	/* prepared statements send the same text each time: what complete_part derives from
	 * the text alone, keyed by the exact bytes (direct-mapped, bounded) */
	struct an_ncache *ncache;
	struct an_scache *scache;
	/* drafts of the statement being completed */
	struct an_finding_draft drafts[AN_MAX_FINDINGS_STMT];
	int n_drafts;
	/* detector state */
	struct an_keyed *bf;  /* auth_bruteforce: clients and accounts */
	struct an_keyed *eb;  /* error_burst: end users */
	int n_bf, n_eb, cap_bf, cap_eb; /* grown on demand up to AN_KEYED_MAX */
	struct bl *bl; /* learned baseline (baseline.c), created on first use */
	struct sqli_state *sqli; /* sql_injection scratch and known slots (det_sql_injection.c) */
	struct an_repeat *rep;	  /* finding repeats (repeat.c) */
	struct bf_state *bf_ext;  /* auth_bruteforce: names per burst (det_auth_bruteforce.c) */
	/* the enabled detectors with each hook, listed once at an_new (hooks run per event) */
	const struct an_detector *det_stmt[AN_MAX_DETECTORS + 1], *det_event[AN_MAX_DETECTORS + 1];
	/* issue #18: parked sessions by 4-tuple (state.c) */
	struct an_parked **park_tab;
	size_t park_mask;
	struct an_parked *park_head, *park_tail; /* LRU, most recent first */
	int n_parked;
	uint64_t ps_bytes; /* prepared statement text held by open sessions */
	ev_time last_checkpoint;
	int save_state; /* an_state_open was called: state goes to the database */
	uint32_t det_events; /* the event types any of det_event wants (AN_EV_BIT) */
	struct pool_state *pool; /* issue #21: the join of pooler legs (pooler.c), NULL without poolers */
};

/* Detector table, shaped like the decoder table. Every entry is optional. */
struct an_detector {
	const char *name;
	int kind;
	void (*on_statement)(struct an *an, const struct an_stmt *st);
	void (*on_login)(struct an *an, struct an_session *s, int ok, const char *account, const char *code,
			 ev_time ts);
	void (*on_event)(struct an *an, struct an_session *s, const struct ev *ev);
	uint32_t events; /* the event types on_event wants, AN_EV_BIT(EV_...) ORed; 0 = all */
	void (*on_session_end)(struct an *an, struct an_session *s, ev_time ts);
	void (*on_tick)(struct an *an, ev_time now);
	void (*on_free)(struct an *an);
};
extern const struct an_detector *const an_detectors[];
#define AN_EV_BIT(t) (1u << (t))

/* Raise a finding for the statement being completed (stored after the statement). */
void an_stmt_finding(struct an *an, const struct an_stmt *st, int kind, enum an_severity sev,
		     const char *summary, void *cjson_evidence);
/* Is this finding a repeat of one raised within repeat_interval_s (same kind, actor,
 * object)? 1: *id and *count are the first row's id and the new count, *sev the higher
 * severity. 0: a new row; *id (the new row's id) is remembered. (repeat.c) */
int an_repeat_of(struct an *an, int kind, const struct an_session *s, const struct an_stmt *st, ev_time ts,
		 enum an_severity *sev, int64_t *id, int64_t *count);
void an_repeat_free(struct an *an);
/* Raise a finding not tied to a statement (login, anomaly, tick). s may be NULL. */
void an_session_finding(struct an *an, struct an_session *s, int kind, enum an_severity sev, ev_time ts,
			const char *summary, void *cjson_evidence);
/* The statement's text as stored (literals masked per keep_literals and secrets); NULL
 * when the text is unknown. Valid until the statement is completed. */
const char *an_stmt_masked(const struct an_stmt *st);
/* Evidence object prefilled with the statement (masked) and its fingerprint. */
void *an_evidence_stmt(const struct an_stmt *st, const char *signal);

/* Did the statement return rows (a read) rather than change them? */
int an_stmt_is_read(const struct an_stmt *st);
/* Is the session an administrator on an admin host (admin_users / admin_hosts)? */
int an_is_admin(const struct an *an, const struct an_session *s);
/* snprintf for summaries and capped copies, where cutting is intended. */
void an_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Render up to n bytes of s into a one-line excerpt for summaries. */
void an_excerpt(char *dst, size_t cap, const char *s, size_t n);

int an_is_service_account(const struct an_config *c, const char *user);
int an_in_list(const struct an_strlist *l, const char *v);
int an_ip_in_cidrs(const struct an_strlist *cidrs, const char *ip);
/* A keyed window slot for key (created or LRU-evicted when absent). */
struct an_keyed *an_keyed_get(struct an_keyed **tab, int *n, int *cap, int kind, const char *key, ev_time now);

/* Sessions (an.c) and their parked/saved state (state.c). */
void an_put_session(struct an *an, struct an_session *s, const struct an_flow_end *end);
void an_ps_free(struct an *an, struct an_session *s);
void an_ps_put(struct an *an, struct an_session *s, const char *name, size_t nlen, const char *text,
	       size_t tlen, int trunc);
/* Park s (its row stays open) and free it; 0, or -1 when it could not be parked (ended). */
int an_park(struct an *an, struct an_session *s);
/* A parked/saved session for this flow, taken out of the table into s (same id); 1 when
 * resumed, 0 when none (a SYN-opened flow ends a parked one on its 4-tuple). */
int an_unpark(struct an *an, struct an_session *s, const struct an_flow *flow);
/* Save every open session's changed state; at_end: all of them, then end parked rows. */
void an_checkpoint(struct an *an, int at_end);
void an_checkpoint_one(struct an *an, struct an_session *s);
void an_state_forget(struct an *an, const struct an_session *s); /* the connection ended */
void an_park_free(struct an *an);

/* Records to every sink (an_records.c). */
void an_put_all(struct an *an, const struct rec *r);

/* Pooler legs (issue #21, pooler.c). Every call is cheap for a session of no pooler. */
void pool_open(struct an *an, struct an_session *s);
/* s's server is a pooler (pgbouncer's admin console answered on it): added to the poolers
 * (transaction pooling) unless configured, and open sessions are given their legs. */
void pool_learn(struct an *an, struct an_session *s);
/* The session list, for pool_learn (an.c). */
struct an_session *an_sessions(struct an *an);
/* A query on a leg: the client leg's is kept for matching, the server leg's matched. */
void pool_query(struct an *an, struct an_session *s, const struct ev_query *q, struct strv sql, ev_time ts,
		struct an_pj_ref *ref);
/* The client-leg statement completed: the pooler no longer forwards it. */
void pool_client_done(struct an *an, struct an_pj_ref *ref, const char *end_user, const char *source);
/* A server-leg statement's end user (st->end_user/source, into ubuf/sbuf): the client
 * leg's when joined, else only markers set in the same transaction. */
void pool_attribute(struct an *an, struct an_session *s, const struct an_pj_ref *ref, struct an_stmt *st,
		    char *ubuf, char *sbuf);
/* Was this server-leg statement joined to its client-leg statement? */
int pool_joined(const struct an *an, const struct an_pj_ref *ref);
/* Fill rs's join columns; 1 when rs was kept to be put later (its client not known yet). */
int pool_put(struct an *an, struct an_session *s, const struct an_pj_ref *ref, struct rec_statement *rs);
void pool_ready(struct an *an, struct an_session *s, char txn);
void pool_session_marker(struct an_session *s);
void pool_close(struct an *an, struct an_session *s);
void pool_free(struct an *an);

/* ---- The core's own files (an*.c): not for detectors ---- */

/* A query waiting for its result(s): one per message, split into parts (statements). */
struct an_pending {
	uint64_t id;
	int kind;
	ev_time ts;
	char *sql; /* copy of the statement text (capped), NULL when not known */
	size_t sql_len;
	int truncated;
	uint32_t *part_off, *part_len;
	uint8_t *part_mode; /* per part: lexer mode (SN_M_*) | AN_PART_ALT | AN_PART_CUT */
	int alt_flagged;    /* the message's lexer_differential finding was raised */
	int n_parts, next;
	int got_result;
	char first_verb[24];
	struct attr_val *params;
	int n_params;
	char *param_buf;
	char *msg_user; /* a split message's end user (AN_STR_MAX bytes in the block), else NULL */
	uint8_t msg_src; /* enum an_src of msg_user; 0: not decided yet */
	struct sn_tok *toks; /* a single-statement simple query's tokens, lexed once */
	int n_toks;
	void *block;	     /* one allocation holds sql, parts, tokens and parameters */
	size_t block_cap;
	int data_move, data_move_to_client, data_move_part;
	char data_move_what[AN_STR_MAX];
	size_t bytes; /* charged against the session's pending budget */
	struct an_pj_ref pj; /* issue #21: its match across a pooler's legs */
};
#define AN_PART_ALT 0x10 /* part_mode: from the other reading of a setting not known */
#define AN_PART_CUT 0x20 /* part_mode: text cut at the budget */

/* snprintf(dst, cap, "%s", src) without printf's cost, for the per-statement path. */
static inline void an_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}
/* A wire string into a capped C string (attr_clean: control bytes replaced). */
void an_scopy(char *dst, size_t cap, struct strv v);
static inline const char *an_nz(const char *s)
{
	return s && s[0] ? s : NULL;
}
/* Entry i of the session's pending ring. */
static inline struct an_pending *an_pend_at(struct an_session *s, int i)
{
	int k = s->pend_head + i; /* both below pend_cap: no division on every lookup */
	return &s->pend[k < s->pend_cap ? k : k - s->pend_cap];
}

/* an_records.c */
void an_put_finding(struct an *an, struct an_session *s, int64_t stmt_id, ev_time ts, int kind,
		    enum an_severity sev, const char *summary, const char *evidence, const struct an_stmt *st);
/* an_markers.c */
struct attr_op;
int an_app_user(struct an *an, const char *app, char *out, size_t cap);
void an_marker_set(struct an_marker *m, enum an_src src, const char *v);
void an_apply_ops(struct an *an, struct an_session *s, const struct attr_op *ops, int n, int failed);
void an_rollback_seen(struct an_session *s, const struct sn_tok *t, int n, const char *b);
/* st's end user when the statement's text did not name one: the message's, else the markers */
void an_stmt_end_user(struct an *an, struct an_session *s, struct an_pending *p, struct an_stmt *st, int nops);
/* an_ncache.c: part idx of p lexed, normalised (info, an->norm) and maybe masked; its
 * tokens in *toks (valid until the statement is completed). Returns the token count. */
int an_derive(struct an *an, struct an_session *s, const struct an_pending *p, int idx, struct sn_info *info,
	      const struct sn_tok **toks, struct an_masked *masked);
void an_ncache_clear(struct an_ncache *c);
/* an_inner.c: what a PREPARE / EXECUTE / DO statement runs, judged by the verb rules */
void an_in_statement(struct an *an, struct an_session *s, const struct an_stmt *st);
/* an_ps.c */
const struct an_ps *an_ps_find(struct an_session *s, struct strv name);
/* an_complete.c: complete part idx of p with result r (NULL: outcome unknown) */
void an_complete_part(struct an *an, struct an_session *s, struct an_pending *p, int idx, const struct ev *r);
/* an_split.c */
int an_split_reading(struct an *an, struct an_session *s, const char *sql, size_t len, int *single, int *ntok);
/* an_pending.c */
void an_on_query(struct an *an, struct an_session *s, const struct ev *e);
void an_on_result(struct an *an, struct an_session *s, const struct ev *e);
void an_on_ready(struct an *an, struct an_session *s, const struct ev *e);
void an_pend_spare_free(struct an_session *s);
void an_pend_finish_all(struct an *an, struct an_session *s);

/* The detectors. */
extern const struct an_detector det_sql_injection, det_error_burst, det_auth_bruteforce, det_privilege_change,
	det_destructive_statement, det_bulk_read, det_data_export, det_cleartext_password,
	det_sensitive_access, det_protocol_anomaly;
/* The learned baseline's detectors (det_baseline.c). */
extern const struct an_detector det_new_query_shape, det_new_client, det_new_application, det_off_hours;

#endif
