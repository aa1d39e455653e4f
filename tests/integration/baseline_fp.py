"""False-positive budget of the learned baseline (issue #7): two "days" of the same benign
application against a private PostgreSQL 15 -- pgbench (TPC-B-like over the simple protocol,
and select-only over prepared statements) plus a web-app-like mix (psycopg2, one pooled
service account, 30 end users marked by sqlcommenter comments and set_config, about twenty
request types with weighted popularity, IN lists of varying length, pagination, joins,
writes, and a few rare requests). Day 1 is learned with --learn, day 2 (a different random
seed, packet times moved by one day) is judged; the baseline findings per 1,000 benign
statements must stay at or below 1.

Prints the measured rate; `--keep DIR` leaves the captures and databases there.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtest  # noqa: E402
import baseline_pcap  # noqa: E402

dbtest.need_root()
try:
    import psycopg2
except ImportError:
    dbtest.skip('python3-psycopg2 is not installed (contrib/deps.sh installs it)')
if not shutil.which('pgbench'):
    dbtest.skip('pgbench is not installed (postgresql-contrib / postgresql-client)')

BASELINE_KINDS = ('new_query_shape', 'new_client', 'new_application', 'off_hours')
PW = 'Bench-Pw-1'
REQUESTS = int(os.environ.get('DBTAP_FP_REQUESTS', '1500'))  # web requests per day
keep = sys.argv[sys.argv.index('--keep') + 1] if '--keep' in sys.argv else None

tmp = keep or tempfile.mkdtemp(prefix='dbtap-fp-')
os.makedirs(tmp, exist_ok=True)
os.chmod(tmp, 0o755)
pg = dbtest.Postgres(hba=[('host', 'all', 'all', '127.0.0.0/8', 'scram-sha-256')])
pg.sql(f"CREATE ROLE bench LOGIN PASSWORD '{PW}'; CREATE ROLE websvc LOGIN PASSWORD '{PW}';"
       "GRANT ALL ON SCHEMA public TO bench, websvc;")
pg.sql("CREATE TABLE categories(id int PRIMARY KEY, name text);"
       "CREATE TABLE products(id int PRIMARY KEY, category_id int, name text, price numeric, stock int);"
       "CREATE TABLE customers(id int PRIMARY KEY, name text, email text, created_at timestamptz DEFAULT now());"
       "CREATE TABLE orders(id serial PRIMARY KEY, customer_id int, status text, total numeric,"
       " created_at timestamptz DEFAULT now());"
       "CREATE TABLE order_items(order_id int, product_id int, qty int, price numeric);"
       "CREATE TABLE cart(customer_id int, product_id int, qty int, PRIMARY KEY(customer_id, product_id));"
       "CREATE TABLE reviews(id serial PRIMARY KEY, product_id int, customer_id int, stars int, body text);"
       "INSERT INTO categories SELECT g, 'cat' || g FROM generate_series(1, 12) g;"
       "INSERT INTO products SELECT g, g % 12 + 1, 'product ' || g, (g % 90) + 0.99, 100 FROM generate_series(1, 500) g;"
       "INSERT INTO customers SELECT g, 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, 30) g;"
       "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO websvc;"
       "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO websvc;")
env = dict(os.environ, PGPASSWORD=PW)
subprocess.run(['pgbench', '-i', '-q', '-s', '1', '-h', pg.dir, '-p', str(pg.port), '-U', 'bench', 'postgres'],
               check=True, capture_output=True, env=env)


def request(cur, rnd, uid):
    """One web request of user uid: a weighted choice among the application's endpoints."""
    tag = f"/*app_user='user{uid}',route='%%2Fshop'*/ "
    pid = rnd.randint(1, 500)
    kind = rnd.choices(range(20), weights=[20, 15, 12, 10, 8, 8, 6, 5, 5, 4, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1])[0]
    if kind == 0:
        cur.execute(tag + 'SELECT id, name, price FROM products WHERE category_id = %s ORDER BY price LIMIT %s OFFSET %s',
                    (rnd.randint(1, 12), 20, 20 * rnd.randint(0, 5)))
    elif kind == 1:
        cur.execute(tag + 'SELECT p.id, p.name, p.price, c.name FROM products p JOIN categories c ON c.id = p.category_id'
                    ' WHERE p.id = %s', (pid,))
    elif kind == 2:
        cur.execute(tag + 'SELECT product_id, qty FROM cart WHERE customer_id = %s', (uid,))
    elif kind == 3:
        cur.execute(tag + 'INSERT INTO cart(customer_id, product_id, qty) VALUES (%s, %s, %s)'
                    ' ON CONFLICT (customer_id, product_id) DO UPDATE SET qty = cart.qty + excluded.qty',
                    (uid, pid, rnd.randint(1, 3)))
        return
    elif kind == 4:
        ids = tuple(rnd.sample(range(1, 501), rnd.randint(1, 12)))
        cur.execute(tag + 'SELECT id, name, price, stock FROM products WHERE id IN %s', (ids,))
    elif kind == 5:
        cur.execute(tag + 'SELECT id, status, total, created_at FROM orders WHERE customer_id = %s'
                    ' ORDER BY created_at DESC LIMIT 10', (uid,))
    elif kind == 6:
        cur.execute(tag + "SELECT id, name FROM products WHERE name LIKE %s LIMIT 25", (f'product {rnd.randint(1, 50)}%',))
    elif kind == 7:
        # checkout: a transaction with the end user in a transaction-scoped setting
        cur.execute("SELECT set_config('app.user', %s, true)", (f'user{uid}',))
        cur.execute('INSERT INTO orders(customer_id, status, total) VALUES (%s, %s, %s) RETURNING id',
                    (uid, 'new', round(rnd.uniform(5, 300), 2)))
        oid = cur.fetchone()[0]
        for _ in range(rnd.randint(1, 4)):
            cur.execute('INSERT INTO order_items(order_id, product_id, qty, price) VALUES (%s, %s, %s, %s)',
                        (oid, rnd.randint(1, 500), rnd.randint(1, 3), 9.99))
        cur.execute('UPDATE products SET stock = stock - %s WHERE id = %s', (1, pid))
        cur.execute('DELETE FROM cart WHERE customer_id = %s', (uid,))
        return
    elif kind == 8:
        cur.execute(tag + 'SELECT stars, body FROM reviews WHERE product_id = %s ORDER BY id DESC LIMIT 5', (pid,))
    elif kind == 9:
        cur.execute(tag + 'SELECT count(*) FROM cart WHERE customer_id = %s', (uid,))
    elif kind == 10:
        cur.execute(tag + 'SELECT name, email FROM customers WHERE id = %s', (uid,))
    elif kind == 11:
        cur.execute(tag + 'DELETE FROM cart WHERE customer_id = %s AND product_id = %s', (uid, pid))
        return
    elif kind == 12:
        cur.execute(tag + 'UPDATE cart SET qty = %s WHERE customer_id = %s AND product_id = %s',
                    (rnd.randint(1, 5), uid, pid))
        return
    elif kind == 13:
        cur.execute(tag + 'INSERT INTO reviews(product_id, customer_id, stars, body) VALUES (%s, %s, %s, %s)',
                    (pid, uid, rnd.randint(1, 5), 'great product ' * rnd.randint(1, 4)))
        return
    elif kind == 14:
        cur.execute(tag + 'SELECT c.id, c.name, count(p.id) FROM categories c LEFT JOIN products p'
                    ' ON p.category_id = c.id GROUP BY c.id, c.name ORDER BY c.id', ())
    elif kind == 15:
        cur.execute(tag + 'SELECT oi.product_id, oi.qty, oi.price FROM order_items oi JOIN orders o'
                    ' ON o.id = oi.order_id WHERE o.customer_id = %s ORDER BY o.id DESC LIMIT 20', (uid,))
    elif kind == 16:
        cur.execute(tag + 'UPDATE customers SET email = %s WHERE id = %s', (f'user{uid}.{rnd.randint(1, 9)}@example.com', uid))
        return
    elif kind == 17:
        cur.execute(tag + 'SELECT avg(stars)::numeric(3,2), count(*) FROM reviews WHERE product_id = %s', (pid,))
    elif kind == 18:
        cur.execute(tag + "UPDATE orders SET status = %s WHERE customer_id = %s AND status = 'new'", ('cancelled', uid))
        return
    else:
        cur.execute(tag + 'SELECT id, name, price FROM products WHERE price BETWEEN %s AND %s ORDER BY price LIMIT 50',
                    (rnd.randint(1, 40), rnd.randint(41, 90)))
    cur.fetchall()


