"""Lexer differential against the servers' own verdicts (issue #20 item 2, "how it is
checked"): messages built from the constructs where lexers disagree (quotes and backslashes
under each standard_conforming_strings / sql_mode, dollar quotes, nested and executable
comments, \\r after --, routine bodies, quoted identifiers) around marker statements are sent
to a real PostgreSQL 15 and MariaDB 10.11, each message in one Query / COM_QUERY (psycopg2
and pymysql with multi-statements, as an application or an injection would). The server
says which markers it executed; dbtap must have stored every one of them.

The servers' verdicts:
  PostgreSQL  markers `SELECT 1 FROM mK` on one-row tables made beforehand: the table's
              seq_scan count (pg_stat_user_tables; counted when a later statement of the
              message fails and rolls the message back too); log_statement = all keeps each
              message as the server received it
  MariaDB     markers `CREATE TABLE mK (a int)` (a multi-statement message runs its
              statements one by one, each committed, up to the first error); the general log
              keeps each message as received

PREPARE ... AS / EXECUTE (both servers) and DO blocks whose EXECUTE builds its statement
from literals or format(): the server's state shows the statement ran, and dbtap must raise
destructive_statement naming it.

A DROP prepared with libpq's PQprepare, pushed out of the decoder's statement cache by 300
later names, then executed (PQexecPrepared): the server drops the table; dbtap must still
judge it by the statement's first bytes; the same on MariaDB's binary protocol (libmariadb's
mysql_stmt_prepare, 200 later statements, mysql_stmt_execute).

FunctionCall messages (libpq's PQfn) of pg_read_file and the server-side lo_import name
their function by OID only: the server's log names the function it ran ("fastpath function
call"), and dbtap must name it too and raise data_export as for the same call in SQL.

Seeded (DIFF_SEED, default 20) so that a failure is repeatable; DIFF_N messages per server
and setting (default 60). A marker dbtap stored that the server did not execute is printed
as information only (a statement that one reading of an unknown setting has).
"""
import os
import random
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
try:
    import psycopg2
    import pymysql
except ImportError:
    dbtest.skip('python3-psycopg2 and python3-pymysql are needed (contrib/deps.sh installs them)')

SEED = int(os.environ.get('DIFF_SEED', '20'))
N = int(os.environ.get('DIFF_N', '60'))
PW = 'Lx-Diff-Pw-3'
MAX_MARK = 30 * N + 100  # PostgreSQL's marker tables (made beforehand)
rng = random.Random(SEED)
tmp = tempfile.mkdtemp(prefix='dbtap-lexdiff-')
c = dbtest.Checks()

# ---- generators: statements valid in at least one reading, fillers, and openers that
# ---- change how the rest of the message reads

PG_STMTS = [
    "SELECT 'a''b'", "SELECT E'a\\'b'", "SELECT E'a\\\\'", "SELECT 'a\\'", "SELECT $t$;'\"--$t$",
    "SELECT $$/*$$", "SELECT $a$ $b$ ; $b$ $a$", 'SELECT 1 AS "a;--"', "SELECT U&'d\\0061t'",
    "SELECT '--;'", "SELECT '/*'", "SELECT 1 /* ; */ + 1", "SELECT 1 -- ;\n + 1", "SELECT 1 -- ;\r + 1",
    "SELECT x.y FROM (SELECT 1 AS y) x", "SELECT 1::int", "SELECT 'a' 'b'",
    "SELECT 'a'\n'b'", "SELECT b'01'", "SELECT x'1f'", "SELECT 1 AS begin", "SELECT $1x$ ;",
    "CREATE OR REPLACE FUNCTION f{k}(begin int) RETURNS int LANGUAGE sql RETURN begin",
    "CREATE OR REPLACE FUNCTION g{k}() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
    "CREATE OR REPLACE FUNCTION h{k}() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END",
    "DO $$ BEGIN PERFORM 1; END $$",
]
PG_FILL = [" ", "\n", "\r", "\r\n", "/* ; */", "/* /* ; */ ; */", "-- ;\n", "-- ;\r", "--\r", "/**/", "\t"]
PG_OPEN = ["'", "E'", "$q$", "/*", "--", '"', "\\'", "$", "'\\"]

