/* The findings database schema (DESIGN.md §3, documented in storage/SCHEMA.md) as SQL text,
 * shared by the SQLite sink (creates it) and the report (reads it). Columns may be added,
 * never renamed or removed; bump SINK_SCHEMA_VERSION and migrate in sqlite_sink_schema.c. */
#ifndef DBTAP_SQLITE_SCHEMA_H
#define DBTAP_SQLITE_SCHEMA_H

#define SQ_STR2(x) #x
#define SQ_STR(x) SQ_STR2(x)

/* The learned baseline, created (if missing) whenever `dbtap run` or `dbtap baseline` opens
 * a database, so older databases gain it too. Read by storage/baseline_store.c; a run's
 * changed rows are upserted by the sink's writer. */
#define SQ_BASELINE_SQL                                                                        \
	"CREATE TABLE IF NOT EXISTS baseline(scope TEXT NOT NULL, principal TEXT NOT NULL,"    \
	" application TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL, item TEXT NOT NULL,"       \
	" detail TEXT, first_seen TEXT, last_seen TEXT, count INTEGER, rows_min INTEGER,"      \
	" rows_max INTEGER, learning_until TEXT, pending INTEGER NOT NULL DEFAULT 0,"          \
	" PRIMARY KEY(scope, principal, application, kind, item)) WITHOUT ROWID;"             \
	"CREATE VIEW IF NOT EXISTS v_baseline_shapes AS SELECT principal AS db_user,"          \
	" application, item AS fingerprint, detail AS normalized, first_seen, last_seen,"      \
	" count, rows_min, rows_max, pending FROM baseline"                                    \
	" WHERE scope = 'db_user' AND kind = 'shape';"
#define SQ_BASELINE_UPSERT                                                                     \
	"INSERT OR REPLACE INTO baseline(scope, principal, application, kind, item, detail,"   \
	" first_seen, last_seen, count, rows_min, rows_max, learning_until, pending)"          \
	" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"
/* An evicted row; in a spill file it is kept as a row with pending -1, deleted at replay. */
#define SQ_BASELINE_DELETE                                                                     \
	"DELETE FROM baseline WHERE scope = ? AND principal = ? AND application = ? AND kind = ?" \
	" AND item = ?"
#define SQ_BASELINE_TOMBSTONE                                                                  \
	"INSERT OR REPLACE INTO baseline(scope, principal, application, kind, item, pending)"  \
	" VALUES(?,?,?,?,?,-1)"

/* Session state saved for a restart (issue #18; storage/SCHEMA.md), created if missing
 * like the baseline; sessions' resumed/restored columns are added to older databases. */
#define SQ_STATE_SQL                                                                           \
	"CREATE TABLE IF NOT EXISTS session_state(key TEXT PRIMARY KEY, session_id INTEGER"    \
	" NOT NULL, last_ts TEXT, saved_at TEXT, state TEXT NOT NULL) WITHOUT ROWID;"
#define SQ_STATE_UPSERT "INSERT OR REPLACE INTO session_state(key, session_id, last_ts, saved_at, state) VALUES(?,?,?,?,?)"
#define SQ_STATE_DELETE "DELETE FROM session_state WHERE key = ?"

/* The runs table, run on its own before SQ_SCHEMA_SQL (C99 compilers need each string
 * literal under 4095 characters, and that one is near it). */
#define SQ_RUNS_SQL                                                                            \
	"CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT," \
	" source TEXT, packets INTEGER, bytes INTEGER, kernel_drops INTEGER,"                  \
	" sensor_drops INTEGER, streams INTEGER, version TEXT, config TEXT, drops TEXT,"       \
	" sensor TEXT, sensor_started_at TEXT, sensor_stopped_at TEXT, status TEXT, error TEXT," \
	" stats_at TEXT, stats_interval_s INTEGER, stats TEXT, pid INTEGER, host TEXT);"

/* Times are ISO-8601 UTC text (sortable); no REFERENCES clauses on purpose: rows may be
 * dropped under overload and prune deletes statements that findings still name. */
