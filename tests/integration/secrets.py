"""Secrets are never stored (DESIGN.md §3), with keep_literals on: real PostgreSQL logins
with cleartext, MD5 and SCRAM authentication, a wrong password, CREATE/ALTER ROLE ...
PASSWORD; real MariaDB logins with mysql_native_password and ed25519, a wrong password,
CREATE/ALTER USER ... IDENTIFIED BY, SET PASSWORD, GRANT ... IDENTIFIED BY, IDENTIFIED
VIA ... USING PASSWORD(), replication passwords, password columns, passwords typed without
quotes and a password in a startup parameter. The capture holds the secrets; no byte of the
database, its WAL or the JSON lines may."""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
tmp = tempfile.mkdtemp(prefix='dbtap-secrets-')
secrets = []


def secret(s):
    secrets.append(s)
    return s


# ---- PostgreSQL ----
pg = dbtest.Postgres(hba=[('host', 'all', 'pw_user', '127.0.0.1/32', 'password'),
                          ('host', 'all', 'md5_user', '127.0.0.1/32', 'md5'),
                          ('host', 'all', 'all', '127.0.0.1/32', 'scram-sha-256')])
pg.sql(f"CREATE ROLE pw_user LOGIN PASSWORD '{secret('PgClear-Login-1')}'")
pg.sql(f"SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD '{secret('PgMd5-Login-2')}'")
pg.sql(f"CREATE ROLE admin LOGIN CREATEROLE PASSWORD '{secret('PgScram-Login-3')}'")
pgcap = os.path.join(tmp, 'pg.pcap')
with dbtest.Capture(pgcap, [pg.port]):
    pg.psql('pw_user', 'PgClear-Login-1', 'SELECT 1;')
    pg.psql('md5_user', 'PgMd5-Login-2', 'SELECT 2;')
    pg.psql('admin', 'PgScram-Login-3', f"""
CREATE ROLE r1 LOGIN PASSWORD '{secret('PgCreate-Role-4')}';
ALTER ROLE r1 PASSWORD '{secret('PgAlter-Role-5')}';
ALTER USER r1 WITH ENCRYPTED PASSWORD '{secret('PgAlter-User-6')}';
CREATE USER r2 PASSWORD '{secret('PgCreate-User-7')}' VALID UNTIL 'infinity';
ALTER ROLE r1 PASSWORD {secret('PgBareWord10')};
ALTER ROLE r1 PASSWORD "{secret('PgQuotedIdent11')}";
""")  # the last two without quotes: syntax errors, but the passwords crossed the wire
    # a password inside a startup parameter whose name is harmless
    pg.psql('pw_user', 'PgClear-Login-1', 'SELECT 5;',
            extra={'PGOPTIONS': f"-c my.password={secret('PgOptSecret12')}"})
    pg.psql('admin', secret('PgWrong-Login-8'), 'SELECT 3;')
    pg.psql('pw_user', secret('PgWrong-Clear-9'), 'SELECT 4;')

