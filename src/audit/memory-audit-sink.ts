// Owns: the in-memory AuditSink twin for unit tests: keeps every record in arrays, and can be
// switched to "cannot write" to exercise fail-closed paths. Same contract as the SQLite sink.
import type { AuditEventRow, AuditRequestRow } from './audit-record.ts';
import { AuditUnavailableError, type AuditSink, type AuditSinkStatus } from './audit-sink.ts';

export interface MemoryAuditSink extends AuditSink {
  decisions: AuditRequestRow[];
  completions: AuditRequestRow[];
  events: AuditEventRow[];
  /** While set, commitDecision rejects with this code. */
  failing: string | undefined;
}

export function createMemoryAuditSink(): MemoryAuditSink {
  let failOpen = 0;
  let failedDecisions = 0;
  let lastError: AuditSinkStatus['lastError'];
  const sink: MemoryAuditSink = {
    decisions: [],
    completions: [],
    events: [],
    failing: undefined,
    async commitDecision(row) {
      if (sink.failing !== undefined) {
        failedDecisions++;
        lastError = { code: sink.failing, message: `memory sink failing: ${sink.failing}`, at: 0 };
        throw new AuditUnavailableError(sink.failing, lastError.message);
      }
      sink.decisions.push(row);
    },
    complete(row) {
      sink.completions.push(row);
    },
    event(row) {
      sink.events.push(row);
    },
    noteFailOpen() {
      failOpen++;
    },
    status() {
      const ok = sink.failing === undefined;
      return {
        ok, detail: ok ? 'memory' : `failing: ${sink.failing ?? ''}`, queued: 0, dropped: 0, failedDecisions, failOpen,
        committed: sink.decisions.length + sink.completions.length + sink.events.length, lastError,
      };
    },
    async flush() {},
    async close() {},
  };
  return sink;
}
