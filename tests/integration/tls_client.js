// A real database client for tls_decrypt.py: node `pg` or `mysql2` over TLS (or not),
// writing the session keys to a key log in the NSS format through the socket's 'keylog'
// event. Usage: node tls_client.js '<json job>'; prints one JSON line of results.
'use strict';
const fs = require('fs');
const tls = require('tls');

const job = JSON.parse(process.argv[2]);

// Every TLS socket in this process logs its keys (the same lines as --tls-keylog). With
// job.resume, a connection offers the session (TLS 1.2 id/ticket, TLS 1.3 PSK ticket) the
// previous one received, as an application's connection pool does.
let lastSession = null;
const orig = tls.connect;
tls.connect = function (...args) {
  if (job.resume && lastSession && args[0] && typeof args[0] === 'object')
    args[0] = Object.assign({}, args[0], { session: lastSession });
  const s = orig.apply(this, args);
  if (job.keylog) s.on('keylog', (line) => fs.appendFileSync(job.keylog, line));
  s.on('session', (sess) => { lastSession = sess; });
  return s;
};

function tlsInfo(st) {
  return st.getProtocol ? [st.getProtocol(), st.getCipher().name, st.isSessionReused()] : null;
}

function sslOpts() {
  if (!job.tls) return false;
  const o = { rejectUnauthorized: false };
  for (const k of ['minVersion', 'maxVersion', 'ciphers']) if (job.tls[k]) o[k] = job.tls[k];
  // CBC suites: OpenSSL agrees encrypt-then-MAC by default; noEtm asks for MAC-then-encrypt
  if (job.tls.noEtm) o.secureOptions = require('crypto').constants.SSL_OP_NO_ENCRYPT_THEN_MAC;
  return o;
}

async function runPg() {
  const { Client } = require('pg');
  const c = new Client({ host: job.host, port: job.port, user: job.user, password: job.password,
    database: job.database, ssl: sslOpts(), application_name: job.application || 'tls-test' });
  await c.connect();
  const out = [];
  for (const q of job.statements) {
    try { const r = await c.query(q); out.push(r.rowCount); } catch (e) { out.push('error ' + e.code); }
  }
  const info = tlsInfo(c.connection.stream);
  await c.end();
  return { results: out, tls: info };
}

async function runMy() {
  const mysql = require('mysql2/promise');
  const c = await mysql.createConnection({ host: job.host, port: job.port, user: job.user,
    password: job.password, database: job.database, ssl: sslOpts() || undefined });
  const out = [];
  for (const q of job.statements) {
    try { const [r] = await c.query(q); out.push(Array.isArray(r) ? r.length : r.affectedRows); } catch (e) { out.push('error ' + e.code); }
  }
  const info = tlsInfo(c.connection.stream);
  await c.end();
  return { results: out, tls: info };
}

// pgbench's TPC-B transaction over the simple protocol, job.clients connections at once
// (contrib/bench/tls_bench.py: the same content with and without TLS).
async function runTpcb() {
  const { Client } = require('pg');
  const rnd = (n) => 1 + Math.floor(Math.random() * n);
  const one = async () => {
    const c = new Client({ host: job.host, port: job.port, user: job.user, password: job.password,
      database: job.database, ssl: sslOpts() });
    await c.connect();
    for (let i = 0; i < job.transactions; i++) {
      const aid = rnd(100000 * job.scale), bid = rnd(job.scale), tid = rnd(10 * job.scale);
      const delta = rnd(10000) - 5000;
      await c.query('BEGIN');
      await c.query(`UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid}`);
      await c.query(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`);
      await c.query(`UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid}`);
      await c.query(`UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid}`);
      await c.query(`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP)`);
      await c.query('END');
    }
    await c.end();
  };
  await Promise.all(Array.from({ length: job.clients }, one));
  return { transactions: job.clients * job.transactions };
}

// job.connections (default 1): the statements run once per connection, one after another.
async function runAll() {
  if (job.proto === 'pg' && job.transactions) return runTpcb();
  const out = { results: [], tls: null, reused: [] };
  for (let i = 0; i < (job.connections || 1); i++) {
    const r = await (job.proto === 'pg' ? runPg() : runMy());
    out.results.push(...r.results);
    out.tls = out.tls || (r.tls && r.tls.slice(0, 2));
    out.reused.push(r.tls ? r.tls[2] : null);
    // a TLS 1.3 ticket comes after the handshake: let it arrive before the next connects
    await new Promise((res) => setTimeout(res, 50));
  }
  return out;
}

runAll().then((r) => {
  console.log(JSON.stringify(r));
}, (e) => { console.error(String(e && e.stack || e)); process.exit(1); });
