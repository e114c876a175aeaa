// Owns: the AuditSink contract between the data plane and wherever audit rows are stored
// (the SQLite writer thread by default; the in-memory twin in unit tests), and its error.
import type { AuditEventRow, AuditRequestRow } from './audit-record.ts';

export interface AuditSinkStatus {
  /** False while the store cannot write (the last attempt failed) or the writer is down. */
  ok: boolean;
  detail: string;
  /** Records handed to the sink and not yet committed (including those waiting for a retry). */
  queued: number;
  /** Completions and events that were given up (retry queue full, or rejected by the store). */
  dropped: number;
  /** Decision records that could not be committed (each one refused a request or failed it open). */
  failedDecisions: number;
  /** Requests forwarded without a committed decision row (audit.fail_open_non_metered). */
  failOpen: number;
  /** Records committed since start. */
  committed: number;
  lastError: { code: string; message: string; at: number } | undefined;
}

export interface AuditSink {
  /** Resolves once the decision row is committed; rejects with AuditUnavailableError otherwise. */
  commitDecision(row: AuditRequestRow): Promise<void>;
  /** Queues the final row of an exchange (completes its decision row, or adds a new one). Never throws. */
  complete(row: AuditRequestRow): void;
  /** Queues an event. Never throws. */
  event(row: AuditEventRow): void;
  /** Counts one request forwarded without a committed decision row. */
  noteFailOpen(): void;
  status(): AuditSinkStatus;
  /** Resolves when everything handed over so far is committed (or given up). */
  flush(): Promise<void>;
  /** Flushes, then stops the writer. Later records are dropped (and counted). */
  close(): Promise<void>;
}

export class AuditUnavailableError extends Error {
  /** SQLite result code (`SQLITE_FULL`, `SQLITE_BUSY`, …) or a Tollgate one (`AUDIT_TIMEOUT`, `AUDIT_FILE_REPLACED`, `AUDIT_WRITER_DOWN`, `AUDIT_CLOSED`). */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'AuditUnavailableError';
    this.code = code;
  }
}
