// The audit trail through a running gateway: one row per exchange (allowed, denied, direct tunnel,
// upstream error), the decision row committed before the upstream sees the request, no secret in
// the database files after real traffic, fail closed when the store is locked (503
// audit_unavailable, /readyz, nothing upstream) and recovery, and a graceful stop flushes all.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { searchAuditRows, verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import type { StoredAuditRequest } from '../../../src/audit/audit-record.ts';

const GH_SECRET = `CANARY_GH_${Math.random().toString(36).slice(2)}`;
const pki = await makeTestCa();
const pair = await pki.issue(['api.github.com', 'pass.example.test']);
let db: Database | undefined;
// The upstream looks for its own audit row while handling the request: the decision row must already be committed.
const seenRows: Array<StoredAuditRequest | undefined> = [];
const gh = await startUpstream({
  tls: pair,
  handler: (req, res) => {
    const id = String(req.headers['x-probe'] ?? '');
    if (id && db) seenRows.push(searchAuditRows(db, { limit: 50 }).rows.find((r) => r.path === `/repos/acme/probe/${id}`));
    res.writeHead(req.url?.startsWith('/fail') ? 500 : 200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  },
});
const pass = await startUpstream({ tls: pair });

const tg = await startTestGateway({
  upstreams: { 'api.github.com': gh.port, 'pass.example.test': pass.port },
  upstreamCaPem: pki.caPem,
  alphaRules: `
  - { host: api.github.com, action: allow }
  - { host: pass.example.test, action: direct }
  - { host: "*", action: deny }`,
  alphaCredentials: '  - { host: api.github.com, bearer: { secret: github-token } }',
  files: { 'secrets/github-token': `${GH_SECRET}\n` },
  extraYaml: 'audit: { busy_timeout_ms: 200, retention_days: 30 }',
});
const dbFile = path.join(tg.dir, 'data', 'tollgate.db');
db = openDatabase(dbFile);
t.teardown(async () => {
  db?.close();
  await tg.stop();
  await Promise.all([gh.close(), pass.close()]);
});
const agent = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: `${tg.caPem}\n${pki.caPem}` } });
t.teardown(() => agent.close());