MY_STMTS = [
    "SELECT 'a\\'b'", "SELECT 'a''b'", "SELECT 'a\\'", "SELECT 'a\\\\'", 'SELECT 1 AS "a;b"',
    "SELECT 1 AS `a;b`", 'SELECT "a\\";b"', "SELECT /*!50000 1 */", "SELECT 1 /*M!100100 + 1 */",
    "SELECT 1 /*!99999 + 1 */", "SELECT 1 /*M!999999 + 1 */", "SELECT 1 # ;\n + 1", "SELECT 1 -- ;\n + 1",
    "SELECT 1 --1", "SELECT 1 /* ; */ + 1", "SELECT _utf8mb4'a;'", "SELECT N'a;'", "SELECT x'3b'",
    "SELECT 'a' 'b'", "SELECT 1 AS begin", "SELECT \"a\"\"b\"", "SELECT 'a\\\\\\'b'",
    "CREATE OR REPLACE PROCEDURE p{k}() BEGIN SELECT 1; SELECT 2; END",
    "CREATE OR REPLACE PROCEDURE q{k}() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; END",
    "CREATE OR REPLACE FUNCTION r{k}(begin int) RETURNS int RETURN begin",
]
MY_FILL = [" ", "\n", "\r", "/* ; */", "# ;\n", "-- ;\n", "/**/", "\t", "/*! */"]
MY_OPEN = ["'", '"', "`", "/*", "#", "\\'", "/*!", "/*M!"]
MY_WRAP = ["{m}", "/*!50000 {m} */", "/*M!100100 {m} */", "/*M!999999 {m} */", "/*!99999 {m} */", "/*! {m} */"]

_next = [0]


def mark():
    _next[0] += 1
    return _next[0]


def message(stmts, fill, opens, marker, wrap=None):
    """One message: 1..6 items (marker or tricky statement), ';' between, fillers around,
    sometimes an opener (a lone quote or comment start) that may change the rest."""
    parts = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.45:
            m = marker.format(k=mark())
            if wrap:
                m = rng.choice(wrap).format(m=m)
            parts.append(m)
        elif r < 0.93:
            parts.append(rng.choice(stmts).format(k=mark()))
        else:
            parts.append(rng.choice(opens) + " " + marker.format(k=mark()))
    out = ''
    for i, p in enumerate(parts):
        if rng.random() < 0.5:
            out += rng.choice(fill)
        if rng.random() < 0.2 and ' ' in p:  # a filler between two words of the statement
            a = p.index(' ')
            p = p[:a] + rng.choice(fill) + p[a:]
        out += p
        if i + 1 < len(parts) or rng.random() < 0.5:
            out += ';'
    if rng.random() < 0.3:
        out += rng.choice(fill)
    return out


# ---- servers

pg = dbtest.Postgres(settings=["log_statement = 'all'", "escape_string_warning = off"])
pg.sql(f"CREATE USER lx PASSWORD '{PW}';"
       "CREATE SCHEMA s AUTHORIZATION lx; ALTER ROLE lx SET search_path = s, public;")
pg.sql(f"DO $$ BEGIN FOR k IN 1..{MAX_MARK - 1} LOOP EXECUTE format('CREATE TABLE s.m%s (a int); "
       f"INSERT INTO s.m%s VALUES (1)', k, k); END LOOP; END $$; GRANT SELECT ON ALL TABLES IN SCHEMA s TO lx;")
os.chmod(tmp, 0o711)
mylog_path = os.path.join(tmp, 'mylog', 'general.log')
os.makedirs(os.path.dirname(mylog_path))
shutil.chown(os.path.dirname(mylog_path), 'mysql', 'mysql')
my = dbtest.MariaDB(args=['--general-log', f'--general-log-file={mylog_path}'])
my.sql(f"CREATE DATABASE d; CREATE USER 'lx'@'%' IDENTIFIED BY '{PW}'; GRANT ALL ON d.* TO 'lx'@'%'")

sent = {}  # marker -> (server, setting, message)


def remember(server, setting, msg):
    for k in re.findall(r'\bm(\d+)\b', msg):
        sent[int(k)] = (server, setting, msg)


def run_pg():
    # scs on (the default), off from an earlier SET (ParameterStatus tells dbtap), and a SET
    # off in the same message (PostgreSQL lexes the whole message before running any of it)
    for setting in ('on', 'off', 'off-same-message'):
        con = psycopg2.connect(host='127.0.0.1', port=pg.port, user='lx', password=PW, dbname='postgres')
        con.autocommit = True
        cur = con.cursor()
        if setting == 'off':
            cur.execute('SET standard_conforming_strings = off')
        for _ in range(N):
            msg = message(PG_STMTS, PG_FILL, PG_OPEN, 'SELECT 1 FROM m{k}')
            if setting == 'off-same-message':
                msg = 'SET standard_conforming_strings = off; ' + msg
            remember('pg', setting, msg)
            try:
                cur.execute(msg)
            except psycopg2.Error:
                pass
            if setting == 'off-same-message':
                cur.execute('RESET standard_conforming_strings')
        con.close()
    assert _next[0] < MAX_MARK, 'more PostgreSQL markers than tables'


