"""Scale-out on one host: two `dbtap run -i lo --fanout G` sensors in one PACKET_FANOUT
group while 16 psql sessions talk to a real PostgreSQL 15. The kernel must hand each
flow, both directions, to exactly one sensor; together they store every statement, and
`dbtap report -d a -d b` merges them."""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
exe = dbtest.dbtap_binary()

# usage errors first: no server needed
for args, why in ((['-i', 'lo', '--fanout', '0'], 'group 0'),
                  (['-i', 'lo', '--fanout', '70000'], 'group over 65535'),
                  (['-i', 'lo', '--fanout', 'x'], 'not a number'),
                  (['-r', '/dev/null', '--fanout', '5'], 'with -r')):
    r = subprocess.run([exe, 'run', '-q', '-d', '/nonexistent/x.db'] + args, capture_output=True, text=True)
    c.eq(r.returncode, 2, f'--fanout {why}: usage error, exit 2')
    c.check('fanout' in r.stderr, f'--fanout {why}: the message names the option ({r.stderr.strip()[:80]})')

pg = dbtest.Postgres()
pg.sql("CREATE ROLE fan LOGIN PASSWORD 'Fan-Secret-1'")
pg.sql("CREATE DATABASE fandb OWNER fan")
tmp = tempfile.mkdtemp(prefix='dbtap-fanout-')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    json.dump({'ports': {'postgresql': [pg.port]}}, f)
group = random.randint(1000, 60000)
dbs = [os.path.join(tmp, f'{n}.db') for n in ('a', 'b')]
procs = [subprocess.Popen([exe, 'run', '-q', '-i', 'lo', '--fanout', str(group), '-d', db, '-c', cfg,
                           '-f', f'tcp port {pg.port}'], stderr=subprocess.PIPE, text=True)
         for db in dbs]
time.sleep(1.5)
c.check(all(p.poll() is None for p in procs), 'both sensors joined the fanout group and capture')
sessions = 16
for i in range(sessions):
    r = pg.psql('fan', 'Fan-Secret-1', f'SELECT {i};\nSELECT {i} + 1;\nSELECT {i} + 2;\n', db='fandb')
    c.eq(r.returncode, 0, f'psql session {i}')
time.sleep(1.0)
for p in procs:
    p.send_signal(signal.SIGTERM)
for p in procs:
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
    c.eq(p.returncode, 0, f'sensor stopped cleanly ({p.stderr.read().strip()[:200]})')

per = [dbtest.rows(db, 'SELECT client_port, statements, login, midstream, gaps FROM sessions') for db in dbs]
ports = [{s['client_port'] for s in rows} for rows in per]
c.eq(len(ports[0] & ports[1]), 0, 'no flow seen by both sensors')
c.eq(len(ports[0]) + len(ports[1]), sessions, f'all {sessions} sessions, split {len(ports[0])} + {len(ports[1])}')
c.check(len(ports[0]) > 0 and len(ports[1]) > 0, 'the kernel spread the flows over both sensors')
allrows = per[0] + per[1]
c.check(all(s['login'] == 'ok' and s['midstream'] == 0 and s['gaps'] == 0 for s in allrows),
        'every session whole: login seen, not mid-stream, no gaps (both directions at one sensor)')
stored = sum(dbtest.rows(db, 'SELECT count(*) AS n FROM statements WHERE verb = ?', ('SELECT',))[0]['n']
             for db in dbs)
c.eq(stored, 3 * sessions, 'every statement stored once')
r = subprocess.run([exe, 'report', '-d', dbs[0], '-d', dbs[1], '--format', 'json',
                    '--since', '2000-01-01T00:00:00Z'], capture_output=True, text=True)
c.eq(r.returncode, 0, f'report over both databases ({r.stderr.strip()[:200]})')
merged = json.loads(r.stdout)['statements']['stored'] if r.returncode == 0 else None
c.eq(merged, 3 * sessions, 'the merged report counts every statement once')
c.done()
