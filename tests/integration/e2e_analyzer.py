"""Analyzer end to end with real servers and real clients: a pooled application (one service
account; end users marked per request by sqlcommenter comments, set_config with bound
parameters via pgbench's extended protocol, SET LOCAL / SET application_name, MySQL SET @var),
an injection attempt, a brute force, a privilege change and a bulk export against
PostgreSQL 15 and MariaDB on private ports. The capture (tcpdump on lo) goes through
dbtap; we assert on statements.end_user and on findings with sqlite."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
pg = dbtest.Postgres()
my = dbtest.MariaDB()
SECRETS = ['Svc-Secret-111', 'Dba-Secret-222', 'Guess-Secret-333', 'New-Secret-444', 'My-Svc-555',
           'My-Guess-666']

pg.sql("CREATE ROLE app_svc LOGIN PASSWORD 'Svc-Secret-111'")
pg.sql("CREATE ROLE dba LOGIN SUPERUSER PASSWORD 'Dba-Secret-222'")
pg.sql("CREATE ROLE alice LOGIN")
pg.sql("CREATE DATABASE shop OWNER app_svc")
pg.sql("CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text);"
       "INSERT INTO customers SELECT g, 'name' || g, 'ssn' || g FROM generate_series(1, 15000) g;"
       "ALTER TABLE customers OWNER TO app_svc", db='shop')
my.sql("CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, name text);"
       "INSERT INTO shop.items VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "CREATE USER 'app_svc'@'%' IDENTIFIED BY 'My-Svc-555'; GRANT ALL ON shop.* TO 'app_svc'@'%'")

tmp = tempfile.mkdtemp(prefix='dbtap-e2e-an-')
pcap = os.path.join(tmp, 'e2e.pcap')
db = os.path.join(tmp, 'e2e.db')
js = os.path.join(tmp, 'e2e.json')

pooled = """
SELECT name FROM customers WHERE id = 1 /*app_user='bob',route='%2Fcustomers%2F1',traceparent='00-4bf92f3577b34da6-00f067aa0ba902b7-01'*/;
BEGIN;
SELECT set_config('app.user', 'carol', true);
SELECT name FROM customers WHERE id = 2;
COMMIT;
SELECT name FROM customers WHERE id = 3;
SET application_name = 'shop:dave';
SELECT name FROM customers WHERE id = 5;
RESET application_name;
BEGIN;
SET LOCAL app.end_user = 'grace';
SELECT name FROM customers WHERE id = 6;
COMMIT;
SELECT name FROM customers WHERE id = 1 OR 1=1;
SELECT name FROM customers WHERE name = '' UNION SELECT usename FROM pg_shadow;
"""
bench = """BEGIN;
SELECT set_config('app.user', :user, true);
SELECT name FROM customers WHERE id = 4;
END;
"""
mysql_app = """
SET @app_user = 'frank';
SELECT name FROM items WHERE id = 1;
SELECT name FROM items WHERE id = 1 OR 1=1;
SELECT name FROM items WHERE id = 2 AND SLEEP(0) = 0;
"""

with dbtest.Capture(pcap, [pg.port, my.port]) as cap:
    r = pg.psql('app_svc', 'Svc-Secret-111', pooled, db='shop')
    c.check('name1' in r.stdout, f'pooled psql session ran ({r.stderr.strip()[:200]})')
    bf = os.path.join(tmp, 'bench.sql')
    with open(bf, 'w') as f:
        f.write(bench)
    os.chmod(tmp, 0o755)
    os.chmod(bf, 0o644)
    env = dict(os.environ, PGPASSWORD='Svc-Secret-111')
    r = subprocess.run([f'{dbtest.PG_BIN}/pgbench', '-n', '-M', 'extended', '-h', '127.0.0.1', '-p',
                        str(pg.port), '-U', 'app_svc', '-t', '1', '-c', '1', '-D', 'user=erin', '-f', bf,
                        'shop'], env=env, capture_output=True, text=True, timeout=60)
    c.eq(r.returncode, 0, f'pgbench (extended protocol, bound set_config) ran ({r.stderr.strip()[:200]})')
    for i in range(6):
        pg.psql('dba', 'Guess-Secret-333', 'SELECT 1;', db='shop')
    r = pg.psql('dba', 'Dba-Secret-222', "GRANT SELECT ON customers TO alice;\n"
                "ALTER ROLE alice SUPERUSER;\nALTER ROLE alice PASSWORD 'New-Secret-444';\n"
                "COPY customers TO STDOUT;\n", db='shop')
    c.eq(r.returncode, 0, f'dba session ran ({r.stderr.strip()[:200]})')
    r = my.client('app_svc', 'My-Svc-555', mysql_app, db='shop')
    c.eq(r.returncode, 0, f'MariaDB pooled session ran ({r.stderr.strip()[:200]})')
    for i in range(6):
        my.client('root', 'My-Guess-666', 'SELECT 1;')

cfg = {'ports': {'postgresql': [pg.port], 'mysql': [my.port]}, 'service_accounts': ['app_svc'],
       'keep_literals': True}
dbtap = dbtest.run_dbtap(pcap, db, config=cfg, extra=['--json', js])


def user_of(sql_like, db_=db):
    rs = dbtest.rows(db_, "SELECT end_user, end_user_source FROM statements WHERE sql LIKE ? ORDER BY id",
                     (sql_like,))
    return [(r['end_user'], r['end_user_source']) for r in rs]


c.eq(user_of('%WHERE id = 1 /*%'), [('bob', 'comment')], 'sqlcommenter tag names the end user')
c.eq(user_of('%WHERE id = 2'), [('carol', 'session_variable')], "set_config(..., true) inside the transaction")
c.eq(user_of('%WHERE id = 3'), [(None, None)], 'after COMMIT the transaction marker is gone; service account is nobody')
c.eq(user_of('%WHERE id = 5'), [('dave', 'application_name')], "SET application_name = 'shop:dave'")
c.eq(user_of('%WHERE id = 6'), [('grace', 'session_variable')], 'SET LOCAL app.end_user')
c.eq(user_of('%WHERE id = 4'), [('erin', 'session_variable')], 'set_config($1, ...) with a bound value (pgbench -M extended)')
c.eq(user_of('SELECT name FROM items WHERE id = 1'), [('frank', 'session_variable')], 'MySQL SET @app_user')
c.eq(user_of('GRANT SELECT ON customers TO alice'), [('dba', 'db_user')], 'a human account is its own end user')

fs = dbtest.rows(db, 'SELECT * FROM findings ORDER BY id')
by_kind = {}
for f in fs:
    by_kind.setdefault(f['kind'], []).append(f)
print('findings:', {k: len(v) for k, v in by_kind.items()})
inj = by_kind.get('sql_injection', [])
c.check(any(f['protocol'] == 'postgresql' and 'tautology' in f['evidence'] for f in inj), 'PostgreSQL OR 1=1 is injection')
c.check(any('union_select' in f['evidence'] or 'credential_catalog' in f['evidence'] for f in inj),
        'UNION SELECT from pg_shadow by the service account is injection')
c.check(any(f['protocol'] == 'mysql' and 'tautology' in f['evidence'] for f in inj), 'MariaDB OR 1=1 is injection')
c.check(any(f['protocol'] == 'mysql' and 'time_delay' in f['evidence'] for f in inj), 'SLEEP() is a time delay')
c.check(all(f['db_user'] for f in inj), 'injection findings carry the db_user')
bf = by_kind.get('auth_bruteforce', [])
c.check(1 <= len(bf) <= 2, f'brute force: one finding per burst, not one per failure ({len(bf)})')
c.check(bf and max(int(__import__('json').loads(f['evidence'])['failures']) for f in bf) >= 6, 'the finding carries the count')
pc = by_kind.get('privilege_change', [])
c.check(any('GRANT' in (f['summary'] or '') for f in pc), 'GRANT is a privilege change')
c.check(any(f['severity'] == 'critical' for f in pc), 'ALTER ROLE ... SUPERUSER is critical')
c.check(any(f['kind'] == 'data_export' for f in fs), 'COPY ... TO STDOUT is a data export')
c.check(any(f['kind'] == 'bulk_read' for f in fs), '15000 rows in one statement is a bulk read')
c.check(all(f['summary'] and f['evidence'] for f in fs), 'every finding has a summary and JSON evidence')
sess = dbtest.rows(db, "SELECT count(*) AS n FROM sessions WHERE login = 'failed'")[0]['n']
c.check(sess >= 12, f'failed logins recorded as sessions ({sess})')
for s in SECRETS:
    dbtest.assert_secret_absent(c, s, db, js)
c.done()
