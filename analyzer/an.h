/* The analyzer: session table, end-user attribution, SQL normalisation and detectors.
 * Capture opens a session per decoded flow, feeds it the decoder's events, and closes it;
 * the analyzer turns them into session/statement/finding records for the sinks. */
#ifndef DBTAP_AN_H
#define DBTAP_AN_H

#include <stdint.h>

#include "ev.h"
#include "sink.h"

enum an_audit {
	AN_AUDIT_ALL,	   /* store every statement */
	AN_AUDIT_FINDINGS, /* store only statements that back a finding */
};

enum an_severity { AN_SEV_INFO, AN_SEV_LOW, AN_SEV_MEDIUM, AN_SEV_HIGH, AN_SEV_CRITICAL };

#define AN_MAX_LIST 32

/* Finding kinds (DESIGN.md §3); the index into an_config.severity. */
enum an_kind {
	AN_K_SQL_INJECTION,
	AN_K_ERROR_BURST,
	AN_K_AUTH_BRUTEFORCE,
	AN_K_PRIVILEGE_CHANGE,
	AN_K_DESTRUCTIVE_STATEMENT,
	AN_K_BULK_READ,
	AN_K_DATA_EXPORT,
	AN_K_NEW_QUERY_SHAPE,
	AN_K_NEW_CLIENT,
	AN_K_NEW_APPLICATION,
	AN_K_OFF_HOURS,
	AN_K_CLEARTEXT_PASSWORD,
	AN_K_SENSITIVE_ACCESS,
	AN_K_PROTOCOL_ANOMALY,
	AN_K_BASELINE_FULL,
	AN_K_COUNT
};

/* "sql_injection", ...; NULL when out of range. */
const char *an_kind_name(int kind);
const char *an_severity_name(enum an_severity sev);

enum an_admin_policy {
	AN_ADMIN_REPORT,    /* admins are reported like everyone else */
	AN_ADMIN_DOWNGRADE, /* admin from an admin host: severity info */
	AN_ADMIN_ALLOW,	    /* admin from an admin host: no finding */
};

/* A list of strings owned by the config (copied at load). */
struct an_strlist {
	char *v[AN_MAX_LIST];
	int n;
};

/* A configured sensitive object: table (optionally schema-qualified) and columns. */
#define AN_MAX_SENSITIVE 64
struct an_sensitive {
	char *table;		  /* lower-case, "schema.table" or "table" */
	struct an_strlist columns; /* empty: the whole table */
	struct an_strlist allow;   /* db users, roles or end users allowed */
};

/* The learned baseline (issue #7), config key "baseline". */
enum { BL_FULL_EVICT, BL_FULL_STOP };
struct an_baseline_cfg {
	int64_t learning_period_s; /* automatic learning of a principal without baseline (packet time) */
	int prefix_v4, prefix_v6;  /* new_client: subnet prefix lengths */
	char time_zone[64];	   /* "UTC", "+02:00" / "-05:30", or a TZ database name */
	int tz_fixed;		   /* 1: fixed offset tz_offset_min (UTC is +00:00) */
	int tz_offset_min;
	int business_start_min, business_end_min; /* minutes of day; end exclusive; may wrap */
	int require_ack;	   /* alerted items stay pending until `dbtap baseline --ack` */
	int max_entries;	   /* in-memory entries (principals, shapes, clients, ...) */
	int when_full;		   /* BL_FULL_EVICT: least recently seen items go; BL_FULL_STOP: learning stops */
	int flush_interval_s;	   /* packet time between writes of the changed rows */
	int end_user_tables;	   /* first-access-to-a-table for end users */
	int end_user_peers;	   /* ... only while fewer end users than this touched the table */
};

/* A configured connection pooler (issue #21, analyzer/pooler.c): clients connect to
 * address:listen_port (the client leg); it connects to the database from source (default
 * address: the server leg). Addresses canonical (inet_ntop). */
