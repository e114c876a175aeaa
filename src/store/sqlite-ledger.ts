// Owns: the Ledger on tollgate.db (tables ledger_requests, budget_counters, budget_thresholds;
// migration 3). Every read-modify-write runs in one BEGIN IMMEDIATE transaction, so concurrent
// admissions — in this process or another on the same file — serialise on the write lock and can
// never both take the last of a budget.
import { admissionLines, assertMicros, lineKey, type Ledger, type LedgerLineRef, type LineChange, type ReserveOutcome } from '../ledger/ledger.ts';
import { checkAdmission, type LineState } from '../metering/budget.ts';
import type { Database } from './database.ts';
import { inImmediateTransaction } from './database.ts';

interface CounterRow { spent_micros: number; reserved_micros: number }
interface OpenRow { id: string; reserved_micros: number; lines: string; state: string }

function parseRefs(json: string, id: string): LedgerLineRef[] {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v)) throw new Error(`ledger_requests.lines of ${id} is not an array`);
  return v.map((x) => {
    if (!Array.isArray(x) || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw new Error(`ledger_requests.lines of ${id} is malformed`);
    return { scope: x[0], windowKey: x[1] };
  });
}

/** The database must have been opened with openDatabase (migration 3 applied). */
export function createSqliteLedger(db: Database): Ledger {
  const getCounter = db.prepare<[string, string], CounterRow>('SELECT spent_micros, reserved_micros FROM budget_counters WHERE scope = ? AND window_key = ?');
  const addReserved = db.prepare<[{ scope: string; window_key: string; amount: number }]>(
    `INSERT INTO budget_counters (scope, window_key, reserved_micros) VALUES (@scope, @window_key, @amount)
     ON CONFLICT (scope, window_key) DO UPDATE SET reserved_micros = reserved_micros + @amount`,
  );
  const applySettle = db.prepare<[number, number, string, string]>(
    'UPDATE budget_counters SET reserved_micros = max(0, reserved_micros - ?), spent_micros = spent_micros + ? WHERE scope = ? AND window_key = ?',
  );
  const insertRequest = db.prepare(
    `INSERT INTO ledger_requests (id, state, created_at, principal_kind, subject, team, agent, project, provider, model, reserved_micros, lines)
     VALUES (@id, 'reserved', @created_at, @principal_kind, @subject, @team, @agent, @project, @provider, @model, @reserved_micros, @lines)`,
  );
  const getOpen = db.prepare<[string], OpenRow>("SELECT id, reserved_micros, lines, state FROM ledger_requests WHERE id = ? AND state = 'reserved'");
  const listOpen = db.prepare<[], OpenRow>("SELECT id, reserved_micros, lines, state FROM ledger_requests WHERE state = 'reserved' ORDER BY created_at");
  const markSettled = db.prepare(
    `UPDATE ledger_requests SET state = 'settled', settled_at = @at, cost_micros = @cost, estimated = @estimated,
       input_tokens = @input, output_tokens = @output, cache_read_tokens = @cache_read, cache_write_tokens = @cache_write,
       model = coalesce(@model, model)
     WHERE id = @id AND state = 'reserved'`,
  );
  const markReleased = db.prepare<[number, string]>("UPDATE ledger_requests SET state = 'released', settled_at = ? WHERE id = ? AND state = 'reserved'");
  const insertThreshold = db.prepare<[string, string, number, number]>('INSERT OR IGNORE INTO budget_thresholds (scope, window_key, percent, at) VALUES (?, ?, ?, ?)');

  const stateOf = (ref: LedgerLineRef): LineState => {
    const row = getCounter.get(ref.scope, ref.windowKey);
    return { spentMicros: row?.spent_micros ?? 0, reservedMicros: row?.reserved_micros ?? 0 };
  };

  const settleRow = (row: OpenRow, s: { at: number; costMicros: number; estimated: boolean; input: number; output: number; cacheRead: number; cacheWrite: number; model: string | undefined }): LineChange[] => {
    const refs = parseRefs(row.lines, row.id);
    const changed = markSettled.run({
      id: row.id, at: s.at, cost: s.costMicros, estimated: s.estimated ? 1 : 0,
      input: s.input, output: s.output, cache_read: s.cacheRead, cache_write: s.cacheWrite, model: s.model ?? null,
    });
    if (changed.changes !== 1) return [];
    const lines: LineChange[] = [];
    for (const ref of refs) {
      const before = stateOf(ref);
      applySettle.run(row.reserved_micros, s.costMicros, ref.scope, ref.windowKey);
      lines.push({ ...ref, spentBeforeMicros: before.spentMicros, spentAfterMicros: before.spentMicros + s.costMicros });
    }
    return lines;
  };

  return {
    async reserve(r) {
      assertMicros(r.amountMicros, 'amountMicros');
      return inImmediateTransaction(db, (): ReserveOutcome => {
        const refs = r.lines.map((l) => ({ scope: l.scope, windowKey: l.window.key }));
        const states = new Map(refs.map((ref) => [lineKey(ref), stateOf(ref)]));
        const verdict = checkAdmission(admissionLines(r.lines, states), r.amountMicros);
        if (!verdict.ok) return verdict;
        insertRequest.run({
          id: r.id, created_at: r.at, principal_kind: r.principal.kind, subject: r.principal.subject, team: r.principal.team,
          agent: r.principal.agent ?? null, project: r.principal.project ?? null, provider: r.provider, model: r.model,
          reserved_micros: r.amountMicros, lines: JSON.stringify(refs.map((x) => [x.scope, x.windowKey])),
        });
        for (const ref of refs) addReserved.run({ scope: ref.scope, window_key: ref.windowKey, amount: r.amountMicros });
        return { ok: true };
      });
    },
    async settle(s) {
      assertMicros(s.costMicros, 'costMicros');
      return inImmediateTransaction(db, () => {
        const row = getOpen.get(s.id);
        if (!row) return { settled: false, lines: [] };
        const lines = settleRow(row, {
          at: s.at, costMicros: s.costMicros, estimated: s.estimated, model: s.model,
          input: s.tokens.inputTokens, output: s.tokens.outputTokens, cacheRead: s.tokens.cacheReadTokens, cacheWrite: s.tokens.cacheWriteTokens,
        });
        return { settled: lines.length > 0 || parseRefs(row.lines, row.id).length === 0, lines };
      });
    },
    async release(id, at) {
      return inImmediateTransaction(db, () => {
        const row = getOpen.get(id);
        if (!row) return false;
        if (markReleased.run(at, id).changes !== 1) return false;
        for (const ref of parseRefs(row.lines, id)) applySettle.run(row.reserved_micros, 0, ref.scope, ref.windowKey);
        return true;
      });
    },
    async lineStates(refs) {
      return new Map(refs.map((r) => [lineKey(r), stateOf(r)]));
    },
    async markThreshold(ref, percent, at) {
      return insertThreshold.run(ref.scope, ref.windowKey, percent, at).changes === 1;
    },
    async settleOpenReservations(at) {
      return inImmediateTransaction(db, () => {
        let n = 0;
        for (const row of listOpen.all()) {
          settleRow(row, { at, costMicros: row.reserved_micros, estimated: true, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, model: undefined });
          n++;
        }
        return n;
      });
    },
  };
}
