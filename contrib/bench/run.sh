#!/bin/sh
# dbtap benchmark (issue #9): builds dbtap (release, own build dir) and the libpcap floor
# loop, installs the load generators if missing, then runs bench.py, which makes the
# captures with real servers and prints the table. Not part of meson test. Run as root:
#   contrib/bench/run.sh [--full] [--reps N] [--out DIR] [--captures DIR] [--no-live] ...
# (all options are bench.py's; default sizes take ~1.5 min; --full = the issue's sizes, ~15 min
# on 2 cores: 2 to make the captures, most of the rest tshark and pt-query-digest)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${DBTAP_BENCH_BUILD:-$root/build-bench}

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: needs root (servers run as their own users; tcpdump/tcpreplay on lo)" >&2
	exit 2
fi
missing=""
for tool in pgbench sysbench tshark tcpreplay tcpdump pt-query-digest; do
	command -v $tool >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	pkgs=$(echo "$missing" | sed 's/pgbench/postgresql-client-15/; s/pt-query-digest/percona-toolkit/')
	echo "run.sh: installing$pkgs" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >/dev/null 2>&1 ||
		echo "run.sh: could not install some of:$pkgs (their rows are skipped)" >&2
fi

if [ ! -f "$build/build.ninja" ]; then
	(cd "$root" && meson setup "$build" -Dbuildtype=release -Ddebug=true >/dev/null)
fi
ninja -C "$build" capture/dbtap >/dev/null
cc -O2 -Wall -Wextra -o "$build/pcap_count" "$here/pcap_count.c" -lpcap
cc -O2 -Wall -Wextra -o "$build/nids_count" "$here/nids_count.c" -lnids -lpcap

# Debian's interpreter: dbtest.py and sqlite3 come from it.
exec /usr/bin/python3 "$here/bench.py" --dbtap "$build/capture/dbtap" \
	--pcap-count "$build/pcap_count" --nids-count "$build/nids_count" "$@"
