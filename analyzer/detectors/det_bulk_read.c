/* bulk_read: one statement returned more rows, or more result bytes, than the thresholds
 * (defaults 10000 rows / 50 MiB). Rows affected by writes do not count, nor rows a SELECT
 * wrote INTO OUTFILE/DUMPFILE/@var on the server (none reached the client). */
#include "det.h"

/* SELECT ... INTO OUTFILE/DUMPFILE (or INTO @var): the server reports the rows it wrote, none
 * went to the client (data_export judges the file) */
static int into_server_side(const struct an_stmt *st)
{
	if (!st->info || !st->toks || (!sn_has(st->info, SNW_OUTFILE) && !sn_has(st->info, SNW_DUMPFILE) &&
					!sn_has(st->info, SNW__VAR)))
		return 0;
	for (int i = st->first; i < st->end; i++)
		if (det_word(st, i, "INTO") && det_tok(st, i)->depth == 0) {
			int k = det_next(st, i);
			if (det_word(st, k, "OUTFILE") || det_word(st, k, "DUMPFILE") ||
			    (k < st->end && det_tok(st, k)->type == SN_VAR))
				return 1;
		}
	return 0;
}

static void br_statement(struct an *an, const struct an_stmt *st)
{
	int by_rows = st->rows > an->cfg.bulk_read_rows && an_stmt_is_read(st) && !into_server_side(st);
	int by_bytes = (int64_t)st->bytes > an->cfg.bulk_read_bytes;
	if (!by_rows && !by_bytes)
		return;
	cJSON *ev = an_evidence_stmt(st, by_rows ? "rows" : "bytes");
	cJSON_AddNumberToObject(ev, "rows", (double)st->rows);
	cJSON_AddNumberToObject(ev, "bytes", (double)st->bytes);
	cJSON_AddNumberToObject(ev, "threshold_rows", (double)an->cfg.bulk_read_rows);
	cJSON_AddNumberToObject(ev, "threshold_bytes", (double)an->cfg.bulk_read_bytes);
	if (st->info)
		for (int i = 0; i < st->info->n_tables; i++) {
			cJSON *a = cJSON_GetObjectItemCaseSensitive(ev, "tables");
			if (!a)
				a = cJSON_AddArrayToObject(ev, "tables");
			cJSON_AddItemToArray(a, cJSON_CreateString(st->info->tables[i]));
		}
	char summary[256], sql[120];
	det_sql_excerpt(st, sql, sizeof sql);
	if (by_rows)
		an_fmt(summary, sizeof summary, "%s read %lld rows in one statement (threshold %lld): %s", det_who(st),
			 (long long)st->rows, (long long)an->cfg.bulk_read_rows, sql);
	else
		an_fmt(summary, sizeof summary, "%s read %llu bytes in one statement (threshold %lld): %s", det_who(st),
			 (unsigned long long)st->bytes, (long long)an->cfg.bulk_read_bytes, sql);
	an_stmt_finding(an, st, AN_K_BULK_READ, an->cfg.severity[AN_K_BULK_READ], summary, ev);
}

const struct an_detector det_bulk_read = {
	.name = "bulk_read",
	.kind = AN_K_BULK_READ,
	.on_statement = br_statement,
};
