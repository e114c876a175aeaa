// Owns: the AuditSink of the gateway process — starts the writer thread
// (src/store/audit-writer-worker.ts) on its own connection to tollgate.db, hands it records over a
// MessagePort (coalesced per tick, in compact form: one flat array of column values per message),
// resolves each decision record when the writer acknowledges its commit (or rejects it: store
// failing, writer down, commit timeout — one sweep timer for all pending decisions, not one timer
// each), tracks health for /readyz, restarts a writer that died, and flushes on close. Also the
// gateway's Ledger: its operations run on the writer thread (see audit-writer-worker.ts).
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.ts';
import { LATE_LEDGER_METHODS, appendPacked, type AuditOp, type PackedBatch } from '../store/audit-writer.ts';
import type { AuditWorkerConfig, FromWorker, LedgerCall, LedgerMethod, ToWorker, WorkerCounters } from '../store/audit-writer-worker.ts';
import type { CheckpointerConfig, CheckpointerMessage } from '../store/wal-checkpointer-worker.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { packReservation, packSettlement, unpackReserveOutcome, unpackSettleOutcome } from '../ledger/ledger-wire.ts';
import type { AuditEventRow } from './audit-record.ts';
import { AuditUnavailableError, type AuditSink, type AuditSinkStatus } from './audit-sink.ts';

export interface SqliteAuditSinkOptions {
  /** tollgate.db (already migrated by openDatabase in the gateway). */
  file: string;
  logger: Logger;
  busyTimeoutMs?: number;
  groupCommitMs?: number;
  /** How long a completion may wait for a decision record to share its message (default 5 ms). */
  completionDelayMs?: number;
  /** A decision not acknowledged within this time is refused. Default busyTimeoutMs + 2000. */
  commitTimeoutMs?: number;
  retentionDays?: number;
  pruneIntervalMs?: number;
  pruneChunkRows?: number;
  maxRetryRecords?: number;
  retryIntervalMs?: number;
  walCapBytes?: number;
  /** How often the checkpointer thread runs a PASSIVE WAL checkpoint (default 500 ms). */
  checkpointIntervalMs?: number;
  /**
   * WAL size at which the checkpointer thread is started (default: 4 MiB, SQLite's own
   * auto-checkpoint size, or half the WAL cap when that is smaller; 0 starts it at once).
   */
  checkpointerStartBytes?: number;
  /** Records waiting in this process while the writer (re)starts; beyond it completions are dropped. */
  maxOutbox?: number;
}

export interface SqliteAuditSink extends AuditSink {
  /** Resolves when the writer has opened the database (and completed rows a crash left open). */
  ready: Promise<{ orphans: number }>;
  /** Prunes records older than `cutoff` (default: now − retention) right away. */
  prune(cutoff?: number): Promise<{ requests: number; events: number }>;
  /**
   * Sets SQLite limits on the writer's own connection: `maxPageCount` caps the file size (SQLITE_FULL
   * past it; null lifts the cap), `queryOnly` makes the connection read-only. Used by fault tests.
   */
  setStoreLimits(limits: { maxPageCount?: number | null; queryOnly?: boolean }): Promise<{ pageCount: number }>;
  /**
   * The spend ledger on tollgate.db, run by the writer thread: its transactions never contend for
   * the write lock with the audit writer, and never block the proxy's loop. Errors keep the SQLite
   * code (`code`); a writer that is down rejects with AuditUnavailableError.
   */
  ledger: Ledger;
}

const WORKER_URL = new URL('../store/audit-writer-worker.ts', import.meta.url);

const CHECKPOINTER_URL = new URL('../store/wal-checkpointer-worker.ts', import.meta.url);

/** Starts a worker; under tsx (a .ts entry) the worker registers tsx first (workers do not inherit loader hooks). */
function spawnWorker(url: URL, data: unknown, name: string): Worker {
  if (url.pathname.endsWith('.ts')) {
    const api = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
    return new Worker(code, { eval: true, workerData: data, name });
  }
  return new Worker(url, { workerData: data, name });
}

function spawnWriter(config: AuditWorkerConfig): Worker {
  return spawnWorker(WORKER_URL, config, 'tollgate-audit-writer');
}

interface Waiter { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined }
interface Decision { resolve: () => void; reject: (e: Error) => void; deadline: number }
interface LedgerWaiter { resolve: (v: unknown) => void; reject: (e: Error) => void; deadline: number }

const emptyBatch = (): PackedBatch => ({ k: [], id: [], v: [] });

