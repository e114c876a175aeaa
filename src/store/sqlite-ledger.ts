// Owns: the Ledger on tollgate.db (tables ledger_requests, budget_counters, budget_thresholds;
// migration 3). Every read-modify-write runs in one BEGIN IMMEDIATE transaction, so concurrent
// admissions — in this process or another on the same file — serialise on the write lock and can
// never both take the last of a budget.
import { admissionLines, assertMicros, lineKey, type Ledger, type LedgerLineRef, type LineChange, type ReservationRequest, type ReserveOutcome, type SettleOutcome, type SettleRequest } from '../ledger/ledger.ts';
import { checkAdmission, type LineState } from '../metering/budget.ts';
import type { Database } from './database.ts';
import { inImmediateTransaction } from './database.ts';

interface CounterRow { spent_micros: number; reserved_micros: number }
interface OpenRow { id: string; reserved_micros: number; lines: string; state: string }

/** Thrown inside the reservation's transaction to roll its holds back. */
class Refused extends Error {
  constructor(readonly verdict: Extract<ReserveOutcome, { ok: false }>) {
    super('budget exceeded');
  }
}

function parseRefs(json: string, id: string): LedgerLineRef[] {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v)) throw new Error(`ledger_requests.lines of ${id} is not an array`);
  return v.map((x) => {
    if (!Array.isArray(x) || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw new Error(`ledger_requests.lines of ${id} is malformed`);
    return { scope: x[0], windowKey: x[1] };
  });
}

/** The Ledger's methods, synchronous (what the audit writer thread runs for the proxy). */
export type SyncLedger = { [K in keyof Ledger]: (...args: Parameters<Ledger[K]>) => Awaited<ReturnType<Ledger[K]>> };

/** The database must have been opened with openDatabase (migration 3 applied). */
export function createSqliteLedger(db: Database): Ledger {
  const l = createSqliteLedgerSync(db);
  return {
    reserve: async (r) => l.reserve(r),
    settle: async (s) => l.settle(s),
    release: async (id, at) => l.release(id, at),
    lineStates: async (refs) => l.lineStates(refs),
    markThreshold: async (ref, percent, at) => l.markThreshold(ref, percent, at),
    settleOpenReservations: async (at) => l.settleOpenReservations(at),
  };
}

