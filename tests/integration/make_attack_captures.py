"""Make the attack-tool captures of issue #19 with the real Debian tools: a tiny vulnerable
web shop (Flask, a psycopg2 pool and a pymysql pool, one service account `shop_svc`) on a
private PostgreSQL 15 and MariaDB, a benign workload learned first, then sqlmap (batch mode,
techniques B, E, U, S, T at levels 1-3, --dump of the customers table) with the benign
workload running alongside, hydra against PostgreSQL (md5 and scram) and MariaDB, and
mysqldump / pg_dump.

Writes into OUT (default tests/integration/data/attacks): gzip'd pcaps and labels.json.gz,
which records every statement the web app executed (the exact SQL text and who caused it:
`benign`, or `sqlmap` with `injected` true when the request's parameter was not the
original value). attack_tools.py replays them through dbtap and checks the findings.

Run as root: python3 tests/integration/make_attack_captures.py [OUT] [--only hydra,dumps]
(about 12 minutes; --only remakes just those captures and keeps labels.json.gz)

Debian's hydra 9.4 postgres module connects and closes without a startup message (no
libpq in that build), so the PostgreSQL guesses (md5 and scram accounts) are made by a
psycopg2 loop in the same capture, as hydra would make them.
"""
import gzip
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

# our folder's secrets.py (a test) would shadow the module werkzeug imports
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(os.path.abspath(__file__))]
try:
    import flask
    import psycopg2
    import psycopg2.pool
    import pymysql
except ImportError:
    flask = None
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402

dbtest.need_root()
for tool in ('sqlmap', 'hydra', 'mysqldump', 'pg_dump', 'tcpdump'):
    if not shutil.which(tool):
        dbtest.skip(f'{tool} is not installed (apt-get install sqlmap hydra)')
if flask is None:
    dbtest.skip('python3-flask, python3-psycopg2 and python3-pymysql are needed')

HERE = os.path.dirname(os.path.abspath(__file__))
ONLY = set(sys.argv[sys.argv.index('--only') + 1].split(',')) if '--only' in sys.argv else None
args = [a for i, a in enumerate(sys.argv[1:], 1) if a != '--only' and sys.argv[i - 1] != '--only']
OUT = args[0] if args else os.path.join(HERE, 'data', 'attacks')
os.makedirs(OUT, exist_ok=True)
PW = 'Shop-Svc-Pw-7'
DBA_PW = 'Dba-Pw-9'
tmp = tempfile.mkdtemp(prefix='dbtap-attacks-')
os.chmod(tmp, 0o755)
rnd = random.Random(19)

# ---- servers -------------------------------------------------------------------------
pg = dbtest.Postgres(hba=[('host', 'all', 'shop_md5', '127.0.0.0/8', 'md5'),
                          ('host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256')],
                     settings=["log_statement = 'all'"])
my = dbtest.MariaDB()
SCHEMA = [
    "CREATE TABLE products(id int PRIMARY KEY, name varchar(80), category varchar(40), price numeric(8,2), note varchar(200))",
    "CREATE TABLE customers(id int PRIMARY KEY, name varchar(80), email varchar(120), password_hash varchar(120))",
    "CREATE TABLE orders(id int PRIMARY KEY, customer_id int, status varchar(20), total numeric(10,2))",
]
CATS = ['books', 'music', 'garden', 'toys', 'cable']
DATA = [f"INSERT INTO products VALUES ({i}, 'product {i}', '{CATS[i % 5]}', {i % 40 + 0.99}, "
        f"'{'/* gift */ wrap' if i % 7 == 0 else 'plain'}')" for i in range(1, 41)]
NAMES = ['alice', "o'reilly", 'bob', 'carol', 'dave']
DATA += [f"INSERT INTO customers VALUES ({i + 1}, '{n.replace(chr(39), chr(39) * 2)}', '{n.replace(chr(39), '')}@shop.example', "
         f"'$2b$12$abcdefghijklmnopqrstu{i}')" for i, n in enumerate(NAMES)]
DATA += [f"INSERT INTO orders VALUES ({i}, {i % 5 + 1}, 'open', {i * 3}.50)" for i in range(1, 21)]

