/* dbtap entry point: command line (DESIGN.md §2), configuration, and the wiring of
 * capture -> decoders -> analyzer -> storage for one run. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "an.h"
#include "baseline_store.h"
#include "cap.h"
#include "config.h"
#include "proto.h"
#include "dbtap_version.h"
#include "findings.h"
#include "report.h"
#include "run_opts.h"
#include "sink.h"
#include "stats.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/* Without libsystemd: no readiness or watchdog protocol (NOTIFY_SOCKET is ignored). */
static int sd_notify(int unset, const char *state)
{
	(void)unset;
	(void)state;
	return 0;
}
static int sd_watchdog_enabled(int unset, uint64_t *usec)
{
	(void)unset;
	*usec = 0;
	return 0;
}
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dbtap run (-r FILE ... | -i IFACE) [-d DB] [-c CONFIG.json] [-f 'BPF'] [--json FILE|-]\n"
		"                 [--json-format dbtap|ocsf] [--syslog unix:PATH|udp://HOST:PORT|tcp://HOST:PORT]\n"
		"                 [--sensor NAME] [--learn] [-Z USER] [-q] [--fanout GROUP]\n"
		"                 [--metrics-file FILE] [--check-config]\n"
		"       dbtap report [-d DB]... [--since ISO8601 | --last 24h] [--until ISO8601|now]\n"
		"                    [--format text|html|json[,...]] [-o FILE|DIR] [--record]\n"
		"       dbtap findings [-d DB] [--list] [--state S] [--kind K] [--json]\n"
		"       dbtap findings [-d DB] (--ack|--fp|--resolve|--reopen) GROUP [--note TEXT]\n"
		"       dbtap prune [-d DB]... --older-than 30d [--vacuum]\n"
		"       dbtap baseline [-d DB] (--list [--json] [PRINCIPAL] | --forget PRINCIPAL | --ack PRINCIPAL)\n"
		"       dbtap status [-d DB]\n"
		"       dbtap version | -V | --version\n"
		"'dbtap COMMAND --help' lists a command's options; the man page is dbtap(8).\n");
}

static struct sink *g_json;   /* reopened on SIGHUP */
static struct sink *g_syslog; /* its own drops in the stats record */

/* Storage errors repeat once the disk is full: say it once. */
static int sink_failed(struct sink *s, int *said)
{
	if (!*said)
		fprintf(stderr, "dbtap: %s\n", s->errmsg[0] ? s->errmsg : "cannot store records");
	*said = 1;
	return 1;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		cap_hup();
	else
		cap_stop();
}

static void reopen_json(void *ctx)
{
	(void)ctx;
	if (g_json)
		sink_json_reopen(g_json);
}

/* Reads the -r files in order as one capture; returns the exit status (the message is in
 * err). With -Z every file is opened first, with the caller's rights, and the hostile
 * bytes are then parsed with nothing but USER's. */
static int read_files(struct cap *cap, const struct run_opts *o, char *err, size_t errlen)
{
	static FILE *fps[MAX_FILES];
	int progress = !o->quiet && isatty(2), n_open = 0;
	if (o->drop_user) {
		struct rlimit rl; /* up to MAX_FILES descriptors at once */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		while (n_open < o->n_files && (fps[n_open] = cap_open_file(o->files[n_open], err, errlen)))
			n_open++;
		if (n_open < o->n_files || cap_drop_privileges(o->drop_user, err, errlen) != 0) {
			while (n_open > 0)
				fclose(fps[--n_open]);
			return 1;
		}
	}
	for (int i = 0; i < o->n_files; i++) {
		FILE *fp = i < n_open ? fps[i] : cap_open_file(o->files[i], err, errlen);
		int rc = fp ? cap_read_fp(cap, fp, o->files[i], o->bpf, progress, err, errlen) : CAP_ERR;
		if (rc != 0) {
			while (n_open > i + 1)
				fclose(fps[--n_open]);
			return rc == CAP_EUSAGE ? 2 : 1;
		}
	}
	return 0;
}

static int64_t wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* The sensor's health while it runs: built on the analyzer's side (cap_live_hooks), where
 * the analyzer and the sinks may be touched. */
struct health {
	struct sink **sinks;
	int n_sinks;
	struct an *an;
	struct cap *cap; /* for runs.drops each interval */
	const struct rec_run *run; /* the parts fixed at start */
	int live;
	int64_t started;      /* wall */
	uint64_t last_packets; /* at the previous record: lag only while packets arrive */
	const char *metrics_file;
	int metrics_said;
};

