"""TCP evasion (issue #20 item 3): an attacker who knows dbtap is watching crafts segments
that a Linux server treats otherwise than libnids. Each case rewrites the client's last
query (`DROP TABLE t`, frame 46 of tests/capture/data/base.pcap, a real PostgreSQL 15
session) and must still give the statements the server executed, with one
protocol_anomaly (evasion) finding naming the flow where the segments were crafted.

What Linux does (net/ipv4/tcp_input.c, kernel 6.x), and so what the server executed:
  ooo10         the query in 10 segments, 2..10 then 1, each answered by a duplicate ACK:
                tcp_data_queue_ofo queues them, the first fills the hole: DROP executed
  late          the same with the first segment 2.5 s late: Linux keeps out-of-order data
                while the connection lives (pruned only under memory pressure)
  noack         a decoy without ACK at the query's sequence: discarded ("!th->ack")
  unsent_ack    a decoy acknowledging bytes the server never sent: tcp_ack() < 0, discarded
  ofo_new       out of order, a shorter decoy then the real bytes at the same sequence:
                the longer one replaces it (rb_replace_node); libnids kept the first
  ofo_old       out of order, the real bytes then a shorter decoy inside them: dropped
                ("all the bits are present")
  rst_window    an RST in the window at the wrong sequence (RFC 5961: challenge ACK),
                then the query: the session goes on, the DROP keeps its db_user
  ttl1          a decoy with TTL 1 (it dies at the next hop, before the server)
  rst_exact     control: an RST at the exact sequence ends the session

One-way (only the client's packets captured, as on a SPAN port that loses the server's
side): ooo10 and late again. Nothing then says whether the hole was lost on the way to the
sensor or is still coming, and the server waits, so dbtap waits as long as the client could
still retransmit (cap_gap.c), bounded by memory, not by a count of packets or 2 s.

Other servers (capture.host_os_policy names the server's address): only which copy of
overlapping bytes wins changes, as Novak & Sturges measured (capture/tcpnorm.c):
  bsd ofo_new     the longer copy at the same sequence does not replace the queued one
                  (BSD keeps the old copy unless the new one starts before it): decoy
  last ofo_old    the decoy inside the queued bytes replaces them: decoy
  first inorder   the in-order segment over queued decoy bytes: the queued ones stay;
                  under linux (control) the in-order copy wins: DROP
"""
import datetime
import os
import socket
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
base = os.path.join(src, 'tests', 'capture', 'data', 'base.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-evasion-')
c = dbtest.Checks()

raw = open(base, 'rb').read()
hdr, off, recs = raw[:24], 24, []
while off + 16 <= len(raw):
    sec, usec, incl, orig = struct.unpack('<IIII', raw[off:off + 16])
    recs.append([sec * 1000000 + usec, raw[off + 16:off + 16 + incl]])
    off += 16 + incl


def fields(f):
    ip = f[14:]
    ihl = (ip[0] & 15) * 4
    tcp = ip[ihl:]
    doff = (tcp[12] >> 4) * 4
    sport, dport, seq, ack = struct.unpack('>HHII', tcp[:12])
    return dict(sport=sport, seq=seq, ack=ack, flags=tcp[13], payload=tcp[doff:], ihl=ihl, doff=doff)


def csum(b):
    if len(b) & 1:
        b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def seg(f, seq=None, ack=None, flags=None, payload=None, ttl=None, tsdelta=0):
    """A copy of frame f (Ethernet/IPv4/TCP, options kept) with fields replaced and valid
    checksums; tsdelta moves the timestamp option's TSval."""
    x = fields(f)
    eth, ip = f[:14], bytearray(f[14:14 + x['ihl']])
    tcp = bytearray(f[14 + x['ihl']:14 + x['ihl'] + x['doff']])
    k = 20
    while tsdelta and k < len(tcp) and tcp[k] != 0:
        if tcp[k] == 1:
            k += 1
            continue
        if tcp[k] == 8:
            struct.pack_into('>I', tcp, k + 2, (struct.unpack_from('>I', tcp, k + 2)[0] + tsdelta) & 0xffffffff)
            break
        k += tcp[k + 1]
    payload = x['payload'] if payload is None else payload
    struct.pack_into('>II', tcp, 4, x['seq'] if seq is None else seq & 0xffffffff,
                     x['ack'] if ack is None else ack & 0xffffffff)
    if flags is not None:
        tcp[13] = flags
    tcp[16:18] = b'\0\0'
    struct.pack_into('>H', ip, 2, len(ip) + len(tcp) + len(payload))
    if ttl is not None:
        ip[8] = ttl
    ip[10:12] = b'\0\0'
    struct.pack_into('>H', ip, 10, csum(bytes(ip)))
    pseudo = bytes(ip[12:20]) + struct.pack('>BBH', 0, 6, len(tcp) + len(payload))
    struct.pack_into('>H', tcp, 16, csum(pseudo + bytes(tcp) + payload))
    return eth + bytes(ip) + bytes(tcp) + payload