def web_day(seed):
    rnd = random.Random(seed)
    conns = [psycopg2.connect(host='127.0.0.1', port=pg.port, user='websvc', password=PW, dbname='postgres',
                              application_name='shopweb') for _ in range(4)]
    for i in range(REQUESTS):
        conn = conns[i % len(conns)]
        cur = conn.cursor()
        request(cur, rnd, rnd.randint(1, 30))
        conn.commit()
    for c in conns:
        c.close()


def pgbench(*args):
    subprocess.run(['pgbench', '-h', '127.0.0.1', '-p', str(pg.port), '-U', 'bench', '-n'] + list(args) + ['postgres'],
                   check=True, capture_output=True, env=env, timeout=300)


def day(name, seed):
    raw = os.path.join(tmp, name + '.raw.pcap')
    with dbtest.Capture(raw, [pg.port]):
        # throttled (-R) so tcpdump on lo keeps up: a capture gap would lose statements
        pgbench('-c', '4', '-j', '2', '-t', '150', '-R', '1000')
        web_day(seed)
        pgbench('-S', '-M', 'prepared', '-c', '2', '-t', '300', '-R', '2000')
    return raw


raw1, raw2 = day('day1', 1), day('day2', 2)
pg.stop()
d1, d2 = os.path.join(tmp, 'day1.pcap'), os.path.join(tmp, 'day2.pcap')
baseline_pcap.retime(raw1, d1, '2026-11-02T09:00:00Z')
baseline_pcap.retime(raw2, d2, '2026-11-03T09:00:00Z')