pg.sql(f"CREATE ROLE shop_svc LOGIN PASSWORD '{PW}'; CREATE ROLE dba LOGIN SUPERUSER PASSWORD '{DBA_PW}';"
       "SET password_encryption = 'md5'; CREATE ROLE shop_md5 LOGIN PASSWORD 'Md5-Pw-3';")
for s in SCHEMA + DATA:
    pg.sql(s)
pg.sql("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO shop_svc")
my.sql("CREATE DATABASE shop")
for s in SCHEMA + DATA:
    my.sql("USE shop; " + s + ';')
my.sql(f"CREATE USER shop_svc@'%' IDENTIFIED BY '{PW}'; GRANT SELECT, INSERT, UPDATE ON shop.* TO shop_svc@'%';"
       f"CREATE USER dba@'%' IDENTIFIED BY '{DBA_PW}'; GRANT ALL ON *.* TO dba@'%';")

# ---- the web shop ----------------------------------------------------------------------
labels = []
labels_lock = threading.Lock()
ctx = threading.local()  # who caused the request: ('benign'|'sqlmap', injected)

pg_pool = psycopg2.pool.ThreadedConnectionPool(
    4, 4, host='127.0.0.1', port=pg.port, user='shop_svc', password=PW, dbname='postgres',
    application_name='shop')
my_pool = queue.Queue()
for _ in range(4):
    my_pool.put(pymysql.connect(host='127.0.0.1', port=my.port, user='shop_svc', password=PW,
                                database='shop', autocommit=True, program_name='shop',
                                client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS))


def run(db, sql, args=None):
    """Execute on a pooled connection; record the exact text the server received."""
    who, injected = getattr(ctx, 'who', ('benign', False))
    if db == 'pg':
        con = pg_pool.getconn()
        try:
            con.autocommit = True
            with con.cursor() as cur:
                text = cur.mogrify(sql, args).decode() if args is not None else sql
                with labels_lock:
                    labels.append({'db': db, 'sql': text, 'who': who, 'injected': injected})
                cur.execute(text)
                return cur.fetchall() if cur.description else []
        finally:
            pg_pool.putconn(con)
    con = my_pool.get()
    try:
        with con.cursor() as cur:
            text = cur.mogrify(sql, args) if args is not None else sql
            with labels_lock:
                labels.append({'db': db, 'sql': text, 'who': who, 'injected': injected})
            cur.execute(text)
            out = cur.fetchall() if cur.description else []
            while cur.nextset():
                pass
            return out
    finally:
        my_pool.put(con)


app = flask.Flask('shop')
import logging  # noqa: E402
logging.getLogger('werkzeug').setLevel(logging.ERROR)


@app.before_request
def tag():
    ua = flask.request.headers.get('User-Agent', '')
    orig = {'id': '1', 'category': 'books'}
    injected = any(flask.request.args.get(k) not in (None, v) for k, v in orig.items())
    ctx.who = ('sqlmap' if 'sqlmap' in ua else 'benign', injected and 'sqlmap' in ua)


@app.errorhandler(Exception)
def failed(e):  # the vulnerable shop shows database errors, as such shops do
    return f'error: {e}', 500


@app.route('/<db>/product')
def product(db):  # vulnerable: the id is pasted into the text
    rows = run(db, f"SELECT id, name, price, category FROM products WHERE id = {flask.request.args.get('id', '1')}")
    return '\n'.join(str(r) for r in rows)


@app.route('/<db>/search')
def search(db):  # vulnerable: the category is pasted between quotes
    cat = flask.request.args.get('category', 'books')
    rows = run(db, f"SELECT id, name, price FROM products WHERE category = '{cat}' ORDER BY price")
    return '\n'.join(str(r) for r in rows)


