"""Issue #19: what real attack tools do, replayed through dbtap from our own captures
(make_attack_captures.py made them with the Debian packages: sqlmap 1.7.2, hydra 9.4,
mysqldump, pg_dump against PostgreSQL 15 and MariaDB 10.11).

The web shop's benign traffic is learned first (--learn), then the sqlmap captures (benign
traffic running alongside) are judged. Every statement the shop executed is labelled
(labels.json.gz: benign, or sqlmap with its parameter changed = injected); statements are
matched to what dbtap stored by their exact text (keep_literals). Targets (issue #19):
  - >= 95 % of sqlmap's injected statements flagged sql_injection (per database);
  - every sqlmap run raises a critical finding within its first 20 injected statements;
  - <= 1 false sql_injection per 1,000 benign statements.
Prints recall per technique and database. `--keep DIR` leaves the databases there.
"""
import collections
import gzip
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'attacks')
if not os.path.exists(os.path.join(DATA, 'labels.json.gz')):
    dbtest.skip('no attack captures (tests/integration/make_attack_captures.py makes them)')
keep = sys.argv[sys.argv.index('--keep') + 1] if '--keep' in sys.argv else None
tmp = keep or tempfile.mkdtemp(prefix='dbtap-attack-tools-')
os.makedirs(tmp, exist_ok=True)
c = dbtest.Checks()


def unpack(name):
    out = os.path.join(tmp, name)
    with gzip.open(os.path.join(DATA, name + '.gz'), 'rb') as f, open(out, 'wb') as g:
        shutil.copyfileobj(f, g)
    return out


with gzip.open(os.path.join(DATA, 'labels.json.gz'), 'rt') as f:
    labels = json.load(f)

CFG = {'service_accounts': ['shop_svc'], 'keep_literals': True, 'admin_users': ['dba'],
       'admin_hosts': ['127.0.0.0/8']}
db = os.path.join(tmp, 'attacks.db')
for p in (db, db + '-wal', db + '-shm'):
    if os.path.exists(p):
        os.unlink(p)
dbtest.run_dbtap(unpack('learn.pcap'), db, config=CFG, extra=['--learn'])
dbtest.run_dbtap([unpack('sqlmap-pg.pcap'), unpack('sqlmap-my.pcap')], db, config=CFG)

stmts = dbtest.rows(db, "SELECT st.id, st.sql, st.outcome, st.error_code, st.fingerprint, se.protocol FROM statements st "
                        "JOIN sessions se ON se.id = st.session_id ORDER BY st.id")
flagged = {}
for r in dbtest.rows(db, "SELECT statement_id, severity, evidence FROM findings WHERE kind = 'sql_injection'"):
    flagged[r['statement_id']] = r
by_text = collections.defaultdict(collections.deque)
for s in stmts:
    by_text[('pg' if s['protocol'] == 'postgresql' else 'my', s['sql'])].append(s)


def technique(sql):
    u = sql.upper()
    if ('SLEEP(' in u or 'BENCHMARK(' in u) and ';' in u:
        return 'stacked'
    if 'SLEEP(' in u or 'BENCHMARK(' in u:
        return 'time'
    if 'UNION' in u:
        return 'union'
    if 'ORDER BY' in u and ('--' in u or '#' in u) and 'ORDER BY PRICE' not in u.split('--')[0].split('#')[0]:
        return 'order_by'
    for w in ('FLOOR(RAND', 'EXTRACTVALUE', 'UPDATEXML', 'GTID_SUBSET', 'JSON_KEYS', 'EXP(~', 'AS NUMERIC'):
        if w in u:
            return 'error'
    return 'boolean'


SEV = {'info': 0, 'low': 1, 'medium': 2, 'high': 3, 'critical': 4}


def match(entries):
    """Label entries in order -> (label, stored statement or None). A stacked payload is
    stored as one statement per part: it counts as flagged when any part is."""
    out = []
    for e in entries:
        if e.get('marker'):
            out.append((e, None))
            continue
        q = by_text.get((e['db'], e['sql']))
        if q:
            out.append((e, q.popleft()))
            continue
        parts = []
        for piece in e['sql'].split(';'):
            q = by_text.get((e['db'], piece.strip()))
            if q:
                parts.append(q.popleft())
        if not parts:
            out.append((e, None))
            continue
        hit = [p for p in parts if p['id'] in flagged]
        worst = max(hit, key=lambda p: SEV[flagged[p['id']]['severity']]) if hit else parts[-1]
        rec = dict(worst)
        rec['outcome'] = 'error' if any(p['outcome'] == 'error' for p in parts) else rec['outcome']
        out.append((e, rec))
    return out


learn = match(labels['learn'])
attack = match(labels['attack'])
benign = [s for e, s in learn + attack if not e.get('marker') and not e.get('injected') and s]
unmatched = sum(1 for e, s in learn + attack if not e.get('marker') and s is None)
c.check(unmatched <= 0.01 * len(learn + attack), f'labelled statements found in the database ({unmatched} not)')
fp = [s for s in benign if s['id'] in flagged]
rate = 1000.0 * len(fp) / max(1, len(benign))
print(f'benign statements: {len(benign)}, false sql_injection: {len(fp)} ({rate:.2f} per 1,000)')
for s in fp[:10]:
    print('   FP:', s['sql'][:200])
c.check(rate <= 1.0, f'false sql_injection per 1,000 benign statements {rate:.2f} <= 1')