#define AN_MAX_POOLERS 16
struct an_pooler_cfg {
	char address[48], source[48];
	int listen_port;
	int session_mode; /* pool_mode "session": a server connection serves one client for life */
	int window_ms;	  /* a forwarded statement leaves the pooler within this time */
};

struct an_config {
	enum an_audit audit;
	int keep_literals;
	struct an_strlist service_accounts;
	int learn; /* --learn */

	/* attribution (DESIGN.md §4) */
	struct an_strlist comment_keys;	    /* sqlcommenter keys naming the end user */
	struct an_strlist pg_settings;	    /* set_config / SET names carrying the end user */
	struct an_strlist mysql_vars;	    /* SET @var names (without @) */
	struct an_strlist app_name_patterns; /* POSIX ERE with one capture group */

	struct an_strlist admin_hosts; /* CIDRs from which DBA actions are expected */

	/* thresholds */
	int bruteforce_failures;	 /* failed logins ... */
	int bruteforce_window_s;	 /* ... within this window */
	int error_burst_errors;
	int error_burst_window_s;
	int64_t bulk_read_rows;
	int64_t bulk_read_bytes;
	enum an_severity severity[32]; /* per finding kind, indexed by enum an_kind */

	int max_sessions;      /* session table cap */
	int idle_timeout_s;    /* packet time */
	int max_pending;       /* pending statements per session */

	/* added with the analyzer proper (issue #6) */
	struct an_strlist pg_json_settings; /* "setting:key": JSON claims holding the end user */
	struct an_strlist connect_attrs;    /* MySQL connect attributes naming the end user */
	struct an_strlist admin_users;	    /* DBAs (db_user or role) for admin_policy */
	enum an_admin_policy admin_policy;
	int detector_off[AN_K_COUNT];	    /* 1: detector disabled */
	int anomaly_per_session;	    /* protocol_anomaly findings per session */
	int max_sql_bytes;		    /* statement text kept per statement */
	/* issue #18: idle sessions parked (not ended) and saved across restarts */
	int max_parked, max_parked_mb;	    /* parked session records: count and MiB */
	int checkpoint_interval_s;	    /* packet time between saves of session state */
	int state_max_age_s;		    /* saved/parked state older than this is not resumed */
	int max_pending_bytes;		    /* statement text pending per session */
	struct an_sensitive sensitive[AN_MAX_SENSITIVE];
	int n_sensitive;
	struct an_baseline_cfg baseline; /* issue #7: the "baseline" key (analyzer/baseline.c) */
	/* issue #19: a repeat of (kind, actor, object) within this many seconds of packet time
	 * updates the first row's count and last_seen (0: every finding is a row) */
	int repeat_interval_s;
	int anomaly_per_client; /* protocol_anomaly findings per client address per repeat interval */
	/* issue #21: connection poolers whose client and server legs are joined */
	struct an_pooler_cfg poolers[AN_MAX_POOLERS];
	int n_poolers;
	int max_pooler_pending; /* client-leg statements waiting to be matched (limits) */
};

/* Defaults as documented in contrib/dbtap.example.json. */
void an_config_defaults(struct an_config *c);
void an_config_free(struct an_config *c);

/* Apply one top-level config key (a cJSON item, passed as void * so this header needs
 * no cJSON). Returns 0 when applied, 1 when the key is not the analyzer's, -1 on a wrong
 * type or value with a one-line message naming the JSON path in err. */
int an_config_set(struct an_config *c, const char *key, const void *cjson_item, char *err,
		  unsigned long errlen);

/* The analyzer's configuration keys (analyzer/config.c, analyzer/baseline.c) as cfgkey.h
 * tables whose offsets point into c; fills out[AN_CFG_TABLES], returns how many. */
#define AN_CFG_TABLES 2
struct ck_table;
int an_config_tables(struct an_config *c, struct ck_table *out);

/* What capture knows about a flow when it hands it over. */
struct an_flow {
	const char *protocol; /* decoder name */
	enum ev_dialect dialect;
	const char *client_ip, *server_ip;
	int client_port, server_port;
	ev_time ts;
	int midstream;
};

