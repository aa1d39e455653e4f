"""Issue #21, through the pooler: a real pgbouncer (Debian package, run as postgres on
loopback with its own config) in transaction and in session pooling in front of PostgreSQL
15; 12 concurrent psycopg2 clients for 6 end users (every marker kind, and none) on a pool
of 3; both legs captured on lo, and each leg alone.

Checked on what dbtap stored: both legs' sessions carry pooler_role; every server-leg
statement a client sent is joined to that client's session (>= 99 %) and none to another
one; no statement names the wrong end user (the issue's bug: the previous client's
application_name left on the server connection); the pooler's own statements are marked;
with the server leg alone nothing is joined and only same-transaction markers name anyone;
with the client leg alone nothing is a server leg."""
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
if not shutil.which('pgbouncer'):
    dbtest.skip('pgbouncer is not installed (contrib/deps.sh test installs it)')
import psycopg2  # noqa: E402

USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']
# how each end user's clients say who they are (erin: nothing; app_svc is a service account)
KIND = {'alice': 'set_local', 'bob': 'comment', 'carol': 'startup_appname',
        'dave': 'set_appname', 'erin': 'none', 'frank': 'set_config'}
EXPECT = {u: (None if KIND[u] == 'none' else u) for u in USERS}
N_CLIENTS, TXNS = 12, 25
N_NODE = 4  # node `pg` clients 12..15 (extended protocol, bound parameters), when node is there
NODE_MODULES = os.path.expanduser('~/.cache/dbtap-node/node_modules')
HAVE_NODE = shutil.which('node') and os.path.isdir(os.path.join(NODE_MODULES, 'pg'))
if not HAVE_NODE:
    print('# node pg not found (~/.cache/dbtap-node): psycopg2 clients only')

tmp = tempfile.mkdtemp(prefix='dbtap-pooler-')
if not os.environ.get('KEEP'):
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
print('# tmp', tmp)
os.chmod(tmp, 0o755)
pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.1/32', 'trust')])
pg.sql('CREATE ROLE app_svc LOGIN')
pg.sql('CREATE DATABASE appdb OWNER app_svc')
pg.sql('CREATE TABLE items(id serial PRIMARY KEY, owner text, v int)', db='appdb')
pg.sql('ALTER TABLE items OWNER TO app_svc', db='appdb')


