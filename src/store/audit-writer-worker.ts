// Owns: the audit writer thread — its own connection to tollgate.db (WAL), records received over
// the parent MessagePort, group commit (everything that arrived while the previous transaction ran,
// or within `groupCommitMs`, goes in one BEGIN IMMEDIATE transaction), acknowledgements of decision
// records, a bounded retry queue for completions and events while the store cannot write, the
// deleted-file check, WAL size control and retention pruning — and the gateway's spend ledger
// (reservations and settlements run here, on the one connection that writes, so they never wait on
// the write lock — SQLite's busy handler sleeps — on the proxy's event loop). Started by
// src/audit/sqlite-audit-sink.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { LATE_LEDGER_METHODS, OP_OPEN, createAuditWriter, unpackBatch, type PackedBatch, type PackedOp } from './audit-writer.ts';
import { inImmediateTransaction, openDatabase, type Database } from './database.ts';
import { captureFileIdentity, fileIdentityChange, moveAsideCompanions, type FileIdentity } from './file-identity.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { MALFORMED_CALL, packLineAdmission, packSettleOutcome, unpackReservation, unpackSettlement } from '../ledger/ledger-wire.ts';
import { createSqliteLedgerSync } from './sqlite-ledger.ts';

/** The Ledger methods the writer thread runs for the proxy (src/audit/sqlite-audit-sink.ts `ledger`). */
export type LedgerMethod = keyof Ledger;
/** The Ledger contract's methods: the only ones a message may call (the writer's ledger has more). */
const LEDGER_METHODS: ReadonlySet<string> = new Set(Object.keys({
  reserve: true, settle: true, release: true, lineStates: true, markThreshold: true, settleOpenReservations: true,
} satisfies Record<LedgerMethod, true>));

export interface AuditWorkerConfig {
  file: string;
  busyTimeoutMs: number;
  /** 0: commit as soon as the writer is free (batching whatever arrived meanwhile); > 0: wait this long to gather a batch. */
  groupCommitMs: number;
  /** Complete rows left `open` by a crash (first start of the process only). */
  closeOrphans: boolean;
  /** 0 keeps everything. */
  retentionDays: number;
  pruneIntervalMs: number;
  pruneChunkRows: number;
  /** Completions and events kept for a retry while the store cannot write; beyond it they are dropped (counted). */
  maxRetryRecords: number;
  retryIntervalMs: number;
  /** WAL size that triggers wal_checkpoint(TRUNCATE) (and the journal_size_limit). */
  walCapBytes: number;
}

export type ToWorker =
  /**
   * One message per tick of the proxy's loop: records in compact form (src/store/audit-writer.ts
   * PackedBatch), and spend-ledger calls, which run first, in order, each a savepoint of the
   * commit's one transaction.
   */
  | { t: 'ops'; batch: PackedBatch; calls: LedgerCall[] }
  | { t: 'flush'; id: number }
  | { t: 'prune'; id: number; cutoff: number | undefined }
  | { t: 'limits'; id: number; maxPageCount?: number | null; queryOnly?: boolean }
  | { t: 'close'; id: number };

export interface LedgerCall { id: number; method: LedgerMethod; args: unknown[] }
export interface LedgerAnswer { id: number; value?: unknown; error?: string; code?: string }

export interface WorkerCounters {
  committed: number;
  dropped: number;
  retrying: number;
}

export type FromWorker =
  | { t: 'ready'; orphans: number }
  /**
   * After a commit: decisions acknowledged or failed, ledger answers. A commit with nothing anyone
   * waits for (completions, settlements) posts nothing; its counters and answers follow within
   * COUNTERS_MS.
   */
  | { t: 'result'; acked: number[]; failed: number[]; error: { code: string; message: string } | undefined; counters: WorkerCounters; ledger: LedgerAnswer[] }
  | { t: 'done'; id: number; value?: unknown; error?: string; code?: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> }
  | { t: 'fatal'; code: string; message: string };

/** Store conditions that pass (a lock released, space freed, write access back): worth a retry. */
const TRANSIENT_SQLITE = 'FULL|BUSY|LOCKED|READONLY|IOERR|CANTOPEN|PROTOCOL|NOMEM|PERM|AUTH';
const TRANSIENT = new RegExp(`^SQLITE_(${TRANSIENT_SQLITE})`);
/** The store's own trouble (transient, or a damaged file), as opposed to a record it rejects. */
const ENVIRONMENTAL = new RegExp(`^(SQLITE_(${TRANSIENT_SQLITE}|CORRUPT|NOTADB)|AUDIT_)`);

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'AUDIT_WRITE_FAILED';
}

