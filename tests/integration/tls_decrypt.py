"""TLS decryption from key logs (issue #26), end to end with real servers and clients:
PostgreSQL 15 with ssl=on and MariaDB with a certificate, driven by node `pg` and `mysql2`
that log their TLS secrets in the NSS key log format (and asyncpg / PyMySQL through Python's
SSLContext.keylog_filename), captured on lo. For TLS 1.3 and 1.2,
AES-GCM and ChaCha20-Poly1305, the statements (SQL, outcome, rows) and end users dbtap
stores must equal those of the plaintext twin (the same script without TLS); TLS 1.2 CBC
suites (encrypt-then-MAC and MAC-then-encrypt), PostgreSQL 17 direct TLS (through a TLS
terminator), TLS 1.3 KeyUpdate (openssl s_client). Then the
unhappy paths: no key (counted, nothing decoded), a wrong key (authentication failure
counted, a protocol_anomaly), MariaDB connections resuming a session (TLS 1.3 PSK, TLS 1.2
ticket), sessions picked up mid-stream (midstream, reported as unsupported), a garbage key log (one warning per bad line, the good lines
still used), keys appended 5 s after the handshake while dbtap captures live (decrypted; also
through a FIFO)
and after the wait (key_late). No secret of the key log and no password sent inside TLS
may appear in the database, its WAL, the JSON output or stderr.

The node packages are installed once with npm into DBTAP_NODE_MODULES (default
~/.cache/dbtap-node), outside the repository; without node/npm the test is skipped."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

# The Python clients first, without this folder on the path: its secrets.py (a test) would
# shadow the standard module of that name, which they import.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _here]
try:
    import asyncio
    import ssl
    import asyncpg
    import pymysql
except ImportError as e:
    asyncpg = None
    PY_MISSING = str(e)
sys.path.insert(0, _here)
import dbtest  # noqa: E402

dbtest.need_root()
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, 'tls_client.js')
NODE_DIR = os.environ.get('DBTAP_NODE_MODULES', os.path.expanduser('~/.cache/dbtap-node'))


def node_modules():
    if not shutil.which('node') or not shutil.which('npm'):
        dbtest.skip('node and npm are not installed (contrib/deps.sh test installs them)')
    mods = os.path.join(NODE_DIR, 'node_modules')
    if not (os.path.isdir(os.path.join(mods, 'pg')) and os.path.isdir(os.path.join(mods, 'mysql2'))):
        os.makedirs(NODE_DIR, exist_ok=True)
        r = subprocess.run(['npm', 'install', '--prefix', NODE_DIR, '--no-audit', '--no-fund',
                            'pg@8', 'mysql2@3'], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            dbtest.skip('npm install pg mysql2 failed: ' + r.stderr.strip()[-200:])
    return mods


MODS = node_modules()
c = dbtest.Checks()
tmp = tempfile.mkdtemp(prefix='dbtap-tls-')
os.chmod(tmp, 0o755)
PASSWORD = 'Tls-Inner-Secret-771'

# ---- servers ----
# keyupd: trusted over TLS only, for the raw client of the KeyUpdate check
pg = dbtest.Postgres(ssl=True, hba=[('hostssl', 'app', 'keyupd', '127.0.0.1/32', 'trust'),
                                    ('host', 'all', 'all', '127.0.0.1/32', 'scram-sha-256')])
pg.sql(f"CREATE ROLE alice LOGIN PASSWORD '{PASSWORD}'")
pg.sql("CREATE DATABASE app OWNER alice")
pg.sql("CREATE ROLE keyupd LOGIN")

mdir = os.path.join(tmp, 'mycert')
os.makedirs(mdir)
os.chmod(mdir, 0o755)
crt, key = os.path.join(mdir, 'server.crt'), os.path.join(mdir, 'server.key')
subprocess.run(['openssl', 'req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=localhost',
                '-keyout', key, '-out', crt], check=True, capture_output=True)
for f in (crt, key):
    shutil.chown(f, 'mysql', 'mysql')
my = dbtest.MariaDB(args=[f'--ssl-cert={crt}', f'--ssl-key={key}'])
my.sql(f"CREATE USER 'alice'@'%' IDENTIFIED BY '{PASSWORD}'")
my.sql("CREATE DATABASE app")
my.sql("GRANT ALL ON app.* TO 'alice'@'%'")


def script(proto, tag):
    setvar = "SET app.end_user = 'carol'" if proto == 'pg' else "SET @app_user = 'carol'"
    return [f"CREATE TABLE t_{tag} (id int, note text)",
            f"INSERT INTO t_{tag} VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            f"SELECT id, note FROM t_{tag} WHERE id > 1 /*app_user='bob'*/",
            setvar,
            f"UPDATE t_{tag} SET note = 'z' WHERE id = 3",
            "SELECT no_such_column",
            f"SELECT count(*) FROM t_{tag}" + " WHERE note = '" + 'x' * 40000 + "'",
            f"DROP TABLE t_{tag}"]


def client(proto, tls, keylog, tag, **more):
    job = dict(proto=proto, host='127.0.0.1', port=pg.port if proto == 'pg' else my.port,
               user='alice', password=PASSWORD, database='app', keylog=keylog, tls=tls,
               statements=script(proto, tag))
    job.update(more)
    r = subprocess.run(['node', CLIENT, json.dumps(job)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, NODE_PATH=MODS))
    if r.returncode != 0:
        raise AssertionError(f'client failed: {r.stderr}')
    return json.loads(r.stdout)


def capture(name, proto, tls, tag, keylog=None, **more):
    pcap = os.path.join(tmp, name + '.pcap')
    keylog = keylog or os.path.join(tmp, name + '.keys')
    with dbtest.Capture(pcap, [pg.port if proto == 'pg' else my.port]):
        info = client(proto, tls, keylog if tls else None, tag, **more)
    return pcap, keylog, info


def cfg(proto, keylogs=None, extra=None):
    conf = {'ports': {'postgresql' if proto == 'pg' else 'mysql': [pg.port if proto == 'pg' else my.port]},
            'keep_literals': True}
    cap = dict(extra or {})
    if keylogs is not None:
        cap['tls_keylog'] = keylogs
    if cap:
        conf['capture'] = cap
    return conf


def decode(name, pcap, conf, check=True):
    db = os.path.join(tmp, name + '.db')
    js = os.path.join(tmp, name + '.json')
    r = dbtest.run_dbtap(pcap, db, config=conf, extra=['--json', js], check=check)
    with open(os.path.join(tmp, name + '.stderr'), 'w') as f:
        f.write(r.stderr)
    return db, js, r


def seen(db, tag):
    """What dbtap stored, with the table name made neutral so twins compare."""
    st = dbtest.rows(db, 'SELECT verb, sql, outcome, rows, error_code, end_user, end_user_source'
                         ' FROM statements ORDER BY id')
    # (the 40 kB statement is cut at the sql cap, where depends on the table name's length)
    return [(s['verb'], (s['sql'] or '').replace(tag, 'T')[:1000], s['outcome'], s['rows'], s['error_code'],
             s['end_user'], s['end_user_source']) for s in st]


def short(rows):
    return [tuple(x[:60] + '...' if isinstance(x, str) and len(x) > 60 else x for x in r) for r in rows]


def same(got, want, what):
    """Statement lists compared whole, printed shortened (a 40 kB literal is in them)."""
    if got == want:
        c.check(True, what)
    else:
        c.check(False, f'{what}: got {short(got)!r}, want {short(want)!r}')


def session(db):
    return dbtest.rows(db, 'SELECT db_user, database, login, auth_method, tls, tls_decrypted, midstream'
                           ' FROM sessions ORDER BY id')


def json_tls(js, ocsf=False):
    """tls_decrypted of every session line (dbtap) or Authentication event (OCSF) in js."""
    out = []
    with open(js) as f:
        for line in f:
            o = json.loads(line)
            if ocsf and o.get('class_uid') == 3002:
                out.append(o['unmapped'].get('tls_decrypted', 'absent'))
            elif not ocsf and o.get('event_type') == 'session':
                out.append(o.get('tls_decrypted', 'absent'))
    return out


def tls_counts(db):
    drops = json.loads(dbtest.rows(db, 'SELECT drops FROM runs')[0]['drops'])
    return drops.get('tls', {})


def secrets_of(keylog):
    out = []
    if os.path.exists(keylog):
        for line in open(keylog):
            f = line.split()
            if len(f) == 3:
                out.append(f[2])
    return out


def assert_no_secrets(name, keylog):
    paths = [os.path.join(tmp, name + ext) for ext in ('.db', '.json', '.stderr')]
    blobs = []
    for p in paths:
        for q in (p, p + '-wal', p + '-shm', p + '-journal'):
            if os.path.exists(q):
                with open(q, 'rb') as f:
                    blobs.append(f.read())
    secrets = secrets_of(keylog)
    leaked = [s for s in secrets for b in blobs
              if s.lower().encode() in b.lower() or bytes.fromhex(s) in b]
    c.check(secrets and not leaked, f'{name}: none of the {len(secrets)} key log secrets in DB/WAL/JSON/stderr')
    c.check(not any(PASSWORD.encode() in b for b in blobs), f'{name}: the password sent inside TLS is stored nowhere')


# ---- the plaintext twins ----
twins = {}
for proto in ('pg', 'my'):
    pcap, _, info = capture(f'{proto}_plain', proto, None, 'plain')
    c.check(info['tls'] is None, f'{proto}: the twin ran without TLS')
    db, _, _ = decode(f'{proto}_plain', pcap, cfg(proto))
    twins[proto] = seen(db, 'plain')
    c.eq(len(twins[proto]), 8, f'{proto}: the plaintext twin stored every statement')
    c.check(any(s[5] == 'bob' for s in twins[proto]) and any(s[5] == 'carol' for s in twins[proto]),
            f'{proto}: the twin attributes end users bob and carol')

# ---- decrypted, every version and cipher family ----
variants = [
    ('tls13_aes256', {'maxVersion': 'TLSv1.3'}, ('TLSv1.3', 'TLS_AES_256_GCM_SHA384')),
    ('tls13_aes128', {'minVersion': 'TLSv1.3', 'ciphers': 'TLS_AES_128_GCM_SHA256'}, ('TLSv1.3', 'TLS_AES_128_GCM_SHA256')),
    ('tls13_chacha', {'minVersion': 'TLSv1.3', 'ciphers': 'TLS_CHACHA20_POLY1305_SHA256'},
     ('TLSv1.3', 'TLS_CHACHA20_POLY1305_SHA256')),
    ('tls12_aesgcm', {'maxVersion': 'TLSv1.2', 'ciphers': 'ECDHE-RSA-AES256-GCM-SHA384'},
     ('TLSv1.2', 'ECDHE-RSA-AES256-GCM-SHA384')),
    ('tls12_chacha', {'maxVersion': 'TLSv1.2', 'ciphers': 'ECDHE-RSA-CHACHA20-POLY1305'},
     ('TLSv1.2', 'ECDHE-RSA-CHACHA20-POLY1305')),
]
kept = {}
for proto in ('pg', 'my'):
    for vname, tls, want in variants:
        name = f'{proto}_{vname}'
        pcap, keylog, info = capture(name, proto, tls, vname)
        c.eq(tuple(info['tls'] or ()), want, f'{name}: negotiated')
        db, js, r = decode(name, pcap, cfg(proto, [keylog]))
        same(seen(db, vname), twins[proto], f'{name}: statements and end users equal the plaintext twin')
        s = session(db)
        c.eq([(x['db_user'], x['database'], x['login'], x['tls'], x['tls_decrypted']) for x in s],
             [('alice', 'app', 'ok', 1, 1)], f'{name}: session tls=1, tls_decrypted=1, login ok')
        t = tls_counts(db)
        c.eq((t.get('sessions'), t.get('decrypted'), t.get('keys_matched'), t.get('auth_failures')),
             (1, 1, 1, 0), f'{name}: counters (sessions, decrypted, keys matched, auth failures)')
        jt = json_tls(js)
        c.check(jt[:1] == [None] and set(jt[1:]) <= {'pending', 1} and jt[-1] == 1,
                f'{name}: JSON session lines carry tls_decrypted: null before TLS, then pending, 1 (got {jt})')
        assert_no_secrets(name, keylog)
        kept[name] = (pcap, keylog)

# the OCSF Logon/Logoff events carry it too (unmapped), validated like every --json file
js = os.path.join(tmp, 'ocsf.json')
dbtest.run_dbtap(kept['my_tls13_chacha'][0], os.path.join(tmp, 'ocsf.db'),
                 config=cfg('my', [kept['my_tls13_chacha'][1]]), extra=['--json', js, '--json-format', 'ocsf'])
c.eq(json_tls(js, ocsf=True), [1, 1], 'OCSF 3002 Logon and Logoff: unmapped.tls_decrypted = 1')

# ---- session resumption: a pool's later connections resume the first one's session ----
# (MariaDB resumes with a TLS 1.3 PSK ticket or a TLS 1.2 ticket; PostgreSQL turns tickets
# and its session cache off, so its connections always make a full handshake.)
for vname, tls in (('res13', {'maxVersion': 'TLSv1.3', 'ciphers': 'TLS_CHACHA20_POLY1305_SHA256'}),
                   ('res12', {'maxVersion': 'TLSv1.2', 'ciphers': 'ECDHE-RSA-AES128-GCM-SHA256'})):
    name = f'my_{vname}'
    pcap, keylog, info = capture(name, 'my', tls, vname, connections=3, resume=True)
    c.eq(info['reused'], [False, True, True], f'{name}: the 2nd and 3rd connections resumed the session')
    db, js, r = decode(name, pcap, cfg('my', [keylog]))
    same(seen(db, vname), twins['my'] * 3, f'{name}: all three connections equal the plaintext twin')
    c.eq([(x['login'], x['tls_decrypted']) for x in session(db)], [('ok', 1)] * 3,
         f'{name}: three sessions, each decrypted')
    assert_no_secrets(name, keylog)

# ---- Python clients: Python's ssl module writes the key log (SSLContext.keylog_filename):
# asyncpg to PostgreSQL, PyMySQL to MariaDB, each against its own plaintext twin ----
def py_client(proto, tag, tls, keylog):
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.keylog_filename = keylog
        ctx.minimum_version = ctx.maximum_version = tls
        if tls == ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers('ECDHE-RSA-AES256-GCM-SHA384')
    out = []
    if proto == 'pg':
        async def go():
            conn = await asyncpg.connect(host='127.0.0.1', port=pg.port, user='alice', password=PASSWORD,
                                         database='app', ssl=ctx if tls else False)
            for q in script('pg', tag):
                try:
                    out.append(await conn.execute(q))  # no arguments: the simple query protocol
                except asyncpg.PostgresError as e:
                    out.append('error ' + e.sqlstate)
            ver = conn._transport.get_extra_info('ssl_object')
            await conn.close()
            return ver.version() if ver else None
        return asyncio.run(go()), out
    conn = pymysql.connect(host='127.0.0.1', port=my.port, user='alice', password=PASSWORD, database='app',
                           ssl=ctx if tls else None)
    with conn.cursor() as cur:
        for q in script('my', tag):
            try:
                out.append(cur.execute(q))
            except pymysql.MySQLError as e:
                out.append('error %d' % e.args[0])
    ver = conn._sock.version() if isinstance(conn._sock, ssl.SSLSocket) else None
    conn.close()
    return ver, out


if not asyncpg:
    print(f'# Python clients skipped: {PY_MISSING} (contrib/deps.sh test installs python3-asyncpg, python3-pymysql)')
else:
    for proto in ('pg', 'my'):
        pcap = os.path.join(tmp, f'py_{proto}_plain.pcap')
        with dbtest.Capture(pcap, [pg.port if proto == 'pg' else my.port]):
            ver, _ = py_client(proto, 'plain', None, None)
        c.check(ver is None, f'py {proto}: the twin ran without TLS')
        db, _, _ = decode(f'py_{proto}_plain', pcap, cfg(proto))
        twin = seen(db, 'plain')
        # (PyMySQL sends its own SET AUTOCOMMIT first: 9 for MariaDB)
        c.eq(len(twin), 8 if proto == 'pg' else 9, f'py {proto}: the plaintext twin stored every statement')
        for vname, tls in (('py13', ssl.TLSVersion.TLSv1_3), ('py12', ssl.TLSVersion.TLSv1_2)):
            name = f'{proto}_{vname}'
            pcap, keylog = os.path.join(tmp, name + '.pcap'), os.path.join(tmp, name + '.keys')
            with dbtest.Capture(pcap, [pg.port if proto == 'pg' else my.port]):
                ver, _ = py_client(proto, vname, tls, keylog)
            c.eq(ver, 'TLSv1.3' if tls == ssl.TLSVersion.TLSv1_3 else 'TLSv1.2', f'{name}: negotiated')
            db, js, r = decode(name, pcap, cfg(proto, [keylog]))
            same(seen(db, vname), twin, f'{name}: statements and end users equal the plaintext twin')
            c.eq([(x['login'], x['tls'], x['tls_decrypted']) for x in session(db)], [('ok', 1, 1)],
                 f'{name}: session tls=1, tls_decrypted=1')
            assert_no_secrets(name, keylog)

# ---- PostgreSQL 17's direct TLS (sslnegotiation=direct: a ClientHello with ALPN
# "postgresql" first, no SSLRequest). Debian 12 has PostgreSQL 15, so a TLS terminator
# stands in for PostgreSQL 17's listener: node pg -> A (plain) -> direct TLS, ALPN
# postgresql, Python's key log -> B -> PG15 in plain; dbtap reads the A-B leg. ----
def direct_tls(keylog):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(pg.data, 'server.crt'), os.path.join(pg.data, 'server.key'))
    sctx.set_alpn_protocols(['postgresql'])
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cctx.set_alpn_protocols(['postgresql'])
    cctx.keylog_filename = keylog
    port_a, port_b, alpn = dbtest.free_port(), dbtest.free_port(), []

    async def pipe(r, w):
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    async def on_b(r, w):
        alpn.append(w.get_extra_info('ssl_object').selected_alpn_protocol())
        r2, w2 = await asyncio.open_connection('127.0.0.1', pg.port)
        await asyncio.gather(pipe(r, w2), pipe(r2, w))

    async def on_a(r, w):
        r2, w2 = await asyncio.open_connection('127.0.0.1', port_b, ssl=cctx, server_hostname='localhost')
        await asyncio.gather(pipe(r, w2), pipe(r2, w))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.start_server(on_b, '127.0.0.1', port_b, ssl=sctx))
    loop.run_until_complete(asyncio.start_server(on_a, '127.0.0.1', port_a))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return port_a, port_b, alpn


if asyncpg:
    name = 'pg_direct_tls'
    keylog = os.path.join(tmp, name + '.keys')
    port_a, port_b, alpn = direct_tls(keylog)
    pcap = os.path.join(tmp, name + '.pcap')
    with dbtest.Capture(pcap, [port_b]):
        client('pg', None, None, 'direct', port=port_a)
    c.eq(alpn, ['postgresql'], f'{name}: the ClientHello came first and ALPN chose postgresql')
    db, js, r = decode(name, pcap, {'ports': {'postgresql': [port_b]}, 'keep_literals': True,
                                    'capture': {'tls_keylog': [keylog]}})
    same(seen(db, 'direct'), twins['pg'], f'{name}: statements and end users equal the plaintext twin')
    c.eq([(x['db_user'], x['login'], x['tls'], x['tls_decrypted']) for x in session(db)], [('alice', 'ok', 1, 1)],
         f'{name}: session tls=1, tls_decrypted=1, login ok')
    assert_no_secrets(name, keylog)

# ---- TLS 1.3 KeyUpdate: openssl s_client (-starttls postgres: SSLRequest, then TLS) speaks
# the PostgreSQL protocol we write to it; 'K' makes it update its keys and ask the server
# to (one each way), 'k' updates its own. OpenSSL logs the updated secrets under labels
# of its own (CLIENT_TRAFFIC_SECRET_N): ignored quietly, dbtap derives them. ----
def pg_msg(t, body):
    return t + struct.pack('!I', len(body) + 4) + body


def pg_query(sql):  # the extended protocol: s_client takes a chunk starting with 'Q' as quit
    return (pg_msg(b'P', b'\0' + sql.encode() + b'\0\0\0') + pg_msg(b'B', b'\0\0' + b'\0' * 6)
            + pg_msg(b'E', b'\0' + b'\0' * 4) + pg_msg(b'S', b''))


name = 'pg_keyupdate'
pcap, keylog = os.path.join(tmp, name + '.pcap'), os.path.join(tmp, name + '.keys')
startup = struct.pack('!I', 196608) + b'user\0keyupd\0database\0app\0\0'
with dbtest.Capture(pcap, [pg.port]):
    sc = subprocess.Popen(['openssl', 's_client', '-starttls', 'postgres', '-connect', f'127.0.0.1:{pg.port}',
                           '-tls1_3', '-keylogfile', keylog, '-no_ign_eof'],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for chunk in (struct.pack('!I', len(startup) + 4) + startup, pg_query('SELECT 1 AS before_update'),
                  b'K\n', pg_query('SELECT 2 AS after_update'), b'k\n', pg_query('SELECT 3 AS after_second'),
                  pg_msg(b'X', b'')):
        time.sleep(0.4)  # one write, one read on s_client's side: its commands are per read
        os.write(sc.stdin.fileno(), chunk)
    time.sleep(0.4)
    sc.stdin.close()
    sc.wait(20)
    scerr = sc.stderr.read().decode(errors='replace')
c.eq(scerr.count('KEYUPDATE'), 2, f'{name}: s_client sent its two KeyUpdates')
db, js, r = decode(name, pcap, cfg('pg', [keylog]))
c.eq([(x['sql'], x['outcome'], x['rows']) for x in dbtest.rows(db, 'SELECT sql, outcome, rows FROM statements')],
     [('SELECT 1 AS before_update', 'ok', 1), ('SELECT 2 AS after_update', 'ok', 1),
      ('SELECT 3 AS after_second', 'ok', 1)], f'{name}: statements before and after each update decoded')
t = tls_counts(db)
c.eq((t.get('key_updates'), t.get('auth_failures'), t.get('keylog_bad_lines')), (3, 0, 0),
     f'{name}: 3 key updates followed (client twice, server once), none failed, no key log warning')
c.eq([x['tls_decrypted'] for x in session(db)], [1], f'{name}: tls_decrypted = 1')
c.check('not a key log line' not in r.stderr, f'{name}: OpenSSL\'s _N labels are not warned about')

# ---- TLS 1.2 CBC suites: encrypt-then-MAC (OpenSSL's default, RFC 7366) and
# MAC-then-encrypt, HMAC-SHA1 and HMAC-SHA384 ----
cbc = [('cbc_etm', {'maxVersion': 'TLSv1.2', 'ciphers': 'ECDHE-RSA-AES128-SHA'}, 'ECDHE-RSA-AES128-SHA'),
       ('cbc_mte', {'maxVersion': 'TLSv1.2', 'ciphers': 'ECDHE-RSA-AES256-SHA384', 'noEtm': True},
        'ECDHE-RSA-AES256-SHA384')]
for proto in ('pg', 'my'):
    for vname, tls, suite in cbc:
        name = f'{proto}_{vname}'
        pcap, keylog, info = capture(name, proto, tls, vname)
        c.eq(tuple(info['tls'] or ()), ('TLSv1.2', suite), f'{name}: negotiated')
        db, js, r = decode(name, pcap, cfg(proto, [keylog]))
        same(seen(db, vname), twins[proto], f'{name}: statements and end users equal the plaintext twin')
        c.eq([(x['login'], x['tls'], x['tls_decrypted']) for x in session(db)], [('ok', 1, 1)],
             f'{name}: session tls=1, tls_decrypted=1')
        t = tls_counts(db)
        c.eq((t.get('decrypted'), t.get('auth_failures')), (1, 0), f'{name}: counted decrypted, no MAC failure')
        assert_no_secrets(name, keylog)
        kept[name] = (pcap, keylog)

# ---- what stays opaque is counted and reported: a TLS session picked up mid-stream (the
# decrypted TLS 1.3 capture above without its first third: no handshake, no client random)
# has keys in the log that nothing can match (PostgreSQL 15 and MariaDB refuse TLS 1.0/1.1,
# so the unsupported versions cannot be made here) ----
def pcap_tail(src, dst, frac):
    with open(src, 'rb') as f:
        data = f.read()
    recs, off = [], 24
    while off + 16 <= len(data):
        n = struct.unpack_from('<I', data, off + 8)[0]
        recs.append(data[off:off + 16 + n])
        off += 16 + n
    with open(dst, 'wb') as f:
        f.write(data[:24] + b''.join(recs[int(len(recs) * frac):]))


for proto in ('pg', 'my'):
    name = f'{proto}_midstream'
    src, keylog = kept[f'{proto}_tls13_aes256']
    pcap = os.path.join(tmp, name + '.pcap')
    pcap_tail(src, pcap, 1 / 3)
    db, js, r = decode(name, pcap, cfg(proto, [keylog]))
    c.eq(seen(db, 'tls13_aes256'), [], f'{name}: nothing decoded')
    c.eq([(x['tls'], x['tls_decrypted'], x['midstream']) for x in session(db)], [(1, 'midstream', 1)],
         f'{name}: tls_decrypted = midstream')
    t = tls_counts(db)
    c.eq((t.get('sessions'), t.get('midstream'), t.get('decrypted')), (1, 1, 0), f'{name}: counted as midstream')
    rep = subprocess.run([dbtest.dbtap_binary(), 'report', '-d', db], capture_output=True, text=True)
    c.check('decrypted 0, key missing 0, unsupported 1' in rep.stdout, f'{name}: the report counts it unsupported')
    rj = subprocess.run([dbtest.dbtap_binary(), 'report', '-d', db, '--format', 'json'], capture_output=True, text=True)
    bs = json.loads(rj.stdout)['blind_spots'] if rj.returncode == 0 else {}
    c.eq((bs.get('tls'), bs.get('tls_decrypted'), bs.get('tls_key_missing'), bs.get('tls_unsupported')), (1, 0, 0, 1),
         f'{name}: JSON report blind spots')

# ---- the key never arrives ----
pcap, keylog = kept['pg_tls13_aes256']
empty = os.path.join(tmp, 'empty.keys')
open(empty, 'w').close()
db, _, r = decode('nokey', pcap, cfg('pg', [empty]))
c.eq(r.returncode, 0, 'no key: dbtap ran to the end')
c.eq(seen(db, 'x'), [], 'no key: nothing decoded')
c.eq([(x['tls'], x['tls_decrypted']) for x in session(db)], [(1, 'no_key')], 'no key: tls_decrypted = no_key')
c.eq(tls_counts(db).get('no_key'), 1, 'no key: counted')
c.eq(json_tls(os.path.join(tmp, 'nokey.json'))[-1:], ['no_key'], 'no key: the JSON session line says no_key')
rep = subprocess.run([dbtest.dbtap_binary(), 'report', '-d', db], capture_output=True, text=True)
c.check('decrypted 0, key missing 1, unsupported 0' in rep.stdout, 'no key: the report splits the TLS blind spot')
db, _, r = decode('nokeylog', pcap, cfg('pg'))
c.eq([(x['tls'], x['tls_decrypted']) for x in session(db)], [(1, 'no_key')], 'no key log configured: no_key')

# ---- a wrong key: every secret altered ----
wrong = os.path.join(tmp, 'wrong.keys')
with open(wrong, 'w') as f:
    for line in open(keylog):
        lab, cr, sec = line.split()
        f.write(f'{lab} {cr} {sec[:-2]}{(int(sec[-2:], 16) ^ 1):02x}\n')
db, _, r = decode('wrongkey', pcap, cfg('pg', [wrong]))
c.eq(r.returncode, 0, 'wrong key: dbtap ran to the end')
c.eq(seen(db, 'x'), [], 'wrong key: nothing decoded')
c.eq([x['tls_decrypted'] for x in session(db)], ['bad_key'], 'wrong key: tls_decrypted = bad_key')
c.check(tls_counts(db).get('auth_failures', 0) >= 1, 'wrong key: authentication failure counted')
an = dbtest.rows(db, "SELECT count(*) AS n FROM findings WHERE kind = 'protocol_anomaly'")[0]['n']
c.check(an >= 1, 'wrong key: a protocol_anomaly finding')

# ---- a garbage key log: warnings per bad line, the good lines used ----
pcap, keylog = kept['my_tls12_chacha']
garbage = os.path.join(tmp, 'garbage.keys')
bad = ['this is not a key log', 'CLIENT_RANDOM zz 00', 'CLIENT_RANDOM ' + 'ab' * 32,
       'CLIENT_RANDOM ' + 'ab' * 32 + ' ' + 'cd' * 47, '\x00\x01\x02 binary', 'X' * 3000]
with open(garbage, 'w') as f:
    f.write('# comment lines are fine\n\n')
    for b in bad[:3]:
        f.write(b + '\n')
    f.write(open(keylog).read())
    for b in bad[3:]:
        f.write(b + '\n')
db, _, r = decode('garbage', pcap, cfg('my', [garbage]))
warns = [ln for ln in r.stderr.splitlines() if 'not a key log line' in ln]
c.eq(len(warns), len(bad), 'garbage key log: one warning per bad line')
same(seen(db, 'tls12_chacha'), twins['my'], 'garbage key log: the good line still decrypts')
c.eq(tls_counts(db).get('keylog_bad_lines'), len(bad), 'garbage key log: bad lines counted')
c.check(not any(s in r.stderr for s in secrets_of(keylog)), 'garbage key log: no secret in the warnings')

# ---- a directory of *.keys ----
kdir = os.path.join(tmp, 'keydir')
os.makedirs(kdir)
shutil.copy(kept['pg_tls12_aesgcm'][1], os.path.join(kdir, 'app.keys'))
shutil.copy(kept['pg_tls13_chacha'][1], os.path.join(kdir, 'other.keys'))
db, _, r = decode('keydir', [kept['pg_tls12_aesgcm'][0], kept['pg_tls13_chacha'][0]], cfg('pg', [kdir]))
c.eq([x['tls_decrypted'] for x in session(db)], [1, 1], 'key directory: both sessions decrypted')

# ---- live: keys appended after the handshake ----
def live(name, wait_s, delay_s, fifo=False):
    db = os.path.join(tmp, name + '.db')
    js = os.path.join(tmp, name + '.json')
    keylog = os.path.join(tmp, name + '.keys')
    late = os.path.join(tmp, name + '.client.keys')
    if fifo:
        os.mkfifo(keylog)
    else:
        open(keylog, 'w').close()
    conf = os.path.join(tmp, name + '.cfg.json')
    with open(conf, 'w') as f:
        json.dump(cfg('pg', [keylog], {'tls_key_wait_s': wait_s}), f)
    errf = open(os.path.join(tmp, name + '.stderr'), 'w')
    proc = subprocess.Popen([dbtest.dbtap_binary(), 'run', '-i', 'lo', '-d', db, '-c', conf, '--json', js,
                             '-f', f'tcp port {pg.port}', '-q'], stderr=errf)
    time.sleep(1.5)
    client('pg', {'maxVersion': 'TLSv1.3'}, late, name)
    time.sleep(delay_s)
    with open(keylog, 'a') as f:  # the application's key log, late
        f.write(open(late).read())
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    errf.close()
    if fifo:
        os.unlink(keylog)
    os.rename(late, keylog + '.all')
    with open(keylog, 'w') as f:
        f.write(open(keylog + '.all').read())
    return db, keylog


db, keylog = live('late5', 10, 5)
same(seen(db, 'late5'), twins['pg'], 'keys 5 s late (wait 10 s): statements equal the plaintext twin')
c.eq([x['tls_decrypted'] for x in session(db)], [1], 'keys 5 s late: tls_decrypted = 1')
assert_no_secrets('late5', keylog)
db, keylog = live('fifo', 10, 2, fifo=True)
same(seen(db, 'fifo'), twins['pg'], 'key log as a FIFO, keys 2 s late: statements equal the plaintext twin')
c.eq([x['tls_decrypted'] for x in session(db)], [1], 'key log as a FIFO: tls_decrypted = 1')
assert_no_secrets('fifo', keylog)
db, keylog = live('toolate', 2, 5)
c.eq(seen(db, 'toolate'), [], 'keys 5 s late (wait 2 s): nothing decoded')
c.eq([x['tls_decrypted'] for x in session(db)], ['key_late'], 'keys after the wait: tls_decrypted = key_late')
c.eq(tls_counts(db).get('key_late'), 1, 'keys after the wait: counted')

c.done()
