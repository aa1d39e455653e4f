#!/bin/bash
# Makes the MySQL decoder's own test captures: a private MariaDB (Debian's mariadb-server)
# on a loopback port, real clients (mariadb CLI, python3-pymysql, node mysql2), each
# scenario captured with tcpdump into its own small pcap, then turned into .segs.
# Run as root from anywhere: tests/protocols/data/mysql/make_captures.sh
# Needs: mariadb-server mariadb-client python3-pymysql sysbench tcpdump openssl nodejs npm.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../../.." && pwd)
PORT=${MY_CAPTURE_PORT:-33071}
TMP=$(mktemp -d /tmp/dbtap-mycap.XXXXXX)
chmod 755 "$TMP"
DATA=$TMP/data
RUN=$TMP/run
SOCK=$RUN/mysqld.sock
PY=/usr/bin/python3
MYPID=

cleanup() {
	[ -n "$MYPID" ] && kill "$MYPID" 2>/dev/null && wait "$MYPID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# --- private server with TLS material ---
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
	-days 2 -subj /CN=localhost >/dev/null 2>&1
mkdir -p "$RUN"
chown mysql "$TMP/key.pem" "$TMP/cert.pem" "$RUN"
mariadb-install-db --user=mysql --datadir="$DATA" --auth-root-authentication-method=socket \
	>/dev/null 2>&1
mariadbd --user=mysql --datadir="$DATA" --port="$PORT" --bind-address=127.0.0.1 \
	--socket="$SOCK" --pid-file="$RUN/mysqld.pid" --skip-name-resolve --log-error="$RUN/err.log" \
	--ssl-cert="$TMP/cert.pem" --ssl-key="$TMP/key.pem" --local-infile=1 &
MYPID=$!
for _ in $(seq 50); do
	mariadb -S "$SOCK" -uroot -e 'select 1' >/dev/null 2>&1 && break
	sleep 0.2
done
mariadb -S "$SOCK" -uroot <<'SQL'
CREATE DATABASE shop;
CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret-1';
GRANT ALL ON shop.* TO 'app'@'%';
CREATE USER 'alice'@'%' IDENTIFIED BY 'alice-secret-2';
GRANT SELECT ON shop.* TO 'alice'@'%';
INSTALL SONAME 'auth_ed25519';
CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret-3');
GRANT SELECT ON shop.* TO 'ed'@'%';
CREATE TABLE shop.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), price DECIMAL(10,2),
  qty SMALLINT, weight DOUBLE, added DATETIME(6), day DATE, t TIME, blobby BLOB, doc JSON);
INSERT INTO shop.items (name, price, qty, weight, added, day, t) VALUES
  ('pen', 1.50, 10, 0.02, '2026-11-27 09:15:02.123456', '2026-11-27', '09:15:02'),
  ('book', 12.00, 3, 0.5, '2026-11-26 10:00:00', '2026-11-26', '10:00:00'),
  ('lamp', 30.25, 1, 2.25, NULL, NULL, NULL);
SQL

capture() { # name, then the client command
	local name=$1
	shift
	tcpdump -i lo -U -s 0 -w "$TMP/$name.pcap" "tcp port $PORT" >/dev/null 2>&1 &
	local tp=$!
	sleep 1
	"$@" || true
	sleep 1
	kill -INT $tp
	wait $tp || true
	cp "$TMP/$name.pcap" "$HERE/$name.pcap"
}

CLI=(mariadb -h 127.0.0.1 -P "$PORT" --skip-ssl)

# 1. mariadb CLI: login, queries, an error, USE (COM_INIT_DB), multi-statements, a transaction.
cli_session() {
	"${CLI[@]}" --force -uapp -papp-secret-1 shop <<'SQL'
SELECT id, name, price FROM items ORDER BY id;
SELECT * FROM no_such_table;
USE mysql;
USE shop;
BEGIN;
UPDATE items SET qty = qty + 1 WHERE id = 1;
COMMIT;
DELIMITER //
SELECT 1 AS a; SELECT 2 AS b, 'two' AS c; UPDATE items SET qty = qty WHERE id < 3//
DELIMITER ;
SELECT name FROM items WHERE name LIKE 'p%';
SQL
}
capture cli cli_session

# 2. Wrong password: ERR 1045.
capture wrongpw "${CLI[@]}" -uapp -pnot-the-password shop -e 'select 1'

# 3. Compressed protocol (zlib), with a result big enough to be compressed.
capture compress "${CLI[@]}" --compress -uapp -papp-secret-1 shop \
	-e "SELECT name, REPEAT(name, 200) AS big FROM items; SELECT COUNT(*) FROM items"