const OP_NAMES = ['open', 'complete', 'event'] as const;

/** Counters changed by a commit that had nothing else to report reach the proxy within this time. */
const COUNTERS_MS = 250;

/** How often an idle writer checks that the path still holds the database it opened. */
const FILE_CHECK_MS = 1000;

class FileReplaced extends Error {
  readonly code = 'AUDIT_FILE_REPLACED';
}

function run(port: NonNullable<typeof parentPort>, cfg: AuditWorkerConfig): void {
  const post = (m: FromWorker) => port.postMessage(m);
  const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}) => post({ t: 'log', level, msg, fields });
  let db: Database;
  let identity: FileIdentity;
  try {
    db = openDatabase(cfg.file, { busyTimeoutMs: cfg.busyTimeoutMs });
    db.pragma(`journal_size_limit = ${Math.trunc(cfg.walCapBytes)}`);
    // No checkpoint inside a commit: the checkpointer thread (wal-checkpointer-worker.ts) runs them
    // on its own connection, so a decision never waits for pages being copied and synced.
    // journal_size_limit bounds the WAL file; the checkpointer also truncates a WAL past its cap.
    db.pragma('wal_autocheckpoint = 0');
    // This connection only appends: a larger page cache keeps the indexes' recent pages in memory
    // as the tables grow; sorts and temporary b-trees stay in memory.
    db.pragma('cache_size = -32768'); // KiB: 32 MiB
    db.pragma('temp_store = MEMORY');
    identity = captureFileIdentity(cfg.file);
  } catch (err) {
    post({ t: 'fatal', code: errorCode(err), message: (err as Error).message });
    return;
  }
  /** Set once the path stops holding the file opened: sticky, the store stays failed until restart. */
  let fileProblem: string | undefined;
  const writer = createAuditWriter(db);
  const ledger = createSqliteLedgerSync(db);
  let orphans = 0;
  if (cfg.closeOrphans) {
    try {
      orphans = writer.closeOrphans(Date.now(), 'gateway stopped before the exchange ended (crash or kill); the request may have been forwarded');
    } catch (err) {
      log('error', 'cannot complete audit rows left open by the last run', { error: (err as Error).message, code: errorCode(err) });
    }
  }
  post({ t: 'ready', orphans });

  const counters: WorkerCounters = { committed: 0, dropped: 0, retrying: 0 };
  let pending: PackedOp[] = [];
  let calls: LedgerCall[] = [];
  let retry: PackedOp[] = [];
  // Settlements, releases and threshold marks the store could not take, run again with `retry`.
  let retryCalls: LedgerCall[] = [];
  let countersTimer: NodeJS.Timeout | undefined;
  let scheduled = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failing = false;
  let flushWaiters: number[] = [];

  const checkFile = () => {
    if (fileProblem === undefined) {
      const change = fileIdentityChange(identity);
      if (change === undefined) return;
      fileProblem = change === 'deleted'
        ? `${cfg.file} was deleted; audit records cannot be stored (restart the gateway after restoring it)`
        : `${cfg.file} was replaced by another file; audit records cannot be stored (restart the gateway)`;
      // The old database's WAL and shared memory must not be replayed into whatever the path holds
      // next (the next start, a CLI verb): moved aside, kept for an investigation.
      const moved = moveAsideCompanions(identity);
      log('error', 'the audit database file was deleted or replaced while the gateway ran; every decision fails closed until a restart', { file: cfg.file, change, moved_aside: moved });
    }
    throw new FileReplaced(fileProblem);
  };
  let probeFile = false;
  // An idle gateway notices too (its /readyz turns 503 within a second, not at the next request).
  const fileWatch = setInterval(() => {
    if (fileProblem !== undefined || failing) return;
    if (fileIdentityChange(identity) !== undefined) {
      probeFile = true;
      schedule(true);
    }
  }, FILE_CHECK_MS);
  fileWatch.unref();

  const keepForRetry = (ops: readonly PackedOp[]) => {
    for (const o of ops) {
      if (o.k === OP_OPEN) continue; // its request was refused (or failed open); the completion follows
      if (retry.length >= cfg.maxRetryRecords) counters.dropped++;
      else retry.push(o);
    }
    counters.retrying = retry.length;
  };

  const applyOne = (op: PackedOp): { ok: boolean; code?: string; message?: string } => {
    try {
      writer.applyPacked([op]);
      counters.committed++;
      return { ok: true };
    } catch (err) {
      return { ok: false, code: errorCode(err), message: (err as Error).message };
    }
  };

  const scheduleRetry = () => {
    if (retryTimer || (!failing && retry.length === 0 && retryCalls.length === 0)) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      schedule(true);
    }, cfg.retryIntervalMs);
  };

  function schedule(now = false): void {
    if (scheduled) return;
    scheduled = true;
    if (cfg.groupCommitMs > 0 && !now) setTimeout(commit, cfg.groupCommitMs);
    else setImmediate(commit);
  }

  // Answers nobody holds a request back for (settlements, releases, threshold marks): they ride
  // with the next result, or leave with the counters.
  let lateAnswers: LedgerAnswer[] = [];
  const takeLate = (): LedgerAnswer[] => {
    const a = lateAnswers;
    lateAnswers = [];
    return a;
  };

  const postCounters = () => {
    countersTimer = undefined;
    post({ t: 'result', acked: [], failed: [], error: undefined, counters: { ...counters }, ledger: takeLate() });
  };

  /** One call; a reservation and a settlement come, and answer, in their compact form (src/ledger/ledger-wire.ts). */
  const runLedgerCall = (c: LedgerCall): unknown => {
    if (c.method === 'reserve') {
      const { head, lines } = unpackReservation(c.args[0]);
      return packLineAdmission(ledger.reserveLines(head, lines));
    }
    if (c.method === 'settle') return packSettleOutcome(ledger.settle(unpackSettlement(c.args[0])));
    const method = ledger[c.method] as (...args: unknown[]) => unknown;
    return method.apply(ledger, c.args);
  };

  /**
   * Runs ledger calls in order (each is an IMMEDIATE transaction, or a savepoint inside an outer
   * one). `inOuter`: an error that may have cost the outer transaction (the store's own trouble, or
   * no transaction left) is thrown, so the caller rolls everything back and runs the calls alone.
   */
  const runLedgerCalls = (work: readonly LedgerCall[], inOuter: boolean): LedgerAnswer[] => {
    const answers: LedgerAnswer[] = [];
    for (const c of work) {
      try {
        if (!LEDGER_METHODS.has(c.method)) throw Object.assign(new TypeError(`no ledger method ${String(c.method)}`), { code: MALFORMED_CALL });
        answers.push({ id: c.id, value: runLedgerCall(c) });
      } catch (err) {
        if (inOuter && (ENVIRONMENTAL.test(errorCode(err)) || !db.inTransaction)) throw err;
        answers.push({ id: c.id, error: (err as Error).message, code: errorCode(err) });
      }
    }
    return answers;
  };

  /** Ledger calls (and `records`, when given) in one transaction; the ledger forgets a rolled-back one. */
  const inOneTransaction = (work: readonly LedgerCall[], records?: readonly PackedOp[]): LedgerAnswer[] => {
    try {
      return inImmediateTransaction(db, () => {
        const a = ledger.inBatch(() => runLedgerCalls(work, true));
        if (records) writer.applyPacked(records);
        return a;
      });
    } catch (err) {
      ledger.forget();
      throw err;
    }
  };

  /** Every call answered with the store's failure: running them again would only wait on it again. */
  const answerAll = (work: readonly LedgerCall[], err: unknown): LedgerAnswer[] =>
    work.map((c) => ({ id: c.id, error: (err as Error).message, code: errorCode(err) }));

  /** Ledger calls alone: in one transaction when it goes well, else each on its own. */
  const runLedgerBatch = (work: readonly LedgerCall[]): LedgerAnswer[] => {
    if (work.length === 0) return [];
    if (work.length > 1) {
      try {
        return inOneTransaction(work);
      } catch (err) {
        if (ENVIRONMENTAL.test(errorCode(err))) return answerAll(work, err);
        // rolled back for one call's sake: run them one by one, each answered on its own
      }
    }
    return runLedgerCalls(work, false);
  };

  function commit(): void {
    scheduled = false;
    const ledgerWork = retryCalls.length > 0 ? retryCalls.concat(calls) : calls;
    retryCalls = [];
    calls = [];
    let answers: LedgerAnswer[] | undefined;
    const wasFailing = failing;
    const fresh = pending;
    pending = [];
    const work = retry.length > 0 ? retry.concat(fresh) : fresh;
    retry = [];
    counters.retrying = 0;
    const acked: number[] = [];
    const failed: number[] = [];
    let error: { code: string; message: string } | undefined;
    const probe = probeFile;
    probeFile = false;
    if (work.length > 0 || failing || probe) {
      try {
        checkFile();
        if (work.length === 0) {
          // a probe while failing: an empty write transaction tells whether the store writes again
          db.prepare("UPDATE audit_chain SET head_seq = head_seq WHERE chain = 'events'").run();
        } else if (ledgerWork.length > 0 && !failing) {
          // The turn's ledger calls and records in one transaction: one commit, and pages both
          // touch written to the WAL once. Any failure rolls all of it back (handled below, and
          // the ledger calls then run alone).
          answers = inOneTransaction(ledgerWork, work);
        } else {
          writer.applyPacked(work);
        }
        counters.committed += work.length;
        for (const o of work) if (o.k === OP_OPEN) acked.push(o.id);
        if (failing) log('info', 'audit store writes again', { records: work.length });
        failing = false;
      } catch (err) {
        const code = errorCode(err);
        const message = (err as Error).message;
        // the store itself failed: the ledger calls would fail the same way (after waiting again)
        if (ledgerWork.length > 0 && ENVIRONMENTAL.test(code)) answers = answerAll(ledgerWork, err);
        if (!ENVIRONMENTAL.test(code) && work.length > 1) {
          // One bad record must not sink its batch: write them one by one.
          for (const o of work) {
            const r = applyOne(o);
            if (r.ok) { if (o.k === OP_OPEN) acked.push(o.id); continue; }
            if (o.k === OP_OPEN) failed.push(o.id);
            else counters.dropped++;
            log('error', 'audit record rejected by the store', { code: r.code, error: r.message, op: OP_NAMES[o.k] });
          }
        } else if (!ENVIRONMENTAL.test(code)) {
          for (const o of work) {
            if (o.k === OP_OPEN) failed.push(o.id);
            else counters.dropped++;
          }
          log('error', 'audit record rejected by the store', { code, error: message });
        } else {
          if (!failing) log('error', 'audit store cannot write; decisions fail closed until it recovers', { code, error: message });
          failing = true;
          error = { code, message };
          for (const o of work) if (o.k === OP_OPEN) failed.push(o.id);
          keepForRetry(work);
        }
      }
    }
    if (answers === undefined && ledgerWork.length > 0) {
      try {
        checkFile(); // ledger calls alone (budget reads, settlements) never reach a moved file either
      } catch (err) {
        answers = answerAll(ledgerWork, err);
      }
    }
    answers ??= runLedgerBatch(ledgerWork);
    let awaited = false;
    for (let i = 0; i < answers.length; i++) {
      const call = ledgerWork[i] as LedgerCall;
      const answer = answers[i] as LedgerAnswer;
      const late = LATE_LEDGER_METHODS.has(call.method);
      // A settlement, release or threshold mark the store could not take (locked, read-only, full)
      // is kept and run again with the records' retries: its request is over and nobody waits on
      // it, and answering it with the error would leave the reservation held until a restart, which
      // then charges it in full. At close, or past the retry bound, it is answered with the error.
      if (late && answer.error !== undefined && TRANSIENT.test(answer.code ?? '') && !closed && retryCalls.length < cfg.maxRetryRecords) {
        retryCalls.push(call);
        continue;
      }
      if (!late) awaited = true;
      lateAnswers.push(answer);
    }
    if (acked.length > 0 || failed.length > 0 || error || awaited || failing !== wasFailing || flushWaiters.length > 0) {
      if (countersTimer) { clearTimeout(countersTimer); countersTimer = undefined; }
      post({ t: 'result', acked, failed, error, counters: { ...counters }, ledger: takeLate() });
    } else if (!countersTimer) {
      // completions and settlements only: nobody waits for them; the counters follow shortly
      countersTimer = setTimeout(postCounters, COUNTERS_MS);
    }
    if (failing || retry.length > 0 || retryCalls.length > 0) scheduleRetry();
    if (pending.length > 0) schedule();
    else if (flushWaiters.length > 0) {
      const w = flushWaiters;
      flushWaiters = [];
      for (const id of w) post({ t: 'done', id, value: { retrying: retry.length } });
    }
  }

  let pruneTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /**
   * Prunes chunk by chunk, yielding to the event loop between chunks: decisions and their commits
   * go on meanwhile (a retention backlog of millions of rows must not stall the writer, or every
   * decision would time out). `done` gets the totals, or the error of the chunk that failed.
   */
  const pruneInChunks = (cutoff: number, done: (err: unknown, total: { requests: number; events: number }) => void) => {
    const total = { requests: 0, events: 0 };
    const step = () => {
      if (closed) { done(undefined, total); return; }
      let more: boolean;
      try {
        const r = writer.prune(cutoff, cfg.pruneChunkRows, Date.now());
        total.requests += r.requests;
        total.events += r.events;
        more = r.more;
      } catch (err) {
        done(err, total);
        return;
      }
      if (more) setImmediate(step);
      else done(undefined, total);
    };
    step();
  };
  const schedulePrune = (delay: number) => {
    if (cfg.retentionDays <= 0) return;
    pruneTimer = setTimeout(() => {
      const cutoff = Date.now() - cfg.retentionDays * 86_400_000;
      pruneInChunks(cutoff, (err, r) => {
        if (err !== undefined) log('warn', 'audit retention pruning failed; it runs again later', { error: (err as Error).message, code: errorCode(err) });
        else if (r.requests + r.events > 0) log('info', 'audit retention pruned old records', { ...r, retention_days: cfg.retentionDays });
        if (!closed) schedulePrune(cfg.pruneIntervalMs);
      });
    }, delay);
    pruneTimer.unref();
  };
  schedulePrune(Math.min(cfg.pruneIntervalMs, 10_000));

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'ops': {
        let ops: PackedOp[];
        try {
          ops = unpackBatch(m.batch);
        } catch (err) {
          log('error', 'malformed audit batch from the proxy thread', { error: (err as Error).message });
          const failed = m.batch.id.filter((_, i) => m.batch.k[i] === OP_OPEN);
          const ledgerAnswers = m.calls.map((c) => ({ id: c.id, error: 'malformed batch', code: 'AUDIT_BATCH_MALFORMED' }));
          post({ t: 'result', acked: [], failed, error: undefined, counters: { ...counters }, ledger: ledgerAnswers });
          return;
        }
        if (pending.length === 0) pending = ops;
        else for (const o of ops) pending.push(o);
        for (const c of m.calls) calls.push(c);
        schedule();
        return;
      }
      case 'flush':
        flushWaiters.push(m.id);
        schedule(true);
        return;
      case 'prune': {
        const cutoff = m.cutoff ?? Date.now() - cfg.retentionDays * 86_400_000;
        pruneInChunks(cutoff, (err, total) => {
          if (err === undefined) post({ t: 'done', id: m.id, value: total });
          else post({ t: 'done', id: m.id, error: `${errorCode(err)}: ${(err as Error).message}` });
        });
        return;
      }
      case 'limits':
        try {
          if (m.maxPageCount !== undefined) db.pragma(`max_page_count = ${m.maxPageCount === null ? 4294967294 : Math.trunc(m.maxPageCount)}`);
          if (m.queryOnly !== undefined) db.pragma(`query_only = ${m.queryOnly ? 1 : 0}`);
          post({ t: 'done', id: m.id, value: { pageCount: db.pragma('page_count', { simple: true }) } });
        } catch (err) {
          post({ t: 'done', id: m.id, error: (err as Error).message });
        }
        return;
      case 'close': {
        closed = true;
        clearInterval(fileWatch);
        try {
          // a last look: a file replaced just before the stop gets its old -wal/-shm moved aside
          // (SQLite's own close leaves them when the file has moved)
          checkFile();
        } catch {
          // reported by checkFile; the commit below fails closed
        }
        if (pruneTimer) clearTimeout(pruneTimer);
        if (retryTimer) clearTimeout(retryTimer);
        commit();
        if (countersTimer) clearTimeout(countersTimer);
        if (lateAnswers.length > 0) postCounters();
        if (retry.length > 0) {
          log('error', 'audit records could not be written before shutdown', { records: retry.length });
          counters.dropped += retry.length;
          retry = [];
        }
        try {
          // never into a file that is no longer the one at the path
          if (fileProblem === undefined) db.pragma('wal_checkpoint(PASSIVE)');
        } catch {
          // best effort
        }
        db.close();
        post({ t: 'done', id: m.id, value: { ...counters } });
        port.close();
        return;
      }
    }
  });
}

if (parentPort) run(parentPort, workerData as AuditWorkerConfig);
