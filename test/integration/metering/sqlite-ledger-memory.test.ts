// The SQLite ledger decides on budget lines it holds in memory and writes a transaction's lines
// once, before it commits. What must hold whatever happens: budget_counters on disk is exactly
// what the committed ledger_requests rows add up to (reserved = open reservations, spent = settled
// costs), and a connection never decides on lines another connection has changed since it read
// them. Checked on real tollgate.db files, two connections at once, with batches that fail and
// roll back.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createSqliteAuditSink } from '../../../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { createSqliteLedgerSync } from '../../../src/store/sqlite-ledger.ts';
import { row as auditRow } from '../../unit/audit/fixtures.ts';
import { AT, principal, req, zero } from '../../unit/ledger/ledger-contract.ts';
import { ledgerDrift } from '../../helpers/ledger-drift.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-ledger-mem-'));
const dbs: Database[] = [];
t.teardown(() => {
  for (const d of dbs) d.close();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
const open = (file: string) => {
  const db = openDatabase(file);
  dbs.push(db);
  return db;
};

const user = (s: string) => ({ kind: 'user' as const, subject: s, team: 'a' });


t.test('a connection holding lines in memory reads them again after another connection commits', async (t) => {
  const file = path.join(dir, `shared${n++}.db`);
  const dbA = open(file);
  const a = createSqliteLedgerSync(dbA);
  const b = createSqliteLedgerSync(open(file));
  t.same(a.reserve(req('a1', 100_000)), { ok: true }, 'a now holds the agent line (limit 500,000 a day)');
  t.same(b.reserve(req('b1', 300_000)), { ok: true }, 'b sees 100,000 held');
  t.match(a.reserve(req('a2', 150_000)), { ok: false, state: { reservedMicros: 400_000 } }, "a decides on b's reservation too: 100,000 + 300,000 + 150,000 > 500,000");
  t.equal(b.settle({ id: 'b1', at: AT, costMicros: 50_000, estimated: false, tokens: zero }).settled, true);
  t.same(a.reserve(req('a3', 340_000)), { ok: true }, "and on b's settlement: 100,000 held + 50,000 spent + 340,000 fit");
  t.same(b.settle({ id: 'a1', at: AT, costMicros: 10_000, estimated: false, tokens: zero }).settled, true, "b settles a's reservation (read back from its row)");
  t.same(a.settle({ id: 'a1', at: AT, costMicros: 99_999, estimated: false, tokens: zero }), { settled: false, lines: [] }, 'a, holding it in memory, does not charge it twice');
  t.same(ledgerDrift(dbA), []);
});

t.test('a batch writes its lines once, at its end; a failed call in it changes nothing; a rolled-back batch is forgotten', async (t) => {
  const file = path.join(dir, `batch${n++}.db`);
  const db = open(file);
  const l = createSqliteLedgerSync(db);
  // a batch as the writer thread runs it: several calls in one transaction
  db.transaction(() => l.inBatch(() => {
    t.same(l.reserve(req('r1', 100_000)), { ok: true });
    t.throws(() => l.reserve(req('r1', 100_000)), /UNIQUE|constraint/i, 'the same id twice: an error, answered on its own');
    t.same(l.reserve(req('r2', 50_000, { principal: user('u@x') })), { ok: true });
    t.equal(l.settle({ id: 'r1', at: AT, costMicros: 70_000, estimated: false, tokens: zero }).settled, true);
    t.same(l.lineStates([{ scope: 'agent:bot', windowKey: 'day:2026-11-26' }]).get('agent:bot|day:2026-11-26'), { spentMicros: 70_000, reservedMicros: 0 }, 'lineStates inside the batch sees its changes');
    const stored = db.prepare("SELECT count(*) AS n FROM budget_counters").get() as { n: number };
    t.equal(stored.n, 0, 'no line written before the batch ends');
  })).immediate();
  t.same(ledgerDrift(db), [], 'after the batch: consistent');
  t.equal((db.prepare("SELECT count(*) AS n FROM budget_counters").get() as { n: number }).n, 8, 'org, team, agent and user lines, day and month');

  // a batch that fails after its calls: the transaction rolls back, memory is forgotten
  t.throws(() => db.transaction(() => {
    l.inBatch(() => {
      t.same(l.reserve(req('r3', 200_000)), { ok: true });
      l.settle({ id: 'r2', at: AT, costMicros: 40_000, estimated: false, tokens: zero });
    });
    throw new Error('the audit rows of this batch failed');
  }).immediate(), /audit rows/);
  l.forget(); // what the writer does when its transaction rolled back
  t.same(ledgerDrift(db), [], 'rolled back: consistent');
  t.same(l.reserve(req('r4', 430_000)), { ok: true }, 'r3 never happened: 70,000 spent + 430,000 fit the agent line');
  t.equal(l.settle({ id: 'r2', at: AT, costMicros: 1, estimated: false, tokens: zero }).settled, true, 'r2 is still open');
  t.same(ledgerDrift(db), []);
});

t.test('random reservations, settlements, releases and failed batches on two connections stay consistent', async (t) => {
  const file = path.join(dir, `random${n++}.db`);
  const dbA = open(file);
  const dbB = open(file);
  const conns = [{ db: dbA, l: createSqliteLedgerSync(dbA) }, { db: dbB, l: createSqliteLedgerSync(dbB) }];
  let seed = 42;
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  const principals = [principal, user('u1@x'), user('u2@x')];
  const held: string[] = [];
  let next = 0;
  let refused = 0;
  let admitted = 0;
  let failedCalls = 0;
  const step = (c: (typeof conns)[number]) => {
    const op = rnd(5);
    if (op === 4 && held.length > 0) {
      // the same id again: the call fails on its own (a batch goes on)
      try {
        c.l.reserve(req(held[rnd(held.length)] as string, 1_000, { principal: principals[rnd(3)] }));
      } catch {
        failedCalls++;
      }
    } else if (op <= 1 || held.length === 0) {
      const id = `q${next++}`;
      const r = c.l.reserve(req(id, 1_000 + rnd(120_000), { principal: principals[rnd(3)] }));
      if (r.ok) {
        held.push(id);
        admitted++;
      } else refused++;
    } else {
      const id = held.splice(rnd(held.length), 1)[0] as string;
      if (op === 2) c.l.settle({ id, at: AT, costMicros: rnd(4_000), estimated: false, tokens: zero });
      else c.l.release(id, AT);
    }
  };
  for (let i = 0; i < 400; i++) {
    const c = conns[rnd(2)] as (typeof conns)[number];
    const kind = rnd(3);
    if (kind === 0) step(c);
    else {
      const snapshot = [...held];
      const fail = kind === 2 && rnd(2) === 0;
      try {
        c.db.transaction(() => {
          c.l.inBatch(() => { for (let k = 1 + rnd(5); k > 0; k--) step(c); });
          if (fail) throw new Error('batch fails');
        }).immediate();
      } catch {
        c.l.forget();
        held.splice(0, held.length, ...snapshot);
      }
    }
    if (i % 50 === 49) t.same(ledgerDrift(dbA), [], `consistent after ${i + 1} steps`);
  }
  t.same(ledgerDrift(dbA), [], 'consistent at the end');
  t.ok(refused > 0, `some reservations were refused (${refused}): limits were reached`);
  t.ok(admitted > 150, `and many admitted (${admitted}) throughout`);
  t.ok(failedCalls > 20, `failed calls inside and outside batches (${failedCalls})`);
  const stillOpen = dbA.prepare("SELECT count(*) AS n FROM ledger_requests WHERE state = 'reserved'").get() as { n: number };
  t.equal(stillOpen.n, held.length, 'every open reservation is one the test holds');
});

t.test('crash recovery inside a batch: every open reservation charged in full, once', async (t) => {
  const db = open(path.join(dir, `recover${n++}.db`));
  const l = createSqliteLedgerSync(db);
  t.same(l.reserve(req('o1', 100_000)), { ok: true });
  t.same(l.reserve(req('o2', 50_000, { principal: user('u@x') })), { ok: true });
  t.equal(l.settle({ id: 'o2', at: AT, costMicros: 20_000, estimated: false, tokens: zero }).settled, true);
  t.same(l.reserve(req('o3', 30_000)), { ok: true });
  const n2 = db.transaction(() => l.inBatch(() => l.settleOpenReservations(AT))).immediate();
  t.equal(n2, 2, 'o1 and o3');
  t.same(ledgerDrift(db), []);
  t.same(l.lineStates([{ scope: 'agent:bot', windowKey: 'day:2026-11-26' }]).get('agent:bot|day:2026-11-26'), { spentMicros: 130_000, reservedMicros: 0 });
  t.same(l.settle({ id: 'o1', at: AT, costMicros: 1, estimated: false, tokens: zero }), { settled: false, lines: [] }, 'not charged again');
  t.throws(() => l.inBatch(() => l.reserve(req('o4', 1))), /needs a transaction/, 'a batch outside a transaction is refused');
  t.equal((db.prepare("SELECT count(*) AS n FROM ledger_requests WHERE id = 'o4'").get() as { n: number }).n, 0);
});

t.test('the audit writer: a batch whose records fail is rolled back and its ledger calls rerun alone, counted once', async (t) => {
  const file = path.join(dir, `writer${n++}.db`);
  open(file).close();
  const sink = createSqliteAuditSink({ file, logger: createLogger({ level: 'error', write: () => undefined }) });
  t.teardown(() => sink.close());
  await sink.ready;
  // In one turn: a reservation and a decision row the store rejects (a CHECK constraint), so the
  // writer's batch transaction fails, rolls back, and the reservation runs again on its own.
  const reserved = sink.ledger.reserve(req('w1', 120_000));
  const bad = sink.commitDecision(auditRow({ request_id: 'bad-row', decision: 'bogus' as never })).then(() => 'written', (e: Error) => e.message);
  t.same(await reserved, { ok: true });
  t.match(await bad, /rejected/);
  t.same(await sink.ledger.reserve(req('w2', 10_000)), { ok: true });
  const db = open(file);
  t.same(ledgerDrift(db), [], 'counters equal the committed rows: the rolled-back attempt is not counted');
  const states = await sink.ledger.lineStates([{ scope: 'agent:bot', windowKey: 'day:2026-11-26' }]);
  t.same(states.get('agent:bot|day:2026-11-26'), { spentMicros: 0, reservedMicros: 130_000 });
});