static void health_fill(struct health *h, const struct cap_stats *cs, struct dbtap_stats *s)
{
	memset(s, 0, sizeof *s);
	s->wall_us = wall_us();
	s->uptime_us = s->wall_us - h->started;
	s->cap = *cs;
	an_get_stats(h->an, &s->an);
	sink_sqlite_get_stats(h->sinks[0], &s->db);
	s->json_dropped = g_json ? g_json->dropped : 0;
	s->syslog_dropped = g_syslog ? g_syslog->dropped : 0;
	if (h->live && cs->last_ts && cs->packets > h->last_packets)
		s->lag_us = s->wall_us - cs->last_ts;
	h->last_packets = cs->packets;
	stats_total_drops(s);
}

static void run_counters(struct rec_run *run, const struct dbtap_stats *s)
{
	if (s->cap.first_ts) /* packet times; wall clock until the first packet */
		run->started_at = s->cap.first_ts;
	run->packets = (int64_t)s->cap.packets;
	run->bytes = (int64_t)s->cap.bytes;
	run->kernel_drops = (int64_t)s->cap.kernel_drops;
	run->sensor_drops = (int64_t)s->sensor_drops;
	run->streams = (int64_t)s->cap.streams;
}

static void health_metrics(struct health *h, const struct dbtap_stats *s)
{
	char err[512];
	if (!h->metrics_file)
		return;
	if (stats_write_metrics(s, h->metrics_file, h->run->source, h->started, err, sizeof err) != 0) {
		if (!h->metrics_said)
			fprintf(stderr, "dbtap: --metrics-file: %s\n", err);
		h->metrics_said = 1;
	} else {
		h->metrics_said = 0;
	}
}

/* Every stats_interval_s: stderr (never silenced), the --json "stats" event, the runs row
 * (committed now, so a kill -9 loses at most one interval), the metrics file, systemd. */
static void on_stats(void *ctx, const struct cap_stats *cs)
{
	struct health *h = ctx;
	struct dbtap_stats s;
	health_fill(h, cs, &s);
	char line[512];
	stats_line(&s, h->run->source, line, sizeof line);
	fprintf(stderr, "%s\n", line);
	char *js = stats_json(&s);
	struct rec_stats rs = { .ts = s.wall_us, .run_id = h->run->id, .counters = js };
	struct rec r = { .type = REC_STATS, .u.stats = &rs };
	for (int i = 1; i < h->n_sinks; i++)
		sink_put(h->sinks[i], &r);
	struct rec_run run = *h->run;
	run_counters(&run, &s);
	run.status = "running";
	run.stats = js;
	run.stats_at = s.wall_us;
	/* the drop breakdown too, so a kill -9 leaves at most one interval unrecorded */
	char drops[2048];
	char *cj = h->cap ? cap_stats_json(h->cap) : NULL;
	stats_drops_json(drops, sizeof drops, cj, &s.an, s.db.dropped + s.json_dropped + s.syslog_dropped);
	free(cj);
	run.drops = drops;
	struct rec rr = { .type = REC_RUN, .u.run = &run };
	if (sink_put(h->sinks[0], &rr) == 0)
		sink_flush(h->sinks[0]);
	for (int i = 1; i < h->n_sinks; i++)
		sink_flush(h->sinks[i]);
	health_metrics(h, &s);
	char status[600];
	snprintf(status, sizeof status, "STATUS=%s", line + 7);
	sd_notify(0, status);
	free(js);
}

static void on_watchdog(void *ctx)
{
	(void)ctx;
	sd_notify(0, "WATCHDOG=1");
}

static void on_ready(void *ctx)
{
	(void)ctx;
	sd_notify(0, "READY=1\nSTATUS=capturing");
}

/* A capture that failed for want of rights says which ones. */
static void capture_hint(char *err, size_t len, const char *drop_user)
{
	if (!strstr(err, "not permitted") && !strstr(err, "ermission denied"))
		return;
	size_t n = strlen(err);
	snprintf(err + n, len - n, " (capturing needs CAP_NET_RAW and CAP_NET_ADMIN: run as root, "
				   "or give the binary or unit those capabilities%s)",
		 drop_user ? "" : "; add -Z USER to drop them once the interface is open");
}

