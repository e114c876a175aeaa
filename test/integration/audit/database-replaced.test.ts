// Security case 7.09 (storage): tollgate.db deleted or replaced under a running gateway. Each case
// runs its own real gateway with a local upstream. Expected: every request after the change is
// refused within a bounded time (503 audit_unavailable naming AUDIT_FILE_REPLACED), nothing
// reaches the upstream, /readyz and /metrics say the store is down — and nothing the gateway does
// lands in the unlinked file (read through a connection opened before the unlink) or in the file
// put in its place (its bytes, and after the stop its chains, are unchanged).
// The proxy thread's own connection (tokens, sessions) turns read-only too, so an admin API
// revocation fails (503) rather than being acknowledged and lost; an idle gateway's /readyz notices
// within a second; and the old database's -wal/-shm are moved aside (kept, renamed), never left
// next to the replacement to be replayed into it by the next opener.
// A read-only store (query_only) is covered by audit-sink-faults.test.ts and
// metering/spend-store-failure.test.ts; a chmod 0444 file does not stop root, so it is not repeated.
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway-harness.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream-server.ts';

/** A refusal must come back well within this (detection is a stat before each commit, not a timeout). */
const REFUSED_WITHIN_MS = 2000;
/** Every HTTP exchange of the test gives up after this. */
const HARD_LIMIT_MS = 5000;

interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string; ms: number }

/** One HTTP exchange with a hard deadline (never hangs the test). */
function exchange(opts: http.RequestOptions & { body?: string }): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.setTimeout(HARD_LIMIT_MS, () => req.destroy(new Error(`no answer within ${HARD_LIMIT_MS} ms: ${opts.method ?? 'GET'} ${String(opts.path)}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

interface Case {
  tg: TestGateway;
  up: TestUpstream;
  dbFile: string;
  /** GET http://echo.test<p> through the proxy as alpha-bot (or with `token`'s team and token). */
  proxied(p: string, as?: { team: string; token: string }): Promise<Answer>;
  readyz(): Promise<{ status: number; audit: { ok: boolean; detail: string } | undefined }>;
  metric(name: string): Promise<number | undefined>;
  /** Stops the gateway (its directory stays until teardown); resolves with how long it took. */
  stop(): Promise<number>;
}

async function startCase(t: Test): Promise<Case> {
  const up = await startUpstream();
  const tg = await startTestGateway({
    upstreams: { 'echo.test': up.port },
    files: { 'policies/beta.yaml': 'team: beta\nrules:\n  - { host: echo.test, action: allow, ports: [80] }\n  - { host: "*", action: deny }\n' },
    extraYaml: 'audit: { busy_timeout_ms: 200 }',
  });
  const dbFile = path.join(tg.dir, 'data', 'tollgate.db');
  let stopped = false;
  const c: Case = {
    tg, up, dbFile,
    proxied: (p, as) => exchange({
      port: tg.proxyPort, method: 'GET', path: `http://echo.test${p}`,
      headers: { host: 'echo.test', 'proxy-authorization': `Basic ${Buffer.from(`${as?.team ?? 'alpha'}:${as?.token ?? tg.token}`).toString('base64')}`, connection: 'close' },
    }),
    async readyz() {
      const r = await exchange({ port: tg.gw.admin.port, method: 'GET', path: '/readyz' });
      const checks = (JSON.parse(r.text) as { checks?: Array<{ name: string; ok: boolean; detail: string }> }).checks ?? [];
      return { status: r.status, audit: checks.find((x) => x.name === 'audit_store') };
    },
    async metric(name) {
      const r = await exchange({ port: tg.gw.admin.port, method: 'GET', path: '/metrics' });
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.text);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    },
    async stop() {
      if (stopped) return 0;
      stopped = true;
      const started = performance.now();
      await tg.gw.stop(500);
      return performance.now() - started;
    },
  };
  t.teardown(async () => {
    await c.stop();
    await tg.stop();
    await up.close();
  });
  return c;
}

