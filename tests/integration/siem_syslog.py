"""--syslog end to end with a real rsyslog (Debian package), started by this test on loopback
with its own config, work directory and pid file (never the system's):
  - offline (-r sample): what rsyslog received over TCP (octet counting), over UDP and over
    a unix datagram socket is exactly the --json file, line for line, in both formats;
    RFC 5424 header fields (APP-NAME, HOSTNAME = sensor, MSGID, severity) are right;
  - live (-i lo, PostgreSQL): rsyslog is stopped and restarted in the middle of the run;
    what it wrote is still exactly what --json wrote;
  - a receiver that is not there never fails or blocks the run: events are counted as not
    delivered, the exit status stays 0;
  - contrib/rsyslog/dbtap.conf passes `rsyslogd -N1`."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

RSYSLOGD = shutil.which('rsyslogd') or '/usr/sbin/rsyslogd'
if not os.path.exists(RSYSLOGD):
    dbtest.skip('rsyslog is not installed (contrib/deps.sh test installs it)')
dbtest.need_root()
c = dbtest.Checks()
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-syslog-')
os.chmod(tmp, 0o755)


class Rsyslog:
    """rsyslogd -n with inputs on free loopback ports; every input's messages go to its own
    file: the MSG alone, and the whole RFC 5424 message as rsyslog parsed it."""

    def __init__(self, name):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, 'work'), exist_ok=True)
        self.tcp, self.udp = dbtest.free_port(), dbtest.free_port()
        self.sock = os.path.join(self.dir, 'log.sock')
        self.conf = os.path.join(self.dir, 'rsyslog.conf')
        self.pid = os.path.join(self.dir, 'rsyslog.pid')
        d = self.dir
        with open(self.conf, 'w') as f:
            f.write(f'''
global(workDirectory="{d}/work" maxMessageSize="1m")
module(load="imtcp" MaxFrameSize="1100000")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
input(type="imtcp" address="127.0.0.1" port="{self.tcp}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{self.udp}" ruleset="udp")
input(type="imuxsock" Socket="{self.sock}" UseSpecialParser="off" ParseHostname="on"
      ruleset="unix")
template(name="msg" type="string" string="%msg%\\n")
template(name="hdr" type="string"
         string="%pri% %hostname% %app-name% %procid% %msgid% %syslogseverity%\\n")
ruleset(name="tcp") {{
  action(type="omfile" file="{d}/tcp.log" template="msg" flushOnTXEnd="on")
  action(type="omfile" file="{d}/tcp.hdr" template="hdr" flushOnTXEnd="on")
}}
ruleset(name="udp") {{ action(type="omfile" file="{d}/udp.log" template="msg") }}
ruleset(name="unix") {{ action(type="omfile" file="{d}/unix.log" template="msg") }}
''')
        r = subprocess.run([RSYSLOGD, '-N1', '-f', self.conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f'rsyslog config: {r.stderr}')
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([RSYSLOGD, '-n', '-f', self.conf, '-i', self.pid],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(100):  # listening?
            try:
                socket.create_connection(('127.0.0.1', self.tcp), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError('rsyslogd did not start listening')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.proc = None

    def lines(self, name):
        p = os.path.join(self.dir, name)
        if not os.path.exists(p):
            return []
        with open(p, encoding='utf-8') as f:
            return f.read().splitlines()

    def wait_lines(self, name, n, timeout=20):
        end = time.time() + timeout
        while time.time() < end and len(self.lines(name)) < n:
            time.sleep(0.1)
        time.sleep(0.3)  # nothing more trickles in
        return self.lines(name)


def json_lines(p):
    with open(p, encoding='utf-8') as f:
        return f.read().splitlines()


def run(args, ok=(0,)):
    r = subprocess.run([dbtest.dbtap_binary(), 'run', '-q'] + args, capture_output=True,
                       text=True, timeout=120)
    c.check(r.returncode in ok, f'dbtap run {" ".join(args[-4:])}: exit {r.returncode} {r.stderr.strip()}')
    return r


rs = Rsyslog('a')
try:
    # ---- offline, every transport, both formats ----
    for fmt in ('dbtap', 'ocsf'):
        sub = os.path.join(tmp, fmt)
        os.makedirs(sub)
        for name in ('tcp', 'udp', 'unix'):
            os.makedirs(os.path.join(sub, name))
        before = {n: len(rs.lines(n + '.log')) for n in ('tcp', 'udp', 'unix')}
        urls = {'tcp': f'tcp://127.0.0.1:{rs.tcp}', 'udp': f'udp://127.0.0.1:{rs.udp}',
                'unix': f'unix:{rs.sock}'}
        for name, url in urls.items():
            js = os.path.join(sub, name, 'e.json')
            run(['-r', sample, '-d', os.path.join(sub, name, 'e.db'), '--json', js,
                 '--json-format', fmt, '--sensor', 'edge-7', '--syslog', url])
            want = json_lines(js)
            got = rs.wait_lines(name + '.log', before[name] + len(want))[before[name]:]
            c.check(len(want) > 10, f'{fmt}/{name}: --json wrote {len(want)} lines')
            c.eq(len(got), len(want), f'{fmt}/{name}: rsyslog received as many messages as --json lines')
            c.check(got == want, f'{fmt}/{name}: every message is exactly the --json line, in order')
            c.eq(dbtest.json_line_errors(js), [], f'{fmt}/{name}: lines validate against storage/schema')

    # header fields of the TCP messages (dbtap format, first run above)
    hdr = [h.split() for h in rs.lines('tcp.hdr')]
    c.check(hdr and all(h[1] == 'edge-7' and h[2] == 'dbtap' for h in hdr),
            'HOSTNAME is the sensor name, APP-NAME dbtap')
    c.check({h[4] for h in hdr} >= {'run', 'session', 'statement', 'finding'}, 'MSGID is the event type')
    msgs = [json.loads(m) for m in rs.lines('tcp.log')]
    for h, m in zip(hdr, msgs):
        if m.get('event_type') == 'finding':
            want = {'critical': 2, 'high': 3, 'medium': 4, 'low': 5, 'info': 6}[m['severity']]
            c.eq(int(h[5]), want, f'finding {m["id"]} ({m["severity"]}): syslog severity')
            c.eq(int(h[0]), 16 * 8 + want, 'facility local0')
            break

    # ---- live capture; the receiver stops and restarts in the middle ----
    pg = dbtest.Postgres()
    pg.sql("CREATE ROLE alice LOGIN PASSWORD 'Syslog-Secret-1'")
    pg.sql('CREATE DATABASE live OWNER alice')
    live = os.path.join(tmp, 'live')
    os.makedirs(live)
    js = os.path.join(live, 'live.json')
    cfg = os.path.join(live, 'cfg.json')
    with open(cfg, 'w') as f:
        json.dump({'ports': {'postgresql': [pg.port]}, 'capture': {'probe_other_ports': False},
                   'audit': 'all'}, f)
    base = len(rs.lines('tcp.log'))
    proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', os.path.join(live, 'l.db'),
                             '-c', cfg, '--json', js, '--sensor', 'edge-live', '-f', f'tcp port {pg.port}',
                             '-q', '--syslog', f'tcp://127.0.0.1:{rs.tcp}'],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    c.check(proc.poll() is None, 'dbtap is capturing on lo')

    def session(tag):
        r = pg.psql('alice', 'Syslog-Secret-1', f"SELECT 1 AS {tag};\nSELECT 2;\n", db='live')
        c.eq(r.returncode, 0, f'psql session {tag}')

    def wait_marker(tag, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if any(tag in m for m in rs.lines('tcp.log')[base:]):
                return True
            time.sleep(0.2)
        return False

    session('before_stop')
    c.check(wait_marker('before_stop'), 'rsyslog got the first session live')
    time.sleep(1.0)  # the session's end line too
    rs.stop()
    session('while_down_1')
    session('while_down_2')
    time.sleep(1.0)
    rs.start()
    session('after_restart')
    c.check(wait_marker('after_restart', 30), 'rsyslog got the session after its restart')
    c.check(wait_marker('while_down_2', 5), 'what was queued while it was down arrived after the restart')
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    c.eq(proc.returncode, 0, 'dbtap exits 0 after the receiver went away and came back')
    want = json_lines(js)
    got = rs.wait_lines('tcp.log', base + len(want))[base:]
    c.check(len(want) >= 15, f'live --json wrote {len(want)} lines')
    c.eq(len(got), len(want), 'live: rsyslog has as many messages as --json lines')
    c.check(got == want, 'live: exactly the --json lines, in order, across the stop and restart')
    c.eq(dbtest.json_line_errors(js), [], 'live lines validate against storage/schema')
    dbtest.assert_secret_absent(c, 'Syslog-Secret-1', js, os.path.join(rs.dir, 'tcp.log'))
    pg.stop()
finally:
    rs.stop()

# ---- nobody listening: the run neither fails nor hangs ----
dead = dbtest.free_port()
t0 = time.time()
r = run(['-r', sample, '-d', os.path.join(tmp, 'dead.db'), '--syslog', f'tcp://127.0.0.1:{dead}'])
c.check(time.time() - t0 < 30, f'a dead receiver costs the run at most its drain wait ({time.time() - t0:.1f} s)')
c.check('not delivered' in r.stderr, 'undelivered events are reported on stderr')
drops = json.loads(dbtest.rows(os.path.join(tmp, 'dead.db'), 'SELECT drops FROM runs')[0]['drops'])
c.check(drops.get('sink_dropped', 0) > 0, f'and counted in runs.drops (sink_dropped {drops.get("sink_dropped")})')

# ---- malformed --syslog: usage error ----
for bad in ('tcp://127.0.0.1', 'udp://:514', 'ftp://x:1', 'unix:', 'tcp://127.0.0.1:99999'):
    r = subprocess.run([dbtest.dbtap_binary(), 'run', '-q', '-r', sample, '-d', os.path.join(tmp, 'bad.db'),
                        '--syslog', bad], capture_output=True, text=True)
    c.check(r.returncode == 2 and r.stderr.count('\n') == 1, f'--syslog {bad}: one line, exit 2 ({r.stderr.strip()})')

# ---- the shipped config loads ----
r = subprocess.run([RSYSLOGD, '-N1', '-f', os.path.join(src, 'contrib', 'rsyslog', 'dbtap.conf')],
                   capture_output=True, text=True)
c.eq(r.returncode, 0, f'contrib/rsyslog/dbtap.conf passes rsyslogd -N1 {r.stderr.strip()[-200:]}')
shutil.rmtree(tmp, ignore_errors=True)
c.done()
