"""`meson install` gives a working service (issue #22): install into a destdir, then the
units verify (systemd-analyze), every path they name exists (installed, on the system, or
made by the installed sysusers.d/tmpfiles.d entries), the example configuration loads with
--check-config, and the sensor unit's own command line starts a sensor with no
configuration file (the defaults) that reports READY and stops cleanly on SIGTERM."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
c = dbtest.Checks()
build = os.environ['DBTAP_BUILD']
tmp = tempfile.mkdtemp(prefix='dbtap-install-')
dest = os.path.join(tmp, 'dest')
r = subprocess.run(['meson', 'install', '-C', build, '--destdir', dest, '--no-rebuild'],
                   capture_output=True, text=True, timeout=300)
c.eq(r.returncode, 0, f'meson install --destdir ({r.stderr.strip()[-300:]})')
intro = json.loads(subprocess.run(['meson', 'introspect', build, '--buildoptions'],
                                  capture_output=True, text=True).stdout)
opt = {o['name']: o['value'] for o in intro}
prefix = opt['prefix']
unitdir = opt['systemdunitdir'] or os.path.join(prefix, 'lib', 'systemd', 'system')
bindir = os.path.join(prefix, opt['bindir'])


def D(p):
    return dest + p


expected = [os.path.join(bindir, 'dbtap'), os.path.join(prefix, opt['mandir'], 'man8', 'dbtap.8'),
            os.path.join(unitdir, 'dbtap@.service'), os.path.join(unitdir, 'dbtap-report.service'),
            os.path.join(unitdir, 'dbtap-report.timer'), os.path.join(prefix, 'lib', 'sysusers.d', 'dbtap.conf'),
            os.path.join(prefix, 'lib', 'tmpfiles.d', 'dbtap.conf'), '/etc/logrotate.d/dbtap',
            '/etc/dbtap/dbtap.example.json']
for p in expected:
    c.check(os.path.isfile(D(p)), f'installed: {p}')

# The example configuration is never overwritten by a later install.
with open(D('/etc/dbtap/dbtap.example.json'), 'a') as f:
    f.write('\n')
edited = open(D('/etc/dbtap/dbtap.example.json')).read()
subprocess.run(['meson', 'install', '-C', build, '--destdir', dest, '--no-rebuild'],
               capture_output=True, text=True, timeout=300)
c.check(open(D('/etc/dbtap/dbtap.example.json')).read() == edited, 'a second install keeps the edited configuration')

# systemd-analyze verify: the template as an instance, the report service and timer.
units = os.path.join(tmp, 'units')
os.makedirs(units)
shutil.copy(D(os.path.join(unitdir, 'dbtap@.service')), os.path.join(units, 'dbtap@lo.service'))
for u in ('dbtap-report.service', 'dbtap-report.timer'):
    shutil.copy(D(os.path.join(unitdir, u)), units)
if shutil.which('systemd-analyze'):
    r = subprocess.run(['systemd-analyze', 'verify', '--man=no'] + sorted(os.path.join(units, u) for u in os.listdir(units)),
                       capture_output=True, text=True, timeout=120)
    c.check(r.returncode == 0 and not r.stderr.strip(), f'systemd-analyze verify: clean ({r.stderr.strip()[:300]})')
else:
    c.check(False, 'systemd-analyze is installed (contrib/deps.sh test)')

# The user and the folders, made in the destdir by the installed entries.
r = subprocess.run(['systemd-sysusers', '--root', dest, D(os.path.join(prefix, 'lib', 'sysusers.d', 'dbtap.conf'))],
                   capture_output=True, text=True)
c.eq(r.returncode, 0, f'systemd-sysusers creates the dbtap user ({r.stderr.strip()})')
pw = [l.split(':') for l in open(D('/etc/passwd')) if l.startswith('dbtap:')] if os.path.exists(D('/etc/passwd')) else []
c.check(len(pw) == 1, 'dbtap in the destdir passwd')
r = subprocess.run(['systemd-tmpfiles', '--root', dest, '--create', D(os.path.join(prefix, 'lib', 'tmpfiles.d', 'dbtap.conf'))],
                   capture_output=True, text=True)
c.eq(r.returncode, 0, f'systemd-tmpfiles creates the folders ({r.stderr.strip()})')
for d in ('/var/lib/dbtap', '/var/lib/dbtap/reports', '/var/log/dbtap'):
    ok = os.path.isdir(D(d))
    st = os.stat(D(d)) if ok else None
    c.check(ok and pw and st.st_uid == int(pw[0][2]) and st.st_gid == int(pw[0][3]) and (st.st_mode & 0o777) == 0o750,
            f'{d}: 0750 dbtap:dbtap (the report unit reads as the same user and group)')

# Every absolute path a unit names exists: installed, on the system, or made above.
text = ''.join(open(os.path.join(units, u)).read() for u in os.listdir(units))
text = re.sub(r'^#.*$', '', text, flags=re.M)
for p in sorted(set(re.findall(r'(/(?:usr|etc|bin|var|sbin)/[A-Za-z0-9_./@%-]*)', text))):
    p = p.rstrip('.').replace('%i', 'lo').replace('%%', '%')
    if re.search(r'\.(db|json|prom|html|txt|env)$', p) or p.endswith('dbtap-'):
        p = os.path.dirname(p)  # a file the service writes (or an optional one): its folder
    c.check(os.path.exists(D(p)) or os.path.exists(p), f'unit path exists: {p}')

# The example configuration loads (its JSON output folder is one tmpfiles.d made).
ex = json.load(open(D('/etc/dbtap/dbtap.example.json')))
jdir = os.path.dirname(ex['output']['json'])
c.check(os.path.isdir(D(jdir)), f'the example output.json folder {jdir} is made by tmpfiles.d')
ex['output']['json'] = D(ex['output']['json'])
excopy = os.path.join(tmp, 'example.json')
json.dump(ex, open(excopy, 'w'))
exe = D(os.path.join(bindir, 'dbtap'))
r = subprocess.run([exe, 'run', '--check-config', '-c', excopy], capture_output=True, text=True)
c.check(r.returncode == 0 and json.loads(r.stdout or '{}').get('capture'), f'the example loads with --check-config ({r.stderr.strip()})')

# The sensor unit's command line, as systemd would run it for dbtap@lo, with no
# dbtap.json: it starts on the defaults, says READY, writes its database, stops on SIGTERM.
unit = open(os.path.join(units, 'dbtap@lo.service')).read()
m = re.search(r'^ExecStart=((?:.*\\\n)*.*)$', unit, re.M)
cmd = m.group(1).replace('\\\n', ' ').replace('$$', '$').replace('%i', 'lo')
for a, b in (('/var/lib/dbtap', D('/var/lib/dbtap')), ('/var/log/dbtap', D('/var/log/dbtap')),
             ('/etc/dbtap', D('/etc/dbtap')), (os.path.join(bindir, 'dbtap'), exe)):
    cmd = cmd.replace(a, b)
c.check(not os.path.exists(D('/etc/dbtap/dbtap.json')), 'no dbtap.json installed: the unit runs on the defaults')
nsock_path = os.path.join(tmp, 'notify')
nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
nsock.bind(nsock_path)
nsock.settimeout(5)
env = dict(os.environ, NOTIFY_SOCKET=nsock_path, DBTAP_OPTS='-q')
proc = subprocess.Popen(shlex.split(cmd), env=env, stderr=subprocess.PIPE, text=True)
ready = ''
try:
    while 'READY=1' not in ready:
        ready += nsock.recv(4096).decode()
except socket.timeout:
    pass
c.check('READY=1' in ready, 'the unit\'s sensor says READY=1')
time.sleep(0.5)
proc.send_signal(signal.SIGTERM)
try:
    proc.wait(20)
except subprocess.TimeoutExpired:
    proc.kill()
err = proc.stderr.read()
c.eq(proc.returncode, 0, f'the unit\'s sensor stops cleanly ({err.strip()[-200:]})')
rows = dbtest.rows(D('/var/lib/dbtap/lo.db'), 'SELECT source, status, config FROM runs')
c.check(rows and rows[0]['source'] == 'iface:lo' and rows[0]['status'] == 'ok' and rows[0]['config'] is None,
        f'it wrote /var/lib/dbtap/lo.db with the defaults ({rows})')
c.done()
