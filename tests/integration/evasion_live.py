"""TCP evasion proved live (issue #20 item 3): crafted segments against real PostgreSQL 15
and MariaDB servers, with dbtap capturing as a sensor on a SPAN port would.

Three network namespaces of our own, nothing outside them:

    client 10.77.0.2 --veth-- 10.77.0.1 router 10.77.1.1 --veth-- 10.77.1.2 server
                                  ^ dbtap run -i (and tcpdump) here

The router hop is what makes a TTL=1 decoy die before the server. The client is scapy
speaking each wire protocol by hand over a TCP connection it builds itself (its kernel's
own RSTs are dropped by iptables; crafted frames go out through a packet socket). Each
case logs in for real (trust auth, so db_user is known), then sends a destructive
statement (`DROP TABLE t_<case>`) the way the case says, with a harmless decoy of the
same length (`SELECT '<case>zzzz'`) where there is one. The server's own log
(log_statement=all, the general log) says what it executed; dbtap's statements must be
exactly that, with db_user, and one protocol_anomaly 'tcp evasion' finding for each
crafted case (none for reordering, none for the plain and exact-RST controls).

Cases (what Linux does: net/ipv4/tcp_input.c):
  plain       control: the statement in one segment
  ooo10       10 segments sent 2..10 then 1 (out-of-order queue, then in order)
  late        the same, the first segment 2.5 s late
  noack       decoy without ACK at the statement's sequence (discarded), then the real one
  unsent_ack  decoy acknowledging data the server never sent (discarded), then the real one
  old_ack     decoy whose ACK is older than the server's snd_una by more than the largest
              window the client advertised (RFC 5961 5.2, discarded), then the real one
  paws        with timestamps on: decoy whose TSval is older than the last one (PAWS,
              RFC 7323 5: discarded), then the real one
  ofo_new     out of order: a shorter decoy, then longer real bytes at the same sequence
              (the longer one replaces it), then the first 5 bytes
  ofo_old     out of order: real bytes, then a shorter decoy inside them (dropped)
  rst_window  RST in the window at a wrong sequence (challenge ACK), then the statement:
              the session goes on
  ttl1        decoy with TTL 1 (dies at the router), then the real one
  rst_exact   control: RST at the exact sequence ends the session; the statement sent
              after it is answered with a reset and never executed

`--record DIR` keeps the capture and what the servers executed (DIR/evasion_live.pcap and
.json; tests/integration/data/ holds one, checked offline by evasion.py); `--client` is the internal entry in the client namespace.
"""
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dbtest  # noqa: E402

CASES = ['plain', 'ooo10', 'late', 'noack', 'unsent_ack', 'old_ack', 'paws', 'ofo_new',
         'ofo_old', 'rst_window', 'ttl1', 'rst_exact']
CRAFTED = {'noack', 'unsent_ack', 'old_ack', 'paws', 'ofo_new', 'ofo_old', 'rst_window', 'ttl1'}
QUIET = set()  # cases where no finding is required (none since tcpnorm.c applies PAWS)
CLIENT, ROUTER_C, ROUTER_S, SERVER = '10.77.0.2', '10.77.0.1', '10.77.1.1', '10.77.1.2'
PORTS = {'postgresql': 5432, 'mysql': 3306}
USER, DBNAME = 'tester', 'evl'
# one finding row per flow: no repeat folding (evasion is never capped per client)
CONFIG = {'ports': {'postgresql': [5432], 'mysql': [3306]}, 'keep_literals': True,
          'thresholds': {'repeat_interval_s': 0}}


def real_sql(case):
    return f'DROP TABLE t_{case}'


def decoy_sql(case):
    return f"SELECT '{case}zzzz'"  # as long as real_sql(case)


# ---------------------------------------------------------------- the client (client ns)

