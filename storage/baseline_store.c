/* The learned baseline's SQLite side: its own connection to the findings database (WAL,
 * busy_timeout, so it coexists with the sink's writer thread) to create and load the
 * `baseline` table and for the `dbtap baseline` command (list, forget, ack). A run's
 * changed rows are stored by the sink's writer (REC_BASELINE, sqlite_sink_bind.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "baseline_store.h"
#include "sink.h"
#include "sqlite_schema.h"

#define BL_BUSY_MS 10000 /* the sink's writer commits batches; wait for it rather than fail */

struct bstore {
	sqlite3 *db;
	char errmsg[256];
};

static int bstore_fail(struct bstore *b, const char *what)
{
	snprintf(b->errmsg, sizeof b->errmsg, "baseline: %s: %s", what, sqlite3_errmsg(b->db));
	return -EIO;
}

const char *bstore_errmsg(const struct bstore *b)
{
	return b ? b->errmsg : "baseline: no store";
}

struct bstore *bstore_open(const char *path, int create, char *err, size_t errlen)
{
	struct bstore *b = calloc(1, sizeof *b);
	char *msg = NULL;
	if (!b) {
		snprintf(err, errlen, "baseline: out of memory");
		return NULL;
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &b->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, b->db ? sqlite3_errmsg(b->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(b->db, BL_BUSY_MS);
	if (sqlite3_exec(b->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				"BEGIN;" SQ_BASELINE_SQL "COMMIT;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: baseline table: %s", path, msg ? msg : sqlite3_errmsg(b->db));
		sqlite3_free(msg);
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	return b;
fail:
	bstore_close(b);
	return NULL;
}

void bstore_close(struct bstore *b)
{
	if (!b)
		return;
	sqlite3_close(b->db);
	free(b);
}

/* "2026-11-27T09:15:02.123456Z" -> us; 0 for NULL or malformed text. */
static int64_t bstore_parse_time(const unsigned char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	long frac = 0;
	if (!s || sscanf((const char *)s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return 0;
	if (s[n] == '.') {
		int k = 0;
		for (n++; s[n] >= '0' && s[n] <= '9' && k < 6; n++, k++)
			frac = frac * 10 + (s[n] - '0');
		for (; k < 6; k++)
			frac *= 10;
	}
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
			 .tm_sec = sec };
	return (int64_t)timegm(&tm) * 1000000 + frac;
}

static const char *bstore_col_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	return t ? (const char *)t : "";
}

static int64_t bstore_col_int(sqlite3_stmt *q, int i, int64_t dflt)
{
	return sqlite3_column_type(q, i) == SQLITE_NULL ? dflt : sqlite3_column_int64(q, i);
}

#define BL_SELECT                                                                              \
	"SELECT scope, principal, application, kind, item, detail, first_seen, last_seen, count," \
	" rows_min, rows_max, learning_until, pending FROM baseline"

static void bstore_row_from(sqlite3_stmt *q, struct rec_baseline *r)
{
	r->scope = bstore_col_text(q, 0);
	r->principal = bstore_col_text(q, 1);
	r->application = bstore_col_text(q, 2);
	r->kind = bstore_col_text(q, 3);
	r->item = bstore_col_text(q, 4);
	r->detail = sqlite3_column_type(q, 5) == SQLITE_NULL ? NULL : bstore_col_text(q, 5);
	r->first_seen = bstore_parse_time(sqlite3_column_text(q, 6));
	r->last_seen = bstore_parse_time(sqlite3_column_text(q, 7));
	r->count = bstore_col_int(q, 8, 0);
	r->rows_min = bstore_col_int(q, 9, -1);
	r->rows_max = bstore_col_int(q, 10, -1);
	r->learning_until = bstore_parse_time(sqlite3_column_text(q, 11));
	r->pending = (int)bstore_col_int(q, 12, 0);
}

int bstore_load(struct bstore *b, int (*cb)(void *ctx, const struct rec_baseline *r), void *ctx)
{
	sqlite3_stmt *q;
	/* principal rows first: the others attach to them */
	if (sqlite3_prepare_v2(b->db, BL_SELECT " ORDER BY kind <> 'principal', scope, principal, application, kind, item",
			       -1, &q, NULL) != SQLITE_OK)
		return bstore_fail(b, "load");
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct rec_baseline r;
		bstore_row_from(q, &r);
		if (cb(ctx, &r) != 0)
			break;
	}
	int bad = rc != SQLITE_ROW && rc != SQLITE_DONE;
	sqlite3_finalize(q);
	return bad ? bstore_fail(b, "load") : 0;
}

static int bstore_exec_principal(struct bstore *b, const char *sql, const char *principal, int64_t *n)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(b->db, sql, -1, &q, NULL) != SQLITE_OK)
		return bstore_fail(b, "prepare");
	sqlite3_bind_text(q, 1, principal, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return bstore_fail(b, "update");
	if (n)
		*n = sqlite3_changes(b->db);
	return 0;
}

int bstore_forget(struct bstore *b, const char *principal, int64_t *n)
{
	return bstore_exec_principal(b, "DELETE FROM baseline WHERE principal = ?", principal, n);
}

int bstore_ack(struct bstore *b, const char *principal, int64_t *n)
{
	return bstore_exec_principal(b, "UPDATE baseline SET pending = 0 WHERE principal = ? AND pending <> 0", principal, n);
}

/* ---- dbtap baseline ---- */

static void bstore_usage(FILE *f)
{
	if (f != stdout) {
		fprintf(f, "dbtap baseline: say one of --list, --forget PRINCIPAL or --ack PRINCIPAL "
			   "(see: dbtap baseline --help)\n");
		return;
	}
	fprintf(f, "usage: dbtap baseline [-d DB] (--list [--json] [PRINCIPAL] | --forget PRINCIPAL | --ack PRINCIPAL)\n"
		   "Show or change the learned behaviour baseline.\n"
		   "  -d, --db=DB              findings database (default ./dbtap.db)\n"
		   "  -l, --list [PRINCIPAL]   list the rows (of one db_user or end user)\n"
		   "      --json               with --list: one JSON object per line\n"
		   "      --forget=PRINCIPAL   delete everything learned about PRINCIPAL\n"
		   "      --ack=PRINCIPAL      accept what was alerted for PRINCIPAL\n"
		   "  -h, --help               this help\n");
}

static void bstore_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static int bstore_list_rows(struct bstore *b, const char *principal, int json)
{
	sqlite3_stmt *q;
	const char *sql = principal ? BL_SELECT " WHERE principal = ? ORDER BY scope, principal, kind <> 'principal',"
					      " kind, application, item"
				    : BL_SELECT " ORDER BY scope, principal, kind <> 'principal', kind, application, item";
	if (sqlite3_prepare_v2(b->db, sql, -1, &q, NULL) != SQLITE_OK)
		return bstore_fail(b, "list");
	if (principal)
		sqlite3_bind_text(q, 1, principal, -1, SQLITE_STATIC);
	if (!json)
		printf("scope\tprincipal\tapplication\tkind\titem\tcount\tfirst_seen\tlast_seen\trows\tstatus\tdetail\n");
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct rec_baseline r;
		char fs[40] = "", ls[40] = "", lu[40] = "";
		bstore_row_from(q, &r);
		if (r.first_seen)
			sink_fmt_time(r.first_seen, fs, sizeof fs);
		if (r.last_seen)
			sink_fmt_time(r.last_seen, ls, sizeof ls);
		if (r.learning_until)
			sink_fmt_time(r.learning_until, lu, sizeof lu);
		const char *status = r.pending ? "pending" : "known";
		if (!strcmp(r.kind, "principal"))
			status = r.learning_until > r.last_seen ? "learning" : "learned";
		if (json) {
			printf("{\"scope\":");
			bstore_json_str(stdout, r.scope);
			printf(",\"principal\":");
			bstore_json_str(stdout, r.principal);
			printf(",\"application\":");
			bstore_json_str(stdout, r.application);
			printf(",\"kind\":");
			bstore_json_str(stdout, r.kind);
			printf(",\"item\":");
			bstore_json_str(stdout, r.item);
			printf(",\"count\":%lld,\"first_seen\":\"%s\",\"last_seen\":\"%s\"", (long long)r.count, fs, ls);
			if (r.rows_min >= 0)
				printf(",\"rows_min\":%lld,\"rows_max\":%lld", (long long)r.rows_min, (long long)r.rows_max);
			if (lu[0])
				printf(",\"learning_until\":\"%s\"", lu);
			printf(",\"status\":\"%s\"", status);
			if (r.detail) {
				printf(",\"detail\":");
				bstore_json_str(stdout, r.detail);
			}
			printf("}\n");
		} else {
			char rows[48] = "";
			if (r.rows_min >= 0)
				snprintf(rows, sizeof rows, "%lld-%lld", (long long)r.rows_min, (long long)r.rows_max);
			printf("%s\t%s\t%s\t%s\t%s\t%lld\t%s\t%s\t%s\t%s\t%s\n", r.scope, r.principal, r.application, r.kind,
			       r.item, (long long)r.count, fs, ls, rows, status, r.detail ? r.detail : "");
		}
	}
	int bad = rc != SQLITE_DONE;
	sqlite3_finalize(q);
	return bad ? bstore_fail(b, "list") : 0;
}