/* The database must stay writable after -Z drops root. */
static void chown_outputs(const char *db, const char *json, const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return;
	const char *suffix[] = { "", "-wal", "-shm" };
	char p[4096];
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", db, suffix[i]);
		if (chown(p, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT)
			fprintf(stderr, "dbtap: warning: cannot chown %s: %s%s\n", p, strerror(errno),
				errno == EPERM ? " (-Z needs CAP_CHOWN to hand its files to USER)" : "");
	}
	if (json && strcmp(json, "-") != 0 && chown(json, pw->pw_uid, pw->pw_gid) != 0)
		fprintf(stderr, "dbtap: warning: cannot chown %s: %s%s\n", json, strerror(errno),
			errno == EPERM ? " (-Z needs CAP_CHOWN to hand its files to USER)" : "");
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	int prc = parse_run(argc, argv, &o);
	if (prc != 0)
		return prc > 0 ? 0 : 2;
	char err[1024] = "";
	struct dbtap_config cfg;
	dbtap_config_defaults(&cfg);
	if (o.config && dbtap_config_load(&cfg, o.config, err, sizeof err) != 0) {
		fprintf(stderr, "dbtap: %s\n", err);
		dbtap_config_free(&cfg);
		return 2;
	}
	cfg.an.learn = o.learn;
	const char *json_path = o.json ? o.json : cfg.json_path;
	const char *fmt_name = o.json_format ? o.json_format : cfg.json_format ? cfg.json_format : "dbtap";
	int json_format = strcmp(fmt_name, "ocsf") == 0; /* enum evl_format */
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = 0;
	const char *sensor = o.sensor ? o.sensor : cfg.sensor ? cfg.sensor : host[0] ? host : "dbtap";
	if (o.check_config) {
		/* a run would fail on these at once (exit 1); checked here as configuration */
		const char *syslog_url = o.syslog ? o.syslog : cfg.syslog;
		if (check_outputs(&o, json_path, err, sizeof err) != 0 ||
		    (syslog_url && sink_syslog_check(syslog_url, err, sizeof err) != 0)) {
			fprintf(stderr, "dbtap: %s\n", err);
			dbtap_config_free(&cfg);
			return 2;
		}
		print_effective(&o, &cfg, json_path, fmt_name, sensor);
		dbtap_config_free(&cfg);
		return 0;
	}

	int status = 0, said = 0;
	struct sink *sinks[3] = { NULL, NULL, NULL };
	int n_sinks = 0;
	struct an *an = NULL;
	struct cap *cap = NULL;
	struct sink_ids ids;
	memset(&ids, 0, sizeof ids);
	/* The run row: written at start, closed at the end even after a failure. */
	struct rec_run run;
	memset(&run, 0, sizeof run);
	struct rec rr = { .type = REC_RUN, .u.run = &run };
	int run_started = 0;
	char source[4200] = "";
	int64_t t_start = wall_us();
	struct health health = { .sinks = sinks, .run = &run, .live = o.iface != NULL,
				 .started = t_start, .metrics_file = o.metrics_file };
	uint64_t wd_us = 0;
	struct cap_live_hooks hooks = { .on_hup = reopen_json, .quiet = o.quiet, .ctx = &health,
					.on_stats = on_stats, .on_watchdog = on_watchdog,
					.on_ready = on_ready };
	if (sd_watchdog_enabled(0, &wd_us) > 0)
		hooks.watchdog_us = (int64_t)wd_us;

	/* From here a SIGTERM (systemd stopping a slow start) is a stop request: the capture
	 * loop does not begin, and the run still ends with its row closed and its line. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cfg.retention_us > 0 && access(o.db, F_OK) == 0) {
		int64_t deleted = 0;
		if (report_prune_db(o.db, wall_us() - cfg.retention_us, 0, &deleted, err, sizeof err) != 0) {
			fprintf(stderr, "dbtap: %s\n", err);
			status = 1;
			goto out;
		}
	}
	sinks[0] = sink_sqlite_open(o.db, cfg.batch_rows, &ids, err, sizeof err);
	if (!sinks[0]) {
		fprintf(stderr, "dbtap: %s\n", err);
		status = 1;
		goto out;
	}
	n_sinks = 1;
	if (cfg.spill && sink_sqlite_set_spill(sinks[0], cfg.spill, (int64_t)cfg.spill_max_mb << 20, &ids, err,
					       sizeof err) != 0) {
		fprintf(stderr, "dbtap: %s\n", err);
		status = 1;
		goto out;
	}
	int64_t stale = 0;
	if (report_close_stale(o.db, &stale, err, sizeof err) != 0)
		fprintf(stderr, "dbtap: warning: %s\n", err);
	else if (stale > 0)
		fprintf(stderr, "dbtap: %lld earlier run(s) of this host stopped without closing; marked failed\n",
			(long long)stale);
	/* Offline reads wait for the writer (that only slows the read); live capture
	 * never waits on disk and counts what it had to drop. */
	sink_sqlite_set_wait(sinks[0], o.iface == NULL);
	if (json_path) {
		sinks[1] = sink_json_open(json_path, err, sizeof err);
		if (!sinks[1]) {
			fprintf(stderr, "dbtap: %s\n", err);
			status = 1;
			goto out;
		}
		g_json = sinks[1];
		n_sinks = 2;
		sink_json_set_format(sinks[1], json_format, sensor);
	}
	const char *syslog_url = o.syslog ? o.syslog : cfg.syslog;
	if (syslog_url) {
		sinks[n_sinks] = sink_syslog_open(syslog_url, json_format, sensor, err, sizeof err);
		if (!sinks[n_sinks]) {
			fprintf(stderr, "dbtap: %s\n", err);
			status = 2;
			goto out;
		}
		g_syslog = sinks[n_sinks];
		n_sinks++;
	}

	if (o.iface)
		snprintf(source, sizeof source, "iface:%s", o.iface);
	else if (o.n_files == 1)
		snprintf(source, sizeof source, "file:%s", o.files[0]);
	else
		snprintf(source, sizeof source, "file:%s (+%d more)", o.files[0], o.n_files - 1);
	run.id = ids.run;
	run.started_at = run.sensor_started_at = t_start;
	run.source = source;
	run.version = DBTAP_VERSION;
	run.config = cfg.effective;
	run.sensor = sensor;
	run.status = "running";
	run.stats_interval_s = cfg.cap.stats_interval_s;
	run.pid = (int64_t)getpid();
	run.host = host[0] ? host : NULL;
	for (int i = 0; i < n_sinks; i++)
		if (sink_put(sinks[i], &rr) != 0) {
			status = sink_failed(sinks[i], &said);
			goto out;
		}
	run_started = 1;

	an = an_new(&cfg.an, sinks, n_sinks, &ids, run.id);
	health.an = an;
	health.n_sinks = n_sinks;
	if (!an) {
		fprintf(stderr, "dbtap: analyzer: out of memory\n");
		status = 1;
		goto out;
	}
	if (an_baseline_open(an, o.db, err, sizeof err) != 0) {
		fprintf(stderr, "dbtap: %s\n", err);
		said = 1; /* one line: closing the run on the same full disk would add another */
		status = 1;
		goto out;
	}
	/* issue #18: sessions saved by an earlier run resume; a bad row is a warning, not a stop */
	if (an_state_open(an, o.db, err, sizeof err) != 0)
		fprintf(stderr, "dbtap: warning: %s\n", err);
	cfg.cap.fanout_group = o.fanout;
	cap = cap_new(&cfg.cap, an, o.iface != NULL, err, sizeof err);
	health.cap = cap;
	if (!cap) {
		fprintf(stderr, "dbtap: %s\n", err);
		said = 1;
		status = cfg.cap.n_checksum_bypass >= 0 && strstr(err, "config:") ? 2 : 1;
		goto out;
	}

	if (o.drop_user)
		chown_outputs(o.db, json_path, o.drop_user);
	if (o.iface) {
		int rc = cap_live(cap, o.iface, o.bpf, o.drop_user, &hooks, err, sizeof err);
		if (rc != 0) {
			capture_hint(err, sizeof err, o.drop_user);
			fprintf(stderr, "dbtap: %s\n", err);
			said = 1;
			status = rc == CAP_EUSAGE ? 2 : 1;
		}
	} else {
		cap_set_hooks(cap, &hooks);
		on_ready(NULL);
		if ((status = read_files(cap, &o, err, sizeof err)) != 0) {
			fprintf(stderr, "dbtap: %s\n", err);
			said = 1;
		}
	}
	sd_notify(0, "STOPPING=1");
	cap_finish(cap);

out:;
	struct cap_stats cs;
	memset(&cs, 0, sizeof cs);
	struct an_stats as;
	memset(&as, 0, sizeof as);
	char *cap_json = NULL;
	if (cap) {
		cap_get_stats(cap, &cs);
		cap_json = cap_stats_json(cap);
	}
	if (an) {
		an_get_stats(an, &as);
		an_free(an); /* flushes pending statements and sessions */
	}
	if (run_started) {
		/* Everything put so far is stored or counted before the run row is closed. */
		uint64_t sink_dropped = 0;
		for (int i = 0; i < n_sinks; i++) {
			/* An error the analyzer's put() saw (and could only count) is still in
			 * errmsg: rows were lost, so the run failed. */
			if (sink_sync(sinks[i]) != 0 || sinks[i]->errmsg[0])
				status = sink_failed(sinks[i], &said);
			sink_dropped += sinks[i]->dropped;
		}
		char drops[2048];
		stats_drops_json(drops, sizeof drops, cap_json, &as, sink_dropped);
		struct dbtap_stats fs;
		memset(&fs, 0, sizeof fs);
		fs.wall_us = wall_us();
		fs.uptime_us = fs.wall_us - t_start;
		fs.cap = cs;
		fs.an = as;
		sink_sqlite_get_stats(sinks[0], &fs.db);
		fs.json_dropped = g_json ? g_json->dropped : 0;
		fs.syslog_dropped = g_syslog ? g_syslog->dropped : 0;
		stats_total_drops(&fs);
		char *js = stats_json(&fs);
		run.ended_at = fs.wall_us;
		if (cs.first_ts)
			run.ended_at = cs.last_ts;
		run_counters(&run, &fs);
		run.drops = drops;
		run.sensor_stopped_at = fs.wall_us;
		run.stats = js;
		run.stats_at = fs.wall_us;
		run.status = status == 0 ? "ok" : "failed";
		if (status != 0)
			run.error = err[0] ? err : sinks[0]->errmsg[0] ? sinks[0]->errmsg : "failed";
		for (int i = 0; i < n_sinks; i++)
			if (sink_put(sinks[i], &rr) != 0 || sink_sync(sinks[i]) != 0) {
				status = sink_failed(sinks[i], &said);
				run.status = "failed";
			}
		health_metrics(&health, &fs);
		/* One closing line when the run ends well (end of files, SIGINT/SIGTERM); a
		 * failure's closing line is its one-line error. */
		double secs = (double)fs.uptime_us / 1e6;
		if (status == 0)
			fprintf(stderr,
			"dbtap: %s done after %.1f s: %llu packets (%.0f/s), %llu sessions, %llu statements, "
			"%llu findings, drops %llu kernel %llu sensor, %llu gaps\n",
			source, secs, (unsigned long long)cs.packets,
			secs > 0 ? (double)cs.packets / secs : 0.0, (unsigned long long)as.sessions,
			(unsigned long long)as.statements, (unsigned long long)as.findings,
			(unsigned long long)cs.kernel_drops, (unsigned long long)fs.sensor_drops,
			(unsigned long long)cs.gaps);
		free(js);
	}
	for (int i = 0; i < n_sinks; i++)
		sink_close(sinks[i]);
	free(cap_json);
	cap_free(cap);
	dbtap_config_free(&cfg);
	return status;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *db = "./dbtap.db";
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'h':
			fputs("usage: dbtap status [-d DB]\n"
			      "The sensors writing to a findings database: source, host, pid, uptime, last stats,\n"
			      "alive (a stats record newer than two stats intervals) or not.\n"
			      "  -d, --db=DB   findings database (default ./dbtap.db)\n"
			      "  -h, --help    this help\n"
			      "Exit status: 0 when at least one sensor runs and all are alive, 1 otherwise,\n"
			      "2 usage error.\n",
			      stdout);
			return 0;
		case ':':
			usage_error("status", "%s needs a value", argv[optind - 1]);
			return 2;
		default:
			usage_error("status", "unknown option '%s'", bad_option(argv));
			return 2;
		}
	}
	if (optind < argc) {
		usage_error("status", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	char err[1024];
	int rc = report_status(db, stdout, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "dbtap status: %s\n", err);
		return 1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0 || strcmp(cmd, "prune") == 0)
		return report_main(argc - 1, argv + 1);
	if (strcmp(cmd, "findings") == 0)
		return findings_main(argc - 1, argv + 1);
	if (strcmp(cmd, "baseline") == 0)
		return baseline_main(argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("dbtap %s\n", DBTAP_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		if (argc > 2 && strcmp(cmd, "help") == 0) { /* dbtap help COMMAND */
			static char help_opt[] = "--help";
			char *sub[] = { argv[0], argv[2], help_opt, NULL };
			return main(3, sub);
		}
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "dbtap: unknown command '%s' (commands: run, report, findings, prune, baseline, status, "
			"version; see: dbtap --help)\n", cmd);
	return 2;
}