struct an_flow_end {
	ev_time ts;
	const char *reason; /* 'close'|'reset'|'timeout'|'eof' */
	uint64_t bytes_to_server, bytes_to_client;
	uint64_t gaps, lost_bytes;
};

/* Counters the analyzer reports into runs.drops. */
struct an_stats {
	uint64_t sessions, statements, findings;
	uint64_t sessions_evicted;   /* table full */
	uint64_t pending_dropped;    /* statements dropped: pending queue full */
	uint64_t sink_errors;
	uint64_t statements_skipped; /* server skipped them after an error: not stored */
	uint64_t statements_stored;
	uint64_t sql_truncated;	     /* statements cut at a cap */
	uint64_t events_after_evict; /* events for evicted sessions, ignored */
	uint64_t baseline_dropped;   /* baseline items not kept: max_entries reached */
	uint64_t baseline_evicted;   /* least recently seen baseline items evicted for new ones */
	uint64_t baseline_errors;    /* baseline writes that failed (retried at the next flush) */
	uint64_t sessions_parked;    /* idle sessions parked instead of ended */
	uint64_t sessions_resumed;   /* parked sessions that spoke again (same row) */
	uint64_t sessions_restored;  /* sessions resumed from state saved by an earlier run */
	uint64_t parked_evicted;     /* parked records ended for room (count or bytes cap) */
	uint64_t prepared_dropped;   /* prepared statement texts not kept: caps */
	uint64_t state_rejected;     /* saved state rows not loaded (malformed, too old) */
	uint64_t parked_bytes;	     /* bytes held by parked records now */
	/* issue #21: server-leg statements of configured poolers */
	uint64_t pooler_joined;	     /* matched to the client-leg statement they forward */
	uint64_t pooler_own;	     /* sent by the pooler itself (reset, SET, check query) */
	uint64_t pooler_unmatched;   /* no client-leg statement matched: not joined */
	uint64_t pooler_ambiguous;   /* several clients could have sent it: not joined */
	uint64_t pooler_dropped;     /* client-leg statements not kept for matching: cap */
	uint64_t sessions_open;	     /* gauge: in the session table now */
	uint64_t parked_now;	     /* gauge: parked records now */
};

struct an;
struct an_session;

/* sinks: array of n sinks (the first is the database); not owned. ids: from sink_sqlite_open. */
struct an *an_new(const struct an_config *cfg, struct sink **sinks, int n_sinks,
		  const struct sink_ids *ids, int64_t run_id);
void an_free(struct an *an);

struct an_session *an_open(struct an *an, const struct an_flow *flow);
void an_feed(struct an *an, struct an_session *s, const struct ev *ev);
void an_close(struct an *an, struct an_session *s, const struct an_flow_end *end);

/* Periodic work on packet time (windows, flushes). */
void an_tick(struct an *an, ev_time now);
void an_get_stats(const struct an *an, struct an_stats *st);

/* Load the session state saved by earlier runs (table session_state of the findings
 * database at db_path, issue #18): a flow picked up mid-stream on a saved 4-tuple resumes
 * that session. Rows that do not validate, or are older than limits.state_max_age_s, are
 * skipped with one warning line in err (return 1); 0 when all loaded; -1 when the table
 * cannot be read (a clean start, message in err). */
int an_state_open(struct an *an, const char *db_path, char *err, unsigned long errlen);

/* Load the learned baseline from the findings database at db_path and keep it there: changed
 * rows go to the sinks (REC_BASELINE, stored by the SQLite sink's writer) every
 * baseline.flush_interval_s of packet time and at an_free, so db_path must be the SQLite
 * sink's file. Call once after an_new; without it the baseline lives in memory for the run.
 * 0, or -errno with a one-line message in err. */
int an_baseline_open(struct an *an, const char *db_path, char *err, unsigned long errlen);

#endif