table = collections.defaultdict(lambda: [0, 0])
clean_shapes = {s['fingerprint'] for s in benign}
value_only = collections.Counter()
runs = collections.defaultdict(list)
run = None
missed = []
for e, s in attack:
    if e.get('marker'):
        run = (e['db'], e['run'], e['technique'], e['level'])
        continue
    if not e.get('injected') or s is None:
        continue
    key = (technique(e['sql']), e['db'])
    if s['fingerprint'] in clean_shapes:  # sqlmap asked with another plain value: not code
        value_only[e['db']] += 1
        continue
    errored = s['outcome'] == 'error'
    if errored and s['id'] not in flagged:
        key = ('syntax-breaking (error)', e['db'])
    table[key][1] += 1
    if s['id'] in flagged:
        table[key][0] += 1
    else:
        missed.append(s)
    runs[run].append(s)
print(f"sqlmap requests that only changed the value (a known clean shape, not counted): "
      f"PostgreSQL {value_only['pg']}, MariaDB {value_only['my']}")
print('technique                  PostgreSQL     MariaDB')
for tech in sorted({k[0] for k in table}):
    pgv, myv = table[(tech, 'pg')], table[(tech, 'my')]
    print(f'{tech:26} {pgv[0]:5}/{pgv[1]:<6} {myv[0]:5}/{myv[1]:<6}')
for dbn in ('pg', 'my'):
    hit = sum(v[0] for k, v in table.items() if k[1] == dbn)
    tot = sum(v[1] for k, v in table.items() if k[1] == dbn)
    recall = 100.0 * hit / max(1, tot)
    print(f'{dbn}: {hit}/{tot} injected statements flagged ({recall:.1f} %)')
    c.check(tot > 100 and recall >= 95.0, f'{dbn}: recall {recall:.1f} % >= 95 %')
for s in missed[:15]:
    print('   missed:', s['protocol'], s['outcome'], s['error_code'], s['sql'][:220])
for r, ss in sorted(runs.items()):
    first = ss[:20]
    crit = [s for s in first if flagged.get(s['id'], {}).get('severity') == 'critical']
    pos = next((i for i, s in enumerate(ss) if flagged.get(s['id'], {}).get('severity') == 'critical'), None)
    c.check(bool(crit), f'sqlmap run {r}: a critical finding within the first 20 of {len(ss)} injected '
                        f'statements (first at #{pos})')
# the same attack as one sequence per actor: the report groups it
for r in dbtest.rows(db, "SELECT client_ip, db_user, application, count(*) AS n, max(severity = 'critical') AS crit"
                         " FROM findings WHERE kind = 'sql_injection' GROUP BY 1, 2, 3"):
    print('  actor', r)

# ---- hydra: MariaDB by hydra 9.4, PostgreSQL md5/scram guesses (see make_attack_captures.py)
hdb = os.path.join(tmp, 'hydra.db')
for p in (hdb, hdb + '-wal', hdb + '-shm'):
    if os.path.exists(p):
        os.unlink(p)
dbtest.run_dbtap(unpack('hydra.pcap'), hdb, config=CFG)
bf = dbtest.rows(hdb, "SELECT * FROM findings WHERE kind = 'auth_bruteforce'")
for f in bf:
    print('  bruteforce:', f['severity'], f['count'], f['summary'])
for proto, accounts in (('mysql', {'shop_svc', 'nobody'}), ('postgresql', {'shop_md5', 'shop_svc'})):
    rows_ = [f for f in bf if f['protocol'] == proto and 'per_client' in f['evidence']]
    c.eq(len(rows_), 1, f'hydra {proto}: one auth_bruteforce row for the client')
    if rows_:
        ev = json.loads(rows_[0]['evidence'])
        c.check(accounts <= set(ev['accounts']), f'hydra {proto}: every account named ({ev["accounts"]})')
        c.eq(rows_[0]['severity'], 'critical', f'hydra {proto}: the login after the failures is critical')
        c.check(rows_[0]['count'] > 1, f'hydra {proto}: updated in place (count {rows_[0]["count"]})')
for kind, most in (('protocol_anomaly', 2), ('cleartext_password', 1)):
    n = len(dbtest.rows(hdb, 'SELECT id FROM findings WHERE kind = ?', (kind,)))
    c.check(n <= most, f'hydra: {kind} rows {n} <= {most} (no flood)')

# ---- dumps: pg_dump, mysqldump, COPY TO STDOUT, INTO OUTFILE, pg_read_file
ddb = os.path.join(tmp, 'dumps.db')
for p in (ddb, ddb + '-wal', ddb + '-shm'):
    if os.path.exists(p):
        os.unlink(p)
dbtest.run_dbtap(unpack('dumps.pcap'), ddb, config=dict(CFG, admin_hosts=[]))
de = dbtest.rows(ddb, "SELECT f.*, se.application AS app FROM findings f JOIN sessions se ON se.id = f.session_id"
                      " WHERE kind = 'data_export'")
sig = {(json.loads(f['evidence'])['signal'], f['app']) for f in de}
print('  data_export:', sorted(sig))
c.check(('dump_tool', 'mysqldump') in sig, 'mysqldump: data_export (dump_tool) for a 5-row table')
c.check(('copy_to', 'pg_dump') in sig, 'pg_dump: data_export (copy_to)')
c.check(any(s_ == 'into_outfile' for s_, _ in sig), 'INTO OUTFILE: data_export')
c.check(any(s_ == 'file_function' for s_, _ in sig), 'pg_read_file: data_export')
c.eq(len(dbtest.rows(ddb, "SELECT id FROM findings WHERE kind IN ('bulk_read', 'sql_injection')")), 0,
     "dumps: no bulk_read, no sql_injection (pg_dump's catalog queries)")
c.done()