export function createSqliteAuditSink(opts: SqliteAuditSinkOptions): SqliteAuditSink {
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  const config: AuditWorkerConfig = {
    file: opts.file,
    busyTimeoutMs,
    groupCommitMs: opts.groupCommitMs ?? 0,
    closeOrphans: true,
    retentionDays: opts.retentionDays ?? 0,
    pruneIntervalMs: opts.pruneIntervalMs ?? 3_600_000,
    pruneChunkRows: opts.pruneChunkRows ?? 5000,
    maxRetryRecords: opts.maxRetryRecords ?? 100_000,
    retryIntervalMs: opts.retryIntervalMs ?? 500,
    walCapBytes: opts.walCapBytes ?? 64 * 1024 * 1024,
  };
  const commitTimeoutMs = opts.commitTimeoutMs ?? busyTimeoutMs + 2000;
  const ledgerTimeoutMs = busyTimeoutMs * 2 + 5000;
  const maxOutbox = opts.maxOutbox ?? 100_000;
  const log = opts.logger;

  let worker: Worker | undefined;
  let online = false;
  let closing = false;
  let closed = false;
  let nextId = 1;
  let outbox: PackedBatch = emptyBatch();
  let outboxCalls: LedgerCall[] = [];
  let postScheduled = false;
  let completionTimer: NodeJS.Timeout | undefined;
  const completionDelayMs = opts.completionDelayMs ?? 5;
  // Insertion order is deadline order (every decision gets the same timeout): the sweep only looks
  // at the front of the map.
  const decisions = new Map<number, Decision>();
  // Ledger calls wait the same way (insertion order is deadline order here too).
  const ledgerWaiters = new Map<number, LedgerWaiter>();
  let sweepTimer: NodeJS.Timeout | undefined;
  const calls = new Map<number, Waiter>();
  let counters: WorkerCounters = { committed: 0, dropped: 0, retrying: 0 };
  let localDropped = 0;
  let failOpen = 0;
  let failedDecisions = 0;
  let failing: { code: string; message: string; at: number } | undefined;
  let lastError: AuditSinkStatus['lastError'];
  let sealed = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let readyResolve!: (v: { orphans: number }) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<{ orphans: number }>((res, rej) => { readyResolve = res; readyReject = rej; });
  ready.catch(() => undefined);

  const setFailing = (code: string, message: string) => {
    failing = { code, message, at: Date.now() };
    lastError = failing;
  };

  const failDecision = (id: number, code: string, message: string) => {
    const w = decisions.get(id);
    if (!w) return;
    decisions.delete(id);
    failedDecisions++;
    w.reject(new AuditUnavailableError(code, message));
  };

  const failLedgerCall = (id: number, err: Error) => {
    const w = ledgerWaiters.get(id);
    if (!w) return;
    ledgerWaiters.delete(id);
    w.reject(err);
  };

  /** One timer for every waiting decision and ledger call: it fires at the earliest deadline. */
  let sweepAt = Infinity;
  const armSweep = (deadline: number) => {
    if (sweepTimer && sweepAt <= deadline) return;
    if (sweepTimer) clearTimeout(sweepTimer);
    sweepAt = deadline;
    // Left running when everything is answered (it then finds nothing): no timer work per record.
    sweepTimer = setTimeout(sweep, Math.max(0, deadline - Date.now()) + 1);
    sweepTimer.unref();
  };

  const sweep = () => {
    sweepTimer = undefined;
    sweepAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [id, d] of decisions) {
      if (d.deadline > now) {
        next = d.deadline;
        break;
      }
      failDecision(id, 'AUDIT_TIMEOUT', `the audit store did not commit within ${commitTimeoutMs} ms`);
    }
    for (const [id, w] of ledgerWaiters) {
      if (w.deadline === Infinity) continue; // a late call: answered when the store takes it
      if (w.deadline > now) {
        next = Math.min(next, w.deadline);
        break;
      }
      failLedgerCall(id, new AuditUnavailableError('AUDIT_TIMEOUT', `the audit writer did not answer within ${ledgerTimeoutMs} ms`));
    }
    if (next !== Infinity) armSweep(next);
  };

  const postOutbox = () => {
    postScheduled = false;
    if (completionTimer) {
      clearTimeout(completionTimer);
      completionTimer = undefined;
    }
    if (!worker || !online || (outbox.k.length === 0 && outboxCalls.length === 0)) return;
    const batch = outbox;
    const calls = outboxCalls;
    outbox = emptyBatch();
    outboxCalls = [];
    worker.postMessage({ t: 'ops', batch, calls } satisfies ToWorker);
  };

  const enqueue = (op: AuditOp): boolean => {
    if (closed || sealed) return false;
    if (outbox.k.length >= maxOutbox && op.op !== 'open') return false;
    appendPacked(outbox, op);
    if (op.op === 'complete') postSoon();
    else schedulePost();
    return true;
  };

  /**
   * Nobody waits for a completion (or a settlement): it rides with the next decision's message, or
   * leaves within completionDelayMs. A crash meanwhile leaves the decision row open, and the next
   * start completes it as interrupted — the row of what went upstream is never lost — and charges
   * an unsettled reservation in full, flagged as an estimate.
   */
  const postSoon = () => {
    if (postScheduled || completionTimer) return;
    completionTimer = setTimeout(postOutbox, completionDelayMs);
    completionTimer.unref();
  };

  const schedulePost = () => {
    if (postScheduled) return;
    postScheduled = true;
    // At the end of this turn of the loop: every record the turn's I/O callbacks produced leaves
    // in one message (one commit in the writer) rather than one message per callback.
    setImmediate(postOutbox);
  };

  /**
   * A ledger call rides in the next message to the writer; the writer's result answers it. Only a
   * reservation holds a request back: settlements and threshold marks leave like completions.
   */
  const enqueueLedgerCall = (method: LedgerMethod, args: unknown[]): Promise<unknown> => {
    if (closed || sealed || !worker || !online) {
      return Promise.reject(new AuditUnavailableError('AUDIT_WRITER_DOWN', 'the audit writer is not running'));
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      // A settlement, release or threshold mark has no deadline: the writer keeps one the store
      // cannot take and runs it again when the store writes again (its answer comes then).
      const late = LATE_LEDGER_METHODS.has(method);
      const deadline = late ? Infinity : Date.now() + ledgerTimeoutMs;
      ledgerWaiters.set(id, { resolve, reject, deadline });
      outboxCalls.push({ id, method, args });
      if (late) postSoon();
      else {
        armSweep(deadline);
        schedulePost();
      }
    });
  };

  const call = (msg: ToWorker & { id: number }, timeoutMs: number): Promise<unknown> => {
    if (!worker || !online) return Promise.reject(new AuditUnavailableError('AUDIT_WRITER_DOWN', 'the audit writer is not running'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        calls.delete(msg.id);
        reject(new AuditUnavailableError('AUDIT_TIMEOUT', `the audit writer did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      calls.set(msg.id, { resolve, reject, timer });
      worker?.postMessage(msg);
    });
  };

  const onMessage = (m: FromWorker) => {
    switch (m.t) {
      case 'ready':
        online = true;
        if (m.orphans > 0) log.warn('audit rows left open by the last run were completed (crash or kill)', { rows: m.orphans });
        readyResolve({ orphans: m.orphans });
        postOutbox();
        return;
      case 'result':
        counters = m.counters;
        for (const a of m.ledger) {
          const w = ledgerWaiters.get(a.id);
          if (!w) continue;
          ledgerWaiters.delete(a.id);
          if (a.error !== undefined) w.reject(Object.assign(new Error(a.error), a.code === undefined ? {} : { code: a.code }));
          else w.resolve(a.value);
        }
        for (const id of m.acked) {
          const w = decisions.get(id);
          if (!w) continue;
          decisions.delete(id);
          w.resolve();
        }
        if (m.error) {
          setFailing(m.error.code, m.error.message);
          for (const id of m.failed) failDecision(id, m.error.code, m.error.message);
        } else {
          for (const id of m.failed) failDecision(id, 'AUDIT_RECORD_REJECTED', 'the audit store rejected the record');
          if (failing && failing.code !== 'AUDIT_WRITER_DOWN') {
            log.info('audit store recovered', { after_ms: Date.now() - failing.at, code: failing.code });
            failing = undefined;
          }
        }
        return;
      case 'done': {
        const w = calls.get(m.id);
        if (!w) return;
        calls.delete(m.id);
        if (w.timer) clearTimeout(w.timer);
        if (m.error !== undefined) w.reject(Object.assign(new Error(m.error), m.code === undefined ? {} : { code: m.code }));
        else w.resolve(m.value);
        return;
      }
      case 'log':
        log[m.level](m.msg, { component: 'audit', ...m.fields });
        return;
      case 'fatal':
        setFailing(m.code, m.message);
        log.error('the audit writer cannot open the database', { code: m.code, error: m.message });
        readyReject(new AuditUnavailableError(m.code, m.message));
        return;
    }
  };

  const start = (closeOrphans: boolean) => {
    online = false;
    const w = spawnWriter({ ...config, closeOrphans });
    worker = w;
    w.on('message', onMessage);
    w.on('error', (err) => {
      log.error('audit writer failed', { error: err.message });
    });
    w.on('exit', (code) => {
      if (worker !== w) return;
      worker = undefined;
      online = false;
      for (const id of [...decisions.keys()]) failDecision(id, 'AUDIT_WRITER_DOWN', 'the audit writer stopped');
      for (const id of [...ledgerWaiters.keys()]) failLedgerCall(id, new AuditUnavailableError('AUDIT_WRITER_DOWN', 'the audit writer stopped'));
      // Their callers have their answer (a reservation refused as budget_unavailable is never
      // released): the next writer must not run them.
      outboxCalls = [];
      for (const [id, c] of calls) { if (c.timer) clearTimeout(c.timer); c.reject(new Error('the audit writer stopped')); calls.delete(id); }
      if (closing) return;
      setFailing('AUDIT_WRITER_DOWN', `the audit writer stopped (exit ${code}); restarting`);
      log.error('audit writer stopped; restarting', { exit_code: code });
      restartTimer = setTimeout(() => { restartTimer = undefined; if (!closing) start(false); }, 1000);
      restartTimer.unref();
    });
  };
  start(true);
  // WAL checkpoints, and truncating a WAL past its cap, run on a thread of their own
  // (src/store/wal-checkpointer-worker.ts), never inside one of the writer's commits; a thread that
  // dies is started again.
  let checkpointer: Worker | undefined;
  // A thread that keeps dying (it cannot load, no thread can be made) is started again after 1 s,
  // then 2, 4 … up to a minute; one that ran a minute starts the count again.
  let restartDelayMs = 1000;
  const restartCheckpointer = () => {
    const again = setTimeout(() => { if (!closing) startCheckpointer(); }, restartDelayMs);
    again.unref();
    restartDelayMs = Math.min(restartDelayMs * 2, 60_000);
  };
  const startCheckpointer = () => {
    let c: Worker;
    try {
      c = spawnWorker(CHECKPOINTER_URL, { file: opts.file, intervalMs: checkpointIntervalMs, walCapBytes: config.walCapBytes } satisfies CheckpointerConfig, 'tollgate-wal-checkpointer');
    } catch (err) {
      log.warn('WAL checkpointer cannot start; trying again', { error: String(err), retry_ms: restartDelayMs });
      restartCheckpointer();
      return;
    }
    const startedAt = Date.now();
    checkpointer = c;
    c.on('message', (m: CheckpointerMessage) => {
      if (m.t === 'wal-blocked') log.warn('audit WAL is above its cap and a reader blocks the checkpoint', { wal_bytes: m.walBytes, cap_bytes: m.capBytes });
      else log.warn('the WAL checkpointer cannot open the database; the WAL grows until it can', { error: m.error });
    });
    c.on('error', (err) => log.warn('WAL checkpointer failed; starting it again', { error: err.message, retry_ms: restartDelayMs }));
    c.on('exit', () => {
      if (closing || checkpointer !== c) return;
      checkpointer = undefined;
      if (Date.now() - startedAt >= 60_000) restartDelayMs = 1000;
      restartCheckpointer();
    });
    c.unref();
  };
  // The thread starts once the WAL holds something worth moving (checkpointerStartBytes). Until
  // then a stat of the WAL every interval, on this thread, is all it costs: a gateway that writes
  // little (a laptop, a test) never starts a second database thread, and the writer checkpoints
  // what there is when it closes.
  const checkpointIntervalMs = opts.checkpointIntervalMs ?? 500;
  const checkpointerStartBytes = opts.checkpointerStartBytes ?? Math.min(4 * 1024 * 1024, Math.floor(config.walCapBytes / 2));
  let walWatch: NodeJS.Timeout | undefined;
  const walReached = (): boolean => {
    try {
      return statSync(`${opts.file}-wal`).size >= checkpointerStartBytes;
    } catch {
      return false; // no WAL file yet
    }
  };
  if (checkpointerStartBytes <= 0) startCheckpointer();
  else {
    walWatch = setInterval(() => {
      if (closing || !walReached()) return;
      clearInterval(walWatch);
      walWatch = undefined;
      startCheckpointer();
    }, checkpointIntervalMs);
    walWatch.unref();
  }

  const ledgerCall = (method: LedgerMethod, args: unknown[]): Promise<unknown> =>
    // queued at once when the writer runs (so a settlement and its completion share a message)
    online ? enqueueLedgerCall(method, args) : ready.then(() => enqueueLedgerCall(method, args));
  const ledger: Ledger = {
    // a reservation and a settlement travel in their compact form (src/ledger/ledger-wire.ts)
    reserve: (r) => ledgerCall('reserve', [packReservation(r)]).then((v) => unpackReserveOutcome(v, r)),
    settle: (s) => ledgerCall('settle', [packSettlement(s)]).then(unpackSettleOutcome),
    release: (id, at) => ledgerCall('release', [id, at]) as ReturnType<Ledger['release']>,
    lineStates: (refs) => ledgerCall('lineStates', [refs]) as ReturnType<Ledger['lineStates']>,
    markThreshold: (ref, percent, at) => ledgerCall('markThreshold', [ref, percent, at]) as ReturnType<Ledger['markThreshold']>,
    settleOpenReservations: (at) => ledgerCall('settleOpenReservations', [at]) as ReturnType<Ledger['settleOpenReservations']>,
  };

  const sink: SqliteAuditSink = {
    ready,
    ledger,
    commitDecision(row) {
      if (closed || closing) return Promise.reject(new AuditUnavailableError('AUDIT_CLOSED', 'the gateway is shutting down'));
      if (!worker) {
        failedDecisions++;
        return Promise.reject(new AuditUnavailableError('AUDIT_WRITER_DOWN', failing?.message ?? 'the audit writer is not running'));
      }
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + commitTimeoutMs;
        decisions.set(id, { resolve, reject, deadline });
        armSweep(deadline);
        enqueue({ op: 'open', id, row });
      });
    },
    complete(row) {
      if (!enqueue({ op: 'complete', id: nextId++, row })) localDropped++;
    },
    event(row: AuditEventRow) {
      if (!enqueue({ op: 'event', id: nextId++, row })) localDropped++;
    },
    noteFailOpen() {
      failOpen++;
    },
    status() {
      const ok = failing === undefined && (online || worker !== undefined) && !closed;
      return {
        ok,
        detail: closed ? 'closed'
          : failing ? `cannot write since ${new Date(failing.at).toISOString()}: ${failing.code} ${failing.message}`
          : online ? `writing; ${counters.committed} records committed` : 'starting',
        queued: outbox.k.length + outboxCalls.length + decisions.size + counters.retrying,
        dropped: counters.dropped + localDropped,
        failedDecisions,
        failOpen,
        committed: counters.committed,
        lastError,
      };
    },
    async flush() {
      await ready.catch(() => undefined);
      postOutbox();
      if (!worker || !online) return;
      await call({ t: 'flush', id: nextId++ }, busyTimeoutMs * 2 + 5000).catch(() => undefined);
    },
    prune(cutoff) {
      return call({ t: 'prune', id: nextId++, cutoff }, 600_000) as Promise<{ requests: number; events: number }>;
    },
    setStoreLimits(limits) {
      return call({ t: 'limits', id: nextId++, ...limits }, 10_000) as Promise<{ pageCount: number }>;
    },
    async close() {
      if (closed || closing) return;
      // Exchanges ended by the proxy's shutdown report on the next turns of the loop: let them in.
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      closing = true;
      if (restartTimer) clearTimeout(restartTimer);
      if (walWatch) { clearInterval(walWatch); walWatch = undefined; }
      await ready.catch(() => undefined);
      postOutbox();
      sealed = true;
      const w = worker;
      if (w && online) {
        const result = await call({ t: 'close', id: nextId++ }, busyTimeoutMs * 2 + 5000).catch((err: Error) => {
          log.error('audit writer did not flush before shutdown', { error: err.message });
          return undefined;
        });
        if (result) counters = { ...(result as WorkerCounters), retrying: 0 };
      }
      closed = true;
      if (sweepTimer) { clearTimeout(sweepTimer); sweepTimer = undefined; }
      if (outbox.k.length > 0) {
        localDropped += outbox.k.length;
        log.error('audit records dropped at shutdown', { records: outbox.k.length });
        outbox = emptyBatch();
      }
      for (const c of outboxCalls) failLedgerCall(c.id, new AuditUnavailableError('AUDIT_CLOSED', 'the gateway is shutting down'));
      outboxCalls = [];
      await w?.terminate();
      const c = checkpointer;
      checkpointer = undefined;
      await c?.terminate();
    },
  };
  return sink;
}
