"""Issue #18, one connection one identity, on committed captures of real servers
(tests/integration/data/identity/make_captures.py): every marker reset is followed by
statements naming nobody; a stacked injection under the application's comment and its
findings name the comment's end user; COM_CHANGE_USER makes the new account the principal.
No server is needed: the captures are read with -r."""
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'identity')
c = dbtest.Checks()
tmp = tempfile.mkdtemp(prefix='dbtap-identity-')
CFG = {'service_accounts': ['app_svc'], 'keep_literals': True, 'capture': {'idle_timeout_s': 3}}

# ---- marker resets and one attribution per message ----
db = os.path.join(tmp, 'resets.db')
dbtest.run_dbtap(os.path.join(DATA, 'resets.pcap'), db, config=CFG)
st = dbtest.rows(db, 'SELECT st.sql, st.end_user, st.end_user_source, s.db_user FROM statements st '
                'JOIN sessions s ON s.id = st.session_id ORDER BY st.id')
by_sql = {}
for r in st:
    by_sql.setdefault(r['sql'], []).append(r)


def one(sql):
    got = by_sql.get(sql, [])
    c.check(len(got) == 1, f'one statement {sql!r} (got {len(got)})')
    return got[0] if got else {}


for tag, n in (('pg', 6), ('my', 3)):
    for i in range(n):
        c.eq(one(f"SELECT 'probe {tag} {i}'").get('end_user'), f'{tag}_u{i}', f'{tag} marker {i} names its user')
        c.eq(one(f"SELECT 'after {tag} {i}'").get('end_user'), None, f'{tag} reset {i}: nobody named after it')
c.eq(one("SELECT 'probe pg t1'").get('end_user'), 'pg_t1', 'set_config(..., true) names the transaction')
c.eq(one("SELECT 'after pg t1'").get('end_user'), None, 'ROLLBACK ends a transaction marker')
c.eq(one("SELECT 'after pg t2'").get('end_user'), None, 'an error aborting the transaction ends SET LOCAL')
c.eq(one("SELECT 'probe pg t3'").get('end_user'), 'pg_t3', 'a session SET in a transaction names it')
c.eq(one("SELECT 'after pg t3'").get('end_user'), 'pg_keep', 'ROLLBACK undoes a session SET made in it')
c.eq(one("SELECT 'probe pg f1'").get('end_user'), 'pg_f1', 'marker before a failed SET')
c.eq(one("SELECT 'after pg f1'").get('end_user'), None, 'a failed SET: nobody named after it')
c.eq(one("SELECT 'probe my r'").get('end_user'), 'my_r', 'marker before COM_RESET_CONNECTION')
c.eq(one("SELECT 'after my r'").get('end_user'), None, 'COM_RESET_CONNECTION ends the marker')
c.eq(one("SELECT 'probe my c'").get('end_user'), 'my_c', 'marker before COM_CHANGE_USER')
r = one("SELECT 'after my c'")
c.eq((r.get('end_user'), r.get('end_user_source'), r.get('db_user')), ('bob', 'db_user', 'bob'),
     'COM_CHANGE_USER: the new account, no marker')
drops = by_sql.get('DROP TABLE tmp_import', [])
c.eq([(d['end_user'], d['end_user_source']) for d in drops], [('mallory', 'comment')] * 2,
     'stacked DROP (pg, mysql) names the comment\'s end user')
fnd = dbtest.rows(db, "SELECT kind, end_user FROM findings WHERE sql LIKE 'DROP TABLE tmp_import%'")
c.check(len(fnd) >= 2 and all(f['end_user'] == 'mallory' for f in fnd),
        f'findings on the stacked DROP name mallory: {fnd}')
c.eq(one("SELECT 'after pg stacked'").get('end_user'), None, 'the comment names nobody after its message')
wrong = [r for r in st if r['end_user'] and r['sql'].startswith("SELECT 'after") and r['sql'] != "SELECT 'after pg t3'"
         and r['sql'] != "SELECT 'after my c'"]
c.eq(wrong, [], 'no statement after a reset is attributed to a previous end user')

# ---- a pool connection idling past the idle timeout: parked, resumed on the same row ----
POOL = os.path.join(DATA, 'pool_idle.pcap')
with open(os.path.join(DATA, 'pool_idle.json')) as f:
    meta = json.load(f)
PCFG = dict(CFG, ports={'postgresql': [meta['pg_port']], 'mysql': [meta['my_port']]},
            capture={'idle_timeout_s': meta['idle_timeout_s']})
SESS = ('SELECT id, run_id, protocol, db_user, application, statements, end_reason, resumed, restored'
        ' FROM sessions ORDER BY id')
STMTS = 'SELECT session_id, end_user, end_user_source, sql FROM statements ORDER BY id'


