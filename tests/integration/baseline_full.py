"""Issue #20 item 4: a full baseline never goes silent. sqlmap's capture against PostgreSQL
(tests/integration/data/attacks, 11,940 statements, about 130 baseline items) is read with
baseline.max_entries 50 and no learning period:
  - evict (the default): the same new_query_shape findings as an unbounded baseline, one
    baseline_full per run, at most 50 rows on disk after each run (evicted rows are
    deleted), baseline_evicted counted in the JSON stats and in runs.stats;
  - stop: learning stops, fewer findings, baseline_dropped counted, one baseline_full.
"""
import gzip
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'attacks')
if not os.path.exists(os.path.join(DATA, 'sqlmap-pg.pcap.gz')):
    dbtest.skip('no attack captures (tests/integration/make_attack_captures.py makes them)')
tmp = tempfile.mkdtemp(prefix='dbtap-baseline-full-')
c = dbtest.Checks()
pcap = os.path.join(tmp, 'sqlmap-pg.pcap')
with gzip.open(os.path.join(DATA, 'sqlmap-pg.pcap.gz'), 'rb') as f, open(pcap, 'wb') as g:
    shutil.copyfileobj(f, g)


def run(name, baseline, times=1):
    db = os.path.join(tmp, name + '.db')
    stats = []
    for i in range(times):
        js = os.path.join(tmp, f'{name}-{i}.json')
        dbtest.run_dbtap(pcap, db, config={'baseline': dict(baseline, learning_period_s=0)},
                         extra=['--json', js])
        with open(js) as f:
            stats.append([json.loads(line) for line in f if '"stats"' in line][-1])
    return db, stats


def count(db, kind, run_id=None):
    q = 'SELECT count(*) AS n FROM findings WHERE kind = ?' + (' AND run_id = ?' if run_id else '')
    return dbtest.rows(db, q, (kind, run_id) if run_id else (kind,))[0]['n']


def stat(s, name):
    """A counter from the last JSON stats event (at its top level or in an object)."""
    if name in s:
        return s[name]
    for v in s.values():
        if isinstance(v, dict) and name in v:
            return v[name]
    return None


free_db, _ = run('unbounded', {})
want = count(free_db, 'new_query_shape')
c.check(want > 100, f'unbounded baseline: {want} new_query_shape findings')
c.eq(count(free_db, 'baseline_full'), 0, 'unbounded: no baseline_full')

db, st = run('evict', {'max_entries': 50}, times=2)
c.eq(count(db, 'new_query_shape', 1), want, 'evict, run 1: every new shape still judged')
for r in (1, 2):
    c.eq(count(db, 'baseline_full', r), 1, f'evict, run {r}: one baseline_full')
n = dbtest.rows(db, 'SELECT count(*) AS n FROM baseline')[0]['n']
c.check(0 < n <= 50, f'evict: {n} baseline rows on disk (max_entries 50)')
c.eq(dbtest.rows(db, 'SELECT count(*) AS n FROM baseline WHERE pending < 0')[0]['n'], 0, 'no tombstones')
for r, s in enumerate(st, 1):
    c.check((stat(s, 'baseline_evicted') or 0) > 0, f'evict, run {r}: baseline_evicted {stat(s, "baseline_evicted")}')
    c.eq(stat(s, 'baseline_dropped'), 0, f'evict, run {r}: nothing dropped')
runs = dbtest.rows(db, 'SELECT stats FROM runs ORDER BY id')
c.check(all(json.loads(x['stats']).get('baseline_evicted', 0) > 0 for x in runs),
        'runs.stats carries baseline_evicted for each run')
f = dbtest.rows(db, "SELECT summary, evidence FROM findings WHERE kind = 'baseline_full' LIMIT 1")[0]
c.check('least recently seen' in f['summary'], f['summary'])
c.eq(json.loads(f['evidence']).get('when_full'), 'evict', 'evidence names the policy')

db, st = run('stop', {'max_entries': 50, 'when_full': 'stop'})
got = count(db, 'new_query_shape')
c.check(got < want, f'stop: learning stops ({got} of {want} new_query_shape)')
c.eq(count(db, 'baseline_full'), 1, 'stop: one baseline_full')
c.check((stat(st[0], 'baseline_dropped') or 0) > 0, f'stop: baseline_dropped {stat(st[0], "baseline_dropped")}')
c.eq(stat(st[0], 'baseline_evicted'), 0, 'stop: nothing evicted')

shutil.rmtree(tmp, ignore_errors=True)
c.done()
