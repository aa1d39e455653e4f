"""Least privilege and operations, live on lo: `-Z nobody` drops root (and every
capability) once the capture is open, the database keeps being written, files are 0640,
SIGHUP reopens the JSON-lines file after logrotate moved it, the default BPF (no -f)
still sees the traffic, and SIGTERM flushes everything."""
import json
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
pg.sql("CREATE ROLE bob LOGIN PASSWORD 'Priv-Secret-1'")
tmp = tempfile.mkdtemp(prefix='dbtap-priv-')
os.chmod(tmp, 0o755)
out = os.path.join(tmp, 'out')
os.mkdir(out)
subprocess.run(['chown', 'nobody', out], check=True)
db = os.path.join(out, 'p.db')
js = os.path.join(out, 'p.json')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    json.dump({'ports': {'postgresql': [pg.port]}, 'capture': {'probe_other_ports': False}}, f)
proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', cfg,
                         '--json', js, '-Z', 'nobody', '-q'], stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
c.check(proc.poll() is None, 'dbtap runs after dropping privileges')
status = open(f'/proc/{proc.pid}/status').read()
uid = [l for l in status.splitlines() if l.startswith('Uid:')][0].split()[1:]
cap_eff = [l for l in status.splitlines() if l.startswith('CapEff:')][0].split()[1]
nobody = int(subprocess.run(['id', '-u', 'nobody'], capture_output=True, text=True).stdout)
c.eq(set(map(int, uid)), {nobody}, 'real, effective and saved uid are nobody')
c.eq(int(cap_eff, 16), 0, 'no effective capabilities left')
pg.psql('bob', 'Priv-Secret-1', 'SELECT 1;\nSELECT 2;\n')
time.sleep(1.0)
os.rename(js, js + '.1')  # what logrotate does
proc.send_signal(signal.SIGHUP)
time.sleep(0.5)
pg.psql('bob', 'Priv-Secret-1', 'SELECT 3;\n')
time.sleep(1.0)
proc.send_signal(signal.SIGTERM)
proc.wait(20)
c.eq(proc.returncode, 0, f'clean exit on SIGTERM ({proc.stderr.read().strip()})')
c.eq(oct(os.stat(db).st_mode & 0o777), '0o640', 'database created 0640')
c.check(os.path.exists(js), 'SIGHUP reopened a fresh JSON-lines file')
old = [json.loads(l) for l in open(js + '.1')]
new = [json.loads(l) for l in open(js)] if os.path.exists(js) else []
sq = lambda evs: [e.get('sql') for e in evs if e.get('event_type') == 'statement']
c.eq(sq(old), ['SELECT ?', 'SELECT ?'], 'statements before the rotation in the old file')
c.eq(sq(new), ['SELECT ?'], 'statements after the rotation in the new file')
st = dbtest.rows(db, 'SELECT count(*) AS n FROM statements')[0]['n']
c.eq(st, 3, 'all three statements stored by the unprivileged process')
dbtest.assert_secret_absent(c, 'Priv-Secret-1', db, js, js + '.1')
for p in (js, js + '.1'):
    if os.path.exists(p):
        c.eq(dbtest.json_line_errors(p), [], f'{os.path.basename(p)}: every line validates against storage/schema')

# -Z with -r: the files are opened with root's rights (this FIFO is root's, 0600), then
# parsed as nobody. Regression: -Z used to drop privileges only with -i.
sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'contrib', 'samples',
                      'pg-sample.pcap')
data = open(sample, 'rb').read()
fifo = os.path.join(tmp, 'feed.pcap')
os.mkfifo(fifo, 0o600)
fdb = os.path.join(out, 'files.db')
proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-q', '-r', fifo, '-d', fdb, '-Z', 'nobody'],
                        stderr=subprocess.PIPE, text=True)
with open(fifo, 'wb') as w:  # meets dbtap's open
    w.write(data[:40])  # the file header and part of the first record: dbtap waits for more
    w.flush()
    time.sleep(1.0)
    status = open(f'/proc/{proc.pid}/status').read()
    uid = [l for l in status.splitlines() if l.startswith('Uid:')][0].split()[1:]
    c.eq(set(map(int, uid)), {nobody}, '-r with -Z: the capture is parsed as nobody')
    w.write(data[40:])
proc.wait(30)
c.eq(proc.returncode, 0, f'-r with -Z: clean exit ({proc.stderr.read().strip()})')
ref = os.path.join(tmp, 'ref.db')
subprocess.run([dbtest.dbtap_binary(), 'run', '-q', '-r', sample, '-d', ref], check=True)
count = lambda p: dbtest.rows(p, 'SELECT count(*) AS n FROM statements')[0]['n']
c.eq(count(fdb), count(ref), '-r with -Z: every statement stored')
c.done()
