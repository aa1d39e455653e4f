#!/usr/bin/python3
"""Make the identity captures of issue #18 against real servers (PostgreSQL 15, MariaDB) on
loopback, with real clients: psycopg2 and pymysql for the marker resets, node `pg` (named
prepared statements) and `mysql2` (server-side prepared statements) for a pool whose
connections idle past the idle timeout. Run as root from anywhere:
    /usr/bin/python3 tests/integration/data/identity/make_captures.py
It rewrites resets.pcap, pool_idle.pcap and pool_idle.json (the time to split the pool
capture at, in the middle of its idle period) beside itself."""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..'))
import dbtest  # noqa: E402

import psycopg2  # noqa: E402
import pymysql  # noqa: E402
from pymysql.constants import CLIENT  # noqa: E402

dbtest.need_root()
pg = dbtest.Postgres()
my = dbtest.MariaDB()
pg.sql("CREATE ROLE app_svc LOGIN PASSWORD 'Svc-Secret-18'")
pg.sql("CREATE ROLE auditor")
pg.sql("GRANT auditor TO app_svc")
pg.sql("CREATE DATABASE shop OWNER app_svc")
pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'pen'), (2, 'ink');"
       "CREATE TABLE tmp_import (x int); ALTER TABLE items OWNER TO app_svc; ALTER TABLE tmp_import OWNER TO app_svc",
       db='shop')
my.sql("CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, name text);"
       "INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink'); CREATE TABLE shop.tmp_import (x int);"
       "CREATE USER 'app_svc'@'%' IDENTIFIED BY 'My-Svc-18'; GRANT ALL ON shop.* TO 'app_svc'@'%';"
       "CREATE USER 'bob'@'%' IDENTIFIED BY 'Bob-Secret-18'; GRANT ALL ON shop.* TO 'bob'@'%'")

PG_RESETS = ["RESET app.end_user", "RESET ALL", "DISCARD ALL", "SET app.end_user TO DEFAULT",
             "SELECT set_config('app.end_user', '', false)", "SELECT set_config('app.end_user', NULL, false)"]
MY_RESETS = ["SET @app_user = NULL", "SET @app_user = ''", "SET @app_user = DEFAULT"]


def pg_resets():
    c = psycopg2.connect(host='127.0.0.1', port=pg.port, user='app_svc', password='Svc-Secret-18', dbname='shop',
                         application_name='shop-web')
    c.autocommit = True
    cur = c.cursor()
    for i, r in enumerate(PG_RESETS):
        cur.execute(f"SET app.end_user = 'pg_u{i}'")
        cur.execute(f"SELECT 'probe pg {i}'")
        cur.execute(r)
        cur.execute(f"SELECT 'after pg {i}'")
    # transaction scope: ROLLBACK, and an error aborting the transaction
    cur.execute("BEGIN")
    cur.execute("SELECT set_config('app.end_user', 'pg_t1', true)")
    cur.execute("SELECT 'probe pg t1'")
    cur.execute("ROLLBACK")
    cur.execute("SELECT 'after pg t1'")
    cur.execute("BEGIN")
    cur.execute("SET LOCAL app.end_user = 'pg_t2'")
    cur.execute("SELECT 'probe pg t2'")
    try:
        cur.execute("SELECT 1/0")
    except psycopg2.Error:
        pass
    cur.execute("ROLLBACK")
    cur.execute("SELECT 'after pg t2'")
    # a session SET inside a transaction that rolls back is undone
    cur.execute("SET app.end_user = 'pg_keep'")
    cur.execute("BEGIN")
    cur.execute("SET app.end_user = 'pg_t3'")
    cur.execute("SELECT 'probe pg t3'")
    cur.execute("ROLLBACK")
    cur.execute("SELECT 'after pg t3'")
    # a failed SET (the transaction is aborted): nobody is named after it
    cur.execute("SET app.end_user = 'pg_f1'")
    cur.execute("SELECT 'probe pg f1'")
    cur.execute("BEGIN")
    try:
        cur.execute("SELECT 1/0")
    except psycopg2.Error:
        pass
    try:
        cur.execute("SET app.end_user = 'pg_other'")
    except psycopg2.Error:
        pass
    cur.execute("ROLLBACK")
    cur.execute("SELECT 'after pg f1'")
    # roles
    cur.execute("SET ROLE auditor")
    cur.execute("RESET ROLE")
    cur.execute("SET ROLE auditor")
    cur.execute("SET SESSION AUTHORIZATION DEFAULT")
    # a stacked injection under the application's comment
    cur.execute("/*app_user='mallory',route='%2Fsearch'*/ SELECT name FROM items WHERE name = 'x'; "
                "DROP TABLE tmp_import;-- -'")
    cur.execute("SELECT 'after pg stacked'")
    c.close()


