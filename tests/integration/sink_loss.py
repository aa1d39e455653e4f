"""Loss is loud (issue #20 item 4): the SQLite writer against another process's lock and
a read-only file system, on the real PostgreSQL session of
tests/capture/data/base.pcap (7 statements).

  start_lock   another process holds the write lock when dbtap starts (4 s): dbtap waits,
               says so, and stores everything (was: exit 1, "database is locked")
  run_lock     the lock is taken after the schema is made and held 14 s, longer than the
               busy timeout: the batch is retried with backoff, reported on stderr while it
               fails, and stored once the lock goes (was: the batch dropped)
  (a full disk stays a one-line error with the batch counted: durability.py)
  ro_report    `dbtap report` on a database on a read-only file system (was: cannot open)
  ro_prune_dry_run  `dbtap prune --dry-run` there: what it would delete, nothing changed
  full_disk_*  a real full file system (48 MiB tmpfs filled) under the database while dbtap
               reads sqlmap-pg from a pipe: batches go to the spill file (output.spill) on
               another tmpfs, the loss is in every stats event, and once space is freed the
               spill is replayed, every statement stored, nothing dropped; with a 1 MiB spill
               cap the writer waits in place; stopped while still full, the next start
               replays the spill
  full_disk_live  live (-i lo in a private network namespace, sqlmap-pg replayed by
               tcpreplay) with no spill and a small queue: the newest rows are kept, the rest
               counted; the loss is in the stats events and on stderr while it lasts (was:
               one stderr line, then silence), and in runs.drops
"""
import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
base = os.path.join(src, 'tests', 'capture', 'data', 'base.pcap')
sqlmap = os.path.join(src, 'tests', 'integration', 'data', 'attacks', 'sqlmap-pg.pcap.gz')
dbtap = dbtest.dbtap_binary()
c = dbtest.Checks()


def count(db):
    con = sqlite3.connect(db)
    try:
        return con.execute('SELECT count(*) FROM statements').fetchone()[0]
    finally:
        con.close()


def hold_lock(db, seconds, ready):
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    con.execute('BEGIN IMMEDIATE')
    ready.set()
    time.sleep(seconds)
    con.execute('COMMIT')
    con.close()


def start_lock(tmp):
    db = os.path.join(tmp, 'start.db')
    dbtest.run_dbtap(base, db)
    ready = threading.Event()
    t = threading.Thread(target=hold_lock, args=(db, 4, ready))
    t.start()
    ready.wait()
    t0 = time.time()
    r = dbtest.run_dbtap(base, db, check=False)
    took = time.time() - t0
    t.join()
    c.eq(r.returncode, 0, f'start_lock: exit status ({r.stderr.strip()})')
    c.check('locked by another process' in r.stderr, f'start_lock: said it waits ({r.stderr.strip()})')
    c.check(took >= 3, f'start_lock: waited for the lock ({took:.1f} s)')
    c.eq(count(db), 14, 'start_lock: both runs stored')


def run_lock(tmp):
    db = os.path.join(tmp, 'run.db')
    p = subprocess.Popen([dbtap, 'run', '-q', '-d', db, '-r', '-'], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    for _ in range(100):  # the schema is made
        if os.path.exists(db + '-wal'):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    ready = threading.Event()
    t = threading.Thread(target=hold_lock, args=(db, 14, ready))
    t.start()
    ready.wait()
    p.stdin.write(open(base, 'rb').read())
    p.stdin.close()
    err = p.stderr.read().decode()
    rc = p.wait()
    t.join()
    c.eq(rc, 0, f'run_lock: exit status ({err.strip()})')
    c.check('writes failing' in err and 'locked' in err, f'run_lock: the failure reported ({err.strip()})')
    c.eq(count(db), 7, 'run_lock: nothing lost')


def inner(tmp):
    """In a private mount namespace (root): a small tmpfs for the database."""
    mnt = os.path.join(tmp, 'mnt')
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], check=True)
    db = os.path.join(mnt, 'ro.db')
    dbtest.run_dbtap(base, db)
    # read-only: the report reads the database it cannot write beside
    subprocess.run(['mount', '-o', 'remount,ro', mnt], check=True)
    r = subprocess.run([dbtap, 'report', '-d', db, '--since', '2000-01-01T00:00:00Z',
                        '--format', 'json'], capture_output=True, text=True)
    c.eq(r.returncode, 0, f'ro_report: exit status ({r.stderr.strip()})')
    c.check('"statements"' in r.stdout or '"workload"' in r.stdout, 'ro_report: a report came out')
    # prune --dry-run reads it too (immutable: nobody can write there) and changes nothing
    r = subprocess.run([dbtap, 'prune', '-d', db, '--older-than', '1d', '--dry-run'],
                       capture_output=True, text=True)
    c.eq(r.returncode, 0, f'ro_prune_dry_run: exit status ({r.stderr.strip()})')
    c.check('would delete 7 statements' in r.stdout, f'ro_prune_dry_run: counts ({r.stdout.strip()})')
    con = sqlite3.connect(f'file:{db}?immutable=1', uri=True)
    c.eq(con.execute('SELECT count(*) FROM statements').fetchone()[0], 7, 'ro_prune_dry_run: nothing deleted')
    con.close()
    subprocess.run(['umount', mnt])
    full_disk(tmp)
    full_disk_live(tmp)
    c.done()


