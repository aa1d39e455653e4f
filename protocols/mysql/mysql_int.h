/* MySQL / MariaDB decoder internals shared by mysql.c (phases, commands, responses),
 * mysql_frame.c (framing, resynchronisation, compression) and mysql_bin.c (binary-protocol
 * values). All tunables of the decoder live here, each with the reason for its value. */
#ifndef DBTAP_MYSQL_INT_H
#define DBTAP_MYSQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>
#include <zstd.h>

#include "ev.h"
#include "proto.h"
#include "rd.h"

#define TO_SERVER PROTO_TO_SERVER
#define TO_CLIENT PROTO_TO_CLIENT

/* A packet (header included) up to this size is decoded whole; a larger one is decoded
 * from its first bytes and the rest skipped, so capture never holds more than this. */
#define MY_HOLD_MAX (256u * 1024u)
/* Head kept of an oversized client packet (COM_QUERY text is truncated here). */
#define MY_HEAD_TO_SERVER (MY_HOLD_MAX - 4u)
/* Head kept of an oversized server packet: only the first bytes of a row matter. */
#define MY_HEAD_TO_CLIENT 1024u
/* A logical payload (0xffffff continuation chain) longer than max_allowed_packet's
 * ceiling (1 GiB) is not MySQL. */
#define MY_LOGICAL_MAX (1ull << 30)
/* Decompressed bytes one compressed frame may yield: its declared length, and never
 * more than the 3-byte field allows. */
#define MY_DECOMP_MAX 0xffffffu
/* Commands sent but not yet answered (clients do not pipeline much; MariaDB connectors
 * pipeline PREPARE+EXECUTE). */
#define MY_PEND_MAX 16
/* Prepared statements remembered per session, and their SQL text cap and total. */
#define MY_STMT_MAX 128
#define MY_STMT_SQL_CAP (16u * 1024u)
#define MY_STMT_SQL_TOTAL (512u * 1024u)
/* Parameters rendered per execute, and the text arena they are rendered into. */
#define MY_PARAM_MAX 1024
#define MY_ARENA_CAP (64u * 1024u)
/* Parameter counts tried when an execute names a statement prepared before pickup. */
#define MY_INFER_MAX 256
/* Bytes of a binary value rendered as hex before it is cut. */
#define MY_HEX_MAX 256u
/* Connect attributes kept for EV_STARTUP. */
#define MY_ATTR_MAX 64
/* Anomalies reported per session before the decoder gives up on the flow. */
#define MY_ANOMALY_MAX 32
/* Bytes scanned for a packet boundary when resynchronising, and the chain of plausible
 * packets that is proof enough of one (bounds the scan to SCAN x CHAIN steps). */
#define MY_SYNC_SCAN 65536u
#define MY_SYNC_CHAIN 64
/* Error message text kept (SQLSTATE prefix included). */
#define MY_ERRMSG_CAP 1024u

/* Capability flags (low 32 bits: MySQL; high 32: MariaDB extended capabilities). */
#define MY_CLIENT_MYSQL 0x00000001ull
#define MY_CLIENT_CONNECT_WITH_DB 0x00000008ull
#define MY_CLIENT_COMPRESS 0x00000020ull
#define MY_CLIENT_PROTOCOL_41 0x00000200ull
#define MY_CLIENT_SSL 0x00000800ull
#define MY_CLIENT_TRANSACTIONS 0x00002000ull
#define MY_CLIENT_SECURE_CONNECTION 0x00008000ull
#define MY_CLIENT_MULTI_STATEMENTS 0x00010000ull
#define MY_CLIENT_PLUGIN_AUTH 0x00080000ull
#define MY_CLIENT_CONNECT_ATTRS 0x00100000ull
#define MY_CLIENT_PLUGIN_AUTH_LENENC 0x00200000ull
#define MY_CLIENT_SESSION_TRACK 0x00800000ull
#define MY_CLIENT_DEPRECATE_EOF 0x01000000ull
#define MY_CLIENT_ZSTD 0x04000000ull
#define MY_CLIENT_QUERY_ATTRIBUTES 0x08000000ull
#define MY_MARIADB_CACHE_METADATA (1ull << 36)

