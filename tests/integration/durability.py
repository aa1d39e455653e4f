"""Durability: kill -9 in the middle of a live run leaves a database that opens and passes
PRAGMA integrity_check, with all but the last batch stored, and the next run appends to
it; a full disk and a read-only database give a one-line error and exit status 1, never
a crash."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-dur-')

# ---- kill -9 during a live run under load ----
pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.1/32', 'trust')])
db = os.path.join(tmp, 'k.db')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    f.write('{"ports": {"postgresql": [%d]}, "capture": {"stats_interval_s": 1}}' % pg.port)
proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', cfg, '-q',
                         '-f', f'tcp port {pg.port}'], stderr=subprocess.DEVNULL)
time.sleep(1.5)
import psycopg2  # noqa: E402
sent = 0
con = psycopg2.connect(host='127.0.0.1', port=pg.port, user='postgres', dbname='postgres')
con.autocommit = True
cur = con.cursor()
deadline = time.time() + 4
while time.time() < deadline:
    cur.execute('SELECT %s', (sent,))
    sent += 1
time.sleep(1.5)  # a batch boundary passes: all but the last second must be stored
proc.send_signal(signal.SIGKILL)
proc.wait()
con.close()
k = sqlite3.connect(db)
c.eq(k.execute('PRAGMA integrity_check').fetchone()[0], 'ok', 'integrity_check after kill -9')
stored = k.execute('SELECT count(*) FROM statements').fetchone()[0]
# issue #20 item 4: the run row is written every stats interval (1 s here) with the drop
# breakdown, so a kill -9 leaves at most one interval unrecorded (was: drops NULL)
drops, stats_at = k.execute('SELECT drops, stats_at FROM runs WHERE id = 1').fetchone()
k.close()
c.check(drops is not None and 'sink_dropped' in json.loads(drops) and 'gaps' in json.loads(drops),
        f'kill -9: runs.drops written while running ({drops})')
c.check(stats_at is not None, 'kill -9: runs.stats_at written while running')
c.check(stored >= sent * 0.5, f'{stored} of {sent} statements stored before kill -9 (loss <= last batch)')
r = dbtest.run_dbtap(sample, db, check=False)
c.eq(r.returncode, 0, 'the next run appends to the killed database')
c.eq(dbtest.rows(db, 'SELECT count(*) AS n FROM runs')[0]['n'], 2, 'two runs recorded')
pg.stop()

# ---- full disk, at many points of the run ----
mnt = os.path.join(tmp, 'small')
os.mkdir(mnt)
base = os.path.join(src, 'tests', 'capture', 'data', 'base.pcap')
want = None
for kib in range(96, 200, 12):
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={kib}k', 'tmpfs', mnt], check=True)
    try:
        full = os.path.join(mnt, 'full.db')
        r = dbtest.run_dbtap([sample, base], full, check=False)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        if r.returncode == 0:
            n = dbtest.rows(full, 'SELECT count(*) AS n FROM statements')[0]['n']
            c.eq(n, 17, f'{kib} KiB disk: exit 0 means every statement was stored')
        else:
            c.eq(r.returncode, 1, f'{kib} KiB disk full: exit status 1, no crash')
            c.check(len(lines) == 1 and 'full.db' in lines[0],
                    f'{kib} KiB disk full: one line naming the file ({lines})')
            k = sqlite3.connect(full)
            c.eq(k.execute('PRAGMA integrity_check').fetchone()[0], 'ok',
                 f'{kib} KiB disk full: database still consistent')
            k.close()
    finally:
        subprocess.run(['umount', mnt])

# ---- read-only database ----
subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], check=True)
try:
    ro = os.path.join(mnt, 'ro.db')
    dbtest.run_dbtap(sample, ro)
    subprocess.run(['mount', '-o', 'remount,ro', mnt], check=True)
    r = dbtest.run_dbtap(sample, ro, check=False)
    c.eq(r.returncode, 1, 'read-only database: exit status 1')
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    c.check(len(lines) == 1 and 'ro.db' in lines[0], f'read-only: one line naming the file ({lines})')
finally:
    subprocess.run(['umount', mnt])
c.done()