def fill(mnt, leave_kib):
    """Fill the file system at mnt, leaving about leave_kib KiB free."""
    st = os.statvfs(mnt)
    free_kib = st.f_bavail * st.f_frsize // 1024
    with open(os.path.join(mnt, 'filler'), 'wb') as f:
        f.write(b'\0' * max(0, free_kib - leave_kib) * 1024)


def stats_events(path):
    out = []
    for line in open(path):
        e = json.loads(line)
        if e.get('event_type') == 'stats':
            out.append(e)
    return out


def full_disk(tmp):
    """A real full file system under the database (a 48 MiB tmpfs filled up) while dbtap
    reads sqlmap-pg (11,940 statements) from a pipe; the spill on a second tmpfs."""
    ref = os.path.join(tmp, 'ref.db')
    pcap = os.path.join(tmp, 'sqlmap-pg.pcap')
    with gzip.open(sqlmap) as f, open(pcap, 'wb') as o:
        o.write(f.read())
    dbtest.run_dbtap(pcap, ref)
    want = count(ref)
    for case, cap_mb, stop_first in (('full_disk_spill', 256, False), ('full_disk_spill_cap', 1, False),
                                     ('full_disk_stop_then_replay', 256, True)):
        a, b = os.path.join(tmp, case + '-db'), os.path.join(tmp, case + '-spill')
        os.makedirs(a)
        os.makedirs(b)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', a], check=True)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', b], check=True)
        try:
            db = os.path.join(a, 't.db')
            dbtest.run_dbtap(base, db)  # 7 statements; the schema is there
            cfg = os.path.join(tmp, case + '.json')
            with open(cfg, 'w') as f:
                json.dump({'output': {'spill': os.path.join(b, 'spill.db'), 'spill_max_mb': cap_mb,
                                      'batch_rows': 500}, 'capture': {'stats_interval_s': 1}}, f)
            fill(a, 400)
            ev = os.path.join(tmp, case + '-ev.json')
            p = subprocess.Popen([dbtap, 'run', '-q', '-r', '-', '-d', db, '-c', cfg, '--json', ev],
                                 stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            data = open(pcap, 'rb').read()
            freed = threading.Event()

            def feed():  # half while the disk is full, half after: stats events in both
                half, step = len(data) // 2, len(data) // 20
                for k in range(0, len(data), step):
                    if k >= half:
                        freed.wait()
                    p.stdin.write(data[k:k + step])
                    p.stdin.flush()
                    time.sleep(0.35)
                if not stop_first:
                    p.stdin.close()
            if stop_first:
                freed.set()  # all of it while the disk stays full
            feeder = threading.Thread(target=feed)
            feeder.start()
            time.sleep(5)
            if stop_first:  # the process ends while the disk is still full
                feeder.join()
                p.stdin.close()
                err = p.stderr.read().decode()
                rc = p.wait()
                c.eq(rc, 0, f'{case}: exit status ({err.strip()[-300:]})')
                c.check('wait in the spill' in err and 'next start replays' in err,
                        f'{case}: says where the rows are ({err.strip()[-300:]})')
                con = sqlite3.connect(os.path.join(b, 'spill.db'))
                spilled = con.execute('SELECT count(*) FROM statements').fetchone()[0]
                con.close()
                c.check(spilled > 0, f'{case}: statements in the spill file ({spilled})')
                os.unlink(os.path.join(a, 'filler'))
                r = subprocess.run([dbtap, 'run', '-q', '-r', base, '-d', db, '-c', cfg],
                                   capture_output=True, text=True)
                c.eq(r.returncode, 0, f'{case}: the next start ({r.stderr.strip()[-300:]})')
                c.check('earlier run spilled' in r.stderr, f'{case}: the next start says it replays ({r.stderr.strip()})')
                c.eq(count(db), 7 + want + 7, f'{case}: every statement stored after the replay')
                con = sqlite3.connect(db)
                runs = con.execute('SELECT id, status FROM runs ORDER BY id').fetchall()
                con.close()
                c.eq(runs, [(1, 'ok'), (2, 'ok'), (3, 'ok')], f'{case}: the spilled run row closed')
                continue
            os.unlink(os.path.join(a, 'filler'))  # free space while it runs
            freed.set()
            feeder.join()
            err = p.stderr.read().decode()
            rc = p.wait()
            c.eq(rc, 0, f'{case}: exit status ({err.strip()[-300:]})')
            c.check('writes failing' in err, f'{case}: the failure reported on stderr ({err.strip()[-300:]})')
            c.eq(count(db), 7 + want, f'{case}: every statement stored')
            st = stats_events(ev)
            c.check(st, f'{case}: stats events')
            if st:
                last = st[-1]
                if cap_mb > 1:  # at the cap the reader waits for the writer: no stats until it moves
                    c.check(any(e['db_failing_seconds'] > 0 for e in st), f'{case}: db_failing_seconds in the stats event')
                c.check(last['db_spilled'] > 0, f'{case}: rows spilled ({last["db_spilled"]})')
                c.eq(last['db_replayed'], last['db_spilled'], f'{case}: every spilled row replayed')
                c.eq(last['db_spill_rows'], 0, f'{case}: the spill is empty')
                c.eq(last['db_dropped'], 0, f'{case}: stored + dropped = total, nothing dropped')
            con = sqlite3.connect(os.path.join(b, 'spill.db'))
            left = con.execute('SELECT count(*) FROM statements').fetchone()[0]
            con.close()
            c.eq(left, 0, f'{case}: the spill file emptied')
        finally:
            subprocess.run(['umount', a])
            subprocess.run(['umount', b])


def full_disk_live(tmp):
    """A live sensor (no spill) whose database's file system is full for about 6 s while
    sqlmap-pg is replayed onto lo at 4 Mbit/s (12 s): the writer's queue (16 batches of 100
    rows) overflows, the oldest batches are given up for newer ones and counted."""
    case = 'full_disk_live'
    if not shutil.which('tcpreplay'):
        print(f'# {case}: tcpreplay is not installed (contrib/deps.sh test installs it): skipped')
        return
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    pcap = os.path.join(tmp, 'sqlmap-pg.pcap')  # unpacked by full_disk
    ref = os.path.join(tmp, 'ref.db')
    a = os.path.join(tmp, case + '-db')
    os.makedirs(a)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', a], check=True)
    try:
        db = os.path.join(a, 't.db')
        dbtest.run_dbtap(base, db)  # 7 statements; the schema is there
        cfg = os.path.join(tmp, case + '.json')
        with open(cfg, 'w') as f:
            json.dump({'output': {'batch_rows': 100}, 'capture': {'stats_interval_s': 1}}, f)
        fill(a, 400)
        ev = os.path.join(tmp, case + '-ev.json')
        p = subprocess.Popen([dbtap, 'run', '-i', 'lo', '-d', db, '-c', cfg, '--json', ev],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        rp = subprocess.Popen(['tcpreplay', '-i', 'lo', '--mbps=4', pcap],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(6)
        os.unlink(os.path.join(a, 'filler'))
        rp.wait()
        time.sleep(3)
        p.send_signal(2)
        err = p.stderr.read()
        c.eq(p.wait(), 0, f'{case}: exit status ({err.strip()[-300:]})')
        total = count(ref)
        stored = count(db) - 7
        c.check(0 < stored < total, f'{case}: some statements lost ({stored} of {total} stored)')
        con = sqlite3.connect(ref)
        last = con.execute('SELECT sql FROM statements ORDER BY ts DESC, id DESC LIMIT 20').fetchall()
        con.close()
        con = sqlite3.connect(db)
        kept = sum(con.execute('SELECT count(*) FROM statements WHERE sql = ?', r).fetchone()[0] > 0 for r in last)
        row = con.execute('SELECT drops, kernel_drops FROM runs ORDER BY id DESC LIMIT 1').fetchone()
        drops, kdrops = json.loads(row[0]), row[1] or 0
        con.close()
        if kdrops:  # a slow build (sanitizers) on a busy machine: the kernel dropped some
            print(f'# {case}: {kdrops} kernel drops, the newest-statements check is not meaningful')
        else:
            c.eq(kept, len(last), f'{case}: the newest statements (after space came back) stored')
        st = stats_events(ev)
        failing = [e for e in st if e['db_failing_seconds'] > 0]
        c.check(len(failing) >= 2, f'{case}: {len(failing)} stats events while writes failed')
        c.check(any(e['db_dropped'] > 0 for e in failing), f'{case}: the loss counted while it happens')
        final = st[-1]['db_dropped'] if st else 0
        c.check(final >= total - stored, f'{case}: every lost statement counted (db_dropped {final} >= {total - stored})')
        c.eq(drops.get('sink_dropped'), final, f'{case}: runs.drops says the same')
        lines = [x for x in err.splitlines() if 'writes failing' in x]
        c.check(len(lines) >= 3 and any('rows not stored' in x and not ' 0 rows not stored' in x for x in lines),
                f'{case}: stderr reports it every interval ({len(lines)} lines)')
    finally:
        subprocess.run(['umount', a])


if len(sys.argv) > 2 and sys.argv[2] == 'inner':
    inner(sys.argv[3])
tmp = tempfile.mkdtemp(prefix='dbtap-sinkloss-')
start_lock(tmp)
run_lock(tmp)
if os.geteuid() == 0 and shutil.which('unshare'):
    r = subprocess.run(['unshare', '-m', '-n', sys.executable, __file__, dbtap, 'inner', tmp],
                       capture_output=True, text=True)
    print(r.stdout, end='')
    c.check(r.returncode == 0, f'ro_report, full_disk_*: in private mount and network namespaces ({r.stderr.strip()[-300:]})')
else:
    print('# ro_report needs root (a tmpfs in a private mount namespace): skipped')
c.done()