#define SQ_SCHEMA_SQL                                                                          \
	"BEGIN;"                                                                               \
	"CREATE TABLE IF NOT EXISTS sessions(id INTEGER PRIMARY KEY, run_id INTEGER,"          \
	" protocol TEXT, client_ip TEXT, client_port INTEGER, server_ip TEXT,"                 \
	" server_port INTEGER, started_at TEXT, ended_at TEXT, db_user TEXT, database TEXT,"   \
	" application TEXT, client_info TEXT, server_version TEXT, tls INTEGER,"               \
	" auth_method TEXT, login TEXT, login_error TEXT, midstream INTEGER, end_reason TEXT," \
	" statements INTEGER, errors INTEGER, rows_returned INTEGER, bytes_to_server INTEGER," \
	" bytes_to_client INTEGER, gaps INTEGER, lost_bytes INTEGER,"                          \
	" resumed INTEGER NOT NULL DEFAULT 0, restored INTEGER NOT NULL DEFAULT 0,"           \
	" tls_decrypted, pooler_role TEXT, pooler TEXT);"                                      \
	"CREATE TABLE IF NOT EXISTS statements(id INTEGER PRIMARY KEY, session_id INTEGER,"    \
	" ts TEXT, end_user TEXT, end_user_source TEXT, verb TEXT, fingerprint TEXT, sql TEXT,"\
	" params TEXT, outcome TEXT, error_code TEXT, rows INTEGER, duration_us INTEGER,"     \
	" via_session_id INTEGER, pooler_join TEXT);"                                          \
	"CREATE TABLE IF NOT EXISTS findings(id INTEGER PRIMARY KEY, run_id INTEGER,"          \
	" session_id INTEGER, statement_id INTEGER, ts TEXT, kind TEXT, severity TEXT,"        \
	" protocol TEXT, client_ip TEXT, server_ip TEXT, db_user TEXT, database TEXT,"         \
	" application TEXT, end_user TEXT, end_user_source TEXT, fingerprint TEXT, sql TEXT,"  \
	" summary TEXT, evidence TEXT, count INTEGER NOT NULL DEFAULT 1, last_seen TEXT);"     \
	/* (continued in SQ_SCHEMA_SQL2: one string literal stays under 4095 bytes) */

/* The indexes and views, in the same transaction: run as one string after SQ_SCHEMA_SQL. */
#define SQ_SCHEMA_SQL2                                                                         \
	"CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);"                 \
	"CREATE INDEX IF NOT EXISTS sessions_db_user ON sessions(db_user, started_at);"        \
	"CREATE INDEX IF NOT EXISTS sessions_client ON sessions(client_ip, started_at);"       \
	"CREATE INDEX IF NOT EXISTS statements_ts ON statements(ts);"                          \
	"CREATE INDEX IF NOT EXISTS statements_session ON statements(session_id);"             \
	"CREATE INDEX IF NOT EXISTS statements_end_user ON statements(end_user, ts)"           \
	" WHERE end_user IS NOT NULL;"                                                         \
	"CREATE INDEX IF NOT EXISTS findings_ts ON findings(ts);"                              \
	"CREATE INDEX IF NOT EXISTS findings_kind ON findings(kind, ts);"                      \
	"CREATE INDEX IF NOT EXISTS findings_db_user ON findings(db_user, ts);"                \
	"CREATE INDEX IF NOT EXISTS findings_end_user ON findings(end_user, ts)"               \
	" WHERE end_user IS NOT NULL;"                                                         \
	/* views: statements with their session's context, and the report's questions */      \
	"CREATE VIEW IF NOT EXISTS v_statements AS SELECT st.id, st.ts, st.session_id,"        \
	" se.protocol, se.client_ip, se.server_ip, se.db_user, se.database, se.application,"   \
	" st.end_user, st.end_user_source, coalesce(st.end_user, se.db_user) AS principal,"    \
	" st.verb, st.fingerprint, st.sql, st.outcome, st.error_code, st.rows, st.duration_us" \
	" FROM statements st LEFT JOIN sessions se ON se.id = st.session_id;"                  \
	"CREATE VIEW IF NOT EXISTS v_failed_logins AS SELECT id AS session_id, started_at,"    \
	" protocol, client_ip, server_ip, server_port, db_user, database, application,"        \
	" auth_method, login_error FROM sessions WHERE login = 'failed';"                      \
	"CREATE VIEW IF NOT EXISTS v_findings_daily AS SELECT substr(ts, 1, 10) AS day, kind," \
	" severity, count(*) AS findings FROM findings GROUP BY day, kind, severity;"          \
	"CREATE VIEW IF NOT EXISTS v_activity_hourly AS SELECT substr(ts, 1, 13) AS hour,"     \
	" count(*) AS statements, sum(outcome = 'error') AS errors FROM statements"            \
	" GROUP BY hour;"                                                                      \
	"CREATE VIEW IF NOT EXISTS v_principals AS SELECT db_user, count(*) AS sessions,"      \
	" sum(statements) AS statements, sum(errors) AS errors,"                               \
	" sum(login = 'failed') AS failed_logins, min(started_at) AS first_seen,"              \
	" max(started_at) AS last_seen FROM sessions GROUP BY db_user;"                        \
	"CREATE VIEW IF NOT EXISTS v_end_users AS SELECT end_user, end_user_source,"           \
	" count(*) AS statements, min(ts) AS first_seen, max(ts) AS last_seen"                 \
	" FROM statements WHERE end_user IS NOT NULL GROUP BY end_user, end_user_source;"      \
	"CREATE VIEW IF NOT EXISTS v_new_shapes AS SELECT ts, db_user, application, end_user," \
	" fingerprint, sql, summary FROM findings WHERE kind = 'new_query_shape';"             \
	"CREATE VIEW IF NOT EXISTS v_blind_spots AS SELECT substr(started_at, 1, 10) AS day,"  \
	" count(*) AS sessions, sum(tls) AS tls, sum(midstream) AS midstream,"                 \
	" sum(gaps > 0) AS with_gaps, sum(lost_bytes) AS lost_bytes FROM sessions"             \
	" GROUP BY day;"                                                                       \
	"PRAGMA user_version = " SQ_STR(SINK_SCHEMA_VERSION) ";"                              \
	"COMMIT;"