/* Server status flags. */
#define MY_STATUS_IN_TRANS 0x0001u
#define MY_STATUS_MORE_RESULTS 0x0008u
#define MY_STATUS_CURSOR_EXISTS 0x0040u
#define MY_STATUS_LAST_ROW_SENT 0x0080u

/* Column / parameter types (enum_field_types). */
enum my_type {
	MY_T_DECIMAL = 0,
	MY_T_TINY = 1,
	MY_T_SHORT = 2,
	MY_T_LONG = 3,
	MY_T_FLOAT = 4,
	MY_T_DOUBLE = 5,
	MY_T_NULL = 6,
	MY_T_TIMESTAMP = 7,
	MY_T_LONGLONG = 8,
	MY_T_INT24 = 9,
	MY_T_DATE = 10,
	MY_T_TIME = 11,
	MY_T_DATETIME = 12,
	MY_T_YEAR = 13,
	MY_T_NEWDATE = 14,
	MY_T_VARCHAR = 15,
	MY_T_BIT = 16,
	MY_T_TIMESTAMP2 = 17,
	MY_T_DATETIME2 = 18,
	MY_T_TIME2 = 19,
	MY_T_VECTOR = 242,
	MY_T_JSON = 245,
	MY_T_NEWDECIMAL = 246,
	MY_T_ENUM = 247,
	MY_T_SET = 248,
	MY_T_TINY_BLOB = 249,
	MY_T_MEDIUM_BLOB = 250,
	MY_T_LONG_BLOB = 251,
	MY_T_BLOB = 252,
	MY_T_VAR_STRING = 253,
	MY_T_STRING = 254,
	MY_T_GEOMETRY = 255,
};

/* Text arena for rendered values; reset per event. */
struct my_arena {
	char *p;
	size_t n, cap;
};

/* Decode one binary-protocol value of `type` from r and render it as text into *out
 * (strings are views into r's buffer, numbers are written into a). Returns 0, or -1
 * when the type is unknown (its length cannot be known: the caller stops there) or the
 * value runs past the buffer. */
int my_bin_value(struct rd *r, uint8_t type, int is_unsigned, struct my_arena *a,
		 struct ev_bind *out);

/* ---------- decoder state (mysql.c, mysql_frame.c) ---------- */

enum my_phase {
	PH_GREETING, /* waiting for the server's Initial Handshake */
	PH_LOGIN,    /* waiting for the client's HandshakeResponse */
	PH_AUTH,     /* auth exchange until OK/ERR (login or COM_CHANGE_USER) */
	PH_CMD,	     /* command phase */
};

/* What kind of reply a command expects. */
enum my_resp {
	R_OKERR,     /* OK / ERR (EOF for a few old commands) */
	R_RESULT,    /* OK / ERR / LOCAL INFILE / result sets, possibly several */
	R_PREPARE,   /* PREPARE_OK + parameter and column definitions */
	R_FIELDLIST, /* column definitions until EOF */
	R_STAT,	     /* one string packet */
	R_FETCH,     /* cursor rows until EOF */
};

enum my_rstate {
	RS_FIRST,
	RS_COLDEFS,
	RS_COLEOF,
	RS_ROWS,
	RS_PPARAMS,
	RS_PEOF,
	RS_PCOLS,
	RS_PCEOF,
};

struct my_pend {
	uint8_t cmd, resp, rstate, has_q;
	uint64_t qid;
	uint32_t stmt_id;
	uint64_t left;		  /* definitions still to come */
	uint16_t nparams, ncols;  /* from PREPARE_OK */
	int64_t rows;
	uint64_t bytes;
	char *text;		  /* PREPARE: SQL copy; INIT_DB: schema */
	size_t text_n;
	int text_trunc;
};