class Tcp:
    """One TCP connection built by hand: scapy makes the frames, a packet socket on the
    client's veth sends them (past iptables) and reads the server's answers, which are
    acknowledged as they come in order."""

    def __init__(self, ifname, mac, gw_mac, sport, dport):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.s.bind((ifname, 0x0800))
        self.mac, self.gw = mac, gw_mac
        self.sport, self.dport = sport, dport
        self.iss = random.getrandbits(32)
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.inbuf = bytearray()
        self.fin = self.rst = False
        self.ts = False
        self.t0 = random.getrandbits(31)

    def tsval(self):
        return (self.t0 + int(time.monotonic() * 1000)) & 0xffffffff

    def out(self, seq, payload=b'', flags='PA', ack=None, ttl=64, options=None, tsval=None):
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether
        ack = self.rcv_nxt if ack is None else ack
        if self.ts:  # timestamps on every segment once asked for in the SYN (RFC 7323)
            tsval = self.tsval() if tsval is None else tsval
            options = (options or []) + [('NOP', None), ('NOP', None), ('Timestamp', (tsval, 0))]
        t = TCP(sport=self.sport, dport=self.dport, seq=seq & 0xffffffff,
                ack=(ack or 0) & 0xffffffff, flags=flags, window=65535, options=options or [])
        f = Ether(src=self.mac, dst=self.gw) / IP(src=CLIENT, dst=SERVER, ttl=ttl, flags='DF') / t
        self.s.send(bytes(f / payload) if payload else bytes(f))

    def _one(self, frame):
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 6:
            return
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack('>H', ip[2:4])[0]
        tcp = ip[ihl:tot]
        sport, dport, seq, ack = struct.unpack('>HHII', tcp[:12])
        if (sport, dport) != (self.dport, self.sport) or socket.inet_ntoa(ip[12:16]) != SERVER:
            return
        flags, data = tcp[13], tcp[(tcp[12] >> 4) * 4:]
        if flags & 0x04:
            self.rst = True
            return
        if flags & 0x02:
            self.rcv_nxt = (seq + 1) & 0xffffffff
            return
        if self.rcv_nxt is None:
            return
        if seq == self.rcv_nxt and (data or flags & 0x01):
            self.inbuf += data
            self.rcv_nxt = (seq + len(data) + (1 if flags & 0x01 else 0)) & 0xffffffff
            self.fin = self.fin or bool(flags & 0x01)
            self.out(self.snd_nxt, flags='A')
        elif data or flags & 0x01:
            self.out(self.snd_nxt, flags='A')  # old or ahead: say where we are

    def pump(self, secs):
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.s], [], [], left)
            if r:
                frame, addr = self.s.recvfrom(65536)
                if addr[2] != socket.PACKET_OUTGOING:
                    self._one(frame)

    def until(self, pred, secs=5.0, what='answer'):
        end = time.monotonic() + secs
        while not pred():
            if self.rst or time.monotonic() > end:
                raise RuntimeError(f'{what}: ' + ('reset by the server' if self.rst else 'timed out'))
            self.pump(0.02)

    def connect(self):
        self.out(self.iss, flags='S', ack=0, options=[('MSS', 1460)])
        self.until(lambda: self.rcv_nxt is not None, what='SYN-ACK')
        self.snd_nxt = (self.iss + 1) & 0xffffffff
        self.out(self.snd_nxt, flags='A')

    def send(self, data):
        self.out(self.snd_nxt, data)
        self.snd_nxt = (self.snd_nxt + len(data)) & 0xffffffff

    def close(self):
        self.out(self.snd_nxt, flags='FA')
        self.snd_nxt = (self.snd_nxt + 1) & 0xffffffff
        self.until(lambda: self.fin, what='FIN')
        self.s.close()


