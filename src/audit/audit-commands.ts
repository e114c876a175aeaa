// Owns: the library side of `tollgate audit …` — parse the filters, open tollgate.db, run the
// query, export, verification or pruning, and write the output. The CLI (src/cli/audit-commands.ts)
// only parses arguments and maps results to exit codes. Also how processes other than the gateway
// (CLI verbs, the agent supervisor) append audit events, and their actor.
import { userInfo } from 'node:os';
import { parseDuration } from '../identity/parse-duration.ts';
import { TollgateError } from '../errors.ts';
import { createAuditWriter } from '../store/audit-writer.ts';
import { inImmediateTransactionAsync, withDatabase, type Database } from '../store/database.ts';
import {
  auditSummary, iterateAuditEvents, iterateAuditRows, readSnapshot, searchAuditRows, verifyAuditStore,
  type AuditFilter, type AuditPage, type AuditSummary, type AuditVerification,
} from '../store/sqlite-audit-reader.ts';
import type { AuditDecision } from './audit-record.ts';
import { buildAuditEvent, type AuditEventInput } from './build-audit-row.ts';
import { eventCsvHeader, eventCsvLine, eventJsonLine, requestCsvHeader, requestCsvLine, requestJsonLine } from './export-format.ts';

/**
 * A point in time from the command line: an ISO date or date-time (`2026-05-01`,
 * `2026-05-01T12:00:00Z`), epoch milliseconds, or a duration back from now (`24h`, `7d`, `90m`).
 */
export function parseTimeArg(text: string, now: number, flag: string): number {
  const t = text.trim();
  if (/^\d{12,}$/.test(t)) return Number(t);
  const d = parseDuration(t);
  if (d !== undefined) return now - d;
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new TollgateError('TOLLGATE_ERR_USAGE', `${flag} ${JSON.stringify(text)} is not a time: give an ISO date (2026-05-01), a date-time, or a duration back from now (24h, 7d)`);
}

export interface AuditFilterArgs {
  since?: string; until?: string; user?: string; agent?: string; team?: string; project?: string;
  host?: string; decision?: string; status?: string; limit?: string; cursor?: string;
}

const DECISIONS: readonly AuditDecision[] = ['allow', 'direct', 'deny', 'error'];

export function toAuditFilter(a: AuditFilterArgs, now: number): AuditFilter {
  const f: AuditFilter = {};
  if (a.since !== undefined) f.since = parseTimeArg(a.since, now, '--since');
  if (a.until !== undefined) f.until = parseTimeArg(a.until, now, '--until');
  if (a.user !== undefined) f.user = a.user;
  if (a.agent !== undefined) f.agent = a.agent;
  if (a.team !== undefined) f.team = a.team;
  if (a.project !== undefined) f.project = a.project;
  if (a.host !== undefined) f.host = a.host;
  if (a.decision !== undefined) {
    if (!DECISIONS.includes(a.decision as AuditDecision)) throw new TollgateError('TOLLGATE_ERR_USAGE', `--decision must be one of ${DECISIONS.join(', ')}`);
    f.decision = a.decision as AuditDecision;
  }
  if (a.status !== undefined) {
    if (!/^(\d{3}|[1-5]xx)$/i.test(a.status)) throw new TollgateError('TOLLGATE_ERR_USAGE', '--status takes a code (403) or a class (5xx)');
    f.status = a.status;
  }
  if (a.limit !== undefined) {
    const n = Number(a.limit);
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new TollgateError('TOLLGATE_ERR_USAGE', '--limit takes a whole number from 1 to 10000');
    f.limit = n;
  }
  if (a.cursor !== undefined) f.cursor = a.cursor;
  return f;
}

const withDb = <T>(dbFile: string, fn: (db: Database) => T): T => withDatabase(dbFile, {}, fn);

export function auditSearch(dbFile: string, filter: AuditFilter): AuditPage {
  return withDb(dbFile, (db) => searchAuditRows(db, filter));
}

export function auditSummaryReport(dbFile: string, window: { since?: number; until?: number }): AuditSummary {
  return withDb(dbFile, (db) => auditSummary(db, window));
}

export interface AuditExportOptions {
  dbFile: string;
  format: 'jsonl' | 'csv';
  since?: number;
  until?: number;
  /** Export the events instead of the request rows. */
  events?: boolean;
  write: (text: string) => void;
}

/** Streams the records of the window, oldest first, from one consistent snapshot. Returns the count. */
export function auditExport(o: AuditExportOptions): number {
  const window = { ...(o.since !== undefined ? { since: o.since } : {}), ...(o.until !== undefined ? { until: o.until } : {}) };
  return withDb(o.dbFile, (db) => readSnapshot(db, () => {
    let n = 0;
    let buf = '';
    const out = (line: string) => {
      buf += `${line}\n`;
      if (buf.length > 65_536) { o.write(buf); buf = ''; }
    };
    if (o.format === 'csv') out(o.events ? eventCsvHeader() : requestCsvHeader());
    if (o.events) {
      for (const e of iterateAuditEvents(db, window)) { out(o.format === 'csv' ? eventCsvLine(e) : eventJsonLine(e)); n++; }
    } else {
      for (const r of iterateAuditRows(db, window)) { out(o.format === 'csv' ? requestCsvLine(r) : requestJsonLine(r)); n++; }
    }
    if (buf) o.write(buf);
    return n;
  }));
}

