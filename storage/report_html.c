/* `dbtap report --format html`: the report document as one self-contained HTML file
 * with inline SVG charts (no script, no network). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "dbtap_version.h"
#include "report_int.h"

/* ---- rendering: HTML with inline SVG ---- */

static const char *const sev_colors[] = {"#b71c1c", "#ef6c00", "#f9a825", "#1e88e5", "#90a4ae"};

static void ht_label(struct jw *w, const char *s, size_t max)
{
	/* truncate by code points, then escape */
	struct jw t = {0};
	jw_text(&t, s ? s : "(unknown)", max);
	jw_html(w, t.buf ? t.buf : "");
	jw_free(&t);
}

/* A round tick step (1, 2, 2.5, 5 x 10^k; whole numbers: these are counts) giving about
 * four ticks up to v; the axis then ends at the first tick at or above v (84 -> 0..100 by
 * 25, not 0..200 by 50). */
static double nice_step(double v)
{
	if (v <= 4)
		return 1;
	double raw = v / 4, mag = 1;
	while (mag * 10 <= raw)
		mag *= 10;
	double f = raw / mag;
	double step = f <= 1 ? 1 : f <= 2 ? 2 : (f <= 2.5 && mag >= 10) ? 2.5 : f <= 5 ? 5 : 10;
	return step * mag;
}

/* A stored time as "2026-11-27 09:15:02" for tables. */
static void ht_time(struct jw *w, const char *ts)
{
	char b[20];
	snprintf(b, sizeof(b), "%.19s", ts ? ts : "");
	if (b[0] && b[10] == 'T')
		b[10] = ' ';
	jw_puts(w, "<td class=\"t\">");
	jw_html(w, b);
	jw_puts(w, "</td>");
}

/* Columns over time, stacked by the named series. */
static void svg_columns(struct jw *w, const cJSON *rows, const char *const *series,
			const char *const *colors, int nser, const char *title)
{
	int n = cJSON_GetArraySize(rows);
	const int W = 920, H = 240, L = 56, R = 10, T = 28, B = 40;
	double max = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, rows)
	{
		double s = 0;
		for (int k = 0; k < nser; k++)
			s += rp_num(it, series[k]);
		if (s > max)
			max = s;
	}
	double step = nice_step(max);
	int ticks = max > 0 ? (int)((max + step - 1e-9) / step) : 4;
	if (ticks < 1)
		ticks = 1;
	max = step * ticks;
	jw_printf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
		     " viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
	jw_html(w, title);
	jw_puts(w, "</title>");
	int pw = W - L - R, ph = H - T - B;
	for (int g = 0; g <= ticks; g++) {
		double y = T + ph - ph * g / (double)ticks;
		jw_printf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
			     "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%g</text>",
			  L, y, W - R, y, L - 6, y + 4, step * g);
	}
	double bw = n ? (double)pw / n : pw;
	/* label every k-th column so labels never touch: ~6.5 px a character at 11 px, plus
	 * a gap; the widest label is the bucket's shortened form (+1 for the "h") */
	size_t t0 = n ? strlen(rp_or(rp_strv(cJSON_GetArrayItem(rows, 0), "t"), "")) : 0;
	double lw = 6.5 * (t0 == 16 ? 5 : t0 == 13 ? 3 : t0 == 10 ? 5 : 7) + 10;
	int every = bw >= lw ? 1 : (int)(lw / bw) + 1;
	int i = 0;
	cJSON_ArrayForEach(it, rows)
	{
		double x = L + i * bw, y = T + ph;
		for (int k = 0; k < nser; k++) {
			double v = rp_num(it, series[k]);
			if (v <= 0)
				continue;
			double h = ph * v / max;
			y -= h;
			jw_printf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
				     " fill=\"%s\"><title>",
				  x + bw * 0.1, y, bw * 0.8, h, colors[k]);
			jw_html(w, rp_strv(it, "t"));
			jw_printf(w, " %s: %.0f</title></rect>", series[k], v);
		}
		if (i % every == 0) {
			const char *t = rp_or(rp_strv(it, "t"), "");
			size_t tl = strlen(t);
			/* minutes show as "09:15", hours as "09h", days as "11-27", months as is */
			const char *lab = tl == 16 || tl == 13 ? t + 11 : tl == 10 ? t + 5 : t;
			jw_printf(w, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">",
				  x + bw / 2, T + ph + 16);
			jw_html(w, lab);
			jw_puts(w, tl == 13 ? "h</text>" : "</text>");
		}
		i++;
	}
	if (n) {
		/* first and last bucket spelled out under the axis */
		jw_printf(w, "<text x=\"%d\" y=\"%d\" class=\"ax\">", L, H - 6);
		jw_html(w, rp_strv(cJSON_GetArrayItem(rows, 0), "t"));
		jw_printf(w, "</text><text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">",
			  W - R, H - 6);
		jw_html(w, rp_strv(cJSON_GetArrayItem(rows, n - 1), "t"));
		jw_puts(w, "</text>");
	}
	int lx = L;
	for (int k = 0; k < nser && nser > 1; k++) {
		jw_printf(w, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			     "<text x=\"%d\" y=\"17\" class=\"ax\">%s</text>",
			  lx, colors[k], lx + 14, series[k]);
		lx += 14 + 8 * (int)strlen(series[k]) + 16;
	}
	jw_puts(w, "</svg>\n");
}

