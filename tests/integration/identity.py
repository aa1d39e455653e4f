"""Issue #18, one connection one identity, on committed captures of real servers
(tests/integration/data/identity/make_captures.py): every marker reset is followed by
statements naming nobody; a stacked injection under the application's comment and its
findings name the comment's end user; COM_CHANGE_USER makes the new account the principal.
No server is needed: the captures are read with -r."""
import os
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

c.done()
