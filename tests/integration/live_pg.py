"""Live capture end to end: `dbtap run -i lo` while psql talks to a real PostgreSQL 15,
then SIGTERM. Every statement must be stored, the failed login recorded, the run row
closed, and no password may appear in any byte dbtap wrote (database, WAL, JSON)."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
pg = dbtest.Postgres()
pg.sql("CREATE ROLE alice LOGIN PASSWORD 'Live-Secret-123'")
pg.sql("CREATE DATABASE live OWNER alice")
tmp = tempfile.mkdtemp(prefix='dbtap-live-')
db = os.path.join(tmp, 'live.db')
js = os.path.join(tmp, 'live.json')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    f.write('{"ports": {"postgresql": [%d]}, "keep_literals": true}' % pg.port)
proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', cfg,
                         '--json', js, '-f', f'tcp port {pg.port}', '-q'],
                        stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
c.check(proc.poll() is None, 'dbtap is capturing on lo')
script = """
CREATE TABLE t (id int, secret_note text);
INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
SELECT * FROM t;
ALTER ROLE alice PASSWORD 'Rotated-Secret-456';
SELECT broken syntax here;
DELETE FROM t;
"""
r = pg.psql('alice', 'Live-Secret-123', script, db='live')
c.eq(r.returncode, 0, 'psql ran the script')
r = pg.psql('alice', 'Wrong-Secret-789', 'SELECT 1;', db='live')
c.check(r.returncode != 0, 'wrong password refused by the server')
time.sleep(1.0)
proc.send_signal(signal.SIGTERM)
try:
    proc.wait(20)
except subprocess.TimeoutExpired:
    proc.kill()
c.eq(proc.returncode, 0, f'dbtap stopped cleanly on SIGTERM ({proc.stderr.read().strip()})')

sess = dbtest.rows(db, 'SELECT * FROM sessions ORDER BY id')
c.eq([(s['db_user'], s['database'], s['login'], s['auth_method']) for s in sess],
     [('alice', 'live', 'ok', 'scram-sha-256'), ('alice', 'live', 'failed', 'scram-sha-256')],
     'two sessions: one login ok, one failed')
c.check(sess and (sess[-1]['login_error'] or '').startswith('28P01'), 'failed login carries SQLSTATE 28P01')
st = dbtest.rows(db, 'SELECT verb, outcome, rows, error_code FROM statements ORDER BY id')
c.eq([(s['verb'], s['outcome'], s['rows']) for s in st],
     [('CREATE', 'ok', 0), ('INSERT', 'ok', 3), ('SELECT', 'ok', 3), ('ALTER', 'ok', 0),
      ('SELECT', 'error', None), ('DELETE', 'ok', 3)], 'every statement stored with its outcome')
c.eq(st[4]['error_code'] if len(st) > 4 else None, '42601', 'syntax error code')
run = dbtest.rows(db, 'SELECT * FROM runs')[0]
c.check(run['ended_at'] is not None and run['packets'] > 0, 'run row closed with counters')
c.eq(run['kernel_drops'], 0, 'no kernel drops')
kinds = {f['kind'] for f in dbtest.rows(db, 'SELECT kind FROM findings')}
c.check('privilege_change' in kinds, 'ALTER ROLE ... PASSWORD is a privilege change')
c.check('destructive_statement' in kinds, 'DELETE without WHERE is destructive')
for secret in ('Live-Secret-123', 'Rotated-Secret-456', 'Wrong-Secret-789'):
    dbtest.assert_secret_absent(c, secret, db, js)
    c.eq(dbtest.json_line_errors(js), [], 'every JSON line validates against storage/schema')
c.done()