struct my_stmt {
	int used;
	uint32_t id;
	uint64_t age;
	char *sql;
	size_t sql_n;
	int sql_known, sql_trunc;
	uint16_t nparams, ncols;
	uint16_t *types; /* remembered for re-executes that omit them */
	int have_types;
	uint8_t *longd;	 /* params sent by COM_STMT_SEND_LONG_DATA: absent from the execute */
	/* A cursor opened by an execute: its result is owed until the last fetch. */
	int cur_open;
	uint64_t cur_qid;
	int64_t cur_rows;
	uint64_t cur_bytes;
};

struct my_framer {
	uint64_t skip_left; /* payload bytes of an oversized packet still to skip */
	uint64_t logical;   /* bytes of the current 0xffffff chain */
	int cont;	    /* a continuation packet of a handled payload comes next */
	int sync;	    /* looking for a packet boundary */
};

enum my_zkind { Z_STORED, Z_ZLIB, Z_ZSTD };

struct my_zdir {
	int sync, in_frame, kind;
	int broken; /* frame data was bad (reported): ignore the rest of the frame */
	int done;   /* the frame's stream ended: ignore trailing bytes */
	size_t cf_left;
	uint32_t cf_ulen;
	uint64_t cf_out;
	z_stream zs;
	int zs_ok;
	ZSTD_DStream *zd;
	uint8_t *ib; /* decompressed bytes not yet framed (MY_HOLD_MAX) */
	size_t ib_n;
	struct my_framer fr;
};

struct my_frame_up;
struct my {
	struct ev_sink out;
	const struct my_frame_up *up; /* what mysql_frame.c hands packets to */
	ev_time ts;
	int midstream, stopped, phase, change_user;
	int began; /* a mid-stream flow's first bytes were looked at (TLS already?) */
	uint64_t srv_caps, caps;
	int have_srv_caps, have_caps;
	int deprecate_eof; /* -1 not known yet */
	int qattr;	   /* query attributes in COM_QUERY / EXECUTE; -1 not known yet */
	int z_on, z_decided;
	int cleartext_next; /* the next client auth packet carries a clear password */
	int infile;	    /* client uploads LOCAL INFILE data until an empty packet */
	int any_cmd;
	uint16_t status;
	int have_status;
	uint64_t qid;
	struct my_pend pend[MY_PEND_MAX];
	size_t pend_head, pend_n;
	struct my_stmt stmts[MY_STMT_MAX];
	size_t stmt_sql_total;
	uint64_t stmt_age, stmt_evictions, stmt_inferred;
	/* an evicted statement keeps its first bytes (ring, made at the first eviction): an
	 * execute of it is still judged by verb (issue #20) */
	struct my_evicted {
		uint32_t id;
		uint8_t used, n;
		char head[48];
	} *evicted;
	size_t evicted_next;
	uint32_t last_prep_id;
	int have_last_prep;
	struct my_framer fr[2];
	struct my_zdir z[2];
	int anomalies;
	char srv_plugin[64], plugin_buf[64];
	char cu_user[256], cu_db[256];
	char errbuf[MY_ERRMSG_CAP], codebuf[16];
	struct my_arena arena;
	struct ev_bind *binds;
	struct ev_kv kv[MY_ATTR_MAX];
};

static inline uint32_t my_le24(const uint8_t *b)
{
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16);
}

/* mysql_frame.c: packet framing, resynchronisation, compression. The lower layer: it hands
 * what it frames upward only through m->up (set by my_open in mysql.c), so it calls
 * nothing above it by name. */
struct my_frame_up {
	/* one packet: its first n of full bytes; trunc: the rest is skipped */
	void (*packet)(struct my *m, int dir, const uint8_t *p, size_t n, size_t full,
		       uint8_t seq, int trunc);
	/* result rows at the start of b counted at once: the bytes they took (0: not rows) */
	size_t (*rows)(struct my *m, const uint8_t *b, size_t len);
	void (*cont)(struct my *m, int dir, uint64_t k); /* bytes of a 0xffffff continuation */
	void (*anomaly)(struct my *m, int dir, const char *what, int fatal);
};
size_t my_frame_run(struct my *m, int dir, struct my_framer *f, const uint8_t *b, size_t len,
		    int inner);
