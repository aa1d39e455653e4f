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
"""
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
    c.done()


if len(sys.argv) > 2 and sys.argv[2] == 'inner':
    inner(sys.argv[3])
tmp = tempfile.mkdtemp(prefix='dbtap-sinkloss-')
start_lock(tmp)
run_lock(tmp)
if os.geteuid() == 0 and shutil.which('unshare'):
    r = subprocess.run(['unshare', '-m', sys.executable, __file__, dbtap, 'inner', tmp],
                       capture_output=True, text=True)
    print(r.stdout, end='')
    c.check(r.returncode == 0, f'ro_report: in a private mount namespace ({r.stderr.strip()[-300:]})')
else:
    print('# ro_report needs root (a tmpfs in a private mount namespace): skipped')
c.done()
