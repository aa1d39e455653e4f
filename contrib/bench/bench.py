#!/usr/bin/env python3
"""dbtap benchmark (issue #9): make four captures from real servers and clients on
loopback, then time, interleaved and repeated, a bare libpcap read loop (the floor),
the same loop feeding libnids alone, dbtap with audit=findings, dbtap with audit=all and
tshark on the same files (and, on the MySQL captures, pt-query-digest reading tcpdump's
hex dump of them, as Percona documents it).

Captures (private PostgreSQL 15 / MariaDB started by tests/integration/dbtest.py as
their own non-root users, on free ports; tcpdump on lo in immediate mode):
  pg_tpcb    pgbench TPC-B, simple query protocol (7 statements per transaction)
  pg_select  pgbench -S -M prepared (one Bind/Execute per transaction)
  my_rw      sysbench oltp_read_write, --db-ps-mode=disable (COM_QUERY)
  my_rw_ps   sysbench oltp_read_write, --db-ps-mode=auto (COM_STMT_EXECUTE)
Run through contrib/bench/run.sh, which builds what this needs. Not part of meson test.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
import dbtest  # noqa: E402

# pgbench's main connection runs two queries before the clients start (GetTableInfo:
# "select count(*) from pgbench_branches" and the partition query), then disconnects.
PGBENCH_SETUP_STATEMENTS = 2
TPCB_STATEMENTS = 7  # BEGIN, 3 UPDATE, SELECT, INSERT, END
CLIENTS = 4
MY_PASSWORD = 'Bench-Secret-7'


class BigCapture(dbtest.Capture):
    """dbtest.Capture with a 1 GiB ring at a higher priority, and the kernel drop count
    parsed, so a capture with holes is never benchmarked. In immediate mode libpcap uses
    fixed ring slots as large as lo's 64 KiB MTU, so the default ring holds only a few
    thousand packets, which a loaded 2-core box overruns while pgbench keeps both busy."""

    def __enter__(self):
        flt = ' or '.join(f'tcp port {p}' for p in self.ports)
        self.proc = subprocess.Popen(['nice', '-n', '-10', 'tcpdump', '-i', self.iface, '-U',
                                      '--immediate-mode', '-B', '1048576', '-s', '262144', '-w',
                                      self.path, flt],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        if 'listening' not in line:
            raise RuntimeError('tcpdump failed: ' + line)
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        super().__exit__(*exc)
        m = re.search(r'(\d+) packets dropped by kernel', self.summary)
        self.drops = int(m.group(1)) if m else -1
        return False


def log(msg):
    print(msg, flush=True)


def capture_with_retry(path, port, client, what):
    """Run client() under tcpdump; retry (up to 3 times) when tcpdump drops packets."""
    for attempt in range(3):
        with BigCapture(path, [port]) as cap:
            result = client()
        if cap.drops == 0:
            return result
        log(f'  {what}: tcpdump dropped {cap.drops} packets, capturing again')
    raise RuntimeError(f'{what}: tcpdump keeps dropping packets')


# ---- capture generation ----

def gen_pg(outdir, tpcb_tx, select_tx):
    pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.1/32', 'trust')])
    subprocess.run(['pgbench', '-i', '-s', '1', '-q', '-h', pg.dir, '-p', str(pg.port),
                    '-U', 'postgres', 'postgres'], check=True, capture_output=True)
    out = {}

    def pgbench(path, args, per_tx, tx):
        per_client = max(1, tx // CLIENTS)

        def client():
            r = subprocess.run(['pgbench', '-n', '-c', str(CLIENTS), '-j', '2', '-t', str(per_client),
                                '-h', '127.0.0.1', '-p', str(pg.port), '-U', 'postgres'] + args +
                               ['postgres'], capture_output=True, text=True, check=True)
            return r.stdout
        t0 = time.time()
        report = capture_with_retry(path, pg.port, client, os.path.basename(path))
        done = int(re.search(r'actually processed: (\d+)', report).group(1))
        failed = int(re.search(r'failed transactions: (\d+)', report).group(1))
        if failed:
            raise RuntimeError(f'pgbench reported {failed} failed transactions')
        log(f'  {os.path.basename(path)}: pgbench processed {done} transactions '
            f'in {time.time() - t0:.1f} s')
        return {'port': pg.port, 'protocol': 'postgresql', 'transactions': done,
                'client_statements': done * per_tx,
                'expected': done * per_tx + PGBENCH_SETUP_STATEMENTS,
                'derivation': f'{done} tx x {per_tx} + {PGBENCH_SETUP_STATEMENTS} setup'}

    p = os.path.join(outdir, 'pg_tpcb.pcap')
    out['pg_tpcb'] = dict(pgbench(p, ['-M', 'simple'], TPCB_STATEMENTS, tpcb_tx), path=p,
                          what='pgbench TPC-B, simple protocol')
    p = os.path.join(outdir, 'pg_select.pcap')
    out['pg_select'] = dict(pgbench(p, ['-S', '-M', 'prepared'], 1, select_tx), path=p,
                            what='pgbench -S -M prepared')
    pg.stop()
    return out


def gen_my(outdir, events):
    my = dbtest.MariaDB()
    my.sql('CREATE DATABASE sbtest')
    my.sql(f"CREATE USER sbtest@'127.0.0.1' IDENTIFIED BY '{MY_PASSWORD}'")
    my.sql("GRANT ALL ON sbtest.* TO sbtest@'127.0.0.1'")
    common = ['oltp_read_write', '--db-driver=mysql', '--mysql-host=127.0.0.1',
              f'--mysql-port={my.port}', '--mysql-user=sbtest', f'--mysql-password={MY_PASSWORD}',
              '--mysql-db=sbtest', '--mysql-ssl=off', '--tables=1', '--table-size=10000',
              '--rand-seed=1']
    subprocess.run(['sysbench'] + common + ['--threads=2', 'prepare'], check=True,
                   capture_output=True)
    out = {}
    for name, mode, what in (('my_rw', 'disable', 'sysbench oltp_read_write, COM_QUERY'),
                             ('my_rw_ps', 'auto', 'sysbench oltp_read_write, prepared')):
        path = os.path.join(outdir, name + '.pcap')

        def client(mode=mode):
            r = subprocess.run(['sysbench'] + common + [f'--threads={CLIENTS}', f'--events={events}',
                                                        '--time=0', f'--db-ps-mode={mode}', 'run'],
                               capture_output=True, text=True, check=True)
            return r.stdout
        t0 = time.time()
        report = capture_with_retry(path, my.port, client, name)
        total = int(re.search(r'total:\s+(\d+)', report).group(1))
        tx = int(re.search(r'transactions:\s+(\d+)', report).group(1))
        errs = int(re.search(r'ignored errors:\s+(\d+)', report).group(1))
        reconn = int(re.search(r'reconnects:\s+(\d+)', report).group(1))
        log(f'  {name}: sysbench {tx} transactions, {total} queries, {errs} ignored errors, '
            f'{reconn} reconnects in {time.time() - t0:.1f} s')
        # sysbench counts a query that failed with an ignored error (a deadlock: it retries
        # the transaction) under "ignored errors", not under "queries"; it was still sent.
        out[name] = {'port': my.port, 'protocol': 'mysql', 'transactions': tx,
                     'client_statements': total + errs, 'expected': total + errs, 'path': path,
                     'what': what,
                     'derivation': f'sysbench "queries: total" {total} + {errs} ignored errors '
                                   f'({tx} tx)'}
    my.stop()
    return out


# ---- timing ----

def run_timed(cmd, stdout=subprocess.DEVNULL):
    """Wall time, CPU time (user+sys, all threads) and peak RSS (KiB) of one process.
    The peak RSS comes from /usr/bin/time: a child forked from this Python process would
    report Python's own pages (counted before exec) as its maximum."""
    rss_file = os.path.join(WORK, 'rss.txt')
    t0 = time.perf_counter()
    p = subprocess.Popen(['/usr/bin/time', '-f', '%M', '-o', rss_file] + cmd, stdout=stdout,
                         stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors='replace')
    p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError(f'{cmd[0]} failed ({p.returncode}): {err.strip()[:500]}')
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    return wall, ru.ru_utime + ru.ru_stime, rss


