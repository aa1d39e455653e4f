"""Both --json formats over one live capture of PostgreSQL 15 and MariaDB (real clients: a
normal session, a failed login, an injection, a privilege change, a brute force), and over
the bundled sample capture:
  - every line validates against the published schema of its format (storage/schema);
  - dbtap v2: timestamp, sensor on every line; session states start/login/end; statement
    lines carry the server's address and port; community_id equals the Community ID v1 this
    test computes itself (hashlib) from the addresses and ports;
  - OCSF: one 6005 per statement line, one 3002 Logon per login (Failure for the failed one),
    one 2004 per finding with an ATT&CK technique where DESIGN's kind has one, and evidences
    and related_events naming statements that exist as 6005 events (metadata.uid)."""
import base64
import hashlib
import ipaddress
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-formats-')


def community_id(saddr, sport, daddr, dport, proto=6, seed=0):
    """Community ID v1, written from the spec (github.com/corelight/community-id-spec)."""
    a, b = ipaddress.ip_address(saddr).packed, ipaddress.ip_address(daddr).packed
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack('!H', seed) + a + b + struct.pack('!BBHH', proto, 0, sport, dport)
    return '1:' + base64.b64encode(hashlib.sha1(data).digest()).decode()


c.eq(community_id('128.232.110.120', 34855, '66.35.250.204', 80), '1:LQU9qZlK+B5F3KDmev6m5PMibrg=',
     "the test's own Community ID matches the spec's vector")

pg = dbtest.Postgres()
my = dbtest.MariaDB()
pg.sql("CREATE ROLE app LOGIN PASSWORD 'Fmt-Secret-1'")
pg.sql("CREATE ROLE dba LOGIN SUPERUSER PASSWORD 'Fmt-Secret-2'")
pg.sql("CREATE DATABASE shop OWNER app")
pg.sql("CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b');"
       "ALTER TABLE t OWNER TO app", db='shop')
my.sql("CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, name text);"
       "INSERT INTO shop.items VALUES (1, 'a');"
       "CREATE USER 'app'@'%' IDENTIFIED BY 'Fmt-Secret-3'; GRANT ALL ON shop.* TO 'app'@'%'")
pcap = os.path.join(tmp, 'live.pcap')
with dbtest.Capture(pcap, [pg.port, my.port]):
    r = pg.psql('app', 'Fmt-Secret-1', "SELECT * FROM t;\nINSERT INTO t VALUES (3, 'c');\n"
                "UPDATE t SET name = 'x' WHERE id = 1;\nDELETE FROM t WHERE id = 2;\n"
                "SELECT name FROM t WHERE id = 1 OR 1=1;\nCREATE TABLE u (x int);\nDROP TABLE u;\n", db='shop')
    c.eq(r.returncode, 0, f'PostgreSQL session ran {r.stderr.strip()[:200]}')
    c.check(pg.psql('app', 'wrong', 'SELECT 1;', db='shop').returncode != 0, 'PostgreSQL failed login')
    for _ in range(6):
        pg.psql('dba', 'guess', 'SELECT 1;', db='shop')
    r = pg.psql('dba', 'Fmt-Secret-2', 'ALTER ROLE app SUPERUSER;\n', db='shop')
    c.eq(r.returncode, 0, 'privilege change ran')
    r = my.client('app', 'Fmt-Secret-3', "SELECT name FROM items WHERE id = 1;\n"
                  "SELECT name FROM items WHERE id = 1 OR 1=1;\nUPDATE items SET name = 'z';\n", db='shop')
    c.eq(r.returncode, 0, f'MariaDB session ran {r.stderr.strip()[:200]}')
    c.check(my.client('app', 'wrong', 'SELECT 1;').returncode != 0, 'MariaDB failed login')