/** The database must have been opened with openDatabase (migration 3 applied). */
export function createSqliteLedgerSync(db: Database): SyncLedger {
  const getCounter = db.prepare<[string, string], CounterRow>('SELECT spent_micros, reserved_micros FROM budget_counters WHERE scope = ? AND window_key = ?');
  // One statement for all of a request's lines (6: the organisation, the team, and the user or
  // agent, each monthly and daily; see budgetLinesFor), prepared once per line count. Positional parameters
  // throughout: binding is markedly cheaper than by name. This runs twice per metered request.
  const byLineCount = <T>(make: (n: number) => T): ((n: number) => T) => {
    const made = new Map<number, T>();
    return (n) => {
      let st = made.get(n);
      if (st === undefined) {
        st = make(n);
        made.set(n, st);
      }
      return st;
    };
  };
  const rowValues = (n: number, row: string) => Array.from({ length: n }, () => row).join(', ');
  // RETURNING rows come back as arrays (raw): no object per row to build.
  /** Holds the amount on every line, returning each line's [scope, window_key, spent, reserved] after it. */
  const addReserved = byLineCount((n) => db.prepare<unknown[], [string, string, number, number]>(
    `INSERT INTO budget_counters (scope, window_key, reserved_micros) VALUES ${rowValues(n, '(?, ?, ?)')}
     ON CONFLICT (scope, window_key) DO UPDATE SET reserved_micros = reserved_micros + excluded.reserved_micros
     RETURNING scope, window_key, spent_micros, reserved_micros`,
  ).raw(true));
  /** Moves a reservation to spend on every line, returning each line's [scope, window_key, spent] after it. */
  const applySettle = byLineCount((n) => db.prepare<unknown[], [string, string, number]>(
    `UPDATE budget_counters SET reserved_micros = max(0, reserved_micros - ?), spent_micros = spent_micros + ?
     WHERE (scope, window_key) IN (VALUES ${rowValues(n, '(?, ?)')}) RETURNING scope, window_key, spent_micros`,
  ).raw(true));
  const settleLines = (refs: readonly LedgerLineRef[], reservedMicros: number, costMicros: number): Map<string, number> => {
    const args: unknown[] = [reservedMicros, costMicros];
    for (const ref of refs) args.push(ref.scope, ref.windowKey);
    const after = new Map<string, number>();
    for (const [scope, windowKey, spent] of applySettle(refs.length).all(...args)) after.set(lineKey({ scope, windowKey }), spent);
    return after;
  };
  const insertRequest = db.prepare<unknown[]>(
    `INSERT INTO ledger_requests (id, state, created_at, principal_kind, subject, team, agent, project, provider, model, reserved_micros, lines)
     VALUES (?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const getOpen = db.prepare<[string], OpenRow>("SELECT id, reserved_micros, lines, state FROM ledger_requests WHERE id = ? AND state = 'reserved'");
  const listOpen = db.prepare<[], OpenRow>("SELECT id, reserved_micros, lines, state FROM ledger_requests WHERE state = 'reserved' ORDER BY created_at");
  const markSettled = db.prepare<unknown[]>(
    `UPDATE ledger_requests SET state = 'settled', settled_at = ?, cost_micros = ?, estimated = ?,
       input_tokens = ?, output_tokens = ?, cache_read_tokens = ?, cache_write_tokens = ?,
       model = coalesce(?, model)
     WHERE id = ? AND state = 'reserved'`,
  );
  const markReleased = db.prepare<[number, string]>("UPDATE ledger_requests SET state = 'released', settled_at = ? WHERE id = ? AND state = 'reserved'");
  const insertThreshold = db.prepare<[string, string, number, number]>('INSERT OR IGNORE INTO budget_thresholds (scope, window_key, percent, at) VALUES (?, ?, ?, ?)');

  const stateOf = (ref: LedgerLineRef): LineState => {
    const row = getCounter.get(ref.scope, ref.windowKey);
    return { spentMicros: row?.spent_micros ?? 0, reservedMicros: row?.reserved_micros ?? 0 };
  };

  const settleRow = (row: OpenRow, s: { at: number; costMicros: number; estimated: boolean; input: number; output: number; cacheRead: number; cacheWrite: number; model: string | undefined }): LineChange[] => {
    const refs = parseRefs(row.lines, row.id);
    const changed = markSettled.run(
      s.at, s.costMicros, s.estimated ? 1 : 0, s.input, s.output, s.cacheRead, s.cacheWrite, s.model ?? null, row.id,
    );
    if (changed.changes !== 1 || refs.length === 0) return [];
    const spentAfter = settleLines(refs, row.reserved_micros, s.costMicros);
    return refs.map((ref) => {
      // The counter row exists (the reservation created it), so RETURNING gives its spend after.
      const after = spentAfter.get(lineKey(ref)) ?? s.costMicros;
      return { ...ref, spentBeforeMicros: after - s.costMicros, spentAfterMicros: after };
    });
  };

  // Transaction functions made once (better-sqlite3 builds four wrappers per db.transaction call);
  // run with .immediate(), they are savepoints inside the writer thread's batch transaction.
  const reserveTx = db.transaction((r: ReservationRequest, refs: readonly LedgerLineRef[]): ReserveOutcome => {
    // Hold first, then check each line's state before the hold; a refusal rolls the hold back.
    const states = new Map<string, LineState>();
    if (refs.length > 0) {
      const args: unknown[] = [];
      for (const ref of refs) args.push(ref.scope, ref.windowKey, r.amountMicros);
      for (const [scope, windowKey, spent, reserved] of addReserved(refs.length).all(...args)) {
        states.set(lineKey({ scope, windowKey }), { spentMicros: spent, reservedMicros: reserved - r.amountMicros });
      }
    }
    const verdict = checkAdmission(admissionLines(r.lines, states), r.amountMicros);
    if (!verdict.ok) throw new Refused(verdict);
    insertRequest.run(
      r.id, r.at, r.principal.kind, r.principal.subject, r.principal.team, r.principal.agent ?? null, r.principal.project ?? null,
      r.provider, r.model, r.amountMicros, JSON.stringify(refs.map((x) => [x.scope, x.windowKey])),
    );
    return { ok: true };
  });
  const settleTx = db.transaction((s: SettleRequest): SettleOutcome => {
    const row = getOpen.get(s.id);
    if (!row) return { settled: false, lines: [] };
    const lines = settleRow(row, {
      at: s.at, costMicros: s.costMicros, estimated: s.estimated, model: s.model,
      input: s.tokens.inputTokens, output: s.tokens.outputTokens, cacheRead: s.tokens.cacheReadTokens, cacheWrite: s.tokens.cacheWriteTokens,
    });
    return { settled: lines.length > 0 || parseRefs(row.lines, row.id).length === 0, lines };
  });
  const releaseTx = db.transaction((id: string, at: number): boolean => {
    const row = getOpen.get(id);
    if (!row) return false;
    if (markReleased.run(at, id).changes !== 1) return false;
    const refs = parseRefs(row.lines, id);
    if (refs.length > 0) settleLines(refs, row.reserved_micros, 0);
    return true;
  });

  return {
    reserve(r) {
      assertMicros(r.amountMicros, 'amountMicros');
      const refs = r.lines.map((l) => ({ scope: l.scope, windowKey: l.window.key }));
      try {
        return reserveTx.immediate(r, refs);
      } catch (err) {
        if (err instanceof Refused) return err.verdict;
        throw err;
      }
    },
    settle(s) {
      assertMicros(s.costMicros, 'costMicros');
      return settleTx.immediate(s);
    },
    release(id, at) {
      return releaseTx.immediate(id, at);
    },
    lineStates(refs) {
      return new Map(refs.map((r) => [lineKey(r), stateOf(r)]));
    },
    markThreshold(ref, percent, at) {
      return insertThreshold.run(ref.scope, ref.windowKey, percent, at).changes === 1;
    },
    settleOpenReservations(at) {
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
