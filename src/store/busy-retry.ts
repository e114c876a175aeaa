// Owns: waiting out a BEGIN IMMEDIATE that SQLite refused with SQLITE_BUSY before the connection's
// busy timeout had passed. SQLite's busy handler covers most waits, but some WAL states end it
// early: measured on this machine, a TRUNCATE checkpoint on another connection (the gateway's WAL
// checkpointer thread) made the audit writer's BEGIN IMMEDIATE fail after about 80 ms against a
// 5 s busy_timeout, and every decision in that batch was refused with 503. Only a BEGIN that
// failed is tried again: the transaction's function had not started, so nothing ran twice.
import type BetterSqlite3 from 'better-sqlite3';

const budgets = new WeakMap<BetterSqlite3.Database, number>();

/** Records how long a BEGIN on `db` may keep trying (its busy_timeout; set by openDatabase). */
export function setBusyBudget(db: BetterSqlite3.Database, ms: number): void {
  budgets.set(db, Math.max(0, ms));
}

export function isBusyError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** Pauses between attempts, in ms (then the last one, repeated): short first, as SQLite's own handler. */
const BACKOFF_MS = [1, 2, 5, 10, 20, 25, 50];
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  // Blocks this thread, as SQLite's busy handler does while it waits.
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Calls `attempt` — which starts a transaction in IMMEDIATE mode and calls `began()` first thing
 * inside it — again while it fails with SQLITE_BUSY before `began()` was called, until the
 * connection's busy budget is spent; then the last error is thrown. Each retry lets SQLite's own
 * busy handler wait only for what is left of the budget, so the whole call waits about the budget,
 * not a busy timeout per attempt. `clock` (monotonic, ms) is for tests.
 */
export function retryBusyBegin<T>(db: BetterSqlite3.Database, attempt: (began: () => void) => T, clock: () => number = () => performance.now()): T {
  const budget = budgets.get(db) ?? 0;
  const start = clock();
  let narrowed = false;
  try {
    for (let n = 0; ; n++) {
      let inside = false;
      try {
        return attempt(() => { inside = true; });
      } catch (err) {
        const waited = clock() - start;
        if (inside || !isBusyError(err) || waited >= budget) throw err;
        sleepSync(Math.min(BACKOFF_MS[Math.min(n, BACKOFF_MS.length - 1)] as number, budget - waited));
        const left = Math.max(0, Math.floor(budget - (clock() - start)));
        db.pragma(`busy_timeout = ${left}`);
        narrowed = true;
      }
    }
  } finally {
    if (narrowed && db.open) db.pragma(`busy_timeout = ${Math.trunc(budget)}`);
  }
}

/**
 * better-sqlite3's `db.transaction(fn)` run in IMMEDIATE mode with its BEGIN retried as above;
 * inside another transaction, a savepoint of it (no BEGIN of its own). Build once, call per use.
 */
export function immediateTransaction<A extends unknown[], T>(db: BetterSqlite3.Database, fn: (...a: A) => T): (...a: A) => T {
  let began = () => {};
  const tx = db.transaction((...a: A): T => {
    began();
    return fn(...a);
  });
  return (...a: A): T => {
    if (db.inTransaction) return tx(...a);
    return retryBusyBegin(db, (b) => {
      began = b;
      return tx.immediate(...a);
    });
  };
}
