"""The command line on bad input (DESIGN.md §2): exit 2 for usage and configuration
errors with the JSON path named, exit 1 for runtime failures with one line naming the
file and the reason, never a crash, and what was decoded before a failure is kept."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

c = dbtest.Checks()
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')
tmp = tempfile.mkdtemp(prefix='dbtap-cli-')
exe = dbtest.dbtap_binary()


def run(*args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=120)


def one_line(r, needle, what):
    # the closing summary of a run that read packets is not an error line
    lines = [l for l in r.stderr.splitlines() if l.strip() and ' failed after ' not in l]
    c.check(len(lines) == 1 and needle in lines[0], f'{what}: one line naming {needle!r} ({lines})')


r = run('version')
c.check(r.returncode == 0 and r.stdout.startswith('dbtap '), 'version prints the version')
for args, what in ((['run'], 'run without -r/-i'), (['run', '-r', sample, '-i', 'lo'], '-r and -i'),
                   (['bogus'], 'unknown command'), (['run', '-r', sample, '--nope'], 'unknown option'),
                   (['run', '-r', sample, 'extra'], 'stray argument')):
    c.eq(run(*args).returncode, 2, f'usage error: {what}')

db = os.path.join(tmp, 'x.db')
r = run('run', '-q', '-r', os.path.join(tmp, 'missing.pcap'), '-d', db)
c.eq(r.returncode, 1, 'missing capture: exit 1')
one_line(r, 'missing.pcap', 'missing capture')
notpcap = os.path.join(tmp, 'notpcap.pcap')
open(notpcap, 'w').write('hello, this is not a capture\n' * 10)
r = run('run', '-q', '-r', notpcap, '-d', db)
c.eq(r.returncode, 1, 'not a pcap: exit 1')
one_line(r, 'notpcap.pcap', 'not a pcap')

# A truncated capture: the sessions decoded before the cut are kept.
data = open(sample, 'rb').read()
trunc = os.path.join(tmp, 'trunc.pcap')
open(trunc, 'wb').write(data[:len(data) * 2 // 3])
tdb = os.path.join(tmp, 'trunc.db')
r = run('run', '-q', '-r', trunc, '-d', tdb)
c.eq(r.returncode, 1, 'truncated capture: exit 1')
one_line(r, 'trunc.pcap', 'truncated capture')
n = dbtest.rows(tdb, 'SELECT count(*) AS n FROM statements')[0]['n']
c.check(n >= 6, f'truncated capture: what was decoded before the cut is kept ({n} statements)')

r = run('run', '-q', '-r', sample, '-d', os.path.join(tmp, 'no', 'such', 'dir', 'x.db'))
c.eq(r.returncode, 1, 'unwritable database: exit 1')
one_line(r, 'x.db', 'unwritable database')
r = run('run', '-q', '-r', sample, '-d', notpcap)
c.eq(r.returncode, 1, 'database path is not a database: exit 1')
one_line(r, 'notpcap.pcap', 'not a database')


def cfg(obj, name='c.json'):
    p = os.path.join(tmp, name)
    with open(p, 'w') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return p


for obj, path in (({'nonsense': 1}, 'nonsense'),
                  ({'ports': {'postgresql': [5432], 'oracle': [1521]}}, 'ports.oracle'),
                  ({'ports': {'postgresql': ['x']}}, 'ports.postgresql[0]'),
                  ({'capture': {'max_flows': 'many'}}, 'capture.max_flows'),
                  ({'capture': {'decoder_thread': 1}}, 'capture.decoder_thread'),
                  ({'audit': 'sometimes'}, 'audit'),
                  ({'keep_literals': 'yes'}, 'keep_literals'),
                  ({'service_accounts': 'app'}, 'service_accounts'),
                  ({'output': {'retention': 'forever'}}, 'output.retention'),
                  # regression: "/x" was read as /0, no checksum checked for any address
                  ({'capture': {'checksum_bypass': ['10.0.0.0/x']}}, 'capture.checksum_bypass[0]'),
                  ({'capture': {'checksum_bypass': ['10.0.0.300']}}, 'capture.checksum_bypass[0]'),
                  ('{"ports": ', 'not valid JSON')):
    r = run('run', '-q', '-r', sample, '-d', db, '-c', cfg(obj))
    c.eq(r.returncode, 2, f'bad config {path}: exit 2')
    one_line(r, path, f'bad config {path}')
    one_line(r, 'c.json', f'bad config {path}')
r = run('run', '-q', '-r', sample, '-d', db, '-c', os.path.join(tmp, 'nocfg.json'))
c.eq(r.returncode, 2, 'missing config file: exit 2')
r = run('run', '-q', '-r', sample, '-d', db, '-f', 'tcp and (')
c.eq(r.returncode, 2, 'bad BPF filter: exit 2')
r = run('run', '-q', '-r', sample, '-d', db, '-Z', 'no-such-user-here')
c.eq(r.returncode, 2, '-Z with an unknown user: exit 2')
if os.geteuid() == 0:  # opening lo needs CAP_NET_RAW; the filter is compiled after that
    r = run('run', '-q', '-i', 'lo', '-d', db, '-f', 'tcp and (')
    c.eq(r.returncode, 2, 'bad BPF filter live: exit 2, as with -r')
    one_line(r, 'bad filter', 'bad BPF filter live')

# Regression: a JSON output that cannot be opened once crashed while closing the run.
r = run('run', '-q', '-r', sample, '-d', db, '--json', os.path.join(tmp, 'no', 'dir', 'e.jsonl'))
c.eq(r.returncode, 1, 'unopenable --json file: exit 1, no crash')
one_line(r, 'e.jsonl', 'unopenable --json file')
r = run('run', '-q', '-r', sample, '-d', db, '-c', os.path.join(src, 'contrib', 'dbtap.example.json'),
        '--json', os.path.join(tmp, 'ok.jsonl'))
c.eq(r.returncode, 0, f'the example configuration loads ({r.stderr.strip()})')

# One dialect (issue #22): every command answers --help on stdout with its own options,
# -V/--version, --opt=value and --opt value alike, errors say where the options are.
for cmd, opt in (('run', '--check-config'), ('run', '--json-format'), ('run', '--syslog'),
                 ('run', '--sensor'), ('report', '--format'), ('report', '--until'), ('report', '--record'),
                 ('findings', '--resolve'), ('findings', '--state'), ('prune', '--older-than'),
                 ('baseline', '--forget'), ('status', '--db')):
    r = run(cmd, '--help')
    c.check(r.returncode == 0 and r.stdout.startswith(f'usage: dbtap {cmd}') and opt in r.stdout
            and not r.stderr, f'dbtap {cmd} --help: its options on stdout, exit 0')
    r = run('help', cmd)
    c.check(r.returncode == 0 and r.stdout.startswith(f'usage: dbtap {cmd}'), f'dbtap help {cmd}')
for v in ('-V', '--version', 'version'):
    r = run(v)
    c.check(r.returncode == 0 and r.stdout.startswith('dbtap '), f'dbtap {v}')
r = run('report', '--format=json', f'--db={db}', '--last=30d')
c.check(r.returncode == 0 and r.stdout.lstrip().startswith('{'), f'report --format=json --db=DB ({r.stderr.strip()})')
r = run('report', '--format', 'json', '--db', db)
c.eq(r.returncode, 0, 'report --format json --db DB')
r = run('findings', f'--db={db}', '--list', '--json')
c.eq(r.returncode, 0, f'findings --db=DB --list --json ({r.stderr.strip()})')
r = run('findings', '--db', db, '--state', 'open')
c.eq(r.returncode, 0, 'findings --db DB --state open')
r = run('report', f'--db={db}', '--until=now', '--last=30d', f'--format=text,json', f'--output={tmp}')
c.check(r.returncode == 0 and os.path.exists(os.path.join(tmp, 'report.json')),
        f'report --until=now --format=text,json --output=DIR ({r.stderr.strip()})')
r = run('run', '-q', f'--read={sample}', f'--db={os.path.join(tmp, "eq.db")}')
c.eq(r.returncode, 0, 'run --read=FILE --db=DB')
for args in (('report', '--format', 'pdf'), ('run', '--nope', '-r', sample), ('prune', '--older-than'),
             ('status', '-x'), ('findings', '--nope'), ('findings', '--state'), ('findings', '-d', db, 'extra'),
             ('baseline', '--nope'), ('baseline', '--list', 'p', 'extra'), ('report', '--until', 'soon'),
             ('run', '--json-format', 'xml', '-r', sample)):
    r = run(*args)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    c.check(r.returncode == 2 and len(lines) == 1 and f'dbtap {args[0]} --help' in lines[0],
            f'usage error {args}: exit 2, one line pointing at --help ({lines})')
r = run('bogus')
c.check(r.returncode == 2 and 'commands:' in r.stderr, 'unknown command lists the commands')

# --check-config: the effective configuration, exit 0; a bad one exit 2.
r = run('run', '--check-config', '-c', cfg({'capture': {'stats_interval_s': 5}}, 'ok.json'))
eff = json.loads(r.stdout) if r.returncode == 0 else {}
c.check(eff.get('capture', {}).get('stats_interval_s') == 5 and eff.get('ports', {}).get('postgresql') == [5432],
        '--check-config prints the effective configuration (file values and defaults)')
r = run('run', '--check-config', '-c', cfg({'capture': {'stats_interval_s': -1}}, 'bad.json'))
c.eq(r.returncode, 2, '--check-config: a bad configuration exits 2')
r = run('run', '--check-config', '-c', cfg({'output': {'json': os.path.join(tmp, 'nodir', 'x.json')}}, 'nd.json'))
c.check(r.returncode == 2 and 'nodir' in r.stderr, '--check-config: a JSON output directory that does not exist')
r = run('run', '--check-config', '--syslog', 'udp://127.0.0.1')
c.check(r.returncode == 2 and 'HOST:PORT' in r.stderr, f'--check-config: a malformed --syslog URL ({r.stderr.strip()})')
r = run('run', '--check-config', '--syslog', 'tcp://127.0.0.1:514', '--json-format', 'ocsf', '--sensor', 's1')
eff = json.loads(r.stdout) if r.returncode == 0 else {}
c.check(eff.get('syslog') == 'tcp://127.0.0.1:514' and eff.get('json_format') == 'ocsf' and eff.get('sensor') == 's1',
        f'--check-config prints the SIEM outputs ({r.stderr.strip()})')

# A capture without the rights says which ones, and -Z.
if os.geteuid() == 0 and subprocess.run(['which', 'setpriv'], capture_output=True).returncode == 0:
    os.chmod(tmp, 0o1777)
    r = subprocess.run(['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all',
                        exe, 'run', '-q', '-i', 'lo', '-d', os.path.join(tmp, 'np.db')],
                       capture_output=True, text=True, timeout=60)
    c.check(r.returncode == 1 and 'CAP_NET_RAW' in r.stderr and '-Z' in r.stderr,
            f'capture without permission names CAP_NET_RAW/CAP_NET_ADMIN and -Z ({r.stderr.strip()})')
c.done()
