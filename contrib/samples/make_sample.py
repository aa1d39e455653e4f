#!/usr/bin/env python3
"""Make contrib/samples/pg-sample.pcap: a small PostgreSQL 15 capture from a real server.

What it holds (all on 127.0.0.1, captured on lo):
  - alice logs in with SCRAM and runs a few statements, one of them an error;
  - a wrong password for alice (failed login, SQLSTATE 28P01);
  - a pooled application account app_svc whose statements carry sqlcommenter tags
    naming the end user, including a tautology-style injection attempt;
  - a GRANT and a bulk read.
Run as root: python3 contrib/samples/make_sample.py [OUT.pcap]
"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', 'tests', 'integration'))
import dbtest  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'pg-sample.pcap')
dbtest.need_root()
pg = dbtest.Postgres()
pg.sql("CREATE ROLE alice LOGIN PASSWORD 'Alice-Secret-42'")
pg.sql("CREATE ROLE app_svc LOGIN PASSWORD 'Svc-Secret-99'")
pg.sql("CREATE DATABASE shop OWNER alice")

with dbtest.Capture(out + '.tmp', [pg.port]):
    pg.psql('alice', 'Alice-Secret-42', """
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text);
INSERT INTO customers SELECT g, 'name' || g, 'user' || g || '@example.com', '4111-' || g
  FROM generate_series(1, 12000) g;
SELECT name, email FROM customers WHERE id = 42;
UPDATE customers SET email = 'new@example.com' WHERE id = 7;
SELECT * FROM no_such_table;
GRANT SELECT ON customers TO app_svc;
""", db='shop')
    pg.psql('alice', 'wrong-password', 'SELECT 1;', db='shop')
    pg.psql('app_svc', 'Svc-Secret-99', """
SELECT name FROM customers WHERE id = 12 /*app_user='bob',route='/orders'*/;
SELECT name FROM customers WHERE id = 13 /*app_user='carol',route='/orders'*/;
SELECT name FROM customers WHERE id = '' OR '1'='1' /*app_user='mallory',route='/search'*/;
SELECT id FROM customers /*app_user='mallory',route='/export'*/;
""", db='shop')

# The private server ran on a free port; give the sample the standard one.
subprocess.run(['tcprewrite', f'--portmap={pg.port}:5432', f'--infile={out}.tmp',
                f'--outfile={out}'], check=True)
os.unlink(out + '.tmp')
print(f'wrote {out} ({os.path.getsize(out)} bytes)')
