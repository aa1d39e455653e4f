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
#include <sys/time.h>
#include <unistd.h>

#include "an.h"
#include "baseline_store.h"
#include "cap.h"
#include "config.h"
#include "dbtap_version.h"
#include "findings.h"
#include "report.h"
#include "sink.h"

#define MAX_FILES 1024

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dbtap run (-r FILE ... | -i IFACE) [-d DB] [-c CONFIG.json] [-f 'BPF'] [--json FILE|-]\n"
		"                 [--json-format dbtap|ocsf] [--syslog unix:PATH|udp://HOST:PORT|tcp://HOST:PORT]\n"
		"                 [--sensor NAME] [--learn] [-Z USER] [-q] [--fanout GROUP]\n"
		"       dbtap report [-d DB]... [--since ISO8601 | --last 24h] [--until ISO8601|now]\n"
		"                    [--format text|html|json[,...]] [-o FILE|DIR]\n"
		"       dbtap findings [-d DB] [--list] [--state S] [--kind K] [--json]\n"
		"       dbtap findings [-d DB] (--ack|--fp|--resolve|--reopen) GROUP [--note TEXT]\n"
		"       dbtap prune [-d DB]... --older-than 30d [--vacuum]\n"
		"       dbtap baseline [-d DB] (--list [--json] [PRINCIPAL] | --forget PRINCIPAL | --ack PRINCIPAL)\n"
		"       dbtap version\n");
}

struct run_opts {
	const char *files[MAX_FILES];
	int n_files;
	const char *iface, *db, *config, *bpf, *json, *drop_user;
	const char *json_format, *sensor, *syslog;
	int learn, quiet;
	int fanout; /* PACKET_FANOUT group, 0 = none */
};

static struct sink *g_json; /* reopened on SIGHUP */

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