def dbtap_config(work, cap, audit):
    path = os.path.join(work, f'{cap["name"]}.{audit}.json')
    other = 'mysql' if cap['protocol'] == 'postgresql' else 'postgresql'
    with open(path, 'w') as f:
        # Default port of the other protocol moved out of the way; no probing needed.
        json.dump({'ports': {cap['protocol']: [cap['port']], other: [1]}, 'audit': audit}, f)
    return path


def tshark_count(out_path, protocol):
    with open(out_path) as f:
        text = f.read()
    if protocol == 'postgresql':
        return text.count('Simple query') + text.count('Execute')
    n = 0
    for line in text.splitlines():
        for v in line.split(','):
            if v.strip() in ('3', '23'):  # COM_QUERY, COM_STMT_EXECUTE
                n += 1
    return n


def paired(runs, base, k):
    """Median, lowest and highest of runs[r][k] / base[r][k] over the rounds both ran
    (tshark runs in the first rounds only)."""
    q = [x[k] / y[k] for x, y in zip(runs, base) if y[k] > 0]
    return statistics.median(q), min(q), max(q)


def ptqd_count(out_path):
    """Queries pt-query-digest's profile lists (--limit 100%: every class, plus MISC)."""
    n = 0
    with open(out_path) as f:
        for line in f:
            m = re.match(r'#\s+(\d+|MISC)\s+0x\S+\s+[\d.]+\s+[\d.]+%\s+(\d+)\s', line)
            if m:
                n += int(m.group(2))
    return n