qi = next(i for i, (_, f) in enumerate(recs) if b'DROP TABLE t' in fields(f)['payload'])
qts, qf = recs[qi]
q = fields(qf)
Q = q['payload']
srv = next(f for _, f in reversed(recs[:qi]) if fields(f)['sport'] == 5432)
dupack = seg(srv, seq=q['ack'], ack=q['seq'], flags=0x10, payload=b'')
decoy = b'Q\0\0\0\x12SELECT 12345;\0'
assert len(decoy) == len(Q)


def write(name, frames, shift_after=0, oneway=False, nosyn=False):
    """base.pcap with the query frame replaced by frames ((dt_us, frame) pairs); frames
    after them are shifted by shift_after us. oneway: the server's packets and the
    client's SYN left out (a one-way capture that began after the handshake); nosyn: only
    the handshake left out (picked up mid-stream)."""
    out = [hdr]

    def rec(ts, f):
        if oneway and (fields(f)['sport'] == 5432 or fields(f)['flags'] & 0x02):
            return  # and the SYN: libnids then picks the flow up at its first data
        if nosyn and fields(f)['flags'] & 0x02:
            return
        out.append(struct.pack('<IIII', ts // 1000000, ts % 1000000, len(f), len(f)) + f)
    for ts, f in recs[:qi]:
        rec(ts, f)
    for dt, f in frames:
        rec(qts + dt, f)
    for ts, f in recs[qi + 1:]:
        rec(ts + shift_after, f)
    path = os.path.join(tmp, name + '.pcap')
    open(path, 'wb').write(b''.join(out))
    return path


def pieces(n):
    step = (len(Q) + n - 1) // n
    return [(q['seq'] + k, Q[k:k + step]) for k in range(0, len(Q), step)]


def ooo(late_us):
    ps = pieces(10)
    fr = []
    for k, (s, p) in enumerate(ps[1:]):
        fr += [(k * 10, seg(qf, seq=s, payload=p)), (k * 10 + 5, dupack)]
    fr.append((late_us, seg(qf, seq=ps[0][0], payload=ps[0][1])))
    return fr


def ooo_ts():
    """ooo10 as the network reorders a real send: the first piece was stamped a tick
    before the others (TSval -1, still the flow's last one) and arrives after them, with
    the lowest stamp: PAWS must not drop it (ts_recent does not follow out-of-order
    segments). The frames after it keep their own stamps, as a real sender's would."""
    ps = pieces(10)
    fr = []
    for k, (s, p) in enumerate(ps[1:]):
        fr += [(k * 10, seg(qf, seq=s, payload=p)), (k * 10 + 5, dupack)]
    fr.append((200, seg(qf, seq=ps[0][0], payload=ps[0][1], tsdelta=-1)))
    return fr


cases = {
    'ooo10': (ooo(200), 0, False),
    'ooo10_ts': (ooo_ts(), 0, False),
    'late': (ooo(2500000), 2500000, False),
    'noack': ([(0, seg(qf, flags=0x08, payload=decoy)), (1, qf)], 0, True),
    'unsent_ack': ([(0, seg(qf, ack=q['ack'] + 50000, payload=decoy)), (1, qf)], 0, True),
    'ofo_new': ([(0, seg(qf, seq=q['seq'] + 5, payload=decoy[5:-2])), (1, dupack),
                 (2, seg(qf, seq=q['seq'] + 5, payload=Q[5:])), (3, dupack),
                 (4, seg(qf, payload=Q[:5]))], 0, True),
    'ofo_old': ([(0, seg(qf, seq=q['seq'] + 5, payload=Q[5:])), (1, dupack),
                 (2, seg(qf, seq=q['seq'] + 5, payload=decoy[5:-2])), (3, dupack),
                 (4, seg(qf, payload=Q[:5]))], 0, True),
    'rst_window': ([(0, seg(qf, seq=q['seq'] + 1000, flags=0x14, payload=b'')), (1, qf)], 0, True),
    'ttl1': ([(0, seg(qf, payload=decoy, ttl=1)), (1, qf)], 0, True),
    'paws': ([(0, seg(qf, payload=decoy, tsdelta=-1000)), (1, qf)], 0, True),
}


def run(path, config=None):
    db = path[:-5] + '.db'
    r = dbtest.run_dbtap(path, db, config=config, check=False)
    c.eq(r.returncode, 0, f'{os.path.basename(path)}: exit status ({r.stderr.strip()})')
    return db


def stmts(db):
    return dbtest.rows(db, 'SELECT s.sql, se.db_user FROM statements s JOIN sessions se'
                           ' ON se.id = s.session_id ORDER BY s.id')


def evasion(db):
    return dbtest.rows(db, "SELECT f.summary, se.client_port FROM findings f JOIN sessions se"
                           " ON se.id = f.session_id WHERE f.kind = 'protocol_anomaly'"
                           " AND f.summary LIKE '%tcp evasion%'")


want = stmts(run(write('plain', [(0, qf)])))
c.eq(want[-1], {'sql': 'DROP TABLE t', 'db_user': 'tester'}, 'plain: the DROP is stored with its user')
cport = q['sport']
for name, (frames, shift, flagged) in cases.items():
    db = run(write(name, frames, shift))
    got = stmts(db)
    c.check(got == want, f'{name}: the statements the server executed'
            + ('' if got == want else f': got {got[len(want) - 2:]!r}'))
    ev = evasion(db)
    if flagged:
        c.eq(len(ev), 1, f'{name}: one evasion finding for the flow ({[e["summary"] for e in ev]})')
        c.check(all(e['client_port'] == cport for e in ev), f'{name}: it names the flow')
    else:
        c.eq(ev, [], f'{name}: no evasion finding (reordering is not evasion)')
    run_row = dbtest.rows(db, 'SELECT drops FROM runs')[0]
    c.check('"gaps":0,' in run_row['drops'], f'{name}: no gap declared')

# Picked up mid-stream (no handshake): libnids applies PAWS only to flows it saw open with
# timestamps, so tcpnorm.c does it (a decoy with an old TSval, then the query).
want_ns = stmts(run(write('plain_nosyn', [(0, qf)], nosyn=True)))
c.eq(want_ns[-1]['sql'], 'DROP TABLE t', 'mid-stream plain: the DROP is stored')
db = run(write('paws_nosyn', cases['paws'][0], nosyn=True))
c.eq(stmts(db), want_ns, 'paws mid-stream: the statements the server executed')
c.eq(len(evasion(db)), 1, 'paws mid-stream: one evasion finding for the flow')

# One-way: the client's packets only.
want1 = stmts(run(write('plain1', [(0, qf)], oneway=True)))
c.eq(want1[-1]['sql'], 'DROP TABLE t', 'one-way plain: the DROP is stored')
for name in ('ooo10', 'late'):
    frames, shift, _ = cases[name]
    db = run(write(name + '_oneway', frames, shift, oneway=True))
    got = stmts(db)
    c.check(got == want1, f'{name} one-way: the statements the server executed'
            + ('' if got == want1 else f': got {got[len(want1) - 2:]!r}'))
    c.check('"gaps":0,' in dbtest.rows(db, 'SELECT drops FROM runs')[0]['drops'], f'{name} one-way: no gap declared')

# One-way, a hole never filled (the DROP's message lost on the way to the sensor) with the
# next query held behind it, then the flow silent: once it sent nothing for 120 s (a sender
# still retransmitting sends at least that often) the hole is skipped and the query decoded
# then, not at the end of the capture (300 s later) nor after 924.6 s. The clock is a
# packet of another flow.
body = b'SELECT 1;\0'
sel = b'Q' + struct.pack('>I', 4 + len(body)) + body
clk = bytearray(qf)
clk[14 + q['ihl']:14 + q['ihl'] + 4] = struct.pack('>HH', 40000, 9)
clk = seg(bytes(clk), payload=b'')
db = run(write('silent_oneway', [(0, seg(qf, seq=q['seq'] + len(Q), payload=sel)), (150000000, clk),
                                 (250000000, clk)], 300000000, oneway=True))
got = dbtest.rows(db, "SELECT sql, ts FROM statements WHERE sql = 'SELECT ?'")
t0 = datetime.datetime.fromtimestamp(qts / 1e6, datetime.timezone.utc)
late = [(datetime.datetime.fromisoformat(r['ts'].replace('Z', '+00:00')) - t0).total_seconds() for r in got]
c.check(len(late) == 1 and 120 <= late[0] <= 200, f'silent one-way: the query behind the hole is decoded'
        f' once the sender was silent 120 s (at +{late} s)')
c.check('"gaps":1,' in dbtest.rows(db, 'SELECT drops FROM runs')[0]['drops'], 'silent one-way: one gap declared')
c.eq(evasion(db), [], 'silent one-way: a hole never filled is loss, not evasion')
# ... and when the hole's bytes come after it was skipped (an attacker who waits out the
# silence; the server still takes them): the DROP cannot be decoded any more, but the
# flow gets an evasion finding.
db = run(write('silent_then_filled', [(0, seg(qf, seq=q['seq'] + len(Q), payload=sel)), (150000000, clk),
                                      (200000000, qf), (250000000, clk)], 300000000, oneway=True))
ev = evasion(db)
c.check(len(ev) == 1 and 'already skipped' in ev[0]['summary'] and ev[0]['client_port'] == cport,
        f'silent one-way, filled late: one evasion finding for the flow ({[e["summary"] for e in ev]})')

# Other servers' overlap policies, chosen by the server's address.
server = socket.inet_ntoa(qf[14 + 16:14 + 20])
decoyed = stmts(run(write('decoyed', [(0, seg(qf, payload=decoy))])))
c.eq(decoyed[-1]['sql'], 'SELECT ?', 'decoy alone: stored as such')
inorder = [(0, seg(qf, seq=q['seq'] + 5, payload=decoy[5:])), (1, dupack), (2, qf)]
for os_name, name, frames, expect in (('bsd', 'ofo_new', cases['ofo_new'][0], decoyed),
                                      ('last', 'ofo_old', cases['ofo_old'][0], decoyed),
                                      ('first', 'inorder', inorder, decoyed),
                                      ('linux', 'inorder', inorder, want),
                                      ('bsd', 'ofo_old', cases['ofo_old'][0], want)):
    cfg = {'capture': {'host_os_policy': [{'hosts': ['192.0.2.0/24', '2001:db8::/32'], 'os': 'last'},
                                          {'hosts': [server + '/32'], 'os': os_name}]}}
    db = run(write(f'{os_name}_{name}', frames), config=cfg)
    got = stmts(db)
    c.check(got == expect, f'{os_name} {name}: the statements that OS would execute'
            + ('' if got == expect else f': got {got[len(expect) - 2:]!r}'))
    c.eq(len(evasion(db)), 1, f'{os_name} {name}: one evasion finding')

# Control: an RST at the exact sequence ends the session (then the query starts another,
# picked up mid-stream, as the server would answer it with a reset of its own).
db = run(write('rst_exact', [(0, seg(qf, flags=0x14, payload=b'')), (1, qf)]))
c.eq(dbtest.rows(db, 'SELECT end_reason FROM sessions ORDER BY id')[0]['end_reason'], 'reset',
     'rst_exact: the exact RST ends the session')
c.eq(evasion(db), [], 'rst_exact: no evasion finding')

# Recorded by evasion_live.py --record: crafted segments against real PostgreSQL 15 and
# MariaDB servers; the JSON holds what each server's log says it executed. Regressions:
# old_ack (a decoy whose ACK is older than the window was stored instead of the DROP) and
# rst_exact (the statement sent after an exact RST, which the server answered with a
# reset, was picked up mid-stream and stored).
import json  # noqa: E402
import evasion_live  # noqa: E402
live = os.path.join(src, 'tests', 'integration', 'data', 'evasion_live.pcap')
with open(live[:-5] + '.json') as f:
    truth = json.load(f)
db = os.path.join(tmp, 'live.db')
r = dbtest.run_dbtap(live, db, config=evasion_live.CONFIG, check=False)
c.eq(r.returncode, 0, f'evasion_live.pcap: exit status ({r.stderr.strip()})')
evasion_live.check_db(c, db, truth['results'], truth['executed'], 'recorded')
c.done()