def run_my():
    modes = [None, '', 'NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES', 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES', 'same-message']
    for mode in modes:
        con = pymysql.connect(host='127.0.0.1', port=my.port, user='lx', password=PW, database='d',
                              autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        cur = con.cursor()
        if mode not in (None, 'same-message'):
            cur.execute(f"SET SESSION sql_mode = '{mode}'")
        for _ in range(N):
            msg = message(MY_STMTS, MY_FILL, MY_OPEN, 'CREATE TABLE m{k} (a int)', MY_WRAP)
            if mode == 'same-message':  # MariaDB parses each statement after running the one before
                msg = "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; " + msg
            remember('my', str(mode), msg)
            try:
                cur.execute(msg)
                while cur.nextset():
                    pass
            except pymysql.Error:
                pass
            if mode == 'same-message':
                try:
                    cur.execute("SET sql_mode = DEFAULT")
                except pymysql.Error:
                    con = pymysql.connect(host='127.0.0.1', port=my.port, user='lx', password=PW, database='d',
                                          autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
                    cur = con.cursor()
        con.close()


FASTPATH = [(3826, 'pg_read_file', b'PG_VERSION'), (764, 'lo_import', b'PG_VERSION')]


def libpq():
    import ctypes
    pq = ctypes.CDLL('libpq.so.5')
    pq.PQconnectdb.restype = ctypes.c_void_p
    pq.PQfn.restype = pq.PQprepare.restype = pq.PQexecPrepared.restype = ctypes.c_void_p
    pq.PQfn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                        ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    pq.PQprepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    pq.PQexecPrepared.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    pq.PQstatus.argtypes = pq.PQfinish.argtypes = pq.PQresultStatus.argtypes = [ctypes.c_void_p]
    pq.PQclear.argtypes = [ctypes.c_void_p]
    conn = pq.PQconnectdb(f'host=127.0.0.1 port={pg.port} user=lx password={PW} dbname=postgres '
                          'sslmode=disable'.encode())
    assert pq.PQstatus(conn) == 0, 'libpq connection failed'
    return ctypes, pq, conn


def run_fastpath():
    """FunctionCall messages as libpq's PQfn sends them (the function named by OID only)."""
    ctypes, pq, conn = libpq()

    class Arg(ctypes.Structure):
        _fields_ = [('len', ctypes.c_int), ('isint', ctypes.c_int), ('ptr', ctypes.c_void_p)]
    ok = 0
    for oid, _, path in FASTPATH:
        buf, out = ctypes.create_string_buffer(1 << 16), ctypes.c_int(0)
        arg = Arg(len(path), 0, ctypes.cast(ctypes.c_char_p(path), ctypes.c_void_p))
        res = pq.PQfn(conn, oid, buf, ctypes.byref(out), 1 if oid == 764 else 0, ctypes.byref(arg), 1)
        ok += pq.PQresultStatus(res) == 1  # PGRES_COMMAND_OK
        pq.PQclear(res)
    pq.PQfinish(conn)
    return ok


def run_evicted():
    """A DROP prepared (Parse), pushed out of the decoder's statement cache by 300 other
    names, then executed (Bind/Execute): libpq's PQprepare / PQexecPrepared."""
    _, pq, conn = libpq()
    ok = 1
    for name, q in [(b'victim', b'DROP TABLE w5')] + [(b'n%d' % i, b'SELECT %d' % i) for i in range(300)]:
        res = pq.PQprepare(conn, name, q, 0, None)
        ok &= pq.PQresultStatus(res) == 1
        pq.PQclear(res)
    res = pq.PQexecPrepared(conn, b'victim', 0, None, None, None, 0)
    ok &= pq.PQresultStatus(res) == 1
    pq.PQclear(res)
    pq.PQfinish(conn)
    return ok


def run_evicted_my():
    """The same on MariaDB's binary protocol (libmariadb's mysql_stmt_prepare / execute):
    a DROP prepared, then 200 other statements, then the DROP executed."""
    import ctypes
    my_c = ctypes.CDLL('libmariadb.so.3')
    my_c.mysql_init.restype = my_c.mysql_real_connect.restype = my_c.mysql_stmt_init.restype = ctypes.c_void_p
    my_c.mysql_init.argtypes = [ctypes.c_void_p]
    my_c.mysql_real_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p, ctypes.c_ulong]
    my_c.mysql_stmt_init.argtypes = [ctypes.c_void_p]
    my_c.mysql_stmt_prepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong]
    my_c.mysql_stmt_execute.argtypes = my_c.mysql_stmt_close.argtypes = [ctypes.c_void_p]
    my_c.mysql_close.argtypes = [ctypes.c_void_p]
    h = my_c.mysql_init(None)
    if not my_c.mysql_real_connect(h, b'127.0.0.1', b'lx', PW.encode(), b'd', my.port, None, 0):
        return 0
    stmts, ok = [], 1
    for q in [b'DROP TABLE w6'] + [b'SELECT %d' % i for i in range(200)]:
        st = my_c.mysql_stmt_init(h)
        ok &= my_c.mysql_stmt_prepare(st, q, len(q)) == 0
        stmts.append(st)
    ok &= my_c.mysql_stmt_execute(stmts[0]) == 0
    for st in stmts:
        my_c.mysql_stmt_close(st)
    my_c.mysql_close(h)
    return ok


def run_what_it_runs():
    """PREPARE / EXECUTE and DO blocks: the server runs the statement inside."""
    con = psycopg2.connect(host='127.0.0.1', port=pg.port, user='lx', password=PW, dbname='postgres')
    con.autocommit = True
    cur = con.cursor()
    for q in ('CREATE TABLE w1 (a int); INSERT INTO w1 VALUES (1), (2)', 'PREPARE p1 AS DELETE FROM w1',
              'EXECUTE p1', "DO $$ BEGIN EXECUTE 'CREATE TABLE w2 (a int)'; EXECUTE 'DR' || 'OP TABLE w2'; END $$",
              "CREATE TABLE w4 (a int)", "DO $$ BEGIN EXECUTE format('TRUNCATE %I', 'w4'); END $$"):
        cur.execute(q)
    con.close()
    con = pymysql.connect(host='127.0.0.1', port=my.port, user='lx', password=PW, database='d', autocommit=True)
    cur = con.cursor()
    for q in ('CREATE TABLE w3 (a int)', "PREPARE s3 FROM 'DROP TABLE w3'", 'EXECUTE s3'):
        cur.execute(q)
    con.close()


pg.sql("GRANT pg_read_server_files TO lx; GRANT EXECUTE ON FUNCTION pg_read_file(text) TO lx;"
       "GRANT EXECUTE ON FUNCTION lo_import(text) TO lx")
pcap, db = os.path.join(tmp, 'diff.pcap'), os.path.join(tmp, 'dbtap.db')
with dbtest.Capture(pcap, [pg.port, my.port]):
    run_pg()
    run_my()
    fast_ok = run_fastpath()
    run_what_it_runs()
    pg.sql('CREATE TABLE s.w5 (a int); ALTER TABLE s.w5 OWNER TO lx')
    evicted_ok = run_evicted()
    my.sql('CREATE TABLE d.w6 (a int)')
    evicted_my_ok = run_evicted_my()

# the servers' verdicts
time.sleep(1.5)  # a closing backend flushes its table statistics as it exits
pg_ran = {int(t[1:]) for t in pg.sql("SELECT relname FROM pg_stat_user_tables WHERE schemaname = 's'"
                                      " AND relname ~ '^m[0-9]+$' AND seq_scan > 0").split()}
my_ran = {int(t[1:]) for t in my.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'd'"
                                      " AND table_name REGEXP '^m[0-9]+$'").split()}
