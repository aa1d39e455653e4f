#!/bin/sh
# Build dbtap and run it on the bundled sample capture (no database server needed).
# Installs missing build dependencies with apt (as root), writes demo.db, prints a summary.
# A failed step prints its own output and leaves no half-made build folder behind.
set -eu
cd "$(dirname "$0")/.."
contrib/deps.sh build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A folder without build.ninja is what an interrupted or failed setup leaves: start over.
[ -f build/build.ninja ] || rm -rf build
if [ ! -d build ]; then
	# The test suites need Criterion, which the quick start does not install.
	if ! meson setup build --buildtype=debugoptimized -Dtests=disabled >"$log" 2>&1; then
		cat "$log" >&2
		rm -rf build
		echo "dbtap: quickstart: 'meson setup build' failed (above); nothing was left in build/" >&2
		exit 1
	fi
fi
if ! ninja -C build capture/dbtap >"$log" 2>&1; then
	cat "$log" >&2
	echo "dbtap: quickstart: the build failed (above)" >&2
	exit 1
fi
rm -f demo.db demo.db-wal demo.db-shm
./build/capture/dbtap run -q -r contrib/samples/pg-sample.pcap -d demo.db
echo "== sessions"
sqlite3 -header -column demo.db \
  "SELECT id, protocol, client_ip, db_user, database, application, auth_method, login, statements, errors FROM sessions ORDER BY id"
echo "== statements (first 12)"
sqlite3 -header -column demo.db \
  "SELECT session_id, end_user, verb, outcome, rows, substr(sql, 1, 60) AS sql FROM statements ORDER BY id LIMIT 12"
echo "== findings"
sqlite3 -header -column demo.db \
  "SELECT kind, severity, db_user, end_user, summary FROM findings ORDER BY id"
echo
echo "demo.db written; try: sqlite3 demo.db 'SELECT * FROM findings'  or  ./build/capture/dbtap report -d demo.db"
