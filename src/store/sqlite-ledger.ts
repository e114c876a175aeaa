// Owns: the Ledger on tollgate.db (tables ledger_requests, budget_counters, budget_thresholds;
// migration 3). Every read-modify-write runs in one BEGIN IMMEDIATE transaction, so concurrent
// admissions — in this process or another on the same file — serialise on the write lock and can
// never both take the last of a budget; a connection decides on lines it holds in memory only
// while no other connection has committed since it read them.
import { assertMicros, lineKey, type Ledger, type LedgerLineRef, type LineChange, type SettleOutcome, type SettleRequest } from '../ledger/ledger.ts';
import type { AdmissionLine, LineAdmission, ReservationHead } from '../ledger/ledger-wire.ts';
import { checkAdmission, type BudgetLine, type LineState } from '../metering/budget.ts';
import { immediateTransaction } from './busy-retry.ts';
import type { Database } from './database.ts';

interface OpenRow { id: string; reserved_micros: number; lines: string; state: string }

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

/**
 * The writer thread's extras: `inBatch` runs several calls inside the caller's transaction and
 * writes the budget lines they changed once, at its end; `forget` drops what this connection
 * holds in memory (the caller's transaction rolled back after calls had changed it).
 */
export type SyncLedgerWriter = SyncLedger & {
  /** `reserve` as the proxy thread sends it (src/ledger/ledger-wire.ts): a refusal names its line by index. */
  reserveLines(r: ReservationHead, lines: readonly AdmissionLine[]): LineAdmission;
  inBatch<T>(fn: () => T): T;
  forget(): void;
};

/**
 * The database must have been opened with openDatabase (migration 3 applied).
 *
 * Budget lines are held in memory while this connection is the only one writing them: a
 * reservation is one INSERT (its ledger_requests row), a settlement one UPDATE of that row, and
 * the lines a transaction changed are written once, before it commits, with their new totals —
 * so budget_counters always holds exactly what the committed rows add up to. Whenever another
 * connection has committed since (PRAGMA data_version, read under the write lock), the lines are
 * read again before anything is decided on them. data_version does not see writes made on this
 * same connection: nothing else may write the ledger tables through it (the writer thread's
 * connection has this one ledger).
 */
