/* `dbtap report --format text`: the report document as plain text for a terminal. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "report_int.h"

/* ---- rendering: text ---- */

const char *rp_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}


static void tx_bar(struct jw *w, double v, double max, int width)
{
	int n = max > 0 ? (int)(v / max * width + 0.5) : 0;
	if (v > 0 && n == 0)
		n = 1;
	for (int i = 0; i < width; i++)
		jw_putc(w, i < n ? '#' : ' ');
}


/* "  ... N more" under a list that shows shown of total rows; nothing when all shown. */
static void tx_more(struct jw *w, long long shown, long long total, const char *where)
{
	if (total > shown)
		jw_printf(w, "  ... %lld more (%s)\n", total - shown, where);
}

static long long tx_count(const cJSON *arr)
{
	return (long long)cJSON_GetArraySize(arr);
}

/* Microseconds as a short human duration. */
static void tx_dur(struct jw *w, double us, int width)
{
	char b[32];
	if (us >= 60e6)
		snprintf(b, sizeof b, "%.1fmin", us / 60e6);
	else if (us >= 1e6)
		snprintf(b, sizeof b, "%.2fs", us / 1e6);
	else if (us >= 1e3)
		snprintf(b, sizeof b, "%.1fms", us / 1e3);
	else
		snprintf(b, sizeof b, "%.0fus", us);
	jw_printf(w, "%*s", width, b);
}

static void tx_shapes(struct jw *w, const char *title, const cJSON *rows, long long total)
{
	const cJSON *it;
	jw_printf(w, "  %s\n  %8s %7s %9s %9s %9s %10s  %s\n", title, "count", "errors", "total",
		  "mean", "max", "rows", "example");
	cJSON_ArrayForEach(it, rows)
	{
		jw_printf(w, "  %8lld %7lld ", NUM(it, "count"), NUM(it, "errors"));
		if (rp_num(it, "timed") > 0) {
			tx_dur(w, rp_num(it, "total_us"), 9);
			jw_putc(w, ' ');
			tx_dur(w, rp_num(it, "mean_us"), 9);
			jw_putc(w, ' ');
			tx_dur(w, rp_num(it, "max_us"), 9);
		} else {
			jw_printf(w, "%9s %9s %9s", "-", "-", "-");
		}
		jw_printf(w, " %10lld  ", NUM(it, "rows"));
		jw_text(w, rp_strv(it, "example"), 70);
		jw_putc(w, '\n');
	}
	if (!cJSON_GetArraySize(rows))
		jw_puts(w, "  none\n");
	tx_more(w, tx_count(rows), total, "shapes: --format json, or the statements table");
}