class Bouncer:
    def __init__(self, mode):
        self.port = dbtest.free_port()
        self.dir = tempfile.mkdtemp(prefix='dbtap-pgb-', dir=tmp)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(self.dir, 'userlist.txt'), 'w') as f:
            f.write('"app_svc" ""\n')
        conf = os.path.join(self.dir, 'pgbouncer.ini')
        with open(conf, 'w') as f:
            f.write(f"""[databases]
appdb = host=127.0.0.1 port={pg.port} dbname=appdb user=app_svc
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
pool_mode = {mode}
default_pool_size = 3
min_pool_size = 0
max_client_conn = 200
server_reset_query = DISCARD ALL
admin_users = app_svc
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        shutil.chown(self.dir, 'postgres', 'postgres')
        for n in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, n), 'postgres', 'postgres')
        self.proc = subprocess.Popen(['runuser', '-u', 'postgres', '--', 'pgbouncer', conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(('127.0.0.1', self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError('pgbouncer did not start')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def client(bport, i, ports, errors, session_mode):
    user = USERS[i % len(USERS)]
    kind = KIND[user]
    try:
        kw = {'application_name': f'app:{user}'} if kind == 'startup_appname' else {}
        conn = psycopg2.connect(host='127.0.0.1', port=bport, user='app_svc', dbname='appdb', **kw)
        ports[i] = socket.socket(fileno=os.dup(conn.fileno())).getsockname()[1]
        cur = conn.cursor()
        if kind == 'set_appname':
            conn.autocommit = True
            cur.execute(f"SET application_name = 'app:{user}'")
            conn.autocommit = False
        elif kind == 'set_config':
            conn.autocommit = True
            cur.execute(f"SELECT set_config('app.user', '{user}', false), 'c{i}-init'")
            conn.autocommit = False
        for t in range(TXNS):
            tag = f'c{i}-t{t}'
            if kind == 'set_local':
                cur.execute(f"SET LOCAL app.end_user = '{user}'")
            cmt = f"/*app_user='{user}'*/ " if kind == 'comment' else ''
            cur.execute(f"{cmt}SELECT count(*), '{tag}' FROM items WHERE v >= {t}")
            cur.fetchall()
            cur.execute(f"{cmt}INSERT INTO items(owner, v) VALUES ('{tag}', {i * 1000 + t})")
            conn.commit()
            if t % 5 == 4:  # an autocommit statement now and then
                conn.autocommit = True
                cur.execute(f"{cmt}SELECT v, '{tag}-a' FROM items WHERE owner = '{tag}'")
                cur.fetchall()
                conn.autocommit = False
            time.sleep(0.002 * (i % 3))
        conn.close()
    except Exception as e:  # noqa: BLE001
        errors.append(f'client {i}: {e!r}')


NODE_JS = r"""
const { Client } = require('pg');
const [port, first, n, txns] = process.argv.slice(2).map(Number);
const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const ports = {};
async function one(i) {
  const user = users[i % 6];
  const cfg = {host: '127.0.0.1', port, user: 'app_svc', database: 'appdb'};
  if (user === 'carol') cfg.application_name = 'app:carol';
  const c = new Client(cfg);
  await c.connect();
  ports[i] = c.connection.stream.localPort;
  if (user === 'dave') await c.query("SET application_name = 'app:dave'");
  for (let t = 0; t < txns; t++) {
    const tag = `c${i}-t${t}`;
    const cmt = user === 'bob' ? "/*app_user='bob'*/ " : '';
    await c.query('BEGIN');
    if (user === 'alice') await c.query("SELECT set_config('app.end_user', $1, true), $2::text", [user, tag]);
    await c.query(cmt + 'SELECT count(*), $1::text FROM items WHERE v >= $2', [tag, t]);
    await c.query(cmt + 'INSERT INTO items(owner, v) VALUES ($1, $2)', [tag, i * 1000 + t]);
    await c.query('COMMIT');
  }
  await c.end();
}
(async () => {
  const all = [];
  for (let i = first; i < first + n; i++) all.push(one(i));
  await Promise.all(all);
  console.log(JSON.stringify(ports));
})().catch(e => { console.error(e.message); process.exit(1); });
"""


def node_clients(bport, ports, errors):
    import json
    js = os.path.join(tmp, 'clients.js')
    with open(js, 'w') as f:
        f.write(NODE_JS)
    r = subprocess.run(['node', js, str(bport), str(N_CLIENTS), str(N_NODE), str(TXNS)],
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, NODE_PATH=NODE_MODULES))
    if r.returncode != 0:
        errors.append('node: ' + r.stderr.strip())
        return
    for k, v in json.loads(r.stdout).items():
        ports[int(k)] = v


def workload(bport, session_mode=False):
    ports, errors = {}, []
    th = [threading.Thread(target=client, args=(bport, i, ports, errors, session_mode))
          for i in range(N_CLIENTS)]
    if HAVE_NODE:
        th.append(threading.Thread(target=node_clients, args=(bport, ports, errors)))
    for t in th:
        t.start()
    for t in th:
        t.join(200)
    return ports, errors


def expect_user(i, sql):
    """The end user the client leg names for client i's statement."""
    user = USERS[i % 6]
    if KIND[user] == 'set_local' and '-a' in (sql or ''):
        return None  # its autocommit statements: SET LOCAL held only in the transactions
    return EXPECT[user]


def truth_client(sql, seg_client, params=None):
    """Which client sent a server-leg statement, from the test's own literals ('c7-t3', in
    the text or a bound value), else from the transaction it is in; None for statements no
    client sent."""
    import re
    m = re.search(r"'c(\d+)-", sql or '') or re.search(r'"c(\d+)-', params or '')
    if m:
        return int(m.group(1))
    return seg_client


checks = dbtest.Checks()


def analyse(name, db, bport, ports, mode, legs):
    """legs: 'both', 'server', 'client'."""
    ses = {r['id']: r for r in dbtest.rows(db, 'SELECT * FROM sessions')}
    client_legs = {sid: r for sid, r in ses.items() if r['server_port'] == bport}
    server_legs = {sid: r for sid, r in ses.items() if r['server_port'] == pg.port}
    port_client = {p: i for i, p in ports.items()}
    sid_client = {sid: port_client.get(r['client_port']) for sid, r in client_legs.items()}
    if legs != 'server':
        checks.check(len(client_legs) >= N_CLIENTS and all(r['pooler_role'] == 'client_leg' for r in client_legs.values()),
                     f'{name}: {len(client_legs)} client-leg sessions marked client_leg')
        checks.check(all(r['pooler'] == f'127.0.0.1:{bport}' for r in client_legs.values()),
                     f'{name}: client legs name the pooler')
    if legs != 'client':
        checks.check(0 < len(server_legs) and all(r['pooler_role'] == 'server_leg' for r in server_legs.values()),
                     f'{name}: {len(server_legs)} server-leg sessions marked server_leg')
    else:
        checks.eq(len(server_legs), 0, f'{name}: no server leg captured')
    # client legs: their own statements name their own end user
    wrong_client = 0
    n_client_stmts = 0
    for st in dbtest.rows(db, 'SELECT s.* FROM statements s JOIN sessions x ON x.id = s.session_id'
                              ' WHERE x.server_port = ?', (bport,)):
        i = sid_client.get(st['session_id'])
        if i is None:
            continue
        n_client_stmts += 1
        if st['end_user'] != expect_user(i, st['sql']) and st['verb'] not in ('BEGIN', 'COMMIT'):
            wrong_client += 1
        if st['via_session_id'] is not None or st['pooler_join'] is not None:
            wrong_client += 1
    if legs != 'server':
        checks.check(n_client_stmts > 0, f'{name}: {n_client_stmts} client-leg statements')
        checks.eq(wrong_client, 0, f'{name}: client-leg statements with a wrong end user or join')
    # server legs: per statement, the truth from the test's literals and transactions
    stmts = dbtest.rows(db, 'SELECT s.* FROM statements s JOIN sessions x ON x.id = s.session_id'
                            ' WHERE x.server_port = ? ORDER BY s.session_id, s.ts, s.id', (pg.port,))
    by_sess = {}
    for st in stmts:
        by_sess.setdefault(st['session_id'], []).append(st)
    total = joined = wrong = own = unknown_truth = 0
    bad = []
    for sid, lst in by_sess.items():
        # segment into transactions: BEGIN .. COMMIT; its client is the one its literals name
        k = 0
        while k < len(lst):
            if lst[k]['verb'] == 'BEGIN':
                j = k
                while j < len(lst) and lst[j]['verb'] not in ('COMMIT', 'ROLLBACK'):
                    j += 1
                seg = lst[k:j + 1]
                named = {truth_client(s['sql'], None, s['params']) for s in seg} - {None}
                seg_client = named.pop() if len(named) == 1 else None
                k = j + 1
            else:
                seg = [lst[k]]
                seg_client = None
                k += 1
            for st in seg:
                want = truth_client(st['sql'], seg_client, st['params'])
                if want is None:
                    # no client literal, outside a client's transaction: the pooler's own
                    # (SET application_name, DISCARD ALL, ...) or dave's SET application_name
                    if st['pooler_join'] == 'pooler':
                        own += 1
                        if st['end_user'] is not None:
                            wrong += 1
                            bad.append(('own with user', st))
                    else:
                        unknown_truth += 1
                        if st['via_session_id'] is not None:
                            i = sid_client.get(st['via_session_id'])
                            if i is None or (st['end_user'] or None) != EXPECT[USERS[i % 6]]:
                                wrong += 1
                                bad.append(('unknown truth', st))
                    continue
                total += 1
                exp_user = expect_user(want, st['sql'])
                if st['via_session_id'] is not None:
                    if sid_client.get(st['via_session_id']) != want:
                        wrong += 1
                        bad.append((f'via want c{want}', st))
                        continue
                    joined += 1
                if st['end_user'] is not None and st['end_user'] != exp_user:
                    wrong += 1
                    bad.append((f'user want {exp_user}', st))
                elif legs == 'both' and st['end_user'] != exp_user and st['verb'] not in ('BEGIN', 'COMMIT'):
                    wrong += 1  # joined: the client leg knows the user
                    bad.append((f'missing user {exp_user}', st))
    for why, st in bad[:8]:
        print('  #', why, {k: st[k] for k in ('id', 'session_id', 'sql', 'end_user', 'end_user_source',
                                                'via_session_id', 'pooler_join')})
    if legs == 'both':
        share = joined / total if total else 0
        print(f'# {name}: server-leg client statements {total}, joined {joined} ({share:.2%}),'
              f' pooler own {own}, no client literal {unknown_truth}')
        checks.check(total > N_CLIENTS * TXNS * 3 and share >= 0.99,
                     f'{name}: >= 99 % of server-leg statements joined ({joined}/{total})')
        checks.eq(wrong, 0, f'{name}: server-leg statements joined or attributed wrongly')
        checks.check(own > 0, f'{name}: the pooler\'s own statements marked ({own})')
        srcs = {r['end_user_source'] for r in dbtest.rows(
            db, 'SELECT DISTINCT end_user_source FROM statements WHERE pooler_join = \'joined\'')}
        checks.check('client_leg:session_variable' in srcs and 'comment' in srcs,
                     f'{name}: joined statements say the client leg decided: {sorted(map(str, srcs))}')
    elif legs == 'server':
        checks.eq(joined, 0, f'{name}: server leg alone: nothing joined')
        checks.eq(wrong, 0, f'{name}: server leg alone: no statement names a wrong end user')
        named = dbtest.rows(db, 'SELECT end_user, end_user_source, count(*) AS n FROM statements'
                                ' WHERE end_user IS NOT NULL GROUP BY 1, 2')
        got = {(r['end_user'], r['end_user_source']) for r in named}
        checks.check(('alice', 'same_transaction:session_variable') in got and ('bob', 'comment') in got,
                     f'{name}: same-transaction markers and comments still name their users: {sorted(got)}')
        carried = dbtest.rows(db, "SELECT sql FROM statements WHERE end_user IN ('carol', 'dave', 'frank')"
                                  " AND instr(sql, end_user) = 0")
        checks.eq(carried, [], f'{name}: markers the pooler carries across transactions name nobody'
                               ' (only the statements setting them)')
        joins = {r['pooler_join'] for r in dbtest.rows(db, 'SELECT DISTINCT pooler_join FROM statements')}
        checks.eq(joins, {'unmatched'}, f'{name}: every server-leg statement unmatched')
    return joined, total


def report_and_json(mode, db, js):
    """The report counts each client statement once (its client-leg row, with the real
    client); JSON statement lines of the server leg carry the real client."""
    import json
    r = subprocess.run([dbtest.dbtap_binary(), 'report', '--since', '1970-01-01', '--format', 'json',
                        '-d', db], capture_output=True, text=True, timeout=120)
    checks.eq(r.returncode, 0, f'{mode}: report {r.stderr.strip()}')
    doc = json.loads(r.stdout)
    want = dbtest.rows(db, "SELECT count(*) AS n FROM statements WHERE pooler_join IS NOT 'joined'")[0]['n']
    checks.eq(doc['workload']['statements'], want,
              f'{mode}: report workload counts forwarded statements once (client leg)')
    ses = {r['id']: r for r in dbtest.rows(db, 'SELECT id, client_ip, client_port, application FROM sessions')}
    n = bad = 0
    with open(js) as f:
        for line in f:
            o = json.loads(line)
            if o.get('event_type') != 'statement' or o.get('pooler_join') != 'joined':
                continue
            n += 1
            c = ses.get(o['via_session_id'])
            # the application as the client leg knew it when it sent the statement (a SET
            # application_name statement itself still has the one before)
            if not c or (o['via_client_ip'], o['via_client_port']) != (c['client_ip'], c['client_port']) \
                    or o['via_application'] not in (c['application'], None):
                bad += 1
                print('  # JSON', {k: o.get(k) for k in ('id', 'sql', 'via_session_id', 'via_client_ip',
                                                        'via_client_port', 'via_application')}, c)
    checks.check(n > 0 and bad == 0, f'{mode}: {n} joined JSON statement lines name their real client ({bad} wrong)')


def dropped(*caps):
    """Packets the kernel dropped before tcpdump saw them (the machine is shared): such a
    capture is made again rather than judged."""
    import re
    n = 0
    for c in caps:
        m = re.search(r'(\d+) packets? dropped by kernel', c.summary or '')
        n += int(m.group(1)) if m else 0
    return n


def learned():
    """No poolers configured: a monitoring probe on pgbouncer's admin console (SHOW POOLS,
    as pgbouncer_exporter does) tells dbtap that this address:port is a pooler; the
    sessions after it are its legs and joined."""
    pcap = os.path.join(tmp, 'learned.pcap')
    for attempt in range(3):
        b = Bouncer('transaction')
        with dbtest.Capture(pcap, [pg.port, b.port]) as cap:
            adm = psycopg2.connect(host='127.0.0.1', port=b.port, user='app_svc', dbname='pgbouncer')
            adm.autocommit = True
            adm.cursor().execute('SHOW POOLS')
            adm.close()
            time.sleep(0.2)
            ports, errors = workload(b.port)
        b.stop()
        if not dropped(cap):
            break
        print(f'# learned: the capture lost {dropped(cap)} packets: again')
    checks.eq(errors, [], 'learned: clients ran')
    db = os.path.join(tmp, 'learned.db')
    dbtest.run_dbtap(pcap, db, config={'service_accounts': ['app_svc'], 'keep_literals': True},
                     extra=['--json', db + '.json'])
    console = dbtest.rows(db, "SELECT server_version, pooler_role FROM sessions WHERE database = 'pgbouncer'")
    checks.check(console and console[0]['server_version'].endswith('/bouncer'),
                 f'learned: the admin console announces itself: {console}')
    analyse('learned/both', db, b.port, ports, 'transaction', 'both')


def phase(mode):
    both, srv, cli = (os.path.join(tmp, f'{mode}-{x}.pcap') for x in ('both', 'server', 'client'))
    for attempt in range(3):
        b = Bouncer(mode)
        with dbtest.Capture(both, [pg.port, b.port]) as c1, dbtest.Capture(srv, [pg.port]) as c2, \
                dbtest.Capture(cli, [b.port]) as c3:
            ports, errors = workload(b.port, mode == 'session')
        b.stop()
        if not dropped(c1, c2, c3):
            break
        print(f'# {mode}: the captures lost {dropped(c1, c2, c3)} packets: again')
    checks.eq(errors, [], f'{mode}: clients ran')
    cfg = {'service_accounts': ['app_svc'], 'keep_literals': True,
           'poolers': [{'address': '127.0.0.1', 'listen_port': b.port, 'pool_mode': mode}]}
    out = {}
    for legs, pcap in (('both', both), ('server', srv), ('client', cli)):
        db = os.path.join(tmp, f'{mode}-{legs}.db')
        js = db + '.json'
        dbtest.run_dbtap(pcap, db, config=cfg, extra=['--json', js])
        out[legs] = analyse(f'{mode}/{legs}', db, b.port, ports, mode, legs)
        if legs == 'both':
            report_and_json(mode, db, js)
            drops = dbtest.rows(db, 'SELECT drops FROM runs')[0]['drops']
            print(f'# {mode}: runs.drops {drops}')
            checks.check('"pooler_joined"' in drops, f'{mode}: join counters in runs.drops')
    return out


phase('transaction')
if not os.environ.get('ONLY_TXN'):
    phase('session')
    learned()
checks.done()