static int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "json", required_argument, NULL, 'J' },
		{ "learn", no_argument, NULL, 'L' },
		{ "fanout", required_argument, NULL, 'F' },
		{ "json-format", required_argument, NULL, 'j' },
		{ "sensor", required_argument, NULL, 'S' },
		{ "syslog", required_argument, NULL, 'Y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->db = "./dbtap.db";
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "r:i:d:c:f:Z:qh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (o->n_files >= MAX_FILES) {
				fprintf(stderr, "dbtap: at most %d -r files\n", MAX_FILES);
				return -1;
			}
			o->files[o->n_files++] = optarg;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'd':
			o->db = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->bpf = optarg;
			break;
		case 'J':
			o->json = optarg;
			break;
		case 'j':
			if (strcmp(optarg, "dbtap") != 0 && strcmp(optarg, "ocsf") != 0) {
				fprintf(stderr, "dbtap: --json-format: dbtap or ocsf, not '%s'\n", optarg);
				return -1;
			}
			o->json_format = optarg;
			break;
		case 'S':
			if (!optarg[0]) {
				fprintf(stderr, "dbtap: --sensor: a name, not empty\n");
				return -1;
			}
			o->sensor = optarg;
			break;
		case 'Y':
			o->syslog = optarg;
			break;
		case 'L':
			o->learn = 1;
			break;
		case 'Z':
			o->drop_user = optarg;
			break;
		case 'F': {
			char *end;
			long g = strtol(optarg, &end, 10);
			if (end == optarg || *end || g < 1 || g > 65535) {
				fprintf(stderr, "dbtap: --fanout: a group number from 1 to 65535, not '%s'\n", optarg);
				return -1;
			}
			o->fanout = (int)g;
			break;
		}
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dbtap: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if ((o->n_files > 0) == (o->iface != NULL)) {
		fprintf(stderr, "dbtap: run needs either -r FILE... or -i IFACE\n");
		return -1;
	}
	if (o->fanout && !o->iface) {
		fprintf(stderr, "dbtap: --fanout needs -i IFACE\n");
		return -1;
	}
	if (o->drop_user && !getpwnam(o->drop_user)) {
		fprintf(stderr, "dbtap: -Z %s: no such user\n", o->drop_user);
		return -1;
	}
	return 0;
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
			fprintf(stderr, "dbtap: warning: cannot chown %s: %s\n", p, strerror(errno));
	}
	if (json && strcmp(json, "-") != 0 && chown(json, pw->pw_uid, pw->pw_gid) != 0)
		fprintf(stderr, "dbtap: warning: cannot chown %s: %s\n", json, strerror(errno));
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	if (parse_run(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
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
	const char *sensor = o.sensor ? o.sensor : cfg.sensor;
	if (!sensor) {
		if (gethostname(host, sizeof host - 1) != 0 || !host[0])
			snprintf(host, sizeof host, "dbtap");
		sensor = host;
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
	char source[4200];

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
		n_sinks++;
	}

	if (o.iface)
		snprintf(source, sizeof source, "iface:%s", o.iface);
	else if (o.n_files == 1)
		snprintf(source, sizeof source, "file:%s", o.files[0]);
	else
		snprintf(source, sizeof source, "file:%s (+%d more)", o.files[0], o.n_files - 1);
	run.id = ids.run;
	run.started_at = wall_us();
	run.source = source;
	run.version = DBTAP_VERSION;
	run.config = cfg.effective;
	run.sensor = sensor;
	for (int i = 0; i < n_sinks; i++)
		if (sink_put(sinks[i], &rr) != 0) {
			status = sink_failed(sinks[i], &said);
			goto out;
		}
	run_started = 1;

	an = an_new(&cfg.an, sinks, n_sinks, &ids, run.id);
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
	if (!cap) {
		fprintf(stderr, "dbtap: %s\n", err);
		said = 1;
		status = cfg.cap.n_checksum_bypass >= 0 && strstr(err, "config:") ? 2 : 1;
		goto out;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o.drop_user)
		chown_outputs(o.db, json_path, o.drop_user);
	if (o.iface) {
		struct cap_live_hooks hooks = { .on_hup = reopen_json, .quiet = o.quiet };
		int rc = cap_live(cap, o.iface, o.bpf, o.drop_user, &hooks, err, sizeof err);
		if (rc != 0) {
			fprintf(stderr, "dbtap: %s\n", err);
			said = 1;
			status = rc == CAP_EUSAGE ? 2 : 1;
		}
	} else if ((status = read_files(cap, &o, err, sizeof err)) != 0) {
		fprintf(stderr, "dbtap: %s\n", err);
		said = 1;
	}
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
		size_t cl = cap_json ? strlen(cap_json) : 0;
		snprintf(drops, sizeof drops,
			 "%.*s%s\"sessions_evicted\":%llu,\"statements_dropped\":%llu,"
			 "\"statements_skipped\":%llu,\"sql_truncated\":%llu,\"sink_dropped\":%llu,"
			 "\"baseline_dropped\":%llu,\"baseline_errors\":%llu,\"sessions_parked\":%llu,"
			 "\"sessions_resumed\":%llu,\"sessions_restored\":%llu,\"parked_evicted\":%llu,"
			 "\"prepared_dropped\":%llu,\"state_rejected\":%llu,\"pooler_joined\":%llu,"
			 "\"pooler_own\":%llu,\"pooler_unmatched\":%llu,\"pooler_ambiguous\":%llu,"
			 "\"pooler_dropped\":%llu}",
			 cl > 1 ? (int)(cl - 1) : 1, cap_json ? cap_json : "{", cl > 2 ? "," : "",
			 (unsigned long long)as.sessions_evicted, (unsigned long long)as.pending_dropped,
			 (unsigned long long)as.statements_skipped, (unsigned long long)as.sql_truncated,
			 (unsigned long long)sink_dropped, (unsigned long long)as.baseline_dropped,
			 (unsigned long long)as.baseline_errors, (unsigned long long)as.sessions_parked,
			 (unsigned long long)as.sessions_resumed, (unsigned long long)as.sessions_restored,
			 (unsigned long long)as.parked_evicted, (unsigned long long)as.prepared_dropped,
			 (unsigned long long)as.state_rejected, (unsigned long long)as.pooler_joined,
			 (unsigned long long)as.pooler_own, (unsigned long long)as.pooler_unmatched,
			 (unsigned long long)as.pooler_ambiguous, (unsigned long long)as.pooler_dropped);
		run.ended_at = wall_us();
		if (cs.first_ts) {
			run.started_at = cs.first_ts;
			run.ended_at = cs.last_ts;
		}
		run.packets = (int64_t)cs.packets;
		run.bytes = (int64_t)cs.bytes;
		run.kernel_drops = (int64_t)cs.kernel_drops;
		run.sensor_drops = (int64_t)(cs.sensor_drops + as.sessions_evicted + as.pending_dropped +
					     sink_dropped);
		run.streams = (int64_t)cs.streams;
		run.drops = drops;
		for (int i = 0; i < n_sinks; i++)
			if (sink_put(sinks[i], &rr) != 0 || sink_sync(sinks[i]) != 0)
				status = sink_failed(sinks[i], &said);
	}
	for (int i = 0; i < n_sinks; i++)
		sink_close(sinks[i]);
	free(cap_json);
	cap_free(cap);
	dbtap_config_free(&cfg);
	return status;
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
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("dbtap %s\n", DBTAP_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "dbtap: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
