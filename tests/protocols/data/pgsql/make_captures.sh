#!/bin/bash
# Makes the PostgreSQL decoder's own test captures (*.pcap here) against a private
# PostgreSQL 15 on loopback, then derives one .segs file per TCP flow with pcap2segs.py.
# Run as root: bash tests/protocols/data/pgsql/make_captures.sh   (needs postgresql-15,
# tcpdump, python3-psycopg2, python3-psycopg, openssl; see contrib/test.sh)
# Afterwards refresh the golden event files and review their diff:
#   DBTAP_UPDATE_GOLDEN=1 DBTAP_SRC=$PWD build/tests/test_pgsql --filter 'pgsql/own_captures*'
# The fuzz seed corpus (tests/fuzz/corpus/fuzz_pgsql) is rebuilt from the .segs at the end.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PORT=${PG_CAPTURE_PORT:-54329}     # private port; never the system cluster's 5432
PY=/usr/bin/python3                # Debian's, where python3-psycopg* are installed
TMP=$(mktemp -d /tmp/dbtap-pgcap-XXXXXX)
chmod 755 "$TMP"
chown postgres:postgres "$TMP"
DATA=$TMP/data
TCPDUMP_PID=

cleanup() {
	[ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -keyout "$DATA/server.key" \
	-out "$DATA/server.crt" >/dev/null 2>&1
chown postgres:postgres "$DATA/server.key" "$DATA/server.crt"
chmod 600 "$DATA/server.key"
cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
fsync = off
ssl = on
password_encryption = 'scram-sha-256'
wal_level = logical
EOF
# One login method per role, so one capture shows them all.
cat >"$DATA/pg_hba.conf" <<EOF
local all all trust
host all u_trust 127.0.0.1/32 trust
host all u_pass 127.0.0.1/32 password
host all u_md5 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -l "$TMP/log" -w start >/dev/null

su_sql() { runuser -u postgres -- psql -h "$TMP" -p "$PORT" -qAtX -v ON_ERROR_STOP=1 "$@"; }
su_sql -c "CREATE ROLE u_trust LOGIN; CREATE ROLE u_pass LOGIN PASSWORD 'pass-Secret-1';
	SET password_encryption = 'md5'; CREATE ROLE u_md5 LOGIN PASSWORD 'md5-Secret-2';
	RESET password_encryption; CREATE ROLE app LOGIN PASSWORD 'app-Secret-3';
	CREATE ROLE u_repl LOGIN REPLICATION PASSWORD 'repl-Secret-4';"
su_sql -c "CREATE DATABASE shop OWNER app"
su_sql -d shop -c "SET ROLE app; CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2),
	added date, seen timestamptz, tags jsonb, uid uuid, blob bytea, ok bool, f8 float8);
	INSERT INTO items SELECT g, 'item' || g, g * 1.25, date '2024-01-01' + g,
	timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', '{\"k\": 1}', NULL, '\\x00ff', g % 2 = 0, g / 3.0
	FROM generate_series(1, 40) g;"
# pgbench's tables are made over the socket, so the bulk COPY of -i stays out of the captures.
runuser -u postgres -- pgbench -h "$TMP" -p "$PORT" -i -s 1 -q shop >/dev/null 2>&1
su_sql -d shop -c "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;"

capture_start() {
	tcpdump -i lo -U -s 0 -w "$HERE/$1.pcap" "tcp port $PORT" >/dev/null 2>"$TMP/tcpdump.err" &
	TCPDUMP_PID=$!
	for _ in $(seq 100); do # wait until it really listens
		grep -q 'listening on' "$TMP/tcpdump.err" 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.5
}
capture_stop() {
	sleep 1
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" 2>/dev/null || true
	TCPDUMP_PID=
}
cpsql() { # user password [psql args...]: psql over TCP, as a real client
	local u=$1 p=$2
	shift 2
	PGPASSWORD=$p PGSSLMODE=${SSLMODE:-disable} psql -h 127.0.0.1 -p "$PORT" -U "$u" -X -q "$@" || true
}

# 1. Authentication: trust, password (cleartext), md5, scram-sha-256, a wrong password,
#    a missing database, and a TLS session (sslmode=require).
capture_start auth
cpsql u_trust '' -d postgres -c "SELECT 1"
cpsql u_pass 'pass-Secret-1' -d postgres -c "SELECT 2"
cpsql u_md5 'md5-Secret-2' -d postgres -c "SELECT 3"
cpsql app 'app-Secret-3' -d shop -c "SELECT 4"
cpsql app 'wrong-password' -d shop -c "SELECT 5" 2>/dev/null
cpsql app 'app-Secret-3' -d no_such_db -c "SELECT 6" 2>/dev/null
SSLMODE=require cpsql app 'app-Secret-3' -d shop -c "SELECT 7"
capture_stop

# 2. Simple protocol: psql scripts (several statements in one Query, an error, notices,
#    LISTEN/NOTIFY, an empty query, large-object fast-path calls) and psycopg2.
capture_start simple
cpsql app 'app-Secret-3' -d shop <<'EOF'
SELECT id, name FROM items WHERE id < 4;
UPDATE items SET name = 'renamed' WHERE id = 2;
SELECT 1; SELECT 2 UNION SELECT 3; INSERT INTO items (id, name) VALUES (1000, 'x');
SELECT * FROM no_such_table;
BEGIN;
SELECT 1/0;
ROLLBACK;
DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$;
LISTEN chan;
NOTIFY chan, 'payload';
SET application_name = 'renamed_app';
;
\lo_import /etc/hostname
DELETE FROM items WHERE id = 1000;
EOF
PGPASSWORD='app-Secret-3' $PY - "$PORT" <<'EOF'
import sys, threading, time, psycopg2
conn = psycopg2.connect(host='127.0.0.1', port=int(sys.argv[1]), user='app', dbname='shop',
                        password='app-Secret-3', sslmode='disable', application_name='py2')
cur = conn.cursor()
cur.execute("SELECT name, price FROM items WHERE id = %s AND name <> %s", (5, "it's"))
cur.fetchall()
cur.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (2000, 'py'))
conn.commit()
cur.execute("DELETE FROM items WHERE id = %s", (2000,))
conn.commit()
# a query cancelled from a second connection (CancelRequest)
def cancel():
    time.sleep(0.5)
    conn.cancel()
t = threading.Thread(target=cancel)
t.start()
try:
    cur.execute("SELECT pg_sleep(5)")
except psycopg2.Error:
    conn.rollback()
t.join()
conn.close()
EOF
capture_stop

# 3. Extended protocol: psycopg 3 with server-side $n parameters in text and binary,
#    named prepared statements reused, and a pipeline with an error in the middle.
capture_start extended
PGPASSWORD='app-Secret-3' $PY - "$PORT" <<'EOF'
import sys, datetime, decimal, uuid, psycopg
from psycopg.types.json import Jsonb
conn = psycopg.connect(host='127.0.0.1', port=int(sys.argv[1]), user='app', dbname='shop',
                       password='app-Secret-3', sslmode='disable', autocommit=True)
cur = conn.cursor()
cur.execute("SELECT id, name FROM items WHERE id = %s AND name LIKE %s", (3, 'item%'))
cur.fetchall()
cur.execute("SELECT %b::int2, %b::int4, %b::int8, %b::float8, %b::numeric, %b::text, %b::bytea,"
            " %b::uuid, %b::date, %b::timestamp, %b::timestamptz, %b::bool, %b::jsonb, %b::float4",
            (7, 70000, 9000000000, 2.5, decimal.Decimal('-1234.5678'), "t'ext", b'\x00\x01\xfe',
             uuid.UUID('12345678-1234-5678-1234-567812345678'), datetime.date(2024, 2, 29),
             datetime.datetime(2024, 3, 1, 12, 30, 15, 250000),
             datetime.datetime(2024, 3, 1, 12, 30, 15, tzinfo=datetime.timezone.utc), True,
             Jsonb({"a": [1, 2]}), 0.5))
cur.fetchall()
cur.execute("SELECT %b::int4 + 1, %s::text", (None, None))
for i in range(4):
    cur.execute("SELECT name FROM items WHERE id = %s", (i + 10,), prepare=True)
    cur.fetchall()
cur.execute("UPDATE items SET price = price + %s WHERE id = %s", (decimal.Decimal('0.01'), 11))
# libpq pipeline mode, all four sent before any answer is read, so the capture does
# not depend on timing: the server answers the first, fails the second, skips the rest.
from psycopg import pq
pg = conn.pgconn
pg.enter_pipeline_mode()
for q, p in [(b"INSERT INTO items (id, name) VALUES ($1, $2)", [b"3000", b"pipe"]),
             (b"SELECT 1 / $1", [b"0"]),
             (b"INSERT INTO items (id, name) VALUES ($1, $2)", [b"3001", b"skipped"]),
             (b"SELECT $1", [b"1"])]:
    pg.send_query_params(q, p)
pg.pipeline_sync()
while pg.flush() != 0:
    pass
while True:
    r = pg.get_result()
    if r is not None and r.status == pq.ExecStatus.PIPELINE_SYNC:
        break
pg.exit_pipeline_mode()
with conn.cursor(name='big') as named:
    conn.autocommit = False
    named.itersize = 15
    named.execute("SELECT id FROM items ORDER BY id")
    named.fetchall()
    conn.commit()
conn.close()
EOF
capture_stop

# 4. pgbench in extended and prepared mode (few transactions: keep it small).
capture_start pgbench
PGPASSWORD='app-Secret-3' PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$PORT" -U app -n -M extended -t 3 -c 1 shop >/dev/null
PGPASSWORD='app-Secret-3' PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$PORT" -U app -n -M prepared -t 3 -c 1 shop >/dev/null
capture_stop

# 5. COPY in and out (text and binary), a COPY that fails, and a replication connection.
capture_start copy
cpsql app 'app-Secret-3' -d shop <<'EOF'
CREATE TEMP TABLE t (a int, b text);
COPY t FROM STDIN;
1	one
2	two
3	three
\.
COPY t TO STDOUT;
COPY (SELECT id, name FROM items WHERE id <= 10) TO STDOUT WITH (FORMAT binary);
COPY t FROM STDIN;
x	not a number
\.
SELECT count(*) FROM t;
EOF
cpsql u_repl 'repl-Secret-4' -d "dbname=shop replication=database" -c "IDENTIFY_SYSTEM"
capture_stop

for f in auth simple extended pgbench copy; do
	rm -f "$HERE/$f".*.segs
	for i in $(seq 0 20); do
		out="$HERE/$f.$i.segs"
		$PY "$SRC/tests/tools/pcap2segs.py" "$HERE/$f.pcap" "$PORT" "$i" >"$out"
		if ! grep -q '^[CS]' "$out"; then
			rm -f "$out"
			break
		fi
	done
done
# Fuzz seeds: flags byte, split byte, then [2-byte dir|len][bytes] records (fuzz_pgsql.c).
SEEDS="$SRC/tests/fuzz/corpus/fuzz_pgsql"
mkdir -p "$SEEDS"
rm -f "$SEEDS"/*
$PY - "$HERE" "$SEEDS" <<'EOF'
import glob, os, struct, sys
here, out = sys.argv[1], sys.argv[2]
def seed(name, segs, flags, split):
    b = bytearray([flags, split])
    for d, data in segs:
        for i in range(0, max(len(data), 1), 32767):
            part = data[i:i + 32767]
            b += struct.pack('>H', (0x8000 if d == 'S' else 0) | len(part)) + part
    open(os.path.join(out, name), 'wb').write(bytes(b))
for f in sorted(glob.glob(os.path.join(here, '*.segs'))):
    segs = [(l[0], bytes.fromhex(l[2:].strip())) for l in open(f) if l[:1] in 'CS']
    base = os.path.basename(f)[:-5]
    seed(base, segs, 0, 0)
    seed(base + '-mid-split', segs[3:], 1, 13)
    seed(base + '-gap', segs, 2, 5)
EOF
ls -l "$HERE"