int baseline_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },  { "json", no_argument, NULL, 'j' },
		{ "forget", required_argument, NULL, 'f' }, { "ack", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },  { "db", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *db = "./dbtap.db", *who = NULL;
	int mode = 0, json = 0, ch;
	optind = 1;
	opterr = 0; /* our own one-line messages */
	while ((ch = getopt_long(argc, argv, ":d:lh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'l':
		case 'f':
		case 'a':
			if (mode) {
				bstore_usage(stderr);
				return 2;
			}
			mode = ch;
			if (ch != 'l')
				who = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			bstore_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "dbtap baseline: %s needs a value (see: dbtap baseline --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			if (optopt > 0 && optopt < 256)
				fprintf(stderr, "dbtap baseline: unknown option '-%c' (see: dbtap baseline --help)\n",
					optopt);
			else
				fprintf(stderr, "dbtap baseline: unknown option '%s' (see: dbtap baseline --help)\n",
					argv[optind - 1]);
			return 2;
		}
	}
	if (mode == 'l' && optind < argc)
		who = argv[optind++];
	if (mode && optind < argc) {
		fprintf(stderr, "dbtap baseline: unexpected argument '%s' (see: dbtap baseline --help)\n",
			argv[optind]);
		return 2;
	}
	if (!mode) {
		bstore_usage(stderr);
		return 2;
	}
	char err[512];
	struct bstore *b = bstore_open(db, 0, err, sizeof err);
	if (!b) {
		fprintf(stderr, "dbtap: %s\n", err);
		return 1;
	}
	int rc = 0;
	int64_t n = 0;
	if (mode == 'l') {
		rc = bstore_list_rows(b, who, json);
	} else if (mode == 'f') {
		rc = bstore_forget(b, who, &n);
		if (rc == 0)
			printf("forgot %lld baseline rows of %s\n", (long long)n, who);
	} else {
		rc = bstore_ack(b, who, &n);
		if (rc == 0)
			printf("acknowledged %lld baseline rows of %s\n", (long long)n, who);
	}
	if (rc != 0)
		fprintf(stderr, "dbtap: %s\n", bstore_errmsg(b));
	bstore_close(b);
	return rc ? 1 : 0;
}
