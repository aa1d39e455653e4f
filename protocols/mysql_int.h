/* MySQL / MariaDB decoder internals shared by mysql.c (framing, compression, phases,
 * commands, responses) and mysql_bin.c (binary-protocol values). All tunables of the
 * decoder live here, each with the reason for its value. */
#ifndef DBTAP_MYSQL_INT_H
#define DBTAP_MYSQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "proto.h"
#include "rd.h"

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

/* Render printf-style text into the arena; returns a view (empty when full). */
struct strv my_arena_printf(struct my_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
