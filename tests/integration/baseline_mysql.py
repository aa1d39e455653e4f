"""Learned baseline on MySQL traffic (a private MariaDB 10.11, pymysql and the mariadb client):
learn day 1 with --learn, judge day 2 and a late capture; new_query_shape, new_application
(program_name) and off_hours fire exactly where expected, and a known shape plus a UNION is
stronger injection evidence, as on PostgreSQL.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402
import baseline_pcap  # noqa: E402

dbtest.need_root()
try:
    import pymysql
except ImportError:
    dbtest.skip('python3-pymysql is not installed (contrib/deps.sh installs it)')

PW = 'My-Shop-Pw-7'
KINDS = ('new_query_shape', 'new_client', 'new_application', 'off_hours', 'sql_injection')
tmp = tempfile.mkdtemp(prefix='dbtap-blmy-')
my = dbtest.MariaDB()
my.sql("CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, name text, price int);"
       "INSERT INTO shop.items VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);"
       "CREATE TABLE shop.users (id int PRIMARY KEY, login text);"
       f"CREATE USER 'shop'@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON shop.* TO 'shop'@'%'")


def conn():
    return pymysql.connect(host='127.0.0.1', port=my.port, user='shop', password=PW, database='shop',
                           program_name='shopweb', autocommit=True)


def app(seed, n=10):
    c = conn()
    cur = c.cursor()
    for i in range(n):
        cur.execute('SELECT name, price FROM items WHERE id = %s', ((seed + i) % 3 + 1,))
        cur.fetchall()
        cur.execute('UPDATE items SET price = %s WHERE id = %s', (seed + i, (seed + i) % 3 + 1))
    c.close()


def day2():
    app(5)
    c = conn()
    cur = c.cursor()
    cur.execute('SELECT login FROM users WHERE id = %s', (1,))            # a new shape
    cur.fetchall()
    cur.execute('SELECT name, price FROM items WHERE id = 1 UNION SELECT @@version, 2')  # known shape + UNION
    cur.fetchall()
    c.close()
    my.client('shop', PW, 'SELECT name, price FROM items WHERE id = 2;', db='shop')  # the mariadb client


def capture(name, body, start):
    raw, out = os.path.join(tmp, name + '.raw.pcap'), os.path.join(tmp, name + '.pcap')
    with dbtest.Capture(raw, [my.port]):
        body()
    baseline_pcap.retime(raw, out, start)
    return out


d1 = capture('d1', lambda: app(0), '2026-11-02T10:00:00Z')
d2 = capture('d2', day2, '2026-11-03T10:00:00Z')
d3 = capture('d3', lambda: app(9, n=2), '2026-11-03T22:15:00Z')
my.stop()

c = dbtest.Checks()
db = os.path.join(tmp, 'my.db')
cfg = {'ports': {'mysql': [my.port]}}
dbtest.run_dbtap(d1, db, config=cfg, extra=['--learn'])
c.eq(dbtest.rows(db, 'SELECT count(*) AS n FROM findings')[0]['n'], 0, '--learn: no findings')
apps = {r['item'] for r in dbtest.rows(db, "SELECT item FROM baseline WHERE kind='application' AND principal='shop'")}
c.eq(apps, {'shopweb'}, 'program_name learned as the application')
dbtest.run_dbtap([d2, d3], db, config=cfg)
fs = dbtest.rows(db, 'SELECT * FROM findings WHERE run_id = 2 AND kind IN (%s) ORDER BY id' % ','.join('?' * len(KINDS)),
                 KINDS)
got = sorted((f['kind'], f['application'], json.loads(f['evidence'])['signal']) for f in fs)
c.check(('new_application', 'mysql', 'new_application') in got or ('new_application', 'mariadb', 'new_application') in got,
        f'the mariadb client is a new application: {got}')
cli = [g for g in got if g[1] != 'shopweb']
cli_app = cli[0][1] if cli else None
want = sorted([
    ('new_query_shape', 'shopweb', 'new_shape'),      # SELECT login FROM users ...
    ('new_query_shape', 'shopweb', 'new_shape'),      # the UNION shape
    ('sql_injection', 'shopweb', 'union_select'),
    ('new_application', cli_app, 'new_application'),
    ('off_hours', 'shopweb', 'new_hour'),
])
# shapes are per application: every statement shape of the client is new (how many the
# client sends on its own, e.g. @@version_comment, depends on its version)
cli_shapes = [g for g in got if g[:2] == ('new_query_shape', cli_app)]
c.check(len(cli_shapes) >= 1, f'the client application\'s shapes are new ({len(cli_shapes)})')
c.eq([g for g in got if g[:2] != ('new_query_shape', cli_app)], want, 'day 2 on MySQL: each kind exactly where expected')
inj = [json.loads(f['evidence']) | {'severity': f['severity']} for f in fs if f['kind'] == 'sql_injection']
c.check(len(inj) == 1 and inj[0].get('baseline_shape') and inj[0]['severity'] == 'critical',
        'known MySQL shape + UNION SELECT @@version: baseline_shape, critical')
shutil.rmtree(tmp, ignore_errors=True)
c.done()