# 4. TLS: SSLRequest, then nothing visible.
capture tls mariadb -h 127.0.0.1 -P "$PORT" --ssl --skip-ssl-verify-server-cert -uapp -papp-secret-1 shop -e 'select 1'

# 5. ed25519 authentication.
capture ed25519 "${CLI[@]}" -ued -ped-secret-3 shop -e 'select count(*) from items'

# 5b. A client that offers mysql_clear_password first: the password crosses in clear.
capture cleartext "${CLI[@]}" --default-auth=mysql_clear_password -uapp -papp-secret-1 shop -e 'select 2'

# 6. PyMySQL: COM_QUERY, multi-statements, LOCAL INFILE, an error, COM_PING.
printf '1\tfile-row\n2\tfile-row2\n' >"$TMP/rows.tsv"
cat >"$TMP/py.py" <<PYEOF
import pymysql
from pymysql.constants import CLIENT
c = pymysql.connect(host='127.0.0.1', port=$PORT, user='app', password='app-secret-1',
                    database='shop', local_infile=True, client_flag=CLIENT.MULTI_STATEMENTS,
                    program_name='pytool')
cur = c.cursor()
cur.execute("SELECT id, name FROM items WHERE price > %s", (5,))
cur.fetchall()
cur.execute("CREATE TEMPORARY TABLE t1 (a INT, b VARCHAR(20))")
cur.execute("LOAD DATA LOCAL INFILE '$TMP/rows.tsv' INTO TABLE t1")
cur.execute("INSERT INTO t1 VALUES (3, 'x'); SELECT * FROM t1; DELETE FROM t1 WHERE a = 3")
while cur.nextset():
    pass
try:
    cur.execute("SELEKT 1")
except Exception:
    pass
c.ping()
c.close()
PYEOF
capture pymysql $PY "$TMP/py.py"

# 7. node mysql2: prepared statements with many parameter types, re-execute, COM_CHANGE_USER.
mkdir -p "$TMP/node"
(cd "$TMP/node" && npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund mysql2 >/dev/null 2>&1)
cat >"$TMP/node/run.js" <<JSEOF
const mysql = require('mysql2/promise');
(async () => {
  const c = await mysql.createConnection({host: '127.0.0.1', port: $PORT, user: 'app',
    password: 'app-secret-1', database: 'shop', supportBigNumbers: true,
    connectAttributes: {program_name: 'node-app', app_user: 'carol'}});
  await c.execute('SELECT id, name, price FROM items WHERE id > ? AND name <> ?', [0, 'zzz']);
  await c.execute('INSERT INTO items (name, price, qty, weight, added, day, t, blobby, doc) VALUES (?,?,?,?,?,?,?,?,?)',
    ['ink', '3.75', -7, 1.5e-3, new Date(Date.UTC(2026, 10, 27, 9, 15, 2, 123)), '2026-11-27', '23:59:58',
     Buffer.from([0, 1, 2, 255]), JSON.stringify({k: 'v'})]);
  await c.execute('SELECT ?, ?, ?, ?, ?', [null, 9007199254740993n, true, 2.5, 'text']);
  await c.execute('SELECT id, name, price FROM items WHERE id > ? AND name <> ?', [1, 'pen']);
  try { await c.execute('SELECT * FROM missing WHERE id = ?', [1]); } catch (e) {}
  await c.changeUser({user: 'alice', password: 'alice-secret-2', database: 'shop'});
  await c.query('SELECT CURRENT_USER()');
  try { await c.changeUser({user: 'alice', password: 'wrong'}); } catch (e) {}
  await c.end().catch(() => {});
})().catch(e => { console.error(e.message); process.exit(0); });
JSEOF
capture node node "$TMP/node/run.js"

# 8. sysbench OLTP read-only with server-side prepared statements (libmariadb binary protocol).
SB=(sysbench oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT"
	--mysql-user=app --mysql-password=app-secret-1 --mysql-db=shop --mysql-ssl=off
	--tables=1 --table-size=20 --threads=1)
"${SB[@]}" prepare >/dev/null
capture sysbench "${SB[@]}" --db-ps-mode=auto --events=2 --time=0 run

# Derive the decoder inputs.
for p in "$HERE"/*.pcap; do
	"$PY" "$SRC/tests/tools/pcap2segs.py" "$p" "$PORT" >"${p%.pcap}.segs"
done
echo "captures written to $HERE"
