// The writer thread on a real tollgate.db under faults: disk full (max_page_count), read-only
// connection, a lock held past the busy timeout by another connection, the file deleted. Each time
// decisions are refused (never acknowledged without a commit), the sink reports not ok, nothing
// partial is written, and — for full / read-only / locked — it recovers without a restart.
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createSqliteAuditSink, type SqliteAuditSink } from '../../../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { row } from '../../unit/audit/fixtures.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-audit-faults-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const logs: string[] = [];
const logger = createLogger({ level: 'debug', write: (l) => { logs.push(l); } });
let n = 0;

async function sinkOn(opts: { busyTimeoutMs?: number } = {}): Promise<{ sink: SqliteAuditSink; file: string }> {
  const file = path.join(dir, `f${++n}.db`);
  openDatabase(file).close();
  const sink = createSqliteAuditSink({ file, logger, busyTimeoutMs: opts.busyTimeoutMs ?? 200, retryIntervalMs: 50 });
  await sink.ready;
  return { sink, file };
}

const settle = (p: Promise<unknown>) => p.then(() => 'committed', (e: { code?: string }) => `refused:${e.code ?? '?'}`);
let rid = 0;
const decision = () => row({ request_id: `q${++rid}`, ended_at: null, status: null });

t.test('decisions are acknowledged once committed; completions and events follow; close flushes', async (t) => {
  const { sink, file } = await sinkOn();
  const rows = Array.from({ length: 200 }, decision);
  const results = await Promise.all(rows.map((r) => settle(sink.commitDecision(r))));
  t.ok(results.every((r) => r === 'committed'));
  for (const r of rows) sink.complete({ ...r, status: 200, ended_at: r.time + 5 });
  sink.event({ time: 1, type: 'login', actor: 'user:ann', detail: '{}' });
  await sink.close();
  t.match(sink.status(), { committed: 401, dropped: 0 });
  const db = openDatabase(file);
  t.teardown(() => db.close());
  t.match(verifyAuditStore(db), { ok: true, openRows: 0, chains: [{ checked: 200 }, { checked: 1 }] });
  t.equal(await settle(sink.commitDecision(decision())), 'refused:AUDIT_CLOSED');
});

t.test('disk full: refused, reported, no partial rows, recovers when space returns', async (t) => {
  const { sink, file } = await sinkOn();
  t.teardown(() => sink.close());
  await sink.commitDecision(decision());
  const { pageCount } = await sink.setStoreLimits({ maxPageCount: 0 });
  await sink.setStoreLimits({ maxPageCount: pageCount });
  // fill: commit until SQLITE_FULL
  let outcome = 'committed';
  for (let i = 0; i < 2000 && outcome === 'committed'; i++) {
    outcome = await settle(sink.commitDecision(row({ request_id: `fill${i}`, ended_at: null, status: null, path: `/${'x'.repeat(2000)}` })));
  }
  t.equal(outcome, 'refused:SQLITE_FULL');
  t.match(sink.status(), { ok: false, detail: /SQLITE_FULL/ });
  sink.complete(row({ request_id: 'refused-1', decision: 'error', status: 503, reason: 'audit_unavailable' }));
  await sink.setStoreLimits({ maxPageCount: null });
  for (let i = 0; i < 50 && !sink.status().ok; i++) await new Promise((r) => setTimeout(r, 20));
  t.match(sink.status(), { ok: true }, 'recovered without a restart');
  t.equal(await settle(sink.commitDecision(decision())), 'committed');
  await sink.flush();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  t.equal((db.prepare("SELECT count(*) AS n FROM audit_requests WHERE request_id = 'refused-1'").get() as { n: number }).n, 1, 'the completion held back during the outage is written');
  t.ok(verifyAuditStore(db).ok);
});

t.test('read-only store: refused with SQLITE_READONLY, then recovers', async (t) => {
  const { sink } = await sinkOn();
  t.teardown(() => sink.close());
  await sink.setStoreLimits({ queryOnly: true });
  t.match(await settle(sink.commitDecision(decision())), /^refused:SQLITE_READONLY/);
  t.equal(sink.status().ok, false);
  await sink.setStoreLimits({ queryOnly: false });
  t.equal(await settle(sink.commitDecision(decision())), 'committed');
  t.equal(sink.status().ok, true);
});

t.test('locked past the busy timeout by another connection (BEGIN IMMEDIATE): waits, then refuses; then recovers', async (t) => {
  const { sink, file } = await sinkOn({ busyTimeoutMs: 200 });
  t.teardown(() => sink.close());
  const other = openDatabase(file);
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  const started = performance.now();
  const outcomes = await Promise.all(Array.from({ length: 5 }, () => settle(sink.commitDecision(decision()))));
  const waited = performance.now() - started;
  t.ok(outcomes.every((o) => o === 'refused:SQLITE_BUSY'), outcomes.join(','));
  t.ok(waited >= 150 && waited < 3000, `waited about the busy timeout (${Math.round(waited)} ms)`);
  t.equal(sink.status().ok, false);
  other.exec('COMMIT');
  t.equal(await settle(sink.commitDecision(decision())), 'committed');
  t.equal(sink.status().ok, true);
});

t.test('the file deleted while running: fail closed, not silent writes to an unlinked file', async (t) => {
  const { sink, file } = await sinkOn();
  t.teardown(() => sink.close());
  t.equal(await settle(sink.commitDecision(decision())), 'committed');
  for (const f of [file, `${file}-wal`, `${file}-shm`]) { try { unlinkSync(f); } catch { /* absent */ } }
  t.equal(await settle(sink.commitDecision(decision())), 'refused:AUDIT_FILE_REPLACED');
  t.match(sink.status(), { ok: false, detail: /deleted/ });
});
