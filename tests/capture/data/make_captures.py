#!/usr/bin/env python3
"""Make the capture-layer test captures from a real PostgreSQL 15 server.

  base.pcap       psql session over an MTU-1500 loopback in a private network namespace
                  (offloads off, so segments look as on a wire), a 300-row result split
                  over many segments; the server port is rewritten to 5432.
  ipv6.pcap       the same kind of session to ::1.
  midstream.pcap  a connection opened before the capture started; two queries after.
Then link-layer and loss variants of base.pcap, written by rewriting its frames:
  sll, sll2, null, loop, raw, ipv4 link types; 802.1Q, QinQ (88a8+8100), 9100 tags;
  one server data segment removed (gap); two segments swapped (reorder); every data
  segment sent twice (duplicates); a forged client RST with a bad checksum;
  finish_evict.pcap, a regression for end-of-file hole replay with a full flow table.
Run as root: python3 tests/capture/data/make_captures.py
"""
import os
import struct
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'integration'))
import dbtest  # noqa: E402

SCRIPT = """
CREATE TABLE t (id int, v text);
INSERT INTO t SELECT g, repeat('x', 40) || g FROM generate_series(1, 300) g;
SELECT * FROM t ORDER BY id;
SELECT count(*) FROM t WHERE id > 100;
UPDATE t SET v = 'y' WHERE id < 10;
SELECT no_such_column FROM t;
DROP TABLE t;
"""


def rewrite_port(src, dst, port):
    subprocess.run(['tcprewrite', f'--portmap={port}:5432', f'--infile={src}', f'--outfile={dst}'],
                   check=True)
    os.unlink(src)


def inner():
    """Runs inside `unshare --net`: loopback with a wire-like MTU and no offloads."""
    subprocess.run(['ip', 'link', 'set', 'lo', 'up', 'mtu', '1500'], check=True)
    subprocess.run(['ethtool', '-K', 'lo', 'tso', 'off', 'gso', 'off', 'gro', 'off'],
                   capture_output=True)
    pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.1/32', 'md5'),
                              ('host', 'all', 'all', '::1/128', 'md5')])
    pg.sql("CREATE ROLE tester LOGIN PASSWORD 'Cap-Secret-7'")
    pg.sql("CREATE DATABASE capdb OWNER tester")
    tmp = os.path.join(here, 'base.tmp')
    with dbtest.Capture(tmp, [pg.port]):
        pg.psql('tester', 'Cap-Secret-7', SCRIPT, db='capdb', check=True)
    rewrite_port(tmp, os.path.join(here, 'base.pcap'), pg.port)
    tmp = os.path.join(here, 'ipv6.tmp')
    with dbtest.Capture(tmp, [pg.port]):
        pg.psql('tester', 'Cap-Secret-7', SCRIPT, db='capdb', host='::1', check=True)
    rewrite_port(tmp, os.path.join(here, 'ipv6.pcap'), pg.port)
    # Mid-stream: the connection exists before the capture starts.
    import psycopg2
    con = psycopg2.connect(host='127.0.0.1', port=pg.port, user='tester', password='Cap-Secret-7',
                           dbname='capdb')
    con.autocommit = True
    cur = con.cursor()
    cur.execute('SELECT 1')
    tmp = os.path.join(here, 'midstream.tmp')
    with dbtest.Capture(tmp, [pg.port]):
        cur.execute('SELECT generate_series(1, 50)')
        cur.fetchall()
        cur.execute("SELECT current_user /*app_user='dora'*/")
        cur.fetchall()
    con.close()
    time.sleep(0.3)
    rewrite_port(tmp, os.path.join(here, 'midstream.pcap'), pg.port)


# ---- pcap rewriting ----

def read_pcap(path):
    data = open(path, 'rb').read()
    assert data[:4] == b'\xd4\xc3\xb2\xa1', 'expects a little-endian microsecond pcap'
    linktype = struct.unpack('<I', data[20:24])[0]
    off, pkts = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack('<IIII', data[off:off + 16])
        pkts.append([sec, usec, data[off + 16:off + 16 + incl]])
        off += 16 + incl
    return linktype, pkts


def write_pcap(path, linktype, pkts):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, linktype))
        for sec, usec, p in pkts:
            f.write(struct.pack('<IIII', sec, usec, len(p), len(p)) + p)


def eth_split(p):
    return p[:12], struct.unpack('>H', p[12:14])[0], p[14:]


def tcp_fields(ip):
    ihl = (ip[0] & 15) * 4
    sport, dport, seq = struct.unpack('>HHI', ip[ihl:ihl + 8])
    doff = (ip[ihl + 12] >> 4) * 4
    flags = ip[ihl + 13]
    payload = len(ip) - ihl - doff
    return sport, dport, seq, flags, payload


