#!/usr/bin/env python3
"""Finding groups and triage on databases made by `dbtap run` from the bundled real
capture: list, acknowledge (collapsed in the report while it stays the same), worse
severity (reopened), resolve, come back (reopened), and "new since the last recorded
report"; plus the report's --until and one-computation multi-format output.
Usage: triage_round_trip.py DBTAP SAMPLES_DIR"""
import json
import os
import subprocess
import sys
import tempfile

dbtap, samples = sys.argv[1], sys.argv[2]
pcap = os.path.join(samples, 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-triage-')
db = os.path.join(tmp, 't.db')
failures = []


def check(cond, msg):
    print(('ok   ' if cond else 'FAIL ') + msg)
    if not cond:
        failures.append(msg)


def run(*args, code=0):
    p = subprocess.run([dbtap, *args], capture_output=True, text=True)
    if p.returncode != code:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit(f"dbtap {' '.join(args)} exited {p.returncode}, wanted {code}")
    return p


def capture(severity=None):
    args = ['run', '-q', '-r', pcap, '-d', db]
    if severity:
        cfg = os.path.join(tmp, 'c.json')
        with open(cfg, 'w') as f:
            json.dump({'severities': {'bulk_read': severity}}, f)
        args += ['-c', cfg]
    run(*args)


def groups():
    return [json.loads(line) for line in run('findings', '-d', db, '--list', '--json').stdout.splitlines()]


def report():
    return json.loads(run('report', '-d', db, '--last', '3650d', '--format', 'json').stdout)


def bulk(gs):
    g = [x for x in gs if x['kind'] == 'bulk_read']
    return g[0] if g else None


capture()
g = bulk(groups())
check(g is not None and g['state'] == 'open' and g['severity'] == 'medium', 'bulk_read group open, medium')
gid = g['id']
kinds = sorted(x['kind'] for x in groups())
check(len(kinds) == len(set(kinds)), f'one group per kind on the sample: {kinds}')

run('findings', '-d', db, '--ack', gid, '--note', 'nightly export job', '--by', 'tester')
g = bulk(groups())
check(g['state'] == 'acknowledged' and g['triage_by'] == 'tester' and g['triage_note'] == 'nightly export job',
      'acknowledged with who and note')
r = report()
check(gid in [x['id'] for x in r['groups']['collapsed']] and gid not in [x['id'] for x in r['groups']['open_groups']],
      'acknowledged group collapsed in the report')

capture()  # the same again: not worse, stays collapsed
g = bulk(groups())
check(g['state'] == 'acknowledged' and g['count'] >= 2, f"repeat of a known item stays acknowledged (count {g['count']})")

capture('high')  # worse: reopened
g = bulk(groups())
check(g['state'] == 'open' and g['reopened'] == 1 and g['severity'] == 'high', 'worse severity reopens it')
r = report()
og = [x for x in r['groups']['open_groups'] if x['id'] == gid]
check(og and og[0]['reopened'] == 1, 'the report lists it as open again')
text = run('report', '-d', db, '--last', '3650d').stdout
check(f'{gid} AGAIN' in text, 'the text report marks it AGAIN')

run('findings', '-d', db, '--resolve', gid, '--by', 'tester')
check(bulk(groups())['state'] == 'resolved', 'resolved')
capture('high')  # it comes back after being resolved
g = bulk(groups())
check(g['state'] == 'open' and g['reopened'] == 1, 'a resolved group that comes back reopens')

run('findings', '-d', db, '--fp', gid)
check(bulk(groups())['state'] == 'false_positive', 'false positive')
run('findings', '-d', db, '--reopen', gid)
check(bulk(groups())['state'] == 'open', 'reopened by hand')
log = subprocess.run(['sqlite3', db, 'SELECT state FROM triage_log ORDER BY id'], capture_output=True,
                     text=True).stdout.split()
check(log == ['acknowledged', 'resolved', 'false_positive', 'open'], f'triage history kept: {log}')

run('findings', '-d', db, '--ack', 'ffffffffffff', code=1)
run('findings', '-d', db, '--list', '--state', 'bogus', code=2)
listing = run('findings', '-d', db, '--list').stdout
check(any(gid in l and 'rows in one statement' in l for l in listing.splitlines()),
      'the text listing shows the group with its summary')
h = run('findings', '--help')
check('usage: dbtap findings' in h.stdout, 'findings --help on stdout')

# new since the last recorded report
r1 = json.loads(run('report', '-d', db, '--last', '3650d', '--format', 'json', '--record').stdout)
check(r1['window']['previous_report_until'] is None, 'first recorded report has no previous one')
r2 = report()
check(r2['window']['previous_report_until'] == r1['window']['until'], 'the next report knows the previous window')
check(r2['groups']['new'] == 0, 'nothing new since it')

# --until and one computation for all formats
out = os.path.join(tmp, 'out')
run('report', '-d', db, '--last', '3650d', '--format', 'text,html,json', '-o', out)
check(sorted(os.listdir(out)) == ['report.html', 'report.json', 'report.txt'], 'three formats in one run')
rj = json.load(open(os.path.join(out, 'report.json')))
check(rj['findings']['total'] == r2['findings']['total'], 'same numbers as a single-format run')
early = json.loads(run('report', '-d', db, '--until', '2001-01-01', '--format', 'json').stdout)
check(early['findings']['total'] == 0 and early['window']['until'].startswith('2001-01-01'),
      '--until bounds the window')
check(all(k in rj['list_totals'] for k in ('shapes', 'findings', 'db_users')), 'list totals present')
check(rj['workload']['statements'] > 0 and rj['workload']['top_by_count'], 'workload section filled')

print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failures")
sys.exit(1 if failures else 0)