@app.route('/<db>/benign')
def benign(db):  # what the rest of the shop sends, with bound parameters
    k = int(flask.request.args.get('k', '0'))
    r = random.Random(k)
    pgsql = db == 'pg'
    kind = k % 12
    if kind == 0:
        run(db, "SELECT id, name, email FROM customers WHERE name = %s", (r.choice(NAMES),))
    elif kind == 1:  # ORM-generated
        ids = tuple(r.sample(range(1, 41), r.randint(1, 4)))
        run(db, "SELECT products.id AS products_id, products.name AS products_name, products.price AS "
                "products_price FROM products WHERE products.id IN %s ORDER BY products.id LIMIT %s OFFSET %s",
            (ids, 20, r.choice([0, 20])))
    elif kind == 2:  # reporting tool
        run(db, "SELECT category, count(*), sum(price) FROM products GROUP BY 1 ORDER BY 2 DESC")
    elif kind == 3:
        run(db, "SELECT json_agg(json_build_object('id', id, 'name', name)) FROM products WHERE category = %s"
            if pgsql else "SELECT JSON_ARRAYAGG(JSON_OBJECT('id', id, 'name', name)) FROM products WHERE category = %s",
            (r.choice(CATS),))
    elif kind == 4:  # search box text that looks like SQL
        run(db, "SELECT id, name FROM products WHERE name LIKE %s OR note LIKE %s",
            (r.choice(['%cable 1=1%', "%o'reilly%", '%/* gift */%', '%union select%']), '%x%'))
    elif kind == 5:
        run(db, "UPDATE orders SET status = %s WHERE id = %s", (r.choice(['open', 'paid', 'sent']), r.randint(1, 20)))
    elif kind == 6:
        run(db, "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.customer_id = %s ORDER BY o.id DESC LIMIT 10", (r.randint(1, 5),))
    elif kind == 7:  # reporting tool: ORDER BY column number
        run(db, "SELECT name, price FROM products WHERE price BETWEEN %s AND %s ORDER BY 2, 1",
            (r.randint(1, 10), r.randint(20, 40)))
    elif kind == 8:
        run(db, "SELECT count(*) FROM orders WHERE status = %s AND total > %s", ('open', r.randint(0, 50)))
    elif kind == 9:  # the vulnerable routes' own clean shapes
        run(db, f"SELECT id, name, price, category FROM products WHERE id = {r.randint(1, 40)}")
    elif kind == 10:
        run(db, f"SELECT id, name, price FROM products WHERE category = '{r.choice(CATS)}' ORDER BY price")
    else:
        run(db, "SELECT id, name FROM products WHERE category = %s AND price < %s ORDER BY name LIMIT 5",
            (r.choice(CATS), r.randint(5, 40)))
    return 'ok'


port = dbtest.free_port()
srv = threading.Thread(target=lambda: app.run('127.0.0.1', port, threaded=True), daemon=True)
srv.start()
time.sleep(1.0)
BASE = f'http://127.0.0.1:{port}'


def get(path):
    try:
        with urllib.request.urlopen(BASE + path, timeout=30) as f:
            return f.read()
    except Exception:
        return b''


def benign_load(db, n, stop=None):
    for i in range(n):
        if stop is not None and stop.is_set():
            return
        get(f'/{db}/benign?k={rnd.randint(0, 10**6)}')
        if stop is not None:
            time.sleep(0.05)


def admin_reads():
    """A DBA's catalog reads from the admin host (not the service account)."""
    pg.psql('dba', DBA_PW, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public';\n"
            "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1;\n"
            "SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attnum > 0;\n"
            "SELECT version(), current_user, current_schema();\n")
    my.client('dba', DBA_PW, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop';\n"
              "SELECT user, host FROM mysql.user;\nSELECT version(), current_user();\n")


def capture(name, fn):
    if ONLY is not None and name not in ONLY:
        return
    path = os.path.join(tmp, name + '.pcap')
    with dbtest.Capture(path, [pg.port, my.port]):
        fn()
    with open(path, 'rb') as f, gzip.open(os.path.join(OUT, name + '.pcap.gz'), 'wb', 9) as g:
        g.write(f.read())
    print(f'{name}: {os.path.getsize(path)} bytes', flush=True)


# The pools connect before any capture starts: restart them inside each capture so the
# handshakes (service account, application name) are in it.
def reconnect():
    global pg_pool
    pg_pool.closeall()
    pg_pool = psycopg2.pool.ThreadedConnectionPool(
        4, 4, host='127.0.0.1', port=pg.port, user='shop_svc', password=PW, dbname='postgres',
        application_name='shop')
    while not my_pool.empty():
        my_pool.get().close()
    for _ in range(4):
        my_pool.put(pymysql.connect(host='127.0.0.1', port=my.port, user='shop_svc', password=PW,
                                    database='shop', autocommit=True, program_name='shop',
                                    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS))


def learn():
    reconnect()
    benign_load('pg', 600)
    benign_load('my', 600)
    admin_reads()


capture('learn', learn)
learn_labels = len(labels)

