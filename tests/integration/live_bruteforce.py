"""Issue #19: brute force while it happens. `dbtap run -i lo` watches hydra 9.4 guessing
MariaDB passwords for two accounts (the last guess for one is right), and a guessing loop
against PostgreSQL md5 and scram accounts (Debian's hydra postgres module connects and
closes without a startup message, so psycopg2 plays that part). Checks, live:
  - auth_bruteforce is in the JSON output within 10 s of the threshold crossing (the
    finding's packet time), while the attack still runs;
  - the same finding is updated (same id, growing count), every account is named;
  - MariaDB and PostgreSQL bursts of one client are counted apart;
  - the login after the failures makes it critical and names the account;
  - one row per burst in the database (count > 1), and no password stored.
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

try:
    import psycopg2
except ImportError:
    psycopg2 = None
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
if not shutil.which('hydra'):
    dbtest.skip('hydra is not installed (apt-get install hydra)')
if psycopg2 is None:
    dbtest.skip('python3-psycopg2 is not installed')
c = dbtest.Checks()
PW = 'Right-Pw-42'
pg = dbtest.Postgres(hba=[('host', 'all', 'md5user', '127.0.0.0/8', 'md5'),
                          ('host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256')])
pg.sql(f"SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD '{PW}';"
       f"RESET password_encryption; CREATE ROLE scramuser LOGIN PASSWORD '{PW}'")
my = dbtest.MariaDB()
my.sql(f"CREATE USER svc@'%' IDENTIFIED BY '{PW}'; CREATE USER ops@'%' IDENTIFIED BY 'Other-Pw-7'")
tmp = tempfile.mkdtemp(prefix='dbtap-live-bf-')
db, js, cfg = (os.path.join(tmp, n) for n in ('bf.db', 'bf.json', 'cfg.json'))
with open(cfg, 'w') as f:
    json.dump({'ports': {'postgresql': [pg.port], 'mysql': [my.port]},
               'thresholds': {'bruteforce_window_s': 30}}, f)
words = os.path.join(tmp, 'words.txt')
with open(words, 'w') as f:
    f.write('\n'.join([f'guess{i}' for i in range(150)] + [PW]) + '\n')
users = os.path.join(tmp, 'users.txt')
with open(users, 'w') as f:
    f.write('ops\nsvc\n')

proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', cfg, '--json', js,
                         '-f', f'tcp port {pg.port} or tcp port {my.port}', '-q'],
                        stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
c.check(proc.poll() is None, 'dbtap is capturing on lo')

seen = {}  # finding id -> list of (wall time, obj)
stop = threading.Event()


def follow():
    pos = 0
    while not stop.is_set():
        if os.path.exists(js):
            with open(js) as f:
                f.seek(pos)
                for line in f:
                    if not line.endswith('\n'):
                        break
                    pos += len(line.encode())
                    o = json.loads(line)
                    if o.get('event_type') == 'finding' and o['kind'] == 'auth_bruteforce':
                        seen.setdefault(o['id'], []).append((time.time(), o))
        time.sleep(0.1)


watcher = threading.Thread(target=follow)
watcher.start()


def pg_guesses():
    for i in range(60):
        for user in ('md5user', 'scramuser'):
            try:
                psycopg2.connect(host='127.0.0.1', port=pg.port, user=user, password=f'guess{i}',
                                 dbname='postgres', connect_timeout=5).close()
            except psycopg2.OperationalError:
                pass
        time.sleep(0.2)


pg_thread = threading.Thread(target=pg_guesses)
pg_thread.start()
hydra_start = time.time()
r = subprocess.run(['hydra', '-L', users, '-P', words, '-t', '2', '-s', str(my.port), '127.0.0.1', 'mysql'],
                   capture_output=True, text=True, timeout=600)
hydra_end = time.time()
pg_thread.join()
c.check('svc' in r.stdout and PW in r.stdout, 'hydra found the svc password (the last guess)')
time.sleep(3)
stop.set()
watcher.join()
proc.send_signal(signal.SIGTERM)
try:
    proc.wait(20)
except subprocess.TimeoutExpired:
    proc.kill()
c.eq(proc.returncode, 0, 'dbtap stopped cleanly')


def ts(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


by_proto = {}
for fid, ups in seen.items():
    ev = ups[-1][1]['evidence']  # nested object in JSON lines v2
    by_proto.setdefault(ev.get('protocol'), []).append((fid, ups, ev))
print('hydra ran', round(hydra_end - hydra_start, 1), 's;', {k: len(v) for k, v in by_proto.items()})
for proto in ('mysql', 'postgresql'):
    rows = [x for x in by_proto.get(proto, []) if x[2]['signal'] == 'failed_logins_per_client']
    c.eq(len(rows), 1, f'{proto}: one client burst')
    if not rows:
        continue
    fid, ups, ev = rows[0]
    first_wall, first = ups[0]
    lag = first_wall - ts(first['ts'])
    print(f'{proto}: crossing at {first["ts"]}, in the JSON {lag:.1f} s later; {len(ups)} updates; '
          f'last: {ups[-1][1]["summary"]}')
    c.check(lag <= 10, f'{proto}: raised within 10 s of the threshold crossing ({lag:.1f} s)')
    if proto == 'mysql':
        c.check(first_wall < hydra_end, f'{proto}: raised while hydra still ran')
    counts = [o['evidence']['failures'] for _, o in ups]
    c.check(len(ups) >= 2 and counts == sorted(counts) and counts[-1] > counts[0],
            f'{proto}: the same finding updated with a growing count ({counts[0]} .. {counts[-1]})')
    want = {'ops', 'svc'} if proto == 'mysql' else {'md5user', 'scramuser'}
    c.check(want <= set(ev['accounts']), f'{proto}: every account named ({ev["accounts"]})')
    if proto == 'mysql':
        last = ups[-1][1]
        c.eq(last['severity'], 'critical', 'mysql: the login after the failures is critical')
        c.check(ev.get('succeeded_account') == 'svc', f'mysql: it names the account ({ev.get("succeeded_account")})')
rows = dbtest.rows(db, "SELECT id, count, severity, summary FROM findings WHERE kind = 'auth_bruteforce'")
for r_ in rows:
    print('  row', r_['id'], r_['count'], r_['severity'], r_['summary'])
c.check(all(r_['count'] >= 1 for r_ in rows) and any(r_['count'] > 1 for r_ in rows),
        'database: one row per burst, updated in place (count > 1)')
c.check(len(rows) <= 4, f'database: at most a client and an account row per protocol ({len(rows)})')
for secret in (PW, 'guess17'):
    dbtest.assert_secret_absent(c, secret, db, js)
c.done()
