"""The conformance runner shared by conformance_pgsql.py and conformance_mysql.py: run
dbtap over every capture of one corpus folder, compare with the peer's expectations
through the protocol's own compare(), apply the explained differences, print a table and
a closing 'N passed, N failed' line."""
import glob
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile


def skip(msg):
    print(f'SKIP: {msg}')
    sys.exit(77)


def tshark_counts(corpus):
    """Statements per capture as the corpus MANIFEST's tshark column counts them:
    Q (simple query / COM_QUERY) + E (Execute / COM_STMT_EXECUTE)."""
    out = {}
    path = os.path.join(corpus, 'MANIFEST.md')
    if not os.path.exists(path):
        return out
    for line in open(path, encoding='utf-8'):
        m = re.match(r'\| `([^`]+)` \|[^|]*\|[^|]*\| Q=(\d+) P=(\d+) E=(\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2)) + int(m.group(4))
    return out


def run_dbtap(exe, pcap, tmp, ports):
    """dbtap over one capture with the given ports config; returns exit status, stderr and
    the stored sessions and statements."""
    db = os.path.join(tmp, os.path.basename(pcap) + '.db')
    cfg = os.path.join(tmp, 'conformance.json')
    with open(cfg, 'w') as f:
        json.dump({'ports': ports, 'keep_literals': True}, f)
    r = subprocess.run([exe, 'run', '-q', '-c', cfg, '-r', pcap, '-d', db],
                       capture_output=True, text=True, timeout=300)
    out = {'rc': r.returncode, 'stderr': r.stderr, 'sessions': [], 'stmts': []}
    if os.path.exists(db):
        c = sqlite3.connect(db)
        c.row_factory = sqlite3.Row
        c.text_factory = lambda b: b.decode('utf-8', 'replace')  # SQL may hold binary bytes
        out['sessions'] = [dict(x) for x in c.execute('SELECT * FROM sessions ORDER BY id')]
        out['stmts'] = [dict(x) for x in c.execute('SELECT * FROM statements ORDER BY id')]
        c.close()
    return out


def run(folder, ports, peer_for, compare, session_facts, peer_notes, extra_checks=None):
    """compare(name, ours, peer) -> (peer count, our count, problems);
    extra_checks(name, ours, tshark_count) -> more problems."""
    if len(sys.argv) < 2:
        print(f'usage: {os.path.basename(sys.argv[0])} DBTAP_EXE', file=sys.stderr)
        return 2
    exe = sys.argv[1]
    corpus = os.environ.get('DBTAP_CORPUS')
    if not corpus or not os.path.isdir(os.path.join(corpus, folder)):
        skip(f'DBTAP_CORPUS/{folder} not present')
    pcaps = sorted(glob.glob(os.path.join(corpus, folder, '*.pcap')) +
                   glob.glob(os.path.join(corpus, folder, '*.pcapng')))
    tshark = tshark_counts(corpus)
    failed = passed = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pcap in pcaps:
            name = os.path.basename(pcap)
            ours = run_dbtap(exe, pcap, tmp, ports)
            problems = []
            # exit 1 with a one-line reason is the contract for a truncated capture
            # (DESIGN.md section 2); what was decoded before the cut is kept and compared
            truncated = ours['rc'] == 1 and 'truncated' in ours['stderr']
            if (ours['rc'] != 0 and not truncated) or 'Sanitizer' in ours['stderr'] or \
                    'runtime error' in ours['stderr']:
                problems.append(f'dbtap exit {ours["rc"]}: {ours["stderr"].strip()[:300]}')
            peer = peer_for(pcap)
            pn, on, cmp_problems = compare(name, ours, peer)
            problems += cmp_problems
            ts = tshark.get(name)
            if extra_checks:
                problems += extra_checks(name, ours, ts)
            for col, val in session_facts.get(name, []):
                if not any(str(x.get(col)) == str(val) for x in ours['sessions']):
                    problems.append(f'no session with {col}={val!r}')
            note = peer_notes.get(name)
            explained = bool(problems) and note is not None and (ours['rc'] == 0 or truncated)
            status = 'ok' if not problems else ('explained' if explained else 'FAIL')
            rows.append((name, peer['peer'] if peer else '-', pn, '-' if ts is None else ts, on, status))
            if problems and not explained:
                failed += 1
                print(f'FAIL {name}:')
                for p in problems:
                    print(f'    {p}')
            else:
                passed += 1
                if problems:
                    print(f'note {name}: {"; ".join(problems)}\n    -> {note}')
    w = max(len(r[0]) for r in rows)
    print(f'\n{"capture":<{w}}  {"peer":<16} {"peer stmts":>10} {"tshark":>6} {"ours":>5}  status')
    for r in rows:
        print(f'{r[0]:<{w}}  {r[1]:<16} {str(r[2]):>10} {str(r[3]):>6} {r[4]:>5}  {r[5]}')
    print(f'\n{passed} passed, {failed} failed')
    return 1 if failed else 0