#define SQ_UPSERT_RUN                                                                          \
	"INSERT INTO runs(id, started_at, ended_at, source, packets, bytes, kernel_drops,"     \
	" sensor_drops, streams, version, config, drops, sensor, sensor_started_at,"           \
	" sensor_stopped_at, status, error, stats_at, stats_interval_s, stats, pid, host)"    \
	" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"                                 \
	" ON CONFLICT(id) DO UPDATE SET started_at=excluded.started_at,"                       \
	" ended_at=excluded.ended_at, source=excluded.source, packets=excluded.packets,"       \
	" bytes=excluded.bytes, kernel_drops=excluded.kernel_drops,"                           \
	" sensor_drops=excluded.sensor_drops, streams=excluded.streams,"                       \
	" version=excluded.version, config=excluded.config, drops=excluded.drops,"             \
	" sensor=excluded.sensor, sensor_started_at=excluded.sensor_started_at,"               \
	" sensor_stopped_at=excluded.sensor_stopped_at, status=excluded.status,"               \
	" error=excluded.error, stats_at=excluded.stats_at,"                                   \
	" stats_interval_s=excluded.stats_interval_s, stats=excluded.stats, pid=excluded.pid," \
	" host=excluded.host"

#define SQ_UPSERT_SESSION                                                                      \
	"INSERT INTO sessions(id, run_id, protocol, client_ip, client_port, server_ip,"        \
	" server_port, started_at, ended_at, db_user, database, application, client_info,"     \
	" server_version, tls, auth_method, login, login_error, midstream, end_reason,"        \
	" statements, errors, rows_returned, bytes_to_server, bytes_to_client, gaps,"          \
	" lost_bytes, resumed, restored, tls_decrypted, pooler_role, pooler)"                 \
	" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"             \
	" ON CONFLICT(id) DO UPDATE SET run_id=excluded.run_id, protocol=excluded.protocol,"   \
	" client_ip=excluded.client_ip, client_port=excluded.client_port,"                     \
	" server_ip=excluded.server_ip, server_port=excluded.server_port,"                     \
	" started_at=excluded.started_at, ended_at=excluded.ended_at,"                         \
	" db_user=excluded.db_user, database=excluded.database,"                               \
	" application=excluded.application, client_info=excluded.client_info,"                 \
	" server_version=excluded.server_version, tls=excluded.tls,"                           \
	" auth_method=excluded.auth_method, login=excluded.login,"                             \
	" login_error=excluded.login_error, midstream=excluded.midstream,"                     \
	" end_reason=excluded.end_reason, statements=excluded.statements,"                     \
	" errors=excluded.errors, rows_returned=excluded.rows_returned,"                       \
	" bytes_to_server=excluded.bytes_to_server, bytes_to_client=excluded.bytes_to_client," \
	" gaps=excluded.gaps, lost_bytes=excluded.lost_bytes, resumed=excluded.resumed,"       \
	" restored=excluded.restored, tls_decrypted=excluded.tls_decrypted,"                  \
	" pooler_role=excluded.pooler_role, pooler=excluded.pooler"

