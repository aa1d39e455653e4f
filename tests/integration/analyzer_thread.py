"""The pipeline's threads (capture.analyzer_thread, capture.decoder_thread) change where
the work runs, never what is stored: every capture we have (the bundled sample, our
protocol and capture test captures, and the shared corpus when present) is decoded with
both threads, with either one alone, and with neither, and the sessions,
statements, findings (row ids included) and run counters must be the same.
Regression: statements still open at end of file were stored in the order of libnids'
randomly keyed stream table, so row ids changed from run to run
(deepflow-mysql-statement.pcap); flows are now closed in our own order.
The ASan/UBSan run of the suite checks the copies the thread paths make."""
import glob
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

SRC = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
CORPUS = os.environ.get('DBTAP_CORPUS', os.path.join(SRC, '..', 'shared', 'corpus'))

MODES = ((True, True), (True, False), (False, True), (False, False))  # (analyzer_thread, decoder_thread)
LABEL = ('both threads', 'the analyzer thread only', 'the decoder thread only', 'no thread')
PORTS = {'postgresql': [5432, 8000, 15432, 60102], 'mysql': [3306, 2883, 6033, 13001, 20130, 30130]}


def captures():
    found = [os.path.join(SRC, 'contrib', 'samples', 'pg-sample.pcap')]
    for pat in ('tests/protocols/data/*/*.pcap', 'tests/capture/data/*.pcap', 'tests/analyzer/data/*.pcap'):
        found += sorted(glob.glob(os.path.join(SRC, pat)))
    if os.path.isdir(CORPUS):
        found += sorted(glob.glob(os.path.join(CORPUS, '*', '*.pcap')) +
                        glob.glob(os.path.join(CORPUS, '*', '*.pcapng')))
    else:
        print(f'note: {CORPUS} absent, corpus captures not compared')
    return found


def stored(db):
    q = {
        'sessions': 'SELECT * FROM sessions',
        'statements': 'SELECT * FROM statements',
        'findings': 'SELECT id, session_id, statement_id, ts, kind, severity, protocol, client_ip, server_ip, db_user,'
                    ' database, application, end_user, end_user_source, fingerprint, sql, summary,'
                    ' evidence FROM findings',
        'runs': 'SELECT packets, bytes, kernel_drops, sensor_drops, streams, drops FROM runs',
    }
    out = {}
    con = sqlite3.connect(db)
    con.text_factory = bytes  # statements may hold any bytes the client sent
    try:
        for name, sql in q.items():
            out[name] = sorted(repr(r) for r in con.execute(sql))
    finally:
        con.close()
    return out


def main():
    c = dbtest.Checks()
    caps = captures()
    c.check(len(caps) > 20, f'{len(caps)} captures to compare')
    rows_seen = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, pcap in enumerate(caps):
            res = []
            for k, (an_t, dec_t) in enumerate(MODES):
                db = os.path.join(tmp, f'{i}-{k}.db')
                cfg = {'ports': PORTS, 'audit': 'all', 'keep_literals': True,
                       'capture': {'analyzer_thread': an_t, 'decoder_thread': dec_t}}
                r = dbtest.run_dbtap(pcap, db, config=cfg, check=False)
                res.append((r.returncode, stored(db) if os.path.exists(db) else None))
            name = os.path.relpath(pcap, SRC) if pcap.startswith(SRC) else os.path.basename(pcap)
            if res[0][1]:
                rows_seen += len(res[0][1]['statements'])
            for k in range(1, len(MODES)):
                same = res[0] == res[k]
                if not same:
                    for t in ('sessions', 'statements', 'findings', 'runs'):
                        a = (res[0][1] or {}).get(t)
                        b = (res[k][1] or {}).get(t)
                        if a != b:
                            print(f'# {name}: {t} differ: {LABEL[0]} {len(a or [])} rows, {LABEL[k]} {len(b or [])}')
                            print(f'#   {LABEL[0]}: ' + ' | '.join(sorted(set(a or []) - set(b or [])))[:600])
                            print(f'#   {LABEL[k]}: ' + ' | '.join(sorted(set(b or []) - set(a or [])))[:600])
                c.check(same, f'{name}: same exit status and rows with {LABEL[0]} as with {LABEL[k]}')
    c.check(rows_seen > 500, f'{rows_seen} statements compared')
    # the regression capture: several runs, the same row ids every time
    reg = os.path.join(CORPUS, 'mysql', 'deepflow-mysql-statement.pcap')
    if os.path.exists(reg):
        with tempfile.TemporaryDirectory() as tmp:
            seen = set()
            for k in range(6):
                db = os.path.join(tmp, f'r{k}.db')
                dbtest.run_dbtap(reg, db, config={'ports': PORTS})
                seen.add(repr(stored(db)['statements']))
            c.eq(len(seen), 1, 'deepflow-mysql-statement: statements with the same ids in 6 runs')
    c.done()


if __name__ == '__main__':
    main()
