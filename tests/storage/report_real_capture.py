#!/usr/bin/env python3
"""Report and JSON lines on databases made by `dbtap run` from real captures.

The bundled sample capture (and, when DBTAP_CORPUS is set, every PostgreSQL and MySQL capture
of the conformance corpus, in a second database) go through dbtap; then:
  - every JSON line parses and equals the database row with the same id (sessions: the last
    line for an id; statements and findings: their only line);
  - `dbtap report --format json` over one and over both databases gives exactly the SQL counts.
Usage: report_real_capture.py DBTAP SAMPLES_DIR
"""
import glob
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import dbtest  # noqa: E402  (the published-schema validation)

dbtap, samples = sys.argv[1], sys.argv[2]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(args, ok=(0,)):
    p = subprocess.run([dbtap] + args, capture_output=True, text=True)
    if p.returncode not in ok:
        print(p.stderr, file=sys.stderr)
        raise SystemExit(f"dbtap {' '.join(args)} exited {p.returncode}")
    return p


def rows(db, sql, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    r = [dict(x) for x in con.execute(sql, args)]
    con.close()
    return r


def one(dbs, sql, *args):
    return sum(rows(db, sql, *args)[0]["n"] or 0 for db in dbs)


def check_json_lines(db, path):
    tables = {"run": "runs", "session": "sessions", "statement": "statements",
              "finding": "findings"}
    last = {}
    n = 0
    with open(path, "rb") as f:
        for raw in f:
            n += 1
            line = raw.decode("utf-8")  # must be valid UTF-8
            check(line.endswith("\n") and "\n" not in line[:-1], "one object per line")
            obj = json.loads(line)
            key = (obj["event_type"], obj["id"])
            if obj["event_type"] == "finding" and key in last:
                # a repeat folded into the row (issue #19): these columns follow it, the
                # first line's time, statement and context stay
                first = dict(last[key])
                for col in ("count", "last_seen", "severity", "summary", "evidence"):
                    first[col] = obj[col]
                obj = first
            last[key] = obj
    check(n > 0, f"{path}: no JSON lines")
    errs = dbtest.json_line_errors(path)
    check(not errs, f"{path}: lines that do not validate against storage/schema: {errs[:5]}")
    counts = {}
    for (etype, rid), obj in last.items():
        counts[etype] = counts.get(etype, 0) + 1
        table = tables[etype]
        r = rows(db, f"SELECT * FROM {table} WHERE id = ?", rid)
        if etype == "run":
            continue  # the run line at start precedes the final counters
        check(len(r) == 1, f"{table} id {rid} from JSON not in the database")
        if not r:
            continue
        for col, val in r[0].items():
            check(col in obj, f"{etype} line lacks column {col}")
            if col in ("client_info", "params", "evidence") and val is not None:
                val = json.loads(val)  # JSON text in SQLite, nested in the line (v2)
            check(obj.get(col) == val,
                  f"{etype} {rid} {col}: json {obj.get(col)!r} != db {val!r}")
    for etype, table in tables.items():
        if etype == "run":
            continue
        check(counts.get(etype, 0) == one([db], f"SELECT count(*) AS n FROM {table}"),
              f"{etype}: JSON lines and table {table} differ in count")
    print(f"{path}: {n} lines, {counts} match the database")


def check_report(dbs, extra, out):
    args = ["report"]
    for db in dbs:
        args += ["-d", db]
    run(args + extra + ["--format", "json", "-o", out])
    rep = json.load(open(out))
    w = rep["window"]
    s, u = w["since"], w["until"]
    W = "%s >= ? AND %s < ?"

    def c(expr, sql, col="ts"):
        got = expr
        want = one(dbs, sql + " AND " + W % (col, col), s, u)
        check(got == want, f"{sql}: report {got} != SQL {want} ({dbs}, {extra})")

    c(rep["statements"]["stored"], "SELECT count(*) AS n FROM statements WHERE 1")
    c(rep["statements"]["errors"], "SELECT count(*) AS n FROM statements WHERE outcome='error'")
    c(rep["sessions"]["total"], "SELECT count(*) AS n FROM sessions WHERE 1", "started_at")
    c(rep["sessions"]["login_failed"],
      "SELECT count(*) AS n FROM sessions WHERE login='failed'", "started_at")
    c(rep["sessions"]["statements_observed"],
      "SELECT sum(statements) AS n FROM sessions WHERE 1", "started_at")
    c(rep["failed_logins"]["total"], "SELECT count(*) AS n FROM v_failed_logins WHERE 1",
      "started_at")
    c(rep["findings"]["total"], "SELECT count(*) AS n FROM findings WHERE 1")
    c(rep["blind_spots"]["tls"], "SELECT count(*) AS n FROM sessions WHERE tls=1",
      "started_at")
    c(rep["blind_spots"]["midstream"], "SELECT count(*) AS n FROM sessions WHERE midstream=1",
      "started_at")
    for k in rep["findings"]["by_kind"]:
        c(k["total"], "SELECT count(*) AS n FROM findings WHERE kind='%s'" % k["kind"])
    for v in rep["statements"]["by_verb"]:
        if v["verb"] is not None:
            c(v["statements"], "SELECT count(*) AS n FROM statements WHERE verb=?"
              .replace("?", "'%s'" % v["verb"].replace("'", "''")))
    check(sum(a["statements"] for a in rep["activity"]) == rep["statements"]["stored"],
          "activity buckets add up to the statements stored")
    print(f"report over {len(dbs)} database(s) {extra or 'default window'}: "
          f"{rep['sessions']['total']} sessions, {rep['statements']['stored']} statements, "
          f"{rep['findings']['total']} findings, window {s} .. {u} ({w['bucket']})")
    return rep


with tempfile.TemporaryDirectory() as tmp:
    db1 = os.path.join(tmp, "sample.db")
    events = os.path.join(tmp, "events.json")
    sample = os.path.join(samples, "pg-sample.pcap")
    run(["run", "-q", "-r", sample, "-d", db1, "--json", events])
    check(one([db1], "SELECT count(*) AS n FROM statements") > 0, "sample gave statements")
    check_json_lines(db1, events)
    rep = check_report([db1], [], os.path.join(tmp, "r1.json"))
    check(rep["sessions"]["login_failed"] >= 1, "the sample's wrong password shows up")

    dbs = [db1]
    corpus = os.environ.get("DBTAP_CORPUS", "")
    pcaps = sorted(glob.glob(os.path.join(corpus, "pgsql", "*.pcap")) +
                   glob.glob(os.path.join(corpus, "mysql", "*.pcap"))) if corpus else []
    if pcaps:
        db2 = os.path.join(tmp, "corpus.db")
        ev2 = os.path.join(tmp, "corpus.json")
        for p in pcaps:
            # damaged captures may exit 1 (one line, data kept); never crash
            run(["run", "-q", "-r", p, "-d", db2, "--json", ev2], ok=(0, 1))
        check_json_lines(db2, ev2)
        dbs.append(db2)
    else:
        print("note: DBTAP_CORPUS not set or empty; only the bundled sample is used")
    check_report(dbs, ["--since", "1970-01-01"], os.path.join(tmp, "r2.json"))
    html = os.path.join(tmp, "r.html")
    args = ["report", "--since", "1970-01-01", "--format", "html", "-o", html]
    for db in dbs:
        args += ["-d", db]
    run(args)
    check(open(html, encoding="utf-8").read().count("<svg") >= 6, "HTML has its charts")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("ok")