export function createSqliteLedgerSync(db: Database): SyncLedgerWriter {
  const getCounter = db.prepare<[string, string], [number, number]>('SELECT spent_micros, reserved_micros FROM budget_counters WHERE scope = ? AND window_key = ?').raw(true);
  const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck(true);
  // Prepared once per row count (positional parameters: binding is markedly cheaper than by name).
  const MAX_ROWS = 32;
  const writeLinesStatements = new Map<number, ReturnType<typeof db.prepare<unknown[]>>>();
  const writeLinesFor = (n: number) => {
    let st = writeLinesStatements.get(n);
    if (st === undefined) {
      st = db.prepare<unknown[]>(
        `INSERT INTO budget_counters (scope, window_key, spent_micros, reserved_micros) VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?)').join(', ')}
         ON CONFLICT (scope, window_key) DO UPDATE SET spent_micros = excluded.spent_micros, reserved_micros = excluded.reserved_micros`,
      );
      writeLinesStatements.set(n, st);
    }
    return st;
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

  // --- what this connection holds: budget lines (valid for `version`), the lines changed in the
  // open transaction, and the reservations it made (so a settlement needs no read back)
  const lines = new Map<string, { ref: LedgerLineRef; state: LineState }>();
  let version: number | undefined;
  const changed = new Set<string>();
  const held = new Map<string, { refs: LedgerLineRef[]; amount: number }>();
  const MAX_HELD = 100_000;
  // past windows' lines are read again when needed: memory holds at most this many between changes
  const MAX_LINES = 10_000;
  let batching = false;

  const forget = () => {
    lines.clear();
    changed.clear();
    held.clear();
    version = undefined;
  };
  /** Under the write lock: drop the lines when another connection committed since they were read. */
  const fresh = () => {
    const v = dataVersion.get() as number;
    if (v !== version) {
      // under the write lock no other connection commits: never in the middle of a transaction
      if (changed.size > 0) throw new Error('budget lines changed by another connection inside an open transaction');
      // (`held` stays: a reservation another connection settled meanwhile no longer matches
      // `state = 'reserved'`, so it is never charged twice)
      lines.clear();
      version = v;
    } else if (changed.size === 0 && lines.size > MAX_LINES) {
      lines.clear();
    }
  };
  const line = (ref: LedgerLineRef) => {
    const k = lineKey(ref);
    let l = lines.get(k);
    if (l === undefined) {
      const row = getCounter.get(ref.scope, ref.windowKey);
      l = { ref: { scope: ref.scope, windowKey: ref.windowKey }, state: { spentMicros: row?.[0] ?? 0, reservedMicros: row?.[1] ?? 0 } };
      lines.set(k, l);
    }
    return l;
  };
  /** Writes the changed lines' totals (inside the transaction that changed them). */
  const writeLines = () => {
    if (changed.size === 0) return;
    const keys = [...changed];
    changed.clear();
    for (let i = 0; i < keys.length; i += MAX_ROWS) {
      const part = keys.slice(i, i + MAX_ROWS);
      const args: unknown[] = [];
      for (const k of part) {
        const l = lines.get(k) as { ref: LedgerLineRef; state: LineState };
        args.push(l.ref.scope, l.ref.windowKey, l.state.spentMicros, l.state.reservedMicros);
      }
      writeLinesFor(part.length).run(args);
    }
  };
  /**
   * Runs `fn` in a transaction of its own, writing its lines at the end — or, inside `inBatch`, in a
   * savepoint of the batch's transaction, which writes them. Inside someone else's transaction
   * without `inBatch` it refuses: a later rollback there would leave memory ahead of the file.
   */
  const transact = <A extends unknown[], T>(fn: (...a: A) => T) => {
    // a savepoint of the batch's transaction inside inBatch
    const tx = immediateTransaction(db, (...a: A): T => {
      fresh();
      const out = fn(...a);
      if (!batching) writeLines();
      return out;
    });
    return (...a: A): T => {
      if (db.inTransaction && !batching) throw new Error('a ledger call inside a transaction must run in inBatch');
      try {
        return tx(...a);
      } catch (err) {
        // Rolled back. A call changes memory only after everything that can fail has succeeded, so
        // within a batch the failed call left memory as it was; alone, its lines were being
        // written when it failed, and memory may be ahead of the file.
        if (!batching) forget();
        throw err;
      }
    };
  };

  const moveToSpend = (refs: readonly LedgerLineRef[], reservedMicros: number, costMicros: number): LineChange[] =>
    refs.map((ref) => {
      const l = line(ref);
      const before = l.state.spentMicros;
      l.state.reservedMicros = Math.max(0, l.state.reservedMicros - reservedMicros);
      l.state.spentMicros = before + costMicros;
      changed.add(lineKey(ref));
      return { ...ref, spentBeforeMicros: before, spentAfterMicros: l.state.spentMicros };
    });

  type Open = { refs: LedgerLineRef[]; amount: number };
  /** A stored open reservation, its lines read (before anything is written: nothing fails after). */
  const openFromRow = (row: OpenRow): Open => {
    const open = { refs: parseRefs(row.lines, row.id), amount: row.reserved_micros };
    for (const ref of open.refs) line(ref);
    return open;
  };
  /** The open reservation `id` (as this connection made it, else as stored), its lines read. */
  const openReservation = (id: string): Open | undefined => {
    const mine = held.get(id);
    if (mine === undefined) {
      const row = getOpen.get(id);
      return row ? openFromRow(row) : undefined;
    }
    for (const ref of mine.refs) line(ref);
    return mine;
  };

  type Charge = { at: number; costMicros: number; estimated: boolean; input: number; output: number; cacheRead: number; cacheWrite: number; model: string | undefined };
  /** Marks the row settled (what can fail); the caller then moves the lines (what cannot). */
  const markOne = (id: string, s: Charge): boolean => {
    const done = markSettled.run(s.at, s.costMicros, s.estimated ? 1 : 0, s.input, s.output, s.cacheRead, s.cacheWrite, s.model ?? null, id).changes === 1;
    held.delete(id);
    return done;
  };

  const settleOne = (id: string, s: Charge): SettleOutcome => {
    const open = openReservation(id);
    if (!open || !markOne(id, s)) return { settled: false, lines: [] };
    return { settled: true, lines: moveToSpend(open.refs, open.amount, s.costMicros) };
  };

  const reserve = transact((r: ReservationHead, wanted: readonly AdmissionLine[]): LineAdmission => {
    // each wanted line with the state this connection holds for it (an AdmissionLine is a line ref)
    const counted = wanted.map((w) => ({ line: w, state: line(w).state }));
    const verdict = checkAdmission(counted, r.amountMicros);
    if (!verdict.ok) return { ok: false, index: wanted.indexOf(verdict.line), state: { ...verdict.state } };
    const refs = wanted.map((w) => ({ scope: w.scope, windowKey: w.windowKey }));
    insertRequest.run(
      r.id, r.at, r.principal.kind, r.principal.subject, r.principal.team, r.principal.agent ?? null, r.principal.project ?? null,
      r.provider, r.model, r.amountMicros, JSON.stringify(refs.map((x) => [x.scope, x.windowKey])),
    );
    for (const c of counted) {
      c.state.reservedMicros += r.amountMicros;
      changed.add(lineKey(c.line));
    }
    if (held.size >= MAX_HELD) held.clear(); // settlements then read their row back
    held.set(r.id, { refs, amount: r.amountMicros });
    return { ok: true };
  });
  const settle = transact((s: SettleRequest): SettleOutcome => settleOne(s.id, {
    at: s.at, costMicros: s.costMicros, estimated: s.estimated, model: s.model,
    input: s.tokens.inputTokens, output: s.tokens.outputTokens, cacheRead: s.tokens.cacheReadTokens, cacheWrite: s.tokens.cacheWriteTokens,
  }));
  const release = transact((id: string, at: number): boolean => {
    const open = openReservation(id);
    if (!open) return false;
    const done = markReleased.run(at, id).changes === 1;
    held.delete(id);
    if (!done) return false;
    moveToSpend(open.refs, open.amount, 0);
    return true;
  });
  const settleOpen = transact((at: number): number => {
    // every row marked first (what can fail), then the lines moved (what cannot)
    const marked: Open[] = [];
    for (const row of listOpen.all()) {
      const open = openFromRow(row);
      if (markOne(row.id, { at, costMicros: row.reserved_micros, estimated: true, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, model: undefined })) marked.push(open);
    }
    for (const open of marked) moveToSpend(open.refs, open.amount, open.amount);
    return marked.length;
  });

  return {
    reserve(r) {
      assertMicros(r.amountMicros, 'amountMicros');
      const out = reserve(r, r.lines.map((l) => ({ scope: l.scope, windowKey: l.window.key, limitMicros: l.limitMicros })));
      return out.ok ? out : { ok: false, line: r.lines[out.index] as BudgetLine, state: out.state, amountMicros: r.amountMicros };
    },
    reserveLines(r, lines) {
      assertMicros(r.amountMicros, 'amountMicros');
      return reserve(r, lines);
    },
    settle(s) {
      assertMicros(s.costMicros, 'costMicros');
      return settle(s);
    },
    release(id, at) {
      return release(id, at);
    },
    lineStates(refs) {
      // from the file (another process, the CLI, reads what the gateway committed), except lines
      // this connection changed in a transaction still open
      return new Map(refs.map((r) => {
        const mine = changed.has(lineKey(r)) ? lines.get(lineKey(r)) : undefined;
        if (mine) return [lineKey(r), { ...mine.state }];
        const row = getCounter.get(r.scope, r.windowKey);
        return [lineKey(r), { spentMicros: row?.[0] ?? 0, reservedMicros: row?.[1] ?? 0 }];
      }));
    },
    markThreshold(ref, percent, at) {
      return insertThreshold.run(ref.scope, ref.windowKey, percent, at).changes === 1;
    },
    settleOpenReservations(at) {
      return settleOpen(at);
    },
    inBatch(fn) {
      if (batching) return fn();
      // the lines are written at the end: every call must commit with them, in one transaction
      if (!db.inTransaction) throw new Error('inBatch needs a transaction open on the connection');
      batching = true;
      try {
        const out = fn();
        writeLines();
        return out;
      } catch (err) {
        forget();
        throw err;
      } finally {
        batching = false;
      }
    },
    forget,
  };
}