const unlinkAll = (file: string) => {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) { try { unlinkSync(f); } catch { /* absent */ } }
};

interface ChainHeads { requests: number; events: number; rows: number; eventRows: number }
const heads = (db: Pick<Database, 'prepare'>): ChainHeads => {
  const h = Object.fromEntries((db.prepare('SELECT chain, head_seq FROM audit_chain').all() as Array<{ chain: string; head_seq: number }>).map((r) => [r.chain, r.head_seq]));
  return {
    requests: h['requests'] as number,
    events: h['events'] as number,
    rows: (db.prepare('SELECT count(*) AS n FROM audit_requests').get() as { n: number }).n,
    eventRows: (db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n,
  };
};

/** Waits (bounded) until `n` rows whose path matches `like` are complete, read on a connection of its own. */
async function waitComplete(dbFile: string, like: string, n: number): Promise<boolean> {
  const db = new BetterSqlite3(dbFile, { readonly: true, fileMustExist: true });
  try {
    return await until(() => (db.prepare("SELECT count(*) AS n FROM audit_requests WHERE path LIKE ? AND state = 'complete'").get(like) as { n: number }).n === n, 3000);
  } finally {
    db.close();
  }
}

const until = async (cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
};

/** Requests after the change: each refused 503 audit_unavailable, quickly, with nothing upstream. */
async function expectRefused(t: Test, c: Case, label: string, n: number, reason: RegExp): Promise<void> {
  const seen = c.up.seen.length;
  const conns = c.up.connections;
  for (let i = 0; i < n; i++) {
    const r = await c.proxied(`/${label}/${i}`);
    t.equal(r.status, 503, `${label} ${i}: refused`);
    t.equal(r.headers['x-tollgate-reason'], 'audit_unavailable', `${label} ${i}: reason audit_unavailable`);
    t.ok(r.ms < REFUSED_WITHIN_MS, `${label} ${i}: refused within ${REFUSED_WITHIN_MS} ms (${Math.round(r.ms)} ms)`);
  }
  t.equal(c.up.seen.length, seen, 'nothing reached the upstream');
  t.equal(c.up.connections, conns, 'no connection to the upstream was even opened');
  const refusedLines = c.tg.exchanges().filter((l) => String(l['path']).startsWith(`/${label}/`));
  t.equal(refusedLines.length, n, 'one exchange log line per refusal');
  t.ok(refusedLines.every((l) => l['reason'] === 'audit_unavailable' && /AUDIT_FILE_REPLACED/.test(String(l['error'])) && reason.test(String(l['error']))),
    'each names AUDIT_FILE_REPLACED and what happened to the file');
  const ready = await c.readyz();
  t.equal(ready.status, 503, '/readyz: not ready');
  t.match(ready.audit, { ok: false, detail: reason });
  t.match(ready.audit?.detail, /AUDIT_FILE_REPLACED/);
  t.equal(await c.metric('tollgate_audit_store_up'), 0, 'tollgate_audit_store_up 0');
  t.ok((await c.metric('tollgate_audit_failed_decisions_total') ?? 0) >= n, 'tollgate_audit_failed_decisions_total counts the refusals');
  t.ok(c.tg.logs.some((l) => l['msg'] === 'audit store cannot write; decisions fail closed until it recovers' && l['code'] === 'AUDIT_FILE_REPLACED'), 'the writer logged why it fails closed');
}

t.test('the database file deleted (with -wal and -shm) while running: fail closed, nothing written to the unlinked file', async (t) => {
  const c = await startCase(t);
  const before = await c.proxied('/before');
  t.equal(before.status, 200);
  t.equal(c.up.seen.length, 1);
  // A reader opened before the unlink keeps the unlinked inode (and its WAL and shared memory)
  // readable: whatever the gateway still writes there shows up through it.
  const ghost = new BetterSqlite3(c.dbFile, { readonly: true, fileMustExist: true });
  t.teardown(() => ghost.close());
  t.ok(await until(() => (ghost.prepare("SELECT count(*) AS n FROM audit_requests WHERE path = '/before' AND state = 'complete'").get() as { n: number }).n === 1, 3000), 'the request before the unlink is complete');
  const tokenUse = () => (ghost.prepare("SELECT last_used_at AS t FROM tokens WHERE kind = 'agent' AND subject = 'beta-bot'").get() as { t: number | null }).t;
  const tokensBefore = ghost.prepare('SELECT id, revoked_at, last_used_at FROM tokens ORDER BY id').all();
  t.equal(tokenUse(), null, 'beta-bot\'s token was never used yet');
  const at = heads(ghost);

  unlinkAll(c.dbFile);
  await expectRefused(t, c, 'after-unlink', 3, /deleted/);
  // beta-bot's first use: authenticated (the token service touches last_used_at), then refused.
  const beta = await c.proxied('/after-unlink-beta', { team: 'beta', token: c.tg.tokenB });
  t.equal(beta.status, 503, 'another principal is refused too');
  t.equal(c.up.seen.length, 1, 'still nothing upstream');

  // The writer retries every 500 ms while it fails: give it a few rounds.
  await new Promise((r) => setTimeout(r, 1200));
  t.same(heads(ghost), at, 'no audit row, event or chain link was written to the unlinked file (refusals and retries included)');
  t.same(ghost.prepare('SELECT id, revoked_at, last_used_at FROM tokens ORDER BY id').all(), tokensBefore,
    'no token state was written to the unlinked file');
  t.equal(existsSync(c.dbFile), false, 'the gateway did not create a fresh database at the path and carry on there');
  t.equal((await c.readyz()).status, 503, 'still not ready: a deleted store stays fatal');
  const stopMs = await c.stop();
  t.ok(stopMs < 5000, `the gateway stopped in bounded time (${Math.round(stopMs)} ms)`);
  t.same(heads(ghost), at, 'nor at the stop (the records still queued are dropped, not written to the unlinked file)');
});

t.test('a garbage file renamed over the database while running: fail closed; the garbage is left as it was', async (t) => {
  const c = await startCase(t);
  t.equal((await c.proxied('/before')).status, 200);
  t.ok(await waitComplete(c.dbFile, '/before', 1), 'the request before the swap is complete: the writer is idle');
  const garbage = Buffer.alloc(64 * 1024);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
  const tmp = `${c.dbFile}.incoming`;
  writeFileSync(tmp, garbage);
  renameSync(tmp, c.dbFile);
  for (const f of [`${c.dbFile}-wal`, `${c.dbFile}-shm`]) unlinkSync(f);

  // No traffic yet: does readiness notice on its own within a bounded time?
  const noticedIdle = await until(async () => (await c.readyz()).status === 503, 2000);
  t.ok(noticedIdle, '/readyz reports the replaced file within 2 s without any traffic');

  await expectRefused(t, c, 'after-garbage', 3, /replaced by another file/);
  t.equal((await c.proxied('/after-garbage-later')).status, 503, 'still refused after the retries');
  const stopMs = await c.stop();
  t.ok(stopMs < 5000, `the gateway stopped in bounded time (${Math.round(stopMs)} ms)`);
  t.same(readFileSync(c.dbFile), garbage, 'not one byte of the replacement was changed, through the stop');
  t.equal(existsSync(`${c.dbFile}-wal`), false, 'no WAL was created for the replacement');
});

t.test('a backup restored over the live database (renamed over it, the live -wal/-shm left): fail closed; the backup\'s chains are not continued', async (t) => {
  const c = await startCase(t);
  // An admin token (to revoke through the admin API later), issued on a connection of our own.
  const own = openDatabase(c.dbFile);
  const tokens = createTokenService(createSqliteTokenStore(own));
  const adminBearer = (await tokens.issueToken({ kind: 'user', subject: 'ada@acme.example', teams: ['alpha'], roles: ['admin'], ttlMs: 3_600_000, issuedBy: 'test', now: Date.now() })).token;
  t.equal((await c.proxied('/in-backup')).status, 200);
  t.ok(await waitComplete(c.dbFile, '/in-backup', 1));
  const backup = `${c.dbFile}.backup`;
  own.prepare('VACUUM INTO ?').run(backup);
  own.close();
  const backupBytes = readFileSync(backup);
  const b = new BetterSqlite3(backup, { readonly: true });
  const inBackup = heads(b);
  b.close();
  // Traffic after the backup: the live chain moves past it.
  for (let i = 0; i < 3; i++) t.equal((await c.proxied(`/after-backup/${i}`)).status, 200);
  t.ok(await waitComplete(c.dbFile, '/after-backup/%', 3));
  const seen = c.up.seen.length;

  // The restore: `mv tollgate.db.backup tollgate.db` while the gateway runs.
  renameSync(backup, c.dbFile);
  await expectRefused(t, c, 'after-restore', 3, /replaced by another file/);
  t.equal(c.up.seen.length, seen);

  // A revocation through the admin API while the file is the restored backup.
  const revoke = await exchange({
    port: c.tg.gw.admin.port, method: 'POST', path: '/api/v1/tokens/revoke',
    headers: { authorization: `Bearer ${adminBearer}`, 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'beta-bot' }),
  });
  t.ok(revoke.ms < REFUSED_WITHIN_MS, `the admin API answered in bounded time (${revoke.status} in ${Math.round(revoke.ms)} ms)`);
  t.same(readFileSync(c.dbFile), backupBytes, 'while running, not one byte of the restored file was changed');

  const stopMs = await c.stop();
  t.ok(stopMs < 5000, `the gateway stopped in bounded time (${Math.round(stopMs)} ms)`);
  t.same(readFileSync(c.dbFile), backupBytes, 'the stop did not write to the restored file either');
  const staleWal = `${c.dbFile}-wal`;
  const leftWal = existsSync(staleWal);
  t.notOk(leftWal, 'the stop left no WAL of the old database next to the restored file');
  const keptAside = readdirSync(path.dirname(c.dbFile)).filter((f) => /^tollgate\.db-(wal|shm)\.replaced-/.test(f));
  t.same(keptAside.map((f) => f.split('.replaced-')[0]).sort(), ['tollgate.db-shm', 'tollgate.db-wal'], `the old database's WAL and shared memory were moved aside, not deleted (${keptAside.join(', ')})`);

  // What the next start (or any CLI verb) sees: the restored file together with what is next to it.
  const next = `${c.dbFile}.next-start`;
  writeFileSync(next, backupBytes);
  if (leftWal) writeFileSync(`${next}-wal`, readFileSync(staleWal));
  const nextDb = new BetterSqlite3(next, { readonly: false });
  t.teardown(() => nextDb.close());
  t.same(heads(nextDb), inBackup, 'the next opener sees the restored chains, not the old database\'s chains continued');

  // The restored file on its own (the old WAL moved aside, as an operator who knows would).
  if (leftWal) {
    renameSync(staleWal, `${staleWal}.old-database`);
    try { renameSync(`${c.dbFile}-shm`, `${c.dbFile}-shm.old-database`); } catch { /* absent */ }
  }
  const restored = openDatabase(c.dbFile);
  t.teardown(() => restored.close());
  t.equal(restored.pragma('integrity_check', { simple: true }), 'ok');
  t.same(heads(restored), inBackup, 'the restored file holds its own chains, not continued by the running gateway');
  t.match(verifyAuditStore(restored), { ok: true });
  t.equal((restored.prepare("SELECT count(*) AS n FROM audit_requests WHERE path LIKE '/after-%'").get() as { n: number }).n, 0, 'no row of the traffic after the backup or the restore');
  const betaRevoked = (restored.prepare("SELECT revoked_at FROM tokens WHERE kind = 'agent' AND subject = 'beta-bot'").get() as { revoked_at: number | null }).revoked_at;
  t.ok(revoke.status >= 400 || betaRevoked !== null, `a revocation the admin API acknowledged (${revoke.status}) is in the database file the next start uses`);
});
