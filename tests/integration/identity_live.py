"""Issue #18, restart without forgetting, live: `dbtap run -i lo` sees a psycopg2 pool
connection log in and set its end user, is stopped with SIGTERM in the middle of the
connection's life, and started again; the statements sent after the restart must be on the
same session row, with its identity and the end user set before the restart (source
session_variable, as it was); no password in the database. (Protocol-level prepared
statements across a restart: identity.py, on the node pg / mysql2 capture cut in two.)"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
import psycopg2  # noqa: E402

c = dbtest.Checks()
pg = dbtest.Postgres()
pg.sql("CREATE ROLE app_svc LOGIN PASSWORD 'Live-Svc-Secret-18'")
pg.sql("CREATE DATABASE shop OWNER app_svc")
pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'pen');"
       "ALTER TABLE items OWNER TO app_svc", db='shop')
tmp = tempfile.mkdtemp(prefix='dbtap-idlive-')
db = os.path.join(tmp, 'live.db')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    f.write('{"ports": {"postgresql": [%d]}, "keep_literals": true, "service_accounts": ["app_svc"]}' % pg.port)


def sensor():
    p = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', cfg,
                          '-f', f'tcp port {pg.port}', '-q'], stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    c.check(p.poll() is None, 'dbtap is capturing on lo')
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
    c.eq(p.returncode, 0, f'dbtap stopped cleanly on SIGTERM ({p.stderr.read().strip()})')


proc = sensor()
conn = psycopg2.connect(host='127.0.0.1', port=pg.port, user='app_svc', password='Live-Svc-Secret-18',
                        dbname='shop', application_name='pool-live')
conn.autocommit = True
cur = conn.cursor()
cur.execute("SET app.end_user = 'olga'")
cur.execute("PREPARE by_id (int) AS SELECT name FROM items WHERE id = $1")
cur.execute("EXECUTE by_id (1)")
cur.execute("SELECT 'before restart'")
time.sleep(1.0)
stop(proc)
saved = dbtest.rows(db, 'SELECT session_id FROM session_state')
c.eq(len(saved), 1, 'the open connection\'s state is saved at SIGTERM')
cur.execute("SELECT 'while stopped'")  # the sensor sees nothing of this
proc = sensor()
cur.execute("SELECT 'after restart'")
cur.execute("EXECUTE by_id (1)")
time.sleep(1.0)
conn.close()
time.sleep(0.5)
stop(proc)

sess = dbtest.rows(db, 'SELECT * FROM sessions ORDER BY id')
c.eq(len(sess), 1, 'one session row for the connection across the restart')
s = sess[0] if sess else {}
c.eq((s.get('db_user'), s.get('database'), s.get('application'), s.get('restored'), s.get('end_reason')),
     ('app_svc', 'shop', 'pool-live', 1, 'close'), 'identity kept, restored once, ended by the close')
st = dbtest.rows(db, 'SELECT session_id, end_user, end_user_source, sql FROM statements ORDER BY id')
after = [r for r in st if r['sql'] == "SELECT 'after restart'"]
c.check(len(after) == 1 and after[0]['end_user'] == 'olga' and after[0]['end_user_source'] == 'session_variable',
        f'after the restart the end user is still olga from session_variable: {after}')
c.check(all(r['session_id'] == s.get('id') for r in st), 'every statement on that row')
c.eq(dbtest.rows(db, 'SELECT count(*) AS n FROM session_state')[0]['n'], 0, 'the closed connection leaves no state')
dbtest.assert_secret_absent(c, 'Live-Svc-Secret-18', db)
c.done()