SQLMAP_RUNS = [  # (route, parameter, level, techniques, what to take)
    ('product?id=1', 1, 'BEUST', ['--dump', '-T', 'customers']),
    ('search?category=books', 2, 'BEUST', ['--dump', '-T', 'customers', '-C', 'email,password_hash']),
    ('product?id=1', 3, 'B', ['--dump', '-T', 'customers', '-C', 'password_hash', '--stop', '2']),
    ('product?id=1', 1, 'E', ['--dump', '-T', 'customers', '-C', 'email', '--stop', '3']),
    ('search?category=books', 1, 'T', ['--current-user']),
    ('product?id=1', 2, 'S', ['--banner']),
]


def sqlmap_runs(db):
    reconnect()
    stop = threading.Event()
    bg = threading.Thread(target=benign_load, args=(db, 100000, stop))
    bg.start()
    dbms = 'PostgreSQL' if db == 'pg' else 'MySQL'
    for i, (route, level, tech, what) in enumerate(SQLMAP_RUNS):
        with labels_lock:
            labels.append({'db': db, 'run': i, 'marker': True, 'technique': tech, 'level': level})
        cmd = ['sqlmap', '-u', f'{BASE}/{db}/{route}', '--batch', '--flush-session', f'--level={level}',
               '--risk=1', f'--technique={tech}', '--time-sec=1', '--threads=1', f'--dbms={dbms}',
               '--output-dir', os.path.join(tmp, 'sqlmap'), '-v', '0'] + what
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        print(f'sqlmap {db} run {i} ({tech}, level {level}): rc {r.returncode}, '
              f'{sum(1 for x in labels if x.get("who") == "sqlmap" and x.get("db") == db)} statements so far',
              flush=True)
    stop.set()
    bg.join()


capture('sqlmap-pg', lambda: sqlmap_runs('pg'))
capture('sqlmap-my', lambda: sqlmap_runs('my'))

if ONLY is None:
    with gzip.open(os.path.join(OUT, 'labels.json.gz'), 'wt') as f:
        json.dump({'learn': labels[:learn_labels], 'attack': labels[learn_labels:]}, f)

# ---- brute force and dumps --------------------------------------------------------------
words = os.path.join(tmp, 'words.txt')
with open(words, 'w') as f:
    f.write('\n'.join([f'guess{i}' for i in range(60)] + [PW]) + '\n')


def hydra():
    for user, svc, port in (('shop_svc', 'mysql', my.port), ('nobody', 'mysql', my.port)):
        subprocess.run(['hydra', '-l', user, '-P', words, '-t', '4', '-s', str(port), '-f',
                        '127.0.0.1', svc], capture_output=True, text=True, timeout=300)
    # PostgreSQL md5 (shop_md5) and scram (shop_svc): 60 wrong guesses each, then the right one
    for user, right in (('shop_md5', 'Md5-Pw-3'), ('shop_svc', PW)):
        for guess in [f'guess{i}' for i in range(60)] + [right]:
            try:
                psycopg2.connect(host='127.0.0.1', port=pg.port, user=user, password=guess,
                                 dbname='postgres', connect_timeout=5).close()
            except psycopg2.OperationalError:
                pass


capture('hydra', hydra)


def dumps():
    env = dict(os.environ, PGPASSWORD=DBA_PW)
    subprocess.run(['pg_dump', '-h', '127.0.0.1', '-p', str(pg.port), '-U', 'dba', '-t', 'customers', 'postgres'],
                   env=env, capture_output=True, check=True)
    subprocess.run(['mysqldump', '-h', '127.0.0.1', '-P', str(my.port), '-u', 'dba', f'-p{DBA_PW}', '--skip-ssl',
                    'shop', 'customers'], capture_output=True, check=True)
    # the same tables read by the service account through server-side file functions
    my.client('dba', DBA_PW, f"SELECT * FROM customers INTO OUTFILE '/tmp/dbtap-c-{os.getpid()}.txt';\n", db='shop')
    pg.psql('dba', DBA_PW, "COPY customers TO STDOUT;\nSELECT pg_read_file('PG_VERSION');\n")


capture('dumps', dumps)
print('written to', OUT)
for fn in sorted(os.listdir(OUT)):
    print(f'  {fn}: {os.path.getsize(os.path.join(OUT, fn))} bytes')