def pool_checks(db, what, key):
    ss = dbtest.rows(db, SESS)
    pool = [r for r in ss if r['application'] == 'pool-web']
    c.eq(len(ss), 3, f'{what}: one session row per connection (2 pooled + heartbeat)')
    c.eq(sorted(r['protocol'] for r in pool), ['mysql', 'postgresql'], f'{what}: both pool connections')
    for r in pool:
        c.eq((r['db_user'], r['statements'], r[key]), ('app_svc', 16, 1),
             f'{what}: {r["protocol"]} row keeps its identity, all statements, {key}=1')
    st = dbtest.rows(db, STMTS)
    late = [r for r in st if r['end_user'] in ('cat', 'dan')]
    c.eq(len(late), 12, f'{what}: requests after the idle period are attributed')
    c.eq([r for r in late if not r['sql']], [], f'{what}: prepared statement text known after the idle period')
    sets = [r for r in st if r['sql'] and (r['sql'].startswith('RESET') or '= NULL' in r['sql'])]
    c.check(len(sets) == 8 and all(r['end_user'] is None for r in sets), f'{what}: resets name nobody')
    return ss, st


db1 = os.path.join(tmp, 'pool1.db')
dbtest.run_dbtap(POOL, db1, config=PCFG)
ss1, st1 = pool_checks(db1, 'idle', 'resumed')
drops = json.loads(dbtest.rows(db1, 'SELECT drops FROM runs')[0]['drops'])
c.eq((drops['sessions_parked'], drops['sessions_resumed']), (2, 2), 'parked and resumed are counted')


def split_pcap(src, at_s, out1, out2):
    """Cut a pcap file at at_s seconds after its first packet."""
    with open(src, 'rb') as f:
        hdr = f.read(24)
        magic = struct.unpack('<I', hdr[:4])[0]
        e = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
        div = 1e9 if magic in (0xa1b23c4d, 0x4d3cb2a1) else 1e6
        recs = []
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            sec, frac, incl, _ = struct.unpack(e + 'IIII', rh)
            recs.append((sec + frac / div, rh + f.read(incl)))
    with open(out1, 'wb') as a, open(out2, 'wb') as b:
        a.write(hdr)
        b.write(hdr)
        for t, r in recs:
            (a if t - recs[0][0] < at_s else b).write(r)


# ---- the same capture cut in two and read as two runs (a restart), and as two -r files ----
pa, pb = os.path.join(tmp, 'pool_a.pcap'), os.path.join(tmp, 'pool_b.pcap')
split_pcap(POOL, meta['split_after_s'], pa, pb)
db2 = os.path.join(tmp, 'pool2.db')
dbtest.run_dbtap(pa, db2, config=PCFG)
saved = dbtest.rows(db2, 'SELECT key, state FROM session_state')
c.eq(len(saved), 3, 'state of the three open connections saved at the end of the first run')
dbtest.run_dbtap(pb, db2, config=PCFG)
ss2, st2 = pool_checks(db2, 'restart', 'restored')
strip = ('resumed', 'restored')
c.eq([{k: v for k, v in r.items() if k not in strip} for r in ss2],
     [{k: v for k, v in r.items() if k not in strip} for r in ss1], 'two runs: the same session rows as one')
c.eq(st2, st1, 'two runs: the same statements, attributed the same')
c.eq(dbtest.rows(db2, 'SELECT count(*) AS n FROM session_state')[0]['n'], 0, 'closed connections leave no state')
db3 = os.path.join(tmp, 'pool3.db')
dbtest.run_dbtap([pa, pb], db3, config=PCFG)
ss3, st3 = pool_checks(db3, 'two files', 'resumed')
c.eq(st3, st1, 'two -r files: the same statements as one')

# ---- saved state older than state_max_age_s is not taken up ----
db4 = os.path.join(tmp, 'pool4.db')
dbtest.run_dbtap(pa, db4, config=PCFG)
con = sqlite3.connect(db4)
con.execute("UPDATE session_state SET saved_at = '2020-01-01T00:00:00.000000Z'")
con.commit()
con.close()
dbtest.run_dbtap(pb, db4, config=PCFG)
c.eq(dbtest.rows(db4, 'SELECT count(*) AS n FROM sessions WHERE restored > 0')[0]['n'], 0,
     'state older than state_max_age_s is not resumed')

# ---- dbtap prune removes saved state with the statements it removes ----
db5 = os.path.join(tmp, 'pool5.db')
dbtest.run_dbtap(pa, db5, config=PCFG)
con = sqlite3.connect(db5)
con.execute("UPDATE session_state SET saved_at = '2020-01-01T00:00:00.000000Z'")
con.commit()
con.close()
r = subprocess.run([dbtest.dbtap_binary(), 'prune', '-d', db5, '--older-than', '1d'], capture_output=True, text=True)
c.eq(r.returncode, 0, f'prune runs: {r.stderr.strip()}')
c.eq(dbtest.rows(db5, 'SELECT count(*) AS n FROM session_state')[0]['n'], 0, 'prune removes saved state')

c.done()
