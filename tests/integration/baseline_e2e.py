"""Learned baseline end to end (issue #7) with a real PostgreSQL 15 and real clients
(psycopg2): learn on day 1 (--learn), detect on day 2 and a late evening capture, and check
that new_query_shape, new_client, new_application, off_hours and the baseline-backed
sql_injection evidence fire exactly where expected and nowhere else; repeated runs are
deterministic; the baseline survives runs; require_ack, --ack, --forget, automatic learning
periods and time zones (fixed, TZ name, day boundary) behave as documented.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402
import baseline_pcap  # noqa: E402

dbtest.need_root()
try:
    import psycopg2
except ImportError:
    dbtest.skip('python3-psycopg2 is not installed (contrib/deps.sh installs it)')

BASELINE_KINDS = ('new_query_shape', 'new_client', 'new_application', 'off_hours')
PW = 'Shop-Pw-1'

tmp = tempfile.mkdtemp(prefix='dbtap-bl-')
os.chmod(tmp, 0o755)
pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256')])
pg.sql(f"CREATE ROLE shop LOGIN PASSWORD '{PW}'; CREATE ROLE ops LOGIN PASSWORD '{PW}';")
pg.sql("CREATE TABLE products(id int PRIMARY KEY, name text, price numeric);"
       "CREATE TABLE orders(id serial PRIMARY KEY, customer_id int, product_id int, qty int);"
       "CREATE TABLE customers(id int PRIMARY KEY, email text);"
       "INSERT INTO products SELECT g, 'p' || g, g * 1.5 FROM generate_series(1, 50) g;"
       "INSERT INTO customers SELECT g, 'c' || g || '@x' FROM generate_series(1, 20) g;"
       "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO shop, ops;"
       "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shop, ops;")


def connect(user='shop', app='shopweb', port=None):
    return psycopg2.connect(host='127.0.0.1', port=port or pg.port, user=user, password=PW,
                            dbname='postgres', application_name=app)


def web_requests(conn, seed, n=12):
    """The application: the same code paths every day, different parameters."""
    cur = conn.cursor()
    for i in range(n):
        user = ('alice', 'bob')[i % 2]
        tag = f"/*app_user='{user}'*/ "
        k = (seed * 7 + i) % 50 + 1
        cur.execute(tag + 'SELECT id, name, price FROM products WHERE price < %s ORDER BY id LIMIT 10', (k,))
        cur.fetchall()
        cur.execute(tag + 'SELECT name, price FROM products WHERE id = %s', (k,))
        cur.fetchall()
        cur.execute(tag + 'INSERT INTO orders(customer_id, product_id, qty) VALUES (%s, %s, %s)',
                    (k % 20 + 1, k, i + 1))
        cur.execute(tag + 'SELECT id, product_id, qty FROM orders WHERE customer_id = %s', (k % 20 + 1,))
        cur.fetchall()
        conn.commit()


def capture(name, body):
    path = os.path.join(tmp, name + '.raw.pcap')
    with dbtest.Capture(path, [pg.port]):
        body()
    return path


def day1():
    for s in range(3):
        c = connect()
        web_requests(c, s)
        c.close()


def day2():
    for s in range(3):
        c = connect()
        web_requests(c, s + 10)
        c.close()
    # A: a new shape reading a table the account never touched
    c = connect()
    cur = c.cursor()
    cur.execute("/*app_user='alice'*/ SELECT email FROM customers WHERE id = %s", (3,))
    cur.fetchall()
    # B: a known shape plus a tautology, pasted into the text (not bound)
    cur.execute("/*app_user='bob'*/ SELECT name, price FROM products WHERE id = 7 OR 1=1")
    cur.fetchall()
    c.commit()
    c.close()
    # C: the account from another application, twice
    for _ in range(2):
        c = connect(app='psql')
        c.autocommit = True
        cur = c.cursor()
        cur.execute('SELECT name, price FROM products WHERE id = %s', (5,))
        cur.fetchall()
        c.close()
    # D: the account from a new client address (relay binds 127.0.0.2), twice
    relay = baseline_pcap.Relay(pg.port, '127.0.0.2')
    for s in range(2):
        c = connect(port=relay.port)
        web_requests(c, s + 20, n=2)
        c.close()
    relay.close()
    # E: an account with no baseline at all: learned automatically, its findings held back
    c = connect(user='ops', app='opsreport')
    cur = c.cursor()
    cur.execute('SELECT count(*) FROM orders')
    cur.fetchall()
    cur.execute('SELECT id FROM products WHERE id = 1 OR 1=1')
    cur.fetchall()
    c.commit()
    c.close()


def late():
    c = connect()
    web_requests(c, 30, n=2)
    c.close()
    c = connect()
    web_requests(c, 31, n=1)
    c.close()
    c = connect(user='ops', app='opsreport')
    cur = c.cursor()
    cur.execute('SELECT count(*) FROM orders')
    cur.fetchall()
    c.commit()
    c.close()


raw1, raw2, raw3 = capture('d1', day1), capture('d2', day2), capture('d3', late)
d1, d2, d3 = (os.path.join(tmp, n + '.pcap') for n in ('d1', 'd2', 'd3'))
baseline_pcap.retime(raw1, d1, '2026-11-02T10:00:00Z')
baseline_pcap.retime(raw2, d2, '2026-11-03T10:00:00Z')
baseline_pcap.retime(raw3, d3, '2026-11-03T23:30:00Z')
pg.stop()

CFG = {'baseline': {'client_prefix_v4': 32}}
c = dbtest.Checks()


def findings(db, run=None, kinds=BASELINE_KINDS + ('sql_injection',)):
    q = 'SELECT * FROM findings WHERE kind IN (%s)' % ','.join('?' * len(kinds))
    args = list(kinds)
    if run is not None:
        q += ' AND run_id = ?'
        args.append(run)
    fs = dbtest.rows(db, q + ' ORDER BY id', args)
    for f in fs:
        f['ev'] = json.loads(f['evidence'] or '{}')
    return fs


def sig(f):
    return (f['kind'], f['db_user'], f['application'], f['client_ip'], f['ev'].get('signal'))


def baseline_cli(db, *args):
    return subprocess.run([dbtest.dbtap_binary(), 'baseline', '-d', db] + list(args),
                          capture_output=True, text=True, timeout=60)


# 1. learn on day 1
learned = os.path.join(tmp, 'learned.db')
dbtest.run_dbtap(d1, learned, config=CFG, extra=['--learn'])
c.eq(len(findings(learned, kinds=BASELINE_KINDS)), 0, '--learn raises no baseline findings')
bl = dbtest.rows(learned, "SELECT * FROM baseline WHERE scope='db_user' AND principal='shop'")
kinds = {(r['kind'], r['item']) for r in bl}
c.check(('application', 'shopweb') in kinds and ('client', '127.0.0.1') in kinds and
        ('subnet', '127.0.0.1/32') in kinds and ('hour', '10') in kinds,
        'day 1 baseline: application, client, subnet, hour of shop')
shapes = [r for r in bl if r['kind'] == 'shape']
c.check(len(shapes) >= 5 and all(r['application'] == 'shopweb' for r in shapes),
        f'shapes per (db_user, application): {len(shapes)}')
c.check(any('FROM products WHERE id = ?' in (r['detail'] or '') and r['rows_min'] == 1 and r['rows_max'] == 1
            for r in shapes), 'shape row has the normalised text and the rows range')
c.check({r['item'] for r in bl if r['kind'] == 'table'} == {'products', 'orders'}, 'tables touched by shop')
eu = dbtest.rows(learned, "SELECT kind, item FROM baseline WHERE scope='end_user' AND principal='alice'")
c.check(('table', 'orders') in {(r['kind'], r['item']) for r in eu} and any(r['kind'] == 'shape' for r in eu),
        'end user alice: fingerprints and tables')
p = dbtest.rows(learned, "SELECT * FROM baseline WHERE kind='principal' AND principal='shop'")[0]
c.check(p['learning_until'] <= p['last_seen'], 'a principal seen by --learn is past its learning period')

# 2. detect on day 2 + late evening (two -r files, a new process: the baseline came from SQLite)
det = os.path.join(tmp, 'detect.db')
shutil.copy(learned, det)
dbtest.run_dbtap([d2, d3], det, config=CFG)
fs = findings(det, run=2)
got = sorted(sig(f) for f in fs)
want = sorted([
    ('new_query_shape', 'shop', 'shopweb', '127.0.0.1', 'new_shape'),       # A
    ('new_query_shape', 'shop', 'shopweb', '127.0.0.1', 'new_shape'),       # B (the tautology shape)
    ('sql_injection', 'shop', 'shopweb', '127.0.0.1', 'tautology'),         # B
    ('new_application', 'shop', 'psql', '127.0.0.1', 'new_application'),   # C
    ('new_query_shape', 'shop', 'psql', '127.0.0.1', 'new_shape'),          # C: shapes are per application
    ('new_client', 'shop', 'shopweb', '127.0.0.2', 'new_client'),           # D
    ('sql_injection', 'ops', 'opsreport', '127.0.0.1', 'tautology'),        # E (no baseline)
    ('off_hours', 'shop', 'shopweb', '127.0.0.1', 'new_hour'),              # late
    ('off_hours', 'ops', 'opsreport', '127.0.0.1', 'outside_business_hours'),  # late, learning
])
c.eq(got, want, 'day 2: each kind fires exactly where expected and nowhere else')
by = {}
for f in fs:
    by.setdefault((f['kind'], f['db_user'], f['application']), []).append(f)
a = [f for f in by.get(('new_query_shape', 'shop', 'shopweb'), []) if 'customers' in (f['sql'] or '')]
c.check(len(a) == 1 and a[0]['ev'].get('new_tables') == ['customers'] and
        a[0]['ev'].get('end_user_new_tables') == ['customers'] and
        a[0]['ev']['expected'].get('known_shapes', 0) >= 5 and a[0]['end_user'] == 'alice',
        'new shape names the new table, the end user\'s first access, and what was expected')
inj = {f['db_user']: f for f in by.get(('sql_injection', 'shop', 'shopweb'), []) +
       by.get(('sql_injection', 'ops', 'opsreport'), [])}
c.check('shop' in inj and inj['shop']['ev'].get('baseline_shape') and inj['shop']['severity'] == 'critical' and
        inj['shop']['ev'].get('confidence') == 'high',
        'known shape + tautology: sql_injection names the baseline shape, severity raised to critical')
c.check('ops' in inj and 'baseline_shape' not in inj['ops']['ev'] and inj['ops']['severity'] == 'high',
        'tautology in an unknown shape: default severity, no baseline shape')
na = by.get(('new_application', 'shop', 'psql'), [{}])[0]
c.check(na.get('ev', {}).get('expected', {}).get('known_applications') == ['shopweb'] and
        na.get('statement_id') is None, 'new_application (once for two sessions) names the known applications')
nc = by.get(('new_client', 'shop', 'shopweb'), [{}])[0]
c.check(nc.get('ev', {}).get('subnet') == '127.0.0.2/32' and
        nc['ev']['expected'].get('known_subnets') == ['127.0.0.1/32'], 'new_client names new and known subnets')
oh = {f['db_user']: f['ev'] for f in fs if f['kind'] == 'off_hours'}
c.check(oh.get('shop', {}).get('hour') == '23' and oh['shop']['expected'].get('known_hours') == ['10'] and
        oh['shop'].get('time_zone') == 'UTC', 'off_hours: hour 23 UTC, expected hours [10]')
c.check(oh.get('ops', {}).get('expected', {}).get('business_hours') == '07:00-20:00' and
        oh['ops']['expected'].get('learning') is True, 'off_hours for a learning principal: business hours')
ops = dbtest.rows(det, "SELECT learning_until FROM baseline WHERE kind='principal' AND principal='ops'")
c.check(len(ops) == 1 and ops[0]['learning_until'].startswith('2026-11-04T10:'),
        'ops learned automatically for 24 h of packet time')

# 3. deterministic: the same runs on a fresh copy give the same findings and baseline
det2 = os.path.join(tmp, 'detect2.db')
shutil.copy(learned, det2)
dbtest.run_dbtap([d2, d3], det2, config=CFG)
strip = lambda fs: [(f['kind'], f['ts'], f['summary'], f['evidence'], f['severity']) for f in fs]  # noqa: E731
c.check(strip(findings(det2, run=2)) == strip(fs), 'repeated run: identical findings (times, summaries, evidence)')
blq = 'SELECT * FROM baseline ORDER BY scope, principal, application, kind, item'
c.check(dbtest.rows(det2, blq) == dbtest.rows(det, blq), 'repeated run: identical baseline rows')

# 4. once reported, new things are part of the baseline: a third run raises nothing
dbtest.run_dbtap([d2, d3], det, config=CFG)
c.eq([sig(f) for f in findings(det, run=3, kinds=BASELINE_KINDS)], [], 'reported items joined the baseline')

# 5. require_ack: alerts repeat (once per run) until acknowledged
ack = os.path.join(tmp, 'ack.db')
shutil.copy(learned, ack)
acfg = {'baseline': {'client_prefix_v4': 32, 'require_ack': True}}
dbtest.run_dbtap(d2, ack, config=acfg)
first = sorted(sig(f) for f in findings(ack, run=2, kinds=BASELINE_KINDS))
dbtest.run_dbtap(d2, ack, config=acfg)
again = sorted(sig(f) for f in findings(ack, run=3, kinds=BASELINE_KINDS))
c.check(len(first) == 5 and again == first, f'require_ack: unacknowledged alerts repeat ({len(again)})')
lst = baseline_cli(ack, '--list', 'shop')
c.check(lst.returncode == 0 and '\tpending\t' in lst.stdout, '--list shows pending items')
r = baseline_cli(ack, '--ack', 'shop')
c.check(r.returncode == 0 and 'acknowledged' in r.stdout, '--ack shop')
dbtest.run_dbtap(d2, ack, config=acfg)
c.eq([(f['kind'], f['end_user'], f['ev'].get('signal'), f['ev'].get('end_user_new_tables'))
      for f in findings(ack, run=4, kinds=BASELINE_KINDS)],
     [('new_query_shape', 'alice', 'first_table_access', ['customers'])],
     "acknowledging shop leaves the end user alice's first access to customers pending")
r = baseline_cli(ack, '--ack', 'alice')
c.check(r.returncode == 0 and 'acknowledged 1 ' in r.stdout, '--ack alice')
dbtest.run_dbtap(d2, ack, config=acfg)
c.eq([sig(f) for f in findings(ack, run=5, kinds=BASELINE_KINDS)], [], 'acknowledged: no more alerts')

# 6. --forget: shop starts from scratch (learning again, findings held back)
r = baseline_cli(ack, '--forget', 'shop')
c.check(r.returncode == 0 and 'forgot' in r.stdout, '--forget shop')
c.eq(dbtest.rows(ack, "SELECT count(*) AS n FROM baseline WHERE principal='shop'")[0]['n'], 0,
     'no baseline rows of shop left')
dbtest.run_dbtap(d2, ack, config=CFG)
c.eq([sig(f) for f in findings(ack, run=6, kinds=BASELINE_KINDS)], [],
     'forgotten principal is learning again: nothing raised')
js = baseline_cli(ack, '--list', '--json')
c.check(js.returncode == 0 and all(json.loads(line)['principal'] for line in js.stdout.splitlines()),
        '--list --json: one JSON object per row')
c.eq(baseline_cli(ack).returncode, 2, 'baseline without an action is a usage error')
c.eq(baseline_cli(os.path.join(tmp, 'missing.db'), '--list').returncode, 1, 'missing database: exit 1')

# 7. automatic learning instead of --learn: day 1 learned for an hour, day 2 judged
auto = os.path.join(tmp, 'auto.db')
acfg = {'baseline': {'client_prefix_v4': 32, 'learning_period_s': 3600}}
dbtest.run_dbtap(d1, auto, config=acfg)
c.eq(len(findings(auto, kinds=BASELINE_KINDS)), 0, 'auto-learning day 1 (inside business hours): no findings')
dbtest.run_dbtap([d2, d3], auto, config=acfg)
# ops is first seen on day 2 too, so by 23:30 its hour of learning is over: a new hour
want_auto = sorted(w if w[1] != 'ops' or w[0] != 'off_hours' else w[:4] + ('new_hour',) for w in want)
c.eq(sorted(sig(f) for f in findings(auto, run=2)), want_auto, 'after the learning period: same findings as --learn')

# 8. time zones: hours are counted in the configured zone
zones = [('+01:00', '00', '00:30'), ('-05:30', '18', '18:00')]
if os.path.exists('/usr/share/zoneinfo/Europe/Berlin'):
    zones.insert(0, ('Europe/Berlin', '00', '00:30'))
else:
    print('# no TZ database (tzdata): zone names not tested')
for tz, hour, local in zones:
    db = os.path.join(tmp, 'tz%s.db' % tz.replace('/', '_').replace(':', ''))
    tcfg = {'baseline': {'client_prefix_v4': 32, 'time_zone': tz}}
    dbtest.run_dbtap(d1, db, config=tcfg, extra=['--learn'])
    dbtest.run_dbtap([d2, d3], db, config=tcfg)
    oh = [f['ev'] for f in findings(db, run=2, kinds=('off_hours',)) if f['db_user'] == 'shop']
    c.check(len(oh) == 1 and oh[0]['hour'] == hour and oh[0]['local_time'] == local and oh[0]['time_zone'] == tz,
            f'time zone {tz}: 23:30 UTC is {local} local (day boundary), hour {hour}: {oh}')
    hrs = {r['item'] for r in dbtest.rows(db, "SELECT item FROM baseline WHERE kind='hour' AND principal='shop'")}
    c.check(hour in hrs and len(hrs) == 2, f'time zone {tz}: hours learned in local time {sorted(hrs)}')
bad = dbtest.run_dbtap(d1, os.path.join(tmp, 'bad.db'), config={'baseline': {'time_zone': 'Mars/Olympus'}},
                       check=False)
c.check(bad.returncode == 2 and 'baseline.time_zone' in bad.stderr, 'unknown time zone: exit 2 naming the key')

shutil.rmtree(tmp, ignore_errors=True)
c.done()