#define SQ_INSERT_STATEMENT                                                                    \
	"INSERT INTO statements(id, session_id, ts, end_user, end_user_source, verb,"          \
	" fingerprint, sql, params, outcome, error_code, rows, duration_us, via_session_id,"  \
	" pooler_join) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

/* A repeat (issue #19) comes with the first row's id: count, last_seen, severity, summary
 * and evidence follow it; the first row's time, statement and context stay. */
#define SQ_INSERT_FINDING                                                                      \
	"INSERT INTO findings(id, run_id, session_id, statement_id, ts, kind, severity,"       \
	" protocol, client_ip, server_ip, db_user, database, application, end_user,"           \
	" end_user_source, fingerprint, sql, summary, evidence, count, last_seen)"             \
	" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"                                    \
	" ON CONFLICT(id) DO UPDATE SET count=excluded.count, last_seen=excluded.last_seen,"  \
	" severity=excluded.severity, summary=excluded.summary, evidence=excluded.evidence"

/* Columns added after version 1, each with the ALTER that adds it to an older database
 * (checked by name, so migrations of other versions can interleave). */
#define SQ_MIGRATIONS(X)                                                                       \
	X("findings", "count", "ALTER TABLE findings ADD COLUMN count INTEGER NOT NULL DEFAULT 1") \
	X("findings", "last_seen", "ALTER TABLE findings ADD COLUMN last_seen TEXT")                    \
	X("runs", "sensor", "ALTER TABLE runs ADD COLUMN sensor TEXT") /* 3: issue #24 */               \
	X("sessions", "resumed", "ALTER TABLE sessions ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0")  \
	X("sessions", "restored", "ALTER TABLE sessions ADD COLUMN restored INTEGER NOT NULL DEFAULT 0") \
	/* no type: 1, or why not decrypted as text; NULL not TLS (issue #26) */            \
	X("sessions", "tls_decrypted", "ALTER TABLE sessions ADD COLUMN tls_decrypted")        \
	X("sessions", "pooler_role", "ALTER TABLE sessions ADD COLUMN pooler_role TEXT") /* issue #21 */ \
	X("sessions", "pooler", "ALTER TABLE sessions ADD COLUMN pooler TEXT")                          \
	X("statements", "via_session_id", "ALTER TABLE statements ADD COLUMN via_session_id INTEGER")   \
	X("statements", "pooler_join", "ALTER TABLE statements ADD COLUMN pooler_join TEXT") \
	/* 4 (issue #22): the sensor's wall-clock life and health in its runs row */                   \
	X("runs", "sensor_started_at", "ALTER TABLE runs ADD COLUMN sensor_started_at TEXT")           \
	X("runs", "sensor_stopped_at", "ALTER TABLE runs ADD COLUMN sensor_stopped_at TEXT")           \
	X("runs", "status", "ALTER TABLE runs ADD COLUMN status TEXT")                                 \
	X("runs", "error", "ALTER TABLE runs ADD COLUMN error TEXT")                                   \
	X("runs", "stats_at", "ALTER TABLE runs ADD COLUMN stats_at TEXT")                             \
	X("runs", "stats_interval_s", "ALTER TABLE runs ADD COLUMN stats_interval_s INTEGER")          \
	X("runs", "stats", "ALTER TABLE runs ADD COLUMN stats TEXT")                                   \
	X("runs", "pid", "ALTER TABLE runs ADD COLUMN pid INTEGER")                                    \
	X("runs", "host", "ALTER TABLE runs ADD COLUMN host TEXT")

#endif
