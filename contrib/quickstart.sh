#!/bin/sh
# Build dbtap and run it on the bundled sample capture (no database server needed).
# Installs missing build dependencies with apt (as root), writes demo.db, prints a summary.
set -eu
cd "$(dirname "$0")/.."
contrib/deps.sh build
[ -d build ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build capture/dbtap >/dev/null
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
