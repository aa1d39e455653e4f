#!/usr/bin/env python3
"""TLS decryption cost (issue #26): the same pgbench TPC-B content captured twice on lo
against PostgreSQL 15 with ssl=on, once in plaintext and once over TLS 1.3 (AES-256-GCM)
with the client's key log (node `pg`, tests/integration/tls_client.js), then `dbtap run -r`
timed on each, interleaved, --reps rounds; the ratio of packets per second is taken round
by round (decrypted / plaintext) and its median printed, with callgrind's instruction
counts per packet for a repeatable figure (--callgrind). As root; not part of meson test.
  contrib/bench/tls_bench.py [--transactions 500] [--clients 4] [--reps 5] [--callgrind]"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'integration'))
import dbtest  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--transactions', type=int, default=500, help='per client')
ap.add_argument('--clients', type=int, default=4)
ap.add_argument('--reps', type=int, default=5)
ap.add_argument('--callgrind', action='store_true')
ap.add_argument('--dbtap', default=os.environ.get('DBTAP', 'build-x/capture/dbtap'))
a = ap.parse_args()
mods = os.path.join(os.environ.get('DBTAP_NODE_MODULES', os.path.expanduser('~/.cache/dbtap-node')), 'node_modules')
tmp = tempfile.mkdtemp(prefix='dbtap-tlsbench-')
os.chmod(tmp, 0o755)
pg = dbtest.Postgres(ssl=True)
pg.sql("CREATE ROLE bench LOGIN PASSWORD 'bench-pw'")
pg.sql("CREATE DATABASE bench OWNER bench")
pg._run(['pgbench', '-i', '-q', '-s', '1', '-h', pg.dir, '-p', str(pg.port), '-U', 'bench', 'bench'])


def capture(name, tls):
    pcap, keys = os.path.join(tmp, name + '.pcap'), os.path.join(tmp, name + '.keys')
    job = dict(proto='pg', host='127.0.0.1', port=pg.port, user='bench', password='bench-pw',
               database='bench', keylog=keys if tls else None, tls=tls, transactions=a.transactions,
               clients=a.clients, scale=1, statements=[])
    with dbtest.Capture(pcap, [pg.port]):
        subprocess.run(['node', os.path.join(HERE, '..', '..', 'tests', 'integration', 'tls_client.js'),
                        json.dumps(job)], check=True, capture_output=True, env=dict(os.environ, NODE_PATH=mods))
    return pcap, keys


plain, _ = capture('plain', None)
tls, keys = capture('tls13', {'minVersion': 'TLSv1.3', 'ciphers': 'TLS_AES_256_GCM_SHA384'})
conf = {'ports': {'postgresql': [pg.port]}, 'audit': 'findings'}
cfgs = {}
for name, extra in (('plain', {}), ('tls13', {'capture': {'tls_keylog': keys}})):
    p = os.path.join(tmp, name + '.json')
    with open(p, 'w') as f:
        json.dump(dict(conf, **extra), f)
    cfgs[name] = p


def run(name, pcap, wrap=()):
    db = os.path.join(tmp, name + '.db')
    for ext in ('', '-wal', '-shm'):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    t = time.perf_counter()
    subprocess.run(list(wrap) + [a.dbtap, 'run', '-q', '-r', pcap, '-d', db, '-c', cfgs[name]], check=True,
                   capture_output=True)
    el = time.perf_counter() - t
    r = dbtest.rows(db, 'SELECT packets, (SELECT sum(statements) FROM sessions) AS st,'
                        ' (SELECT count(*) FROM sessions WHERE tls_decrypted = 1) AS dec FROM runs')[0]
    return el, r


ratios = []
for i in range(a.reps):
    tp, rp = run('plain', plain)
    tt, rt = run('tls13', tls)
    ratios.append((rt['packets'] / tt) / (rp['packets'] / tp))
    print(f'round {i + 1}: plaintext {rp["packets"] / tp:,.0f} packets/s ({rp["packets"]} packets, {rp["st"]} statements),'
          f' TLS 1.3 decrypted {rt["packets"] / tt:,.0f} packets/s ({rt["packets"]} packets, {rt["st"]} statements,'
          f' {rt["dec"]} sessions decrypted)')
want = a.clients * a.transactions * 7
print(f'statements expected {want}: plaintext {rp["st"]}, decrypted {rt["st"]}')
print(f'decrypted/plaintext packets/s: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})')
if a.callgrind:
    ir = {}
    for name, pcap in (('plain', plain), ('tls13', tls)):
        out = os.path.join(tmp, name + '.cg')
        _, r = run(name, pcap, ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out])
        s = subprocess.run(['callgrind_annotate', out], capture_output=True, text=True).stdout
        m = re.search(r'([\d,]+) \(100.0%\)\s+PROGRAM TOTALS', s)
        ir[name] = (int(m.group(1).replace(',', '')), r['packets'])
    per = {k: v[0] / v[1] for k, v in ir.items()}
    print(f'callgrind instructions per packet: plaintext {per["plain"]:,.0f}, TLS 1.3 {per["tls13"]:,.0f};'
          f' packets/s ratio {per["plain"] / per["tls13"]:.2f}')