def bench_capture(cap, tools, reps, tshark_reps, work, ptqd_reps=1):
    """Interleave the tools, reps rounds; return {tool: [(wall, cpu, rss)]} and checks."""
    res = {t: [] for t in tools}
    checks = {}
    db = os.path.join(work, cap['name'] + '.db')
    for r in range(reps):
        for tool in tools:
            if tool == 'tshark' and r >= tshark_reps:
                continue
            if tool == 'pt-query-digest' and (r >= ptqd_reps or cap['protocol'] != 'mysql'):
                continue
            if tool == 'libpcap':
                out = os.path.join(work, 'count.txt')
                with open(out, 'w') as f:
                    res[tool].append(run_timed([PCAP_COUNT, cap['path']], stdout=f))
                with open(out) as f:
                    cap['packets'] = int(f.read().split()[1])
            elif tool == 'libnids':
                res[tool].append(run_timed([NIDS_COUNT, cap['path']]))
            elif tool == 'tshark':
                field = 'pgsql.type' if cap['protocol'] == 'postgresql' else 'mysql.command'
                out = os.path.join(work, 'tshark.txt')
                proto = 'pgsql' if cap['protocol'] == 'postgresql' else 'mysql'
                with open(out, 'w') as f:
                    res[tool].append(run_timed(['tshark', '-n', '-r', cap['path'], '-d',
                                                f'tcp.port=={cap["port"]},{proto}', '-T', 'fields',
                                                '-e', field], stdout=f))
                checks['tshark_statements'] = tshark_count(out, cap['protocol'])
            elif tool == 'pt-query-digest':
                out = os.path.join(work, 'ptqd.txt')
                port = int(cap['port'])
                pipe = (f'tcpdump -r {shlex.quote(cap["path"])} -s 65535 -x -nn -q -tttt '
                        f'"tcp port {port}" 2>/dev/null | pt-query-digest --type tcpdump '
                        f'--watch-server 127.0.0.1:{port} --limit 100% 2>/dev/null')
                with open(out, 'w') as f:
                    res[tool].append(run_timed(['sh', '-c', pipe], stdout=f))
                checks['ptqd_statements'] = ptqd_count(out)
            else:
                audit = 'findings' if tool.endswith('-findings') else 'all'
                ours = tool.startswith('dbtap-')
                binary = DBTAP if ours else COMPARE
                for suffix in ('', '-wal', '-shm'):
                    if os.path.exists(db + suffix):
                        os.unlink(db + suffix)
                res[tool].append(run_timed([binary, 'run', '-q', '-r', cap['path'], '-d', db, '-c',
                                            dbtap_config(work, cap, audit)]))
                if not ours:
                    continue  # the statement checks below are dbtap's
                con = sqlite3.connect(db)
                stored = con.execute('SELECT count(*) FROM statements').fetchone()[0]
                observed = con.execute('SELECT coalesce(sum(statements), 0) FROM sessions').fetchone()[0]
                drops = json.loads(con.execute('SELECT drops FROM runs').fetchone()[0] or '{}')
                sdrops = con.execute('SELECT sensor_drops FROM runs').fetchone()[0]
                con.close()
                checks[f'{audit}_stored'] = stored
                checks[f'{audit}_observed'] = observed
                checks[f'{audit}_gaps'] = drops.get('gaps', -1)
                checks[f'{audit}_sensor_drops'] = sdrops
    return res, checks


