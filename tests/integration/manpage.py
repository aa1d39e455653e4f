"""contrib/dbtap.8 says what the binary does (issue #22): every example in EXAMPLES runs
(paths mapped into a scratch folder, eth1 -> lo, the live one stopped with SIGTERM) and
exits 0; every long option a command's --help lists is in the man page; every command the
SYNOPSIS shows answers --help."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

c = dbtest.Checks()
exe = os.path.abspath(dbtest.dbtap_binary())
src = os.environ.get('DBTAP_SRC', os.path.join(os.path.dirname(__file__), '..', '..'))
page = open(os.path.join(src, 'contrib', 'dbtap.8')).read()
plain = page.replace('\\-', '-').replace('\\(aq', "'")
tmp = tempfile.mkdtemp(prefix='dbtap-man-')
sample = os.path.join(src, 'contrib', 'samples', 'pg-sample.pcap')

# The examples: the .nf ... .fi blocks of EXAMPLES, a command per line unless a quote is open.
ex = plain[plain.index('.SH EXAMPLES'):plain.index('.SH SEE ALSO')]
cmds = []
for block in re.findall(r'^\.nf\n(.*?)^\.fi$', ex, re.M | re.S):
    cur = ''
    for line in block.splitlines():
        cur = f'{cur} {line.strip()}' if cur else line.strip()
        if cur.count('"') % 2 == 0:
            cmds.append(cur)
            cur = ''
c.check(len(cmds) >= 6, f'{len(cmds)} example commands found')

# The files the examples name, made for real in the scratch folder.
for d in ('var/lib/dbtap', 'var/lib/dbtap/reports', 'var/log/dbtap', 'etc/dbtap'):
    os.makedirs(os.path.join(tmp, d))
shutil.copy(os.path.join(src, 'contrib', 'dbtap.example.json'), os.path.join(tmp, 'etc/dbtap/dbtap.json'))
with open(os.path.join(tmp, 'etc/dbtap/dbtap.json')) as f:
    cfg = f.read().replace('/var/log/dbtap', os.path.join(tmp, 'var/log/dbtap'))
open(os.path.join(tmp, 'etc/dbtap/dbtap.json'), 'w').write(cfg)
for name in ('traffic.pcap',):
    shutil.copy(sample, os.path.join(tmp, name))
for name in ('a.db', 'b.db', 'dbtap.db'):
    subprocess.run([exe, 'run', '-q', '-r', sample, '-d', os.path.join(tmp, name)], capture_output=True, check=True)

live_db = None
for cmd in cmds:
    argv = shlex.split(cmd)
    argv = [a.replace('/var/', os.path.join(tmp, 'var') + '/').replace('/etc/dbtap', os.path.join(tmp, 'etc/dbtap'))
            for a in argv]
    argv = ['lo' if a == 'eth1' else a for a in argv]
    argv = [a.replace('eth1.db', 'dbtap.db') for a in argv]
    if argv[0] == 'dbtap':
        argv[0] = exe
    if '-i' in argv:
        if os.geteuid() != 0:
            continue
        if '-Z' in argv:
            os.chmod(tmp, 0o755)
            for d in ('var', 'var/lib', 'var/log'):
                os.chmod(os.path.join(tmp, d), 0o755)
            for d in ('var/lib/dbtap', 'var/log/dbtap'):
                os.chmod(os.path.join(tmp, d), 0o1777)
            argv[argv.index('-Z') + 1] = 'nobody'
        p = subprocess.Popen(argv, cwd=tmp, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        alive = p.poll() is None
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
        err = p.stderr.read().strip()
        c.check(alive and p.returncode == 0, f'example runs: {cmd} ({err[-200:]})')
        live_db = argv[argv.index('-d') + 1]
        continue
    if argv[0] == exe and argv[1] == 'status':
        # the status example: the live sensor has stopped; exit 1 and a line saying so
        r = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=60)
        c.check(r.returncode in (0, 1) and r.stdout.strip(), f'example runs: {cmd} (exit {r.returncode})')
        continue
    r = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 0, f'example runs: {cmd} ({r.stderr.strip()[-200:]})')

# Options: what --help lists, the man page documents.
for cmd in ('run', 'report', 'findings', 'prune', 'baseline', 'status'):
    r = subprocess.run([exe, cmd, '--help'], capture_output=True, text=True)
    c.check(r.returncode == 0 and f'dbtap {cmd}' in plain, f'{cmd} --help answers and is in the SYNOPSIS')
    for opt in sorted(set(re.findall(r'(--[a-z][a-z-]+)', r.stdout)) - {'--help'}):
        c.check(opt in plain, f'{cmd} {opt} is in the man page')
c.done()
