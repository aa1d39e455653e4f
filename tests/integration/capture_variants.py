"""Capture layer end to end: every link type, VLAN stacks, IPv6, mid-stream pickup,
loss, reordering, duplicates and a forged RST, on captures of a real PostgreSQL 15
(tests/capture/data/make_captures.py). Each must give the statements of the base capture
as far as the data allows, and the counters must say what was lost."""
import json
import os
import struct
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

# More IPv6 addresses than the map holds (capture.ipv6_addresses, at least 16): the
# ipv6 capture 20 times over, each copy between its own two addresses. The first 8 copies
# fill the map; the packets of the other 12 are dropped and counted once. Regression:
# runs.sensor_drops counted each of them twice.
def ipv6_copies(n):
    raw = open(os.path.join(data, 'ipv6.pcap'), 'rb').read()
    out, recs, off = [raw[:24]], [], 24
    while off < len(raw):
        caplen = struct.unpack('<I', raw[off + 8:off + 12])[0]
        recs.append(bytearray(raw[off:off + 16 + caplen]))
        off += 16 + caplen
    loop = bytes(15) + b'\x01'
    for k in range(n):
        for r in recs:
            r = bytearray(r)
            r[0:4] = struct.pack('<I', struct.unpack('<I', r[0:4])[0] + 10 * k)  # one after the other
            for a in (16 + 14 + 8, 16 + 14 + 24):  # Ethernet, then IPv6 source and destination
                if bytes(r[a:a + 16]) == loop:
                    r[a:a + 16] = bytes.fromhex('fd000000000000000000000000%04x00' % k)
            # the server's address: its own per copy, told apart by the TCP source port
            sport = struct.unpack('>H', r[16 + 54:16 + 56])[0]
            srv = 16 + 14 + 8 if sport == 5432 else 16 + 14 + 24
            r[srv + 15] = 0x02
            out.append(bytes(r))
    path = os.path.join(tmp, 'ipv6_many.pcap')
    open(path, 'wb').write(b''.join(out))
    return path


many_db = os.path.join(tmp, 'ipv6_many.db')
r = dbtest.run_dbtap(ipv6_copies(20), many_db, config={'capture': {'ipv6_addresses': 16}}, check=False)
c.eq(r.returncode, 0, f'ipv6_many: exit status ({r.stderr.strip()})')
run_row = dbtest.rows(many_db, 'SELECT sensor_drops, drops FROM runs')[0]
full = json.loads(run_row['drops'])['v6_map_full']
c.check(full > 0, f'ipv6_many: packets beyond the address map counted ({full})')
c.eq(run_row['sensor_drops'], full, 'ipv6_many: each counted once in sensor_drops')
c.eq(dbtest.rows(many_db, 'SELECT count(*) AS n FROM sessions')[0]['n'], 8,
     'ipv6_many: the 8 copies whose addresses fit are decoded')

# Real IPv4 traffic from 240.0.0.0/4, the range our IPv6 stand-ins use, must not pass as an
# IPv6 client: the ipv4 capture (raw IP) rewritten to 240.0.0.1, which maps to ::1 here,
# read after the ipv6 one. Regression: it was stored as a second session from ::1.
raw = open(os.path.join(data, 'ipv4.pcap'), 'rb').read()
out, off, n_spoof = [raw[:24]], 24, 0
while off < len(raw):
    caplen = struct.unpack('<I', raw[off + 8:off + 12])[0]
    r = bytearray(raw[off:off + 16 + caplen])
    r[0:4] = struct.pack('<I', struct.unpack('<I', r[0:4])[0] + 100000)
    for a in (16 + 12, 16 + 16):
        if bytes(r[a:a + 4]) == bytes([127, 0, 0, 1]):
            r[a:a + 4] = bytes([240, 0, 0, 1])
    out.append(bytes(r))
    off += 16 + caplen
    n_spoof += 1
spoof = os.path.join(tmp, 'spoof240.pcap')
open(spoof, 'wb').write(b''.join(out))
spoof_db = os.path.join(tmp, 'spoof240.db')
r = dbtest.run_dbtap([os.path.join(data, 'ipv6.pcap'), spoof], spoof_db, check=False)
c.eq(r.returncode, 0, f'spoof240: exit status ({r.stderr.strip()})')
c.eq(dbtest.rows(spoof_db, 'SELECT client_ip FROM sessions'), [{'client_ip': '::1'}],
     'spoof240: only the real IPv6 session; 240.0.0.1 is not taken for ::1')
c.eq(json.loads(dbtest.rows(spoof_db, 'SELECT drops FROM runs')[0]['drops'])['ipv4_reserved'], n_spoof,
     'spoof240: its packets counted as ipv4_reserved')

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