ran = pg_ran | my_ran
pg_sent = {k for k, v in sent.items() if v[0] == 'pg'}
my_sent = {k for k, v in sent.items() if v[0] == 'my'}
print(f'# seed {SEED}: {len(pg_sent)} PostgreSQL markers sent, {len(pg_ran)} executed; '
      f'{len(my_sent)} MariaDB markers sent, {len(my_ran)} executed')
c.check(len(pg_ran) > len(pg_sent) // 4 and len(my_ran) > len(my_sent) // 4,
        'the servers executed a good share of the markers (the generator makes valid SQL)')
c.check(pg_ran <= pg_sent and my_ran <= my_sent, 'every executed marker was one the test sent')

dbtest.run_dbtap(pcap, db)
seen, seen_ok = set(), set()
for r in dbtest.rows(db, 'SELECT sql, outcome FROM statements WHERE sql IS NOT NULL'):
    ks = {int(k) for k in re.findall(r'(?i)\b(?:FROM|TABLE)\s+m(\d+)\b', r['sql'])}
    seen |= ks
    if r['outcome'] == 'ok':
        seen_ok |= ks

missed = sorted(ran - seen)
for k in missed[:20]:
    srv, setting, msg = sent[k]
    print(f'# missed m{k} ({srv}, {setting}): {msg!r}')