def my_resets():
    c = pymysql.connect(host='127.0.0.1', port=my.port, user='app_svc', password='My-Svc-18', database='shop',
                        autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
    cur = c.cursor()
    for i, r in enumerate(MY_RESETS):
        cur.execute(f"SET @app_user = 'my_u{i}'")
        cur.execute(f"SELECT 'probe my {i}'")
        try:
            cur.execute(r)
        except pymysql.Error:
            pass
        cur.execute(f"SELECT 'after my {i}'")
    # COM_RESET_CONNECTION (0x1f)
    cur.execute("SET @app_user = 'my_r'")
    cur.execute("SELECT 'probe my r'")
    c._execute_command(0x1f, b'')
    c._read_ok_packet()
    cur.execute("SELECT 'after my r'")
    # a stacked injection under the application's comment
    cur.execute("SET @app_user = 'my_s'")
    cur.execute("/*app_user='mallory'*/ SELECT name FROM items WHERE name = 'x'; DROP TABLE tmp_import;-- -'")
    while cur.nextset():
        pass
    cur.execute("SET @app_user = NULL")
    c.close()


def node_setup(tmp):
    d = os.path.join(tmp, 'node')
    os.makedirs(d)
    subprocess.run('npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund pg mysql2 >/dev/null 2>&1',
                   shell=True, cwd=d, check=True)
    return d


def my_change_user_js(d):
    js = os.path.join(d, 'cu.js')
    with open(js, 'w') as f:
        f.write("""
const mysql = require('mysql2/promise');
(async () => {
  const c = await mysql.createConnection({host: '127.0.0.1', port: %d, user: 'app_svc', password: 'My-Svc-18',
    database: 'shop'});
  await c.query("SET @app_user = 'my_c'");
  await c.query("SELECT 'probe my c'");
  await c.changeUser({user: 'bob', password: 'Bob-Secret-18', database: 'shop'});
  await c.query("SELECT 'after my c'");
  await c.end();
})().catch(e => { console.error(e.message); process.exit(1); });
""" % my.port)
    subprocess.run(['node', js], check=True, cwd=d, timeout=60)


POOL_JS = """
const { Client } = require('pg');
const mysql = require('mysql2/promise');
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  const p = new Client({host: '127.0.0.1', port: %(pg)d, user: 'app_svc', password: 'Svc-Secret-18',
    database: 'shop', application_name: 'pool-web'});
  await p.connect();
  const m = await mysql.createConnection({host: '127.0.0.1', port: %(my)d, user: 'app_svc', password: 'My-Svc-18',
    database: 'shop', connectAttributes: {program_name: 'pool-web'}});
  const beat = new Client({host: '127.0.0.1', port: %(pg)d, user: 'app_svc', password: 'Svc-Secret-18',
    database: 'shop', application_name: 'heartbeat'});
  await beat.connect();
  async function request(n, user) {
    await p.query("SET app.end_user = '" + user + "'");
    await p.query({name: 'item_by_id', text: 'SELECT name FROM items WHERE id = $1', values: [n]});
    await p.query({name: 'item_names', text: 'SELECT name FROM items WHERE name <> $1', values: ['zzz']});
    await p.query('RESET app.end_user');
    await m.query("SET @app_user = '" + user + "'");
    await m.execute('SELECT name FROM items WHERE id = ?', [n]);
    await m.execute('SELECT name FROM items WHERE name <> ?', ['zzz']);
    await m.query('SET @app_user = NULL');
  }
  await request(1, 'ann');
  await request(2, 'ben');
  // idle: only the heartbeat speaks, for longer than the test's idle timeout (3 s)
  for (let i = 0; i < 16; i++) { await beat.query('SELECT 1'); await sleep(500); }
  await request(1, 'cat');
  await request(2, 'dan');
  await beat.end(); await p.end(); await m.end();
})().catch(e => { console.error(e.message); process.exit(1); });
"""


tmp = tempfile.mkdtemp(prefix='dbtap-identity-cap-')
nd = node_setup(tmp)
out = os.path.join(tmp, 'resets.pcap')
with dbtest.Capture(out, [pg.port, my.port]):
    pg_resets()
    my_resets()
    my_change_user_js(nd)
os.replace(out, os.path.join(HERE, 'resets.pcap'))

js = os.path.join(nd, 'pool.js')
with open(js, 'w') as f:
    f.write(POOL_JS % {'pg': pg.port, 'my': my.port})
out = os.path.join(tmp, 'pool_idle.pcap')
with dbtest.Capture(out, [pg.port, my.port]):
    t0 = time.time()
    subprocess.run(['node', js], check=True, cwd=nd, timeout=120)
os.replace(out, os.path.join(HERE, 'pool_idle.pcap'))
with open(os.path.join(HERE, 'pool_idle.json'), 'w') as f:
    # seconds after the first packet where a restart is simulated: mid idle period
    json.dump({'split_after_s': 4.5, 'idle_timeout_s': 3, 'pg_port': pg.port, 'my_port': my.port}, f)
print('ok: resets.pcap, pool_idle.pcap')
