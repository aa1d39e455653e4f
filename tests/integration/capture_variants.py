"""Capture layer end to end: every link type, VLAN stacks, IPv6, mid-stream pickup,
loss, reordering, duplicates and a forged RST, on captures of a real PostgreSQL 15
(tests/capture/data/make_captures.py). Each must give the statements of the base capture
as far as the data allows, and the counters must say what was lost."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
data = os.path.join(src, 'tests', 'capture', 'data')
tmp = tempfile.mkdtemp(prefix='dbtap-capvar-')
c = dbtest.Checks()


def run(name, config=None):
    db = os.path.join(tmp, name + '.db')
    r = dbtest.run_dbtap(os.path.join(data, name + '.pcap'), db, config=config, check=False)
    c.eq(r.returncode, 0, f'{name}: exit status ({r.stderr.strip()})')
    return db


def statements(db):
    return dbtest.rows(db, 'SELECT verb, outcome, rows, sql FROM statements ORDER BY id')


base_db = run('base')
base = statements(base_db)
c.eq(len(base), 7, 'base: 7 statements')
c.eq([s['outcome'] for s in base], ['ok'] * 5 + ['error', 'ok'], 'base: outcomes')
c.eq(base[2]['rows'], 300, 'base: SELECT * returned 300 rows over many segments')
sess = dbtest.rows(base_db, 'SELECT * FROM sessions')[0]
c.eq((sess['db_user'], sess['database'], sess['login'], sess['end_reason'], sess['midstream']),
     ('tester', 'capdb', 'ok', 'close', 0), 'base: session identity')

for name in ('sll', 'sll2', 'null', 'loop', 'raw', 'ipv4', 'vlan', 'qinq', 'vlan9100',
             'reorder', 'duplicate'):
    db = run(name)
    c.eq(statements(db), base, f'{name}: same statements as the base capture')
    c.eq(dbtest.rows(db, 'SELECT client_ip, server_port FROM sessions'),
         [{'client_ip': '127.0.0.1', 'server_port': 5432}], f'{name}: one session, real addresses')

db = run('ipv6')
c.eq(statements(db), base, 'ipv6: same statements as over IPv4')
c.eq(dbtest.rows(db, 'SELECT client_ip, server_ip FROM sessions'),
     [{'client_ip': '::1', 'server_ip': '::1'}], 'ipv6: stored with the real IPv6 addresses')

db = run('midstream')
st = statements(db)
s = dbtest.rows(db, 'SELECT midstream, login FROM sessions')
c.eq(s, [{'midstream': 1, 'login': 'unknown'}], 'midstream: picked up, marked midstream')
c.eq([x['rows'] for x in st], [50, 1], 'midstream: both queries after the pickup decoded')
c.eq(dbtest.rows(db, 'SELECT end_user FROM statements ORDER BY id')[1]['end_user'], 'dora',
     'midstream: attribution still works')

db = run('gap')
st = statements(db)
g = dbtest.rows(db, 'SELECT gaps, lost_bytes FROM sessions')[0]
c.eq(g, {'gaps': 1, 'lost_bytes': 1448}, 'gap: one gap of exactly the removed segment')
c.eq(len(st), 7, 'gap: every statement still recorded')
c.eq([x['outcome'] for x in st[3:]], ['ok', 'ok', 'error', 'ok'],
     'gap: statements after the hole decoded normally')
c.check('"gaps":1' in dbtest.rows(db, 'SELECT drops FROM runs')[0]['drops'], 'gap: counted in runs')

db = run('forged_rst')
st = statements(db)
c.eq(len(st), 7, 'forged RST: the session is picked up again and all statements recorded')
c.eq([x['outcome'] for x in st[1:]], [x['outcome'] for x in base[1:]],
     'forged RST: later statements decoded')

# Regression: a hole still open at end of file, held segments replayed into a full flow
# table, and a client port (3306) that is a database port too. Crashed (use after free)
# and opened a bogus reversed session before the fix.
db = run('finish_evict', config={'capture': {'max_flows': 16}})
ss = dbtest.rows(db, 'SELECT client_port, server_port, gaps, lost_bytes FROM sessions ORDER BY id')
c.eq(len(ss), 16, 'finish_evict: the session with the hole and the 15 others, nothing more')
c.eq(ss[0], {'client_port': 3306, 'server_port': 5432, 'gaps': 1, 'lost_bytes': 1448},
     'finish_evict: the hole is counted on the original session')
c.eq([x['verb'] for x in statements(db)], ['CREATE', 'INSERT', 'SELECT'],
     'finish_evict: statements up to the end of the capture')

c.done()