cfg = {'ports': {'postgresql': [pg.port], 'mysql': [my.port]}, 'audit': 'all'}
for name, cap in (('live', pcap), ('sample', sample)):
    out = {}
    for fmt in ('dbtap', 'ocsf'):
        js = os.path.join(tmp, f'{name}-{fmt}.json')
        # run_dbtap validates every line against storage/schema (raises otherwise)
        dbtest.run_dbtap(cap, os.path.join(tmp, f'{name}-{fmt}.db'), config=cfg,
                         extra=['--json', js, '--json-format', fmt, '--sensor', f'{name}-1'])
        c.eq(dbtest.json_line_errors(js), [], f'{name}/{fmt}: every line validates against its schema')
        out[fmt] = [json.loads(x) for x in open(js)]
    d, o = out['dbtap'], out['ocsf']
    c.check(all(x['sensor'] == f'{name}-1' and x['schema_version'] == 2 for x in d),
            f'{name}/dbtap: sensor and schema_version on every line')
    sess = [x for x in d if x['event_type'] == 'session']
    stmts = [x for x in d if x['event_type'] == 'statement']
    finds = [x for x in d if x['event_type'] == 'finding']
    states = {}
    for s in sess:
        states.setdefault(s['id'], []).append(s['state'])
    c.check(all(v[0] == 'start' and v[-1] == 'end' for v in states.values()),
            f'{name}/dbtap: every session starts with state start and ends with end ({len(states)} sessions)')
    logins = [s for s in sess if s['state'] == 'login']
    c.check(all(s['login'] in ('ok', 'failed') for s in logins), f'{name}/dbtap: state login carries the outcome')
    bad = [x for x in sess + stmts if x['community_id'] != community_id(x['client_ip'], x['client_port'],
                                                                      x['server_ip'], x['server_port'])]
    c.eq(bad[:1], [], f'{name}/dbtap: community_id is the Community ID v1 of the connection')
    c.check(stmts and all(x['server_port'] > 0 and x['server_ip'] for x in stmts),
            f'{name}/dbtap: statement lines carry the server address and port')

    by_class = {}
    for x in o:
        by_class.setdefault(x['class_uid'], []).append(x)
    c.eq(len(by_class.get(6005, [])), len(stmts), f'{name}/ocsf: one 6005 per statement')
    logons = [x for x in by_class.get(3002, []) if x['activity_id'] == 1]
    c.eq(len(logons), len(logins), f'{name}/ocsf: one 3002 Logon per login')
    c.eq(sorted(x['status_id'] for x in logons), sorted(1 if s['login'] == 'ok' else 2 for s in logins),
         f'{name}/ocsf: Logon status Success/Failure as the login')
    c.eq(len(by_class.get(2004, [])), len(finds), f'{name}/ocsf: one 2004 per finding line')
    verbs = {x['unmapped']['verb']: x['activity_id'] for x in by_class.get(6005, [])}
    for verb, act in (('SELECT', 1), ('UPDATE', 2), ('INSERT', 5), ('CREATE', 6), ('DELETE', 7), ('DROP', 7)):
        if verb in verbs:
            c.eq(verbs[verb], act, f'{name}/ocsf: {verb} is activity {act}')
    uids = {x['metadata']['uid'] for x in by_class.get(6005, [])}
    for f in by_class.get(2004, []):
        rel = [e['uid'] for e in f['finding_info'].get('related_events', [])]
        c.check(all(u in uids for u in rel), f'{name}/ocsf: finding {f["finding_info"]["uid"]} names statements that exist')
    if name == 'live':
        kinds = {f['unmapped']['kind']: f for f in by_class.get(2004, [])}
        for kind, tech in (('sql_injection', 'T1190'), ('auth_bruteforce', 'T1110'), ('privilege_change', 'T1098')):
            f = kinds.get(kind)
            got = f and [a['technique']['uid'] for a in f['finding_info'].get('attacks', [])]
            c.eq(got, [tech], f'live/ocsf: {kind} carries ATT&CK {tech}')
        c.check({'postgresql', 'mysql'} <= {x['dst_endpoint']['svc_name'] for x in by_class.get(6005, [])},
                'live/ocsf: statements of both protocols')
    dbtest.assert_secret_absent(c, 'Fmt-Secret-1', *[os.path.join(tmp, f'{name}-{f}.json') for f in out])
c.done()