/* Horizontal bars, stacked by series, one row per item labelled by label_key. */
static void svg_hbars(struct jw *w, const cJSON *rows, const char *label_key,
		      const char *const *series, const char *const *colors, int nser,
		      const char *title, int percent)
{
	int n = cJSON_GetArraySize(rows);
	if (!n) {
		jw_puts(w, "<p class=\"none\">none</p>\n");
		return;
	}
	const int W = 920, L = 230, R = 90, row = 22;
	int T = nser > 1 ? 26 : 6;
	int H = T + n * row + 8;
	double max = percent ? 1 : 0;
	const cJSON *it;
	if (!percent) {
		cJSON_ArrayForEach(it, rows)
		{
			double s = 0;
			for (int k = 0; k < nser; k++)
				s += rp_num(it, series[k]);
			if (s > max)
				max = s;
		}
	}
	if (max <= 0)
		max = 1;
	jw_printf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
		     " viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
	jw_html(w, title);
	jw_puts(w, "</title>");
	int i = 0, pw = W - L - R, lx = L;
	for (int k = 0; k < nser && nser > 1; k++) {
		jw_printf(w, "<rect x=\"%d\" y=\"6\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			     "<text x=\"%d\" y=\"15\" class=\"ax\">%s</text>",
			  lx, colors[k], lx + 14, series[k]);
		lx += 14 + 8 * (int)strlen(series[k]) + 16;
	}
	cJSON_ArrayForEach(it, rows)
	{
		double y = T + i * row, x = L, total = 0;
		jw_printf(w, "<text x=\"%d\" y=\"%.1f\" class=\"lb\" text-anchor=\"end\">", L - 8,
			  y + 15);
		ht_label(w, rp_strv(it, label_key), 30);
		jw_puts(w, "</text>");
		if (percent)
			jw_printf(w, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"16\""
				     " class=\"track\"/>", L, y + 3, pw);
		for (int k = 0; k < nser; k++) {
			double v = rp_num(it, series[k]);
			total += v;
			if (v <= 0)
				continue;
			double bw = pw * v / max;
			if (bw < 1)
				bw = 1;
			jw_printf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\""
				     " fill=\"%s\"><title>%s: %.0f</title></rect>",
				  x, y + 3, bw, colors[k], series[k], v);
			x += bw;
		}
		if (percent)
			jw_printf(w, "<text x=\"%d\" y=\"%.1f\" class=\"lb\">%.1f%%</text>",
				  W - R + 6, y + 15, total * 100);
		else
			jw_printf(w, "<text x=\"%.1f\" y=\"%.1f\" class=\"lb\">%.0f</text>", x + 6,
				  y + 15, total);
		i++;
	}
	jw_puts(w, "</svg>\n");
}