c = dbtest.Checks()
db = os.path.join(tmp, 'fp.db')
for f in (db, db + '-wal', db + '-shm'):
    if os.path.exists(f):
        os.remove(f)
dbtest.run_dbtap(d1, db, extra=['--learn'])
dbtest.run_dbtap(d2, db)
n1 = dbtest.rows(db, 'SELECT count(*) AS n FROM statements st JOIN sessions se ON se.id = st.session_id'
                 ' WHERE se.run_id = 1')[0]['n']
n2 = dbtest.rows(db, 'SELECT count(*) AS n FROM statements st JOIN sessions se ON se.id = st.session_id'
                 ' WHERE se.run_id = 2')[0]['n']
fs = dbtest.rows(db, 'SELECT kind, db_user, end_user, summary FROM findings WHERE run_id = 2 AND kind IN (%s)'
                 % ','.join('?' * len(BASELINE_KINDS)), BASELINE_KINDS)
for f in fs:
    print(f"# {f['kind']} {f['db_user']} {f['end_user']}: {f['summary']}")
rate = 1000.0 * len(fs) / n2 if n2 else float('inf')
print(f'# day 1: {n1} statements learned; day 2: {n2} statements, {len(fs)} baseline findings: '
      f'{rate:.3f} per 1,000 statements')
c.check(n1 > 5000 and n2 > 5000, f'a real workload on both days ({n1}, {n2} statements)')
gaps = dbtest.rows(db, 'SELECT count(*) AS n FROM sessions WHERE gaps > 0')[0]['n']
print(f'# sessions with capture gaps: {gaps}')
c.check(rate <= 1.0, f'false-positive budget: {rate:.3f} baseline findings per 1,000 benign statements (<= 1)')
# for the record: the same day 2 without the end-user peer-group rule (every end user's
# first access to any table is reported)
nopeer = os.path.join(tmp, 'nopeer.db')
for f in (nopeer, nopeer + '-wal', nopeer + '-shm'):
    if os.path.exists(f):
        os.remove(f)
npcfg = {'baseline': {'end_user_peers': 1000000}}
dbtest.run_dbtap(d1, nopeer, config=npcfg, extra=['--learn'])
dbtest.run_dbtap(d2, nopeer, config=npcfg)
nf = dbtest.rows(nopeer, 'SELECT count(*) AS n FROM findings WHERE run_id = 2 AND kind IN (%s)'
                 % ','.join('?' * len(BASELINE_KINDS)), BASELINE_KINDS)[0]['n']
print(f'# without the peer-group rule: {nf} baseline findings: {1000.0 * nf / n2:.3f} per 1,000 statements')
other = dbtest.rows(db, 'SELECT kind, count(*) AS n FROM findings WHERE run_id = 2 GROUP BY kind')
print('# all findings on day 2:', {r['kind']: r['n'] for r in other})
if not keep:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
