"""A live sensor's health (issue #22): `dbtap run -i lo` with stats_interval_s = 1 while
psql talks to a real PostgreSQL 15. Every interval: a stats line on stderr (also with -q),
a "stats" event in --json, the runs row updated (packets, stats, wall-clock start), the
Prometheus metrics file rewritten; sd_notify READY, STATUS and WATCHDOG reach a
NOTIFY_SOCKET; `dbtap status` says alive (exit 0). SIGTERM: STOPPING, one closing line,
the run row closed 'ok' with its wall-clock stop. A kill -9'd sensor: the row keeps the
last interval's counters and `dbtap status` says not alive (exit 1)."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
exe = dbtest.dbtap_binary()
pg = dbtest.Postgres()
pg.sql("CREATE ROLE hal LOGIN PASSWORD 'Health-Secret-1'")
pg.sql("CREATE DATABASE health OWNER hal")
tmp = tempfile.mkdtemp(prefix='dbtap-health-')
db = os.path.join(tmp, 'h.db')
js = os.path.join(tmp, 'h.json')
prom = os.path.join(tmp, 'dbtap.prom')
cfg = os.path.join(tmp, 'cfg.json')
with open(cfg, 'w') as f:
    json.dump({'ports': {'postgresql': [pg.port]}, 'capture': {'stats_interval_s': 1}}, f)

# A NOTIFY_SOCKET like systemd's: a datagram socket we read.
nsock_path = os.path.join(tmp, 'notify')
nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
nsock.bind(nsock_path)
nsock.settimeout(0.2)
notes = []
reading = True


# Read it all the time, as systemd does: a full queue (net.unix.max_dgram_qlen, 10) would
# block the sensor's sd_notify.
def read_notify():
    while reading:
        try:
            notes.append(nsock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass


reader = threading.Thread(target=read_notify, daemon=True)
reader.start()


def drain_notify():
    time.sleep(0.5)


def start(dbpath, extra=()):
    env = dict(os.environ, NOTIFY_SOCKET=nsock_path, WATCHDOG_USEC='2000000')
    env.pop('WATCHDOG_PID', None)
    return subprocess.Popen([exe, 'run', '-q', '-i', 'lo', '-d', dbpath, '-c', cfg,
                             '-f', f'tcp port {pg.port}'] + list(extra),
                            stderr=subprocess.PIPE, text=True, env=env)


def status(dbpath):
    return subprocess.run([exe, 'status', '-d', dbpath], capture_output=True, text=True, timeout=30)


t0 = time.time()
proc = start(db, ['--json', js, '--metrics-file', prom])
time.sleep(1.5)
c.check(proc.poll() is None, 'dbtap is capturing on lo')
for i in range(3):
    r = pg.psql('hal', 'Health-Secret-1', 'SELECT %d; SELECT pg_sleep(0.2);' % i, db='health')
    c.eq(r.returncode, 0, f'psql session {i}')
time.sleep(2.5)

# While it runs: the runs row, the metrics file, status.
run = dbtest.rows(db, 'SELECT * FROM runs')[0]
c.eq(run['status'], 'running', 'runs.status is running while capturing')
c.check(run['ended_at'] is None and run['sensor_stopped_at'] is None, 'no end while running')
c.check(run['packets'] and run['packets'] > 0, f'runs.packets updated while running ({run["packets"]})')
c.check(run['stats_at'] is not None and run['stats_interval_s'] == 1, 'runs.stats_at / stats_interval_s set')
st = json.loads(run['stats'] or '{}')
c.check(st.get('statements', 0) >= 3 and st.get('sessions', 0) >= 3,
        f'runs.stats counts the statements and sessions so far ({st.get("statements")}, {st.get("sessions")})')
c.check(run['pid'] == proc.pid, 'runs.pid is the sensor')
text = open(prom).read() if os.path.exists(prom) else ''
c.check('dbtap_packets_total{source="iface:lo"}' in text, 'metrics file: dbtap_packets_total with the source label')
c.check('# TYPE dbtap_sessions_open gauge' in text and '# TYPE dbtap_findings_total counter' in text,
        'metrics file: typed gauges and counters')
c.check(not [p for p in os.listdir(tmp) if '.tmp.' in p], 'metrics file written atomically (no temporary left)')
s = status(db)
c.eq(s.returncode, 0, f'dbtap status: exit 0 for a live sensor ({s.stdout.strip()[:200]})')
c.check('iface:lo' in s.stdout and 'alive' in s.stdout and 'NOT' not in s.stdout, 'dbtap status says alive')

proc.send_signal(signal.SIGTERM)
try:
    proc.wait(20)
except subprocess.TimeoutExpired:
    proc.kill()
err = proc.stderr.read()
c.eq(proc.returncode, 0, 'SIGTERM: exit 0')
lines = err.splitlines()
stats_lines = [l for l in lines if l.startswith('dbtap: stats iface:lo:')]
c.check(len(stats_lines) >= 3, f'a stats line on stderr every second despite -q ({len(stats_lines)})')
c.check(lines and ' done after ' in lines[-1] and 'statements' in lines[-1] and 'gaps' in lines[-1],
        f'SIGTERM: one closing line ({lines[-1] if lines else ""})')
drain_notify()
c.check(any('READY=1' in n for n in notes), 'sd_notify READY=1')
c.check(any(n.startswith('STATUS=stats iface:lo') for n in notes), 'sd_notify STATUS= with the stats line')
c.check(sum('WATCHDOG=1' in n for n in notes) >= 2, f'sd_notify WATCHDOG=1 ({sum("WATCHDOG=1" in n for n in notes)})')
c.check(any('STOPPING=1' in n for n in notes), 'sd_notify STOPPING=1')
events = [json.loads(l) for l in open(js)]
stats_ev = [e for e in events if e.get('event_type') == 'stats']
c.check(len(stats_ev) >= 3, f'--json: a stats event per interval ({len(stats_ev)})')
if stats_ev:
    e = stats_ev[-1]
    c.check(all(k in e for k in ('ts', 'run_id', 'packets', 'kernel_drops', 'sensor_drops', 'sessions_open',
                                 'statements', 'findings', 'decoder_queue_bytes', 'writer_queue_batches',
                                 'lag_seconds')), 'stats event: the counters, queues and lag')
errs = dbtest.json_line_errors(js)
c.check(not errs, f'--json (dbtap format): every line, stats events included, validates ({errs[:3]})')
run = dbtest.rows(db, 'SELECT * FROM runs')[0]
c.eq(run['status'], 'ok', 'runs.status ok after SIGTERM')
wall = run['sensor_started_at'], run['sensor_stopped_at']
c.check(wall[0] and wall[1] and wall[0] < wall[1], 'wall-clock sensor start and stop recorded')
c.check(run['started_at'] >= wall[0], 'started_at is the first packet, after the sensor started')
s = status(db)
c.eq(s.returncode, 1, 'dbtap status: exit 1 when no sensor runs')

# kill -9: at most one interval lost; status says not alive.
db2 = os.path.join(tmp, 'k.db')
js2 = os.path.join(tmp, 'k.ocsf.json')
proc = start(db2, ['--json', js2, '--json-format', 'ocsf'])
time.sleep(1.5)
r = pg.psql('hal', 'Health-Secret-1', 'SELECT 42;', db='health')
time.sleep(2.5)
s = status(db2)
c.eq(s.returncode, 0, 'second sensor alive')
proc.kill()
proc.wait()
run = dbtest.rows(db2, 'SELECT * FROM runs')[0]
c.eq(run['status'], 'running', 'kill -9: the row still says running')
st = json.loads(run['stats'] or '{}')
c.check(st.get('statements', 0) >= 1 and run['packets'] > 0, 'kill -9: the last interval\'s counters are stored')
ocsf_stats = [e for e in map(json.loads, open(js2)) if e.get('class_uid') == 6002]
c.check(len(ocsf_stats) >= 2 and ocsf_stats[-1].get('activity_name') == 'Stats'
        and 'packets' in ocsf_stats[-1].get('unmapped', {}),
        f'--json-format ocsf: a 6002 Application Lifecycle "Stats" event per interval ({len(ocsf_stats)})')
errs = dbtest.json_line_errors(js2)
c.check(not errs, f'--json (ocsf): every line validates ({errs[:3]})')
s = status(db2)
c.eq(s.returncode, 1, f'dbtap status: exit 1 for a killed sensor ({s.stdout.strip()[:160]})')
c.check('NOT ALIVE' in s.stdout, 'dbtap status says NOT ALIVE')

# The sensor restarted (as systemd does after a crash): the killed run's row is closed as
# failed at its last stats record, and status judges the sensor that runs now.
proc = start(db2)
time.sleep(2.5)
rows = dbtest.rows(db2, 'SELECT id, status, error, sensor_stopped_at, stats_at FROM runs ORDER BY id')
c.check(len(rows) == 2 and rows[0]['status'] == 'failed' and 'without closing' in (rows[0]['error'] or '')
        and rows[0]['sensor_stopped_at'] == rows[0]['stats_at'] and rows[1]['status'] == 'running',
        f'restart after kill -9: the old row is marked failed at its last stats ({rows})')
s = status(db2)
c.eq(s.returncode, 0, f'dbtap status: exit 0 again once the restarted sensor runs ({s.stdout.strip()[:200]})')
proc.send_signal(signal.SIGTERM)
proc.wait(20)
c.check('closing' in proc.stderr.read(), 'the restarted sensor said it closed the stale run')

# A run that fails before capturing: its row is marked failed with the reason.
db3 = os.path.join(tmp, 'f.db')
r = subprocess.run([exe, 'run', '-q', '-i', 'no-such-iface0', '-d', db3], capture_output=True, text=True, timeout=30)
c.eq(r.returncode, 1, 'capture on a missing interface: exit 1')
rows = dbtest.rows(db3, 'SELECT status, error FROM runs')
c.check(len(rows) == 1 and rows[0]['status'] == 'failed' and 'no-such-iface0' in (rows[0]['error'] or ''),
        f'failed start: its run row is marked failed with the reason ({rows})')
for p in (db, js, prom):
    dbtest.assert_secret_absent(c, 'Health-Secret-1', p)
c.done()