static void tx_workload(struct jw *w, const cJSON *root)
{
	const cJSON *wl = cJSON_GetObjectItemCaseSensitive(root, "workload");
	const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "list_totals");
	const cJSON *it;
	jw_printf(w, "\nWORKLOAD\n  %lld statements in %lld shapes; %lld timed (request and completion"
		     " seen), ", NUM(wl, "statements"), NUM(wl, "shapes"), NUM(wl, "timed"));
	tx_dur(w, rp_num(wl, "total_us"), 0);
	jw_printf(w, " in all; peak %lld statements/s at %s\n\n", NUM(wl, "peak_per_s"),
		  rp_or(rp_strv(wl, "peak_at"), "-"));
	long long shapes = NUM(lt, "shapes");
	tx_shapes(w, "TOP SHAPES BY COUNT", cJSON_GetObjectItemCaseSensitive(wl, "top_by_count"), shapes);
	jw_putc(w, '\n');
	tx_shapes(w, "TOP SHAPES BY TOTAL TIME", cJSON_GetObjectItemCaseSensitive(wl, "top_by_time"),
		  shapes);
	jw_putc(w, '\n');
	tx_shapes(w, "TOP SHAPES BY ROWS", cJSON_GetObjectItemCaseSensitive(wl, "top_by_rows"), shapes);

	jw_puts(w, "\n  SLOWEST STATEMENTS\n");
	int k = 0;
	const cJSON *slow = cJSON_GetObjectItemCaseSensitive(wl, "slowest");
	cJSON_ArrayForEach(it, slow)
	{
		if (k++ >= 20)
			break;
		jw_printf(w, "  %.19s ", rp_or(rp_strv(it, "ts"), "-"));
		tx_dur(w, rp_num(it, "duration_us"), 9);
		jw_putc(w, ' ');
		jw_text_pad(w, rp_or(rp_strv(it, "end_user"), rp_or(rp_strv(it, "db_user"), "?")), 16);
		jw_putc(w, ' ');
		jw_text(w, rp_strv(it, "sql"), 80);
		jw_putc(w, '\n');
	}
	if (!k)
		jw_puts(w, "  none timed\n");
	tx_more(w, k, NUM(lt, "timed"), "timed statements: ORDER BY duration_us in the statements table");

	jw_puts(w, "\n  ERRORS BY CODE\n");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(wl, "errors_by_code");
	cJSON_ArrayForEach(it, errs)
	{
		jw_puts(w, "  ");
		jw_text_pad(w, rp_strv(it, "error_code"), 8);
		jw_printf(w, " %8lld  ", NUM(it, "count"));
		jw_text(w, rp_strv(it, "example"), 80);
		jw_putc(w, '\n');
	}
	if (!cJSON_GetArraySize(errs))
		jw_puts(w, "  none\n");
	tx_more(w, tx_count(errs), NUM(lt, "error_codes"), "codes: --format json");

	static const char *const dims[][3] = {
		{ "by_database", "BY DATABASE", "databases" },
		{ "by_application", "BY APPLICATION", "applications" },
		{ "by_client", "BY CLIENT", "clients" },
		{ "by_db_user", "BY DATABASE USER", "db_users" },
		{ "by_end_user", "BY END USER", "end_users" },
	};
	for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
		const cJSON *rows = cJSON_GetObjectItemCaseSensitive(wl, dims[i][0]);
		jw_printf(w, "\n  %s\n  %-30s %10s %8s %10s %10s\n", dims[i][1], "", "statements",
			  "errors", "time", "rows");
		cJSON_ArrayForEach(it, rows)
		{
			jw_puts(w, "  ");
			jw_text_pad(w, rp_or(rp_strv(it, "value"), "(unknown)"), 30);
			jw_printf(w, " %10lld %8lld ", NUM(it, "statements"), NUM(it, "errors"));
			tx_dur(w, rp_num(it, "total_us"), 10);
			jw_printf(w, " %10lld\n", NUM(it, "rows"));
		}
		tx_more(w, tx_count(rows), NUM(lt, dims[i][2]), "--format json");
	}
}

struct rp_parts rp_parts_of(const cJSON *root)
{
	struct rp_parts d = {
		cJSON_GetObjectItemCaseSensitive(root, "window"),
		cJSON_GetObjectItemCaseSensitive(root, "capture"),
		cJSON_GetObjectItemCaseSensitive(root, "sessions"),
		cJSON_GetObjectItemCaseSensitive(root, "statements"),
		cJSON_GetObjectItemCaseSensitive(root, "findings"),
		cJSON_GetObjectItemCaseSensitive(root, "blind_spots"),
		cJSON_GetObjectItemCaseSensitive(root, "failed_logins"),
		cJSON_GetObjectItemCaseSensitive(root, "new_shapes"),
	};
	return d;
}

