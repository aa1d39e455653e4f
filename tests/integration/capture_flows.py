"""Bounded memory under a connection flood: the real PostgreSQL session of
tests/capture/data/base.pcap is split in two, and between its halves come 100,000
concurrent synthetic flows (handshake + a StartupMessage, never closed) and 50,000 bare
SYNs. With capture.max_flows = 2000 the real session must still be decoded whole, the
flows beyond the cap counted as evicted, and peak memory stay bounded.

Then 1,000 open flows that each send one 60 KB message: whole (regression: libnids kept
each stream's grown buffer, 114 MiB in all; it is now given back), and cut short, a head
waiting for 900 KB more (regression: nothing bounded these heads across flows, 85 MiB;
capture.max_held_mb caps them, the rest is dropped and counted)."""
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
base = os.path.join(src, 'tests', 'capture', 'data', 'base.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-flows-')
c = dbtest.Checks()

data = open(base, 'rb').read()
hdr, off, pkts = data[:24], 24, []
while off + 16 <= len(data):
    sec, usec, incl, orig = struct.unpack('<IIII', data[off:off + 16])
    pkts.append((sec, usec, data[off + 16:off + 16 + incl]))
    off += 16 + incl
half = len(pkts) // 2
t0 = pkts[half][0]


def csum(b):
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(src_ip, dst_ip, sport, dport, seq, ack, flags, payload=b''):
    tcp = struct.pack('>HHIIBBHHH', sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload
    ip = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack('>H', csum(ip)) + ip[12:]
    return b'\0' * 6 + b'\0\0\0\0\0\1' + b'\x08\x00' + ip + tcp


startup = struct.pack('>II', 8 + 11 + 6, 196608) + b'user\0flood\0\0'
startup = struct.pack('>I', len(startup)) + startup[4:]
server = bytes([10, 9, 9, 9])
out = [hdr]
for sec, usec, p in pkts[:half]:
    out.append(struct.pack('<IIII', sec, usec, len(p), len(p)) + p)
for i in range(100000):
    cli = bytes([10, 1 + (i >> 16), (i >> 8) & 255, i & 255])
    for k, f in enumerate((frame(cli, server, 40000, 5432, 1000, 0, 0x02),
                           frame(server, cli, 5432, 40000, 5000, 1001, 0x12),
                           frame(cli, server, 40000, 5432, 1001, 5001, 0x10),
                           frame(cli, server, 40000, 5432, 1001, 5001, 0x18, startup))):
        out.append(struct.pack('<IIII', t0, k, len(f), len(f)) + f)
for i in range(50000):
    cli = bytes([10, 200, (i >> 8) & 255, i & 255])
    f = frame(cli, server, 50000, 5432, 7, 0, 0x02)
    out.append(struct.pack('<IIII', t0, 9, len(f), len(f)) + f)
for sec, usec, p in pkts[half:]:
    out.append(struct.pack('<IIII', max(sec, t0), usec, len(p), len(p)) + p)
pcap = os.path.join(tmp, 'flood.pcap')
with open(pcap, 'wb') as f:
    f.write(b''.join(out))

db = os.path.join(tmp, 'flood.db')
# GNU time reports the child's own peak (a forked Python child would count ours).
rss = os.path.join(tmp, 'rss')
r = dbtest.run_dbtap(pcap, db, config={'capture': {'max_flows': 2000}}, check=False,
                     wrap=['/usr/bin/time', '-o', rss, '-f', '%M'])
c.eq(r.returncode, 0, f'dbtap exit status ({r.stderr.strip()})')
peak_kb = int(open(rss).read().split()[-1])
# About 10 KiB per concurrent flow (libnids 4 KiB buffer, session, decoder) + fixed costs
# (with the analyzer thread: its stack, malloc arena and up to 2 MiB of queued events).
sanitized = 'asan' in subprocess.run(['ldd', dbtest.dbtap_binary()], capture_output=True,
                                     text=True).stdout
if sanitized:
    print(f'note: sanitizer build, peak RSS {peak_kb // 1024} MiB not checked')
else:
    # 50 MiB: the SQLite writer's page cache (up to 8 MiB) holds the 100k session rows just
    # written, so each session column adds about 100 KiB here; with sessions.pooler_role and
    # pooler (issue #21) this run measured 47.9-48.1 MiB under meson's MALLOC_PERTURB_
    # Measured 45-49 MiB across MALLOC_PERTURB_ values (meson sets one at random): the flows
    # are capped, but the 100k sessions' rows pass through SQLite's page cache and the
    # parked records (limits.max_parked_mb); the bound has room for that, not for a leak.
    c.check(peak_kb < 56 * 1024, f'peak RSS {peak_kb // 1024} MiB < 56 MiB with 100k flows offered, cap 2000')
st = dbtest.rows(db, "SELECT s.db_user, count(*) AS n FROM statements t JOIN sessions s "
                     "ON s.id = t.session_id GROUP BY s.db_user")
c.eq(st, [{'db_user': 'tester', 'n': 7}], 'the real session is decoded whole despite the flood')
run = dbtest.rows(db, 'SELECT streams, sensor_drops, drops FROM runs')[0]
import json
drops = json.loads(run['drops'])
c.check(drops['evicted'] >= 98000, f"flows beyond the cap counted as evicted ({drops['evicted']})")
c.check(run['sensor_drops'] >= drops['evicted'], 'evictions are part of sensor_drops')
n = dbtest.rows(db, 'SELECT count(*) AS n FROM sessions')[0]['n']
c.check(n > 100000, f'every flow got a session row while it lived ({n})')


def big_messages(whole):
    """1,000 flows: handshake, StartupMessage, AuthenticationOk + ReadyForQuery, then one
    Query of 60 KB in one segment, whole or the head of a 900 KB one."""
    out = [hdr]
    auth = b'R' + struct.pack('>II', 8, 0) + b'Z' + struct.pack('>I', 5) + b'I'
    sql = b'SELECT ' + b'x' * 59990
    body = b'Q' + struct.pack('>I', 4 + len(sql) + 1 if whole else 900000) + sql + (b'\0' if whole else b'')
    for i in range(1000):
        cli = bytes([10, 7, i >> 8, i & 255])
        seq = 1001 + len(startup)
        for k, f in enumerate((frame(cli, server, 40000, 5432, 1000, 0, 0x02),
                               frame(server, cli, 5432, 40000, 5000, 1001, 0x12),
                               frame(cli, server, 40000, 5432, 1001, 5001, 0x10),
                               frame(cli, server, 40000, 5432, 1001, 5001, 0x18, startup),
                               frame(server, cli, 5432, 40000, 5001, seq, 0x18, auth),
                               frame(cli, server, 40000, 5432, seq, 5001 + len(auth), 0x18, body))):
            out.append(struct.pack('<IIII', t0, k, len(f), len(f)) + f)
    path = os.path.join(tmp, f'big-{int(whole)}.pcap')
    with open(path, 'wb') as f:
        f.write(b''.join(out))
    return path


for whole, cfg, limit in ((True, {}, 80), (False, {'capture': {'max_held_mb': 16}}, 64)):
    what = 'whole 60 KB messages' if whole else '60 KB heads of 900 KB messages, max_held_mb 16'
    db = os.path.join(tmp, f'big-{int(whole)}.db')
    r = dbtest.run_dbtap(big_messages(whole), db, config=cfg, check=False,
                         wrap=['/usr/bin/time', '-o', rss, '-f', '%M'])
    c.eq(r.returncode, 0, f'{what}: dbtap exit status ({r.stderr.strip()})')
    peak_kb = int(open(rss).read().split()[-1])
    if not sanitized:
        c.check(peak_kb < limit * 1024, f'{what}: peak RSS {peak_kb // 1024} MiB < {limit} MiB')
    run = dbtest.rows(db, 'SELECT sensor_drops, drops FROM runs')[0]
    drops = json.loads(run['drops'])
    n = dbtest.rows(db, 'SELECT count(*) AS n FROM statements')[0]['n']
    if whole:
        c.eq(n, 1000, f'{what}: every statement decoded')
        c.eq(drops['held_dropped'], 0, f'{what}: nothing dropped')
    else:
        c.check(drops['held_dropped'] >= 700,
                f"{what}: heads beyond 16 MiB dropped and counted ({drops['held_dropped']})")
        c.check(run['sensor_drops'] >= drops['held_dropped'], f'{what}: counted in sensor_drops')
c.done()
