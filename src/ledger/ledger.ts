// Owns: the spend ledger contract — reserve a request's worst case on every budget line at once
// (refusing when a limit would be passed), settle it to the actual cost exactly once, or release
// it — and the in-memory twin used by unit tests. The SQLite implementation is
// src/store/sqlite-ledger.ts; a shared backend for several replicas would implement this too.
import { checkAdmission, type AdmissionResult, type BudgetLine, type LineState } from '../metering/budget.ts';
import type { TokenCounts } from '../metering/usage-parser.ts';

export interface LedgerLineRef {
  scope: string;
  windowKey: string;
}

export interface LedgerPrincipal {
  kind: 'user' | 'agent' | 'anonymous';
  subject: string;
  team: string;
  agent?: string | undefined;
  project?: string | undefined;
}

export interface ReservationRequest {
  /** the request id (one reservation per request) */
  id: string;
  at: number;
  amountMicros: number;
  lines: readonly BudgetLine[];
  principal: LedgerPrincipal;
  provider: string;
  model: string;
}

export type ReserveOutcome = { ok: true } | Extract<AdmissionResult, { ok: false }>;

export interface SettleRequest {
  id: string;
  at: number;
  costMicros: number;
  estimated: boolean;
  tokens: TokenCounts;
  /** the model the response named, when it differs from the request's */
  model?: string | undefined;
}

export interface LineChange extends LedgerLineRef {
  spentBeforeMicros: number;
  spentAfterMicros: number;
}

export interface SettleOutcome {
  /** false when the request was not (or no longer) reserved: nothing was charged twice */
  settled: boolean;
  lines: LineChange[];
}

export interface Ledger {
  /** Atomically checks every line with a limit and, when all fit, holds amountMicros on every line. */
  reserve(r: ReservationRequest): Promise<ReserveOutcome>;
  /** Replaces the reservation by the cost on the lines of ADMISSION (once; later calls are no-ops). */
  settle(s: SettleRequest): Promise<SettleOutcome>;
  /** Drops the reservation without a charge (the upstream never answered). */
  release(id: string, at: number): Promise<boolean>;
  lineStates(refs: readonly LedgerLineRef[]): Promise<Map<string, LineState>>;
  /** Records that a line crossed a threshold; true the first time only (per line and percent). */
  markThreshold(ref: LedgerLineRef, percent: number, at: number): Promise<boolean>;
  /** Crash recovery: charges every reservation still open in full, flagged estimated. Returns how many. */
  settleOpenReservations(at: number): Promise<number>;
}

export function lineKey(ref: LedgerLineRef): string {
  return `${ref.scope}|${ref.windowKey}`;
}

export function admissionLines(lines: readonly BudgetLine[], states: ReadonlyMap<string, LineState>): Array<{ line: BudgetLine; state: LineState }> {
  return lines.map((line) => ({ line, state: states.get(lineKey({ scope: line.scope, windowKey: line.window.key })) ?? { spentMicros: 0, reservedMicros: 0 } }));
}

export function assertMicros(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    // (a code: the audit writer answers the one call, it does not take it for the store failing)
    throw Object.assign(new RangeError(`${what} must be a non-negative integer of micro-dollars, got ${n}`), { code: 'LEDGER_CALL_INVALID' });
  }
}

interface MemoryEntry {
  state: 'reserved' | 'settled' | 'released';
  amount: number;
  cost: number;
  estimated: boolean;
  refs: LedgerLineRef[];
}

/** The in-memory twin: same semantics, no persistence. `failNext` simulates a store failure. */
export function createMemoryLedger(): Ledger & { failNext: Error | undefined; entries: ReadonlyMap<string, Readonly<MemoryEntry>> } {
  const counters = new Map<string, LineState>();
  const entries = new Map<string, MemoryEntry>();
  const thresholds = new Set<string>();
  const counter = (ref: LedgerLineRef) => {
    const k = lineKey(ref);
    let c = counters.get(k);
    if (!c) {
      c = { spentMicros: 0, reservedMicros: 0 };
      counters.set(k, c);
    }
    return c;
  };
  const self = {
    failNext: undefined as Error | undefined,
    entries,
    maybeFail() {
      const e = self.failNext;
      if (e) {
        self.failNext = undefined;
        throw e;
      }
    },
    async reserve(r: ReservationRequest): Promise<ReserveOutcome> {
      self.maybeFail();
      assertMicros(r.amountMicros, 'amountMicros');
      if (entries.has(r.id)) throw new Error(`request ${r.id} is already in the ledger`);
      const refs = r.lines.map((l) => ({ scope: l.scope, windowKey: l.window.key }));
      const states = new Map(refs.map((ref) => [lineKey(ref), { ...counter(ref) }]));
      const verdict = checkAdmission(admissionLines(r.lines, states), r.amountMicros);
      if (!verdict.ok) return verdict;
      for (const ref of refs) counter(ref).reservedMicros += r.amountMicros;
      entries.set(r.id, { state: 'reserved', amount: r.amountMicros, cost: 0, estimated: false, refs });
      return { ok: true };
    },
    async settle(s: SettleRequest): Promise<SettleOutcome> {
      self.maybeFail();
      assertMicros(s.costMicros, 'costMicros');
      const e = entries.get(s.id);
      if (!e || e.state !== 'reserved') return { settled: false, lines: [] };
      const lines: LineChange[] = [];
      for (const ref of e.refs) {
        const c = counter(ref);
        c.reservedMicros = Math.max(0, c.reservedMicros - e.amount);
        lines.push({ ...ref, spentBeforeMicros: c.spentMicros, spentAfterMicros: c.spentMicros + s.costMicros });
        c.spentMicros += s.costMicros;
      }
      Object.assign(e, { state: 'settled', cost: s.costMicros, estimated: s.estimated });
      return { settled: true, lines };
    },
    async release(id: string): Promise<boolean> {
      self.maybeFail();
      const e = entries.get(id);
      if (!e || e.state !== 'reserved') return false;
      for (const ref of e.refs) {
        const c = counter(ref);
        c.reservedMicros = Math.max(0, c.reservedMicros - e.amount);
      }
      e.state = 'released';
      return true;
    },
    async lineStates(refs: readonly LedgerLineRef[]): Promise<Map<string, LineState>> {
      self.maybeFail();
      return new Map(refs.map((r) => [lineKey(r), { ...(counters.get(lineKey(r)) ?? { spentMicros: 0, reservedMicros: 0 }) }]));
    },
    async markThreshold(ref: LedgerLineRef, percent: number): Promise<boolean> {
      self.maybeFail();
      const k = `${lineKey(ref)}|${percent}`;
      if (thresholds.has(k)) return false;
      thresholds.add(k);
      return true;
    },
    async settleOpenReservations(at: number): Promise<number> {
      let n = 0;
      for (const [id, e] of entries) {
        if (e.state !== 'reserved') continue;
        await self.settle({ id, at, costMicros: e.amount, estimated: true, tokens: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 } });
        n++;
      }
      return n;
    },
  };
  return self;
}
