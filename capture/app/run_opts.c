/* `dbtap run`'s options (run_opts.h): parsing, output checks, --check-config. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto.h"
#include "run_opts.h"

static const char run_help[] =
	"usage: dbtap run (-r FILE ... | -i IFACE) [OPTIONS]\n"
	"Capture PostgreSQL and MySQL traffic, decode, attribute, detect; store in SQLite.\n"
	"  -r, --read=FILE          read a pcap/pcapng file ('-' = stdin); several are one capture\n"
	"  -i, --interface=IFACE    capture live (needs CAP_NET_RAW and CAP_NET_ADMIN, or root)\n"
	"  -d, --db=DB              findings database (default ./dbtap.db)\n"
	"  -c, --config=FILE        JSON configuration (every key optional; see dbtap.example.json)\n"
	"  -f, --filter=BPF         capture filter (default: TCP on the configured ports)\n"
	"      --json=FILE|-        also write JSON lines (sessions, statements, findings, stats)\n"
	"      --json-format=FORMAT dbtap (default: dbtap's own lines, schema_version 2) or ocsf\n"
	"                           (OCSF 1.3); for --json and --syslog\n"
	"      --syslog=URL         also send every line to unix:PATH, udp://HOST:PORT or\n"
	"                           tcp://HOST:PORT (RFC 5424)\n"
	"      --sensor=NAME        this sensor's name on runs rows and lines (default: host name)\n"
	"      --learn              record the baseline without raising baseline findings\n"
	"  -Z, --user=USER          drop root and every capability once the capture is open\n"
	"  -q, --quiet              no progress line on a terminal (stats lines stay)\n"
	"      --fanout=GROUP       live, Linux: join PACKET_FANOUT group 1-65535\n"
	"      --metrics-file=FILE  Prometheus text file, rewritten every stats interval\n"
	"      --check-config       check the options and configuration, print the effective\n"
	"                           configuration and exit (0 valid, 2 not)\n"
	"  -h, --help               this help\n"
	"Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n";

/* The option getopt_long refused: a short one by its letter (it may sit in a group). */
const char *bad_option(char **argv)
{
	static char s[3];
	if (optopt > 0 && optopt < 256) {
		s[0] = '-';
		s[1] = (char)optopt;
		return s;
	}
	return argv[optind - 1];
}

/* A usage error of a command: what is wrong and where the options are listed. */
int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "dbtap %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see: dbtap %s --help)\n", cmd);
	return -1;
}

/* 0, 1 after --help, -1 after a usage error (already said). */
int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "read", required_argument, NULL, 'r' },
		{ "interface", required_argument, NULL, 'i' },
		{ "db", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "filter", required_argument, NULL, 'f' },
		{ "user", required_argument, NULL, 'Z' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'J' },
		{ "learn", no_argument, NULL, 'L' },
		{ "fanout", required_argument, NULL, 'F' },
		{ "json-format", required_argument, NULL, 'j' },
		{ "sensor", required_argument, NULL, 'S' },
		{ "syslog", required_argument, NULL, 'Y' },
		{ "metrics-file", required_argument, NULL, 'M' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->db = "./dbtap.db";
	int ch;
	optind = 1;
	opterr = 0; /* our own messages, each naming the fix */
	while ((ch = getopt_long(argc, argv, ":r:i:d:c:f:Z:qh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (o->n_files >= MAX_FILES)
				return usage_error("run", "at most %s -r files", "1024");
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
			if (strcmp(optarg, "dbtap") != 0 && strcmp(optarg, "ocsf") != 0)
				return usage_error("run", "--json-format: dbtap or ocsf, not '%s'", optarg);
			o->json_format = optarg;
			break;
		case 'S':
			if (!optarg[0])
				return usage_error("run", "--sensor: a name, not empty%s", "");
			o->sensor = optarg;
			break;
		case 'Y':
			o->syslog = optarg;
			break;
		case 'L':
			o->learn = 1;
			break;
		case 'M':
			o->metrics_file = optarg;
			break;
		case 'C':
			o->check_config = 1;
			break;
		case 'Z':
			o->drop_user = optarg;
			break;
		case 'F': {
			char *end;
			long g = strtol(optarg, &end, 10);
			if (end == optarg || *end || g < 1 || g > 65535)
				return usage_error("run", "--fanout: a group number from 1 to 65535, not '%s'", optarg);
			o->fanout = (int)g;
			break;
		}
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			fputs(run_help, stdout);
			return 1;
		case ':':
			return usage_error("run", "%s needs a value", argv[optind - 1]);
		default:
			return usage_error("run", "unknown option '%s'", bad_option(argv));
		}
	}
	if (optind < argc)
		return usage_error("run", "unexpected argument '%s'", argv[optind]);
	if (o->n_files > 0 && o->iface)
		return usage_error("run", "-r FILE and -i IFACE exclude each other%s", "");
	if (!o->check_config && !o->n_files && !o->iface)
		return usage_error("run", "say what to read: -r FILE... or -i IFACE%s", "");
	if (o->fanout && !o->iface)
		return usage_error("run", "--fanout needs -i IFACE%s", "");
	if (o->drop_user && !getpwnam(o->drop_user))
		return usage_error("run", "-Z %s: no such user", o->drop_user);
	return 0;
}

/* The directory of an output file must exist (a typo there is a configuration error,
 * found before the capture starts, not after). */
static int dir_exists(const char *what, const char *path, char *err, size_t errlen)
{
	if (!path || strcmp(path, "-") == 0)
		return 0;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s %.400s: directory %.400s does not exist", what, path, dir);
		return -1;
	}
	return 0;
}