void rp_text(const cJSON *root, struct jw *w)
{
	const struct rp_parts d = rp_parts_of(root);
	const cJSON *win = d.win, *cap = d.cap, *ses = d.ses, *stm = d.stm, *fnd = d.fnd, *bs = d.bs,
		    *fl = d.fl, *ns = d.ns;
	const cJSON *it;

	jw_printf(w, "dbtap report (packet time)\n  window   %s .. %s\n", rp_strv(win, "since"),
		  rp_strv(win, "until"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "databases"))
	{
		jw_puts(w, "  database ");
		jw_text(w, rp_strv(it, "path"), 0);
		jw_puts(w, " (sensor ");
		jw_text(w, rp_strv(it, "sensor"), 64);
		jw_printf(w, ", newest %s)\n", rp_or(rp_strv(it, "newest"), "empty"));
	}
	jw_printf(w, "  capture  %lld runs, %lld packets, %lld kernel drops, %lld sensor drops\n\n",
		  NUM(cap, "runs"), NUM(cap, "packets"), NUM(cap, "kernel_drops"),
		  NUM(cap, "sensor_drops"));

	jw_puts(w, "SUMMARY\n");
	jw_printf(w, "  sessions          %lld (login ok %lld, failed %lld, unknown %lld)\n",
		  NUM(ses, "total"), NUM(ses, "login_ok"), NUM(ses, "login_failed"),
		  NUM(ses, "login_unknown"));
	jw_printf(w, "  statements        %lld stored, %lld errors; %lld observed in sessions\n",
		  NUM(stm, "stored"), NUM(stm, "errors"), NUM(ses, "statements_observed"));
	jw_printf(w, "  findings          %lld (critical %lld, high %lld, medium %lld, low %lld,"
		     " info %lld)\n\n",
		  NUM(fnd, "total"), NUM(fnd, "critical"), NUM(fnd, "high"), NUM(fnd, "medium"),
		  NUM(fnd, "low"), NUM(fnd, "info"));

	const cJSON *grp = cJSON_GetObjectItemCaseSensitive(root, "groups");
	jw_printf(w, "FINDING GROUPS (kind, principal, shape or client): %lld, %lld open (%lld again,"
		     " %lld new since the last recorded report), %lld acknowledged, %lld false"
		     " positive, %lld resolved\n",
		  NUM(grp, "total"), NUM(grp, "open"), NUM(grp, "reopened"), NUM(grp, "new"),
		  NUM(grp, "acknowledged"), NUM(grp, "false_positive"), NUM(grp, "resolved"));
	int g = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(grp, "open_groups"))
	{
		if (g++ >= 20)
			break;
		jw_printf(w, "  %s %-5s %-8s ", rp_or(rp_strv(it, "id"), "?"),
			  rp_num(it, "reopened") ? "AGAIN" : rp_num(it, "new") ? "NEW" : "",
			  rp_or(rp_strv(it, "severity"), "?"));
		jw_text_pad(w, rp_strv(it, "kind"), 21);
		jw_putc(w, ' ');
		jw_text_pad(w, rp_strv(it, "principal"), 16);
		jw_printf(w, " x%-5lld last %.19s\n      ", NUM(it, "count"), rp_or(rp_strv(it, "last"), "-"));
		jw_text(w, rp_strv(it, "summary"), 100);
		jw_putc(w, '\n');
	}
	if (!g)
		jw_puts(w, "  no open group\n");
	tx_more(w, g > 20 ? 20 : g, NUM(grp, "open"), "dbtap findings --list --state open");
	if (NUM(grp, "total") > NUM(grp, "open"))
		jw_printf(w, "  %lld triaged groups collapsed (they reopen when they get worse or come"
			     " back): dbtap findings --list\n", NUM(grp, "total") - NUM(grp, "open"));
	jw_puts(w, "\n");

	jw_puts(w, "FINDINGS BY KIND\n  kind                    total  crit  high   med   low  info\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "by_kind"))
	{
		jw_puts(w, "  ");
		jw_text_pad(w, rp_or(rp_strv(it, "kind"), "(none)"), 22);
		jw_printf(w, "%7lld %5lld %5lld %5lld %5lld %5lld\n", NUM(it, "total"),
			  NUM(it, "critical"), NUM(it, "high"), NUM(it, "medium"), NUM(it, "low"),
			  NUM(it, "info"));
	}
	int k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "attacks"))
	{
		if (k++ == 0)
			jw_puts(w, "\nATTACKS BY ACTOR (injection statements, probing bursts)\n");
		if (k > 20)
			break;
		jw_puts(w, "  ");
		jw_text_pad(w, rp_strv(it, "severity"), 8);
		jw_putc(w, ' ');
		jw_text_pad(w, rp_strv(it, "kind"), 13);
		jw_printf(w, "%6lld  ", NUM(it, "findings"));
		jw_text(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"), 24);
		jw_puts(w, "@");
		jw_text(w, rp_strv(it, "client_ip"), 40);
		jw_puts(w, " ");
		jw_text(w, rp_strv(it, "application"), 24);
		jw_printf(w, "  %.19s .. %.19s\n", rp_or(rp_strv(it, "first"), "-"), rp_or(rp_strv(it, "last"), "-"));
	}
	jw_puts(w, "\nMOST SEVERE FINDINGS\n");
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "most_severe"))
	{
		if (k++ >= 20)
			break;
		jw_printf(w, "  %.19s  ", rp_or(rp_strv(it, "ts"), "-"));
		jw_text_pad(w, rp_strv(it, "severity"), 8);
		jw_putc(w, ' ');
		jw_text_pad(w, rp_strv(it, "kind"), 21);
		jw_putc(w, ' ');
		jw_text(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"),
			24);
		jw_puts(w, "@");
		jw_text(w, rp_strv(it, "client_ip"), 40);
		jw_puts(w, "\n      [");
		jw_text(w, rp_strv(it, "id"), 80); /* SENSOR:ID: unambiguous across databases */
		jw_puts(w, "] ");
		jw_text(w, rp_strv(it, "summary"), 100);
		jw_putc(w, '\n');
	}
	if (!k)
		jw_puts(w, "  none\n");
	tx_more(w, k, NUM(fnd, "total"), "dbtap findings, or the findings table");

	jw_printf(w, "\nACTIVITY PER %s\n  %-16s %10s %8s %8s\n",
		  !strcmp(rp_or(rp_strv(win, "bucket"), "hour"), "minute") ? "MINUTE"
		  : !strcmp(rp_or(rp_strv(win, "bucket"), "hour"), "month") ? "MONTH"
		  : !strcmp(rp_or(rp_strv(win, "bucket"), "hour"), "day") ? "DAY" : "HOUR", "time",
		  "statements", "sessions", "findings");
	double amax = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "activity"))
	{
		if (rp_num(it, "statements") > amax)
			amax = rp_num(it, "statements");
	}
	int quiet = 0; /* a run of empty buckets is one line, not a wall */
	const char *quiet_from = NULL, *quiet_to = NULL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "activity"))
	{
		int empty = !rp_num(it, "statements") && !rp_num(it, "sessions") && !rp_num(it, "findings");
		if (empty) {
			if (!quiet++)
				quiet_from = rp_strv(it, "t");
			quiet_to = rp_strv(it, "t");
			if (it->next)
				continue;
		}
		if (quiet > 2)
			jw_printf(w, "  %-16s .. %s: %d with no activity\n", rp_or(quiet_from, ""),
				  rp_or(quiet_to, ""), quiet);
		else if (quiet)
			for (int q = 0; q < quiet; q++)
				jw_printf(w, "  %-16s %10d %8d %8d\n", q ? rp_or(quiet_to, "") : rp_or(quiet_from, ""), 0, 0, 0);
		quiet = 0;
		if (empty)
			continue;
		jw_printf(w, "  %-16s %10lld %8lld %8lld  ", rp_or(rp_strv(it, "t"), ""),
			  NUM(it, "statements"), NUM(it, "sessions"), NUM(it, "findings"));
		tx_bar(w, rp_num(it, "statements"), amax, 30);
		while (w->len && w->buf[w->len - 1] == ' ')
			w->buf[--w->len] = 0;
		jw_putc(w, '\n');
	}

	jw_puts(w, "\nTOP DATABASE USERS\n  db_user                 sessions statements   errors"
		   " failed findings\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"))
	{
		jw_puts(w, "  ");
		jw_text_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 22);
		jw_printf(w, " %9lld %10lld %8lld %6lld %8lld\n", NUM(it, "sessions"),
			  NUM(it, "statements"), NUM(it, "errors"), NUM(it, "failed_logins"),
			  NUM(it, "findings"));
	}
	tx_more(w, tx_count(cJSON_GetObjectItemCaseSensitive(root, "top_db_users")),
		NUM(cJSON_GetObjectItemCaseSensitive(root, "list_totals"), "db_users"), "--format json");
	jw_puts(w, "\nTOP END USERS\n  end_user                statements   errors findings\n");
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_end_users"))
	{
		k++;
		jw_puts(w, "  ");
		jw_text_pad(w, rp_strv(it, "end_user"), 22);
		jw_printf(w, " %10lld %8lld %8lld\n", NUM(it, "statements"), NUM(it, "errors"),
			  NUM(it, "findings"));
	}
	if (!k)
		jw_puts(w, "  none attributed\n");
	tx_more(w, k, NUM(cJSON_GetObjectItemCaseSensitive(root, "list_totals"), "end_users"),
		"--format json");

	jw_printf(w, "\nFAILED LOGINS: %lld from %lld clients\n", NUM(fl, "total"),
		  NUM(fl, "clients"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fl, "by_client"))
	{
		jw_puts(w, "  ");
		jw_text_pad(w, rp_strv(it, "client_ip"), 24);
		jw_putc(w, ' ');
		jw_text_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 18);
		jw_printf(w, " %6lld  last %.19s  ", NUM(it, "count"), rp_or(rp_strv(it, "last"), "-"));
		jw_text(w, rp_strv(it, "error"), 60);
		jw_putc(w, '\n');
	}
	tx_more(w, tx_count(cJSON_GetObjectItemCaseSensitive(fl, "by_client")),
		NUM(cJSON_GetObjectItemCaseSensitive(root, "list_totals"), "failed_login_pairs"),
		"sessions WHERE login = 'failed'");

	jw_printf(w, "\nNEW QUERY SHAPES: %lld\n", NUM(ns, "total"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ns, "items"))
	{
		jw_printf(w, "  %.19s  ", rp_or(rp_strv(it, "ts"), "-"));
		jw_text_pad(w, rp_or(rp_strv(it, "db_user"), "(unknown)"), 16);
		jw_putc(w, ' ');
		jw_text(w, rp_strv(it, "sql"), 90);
		jw_putc(w, '\n');
	}
	tx_more(w, tx_count(cJSON_GetObjectItemCaseSensitive(ns, "items")), NUM(ns, "total"),
		"findings WHERE kind = 'new_query_shape'");

	jw_puts(w, "\nBLIND SPOTS (what dbtap could not see)\n");
	jw_printf(w, "  TLS sessions          %lld of %lld (%.1f%%)\n", NUM(bs, "tls"),
		  NUM(bs, "sessions"), 100 * rp_num(bs, "tls_share"));
	jw_printf(w, "    decrypted %lld, key missing %lld, unsupported %lld\n", NUM(bs, "tls_decrypted"),
		  NUM(bs, "tls_key_missing"), NUM(bs, "tls_unsupported"));
	jw_printf(w, "  picked up mid-stream  %lld (%.1f%%)\n", NUM(bs, "midstream"),
		  100 * rp_num(bs, "midstream_share"));
	jw_printf(w, "  with capture gaps     %lld (%.1f%%)\n", NUM(bs, "with_gaps"),
		  100 * rp_num(bs, "gaps_share"));
	jw_printf(w, "  undecodable traffic   %lld (%.1f%%)\n", NUM(bs, "undecodable"),
		  100 * rp_num(bs, "undecodable_share"));
	jw_printf(w, "  packets dropped       %lld kernel + %lld sensor of %lld (%.3f%%)\n",
		  NUM(bs, "kernel_drops"), NUM(bs, "sensor_drops"), NUM(bs, "packets"),
		  100 * rp_num(bs, "drop_share"));
	tx_workload(w, root);
}

