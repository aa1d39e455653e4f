#!/usr/bin/env python3
"""Conformance of the PostgreSQL path over ALL of $DBTAP_CORPUS/pgsql.

For every capture: run `dbtap run` (it must not crash), then compare what it stored
(sessions: users, databases; statements: SQL, count, rows, outcome) with what the peer
project that shipped the capture expects: Zeek postgresql logs, suricata-verify
test.yaml, Arkime session JSON, DeepFlow asserts/.result, packetbeat asserts, nDPI
classification. Every difference is either fixed in dbtap or explained below (PEER_NOTES)
as the peer's limitation or a deliberate difference; an unexplained one fails the test.
Usage: conformance_pgsql.py DBTAP_EXE   (skips, exit 77, when the corpus is absent)
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402

# Non-standard ports used by some captures (DESIGN.md section 5: ports come from -c).
PORTS = [5432, 8000, 15432, 60102]

# Deliberate differences, per capture: why our numbers differ from the peer's.
PEER_NOTES = {
    'deepflow-pgsql-all.pcap':
        'DeepFlow logs 26 Execute requests (and 4 Parse) out of the 32 Bind/Execute/Sync '
        'cycles in this mid-stream JDBC capture (it drops requests whose response it pairs '
        'with another request); dbtap records all 32 executions, 26 of them for statements '
        'prepared before the capture started (SQL unknown, stmt name kept).',
    'deepflow-prepare_stat.pcap':
        'DeepFlow logs the Parse (prepare) as a request and pairs it with a CommandComplete '
        '"DELETE 0" that belongs to an Execute outside this 2-packet excerpt; dbtap records '
        'executed statements only, and a Parse+Describe+Sync executes nothing.',
    'packetbeat-pgsql_extended_query.pcap':
        'packetbeat\'s test asserts one published transaction (the SELECT); the JDBC driver\'s '
        '"SET extra_float_digits = 3" before it is a second executed statement, which dbtap '
        'records too.',
    'zeek-psql-login-no-role.pcap':
        'Zeek logs the startup as auth_ok then error; dbtap records login=failed (28000): '
        'AuthenticationOk was followed by FATAL role does not exist, so no session was made.',
    'suricata-verify-pgsql-upgrade-tls.pcap':
        'suricata logs the replication StartupMessage; dbtap also records the 28000 '
        'rejection as a failed login and the first connection as tls=1.',
}

# Session facts the peers do not log (or captures no peer test uses), from the corpus
# MANIFEST descriptions and the protocol itself: each (column, value) must be in some session.
SESSION_FACTS = {
    'arkime-postgres-badpass.pcap': [('auth_method', 'md5'), ('db_user', 'foo')],
    'arkime-postgres-good.pcap': [('auth_method', 'md5'), ('login', 'ok'), ('server_version', '8.4.17')],
    'arkime-postgres-no-sslrequest.pcap': [('auth_method', 'trust'), ('login', 'ok')],
    'ndpi-pgsql.pcap': [('auth_method', 'scram-sha-256'), ('auth_method', 'md5')],
    'ndpi-pgsql2.pcapng': [('tls', 1)],
    'suricata-verify-pgsql-pwd-output-disabled.pcap': [('auth_method', 'cleartext'), ('login', 'ok')],
    'suricata-verify-pgsql-upgrade-tls.pcap': [('tls', 1), ('login', 'failed')],
    'zeek-psql-aws-ssl-require.pcap': [('tls', 1)],
    'zeek-psql-aws-ssl-preferred.pcap': [('tls', 1)],
    'zeek-psql-login.pcap': [('db_user', 'zeek'), ('auth_method', 'scram-sha-256'), ('login', 'ok')],
    'zeek-psql-login-wrong.pcap': [('db_user', 'zeek'), ('login', 'failed')],
    'zeek-psql-login-fail.pcap': [('login', 'failed')],
    'zeek-psql-login-no-role.pcap': [('login', 'failed')],
    'packetbeat-pgsql_insert.pcap': [('midstream', 1)],
}



def norm_sql(s):
    """Compare SQL loosely: case, whitespace, trailing ';' and literal values."""
    s = s.strip().rstrip(';').strip().lower()
    s = re.sub(r"'(?:[^']|'')*'", '?', s)
    s = re.sub(r'\b\d+(\.\d+)?\b', '?', s)
    return re.sub(r'\s+', ' ', s)


def tag_rows(tag):
    m = re.search(r' (\d+)$', tag or '')
    return int(m.group(1)) if m else None


# ---- peers ----

def zeek_peer(stem):
    files = glob.glob(f'{stem}.*.postgresql.cut') + glob.glob(f'{stem}.*.postgresql.log')
    if not files:
        viol = glob.glob(f'{stem}.*.analyzer.cut')
        if viol and 'violation' in open(viol[0]).read():
            return {'peer': 'zeek', 'reject': True}
        return None
    users, dbs, stmts = set(), set(), []
    for f in files:
        cols = None
        for line in open(f, encoding='utf-8', errors='replace'):
            line = line.rstrip('\n')
            if line.startswith('#fields'):
                cols = line.split('\t')[1:]
                continue
            if line.startswith('#') or not line:
                continue
            if cols is None and line.startswith('ts\t'):
                cols = line.split('\t')
                continue
            if cols is None:
                continue
            r = dict(zip(cols, line.split('\t')))
            if r.get('frontend') == 'startup':
                if r.get('user', '-') != '-':
                    users.add(r['user'])
                if r.get('database', '-') != '-':
                    dbs.add(r['database'])
            elif r.get('frontend') == 'simple_query':
                sql = r['frontend_arg'].encode().decode('unicode_escape', errors='replace')
                rows = r.get('rows', '-')
                stmts.append({'sql': sql, 'rows': int(rows) if rows.isdigit() else None,
                              'error': r.get('backend') == 'error'})
    return {'peer': 'zeek', 'users': users, 'dbs': dbs, 'stmts': stmts,
            'rows_are_datarows': True}


def suricata_blocks(path):
    """The `match` dicts of a suricata-verify test.yaml (PyYAML, else a line parser)."""
    text = open(path, encoding='utf-8', errors='replace').read()
    try:
        import yaml
        doc = yaml.safe_load(text) or {}
        return [c['filter'].get('match', {}) for c in doc.get('checks', [])
                if isinstance(c, dict) and isinstance(c.get('filter'), dict)]
    except ImportError:
        blocks = []
        for block in re.split(r'\n\s*- filter:', text):
            kv = {}
            for m in re.finditer(r'^\s*([\w.\[\]]+):\s*(.*?)\s*$', block, re.M):
                v = m.group(2)
                if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'':
                    v = v[1:-1]
                kv[m.group(1)] = v
            blocks.append(kv)
        return blocks


def suricata_peer(stem):
    files = glob.glob(f'{stem}.test.yaml') + glob.glob(f'{stem}.*.test.yaml')
    if not files:
        return None
    users, dbs, merged = set(), set(), {}
    for f in files:
        seen = {}
        for kv in suricata_blocks(f):
            kv = {k: str(v) for k, v in kv.items()}
            if kv.get('event_type') != 'pgsql' and kv.get('app_proto') != 'pgsql':
                continue
            if 'pgsql.request.startup_parameters.user' in kv:
                users.add(kv['pgsql.request.startup_parameters.user'])
            for k, v in kv.items():
                if k.startswith('pgsql.request.startup_parameters.optional_parameters') and k.endswith('.database'):
                    dbs.add(v)
            q = kv.get('pgsql.request.simple_query')
            if q is not None:
                tx = (kv.get('pcap_cnt') or kv.get('pgsql.tx_id') or q, q)
                tag = kv.get('pgsql.response.command_completed')
                seen[tx] = {'sql': q, 'rows': tag_rows(tag) if tag else None,
                            'error': 'pgsql.response.code' in kv}
        # tests over the same capture name the same transactions in their own way:
        # per SQL text, keep the largest number of occurrences any one test asserts
        per = {}
        for st in seen.values():
            per.setdefault(norm_sql(st['sql']), []).append(st)
        for k, v in per.items():
            if len(v) > len(merged.get(k, [])):
                merged[k] = v
    seen = {i: st for i, st in enumerate(x for v in merged.values() for x in v)}
    # several tests may assert the same transaction: keep one each; suricata-verify
    # matches only what a test names, so its list is a subset of the session's statements
    return {'peer': 'suricata-verify', 'users': users, 'dbs': dbs,
            'stmts': list(seen.values()), 'subset': True, 'prefix': True}


def arkime_peer(stem):
    f = f'{stem}.test.json'
    if not os.path.exists(f):
        return None
    d = json.load(open(f))
    users, dbs = set(), set()
    for s in d.get('sessions3', []):
        pg = s.get('body', {}).get('postgresql', {})
        if pg.get('user'):
            users.add(pg['user'])
        if pg.get('db'):
            dbs.add(pg['db'])
    return {'peer': 'arkime', 'users': users, 'dbs': dbs, 'stmts': []}


def deepflow_peer(stem):
    stmts = []
    f = f'{stem}.expected.txt'
    if os.path.exists(f):
        for line in open(f):
            m = re.search(r'req_type=(\w)\s+query="(.*?)"', line)
            if m:
                rows = re.search(r'affected_rows=(\d+)', line)
                stmts.append({'sql': m.group(2), 'rows': int(rows.group(1)) if rows else None,
                              'error': 'resp_type=E' in line, 'kind': m.group(1)})
        return {'peer': 'deepflow', 'stmts': stmts}
    f = f'{stem}.result'
    if os.path.exists(f):
        for line in open(f):
            m = re.match(r'(\{.*\})', line)
            if not m:
                continue
            d = json.loads(m.group(1))
            if d.get('msg_type') == 'Request' and d.get('request_type') == 'E':
                stmts.append({'sql': None, 'rows': None, 'error': False})
        return {'peer': 'deepflow', 'stmts': stmts, 'sql_unknown_ok': True}
    return None


def packetbeat_peer(stem):
    f = f'{stem}.expected.txt'
    if not os.path.exists(f):
        return None
    stmts = []
    for line in open(f):
        if not line.startswith('events='):
            continue
        q = re.search(r"query='(.*?)'", line)
        rows = re.search(r'num_rows=(\d+)', line)
        stmts.append({'sql': q.group(1) if q else None, 'rows': int(rows.group(1)) if rows else None,
                      'error': 'status=Error' in line})
    return {'peer': 'packetbeat', 'stmts': stmts, 'sql_unknown_ok': True}


def ndpi_peer(stem, pcap):
    f = pcap + '.out'
    if not os.path.exists(f):
        return None
    return {'peer': 'ndpi', 'classified': 'PostgreSQL' in open(f).read()}


def peer_for(pcap):
    stem = pcap.rsplit('.', 1)[0]
    name = os.path.basename(pcap)
    if name.startswith('zeek-'):
        return zeek_peer(stem)
    if name.startswith('suricata-verify-'):
        return suricata_peer(stem)
    if name.startswith('arkime-'):
        return arkime_peer(stem)
    if name.startswith('deepflow-'):
        return deepflow_peer(stem)
    if name.startswith('packetbeat-'):
        return packetbeat_peer(stem)
    if name.startswith('ndpi-'):
        return ndpi_peer(stem, pcap)
    return None


# ---- dbtap ----


def compare(name, ours, peer):
    """Returns (peer statements, our statements, problems)."""
    problems = []
    our_users = {s['db_user'] for s in ours['sessions'] if s['db_user']}
    our_dbs = {s['database'] for s in ours['sessions'] if s['database']}
    n_ours = len(ours['stmts'])
    if peer is None:
        return '-', n_ours, problems
    if peer.get('reject'):
        if n_ours or our_users:
            problems.append(f'peer rejects this flow as not PostgreSQL; we stored {n_ours} statements')
        return 'rejected', n_ours, problems
    if 'classified' in peer:
        if peer['classified'] and not ours['sessions']:
            problems.append('nDPI classifies PostgreSQL; we stored no session')
        return 'classified', n_ours, problems
    for u in peer.get('users', ()):
        if u not in our_users:
            problems.append(f'user {u!r} missing (ours {sorted(our_users)})')
    for d in peer.get('dbs', ()):
        if d not in our_dbs:
            problems.append(f'database {d!r} missing (ours {sorted(our_dbs)})')
    pstmts = peer.get('stmts', [])
    if not peer.get('subset') and len(pstmts) != n_ours:
        problems.append(f'{len(pstmts)} statements at the peer, {n_ours} here')
    pool = list(ours['stmts'])
    for ps in pstmts:
        match = None
        if ps['sql'] is not None:
            want = norm_sql(ps['sql'])
            for s in pool:
                got = norm_sql(s['sql']) if s['sql'] is not None else None
                if got == want or (peer.get('prefix') and got and got.startswith(want)):
                    match = s
                    break
            if match is None and not peer.get('sql_unknown_ok'):
                problems.append(f'statement not found: {ps["sql"][:60]!r}')
                continue
        if match is None:
            # peer without SQL text: match in order
            match = pool[0] if pool else None
            if match is None:
                continue
        pool.remove(match)
        if ps.get('error') and match['outcome'] != 'error':
            problems.append(f'peer says error, we say {match["outcome"]}: {match["sql"]!r}')
        if ps.get('rows') is not None and not ps.get('error'):
            verb = (match.get('verb') or '').upper()
            if peer.get('rows_are_datarows') and verb not in ('SELECT', 'SHOW', 'WITH', 'VALUES', 'FETCH'):
                continue  # Zeek counts DataRows; for DML we report affected rows from the tag
            if match['rows'] != ps['rows']:
                problems.append(f'rows {match["rows"]} vs peer {ps["rows"]}: {match["sql"]!r}')
    return len(pstmts), n_ours, problems


def tshark_agrees(name, ours, ts):
    if ts is not None and ts != len(ours['stmts']):
        return [f'tshark counts {ts} Query+Execute messages, we stored {len(ours["stmts"])}']
    return []


def main():
    return conformance.run('pgsql', {'postgresql': PORTS, 'mysql': [3306]}, peer_for, compare,
                           SESSION_FACTS, PEER_NOTES, tshark_agrees)


if __name__ == '__main__':
    sys.exit(main())