static void ht_num(struct jw *w, const cJSON *o, const char *key)
{
	jw_printf(w, "<td class=\"n\">%lld</td>", NUM(o, key));
}

static void ht_cell(struct jw *w, const char *s, size_t max)
{
	jw_puts(w, "<td>");
	ht_label(w, s, max);
	jw_puts(w, "</td>");
}

/* "N more" under a cut list, saying where the rest is. */
static void ht_more(struct jw *w, long long shown, long long total, const char *where)
{
	if (total > shown)
		jw_printf(w, "<p class=\"more\">&hellip; %lld more (%s)</p>\n", total - shown, where);
}

/* the end of a listing: "none" when it is empty, and how many more are in the database */
static void ht_table_end(struct jw *w, long long shown, long long total, const char *where)
{
	jw_puts(w, "</table>\n");
	if (!shown)
		jw_puts(w, "<p class=\"none\">none</p>\n");
	ht_more(w, shown, total, where);
}

/* a row's last cell: SQL or an example statement, cut to max characters */
static void ht_code_end(struct jw *w, const char *sql, size_t max)
{
	jw_puts(w, "<td><code>");
	ht_label(w, sql, max);
	jw_puts(w, "</code></td></tr>");
}

static void ht_dur(struct jw *w, double us)
{
	jw_puts(w, "<td class=\"n\">");
	if (us >= 60e6)
		jw_printf(w, "%.1f min", us / 60e6);
	else if (us >= 1e6)
		jw_printf(w, "%.2f s", us / 1e6);
	else if (us >= 1e3)
		jw_printf(w, "%.1f ms", us / 1e3);
	else
		jw_printf(w, "%.0f &micro;s", us);
	jw_puts(w, "</td>");
}

static void ht_shapes(struct jw *w, const char *title, const cJSON *rows, long long total)
{
	const cJSON *it;
	jw_printf(w, "<h3>%s</h3>\n<table><tr><th class=\"n\">count</th><th class=\"n\">errors</th>"
		     "<th class=\"n\">total</th><th class=\"n\">mean</th><th class=\"n\">max</th>"
		     "<th class=\"n\">rows</th><th>shape</th></tr>", title);
	cJSON_ArrayForEach(it, rows)
	{
		jw_puts(w, "<tr>");
		ht_num(w, it, "count");
		ht_num(w, it, "errors");
		if (rp_num(it, "timed") > 0) {
			ht_dur(w, rp_num(it, "total_us"));
			ht_dur(w, rp_num(it, "mean_us"));
			ht_dur(w, rp_num(it, "max_us"));
		} else {
			jw_puts(w, "<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"n\">-</td>");
		}
		ht_num(w, it, "rows");
		ht_code_end(w, rp_strv(it, "example"), 200);
	}
	ht_table_end(w, cJSON_GetArraySize(rows), total, "all shapes: report --format json");
}

