// The Ledger contract on a real tollgate.db, plus what only SQLite can show: spend survives a
// reopen, and two connections (two processes) cannot both take the last of a budget.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import { createSqliteLedger } from '../../../src/store/sqlite-ledger.ts';
import { createSqliteAuditSink } from '../../../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { row as auditRow } from '../../unit/audit/fixtures.ts';
import { AT, ledgerContract, req, zero } from '../../unit/ledger/ledger-contract.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-ledger-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbs: Array<{ close(): void }> = [];
t.teardown(() => { for (const d of dbs) d.close(); });
const fresh = () => {
  const db = openDatabase(path.join(dir, `l${n++}.db`));
  dbs.push(db);
  return db;
};

await ledgerContract(t, () => createSqliteLedger(fresh()));

// The gateway's ledger: the same contract through the audit writer thread, where ledger calls ride
// in the writer's batches (with decision rows) and are answered in its results.
const sinks: Array<{ close(): Promise<void> }> = [];
t.teardown(async () => { for (const s of sinks) await s.close(); });
/** The gateway's audit sink (its writer thread) on a new tollgate.db in `dir`. */
async function startSink(name: string) {
  const file = path.join(dir, name);
  openDatabase(file).close(); // migrated before the writer opens it
  const sink = createSqliteAuditSink({ file, logger: createLogger({ level: 'error', write: () => undefined }) });
  sinks.push(sink);
  await sink.ready;
  return { sink, file };
}
await ledgerContract(t, async () => (await startSink(`w${n++}.db`)).sink.ledger);

t.test('writer thread: a reservation and a decision row sent in one tick are both answered', async (t) => {
  const { sink, file } = await startSink('tick.db');
  const reserved = sink.ledger.reserve(req('tick-1', 1_000));
  const committed = sink.commitDecision(auditRow({ request_id: 'tick-1', ended_at: null, status: null, duration_ms: null, upstream_ms: null, bytes_out: 0 }));
  t.same(await reserved, { ok: true });
  await committed;
  const settled = sink.ledger.settle({ id: 'tick-1', at: AT, costMicros: 400, estimated: false, tokens: zero });
  sink.complete(auditRow({ request_id: 'tick-1', cost_micros: 400 }));
  t.match(await settled, { settled: true });
  await sink.flush();
  const db = openDatabase(file);
  dbs.push(db);
  t.match(db.prepare("SELECT state, cost_micros FROM ledger_requests WHERE id = 'tick-1'").get(), { state: 'settled', cost_micros: 400 });
  t.match(db.prepare("SELECT cost_micros, seq FROM audit_requests WHERE request_id = 'tick-1'").get(), { cost_micros: 400 });
});

t.test('writer thread: a call it cannot read fails alone — the calls and decision of its turn commit', async (t) => {
  const { sink, file } = await startSink('malformed.db');
  t.same(await sink.ledger.reserve(req('held', 1_000)), { ok: true });
  const outcome = (p: Promise<unknown>) => p.then((v) => ({ value: v }), (e: Error & { code?: string }) => ({ code: e.code, message: e.message }));
  // one turn: a good reservation, one whose principal kind no message may carry, a negative
  // settlement, a good settlement and a decision row
  const bad = req('bad', 1_000);
  const good = outcome(sink.ledger.reserve(req('good', 1_000)));
  const unreadable = outcome(sink.ledger.reserve({ ...bad, principal: { ...bad.principal, kind: 'robot' as never } }));
  const negative = outcome(sink.ledger.settle({ id: 'held', at: AT, costMicros: -1, estimated: false, tokens: zero }));
  const settled = outcome(sink.ledger.settle({ id: 'held', at: AT, costMicros: 300, estimated: false, tokens: zero }));
  const decision = outcome(sink.commitDecision(auditRow({ request_id: 'd-1', ended_at: null, status: null, duration_ms: null, upstream_ms: null, bytes_out: 0 })));
  t.same(await good, { value: { ok: true } });
  t.match(await unreadable, { code: 'LEDGER_CALL_MALFORMED', message: /principal kind/ });
  t.match(await negative, { code: 'LEDGER_CALL_INVALID', message: /costMicros must be a non-negative integer/ });
  t.match(await settled, { value: { settled: true } });
  t.same(await decision, { value: undefined }, 'the decision row was committed');
  t.equal(sink.status().ok, true, 'the store is not taken for failing');
  await sink.flush();
  const db = openDatabase(file);
  dbs.push(db);
  t.same(db.prepare('SELECT id, state, cost_micros FROM ledger_requests ORDER BY id').all(), [
    { id: 'good', state: 'reserved', cost_micros: 0 },
    { id: 'held', state: 'settled', cost_micros: 300 },
  ]);
});

t.test('spend survives a restart; two connections share one budget', async (t) => {
  const file = path.join(dir, 'shared.db');
  const a = openDatabase(file);
  const b = openDatabase(file);
  dbs.push(a, b);
  const la = createSqliteLedger(a);
  const lb = createSqliteLedger(b);
  t.same(await la.reserve(req('one', 300_000)), { ok: true });
  t.match(await lb.reserve(req('two', 300_000)), { ok: false }, 'the other connection sees the reservation');
  await la.settle({ id: 'one', at: AT, costMicros: 250_000, estimated: false, tokens: zero });
  a.close();
  const c = openDatabase(file);
  dbs.push(c);
  const st = await createSqliteLedger(c).lineStates([{ scope: 'agent:bot', windowKey: 'day:2026-11-26' }]);
  t.same(st.get('agent:bot|day:2026-11-26'), { spentMicros: 250_000, reservedMicros: 0 });
  const row = c.prepare("SELECT state, cost_micros, estimated, model FROM ledger_requests WHERE id = 'one'").get();
  t.same(row, { state: 'settled', cost_micros: 250_000, estimated: 0, model: 'claude-haiku-4-5' });
});