export function auditVerify(dbFile: string): AuditVerification {
  return withDb(dbFile, (db) => verifyAuditStore(db));
}

/** Prunes records older than `days` now (the gateway also does this on its own, hourly). */
export function auditPrune(dbFile: string, days: number, now = Date.now(), actor = 'cli'): { requests: number; events: number } {
  if (!Number.isInteger(days) || days < 1) throw new TollgateError('TOLLGATE_ERR_USAGE', '--days takes a whole number of days (at least 1)');
  return withDb(dbFile, (db) => {
    const w = createAuditWriter(db);
    const total = { requests: 0, events: 0 };
    for (;;) {
      const r = w.prune(now - days * 86_400_000, 5000, now, actor);
      total.requests += r.requests;
      total.events += r.events;
      if (!r.more) return total;
    }
  });
}

/**
 * Appends events on an open connection, from a process other than the gateway (CLI verbs, the
 * agent supervisor): the gateway writer's own code, so each call is one BEGIN IMMEDIATE
 * transaction that reads the chain head inside it and waits up to the connection's busy timeout
 * for the gateway's writer thread. Inside a transaction the caller opened, it joins it (a
 * savepoint): the events commit or roll back with the caller's own writes. Throws when the store
 * cannot write (nothing appended).
 */
export function createEventAppender(db: Database, clock: () => number = Date.now): (events: readonly AuditEventInput[]) => void {
  const writer = createAuditWriter(db);
  return (events) => {
    const now = clock();
    writer.applyBatch(events.map((e, i) => ({ op: 'event' as const, id: i, row: buildAuditEvent(e, now) })));
  };
}

declare const neverThrows: unique symbol;

/**
 * An audit callback that never throws: a failed write has gone to its error callback. The agent
 * supervisor and the agent token source call theirs unguarded and take only this type, which
 * only bestEffortAuditor makes: the one guard both rely on.
 */
export type BestEffortAudit = ((event: AuditEventInput) => void) & { readonly [neverThrows]: true };

/**
 * The audit callback of a long-running process other than the gateway (the agent supervisor):
 * each event is written at once through createEventAppender; a failed write goes to `onError`
 * and is never thrown, so the process keeps running (its events are not held for a retry).
 */
export function bestEffortAuditor(db: Database, onError: (err: Error, event: AuditEventInput) => void): BestEffortAudit {
  const append = createEventAppender(db);
  const audit = (event: AuditEventInput): void => {
    try {
      append([event]);
    } catch (err) {
      onError(err as Error, event);
    }
  };
  return audit as BestEffortAudit;
}

/** Appends events from a process other than the gateway (CLI verbs): same chain, same transaction rules. */
export function appendAuditEvents(dbFile: string, events: readonly AuditEventInput[], now = Date.now()): void {
  withDb(dbFile, (db) => createEventAppender(db, () => now)(events));
}

/** The actor of events a CLI process writes: `cli:<os user>` (`cli:unknown` when the OS cannot say). */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

/** SQLite and file-system failures (the store cannot be opened or written) carry such a code. */
export function storeFailure(err: unknown): string | undefined {
  if (err instanceof TollgateError) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^(SQLITE_|E[A-Z]+$)/.test(code)) return undefined;
  const message = (err as Error).message;
  return message.startsWith(code) ? message : `${code}: ${message}`;
}

export function auditUnavailable(dbFile: string, why: string, consequence: string, cause: unknown): TollgateError {
  return new TollgateError('TOLLGATE_ERR_AUDIT', `the audit store ${dbFile} cannot be written (${why}): ${consequence}`, { cause });
}

/**
 * A CLI change that only takes access away (a token revocation, ending admin sessions), committed
 * with its audit event in one transaction. When only the event cannot be written, the change is
 * made on its own — refusing it would keep access alive through an audit outage — and the verb
 * fails with TOLLGATE_ERR_AUDIT saying what it did without an event (`doneWithoutEvent`). Other
 * failures are thrown as they are (nothing was done).
 */
export async function removeAccessWithEvent<T>(db: Database, dbFile: string, o: {
  change: () => Promise<T>;
  event: (result: T) => AuditEventInput;
  doneWithoutEvent: (result: T) => string;
  now: number;
}): Promise<T> {
  const append = createEventAppender(db, () => o.now);
  let auditError: unknown;
  try {
    return await inImmediateTransactionAsync(db, async () => {
      const result = await o.change();
      try {
        append([o.event(result)]);
      } catch (err) {
        auditError = err;
        throw err;
      }
      return result;
    });
  } catch (err) {
    if (auditError === undefined) throw err;
  }
  const result = await o.change();
  const why = storeFailure(auditError) ?? (auditError as Error).message;
  throw auditUnavailable(dbFile, why, o.doneWithoutEvent(result), auditError);
}