def rss_trajectory(cap, work, samples_out):
    """Sample VmRSS of dbtap (audit all) every 10 ms; steady state = after the first 20%."""
    db = os.path.join(work, 'rss.db')
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    p = subprocess.Popen([DBTAP, 'run', '-q', '-r', cap['path'], '-d', db, '-c',
                          dbtap_config(work, cap, 'all')], stderr=subprocess.DEVNULL)
    rss = []
    while p.poll() is None:
        try:
            with open(f'/proc/{p.pid}/status') as f:
                m = re.search(r'VmRSS:\s+(\d+)', f.read())
                if m:
                    rss.append(int(m.group(1)))
        except OSError:
            pass
        time.sleep(0.01)
    samples_out.extend(rss)
    return rss


def mib(kib):
    return kib / 1024.0


def fmt_rate(x):
    if x >= 1e6:
        return f'{x / 1e6:.2f} M'
    if x >= 1e3:
        return f'{x / 1e3:.1f} k'
    return f'{x:.0f}'


# ---- live replay ----

def live_replay(cap, work, mbps, audit='all'):
    """dbtap -i lo in a private network namespace while tcpreplay replays the capture
    onto that namespace's lo. The namespace's lo has no address, so the kernel neither
    answers nor resets the replayed segments; dbtap only watches."""
    ns = f'dbtapbench{os.getpid()}'
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    try:
        subprocess.run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'], check=True)
        subprocess.run(['ip', '-n', ns, 'addr', 'flush', 'dev', 'lo'], check=True)
        db = os.path.join(work, 'live.db')
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        cfg = dbtap_config(work, cap, audit)
        p = subprocess.Popen(['ip', 'netns', 'exec', ns, DBTAP, 'run', '-q', '-i', 'lo', '-d', db,
                              '-c', cfg], stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        if p.poll() is not None:
            raise RuntimeError('dbtap -i lo exited: ' + p.stderr.read())
        # -K: preload the file, or tcpreplay itself tops out near 150 Mbit/s here
        # 'max': --topspeed; its rate limiter costs tcpreplay a third of its top speed here
        rate = ['--topspeed'] if mbps == 'max' else [f'--mbps={mbps}']
        r = subprocess.run(['ip', 'netns', 'exec', ns, 'tcpreplay', '-K', '-i', 'lo'] + rate +
                           [cap['path']], capture_output=True, text=True)
        time.sleep(2)
        # VmHWM: peak RSS of dbtap itself ('ip netns exec' became dbtap); the rusage of a
        # child forked from Python would also count Python's pages from before the exec.
        with open(f'/proc/{p.pid}/status') as f:
            hwm = int(re.search(r'VmHWM:\s+(\d+)', f.read()).group(1))
        p.send_signal(signal.SIGTERM)
        os.wait4(p.pid, 0)
        rated = re.search(r'Rated:\s+([\d.]+) Bps, ([\d.]+) Mbps, ([\d.]+) pps', r.stdout)
        sent = re.search(r'Actual:\s+(\d+) packets', r.stdout)
        failed = re.search(r'Failed packets:\s+(\d+)', r.stdout)
        con = sqlite3.connect(db)
        run = con.execute('SELECT packets, kernel_drops, sensor_drops, drops FROM runs').fetchone()
        stored = con.execute('SELECT count(*) FROM statements').fetchone()[0]
        observed = con.execute('SELECT coalesce(sum(statements), 0) FROM sessions').fetchone()[0]
        con.close()
        return {'mbps': float(rated.group(2)) if rated else None,
                'pps': float(rated.group(3)) if rated else None,
                'sent': int(sent.group(1)) if sent else None,
                'failed': int(failed.group(1)) if failed else None,
                'seen': run[0], 'kernel_drops': run[1], 'sensor_drops': run[2],
                'gaps': json.loads(run[3] or '{}').get('gaps'), 'stored': stored,
                'observed': observed,
                'rss_mib': mib(hwm), 'tcpreplay': r.stdout + r.stderr}
    finally:
        subprocess.run(['ip', 'netns', 'del', ns])


# ---- flow split ----

def split_filter(n, k):
    """BPF that keeps bucket k of n: a multiplicative hash of the sum of both addresses and
    both ports, so both directions of a flow land in the same bucket (the sum does not
    change when source and destination swap). The multiply spreads Linux's even-only
    client ports; tcp[] reads IPv4 only, so IPv6 (TCP right after the fixed header) has
    its own half. contrib/deploy.md documents the same expression."""
    v4 = f'(((ip[12:4] + ip[16:4] + tcp[0:2] + tcp[2:2]) * 2654435761) >> 16) % {n} = {k}'
    a6 = ' + '.join(f'ip6[{o}:4]' for o in range(8, 40, 4))
    v6 = f'((({a6} + ip6[40:2] + ip6[42:2]) * 2654435761) >> 16) % {n} = {k}'
    one = f'(ip and tcp and {v4}) or (ip6 and ip6[6] = 6 and {v6})'
    # the same under one or two VLAN tags (each 'vlan' moves the offsets 4 bytes on)
    return f'({one}) or (vlan and (({one}) or (vlan and ({one}))))'


def split_check(cap, work, n):
    """N sensors, one BPF hash bucket each: both directions of every flow must land in
    the same bucket, and the merged report must count every statement once."""
    total = None
    dbs = []
    parts = []
    flows = []
    for k in range(n):
        flt = split_filter(n, k)
        r = subprocess.run([PCAP_COUNT, '-f', flt, cap['path']], capture_output=True, text=True,
                           check=True)
        parts.append(int(r.stdout.split()[1]))
        db = os.path.join(work, f'split{k}.db')
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        subprocess.run([DBTAP, 'run', '-q', '-r', cap['path'], '-f', flt, '-d', db, '-c',
                        dbtap_config(work, cap, 'all')], check=True, capture_output=True)
        con = sqlite3.connect(db)
        flows.append(set(con.execute('SELECT client_ip, client_port FROM sessions')))
        gaps = json.loads(con.execute('SELECT drops FROM runs').fetchone()[0]).get('gaps')
        mid = con.execute('SELECT count(*) FROM sessions WHERE midstream = 1').fetchone()[0]
        # A session that lost one direction has bytes only one way or unanswered statements.
        oneway = con.execute('SELECT count(*) FROM sessions WHERE bytes_to_server = 0 OR '
                             'bytes_to_client = 0').fetchone()[0]
        unknown = con.execute("SELECT count(*) FROM statements WHERE outcome != 'ok'").fetchone()[0]
        con.close()
        if gaps or mid or oneway or unknown:
            raise RuntimeError(f'split bucket {k}: {gaps} gaps, {mid} midstream sessions, '
                               f'{oneway} one-way sessions, {unknown} statements without a '
                               'result (a direction went to another bucket)')
        dbs += ['-d', db]
    r = subprocess.run([PCAP_COUNT, cap['path']], capture_output=True, text=True, check=True)
    total = int(r.stdout.split()[1])
    sh = subprocess.run([os.path.join(HERE, 'split_filter.sh'), str(n), '0'], capture_output=True,
                        text=True, check=True).stdout.strip()
    if sh != split_filter(n, 0):
        raise RuntimeError('split_filter.sh and bench.py disagree on the filter')
    overlap = sum(len(flows[i] & flows[j]) for i in range(n) for j in range(i + 1, n))
    rep = subprocess.run([DBTAP, 'report'] + dbs + ['--since', '2000-01-01T00:00:00Z',
                                                  '--format', 'json'],
                         capture_output=True, text=True, check=True)
    stored = json.loads(rep.stdout)['statements']['stored']
    return {'n': n, 'packets': parts, 'total_packets': total,
            'sessions': [len(f) for f in flows], 'overlap': overlap, 'report_stored': stored}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--full', action='store_true',
                    help="the issue's sizes: 200k TPC-B tx (1.4M queries), 1.2M prepared "
                         "selects, sysbench 11112 tx each (200k queries)")
    ap.add_argument('--pg-tpcb-tx', type=int, default=3000)
    ap.add_argument('--pg-select-tx', type=int, default=30000)
    ap.add_argument('--my-tx', type=int, default=600)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--tshark-reps', type=int, default=None,
                    help='rounds that include tshark (default: --reps; 1 with --full)')
    ap.add_argument('--captures', help='directory with captures from an earlier run (reuse)')
    ap.add_argument('--out', default=None, help='keep captures and results here')
    ap.add_argument('--only', default='pg_tpcb,pg_select,my_rw,my_rw_ps')
    ap.add_argument('--gen-only', action='store_true', help='make the captures and stop')
    ap.add_argument('--no-live', action='store_true')
    ap.add_argument('--no-tshark', action='store_true')
    ap.add_argument('--ptqd-reps', type=int, default=1,
                    help='rounds that include pt-query-digest (MySQL captures; default 1: it '
                         'decodes a few thousand packets a second)')
    ap.add_argument('--no-pt-query-digest', action='store_true')
    ap.add_argument('--mbps', default='1000',
                    help='tcpreplay rates for the live test, comma-separated (Mbit/s, or max '
                         'for --topspeed)')
    ap.add_argument('--live-audit', default='all',
                    help='audit modes for the live test, comma-separated (all, findings)')
    ap.add_argument('--skip-timing', action='store_true',
                    help='only the RSS, live and split checks')
    ap.add_argument('--dbtap', required=True)
    ap.add_argument('--compare', help='a second dbtap binary timed in the same rounds (e.g. '
                                      'a build before a change), its rows named after --compare-label')
    ap.add_argument('--compare-label', default='other')
    ap.add_argument('--pcap-count', required=True)
    ap.add_argument('--nids-count', help='the libnids-only loop (nids_count.c); its row is '
                                         'skipped without it')
    a = ap.parse_args()
    global DBTAP, PCAP_COUNT, NIDS_COUNT, WORK, COMPARE
    DBTAP, PCAP_COUNT = os.path.abspath(a.dbtap), os.path.abspath(a.pcap_count)
    NIDS_COUNT = os.path.abspath(a.nids_count) if a.nids_count else None
    COMPARE = os.path.abspath(a.compare) if a.compare else None
    if a.full:
        a.pg_tpcb_tx, a.pg_select_tx, a.my_tx = 200000, 1200000, 11112
        if a.tshark_reps is None:
            a.tshark_reps = 1
    if a.tshark_reps is None:
        a.tshark_reps = a.reps
    dbtest.need_root()
    only = a.only.split(',')
    outdir = a.out or tempfile.mkdtemp(prefix='dbtap-bench-')
    os.makedirs(outdir, exist_ok=True)
    work = WORK = os.path.join(outdir, 'work')
    os.makedirs(work, exist_ok=True)
    manifest = os.path.join(a.captures or outdir, 'manifest.json')
    if a.captures:
        with open(manifest) as f:
            caps = json.load(f)
        log(f'reusing captures in {a.captures}')
    else:
        caps = {}
        t0 = time.time()
        log(f'generating captures in {outdir}')
        if any(n.startswith('pg_') for n in only):
            caps.update(gen_pg(outdir, a.pg_tpcb_tx, a.pg_select_tx))
        if any(n.startswith('my_') for n in only):
            if shutil.which('sysbench'):
                caps.update(gen_my(outdir, a.my_tx))
            else:
                log('  sysbench not installed: MySQL captures skipped (run.sh installs it)')
        with open(manifest, 'w') as f:
            json.dump(caps, f, indent=1)
        log(f'captures made in {time.time() - t0:.0f} s')
        if a.gen_only:
            return 0
    tools = ['libpcap'] + (['libnids'] if NIDS_COUNT else []) + ['dbtap-findings', 'dbtap-all']
    if COMPARE:
        tools += [f'{a.compare_label}-findings', f'{a.compare_label}-all']
    if a.no_tshark:
        log('note: --no-tshark, its column is skipped')
    elif shutil.which('tshark'):
        tools.append('tshark')
    else:
        log('note: tshark not installed, its column is skipped')
    if not a.no_pt_query_digest and shutil.which('pt-query-digest') and shutil.which('tcpdump'):
        tools.append('pt-query-digest')
    elif not a.no_pt_query_digest:
        log('note: pt-query-digest (percona-toolkit) not installed, its row is skipped')

    rows = []
    failures = []
    for name in only:
        if name not in caps or a.skip_timing:
            continue
        cap = dict(caps[name], name=name)
        t0 = time.time()
        res, chk = bench_capture(cap, tools, a.reps, a.tshark_reps, work, a.ptqd_reps)
        for tool in tools:
            if not res[tool]:
                continue
            wall = statistics.median(w for w, _, _ in res[tool])
            rss = max(r for _, _, r in res[tool])
            # Ratios are taken round by round (both ran within the same minute), then the
            # median: the machine's speed drifts between rounds far more than within one.
            ratio, lo, hi = paired(res[tool], res['libpcap'], 0)
            nratio = paired(res[tool], res['libnids'], 0)[0] if res.get('libnids') else None
            cratio = paired(res[tool], res['libpcap'], 1)[0]
            rows.append((name, tool, len(res[tool]), cap['packets'] / wall, cap['expected'] / wall,
                         ratio, lo, hi, nratio, cratio, mib(rss), wall))
        log(f'{name}: {cap["what"]}: {cap["packets"]} packets, {cap["expected"]} statements '
            f'({cap["derivation"]}), timed in {time.time() - t0:.0f} s')
        for key in ('findings_observed', 'all_observed', 'all_stored'):
            ok = chk.get(key) == cap['expected']
            log(f'  check {key}: {chk.get(key)} vs expected {cap["expected"]}: {"ok" if ok else "MISMATCH"}')
            if not ok:
                failures.append(f'{name} {key}')
        log(f'  gaps {chk.get("all_gaps")}, sensor drops {chk.get("all_sensor_drops")}; '
            f'tshark counted {chk.get("tshark_statements", "-")} statements' +
            (f', pt-query-digest {chk["ptqd_statements"]}' if 'ptqd_statements' in chk else ''))
        caps[name]['checks'] = chk

    log('')
    log(f'{"capture":10} {"tool":15} {"n":>2} {"packets/s":>10} {"stmts/s":>10} '
        f'{"x floor":>8} {"(rounds)":>13} {"x nids":>7} {"x cpu":>7} {"peak RSS":>9} {"median s":>9}')
    for name, tool, n, pps, sps, ratio, lo, hi, nratio, cratio, rss, wall in rows:
        nr = f'{nratio:>6.2f}x' if nratio else f'{"-":>7}'
        span = f'{lo:.2f}-{hi:.2f}'
        log(f'{name:10} {tool:15} {n:>2} {fmt_rate(pps):>10} {fmt_rate(sps):>10} '
            f'{ratio:>7.2f}x {span:>13} {nr} {cratio:>6.2f}x {rss:>6.1f} MiB {wall:>9.3f}')
    log('(x floor: wall time / the libpcap loop\'s in the same round, median over the rounds, '
        'and its lowest and highest; x nids: the same over the libnids-only loop, i.e. what '
        'decoding and analysis add to reassembly; x cpu: x floor with user+sys CPU time, which '
        'counts the SQLite writer thread too)')

    if caps:
        big = max((caps[n] for n in only if n in caps), key=lambda c: c.get('expected', 0))
        big = dict(big, name=[n for n in only if n in caps and caps[n] is big][0])
        rss = rss_trajectory(big, work, [])
        if len(rss) >= 10:
            steady = rss[len(rss) // 5:]
            pts = [rss[min(len(rss) - 1, len(rss) * i // 10)] for i in range(1, 11)]
            log(f'\nRSS of dbtap (audit all) on {big["name"]}, every 10% of the run (MiB): ' +
                ' '.join(f'{mib(x):.1f}' for x in pts))
            log(f'  steady state (after 20%): min {mib(min(steady)):.1f}, max {mib(max(steady)):.1f} MiB')
        else:
            log(f'\nRSS of dbtap: run too short to sample ({len(rss)} samples)')

    if not a.no_live and shutil.which('tcpreplay') and 'pg_tpcb' in caps:
        cap = dict(caps['pg_tpcb'], name='pg_tpcb')
        for audit in a.live_audit.split(','):
            for mbps in a.mbps.split(','):
                lv = live_replay(cap, work, mbps if mbps == 'max' else int(mbps), audit)
                how = '--topspeed' if mbps == 'max' else f'--mbps={mbps}'
                log(f'\nlive: dbtap run -i lo (audit {audit}) while tcpreplay -K {how} '
                    f'replays pg_tpcb: tcpreplay sent {lv["sent"]} packets at {lv["mbps"]} Mbps / '
                    f'{lv["pps"]} pps (failed {lv["failed"]}); dbtap saw {lv["seen"]}, kernel drops '
                    f'{lv["kernel_drops"]} (on lo libpcap counts both copies of a packet), sensor '
                    f'drops {lv["sensor_drops"]}, gaps {lv["gaps"]}, decoded {lv["observed"]} and '
                    f'stored {lv["stored"]} of {cap["expected"]} statements, peak RSS '
                    f'{lv["rss_mib"]:.1f} MiB (with the 64 MiB ring)')
                if lv['kernel_drops'] != 0:
                    failures.append(f'live kernel drops at {mbps} Mbit/s ({audit})')

    if 'pg_tpcb' in caps:
        cap = dict(caps['pg_tpcb'], name='pg_tpcb')
        for n in (2, 3):
            sp = split_check(cap, work, n)
            ok = (sum(sp['packets']) == sp['total_packets'] and sp['overlap'] == 0 and
                  sp['report_stored'] == cap['expected'])
            log(f'\nsplit into {n} sensors (contrib/deploy.md hash filter): packets '
                f'{sp["packets"]} of {sp["total_packets"]}, sessions {sp["sessions"]}, '
                f'shared sessions {sp["overlap"]}, no gaps, midstream or one-way sessions; '
                f'dbtap report -d ... merged: {sp["report_stored"]} statements stored of '
                f'{cap["expected"]}: {"ok" if ok else "FAILED"}')
            if not ok:
                failures.append(f'split {n}')

    with open(manifest, 'w') as f:
        json.dump(caps, f, indent=1)
    log(f'\ncaptures and results in {outdir}')
    if failures:
        log('FAILED: ' + ', '.join(failures))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