const rowsFor = async (pred: (r: StoredAuditRequest) => boolean, want = 1): Promise<StoredAuditRequest[]> => {
  for (let i = 0; i < 100; i++) {
    const rows = searchAuditRows(db!, { limit: 1000 }).rows.filter(pred);
    if (rows.length >= want && rows.every((r) => r.state === 'complete')) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  return searchAuditRows(db!, { limit: 1000 }).rows.filter(pred);
};

t.test('a forwarded request: decision row committed before the upstream saw it, completed at the end', async (t) => {
  for (let i = 0; i < 5; i++) {
    const res = await request(`https://api.github.com/repos/acme/probe/${i}?token=${GH_SECRET}x`, { dispatcher: agent, headers: { 'x-probe': String(i), authorization: 'Bearer client-own-key' } });
    t.equal(res.statusCode, 200);
    await res.body.text();
  }
  t.equal(seenRows.length, 5);
  t.ok(seenRows.every((r) => r !== undefined && r.decision === 'allow' && r.state === 'open'), 'each row existed (open) when the upstream handled the request');
  const [row] = await rowsFor((r) => r.path === '/repos/acme/probe/4');
  t.match(row, {
    state: 'complete', principal_kind: 'agent', subject: 'alpha-bot', agent: 'alpha-bot', team: 'alpha', kind: 'request', via: 'intercepted',
    method: 'GET', scheme: 'https', host: 'api.github.com', port: 443, decision: 'allow', rule: /policies\/alpha\.yaml:\d+/, reason: 'allowed',
    status: 200, address: '127.0.0.1', error: null,
  });
  t.ok(row!.bytes_out > 0 && row!.duration_ms! >= 0 && row!.token_id!.startsWith('tok_'));
});

t.test('denied, upstream 500, and a direct tunnel each get one row', async (t) => {
  const denied = await rawExchange(tg.proxyPort, `GET http://evil.test/x?q=1 HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: ${tg.proxyAuth}\r\n\r\n`);
  t.match(denied.text, /^HTTP\/1\.1 403/);
  const noAuth = await rawExchange(tg.proxyPort, 'GET http://evil.test/y HTTP/1.1\r\nHost: evil.test\r\n\r\n');
  t.match(noAuth.text, /^HTTP\/1\.1 407/);
  const fail = await request('https://api.github.com/fail', { dispatcher: agent });
  await fail.body.text();
  const tunnel = await request('https://pass.example.test/hello', { dispatcher: agent });
  await tunnel.body.text();
  t.match(await rowsFor((r) => r.host === 'evil.test' && r.path === '/x'), [{ decision: 'deny', status: 403, reason: 'host_not_allowed', rule: /alpha\.yaml/, address: null }]);
  t.match(await rowsFor((r) => r.path === '/y'), [{ decision: 'deny', status: 407, reason: 'auth_required', principal_kind: null }]);
  t.match(await rowsFor((r) => r.path === '/fail'), [{ decision: 'allow', status: 500 }]);
  // The pass-through tunnel stays open (keep-alive): its decision row is committed and open until it closes.
  const [tun] = searchAuditRows(db!, { host: 'pass.example.test' }).rows;
  t.match(tun, { state: 'open', kind: 'tunnel', via: 'connect', method: 'CONNECT', decision: 'direct', path: null, status: null, address: '127.0.0.1' });
});

t.test('the store locked past the busy timeout: 503 audit_unavailable, /readyz says so, nothing upstream; then recovery', async (t) => {
  const other = openDatabase(dbFile);
  t.teardown(() => other.close());
  const before = gh.seen.length;
  other.exec('BEGIN IMMEDIATE');
  let res;
  try {
    res = await request('https://api.github.com/repos/acme/locked', { dispatcher: agent });
    const body = await res.body.text();
    t.equal(res.statusCode, 503);
    t.equal(res.headers['x-tollgate-reason'], 'audit_unavailable');
    t.match(body, /audit trail/);
    const ready = await request(`${tg.adminUrl}/readyz`);
    t.equal(ready.statusCode, 503);
    const checks = ((await ready.body.json()) as { checks: Array<{ name: string }> }).checks;
    t.match(checks.find((c) => c.name === 'audit_store'), { ok: false, detail: /SQLITE_BUSY/ });
  } finally {
    other.exec('COMMIT');
  }
  t.equal(gh.seen.length, before, 'the upstream saw nothing');
  const ok = await request('https://api.github.com/repos/acme/after', { dispatcher: agent });
  await ok.body.text();
  t.equal(ok.statusCode, 200);
  const ready = await request(`${tg.adminUrl}/readyz`);
  t.equal(ready.statusCode, 200);
  await ready.body.text();
  t.match(await rowsFor((r) => r.path === '/repos/acme/locked'), [{ decision: 'error', status: 503, reason: 'audit_unavailable' }], 'the refusal itself is recorded once the store writes again');
});

t.test('no secret in tollgate.db, -wal or -shm after real traffic; a graceful stop flushes and the chain verifies', async (t) => {
  t.ok(gh.seen.some((s) => s.headers['authorization'] === `Bearer ${GH_SECRET}`), 'the bound secret was injected upstream');
  await tg.gw.stop(1000);
  const files = ['', '-wal', '-shm'].map((s) => `${dbFile}${s}`);
  for (const f of files) {
    let bytes: Buffer;
    try { bytes = readFileSync(f); } catch { continue; }
    for (const needle of [GH_SECRET, tg.token, tg.tokenB, 'client-own-key', Buffer.from(`alpha:${tg.token}`).toString('base64')]) {
      t.equal(bytes.indexOf(needle), -1, `${path.basename(f)} holds no ${needle.slice(0, 12)}…`);
    }
  }
  const v = verifyAuditStore(db!);
  t.match(v, { ok: true, openRows: 0 });
  t.ok(v.chains[0]!.checked >= 12);
  db!.close();
  db = undefined;
  rmSync(tg.dir, { recursive: true, force: true });
});
