#!/usr/bin/env python3
"""Conformance of the MySQL / MariaDB path over ALL of $DBTAP_CORPUS/mysql.

For every capture: run `dbtap run` (it must not crash), then compare what it stored
(sessions: users, databases, login; statements: SQL, count, rows, errors) with what the
peer project that shipped the capture expects: Zeek mysql.log, pcap2mysql-log JSON,
DeepFlow .result / asserts, packetbeat asserts, Arkime session JSON, nDPI classification.
Every difference is fixed in dbtap or explained in PEER_NOTES; an unexplained one fails.
Statements compared are COM_QUERY and COM_STMT_EXECUTE (what `statements` rows are);
COM_INIT_DB / COM_FIELD_LIST / COM_PING / COM_STATISTICS are not statements in dbtap.
tshark's count (corpus MANIFEST) is printed for reference only: it cannot know compression
is on mid-stream nor inflate some frames, so it undercounts four compressed captures.
Usage: conformance_mysql.py DBTAP_EXE   (skips, exit 77, when the corpus is absent)
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402

# Non-standard ports used by some captures (DESIGN.md section 5: ports come from -c).
PORTS = [3306, 2883, 6033, 13001, 20130, 30130]

# statements.sql is cut at this many characters by the analyzer (16 KiB).
STORED_SQL_CAP = 16384

# Deliberate differences, per capture: why our numbers differ from the peer's.
PEER_NOTES = {
    'packetbeat-mysql_with_gap.pcap':
        'A segment of the result set is missing. packetbeat publishes status=OK with the '
        'rows it saw; dbtap is told of the gap, stores the statement with outcome=unknown '
        '(the EOF/OK that proves success was never parsed) and the rows counted before the '
        'gap (320 > 1, as the peer asserts).',
}

# Facts no peer logs, from the corpus MANIFEST and the protocol: (column, value) must be
# in some session of the capture.
SESSION_FACTS = {
    'arkime-mysql-allow.pcap': [('auth_method', 'mysql_native_password'), ('login', 'ok'),
                                ('server_version', '5.5.35-0ubuntu0.12.04.2')],
    'arkime-mysql-deny.pcap': [('login', 'failed')],
    'arkime-mysql-tls.pcap': [('tls', 1)],
    'zeek-encrypted.pcap': [('tls', 1)],
    'zeek-tls-12-amazon-rds.pcap': [('tls', 1)],
    'zeek-tls-13-amazon-rds.pcap': [('tls', 1)],
    'ndpi-mysql.pcapng': [('tls', 1), ('server_version', '5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1')],
    'deepflow-mysql.pcap': [('auth_method', 'mysql_native_password'), ('login', 'ok')],
    'deepflow-mysql-login-error.pcap': [('login', 'failed')],
    'zeek-caching_sha2_password.pcap': [('auth_method', 'caching_sha2_password'), ('login', 'failed'),
                                        ('login', 'ok')],
    'zeek-caching_sha2_password-after-auth-switch.pcapng': [('auth_method', 'caching_sha2_password')],
    'zeek-mysql8-navicat-login-failed.pcap': [('auth_method', 'sha256_password'), ('login', 'failed')],
    'pcap2mysql-log-connect-fail.pcap': [('login', 'failed')],
    'packetbeat-mysql_long.pcap': [('midstream', 1)],
    'deepflow-mysql-use.pcap': [('midstream', 1)],
}



def norm_sql(s):
    """Compare SQL loosely: case, whitespace, trailing ';' and literal values."""
    s = s.strip().rstrip(';').strip().lower()
    s = re.sub(r"'(?:[^'\\]|\\.|'')*'", '?', s)
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '?', s)
    s = re.sub(r'\b\d+(\.\d+)?\b', '?', s)
    return re.sub(r'\s+', ' ', s)


def verb_of(sql):
    m = re.match(r'\s*(?:/\*.*?\*/\s*)*(\w+)', sql or '', re.S)
    return m.group(1).upper() if m else ''


# ---- peers ----

def zeek_peer(stem):
    files = glob.glob(f'{stem}.*.mysql.log')
    if not files:
        return None
    final, dbs, stmts = {}, set(), []
    for f in files:
        cols = None
        for line in open(f, encoding='utf-8', errors='replace'):
            line = line.rstrip('\n')
            if line.startswith('#fields'):
                cols = line.split('\t')[1:]
                continue
            if line.startswith('#') or not line or cols is None:
                continue
            r = dict(zip(cols, line.split('\t')))
            cmd, arg = r.get('cmd'), r.get('arg', '')
            # the session's db_user: the login, replaced by a COM_CHANGE_USER that succeeded
            if cmd == 'login' and arg not in ('-', '(empty)'):
                final[r.get('uid')] = arg
            elif cmd == 'change_user' and r.get('success') == 'T':
                final[r.get('uid')] = arg
            elif cmd == 'init_db' and r.get('success') == 'T':
                dbs.add(arg)
            elif cmd in ('query', 'execute'):
                rows = r.get('rows', '-')
                stmts.append({'sql': arg.encode().decode('unicode_escape', errors='replace'),
                              'rows': int(rows) if rows.isdigit() else None,
                              'error': r.get('success') == 'F'})
    # Zeek's rows column is the OK packet's affected rows (0 for result sets)
    return {'peer': 'zeek', 'users': set(final.values()), 'dbs': dbs, 'stmts': stmts, 'rows_affected_only': True}


def p2m_peer(stem):
    f = f'{stem}.expected'
    if not os.path.exists(f):
        return None
    users, stmts = set(), []
    prepared = {}
    last_prep = None
    for conn in json.load(open(f)):
        for it in conn.get('Items') or []:
            d = it['Data']
            t = d.get('Type')
            if t == 'Login' and d.get('Username'):
                users.add(d['Username'])
            elif t == 'Query':
                stmts.append({'sql': d.get('Query'), 'rows': None, 'error': False})
            elif t == 'Prepare':
                last_prep = d.get('Query')
            elif t == 'PREPARE_OK':
                prepared[d.get('StatementID')] = last_prep
            elif t == 'Execute':
                stmts.append({'sql': prepared.get(d.get('StatementID')), 'rows': None, 'error': False})
            elif t == 'Error' and stmts:
                stmts[-1]['error'] = True
    return {'peer': 'pcap2mysql-log', 'users': users, 'stmts': stmts}


def deepflow_peer(stem, name):
    f = f'{stem}.result'
    if not os.path.exists(f):
        if name == 'deepflow-171-mysql.pcap':
            # deepflow-perf.expected.txt: 390 requests = 260 COM_PING + 130 COM_QUERY
            return {'peer': 'deepflow-perf', 'count': 130}
        return None
    users, dbs, stmts = set(), set(), []
    pending = None
    for line in open(f):
        if not line.startswith('{'):
            continue
        d = json.loads(line[:line.rindex('}') + 1])
        if d['msg_type'] == 'Request':
            rt = d.get('request_type')
            res = d.get('request_resource') or ''
            m = re.match(r'Login username: (.*?)(?: db: (.*))?$', res) if rt == 0 else None
            if m:
                users.add(m.group(1))
                if m.group(2):
                    dbs.add(m.group(2))
            if rt in (3, 23):
                pending = {'sql': res if rt == 3 else None, 'rows': None, 'error': False}
                stmts.append(pending)
            else:
                pending = None
        elif d['msg_type'] == 'Response' and pending is not None:
            if d.get('response_status') == 'server_error':
                pending['error'] = True
            pending = None
    # .result files of truncate-1024 / large-response were made with a 1024-byte cut
    return {'peer': 'deepflow', 'users': users, 'dbs': dbs, 'stmts': stmts, 'prefix': True,
            'sql_unknown_ok': True}


def packetbeat_peer(stem):
    f = f'{stem}.expected.txt'
    if not os.path.exists(f):
        return None
    text = open(f).read()
    m = re.search(r'^events=(\d+)', text, re.M)
    out = {'peer': 'packetbeat', 'count': int(m.group(1)) if m else None, 'stmts': [], 'checks': []}
    for k in ('affected_rows', 'num_rows', 'error_code'):
        for v in re.findall(rf'mysql\.{k}=(\d+)', text):
            out['checks'].append((k, int(v)))
    for v in re.findall(r'mysql\.num_rows>(\d+)', text):
        out['checks'].append(('rows_over', int(v)))
    if 'status=Error' in text:
        out['checks'].append(('error', 1))
    elif 'status=OK' in text:
        out['checks'].append(('ok', 1))
    return out


def arkime_peer(stem):
    f = f'{stem}.test.json'
    if not os.path.exists(f):
        return None
    users, versions = set(), set()
    for s in json.load(open(f)).get('sessions3', []):
        my = s.get('body', {}).get('mysql', {})
        if my.get('user'):
            users.add(my['user'])
        if my.get('version'):
            versions.add(my['version'])
    return {'peer': 'arkime', 'users': users, 'versions': versions, 'stmts': [], 'subset': True}


def ndpi_peer(pcap):
    f = pcap + '.out'
    if not os.path.exists(f):
        return None
    return {'peer': 'ndpi', 'classified': 'MySQL' in open(f).read()}


def peer_for(pcap):
    stem = pcap.rsplit('.', 1)[0]
    name = os.path.basename(pcap)
    if name.startswith('zeek-'):
        return zeek_peer(stem)
    if name.startswith('pcap2mysql-log-'):
        return p2m_peer(stem)
    if name.startswith('deepflow-'):
        return deepflow_peer(stem, name)
    if name.startswith('packetbeat-'):
        return packetbeat_peer(stem)
    if name.startswith('arkime-'):
        return arkime_peer(stem)
    if name.startswith('ndpi-'):
        return ndpi_peer(pcap)
    return None



# ---- dbtap ----


def compare(ours, peer):
    """Returns (peer statement count, our statement count, problems)."""
    problems = []
    our_users = {s['db_user'] for s in ours['sessions'] if s['db_user']}
    our_dbs = {s['database'] for s in ours['sessions'] if s['database']}
    n_ours = len(ours['stmts'])
    if peer is None:
        return '-', n_ours, problems
    if 'classified' in peer:
        if peer['classified'] and not ours['sessions']:
            problems.append('nDPI classifies MySQL; we stored no session')
        return 'classified', n_ours, problems
    for u in peer.get('users', ()):
        if u not in our_users:
            problems.append(f'user {u!r} missing (ours {sorted(our_users)})')
    for d in peer.get('dbs', ()):
        if d not in our_dbs:
            problems.append(f'database {d!r} missing (ours {sorted(our_dbs)})')
    for v in peer.get('versions', ()):
        if not any(s['server_version'] == v for s in ours['sessions']):
            problems.append(f'server version {v!r} missing')
    if peer.get('count') is not None:
        if peer['count'] != n_ours:
            problems.append(f'{peer["count"]} statements at the peer, {n_ours} here')
        for k, v in peer.get('checks', []):
            if k == 'ok':
                if any(s['outcome'] != 'ok' for s in ours['stmts']):
                    problems.append(f'peer says OK, ours {[s["outcome"] for s in ours["stmts"]]}')
            elif k == 'error':
                if not any(s['outcome'] == 'error' for s in ours['stmts']):
                    problems.append('peer says error, no statement failed here')
            elif k == 'error_code':
                if not any(s['error_code'] == str(v) for s in ours['stmts']):
                    problems.append(f'error {v} missing')
            elif k == 'rows_over':
                if not any((s['rows'] or 0) > v for s in ours['stmts']):
                    problems.append(f'no statement with more than {v} rows')
            elif k in ('affected_rows', 'num_rows'):
                if not any(s['rows'] == v for s in ours['stmts']):
                    problems.append(f'{k}={v} missing (ours {[s["rows"] for s in ours["stmts"]]})')
        return peer['count'], n_ours, problems
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
                # the analyzer stores at most STORED_SQL_CAP characters of a statement
                capped = s['sql'] is not None and len(s['sql']) >= STORED_SQL_CAP
                if got == want or (got and want and (peer.get('prefix') or capped) and
                                   (got.startswith(want[:200]) or want.startswith(got[:200]))):
                    match = s
                    break
            if match is None and not peer.get('sql_unknown_ok'):
                problems.append(f'statement not found: {ps["sql"][:60]!r}')
                continue
        if match is None:
            match = pool[0] if pool else None
            if match is None:
                continue
        pool.remove(match)
        if ps.get('error') and match['outcome'] != 'error':
            problems.append(f'peer says error, we say {match["outcome"]}: {match["sql"]!r}')
        if not ps.get('error') and match['outcome'] == 'error':
            problems.append(f'we say error, peer does not: {match["sql"]!r}')
        if ps.get('rows') is not None and not ps.get('error'):
            if peer.get('rows_affected_only') and verb_of(match['sql']) in (
                    'SELECT', 'SHOW', 'DESC', 'DESCRIBE', 'EXPLAIN', 'WITH'):
                continue
            if match['rows'] != ps['rows']:
                problems.append(f'rows {match["rows"]} vs peer {ps["rows"]}: {match["sql"]!r}')
    return len(pstmts), n_ours, problems


def only_mysql(name, ours, ts):
    if any(s['protocol'] != 'mysql' for s in ours['sessions']):
        return ['a non-mysql session was stored']
    return []


def main():
    return conformance.run('mysql', {'mysql': PORTS, 'postgresql': [5432]}, peer_for,
                           lambda name, ours, peer: compare(ours, peer), SESSION_FACTS,
                           PEER_NOTES, only_mysql)


if __name__ == '__main__':
    sys.exit(main())
