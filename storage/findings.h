/* Finding groups and their triage: `dbtap findings`, and what the report needs of it.
 * A group is every finding with the same kind, principal (end user, else db_user) and
 * object (statement shape, else client address): five "DROP TABLE t by postgres" are one
 * group. Triage states are kept per group in the findings database (table triage, with
 * its history in triage_log), so a known item stops repeating every night until it gets
 * worse. */
#ifndef DBTAP_FINDINGS_H
#define DBTAP_FINDINGS_H

#include <sqlite3.h>

/* The group of a finding as SQL over a findings row (columns kind, end_user, db_user,
 * fingerprint, client_ip): its 12-hex-digit id, principal and object. */
#define FG_PRINCIPAL "coalesce(end_user, db_user, '?')"
#define FG_OBJECT "coalesce(fingerprint, client_ip, '')"
#define FG_ID "dbtap_gid(kind, " FG_PRINCIPAL ", " FG_OBJECT ")"

/* Severity as a rank for SQL comparisons: critical 5 .. info 1. */
#define FG_SEVRANK(col)                                                                        \
	"(CASE " col " WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3"         \
	" WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END)"

/* The groups of a findings table as one SELECT (sqlite3_mprintf'ed, caller frees): id,
 * state (effective: a triaged group is open again when it got worse than when it was
 * acknowledged or marked a false positive, or came back after being resolved), reopened,
 * severity (worst), kind, principal, object, count, clients, first, last, last_id,
 * summary and sql (of the worst, latest finding), triage_state/by/at/note. schema: ""
 * or "src." (an attached database); has_*: the database's findings have count /
 * last_seen columns, a triage table exists; where: a condition on findings rows. */
char *findings_group_sql(const char *schema, int has_count, int has_last, int has_triage,
			 const char *where);

/* Register dbtap_gid() on a connection. 0 or an SQLite error code. */
int findings_register_sql(sqlite3 *db);

/* Create the triage tables (and report_runs) when missing. 0, or -1 with err. */
int findings_schema(sqlite3 *db, char *err, size_t errlen);

/* `dbtap findings ...`; argv[0] is "findings". Returns the exit status (0, 1, 2). */
int findings_main(int argc, char **argv);

#endif
