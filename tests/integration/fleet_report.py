"""A fleet of three sensors: each writes its own database and JSON lines with its name
(--sensor, output.sensor), and one `dbtap report` over the three databases names every
finding SENSOR:ID (ids are per database, so the bare ids collide) and lists the sensors.
A database from before runs.sensor (schema 2) is reported under its file name."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

c = dbtest.Checks()
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-fleet-')
sensors = ['span-east', 'span-west', 'dbhost-3']
dbs = []
for i, name in enumerate(sensors):
    db = os.path.join(tmp, f'sensor{i}.db')
    js = os.path.join(tmp, f'sensor{i}.json')
    if i == 2:  # the third one names itself in its configuration file
        dbtest.run_dbtap(sample, db, config={'output': {'sensor': name, 'json': js}})
    else:
        dbtest.run_dbtap(sample, db, extra=['--sensor', name, '--json', js])
    dbs.append(db)
    c.eq({r['sensor'] for r in dbtest.rows(db, 'SELECT sensor FROM runs')}, {name}, f'{name}: runs.sensor')
    lines = [json.loads(x) for x in open(js)]
    c.check(lines and all(x['sensor'] == name for x in lines), f'{name}: sensor on every JSON line')

# the three databases hold the same ids: only the sensor tells them apart
ids = [sorted(r['id'] for r in dbtest.rows(db, 'SELECT id FROM findings')) for db in dbs]
c.check(ids[0] and ids[0] == ids[1] == ids[2], f'finding ids collide across databases: {ids[0]}')


def report(fmt, paths):
    cmd = [dbtest.dbtap_binary(), 'report', '--since', '1970-01-01', '--format', fmt]
    for p in paths:
        cmd += ['-d', p]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    c.eq(r.returncode, 0, f'report --format {fmt} over {len(paths)} databases {r.stderr.strip()}')
    return r.stdout


doc = json.loads(report('json', dbs))
c.eq([d['sensor'] for d in doc['databases']], sensors, 'the report lists each database with its sensor')
top = doc['findings']['most_severe']
got = {f['id'] for f in top}
want = {f'{s}:{i}' for s in sensors for i in ids[0]}
c.eq(len(top), min(len(want), 50), 'every finding of the three sensors listed once')
c.check(got <= want and len(got) == len(top), f'finding ids are SENSOR:ID and unique: {sorted(got)[:6]}')
c.check(all(f['sensor'] == f['id'].rsplit(':', 1)[0] for f in top), 'each finding names its sensor')
one = json.loads(report('json', dbs[:1]))
c.eq(doc['findings']['total'], 3 * one['findings']['total'], 'totals merge across the sensors')

text = report('text', dbs)
for s in sensors:
    c.check(f'(sensor {s},' in text, f'text report: database of {s} named')
    c.check(f'[{s}:' in text, f'text report: findings of {s} carry SENSOR:ID')
html = report('html', dbs)
c.check(all(f'(sensor {s})' in html and f'{s}:' in html for s in sensors), 'html report names the sensors')

# a database written before schema 3 (no runs.sensor): named after its file
old = os.path.join(tmp, 'legacy-sensor.db')
shutil.copy(dbs[0], old)
con = sqlite3.connect(old)
con.execute('ALTER TABLE runs DROP COLUMN sensor')
con.execute('PRAGMA user_version = 2')
con.commit()
con.close()
doc = json.loads(report('json', [old, dbs[1]]))
c.eq([d['sensor'] for d in doc['databases']], ['legacy-sensor', 'span-west'], 'a schema-2 database is named after its file')
# and `dbtap run` migrates it
dbtest.run_dbtap(sample, old, extra=['--sensor', 'legacy'])
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
current = int(re.search(r'#define SINK_SCHEMA_VERSION (\d+)', open(os.path.join(src, 'storage', 'sink.h')).read()).group(1))
c.eq(dbtest.rows(old, 'PRAGMA user_version')[0]['user_version'], current, f'run migrates schema 2 to {current} (the current)')
c.eq([r['sensor'] for r in dbtest.rows(old, 'SELECT sensor FROM runs ORDER BY id')], [None, 'legacy'],
     'old runs keep no sensor, the new run has one')
shutil.rmtree(tmp, ignore_errors=True)
c.done()