static void ht_workload(struct jw *w, const cJSON *root)
{
	const cJSON *wl = cJSON_GetObjectItemCaseSensitive(root, "workload");
	const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "list_totals");
	const cJSON *it;
	jw_printf(w, "<h2 id=\"workload\">Workload</h2>\n<p class=\"meta\">%lld statements in %lld"
		     " shapes; durations only where the capture saw the request and its completion"
		     " (%lld statements). Peak %lld statements/s at ",
		  NUM(wl, "statements"), NUM(wl, "shapes"), NUM(wl, "timed"), NUM(wl, "peak_per_s"));
	jw_html(w, rp_or(rp_strv(wl, "peak_at"), "-"));
	jw_puts(w, ".</p>\n");
	long long shapes = NUM(lt, "shapes");
	ht_shapes(w, "Top shapes by count", cJSON_GetObjectItemCaseSensitive(wl, "top_by_count"), shapes);
	ht_shapes(w, "Top shapes by total time", cJSON_GetObjectItemCaseSensitive(wl, "top_by_time"),
		  shapes);
	ht_shapes(w, "Top shapes by rows", cJSON_GetObjectItemCaseSensitive(wl, "top_by_rows"), shapes);

	jw_puts(w, "<h3>Slowest statements</h3>\n<table><tr><th>time</th><th class=\"n\">duration</th>"
		   "<th>principal</th><th>sql</th></tr>");
	int k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(wl, "slowest"))
	{
		if (k++ >= 15)
			break;
		jw_puts(w, "<tr>");
		ht_time(w, rp_strv(it, "ts"));
		ht_dur(w, rp_num(it, "duration_us"));
		ht_cell(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"), 40);
		ht_code_end(w, rp_strv(it, "sql"), 200);
	}
	jw_puts(w, "</table>\n");
	ht_more(w, k, NUM(lt, "timed"), "the statements table, ORDER BY duration_us DESC");

	jw_puts(w, "<h3>Errors by code</h3>\n<table><tr><th>code</th><th class=\"n\">count</th>"
		   "<th class=\"n\">shapes</th><th>example</th></tr>");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(wl, "errors_by_code");
	cJSON_ArrayForEach(it, errs)
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "error_code"), 12);
		ht_num(w, it, "count");
		ht_num(w, it, "shapes");
		ht_code_end(w, rp_strv(it, "example"), 200);
	}
	ht_table_end(w, cJSON_GetArraySize(errs), NUM(lt, "error_codes"), "report --format json");

	static const char *const dims[][3] = {
		{ "by_database", "database", "databases" },
		{ "by_application", "application", "applications" },
		{ "by_client", "client", "clients" },
		{ "by_db_user", "database user", "db_users" },
		{ "by_end_user", "end user", "end_users" },
	};
	for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
		const cJSON *rows = cJSON_GetObjectItemCaseSensitive(wl, dims[i][0]);
		jw_printf(w, "<h3>By %s</h3>\n<table><tr><th>%s</th><th class=\"n\">statements</th>"
			     "<th class=\"n\">errors</th><th class=\"n\">time</th><th class=\"n\">rows</th>"
			     "<th class=\"n\">shapes</th></tr>", dims[i][1], dims[i][1]);
		cJSON_ArrayForEach(it, rows)
		{
			jw_puts(w, "<tr>");
			ht_cell(w, rp_or(rp_strv(it, "value"), "(unknown)"), 60);
			ht_num(w, it, "statements");
			ht_num(w, it, "errors");
			ht_dur(w, rp_num(it, "total_us"));
			ht_num(w, it, "rows");
			ht_num(w, it, "shapes");
			jw_puts(w, "</tr>");
		}
		jw_puts(w, "</table>\n");
		ht_more(w, cJSON_GetArraySize(rows), NUM(lt, dims[i][2]), "report --format json");
	}
}

static void ht_card(struct jw *w, const char *label, long long v, const char *cls)
{
	jw_printf(w, "<div class=\"card %s\"><div class=\"v\">%lld</div><div class=\"l\">%s</div>"
		     "</div>", cls, v, label);
}