def variants():
    lt, pkts = read_pcap(os.path.join(here, 'base.pcap'))
    assert lt == 1
    ips = [eth_split(p)[2] for _, _, p in pkts]
    macs = pkts[0][2][:12]

    def out(name, linktype, frames):
        write_pcap(os.path.join(here, name), linktype,
                   [[s, u, fr] for (s, u, _), fr in zip(pkts, frames)])

    out('sll.pcap', 113, [struct.pack('>HHH8sH', 0, 772, 6, b'\0' * 8, 0x0800) + ip for ip in ips])
    out('sll2.pcap', 276, [struct.pack('>HHIHBB8s', 0x0800, 0, 1, 772, 0, 6, b'\0' * 8) + ip
                           for ip in ips])
    out('null.pcap', 0, [struct.pack('<I', 2) + ip for ip in ips])
    out('loop.pcap', 108, [struct.pack('>I', 2) + ip for ip in ips])
    out('raw.pcap', 101, ips)
    out('ipv4.pcap', 228, ips)
    out('vlan.pcap', 1, [macs + struct.pack('>HHH', 0x8100, 100, 0x0800) + ip for ip in ips])
    out('qinq.pcap', 1, [macs + struct.pack('>HHHHH', 0x88a8, 10, 0x8100, 20, 0x0800) + ip
                         for ip in ips])
    out('vlan9100.pcap', 1, [macs + struct.pack('>HHH', 0x9100, 7, 0x0800) + ip for ip in ips])

    # Loss and order variants, on Ethernet.
    data_idx = [i for i, ip in enumerate(ips) if tcp_fields(ip)[4] > 0]
    srv_data = [i for i in data_idx if tcp_fields(ips[i])[0] == 5432]
    big = [i for i in srv_data if tcp_fields(ips[i])[4] >= 1000]
    gap_at = big[len(big) // 2]
    write_pcap(os.path.join(here, 'gap.pcap'), 1, [p for i, p in enumerate(pkts) if i != gap_at])
    sw = big[1]
    order = list(range(len(pkts)))
    order[sw], order[sw + 1] = order[sw + 1], order[sw]
    write_pcap(os.path.join(here, 'reorder.pcap'), 1, [pkts[i] for i in order])
    dup = []
    for i, p in enumerate(pkts):
        dup.append(p)
        if i in data_idx:
            dup.append(p)
    write_pcap(os.path.join(here, 'duplicate.pcap'), 1, dup)
    # Forged RST from the client with a wrong checksum, right after the first query.
    def payload_of(ip):
        ihl = (ip[0] & 15) * 4
        return ip[ihl + (ip[ihl + 12] >> 4) * 4:]
    first_q = next(i for i in data_idx
                   if tcp_fields(ips[i])[1] == 5432 and payload_of(ips[i])[:1] == b'Q')
    ip = bytearray(ips[first_q])
    ihl = (ip[0] & 15) * 4
    sport, dport, seq, _, payload = tcp_fields(bytes(ip))
    doff = (ip[ihl + 12] >> 4) * 4
    rst = bytearray(ip[:ihl + doff])
    struct.pack_into('>H', rst, 2, ihl + doff)
    struct.pack_into('>I', rst, ihl + 4, (seq + payload) & 0xffffffff)
    rst[ihl + 13] = 0x04
    struct.pack_into('>H', rst, ihl + 16, 0xdead)  # wrong checksum on purpose
    forged = [pkts[first_q][0], pkts[first_q][1], macs + b'\x08\x00' + bytes(rst)]
    write_pcap(os.path.join(here, 'forged_rst.pcap'), 1, pkts[:first_q + 1] + [forged] + pkts[first_q + 1:])
    finish_evict(pkts, ips, macs, big)
    print(f'variants written; gap removed frame {gap_at + 1}, swapped frames {sw + 1}/{sw + 2}')


def tcp_checksum(ip):
    ihl = (ip[0] & 15) * 4
    seg = bytearray(ip[ihl:])
    seg[16:18] = b'\0\0'
    data = ip[12:20] + struct.pack('>BBH', 0, 6, len(seg)) + bytes(seg)
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack(f'>{len(data) // 2}H', data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    struct.pack_into('>H', ip, ihl + 16, ~s & 0xffff)


def with_client_port(ip, port):
    ip = bytearray(ip)
    ihl = (ip[0] & 15) * 4
    sport, dport = struct.unpack('>HH', ip[ihl:ihl + 4])
    if dport == 5432:
        struct.pack_into('>H', ip, ihl, port)
    else:
        struct.pack_into('>H', ip, ihl + 2, port)
    tcp_checksum(ip)
    return bytes(ip)


def finish_evict(pkts, ips, macs, big):
    """Regression (CI fuzz crash, heap-use-after-free in cap_finish): at end of file a
    session still has a hole; replaying the segments held behind it opens a flow for the
    reversed 4-tuple (the client port, 3306, is a database port too), which, with the flow
    table full, evicts the next flow cap_finish was about to visit."""
    frames = [macs + b'\x08\x00' + with_client_port(ip, 3306) for ip in ips]
    keep = list(range(big[1])) + [big[2]]  # big[1] lost: big[2] waits behind the hole
    out = [[pkts[i][0], pkts[i][1], frames[i]] for i in keep]
    t = pkts[big[2]][0] * 1000000 + pkts[big[2]][1]
    for n in range(15):  # fill the table (max_flows 16) with handshake-only flows
        for i in range(3):
            t += 10
            out.append([t // 1000000, t % 1000000,
                        macs + b'\x08\x00' + with_client_port(ips[i], 41000 + n)])
    write_pcap(os.path.join(here, 'finish_evict.pcap'), 1, out)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--inner':
        inner()
    else:
        dbtest.need_root()
        subprocess.run(['unshare', '--net', sys.executable, os.path.abspath(__file__), '--inner'],
                       check=True)
        variants()