int check_outputs(const struct run_opts *o, const char *json_path, char *err, size_t errlen)
{
	return dir_exists(o->json ? "--json" : "config: output.json:", json_path, err, errlen) ||
	       dir_exists("-d", o->db, err, errlen) ||
	       dir_exists("--metrics-file", o->metrics_file, err, errlen);
}

static void print_ports(const char *name, const int *p, int n, int last)
{
	printf("    \"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? ", " : "", p[i]);
	printf("]%s\n", last ? "" : ",");
}

static void print_str(const char *key, const char *v, const char *comma)
{
	printf("  \"%s\": ", key);
	if (!v) {
		printf("null%s\n", comma);
		return;
	}
	putchar('"');
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\"%s\n", comma);
}

/* --check-config: what this run would use. Capture and output keys with their values
 * (defaults filled in); the analyzer's keys as the file gives them, the others at their
 * documented defaults (contrib/dbtap.example.json). */
void print_effective(const struct run_opts *o, const struct dbtap_config *c, const char *json_path,
			    const char *json_format, const char *sensor)
{
	const struct cap_config *k = &c->cap;
	printf("{\n");
	print_str("db", o->db, ",");
	print_str("config", o->config, ",");
	print_str("json", json_path, ",");
	print_str("json_format", json_format, ",");
	print_str("syslog", o->syslog ? o->syslog : c->syslog, ",");
	print_str("sensor", sensor, ",");
	print_str("metrics_file", o->metrics_file, ",");
	print_str("user", o->drop_user, ",");
	printf("  \"learn\": %s,\n", o->learn ? "true" : "false");
	printf("  \"ports\": {\n");
	for (int i = 0; i < PROTO_MAX && proto_registry[i]; i++)
		print_ports(proto_registry[i]->name, k->ports[i].port, k->ports[i].n,
			    i + 1 == PROTO_MAX || !proto_registry[i + 1]);
	printf("  },\n  \"capture\": {\n");
	printf("    \"probe_other_ports\": %s,\n", k->probe_other_ports ? "true" : "false");
	printf("    \"max_flows\": %d,\n    \"max_held_mb\": %d,\n", k->max_flows, k->max_held_mb);
	printf("    \"idle_timeout_s\": %d,\n    \"gap_timeout_ms\": %d,\n", k->idle_timeout_s, k->gap_timeout_ms);
	printf("    \"gap_max_packets\": %d,\n    \"ipv6_addresses\": %d,\n", k->gap_max_packets, k->v6_map_size);
	printf("    \"kernel_buffer_mb\": %d,\n    \"stats_interval_s\": %d,\n", k->kernel_buffer_mb,
	       k->stats_interval_s);
	if (k->n_checksum_bypass < 0) {
		printf("    \"checksum_bypass\": \"default\",\n");
	} else {
		printf("    \"checksum_bypass\": [");
		for (int i = 0; i < k->n_checksum_bypass; i++)
			printf("%s\"%s\"", i ? ", " : "", k->checksum_bypass[i]);
		printf("],\n");
	}
	printf("    \"decoder_thread\": %s,\n", k->decoder_thread < 0 ? "\"auto\"" : k->decoder_thread ? "true" : "false");
	printf("    \"analyzer_thread\": %s\n  },\n", k->analyzer_thread < 0 ? "\"auto\"" : k->analyzer_thread ? "true" : "false");
	printf("  \"output\": { \"batch_rows\": %d, \"retention_s\": %lld },\n", c->batch_rows,
	       (long long)(c->retention_us / 1000000));
	printf("  \"file\": %s\n}\n", c->effective ? c->effective : "{}");
}
