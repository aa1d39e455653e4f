"""Shared harness for integration tests: private PostgreSQL 15 and MariaDB servers on
loopback (run as their own non-root users), packet capture on `lo` with tcpdump
(libpcap), running dbtap on the capture, and reading what it stored.

Tests import this module; each server lives in a fresh temporary directory on its own
port and is stopped at exit, so tests never touch a system cluster.
"""
import atexit
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

PG_BIN = '/usr/lib/postgresql/15/bin'


def skip(reason):
    """Exit the way meson's 'exitcode' protocol reads as skipped."""
    print(f'SKIP: {reason}')
    sys.exit(77)


def need_root():
    if os.geteuid() != 0:
        skip('needs root (starts servers as their own users and captures on lo)')


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _chown_tree(path, user):
    shutil.chown(path, user, user)


class Postgres:
    """A private PostgreSQL 15 cluster. hba: list of (type, db, user, addr, method)."""

    def __init__(self, port=None, hba=None, ssl=False, settings=None):
        if not os.path.exists(f'{PG_BIN}/initdb'):
            skip('PostgreSQL 15 server is not installed (contrib/test.sh installs it)')
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix='dbtap-pg-')
        os.chmod(self.dir, 0o755)
        _chown_tree(self.dir, 'postgres')
        self.data = os.path.join(self.dir, 'data')
        self._run([f'{PG_BIN}/initdb', '-D', self.data, '-U', 'postgres', '--auth=trust',
                   '-E', 'UTF8', '--locale=C'])
        conf = [f"port = {self.port}", "listen_addresses = '127.0.0.1,::1'",
                f"unix_socket_directories = '{self.dir}'", "fsync = off",
                "password_encryption = 'scram-sha-256'", "max_connections = 100"]
        if ssl:
            crt, key = os.path.join(self.data, 'server.crt'), os.path.join(self.data, 'server.key')
            subprocess.run(['openssl', 'req', '-new', '-x509', '-days', '2', '-nodes', '-subj',
                            '/CN=localhost', '-keyout', key, '-out', crt],
                           check=True, capture_output=True)
            for f in (crt, key):
                shutil.chown(f, 'postgres', 'postgres')
            os.chmod(key, 0o600)
            conf += ["ssl = on"]
        conf += list(settings or [])
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write('\n'.join(conf) + '\n')
        hba = hba or [('host', 'all', 'all', '127.0.0.1/32', 'scram-sha-256'),
                      ('host', 'all', 'all', '::1/128', 'scram-sha-256')]
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as f:
            f.write('local all all trust\n')
            for row in hba:
                f.write(' '.join(row) + '\n')
        self._run([f'{PG_BIN}/pg_ctl', '-D', self.data, '-l', os.path.join(self.dir, 'log'),
                   '-w', 'start'])
        atexit.register(self.stop)

    def _run(self, cmd, **kw):
        return subprocess.run(['runuser', '-u', 'postgres', '--'] + cmd, check=True,
                              capture_output=True, text=True, **kw)

    def sql(self, statement, db='postgres'):
        """Run SQL as the superuser over the unix socket (not captured)."""
        return self._run(['psql', '-h', self.dir, '-p', str(self.port), '-d', db, '-qAtX',
                          '-v', 'ON_ERROR_STOP=1', '-c', statement]).stdout

    def psql(self, user, password, script, db='postgres', host='127.0.0.1', extra=None, check=False):
        """Run psql over TCP (captured), as a real client would."""
        env = dict(os.environ, PGPASSWORD=password or '', PGCONNECT_TIMEOUT='5')
        env.update(extra or {})
        return subprocess.run(['psql', '-h', host, '-p', str(self.port), '-U', user, '-d', db,
                               '-X', '-q'], input=script, env=env, capture_output=True,
                              text=True, check=check, timeout=60)

    def stop(self):
        if os.path.exists(self.dir):
            subprocess.run(['runuser', '-u', 'postgres', '--', f'{PG_BIN}/pg_ctl', '-D',
                            self.data, '-m', 'immediate', 'stop'], capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    """A private MariaDB server; root reaches it over its unix socket."""

    def __init__(self, port=None, args=None, bind='127.0.0.1', prefix=()):
        """bind: its address; prefix: what runs mariadbd (e.g. ip netns exec NS). Its
        general log file is self.log (off until SET GLOBAL general_log = 1)."""
        if not shutil.which('mariadbd') and not os.path.exists('/usr/sbin/mariadbd'):
            skip('MariaDB server is not installed (contrib/test.sh installs it)')
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix='dbtap-my-')
        os.chmod(self.dir, 0o755)
        _chown_tree(self.dir, 'mysql')
        self.data = os.path.join(self.dir, 'data')
        self.sock = os.path.join(self.dir, 'sock')
        self.log = os.path.join(self.dir, 'general.log')
        subprocess.run(['mariadb-install-db', '--user=mysql', f'--datadir={self.data}',
                        '--auth-root-authentication-method=socket', '--skip-test-db'],
                       check=True, capture_output=True)
        cmd = list(prefix) + [
            '/usr/sbin/mariadbd', '--no-defaults', '--user=mysql', f'--datadir={self.data}',
            f'--port={self.port}', f'--bind-address={bind}', f'--socket={self.sock}',
            f'--pid-file={self.dir}/pid', '--skip-log-bin', '--innodb-buffer-pool-size=32M',
            '--skip-name-resolve', f'--general-log-file={self.log}'] + list(args or [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, 'log'), 'w'))
        atexit.register(self.stop)
        for _ in range(150):
            if os.path.exists(self.sock):
                r = subprocess.run(['mariadb', f'--socket={self.sock}', '-uroot', '-e', 'select 1'],
                                   capture_output=True)
                if r.returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError('mariadbd did not start: ' + open(os.path.join(self.dir, 'log')).read())

    def sql(self, statement):
        return subprocess.run(['mariadb', f'--socket={self.sock}', '-uroot', '-N', '-B', '-e',
                               statement], check=True, capture_output=True, text=True).stdout

    def client(self, user, password, script, db=None, extra=None, check=False):
        cmd = ['mariadb', '-h', '127.0.0.1', '-P', str(self.port), '-u', user,
               '--ssl=0' if False else '--skip-ssl']
        if password is not None:
            cmd.append(f'-p{password}')
        if db:
            cmd.append(db)
        cmd += list(extra or [])
        return subprocess.run(cmd, input=script, capture_output=True, text=True, check=check,
                              timeout=60)

    def stop(self):
        if getattr(self, 'proc', None) and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Capture:
    """tcpdump on lo for the given ports; use as a context manager."""

    def __init__(self, path, ports, iface='lo'):
        self.path = path
        self.ports = ports
        self.iface = iface

    def __enter__(self):
        if not shutil.which('tcpdump'):
            skip('tcpdump is not installed (contrib/test.sh installs it)')
        flt = ' or '.join(f'tcp port {p}' for p in self.ports)
        self.proc = subprocess.Popen(['tcpdump', '-i', self.iface, '-U', '--immediate-mode', '-B', '65536', '-s', '262144', '-w',
                                      self.path, flt], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on" once the handle is open.
        line = self.proc.stderr.readline()
        if 'listening' not in line:
            raise RuntimeError('tcpdump failed: ' + line)
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        self.summary = self.proc.stderr.read()
        return False


def dbtap_binary():
    if len(sys.argv) > 1 and os.path.exists(sys.argv[1]):
        return sys.argv[1]
    build = os.environ.get('DBTAP_BUILD', 'build')
    return os.path.join(build, 'capture', 'dbtap')


SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'storage', 'schema')
_validators = {}