void rp_html(const cJSON *root, struct jw *w)
{
	const struct rp_parts d = rp_parts_of(root);
	const cJSON *win = d.win, *cap = d.cap, *ses = d.ses, *stm = d.stm, *fnd = d.fnd, *bs = d.bs,
		    *fl = d.fl, *ns = d.ns;
	const cJSON *it;

	jw_puts(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta name=\"viewport\" content=\"width=device-width\">"
		   "<title>dbtap report</title><style>"
		   "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:960px}"
		   "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
		   "border-bottom:1px solid #ddd;padding-bottom:4px}"
		   ".meta{color:#555}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}"
		   ".card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}"
		   ".card .v{font-size:22px;font-weight:600}.card .l{color:#555;font-size:12px}"
		   ".card.bad .v{color:#b71c1c}"
		   "table{border-collapse:collapse;width:100%;font-size:13px}"
		   "th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;"
		   "vertical-align:top}td.t{white-space:nowrap}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
		   "code{font-size:12px;word-break:break-all}"
		   "svg{display:block;max-width:100%;height:auto}"
		   "svg .ax{font-size:11px;fill:#555}svg .lb{font-size:12px;fill:#222}"
		   "svg .grid{stroke:#eee}svg .track{fill:#f1f1f1}.none{color:#777}"
		   ".sev-critical{color:#b71c1c;font-weight:600}.sev-high{color:#ef6c00}"
		   "h3{font-size:15px;margin:18px 0 6px}.more{color:#555;font-style:italic}"
		   "</style></head><body>\n");
	jw_puts(w, "<h1>dbtap report</h1><p class=\"meta\">Packet time ");
	jw_html(w, rp_strv(win, "since"));
	jw_puts(w, " &ndash; ");
	jw_html(w, rp_strv(win, "until"));
	jw_puts(w, "<br>Databases: ");
	int k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "databases"))
	{
		if (k++)
			jw_puts(w, ", ");
		jw_puts(w, "<code>");
		jw_html(w, rp_strv(it, "path"));
		jw_puts(w, "</code> (sensor ");
		jw_html(w, rp_strv(it, "sensor"));
		jw_puts(w, ")");
	}
	jw_printf(w, "<br>Capture: %lld runs, %lld packets, %lld kernel drops, %lld sensor drops"
		     "</p>\n",
		  NUM(cap, "runs"), NUM(cap, "packets"), NUM(cap, "kernel_drops"),
		  NUM(cap, "sensor_drops"));

	jw_puts(w, "<div class=\"cards\">");
	ht_card(w, "sessions", NUM(ses, "total"), "");
	ht_card(w, "statements stored", NUM(stm, "stored"), "");
	ht_card(w, "statement errors", NUM(stm, "errors"), "");
	ht_card(w, "findings", NUM(fnd, "total"), "");
	ht_card(w, "critical + high", NUM(fnd, "critical") + NUM(fnd, "high"),
		NUM(fnd, "critical") + NUM(fnd, "high") ? "bad" : "");
	ht_card(w, "failed logins", NUM(fl, "total"), NUM(fl, "total") ? "bad" : "");
	ht_card(w, "new query shapes", NUM(ns, "total"), "");
	jw_puts(w, "</div>\n");

	const cJSON *grp = cJSON_GetObjectItemCaseSensitive(root, "groups");
	jw_printf(w, "<h2 id=\"triage\">Finding groups to triage</h2>\n<p class=\"meta\">Findings"
		     " of one kind, principal and shape (or client) are one group: %lld groups, %lld"
		     " open (%lld again, %lld new since the last recorded report), %lld acknowledged,"
		     " %lld false positive, %lld resolved. Triage with <code>dbtap findings</code>.</p>\n"
		     "<table><tr><th>group</th><th></th><th>severity</th><th>kind</th><th>principal</th>"
		     "<th class=\"n\">count</th><th>last</th><th>summary</th></tr>",
		  NUM(grp, "total"), NUM(grp, "open"), NUM(grp, "reopened"), NUM(grp, "new"),
		  NUM(grp, "acknowledged"), NUM(grp, "false_positive"), NUM(grp, "resolved"));
	int g = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(grp, "open_groups"))
	{
		if (g++ >= 15)
			break;
		jw_puts(w, "<tr><td><code>");
		jw_html(w, rp_or(rp_strv(it, "id"), "?"));
		jw_printf(w, "</code></td><td>%s</td><td class=\"sev-",
			  rp_num(it, "reopened") ? "again" : rp_num(it, "new") ? "new" : "");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "\">");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "</td>");
		ht_cell(w, rp_strv(it, "kind"), 40);
		ht_cell(w, rp_strv(it, "principal"), 40);
		ht_num(w, it, "count");
		ht_time(w, rp_strv(it, "last"));
		ht_cell(w, rp_strv(it, "summary"), 160);
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");
	if (!g)
		jw_puts(w, "<p class=\"none\">no open group</p>\n");
	ht_more(w, g > 15 ? 15 : g, NUM(grp, "open"), "dbtap findings --list --state open");
	if (NUM(grp, "total") > NUM(grp, "open"))
		jw_printf(w, "<p class=\"more\">%lld triaged groups collapsed; they reopen when they get"
			     " worse or come back (dbtap findings --list).</p>\n",
			  NUM(grp, "total") - NUM(grp, "open"));

	jw_puts(w, "<h2>Findings by severity over time</h2>\n");
	svg_columns(w, cJSON_GetObjectItemCaseSensitive(fnd, "timeline"), sev_names, sev_colors,
		    N_SEV, "Findings per bucket by severity");
	jw_puts(w, "<h2>Findings by kind</h2>\n");
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(fnd, "by_kind"), "kind", sev_names,
		  sev_colors, N_SEV, "Findings by kind and severity", 0);

	jw_puts(w, "<h2>Most severe findings</h2>\n<table><tr><th>time</th><th>severity</th>"
		   "<th>kind</th><th>principal</th><th>client</th><th>summary</th><th>id</th></tr>");
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fnd, "most_severe"))
	{
		if (k++ >= 15)
			break;
		jw_puts(w, "<tr>");
		ht_time(w, rp_strv(it, "ts"));
		jw_puts(w, "<td class=\"sev-");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "\">");
		jw_html(w, rp_strv(it, "severity"));
		jw_puts(w, "</td>");
		ht_cell(w, rp_strv(it, "kind"), 40);
		ht_cell(w, rp_strv(it, "end_user") ? rp_strv(it, "end_user") : rp_strv(it, "db_user"),
			40);
		ht_cell(w, rp_strv(it, "client_ip"), 40);
		ht_cell(w, rp_strv(it, "summary"), 200);
		ht_cell(w, rp_strv(it, "id"), 80); /* SENSOR:ID: unambiguous across databases */
		jw_puts(w, "</tr>");
	}
	ht_table_end(w, k > 15 ? 15 : k, NUM(fnd, "total"), "dbtap findings, or the findings table");

	const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activity");
	static const char *const act_s[] = {"statements"}, *const act_c[] = {"#3949ab"};
	static const char *const ses_s[] = {"sessions"}, *const ses_c[] = {"#00897b"};
	jw_printf(w, "<h2>Activity per %s</h2>\n<p class=\"meta\">Statements stored</p>",
		  rp_or(rp_strv(win, "bucket"), "hour"));
	svg_columns(w, act, act_s, act_c, 1, "Statements stored per bucket");
	jw_puts(w, "<p class=\"meta\">Sessions started</p>");
	svg_columns(w, act, ses_s, ses_c, 1, "Sessions started per bucket");

	static const char *const du_s[] = {"statements"}, *const du_c[] = {"#3949ab"};
	jw_puts(w, "<h2>Top principals</h2>\n<p class=\"meta\">Database users by statements"
		   " observed</p>");
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"), "db_user", du_s,
		  du_c, 1, "Top database users", 0);
	jw_puts(w, "<table><tr><th>db_user</th><th class=\"n\">sessions</th>"
		   "<th class=\"n\">statements</th><th class=\"n\">errors</th>"
		   "<th class=\"n\">failed logins</th><th class=\"n\">findings</th></tr>");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_db_users"))
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "db_user"), 60);
		ht_num(w, it, "sessions");
		ht_num(w, it, "statements");
		ht_num(w, it, "errors");
		ht_num(w, it, "failed_logins");
		ht_num(w, it, "findings");
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");
	const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "list_totals");
	ht_more(w, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "top_db_users")),
		NUM(lt, "db_users"), "report --format json");
	/* one measure per chart: statements here, findings per end user in the table */
	jw_puts(w, "<p class=\"meta\">End users (attributed) by statements stored</p>");
	static const char *const eu_s[] = {"statements"}, *const eu_c[] = {"#00897b"};
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(root, "top_end_users"), "end_user", eu_s,
		  eu_c, 1, "Top end users", 0);
	jw_puts(w, "<table><tr><th>end user</th><th class=\"n\">statements</th>"
		   "<th class=\"n\">errors</th><th class=\"n\">findings</th></tr>");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "top_end_users"))
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "end_user"), 60);
		ht_num(w, it, "statements");
		ht_num(w, it, "errors");
		ht_num(w, it, "findings");
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");
	ht_more(w, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "top_end_users")),
		NUM(lt, "end_users"), "report --format json");

	jw_printf(w, "<h2>New query shapes (%lld)</h2>\n<table><tr><th>time</th><th>db_user</th>"
		     "<th>application</th><th>fingerprint</th><th>sql</th></tr>",
		  NUM(ns, "total"));
	k = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ns, "items"))
	{
		if (k++ >= 20)
			break;
		jw_puts(w, "<tr>");
		ht_time(w, rp_strv(it, "ts"));
		ht_cell(w, rp_strv(it, "db_user"), 40);
		ht_cell(w, rp_strv(it, "application"), 40);
		ht_cell(w, rp_strv(it, "fingerprint"), 16);
		ht_code_end(w, rp_strv(it, "sql"), 300);
	}
	jw_puts(w, "</table>\n");
	ht_more(w, k > 20 ? 20 : k, NUM(ns, "total"), "findings WHERE kind = 'new_query_shape'");

	jw_printf(w, "<h2>Failed logins (%lld from %lld clients)</h2>\n", NUM(fl, "total"),
		  NUM(fl, "clients"));
	static const char *const fl_s[] = {"count"}, *const fl_c[] = {"#b71c1c"};
	svg_hbars(w, cJSON_GetObjectItemCaseSensitive(fl, "by_client"), "label", fl_s, fl_c, 1,
		  "Failed logins by client", 0);
	jw_puts(w, "<table><tr><th>client</th><th>db_user</th><th class=\"n\">count</th>"
		   "<th>first</th><th>last</th><th>error</th></tr>");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(fl, "by_client"))
	{
		jw_puts(w, "<tr>");
		ht_cell(w, rp_strv(it, "client_ip"), 40);
		ht_cell(w, rp_strv(it, "db_user"), 40);
		ht_num(w, it, "count");
		ht_time(w, rp_strv(it, "first"));
		ht_time(w, rp_strv(it, "last"));
		ht_cell(w, rp_strv(it, "error"), 120);
		jw_puts(w, "</tr>");
	}
	jw_puts(w, "</table>\n");
	ht_more(w, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fl, "by_client")),
		NUM(lt, "failed_login_pairs"), "sessions WHERE login = 'failed'");

	/* blind spots as shares of sessions (and of packets for drops) */
	jw_printf(w, "<h2>Blind spots</h2>\n<p class=\"meta\">What dbtap could not see: shares of"
		     " %lld sessions; drops as a share of %lld packets.</p>",
		  NUM(bs, "sessions"), NUM(bs, "packets"));
	cJSON *rows = cJSON_CreateArray();
	static const char *const bl[][2] = {{"TLS (encrypted)", "tls_share"},
					     {"picked up mid-stream", "midstream_share"},
					     {"capture gaps", "gaps_share"},
					     {"undecodable traffic", "undecodable_share"},
					     {"packets dropped", "drop_share"}};
	for (size_t i = 0; i < sizeof(bl) / sizeof(bl[0]); i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "label", bl[i][0]);
		cJSON_AddNumberToObject(o, "share", rp_num(bs, bl[i][1]));
		cJSON_AddItemToArray(rows, o);
	}
	static const char *const bs_s[] = {"share"}, *const bs_c[] = {"#6d4c41"};
	svg_hbars(w, rows, "label", bs_s, bs_c, 1, "Blind spots", 1);
	cJSON_Delete(rows);
	jw_printf(w, "<p class=\"meta\">TLS %lld (decrypted %lld, key missing %lld, unsupported %lld),"
		     " mid-stream %lld, with gaps %lld, undecodable %lld;"
		     " kernel drops %lld, sensor drops %lld.</p>\n",
		  NUM(bs, "tls"), NUM(bs, "tls_decrypted"), NUM(bs, "tls_key_missing"),
		  NUM(bs, "tls_unsupported"), NUM(bs, "midstream"), NUM(bs, "with_gaps"), NUM(bs, "undecodable"),
		  NUM(bs, "kernel_drops"), NUM(bs, "sensor_drops"));
	ht_workload(w, root);
	jw_puts(w, "<p class=\"meta\">Generated by dbtap " DBTAP_VERSION ".</p></body></html>\n");
}