# ---- MariaDB ----
my = dbtest.MariaDB()
my.sql("INSTALL SONAME 'auth_ed25519'")
my.sql(f"CREATE USER 'native'@'127.0.0.1' IDENTIFIED BY '{secret('MyNative-Login-1')}'")
my.sql("GRANT ALL ON *.* TO 'native'@'127.0.0.1' WITH GRANT OPTION")
my.sql(f"CREATE USER 'edu'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('{secret('MyEd25519-Login-2')}')")
mycap = os.path.join(tmp, 'my.pcap')
with dbtest.Capture(mycap, [my.port]):
    my.client('native', 'MyNative-Login-1', f"""
CREATE USER 'u2'@'%' IDENTIFIED BY '{secret('MyCreate-User-3')}';
ALTER USER 'u2'@'%' IDENTIFIED BY '{secret('MyAlter-User-4')}';
SET PASSWORD FOR 'u2'@'%' = PASSWORD('{secret('MySet-Password-5')}');
GRANT SELECT ON mysql.* TO 'u3'@'%' IDENTIFIED BY '{secret('MyGrant-Ident-6')}';
CREATE USER 'u4'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{secret('MyVia-Ed-7')}');
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_USER='r', MASTER_PASSWORD='{secret('MyMaster-Pw-9')}';
CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD='{secret('MySource-Pw-10')}';
CREATE USER 'u5'@'%' IDENTIFIED BY {secret('MyBareWord11')};
CREATE DATABASE IF NOT EXISTS sec;
CREATE TABLE sec.acct (id INT, user_passwd VARCHAR(80));
INSERT INTO sec.acct (id, user_passwd) VALUES (1, '{secret('MyColumn-Pw-12')}');
UPDATE sec.acct SET user_passwd = '{secret('MyColumn-Pw-13')}' WHERE id = 1;
SELECT 1;
""", extra=['--force'])  # SOURCE_PASSWORD is MySQL 8 syntax and the bare word a syntax error:
    # sent all the same (--force: the client goes on after an error)
    my.client('edu', 'MyEd25519-Login-2', 'SELECT 2;')
    my.client('native', secret('MyWrong-Login-8'), 'SELECT 3;')

raw = open(pgcap, 'rb').read() + open(mycap, 'rb').read()
for s in (b'PgClear-Login-1', b'MyCreate-User-3', b'PgBareWord10', b'PgOptSecret12', b'MyMaster-Pw-9',
          b'MyBareWord11', b'MyColumn-Pw-13'):
    c.check(s in raw, f'sanity: the captures carry {s.decode()} in clear')

cfg = {'ports': {'postgresql': [pg.port], 'mysql': [my.port]}, 'keep_literals': True}
db = os.path.join(tmp, 's.db')
js = os.path.join(tmp, 's.jsonl')
r = dbtest.run_dbtap([pgcap, mycap], db, config=cfg, extra=['--json', js], check=False)
c.eq(r.returncode, 0, f'dbtap exit status ({r.stderr.strip()})')
sess = dbtest.rows(db, 'SELECT protocol, db_user, auth_method, login FROM sessions ORDER BY id')
methods = {(s['db_user'], s['auth_method'], s['login']) for s in sess}
for want in (('pw_user', 'cleartext', 'ok'), ('md5_user', 'md5', 'ok'),
             ('admin', 'scram-sha-256', 'ok'), ('admin', 'scram-sha-256', 'failed'),
             ('native', 'mysql_native_password', 'ok'), ('native', 'mysql_native_password', 'failed')):
    c.check(want in methods, f'session {want} decoded')
c.check(any(s[0] == 'edu' and s[2] == 'ok' for s in methods), 'ed25519 login decoded')
n = dbtest.rows(db, 'SELECT count(*) AS n FROM statements')[0]['n']
c.check(n >= 13, f'statements stored ({n})')
kinds = [f['kind'] for f in dbtest.rows(db, 'SELECT kind FROM findings')]
c.check('cleartext_password' in kinds, 'cleartext password login raises cleartext_password')
c.check(kinds.count('privilege_change') >= 8, 'password changes are privilege changes')
for s in secrets:
    dbtest.assert_secret_absent(c, s, db, js)
# Nor any hash or auth exchange: PostgreSQL md5/SCRAM verifiers, MySQL native hashes.
blob = b''
for p in (db, db + '-wal', js):
    if os.path.exists(p):
        blob += open(p, 'rb').read()
c.check(not re.search(rb'md5[0-9a-f]{32}', blob), 'no md5 password hash stored')
c.check(b'SCRAM-SHA-256$' not in blob and b'n,,n=' not in blob and b',p=' not in blob,
        'no SCRAM verifier or exchange stored')
c.check(not re.search(rb'\*[0-9A-F]{40}', blob), 'no mysql_native_password hash stored')
stored = [json.loads(l) for l in open(js)]
c.check(any(e.get('event_type') == 'statement' and 'PASSWORD' in (e.get('sql') or '').upper()
            for e in stored), 'the password statements are stored (masked), not dropped')
c.done()