def _validator(name):
    """The published JSON Schema (storage/schema/NAME.schema.json) as a validator."""
    if name not in _validators:
        import jsonschema  # python3-jsonschema (contrib/deps.sh test)
        with open(os.path.join(SCHEMA_DIR, name + '.schema.json')) as f:
            schema = json.load(f)
        cls = jsonschema.Draft202012Validator
        cls.check_schema(schema)
        _validators[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return _validators[name]


def json_line_errors(path):
    """Every line dbtap wrote, validated against the published schema of its format (an
    OCSF line has class_uid): a list of 'line N: message' (empty when all validate)."""
    errs = []
    if not os.path.exists(path):
        return [f'{path}: missing']
    with open(path, 'rb') as f:
        for i, raw in enumerate(f, 1):
            try:
                obj = json.loads(raw.decode('utf-8'))
            except ValueError as e:
                errs.append(f'line {i}: not JSON: {e}')
                continue
            v = _validator('ocsf-1.3-subset' if 'class_uid' in obj else 'dbtap-v2')
            for e in v.iter_errors(obj):
                errs.append(f'line {i}: {e.message[:300]} at {list(e.absolute_path)}')
    return errs


def check_json_file(path):
    """Raise when a line of path does not validate against its published schema."""
    errs = json_line_errors(path)
    if errs:
        raise AssertionError(f'{path}: {len(errs)} schema errors: ' + '; '.join(errs[:5]))


def _json_arg(cmd):
    """The --json FILE of a dbtap command line (not '-'), or None."""
    for i, a in enumerate(cmd[:-1]):
        if a == '--json' and cmd[i + 1] != '-':
            return cmd[i + 1]
    return None


def run_dbtap(pcaps, db, config=None, extra=None, check=True, wrap=None):
    cmd = list(wrap or []) + [dbtap_binary(), 'run', '-q', '-d', db]
    for p in ([pcaps] if isinstance(pcaps, str) else pcaps):
        cmd += ['-r', p]
    if config is not None:
        cfg = db + '.config.json'
        with open(cfg, 'w') as f:
            json.dump(config, f)
        cmd += ['-c', cfg]
    cmd += list(extra or [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f'dbtap failed ({r.returncode}): {r.stderr}')
    js = _json_arg(cmd)
    if js and os.path.exists(js):
        check_json_file(js)  # every JSON line any test makes dbtap write validates
    return r


def rows(db, query, args=()):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(query, args)]
    finally:
        con.close()


class Checks:
    """Collects assertion results and prints a closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print(f'ok - {what}')
        else:
            self.failed += 1
            print(f'not ok - {what}')
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, f'{what}: got {got!r}, want {want!r}')

    def done(self):
        print(f'{self.passed} passed, {self.failed} failed')
        sys.exit(1 if self.failed else 0)


def assert_secret_absent(checks, secret, *paths):
    """Search every byte of the written files (db, -wal, -shm, json) for the secret."""
    needle = secret.encode()
    for p in paths:
        for q in (p, p + '-wal', p + '-shm', p + '-journal'):
            if os.path.exists(q):
                with open(q, 'rb') as f:
                    checks.check(needle not in f.read(), f'secret absent from {os.path.basename(q)}')