class Pg:
    """PostgreSQL v3: startup (trust), simple Query, Terminate."""
    name = 'postgresql'

    def __init__(self, c):
        self.c, self.seen = c, 0

    def msgs(self):
        out, b, i = [], self.c.inbuf, 0
        while i + 5 <= len(b):
            n = struct.unpack('>I', b[i + 1:i + 5])[0]
            if i + 1 + n > len(b):
                break
            out.append((chr(b[i]), bytes(b[i + 5:i + 1 + n])))
            i += 1 + n
        return out

    def ready(self):
        return sum(1 for t, _ in self.msgs() if t == 'Z') > self.seen

    def login(self):
        body = struct.pack('>I', 196608) + b'user\0' + USER.encode() + b'\0database\0' + \
            DBNAME.encode() + b'\0application_name\0evasion_live\0\0'
        self.c.send(struct.pack('>I', len(body) + 4) + body)
        self.c.until(self.ready, what='login')
        self.seen += 1

    @staticmethod
    def query(sql):
        b = sql.encode() + b'\0'
        return b'Q' + struct.pack('>I', len(b) + 4) + b

    def wait_result(self):
        self.c.until(self.ready, what='query result')
        self.seen += 1

    def quit(self):
        self.c.send(b'X\0\0\0\4')


class My:
    """MySQL/MariaDB: handshake response (empty mysql_native_password), COM_QUERY, COM_QUIT."""
    name = 'mysql'

    def __init__(self, c):
        self.c, self.seen = c, 0

    def packets(self):
        out, b, i = [], self.c.inbuf, 0
        while i + 4 <= len(b):
            n = b[i] | b[i + 1] << 8 | b[i + 2] << 16
            if i + 4 + n > len(b):
                break
            out.append((b[i + 3], bytes(b[i + 4:i + 4 + n])))
            i += 4 + n
        return out

    def more(self):
        return len(self.packets()) > self.seen

    def login(self):
        self.c.until(self.more, what='server greeting')
        self.seen = 1
        caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000
        body = struct.pack('<IIB23x', caps, 16 << 20, 33) + USER.encode() + b'\0' + b'\0' + \
            DBNAME.encode() + b'\0' + b'mysql_native_password\0'
        self.c.send(struct.pack('<I', len(body))[:3] + b'\x01' + body)
        self.c.until(self.more, what='login')
        seq, p = self.packets()[-1]
        if p[:1] != b'\0':
            raise RuntimeError(f'login refused: {p!r}')
        self.seen += 1

    @staticmethod
    def query(sql):
        b = b'\x03' + sql.encode()
        return struct.pack('<I', len(b))[:3] + b'\0' + b

    def wait_result(self):
        self.c.until(self.more, what='query result')
        self.seen += 1

    def quit(self):
        self.c.send(b'\x01\0\0\0\x01')


