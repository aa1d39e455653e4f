/* data_export: COPY ... TO (file, program, stdout), COPY ... FROM PROGRAM, SELECT ... INTO
 * OUTFILE/DUMPFILE, LOAD DATA [LOCAL] INFILE, server file / large-object functions, and the
 * server asking the client for a file (EV_DATA_MOVE). COPY TO STDOUT by an admin on an admin
 * host follows admin_policy (pg_dump). */
#include "det.h"

/* server file and large-object functions, by word id (sqlnorm.h) */
static const uint8_t file_fns[] = { SNW_PG_READ_FILE, SNW_PG_READ_BINARY_FILE, SNW_PG_LS_DIR, SNW_PG_STAT_FILE,
				    SNW_LO_EXPORT, SNW_LO_IMPORT, SNW_PG_FILE_WRITE, SNW_LOAD_FILE, SNW_LO_FROM_BYTEA,
				    SNW_NONE };
/* the words the other text signals need */
static const uint8_t export_words[] = { SNW_OUTFILE, SNW_DUMPFILE, SNW_LOAD, SNW_NONE };
static struct sn_wordset gate_words = SN_WORDSET(export_words, file_fns);

static void de_statement(struct an *an, const struct an_stmt *st)
{
	const char *signal = NULL, *target = NULL;
	char fn[40] = "";
	int to_stdout = 0;
	const struct sn_info *in = st->info;
	/* the words every text signal needs: most statements have none */
	if (st->toks && in &&
	    (in->verb_kw == SNW_COPY || sn_has_set(in, &gate_words))) {
		int v = det_verb_index(st);
		if (v >= 0 && !strcmp(st->info->verb, "COPY")) {
			int depth = det_tok(st, v)->depth;
			for (int i = det_next(st, v); i < st->end; i = det_next(st, i)) {
				if (det_tok(st, i)->depth != depth)
					continue;
				if (det_word(st, i, "TO")) {
					int k = det_next(st, i);
					signal = "copy_to";
					if (det_word(st, k, "STDOUT"))
						target = "stdout", to_stdout = 1;
					else if (det_word(st, k, "PROGRAM"))
						target = "program";
					else
						target = "file";
					break;
				}
				if (det_word(st, i, "FROM")) {
					if (det_word(st, det_next(st, i), "PROGRAM"))
						signal = "copy_from_program", target = "program";
					break;
				}
			}
		}
		for (int i = st->first; i < st->end && !signal; i++) {
			if (det_word(st, i, "INTO") &&
			    (det_word(st, det_next(st, i), "OUTFILE") || det_word(st, det_next(st, i), "DUMPFILE"))) {
				signal = "into_outfile";
				target = "file";
			} else if (det_word(st, i, "LOAD") && det_word(st, det_next(st, i), "DATA")) {
				int k = det_next(st, det_next(st, i));
				if (det_word(st, k, "LOW_PRIORITY") || det_word(st, k, "CONCURRENT"))
					k = det_next(st, k);
				signal = det_word(st, k, "LOCAL") ? "load_data_local_infile" : "load_data_infile";
				target = "file";
			} else if (det_tok(st, i)->type == SN_WORD && det_punct(st, det_next(st, i), '(')) {
				if (sn_kw_in(det_tok(st, i), file_fns)) {
					signal = "file_function";
					snprintf(fn, sizeof fn, "%s", sn_word_text(det_tok(st, i)->kw));
				}
			}
		}
	}
	/* mysqldump reads each table with SELECT (!40001 SQL_NO_CACHE) * FROM t (the hint a
	 * comment, or code once versioned comments are lexed as code): a whole table leaves,
	 * whatever its row count. pg_dump's COPY ... TO stdout is copy_to above. */
	const char *tool = NULL;
	if (!signal && st->toks && in && in->verb_kw == SNW_SELECT) {
		for (int i = st->first; i < st->end && i < st->first + 4 && !tool; i++) {
			const struct sn_tok *t = det_tok(st, i);
			if ((t->type == SN_COMMENT && t->len >= 22 && !memcmp(st->base + t->off, "/*!40001 SQL_NO_CACHE", 21)) ||
			    sn_word(st->base, t, "SQL_NO_CACHE"))
				tool = "mysqldump";
		}
		if (tool) {
			signal = "dump_tool";
			target = "stdout";
			to_stdout = 1;
		}
	}
	if (!signal && st->data_move) {
		signal = st->data_move_to_client ? "copy_out" : st->data_move_what[0] ? "local_infile_request" : NULL;
		to_stdout = st->data_move_to_client;
	}
	if (!signal)
		return;
	enum an_severity sev = an->cfg.severity[AN_K_DATA_EXPORT];
	if (to_stdout && an_is_admin(an, st->s)) {
		if (an->cfg.admin_policy == AN_ADMIN_ALLOW)
			return;
		if (an->cfg.admin_policy == AN_ADMIN_DOWNGRADE)
			sev = AN_SEV_INFO;
	}
	cJSON *ev = an_evidence_stmt(st, signal);
	if (target)
		cJSON_AddStringToObject(ev, "target", target);
	if (fn[0])
		cJSON_AddStringToObject(ev, "function", fn);
	if (tool)
		cJSON_AddStringToObject(ev, "tool", tool);
	if (st->s->application[0])
		cJSON_AddStringToObject(ev, "application", st->s->application); /* program_name, application_name */
	if (st->data_move_what[0])
		cJSON_AddStringToObject(ev, "file", st->data_move_what);
	if (st->rows >= 0)
		cJSON_AddNumberToObject(ev, "rows", (double)st->rows);
	if (st->bytes)
		cJSON_AddNumberToObject(ev, "bytes", (double)st->bytes);
	char summary[256], sql[120];
	det_sql_excerpt(st, sql, sizeof sql);
	an_fmt(summary, sizeof summary, "data export (%s%s%s) by %s: %s", signal, fn[0] ? " " : "", fn, det_who(st),
		 sql[0] ? sql : st->data_move_what);
	an_stmt_finding(an, st, AN_K_DATA_EXPORT, sev, summary, ev);
}

const struct an_detector det_data_export = {
	.name = "data_export",
	.kind = AN_K_DATA_EXPORT,
	.on_statement = de_statement,
};