c.check(not missed, f'dbtap stored every marker the servers executed ({len(ran)} executed, {len(missed)} missed)')
extra = sorted((seen & set(sent)) - ran)
extra_ok = sorted((seen_ok & set(sent)) - ran)
for k in extra_ok[:int(os.environ.get('DIFF_SHOW', '10'))]:
    srv, setting, msg = sent[k]
    print(f'# info: m{k} stored as ok, not executed by the server ({srv}, {setting}): {msg!r}')
print(f'# info: {len(extra)} markers stored that the server did not execute (in a message that failed'
      f' or one reading of an unknown setting), {len(extra_ok)} of them with outcome ok')

# the servers' logs hold the messages as received: every message with an executed marker
with open(os.path.join(pg.dir, 'log'), errors='replace') as f:
    pglog = f.read()
with open(mylog_path, errors='replace') as f:
    mylog = f.read()
c.check(all(f'm{k}' in (pglog if sent[k][0] == 'pg' else mylog) for k in ran),
        "each executed marker's message is in the server's own log (log_statement = all, general log)")

# FunctionCall by OID (issue #20): the server's log names the function it ran; dbtap names it
# too and judges it as the same call in SQL
c.eq(fast_ok, len(FASTPATH), 'the server ran both FunctionCalls')
fn_rows = dbtest.rows(db, "SELECT sql FROM statements WHERE sql LIKE 'FUNCTION CALL%'")
exports = dbtest.rows(db, "SELECT summary FROM findings WHERE kind = 'data_export'")
for oid, name, _ in FASTPATH:
    c.check(f'fastpath function call: "{name}" (OID {oid})' in pglog, f'the server log names {name} (OID {oid})')
    c.check(any(r['sql'] == f'FUNCTION CALL oid=? {name}()' for r in fn_rows),  # the OID masked as a literal
            f'dbtap stored the FunctionCall of OID {oid} as {name}')
    c.check(any(name in f['summary'] for f in exports), f'a data_export finding names {name}')

# what PREPARE / EXECUTE and DO ran (issue #20): the server's state says it ran, dbtap's
# destructive_statement findings name the statement run
c.eq(pg.sql('SELECT count(*) FROM s.w1').strip(), '0', 'PostgreSQL deleted the rows of w1 (EXECUTE)')
c.eq(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'w2'").strip(), '0', 'PostgreSQL dropped w2 (DO)')
c.eq(my.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'w3'").strip(),
     '0', 'MariaDB dropped w3 (EXECUTE)')
destr = [f['summary'] for f in dbtest.rows(db, "SELECT summary FROM findings WHERE kind = 'destructive_statement'")]
for what in ('DELETE without WHERE by lx: DELETE FROM w1 (EXECUTE of p1)', 'DROP TABLE w2 (EXECUTE in a DO block)',
             'TRUNCATE x (EXECUTE in a DO block)', 'DROP TABLE w3 (EXECUTE of s3)'):
    c.check(any(what in f for f in destr), f'destructive_statement: {what}')

# a prepared DROP whose text the decoder evicted (300 later names) is still judged by its head
c.check(evicted_ok, 'the server prepared 301 statements and executed the first')
c.eq(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'w5'").strip(), '0', 'PostgreSQL dropped w5')
c.check(any('DROP TABLE w5' in f for f in destr), 'destructive_statement: the evicted DROP TABLE w5, executed')
c.check(evicted_my_ok, 'MariaDB prepared 201 statements and executed the first')
c.eq(my.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'd' AND table_name = 'w6'").strip(),
     '0', 'MariaDB dropped w6')
c.check(any('DROP TABLE w6' in f for f in destr), 'destructive_statement: the evicted DROP TABLE w6, executed')
c.done()