size_t my_z_run(struct my *m, int dir, const uint8_t *b, size_t len);
void my_z_start(struct my *m);
void my_z_reset_dir(struct my_zdir *z);
int my_chain_plausible(int dir, const uint8_t *b, size_t len);
int my_valid_cmd(uint8_t c);

/* 1 if my_bin_value can decode this type. */
int my_bin_known(uint8_t type);

/* v in decimal into buf (room for 20 digits; no NUL), returning the length: statement ids
 * and integer parameters are rendered on every execute, without printf. */
static inline size_t my_dec(char *buf, uint64_t v)
{
	char tmp[20];
	size_t k = 0, n = 0;
	do {
		tmp[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (k > 0)
		buf[n++] = tmp[--k];
	return n;
}

/* Render printf-style text into the arena; returns a view (empty when full). */
struct strv my_arena_printf(struct my_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));


/* An ERR packet: errno, and its text forms for events. */
struct my_err {
	uint16_t code;
	struct strv code_txt, msg;
};

/* Shared between the decoder's files (mysql.c, mysql_state.c, mysql_cmd.c, mysql_conn.c,
 * mysql_resp.c): my_-prefixed, internal to protocols/mysql/. */
/* mysql.c */
void my_emit(struct my *m, struct ev *e, int dir);
void my_anomaly(struct my *m, int dir, const char *what, int fatal);
void my_emit_ready(struct my *m);
void my_emit_auth(struct my *m, const char *method);
int my_parse_ok(const uint8_t *p, size_t n, uint64_t *affected, uint16_t *status);
void my_emit_cleartext(struct my *m);
int my_has_cap(const struct my *m, uint64_t c);
struct strv my_rd_cstr_rest(struct rd *r);
void my_set_status(struct my *m, uint16_t st);
void my_parse_err(struct my *m, const uint8_t *p, size_t n, struct my_err *e);
uint16_t my_term_status(const uint8_t *p, size_t n);
int my_arena_ready(struct my *m);
int my_plugin_is_clear(const char *p);
const char *my_plugin_name(struct my *m, struct strv v);
/* mysql_state.c */
void my_pend_pop(struct my *m);
struct my_stmt *my_stmt_add(struct my *m, uint32_t id);
struct my_pend *my_pend_push(struct my *m, uint8_t cmd, uint8_t resp);
void my_stmt_cursor_done(struct my *m, struct my_stmt *s, const struct my_err *err);
char *my_copy_text(const char *p, size_t n, size_t cap, size_t *out_n, int *trunc);
void my_stmt_clear(struct my *m);
struct my_stmt *my_stmt_find(struct my *m, uint32_t id);
struct my_pend *my_pend_at(struct my *m, size_t i);
void my_stmt_budget(struct my *m, const struct my_stmt *keep);
void my_pend_flush(struct my *m);
const struct my_evicted *my_evicted_find(const struct my *m, uint32_t id);
void my_stmt_drop(struct my *m, struct my_stmt *s);
void my_emit_result(struct my *m, uint64_t qid, enum ev_outcome o, int64_t rows,
			uint64_t bytes, const struct my_err *err, int more);
/* mysql_cmd.c */
void my_command(struct my *m, const uint8_t *p, size_t n, int trunc);
void my_copy_small(char *dst, size_t cap, struct strv v);
/* mysql_conn.c */
void my_login(struct my *m, const uint8_t *p, size_t n);
void my_auth_reply(struct my *m, const uint8_t *p, size_t n);
void my_greeting(struct my *m, const uint8_t *p, size_t n);
/* mysql_resp.c */
void my_response(struct my *m, const uint8_t *p, size_t n, size_t full, uint8_t seq);
int my_resp_result(struct my *m, struct my_pend *q, const uint8_t *p, size_t n, size_t full);

#endif