def attack(c, case, Q, D):
    """Send message Q (decoy D, same length) as the case says."""
    s = c.snd_nxt
    if case in ('ooo10', 'late'):
        cut = [len(Q) * k // 10 for k in range(11)]
        for k in range(1, 10):
            c.out(s + cut[k], Q[cut[k]:cut[k + 1]])
            c.pump(0.01)
        c.pump(0.2 if case == 'ooo10' else 2.5)
        c.out(s, Q[:cut[1]])
    elif case == 'noack':
        c.out(s, D, flags='P')
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'unsent_ack':
        c.out(s, D, ack=c.rcv_nxt + 50000)
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'old_ack':
        c.out(s, D, ack=c.rcv_nxt - 100000)
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'paws':
        c.out(s, D, tsval=c.tsval() - 100000)
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'ofo_new':
        c.out(s + 5, D[5:-2])
        c.pump(0.05)
        c.out(s + 5, Q[5:])
        c.pump(0.05)
        c.out(s, Q[:5])
    elif case == 'ofo_old':
        c.out(s + 5, Q[5:])
        c.pump(0.05)
        c.out(s + 5, D[5:-2])
        c.pump(0.05)
        c.out(s, Q[:5])
    elif case == 'rst_window':
        c.out(s + 1000, flags='RA')
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'ttl1':
        c.out(s, D, ttl=1)
        c.pump(0.05)
        c.out(s, Q)
    elif case == 'rst_exact':
        c.out(s, flags='RA')
        c.pump(0.05)
        c.out(s, Q)
    else:
        c.out(s, Q)
    c.snd_nxt = (s + len(Q)) & 0xffffffff


def client_main(plan):
    """In the client namespace: run every case of the plan, report what happened."""
    done = []
    for item in plan:
        c = Tcp(item['if'], item['mac'], item['gw'], item['sport'], PORTS[item['proto']])
        p = (Pg if item['proto'] == 'postgresql' else My)(c)
        res = dict(item, ok=True, note='')
        try:
            case = item['case']
            c.ts = case == 'paws'
            c.connect()
            p.login()
            attack(c, case, p.query(real_sql(case)), p.query(decoy_sql(case)))
            if case == 'rst_exact':
                c.pump(0.3)
                res['note'] = 'server reset' if c.rst else 'no reset from the server'
            else:
                p.wait_result()
                p.quit()
                c.close()
        except Exception as e:  # reported, the orchestrator fails the case
            res.update(ok=False, note=str(e))
        done.append(res)
    print(json.dumps(done))


# ---------------------------------------------------------------- the orchestrator

def sh(*cmd, check=True, ns=None):
    if ns:
        cmd = ('ip', 'netns', 'exec', ns) + cmd
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Net:
    def __init__(self):
        tag = f'dbtl{os.getpid() % 100000}'
        self.c, self.r, self.s = tag + 'c', tag + 'r', tag + 's'
        for ns in (self.c, self.r, self.s):
            sh('ip', 'netns', 'add', ns)
        import atexit
        atexit.register(self.down)
        sh('ip', 'link', 'add', 'vc0', 'netns', self.c, 'type', 'veth', 'peer', 'name', 'vr0',
           'netns', self.r)
        sh('ip', 'link', 'add', 'vs0', 'netns', self.s, 'type', 'veth', 'peer', 'name', 'vr1',
           'netns', self.r)
        for ns, ifn, addr in ((self.c, 'vc0', CLIENT), (self.r, 'vr0', ROUTER_C),
                              (self.r, 'vr1', ROUTER_S), (self.s, 'vs0', SERVER)):
            sh('ip', 'addr', 'add', addr + '/24', 'dev', ifn, ns=ns)
            sh('ip', 'link', 'set', ifn, 'mtu', '1500', 'up', ns=ns)
            # real checksums and real segments on the wire, as a SPAN port shows them
            sh('ethtool', '-K', ifn, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off', ns=ns)
            sh('ip', 'link', 'set', 'lo', 'up', ns=ns)
        sh('ip', 'route', 'add', 'default', 'via', ROUTER_C, ns=self.c)
        sh('ip', 'route', 'add', 'default', 'via', ROUTER_S, ns=self.s)
        sh('sysctl', '-qw', 'net.ipv4.ip_forward=1', ns=self.r)
        # the client kernel knows nothing of the crafted connections: keep its RSTs home
        sh('iptables', '-A', 'OUTPUT', '-p', 'tcp', '-d', SERVER, '-j', 'DROP', ns=self.c)
        self.mac = sh('cat', '/sys/class/net/vc0/address', ns=self.c).stdout.strip()
        self.gw = sh('cat', '/sys/class/net/vr0/address', ns=self.r).stdout.strip()

    def down(self):
        for ns in (self.c, self.r, self.s):
            subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)


class NsPostgres(dbtest.Postgres):
    ns = None

    def _run(self, cmd, **kw):
        return subprocess.run(['ip', 'netns', 'exec', self.ns, 'runuser', '-u', 'postgres', '--']
                              + cmd, check=True, capture_output=True, text=True, **kw)


def ns_mariadb(ns):
    """A private MariaDB (dbtest.MariaDB) in the server namespace, on the server address."""
    return dbtest.MariaDB(port=3306, bind=SERVER, prefix=('ip', 'netns', 'exec', ns))


def executed_pg(log, start):
    """Statements PostgreSQL logged (log_statement=all) after offset start."""
    with open(log, errors='replace') as f:
        f.seek(start)
        return [m.group(1) for m in re.finditer(r'LOG:  statement: (.*)', f.read())]


def executed_my(log, start):
    with open(log, errors='replace') as f:
        f.seek(start)
        return [m.group(1) for m in re.finditer(r'\d+ Query\t(.*)', f.read())]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--client':
        client_main(json.loads(sys.argv[2]))
        return
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    record = sys.argv[sys.argv.index('--record') + 1] if '--record' in sys.argv else None
    if record in args:
        args.remove(record)
    if os.geteuid() != 0:
        dbtest.skip('needs root (network namespaces, servers as their own users, live capture)')
    for tool in ('ip', 'ethtool', 'iptables', 'tcpdump', 'runuser', 'mariadb-install-db'):
        if not shutil.which(tool):
            dbtest.skip(f'{tool} is not installed (contrib/deps.sh test installs it)')
    if subprocess.run(['/usr/bin/python3', '-c', 'import scapy.layers.inet'],
                      capture_output=True).returncode != 0:
        dbtest.skip('python3-scapy is not installed (contrib/deps.sh test installs it)')
    if not os.path.exists(f'{dbtest.PG_BIN}/initdb') or not os.path.exists('/usr/sbin/mariadbd'):
        dbtest.skip('PostgreSQL 15 or MariaDB server is not installed (contrib/deps.sh test)')
    dbtap = dbtest.dbtap_binary() if not args else args[0]
    dbtap = os.path.abspath(dbtap)
    t0 = time.monotonic()
    c = dbtest.Checks()
    try:
        net = Net()
    except subprocess.CalledProcessError as e:
        dbtest.skip(f'cannot build the network namespaces: {e.cmd}: {e.stderr.strip()}')

    NsPostgres.ns = net.s
    pg = NsPostgres(port=5432, hba=[('host', 'all', 'all', '10.77.0.0/24', 'trust')],
                    settings=[f"listen_addresses = '{SERVER}'", 'log_statement = all',
                              "log_line_prefix = '%m %r %u '"])
    pg.sql(f'CREATE ROLE {USER} LOGIN')
    pg.sql(f'CREATE DATABASE {DBNAME} OWNER {USER}')
    for case in CASES:
        pg.sql(f'SET ROLE {USER}; CREATE TABLE t_{case} (id int)', db=DBNAME)
    my = ns_mariadb(net.s)
    my.sql(f"CREATE DATABASE {DBNAME}; CREATE USER {USER}@'%' IDENTIFIED VIA mysql_native_password"
           f" USING ''; GRANT ALL ON {DBNAME}.* TO {USER}@'%';"
           + ''.join(f'CREATE TABLE {DBNAME}.t_{case} (id int);' for case in CASES)
           + 'SET GLOBAL general_log = 1')
    pg_log = os.path.join(pg.dir, 'log')
    pg_start, my_start = os.path.getsize(pg_log), os.path.getsize(my.log)
    t_setup = time.monotonic() - t0

    tmp = tempfile.mkdtemp(prefix='dbtap-evlive-')
    os.chmod(tmp, 0o755)
    db = os.path.join(tmp, 'live.db')
    cfg = os.path.join(tmp, 'cfg.json')
    with open(cfg, 'w') as f:
        json.dump(CONFIG, f)
    pcap = os.path.join(tmp, 'live.pcap')
    tcpd = subprocess.Popen(['ip', 'netns', 'exec', net.r, 'tcpdump', '-i', 'vr0', '-U', '-s',
                             '262144', '-w', pcap, 'tcp'], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    tcpd.stderr.readline()
    live = subprocess.Popen(['ip', 'netns', 'exec', net.r, dbtap, 'run', '-i', 'vr0', '-d', db,
                             '-c', cfg, '-f', 'tcp', '-q'], stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    c.check(live.poll() is None, 'dbtap is capturing in the router namespace')

    plan, port = [], 41000
    for proto in ('postgresql', 'mysql'):
        for case in CASES:
            port += 1
            plan.append({'proto': proto, 'case': case, 'sport': port, 'mac': net.mac,
                         'gw': net.gw, 'if': 'vc0'})
    t1 = time.monotonic()
    r = sh('/usr/bin/python3', os.path.abspath(__file__), '--client', json.dumps(plan), check=False,
           ns=net.c)
    t_client = time.monotonic() - t1
    if r.returncode != 0:
        print(r.stderr)
    results = json.loads(r.stdout) if r.returncode == 0 else []
    c.check(len(results) == len(plan), 'the client ran every case')
    time.sleep(1.0)
    live.send_signal(signal.SIGTERM)
    try:
        live.wait(30)
    except subprocess.TimeoutExpired:
        live.kill()
    c.eq(live.returncode, 0, f'dbtap stopped cleanly ({live.stderr.read().strip()})')
    tcpd.send_signal(signal.SIGINT)
    tcpd.wait(10)
    ex = {'postgresql': executed_pg(pg_log, pg_start), 'mysql': executed_my(my.log, my_start)}
    if record:
        shutil.copy(pcap, os.path.join(record, 'evasion_live.pcap'))
        with open(os.path.join(record, 'evasion_live.json'), 'w') as f:
            keep = ('proto', 'case', 'sport', 'ok', 'note')
            json.dump({'results': [{k: r[k] for k in keep} for r in results], 'executed': ex}, f,
                      indent=1)
    check_db(c, db, results, ex, 'live')
    # the same capture read from the file must give the same rows (no timing luck)
    fdb = os.path.join(tmp, 'file.db')
    r = dbtest.run_dbtap(pcap, fdb, config=CONFIG, check=False)
    c.eq(r.returncode, 0, f'dbtap -r on the recorded capture ({r.stderr.strip()})')
    check_db(c, fdb, results, ex, 'file', table=False)
    print(f'times: setup {t_setup:.1f} s, client {t_client:.1f} s, total {time.monotonic() - t0:.1f} s')
    c.done()


def check_db(c, db, results, ex, how, table=True):
    st = dbtest.rows(db, 'SELECT se.client_port AS port, se.protocol, s.sql, se.db_user FROM statements s'
                         ' JOIN sessions se ON se.id = s.session_id ORDER BY s.id')
    ev = dbtest.rows(db, "SELECT se.client_port AS port, f.summary FROM findings f JOIN sessions se"
                         " ON se.id = f.session_id WHERE f.kind = 'protocol_anomaly'"
                         " AND f.summary LIKE '%tcp evasion%'")
    ends = dbtest.rows(db, 'SELECT client_port AS port, end_reason FROM sessions ORDER BY id')
    lines = []
    for res in results:
        proto, case, port = res['proto'], res['case'], res['sport']
        name = f'{how} {proto}/{case}'
        if not c.check(res['ok'], f'{name}: the client did its part ({res["note"]})'):
            continue
        tag = re.compile(r"\bt_%s\b|'%szzzz'" % (case, case))
        server = [q for q in ex[proto] if tag.search(q)]
        want = [] if case == 'rst_exact' else [real_sql(case)]
        c.eq(server, want, f'{name}: the server executed')
        got = [(s['sql'], s['db_user']) for s in st if s['port'] == port and s['protocol'] == proto]
        c.eq([g[0] for g in got], server, f'{name}: dbtap stored what the server executed')
        c.check(all(g[1] == USER for g in got), f'{name}: with db_user {USER} ({got})')
        fl = [e['summary'] for e in ev if e['port'] == port]
        if case in QUIET:
            c.check(len(fl) <= 1, f'{name}: at most one evasion finding ({fl})')
        else:
            c.eq(len(fl), 1 if case in CRAFTED else 0, f'{name}: evasion findings ({fl})')
        if case == 'rst_exact':
            er = [e['end_reason'] for e in ends if e['port'] == port]
            c.check(er[:1] == ['reset'], f'{name}: the exact RST ends the session ({er})')
        lines.append((proto, case, '; '.join(server) or '-',
                      '; '.join(f'{s} [{u}]' for s, u in got) or '-',
                      (fl[0].split(': ', 1)[-1][:60] if fl else '-')))
    if table:
        print(f'\n{"protocol":<11}{"case":<12}{"server executed":<26}{"dbtap stored [db_user]":<36}finding')
        for ln in lines:
            print(f'{ln[0]:<11}{ln[1]:<12}{ln[2]:<26}{ln[3]:<36}{ln[4]}')
        print()


if __name__ == '__main__':
    main()
